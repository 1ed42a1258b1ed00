#include "backends/cpu/cpu_features.h"

#include <fstream>
#include <set>
#include <thread>
#include <utility>

#if defined(__x86_64__) || defined(_M_X64)
#  include <cpuid.h>
#  define SDGO_X86 1
#endif
#if defined(__linux__)
#  include <sched.h>
#  include <sys/auxv.h>
#endif

namespace sdgo::cpu {
namespace {

#if SDGO_X86
uint64_t read_xcr0() {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (static_cast<uint64_t>(edx) << 32) | eax;
}

// The processor brand string (CPUID leaves 0x80000002..4), trimmed.
std::string x86_brand() {
    unsigned a, b, cx, d;
    if (!__get_cpuid(0x80000000u, &a, &b, &cx, &d) || a < 0x80000004u) return std::string();
    char s[49] = {};
    for (unsigned leaf = 0; leaf < 3; leaf++) {
        __get_cpuid(0x80000002u + leaf, &a, &b, &cx, &d);
        const unsigned w[4] = {a, b, cx, d};
        for (int i = 0; i < 4; i++)
            for (int k = 0; k < 4; k++) s[leaf * 16 + i * 4 + k] = static_cast<char>((w[i] >> (8 * k)) & 0xff);
    }
    std::string out(s);
    const size_t b0 = out.find_first_not_of(' '), e0 = out.find_last_not_of(' ');
    return b0 == std::string::npos ? std::string() : out.substr(b0, e0 - b0 + 1);
}

void detect_x86(CpuInfo & c) {
    c.arch = "x86_64";
    c.model = x86_brand();
    unsigned a, b, cx, d;
    if (!__get_cpuid(1, &a, &b, &cx, &d)) return;
    c.sse42 = cx & (1u << 20);
    const bool osxsave = cx & (1u << 27);
    const bool avx_hw = cx & (1u << 28);
    const bool fma_hw = cx & (1u << 12);
    const bool f16c_hw = cx & (1u << 29);
    uint64_t xcr0 = osxsave ? read_xcr0() : 0;
    const bool os_avx = (xcr0 & 0x6) == 0x6;        // XMM and YMM state
    const bool os_avx512 = (xcr0 & 0xe6) == 0xe6;   // plus opmask, ZMM_Hi256, Hi16_ZMM
    c.avx = avx_hw && os_avx;
    c.fma = fma_hw && c.avx;
    c.f16c = f16c_hw && c.avx;
    if (__get_cpuid_max(0, nullptr) >= 7) {
        __cpuid_count(7, 0, a, b, cx, d);
        c.avx2 = c.avx && (b & (1u << 5));
        if (os_avx512) {
            c.avx512f = b & (1u << 16);
            c.avx512dq = b & (1u << 17);
            c.avx512bw = b & (1u << 30);
            c.avx512vl = b & (1u << 31);
            c.avx512_vnni = cx & (1u << 11);
        }
        unsigned a1, b1, c1, d1;
        __cpuid_count(7, 1, a1, b1, c1, d1);
        c.avx_vnni = c.avx2 && (a1 & (1u << 4));
        c.avx512_bf16 = c.avx512f && (a1 & (1u << 5));
    }
}
#endif

int count_physical_cores(int logical) {
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return logical;
    std::set<std::pair<int, int>> cores;
    for (int i = 0; i < CPU_SETSIZE; i++) {
        if (!CPU_ISSET(i, &set)) continue;
        std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(i) + "/topology/";
        std::ifstream fc(base + "core_id"), fp(base + "physical_package_id");
        int core = -1, pkg = -1;
        if (!(fc >> core) || !(fp >> pkg)) return logical;
        cores.insert({pkg, core});
    }
    return cores.empty() ? logical : static_cast<int>(cores.size());
#else
    return logical;
#endif
}

int count_logical_cores() {
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    unsigned n = std::thread::hardware_concurrency();
    return n ? static_cast<int>(n) : 1;
}

CpuInfo detect() {
    CpuInfo c;
#if SDGO_X86
    detect_x86(c);
#elif defined(__aarch64__)
    c.arch = "aarch64";
    c.neon = true;
#  if defined(__linux__) && defined(AT_HWCAP)
    unsigned long hw = getauxval(AT_HWCAP);
    c.dotprod = hw & (1ul << 20);  // HWCAP_ASIMDDP
    c.fp16 = hw & (1ul << 10);     // HWCAP_ASIMDHP
#  endif
#else
    c.arch = "unknown";
#endif
    c.logical_cores = count_logical_cores();
    c.physical_cores = count_physical_cores(c.logical_cores);
    if (c.physical_cores < 1) c.physical_cores = 1;
    return c;
}

}  // namespace

std::vector<std::string> CpuInfo::feature_names() const {
    std::vector<std::string> v;
    auto add = [&](bool on, const char * n) { if (on) v.emplace_back(n); };
    add(sse42, "sse4.2"); add(avx, "avx"); add(avx2, "avx2"); add(fma, "fma"); add(f16c, "f16c");
    add(avx512f, "avx512f"); add(avx512bw, "avx512bw"); add(avx512vl, "avx512vl");
    add(avx512dq, "avx512dq"); add(avx512_vnni, "avx512_vnni"); add(avx512_bf16, "avx512_bf16");
    add(avx_vnni, "avx_vnni"); add(neon, "neon"); add(dotprod, "dotprod"); add(fp16, "fp16");
    return v;
}

const CpuInfo & cpu_info() {
    static const CpuInfo info = detect();
    return info;
}

const char * code_path_name(CodePath p) {
    switch (p) {
        case CodePath::scalar: return "scalar";
        case CodePath::avx2: return "avx2";
        case CodePath::avx512: return "avx512";
        case CodePath::neon: return "neon";
    }
    return "unknown";
}

bool parse_code_path(const std::string & name, CodePath * out) {
    for (CodePath p : {CodePath::scalar, CodePath::avx2, CodePath::avx512, CodePath::neon}) {
        if (name == code_path_name(p)) { *out = p; return true; }
    }
    return false;
}

bool code_path_compiled(CodePath p) {
    switch (p) {
        case CodePath::scalar: return true;
#if defined(SDGO_HAVE_AVX2)
        case CodePath::avx2: return true;
#endif
#if defined(SDGO_HAVE_AVX512)
        case CodePath::avx512: return true;
#endif
#if defined(SDGO_HAVE_NEON)
        case CodePath::neon: return true;
#endif
        default: return false;
    }
}

bool code_path_runnable(CodePath p) {
    if (!code_path_compiled(p)) return false;
    const CpuInfo & c = cpu_info();
    switch (p) {
        case CodePath::scalar: return true;
        case CodePath::avx2: return c.avx2 && c.fma && c.f16c;
        case CodePath::avx512:
            return c.avx2 && c.fma && c.f16c && c.avx512f && c.avx512bw && c.avx512vl && c.avx512dq;
        case CodePath::neon: return c.neon;
    }
    return false;
}

std::vector<CodePath> runnable_code_paths() {
    std::vector<CodePath> v;
    for (CodePath p : {CodePath::avx512, CodePath::avx2, CodePath::neon, CodePath::scalar})
        if (code_path_runnable(p)) v.push_back(p);
    return v;
}

CodePath best_code_path() { return runnable_code_paths().front(); }

}  // namespace sdgo::cpu
