// The backend-ops test: every graph op, on random inputs of awkward sizes
// and on non-contiguous views, runs on every registered backend's every
// device, in every code variant the device runs here (Device::variants: the
// CPU's AVX-512, AVX2, NEON and scalar paths), and is compared with a
// double-precision reference interpreter of
// the graph (below), and, for devices other than the CPU, with the CPU
// backend as well. Each case states its tolerance:
// |got - want| <= abs + rel * |want|, per op and weight type.
//
// A new backend plugs in by registering itself (backends/registry.cpp):
// this test then runs every case on it. Cases whose node a device does not
// support (Device::supports_op) are counted as skipped for that device and
// listed, never silently passed.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/registry.h"
#include "core/graph.h"
#include "testing.h"
#include "types/types.h"

using namespace sdgo;

namespace {

struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 7) {}
    uint32_t next() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return static_cast<uint32_t>(s >> 32);
    }
    float uni(float lo, float hi) { return lo + (hi - lo) * (next() / 4294967296.0f); }
};

// Creates a case's leaves: the same values for the same seed on every
// device. Weights are encoded to their type on the host, then written into
// a buffer of the device under test (as a model upload does).
struct Gen {
    Rng rng;
    Device * dev;
    std::vector<std::unique_ptr<Buffer>> buffers;
    std::vector<std::pair<Tensor *, std::vector<float>>> f32_inputs;
    std::vector<std::pair<Tensor *, std::vector<int32_t>>> i32_inputs;
    std::map<const Tensor *, std::vector<uint8_t>> weight_bytes;  // host copies, for the reference
    Status st;
    Gen(uint64_t seed, Device * d) : rng(seed), dev(d) {}

    Tensor * f32(Graph & g, std::initializer_list<int64_t> ne, float lo = -2.0f, float hi = 2.0f) {
        Tensor * t = g.input(DType::f32, ne);
        if (!t) return nullptr;
        std::vector<float> d(size_t(t->nelements()));
        for (float & x : d) x = rng.uni(lo, hi);
        f32_inputs.push_back({t, std::move(d)});
        return t;
    }
    Tensor * i32(Graph & g, std::initializer_list<int64_t> ne, std::vector<int32_t> vals) {
        Tensor * t = g.input(DType::i32, ne);
        if (!t) return nullptr;
        i32_inputs.push_back({t, std::move(vals)});
        return t;
    }
    Tensor * weight(Graph & g, DType type, std::initializer_list<int64_t> ne, float lo = -1.0f, float hi = 1.0f) {
        Tensor probe;
        probe.type = type;
        int i = 0;
        for (int64_t v : ne) probe.ne[i++] = v;
        if (probe.ne[0] % dtype_block(type) != 0) {
            st = error(SDGO_ERR_INVALID_ARGUMENT, "a %s weight needs ne0 a multiple of %lld", dtype_name(type),
                       (long long)dtype_block(type));
            return nullptr;
        }
        set_contiguous_strides(&probe);
        std::vector<float> f(size_t(probe.nelements()));
        for (float & x : f) x = rng.uni(lo, hi);
        std::vector<uint8_t> bytes(probe.nbytes());
        const TypeTraits * tt = type_traits(type);
        if (!tt || !tt->from_f32_ref) {
            st = error(SDGO_ERR_UNSUPPORTED, "no encoder for %s", dtype_name(type));
            return nullptr;
        }
        tt->from_f32_ref(f.data(), bytes.data(), probe.nelements());
        std::unique_ptr<Buffer> b;
        Status s = dev->alloc_buffer(bytes.size(), &b);
        if (s.ok()) s = dev->write(b.get(), 0, bytes.data(), bytes.size());
        if (!s.ok()) {
            st = s;
            return nullptr;
        }
        Tensor * t = g.weight(type, ne, b.get(), 0);
        buffers.push_back(std::move(b));
        if (t) weight_bytes[t] = std::move(bytes);
        return t;
    }
};

using Build = std::function<Tensor *(Graph &, Gen &)>;

// ---- the reference interpreter ----------------------------------------------

