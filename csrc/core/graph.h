// graph.h — a computation graph built first, computed later by a Backend.
//
//   Graph g;
//   Tensor * x = g.input(DType::f32, {320, 4096});
//   Tensor * w = g.weight(DType::f16, {320, 1280}, buffer, offset);  // e.g. from a WeightStore
//   Tensor * y = g.silu(g.mul_mat(w, x));
//   g.set_output(y);
//   backend.alloc_graph(g);            // plans the arena, assigns data pointers
//   backend.set_tensor(x, host, 0, x->nbytes());
//   backend.compute(g);                // may be repeated; inputs keep their data
//   backend.get_tensor(y, host_out, 0, y->nbytes());
//
// Builders check shapes and layouts; which element types an op can take is
// the backend's answer (Device::supports_op), checked by alloc_graph().
//
// Error handling: builder calls never fail loudly. The first invalid call
// (shape mismatch, unsupported type, null or foreign tensor) is recorded in
// status() and the call returns a placeholder tensor so that building can go
// on; alloc_graph() and compute() then return that error. Check status()
// right after building to report it early.
//
// Conventions follow ggml (ne[0] innermost, views share storage, permute
// axes name the destination of each source dimension). All op results are
// new contiguous tensors; activations are f32. Only tensors marked with
// set_output() (or the last tensor created) can be read after compute: the
// planner reuses every other intermediate's memory, sometimes in place.
// A graph is allocated on one backend, once; build a new graph to change it.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <vector>

#include "base/status.h"
#include "core/tensor.h"

namespace sdgo {

class Backend;
class Buffer;

class Graph {
public:
    Graph();
    ~Graph();
    Graph(const Graph &) = delete;
    Graph & operator=(const Graph &) = delete;

    const Status & status() const { return status_; }

    // ---- leaves ----
    // An input: memory planned with the graph (never reused for
    // intermediates); set its data after alloc_graph() and before compute().
    // It keeps its contents across computes of the same graph.
    Tensor * input(DType type, std::initializer_list<int64_t> ne, const char * name = nullptr);
    Tensor * input(DType type, int n_dims, const int64_t * ne, const char * name = nullptr);
    // A weight: a dense tensor of any type at `offset` in a device buffer
    // (filled before compute, e.g. once at model load). The buffer must
    // live on the device of the backend that allocates the graph, and stay
    // valid and unchanged while the graph is computed.
    Tensor * weight(DType type, std::initializer_list<int64_t> ne, Buffer * buffer, size_t offset,
                    const char * name = nullptr);
    Tensor * weight(DType type, int n_dims, const int64_t * ne, Buffer * buffer, size_t offset,
                    const char * name = nullptr);

    // ---- views (share storage, no copy) ----
    // ne: 1..4 sizes; nb: byte strides of dims 1..n-1 (n-1 values); offset in bytes.
    Tensor * view(Tensor * a, std::initializer_list<int64_t> ne, std::initializer_list<size_t> nb, size_t offset);
    Tensor * reshape(Tensor * a, std::initializer_list<int64_t> ne);  // a must be contiguous
    // Source dimension i moves to position axis_i (ggml_permute semantics).
    Tensor * permute(Tensor * a, int axis0, int axis1, int axis2, int axis3);
    Tensor * transpose(Tensor * a);  // swaps dims 0 and 1

    // ---- copies ----
    Tensor * cont(Tensor * a);              // contiguous copy, same type
    Tensor * cast(Tensor * a, DType type);  // contiguous copy to f32, f16 or bf16

    // ---- element-wise ----
    // Binary ops broadcast by tiling (ggml repeat semantics, both ways): the
    // result has ne[d] = max(a.ne[d], b.ne[d]) and each operand's ne[d] must
    // divide it; an operand is indexed with i % ne[d].
    Tensor * add(Tensor * a, Tensor * b);
    Tensor * sub(Tensor * a, Tensor * b);
    Tensor * mul(Tensor * a, Tensor * b);
    Tensor * div(Tensor * a, Tensor * b);
    Tensor * scale(Tensor * a, float s, float bias = 0.0f);  // a*s + bias
    Tensor * silu(Tensor * a);
    Tensor * gelu(Tensor * a);        // x/2 (1 + erf(x/sqrt 2))
    Tensor * gelu_tanh(Tensor * a);   // x/2 (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3)))
    Tensor * quick_gelu(Tensor * a);  // x sigmoid(1.702 x)
    Tensor * clamp(Tensor * a, float lo, float hi);
    Tensor * relu(Tensor * a);
    Tensor * tanh(Tensor * a);
    Tensor * sigmoid(Tensor * a);
    Tensor * exp(Tensor * a);
    Tensor * sqrt(Tensor * a);
    Tensor * sqr(Tensor * a);
    // GEGLU: splits ne0 into halves (value, gate) -> value * gelu(gate).
    Tensor * geglu(Tensor * a);

    // ---- normalisation / softmax ----
    // softmax along ne0 of (scale * a); causal: row i1 sees columns
    // j <= i1 + (ne0 - ne1).
    Tensor * softmax(Tensor * a, float scale = 1.0f, bool causal = false);
    // a = [W, H, C, N]; groups over C (C % groups == 0); optional affine
    // weight/bias of C f32 elements.
    Tensor * group_norm(Tensor * a, int groups, float eps, Tensor * w = nullptr, Tensor * b = nullptr);
    // silu(group_norm(...)) in one pass over memory (the ResBlock pattern).
    Tensor * group_norm_silu(Tensor * a, int groups, float eps, Tensor * w = nullptr, Tensor * b = nullptr);
    // over ne0; optional weight/bias of ne0 f32 elements.
    Tensor * layer_norm(Tensor * a, float eps, Tensor * w = nullptr, Tensor * b = nullptr);

