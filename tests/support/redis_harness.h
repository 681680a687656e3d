/*
 * redis_harness.h - a private redis-server for tests, on a free loopback port.
 *
 *     rh_server h;
 *     if (rh_start(&h) != 0)
 *         ck_abort_msg("%s", h.msg);        // redis-server missing or not answering
 *     ... srv_store_redis_new(h.url, ...) ...
 *     rh_stop(&h);
 *
 * rh_start picks a free port (binds 127.0.0.1:0), runs
 *     redis-server --port P --bind 127.0.0.1 --save '' --appendonly no --daemonize no
 * in a child process with its own temporary directory (and its log there), and waits, at most
 * a few seconds, until that very process answers PING. The executable is $HL_REDIS_SERVER if
 * set, else redis-server from PATH; when there is none, rh_start fails with a message saying
 * so (tests must fail then, not skip). On Linux the child dies with the thread that started
 * it, so a crashed test leaves no server behind.
 *
 * Every wait here is bounded. Functions return 0 on success, -1 with h->msg set on failure.
 * Not thread-safe: drive one rh_server from one thread.
 */
#ifndef HL_REDIS_HARNESS_H
#define HL_REDIS_HARNESS_H

#include <hiredis/hiredis.h>
#include <sys/types.h>

typedef struct rh_server {
    pid_t pid;     /* the redis-server child, 0 when stopped */
    int port;      /* loopback port it listens on */
    int paused;    /* stopped with SIGSTOP */
    char *dir;     /* temporary directory (log file), removed by rh_stop */
    char url[64];  /* redis://127.0.0.1:<port>/0 */
    char exe[512]; /* the redis-server executable */
    char msg[512]; /* why the last call failed */
} rh_server;

/** Starts a server on a free port. */
int rh_start(rh_server *h);

/** Stops the server (SIGTERM, then SIGKILL after a bounded wait) and removes its directory.
 * Safe to call on a stopped server. */
void rh_stop(rh_server *h);

/** Kills the server process but keeps its port and directory, for outage tests. */
void rh_halt(rh_server *h);

/** Starts a server again on the same port, halting the running one first (its data is gone:
 * nothing is persisted). */
int rh_restart(rh_server *h);

/** Freezes (SIGSTOP) or thaws (SIGCONT) the server: connections stay open, nothing answers. */
int rh_pause(rh_server *h);
int rh_resume(rh_server *h);

/** Opens a direct hiredis connection to the server (1 s timeouts); NULL on failure. */
redisContext *rh_connect(const rh_server *h);

/** Runs a command given as a format string on a direct connection, frees the reply and
 * returns 0 unless it failed or Redis answered with an error. */
int rh_command(const rh_server *h, const char *fmt, ...);

/** A loopback port that was free a moment ago (nothing listens on it), or -1. */
int rh_free_port(void);

#endif
