// Tests of tensors, views, graph building, the memory planner and the CPU
// backend's graph life cycle (allocation, set/get, compute, errors).
#include <cstdint>
#include <cstring>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "core/graph.h"
#include "core/planner.h"
#include "testing.h"

using namespace sdgo;

namespace {

std::vector<float> iota_f(int64_t n, float start = 0.0f) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; i++) v[i] = start + static_cast<float>(i);
    return v;
}

constexpr size_t kMiB = size_t(1) << 20;

}  // namespace

TEST(tensor_strides_and_contiguity) {
    Graph g;
    Tensor * a = g.input(DType::f32, {5, 4, 3, 2});
    CHECK_EQ(a->nb[0], size_t(4));
    CHECK_EQ(a->nb[1], size_t(20));
    CHECK_EQ(a->nb[2], size_t(80));
    CHECK_EQ(a->nb[3], size_t(240));
    CHECK_EQ(a->nbytes(), size_t(480));
    CHECK(a->is_contiguous());
    CHECK_EQ(a->n_dims(), 4);
    Tensor * t = g.transpose(a);
    CHECK_EQ(t->ne[0], int64_t(4));
    CHECK_EQ(t->ne[1], int64_t(5));
    CHECK_EQ(t->nb[0], size_t(20));
    CHECK_EQ(t->nb[1], size_t(4));
    CHECK(!t->is_contiguous());
    CHECK_EQ(t->nbytes(), size_t(480));
    CHECK(t->view_src == a);
    // ggml permute semantics: source dim i goes to position axis_i.
    Tensor * p = g.permute(a, 2, 0, 3, 1);
    CHECK_EQ(p->ne[2], int64_t(5));
    CHECK_EQ(p->ne[0], int64_t(4));
    CHECK_EQ(p->ne[3], int64_t(3));
    CHECK_EQ(p->ne[1], int64_t(2));
    CHECK_EQ(p->nb[2], size_t(4));
    // A view of a view points at the storage owner with summed offsets.
    Tensor * v1 = g.view(a, {5, 4}, {20}, 80);
    Tensor * v2 = g.view(v1, {3}, {}, 8);
    CHECK(v2->view_src == a);
    CHECK_EQ(v2->view_offs, size_t(88));
    Tensor * q = g.input(DType::q8_0, {64, 3});
    CHECK_EQ(q->nb[0], size_t(34));
    CHECK_EQ(q->nb[1], size_t(68));
    CHECK_EQ(q->nbytes(), size_t(204));
    CHECK(g.status().ok());
}

TEST(graph_order_is_topological_and_skips_unused) {
    Graph g;
    Tensor * x = g.input(DType::f32, {8});
    Tensor * a = g.silu(x);
    Tensor * unused = g.gelu(x);
    Tensor * b = g.scale(a, 2.0f);
    Tensor * c = g.add(a, b);
    g.set_output(c);
    const auto & order = g.order();
    REQUIRE(order.size() == 3);
    CHECK(order[0] == a);
    CHECK(order[1] == b);
    CHECK(order[2] == c);
    for (Tensor * t : order) CHECK(t != unused);
}

TEST(planner_chain_needs_three_buffers_not_51) {
    // 50 element-wise ops on a 1 MiB tensor: the input (kept for the whole
    // compute), the op's source and its result - not 51 tensors.
    Graph g;
    Tensor * x = g.input(DType::f32, {static_cast<int64_t>(kMiB / 4)});
    Tensor * h = x;
    for (int i = 0; i < 50; i++) h = (i % 2) ? g.silu(h) : g.scale(h, 1.01f);
    g.set_output(h);
    MemoryPlan plan;
    REQUIRE(plan_memory(g, 64, false, &plan).ok());
    CHECK_EQ(plan.total_bytes, 51 * kMiB);
    CHECK_EQ(plan.arena_bytes, 3 * kMiB);
}

