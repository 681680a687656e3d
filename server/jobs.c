/*
 * jobs.c - job structs, ids, the state machine and the table of unfinished jobs.
 *
 * Lock order: srv_jobs.mu is a leaf (nothing else is locked while it is held; jobs are
 * released after it is dropped).
 */
#include "jobs.h"

#include "bodies.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <uv.h>

static const char *status_names[SRV_JOB_STATUS_COUNT_] = {"queued", "running", "succeeded",
                                                          "failed", "canceled"};

const char *srv_job_status_name(srv_job_status s)
{
    return (unsigned)s < SRV_JOB_STATUS_COUNT_ ? status_names[s] : "unknown";
}

int srv_job_status_parse(const char *s)
{
    for (int i = 0; s != NULL && i < (int)SRV_JOB_STATUS_COUNT_; i++) {
        if (strcmp(s, status_names[i]) == 0)
            return i;
    }
    return -1;
}

int srv_job_status_terminal(srv_job_status s)
{
    return s == SRV_JOB_SUCCEEDED || s == SRV_JOB_FAILED || s == SRV_JOB_CANCELED;
}

int srv_job_can_transition(srv_job_status from, srv_job_status to)
{
    switch (from) {
        case SRV_JOB_QUEUED:
            return to == SRV_JOB_RUNNING || to == SRV_JOB_CANCELED;
        case SRV_JOB_RUNNING:
            return srv_job_status_terminal(to);
        default:
            return 0;
    }
}

hl_status srv_random_base32(char *out, size_t n)
{
    static const char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz"; /* Crockford */
    unsigned char rnd[64];
    if (n > sizeof(rnd))
        return HL_INVAL;
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(rnd + got, n - got, 0);
        if (r <= 0)
            return HL_IO;
        got += (size_t)r;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[rnd[i] & 31];
    out[n] = '\0';
    return HL_OK;
}

hl_status srv_job_id(char id[32])
{
    id[0] = 'j';
    id[1] = '_';
    return srv_random_base32(id + 2, 26);
}

hl_status srv_job_new(srv_job **out)
{
    srv_job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return HL_NOMEM;
    atomic_init(&j->refs, 1);
    atomic_init(&j->status, SRV_JOB_QUEUED);
    atomic_init(&j->cancel, 0);
    j->last_stage = -1;
    j->last_level = -1;
    hl_status st = srv_job_id(j->id);
    if (st != HL_OK) {
        free(j);
        return st;
    }
    *out = j;
    return HL_OK;
}

void srv_job_retain(srv_job *j)
{
    atomic_fetch_add(&j->refs, 1);
}

static void free_input(srv_job *j)
{
    hl_fmatrix_free(&j->x);
    srv_bodies_put(j->ctx != NULL ? j->ctx->bodies : NULL, j->body, j->body_cap);
    j->body = NULL;
    free(j->ids); /* one block: the pointers and the strings (hl/json_codec.h) */
    j->ids = NULL;
    free(j->labels);
    j->labels = NULL;
}

void srv_job_drop_input(srv_job *j)
{
    free_input(j);
}

void srv_job_release(srv_job *j)
{
    if (j == NULL || atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    free_input(j);
    free(j);
}

hl_status srv_job_transition(srv_store *s, const char *id, srv_job *j, const char *from,
                             srv_job_status to, const srv_field *extra, size_t n_extra,
                             uint64_t ttl)
{
    /* Every state named in `from` must be allowed to reach `to`: terminal states never
     * change, and nothing goes back to queued. */
    char names[64];
    snprintf(names, sizeof(names), "%s", from);
    char *save = NULL;
    for (char *t = strtok_r(names, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        int fs = srv_job_status_parse(t);
        if (fs < 0 || !srv_job_can_transition((srv_job_status)fs, to))
            return HL_INVAL;
    }
    srv_field f[12];
    size_t n = 0;
    f[n++] = (srv_field){"status", srv_job_status_name(to)};
    for (size_t i = 0; i < n_extra && n < 12; i++)
        f[n++] = extra[i];
    hl_status st = s->ops->job_update(s, id, f, n, from, srv_job_status_terminal(to) ? ttl : 0);
    if (st == HL_OK && j != NULL)
        atomic_store(&j->status, (int)to);
    return st;
}

int srv_job_ended_in_store(srv_ctx *ctx, const char *id)
{
    srv_record r;
    hl_status st = ctx->store->ops->job_get(ctx->store, id, &r);
    if (st == HL_NOTFOUND)
        return 1;
    if (st != HL_OK)
        return 0;
    int status = srv_job_status_parse(srv_record_get(&r, "status"));
    srv_record_free(&r);
    return status >= 0 && srv_job_status_terminal((srv_job_status)status);
}

/* ---- table ---- */

struct srv_jobs {
    uv_mutex_t mu;
    srv_job **v;
    size_t n, cap;
};

hl_status srv_jobs_new(srv_jobs **out)
{
    srv_jobs *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return HL_NOMEM;
    if (uv_mutex_init(&t->mu) != 0) {
        free(t);
        return HL_NOMEM;
    }
    *out = t;
    return HL_OK;
}

void srv_jobs_free(srv_jobs *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++)
        srv_job_release(t->v[i]);
    free(t->v);
    uv_mutex_destroy(&t->mu);
    free(t);
}

hl_status srv_jobs_add(srv_jobs *t, srv_job *j)
{
    hl_status st = HL_OK;
    uv_mutex_lock(&t->mu);
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        srv_job **v = realloc(t->v, cap * sizeof(*v));
        if (v == NULL)
            st = HL_NOMEM;
        else {
            t->v = v;
            t->cap = cap;
        }
    }
    if (st == HL_OK) {
        srv_job_retain(j);
        t->v[t->n++] = j;
    }
    uv_mutex_unlock(&t->mu);
    return st;
}

srv_job *srv_jobs_find(srv_jobs *t, const char *id)
{
    srv_job *found = NULL;
    uv_mutex_lock(&t->mu);
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->v[i]->id, id) == 0) {
            found = t->v[i];
            srv_job_retain(found);
            break;
        }
    }
    uv_mutex_unlock(&t->mu);
    return found;
}

void srv_jobs_remove(srv_jobs *t, const char *id)
{
    srv_job *gone = NULL;
    uv_mutex_lock(&t->mu);
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->v[i]->id, id) == 0) {
            gone = t->v[i];
            t->v[i] = t->v[--t->n];
            break;
        }
    }
    uv_mutex_unlock(&t->mu);
    srv_job_release(gone);
}

size_t srv_jobs_snapshot(srv_jobs *t, srv_job **out, size_t max)
{
    size_t n = 0;
    uv_mutex_lock(&t->mu);
    for (size_t i = 0; i < t->n && n < max; i++) {
        srv_job_retain(t->v[i]);
        out[n++] = t->v[i];
    }
    uv_mutex_unlock(&t->mu);
    return n;
}

size_t srv_jobs_count(srv_jobs *t)
{
    uv_mutex_lock(&t->mu);
    size_t n = t->n;
    uv_mutex_unlock(&t->mu);
    return n;
}
