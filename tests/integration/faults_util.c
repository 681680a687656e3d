/* faults_util.c - see faults_util.h. */
#include "faults_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static void track(pid_t pid)
{
    if (g_npids < (int)(sizeof(g_pids) / sizeof(g_pids[0])))
        g_pids[g_npids++] = pid;
}

static void untrack(pid_t pid)
{
    for (int i = 0; i < g_npids; i++)
        if (g_pids[i] == pid)
            g_pids[i] = 0;
}

static int redis_ping(int port)
{
    struct timeval tv = {0, 300000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    int ok = 0;
    if (c != NULL && c->err == 0) {
        redisSetTimeout(c, tv);
        redisReply *r = redisCommand(c, "PING");
        ok = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
        if (r != NULL)
            freeReplyObject(r);
    }
    if (c != NULL)
        redisFree(c);
    return ok;
}

static int redis_spawn(redis_proc *r)
{
    char port[16], log[512];
    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(log, sizeof(log), "%s/redis.log", r->dir);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_RDWR);
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", r->aof ? "yes" : "no", "--appendfsync", "always", "--dir", r->dir,
               "--logfile", log, (char *)NULL);
        _exit(127);
    }
    r->pid = pid;
    track(pid);
    for (double t0 = now(); now() - t0 < 10.0; sleep_ms(20)) {
        if (redis_ping(r->port))
            return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            untrack(pid);
            r->pid = 0;
            return -1;
        }
    }
    return -1;
}

int redis_up(redis_proc *r, const char *name, int aof)
{
    memset(r, 0, sizeof(*r));
    r->aof = aof;
    snprintf(r->dir, sizeof(r->dir), "%s/%s", g_tmp, name);
    mkdir(r->dir, 0700);
    for (int i = 0; i < 5; i++) { /* another process may take the port first */
        r->port = free_port();
        snprintf(r->url, sizeof(r->url), "redis://127.0.0.1:%d/0", r->port);
        if (redis_spawn(r) == 0)
            return 0;
    }
    return -1;
}

void redis_down(redis_proc *r)
{
    if (r->pid <= 0)
        return;
    kill(r->pid, SIGTERM);
    int gone = 0;
    for (double t0 = now(); !gone && now() - t0 < 10.0; sleep_ms(10))
        gone = waitpid(r->pid, NULL, WNOHANG) == r->pid;
    if (!gone) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
    }
    untrack(r->pid);
    r->pid = 0;
}

int redis_again(redis_proc *r)
{
    redis_down(r);
    return redis_spawn(r);
}

float *blobs_f32(size_t n, size_t d, uint32_t seed)
{
    size_t k = n / 40 > 0 ? n / 40 : 1;
    float *c = rand_f32(k, d, seed * 7 + 1), *x = rand_f32(n, d, seed * 7 + 2);
    uint32_t s = seed * 2654435761u + 99;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        size_t at = (size_t)(s >> 8) % k;
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = 4.0f * c[at * d + j] + 0.15f * x[i * d + j];
    }
    free(c);
    return x;
}

int write_npy(const char *path, const float *x, size_t n, size_t d, void **npy, size_t *len)
{
    char hdr[128];
    int hl = snprintf(hdr, sizeof(hdr),
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }", n, d);
    while (hl < 117)
        hdr[hl++] = ' ';
    hdr[hl++] = '\n';
    size_t total = 10 + (size_t)hl + n * d * 4;
    unsigned char *p = malloc(total);
    if (p == NULL)
        return -1;
    memcpy(p, "\x93NUMPY\x01\x00", 8);
    p[8] = (unsigned char)(hl & 0xff);
    p[9] = (unsigned char)(hl >> 8);
    memcpy(p + 10, hdr, (size_t)hl);
    memcpy(p + 10 + hl, x, n * d * 4);
    FILE *f = path != NULL ? fopen(path, "wb") : NULL;
    int ok = path == NULL || (f != NULL && fwrite(p, 1, total, f) == total);
    if (f != NULL)
        ok = (fclose(f) == 0) && ok;
    if (npy != NULL) {
        *npy = p;
        *len = total;
    } else {
        free(p);
    }
    return ok ? 0 : -1;
}

