// bench_ops — throughput of the memory-bound graph ops at SD shapes on the CPU
// backend: group norm, softmax, SiLU, GELU, layer norm, add with broadcast,
// and an end-to-end SD ResNet block (GN, SiLU, 3x3 convs, skip).
//
//   bench_ops [threads] [reps]
//
// GB/s counts the minimum traffic: every input byte read once and every
// output byte written once (an op making more passes shows a lower figure).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "core/graph.h"

using namespace sdgo;

namespace {

// A weight over host memory the caller keeps alive (the CPU device computes
// on host memory directly); the wrapping buffers live for the whole run.
Tensor * host_weight(Graph & g, DType type, std::initializer_list<int64_t> ne, const void * data) {
    static std::vector<std::unique_ptr<Buffer>> keep;
    Tensor probe;
    probe.type = type;
    int i = 0;
    for (int64_t v : ne) probe.ne[i++] = v;
    set_contiguous_strides(&probe);
    std::unique_ptr<Buffer> b;
    if (!cpu::device()->wrap_host(data, probe.nbytes(), &b).ok()) return nullptr;
    keep.push_back(std::move(b));
    return g.weight(type, ne, keep.back().get(), 0);
}


double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Bench {
    int threads;
    int reps;
};

// Builds the graph with f32 inputs filled with a pattern, runs it reps times
// and returns the median seconds per compute.
double time_graph(const Bench & b, const std::function<Tensor *(Graph &)> & build, size_t * bytes_in_out,
                  bool show_profile = false) {
    Graph g;
    Tensor * y = build(g);
    g.set_output(y);
    CpuBackend be(b.threads, cpu::best_code_path());
    Status st = be.alloc_graph(g);
    if (!st.ok()) {
        std::fprintf(stderr, "alloc failed: %s\n", st.message().c_str());
        std::exit(1);
    }
    size_t bytes = y->nbytes();
    for (Tensor * t : g.leaves()) {
        bytes += t->nbytes();
        if (!(t->flags & kFlagInput)) continue;
        std::vector<float> d(static_cast<size_t>(t->nelements()));
        for (size_t i = 0; i < d.size(); i++) d[i] = static_cast<float>((i * 7919) % 1000) / 250.0f - 2.0f;
        be.set_tensor(t, d.data(), 0, d.size() * 4);
    }
    if (bytes_in_out) *bytes_in_out = bytes;
    std::vector<double> times;
    for (int r = 0; r < b.reps + 1; r++) {
        const double t0 = now_s();
        st = be.compute(g);
        const double t1 = now_s();
        if (!st.ok()) {
            std::fprintf(stderr, "compute failed: %s\n", st.message().c_str());
            std::exit(1);
        }
        if (r > 0) times.push_back(t1 - t0);  // first run warms caches and pages
    }
    std::sort(times.begin(), times.end());
    if (show_profile) {
        be.set_profiling(true);
        be.compute(g);
        std::printf("  one run by op:\n%s", be.profile_report().c_str());
    }
    return times[times.size() / 2];
}

void report(const char * name, const std::string & shape, double s, size_t bytes) {
    std::printf("%-14s %-22s %9.3f ms %8.2f GB/s\n", name, shape.c_str(), s * 1e3, bytes / s / 1e9);
}

}  // namespace

