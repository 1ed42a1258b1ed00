// vk_compute.cpp — which ops the Vulkan backend runs, how each becomes a
// dispatch (shader, bound tensors, push constants), and the backend that
// records a graph's dispatches into one command buffer and runs it.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backends/vulkan/vk_device.h"

namespace sdgo::vk {

namespace {

// Op codes of shaders/unary.comp and shaders/binary.comp.
int unary_code(Op op) {
    switch (op) {
        case Op::cont: return 0;
        case Op::scale: return 1;
        case Op::silu: return 2;
        case Op::gelu: return 3;
        case Op::gelu_tanh: return 4;
        case Op::quick_gelu: return 5;
        case Op::clamp: return 6;
        case Op::relu: return 7;
        case Op::tanh: return 8;
        case Op::sigmoid: return 9;
        case Op::exp: return 10;
        case Op::sqrt: return 11;
        case Op::sqr: return 12;
        default: break;
    }
    return -1;
}

int binary_code(Op op) {
    switch (op) {
        case Op::add: return 0;
        case Op::sub: return 1;
        case Op::mul: return 2;
        case Op::div: return 3;
        default: break;
    }
    return -1;
}

// Type codes of shaders/common.glsl and cpy.comp; -1 for a type no shader reads.
int type_code(DType t) {
    switch (t) {
        case DType::f32: return 0;
        case DType::f16: return 1;
        case DType::bf16: return 2;
        case DType::q8_0: return 3;
        case DType::q4_0: return 4;
        case DType::q4_1: return 5;
        case DType::q5_0: return 6;
        case DType::q5_1: return 7;
        default: break;
    }
    return -1;
}

// How a shader declares a binding: `float x[]` / `int x[]` (element
// offsets; the tensor starts on a 4-byte boundary) or `uint w[]` read with
// byte addresses (weights of any type, 16-bit tensors; offsets in bytes).
enum class Kind { elems, bytes };

// One dispatch: the shader, the tensors bound at bindings 0.., how each is
// addressed, the push constants and the workgroup counts.
struct Dispatch {
    const char * shader = nullptr;
    int n_bind = 0;
    const Tensor * bind[kMaxBindings] = {};
    Kind kind[kMaxBindings] = {};
    uint32_t push[kPushBytes / 4] = {};
    uint32_t push_words = 0;
    uint32_t groups[3] = {1, 1, 1};
    int spec = -1;  // specialization constant 0 (weight type code, head size), -1: none

