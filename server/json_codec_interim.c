/*
 * json_codec_interim.c - an interim implementation of hl/json_codec.h on plain jansson, used
 * only while proto/src/json_codec.c (the fast codec, written in parallel) is absent from the
 * tree; server/CMakeLists.txt drops this file as soon as that one exists. It follows the
 * header's contract (statuses and fields) but parses the whole body into a jansson tree, so
 * it is slower and uses more memory than the real codec.
 */
#include "hl/json_codec.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void hl_cluster_request_free(hl_cluster_request *r)
{
    if (r == NULL)
        return;
    if (r->ids != NULL) {
        for (size_t i = 0; i < r->x.rows; i++)
            free(r->ids[i]);
        free(r->ids);
    }
    free(r->labels);
    hl_fmatrix_free(&r->x);
    memset(r, 0, sizeof(*r));
}

static hl_status decode_matrix(json_t *emb, const hl_request_limits *lim, hl_fmatrix *x,
                               hl_error *err)
{
    size_t n = json_array_size(emb);
    if (n > lim->max_points)
        return hl_error_set(err, HL_INVAL, "n", "%zu points exceed the limit of %zu", n,
                            lim->max_points);
    if (n < lim->min_points)
        return hl_error_set(err, HL_INVAL, "n", "at least %zu points are needed, got %zu",
                            lim->min_points, n);
    size_t d = n > 0 ? json_array_size(json_array_get(emb, 0)) : 0;
    if (d > lim->max_dim)
        return hl_error_set(err, HL_INVAL, "dim", "dimension %zu exceeds the limit of %zu", d,
                            lim->max_dim);
    size_t cells;
    if (hl_mul_size(n, d, &cells) != HL_OK || cells > SIZE_MAX / sizeof(float))
        return hl_error_set(err, HL_INVAL, "n", "the matrix is too large");
    float *v = malloc(cells > 0 ? cells * sizeof(float) : 1);
    if (v == NULL)
        return hl_error_set(err, HL_NOMEM, "embeddings", "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_array_get(emb, i);
        if (!json_is_array(row) || json_array_size(row) != d || d == 0) {
            free(v);
            return hl_error_set_cell(err, HL_RANGE, "embeddings", i, 0,
                                     "row %zu is not an array of %zu numbers", i, d);
        }
        for (size_t j = 0; j < d; j++) {
            json_t *e = json_array_get(row, j);
            if (!json_is_number(e)) {
                free(v);
                return hl_error_set_cell(err, HL_RANGE, "embeddings", i, j,
                                         "row %zu column %zu is not a number", i, j);
            }
            double val = json_number_value(e);
            float f = (float)val;
            if (!isfinite(f)) {
                free(v);
                return hl_error_set_cell(err, HL_NUMERIC, "embeddings", i, j,
                                         "row %zu column %zu is not finite", i, j);
            }
            v[i * d + j] = f;
        }
    }
    x->data = v;
    x->owned = v;
    x->rows = n;
    x->cols = d;
    return HL_OK;
}

static hl_status decode_ids(json_t *a, size_t n, char ***out, hl_error *err)
{
    if (!json_is_array(a) || json_array_size(a) != n)
        return hl_error_set(err, HL_RANGE, "ids", "ids must be an array of %zu strings", n);
    char **ids = calloc(n > 0 ? n : 1, sizeof(char *));
    if (ids == NULL)
        return hl_error_set(err, HL_NOMEM, "ids", "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(a, i);
        if (!json_is_string(s) || (ids[i] = strdup(json_string_value(s))) == NULL) {
            for (size_t k = 0; k < i; k++)
                free(ids[k]);
            free(ids);
            return hl_error_set(err, HL_RANGE, "ids", "ids[%zu] is not a string", i);
        }
    }
    *out = ids;
    return HL_OK;
}

static hl_status decode_labels(json_t *a, size_t n, int32_t **out, hl_error *err)
{
    if (!json_is_array(a) || json_array_size(a) != n)
        return hl_error_set(err, HL_RANGE, "labels", "labels must be an array of %zu integers", n);
    int32_t *l = malloc((n > 0 ? n : 1) * sizeof(int32_t));
    if (l == NULL)
        return hl_error_set(err, HL_NOMEM, "labels", "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(a, i);
        json_int_t v = json_is_integer(e) ? json_integer_value(e) : INT64_MIN;
        if (v < INT32_MIN || v > INT32_MAX) {
            free(l);
            return hl_error_set(err, HL_RANGE, "labels", "labels[%zu] is not an int32", i);
        }
        l[i] = (int32_t)v;
    }
    *out = l;
    return HL_OK;
}

