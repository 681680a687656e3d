/*
 * store_mem.c - the embedded store: a hash table of entries with TTLs, a byte cap and LRU
 * eviction; see store.h for the contract.
 *
 * DESIGN
 * Every key lives in one chained hash table keyed by (kind, key) and on one LRU list (most
 * recently used first). Bytes are accounted per entry (key, value, a fixed overhead). When
 * a write would pass the cap, eviction walks the LRU from the cold end twice: first only
 * results, then clustering states, cache and idempotency entries and terminal job records.
 * Queued inputs, records of unfinished jobs, owner sets (per-key job limits) and locks are
 * never evicted; if there is
 * still no room, the write fails with HL_NOMEM. Result and input bytes are immutable refcounted
 * blobs: they are copied in before the lock is taken and copied out after it is released (the
 * reader holds a reference meanwhile), so no big allocation or memcpy ever happens under the lock.
 * A clustering state's base blob is immutable too: state_clone gives the clone's entry another
 * reference to the source's base (deltas are new blobs of each entry), so a cache hit never
 * copies a state. A shared base is accounted in full in every entry that holds it: the byte
 * count may overstate the memory in use (eviction can start early) but never understates it,
 * and each entry's bytes stay its own whichever of them is evicted or deleted first.
 *
 * Lock order: one mutex (s->mu) guards the table, the LRU and the byte count; no other lock
 * is taken while it is held. Blobs are freed after the mutex is released.
 */
#include "store_mem.h"

#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

enum { K_JOB = 0, K_RESULT, K_INPUT, K_CACHE, K_IDEM, K_OWNER, K_STATE, K_LOCK };

#define ENTRY_OVERHEAD 96

typedef struct blob {
    atomic_size_t refs;
    size_t len;
    unsigned char data[];
} blob;

typedef struct entry {
    struct entry *hnext;
    struct entry *prev, *next; /* LRU */
    int kind;
    char *key;
    uint64_t hash;
    double expires; /* 0 = never */
    size_t bytes;
    blob *blob;       /* K_RESULT, K_INPUT, K_STATE (the chain's base) */
    uint64_t version; /* K_STATE: current version, its tag, the deltas after the base */
    uint64_t tag;
    blob **deltas; /* SRV_STATE_MAX_DELTAS slots, or NULL */
    size_t n_deltas, delta_bytes;
    char *str;      /* K_CACHE, K_IDEM, K_OWNER ("id@seconds " per member), K_LOCK (token) */
    srv_record rec; /* K_JOB */
} entry;

typedef struct mem_store {
    srv_store base;
    uv_mutex_t mu;
    entry **buckets;
    size_t nbuckets, count;
    entry *head, *tail;
    size_t bytes, max_bytes;
    double (*now)(void *ud);
    void *now_ud;
} mem_store;

static double mono_now(void *ud)
{
    (void)ud;
    return srv_mono();
}

static void blob_unref(blob *b)
{
    if (b != NULL && atomic_fetch_sub(&b->refs, 1) == 1)
        free(b);
}

static blob *blob_new(const void *data, size_t len)
{
    blob *b = malloc(sizeof(blob) + len);
    if (b == NULL)
        return NULL;
    atomic_init(&b->refs, 1);
    b->len = len;
    if (len > 0)
        memcpy(b->data, data, len);
    return b;
}

static uint64_t hash_key(int kind, const char *key)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)kind; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

static void entry_free(entry *e)
{
    if (e == NULL)
        return;
    free(e->key);
    blob_unref(e->blob);
    for (size_t i = 0; e->deltas != NULL && i < e->n_deltas; i++)
        blob_unref(e->deltas[i]);
    free(e->deltas);
    free(e->str);
    srv_record_free(&e->rec);
    free(e);
}

static size_t record_bytes(const srv_record *r)
{
    size_t b = 0;
    for (size_t i = 0; i < r->n; i++)
        b += strlen(r->names[i]) + strlen(r->values[i]) + 2 + 2 * sizeof(char *);
    return b;
}

static size_t entry_size(const entry *e)
{
    size_t b = ENTRY_OVERHEAD + strlen(e->key) + 1;
    if (e->blob != NULL)
        b += e->blob->len;
    b += e->delta_bytes + (e->deltas != NULL ? SRV_STATE_MAX_DELTAS * sizeof(blob *) : 0);
    if (e->str != NULL)
        b += strlen(e->str) + 1;
    return b + record_bytes(&e->rec);
}

/* ---- table and LRU, all under s->mu ---- */

