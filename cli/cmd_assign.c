/*
 * cmd_assign.c - `hilander assign`: places new points into a clustering saved by
 * `hilander cluster --save-state` (hl/assign.h), keeping every existing cluster id.
 *
 *   hilander assign --state STATE --in new.npy --out labels.npy [--scores-out S.npy]
 *                   [--new-clusters open|unassigned] [--update-state STATE2]
 *                   [--model FILE|none] [--attach any|denser] [--threads N] [--quiet]
 *
 *   hilander state-info --state STATE [--labels-out L.npy] [--levels-out F.npy]
 *
 * The model must be the one that made the state (same file checksum). Exit codes as the
 * other commands: 2 for bad arguments or input (corrupt state, dimension mismatch, wrong
 * model), 1 for resource failures.
 */
#include "cli.h"
#include "opts.h"

#include "hl/assign.h"
#include "hl/npy.h"
#include "hl/statefile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

typedef struct assign_opts {
    const char *state, *in, *out, *scores_out, *update, *model, *new_clusters, *attach;
    int threads, quiet;
} assign_opts;

/* The model and the state must belong together; says which file to pass when not. */
static int check_model(const assign_opts *o, const hl_assign_state *s, const hl_model *m,
                       uint32_t crc)
{
    if (s->has_model && m == NULL) {
        fprintf(stderr,
                "hilander assign: %s was made with model '%s' (crc32c:%08x); pass that model "
                "file with --model\n",
                o->state, s->model_name, (unsigned)s->model_checksum);
        return 2;
    }
    if (!s->has_model && m != NULL) {
        fprintf(stderr, "hilander assign: %s was made without a model; use --model none\n",
                o->state);
        return 2;
    }
    if (m != NULL && crc != s->model_checksum) {
        fprintf(stderr,
                "hilander assign: model %s (crc32c:%08x) is not the model that made %s ('%s', "
                "crc32c:%08x)\n",
                o->model, (unsigned)crc, o->state, s->model_name, (unsigned)s->model_checksum);
        return 2;
    }
    return 0;
}

static int parse_choices(const assign_opts *o, hl_assign_params *ap)
{
    if (strcmp(o->new_clusters, "open") == 0) {
        ap->new_clusters = HL_NEW_OPEN;
    } else if (strcmp(o->new_clusters, "unassigned") == 0) {
        ap->new_clusters = HL_NEW_UNASSIGNED;
    } else {
        fprintf(stderr, "hilander assign: --new-clusters must be open or unassigned, got '%s'\n",
                o->new_clusters);
        return 2;
    }
    if (strcmp(o->attach, "any") == 0) {
        ap->attach = HL_ATTACH_ANY;
    } else if (strcmp(o->attach, "denser") == 0) {
        ap->attach = HL_ATTACH_DENSER;
    } else {
        fprintf(stderr, "hilander assign: --attach must be any or denser, got '%s'\n", o->attach);
        return 2;
    }
    ap->n_threads = o->threads;
    return 0;
}

static int write_outputs(const assign_opts *o, hl_assign_state *s, const hl_assignment *a)
{
    hl_error err;
    hl_error_clear(&err);
    size_t shape[1] = {a->n};
    hl_status st = hl_npy_save_i32(o->out, a->labels, 1, shape, &err);
    if (st == HL_OK && o->scores_out != NULL)
        st = hl_npy_save_f32(o->scores_out, a->scores, 1, shape, &err);
    if (st == HL_OK && o->update != NULL) {
        st = hl_assign_apply(s, a, &err);
        if (st == HL_OK)
            st = hl_statefile_save(s, o->update, &err);
    }
    if (st != HL_OK)
        return cli_fail("assign", &err, st);
    if (!o->quiet) {
        fprintf(stderr,
                "assigned %zu points: %zu joined existing clusters, %zu new clusters, %zu "
                "unassigned",
                a->n, a->n_attached, a->n_new_clusters, a->n_unassigned);
        if (o->update != NULL)
            fprintf(stderr, "; %s has %zu points", o->update, s->n);
        fprintf(stderr, "\n");
    }
    return 0;
}

