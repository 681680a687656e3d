/*
 * knn_ivf.c - approximate self kNN with a two-level inverted-file (IVF-flat) index and one
 * few rounds of neighbourhood refinement; see hl/knn.h.
 *
 * DESIGN
 * Why two levels and small cells. Embeddings to be clustered hold very many small, nearly
 * orthogonal groups (clusters of ~15 points, N/15 of them). A flat IVF with a few sqrt(N)
 * cells puts several unrelated groups in one cell, and its centroids, averages of unrelated
 * directions, split groups almost at random: on the 1M benchmark set nlist = 2000 found 0.6
 * of the true neighbours even when every point scanned 2.4% of the data. Cells need to be
 * about as small as the groups (default: IVF_CELL points, nlist = n / IVF_CELL), and flat
 * k-means with that many centroids costs O(n * nlist) per round. So the fine centroids are
 * trained inside coarse cells (hierarchical k-means) and points are assigned through them.
 *
 *   1. Coarse: spherical k-means with G = ceil(sqrt(nlist)) centroids on a seeded sample
 *      (Knuth's selection sampling, IVF_TRAIN_COARSE rows per centroid), assignment by
 *      hl_knn_exact against the centroids; then every point's IVF_CTOP best coarse cells.
 *   2. Fine: coarse cell c gets nlist * n_c / n fine centroids (at least one), trained by
 *      k-means on a seeded sample of its points (IVF_TRAIN_FINE per centroid), each sample
 *      row compared with the fine centroids of its own coarse cell (a grouped search).
 *   3. Fine assignment: every point against all fine centroids (hl_knn_exact, O(n * nlist * d),
 *      the largest fixed cost), keeping its IVF_TOP best fine cells; the first is its cell.
 *      Lists: members of a cell in ascending index order. Assigning only through the coarse
 *      cells was measured too: the coarse cells cut the small clusters apart (only 26% of the
 *      true neighbours shared the coarse cell at 1M) and recall fell to 0.33.
 *   4. Probes: cell A searches A and the nprobe - 1 other cells that occur most often among
 *      its members' best cells (ties: lower cell). This aims the search at the borders where
 *      A's points actually lie.
 *   5. Search, one cell at a time (knn_ivf_search.c): all points of a cell against the rows
 *      of the lists it probes, one sgemm per (block, chunk) tile, merged into per-point
 *      top-k lists. The similarities are exact, so re-ranking is implicit.
 *   6. Refinement (knn_ivf_refine.c): up to IVF_REFINE rounds in which every point is
 *      compared with the neighbours and reverse neighbours of its neighbours and reverse
 *      neighbours that lie outside the cells it probed. Members of a cluster that the
 *      partition split are usually linked through the members that were found.
 *   Empty centroids in any k-means round take the worst-fitted sample row of the largest
 *   cell of their coarse cell (a split). Zero rows get the exact answer at the end.
 *
 * Determinism: every step depends only on the data, the parameters and the seed. Tasks
 * write disjoint output rows, per-task buffers are reset per block, and a top-k under the
 * strict (similarity, index) order does not depend on the candidate order, so the results
 * are identical for any thread count.
 *
 * Memory: the features are never copied as a whole. The index holds the centroids
 * (~nlist x d), O(n) ids (lists, best cells), the fine training sample's ids, a snapshot of
 * the neighbour ids and the reverse lists for the refinement (2 n x k), and per thread fixed
 * gather and tile buffers and n stamps (hl__ivf_threads_plan).
 */
#include "knn_ivf.h"

#include "hl/mat.h"
#include "hl/rng.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Default points per fine cell (nlist = ceil(n / IVF_CELL)) and default nprobe. A cell's
 * members name at most 1 + (IVF_TOP - 1) * IVF_CELL = 129 distinct cells, so 128 probes
 * search nearly every cell its members lie near: on the 1M bench set recall@10 rose from
 * 0.976 (16 probes) to 0.9956 while the whole search got faster (97 against 111 CPU s:
 * better first lists leave less to the refinement). */
