// vec.h — vectorised row kernels for the memory-bound ops (activations and
// softmax), one set per instruction set, all on contiguous f32 rows. Each
// ISA file defines these in its own namespace (ops::avx512, ops::avx2) as
// plain functions; ops pick a set from the backend's code path.
//
// Transcendentals use a polynomial exp (|rel err| < 2e-7 on the range used)
// and, for GELU, the erf approximation of Abramowitz & Stegun 7.1.26
// (|abs err| < 1.5e-7).
#pragma once

#include <cstdint>

namespace sdgo::ops {

struct VecKernels {
    void (*silu)(const float * x, float * y, int64_t n);
    void (*gelu)(const float * x, float * y, int64_t n);       // erf form
    void (*gelu_tanh)(const float * x, float * y, int64_t n);
    void (*quick_gelu)(const float * x, float * y, int64_t n);
    // y = s * x; returns max(y).
    float (*scale_max)(const float * x, float * y, int64_t n, float s);
    // y = exp(y - m) in place; returns the sum of the results.
    float (*exp_sub_sum)(float * y, int64_t n, float m);
    // Norm statistics, accumulated in double.
    double (*sum)(const float * x, int64_t n);
    double (*sumsq_dev)(const float * x, int64_t n, float mean);  // sum (x - mean)^2
    void (*sums_shifted)(const float * x, int64_t n, float k, double * s1, double * s2);  // += sum d, sum d^2; d = x - k
    void (*affine)(const float * x, float * y, int64_t n, float a, float b);              // y = a x + b
};

// The kernels for a code path, or NULL where none are compiled (scalar).
const VecKernels * vec_kernels(int code_path);

#if defined(SDGO_HAVE_AVX512)
namespace avx512 {
void silu(const float * x, float * y, int64_t n);
void gelu(const float * x, float * y, int64_t n);
void gelu_tanh(const float * x, float * y, int64_t n);
void quick_gelu(const float * x, float * y, int64_t n);
float scale_max(const float * x, float * y, int64_t n, float s);
float exp_sub_sum(float * y, int64_t n, float m);
double sum(const float * x, int64_t n);
double sumsq_dev(const float * x, int64_t n, float mean);
void sums_shifted(const float * x, int64_t n, float k, double * s1, double * s2);
void affine(const float * x, float * y, int64_t n, float a, float b);
}  // namespace avx512
#endif
#if defined(SDGO_HAVE_AVX2)
namespace avx2 {
void silu(const float * x, float * y, int64_t n);
void gelu(const float * x, float * y, int64_t n);
void gelu_tanh(const float * x, float * y, int64_t n);
void quick_gelu(const float * x, float * y, int64_t n);
float scale_max(const float * x, float * y, int64_t n, float s);
float exp_sub_sum(float * y, int64_t n, float m);
double sum(const float * x, int64_t n);
double sumsq_dev(const float * x, int64_t n, float mean);
void sums_shifted(const float * x, int64_t n, float k, double * s1, double * s2);
void affine(const float * x, float * y, int64_t n, float a, float b);
}  // namespace avx2
#endif

}  // namespace sdgo::ops
