/*
 * test_cases.c - walks tests/proto/cases/{valid,invalid}/<name>/ (written by
 * tests/make_test_data.py) and checks each decoder against the `expected` file:
 *   decoder: f32 | i32 | raw | model | json | state      dim: N (raw only)
 *   valid:   shape: ... / values: ...  (exact bits)   or the model lines config/name/tensor;
 *            json also ids_hex / labels / model / params (exactly the parameters set);
 *            state: state (n dim levels k tau has_model checksum [name]) / labels / level lines
 *   invalid: status: <hl_status name> / message: <substring of the error message>, and when
 *            present field: / offset: <byte> / cell: <row> <col> / position: none
 *   json:    limits: <max_points> <max_dim> <min_points> (else the API defaults)
 * The .npy, model and state cases are also loaded from disk, whose errors must name the file.
 */
#include "hl/json_codec.h"
#include "hl/modelfile.h"
#include "hl/npy.h"
#include "hl/rawf32.h"
#include "hl/statefile.h"

#include "test_util.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CASES HL_TEST_DATA "/proto/cases"

typedef struct tcase_data {
    char name[256];
    char input[1024];
    unsigned char *in; /* input bytes */
    size_t in_len;
    char *exp; /* the expected file, NUL-terminated */
} tcase_data;

static char *slurp(const char *path, size_t *len)
{
    void *b;
    size_t n;
    if (hl_file_read(path, &b, &n, NULL) != HL_OK)
        return NULL;
    char *s = realloc(b, n + 1);
    s[n] = '\0';
    if (len != NULL)
        *len = n;
    return s;
}

/* The value of the first "key: value" line (copied into out), or NULL. */
static const char *field(const char *exp, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    for (const char *l = exp; l != NULL && *l != '\0';
         l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, key, kl) == 0 && l[kl] == ':' && l[kl + 1] == ' ') {
            const char *v = l + kl + 2, *e = strchr(v, '\n');
            size_t n = e != NULL ? (size_t)(e - v) : strlen(v);
            ck_assert_uint_lt(n, cap);
            memcpy(out, v, n);
            out[n] = '\0';
            return out;
        }
    }
    return NULL;
}

static size_t load_cases(const char *kind, tcase_data **out)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/%s", CASES, kind);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot open %s", dir);
    tcase_data *c = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        c = realloc(c, (n + 1) * sizeof(*c));
        tcase_data *t = &c[n++];
        memset(t, 0, sizeof(*t));
        snprintf(t->name, sizeof(t->name), "%s", de->d_name);
        char p[1024];
        snprintf(p, sizeof(p), "%s/%s/expected", dir, t->name);
        t->exp = slurp(p, NULL);
        ck_assert_msg(t->exp != NULL, "%s: no expected file", t->name);
        const char *ext[] = {"", ".npy", ".bin", ".hlm", ".json", ".hls"};
        for (int k = 0; k < 6 && t->in == NULL; k++) {
            snprintf(t->input, sizeof(t->input), "%s/%s/input%s", dir, t->name, ext[k]);
            t->in = (unsigned char *)slurp(t->input, &t->in_len);
        }
        ck_assert_msg(t->in != NULL, "%s: no input file", t->name);
    }
    closedir(d);
    *out = c;
    return n;
}

static void free_cases(tcase_data *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].in);
        free(c[i].exp);
    }
    free(c);
}

/* Compares decoded floats with the "values:" line, bit for bit. */
static void check_floats(const tcase_data *t, const float *x, size_t n, const char *vals)
{
    char *end;
    const char *p = vals;
    for (size_t i = 0; i < n; i++) {
        float want = strtof(p, &end);
        ck_assert_msg(end != p, "%s: too few expected values", t->name);
        ck_assert_msg(memcmp(&want, &x[i], 4) == 0, "%s: value %zu is %a, want %a", t->name, i,
                      (double)x[i], (double)want);
        p = end;
    }
    strtof(p, &end);
    ck_assert_msg(end == p, "%s: more expected values than decoded", t->name);
}

static void check_shape(const tcase_data *t, size_t rows, size_t cols, int ndim)
{
    char s[64];
    ck_assert_ptr_nonnull(field(t->exp, "shape", s, sizeof(s)));
    size_t a = 0, b = 0;
    int k = sscanf(s, "%zu %zu", &a, &b);
    ck_assert_msg(k == ndim && a == rows && (ndim == 1 || b == cols),
                  "%s: shape %zu x %zu, want %s", t->name, rows, cols, s);
}

