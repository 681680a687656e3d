#!/usr/bin/python3
"""Clustering baselines for the accuracy benchmark (issue 4), and their knob tuning.

Methods (each maps L2-normalised features X (N, D) to int labels >= 0):
  kmeans   spherical k-means (FAISS), K = the true number of classes of the set; no knob
  dbscan   sklearn DBSCAN, metric cosine, min_samples 2; knob eps; noise points -> singletons
  hac      sklearn average-link AgglomerativeClustering, metric cosine, connectivity = exact
           kNN-10 graph; knob distance_threshold
  knn_cc   exact kNN-10 graph (FAISS IndexFlatIP), keep edges with similarity > t, connected
           components; knob t
  finch    FINCH (Sarfraz et al., CVPR 2019), first-neighbour partitions repeated on cluster
           means; knob = which level to return
  hilander the hilander CLI (`cluster --model none`, or a model file); knob tau (tuned only for
           --model none; models use the tau stored in the model)

Every prediction is scored by `hilander eval --json` (same code for every method). Knobs are
tuned on a tuning set only: a coarse grid, then a finer grid around the best coarse value,
maximising pairwise F (Fp), ties broken by BCubed F (Fb).

Run as a module from run.py; `baselines.py tune|run ...` works stand-alone too (see --help).
Needs /usr/bin/python3 (numpy, scipy, sklearn, faiss).
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import faiss
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
HILANDER = os.path.join(REPO, "build", "cli", "hilander")

SEED = 1234  # k-means seed
K_GRAPH = 10  # neighbours per point (not counting the point itself) for hac / knn_cc
# Bump when a grid or a method's definition changes: cached tuned values are then stale.
TUNING_VERSION = 2

# Coarse grids (step 0.05), then two refinements around the best value so far: +- 4 steps of
# 0.0125, then +- 4 steps of 0.003125 (the synthetic sets have sharp optima). Ascending for
# dbscan so that the eps-graph grows; descending for hilander tau so that the fast (few links)
# runs come first.
GRIDS = {
    "dbscan": [round(0.05 * i, 4) for i in range(1, 17)],  # eps 0.05 .. 0.80
    "hac": [round(0.05 * i, 4) for i in range(1, 19)],  # distance 0.05 .. 0.90
    "knn_cc": [round(0.05 * i, 4) for i in range(4, 20)],  # similarity 0.20 .. 0.95
    "hilander_none": [round(0.05 * i, 4) for i in range(19, 3, -1)],  # tau 0.95 .. 0.20
}
FINE_STEPS = (0.0125, 0.003125)
FINE_HALF = 4
# dbscan tuning stops growing eps when the eps-graph would exceed this many directed pairs
# (the clustering is one giant component long before that; it also bounds memory).
MAX_PAIRS = 30_000_000


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# scoring (hilander eval)


def contiguous(labels):
    """int labels (negative = noise) -> int32 0..C-1, each noise point its own cluster."""
    labels = np.asarray(labels).astype(np.int64).copy()
    noise = labels < 0
    if noise.any():
        base = labels.max() + 1 if (~noise).any() else 0
        labels[noise] = base + np.arange(int(noise.sum()))
    _, inv = np.unique(labels, return_inverse=True)
    return inv.astype(np.int32)


class Scorer:
    """Scores predictions with `hilander eval --json` on .npy files."""

    def __init__(self, hilander=HILANDER):
        self.hilander = hilander
        self.tmp = tempfile.TemporaryDirectory(prefix="hl_acc_")

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def score(self, pred, true_path):
        p = self.path("pred.npy")
        np.save(p, contiguous(pred))
        return self.score_file(p, true_path)

    def score_file(self, pred_path, true_path):
        out = subprocess.run(
            [self.hilander, "eval", "--pred", pred_path, "--true", true_path, "--json"],
            check=True, capture_output=True, text=True).stdout
        # hilander prints nan/-nan for an undefined precision (all singletons): not JSON.
        out = re.sub(r"-?\bnan\b", "NaN", out)
        r = json.loads(out)
        for k in list(r):
            if isinstance(r[k], float) and math.isnan(r[k]):
                r[k] = 0.0 if k in ("fp", "fb") else r[k]
        return r


def key(r):
    """Ranking of a result: Fp, then Fb (rounded so that float noise does not decide)."""
    return (round(r["fp"], 6), round(r["fb"], 6))


# --------------------------------------------------------------------------------------------
# helpers


def normalize(X):
    X = np.ascontiguousarray(X, dtype=np.float32)
    n = np.linalg.norm(X, axis=1, keepdims=True)
    n[n == 0] = 1
    return np.ascontiguousarray(X / n, dtype=np.float32)


def knn(X, k):
    """Exact cosine kNN of normalised X, the point itself removed: (S, I), each (N, k)."""
    index = faiss.IndexFlatIP(X.shape[1])
    index.add(X)
    S, I = index.search(X, k + 1)
    n = X.shape[0]
    # Drop the point itself (usually column 0; with duplicates it may appear elsewhere).
    is_self = I == np.arange(n)[:, None]
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
    keep = np.ones_like(I, dtype=bool)
    keep[np.arange(n), drop] = False
    return S[keep].reshape(n, k), I[keep].reshape(n, k)


def components(rows, cols, n):
    g = csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    return connected_components(g, directed=False)[1].astype(np.int32)


# --------------------------------------------------------------------------------------------
# methods


def run_kmeans(X, n_classes, seed=SEED):
    km = faiss.Kmeans(X.shape[1], int(n_classes), niter=25, seed=seed, spherical=True,
                      verbose=False)
    km.train(X)
    index = faiss.IndexFlatIP(X.shape[1])
    index.add(km.centroids)
    return index.search(X, 1)[1][:, 0].astype(np.int32)


def run_dbscan(X, eps):
    from sklearn.cluster import DBSCAN
    return DBSCAN(eps=eps, min_samples=2, metric="cosine", n_jobs=2).fit(X).labels_


class DbscanGraph:
    """DBSCAN with min_samples 2 is exactly the connected components of the eps-graph (a point
    with one neighbour within eps is a core point; isolated points are noise, i.e.
    singletons). For tuning, one exact range search (FAISS) at the largest grid eps whose
    graph stays under MAX_PAIRS pairs; each eps <= that is then a filter plus connected
    components. The chosen eps is re-checked with sklearn's DBSCAN."""

    def __init__(self, X, grid):
        n = X.shape[0]
        self.n = n
        rng = np.random.default_rng(0)
        sample = X[rng.choice(n, min(n, 500), replace=False)]
        sims = (sample @ X.T).ravel()
        ok = [e for e in grid
              if np.count_nonzero(sims >= 1.0 - e) * n / sample.shape[0] <= MAX_PAIRS]
        self.eps_hi = max(ok) if ok else min(grid)
        index = faiss.IndexFlatIP(X.shape[1])
        index.add(X)
        lims, D, I = index.range_search(X, 1.0 - self.eps_hi - 1e-6)
        self.rows = np.repeat(np.arange(n), np.diff(lims).astype(np.int64))
        self.cols = I
        self.dist = 1.0 - D
        log("  eps-graph at eps %g: %d pairs" % (self.eps_hi, len(I)))

    def labels(self, eps):
        if eps > self.eps_hi + 1e-9:
            return None
        m = self.dist <= eps + 1e-6
        return components(self.rows[m], self.cols[m], self.n)


