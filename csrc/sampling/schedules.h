// schedules.h — the SD noise schedule, the denoiser scalings, sigma <-> timestep
// mapping, sigma schedules for samplers, and the img2img step mapping.
//
// Conventions (k-diffusion "VE" form): a latent at noise level sigma is
// x = x0 + sigma * eps. The sampler schedules here are descending lists of
// n + 1 sigmas whose last entry is 0 (k-diffusion's append_zero).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace sdgo::sampling {

// ---- The discrete training schedule ----------------------------------------------

// How alphas_cumprod is computed.
enum class ScheduleTable : int {
    // LDM / sgm / A1111 / k-diffusion: betas and the cumulative product in
    // float64, alphas_cumprod stored as float32 (the default).
    Ldm = 0,
    // diffusers: betas and the cumulative product in float32.
    Diffusers = 1,
};

// The 1000-step "scaled_linear" schedule of SD 1.x/2.x/XL and its sigmas.
class NoiseSchedule {
public:
    static constexpr int kTrainSteps = 1000;

    // beta_t = (sqrt(beta_start) + (sqrt(beta_end) - sqrt(beta_start)) * t / 999)^2.
    explicit NoiseSchedule(ScheduleTable table = ScheduleTable::Ldm, double beta_start = 0.00085,
                           double beta_end = 0.012);
    // From a checkpoint's own alphas_cumprod (1000 values in (0, 1)).
    static Status from_alphas_cumprod(const std::vector<float> & alphas_cumprod, NoiseSchedule * out);

    const std::vector<float> & alphas_cumprod() const { return alphas_cumprod_; }
    // sigma_t = sqrt((1 - abar_t) / abar_t), float32, ascending in t.
    const std::vector<float> & sigmas() const { return sigmas_; }
    const std::vector<float> & log_sigmas() const { return log_sigmas_; }
    float sigma_min() const { return sigmas_.front(); }
    float sigma_max() const { return sigmas_.back(); }

    // k-diffusion DiscreteSchedule.sigma_to_t: fractional timestep by linear
    // interpolation of log sigma (clamped to [0, 999]).
    float sigma_to_t(float sigma) const;
    // k-diffusion DiscreteSchedule.t_to_sigma: exp of the linearly
    // interpolated log sigma at fractional t in [0, 999].
    float t_to_sigma(float t) const;
    // The timestep whose log sigma is nearest (A1111 "quantization" / sgm).
    int sigma_to_t_quantized(float sigma) const;

private:
    NoiseSchedule(int) {}
    void finish();
    std::vector<float> alphas_cumprod_;
    std::vector<float> sigmas_;
    std::vector<float> log_sigmas_;
};

// ---- Denoiser scalings --------------------------------------------------------------

enum class Prediction : int { Eps = 0, V = 1 };
Status parse_prediction(const std::string & name, Prediction * out);
const char * prediction_name(Prediction p);

// D(x, sigma) = c_skip * x + c_out * F(c_in * x, t(sigma)).
struct DenoiserScalings {
    float c_skip;
    float c_out;
    float c_in;
};
DenoiserScalings denoiser_scalings(Prediction p, float sigma);

// ---- Sampler sigma schedules --------------------------------------------------------

enum class Scheduler : int {
    Discrete = 0,     // k-diffusion get_sigmas: t = linspace(999, 0, n)
    Karras = 1,       // rho = 7 between sigma_min and sigma_max
    Exponential = 2,  // linear in log sigma
    SgmUniform = 3,   // t = linspace(t(sigma_max), t(sigma_min), n + 1)[:-1]
    Simple = 4,       // table sigmas at t = 999 - floor(i * 1000 / n)
    DdimUniform = 5,  // A1111 ddim_uniform: table sigmas at 1, 1 + k, ... (k = 1000 / n), reversed
    Lcm = 6,          // LCM: t = (50 - floor(i * 50 / n)) * 20 - 1
};
Status parse_scheduler(const std::string & name, Scheduler * out);
const char * scheduler_name(Scheduler s);
// Every scheduler, in the order above.
std::vector<Scheduler> scheduler_types();

