/*
 * opts.h - the table-driven option parser shared by every `hilander` sub-command.
 *
 * Each command declares a table of cli_opt; cli_opts_parse() accepts "--name value" and
 * "--name=value", checks types and ranges, rejects unknown or repeated options and missing
 * required ones, and writes one clear line to stderr on error. "--help" prints the table.
 */
#ifndef HL_CLI_OPTS_H
#define HL_CLI_OPTS_H

#include <stddef.h>

typedef enum cli_opt_type {
    CLI_STR,   /* const char ** */
    CLI_INT,   /* int *, range [min, max] */
    CLI_FLOAT, /* float *, range [min, max] */
    CLI_FLAG,  /* int *, set to 1, takes no value */
} cli_opt_type;

typedef struct cli_opt {
    const char *name; /* without the leading "--" */
    cli_opt_type type;
    void *dst;
    int required;
    double min, max;
    const char *metavar;
    const char *help;
} cli_opt;

/* Outcome of parsing. */
enum { CLI_PARSE_OK = 0, CLI_PARSE_HELP = 1, CLI_PARSE_ERROR = 2 };

/**
 * Parses argv[0..argc) (the arguments after the sub-command) against `opts`. Prints usage
 * on --help (returns CLI_PARSE_HELP) and a one-line "hilander <cmd>: ..." error on failure
 * (returns CLI_PARSE_ERROR).
 */
int cli_opts_parse(const char *cmd, const char *summary, cli_opt *opts, size_t n_opts, int argc,
                   char **argv);

/** Prints the usage of a command to stdout. */
void cli_opts_usage(const char *cmd, const char *summary, const cli_opt *opts, size_t n_opts);

#endif
