/*
 * knn.c - exact tiled inner-product kNN; see hl/knn.h.
 *
 * DESIGN
 * Every query row owns a sorted top-k list that lives directly in the caller's output arrays.
 * Candidates are ranked by one strict total order: higher similarity first, then lower
 * database index. The top k of a fixed candidate set under a total order does not depend on
 * the order in which the candidates arrive. So any schedule that offers every (query,
 * database row) pair exactly once, with similarities computed in tiles whose boundaries
 * depend only on the sizes, gives the same output for any thread count.
 *
 * Query-vs-database search: blocks of KNN_B query rows are independent tasks. A task walks
 * the database in tiles of KNN_B rows, computes each tile with one sgemm into its thread's
 * buffer and merges every tile row into that query's list.
 *
 * Self search (q == db): X * X^T is symmetric, so only tiles (I, J) with I <= J are computed.
 * An off-diagonal tile is merged row-wise into the lists of block I and column-wise into
 * the lists of block J, which halves the sgemm work. Two tiles that share a block would
 * race on its lists, so tiles run in rounds of the circle method (a round-robin tournament
 * over the blocks): every block appears in exactly one task of a round, a round's tasks run
 * in parallel, and the join at the end of hl_parallel_for separates rounds. A diagonal tile
 * (I, I) is merged row-wise only; it runs in the round where block I meets the dummy slot
 * (odd block count) or in one extra round (even block count). Nothing is locked.
 *
 * Merging: a chunk of KNN_CHUNK similarities is first compared with the current k-th
 * similarity (of the row, and of each column for the column direction) with vector
 * compares; only a chunk that may hold an entrant is walked, bit by bit. The filter uses >=
 * so that exact ties reach the full (similarity, index) comparison. A merge zeroes each tile
 * row after reading it, so the next sgemm can accumulate into the tile (beta = 1) instead of
 * having OpenBLAS clear it first; see tile_gemm().
 */
#include "hl/knn.h"

#include "hl/mat.h"
#include "hl/parallel.h"
#include "internal.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

/*
 * Rows per block; tiles are KNN_B x KNN_B floats (2.25 MiB). Measured on the bench machine
 * (Zen 3, 512 KiB L2, OpenBLAS 0.3.21, D = 128): 640-1024 are within noise of each other,
 * 512 is ~5% slower (packing, which scales as 1/KNN_B) and 384 slower still. A tuning
 * build may override it with -DKNN_B=...
 */
#ifndef KNN_B
#define KNN_B 768
#endif
/* Similarities compared per early-out test in the merge (two 8-float vectors). */
#define KNN_CHUNK 16

/*
 * The merge loops get an AVX2 clone (picked once by an ifunc resolver) where the compiler
 * supports function multiversioning; it measured ~2-3% faster overall than SSE2 alone. clang
 * 14 gives the resolver of even a static clone external linkage, hence the hl__ names. Not
 * under TSan: the resolver runs during relocation, before the TSan runtime is up, and its
 * instrumentation crashes.
 */
#if defined(__SANITIZE_THREAD__)
#define KNN_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KNN_TSAN 1
#endif
#endif
/* clang 14 emits no definition for a target_clones function that has external linkage and
 * no caller in its own file (hl__knn_merge_row_ids: undefined at link time), so only gcc
 * builds get the clones; clang builds (the fuzz targets) use the default code. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(KNN_TSAN) &&       \
    !defined(HL_NO_CLONES)
#define KNN_HOT __attribute__((target_clones("avx2", "default")))
#else
#define KNN_HOT
#endif

void hl_knn_params_default(hl_knn_params *p)
{
    memset(p, 0, sizeof(*p));
    p->k = 10;
    p->n_threads = 1;
}

/* Threads one call uses: never more than there are query blocks. */
static size_t knn_threads(size_t nq, int n_threads)
{
    size_t nt = (size_t)hl_threads_clamp(n_threads);
    size_t blocks = (nq + KNN_B - 1) / KNN_B;
    return blocks < nt ? (blocks > 0 ? blocks : 1) : nt;
}