def knn_connectivity(X, k=K_GRAPH):
    S, I = knn(X, k)
    n = X.shape[0]
    return csr_matrix((np.ones(n * k, dtype=np.float32), (np.repeat(np.arange(n), k), I.ravel())),
                      shape=(n, n))


def hac_model(X, threshold):
    from sklearn.cluster import AgglomerativeClustering
    return AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                   connectivity=knn_connectivity(X), distance_threshold=threshold,
                                   compute_full_tree=True).fit(X)


def run_hac(X, threshold):
    return hac_model(X, threshold).labels_


def hac_cut(model, threshold):
    """The labels sklearn would return for another distance_threshold (same tree)."""
    from sklearn.cluster._agglomerative import _hc_cut
    n_clusters = int(np.count_nonzero(model.distances_ >= threshold)) + 1
    return _hc_cut(n_clusters, model.children_, model.n_leaves_)


def run_knn_cc(X, threshold, graph=None):
    S, I = graph if graph is not None else knn(X, K_GRAPH)
    n = X.shape[0]
    m = S > threshold
    return components(np.repeat(np.arange(n), S.shape[1])[m.ravel()], I[m], n)


def finch_levels(X, max_level=None):
    """FINCH partitions, finest first, written from the paper's definition.

    Level 1: kappa_i = the first (nearest, cosine) neighbour of point i; A(i, j) = 1 if
    j = kappa_i, or kappa_j = i, or kappa_i = kappa_j; the connected components of A are the
    clusters. (kappa_i = kappa_j links i and j through kappa_i, so the components are those of
    the undirected graph i -- kappa_i.) Level l+1 repeats this on the means of the original
    points of the level-l clusters. Stops at one cluster, when a level merges nothing, or
    after max_level levels. Returns a list of (N,) label arrays.
    """
    n = X.shape[0]
    feats = X
    assign = np.arange(n)
    levels = []
    while feats.shape[0] > 1 and (max_level is None or len(levels) < max_level):
        m = feats.shape[0]
        F = normalize(feats)
        index = faiss.IndexFlatIP(F.shape[1])
        index.add(F)
        _, I = index.search(F, 2)
        kappa = np.where(I[:, 0] == np.arange(m), I[:, 1], I[:, 0])
        kappa = np.where(kappa < 0, np.arange(m), kappa)  # (cannot happen for m >= 2)
        lab = components(np.arange(m), kappa, m)
        c = int(lab.max()) + 1
        if c == m:
            break
        assign = lab[assign]
        levels.append(assign.copy())
        # Cluster means of the original (normalised) points.
        sums = np.zeros((c, X.shape[1]), dtype=np.float64)
        np.add.at(sums, assign, X)
        feats = (sums / np.bincount(assign, minlength=c)[:, None]).astype(np.float32)
    return levels