static void check_valid_model(const tcase_data *t, const hl_model *m)
{
    char v[4096];
    hl_model_config c;
    unsigned long u[8];
    ck_assert_ptr_nonnull(field(t->exp, "config", v, sizeof(v)));
    ck_assert_int_eq(sscanf(v, "%lu %lu %lu %lu %lu %lu %lu %lu %f", &u[0], &u[1], &u[2], &u[3],
                            &u[4], &u[5], &u[6], &u[7], &c.tau),
                     9);
    ck_assert_int_eq(m->cfg.kind, (int)u[0]);
    ck_assert_int_eq(m->cfg.dim, (int)u[1]);
    ck_assert_int_eq(m->cfg.in_features, (int)u[2]);
    ck_assert_int_eq(m->cfg.edge_features, (int)u[3]);
    ck_assert_int_eq(m->cfg.hidden, (int)u[4]);
    ck_assert_int_eq(m->cfg.n_conv, (int)u[5]);
    ck_assert_int_eq(m->cfg.use_cluster_feat, (int)u[6]);
    ck_assert_int_eq(m->cfg.k, (int)u[7]);
    ck_assert(m->cfg.tau == c.tau);
    ck_assert_str_eq(m->name, field(t->exp, "name", v, sizeof(v)));
    ck_assert_str_eq(m->trained_on, field(t->exp, "trained_on", v, sizeof(v)));
    size_t seen = 0;
    for (const char *l = strstr(t->exp, "\ntensor: "); l != NULL; l = strstr(l + 1, "\ntensor: ")) {
        char name[64];
        int used = 0;
        ck_assert_int_eq(sscanf(l + 9, "%63s%n", name, &used), 1);
        const hl_tensor_view *tv = hl_model_tensor(m, name);
        ck_assert_msg(tv != NULL, "%s: no tensor %s", t->name, name);
        const char *e = strchr(l + 9, '\n');
        size_t n = e != NULL ? (size_t)(e - (l + 9)) : strlen(l + 9);
        char *vals = strndup(l + 9 + used, n - (size_t)used);
        check_floats(t, tv->data, tv->count, vals);
        free(vals);
        seen++;
    }
    ck_assert_uint_eq(seen, m->n_tensors);
}

static hl_request_limits case_limits(const tcase_data *t)
{
    char v[128];
    hl_request_limits lim = {HL_REQUEST_MAX_POINTS_DEFAULT, HL_REQUEST_MAX_DIM_DEFAULT, 2};
    if (field(t->exp, "limits", v, sizeof(v)) != NULL)
        ck_assert_int_eq(sscanf(v, "%zu %zu %zu", &lim.max_points, &lim.max_dim, &lim.min_points),
                         3);
    return lim;
}

/* "name=value ..." of every parameter the request sets, in the table order. */
static void params_text(const hl_request_params *p, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
#define PT_(cond, ...)                                                                             \
    if (cond)                                                                                      \
        n += (size_t)snprintf(out + n, cap - n, __VA_ARGS__);
    PT_(p->has_k, "k=%d ", p->k)
    PT_(p->has_tau, "tau=%.9g ", (double)p->tau)
    PT_(p->has_max_levels, "max_levels=%d ", p->max_levels)
    PT_(p->has_min_cluster_size, "min_cluster_size=%d ", p->min_cluster_size)
    PT_(p->has_knn, "knn=%s ", p->knn)
    PT_(p->has_early_stop, "early_stop=%s ", p->early_stop ? "true" : "false")
    PT_(p->has_new_clusters, "new_clusters=%s ", p->new_clusters)
#undef PT_
    if (n > 0)
        out[n - 1] = '\0';
}