int cli_cmd_assign(int argc, char **argv)
{
    assign_opts o;
    memset(&o, 0, sizeof(o));
    o.model = "none";
    o.new_clusters = "open";
    o.attach = "any";
    o.threads = cli_default_threads();
    cli_opt opts[] = {
        {"state", CLI_STR, &o.state, 1, 0, 0, "STATE", "clustering state (cluster --save-state)"},
        {"in", CLI_STR, &o.in, 1, 0, 0, "X.npy", "new points, float32/float16 (N, D)"},
        {"out", CLI_STR, &o.out, 1, 0, 0, "L.npy", "labels of the new points, int32 (N,)"},
        {"scores-out", CLI_STR, &o.scores_out, 0, 0, 0, "S.npy",
         "link probability that decided each label, float32 (N,); 0 for a new root"},
        {"new-clusters", CLI_STR, &o.new_clusters, 0, 0, 0, "open|unassigned",
         "points that join no cluster open new ones (default) or get -1"},
        {"update-state", CLI_STR, &o.update, 0, 0, 0, "STATE2",
         "write the state with the new points added (may equal --state)"},
        {"model", CLI_STR, &o.model, 0, 0, 0, "FILE|none",
         "the model that made the state (default none)"},
        {"attach", CLI_STR, &o.attach, 0, 0, 0, "any|denser",
         "stored neighbours: any above tau (default) or only denser ones"},
        {"threads", CLI_INT, &o.threads, 0, 1, 64, "N", "engine threads (default: all cores)"},
        {"quiet", CLI_FLAG, &o.quiet, 0, 0, 0, NULL, "no progress or summary on stderr"},
    };
    int r = cli_opts_parse("assign",
                           "Add new points to a saved clustering; existing cluster ids never "
                           "change.",
                           opts, ARRAY_LEN(opts), argc, argv);
    if (r != CLI_PARSE_OK)
        return r == CLI_PARSE_HELP ? 0 : 2;
    hl_assign_params ap;
    hl_assign_params_default(&ap);
    if (parse_choices(&o, &ap) != 0)
        return 2;
    hl_error err;
    hl_error_clear(&err);
    hl_assign_state *s = NULL;
    hl_model *m = NULL;
    hl_assignment *a = NULL;
    hl_fmatrix x;
    memset(&x, 0, sizeof(x));
    hl_status st = hl_statefile_load(o.state, &s, &err);
    if (st == HL_OK)
        st = hl_npy_load_f32(o.in, &x, &err);
    int rc = st != HL_OK ? cli_fail("assign", &err, st) : 0;
    if (rc == 0)
        rc = cli_load_model_crc("assign", o.model, &m, &ap.model_checksum);
    if (rc == 0)
        rc = check_model(&o, s, m, ap.model_checksum);
    if (rc == 0) {
        cli_progress prog;
        cli_progress_init(&prog, o.quiet, &ap.progress);
        st = hl_assign_run(s, m, x.data, x.rows, x.cols, &ap, &a, &err);
        rc = st != HL_OK ? cli_fail("assign", &err, st) : write_outputs(&o, s, a);
    }
    hl_assignment_free(a);
    hl_model_free(m);
    hl_assign_state_free(s);
    hl_fmatrix_free(&x);
    return rc;
}

int cli_cmd_state_info(int argc, char **argv)
{
    const char *path = NULL, *labels_out = NULL, *levels_out = NULL;
    cli_opt opts[] = {
        {"state", CLI_STR, &path, 1, 0, 0, "STATE", "clustering state file"},
        {"labels-out", CLI_STR, &labels_out, 0, 0, 0, "L.npy",
         "final labels of every stored point, int32 (N,)"},
        {"levels-out", CLI_STR, &levels_out, 0, 0, 0, "F.npy",
         "every level's labels of every stored point, int32 (L, N)"},
    };
    int r = cli_opts_parse("state-info", "Verify and describe a clustering state file.", opts,
                           ARRAY_LEN(opts), argc, argv);
    if (r != CLI_PARSE_OK)
        return r == CLI_PARSE_HELP ? 0 : 2;
    hl_error err;
    hl_error_clear(&err);
    hl_assign_state *s;
    hl_status st = hl_statefile_load(path, &s, &err);
    if (st != HL_OK)
        return cli_fail("state-info", &err, st);
    size_t clusters = 0, unassigned = 0;
    int32_t top = -1;
    for (size_t i = 0; i < s->n; i++) {
        unassigned += s->labels[i] < 0;
        top = s->labels[i] > top ? s->labels[i] : top;
    }
    int32_t *seen = calloc((size_t)top + 2, sizeof(int32_t));
    for (size_t i = 0; seen != NULL && i < s->n; i++)
        if (s->labels[i] >= 0 && !seen[s->labels[i]]++)
            clusters++;
    free(seen);
    printf("points          %zu\ndim             %zu\nlevels          %d (nodes", s->n, s->d,
           s->n_levels);
    for (int l = 0; l < s->n_levels; l++)
        printf(" %zu", s->levels[l].n);
    printf(")\nclusters        %zu (largest id %d, %zu points with -1)\nk               %d\n"
           "tau             %.3f\n",
           clusters, (int)top, unassigned, s->k, (double)s->tau);
    if (s->has_model)
        printf("model           '%s' (%s, crc32c:%08x)\n", s->model_name,
               hl_model_kind_name(s->model_cfg.kind), (unsigned)s->model_checksum);
    else
        printf("model           none\n");
    size_t shape[2] = {s->n, 0};
    if (labels_out != NULL)
        st = hl_npy_save_i32(labels_out, s->labels, 1, shape, &err);
    if (st == HL_OK && levels_out != NULL) {
        int32_t *all = malloc((size_t)s->n_levels * s->n * sizeof(int32_t));
        if (all == NULL) {
            hl_assign_state_free(s);
            return cli_fail("state-info", NULL, HL_NOMEM);
        }
        for (int l = 0; l < s->n_levels; l++)
            memcpy(all + (size_t)l * s->n, s->levels[l].labels, s->n * sizeof(int32_t));
        size_t ls[2] = {(size_t)s->n_levels, s->n};
        st = hl_npy_save_i32(levels_out, all, 2, ls, &err);
        free(all);
    }
    hl_assign_state_free(s);
    return st == HL_OK ? 0 : cli_fail("state-info", &err, st);
}