// A tensor of doubles: storage shared by views, element strides.
struct Ref {
    std::shared_ptr<std::vector<double>> data;
    int64_t ne[4] = {1, 1, 1, 1};
    int64_t st[4] = {1, 1, 1, 1};
    int64_t off = 0;
    static Ref dense(const int64_t n[4]) {
        Ref r;
        for (int i = 0; i < 4; i++) r.ne[i] = n[i];
        r.st[0] = 1;
        for (int i = 1; i < 4; i++) r.st[i] = r.st[i - 1] * r.ne[i - 1];
        r.data = std::make_shared<std::vector<double>>(size_t(r.ne[0] * r.ne[1] * r.ne[2] * r.ne[3]), 0.0);
        return r;
    }
    int64_t idx(int64_t a, int64_t b, int64_t c, int64_t d) const {
        return off + a * st[0] + b * st[1] + c * st[2] + d * st[3];
    }
    double operator()(int64_t a, int64_t b = 0, int64_t c = 0, int64_t d = 0) const { return (*data)[size_t(idx(a, b, c, d))]; }
    double & at(int64_t a, int64_t b = 0, int64_t c = 0, int64_t d = 0) { return (*data)[size_t(idx(a, b, c, d))]; }
    int64_t n() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

template <typename F>
void each(const int64_t ne[4], F f) {
    for (int64_t i3 = 0; i3 < ne[3]; i3++)
        for (int64_t i2 = 0; i2 < ne[2]; i2++)
            for (int64_t i1 = 0; i1 < ne[1]; i1++)
                for (int64_t i0 = 0; i0 < ne[0]; i0++) f(i0, i1, i2, i3);
}

double round_to(DType t, double x) {
    const TypeTraits * tt = type_traits(t);
    if (t == DType::f32) return double(float(x));
    uint8_t buf[8];
    float f = float(x), back = 0;
    tt->from_f32_ref(&f, buf, 1);
    tt->to_f32(buf, &back, 1);
    return back;
}

double unary_ref(Op op, double x, const Tensor * t) {
    switch (op) {
        case Op::silu: return x / (1.0 + std::exp(-x));
        case Op::gelu: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
        case Op::gelu_tanh: return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
        case Op::quick_gelu: return x / (1.0 + std::exp(-1.702 * x));
        case Op::relu: return x > 0 ? x : 0;
        case Op::tanh: return std::tanh(x);
        case Op::sigmoid: return 1.0 / (1.0 + std::exp(-x));
        case Op::exp: return std::exp(x);
        case Op::sqrt: return std::sqrt(x);
        case Op::sqr: return x * x;
        case Op::scale: return x * t->fparams[0] + t->fparams[1];
        case Op::clamp: return std::min<double>(std::max<double>(x, t->fparams[0]), t->fparams[1]);
        default: break;
    }
    return NAN;
}

// Evaluates node t from the references of its sources.
Status eval(const Tensor * t, std::map<const Tensor *, Ref> & refs, const Gen & gen) {
    auto R = [&](int i) -> const Ref & { return refs.at(t->src[i]); };
    Ref o;
    switch (t->op) {
        case Op::none: {
            o = Ref::dense(t->ne);
            for (const auto & p : gen.f32_inputs)
                if (p.first == t)
                    for (size_t k = 0; k < p.second.size(); k++) (*o.data)[k] = p.second[k];
            for (const auto & p : gen.i32_inputs)
                if (p.first == t)
                    for (size_t k = 0; k < p.second.size(); k++) (*o.data)[k] = p.second[k];
            auto w = gen.weight_bytes.find(t);
            if (w != gen.weight_bytes.end()) {
                std::vector<float> f(size_t(t->nelements()));
                type_traits(t->type)->to_f32(w->second.data(), f.data(), t->nelements());
                for (size_t k = 0; k < f.size(); k++) (*o.data)[k] = f[k];
            }
            break;
        }
        case Op::view: {
            const Ref & root = refs.at(t->view_src);
            const size_t es = dtype_size(t->view_src->type);
            o.data = root.data;
            for (int i = 0; i < 4; i++) {
                o.ne[i] = t->ne[i];
                o.st[i] = int64_t(t->nb[i] / es);
            }
            o.off = int64_t(t->view_offs / es);
            break;
        }
        case Op::cont: case Op::cpy: {
            o = Ref::dense(t->ne);
            const Ref & a = R(0);
            each(t->ne, [&](int64_t a0, int64_t a1, int64_t a2, int64_t a3) {
                o.at(a0, a1, a2, a3) = t->op == Op::cpy ? round_to(t->type, a(a0, a1, a2, a3)) : a(a0, a1, a2, a3);
            });
            break;
        }
        case Op::add: case Op::sub: case Op::mul: case Op::div: {
            o = Ref::dense(t->ne);
            const Ref &a = R(0), &b = R(1);
            each(t->ne, [&](int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
                const double x = a(i0, i1, i2, i3), y = b(i0 % b.ne[0], i1 % b.ne[1], i2 % b.ne[2], i3 % b.ne[3]);
                o.at(i0, i1, i2, i3) = t->op == Op::add ? x + y : t->op == Op::sub ? x - y : t->op == Op::mul ? x * y : x / y;
            });
            break;
        }
        case Op::scale: case Op::silu: case Op::gelu: case Op::gelu_tanh: case Op::quick_gelu: case Op::clamp:
        case Op::relu: case Op::tanh: case Op::sigmoid: case Op::exp: case Op::sqrt: case Op::sqr: {
            o = Ref::dense(t->ne);
            const Ref & a = R(0);
            each(t->ne, [&](int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
                o.at(i0, i1, i2, i3) = unary_ref(t->op, a(i0, i1, i2, i3), t);
            });
            break;
        }
        case Op::softmax: {
            o = Ref::dense(t->ne);
            const Ref & a = R(0);
            const double s = t->fparams[0];
            const bool causal = t->iparams[0] != 0;
            const int64_t n0 = t->ne[0], shift = t->ne[0] - t->ne[1];
            for (int64_t i3 = 0; i3 < t->ne[3]; i3++)
                for (int64_t i2 = 0; i2 < t->ne[2]; i2++)
                    for (int64_t i1 = 0; i1 < t->ne[1]; i1++) {
                        const int64_t lim = causal ? std::min(n0, i1 + shift + 1) : n0;
                        double mx = -INFINITY, sum = 0;
                        for (int64_t j = 0; j < lim; j++) mx = std::max(mx, s * a(j, i1, i2, i3));
                        for (int64_t j = 0; j < lim; j++) sum += std::exp(s * a(j, i1, i2, i3) - mx);
                        for (int64_t j = 0; j < n0; j++)
                            o.at(j, i1, i2, i3) = j < lim ? std::exp(s * a(j, i1, i2, i3) - mx) / sum : 0.0;
                    }
            break;
        }
        case Op::group_norm: {
            o = Ref::dense(t->ne);
            const Ref & a = R(0);
            const int groups = t->iparams[0];
            const bool silu = t->iparams[1] != 0;
            const double eps = t->fparams[0];
            const int64_t W = t->ne[0], H = t->ne[1], C = t->ne[2], cg = C / groups;
            for (int64_t n = 0; n < t->ne[3]; n++)
                for (int gi = 0; gi < groups; gi++) {
                    double mean = 0, var = 0;
                    const double cnt = double(W * H * cg);
                    for (int64_t c = gi * cg; c < (gi + 1) * cg; c++)
                        for (int64_t y = 0; y < H; y++)
                            for (int64_t x = 0; x < W; x++) mean += a(x, y, c, n);
                    mean /= cnt;
                    for (int64_t c = gi * cg; c < (gi + 1) * cg; c++)
                        for (int64_t y = 0; y < H; y++)
                            for (int64_t x = 0; x < W; x++) var += (a(x, y, c, n) - mean) * (a(x, y, c, n) - mean);
                    var /= cnt;
                    const double inv = 1.0 / std::sqrt(var + eps);
                    for (int64_t c = gi * cg; c < (gi + 1) * cg; c++)
                        for (int64_t y = 0; y < H; y++)
                            for (int64_t x = 0; x < W; x++) {
                                double v = (a(x, y, c, n) - mean) * inv;
                                if (t->src[1]) v *= R(1)(c);
                                if (t->src[2]) v += R(2)(c);
                                o.at(x, y, c, n) = silu ? v / (1.0 + std::exp(-v)) : v;
                            }
                }
            break;
        }
        case Op::layer_norm: {
            o = Ref::dense(t->ne);
            const Ref & a = R(0);
            const double eps = t->fparams[0];
            const int64_t n0 = t->ne[0];
            for (int64_t i3 = 0; i3 < t->ne[3]; i3++)
                for (int64_t i2 = 0; i2 < t->ne[2]; i2++)
                    for (int64_t i1 = 0; i1 < t->ne[1]; i1++) {
                        double mean = 0, var = 0;
                        for (int64_t j = 0; j < n0; j++) mean += a(j, i1, i2, i3);
                        mean /= double(n0);
                        for (int64_t j = 0; j < n0; j++) var += (a(j, i1, i2, i3) - mean) * (a(j, i1, i2, i3) - mean);
                        var /= double(n0);
                        for (int64_t j = 0; j < n0; j++) {
                            double v = (a(j, i1, i2, i3) - mean) / std::sqrt(var + eps);
                            if (t->src[1]) v *= R(1)(j);
                            if (t->src[2]) v += R(2)(j);
                            o.at(j, i1, i2, i3) = v;
                        }
                    }
            break;
        }
        case Op::mul_mat: {
            o = Ref::dense(t->ne);
            const Ref &w = R(0), &x = R(1);
            const int64_t K = w.ne[0];
            const int64_t r2 = x.ne[2] / w.ne[2], r3 = x.ne[3] / w.ne[3];
            each(t->ne, [&](int64_t n, int64_t m, int64_t i2, int64_t i3) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) s += w(k, n, i2 / r2, i3 / r3) * x(k, m, i2, i3);
                if (t->src[2]) s += R(2)(n);
                o.at(n, m, i2, i3) = s;
            });
            break;
        }
        case Op::conv2d: {
            o = Ref::dense(t->ne);
            const Ref &w = R(0), &x = R(1);
            const int sw = t->iparams[0], sh = t->iparams[1], pw = t->iparams[2], ph = t->iparams[3];
            each(t->ne, [&](int64_t ox, int64_t oy, int64_t co, int64_t n) {
                double s = t->src[2] ? R(2)(co) : 0.0;
                for (int64_t ci = 0; ci < w.ne[2]; ci++)
                    for (int64_t ky = 0; ky < w.ne[1]; ky++)
                        for (int64_t kx = 0; kx < w.ne[0]; kx++) {
                            const int64_t ix = ox * sw - pw + kx, iy = oy * sh - ph + ky;
                            if (ix < 0 || iy < 0 || ix >= x.ne[0] || iy >= x.ne[1]) continue;
                            s += w(kx, ky, ci, co) * x(ix, iy, ci, n);
                        }
                o.at(ox, oy, co, n) = s;
            });
            break;
        }
        case Op::attention: {
            o = Ref::dense(t->ne);  // [D, H, Nq, B]
            const Ref &q = R(0), &k = R(1), &v = R(2);
            const int64_t D = q.ne[0], Nq = q.ne[1], H = q.ne[2], B = q.ne[3], Nk = k.ne[1];
            const double s = t->fparams[0];
            const bool causal = t->iparams[0] != 0;
            std::vector<double> p(static_cast<size_t>(Nk));
            for (int64_t b = 0; b < B; b++)
                for (int64_t h = 0; h < H; h++)
                    for (int64_t i = 0; i < Nq; i++) {
                        const int64_t lim = causal ? std::min(Nk, i + (Nk - Nq) + 1) : Nk;
                        double mx = -INFINITY, sum = 0;
                        for (int64_t j = 0; j < lim; j++) {
                            double d = 0;
                            for (int64_t e = 0; e < D; e++) d += q(e, i, h, b) * k(e, j, h, b);
                            p[size_t(j)] = s * d;
                            mx = std::max(mx, p[size_t(j)]);
                        }
                        for (int64_t j = 0; j < lim; j++) sum += (p[size_t(j)] = std::exp(p[size_t(j)] - mx));
                        for (int64_t e = 0; e < D; e++) {
                            double acc = 0;
                            for (int64_t j = 0; j < lim; j++) acc += p[size_t(j)] * v(e, j, h, b);
                            o.at(e, h, i, b) = acc / sum;
                        }
                    }
            break;
        }
        case Op::concat: {
            o = Ref::dense(t->ne);
            const Ref &a = R(0), &b = R(1);
            const int dim = t->iparams[0];
            each(t->ne, [&](int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
                int64_t i[4] = {i0, i1, i2, i3};
                if (i[dim] < a.ne[dim]) {
                    o.at(i0, i1, i2, i3) = a(i0, i1, i2, i3);
                } else {
                    i[dim] -= a.ne[dim];
                    o.at(i0, i1, i2, i3) = b(i[0], i[1], i[2], i[3]);
                }
            });
            break;
        }
        case Op::upscale: {
            o = Ref::dense(t->ne);
            const Ref & a = R(0);
            const int f = t->iparams[0];
            each(t->ne, [&](int64_t x, int64_t y, int64_t c, int64_t n) { o.at(x, y, c, n) = a(x / f, y / f, c, n); });
            break;
        }
        case Op::resize: {
            o = Ref::dense(t->ne);
            const Ref & a = R(0);
            each(t->ne, [&](int64_t x, int64_t y, int64_t c, int64_t n) {
                const int64_t sx = std::min<int64_t>(int64_t(std::floor(double(x) * double(a.ne[0]) / double(t->ne[0]))), a.ne[0] - 1);
                const int64_t sy = std::min<int64_t>(int64_t(std::floor(double(y) * double(a.ne[1]) / double(t->ne[1]))), a.ne[1] - 1);
                o.at(x, y, c, n) = a(sx, sy, c, n);
            });
            break;
        }
        case Op::pad: {
            o = Ref::dense(t->ne);
            const Ref & a = R(0);
            each(t->ne, [&](int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
                const int64_t s[4] = {i0 - t->iparams[0], i1 - t->iparams[2], i2 - t->iparams[4], i3 - t->iparams[6]};
                bool in = true;
                for (int d = 0; d < 4; d++) in = in && s[d] >= 0 && s[d] < a.ne[d];
                o.at(i0, i1, i2, i3) = in ? a(s[0], s[1], s[2], s[3]) : 0.0;
            });
            break;
        }
        case Op::timestep_embedding: {
            o = Ref::dense(t->ne);
            const Ref & ts = R(0);
            const int dim = t->iparams[0], half = dim / 2;
            const bool flip = t->iparams[1] != 0;
            const double mp = t->fparams[0], shift = t->fparams[1];
            for (int64_t n = 0; n < t->ne[1]; n++)
                for (int i = 0; i < half; i++) {
                    const double arg = ts(n) * std::exp(-std::log(mp) * i / (half - shift));
                    o.at(flip ? i : half + i, n) = std::cos(arg);
                    o.at(flip ? half + i : i, n) = std::sin(arg);
                }
            break;
        }
        case Op::get_rows: {
            o = Ref::dense(t->ne);
            const Ref &tab = R(0), &ix = R(1);
            each(t->ne, [&](int64_t k, int64_t i, int64_t j, int64_t) { o.at(k, i, j) = tab(k, int64_t(ix(i, j))); });
            break;
        }
        case Op::sum_rows: case Op::mean_rows: {
            o = Ref::dense(t->ne);
            const Ref & a = R(0);
            each(t->ne, [&](int64_t, int64_t i1, int64_t i2, int64_t i3) {
                double s = 0;
                for (int64_t j = 0; j < a.ne[0]; j++) s += a(j, i1, i2, i3);
                o.at(0, i1, i2, i3) = t->op == Op::mean_rows ? s / double(a.ne[0]) : s;
            });
            break;
        }
        case Op::sum: case Op::mean: {
            o = Ref::dense(t->ne);
            const Ref & a = R(0);
            double s = 0;
            each(a.ne, [&](int64_t i0, int64_t i1, int64_t i2, int64_t i3) { s += a(i0, i1, i2, i3); });
            o.at(0) = t->op == Op::mean ? s / double(a.n()) : s;
            break;
        }
        default:
            return error(SDGO_ERR_UNSUPPORTED, "the reference has no %s", op_name(t->op));
    }
    refs[t] = o;
    return Status();
}

