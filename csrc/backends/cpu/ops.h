// ops.h — CPU implementations of the graph ops (used by CpuBackend).
//
// Every op reads f32 activations through their byte strides (so permuted,
// transposed and sliced views work directly) and writes a new contiguous
// result. Work is split over the pool's threads by whole rows / groups /
// slices, with a fixed summation order inside each unit, so results are
// bit-identical for any thread count. GEMM, convolution and attention go
// through csrc/cpu/kernels.h.
#pragma once

#include <cstddef>

#include "base/status.h"
#include "core/tensor.h"
#include "base/threadpool.h"
#include "backends/cpu/cpu_features.h"

namespace sdgo::ops {

// Grow-only aligned scratch memory for ops that need a temporary copy.
class Scratch {
public:
    Scratch() = default;
    ~Scratch();
    Scratch(const Scratch &) = delete;
    Scratch & operator=(const Scratch &) = delete;
    // Returns at least `bytes` bytes (64-byte aligned), or NULL with *st set.
    void * get(size_t bytes, Status * st);

private:
    void * ptr_ = nullptr;
    size_t size_ = 0;
};

struct OpContext {
    ThreadPool * pool;
    cpu::CodePath path;
    Scratch * scratch;
    // Jobs of fewer elements run on the calling thread (0: always split).
    int64_t min_parallel_work = 16384;
};

// Whether the CPU ops can compute this node (op and source types).
bool supported(const Tensor * node);

// Computes one node; sources and the node must have data pointers.
Status compute(OpContext & ctx, Tensor * node);

}  // namespace sdgo::ops