    void add(const Tensor * t, Kind k = Kind::elems) {
        bind[n_bind] = t;
        kind[n_bind] = k;
        n_bind++;
    }
};

// The output block of one workgroup of mul_mat and conv2d (64 x 64, as
// TILE in shaders/tile_gemm.glsl).
constexpr int64_t kTile = 64;

uint32_t u32(int64_t v) { return static_cast<uint32_t>(v); }
uint32_t fbits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

// The tensors a node reads and writes, in binding order (false: not an op
// of this backend). An absent optional operand (a bias) binds the output
// again, unread.
bool plan(const Tensor * node, Dispatch * d) {
    const Tensor * a = node->src[0];
    const Op op = node->op;
    if (unary_code(op) >= 0 && !(op == Op::cont && a->type != DType::f32)) {
        d->shader = "unary";
        d->add(a);
        d->add(node);
        return true;
    }
    if (binary_code(op) >= 0) {
        d->shader = "binary";
        d->add(a);
        d->add(node->src[1]);
        d->add(node);
        return true;
    }
    switch (op) {
        case Op::cont:
        case Op::cpy:
            d->shader = "cpy";
            d->add(a, Kind::bytes);
            d->add(node, Kind::bytes);
            return true;
        case Op::softmax: d->shader = "softmax"; break;
        case Op::sum_rows: case Op::mean_rows: case Op::sum: case Op::mean: d->shader = "reduce"; break;
        case Op::upscale: case Op::resize: case Op::pad: d->shader = "resample"; break;
        case Op::timestep_embedding: d->shader = "timestep"; break;
        case Op::layer_norm:
        case Op::group_norm:
            d->shader = "norm";
            d->add(a);
            d->add(node->src[1] ? node->src[1] : node);
            d->add(node->src[2] ? node->src[2] : node);
            d->add(node);
            return true;
        case Op::mul_mat:
        case Op::conv2d:
            d->shader = op == Op::mul_mat ? "mul_mat" : "conv2d";
            d->spec = type_code(a->type);
            d->add(a, Kind::bytes);
            d->add(node->src[1]);
            d->add(node->src[2] ? node->src[2] : node);
            d->add(node);
            return true;
        case Op::get_rows:
            d->shader = "get_rows";
            d->add(a, Kind::bytes);
            d->add(node->src[1]);
            d->add(node);
            return true;
        case Op::concat:
            d->shader = "concat";
            d->add(a);
            d->add(node->src[1]);
            d->add(node);
            return true;
        case Op::attention:
            d->shader = "attention";
            d->spec = u32(a->ne[0]);  // the head size
            d->add(a);
            d->add(node->src[1]);
            d->add(node->src[2]);
            d->add(node);
            return true;
        default: return false;
    }
    d->add(a);
    d->add(node);
    return true;
}

// Strides in elements of the tensor's type.
void strides(const Tensor * t, uint32_t * p, uint32_t * k) {
    const size_t es = dtype_size(t->type);
    for (int i = 0; i < 4; i++) p[(*k)++] = u32(t->nb[i] / es);
}

uint32_t grid(int64_t n, int64_t per_group, uint32_t max_x) {
    return u32(std::max<int64_t>(1, std::min<int64_t>((n + per_group - 1) / per_group, max_x)));
}

// Push constants and workgroup counts, given each binding's offset (bytes
// for Kind::bytes bindings, elements otherwise) within its bound range.
void encode(const Tensor * node, const uint32_t * off, const Limits & lim, Dispatch * d) {
    uint32_t * p = d->push;
    uint32_t k = 0;
    const Tensor * a = node->src[0];
    const int64_t n = node->nelements();
    const uint32_t max_x = std::min<uint32_t>(lim.max_groups_x, 65535);
    auto ne = [&](const Tensor * t) { for (int i = 0; i < 4; i++) p[k++] = u32(t->ne[i]); };
    // One workgroup per unit, as a 2-D grid when there are more than max_x.
    auto per_unit = [&](int64_t units) {
        d->groups[0] = u32(std::max<int64_t>(1, std::min<int64_t>(units, max_x)));
        d->groups[1] = u32(std::max<int64_t>(1, (units + max_x - 1) / max_x));
    };
    switch (node->op) {
        case Op::add: case Op::sub: case Op::mul: case Op::div:
            ne(node);
            strides(a, p, &k);
            ne(node->src[1]);
            strides(node->src[1], p, &k);
            p[k++] = off[0];
            p[k++] = off[1];
            p[k++] = off[2];
            p[k++] = u32(binary_code(node->op));
            p[k++] = u32(n);
            d->groups[0] = grid(n, 256, max_x);
            break;
        case Op::cont:
        case Op::cpy:
            if (node->op == Op::cpy || a->type != DType::f32) {
                ne(node);
                strides(a, p, &k);
                p[k++] = off[0];
                p[k++] = off[1];
                p[k++] = u32(type_code(a->type));
                p[k++] = u32(type_code(node->type));
                p[k++] = u32(n);
                d->groups[0] = grid(node->type == DType::f32 ? n : n / 2, 256, max_x);
                break;
            }
            [[fallthrough]];
        case Op::scale: case Op::silu: case Op::gelu: case Op::gelu_tanh: case Op::quick_gelu: case Op::clamp:
        case Op::relu: case Op::tanh: case Op::sigmoid: case Op::exp: case Op::sqrt: case Op::sqr:
            ne(node);
            strides(a, p, &k);
            p[k++] = off[0];
            p[k++] = off[1];
            p[k++] = u32(unary_code(node->op));
            p[k++] = u32(n);
            p[k++] = fbits(node->fparams[0]);
            p[k++] = fbits(node->fparams[1]);
            d->groups[0] = grid(n, 256, max_x);
            break;
        case Op::softmax:
            ne(node);
            strides(a, p, &k);
            p[k++] = off[0];
            p[k++] = off[1];
            p[k++] = fbits(node->fparams[0]);
            p[k++] = u32(node->iparams[0] != 0);
            per_unit(node->ne[1] * node->ne[2] * node->ne[3]);
            break;
        case Op::layer_norm:
        case Op::group_norm: {
            const bool group = node->op == Op::group_norm;
            ne(node);
            strides(a, p, &k);
            for (int i = 0; i < 4; i++) p[k++] = off[i];
            p[k++] = group ? 1 : 0;
            p[k++] = group ? u32(node->iparams[0]) : 1;
            p[k++] = node->src[1] ? 1 : 0;
            p[k++] = node->src[2] ? 1 : 0;
            p[k++] = group && node->iparams[1] != 0;
            p[k++] = fbits(node->fparams[0]);
            per_unit(group ? node->iparams[0] * node->ne[3] : node->ne[1] * node->ne[2] * node->ne[3]);
            break;
        }
        case Op::mul_mat: {
            const Tensor * x = node->src[1];
            p[k++] = u32(a->ne[0]);
            p[k++] = u32(node->ne[0]);
            p[k++] = u32(node->ne[1]);
            p[k++] = u32(node->ne[2]);
            p[k++] = u32(node->ne[3]);
            p[k++] = u32(a->ne[2]);
            p[k++] = u32(a->ne[3]);
            p[k++] = u32(a->nb[1]);
            p[k++] = u32(a->nb[2]);
            p[k++] = u32(a->nb[3]);
            p[k++] = off[0];
            p[k++] = u32(type_code(a->type));
            strides(x, p, &k);
            p[k++] = off[1];
            p[k++] = off[2];
            p[k++] = off[3];
            p[k++] = node->src[2] ? 1 : 0;
            d->groups[0] = u32((node->ne[0] + kTile - 1) / kTile);
            d->groups[1] = u32((node->ne[1] + kTile - 1) / kTile);
            d->groups[2] = u32(node->ne[2] * node->ne[3]);
            break;
        }
        case Op::conv2d: {
            const Tensor * x = node->src[1];
            ne(node);
            p[k++] = u32(a->ne[0]);
            p[k++] = u32(a->ne[1]);
            p[k++] = u32(a->ne[2]);
            p[k++] = u32(x->ne[0]);
            p[k++] = u32(x->ne[1]);
            for (int i = 0; i < 4; i++) p[k++] = u32(node->iparams[i]);
            strides(x, p, &k);
            p[k++] = off[1];
            p[k++] = off[0];
            p[k++] = u32(type_code(a->type));
            p[k++] = off[2];
            p[k++] = node->src[2] ? 1 : 0;
            p[k++] = off[3];
            d->groups[0] = u32((node->ne[0] * node->ne[1] + kTile - 1) / kTile);
            d->groups[1] = u32((node->ne[2] + kTile - 1) / kTile);
            d->groups[2] = u32(node->ne[3]);
            break;
        }
        case Op::get_rows: {
            const Tensor * ix = node->src[1];
            p[k++] = u32(node->ne[0]);
            p[k++] = u32(node->ne[1]);
            p[k++] = u32(a->ne[1]);
            p[k++] = u32(a->nb[1]);
            p[k++] = off[0];
            p[k++] = u32(type_code(a->type));
            p[k++] = u32(ix->nb[0] / 4);
            p[k++] = u32(ix->nb[1] / 4);
            p[k++] = off[1];
            p[k++] = off[2];
            p[k++] = u32(n);
            d->groups[0] = grid(n, 256, max_x);
            break;
        }
        case Op::concat:
            ne(node);
            p[k++] = u32(node->iparams[0]);
            p[k++] = u32(a->ne[node->iparams[0]]);
            strides(a, p, &k);
            strides(node->src[1], p, &k);
            p[k++] = off[0];
            p[k++] = off[1];
            p[k++] = off[2];
            p[k++] = u32(n);
            d->groups[0] = grid(n, 256, max_x);
            break;
        case Op::upscale: case Op::resize: case Op::pad:
            ne(node);
            ne(a);
            strides(a, p, &k);
            p[k++] = off[0];
            p[k++] = off[1];
            p[k++] = u32(n);
            p[k++] = node->op == Op::upscale ? 0 : node->op == Op::resize ? 1 : 2;
            p[k++] = node->op == Op::upscale ? u32(node->iparams[0]) : 1;
            for (int i = 0; i < 4; i++) p[k++] = node->op == Op::pad ? u32(node->iparams[2 * i]) : 0;
            d->groups[0] = grid(n, 256, max_x);
            break;
        case Op::timestep_embedding:
            p[k++] = u32(node->iparams[0]);
            p[k++] = u32(a->ne[0]);
            p[k++] = u32(node->iparams[1] != 0);
            p[k++] = u32(a->nb[0] / 4);
            p[k++] = off[0];
            p[k++] = off[1];
            p[k++] = fbits(std::log(node->fparams[0]));
            p[k++] = fbits(node->fparams[1]);
            d->groups[0] = grid(n, 256, max_x);
            break;
        case Op::sum_rows: case Op::mean_rows: case Op::sum: case Op::mean: {
            const bool rows = node->op == Op::sum_rows || node->op == Op::mean_rows;
            ne(a);
            strides(a, p, &k);
            p[k++] = off[0];
            p[k++] = off[1];
            p[k++] = node->op == Op::sum_rows ? 0 : node->op == Op::mean_rows ? 1 : node->op == Op::sum ? 2 : 3;
            if (rows) per_unit(a->ne[1] * a->ne[2] * a->ne[3]);
            break;
        }
        case Op::attention: {
            const Tensor *q = a, *kk = node->src[1], *v = node->src[2];
            p[k++] = u32(q->ne[0]);
            p[k++] = u32(q->ne[1]);
            p[k++] = u32(q->ne[2]);
            p[k++] = u32(q->ne[3]);
            p[k++] = u32(kk->ne[1]);
            strides(q, p, &k);
            strides(kk, p, &k);
            strides(v, p, &k);
            for (int i = 0; i < 4; i++) p[k++] = off[i];
            p[k++] = fbits(node->fparams[0]);
            p[k++] = u32(node->iparams[0] != 0);
            d->groups[0] = u32((q->ne[1] + 63) / 64);
            d->groups[1] = u32(q->ne[2] * q->ne[3]);
            break;
        }
        default: break;
    }
    d->push_words = k;
}

// The operand fits the shaders' 32-bit indexing and one descriptor range,
// and its strides are whole elements.
bool addressable(const Tensor * t, const Limits & lim) {
    if (!t) return false;
    const size_t es = dtype_size(t->type);
    if (es == 0) return false;
    const bool block = dtype_block(t->type) > 1;
    for (int i = 0; i < 4; i++) {
        if (t->ne[i] > 0x7fffffffll) return false;
        if (!block && t->nb[i] % es != 0) return false;
    }
    if (block && t->nb[0] != es) return false;
    return uint64_t(t->nbytes()) + lim.storage_align <= lim.max_storage_range &&
           t->nelements() < (int64_t(1) << 31);
}

bool is_dispatch(const Tensor * t) { return !t->is_leaf() && t->op != Op::view; }

// Type and shape rules of each op beyond what the graph builder checks.
bool op_rules(const Tensor * node) {
    const Tensor * a = node->src[0];
    switch (node->op) {
        case Op::cont:
            return is_float_type(a->type) && (a->type == DType::f32 || node->nelements() % 2 == 0);
        case Op::cpy:
            return is_float_type(a->type) && is_float_type(node->type) &&
                   (node->type == DType::f32 || node->nelements() % 2 == 0);
        case Op::mul_mat:
            return type_code(a->type) >= 0 && node->src[1]->type == DType::f32 && a->ne[2] > 0 && a->ne[3] > 0 &&
                   node->ne[2] % a->ne[2] == 0 && node->ne[3] % a->ne[3] == 0 &&
                   (node->ne[0] + kTile - 1) / kTile <= 65535 && (node->ne[1] + kTile - 1) / kTile <= 65535 &&
                   node->ne[2] * node->ne[3] <= 65535;
        case Op::conv2d:
            return is_float_type(a->type) && a->is_contiguous() && node->src[1]->type == DType::f32 &&
                   (node->ne[0] * node->ne[1] + kTile - 1) / kTile <= 65535 &&
                   (node->ne[2] + kTile - 1) / kTile <= 65535 && node->ne[3] <= 65535;
        case Op::get_rows:
            return type_code(a->type) >= 0 && node->src[1]->type == DType::i32 && a->ne[2] == 1 && a->ne[3] == 1 &&
                   node->src[1]->ne[2] == 1 && node->src[1]->ne[3] == 1;
        case Op::attention:
            return a->ne[0] <= 256 && (a->ne[1] + 63) / 64 <= 65535 && a->ne[2] * a->ne[3] <= 65535;
        default: break;
    }
    // Every other op: f32 in, f32 out.
    for (const Tensor * s : node->src)
        if (s && s->type != DType::f32) return false;
    return node->type == DType::f32;
}

}  // namespace

bool VulkanDevice::supports_op(const Tensor * node) const {
    if (!node) return false;
    if (node->is_leaf() || node->op == Op::view) return true;  // no work
    Dispatch d;
    if (!plan(node, &d) || !op_rules(node)) return false;
    if (!node->is_contiguous()) return false;
    for (int i = 0; i < d.n_bind; i++)
        if (!addressable(d.bind[i], limits_)) return false;
    return true;
}

// ---- the backend -----------------------------------------------------------

namespace {

class VulkanBackend final : public Backend {
public:
    explicit VulkanBackend(VulkanDevice * dev) : Backend(dev), dev_(dev) {}
    ~VulkanBackend() override {
        VkDevice d = dev_->handle();
        for (int slot = 0; slot < 2; slot++) (void)wait(slot);
        drop_recording();
        if (dpool_) fn.DestroyDescriptorPool(d, dpool_, nullptr);
        for (VkFence f : fence_)
            if (f) fn.DestroyFence(d, f, nullptr);
        if (cpool_) fn.DestroyCommandPool(d, cpool_, nullptr);
    }

