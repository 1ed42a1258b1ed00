// Tests of every graph op on the CPU backend against plain double-precision
// references on random inputs, including odd sizes and non-contiguous views.
// Every op is also run with 1, 2 and 3 threads, which must give bit-identical
// results. Tolerances are stated at each check: |got - want| <= abs + rel*|want|.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "core/graph.h"
#include "testing.h"

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


struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
    uint32_t next() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return static_cast<uint32_t>(s >> 32);
    }
    float uni(float lo, float hi) { return lo + (hi - lo) * (next() / 4294967296.0f); }
};

// Reference tensor: doubles, dense in ggml order (ne0 fastest).
struct Host {
    int64_t ne[4] = {1, 1, 1, 1};
    std::vector<double> v;
    Host() = default;
    Host(int64_t a, int64_t b = 1, int64_t c = 1, int64_t d = 1) {
        ne[0] = a, ne[1] = b, ne[2] = c, ne[3] = d;
        v.assign(static_cast<size_t>(a * b * c * d), 0.0);
    }
    double & operator()(int64_t i0, int64_t i1 = 0, int64_t i2 = 0, int64_t i3 = 0) {
        return v[static_cast<size_t>(((i3 * ne[2] + i2) * ne[1] + i1) * ne[0] + i0)];
    }
    double operator()(int64_t i0, int64_t i1 = 0, int64_t i2 = 0, int64_t i3 = 0) const {
        return v[static_cast<size_t>(((i3 * ne[2] + i2) * ne[1] + i1) * ne[0] + i0)];
    }
};

Host host(const std::vector<float> & d, std::initializer_list<int64_t> ne) {
    int64_t n[4] = {1, 1, 1, 1};
    int i = 0;
    for (int64_t x : ne) n[i++] = x;
    Host h(n[0], n[1], n[2], n[3]);
    for (size_t k = 0; k < h.v.size(); k++) h.v[k] = d[k];
    return h;
}

// ggml permute semantics: source dim i goes to position ax[i].
Host permute(const Host & h, int a0, int a1, int a2, int a3) {
    const int ax[4] = {a0, a1, a2, a3};
    int64_t ne[4];
    for (int i = 0; i < 4; i++) ne[ax[i]] = h.ne[i];
    Host o(ne[0], ne[1], ne[2], ne[3]);
    int64_t s[4];
    for (s[3] = 0; s[3] < h.ne[3]; s[3]++)
        for (s[2] = 0; s[2] < h.ne[2]; s[2]++)
            for (s[1] = 0; s[1] < h.ne[1]; s[1]++)
                for (s[0] = 0; s[0] < h.ne[0]; s[0]++) {
                    int64_t d[4];
                    for (int i = 0; i < 4; i++) d[ax[i]] = s[i];
                    o(d[0], d[1], d[2], d[3]) = h(s[0], s[1], s[2], s[3]);
                }
    return o;
}

struct Inputs {
    Rng rng;
    std::vector<std::pair<Tensor *, std::vector<float>>> f;
    std::vector<std::pair<Tensor *, std::vector<int32_t>>> i;
    explicit Inputs(uint64_t seed) : rng(seed) {}
    Tensor * f32(Graph & g, std::initializer_list<int64_t> ne, float lo = -2.0f, float hi = 2.0f) {
        Tensor * t = g.input(DType::f32, ne);
        std::vector<float> d(static_cast<size_t>(t->nelements()));
        for (auto & x : d) x = rng.uni(lo, hi);
        f.push_back({t, d});
        return t;
    }
    Tensor * i32(Graph & g, std::initializer_list<int64_t> ne, const std::vector<int32_t> & vals) {
        Tensor * t = g.input(DType::i32, ne);
        i.push_back({t, vals});
        return t;
    }
    const std::vector<float> & data(size_t k) const { return f[k].second; }
};

using Build = std::function<Tensor *(Graph &, Inputs &)>;

struct Result {
    Status st;
    std::vector<float> out;
    int64_t ne[4] = {0, 0, 0, 0};
    std::vector<std::vector<float>> in;
};

Result run(const Build & build, int threads, cpu::CodePath path = cpu::best_code_path(), uint64_t seed = 42) {
    Result r;
    Graph g;
    Inputs in(seed);
    Tensor * y = build(g, in);
    g.set_output(y);
    CpuBackend be(threads, path);
    be.set_min_parallel_work(0);  // split even tiny jobs across the threads
    r.st = be.alloc_graph(g);
    if (!r.st.ok()) return r;
    for (auto & p : in.f) {
        r.st = be.set_tensor(p.first, p.second.data(), 0, p.second.size() * 4);
        if (!r.st.ok()) return r;
        r.in.push_back(p.second);
    }
    for (auto & p : in.i) {
        r.st = be.set_tensor(p.first, p.second.data(), 0, p.second.size() * 4);
        if (!r.st.ok()) return r;
    }
    r.st = be.compute(g);
    if (!r.st.ok()) return r;
    for (int k = 0; k < 4; k++) r.ne[k] = y->ne[k];
    r.out.resize(static_cast<size_t>(y->nelements()));
    r.st = be.get_tensor(y, r.out.data(), 0, r.out.size() * 4);
    return r;
}

// One result per runnable code path (best first), each checked to be
// bit-identical with 1, 2 and 3 threads. Same inputs for all runs.
struct Multi {
    std::vector<Result> runs;
    std::vector<std::vector<float>> in;
    Status st;
};

Multi run_all_threads(const Build & build) {
    Multi m;
    for (cpu::CodePath path : cpu::runnable_code_paths()) {
        Result r1 = run(build, 1, path);
        if (!r1.st.ok()) {
            ::sdgo::testing::report_failure(__FILE__, __LINE__,
                                            std::string("compute failed (") + cpu::code_path_name(path) +
                                                "): " + r1.st.message());
            m.st = r1.st;
            return m;
        }
        for (int t : {2, 3}) {
            Result rt = run(build, t, path);
            CHECK(rt.st.ok());
            CHECK(rt.out.size() == r1.out.size());
            if (rt.out.size() == r1.out.size() && !r1.out.empty()) {
                if (std::memcmp(rt.out.data(), r1.out.data(), r1.out.size() * 4) != 0)
                    ::sdgo::testing::report_failure(
                        __FILE__, __LINE__,
                        ::sdgo::strprintf("%d threads differ from 1 thread on path %s", t, cpu::code_path_name(path)));
            }
        }
        if (m.in.empty()) m.in = r1.in;
        m.runs.push_back(std::move(r1));
    }
    return m;
}

