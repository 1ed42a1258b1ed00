// Shape ops (concat, upscale, pad), embeddings (timestep, get_rows) and
// reductions.
#include <atomic>
#include <cmath>
#include <vector>

#include "backends/cpu/ops_internal.h"

namespace sdgo::ops {

Status op_concat(OpContext & ctx, Tensor * dst) {
    const Tensor * a = dst->src[0];
    const Tensor * b = dst->src[1];
    const int dim = dst->iparams[0];
    const int64_t ne0 = dst->ne[0];
    parallel_units(ctx, dst->nrows(), ne0, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r++) {
            int64_t i[4] = {0, r % dst->ne[1], (r / dst->ne[1]) % dst->ne[2], r / (dst->ne[1] * dst->ne[2])};
            float * y = reinterpret_cast<float *>(at(dst, 0, i[1], i[2], i[3]));
            if (dim == 0) {
                const char * pa = at(a, 0, i[1], i[2], i[3]);
                const char * pb = at(b, 0, i[1], i[2], i[3]);
                for (int64_t j = 0; j < a->ne[0]; j++) y[j] = *reinterpret_cast<const float *>(pa + j * a->nb[0]);
                for (int64_t j = 0; j < b->ne[0]; j++)
                    y[a->ne[0] + j] = *reinterpret_cast<const float *>(pb + j * b->nb[0]);
                continue;
            }
            const Tensor * s = a;
            if (i[dim] >= a->ne[dim]) {
                s = b;
                i[dim] -= a->ne[dim];
            }
            const char * p = at(s, 0, i[1], i[2], i[3]);
            if (s->nb[0] == sizeof(float)) {
                std::memcpy(y, p, static_cast<size_t>(ne0) * sizeof(float));
                continue;
            }
            for (int64_t j = 0; j < ne0; j++) y[j] = *reinterpret_cast<const float *>(p + j * s->nb[0]);
        }
    });
    return Status();
}

namespace {

// PyTorch's nearest source index for output index d (scale = in / out as float).
inline int64_t nearest_src(int64_t d, int64_t in, int64_t out) {
    if (in == out) return d;
    if (out == 2 * in) return d >> 1;
    const float scale = static_cast<float>(in) / static_cast<float>(out);
    const int64_t s = static_cast<int64_t>(std::floor(static_cast<float>(d) * scale));
    return s < in - 1 ? s : in - 1;
}

}  // namespace

Status op_upscale(OpContext & ctx, Tensor * dst) {
    const Tensor * src = dst->src[0];
    if (dst->op == Op::resize) {
        const int64_t ne0 = dst->ne[0];
        std::vector<int64_t> ix(static_cast<size_t>(ne0));
        for (int64_t i = 0; i < ne0; i++) ix[i] = nearest_src(i, src->ne[0], ne0) * static_cast<int64_t>(src->nb[0]);
        parallel_units(ctx, dst->nrows(), ne0, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; r++) {
                const int64_t i1 = r % dst->ne[1];
                const int64_t i2 = (r / dst->ne[1]) % dst->ne[2];
                const int64_t i3 = r / (dst->ne[1] * dst->ne[2]);
                float * y = reinterpret_cast<float *>(at(dst, 0, i1, i2, i3));
                const char * x = at(src, 0, nearest_src(i1, src->ne[1], dst->ne[1]), i2, i3);
                for (int64_t i = 0; i < ne0; i++) y[i] = *reinterpret_cast<const float *>(x + ix[i]);
            }
        });
        return Status();
    }
    const int64_t f = dst->iparams[0];
    const int64_t ne0 = dst->ne[0];
    parallel_units(ctx, dst->nrows(), ne0, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r++) {
            const int64_t i1 = r % dst->ne[1];
            const int64_t i2 = (r / dst->ne[1]) % dst->ne[2];
            const int64_t i3 = r / (dst->ne[1] * dst->ne[2]);
            float * y = reinterpret_cast<float *>(at(dst, 0, i1, i2, i3));
            const char * x = at(src, 0, i1 / f, i2, i3);
            if (src->nb[0] == sizeof(float)) {
                const float * xf = reinterpret_cast<const float *>(x);
                if (f == 2) {
                    for (int64_t i = 0; i < src->ne[0]; i++) y[2 * i] = y[2 * i + 1] = xf[i];
                } else {
                    for (int64_t i = 0; i < src->ne[0]; i++)
                        for (int64_t k = 0; k < f; k++) y[i * f + k] = xf[i];
                }
                continue;
            }
            for (int64_t i = 0; i < ne0; i++) y[i] = *reinterpret_cast<const float *>(x + (i / f) * src->nb[0]);
        }
    });
    return Status();
}