TEST(planner_branching_graph_exact_peak) {
    // x -> a = silu(x), b = gelu(x), c = a + b, d = 3c. Peak 4 MiB at c
    // (x, a, b, c live); d reuses a's block once a and b are dead.
    Graph g;
    const int64_t n = static_cast<int64_t>(kMiB / 4);
    Tensor * x = g.input(DType::f32, {n});
    Tensor * a = g.silu(x);
    Tensor * b = g.gelu(x);
    Tensor * c = g.add(a, b);
    Tensor * d = g.scale(c, 3.0f);
    g.set_output(d);
    MemoryPlan plan;
    REQUIRE(plan_memory(g, 64, false, &plan).ok());
    CHECK_EQ(plan.arena_bytes, 4 * kMiB);
    CHECK_EQ(plan.offset[x->id], size_t(0));
    CHECK_EQ(plan.offset[a->id], kMiB);
    CHECK_EQ(plan.offset[b->id], 2 * kMiB);
    CHECK_EQ(plan.offset[c->id], 3 * kMiB);
    CHECK_EQ(plan.offset[d->id], kMiB);  // a and b's merged block (best fit)
}

TEST(planner_views_extend_lifetime) {
    // A view of a read late keeps a alive: without that, z would reuse a's
    // block and the peak would be 3 MiB.
    Graph g;
    const int64_t n = static_cast<int64_t>(kMiB / 4);
    Tensor * x = g.input(DType::f32, {n});
    Tensor * a = g.silu(x);
    Tensor * av = g.view(a, {n / 2}, {}, 0);  // first half of a
    Tensor * y = g.silu(a);
    Tensor * z = g.silu(y);
    Tensor * w = g.add(g.view(z, {n / 2}, {}, 0), av);
    g.set_output(w);
    MemoryPlan plan;
    REQUIRE(plan_memory(g, 64, false, &plan).ok());
    CHECK_EQ(plan.arena_bytes, 4 * kMiB);  // x, a, y, z at z
    CHECK(plan.offset[av->id] == MemoryPlan::kNone);
    CHECK_EQ(plan.offset[a->id], kMiB);
    CHECK_EQ(plan.offset[z->id], 3 * kMiB);
    CHECK_EQ(plan.offset[w->id], 2 * kMiB);  // y's block, free after z
}

TEST(planner_skip_connections_peak) {
    // U-Net-like: h1 = f(x), h2 = f(h1), h3 = f(h2), out = h3 + h1 (skip).
    Graph g;
    const int64_t n = static_cast<int64_t>(kMiB / 4);
    Tensor * x = g.input(DType::f32, {n});
    Tensor * h1 = g.silu(x);
    Tensor * h2 = g.silu(h1);
    Tensor * h3 = g.silu(h2);
    Tensor * out = g.add(h3, h1);
    g.set_output(out);
    MemoryPlan plan;
    REQUIRE(plan_memory(g, 64, false, &plan).ok());
    // x stays; h3 is written while x, h1, h2 live -> 4; out reuses h2's block.
    CHECK_EQ(plan.arena_bytes, 4 * kMiB);
    CHECK_EQ(plan.offset[out->id], 2 * kMiB);
}

TEST(planner_inplace_chain_and_branches) {
    const int64_t n = static_cast<int64_t>(kMiB / 4);
    {
        // With in-place results a chain needs the input and one block.
        Graph g;
        Tensor * x = g.input(DType::f32, {n});
        Tensor * h = x;
        for (int i = 0; i < 50; i++) h = (i % 2) ? g.silu(h) : g.scale(h, 1.01f);
        g.set_output(h);
        MemoryPlan plan;
        REQUIRE(plan_memory(g, 64, true, &plan).ok());
        CHECK_EQ(plan.arena_bytes, 2 * kMiB);
        CHECK_EQ(plan.inplace, 49);  // all but the first (the input is never overwritten)
    }
    {
        // a = silu(x), b = gelu(a), c = a + b: b cannot overwrite a (read
        // again by c); c overwrites a. Peak: x, a, b.
        Graph g;
        Tensor * x = g.input(DType::f32, {n});
        Tensor * a = g.silu(x);
        Tensor * b = g.gelu(a);
        Tensor * c = g.add(a, b);
        g.set_output(c);
        MemoryPlan plan;
        REQUIRE(plan_memory(g, 64, true, &plan).ok());
        CHECK_EQ(plan.arena_bytes, 3 * kMiB);
        CHECK_EQ(plan.offset[c->id], plan.offset[a->id]);
        CHECK(plan.offset[b->id] != plan.offset[a->id]);
        CHECK_EQ(plan.inplace, 1);
    }
    {
        // A transposed view of the dying source as the other operand blocks
        // in-place (it would read elements already overwritten).
        Graph g;
        Tensor * x = g.input(DType::f32, {512, 512});
        Tensor * a = g.silu(x);
        Tensor * c = g.add(a, g.transpose(a));
        g.set_output(c);
        MemoryPlan plan;
        REQUIRE(plan_memory(g, 64, true, &plan).ok());
        CHECK(plan.offset[c->id] != plan.offset[a->id]);
        CHECK_EQ(plan.inplace, 0);
    }
    {
        // Shapes differ (broadcast result larger than the source): no in-place.
        Graph g;
        Tensor * x = g.input(DType::f32, {64, 1});
        Tensor * y = g.input(DType::f32, {64, 8});
        Tensor * a = g.silu(x);
        Tensor * c = g.add(a, y);
        g.set_output(c);
        MemoryPlan plan;
        REQUIRE(plan_memory(g, 64, true, &plan).ok());
        CHECK_EQ(plan.inplace, 0);
    }
}

