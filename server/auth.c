/*
 * auth.c - see auth.h.
 *
 * Lock order: a->mu guards the token buckets only; it is a leaf (no other lock, no store
 * call and no logging while it is held).
 */
#include "auth.h"

#include "config.h"
#include "log.h"
#include "sha256.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define MAX_KEYS 4096

typedef struct key_entry {
    char name[64];
    unsigned char hash[32];
    double tokens, last; /* bucket: tokens left, monotonic time of the last refill */
} key_entry;

struct srv_auth {
    key_entry *v;
    size_t n;
    int rate;
    uv_mutex_t mu;
};

static int token68(const char *k, size_t n)
{
    size_t i = 0;
    while (i < n && (isalnum((unsigned char)k[i]) || strchr("-._~+/", k[i]) != NULL))
        i++;
    if (i == 0)
        return 0;
    while (i < n && k[i] == '=')
        i++;
    return i == n;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Parses "NAME sha256:HEX" into e; returns NULL or what is wrong. */
static const char *parse_line(char *line, key_entry *e)
{
    char *name = line, *sp = strchr(line, ' ');
    if (sp == NULL)
        return "expected 'NAME sha256:HEX'";
    *sp = '\0';
    if (!srv_key_name_ok(name))
        return "the name must be 1-63 characters of A-Z a-z 0-9 . _ -";
    const char *h = sp + 1;
    while (*h == ' ')
        h++;
    if (strncmp(h, "sha256:", 7) != 0)
        return "the hash must start with 'sha256:'";
    h += 7;
    size_t hl = strlen(h);
    while (hl > 0 && (h[hl - 1] == ' ' || h[hl - 1] == '\t'))
        hl--;
    if (hl != 64)
        return "the hash must be 64 lower-case hex digits";
    for (int i = 0; i < 32; i++) {
        int a = hexval(h[2 * i]), b = hexval(h[2 * i + 1]);
        if (a < 0 || b < 0)
            return "the hash must be 64 lower-case hex digits";
        e->hash[i] = (unsigned char)(a * 16 + b);
    }
    snprintf(e->name, sizeof(e->name), "%s", name);
    return NULL;
}

/* Reads every line of f into a; returns HL_OK or an error naming path:line. */
static hl_status read_keys(FILE *f, const char *path, srv_auth *a, hl_error *err)
{
    char line[512];
    int lineno = 0;
    while (fgets(line, sizeof(line), f) != NULL) { /* bounded by the file */
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof(line) - 1 && line[len - 1] != '\n')
            return hl_error_set(err, HL_INVAL, "api_keys", "%s:%d: line too long", path, lineno);
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        if (a->n == MAX_KEYS)
            return hl_error_set(err, HL_INVAL, "api_keys", "%s:%d: more than %d keys", path, lineno,
                                MAX_KEYS);
        key_entry *e = &a->v[a->n];
        const char *why = parse_line(line, e);
        if (why != NULL)
            return hl_error_set(err, HL_INVAL, "api_keys", "%s:%d: %s", path, lineno, why);
        for (size_t i = 0; i < a->n; i++)
            if (strcmp(a->v[i].name, e->name) == 0)
                return hl_error_set(err, HL_INVAL, "api_keys", "%s:%d: the name '%s' is used twice",
                                    path, lineno, e->name);
        e->tokens = a->rate > 0 ? (double)a->rate : 0.0;
        e->last = srv_mono();
        a->n++;
    }
    if (ferror(f))
        return hl_error_set(err, HL_IO, "api_keys", "%s: read error", path);
    if (a->n == 0)
        return hl_error_set(err, HL_INVAL, "api_keys", "%s: no keys (every request would get 401)",
                            path);
    return HL_OK;
}

hl_status srv_auth_load(const char *path, int rate, srv_auth **out, hl_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return hl_error_set(err, HL_IO, "api_keys", "%s: %s", path, strerror(errno));
    srv_auth *a = calloc(1, sizeof(*a));
    key_entry *v = calloc(MAX_KEYS, sizeof(key_entry));
    if (a == NULL || v == NULL || uv_mutex_init(&a->mu) != 0) {
        free(a);
        free(v);
        fclose(f);
        return hl_error_set(err, HL_NOMEM, "api_keys", "out of memory");
    }
    a->v = v;
    a->rate = rate;
    hl_status st = read_keys(f, path, a, err);
    fclose(f);
    if (st != HL_OK) {
        srv_auth_free(a);
        return st;
    }
    *out = a;
    return HL_OK;
}

void srv_auth_free(srv_auth *a)
{
    if (a == NULL)
        return;
    memset(a->v, 0, MAX_KEYS * sizeof(key_entry)); /* no hashes left in freed memory */
    free(a->v);
    uv_mutex_destroy(&a->mu);
    free(a);
}

size_t srv_auth_count(const srv_auth *a)
{
    return a != NULL ? a->n : 0;
}

int srv_auth_check(const srv_auth *a, const char *authorization, char name[64])
{
    name[0] = '\0';
    if (a == NULL || authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return 0;
    const char *k = authorization + 7;
    while (*k == ' ')
        k++;
    size_t n = strlen(k);
    while (n > 0 && k[n - 1] == ' ')
        n--;
    if (n == 0 || n > SRV_AUTH_KEY_MAX || !token68(k, n))
        return 0;
    unsigned char d[32];
    srv_sha256(k, n, d);
    long found = -1;
    for (size_t i = 0; i < a->n; i++) { /* every key, no early exit */
        unsigned diff = 0;
        for (int b = 0; b < 32; b++)
            diff |= (unsigned)(d[b] ^ a->v[i].hash[b]);
        long hit = (long)((diff - 1u) >> 8 & 1u); /* 1 when diff == 0, without a branch */
        found = hit && found < 0 ? (long)i : found;
    }
    memset(d, 0, sizeof(d));
    if (found < 0)
        return 0;
    snprintf(name, 64, "%s", a->v[found].name);
    return 1;
}

int srv_auth_rate(srv_auth *a, const char *name, int *retry_after)
{
    *retry_after = 0;
    if (a == NULL || a->rate <= 0)
        return 1;
    key_entry *e = NULL;
    for (size_t i = 0; i < a->n && e == NULL; i++) /* the table is read-only after load */
        if (strcmp(a->v[i].name, name) == 0)
            e = &a->v[i];
    if (e == NULL)
        return 1;
    double now = srv_mono(), cap = (double)a->rate;
    int ok;
    uv_mutex_lock(&a->mu);
    e->tokens += (now - e->last) * (double)a->rate;
    if (e->tokens > cap)
        e->tokens = cap;
    e->last = now;
    ok = e->tokens >= 1.0;
    if (ok)
        e->tokens -= 1.0;
    else
        *retry_after = (int)ceil((1.0 - e->tokens) / (double)a->rate);
    uv_mutex_unlock(&a->mu);
    if (!ok && *retry_after < 1)
        *retry_after = 1;
    return ok;
}

hl_status srv_auth_hash_line(const char *name, const char *key, char *out, size_t len)
{
    size_t n = strlen(key);
    if (!srv_key_name_ok(name) || n < SRV_AUTH_KEY_MIN || n > SRV_AUTH_KEY_MAX || !token68(key, n))
        return HL_INVAL;
    unsigned char d[32];
    char hex[65];
    srv_sha256(key, n, d);
    srv_sha256_hex(d, hex);
    snprintf(out, len, "%s sha256:%s", name, hex);
    return HL_OK;
}
