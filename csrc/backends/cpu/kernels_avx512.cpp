// kernels_avx512.cpp — AVX-512 variants of the micro-kernels (gemm_micro.h).
// Compiled with -mavx512f/bw/vl/dq: keep it to intrinsics, plain loops and
// local templates (no standard-library inline functions, see the ISA rules).
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own
// _mm512_undefined_* placeholders.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#include <stdint.h>

#include "backends/cpu/gemm_micro.h"

namespace sdgo::cpu::avx512_isa {

namespace {

constexpr int kMR = 8;
constexpr int kNR = 48;  // 3 zmm

inline __mmask16 tail_mask(int64_t rem) {
    return rem >= 16 ? (__mmask16)0xFFFF : rem <= 0 ? (__mmask16)0 : (__mmask16)((1u << rem) - 1u);
}

// 8 x (16*NV) register tile; B rows are kNR floats apart.
template <int NV>
inline void ukern(int64_t kc, const float * a, int64_t lda, int mr, const float * bp, int nr, float * c, int64_t ldc,
                  int load_c, const float * bias_row, const float * bias_col) {
    const float * ar[kMR];
#pragma GCC unroll 8
    for (int i = 0; i < kMR; i++) ar[i] = a + (i < mr ? i : mr - 1) * lda;
    __m512 acc[kMR][NV];
#pragma GCC unroll 8
    for (int i = 0; i < kMR; i++)
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) acc[i][v] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        __m512 b[NV];
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) b[v] = _mm512_load_ps(bp + k * kNR + 16 * v);
#pragma GCC unroll 8
        for (int i = 0; i < kMR; i++) {
            const __m512 ai = _mm512_set1_ps(ar[i][k]);
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(ai, b[v], acc[i][v]);
        }
    }
    __mmask16 mk[NV];
#pragma GCC unroll 3
    for (int v = 0; v < NV; v++) mk[v] = tail_mask(nr - 16 * v);
#pragma GCC unroll 8
    for (int i = 0; i < kMR; i++) {
        if (i >= mr) break;
        float * ci = c + i * ldc;
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) {
            __m512 x = acc[i][v];
            if (load_c) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mk[v], ci + 16 * v));
            if (bias_row) x = _mm512_add_ps(x, _mm512_set1_ps(bias_row[i]));
            if (bias_col) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mk[v], bias_col + 16 * v));
            _mm512_mask_storeu_ps(ci + 16 * v, mk[v], x);
        }
    }
}

// 8 x 40 tile: two zmm columns and a ymm one. On cores that split a zmm FMA
// into two 256-bit halves (Zen 4) the ymm costs half; the arithmetic per
// element is the same as ukern<3>'s.
inline void ukern_40(int64_t kc, const float * a, int64_t lda, int mr, const float * bp, int nr, float * c,
                     int64_t ldc, int load_c, const float * bias_row, const float * bias_col) {
    const float * ar[kMR];
#pragma GCC unroll 8
    for (int i = 0; i < kMR; i++) ar[i] = a + (i < mr ? i : mr - 1) * lda;
    __m512 acc0[kMR], acc1[kMR];
    __m256 acc2[kMR];
#pragma GCC unroll 8
    for (int i = 0; i < kMR; i++) {
        acc0[i] = _mm512_setzero_ps();
        acc1[i] = _mm512_setzero_ps();
        acc2[i] = _mm256_setzero_ps();
    }
    for (int64_t k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_load_ps(bp + k * kNR), b1 = _mm512_load_ps(bp + k * kNR + 16);
        const __m256 b2 = _mm256_load_ps(bp + k * kNR + 32);
#pragma GCC unroll 8
        for (int i = 0; i < kMR; i++) {
            const __m512 ai = _mm512_set1_ps(ar[i][k]);
            acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
            acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
            acc2[i] = _mm256_fmadd_ps(_mm512_castps512_ps256(ai), b2, acc2[i]);
        }
    }
    const __mmask16 m1 = tail_mask(nr - 16);
    const __mmask8 m2 = (__mmask8)tail_mask(nr - 32);
#pragma GCC unroll 8
    for (int i = 0; i < kMR; i++) {
        if (i >= mr) break;
        float * ci = c + i * ldc;
        __m512 x0 = acc0[i], x1 = acc1[i];
        __m256 x2 = acc2[i];
        if (load_c) {
            x0 = _mm512_add_ps(x0, _mm512_loadu_ps(ci));
            x1 = _mm512_add_ps(x1, _mm512_maskz_loadu_ps(m1, ci + 16));
            x2 = _mm256_add_ps(x2, _mm256_maskz_loadu_ps(m2, ci + 32));
        }
        if (bias_row) {
            const __m512 br = _mm512_set1_ps(bias_row[i]);
            x0 = _mm512_add_ps(x0, br);
            x1 = _mm512_add_ps(x1, br);
            x2 = _mm256_add_ps(x2, _mm512_castps512_ps256(br));
        }
        if (bias_col) {
            x0 = _mm512_add_ps(x0, _mm512_loadu_ps(bias_col));
            x1 = _mm512_add_ps(x1, _mm512_maskz_loadu_ps(m1, bias_col + 16));
            x2 = _mm256_add_ps(x2, _mm256_maskz_loadu_ps(m2, bias_col + 32));
        }
        _mm512_storeu_ps(ci, x0);
        _mm512_mask_storeu_ps(ci + 16, m1, x1);
        _mm256_mask_storeu_ps(ci + 32, m2, x2);
    }
}