// ---- running a case -----------------------------------------------------------

struct Run {
    Status st;
    bool skipped = false;
    std::string skipped_op;
    std::vector<float> out;
    int64_t ne[4] = {0, 0, 0, 0};
    std::vector<double> ref;  // the reference interpreter's output (reference runs only)
};

constexpr uint64_t kSeed = 1234;

Run run_on(const Build & build, Device * dev, const std::string & variant, bool with_reference) {
    Run r;
    Graph g;
    Gen gen(kSeed, dev);
    Tensor * y = build(g, gen);
    if (!gen.st.ok()) { r.st = gen.st; return r; }
    if (!y || !g.status().ok()) { r.st = g.status().ok() ? error(SDGO_ERR_INTERNAL, "no output") : g.status(); return r; }
    g.set_output(y);
    for (int k = 0; k < 4; k++) r.ne[k] = y->ne[k];
    if (with_reference) {
        std::map<const Tensor *, Ref> refs;
        for (size_t i = 0; i < g.n_tensors(); i++) {
            const Tensor * t = g.tensor(i);
            if (t->is_leaf()) { r.st = eval(t, refs, gen); if (!r.st.ok()) return r; }
        }
        for (Tensor * t : g.order()) {
            if (t->op == Op::view && !refs.count(t->view_src)) continue;
            r.st = eval(t, refs, gen);
            if (!r.st.ok()) return r;
        }
        // A view as the output: its elements in order.
        const Ref & o = refs.at(y);
        r.ref.reserve(size_t(y->nelements()));
        each(o.ne, [&](int64_t a, int64_t b, int64_t c, int64_t d) { r.ref.push_back(o(a, b, c, d)); });
    }
    for (Tensor * t : g.order())
        if (!t->is_leaf() && t->op != Op::view && !dev->supports_op(t)) {
            r.skipped = true;
            r.skipped_op = op_name(t->op);
            return r;
        }
    std::unique_ptr<Backend> be;
    BackendOptions bo;
    bo.n_threads = 2;
    bo.variant = variant;
    r.st = dev->new_backend(bo, &be);
    if (!r.st.ok()) return r;
    r.st = be->alloc_graph(g);
    if (!r.st.ok()) return r;
    for (auto & p : gen.f32_inputs) {
        r.st = be->set_tensor(p.first, p.second.data(), 0, p.second.size() * 4);
        if (!r.st.ok()) return r;
    }
    for (auto & p : gen.i32_inputs) {
        r.st = be->set_tensor(p.first, p.second.data(), 0, p.second.size() * 4);
        if (!r.st.ok()) return r;
    }
    r.st = be->compute(g);
    if (!r.st.ok()) return r;
    if (y->type != DType::f32) { r.st = error(SDGO_ERR_INTERNAL, "case output must be f32"); return r; }
    r.out.resize(size_t(y->nelements()));
    if (!y->is_contiguous()) { r.st = error(SDGO_ERR_INTERNAL, "case output must be contiguous"); return r; }
    r.st = be->get_tensor(y, r.out.data(), 0, r.out.size() * 4);
    return r;
}

