// bench_kernels — speed of the CPU kernels at Stable Diffusion shapes.
//
//   bench_kernels [--threads N] [--path scalar|avx2|avx512|neon] [--quick]
//                 [--only gemm|conv|attention] [--cpu-time]
//
// --cpu-time (with --threads 1) times with the process CPU clock instead of
// the wall clock, which keeps numbers comparable on a loaded machine.
//
// Prints the measured f32 FMA peak, then GFLOP/s (2*M*N*K / time, best of a
// few repetitions) and the share of the peak for GEMM (M x N x K = tokens x
// out x in) per weight type, 3x3 convolution (implicit GEMM, f16 weights)
// and fused attention (flops counted as 4*Nq*Nk*D per head).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <ctime>

#include "backends/cpu/conv.h"
#include "backends/cpu/gemm_micro.h"
#include "backends/cpu/kernels.h"

using namespace sdgo;
using cpu::CodePath;

namespace {

std::vector<float> random_vec(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (auto & x : v) x = d(rng);
    return v;
}

// Best time in seconds of fn over `reps` runs after one warm-up, stopping
// early once `budget` seconds have been spent.
bool g_cpu_time = false;

double now_seconds() {
    if (g_cpu_time) {
        timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return ts.tv_sec + 1e-9 * ts.tv_nsec;
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double best_time(const std::function<void()> & fn, int reps, double budget) {
    fn();
    double best = 1e30, spent = 0;
    for (int r = 0; r < reps && (r < 2 || spent < budget); r++) {
        const double t0 = now_seconds();
        fn();
        const double dt = now_seconds() - t0;
        best = std::min(best, dt);
        spent += dt;
    }
    return best;
}

void fail(const Status & st) {
    std::fprintf(stderr, "error: %s\n", st.message().c_str());
    std::exit(1);
}

}  // namespace

int main(int argc, char ** argv) {
    int threads = cpu::cpu_info().physical_cores;
    bool quick = false;
    std::string only;
    CodePath path = cpu::best_code_path();
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--quick") {
            quick = true;
        } else if (a == "--cpu-time") {
            g_cpu_time = true;
        } else if (a == "--only" && i + 1 < argc) {
            only = argv[++i];
        } else if (a == "--threads" && i + 1 < argc) {
            threads = std::max(1, std::atoi(argv[++i]));
        } else if (a == "--path" && i + 1 < argc) {
            if (!cpu::parse_code_path(argv[++i], &path) || !cpu::code_path_runnable(path)) {
                std::fprintf(stderr, "code path %s is not runnable here\n", argv[i]);
                return 1;
            }
        } else {
            std::fprintf(stderr, "usage: %s [--threads N] [--path scalar|avx2|avx512|neon] [--quick] "
                         "[--only gemm|conv|attention] [--cpu-time]\n", argv[0]);
            return a == "--help" || a == "-h" ? 0 : 2;
        }
    }
    const int reps = quick ? 3 : 7;
    const double budget = quick ? 0.5 : 3.0;
    ThreadPool pool(threads), pool1(1);

    std::printf("sd-go kernel benchmark: path %s, %d thread(s)%s\n", cpu::code_path_name(path), threads,
                quick ? " (quick)" : "");
    if (g_cpu_time && threads != 1) {
        std::fprintf(stderr, "--cpu-time needs --threads 1\n");
        return 2;
    }
    // With --cpu-time the FMA loop is timed on the CPU clock too, so that the
    // shares of the peak compare like with like.
    auto cpu_time_peak = [&](CodePath p) {
        cpu::KernelSet ks;
        switch (p) {
#if defined(SDGO_HAVE_AVX512)
            case CodePath::avx512: cpu::avx512_isa::get_kernels(&ks); break;
#endif
#if defined(SDGO_HAVE_AVX2)
            case CodePath::avx2: cpu::avx2_isa::get_kernels(&ks); break;
#endif
#if defined(SDGO_HAVE_NEON)
            case CodePath::neon: cpu::neon_isa::get_kernels(&ks); break;
#endif
            default: cpu::scalar_isa::get_kernels(&ks); break;
        }
        double flops = 0;
        const double dt = best_time([&] { flops = ks.fma_loop(int64_t(1) << 22); }, 5, 1.0);
        return flops / dt / 1e9;
    };
    auto peak_of = [&](ThreadPool & p, CodePath cp, double seconds) {
        return g_cpu_time ? cpu_time_peak(cp) : cpu::measure_fma_peak_gflops(p, cp, seconds);
    };
    const double peak = peak_of(pool, path, quick ? 0.2 : 1.0);
    const double peak1 = peak_of(pool1, path, quick ? 0.2 : 1.0);
    std::printf("FMA peak (f32): %.1f GFLOP/s on %d thread(s), %.1f GFLOP/s on 1 thread%s\n\n", peak, threads, peak1,
                g_cpu_time ? " (CPU time)" : "");
    for (CodePath p : cpu::runnable_code_paths())
        if (p != path)
            std::printf("  (peak with %s: %.1f GFLOP/s on %d thread(s))\n", cpu::code_path_name(p),
                        peak_of(pool, p, quick ? 0.1 : 0.5), threads);
    std::printf("\n");

