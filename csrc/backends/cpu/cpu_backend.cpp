#include "backends/cpu/cpu_backend.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include <unistd.h>

#include "backends/cpu/ops.h"

namespace sdgo {

namespace {

constexpr int kMaxThreads = 1024;  // a sanity bound; callers cap lower

// Memory this device allocated (owned) or a caller's host memory (wrapped).
class CpuBuffer final : public Buffer {
public:
    CpuBuffer(Device * dev, void * p, size_t n, bool owned) : dev_(dev), ptr_(p), size_(n), owned_(owned) {}
    ~CpuBuffer() override {
        if (owned_) std::free(ptr_);
    }
    size_t size() const override { return size_; }
    void * base() override { return ptr_; }
    Device * device() const override { return dev_; }

private:
    Device * dev_;
    void * ptr_;
    size_t size_;
    bool owned_;
};

uint64_t physical_memory() {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return 0;
    return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
}

class CpuDevice final : public Device {
public:
    CpuDevice() {
        const cpu::CpuInfo & ci = cpu::cpu_info();
        info_.backend = "cpu";
        info_.index = 0;
        info_.name = "cpu";
        info_.description = ci.model.empty() ? ci.arch : ci.model;
        info_.type = DeviceType::cpu;
        info_.memory_bytes = physical_memory();
        info_.max_buffer_bytes = info_.memory_bytes;
    }

    const DeviceInfo & info() const override { return info_; }

    Status alloc_buffer(size_t size, std::unique_ptr<Buffer> * out) override {
        const size_t n = (size == 0 ? kAlignment : (size + kAlignment - 1) & ~(kAlignment - 1));
        if (n < size) return error(SDGO_ERR_OUT_OF_MEMORY, "cpu: buffer of %zu bytes is too large", size);
        // More than the machine's physical memory cannot work (and some
        // allocators abort on absurd sizes instead of returning NULL).
        if (info_.memory_bytes > 0 && n > info_.memory_bytes)
            return error(SDGO_ERR_OUT_OF_MEMORY, "cpu: a buffer of %zu bytes exceeds physical memory (%llu bytes)", n,
                         (unsigned long long)info_.memory_bytes);
        void * p = std::aligned_alloc(kAlignment, n);
        if (!p) return error(SDGO_ERR_OUT_OF_MEMORY, "cpu: cannot allocate a buffer of %zu bytes", size);
        *out = std::make_unique<CpuBuffer>(this, p, n, true);
        return Status();
    }

    bool can_wrap_host() const override { return true; }

    Status wrap_host(const void * ptr, size_t size, std::unique_ptr<Buffer> * out) override {
        if (!ptr && size) return error(SDGO_ERR_INVALID_ARGUMENT, "cpu: wrap_host of a NULL pointer");
        *out = std::make_unique<CpuBuffer>(this, const_cast<void *>(ptr), size, false);
        return Status();
    }

    Status write(Buffer * b, size_t offset, const void * src, size_t n) override {
        SDGO_TRY(check(b, offset, n, "write"));
        if (n) std::memcpy(static_cast<char *>(b->base()) + offset, src, n);
        return Status();
    }

    Status read(Buffer * b, size_t offset, void * dst, size_t n) override {
        SDGO_TRY(check(b, offset, n, "read"));
        if (n) std::memcpy(dst, static_cast<const char *>(b->base()) + offset, n);
        return Status();
    }

    bool supports_op(const Tensor * node) const override { return ops::supported(node); }

    // The code paths this CPU runs, best first ("avx512", "avx2", ..., "scalar").
    std::vector<std::string> variants() const override {
        std::vector<std::string> v;
        for (cpu::CodePath p : cpu::runnable_code_paths()) v.push_back(cpu::code_path_name(p));
        return v;
    }

