// vulkan_backend.h — the Vulkan backend: one Device per Vulkan physical
// device, buffers in device memory, and backends that record a graph's ops
// as compute dispatches into command buffers once and replay them.
//
// Every op of the SD 1.x/2.x graphs runs here (shaders/*.comp): weights of
// any engine type are read in place and dequantized in registers; sums
// accumulate in f32. What a shader cannot address (an operand larger than
// one descriptor range, a 16-bit output with an odd element count, a head
// size over 256) is refused by supports_op, so a graph that needs it fails
// at alloc_graph with the op's name, before any compute; the backend-ops
// test lists those cases as skipped for this device.
//
// Tiled shaders with f32 arithmetic; no cooperative matrices, no f16
// arithmetic yet (docs/vulkan.md).
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
    // When non-zero, a smaller maxStorageBufferRange than the driver's, so
    // that tests can meet the limit of a real card at small sizes.
    uint64_t max_storage_range = 0;
    // The same for maxMemoryAllocationSize (the largest buffer).
    uint64_t max_allocation = 0;
};

// The Vulkan devices of this machine, created once (thread-safe). Empty with
// *why (if not NULL) set when there are none: no loader, no driver, no device
// with a compute queue, or an instance that cannot be created.
const std::vector<Device *> & devices(std::string * why);

// A new, separately owned device for physical device `index` (tests use it
// with options the shared devices do not have).
Status make_device(int index, const DeviceOptions & opt, std::unique_ptr<Device> * out);

// How many times backend b (one of this backend's) has recorded a graph's
// command buffers; -1 for a backend of another kind. For tests: computing
// the same graph again replays its recording.
int64_t recordings(const Backend * b);

}  // namespace sdgo::vk