/* The same, from the expected "params:" line (tau goes through float to compare exactly). */
static void expected_params(const char *line, char *out, size_t cap)
{
    hl_request_params p;
    memset(&p, 0, sizeof(p));
    char buf[512];
    ck_assert_uint_lt(strlen(line), sizeof(buf));
    memcpy(buf, line, strlen(line) + 1);
    for (char *tok = strtok(buf, " "); tok != NULL; tok = strtok(NULL, " ")) {
        char *eq = strchr(tok, '=');
        ck_assert_ptr_nonnull(eq);
        *eq = '\0';
        const char *v = eq + 1;
        if (strcmp(tok, "k") == 0)
            p.has_k = 1, p.k = atoi(v);
        else if (strcmp(tok, "tau") == 0)
            p.has_tau = 1, p.tau = strtof(v, NULL);
        else if (strcmp(tok, "max_levels") == 0)
            p.has_max_levels = 1, p.max_levels = atoi(v);
        else if (strcmp(tok, "min_cluster_size") == 0)
            p.has_min_cluster_size = 1, p.min_cluster_size = atoi(v);
        else if (strcmp(tok, "knn") == 0)
            p.has_knn = 1, snprintf(p.knn, sizeof(p.knn), "%s", v);
        else if (strcmp(tok, "early_stop") == 0)
            p.has_early_stop = 1, p.early_stop = strcmp(v, "true") == 0;
        else if (strcmp(tok, "new_clusters") == 0)
            p.has_new_clusters = 1, snprintf(p.new_clusters, sizeof(p.new_clusters), "%s", v);
        else
            ck_abort_msg("unknown parameter %s in expected", tok);
    }
    params_text(&p, out, cap);
}

static void check_valid_json(const tcase_data *t, const char *vals)
{
    hl_request_limits lim = case_limits(t);
    hl_cluster_request r;
    hl_error e;
    hl_error_clear(&e);
    ck_assert_msg(hl_json_request_decode(t->in, t->in_len, &lim, &r, &e) == HL_OK, "%s: %s",
                  t->name, e.msg);
    check_shape(t, r.x.rows, r.x.cols, 2);
    check_floats(t, r.x.data, r.x.rows * r.x.cols, vals);
    char v[4096], got[512], want[512];
    if (field(t->exp, "ids_hex", v, sizeof(v)) != NULL) {
        ck_assert_ptr_nonnull(r.ids);
        char *tok = strtok(v, " ");
        for (size_t i = 0; i < r.x.rows; i++, tok = strtok(NULL, " ")) {
            ck_assert_ptr_nonnull(tok);
            char hex[1024] = "-";
            for (size_t k = 0; r.ids[i][k] != '\0'; k++)
                snprintf(hex + 2 * k, 3, "%02x", (unsigned char)r.ids[i][k]);
            ck_assert_msg(strcmp(hex, tok) == 0, "%s: id %zu is %s, want %s", t->name, i, hex, tok);
        }
        ck_assert_ptr_null(tok);
    } else {
        ck_assert_ptr_null(r.ids);
    }
    if (field(t->exp, "labels", v, sizeof(v)) != NULL) {
        ck_assert_ptr_nonnull(r.labels);
        char *p = v, *end;
        for (size_t i = 0; i < r.x.rows; i++, p = end)
            ck_assert_int_eq(r.labels[i], strtol(p, &end, 10));
    } else {
        ck_assert_ptr_null(r.labels);
    }
    ck_assert_str_eq(r.model, field(t->exp, "model", v, sizeof(v)) != NULL ? v : "");
    expected_params(field(t->exp, "params", v, sizeof(v)) != NULL ? v : "", want, sizeof(want));
    params_text(&r.params, got, sizeof(got));
    ck_assert_msg(strcmp(got, want) == 0, "%s: params \"%s\", want \"%s\"", t->name, got, want);
    hl_cluster_request_free(&r);
}

static void check_valid_state(const tcase_data *t, const hl_assign_state *s)
{
    char want[512], got[512], v[512];
    snprintf(got, sizeof(got), "%zu %zu %d %d %.9g %d %u%s%s", s->n, s->d, s->n_levels, s->k,
             (double)s->tau, s->has_model, (unsigned)s->model_checksum,
             s->model_name[0] != '\0' ? " " : "", s->model_name);
    ck_assert_ptr_nonnull(field(t->exp, "state", want, sizeof(want)));
    /* tau is written with Python's repr: compare it as a number. */
    char *tw = strchr(strchr(strchr(strchr(want, ' ') + 1, ' ') + 1, ' ') + 1, ' ') + 1;
    ck_assert(strtof(tw, NULL) == s->tau);
    char *tg = strchr(strchr(strchr(strchr(got, ' ') + 1, ' ') + 1, ' ') + 1, ' ') + 1;
    ck_assert_str_eq(strchr(tw, ' '), strchr(tg, ' '));
    *tw = *tg = '\0';
    ck_assert_str_eq(want, got);
    ck_assert_ptr_nonnull(field(t->exp, "labels", v, sizeof(v)));
    char *p = v, *end;
    for (size_t i = 0; i < s->n; i++, p = end)
        ck_assert_int_eq(s->labels[i], strtol(p, &end, 10));
    const char *line = t->exp;
    int l = 0;
    while ((line = strstr(line, "\nlevel: ")) != NULL) {
        int ll, width;
        size_t n;
        ck_assert_int_eq(sscanf(line + 8, "%d %zu %d", &ll, &n, &width), 3);
        ck_assert_int_eq(ll, l);
        ck_assert_uint_eq(s->levels[l].n, n);
        ck_assert_int_eq(s->levels[l].width, width);
        l++;
        line++;
    }
    ck_assert_int_eq(l, s->n_levels);
}

