// test_types.cpp — the element types: table, float conversions, ggml goldens,
// round-trip error bounds, SIMD decoders == scalar decoders, bad input.
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define SDGO_TEST_X86 1
#endif

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/threadpool.h"
#include "backends/cpu/cpu_features.h"
#include "backends/cpu/type_convert.h"
#include "convert/convert.h"
#include "testing.h"
#include "types/quants.h"
#include "types/types.h"

using namespace sdgo;

namespace {

uint32_t bits_of(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
float from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
// Same bits, or both NaN (NaN payloads of 0*inf differ between x86 and arm64).
bool same_float(float a, float b) { return bits_of(a) == bits_of(b) || (std::isnan(a) && std::isnan(b)); }

DType dt(int32_t v) { return static_cast<DType>(v); }

std::vector<uint8_t> read_file(const std::string & rel) {
    std::vector<uint8_t> out;
    FILE * f = std::fopen(testing::source_path(rel).c_str(), "rb");
    if (!f) return out;
    uint8_t buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.insert(out.end(), buf, buf + n);
    std::fclose(f);
    return out;
}
uint32_t u32_at(const std::vector<uint8_t> & b, size_t off) {
    uint32_t v;
    std::memcpy(&v, b.data() + off, 4);
    return v;
}

}  // namespace

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

TEST(table_matches_ggml_ids_and_sizes) {
    struct Want {
        int32_t id;
        const char * name;
        int64_t bs;
        size_t ts;
        bool q;
    };
    const Want want[] = {
        {0, "f32", 1, 4, false},       {1, "f16", 1, 2, false},        {2, "q4_0", 32, 18, true},
        {3, "q4_1", 32, 20, true},     {6, "q5_0", 32, 22, true},      {7, "q5_1", 32, 24, true},
        {8, "q8_0", 32, 34, true},     {9, "q8_1", 32, 36, true},      {10, "q2_K", 256, 84, true},
        {11, "q3_K", 256, 110, true},  {12, "q4_K", 256, 144, true},   {13, "q5_K", 256, 176, true},
        {14, "q6_K", 256, 210, true},  {15, "q8_K", 256, 292, true},   {16, "iq2_xxs", 256, 66, true},
        {17, "iq2_xs", 256, 74, true}, {18, "iq3_xxs", 256, 98, true}, {19, "iq1_s", 256, 50, true},
        {20, "iq4_nl", 32, 18, true},  {21, "iq3_s", 256, 110, true},  {22, "iq2_s", 256, 82, true},
        {23, "iq4_xs", 256, 136, true}, {24, "i8", 1, 1, false},       {25, "i16", 1, 2, false},
        {26, "i32", 1, 4, false},      {27, "i64", 1, 8, false},       {28, "f64", 1, 8, false},
        {29, "iq1_m", 256, 56, true},  {30, "bf16", 1, 2, false},      {34, "tq1_0", 256, 54, true},
        {35, "tq2_0", 256, 66, true},  {39, "mxfp4", 32, 17, true},    {40, "nvfp4", 64, 36, true},
        {41, "q1_0", 128, 18, true},   {42, "q2_0", 64, 18, true},
    };
    int present = 0;
    for (int32_t v = -3; v < kDTypeIdLimit + 5; ++v) present += type_traits(v) != nullptr;
    CHECK_EQ(present, (int)(sizeof want / sizeof want[0]));
    for (const Want & w : want) {
        const TypeTraits * tr = type_traits(w.id);
        REQUIRE(tr != nullptr);
        CHECK_EQ((int)tr->type, w.id);
        CHECK_EQ(std::string(tr->name), std::string(w.name));
        CHECK_EQ(tr->block_size, w.bs);
        CHECK_EQ(tr->type_size, w.ts);
        CHECK_EQ(tr->is_quantized, w.q);
        CHECK_EQ(std::string(dtype_name(dt(w.id))), std::string(w.name));
        DType back;
        CHECK(dtype_from_name(w.name, &back) && (int)back == w.id);
    }
    for (int32_t removed : {4, 5, 31, 32, 33, 36, 37, 38, 43, 44, -1, 1000}) {
        CHECK(type_traits(removed) == nullptr);
        CHECK_EQ(std::string(dtype_name(dt(removed))), std::string("?"));
    }
    // Which rows convert: exactly the nine implemented types.
    for (int32_t v = 0; v < kDTypeIdLimit; ++v) {
        const TypeTraits * tr = type_traits(v);
        if (!tr) continue;
        const bool impl = v == 0 || v == 1 || v == 2 || v == 3 || v == 6 || v == 7 || v == 8 || v == 9 || v == 30;
        CHECK_EQ(tr->to_f32 != nullptr, impl);
        CHECK_EQ(tr->from_f32_ref != nullptr, impl);
        CHECK_EQ(tr->quantize != nullptr, impl);
        CHECK_EQ(cpu::to_f32_for(dt(v), cpu::CodePath::scalar) != nullptr, impl);
    }
}

TEST(names_are_case_insensitive_and_bad_names_fail) {
    DType t = DType::f32;
    CHECK(dtype_from_name("Q4_0", &t) && t == DType::q4_0);
    CHECK(dtype_from_name("q4_k", &t) && t == DType::q4_K);
    CHECK(dtype_from_name("BF16", &t) && t == DType::bf16);
    CHECK(dtype_from_name("F16", &t) && t == DType::f16);
    t = DType::f64;
    for (const char * bad : {"", "q4", "q4_0 ", " q4_0", "q4_2", "q4_00", "DEPRECATED", "float16", "fp16", "q8"}) {
        CHECK(!dtype_from_name(bad, &t));
    }
    CHECK(!dtype_from_name(nullptr, &t));
    CHECK(t == DType::f64);  // untouched on failure
    CHECK(dtype_from_name("q8_0", nullptr));
}

TEST(row_size_and_tensor_bytes) {
    CHECK_EQ(row_size(DType::f32, 768), (size_t)3072);
    CHECK_EQ(row_size(DType::f16, 3), (size_t)6);
    CHECK_EQ(row_size(DType::bf16, 0), (size_t)0);
    CHECK_EQ(row_size(DType::q4_0, 64), (size_t)36);
    CHECK_EQ(row_size(DType::q4_1, 320), (size_t)200);
    CHECK_EQ(row_size(DType::q5_0, 320), (size_t)220);
    CHECK_EQ(row_size(DType::q5_1, 32), (size_t)24);
    CHECK_EQ(row_size(DType::q8_0, 1280), (size_t)1360);
    CHECK_EQ(row_size(DType::q8_1, 64), (size_t)72);
    CHECK_EQ(row_size(DType::q4_K, 1280), (size_t)720);
    CHECK_EQ(row_size(DType::q4_0, 33), (size_t)0);   // not a multiple of the block
    CHECK_EQ(row_size(DType::q4_K, 320), (size_t)0);  // SD's 320-wide rows can't be k-quants
    CHECK_EQ(row_size(DType::q8_0, -32), (size_t)0);
    CHECK_EQ(row_size(dt(4), 32), (size_t)0);
    CHECK_EQ(row_size(DType::f64, INT64_MAX), (size_t)0);  // overflows

    size_t n = 0;
    CHECK(tensor_bytes(DType::q8_0, 64, 3, &n).ok() && n == 3 * 68);
    CHECK(tensor_bytes(DType::f32, 0, 0, &n).ok() && n == 0);
    CHECK_EQ(tensor_bytes(DType::q8_0, 33, 1, &n).code(), (int32_t)SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(tensor_bytes(DType::q8_0, 32, -1, &n).code(), (int32_t)SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(tensor_bytes(dt(5), 32, 1, &n).code(), (int32_t)SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(tensor_bytes(DType::f32, INT64_MAX / 2, INT64_MAX / 2, &n).code(), (int32_t)SDGO_ERR_INVALID_ARGUMENT);
    Status st = tensor_bytes(DType::q4_0, 48, 1, &n);
    CHECK(st.message().find("q4_0") != std::string::npos && st.message().find("48") != std::string::npos);
}

// ---------------------------------------------------------------------------
// fp16 / bf16
// ---------------------------------------------------------------------------

TEST(fp16_to_fp32_all_65536_values) {
    for (uint32_t h = 0; h < 65536; ++h) {
        const float f = fp16_to_fp32(static_cast<uint16_t>(h));
        const bool neg = h & 0x8000;
        const int e = (h >> 10) & 31;
        const int m = h & 0x3ff;
        if (e == 31 && m != 0) {
            // NaN: quiet, payload kept in the top mantissa bits, sign kept.
            CHECK(std::isnan(f));
            CHECK_EQ(bits_of(f), (neg ? 0x80000000u : 0u) | 0x7fc00000u | ((uint32_t)m << 13));
            continue;
        }
        double want = e == 31 ? INFINITY : e == 0 ? std::ldexp((double)m, -24) : std::ldexp(1024.0 + m, e - 25);
        if (neg) want = -want;
        CHECK_EQ(bits_of(f), bits_of((float)want));
        if (testing::current_failed()) {
            std::printf("h=0x%04x\n", h);
            return;
        }
        // and back: every non-NaN half survives the round trip
        CHECK_EQ((uint32_t)fp32_to_fp16(f), h);
    }
}

TEST(fp32_to_fp16_edge_cases) {
    struct Case {
        float in;
        uint16_t out;
    };
    const Case cases[] = {
        {0.0f, 0x0000},
        {-0.0f, 0x8000},
        {1.0f, 0x3c00},
        {-2.0f, 0xc000},
        {65504.0f, 0x7bff},                      // largest half
        {65519.996f, 0x7bff},                    // just below the rounding point
        {65520.0f, 0x7c00},                      // tie between 65504 (odd) and 2^16: rounds to inf
        {-65520.0f, 0xfc00},
        {1e10f, 0x7c00},
        {INFINITY, 0x7c00},
        {-INFINITY, 0xfc00},
        {from_bits(0x7fc00000), 0x7e00},         // NaN -> canonical quiet NaN
        {from_bits(0xffc00000), 0xfe00},
        {from_bits(0x7f800001), 0x7e00},         // signalling NaN
        {from_bits(0x7fffffff), 0x7e00},
        {std::ldexp(1.0f, -14), 0x0400},         // smallest normal
        {std::ldexp(1.0f, -24), 0x0001},         // smallest subnormal
        {-std::ldexp(1.0f, -24), 0x8001},
        {std::ldexp(1.0f, -25), 0x0000},         // tie between 0 and 2^-24: even (0)
        {std::nextafter(std::ldexp(1.0f, -25), 1.0f), 0x0001},
        {std::ldexp(3.0f, -25), 0x0002},         // tie between 1 and 2 units: even (2)
        {std::ldexp(5.0f, -25), 0x0002},         // tie between 2 and 3 units: even (2)
        {std::ldexp(1023.5f, -24), 0x0400},      // subnormal rounding up into the normals
        {std::ldexp(1.0f, -26), 0x0000},
        {1e-30f, 0x0000},
        {from_bits(0x00000001), 0x0000},         // f32 subnormal
        {1.0f + std::ldexp(1.0f, -11), 0x3c00},  // tie, even stays
        {1.0f + std::ldexp(3.0f, -11), 0x3c02},  // tie, odd rounds up
        {1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20), 0x3c01},
        {2047.0f / 1024.0f + std::ldexp(1.0f, -11), 0x4000},  // carry into the exponent
        {0.1f, 0x2e66},
        {-3.14159265f, 0xc248},
    };
    for (const Case & c : cases) {
        const uint16_t got = fp32_to_fp16(c.in);
        if (got != c.out) std::printf("  in=%a (0x%08x) got 0x%04x want 0x%04x\n", c.in, bits_of(c.in), got, c.out);
        CHECK_EQ(got, c.out);
    }
}

#ifdef SDGO_TEST_X86
namespace {
__attribute__((target("f16c"))) uint16_t hw_fp32_to_fp16(float f) {
    return static_cast<uint16_t>(_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT), 0));
}
}  // namespace

TEST(fp32_to_fp16_matches_hardware_f16c) {
    if (!cpu::cpu_info().f16c) {
        std::printf("  (no F16C on this CPU: hardware comparison skipped)\n");
        return;
    }
    // A stride through all 2^32 patterns, plus every pattern near the half
    // range's edges (subnormal/normal boundary, overflow point).
    uint64_t checked = 0;
    auto one = [&](uint32_t u) {
        const float f = from_bits(u);
        if (std::isnan(f)) return;  // F16C keeps NaN payloads; ggml (and we) canonicalise
        const uint16_t a = fp32_to_fp16(f), b = hw_fp32_to_fp16(f);
        if (a != b) {
            std::printf("  0x%08x: ours 0x%04x hw 0x%04x\n", u, a, b);
            CHECK(a == b);
        }
        ++checked;
    };
    for (uint64_t u = 0; u < (1ull << 32) && !testing::current_failed(); u += 977) one((uint32_t)u);
    for (uint32_t base : {0x33000000u, 0x38800000u, 0x477fe000u, 0x387fc000u}) {
        for (uint32_t d = 0; d < 0x40000 && !testing::current_failed(); ++d) {
            one(base - 0x20000 + d);
            one((base - 0x20000 + d) | 0x80000000u);
        }
    }
    CHECK(checked > 4000000);
}
#endif  // SDGO_TEST_X86

TEST(bf16_conversions) {
    CHECK_EQ(fp32_to_bf16(1.0f), (uint16_t)0x3f80);
    CHECK_EQ(fp32_to_bf16(-2.0f), (uint16_t)0xc000);
    CHECK_EQ(fp32_to_bf16(from_bits(0x3f808000)), (uint16_t)0x3f80);  // tie, even stays
    CHECK_EQ(fp32_to_bf16(from_bits(0x3f818000)), (uint16_t)0x3f82);  // tie, odd rounds up
    CHECK_EQ(fp32_to_bf16(from_bits(0x3f808001)), (uint16_t)0x3f81);
    CHECK_EQ(fp32_to_bf16(from_bits(0x3f807fff)), (uint16_t)0x3f80);
    CHECK_EQ(fp32_to_bf16(from_bits(0xbf818000)), (uint16_t)0xbf82);
    CHECK_EQ(fp32_to_bf16(from_bits(0x7f7fffff)), (uint16_t)0x7f80);  // FLT_MAX rounds to inf
    CHECK_EQ(fp32_to_bf16(INFINITY), (uint16_t)0x7f80);
    CHECK_EQ(fp32_to_bf16(-INFINITY), (uint16_t)0xff80);
    CHECK_EQ(fp32_to_bf16(from_bits(0x7f800001)), (uint16_t)0x7fc0);  // sNaN -> quiet, no rounding
    CHECK_EQ(fp32_to_bf16(from_bits(0x7fc0ffff)), (uint16_t)0x7fc0);  // would round into the sign otherwise
    CHECK_EQ(fp32_to_bf16(from_bits(0xff80ffff)), (uint16_t)0xffc0);
    CHECK_EQ(fp32_to_bf16(from_bits(0x7f8a0000)), (uint16_t)0x7fca);
    CHECK_EQ(fp32_to_bf16(from_bits(0x00008000)), (uint16_t)0x0000);  // subnormal tie, even
    CHECK_EQ(fp32_to_bf16(from_bits(0x00018000)), (uint16_t)0x0002);
    CHECK_EQ(fp32_to_bf16(-0.0f), (uint16_t)0x8000);
    for (uint32_t h = 0; h < 65536; ++h) {
        const float f = bf16_to_fp32((uint16_t)h);
        CHECK_EQ(bits_of(f), h << 16);
        if (!std::isnan(f)) CHECK_EQ((uint32_t)fp32_to_bf16(f), h);
        if (testing::current_failed()) return;
    }
}

// ---------------------------------------------------------------------------
// Goldens from ggml (testdata/quant, made by testdata/gen/gen_quant_golden.py)
// ---------------------------------------------------------------------------

namespace {

struct Inputs {
    uint32_t nrows = 0, npr = 0;
    std::vector<float> x, imatrix;
};

bool load_inputs(const char * file, Inputs * in) {
    const std::vector<uint8_t> b = read_file(std::string("testdata/quant/") + file);
    if (b.size() < 16 || std::memcmp(b.data(), "SDGI", 4) != 0 || u32_at(b, 4) != 1) return false;
    in->nrows = u32_at(b, 8);
    in->npr = u32_at(b, 12);
    const size_t n = (size_t)in->nrows * in->npr;
    if (b.size() != 16 + 4 * (n + in->npr)) return false;
    in->x.resize(n);
    in->imatrix.resize(in->npr);
    std::memcpy(in->x.data(), b.data() + 16, 4 * n);
    std::memcpy(in->imatrix.data(), b.data() + 16 + 4 * n, 4 * in->npr);
    return true;
}

// Checks one golden case against its input set: our bytes identical to ggml's,
// and (where stored) our decoded floats identical to ggml's decoder output.
void check_golden(const char * file, DType want_type, int want_mode, const char * inputs = "inputs.bin") {
    Inputs in;
    REQUIRE(load_inputs(inputs, &in));
    const std::vector<uint8_t> b = read_file(std::string("testdata/quant/") + file);
    REQUIRE(b.size() >= 32);
    REQUIRE(std::memcmp(b.data(), "SDGQ", 4) == 0);
    REQUIRE(u32_at(b, 4) == 1);
    const DType t = dt((int32_t)u32_at(b, 8));
    const int mode = (int)u32_at(b, 12);
    const uint32_t nrows = u32_at(b, 16), npr = u32_at(b, 20), nbytes = u32_at(b, 24), has_deq = u32_at(b, 28);
    CHECK(t == want_type);
    CHECK_EQ(mode, want_mode);
    REQUIRE(nrows == in.nrows && npr == in.npr);
    const size_t n = (size_t)nrows * npr;
    REQUIRE(nbytes == row_size(t, npr) * nrows);
    REQUIRE(b.size() == 32 + nbytes + (has_deq ? 4 * n : 0));
    const uint8_t * gold = b.data() + 32;

    const TypeTraits * tr = type_traits(t);
    REQUIRE(tr && tr->quantize && tr->to_f32 && tr->from_f32_ref);
    std::vector<float> ones(npr, 1.0f);
    const float * imat = mode == 0 ? nullptr : mode == 1 ? ones.data() : in.imatrix.data();
    std::vector<uint8_t> ours(nbytes + 64, 0xAA);
    const size_t wrote = tr->quantize(in.x.data(), ours.data(), nrows, npr, imat);
    CHECK_EQ(wrote, (size_t)nbytes);
    CHECK(ours[nbytes] == 0xAA);  // wrote nothing past the end
    size_t first_diff = nbytes, ndiff = 0;
    for (size_t i = 0; i < nbytes; ++i) {
        if (ours[i] != gold[i]) {
            if (first_diff == nbytes) first_diff = i;
            ++ndiff;
        }
    }
    if (ndiff) {
        const size_t bs = tr->type_size;
        std::printf("  %s: %zu bytes differ; first at byte %zu (block %zu, row %zu)\n", file, ndiff, first_diff,
                    first_diff / bs, first_diff / bs / (npr / tr->block_size));
    }
    CHECK_EQ(ndiff, (size_t)0);

    // The checked entry point gives the same bytes.
    std::vector<uint8_t> checked(nbytes);
    size_t w2 = 0;
    CHECK(quantize_rows(t, in.x.data(), checked.data(), checked.size(), nrows, npr, imat, &w2).ok());
    CHECK_EQ(w2, (size_t)nbytes);
    CHECK(std::memcmp(checked.data(), gold, nbytes) == 0);

    if (mode == 0) {  // the reference encoder alone, in one call over all rows
        std::vector<uint8_t> ref(nbytes);
        tr->from_f32_ref(in.x.data(), ref.data(), (int64_t)n);
        CHECK(std::memcmp(ref.data(), gold, nbytes) == 0);
    }
    if (has_deq) {
        const float * want = reinterpret_cast<const float *>(b.data() + 32 + nbytes);
        std::vector<float> got(n);
        size_t bad = 0;
        tr->to_f32(gold, got.data(), (int64_t)n);  // the table's scalar reference
        for (size_t i = 0; i < n; ++i) bad += !same_float(got[i], want[i]);
        cpu::host_to_f32(t)(gold, got.data(), (int64_t)n);  // the CPU's best (SIMD where available)
        for (size_t i = 0; i < n; ++i) bad += !same_float(got[i], want[i]);
        CHECK_EQ(bad, (size_t)0);
    }
}

}  // namespace

TEST(golden_f16_bf16) {
    check_golden("f16_ref.bin", DType::f16, 0);
    check_golden("bf16_ref.bin", DType::bf16, 0);
}
TEST(golden_q4_0_ref) { check_golden("q4_0_ref.bin", DType::q4_0, 0); }
TEST(golden_q4_1_ref) { check_golden("q4_1_ref.bin", DType::q4_1, 0); }
TEST(golden_q5_0_ref) { check_golden("q5_0_ref.bin", DType::q5_0, 0); }
TEST(golden_q5_1_ref) { check_golden("q5_1_ref.bin", DType::q5_1, 0); }
TEST(golden_q8_0_ref) { check_golden("q8_0_ref.bin", DType::q8_0, 0); }
TEST(golden_q8_1_ref) { check_golden("q8_1_ref.bin", DType::q8_1, 0); }
TEST(golden_imatrix_ones_as_sd_cpp) {
    check_golden("q4_0_imat1.bin", DType::q4_0, 1);
    check_golden("q4_1_imat1.bin", DType::q4_1, 1);
    check_golden("q5_0_imat1.bin", DType::q5_0, 1);
    check_golden("q5_1_imat1.bin", DType::q5_1, 1);
    check_golden("q8_0_imat1.bin", DType::q8_0, 1);
}
TEST(golden_imatrix_weight_like_rows) {
    check_golden("q4_0_imat1_w.bin", DType::q4_0, 1, "inputs_imat.bin");
    check_golden("q4_1_imat1_w.bin", DType::q4_1, 1, "inputs_imat.bin");
    check_golden("q5_0_imat1_w.bin", DType::q5_0, 1, "inputs_imat.bin");
    check_golden("q5_1_imat1_w.bin", DType::q5_1, 1, "inputs_imat.bin");
    check_golden("q4_0_imatw_w.bin", DType::q4_0, 2, "inputs_imat.bin");
    check_golden("q4_1_imatw_w.bin", DType::q4_1, 2, "inputs_imat.bin");
    check_golden("q5_0_imatw_w.bin", DType::q5_0, 2, "inputs_imat.bin");
    check_golden("q5_1_imatw_w.bin", DType::q5_1, 2, "inputs_imat.bin");
}
TEST(golden_imatrix_weighted) {
    check_golden("q4_0_imatw.bin", DType::q4_0, 2);
    check_golden("q4_1_imatw.bin", DType::q4_1, 2);
    check_golden("q5_0_imatw.bin", DType::q5_0, 2);
    check_golden("q5_1_imatw.bin", DType::q5_1, 2);
    check_golden("q8_0_imatw.bin", DType::q8_0, 2);
}

// ---------------------------------------------------------------------------
// Round trips with stated error bounds
// ---------------------------------------------------------------------------

namespace {

std::vector<float> test_data(uint32_t seed, size_t n, float scale) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, scale);
    std::vector<float> x(n);
    for (float & v : x) v = nd(rng);
    for (size_t i = 0; i < n; i += 97) x[i] = 0.0f;
    return x;
}

