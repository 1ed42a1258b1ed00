#include <cstdlib>
#include <new>

#include "ops/ops_internal.h"

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

bool supported(const Tensor * node) {
    if (!node) return false;
    if (node->op == Op::count_) return false;
    for (const Tensor * s : node->src) {
        if (s && !type_traits(s->type)) return false;
    }
    return true;  // graph building rejects type pairs the CPU ops cannot run
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