static void lru_unlink(mem_store *s, entry *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        s->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        s->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(mem_store *s, entry *e)
{
    e->prev = NULL;
    e->next = s->head;
    if (s->head != NULL)
        s->head->prev = e;
    s->head = e;
    if (s->tail == NULL)
        s->tail = e;
}

static entry **find_slot(mem_store *s, int kind, const char *key, uint64_t h)
{
    entry **pp = &s->buckets[h & (s->nbuckets - 1)];
    while (*pp != NULL &&
           !((*pp)->hash == h && (*pp)->kind == kind && strcmp((*pp)->key, key) == 0))
        pp = &(*pp)->hnext;
    return pp;
}

/* Unlinks e from the table and the LRU and pushes it on *grave for freeing after unlock. */
static void remove_entry(mem_store *s, entry *e, entry **grave)
{
    entry **pp = find_slot(s, e->kind, e->key, e->hash);
    if (*pp == e)
        *pp = e->hnext;
    lru_unlink(s, e);
    s->bytes -= e->bytes;
    s->count--;
    e->hnext = *grave;
    *grave = e;
}

static void bury(entry *grave)
{
    while (grave != NULL) {
        entry *n = grave->hnext;
        entry_free(grave);
        grave = n;
    }
}

static int expired(mem_store *s, const entry *e)
{
    return e->expires > 0 && s->now(s->now_ud) >= e->expires;
}

/* Looks a live entry up (dropping it if expired) and marks it recently used. */
static entry *lookup(mem_store *s, int kind, const char *key, entry **grave)
{
    uint64_t h = hash_key(kind, key);
    entry *e = *find_slot(s, kind, key, h);
    if (e == NULL)
        return NULL;
    if (expired(s, e)) {
        remove_entry(s, e, grave);
        return NULL;
    }
    lru_unlink(s, e);
    lru_push_front(s, e);
    return e;
}

static int is_terminal_job(const entry *e)
{
    const char *st = srv_record_get(&e->rec, "status");
    return st != NULL && (strcmp(st, "succeeded") == 0 || strcmp(st, "failed") == 0 ||
                          strcmp(st, "canceled") == 0);
}

static int evictable(const entry *e, int pass)
{
    if (pass == 0)
        return e->kind == K_RESULT;
    if (e->kind == K_CACHE || e->kind == K_IDEM || e->kind == K_STATE)
        return 1;
    return e->kind == K_JOB && is_terminal_job(e);
}

/* Makes room for `need` more bytes, skipping `keep` (the entry being rewritten). */
static hl_status make_room(mem_store *s, size_t need, const entry *keep, entry **grave)
{
    for (int pass = 0; pass < 2 && s->bytes + need > s->max_bytes; pass++) {
        entry *e = s->tail;
        while (e != NULL && s->bytes + need > s->max_bytes) {
            entry *prev = e->prev;
            if (e != keep && evictable(e, pass))
                remove_entry(s, e, grave);
            e = prev;
        }
    }
    return s->bytes + need > s->max_bytes ? HL_NOMEM : HL_OK;
}

static void grow(mem_store *s)
{
    if (s->count < s->nbuckets)
        return;
    size_t nb = s->nbuckets * 2;
    entry **b = calloc(nb, sizeof(entry *));
    if (b == NULL)
        return; /* keep the old table: longer chains, still correct */
    for (size_t i = 0; i < s->nbuckets; i++) {
        entry *e = s->buckets[i];
        while (e != NULL) {
            entry *n = e->hnext;
            e->hnext = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = n;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
}

/* Links a fully built entry (hash and bytes set) into the table and the LRU. */
static void link_entry(mem_store *s, entry *e)
{
    grow(s);
    entry **slot = &s->buckets[e->hash & (s->nbuckets - 1)];
    e->hnext = *slot;
    *slot = e;
    lru_push_front(s, e);
    s->bytes += e->bytes;
    s->count++;
}

/* Inserts a fully built entry `e` (replacing any entry with its key unless nx). Takes e. */
static hl_status insert(mem_store *s, entry *e, int nx, char **existing)
{
    entry *grave = NULL;
    hl_status st = HL_OK;
    e->hash = hash_key(e->kind, e->key);
    e->bytes = entry_size(e);
    uv_mutex_lock(&s->mu);
    entry *old = lookup(s, e->kind, e->key, &grave);
    if (old != NULL && nx) {
        st = HL_BUSY;
        if (existing != NULL)
            *existing = old->str != NULL ? strdup(old->str) : NULL;
    } else {
        if (old != NULL)
            remove_entry(s, old, &grave);
        st = make_room(s, e->bytes, NULL, &grave);
        if (st == HL_OK) {
            link_entry(s, e);
            e = NULL;
        }
    }
    uv_mutex_unlock(&s->mu);
    entry_free(e);
    bury(grave);
    return st;
}

static entry *entry_new(int kind, const char *key, uint64_t ttl, mem_store *s)
{
    entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->kind = kind;
    e->key = strdup(key);
    if (e->key == NULL) {
        free(e);
        return NULL;
    }
    e->expires = ttl > 0 ? s->now(s->now_ud) + (double)ttl : 0.0;
    return e;
}

/* ---- records ---- */

/* Sets or adds one field (copies). */
static hl_status record_set(srv_record *r, const char *name, const char *value)
{
    char *v = strdup(value != NULL ? value : "");
    if (v == NULL)
        return HL_NOMEM;
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->names[i], name) == 0) {
            free(r->values[i]);
            r->values[i] = v;
            return HL_OK;
        }
    }
    char *nm = strdup(name);
    char **nn = realloc(r->names, (r->n + 1) * sizeof(char *));
    if (nn != NULL)
        r->names = nn;
    char **nv = realloc(r->values, (r->n + 1) * sizeof(char *));
    if (nv != NULL)
        r->values = nv;
    if (nm == NULL || nn == NULL || nv == NULL) {
        free(nm);
        free(v);
        return HL_NOMEM;
    }
    r->names[r->n] = nm;
    r->values[r->n] = v;
    r->n++;
    return HL_OK;
}

