// quants.cpp — scalar encoders/decoders of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1,
// bit-exact with ggml (reference and importance-weighted quantizers).
//
// Written from the format facts in docs/quant-formats.md.
// The arithmetic below is deliberately literal: the operand order of every
// float expression is part of the file format, because quantizer decisions
// (which candidate scale wins, which way a value rounds) depend on the last
// bit. Do not "simplify" expressions, hoist reciprocals or let the compiler
// fuse multiply-adds.

// No FMA contraction in this file, whatever -march the build uses.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "types/quants.h"

#include <cfloat>
#include <climits>
#include <cmath>
#include <cstring>

#include "types/types.h"

namespace sdgo::quant {

namespace {

inline uint16_t load_u16(const uint8_t * p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}
inline uint32_t load_u32(const uint8_t * p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}
inline void store_u16(uint8_t * p, uint16_t v) { std::memcpy(p, &v, 2); }
inline void store_u32(uint8_t * p, uint32_t v) { std::memcpy(p, &v, 4); }

inline float half_at(const uint8_t * p) { return fp16_to_fp32(load_u16(p)); }
inline void put_half(uint8_t * p, float f) { store_u16(p, fp32_to_fp16(f)); }

// The C cast (int)v as x86-64 executes it (cvttss2si): truncation toward
// zero, and INT32_MIN for NaN or values outside the int32 range. Defined for
// every input, unlike the C++ cast.
inline int32_t trunc_i32(float v) {
    if (!(v > -2147483904.0f && v < 2147483648.0f)) return INT32_MIN;
    return static_cast<int32_t>(v);
}
// (int8_t)(float) / (uint8_t)(float) as ggml's x86-64 build computes them:
// a 32-bit truncating conversion whose low byte is kept.
inline int8_t to_i8(float v) { return static_cast<int8_t>(static_cast<uint8_t>(trunc_i32(v))); }
inline uint8_t to_u8(float v) { return static_cast<uint8_t>(trunc_i32(v)); }

template <typename T>
inline T min_of(T a, T b) { return a < b ? a : b; }  // ggml's MIN(a, b)
template <typename T>
inline T max_of(T a, T b) { return a > b ? a : b; }  // ggml's MAX(a, b)

// First element of largest magnitude (strictly greater wins), with its sign.
inline float signed_absmax(const float * x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; ++j) {
        const float v = x[j];
        if (amax < std::fabs(v)) {
            amax = std::fabs(v);
            max = v;
        }
    }
    return max;
}

// Splits 32 five-bit quants into the 16 nibble bytes and the 32-bit high mask.
inline void pack5(const uint8_t * q, uint8_t * qs, uint32_t * qh) {
    uint32_t h = 0;
    for (int j = 0; j < 16; ++j) {
        const uint8_t a = q[j], b = q[j + 16];
        qs[j] = static_cast<uint8_t>((a & 0x0F) | ((b & 0x0F) << 4));
        h |= ((a & 0x10u) >> 4) << j;
        h |= ((b & 0x10u) >> 4) << (j + 16);
    }
    *qh = h;
}

}  // namespace

int nearest_int(float f) {
    // Adding 1.5*2^23 leaves round-half-to-even(f) + 2^22 in the low mantissa bits.
    const float shifted = f + 12582912.0f;
    int32_t bits;
    std::memcpy(&bits, &shifted, 4);
    return (bits & 0x007fffff) - 0x00400000;
}

// ---------------------------------------------------------------------------
// Decoders
// ---------------------------------------------------------------------------

void dequantize_q4_0(const void * src, float * dst, int64_t n) {
    const uint8_t * b = static_cast<const uint8_t *>(src);
    for (int64_t i = 0; i < n / kQK; ++i, b += kSizeQ4_0, dst += kQK) {
        const float d = half_at(b);
        const uint8_t * qs = b + 2;
        for (int j = 0; j < 16; ++j) {
            const int lo = (qs[j] & 0x0F) - 8;
            const int hi = (qs[j] >> 4) - 8;
            dst[j] = lo * d;
            dst[j + 16] = hi * d;
        }
    }
}

