#include "core/backend.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include <unistd.h>

#include "core/planner.h"
#include "ops/ops.h"

namespace sdgo {

namespace {

class CpuBuffer final : public Buffer {
public:
    CpuBuffer(void * p, size_t n) : ptr_(p), size_(n) {}
    ~CpuBuffer() override { std::free(ptr_); }
    size_t size() const override { return size_; }
    void * base() override { return ptr_; }

private:
    void * ptr_;
    size_t size_;
};

// Storage bytes of t from its data pointer (contiguous range check).
Status check_range(const Tensor * t, size_t offset, size_t size, const char * what) {
    if (!t) return error(SDGO_ERR_INVALID_ARGUMENT, "%s: null tensor", what);
    if (!t->data) return error(SDGO_ERR_INVALID_ARGUMENT, "%s: tensor '%s' has no memory (graph not allocated?)", what,
                               t->name.c_str());
    if (!t->is_contiguous())
        return error(SDGO_ERR_INVALID_ARGUMENT, "%s: tensor '%s' is not contiguous", what, t->name.c_str());
    const size_t n = t->nbytes();
    if (offset > n || size > n - offset)
        return error(SDGO_ERR_INVALID_ARGUMENT, "%s: range [%zu, %zu) outside tensor '%s' of %zu bytes", what, offset,
                     offset + size, t->name.c_str(), n);
    return Status();
}

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

}  // namespace

void Backend::add_time(Op op, double seconds) {
    const size_t i = static_cast<size_t>(op);
    if (profile_.size() <= i) {
        const size_t old = profile_.size();
        profile_.resize(static_cast<size_t>(Op::count_));
        for (size_t k = old; k < profile_.size(); k++) profile_[k] = OpTime{static_cast<Op>(k), 0, 0.0};
    }
    profile_[i].count++;
    profile_[i].seconds += seconds;
}

std::vector<Backend::OpTime> Backend::profile() const {
    std::vector<OpTime> out;
    for (const OpTime & t : profile_)
        if (t.count > 0) out.push_back(t);
    std::sort(out.begin(), out.end(), [](const OpTime & a, const OpTime & b) { return a.seconds > b.seconds; });
    return out;
}

std::string Backend::profile_report() const {
    const std::vector<OpTime> p = profile();
    double total = 0;
    for (const OpTime & t : p) total += t.seconds;
    std::string out;
    for (const OpTime & t : p)
        out += strprintf("%-20s %8lld calls %10.3f ms %5.1f%%\n", op_name(t.op), (long long)t.count, t.seconds * 1e3,
                         total > 0 ? 100.0 * t.seconds / total : 0.0);
    return out;
}

CpuBackend::CpuBackend(int n_threads, cpu::CodePath path)
    : owned_pool_(std::make_unique<ThreadPool>(n_threads)),
      pool_(owned_pool_.get()),
      path_(path),
      scratch_(std::make_unique<ops::Scratch>()) {
    if (!cpu::code_path_runnable(path_)) path_ = cpu::CodePath::scalar;
}

CpuBackend::CpuBackend(ThreadPool * pool, cpu::CodePath path)
    : pool_(pool), path_(path), scratch_(std::make_unique<ops::Scratch>()) {
    if (!pool_) {
        owned_pool_ = std::make_unique<ThreadPool>(1);
        pool_ = owned_pool_.get();
    }
    if (!cpu::code_path_runnable(path_)) path_ = cpu::CodePath::scalar;
}

CpuBackend::~CpuBackend() = default;

Status CpuBackend::alloc_buffer(size_t size, std::unique_ptr<Buffer> * out) {
    const size_t n = (size == 0 ? kAlignment : (size + kAlignment - 1) & ~(kAlignment - 1));
    if (n < size) return error(SDGO_ERR_OUT_OF_MEMORY, "cpu: buffer of %zu bytes is too large", size);
    // More than the machine's physical memory cannot work (and some
    // allocators abort on absurd sizes instead of returning NULL).
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0 && n / static_cast<size_t>(page) > static_cast<size_t>(pages))
        return error(SDGO_ERR_OUT_OF_MEMORY, "cpu: a buffer of %zu bytes exceeds physical memory (%zu bytes)", n,
                     static_cast<size_t>(pages) * static_cast<size_t>(page));
    void * p = std::aligned_alloc(kAlignment, n);
    if (!p) return error(SDGO_ERR_OUT_OF_MEMORY, "cpu: cannot allocate a buffer of %zu bytes", size);
    *out = std::make_unique<CpuBuffer>(p, n);
    return Status();
}

bool CpuBackend::supports_op(const Tensor * node) const { return ops::supported(node); }

Status CpuBackend::alloc_graph(Graph & g) {
    if (!g.status().ok()) return g.status();
    if (g.backend() && g.backend() != this)
        return error(SDGO_ERR_INVALID_ARGUMENT, "cpu: graph is allocated on another backend (%s)", g.backend()->name());
    if (g.backend() == this) return Status();
    for (Tensor * t : g.order())
        if (!supports_op(t))
            return error(SDGO_ERR_UNSUPPORTED, "cpu: op %s on %s is not supported", op_name(t->op),
                         t->shape_str().c_str());
    fuse_group_norm_silu(g);
    MemoryPlan plan;
    SDGO_TRY(plan_memory(g, kAlignment, &plan));
    std::unique_ptr<Buffer> arena;
    SDGO_TRY(alloc_buffer(plan.arena_bytes, &arena));
    char * base = static_cast<char *>(arena->base());
    // Storage owners first, then views (a view is always created after its owner).
    for (size_t i = 0; i < g.n_tensors(); i++) {
        Tensor * t = g.tensor(i);
        if (plan.offset[i] != MemoryPlan::kNone) t->data = base + plan.offset[i];
    }
    for (size_t i = 0; i < g.n_tensors(); i++) {
        Tensor * t = g.tensor(i);
        if (t->view_src && t->view_src->data) t->data = static_cast<char *>(t->view_src->data) + t->view_offs;
    }
    g.attach(this, std::move(arena), plan.arena_bytes);
    return Status();
}

Status CpuBackend::set_tensor(Tensor * t, const void * data, size_t offset, size_t size) {
    SDGO_TRY(check_range(t, offset, size, "set_tensor"));
    if (size && !data) return error(SDGO_ERR_INVALID_ARGUMENT, "set_tensor: null data");
    if (size) std::memcpy(static_cast<char *>(t->data) + offset, data, size);
    return Status();
}

Status CpuBackend::get_tensor(const Tensor * t, void * data, size_t offset, size_t size) {
    SDGO_TRY(check_range(t, offset, size, "get_tensor"));
    if (size && !data) return error(SDGO_ERR_INVALID_ARGUMENT, "get_tensor: null data");
    if (size) std::memcpy(data, static_cast<const char *>(t->data) + offset, size);
    return Status();
}

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