// Compares the output with a reference; reports the first few mismatches.
void expect_close(const Result & r, const Host & want, double abs_tol, double rel_tol, const std::string & what) {
    if (!r.st.ok()) return;
    for (int k = 0; k < 4; k++)
        if (r.ne[k] != want.ne[k]) {
            ::sdgo::testing::report_failure(__FILE__, __LINE__, what + ": shape mismatch");
            return;
        }
    int bad = 0;
    double worst = 0;
    for (size_t k = 0; k < want.v.size(); k++) {
        if (std::isfinite(want.v[k])) worst = std::max(worst, std::fabs(r.out[k] - want.v[k]));
        if (r.out[k] == want.v[k]) continue;  // also equal infinities
        const double d = std::fabs(r.out[k] - want.v[k]);
        if (!(d <= abs_tol + rel_tol * std::fabs(want.v[k]))) {
            if (bad++ < 5)
                ::sdgo::testing::report_failure(
                    __FILE__, __LINE__,
                    ::sdgo::strprintf("%s: element %zu got %.9g want %.9g", what.c_str(), k, r.out[k], want.v[k]));
        }
    }
    if (std::getenv("SDGO_TEST_VERBOSE")) std::printf("    %-28s max abs error %.3g\n", what.c_str(), worst);
}

// Every code path's result against the reference.
void expect_close(const Multi & m, const Host & want, double abs_tol, double rel_tol, const char * what) {
    for (size_t i = 0; i < m.runs.size(); i++)
        expect_close(m.runs[i], want, abs_tol, rel_tol,
                     std::string(what) + " [" + cpu::code_path_name(cpu::runnable_code_paths()[i]) + "]");
}

double silu_d(double x) { return x / (1.0 + std::exp(-x)); }
double gelu_d(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
double gelu_tanh_d(double x) {
    return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}
double quick_gelu_d(double x) { return x / (1.0 + std::exp(-1.702 * x)); }

Host map(const Host & h, const std::function<double(double)> & f) {
    Host o = h;
    for (auto & x : o.v) x = f(x);
    return o;
}

}  // namespace

TEST(unary_ops_match_reference) {
    struct U {
        const char * name;
        std::function<Tensor *(Graph &, Tensor *)> op;
        std::function<double(double)> ref;
    };
    const std::vector<U> ops = {
        {"silu", [](Graph & g, Tensor * x) { return g.silu(x); }, silu_d},
        {"gelu", [](Graph & g, Tensor * x) { return g.gelu(x); }, gelu_d},
        {"gelu_tanh", [](Graph & g, Tensor * x) { return g.gelu_tanh(x); }, gelu_tanh_d},
        {"quick_gelu", [](Graph & g, Tensor * x) { return g.quick_gelu(x); }, quick_gelu_d},
        {"scale", [](Graph & g, Tensor * x) { return g.scale(x, -1.75f, 0.5f); },
         [](double x) { return x * -1.75 + 0.5; }},
        {"clamp", [](Graph & g, Tensor * x) { return g.clamp(x, -0.5f, 1.25f); },
         [](double x) { return std::min(1.25, std::max(-0.5, x)); }},
        {"relu", [](Graph & g, Tensor * x) { return g.relu(x); }, [](double x) { return x > 0 ? x : 0.0; }},
        {"tanh", [](Graph & g, Tensor * x) { return g.tanh(x); }, [](double x) { return std::tanh(x); }},
        {"sigmoid", [](Graph & g, Tensor * x) { return g.sigmoid(x); }, [](double x) { return 1 / (1 + std::exp(-x)); }},
        {"exp", [](Graph & g, Tensor * x) { return g.exp(x); }, [](double x) { return std::exp(x); }},
        {"sqrt(sqr)", [](Graph & g, Tensor * x) { return g.sqrt(g.sqr(x)); }, [](double x) { return std::fabs(x); }},
    };
    for (const U & u : ops) {
        // Contiguous, odd shape (6 rows small enough to split unevenly).
        Multi r = run_all_threads([&](Graph & g, Inputs & in) { return u.op(g, in.f32(g, {37, 5, 3, 2}, -6, 6)); });
        expect_close(r, map(host(r.in[0], {37, 5, 3, 2}), u.ref), 2e-6, 2e-6, u.name);  // f32 vs double
        // Non-contiguous: a permuted view.
        Multi p = run_all_threads(
            [&](Graph & g, Inputs & in) { return u.op(g, g.permute(in.f32(g, {7, 300, 3}, -6, 6), 1, 2, 0, 3)); });
        expect_close(p, map(permute(host(p.in[0], {7, 300, 3}), 1, 2, 0, 3), u.ref), 2e-6, 2e-6, u.name);
    }
}