TEST(inplace_results_are_correct) {
    // silu -> transposed add of itself -> group norm -> softmax -> layer
    // norm chain computed with and without reuse must agree bit for bit.
    std::vector<float> in(48 * 48 * 4);
    for (size_t i = 0; i < in.size(); i++) in[i] = static_cast<float>((i * 53) % 97) / 40.0f - 1.2f;
    std::vector<float> got[2];
    for (int keep = 0; keep < 2; keep++) {
        Graph g;
        Tensor * x = g.input(DType::f32, {48, 48, 4, 1});
        std::vector<Tensor *> nodes;
        Tensor * a = g.silu(x);
        Tensor * b = g.add(a, g.permute(a, 1, 0, 2, 3));
        Tensor * c = g.group_norm_silu(b, 2, 1e-5f);
        Tensor * d = g.softmax(c, 0.7f, true);
        Tensor * e = g.layer_norm(d, 1e-5f);
        Tensor * f = g.mul(e, g.scale(e, 0.5f));
        nodes = {a, b, c, d, e, f};
        if (keep)
            for (Tensor * t : nodes) g.set_output(t);
        g.set_output(f);
        CpuBackend be(2, cpu::best_code_path());
        be.set_min_parallel_work(0);
        REQUIRE(be.alloc_graph(g).ok());
        REQUIRE(be.set_tensor(x, in.data(), 0, in.size() * 4).ok());
        REQUIRE(be.compute(g).ok());
        got[keep].resize(in.size());
        REQUIRE(be.get_tensor(f, got[keep].data(), 0, in.size() * 4).ok());
        if (!keep) {
            MemoryPlan plan;
            REQUIRE(plan_memory(g, 64, true, &plan).ok());
            CHECK(plan.inplace >= 3);
        }
    }
    CHECK(std::memcmp(got[0].data(), got[1].data(), in.size() * 4) == 0);
}

TEST(backend_computes_chain_with_small_arena) {
    Graph g;
    const int64_t n = 1000;
    Tensor * x = g.input(DType::f32, {n}, "x");
    Tensor * h = x;
    for (int i = 0; i < 50; i++) h = g.scale(h, 1.0f, 1.0f);  // +1 each
    g.set_output(h);
    CpuBackend be(2, cpu::best_code_path());
    REQUIRE(be.alloc_graph(g).ok());
    CHECK_EQ(g.arena_bytes(), size_t(2 * 4032));  // input + one 4000-byte block (in place), 64-aligned
    std::vector<float> in = iota_f(n), out(n);
    REQUIRE(be.set_tensor(x, in.data(), 0, n * 4).ok());
    REQUIRE(be.compute(g).ok());
    REQUIRE(be.get_tensor(h, out.data(), 0, n * 4).ok());
    for (int64_t i = 0; i < n; i++) CHECK_EQ(out[i], in[i] + 50.0f);  // exact in f32
    // Computing again (inputs keep their contents) gives the same result.
    REQUIRE(be.compute(g).ok());
    std::vector<float> out2(n);
    REQUIRE(be.get_tensor(h, out2.data(), 0, n * 4).ok());
    CHECK(out == out2);
    // A backend on a caller's pool computes the same.
    ThreadPool pool(3);
    CpuBackend shared(&pool, cpu::CodePath::scalar);
    Graph g2;
    Tensor * x2 = g2.input(DType::f32, {n});
    Tensor * h2 = x2;
    for (int i = 0; i < 50; i++) h2 = g2.scale(h2, 1.0f, 1.0f);
    REQUIRE(shared.alloc_graph(g2).ok());
    REQUIRE(shared.set_tensor(x2, in.data(), 0, n * 4).ok());
    REQUIRE(shared.compute(g2).ok());
    std::vector<float> out3(n);
    REQUIRE(shared.get_tensor(h2, out3.data(), 0, n * 4).ok());
    CHECK(out == out3);
}

