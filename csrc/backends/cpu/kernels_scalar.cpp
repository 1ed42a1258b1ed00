// kernels_scalar.cpp — portable C++ variants of the micro-kernels (the
// reference path on CPUs without a vectorised variant).
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/gemm_micro.h"
#include "types/types.h"

namespace sdgo::cpu::scalar_isa {

namespace {

constexpr int kMR = 4;
constexpr int kNR = 16;

void ukernel(int64_t kc, const float * a, int64_t lda, int mr, const float * bp, int nr, float * c, int64_t ldc,
             int load_c, const float * bias_row, const float * bias_col) {
    float acc[kMR][kNR];
    for (int i = 0; i < kMR; i++)
        for (int j = 0; j < kNR; j++) acc[i][j] = 0.0f;
    const float * ar[kMR];
    for (int i = 0; i < kMR; i++) ar[i] = a + (i < mr ? i : mr - 1) * lda;
    for (int64_t k = 0; k < kc; k++) {
        const float * b = bp + k * kNR;
        for (int i = 0; i < kMR; i++) {
            const float av = ar[i][k];
            for (int j = 0; j < kNR; j++) acc[i][j] += av * b[j];
        }
    }
    for (int i = 0; i < mr; i++) {
        float * ci = c + i * ldc;
        for (int j = 0; j < nr; j++) {
            float x = acc[i][j];
            if (load_c) x += ci[j];
            if (bias_row) x += bias_row[i];
            if (bias_col) x += bias_col[j];
            ci[j] = x;
        }
    }
}

void pack_trans(const float * src, int64_t lds, int nr, int64_t kc, float * dst, int NR) {
    for (int64_t k = 0; k < kc; k++) {
        float * d = dst + k * NR;
        for (int j = 0; j < nr; j++) d[j] = src[j * lds + k];
        for (int j = nr; j < NR; j++) d[j] = 0.0f;
    }
}

void pack_rows(const float * src, int64_t lds, int64_t rows, int nd, float * dst, int NR) {
    for (int64_t j = 0; j < rows; j++) {
        std::memcpy(dst + j * NR, src + j * lds, (size_t)nd * sizeof(float));
        for (int d = nd; d < NR; d++) dst[j * NR + d] = 0.0f;
    }
}

void f16_to_f32(const uint16_t * src, float * dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = ::sdgo::fp16_to_fp32(src[i]);
}

void bf16_to_f32(const uint16_t * src, float * dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t b = (uint32_t)src[i] << 16;
        std::memcpy(&dst[i], &b, 4);
    }
}

void softmax_step(float * S, int64_t lds, int rows, int cols, const int * valid, float scale, float * m, float * l,
                  float * alpha) {
    const float ninf = -std::numeric_limits<float>::infinity();
    for (int r = 0; r < rows; r++) {
        float * s = S + r * lds;
        const int nv = valid[r];
        float mx = ninf;
        for (int j = 0; j < nv; j++) {
            const float x = scale * s[j];
            mx = x > mx ? x : mx;
        }
        const float m_old = m[r];
        const float m_new = mx > m_old ? mx : m_old;
        if (m_new == ninf) {  // nothing seen yet in this row
            for (int j = 0; j < cols; j++) s[j] = 0.0f;
            alpha[r] = 1.0f;
            continue;
        }
        float sum = 0.0f;
        for (int j = 0; j < nv; j++) {
            s[j] = std::exp(scale * s[j] - m_new);
            sum += s[j];
        }
        for (int j = nv; j < cols; j++) s[j] = 0.0f;
        const float a = m_old == ninf ? 0.0f : std::exp(m_old - m_new);
        alpha[r] = a;
        l[r] = l[r] * a + sum;
        m[r] = m_new;
    }
}

double fma_loop(int64_t iters) {
    float acc[64];
    for (int j = 0; j < 64; j++) acc[j] = (float)j;
    for (int64_t i = 0; i < iters; i++)
        for (int j = 0; j < 64; j++) acc[j] = acc[j] * 0.9999999f + 1e-7f;
    volatile float sink = 0;
    for (int j = 0; j < 64; j++) sink = sink + acc[j];
    return 2.0 * 64 * (double)iters;
}

}  // namespace

void get_kernels(KernelSet * ks) {
    ks->mr = kMR;
    ks->nr = kNR;
    ks->ukernel = ukernel;
    ks->pack_trans = pack_trans;
    ks->pack_rows = pack_rows;
    ks->f16_to_f32 = f16_to_f32;
    ks->bf16_to_f32 = bf16_to_f32;
    ks->softmax_step = softmax_step;
    ks->fma_loop = fma_loop;
}

}  // namespace sdgo::cpu::scalar_isa