TEST(binary_ops_broadcast_like_ggml_repeat) {
    struct B {
        const char * name;
        int op;
    };
    auto apply = [](Graph & g, int op, Tensor * a, Tensor * b) {
        switch (op) {
            case 0: return g.add(a, b);
            case 1: return g.sub(a, b);
            case 2: return g.mul(a, b);
            default: return g.div(a, b);
        }
    };
    auto refop = [](int op, double a, double b) {
        switch (op) {
            case 0: return a + b;
            case 1: return a - b;
            case 2: return a * b;
            default: return a / b;
        }
    };
    struct Shape {
        int64_t a[4], b[4];
    };
    const std::vector<Shape> shapes = {
        {{13, 7, 3, 2}, {13, 7, 3, 2}},  // same
        {{13, 7, 3, 2}, {13, 1, 3, 1}},  // b repeated over dims 1, 3
        {{13, 7, 3, 2}, {1, 1, 3, 1}},   // per-channel (bias-like)
        {{13, 7, 3, 2}, {1, 1, 1, 1}},   // scalar
        {{1, 7, 3, 2}, {13, 7, 1, 2}},   // both broadcast
        {{12, 4, 1, 1}, {6, 2, 1, 1}},   // tiling: b repeated twice per dim
    };
    for (int op = 0; op < 4; op++) {
        for (const Shape & s : shapes) {
            Multi r = run_all_threads([&](Graph & g, Inputs & in) {
                Tensor * a = in.f32(g, {s.a[0], s.a[1], s.a[2], s.a[3]});
                Tensor * b = in.f32(g, {s.b[0], s.b[1], s.b[2], s.b[3]}, 0.5f, 2.0f);
                return apply(g, op, a, b);
            });
            Host ha = host(r.in[0], {s.a[0], s.a[1], s.a[2], s.a[3]});
            Host hb = host(r.in[1], {s.b[0], s.b[1], s.b[2], s.b[3]});
            Host want(std::max(s.a[0], s.b[0]), std::max(s.a[1], s.b[1]), std::max(s.a[2], s.b[2]),
                      std::max(s.a[3], s.b[3]));
            for (int64_t i3 = 0; i3 < want.ne[3]; i3++)
                for (int64_t i2 = 0; i2 < want.ne[2]; i2++)
                    for (int64_t i1 = 0; i1 < want.ne[1]; i1++)
                        for (int64_t i0 = 0; i0 < want.ne[0]; i0++)
                            want(i0, i1, i2, i3) =
                                refop(op, ha(i0 % ha.ne[0], i1 % ha.ne[1], i2 % ha.ne[2], i3 % ha.ne[3]),
                                      hb(i0 % hb.ne[0], i1 % hb.ne[1], i2 % hb.ne[2], i3 % hb.ne[3]));
            expect_close(r, want, 1e-6, 1e-6, "binary");  // one f32 rounding
        }
        // Transposed operand with a per-row broadcast.
        Multi t = run_all_threads([&](Graph & g, Inputs & in) {
            Tensor * a = in.f32(g, {9, 11});
            Tensor * b = in.f32(g, {1, 9}, 0.5f, 2.0f);
            return apply(g, op, g.transpose(a), b);
        });
        Host ha = permute(host(t.in[0], {9, 11}), 1, 0, 2, 3);
        Host hb = host(t.in[1], {1, 9});
        Host want(11, 9);
        for (int64_t i1 = 0; i1 < 9; i1++)
            for (int64_t i0 = 0; i0 < 11; i0++) want(i0, i1) = refop(op, ha(i0, i1), hb(0, i1));
        expect_close(t, want, 1e-6, 1e-6, "binary transposed");
    }
}

TEST(softmax_plain_scaled_and_causal) {
    for (int causal = 0; causal < 2; causal++) {
        for (auto shape : {std::vector<int64_t>{67, 9, 2}, std::vector<int64_t>{9, 9, 3}, std::vector<int64_t>{5, 8, 1}}) {
            const float sc = 0.37f;
            Multi r = run_all_threads([&](Graph & g, Inputs & in) {
                return g.softmax(in.f32(g, {shape[0], shape[1], shape[2]}, -8, 8), sc, causal != 0);
            });
            Host x = host(r.in[0], {shape[0], shape[1], shape[2]});
            Host want(shape[0], shape[1], shape[2]);
            for (int64_t i2 = 0; i2 < shape[2]; i2++)
                for (int64_t i1 = 0; i1 < shape[1]; i1++) {
                    int64_t n = shape[0];
                    if (causal) n = std::max<int64_t>(0, std::min<int64_t>(shape[0], i1 + shape[0] - shape[1] + 1));
                    double mx = -1e300, s = 0;
                    for (int64_t j = 0; j < n; j++) mx = std::max(mx, sc * x(j, i1, i2));
                    for (int64_t j = 0; j < n; j++) s += std::exp(sc * x(j, i1, i2) - mx);
                    for (int64_t j = 0; j < n; j++) want(j, i1, i2) = std::exp(sc * x(j, i1, i2) - mx) / s;
                }
            expect_close(r, want, 1e-7, 1e-5, "softmax");  // float exp: ~1e-6 relative
        }
    }
    // Transposed input.
    Multi r = run_all_threads([&](Graph & g, Inputs & in) { return g.softmax(g.transpose(in.f32(g, {6, 40})), 1.0f); });
    Host x = permute(host(r.in[0], {6, 40}), 1, 0, 2, 3);
    Host want(40, 6);
    for (int64_t i1 = 0; i1 < 6; i1++) {
        double s = 0;
        for (int64_t j = 0; j < 40; j++) s += std::exp(x(j, i1));
        for (int64_t j = 0; j < 40; j++) want(j, i1) = std::exp(x(j, i1)) / s;
    }
    expect_close(r, want, 1e-7, 1e-5, "softmax transposed");
}

namespace {

Host ref_group_norm(const Host & x, int groups, double eps, const std::vector<float> * w, const std::vector<float> * b) {
    Host y = x;
    const int64_t W = x.ne[0], H = x.ne[1], C = x.ne[2], N = x.ne[3], cpg = C / groups;
    for (int64_t n = 0; n < N; n++)
        for (int gi = 0; gi < groups; gi++) {
            double s = 0, cnt = static_cast<double>(W * H * cpg);
            for (int64_t c = gi * cpg; c < (gi + 1) * cpg; c++)
                for (int64_t h = 0; h < H; h++)
                    for (int64_t i = 0; i < W; i++) s += x(i, h, c, n);
            const double mean = s / cnt;
            double v = 0;
            for (int64_t c = gi * cpg; c < (gi + 1) * cpg; c++)
                for (int64_t h = 0; h < H; h++)
                    for (int64_t i = 0; i < W; i++) v += (x(i, h, c, n) - mean) * (x(i, h, c, n) - mean);
            const double rstd = 1.0 / std::sqrt(v / cnt + eps);
            for (int64_t c = gi * cpg; c < (gi + 1) * cpg; c++)
                for (int64_t h = 0; h < H; h++)
                    for (int64_t i = 0; i < W; i++)
                        y(i, h, c, n) = (x(i, h, c, n) - mean) * rstd * (w ? (*w)[c] : 1.0) + (b ? (*b)[c] : 0.0);
        }
    return y;
}

}  // namespace

