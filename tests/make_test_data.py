#!/usr/bin/python3
"""Regenerates the committed decoder test data (run from the repository root):

  tests/proto/cases/valid/<name>/{input.npy|input.bin|input.hlm, expected}
  tests/proto/cases/invalid/<name>/{input, expected}
  tests/fuzz/corpus/{npy,rawf32,modelfile}/<seed>

Valid .npy files are written by NumPy itself (np.save / np.lib.format.write_array), so the
reader is tested against the real writer. Model files are written here from the layout
documented in proto/include/hl/modelfile.h, independently of modelfile.c, as a second
implementation of the format. `expected` files are "key: value" lines read by
tests/proto/test_cases.c:
  decoder: f32 | i32 | raw | model     (raw also has "dim: N")
  valid:   shape: d0 d1 ... / values: v ... (exact float32 / int values)
           model: config/name/trained_on/tensor lines
  invalid: status: <hl_status name> / message: <substring of the error message>
"""
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


def corpus(models_):
    for t in ("npy", "rawf32", "modelfile"):
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
    f = np.array([1.0, -2.0, 0.5, 3.0, 0.0, -0.0], dtype="<f4").tobytes()
    seeds = {"dim3_2rows": b"\x03" + f, "dim1_6rows": b"\x01" + f, "dim0": b"\x00" + f,
             "dim4_short": b"\x04" + f, "dim2_nan": b"\x02" + f[:8] + b"\x00\x00\xc0\x7f",
             "empty": b"\x05"}
    for k, v in seeds.items():
        open(os.path.join(CORPUS, "rawf32", k), "wb").write(v)


def main():
    for d in (os.path.join(CASES, "valid"), os.path.join(CASES, "invalid"), CORPUS):
        if os.path.isdir(d):
            shutil.rmtree(d)
    valid_npy()
    invalid_npy()
    corpus(models())
    # Crashers found by fuzzing live in tests/fuzz/crashers/ and are copied into the corpus.
    crash = os.path.join(ROOT, "fuzz", "crashers")
    if os.path.isdir(crash):
        for t in os.listdir(crash):
            for f in os.listdir(os.path.join(crash, t)):
                shutil.copy(os.path.join(crash, t, f), os.path.join(CORPUS, t, f))


if __name__ == "__main__":
    sys.exit(main())
