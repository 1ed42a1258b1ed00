// backend.h — where graphs run: buffers, devices and backends, as the model
// code sees them. Nothing here knows any particular backend; each one lives
// in its own folder under csrc/backends/ and implements these interfaces.
//
//   Device   one piece of hardware a backend drives (the CPU, a GPU). It
//            allocates Buffers, copies bytes into and out of them, says
//            which ops and type pairs it can compute (supports_op), and
//            creates Backends. A Device is shared: the weights of a loaded
//            model live in its buffers, uploaded once, and every session of
//            that model reads them. Its methods are thread-safe.
//   Buffer   a block of a device's memory. Tensors point into one with an
//            offset (Tensor::buffer, Tensor::offset).
//   Backend  one execution context on a device (a session owns one): its
//            threads or queues and scratch. It runs one compute at a time.
//
// Life of a graph on a backend:
//   alloc_graph(g)  checks that the device supports every node and that
//                   every weight lives on this device, plans the
//                   intermediates (planner.h), allocates one arena buffer for
//                   them and assigns every input, node and view its buffer
//                   and offset; the graph keeps the arena.
//   set_tensor      copies host data into an input (or any allocated tensor).
//   compute(g)      runs every node in order.
//   get_tensor      copies a tensor (e.g. an output) back to the host.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "core/graph.h"
#include "core/tensor.h"

namespace sdgo {

class Backend;
class Device;

// A block of device memory.
class Buffer {
public:
    virtual ~Buffer() = default;
    virtual size_t size() const = 0;
    // The address tensor data pointers are formed from (base() + offset): a
    // host address where the device computes on host memory (the CPU), NULL
    // otherwise (tensors then have data NULL and are reached by offset).
    virtual void * base() = 0;
    virtual Device * device() const = 0;
};

enum class DeviceType : int { cpu = 0, gpu_discrete = 1, gpu_integrated = 2, gpu_virtual = 3, other = 4 };
const char * device_type_name(DeviceType t);  // "cpu", "discrete-gpu", "integrated-gpu", "virtual-gpu", "other"

struct DeviceInfo {
    std::string backend;       // the backend's name: "cpu", "vulkan", ...
    int index = 0;             // within its backend
    std::string name;          // e.g. "cpu", "NVIDIA H200"
    std::string description;   // e.g. the CPU model, the driver
    DeviceType type = DeviceType::other;
    uint64_t memory_bytes = 0;      // memory the device can use (host RAM for the CPU)
    uint64_t max_buffer_bytes = 0;  // largest single buffer
};

struct BackendOptions {
    int n_threads = 0;    // CPU: worker threads (<= 0: physical cores)
    std::string variant;  // backend-specific code variant (the CPU's "avx512", "avx2", "neon",
                          // "scalar"); "" = the best this device runs
};

class Device {
public:
    virtual ~Device() = default;
    virtual const DeviceInfo & info() const = 0;

    // A buffer of at least `size` bytes, aligned to kAlignment.
    // SDGO_ERR_OUT_OF_MEMORY names the size when it cannot be had.
    virtual Status alloc_buffer(size_t size, std::unique_ptr<Buffer> * out) = 0;
    // Whether this device computes on host memory directly, so that a buffer
    // can wrap memory the caller owns (e.g. a memory-mapped file) without a
    // copy. The caller keeps that memory valid and unchanged while the
    // buffer lives.
    virtual bool can_wrap_host() const { return false; }
    virtual Status wrap_host(const void * ptr, size_t size, std::unique_ptr<Buffer> * out);
    // Copies between host memory and a buffer of this device.
    virtual Status write(Buffer * b, size_t offset, const void * src, size_t n) = 0;
    virtual Status read(Buffer * b, size_t offset, void * dst, size_t n) = 0;

    // Whether a backend of this device can compute `node`: its op with its
    // sources' types, shapes and layouts. Graph builders check shapes only;
    // this is where type pairs are decided.
    virtual bool supports_op(const Tensor * node) const = 0;

    // A new execution context on this device.
    virtual Status new_backend(const BackendOptions & opt, std::unique_ptr<Backend> * out) = 0;
    // The code variants (BackendOptions::variant) a backend of this device
    // can run here, best first; {""} for a device with only one. Tests run
    // every op on each of them.
    virtual std::vector<std::string> variants() const { return {""}; }

    static constexpr size_t kAlignment = 64;
};

// One execution context on a device. Not thread-safe: one caller at a time.
class Backend {
public:
    explicit Backend(Device * device) : device_(device) {}
    virtual ~Backend() = default;
    Device * device() const { return device_; }
    const char * name() const { return device_->info().backend.c_str(); }

    // Plans and allocates the graph's memory (see above). Fails with the
    // graph's recorded build error, SDGO_ERR_UNSUPPORTED for an op the
    // device cannot run, SDGO_ERR_INVALID_ARGUMENT for a weight on another
    // device, SDGO_ERR_OUT_OF_MEMORY when the arena cannot be allocated.
    Status alloc_graph(Graph & g);
    // Copies size bytes at byte offset into / out of an allocated tensor's
    // storage (t must be contiguous over that range).
    Status set_tensor(Tensor * t, const void * data, size_t offset, size_t size);
    Status get_tensor(const Tensor * t, void * data, size_t offset, size_t size);
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

protected:
    // Rewrites the graph before planning (e.g. fuses ops); default: nothing.
    virtual void prepare_graph(Graph & g) { (void)g; }
    bool should_abort() const { return abort_fn_ && abort_fn_(abort_user_); }
    void add_time(Op op, double seconds);

    Device * device_;
    AbortFn abort_fn_ = nullptr;
    void * abort_user_ = nullptr;
    bool profiling_ = false;
    std::vector<OpTime> profile_;  // indexed by op
};

}  // namespace sdgo
