#include "backends/cpu/vec.h"

#include "backends/cpu/cpu_features.h"

namespace sdgo::ops {

const VecKernels * vec_kernels(int code_path) {
#if defined(SDGO_HAVE_AVX512)
    static const VecKernels k512 = {avx512::silu,      avx512::gelu,      avx512::gelu_tanh,
                                    avx512::quick_gelu, avx512::scale_max, avx512::exp_sub_sum,
                                    avx512::sum,        avx512::sumsq_dev, avx512::sums_shifted,
                                    avx512::affine};
    if (code_path == static_cast<int>(cpu::CodePath::avx512)) return &k512;
#endif
#if defined(SDGO_HAVE_AVX2)
    static const VecKernels k2 = {avx2::silu,       avx2::gelu,      avx2::gelu_tanh,
                                  avx2::quick_gelu, avx2::scale_max, avx2::exp_sub_sum,
                                  avx2::sum,        avx2::sumsq_dev, avx2::sums_shifted,
                                  avx2::affine};
    if (code_path == static_cast<int>(cpu::CodePath::avx2)) return &k2;
#endif
    (void)code_path;
    return nullptr;
}

}  // namespace sdgo::ops