TEST(weights_use_external_memory) {
    std::vector<float> wdata = iota_f(6, 1.0f);
    std::unique_ptr<Buffer> wb;
    REQUIRE(cpu::device()->wrap_host(wdata.data(), wdata.size() * 4, &wb).ok());
    Graph g;
    Tensor * w = g.weight(DType::f32, {3, 2}, wb.get(), 0, "w");
    CHECK(w->buffer == wb.get());
    Tensor * x = g.input(DType::f32, {3, 2});
    Tensor * y = g.mul(x, g.transpose(g.transpose(w)));
    g.set_output(y);
    CpuBackend be(1, cpu::CodePath::scalar);
    REQUIRE(be.alloc_graph(g).ok());
    CHECK(w->data == wdata.data());
    CHECK_EQ(g.arena_bytes(), size_t(128));  // x and y only, 64-aligned
    std::vector<float> xin = {2, 2, 2, 3, 3, 3}, out(6);
    REQUIRE(be.set_tensor(x, xin.data(), 0, 24).ok());
    REQUIRE(be.compute(g).ok());
    REQUIRE(be.get_tensor(y, out.data(), 0, 24).ok());
    const float want[6] = {2, 4, 6, 12, 15, 18};
    for (int i = 0; i < 6; i++) CHECK_EQ(out[i], want[i]);
}

TEST(build_errors_are_reported_not_crashes) {
    {
        Graph g;
        Tensor * a = g.input(DType::f32, {4, 3});
        Tensor * b = g.input(DType::f32, {3, 3});
        Tensor * c = g.add(a, b);  // 4 vs 3 do not broadcast
        CHECK(c != nullptr);
        CHECK_EQ(g.status().code(), SDGO_ERR_INVALID_ARGUMENT);
        CHECK(g.status().message().find("broadcast") != std::string::npos);
        // Building goes on; the first error is kept and returned by compute.
        Tensor * d = g.silu(g.mul_mat(a, b));
        g.set_output(d);
        CpuBackend be(1, cpu::CodePath::scalar);
        Status st = be.compute(g);
        CHECK_EQ(st.code(), SDGO_ERR_INVALID_ARGUMENT);
        CHECK(st.message().find("broadcast") != std::string::npos);
    }
    {
        Graph g;
        g.silu(nullptr);
        CHECK_EQ(g.status().code(), SDGO_ERR_INVALID_ARGUMENT);
    }
    {
        Graph g1, g2;
        Tensor * a = g1.input(DType::f32, {4});
        g2.silu(a);  // tensor from another graph
        CHECK_EQ(g2.status().code(), SDGO_ERR_INVALID_ARGUMENT);
    }
    {
        Graph g;
        Tensor * w = g.input(DType::f32, {8, 4});
        Tensor * x = g.input(DType::f32, {7, 2});
        g.mul_mat(w, x);
        CHECK_EQ(g.status().code(), SDGO_ERR_INVALID_ARGUMENT);
    }
    {
        Graph g;
        Tensor * x = g.input(DType::f32, {8, 8, 30, 1});
        g.group_norm(x, 32, 1e-5f);  // 30 channels into 32 groups
        CHECK_EQ(g.status().code(), SDGO_ERR_INVALID_ARGUMENT);
    }
    {
        Graph g;
        Tensor * x = g.input(DType::f32, {8, 8});
        g.reshape(x, {7, 9});
        CHECK_EQ(g.status().code(), SDGO_ERR_INVALID_ARGUMENT);
    }
    {
        Graph g;
        Tensor * x = g.input(DType::f32, {8, 8});
        g.view(x, {8, 8}, {32}, 4);  // one element past the end
        CHECK_EQ(g.status().code(), SDGO_ERR_INVALID_ARGUMENT);
        CHECK(g.status().message().find("exceeds") != std::string::npos);
    }
    {
        Graph g;
        Tensor * x = g.input(DType::q8_0, {40, 2});  // not a multiple of 32
        (void)x;
        CHECK_EQ(g.status().code(), SDGO_ERR_INVALID_ARGUMENT);
    }
    {
        Graph g;
        const int64_t ne[2] = {4, -1};
        g.input(DType::f32, 2, ne);
        CHECK_EQ(g.status().code(), SDGO_ERR_INVALID_ARGUMENT);
    }
    {
        Graph g;
        Tensor * x = g.input(DType::f32, {4, 4});
        g.permute(x, 0, 0, 1, 2);
        CHECK_EQ(g.status().code(), SDGO_ERR_INVALID_ARGUMENT);
    }
    {
        Graph g;
        Tensor * w = g.input(DType::f32, {3, 3, 4, 8});
        Tensor * x = g.input(DType::f32, {9, 9, 5, 1});
        g.conv2d(w, x, nullptr, 1, 1, 1, 1);  // 4 vs 5 input channels
        CHECK_EQ(g.status().code(), SDGO_ERR_INVALID_ARGUMENT);
    }
    {
        Graph g;
        Tensor * x = g.input(DType::f16, {8});
        g.silu(x);  // activations must be f32
        CHECK_EQ(g.status().code(), SDGO_ERR_UNSUPPORTED);
    }
}