struct Tol {
    double abs, rel;
};

int g_cases = 0, g_runs = 0;
std::vector<std::string> g_skips;

void compare(const std::string & what, const std::vector<float> & got, const std::vector<double> & want, Tol tol) {
    if (got.size() != want.size()) {
        ::sdgo::testing::report_failure(__FILE__, __LINE__, what + ": size mismatch");
        return;
    }
    int bad = 0;
    double worst = 0;
    for (size_t k = 0; k < want.size(); k++) {
        const double d = std::fabs(double(got[k]) - want[k]);
        if (std::isfinite(d)) worst = std::max(worst, d);
        if (double(got[k]) == want[k]) continue;
        if (!(d <= tol.abs + tol.rel * std::fabs(want[k])) && bad++ < 4)
            ::sdgo::testing::report_failure(
                __FILE__, __LINE__, strprintf("%s: element %zu got %.9g want %.9g (tolerance %g + %g*|want|)",
                                              what.c_str(), k, double(got[k]), want[k], tol.abs, tol.rel));
    }
    if (std::getenv("SDGO_TEST_VERBOSE")) std::printf("    %-44s max abs error %.3g\n", what.c_str(), worst);
}

// Runs one case on every registered device, in every code variant the
// device runs here (the CPU: each of its SIMD paths and scalar): against the
// reference, and devices other than the CPU against the CPU too.
void check_case(const std::string & name, Tol tol, const Build & build) {
    g_cases++;
    Run cpu_run = run_on(build, cpu::device(), "", true);
    if (!cpu_run.st.ok()) {
        ::sdgo::testing::report_failure(__FILE__, __LINE__, name + " [cpu]: " + cpu_run.st.message());
        return;
    }
    if (cpu_run.skipped) {
        ::sdgo::testing::report_failure(__FILE__, __LINE__, name + ": the CPU backend must support " + cpu_run.skipped_op);
        return;
    }
    for (Device * dev : backends::all_devices()) {
        const std::vector<std::string> variants = dev->variants();
        for (size_t vi = 0; vi < variants.size(); vi++) {
            const std::string & variant = variants[vi];
            const std::string tag = name + " [" + dev->info().backend + ":" + std::to_string(dev->info().index) +
                                    (variant.empty() ? "" : ":" + variant) + "]";
            // The CPU's best variant made the reference run already.
            Run r = dev == cpu::device() && vi == 0 ? cpu_run : run_on(build, dev, variant, false);
            g_runs++;
            if (r.skipped) {
                g_skips.push_back(tag + " (" + r.skipped_op + ")");
                continue;
            }
            if (!r.st.ok()) {
                ::sdgo::testing::report_failure(__FILE__, __LINE__, tag + ": " + r.st.message());
                continue;
            }
            compare(tag + " vs reference", r.out, cpu_run.ref, tol);
            if (dev != cpu::device()) {
                std::vector<double> cpu_out(cpu_run.out.begin(), cpu_run.out.end());
                compare(tag + " vs cpu", r.out, cpu_out, tol);
            }
        }
    }
}

