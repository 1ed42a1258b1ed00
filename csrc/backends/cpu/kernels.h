// kernels.h — the CPU backend's heavy kernels: GEMM, convolution and fused
// attention. Ops in csrc/ops call these; each dispatches at run time to the
// instruction-set variant chosen by `path` (files *_avx512.cpp, *_avx2.cpp,
// *_neon.cpp, and a scalar fallback).
//
// Layout conventions follow ggml: ne[0] is the innermost dimension. All
// strides here are in elements of the array they index unless named *_bytes.
#pragma once

#include <cstdint>

#include "base/status.h"
#include "base/threadpool.h"
#include "backends/cpu/cpu_features.h"
#include "types/types.h"

namespace sdgo::cpu {

// C[m*ldc + n] = sum_k A[m*lda + k] * B_n[k]  (+ bias[n])  (+ C[m*ldc + n] if accumulate)
// for m < M, n < N.
//   A: f32 activations, M rows of K elements (row stride lda).
//   B: N rows of K elements of type btype, row n starting at
//      (const char*)B + n*ldb_bytes — a linear weight in ggml layout
//      (ne0 = K, ne1 = N) or any f32 matrix. K must be a multiple of the
//      type's block size. Weights are converted to f32 panels on the fly
//      (no prepacked copy is kept).
//   bias: NULL or N floats.
// Thread-safe for distinct outputs; uses all threads of the pool.
// gemm_weight_type_supported says which btypes (and conv2d wtypes) work.
bool gemm_weight_type_supported(DType t);
Status gemm(ThreadPool & pool, CodePath path, int64_t M, int64_t N, int64_t K, const float * A, int64_t lda,
            const void * B, DType btype, size_t ldb_bytes, float * C, int64_t ldc, const float * bias,
            bool accumulate);

// 2-D convolution, ggml/PyTorch semantics, batch of images.
//   src: f32 [N][Cin][H][W] contiguous (ggml ne = [W, H, Cin, N]).
//   weight: type wtype (f32 or f16), [Cout][Cin][KH][KW] contiguous.
//   bias: NULL or Cout floats.
//   dst: f32 [N][Cout][OH][OW] contiguous, OH = (H + 2*pad_h - KH)/stride_h + 1 (same for W).
// Implemented as an implicit GEMM: input patches are packed into the
// micro-kernel's panels on the fly, never into a full im2col buffer.
Status conv2d(ThreadPool & pool, CodePath path, int64_t N, int64_t Cin, int64_t H, int64_t W, const float * src,
              int64_t Cout, int64_t KH, int64_t KW, const void * weight, DType wtype, const float * bias,
              int stride_h, int stride_w, int pad_h, int pad_w, float * dst);

// Fused scaled-dot-product attention that never materialises the Nq x Nk
// score matrix (online softmax over tiles of keys).
//   For each batch b < B, head h < H, query i < Nq:
//     out[b,h,i,:] = sum_j softmax_j(scale * q[b,h,i,:] . k[b,h,j,:] (+ mask)) * v[b,h,j,:]
//   q, k, v, out: f32; the head dimension D is contiguous (stride 1).
//   Element strides: *_sb (batch), *_sh (head), *_st (token).
//   causal: when true, query i sees keys j <= i + (Nk - Nq).
Status attention(ThreadPool & pool, CodePath path, int64_t B, int64_t H, int64_t Nq, int64_t Nk, int64_t D,
                 const float * q, int64_t q_sb, int64_t q_sh, int64_t q_st,
                 const float * k, int64_t k_sb, int64_t k_sh, int64_t k_st,
                 const float * v, int64_t v_sb, int64_t v_sh, int64_t v_st,
                 float * out, int64_t o_sb, int64_t o_sh, int64_t o_st, float scale, bool causal);

// Measures the f32 FMA peak of this machine on `pool`'s threads with the
// given code path, in GFLOP/s (independent accumulators, no memory traffic).
double measure_fma_peak_gflops(ThreadPool & pool, CodePath path, double seconds);

}  // namespace sdgo::cpu
