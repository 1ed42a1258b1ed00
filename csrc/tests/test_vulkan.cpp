// Tests of the Vulkan backend's own machinery: the registry entry, buffers
// through the staging path (as on a discrete GPU), graphs run more than once,
// large element counts, and the refusals (an op shape it does not run, a
// buffer larger than the device allows). The ops themselves are checked by
// the backend-ops test, and whole generations by the pipeline test, both of
// which run on every registered device.
//
// Without a Vulkan device (no driver) these tests say so and pass, unless
// SDGO_TEST_REQUIRE_VULKAN=1 (set by .ci/run, where lavapipe is installed):
// then a missing device fails them.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backends/registry.h"
#include "core/graph.h"
#include "testing.h"
#if defined(SDGO_HAVE_VULKAN)
#include "backends/vulkan/vulkan_backend.h"
#endif

using namespace sdgo;

namespace {

bool require_vulkan() {
    const char * v = std::getenv("SDGO_TEST_REQUIRE_VULKAN");
    return v && std::strcmp(v, "1") == 0;
}

const backends::BackendEntry * vulkan_entry() {
    for (const backends::BackendEntry & b : backends::registered())
        if (b.name == "vulkan") return &b;
    return nullptr;
}

#if defined(SDGO_HAVE_VULKAN)
// A device to test on, or NULL (and a line saying why) when there is none.
Device * shared_device() {
    std::string why;
    const std::vector<Device *> & d = vk::devices(&why);
    if (!d.empty()) return d[0];
    if (require_vulkan())
        ::sdgo::testing::report_failure(__FILE__, __LINE__, "no Vulkan device, and one is required: " + why);
    else
        std::printf("    no Vulkan device (%s): skipped\n", why.c_str());
    return nullptr;
}

std::unique_ptr<Device> staging_device() {
    if (!shared_device()) return nullptr;
    vk::DeviceOptions opt;
    opt.force_staging = true;
    opt.staging_bytes = 4096;  // small, so that copies are chunked
    std::unique_ptr<Device> d;
    Status st = vk::make_device(0, opt, &d);
    if (!st.ok()) ::sdgo::testing::report_failure(__FILE__, __LINE__, st.message());
    return d;
}

// y = x * s + b over n elements on dev; returns y.
std::vector<float> run_scale(Device * dev, const std::vector<float> & x, float s, float b, Status * st) {
    Graph g;
    Tensor * in = g.input(DType::f32, {static_cast<int64_t>(x.size())});
    Tensor * y = g.scale(in, s, b);
    g.set_output(y);
    std::unique_ptr<Backend> be;
    std::vector<float> out(x.size());
    *st = dev->new_backend(BackendOptions(), &be);
    if (st->ok()) *st = be->alloc_graph(g);
    if (st->ok()) *st = be->set_tensor(in, x.data(), 0, x.size() * 4);
    if (st->ok()) *st = be->compute(g);
    if (st->ok()) *st = be->get_tensor(y, out.data(), 0, out.size() * 4);
    return out;
}
#endif

}  // namespace

#if !defined(SDGO_HAVE_VULKAN)

TEST(built_without_vulkan) {
    std::printf("    this build has no Vulkan backend (CMake found no Vulkan headers or glslc)\n");
    CHECK(vulkan_entry() == nullptr);
    CHECK(!require_vulkan());
}

#else

TEST(registry_lists_vulkan_with_devices_or_a_reason) {
    const backends::BackendEntry * e = vulkan_entry();
    CHECK(e != nullptr);
    if (!e) return;
    CHECK(!e->devices.empty() || !e->note.empty());
    for (Device * d : e->devices) {
        CHECK_EQ(d->info().backend, std::string("vulkan"));
        CHECK(!d->info().name.empty());
        CHECK(d->info().max_buffer_bytes > 0);
    }
    CHECK(backends::registry_json().find("\"name\":\"vulkan\"") != std::string::npos);
    if (require_vulkan()) CHECK(!e->devices.empty());
}

