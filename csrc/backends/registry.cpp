#include "backends/registry.h"

#include "backends/cpu/cpu_backend.h"
#if defined(SDGO_HAVE_VULKAN)
#include "backends/vulkan/vulkan_backend.h"
#endif

namespace sdgo::backends {

namespace {

std::string quote(const std::string & s) {
    std::string o = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            o += '\\';
            o += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            o += strprintf("\\u%04x", c);
        } else {
            o += c;
        }
    }
    return o + "\"";
}

// Each backend's entry, enumerated the first time it is asked for: asking
// for the CPU never loads a GPU driver (lavapipe alone maps tens of MiB).
const BackendEntry & cpu_entry() {
    static const BackendEntry e{"cpu", {cpu::device()}, ""};
    return e;
}

#if defined(SDGO_HAVE_VULKAN)
const BackendEntry & vulkan_entry() {
    static const BackendEntry e = [] {
        std::string why;
        const std::vector<Device *> & d = vk::devices(&why);
        return BackendEntry{"vulkan", d, why};
    }();
    return e;
}
#endif

using EntryFn = const BackendEntry & (*)();
struct Compiled {
    const char * name;
    EntryFn entry;
};

// Every backend compiled in, the CPU first.
const std::vector<Compiled> & compiled() {
    static const std::vector<Compiled> v = {
        {"cpu", &cpu_entry},
#if defined(SDGO_HAVE_VULKAN)
        {"vulkan", &vulkan_entry},
#endif
    };
    return v;
}

}  // namespace

const std::vector<BackendEntry> & registered() {
    static const std::vector<BackendEntry> r = [] {
        std::vector<BackendEntry> v;
        for (const Compiled & c : compiled()) v.push_back(c.entry());
        return v;
    }();
    return r;
}

std::vector<Device *> all_devices() {
    std::vector<Device *> out;
    for (const BackendEntry & b : registered()) out.insert(out.end(), b.devices.begin(), b.devices.end());
    return out;
}

Status find_device(const std::string & backend, int index, Device ** out) {
    *out = nullptr;
    if (backend.empty() || backend == "auto") {
        if (index != 0) return error(SDGO_ERR_INVALID_ARGUMENT, "backend auto takes no device index (got %d)", index);
        for (DeviceType want : {DeviceType::gpu_discrete, DeviceType::gpu_integrated})
            for (Device * d : all_devices())
                if (d->info().type == want) {
                    *out = d;
                    return Status();
                }
        *out = cpu::device();
        return Status();
    }
    std::string names;
    for (const Compiled & c : compiled()) {
        names += (names.empty() ? "" : ", ") + std::string(c.name);
        if (backend != c.name) continue;
        const BackendEntry & b = c.entry();
        if (b.devices.empty())
            return error(SDGO_ERR_UNSUPPORTED, "backend %s has no device%s%s", backend.c_str(),
                         b.note.empty() ? "" : ": ", b.note.c_str());
        if (index < 0 || index >= static_cast<int>(b.devices.size()))
            return error(SDGO_ERR_INVALID_ARGUMENT, "backend %s has %zu device(s); there is no device %d",
                         backend.c_str(), b.devices.size(), index);
        *out = b.devices[static_cast<size_t>(index)];
        return Status();
    }
    return error(SDGO_ERR_UNSUPPORTED, "backend \"%s\" is not compiled into this library (available: %s, auto)",
                 backend.c_str(), names.c_str());
}

std::string registry_json() {
    std::string o = "[";
    bool first_b = true;
    for (const BackendEntry & b : registered()) {
        o += (first_b ? "" : ",") + std::string("{\"name\":") + quote(b.name) + ",\"devices\":[";
        first_b = false;
        bool first_d = true;
        for (Device * d : b.devices) {
            const DeviceInfo & i = d->info();
            o += (first_d ? "" : ",") + strprintf("{\"index\":%d,\"name\":", i.index) + quote(i.name) +
                 ",\"description\":" + quote(i.description) + ",\"type\":" + quote(device_type_name(i.type)) +
                 strprintf(",\"memory_bytes\":%llu,\"max_buffer_bytes\":%llu}", (unsigned long long)i.memory_bytes,
                           (unsigned long long)i.max_buffer_bytes);
            first_d = false;
        }
        o += "],\"note\":" + quote(b.note) + "}";
    }
    return o + "]";
}

}  // namespace sdgo::backends
