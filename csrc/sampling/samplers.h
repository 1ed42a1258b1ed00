// samplers.h — k-diffusion style samplers over a denoiser callback.
//
// The sampler works in k-diffusion's "VE" units: x = x0 + sigma * noise. The
// caller supplies D(x, sigma) (the pipeline implements it with the U-Net, the
// denoiser scalings of schedules.h and CFG) and a descending sigma schedule
// whose last entry is normally 0. Update rules, operation order and float32
// arithmetic follow crowsonkb/k-diffusion's sampling.py:
//
//   euler       x += d * (s[i+1] - s[i]),  d = (x - D(x, s[i])) / s[i]
//   euler_a     ancestral Euler: step to sigma_down, add noise * sigma_up
//   heun        2nd-order Heun (Euler on the last step)
//   dpm2        DPM-Solver-2 with a log-space midpoint (Euler on the last step)
//   dpm++2s_a   DPM-Solver++(2S) ancestral
//   dpm++2m     DPM-Solver++(2M)
//   lcm         x = D(x, s[i]), then + noise * s[i+1] when s[i+1] > 0
//   ddim        DDIM with eta in VE form; for eta = 0 (the default) exactly
//               deterministic DDIM, which in sigma space is an Euler step. With
//               eta > 0 its noise term equals the ancestral step's, so this is
//               stable-diffusion.cpp's "ddim_trailing" (use it with the
//               `simple` scheduler for diffusers' "trailing" timesteps). It is
//               not diffusers' DDIMScheduler bit for bit: that one works in VP
//               units, starts from unit-variance noise and ends at sigma_min
//               (set_alpha_to_one = False); see the tests for the mapping.
//
// Noise (euler_a, dpm++2s_a, lcm, ddim with eta > 0) is drawn from the Rng as
// one randn(n) call per step, only for steps whose next sigma is > 0 — the
// order of k-diffusion's default noise sampler (torch.randn_like), so a run
// with the same generator stream after the initial noise matches k-diffusion.
// (k-diffusion 0.1.1's euler/heun/dpm2 also draw an unused randn_like per
// step; that changes nothing for a single image and is not reproduced.)
//
// Batches: the sampler treats x as one flat buffer, so a batch of B latents
// can be sampled in one run (n = B * C * H * W, the denoiser evaluating all B
// at once). diffusers-compatible: noise from one generator for the whole
// buffer (the Rng overload). A1111/sd.cpp-compatible: image b's noise from its
// own generator seeded with seed + b (batch_noise()), which gives each image
// exactly what a single-image run with that seed gives.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "sampling/rng.h"

namespace sdgo::sampling {

enum class SamplerType : int {
    Euler = 0,
    EulerA = 1,
    Heun = 2,
    Dpm2 = 3,
    Dpmpp2sA = 4,
    Dpmpp2m = 5,
    Lcm = 6,
    Ddim = 7,
};
// Names: euler, euler_a, heun, dpm2, dpm++2s_a, dpm++2m, lcm, ddim
// (also accepted: euler_ancestral, dpmpp_2s_a, dpmpp_2s_ancestral, dpmpp_2m,
// dpm++2m, ddim_trailing).
Status parse_sampler(const std::string & name, SamplerType * out);
const char * sampler_name(SamplerType s);
// Every sampler, in the order above (canonical names via sampler_name).
std::vector<SamplerType> sampler_types();
// Whether the sampler draws noise after the initial latent.
bool sampler_is_stochastic(SamplerType s, float eta);
// Model evaluations the sampler makes for an (n + 1)-entry schedule.
int sampler_model_calls(SamplerType s, const std::vector<float> & sigmas);

// D(x, sigma) -> out (all n floats). Return a non-OK Status to abort.
using DenoiseFn = std::function<Status(const float * x, float sigma, float * out)>;
// Called after each finished step (step = 1..total); return false to cancel.
using StepFn = std::function<bool(int step, int total)>;

struct SamplerOptions {
    // Ancestral eta; negative means the sampler's default (1 for euler_a and
    // dpm++2s_a, 0 for ddim; unused by the others).
    float eta = -1.0f;
    float s_noise = 1.0f;
};

// Fills out[0..n) with standard normals (one ancestral noise draw).
using NoiseFn = std::function<void(float * out, size_t n)>;

// Noise for a batch of rngs.size() equal-sized latents laid out one after the
// other: image b's slice comes from rngs[b] (one randn call per image and
// draw). n must be a multiple of the batch size (checked by sample()). The
// generators must outlive the returned function.
NoiseFn batch_noise(const std::vector<Rng *> & rngs);

// Runs the sampler in place on x[0..n) over `sigmas` (at least 2 entries,
// finite, non-negative, non-increasing, first > 0). `rng` may be null only for
// deterministic samplers. Errors: SDGO_ERR_INVALID_ARGUMENT for a bad schedule
// or a missing rng, SDGO_ERR_CANCELED when `progress` returns false (x then
// holds the last finished step), and SDGO_ERR_INTERNAL naming the step when
// the denoiser returns NaN or infinity (or the update produces it).
Status sample(SamplerType type, const DenoiseFn & denoise, const std::vector<float> & sigmas, float * x,
              size_t n, Rng * rng, const SamplerOptions & opts = SamplerOptions(),
              const StepFn & progress = StepFn());
// The same with an explicit noise source (may be empty for deterministic
// samplers); `noise_batch` is the number of equal slices the source expects
// (1 for a single generator), checked against n.
Status sample(SamplerType type, const DenoiseFn & denoise, const std::vector<float> & sigmas, float * x,
              size_t n, const NoiseFn & noise, size_t noise_batch, const SamplerOptions & opts = SamplerOptions(),
              const StepFn & progress = StepFn());

// k-diffusion's get_ancestral_step (float32): the sigma to step down to and
// the noise to add. eta = 0 gives (sigma_to, 0).
void ancestral_step(float sigma_from, float sigma_to, float eta, float * sigma_down, float * sigma_up);

}  // namespace sdgo::sampling
