#!/usr/bin/env python3
"""Generate golden files for the tensor element types (csrc/tests/test_types.cpp).

The goldens come from two independent implementations of ggml's quantizers:

  * gguf-py (PyPI package `gguf`, llama.cpp's numpy port of ggml's reference
    quantizers): F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 quantize + dequantize.
  * ggml itself (libggml-base.so, C): ggml_quantize_chunk with imatrix == NULL
    (the `_ref` path), with an all-ones imatrix (the `_impl` path that
    stable-diffusion.cpp's converter takes) and with a non-uniform imatrix;
    quantize_row_q8_1_ref for Q8_1; dequantize_row_* for the dequantized floats.

For the `_ref` path both are required to agree byte for byte (the script
stops otherwise); the ggml result is what is written.

How to regenerate (from the repository root; nothing of this is needed to
build or test the engine, the outputs are committed):

    python3 -m venv /tmp/venv-gguf && /tmp/venv-gguf/bin/pip install gguf numpy
    # ggml: the PyPI source package ggml-py vendors a recent ggml tree.
    cd /tmp && /tmp/venv-gguf/bin/pip download --no-deps ggml-py && tar xzf ggml_py-*.tar.gz
    cmake -S /tmp/ggml_py-*/vendor/ggml -B /tmp/ggml-build -G Ninja -DCMAKE_BUILD_TYPE=Release \
          -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=ON
    cmake --build /tmp/ggml-build --target ggml-base
    cd - && GGML_BASE_LIB=/tmp/ggml-build/src/libggml-base.so \
          /tmp/venv-gguf/bin/python testdata/gen/gen_quant_golden.py

(ggml-base is compiled for plain x86-64 there: no FMA contraction, which is
what the engine reproduces; see docs/quant-formats.md.)

Output: testdata/quant/inputs.bin and one file per case, all little-endian:

  inputs.bin, inputs_imat.bin (same layout; the *_w cases use the second):
               "SDGI" u32 version=1, u32 nrows, u32 n_per_row,
               f32 x[nrows*n_per_row], f32 imatrix[n_per_row]   (the non-uniform one)
  <case>.bin : "SDGQ" u32 version=1, u32 ggml type id, u32 mode, u32 nrows,
               u32 n_per_row, u32 nbytes, u32 has_deq,
               u8 quant[nbytes], f32 deq[nrows*n_per_row] if has_deq
  mode: 0 = no imatrix (_ref), 1 = all-ones imatrix, 2 = inputs.bin's imatrix.
"""
import ctypes
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import quants as gq

NPR = 256  # elements per row: 8 blocks of 32, so the row-wide sigma2 of _impl matters

F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1 = 1, 30, 2, 3, 6, 7, 8, 9
BLOCK = {Q4_0: (32, 18), Q4_1: (32, 20), Q5_0: (32, 22), Q5_1: (32, 24),
         Q8_0: (32, 34), Q8_1: (32, 36), F16: (1, 2), BF16: (1, 2)}
NAMES = {F16: "f16", BF16: "bf16", Q4_0: "q4_0", Q4_1: "q4_1", Q5_0: "q5_0",
         Q5_1: "q5_1", Q8_0: "q8_0", Q8_1: "q8_1"}


