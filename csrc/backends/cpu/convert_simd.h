// convert_simd.h — SIMD row decoders, one namespace per instruction set.
//
// Defined in convert_avx2.cpp / convert_avx512.cpp, which are compiled with
// their ISA's flags; callers reach them only through to_f32_for() (type_convert.h)
// after a run-time CPU check. Each gives exactly the scalar decoder's bits.
// Signatures match ToF32Fn / FromF32Fn: n elements (a multiple of the
// block size).
#pragma once

#include <cstdint>

namespace sdgo::types_avx2 {
void f16_to_f32(const void * src, float * dst, int64_t n);
void bf16_to_f32(const void * src, float * dst, int64_t n);
void q4_0_to_f32(const void * src, float * dst, int64_t n);
void q8_0_to_f32(const void * src, float * dst, int64_t n);
void q4_1_to_f32(const void * src, float * dst, int64_t n);
void q5_0_to_f32(const void * src, float * dst, int64_t n);
void q5_1_to_f32(const void * src, float * dst, int64_t n);
// Encoders with the scalar fp32_to_fp16 / fp32_to_bf16 bits (NaN included).
void f32_to_f16(const float * src, void * dst, int64_t n);
void f32_to_bf16(const float * src, void * dst, int64_t n);
}  // namespace sdgo::types_avx2

namespace sdgo::types_avx512 {
void f16_to_f32(const void * src, float * dst, int64_t n);
void bf16_to_f32(const void * src, float * dst, int64_t n);
void q4_0_to_f32(const void * src, float * dst, int64_t n);
void q8_0_to_f32(const void * src, float * dst, int64_t n);
void q4_1_to_f32(const void * src, float * dst, int64_t n);
void q5_0_to_f32(const void * src, float * dst, int64_t n);
void q5_1_to_f32(const void * src, float * dst, int64_t n);
// Encoders with the scalar fp32_to_fp16 / fp32_to_bf16 bits (NaN included).
void f32_to_f16(const float * src, void * dst, int64_t n);
void f32_to_bf16(const float * src, void * dst, int64_t n);
}  // namespace sdgo::types_avx512