#define IVF_CELL   64
#define IVF_NPROBE 128
/* Best fine cells and best coarse cells kept per point. */
#define IVF_TOP  3
#define IVF_CTOP 3
/* Training sample rows per centroid, and k-means rounds. */
#define IVF_TRAIN_COARSE 64
#define IVF_TRAIN_FINE   16
#define IVF_ITERS        8
/* Neighbour-of-neighbour refinement rounds after the search. */
#define IVF_REFINE 3
/* Progress at the end of each step. */
#define IVF_F_COARSE 0.04
#define IVF_F_FINE   0.15
#define IVF_F_ASSIGN 0.25
#define IVF_F_SEARCH 0.75

void hl_knn_ivf_shape(const hl_knn_params *p, size_t n, int *nlist, int *nprobe)
{
    if (n == 0) {
        *nlist = 0;
        *nprobe = 0;
        return;
    }
    size_t L = p->nlist > 0 ? (size_t)p->nlist : (n + IVF_CELL - 1) / IVF_CELL;
    L = L < 1 ? 1 : (L > n ? n : L);
    size_t P = p->nprobe > 0 ? (size_t)p->nprobe : IVF_NPROBE;
    *nlist = (int)L;
    *nprobe = (int)(P > L ? L : P);
}

/* Sizes of one call. */
typedef struct ivf_dims {
    size_t L, Lmax, G, np, T, CT, m1, nt;
} ivf_dims;

static ivf_dims dims_of(const hl_knn_params *p, size_t n)
{
    int L, P;
    hl_knn_ivf_shape(p, n, &L, &P);
    ivf_dims g;
    g.L = (size_t)L;
    g.np = (size_t)P;
    g.G = (size_t)ceil(sqrt((double)g.L));
    g.G = g.G < 1 ? 1 : (g.G > g.L ? g.L : g.G);
    g.Lmax = g.L + g.G; /* per-coarse-cell rounding adds at most one each */
    g.Lmax = g.Lmax > n ? n : g.Lmax;
    g.T = hl__min_size(IVF_TOP, g.Lmax);
    g.CT = hl__min_size(IVF_CTOP, g.G);
    g.m1 = hl__min_size(n, IVF_TRAIN_COARSE * g.G);
    size_t nt = (size_t)hl_threads_clamp(p->n_threads);
    g.nt = nt > g.L ? g.L : nt;
    return g;
}

static size_t max2(size_t a, size_t b)
{
    return a > b ? a : b;
}

/* A cell and its search work (member rows x candidate rows), for the task order. */
typedef struct ivf_work {
    size_t cost;
    int32_t cell;
} ivf_work;

static size_t blk_i32(size_t count)
{
    return hl_arena_block(count * sizeof(int32_t));
}

size_t hl_knn_ivf_plan(size_t n, size_t d, const hl_knn_params *p)
{
    if (n == 0)
        return 0;
    ivf_dims g = dims_of(p, n);
    hl_knn_params q = *p;
    size_t keep = hl_arena_block(g.G * d * sizeof(float)) + blk_i32(n * g.CT) + blk_i32(g.G + 1) +
                  blk_i32(n) + hl_arena_block(g.Lmax * d * sizeof(float)) + blk_i32(g.G + 1) +
                  blk_i32(g.Lmax) + blk_i32(n * g.T) + blk_i32(g.Lmax + 1) + blk_i32(n) +
                  blk_i32(g.Lmax * g.np) + blk_i32(g.Lmax) +
                  hl__ivf_threads_plan(n, d, g.Lmax, g.nt);
    q.k = 1;
    size_t coarse = hl_arena_block(g.m1 * d * sizeof(float)) + 2 * blk_i32(g.m1) +
                    hl_arena_block(g.G * d * sizeof(double)) + blk_i32(g.G) +
                    hl_knn_exact_plan(g.m1, g.G, d, &q);
    q.k = (int)g.CT;
    coarse =
        max2(coarse, hl_arena_block(n * g.CT * sizeof(float)) + hl_knn_exact_plan(n, g.G, d, &q));
    size_t fine = blk_i32(hl__min_size(n, IVF_TRAIN_FINE * g.Lmax)) + blk_i32(g.G + 1) +
                  2 * blk_i32(n) + hl_arena_block(g.Lmax * d * sizeof(double)) + blk_i32(g.Lmax) +
                  blk_i32(g.G);
    q.k = (int)g.T;
    fine =
        max2(fine, hl_arena_block(n * g.T * sizeof(float)) + hl_knn_exact_plan(n, g.Lmax, d, &q));
    size_t probes = 2 * blk_i32(g.Lmax) + hl_arena_block(g.Lmax * sizeof(ivf_work));
    size_t refine = hl__ivf_refine_plan(n, (size_t)p->k);
    return keep + max2(max2(coarse, fine), max2(probes, refine));
}