void dequantize_q4_1(const void * src, float * dst, int64_t n) {
    const uint8_t * b = static_cast<const uint8_t *>(src);
    for (int64_t i = 0; i < n / kQK; ++i, b += kSizeQ4_1, dst += kQK) {
        const float d = half_at(b);
        const float m = half_at(b + 2);
        const uint8_t * qs = b + 4;
        for (int j = 0; j < 16; ++j) {
            const int lo = qs[j] & 0x0F;
            const int hi = qs[j] >> 4;
            dst[j] = lo * d + m;
            dst[j + 16] = hi * d + m;
        }
    }
}

void dequantize_q5_0(const void * src, float * dst, int64_t n) {
    const uint8_t * b = static_cast<const uint8_t *>(src);
    for (int64_t i = 0; i < n / kQK; ++i, b += kSizeQ5_0, dst += kQK) {
        const float d = half_at(b);
        const uint32_t qh = load_u32(b + 2);
        const uint8_t * qs = b + 6;
        for (int j = 0; j < 16; ++j) {
            const int lo = static_cast<int>((qs[j] & 0x0F) | (((qh >> j) << 4) & 0x10)) - 16;
            const int hi = static_cast<int>((qs[j] >> 4) | ((qh >> (j + 12)) & 0x10)) - 16;
            dst[j] = lo * d;
            dst[j + 16] = hi * d;
        }
    }
}

void dequantize_q5_1(const void * src, float * dst, int64_t n) {
    const uint8_t * b = static_cast<const uint8_t *>(src);
    for (int64_t i = 0; i < n / kQK; ++i, b += kSizeQ5_1, dst += kQK) {
        const float d = half_at(b);
        const float m = half_at(b + 2);
        const uint32_t qh = load_u32(b + 4);
        const uint8_t * qs = b + 8;
        for (int j = 0; j < 16; ++j) {
            const int lo = static_cast<int>((qs[j] & 0x0F) | (((qh >> j) << 4) & 0x10));
            const int hi = static_cast<int>((qs[j] >> 4) | ((qh >> (j + 12)) & 0x10));
            dst[j] = lo * d + m;
            dst[j + 16] = hi * d + m;
        }
    }
}

void dequantize_q8_0(const void * src, float * dst, int64_t n) {
    const uint8_t * b = static_cast<const uint8_t *>(src);
    for (int64_t i = 0; i < n / kQK; ++i, b += kSizeQ8_0, dst += kQK) {
        const float d = half_at(b);
        const int8_t * qs = reinterpret_cast<const int8_t *>(b + 2);
        for (int j = 0; j < kQK; ++j) dst[j] = qs[j] * d;
    }
}

void dequantize_q8_1(const void * src, float * dst, int64_t n) {
    const uint8_t * b = static_cast<const uint8_t *>(src);
    for (int64_t i = 0; i < n / kQK; ++i, b += kSizeQ8_1, dst += kQK) {
        const float d = half_at(b);
        const int8_t * qs = reinterpret_cast<const int8_t *>(b + 4);
        for (int j = 0; j < kQK; ++j) dst[j] = qs[j] * d;
    }
}

// ---------------------------------------------------------------------------
// Reference encoders
// ---------------------------------------------------------------------------

void quantize_ref_q4_0(const float * x, void * dst, int64_t n) {
    uint8_t * b = static_cast<uint8_t *>(dst);
    for (int64_t i = 0; i < n / kQK; ++i, x += kQK, b += kSizeQ4_0) {
        const float max = signed_absmax(x, kQK);
        const float d = max / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        put_half(b, d);
        uint8_t * qs = b + 2;
        for (int j = 0; j < 16; ++j) {
            const uint8_t lo = static_cast<uint8_t>(min_of<int>(15, to_i8(x[j] * id + 8.5f)));
            const uint8_t hi = static_cast<uint8_t>(min_of<int>(15, to_i8(x[j + 16] * id + 8.5f)));
            qs[j] = static_cast<uint8_t>(lo | (hi << 4));
        }
    }
}

void quantize_ref_q4_1(const float * x, void * dst, int64_t n) {
    uint8_t * b = static_cast<uint8_t *>(dst);
    for (int64_t i = 0; i < n / kQK; ++i, x += kQK, b += kSizeQ4_1) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < kQK; ++j) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 15;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        put_half(b, d);
        put_half(b + 2, min);
        uint8_t * qs = b + 4;
        for (int j = 0; j < 16; ++j) {
            const uint8_t lo = static_cast<uint8_t>(min_of<int>(15, to_i8((x[j] - min) * id + 0.5f)));
            const uint8_t hi = static_cast<uint8_t>(min_of<int>(15, to_i8((x[j + 16] - min) * id + 0.5f)));
            qs[j] = static_cast<uint8_t>(lo | (hi << 4));
        }
    }
}