// Max |x - decode(encode(x))| allowed for block b, from the block's statistics.
// Derivations (d = unrounded scale, f16 rounding adds at most 2^-11 relative to d and m):
//   q4_0: |err| <= |d| at the clamped positive end (q = 15 stands for 7), + 8|d| 2^-11  -> |d| (1 + 2^-8)
//   q5_0: same with 16 levels                                                        -> |d| (1 + 2^-7)
//   q8_0: |err| <= d/2 + 127 d 2^-11                                                  -> 0.5625 d
//   q4_1/q5_1: d/2 + nmax d 2^-11 + |min| 2^-11
double bound(DType t, const float * x) {
    float amax = 0, mn = FLT_MAX, mx = -FLT_MAX;
    for (int j = 0; j < 32; ++j) {
        amax = std::max(amax, std::fabs(x[j]));
        mn = std::min(mn, x[j]);
        mx = std::max(mx, x[j]);
    }
    const double slack = 1e-12;
    switch (t) {
        case DType::q4_0: return amax / 8.0 * (1 + 1.0 / 256) + slack;
        case DType::q5_0: return amax / 16.0 * (1 + 1.0 / 128) + slack;
        case DType::q8_0:
        case DType::q8_1: return amax / 127.0 * 0.5625 + slack;
        case DType::q4_1: return (mx - mn) / 15.0 * (0.5 + 15.0 / 2048) + std::fabs(mn) / 2048 + slack;
        case DType::q5_1: return (mx - mn) / 31.0 * (0.5 + 31.0 / 2048) + std::fabs(mn) / 2048 + slack;
        default: return 0;
    }
}

}  // namespace

