// conv.h — the two ways the CPU backend runs a 2-D convolution as an
// implicit GEMM; conv2d() in kernels.h picks one from the shape.
#pragma once

#include "backends/cpu/kernels.h"

namespace sdgo::cpu {

enum class ConvStrategy {
    automatic,    // pixel_rows for small outputs (N*OH*OW <= kConvPixelRowsMax), else weight_rows
    weight_rows,  // C[Cout x pixels] = W[Cout x K] * patches: weight converted to f32 once per call,
                  // patch panels packed per block of pixels (best for large images)
    pixel_rows,   // C[pixels x Cout] = patches * W^T: weight panels converted while packing, patch
                  // rows packed per block, output transposed to NCHW (best when the weight is
                  // much larger than the image, e.g. 8x8 or 16x16 latents with 1280 channels)
};

constexpr int64_t kConvPixelRowsMax = 768;

// conv2d() with a chosen strategy (the tests run both).
Status conv2d_strategy(ConvStrategy strategy, ThreadPool & pool, CodePath path, int64_t N, int64_t Cin, int64_t H,
                       int64_t W, const float * src, int64_t Cout, int64_t KH, int64_t KW, const void * weight,
                       DType wtype, const float * bias, int stride_h, int stride_w, int pad_h, int pad_w,
                       float * dst);

}  // namespace sdgo::cpu
