// kernels_neon.cpp — arm64 Advanced SIMD variants of the micro-kernels
// (gemm_micro.h). Plain intrinsics and loops (see the ISA rules).
#include <arm_neon.h>
#include <stdint.h>

#include "backends/cpu/gemm_micro.h"

namespace sdgo::cpu::neon_isa {

namespace {

constexpr int kMR = 8;
constexpr int kNR = 12;  // 3 q registers

// 8 x (4*NV) register tile; B rows are kNR floats apart.
template <int NV>
inline void ukern(int64_t kc, const float * a, int64_t lda, int mr, const float * bp, int nr, float * c, int64_t ldc,
                  int load_c, const float * bias_row, const float * bias_col) {
    const float * ar[kMR];
    for (int i = 0; i < kMR; i++) ar[i] = a + (i < mr ? i : mr - 1) * lda;
    float32x4_t acc[kMR][NV];
#pragma GCC unroll 8
    for (int i = 0; i < kMR; i++)
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) acc[i][v] = vdupq_n_f32(0.0f);
    for (int64_t k = 0; k < kc; k++) {
        float32x4_t b[NV];
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) b[v] = vld1q_f32(bp + k * kNR + 4 * v);
#pragma GCC unroll 8
        for (int i = 0; i < kMR; i++) {
            const float ai = ar[i][k];
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++) acc[i][v] = vfmaq_n_f32(acc[i][v], b[v], ai);
        }
    }
    for (int i = 0; i < mr; i++) {
        float * ci = c + i * ldc;
        float row[4 * NV];
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) vst1q_f32(row + 4 * v, acc[i][v]);
        if (nr == 4 * NV && !load_c && !bias_row && !bias_col) {
            for (int v = 0; v < NV; v++) vst1q_f32(ci + 4 * v, vld1q_f32(row + 4 * v));
            continue;
        }
        for (int j = 0; j < nr; j++) {
            float x = row[j];
            if (load_c) x += ci[j];
            if (bias_row) x += bias_row[i];
            if (bias_col) x += bias_col[j];
            ci[j] = x;
        }
    }
}

void ukernel(int64_t kc, const float * a, int64_t lda, int mr, const float * bp, int nr, float * c, int64_t ldc,
             int load_c, const float * bias_row, const float * bias_col) {
    if (nr > 8)
        ukern<3>(kc, a, lda, mr, bp, nr, c, ldc, load_c, bias_row, bias_col);
    else if (nr > 4)
        ukern<2>(kc, a, lda, mr, bp, nr, c, ldc, load_c, bias_row, bias_col);
    else
        ukern<1>(kc, a, lda, mr, bp, nr, c, ldc, load_c, bias_row, bias_col);
}

void pack_trans(const float * src, int64_t lds, int nr, int64_t kc, float * dst, int NR) {
    for (int64_t k = 0; k < kc; k++) {
        float * d = dst + k * NR;
        for (int j = 0; j < nr; j++) d[j] = src[j * lds + k];
        for (int j = nr; j < NR; j++) d[j] = 0.0f;
    }
}

void pack_trans_f16(const uint16_t * src, int64_t lds, int nr, int64_t kc, float * dst, int NR) {
    for (int64_t k = 0; k < kc; k++) {
        float * d = dst + k * NR;
        for (int j = 0; j < nr; j++) {
            float16_t h;
            __builtin_memcpy(&h, src + j * lds + k, 2);
            d[j] = (float)h;
        }
        for (int j = nr; j < NR; j++) d[j] = 0.0f;
    }
}

void pack_rows(const float * src, int64_t lds, int64_t rows, int nd, float * dst, int NR) {
    for (int64_t j = 0; j < rows; j++) {
        for (int d = 0; d < nd; d++) dst[j * NR + d] = src[j * lds + d];
        for (int d = nd; d < NR; d++) dst[j * NR + d] = 0.0f;
    }
}

void f16_to_f32(const uint16_t * src, float * dst, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(src + i))));
    for (; i < n; i++) {
        float16_t h;
        __builtin_memcpy(&h, src + i, 2);
        dst[i] = (float)h;
    }
}

void bf16_to_f32(const uint16_t * src, float * dst, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(dst + i, vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(src + i), 16)));
    for (; i < n; i++) {
        const uint32_t b = (uint32_t)src[i] << 16;
        __builtin_memcpy(dst + i, &b, 4);
    }
}

// e^x for x <= 88 (relative error about 2e-7); 0 below -87.3.
inline float32x4_t exp4(float32x4_t x) {
    x = vmaxq_f32(x, vdupq_n_f32(-87.33f));
    x = vminq_f32(x, vdupq_n_f32(88.37f));
    const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693145751953125f));
    r = vfmsq_f32(r, n, vdupq_n_f32(1.428606765330187045e-06f));
    float32x4_t p = vdupq_n_f32(1.0f / 720);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(e));
}

inline float exp1(float x) { return vgetq_lane_f32(exp4(vdupq_n_f32(x)), 0); }

void softmax_step(float * S, int64_t lds, int rows, int cols, const int * valid, float scale, float * m, float * l,
                  float * alpha) {
    const float ninf = -__builtin_inff();
    for (int r = 0; r < rows; r++) {
        float * s = S + r * lds;
        const int nv = valid[r];
        float mx = ninf;
        if (nv > 0) {
            float hi = s[0], lo = s[0];
            for (int j = 1; j < nv; j++) {
                hi = s[j] > hi ? s[j] : hi;
                lo = s[j] < lo ? s[j] : lo;
            }
            mx = scale >= 0.0f ? scale * hi : scale * lo;
        }
        const float m_old = m[r];
        const float m_new = mx > m_old ? mx : m_old;
        if (m_new == ninf) {
            for (int j = 0; j < cols; j++) s[j] = 0.0f;
            alpha[r] = 1.0f;
            continue;
        }
        const float32x4_t vm = vdupq_n_f32(m_new), vs = vdupq_n_f32(scale);
        float32x4_t vsum = vdupq_n_f32(0.0f);
        int j = 0;
        for (; j + 4 <= nv; j += 4) {
            const float32x4_t p = exp4(vsubq_f32(vmulq_f32(vld1q_f32(s + j), vs), vm));
            vst1q_f32(s + j, p);
            vsum = vaddq_f32(vsum, p);
        }
        float sum = vaddvq_f32(vsum);
        for (; j < nv; j++) {
            s[j] = exp1(scale * s[j] - m_new);
            sum += s[j];
        }
        for (; j < cols; j++) s[j] = 0.0f;
        const float a = m_old == ninf ? 0.0f : exp1(m_old - m_new);
        alpha[r] = a;
        l[r] = l[r] * a + sum;
        m[r] = m_new;
    }
}

double fma_loop(int64_t iters) {
    float32x4_t acc[16];
    for (int i = 0; i < 16; i++) acc[i] = vdupq_n_f32((float)i);
    const float32x4_t mul = vdupq_n_f32(0.9999999f), add = vdupq_n_f32(1e-7f);
    for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) acc[i] = vfmaq_f32(add, acc[i], mul);
    }
    float32x4_t s = acc[0];
    for (int i = 1; i < 16; i++) s = vaddq_f32(s, acc[i]);
    volatile float sink = vaddvq_f32(s);
    (void)sink;
    return 2.0 * 16 * 4 * (double)iters;
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

}  // namespace sdgo::cpu::neon_isa