/* The index of one call, on top of the shared state. */
typedef struct ivf {
    hl__ivf S;
    ivf_dims g;
    float *ccent;   /* G x d coarse centroids */
    int32_t *ctop;  /* n x CT best coarse cells */
    int32_t *coff;  /* G + 1: points grouped by best coarse cell */
    int32_t *cmem;  /* n */
    float *fcent;   /* Lf x d fine centroids, grouped by coarse cell */
    int32_t *foff;  /* G + 1: fine centroids of each coarse cell */
    int32_t *fmem;  /* Lf: 0..Lf-1 (the fine centroids as database rows) */
    size_t Lf;      /* fine cells actually made */
    int32_t *top;   /* n x T best fine cells */
    int32_t *off;   /* Lf + 1: points grouped by fine cell */
    int32_t *mem;   /* n */
    int32_t *probe; /* Lf x np */
    int32_t *order; /* Lf: cells by decreasing search work */
} ivf;

static void progress(const ivf *V, double f)
{
    hl_progress_report(&V->S.p->progress, HL_STAGE_KNN, V->S.p->level, f);
}

/* ---- k-means --------------------------------------------------------------------------- */

/* Knuth's selection sampling (Algorithm S): m of the n ids (NULL: 0..n-1), kept in order. */
static void sample_ids(hl_rng *r, const int32_t *ids, size_t n, size_t m, int32_t *out)
{
    size_t need = m, at = 0;
    for (size_t i = 0; i < n && need > 0; i++) {
        if (hl_rng_below(r, n - i) < need) {
            out[at++] = ids != NULL ? ids[i] : (int32_t)i;
            need--;
        }
    }
}

/* A k-means training set: row r is rows + key(r) * d, with key(r) = ids ? ids[r] : r. */
typedef struct km_set {
    const float *rows;
    const int32_t *ids;
    int32_t *asg; /* indexed by key(r): the centroid of row r */
    float *asim;  /* ... and its similarity */
    size_t d;
} km_set;

static size_t key(const km_set *S, size_t r)
{
    return S->ids != NULL ? (size_t)S->ids[r] : r;
}

/*
 * Rows [r0, r1) belong to centroids [c0, c1). Every empty centroid takes the worst-fitted
 * row (lowest similarity, then lowest position) of the currently largest centroid (ties:
 * lowest), which moves to it; with fewer rows than centroids some stay empty.
 */
static void km_split(const km_set *S, size_t r0, size_t r1, size_t c0, size_t c1, float *cent,
                     int32_t *cnt)
{
    for (size_t c = c0; c < c1; c++) {
        if (cnt[c] > 0)
            continue;
        size_t big = c0;
        for (size_t b = c0 + 1; b < c1; b++)
            if (cnt[b] > cnt[big])
                big = b;
        if (cnt[big] < 2)
            return;
        size_t worst = r1;
        for (size_t r = r0; r < r1; r++) {
            size_t kr = key(S, r);
            if ((size_t)S->asg[kr] == big && (worst == r1 || S->asim[kr] < S->asim[key(S, worst)]))
                worst = r;
        }
        size_t kw = key(S, worst);
        memcpy(cent + c * S->d, S->rows + kw * S->d, S->d * sizeof(float));
        S->asg[kw] = (int32_t)c;
        S->asim[kw] = INFINITY; /* it fits its new centroid exactly: never picked again */
        cnt[big]--;
        cnt[c] = 1;
    }
}