TEST(block_types_round_trip_within_bounds) {
    const DType types[] = {DType::q4_0, DType::q4_1, DType::q5_0, DType::q5_1, DType::q8_0, DType::q8_1};
    const int64_t npr = 320, nrows = 24;
    for (float scale : {1.0f, 0.02f, 300.0f}) {
        const std::vector<float> x = test_data(7, (size_t)(npr * nrows), scale);
        for (DType t : types) {
            const TypeTraits * tr = type_traits(t);
            std::vector<uint8_t> q(row_size(t, npr) * nrows);
            std::vector<float> y(x.size());
            tr->quantize(x.data(), q.data(), nrows, npr, nullptr);
            tr->to_f32(q.data(), y.data(), (int64_t)x.size());
            double worst = 0, sq_ref = 0;
            for (size_t b = 0; b < x.size() / 32; ++b) {
                const double lim = bound(t, &x[b * 32]);
                for (int j = 0; j < 32; ++j) {
                    const double e = std::fabs((double)x[b * 32 + j] - y[b * 32 + j]);
                    worst = std::max(worst, e / (lim > 0 ? lim : 1));
                    sq_ref += e * e;
                    if (e > lim) {
                        std::printf("  %s scale %g block %zu elem %d: err %g > bound %g\n", tr->name, scale, b, j, e,
                                    lim);
                        CHECK(e <= lim);
                        return;
                    }
                }
            }
            // The importance-weighted path (all-ones weights, what sd.cpp runs) is a
            // search around the reference scale: its RMS error is no worse than
            // the reference's by more than 2%, and usually better.
            if (t != DType::q8_0 && t != DType::q8_1) {
                std::vector<float> ones(npr, 1.0f);
                tr->quantize(x.data(), q.data(), nrows, npr, ones.data());
                tr->to_f32(q.data(), y.data(), (int64_t)x.size());
                double sq_impl = 0;
                for (size_t i = 0; i < x.size(); ++i) sq_impl += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
                if (!(sq_impl <= sq_ref * 1.02 * 1.02))
                    std::printf("  %s scale %g: imatrix rms %g vs ref %g\n", tr->name, scale, std::sqrt(sq_impl),
                                std::sqrt(sq_ref));
                CHECK(sq_impl <= sq_ref * 1.02 * 1.02);
            }
            (void)worst;
        }
    }
}