    // ---- GEMM ----
    struct Shape {
        int64_t M, N, K;
        const char * what;
    };
    auto want = [&](const char * what) { return only.empty() || only == what; };
    std::vector<Shape> shapes = {
        {4096, 320, 320, "attn proj 64x64 latent"}, {1024, 640, 640, "attn proj 32x32"},
        {256, 1280, 1280, "attn proj 16x16"},       {4096, 1280, 320, "ff up 64x64"},
        {4096, 320, 1280, "ff down 64x64"},         {77, 320, 768, "cross-attn k/v"},
        {77, 1280, 768, "cross-attn k/v"},
    };
    std::vector<DType> types = {DType::f32, DType::f16, DType::q8_0, DType::q4_0};
    if (!quick) {
        types.push_back(DType::bf16);
        types.push_back(DType::q4_1);
        types.push_back(DType::q5_0);
        types.push_back(DType::q5_1);
    }
    if (!want("gemm")) shapes.clear();
    std::printf("GEMM  C[M,N] = A[M,K] * W[N,K]^T\n");
    std::printf("%-26s %-6s %10s %10s %8s\n", "M x N x K", "type", "ms", "GFLOP/s", "% peak");
    for (const Shape & s : shapes) {
        std::vector<float> A = random_vec((size_t)(s.M * s.K), 1);
        std::vector<float> Wf = random_vec((size_t)(s.N * s.K), 2);
        std::vector<float> C((size_t)(s.M * s.N));
        for (DType t : types) {
            const TypeTraits * tr = type_traits(t);
            if (!tr || !tr->from_f32_ref) continue;
            const size_t rs = row_size(t, s.K);
            std::vector<uint8_t> W(rs * (size_t)s.N);
            for (int64_t n = 0; n < s.N; n++) tr->from_f32_ref(Wf.data() + n * s.K, W.data() + n * rs, s.K);
            Status st;
            double dt = best_time(
                [&] {
                    st = cpu::gemm(pool, path, s.M, s.N, s.K, A.data(), s.K, W.data(), t, rs, C.data(), s.N, nullptr,
                                   false);
                },
                reps, budget);
            if (!st.ok()) fail(st);
            const double gf = 2.0 * s.M * s.N * s.K / dt / 1e9;
            char name[64];
            std::snprintf(name, sizeof name, "%lldx%lldx%lld", (long long)s.M, (long long)s.N, (long long)s.K);
            std::printf("%-26s %-6s %10.3f %10.1f %7.0f%%\n", name, tr->name, dt * 1e3, gf, 100.0 * gf / peak);
        }
    }

