/* harness.c - see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *g_daemon, *g_cli, *g_root;
char g_tmp[256];
pid_t g_pids[16];
int g_npids;
int g_passed, g_failed;

void kill_servers(void)
{
    for (int i = 0; i < g_npids; i++) {
        if (g_pids[i] > 0) {
            kill(g_pids[i], SIGKILL);
            waitpid(g_pids[i], NULL, 0);
            g_pids[i] = 0;
        }
    }
}

void on_fatal(int sig)
{
    kill_servers();
    signal(sig, SIG_DFL);
    raise(sig);
}

double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- servers ---- */

/* Starts hilanderd with the common flags plus `extra` (NULL-terminated). Returns 0 once the
 * port file exists; -1 if the process exited first (its status in *status). */
int start(server *s, const char *name, const char *const *extra, int *status)
{
    char dir[400], portfile[512];
    snprintf(dir, sizeof(dir), "%s/%s", g_tmp, name);
    mkdir(dir, 0700);
    snprintf(portfile, sizeof(portfile), "%s/port", dir);
    snprintf(s->log, sizeof(s->log), "%s/stderr.log", dir);
    unlink(portfile);
    const char *argv[40] = {g_daemon,      "--listen", "127.0.0.1",      "--port", "0",
                            "--port-file", portfile,   "--http-threads", "4"};
    int n = 9;
    for (int i = 0; extra != NULL && extra[i] != NULL && n < 38; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        execv(g_daemon, (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    s->pid = pid;
    if (g_npids < (int)(sizeof(g_pids) / sizeof(g_pids[0])))
        g_pids[g_npids++] = pid;
    for (double t0 = now(); now() - t0 < 30.0; sleep_ms(20)) {
        FILE *f = fopen(portfile, "r");
        if (f != NULL) {
            int ok = fscanf(f, "%d", &s->port) == 1;
            fclose(f);
            if (ok)
                return 0;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            for (int i = 0; i < g_npids; i++)
                if (g_pids[i] == pid)
                    g_pids[i] = 0;
            if (status != NULL)
                *status = st;
            return -1;
        }
    }
    return -1;
}

/* Runs hilanderd expecting it to refuse to start; returns its exit code and stderr. */
int start_fails(const char *name, const char *const *extra, char *err, size_t errlen)
{
    server s;
    int st = 0;
    if (start(&s, name, extra, &st) == 0)
        return -1;
    FILE *f = fopen(s.log, "r");
    err[0] = '\0';
    if (f != NULL) {
        size_t n = fread(err, 1, errlen - 1, f);
        err[n] = '\0';
        fclose(f);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- HTTP ---- */

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    hresp *r = ud;
    char *b = realloc(r->body, r->len + sz * n + 1);
    if (b == NULL)
        return 0;
    memcpy(b + r->len, p, sz * n);
    r->body = b;
    r->len += sz * n;
    r->body[r->len] = '\0';
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    hresp *r = ud;
    size_t k = sz * n;
    if (r->hlen + k < sizeof(r->hdrs)) {
        memcpy(r->hdrs + r->hlen, p, k);
        r->hlen += k;
        r->hdrs[r->hlen] = '\0';
    }
    return k;
}

typedef struct upload {
    const char *p;
    size_t len, off;
} upload;

static size_t on_read(char *buf, size_t sz, size_t n, void *ud)
{
    upload *u = ud;
    size_t k = sz * n < u->len - u->off ? sz * n : u->len - u->off;
    if (k > 4096)
        k = 4096; /* many small chunks */
    memcpy(buf, u->p + u->off, k);
    u->off += k;
    return k;
}

void hfree(hresp *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/* One request; `hdrs` is a NULL-terminated list of "Name: value" lines. */
long http(int port, const char *method, const char *path, const char *ctype, const void *body,
          size_t len, const char *const *hdrs, int chunked, hresp *r)
{
    memset(r, 0, sizeof(*r));
    CURL *c = curl_easy_init();
    char url[1024];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *h = NULL;
    char ct[128];
    if (ctype != NULL) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
        h = curl_slist_append(h, ct);
    }
    int expect = 0;
    for (int i = 0; hdrs != NULL && hdrs[i] != NULL; i++) {
        h = curl_slist_append(h, hdrs[i]);
        expect |= strncasecmp(hdrs[i], "Expect:", 7) == 0;
    }
    if (!expect) /* no 100-continue round trip unless a test asks for it */
        h = curl_slist_append(h, "Expect:");
    upload u = {body, len, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL && chunked) {
        h = curl_slist_append(h, "Transfer-Encoding: chunked");
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &u);
    } else if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 90L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    else
        r->status = -1;
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (r->body != NULL)
        r->json = json_loadb(r->body, r->len, 0, NULL);
    return r->status;
}

long GET(int port, const char *path, hresp *r)
{
    return http(port, "GET", path, NULL, NULL, 0, NULL, 0, r);
}

/* A response header's value (copied into out), or NULL. */
const char *header(const hresp *r, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    for (const char *p = r->hdrs; *p != '\0';) {
        const char *eol = strstr(p, "\r\n");
        if (eol == NULL)
            break;
        if ((size_t)(eol - p) > nl + 1 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t n = (size_t)(eol - v) < outlen - 1 ? (size_t)(eol - v) : outlen - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return out;
        }
        p = eol + 2;
    }
    return NULL;
}

const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : "";
}

int is_problem(const hresp *r, long status, const char *suffix)
{
    char type[96];
    snprintf(type, sizeof(type), "/problems/%s", suffix);
    char ct[128];
    return r->status == status && r->json != NULL && strcmp(jstr(r->json, "type"), type) == 0 &&
           header(r, "Content-Type", ct, sizeof(ct)) != NULL &&
           strcmp(ct, "application/problem+json") == 0 && jstr(r->json, "instance")[0] != '\0';
}

/* Polls GET /v1/jobs/{id} until its status is one of `want` (comma list); bounded. */
int wait_status(int port, const char *id, const char *want, double seconds, char *got)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    for (double t0 = now(); now() - t0 < seconds; sleep_ms(20)) {
        hresp r;
        GET(port, path, &r);
        snprintf(got, 32, "%s", r.json != NULL ? jstr(r.json, "status") : "?");
        hfree(&r);
        char list[64];
        snprintf(list, sizeof(list), ",%s,", want);
        char needle[40];
        snprintf(needle, sizeof(needle), ",%s,", got);
        if (strstr(list, needle) != NULL)
            return 0;
    }
    return -1;
}

void *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    *len = fread(p, 1, (size_t)n, f);
    p[*len] = '\0'; /* text files are read as strings too */
    fclose(f);
    return p;
}

int copy_file(const char *from, const char *to)
{
    size_t n;
    void *p = read_file(from, &n);
    if (p == NULL)
        return -1;
    FILE *f = fopen(to, "wb");
    int ok = f != NULL && fwrite(p, 1, n, f) == n;
    if (f != NULL)
        fclose(f);
    free(p);
    return ok ? 0 : -1;
}

/* n x d uniform random float32, raw little-endian (distinct per seed). */
float *rand_f32(size_t n, size_t d, uint32_t seed)
{
    float *x = malloc(n * d * sizeof(float));
    uint32_t s = seed * 2654435761u + 7;
    for (size_t i = 0; i < n * d; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    }
    return x;
}

/* Reads a metric's value from /metrics text (the first line starting with `series`). */
double metric(int port, const char *series)
{
    hresp r;
    GET(port, "/metrics", &r);
    double v = -1;
    const char *p = r.body != NULL ? r.body : "";
    size_t n = strlen(series);
    while ((p = strstr(p, series)) != NULL) {
        if ((p == r.body || p[-1] == '\n') && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
        p += n;
    }
    hfree(&r);
    return v;
}