TEST(staging_copies_round_trip_in_chunks) {
    std::unique_ptr<Device> dev = staging_device();
    if (!dev) return;
    std::unique_ptr<Buffer> buf;
    Status st = dev->alloc_buffer(20000, &buf);
    CHECK(st.ok());
    if (!st.ok()) return;
    CHECK(buf->base() == nullptr);
    std::vector<uint8_t> src(9001), back(9001, 0);
    for (size_t i = 0; i < src.size(); i++) src[i] = static_cast<uint8_t>(i * 31 + 7);
    CHECK(dev->write(buf.get(), 3, src.data(), src.size()).ok());
    CHECK(dev->read(buf.get(), 3, back.data(), back.size()).ok());
    CHECK(back == src);
    // a part of it, at an odd offset
    std::vector<uint8_t> part(100, 0);
    CHECK(dev->read(buf.get(), 3 + 4500, part.data(), part.size()).ok());
    CHECK(std::memcmp(part.data(), src.data() + 4500, part.size()) == 0);
    // outside the buffer
    Status bad = dev->write(buf.get(), 19990, src.data(), 100);
    CHECK_EQ(bad.code(), SDGO_ERR_INVALID_ARGUMENT);
}

TEST(graph_runs_through_staging_and_again) {
    std::unique_ptr<Device> dev = staging_device();
    if (!dev) return;
    Graph g;
    Tensor * a = g.input(DType::f32, {7, 5});
    Tensor * b = g.input(DType::f32, {7, 1});
    Tensor * y = g.mul(g.add(a, b), a);
    g.set_output(y);
    std::unique_ptr<Backend> be;
    Status st = dev->new_backend(BackendOptions(), &be);
    if (st.ok()) st = be->alloc_graph(g);
    CHECK(st.ok());
    if (!st.ok()) return;
    for (int pass = 0; pass < 2; pass++) {
        std::vector<float> av(35), bv(7), out(35);
        for (int i = 0; i < 35; i++) av[i] = 0.25f * i - 3 + pass;
        for (int i = 0; i < 7; i++) bv[i] = 1.5f * i - pass;
        CHECK(be->set_tensor(a, av.data(), 0, 35 * 4).ok());
        CHECK(be->set_tensor(b, bv.data(), 0, 7 * 4).ok());
        CHECK(be->compute(g).ok());
        CHECK(be->get_tensor(y, out.data(), 0, 35 * 4).ok());
        for (int i = 0; i < 35; i++) CHECK_EQ(out[i], (av[i] + bv[i % 7]) * av[i]);
    }
}

TEST(more_elements_than_one_dispatch_row) {
    Device * dev = shared_device();
    if (!dev) return;
    // 256 * 65535 invocations in one dispatch at most: each walks a grid stride.
    const size_t n = size_t(256) * 65535 + 1001;
    std::vector<float> x(n);
    for (size_t i = 0; i < n; i++) x[i] = static_cast<float>(i % 1000) - 500.0f;
    Status st;
    std::vector<float> y = run_scale(dev, x, 2.0f, 1.0f, &st);
    CHECK(st.ok());
    if (!st.ok()) return;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += y[i] != x[i] * 2.0f + 1.0f;
    CHECK_EQ(bad, size_t(0));
}

// A graph longer than one submission chunk (64 nodes) stops between chunks
// when asked, leaves nothing running, and the backend computes the same
// graph correctly afterwards.
TEST(cancel_stops_between_chunks_and_the_backend_stays_usable) {
    Device * dev = shared_device();
    if (!dev) return;
    Graph g;
    Tensor * x = g.input(DType::f32, {1000});
    Tensor * y = x;
    for (int i = 0; i < 300; i++) y = g.scale(y, 1.0f, 1.0f);  // y = x + 300
    g.set_output(y);
    std::unique_ptr<Backend> be;
    REQUIRE(dev->new_backend(BackendOptions(), &be).ok());
    REQUIRE(be->alloc_graph(g).ok());
    std::vector<float> xv(1000), out(1000);
    for (int i = 0; i < 1000; i++) xv[i] = float(i);
    REQUIRE(be->set_tensor(x, xv.data(), 0, xv.size() * 4).ok());
    static int asked = 0;
    asked = 0;
    be->set_abort_callback([](void *) { return ++asked >= 3; }, nullptr);
    Status st = be->compute(g);
    CHECK_EQ(st.code(), SDGO_ERR_CANCELED);
    CHECK_EQ(asked, 3);  // asked before chunks 1, 2 and 3 of 5
    be->set_abort_callback(nullptr, nullptr);
    REQUIRE(be->compute(g).ok());
    REQUIRE(be->get_tensor(y, out.data(), 0, out.size() * 4).ok());
    for (int i = 0; i < 1000; i++) CHECK_EQ(out[i], float(i) + 300.0f);
}

