#include "sampling/rng.h"

#include <algorithm>

#include <cmath>
#include <cstring>

// Every multiply and add below must round exactly where the reference
// implementation rounds: no implicit contraction into fused multiply-adds
// (fused ones are written out with std::fma).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace sdgo::sampling {

Status parse_rng_type(const std::string & name, RngType * out) {
    if (name == "cuda" || name == "philox" || name == "gpu" || name == "nv") {
        *out = RngType::Cuda;
        return Status();
    }
    if (name == "cpu" || name == "torch_cpu") {
        *out = RngType::Cpu;
        return Status();
    }
    return error(SDGO_ERR_INVALID_ARGUMENT, "unknown rng '%s' (expected 'cuda' or 'cpu')",
                 name.c_str());
}

const char * rng_type_name(RngType t) {
    switch (t) {
        case RngType::Cuda: return "cuda";
        case RngType::Cpu: return "cpu";
    }
    return "?";
}

// ---- Philox 4x32-10 ---------------------------------------------------------

namespace {
constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;

inline void philox_round(uint32_t c[4], uint32_t k0, uint32_t k1) {
    const uint64_t p0 = static_cast<uint64_t>(c[0]) * kPhiloxM0;
    const uint64_t p1 = static_cast<uint64_t>(c[2]) * kPhiloxM1;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k0;
    const uint32_t n1 = static_cast<uint32_t>(p1);
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k1;
    const uint32_t n3 = static_cast<uint32_t>(p0);
    c[0] = n0;
    c[1] = n1;
    c[2] = n2;
    c[3] = n3;
}
}  // namespace

void PhiloxRng::philox4x32_10(uint32_t c[4], uint32_t k0, uint32_t k1) {
    for (int r = 0; r < 9; ++r) {
        philox_round(c, k0, k1);
        k0 += kPhiloxW0;
        k1 += kPhiloxW1;
    }
    philox_round(c, k0, k1);
}

void PhiloxRng::randn(size_t n, float * out) {
    // The Box-Muller constants are float32 values (2^-32 and 2*pi*2^-32
    // rounded to float); the arithmetic on them is double.
    const double a = static_cast<double>(static_cast<float>(2.3283064e-10));
    const double b = static_cast<double>(static_cast<float>(2.3283064e-10 * 6.2831855));
    const double a_half = static_cast<double>(static_cast<float>(2.3283064e-10) / 2.0f);
    const double b_half = static_cast<double>(static_cast<float>(2.3283064e-10 * 6.2831855) / 2.0f);
    const uint32_t k0 = static_cast<uint32_t>(seed_);
    const uint32_t k1 = static_cast<uint32_t>(seed_ >> 32);
    const uint32_t off = static_cast<uint32_t>(offset_);
    for (size_t i = 0; i < n; ++i) {
        uint32_t c[4] = {off, 0u, static_cast<uint32_t>(i), 0u};
        philox4x32_10(c, k0, k1);
        const double u = static_cast<double>(c[0]) * a + a_half;
        const double v = static_cast<double>(c[1]) * b + b_half;
        const double s = std::sqrt(-2.0 * std::log(u));
        out[i] = static_cast<float>(s * std::sin(v));
    }
    offset_ += 1;
}

// ---- MT19937 ----------------------------------------------------------------

void Mt19937::seed(uint64_t seed) {
    state_[0] = static_cast<uint32_t>(seed & 0xffffffffu);
    for (int j = 1; j < 624; ++j) {
        state_[j] = 1812433253u * (state_[j - 1] ^ (state_[j - 1] >> 30)) + static_cast<uint32_t>(j);
    }
    index_ = 624;  // the next draw twists
}

void Mt19937::twist() {
    constexpr uint32_t kUpper = 0x80000000u;
    constexpr uint32_t kLower = 0x7fffffffu;
    constexpr uint32_t kMatrixA = 0x9908b0dfu;
    for (int i = 0; i < 624; ++i) {
        const uint32_t y = (state_[i] & kUpper) | (state_[(i + 1) % 624] & kLower);
        uint32_t v = state_[(i + 397) % 624] ^ (y >> 1);
        if (y & 1u) v ^= kMatrixA;
        state_[i] = v;
    }
    index_ = 0;
}