/* Centroids [0, L) become the normalised sums of their rows (rows [0, m)). */
static void km_update(const km_set *S, size_t m, float *cent, size_t L, double *sums)
{
    size_t d = S->d;
    memset(sums, 0, L * d * sizeof(double));
    for (size_t r = 0; r < m; r++) {
        size_t kr = key(S, r);
        double *s = sums + (size_t)S->asg[kr] * d;
        const float *x = S->rows + kr * d;
        for (size_t t = 0; t < d; t++)
            s[t] += (double)x[t];
    }
    for (size_t c = 0; c < L; c++) {
        const double *s = sums + c * d;
        double nn = 0.0;
        for (size_t t = 0; t < d; t++)
            nn += s[t] * s[t];
        if (nn <= 0.0)
            continue; /* empty, or rows that cancel out: keep the centroid */
        double inv = 1.0 / sqrt(nn);
        for (size_t t = 0; t < d; t++)
            cent[c * d + t] = (float)(s[t] * inv);
    }
}

static void km_counts(const km_set *S, size_t m, int32_t *cnt, size_t L)
{
    memset(cnt, 0, L * sizeof(int32_t));
    for (size_t r = 0; r < m; r++)
        cnt[S->asg[key(S, r)]]++;
}

/* ---- step 1: coarse cells -------------------------------------------------------------- */

static hl_status coarse_train(ivf *V)
{
    hl__ivf *S = &V->S;
    size_t G = V->g.G, m = V->g.m1, d = S->d;
    hl_arena *a = S->a;
    float *rows = hl_arena_alloc_array(a, m * d, sizeof(float), 64);
    int32_t *ids = hl_arena_alloc_array(a, m, sizeof(int32_t), 64);
    float *asim = hl_arena_alloc_array(a, m, sizeof(float), 64);
    double *sums = hl_arena_alloc_array(a, G * d, sizeof(double), 64);
    int32_t *cnt = hl_arena_alloc_array(a, G, sizeof(int32_t), 64);
    if (rows == NULL || ids == NULL || asim == NULL || sums == NULL || cnt == NULL)
        return HL_NOMEM;
    hl_rng r;
    hl_rng_split(&r, S->p->seed, 0);
    sample_ids(&r, NULL, S->n, m, ids);
    for (size_t i = 0; i < m; i++)
        memcpy(rows + i * d, S->x + (size_t)ids[i] * d, d * sizeof(float));
    for (size_t c = 0; c < G; c++)
        memcpy(V->ccent + c * d, rows + (c * m / G) * d, d * sizeof(float));
    km_set K = {rows, NULL, ids, asim, d}; /* ids is reused as the assignment */
    S->inner.k = 1;
    for (int it = 0; it < IVF_ITERS; it++) {
        if (hl_cancel_requested(&S->p->cancel))
            return HL_CANCELED;
        hl_status st = hl_knn_exact(rows, m, V->ccent, G, d, &S->inner, a, K.asg, K.asim);
        if (st != HL_OK)
            return st;
        km_counts(&K, m, cnt, G);
        km_split(&K, 0, m, 0, G, V->ccent, cnt);
        km_update(&K, m, V->ccent, G, sums);
    }
    return HL_OK;
}

/* Counting sort of the n points by their first cell in `top` (stride T) into off/mem. */
static void make_lists(size_t n, const int32_t *top, size_t T, size_t cells, int32_t *off,
                       int32_t *mem)
{
    memset(off, 0, (cells + 1) * sizeof(int32_t));
    for (size_t i = 0; i < n; i++)
        off[top[i * T] + 1]++;
    for (size_t c = 0; c < cells; c++)
        off[c + 1] += off[c];
    for (size_t i = 0; i < n; i++)
        mem[off[top[i * T]]++] = (int32_t)i;
    for (size_t c = cells; c > 0; c--)
        off[c] = off[c - 1];
    off[0] = 0;
}

