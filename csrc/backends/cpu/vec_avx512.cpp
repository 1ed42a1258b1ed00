// AVX-512 row kernels for activations and softmax (see vec.h).
// GCC 12 warns inside its own AVX-512 headers (_mm512_undefined_ps): a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "backends/cpu/vec.h"

namespace sdgo::ops::avx512 {

namespace {

// exp(x) for 16 lanes: range reduction by ln2 and a degree-6 polynomial,
// scaled by 2^n with vscalefps (handles under/overflow gracefully).
__attribute__((always_inline)) inline __m512 exp16(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(88.72f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    const __m512 r2 = _mm512_mul_ps(r, r);
    p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

// x / (1 + exp(-a x))
__attribute__((always_inline)) inline __m512 sigmoid_mul16(__m512 x, __m512 ax) {
    const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), ax));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

__attribute__((always_inline)) inline __m512 gelu16(__m512 x) {
    const __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f));
    const __m512 az = _mm512_abs_ps(z);
    const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(az, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    p = _mm512_mul_ps(p, t);
    // q = erfc(|z|) = p * exp(-z^2); 1 + erf(z) = 2 - q for z >= 0, q otherwise.
    const __m512 q = _mm512_mul_ps(p, exp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(z, z))));
    const __mmask16 pos = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_GE_OQ);
    const __m512 one_plus = _mm512_mask_sub_ps(q, pos, _mm512_set1_ps(2.0f), q);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), one_plus);
}

inline __mmask16 tail_mask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

}  // namespace

void silu(const float * x, float * y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        _mm512_storeu_ps(y + i, sigmoid_mul16(v, v));
    }
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        _mm512_mask_storeu_ps(y + i, m, sigmoid_mul16(v, v));
    }
}

void quick_gelu(const float * x, float * y, int64_t n) {
    const __m512 a = _mm512_set1_ps(1.702f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        _mm512_storeu_ps(y + i, sigmoid_mul16(v, _mm512_mul_ps(a, v)));
    }
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        _mm512_mask_storeu_ps(y + i, m, sigmoid_mul16(v, _mm512_mul_ps(a, v)));
    }
}

// 0.5 x (1 + tanh(u)) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3).
void gelu_tanh(const float * x, float * y, int64_t n) {
    const __m512 k2 = _mm512_set1_ps(2.0f * 0.79788456080286535588f);
    const __m512 c = _mm512_set1_ps(0.044715f);
    int64_t i = 0;
    for (; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : tail_mask(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        const __m512 u2 = _mm512_mul_ps(k2, _mm512_fmadd_ps(_mm512_mul_ps(c, v), _mm512_mul_ps(v, v), v));
        _mm512_mask_storeu_ps(y + i, m, sigmoid_mul16(v, u2));
    }
}

void gelu(const float * x, float * y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, gelu16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, gelu16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

float scale_max(const float * x, float * y, int64_t n, float s) {
    const __m512 vs = _mm512_set1_ps(s);
    __m512 mx = _mm512_set1_ps(-__builtin_inff());
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_mul_ps(vs, _mm512_loadu_ps(x + i));
        _mm512_storeu_ps(y + i, v);
        mx = _mm512_max_ps(mx, v);
    }
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 v = _mm512_mul_ps(vs, _mm512_maskz_loadu_ps(m, x + i));
        _mm512_mask_storeu_ps(y + i, m, v);
        mx = _mm512_mask_max_ps(mx, m, mx, v);
    }
    return _mm512_reduce_max_ps(mx);
}

float exp_sub_sum(float * y, int64_t n, float mval) {
    const __m512 vm = _mm512_set1_ps(mval);
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(y + i), vm));
        _mm512_storeu_ps(y + i, e);
        acc = _mm512_add_ps(acc, e);
    }
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, y + i), vm));
        _mm512_mask_storeu_ps(y + i, m, e);
        acc = _mm512_mask_add_ps(acc, m, acc, e);
    }
    return _mm512_reduce_add_ps(acc);
}

namespace {

// Adds the 16 floats of v, widened to double, into two double accumulators.
__attribute__((always_inline)) inline void acc_pd(__m512 v, __m512d & a0, __m512d & a1) {
    a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}

__attribute__((always_inline)) inline void accsq_pd(__m512 v, __m512d & a0, __m512d & a1) {
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    a0 = _mm512_fmadd_pd(lo, lo, a0);
    a1 = _mm512_fmadd_pd(hi, hi, a1);
}

}  // namespace

double sum(const float * x, int64_t n) {
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) acc_pd(_mm512_loadu_ps(x + i), a0, a1);
    if (i < n) acc_pd(_mm512_maskz_loadu_ps(tail_mask(n - i), x + i), a0, a1);
    return _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
}

double sumsq_dev(const float * x, int64_t n, float mean) {
    const __m512 vm = _mm512_set1_ps(mean);
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) accsq_pd(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm), a0, a1);
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        accsq_pd(_mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), vm), a0, a1);
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
}

void sums_shifted(const float * x, int64_t n, float k, double * s1, double * s2) {
    const __m512 vk = _mm512_set1_ps(k);
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    __m512d q0 = _mm512_setzero_pd(), q1 = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + i), vk);
        acc_pd(d, a0, a1);
        accsq_pd(d, q0, q1);
    }
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), vk);
        acc_pd(d, a0, a1);
        accsq_pd(d, q0, q1);
    }
    *s1 += _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
    *s2 += _mm512_reduce_add_pd(_mm512_add_pd(q0, q1));
}

void affine(const float * x, float * y, int64_t n, float a, float b) {
    const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(_mm512_loadu_ps(x + i), va, vb));
    if (i < n) {
        const __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), va, vb));
    }
}

}  // namespace sdgo::ops::avx512