void ukernel(int64_t kc, const float * a, int64_t lda, int mr, const float * bp, int nr, float * c, int64_t ldc,
             int load_c, const float * bias_row, const float * bias_col) {
    if (nr > 32 && nr <= 40)
        ukern_40(kc, a, lda, mr, bp, nr, c, ldc, load_c, bias_row, bias_col);
    else if (nr > 32)
        ukern<3>(kc, a, lda, mr, bp, nr, c, ldc, load_c, bias_row, bias_col);
    else if (nr > 16)
        ukern<2>(kc, a, lda, mr, bp, nr, c, ldc, load_c, bias_row, bias_col);
    else
        ukern<1>(kc, a, lda, mr, bp, nr, c, ldc, load_c, bias_row, bias_col);
}

// In-register transpose of 16 rows of 16 floats: on return r[c] holds column c.
inline void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
#pragma GCC unroll 8
    for (int g = 0; g < 4; g++) {
        t[4 * g + 0] = _mm512_unpacklo_ps(r[4 * g + 0], r[4 * g + 1]);
        t[4 * g + 1] = _mm512_unpackhi_ps(r[4 * g + 0], r[4 * g + 1]);
        t[4 * g + 2] = _mm512_unpacklo_ps(r[4 * g + 2], r[4 * g + 3]);
        t[4 * g + 3] = _mm512_unpackhi_ps(r[4 * g + 2], r[4 * g + 3]);
    }
    // u[4*g + c]: lane L holds rows 4g..4g+3 of column 4L + c.
#pragma GCC unroll 8
    for (int g = 0; g < 4; g++) {
        u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g + 0], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g + 0], t[4 * g + 2], 0xEE);
        u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
#pragma GCC unroll 8
    for (int c = 0; c < 4; c++) {
        const __m512 x0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
        const __m512 x1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
        const __m512 x2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
        const __m512 x3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
        r[c + 0] = _mm512_shuffle_f32x4(x0, x2, 0x88);
        r[c + 4] = _mm512_shuffle_f32x4(x0, x2, 0xDD);
        r[c + 8] = _mm512_shuffle_f32x4(x1, x3, 0x88);
        r[c + 12] = _mm512_shuffle_f32x4(x1, x3, 0xDD);
    }
}

struct LoadF32 {
    const float * base;
    __m512 operator()(int64_t off, __mmask16 m) const { return _mm512_maskz_loadu_ps(m, base + off); }
};
struct LoadF16 {
    const uint16_t * base;
    __m512 operator()(int64_t off, __mmask16 m) const {
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, base + off));
    }
};