TEST(float_types_round_trip_within_bounds) {
    const std::vector<float> x = test_data(11, 4096, 3.0f);
    std::vector<uint8_t> q(4096 * 4);
    std::vector<float> y(4096);
    // f32: exact
    type_traits(DType::f32)->quantize(x.data(), q.data(), 4, 1024, nullptr);
    type_traits(DType::f32)->to_f32(q.data(), y.data(), 4096);
    CHECK(std::memcmp(x.data(), y.data(), 4096 * 4) == 0);
    // f16: relative error <= 2^-11 in the normal range
    CHECK_EQ(type_traits(DType::f16)->quantize(x.data(), q.data(), 4, 1024, nullptr), (size_t)8192);
    type_traits(DType::f16)->to_f32(q.data(), y.data(), 4096);
    for (int i = 0; i < 4096; ++i) {
        if (std::fabs(x[i]) >= 6.2e-5f) CHECK(std::fabs(x[i] - y[i]) <= std::fabs(x[i]) * (1.0 / 2048));
        else CHECK(std::fabs(x[i] - y[i]) <= std::ldexp(1.0, -25));
    }
    // bf16: relative error <= 2^-8
    type_traits(DType::bf16)->quantize(x.data(), q.data(), 4, 1024, nullptr);
    type_traits(DType::bf16)->to_f32(q.data(), y.data(), 4096);
    for (int i = 0; i < 4096; ++i) CHECK(std::fabs(x[i] - y[i]) <= std::fabs(x[i]) * (1.0 / 256));
}