static hl_status coarse_assign(ivf *V)
{
    hl__ivf *S = &V->S;
    float *csim = hl_arena_alloc_array(S->a, S->n * V->g.CT, sizeof(float), 64);
    if (csim == NULL)
        return HL_NOMEM;
    S->inner.k = (int)V->g.CT;
    hl_status st = hl_knn_exact(S->x, S->n, V->ccent, V->g.G, S->d, &S->inner, S->a, V->ctop, csim);
    if (st == HL_OK)
        make_lists(S->n, V->ctop, V->g.CT, V->g.G, V->coff, V->cmem);
    return st;
}

/* ---- steps 2 and 3: fine cells --------------------------------------------------------- */

/* Fine centroids per coarse cell, proportional to its points (at least one if it has any). */
static void fine_counts(ivf *V)
{
    size_t n = V->S.n, L = V->g.L;
    V->foff[0] = 0;
    for (size_t c = 0; c < V->g.G; c++) {
        size_t nc = (size_t)(V->coff[c + 1] - V->coff[c]);
        size_t lc = nc == 0 ? 0 : nc * L / n;
        lc = nc == 0 ? 0 : (lc < 1 ? 1 : (lc > nc ? nc : lc));
        V->foff[c + 1] = V->foff[c] + (int32_t)lc;
    }
    V->Lf = (size_t)V->foff[V->g.G];
    for (size_t f = 0; f < V->Lf; f++)
        V->fmem[f] = (int32_t)f;
}

/* The pass comparing grouped query rows with the fine centroids of probed coarse cells. */
static hl__ivf_pass fine_pass(const ivf *V, const int32_t *qoff, const int32_t *qmem,
                              const int32_t *probe, size_t np, size_t k, int32_t *idx, float *sim)
{
    hl__ivf_pass P;
    memset(&P, 0, sizeof(P));
    P.qrows = V->S.x;
    P.qoff = qoff;
    P.qmem = qmem;
    P.ng = V->g.G;
    P.drows = V->fcent;
    P.doff = V->foff;
    P.dmem = V->fmem;
    P.probe = probe;
    P.np = np;
    P.k = k;
    P.idx = idx;
    P.sim = sim;
    return P;
}

/* Seeded per-coarse-cell samples and the initial fine centroids (evenly spaced rows). */
static void fine_sample(ivf *V, int32_t *soff, int32_t *sids)
{
    size_t d = V->S.d;
    soff[0] = 0;
    for (size_t c = 0; c < V->g.G; c++) {
        size_t nc = (size_t)(V->coff[c + 1] - V->coff[c]);
        size_t lc = (size_t)(V->foff[c + 1] - V->foff[c]);
        size_t mc = hl__min_size(nc, IVF_TRAIN_FINE * lc);
        hl_rng r;
        hl_rng_split(&r, V->S.p->seed, c + 1);
        sample_ids(&r, V->cmem + V->coff[c], nc, mc, sids + soff[c]);
        for (size_t j = 0; j < lc; j++) {
            size_t row = (size_t)sids[(size_t)soff[c] + j * mc / lc];
            memcpy(V->fcent + ((size_t)V->foff[c] + j) * d, V->S.x + row * d, d * sizeof(float));
        }
        soff[c + 1] = soff[c] + (int32_t)mc;
    }
}