    Status init() {
        VkDevice d = dev_->handle();
        VkCommandPoolCreateInfo pi{};
        pi.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO;
        pi.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
        pi.queueFamilyIndex = dev_->queue_family();
        VkResult r = fn.CreateCommandPool(d, &pi, nullptr, &cpool_);
        if (r != VK_SUCCESS) return vk_error(r, "vkCreateCommandPool");
        for (VkFence & f : fence_) {
            VkFenceCreateInfo fi{};
            fi.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO;
            r = fn.CreateFence(d, &fi, nullptr, &f);
            if (r != VK_SUCCESS) return vk_error(r, "vkCreateFence");
        }
        return Status();
    }

    // The graph's dispatches are recorded once, into one command buffer per
    // kChunk nodes, the first time the graph is computed (a graph's
    // addresses and parameters are fixed once it is allocated), and replayed
    // by every later compute of the same graph: a sampler step costs a few
    // submissions, not a recording. The chunks go out in turn with two
    // fences, so the device runs one while the host checks for a cancel
    // request before the next; a cancel is honoured between chunks (within
    // kChunk nodes of the one running), never by abandoning work the device
    // still reads.
    Status compute(Graph & g) override {
        SDGO_TRY(alloc_graph(g));
        if (g.serial() != rec_serial_) SDGO_TRY(record_graph(g));
        Status st;
        for (size_t c = 0; c < rec_cbs_.size() && st.ok(); c++) {
            const int slot = int(c % 2);
            st = wait(slot);
            if (st.ok() && should_abort()) st = error(SDGO_ERR_CANCELED, "canceled");
            if (st.ok()) {
                st = dev_->submit(rec_cbs_[c], fence_[slot], "running a graph");
                busy_[slot] = st.ok();
            }
        }
        // Whatever happened, nothing of this graph may still be running.
        for (int slot = 0; slot < 2; slot++) {
            Status w = wait(slot);
            if (st.ok()) st = w;
        }
        return st;
    }

