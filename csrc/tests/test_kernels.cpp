// Tests of the CPU kernels (csrc/cpu/kernels.h) against plain double-precision
// references, on every code path this CPU can run.
//
// Tolerances: GEMM and convolution outputs must be within 1e-5 of
// sum_k |a_k * b_k| (+ |bias| + |C_old|) of the double result (f32
// accumulation error is about K * 6e-8 of that sum at worst, and the blocked
// sums are much better); the reference for a quantized B is the double GEMM
// with B dequantized by the type table's to_f32. Attention outputs must be
// within 2e-5 * max|v| of the double softmax-weighted sum.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/conv.h"
#include "backends/cpu/kernels.h"
#include "testing.h"

using namespace sdgo;
using cpu::CodePath;

namespace {

std::vector<float> random_vec(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (auto & x : v) x = d(rng);
    return v;
}

// N rows of K weights in `type`, and the same weights dequantized to f32.
struct Weights {
    std::vector<uint8_t> bytes;
    std::vector<float> deq;
    size_t ldb = 0;
};

Weights make_weights(DType t, int64_t N, int64_t K, uint32_t seed, size_t extra_bytes = 0) {
    const TypeTraits * tr = type_traits(t);
    Weights w;
    std::vector<float> src = random_vec((size_t)(N * K), seed);
    const size_t rs = row_size(t, K);
    w.ldb = rs + extra_bytes;
    w.bytes.assign(w.ldb * (size_t)N + 64, 0);
    w.deq.resize((size_t)(N * K));
    // Encode through an aligned row: rows in `bytes` may sit at odd offsets.
    std::vector<uint64_t> row(rs / 8 + 1);
    for (int64_t n = 0; n < N; n++) {
        tr->from_f32_ref(src.data() + n * K, row.data(), K);
        tr->to_f32(row.data(), w.deq.data() + n * K, K);
        std::memcpy(w.bytes.data() + n * w.ldb, row.data(), rs);
    }
    return w;
}

std::string path_name(CodePath p) { return cpu::code_path_name(p); }

void check_gemm_case(ThreadPool & pool, CodePath path, DType t, int64_t M, int64_t N, int64_t K, bool use_bias,
                     bool accumulate, uint32_t seed, size_t extra_row_bytes = 0) {
    const int64_t lda = K + 3, ldc = N + 5;
    std::vector<float> A = random_vec((size_t)(M * lda), seed);
    Weights w = make_weights(t, N, K, seed + 1, extra_row_bytes ? extra_row_bytes : t == DType::f32 ? 8 : 0);
    std::vector<float> bias = random_vec((size_t)N, seed + 2);
    std::vector<float> C = random_vec((size_t)(M * ldc), seed + 3);
    const std::vector<float> C0 = C;
    Status st = cpu::gemm(pool, path, M, N, K, A.data(), lda, w.bytes.data(), t, w.ldb, C.data(), ldc,
                          use_bias ? bias.data() : nullptr, accumulate);
    if (!st.ok()) {
        testing::report_failure(__FILE__, __LINE__, "gemm failed: " + st.message());
        return;
    }
    int bad = 0;
    for (int64_t m = 0; m < M; m++) {
        for (int64_t n = 0; n < N; n++) {
            double s = 0, mag = 0;
            for (int64_t k = 0; k < K; k++) {
                const double p = (double)A[m * lda + k] * w.deq[n * K + k];
                s += p;
                mag += std::fabs(p);
            }
            if (use_bias) { s += bias[n]; mag += std::fabs(bias[n]); }
            if (accumulate) { s += C0[m * ldc + n]; mag += std::fabs(C0[m * ldc + n]); }
            const double got = C[m * ldc + n];
            if (!(std::fabs(got - s) <= 1e-5 * mag + 1e-30) && bad++ < 3) {
                testing::report_failure(__FILE__, __LINE__,
                    strprintf("gemm %s %s M=%lld N=%lld K=%lld bias=%d acc=%d at (%lld,%lld): %.9g vs %.9g",
                              path_name(path).c_str(), dtype_name(t), (long long)M, (long long)N, (long long)K,
                              use_bias, accumulate, (long long)m, (long long)n, got, s));
            }
        }
        // Padding between rows is untouched.
        for (int64_t n = N; n < ldc; n++)
            if (C[m * ldc + n] != C0[m * ldc + n] && bad++ < 3)
                testing::report_failure(__FILE__, __LINE__, "gemm wrote outside the output");
    }
}

}  // namespace