size_t hl_knn_exact_plan(size_t nq, size_t ndb, size_t d, const hl_knn_params *p)
{
    (void)ndb;
    (void)d;
    if (nq == 0)
        return 0;
    size_t per_thread = hl_arena_block((size_t)KNN_B * KNN_B * sizeof(float)) +
                        hl_arena_block((size_t)KNN_B * sizeof(float));
    return knn_threads(nq, p != NULL ? p->n_threads : 1) * per_thread;
}

typedef struct knn_ctx {
    const float *q, *db;
    size_t nq, ndb, d, k;
    size_t nb;    /* query blocks */
    size_t slots; /* circle-method slots: nb rounded up to even */
    size_t round; /* current round of the self search */
    float *tile[HL_MAX_THREADS];
    float *cthr[HL_MAX_THREADS]; /* k-th similarity of each column's list (self search) */
    int32_t *idx;
    float *sim;
    const hl_cancel *cancel;
    atomic_int stop;
} knn_ctx;

/* (v, j) ranks before (s, i): higher similarity, or equal similarity and lower index. */
static inline int ranks_before(float v, int32_t j, float s, int32_t i)
{
    return v > s || (v == s && (uint32_t)j < (uint32_t)i);
}

/*
 * Offers (v, j) to the sorted list (s, ix) of length k and returns the list's k-th
 * similarity afterwards. Padding entries are (-INFINITY, -1), which every finite candidate
 * beats; -1 compares as the largest index.
 */
static inline float list_offer(float *s, int32_t *ix, size_t k, float v, int32_t j)
{
    if (!ranks_before(v, j, s[k - 1], ix[k - 1]))
        return s[k - 1];
    size_t pos = k - 1;
    while (pos > 0 && ranks_before(v, j, s[pos - 1], ix[pos - 1])) {
        s[pos] = s[pos - 1];
        ix[pos] = ix[pos - 1];
        pos--;
    }
    s[pos] = v;
    ix[pos] = j;
    return s[k - 1];
}

/*
 * Chunk filters over KNN_CHUNK = 16 similarities at `row`: bit t of a mask is set when
 * row[t] >= thr (the row's k-th similarity) or row[t] >= thr_v[t] (the k-th similarity of
 * column t's list). chunk_any*() OR the comparisons first, so the common "no entrant" case
 * costs one movemask. On x86-64 (SSE2 is part of the ABI) the compares use 8-wide GNU
 * vectors, which the AVX2 clone of the merge loops compiles to 256-bit instructions, and
 * the movemask comes from SSE2; other targets use plain loops.
 */
#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>

typedef float knn_f8 __attribute__((vector_size(32)));
typedef int32_t knn_i8 __attribute__((vector_size(32)));

/* Vectors are never passed by value: the ABI for 32-byte vectors differs between clones. */
static inline unsigned i8_bits(const knn_i8 *m)
{
    __m128 h[2];
    memcpy(h, m, sizeof(h));
    return (unsigned)_mm_movemask_ps(h[0]) | (unsigned)_mm_movemask_ps(h[1]) << 4;
}

static inline int i8_any(const knn_i8 *m)
{
    __m128 h[2];
    memcpy(h, m, sizeof(h));
    return _mm_movemask_ps(_mm_or_ps(h[0], h[1]));
}

static inline unsigned chunk_bits(const float *row, float thr)
{
    knn_f8 t = {thr, thr, thr, thr, thr, thr, thr, thr}, a, b;
    memcpy(&a, row, sizeof(a));
    memcpy(&b, row + 8, sizeof(b));
    knn_i8 ma = a >= t, mb = b >= t;
    return i8_bits(&ma) | i8_bits(&mb) << 8;
}

static inline unsigned chunk_bits_v(const float *row, const float *thr_v)
{
    knn_f8 a, b, ta, tb;
    memcpy(&a, row, sizeof(a));
    memcpy(&b, row + 8, sizeof(b));
    memcpy(&ta, thr_v, sizeof(ta));
    memcpy(&tb, thr_v + 8, sizeof(tb));
    knn_i8 ma = a >= ta, mb = b >= tb;
    return i8_bits(&ma) | i8_bits(&mb) << 8;
}

static inline int chunk_any(const float *row, float thr)
{
    knn_f8 t = {thr, thr, thr, thr, thr, thr, thr, thr}, a, b;
    memcpy(&a, row, sizeof(a));
    memcpy(&b, row + 8, sizeof(b));
    knn_i8 m = (a >= t) | (b >= t);
    return i8_any(&m);
}