static hl_status record_copy(const srv_record *src, srv_record *dst)
{
    memset(dst, 0, sizeof(*dst));
    for (size_t i = 0; i < src->n; i++) {
        if (record_set(dst, src->names[i], src->values[i]) != HL_OK) {
            srv_record_free(dst);
            return HL_NOMEM;
        }
    }
    return HL_OK;
}

/* ---- ops ---- */

static hl_status m_job_create(srv_store *base, const char *id, const srv_field *f, size_t n)
{
    mem_store *s = (mem_store *)base;
    entry *e = entry_new(K_JOB, id, 0, s);
    if (e == NULL)
        return HL_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (record_set(&e->rec, f[i].name, f[i].value) != HL_OK) {
            entry_free(e);
            return HL_NOMEM;
        }
    }
    return insert(s, e, 1, NULL);
}

static hl_status m_job_get(srv_store *base, const char *id, srv_record *out)
{
    mem_store *s = (mem_store *)base;
    entry *grave = NULL;
    memset(out, 0, sizeof(*out));
    uv_mutex_lock(&s->mu);
    entry *e = lookup(s, K_JOB, id, &grave);
    hl_status st = e == NULL ? HL_NOTFOUND : record_copy(&e->rec, out);
    uv_mutex_unlock(&s->mu);
    bury(grave);
    return st;
}

static int status_in(const char *status, const char *list)
{
    size_t n = strlen(status);
    for (const char *p = list; *p != '\0';) {
        const char *c = strchr(p, ',');
        size_t len = c != NULL ? (size_t)(c - p) : strlen(p);
        if (len == n && strncmp(p, status, n) == 0)
            return 1;
        p += len + (c != NULL);
    }
    return 0;
}

static hl_status m_job_update(srv_store *base, const char *id, const srv_field *f, size_t n,
                              const char *expect_status, uint64_t ttl)
{
    mem_store *s = (mem_store *)base;
    entry *grave = NULL;
    hl_status st = HL_OK;
    uv_mutex_lock(&s->mu);
    entry *e = lookup(s, K_JOB, id, &grave);
    if (e == NULL) {
        st = HL_NOTFOUND;
    } else if (expect_status != NULL) {
        const char *cur = srv_record_get(&e->rec, "status");
        if (cur == NULL || !status_in(cur, expect_status))
            st = HL_BUSY;
    }
    if (st == HL_OK) {
        /* Small field strings: copied under the lock (bounded, a few hundred bytes). */
        for (size_t i = 0; i < n && st == HL_OK; i++)
            st = record_set(&e->rec, f[i].name, f[i].value);
        size_t nb = entry_size(e);
        s->bytes = s->bytes - e->bytes + nb;
        e->bytes = nb;
        if (ttl > 0)
            e->expires = s->now(s->now_ud) + (double)ttl;
    }
    uv_mutex_unlock(&s->mu);
    bury(grave);
    return st;
}

static hl_status m_job_incr(srv_store *base, const char *id, const char *field, long long delta,
                            const char *expect_status, long long *value)
{
    mem_store *s = (mem_store *)base;
    entry *grave = NULL;
    hl_status st = HL_OK;
    uv_mutex_lock(&s->mu);
    entry *e = lookup(s, K_JOB, id, &grave);
    const char *cur = e != NULL ? srv_record_get(&e->rec, "status") : NULL;
    if (e == NULL)
        st = HL_NOTFOUND;
    else if (expect_status != NULL && (cur == NULL || !status_in(cur, expect_status)))
        st = HL_BUSY;
    long long v = 0;
    const char *old = st == HL_OK ? srv_record_get(&e->rec, field) : NULL;
    if (old != NULL) {
        char *end = NULL;
        errno = 0;
        v = strtoll(old, &end, 10);
        if (old[0] == '\0' || *end != '\0' || errno != 0)
            st = HL_FORMAT;
    }
    if (st == HL_OK) {
        char buf[24];
        v += delta;
        snprintf(buf, sizeof(buf), "%lld", v);
        st = record_set(&e->rec, field, buf);
        size_t nb = entry_size(e);
        s->bytes = s->bytes - e->bytes + nb;
        e->bytes = nb;
    }
    uv_mutex_unlock(&s->mu);
    bury(grave);
    if (st == HL_OK && value != NULL)
        *value = v;
    return st;
}