// mul_mat tolerance by weight type. The reference dequantizes the very
// bytes the backend reads, so what remains is the backend's own arithmetic:
// the CPU accumulates in f32 on dequantized weights (observed max error
// ~3e-5 at K = 320); a GPU backend may also round activations to f16 for
// half and quantized weights, about 2^-11 relative per term, which for
// K = 320, |x| <= 2, |w| <= 1 stays below 2e-2.
Tol matmul_tol(DType t) {
    if (t == DType::f32) return {5e-4, 1e-4};
    return {2e-2, 1e-3};
}

}  // namespace

TEST(backend_registry_lists_the_cpu) {
    bool cpu = false;
    for (Device * d : backends::all_devices()) cpu = cpu || d == cpu::device();
    CHECK(cpu);
}

TEST(unary_ops) {
    const struct { const char * name; std::function<Tensor *(Graph &, Tensor *)> f; Tol tol; float lo, hi; } ops[] = {
        {"silu", [](Graph & g, Tensor * a) { return g.silu(a); }, {1e-6, 1e-5}, -6, 6},
        {"gelu", [](Graph & g, Tensor * a) { return g.gelu(a); }, {1e-6, 1e-5}, -6, 6},
        {"gelu_tanh", [](Graph & g, Tensor * a) { return g.gelu_tanh(a); }, {1e-6, 1e-5}, -6, 6},
        {"quick_gelu", [](Graph & g, Tensor * a) { return g.quick_gelu(a); }, {1e-6, 1e-5}, -6, 6},
        {"relu", [](Graph & g, Tensor * a) { return g.relu(a); }, {0, 0}, -3, 3},
        {"tanh", [](Graph & g, Tensor * a) { return g.tanh(a); }, {1e-6, 1e-5}, -4, 4},
        {"sigmoid", [](Graph & g, Tensor * a) { return g.sigmoid(a); }, {1e-6, 1e-5}, -8, 8},
        {"exp", [](Graph & g, Tensor * a) { return g.exp(a); }, {1e-6, 1e-5}, -5, 5},
        {"sqrt", [](Graph & g, Tensor * a) { return g.sqrt(a); }, {1e-6, 1e-6}, 0, 9},
        {"sqr", [](Graph & g, Tensor * a) { return g.sqr(a); }, {1e-6, 1e-6}, -3, 3},
        {"scale", [](Graph & g, Tensor * a) { return g.scale(a, 0.37f, -1.25f); }, {1e-6, 1e-6}, -3, 3},
        {"clamp", [](Graph & g, Tensor * a) { return g.clamp(a, -0.5f, 0.75f); }, {0, 0}, -2, 2},
    };
    for (const auto & op : ops) {
        check_case(std::string(op.name) + " [37,5,3]", op.tol, [&](Graph & g, Gen & in) {
            return op.f(g, in.f32(g, {37, 5, 3}, op.lo, op.hi));
        });
        // a transposed (non-contiguous) source, made contiguous after
        check_case(std::string(op.name) + " transposed view", op.tol, [&](Graph & g, Gen & in) {
            return g.cont(op.f(g, g.transpose(in.f32(g, {13, 7, 2}, op.lo, op.hi))));
        });
    }
}