static hl_status fine_train(ivf *V)
{
    hl__ivf *S = &V->S;
    size_t G = V->g.G, Lf = V->Lf, d = S->d;
    hl_arena *a = S->a;
    int32_t *soff = hl_arena_alloc_array(a, G + 1, sizeof(int32_t), 64);
    int32_t *sids = hl_arena_alloc_array(a, hl__min_size(S->n, IVF_TRAIN_FINE * V->g.Lmax),
                                         sizeof(int32_t), 64);
    int32_t *asg = hl_arena_alloc_array(a, S->n, sizeof(int32_t), 64);
    float *asim = hl_arena_alloc_array(a, S->n, sizeof(float), 64);
    double *sums = hl_arena_alloc_array(a, Lf * d, sizeof(double), 64);
    int32_t *cnt = hl_arena_alloc_array(a, Lf, sizeof(int32_t), 64);
    int32_t *self = hl_arena_alloc_array(a, G, sizeof(int32_t), 64);
    if (soff == NULL || sids == NULL || asg == NULL || asim == NULL || sums == NULL ||
        cnt == NULL || self == NULL)
        return HL_NOMEM;
    fine_sample(V, soff, sids);
    for (size_t c = 0; c < G; c++)
        self[c] = (int32_t)c;
    size_t m = (size_t)soff[G];
    km_set K = {S->x, sids, asg, asim, d};
    hl__ivf_pass P = fine_pass(V, soff, sids, self, 1, 1, asg, asim);
    for (int it = 0; it < IVF_ITERS; it++) {
        hl_status st = hl__ivf_pass_run(S, &P);
        if (st != HL_OK)
            return st;
        km_counts(&K, m, cnt, Lf);
        for (size_t c = 0; c < G; c++)
            km_split(&K, (size_t)soff[c], (size_t)soff[c + 1], (size_t)V->foff[c],
                     (size_t)V->foff[c + 1], V->fcent, cnt);
        km_update(&K, m, V->fcent, Lf, sums);
        progress(V, IVF_F_COARSE + (IVF_F_FINE - IVF_F_COARSE) * (it + 1) / IVF_ITERS);
    }
    return HL_OK;
}

/* ---- step 4: probes -------------------------------------------------------------------- */

/* (f, c) ranks before (g, e): more occurrences, then lower cell index. */
static int probe_before(int32_t f, int32_t c, int32_t g, int32_t e)
{
    return f > g || (f == g && c < e);
}

/*
 * Probe rows (np each) of the `cells` cells whose members are mem[off[c] .. off[c + 1]): the
 * cell itself, then the other cells most frequent among the members' best cells (top,
 * stride T), -1 padded. freq and touched are `cells` ints of scratch; freq must be zero.
 */
static void freq_probes(const int32_t *off, const int32_t *mem, size_t cells, const int32_t *top,
                        size_t T, size_t np, int32_t *freq, int32_t *touched, int32_t *probe)
{
    for (size_t A = 0; A < cells; A++) {
        int32_t *row = probe + A * np;
        size_t nt = 0, len = 1;
        for (size_t s = 0; s < np; s++)
            row[s] = -1;
        row[0] = (int32_t)A;
        for (int32_t j = off[A]; j < off[A + 1]; j++) {
            for (size_t t = 0; t < T; t++) {
                int32_t c = top[(size_t)mem[j] * T + t];
                if (c >= 0 && (size_t)c != A && freq[c]++ == 0)
                    touched[nt++] = c;
            }
        }
        for (size_t u = 0; u < nt && np > 1; u++) { /* row[0] is A itself and stays */
            int32_t c = touched[u], f = freq[c];
            if (len == np && !probe_before(f, c, freq[row[np - 1]], row[np - 1]))
                continue;
            size_t pos = len < np ? len++ : np - 1;
            while (pos > 1 && probe_before(f, c, freq[row[pos - 1]], row[pos - 1])) {
                row[pos] = row[pos - 1];
                pos--;
            }
            row[pos] = c;
        }
        for (size_t u = 0; u < nt; u++)
            freq[touched[u]] = 0;
    }
}

static hl_status probes_of(ivf *V, const int32_t *off, const int32_t *mem, size_t cells,
                           const int32_t *top, size_t T, size_t np, int32_t *probe)
{
    size_t mark = hl_arena_mark(V->S.a);
    int32_t *freq = hl_arena_alloc_array(V->S.a, cells, sizeof(int32_t), 64);
    int32_t *touched = hl_arena_alloc_array(V->S.a, cells, sizeof(int32_t), 64);
    if (freq == NULL || touched == NULL)
        return HL_NOMEM;
    memset(freq, 0, cells * sizeof(int32_t));
    freq_probes(off, mem, cells, top, T, np, freq, touched, probe);
    hl_arena_reset(V->S.a, mark);
    return HL_OK;
}

