// bench_devices — the compute-heavy graph ops (3x3 and 1x1 convolution,
// matrix multiply, attention) at full-size SD1.5 shapes, timed on every
// registered device side by side (the CPU and each Vulkan device, lavapipe
// included), so that a change to one backend's kernels is measured against
// the others in the same run.
//
//   bench_devices [threads] [reps] [filter]
//
// threads: CPU threads (default 2); reps: timed runs per case after one
// warm-up (default 3; the best is shown); filter: only cases whose name
// contains it. GFLOP/s counts 2*M*N*K (attention: 4*Nq*Nk*D per head).
// Weights are f16, as in a full-size f16 checkpoint.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backends/registry.h"
#include "core/graph.h"
#include "types/types.h"

using namespace sdgo;

namespace {

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Inputs and weights of one case on one device; the buffers live as long as
// the graph.
struct Setup {
    Device * dev = nullptr;
    std::vector<std::unique_ptr<Buffer>> buffers;
    std::vector<Tensor *> inputs;
    bool ok = true;

    Tensor * input(Graph & g, std::initializer_list<int64_t> ne) {
        Tensor * t = g.input(DType::f32, ne);
        inputs.push_back(t);
        return t;
    }
    Tensor * weight(Graph & g, DType type, std::initializer_list<int64_t> ne) {
        Tensor probe;
        probe.type = type;
        int i = 0;
        for (int64_t v : ne) probe.ne[i++] = v;
        set_contiguous_strides(&probe);
        std::vector<float> f(size_t(probe.nelements()));
        for (size_t j = 0; j < f.size(); j++) f[j] = float((j * 2654435761u) % 2001) / 1000.0f - 1.0f;
        std::vector<uint8_t> bytes(probe.nbytes());
        type_traits(type)->from_f32_ref(f.data(), bytes.data(), probe.nelements());
        std::unique_ptr<Buffer> b;
        Status s = dev->alloc_buffer(bytes.size(), &b);
        if (s.ok()) s = dev->write(b.get(), 0, bytes.data(), bytes.size());
        if (!s.ok()) {
            std::fprintf(stderr, "  %s: %s\n", dev->info().backend.c_str(), s.message().c_str());
            ok = false;
            return nullptr;
        }
        Tensor * t = g.weight(type, ne, b.get(), 0);
        buffers.push_back(std::move(b));
        return t;
    }
};

struct Case {
    std::string name;
    double flops;
    std::function<Tensor *(Graph &, Setup &)> build;
};

// Best seconds of reps runs after one warm-up, or a negative value when the
// device does not run the case.
double run_case(Device * dev, const Case & c, int threads, int reps) {
    Setup s;
    s.dev = dev;
    Graph g;
    Tensor * y = c.build(g, s);
    if (!s.ok || !y) return -1;
    g.set_output(y);
    for (Tensor * t : g.order())
        if (!t->is_leaf() && t->op != Op::view && !dev->supports_op(t)) return -1;
    std::unique_ptr<Backend> be;
    BackendOptions bo;
    bo.n_threads = threads;
    Status st = dev->new_backend(bo, &be);
    if (st.ok()) st = be->alloc_graph(g);
    for (Tensor * t : s.inputs) {
        if (!st.ok()) break;
        std::vector<float> d(size_t(t->nelements()));
        for (size_t j = 0; j < d.size(); j++) d[j] = float((j * 7919) % 1000) / 500.0f - 1.0f;
        st = be->set_tensor(t, d.data(), 0, d.size() * 4);
    }
    double best = 1e30;
    for (int r = 0; r <= reps && st.ok(); r++) {
        const double t0 = now_s();
        st = be->compute(g);
        const double dt = now_s() - t0;
        if (r > 0) best = std::min(best, dt);
    }
    if (!st.ok()) {
        std::fprintf(stderr, "  %s: %s\n", dev->info().backend.c_str(), st.message().c_str());
        return -1;
    }
    return best;
}

Case conv(int hw, int cin, int cout, int k) {
    Case c;
    c.name = "conv" + std::to_string(k) + "x" + std::to_string(k) + " " + std::to_string(hw) + "^2 " +
             std::to_string(cin) + "->" + std::to_string(cout);
    c.flops = 2.0 * hw * hw * double(cout) * cin * k * k;
    c.build = [=](Graph & g, Setup & s) -> Tensor * {
        Tensor * w = s.weight(g, DType::f16, {k, k, cin, cout});
        Tensor * b = s.input(g, {cout});
        Tensor * x = s.input(g, {hw, hw, cin, 1});
        if (!w) return nullptr;
        return g.conv2d(w, x, b, 1, 1, k / 2, k / 2);
    };
    return c;
}

Case matmul(int k, int n, int m) {
    Case c;
    c.name = "mul_mat " + std::to_string(n) + "x" + std::to_string(m) + "x" + std::to_string(k);
    c.flops = 2.0 * k * double(n) * m;
    c.build = [=](Graph & g, Setup & s) -> Tensor * {
        Tensor * w = s.weight(g, DType::f16, {k, n});
        Tensor * x = s.input(g, {k, m});
        if (!w) return nullptr;
        return g.mul_mat(w, x);
    };
    return c;
}

Case attention(int nq, int nk, int d, int heads) {
    Case c;
    c.name = "attention " + std::to_string(nq) + "x" + std::to_string(nk) + " d" + std::to_string(d) + " h" +
             std::to_string(heads);
    c.flops = 4.0 * nq * double(nk) * d * heads;
    c.build = [=](Graph & g, Setup & s) -> Tensor * {
        Tensor * q = s.input(g, {d, nq, heads, 1});
        Tensor * kk = s.input(g, {d, nk, heads, 1});
        Tensor * v = s.input(g, {d, nk, heads, 1});
        return g.attention(q, kk, v, 1.0f / std::sqrt(float(d)));
    };
    return c;
}

}  // namespace

int main(int argc, char ** argv) {
    const int threads = argc > 1 ? std::max(1, std::atoi(argv[1])) : 2;
    const int reps = argc > 2 ? std::max(1, std::atoi(argv[2])) : 3;
    const char * filter = argc > 3 ? argv[3] : "";
    // Full-size SD1.5 shapes at 256x256 (latent 32x32) and the VAE decoder's.
    const std::vector<Case> cases = {
        conv(32, 320, 320, 3), conv(16, 640, 640, 3), conv(8, 1280, 1280, 3), conv(32, 320, 320, 1),
        conv(64, 256, 256, 3),  // a VAE decoder level at 256x256 output (smaller than its real sizes)
        matmul(320, 320, 1024), matmul(320, 2560, 1024), matmul(1280, 320, 1024), matmul(768, 320, 77),
        attention(1024, 1024, 40, 8), attention(1024, 77, 40, 8),
    };
    std::vector<Device *> devs = backends::all_devices();
    std::printf("%-30s", "case (GFLOP/s, ms)");
    for (Device * d : devs) std::printf(" %28.28s", (d->info().backend + ":" + d->info().name).c_str());
    std::printf("\n");
    for (const Case & c : cases) {
        if (*filter && c.name.find(filter) == std::string::npos) continue;
        std::printf("%-30s", c.name.c_str());
        std::fflush(stdout);
        for (Device * d : devs) {
            const double t = run_case(d, c, threads, reps);
            if (t < 0)
                std::printf(" %28s", "-");
            else
                std::printf(" %16.1f %9.2fms", c.flops / t / 1e9, t * 1e3);
            std::fflush(stdout);
        }
        std::printf("\n");
    }
    return 0;
}