static hl_status del(mem_store *s, int kind, const char *key)
{
    entry *grave = NULL;
    uv_mutex_lock(&s->mu);
    entry *e = lookup(s, kind, key, &grave);
    if (e != NULL)
        remove_entry(s, e, &grave);
    uv_mutex_unlock(&s->mu);
    bury(grave);
    return e != NULL ? HL_OK : HL_NOTFOUND;
}

static hl_status m_job_delete(srv_store *base, const char *id)
{
    return del((mem_store *)base, K_JOB, id);
}

static hl_status blob_put(mem_store *s, int kind, const char *id, const void *data, size_t len,
                          uint64_t ttl)
{
    entry *e = entry_new(kind, id, ttl, s);
    if (e == NULL)
        return HL_NOMEM;
    e->blob = blob_new(data, len); /* the copy happens here, outside the lock */
    if (e->blob == NULL) {
        entry_free(e);
        return HL_NOMEM;
    }
    return insert(s, e, 0, NULL);
}

static hl_status blob_get(mem_store *s, int kind, const char *id, void **data, size_t *len)
{
    entry *grave = NULL;
    uv_mutex_lock(&s->mu);
    entry *e = lookup(s, kind, id, &grave);
    blob *b = e != NULL ? e->blob : NULL;
    if (b != NULL)
        atomic_fetch_add(&b->refs, 1);
    uv_mutex_unlock(&s->mu);
    bury(grave);
    if (b == NULL)
        return HL_NOTFOUND;
    void *copy = malloc(b->len > 0 ? b->len : 1);
    if (copy != NULL && b->len > 0)
        memcpy(copy, b->data, b->len);
    size_t n = b->len;
    blob_unref(b);
    if (copy == NULL)
        return HL_NOMEM;
    *data = copy;
    *len = n;
    return HL_OK;
}

static hl_status m_result_put(srv_store *s, const char *id, const void *d, size_t n, uint64_t ttl)
{
    return blob_put((mem_store *)s, K_RESULT, id, d, n, ttl);
}

static hl_status m_result_get(srv_store *s, const char *id, void **d, size_t *n)
{
    return blob_get((mem_store *)s, K_RESULT, id, d, n);
}

static hl_status m_result_delete(srv_store *s, const char *id)
{
    return del((mem_store *)s, K_RESULT, id);
}

static hl_status m_input_put(srv_store *s, const char *id, const void *d, size_t n, uint64_t ttl)
{
    return blob_put((mem_store *)s, K_INPUT, id, d, n, ttl);
}

static hl_status m_input_get(srv_store *s, const char *id, void **d, size_t *n)
{
    return blob_get((mem_store *)s, K_INPUT, id, d, n);
}

static hl_status m_input_delete(srv_store *s, const char *id)
{
    return del((mem_store *)s, K_INPUT, id);
}

static hl_status str_get(mem_store *s, int kind, const char *key, char **out)
{
    entry *grave = NULL;
    hl_status st = HL_NOTFOUND;
    uv_mutex_lock(&s->mu);
    entry *e = lookup(s, kind, key, &grave);
    if (e != NULL) {
        *out = strdup(e->str);
        st = *out != NULL ? HL_OK : HL_NOMEM;
    }
    uv_mutex_unlock(&s->mu);
    bury(grave);
    return st;
}

static hl_status str_put(mem_store *s, int kind, const char *key, const char *value, uint64_t ttl,
                         int nx, char **existing)
{
    entry *e = entry_new(kind, key, ttl, s);
    if (e == NULL || (e->str = strdup(value)) == NULL) {
        entry_free(e);
        return HL_NOMEM;
    }
    return insert(s, e, nx, existing);
}

static hl_status m_cache_get(srv_store *s, const char *key, char **job_id)
{
    return str_get((mem_store *)s, K_CACHE, key, job_id);
}

static hl_status m_cache_put(srv_store *s, const char *key, const char *job_id, uint64_t ttl)
{
    return str_put((mem_store *)s, K_CACHE, key, job_id, ttl, 0, NULL);
}

static hl_status m_idem_claim(srv_store *s, const char *key, const char *value, uint64_t ttl,
                              char **existing)
{
    if (existing != NULL)
        *existing = NULL;
    return str_put((mem_store *)s, K_IDEM, key, value, ttl, 1, existing);
}

