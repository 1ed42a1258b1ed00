// Normalisations and softmax. Sums are accumulated in double from float
// partial sums of 16 lanes (a fixed order, so any thread count gives the
// same bits); variances use a second pass over (x - mean)^2.
#include <cmath>
#include <vector>

#include "backends/cpu/ops_internal.h"
#include "backends/cpu/vec.h"

namespace sdgo::ops {

namespace {

constexpr int kLanes = 16;

// Sum of n floats with stride s (bytes), 16 float lanes then double.
inline double sum_f32(const char * p, int64_t n, size_t s) {
    if (s == sizeof(float)) {
        const float * x = reinterpret_cast<const float *>(p);
        float acc[kLanes] = {0};
        int64_t i = 0;
        for (; i + kLanes <= n; i += kLanes)
            for (int l = 0; l < kLanes; l++) acc[l] += x[i + l];
        double total = 0;
        for (int l = 0; l < kLanes; l++) total += acc[l];
        for (; i < n; i++) total += x[i];
        return total;
    }
    double total = 0;
    for (int64_t i = 0; i < n; i++) total += *reinterpret_cast<const float *>(p + i * s);
    return total;
}

inline double sumsq_dev_f32(const char * p, int64_t n, size_t s, float mean) {
    if (s == sizeof(float)) {
        const float * x = reinterpret_cast<const float *>(p);
        float acc[kLanes] = {0};
        int64_t i = 0;
        for (; i + kLanes <= n; i += kLanes)
            for (int l = 0; l < kLanes; l++) {
                const float d = x[i + l] - mean;
                acc[l] += d * d;
            }
        double total = 0;
        for (int l = 0; l < kLanes; l++) total += acc[l];
        for (; i < n; i++) {
            const double d = x[i] - mean;
            total += d * d;
        }
        return total;
    }
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = *reinterpret_cast<const float *>(p + i * s) - mean;
        total += d * d;
    }
    return total;
}

}  // namespace

Status op_softmax(OpContext & ctx, Tensor * dst) {
    const Tensor * src = dst->src[0];
    const float scale = dst->fparams[0];
    const bool causal = dst->iparams[0] != 0;
    const int64_t ne0 = src->ne[0], ne1 = src->ne[1];
    const size_t s0 = src->nb[0];
    const VecKernels * vk = vec_kernels(static_cast<int>(ctx.path));
    parallel_units(ctx, dst->nrows(), ne0 * 4, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r++) {
            const char * x = row_ptr(src, r);
            float * y = reinterpret_cast<float *>(row_ptr(dst, r));
            int64_t n = ne0;
            if (causal) {
                const int64_t i1 = r % ne1;
                n = i1 + (ne0 - ne1) + 1;
                if (n < 0) n = 0;
                if (n > ne0) n = ne0;
            }
            if (vk && s0 == sizeof(float)) {
                const float mx = vk->scale_max(reinterpret_cast<const float *>(x), y, n, scale);
                const float total = vk->exp_sub_sum(y, n, mx);
                const float inv = total > 0 ? 1.0f / total : 0.0f;
                for (int64_t i = 0; i < n; i++) y[i] *= inv;
                for (int64_t i = n; i < ne0; i++) y[i] = 0.0f;
                continue;
            }
            float mx = -INFINITY;
            for (int64_t i = 0; i < n; i++) {
                const float v = scale * *reinterpret_cast<const float *>(x + i * s0);
                y[i] = v;
                if (v > mx) mx = v;
            }
            double total = 0;
            for (int64_t i = 0; i < n; i++) {
                const float e = std::exp(y[i] - mx);
                y[i] = e;
                total += e;
            }
            const float inv = total > 0 ? static_cast<float>(1.0 / total) : 0.0f;
            for (int64_t i = 0; i < n; i++) y[i] *= inv;
            for (int64_t i = n; i < ne0; i++) y[i] = 0.0f;
        }
    });
    return Status();
}

namespace {

// Sums of (x - k) and (x - k)^2 over n floats with stride s, in one pass.
inline void shifted_sums(const char * p, int64_t n, size_t s, float k, double * s1, double * s2) {
    if (s == sizeof(float)) {
        const float * x = reinterpret_cast<const float *>(p);
        float a1[kLanes] = {0}, a2[kLanes] = {0};
        int64_t i = 0;
        for (; i + kLanes <= n; i += kLanes)
            for (int l = 0; l < kLanes; l++) {
                const float d = x[i + l] - k;
                a1[l] += d;
                a2[l] += d * d;
            }
        double t1 = 0, t2 = 0;
        for (int l = 0; l < kLanes; l++) t1 += a1[l], t2 += a2[l];
        for (; i < n; i++) {
            const double d = x[i] - k;
            t1 += d, t2 += d * d;
        }
        *s1 += t1, *s2 += t2;
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        const double d = *reinterpret_cast<const float *>(p + i * s) - k;
        *s1 += d, *s2 += d * d;
    }
}

inline float silu1(float v) { return v / (1.0f + std::exp(-v)); }

}  // namespace

// Group statistics: a group that fits in cache (<= kTwoPassBytes) gets an
// exact two-pass mean/variance; a larger one a single pass of sums shifted
// by the group's first value (one fewer trip through memory).
constexpr int64_t kTwoPassBytes = 256 * 1024;