TEST(group_norm_matches_reference) {
    std::vector<float> w(12), b(12);
    Rng rng(7);
    for (auto & x : w) x = rng.uni(0.5f, 1.5f);
    for (auto & x : b) x = rng.uni(-1, 1);
    for (int affine = 0; affine < 2; affine++) {
        Multi r = run_all_threads([&](Graph & g, Inputs & in) {
            Tensor * x = in.f32(g, {9, 7, 12, 2}, -3, 5);
            Tensor * tw = affine ? host_weight(g, DType::f32, {12}, w.data()) : nullptr;
            Tensor * tb = affine ? host_weight(g, DType::f32, {12}, b.data()) : nullptr;
            return g.group_norm(x, 4, 1e-5f, tw, tb);
        });
        expect_close(r, ref_group_norm(host(r.in[0], {9, 7, 12, 2}), 4, 1e-5, affine ? &w : nullptr,
                                       affine ? &b : nullptr),
                     2e-5, 2e-5, "group_norm");  // normalised values are O(1): 2e-5 absolute
    }
    // Groups larger than 256 KiB take the one-pass statistics path; values
    // offset by 3 to exercise the shifted sums. Also fused with SiLU.
    for (int fused = 0; fused < 2; fused++) {
        Multi r = run_all_threads([&](Graph & g, Inputs & in) {
            Tensor * x = in.f32(g, {192, 160, 8, 1}, 1, 5);
            Tensor * tw = host_weight(g, DType::f32, {8}, w.data());
            Tensor * tb = host_weight(g, DType::f32, {8}, b.data());
            return fused ? g.group_norm_silu(x, 2, 1e-6f, tw, tb) : g.group_norm(x, 2, 1e-6f, tw, tb);
        });
        std::vector<float> w8(w.begin(), w.begin() + 8), b8(b.begin(), b.begin() + 8);
        Host want = ref_group_norm(host(r.in[0], {192, 160, 8, 1}), 2, 1e-6, &w8, &b8);
        if (fused) want = map(want, silu_d);
        expect_close(r, want, 2e-5, 2e-5, fused ? "group_norm large+silu" : "group_norm large");
    }
    {
        Multi r = run_all_threads([&](Graph & g, Inputs & in) {
            return g.group_norm_silu(in.f32(g, {9, 7, 12, 2}, -3, 5), 4, 1e-5f);
        });
        expect_close(r, map(ref_group_norm(host(r.in[0], {9, 7, 12, 2}), 4, 1e-5, nullptr, nullptr), silu_d), 2e-5,
                     2e-5, "group_norm_silu");
    }
    // SD-like: 32 groups of a permuted [C, W, H] input (non-contiguous).
    Multi r = run_all_threads([&](Graph & g, Inputs & in) {
        return g.group_norm(g.permute(in.f32(g, {64, 5, 6}, -2, 2), 2, 0, 1, 3), 32, 1e-6f);
    });
    expect_close(r, ref_group_norm(permute(host(r.in[0], {64, 5, 6}), 2, 0, 1, 3), 32, 1e-6, nullptr, nullptr), 2e-5,
                 2e-5, "group_norm permuted");
}

TEST(layer_norm_matches_reference) {
    std::vector<float> w(77), b(77);
    Rng rng(9);
    for (auto & x : w) x = rng.uni(0.5f, 1.5f);
    for (auto & x : b) x = rng.uni(-1, 1);
    for (int affine = 0; affine < 2; affine++) {
        for (int transposed = 0; transposed < 2; transposed++) {
            Multi r = run_all_threads([&](Graph & g, Inputs & in) {
                Tensor * x = transposed ? g.transpose(in.f32(g, {6, 77}, -3, 4)) : in.f32(g, {77, 6, 2}, -3, 4);
                Tensor * tw = affine ? host_weight(g, DType::f32, {77}, w.data()) : nullptr;
                Tensor * tb = affine ? host_weight(g, DType::f32, {77}, b.data()) : nullptr;
                return g.layer_norm(x, 1e-5f, tw, tb);
            });
            Host x = transposed ? permute(host(r.in[0], {6, 77}), 1, 0, 2, 3) : host(r.in[0], {77, 6, 2});
            Host want = x;
            for (int64_t row = 0; row < x.ne[1] * x.ne[2]; row++) {
                double s = 0, v = 0;
                for (int64_t i = 0; i < 77; i++) s += x.v[row * 77 + i];
                const double mean = s / 77;
                for (int64_t i = 0; i < 77; i++) v += (x.v[row * 77 + i] - mean) * (x.v[row * 77 + i] - mean);
                const double rstd = 1.0 / std::sqrt(v / 77 + 1e-5);
                for (int64_t i = 0; i < 77; i++)
                    want.v[row * 77 + i] =
                        (x.v[row * 77 + i] - mean) * rstd * (affine ? w[i] : 1.0) + (affine ? b[i] : 0.0);
            }
            expect_close(r, want, 2e-5, 2e-5, "layer_norm");
        }
    }
}

namespace {

// Quantizes/converts f32 values to `type` bytes and returns them with the
// dequantized values the kernel will see.
std::vector<uint8_t> make_weight(DType type, const std::vector<float> & f, int64_t k, std::vector<float> * deq) {
    const TypeTraits * tr = type_traits(type);
    const int64_t rows = static_cast<int64_t>(f.size()) / k;
    std::vector<uint8_t> bytes(row_size(type, k) * static_cast<size_t>(rows));
    if (type == DType::f32) {
        std::memcpy(bytes.data(), f.data(), f.size() * 4);
    } else {
        tr->from_f32_ref(f.data(), bytes.data(), static_cast<int64_t>(f.size()));
    }
    deq->resize(f.size());
    if (type == DType::f32)
        *deq = f;
    else
        tr->to_f32(bytes.data(), deq->data(), static_cast<int64_t>(f.size()));
    return bytes;
}

}  // namespace

