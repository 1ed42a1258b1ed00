// Tests of the random number generators: Philox ("cuda") against A1111's
// published vector and torch's CUDA generator, and the torch CPU generator
// ("cpu") against torch.randn (testdata/sampling, made by
// testdata/gen/gen_sampling_ref.py).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "sampling/rng.h"
#include "ref_text.h"
#include "testing.h"

using namespace sdgo;
using namespace sdgo::sampling;

namespace {

using testing::RefMap;

const RefMap & cpu_ref() {
    static const RefMap m = testing::load_ref_text("testdata/sampling/ref.txt");
    return m;
}

// Distance in units in the last place between two finite floats.
int64_t ulp_diff(float a, float b) {
    int32_t ia, ib;
    std::memcpy(&ia, &a, 4);
    std::memcpy(&ib, &b, 4);
    if (ia < 0) ia = static_cast<int32_t>(0x80000000u - static_cast<uint32_t>(ia));
    if (ib < 0) ib = static_cast<int32_t>(0x80000000u - static_cast<uint32_t>(ib));
    return std::llabs(static_cast<int64_t>(ia) - ib);
}

// Parses "cpu_randn_s<seed>_n<n>".
bool parse_key(const std::string & key, const char * prefix, uint64_t * seed, size_t * n) {
    const size_t pl = std::strlen(prefix);
    if (key.compare(0, pl, prefix) != 0) return false;
    unsigned long long s = 0;
    size_t nn = 0;
    if (std::sscanf(key.c_str() + pl, "%llu_n%zu", &s, &nn) != 2) return false;
    *seed = s;
    *n = nn;
    return true;
}

}  // namespace

TEST(philox_matches_a1111_published_vector) {
    // A1111 modules/rng_philox.py documents Generator(0).randn((3, 4)) as the
    // values below (8 decimals). Its own numpy code returns values that differ
    // from the printout by up to 3.1e-7 (and torch 2.11 on CUDA by up to
    // 3.8e-7), so the printout is checked to 4e-7; bit-exactness with the
    // code is checked against numpy in philox_matches_a1111_numpy.
    const double want[12] = {-0.92466259, -0.42534415, -2.6438457, 0.14518388,  -0.12086647, -0.57972564,
                             -0.62285122, -0.32838709, -1.07454231, -0.36314407, -1.67105067, 2.26550497};
    PhiloxRng rng(0);
    float got[12];
    rng.randn(12, got);
    for (int i = 0; i < 12; ++i) CHECK_NEAR(got[i], want[i], 4e-7);
    CHECK_EQ(rng.offset(), uint64_t(1));
}

TEST(philox_matches_a1111_numpy) {
    // A1111's float64 numpy Box-Muller on the same Philox words (see
    // gen_sampling_ref.py): (seed, offset, n).
    struct Case {
        uint64_t seed;
        uint64_t offset;
        size_t n;
    };
    const Case cases[] = {{0, 0, 12}, {42, 0, 256}, {42, 1, 256}, {123456789012ull, 3, 100}};
    int64_t worst = 0;
    int checked = 0;
    for (const Case & c : cases) {
        char key[96];
        std::snprintf(key, sizeof key, "a1111_philox_s%llu_o%llu_n%zu", static_cast<unsigned long long>(c.seed),
                      static_cast<unsigned long long>(c.offset), c.n);
        auto it = cpu_ref().find(key);
        REQUIRE(it != cpu_ref().end());
        PhiloxRng rng(c.seed);
        std::vector<float> got(c.n);
        for (uint64_t k = 0; k <= c.offset; ++k) rng.randn(c.n, got.data());  // advance to the offset
        for (size_t i = 0; i < c.n; ++i) {
            worst = std::max(worst, ulp_diff(got[i], it->second[i]));
            ++checked;
        }
    }
    std::printf("philox vs A1111 numpy: %d values, worst %lld ulp\n", checked, static_cast<long long>(worst));
    CHECK_EQ(checked, 624);
    CHECK(worst == 0);
}