Status op_group_norm(OpContext & ctx, Tensor * dst) {
    const Tensor * src = dst->src[0];
    const Tensor * w = dst->src[1];
    const Tensor * b = dst->src[2];
    const int groups = dst->iparams[0];
    const bool fuse_silu = dst->iparams[1] != 0;
    const float eps = dst->fparams[0];
    const int64_t W = src->ne[0], H = src->ne[1], C = src->ne[2], N = src->ne[3];
    const int64_t cpg = C / groups;
    const float * wf = w ? static_cast<const float *>(w->data) : nullptr;
    const float * bf = b ? static_cast<const float *>(b->data) : nullptr;
    const double count = static_cast<double>(W) * static_cast<double>(H) * static_cast<double>(cpg);
    const bool two_pass = W * H * cpg * static_cast<int64_t>(sizeof(float)) <= kTwoPassBytes;
    const size_t s0 = src->nb[0];
    // A channel plane is walked as rows of `rl` elements: one row of W*H
    // when the plane is dense, else H rows of W.
    const bool dense = s0 == sizeof(float) && src->nb[1] == W * sizeof(float);
    const int64_t rl = dense ? W * H : W, nrow = dense ? 1 : H;
    const VecKernels * vk = s0 == sizeof(float) ? vec_kernels(static_cast<int>(ctx.path)) : nullptr;
    parallel_units(ctx, N * groups, W * H * cpg * 3, [&](int64_t u0, int64_t u1) {
        for (int64_t u = u0; u < u1; u++) {
            const int64_t n = u / groups, g = u % groups;
            const int64_t c0 = g * cpg;
            float mean;
            double var;
            if (two_pass) {
                double total = 0;
                for (int64_t c = c0; c < c0 + cpg; c++)
                    for (int64_t h = 0; h < nrow; h++) {
                        const char * x = at(src, 0, h, c, n);
                        total += vk ? vk->sum(reinterpret_cast<const float *>(x), rl) : sum_f32(x, rl, s0);
                    }
                mean = static_cast<float>(total / count);
                double sq = 0;
                for (int64_t c = c0; c < c0 + cpg; c++)
                    for (int64_t h = 0; h < nrow; h++) {
                        const char * x = at(src, 0, h, c, n);
                        sq += vk ? vk->sumsq_dev(reinterpret_cast<const float *>(x), rl, mean)
                                 : sumsq_dev_f32(x, rl, s0, mean);
                    }
                var = sq / count;
            } else {
                const float k = *reinterpret_cast<const float *>(at(src, 0, 0, c0, n));
                double s1 = 0, s2 = 0;
                for (int64_t c = c0; c < c0 + cpg; c++)
                    for (int64_t h = 0; h < nrow; h++) {
                        const char * x = at(src, 0, h, c, n);
                        if (vk)
                            vk->sums_shifted(reinterpret_cast<const float *>(x), rl, k, &s1, &s2);
                        else
                            shifted_sums(x, rl, s0, k, &s1, &s2);
                    }
                const double m1 = s1 / count;
                mean = static_cast<float>(k + m1);
                var = s2 / count - m1 * m1;
                if (var < 0) var = 0;
            }
            const double rstd = 1.0 / std::sqrt(var + static_cast<double>(eps));
            for (int64_t c = c0; c < c0 + cpg; c++) {
                const float sc = static_cast<float>(rstd * (wf ? wf[c] : 1.0f));
                const float sh = (bf ? bf[c] : 0.0f) - mean * sc;
                for (int64_t h = 0; h < nrow; h++) {
                    const char * x = at(src, 0, h, c, n);
                    float * y = reinterpret_cast<float *>(at(dst, 0, h, c, n));
                    if (vk) {
                        // In blocks that stay in L1 between the affine and the SiLU.
                        for (int64_t i = 0; i < rl; i += 4096) {
                            const int64_t m = rl - i < 4096 ? rl - i : 4096;
                            vk->affine(reinterpret_cast<const float *>(x) + i, y + i, m, sc, sh);
                            if (fuse_silu) vk->silu(y + i, y + i, m);
                        }
                        continue;
                    }
                    for (int64_t i = 0; i < rl; i++) y[i] = *reinterpret_cast<const float *>(x + i * s0) * sc + sh;
                    if (fuse_silu)
                        for (int64_t i = 0; i < rl; i++) y[i] = silu1(y[i]);
                }
            }
        }
    });
    return Status();
}

Status op_layer_norm(OpContext & ctx, Tensor * dst) {
    const Tensor * src = dst->src[0];
    const Tensor * w = dst->src[1];
    const Tensor * b = dst->src[2];
    const float eps = dst->fparams[0];
    const int64_t ne0 = src->ne[0];
    const size_t s0 = src->nb[0];
    const float * wf = w ? static_cast<const float *>(w->data) : nullptr;
    const float * bf = b ? static_cast<const float *>(b->data) : nullptr;
    const VecKernels * vk = s0 == sizeof(float) ? vec_kernels(static_cast<int>(ctx.path)) : nullptr;
    parallel_units(ctx, dst->nrows(), ne0 * 3, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r++) {
            const char * x = row_ptr(src, r);
            float * y = reinterpret_cast<float *>(row_ptr(dst, r));
            const float * xf = reinterpret_cast<const float *>(x);
            const float mean =
                static_cast<float>((vk ? vk->sum(xf, ne0) : sum_f32(x, ne0, s0)) / static_cast<double>(ne0));
            const double var = (vk ? vk->sumsq_dev(xf, ne0, mean) : sumsq_dev_f32(x, ne0, s0, mean)) /
                               static_cast<double>(ne0);
            const float rstd = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
            for (int64_t i = 0; i < ne0; i++) {
                float v = (*reinterpret_cast<const float *>(x + i * s0) - mean) * rstd;
                if (wf) v *= wf[i];
                if (bf) v += bf[i];
                y[i] = v;
            }
        }
    });
    return Status();
}

}  // namespace sdgo::ops