    // ---- convolution ----
    struct ConvShape {
        int64_t H, W, Cin, Cout;
        cpu::ConvStrategy strategy;
    };
    const auto AUTO = cpu::ConvStrategy::automatic, WROWS = cpu::ConvStrategy::weight_rows,
               PROWS = cpu::ConvStrategy::pixel_rows;
    std::vector<ConvShape> convs = {{64, 64, 320, 320, AUTO},     {128, 128, 512, 512, AUTO},
                                    {256, 256, 256, 256, AUTO},   {16, 16, 1280, 1280, PROWS},
                                    {16, 16, 1280, 1280, WROWS},  {8, 8, 1280, 1280, PROWS},
                                    {8, 8, 1280, 1280, WROWS}};
    if (quick) convs = {convs[0], convs[1], convs[3], convs[5], convs[6]};
    if (!want("conv")) convs.clear();
    std::printf("\nconv2d 3x3 stride 1 pad 1, batch 1, f16 weights (implicit GEMM)\n");
    std::printf("%-26s %-12s %10s %10s %8s\n", "HxW Cin->Cout", "strategy", "ms", "GFLOP/s", "% peak");
    for (const ConvShape & c : convs) {
        std::vector<float> src = random_vec((size_t)(c.Cin * c.H * c.W), 3);
        std::vector<float> wf = random_vec((size_t)(c.Cout * c.Cin * 9), 4);
        std::vector<uint16_t> w(wf.size());
        for (size_t i = 0; i < wf.size(); i++) w[i] = fp32_to_fp16(wf[i] * 0.05f);
        std::vector<float> dst((size_t)(c.Cout * c.H * c.W));
        Status st;
        double dt = best_time(
            [&] {
                st = cpu::conv2d_strategy(c.strategy, pool, path, 1, c.Cin, c.H, c.W, src.data(), c.Cout, 3, 3,
                                          w.data(), DType::f16, nullptr, 1, 1, 1, 1, dst.data());
            },
            quick ? 2 : 3, budget);
        if (!st.ok()) fail(st);
        const double gf = 2.0 * c.Cout * c.Cin * 9 * c.H * c.W / dt / 1e9;
        char name[64];
        std::snprintf(name, sizeof name, "%lldx%lld %lld->%lld", (long long)c.H, (long long)c.W, (long long)c.Cin,
                      (long long)c.Cout);
        const char * sname = c.strategy == AUTO ? "auto" : c.strategy == WROWS ? "weight_rows" : "pixel_rows";
        std::printf("%-26s %-12s %10.2f %10.1f %7.0f%%\n", name, sname, dt * 1e3, gf, 100.0 * gf / peak);
    }

    // ---- attention ----
    struct AttnShape {
        int64_t N, Nk, H, D;
        bool causal;
    };
    std::vector<AttnShape> attns = {{4096, 4096, 8, 40, false}, {1024, 1024, 10, 64, false},
                                    {4096, 77, 8, 40, false},   {1024, 1024, 10, 64, true},
                                    {4096, 4096, 1, 512, false},
                                    {1024, 1024, 8, 80, false},   {256, 256, 8, 160, false}};
    if (!want("attention")) attns.clear();
    std::printf("\nattention (fused, online softmax), flops = 4*Nq*Nk*D*heads\n");
    std::printf("%-26s %10s %10s %8s\n", "Nq x Nk, heads x D", "ms", "GFLOP/s", "% peak");
    for (const AttnShape & a : attns) {
        const int64_t D = a.D, H = a.H;
        // [N][H][D] token-major, as produced by the projections.
        std::vector<float> q = random_vec((size_t)(a.N * H * D), 5), k = random_vec((size_t)(a.Nk * H * D), 6),
                           v = random_vec((size_t)(a.Nk * H * D), 7), o((size_t)(a.N * H * D));
        Status st;
        double dt = best_time(
            [&] {
                st = cpu::attention(pool, path, 1, H, a.N, a.Nk, D, q.data(), 0, D, H * D, k.data(), 0, D, H * D,
                                    v.data(), 0, D, H * D, o.data(), 0, D, H * D, 1.0f / std::sqrt((float)D),
                                    a.causal);
            },
            quick ? 2 : 4, budget);
        if (!st.ok()) fail(st);
        double flops = 4.0 * a.N * a.Nk * D * H;
        if (a.causal) flops *= 0.5;
        const double gf = flops / dt / 1e9;
        char name[64];
        std::snprintf(name, sizeof name, "%lldx%lld, %lldx%lld%s", (long long)a.N, (long long)a.Nk, (long long)H,
                      (long long)D, a.causal ? " causal" : "");
        std::printf("%-26s %10.2f %10.1f %7.0f%%\n", name, dt * 1e3, gf, 100.0 * gf / peak);
    }
    return 0;
}
