// Element-wise ops: unary activations, broadcasting binary ops, copies.
#include <cmath>

#include "backends/cpu/ops_internal.h"
#include "backends/cpu/vec.h"

namespace sdgo::ops {

namespace {

inline float silu_f(float x) { return x / (1.0f + std::exp(-x)); }
inline float gelu_f(float x) { return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752440f)); }
inline float gelu_tanh_f(float x) {
    const float k = 0.79788456080286535588f;  // sqrt(2/pi)
    return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
}
inline float quick_gelu_f(float x) { return x / (1.0f + std::exp(-1.702f * x)); }

template <typename F>
void unary_rows(OpContext & ctx, Tensor * dst, const Tensor * src, F f) {
    const int64_t ne0 = dst->ne[0];
    const size_t s0 = src->nb[0];
    parallel_units(ctx, dst->nrows(), ne0, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r++) {
            float * y = reinterpret_cast<float *>(row_ptr(dst, r));
            const char * x = row_ptr(src, r);
            if (s0 == sizeof(float)) {
                const float * xf = reinterpret_cast<const float *>(x);
                for (int64_t i = 0; i < ne0; i++) y[i] = f(xf[i]);
            } else {
                for (int64_t i = 0; i < ne0; i++) y[i] = f(*reinterpret_cast<const float *>(x + i * s0));
            }
        }
    });
}

template <typename F>
void binary_rows(OpContext & ctx, Tensor * dst, const Tensor * a, const Tensor * b, F f) {
    const int64_t ne0 = dst->ne[0];
    parallel_units(ctx, dst->nrows(), ne0, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r++) {
            const int64_t i1 = r % dst->ne[1];
            const int64_t i2 = (r / dst->ne[1]) % dst->ne[2];
            const int64_t i3 = r / (dst->ne[1] * dst->ne[2]);
            float * y = reinterpret_cast<float *>(at(dst, 0, i1, i2, i3));
            const char * pa = at(a, 0, i1 % a->ne[1], i2 % a->ne[2], i3 % a->ne[3]);
            const char * pb = at(b, 0, i1 % b->ne[1], i2 % b->ne[2], i3 % b->ne[3]);
            const size_t sa = a->nb[0], sb = b->nb[0];
            const int64_t na = a->ne[0], nbn = b->ne[0];
            if (na == ne0 && nbn == ne0 && sa == 4 && sb == 4) {
                const float * xa = reinterpret_cast<const float *>(pa);
                const float * xb = reinterpret_cast<const float *>(pb);
                for (int64_t i = 0; i < ne0; i++) y[i] = f(xa[i], xb[i]);
            } else if (na == ne0 && nbn == 1 && sa == 4) {
                const float * xa = reinterpret_cast<const float *>(pa);
                const float vb = *reinterpret_cast<const float *>(pb);
                for (int64_t i = 0; i < ne0; i++) y[i] = f(xa[i], vb);
            } else if (na == 1 && nbn == ne0 && sb == 4) {
                const float va = *reinterpret_cast<const float *>(pa);
                const float * xb = reinterpret_cast<const float *>(pb);
                for (int64_t i = 0; i < ne0; i++) y[i] = f(va, xb[i]);
            } else {
                for (int64_t i = 0; i < ne0; i++) {
                    const float va = *reinterpret_cast<const float *>(pa + (i % na) * sa);
                    const float vb = *reinterpret_cast<const float *>(pb + (i % nbn) * sb);
                    y[i] = f(va, vb);
                }
            }
        }
    });
}

}  // namespace

// Vectorised path: contiguous source rows and an ISA kernel for the op.
static bool unary_vec(OpContext & ctx, Tensor * dst, const Tensor * src) {
    if (src->nb[0] != sizeof(float)) return false;
    const VecKernels * vk = vec_kernels(static_cast<int>(ctx.path));
    if (!vk) return false;
    void (*fn)(const float *, float *, int64_t) = nullptr;
    switch (dst->op) {
        case Op::silu: fn = vk->silu; break;
        case Op::gelu: fn = vk->gelu; break;
        case Op::gelu_tanh: fn = vk->gelu_tanh; break;
        case Op::quick_gelu: fn = vk->quick_gelu; break;
        default: return false;
    }
    const int64_t ne0 = dst->ne[0];
    parallel_units(ctx, dst->nrows(), ne0, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r++)
            fn(reinterpret_cast<const float *>(row_ptr(src, r)), reinterpret_cast<float *>(row_ptr(dst, r)), ne0);
    });
    return true;
}