TEST(mul_mat_matches_reference) {
    struct Case {
        DType type;
        int64_t K, N, M, B2, B3, w2, w3;
        bool transposed_x, bias;
    };
    const std::vector<Case> cases = {
        {DType::f32, 35, 19, 23, 3, 2, 3, 1, false, false},  // weight broadcast over dim 3
        {DType::f32, 35, 19, 23, 1, 1, 1, 1, true, true},    // transposed activations, bias
        {DType::f16, 40, 33, 17, 2, 1, 1, 1, false, true},   // weight broadcast over dim 2
        {DType::q8_0, 64, 21, 9, 1, 2, 1, 1, false, false},
        {DType::q4_0, 96, 13, 5, 1, 1, 1, 1, false, true},
    };
    for (const Case & c : cases) {
        const TypeTraits * tr = type_traits(c.type);
        if (c.type != DType::f32 && (!tr || !tr->from_f32_ref || !tr->to_f32)) {
            ::sdgo::testing::report_failure(__FILE__, __LINE__, "type conversion missing for mul_mat test");
            continue;
        }
        Rng rng(11);
        std::vector<float> wf(static_cast<size_t>(c.K * c.N * c.w2 * c.w3)), wdeq;
        for (auto & x : wf) x = rng.uni(-1, 1);
        std::vector<uint8_t> wb = make_weight(c.type, wf, c.K, &wdeq);
        std::vector<float> bias(static_cast<size_t>(c.N));
        for (auto & x : bias) x = rng.uni(-1, 1);
        Multi r = run_all_threads([&](Graph & g, Inputs & in) {
            Tensor * w = host_weight(g, c.type, {c.K, c.N, c.w2, c.w3}, wb.data());
            Tensor * x = c.transposed_x ? g.transpose(in.f32(g, {c.M, c.K, c.B2, c.B3}))
                                        : in.f32(g, {c.K, c.M, c.B2, c.B3});
            Tensor * tb = c.bias ? host_weight(g, DType::f32, {c.N}, bias.data()) : nullptr;
            return g.mul_mat(w, x, tb);
        });
        Host x = c.transposed_x ? permute(host(r.in[0], {c.M, c.K, c.B2, c.B3}), 1, 0, 2, 3)
                                : host(r.in[0], {c.K, c.M, c.B2, c.B3});
        Host W = host(wdeq, {c.K, c.N, c.w2, c.w3});
        Host want(c.N, c.M, c.B2, c.B3);
        for (int64_t i3 = 0; i3 < c.B3; i3++)
            for (int64_t i2 = 0; i2 < c.B2; i2++)
                for (int64_t m = 0; m < c.M; m++)
                    for (int64_t n = 0; n < c.N; n++) {
                        double s = c.bias ? bias[n] : 0.0;
                        for (int64_t k = 0; k < c.K; k++)
                            s += W(k, n, i2 / (c.B2 / c.w2), i3 / (c.B3 / c.w3)) * x(k, m, i2, i3);
                        want(n, m, i2, i3) = s;
                    }
        // f32 accumulation of K <= 96 products of O(1) values against the
        // dequantized weight: 1e-4 absolute + 1e-4 relative.
        expect_close(r, want, 1e-4, 1e-4, dtype_name(c.type));
    }
}

TEST(conv2d_matches_reference) {
    struct Case {
        DType type;
        int64_t W, H, Cin, N, Cout, K;
        int stride, pad;
        bool bias, permuted;
    };
    const std::vector<Case> cases = {
        {DType::f32, 11, 9, 5, 2, 7, 3, 1, 1, true, false},
        {DType::f32, 11, 9, 5, 1, 7, 3, 2, 1, false, false},
        {DType::f16, 10, 7, 6, 1, 4, 3, 2, 0, true, false},
        {DType::f16, 8, 5, 9, 2, 3, 1, 1, 0, true, false},
        {DType::f32, 6, 7, 4, 1, 5, 3, 1, 1, true, true},   // non-contiguous input
        {DType::bf16, 9, 6, 3, 1, 4, 3, 1, 1, true, true},  // converted weight + packed input
    };
    for (const Case & c : cases) {
        Rng rng(13);
        std::vector<float> wf(static_cast<size_t>(c.K * c.K * c.Cin * c.Cout)), wdeq;
        for (auto & x : wf) x = rng.uni(-1, 1);
        std::vector<uint8_t> wb = make_weight(c.type, wf, c.K, &wdeq);
        std::vector<float> bias(static_cast<size_t>(c.Cout));
        for (auto & x : bias) x = rng.uni(-1, 1);
        Multi r = run_all_threads([&](Graph & g, Inputs & in) {
            Tensor * w = host_weight(g, c.type, {c.K, c.K, c.Cin, c.Cout}, wb.data());
            Tensor * x = c.permuted ? g.permute(in.f32(g, {c.Cin, c.W, c.H, c.N}), 2, 0, 1, 3)
                                    : in.f32(g, {c.W, c.H, c.Cin, c.N});
            return g.conv2d(w, x, c.bias ? host_weight(g, DType::f32, {c.Cout}, bias.data()) : nullptr, c.stride, c.stride,
                            c.pad, c.pad);
        });
        Host x = c.permuted ? permute(host(r.in[0], {c.Cin, c.W, c.H, c.N}), 2, 0, 1, 3)
                            : host(r.in[0], {c.W, c.H, c.Cin, c.N});
        Host Wt = host(wdeq, {c.K, c.K, c.Cin, c.Cout});
        const int64_t OW = (c.W + 2 * c.pad - c.K) / c.stride + 1, OH = (c.H + 2 * c.pad - c.K) / c.stride + 1;
        Host want(OW, OH, c.Cout, c.N);
        for (int64_t n = 0; n < c.N; n++)
            for (int64_t co = 0; co < c.Cout; co++)
                for (int64_t oy = 0; oy < OH; oy++)
                    for (int64_t ox = 0; ox < OW; ox++) {
                        double s = c.bias ? bias[co] : 0.0;
                        for (int64_t ci = 0; ci < c.Cin; ci++)
                            for (int64_t ky = 0; ky < c.K; ky++)
                                for (int64_t kx = 0; kx < c.K; kx++) {
                                    const int64_t iy = oy * c.stride - c.pad + ky, ix = ox * c.stride - c.pad + kx;
                                    if (iy < 0 || iy >= c.H || ix < 0 || ix >= c.W) continue;
                                    s += Wt(kx, ky, ci, co) * x(ix, iy, ci, n);
                                }
                        want(ox, oy, co, n) = s;
                    }
        expect_close(r, want, 1e-4, 1e-4, "conv2d");  // f32 accumulation of <= 81 products
    }
}

