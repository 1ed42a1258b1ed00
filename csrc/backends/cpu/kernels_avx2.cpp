// kernels_avx2.cpp — AVX2/FMA/F16C variants of the micro-kernels
// (gemm_micro.h). Compiled with -mavx2 -mfma -mf16c: keep it to intrinsics,
// plain loops and local templates (see the ISA rules).
#include <immintrin.h>
#include <stdint.h>

#include "backends/cpu/gemm_micro.h"

namespace sdgo::cpu::avx2_isa {

namespace {

constexpr int kMR = 6;
constexpr int kNR = 16;  // 2 ymm

alignas(32) const int32_t kLaneIdx[8] = {0, 1, 2, 3, 4, 5, 6, 7};

// Lanes t < rem set (rem clamped to [0, 8]).
inline __m256i tail_mask(int64_t rem) {
    const int32_t r = rem < 0 ? 0 : rem > 8 ? 8 : (int32_t)rem;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), _mm256_load_si256(reinterpret_cast<const __m256i *>(kLaneIdx)));
}

template <int NV>
inline void ukern(int64_t kc, const float * a, int64_t lda, int mr, const float * bp, int nr, float * c, int64_t ldc,
                  int load_c, const float * bias_row, const float * bias_col) {
    const float * ar[kMR];
#pragma GCC unroll 6
    for (int i = 0; i < kMR; i++) ar[i] = a + (i < mr ? i : mr - 1) * lda;
    __m256 acc[kMR][NV];
#pragma GCC unroll 6
    for (int i = 0; i < kMR; i++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) acc[i][v] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        __m256 b[NV];
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) b[v] = _mm256_load_ps(bp + k * kNR + 8 * v);
#pragma GCC unroll 6
        for (int i = 0; i < kMR; i++) {
            const __m256 ai = _mm256_broadcast_ss(ar[i] + k);
#pragma GCC unroll 2
            for (int v = 0; v < NV; v++) acc[i][v] = _mm256_fmadd_ps(ai, b[v], acc[i][v]);
        }
    }
    // Masked moves only for a partial last vector (vmaskmovps stores are
    // slow on some cores).
    __m256i mk[NV];
    bool full[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) {
        mk[v] = tail_mask(nr - 8 * v);
        full[v] = nr - 8 * v >= 8;
    }
#pragma GCC unroll 6
    for (int i = 0; i < kMR; i++) {
        if (i >= mr) break;
        float * ci = c + i * ldc;
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) {
            __m256 x = acc[i][v];
            if (full[v]) {
                if (load_c) x = _mm256_add_ps(x, _mm256_loadu_ps(ci + 8 * v));
                if (bias_row) x = _mm256_add_ps(x, _mm256_set1_ps(bias_row[i]));
                if (bias_col) x = _mm256_add_ps(x, _mm256_loadu_ps(bias_col + 8 * v));
                _mm256_storeu_ps(ci + 8 * v, x);
            } else {
                if (load_c) x = _mm256_add_ps(x, _mm256_maskload_ps(ci + 8 * v, mk[v]));
                if (bias_row) x = _mm256_add_ps(x, _mm256_set1_ps(bias_row[i]));
                if (bias_col) x = _mm256_add_ps(x, _mm256_maskload_ps(bias_col + 8 * v, mk[v]));
                _mm256_maskstore_ps(ci + 8 * v, mk[v], x);
            }
        }
    }
}

void ukernel(int64_t kc, const float * a, int64_t lda, int mr, const float * bp, int nr, float * c, int64_t ldc,
             int load_c, const float * bias_row, const float * bias_col) {
    if (nr > 8)
        ukern<2>(kc, a, lda, mr, bp, nr, c, ldc, load_c, bias_row, bias_col);
    else
        ukern<1>(kc, a, lda, mr, bp, nr, c, ldc, load_c, bias_row, bias_col);
}

// In-register transpose of 8 rows of 8 floats: on return r[c] holds column c.
inline void transpose8(__m256 r[8]) {
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

struct LoadF32 {
    const float * base;
    __m256 operator()(int64_t off, int64_t n) const {
        if (n >= 8) return _mm256_loadu_ps(base + off);
        return _mm256_maskload_ps(base + off, tail_mask(n));
    }
};
struct LoadF16 {
    const uint16_t * base;
    __m256 operator()(int64_t off, int64_t n) const {
        if (n >= 8) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(base + off)));
        alignas(16) uint16_t tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t t = 0; t < n; t++) tmp[t] = base[off + t];
        return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i *>(tmp)));
    }
};

template <class Load>
inline void pack_trans_impl(Load ld, int64_t lds, int nr, int64_t kc, float * dst, int NR) {
    for (int j0 = 0; j0 < NR; j0 += 8) {
        if (j0 >= nr) {
            for (int64_t k = 0; k < kc; k++) _mm256_store_ps(dst + k * NR + j0, _mm256_setzero_ps());
            continue;
        }
        const int nrows = nr - j0 < 8 ? nr - j0 : 8;
        for (int64_t k = 0; k < kc; k += 8) {
            const int64_t kk = kc - k < 8 ? kc - k : 8;
            __m256 r[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) r[i] = i < nrows ? ld((j0 + i) * lds + k, kk) : _mm256_setzero_ps();
            transpose8(r);
#pragma GCC unroll 8
            for (int c = 0; c < 8; c++)
                if (c < kk) _mm256_store_ps(dst + (k + c) * NR + j0, r[c]);
        }
    }
}

void pack_trans(const float * src, int64_t lds, int nr, int64_t kc, float * dst, int NR) {
    pack_trans_impl(LoadF32{src}, lds, nr, kc, dst, NR);
}

void pack_trans_f16(const uint16_t * src, int64_t lds, int nr, int64_t kc, float * dst, int NR) {
    pack_trans_impl(LoadF16{src}, lds, nr, kc, dst, NR);
}

