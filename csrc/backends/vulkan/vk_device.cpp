// vk_device.cpp — the Vulkan instance, devices, memory and pipelines.
#include "backends/vulkan/vk_device.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "backends/vulkan/vk_shaders.h"
#include "base/log.h"

namespace sdgo::vk {

Status vk_error(VkResult r, const char * what) {
    const int32_t code = r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY
                             ? SDGO_ERR_OUT_OF_MEMORY
                             : SDGO_ERR_INTERNAL;
    return error(code, "vulkan: %s: %s", what, result_name(r));
}

#define VK_TRY(expr, what)                      \
    do {                                        \
        const VkResult r_ = (expr);             \
        if (r_ != VK_SUCCESS) return vk_error(r_, what); \
    } while (0)

void global_barrier(VkCommandBuffer cb, VkPipelineStageFlags src, VkAccessFlags src_access,
                    VkPipelineStageFlags dst, VkAccessFlags dst_access) {
    VkMemoryBarrier mb{};
    mb.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER;
    mb.srcAccessMask = src_access;
    mb.dstAccessMask = dst_access;
    fn.CmdPipelineBarrier(cb, src, dst, 0, 1, &mb, 0, nullptr, 0, nullptr);
}

// ---- buffers -------------------------------------------------------------

VulkanBuffer::~VulkanBuffer() {
    VkDevice d = dev_->handle();
    if (buf_) fn.DestroyBuffer(d, buf_, nullptr);
    if (mem_) fn.FreeMemory(d, mem_, nullptr);  // unmaps it too
}

Device * VulkanBuffer::device() const { return dev_; }

// ---- device --------------------------------------------------------------

namespace {

const char * const kMemoryHint =
    "try a smaller image or batch, --vae-tiling on, a quantized model (--type q8_0 or q4_0), or --backend cpu";

DeviceType device_type(VkPhysicalDeviceType t) {
    switch (t) {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return DeviceType::gpu_discrete;
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return DeviceType::gpu_integrated;
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return DeviceType::gpu_virtual;
        case VK_PHYSICAL_DEVICE_TYPE_CPU: return DeviceType::cpu;
        default: break;
    }
    return DeviceType::other;
}

// A memory type among `bits` with all of `want`, or -1.
int find_memory_type(const VkPhysicalDeviceMemoryProperties & mp, uint32_t bits, VkMemoryPropertyFlags want) {
    for (uint32_t i = 0; i < mp.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (mp.memoryTypes[i].propertyFlags & want) == want) return static_cast<int>(i);
    return -1;
}

}  // namespace

Status VulkanDevice::create(VkInstance inst, VkPhysicalDevice pd, int index, const DeviceOptions & opt,
                            std::unique_ptr<VulkanDevice> * out) {
    (void)inst;
    std::unique_ptr<VulkanDevice> d(new VulkanDevice());
    SDGO_TRY(d->init(pd, index, opt));
    *out = std::move(d);
    return Status();
}

Status VulkanDevice::init(VkPhysicalDevice pd, int index, const DeviceOptions & opt) {
    pd_ = pd;
    opt_ = opt;
    VkPhysicalDeviceMaintenance3Properties m3{};
    m3.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES;
    VkPhysicalDeviceProperties2 p2{};
    p2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2;
    p2.pNext = &m3;
    fn.GetPhysicalDeviceProperties2(pd, &p2);
    const VkPhysicalDeviceProperties & p = p2.properties;
    if (p.apiVersion < VK_API_VERSION_1_1)
        return error(SDGO_ERR_UNSUPPORTED, "vulkan: %s supports Vulkan %u.%u; 1.1 is needed", p.deviceName,
                     VK_API_VERSION_MAJOR(p.apiVersion), VK_API_VERSION_MINOR(p.apiVersion));
    fn.GetPhysicalDeviceMemoryProperties(pd, &mem_props_);

    limits_.max_storage_range = p.limits.maxStorageBufferRange;
    if (opt.max_storage_range) limits_.max_storage_range = std::min<uint64_t>(limits_.max_storage_range, opt.max_storage_range);
    limits_.storage_align = std::max<uint64_t>(p.limits.minStorageBufferOffsetAlignment, 4);
    limits_.max_allocation = m3.maxMemoryAllocationSize ? m3.maxMemoryAllocationSize : (uint64_t(1) << 31);
    if (opt.max_allocation) limits_.max_allocation = std::min<uint64_t>(limits_.max_allocation, opt.max_allocation);
    limits_.max_groups_x = p.limits.maxComputeWorkGroupCount[0];
    if (p.limits.maxPushConstantsSize < kPushBytes)
        return error(SDGO_ERR_UNSUPPORTED, "vulkan: %s offers %u bytes of push constants; %u are needed",
                     p.deviceName, p.limits.maxPushConstantsSize, kPushBytes);

    info_.backend = "vulkan";
    info_.index = index;
    info_.name = p.deviceName;
    info_.description = strprintf("Vulkan %u.%u.%u, vendor 0x%04x, device 0x%04x", VK_API_VERSION_MAJOR(p.apiVersion),
                                  VK_API_VERSION_MINOR(p.apiVersion), VK_API_VERSION_PATCH(p.apiVersion), p.vendorID,
                                  p.deviceID);
    info_.type = device_type(p.deviceType);
    uma_ = p.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU || p.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    for (uint32_t h = 0; h < mem_props_.memoryHeapCount; h++)
        if (mem_props_.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
            info_.memory_bytes += mem_props_.memoryHeaps[h].size;
    info_.max_buffer_bytes = limits_.max_allocation;

    // A compute queue, preferably one without graphics.
    uint32_t nq = 0;
    fn.GetPhysicalDeviceQueueFamilyProperties(pd, &nq, nullptr);
    std::vector<VkQueueFamilyProperties> qf(nq);
    fn.GetPhysicalDeviceQueueFamilyProperties(pd, &nq, qf.data());
    int family = -1;
    for (uint32_t i = 0; i < nq; i++) {
        if (!(qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) || qf[i].queueCount == 0) continue;
        if (family < 0 || !(qf[i].queueFlags & VK_QUEUE_GRAPHICS_BIT)) family = static_cast<int>(i);
        if (!(qf[i].queueFlags & VK_QUEUE_GRAPHICS_BIT)) break;
    }
    if (family < 0) return error(SDGO_ERR_UNSUPPORTED, "vulkan: %s has no compute queue", p.deviceName);
    queue_family_ = static_cast<uint32_t>(family);

    const float prio = 1.0f;
    VkDeviceQueueCreateInfo qi{};
    qi.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO;
    qi.queueFamilyIndex = queue_family_;
    qi.queueCount = 1;
    qi.pQueuePriorities = &prio;
    VkDeviceCreateInfo di{};
    di.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO;
    di.queueCreateInfoCount = 1;
    di.pQueueCreateInfos = &qi;
    VK_TRY(fn.CreateDevice(pd, &di, nullptr, &dev_), "vkCreateDevice");
    fn.GetDeviceQueue(dev_, queue_family_, 0, &queue_);

    VkCommandPoolCreateInfo pi{};
    pi.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO;
    pi.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    pi.queueFamilyIndex = queue_family_;
    VK_TRY(fn.CreateCommandPool(dev_, &pi, nullptr, &xfer_pool_), "vkCreateCommandPool");
    VkCommandBufferAllocateInfo ai{};
    ai.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO;
    ai.commandPool = xfer_pool_;
    ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ai.commandBufferCount = 1;
    VK_TRY(fn.AllocateCommandBuffers(dev_, &ai, &xfer_cb_), "vkAllocateCommandBuffers");
    VkFenceCreateInfo fi{};
    fi.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO;
    VK_TRY(fn.CreateFence(dev_, &fi, nullptr, &xfer_fence_), "vkCreateFence");
    return Status();
}

VulkanDevice::~VulkanDevice() {
    if (!dev_) return;
    staging_.reset();
    for (auto & kv : pipelines_) {
        Pipeline & p = *kv.second;
        if (p.pipeline) fn.DestroyPipeline(dev_, p.pipeline, nullptr);
        if (p.layout) fn.DestroyPipelineLayout(dev_, p.layout, nullptr);
        if (p.set_layout) fn.DestroyDescriptorSetLayout(dev_, p.set_layout, nullptr);
    }
    if (xfer_fence_) fn.DestroyFence(dev_, xfer_fence_, nullptr);
    if (xfer_pool_) fn.DestroyCommandPool(dev_, xfer_pool_, nullptr);
    fn.DestroyDevice(dev_, nullptr);
}

Status VulkanDevice::alloc_buffer(size_t size, std::unique_ptr<Buffer> * out) {
    const size_t n = std::max<size_t>((size + kAlignment - 1) & ~(kAlignment - 1), kAlignment);
    if (n < size || n > limits_.max_allocation)
        return error(SDGO_ERR_OUT_OF_MEMORY,
                     "vulkan: a buffer of %zu bytes exceeds %s's largest allocation (%llu bytes); %s", size,
                     info_.name.c_str(), (unsigned long long)limits_.max_allocation, kMemoryHint);
    VkBufferCreateInfo bi{};
    bi.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO;
    bi.size = n;
    bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    VkBuffer buf = VK_NULL_HANDLE;
    VK_TRY(fn.CreateBuffer(dev_, &bi, nullptr, &buf), "vkCreateBuffer");
    VkMemoryRequirements req;
    fn.GetBufferMemoryRequirements(dev_, buf, &req);

    // Host-mappable device memory where it is the same memory (integrated
    // GPUs, CPU devices); device-local memory otherwise, filled by staging.
    const VkMemoryPropertyFlags mappable = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    int type = -1;
    if (uma_ && !opt_.force_staging)
        type = find_memory_type(mem_props_, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | mappable);
    if (type < 0) type = find_memory_type(mem_props_, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    if (type < 0) type = find_memory_type(mem_props_, req.memoryTypeBits, mappable);
    if (type < 0) {
        fn.DestroyBuffer(dev_, buf, nullptr);
        return error(SDGO_ERR_UNSUPPORTED, "vulkan: %s has no memory type for storage buffers", info_.name.c_str());
    }
    VkMemoryAllocateInfo mi{};
    mi.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO;
    mi.allocationSize = req.size;
    mi.memoryTypeIndex = static_cast<uint32_t>(type);
    VkDeviceMemory mem = VK_NULL_HANDLE;
    VkResult r = fn.AllocateMemory(dev_, &mi, nullptr, &mem);
    if (r != VK_SUCCESS) {
        fn.DestroyBuffer(dev_, buf, nullptr);
        return error(SDGO_ERR_OUT_OF_MEMORY, "vulkan: cannot allocate %zu bytes on %s (%s); %s", size,
                     info_.name.c_str(), result_name(r), kMemoryHint);
    }
    r = fn.BindBufferMemory(dev_, buf, mem, 0);
    void * mapped = nullptr;
    const bool map = !opt_.force_staging &&
                     (mem_props_.memoryTypes[type].propertyFlags & mappable) == mappable;
    if (r == VK_SUCCESS && map) r = fn.MapMemory(dev_, mem, 0, VK_WHOLE_SIZE, 0, &mapped);
    if (r != VK_SUCCESS) {
        fn.DestroyBuffer(dev_, buf, nullptr);
        fn.FreeMemory(dev_, mem, nullptr);
        return vk_error(r, "binding or mapping buffer memory");
    }
    *out = std::make_unique<VulkanBuffer>(this, buf, mem, n, mapped);
    return Status();
}

Status VulkanDevice::write(Buffer * b, size_t offset, const void * src, size_t n) {
    return copy(static_cast<VulkanBuffer *>(b), offset, const_cast<void *>(src), n, true);
}

Status VulkanDevice::read(Buffer * b, size_t offset, void * dst, size_t n) {
    return copy(static_cast<VulkanBuffer *>(b), offset, dst, n, false);
}

Status VulkanDevice::copy(VulkanBuffer * b, size_t offset, void * host, size_t n, bool to_device) {
    const char * what = to_device ? "write" : "read";
    if (!b || b->device() != this) return error(SDGO_ERR_INVALID_ARGUMENT, "vulkan: %s on a foreign buffer", what);
    if (offset > b->size() || n > b->size() - offset)
        return error(SDGO_ERR_INVALID_ARGUMENT, "vulkan: %s of [%zu, +%zu) outside a buffer of %zu bytes", what,
                     offset, n, b->size());
    if (n == 0) return Status();
    if (b->mapped()) {
        char * dev = static_cast<char *>(b->mapped()) + offset;
        if (to_device) std::memcpy(dev, host, n);
        else std::memcpy(host, dev, n);
        return Status();
    }
    std::lock_guard<std::mutex> lock(staging_mu_);
    if (!staging_) {
        // Host-visible memory for the staging buffer itself.
        const VkMemoryPropertyFlags mappable =
            VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
        VkBufferCreateInfo bi{};
        bi.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO;
        bi.size = opt_.staging_bytes;
        bi.usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
        VkBuffer buf = VK_NULL_HANDLE;
        VK_TRY(fn.CreateBuffer(dev_, &bi, nullptr, &buf), "vkCreateBuffer (staging)");
        VkMemoryRequirements req;
        fn.GetBufferMemoryRequirements(dev_, buf, &req);
        const int type = find_memory_type(mem_props_, req.memoryTypeBits, mappable);
        VkDeviceMemory mem = VK_NULL_HANDLE;
        VkResult r = VK_ERROR_FEATURE_NOT_PRESENT;
        if (type >= 0) {
            VkMemoryAllocateInfo mi{};
            mi.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO;
            mi.allocationSize = req.size;
            mi.memoryTypeIndex = static_cast<uint32_t>(type);
            r = fn.AllocateMemory(dev_, &mi, nullptr, &mem);
        }
        void * mapped = nullptr;
        if (r == VK_SUCCESS) r = fn.BindBufferMemory(dev_, buf, mem, 0);
        if (r == VK_SUCCESS) r = fn.MapMemory(dev_, mem, 0, VK_WHOLE_SIZE, 0, &mapped);
        if (r != VK_SUCCESS) {
            fn.DestroyBuffer(dev_, buf, nullptr);
            if (mem) fn.FreeMemory(dev_, mem, nullptr);
            return vk_error(r, "staging buffer");
        }
        staging_ = std::make_unique<VulkanBuffer>(this, buf, mem, opt_.staging_bytes, mapped);
    }
    char * h = static_cast<char *>(host);
    for (size_t done = 0; done < n;) {
        const size_t len = std::min(n - done, staging_->size());
        if (to_device) std::memcpy(staging_->mapped(), h + done, len);
        VK_TRY(fn.ResetCommandPool(dev_, xfer_pool_, 0), "vkResetCommandPool");
        VkCommandBufferBeginInfo bi{};
        bi.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
        bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
        VK_TRY(fn.BeginCommandBuffer(xfer_cb_, &bi), "vkBeginCommandBuffer");
        global_barrier(xfer_cb_, kAllStages, kAllWrites, kAllStages, kAllAccess);
        VkBufferCopy region{};
        region.size = len;
        if (to_device) {
            region.dstOffset = offset + done;
            fn.CmdCopyBuffer(xfer_cb_, staging_->handle(), b->handle(), 1, &region);
        } else {
            region.srcOffset = offset + done;
            fn.CmdCopyBuffer(xfer_cb_, b->handle(), staging_->handle(), 1, &region);
        }
        global_barrier(xfer_cb_, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT, kAllStages, kAllAccess);
        VK_TRY(fn.EndCommandBuffer(xfer_cb_), "vkEndCommandBuffer");
        SDGO_TRY(submit_and_wait(xfer_cb_, xfer_fence_, what));
        if (!to_device) std::memcpy(h + done, staging_->mapped(), len);
        done += len;
    }
    return Status();
}

Status VulkanDevice::submit_and_wait(VkCommandBuffer cb, VkFence fence, const char * what) {
    SDGO_TRY(submit(cb, fence, what));
    return wait(fence, what);
}

Status VulkanDevice::submit(VkCommandBuffer cb, VkFence fence, const char * what) {
    (void)what;
    VK_TRY(fn.ResetFences(dev_, 1, &fence), "vkResetFences");
    VkSubmitInfo si{};
    si.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO;
    si.commandBufferCount = 1;
    si.pCommandBuffers = &cb;
    std::lock_guard<std::mutex> lock(queue_mu_);
    VK_TRY(fn.QueueSubmit(queue_, 1, &si, fence), "vkQueueSubmit");
    return Status();
}

Status VulkanDevice::wait(VkFence fence, const char * what) {
    for (;;) {
        const VkResult r = fn.WaitForFences(dev_, 1, &fence, VK_TRUE, 1000000000ull);
        if (r == VK_SUCCESS) return Status();
        if (r != VK_TIMEOUT) return vk_error(r, what);
    }
}

Status VulkanDevice::pipeline(const char * shader, int n_bindings, int spec, const Pipeline ** out) {
    std::lock_guard<std::mutex> lock(pipe_mu_);
    const std::string key = spec < 0 ? std::string(shader) : std::string(shader) + "#" + std::to_string(spec);
    auto it = pipelines_.find(key);
    if (it != pipelines_.end()) {
        *out = it->second.get();
        return Status();
    }
    const ShaderBinary * bin = find_shader(shader);
    if (!bin) return error(SDGO_ERR_INTERNAL, "vulkan: no shader named %s in this build", shader);
    if (n_bindings < 1 || n_bindings > kMaxBindings)
        return error(SDGO_ERR_INTERNAL, "vulkan: %s: %d bindings", shader, n_bindings);
    auto p = std::make_unique<Pipeline>();
    p->n_bindings = n_bindings;
    VkDescriptorSetLayoutBinding binds[kMaxBindings]{};
    for (int i = 0; i < n_bindings; i++) {
        binds[i].binding = static_cast<uint32_t>(i);
        binds[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        binds[i].descriptorCount = 1;
        binds[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
    }
    VkDescriptorSetLayoutCreateInfo li{};
    li.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO;
    li.bindingCount = static_cast<uint32_t>(n_bindings);
    li.pBindings = binds;
    VK_TRY(fn.CreateDescriptorSetLayout(dev_, &li, nullptr, &p->set_layout), "vkCreateDescriptorSetLayout");
    VkPushConstantRange pr{};
    pr.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
    pr.size = kPushBytes;
    VkPipelineLayoutCreateInfo pli{};
    pli.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO;
    pli.setLayoutCount = 1;
    pli.pSetLayouts = &p->set_layout;
    pli.pushConstantRangeCount = 1;
    pli.pPushConstantRanges = &pr;
    VkResult r = fn.CreatePipelineLayout(dev_, &pli, nullptr, &p->layout);
    VkShaderModule mod = VK_NULL_HANDLE;
    if (r == VK_SUCCESS) {
        VkShaderModuleCreateInfo mi{};
        mi.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO;
        mi.codeSize = bin->size;
        mi.pCode = reinterpret_cast<const uint32_t *>(bin->code);
        r = fn.CreateShaderModule(dev_, &mi, nullptr, &mod);
    }
    if (r == VK_SUCCESS) {
        VkComputePipelineCreateInfo ci{};
        ci.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO;
        ci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
        ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
        ci.stage.module = mod;
        ci.stage.pName = "main";
        const uint32_t spec_value = static_cast<uint32_t>(spec);
        VkSpecializationMapEntry entry{};
        entry.constantID = 0;
        entry.offset = 0;
        entry.size = 4;
        VkSpecializationInfo si{};
        si.mapEntryCount = 1;
        si.pMapEntries = &entry;
        si.dataSize = 4;
        si.pData = &spec_value;
        if (spec >= 0) ci.stage.pSpecializationInfo = &si;
        ci.layout = p->layout;
        r = fn.CreateComputePipelines(dev_, VK_NULL_HANDLE, 1, &ci, nullptr, &p->pipeline);
        fn.DestroyShaderModule(dev_, mod, nullptr);
    }
    if (r != VK_SUCCESS) {
        if (p->layout) fn.DestroyPipelineLayout(dev_, p->layout, nullptr);
        fn.DestroyDescriptorSetLayout(dev_, p->set_layout, nullptr);
        return error(SDGO_ERR_INTERNAL, "vulkan: cannot create the pipeline of shader %s: %s", shader,
                     result_name(r));
    }
    *out = p.get();
    pipelines_.emplace(key, std::move(p));
    return Status();
}

// ---- the process's devices -------------------------------------------------

namespace {

struct Instance {
    VkInstance instance = VK_NULL_HANDLE;
    std::vector<VkPhysicalDevice> physical;
    std::string why;
};

const Instance & instance() {
    static const Instance inst = [] {
        Instance in;
        if (!load_loader(&in.why)) return in;
        uint32_t version = VK_API_VERSION_1_0;
        if (fn.EnumerateInstanceVersion) fn.EnumerateInstanceVersion(&version);
        if (version < VK_API_VERSION_1_1) {
            in.why = strprintf("the Vulkan loader offers version %u.%u; 1.1 is needed", VK_API_VERSION_MAJOR(version),
                               VK_API_VERSION_MINOR(version));
            return in;
        }
        VkApplicationInfo app{};
        app.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO;
        app.pApplicationName = "sd-go";
        app.pEngineName = "sd-go";
        app.apiVersion = VK_API_VERSION_1_1;
        VkInstanceCreateInfo ci{};
        ci.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO;
        ci.pApplicationInfo = &app;
        VkResult r = fn.CreateInstance(&ci, nullptr, &in.instance);
        if (r != VK_SUCCESS) {
            in.why = std::string("vkCreateInstance failed: ") + result_name(r);
            in.instance = VK_NULL_HANDLE;
            return in;
        }
        if (!load_instance(in.instance, &in.why)) {
            in.instance = VK_NULL_HANDLE;  // kept alive: nothing else can be done with it
            return in;
        }
        uint32_t n = 0;
        r = fn.EnumeratePhysicalDevices(in.instance, &n, nullptr);
        if (r == VK_SUCCESS && n > 0) {
            in.physical.resize(n);
            r = fn.EnumeratePhysicalDevices(in.instance, &n, in.physical.data());
            in.physical.resize(r == VK_SUCCESS || r == VK_INCOMPLETE ? n : 0);
        }
        if (in.physical.empty()) in.why = "no Vulkan device (no driver installed, or none sees a device)";
        return in;
    }();
    return inst;
}

}  // namespace

const std::vector<Device *> & devices(std::string * why) {
    struct List {
        std::vector<std::unique_ptr<VulkanDevice>> owned;  // live for the whole process
        std::vector<Device *> devices;
        std::string why;
    };
    static const List * list = [] {
        auto * l = new List();
        const Instance & in = instance();
        l->why = in.why;
        for (size_t i = 0; i < in.physical.size(); i++) {
            std::unique_ptr<VulkanDevice> d;
            Status st = VulkanDevice::create(in.instance, in.physical[i], static_cast<int>(l->devices.size()),
                                             DeviceOptions(), &d);
            if (!st.ok()) {
                SDGO_LOG_W("vulkan: device %zu skipped: %s", i, st.message().c_str());
                l->why += (l->why.empty() ? "" : "; ") + st.message();
                continue;
            }
            l->devices.push_back(d.get());
            l->owned.push_back(std::move(d));
        }
        if (l->devices.empty()) SDGO_LOG_I("vulkan backend has no device: %s", l->why.c_str());
        if (!l->devices.empty()) l->why.clear();
        return l;
    }();
    if (why) *why = list->why;
    return list->devices;
}

Status make_device(int index, const DeviceOptions & opt, std::unique_ptr<Device> * out) {
    const Instance & in = instance();
    if (!in.instance) return error(SDGO_ERR_UNSUPPORTED, "vulkan: %s", in.why.c_str());
    if (index < 0 || index >= static_cast<int>(in.physical.size()))
        return error(SDGO_ERR_INVALID_ARGUMENT, "vulkan: there is no device %d (%zu found)", index,
                     in.physical.size());
    std::unique_ptr<VulkanDevice> d;
    SDGO_TRY(VulkanDevice::create(in.instance, in.physical[static_cast<size_t>(index)], index, opt, &d));
    *out = std::move(d);
    return Status();
}

}  // namespace sdgo::vk
