// vk_device.h — the Vulkan backend's device, buffers and pipelines (inside
// the backend only; the rest of the engine sees core/backend.h).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "backends/vulkan/vk_loader.h"
#include "backends/vulkan/vulkan_backend.h"
#include "core/backend.h"

namespace sdgo::vk {

class VulkanDevice;

// Device memory with one VkBuffer over all of it. base() is NULL: tensors
// address it by offset (Tensor::offset); the host reaches it through
// Device::write / read.
class VulkanBuffer final : public Buffer {
public:
    VulkanBuffer(VulkanDevice * dev, VkBuffer buf, VkDeviceMemory mem, size_t size, void * mapped)
        : dev_(dev), buf_(buf), mem_(mem), size_(size), mapped_(mapped) {}
    ~VulkanBuffer() override;
    size_t size() const override { return size_; }
    void * base() override { return nullptr; }
    Device * device() const override;
    VkBuffer handle() const { return buf_; }
    // The host mapping of the whole buffer (coherent memory), or NULL.
    void * mapped() const { return mapped_; }

private:
    VulkanDevice * dev_;
    VkBuffer buf_;
    VkDeviceMemory mem_;
    size_t size_;
    void * mapped_;
};

// A compute pipeline: one shader, `n_bindings` storage buffers at bindings
// 0..n-1 of set 0, and up to kPushBytes of push constants.
struct Pipeline {
    VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
    VkPipelineLayout layout = VK_NULL_HANDLE;
    VkPipeline pipeline = VK_NULL_HANDLE;
    int n_bindings = 0;
};

constexpr uint32_t kPushBytes = 128;  // the size every device must offer
constexpr int kMaxBindings = 4;

struct Limits {
    uint64_t max_storage_range = 0;   // maxStorageBufferRange
    uint64_t storage_align = 0;       // minStorageBufferOffsetAlignment
    uint64_t max_allocation = 0;      // maxMemoryAllocationSize
    uint32_t max_groups_x = 0;        // maxComputeWorkGroupCount[0]
};

class VulkanDevice final : public Device {
public:
    static Status create(VkInstance inst, VkPhysicalDevice pd, int index, const DeviceOptions & opt,
                         std::unique_ptr<VulkanDevice> * out);
    ~VulkanDevice() override;

    const DeviceInfo & info() const override { return info_; }
    Status alloc_buffer(size_t size, std::unique_ptr<Buffer> * out) override;
    Status write(Buffer * b, size_t offset, const void * src, size_t n) override;
    Status read(Buffer * b, size_t offset, void * dst, size_t n) override;
    bool supports_op(const Tensor * node) const override;
    Status new_backend(const BackendOptions & opt, std::unique_ptr<Backend> * out) override;

    VkDevice handle() const { return dev_; }
    uint32_t queue_family() const { return queue_family_; }
    const Limits & limits() const { return limits_; }
    // The pipeline of `shader` with specialization constant 0 set to `spec`
    // (spec < 0: left at the shader's default); created on first use and
    // kept (thread-safe).
    Status pipeline(const char * shader, int n_bindings, int spec, const Pipeline ** out);
    // Submits one command buffer and waits for it (thread-safe).
    Status submit_and_wait(VkCommandBuffer cb, VkFence fence, const char * what);
    // The two halves: submit signalling `fence`, and wait for a fence.
    Status submit(VkCommandBuffer cb, VkFence fence, const char * what);
    Status wait(VkFence fence, const char * what);

private:
    VulkanDevice() = default;
    Status init(VkPhysicalDevice pd, int index, const DeviceOptions & opt);
    Status copy(VulkanBuffer * b, size_t offset, void * host, size_t n, bool to_device);

    DeviceInfo info_;
    DeviceOptions opt_;
    Limits limits_;
    VkPhysicalDevice pd_ = VK_NULL_HANDLE;
    VkPhysicalDeviceMemoryProperties mem_props_{};
    bool uma_ = false;  // integrated GPU or CPU device: device memory is host memory
    VkDevice dev_ = VK_NULL_HANDLE;
    VkQueue queue_ = VK_NULL_HANDLE;
    uint32_t queue_family_ = 0;
    std::mutex queue_mu_;

    std::mutex pipe_mu_;
    std::map<std::string, std::unique_ptr<Pipeline>> pipelines_;

    // Staging for write / read of memory the host cannot map.
    std::mutex staging_mu_;
    std::unique_ptr<VulkanBuffer> staging_;
    VkCommandPool xfer_pool_ = VK_NULL_HANDLE;
    VkCommandBuffer xfer_cb_ = VK_NULL_HANDLE;
    VkFence xfer_fence_ = VK_NULL_HANDLE;
};

// "vulkan: <what>: VK_ERROR_..." as a Status.
Status vk_error(VkResult r, const char * what);

// A global memory barrier: the writes of `src` stages made visible to the
// accesses of `dst` stages. Command buffers open with one (the host's,
// transfers' and earlier shaders' writes to what they read) and close with
// one (their writes to the host and to later transfers).
void global_barrier(VkCommandBuffer cb, VkPipelineStageFlags src, VkAccessFlags src_access,
                    VkPipelineStageFlags dst, VkAccessFlags dst_access);
constexpr VkPipelineStageFlags kAllStages =
    VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT | VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT;
constexpr VkAccessFlags kAllWrites = VK_ACCESS_HOST_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_SHADER_WRITE_BIT;
constexpr VkAccessFlags kAllAccess = kAllWrites | VK_ACCESS_HOST_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                                     VK_ACCESS_SHADER_READ_BIT;

}  // namespace sdgo::vk