// A graph's command buffers are recorded the first time it is computed and
// replayed after that (with new inputs each time); another graph replaces
// the recording, and the first one is recorded afresh when it comes back.
TEST(a_graph_is_recorded_once_and_replayed) {
    Device * dev = shared_device();
    if (!dev) return;
    std::unique_ptr<Backend> be;
    REQUIRE(dev->new_backend(BackendOptions(), &be).ok());
    CHECK_EQ(vk::recordings(be.get()), int64_t(0));
    Graph g1, g2;
    Tensor * x1 = g1.input(DType::f32, {500});
    Tensor * y1 = x1;
    for (int i = 0; i < 150; i++) y1 = g1.scale(y1, 1.0f, 0.5f);  // three chunks: y = x + 75
    g1.set_output(y1);
    Tensor * x2 = g2.input(DType::f32, {500});
    Tensor * y2 = g2.scale(x2, 2.0f, 0.0f);
    g2.set_output(y2);
    REQUIRE(be->alloc_graph(g1).ok());
    REQUIRE(be->alloc_graph(g2).ok());
    CHECK(g1.serial() != 0 && g2.serial() != 0 && g1.serial() != g2.serial());
    std::vector<float> xv(500), out(500);
    auto run = [&](Graph & g, Tensor * x, Tensor * y, float shift, float mul, float add) {
        for (int i = 0; i < 500; i++) xv[i] = float(i) * 0.5f + shift;
        REQUIRE(be->set_tensor(x, xv.data(), 0, xv.size() * 4).ok());
        REQUIRE(be->compute(g).ok());
        REQUIRE(be->get_tensor(y, out.data(), 0, out.size() * 4).ok());
        int bad = 0;
        for (int i = 0; i < 500; i++) bad += out[i] != xv[i] * mul + add;
        CHECK_EQ(bad, 0);
    };
    for (int pass = 0; pass < 3; pass++) run(g1, x1, y1, float(pass), 1.0f, 75.0f);
    CHECK_EQ(vk::recordings(be.get()), int64_t(1));
    run(g2, x2, y2, 1.0f, 2.0f, 0.0f);
    run(g2, x2, y2, 2.0f, 2.0f, 0.0f);
    CHECK_EQ(vk::recordings(be.get()), int64_t(2));
    run(g1, x1, y1, 7.0f, 1.0f, 75.0f);
    CHECK_EQ(vk::recordings(be.get()), int64_t(3));
}

TEST(unsupported_op_is_named_before_compute) {
    Device * dev = shared_device();
    if (!dev) return;
    // A head size over the shader's 256, after an op it does run.
    Graph g;
    Tensor * q = g.silu(g.input(DType::f32, {264, 3, 2}));
    Tensor * k = g.input(DType::f32, {264, 5, 2});
    g.set_output(g.attention(q, k, k, 0.1f, false));
    std::unique_ptr<Backend> be;
    Status st = dev->new_backend(BackendOptions(), &be);
    CHECK(st.ok());
    if (!st.ok()) return;
    st = be->alloc_graph(g);
    CHECK_EQ(st.code(), SDGO_ERR_UNSUPPORTED);
    CHECK(st.message().find("attention") != std::string::npos);
    CHECK(st.message().find("vulkan") != std::string::npos);
}

TEST(oversized_buffer_and_bad_variant_are_refused) {
    Device * dev = shared_device();
    if (!dev) return;
    std::unique_ptr<Buffer> buf;
    Status st = dev->alloc_buffer(static_cast<size_t>(dev->info().max_buffer_bytes) + 1, &buf);
    CHECK_EQ(st.code(), SDGO_ERR_OUT_OF_MEMORY);
    CHECK(st.message().find("largest allocation") != std::string::npos);
    CHECK(!buf);
    BackendOptions bo;
    bo.variant = "avx2";
    std::unique_ptr<Backend> be;
    CHECK_EQ(dev->new_backend(bo, &be).code(), SDGO_ERR_INVALID_ARGUMENT);
}

#endif