uint32_t Mt19937::next() {
    if (index_ >= 624) twist();
    uint32_t y = state_[index_++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

// ---- torch CPU generator ------------------------------------------------------

void TorchCpuRng::seed(uint64_t seed) {
    mt_.seed(seed);
    have_next_double_ = false;
    next_double_ = 0.0;
}

float TorchCpuRng::uniform_float() {
    const uint32_t r = mt_.next();
    // 24 random bits (float's digits) times 2^-24, computed in float
    // (exact), then * (1 - 0) + 0.
    return static_cast<float>(r & 0xFFFFFFu) * (1.0f / 16777216.0f);
}

double TorchCpuRng::uniform_double() {
    const uint64_t r = mt_.next64();
    return static_cast<double>(r & ((uint64_t(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
}

double TorchCpuRng::normal_double() {
    if (have_next_double_) {
        have_next_double_ = false;
        return next_double_;
    }
    const double u1 = uniform_double();
    const double u2 = uniform_double();
    const double r = std::sqrt(-2.0 * std::log1p(-u2));
    const double theta = 2.0 * 3.14159265358979323846 * u1;
    next_double_ = r * std::sin(theta);
    have_next_double_ = true;
    return r * std::cos(theta);
}

namespace {

// ---- torch's float32 Box-Muller over 16 uniforms (pairs j, j + 8) ----------
//
// x86 builds of torch (AVX2 and AVX-512 capability, i.e. any recent x86 CPU)
// evaluate it with the Cephes-derived polynomial log and sincos of
// avx_mathfun.h in float32: u1 = 1 - d[j], radius = sqrt(-2 * log(u1)),
// theta = float(2*pi) * u2. What follows is a scalar evaluation of the same
// float32 operations in the same order; `Fused` selects whether each
// multiply-then-add pair is one fused multiply-add, as the compiler that
// built torch emits it (see kTorchFused below).

inline float bits_to_float(uint32_t b) {
    float f;
    std::memcpy(&f, &b, 4);
    return f;
}
inline uint32_t float_to_bits(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    return b;
}

template <bool Fused>
inline float madd(float a, float b, float c) {
    if (Fused) return std::fma(a, b, c);
    const float p = a * b;
    return p + c;
}

// Natural log for u in (0, 1] (the Box-Muller argument; never <= 0 here).
template <bool Fused>
float cephes_logf(float x) {
    const float min_norm = bits_to_float(0x00800000u);
    if (x < min_norm) x = min_norm;
    uint32_t bits = float_to_bits(x);
    const int32_t exp_raw = static_cast<int32_t>(bits >> 23);
    bits = (bits & ~0x7f800000u) | float_to_bits(0.5f);
    x = bits_to_float(bits);
    float e = static_cast<float>(exp_raw - 0x7f);
    e = e + 1.0f;
    const bool below = x < 0.707106781186547524f;
    const float tmp = below ? x : 0.0f;
    x = x - 1.0f;
    e = e - (below ? 1.0f : 0.0f);
    x = x + tmp;
    const float z = x * x;
    float y = 7.0376836292E-2f;
    y = madd<Fused>(y, x, -1.1514610310E-1f);
    y = madd<Fused>(y, x, 1.1676998740E-1f);
    y = madd<Fused>(y, x, -1.2420140846E-1f);
    y = madd<Fused>(y, x, 1.4249322787E-1f);
    y = madd<Fused>(y, x, -1.6668057665E-1f);
    y = madd<Fused>(y, x, 2.0000714765E-1f);
    y = madd<Fused>(y, x, -2.4999993993E-1f);
    y = madd<Fused>(y, x, 3.3333331174E-1f);
    y = y * x;
    // y * z + e * q1: the compiler fuses the product y * z.
    y = Fused ? std::fma(y, z, e * -2.12194440e-4f) : y * z + e * -2.12194440e-4f;
    y = madd<Fused>(-z, 0.5f, y);  // y - z * 0.5
    x = x + y;
    x = madd<Fused>(e, 0.693359375f, x);
    return x;
}

template <bool Fused>
void cephes_sincosf(float x, float * s, float * c) {
    uint32_t sign_sin = float_to_bits(x) & 0x80000000u;
    x = std::fabs(x);
    float y = x * 1.27323954473516f;
    int32_t j = static_cast<int32_t>(y);  // truncation
    j = (j + 1) & ~1;
    y = static_cast<float>(j);
    const uint32_t swap_sin = static_cast<uint32_t>(j & 4) << 29;
    const bool poly_sin = (j & 2) == 0;  // mask: use the sine polynomial for sin
    x = madd<Fused>(y, -0.78515625f, x);
    x = madd<Fused>(y, -2.4187564849853515625e-4f, x);
    x = madd<Fused>(y, -3.77489497744594108e-8f, x);
    const uint32_t sign_cos = static_cast<uint32_t>(~(j - 2) & 4) << 29;
    sign_sin ^= swap_sin;
    const float z = x * x;
    float yc = 2.443315711809948E-005f;
    yc = madd<Fused>(yc, z, -1.388731625493765E-003f);
    yc = madd<Fused>(yc, z, 4.166664568298827E-002f);
    yc = yc * z;
    // y * z - z * 0.5: the compiler fuses the product y * z (z * 0.5 is exact).
    yc = Fused ? std::fma(yc, z, -(z * 0.5f)) : yc * z - z * 0.5f;
    yc = yc + 1.0f;
    float ys = -1.9515295891E-4f;
    ys = madd<Fused>(ys, z, 8.3321608736E-3f);
    ys = madd<Fused>(ys, z, -1.6666654611E-1f);
    ys = ys * z;
    ys = madd<Fused>(ys, x, x);
    const float sin_v = poly_sin ? ys : yc;
    const float cos_v = poly_sin ? yc : ys;
    *s = bits_to_float(float_to_bits(sin_v) ^ sign_sin);
    *c = bits_to_float(float_to_bits(cos_v) ^ sign_cos);
}

template <bool Fused>
void normal_fill_16_x86(float * d) {
    const float two_pi = static_cast<float>(2.0 * 3.14159265358979323846);
    for (int j = 0; j < 8; ++j) {
        const float u1 = 1.0f - d[j];
        const float u2 = d[j + 8];
        const float radius = std::sqrt(-2.0f * cephes_logf<Fused>(u1));
        const float theta = two_pi * u2;
        float sn, cs;
        cephes_sincosf<Fused>(theta, &sn, &cs);
        d[j] = radius * cs;
        d[j + 8] = radius * sn;
    }
}

// torch's generic kernel (builds without x86 SIMD, e.g. arm64, or
// ATEN_CPU_CAPABILITY=default): C library logf/cosf/sinf, theta computed in
// double and rounded to float.
void normal_fill_16_generic(float * d) {
    const double two_pi = 2.0 * 3.14159265358979323846;
    for (int j = 0; j < 8; ++j) {
        const float u1 = 1.0f - d[j];
        const float u2 = d[j + 8];
        const float radius = std::sqrt(-2.0f * std::log(u1));
        const float theta = static_cast<float>(two_pi * static_cast<double>(u2));
        d[j] = radius * std::cos(theta);
        d[j + 8] = radius * std::sin(theta);
    }
}

// torch's x86 wheels are built by a compiler that fuses the multiply-add
// pairs (verified bit for bit against torch.randn on AVX2 and AVX-512).
constexpr bool kTorchFused = true;

}  // namespace

void TorchCpuRng::randn(size_t n, float * out) {
    if (n < 16) {
        for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(normal_double());
        return;
    }
    void (*fill16)(float *) =
        kernel_ == TorchKernel::Generic ? &normal_fill_16_generic : &normal_fill_16_x86<kTorchFused>;
    for (size_t i = 0; i < n; ++i) out[i] = uniform_float();
    for (size_t i = 0; i + 16 <= n; i += 16) fill16(out + i);
    if (n % 16 != 0) {
        float * tail = out + (n - 16);
        for (int i = 0; i < 16; ++i) tail[i] = uniform_float();
        fill16(tail);
    }
}

void BatchSliceRng::randn(size_t n, float * out) {
    buf_.resize(n * count_);
    shared_->randn(buf_.size(), buf_.data());
    std::copy(buf_.begin() + long(n * index_), buf_.begin() + long(n * (index_ + 1)), out);
}

std::unique_ptr<Rng> make_rng(RngType type, uint64_t seed) {
    if (type == RngType::Cpu) return std::make_unique<TorchCpuRng>(seed);
    return std::make_unique<PhiloxRng>(seed);
}

}  // namespace sdgo::sampling