    int64_t recordings() const { return recordings_; }

private:
    static constexpr size_t kChunk = 64;

    Status wait(int slot) {
        if (!busy_[slot]) return Status();
        busy_[slot] = false;
        return dev_->wait(fence_[slot], "running a graph");
    }

    // Frees the recorded command buffers (nothing of them is running: every
    // compute waits for all its chunks).
    void drop_recording() {
        if (!rec_cbs_.empty())
            fn.FreeCommandBuffers(dev_->handle(), cpool_, static_cast<uint32_t>(rec_cbs_.size()), rec_cbs_.data());
        rec_cbs_.clear();
        rec_serial_ = 0;
    }

    // Records every dispatch of g, replacing the previous recording.
    Status record_graph(Graph & g) {
        drop_recording();
        std::vector<Tensor *> nodes;
        for (Tensor * t : g.order())
            if (is_dispatch(t)) nodes.push_back(t);
        if (nodes.empty()) {
            rec_serial_ = g.serial();
            return Status();
        }
        SDGO_TRY(reserve_sets(nodes.size()));
        VkResult r = fn.ResetDescriptorPool(dev_->handle(), dpool_, 0);
        if (r != VK_SUCCESS) return vk_error(r, "vkResetDescriptorPool");
        std::vector<VkCommandBuffer> cbs((nodes.size() + kChunk - 1) / kChunk, VK_NULL_HANDLE);
        VkCommandBufferAllocateInfo ai{};
        ai.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO;
        ai.commandPool = cpool_;
        ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
        ai.commandBufferCount = static_cast<uint32_t>(cbs.size());
        r = fn.AllocateCommandBuffers(dev_->handle(), &ai, cbs.data());
        if (r != VK_SUCCESS) return vk_error(r, "vkAllocateCommandBuffers");
        rec_cbs_ = std::move(cbs);
        for (size_t c = 0; c < rec_cbs_.size(); c++) {
            Status st = record_chunk(nodes, c * kChunk, std::min(nodes.size(), (c + 1) * kChunk), rec_cbs_[c]);
            if (!st.ok()) {
                drop_recording();
                return st;
            }
        }
        rec_serial_ = g.serial();
        recordings_++;
        return Status();
    }

