/*
 * state_cache.c - decoded clustering states kept between assigns; see state_cache.h.
 *
 * DESIGN
 * A doubly linked list, most recently used first, under one mutex. Lookups are linear: the
 * byte cap keeps the list short (a state of a few thousand points is already hundreds of KB),
 * and SC_MAX_ENTRIES bounds it outright. States leave the list before they are freed, and are
 * freed after the mutex is released.
 */
#include "state_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SC_MAX_ENTRIES 4096

typedef struct sc_entry {
    struct sc_entry *prev, *next;
    char *id;
    uint64_t version, tag;
    size_t bytes;
    hl_assign_state *s;
} sc_entry;

struct srv_state_cache {
    pthread_mutex_t mu;
    sc_entry *head, *tail;
    size_t bytes, max_bytes, count;
};

size_t srv_state_bytes(const hl_assign_state *s)
{
    if (s == NULL)
        return 0;
    hl_assign_widths w;
    hl_assign_widths_of(s->has_model, &s->model_cfg, &w);
    size_t per_point = s->d + 1 + (size_t)s->n_levels, b = s->cap * per_point * 4;
    for (int l = 0; l < s->n_levels; l++) {
        const hl_assign_level *L = &s->levels[l];
        size_t row = 4 + (size_t)L->width * 2 + w.node + w.S + (L->cmean != NULL ? s->d : 0);
        for (int h = 0; h < HL_MAX_CONV - 1; h++)
            row += w.hidden[h];
        b += L->cap * row * 4;
    }
    return b + sizeof(*s) + HL_ASSIGN_MAX_LEVELS * sizeof(hl_assign_level);
}

hl_status srv_state_cache_new(size_t max_bytes, srv_state_cache **out)
{
    *out = NULL;
    srv_state_cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return HL_NOMEM;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return HL_NOMEM;
    }
    c->max_bytes = max_bytes;
    *out = c;
    return HL_OK;
}

static void entry_free(sc_entry *e)
{
    if (e == NULL)
        return;
    hl_assign_state_free(e->s);
    free(e->id);
    free(e);
}

/* Unlinks e (under the mutex) and pushes it on *grave (a list through ->next). */
static void unlink_entry(srv_state_cache *c, sc_entry *e, sc_entry **grave)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    c->bytes -= e->bytes;
    c->count--;
    e->prev = NULL;
    e->next = *grave;
    *grave = e;
}

static void bury(sc_entry *grave)
{
    while (grave != NULL) {
        sc_entry *n = grave->next;
        entry_free(grave);
        grave = n;
    }
}

void srv_state_cache_free(srv_state_cache *c)
{
    if (c == NULL)
        return;
    bury(c->head);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

hl_assign_state *srv_state_cache_take(srv_state_cache *c, const char *id, uint64_t version,
                                      uint64_t tag)
{
    if (c == NULL || id == NULL)
        return NULL;
    hl_assign_state *s = NULL;
    sc_entry *grave = NULL, *hit = NULL;
    pthread_mutex_lock(&c->mu);
    for (sc_entry *e = c->head, *next = NULL; e != NULL; e = next) {
        next = e->next;
        if (strcmp(e->id, id) != 0)
            continue;
        unlink_entry(c, e, &grave);
        if (e->version == version && e->tag == tag && hit == NULL)
            hit = e;
    }
    pthread_mutex_unlock(&c->mu);
    if (hit != NULL) { /* keep its state, free the rest */
        s = hit->s;
        hit->s = NULL;
    }
    bury(grave);
    return s;
}

void srv_state_cache_put(srv_state_cache *c, const char *id, uint64_t version, uint64_t tag,
                         hl_assign_state *s)
{
    size_t bytes = srv_state_bytes(s);
    if (c == NULL || s == NULL || id == NULL || bytes > c->max_bytes) {
        hl_assign_state_free(s);
        return;
    }
    sc_entry *e = calloc(1, sizeof(*e));
    char *k = strdup(id);
    if (e == NULL || k == NULL) {
        free(e);
        free(k);
        hl_assign_state_free(s);
        return;
    }
    e->id = k;
    e->version = version;
    e->tag = tag;
    e->bytes = bytes;
    e->s = s;
    sc_entry *grave = NULL;
    pthread_mutex_lock(&c->mu);
    for (sc_entry *o = c->head, *next = NULL; o != NULL; o = next) { /* one entry per id */
        next = o->next;
        if (strcmp(o->id, id) == 0)
            unlink_entry(c, o, &grave);
    }
    while (c->tail != NULL && (c->bytes + bytes > c->max_bytes || c->count >= SC_MAX_ENTRIES))
        unlink_entry(c, c->tail, &grave);
    e->next = c->head;
    if (c->head != NULL)
        c->head->prev = e;
    c->head = e;
    if (c->tail == NULL)
        c->tail = e;
    c->bytes += bytes;
    c->count++;
    pthread_mutex_unlock(&c->mu);
    bury(grave);
}

void srv_state_cache_drop(srv_state_cache *c, const char *id)
{
    if (c == NULL || id == NULL)
        return;
    sc_entry *grave = NULL;
    pthread_mutex_lock(&c->mu);
    for (sc_entry *e = c->head, *next = NULL; e != NULL; e = next) {
        next = e->next;
        if (strcmp(e->id, id) == 0)
            unlink_entry(c, e, &grave);
    }
    pthread_mutex_unlock(&c->mu);
    bury(grave);
}