static void check_valid(const tcase_data *t)
{
    char dec[16], vals[65536], dim[32];
    ck_assert_ptr_nonnull(field(t->exp, "decoder", dec, sizeof(dec)));
    hl_error e;
    hl_error_clear(&e);
    if (strcmp(dec, "model") == 0) {
        hl_model *m;
        ck_assert_msg(hl_modelfile_decode(t->in, t->in_len, &m, NULL, &e) == HL_OK, "%s: %s",
                      t->name, e.msg);
        check_valid_model(t, m);
        hl_model_free(m);
        ck_assert_int_eq(hl_modelfile_load(t->input, &m, NULL, &e), HL_OK);
        check_valid_model(t, m);
        hl_model_free(m);
        return;
    }
    if (strcmp(dec, "state") == 0) {
        hl_assign_state *s;
        ck_assert_msg(hl_statefile_decode(t->in, t->in_len, &s, &e) == HL_OK, "%s: %s", t->name,
                      e.msg);
        check_valid_state(t, s);
        hl_assign_state_free(s);
        ck_assert_int_eq(hl_statefile_load(t->input, &s, &e), HL_OK);
        check_valid_state(t, s);
        hl_assign_state_free(s);
        return;
    }
    ck_assert_ptr_nonnull(field(t->exp, "values", vals, sizeof(vals)));
    if (strcmp(dec, "json") == 0) {
        check_valid_json(t, vals);
        return;
    }
    if (strcmp(dec, "i32") == 0) {
        int32_t *v;
        size_t n;
        ck_assert_msg(hl_npy_decode_i32(t->in, t->in_len, &v, &n, &e) == HL_OK, "%s: %s", t->name,
                      e.msg);
        check_shape(t, n, 0, 1);
        char *p = vals, *end;
        for (size_t i = 0; i < n; i++, p = end)
            ck_assert_int_eq(v[i], strtol(p, &end, 10));
        free(v);
        return;
    }
    hl_fmatrix m;
    if (strcmp(dec, "raw") == 0) {
        ck_assert_ptr_nonnull(field(t->exp, "dim", dim, sizeof(dim)));
        ck_assert_msg(hl_rawf32_decode(t->in, t->in_len, strtoul(dim, NULL, 10), &m, &e) == HL_OK,
                      "%s: %s", t->name, e.msg);
    } else {
        ck_assert_str_eq(dec, "f32");
        ck_assert_msg(hl_npy_decode_f32(t->in, t->in_len, &m, &e) == HL_OK, "%s: %s", t->name,
                      e.msg);
    }
    check_shape(t, m.rows, m.cols, 2);
    check_floats(t, m.data, m.rows * m.cols, vals);
    hl_fmatrix_free(&m);
}

/* Runs the case's decoder on bytes, or on the file when from_file is set. */
static hl_status run_decoder(const tcase_data *t, const char *dec, int from_file, hl_error *e)
{
    char dim[32];
    hl_fmatrix m;
    hl_model *model = NULL;
    hl_assign_state *state = NULL;
    int32_t *v = NULL;
    size_t n;
    hl_status st;
    if (strcmp(dec, "f32") == 0)
        st = from_file ? hl_npy_load_f32(t->input, &m, e)
                       : hl_npy_decode_f32(t->in, t->in_len, &m, e);
    else if (strcmp(dec, "i32") == 0)
        st = from_file ? hl_npy_load_i32(t->input, &v, &n, e)
                       : hl_npy_decode_i32(t->in, t->in_len, &v, &n, e);
    else if (strcmp(dec, "model") == 0)
        st = from_file ? hl_modelfile_load(t->input, &model, NULL, e)
                       : hl_modelfile_decode(t->in, t->in_len, &model, NULL, e);
    else if (strcmp(dec, "state") == 0)
        st = from_file ? hl_statefile_load(t->input, &state, e)
                       : hl_statefile_decode(t->in, t->in_len, &state, e);
    else if (strcmp(dec, "json") == 0) {
        hl_request_limits lim = case_limits(t);
        hl_cluster_request r;
        st = hl_json_request_decode(t->in, t->in_len, &lim, &r, e);
        ck_assert(r.x.data == NULL && r.ids == NULL && r.labels == NULL && r.model[0] == '\0');
    } else {
        ck_assert_str_eq(dec, "raw");
        ck_assert_ptr_nonnull(field(t->exp, "dim", dim, sizeof(dim)));
        st = hl_rawf32_decode(t->in, t->in_len, strtoul(dim, NULL, 10), &m, e);
    }
    ck_assert_msg(st != HL_OK, "%s: decoded, but should fail", t->name);
    ck_assert_ptr_null(v);
    ck_assert_ptr_null(model);
    ck_assert_ptr_null(state);
    return st;
}

