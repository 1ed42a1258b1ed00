// gemm_micro.h — the per-instruction-set pieces under the CPU kernels:
// register-tiled GEMM micro-kernels, conversions used while packing, the
// online-softmax step of attention and the FMA peak loop.
//
// Each variant lives in its own translation unit (kernels_scalar.cpp,
// kernels_avx2.cpp, kernels_avx512.cpp, kernels_neon.cpp) and fills a KernelSet of plain
// function pointers; the drivers in kernels.cpp are shared by all of them.
// Keep this header free of inline functions (see the rules about ISA files).
#pragma once

#include <cstdint>

namespace sdgo::cpu {

// C[i, j] for i < mr, j < nr:
//   acc = sum_{k < kc} a[i*lda + k] * bp[k*NR + j]      (k in increasing order)
//   C = acc (+ C if load_c) (+ bias_row[i] if bias_row) (+ bias_col[j] if bias_col)
// bp is a packed panel of kc rows of NR floats, 64-byte aligned, zero padded
// beyond nr. Rows i >= mr of `a` are never read. 1 <= mr <= MR, 1 <= nr <= NR.
// The arithmetic for one element does not depend on mr or nr, so results do
// not depend on how the output was tiled among threads.
using UKernelFn = void (*)(int64_t kc, const float * a, int64_t lda, int mr, const float * bp, int nr, float * c,
                           int64_t ldc, int load_c, const float * bias_row, const float * bias_col);

// dst[k*NR + j] = src[j*lds + k] for j < nr, k < kc; zero for nr <= j < NR.
using PackTransFn = void (*)(const float * src, int64_t lds, int nr, int64_t kc, float * dst, int NR);
// dst[j*NR + d] = src[j*lds + d] for d < nd, zero for nd <= d < NR, j < rows.
// Same as PackTransFn with f16 source rows (lds in elements).
using PackTransF16Fn = void (*)(const uint16_t * src, int64_t lds, int nr, int64_t kc, float * dst, int NR);
using PackRowsFn = void (*)(const float * src, int64_t lds, int64_t rows, int nd, float * dst, int NR);

using HalfToF32Fn = void (*)(const uint16_t * src, float * dst, int64_t n);

// One online-softmax step over a tile of raw scores S (rows x cols, row
// stride lds). For row r only the first valid[r] columns take part (0 <=
// valid[r] <= cols). With x = scale*s: on return S holds p = exp(x - m_new)
// (0 outside the valid columns, up to cols), m[r] the new running max of x,
// l[r] the running sum rescaled, and alpha[r] = exp(m_old - m_new), the
// factor for the row's earlier output (1 when nothing has been seen yet).
using SoftmaxStepFn = void (*)(float * S, int64_t lds, int rows, int cols, const int * valid, float scale, float * m,
                               float * l, float * alpha);

// Runs `iters` iterations of independent FMAs and returns the flop count.
using FmaLoopFn = double (*)(int64_t iters);

struct KernelSet {
    int mr = 0;
    int nr = 0;
    UKernelFn ukernel = nullptr;
    PackTransFn pack_trans = nullptr;
    PackTransF16Fn pack_trans_f16 = nullptr;  // optional
    PackRowsFn pack_rows = nullptr;
    HalfToF32Fn f16_to_f32 = nullptr;
    HalfToF32Fn bf16_to_f32 = nullptr;
    SoftmaxStepFn softmax_step = nullptr;
    FmaLoopFn fma_loop = nullptr;
};

namespace scalar_isa {
void get_kernels(KernelSet * ks);
}
#if defined(SDGO_HAVE_AVX2)
namespace avx2_isa {
void get_kernels(KernelSet * ks);
}
#endif
#if defined(SDGO_HAVE_AVX512)
namespace avx512_isa {
void get_kernels(KernelSet * ks);
}
#endif
#if defined(SDGO_HAVE_NEON)
namespace neon_isa {
void get_kernels(KernelSet * ks);
}
#endif

}  // namespace sdgo::cpu
