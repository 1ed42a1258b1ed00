// convert_avx2.cpp — AVX2 + F16C row decoders (compiled with -mavx2 -mfma -mf16c).
//
// Plain functions, intrinsics and loops only: no shared inline helpers or STL
// templates here, so no AVX2 code can leak into the portable paths. Decoding
// is one int->float conversion and one multiply per element (no FMA), which
// is exactly the scalar decoder's arithmetic, so the bits are identical.
// (Q4_1/Q5_1 decode as q*d + m: a multiply then an add, never fused.)
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <immintrin.h>


#include "backends/cpu/convert_simd.h"

namespace sdgo::types_avx2 {

namespace {
inline float half_to_float(const unsigned char * p) {
    unsigned short h;
    __builtin_memcpy(&h, p, 2);
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}
// Bytes 0..15 get 0x10 where bit j (lo) or bit j+16 (hi) of qh is set.
inline void q5_high_bits(unsigned int qh, __m128i * lo, __m128i * hi) {
    const __m128i v = _mm_cvtsi32_si128(static_cast<int>(qh));
    const __m128i bit = _mm_set_epi8(-128, 64, 32, 16, 8, 4, 2, 1, -128, 64, 32, 16, 8, 4, 2, 1);
    const __m128i sixteen = _mm_set1_epi8(0x10);
    const __m128i l = _mm_shuffle_epi8(v, _mm_set_epi8(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0));
    const __m128i h = _mm_shuffle_epi8(v, _mm_set_epi8(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2));
    *lo = _mm_and_si128(_mm_cmpeq_epi8(_mm_and_si128(l, bit), bit), sixteen);
    *hi = _mm_and_si128(_mm_cmpeq_epi8(_mm_and_si128(h, bit), bit), sixteen);
}

// 16 signed bytes -> 16 floats times d (dst[0..15]).
inline void store_i8x16(float * dst, __m128i q, __m256 d) {
    _mm256_storeu_ps(dst, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d));
    _mm256_storeu_ps(dst + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8))), d));
}
// 16 unsigned bytes -> 16 floats q*d + m.
inline void store_u8x16_dm(float * dst, __m128i q, __m256 d, __m256 m) {
    const __m256 a = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q)), d);
    const __m256 b = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(q, 8))), d);
    _mm256_storeu_ps(dst, _mm256_add_ps(a, m));
    _mm256_storeu_ps(dst + 8, _mm256_add_ps(b, m));
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
    for (; i + 16 <= n; i += 16) {
        const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i *>(s + 2 * i));
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i *>(s + 2 * i + 16));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(a));
        _mm256_storeu_ps(dst + i + 8, _mm256_cvtph_ps(b));
    }
    while (i < n) {
        const int64_t k = n - i < 8 ? n - i : 8;
        unsigned char tmp[16] = {0};
        float out[8];
        __builtin_memcpy(tmp, s + 2 * i, static_cast<size_t>(k) * 2);
        _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(tmp))));
        __builtin_memcpy(dst + i, out, static_cast<size_t>(k) * 4);
        i += k;
    }
}

void bf16_to_f32(const void * src, float * dst, int64_t n) {
    const unsigned char * s = static_cast<const unsigned char *>(src);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i *>(s + 2 * i));
        const __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(a), 16);
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(w));
    }
    for (; i < n; ++i) {
        unsigned short h;
        __builtin_memcpy(&h, s + 2 * i, 2);
        const unsigned int u = static_cast<unsigned int>(h) << 16;
        __builtin_memcpy(dst + i, &u, 4);
    }
}

void q4_0_to_f32(const void * src, float * dst, int64_t n) {
    const unsigned char * b = static_cast<const unsigned char *>(src);
    const __m128i mask = _mm_set1_epi8(0x0F);
    const __m128i eight = _mm_set1_epi8(8);
    for (int64_t i = 0; i < n / 32; ++i, b += 18, dst += 32) {
        const __m256 d = _mm256_set1_ps(half_to_float(b));
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b + 2));
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, mask), eight);                     // elements 0..15
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), mask), eight);  // elements 16..31
        _mm256_storeu_ps(dst + 0, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), d));
        _mm256_storeu_ps(dst + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), d));
        _mm256_storeu_ps(dst + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), d));
        _mm256_storeu_ps(dst + 24, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), d));
    }
}

void q8_0_to_f32(const void * src, float * dst, int64_t n) {
    const unsigned char * b = static_cast<const unsigned char *>(src);
    for (int64_t i = 0; i < n / 32; ++i, b += 34, dst += 32) {
        const __m256 d = _mm256_set1_ps(half_to_float(b));
        for (int k = 0; k < 4; ++k) {
            const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i *>(b + 2 + 8 * k));
            _mm256_storeu_ps(dst + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d));
        }
    }
}