void quantize_ref_q5_0(const float * x, void * dst, int64_t n) {
    uint8_t * b = static_cast<uint8_t *>(dst);
    uint8_t q[kQK];
    for (int64_t i = 0; i < n / kQK; ++i, x += kQK, b += kSizeQ5_0) {
        const float max = signed_absmax(x, kQK);
        const float d = max / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        put_half(b, d);
        for (int j = 0; j < kQK; ++j)
            q[j] = static_cast<uint8_t>(min_of<int>(31, to_i8(x[j] * id + 16.5f)));
        uint32_t qh;
        pack5(q, b + 6, &qh);
        store_u32(b + 2, qh);
    }
}

void quantize_ref_q5_1(const float * x, void * dst, int64_t n) {
    uint8_t * b = static_cast<uint8_t *>(dst);
    uint8_t q[kQK];
    for (int64_t i = 0; i < n / kQK; ++i, x += kQK, b += kSizeQ5_1) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < kQK; ++j) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 31;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        put_half(b, d);
        put_half(b + 2, min);
        for (int j = 0; j < kQK; ++j) q[j] = to_u8((x[j] - min) * id + 0.5f);  // no clamp, as ggml
        uint32_t qh;
        pack5(q, b + 8, &qh);
        store_u32(b + 4, qh);
    }
}

namespace {
// Shared by Q8_0 and Q8_1: returns the unrounded scale, fills qs.
inline float quantize_block_q8(const float * x, int8_t * qs) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = max_of(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < kQK; ++j) qs[j] = static_cast<int8_t>(static_cast<uint8_t>(trunc_i32(std::round(x[j] * id))));
    return d;
}
}  // namespace

void quantize_ref_q8_0(const float * x, void * dst, int64_t n) {
    uint8_t * b = static_cast<uint8_t *>(dst);
    for (int64_t i = 0; i < n / kQK; ++i, x += kQK, b += kSizeQ8_0) {
        int8_t qs[kQK];
        const float d = quantize_block_q8(x, qs);
        put_half(b, d);
        std::memcpy(b + 2, qs, kQK);
    }
}

void quantize_ref_q8_1(const float * x, void * dst, int64_t n) {
    uint8_t * b = static_cast<uint8_t *>(dst);
    for (int64_t i = 0; i < n / kQK; ++i, x += kQK, b += kSizeQ8_1) {
        int8_t qs[kQK];
        const float d = quantize_block_q8(x, qs);
        int sum = 0;
        for (int j = 0; j < kQK; ++j) sum += qs[j];
        put_half(b, d);
        put_half(b + 2, sum * d);
        std::memcpy(b + 4, qs, kQK);
    }
}

// ---------------------------------------------------------------------------
// Search helpers (docs/quant-formats.md)
// ---------------------------------------------------------------------------