def run_finch(X, level):
    """Labels of FINCH level `level` (1-based; the last level if there are fewer), and the
    number of levels."""
    levels = finch_levels(X)
    return levels[min(level, len(levels)) - 1], len(levels)


def run_hilander(in_path, model, out_path, tau=None, hilander=HILANDER):
    cmd = [hilander, "cluster", "--in", in_path, "--model", model, "--out", out_path, "--quiet"]
    if tau is not None:
        cmd += ["--tau", "%g" % tau]
    subprocess.run(cmd, check=True)
    return cmd


# --------------------------------------------------------------------------------------------
# tuning


def fine_grid(best, step, done, lo, hi):
    out = []
    for i in range(-FINE_HALF, FINE_HALF + 1):
        v = round(best + i * step, 6)
        if lo <= v <= hi and v not in done:
            out.append(v)
    return out


def search(name, evaluate, coarse, lo, hi, early_stop=False):
    """evaluate(v) -> score dict or None (skipped). Coarse grid (in the given order), then the
    fine grids around the best. With early_stop, the coarse pass stops after two scores below
    the running best (Fp > 0) with no improvement between (the curves are unimodal in
    practice)."""
    trials = []
    best = None
    worse = 0

    def trial(v):
        nonlocal best
        t0 = time.time()
        r = evaluate(v)
        if r is None:
            log("  %-14s %-8g skipped" % (name, v))
            return None
        trials.append({"value": v, "fp": r["fp"], "fb": r["fb"], "nmi": r["nmi"],
                       "n_pred": r["n_pred"]})
        log("  %-14s %-9g Fp %.4f Fb %.4f clusters %6d  (%.1f s)"
            % (name, v, r["fp"], r["fb"], r["n_pred"], time.time() - t0))
        if best is None or key(r) > key(best[1]):
            best = (v, r)
            return 1
        # Worse than a best that is not degenerate (Fp 0: no pairs found yet).
        return -1 if key(r) < key(best[1]) and best[1]["fp"] > 0 else 0

    for v in coarse:
        step = trial(v)
        if step is None:
            break
        worse = worse + 1 if step < 0 else (0 if step > 0 else worse)
        if early_stop and worse >= 2:
            break
    for step in FINE_STEPS:
        for v in fine_grid(best[0], step, set(round(t["value"], 6) for t in trials), lo, hi):
            trial(v)
    return best[0], best[1], sorted(trials, key=lambda t: t["value"])