/* The optional field:/offset:/cell:/position: lines of an invalid case. */
static void check_position(const tcase_data *t, const hl_error *e)
{
    char v[64];
    size_t a, b;
    if (field(t->exp, "field", v, sizeof(v)) != NULL)
        ck_assert_msg(strcmp(e->field, v) == 0, "%s: field \"%s\", want \"%s\"", t->name, e->field,
                      v);
    if (field(t->exp, "offset", v, sizeof(v)) != NULL) {
        ck_assert_int_eq(sscanf(v, "%zu", &a), 1);
        ck_assert_msg(e->has_offset && !e->has_col && e->offset == a,
                      "%s: offset %zu (has %d, col %d), want %zu", t->name, e->offset,
                      e->has_offset, e->has_col, a);
    }
    if (field(t->exp, "cell", v, sizeof(v)) != NULL) {
        ck_assert_int_eq(sscanf(v, "%zu %zu", &a, &b), 2);
        ck_assert_msg(e->has_offset && e->has_col && e->offset == a && e->col == b,
                      "%s: cell (%zu, %zu) (has %d/%d), want (%zu, %zu)", t->name, e->offset,
                      e->col, e->has_offset, e->has_col, a, b);
    }
    if (field(t->exp, "position", v, sizeof(v)) != NULL)
        ck_assert_msg(!e->has_offset && !e->has_col, "%s: has a position", t->name);
}

static void check_invalid(const tcase_data *t)
{
    char dec[16], status[32], msg[256];
    ck_assert_ptr_nonnull(field(t->exp, "decoder", dec, sizeof(dec)));
    ck_assert_ptr_nonnull(field(t->exp, "status", status, sizeof(status)));
    ck_assert_ptr_nonnull(field(t->exp, "message", msg, sizeof(msg)));
    for (int from_file = 0; from_file < 2; from_file++) {
        if (from_file && (strcmp(dec, "raw") == 0 || strcmp(dec, "json") == 0))
            break;
        hl_error e;
        hl_error_clear(&e);
        hl_status st = run_decoder(t, dec, from_file, &e);
        ck_assert_msg(strcmp(hl_status_name(st), status) == 0, "%s: status %s, want %s (%s)",
                      t->name, hl_status_name(st), status, e.msg);
        ck_assert_int_eq(e.code, st);
        ck_assert_msg(strstr(e.msg, msg) != NULL, "%s: message \"%s\" lacks \"%s\"", t->name, e.msg,
                      msg);
        ck_assert_msg(strchr(e.msg, '\n') == NULL, "%s: message is not one line", t->name);
        if (!from_file)
            check_position(t, &e);
        if (from_file)
            ck_assert_msg(strncmp(e.msg, t->input, strlen(t->input)) == 0,
                          "%s: \"%s\" does not name the file", t->name, e.msg);
    }
}

START_TEST(test_valid_cases)
{
    tcase_data *c;
    size_t n = load_cases("valid", &c);
    ck_assert_uint_ge(n, 25);
    for (size_t i = 0; i < n; i++)
        check_valid(&c[i]);
    free_cases(c, n);
}
END_TEST

START_TEST(test_invalid_cases)
{
    tcase_data *c;
    size_t n = load_cases("invalid", &c);
    ck_assert_uint_ge(n, 116);
    for (size_t i = 0; i < n; i++)
        check_invalid(&c[i]);
    free_cases(c, n);
}
END_TEST

Suite *cases_suite(void);
Suite *cases_suite(void)
{
    Suite *s = suite_create("cases");
    TCase *tc = tcase_create("cases");
    tcase_add_test(tc, test_valid_cases);
    tcase_add_test(tc, test_invalid_cases);
    suite_add_tcase(s, tc);
    return s;
}