TEST(attention_matches_reference_on_strided_views) {
    const int64_t D = 16, H = 3, B = 2;
    for (int causal = 0; causal < 2; causal++) {
        for (int64_t Nq : {13, 1}) {
            const int64_t Nk = causal ? Nq + 4 : 17;
            const float sc = 1.0f / 4.0f;
            // q, k, v come from [D*H, N, B] projections, split into heads by
            // reshape + permute (strided views, as in a transformer block).
            Multi r = run_all_threads([&](Graph & g, Inputs & in) {
                Tensor * q = g.permute(g.reshape(in.f32(g, {D * H, Nq, B}), {D, H, Nq, B}), 0, 2, 1, 3);
                Tensor * k = g.permute(g.reshape(in.f32(g, {D * H, Nk, B}), {D, H, Nk, B}), 0, 2, 1, 3);
                Tensor * v = g.permute(g.reshape(in.f32(g, {D * H, Nk, B}), {D, H, Nk, B}), 0, 2, 1, 3);
                return g.attention(q, k, v, sc, causal != 0);
            });
            Host q = host(r.in[0], {D, H, Nq, B}), k = host(r.in[1], {D, H, Nk, B}), v = host(r.in[2], {D, H, Nk, B});
            Host want(D, H, Nq, B);
            for (int64_t b = 0; b < B; b++)
                for (int64_t h = 0; h < H; h++)
                    for (int64_t i = 0; i < Nq; i++) {
                        const int64_t n = causal ? i + (Nk - Nq) + 1 : Nk;
                        std::vector<double> s(static_cast<size_t>(n));
                        double mx = -1e300, tot = 0;
                        for (int64_t j = 0; j < n; j++) {
                            double d = 0;
                            for (int64_t e = 0; e < D; e++) d += q(e, h, i, b) * k(e, h, j, b);
                            s[j] = d * sc;
                            mx = std::max(mx, s[j]);
                        }
                        for (int64_t j = 0; j < n; j++) tot += (s[j] = std::exp(s[j] - mx));
                        for (int64_t e = 0; e < D; e++) {
                            double o = 0;
                            for (int64_t j = 0; j < n; j++) o += s[j] * v(e, h, j, b);
                            want(e, h, i, b) = o / tot;
                        }
                    }
            expect_close(r, want, 1e-5, 1e-4, "attention");  // f32 online softmax
        }
    }
}

TEST(concat_every_dim) {
    for (int dim = 0; dim < 4; dim++) {
        int64_t na[4] = {5, 4, 3, 2}, nb[4] = {5, 4, 3, 2};
        nb[dim] = 3;
        Multi r = run_all_threads([&](Graph & g, Inputs & in) {
            Tensor * a = in.f32(g, {na[0], na[1], na[2], na[3]});
            // b is given as a transposed view of a [ne1, ne0, ...] input.
            Tensor * b = g.transpose(in.f32(g, {nb[1], nb[0], nb[2], nb[3]}));
            return g.concat(a, b, dim);
        });
        Host a = host(r.in[0], {na[0], na[1], na[2], na[3]});
        Host b = permute(host(r.in[1], {nb[1], nb[0], nb[2], nb[3]}), 1, 0, 2, 3);
        int64_t ne[4] = {5, 4, 3, 2};
        ne[dim] += 3;
        Host want(ne[0], ne[1], ne[2], ne[3]);
        int64_t i[4];
        for (i[3] = 0; i[3] < ne[3]; i[3]++)
            for (i[2] = 0; i[2] < ne[2]; i[2]++)
                for (i[1] = 0; i[1] < ne[1]; i[1]++)
                    for (i[0] = 0; i[0] < ne[0]; i[0]++) {
                        int64_t j[4] = {i[0], i[1], i[2], i[3]};
                        if (j[dim] < na[dim]) {
                            want(i[0], i[1], i[2], i[3]) = a(j[0], j[1], j[2], j[3]);
                        } else {
                            j[dim] -= na[dim];
                            want(i[0], i[1], i[2], i[3]) = b(j[0], j[1], j[2], j[3]);
                        }
                    }
        expect_close(r, want, 0, 0, "concat");  // exact copy
    }
}

TEST(upscale_pad_geglu) {
    Multi u = run_all_threads([&](Graph & g, Inputs & in) { return g.upscale_nearest(in.f32(g, {5, 3, 4, 2}), 2); });
    Host x = host(u.in[0], {5, 3, 4, 2});
    Host want(10, 6, 4, 2);
    for (int64_t n = 0; n < 2; n++)
        for (int64_t c = 0; c < 4; c++)
            for (int64_t y = 0; y < 6; y++)
                for (int64_t i = 0; i < 10; i++) want(i, y, c, n) = x(i / 2, y / 2, c, n);
    expect_close(u, want, 0, 0, "upscale");  // exact copy

    // Nearest resize with PyTorch's index rule (float scale in / out).
    for (auto wh : {std::pair<int64_t, int64_t>{7, 8}, {10, 6}, {3, 2}, {5, 3}}) {
        Multi z = run_all_threads([&](Graph & g, Inputs & in) {
            return g.resize_nearest(g.permute(in.f32(g, {3, 4, 5, 2}), 2, 0, 1, 3), wh.first, wh.second);
        });
        Host xs = permute(host(z.in[0], {3, 4, 5, 2}), 2, 0, 1, 3);  // [4, 5, 3, 2]
        auto src_idx = [](int64_t d, int64_t in, int64_t out) {
            const float sc = static_cast<float>(in) / static_cast<float>(out);
            return std::min<int64_t>(static_cast<int64_t>(std::floor(static_cast<float>(d) * sc)), in - 1);
        };
        Host zw(wh.first, wh.second, xs.ne[2], xs.ne[3]);
        for (int64_t i3 = 0; i3 < zw.ne[3]; i3++)
            for (int64_t i2 = 0; i2 < zw.ne[2]; i2++)
                for (int64_t i1 = 0; i1 < zw.ne[1]; i1++)
                    for (int64_t i0 = 0; i0 < zw.ne[0]; i0++)
                        zw(i0, i1, i2, i3) = xs(src_idx(i0, xs.ne[0], zw.ne[0]), src_idx(i1, xs.ne[1], zw.ne[1]), i2, i3);
        expect_close(z, zw, 0, 0, "resize_nearest");  // exact copy
    }

    const int lp[4] = {0, 1, 2, 0}, rp[4] = {1, 1, 0, 1};
    Multi p = run_all_threads([&](Graph & g, Inputs & in) { return g.pad(g.transpose(in.f32(g, {3, 5, 2})), lp, rp); });
    Host xs = permute(host(p.in[0], {3, 5, 2}), 1, 0, 2, 3);  // [5, 3, 2]
    Host pw(6, 5, 4, 2);
    for (int64_t i3 = 0; i3 < 2; i3++)
        for (int64_t i2 = 0; i2 < 4; i2++)
            for (int64_t i1 = 0; i1 < 5; i1++)
                for (int64_t i0 = 0; i0 < 6; i0++) {
                    const int64_t s0 = i0, s1 = i1 - 1, s2 = i2 - 2, s3 = i3;
                    const bool in = s0 < 5 && s1 >= 0 && s1 < 3 && s2 >= 0 && s2 < 2 && s3 < 1;
                    pw(i0, i1, i2, i3) = in ? xs(s0, s1, s2, s3) : 0.0;
                }
    expect_close(p, pw, 0, 0, "pad");  // exact copy

    Multi gg = run_all_threads([&](Graph & g, Inputs & in) { return g.geglu(in.f32(g, {20, 3, 2})); });
    Host gx = host(gg.in[0], {20, 3, 2});
    Host gw(10, 3, 2);
    for (int64_t r = 0; r < 6; r++)
        for (int64_t i = 0; i < 10; i++) gw.v[r * 10 + i] = gx.v[r * 20 + i] * gelu_d(gx.v[r * 20 + 10 + i]);
    expect_close(gg, gw, 2e-6, 2e-6, "geglu");
}