static inline int chunk_any2(const float *row, float thr, const float *thr_v)
{
    knn_f8 t = {thr, thr, thr, thr, thr, thr, thr, thr}, a, b, ta, tb;
    memcpy(&a, row, sizeof(a));
    memcpy(&b, row + 8, sizeof(b));
    memcpy(&ta, thr_v, sizeof(ta));
    memcpy(&tb, thr_v + 8, sizeof(tb));
    knn_i8 m = (a >= t) | (b >= t) | (a >= ta) | (b >= tb);
    return i8_any(&m);
}
#else
static inline unsigned chunk_bits(const float *row, float thr)
{
    unsigned m = 0;
    for (unsigned t = 0; t < KNN_CHUNK; t++)
        m |= (unsigned)(row[t] >= thr) << t;
    return m;
}

static inline unsigned chunk_bits_v(const float *row, const float *thr_v)
{
    unsigned m = 0;
    for (unsigned t = 0; t < KNN_CHUNK; t++)
        m |= (unsigned)(row[t] >= thr_v[t]) << t;
    return m;
}

static inline int chunk_any(const float *row, float thr)
{
    return chunk_bits(row, thr) != 0;
}

static inline int chunk_any2(const float *row, float thr, const float *thr_v)
{
    return (chunk_bits(row, thr) | chunk_bits_v(row, thr_v)) != 0;
}
#endif

/* Index of the lowest set bit of m != 0. */
static inline unsigned low_bit(unsigned m)
{
#if defined(__GNUC__)
    return (unsigned)__builtin_ctz(m);
#else
    unsigned t = 0;
    while (!(m & 1u)) {
        m >>= 1;
        t++;
    }
    return t;
#endif
}

/*
 * Merges row[0..len) (candidates base + t) into one list, then zeroes the row: see
 * tile_gemm() for why tiles are kept zero.
 */
KNN_HOT static void hl__knn_merge_row(float *row, size_t len, int32_t base, float *s, int32_t *ix,
                                      size_t k)
{
    float thr = s[k - 1];
    size_t j = 0;
    for (; j + KNN_CHUNK <= len; j += KNN_CHUNK) {
        if (!chunk_any(row + j, thr))
            continue;
        /* The threshold rises as entrants arrive, so the bits are a superset: re-test. */
        for (unsigned m = chunk_bits(row + j, thr); m != 0; m &= m - 1) {
            size_t t = j + low_bit(m);
            if (row[t] >= thr)
                thr = list_offer(s, ix, k, row[t], base + (int32_t)t);
        }
    }
    for (; j < len; j++) {
        if (row[j] >= thr)
            thr = list_offer(s, ix, k, row[j], base + (int32_t)j);
    }
    memset(row, 0, len * sizeof(float));
}

/* True when id j is already in the list ix of length k. */
static inline int list_has(const int32_t *ix, size_t k, int32_t j)
{
    for (size_t t = 0; t < k; t++)
        if (ix[t] == j)
            return 1;
    return 0;
}

/*
 * Like hl__knn_merge_row(), for a row whose candidates are not consecutive: element t is
 * database row ids[t] (the gathered candidates of the IVF search, knn_ivf_search.c). With
 * `unique`, a candidate already in the list is skipped (it can be offered again by a later
 * refinement round); the check runs only for candidates that pass the threshold.
 */
KNN_HOT void hl__knn_merge_row_ids(float *row, size_t len, const int32_t *ids, float *s,
                                   int32_t *ix, size_t k, int unique)
{
    float thr = s[k - 1];
    size_t j = 0;
    for (; j + KNN_CHUNK <= len; j += KNN_CHUNK) {
        if (!chunk_any(row + j, thr))
            continue;
        for (unsigned m = chunk_bits(row + j, thr); m != 0; m &= m - 1) {
            size_t t = j + low_bit(m);
            if (row[t] >= thr && !(unique && list_has(ix, k, ids[t])))
                thr = list_offer(s, ix, k, row[t], ids[t]);
        }
    }
    for (; j < len; j++) {
        if (row[j] >= thr && !(unique && list_has(ix, k, ids[j])))
            thr = list_offer(s, ix, k, row[j], ids[j]);
    }
    memset(row, 0, len * sizeof(float));
}

