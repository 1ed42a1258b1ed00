#include "core/backend.h"

#include <algorithm>

#include "core/planner.h"

namespace sdgo {

namespace {

// The tensor's storage range [offset, offset + size) as a contiguous range
// of its buffer.
Status check_range(const Backend & be, const Tensor * t, size_t offset, size_t size, const char * what) {
    if (!t) return error(SDGO_ERR_INVALID_ARGUMENT, "%s: null tensor", what);
    if (!t->buffer)
        return error(SDGO_ERR_INVALID_ARGUMENT, "%s: tensor '%s' has no memory (graph not allocated?)", what,
                     t->name.c_str());
    if (t->buffer->device() != be.device())
        return error(SDGO_ERR_INVALID_ARGUMENT, "%s: tensor '%s' lives on another device", what, t->name.c_str());
    if (!t->is_contiguous())
        return error(SDGO_ERR_INVALID_ARGUMENT, "%s: tensor '%s' is not contiguous", what, t->name.c_str());
    const size_t n = t->nbytes();
    if (offset > n || size > n - offset)
        return error(SDGO_ERR_INVALID_ARGUMENT, "%s: range [%zu, %zu) outside tensor '%s' of %zu bytes", what, offset,
                     offset + size, t->name.c_str(), n);
    if (t->offset + n > t->buffer->size())
        return error(SDGO_ERR_INTERNAL, "%s: tensor '%s' extends past its buffer", what, t->name.c_str());
    return Status();
}

}  // namespace

const char * device_type_name(DeviceType t) {
    switch (t) {
        case DeviceType::cpu: return "cpu";
        case DeviceType::gpu_discrete: return "discrete-gpu";
        case DeviceType::gpu_integrated: return "integrated-gpu";
        case DeviceType::gpu_virtual: return "virtual-gpu";
        case DeviceType::other: break;
    }
    return "other";
}

Status Device::wrap_host(const void * ptr, size_t size, std::unique_ptr<Buffer> * out) {
    (void)ptr;
    (void)size;
    out->reset();
    return error(SDGO_ERR_UNSUPPORTED, "%s: cannot use host memory directly", info().backend.c_str());
}

Status Backend::alloc_graph(Graph & g) {
    if (!g.status().ok()) return g.status();
    if (g.backend() && g.backend() != this)
        return error(SDGO_ERR_INVALID_ARGUMENT, "%s: graph is allocated on another backend", name());
    if (g.backend() == this) return Status();
    for (Tensor * t : g.leaves()) {
        if (!(t->flags & kFlagWeight)) continue;
        if (!t->buffer || t->buffer->device() != device_)
            return error(SDGO_ERR_INVALID_ARGUMENT, "%s: weight '%s' does not live on this device", name(),
                         t->name.c_str());
    }
    for (Tensor * t : g.order())
        if (!device_->supports_op(t))
            return error(SDGO_ERR_UNSUPPORTED, "%s: op %s on %s%s%s is not supported", name(), op_name(t->op),
                         t->shape_str().c_str(), t->src[0] ? " from " : "",
                         t->src[0] ? t->src[0]->shape_str().c_str() : "");
    prepare_graph(g);
    MemoryPlan plan;
    SDGO_TRY(plan_memory(g, Device::kAlignment, &plan));
    std::unique_ptr<Buffer> arena;
    SDGO_TRY(device_->alloc_buffer(plan.arena_bytes, &arena));
    Buffer * buf = arena.get();
    char * base = static_cast<char *>(buf->base());
    // Storage owners first, then views (a view is always created after its owner).
    for (size_t i = 0; i < g.n_tensors(); i++) {
        Tensor * t = g.tensor(i);
        if (plan.offset[i] == MemoryPlan::kNone) continue;
        t->buffer = buf;
        t->offset = plan.offset[i];
        t->data = base ? base + plan.offset[i] : nullptr;
    }
    for (size_t i = 0; i < g.n_tensors(); i++) {
        Tensor * t = g.tensor(i);
        if (!t->view_src || !t->view_src->buffer) continue;
        t->buffer = t->view_src->buffer;
        t->offset = t->view_src->offset + t->view_offs;
        t->data = t->view_src->data ? static_cast<char *>(t->view_src->data) + t->view_offs : nullptr;
    }
    g.attach(this, std::move(arena), plan.arena_bytes);
    return Status();
}

Status Backend::set_tensor(Tensor * t, const void * data, size_t offset, size_t size) {
    SDGO_TRY(check_range(*this, t, offset, size, "set_tensor"));
    if (size && !data) return error(SDGO_ERR_INVALID_ARGUMENT, "set_tensor: null data");
    if (!size) return Status();
    return device_->write(t->buffer, t->offset + offset, data, size);
}

Status Backend::get_tensor(const Tensor * t, void * data, size_t offset, size_t size) {
    SDGO_TRY(check_range(*this, t, offset, size, "get_tensor"));
    if (size && !data) return error(SDGO_ERR_INVALID_ARGUMENT, "get_tensor: null data");
    if (!size) return Status();
    return device_->read(t->buffer, t->offset + offset, data, size);
}

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

}  // namespace sdgo