// dst[k*NR + j] = row j, element k (j < nr, k < kc); zero for nr <= j < NR.
template <class Load>
inline void pack_trans_impl(Load ld, int64_t lds, int nr, int64_t kc, float * dst, int NR) {
    for (int j0 = 0; j0 < NR; j0 += 16) {
        if (j0 >= nr) {
            for (int64_t k = 0; k < kc; k++) _mm512_store_ps(dst + k * NR + j0, _mm512_setzero_ps());
            continue;
        }
        const int nrows = nr - j0 < 16 ? nr - j0 : 16;
        for (int64_t k = 0; k < kc; k += 16) {
            const int64_t kk = kc - k < 16 ? kc - k : 16;
            const __mmask16 m = tail_mask(kk);
            __m512 r[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++) r[i] = i < nrows ? ld((j0 + i) * lds + k, m) : _mm512_setzero_ps();
            transpose16(r);
#pragma GCC unroll 16
            for (int c = 0; c < 16; c++)
                if (c < kk) _mm512_store_ps(dst + (k + c) * NR + j0, r[c]);
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
        for (int d = 0; d < NR; d += 16)
            _mm512_store_ps(dst + j * NR + d, _mm512_maskz_loadu_ps(tail_mask(nd - d), src + j * lds + d));
}

void f16_to_f32(const uint16_t * src, float * dst, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(src + i))));
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src + i)));
    }
}

inline __m512 bf16x16(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }

void bf16_to_f32(const uint16_t * src, float * dst, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, bf16x16(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(src + i))));
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(dst + i, m, bf16x16(_mm256_maskz_loadu_epi16(m, src + i)));
    }
}

// e^x, relative error about 2e-7; inf above 88.7.
inline __m512 exp16(__m512 x) {
    // The clamp keeps -inf from turning into NaN and the result normal (no
    // denormal operands downstream): e^x for x < -87.33 comes out as 1.2e-38.
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.33f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

void softmax_step(float * S, int64_t lds, int rows, int cols, const int * valid, float scale, float * m, float * l,
                  float * alpha) {
    const float ninf = -__builtin_inff();
    const __m512 vscale = _mm512_set1_ps(scale);
    for (int r = 0; r < rows; r++) {
        float * s = S + r * lds;
        const int nv = valid[r];
        // max of scale*s = scale * (max s or min s, by the sign of scale)
        float mx = ninf;
        if (nv > 0) {
            if (scale >= 0.0f) {
                __m512 vmax = _mm512_set1_ps(ninf);
                for (int j = 0; j < nv; j += 16) {
                    const __mmask16 mk = tail_mask(nv - j);
                    vmax = _mm512_mask_max_ps(vmax, mk, vmax, _mm512_maskz_loadu_ps(mk, s + j));
                }
                mx = scale * _mm512_reduce_max_ps(vmax);
            } else {
                __m512 vmin = _mm512_set1_ps(__builtin_inff());
                for (int j = 0; j < nv; j += 16) {
                    const __mmask16 mk = tail_mask(nv - j);
                    vmin = _mm512_mask_min_ps(vmin, mk, vmin, _mm512_maskz_loadu_ps(mk, s + j));
                }
                mx = scale * _mm512_reduce_min_ps(vmin);
            }
        }
        const float m_old = m[r];
        const float m_new = mx > m_old ? mx : m_old;
        if (m_new == ninf) {
            for (int j = 0; j < cols; j += 16) _mm512_mask_storeu_ps(s + j, tail_mask(cols - j), _mm512_setzero_ps());
            alpha[r] = 1.0f;
            continue;
        }
        const __m512 vm = _mm512_set1_ps(m_new);
        __m512 vsum = _mm512_setzero_ps();
        for (int j = 0; j < cols; j += 16) {
            const __mmask16 mc = tail_mask(cols - j);
            const __mmask16 mv = tail_mask(nv - j);
            __m512 p = _mm512_setzero_ps();
            if (mv) p = _mm512_maskz_mov_ps(mv, exp16(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(mv, s + j), vscale, vm)));
            _mm512_mask_storeu_ps(s + j, mc, p);
            vsum = _mm512_add_ps(vsum, p);
        }
        float a = 0.0f;
        if (m_old != ninf) a = _mm512_cvtss_f32(exp16(_mm512_set1_ps(m_old - m_new)));
        alpha[r] = a;
        l[r] = l[r] * a + _mm512_reduce_add_ps(vsum);
        m[r] = m_new;
    }
}

double fma_loop(int64_t iters) {
    __m512 acc[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) acc[i] = _mm512_set1_ps((float)i);
    const __m512 mul = _mm512_set1_ps(0.9999999f), add = _mm512_set1_ps(1e-7f);
    for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) acc[i] = _mm512_fmadd_ps(acc[i], mul, add);
    }
    __m512 s = acc[0];
#pragma GCC unroll 16
    for (int i = 1; i < 16; i++) s = _mm512_add_ps(s, acc[i]);
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    return 2.0 * 16 * 16 * (double)iters;
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

}  // namespace sdgo::cpu::avx512_isa
