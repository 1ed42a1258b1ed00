// vk_compute.cpp — which ops the Vulkan backend runs, how each becomes a
// dispatch (shader, bound tensors, push constants), and the backend that
// records a graph's dispatches into one command buffer and runs it.
#include <algorithm>
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

// An f32 operand the shaders can address: element strides, and a span that
// fits one descriptor range (with room to align its start down).
bool addressable_f32(const Tensor * t, const Limits & lim) {
    if (!t || t->type != DType::f32) return false;
    for (int i = 0; i < 4; i++)
        if (t->nb[i] % sizeof(float) != 0 || t->ne[i] > 0xffffffffll) return false;
    return uint64_t(t->nbytes()) + lim.storage_align <= lim.max_storage_range &&
           t->nelements() < (int64_t(1) << 31);
}

// One dispatch: the shader, the tensors bound at bindings 0.., and the
// push constants (filled once the element offsets of the bindings are known).
struct Dispatch {
    const char * shader = nullptr;
    int n_bind = 0;
    const Tensor * bind[kMaxBindings] = {};
    uint32_t push[kPushBytes / 4] = {};
    uint32_t push_words = 0;
    uint32_t groups = 1;
};

uint32_t u32(int64_t v) { return static_cast<uint32_t>(v); }
uint32_t fbits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

// Shader and bindings of node (false: not an op of this backend).
bool plan(const Tensor * node, Dispatch * d) {
    if (unary_code(node->op) >= 0) {
        d->shader = "unary";
        d->n_bind = 2;
        d->bind[0] = node->src[0];
        d->bind[1] = node;
        return true;
    }
    if (binary_code(node->op) >= 0) {
        d->shader = "binary";
        d->n_bind = 3;
        d->bind[0] = node->src[0];
        d->bind[1] = node->src[1];
        d->bind[2] = node;
        return true;
    }
    return false;
}

// Push constants, given each binding's element offset within its range.
void encode(const Tensor * node, const uint32_t * eoff, const Limits & lim, Dispatch * d) {
    uint32_t * p = d->push;
    uint32_t k = 0;
    const int64_t n = node->nelements();
    for (int i = 0; i < 4; i++) p[k++] = u32(node->ne[i]);
    if (binary_code(node->op) >= 0) {
        const Tensor * a = node->src[0];
        const Tensor * b = node->src[1];
        for (int i = 0; i < 4; i++) p[k++] = u32(a->nb[i] / sizeof(float));
        for (int i = 0; i < 4; i++) p[k++] = u32(b->ne[i]);
        for (int i = 0; i < 4; i++) p[k++] = u32(b->nb[i] / sizeof(float));
        p[k++] = eoff[0];
        p[k++] = eoff[1];
        p[k++] = eoff[2];
        p[k++] = u32(binary_code(node->op));
        p[k++] = u32(n);
    } else {
        const Tensor * a = node->src[0];
        for (int i = 0; i < 4; i++) p[k++] = u32(a->nb[i] / sizeof(float));
        p[k++] = eoff[0];
        p[k++] = eoff[1];
        p[k++] = u32(unary_code(node->op));
        p[k++] = u32(n);
        p[k++] = fbits(node->fparams[0]);
        p[k++] = fbits(node->fparams[1]);
    }
    d->push_words = k;
    const int64_t groups = (n + 255) / 256;
    d->groups = u32(std::max<int64_t>(1, std::min<int64_t>(groups, std::min<uint32_t>(lim.max_groups_x, 65535))));
}

bool is_dispatch(const Tensor * t) { return !t->is_leaf() && t->op != Op::view; }

}  // namespace

bool VulkanDevice::supports_op(const Tensor * node) const {
    if (!node) return false;
    if (node->is_leaf() || node->op == Op::view) return true;  // no work
    Dispatch d;
    if (!plan(node, &d)) return false;
    if (!node->is_contiguous()) return false;
    for (int i = 0; i < d.n_bind; i++)
        if (!addressable_f32(d.bind[i], limits_)) return false;
    return true;
}

// ---- the backend -----------------------------------------------------------

namespace {

class VulkanBackend final : public Backend {
public:
    explicit VulkanBackend(VulkanDevice * dev) : Backend(dev), dev_(dev) {}
    ~VulkanBackend() override {
        VkDevice d = dev_->handle();
        if (dpool_) fn.DestroyDescriptorPool(d, dpool_, nullptr);
        if (fence_) fn.DestroyFence(d, fence_, nullptr);
        if (cpool_) fn.DestroyCommandPool(d, cpool_, nullptr);
    }

