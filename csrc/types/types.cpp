// types.cpp — the type table, names, sizes, scalar float conversions and the
// checked quantize entry point. SIMD versions of the row functions belong to
// the CPU backend (backends/cpu/type_convert.h).
#include "types/types.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "types/quants.h"

namespace sdgo {

// ---------------------------------------------------------------------------
// Scalar conversions
// ---------------------------------------------------------------------------

namespace {
inline uint32_t f32_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
inline float f32_from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// Branch-free so that row loops vectorise: every half subnormal is a normal
// f32, mant * 2^-24 (exact, unaffected by flush-to-zero modes).
inline uint32_t half_to_f32_bits(uint32_t h) {
    const uint32_t sign = (h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t mant = h & 0x3ffu;
    const uint32_t normal = sign | ((exp + 112u) << 23) | (mant << 13);
    // inf, or NaN with its payload; NaNs come out quiet, as the hardware
    // converters and ggml's software path (through a float multiply) give.
    const uint32_t special = sign | 0x7f800000u | (static_cast<uint32_t>(mant != 0) << 22) | (mant << 13);
    const uint32_t sub = sign | f32_bits(static_cast<float>(static_cast<int32_t>(mant)) * 0x1p-24f);
    const uint32_t is_sub = 0u - static_cast<uint32_t>(exp == 0);
    const uint32_t is_special = 0u - static_cast<uint32_t>(exp == 0x1f);
    return (sub & is_sub) | (special & is_special) | (normal & ~(is_sub | is_special));
}
}  // namespace

float fp16_to_fp32(uint16_t h) { return f32_from_bits(half_to_f32_bits(h)); }

uint16_t fp32_to_fp16(float f) {
    const uint32_t u = f32_bits(f);
    const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;          // NaN -> canonical quiet NaN
    if (a >= 0x477ff000u) return sign | 0x7c00u;         // >= 65520 rounds to inf
    if (a >= 0x38800000u) {                              // normal half (>= 2^-14)
        const uint32_t mant = a & 0x7fffffu;
        uint32_t h = (((a >> 23) - 112u) << 10) | (mant >> 13);
        const uint32_t rem = mant & 0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry bumps the exponent: still right
        return static_cast<uint16_t>(sign | h);
    }
    if (a <= 0x33000000u) return sign;                   // <= 2^-25 rounds to (signed) zero
    // Subnormal half: value / 2^-24 = m >> (126 - e), rounded to nearest even.
    const uint32_t e = a >> 23;                          // 102..112
    const uint32_t m = (a & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - e;                     // 14..24
    uint32_t h = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
}

float bf16_to_fp32(uint16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }

uint16_t fp32_to_bf16(float f) {
    const uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
    return static_cast<uint16_t>((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}

// ---------------------------------------------------------------------------
// Row functions of the plain float types
// ---------------------------------------------------------------------------

namespace {

void f32_to_f32(const void * src, float * dst, int64_t n) { std::memcpy(dst, src, static_cast<size_t>(n) * 4); }
void f32_from_f32(const float * src, void * dst, int64_t n) { std::memcpy(dst, src, static_cast<size_t>(n) * 4); }

void f16_to_f32_scalar(const void * src, float * dst, int64_t n) {
    const uint8_t * p = static_cast<const uint8_t *>(src);
    for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        const uint32_t u = half_to_f32_bits(h);
        std::memcpy(dst + i, &u, 4);
    }
}
void f16_from_f32(const float * src, void * dst, int64_t n) {
    uint8_t * p = static_cast<uint8_t *>(dst);
    for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = fp32_to_fp16(src[i]);
        std::memcpy(p + 2 * i, &h, 2);
    }
}
void bf16_to_f32_scalar(const void * src, float * dst, int64_t n) {
    const uint8_t * p = static_cast<const uint8_t *>(src);
    for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = bf16_to_fp32(h);
    }
}
void bf16_from_f32(const float * src, void * dst, int64_t n) {
    uint8_t * p = static_cast<uint8_t *>(dst);
    for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = fp32_to_bf16(src[i]);
        std::memcpy(p + 2 * i, &h, 2);
    }
}

template <FromF32Fn F, size_t kElemBytes>
size_t quantize_elementwise(const float * src, void * dst, int64_t nrows, int64_t n_per_row, const float *) {
    F(src, dst, nrows * n_per_row);
    return static_cast<size_t>(nrows * n_per_row) * kElemBytes;
}

// ---------------------------------------------------------------------------
// The table, indexed by ggml type id
// ---------------------------------------------------------------------------

struct Row {
    TypeTraits traits;
    bool present;
};

constexpr DType id(int32_t v) { return static_cast<DType>(v); }

Row make(DType t, const char * name, int64_t bs, size_t ts, bool q, ToF32Fn to = nullptr,
         FromF32Fn from = nullptr, QuantizeFn qz = nullptr) {
    return Row{TypeTraits{t, name, bs, ts, q, to, from, qz}, true};
}

struct Table {
    Row rows[kDTypeIdLimit] = {};
    Table() {
        using namespace quant;
        auto set = [this](const Row & r) { rows[static_cast<int32_t>(r.traits.type)] = r; };
        set(make(DType::f32, "f32", 1, 4, false, f32_to_f32, f32_from_f32,
                 quantize_elementwise<f32_from_f32, 4>));
        set(make(DType::f16, "f16", 1, 2, false, f16_to_f32_scalar, f16_from_f32,
                 quantize_elementwise<f16_from_f32, 2>));
        set(make(DType::q4_0, "q4_0", 32, kSizeQ4_0, true, dequantize_q4_0, quantize_ref_q4_0,
                 quantize_q4_0));
        set(make(DType::q4_1, "q4_1", 32, kSizeQ4_1, true, dequantize_q4_1, quantize_ref_q4_1,
                 quantize_q4_1));
        set(make(DType::q5_0, "q5_0", 32, kSizeQ5_0, true, dequantize_q5_0, quantize_ref_q5_0,
                 quantize_q5_0));
        set(make(DType::q5_1, "q5_1", 32, kSizeQ5_1, true, dequantize_q5_1, quantize_ref_q5_1,
                 quantize_q5_1));
        set(make(DType::q8_0, "q8_0", 32, kSizeQ8_0, true, dequantize_q8_0, quantize_ref_q8_0,
                 quantize_q8_0));
        set(make(DType::q8_1, "q8_1", 32, kSizeQ8_1, true, dequantize_q8_1, quantize_ref_q8_1, quantize_q8_1));
        // K-quants: sized and named; encoders/decoders not written yet. Adding
        // one = its functions here (the search helpers are in quants.h).
        set(make(DType::q2_K, "q2_K", 256, 84, true));
        set(make(DType::q3_K, "q3_K", 256, 110, true));
        set(make(DType::q4_K, "q4_K", 256, 144, true));
        set(make(DType::q5_K, "q5_K", 256, 176, true));
        set(make(DType::q6_K, "q6_K", 256, 210, true));
        set(make(DType::q8_K, "q8_K", 256, 292, true));
        // Types SD files do not use: known (so a file naming them gets a clear
        // "unsupported" rather than "unknown"), never converted.
        set(make(id(16), "iq2_xxs", 256, 66, true));
        set(make(id(17), "iq2_xs", 256, 74, true));
        set(make(id(18), "iq3_xxs", 256, 98, true));
        set(make(id(19), "iq1_s", 256, 50, true));
        set(make(id(20), "iq4_nl", 32, 18, true));
        set(make(id(21), "iq3_s", 256, 110, true));
        set(make(id(22), "iq2_s", 256, 82, true));
        set(make(id(23), "iq4_xs", 256, 136, true));
        set(make(DType::i8, "i8", 1, 1, false));
        set(make(DType::i16, "i16", 1, 2, false));
        set(make(DType::i32, "i32", 1, 4, false));
        set(make(DType::i64, "i64", 1, 8, false));
        set(make(DType::f64, "f64", 1, 8, false));
        set(make(id(29), "iq1_m", 256, 56, true));
        set(make(DType::bf16, "bf16", 1, 2, false, bf16_to_f32_scalar, bf16_from_f32,
                 quantize_elementwise<bf16_from_f32, 2>));
        set(make(id(34), "tq1_0", 256, 54, true));
        set(make(id(35), "tq2_0", 256, 66, true));
        set(make(id(39), "mxfp4", 32, 17, true));
        set(make(id(40), "nvfp4", 64, 36, true));
        set(make(id(41), "q1_0", 128, 18, true));
        set(make(id(42), "q2_0", 64, 18, true));  // newest ggml only
    }
};

const Table & table() {
    static const Table t;
    return t;
}

const Row * row_of(int32_t v) {
    if (v < 0 || v >= kDTypeIdLimit) return nullptr;
    const Row & r = table().rows[v];
    return r.present ? &r : nullptr;
}

}  // namespace

const TypeTraits * type_traits(int32_t v) {
    const Row * r = row_of(v);
    return r ? &r->traits : nullptr;
}

const char * dtype_name(DType t) {
    const TypeTraits * tr = type_traits(t);
    return tr ? tr->name : "?";
}

bool dtype_from_name(const char * name, DType * out) {
    if (!name) return false;
    for (int32_t v = 0; v < kDTypeIdLimit; ++v) {
        const Row * r = row_of(v);
        if (!r) continue;
        const char * a = r->traits.name;
        const char * b = name;
        while (*a && *b) {
            char ca = *a, cb = *b;
            if (ca >= 'A' && ca <= 'Z') ca = static_cast<char>(ca - 'A' + 'a');
            if (cb >= 'A' && cb <= 'Z') cb = static_cast<char>(cb - 'A' + 'a');
            if (ca != cb) break;
            ++a;
            ++b;
        }
        if (*a == 0 && *b == 0) {
            if (out) *out = r->traits.type;
            return true;
        }
    }
    return false;
}

size_t row_size(DType t, int64_t ne0) {
    const TypeTraits * tr = type_traits(t);
    if (!tr || ne0 < 0 || ne0 % tr->block_size != 0) return 0;
    const uint64_t blocks = static_cast<uint64_t>(ne0 / tr->block_size);
    if (blocks > std::numeric_limits<size_t>::max() / tr->type_size) return 0;
    return static_cast<size_t>(blocks) * tr->type_size;
}

Status tensor_bytes(DType t, int64_t ne0, int64_t nrows, size_t * out) {
    const TypeTraits * tr = type_traits(t);
    if (!tr) return error(SDGO_ERR_INVALID_ARGUMENT, "unknown tensor type id %d", static_cast<int>(t));
    if (ne0 < 0 || nrows < 0)
        return error(SDGO_ERR_INVALID_ARGUMENT, "%s: negative shape (%lld x %lld)", tr->name,
                     static_cast<long long>(ne0), static_cast<long long>(nrows));
    if (ne0 % tr->block_size != 0)
        return error(SDGO_ERR_INVALID_ARGUMENT, "%s: row length %lld is not a multiple of the block size %lld",
                     tr->name, static_cast<long long>(ne0), static_cast<long long>(tr->block_size));
    const size_t rs = row_size(t, ne0);
    if (ne0 > 0 && rs == 0) return error(SDGO_ERR_INVALID_ARGUMENT, "%s: row of %lld elements is too large", tr->name,
                                         static_cast<long long>(ne0));
    if (nrows > 0 && rs > std::numeric_limits<size_t>::max() / static_cast<uint64_t>(nrows))
        return error(SDGO_ERR_INVALID_ARGUMENT, "%s: %lld rows of %lld elements is too large", tr->name,
                     static_cast<long long>(nrows), static_cast<long long>(ne0));
    *out = rs * static_cast<size_t>(nrows);
    return Status();
}

Status quantize_rows(DType t, const float * src, void * dst, size_t dst_capacity, int64_t nrows,
                     int64_t n_per_row, const float * imatrix, size_t * written) {
    if (written) *written = 0;
    const TypeTraits * tr = type_traits(t);
    if (!tr) return error(SDGO_ERR_INVALID_ARGUMENT, "quantize: unknown tensor type id %d", static_cast<int>(t));
    if (!tr->quantize) return error(SDGO_ERR_UNSUPPORTED, "quantize: converting to %s is not supported", tr->name);
    size_t need = 0;
    SDGO_TRY(tensor_bytes(t, n_per_row, nrows, &need).wrap("quantize"));
    if (need > dst_capacity)
        return error(SDGO_ERR_BUFFER_TOO_SMALL, "quantize: %s needs %zu bytes, the buffer has %zu", tr->name, need,
                     dst_capacity);
    const int64_t n = nrows * n_per_row;
    if (n > 0 && (!src || !dst)) return error(SDGO_ERR_INVALID_ARGUMENT, "quantize: NULL buffer");
    if (tr->is_quantized) {
        for (int64_t i = 0; i < n; ++i) {
            if (!std::isfinite(src[i]))
                return error(SDGO_ERR_INVALID_ARGUMENT, "quantize: %s input element %lld (row %lld) is not finite",
                             tr->name, static_cast<long long>(i), static_cast<long long>(i / n_per_row));
        }
        if (imatrix) {
            for (int64_t i = 0; i < n_per_row; ++i) {
                if (!std::isfinite(imatrix[i]) || imatrix[i] < 0)
                    return error(SDGO_ERR_INVALID_ARGUMENT,
                                 "quantize: importance weight %lld is negative or not finite", static_cast<long long>(i));
            }
        }
    }
    if (n == 0) return Status();
    const size_t got = tr->quantize(src, dst, nrows, n_per_row, imatrix);
    if (got != need)
        return error(SDGO_ERR_INTERNAL, "quantize: %s wrote %zu bytes, expected %zu", tr->name, got, need);
    if (written) *written = got;
    return Status();
}

}  // namespace sdgo
