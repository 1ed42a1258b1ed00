// backend.h — where graphs run. Model code sees only Graph + Backend; a GPU
// backend implements this interface without any change to model code.
//
// Life of a graph on a backend:
//   alloc_graph(g)  plans the intermediates (planner.h), allocates one arena
//                   buffer for them and assigns every input, node and view
//                   its address; the graph keeps the arena.
//   set_tensor      copies host data into an input (or any allocated tensor).
//   compute(g)      runs every node in order.
//   get_tensor      copies a tensor (e.g. an output) back to the host.
// Weights are host memory given at graph build; a device backend uploads or
// maps them as it sees fit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/graph.h"
#include "core/status.h"
#include "core/tensor.h"
#include "core/threadpool.h"
#include "cpu/cpu_features.h"

namespace sdgo {

namespace ops {
class Scratch;
}

// A block of backend memory.
class Buffer {
public:
    virtual ~Buffer() = default;
    virtual size_t size() const = 0;
    // Address used for tensor data pointers (host address for the CPU; an
    // opaque device address for other backends).
    virtual void * base() = 0;
};

// A backend runs one compute at a time (it is not meant to be shared by
// concurrent callers); graphs are not thread-safe either.
class Backend {
public:
    virtual ~Backend() = default;
    virtual const char * name() const = 0;

    // Allocates a buffer of `size` bytes, aligned to kAlignment.
    virtual Status alloc_buffer(size_t size, std::unique_ptr<Buffer> * out) = 0;
    // Whether this backend can compute `node` (its op with its source types).
    virtual bool supports_op(const Tensor * node) const = 0;

    // Plans and allocates the graph's memory (see above). Fails with the
    // graph's recorded build error, SDGO_ERR_UNSUPPORTED for an op the
    // backend cannot run, SDGO_ERR_OUT_OF_MEMORY when the arena cannot be
    // allocated.
    virtual Status alloc_graph(Graph & g) = 0;
    // Copies size bytes at byte offset into / out of an allocated tensor's
    // storage (t must be contiguous over that range).
    virtual Status set_tensor(Tensor * t, const void * data, size_t offset, size_t size) = 0;
    virtual Status get_tensor(const Tensor * t, void * data, size_t offset, size_t size) = 0;
    // Runs the graph (allocating it first if needed). Between nodes it asks
    // the abort callback, if set, and stops with SDGO_ERR_CANCELED when it
    // returns true.
    virtual Status compute(Graph & g) = 0;

    using AbortFn = bool (*)(void * user);
    void set_abort_callback(AbortFn fn, void * user) {
        abort_fn_ = fn;
        abort_user_ = user;
    }

    // Per-op timing (off by default): when enabled, compute() adds the wall
    // time of every node to its op's entry.
    struct OpTime {
        Op op;
        int64_t count;
        double seconds;
    };
    void set_profiling(bool on) { profiling_ = on; }
    void reset_profile() { profile_.clear(); }
    // Entries with count > 0, slowest first.
    std::vector<OpTime> profile() const;
    std::string profile_report() const;  // one line per op: name, count, ms, share

    static constexpr size_t kAlignment = 64;

protected:
    bool should_abort() const { return abort_fn_ && abort_fn_(abort_user_); }
    void add_time(Op op, double seconds);

    AbortFn abort_fn_ = nullptr;
    void * abort_user_ = nullptr;
    bool profiling_ = false;
    std::vector<OpTime> profile_;  // indexed by op
};

// The CPU backend: runs ops on a thread pool with the chosen code path (a
// path this CPU cannot run falls back to scalar). alloc_graph() fuses
// silu(group_norm(x)) into one op when the group norm has no other reader.
class CpuBackend final : public Backend {
public:
    // Owns a pool of n_threads threads.
    CpuBackend(int n_threads, cpu::CodePath path);
    // Uses an existing pool (not owned; must outlive the backend).
    CpuBackend(ThreadPool * pool, cpu::CodePath path);
    ~CpuBackend() override;

    const char * name() const override { return "cpu"; }
    Status alloc_buffer(size_t size, std::unique_ptr<Buffer> * out) override;
    bool supports_op(const Tensor * node) const override;
    Status alloc_graph(Graph & g) override;
    Status set_tensor(Tensor * t, const void * data, size_t offset, size_t size) override;
    Status get_tensor(const Tensor * t, void * data, size_t offset, size_t size) override;
    Status compute(Graph & g) override;

    ThreadPool & pool() { return *pool_; }
    cpu::CodePath code_path() const { return path_; }
    int n_threads() const { return pool_->size(); }
    // Element-wise jobs smaller than this run on one thread (default 16384;
    // 0 splits every job, which tests use to exercise the threaded paths).
    void set_min_parallel_work(int64_t elements) { min_parallel_work_ = elements; }

private:
    std::unique_ptr<ThreadPool> owned_pool_;
    ThreadPool * pool_;
    cpu::CodePath path_;
    int64_t min_parallel_work_ = 16384;
    std::unique_ptr<ops::Scratch> scratch_;  // kept across computes (no page faults per step)
};

}  // namespace sdgo