/* ---- owners (per-key job limits) ---- */

/* Whether a member "id@t" of an owner set is still active at `now`; under s->mu. */
static int owner_member_active(mem_store *s, const char *id, double added, double now,
                               uint64_t grace, entry **grave)
{
    entry *job = lookup(s, K_JOB, id, grave);
    if (job == NULL)
        return now - added <= (double)grace;
    return !is_terminal_job(job);
}

/* Rebuilds an owner set's text keeping the active members; returns their count, with
 * *has_id set when job_id is among them. The text is small (bounded by the limit). Under the
 * lock: the members' records have to be read in the same critical section. */
static size_t owner_prune(mem_store *s, entry *e, const char *job_id, uint64_t grace, int *has_id,
                          entry **grave)
{
    double now = s->now(s->now_ud);
    size_t kept = 0, out = 0, len = strlen(e->str);
    char *text = e->str;
    *has_id = 0;
    for (size_t i = 0; i < len;) {
        size_t n = strcspn(text + i, " ");
        char member[96];
        if (n > 0 && n < sizeof(member)) {
            memcpy(member, text + i, n);
            member[n] = '\0';
            char *at = strrchr(member, '@');
            double added = at != NULL ? strtod(at + 1, NULL) : 0.0;
            if (at != NULL)
                *at = '\0';
            if (owner_member_active(s, member, added, now, grace, grave)) {
                *has_id |= strcmp(member, job_id) == 0;
                memmove(text + out, text + i, n);
                out += n;
                text[out++] = ' ';
                kept++;
            }
        }
        i += n + 1;
    }
    text[out] = '\0';
    return kept;
}

static hl_status m_owner_admit(srv_store *base, const char *owner, const char *job_id,
                               unsigned limit, uint64_t grace)
{
    mem_store *s = (mem_store *)base;
    if (owner == NULL || job_id == NULL || strlen(job_id) > 64 || strchr(job_id, ' ') != NULL ||
        strchr(job_id, '@') != NULL)
        return HL_INVAL;
    entry *fresh = entry_new(K_OWNER, owner, 0, s);
    if (fresh == NULL || (fresh->str = strdup("")) == NULL) {
        entry_free(fresh);
        return HL_NOMEM;
    }
    entry *grave = NULL;
    hl_status st = HL_OK;
    uv_mutex_lock(&s->mu);
    entry *e = lookup(s, K_OWNER, owner, &grave);
    int has_id = 0;
    size_t active = e != NULL ? owner_prune(s, e, job_id, grace, &has_id, &grave) : 0;
    if (!has_id && active >= limit)
        st = HL_BUSY;
    if (st == HL_OK && !has_id) {
        char add[96];
        int n = snprintf(add, sizeof(add), "%s@%.3f ", job_id, s->now(s->now_ud));
        const char *prev = e != NULL ? e->str : "";
        char *text = malloc(strlen(prev) + (size_t)n + 1); /* a few bytes per active job */
        if (text == NULL) {
            st = HL_NOMEM;
        } else {
            memcpy(text, prev, strlen(prev));
            memcpy(text + strlen(prev), add, (size_t)n + 1);
            if (e == NULL) {
                e = fresh;
                fresh = NULL;
                e->hash = hash_key(K_OWNER, e->key);
                grow(s);
                entry **slot = &s->buckets[e->hash & (s->nbuckets - 1)];
                e->hnext = *slot;
                *slot = e;
                lru_push_front(s, e);
                s->count++;
                e->bytes = 0;
            }
            free(e->str);
            e->str = text;
        }
    }
    if (e != NULL) {
        size_t nb = entry_size(e);
        s->bytes = s->bytes - e->bytes + nb;
        e->bytes = nb;
    }
    uv_mutex_unlock(&s->mu);
    entry_free(fresh);
    bury(grave);
    return st;
}

static hl_status m_owner_release(srv_store *base, const char *owner, const char *job_id)
{
    mem_store *s = (mem_store *)base;
    entry *grave = NULL;
    hl_status st = HL_NOTFOUND;
    size_t idn = strlen(job_id);
    uv_mutex_lock(&s->mu);
    entry *e = lookup(s, K_OWNER, owner, &grave);
    for (char *p = e != NULL ? e->str : NULL; p != NULL && *p != '\0';) {
        size_t n = strcspn(p, " ");
        if (n > idn && strncmp(p, job_id, idn) == 0 && p[idn] == '@') {
            size_t skip = n + (p[n] == ' ');
            memmove(p, p + skip, strlen(p + skip) + 1);
            st = HL_OK;
            break;
        }
        p += n + (p[n] == ' ');
    }
    if (e != NULL) {
        size_t nb = entry_size(e);
        s->bytes = s->bytes - e->bytes + nb;
        e->bytes = nb;
    }
    uv_mutex_unlock(&s->mu);
    bury(grave);
    return st;
}

