// registry.h — the backends compiled into this library and the devices each
// one sees. The only place that names every backend; everything else reaches
// devices through here and the interfaces of core/backend.h.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "core/backend.h"

namespace sdgo::backends {

struct BackendEntry {
    std::string name;               // "cpu", ...
    std::vector<Device *> devices;  // in index order; may be empty (e.g. no driver)
    std::string note;               // why a backend has no device, "" otherwise
};

// Every compiled-in backend, enumerated once (thread-safe). The CPU is always
// first and always has one device.
const std::vector<BackendEntry> & registered();

// Every device of every backend, in registry order.
std::vector<Device *> all_devices();

// A device by backend name and index. "auto" picks the first discrete GPU,
// then an integrated one, then the CPU (index must be 0 for "auto").
Status find_device(const std::string & backend, int index, Device ** out);

// The registry as JSON: [{"name":"cpu","devices":[{"index":0,"name":"cpu",
// "description":"…","type":"cpu","memory_bytes":N,"max_buffer_bytes":N}],
// "note":""}, ...].
std::string registry_json();

}  // namespace sdgo::backends
