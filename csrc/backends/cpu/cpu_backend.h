// cpu_backend.h — the CPU backend: one device (this machine's CPU and RAM),
// and execution contexts that run the ops of backends/cpu/ops.h on a thread
// pool with one code path (AVX-512, AVX2, NEON or scalar).
//
// The device's buffers are host memory, so a model's weights can stay in
// their memory-mapped files (wrap_host) instead of being copied.
#pragma once

#include <memory>

#include "backends/cpu/cpu_features.h"
#include "base/threadpool.h"
#include "core/backend.h"

namespace sdgo {

namespace ops {
class Scratch;
}

namespace cpu {

// The process's CPU device (one per process, created on first use).
Device * device();

}  // namespace cpu

// Runs ops on a thread pool with the chosen code path (a path this CPU
// cannot run falls back to scalar). prepare_graph() fuses
// silu(group_norm(x)) into one op when the group norm has no other reader.
class CpuBackend final : public Backend {
public:
    // Owns a pool of n_threads threads (<= 0: physical cores).
    CpuBackend(int n_threads, cpu::CodePath path);
    // Uses an existing pool (not owned; must outlive the backend).
    CpuBackend(ThreadPool * pool, cpu::CodePath path);
    ~CpuBackend() override;

    Status compute(Graph & g) override;

    ThreadPool & pool() { return *pool_; }
    cpu::CodePath code_path() const { return path_; }
    int n_threads() const { return pool_->size(); }
    // Element-wise jobs smaller than this run on one thread (default 16384;
    // 0 splits every job, which tests use to exercise the threaded paths).
    void set_min_parallel_work(int64_t elements) { min_parallel_work_ = elements; }

protected:
    void prepare_graph(Graph & g) override;

private:
    std::unique_ptr<ThreadPool> owned_pool_;
    ThreadPool * pool_;
    cpu::CodePath path_;
    int64_t min_parallel_work_ = 16384;
    std::unique_ptr<ops::Scratch> scratch_;  // kept across computes (no page faults per step)
};

}  // namespace sdgo
