#!/usr/bin/python3
"""bench/knn.py - exact kNN self-search: hilander (bench_knn) vs FAISS IndexFlatIP.

Both sides search the same file in the same run:
  1. Generates N x D clustered data with a fixed seed (vMF-like blobs: unit centres plus
     Gaussian noise, every row normalised to unit length) into bench/data/ (reused if present).
  2. Runs <build>/bench/bench_knn (OpenBLAS single-threaded inside our tasks, one engine thread
     per core) and FAISS IndexFlatIP.search (default OpenMP threads; its sgemm goes through
     libblas.so.3) alternately, REPS times each, every run in a fresh process.
  3. Prints the median wall time of the search call of each side, the ratio ours/FAISS, each
     side's peak RSS (VmHWM of the measuring process), the recall of our neighbour lists
     against FAISS's, and the BLAS libraries and environment settings in effect (left as found).
  4. Optionally (--faiss-extra VAR=VALUE,..., repeatable) also times FAISS with some variables
     changed, as a supplementary comparison; the headline ratio always uses the environment
     as found.

Usage: /usr/bin/python3 bench/knn.py [--n 100000] [--d 128] [--k 10] [--reps 3]
                                     [--build build-bench] [--seed 12345]
Run bench/knn.sh to build the tool first.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def gen_data(path, n, d, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    n_centres = max(1, n // 100)
    centres = rng.standard_normal((n_centres, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, n_centres, size=n)
    # Noise norm ~ 0.1 * sqrt(128) ~ 1.1: cosine to the centre ~ 0.65, between neighbours ~ 0.45.
    x = centres[labels] + 0.1 * rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    x.astype(np.float32).tofile(tmp)
    os.replace(tmp, path)


def peak_rss_kb():
    """VmHWM of this process; ru_maxrss would include the parent's RSS (kept across execve)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def faiss_worker(data, n, d, k, out):
    """Runs in its own process so that its peak RSS is FAISS's alone."""
    import faiss
    import numpy as np

    x = np.fromfile(data, dtype=np.float32).reshape(n, d)
    index = faiss.IndexFlatIP(d)
    index.add(x)
    t0 = time.perf_counter()
    _, idx = index.search(x, k)
    t1 = time.perf_counter()
    idx.astype(np.int32).tofile(out)
    rss = peak_rss_kb()
    print(f"impl=faiss n={n} d={d} k={k} threads={faiss.omp_get_max_threads()} "
          f"seconds={t1 - t0:.3f} maxrss_kb={rss} version={faiss.__version__}")


def run(cmd, env=None):
    res = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    line = res.stdout.strip().splitlines()[-1]
    kv = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
    return line, float(kv["seconds"]), int(kv["maxrss_kb"])


def sh(cmd):
    res = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    return res.stdout.strip()


def print_env(tool):
    model = sh("lscpu | sed -n 's/^Model name: *//p'")
    print(f"machine: {model}, {os.cpu_count()} cpus; load: {sh('cat /proc/loadavg')}")
    blas = sh("update-alternatives --query libblas.so.3-x86_64-linux-gnu | sed -n 's/^Value: //p'")
    print(f"blas (numpy/faiss via libblas.so.3): {blas}")
    ours = sh(f"ldd {tool} | grep -o 'libopenblas[^ ]* => [^ ]*'")
    print(f"blas (hilander, pkg-config openblas: {sh('pkg-config --libs openblas')}): {ours}")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS",
                "OPENBLAS_NUM_THREADS"):
        print(f"{var}={os.environ.get(var, '(unset)')}")