def make_inputs(rng):
    rows = []
    f = np.float32
    rows.append(rng.standard_normal(NPR).astype(f))                    # normal
    rows.append((rng.standard_normal(NPR) * 0.02).astype(f))           # SD-like weights
    rows.append(rng.uniform(-1, 1, NPR).astype(f))                     # uniform
    rows.append(rng.uniform(0.1, 3, NPR).astype(f))                    # all positive
    r = rng.standard_normal(NPR).astype(f)                             # exact zeros
    r[rng.random(NPR) < 0.35] = 0
    r[64:96] = 0                                                       # one all-zero block
    rows.append(r)
    r = np.empty(NPR, f)                                               # all-equal blocks
    consts = [0.5, -0.5, 0.0, 3.0, -7.25, 1e-3, 65504.0 / 8, -2.0]
    for b in range(8):
        r[b * 32:(b + 1) * 32] = consts[b]
    rows.append(r)
    r = (rng.standard_normal(NPR) * 1000).astype(f)                    # large magnitudes
    r[0:32] *= 1000                                                    # ~3e6: q4/q5 d beyond f16 range -> inf
    rows.append(r)
    r = (rng.standard_normal(NPR) * 1e-3).astype(f)                    # small magnitudes
    r[32:64] *= 1e-2                                                   # fp16(d) subnormal
    r[64:96] *= 1e-9                                                   # fp16(d) == 0, f32 d != 0
    rows.append(r)
    r = rng.standard_normal(NPR).astype(f)                             # max magnitude negative
    for b in range(8):
        blk = r[b * 32:(b + 1) * 32]
        i = int(np.argmax(np.abs(blk)))
        blk[i] = -abs(blk[i]) - 0.5
        if b % 2:                                                      # ties in |max|: first wins
            blk[(i + 7) % 32] = -blk[i]
    rows.append(r)
    # values at and next to rounding halves for each type's scale:
    # block max -8 (q4_0 d=1), -16 (q5_0 d=1), 127 (q8 d=1), range 15 / 31 (q4_1/q5_1 d=1)
    r = np.empty(NPR, f)
    halves = (np.arange(32) % 15 - 7 + 0.5).astype(f)
    r[0:32] = halves; r[0] = -8
    r[32:64] = np.nextafter(halves, np.float32(np.inf)); r[32] = -8
    r[64:96] = np.nextafter(halves, np.float32(-np.inf)); r[64] = -8
    h2 = (np.arange(32) - 16 + 0.5).astype(f); h2[0] = -16
    r[96:128] = h2
    h3 = (np.arange(32) * 7 - 110 + 0.5).astype(f); h3[5] = 127
    r[128:160] = h3
    h4 = (np.arange(32) % 16 + 0.5).astype(f); h4[0] = 0; h4[1] = 15
    r[160:192] = h4
    h5 = (np.arange(32) + 0.5).astype(f); h5[0] = 0; h5[31] = 31
    r[192:224] = h5
    r[224:256] = np.round(rng.standard_normal(32) * 4) / 2                   # multiples of 0.5
    rows.append(r.astype(f))
    # exactly representable in q4_0/q8_0: integer multiples of a power of two
    r = np.empty(NPR, f)
    for b in range(8):
        q = rng.integers(-8, 8, 32).astype(f); q[0] = -8
        r[b * 32:(b + 1) * 32] = q * f(2.0 ** (b - 4))
    rows.append(r)
    x = np.stack(rows).astype(np.float32)
    assert np.all(np.isfinite(x))
    return x


def make_inputs_imat(rng):
    """Weight-like rows (n_per_row 320, as SD's narrowest linears) for the imatrix path."""
    f = np.float32
    n = 320
    rows = []
    for i in range(16):
        kind = i % 4
        if kind == 0:
            r = rng.standard_normal(n) * 0.02
        elif kind == 1:
            r = rng.standard_t(3, n) * 0.05                    # heavy tails
        elif kind == 2:
            r = rng.standard_normal(n) * 0.03 + 0.01           # offset, mostly one sign
            r[rng.integers(0, n, 4)] *= 20                     # a few outliers
        else:
            r = rng.uniform(-0.1, 0.1, n)
            r[rng.random(n) < 0.2] = 0
        rows.append(r.astype(f))
    x = np.stack(rows).astype(f)
    assert np.all(np.isfinite(x))
    return x


def write_inputs(path, x, imatrix):
    with open(path, "wb") as fh:
        fh.write(b"SDGI")
        fh.write(struct.pack("<3I", 1, x.shape[0], x.shape[1]))
        fh.write(x.astype("<f4").tobytes())
        fh.write(imatrix.astype("<f4").tobytes())


def load_ggml():
    path = os.environ.get("GGML_BASE_LIB")
    if not path:
        sys.exit("set GGML_BASE_LIB to libggml-base.so (see the header of this script)")
    lib = ctypes.CDLL(path)
    fp = ctypes.POINTER(ctypes.c_float)
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, fp, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, fp]
    for name in ["dequantize_row_q4_0", "dequantize_row_q4_1", "dequantize_row_q5_0",
                 "dequantize_row_q5_1", "dequantize_row_q8_0", "quantize_row_q8_1_ref"]:
        getattr(lib, name).restype = None
        getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    return lib


