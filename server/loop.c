/*
 * loop.c - the event loop: completions, timers, signals; see loop.h.
 *
 * Shutdown (api.md): the first SIGTERM/SIGINT sets ctx->draining (readyz and submissions
 * answer 503 at once) and arms a timer of --drain-seconds; when it fires the listener is
 * quiesced and the loop stops, and main.c finishes the sequence (queued jobs canceled,
 * running jobs finish, waiters resumed, in-flight requests answered, daemon stopped). A
 * second signal cuts the drain period short.
 */
#include "loop.h"

#include "log.h"
#include "store_mem.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct done_id {
    char id[32];
} done_id;

struct srv_loop {
    uv_loop_t loop;
    uv_async_t async;
    uv_timer_t tick, drain;
    uv_signal_t sigterm, sigint;
    uv_mutex_t mu;
    done_id *done;
    size_t n_done, cap_done;
    srv_ctx *ctx;
    srv_http *http;
    unsigned ticks;
    int started;
};

/* Worker side: record the id and poke the loop (called with no lock held). */
static void on_job_done(srv_ctx *ctx, const char *id)
{
    srv_loop *l = ctx->job_done_ud;
    uv_mutex_lock(&l->mu);
    if (l->n_done == l->cap_done) {
        size_t cap = l->cap_done ? l->cap_done * 2 : 64;
        done_id *d = realloc(l->done, cap * sizeof(*d));
        if (d != NULL) {
            l->done = d;
            l->cap_done = cap;
        }
    }
    if (l->n_done < l->cap_done)
        snprintf(l->done[l->n_done++].id, sizeof(l->done[0].id), "%s", id);
    uv_mutex_unlock(&l->mu);
    uv_async_send(&l->async); /* a lost id still wakes its waiters at their deadline */
}

void srv_loop_flush(srv_loop *l)
{
    uv_mutex_lock(&l->mu);
    done_id *d = l->done;
    size_t n = l->n_done;
    l->done = NULL;
    l->n_done = l->cap_done = 0;
    uv_mutex_unlock(&l->mu);
    for (size_t i = 0; i < n && l->http != NULL; i++)
        srv_http_wake_job(l->http, d[i].id);
    free(d);
}

static void on_async(uv_async_t *a)
{
    srv_loop_flush(a->data);
}

static void on_tick(uv_timer_t *t)
{
    srv_loop *l = t->data;
    if (l->http != NULL)
        srv_http_wake_expired(l->http);
    if (++l->ticks % 10 == 0 && srv_store_is_mem(l->ctx->store))
        srv_store_mem_sweep(l->ctx->store);
}

static void on_drain_end(uv_timer_t *t)
{
    srv_loop *l = t->data;
    const char *kv[] = {"inflight", NULL};
    char n[16];
    snprintf(n, sizeof(n), "#%d", l->http != NULL ? srv_http_inflight(l->http) : 0);
    kv[1] = n;
    srv_log(SRV_LOG_INFO, "drain period over: no longer accepting connections", kv, 1);
    if (l->http != NULL)
        srv_http_quiesce(l->http);
    uv_stop(&l->loop);
}

static void on_signal(uv_signal_t *s, int signum)
{
    srv_loop *l = s->data;
    if (!atomic_exchange(&l->ctx->draining, 1)) {
        char d[32];
        snprintf(d, sizeof(d), "#%llu", (unsigned long long)l->ctx->cfg->drain_seconds);
        const char *kv[] = {"signal", signum == SIGTERM ? "SIGTERM" : "SIGINT", "drain_seconds", d};
        srv_log(SRV_LOG_INFO, "draining", kv, 2);
        uv_timer_start(&l->drain, on_drain_end, l->ctx->cfg->drain_seconds * 1000, 0);
    } else {
        srv_log(SRV_LOG_INFO, "second signal: ending the drain period now", NULL, 0);
        uv_timer_start(&l->drain, on_drain_end, 0, 0);
    }
}

hl_status srv_loop_new(srv_ctx *ctx, srv_loop **out)
{
    srv_loop *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return HL_NOMEM;
    if (uv_loop_init(&l->loop) != 0) {
        free(l);
        return HL_INTERNAL;
    }
    if (uv_mutex_init(&l->mu) != 0 || uv_async_init(&l->loop, &l->async, on_async) != 0) {
        uv_loop_close(&l->loop);
        free(l);
        return HL_INTERNAL;
    }
    l->ctx = ctx;
    l->async.data = l;
    uv_timer_init(&l->loop, &l->tick);
    uv_timer_init(&l->loop, &l->drain);
    uv_signal_init(&l->loop, &l->sigterm);
    uv_signal_init(&l->loop, &l->sigint);
    l->tick.data = l->drain.data = l->sigterm.data = l->sigint.data = l;
    ctx->job_done = on_job_done;
    ctx->job_done_ud = l;
    *out = l;
    return HL_OK;
}

hl_status srv_loop_start(srv_loop *l, srv_http *http)
{
    l->http = http;
    if (uv_timer_start(&l->tick, on_tick, 100, 100) != 0 ||
        uv_signal_start(&l->sigterm, on_signal, SIGTERM) != 0 ||
        uv_signal_start(&l->sigint, on_signal, SIGINT) != 0)
        return HL_INTERNAL;
    l->started = 1;
    return HL_OK;
}

void srv_loop_run(srv_loop *l)
{
    uv_run(&l->loop, UV_RUN_DEFAULT);
}

static void noop_close(uv_handle_t *h)
{
    (void)h;
}

void srv_loop_free(srv_loop *l)
{
    if (l == NULL)
        return;
    l->ctx->job_done = NULL;
    uv_close((uv_handle_t *)&l->async, noop_close);
    uv_close((uv_handle_t *)&l->tick, noop_close);
    uv_close((uv_handle_t *)&l->drain, noop_close);
    uv_close((uv_handle_t *)&l->sigterm, noop_close);
    uv_close((uv_handle_t *)&l->sigint, noop_close);
    uv_run(&l->loop, UV_RUN_DEFAULT);
    uv_loop_close(&l->loop);
    uv_mutex_destroy(&l->mu);
    free(l->done);
    free(l);
}