float make_qx_quants(int n, int nmax, const float * x, int8_t * L, int rmse_type, const float * qw) {
    float max = 0.0f, amax = 0.0f;
    for (int i = 0; i < n; ++i) {
        const float ax = std::fabs(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < 1e-15f) {  // all (nearly) zero
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.0f;
    }
    auto clampq = [nmax](int l) { return max_of(-nmax, min_of(nmax - 1, l)); };
    auto weight = [&](int i) -> float {
        if (qw) return qw[i];
        switch (rmse_type) {
            case 1: return x[i] * x[i];
            case 2: return 1.0f;
            case 3: return std::fabs(x[i]);
            default: return std::sqrt(std::fabs(x[i]));
        }
    };
    float iscale = static_cast<float>(-nmax) / max;
    if (rmse_type == 0) {
        for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(nmax + clampq(nearest_int(iscale * x[i])));
        return 1 / iscale;
    }
    bool return_early = false;
    if (rmse_type < 0) {
        rmse_type = -rmse_type;
        return_early = true;
    }
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; ++i) {
        const int l = clampq(nearest_int(iscale * x[i]));
        L[i] = static_cast<int8_t>(l + nmax);
        const float w = weight(i);
        sumlx += w * x[i] * static_cast<float>(l);
        suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    if (return_early) return suml2 > 0 ? 0.5f * (scale + 1 / iscale) : 1 / iscale;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
        sumlx = suml2 = 0.0f;
        for (int i = 0; i < n; ++i) {
            const int l = clampq(nearest_int(iscale * x[i]));
            const float w = weight(i);
            sumlx += w * x[i] * static_cast<float>(l);
            suml2 += w * static_cast<float>(l) * static_cast<float>(l);
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(nmax + clampq(nearest_int(iscale * x[i])));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

float make_qkx3_quants(int n, int nmax, const float * x, const float * weights, uint8_t * L,
                       float * the_min, uint8_t * Laux, float rmin, float rdelta, int nstep, bool use_mad) {
    auto weight = [&](int i) -> float { return weights ? weights[i] : x[i] * x[i]; };
    auto clampq = [nmax](int l) { return max_of(0, min_of(nmax, l)); };
    float min = x[0], max = x[0];
    float sum_w = weight(0);
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weight(i);
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max <= min) {
        std::memset(L, 0, static_cast<size_t>(n));
        *the_min = -min;
        return 0.0f;
    }
    float iscale = static_cast<float>(nmax) / (max - min);
    float scale = 1 / iscale;
    float best_err = 0.0f;
    for (int i = 0; i < n; ++i) {
        L[i] = static_cast<uint8_t>(clampq(nearest_int(iscale * (x[i] - min))));
        float diff = scale * static_cast<float>(L[i]) + min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        best_err += weight(i) * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; ++is) {
        // min changes whenever a candidate wins, and later candidates use the new one (as ggml).
        iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int i = 0; i < n; ++i) {
            const int l = clampq(nearest_int(iscale * (x[i] - min)));
            Laux[i] = static_cast<uint8_t>(l);
            const float w = weight(i);
            const float fl = static_cast<float>(l);
            sum_l += w * fl;
            sum_l2 += w * fl * fl;
            sum_xl += w * fl * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float err = 0.0f;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * static_cast<float>(Laux[i]) + this_min - x[i];
                diff = use_mad ? std::fabs(diff) : diff * diff;
                err += weight(i) * diff;
            }
            if (err < best_err) {
                std::memcpy(L, Laux, static_cast<size_t>(n));
                best_err = err;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

// ---------------------------------------------------------------------------
// Importance-weighted encoders (ggml's quantize_row_*_impl), one row each
// ---------------------------------------------------------------------------

namespace {

// sigma2 of the row: sequential sum of squares over the whole row / n.
inline float row_sigma2(const float * x, int64_t n_per_row) {
    float sum_x2 = 0.0f;
    for (int64_t j = 0; j < n_per_row; ++j) sum_x2 += x[j] * x[j];
    return sum_x2 / static_cast<float>(n_per_row);
}

inline void block_weights(const float * xb, const float * qw, float sigma2, float * w) {
    for (int j = 0; j < kQK; ++j) w[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
}

void impl_row_q4_0(const float * x, uint8_t * b, int64_t n_per_row, const float * qw) {
    const float sigma2 = row_sigma2(x, n_per_row);
    float w[kQK];
    int8_t L[kQK];
    for (int64_t ib = 0; ib < n_per_row / kQK; ++ib, b += kSizeQ4_0) {
        block_weights(x + kQK * ib, qw + kQK * ib, sigma2, w);
        const float d = make_qx_quants(kQK, 8, x + kQK * ib, L, 1, w);
        put_half(b, d);
        for (int j = 0; j < 16; ++j) b[2 + j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
    }
}

void impl_row_q5_0(const float * x, uint8_t * b, int64_t n_per_row, const float * qw) {
    const float sigma2 = row_sigma2(x, n_per_row);
    float w[kQK];
    int8_t L[kQK];
    uint8_t q[kQK];
    for (int64_t ib = 0; ib < n_per_row / kQK; ++ib, b += kSizeQ5_0) {
        block_weights(x + kQK * ib, qw + kQK * ib, sigma2, w);
        const float d = make_qx_quants(kQK, 16, x + kQK * ib, L, 1, w);
        put_half(b, d);
        for (int j = 0; j < kQK; ++j) q[j] = static_cast<uint8_t>(L[j]);
        uint32_t qh;
        pack5(q, b + 6, &qh);
        store_u32(b + 2, qh);
    }
}

void impl_row_q4_1(const float * x, uint8_t * b, int64_t n_per_row, const float * qw) {
    const float sigma2 = row_sigma2(x, n_per_row);
    float w[kQK];
    uint8_t L[kQK], Laux[kQK];
    for (int64_t ib = 0; ib < n_per_row / kQK; ++ib, b += kSizeQ4_1) {
        block_weights(x + kQK * ib, qw + kQK * ib, sigma2, w);
        float min;
        const float d = make_qkx3_quants(kQK, 15, x + kQK * ib, w, L, &min, Laux, -0.9f, 0.05f, 36, false);
        put_half(b, d);
        put_half(b + 2, -min);
        for (int j = 0; j < 16; ++j) b[4 + j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
    }
}

void impl_row_q5_1(const float * x, uint8_t * b, int64_t n_per_row, const float * qw) {
    const float sigma2 = row_sigma2(x, n_per_row);
    float w[kQK];
    uint8_t L[kQK], Laux[kQK];
    for (int64_t ib = 0; ib < n_per_row / kQK; ++ib, b += kSizeQ5_1) {
        block_weights(x + kQK * ib, qw + kQK * ib, sigma2, w);
        float min;
        const float d = make_qkx3_quants(kQK, 31, x + kQK * ib, w, L, &min, Laux, -0.9f, 0.05f, 36, false);
        put_half(b, d);
        put_half(b + 2, -min);
        uint32_t qh;
        pack5(L, b + 8, &qh);
        store_u32(b + 4, qh);
    }
}

using RefFn = void (*)(const float *, void *, int64_t);
using ImplFn = void (*)(const float *, uint8_t *, int64_t, const float *);

// ggml_quantize_chunk: the reference encoder over everything without an
// imatrix, else the weighted encoder row by row.
inline size_t chunk(RefFn ref, ImplFn impl, size_t block_bytes, const float * src, void * dst,
                    int64_t nrows, int64_t n_per_row, const float * imatrix) {
    const size_t row_bytes = static_cast<size_t>(n_per_row / kQK) * block_bytes;
    if (!imatrix || !impl) {
        ref(src, dst, nrows * n_per_row);
    } else {
        uint8_t * out = static_cast<uint8_t *>(dst);
        for (int64_t r = 0; r < nrows; ++r) impl(src + r * n_per_row, out + r * row_bytes, n_per_row, imatrix);
    }
    return static_cast<size_t>(nrows) * row_bytes;
}

}  // namespace

size_t quantize_q4_0(const float * src, void * dst, int64_t nrows, int64_t n_per_row, const float * imatrix) {
    return chunk(quantize_ref_q4_0, impl_row_q4_0, kSizeQ4_0, src, dst, nrows, n_per_row, imatrix);
}
size_t quantize_q4_1(const float * src, void * dst, int64_t nrows, int64_t n_per_row, const float * imatrix) {
    return chunk(quantize_ref_q4_1, impl_row_q4_1, kSizeQ4_1, src, dst, nrows, n_per_row, imatrix);
}
size_t quantize_q5_0(const float * src, void * dst, int64_t nrows, int64_t n_per_row, const float * imatrix) {
    return chunk(quantize_ref_q5_0, impl_row_q5_0, kSizeQ5_0, src, dst, nrows, n_per_row, imatrix);
}
size_t quantize_q5_1(const float * src, void * dst, int64_t nrows, int64_t n_per_row, const float * imatrix) {
    return chunk(quantize_ref_q5_1, impl_row_q5_1, kSizeQ5_1, src, dst, nrows, n_per_row, imatrix);
}
// Q8_0 and Q8_1 have only the reference encoder; importance weights are ignored.
size_t quantize_q8_0(const float * src, void * dst, int64_t nrows, int64_t n_per_row, const float * imatrix) {
    return chunk(quantize_ref_q8_0, nullptr, kSizeQ8_0, src, dst, nrows, n_per_row, imatrix);
}
size_t quantize_q8_1(const float * src, void * dst, int64_t nrows, int64_t n_per_row, const float * imatrix) {
    return chunk(quantize_ref_q8_1, nullptr, kSizeQ8_1, src, dst, nrows, n_per_row, imatrix);
}

}  // namespace sdgo::quant