Status op_unary(OpContext & ctx, Tensor * dst) {
    const Tensor * src = dst->src[0];
    if (unary_vec(ctx, dst, src)) return Status();
    switch (dst->op) {
        case Op::scale: {
            const float s = dst->fparams[0], b = dst->fparams[1];
            unary_rows(ctx, dst, src, [s, b](float x) { return x * s + b; });
            return Status();
        }
        case Op::silu: unary_rows(ctx, dst, src, silu_f); return Status();
        case Op::gelu: unary_rows(ctx, dst, src, gelu_f); return Status();
        case Op::gelu_tanh: unary_rows(ctx, dst, src, gelu_tanh_f); return Status();
        case Op::quick_gelu: unary_rows(ctx, dst, src, quick_gelu_f); return Status();
        case Op::relu: unary_rows(ctx, dst, src, [](float x) { return x > 0.0f ? x : 0.0f; }); return Status();
        case Op::tanh: unary_rows(ctx, dst, src, [](float x) { return std::tanh(x); }); return Status();
        case Op::sigmoid: unary_rows(ctx, dst, src, [](float x) { return 1.0f / (1.0f + std::exp(-x)); }); return Status();
        case Op::exp: unary_rows(ctx, dst, src, [](float x) { return std::exp(x); }); return Status();
        case Op::sqrt: unary_rows(ctx, dst, src, [](float x) { return std::sqrt(x); }); return Status();
        case Op::sqr: unary_rows(ctx, dst, src, [](float x) { return x * x; }); return Status();
        case Op::clamp: {
            const float lo = dst->fparams[0], hi = dst->fparams[1];
            unary_rows(ctx, dst, src, [lo, hi](float x) { return x < lo ? lo : (x > hi ? hi : x); });
            return Status();
        }
        default: break;
    }
    return error(SDGO_ERR_INTERNAL, "op_unary: unexpected op %s", op_name(dst->op));
}

Status op_binary(OpContext & ctx, Tensor * dst) {
    const Tensor * a = dst->src[0];
    const Tensor * b = dst->src[1];
    switch (dst->op) {
        case Op::add: binary_rows(ctx, dst, a, b, [](float x, float y) { return x + y; }); return Status();
        case Op::sub: binary_rows(ctx, dst, a, b, [](float x, float y) { return x - y; }); return Status();
        case Op::mul: binary_rows(ctx, dst, a, b, [](float x, float y) { return x * y; }); return Status();
        case Op::div: binary_rows(ctx, dst, a, b, [](float x, float y) { return x / y; }); return Status();
        default: break;
    }
    return error(SDGO_ERR_INTERNAL, "op_binary: unexpected op %s", op_name(dst->op));
}

namespace {

inline float load_float(const char * p, DType t) {
    switch (t) {
        case DType::f16: return fp16_to_fp32(*reinterpret_cast<const uint16_t *>(p));
        case DType::bf16: return bf16_to_fp32(*reinterpret_cast<const uint16_t *>(p));
        default: return *reinterpret_cast<const float *>(p);
    }
}

inline void store_float(char * p, DType t, float v) {
    switch (t) {
        case DType::f16: *reinterpret_cast<uint16_t *>(p) = fp32_to_fp16(v); break;
        case DType::bf16: *reinterpret_cast<uint16_t *>(p) = fp32_to_bf16(v); break;
        default: *reinterpret_cast<float *>(p) = v; break;
    }
}

bool is_float(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }

}  // namespace

