#include "sampling/denoiser.h"

#include <algorithm>
#include <cstring>

namespace sdgo::sampling {

void scale_model_input(Prediction p, float sigma, const float * x, float * x_in, size_t n) {
    const float c_in = denoiser_scalings(p, sigma).c_in;
    for (size_t i = 0; i < n; ++i) x_in[i] = x[i] * c_in;
}

void apply_denoiser(Prediction p, float sigma, const float * x, const float * f, float * d, size_t n) {
    const DenoiserScalings s = denoiser_scalings(p, sigma);
    if (p == Prediction::Eps) {
        for (size_t i = 0; i < n; ++i) {
            const float t = f[i] * s.c_out;
            d[i] = x[i] + t;
        }
    } else {
        for (size_t i = 0; i < n; ++i) {
            const float a = f[i] * s.c_out;
            const float b = x[i] * s.c_skip;
            d[i] = a + b;
        }
    }
}

void cfg_combine(const float * uncond, const float * cond, float scale, float * out, size_t n) {
    if (scale == 1.0f) {
        if (out != cond) std::memmove(out, cond, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; ++i) {
        const float diff = cond[i] - uncond[i];
        const float t = diff * scale;
        out[i] = uncond[i] + t;
    }
}

Status TimestepMap::set_table(const std::vector<float> & sigmas, const std::vector<float> & timesteps) {
    if (timesteps.empty() || sigmas.size() < timesteps.size()) {
        return error(SDGO_ERR_INVALID_ARGUMENT, "timestep table: %zu timesteps for %zu sigmas", timesteps.size(),
                     sigmas.size());
    }
    sigmas_.assign(sigmas.begin(), sigmas.begin() + static_cast<std::ptrdiff_t>(timesteps.size()));
    timesteps_ = timesteps;
    return Status();
}

float TimestepMap::timestep(float sigma) const {
    switch (mode_) {
        case TimestepMode::Quantized: return static_cast<float>(sched_->sigma_to_t_quantized(sigma));
        case TimestepMode::Table:
            for (size_t i = 0; i < sigmas_.size(); ++i) {
                if (sigmas_[i] == sigma) return timesteps_[i];
            }
            return sched_->sigma_to_t(sigma);
        case TimestepMode::Interpolated:
        default: return sched_->sigma_to_t(sigma);
    }
}

}  // namespace sdgo::sampling
