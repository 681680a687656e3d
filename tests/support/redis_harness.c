/* redis_harness.c - see redis_harness.h. */
#include "redis_harness.h"

#include "test_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define RH_START_SECONDS 5.0 /* bound on waiting for a new server to answer */
#define RH_STOP_SECONDS  5.0 /* bound on waiting for SIGTERM before SIGKILL */
#define RH_PORT_TRIES    5   /* fresh ports tried when another process takes ours */

static void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int rh_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof(a);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Finds the executable: $HL_REDIS_SERVER, else redis-server on PATH. */
static int find_exe(rh_server *h)
{
    const char *env = getenv("HL_REDIS_SERVER");
    if (env != NULL && env[0] != '\0') {
        if (access(env, X_OK) != 0) {
            snprintf(h->msg, sizeof(h->msg), "HL_REDIS_SERVER=%s is not an executable redis-server",
                     env);
            return -1;
        }
        snprintf(h->exe, sizeof(h->exe), "%s", env);
        return 0;
    }
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    const char *p = path;
    while (*p != '\0') { /* one PATH entry per iteration; p only moves forward */
        size_t n = strcspn(p, ":");
        if (n > 0 && n < sizeof(h->exe) - 16) {
            snprintf(h->exe, sizeof(h->exe), "%.*s/redis-server", (int)n, p);
            if (access(h->exe, X_OK) == 0)
                return 0;
        }
        p += n;
        if (*p == ':')
            p++;
    }
    h->exe[0] = '\0';
    snprintf(h->msg, sizeof(h->msg),
             "redis-server not found on PATH: the Redis store tests need a real server "
             "(run 'make deps-test' or apt-get install redis-server, or set HL_REDIS_SERVER)");
    return -1;
}

static int spawn(rh_server *h)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", h->port);
    char *log = tu_path(h->dir, "redis.log");
    char *argv[] = {h->exe, "--port",       port, "--bind",      "127.0.0.1", "--save",
                    "",     "--appendonly", "no", "--daemonize", "no",        "--dir",
                    h->dir, "--logfile",    log,  NULL};
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        free(log);
        snprintf(h->msg, sizeof(h->msg), "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* no server outlives a crashed test */
        if (getppid() != parent)
            _exit(127);
#else
        (void)parent;
#endif
        int fd = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 0);
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(h->exe, argv);
        _exit(127);
    }
    free(log);
    h->pid = pid;
    h->paused = 0;
    return 0;
}

/* Appends the end of the server's log to h->msg. */
static void append_log_tail(rh_server *h)
{
    char *log = tu_path(h->dir, "redis.log");
    FILE *f = fopen(log, "rb");
    free(log);
    if (f == NULL)
        return;
    char tail[200];
    size_t n = 0;
    if (fseek(f, -(long)(sizeof(tail) - 1), SEEK_END) != 0)
        rewind(f);
    n = fread(tail, 1, sizeof(tail) - 1, f);
    (void)fclose(f);
    tail[n] = '\0';
    size_t used = strlen(h->msg);
    snprintf(h->msg + used, sizeof(h->msg) - used, "; log: %s", tail);
}

/* 1 when the server on h->port is our child (INFO's process_id), 0 otherwise. */
static int answers_as_child(const rh_server *h)
{
    redisContext *c = rh_connect(h);
    if (c == NULL)
        return 0;
    int ok = 0;
    redisReply *r = redisCommand(c, "INFO server");
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        const char *p = strstr(r->str, "process_id:");
        ok = p != NULL && strtol(p + 11, NULL, 10) == (long)h->pid;
    }
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* 0 when ready; -1 on a hard failure; -2 when the child exited (e.g. the port was taken). */
static int wait_ready(rh_server *h)
{
    double deadline = now_s() + RH_START_SECONDS;
    while (now_s() < deadline) {
        int status = 0;
        if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
            snprintf(h->msg, sizeof(h->msg), "redis-server on port %d exited at startup (%s %d)",
                     h->port, WIFEXITED(status) ? "status" : "signal",
                     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            append_log_tail(h);
            h->pid = 0;
            return -2;
        }
        if (answers_as_child(h))
            return 0;
        sleep_ms(20);
    }
    snprintf(h->msg, sizeof(h->msg),
             "redis-server (pid %d) did not answer on 127.0.0.1:%d within %.0f s", (int)h->pid,
             h->port, RH_START_SECONDS);
    append_log_tail(h);
    rh_halt(h);
    return -1;
}

int rh_start(rh_server *h)
{
    memset(h, 0, sizeof(*h));
    if (find_exe(h) != 0)
        return -1;
    h->dir = tu_tmpdir();
    if (h->dir == NULL) {
        snprintf(h->msg, sizeof(h->msg), "cannot create a temporary directory");
        return -1;
    }
    for (int i = 0; i < RH_PORT_TRIES; i++) {
        h->port = rh_free_port();
        if (h->port <= 0) {
            snprintf(h->msg, sizeof(h->msg), "no free loopback port");
            break;
        }
        if (spawn(h) != 0)
            break;
        int rc = wait_ready(h);
        if (rc == 0) {
            snprintf(h->url, sizeof(h->url), "redis://127.0.0.1:%d/0", h->port);
            return 0;
        }
        if (rc == -1)
            break;
    }
    rh_stop(h);
    return -1;
}

void rh_halt(rh_server *h)
{
    if (h->pid <= 0)
        return;
    kill(h->pid, SIGCONT); /* a paused server cannot act on SIGTERM */
    kill(h->pid, SIGTERM);
    double deadline = now_s() + RH_STOP_SECONDS;
    int gone = 0;
    while (!gone && now_s() < deadline) {
        gone = waitpid(h->pid, NULL, WNOHANG) == h->pid;
        if (!gone)
            sleep_ms(10);
    }
    if (!gone) {
        kill(h->pid, SIGKILL);
        waitpid(h->pid, NULL, 0);
    }
    h->pid = 0;
    h->paused = 0;
}

void rh_stop(rh_server *h)
{
    rh_halt(h);
    if (h->dir != NULL) {
        tu_rmtree(h->dir);
        free(h->dir);
        h->dir = NULL;
    }
}

int rh_restart(rh_server *h)
{
    if (h->dir == NULL || h->port <= 0) {
        snprintf(h->msg, sizeof(h->msg), "rh_restart: the server was never started");
        return -1;
    }
    rh_halt(h);
    if (spawn(h) != 0)
        return -1;
    return wait_ready(h) == 0 ? 0 : -1;
}

int rh_pause(rh_server *h)
{
    if (h->pid <= 0 || kill(h->pid, SIGSTOP) != 0)
        return -1;
    h->paused = 1;
    return 0;
}

int rh_resume(rh_server *h)
{
    if (h->pid <= 0 || kill(h->pid, SIGCONT) != 0)
        return -1;
    h->paused = 0;
    return 0;
}

redisContext *rh_connect(const rh_server *h)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", h->port, tv);
    if (c == NULL)
        return NULL;
    if (c->err != 0 || redisSetTimeout(c, tv) != REDIS_OK) {
        redisFree(c);
        return NULL;
    }
    return c;
}

int rh_command(const rh_server *h, const char *fmt, ...)
{
    redisContext *c = rh_connect(h);
    if (c == NULL)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    int rc = r != NULL && r->type != REDIS_REPLY_ERROR ? 0 : -1;
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}