TEST(binary_ops_broadcast) {
    const struct { const char * name; Tensor * (Graph::*f)(Tensor *, Tensor *); } ops[] = {
        {"add", &Graph::add}, {"sub", &Graph::sub}, {"mul", &Graph::mul}, {"div", &Graph::div}};
    for (const auto & op : ops) {
        const Tol tol{1e-6, 1e-6};
        check_case(std::string(op.name) + " same shape", tol, [&](Graph & g, Gen & in) {
            return (g.*op.f)(in.f32(g, {33, 4, 3}), in.f32(g, {33, 4, 3}, 0.5f, 2.0f));
        });
        check_case(std::string(op.name) + " broadcast rows/channels", tol, [&](Graph & g, Gen & in) {
            return (g.*op.f)(in.f32(g, {37, 6, 3, 2}), in.f32(g, {37, 1, 3, 1}, 0.5f, 2.0f));
        });
        check_case(std::string(op.name) + " broadcast per-channel", tol, [&](Graph & g, Gen & in) {
            return (g.*op.f)(in.f32(g, {5, 7, 6, 2}), in.f32(g, {1, 1, 6, 1}, 0.5f, 2.0f));
        });
        check_case(std::string(op.name) + " permuted view", tol, [&](Graph & g, Gen & in) {
            Tensor * a = g.permute(in.f32(g, {6, 9, 4}), 2, 0, 1, 3);  // -> [9, 4, 6]
            return g.cont((g.*op.f)(a, in.f32(g, {9, 4, 1}, 0.5f, 2.0f)));
        });
    }
}

TEST(softmax_plain_scaled_causal) {
    for (bool causal : {false, true})
        for (float scale : {1.0f, 0.125f}) {
            check_case(strprintf("softmax scale %g%s", scale, causal ? " causal" : ""), {1e-6, 1e-5},
                       [&](Graph & g, Gen & in) { return g.softmax(in.f32(g, {67, 13, 3}, -8, 8), scale, causal); });
        }
    check_case("softmax causal wide", {1e-6, 1e-5},
               [&](Graph & g, Gen & in) { return g.softmax(in.f32(g, {29, 5, 2}, -8, 8), 1.0f, true); });
}

TEST(norms) {
    for (bool silu : {false, true})
        for (bool affine : {false, true}) {
            check_case(strprintf("group_norm%s%s", silu ? "+silu" : "", affine ? " affine" : ""), {2e-5, 1e-4},
                       [&](Graph & g, Gen & in) {
                           Tensor * x = in.f32(g, {7, 5, 32, 2}, -3, 5);
                           Tensor * w = affine ? in.f32(g, {32}) : nullptr;
                           Tensor * b = affine ? in.f32(g, {32}) : nullptr;
                           return silu ? g.group_norm_silu(x, 8, 1e-5f, w, b) : g.group_norm(x, 8, 1e-5f, w, b);
                       });
        }
    for (bool affine : {false, true})
        check_case(strprintf("layer_norm%s", affine ? " affine" : ""), {2e-5, 1e-4}, [&](Graph & g, Gen & in) {
            Tensor * x = in.f32(g, {77, 9, 2}, -3, 5);
            return g.layer_norm(x, 1e-5f, affine ? in.f32(g, {77}) : nullptr, affine ? in.f32(g, {77}) : nullptr);
        });
}

TEST(mul_mat_every_weight_type) {
    for (DType t : {DType::f32, DType::f16, DType::bf16, DType::q8_0, DType::q5_0, DType::q5_1, DType::q4_0,
                    DType::q4_1}) {
        const Tol tol = matmul_tol(t);
        check_case(strprintf("mul_mat %s [96,37] x [96,13,2] + bias", dtype_name(t)), tol, [&](Graph & g, Gen & in) {
            Tensor * w = in.weight(g, t, {96, 37});
            return g.mul_mat(w, in.f32(g, {96, 13, 2}), in.f32(g, {37}));
        });
        check_case(strprintf("mul_mat %s broadcast [64,9,1] x [64,5,3]", dtype_name(t)), tol, [&](Graph & g, Gen & in) {
            return g.mul_mat(in.weight(g, t, {64, 9}), in.f32(g, {64, 5, 3}));
        });
        check_case(strprintf("mul_mat %s [320,70] x [320,67] (the blocked kernels)", dtype_name(t)), tol,
                   [&](Graph & g, Gen & in) { return g.mul_mat(in.weight(g, t, {320, 70}), in.f32(g, {320, 67})); });
        check_case(strprintf("mul_mat %s single row", dtype_name(t)), tol, [&](Graph & g, Gen & in) {
            return g.mul_mat(in.weight(g, t, {320, 3}), in.f32(g, {320, 1}));
        });
    }
    // Larger than one cache block of the CPU's GEMM in K (384) and N (192).
    for (DType t : {DType::f32, DType::f16, DType::q4_1})
        check_case(strprintf("mul_mat %s [416,197] x [416,9] (several K and N blocks)", dtype_name(t)), matmul_tol(t),
                   [&](Graph & g, Gen & in) { return g.mul_mat(in.weight(g, t, {416, 197}), in.f32(g, {416, 9})); });
    check_case("mul_mat f32 transposed activations", matmul_tol(DType::f32), [&](Graph & g, Gen & in) {
        Tensor * x = g.transpose(in.f32(g, {11, 48}));  // [48, 11] view
        return g.mul_mat(in.weight(g, DType::f32, {48, 7}), x);
    });
    check_case("mul_mat f32 activation x activation", matmul_tol(DType::f32), [&](Graph & g, Gen & in) {
        return g.mul_mat(in.f32(g, {40, 17, 2}), in.f32(g, {40, 6, 2}));
    });
}