/* One off-diagonal tile row in both directions; see hl__knn_merge_row2. */
typedef struct row2 {
    float *s;     /* the row's list */
    int32_t *ix;  /* ... */
    int32_t self; /* the row's global index, offered to the column lists */
    int32_t base; /* global index of column 0 */
    float *cthr;  /* k-th similarity of each column's list */
    float *cs;    /* the lists of the tile's columns, k apart */
    int32_t *cix; /* ... */
} row2;

static inline void offer_col(const row2 *r, size_t k, float v, size_t t)
{
    r->cthr[t] = list_offer(r->cs + t * k, r->cix + t * k, k, v, r->self);
}

/* Merges row[0..len) into the row's list and each element into its column's list, then
 * zeroes the row like hl__knn_merge_row(). */
KNN_HOT static void hl__knn_merge_row2(float *row, size_t len, const row2 *r, size_t k)
{
    float thr = r->s[k - 1];
    size_t j = 0;
    for (; j + KNN_CHUNK <= len; j += KNN_CHUNK) {
        if (!chunk_any2(row + j, thr, r->cthr + j))
            continue;
        for (unsigned m = chunk_bits(row + j, thr); m != 0; m &= m - 1) {
            size_t t = j + low_bit(m);
            if (row[t] >= thr)
                thr = list_offer(r->s, r->ix, k, row[t], r->base + (int32_t)t);
        }
        /* Each column is offered one element per row, so these bits are exact. */
        for (unsigned m = chunk_bits_v(row + j, r->cthr + j); m != 0; m &= m - 1) {
            size_t t = j + low_bit(m);
            offer_col(r, k, row[t], t);
        }
    }
    for (; j < len; j++) {
        if (row[j] >= thr)
            thr = list_offer(r->s, r->ix, k, row[j], r->base + (int32_t)j);
        if (row[j] >= r->cthr[j])
            offer_col(r, k, row[j], j);
    }
    memset(row, 0, len * sizeof(float));
}

void hl__knn_lists_pad(float *sim, int32_t *idx, size_t count)
{
    for (size_t r = 0; r < count; r++) {
        sim[r] = -INFINITY;
        idx[r] = -1;
    }
}

/*
 * tile (m x n, leading dimension n) = a (m x d) * b (n x d)^T. The tile buffer is all zero on
 * entry, and the merges zero every row they consume, so sgemm runs with beta = 1: with
 * beta = 0 OpenBLAS first clears C in a separate scalar pass (sgemm_beta), which cost about
 * 8% of the run. Adding the product to zeros gives the same values.
 */
static void tile_gemm(float *tile, size_t m, size_t n, size_t d, const float *a, const float *b)
{
    hl_gemm_nt(m, n, d, 1.0f, a, d, b, d, 1.0f, tile, n);
}

/* Polls the hook once per tile; after a stop every later tile is skipped. */
static int tile_stop(knn_ctx *C)
{
    if (atomic_load(&C->stop))
        return 1;
    if (hl_cancel_requested(C->cancel)) {
        atomic_store(&C->stop, 1);
        return 1;
    }
    return 0;
}

/* ---- query-vs-database search ---------------------------------------------------------- */

static void query_task(void *arg, size_t task, int thread)
{
    knn_ctx *C = arg;
    size_t q0 = task * KNN_B, k = C->k;
    size_t qn = hl__min_size(C->nq - q0, KNN_B);
    float *tile = C->tile[thread];
    for (size_t b0 = 0; b0 < C->ndb; b0 += KNN_B) {
        if (tile_stop(C))
            return;
        size_t bn = hl__min_size(C->ndb - b0, KNN_B);
        tile_gemm(tile, qn, bn, C->d, C->q + q0 * C->d, C->db + b0 * C->d);
        for (size_t r = 0; r < qn; r++)
            hl__knn_merge_row(tile + r * bn, bn, (int32_t)b0, C->sim + (q0 + r) * k,
                              C->idx + (q0 + r) * k, k);
    }
}

/* ---- self search ----------------------------------------------------------------------- */

