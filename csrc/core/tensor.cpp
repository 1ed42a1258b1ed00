#include "core/tensor.h"

#include "base/status.h"

namespace sdgo {

const char * op_name(Op op) {
    switch (op) {
        case Op::none: return "none";
        case Op::view: return "view";
        case Op::cont: return "cont";
        case Op::cpy: return "cpy";
        case Op::add: return "add";
        case Op::sub: return "sub";
        case Op::mul: return "mul";
        case Op::div: return "div";
        case Op::scale: return "scale";
        case Op::silu: return "silu";
        case Op::gelu: return "gelu";
        case Op::gelu_tanh: return "gelu_tanh";
        case Op::quick_gelu: return "quick_gelu";
        case Op::clamp: return "clamp";
        case Op::relu: return "relu";
        case Op::tanh: return "tanh";
        case Op::sigmoid: return "sigmoid";
        case Op::exp: return "exp";
        case Op::sqrt: return "sqrt";
        case Op::sqr: return "sqr";
        case Op::resize: return "resize";
        case Op::softmax: return "softmax";
        case Op::group_norm: return "group_norm";
        case Op::layer_norm: return "layer_norm";
        case Op::mul_mat: return "mul_mat";
        case Op::conv2d: return "conv2d";
        case Op::attention: return "attention";
        case Op::concat: return "concat";
        case Op::upscale: return "upscale";
        case Op::pad: return "pad";
        case Op::timestep_embedding: return "timestep_embedding";
        case Op::get_rows: return "get_rows";
        case Op::sum_rows: return "sum_rows";
        case Op::mean_rows: return "mean_rows";
        case Op::sum: return "sum";
        case Op::mean: return "mean";
        case Op::count_: break;
    }
    return "?";
}

size_t dtype_size(DType t) {
    const TypeTraits * tr = type_traits(t);
    return tr ? tr->type_size : 0;
}

int64_t dtype_block(DType t) {
    const TypeTraits * tr = type_traits(t);
    return tr ? tr->block_size : 1;
}

size_t Tensor::nbytes() const {
    for (int i = 0; i < kMaxDims; i++)
        if (ne[i] <= 0) return 0;
    const int64_t blck = dtype_block(type);
    size_t n = dtype_size(type) * static_cast<size_t>(ne[0] / blck);
    for (int i = 1; i < kMaxDims; i++) n += static_cast<size_t>(ne[i] - 1) * nb[i];
    if (blck == 1) {
        // Permuted layouts: the span is set by the largest stride, not dim 0.
        size_t span = dtype_size(type);
        for (int i = 0; i < kMaxDims; i++) span += static_cast<size_t>(ne[i] - 1) * nb[i];
        return span;
    }
    return n;
}

bool Tensor::rows_contiguous() const { return nb[0] == dtype_size(type); }

bool Tensor::is_contiguous() const {
    size_t expect = dtype_size(type);
    if (nb[0] != expect) return false;
    expect *= static_cast<size_t>(ne[0] / dtype_block(type));
    for (int i = 1; i < kMaxDims; i++) {
        if (ne[i] != 1 && nb[i] != expect) return false;
        expect *= static_cast<size_t>(ne[i]);
    }
    return true;
}

int Tensor::n_dims() const {
    for (int i = kMaxDims - 1; i >= 1; i--)
        if (ne[i] > 1) return i + 1;
    return 1;
}

std::string Tensor::shape_str() const {
    return strprintf("[%lld,%lld,%lld,%lld] %s", (long long)ne[0], (long long)ne[1], (long long)ne[2],
                     (long long)ne[3], dtype_name(type));
}

void set_contiguous_strides(Tensor * t) {
    t->nb[0] = dtype_size(t->type);
    t->nb[1] = t->nb[0] * static_cast<size_t>(t->ne[0] / dtype_block(t->type));
    for (int i = 2; i < kMaxDims; i++) t->nb[i] = t->nb[i - 1] * static_cast<size_t>(t->ne[i - 1]);
}

bool same_shape(const Tensor * a, const Tensor * b) {
    for (int i = 0; i < kMaxDims; i++)
        if (a->ne[i] != b->ne[i]) return false;
    return true;
}

}  // namespace sdgo