// conv2d tolerance: as mul_mat's (the reference reads the same weight bytes).
Tol conv_tol(DType t) { return t == DType::f32 ? Tol{2e-4, 1e-4} : Tol{3e-2, 3e-3}; }

TEST(conv2d_sizes_strides_types) {
    for (DType t : {DType::f32, DType::f16, DType::bf16}) {
        const Tol tol = conv_tol(t);
        check_case(strprintf("conv2d %s 3x3 s1 p1", dtype_name(t)), tol, [&](Graph & g, Gen & in) {
            return g.conv2d(in.weight(g, t, {3, 3, 5, 7}), in.f32(g, {11, 9, 5, 2}), in.f32(g, {7}), 1, 1, 1, 1);
        });
        check_case(strprintf("conv2d %s 3x3 s2 p1", dtype_name(t)), tol, [&](Graph & g, Gen & in) {
            return g.conv2d(in.weight(g, t, {3, 3, 6, 4}), in.f32(g, {13, 10, 6, 1}), in.f32(g, {4}), 2, 2, 1, 1);
        });
        check_case(strprintf("conv2d %s 1x1", dtype_name(t)), tol, [&](Graph & g, Gen & in) {
            return g.conv2d(in.weight(g, t, {1, 1, 9, 5}), in.f32(g, {6, 7, 9, 1}), nullptr, 1, 1, 0, 0);
        });
    }
    // Cin * 9 = 432: more than one K block; 23x17 pixels: several pixel blocks.
    for (DType t : {DType::f32, DType::f16})
        check_case(strprintf("conv2d %s 3x3 Cin 48 on 23x17", dtype_name(t)), conv_tol(t), [&](Graph & g, Gen & in) {
            return g.conv2d(in.weight(g, t, {3, 3, 48, 11}), in.f32(g, {23, 17, 48, 1}), in.f32(g, {11}), 1, 1, 1, 1);
        });
    // More than one 64-wide block of output channels and of pixels (the
    // Vulkan shader's workgroup tile), an odd row length (K = 63: unaligned
    // 16-bit rows), a batch of two and a strided input view.
    for (DType t : {DType::f32, DType::f16, DType::bf16})
        check_case(strprintf("conv2d %s 3x3 Cin 7 -> 70 on 13x11, batch 2, strided x", dtype_name(t)), conv_tol(t),
                   [&](Graph & g, Gen & in) {
                       Tensor * x = g.permute(in.f32(g, {13, 7, 11, 2}), 0, 2, 1, 3);
                       return g.conv2d(in.weight(g, t, {3, 3, 7, 70}), x, in.f32(g, {70}), 1, 1, 1, 1);
                   });
    // No block type here: a block-type tensor needs rows (ne0 = KW) of a
    // multiple of 32, which no convolution weight has; graph building refuses
    // it (test_graph), and so do stable-diffusion.cpp's quantizer and ours.
}

TEST(attention_on_strided_views) {
    for (bool causal : {false, true})
        for (int64_t nk : {13, 21}) {
            check_case(strprintf("attention Nk %lld%s", (long long)nk, causal ? " causal" : ""), {1e-5, 1e-4},
                       [&](Graph & g, Gen & in) {
                           // q/k/v as [D, H, N] inputs permuted to [D, N, H]: strided views
                           Tensor * q = g.permute(in.f32(g, {16, 3, 13}), 0, 2, 1, 3);
                           Tensor * k = g.permute(in.f32(g, {16, 3, nk}), 0, 2, 1, 3);
                           Tensor * v = g.permute(in.f32(g, {16, 3, nk}), 0, 2, 1, 3);
                           return g.attention(q, k, v, 0.25f, causal);
                       });
        }
    // SD's head size 40, more keys than one key tile (192 on the CPU), queries
    // over several sub-tiles.
    check_case("attention D 40, 70 x 300 keys", {1e-5, 1e-4}, [&](Graph & g, Gen & in) {
        Tensor * q = g.permute(in.f32(g, {40, 2, 70}), 0, 2, 1, 3);
        Tensor * k = g.permute(in.f32(g, {40, 2, 300}), 0, 2, 1, 3);
        Tensor * v = g.permute(in.f32(g, {40, 2, 300}), 0, 2, 1, 3);
        return g.attention(q, k, v, 1.0f / std::sqrt(40.0f), false);
    });
    // Causal over several query and key blocks, a batch of two; and the
    // largest head size (one pipeline per head size on Vulkan).
    check_case("attention D 80 causal, 130 x 130, batch 2", {1e-5, 1e-4}, [&](Graph & g, Gen & in) {
        Tensor * q = g.permute(in.f32(g, {80, 3, 130, 2}), 0, 2, 1, 3);
        Tensor * k = g.permute(in.f32(g, {80, 3, 130, 2}), 0, 2, 1, 3);
        Tensor * v = g.permute(in.f32(g, {80, 3, 130, 2}), 0, 2, 1, 3);
        return g.attention(q, k, v, 1.0f / std::sqrt(80.0f), true);
    });
    check_case("attention D 256, 9 x 40 keys", {1e-5, 1e-4}, [&](Graph & g, Gen & in) {
        return g.attention(in.f32(g, {256, 9, 1}), in.f32(g, {256, 40, 1}), in.f32(g, {256, 40, 1}), 0.0625f, false);
    });
}