TEST(exactly_representable_blocks_round_trip_exactly) {
    // q * 2^k with the block's extreme at -8 (q4_0), -16 (q5_0), 127 (q8_0): d is a power of
    // two, representable in f16, and every element is exactly a quant.
    std::mt19937 rng(3);
    for (int k = -6; k <= 6; ++k) {
        const float s = std::ldexp(1.0f, k);
        float x4[32], x5[32], x8[32];
        for (int j = 0; j < 32; ++j) {
            x4[j] = (float)((int)(rng() % 16) - 8) * s;
            x5[j] = (float)((int)(rng() % 32) - 16) * s;
            x8[j] = (float)((int)(rng() % 255) - 127) * s;
        }
        x4[5] = -8 * s;
        x5[9] = -16 * s;
        x8[0] = 127 * s;
        for (bool imat : {false, true}) {
            const float ones[32] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
            struct {
                DType t;
                const float * x;
            } cs[] = {{DType::q4_0, x4}, {DType::q5_0, x5}, {DType::q8_0, x8}};
            for (auto & c : cs) {
                uint8_t q[64];
                float y[32];
                type_traits(c.t)->quantize(c.x, q, 1, 32, imat ? ones : nullptr);
                type_traits(c.t)->to_f32(q, y, 32);
                for (int j = 0; j < 32; ++j) CHECK_EQ(y[j], c.x[j]);
            }
        }
    }
}