TEST(gemm_float_types_all_paths) {
    ThreadPool pool(2);
    const int64_t sizes[] = {1, 7, 33, 100};
    uint32_t seed = 1;
    for (CodePath path : cpu::runnable_code_paths())
        for (DType t : {DType::f32, DType::f16, DType::bf16})
            for (int64_t M : sizes)
                for (int64_t N : sizes)
                    for (int64_t K : sizes) {
                        const bool bias = (seed % 2) == 0, acc = (seed % 3) == 0;
                        check_gemm_case(pool, path, t, M, N, K, bias, acc, seed++);
                    }
}

TEST(gemm_quantized_types_all_paths) {
    ThreadPool pool(2);
    uint32_t seed = 100;
    for (CodePath path : cpu::runnable_code_paths())
        for (DType t : {DType::q8_0, DType::q4_0, DType::q4_1, DType::q5_0, DType::q5_1})
            for (int64_t M : {1, 7, 33})
                for (int64_t N : {1, 7, 100})
                    for (int64_t K : {32, 96, 320}) {
                        const bool bias = (seed % 2) == 0, acc = (seed % 3) == 0;
                        check_gemm_case(pool, path, t, M, N, K, bias, acc, seed++);
                    }
}

TEST(gemm_larger_blocked_shapes) {
    // Several K blocks, column blocks and row blocks of the drivers.
    ThreadPool pool(2);
    for (CodePath path : cpu::runnable_code_paths()) {
        check_gemm_case(pool, path, DType::f32, 130, 200, 600, true, false, 7);
        check_gemm_case(pool, path, DType::f16, 600, 97, 544, false, true, 8);
        check_gemm_case(pool, path, DType::q8_0, 67, 250, 800, true, true, 9);
        // Weight rows at strides that are not a multiple of the element size.
        check_gemm_case(pool, path, DType::f32, 20, 37, 70, true, false, 10, 2);
        check_gemm_case(pool, path, DType::f16, 20, 37, 70, false, true, 11, 1);
    }
}

TEST(gemm_bit_identical_across_thread_counts) {
    ThreadPool p1(1), p2(2), p3(3);
    for (CodePath path : cpu::runnable_code_paths())
        for (DType t : {DType::f32, DType::f16, DType::q4_0}) {
            const int64_t M = 150, N = 300, K = 640;
            std::vector<float> A = random_vec((size_t)(M * K), 5);
            Weights w = make_weights(t, N, K, 6);
            std::vector<float> bias = random_vec((size_t)N, 7);
            std::vector<float> C[3];
            ThreadPool * pools[3] = {&p1, &p2, &p3};
            for (int i = 0; i < 3; i++) {
                C[i].assign((size_t)(M * N), 0.0f);
                REQUIRE(cpu::gemm(*pools[i], path, M, N, K, A.data(), K, w.bytes.data(), t, w.ldb, C[i].data(), N,
                                  bias.data(), false)
                            .ok());
            }
            CHECK(std::memcmp(C[0].data(), C[1].data(), C[0].size() * 4) == 0);
            CHECK(std::memcmp(C[0].data(), C[2].data(), C[0].size() * 4) == 0);
        }
}