    // Records nodes [from, to) into cb, between barriers that order it after
    // everything submitted before (the host's and the previous chunk's
    // writes) and make its writes visible to what follows.
    Status record_chunk(const std::vector<Tensor *> & nodes, size_t from, size_t to, VkCommandBuffer cb) {
        VkCommandBufferBeginInfo bi{};
        bi.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
        VkResult r = fn.BeginCommandBuffer(cb, &bi);
        if (r != VK_SUCCESS) return vk_error(r, "starting a command buffer");
        global_barrier(cb, kAllStages, kAllWrites, kAllStages, kAllAccess);
        for (size_t i = from; i < to; i++) SDGO_TRY(record(cb, nodes[i]));
        global_barrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT, kAllStages, kAllAccess);
        r = fn.EndCommandBuffer(cb);
        if (r != VK_SUCCESS) return vk_error(r, "vkEndCommandBuffer");
        return Status();
    }

private:
    // A descriptor pool with room for n sets of kMaxBindings buffers.
    Status reserve_sets(size_t n) {
        if (n <= pool_sets_) return Status();
        const size_t want = std::max<size_t>(n, pool_sets_ * 2);
        VkDevice d = dev_->handle();
        if (dpool_) fn.DestroyDescriptorPool(d, dpool_, nullptr);
        dpool_ = VK_NULL_HANDLE;
        pool_sets_ = 0;
        VkDescriptorPoolSize ps{};
        ps.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        ps.descriptorCount = static_cast<uint32_t>(want * kMaxBindings);
        VkDescriptorPoolCreateInfo ci{};
        ci.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO;
        ci.maxSets = static_cast<uint32_t>(want);
        ci.poolSizeCount = 1;
        ci.pPoolSizes = &ps;
        const VkResult r = fn.CreateDescriptorPool(d, &ci, nullptr, &dpool_);
        if (r != VK_SUCCESS) return vk_error(r, "vkCreateDescriptorPool");
        pool_sets_ = want;
        return Status();
    }