void pack_rows(const float * src, int64_t lds, int64_t rows, int nd, float * dst, int NR) {
    for (int64_t j = 0; j < rows; j++)
        for (int d = 0; d < NR; d += 8) {
            const __m256 x = nd - d >= 8 ? _mm256_loadu_ps(src + j * lds + d)
                                         : _mm256_maskload_ps(src + j * lds + d, tail_mask(nd - d));
            _mm256_store_ps(dst + j * NR + d, x);
        }
}

void f16_to_f32(const uint16_t * src, float * dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(src + i))));
    if (i < n) {
        const __m256 x = LoadF16{src}(i, n - i);
        _mm256_maskstore_ps(dst + i, tail_mask(n - i), x);
    }
}

void bf16_to_f32(const uint16_t * src, float * dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(src + i)));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
    for (; i < n; i++) {
        const uint32_t b = (uint32_t)src[i] << 16;
        __builtin_memcpy(dst + i, &b, 4);
    }
}

inline __m256 exp8(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.33f));
    x = _mm256_min_ps(x, _mm256_set1_ps(88.37f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

inline float hmax8(__m256 v) {
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    x = _mm_max_ss(x, _mm_shuffle_ps(x, x, 1));
    return _mm_cvtss_f32(x);
}

inline float hsum8(__m256 v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_shuffle_ps(x, x, 1));
    return _mm_cvtss_f32(x);
}

inline float hmin8(__m256 v) {
    __m128 x = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_min_ps(x, _mm_movehl_ps(x, x));
    x = _mm_min_ss(x, _mm_shuffle_ps(x, x, 1));
    return _mm_cvtss_f32(x);
}

void softmax_step(float * S, int64_t lds, int rows, int cols, const int * valid, float scale, float * m, float * l,
                  float * alpha) {
    const float ninf = -__builtin_inff();
    const __m256 vscale = _mm256_set1_ps(scale);
    const __m256 vninf = _mm256_set1_ps(ninf), vpinf = _mm256_set1_ps(__builtin_inff());
    for (int r = 0; r < rows; r++) {
        float * s = S + r * lds;
        const int nv = valid[r];
        const int nv8 = nv & ~7;
        float mx = ninf;
        if (nv > 0) {
            // Full vectors with plain loads; the tail through a mask.
            __m256 vmax = vninf, vmin = vpinf;
            for (int j = 0; j < nv8; j += 8) {
                const __m256 x = _mm256_loadu_ps(s + j);
                vmax = _mm256_max_ps(vmax, x);
                vmin = _mm256_min_ps(vmin, x);
            }
            if (nv8 < nv) {
                const __m256i mk = tail_mask(nv - nv8);
                const __m256 x = _mm256_maskload_ps(s + nv8, mk);
                vmax = _mm256_max_ps(vmax, _mm256_blendv_ps(vninf, x, _mm256_castsi256_ps(mk)));
                vmin = _mm256_min_ps(vmin, _mm256_blendv_ps(vpinf, x, _mm256_castsi256_ps(mk)));
            }
            mx = scale >= 0.0f ? scale * hmax8(vmax) : scale * hmin8(vmin);
        }
        const float m_old = m[r];
        const float m_new = mx > m_old ? mx : m_old;
        if (m_new == ninf) {
            for (int j = 0; j < cols; j++) s[j] = 0.0f;
            alpha[r] = 1.0f;
            continue;
        }
        const __m256 vm = _mm256_set1_ps(m_new);
        __m256 vsum = _mm256_setzero_ps();
        for (int j = 0; j < nv8; j += 8) {
            const __m256 p = exp8(_mm256_fmsub_ps(_mm256_loadu_ps(s + j), vscale, vm));
            _mm256_storeu_ps(s + j, p);
            vsum = _mm256_add_ps(vsum, p);
        }
        if (nv8 < nv) {
            const __m256i mv = tail_mask(nv - nv8);
            const __m256 p = _mm256_and_ps(exp8(_mm256_fmsub_ps(_mm256_maskload_ps(s + nv8, mv), vscale, vm)),
                                           _mm256_castsi256_ps(mv));
            alignas(32) float t[8];
            _mm256_store_ps(t, p);
            for (int j = nv8; j < nv; j++) s[j] = t[j - nv8];
            vsum = _mm256_add_ps(vsum, p);
        }
        for (int j = nv; j < cols; j++) s[j] = 0.0f;
        float a = 0.0f;
        if (m_old != ninf) a = _mm256_cvtss_f32(exp8(_mm256_set1_ps(m_old - m_new)));
        alpha[r] = a;
        l[r] = l[r] * a + hsum8(vsum);
        m[r] = m_new;
    }
}

double fma_loop(int64_t iters) {
    __m256 acc[12];
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps((float)i);
    const __m256 mul = _mm256_set1_ps(0.9999999f), add = _mm256_set1_ps(1e-7f);
    for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], mul, add);
    }
    __m256 s = acc[0];
#pragma GCC unroll 12
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, acc[i]);
    volatile float sink = hsum8(s);
    (void)sink;
    return 2.0 * 12 * 8 * (double)iters;
}

}  // namespace

void get_kernels(KernelSet * ks) {
    ks->mr = kMR;
    ks->nr = kNR;
    ks->ukernel = ukernel;
    ks->pack_trans = pack_trans;
    ks->pack_trans_f16 = pack_trans_f16;
    ks->pack_rows = pack_rows;
    ks->f16_to_f32 = f16_to_f32;
    ks->bf16_to_f32 = bf16_to_f32;
    ks->softmax_step = softmax_step;
    ks->fma_loop = fma_loop;
}

}  // namespace sdgo::cpu::avx2_isa
