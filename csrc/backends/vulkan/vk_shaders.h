// vk_shaders.h — the compute shaders of csrc/backends/vulkan/shaders/,
// compiled to SPIR-V by glslc at build time and embedded in the library
// (CMakeLists.txt, cmake/embed_spirv.cmake).
#pragma once

#include <cstddef>

namespace sdgo::vk {

struct ShaderBinary {
    const char * name;          // the source's file name without ".comp"
    const unsigned char * code; // SPIR-V words, 4-byte aligned
    size_t size;                // bytes
};

// The shader called `name`, or NULL.
const ShaderBinary * find_shader(const char * name);

}  // namespace sdgo::vk
