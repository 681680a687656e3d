/* parallel.c - fork/join over pthreads with an atomic task counter; see hl/parallel.h. */
#include "hl/parallel.h"

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct par_ctx {
    atomic_size_t next;
    size_t n_tasks;
    hl_task_fn fn;
    void *arg;
} par_ctx;

typedef struct par_worker {
    par_ctx *ctx;
    int thread;
} par_worker;

static void run_tasks(par_ctx *c, int thread)
{
    for (;;) {
        size_t t = atomic_fetch_add(&c->next, 1);
        if (t >= c->n_tasks)
            break;
        c->fn(c->arg, t, thread);
    }
}

static void *worker_main(void *p)
{
    par_worker *w = p;
    run_tasks(w->ctx, w->thread);
    return NULL;
}

int hl_threads_clamp(int n_threads)
{
    if (n_threads < 1)
        return 1;
    if (n_threads > HL_MAX_THREADS)
        return HL_MAX_THREADS;
    return n_threads;
}

int hl_parallel_for(int n_threads, size_t n_tasks, hl_task_fn fn, void *arg)
{
    int nt = hl_threads_clamp(n_threads);
    if ((size_t)nt > n_tasks)
        nt = n_tasks > 0 ? (int)n_tasks : 1;
    par_ctx c;
    atomic_init(&c.next, 0);
    c.n_tasks = n_tasks;
    c.fn = fn;
    c.arg = arg;
    if (nt == 1) {
        run_tasks(&c, 0);
        return 1;
    }
    pthread_t tid[HL_MAX_THREADS];
    par_worker w[HL_MAX_THREADS];
    int started = 0;
    for (int i = 1; i < nt; i++) {
        w[started].ctx = &c;
        w[started].thread = started + 1;
        if (pthread_create(&tid[started], NULL, worker_main, &w[started]) != 0)
            break;
        started++;
    }
    run_tasks(&c, 0);
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    return started + 1;
}

typedef struct sliced_ctx {
    hl_task_fn fn;
    void *arg;
    size_t t0;
} sliced_ctx;

static void sliced_task(void *arg, size_t task, int thread)
{
    sliced_ctx *s = arg;
    s->fn(s->arg, s->t0 + task, thread);
}

hl_status hl__parallel_sliced(int n_threads, size_t n_tasks, size_t slice, hl_task_fn fn, void *arg,
                              const hl_cancel *cancel, const hl_progress *progress, hl_stage stage,
                              int level, double f0, double f1)
{
    if (slice == 0)
        slice = 1;
    for (size_t t0 = 0; t0 < n_tasks; t0 += slice) {
        if (hl_cancel_requested(cancel))
            return HL_CANCELED;
        size_t cnt = n_tasks - t0 < slice ? n_tasks - t0 : slice;
        sliced_ctx s = {fn, arg, t0};
        hl_parallel_for(n_threads, cnt, sliced_task, &s);
        hl_progress_report(progress, stage, level,
                           f0 + (f1 - f0) * (double)(t0 + cnt) / (double)n_tasks);
    }
    return hl_cancel_requested(cancel) ? HL_CANCELED : HL_OK;
}