TEST(imatrix_path_is_deterministic_and_row_local) {
    const int64_t npr = 256;
    const std::vector<float> x = test_data(5, 4 * npr, 1.0f);
    std::vector<float> w(npr);
    for (int i = 0; i < npr; ++i) w[i] = 0.1f + (float)(i % 7);
    for (DType t : {DType::q4_0, DType::q4_1, DType::q5_0, DType::q5_1}) {
        const TypeTraits * tr = type_traits(t);
        const size_t rs = row_size(t, npr);
        std::vector<uint8_t> a(4 * rs), b(4 * rs), one(rs);
        tr->quantize(x.data(), a.data(), 4, npr, w.data());
        tr->quantize(x.data(), b.data(), 4, npr, w.data());
        CHECK(a == b);
        // each row depends only on itself (sigma2 is per row)
        tr->quantize(x.data() + 2 * npr, one.data(), 1, npr, w.data());
        CHECK(std::memcmp(one.data(), a.data() + 2 * rs, rs) == 0);
        // and weights matter: a different imatrix gives different bytes somewhere
        std::vector<float> w2(npr, 1.0f);
        tr->quantize(x.data(), b.data(), 4, npr, w2.data());
        CHECK(a != b);
    }
}

TEST(q8_1_sum_field) {
    const std::vector<float> x = test_data(9, 64, 2.0f);
    uint8_t q[72];
    type_traits(DType::q8_1)->from_f32_ref(x.data(), q, 64);
    for (int b = 0; b < 2; ++b) {
        const uint8_t * blk = q + 36 * b;
        uint16_t dh, sh;
        std::memcpy(&dh, blk, 2);
        std::memcpy(&sh, blk + 2, 2);
        int sum = 0;
        for (int j = 0; j < 32; ++j) sum += (int8_t)blk[4 + j];
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * b + j]));
        const float d = amax / 127;
        CHECK_EQ(dh, fp32_to_fp16(d));
        CHECK_EQ(sh, fp32_to_fp16(sum * d));
    }
}

// ---------------------------------------------------------------------------
// SIMD decoders == scalar decoders, bit for bit
// ---------------------------------------------------------------------------