TEST(gemm_rejects_bad_input) {
    ThreadPool pool(1);
    std::vector<float> A(64 * 64, 1.0f), B(64 * 64, 1.0f), C(64 * 64);
    const CodePath p = CodePath::scalar;
    CHECK_EQ(cpu::gemm(pool, p, -1, 4, 4, A.data(), 4, B.data(), DType::f32, 16, C.data(), 4, nullptr, false).code(),
             SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(cpu::gemm(pool, p, 4, 4, 4, nullptr, 4, B.data(), DType::f32, 16, C.data(), 4, nullptr, false).code(),
             SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(cpu::gemm(pool, p, 4, 4, 4, A.data(), 4, nullptr, DType::f32, 16, C.data(), 4, nullptr, false).code(),
             SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(cpu::gemm(pool, p, 4, 4, 4, A.data(), 4, B.data(), DType::f32, 16, nullptr, 4, nullptr, false).code(),
             SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(cpu::gemm(pool, p, 4, 4, 4, A.data(), 3, B.data(), DType::f32, 16, C.data(), 4, nullptr, false).code(),
             SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(cpu::gemm(pool, p, 4, 4, 4, A.data(), 4, B.data(), DType::f32, 8, C.data(), 4, nullptr, false).code(),
             SDGO_ERR_INVALID_ARGUMENT);
    // K not a multiple of the q4_0 block size.
    CHECK_EQ(cpu::gemm(pool, p, 4, 4, 48, A.data(), 48, B.data(), DType::q4_0, 64, C.data(), 4, nullptr, false).code(),
             SDGO_ERR_INVALID_ARGUMENT);
    // Types without a conversion, and unknown ids.
    CHECK_EQ(cpu::gemm(pool, p, 4, 4, 4, A.data(), 4, B.data(), DType::i32, 16, C.data(), 4, nullptr, false).code(),
             SDGO_ERR_UNSUPPORTED);
    CHECK_EQ(cpu::gemm(pool, p, 4, 4, 4, A.data(), 4, B.data(), (DType)99, 16, C.data(), 4, nullptr, false).code(),
             SDGO_ERR_UNSUPPORTED);
    // A code path this CPU cannot run.
    for (CodePath q : {CodePath::scalar, CodePath::avx2, CodePath::avx512, CodePath::neon})
        if (!cpu::code_path_runnable(q))
            CHECK_EQ(cpu::gemm(pool, q, 4, 4, 4, A.data(), 4, B.data(), DType::f32, 16, C.data(), 4, nullptr, false)
                         .code(),
                     SDGO_ERR_UNSUPPORTED);
    // Empty shapes are fine; K = 0 gives bias (+ C).
    float bias[2] = {1.5f, -2.0f};
    float c2[2] = {10.0f, 20.0f};
    REQUIRE(cpu::gemm(pool, p, 1, 2, 0, nullptr, 0, nullptr, DType::f32, 0, c2, 2, bias, true).ok());
    CHECK_EQ(c2[0], 11.5f);
    CHECK_EQ(c2[1], 18.0f);
    CHECK(cpu::gemm(pool, p, 0, 4, 4, nullptr, 4, nullptr, DType::f32, 16, nullptr, 4, nullptr, false).ok());
}

// ---- convolution -------------------------------------------------------------

namespace {

const char * strategy_name(cpu::ConvStrategy s) {
    switch (s) {
        case cpu::ConvStrategy::automatic: return "auto";
        case cpu::ConvStrategy::weight_rows: return "weight_rows";
        case cpu::ConvStrategy::pixel_rows: return "pixel_rows";
    }
    return "?";
}

const cpu::ConvStrategy kStrategies[] = {cpu::ConvStrategy::automatic, cpu::ConvStrategy::weight_rows,
                                         cpu::ConvStrategy::pixel_rows};

void check_conv_case(ThreadPool & pool, CodePath path, DType wt, int64_t N, int64_t Cin, int64_t H, int64_t W,
                     int64_t Cout, int64_t KH, int64_t KW, int stride, int pad, bool use_bias, uint32_t seed,
                     cpu::ConvStrategy strategy = cpu::ConvStrategy::automatic) {
    const int64_t K = Cin * KH * KW;
    std::vector<float> src = random_vec((size_t)(N * Cin * H * W), seed);
    Weights w = make_weights(wt, Cout, K, seed + 1);
    std::vector<float> bias = random_vec((size_t)Cout, seed + 2);
    const int64_t OH = (H + 2 * pad - KH) / stride + 1, OW = (W + 2 * pad - KW) / stride + 1;
    std::vector<float> dst((size_t)(N * Cout * OH * OW) + 16, 12345.0f);
    Status st = strategy == cpu::ConvStrategy::automatic
                    ? cpu::conv2d(pool, path, N, Cin, H, W, src.data(), Cout, KH, KW, w.bytes.data(), wt,
                                  use_bias ? bias.data() : nullptr, stride, stride, pad, pad, dst.data())
                    : cpu::conv2d_strategy(strategy, pool, path, N, Cin, H, W, src.data(), Cout, KH, KW,
                                           w.bytes.data(), wt, use_bias ? bias.data() : nullptr, stride, stride, pad,
                                           pad, dst.data());
    if (!st.ok()) {
        testing::report_failure(__FILE__, __LINE__, "conv2d failed: " + st.message());
        return;
    }
    int bad = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t co = 0; co < Cout; co++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    double s = use_bias ? bias[co] : 0.0, mag = use_bias ? std::fabs(bias[co]) : 0.0;
                    for (int64_t ci = 0; ci < Cin; ci++)
                        for (int64_t kh = 0; kh < KH; kh++)
                            for (int64_t kw = 0; kw < KW; kw++) {
                                const int64_t ih = oh * stride - pad + kh, iw = ow * stride - pad + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                const double p = (double)src[((n * Cin + ci) * H + ih) * W + iw] *
                                                 w.deq[((co * Cin + ci) * KH + kh) * KW + kw];
                                s += p;
                                mag += std::fabs(p);
                            }
                    const double got = dst[((n * Cout + co) * OH + oh) * OW + ow];
                    if (!(std::fabs(got - s) <= 1e-5 * mag + 1e-30) && bad++ < 3)
                        testing::report_failure(__FILE__, __LINE__,
                            strprintf("conv %s %s %s N=%lld Cin=%lld %lldx%lld Cout=%lld k=%lldx%lld s=%d p=%d at "
                                      "(%lld,%lld,%lld,%lld): %.9g vs %.9g",
                                      path_name(path).c_str(), strategy_name(strategy), dtype_name(wt),
                                      (long long)N, (long long)Cin, (long long)H,
                                      (long long)W, (long long)Cout, (long long)KH, (long long)KW, stride, pad,
                                      (long long)n, (long long)co, (long long)oh, (long long)ow, got, s));
                }
    for (size_t i = (size_t)(N * Cout * OH * OW); i < dst.size(); i++)
        if (dst[i] != 12345.0f && bad++ < 3) testing::report_failure(__FILE__, __LINE__, "conv wrote past the output");
}

}  // namespace

TEST(conv2d_all_paths) {
    ThreadPool pool(2);
    uint32_t seed = 300;
    for (CodePath path : cpu::runnable_code_paths())
        for (cpu::ConvStrategy strategy : kStrategies)
            for (DType wt : {DType::f32, DType::f16})
                for (int k : {1, 3})
                    for (int stride : {1, 2})
                        for (int pad : {0, 1}) {
                            check_conv_case(pool, path, wt, 2, 3, 9, 11, 5, k, k, stride, pad, seed % 2 == 0, seed,
                                            strategy);
                            seed++;
                            check_conv_case(pool, path, wt, 1, 16, 13, 7, 50, k, k, stride, pad, seed % 2 == 0, seed,
                                            strategy);
                            seed++;
                        }
}

TEST(conv2d_larger_and_odd_kernels) {
    ThreadPool pool(2);
    for (CodePath path : cpu::runnable_code_paths())
        for (cpu::ConvStrategy st : kStrategies) {
            // Several K blocks (Cin*9 = 576 > 256) and pixel blocks; a 1-pixel-wide image; a 4x2 kernel.
            check_conv_case(pool, path, DType::f16, 1, 64, 20, 23, 40, 3, 3, 1, 1, true, 11, st);
            check_conv_case(pool, path, DType::f32, 1, 4, 17, 1, 3, 3, 3, 1, 1, true, 12, st);
            check_conv_case(pool, path, DType::f32, 2, 5, 8, 9, 6, 4, 2, 2, 1, false, 13, st);
            // Block-quantized weights where Cin*KH*KW is a multiple of 32 (1x1 convolutions).
            check_conv_case(pool, path, DType::q8_0, 2, 64, 6, 5, 20, 1, 1, 1, 0, true, 14, st);
            check_conv_case(pool, path, DType::q4_0, 1, 32, 7, 7, 9, 1, 1, 1, 0, false, 15, st);
        }
}

TEST(conv2d_bit_identical_across_thread_counts) {
    ThreadPool p1(1), p2(2), p3(3);
    ThreadPool * pools[3] = {&p1, &p2, &p3};
    const int64_t Cin = 40, H = 19, W = 21, Cout = 30;
    std::vector<float> src = random_vec((size_t)(2 * Cin * H * W), 1);
    Weights w = make_weights(DType::f16, Cout, Cin * 9, 2);
    std::vector<float> bias = random_vec((size_t)Cout, 3);
    for (CodePath path : cpu::runnable_code_paths())
        for (cpu::ConvStrategy strategy : kStrategies) {
            std::vector<float> out[3];
            for (int i = 0; i < 3; i++) {
                out[i].assign((size_t)(2 * Cout * H * W), 0.0f);
                REQUIRE(cpu::conv2d_strategy(strategy, *pools[i], path, 2, Cin, H, W, src.data(), Cout, 3, 3,
                                             w.bytes.data(), DType::f16, bias.data(), 1, 1, 1, 1, out[i].data())
                            .ok());
            }
            CHECK(std::memcmp(out[0].data(), out[1].data(), out[0].size() * 4) == 0);
            CHECK(std::memcmp(out[0].data(), out[2].data(), out[0].size() * 4) == 0);
        }
}

TEST(conv2d_rejects_bad_input) {
    ThreadPool pool(1);
    std::vector<float> src(100, 1.0f), w(100, 1.0f), dst(100);
    const CodePath p = CodePath::scalar;
    auto conv = [&](int64_t N, int64_t Cin, int64_t H, int64_t W, const float * s, int64_t Cout, int64_t KH,
                    const void * wp, DType wt, int stride, int pad, float * d) {
        return cpu::conv2d(pool, p, N, Cin, H, W, s, Cout, KH, KH, wp, wt, nullptr, stride, stride, pad, pad, d)
            .code();
    };
    CHECK_EQ(conv(1, 1, 4, 4, src.data(), 1, 3, w.data(), DType::f32, 1, 1, dst.data()), SDGO_OK);
    CHECK_EQ(conv(-1, 1, 4, 4, src.data(), 1, 3, w.data(), DType::f32, 1, 1, dst.data()), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(conv(1, 0, 4, 4, src.data(), 1, 3, w.data(), DType::f32, 1, 1, dst.data()), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(conv(1, 1, 4, 4, nullptr, 1, 3, w.data(), DType::f32, 1, 1, dst.data()), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(conv(1, 1, 4, 4, src.data(), 1, 3, nullptr, DType::f32, 1, 1, dst.data()), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(conv(1, 1, 4, 4, src.data(), 1, 3, w.data(), DType::f32, 1, 1, nullptr), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(conv(1, 1, 4, 4, src.data(), 1, 3, w.data(), DType::f32, 0, 1, dst.data()), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(conv(1, 1, 4, 4, src.data(), 1, 3, w.data(), DType::f32, 1, -1, dst.data()), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(conv(1, 1, 2, 2, src.data(), 1, 5, w.data(), DType::f32, 1, 1, dst.data()), SDGO_ERR_INVALID_ARGUMENT);
    // 3x3 q4_0 weights: K = 9 is not a multiple of the block size.
    CHECK_EQ(conv(1, 1, 4, 4, src.data(), 1, 3, w.data(), DType::q4_0, 1, 1, dst.data()), SDGO_ERR_UNSUPPORTED);
    CHECK_EQ(conv(1, 1, 4, 4, src.data(), 1, 3, w.data(), DType::i32, 1, 1, dst.data()), SDGO_ERR_UNSUPPORTED);
}

// ---- attention -------------------------------------------------------------------

namespace {

// Tensors laid out [B][N][H][D+pad] (token-major, as after a linear layer).
struct AttnLayout {
    int64_t B, H, N, D, pad;
    int64_t st() const { return H * (D + pad); }
    int64_t sh() const { return D + pad; }
    int64_t sb() const { return N * st(); }
    size_t size() const { return (size_t)(B * sb()); }
};

void check_attention_case(ThreadPool & pool, CodePath path, int64_t B, int64_t H, int64_t Nq, int64_t Nk, int64_t D,
                          bool causal, uint32_t seed, float scale_mul = 1.0f) {
    AttnLayout lq{B, H, Nq, D, 3}, lk{B, H, Nk, D, 1}, lv{B, H, Nk, D, 5}, lo{B, H, Nq, D, 2};
    std::vector<float> q = random_vec(lq.size(), seed, -2.0f, 2.0f);
    std::vector<float> k = random_vec(lk.size(), seed + 1, -2.0f, 2.0f);
    std::vector<float> v = random_vec(lv.size(), seed + 2);
    std::vector<float> out(lo.size(), 777.0f);
    const float scale = scale_mul / std::sqrt((float)D);
    Status st = cpu::attention(pool, path, B, H, Nq, Nk, D, q.data(), lq.sb(), lq.sh(), lq.st(), k.data(), lk.sb(),
                               lk.sh(), lk.st(), v.data(), lv.sb(), lv.sh(), lv.st(), out.data(), lo.sb(), lo.sh(),
                               lo.st(), scale, causal);
    if (!st.ok()) {
        testing::report_failure(__FILE__, __LINE__, "attention failed: " + st.message());
        return;
    }
    int bad = 0;
    std::vector<double> s((size_t)Nk);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < Nq; i++) {
                const float * qi = q.data() + b * lq.sb() + h * lq.sh() + i * lq.st();
                int64_t nk = Nk;
                if (causal) nk = std::min<int64_t>(Nk, std::max<int64_t>(0, i + (Nk - Nq) + 1));
                double mx = -1e300;
                for (int64_t j = 0; j < nk; j++) {
                    const float * kj = k.data() + b * lk.sb() + h * lk.sh() + j * lk.st();
                    double d = 0;
                    for (int64_t t = 0; t < D; t++) d += (double)qi[t] * kj[t];
                    s[j] = d * scale;
                    mx = std::max(mx, s[j]);
                }
                double sum = 0;
                for (int64_t j = 0; j < nk; j++) { s[j] = std::exp(s[j] - mx); sum += s[j]; }
                const float * oi = out.data() + b * lo.sb() + h * lo.sh() + i * lo.st();
                for (int64_t t = 0; t < D; t++) {
                    double o = 0;
                    for (int64_t j = 0; j < nk; j++) o += s[j] * v[b * lv.sb() + h * lv.sh() + j * lv.st() + t];
                    if (nk > 0) o /= sum;
                    if (!(std::fabs(oi[t] - o) <= 2e-5) && bad++ < 3)
                        testing::report_failure(__FILE__, __LINE__,
                            strprintf("attention %s B=%lld H=%lld Nq=%lld Nk=%lld D=%lld causal=%d at (%lld,%lld,"
                                      "%lld,%lld): %.9g vs %.9g",
                                      path_name(path).c_str(), (long long)B, (long long)H, (long long)Nq,
                                      (long long)Nk, (long long)D, causal, (long long)b, (long long)h, (long long)i,
                                      (long long)t, oi[t], o));
                }
                for (int64_t t = D; t < D + lo.pad; t++)
                    if (oi[t] != 777.0f && bad++ < 3)
                        testing::report_failure(__FILE__, __LINE__, "attention wrote into the padding");
            }
}

}  // namespace

TEST(attention_all_paths) {
    ThreadPool pool(2);
    uint32_t seed = 500;
    for (CodePath path : cpu::runnable_code_paths())
        for (int64_t D : {40, 64, 13})
            for (bool causal : {false, true}) {
                check_attention_case(pool, path, 2, 3, 37, 77, D, causal, seed++);   // Nq < Nk (cross-attention size)
                check_attention_case(pool, path, 1, 2, 100, 33, D, causal, seed++);  // Nq > Nk
                check_attention_case(pool, path, 1, 1, 1, 1, D, causal, seed++);
            }
}

TEST(attention_multiple_tiles) {
    // More queries and keys than one tile, with and without the causal mask.
    ThreadPool pool(2);
    for (CodePath path : cpu::runnable_code_paths()) {
        check_attention_case(pool, path, 1, 2, 150, 450, 40, false, 1);
        check_attention_case(pool, path, 1, 2, 300, 300, 64, true, 2);
        check_attention_case(pool, path, 1, 1, 70, 401, 80, true, 3);
        // A negative and a zero scale (the softmax max becomes a min; all weights equal).
        check_attention_case(pool, path, 1, 2, 50, 230, 40, false, 4, -1.5f);
        check_attention_case(pool, path, 1, 1, 20, 30, 16, true, 5, 0.0f);
    }
}

TEST(attention_large_scores_are_stable) {
    // Scores of several hundred: the online softmax must not overflow.
    ThreadPool pool(2);
    for (CodePath path : cpu::runnable_code_paths()) {
        const int64_t N = 200, D = 16;
        std::vector<float> q = random_vec((size_t)(N * D), 1, 5.0f, 6.0f);
        std::vector<float> k = random_vec((size_t)(N * D), 2, -6.0f, 6.0f);
        std::vector<float> v = random_vec((size_t)(N * D), 3);
        std::vector<float> out((size_t)(N * D));
        REQUIRE(cpu::attention(pool, path, 1, 1, N, N, D, q.data(), 0, 0, D, k.data(), 0, 0, D, v.data(), 0, 0, D,
                               out.data(), 0, 0, D, 1.0f, false)
                    .ok());
        for (float x : out) CHECK(std::isfinite(x) && std::fabs(x) <= 1.0f);
    }
}

TEST(attention_bit_identical_across_thread_counts) {
    ThreadPool p1(1), p2(2), p3(3);
    ThreadPool * pools[3] = {&p1, &p2, &p3};
    for (CodePath path : cpu::runnable_code_paths()) {
        const int64_t H = 3, N = 200, D = 40;
        std::vector<float> q = random_vec((size_t)(H * N * D), 1), k = random_vec((size_t)(H * N * D), 2),
                           v = random_vec((size_t)(H * N * D), 3);
        std::vector<float> out[3];
        for (int i = 0; i < 3; i++) {
            out[i].assign((size_t)(H * N * D), 0.0f);
            REQUIRE(cpu::attention(*pools[i], path, 1, H, N, N, D, q.data(), 0, N * D, D, k.data(), 0, N * D, D,
                                   v.data(), 0, N * D, D, out[i].data(), 0, N * D, D, 0.15f, true)
                        .ok());
        }
        CHECK(std::memcmp(out[0].data(), out[1].data(), out[0].size() * 4) == 0);
        CHECK(std::memcmp(out[0].data(), out[2].data(), out[0].size() * 4) == 0);
    }
}

TEST(attention_rejects_bad_input) {
    ThreadPool pool(1);
    std::vector<float> x(64, 1.0f), o(64);
    const CodePath p = CodePath::scalar;
    CHECK_EQ(cpu::attention(pool, p, 1, 1, 2, 2, 0, x.data(), 0, 0, 4, x.data(), 0, 0, 4, x.data(), 0, 0, 4, o.data(),
                            0, 0, 4, 1.0f, false).code(),
             SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(cpu::attention(pool, p, 1, -1, 2, 2, 4, x.data(), 0, 0, 4, x.data(), 0, 0, 4, x.data(), 0, 0, 4,
                            o.data(), 0, 0, 4, 1.0f, false).code(),
             SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(cpu::attention(pool, p, 1, 1, 2, 2, 4, nullptr, 0, 0, 4, x.data(), 0, 0, 4, x.data(), 0, 0, 4, o.data(),
                            0, 0, 4, 1.0f, false).code(),
             SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(cpu::attention(pool, p, 1, 1, 2, 2, 4, x.data(), 0, 0, 4, x.data(), 0, 0, 4, x.data(), 0, 0, 4, nullptr,
                            0, 0, 4, 1.0f, false).code(),
             SDGO_ERR_INVALID_ARGUMENT);
    // No keys: the output is zero.
    REQUIRE(cpu::attention(pool, p, 1, 1, 2, 0, 4, x.data(), 0, 0, 4, x.data(), 0, 0, 4, x.data(), 0, 0, 4, o.data(),
                           0, 0, 4, 1.0f, false).ok());
    for (int i = 0; i < 8; i++) CHECK_EQ(o[i], 0.0f);
}

TEST(fma_peak_is_positive) {
    ThreadPool pool(1);
    std::string names;
    for (CodePath path : cpu::runnable_code_paths()) names += std::string(" ") + cpu::code_path_name(path);
    std::printf("     code paths tested:%s\n", names.c_str());
    for (CodePath path : cpu::runnable_code_paths()) CHECK(cpu::measure_fma_peak_gflops(pool, path, 0.02) > 0.0);
    for (CodePath q : {CodePath::avx2, CodePath::avx512, CodePath::neon})
        if (!cpu::code_path_runnable(q)) CHECK_EQ(cpu::measure_fma_peak_gflops(pool, q, 0.02), 0.0);
}