TEST(timestep_embedding_matches_reference) {
    struct Case {
        int dim;
        bool flip;
        float shift;
    };
    for (const Case & c : {Case{320, true, 0.0f}, Case{256, false, 1.0f}, Case{7, true, 0.0f}}) {
        std::vector<float> ts = {0.0f, 1.0f, 999.0f, 481.5f};
        Multi r = run_all_threads([&](Graph & g, Inputs & in) {
            Tensor * t = in.f32(g, {4});
            in.f[0].second = ts;
            return g.timestep_embedding(t, c.dim, 10000.0f, c.flip, c.shift);
        });
        const int half = c.dim / 2;
        Host want(c.dim, 4);
        for (int n = 0; n < 4; n++) {
            for (int i = 0; i < half; i++) {
                const double freq = std::exp(-std::log(10000.0) * i / (half - c.shift));
                const double a = ts[n] * freq;
                want(i, n) = c.flip ? std::cos(a) : std::sin(a);
                want(half + i, n) = c.flip ? std::sin(a) : std::cos(a);
            }
            if (c.dim % 2) want(c.dim - 1, n) = 0.0;
        }
        // f32 argument t*freq: at t = 999 its rounding (~6e-5 absolute) shows in sin/cos.
        expect_close(r, want, 2e-4, 0, "timestep_embedding");
    }
    // The LDM float32 recipe: cos(t * expf(-ln(1e4) * i / half)) evaluated in
    // float matches to a few ulps at t = 999.
    Result r = run([&](Graph & g, Inputs & in) {
        Tensor * t = in.f32(g, {1});
        in.f[0].second = {999.0f};
        return g.timestep_embedding(t, 320);
    }, 1);
    REQUIRE(r.st.ok());
    for (int i = 0; i < 160; i++) {
        const float freq = std::exp((static_cast<float>(-std::log(10000.0)) * static_cast<float>(i)) / 160.0f);
        const float arg = 999.0f * freq;
        CHECK_NEAR(r.out[i], std::cos(arg), 1e-6);  // same float ops: libm cos differences only
    }
}

TEST(get_rows_f32_f16_and_bad_index) {
    const int64_t K = 12, R = 10;
    std::vector<float> table(static_cast<size_t>(K * R));
    Rng rng(5);
    for (auto & x : table) x = rng.uni(-1, 1);
    std::vector<int32_t> idx = {3, 0, 9, 3, 7, 1};
    for (DType t : {DType::f32, DType::f16, DType::q8_0}) {
        const int64_t k = t == DType::q8_0 ? 32 : K;
        std::vector<float> tf(static_cast<size_t>(k * R));
        for (auto & x : tf) x = rng.uni(-1, 1);
        std::vector<float> deq;
        std::vector<uint8_t> tb = make_weight(t, tf, k, &deq);
        Multi r = run_all_threads([&](Graph & g, Inputs & in) {
            Tensor * tab = host_weight(g, t, {k, R}, tb.data());
            return g.get_rows(tab, in.i32(g, {3, 2}, idx));
        });
        Host want(k, 3, 2);
        for (int64_t i = 0; i < 6; i++)
            for (int64_t j = 0; j < k; j++) want.v[i * k + j] = deq[idx[i] * k + j];
        expect_close(r, want, 0, 0, dtype_name(t));  // exact: same dequantizer
    }
    std::vector<int32_t> bad = {2, 10};
    Result r = run([&](Graph & g, Inputs & in) {
        return g.get_rows(host_weight(g, DType::f32, {K, R}, table.data()), in.i32(g, {2}, bad));
    }, 2);
    CHECK_EQ(r.st.code(), SDGO_ERR_INVALID_ARGUMENT);
    CHECK(r.st.message().find("index 10") != std::string::npos);
}

TEST(reductions_match_reference) {
    for (int op = 0; op < 4; op++) {
        Multi r = run_all_threads([&](Graph & g, Inputs & in) {
            Tensor * x = g.permute(in.f32(g, {300, 7, 3}), 1, 0, 2, 3);  // [7, 300, 3], strided rows
            switch (op) {
                case 0: return g.sum_rows(x);
                case 1: return g.mean_rows(x);
                case 2: return g.sum(x);
                default: return g.mean(x);
            }
        });
        Host x = permute(host(r.in[0], {300, 7, 3}), 1, 0, 2, 3);
        Host want = op < 2 ? Host(1, 300, 3) : Host(1);
        double all = 0;
        for (int64_t i2 = 0; i2 < 3; i2++)
            for (int64_t i1 = 0; i1 < 300; i1++) {
                double s = 0;
                for (int64_t i0 = 0; i0 < 7; i0++) s += x(i0, i1, i2);
                all += s;
                if (op == 0) want(0, i1, i2) = s;
                if (op == 1) want(0, i1, i2) = s / 7;
            }
        if (op == 2) want(0) = all;
        if (op == 3) want(0) = all / (7 * 300 * 3);
        expect_close(r, want, 1e-5, 1e-6, "reduction");  // double accumulation, one f32 rounding
    }
}

