/*
 * faults_util.h - what the process-level fault tests (test_faults.c) add to harness.h: a
 * redis-server child on a free loopback port (optionally with an append-only file, so a
 * restart keeps the data), test inputs written as .npy, job submission with client retries
 * (the same Idempotency-Key on another replica after a connection error or a 503, as a client
 * behind a load balancer would), polling a job to its end through any replica, and a figures
 * line per case for bench/RESULTS.md. Every wait is bounded.
 */
#ifndef HL_FAULTS_UTIL_H
#define HL_FAULTS_UTIL_H

#include "harness.h"

typedef struct redis_proc {
    pid_t pid;
    int port;
    int aof;
    char dir[400];
    char url[64];
} redis_proc;

/* Starts redis-server on a free loopback port (aof: appendonly yes, fsync always); 0 once it
 * answers PING, -1 otherwise. */
int redis_up(redis_proc *r, const char *name, int aof);
/* SIGTERM (the AOF is flushed) and reap; bounded. */
void redis_down(redis_proc *r);
/* Starts it again on the same port and directory; 0 once it answers. */
int redis_again(redis_proc *r);

/* Clustered test data: n points in d dimensions around n/40 centres (float32, row-major,
 * malloc'd); the same seed gives the same bytes. */
float *blobs_f32(size_t n, size_t d, uint32_t seed);
/* Writes a float32 (n, d) matrix as .npy; 0 on success. Builds the .npy bytes in *npy
 * (malloc'd) when npy is not NULL. */
int write_npy(const char *path, const float *x, size_t n, size_t d, void **npy, size_t *len);

/* Starts a replica: hilanderd --redis URL --replica NAME plus the common fault-test flags and
 * `extra` (NULL-terminated). 0 on success. */
int replica_up(server *s, const char *dir_name, const char *replica, const char *url,
               const char *const *extra);
/* Waits for a replica's exit (bounded); returns its exit code, -1 if it did not exit or died
 * of a signal. Clears it from g_pids. */
int reap(server *s, double seconds);
/* kill -9 and reap. */
void kill9(server *s);

typedef struct client_stats {
    int requests;     /* HTTP requests sent */
    int retries;      /* requests repeated after a connection error or a 503 */
    int failed;       /* logical requests that never got their expected answer */
    int undocumented; /* answers whose status is not one the API documents for the route */
} client_stats;

/* POST /v1/cluster (application/x-npy) with Idempotency-Key `key`, trying ports[] in turn
 * from `first`; retries a connection error or 503 on the next port (at most `tries` times,
 * 100 ms apart). Fills id (the job id) and returns the final status (202/200), or -1. */
long submit_retry(const int *ports, int nports, int first, const void *npy, size_t len,
                  const char *key, const char *const *extra_hdrs, int tries, char id[64],
                  client_stats *cs);
/* Polls GET /v1/jobs/{id} through ports[] in turn until it is terminal or `seconds` pass;
 * connection errors and 503s move on to the next port. Copies the final job object's status,
 * replica and attempts. Returns 0 when terminal. */
int poll_done(const int *ports, int nports, const char *id, double seconds, char status[32],
              char replica[64], int *attempts, client_stats *cs);
/* An "Authorization: Bearer ..." line the polling helpers send (NULL = none). */
extern const char *g_fault_auth;

/* The job object (GET through one port), or NULL; the caller json_decref's it. */
json_t *job_object(int port, const char *id);

/* Counts the lines of a log file that contain `needle`. */
int log_count(const char *path, const char *needle);
/* 1 when the log has no sanitizer report and no error-level line. */
int log_clean(const char *path);

#endif