static hl_status m_idem_replace(srv_store *base, const char *key, const char *expected,
                                const char *value, uint64_t ttl)
{
    mem_store *s = (mem_store *)base;
    char *copy = strdup(value); /* before the lock */
    if (copy == NULL)
        return HL_NOMEM;
    entry *grave = NULL;
    hl_status st = HL_NOTFOUND;
    uv_mutex_lock(&s->mu);
    entry *e = lookup(s, K_IDEM, key, &grave);
    if (e != NULL && strcmp(e->str, expected) != 0) {
        st = HL_BUSY;
    } else if (e != NULL) {
        free(e->str);
        e->str = copy;
        copy = NULL;
        e->expires = ttl > 0 ? s->now(s->now_ud) + (double)ttl : 0.0;
        size_t nb = entry_size(e);
        s->bytes = s->bytes - e->bytes + nb;
        e->bytes = nb;
        st = HL_OK;
    }
    uv_mutex_unlock(&s->mu);
    free(copy);
    bury(grave);
    return st;
}

/* ---- clustering states and locks ---- */

/* A state chain is one entry: the base blob, the delta blobs and the version's tag, so a
 * write (base or delta) and a read are each one critical section: readers see a whole
 * version, and a TTL, an eviction or a delete covers the base and every delta at once. */
static uint64_t next_tag(void)
{
    static atomic_uint_fast64_t counter;
    return (uint64_t)atomic_fetch_add(&counter, 1) + 1;
}

static void head_of(const entry *e, srv_state_head *h)
{
    memset(h, 0, sizeof(*h));
    h->version = e->version;
    h->tag = e->tag;
    h->n_deltas = e->n_deltas;
    h->base_version = e->version - e->n_deltas;
    h->base_bytes = e->blob != NULL ? e->blob->len : 0;
    h->delta_bytes = e->delta_bytes;
}

static hl_status m_state_put(srv_store *base, const char *id, const void *data, size_t len,
                             uint64_t version, uint64_t ttl, uint64_t *tag)
{
    mem_store *s = (mem_store *)base;
    if (version < 1)
        return HL_INVAL;
    entry *e = entry_new(K_STATE, id, ttl, s);
    if (e == NULL || (e->blob = blob_new(data, len)) == NULL) { /* copied outside the lock */
        entry_free(e);
        return HL_NOMEM;
    }
    e->version = version;
    e->tag = next_tag();
    e->hash = hash_key(K_STATE, id);
    e->bytes = entry_size(e);
    uint64_t t = e->tag;
    entry *grave = NULL;
    uv_mutex_lock(&s->mu);
    entry *old = lookup(s, K_STATE, id, &grave);
    hl_status st = (old != NULL ? old->version : 0) == version - 1 ? HL_OK : HL_BUSY;
    if (st == HL_OK && old != NULL)
        remove_entry(s, old, &grave); /* the swap is one critical section: no reader sees a gap */
    if (st == HL_OK)
        st = make_room(s, e->bytes, NULL, &grave);
    if (st == HL_OK) {
        link_entry(s, e);
        e = NULL;
    }
    uv_mutex_unlock(&s->mu);
    entry_free(e);
    bury(grave);
    if (st == HL_OK && tag != NULL)
        *tag = t;
    return st;
}

static hl_status m_state_append(srv_store *base, const char *id, const void *data, size_t len,
                                uint64_t version, uint64_t ttl, uint64_t *tag)
{
    mem_store *s = (mem_store *)base;
    if (version < 2)
        return HL_INVAL;
    blob *b = blob_new(data, len); /* copied outside the lock */
    blob **slots = malloc(SRV_STATE_MAX_DELTAS * sizeof(blob *));
    if (b == NULL || slots == NULL) {
        blob_unref(b);
        free(slots);
        return HL_NOMEM;
    }
    uint64_t t = next_tag();
    entry *grave = NULL;
    uv_mutex_lock(&s->mu);
    entry *e = lookup(s, K_STATE, id, &grave);
    hl_status st = e != NULL && e->version == version - 1 ? HL_OK : HL_BUSY;
    if (st == HL_OK && e->n_deltas >= SRV_STATE_MAX_DELTAS)
        st = HL_RANGE;
    size_t extra = b->len;
    if (st == HL_OK && e->deltas == NULL)
        extra += SRV_STATE_MAX_DELTAS * sizeof(blob *);
    if (st == HL_OK)
        st = make_room(s, extra, e, &grave);
    if (st == HL_OK) {
        if (e->deltas == NULL) {
            e->deltas = slots;
            slots = NULL;
        }
        e->delta_bytes += b->len;
        e->deltas[e->n_deltas++] = b;
        b = NULL;
        e->version = version;
        e->tag = t;
        e->expires = ttl > 0 ? s->now(s->now_ud) + (double)ttl : 0.0;
        size_t nb = entry_size(e);
        s->bytes = s->bytes - e->bytes + nb;
        e->bytes = nb;
    }
    uv_mutex_unlock(&s->mu);
    blob_unref(b);
    free(slots);
    bury(grave);
    if (st == HL_OK && tag != NULL)
        *tag = t;
    return st;
}