// f32 copy of a source whose contiguous dimension is dst dimension d (> 0),
// e.g. cont(permute(...)) of an image to tokens: tiles of 32 x 32 so that
// reads and writes both stay within a few cache lines.
void copy_transposed_f32(OpContext & ctx, Tensor * dst, const Tensor * src, int d) {
    constexpr int64_t T = 32;
    int o[2], k = 0;
    for (int i = 1; i < 4; i++)
        if (i != d) o[k++] = i;
    const int64_t ne0 = dst->ne[0], ned = dst->ne[d];
    const int64_t nblk = (ned + T - 1) / T;
    const int64_t units = dst->ne[o[0]] * dst->ne[o[1]] * nblk;
    parallel_units(ctx, units, ne0 * T, [&](int64_t u0, int64_t u1) {
        for (int64_t u = u0; u < u1; u++) {
            const int64_t jb = (u % nblk) * T;
            const int64_t rest = u / nblk;
            const int64_t a = rest % dst->ne[o[0]], b = rest / dst->ne[o[0]];
            const char * sb = static_cast<const char *>(src->data) + a * src->nb[o[0]] + b * src->nb[o[1]];
            char * db = static_cast<char *>(dst->data) + a * dst->nb[o[0]] + b * dst->nb[o[1]];
            const int64_t je = jb + T < ned ? jb + T : ned;
            float tile[T][T + 1];
            for (int64_t ib = 0; ib < ne0; ib += T) {
                const int64_t ie = ib + T < ne0 ? ib + T : ne0;
                // Read source rows (contiguous along d), then write dst rows.
                for (int64_t i = ib; i < ie; i++) {
                    const float * x = reinterpret_cast<const float *>(sb + i * src->nb[0]);
                    for (int64_t j = jb; j < je; j++) tile[i - ib][j - jb] = x[j];
                }
                for (int64_t j = jb; j < je; j++) {
                    float * y = reinterpret_cast<float *>(db + j * dst->nb[d]);
                    for (int64_t i = ib; i < ie; i++) y[i] = tile[i - ib][j - jb];
                }
            }
        }
    });
}

Status op_copy(OpContext & ctx, Tensor * dst) {
    const Tensor * src = dst->src[0];
    const int64_t ne0 = src->ne[0];
    if (src->type == DType::f32 && dst->type == DType::f32 && src->nb[0] != sizeof(float)) {
        for (int d = 1; d < 4; d++)
            if (src->nb[d] == sizeof(float) && src->ne[d] > 1) {
                copy_transposed_f32(ctx, dst, src, d);
                return Status();
            }
    }
    if (is_float(src->type) && is_float(dst->type)) {
        const size_t ss = src->nb[0], ds = dst->nb[0];
        const bool same = src->type == dst->type;
        parallel_units(ctx, dst->nrows(), ne0, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; r++) {
                const char * x = row_ptr(src, r);
                char * y = row_ptr(dst, r);
                if (same && ss == ds) {
                    std::memcpy(y, x, static_cast<size_t>(ne0) * ss);
                } else if (same) {
                    for (int64_t i = 0; i < ne0; i++) std::memcpy(y + i * ds, x + i * ss, ds);
                } else {
                    for (int64_t i = 0; i < ne0; i++) store_float(y + i * ds, dst->type, load_float(x + i * ss, src->type));
                }
            }
        });
        return Status();
    }
    // Block types: rows are contiguous (checked at build).
    const TypeTraits * tr = type_traits(src->type);
    if (!tr) return error(SDGO_ERR_INTERNAL, "copy: unknown type");
    if (dst->type == src->type) {
        const size_t rs = row_size(src->type, ne0);
        parallel_units(ctx, dst->nrows(), ne0, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; r++) std::memcpy(row_ptr(dst, r), row_ptr(src, r), rs);
        });
        return Status();
    }
    if (dst->type == DType::f32 && tr->to_f32) {
        const ToF32Fn to_f32 = cpu::to_f32_for(src->type, ctx.path);
        parallel_units(ctx, dst->nrows(), ne0, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; r++) to_f32(row_ptr(src, r), reinterpret_cast<float *>(row_ptr(dst, r)), ne0);
        });
        return Status();
    }
    return error(SDGO_ERR_UNSUPPORTED, "copy: %s to %s", dtype_name(src->type), dtype_name(dst->type));
}

}  // namespace sdgo::ops