def tune(X, y_path, x_path, scorer, methods=None, hilander=HILANDER):
    """Tune every knob on the tuning set (X normalised, labels at y_path, features at
    x_path). Returns {method: {"knob": .., "value": .., "tuning": {fp, fb, ...}, "trials":
    [..]}}."""
    methods = methods or ["dbscan", "hac", "knn_cc", "finch", "hilander_none"]
    out = {}
    n = X.shape[0]

    def entry(knob, value, r, trials, **extra):
        d = {"knob": knob, "value": value,
             "tuning": {k: r[k] for k in ("fp", "fp_precision", "fp_recall", "fb",
                                          "fb_precision", "fb_recall", "nmi", "n_pred")},
             "trials": trials}
        d.update(extra)
        return d

    if "knn_cc" in methods:
        log("tuning knn_cc (similarity threshold) on %d points" % n)
        graph = knn(X, K_GRAPH)
        g = GRIDS["knn_cc"]
        v, r, trials = search("knn_cc", lambda t: scorer.score(run_knn_cc(X, t, graph), y_path),
                              g, 0.0, 1.0)
        out["knn_cc"] = entry("similarity threshold", v, r, trials)

    if "hac" in methods:
        log("tuning hac (distance_threshold): one full tree, cut at each threshold")
        t0 = time.time()
        model = hac_model(X, GRIDS["hac"][0])
        log("  tree built in %.1f s" % (time.time() - t0))
        v, r, trials = search("hac", lambda t: scorer.score(hac_cut(model, t), y_path),
                              GRIDS["hac"], 0.0, 2.0)
        out["hac"] = entry("distance_threshold", v, r, trials)

    if "finch" in methods:
        log("tuning finch (level)")
        levels = finch_levels(X)
        trials = []
        best = None
        for i, lab in enumerate(levels, 1):
            r = scorer.score(lab, y_path)
            trials.append({"value": i, "fp": r["fp"], "fb": r["fb"], "nmi": r["nmi"],
                           "n_pred": r["n_pred"]})
            log("  finch level %d: Fp %.4f Fb %.4f clusters %d" % (i, r["fp"], r["fb"], r["n_pred"]))
            if best is None or key(r) > key(best[1]):
                best = (i, r)
        out["finch"] = entry("level", best[0], best[1], trials, n_levels=len(levels))

    if "dbscan" in methods:
        log("tuning dbscan (eps) via the eps-graph components (exact for min_samples 2)")

        t0 = time.time()
        graph = DbscanGraph(X, GRIDS["dbscan"])
        log("  (%.1f s)" % (time.time() - t0))

        def ev(eps):
            lab = graph.labels(eps)
            return None if lab is None else scorer.score(lab, y_path)

        v, r, trials = search("dbscan", ev, GRIDS["dbscan"], 0.0, 1.0, early_stop=True)
        # Re-check the chosen eps with sklearn itself.
        t0 = time.time()
        rs = scorer.score(run_dbscan(X, v), y_path)
        log("  sklearn DBSCAN at eps %g: Fp %.4f Fb %.4f (fast path Fp %.4f) %.1f s"
            % (v, rs["fp"], rs["fb"], r["fp"], time.time() - t0))
        out["dbscan"] = entry("eps", v, rs, trials, fast_path_fp=r["fp"])

    if "hilander_none" in methods:
        log("tuning hilander --model none (tau)")
        p = scorer.path("hl_tune.npy")

        def ev(tau):
            run_hilander(x_path, "none", p, tau, hilander)
            return scorer.score_file(p, y_path)

        v, r, trials = search("hilander none", ev, GRIDS["hilander_none"], 0.0, 1.0,
                              early_stop=True)
        out["hilander_none"] = entry("tau", v, r, trials)
    return out


# --------------------------------------------------------------------------------------------
# stand-alone use


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tune", help="tune every knob on one labelled set; prints JSON")
    t.add_argument("--features", required=True)
    t.add_argument("--labels", required=True)
    t.add_argument("--methods", default="dbscan,hac,knn_cc,finch,hilander_none")
    r = sub.add_parser("run", help="run one method with a given knob; prints the scores")
    r.add_argument("--features", required=True)
    r.add_argument("--labels", required=True)
    r.add_argument("--method", required=True,
                   choices=["kmeans", "dbscan", "hac", "knn_cc", "finch"])
    r.add_argument("--value", type=float, help="the knob (not for kmeans)")
    a = ap.parse_args()
    faiss.omp_set_num_threads(2)
    scorer = Scorer()
    X = normalize(np.load(a.features))
    if a.cmd == "tune":
        res = tune(X, a.labels, a.features, scorer, a.methods.split(","))
        print(json.dumps({m: {k: v for k, v in d.items() if k != "trials"}
                          for m, d in res.items()}, indent=1))
    else:
        t0 = time.time()
        if a.method == "kmeans":
            lab = run_kmeans(X, len(np.unique(np.load(a.labels))))
        elif a.method == "finch":
            lab = run_finch(X, int(a.value))[0]
        else:
            lab = {"dbscan": run_dbscan, "hac": run_hac, "knn_cc": run_knn_cc}[a.method](X, a.value)
        dt = time.time() - t0
        res = scorer.score(lab, a.labels)
        res["seconds"] = round(dt, 2)
        print(json.dumps(res))


if __name__ == "__main__":
    main()
