// convert_avx512.cpp — AVX-512 (F/BW/VL/DQ) row decoders.
//
// Same rules as convert_avx2.cpp: plain functions and intrinsics, one
// int->float conversion and one multiply per element, bit-identical to the
// scalar decoders.
// GCC 12 reports false "may be used uninitialized" warnings from inside its
// own avx512fintrin.h (the _mm512_undefined_* idiom); they are not ours.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")  // q*d + m stays a multiply then an add
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>


#include "backends/cpu/convert_simd.h"

namespace sdgo::types_avx512 {

namespace {
inline float half_to_float(const unsigned char * p) {
    unsigned short h;
    __builtin_memcpy(&h, p, 2);
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}
inline unsigned int load_u32(const unsigned char * p) {
    unsigned int v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

}  // namespace

void f16_to_f32(const void * src, float * dst, int64_t n) {
    const unsigned char * s = static_cast<const unsigned char *>(src);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(s + 2 * i));
        const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(s + 2 * i + 32));
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(a));
        _mm512_storeu_ps(dst + i + 16, _mm512_cvtph_ps(b));
    }
    for (; i < n; i += 16) {
        const int64_t k = n - i < 16 ? n - i : 16;
        const __mmask16 m = static_cast<__mmask16>((1u << k) - 1u);
        const __m256i a = _mm256_maskz_loadu_epi16(m, s + 2 * i);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(a));
    }
}

void bf16_to_f32(const void * src, float * dst, int64_t n) {
    const unsigned char * s = static_cast<const unsigned char *>(src);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(s + 2 * i));
        _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(a), 16)));
    }
    if (i < n) {
        const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
        const __m256i a = _mm256_maskz_loadu_epi16(m, s + 2 * i);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(a), 16)));
    }
}

void q4_0_to_f32(const void * src, float * dst, int64_t n) {
    const unsigned char * b = static_cast<const unsigned char *>(src);
    const __m128i mask = _mm_set1_epi8(0x0F);
    const __m128i eight = _mm_set1_epi8(8);
    for (int64_t i = 0; i < n / 32; ++i, b += 18, dst += 32) {
        const __m512 d = _mm512_set1_ps(half_to_float(b));
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b + 2));
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, mask), eight);
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), mask), eight);
        _mm512_storeu_ps(dst + 0, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(lo)), d));
        _mm512_storeu_ps(dst + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(hi)), d));
    }
}

void q8_0_to_f32(const void * src, float * dst, int64_t n) {
    const unsigned char * b = static_cast<const unsigned char *>(src);
    for (int64_t i = 0; i < n / 32; ++i, b += 34, dst += 32) {
        const __m512 d = _mm512_set1_ps(half_to_float(b));
        const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b + 2));
        const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b + 18));
        _mm512_storeu_ps(dst + 0, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0)), d));
        _mm512_storeu_ps(dst + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1)), d));
    }
}

void q4_1_to_f32(const void * src, float * dst, int64_t n) {
    const unsigned char * b = static_cast<const unsigned char *>(src);
    const __m128i mask = _mm_set1_epi8(0x0F);
    for (int64_t i = 0; i < n / 32; ++i, b += 20, dst += 32) {
        const __m512 d = _mm512_set1_ps(half_to_float(b));
        const __m512 m = _mm512_set1_ps(half_to_float(b + 2));
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b + 4));
        const __m128i lo = _mm_and_si128(q, mask);
        const __m128i hi = _mm_and_si128(_mm_srli_epi16(q, 4), mask);
        _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(lo)), d), m));
        _mm512_storeu_ps(dst + 16, _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(hi)), d), m));
    }
}

void q5_0_to_f32(const void * src, float * dst, int64_t n) {
    const unsigned char * b = static_cast<const unsigned char *>(src);
    const __m128i mask = _mm_set1_epi8(0x0F);
    const __m128i sixteen = _mm_set1_epi8(16);
    for (int64_t i = 0; i < n / 32; ++i, b += 22, dst += 32) {
        const __m512 d = _mm512_set1_ps(half_to_float(b));
        const unsigned int qh = load_u32(b + 2);
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b + 6));
        const __m128i hlo = _mm_maskz_mov_epi8(static_cast<__mmask16>(qh & 0xffffu), sixteen);
        const __m128i hhi = _mm_maskz_mov_epi8(static_cast<__mmask16>(qh >> 16), sixteen);
        const __m128i lo = _mm_sub_epi8(_mm_or_si128(_mm_and_si128(q, mask), hlo), sixteen);
        const __m128i hi = _mm_sub_epi8(_mm_or_si128(_mm_and_si128(_mm_srli_epi16(q, 4), mask), hhi), sixteen);
        _mm512_storeu_ps(dst, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(lo)), d));
        _mm512_storeu_ps(dst + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(hi)), d));
    }
}

void q5_1_to_f32(const void * src, float * dst, int64_t n) {
    const unsigned char * b = static_cast<const unsigned char *>(src);
    const __m128i mask = _mm_set1_epi8(0x0F);
    const __m128i sixteen = _mm_set1_epi8(16);
    for (int64_t i = 0; i < n / 32; ++i, b += 24, dst += 32) {
        const __m512 d = _mm512_set1_ps(half_to_float(b));
        const __m512 m = _mm512_set1_ps(half_to_float(b + 2));
        const unsigned int qh = load_u32(b + 4);
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b + 8));
        const __m128i lo = _mm_or_si128(_mm_and_si128(q, mask), _mm_maskz_mov_epi8(static_cast<__mmask16>(qh & 0xffffu), sixteen));
        const __m128i hi = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(q, 4), mask),
                                        _mm_maskz_mov_epi8(static_cast<__mmask16>(qh >> 16), sixteen));
        _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(lo)), d), m));
        _mm512_storeu_ps(dst + 16, _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(hi)), d), m));
    }
}

namespace {
// 16 floats -> 16 halves, round to nearest even, NaN -> 0x7e00 | sign.
inline __m256i f16x16(__m512 v) {
    const __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    const __m256i canon = _mm256_or_si256(_mm256_and_si256(h, _mm256_set1_epi16(static_cast<short>(0x8000))),
                                          _mm256_set1_epi16(0x7e00));
    return _mm256_mask_blend_epi16(nan, h, canon);
}
// 16 floats (as bits) -> 16 bf16, the scalar encoder's integer rounding.
inline __m256i bf16x16(__m512i u) {
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
    const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                  _mm512_set1_epi32(0x7f800000));
    const __m512i q = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, r, q));
}
}  // namespace

void f32_to_f16(const float * src, void * dst, int64_t n) {
    unsigned char * d = static_cast<unsigned char *>(dst);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i *>(d + 2 * i), f16x16(_mm512_loadu_ps(src + i)));
    if (i < n) {
        const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
        _mm256_mask_storeu_epi16(d + 2 * i, m, f16x16(_mm512_maskz_loadu_ps(m, src + i)));
    }
}

void f32_to_bf16(const float * src, void * dst, int64_t n) {
    unsigned char * d = static_cast<unsigned char *>(dst);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i *>(d + 2 * i), bf16x16(_mm512_loadu_si512(src + i)));
    if (i < n) {
        const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
        _mm256_mask_storeu_epi16(d + 2 * i, m, bf16x16(_mm512_maskz_loadu_epi32(m, src + i)));
    }
}

}  // namespace sdgo::types_avx512