def fptr(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


def ggml_quantize(lib, t, x, imatrix):
    nrows, npr = x.shape
    bs, ts = BLOCK[t]
    out = np.zeros(nrows * npr // bs * ts, np.uint8)
    xc = np.ascontiguousarray(x)
    if t == Q8_1:  # not in ggml_quantize_chunk; its only quantizer is the reference one
        lib.quantize_row_q8_1_ref(xc.ctypes.data, out.ctypes.data, xc.size)
        return out
    im = None if imatrix is None else fptr(np.ascontiguousarray(imatrix, dtype=np.float32))
    n = lib.ggml_quantize_chunk(t, fptr(xc), out.ctypes.data, 0, nrows, npr, im)
    assert n == out.size, (t, n, out.size)
    return out


def ggml_dequantize(lib, t, q, n):
    out = np.zeros(n, np.float32)
    name = {Q4_0: "q4_0", Q4_1: "q4_1", Q5_0: "q5_0", Q5_1: "q5_1", Q8_0: "q8_0"}[t]
    getattr(lib, "dequantize_row_" + name)(q.ctypes.data, out.ctypes.data, n)
    return out


def write_case(outdir, name, t, mode, nrows, npr, qbytes, deq):
    with open(os.path.join(outdir, name + ".bin"), "wb") as fh:
        fh.write(b"SDGQ")
        fh.write(struct.pack("<7I", 1, t, mode, nrows, npr, qbytes.size, 0 if deq is None else 1))
        fh.write(qbytes.tobytes())
        if deq is not None:
            fh.write(deq.astype("<f4").tobytes())


def main():
    np.seterr(all="ignore")  # the large-magnitude row overflows f16 scales on purpose
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    outdir = os.path.join(root, "testdata", "quant")
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(20261126)
    x = make_inputs(rng)
    nrows, npr = x.shape
    imatrix = rng.uniform(0.05, 4.0, npr).astype(np.float32)
    imatrix[::17] = 0.0  # zero importance is legal and must not break the search
    write_inputs(os.path.join(outdir, "inputs.bin"), x, imatrix)
    x2 = make_inputs_imat(rng)
    imatrix2 = rng.uniform(0.01, 10.0, x2.shape[1]).astype(np.float32)
    write_inputs(os.path.join(outdir, "inputs_imat.bin"), x2, imatrix2)

    lib = load_ggml()
    gguf_types = {F16: T.F16, BF16: T.BF16, Q4_0: T.Q4_0, Q4_1: T.Q4_1, Q5_0: T.Q5_0,
                  Q5_1: T.Q5_1, Q8_0: T.Q8_0}
    mismatches = []
    for t in [F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1]:
        q_ggml = ggml_quantize(lib, t, x, None)
        deq = None
        if t in gguf_types:
            q_py = np.asarray(gq.quantize(x, gguf_types[t])).view(np.uint8).reshape(-1)
            if not np.array_equal(q_py, q_ggml):
                mismatches.append(NAMES[t])
            if t not in (F16, BF16):  # f16/bf16 decoding is checked exhaustively in the test
                d_py = np.asarray(gq.dequantize(q_ggml.reshape(nrows, -1), gguf_types[t]),
                                  dtype=np.float32).reshape(-1)
                d_ggml = ggml_dequantize(lib, t, q_ggml, x.size)
                if not np.array_equal(d_py.view(np.uint32), d_ggml.view(np.uint32)):
                    mismatches.append(NAMES[t] + " dequant")
                deq = d_ggml
        elif t == Q8_1:
            # ggml has no Q8_1 dequantizer; x = q*d like Q8_0 (decoded here in numpy)
            blk = q_ggml.reshape(-1, 36)
            d = blk[:, 0:2].copy().view(np.float16).astype(np.float32)
            qs = blk[:, 4:].copy().view(np.int8).astype(np.float32)
            deq = (qs * d).reshape(-1).astype(np.float32)
        write_case(outdir, NAMES[t] + "_ref", t, 0, nrows, npr, q_ggml, deq)
    if mismatches:
        sys.exit("gguf-py and ggml disagree on: " + ", ".join(mismatches))

    ones = np.ones(npr, np.float32)
    for t in [Q4_0, Q4_1, Q5_0, Q5_1, Q8_0]:
        q1 = ggml_quantize(lib, t, x, ones)
        write_case(outdir, NAMES[t] + "_imat1", t, 1, nrows, npr, q1, None)
        q2 = ggml_quantize(lib, t, x, imatrix)
        write_case(outdir, NAMES[t] + "_imatw", t, 2, nrows, npr, q2, None)
    # second input set (inputs_imat.bin): the weighted path on weight-like rows
    ones2 = np.ones(x2.shape[1], np.float32)
    for t in [Q4_0, Q4_1, Q5_0, Q5_1]:
        q1 = ggml_quantize(lib, t, x2, ones2)
        write_case(outdir, NAMES[t] + "_imat1_w", t, 1, x2.shape[0], x2.shape[1], q1, None)
        q2 = ggml_quantize(lib, t, x2, imatrix2)
        write_case(outdir, NAMES[t] + "_imatw_w", t, 2, x2.shape[0], x2.shape[1], q2, None)
    total = sum(os.path.getsize(os.path.join(outdir, f)) for f in os.listdir(outdir))
    print(f"wrote {len(os.listdir(outdir))} files, {total} bytes, to {outdir}")


if __name__ == "__main__":
    main()