TEST(shape_ops) {
    const Tol exact{0, 0};
    for (int dim = 0; dim < 4; dim++)
        check_case(strprintf("concat dim %d", dim), exact, [&](Graph & g, Gen & in) {
            int64_t a[4] = {5, 3, 4, 2}, b[4] = {5, 3, 4, 2};
            b[dim] = 3;
            return g.concat(in.f32(g, {a[0], a[1], a[2], a[3]}), in.f32(g, {b[0], b[1], b[2], b[3]}), dim);
        });
    check_case("concat of a view", exact, [&](Graph & g, Gen & in) {
        return g.concat(g.transpose(in.f32(g, {4, 6})), in.f32(g, {6, 2}), 1);
    });
    check_case("upscale x2", exact, [&](Graph & g, Gen & in) { return g.upscale_nearest(in.f32(g, {5, 3, 4, 1}), 2); });
    check_case("resize 5x3 -> 7x5", exact, [&](Graph & g, Gen & in) { return g.resize_nearest(in.f32(g, {5, 3, 2}), 7, 5); });
    check_case("resize 9x8 -> 4x3", exact, [&](Graph & g, Gen & in) { return g.resize_nearest(in.f32(g, {9, 8, 2}), 4, 3); });
    check_case("pad both sides", exact, [&](Graph & g, Gen & in) {
        const int lp[4] = {1, 2, 0, 0}, rp[4] = {3, 0, 1, 0};
        return g.pad(in.f32(g, {5, 4, 3}), lp, rp);
    });
    check_case("pad after", exact, [&](Graph & g, Gen & in) { return g.pad(in.f32(g, {7, 3, 2}), 1, 1); });
    check_case("geglu", {1e-6, 1e-5}, [&](Graph & g, Gen & in) { return g.cont(g.geglu(in.f32(g, {22, 5, 2}))); });
    check_case("cont of a permute", exact, [&](Graph & g, Gen & in) {
        return g.cont(g.permute(in.f32(g, {5, 4, 3, 2}), 3, 1, 0, 2));
    });
    for (DType t : {DType::f16, DType::bf16})
        for (int64_t n0 : {37, 38})
            check_case(strprintf("cast f32 -> %s -> f32 [%lld,3]", dtype_name(t), (long long)n0), exact,
                       [&](Graph & g, Gen & in) {
                           return g.cast(g.cast(in.f32(g, {n0, 3}, -100, 100), t), DType::f32);
                       });
    // f16 rounding at the edges: subnormals, ties, overflow to inf.
    check_case("cast f32 -> f16 -> f32 tiny and huge", exact, [&](Graph & g, Gen & in) {
        Tensor * x = g.mul(in.f32(g, {64, 2}, -1, 1), in.f32(g, {1, 2}, 1e-5f, 1e-4f));
        Tensor * y = g.scale(in.f32(g, {64, 2}, -1, 1), 70000.0f);
        return g.concat(g.cast(g.cast(x, DType::f16), DType::f32), g.cast(g.cast(y, DType::f16), DType::f32), 1);
    });
}

TEST(embeddings_and_reductions) {
    for (int dim : {32, 33})
        for (bool flip : {true, false})
            check_case(strprintf("timestep_embedding %d%s", dim, flip ? " flip" : ""), {2e-4, 0},
                       [&](Graph & g, Gen & in) {
                           return g.timestep_embedding(in.f32(g, {3}, 0, 999), dim, 10000.0f, flip, flip ? 0.0f : 1.0f);
                       });
    for (DType t : {DType::f32, DType::f16, DType::bf16, DType::q8_0, DType::q5_0, DType::q5_1, DType::q4_0,
                    DType::q4_1})
        check_case(strprintf("get_rows %s", dtype_name(t)), {0, 0}, [&](Graph & g, Gen & in) {
            return g.get_rows(in.weight(g, t, {64, 9}), in.i32(g, {4, 2}, {8, 0, 3, 3, 1, 7, 2, 5}));
        });
    const Tol sum_tol{2e-5, 1e-5};
    check_case("sum_rows", sum_tol, [&](Graph & g, Gen & in) { return g.sum_rows(in.f32(g, {37, 5, 3})); });
    check_case("mean_rows", sum_tol, [&](Graph & g, Gen & in) { return g.mean_rows(in.f32(g, {37, 5, 3})); });
    check_case("sum", {1e-4, 1e-5}, [&](Graph & g, Gen & in) { return g.sum(in.f32(g, {37, 5, 3})); });
    check_case("mean", sum_tol, [&](Graph & g, Gen & in) { return g.mean(in.f32(g, {37, 5, 3})); });
    check_case("sum_rows of a view", sum_tol, [&](Graph & g, Gen & in) {
        return g.sum_rows(g.transpose(in.f32(g, {6, 11})));
    });
}

// Last in the file: a summary of what ran where.
TEST(zz_summary) {
    std::printf("backend-ops: %d cases, %d device runs, %zu skipped\n", g_cases, g_runs, g_skips.size());
    for (const std::string & s : g_skips) std::printf("  skipped: %s\n", s.c_str());
    CHECK(g_cases > 80);
}
