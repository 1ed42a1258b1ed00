// mul_mat, conv2d and attention: shape plumbing around csrc/cpu/kernels.h.
#include "backends/cpu/kernels.h"
#include "backends/cpu/ops_internal.h"

namespace sdgo::ops {

namespace {

// Dense f32 copy of an f32 tensor with any strides into dst (the cont op).
void pack_f32(OpContext & ctx, const Tensor * src, float * dst) {
    Tensor tmp;
    tmp.type = DType::f32;
    for (int i = 0; i < 4; i++) tmp.ne[i] = src->ne[i];
    set_contiguous_strides(&tmp);
    tmp.op = Op::cont;
    tmp.src[0] = const_cast<Tensor *>(src);
    tmp.data = dst;
    (void)op_copy(ctx, &tmp);  // f32 -> f32 cannot fail
}

// An f32 view of `src` whose rows are contiguous: src itself, or a dense copy.
struct F32Rows {
    const char * data;
    size_t nb[4];
};

bool rows_ok(const Tensor * t) {
    if (t->nb[0] != sizeof(float)) return false;
    for (int i = 1; i < 4; i++)
        if (t->nb[i] % sizeof(float) != 0) return false;
    return true;
}

F32Rows as_rows(OpContext & ctx, const Tensor * t, float * scratch) {
    F32Rows r;
    if (rows_ok(t)) {
        r.data = static_cast<const char *>(t->data);
        for (int i = 0; i < 4; i++) r.nb[i] = t->nb[i];
        return r;
    }
    pack_f32(ctx, t, scratch);
    r.data = reinterpret_cast<const char *>(scratch);
    r.nb[0] = sizeof(float);
    r.nb[1] = r.nb[0] * static_cast<size_t>(t->ne[0]);
    r.nb[2] = r.nb[1] * static_cast<size_t>(t->ne[1]);
    r.nb[3] = r.nb[2] * static_cast<size_t>(t->ne[2]);
    return r;
}

}  // namespace

Status op_mul_mat(OpContext & ctx, Tensor * dst) {
    const Tensor * w = dst->src[0];
    const Tensor * x = dst->src[1];
    const Tensor * bias = dst->src[2];
    const int64_t K = x->ne[0], M = x->ne[1], N = w->ne[1];
    const bool pack_x = !rows_ok(x);
    const bool pack_w = w->type == DType::f32 && !rows_ok(w);
    size_t need = 0;
    if (pack_x) need += static_cast<size_t>(x->nelements()) * sizeof(float);
    const size_t w_off = (need + 63) & ~size_t(63);
    if (pack_w) need = w_off + static_cast<size_t>(w->nelements()) * sizeof(float);
    char * scratch = nullptr;
    if (need) {
        Status st;
        scratch = static_cast<char *>(ctx.scratch->get(need, &st));
        if (!scratch) return st;
    }
    const F32Rows xa = as_rows(ctx, x, reinterpret_cast<float *>(scratch));
    const char * wdata = static_cast<const char *>(w->data);
    size_t wnb[4] = {w->nb[0], w->nb[1], w->nb[2], w->nb[3]};
    if (pack_w) {
        const F32Rows wr = as_rows(ctx, w, reinterpret_cast<float *>(scratch + w_off));
        wdata = wr.data;
        for (int i = 0; i < 4; i++) wnb[i] = wr.nb[i];
    }
    const float * bf = bias ? static_cast<const float *>(bias->data) : nullptr;
    const int64_t r2 = x->ne[2] / w->ne[2], r3 = x->ne[3] / w->ne[3];
    for (int64_t i3 = 0; i3 < x->ne[3]; i3++) {
        for (int64_t i2 = 0; i2 < x->ne[2]; i2++) {
            const float * A = reinterpret_cast<const float *>(xa.data + i2 * xa.nb[2] + i3 * xa.nb[3]);
            const void * B = wdata + (i2 / r2) * wnb[2] + (i3 / r3) * wnb[3];
            float * C = reinterpret_cast<float *>(at(dst, 0, 0, i2, i3));
            SDGO_TRY(cpu::gemm(*ctx.pool, ctx.path, M, N, K, A, static_cast<int64_t>(xa.nb[1] / sizeof(float)), B,
                               w->type, wnb[1], C, N, bf, false));
        }
    }
    return Status();
}

Status op_conv2d(OpContext & ctx, Tensor * dst) {
    const Tensor * w = dst->src[0];
    const Tensor * x = dst->src[1];
    const Tensor * bias = dst->src[2];
    const float * src = static_cast<const float *>(x->data);
    const bool pack_x = !x->is_contiguous();
    const bool convert_w = w->type != DType::f32 && w->type != DType::f16;
    size_t need = pack_x ? static_cast<size_t>(x->nelements()) * sizeof(float) : 0;
    const size_t w_off = (need + 63) & ~size_t(63);
    if (convert_w) need = w_off + static_cast<size_t>(w->nelements()) * sizeof(float);
    char * scratch = nullptr;
    if (need) {
        Status st;
        scratch = static_cast<char *>(ctx.scratch->get(need, &st));
        if (!scratch) return st;
    }
    if (pack_x) {
        pack_f32(ctx, x, reinterpret_cast<float *>(scratch));
        src = reinterpret_cast<const float *>(scratch);
    }
    const void * wdata = w->data;
    DType wtype = w->type;
    if (convert_w) {
        // Other weight types (bf16, ...) are dequantized to f32 per compute.
        const TypeTraits * tr = type_traits(w->type);
        if (!tr || !tr->to_f32) return error(SDGO_ERR_UNSUPPORTED, "conv2d: weight type %s", dtype_name(w->type));
        const ToF32Fn to_f32 = cpu::to_f32_for(w->type, ctx.path);
        float * wf = reinterpret_cast<float *>(scratch + w_off);
        const int64_t row = w->ne[0];
        parallel_units(ctx, w->nrows(), row, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; r++) to_f32(row_ptr(w, r), wf + r * row, row);
        });
        wdata = wf;
        wtype = DType::f32;
    }
    return cpu::conv2d(*ctx.pool, ctx.path, x->ne[3], x->ne[2], x->ne[1], x->ne[0], src, w->ne[3], w->ne[1], w->ne[0],
                       wdata, wtype, bias ? static_cast<const float *>(bias->data) : nullptr, dst->iparams[1],
                       dst->iparams[0], dst->iparams[3], dst->iparams[2], static_cast<float *>(dst->data));
}

Status op_attention(OpContext & ctx, Tensor * dst) {
    const Tensor * q = dst->src[0];
    const Tensor * k = dst->src[1];
    const Tensor * v = dst->src[2];
    const int64_t D = q->ne[0], Nq = q->ne[1], H = q->ne[2], B = q->ne[3], Nk = k->ne[1];
    auto el = [](size_t nb) { return static_cast<int64_t>(nb / sizeof(float)); };
    // dst is [D, H, Nq, B] contiguous.
    return cpu::attention(*ctx.pool, ctx.path, B, H, Nq, Nk, D, static_cast<const float *>(q->data), el(q->nb[3]),
                          el(q->nb[2]), el(q->nb[1]), static_cast<const float *>(k->data), el(k->nb[3]), el(k->nb[2]),
                          el(k->nb[1]), static_cast<const float *>(v->data), el(v->nb[3]), el(v->nb[2]), el(v->nb[1]),
                          static_cast<float *>(dst->data), D * H * Nq, D, D * H, dst->fparams[0],
                          dst->iparams[0] != 0);
}

}  // namespace sdgo::ops