TEST(cont_and_cast_roundtrip) {
    // cont of a permuted view is an exact reordering.
    Multi c = run_all_threads([&](Graph & g, Inputs & in) { return g.cont(g.permute(in.f32(g, {4, 5, 6, 3}), 3, 1, 0, 2)); });
    expect_close(c, permute(host(c.in[0], {4, 5, 6, 3}), 3, 1, 0, 2), 0, 0, "cont");
    // The image <-> token layout changes of a transformer block (tiled
    // transposed copies), with sizes that leave partial tiles.
    Multi t1 = run_all_threads([&](Graph & g, Inputs & in) { return g.cont(g.permute(in.f32(g, {37, 19, 70, 2}), 1, 2, 0, 3)); });
    expect_close(t1, permute(host(t1.in[0], {37, 19, 70, 2}), 1, 2, 0, 3), 0, 0, "cont to tokens");
    Multi t2 = run_all_threads([&](Graph & g, Inputs & in) { return g.cont(g.permute(in.f32(g, {70, 37, 19, 2}), 2, 0, 1, 3)); });
    expect_close(t2, permute(host(t2.in[0], {70, 37, 19, 2}), 2, 0, 1, 3), 0, 0, "cont to image");
    // f32 -> f16 -> f32 equals the scalar conversion, element by element.
    Multi h = run_all_threads([&](Graph & g, Inputs & in) {
        return g.cast(g.cast(g.transpose(in.f32(g, {9, 33}, -70000, 70000)), DType::f16), DType::f32);
    });
    Host x = permute(host(h.in[0], {9, 33}), 1, 0, 2, 3);
    Host want = x;
    for (auto & v : want.v) v = fp16_to_fp32(fp32_to_fp16(static_cast<float>(v)));
    expect_close(h, want, 0, 0, "cast f16");  // exact: same rounding
    // bf16 likewise.
    Multi b = run_all_threads([&](Graph & g, Inputs & in) {
        return g.cast(g.cast(in.f32(g, {17, 3}), DType::bf16), DType::f32);
    });
    Host xb = host(b.in[0], {17, 3});
    for (auto & v : xb.v) v = bf16_to_fp32(fp32_to_bf16(static_cast<float>(v)));
    expect_close(b, xb, 0, 0, "cast bf16");
}

TEST(resnet_block_graph_end_to_end) {
    // GN -> SiLU -> conv3x3 -> + emb -> GN -> SiLU -> conv3x3 -> + skip(1x1),
    // checked against the same composition of the references above.
    const int64_t W = 6, H = 5, Cin = 8, Cout = 16, G = 4;
    Rng rng(21);
    auto rnd = [&](size_t n, float s) {
        std::vector<float> v(n);
        for (auto & x : v) x = rng.uni(-s, s);
        return v;
    };
    std::vector<float> w1 = rnd(9 * Cin * Cout, 0.3f), w2 = rnd(9 * Cout * Cout, 0.2f), ws = rnd(Cin * Cout, 0.3f);
    std::vector<float> b1 = rnd(Cout, 0.5f), b2 = rnd(Cout, 0.5f), bs = rnd(Cout, 0.5f), emb = rnd(Cout, 1.0f);
    Multi r = run_all_threads([&](Graph & g, Inputs & in) {
        Tensor * x = in.f32(g, {W, H, Cin, 1});
        Tensor * h = g.conv2d(host_weight(g, DType::f32, {3, 3, Cin, Cout}, w1.data()), g.silu(g.group_norm(x, G, 1e-5f)),
                              host_weight(g, DType::f32, {Cout}, b1.data()), 1, 1, 1, 1);
        h = g.add(h, g.reshape(host_weight(g, DType::f32, {Cout}, emb.data()), {1, 1, Cout, 1}));
        h = g.conv2d(host_weight(g, DType::f32, {3, 3, Cout, Cout}, w2.data()), g.silu(g.group_norm(h, G, 1e-5f)),
                     host_weight(g, DType::f32, {Cout}, b2.data()), 1, 1, 1, 1);
        Tensor * skip = g.conv2d(host_weight(g, DType::f32, {1, 1, Cin, Cout}, ws.data()), x,
                                 host_weight(g, DType::f32, {Cout}, bs.data()), 1, 1, 0, 0);
        return g.add(skip, h);
    });
    REQUIRE(r.st.ok());
    auto conv = [](const Host & x, const std::vector<float> & w, const std::vector<float> & b, int64_t K, int64_t co_n) {
        const int64_t pad = K / 2;
        Host y(x.ne[0], x.ne[1], co_n, 1);
        for (int64_t co = 0; co < co_n; co++)
            for (int64_t oy = 0; oy < x.ne[1]; oy++)
                for (int64_t ox = 0; ox < x.ne[0]; ox++) {
                    double s = b[co];
                    for (int64_t ci = 0; ci < x.ne[2]; ci++)
                        for (int64_t ky = 0; ky < K; ky++)
                            for (int64_t kx = 0; kx < K; kx++) {
                                const int64_t iy = oy - pad + ky, ix = ox - pad + kx;
                                if (iy < 0 || iy >= x.ne[1] || ix < 0 || ix >= x.ne[0]) continue;
                                s += w[((co * x.ne[2] + ci) * K + ky) * K + kx] * x(ix, iy, ci);
                            }
                    y(ox, oy, co) = s;
                }
        return y;
    };
    Host x = host(r.in[0], {W, H, Cin, 1});
    Host h = conv(map(ref_group_norm(x, G, 1e-5, nullptr, nullptr), silu_d), w1, b1, 3, Cout);
    for (int64_t c = 0; c < Cout; c++)
        for (int64_t i = 0; i < W * H; i++) h.v[c * W * H + i] += emb[c];
    h = conv(map(ref_group_norm(h, G, 1e-5, nullptr, nullptr), silu_d), w2, b2, 3, Cout);
    Host s = conv(x, ws, bs, 1, Cout);
    for (size_t i = 0; i < s.v.size(); i++) s.v[i] += h.v[i];
    expect_close(r, s, 2e-4, 2e-4, "resnet block");  // chained f32 ops on O(1) values
}
