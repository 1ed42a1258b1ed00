// quants.h — ggml's simple block types (Q4_0 … Q8_1): block layouts, the
// scalar (reference) encoders and decoders, and the search helpers that the
// importance-weighted quantizers share with the k-quants.
//
// Everything here is internal to csrc/types; other code reaches these through
// the TypeTraits table in types.h. The format facts: docs/quant-formats.md.
//
// Bit-exactness rules followed by quants.cpp: every value is a
// 32-bit float, sums run sequentially in index order, a*b+c is never fused,
// "nearest" rounding is round-half-to-even through the 1.5*2^23 trick,
// truncating float->int casts are those of x86-64 (NaN or out of range gives
// INT32_MIN, then the low bits are kept), so that no input, however bad, is
// undefined behaviour and finite inputs give ggml's x86-64 bytes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sdgo::quant {

// Block geometry (elements per block, bytes per block) and field offsets.
constexpr int kQK = 32;  // block size of every type in this file
constexpr size_t kSizeQ4_0 = 18;  // d:f16 @0, qs[16] @2
constexpr size_t kSizeQ4_1 = 20;  // d:f16 @0, m:f16 @2, qs[16] @4
constexpr size_t kSizeQ5_0 = 22;  // d:f16 @0, qh:u32 @2, qs[16] @6
constexpr size_t kSizeQ5_1 = 24;  // d:f16 @0, m:f16 @2, qh:u32 @4, qs[16] @8
constexpr size_t kSizeQ8_0 = 34;  // d:f16 @0, qs:i8[32] @2
constexpr size_t kSizeQ8_1 = 36;  // d:f16 @0, s:f16 @2, qs:i8[32] @4

// ---- decoders (n a multiple of 32; dst gets n floats) ----------------------
void dequantize_q4_0(const void * src, float * dst, int64_t n);
void dequantize_q4_1(const void * src, float * dst, int64_t n);
void dequantize_q5_0(const void * src, float * dst, int64_t n);
void dequantize_q5_1(const void * src, float * dst, int64_t n);
void dequantize_q8_0(const void * src, float * dst, int64_t n);
// ggml has no Q8_1 decoder; x = q*d as for Q8_0 (the s field is redundant).
void dequantize_q8_1(const void * src, float * dst, int64_t n);

// ---- reference encoders: ggml's quantize_row_*_ref ----------------------------
void quantize_ref_q4_0(const float * src, void * dst, int64_t n);
void quantize_ref_q4_1(const float * src, void * dst, int64_t n);
void quantize_ref_q5_0(const float * src, void * dst, int64_t n);
void quantize_ref_q5_1(const float * src, void * dst, int64_t n);
void quantize_ref_q8_0(const float * src, void * dst, int64_t n);
void quantize_ref_q8_1(const float * src, void * dst, int64_t n);

// ---- ggml_quantize_chunk semantics (see QuantizeFn in types.h) -------------
size_t quantize_q4_0(const float * src, void * dst, int64_t nrows, int64_t n_per_row, const float * imatrix);
size_t quantize_q4_1(const float * src, void * dst, int64_t nrows, int64_t n_per_row, const float * imatrix);
size_t quantize_q5_0(const float * src, void * dst, int64_t nrows, int64_t n_per_row, const float * imatrix);
size_t quantize_q5_1(const float * src, void * dst, int64_t nrows, int64_t n_per_row, const float * imatrix);
size_t quantize_q8_0(const float * src, void * dst, int64_t nrows, int64_t n_per_row, const float * imatrix);
size_t quantize_q8_1(const float * src, void * dst, int64_t nrows, int64_t n_per_row, const float * imatrix);

// ---- shared search helpers (docs/quant-formats.md), for the _impl quantizers and, later, the k-quants ----
// Round-half-to-even for |f| <= 4194303 (garbage, never UB, outside that).
int nearest_int(float f);
// Symmetric signed quants in [-nmax, nmax-1], stored as L = l + nmax.
// qw: per-element weights, or NULL for the rmse_type default. Returns the scale.
float make_qx_quants(int n, int nmax, const float * x, int8_t * L, int rmse_type, const float * qw);
// Asymmetric quants L in [0, nmax] with an offset; *the_min receives -offset.
// weights NULL means x^2. Laux is scratch of n bytes. Returns the scale.
float make_qkx3_quants(int n, int nmax, const float * x, const float * weights, uint8_t * L,
                       float * the_min, uint8_t * Laux, float rmin, float rdelta, int nstep, bool use_mad);

}  // namespace sdgo::quant