void q4_1_to_f32(const void * src, float * dst, int64_t n) {
    const unsigned char * b = static_cast<const unsigned char *>(src);
    const __m128i mask = _mm_set1_epi8(0x0F);
    for (int64_t i = 0; i < n / 32; ++i, b += 20, dst += 32) {
        const __m256 d = _mm256_set1_ps(half_to_float(b));
        const __m256 m = _mm256_set1_ps(half_to_float(b + 2));
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b + 4));
        store_u8x16_dm(dst, _mm_and_si128(q, mask), d, m);
        store_u8x16_dm(dst + 16, _mm_and_si128(_mm_srli_epi16(q, 4), mask), d, m);
    }
}

void q5_0_to_f32(const void * src, float * dst, int64_t n) {
    const unsigned char * b = static_cast<const unsigned char *>(src);
    const __m128i mask = _mm_set1_epi8(0x0F);
    const __m128i sixteen = _mm_set1_epi8(16);
    for (int64_t i = 0; i < n / 32; ++i, b += 22, dst += 32) {
        const __m256 d = _mm256_set1_ps(half_to_float(b));
        __m128i hlo, hhi;
        q5_high_bits(load_u32(b + 2), &hlo, &hhi);
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b + 6));
        const __m128i lo = _mm_sub_epi8(_mm_or_si128(_mm_and_si128(q, mask), hlo), sixteen);
        const __m128i hi = _mm_sub_epi8(_mm_or_si128(_mm_and_si128(_mm_srli_epi16(q, 4), mask), hhi), sixteen);
        store_i8x16(dst, lo, d);
        store_i8x16(dst + 16, hi, d);
    }
}

void q5_1_to_f32(const void * src, float * dst, int64_t n) {
    const unsigned char * b = static_cast<const unsigned char *>(src);
    const __m128i mask = _mm_set1_epi8(0x0F);
    for (int64_t i = 0; i < n / 32; ++i, b += 24, dst += 32) {
        const __m256 d = _mm256_set1_ps(half_to_float(b));
        const __m256 m = _mm256_set1_ps(half_to_float(b + 2));
        __m128i hlo, hhi;
        q5_high_bits(load_u32(b + 4), &hlo, &hhi);
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b + 8));
        store_u8x16_dm(dst, _mm_or_si128(_mm_and_si128(q, mask), hlo), d, m);
        store_u8x16_dm(dst + 16, _mm_or_si128(_mm_and_si128(_mm_srli_epi16(q, 4), mask), hhi), d, m);
    }
}

namespace {
// 8 floats -> 8 halves, round to nearest even, NaN -> 0x7e00 | sign (as the
// scalar encoder; F16C alone would keep the NaN payload).
inline __m128i f16x8(__m256 v) {
    const __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m128i nan = _mm_cmpgt_epi16(_mm_and_si128(h, _mm_set1_epi16(0x7fff)), _mm_set1_epi16(0x7c00));
    const __m128i canon = _mm_or_si128(_mm_and_si128(h, _mm_set1_epi16(static_cast<short>(0x8000))),
                                       _mm_set1_epi16(0x7e00));
    return _mm_blendv_epi8(h, canon, nan);
}
// 8 floats -> 8 bf16, the scalar encoder's integer rounding.
inline __m128i bf16x8(__m256i u) {
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                           _mm256_set1_epi32(0x7f800000));
    const __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    const __m256i v = _mm256_blendv_epi8(r, q, nan);  // every lane <= 0xffff: packus keeps it
    const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(v, v), 0x08);
    return _mm256_castsi256_si128(p);
}
}  // namespace

void f32_to_f16(const float * src, void * dst, int64_t n) {
    unsigned char * d = static_cast<unsigned char *>(dst);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm_storeu_si128(reinterpret_cast<__m128i *>(d + 2 * i), f16x8(_mm256_loadu_ps(src + i)));
    if (i < n) {
        float tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        unsigned char out[16];
        __builtin_memcpy(tmp, src + i, static_cast<size_t>(n - i) * 4);
        _mm_storeu_si128(reinterpret_cast<__m128i *>(out), f16x8(_mm256_loadu_ps(tmp)));
        __builtin_memcpy(d + 2 * i, out, static_cast<size_t>(n - i) * 2);
    }
}

void f32_to_bf16(const float * src, void * dst, int64_t n) {
    unsigned char * d = static_cast<unsigned char *>(dst);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i u = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(src + i));
        _mm_storeu_si128(reinterpret_cast<__m128i *>(d + 2 * i), bf16x8(u));
    }
    if (i < n) {
        float tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        unsigned char out[16];
        __builtin_memcpy(tmp, src + i, static_cast<size_t>(n - i) * 4);
        _mm_storeu_si128(reinterpret_cast<__m128i *>(out),
                         bf16x8(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(tmp))));
        __builtin_memcpy(d + 2 * i, out, static_cast<size_t>(n - i) * 2);
    }
}

}  // namespace sdgo::types_avx2