static hl_status m_state_head(srv_store *base, const char *id, srv_state_head *out)
{
    mem_store *s = (mem_store *)base;
    entry *grave = NULL;
    uv_mutex_lock(&s->mu);
    entry *e = lookup(s, K_STATE, id, &grave);
    if (e != NULL)
        head_of(e, out);
    uv_mutex_unlock(&s->mu);
    bury(grave);
    return e != NULL ? HL_OK : HL_NOTFOUND;
}

static hl_status m_state_get(srv_store *base, const char *id, srv_state_chain *out)
{
    mem_store *s = (mem_store *)base;
    memset(out, 0, sizeof(*out));
    blob *refs[SRV_STATE_MAX_DELTAS + 1];
    size_t nref = 0;
    srv_state_head h;
    entry *grave = NULL;
    uv_mutex_lock(&s->mu);
    entry *e = lookup(s, K_STATE, id, &grave);
    if (e != NULL) { /* references under the lock, copies after it */
        head_of(e, &h);
        refs[nref++] = e->blob;
        for (size_t i = 0; i < e->n_deltas; i++)
            refs[nref++] = e->deltas[i];
        for (size_t i = 0; i < nref; i++)
            atomic_fetch_add(&refs[i]->refs, 1);
    }
    uv_mutex_unlock(&s->mu);
    bury(grave);
    if (e == NULL)
        return HL_NOTFOUND;
    hl_status st = HL_OK;
    out->head = h;
    if (h.n_deltas > 0) {
        out->deltas = calloc(h.n_deltas, sizeof(void *));
        out->delta_lens = calloc(h.n_deltas, sizeof(size_t));
        if (out->deltas == NULL || out->delta_lens == NULL)
            st = HL_NOMEM;
    }
    for (size_t i = 0; i < nref && st == HL_OK; i++) {
        void *p = malloc(refs[i]->len > 0 ? refs[i]->len : 1);
        if (p == NULL) {
            st = HL_NOMEM;
            break;
        }
        if (refs[i]->len > 0)
            memcpy(p, refs[i]->data, refs[i]->len);
        if (i == 0) {
            out->base = p;
            out->base_len = refs[i]->len;
        } else {
            out->deltas[i - 1] = p;
            out->delta_lens[i - 1] = refs[i]->len;
        }
    }
    for (size_t i = 0; i < nref; i++)
        blob_unref(refs[i]);
    if (st != HL_OK)
        srv_state_chain_free(out);
    return st;
}

static hl_status m_state_delete(srv_store *s, const char *id)
{
    return del((mem_store *)s, K_STATE, id);
}

static hl_status m_state_clone(srv_store *base, const char *src, const char *dst,
                               uint64_t src_version, uint64_t ttl, uint64_t *tag)
{
    mem_store *s = (mem_store *)base;
    if (src_version < 1 || strcmp(src, dst) == 0)
        return HL_INVAL;
    entry *e = entry_new(K_STATE, dst, ttl, s);
    if (e == NULL)
        return HL_NOMEM;
    e->version = 1;
    e->tag = next_tag();
    e->hash = hash_key(K_STATE, dst);
    uint64_t t = e->tag;
    entry *grave = NULL;
    hl_status st = HL_OK;
    uv_mutex_lock(&s->mu);
    entry *from = lookup(s, K_STATE, src, &grave);
    if (from == NULL)
        st = HL_NOTFOUND;
    else if (from->version != src_version || from->n_deltas != 0)
        st = HL_BUSY; /* the source moved on: it is no longer the state asked for */
    else if (lookup(s, K_STATE, dst, &grave) != NULL)
        st = HL_BUSY;
    if (st == HL_OK) {
        e->blob = from->blob; /* immutable: shared, never copied */
        atomic_fetch_add(&e->blob->refs, 1);
        e->bytes = entry_size(e);
        st = make_room(s, e->bytes, from, &grave); /* (evicting the source would free nothing) */
    }
    if (st == HL_OK) {
        link_entry(s, e);
        e = NULL;
    }
    uv_mutex_unlock(&s->mu);
    entry_free(e); /* a refused clone drops its reference here, outside the lock */
    bury(grave);
    if (st == HL_OK && tag != NULL)
        *tag = t;
    return st;
}

