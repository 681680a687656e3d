/*
 * json_params.c - the request parameter table shared by the JSON body ("params" object) and
 * the query string, so both accept exactly the same names, types and ranges.
 */
#include "json_internal.h"

#include <limits.h>
#include <stdio.h>

typedef enum ptype { PT_INT, PT_NUMBER, PT_BOOL, PT_STRING } ptype;

typedef struct pdesc {
    const char *name;
    ptype type;
    long long min, max;         /* PT_INT, PT_NUMBER */
    const char *const *choices; /* PT_STRING: NULL-terminated */
} pdesc;

static const char *const knn_choices[] = {"auto", "exact", "ivf", "hnsw", NULL};
static const char *const new_clusters_choices[] = {"open", "unassigned", NULL};

enum { P_K, P_TAU, P_MAX_LEVELS, P_MIN_CLUSTER_SIZE, P_KNN, P_EARLY_STOP, P_NEW_CLUSTERS, P_N };

static const pdesc params[P_N] = {
    [P_K] = {"k", PT_INT, 2, 1024, NULL},
    [P_TAU] = {"tau", PT_NUMBER, 0, 1, NULL},
    [P_MAX_LEVELS] = {"max_levels", PT_INT, 1, 64, NULL},
    [P_MIN_CLUSTER_SIZE] = {"min_cluster_size", PT_INT, 1, INT_MAX, NULL},
    [P_KNN] = {"knn", PT_STRING, 0, 0, knn_choices},
    [P_EARLY_STOP] = {"early_stop", PT_BOOL, 0, 0, NULL},
    [P_NEW_CLUSTERS] = {"new_clusters", PT_STRING, 0, 0, new_clusters_choices},
};

int hl__param_index(const char *name, size_t len)
{
    for (int i = 0; i < P_N; i++)
        if (strlen(params[i].name) == len && memcmp(params[i].name, name, len) == 0)
            return i;
    return -1;
}

const char *hl__param_name(int idx)
{
    return params[idx].name;
}

int hl__param_is_number(int idx)
{
    return params[idx].type == PT_NUMBER;
}

int hl__param_is_int(int idx)
{
    return params[idx].type == PT_INT;
}

int hl__param_is_bool(int idx)
{
    return params[idx].type == PT_BOOL;
}

static const char *type_name(ptype t)
{
    switch (t) {
        case PT_INT:
            return "an integer";
        case PT_NUMBER:
            return "a number";
        case PT_BOOL:
            return "a boolean";
        case PT_STRING:
            return "a string";
    }
    return "?";
}

static hl_status bad(hl_error *err, int has_at, size_t at, const char *field, const char *msg,
                     const char *name, const char *detail)
{
    if (has_at)
        return hl_error_set_at(err, HL_INVAL, field, at, "parameter %s %s%s", name, msg, detail);
    return hl_error_set(err, HL_INVAL, field, "parameter %s %s%s", name, msg, detail);
}

/* Stores a string parameter when it is one of the choices (copied NUL-terminated). */
static int set_choice(char dst[16], const pdesc *pd, const hl__pvalue *v)
{
    for (const char *const *c = pd->choices; *c != NULL; c++) {
        if (strlen(*c) == v->slen && memcmp(*c, v->s, v->slen) == 0) {
            memcpy(dst, *c, v->slen + 1);
            return 1;
        }
    }
    return 0;
}

hl_status hl__param_set(hl_request_params *p, int idx, const hl__pvalue *v, int has_at, size_t at,
                        hl_error *err)
{
    const pdesc *pd = &params[idx];
    char field[48], range[64];
    (void)snprintf(field, sizeof(field), "params/%s", pd->name);
    int type_ok = (pd->type == PT_INT && v->type == HL__PV_INT) ||
                  (pd->type == PT_NUMBER && (v->type == HL__PV_INT || v->type == HL__PV_NUMBER)) ||
                  (pd->type == PT_BOOL && v->type == HL__PV_BOOL) ||
                  (pd->type == PT_STRING && v->type == HL__PV_STRING);
    if (!type_ok)
        return bad(err, has_at, at, field, "must be ", pd->name, type_name(pd->type));
    (void)snprintf(range, sizeof(range), " (%lld..%lld)", pd->min, pd->max);
    switch (idx) {
        case P_K:
        case P_MAX_LEVELS:
        case P_MIN_CLUSTER_SIZE:
            if (v->i < pd->min || v->i > pd->max)
                return bad(err, has_at, at, field, "is out of range", pd->name, range);
            if (idx == P_K) {
                p->k = (int)v->i;
                p->has_k = 1;
            } else if (idx == P_MAX_LEVELS) {
                p->max_levels = (int)v->i;
                p->has_max_levels = 1;
            } else {
                p->min_cluster_size = (int)v->i;
                p->has_min_cluster_size = 1;
            }
            return HL_OK;
        case P_TAU: {
            /* Checked after rounding to float, as the query string's value is parsed. */
            float t = v->type == HL__PV_INT ? (float)v->i : (float)v->d;
            if (!(t >= 0.0f && t <= 1.0f))
                return bad(err, has_at, at, field, "is out of range", pd->name, range);
            p->tau = t;
            p->has_tau = 1;
            return HL_OK;
        }
        case P_EARLY_STOP:
            p->early_stop = v->b != 0;
            p->has_early_stop = 1;
            return HL_OK;
        case P_KNN:
            if (!set_choice(p->knn, pd, v))
                return bad(err, has_at, at, field, "must be one of ", pd->name,
                           "auto, exact, ivf, hnsw");
            p->has_knn = 1;
            return HL_OK;
        default:
            if (!set_choice(p->new_clusters, pd, v))
                return bad(err, has_at, at, field, "must be one of ", pd->name, "open, unassigned");
            p->has_new_clusters = 1;
            return HL_OK;
    }
}

int hl__model_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > 64)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

/* Length of the valid UTF-8 sequence at s[0..n) (RFC 3629: no overlongs, no surrogates,
 * nothing past U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    unsigned cp = c & (0x7Fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0u) != 0x80u)
            return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu))
        return 0;
    return len;
}

void hl__printable(const char *s, size_t n, char *out, size_t cap)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len(u + i, n - i);
        if (l == 0 || (l == 1 && (u[i] < 0x20 || u[i] == 0x7F))) {
            if (k + 1 >= cap)
                break;
            out[k++] = '?';
            i++;
            continue;
        }
        if (k + l >= cap)
            break;
        memcpy(out + k, s + i, l);
        k += l;
        i += l;
    }
    out[k] = '\0';
}