/* Step 3: every point's IVF_TOP best fine cells, exactly; lists by the best. */
static hl_status fine_assign(ivf *V)
{
    hl__ivf *S = &V->S;
    size_t n = S->n, T = V->g.T;
    float *tsim = hl_arena_alloc_array(S->a, n * T, sizeof(float), 64);
    if (tsim == NULL)
        return HL_NOMEM;
    S->inner.k = (int)T;
    hl_status st = hl_knn_exact(S->x, n, V->fcent, V->Lf, S->d, &S->inner, S->a, V->top, tsim);
    if (st != HL_OK)
        return st;
    for (size_t i = 0; i < n; i++)
        if (V->top[i * T] < 0) /* only for non-finite rows, which match nothing */
            V->top[i * T] = 0;
    make_lists(n, V->top, T, V->Lf, V->off, V->mem);
    return HL_OK;
}

/* Heavier cells first (ties: lower cell), so that the last tasks are short ones. */
static int work_cmp(const void *pa, const void *pb)
{
    const ivf_work *a = pa, *b = pb;
    if (a->cost != b->cost)
        return a->cost > b->cost ? -1 : 1;
    return (a->cell > b->cell) - (a->cell < b->cell);
}

static hl_status search_order(ivf *V)
{
    size_t L = V->Lf, P = V->g.np;
    size_t mark = hl_arena_mark(V->S.a);
    ivf_work *w = hl_arena_alloc_array(V->S.a, L, sizeof(ivf_work), 64);
    if (w == NULL)
        return HL_NOMEM;
    for (size_t A = 0; A < L; A++) {
        size_t cand = 0;
        for (size_t s = 0; s < P && V->probe[A * P + s] >= 0; s++) {
            int32_t B = V->probe[A * P + s];
            cand += (size_t)(V->off[B + 1] - V->off[B]);
        }
        w[A].cost = (size_t)(V->off[A + 1] - V->off[A]) * cand;
        w[A].cell = (int32_t)A;
    }
    qsort(w, L, sizeof(ivf_work), work_cmp);
    for (size_t A = 0; A < L; A++)
        V->order[A] = w[A].cell;
    hl_arena_reset(V->S.a, mark);
    return HL_OK;
}

/* ---- steps 5 and 6: search and refinement ---------------------------------------------- */

static hl_status search(ivf *V, int32_t *idx, float *sim)
{
    hl__ivf *S = &V->S;
    hl__ivf_pass P;
    memset(&P, 0, sizeof(P));
    P.qrows = S->x;
    P.qoff = V->off;
    P.qmem = V->mem;
    P.ng = V->Lf;
    P.drows = S->x;
    P.doff = V->off;
    P.dmem = V->mem;
    P.probe = V->probe;
    P.np = V->g.np;
    P.order = V->order;
    P.k = S->k;
    P.idx = idx;
    P.sim = sim;
    P.f0 = IVF_F_ASSIGN;
    P.f1 = IVF_F_SEARCH;
    hl_status st = hl__ivf_pass_run(S, &P);
    if (st != HL_OK)
        return st;
    hl__ivf_refine R = {V->top, V->g.T, V->probe, V->g.np, IVF_REFINE, IVF_F_SEARCH, 1.0};
    return hl__ivf_refine_run(S, &R, idx, sim);
}

/* A zero row has similarity 0 to every row: the exact answer is the first min(k, n) rows. */
static void zero_rows(const hl__ivf *S, int32_t *idx, float *sim)
{
    size_t d = S->d, k = S->k;
    for (size_t i = 0; i < S->n; i++) {
        const float *x = S->x + i * d;
        size_t t = 0;
        while (t < d && x[t] == 0.0f)
            t++;
        if (t < d)
            continue;
        hl__knn_lists_pad(sim + i * k, idx + i * k, k);
        for (size_t c = 0; c < k && c < S->n; c++) {
            idx[i * k + c] = (int32_t)c;
            sim[i * k + c] = 0.0f;
        }
    }
}

/* ---- entry point ----------------------------------------------------------------------- */