// n + 1 sigmas (descending, last = 0) for 1 <= n <= 10000 steps (simple: at
// most 1000, lcm: at most 50; ddim_uniform can return more than n + 1, as in
// A1111). sigma_min/sigma_max of Karras/Exponential are the table's ends.
// Float32 arithmetic in k-diffusion's / A1111's order: within 1e-6 relative
// of the references (tests).
Status make_sigmas(const NoiseSchedule & sched, Scheduler s, int n, std::vector<float> * out);

// A1111's "discard next-to-last sigma" (its default for DPM2 / DPM2 a): build
// the schedule for n + 1 steps, then call this to get n steps. Needs at least
// 3 entries.
Status discard_next_to_last_sigma(std::vector<float> * sigmas);

// diffusers' timestep spacings for Euler/Euler-a/DPM-Solver (VP) schedulers.
enum class TimestepSpacing : int { Linspace = 0, Leading = 1, Trailing = 2 };
Status parse_timestep_spacing(const std::string & name, TimestepSpacing * out);

// A diffusers-style schedule: n timesteps (descending; what the U-Net is
// given) and n + 1 sigmas (the last is 0). Sigmas are linear interpolations
// of the table's sigmas at the timesteps (diffusers' interpolation_type
// "linear"), computed in double and rounded to float32, as diffusers does.
struct DiffusersSchedule {
    std::vector<float> timesteps;
    std::vector<float> sigmas;
};
// EulerDiscreteScheduler / EulerAncestralDiscreteScheduler.set_timesteps(n).
// `sched` should be built with ScheduleTable::Diffusers to match diffusers.
Status diffusers_euler_schedule(const NoiseSchedule & sched, int n, TimestepSpacing spacing,
                                int steps_offset, DiffusersSchedule * out);
// DPMSolverMultistepScheduler.set_timesteps(n) (no Karras sigmas,
// final_sigmas_type "zero").
Status diffusers_dpmsolver_schedule(const NoiseSchedule & sched, int n, TimestepSpacing spacing,
                                    int steps_offset, DiffusersSchedule * out);

// ---- Initial latent ------------------------------------------------------------------

// x_start = noise * initial_noise_scale(...):
//   k-diffusion / A1111 / sd.cpp                     sigma_first
//   diffusers Euler(-a), linspace/trailing spacing   sigma_first
//   diffusers Euler(-a), leading spacing; sgm        sqrt(sigma_first^2 + 1)
//   diffusers VP schedulers (DDIM, DPM-Solver)       1 in VP units, i.e.
//       sqrt(sigma_first^2 + 1) in the VE units our samplers use.
enum class NoiseInit : int { Sigma = 0, SqrtSigmaSqPlusOne = 1 };
float initial_noise_scale(NoiseInit mode, float sigma_first);

// ---- img2img strength -> steps ----------------------------------------------------------

// The two conventions for "denoising strength" s in (0, 1] with n steps:
//
//  A1111 / stable-diffusion.cpp: build the full n-step schedule and run its
//    last t_enc + 1 steps, t_enc = floor(min(s, 0.999) * n) (sd.cpp:
//    floor(s * n), minus one if that is n — the same for n < 1000), i.e. start
//    at sigma index n - t_enc - 1. n = 20, s = 0.75 -> 16 steps from sigma[4].
//  diffusers: init_timestep = min(floor(n * s), n), start index
//    n - init_timestep, so floor(n * s) steps: 15 steps from sigma[5] in the
//    example. One step fewer than A1111 for the same (n, s), and none at all
//    when n * s < 1 (an error here, as in diffusers).
//
// Both then start from x = init_latent + noise * sigma[start] (for Euler-type
// schedulers; diffusers VP schedulers use sqrt(abar) * init + sqrt(1 - abar) *
// noise, which is the same point in VE units up to the VP scale).
enum class Img2ImgMode : int { A1111 = 0, Diffusers = 1 };
struct Img2ImgPlan {
    int start_index = 0;  // first sigma of the full (n + 1)-entry schedule to use
    int steps = 0;        // sampler steps actually run (schedule entries used: steps + 1)
};
Status img2img_plan(int n, double strength, Img2ImgMode mode, Img2ImgPlan * out);

}  // namespace sdgo::sampling