TEST(philox_block_matches_reference_words) {
    // Philox 4x32-10 words for seed 0, counters (0, 0, i, 0), i < 12.
    const RefMap m = testing::load_ref_text("testdata/sampling/cuda_ref.txt");
    for (int w = 0; w < 4; ++w) {
        char key[64];
        std::snprintf(key, sizeof key, "philox_words_s0_n12_w%d", w);
        auto it = m.find(key);
        REQUIRE(it != m.end());
        REQUIRE(it->second.size() == 12);
    }
    // The words were stored as decimal integers; re-read them exactly.
    std::ifstream f(testing::source_path("testdata/sampling/cuda_ref.txt"));
    std::string line;
    int rows = 0;
    while (std::getline(f, line)) {
        if (line.compare(0, 20, "philox_words_s0_n12_") != 0) continue;
        std::istringstream is(line);
        std::string key;
        size_t n = 0;
        is >> key >> n;
        const int w = key.back() - '0';
        for (size_t i = 0; i < n; ++i) {
            unsigned long long v = 0;
            is >> v;
            uint32_t c[4] = {0u, 0u, static_cast<uint32_t>(i), 0u};
            PhiloxRng::philox4x32_10(c, 0u, 0u);
            CHECK_EQ(static_cast<unsigned long long>(c[w]), v);
        }
        ++rows;
    }
    CHECK_EQ(rows, 4);
}

TEST(philox_offset_advances_once_per_call) {
    PhiloxRng a(5);
    std::vector<float> first(300), second(7), again(7);
    a.randn(300, first.data());
    a.randn(7, second.data());
    CHECK_EQ(a.offset(), uint64_t(2));
    // Element i of a call does not depend on the call's size.
    PhiloxRng b(5);
    std::vector<float> small(7);
    b.randn(7, small.data());
    for (int i = 0; i < 7; ++i) CHECK_EQ(small[i], first[i]);
    b.randn(7, again.data());
    for (int i = 0; i < 7; ++i) CHECK_EQ(again[i], second[i]);
    bool differs = false;
    for (int i = 0; i < 7; ++i) differs |= second[i] != first[i];
    CHECK(differs);
    // Re-seeding restarts the stream.
    a.seed(5);
    a.randn(7, again.data());
    for (int i = 0; i < 7; ++i) CHECK_EQ(again[i], first[i]);
}

TEST(philox_statistics_look_normal) {
    PhiloxRng rng(123);
    std::vector<float> v(200000);
    rng.randn(v.size(), v.data());
    double mean = 0, var = 0;
    for (float x : v) mean += x;
    mean /= v.size();
    for (float x : v) var += (x - mean) * (x - mean);
    var /= v.size();
    CHECK_NEAR(mean, 0.0, 0.01);
    CHECK_NEAR(var, 1.0, 0.01);
}

