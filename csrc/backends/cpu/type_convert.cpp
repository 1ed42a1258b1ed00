#include "backends/cpu/type_convert.h"

#include "backends/cpu/convert_simd.h"

namespace sdgo::cpu {

namespace {

ToF32Fn simd_decoder(DType t, CodePath path) {
#if defined(SDGO_HAVE_AVX2)
    if (path == CodePath::avx2) {
        switch (t) {
            case DType::f16: return types_avx2::f16_to_f32;
            case DType::bf16: return types_avx2::bf16_to_f32;
            case DType::q4_0: return types_avx2::q4_0_to_f32;
            case DType::q4_1: return types_avx2::q4_1_to_f32;
            case DType::q5_0: return types_avx2::q5_0_to_f32;
            case DType::q5_1: return types_avx2::q5_1_to_f32;
            case DType::q8_0: return types_avx2::q8_0_to_f32;
            default: return nullptr;
        }
    }
#endif
#if defined(SDGO_HAVE_AVX512)
    if (path == CodePath::avx512) {
        switch (t) {
            case DType::f16: return types_avx512::f16_to_f32;
            case DType::bf16: return types_avx512::bf16_to_f32;
            case DType::q4_0: return types_avx512::q4_0_to_f32;
            case DType::q4_1: return types_avx512::q4_1_to_f32;
            case DType::q5_0: return types_avx512::q5_0_to_f32;
            case DType::q5_1: return types_avx512::q5_1_to_f32;
            case DType::q8_0: return types_avx512::q8_0_to_f32;
            default: return nullptr;
        }
    }
#endif
    (void)t;
    (void)path;
    return nullptr;
}

FromF32Fn simd_encoder(DType t, CodePath path) {
#if defined(SDGO_HAVE_AVX2)
    if (path == CodePath::avx2) {
        if (t == DType::f16) return types_avx2::f32_to_f16;
        if (t == DType::bf16) return types_avx2::f32_to_bf16;
    }
#endif
#if defined(SDGO_HAVE_AVX512)
    if (path == CodePath::avx512) {
        if (t == DType::f16) return types_avx512::f32_to_f16;
        if (t == DType::bf16) return types_avx512::f32_to_bf16;
    }
#endif
    (void)t;
    (void)path;
    return nullptr;
}

struct HostTable {
    ToF32Fn to[kDTypeIdLimit] = {};
    FromF32Fn from[kDTypeIdLimit] = {};
    HostTable() {
        const CodePath best = best_code_path();
        for (int32_t v = 0; v < kDTypeIdLimit; ++v) {
            to[v] = to_f32_for(static_cast<DType>(v), best);
            from[v] = from_f32_for(static_cast<DType>(v), best);
        }
    }
};

const HostTable & host_table() {
    static const HostTable t;
    return t;
}

}  // namespace

bool has_simd_to_f32(DType t, CodePath path) { return code_path_runnable(path) && simd_decoder(t, path) != nullptr; }

ToF32Fn to_f32_for(DType t, CodePath path) {
    if (code_path_runnable(path)) {
        if (ToF32Fn f = simd_decoder(t, path)) return f;
    }
    const TypeTraits * tr = type_traits(t);
    return tr ? tr->to_f32 : nullptr;
}

FromF32Fn from_f32_for(DType t, CodePath path) {
    if (code_path_runnable(path)) {
        if (FromF32Fn f = simd_encoder(t, path)) return f;
    }
    const TypeTraits * tr = type_traits(t);
    return tr ? tr->from_f32_ref : nullptr;
}

bool has_simd_from_f32(DType t, CodePath path) {
    return code_path_runnable(path) && simd_encoder(t, path) != nullptr;
}

ToF32Fn host_to_f32(DType t) {
    const int32_t v = static_cast<int32_t>(t);
    return v >= 0 && v < kDTypeIdLimit ? host_table().to[v] : nullptr;
}

FromF32Fn host_from_f32(DType t) {
    const int32_t v = static_cast<int32_t>(t);
    return v >= 0 && v < kDTypeIdLimit ? host_table().from[v] : nullptr;
}

}  // namespace sdgo::cpu