    // Records node: its descriptor set, push constants, dispatch, and a
    // barrier that makes its writes visible to the nodes after it.
    Status record(VkCommandBuffer cb, const Tensor * node) {
        Dispatch dp;
        if (!plan(node, &dp))
            return error(SDGO_ERR_UNSUPPORTED, "vulkan: op %s is not supported", op_name(node->op));
        const Limits & lim = dev_->limits();
        VkDescriptorBufferInfo infos[kMaxBindings]{};
        uint32_t off[kMaxBindings]{};
        for (int i = 0; i < dp.n_bind; i++) {
            const Tensor * t = dp.bind[i];
            if (!t->buffer || t->buffer->device() != dev_)
                return error(SDGO_ERR_INVALID_ARGUMENT, "vulkan: %s '%s' has no memory on this device",
                             op_name(node->op), t->name.c_str());
            // Element-addressed operands start on their element; byte-addressed
            // ones on 2 bytes (16-bit loads), blocks on a block.
            const size_t need_align = dp.kind[i] == Kind::elems ? 4 : 2;
            if (t->offset % need_align != 0)
                return error(SDGO_ERR_UNSUPPORTED, "vulkan: %s: an operand at byte offset %zu is misaligned",
                             op_name(node->op), t->offset);
            const uint64_t start = t->offset - t->offset % lim.storage_align;
            const uint64_t need = t->offset - start + t->nbytes();
            const uint64_t range = std::min<uint64_t>(t->buffer->size() - start, lim.max_storage_range);
            if (need > range)
                return error(SDGO_ERR_UNSUPPORTED, "vulkan: %s: an operand of %zu bytes exceeds the device's range",
                             op_name(node->op), t->nbytes());
            infos[i].buffer = static_cast<VulkanBuffer *>(t->buffer)->handle();
            infos[i].offset = start;
            infos[i].range = range & ~uint64_t(3);
            const uint64_t rem = t->offset - start;
            off[i] = static_cast<uint32_t>(dp.kind[i] == Kind::elems ? rem / 4 : rem);
        }
        encode(node, off, lim, &dp);
        const Pipeline * pipe = nullptr;
        SDGO_TRY(dev_->pipeline(dp.shader, dp.n_bind, dp.spec, &pipe));

        VkDevice d = dev_->handle();
        VkDescriptorSetAllocateInfo ai{};
        ai.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO;
        ai.descriptorPool = dpool_;
        ai.descriptorSetCount = 1;
        ai.pSetLayouts = &pipe->set_layout;
        VkDescriptorSet set = VK_NULL_HANDLE;
        const VkResult r = fn.AllocateDescriptorSets(d, &ai, &set);
        if (r != VK_SUCCESS) return vk_error(r, "vkAllocateDescriptorSets");
        VkWriteDescriptorSet w[kMaxBindings]{};
        for (int i = 0; i < dp.n_bind; i++) {
            w[i].sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
            w[i].dstSet = set;
            w[i].dstBinding = static_cast<uint32_t>(i);
            w[i].descriptorCount = 1;
            w[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
            w[i].pBufferInfo = &infos[i];
        }
        fn.UpdateDescriptorSets(d, static_cast<uint32_t>(dp.n_bind), w, 0, nullptr);

        fn.CmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipe->pipeline);
        fn.CmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipe->layout, 0, 1, &set, 0, nullptr);
        fn.CmdPushConstants(cb, pipe->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, dp.push_words * 4, dp.push);
        fn.CmdDispatch(cb, dp.groups[0], dp.groups[1], dp.groups[2]);
        global_barrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
                       VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
        return Status();
    }

