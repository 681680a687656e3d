/* cli.h - helpers shared by the `hilander` sub-commands. */
#ifndef HL_CLI_H
#define HL_CLI_H

#include "hl/lander.h"
#include "hl/status.h"

#include <stdint.h>

/** Monotonic seconds. */
double cli_now(void);

/** Peak resident set size of this process, MiB. */
double cli_peak_rss_mib(void);

/** Online cores, clamped to [1, 64]. */
int cli_default_threads(void);

/**
 * Prints "hilander <cmd>: <message>" for a failed call and returns the exit code: 2 for bad
 * input or arguments, 1 for resource or internal failures.
 */
int cli_fail(const char *cmd, const hl_error *err, hl_status st);

/** Progress printer state (stderr). */
typedef struct cli_progress {
    double start, last_print, last_fraction;
    int last_stage, last_level;
} cli_progress;

/** Sets up `hook` to print progress to stderr unless `quiet`. */
void cli_progress_init(cli_progress *p, int quiet, hl_progress *hook);

/** Loads a model file, or sets *out = NULL for "none"/NULL. Returns 0 or an exit code. */
int cli_load_model(const char *cmd, const char *spec, hl_model **out);

/** cli_load_model that also returns the file's payload CRC (0 for "none"). */
int cli_load_model_crc(const char *cmd, const char *spec, hl_model **out, uint32_t *crc);

/** `hilander train` (cmd_train.c). */
int cli_cmd_train(int argc, char **argv);

/** `hilander assign` and `hilander state-info` (cmd_assign.c). */
int cli_cmd_assign(int argc, char **argv);
int cli_cmd_state_info(int argc, char **argv);

#endif
