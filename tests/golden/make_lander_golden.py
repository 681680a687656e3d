#!/usr/bin/python3
"""Golden outputs of the LANDER forward pass, computed by an independent PyTorch model.

Run with /usr/bin/python3 (needs torch and numpy):

    /usr/bin/python3 tests/golden/make_lander_golden.py [--out tests/golden/lander]

Everything here is written from the spec (docs/hilander.md sections 1 and 2), not from the C
code: the kNN graph is built in numpy with float64 similarities and an explicit sort, the
model is a torch nn.Module that works on an edge list with index_add_, and the model file
writer follows the layout comment of proto/include/hl/modelfile.h.

Per case the directory tests/golden/lander/<case>/ gets:
    model.hlm        our model file (kind 1 lander), name=golden-<case>; absent when
                     meta.txt says model=generated (see below)
    x.f32            n x D raw input features (not normalised), float32 little-endian
    c.f32            n x D cluster features (the normalised x for a level-0 style case)
    nbr.i32          n x (k-1) expected in-neighbours in kNN order, -1 in unused slots
    sim.f32          n x (k-1) their cosine similarities, 0 in unused slots
    prob.f32         n x (k-1) p1 of edge nbr -> i, 0 in unused slots (float64 model)
    dens.f32         n density head (float64 model)
    prob_t32.f32     the same from the float32 torch model (to see float32 noise)
    dens_t32.f32
    meta.txt         key=value lines: n, dim, k, hidden, n_conv, c_is_xnorm, model, ...

The hidden=512 case would need a ~1.4 MB model file, so its weights are instead defined by a
tiny counter-based generator that the C test reimplements (model=generated in meta.txt):
for tensor number t (model file table order) and element e (row-major),
    state = wseed * 0x9E3779B97F4A7C15 + t * 2^32 + e          (mod 2^64)
    u     = (splitmix64_mix(state) >> 40) * 2^-24               (in [0, 1))
    Linear weight or bias:  float32((2u - 1) * (gain / sqrt(fan_in)))   (double arithmetic)
    PReLU slope:            float32(-0.2 + 0.9 * u)
with gain = gain_conv for conv.*.weight, gain_head for the other Linear weights and 1 for
every bias (the PyTorch default bound). The file-based cases use the PyTorch default init
from a fixed seed with the same gains on the weights and the same PReLU slope range.
"""
import argparse
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ------------------------------------------------------------------------------------------
# CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF.


def _crc32c_table():
    table = []
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283
assert crc32c(b"56789", crc32c(b"1234")) == 0xE3069283

# ------------------------------------------------------------------------------------------
# Model file writer (proto/include/hl/modelfile.h, version 1.0).

HLM_HEADER_BYTES = 76
HLM_TABLE_ENTRY = 128
HLM_ALIGN = 64


def _align(v, a=HLM_ALIGN):
    return (v + a - 1) // a * a


def write_hlm(path, cfg, tensors, meta):
    """cfg: dict of the header fields; tensors: [(name, float32 array)] in table order."""
    entries = []
    off = 0
    for name, arr in tensors:
        arr = np.ascontiguousarray(arr, dtype="<f4")
        assert 1 <= arr.ndim <= 4 and len(name.encode()) < 64
        off = _align(off)
        entries.append((name, arr, off))
        off += arr.nbytes
    payload_bytes = off
    payload = bytearray(payload_bytes)
    for _, arr, o in entries:
        payload[o : o + arr.nbytes] = arr.tobytes()

    meta_b = meta.encode("utf-8")
    fixed = struct.pack(
        "<4sHHIIQIIIIIIIIIfIII",
        b"HLMD",
        1,  # major
        0,  # minor
        HLM_HEADER_BYTES,
        0,  # flags
        payload_bytes,
        len(entries),
        cfg["kind"],
        cfg["dim"],
        cfg["in_features"],
        cfg["edge_features"],
        cfg["hidden"],
        cfg["n_conv"],
        cfg["use_cluster_feat"],
        cfg["k"],
        cfg["tau"],
        len(meta_b),
        0,
        0,
    )
    assert len(fixed) == HLM_HEADER_BYTES
    table = bytearray()
    for name, arr, o in entries:
        dims = list(arr.shape) + [0] * (4 - arr.ndim)
        table += struct.pack("<64sII4QQQ8x", name.encode(), 0, arr.ndim, *dims, o, arr.nbytes)
    assert len(table) == HLM_TABLE_ENTRY * len(entries)
    head = fixed + meta_b + bytes(table)
    out = bytearray(head)
    out += struct.pack("<I", crc32c(head))
    out += bytes(_align(len(out)) - len(out))
    out += payload
    out += struct.pack("<I", crc32c(payload))
    with open(path, "wb") as f:
        f.write(out)
    return len(out)


