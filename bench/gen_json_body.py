#!/usr/bin/python3
"""bench/gen_json_body.py - writes a POST /v1/cluster JSON body for bench_json.

The embeddings are float32 (standard normal times 0.05, fixed seed) serialised the way a
Python client does it: json.dumps(arr.tolist()), i.e. each float32 widened to a Python float
and written as its shortest double repr (e.g. -0.012345679104328156). Alongside the body it
writes <out>.f32, the same matrix as raw little-endian float32, so bench_json can check every
decoded value bit for bit.

With --short, each value is written as its shortest float32 repr instead (-0.012345679,
NumPy's str of a float32), about 12 bytes a number instead of 21.

Usage: /usr/bin/python3 bench/gen_json_body.py OUT [--n 100000] [--d 128] [--seed 7] [--ids]
                                               [--short]
"""
import argparse
import json
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--ids", action="store_true", help="add an ids array")
    ap.add_argument("--short", action="store_true", help="shortest float32 reprs")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    x = (rng.standard_normal((a.n, a.d)) * 0.05).astype(np.float32)
    body = {"embeddings": x.tolist()}
    if a.ids:
        body["ids"] = ["photo-%d" % i for i in range(a.n)]
    with open(a.out, "w") as f:
        if a.short:
            rows = x.astype(str)
            f.write('{"embeddings": [')
            f.write(", ".join("[" + ", ".join(r) + "]" for r in rows))
            f.write("]")
            if a.ids:
                f.write(', "ids": ' + json.dumps(body["ids"]))
            f.write("}")
        else:
            json.dump(body, f)
    x.astype("<f4").tofile(a.out + ".f32")
    return 0


if __name__ == "__main__":
    sys.exit(main())