int main(int argc, char ** argv) {
    Bench b{argc > 1 ? std::atoi(argv[1]) : 2, argc > 2 ? std::atoi(argv[2]) : 10};
    if (b.threads < 1) b.threads = 1;
    if (b.reps < 1) b.reps = 1;
    std::printf("bench_ops: %d threads, code path %s, median of %d runs\n", b.threads,
                cpu::code_path_name(cpu::best_code_path()), b.reps);
    size_t bytes = 0;
    double s;

    // Reference point: a plain copy of 32 MiB (memory bandwidth, one pass).
    s = time_graph(b, [](Graph & g) { return g.scale(g.input(DType::f32, {128, 128, 512, 1}), 1.0f); }, &bytes);
    report("copy (scale 1)", "128x128x512", s, bytes);
    struct GN {
        int64_t w, h, c;
    };
    static std::vector<float> gw(1280, 1.0f), gb(1280, 0.0f);
    for (GN sh : {GN{64, 64, 320}, GN{32, 32, 640}, GN{128, 128, 512}, GN{256, 256, 256}}) {
        s = time_graph(b, [&](Graph & g) {
            Tensor * x = g.input(DType::f32, {sh.w, sh.h, sh.c, 1});
            return g.group_norm(x, 32, 1e-5f, host_weight(g, DType::f32, {sh.c}, gw.data()),
                                host_weight(g, DType::f32, {sh.c}, gb.data()));
        }, &bytes);
        report("group_norm", std::to_string(sh.w) + "x" + std::to_string(sh.h) + "x" + std::to_string(sh.c), s, bytes);
    }
    s = time_graph(b, [](Graph & g) {
        return g.silu(g.group_norm(g.input(DType::f32, {128, 128, 512, 1}), 32, 1e-6f));
    }, &bytes);
    report("gn->silu(auto)", "128x128x512", s, bytes);  // alloc_graph fuses this pair
    s = time_graph(b, [](Graph & g) {
        return g.group_norm_silu(g.input(DType::f32, {128, 128, 512, 1}), 32, 1e-6f);
    }, &bytes);
    report("gn_silu fused", "128x128x512", s, bytes);
    s = time_graph(b, [](Graph & g) { return g.upscale_nearest(g.input(DType::f32, {64, 64, 512, 1}), 2); }, &bytes);
    report("upscale x2", "64x64x512", s, bytes);
    s = time_graph(b, [](Graph & g) {
        return g.cont(g.permute(g.input(DType::f32, {64, 64, 320, 1}), 1, 2, 0, 3));
    }, &bytes);
    report("to tokens", "64x64x320", s, bytes);
    s = time_graph(b, [](Graph & g) {
        return g.concat(g.input(DType::f32, {64, 64, 640, 1}), g.input(DType::f32, {64, 64, 320, 1}), 2);
    }, &bytes);
    report("concat ch", "64x64x(640+320)", s, bytes);
    s = time_graph(b, [](Graph & g) { return g.silu(g.input(DType::f32, {64, 64, 320, 1})); }, &bytes);
    report("silu", "64x64x320", s, bytes);
    s = time_graph(b, [](Graph & g) { return g.gelu(g.input(DType::f32, {2560, 4096})); }, &bytes);
    report("gelu(erf)", "2560x4096", s, bytes);
    s = time_graph(b, [](Graph & g) {
        return g.add(g.input(DType::f32, {64, 64, 320, 1}), g.input(DType::f32, {1, 1, 320, 1}));
    }, &bytes);
    report("add bcast", "64x64x320 + 320", s, bytes);
    s = time_graph(b, [](Graph & g) { return g.layer_norm(g.input(DType::f32, {320, 4096}), 1e-5f); }, &bytes);
    report("layer_norm", "320x4096", s, bytes);
    s = time_graph(b, [](Graph & g) { return g.softmax(g.input(DType::f32, {4096, 1024}), 0.125f); }, &bytes);
    report("softmax", "4096x1024", s, bytes);
    s = time_graph(b, [](Graph & g) { return g.softmax(g.input(DType::f32, {77, 4096, 8}), 0.125f); }, &bytes);
    report("softmax", "77x4096x8", s, bytes);

    // SD ResNet block at 32x32x320 (256x256 image, level 0): f16 weights.
    {
        const int64_t W = 32, H = 32, C = 320;
        static std::vector<uint16_t> w1(9 * C * C, 0x2000), w2(9 * C * C, 0x2000);
        static std::vector<float> bias(C, 0.01f), emb(C, 0.1f);
        s = time_graph(b, [&](Graph & g) {
            Tensor * x = g.input(DType::f32, {W, H, C, 1});
            Tensor * h = g.conv2d(host_weight(g, DType::f16, {3, 3, C, C}, w1.data()), g.silu(g.group_norm(x, 32, 1e-5f)),
                                  host_weight(g, DType::f32, {C}, bias.data()), 1, 1, 1, 1);
            h = g.add(h, g.reshape(host_weight(g, DType::f32, {C}, emb.data()), {1, 1, C, 1}));
            h = g.conv2d(host_weight(g, DType::f16, {3, 3, C, C}, w2.data()), g.silu(g.group_norm(h, 32, 1e-5f)),
                         host_weight(g, DType::f32, {C}, bias.data()), 1, 1, 1, 1);
            return g.add(x, h);
        }, nullptr, true);
        const double flops = 2.0 * 2 * 9 * C * C * W * H;
        std::printf("%-14s %-22s %9.3f ms %8.2f GFLOP/s (two 3x3 convs)\n", "resnet block", "32x32x320 f16", s * 1e3,
                    flops / s / 1e9);
    }
    return 0;
}
