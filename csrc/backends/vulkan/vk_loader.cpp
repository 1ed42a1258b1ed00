#include "backends/vulkan/vk_loader.h"

#include <dlfcn.h>

#include <type_traits>

namespace sdgo::vk {

Fns fn;

namespace {
void * g_lib = nullptr;
}

bool load_loader(std::string * why) {
    if (fn.CreateInstance) return true;
#if defined(__APPLE__)
    const char * names[] = {"libvulkan.1.dylib", "libvulkan.dylib", "libMoltenVK.dylib"};
#else
    const char * names[] = {"libvulkan.so.1", "libvulkan.so"};
#endif
    std::string tried;
    for (const char * n : names) {
        g_lib = dlopen(n, RTLD_NOW | RTLD_LOCAL);
        if (g_lib) break;
        tried += (tried.empty() ? "" : ", ") + std::string(n);
    }
    if (!g_lib) {
        *why = "no Vulkan loader found (tried " + tried + "); install the Vulkan runtime (Debian/Ubuntu: libvulkan1 "
               "and a driver such as mesa-vulkan-drivers)";
        return false;
    }
    fn.GetInstanceProcAddr = reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(g_lib, "vkGetInstanceProcAddr"));
    if (!fn.GetInstanceProcAddr) {
        *why = "the Vulkan loader lacks vkGetInstanceProcAddr";
        return false;
    }
    fn.CreateInstance = reinterpret_cast<PFN_vkCreateInstance>(fn.GetInstanceProcAddr(nullptr, "vkCreateInstance"));
    fn.EnumerateInstanceVersion =
        reinterpret_cast<PFN_vkEnumerateInstanceVersion>(fn.GetInstanceProcAddr(nullptr, "vkEnumerateInstanceVersion"));
    if (!fn.CreateInstance) {
        *why = "the Vulkan loader lacks vkCreateInstance";
        return false;
    }
    return true;
}

bool load_instance(VkInstance inst, std::string * why) {
    bool ok = true;
    auto get = [&](auto & f, const char * name) {
        f = reinterpret_cast<std::remove_reference_t<decltype(f)>>(fn.GetInstanceProcAddr(inst, name));
        if (!f) {
            ok = false;
            *why += (why->empty() ? "missing Vulkan entry points: " : ", ") + std::string(name);
        }
    };
    get(fn.DestroyInstance, "vkDestroyInstance");
    get(fn.EnumeratePhysicalDevices, "vkEnumeratePhysicalDevices");
    get(fn.GetPhysicalDeviceProperties, "vkGetPhysicalDeviceProperties");
    get(fn.GetPhysicalDeviceProperties2, "vkGetPhysicalDeviceProperties2");
    get(fn.GetPhysicalDeviceFeatures2, "vkGetPhysicalDeviceFeatures2");
    get(fn.GetPhysicalDeviceMemoryProperties, "vkGetPhysicalDeviceMemoryProperties");
    get(fn.GetPhysicalDeviceQueueFamilyProperties, "vkGetPhysicalDeviceQueueFamilyProperties");
    get(fn.CreateDevice, "vkCreateDevice");
    get(fn.GetDeviceProcAddr, "vkGetDeviceProcAddr");
    get(fn.DestroyDevice, "vkDestroyDevice");
    get(fn.GetDeviceQueue, "vkGetDeviceQueue");
    get(fn.CreateBuffer, "vkCreateBuffer");
    get(fn.DestroyBuffer, "vkDestroyBuffer");
    get(fn.GetBufferMemoryRequirements, "vkGetBufferMemoryRequirements");
    get(fn.AllocateMemory, "vkAllocateMemory");
    get(fn.FreeMemory, "vkFreeMemory");
    get(fn.BindBufferMemory, "vkBindBufferMemory");
    get(fn.MapMemory, "vkMapMemory");
    get(fn.UnmapMemory, "vkUnmapMemory");
    get(fn.CreateShaderModule, "vkCreateShaderModule");
    get(fn.DestroyShaderModule, "vkDestroyShaderModule");
    get(fn.CreateDescriptorSetLayout, "vkCreateDescriptorSetLayout");
    get(fn.DestroyDescriptorSetLayout, "vkDestroyDescriptorSetLayout");
    get(fn.CreatePipelineLayout, "vkCreatePipelineLayout");
    get(fn.DestroyPipelineLayout, "vkDestroyPipelineLayout");
    get(fn.CreateComputePipelines, "vkCreateComputePipelines");
    get(fn.DestroyPipeline, "vkDestroyPipeline");
    get(fn.CreateDescriptorPool, "vkCreateDescriptorPool");
    get(fn.DestroyDescriptorPool, "vkDestroyDescriptorPool");
    get(fn.ResetDescriptorPool, "vkResetDescriptorPool");
    get(fn.AllocateDescriptorSets, "vkAllocateDescriptorSets");
    get(fn.UpdateDescriptorSets, "vkUpdateDescriptorSets");
    get(fn.CreateCommandPool, "vkCreateCommandPool");
    get(fn.DestroyCommandPool, "vkDestroyCommandPool");
    get(fn.ResetCommandPool, "vkResetCommandPool");
    get(fn.AllocateCommandBuffers, "vkAllocateCommandBuffers");
    get(fn.FreeCommandBuffers, "vkFreeCommandBuffers");
    get(fn.BeginCommandBuffer, "vkBeginCommandBuffer");
    get(fn.ResetCommandBuffer, "vkResetCommandBuffer");
    get(fn.EndCommandBuffer, "vkEndCommandBuffer");
    get(fn.CmdBindPipeline, "vkCmdBindPipeline");
    get(fn.CmdBindDescriptorSets, "vkCmdBindDescriptorSets");
    get(fn.CmdPushConstants, "vkCmdPushConstants");
    get(fn.CmdDispatch, "vkCmdDispatch");
    get(fn.CmdPipelineBarrier, "vkCmdPipelineBarrier");
    get(fn.CmdCopyBuffer, "vkCmdCopyBuffer");
    get(fn.CreateFence, "vkCreateFence");
    get(fn.DestroyFence, "vkDestroyFence");
    get(fn.ResetFences, "vkResetFences");
    get(fn.WaitForFences, "vkWaitForFences");
    get(fn.QueueSubmit, "vkQueueSubmit");
    return ok;
}

const char * result_name(VkResult r) {
    switch (r) {
        case VK_SUCCESS: return "VK_SUCCESS";
        case VK_NOT_READY: return "VK_NOT_READY";
        case VK_TIMEOUT: return "VK_TIMEOUT";
        case VK_INCOMPLETE: return "VK_INCOMPLETE";
        case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
        case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
        case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
        case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
        case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
        case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
        case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
        case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
        case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
        case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
        case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED";
        case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
        case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
        default: break;
    }
    return "VK_ERROR_UNKNOWN";
}

}  // namespace sdgo::vk