Status op_pad(OpContext & ctx, Tensor * dst) {
    const Tensor * src = dst->src[0];
    const int64_t ne0 = dst->ne[0];
    const int32_t * p = dst->iparams;  // lp0, rp0, lp1, rp1, ...
    parallel_units(ctx, dst->nrows(), ne0, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r++) {
            const int64_t i1 = r % dst->ne[1];
            const int64_t i2 = (r / dst->ne[1]) % dst->ne[2];
            const int64_t i3 = r / (dst->ne[1] * dst->ne[2]);
            float * y = reinterpret_cast<float *>(at(dst, 0, i1, i2, i3));
            const int64_t s1 = i1 - p[2], s2 = i2 - p[4], s3 = i3 - p[6];
            if (s1 < 0 || s1 >= src->ne[1] || s2 < 0 || s2 >= src->ne[2] || s3 < 0 || s3 >= src->ne[3]) {
                for (int64_t i = 0; i < ne0; i++) y[i] = 0.0f;
                continue;
            }
            const char * x = at(src, 0, s1, s2, s3);
            const int64_t lp = p[0], n = src->ne[0];
            for (int64_t i = 0; i < lp; i++) y[i] = 0.0f;
            for (int64_t i = 0; i < n; i++) y[lp + i] = *reinterpret_cast<const float *>(x + i * src->nb[0]);
            for (int64_t i = lp + n; i < ne0; i++) y[i] = 0.0f;
        }
    });
    return Status();
}

Status op_timestep_embedding(OpContext & ctx, Tensor * dst) {
    const Tensor * ts = dst->src[0];
    const int dim = dst->iparams[0];
    const bool flip = dst->iparams[1] != 0;
    const float max_period = dst->fparams[0];
    const float shift = dst->fparams[1];
    const int half = dim / 2;
    // As PyTorch: -ln(max_period) is a double rounded to float32, then the
    // exponent, exp and t * freq are all float32.
    const float neg_log = static_cast<float>(-std::log(static_cast<double>(max_period)));
    const float denom = static_cast<float>(half) - shift;
    for (int64_t n = 0; n < ts->ne[0]; n++) {
        const float t = *reinterpret_cast<const float *>(at(ts, n, 0, 0, 0));
        float * y = reinterpret_cast<float *>(at(dst, 0, n, 0, 0));
        for (int i = 0; i < half; i++) {
            const float freq = std::exp((neg_log * static_cast<float>(i)) / denom);
            const float arg = t * freq;
            const float c = std::cos(arg), s = std::sin(arg);
            y[i] = flip ? c : s;
            y[half + i] = flip ? s : c;
        }
        if (dim % 2) y[dim - 1] = 0.0f;
    }
    (void)ctx;
    return Status();
}

Status op_get_rows(OpContext & ctx, Tensor * dst) {
    const Tensor * table = dst->src[0];
    const Tensor * idx = dst->src[1];
    const int32_t * ids = static_cast<const int32_t *>(idx->data);
    const int64_t n = idx->nelements(), R = table->ne[1], K = table->ne[0];
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= R)
            return error(SDGO_ERR_INVALID_ARGUMENT, "get_rows: index %d at position %lld outside [0, %lld)", ids[i],
                         (long long)i, (long long)R);
    const TypeTraits * tr = type_traits(table->type);
    if (table->type != DType::f32 && (!tr || !tr->to_f32))
        return error(SDGO_ERR_UNSUPPORTED, "get_rows: type %s has no dequantizer", dtype_name(table->type));
    const ToF32Fn to_f32 = cpu::to_f32_for(table->type, ctx.path);
    parallel_units(ctx, n, K, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; i++) {
            const char * src = static_cast<const char *>(table->data) + static_cast<size_t>(ids[i]) * table->nb[1];
            float * y = static_cast<float *>(dst->data) + i * K;
            if (table->type == DType::f32)
                std::memcpy(y, src, static_cast<size_t>(K) * sizeof(float));
            else
                to_f32(src, y, K);
        }
    });
    return Status();
}

Status op_reduce(OpContext & ctx, Tensor * dst) {
    const Tensor * src = dst->src[0];
    const int64_t ne0 = src->ne[0], rows = src->nrows();
    const size_t s0 = src->nb[0];
    auto row_sum = [&](int64_t r) {
        const char * x = row_ptr(src, r);
        double total = 0;
        for (int64_t i = 0; i < ne0; i++) total += *reinterpret_cast<const float *>(x + i * s0);
        return total;
    };
    float * y = static_cast<float *>(dst->data);
    if (dst->op == Op::sum_rows || dst->op == Op::mean_rows) {
        const bool mean = dst->op == Op::mean_rows;
        parallel_units(ctx, rows, ne0, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; r++) {
                const double s = row_sum(r);
                y[r] = static_cast<float>(mean ? s / static_cast<double>(ne0) : s);
            }
        });
        return Status();
    }
    // Whole tensor: per-row double sums, then added in row order.
    Status st;
    double * partial = static_cast<double *>(ctx.scratch->get(static_cast<size_t>(rows) * sizeof(double), &st));
    if (!partial) return st;
    parallel_units(ctx, rows, ne0, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r++) partial[r] = row_sum(r);
    });
    double total = 0;
    for (int64_t r = 0; r < rows; r++) total += partial[r];
    if (dst->op == Op::mean) total /= static_cast<double>(src->nelements());
    y[0] = static_cast<float>(total);
    return Status();
}

}  // namespace sdgo::ops
