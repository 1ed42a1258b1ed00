// bench_types — speed of the element-type conversions (single thread).
//
//   bench_types [--quick]
//
// Decoders (to_f32) per runnable code path, in GB/s of f32 written and
// Melem/s, on a 1280 x 1280 weight (an SD linear): these run inside GEMM
// packing. Encoders: reference (imatrix NULL) and importance-weighted
// (all-ones imatrix, sd.cpp's converter path), in Melem/s.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/type_convert.h"
#include "backends/cpu/cpu_features.h"
#include "types/types.h"

using namespace sdgo;

namespace {

double best_time(const std::function<void()> & fn, int reps, double budget) {
    using clock = std::chrono::steady_clock;
    fn();
    double best = 1e30, spent = 0;
    for (int r = 0; r < reps && (r < 2 || spent < budget); r++) {
        auto t0 = clock::now();
        fn();
        double dt = std::chrono::duration<double>(clock::now() - t0).count();
        best = std::min(best, dt);
        spent += dt;
    }
    return best;
}

}  // namespace

int main(int argc, char ** argv) {
    const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
    const int64_t npr = 1280, nrows = quick ? 64 : 1280;
    const int64_t n = npr * nrows;
    std::mt19937 rng(1);
    std::normal_distribution<float> nd(0.0f, 0.02f);
    std::vector<float> x(n), y(n);
    for (float & v : x) v = nd(rng);
    const double budget = quick ? 0.05 : 0.5;

    std::printf("decode (to_f32), %lld elements\n", (long long)n);
    std::printf("  %-6s %-7s %10s %10s\n", "type", "path", "Melem/s", "GB/s out");
    for (DType t : {DType::f16, DType::bf16, DType::q8_0, DType::q4_0, DType::q4_1, DType::q5_0, DType::q5_1}) {
        std::vector<uint8_t> q(row_size(t, npr) * nrows);
        type_traits(t)->quantize(x.data(), q.data(), nrows, npr, nullptr);
        for (cpu::CodePath p : cpu::runnable_code_paths()) {
            if (p != cpu::CodePath::scalar && !cpu::has_simd_to_f32(t, p)) continue;
            const ToF32Fn fn = cpu::to_f32_for(t, p);
            const double s = best_time([&] { fn(q.data(), y.data(), n); }, quick ? 3 : 20, budget);
            std::printf("  %-6s %-7s %10.0f %10.2f\n", dtype_name(t), cpu::code_path_name(p), n / s / 1e6,
                        n * 4.0 / s / 1e9);
        }
    }

    std::printf("encode (quantize), %lld elements\n", (long long)n);
    std::printf("  %-6s %12s %14s\n", "type", "ref Melem/s", "imatrix Melem/s");
    std::vector<float> ones(npr, 1.0f);
    for (DType t : {DType::f16, DType::bf16, DType::q8_0, DType::q4_0, DType::q4_1, DType::q5_0, DType::q5_1}) {
        const TypeTraits * tr = type_traits(t);
        std::vector<uint8_t> q(row_size(t, npr) * nrows);
        const double s_ref = best_time([&] { tr->quantize(x.data(), q.data(), nrows, npr, nullptr); }, 5, budget);
        const double s_imat = best_time([&] { tr->quantize(x.data(), q.data(), nrows, npr, ones.data()); }, 3, budget);
        std::printf("  %-6s %12.0f %14.1f\n", tr->name, n / s_ref / 1e6, n / s_imat / 1e6);
    }
    return 0;
}
