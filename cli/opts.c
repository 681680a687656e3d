/* opts.c - see opts.h. */
#include "opts.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_opts_usage(const char *cmd, const char *summary, const cli_opt *opts, size_t n_opts)
{
    printf("usage: hilander %s [options]\n%s\n\noptions:\n", cmd, summary);
    for (size_t i = 0; i < n_opts; i++) {
        const cli_opt *o = &opts[i];
        char left[64];
        if (o->type == CLI_FLAG)
            snprintf(left, sizeof(left), "--%s", o->name);
        else
            snprintf(left, sizeof(left), "--%s %s", o->name, o->metavar ? o->metavar : "V");
        printf("  %-26s %s%s\n", left, o->help, o->required ? " (required)" : "");
    }
    printf("  %-26s %s\n", "--help", "show this help");
}

static int set_value(const char *cmd, const cli_opt *o, const char *v)
{
    char *end = NULL;
    errno = 0;
    switch (o->type) {
        case CLI_STR:
            if (*v == '\0') {
                fprintf(stderr, "hilander %s: --%s needs a non-empty value\n", cmd, o->name);
                return -1;
            }
            *(const char **)o->dst = v;
            return 0;
        case CLI_INT: {
            long x = strtol(v, &end, 10);
            if (errno != 0 || end == v || *end != '\0' || (double)x < o->min ||
                (double)x > o->max) {
                fprintf(stderr, "hilander %s: --%s must be an integer in [%.0f, %.0f], got '%s'\n",
                        cmd, o->name, o->min, o->max, v);
                return -1;
            }
            *(int *)o->dst = (int)x;
            return 0;
        }
        case CLI_FLOAT: {
            double x = strtod(v, &end);
            if (errno != 0 || end == v || *end != '\0' || !isfinite(x) || x < o->min ||
                x > o->max) {
                fprintf(stderr, "hilander %s: --%s must be a number in [%g, %g], got '%s'\n", cmd,
                        o->name, o->min, o->max, v);
                return -1;
            }
            *(float *)o->dst = (float)x;
            return 0;
        }
        case CLI_FLAG:
            *(int *)o->dst = 1;
            return 0;
    }
    return -1;
}

int cli_opts_parse(const char *cmd, const char *summary, cli_opt *opts, size_t n_opts, int argc,
                   char **argv)
{
    unsigned char seen[64] = {0};
    if (n_opts > sizeof(seen))
        return CLI_PARSE_ERROR;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli_opts_usage(cmd, summary, opts, n_opts);
            return CLI_PARSE_HELP;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "hilander %s: unexpected argument '%s' (see --help)\n", cmd, a);
            return CLI_PARSE_ERROR;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        size_t k = 0;
        while (k < n_opts &&
               !(strlen(opts[k].name) == len && strncmp(opts[k].name, name, len) == 0))
            k++;
        if (k == n_opts) {
            fprintf(stderr, "hilander %s: unknown option '--%.*s' (see --help)\n", cmd, (int)len,
                    name);
            return CLI_PARSE_ERROR;
        }
        if (seen[k]) {
            fprintf(stderr, "hilander %s: option --%s given twice\n", cmd, opts[k].name);
            return CLI_PARSE_ERROR;
        }
        seen[k] = 1;
        const char *val = NULL;
        if (opts[k].type == CLI_FLAG) {
            if (eq != NULL) {
                fprintf(stderr, "hilander %s: --%s takes no value\n", cmd, opts[k].name);
                return CLI_PARSE_ERROR;
            }
        } else if (eq != NULL) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            fprintf(stderr, "hilander %s: --%s needs a value\n", cmd, opts[k].name);
            return CLI_PARSE_ERROR;
        }
        if (set_value(cmd, &opts[k], val != NULL ? val : "") != 0)
            return CLI_PARSE_ERROR;
    }
    for (size_t k = 0; k < n_opts; k++) {
        if (opts[k].required && !seen[k]) {
            fprintf(stderr, "hilander %s: --%s is required (see --help)\n", cmd, opts[k].name);
            return CLI_PARSE_ERROR;
        }
    }
    (void)summary;
    return CLI_PARSE_OK;
}
