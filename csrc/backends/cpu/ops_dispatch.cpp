#include <cstdlib>
#include <new>

#include "backends/cpu/kernels.h"
#include "backends/cpu/ops_internal.h"

namespace sdgo::ops {

Scratch::~Scratch() { std::free(ptr_); }

void * Scratch::get(size_t bytes, Status * st) {
    if (bytes <= size_) return ptr_;
    const size_t want = (bytes + 63) & ~size_t(63);
    void * p = std::aligned_alloc(64, want);
    if (!p) {
        *st = error(SDGO_ERR_OUT_OF_MEMORY, "op scratch: cannot allocate %zu bytes", want);
        return nullptr;
    }
    std::free(ptr_);
    ptr_ = p;
    size_ = want;
    return ptr_;
}

void parallel_units(OpContext & ctx, int64_t n, int64_t cost, const std::function<void(int64_t, int64_t)> & fn) {
    if (n <= 0) return;
    const int nth = ctx.pool->size();
    if (nth == 1 || n == 1 || n * cost < ctx.min_parallel_work) {
        fn(0, n);
        return;
    }
    ctx.pool->run([&](int ith, int nt) {
        const int64_t b = n * ith / nt, e = n * (ith + 1) / nt;
        if (b < e) fn(b, e);
    });
}

namespace {

bool has_decoder(DType t) {
    const TypeTraits * tr = type_traits(t);
    return tr && tr->to_f32;
}

}  // namespace

bool supported(const Tensor * node) {
    if (!node) return false;
    if (node->op == Op::count_) return false;
    for (const Tensor * s : node->src) {
        if (s && !type_traits(s->type)) return false;
    }
    const Tensor * a = node->src[0];
    switch (node->op) {
        case Op::cont:  // same type: floats with any strides, block types by whole rows
            return is_float_type(a->type) || a->rows_contiguous();
        case Op::cpy:  // to a float type; block sources only to f32
            return is_float_type(node->type) && (is_float_type(a->type) || (node->type == DType::f32 && has_decoder(a->type)));
        case Op::mul_mat: return cpu::gemm_weight_type_supported(a->type);
        case Op::conv2d: return a->type == DType::f32 || a->type == DType::f16 || has_decoder(a->type);
        case Op::get_rows: return a->type == DType::f32 || has_decoder(a->type);
        default: break;
    }
    // Every other op takes the f32 activations the graph builders enforce.
    return true;
}

Status compute(OpContext & ctx, Tensor * node) {
    switch (node->op) {
        case Op::none:
        case Op::view: return Status();
        case Op::cont:
        case Op::cpy: return op_copy(ctx, node);
        case Op::add:
        case Op::sub:
        case Op::mul:
        case Op::div: return op_binary(ctx, node);
        case Op::scale:
        case Op::silu:
        case Op::gelu:
        case Op::gelu_tanh:
        case Op::quick_gelu:
        case Op::clamp:
        case Op::relu:
        case Op::tanh:
        case Op::sigmoid:
        case Op::exp:
        case Op::sqrt:
        case Op::sqr: return op_unary(ctx, node);
        case Op::resize: return op_upscale(ctx, node);
        case Op::softmax: return op_softmax(ctx, node);
        case Op::group_norm: return op_group_norm(ctx, node);
        case Op::layer_norm: return op_layer_norm(ctx, node);
        case Op::mul_mat: return op_mul_mat(ctx, node);
        case Op::conv2d: return op_conv2d(ctx, node);
        case Op::attention: return op_attention(ctx, node);
        case Op::concat: return op_concat(ctx, node);
        case Op::upscale: return op_upscale(ctx, node);
        case Op::pad: return op_pad(ctx, node);
        case Op::timestep_embedding: return op_timestep_embedding(ctx, node);
        case Op::get_rows: return op_get_rows(ctx, node);
        case Op::sum_rows:
        case Op::mean_rows:
        case Op::sum:
        case Op::mean: return op_reduce(ctx, node);
        case Op::count_: break;
    }
    return error(SDGO_ERR_UNSUPPORTED, "cpu: op %d not implemented", static_cast<int>(node->op));
}

}  // namespace sdgo::ops