static hl_status bad_param(hl_error *err, const char *name, const char *what)
{
    char field[48];
    snprintf(field, sizeof(field), "params/%s", name);
    return hl_error_set(err, HL_INVAL, field, "params.%s %s", name, what);
}

static hl_status int_param(json_t *v, const char *name, int *out, int *has, hl_error *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN ||
        json_integer_value(v) > INT32_MAX)
        return bad_param(err, name, "must be an integer");
    *out = (int)json_integer_value(v);
    *has = 1;
    return HL_OK;
}

static hl_status str_param(json_t *v, const char *name, char *out, size_t cap, int *has,
                           hl_error *err)
{
    if (!json_is_string(v) || strlen(json_string_value(v)) >= cap)
        return bad_param(err, name, "must be a short string");
    memcpy(out, json_string_value(v), strlen(json_string_value(v)) + 1);
    *has = 1;
    return HL_OK;
}

static hl_status decode_params(json_t *o, hl_request_params *p, hl_error *err)
{
    if (!json_is_object(o))
        return hl_error_set(err, HL_INVAL, "params", "params must be an object");
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        hl_status st;
        if (strcmp(k, "k") == 0)
            st = int_param(v, k, &p->k, &p->has_k, err);
        else if (strcmp(k, "max_levels") == 0)
            st = int_param(v, k, &p->max_levels, &p->has_max_levels, err);
        else if (strcmp(k, "min_cluster_size") == 0)
            st = int_param(v, k, &p->min_cluster_size, &p->has_min_cluster_size, err);
        else if (strcmp(k, "knn") == 0)
            st = str_param(v, k, p->knn, sizeof(p->knn), &p->has_knn, err);
        else if (strcmp(k, "new_clusters") == 0)
            st = str_param(v, k, p->new_clusters, sizeof(p->new_clusters), &p->has_new_clusters,
                           err);
        else if (strcmp(k, "tau") == 0) {
            st = json_is_number(v) ? HL_OK : bad_param(err, k, "must be a number");
            p->tau = (float)json_number_value(v);
            p->has_tau = st == HL_OK;
        } else if (strcmp(k, "early_stop") == 0) {
            st = json_is_boolean(v) ? HL_OK : bad_param(err, k, "must be true or false");
            p->early_stop = json_is_true(v);
            p->has_early_stop = st == HL_OK;
        } else
            st = bad_param(err, k, "is not a parameter");
        if (st != HL_OK)
            return st;
    }
    return HL_OK;
}

static hl_status decode_object(json_t *root, const hl_request_limits *lim, hl_cluster_request *out,
                               hl_error *err)
{
    json_t *emb = json_object_get(root, "embeddings");
    if (!json_is_array(emb))
        return hl_error_set(err, HL_FORMAT, "embeddings",
                            "\"embeddings\" is missing or not an array");
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v)
    {
        if (strcmp(k, "embeddings") != 0 && strcmp(k, "ids") != 0 && strcmp(k, "labels") != 0 &&
            strcmp(k, "model") != 0 && strcmp(k, "params") != 0)
            return hl_error_set(err, HL_INVAL, k, "unknown field \"%s\"", k);
    }
    hl_status st = decode_matrix(emb, lim, &out->x, err);
    json_t *ids = json_object_get(root, "ids"), *labels = json_object_get(root, "labels");
    json_t *model = json_object_get(root, "model"), *params = json_object_get(root, "params");
    if (st == HL_OK && ids != NULL && !json_is_null(ids))
        st = decode_ids(ids, out->x.rows, &out->ids, err);
    if (st == HL_OK && labels != NULL && !json_is_null(labels))
        st = decode_labels(labels, out->x.rows, &out->labels, err);
    if (st == HL_OK && model != NULL &&
        (!json_is_string(model) || strlen(json_string_value(model)) >= sizeof(out->model)))
        st = hl_error_set(err, HL_INVAL, "model", "model must be a string of at most 64 bytes");
    else if (st == HL_OK && model != NULL)
        memcpy(out->model, json_string_value(model), strlen(json_string_value(model)) + 1);
    if (st == HL_OK && params != NULL)
        st = decode_params(params, &out->params, err);
    return st;
}