TEST(philox_matches_torch_cuda_generator) {
    // Recorded on a CUDA machine: torch.Generator("cuda").manual_seed(s),
    // torch.randn(n, generator=g, device="cuda").
    const RefMap m = testing::load_ref_text("testdata/sampling/cuda_ref.txt");
    REQUIRE(!m.empty());
    int checked = 0, exact = 0;
    int64_t worst = 0;
    double worst_abs = 0;
    for (const auto & kv : m) {
        uint64_t seed = 0;
        size_t n = 0;
        if (!parse_key(kv.first, "cuda_randn_s", &seed, &n)) continue;
        REQUIRE(kv.second.size() == n);
        PhiloxRng rng(seed);
        std::vector<float> got(n);
        rng.randn(n, got.data());
        for (size_t i = 0; i < n; ++i) {
            const int64_t d = ulp_diff(got[i], kv.second[i]);
            worst = std::max(worst, d);
            worst_abs = std::max(worst_abs, std::fabs(static_cast<double>(got[i]) - kv.second[i]));
            exact += d == 0;
            ++checked;
        }
    }
    // Consecutive calls on one generator.
    PhiloxRng seq(7);
    const size_t sizes[4] = {256, 256, 100, 16};
    for (int k = 0; k < 4; ++k) {
        char key[64];
        std::snprintf(key, sizeof key, "cuda_seq_s7_call%d_n%zu", k, sizes[k]);
        auto it = m.find(key);
        REQUIRE(it != m.end());
        std::vector<float> got(sizes[k]);
        seq.randn(sizes[k], got.data());
        for (size_t i = 0; i < sizes[k]; ++i) {
            const int64_t d = ulp_diff(got[i], it->second[i]);
            worst = std::max(worst, d);
            worst_abs = std::max(worst_abs, std::fabs(static_cast<double>(got[i]) - it->second[i]));
            exact += d == 0;
            ++checked;
        }
    }
    std::printf("philox vs torch.cuda: %d values, %d bit-exact, worst %lld ulp, worst abs %.3g\n", checked, exact,
                static_cast<long long>(worst), worst_abs);
    CHECK_EQ(checked, 1973);
    // torch's CUDA kernel evaluates Box-Muller in float32 with CUDA's own
    // logf/sinf, so it is not bit-reproducible on a CPU (neither the float64
    // A1111 emulation nor a float32 one matches it exactly); the values agree
    // to a few 1e-6 absolute.
    CHECK(worst_abs <= 3e-6);
    (void)worst;
}

TEST(mt19937_matches_std_mt19937) {
    for (uint32_t seed : {0u, 1u, 42u, 5489u, 4294967295u}) {
        Mt19937 ours(seed);
        std::mt19937 ref(seed);
        for (int i = 0; i < 2000; ++i) {
            const uint32_t a = ours.next();
            const uint32_t b = static_cast<uint32_t>(ref());
            if (a != b) {
                CHECK_EQ(a, b);
                break;
            }
        }
    }
    // torch keeps the low 32 bits of a 64-bit seed.
    Mt19937 wide(uint64_t(4294967297ull));
    Mt19937 one(1);
    CHECK_EQ(wide.next(), one.next());
}

TEST(torch_cpu_randn_matches_torch) {
    int checked = 0, exact = 0, records = 0;
    int64_t worst = 0;
    for (const auto & kv : cpu_ref()) {
        uint64_t seed = 0;
        size_t n = 0;
        if (!parse_key(kv.first, "cpu_randn_s", &seed, &n)) continue;
        REQUIRE(kv.second.size() == n);
        ++records;
        TorchCpuRng rng(seed);
        std::vector<float> got(n);
        rng.randn(n, got.data());
        for (size_t i = 0; i < n; ++i) {
            const int64_t d = ulp_diff(got[i], kv.second[i]);
            if (d > 1) std::printf("  %s[%zu]: %.9g vs %.9g\n", kv.first.c_str(), i, got[i], kv.second[i]);
            worst = std::max(worst, d);
            exact += d == 0;
            ++checked;
        }
    }
    std::printf("torch cpu randn: %d records, %d values, %d bit-exact, worst %lld ulp\n", records, checked, exact,
                static_cast<long long>(worst));
    CHECK_EQ(records, 30);
    CHECK(worst <= 1);
}

TEST(torch_cpu_randn_stream_and_small_size_cache) {
    // One generator, calls of 7, 3, 20, 5, 1, 33 elements: the < 16 path
    // caches the second Box-Muller value across calls.
    TorchCpuRng rng(3);
    const size_t sizes[6] = {7, 3, 20, 5, 1, 33};
    int64_t worst = 0;
    for (int k = 0; k < 6; ++k) {
        char key[64];
        std::snprintf(key, sizeof key, "cpu_seq_s3_call%d_n%zu", k, sizes[k]);
        auto it = cpu_ref().find(key);
        REQUIRE(it != cpu_ref().end());
        std::vector<float> got(sizes[k]);
        rng.randn(sizes[k], got.data());
        for (size_t i = 0; i < sizes[k]; ++i) worst = std::max(worst, ulp_diff(got[i], it->second[i]));
    }
    CHECK(worst <= 1);
}