TEST(simd_decoders_match_scalar) {
    std::mt19937 rng(1234);
    int paths_checked = 0;
    for (cpu::CodePath p : cpu::runnable_code_paths()) {
        for (DType t : {DType::f16, DType::bf16, DType::q4_0, DType::q8_0, DType::q4_1, DType::q5_0, DType::q5_1,
                        DType::q8_1, DType::f32}) {
            const TypeTraits * tr = type_traits(t);
            const ToF32Fn fast = cpu::to_f32_for(t, p), ref = type_traits(t)->to_f32;
            REQUIRE(fast && ref);
            if (p == cpu::CodePath::scalar) CHECK(fast == ref);
            if (cpu::has_simd_to_f32(t, p)) ++paths_checked;
            // Every 16-bit pattern for the float types, and random bytes (so every
            // f16 scale pattern: NaN, inf, subnormal) for the block types, with a
            // misaligned source and lengths that exercise the tails.
            const int64_t nblocks = tr->block_size == 1 ? 65536 + 37 : 4096;
            const int64_t n = nblocks * tr->block_size;
            std::vector<uint8_t> raw(row_size(t, n) + 1);
            for (auto & c : raw) c = (uint8_t)rng();
            if (t == DType::f16 || t == DType::bf16) {
                for (int64_t i = 0; i < 65536; ++i) {
                    const uint16_t h = (uint16_t)i;
                    std::memcpy(raw.data() + 1 + 2 * i, &h, 2);
                }
            }
            std::vector<float> a(n + 1), b(n + 1);
            for (int64_t len : {n, tr->block_size, 3 * tr->block_size, 15 * tr->block_size, 17 * tr->block_size,
                                31 * tr->block_size, 33 * tr->block_size}) {
                std::fill(a.begin(), a.end(), -1.0f);
                std::fill(b.begin(), b.end(), -1.0f);
                fast(raw.data() + 1, a.data(), len);
                ref(raw.data() + 1, b.data(), len);
                size_t bad = 0;
                for (int64_t i = 0; i <= len && i <= n; ++i) bad += bits_of(a[i]) != bits_of(b[i]);
                if (bad) std::printf("  %s on %s, n=%lld: %zu differ\n", tr->name, cpu::code_path_name(p), (long long)len, bad);
                CHECK_EQ(bad, (size_t)0);
            }
        }
    }
    if (cpu::code_path_runnable(cpu::CodePath::avx2)) CHECK(paths_checked >= 7);
    if (cpu::code_path_runnable(cpu::CodePath::avx512)) CHECK(paths_checked >= 14);
}

TEST(simd_encoders_match_scalar) {
    // A stride through all 2^32 float patterns (NaNs, infinities, subnormals,
    // rounding ties included), through every runnable path, with tails.
    std::vector<float> x;
    for (uint64_t u = 0; u < (1ull << 32); u += 4099) x.push_back(from_bits((uint32_t)u));
    for (uint32_t u : {0x7f800001u, 0xff800001u, 0x7fc0ffffu, 0x477ff000u, 0x33000000u, 0x3f808000u, 0x3f818000u,
                       0x7f7fffffu, 0x00008000u, 0x80000000u})
        x.push_back(from_bits(u));
    const int64_t n = (int64_t)x.size();
    int simd = 0;
    for (cpu::CodePath p : cpu::runnable_code_paths()) {
        for (DType t : {DType::f16, DType::bf16, DType::f32, DType::q8_0}) {
            const TypeTraits * tr = type_traits(t);
            const FromF32Fn fast = cpu::from_f32_for(t, p);
            REQUIRE(fast != nullptr);
            if (!cpu::has_simd_from_f32(t, p)) {
                CHECK(fast == tr->from_f32_ref);
                continue;
            }
            ++simd;
            for (int64_t len : {n, (int64_t)1, (int64_t)7, (int64_t)8, (int64_t)9, (int64_t)15, (int64_t)17, (int64_t)33}) {
                for (int64_t off : {(int64_t)0, (int64_t)5}) {
                    std::vector<uint8_t> a(2 * (size_t)n + 3, 0x5A), b(2 * (size_t)n + 3, 0x5A);
                    fast(x.data() + off, a.data() + 1, len - off > 0 ? len - off : len);
                    tr->from_f32_ref(x.data() + off, b.data() + 1, len - off > 0 ? len - off : len);
                    if (a != b) {
                        size_t i = 0;
                        while (a[i] == b[i]) ++i;
                        std::printf("  %s on %s, len %lld: first difference at byte %zu\n", tr->name,
                                    cpu::code_path_name(p), (long long)len, i);
                    }
                    CHECK(a == b);
                }
            }
        }
    }
    if (cpu::code_path_runnable(cpu::CodePath::avx2)) CHECK(simd >= 2);
    // And the table's quantize (dispatched) gives the reference bytes too.
    std::vector<uint8_t> a(2 * (size_t)n), b(2 * (size_t)n);
    for (DType t : {DType::f16, DType::bf16}) {
        const int64_t rows = n / 64;
        type_traits(t)->quantize(x.data(), a.data(), rows, 64, nullptr);
        type_traits(t)->from_f32_ref(x.data(), b.data(), rows * 64);
        CHECK(std::memcmp(a.data(), b.data(), (size_t)rows * 128) == 0);
    }
}

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