# ------------------------------------------------------------------------------------------
# The LANDER face model (spec 1.3a, 1.4, 1.5, 1.6), on an edge list src -> dst.


def layer_dims(in_features, hidden, n_conv):
    h2 = hidden // 2
    ins = (in_features, hidden, hidden, h2)[:n_conv]
    outs = (hidden, hidden, h2, h2)[:n_conv]
    return list(zip(ins, outs))


class Lander(nn.Module):
    def __init__(self, in_features, hidden, n_conv):
        super().__init__()
        h2 = hidden // 2
        dims = layer_dims(in_features, hidden, n_conv)
        # GraphConvLayer: Linear(2*in -> out, bias) on concat(h_i, agg_i), then ReLU.
        self.conv = nn.ModuleList(nn.Linear(2 * i, o) for i, o in dims)
        out_last = dims[-1][1]
        self.src_mlp = nn.Linear(out_last, h2)
        self.dst_mlp = nn.Linear(out_last, h2)
        self.classifier = nn.Sequential(
            nn.PReLU(h2), nn.Linear(h2, h2), nn.PReLU(h2), nn.Linear(h2, 2)
        )

    def forward(self, h, src, dst, sim):
        n = h.shape[0]
        # affine: sim row-normalised over each centre's kept in-edges.
        rowsum = torch.zeros(n, dtype=h.dtype).index_add_(0, dst, sim)
        w = sim / rowsum[dst]
        for lin in self.conv:
            agg = torch.zeros_like(h).index_add_(0, dst, h[src] * w[:, None])
            h = F.relu(lin(torch.cat([h, agg], dim=1)))
        z = self.src_mlp(h[src]) + self.dst_mlp(h[dst])
        p1 = F.softmax(self.classifier(z), dim=1)[:, 1]
        deg = torch.zeros(n, dtype=h.dtype).index_add_(0, dst, torch.ones_like(sim))
        acc = torch.zeros(n, dtype=h.dtype).index_add_(0, dst, sim * (2.0 * p1 - 1.0))
        dens = torch.where(deg > 0, acc / deg.clamp(min=1.0), torch.zeros_like(acc))
        return p1, dens


def tensor_names(n_conv):
    names = []
    for l in range(n_conv):
        names += [f"conv.{l}.weight", f"conv.{l}.bias"]
    names += ["src_mlp.weight", "src_mlp.bias", "dst_mlp.weight", "dst_mlp.bias"]
    names += ["classifier.0.weight", "classifier.1.weight", "classifier.1.bias"]
    names += ["classifier.2.weight", "classifier.3.weight", "classifier.3.bias"]
    return names


def init_torch_weights(model, seed, gain_conv, gain_head):
    """PyTorch default init (seeded), Linear weights scaled by a gain, PReLU slopes random."""
    torch.manual_seed(seed)
    fresh = Lander(
        model.conv[0].in_features // 2, model.conv[0].out_features, len(model.conv)
    )  # default init from the seeded generator
    model.load_state_dict(fresh.state_dict())
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("classifier.0") or name.startswith("classifier.2"):
                p.uniform_(-0.2, 0.7)
            elif name.endswith(".bias"):
                pass  # biases keep the default U(+-1/sqrt(fan_in))
            elif name.startswith("conv."):
                p.mul_(gain_conv)
            else:
                p.mul_(gain_head)


