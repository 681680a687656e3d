/*
 * jobq.c - the bounded FIFO between the HTTP threads (push) and the workers (pop): a ring
 * of job pointers under a uv_mutex with a uv_cond for waiting workers. Full means the
 * submission gets 429; nothing ever grows without bound.
 *
 * Lock order: q->mu is a leaf; jobs are released after it is dropped.
 */
#include "jobs.h"

#include <stdlib.h>
#include <uv.h>

struct srv_jobq {
    uv_mutex_t mu;
    uv_cond_t cv;
    srv_job **ring;
    size_t cap, head, len;
    size_t reserved; /* slots promised to admissions in progress */
    int closed;
};

hl_status srv_jobq_new(size_t capacity, srv_jobq **out)
{
    srv_jobq *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return HL_NOMEM;
    q->ring = calloc(capacity, sizeof(srv_job *));
    q->cap = capacity;
    if (q->ring == NULL || uv_mutex_init(&q->mu) != 0) {
        free(q->ring);
        free(q);
        return HL_NOMEM;
    }
    if (uv_cond_init(&q->cv) != 0) {
        uv_mutex_destroy(&q->mu);
        free(q->ring);
        free(q);
        return HL_NOMEM;
    }
    *out = q;
    return HL_OK;
}

void srv_jobq_free(srv_jobq *q)
{
    if (q == NULL)
        return;
    for (size_t i = 0; i < q->len; i++)
        srv_job_release(q->ring[(q->head + i) % q->cap]);
    uv_cond_destroy(&q->cv);
    uv_mutex_destroy(&q->mu);
    free(q->ring);
    free(q);
}

hl_status srv_jobq_push(srv_jobq *q, srv_job *j)
{
    hl_status st = HL_OK;
    uv_mutex_lock(&q->mu);
    if (q->closed)
        st = HL_UNAVAILABLE;
    else if (q->len + q->reserved >= q->cap)
        st = HL_BUSY;
    else {
        srv_job_retain(j);
        q->ring[(q->head + q->len) % q->cap] = j;
        q->len++;
        uv_cond_signal(&q->cv);
    }
    uv_mutex_unlock(&q->mu);
    return st;
}

hl_status srv_jobq_reserve(srv_jobq *q)
{
    hl_status st = HL_OK;
    uv_mutex_lock(&q->mu);
    if (q->closed)
        st = HL_UNAVAILABLE;
    else if (q->len + q->reserved >= q->cap)
        st = HL_BUSY;
    else
        q->reserved++;
    uv_mutex_unlock(&q->mu);
    return st;
}

void srv_jobq_unreserve(srv_jobq *q)
{
    uv_mutex_lock(&q->mu);
    if (q->reserved > 0)
        q->reserved--;
    uv_mutex_unlock(&q->mu);
}

hl_status srv_jobq_push_reserved(srv_jobq *q, srv_job *j)
{
    hl_status st = HL_OK;
    uv_mutex_lock(&q->mu);
    if (q->reserved > 0)
        q->reserved--;
    if (q->closed) {
        st = HL_UNAVAILABLE;
    } else {
        srv_job_retain(j);
        q->ring[(q->head + q->len) % q->cap] = j;
        q->len++;
        uv_cond_signal(&q->cv);
    }
    uv_mutex_unlock(&q->mu);
    return st;
}

srv_job *srv_jobq_pop(srv_jobq *q)
{
    uv_mutex_lock(&q->mu);
    while (q->len == 0 && !q->closed)
        uv_cond_wait(&q->cv, &q->mu);
    srv_job *j = NULL;
    if (q->len > 0) {
        j = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->len--;
    }
    uv_mutex_unlock(&q->mu);
    return j;
}

int srv_jobq_remove(srv_jobq *q, srv_job *j)
{
    int found = 0;
    uv_mutex_lock(&q->mu);
    for (size_t i = 0; i < q->len; i++) {
        size_t at = (q->head + i) % q->cap;
        if (q->ring[at] != j)
            continue;
        /* Shift the later entries down one slot to keep FIFO order. */
        for (size_t k = i; k + 1 < q->len; k++)
            q->ring[(q->head + k) % q->cap] = q->ring[(q->head + k + 1) % q->cap];
        q->len--;
        found = 1;
        break;
    }
    uv_mutex_unlock(&q->mu);
    if (found)
        srv_job_release(j);
    return found;
}

void srv_jobq_close(srv_jobq *q, srv_job ***left, size_t *n_left)
{
    srv_job **v = NULL;
    size_t n = 0;
    uv_mutex_lock(&q->mu);
    q->closed = 1;
    if (left != NULL && q->len > 0) {
        v = malloc(q->len * sizeof(*v));
        if (v != NULL) {
            for (size_t i = 0; i < q->len; i++)
                v[n++] = q->ring[(q->head + i) % q->cap];
            q->len = 0;
        }
    }
    uv_cond_broadcast(&q->cv);
    uv_mutex_unlock(&q->mu);
    if (left != NULL) {
        *left = v;
        *n_left = n;
    }
}

size_t srv_jobq_length(srv_jobq *q)
{
    uv_mutex_lock(&q->mu);
    size_t n = q->len;
    uv_mutex_unlock(&q->mu);
    return n;
}
