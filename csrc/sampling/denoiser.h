// denoiser.h — the pieces between a noise-prediction network and a sampler:
// the timestep fed to the network for a sigma, the classifier-free guidance
// combination, and D(x, sigma) from the network output.
//
// A pipeline's DenoiseFn for the samplers is, per call (x, sigma):
//   1. s = denoiser_scalings(pred, sigma); x_in = x * s.c_in;
//   2. t = timesteps.timestep(sigma);
//   3. run the network on x_in at t (cond and uncond batched) -> F_c, F_u;
//   4. F = cfg_combine(F_u, F_c, scale);
//   5. D = apply_denoiser(pred, sigma, x, F).
// CFG on the network output (sd.cpp, diffusers) equals CFG on D (A1111) up to
// float rounding, since D is affine in F with the same coefficients.
#pragma once

#include <cstddef>
#include <vector>

#include "base/status.h"
#include "sampling/schedules.h"

namespace sdgo::sampling {

// x_in[i] = x[i] * c_in(sigma).
void scale_model_input(Prediction p, float sigma, const float * x, float * x_in, size_t n);

// D = c_skip * x + c_out * F, with k-diffusion's float32 operation order
// (eps: x + F * c_out; v: F * c_out + x * c_skip).
void apply_denoiser(Prediction p, float sigma, const float * x, const float * model_out, float * d, size_t n);

// out = uncond + scale * (cond - uncond). scale == 1 copies cond.
void cfg_combine(const float * uncond, const float * cond, float scale, float * out, size_t n);

// How the network's timestep is derived from sigma.
enum class TimestepMode : int {
    // k-diffusion / A1111 / sd.cpp: fractional t by log-sigma interpolation.
    Interpolated = 0,
    // A1111 "quantization" / sgm: the nearest table index.
    Quantized = 1,
    // diffusers: the scheduler's own timestep for each of its sigmas (set
    // with set_table); sigmas not in the table fall back to Interpolated.
    Table = 2,
};

class TimestepMap {
public:
    TimestepMap(const NoiseSchedule * sched, TimestepMode mode) : sched_(sched), mode_(mode) {}
    // For TimestepMode::Table: timesteps[i] belongs to sigmas[i] (extra
    // trailing sigmas, such as the final 0, are ignored).
    Status set_table(const std::vector<float> & sigmas, const std::vector<float> & timesteps);
    float timestep(float sigma) const;
    TimestepMode mode() const { return mode_; }

private:
    const NoiseSchedule * sched_;
    TimestepMode mode_;
    std::vector<float> sigmas_, timesteps_;
};

}  // namespace sdgo::sampling
