// AVX2 + FMA row kernels for activations and softmax (see vec.h). Tails are
// processed through an 8-float stack buffer.
#include <immintrin.h>

#include "backends/cpu/vec.h"

namespace sdgo::ops::avx2 {

namespace {

// exp(x) for 8 lanes; x is clamped so that 2^n stays a normal float.
__attribute__((always_inline)) inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 r2 = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

__attribute__((always_inline)) inline __m256 sigmoid_mul8(__m256 x, __m256 ax) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), ax));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

__attribute__((always_inline)) inline __m256 gelu8(__m256 x) {
    const __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f));
    const __m256 az = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
    const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(az, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    const __m256 q = _mm256_mul_ps(p, exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(z, z))));
    const __m256 pos = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_GE_OQ);
    const __m256 one_plus = _mm256_blendv_ps(q, _mm256_sub_ps(_mm256_set1_ps(2.0f), q), pos);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), one_plus);
}

enum Kind { kSilu, kQuick, kGeluTanh, kGelu };

__attribute__((always_inline)) inline __m256 apply(Kind k, __m256 v) {
    switch (k) {
        case kSilu: return sigmoid_mul8(v, v);
        case kQuick: return sigmoid_mul8(v, _mm256_mul_ps(_mm256_set1_ps(1.702f), v));
        case kGeluTanh: {
            const __m256 c = _mm256_set1_ps(0.044715f);
            const __m256 u = _mm256_fmadd_ps(_mm256_mul_ps(c, v), _mm256_mul_ps(v, v), v);
            return sigmoid_mul8(v, _mm256_mul_ps(_mm256_set1_ps(2.0f * 0.79788456080286535588f), u));
        }
        default: return gelu8(v);
    }
}

__attribute__((always_inline)) inline void run(Kind k, const float * x, float * y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, apply(k, _mm256_loadu_ps(x + i)));
    if (i < n) {
        float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t j = i; j < n; j++) buf[j - i] = x[j];
        _mm256_storeu_ps(buf, apply(k, _mm256_loadu_ps(buf)));
        for (int64_t j = i; j < n; j++) y[j] = buf[j - i];
    }
}

inline float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

}  // namespace

void silu(const float * x, float * y, int64_t n) { run(kSilu, x, y, n); }
void quick_gelu(const float * x, float * y, int64_t n) { run(kQuick, x, y, n); }
void gelu_tanh(const float * x, float * y, int64_t n) { run(kGeluTanh, x, y, n); }
void gelu(const float * x, float * y, int64_t n) { run(kGelu, x, y, n); }

float scale_max(const float * x, float * y, int64_t n, float s) {
    const __m256 vs = _mm256_set1_ps(s);
    __m256 mx = _mm256_set1_ps(-__builtin_inff());
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_mul_ps(vs, _mm256_loadu_ps(x + i));
        _mm256_storeu_ps(y + i, v);
        mx = _mm256_max_ps(mx, v);
    }
    float m = hmax(mx);
    for (; i < n; i++) {
        y[i] = s * x[i];
        if (y[i] > m) m = y[i];
    }
    return m;
}

float exp_sub_sum(float * y, int64_t n, float mval) {
    const __m256 vm = _mm256_set1_ps(mval);
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(y + i), vm));
        _mm256_storeu_ps(y + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    if (i < n) {
        float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t j = i; j < n; j++) buf[j - i] = y[j];
        _mm256_storeu_ps(buf, exp8(_mm256_sub_ps(_mm256_loadu_ps(buf), vm)));
        for (int64_t j = i; j < n; j++) y[j] = buf[j - i];
        for (int64_t j = n - i; j < 8; j++) buf[j] = 0.0f;  // padding lanes do not count
        acc = _mm256_add_ps(acc, _mm256_loadu_ps(buf));
    }
    return hsum(acc);
}

namespace {

__attribute__((always_inline)) inline void acc_pd(__m256 v, __m256d & a0, __m256d & a1) {
    a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

__attribute__((always_inline)) inline void accsq_pd(__m256 v, __m256d & a0, __m256d & a1) {
    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    a0 = _mm256_fmadd_pd(lo, lo, a0);
    a1 = _mm256_fmadd_pd(hi, hi, a1);
}

inline double hsum_pd(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}

}  // namespace

double sum(const float * x, int64_t n) {
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) acc_pd(_mm256_loadu_ps(x + i), a0, a1);
    double t = hsum_pd(_mm256_add_pd(a0, a1));
    for (; i < n; i++) t += static_cast<double>(x[i]);
    return t;
}

double sumsq_dev(const float * x, int64_t n, float mean) {
    const __m256 vm = _mm256_set1_ps(mean);
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) accsq_pd(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), a0, a1);
    double t = hsum_pd(_mm256_add_pd(a0, a1));
    for (; i < n; i++) {
        const double d = static_cast<double>(x[i] - mean);
        t += d * d;
    }
    return t;
}

void sums_shifted(const float * x, int64_t n, float k, double * s1, double * s2) {
    const __m256 vk = _mm256_set1_ps(k);
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    __m256d q0 = _mm256_setzero_pd(), q1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), vk);
        acc_pd(d, a0, a1);
        accsq_pd(d, q0, q1);
    }
    double t1 = hsum_pd(_mm256_add_pd(a0, a1)), t2 = hsum_pd(_mm256_add_pd(q0, q1));
    for (; i < n; i++) {
        const double d = static_cast<double>(x[i] - k);
        t1 += d;
        t2 += d * d;
    }
    *s1 += t1;
    *s2 += t2;
}

void affine(const float * x, float * y, int64_t n, float a, float b) {
    const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_loadu_ps(x + i), va, vb));
    for (; i < n; i++) y[i] = x[i] * a + b;
}

}  // namespace sdgo::ops::avx2