/* Tile (bi, bj), bi <= bj: both directions, or row-wise only on the diagonal. */
static void self_tile(knn_ctx *C, size_t bi, size_t bj, int thread)
{
    size_t k = C->k, d = C->d;
    size_t i0 = bi * KNN_B, j0 = bj * KNN_B;
    size_t ni = hl__min_size(C->nq - i0, KNN_B), nj = hl__min_size(C->nq - j0, KNN_B);
    float *tile = C->tile[thread];
    tile_gemm(tile, ni, nj, d, C->q + i0 * d, C->q + j0 * d);
    if (bi == bj) {
        for (size_t r = 0; r < ni; r++)
            hl__knn_merge_row(tile + r * nj, nj, (int32_t)j0, C->sim + (i0 + r) * k,
                              C->idx + (i0 + r) * k, k);
        return;
    }
    float *cthr = C->cthr[thread];
    for (size_t t = 0; t < nj; t++)
        cthr[t] = C->sim[(j0 + t) * k + k - 1];
    row2 r2 = {NULL, NULL, 0, (int32_t)j0, cthr, C->sim + j0 * k, C->idx + j0 * k};
    for (size_t r = 0; r < ni; r++) {
        r2.s = C->sim + (i0 + r) * k;
        r2.ix = C->idx + (i0 + r) * k;
        r2.self = (int32_t)(i0 + r);
        hl__knn_merge_row2(tile + r * nj, nj, &r2, k);
    }
}

/*
 * Task `task` of round `round` in the circle method over `slots` (even) slots: slot
 * slots - 1 stays put and meets `round`; the others pair up symmetrically around it.
 */
static void circle_pair(size_t slots, size_t round, size_t task, size_t *a, size_t *b)
{
    size_t m = slots - 1;
    if (task == 0) {
        *a = m;
        *b = round;
    } else {
        *a = (round + task) % m;
        *b = (round + m - task) % m;
    }
}

static void self_task(void *arg, size_t task, int thread)
{
    knn_ctx *C = arg;
    if (tile_stop(C))
        return;
    size_t a = task, b = task; /* the extra diagonal round */
    if (C->round < C->slots - 1)
        circle_pair(C->slots, C->round, task, &a, &b);
    if (a >= C->nb) /* met the dummy slot: this block's diagonal */
        a = b;
    if (b >= C->nb)
        b = a;
    self_tile(C, a < b ? a : b, a < b ? b : a, thread);
}

static hl_status knn_self(knn_ctx *C, int nt, const hl_knn_params *p)
{
    size_t rounds = C->slots - 1 + (C->nb % 2 == 0 ? 1 : 0);
    size_t tiles = C->nb * (C->nb + 1) / 2, done = 0;
    for (size_t r = 0; r < rounds; r++) {
        if (tile_stop(C))
            return HL_CANCELED;
        C->round = r;
        size_t tasks = r < C->slots - 1 ? C->slots / 2 : C->nb;
        hl_parallel_for(nt, tasks, self_task, C);
        if (atomic_load(&C->stop))
            return HL_CANCELED;
        done += tasks;
        hl_progress_report(&p->progress, HL_STAGE_KNN, p->level, (double)done / (double)tiles);
    }
    return HL_OK;
}

/* ---- entry points ---------------------------------------------------------------------- */

static hl_status knn_args(const float *q, size_t nq, const float *db, size_t ndb, size_t d,
                          const hl_knn_params *p, const hl_arena *scratch, const int32_t *idx,
                          const float *sim)
{
    if (p == NULL || p->k < 1 || d < 1 || scratch == NULL || nq > INT32_MAX || ndb > INT32_MAX ||
        d > INT32_MAX)
        return HL_INVAL;
    if (nq > 0 && (q == NULL || idx == NULL || sim == NULL || (ndb > 0 && db == NULL)))
        return HL_INVAL;
    return HL_OK;
}

