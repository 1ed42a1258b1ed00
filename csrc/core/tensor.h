// tensor.h — the engine's tensor: a typed, strided view of up to 4 dimensions.
//
// Layout follows ggml: ne[0] is the innermost dimension, nb[i] is the byte
// stride of dimension i (nb[0] is the element size for plain types, the block
// size in bytes for block-quantized types, whose ne[0] counts elements).
// A tensor is either
//   - a leaf: an input (its memory is planned by the backend; the caller sets
//     its data after allocation and before compute) or a weight (a tensor in
//     a device buffer that a model filled once, given when it is created);
//   - a node: the result of an op on src[] tensors, with op parameters;
//   - a view: a node with op == Op::view that shares the storage of
//     view_src (always the storage owner, never another view) at view_offs.
// Tensors are owned by the Graph that created them (see graph.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "types/types.h"

namespace sdgo {

class Buffer;  // core/backend.h

constexpr int kMaxDims = 4;
constexpr int kMaxSrc = 4;
constexpr int kMaxOpParams = 8;

enum class Op : int32_t {
    none = 0,  // leaf (input or weight)
    view,      // reshape / permute / transpose / slice: shares storage
    cont,      // contiguous copy, same type
    cpy,       // contiguous copy converted to the node's type (f32/f16/bf16)
    add,
    sub,
    mul,
    div,
    scale,     // x * s + b (fparams: s, b)
    silu,
    gelu,       // exact (erf) form
    gelu_tanh,  // tanh approximation
    quick_gelu, // x * sigmoid(1.702 x)
    clamp,      // fparams: lo, hi
    relu,
    tanh,
    sigmoid,
    exp,
    sqrt,
    sqr,
    softmax,    // along ne0; fparams: scale; iparams: causal
    group_norm, // iparams: groups, fused silu; fparams: eps; src1/src2 optional weight/bias [C]
    layer_norm, // fparams: eps; src1/src2 optional weight/bias [ne0]
    mul_mat,    // src0 weight [K,N,..] any type, src1 activations [K,M,..] f32, src2 optional bias [N]
    conv2d,     // src0 weight [KW,KH,Cin,Cout], src1 x [W,H,Cin,N], src2 optional bias [Cout]
    attention,  // src0 q, src1 k, src2 v; fparams: scale; iparams: causal
    concat,     // iparams: dim
    upscale,    // nearest, iparams: factor (dims 0 and 1)
    resize,     // nearest to ne[0], ne[1] (PyTorch 'nearest' index rule)
    pad,        // iparams: lp0,rp0,lp1,rp1,lp2,rp2,lp3,rp3
    timestep_embedding, // iparams: dim, flip_sin_to_cos; fparams: max_period, downscale_freq_shift
    get_rows,   // src0 table [K,R] any type, src1 indices [n] i32
    sum_rows,
    mean_rows,
    sum,
    mean,
    count_
};

const char * op_name(Op op);

enum TensorFlags : uint32_t {
    kFlagInput = 1u << 0,   // leaf whose memory the planner assigns
    kFlagWeight = 1u << 1,  // leaf in a buffer given at creation
    kFlagOutput = 1u << 2,  // kept alive until the end of compute
};

struct Tensor {
    DType type = DType::f32;
    int64_t ne[kMaxDims] = {1, 1, 1, 1};
    size_t nb[kMaxDims] = {0, 0, 0, 0};

    Op op = Op::none;
    Tensor * src[kMaxSrc] = {nullptr, nullptr, nullptr, nullptr};
    int32_t iparams[kMaxOpParams] = {0};
    float fparams[kMaxOpParams] = {0};

    Tensor * view_src = nullptr;  // storage owner for views
    size_t view_offs = 0;         // byte offset into view_src's storage

    // Storage: a buffer and a byte offset into it (weights: given at
    // creation; everything else: assigned by Backend::alloc_graph). data is
    // buffer->base() + offset, a host address on host-visible devices.
    Buffer * buffer = nullptr;
    size_t offset = 0;
    void * data = nullptr;
    uint32_t flags = 0;
    int32_t id = -1;        // creation index in its graph
    std::string name;

    int64_t nelements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
    int64_t nrows() const { return ne[1] * ne[2] * ne[3]; }
    // Bytes spanned by the tensor's elements (ggml_nbytes semantics).
    size_t nbytes() const;
    bool is_contiguous() const;       // densely packed in ne order
    bool rows_contiguous() const;     // nb[0] is the element (block) size
    bool is_view() const { return view_src != nullptr; }
    bool is_leaf() const { return op == Op::none; }
    int n_dims() const;               // 1 + index of the last dim with ne > 1
    std::string shape_str() const;    // "[4,3,2,1] f32"
};

// Element or block size in bytes of a type, its block size in elements.
size_t dtype_size(DType t);
int64_t dtype_block(DType t);

// Fills nb[] for a dense layout of ne[] and type.
void set_contiguous_strides(Tensor * t);

bool same_shape(const Tensor * a, const Tensor * b);

}  // namespace sdgo