    Status init() {
        VkDevice d = dev_->handle();
        VkCommandPoolCreateInfo pi{};
        pi.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO;
        pi.queueFamilyIndex = dev_->queue_family();
        VkResult r = fn.CreateCommandPool(d, &pi, nullptr, &cpool_);
        if (r != VK_SUCCESS) return vk_error(r, "vkCreateCommandPool");
        VkCommandBufferAllocateInfo ai{};
        ai.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO;
        ai.commandPool = cpool_;
        ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
        ai.commandBufferCount = 1;
        r = fn.AllocateCommandBuffers(d, &ai, &cb_);
        if (r != VK_SUCCESS) return vk_error(r, "vkAllocateCommandBuffers");
        VkFenceCreateInfo fi{};
        fi.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO;
        r = fn.CreateFence(d, &fi, nullptr, &fence_);
        if (r != VK_SUCCESS) return vk_error(r, "vkCreateFence");
        return Status();
    }

    Status compute(Graph & g) override {
        SDGO_TRY(alloc_graph(g));
        std::vector<Tensor *> nodes;
        for (Tensor * t : g.order())
            if (is_dispatch(t)) nodes.push_back(t);
        if (nodes.empty()) return Status();
        if (should_abort()) return error(SDGO_ERR_CANCELED, "canceled");
        SDGO_TRY(reserve_sets(nodes.size()));
        VkDevice d = dev_->handle();
        VkResult r = fn.ResetDescriptorPool(d, dpool_, 0);
        if (r == VK_SUCCESS) r = fn.ResetCommandPool(d, cpool_, 0);
        VkCommandBufferBeginInfo bi{};
        bi.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
        bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
        if (r == VK_SUCCESS) r = fn.BeginCommandBuffer(cb_, &bi);
        if (r != VK_SUCCESS) return vk_error(r, "starting a command buffer");
        global_barrier(cb_, kAllStages, kAllWrites, kAllStages, kAllAccess);
        for (Tensor * t : nodes) SDGO_TRY(record(t));
        global_barrier(cb_, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT, kAllStages, kAllAccess);
        r = fn.EndCommandBuffer(cb_);
        if (r != VK_SUCCESS) return vk_error(r, "vkEndCommandBuffer");
        return dev_->submit_and_wait(cb_, fence_, "running a graph");
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
    Status record(const Tensor * node) {
        Dispatch dp;
        if (!plan(node, &dp))
            return error(SDGO_ERR_UNSUPPORTED, "vulkan: op %s is not supported", op_name(node->op));
        const Limits & lim = dev_->limits();
        VkDescriptorBufferInfo infos[kMaxBindings]{};
        uint32_t eoff[kMaxBindings]{};
        for (int i = 0; i < dp.n_bind; i++) {
            const Tensor * t = dp.bind[i];
            if (!t->buffer || t->buffer->device() != dev_)
                return error(SDGO_ERR_INVALID_ARGUMENT, "vulkan: %s '%s' has no memory on this device",
                             op_name(node->op), t->name.c_str());
            if (t->offset % sizeof(float) != 0)
                return error(SDGO_ERR_UNSUPPORTED, "vulkan: %s: operand at byte offset %zu is not float-aligned",
                             op_name(node->op), t->offset);
            const uint64_t start = t->offset - t->offset % lim.storage_align;
            const uint64_t need = t->offset - start + t->nbytes();
            const uint64_t range = std::min<uint64_t>(t->buffer->size() - start, lim.max_storage_range);
            if (need > range)
                return error(SDGO_ERR_UNSUPPORTED, "vulkan: %s: an operand of %zu bytes exceeds the device's range",
                             op_name(node->op), t->nbytes());
            infos[i].buffer = static_cast<VulkanBuffer *>(t->buffer)->handle();
            infos[i].offset = start;
            infos[i].range = range;
            eoff[i] = static_cast<uint32_t>((t->offset - start) / sizeof(float));
        }
        encode(node, eoff, lim, &dp);
        const Pipeline * pipe = nullptr;
        SDGO_TRY(dev_->pipeline(dp.shader, dp.n_bind, &pipe));

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

        fn.CmdBindPipeline(cb_, VK_PIPELINE_BIND_POINT_COMPUTE, pipe->pipeline);
        fn.CmdBindDescriptorSets(cb_, VK_PIPELINE_BIND_POINT_COMPUTE, pipe->layout, 0, 1, &set, 0, nullptr);
        fn.CmdPushConstants(cb_, pipe->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, dp.push_words * 4, dp.push);
        fn.CmdDispatch(cb_, dp.groups, 1, 1);
        global_barrier(cb_, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
                       VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
        return Status();
    }

    VulkanDevice * dev_;
    VkCommandPool cpool_ = VK_NULL_HANDLE;
    VkCommandBuffer cb_ = VK_NULL_HANDLE;
    VkFence fence_ = VK_NULL_HANDLE;
    VkDescriptorPool dpool_ = VK_NULL_HANDLE;
    size_t pool_sets_ = 0;
};

}  // namespace

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