hl_status hl_knn_exact(const float *q, size_t nq, const float *db, size_t ndb, size_t d,
                       const hl_knn_params *p, hl_arena *scratch, int32_t *idx, float *sim)
{
    hl_status st = knn_args(q, nq, db, ndb, d, p, scratch, idx, sim);
    if (st != HL_OK || nq == 0)
        return st;
    size_t nt = knn_threads(nq, p->n_threads);
    size_t mark = hl_arena_mark(scratch);
    knn_ctx C;
    memset(&C, 0, sizeof(C));
    for (size_t t = 0; t < nt; t++) {
        C.tile[t] = hl_arena_alloc(scratch, (size_t)KNN_B * KNN_B * sizeof(float), 64);
        C.cthr[t] = hl_arena_alloc(scratch, (size_t)KNN_B * sizeof(float), 64);
        if (C.tile[t] == NULL || C.cthr[t] == NULL) {
            hl_arena_reset(scratch, mark);
            return HL_NOMEM;
        }
        memset(C.tile[t], 0, (size_t)KNN_B * KNN_B * sizeof(float));
    }
    C.q = q;
    C.db = db;
    C.nq = nq;
    C.ndb = ndb;
    C.d = d;
    C.k = (size_t)p->k;
    C.nb = (nq + KNN_B - 1) / KNN_B;
    C.slots = C.nb + (C.nb % 2);
    C.idx = idx;
    C.sim = sim;
    C.cancel = &p->cancel;
    atomic_init(&C.stop, 0);
    hl__knn_lists_pad(sim, idx, nq * C.k);

    if (q == db && nq == ndb)
        st = knn_self(&C, (int)nt, p);
    else
        st = hl__parallel_sliced((int)nt, C.nb, nt, query_task, &C, &p->cancel, &p->progress,
                                 HL_STAGE_KNN, p->level, 0.0, 1.0);
    hl_arena_reset(scratch, mark);
    return atomic_load(&C.stop) ? HL_CANCELED : st;
}

/* ---- method choice --------------------------------------------------------------------- */

const char *hl_knn_method_name(hl_knn_method m)
{
    switch (m) {
        case HL_KNN_AUTO:
            return "auto";
        case HL_KNN_EXACT:
            return "exact";
        case HL_KNN_IVF:
            return "ivf";
    }
    return "?";
}

hl_status hl_knn_method_parse(const char *name, hl_knn_method *out)
{
    static const hl_knn_method all[] = {HL_KNN_AUTO, HL_KNN_EXACT, HL_KNN_IVF};
    for (size_t i = 0; name != NULL && i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(name, hl_knn_method_name(all[i])) == 0) {
            *out = all[i];
            return HL_OK;
        }
    }
    return HL_INVAL;
}

static size_t exact_max(const hl_knn_params *p)
{
    return p->exact_max > 0 ? p->exact_max : HL_KNN_EXACT_MAX_DEFAULT;
}

hl_knn_method hl_knn_choose(const hl_knn_params *p, size_t n)
{
    if (p->method == HL_KNN_EXACT || p->method == HL_KNN_IVF)
        return p->method;
    return n <= exact_max(p) ? HL_KNN_EXACT : HL_KNN_IVF;
}

size_t hl_knn_self_plan(size_t n, size_t d, const hl_knn_params *p)
{
    size_t bytes = hl_knn_exact_plan(n, n, d, p);
    if (p->method == HL_KNN_IVF || (p->method != HL_KNN_EXACT && n > exact_max(p))) {
        size_t ivf = hl_knn_ivf_plan(n, d, p);
        if (ivf > bytes)
            bytes = ivf;
    }
    return bytes;
}

hl_status hl_knn_self(const float *x, size_t n, size_t d, const hl_knn_params *p, hl_arena *scratch,
                      int32_t *idx, float *sim)
{
    if (p == NULL)
        return HL_INVAL;
    if (hl_knn_choose(p, n) == HL_KNN_IVF)
        return hl_knn_ivf(x, n, d, p, scratch, idx, sim);
    return hl_knn_exact(x, n, x, n, d, p, scratch, idx, sim);
}

double hl_knn_recall(const int32_t *approx, const int32_t *exact, size_t nq, int k)
{
    size_t hit = 0, tot = 0;
    for (size_t i = 0; i < nq; i++) {
        const int32_t *a = approx + i * (size_t)k;
        const int32_t *e = exact + i * (size_t)k;
        for (int x = 0; x < k; x++) {
            if (e[x] < 0)
                continue;
            tot++;
            for (int y = 0; y < k; y++) {
                if (a[y] == e[x]) {
                    hit++;
                    break;
                }
            }
        }
    }
    return tot > 0 ? (double)hit / (double)tot : 1.0;
}