def recall_report(data, n, d, k, ours_path, faiss_path):
    import numpy as np

    ours = np.fromfile(ours_path, dtype=np.int32).reshape(n, k)
    ref = np.fromfile(faiss_path, dtype=np.int32).reshape(n, k)
    hits = sum(int((ours[i:i + 4096, :, None] == ref[i:i + 4096, None, :]).any(2).sum())
               for i in range(0, n, 4096))
    print(f"recall ours vs faiss: {hits / (n * k):.6f}")
    # Any mismatch should be a tie: compare the sorted similarity lists in float64.
    x = np.fromfile(data, dtype=np.float32).reshape(n, d).astype(np.float64)
    worst = 0.0
    for i in range(0, n, 4096):
        xs = x[i:i + 4096]
        so = np.sort(np.einsum("nd,nkd->nk", xs, x[ours[i:i + 4096]]), axis=1)
        sf = np.sort(np.einsum("nd,nkd->nk", xs, x[ref[i:i + 4096]]), axis=1)
        worst = max(worst, float(np.abs(so - sf).max()))
    print(f"max |sorted sim ours - sorted sim faiss| (float64 recomputed): {worst:.3g}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--faiss-worker", nargs=5, metavar=("DATA", "N", "D", "K", "OUT"))
    ap.add_argument("--faiss-extra", action="append", default=[], metavar="VAR=VALUE,...")
    ap.add_argument("--gen", nargs=4, metavar=("DATA", "N", "D", "SEED"))
    a = ap.parse_args()
    if a.gen:
        gen_data(a.gen[0], int(a.gen[1]), int(a.gen[2]), int(a.gen[3]))
        return
    if a.faiss_worker:
        w = a.faiss_worker
        faiss_worker(w[0], int(w[1]), int(w[2]), int(w[3]), w[4])
        return
    tool = os.path.join(a.build, "bench", "bench_knn")
    data = os.path.join(ROOT, "bench", "data", f"blobs_{a.n}x{a.d}_s{a.seed}.f32")
    out_dir = os.path.join(ROOT, "bench", "out")
    os.makedirs(out_dir, exist_ok=True)
    if not os.path.exists(data):
        # In a child process, so that this parent stays small while the timed runs fork.
        subprocess.run([sys.executable, os.path.abspath(__file__), "--gen", data, str(a.n),
                        str(a.d), str(a.seed)], check=True)
    print(f"data: {data} ({a.n} x {a.d}, seed {a.seed}), k={a.k}, reps={a.reps}")
    print_env(tool)
    ours_out = os.path.join(out_dir, "knn_ours.i32")
    faiss_out = os.path.join(out_dir, "knn_faiss.i32")
    ours_cmd = [tool, "--data", data, "--n", str(a.n), "--d", str(a.d), "--k", str(a.k),
                "--out", ours_out]
    faiss_cmd = [sys.executable, os.path.abspath(__file__), "--faiss-worker", data, str(a.n),
                 str(a.d), str(a.k), faiss_out]
    t_ours, t_faiss, rss_ours, rss_faiss = [], [], [], []
    for _ in range(a.reps):
        line, t, rss = run(ours_cmd)
        print(line)
        t_ours.append(t)
        rss_ours.append(rss)
        line, t, rss = run(faiss_cmd)
        print(line)
        t_faiss.append(t)
        rss_faiss.append(rss)
    mo, mf = statistics.median(t_ours), statistics.median(t_faiss)
    print(f"median seconds: hilander {mo:.3f}  faiss {mf:.3f}  ratio ours/faiss {mo / mf:.3f}")
    print(f"peak RSS (max over runs): hilander {max(rss_ours) / 1024:.1f} MiB  "
          f"faiss {max(rss_faiss) / 1024:.1f} MiB")
    for extra in a.faiss_extra:
        env = dict(os.environ)
        env.update(kv.split("=", 1) for kv in extra.split(","))
        times = []
        for _ in range(a.reps):
            line, t, _ = run(faiss_cmd, env)
            print(f"[{extra}] {line}")
            times.append(t)
        me = statistics.median(times)
        print(f"supplementary: faiss with {extra}: median {me:.3f} s, ratio ours/faiss {mo / me:.3f}")
    recall_report(data, a.n, a.d, a.k, ours_out, faiss_out)
    print(f"load after: {sh('cat /proc/loadavg')}")


if __name__ == "__main__":
    main()