TEST(quantize_rows_rejects_bad_input) {
    std::vector<float> x(64, 0.5f), w(64, 1.0f);
    std::vector<uint8_t> out(256);
    size_t wrote = 123;
    CHECK_EQ(quantize_rows(dt(4), x.data(), out.data(), out.size(), 1, 64, nullptr, &wrote).code(),
             (int32_t)SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(wrote, (size_t)0);
    CHECK_EQ(quantize_rows(DType::q4_K, x.data(), out.data(), out.size(), 1, 256, nullptr, &wrote).code(),
             (int32_t)SDGO_ERR_UNSUPPORTED);
    CHECK_EQ(quantize_rows(DType::q4_0, x.data(), out.data(), out.size(), 1, 48, nullptr, &wrote).code(),
             (int32_t)SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(quantize_rows(DType::q4_0, x.data(), out.data(), out.size(), -1, 32, nullptr, &wrote).code(),
             (int32_t)SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(quantize_rows(DType::q8_0, x.data(), out.data(), 67, 2, 32, nullptr, &wrote).code(),
             (int32_t)SDGO_ERR_BUFFER_TOO_SMALL);
    CHECK_EQ(quantize_rows(DType::q8_0, nullptr, out.data(), out.size(), 2, 32, nullptr, &wrote).code(),
             (int32_t)SDGO_ERR_INVALID_ARGUMENT);
    x[40] = NAN;
    Status st = quantize_rows(DType::q5_1, x.data(), out.data(), out.size(), 2, 32, nullptr, &wrote);
    CHECK_EQ(st.code(), (int32_t)SDGO_ERR_INVALID_ARGUMENT);
    CHECK(st.message().find("40") != std::string::npos);
    // float targets take non-finite values as they are
    CHECK(quantize_rows(DType::f16, x.data(), out.data(), out.size(), 2, 32, nullptr, &wrote).ok());
    CHECK_EQ(wrote, (size_t)128);
    x[40] = 0.25f;
    w[3] = -1.0f;
    CHECK_EQ(quantize_rows(DType::q4_1, x.data(), out.data(), out.size(), 2, 32, w.data(), &wrote).code(),
             (int32_t)SDGO_ERR_INVALID_ARGUMENT);
    w[3] = INFINITY;
    CHECK_EQ(quantize_rows(DType::q4_1, x.data(), out.data(), out.size(), 2, 32, w.data(), &wrote).code(),
             (int32_t)SDGO_ERR_INVALID_ARGUMENT);
    w[3] = 0.0f;  // zero importance is fine
    CHECK(quantize_rows(DType::q4_1, x.data(), out.data(), out.size(), 2, 32, w.data(), &wrote).ok());
    CHECK_EQ(wrote, (size_t)40);
    CHECK(quantize_rows(DType::q4_1, x.data(), out.data(), 0, 0, 32, nullptr, &wrote).ok());
    CHECK_EQ(wrote, (size_t)0);
}

TEST(quantize_rows_with_a_pool_gives_the_same_bytes) {
    ThreadPool pool(2);
    const int64_t npr = 320, nrows = 411;  // several chunks, the last one short
    const std::vector<float> x = test_data(21, (size_t)(npr * nrows), 0.05f);
    std::vector<float> ones(npr, 1.0f);
    for (DType t : {DType::q4_0, DType::q4_1, DType::q5_1, DType::q8_0, DType::f16}) {
        for (const float * imat : {(const float *)nullptr, (const float *)ones.data()}) {
            if (t == DType::q4_1 && !imat) continue;
            const size_t bytes = row_size(t, npr) * nrows;
            std::vector<uint8_t> a(bytes), b(bytes);
            size_t wa = 0, wb = 0;
            CHECK(quantize_rows(t, x.data(), a.data(), bytes, nrows, npr, imat, &wa).ok());
            CHECK(convert::quantize_rows_parallel(t, x.data(), b.data(), bytes, nrows, npr, imat, &wb, &pool).ok());
            CHECK_EQ(wa, bytes);
            CHECK_EQ(wb, bytes);
            CHECK(a == b);
        }
    }
}

TEST(raw_quantizers_survive_hostile_values) {
    // Not meaningful blocks, but no crash, no hang, no undefined arithmetic
    // (the CI sanitizer build checks the last part).
    std::vector<float> x(64 * 4);
    const float specials[] = {NAN, INFINITY, -INFINITY, FLT_MAX, -FLT_MAX, 1e-45f, -1e-45f, 0.0f, 1e30f, 3e38f};
    for (size_t i = 0; i < x.size(); ++i) x[i] = specials[(i * 7 + i / 13) % 10];
    for (size_t i = 128; i < 160; ++i) x[i] = 1e-45f * (float)(i % 3);  // subnormal-only block: 1/d overflows
    std::vector<float> w(64, 1.0f);
    for (DType t : {DType::q4_0, DType::q4_1, DType::q5_0, DType::q5_1, DType::q8_0, DType::q8_1, DType::f16,
                    DType::bf16}) {
        const TypeTraits * tr = type_traits(t);
        std::vector<uint8_t> q(row_size(t, 64) * 4);
        std::vector<float> y(x.size());
        CHECK_EQ(tr->quantize(x.data(), q.data(), 4, 64, nullptr), q.size());
        tr->to_f32(q.data(), y.data(), (int64_t)y.size());
        CHECK_EQ(tr->quantize(x.data(), q.data(), 4, 64, w.data()), q.size());
        tr->to_f32(q.data(), y.data(), (int64_t)y.size());
    }
}

TEST(search_helpers_basic_properties) {
    // make_qx_quants on an all-zero block: L = 0 and scale 0.
    float z[32] = {0};
    int8_t L[32];
    CHECK_EQ(quant::make_qx_quants(32, 8, z, L, 1, nullptr), 0.0f);
    for (int8_t l : L) CHECK_EQ((int)l, 0);
    // nearest_int is round-half-to-even.
    CHECK_EQ(quant::nearest_int(2.5f), 2);
    CHECK_EQ(quant::nearest_int(3.5f), 4);
    CHECK_EQ(quant::nearest_int(-2.5f), -2);
    CHECK_EQ(quant::nearest_int(-0.4999f), 0);
    CHECK_EQ(quant::nearest_int(4194303.0f), 4194303);
    CHECK_EQ(quant::nearest_int(-4194303.0f), -4194303);
    // make_qkx3_quants on a constant positive block: min is clamped to 0, the
    // scale maps the constant to nmax exactly.
    float c[32];
    for (float & v : c) v = 1.5f;
    uint8_t Lu[32], aux[32];
    float the_min = 7;
    const float s = quant::make_qkx3_quants(32, 15, c, nullptr, Lu, &the_min, aux, -0.9f, 0.05f, 36, false);
    CHECK_EQ(the_min, 0.0f);
    for (int j = 0; j < 32; ++j) CHECK_NEAR(s * Lu[j], 1.5, 1e-6);
}
