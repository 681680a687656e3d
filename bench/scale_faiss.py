#!/usr/bin/env python3
"""FAISS references for bench/scale.sh: IndexFlatIP and IndexIVFFlat on the same .npy.

Times exact search of Q sample queries (rows floor(j * n / Q), as bench_scale) with
IndexFlatIP and scales it to all n rows; trains an IndexIVFFlat (inner product, spherical
k-means) and, for each nprobe, times the sample's search and measures recall@k against the
exact neighbour ids bench_scale wrote (--gt). Prints one key=value line per measurement.
FAISS runs with --threads OpenMP threads, the same count as hilander.
"""
import argparse
import os
import time

import faiss
import numpy as np


def load1():
    return os.getloadavg()[0]


def recall(approx, exact):
    hit = tot = 0
    for a, e in zip(approx, exact):
        e = e[e >= 0]
        tot += len(e)
        hit += len(np.intersect1d(a, e))
    return hit / tot


def hnsw(a, x, q, gt):
    """FAISS HNSW (IndexHNSWFlat, inner product): build time, then per efSearch the sample's
    search time and recall; full estimate = build + search time scaled to all n rows."""
    n, d = x.shape
    nq = len(q)
    index = faiss.IndexHNSWFlat(d, a.hnsw, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 2 * a.hnsw if a.hnsw >= 20 else 40
    l0, t0 = load1(), time.time()
    index.add(x)
    t_build = time.time() - t0
    print(f"step=faiss_hnsw_build n={n} M={a.hnsw} efConstruction={index.hnsw.efConstruction} "
          f"seconds={t_build:.3f} load1={l0:.2f}", flush=True)
    for ef in [int(v) for v in a.ef.split(",")]:
        index.hnsw.efSearch = ef
        l0, t0 = load1(), time.time()
        _, ii = index.search(q, a.k)
        t = time.time() - t0
        r = recall(ii, gt)
        print(f"step=faiss_hnsw n={n} M={a.hnsw} efSearch={ef} queries={nq} seconds={t:.3f} "
              f"load1={l0:.2f} full_estimate_seconds={t_build + t * n / nq:.1f} recall={r:.4f}",
              flush=True)
        if r >= 0.999:
            break


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--in", dest="inp", required=True)
    ap.add_argument("--gt", required=True, help="Q x k exact ids from bench_scale --sample-out")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--nlist", type=int, default=0, help="0: 4 sqrt(n)")
    ap.add_argument("--nprobe", default="1,2,4,8,16,32,64,128,256")
    ap.add_argument("--train", type=int, default=64, help="training rows per list")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--flat-queries", type=int, default=0, help="flat search on the first F "
                    "sample queries only (0: all), scaled to n")
    ap.add_argument("--hnsw", type=int, default=0, help="also FAISS IndexHNSWFlat with this M")
    ap.add_argument("--ef", default="16,32,64,128,256", help="HNSW efSearch values")
    ap.add_argument("--no-ivf", action="store_true", help="skip the flat and IVF references")
    ap.add_argument("--ours-ivf-seconds", type=float, default=0.0)
    ap.add_argument("--ours-recall", type=float, default=0.0)
    ap.add_argument("--ours-exact-seconds", type=float, default=0.0)
    a = ap.parse_args()
    faiss.omp_set_num_threads(a.threads)
    x = np.load(a.inp).astype(np.float32, copy=False)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)
    n, d = x.shape
    gt = np.load(a.gt)
    nq = len(gt)
    q = np.ascontiguousarray(x[np.arange(nq) * n // nq])
    scale = n / nq

    if a.hnsw > 0:
        hnsw(a, x, q, gt)
    if a.no_ivf:
        return
    fq = a.flat_queries if 0 < a.flat_queries < nq else nq
    flat = faiss.IndexFlatIP(d)
    flat.add(x)
    l0, t0 = load1(), time.time()
    _, fi = flat.search(q[:fq], a.k)
    t = time.time() - t0
    flat_full = t * n / fq
    print(f"step=faiss_flat n={n} queries={fq} seconds={t:.3f} load1={l0:.2f} "
          f"full_estimate_seconds={flat_full:.1f} recall={recall(fi, gt[:fq]):.4f}", flush=True)
    if a.ours_exact_seconds > 0:
        print(f"ratio ours_exact/faiss_flat={a.ours_exact_seconds / flat_full:.2f}", flush=True)
    del flat

    nlist = a.nlist or int(4 * np.sqrt(n))
    quant = faiss.IndexFlatIP(d)
    ivf = faiss.IndexIVFFlat(quant, d, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.cp.spherical = True
    ivf.cp.seed = a.seed
    ivf.cp.niter = 10
    m = min(n, a.train * nlist)
    rng = np.random.default_rng(a.seed)
    sample = x[np.sort(rng.choice(n, m, replace=False))]
    l0, t0 = load1(), time.time()
    ivf.train(sample)
    t_train = time.time() - t0
    t0 = time.time()
    ivf.add(x)
    t_add = time.time() - t0
    print(f"step=faiss_ivf_build n={n} nlist={nlist} train_rows={m} train_seconds={t_train:.3f} "
          f"add_seconds={t_add:.3f} load1={l0:.2f}", flush=True)
    match = None
    for p in [int(v) for v in a.nprobe.split(",")]:
        ivf.nprobe = p
        l0, t0 = load1(), time.time()
        _, ii = ivf.search(q, a.k)
        t = time.time() - t0
        print(f"step=faiss_ivf n={n} nlist={nlist} nprobe={p} queries={nq} seconds={t:.3f} "
              f"load1={l0:.2f} full_search_estimate_seconds={t * scale:.1f} "
              f"full_estimate_seconds={t_train + t_add + t * scale:.1f} "
              f"recall={recall(ii, gt):.4f}", flush=True)
        if match is None and recall(ii, gt) >= a.ours_recall:
            match = (p, recall(ii, gt), t_train + t_add + t * scale)
        if recall(ii, gt) >= 0.999:
            break
    if a.ours_ivf_seconds > 0:
        if match is None:
            print(f"ratio ours_ivf/faiss_ivf: no nprobe reached recall {a.ours_recall:.4f}")
        else:
            print(f"ratio ours_ivf/faiss_ivf={a.ours_ivf_seconds / match[2]:.2f} (faiss nprobe "
                  f"{match[0]} recall {match[1]:.4f} vs ours {a.ours_recall:.4f})", flush=True)


if __name__ == "__main__":
    main()
