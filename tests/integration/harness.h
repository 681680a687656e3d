/*
 * harness.h - what the service tests share: starting and stopping hilanderd on 127.0.0.1
 * (port 0, read from --port-file), HTTP requests through libcurl, JSON answers through
 * jansson, and a CHECK macro that counts passes and failures. Every server started here is
 * killed on exit, on a fatal signal and on the global alarm; every wait is bounded.
 */
#ifndef HL_TEST_HARNESS_H
#define HL_TEST_HARNESS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

extern const char *g_daemon, *g_cli, *g_root; /* hilanderd, hilander, the project */
extern char g_tmp[256];                       /* scratch directory of this run */
extern pid_t g_pids[16];                      /* processes to kill at exit (0 = gone) */
extern int g_npids;
extern int g_passed, g_failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            g_passed++;                                                                            \
        } else {                                                                                   \
            g_failed++;                                                                            \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

typedef struct server {
    pid_t pid;
    int port;
    char log[512];
} server;

/* Starts hilanderd with the common flags plus `extra` (NULL-terminated). Returns 0 once the
 * port file exists; -1 if the process exited first (its status in *status). */
int start(server *s, const char *name, const char *const *extra, int *status);
/* Runs hilanderd expecting it to refuse to start; returns its exit code and stderr. */
int start_fails(const char *name, const char *const *extra, char *err, size_t errlen);
void kill_servers(void);
void on_fatal(int sig);
double now(void);
void sleep_ms(int ms);

typedef struct hresp {
    long status;
    char *body;
    size_t len;
    char hdrs[8192];
    size_t hlen;
    json_t *json;
} hresp;

/* One request; `hdrs` is a NULL-terminated list of "Name: value" lines; `chunked` sends the
 * body with Transfer-Encoding: chunked. Returns the status, -1 on a transport error. */
long http(int port, const char *method, const char *path, const char *ctype, const void *body,
          size_t len, const char *const *hdrs, int chunked, hresp *r);
long GET(int port, const char *path, hresp *r);
void hfree(hresp *r);
/* A response header's value (copied into out), or NULL. */
const char *header(const hresp *r, const char *name, char *out, size_t outlen);
const char *jstr(json_t *o, const char *k);
/* Whether r is an application/problem+json of this status and type suffix. */
int is_problem(const hresp *r, long status, const char *suffix);
#define CHECK_PROBLEM(r, want_status, want_suffix)                                                 \
    CHECK(is_problem(r, want_status, want_suffix), "want %d %s, got %ld %.300s", want_status,      \
          want_suffix, (r)->status, (r)->body != NULL ? (r)->body : "")

/* Polls GET /v1/jobs/{id} until its status is one of `want` (comma list); bounded. */
int wait_status(int port, const char *id, const char *want, double seconds, char *got);
/* A metric's value from /metrics (the first sample of exactly this series), -1 if absent. */
double metric(int port, const char *series);
/* The whole file, NUL-terminated, malloc'd; NULL if unreadable. */
void *read_file(const char *path, size_t *len);
int copy_file(const char *from, const char *to);
/* n x d uniform random float32, raw little-endian (distinct per seed), malloc'd. */
float *rand_f32(size_t n, size_t d, uint32_t seed);

#endif