static hl_status ivf_alloc(ivf *V)
{
    hl__ivf *S = &V->S;
    size_t n = S->n, d = S->d, G = V->g.G, Lm = V->g.Lmax;
    hl_arena *a = S->a;
    V->ccent = hl_arena_alloc_array(a, G * d, sizeof(float), 64);
    V->ctop = hl_arena_alloc_array(a, n * V->g.CT, sizeof(int32_t), 64);
    V->coff = hl_arena_alloc_array(a, G + 1, sizeof(int32_t), 64);
    V->cmem = hl_arena_alloc_array(a, n, sizeof(int32_t), 64);
    V->fcent = hl_arena_alloc_array(a, Lm * d, sizeof(float), 64);
    V->foff = hl_arena_alloc_array(a, G + 1, sizeof(int32_t), 64);
    V->fmem = hl_arena_alloc_array(a, Lm, sizeof(int32_t), 64);
    V->top = hl_arena_alloc_array(a, n * V->g.T, sizeof(int32_t), 64);
    V->off = hl_arena_alloc_array(a, Lm + 1, sizeof(int32_t), 64);
    V->mem = hl_arena_alloc_array(a, n, sizeof(int32_t), 64);
    V->probe = hl_arena_alloc_array(a, Lm * V->g.np, sizeof(int32_t), 64);
    V->order = hl_arena_alloc_array(a, Lm, sizeof(int32_t), 64);
    if (V->ccent == NULL || V->ctop == NULL || V->coff == NULL || V->cmem == NULL ||
        V->fcent == NULL || V->foff == NULL || V->fmem == NULL || V->top == NULL ||
        V->off == NULL || V->mem == NULL || V->probe == NULL || V->order == NULL)
        return HL_NOMEM;
    return hl__ivf_threads_alloc(S, Lm);
}

/* Runs `step` with its scratch released afterwards; stops at the first error or a cancel. */
static hl_status step(ivf *V, hl_status (*fn)(ivf *), double f)
{
    if (hl_cancel_requested(&V->S.p->cancel))
        return HL_CANCELED;
    size_t mark = hl_arena_mark(V->S.a);
    hl_status st = fn(V);
    hl_arena_reset(V->S.a, mark);
    if (st == HL_OK && f > 0.0)
        progress(V, f);
    return st;
}

static hl_status ivf_run(ivf *V, int32_t *idx, float *sim)
{
    hl_status st = ivf_alloc(V);
    if (st == HL_OK)
        st = step(V, coarse_train, 0.0);
    if (st == HL_OK)
        st = step(V, coarse_assign, IVF_F_COARSE);
    if (st == HL_OK) {
        fine_counts(V);
        st = step(V, fine_train, 0.0);
    }
    if (st == HL_OK)
        st = step(V, fine_assign, IVF_F_ASSIGN);
    if (st == HL_OK)
        st = probes_of(V, V->off, V->mem, V->Lf, V->top, V->g.T, V->g.np, V->probe);
    if (st == HL_OK)
        st = search_order(V);
    if (st == HL_OK)
        st = search(V, idx, sim);
    if (st == HL_OK)
        zero_rows(&V->S, idx, sim);
    return st;
}

hl_status hl_knn_ivf(const float *x, size_t n, size_t d, const hl_knn_params *p, hl_arena *scratch,
                     int32_t *idx, float *sim)
{
    if (p == NULL || p->k < 1 || d < 1 || scratch == NULL || n > INT32_MAX || d > INT32_MAX)
        return HL_INVAL;
    if (n == 0)
        return HL_OK;
    if (x == NULL || idx == NULL || sim == NULL)
        return HL_INVAL;
    ivf V;
    memset(&V, 0, sizeof(V));
    V.g = dims_of(p, n);
    V.S.x = x;
    V.S.n = n;
    V.S.d = d;
    V.S.k = (size_t)p->k;
    V.S.p = p;
    V.S.inner = *p;
    V.S.inner.progress.report = NULL;
    V.S.a = scratch;
    V.S.nt = V.g.nt;
    atomic_init(&V.S.stop, 0);
    size_t mark = hl_arena_mark(scratch);
    hl_status st = ivf_run(&V, idx, sim);
    hl_arena_reset(scratch, mark);
    if (st == HL_OK)
        progress(&V, 1.0); /* the refinement may stop before its last round */
    return st;
}
