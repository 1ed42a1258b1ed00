// vulkan_backend.h — the Vulkan backend: one Device per Vulkan physical
// device, buffers in device memory, and backends that record a graph's ops
// as compute dispatches into one command buffer.
//
// What runs here so far: f32 element-wise ops (the unary family, add, sub,
// mul, div with broadcast, contiguous copies of strided views). Every other
// op is refused by supports_op, so a graph that needs one fails at
// alloc_graph with the op's name, before any compute; the backend-ops test
// lists those cases as skipped for this device.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"

namespace sdgo::vk {

struct DeviceOptions {
    // Never map device memory into the host, even where the driver offers
    // host-visible memory: every copy goes through the staging buffer, as on
    // a discrete GPU without resizable BAR. For tests.
    bool force_staging = false;
    // Size of the staging buffer (bytes); copies larger than it are chunked.
    size_t staging_bytes = size_t(32) << 20;
};

// The Vulkan devices of this machine, created once (thread-safe). Empty with
// *why (if not NULL) set when there are none: no loader, no driver, no device
// with a compute queue, or an instance that cannot be created.
const std::vector<Device *> & devices(std::string * why);

// A new, separately owned device for physical device `index` (tests use it
// with options the shared devices do not have).
Status make_device(int index, const DeviceOptions & opt, std::unique_ptr<Device> * out);

}  // namespace sdgo::vk
