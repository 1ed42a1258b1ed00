// ops_internal.h — helpers shared by the CPU op implementations.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>

#include "backends/cpu/ops.h"
#include "backends/cpu/type_convert.h"

namespace sdgo::ops {

// Byte address of element (i0, i1, i2, i3).
inline char * at(const Tensor * t, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
    return static_cast<char *>(t->data) + i0 * t->nb[0] + i1 * t->nb[1] + i2 * t->nb[2] + i3 * t->nb[3];
}

// Byte address of the start of row r (rows enumerate dims 1..3, ne1 fastest).
inline char * row_ptr(const Tensor * t, int64_t r) {
    const int64_t i1 = r % t->ne[1];
    const int64_t i2 = (r / t->ne[1]) % t->ne[2];
    const int64_t i3 = r / (t->ne[1] * t->ne[2]);
    return at(t, 0, i1, i2, i3);
}

// Runs fn(begin, end) on contiguous ranges of [0, n) units, one range per
// thread (static split). `cost` is the approximate element count per unit;
// small jobs run on the calling thread.
void parallel_units(OpContext & ctx, int64_t n, int64_t cost, const std::function<void(int64_t, int64_t)> & fn);

Status op_unary(OpContext & ctx, Tensor * dst);
Status op_binary(OpContext & ctx, Tensor * dst);
Status op_copy(OpContext & ctx, Tensor * dst);  // cont and cpy
Status op_softmax(OpContext & ctx, Tensor * dst);
Status op_group_norm(OpContext & ctx, Tensor * dst);
Status op_layer_norm(OpContext & ctx, Tensor * dst);
Status op_mul_mat(OpContext & ctx, Tensor * dst);
Status op_conv2d(OpContext & ctx, Tensor * dst);
Status op_attention(OpContext & ctx, Tensor * dst);
Status op_concat(OpContext & ctx, Tensor * dst);
Status op_upscale(OpContext & ctx, Tensor * dst);
Status op_pad(OpContext & ctx, Tensor * dst);
Status op_timestep_embedding(OpContext & ctx, Tensor * dst);
Status op_get_rows(OpContext & ctx, Tensor * dst);
Status op_reduce(OpContext & ctx, Tensor * dst);

}  // namespace sdgo::ops
