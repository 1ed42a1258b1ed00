// type_convert.h — the CPU's fast row conversions for the element types.
//
// The type table (types/types.h) holds the portable scalar functions; these
// are their SIMD versions for one code path, with exactly the same bits. The
// CPU kernels pick them by the backend's code path; host-side work that is
// not tied to a backend (file conversion, weight preparation at load) takes
// the best path of this CPU through host_to_f32 / host_from_f32.
#pragma once

#include "backends/cpu/cpu_features.h"
#include "types/types.h"

namespace sdgo::cpu {

// The decoder for `path`: the SIMD version where this type has one for
// `path` and `path` is compiled in and runnable here, else the scalar one
// (NULL when the type has no decoder).
ToF32Fn to_f32_for(DType t, CodePath path);
// True when to_f32_for(t, path) is a SIMD decoder rather than the scalar one.
bool has_simd_to_f32(DType t, CodePath path);
// The same for encoders (SIMD for f16 and bf16; from_f32_ref otherwise).
FromF32Fn from_f32_for(DType t, CodePath path);
bool has_simd_from_f32(DType t, CodePath path);

// to_f32_for / from_f32_for on the best code path of this CPU (resolved once).
ToF32Fn host_to_f32(DType t);
FromF32Fn host_from_f32(DType t);

}  // namespace sdgo::cpu
