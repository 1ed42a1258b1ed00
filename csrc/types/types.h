// types.h — the tensor element types, with ggml's ids and block layouts.
//
// Ids, block sizes and byte sizes are ggml's, so that a GGUF tensor's type id
// indexes this table directly and our blocks are bit-exact with ggml's
// (ggml's ggml.h and ggml-common.h). A type is one row of the table: adding
// a k-quant later means one entry plus its functions.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/status.h"

namespace sdgo {

enum class DType : int32_t {
    f32  = 0,
    f16  = 1,
    q4_0 = 2,
    q4_1 = 3,
    q5_0 = 6,
    q5_1 = 7,
    q8_0 = 8,
    q8_1 = 9,
    q2_K = 10,
    q3_K = 11,
    q4_K = 12,
    q5_K = 13,
    q6_K = 14,
    q8_K = 15,
    i8   = 24,
    i16  = 25,
    i32  = 26,
    i64  = 27,
    f64  = 28,
    bf16 = 30,
};

constexpr int32_t kDTypeIdLimit = 43;  // ggml's GGML_TYPE_COUNT; ids >= this are invalid

// Converts n elements (n a multiple of block_size) of this type to f32.
using ToF32Fn = void (*)(const void * src, float * dst, int64_t n);
// Reference conversion from f32 (ggml's quantize_row_*_ref; plain casts for
// float types). n is a multiple of block_size.
using FromF32Fn = void (*)(const float * src, void * dst, int64_t n);
// ggml_quantize_chunk semantics: quantizes nrows rows of n_per_row elements.
// `imatrix` is NULL or n_per_row importance weights; when non-NULL, q4_0,
// q4_1, q5_0 and q5_1 use ggml's importance-weighted (_impl) quantizers,
// which is the path stable-diffusion.cpp's converter takes with all weights
// equal to 1. Returns the number of bytes written.
using QuantizeFn = size_t (*)(const float * src, void * dst, int64_t nrows, int64_t n_per_row, const float * imatrix);

struct TypeTraits {
    DType type;
    const char * name;      // ggml's name: "f32", "f16", "q4_0", ..., "bf16"
    int64_t block_size;     // elements per block
    size_t type_size;       // bytes per block
    bool is_quantized;      // block-quantized (not a plain scalar type)
    ToF32Fn to_f32;         // NULL where not implemented
    FromF32Fn from_f32_ref; // NULL where not implemented
    QuantizeFn quantize;    // NULL where not implemented
};

// The row of the table for id, or NULL if the id is unknown or removed.
const TypeTraits * type_traits(int32_t id);
inline const TypeTraits * type_traits(DType t) { return type_traits(static_cast<int32_t>(t)); }
// The element types that hold one float per element (f32, f16, bf16), as
// opposed to block types.
inline bool is_float_type(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }

const char * dtype_name(DType t);                          // "?" for unknown
bool dtype_from_name(const char * name, DType * out);      // ggml names, case-insensitive
// Bytes for a row of ne0 elements; ne0 must be a multiple of the block size
// (0 when it is not, ne0 < 0, the size overflows or the type has no row).
size_t row_size(DType t, int64_t ne0);

// Scalar conversions, bit-exact with ggml's software conversions.
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);   // round to nearest even; NaN -> 0x7e00|sign
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);   // round to nearest even; NaN keeps quiet bit

// Notes on the table:
//  * Every id ggml knows has a row (sizes and name), including the k-quants,
//    IQ/TQ/FP4 types, i8..i64 and f64; rows whose functions are NULL are types
//    this engine can size and name but not yet convert. Adding a type later is
//    filling in its row's functions (types.cpp) plus its encoder/decoder file.
//  * Removed ids (4, 5, 31-33, 36-38) and ids >= kDTypeIdLimit have no row.
//  * The table's functions are the portable scalar references. Backends use
//    their own faster versions (the CPU's SIMD decoders live in
//    backends/cpu/type_convert.h and give exactly these bits).
//  * quantize needs finite input for the block types to give meaningful blocks
//    (non-finite input is not undefined behaviour, only garbage);
//    quantize_rows below checks that and the shapes.
//  * q8_1: ggml has no decoder for it and ggml_quantize_chunk rejects it; here
//    to_f32 is x = q*d and quantize is the reference encoder.

// Bytes for `nrows` rows of `ne0` elements; an error when the type has no row,
// ne0 or nrows is negative, ne0 is not a multiple of the block size, or the
// size overflows.
Status tensor_bytes(DType t, int64_t ne0, int64_t nrows, size_t * out);

// Checked ggml_quantize_chunk: validates the type (must have a quantizer),
// shapes, the output capacity (dst_capacity bytes), that src holds only
// finite values for block types and that imatrix (NULL or n_per_row values)
// is finite and >= 0, then quantizes. *written = bytes written. Rows are
// independent in every encoder, so a caller may quantize disjoint row ranges
// in parallel and get the same bytes.
Status quantize_rows(DType t, const float * src, void * dst, size_t dst_capacity, int64_t nrows,
                     int64_t n_per_row, const float * imatrix, size_t * written);

}  // namespace sdgo