def _mix64(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def generated_weights(model, wseed, gain_conv, gain_head):
    """Fills `model` with the counter-based weights documented at the top of the file."""
    sd = model.state_dict()
    names = tensor_names(len(model.conv))
    fan_in = {}
    for l, lin in enumerate(model.conv):
        fan_in[f"conv.{l}"] = lin.in_features
    fan_in["src_mlp"] = model.src_mlp.in_features
    fan_in["dst_mlp"] = model.dst_mlp.in_features
    fan_in["classifier.1"] = model.classifier[1].in_features
    fan_in["classifier.3"] = model.classifier[3].in_features
    with np.errstate(over="ignore"):
        for t, name in enumerate(names):
            shape = tuple(sd[name].shape)
            count = int(np.prod(shape))
            e = np.arange(count, dtype=np.uint64)
            state = (
                np.uint64(wseed) * np.uint64(0x9E3779B97F4A7C15)
                + np.uint64(t) * np.uint64(1 << 32)
                + e
            )
            u = (_mix64(state) >> np.uint64(40)).astype(np.float64) * 2.0**-24
            layer = name.rsplit(".", 1)[0]
            if layer in ("classifier.0", "classifier.2"):
                v = -0.2 + 0.9 * u
            else:
                gain = gain_conv if name.startswith("conv.") else gain_head
                if name.endswith(".bias"):
                    gain = 1.0
                v = (2.0 * u - 1.0) * (gain / np.sqrt(np.float64(fan_in[layer])))
            sd[name] = torch.from_numpy(v.astype(np.float32).reshape(shape))
    model.load_state_dict(sd)


# ------------------------------------------------------------------------------------------
# Graph construction (spec section 2 with our documented choices: ties by ascending index,
# similarity <= 0 dropped, at most k-1 neighbours even when self is not in the kNN row).


def l2norm64(x):
    x = x.astype(np.float64)
    nrm = np.sqrt((x * x).sum(axis=1))
    out = np.zeros_like(x)
    nz = nrm > 0
    out[nz] = x[nz] / nrm[nz, None]
    return out


def build_graph(xn64, k, margin=1e-5):
    n = xn64.shape[0]
    S = xn64 @ xn64.T
    width = k - 1
    nbr = np.full((n, width), -1, dtype=np.int64)
    sim = np.zeros((n, width), dtype=np.float64)
    idx = np.arange(n)
    for i in range(n):
        order = np.lexsort((idx, -S[i]))  # similarity descending, then index ascending
        s = S[i, order]
        top = order[:k]
        # The float32 C search must see the same order: every gap between consecutive
        # similarities up to the k-th boundary is either an exact tie or clearly resolved,
        # and no listed similarity is within the margin of the 0 threshold unless exactly 0.
        for p in range(min(k, n - 1)):
            gap = s[p] - s[p + 1]
            if gap != 0.0 and gap < margin:
                raise ValueError(f"row {i}: near tie at rank {p} (gap {gap:.3g})")
        for p in range(min(k, n)):
            if s[p] != 0.0 and abs(s[p]) < margin:
                raise ValueError(f"row {i}: similarity {s[p]:.3g} near 0 at rank {p}")
        deg = 0
        for j in top:
            if j == i or S[i, j] <= 0.0:
                continue
            if deg == width:
                break
            nbr[i, deg] = j
            sim[i, deg] = S[i, j]
            deg += 1
    return nbr, sim


def edge_list(nbr):
    dst, slot = np.nonzero(nbr >= 0)
    src = nbr[dst, slot]
    return src, dst, slot


# ------------------------------------------------------------------------------------------
# Cases.


def blobs(rng, n, d, centres, sigma):
    c = rng.standard_normal((centres, d))
    lab = rng.integers(0, centres, n)
    return c[lab] + sigma * rng.standard_normal((n, d))


def cluster_means(rng, n, d):
    """A random non-normalised matrix with row norms in (0.2, 0.95)."""
    c = rng.standard_normal((n, d))
    c *= (rng.uniform(0.2, 0.95, n) / np.linalg.norm(c, axis=1))[:, None]
    return c


def case_a(rng):
    x = blobs(rng, 60, 8, 6, 0.5)
    return dict(x=x, k=5, hidden=16, n_conv=1, c=None, seed=101, gains=(2.0, 3.0))


def case_b(rng):
    x = blobs(rng, 40, 4, 5, 0.4)
    c = cluster_means(rng, 40, 4)
    return dict(x=x, k=10, hidden=8, n_conv=2, c=c, seed=202, gains=(2.0, 4.0))


def case_c(rng):
    """Zero row, exact duplicates (more than k of one), exact zero similarities, partial
    degrees, four conv layers."""
    d, k = 6, 8
    rnd = blobs(rng, 34, d, 4, 0.6)
    rnd[:, 5] = -np.abs(rnd[:, 5]) - 0.3  # most rows point away from +e5 ...
    rnd[:3, 5] = np.abs(rnd[:3, 5]) + 0.5  # ... except three
    axis = lambda a, v: np.eye(d)[a] * v  # noqa: E731 (powers of two normalise exactly)
    rows = list(rnd)
    rows += [np.zeros(d)]  # zero vector: no edges in or out
    rows += [axis(4, 2.0)] * 10  # 10 > k exact duplicates: some rows miss themselves
    rows += [axis(0, 4.0)] * 3  # a small duplicate group
    rows += [axis(5, 0.5)]  # +e5: only three random rows are on its side
    rows += [axis(2, -2.0)]
    x = np.array(rows)
    perm = rng.permutation(len(x))  # interleave so duplicates have scattered indices
    x = x[perm]
    c = cluster_means(rng, len(x), d)
    return dict(x=x, k=k, hidden=12, n_conv=4, c=c, seed=307, gains=(4.0, 3.0))


def case_d(rng):
    x = blobs(rng, 30, 16, 3, 0.7)
    return dict(x=x, k=10, hidden=512, n_conv=1, c=None, wseed=404, gains=(2.0, 4.0))


def case_e(rng):
    x = blobs(rng, 300, 8, 12, 0.5)
    c = cluster_means(rng, 300, 8)
    return dict(x=x, k=6, hidden=16, n_conv=2, c=c, seed=505, gains=(2.0, 4.0))


CASES = [
    ("a_level0", case_a, 11),
    ("b_twoconv", case_b, 12),
    ("c_ties", case_c, 13),
    ("d_wide", case_d, 14),
    ("e_blocks", case_e, 15),
]


def run_case(name, make, data_seed, outdir):
    rng = np.random.default_rng(data_seed)
    # Redraw (deterministically) until no near tie could make the float32 search disagree.
    for _ in range(20):
        spec = make(rng)
        x32 = spec["x"].astype(np.float32)
        xn64 = l2norm64(x32)
        try:
            nbr, sim64 = build_graph(xn64, spec["k"])
            break
        except ValueError as e:
            print(f"{name}: redraw ({e})")
    else:
        raise SystemExit(f"{name}: no draw without near ties")
    n, d = x32.shape
    k, hidden, n_conv = spec["k"], spec["hidden"], spec["n_conv"]
    c_is_xnorm = spec["c"] is None
    c64 = xn64 if c_is_xnorm else spec["c"].astype(np.float32).astype(np.float64)
    c32 = c64.astype(np.float32)

    src, dst, slot = edge_list(nbr)
    deg = (nbr >= 0).sum(axis=1)

    model = Lander(2 * d, hidden, n_conv)
    gain_conv, gain_head = spec["gains"]
    if "wseed" in spec:
        generated_weights(model, spec["wseed"], gain_conv, gain_head)
    else:
        init_torch_weights(model, spec["seed"], gain_conv, gain_head)
    assert [nm for nm, _ in model.named_parameters()] == tensor_names(n_conv)

    t_src, t_dst = torch.from_numpy(src), torch.from_numpy(dst)
    with torch.no_grad():
        # float64: the reference.
        m64 = Lander(2 * d, hidden, n_conv).double()
        m64.load_state_dict({kk: v.double() for kk, v in model.state_dict().items()})
        h64 = torch.from_numpy(np.concatenate([xn64, c64], axis=1))
        p64, d64 = m64(h64, t_src, t_dst, torch.from_numpy(sim64[dst, slot]))
        # float32: normalisation, similarities and the whole model in float32.
        xt = torch.from_numpy(x32)
        nrm = xt.norm(dim=1, keepdim=True)
        xn32 = torch.where(nrm > 0, xt / nrm.clamp(min=1e-30), torch.zeros_like(xt))
        ct = xn32 if c_is_xnorm else torch.from_numpy(c32)
        s32 = (xn32[t_src] * xn32[t_dst]).sum(dim=1)
        p32, d32 = model(torch.cat([xn32, ct], dim=1), t_src, t_dst, s32)

    width = k - 1

    def slots(v):
        out = np.zeros((n, width), dtype=np.float64)
        out[dst, slot] = v
        return out

    prob64, prob32 = slots(p64.numpy()), slots(p32.numpy().astype(np.float64))
    dens64, dens32 = d64.numpy(), d32.numpy().astype(np.float64)

    os.makedirs(os.path.join(outdir, name), exist_ok=True)
    path = lambda f: os.path.join(outdir, name, f)  # noqa: E731
    x32.astype("<f4").tofile(path("x.f32"))
    c32.astype("<f4").tofile(path("c.f32"))
    nbr.astype("<i4").tofile(path("nbr.i32"))
    sim64.astype("<f4").tofile(path("sim.f32"))
    prob64.astype("<f4").tofile(path("prob.f32"))
    dens64.astype("<f4").tofile(path("dens.f32"))
    prob32.astype("<f4").tofile(path("prob_t32.f32"))
    dens32.astype("<f4").tofile(path("dens_t32.f32"))

    meta = [
        f"n={n}",
        f"dim={d}",
        f"k={k}",
        f"hidden={hidden}",
        f"n_conv={n_conv}",
        f"c_is_xnorm={int(c_is_xnorm)}",
    ]
    model_path = path("model.hlm")
    if "wseed" in spec:
        meta += [
            "model=generated",
            f"wseed={spec['wseed']}",
            f"gain_conv={gain_conv!r}",
            f"gain_head={gain_head!r}",
        ]
        if os.path.exists(model_path):
            os.remove(model_path)
        size = 0
    else:
        meta += ["model=file"]
        cfg = dict(
            kind=1,
            dim=d,
            in_features=2 * d,
            edge_features=0,
            hidden=hidden,
            n_conv=n_conv,
            use_cluster_feat=1,
            k=k,
            tau=0.8,
        )
        sd = model.state_dict()
        tensors = [(nm, sd[nm].numpy()) for nm in tensor_names(n_conv)]
        size = write_hlm(
            model_path,
            cfg,
            tensors,
            f"name=golden-{name}\ntrained_on=random weights (tests/golden/make_lander_golden.py)\n",
        )
    with open(path("meta.txt"), "w") as f:
        f.write("\n".join(meta) + "\n")

    used = nbr >= 0
    print(
        f"{name}: n={n} D={d} k={k} hidden={hidden} n_conv={n_conv} "
        f"c_is_xnorm={int(c_is_xnorm)} edges={int(deg.sum())} "
        f"deg0={int((deg == 0).sum())} partial={int(((deg > 0) & (deg < width)).sum())} "
        f"model_bytes={size}"
    )
    print(
        f"    p1 range [{prob64[used].min():.4f}, {prob64[used].max():.4f}] "
        f"std {prob64[used].std():.4f}; dens range [{dens64.min():.4f}, {dens64.max():.4f}]"
    )
    print(
        f"    torch f32 vs f64: max|dprob|={np.abs(prob32 - prob64).max():.3g} "
        f"max|ddens|={np.abs(dens32 - dens64).max():.3g}"
    )


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "lander"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name, make, seed in CASES:
        run_case(name, make, seed, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
