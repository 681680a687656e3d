/*
 * log.h - JSON lines on stderr: {"ts":...,"level":...,"msg":...,<fields>}.
 *
 * Each line is formatted into a stack buffer and written with one write(2), so lines from
 * different threads never interleave and no lock is taken. Fields are passed as pairs of
 * strings; a value starting with '#' is written as a raw JSON token (number, true, null),
 * everything else as a JSON string.
 *
 * Thread-safety: safe from any thread; the level is set once at start.
 */
#ifndef SRV_LOG_H
#define SRV_LOG_H

#include "config.h"

void srv_log_set_level(srv_log_level l);

/** Whether a line of this level would be written. */
int srv_log_enabled(srv_log_level l);

/**
 * Writes one line. `kv` holds n_kv name/value pairs (2 * n_kv strings; NULL values are
 * skipped). Lines longer than 4 KiB are cut at a field boundary.
 */
void srv_log(srv_log_level l, const char *msg, const char *const *kv, int n_kv);

/** RFC 3339 UTC with milliseconds ("2024-05-01T12:00:00.123Z") for the wall clock now. */
void srv_now_rfc3339(char out[32]);

/** Monotonic seconds. */
double srv_mono(void);

#endif