    // ---- linear algebra ----
    // w: [K, N, b2, b3] of any type the backend supports for it (its
    // supports_op decides; the CPU takes every type with a decoder); x: [K, M, B2, B3] f32,
    // B2 % b2 == 0, B3 % b3 == 0 (w broadcast). -> [N, M, B2, B3].
    // Optional bias: N f32 elements, added to every output row.
    Tensor * mul_mat(Tensor * w, Tensor * x, Tensor * bias = nullptr);
    Tensor * linear(Tensor * x, Tensor * w, Tensor * bias = nullptr) { return mul_mat(w, x, bias); }
    // w: [KW, KH, Cin, Cout] contiguous, of a type the backend supports for
    // it (the CPU uses f32/f16 directly and converts others, e.g. bf16, to
    // f32 at each compute);
    // x: [W, H, Cin, N] f32; bias: Cout f32 or null. -> [OW, OH, Cout, N].
    Tensor * conv2d(Tensor * w, Tensor * x, Tensor * bias, int stride_w, int stride_h, int pad_w, int pad_h);
    // q: [D, Nq, H, B], k and v: [D, Nk, H, B] (views with any strides, D
    // contiguous). -> [D, H, Nq, B] (heads merged: reshape to [D*H, Nq, B]).
    Tensor * attention(Tensor * q, Tensor * k, Tensor * v, float scale, bool causal = false);

    // ---- shape ops ----
    Tensor * concat(Tensor * a, Tensor * b, int dim);
    Tensor * upscale_nearest(Tensor * a, int factor);  // dims 0 and 1
    // Nearest resize of dims 0 and 1 to (w, h), PyTorch 'nearest' rule:
    // src = min(floor(dst * (float)in / out), in - 1).
    Tensor * resize_nearest(Tensor * a, int64_t w, int64_t h);
    // Zero padding: lp[d] elements before and rp[d] after, for each dim.
    Tensor * pad(Tensor * a, const int lp[4], const int rp[4]);
    Tensor * pad(Tensor * a, int p0, int p1, int p2 = 0, int p3 = 0);  // after only
    // t: [N] f32 timesteps -> [dim, N]. freq_i = exp(-ln(max_period) * i /
    // (dim/2 - shift)); flip_sin_to_cos puts cos first. Odd dim: last = 0.
    Tensor * timestep_embedding(Tensor * t, int dim, float max_period = 10000.0f, bool flip_sin_to_cos = true,
                                float downscale_freq_shift = 0.0f);
    // table: [K, R] of a type the backend supports; idx: [n] or [n, m] i32 -> [K, n, m] f32.
    Tensor * get_rows(Tensor * table, Tensor * idx);

    // ---- reductions (f32 result) ----
    Tensor * sum_rows(Tensor * a);   // [1, ne1, ne2, ne3]
    Tensor * mean_rows(Tensor * a);
    Tensor * sum(Tensor * a);        // [1]
    Tensor * mean(Tensor * a);

    // ---- outputs, order ----
    // Marks a tensor to be kept until compute ends (readable afterwards).
    // Without any output, the last created tensor is the output.
    void set_output(Tensor * t);
    void set_name(Tensor * t, const char * name);

    // Nodes in execution order (computed on first use and whenever the graph
    // changed): every op node reachable from the outputs, sources first.
    const std::vector<Tensor *> & order();
    // All leaves (inputs and weights), in creation order.
    std::vector<Tensor *> leaves() const;
    const std::vector<Tensor *> & outputs();
    size_t n_tensors() const { return tensors_.size(); }
    Tensor * tensor(size_t i) const { return tensors_[i].get(); }
    bool owns(const Tensor * t) const;

    // Set by the backend that allocated the graph; building afterwards is an error.
    Backend * backend() const { return backend_; }
    // A number unique in this process to this graph's allocation (never
    // reused, even after the graph is destroyed); 0 before alloc_graph. A
    // backend may keep work prepared for a graph (recorded commands) under it.
    uint64_t serial() const { return serial_; }
    void attach(Backend * b, std::unique_ptr<Buffer> arena, size_t arena_bytes);
    size_t arena_bytes() const { return arena_bytes_; }
    Buffer * arena() const { return arena_.get(); }

private:
    Tensor * new_tensor(DType type, int n_dims, const int64_t * ne);
    Tensor * fail(Status st);
    bool check(Tensor * t, const char * what);
    Tensor * unary(Op op, Tensor * a);
    Tensor * binary(Op op, Tensor * a, Tensor * b);
    Tensor * reduce(Op op, Tensor * a, bool all);
    Tensor * make_view(Tensor * a, const int64_t ne[4], const size_t nb[4], size_t offset);

    std::vector<std::unique_ptr<Tensor>> tensors_;
    std::vector<Tensor *> outputs_;
    std::vector<Tensor *> order_;
    bool order_valid_ = false;
    Status status_;
    Backend * backend_ = nullptr;
    std::unique_ptr<Buffer> arena_;
    size_t arena_bytes_ = 0;
    uint64_t serial_ = 0;
};

}  // namespace sdgo