hl_status hl_json_request_decode(const void *body, size_t len, const hl_request_limits *lim,
                                 hl_cluster_request *out, hl_error *err)
{
    memset(out, 0, sizeof(*out));
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        return hl_error_set_at(err, HL_FORMAT, "body", (size_t)je.position,
                               "malformed JSON at byte %d: %s", je.position, je.text);
    hl_status st = json_is_object(root)
                       ? decode_object(root, lim, out, err)
                       : hl_error_set(err, HL_FORMAT, "body", "the body must be a JSON object");
    json_decref(root);
    if (st != HL_OK)
        hl_cluster_request_free(out);
    return st;
}

static int parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static hl_status query_pair(const char *k, const char *v, hl_request_params *p, char model[65],
                            size_t *dim, hl_error *err)
{
    int iv;
    if (strcmp(k, "model") == 0) {
        if (v[0] == '\0' || strlen(v) > 64)
            return hl_error_set(err, HL_INVAL, "model", "model must be 1..64 bytes");
        memcpy(model, v, strlen(v) + 1);
    } else if (strcmp(k, "dim") == 0 && dim != NULL) {
        if (parse_int(v, 1, INT32_MAX, &iv) != 0)
            return hl_error_set(err, HL_INVAL, "dim", "dim must be a positive integer");
        *dim = (size_t)iv;
    } else if (strcmp(k, "k") == 0 || strcmp(k, "max_levels") == 0 ||
               strcmp(k, "min_cluster_size") == 0) {
        if (parse_int(v, INT32_MIN, INT32_MAX, &iv) != 0)
            return bad_param(err, k, "must be an integer");
        if (k[0] == 'k') {
            p->k = iv;
            p->has_k = 1;
        } else if (k[1] == 'a') {
            p->max_levels = iv;
            p->has_max_levels = 1;
        } else {
            p->min_cluster_size = iv;
            p->has_min_cluster_size = 1;
        }
    } else if (strcmp(k, "tau") == 0) {
        char *end;
        errno = 0;
        double t = strtod(v, &end);
        if (v[0] == '\0' || *end != '\0' || errno != 0 || !isfinite(t))
            return bad_param(err, k, "must be a number");
        p->tau = (float)t;
        p->has_tau = 1;
    } else if (strcmp(k, "early_stop") == 0) {
        if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0 && strcmp(v, "1") != 0 &&
            strcmp(v, "0") != 0)
            return bad_param(err, k, "must be true or false");
        p->early_stop = v[0] == 't' || v[0] == '1';
        p->has_early_stop = 1;
    } else if (strcmp(k, "knn") == 0) {
        if (strlen(v) >= sizeof(p->knn))
            return bad_param(err, k, "is too long");
        memcpy(p->knn, v, strlen(v) + 1);
        p->has_knn = 1;
    } else {
        return bad_param(err, k, "is not a query parameter");
    }
    return HL_OK;
}

static void pct_decode(char *s)
{
    char *o = s;
    for (char *p = s; *p != '\0'; p++) {
        if (*p == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
            char hex[3] = {p[1], p[2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            p += 2;
        } else {
            *o++ = *p == '+' ? ' ' : *p;
        }
    }
    *o = '\0';
}

hl_status hl_query_decode(const char *query, hl_request_params *params, char model[65], size_t *dim,
                          hl_error *err)
{
    memset(params, 0, sizeof(*params));
    model[0] = '\0';
    if (dim != NULL)
        *dim = 0;
    if (query == NULL || query[0] == '\0')
        return HL_OK;
    char *copy = strdup(query);
    if (copy == NULL)
        return hl_error_set(err, HL_NOMEM, NULL, "out of memory");
    hl_status st = HL_OK;
    char *save = NULL;
    for (char *kv = strtok_r(copy, "&", &save); kv != NULL && st == HL_OK;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        char none[1] = "";
        char *v = none;
        if (eq != NULL) {
            *eq = '\0';
            v = eq + 1;
        }
        pct_decode(kv);
        pct_decode(v);
        st = query_pair(kv, v, params, model, dim, err);
    }
    free(copy);
    return st;
}