TEST(backend_api_misuse_returns_errors) {
    Graph g;
    Tensor * x = g.input(DType::f32, {16}, "x");
    Tensor * y = g.silu(x);
    g.set_output(y);
    CpuBackend be(1, cpu::CodePath::scalar);
    float buf[16] = {0};
    // Not allocated yet.
    CHECK_EQ(be.set_tensor(x, buf, 0, 64).code(), SDGO_ERR_INVALID_ARGUMENT);
    REQUIRE(be.alloc_graph(g).ok());
    CHECK_EQ(be.set_tensor(x, buf, 4, 64).code(), SDGO_ERR_INVALID_ARGUMENT);  // past the end
    CHECK_EQ(be.set_tensor(x, nullptr, 0, 64).code(), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(be.get_tensor(nullptr, buf, 0, 4).code(), SDGO_ERR_INVALID_ARGUMENT);
    CHECK(be.set_tensor(x, buf, 0, 64).ok());
    // Building after allocation is an error.
    g.gelu(y);
    CHECK_EQ(g.status().code(), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(be.compute(g).code(), SDGO_ERR_INVALID_ARGUMENT);
    // Another backend cannot run a graph allocated elsewhere.
    Graph g2;
    Tensor * a = g2.input(DType::f32, {4});
    g2.set_output(g2.silu(a));
    REQUIRE(be.alloc_graph(g2).ok());
    CpuBackend other(1, cpu::CodePath::scalar);
    CHECK_EQ(other.compute(g2).code(), SDGO_ERR_INVALID_ARGUMENT);
}

TEST(huge_arena_fails_with_out_of_memory) {
    // 2^44 floats (64 TiB) cannot be allocated: a Status, not a crash.
    Graph g;
    Tensor * x = g.input(DType::f32, {int64_t(1) << 22, int64_t(1) << 22});
    g.set_output(g.silu(x));
    REQUIRE(g.status().ok());
    CpuBackend be(1, cpu::CodePath::scalar);
    Status st = be.alloc_graph(g);
    CHECK_EQ(st.code(), SDGO_ERR_OUT_OF_MEMORY);
}

namespace {

// A random DAG of element-wise ops, broadcasts and views over 24x20
// tensors. With keep_all every node is an output (no memory reuse).
Tensor * random_dag(Graph & g, Tensor * x, int nodes, uint64_t seed, bool keep_all) {
    std::vector<Tensor *> pool = {x};
    uint64_t s = seed;
    auto next = [&]() {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        return static_cast<uint32_t>(s >> 33);
    };
    for (int i = 0; i < nodes; i++) {
        // Prefer recent tensors so lifetimes vary from short to long.
        auto pick = [&]() {
            const size_t n = pool.size();
            return next() % 4 ? pool[n - 1 - next() % std::min<size_t>(n, 4)] : pool[next() % n];
        };
        Tensor * a = pick();
        Tensor * t = nullptr;
        switch (next() % 8) {
            case 0: t = g.silu(a); break;
            case 1: t = g.add(a, pick()); break;
            case 2: t = g.mul(a, g.scale(pick(), 0.5f, 0.25f)); break;
            case 3: t = g.cont(g.transpose(g.reshape(g.cont(a), {20, 24}))); t = g.reshape(t, {24, 20}); break;
            case 4: t = g.sub(a, g.view(pick(), {24, 1}, {96}, 0)); break;  // broadcast a column slice
            case 5: t = g.clamp(a, -2.0f, 2.0f); break;
            case 6: t = g.softmax(a, 0.5f); break;
            default: t = g.layer_norm(a, 1e-5f); break;
        }
        if (keep_all) g.set_output(t);
        pool.push_back(t);
    }
    Tensor * out = pool.back();
    g.set_output(out);
    return out;
}

}  // namespace

TEST(planner_reuse_does_not_change_results) {
    // The same random graphs computed with the planner's reuse and with
    // every node kept alive must give bit-identical outputs.
    std::vector<float> in(24 * 20);
    for (size_t i = 0; i < in.size(); i++) in[i] = static_cast<float>((i * 37) % 101) / 50.0f - 1.0f;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        std::vector<float> got[2];
        size_t arena[2] = {0, 0};
        for (int keep = 0; keep < 2; keep++) {
            Graph g;
            Tensor * x = g.input(DType::f32, {24, 20});
            Tensor * out = random_dag(g, x, 120, seed, keep != 0);
            CpuBackend be(2, cpu::best_code_path());
            REQUIRE(be.alloc_graph(g).ok());
            REQUIRE(be.set_tensor(x, in.data(), 0, in.size() * 4).ok());
            REQUIRE(be.compute(g).ok());
            got[keep].resize(static_cast<size_t>(out->nelements()));
            REQUIRE(be.get_tensor(out, got[keep].data(), 0, got[keep].size() * 4).ok());
            arena[keep] = g.arena_bytes();
        }
        CHECK(std::memcmp(got[0].data(), got[1].data(), got[0].size() * 4) == 0);
        CHECK(arena[0] * 4 < arena[1]);  // reuse saves most of the memory
    }
}

TEST(abort_callback_cancels_and_profile_counts_ops) {
    Graph g;
    Tensor * x = g.input(DType::f32, {256});
    Tensor * h = x;
    for (int i = 0; i < 10; i++) h = g.silu(g.scale(h, 0.5f));
    g.set_output(h);
    CpuBackend be(1, cpu::CodePath::scalar);
    REQUIRE(be.alloc_graph(g).ok());
    std::vector<float> in(256, 1.0f);
    REQUIRE(be.set_tensor(x, in.data(), 0, 1024).ok());
    int calls = 0;
    be.set_abort_callback([](void * u) { return ++*static_cast<int *>(u) > 5; }, &calls);
    Status st = be.compute(g);
    CHECK_EQ(st.code(), SDGO_ERR_CANCELED);
    CHECK_EQ(calls, 6);  // asked before each node; the 6th answer stops it
    be.set_abort_callback(nullptr, nullptr);
    be.set_profiling(true);
    REQUIRE(be.compute(g).ok());
    const auto prof = be.profile();
    REQUIRE(prof.size() == 2);
    for (const auto & p : prof) {
        CHECK(p.op == Op::silu || p.op == Op::scale);
        CHECK_EQ(p.count, int64_t(10));
        CHECK(p.seconds >= 0.0);
    }
    CHECK(be.profile_report().find("silu") != std::string::npos);
}

TEST(group_norm_silu_is_fused_when_alone) {
    std::vector<float> in(16 * 16 * 8);
    for (size_t i = 0; i < in.size(); i++) in[i] = static_cast<float>((i * 29) % 83) / 20.0f - 2.0f;
    std::vector<float> out[3];
    for (int variant = 0; variant < 3; variant++) {
        Graph g;
        Tensor * x = g.input(DType::f32, {16, 16, 8, 1});
        Tensor * gn = variant == 2 ? g.group_norm_silu(x, 4, 1e-5f) : g.group_norm(x, 4, 1e-5f);
        Tensor * y = variant == 2 ? gn : g.silu(gn);
        Tensor * r = variant == 1 ? g.add(y, gn) : y;  // variant 1: gn read twice
        g.set_output(r);
        CpuBackend be(1, cpu::best_code_path());
        REQUIRE(be.alloc_graph(g).ok());
        if (variant == 0) {
            CHECK(y->op == Op::view);  // fused into the group norm
            CHECK_EQ(gn->iparams[1], 1);
        }
        if (variant == 1) CHECK(y->op == Op::silu);  // not fused: gn has two readers
        REQUIRE(be.set_tensor(x, in.data(), 0, in.size() * 4).ok());
        REQUIRE(be.compute(g).ok());
        out[variant].resize(in.size());
        REQUIRE(be.get_tensor(r, out[variant].data(), 0, in.size() * 4).ok());
    }
    CHECK(std::memcmp(out[0].data(), out[2].data(), in.size() * 4) == 0);
}