    Status new_backend(const BackendOptions & opt, std::unique_ptr<Backend> * out) override {
        cpu::CodePath path = cpu::best_code_path();
        if (!opt.variant.empty() && opt.variant != "auto") {
            if (!cpu::parse_code_path(opt.variant, &path))
                return error(SDGO_ERR_INVALID_ARGUMENT, "cpu: unknown code path \"%s\" (avx512, avx2, neon, scalar)",
                             opt.variant.c_str());
            if (!cpu::code_path_runnable(path))
                return error(SDGO_ERR_UNSUPPORTED, "cpu: code path %s cannot run on this CPU or build",
                             opt.variant.c_str());
        }
        if (opt.n_threads > kMaxThreads)
            return error(SDGO_ERR_INVALID_ARGUMENT, "cpu: %d threads is more than the %d allowed", opt.n_threads,
                         kMaxThreads);
        *out = std::make_unique<CpuBackend>(opt.n_threads, path);
        return Status();
    }

private:
    Status check(Buffer * b, size_t offset, size_t n, const char * what) const {
        if (!b || b->device() != this) return error(SDGO_ERR_INVALID_ARGUMENT, "cpu: %s on a foreign buffer", what);
        if (offset > b->size() || n > b->size() - offset)
            return error(SDGO_ERR_INVALID_ARGUMENT, "cpu: %s of [%zu, +%zu) outside a buffer of %zu bytes", what,
                         offset, n, b->size());
        return Status();
    }

    DeviceInfo info_;
};

// silu(group_norm(x)) where the group norm feeds nothing else becomes one
// fused group norm; the silu node turns into a view of its result.
int fuse_group_norm_silu(Graph & g) {
    std::vector<int> uses(g.n_tensors(), 0);
    for (size_t i = 0; i < g.n_tensors(); i++)
        for (Tensor * s : g.tensor(i)->src)
            if (s) uses[s->id]++;
    int fused = 0;
    for (Tensor * t : g.order()) {
        Tensor * gn = t->src[0];
        if (t->op != Op::silu || !gn || gn->op != Op::group_norm || gn->iparams[1] != 0) continue;
        if (uses[gn->id] != 1 || (gn->flags & kFlagOutput) || !same_shape(t, gn)) continue;
        gn->iparams[1] = 1;
        t->op = Op::view;
        t->view_src = gn;
        t->view_offs = 0;
        fused++;
    }
    return fused;
}

int default_threads(int n) { return n > 0 ? n : std::max(1, cpu::cpu_info().physical_cores); }

}  // namespace

namespace cpu {

Device * device() {
    static CpuDevice dev;
    return &dev;
}

}  // namespace cpu

CpuBackend::CpuBackend(int n_threads, cpu::CodePath path)
    : Backend(cpu::device()),
      owned_pool_(std::make_unique<ThreadPool>(default_threads(n_threads))),
      pool_(owned_pool_.get()),
      path_(path),
      scratch_(std::make_unique<ops::Scratch>()) {
    if (!cpu::code_path_runnable(path_)) path_ = cpu::CodePath::scalar;
}

CpuBackend::CpuBackend(ThreadPool * pool, cpu::CodePath path)
    : Backend(cpu::device()), pool_(pool), path_(path), scratch_(std::make_unique<ops::Scratch>()) {
    if (!pool_) {
        owned_pool_ = std::make_unique<ThreadPool>(1);
        pool_ = owned_pool_.get();
    }
    if (!cpu::code_path_runnable(path_)) path_ = cpu::CodePath::scalar;
}

CpuBackend::~CpuBackend() = default;

void CpuBackend::prepare_graph(Graph & g) { fuse_group_norm_silu(g); }

Status CpuBackend::compute(Graph & g) {
    SDGO_TRY(alloc_graph(g));
    ops::OpContext ctx{pool_, path_, scratch_.get(), min_parallel_work_};
    using clock = std::chrono::steady_clock;
    for (Tensor * t : g.order()) {
        if (t->op == Op::view) continue;
        if (should_abort()) return error(SDGO_ERR_CANCELED, "compute canceled");
        const clock::time_point t0 = profiling_ ? clock::now() : clock::time_point();
        Status st = ops::compute(ctx, t);
        if (!st.ok()) {
            return st.wrap(strprintf("%s '%s' %s", op_name(t->op), t->name.c_str(), t->shape_str().c_str()));
        }
        if (profiling_) add_time(t->op, std::chrono::duration<double>(clock::now() - t0).count());
    }
    return Status();
}

}  // namespace sdgo