static hl_status m_lock(srv_store *base, const char *key, const char *token, uint64_t ttl_ms)
{
    mem_store *s = (mem_store *)base;
    entry *e = entry_new(K_LOCK, key, 0, s);
    if (e == NULL || (e->str = strdup(token)) == NULL) {
        entry_free(e);
        return HL_NOMEM;
    }
    double expires = s->now(s->now_ud) + (double)ttl_ms / 1000.0;
    e->expires = expires;
    entry *grave = NULL;
    hl_status st = HL_OK;
    uv_mutex_lock(&s->mu);
    entry *old = lookup(s, K_LOCK, key, &grave); /* an expired lock is dropped here */
    if (old != NULL && strcmp(old->str, token) != 0)
        st = HL_BUSY;
    else if (old != NULL)
        old->expires = expires; /* renewed by its holder */
    uv_mutex_unlock(&s->mu);
    bury(grave);
    if (st != HL_OK || old != NULL) {
        entry_free(e);
        return st;
    }
    /* Not held: insert unless another thread took it meanwhile (nx). */
    char *other = NULL;
    st = insert(s, e, 1, &other);
    if (st == HL_BUSY && other != NULL && strcmp(other, token) == 0)
        st = HL_OK;
    free(other);
    return st;
}

static hl_status m_unlock(srv_store *base, const char *key, const char *token)
{
    mem_store *s = (mem_store *)base;
    entry *grave = NULL;
    uv_mutex_lock(&s->mu);
    entry *e = lookup(s, K_LOCK, key, &grave);
    hl_status st = e != NULL && strcmp(e->str, token) == 0 ? HL_OK : HL_NOTFOUND;
    if (st == HL_OK)
        remove_entry(s, e, &grave);
    uv_mutex_unlock(&s->mu);
    bury(grave);
    return st;
}

static hl_status m_ping(srv_store *s)
{
    (void)s;
    return HL_OK;
}

static void m_destroy(srv_store *base)
{
    mem_store *s = (mem_store *)base;
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nbuckets; i++) {
        entry *e = s->buckets[i];
        while (e != NULL) {
            entry *n = e->hnext;
            entry_free(e);
            e = n;
        }
    }
    free(s->buckets);
    uv_mutex_destroy(&s->mu);
    free(s);
}

static const srv_store_ops mem_ops = {
    .name = "memory",
    .job_create = m_job_create,
    .job_get = m_job_get,
    .job_update = m_job_update,
    .job_delete = m_job_delete,
    .job_incr = m_job_incr,
    .result_put = m_result_put,
    .result_get = m_result_get,
    .result_delete = m_result_delete,
    .input_put = m_input_put,
    .input_get = m_input_get,
    .input_delete = m_input_delete,
    .cache_get = m_cache_get,
    .cache_put = m_cache_put,
    .idem_claim = m_idem_claim,
    .idem_replace = m_idem_replace,
    .owner_admit = m_owner_admit,
    .owner_release = m_owner_release,
    .state_put = m_state_put,
    .state_append = m_state_append,
    .state_head = m_state_head,
    .state_get = m_state_get,
    .state_delete = m_state_delete,
    .state_clone = m_state_clone,
    .lock = m_lock,
    .unlock = m_unlock,
    .ping = m_ping,
    .destroy = m_destroy,
};

hl_status srv_store_mem_new(size_t max_bytes, srv_store **out)
{
    *out = NULL;
    mem_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return HL_NOMEM;
    s->nbuckets = 1024;
    s->buckets = calloc(s->nbuckets, sizeof(entry *));
    if (s->buckets == NULL || uv_mutex_init(&s->mu) != 0) {
        free(s->buckets);
        free(s);
        return HL_NOMEM;
    }
    s->base.ops = &mem_ops;
    s->max_bytes = max_bytes;
    s->now = mono_now;
    *out = &s->base;
    return HL_OK;
}

int srv_store_is_mem(const srv_store *s)
{
    return s != NULL && s->ops == &mem_ops;
}

size_t srv_store_mem_sweep(srv_store *base)
{
    mem_store *s = (mem_store *)base;
    entry *grave = NULL;
    size_t n = 0;
    uv_mutex_lock(&s->mu);
    double now = s->now(s->now_ud);
    for (entry *e = s->tail; e != NULL;) {
        entry *prev = e->prev;
        if (e->expires > 0 && now >= e->expires) {
            remove_entry(s, e, &grave);
            n++;
        }
        e = prev;
    }
    uv_mutex_unlock(&s->mu);
    bury(grave);
    return n;
}

size_t srv_store_mem_bytes(srv_store *base)
{
    mem_store *s = (mem_store *)base;
    uv_mutex_lock(&s->mu);
    size_t b = s->bytes;
    uv_mutex_unlock(&s->mu);
    return b;
}

void srv_store_mem_set_clock(srv_store *base, double (*now)(void *ud), void *ud)
{
    mem_store *s = (mem_store *)base;
    s->now = now != NULL ? now : mono_now;
    s->now_ud = ud;
}
