// Tests of the foundation: status values, CPU detection, the thread pool and
// the context's C ABI.
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/threadpool.h"
#include "backends/cpu/cpu_features.h"
#include "sdgo.h"
#include "testing.h"

using namespace sdgo;

TEST(status_wraps_context) {
    Status st = error(SDGO_ERR_FORMAT, "bad magic %x", 0x1234);
    st.wrap("model.gguf");
    CHECK_EQ(st.code(), SDGO_ERR_FORMAT);
    CHECK_EQ(st.message(), std::string("model.gguf: bad magic 1234"));
    Status ok;
    ok.wrap("ignored");
    CHECK(ok.ok());
    CHECK_EQ(ok.message(), std::string());
}

TEST(cpu_detection_is_consistent) {
    const auto & c = cpu::cpu_info();
    CHECK(c.logical_cores >= 1);
    CHECK(c.physical_cores >= 1);
    CHECK(c.physical_cores <= c.logical_cores);
    if (c.avx512f) CHECK(c.avx2);
    if (c.avx2) CHECK(c.avx);
    CHECK(cpu::code_path_runnable(cpu::CodePath::scalar));
    auto paths = cpu::runnable_code_paths();
    CHECK(!paths.empty());
    CHECK(paths.back() == cpu::CodePath::scalar);
    CHECK(paths.front() == cpu::best_code_path());
#if defined(__x86_64__)
    CHECK_EQ(c.arch, std::string("x86_64"));
    CHECK(c.sse42);
    // The CPU's AVX2 support decides whether a compiled-in AVX2 path is runnable.
    if (cpu::code_path_compiled(cpu::CodePath::avx2))
        CHECK_EQ(cpu::code_path_runnable(cpu::CodePath::avx2), c.avx2 && c.fma && c.f16c);
    CHECK(!cpu::code_path_compiled(cpu::CodePath::neon));
#endif
    cpu::CodePath p;
    CHECK(cpu::parse_code_path("avx2", &p) && p == cpu::CodePath::avx2);
    CHECK(!cpu::parse_code_path("sse9", &p));
}

TEST(thread_pool_runs_every_thread_once) {
    for (int n : {1, 2, 3, 5}) {
        ThreadPool pool(n);
        for (int rep = 0; rep < 50; rep++) {
            std::vector<int> hits(n, 0);
            pool.run([&](int ith, int nth) {
                CHECK_EQ(nth, n);
                hits[ith]++;
            });
            for (int i = 0; i < n; i++) CHECK_EQ(hits[i], 1);
        }
    }
}

TEST(thread_pool_parallel_for_covers_range) {
    ThreadPool pool(3);
    for (int64_t n : {0, 1, 7, 1000, 12345}) {
        std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
        for (auto & s : seen) s.store(0);
        pool.parallel_for(n, 16, [&](int64_t i, int ith) {
            CHECK(ith >= 0 && ith < 3);
            seen[static_cast<size_t>(i)].fetch_add(1);
        });
        for (int64_t i = 0; i < n; i++) CHECK_EQ(seen[static_cast<size_t>(i)].load(), 1);
    }
}

TEST(thread_pool_rethrows_worker_exception) {
    ThreadPool pool(2);
    bool caught = false;
    try {
        pool.run([&](int ith, int) {
            if (ith == 1) throw std::runtime_error("boom");
        });
    } catch (const std::runtime_error & e) {
        caught = std::string(e.what()) == "boom";
    }
    CHECK(caught);
    // The pool is still usable afterwards.
    std::atomic<int> count{0};
    pool.run([&](int, int) { count++; });
    CHECK_EQ(count.load(), 2);
}

TEST(context_abi_reports_errors_on_handle) {
    char err[128] = "untouched";
    sdgo_context * ctx = nullptr;
    CHECK_EQ(sdgo_context_new(5000, &ctx, err, sizeof err), (int32_t)SDGO_ERR_INVALID_ARGUMENT);
    CHECK(ctx == nullptr);
    CHECK(std::strstr(err, "5000") != nullptr);

    REQUIRE(sdgo_context_new(2, &ctx, err, sizeof err) == SDGO_OK);
    CHECK_EQ(std::string(sdgo_context_error(ctx)), std::string());
    CHECK_EQ(sdgo_context_set_code_path(ctx, "bogus"), (int32_t)SDGO_ERR_INVALID_ARGUMENT);
    CHECK(std::strstr(sdgo_context_error(ctx), "bogus") != nullptr);
    CHECK_EQ(sdgo_context_set_code_path(ctx, "scalar"), (int32_t)SDGO_OK);
    CHECK_EQ(std::string(sdgo_context_error(ctx)), std::string());

    char small[8];
    size_t need = 0;
    CHECK_EQ(sdgo_context_system_info(ctx, small, sizeof small, &need), (int32_t)SDGO_ERR_BUFFER_TOO_SMALL);
    CHECK(need > sizeof small);
    std::vector<char> buf(need);
    CHECK_EQ(sdgo_context_system_info(ctx, buf.data(), buf.size(), &need), (int32_t)SDGO_OK);
    std::string info(buf.data());
    CHECK(info.find("\"code_path\":\"scalar\"") != std::string::npos);
    CHECK(info.find("\"threads\":2") != std::string::npos);
    sdgo_context_free(ctx);
}
