/*
 * hl/parallel.h - fork/join data parallelism for the engine.
 *
 * The engine splits work into tasks whose boundaries never depend on the thread count, and
 * writes each task's result to its own slot, so results are identical for 1 or N threads.
 * Threads are created per call and joined before it returns; there is no global pool, no
 * lock and no state kept between calls. BLAS is expected to run single-threaded inside
 * tasks (the caller sets that once at start-up).
 *
 *     static void work(void *arg, size_t task, int thread) { ... }
 *     hl_parallel_for(n_threads, n_tasks, work, &ctx);
 */
#ifndef HL_PARALLEL_H
#define HL_PARALLEL_H

#include "hl/status.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Upper bound on the threads one call may use. */
#define HL_MAX_THREADS 64

/** A task body: `task` in [0, n_tasks), `thread` in [0, threads used). */
typedef void (*hl_task_fn)(void *arg, size_t task, int thread);

/**
 * Runs fn(arg, t, thread) for every t in [0, n_tasks) on up to `n_threads` threads (the
 * calling thread included). Tasks are claimed in increasing order. If a thread cannot be
 * created, its share runs on the threads that exist, so the call always completes.
 * Returns the number of threads actually used (>= 1).
 */
int hl_parallel_for(int n_threads, size_t n_tasks, hl_task_fn fn, void *arg);

/** Clamps a requested thread count to [1, HL_MAX_THREADS]; values <= 0 mean 1. */
int hl_threads_clamp(int n_threads);

#ifdef __cplusplus
}
#endif

#endif /* HL_PARALLEL_H */