int replica_up(server *s, const char *dir_name, const char *replica, const char *url,
               const char *const *extra)
{
    char models[400];
    snprintf(models, sizeof(models), "%s/models", g_tmp);
    mkdir(models, 0700);
    const char *argv[32] = {"--model-dir", models,  "--default-model",  "none", "--redis", url,
                            "--replica",   replica, "--engine-threads", "1"};
    int n = 10;
    for (int i = 0; extra != NULL && extra[i] != NULL && n < 30; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    return start(s, dir_name, argv, NULL);
}

int reap(server *s, double seconds)
{
    int st = 0;
    pid_t w = 0;
    for (double t0 = now(); now() - t0 < seconds && (w = waitpid(s->pid, &st, WNOHANG)) == 0;)
        sleep_ms(20);
    if (w != s->pid)
        return -1;
    untrack(s->pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void kill9(server *s)
{
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    untrack(s->pid);
}

long submit_retry(const int *ports, int nports, int first, const void *npy, size_t len,
                  const char *key, const char *const *extra_hdrs, int tries, char id[64],
                  client_stats *cs)
{
    char idem[160];
    snprintf(idem, sizeof(idem), "Idempotency-Key: %s", key);
    const char *hdrs[8] = {idem};
    int nh = 1;
    for (int i = 0; extra_hdrs != NULL && extra_hdrs[i] != NULL && nh < 7; i++)
        hdrs[nh++] = extra_hdrs[i];
    hdrs[nh] = NULL;
    id[0] = '\0';
    long st = -1;
    for (int t = 0; t < tries; t++) {
        hresp r;
        int port = ports[(first + t) % nports];
        st = http(port, "POST", "/v1/cluster", "application/x-npy", npy, len, hdrs, 0, &r);
        cs->requests++;
        if (st == 202 || st == 200)
            snprintf(id, 64, "%s", jstr(r.json, "id"));
        else if (st != -1 && st != 503)
            cs->undocumented += st != 429 && st != 409; /* 429/409: documented, retried */
        hfree(&r);
        if (st == 202 || st == 200)
            return st;
        cs->retries++;
        sleep_ms(100);
    }
    cs->failed++;
    return st;
}

const char *g_fault_auth;

/* GET with g_fault_auth when set. */
static long get_auth(int port, const char *path, hresp *r)
{
    const char *hdrs[] = {g_fault_auth, NULL};
    return http(port, "GET", path, NULL, NULL, 0, g_fault_auth != NULL ? hdrs : NULL, 0, r);
}

json_t *job_object(int port, const char *id)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    hresp r;
    get_auth(port, path, &r);
    json_t *o = r.status == 200 ? json_incref(r.json) : NULL;
    hfree(&r);
    return o;
}

int poll_done(const int *ports, int nports, const char *id, double seconds, char status[32],
              char replica[64], int *attempts, client_stats *cs)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    status[0] = '\0';
    int k = 0;
    for (double t0 = now(); now() - t0 < seconds; sleep_ms(50)) {
        hresp r;
        long st = get_auth(ports[k % nports], path, &r);
        cs->requests++;
        if (st == 200) {
            snprintf(status, 32, "%s", jstr(r.json, "status"));
            if (replica != NULL)
                snprintf(replica, 64, "%s", jstr(r.json, "replica"));
            if (attempts != NULL)
                *attempts = (int)json_integer_value(json_object_get(r.json, "attempts"));
        } else if (st == -1 || st == 503) {
            cs->retries++;
            k++; /* as a load balancer would: try another replica */
        } else {
            cs->undocumented += st != 404;
        }
        hfree(&r);
        if (strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0 ||
            strcmp(status, "canceled") == 0)
            return 0;
    }
    cs->failed++;
    return -1;
}

int log_count(const char *path, const char *needle)
{
    size_t n;
    char *text = read_file(path, &n);
    if (text == NULL)
        return -1;
    int count = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        count++;
    free(text);
    return count;
}

int log_clean(const char *path)
{
    return log_count(path, "Sanitizer") == 0 && log_count(path, "runtime error") == 0 &&
           log_count(path, "\"level\":\"error\"") == 0;
}