TEST(torch_cpu_randn_latent_size) {
    // torch.randn(4 * 64 * 64) with manual_seed(42): the size of a 512x512
    // SD latent.
    std::ifstream f(testing::source_path("testdata/sampling/randn_cpu_seed42_16384.bin"), std::ios::binary);
    REQUIRE(f.good());
    std::vector<float> want(16384);
    f.read(reinterpret_cast<char *>(want.data()), want.size() * sizeof(float));
    REQUIRE(f.gcount() == static_cast<std::streamsize>(want.size() * sizeof(float)));
    TorchCpuRng rng(42);
    std::vector<float> got(want.size());
    rng.randn(got.size(), got.data());
    int exact = 0;
    int64_t worst = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        const int64_t d = ulp_diff(got[i], want[i]);
        worst = std::max(worst, d);
        exact += d == 0;
    }
    std::printf("torch cpu randn(16384): %d of %zu bit-exact, worst %lld ulp\n", exact, got.size(),
                static_cast<long long>(worst));
    CHECK(worst <= 1);
}

TEST(torch_cpu_randn_generic_kernel) {
    // torch with ATEN_CPU_CAPABILITY=default (the kernel arm64 builds run).
    int64_t worst = 0;
    int records = 0, exact = 0, checked = 0;
    for (const auto & kv : cpu_ref()) {
        uint64_t seed = 0;
        size_t n = 0;
        if (!parse_key(kv.first, "cpu_generic_randn_s", &seed, &n)) continue;
        ++records;
        TorchCpuRng rng(seed, TorchKernel::Generic);
        std::vector<float> got(n);
        rng.randn(n, got.data());
        for (size_t i = 0; i < n; ++i) {
            const int64_t d = ulp_diff(got[i], kv.second[i]);
            worst = std::max(worst, d);
            exact += d == 0;
            ++checked;
        }
    }
    std::printf("torch cpu randn, generic kernel: %d values, %d bit-exact, worst %lld ulp\n", checked, exact,
                static_cast<long long>(worst));
    CHECK_EQ(records, 3);
    // Same C library here as the one torch used: bit-exact is expected; allow
    // an ulp for a different libm.
    CHECK(worst <= 1);
}

TEST(rng_names_and_factory) {
    RngType t = RngType::Cpu;
    CHECK(parse_rng_type("cuda", &t).ok());
    CHECK(t == RngType::Cuda);
    CHECK(parse_rng_type("cpu", &t).ok());
    CHECK(t == RngType::Cpu);
    Status st = parse_rng_type("mersenne", &t);
    CHECK_EQ(st.code(), SDGO_ERR_INVALID_ARGUMENT);
    CHECK(st.message().find("mersenne") != std::string::npos);
    CHECK_EQ(std::string(rng_type_name(RngType::Cuda)), std::string("cuda"));
    CHECK_EQ(std::string(rng_type_name(RngType::Cpu)), std::string("cpu"));

    auto a = make_rng(RngType::Cuda, 0);
    auto b = make_rng(RngType::Cpu, 0);
    CHECK(a->type() == RngType::Cuda);
    CHECK(b->type() == RngType::Cpu);
    float x[12];
    a->randn(12, x);
    CHECK_NEAR(x[0], -0.92466259, 4e-7);

    CHECK_EQ(batch_seed(100, 0), uint64_t(100));
    CHECK_EQ(batch_seed(100, 3), uint64_t(103));
    // Batch image b uses its own generator seeded with seed + b.
    auto g1 = make_rng(RngType::Cpu, batch_seed(41, 1));
    auto g2 = make_rng(RngType::Cpu, 42);
    float p[20], q[20];
    g1->randn(20, p);
    g2->randn(20, q);
    for (int i = 0; i < 20; ++i) CHECK_EQ(p[i], q[i]);
}
