#!/usr/bin/python3
"""Regenerates the committed decoder test data (run from the repository root):

  tests/proto/cases/valid/<name>/{input.npy|input.bin|input.hlm|input.json, expected}
  tests/proto/cases/invalid/<name>/{input, expected}
  tests/fuzz/corpus/{npy,rawf32,modelfile,json_request,query,statefile,statechain}/<seed>

Valid .npy files are written by NumPy itself (np.save / np.lib.format.write_array), so the
reader is tested against the real writer. Model files are written here from the layout
documented in proto/include/hl/modelfile.h, independently of modelfile.c, as a second
implementation of the format; clustering state files likewise from proto/include/hl/statefile.h. `expected` files are "key: value" lines read by
tests/proto/test_cases.c:
  decoder: f32 | i32 | raw | model | json | state    (raw also has "dim: N")
  valid:   shape: d0 d1 ... / values: v ... (exact float32 / int values)
           model: config/name/trained_on/tensor lines
           state: state: <n> <dim> <levels> <k> <tau> <has_model> <checksum> [<model name>] /
                  labels: ... / level: <l> <nodes> <width> ... (one line per level)
           json: also ids_hex: <hex of each id> ... / labels: ... / model: ... /
                 params: name=value ... (exactly the parameters the body sets)
  invalid: status: <hl_status name> / message: <substring of the error message>
           optional: field: <hl_error field> / offset: <byte> / cell: <row> <col> /
                     position: none
  json (both): optional limits: <max_points> <max_dim> <min_points>
JSON bodies of valid cases are written by Python's json module.
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)))
CASES = os.path.join(ROOT, "proto", "cases")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


# ---------------------------------------------------------------- helpers

def write_case(kind, name, data, expected, ext=""):
    d = os.path.join(CASES, kind, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "input" + ext), "wb") as f:
        f.write(data)
    with open(os.path.join(d, "expected"), "w") as f:
        f.write(expected)


def npy_bytes(arr, version=None):
    import io
    b = io.BytesIO()
    if version is None:
        np.save(b, arr)
    else:
        np.lib.format.write_array(b, arr, version=version)
    return b.getvalue()


def npy_raw(header_dict, payload=b"", version=(1, 0), pad_to=64):
    """A .npy file with a hand-written header dict (for malformed and unusual headers)."""
    h = header_dict.encode("latin1")
    pre = 10 if version[0] == 1 else 12
    total = pre + len(h) + 1
    total += (-total) % pad_to
    h = h + b" " * (total - pre - len(h) - 1) + b"\n"
    ln = struct.pack("<H", len(h)) if version[0] == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes(version) + ln + h + payload


def fmt_float(x):
    return repr(float(np.float32(x)))


def expected_valid(decoder, arr):
    flat = arr.reshape(-1)
    if decoder == "f32":
        vals = " ".join(fmt_float(v) for v in flat.astype(np.float32))
    else:
        vals = " ".join(str(int(v)) for v in flat)
    return "decoder: %s\nshape: %s\nvalues: %s\n" % (
        decoder, " ".join(str(s) for s in arr.shape), vals)


def expected_invalid(decoder, status, message, dim=None):
    s = "decoder: %s\n" % decoder
    if dim is not None:
        s += "dim: %d\n" % dim
    return s + "status: %s\nmessage: %s\n" % (status, message)


# ---------------------------------------------------------------- CRC-32C and model files

def crc32c(data, crc=0):
    c = crc ^ 0xFFFFFFFF
    for byte in data:
        c ^= byte
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    return c ^ 0xFFFFFFFF


FEAT_VERSION = 1  # HL_FEAT_VERSION in core/include/hl/features.h


def model_tensors(kind, dim, in_f, edge_f, hidden, n_conv, ucf=1):
    """Tensor names and shapes of a configuration, from hl/lander.h."""
    h, h2 = hidden, hidden // 2
    ins = [in_f, h, h, h2]
    outs = [h, h, h2, h2]
    t = []
    for l in range(n_conv):
        t.append(("conv.%d.weight" % l, (outs[l], 2 * ins[l])))
        t.append(("conv.%d.bias" % l, (outs[l],)))
    o = outs[n_conv - 1]
    t += [("src_mlp.weight", (h2, o)), ("src_mlp.bias", (h2,)),
          ("dst_mlp.weight", (h2, o)), ("dst_mlp.bias", (h2,))]
    if edge_f > 0:
        t.append(("edge_mlp.weight", (h2, edge_f)))
    t += [("classifier.0.weight", (h2,)), ("classifier.1.weight", (h2, h2)),
          ("classifier.1.bias", (h2,)), ("classifier.2.weight", (h2,)),
          ("classifier.3.weight", (2, h2)), ("classifier.3.bias", (2,))]
    node_f = in_f if kind == 2 else in_f - dim * (1 + ucf)
    for what, count in (("node", node_f), ("edge", edge_f)):
        if count > 0:
            t += [("norm.v%d.%s_mean" % (FEAT_VERSION, what), (count,)),
                  ("norm.v%d.%s_std" % (FEAT_VERSION, what), (count,))]
    return t


def model_file(cfg, meta, tensors, major=1, minor=0, reverse=False):
    """cfg: dict of the header fields; tensors: list of (name, shape, float32 array)."""
    order = list(reversed(tensors)) if reverse else tensors
    payload = b""
    entries = b""
    for name, shape, arr in order:
        off = len(payload) + (-len(payload)) % 64
        payload += b"\0" * (off - len(payload))
        data = np.asarray(arr, dtype="<f4").tobytes()
        dims = list(shape) + [0] * (4 - len(shape))
        entries += (name.encode().ljust(64, b"\0") + struct.pack("<II", 0, len(shape)) +
                    struct.pack("<4Q", *dims) + struct.pack("<QQ", off, len(data)) + b"\0" * 8)
        payload += data
    meta_b = meta.encode("utf-8")
    fixed = (b"HLMD" + struct.pack("<HHII", major, minor, 76, 0) +
             struct.pack("<QI", len(payload), len(tensors)) +
             struct.pack("<8I", cfg["kind"], cfg["dim"], cfg["in"], cfg["edge"], cfg["hidden"],
                         cfg["n_conv"], cfg["ucf"], cfg["k"]) +
             struct.pack("<f", cfg["tau"]) + struct.pack("<III", len(meta_b), 0, 0))
    assert len(fixed) == 76
    head = fixed + meta_b + entries
    head += struct.pack("<I", crc32c(head))
    head += b"\0" * ((-len(head)) % 64)
    return head + payload + struct.pack("<I", crc32c(payload))


def tiny_model(kind):
    if kind == 2:
        cfg = dict(kind=2, dim=0, **{"in": 3}, edge=2, hidden=4, n_conv=2, ucf=0, k=5, tau=0.75)
    else:
        cfg = dict(kind=1, dim=2, **{"in": 4}, edge=0, hidden=2, n_conv=1, ucf=1, k=3, tau=0.5)
    rng = np.random.default_rng(7 + kind)
    tensors = []
    for name, shape in model_tensors(cfg["kind"], cfg["dim"], cfg["in"], cfg["edge"],
                                     cfg["hidden"], cfg["n_conv"], cfg["ucf"]):
        arr = rng.standard_normal(shape).astype(np.float32)
        tensors.append((name, shape, arr))
    return cfg, tensors


def expected_model(cfg, name, trained_on, tensors):
    s = "decoder: model\n"
    s += "config: %d %d %d %d %d %d %d %d %s\n" % (
        cfg["kind"], cfg["dim"], cfg["in"], cfg["edge"], cfg["hidden"], cfg["n_conv"],
        cfg["ucf"], cfg["k"], fmt_float(cfg["tau"]))
    s += "name: %s\ntrained_on: %s\n" % (name, trained_on)
    for tname, shape, arr in tensors:
        s += "tensor: %s %s\n" % (tname, " ".join(fmt_float(v) for v in arr.reshape(-1)))
    return s


# ---------------------------------------------------------------- cases

def valid_npy():
    a = np.array([[0.0, -0.0, 1.5, -2.25], [3.0e-39, 1e38, -7.0, 0.1],
                  [1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    write_case("valid", "f32_v1", npy_bytes(a), expected_valid("f32", a), ".npy")
    b = np.arange(6, dtype=np.float32).reshape(2, 3) / 8
    write_case("valid", "f32_v2", npy_bytes(b, (2, 0)), expected_valid("f32", b), ".npy")
    write_case("valid", "f32_v3", npy_bytes(b, (3, 0)), expected_valid("f32", b), ".npy")
    e = np.zeros((0, 3), dtype=np.float32)
    write_case("valid", "f32_zero_rows", npy_bytes(e), expected_valid("f32", e), ".npy")
    h = np.array([[0.0, -0.0, 2.0 ** -24, -(2.0 ** -24)],
                  [1023 * 2.0 ** -24, 2.0 ** -14, 65504.0, -65504.0],
                  [1.0 / 3, -1.5, 1000.0, 0.0999]], dtype=np.float16)
    write_case("valid", "f16_special", npy_bytes(h), expected_valid("f32", h.astype(np.float32)),
               ".npy")
    i = np.array([0, -1, 7, 2 ** 31 - 1, -2 ** 31], dtype=np.int32)
    write_case("valid", "i32_labels", npy_bytes(i), expected_valid("i32", i), ".npy")
    j = np.array([3, -2 ** 31, 2 ** 31 - 1, 0], dtype=np.int64)
    write_case("valid", "i64_labels", npy_bytes(j), expected_valid("i32", j), ".npy")
    z = np.zeros((0,), dtype=np.int64)
    write_case("valid", "i64_empty", npy_bytes(z), expected_valid("i32", z), ".npy")
    c = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    odd = npy_raw("{ \"shape\" : ( 2L , 2L , ) ,'fortran_order':False,\n 'descr':'<f4'}",
                  c.tobytes(), pad_to=16)
    write_case("valid", "f32_handwritten_header", odd, expected_valid("f32", c), ".npy")
    pipe = npy_raw("{'descr': '|f4', 'fortran_order': False, 'shape': (2, 2)}", c.tobytes())
    write_case("valid", "f32_pipe_byteorder", pipe, expected_valid("f32", c), ".npy")
    r = np.array([[1.0, -2.0, 0.5], [0.0, 3.25, -0.0]], dtype="<f4")
    write_case("valid", "raw_2x3", r.tobytes(), "decoder: raw\ndim: 3\nshape: 2 3\nvalues: %s\n"
               % " ".join(fmt_float(v) for v in r.reshape(-1)), ".bin")


def invalid_npy():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    good = npy_bytes(a)
    F, I = "f32", "i32"
    cases = [
        ("bad_magic", b"\x93NUMPX" + good[6:], F, "FORMAT", "bad magic"),
        ("not_npy_text", b"hello, world\n", F, "FORMAT", "bad magic"),
        ("empty_file", b"", F, "FORMAT", "truncated .npy header"),
        ("version_4_0", good[:6] + b"\x04\x00" + good[8:], F, "VERSION",
         "unsupported .npy version 4.0"),
        ("version_1_1", good[:6] + b"\x01\x01" + good[8:], F, "VERSION",
         "unsupported .npy version 1.1"),
        ("header_truncated", good[:40], F, "FORMAT", "truncated .npy header"),
        ("header_too_long", b"\x93NUMPY\x02\x00" + struct.pack("<I", 1 << 21) + b"{", F,
         "FORMAT", "exceeds the limit"),
        ("header_no_brace", npy_raw("'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)",
                                    a.tobytes()), F, "FORMAT", "expected '{'"),
        ("header_unclosed", npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)",
                                    a.tobytes()), F, "FORMAT", "malformed .npy header"),
        ("header_unknown_key",
         npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}",
                 a.tobytes()), F, "FORMAT", "unknown key 'x'"),
        ("header_duplicate_key",
         npy_raw("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}",
                 a.tobytes()), F, "FORMAT", "duplicate key 'descr'"),
        ("header_missing_shape", npy_raw("{'descr': '<f4', 'fortran_order': False}"), F,
         "FORMAT", "missing key 'shape'"),
        ("header_shape_list",
         npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}", a.tobytes()), F,
         "FORMAT", "shape must be a tuple"),
        ("header_shape_no_comma",
         npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (6)}", a.tobytes()), F,
         "FORMAT", "trailing comma"),
        ("header_negative_dim",
         npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 3)}", a.tobytes()), F,
         "FORMAT", "negative dimension"),
        ("header_unterminated_string",
         npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'abc}"), F,
         "FORMAT", "unterminated string"),
        ("header_fortran_not_bool",
         npy_raw("{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}", a.tobytes()), F,
         "FORMAT", "True or False"),
        ("header_trailing_text",
         npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} x", a.tobytes()),
         F, "FORMAT", "unexpected text after the dict"),
        ("header_too_many_dims",
         npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}",
                 b"\0" * 4), F, "FORMAT", "more than 8 dimensions"),
        ("big_endian_f4", npy_bytes(a.astype(">f4")), F, "FORMAT", "big-endian dtype '>f4'"),
        ("big_endian_i8", npy_bytes(np.arange(3, dtype=">i8")), I, "FORMAT",
         "big-endian dtype '>i8'"),
        ("dtype_f8", npy_bytes(a.astype("<f8")), F, "FORMAT", "unsupported dtype '<f8'"),
        ("dtype_unicode", npy_bytes(np.array(["abc", "de"])), F, "FORMAT",
         "unsupported dtype '<U3'"),
        ("dtype_object", npy_bytes(np.array([{"a": 1}, None], dtype=object)), F, "FORMAT",
         "unsupported dtype '|O'"),
        ("dtype_structured", npy_bytes(np.zeros(2, dtype=[("a", "<f4")])), F, "FORMAT",
         "structured arrays"),
        ("fortran_order", npy_bytes(np.asfortranarray(a)), F, "FORMAT", "fortran_order True"),
        ("rank_0", npy_bytes(np.array(1.5, dtype=np.float32)), F, "FORMAT",
         "expected a 2-D array, got 0-D shape ()"),
        ("rank_1", npy_bytes(np.arange(4, dtype=np.float32)), F, "FORMAT",
         "expected a 2-D array, got 1-D shape (4,)"),
        ("rank_3", npy_bytes(np.zeros((2, 2, 2), dtype=np.float32)), F, "FORMAT",
         "got 3-D shape (2, 2, 2)"),
        ("labels_rank_2", npy_bytes(np.zeros((2, 2), dtype=np.int32)), I, "FORMAT",
         "expected a 1-D array"),
        ("f32_truncated", good[:-4], F, "FORMAT", "data truncated"),
        ("f32_trailing", good + b"\0\0\0\0\0", F, "FORMAT", "trailing data: 5 bytes"),
        ("f32_nan", npy_bytes(np.array([[0, 1, 2], [3, 4, np.nan]], dtype=np.float32)), F,
         "NUMERIC", "(NaN) at row 1, column 2"),
        ("f32_inf", npy_bytes(np.array([[0, np.inf], [1, 2]], dtype=np.float32)), F,
         "NUMERIC", "(Inf) at row 0, column 1"),
        ("f16_neg_inf", npy_bytes(np.array([[0, 1], [-np.inf, 2]], dtype=np.float16)), F,
         "NUMERIC", "(-Inf) at row 1, column 0"),
        ("f16_nan", npy_bytes(np.array([[0, 1, np.nan]], dtype=np.float16)), F, "NUMERIC",
         "(NaN) at row 0, column 2"),
        ("shape_overflow",
         npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}"),
         F, "FORMAT", "overflows"),
        ("dim_overflow",
         npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999, "
                 "1)}"), F, "FORMAT", "does not fit"),
        ("f32_for_labels", npy_bytes(np.arange(3, dtype=np.float32)), I, "FORMAT",
         "not an integer type"),
        ("labels_for_f32", npy_bytes(np.zeros((2, 2), dtype=np.int32)), F, "FORMAT",
         "not a float type"),
        ("i64_out_of_range", npy_bytes(np.array([1, 2 ** 31], dtype=np.int64)), I, "RANGE",
         "label 2147483648 at index 1 does not fit in int32"),
        ("i64_truncated", npy_bytes(np.arange(3, dtype=np.int64))[:-1], I, "FORMAT",
         "data truncated"),
    ]
    for name, data, dec, status, msg in cases:
        write_case("invalid", name, data, expected_invalid(dec, status, msg))
    raw = [
        ("raw_not_multiple", b"\0" * 10, 2, "FORMAT", "not a non-zero multiple of 4 * dim = 8"),
        ("raw_empty", b"", 3, "FORMAT", "not a non-zero multiple"),
        ("raw_dim_0", b"\0" * 8, 0, "FORMAT", "dim must be at least 1"),
        ("raw_nan", np.array([1, 2, np.nan, 4], dtype="<f4").tobytes(), 2, "NUMERIC",
         "(NaN) at row 1, column 0"),
    ]
    for name, data, dim, status, msg in raw:
        write_case("invalid", name, data, expected_invalid("raw", status, msg, dim))


def models():
    cfg, tensors = tiny_model(2)
    name, trained = "tiny-universal", "synthetic seed 9, written by tests/make_test_data.py"
    meta = "name=%s\ntrained_on=%s\nwriter=python\n" % (name, trained)
    good = model_file(cfg, meta, tensors)
    write_case("valid", "model_universal_python", good,
               expected_model(cfg, name, trained, tensors), ".hlm")
    lcfg, ltensors = tiny_model(1)
    lgood = model_file(lcfg, "name=tiny-lander\ntrained_on=caf\u00e9 \u5b57\n", ltensors,
                       reverse=True)
    write_case("valid", "model_lander_reversed_table", lgood,
               expected_model(lcfg, "tiny-lander", "caf\u00e9 \u5b57", ltensors), ".hlm")
    newer = model_file(cfg, meta, tensors + [("future.weight", (2,), np.ones(2))], minor=3)
    write_case("valid", "model_newer_minor", newer,
               expected_model(cfg, name, trained, tensors), ".hlm")
    M = "model"
    bad = [
        ("model_bad_magic", b"HLMX" + good[4:], "FORMAT", "bad magic"),
        ("model_too_short", good[:50], "FORMAT", "too short"),
        ("model_major_2", model_file(cfg, meta, tensors, major=2), "VERSION",
         "unsupported model file version 2.0"),
        ("model_header_crc", good[:80] + bytes([good[80] ^ 1]) + good[81:], "CHECKSUM",
         "header checksum mismatch"),
        ("model_payload_crc", good[:-10] + bytes([good[-10] ^ 0x40]) + good[-9:], "CHECKSUM",
         "payload checksum mismatch"),
        ("model_truncated", good[:-1], "FORMAT", "truncated"),
        ("model_trailing", good + b"\0", "FORMAT", "trailing bytes"),
        ("model_unknown_tensor",
         model_file(cfg, meta, tensors + [("future.weight", (2,), np.ones(2))]), "FORMAT",
         "unknown tensor 'future.weight'"),
        ("model_missing_tensor", model_file(cfg, meta, tensors[:-1]), "FORMAT",
         "missing tensor 'norm.v1.edge_std'"),
    ]
    for name_, data, status, msg in bad:
        write_case("invalid", name_, data, expected_invalid(M, status, msg))
    return good, lgood


# ---------------------------------------------------------------- clustering state files

def state_file(h, arrays, major=1, minor=0, header_bytes=176, reserved=0, pad_byte=0):
    """h: dict of the header fields; arrays: list of (name, dtype 0 f32 / 1 i32, shape, data,
    offset or None) in table order. Offsets default to the next multiple of 64."""
    payload = b""
    entries = b""
    for name, dt, shape, data, off in arrays:
        if off is None:
            off = len(payload) + (-len(payload)) % 64
        raw = np.asarray(data, dtype="<f4" if dt == 0 else "<i4").tobytes()
        if off > len(payload):
            payload += b"\0" * (off - len(payload))
        payload = payload[:off] + raw + payload[off + len(raw):]
        dims = list(shape) + [0] * (2 - len(shape))
        entries += (name.encode().ljust(32, b"\0") + struct.pack("<II", dt, len(shape)) +
                    struct.pack("<2Q", *dims) + struct.pack("<Q", off))
    name = h.get("name", "").encode()
    fixed = (b"HLST" + struct.pack("<HHII", major, minor, header_bytes, 0) +
             struct.pack("<QQ", len(payload), h["n"]) +
             struct.pack("<III", h["d"], h["levels"], h["k"]) + struct.pack("<f", h["tau"]) +
             struct.pack("<II", h["has_model"], h.get("checksum", 0)) +
             struct.pack("<9I", *[h.get(f, 0) for f in
                                  ("kind", "mdim", "in", "edge", "hidden", "n_conv", "ucf",
                                   "mk", "reserved_mtau")]) +
             struct.pack("<I", len(arrays)) + name.ljust(64, b"\0") +
             struct.pack("<4I", reserved, 0, 0, 0))
    if "mtau" in h:
        fixed = fixed[:88] + struct.pack("<f", h["mtau"]) + fixed[92:]
    assert len(fixed) == 176
    head = fixed + b"\0" * (header_bytes - 176) + entries
    head += struct.pack("<I", crc32c(head))
    pad = (-len(head)) % 64
    head += bytes([pad_byte]) * min(pad, 1) + b"\0" * max(pad - 1, 0)
    return head + payload + struct.pack("<I", crc32c(payload))


def tiny_state(kind):
    """Four points in two pairs. kind 0: model-free, one level; 2: universal model, two levels;
    1: lander model with node features and cluster means, two levels."""
    a = np.float32(0.1)
    x = np.array([[1, 0], [1, a], [0, 1], [a, 1]], dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    s01 = float(np.float32(x[0] @ x[1]))
    s02 = float(np.float32(x[0] @ x[2]))
    h = dict(n=4, d=2, levels=1 if kind == 0 else 2, k=2, tau=0.8, has_model=0)
    labels = [0, 0, 1, 1]
    arr = [("x", 0, (4, 2), x, None), ("labels", 1, (4,), labels, None)]
    dens = [s01 * (2 * s01 - 1)] * 4
    lv = [dict(rep=[0, 1, 2, 3], cnt=[1, 1, 1, 1], nbr=[[1], [0], [3], [2]], sim=[[s01]] * 4,
               deg=[1, 1, 1, 1], dens=dens)]
    widths = {}
    if kind != 0:
        lv.append(dict(rep=[0, 2], cnt=[2, 2], nbr=[[1], [0]], sim=[[s02]] * 2, deg=[1, 1],
                       dens=[0.25, 0.25]))
    if kind == 2:
        h.update(has_model=1, checksum=0xDEADBEEF, kind=2, mdim=0, edge=13, hidden=4,
                 n_conv=2, ucf=0, mk=5, mtau=0.75, name="tiny-universal", **{"in": 16})
        widths = dict(node=16, hidden0=4, S=2)
    elif kind == 1:
        h.update(has_model=1, checksum=0x01020304, kind=1, mdim=2, edge=0, hidden=2, n_conv=1,
                 ucf=1, mk=3, mtau=0.5, name="tiny-lander", **{"in": 20})
        widths = dict(node=16, S=1, cmean=2)
    rng = np.random.default_rng(11 + kind)
    for l, L in enumerate(lv):
        n_l = len(L["rep"])
        p = "l%d." % l
        arr += [(p + "rep", 1, (n_l,), L["rep"], None), (p + "cnt", 1, (n_l,), L["cnt"], None),
                (p + "nbr", 1, (n_l, 1), L["nbr"], None), (p + "sim", 0, (n_l, 1), L["sim"], None),
                (p + "deg", 1, (n_l,), L["deg"], None), (p + "dens", 0, (n_l,), L["dens"], None),
                (p + "labels", 1, (4,), labels, None),
                (p + "fstats", 0, (6,), [0.9, 0.8, 0.9, 0.05, 0.1, 0.05], None)]
        for f in ("node", "hidden0", "S", "cmean"):
            if f in widths and (f != "cmean" or l > 0):
                v = rng.standard_normal((n_l, widths[f])).astype(np.float32)
                if f == "cmean":  # means of unit vectors: norm at most 1
                    v = (0.5 * v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
                arr.append((p + f, 0, (n_l, widths[f]), v, None))
    return h, arr


def expected_state(h, arr):
    s = "decoder: state\n"
    s += "state: %d %d %d %d %s %d %d" % (h["n"], h["d"], h["levels"], h["k"], fmt_float(h["tau"]),
                                          h["has_model"], h.get("checksum", 0))
    s += (" %s\n" % h["name"]) if h.get("name") else "\n"
    s += "labels: %s\n" % " ".join(str(v) for v in dict((a[0], a[3]) for a in arr)["labels"])
    for l in range(h["levels"]):
        nbr = [a for a in arr if a[0] == "l%d.nbr" % l][0]
        s += "level: %d %d %d\n" % (l, nbr[2][0], nbr[2][1])
    return s


def states():
    for kind, name in ((0, "state_model_free"), (2, "state_universal"), (1, "state_lander")):
        h, arr = tiny_state(kind)
        write_case("valid", name, state_file(h, arr), expected_state(h, arr), ".hls")
    h, arr = tiny_state(2)
    write_case("valid", "state_newer_minor",
               state_file(h, arr + [("future", 0, (2,), [1, 2], None)], minor=1),
               expected_state(h, arr), ".hls")
    good = state_file(h, arr)
    S = "state"
    h0, arr0 = tiny_state(0)

    def with_array(i, **kw):
        a = list(arr0)
        name, dt, shape, data, off = a[i]
        a[i] = (kw.get("name", name), kw.get("dt", dt), kw.get("shape", shape),
                kw.get("data", data), kw.get("off", off))
        return state_file(h0, a)

    nbr_i = [i for i, a in enumerate(arr0) if a[0] == "l0.nbr"][0]
    sim_i = [i for i, a in enumerate(arr0) if a[0] == "l0.sim"][0]
    rep_i = [i for i, a in enumerate(arr0) if a[0] == "l0.rep"][0]
    bad = [
        ("state_bad_magic", b"HLSX" + good[4:], "FORMAT", "bad magic"),
        ("state_too_short", good[:100], "FORMAT", "too short"),
        ("state_major_2", state_file(h, arr, major=2), "VERSION",
         "unsupported state file version 2.0"),
        ("state_header_crc", good[:40] + bytes([good[40] ^ 1]) + good[41:], "CHECKSUM",
         "header checksum mismatch"),
        ("state_payload_crc", good[:-10] + bytes([good[-10] ^ 0x40]) + good[-9:], "CHECKSUM",
         "payload checksum mismatch"),
        ("state_truncated", good[:-1], "FORMAT", "truncated"),
        ("state_trailing", good + b"\0", "FORMAT", "trailing bytes"),
        ("state_reserved", state_file(h, arr, reserved=1), "FORMAT", "reserved"),
        ("state_padding", state_file(h, arr, pad_byte=1), "FORMAT", "non-zero padding"),
        ("state_missing_array", state_file(h, arr[:-1]), "FORMAT", "missing array 'l1.S'"),
        ("state_unknown_array", state_file(h, arr + [("future", 0, (2,), [1, 2], None)]),
         "FORMAT", "unknown array 'future'"),
        ("state_duplicate_array", state_file(h, arr + [arr[1][:4] + (None,)]), "FORMAT",
         "duplicate array 'labels'"),
        ("state_overlap", with_array(1, off=0), "FORMAT", "overlap"),
        ("state_shape", with_array(nbr_i, shape=(4, 2), data=[[1, 2], [0, 2], [3, 0], [2, 0]]),
         "FORMAT", "array 'l0.sim' has type 0 shape [4, 1], expected type 0 shape [4, 2]"),
        ("state_nbr_range", with_array(nbr_i, data=[[1], [0], [4], [2]]), "FORMAT",
         "bad clustering state: level 0: node 2 has neighbour 4"),
        ("state_rep_not_identity", with_array(rep_i, data=[0, 1, 3, 2]), "FORMAT",
         "node 2 has peak 3"),
        ("state_nan", with_array(sim_i, data=[[float("nan")]] * 4), "NUMERIC",
         "array 'l0.sim': non-finite value (NaN)"),
        ("state_has_model_name", state_file(dict(h0, name="x"), arr0), "FORMAT",
         "model name is set but has_model is 0"),
        ("state_levels_zero", state_file(dict(h0, levels=0), arr0), "FORMAT",
         "bad level count 0"),
        ("state_model_config", state_file(dict(h, hidden=3), arr), "FORMAT",
         "bad model configuration"),
        ("state_not_normalised", with_array(0, data=2 * np.asarray(arr0[0][3])), "FORMAT",
         "point 0: features are not L2-normalised"),
        ("state_sim_range", with_array(sim_i, data=[[1.5]] * 4), "FORMAT",
         "similarity 1.5 is not a cosine similarity"),
    ]
    for name, data, status, msg in bad:
        write_case("invalid", name, data, expected_invalid(S, status, msg))


# ---------------------------------------------------------------- clustering state chains

def state_delta(h, rows, from_n, to_n, level_sizes, n_arrays):
    """A delta (proto/include/hl/statefile.h, "HLSD"): rows is the list of the new rows of
    every array of the state in table order (fstats: none), each as (dtype, data);
    level_sizes: per level (from_ln, to_ln)."""
    payload = b"".join(np.asarray(d, dtype="<f4" if dt == 0 else "<i4").tobytes()
                       for dt, d in rows)
    nl = len(level_sizes)
    head = (b"HLSD" + struct.pack("<HHII", 1, 0, 64 + 16 * nl, nl) +
            struct.pack("<QQ", from_n, to_n) +
            struct.pack("<III", h["d"], n_arrays, h.get("checksum", 0) if h["has_model"] else 0) +
            struct.pack("<I", h["k"]) + struct.pack("<f", h["tau"]) + struct.pack("<I", 0) +
            struct.pack("<Q", len(payload)))
    assert len(head) == 64
    for f, t in level_sizes:
        head += struct.pack("<QQ", f, t)
    head += struct.pack("<I", crc32c(head))
    return head + payload + struct.pack("<I", crc32c(payload))


def tiny_chain(kind):
    """tiny_state(kind) and two deltas, each adding a pair of points (a new cluster): one new
    node per pair on levels >= 1, its neighbour an older node. Returns (base, [delta, ...])."""
    h, arr = tiny_state(kind)
    a = np.float32(0.1)
    pairs = [np.array([[-1, 0], [-1, -a]], dtype=np.float32),
             np.array([[0, -1], [-a, -1]], dtype=np.float32)]
    names = [e[0] for e in arr]
    rng = np.random.default_rng(21 + kind)
    deltas = []
    n, ln = 4, [4] + [2] * (h["levels"] - 1)
    for p, x in enumerate(pairs):
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        s = float(np.float32(x[0] @ x[1]))
        lab = [2 + p, 2 + p]
        rows = []
        for name, dt, shape, data, off in arr:
            base = name.split(".", 1)[-1]
            l = int(name[1:name.index(".")]) if "." in name else -1
            new_l = 2 if l == 0 else 1
            if name == "x":
                rows.append((0, x))
            elif base == "labels":
                rows.append((1, lab))
            elif base == "fstats":
                continue
            elif base == "rep":
                rows.append((1, [n, n + 1] if l == 0 else [n]))
            elif base == "cnt":
                rows.append((1, [1, 1] if l == 0 else [2]))
            elif base == "nbr":
                rows.append((1, [[ln[0] + 1], [ln[0]]] if l == 0 else [[ln[l] - 1]]))
            elif base == "sim":
                rows.append((0, [[s], [s]] if l == 0 else [[0.5]]))
            elif base == "deg":
                rows.append((1, [1] * new_l))
            elif base == "dens":
                rows.append((0, [s * (2 * s - 1)] * new_l))
            else:  # node, hidden0, S, cmean: rows of the array's width
                v = rng.standard_normal((new_l, shape[1])).astype(np.float32)
                if base == "cmean":
                    v = (0.5 * v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
                rows.append((0, v))
        sizes = [(ln[0], ln[0] + 2)] + [(c, c + 1) for c in ln[1:]]
        deltas.append(state_delta(h, rows, n, n + 2, sizes, len(arr)))
        n += 2
        ln = [t for f, t in sizes]
    base = state_file(h, arr)
    for part in [base] + deltas:  # the fuzz target splits its input where "HLSD" starts
        assert part[4:].find(b"HLSD") < 0
    return base, deltas


def chain_seeds():
    """Seeds of fuzz_statechain: a base state file followed by its deltas (the target splits
    the input before every "HLSD"), all valid chains."""
    d = os.path.join(CORPUS, "statechain")
    os.makedirs(d, exist_ok=True)
    for kind, name in ((0, "chain_model_free"), (2, "chain_universal"), (1, "chain_lander")):
        base, deltas = tiny_chain(kind)
        open(os.path.join(d, name), "wb").write(base + b"".join(deltas))
        open(os.path.join(d, name + "_one_delta"), "wb").write(base + deltas[0])
    base, deltas = tiny_chain(0)
    open(os.path.join(d, "chain_base_alone"), "wb").write(base)
    h, arr = tiny_state(0)  # a delta that adds nothing is valid too
    empty = state_delta(h, [], 4, 4, [(4, 4)], len(arr))
    open(os.path.join(d, "chain_empty_delta"), "wb").write(base + empty + deltas[0])


# ---------------------------------------------------------------- JSON request bodies

def expected_json(x, ids=None, labels=None, model=None, params=None, limits=None):
    s = "decoder: json\n"
    if limits is not None:
        s += "limits: %d %d %d\n" % limits
    s += "shape: %d %d\nvalues: %s\n" % (
        x.shape[0], x.shape[1], " ".join(fmt_float(v) for v in x.reshape(-1)))
    if ids is not None:
        s += "ids_hex: %s\n" % " ".join(i.encode("utf-8").hex() or "-" for i in ids)
    if labels is not None:
        s += "labels: %s\n" % " ".join(str(v) for v in labels)
    if model is not None:
        s += "model: %s\n" % model
    if params is not None:
        def val(v):
            if isinstance(v, bool):
                return "true" if v else "false"
            if isinstance(v, float):
                return fmt_float(v)
            return str(v)
        s += "params: %s\n" % " ".join("%s=%s" % (k, val(v)) for k, v in params.items())
    return s


def valid_json():
    rng = np.random.default_rng(20240611)
    x = (rng.standard_normal((5, 4)) * 0.05).astype(np.float32)
    ids = ["photo-1", "caf\u00e9", "\U0001F600 smile", "", "tab\tquote\"back\\slash"]
    labels = [3, -1, 2147483647, -2147483648, 0]
    params = {"k": 10, "tau": 0.8, "max_levels": 10, "min_cluster_size": 1, "knn": "auto",
              "early_stop": True, "new_clusters": "open"}
    body = {"embeddings": x.tolist(), "ids": ids, "labels": labels, "model": "universal",
            "params": params}
    write_case("valid", "json_python_dumps", json.dumps(body).encode(),
               expected_json(x, ids, labels, "universal", params), ".json")
    # Raw UTF-8, compact separators, keys in another order, indentation.
    body2 = {"params": {"knn": "hnsw", "tau": 0.25, "early_stop": False,
                        "new_clusters": "unassigned"},
             "model": "glyphs-128.v2_b", "ids": ids, "embeddings": x.tolist()}
    write_case("valid", "json_python_compact",
               json.dumps(body2, separators=(",", ":"), ensure_ascii=False).encode(),
               expected_json(x, ids, None, "glyphs-128.v2_b", {
                   "tau": 0.25, "knn": "hnsw", "early_stop": False,
                   "new_clusters": "unassigned"}), ".json")
    write_case("valid", "json_python_indent", json.dumps(body2, indent=4).encode(),
               expected_json(x, ids, None, "glyphs-128.v2_b", {
                   "tau": 0.25, "knn": "hnsw", "early_stop": False,
                   "new_clusters": "unassigned"}), ".json")
    # float64 values (17 significant digits), rounded to float32 by the decoder as by NumPy.
    y = rng.standard_normal((3, 3))
    write_case("valid", "json_float64_values", json.dumps({"embeddings": y.tolist()}).encode(),
               expected_json(y.astype(np.float32)), ".json")
    # Integers, exponents, -0, denormals, long digit strings, written by hand.
    hand = (b' \t\r\n{ \n "embeddings" :\r\n [ [ 1 , -2 , 0 , -0 ] ,\t[ 1e3 , 2.5E-1 , '
            b'-0.0e+0 , 1.40129846e-45 ] , [ 123456789012345678901234567890 , '
            b'0.100000000000000000000000000000000000001 , 3.4028234e38 , -7e-46 ] ] \n}\n ')
    hx = np.array([[1, -2, 0, -0.0], [1e3, 0.25, -0.0, 1.40129846e-45],
                   [123456789012345678901234567890, 0.1, 3.4028234e38, -7e-46]],
                  dtype=np.float32)
    write_case("valid", "json_handwritten_numbers", hand, expected_json(hx), ".json")
    # Escaped keys are the same keys; the limits are inclusive.
    write_case("valid", "json_escaped_keys",
               b'{"\\u0065mbeddings": [[1, 2], [3, 4]], "mo\\u0064el": "m"}',
               expected_json(np.array([[1, 2], [3, 4]], dtype=np.float32), model="m"), ".json")
    write_case("valid", "json_at_the_limits", json.dumps({"embeddings": [[0.5] * 4] * 3}).encode(),
               expected_json(np.full((3, 4), 0.5, dtype=np.float32), limits=(3, 4, 3)), ".json")


def invalid_json():
    E = "embeddings"
    two = '"embeddings": [[1, 2], [3, 4]]'
    cases = [
        # name, body, status, message, field, position: "offset N", "cell R C", "none", or
        # "at TEXT" for the offset of the first TEXT in the body (after the first '{')
        ("not_object", b"[[1, 2], [3, 4]]", "FORMAT", "not a JSON object", "body", "offset 0"),
        ("empty_body", b"", "FORMAT", "the body is empty", "body", "offset 0"),
        ("truncated", b'{"embeddings": [[1, 2], [3, 4]', "FORMAT", "unexpected end", "body",
         "offset 30"),
        ("trailing_data", b'{' + two.encode() + b'} {}', "FORMAT", "trailing data", "body",
         "offset 33"),
        ("missing_embeddings", b'{"model": "m"}', "FORMAT", 'no "embeddings"', E, "none"),
        ("embeddings_not_array", b'{"embeddings": {"a": [1]}}', "FORMAT",
         "must be an array", E, "offset 15"),
        ("ragged_short", b'{"embeddings": [[1, 2, 3], [4, 5]]}', "RANGE",
         "has 2 values, row 0 has 3", E, "cell 1 2"),
        ("ragged_long", b'{"embeddings": [[1, 2], [3, 4, 5]]}', "RANGE",
         "has more than 2 values", E, "cell 1 2"),
        ("empty_row", b'{"embeddings": [[1, 2], []]}', "RANGE", "empty row", E, "cell 1 0"),
        ("string_element", b'{"embeddings": [[1, 2], [3, "4"]]}', "RANGE", "is a string",
         E, "cell 1 1"),
        ("nested_array", b'{"embeddings": [[1, [2]], [3, 4]]}', "RANGE", "is an array",
         E, "cell 0 1"),
        ("null_element", b'{"embeddings": [[1, 2], [null, 4]]}', "RANGE", "is null",
         E, "cell 1 0"),
        ("row_not_array", b'{"embeddings": [[1, 2], 3]}', "RANGE", "is not an array",
         E, "cell 1 0"),
        ("nan", b'{"embeddings": [[1, 2], [3, NaN]]}', "NUMERIC", "not finite", E, "cell 1 1"),
        ("neg_infinity", b'{"embeddings": [[-Infinity, 2], [3, 4]]}', "NUMERIC",
         "not finite", E, "cell 0 0"),
        ("overflow", b'{"embeddings": [[1, 2], [3, 1e39]]}', "NUMERIC", "overflows float32",
         E, "cell 1 1"),
        ("overflow_rounding", b'{"embeddings": [[1, -3.40282357e38], [3, 4]]}', "NUMERIC",
         "overflows float32", E, "cell 0 1"),
        ("leading_zero", b'{"embeddings": [[1, 02], [3, 4]]}', "FORMAT", "after a number",
         "body", "offset 21"),
        ("bare_fraction", b'{"embeddings": [[1, .5], [3, 4]]}', "FORMAT", "expected a number",
         "body", "offset 20"),
        ("missing_comma", b'{"embeddings": [[1 2], [3, 4]]}', "FORMAT", "after a number",
         "body", "offset 19"),
        ("trailing_comma", b'{"embeddings": [[1, 2], [3, 4],]}', "FORMAT",
         "expected a row", "body", "offset 31"),
        ("unknown_key", b'{' + two.encode() + b', "modle": "m"}', "INVAL", 'unknown key "modle"',
         "modle", 'at "modle"'),
        ("unknown_param", b'{' + two.encode() + b', "params": {"kk": 3}}', "INVAL",
         "unknown parameter params/kk", "params/kk", "at {"),
        ("param_type", b'{' + two.encode() + b', "params": {"k": "10"}}', "INVAL",
         "must be an integer", "params/k", "at {"),
        ("param_range", b'{' + two.encode() + b', "params": {"tau": 1.5}}', "INVAL",
         "out of range", "params/tau", "at {"),
        ("param_choice", b'{' + two.encode() + b', "params": {"knn": "annoy"}}', "INVAL",
         "must be one of", "params/knn", "at {"),
        ("params_not_object", b'{' + two.encode() + b', "params": [1]}', "INVAL",
         "must be an object", "params", "at [1]"),
        ("model_chars", b'{' + two.encode() + b', "model": "a b"}', "INVAL", "model must be",
         "model", 'at "a b"'),
        ("ids_length", b'{' + two.encode() + b', "ids": ["a"]}', "RANGE", "1 ids for 2",
         "ids", 'at ["a"]'),
        ("ids_not_string", b'{' + two.encode() + b', "ids": ["a", 2]}', "RANGE",
         "ids[1] is not a string", "ids", "cell 1 0"),
        ("labels_range", b'{' + two.encode() + b', "labels": [1, 2147483648]}', "RANGE",
         "outside the int32 range", "labels", "cell 1 0"),
        ("labels_real", b'{' + two.encode() + b', "labels": [1.0, 2]}', "RANGE",
         "labels[0] is not an integer", "labels", "cell 0 0"),
        ("duplicate_key", b'{' + two.encode() + b', ' + two.encode() + b'}', "FORMAT",
         'duplicate key "embeddings"', E, "offset 33"),
        ("duplicate_param", b'{' + two.encode() + b', "params": {"k": 3, "k": 4}}', "FORMAT",
         "duplicate object key", "body", "offset 55"),
        ("bad_escape_in_id", b'{' + two.encode() + b', "ids": ["a\\x", "b"]}', "FORMAT",
         "malformed JSON", "body", "offset 45"),
        ("invalid_utf8_key", b'{' + two.encode() + b', "\xff": 1}', "FORMAT",
         "malformed JSON", "body", "offset 34"),
        ("too_many_points", b'{"embeddings": [[1], [2], [3], [4], [5]]}', "INVAL",
         "more than 3 points", "n", "cell 3 0"),
        ("dim_too_large", b'{"embeddings": [[1, 2, 3, 4, 5], [6]]}', "INVAL",
         "exceeds the limit of 4", "dim", "cell 0 4"),
        ("too_few_points", b'{"embeddings": [[1, 2]]}', "INVAL", "1 points, at least 2",
         "n", "none"),
    ]
    for name, data, status, msg, field, pos in cases:
        exp = "decoder: json\n"
        if name in ("too_many_points", "dim_too_large"):
            exp += "limits: 3 4 2\n"
        exp += "status: %s\nmessage: %s\nfield: %s\n" % (status, msg, field)
        if pos.startswith("at "):
            pos = "offset %d" % data.index(pos[3:].encode(), 1)
        kind, *nums = pos.split()
        exp += "position: none\n" if kind == "none" else "%s: %s\n" % (kind, " ".join(nums))
        write_case("invalid", "json_" + name, data, exp)


QUERY_SEEDS = {
    "all": b"model=universal&k=10&tau=0.8&max_levels=10&min_cluster_size=1&knn=auto"
           b"&early_stop=true&new_clusters=open&dim=128",
    "percent": b"?model=glyphs%2D128&knn=h%6Esw&early_stop=0",
    "plus": b"model=a+b",
    "repeated": b"k=10&k=11",
    "unknown": b"format=npy",
    "bad_pct": b"k=%zz",
    "empty_pairs": b"&&k=5&",
    "tau_exp": b"tau=5e-1",
}


def corpus(models_):
    for t in ("npy", "rawf32", "modelfile", "json_request", "query", "statefile"):
        d = os.path.join(CORPUS, t)
        os.makedirs(d, exist_ok=True)
    for kind in ("valid", "invalid"):
        for name in sorted(os.listdir(os.path.join(CASES, kind))):
            d = os.path.join(CASES, kind, name)
            exp = open(os.path.join(d, "expected")).read()
            src = [f for f in os.listdir(d) if f.startswith("input")][0]
            data = open(os.path.join(d, src), "rb").read()
            if "decoder: f32" in exp or "decoder: i32" in exp:
                if len(data) <= 4096:
                    open(os.path.join(CORPUS, "npy", name), "wb").write(data)
            elif "decoder: model" in exp:
                open(os.path.join(CORPUS, "modelfile", name), "wb").write(data)
            elif "decoder: state" in exp:
                open(os.path.join(CORPUS, "statefile", name), "wb").write(data)
            elif "decoder: json" in exp:
                open(os.path.join(CORPUS, "json_request", name), "wb").write(data)
    f = np.array([1.0, -2.0, 0.5, 3.0, 0.0, -0.0], dtype="<f4").tobytes()
    seeds = {"dim3_2rows": b"\x03" + f, "dim1_6rows": b"\x01" + f, "dim0": b"\x00" + f,
             "dim4_short": b"\x04" + f, "dim2_nan": b"\x02" + f[:8] + b"\x00\x00\xc0\x7f",
             "empty": b"\x05"}
    for k, v in seeds.items():
        open(os.path.join(CORPUS, "rawf32", k), "wb").write(v)
    for k, v in QUERY_SEEDS.items():
        open(os.path.join(CORPUS, "query", k), "wb").write(v)


def main():
    for d in (os.path.join(CASES, "valid"), os.path.join(CASES, "invalid"), CORPUS):
        if os.path.isdir(d):
            shutil.rmtree(d)
    valid_npy()
    invalid_npy()
    valid_json()
    invalid_json()
    states()
    corpus(models())
    chain_seeds()
    # Crashers found by fuzzing live in tests/fuzz/crashers/ and are copied into the corpus.
    crash = os.path.join(ROOT, "fuzz", "crashers")
    if os.path.isdir(crash):
        for t in os.listdir(crash):
            for f in os.listdir(os.path.join(crash, t)):
                shutil.copy(os.path.join(crash, t, f), os.path.join(CORPUS, t, f))


if __name__ == "__main__":
    sys.exit(main())