    VulkanDevice * dev_;
    VkCommandPool cpool_ = VK_NULL_HANDLE;
    std::vector<VkCommandBuffer> rec_cbs_;  // the recorded graph's chunks
    uint64_t rec_serial_ = 0;               // its Graph::serial(), 0: none
    int64_t recordings_ = 0;
    VkFence fence_[2] = {VK_NULL_HANDLE, VK_NULL_HANDLE};
    bool busy_[2] = {false, false};
    VkDescriptorPool dpool_ = VK_NULL_HANDLE;
    size_t pool_sets_ = 0;
};

}  // namespace

int64_t recordings(const Backend * b) {
    const auto * vb = dynamic_cast<const VulkanBackend *>(b);
    return vb ? vb->recordings() : -1;
}

Status VulkanDevice::new_backend(const BackendOptions & opt, std::unique_ptr<Backend> * out) {
    if (!opt.variant.empty() && opt.variant != "auto")
        return error(SDGO_ERR_INVALID_ARGUMENT, "vulkan: unknown code variant \"%s\" (the Vulkan backend has one)",
                     opt.variant.c_str());
    auto be = std::make_unique<VulkanBackend>(this);
    SDGO_TRY(be->init());
    *out = std::move(be);
    return Status();
}

}  // namespace sdgo::vk
