/* log.c - JSON-lines logging on stderr; see log.h. */
#include "log.h"

#include "buf.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_level = SRV_LOG_INFO;

void srv_log_set_level(srv_log_level l)
{
    atomic_store(&g_level, (int)l);
}

int srv_log_enabled(srv_log_level l)
{
    return (int)l >= atomic_load(&g_level);
}

void srv_now_rfc3339(char out[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char base[24];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03dZ", base, (int)(ts.tv_nsec / 1000000));
}

double srv_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void srv_log(srv_log_level l, const char *msg, const char *const *kv, int n_kv)
{
    if (!srv_log_enabled(l))
        return;
    char mem[4096];
    srv_fixbuf b;
    srv_fixbuf_init(&b, mem, sizeof(mem));
    char ts[32];
    srv_now_rfc3339(ts);
    srv_fixbuf_puts(&b, "{\"ts\":\"");
    srv_fixbuf_puts(&b, ts);
    srv_fixbuf_puts(&b, "\",\"level\":\"");
    srv_fixbuf_puts(&b, srv_log_level_name(l));
    srv_fixbuf_puts(&b, "\",\"msg\":");
    srv_fixbuf_json_str(&b, msg);
    for (int i = 0; i < n_kv; i++) {
        const char *k = kv[2 * i], *v = kv[2 * i + 1];
        if (v == NULL)
            continue;
        size_t mark = b.len;
        srv_fixbuf_puts(&b, ",\"");
        srv_fixbuf_puts(&b, k);
        srv_fixbuf_puts(&b, "\":");
        if (v[0] == '#')
            srv_fixbuf_puts(&b, v + 1);
        else
            srv_fixbuf_json_str(&b, v);
        if (b.full) { /* drop the field that did not fit, keep the line valid */
            b.len = mark;
            b.full = 0;
            break;
        }
    }
    srv_fixbuf_puts(&b, "}\n");
    if (b.full) {
        b.len = b.cap - 2;
        memcpy(b.p + b.len, "}\n", 2);
        b.len += 2;
    }
    ssize_t w = write(STDERR_FILENO, b.p, b.len);
    (void)w;
}
