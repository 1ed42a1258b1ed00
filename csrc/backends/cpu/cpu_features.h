// cpu_features.h — what this CPU can run, and which compiled code path to use.
//
// The library is built once with several instruction-set variants of its hot
// kernels (files named *_avx2.cpp, *_avx512.cpp, *_neon.cpp); the code path is
// chosen at run time from the features detected here, so one build runs on
// any x86-64 (or arm64) machine.
#pragma once

#include <string>
#include <vector>

namespace sdgo::cpu {

enum class CodePath : int {
    scalar = 0,  // portable C++; always available
    avx2   = 1,  // AVX2 + FMA + F16C
    avx512 = 2,  // AVX-512 F/BW/VL/DQ (+ VNNI where present), implies the AVX2 set
    neon   = 3,  // arm64 Advanced SIMD
};

struct CpuInfo {
    std::string arch;  // "x86_64", "aarch64", ...
    std::string model; // the processor's name where the CPU reports one ("" otherwise)
    // x86
    bool sse42 = false, avx = false, avx2 = false, fma = false, f16c = false;
    bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
    bool avx512_vnni = false, avx512_bf16 = false, avx_vnni = false;
    // arm64
    bool neon = false, dotprod = false, fp16 = false;
    int logical_cores = 1;   // CPUs this process may run on
    int physical_cores = 1;  // distinct cores among them
    std::vector<std::string> feature_names() const;
};

// Detected once, on first use; thread-safe.
const CpuInfo & cpu_info();

const char * code_path_name(CodePath p);
bool parse_code_path(const std::string & name, CodePath * out);
bool code_path_compiled(CodePath p);  // built into this library
bool code_path_runnable(CodePath p);  // compiled in and supported by this CPU
CodePath best_code_path();            // the fastest runnable path
std::vector<CodePath> runnable_code_paths();  // best first

}  // namespace sdgo::cpu
