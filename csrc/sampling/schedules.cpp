#include "sampling/schedules.h"

#include <algorithm>
#include <cmath>

namespace sdgo::sampling {

// ---- NoiseSchedule --------------------------------------------------------------------

NoiseSchedule::NoiseSchedule(ScheduleTable table, double beta_start, double beta_end) {
    alphas_cumprod_.resize(kTrainSteps);
    if (table == ScheduleTable::Ldm) {
        // float64 throughout (torch.linspace(..., dtype=float64) ** 2, numpy
        // cumprod), rounded to float32 at the end.
        const double s0 = std::sqrt(beta_start), s1 = std::sqrt(beta_end);
        const double step = (s1 - s0) / (kTrainSteps - 1);
        double prod = 1.0;
        for (int t = 0; t < kTrainSteps; ++t) {
            // torch.linspace: start + step * i for the first half, end - step *
            // (n - 1 - i) for the second.
            const double r = t < kTrainSteps / 2 ? s0 + step * t : s1 - step * (kTrainSteps - 1 - t);
            const double beta = r * r;
            prod *= 1.0 - beta;
            alphas_cumprod_[t] = static_cast<float>(prod);
        }
    } else {
        // diffusers: torch.linspace(sqrt(b0), sqrt(b1), 1000, float32) ** 2,
        // alphas = 1 - betas in float32, torch.cumprod of float32 (which on
        // the CPU accumulates in double and stores each partial product as
        // float32).
        const float s0 = static_cast<float>(std::sqrt(beta_start));
        const float s1 = static_cast<float>(std::sqrt(beta_end));
        const float step = (s1 - s0) / static_cast<float>(kTrainSteps - 1);
        double prod = 1.0;
        for (int t = 0; t < kTrainSteps; ++t) {
            const float r = t < kTrainSteps / 2 ? s0 + step * static_cast<float>(t)
                                                : s1 - step * static_cast<float>(kTrainSteps - 1 - t);
            const float beta = r * r;
            prod *= static_cast<double>(1.0f - beta);
            alphas_cumprod_[t] = static_cast<float>(prod);
        }
    }
    finish();
}

Status NoiseSchedule::from_alphas_cumprod(const std::vector<float> & ac, NoiseSchedule * out) {
    if (ac.size() != static_cast<size_t>(kTrainSteps)) {
        return error(SDGO_ERR_INVALID_ARGUMENT, "alphas_cumprod has %zu entries, expected %d", ac.size(),
                     kTrainSteps);
    }
    for (size_t i = 0; i < ac.size(); ++i) {
        if (!(ac[i] > 0.0f && ac[i] < 1.0f)) {
            return error(SDGO_ERR_INVALID_ARGUMENT, "alphas_cumprod[%zu] = %g is not in (0, 1)", i,
                         static_cast<double>(ac[i]));
        }
        if (i > 0 && !(ac[i] < ac[i - 1])) {
            return error(SDGO_ERR_INVALID_ARGUMENT, "alphas_cumprod is not strictly decreasing at %zu", i);
        }
    }
    NoiseSchedule s(0);
    s.alphas_cumprod_ = ac;
    s.finish();
    *out = std::move(s);
    return Status();
}

void NoiseSchedule::finish() {
    sigmas_.resize(alphas_cumprod_.size());
    log_sigmas_.resize(alphas_cumprod_.size());
    for (size_t i = 0; i < alphas_cumprod_.size(); ++i) {
        const float a = alphas_cumprod_[i];
        sigmas_[i] = std::sqrt((1.0f - a) / a);
        log_sigmas_[i] = std::log(sigmas_[i]);
    }
}

float NoiseSchedule::sigma_to_t(float sigma) const {
    const float ls = std::log(sigma);
    const int n = static_cast<int>(log_sigmas_.size());
    // low = last index with log_sigmas[i] <= ls (0 if none), at most n - 2.
    int low = 0;
    for (int i = 0; i < n; ++i) {
        if (ls - log_sigmas_[i] >= 0.0f) low = i;
        else break;
    }
    low = std::min(low, n - 2);
    const int high = low + 1;
    const float lo = log_sigmas_[low], hi = log_sigmas_[high];
    float w = (lo - ls) / (lo - hi);
    w = std::min(1.0f, std::max(0.0f, w));
    return (1.0f - w) * static_cast<float>(low) + w * static_cast<float>(high);
}

float NoiseSchedule::t_to_sigma(float t) const {
    const int n = static_cast<int>(log_sigmas_.size());
    t = std::min(static_cast<float>(n - 1), std::max(0.0f, t));
    const int lo = static_cast<int>(std::floor(t));
    const int hi = static_cast<int>(std::ceil(t));
    const float w = t - std::trunc(t);
    const float ls = (1.0f - w) * log_sigmas_[lo] + w * log_sigmas_[hi];
    return std::exp(ls);
}

int NoiseSchedule::sigma_to_t_quantized(float sigma) const {
    const float ls = std::log(sigma);
    int best = 0;
    float best_d = std::fabs(ls - log_sigmas_[0]);
    for (size_t i = 1; i < log_sigmas_.size(); ++i) {
        const float d = std::fabs(ls - log_sigmas_[i]);
        if (d < best_d) {
            best_d = d;
            best = static_cast<int>(i);
        }
    }
    return best;
}

// ---- Denoiser scalings ------------------------------------------------------------------

Status parse_prediction(const std::string & name, Prediction * out) {
    if (name == "eps" || name == "epsilon") {
        *out = Prediction::Eps;
        return Status();
    }
    if (name == "v" || name == "v_prediction") {
        *out = Prediction::V;
        return Status();
    }
    return error(SDGO_ERR_INVALID_ARGUMENT, "unknown prediction type '%s' (expected 'eps' or 'v')",
                 name.c_str());
}

const char * prediction_name(Prediction p) { return p == Prediction::V ? "v" : "eps"; }

DenoiserScalings denoiser_scalings(Prediction p, float sigma) {
    // sigma_data = 1. Same float32 expressions as k-diffusion's
    // DiscreteEpsDDPMDenoiser / DiscreteVDDPMDenoiser.get_scalings.
    const float s2p1 = sigma * sigma + 1.0f;
    const float c_in = 1.0f / std::sqrt(s2p1);
    DenoiserScalings s;
    s.c_in = c_in;
    if (p == Prediction::Eps) {
        s.c_skip = 1.0f;
        s.c_out = -sigma;
    } else {
        s.c_skip = 1.0f / s2p1;
        s.c_out = -sigma / std::sqrt(s2p1);
    }
    return s;
}

// ---- Sampler schedules -----------------------------------------------------------------

namespace {

struct NameEntry {
    const char * name;
    Scheduler value;
};
const NameEntry kSchedulerNames[] = {
    {"discrete", Scheduler::Discrete},      {"karras", Scheduler::Karras},
    {"exponential", Scheduler::Exponential}, {"sgm_uniform", Scheduler::SgmUniform},
    {"simple", Scheduler::Simple},          {"ddim_uniform", Scheduler::DdimUniform},
    {"lcm", Scheduler::Lcm},
};

// torch.linspace(start, end, steps) for float32.
std::vector<float> linspace_f32(float start, float end, int steps) {
    std::vector<float> out(static_cast<size_t>(steps));
    if (steps == 1) {
        out[0] = start;
        return out;
    }
    const float step = (end - start) / static_cast<float>(steps - 1);
    const int halfway = steps / 2;
    for (int i = 0; i < steps; ++i) {
        out[i] = i < halfway ? start + step * static_cast<float>(i)
                             : end - step * static_cast<float>(steps - i - 1);
    }
    return out;
}

}  // namespace

std::vector<Scheduler> scheduler_types() {
    std::vector<Scheduler> v;
    for (const auto & e : kSchedulerNames) v.push_back(e.value);
    return v;
}

Status parse_scheduler(const std::string & name, Scheduler * out) {
    for (const auto & e : kSchedulerNames) {
        if (name == e.name) {
            *out = e.value;
            return Status();
        }
    }
    // Accepted aliases.
    if (name == "default" || name == "uniform" || name == "automatic") {
        *out = Scheduler::Discrete;
        return Status();
    }
    return error(SDGO_ERR_INVALID_ARGUMENT,
                 "unknown scheduler '%s' (expected discrete, karras, exponential, sgm_uniform, simple, "
                 "ddim_uniform or lcm)",
                 name.c_str());
}

const char * scheduler_name(Scheduler s) {
    for (const auto & e : kSchedulerNames) {
        if (e.value == s) return e.name;
    }
    return "?";
}

Status make_sigmas(const NoiseSchedule & sched, Scheduler s, int n, std::vector<float> * out) {
    if (n < 1) return error(SDGO_ERR_INVALID_ARGUMENT, "steps must be at least 1, got %d", n);
    if (n > 10000) return error(SDGO_ERR_INVALID_ARGUMENT, "steps must be at most 10000, got %d", n);
    const int T = static_cast<int>(sched.sigmas().size());
    const float smin = sched.sigma_min(), smax = sched.sigma_max();
    std::vector<float> sig;
    sig.reserve(static_cast<size_t>(n) + 1);
    switch (s) {
        case Scheduler::Discrete: {
            // k-diffusion DiscreteSchedule.get_sigmas: t = linspace(999, 0, n).
            for (float t : linspace_f32(static_cast<float>(T - 1), 0.0f, n)) sig.push_back(sched.t_to_sigma(t));
            break;
        }
        case Scheduler::Karras: {
            const double rho = 7.0;
            const double min_inv = std::pow(static_cast<double>(smin), 1.0 / rho);
            const double max_inv = std::pow(static_cast<double>(smax), 1.0 / rho);
            const float diff = static_cast<float>(min_inv - max_inv);
            for (float r : linspace_f32(0.0f, 1.0f, n)) {
                const float base = static_cast<float>(max_inv) + r * diff;
                sig.push_back(std::pow(base, 7.0f));
            }
            break;
        }
        case Scheduler::Exponential: {
            const float lmax = static_cast<float>(std::log(static_cast<double>(smax)));
            const float lmin = static_cast<float>(std::log(static_cast<double>(smin)));
            for (float l : linspace_f32(lmax, lmin, n)) sig.push_back(std::exp(l));
            break;
        }
        case Scheduler::SgmUniform: {
            // A1111/ComfyUI: t = linspace(t(sigma_max), t(sigma_min), n + 1)[:-1].
            const float t0 = sched.sigma_to_t(smax), t1 = sched.sigma_to_t(smin);
            std::vector<float> ts = linspace_f32(t0, t1, n + 1);
            for (int i = 0; i < n; ++i) sig.push_back(sched.t_to_sigma(ts[i]));
            break;
        }
        case Scheduler::Simple: {
            // A1111/ComfyUI: sigmas[-(1 + int(i * (T / n)))], in double.
            if (n > T) {
                return error(SDGO_ERR_INVALID_ARGUMENT, "the simple scheduler supports at most %d steps, got %d", T,
                             n);
            }
            const double ss = static_cast<double>(T) / n;
            for (int i = 0; i < n; ++i) {
                const int k = static_cast<int>(i * ss);
                sig.push_back(sched.sigmas()[T - 1 - k]);
            }
            break;
        }
        case Scheduler::DdimUniform: {
            // A1111/ComfyUI ddim_uniform: sigmas[1], sigmas[1 + k], ... with
            // k = max(T / n, 1), reversed. The count can exceed n (e.g. 8
            // sigmas for n = 7); the sampler then runs that many steps.
            const int k = std::max(T / n, 1);
            std::vector<float> asc;
            for (int x = 1; x < T; x += k) asc.push_back(sched.sigmas()[x]);
            sig.assign(asc.rbegin(), asc.rend());
            break;
        }
        case Scheduler::Lcm: {
            // LCM (diffusers LCMScheduler / sd.cpp): the 50 "skipping" steps
            // 999, 979, ..., 19 sampled at floor(i * 50 / n).
            const int orig = 50, skip = T / orig;
            if (n > orig) {
                return error(SDGO_ERR_INVALID_ARGUMENT, "the lcm scheduler supports at most %d steps, got %d",
                             orig, n);
            }
            for (int i = 0; i < n; ++i) {
                const int t = (orig - (i * orig) / n) * skip - 1;
                sig.push_back(sched.sigmas()[t]);
            }
            break;
        }
        default:
            return error(SDGO_ERR_INVALID_ARGUMENT, "unknown scheduler id %d", static_cast<int>(s));
    }
    sig.push_back(0.0f);
    *out = std::move(sig);
    return Status();
}

Status discard_next_to_last_sigma(std::vector<float> * sigmas) {
    if (sigmas->size() < 3) {
        return error(SDGO_ERR_INVALID_ARGUMENT,
                     "discarding the next-to-last sigma needs a schedule of at least 3 entries, got %zu",
                     sigmas->size());
    }
    sigmas->erase(sigmas->end() - 2);
    return Status();
}

// ---- diffusers schedules ------------------------------------------------------------------

Status parse_timestep_spacing(const std::string & name, TimestepSpacing * out) {
    if (name == "linspace") *out = TimestepSpacing::Linspace;
    else if (name == "leading") *out = TimestepSpacing::Leading;
    else if (name == "trailing") *out = TimestepSpacing::Trailing;
    else
        return error(SDGO_ERR_INVALID_ARGUMENT,
                     "unknown timestep spacing '%s' (expected linspace, leading or trailing)", name.c_str());
    return Status();
}

namespace {

// numpy.interp(x, arange(T), table) in double.
double interp_table(const std::vector<float> & table, double x) {
    const int T = static_cast<int>(table.size());
    if (x <= 0.0) return table[0];
    if (x >= T - 1) return table[T - 1];
    const int j = static_cast<int>(std::floor(x));
    if (static_cast<double>(j) == x) return table[j];
    const double slope = (static_cast<double>(table[j + 1]) - table[j]);
    return slope * (x - j) + table[j];
}

// numpy.linspace(start, stop, num) in double.
double np_linspace_at(double start, double stop, int num, int i) {
    if (num == 1) return start;
    const double step = (stop - start) / (num - 1);
    if (i == num - 1) return stop;
    return start + i * step;
}

Status check_diffusers_steps(int n) {
    if (n < 1) return error(SDGO_ERR_INVALID_ARGUMENT, "steps must be at least 1, got %d", n);
    if (n > NoiseSchedule::kTrainSteps) {
        return error(SDGO_ERR_INVALID_ARGUMENT, "steps must be at most %d, got %d", NoiseSchedule::kTrainSteps,
                     n);
    }
    return Status();
}

}  // namespace

Status diffusers_euler_schedule(const NoiseSchedule & sched, int n, TimestepSpacing spacing,
                                int steps_offset, DiffusersSchedule * out) {
    SDGO_TRY(check_diffusers_steps(n));
    const int T = NoiseSchedule::kTrainSteps;
    std::vector<float> ts(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
        switch (spacing) {
            case TimestepSpacing::Linspace:
                // np.linspace(0, T - 1, n, dtype=float32)[::-1]
                ts[i] = static_cast<float>(np_linspace_at(0.0, T - 1, n, n - 1 - i));
                break;
            case TimestepSpacing::Leading: {
                const int ratio = T / n;
                ts[i] = static_cast<float>((n - 1 - i) * ratio + steps_offset);
                break;
            }
            case TimestepSpacing::Trailing: {
                const double ratio = static_cast<double>(T) / n;
                ts[i] = static_cast<float>(std::nearbyint(T - i * ratio) - 1.0);
                break;
            }
        }
    }
    out->timesteps = ts;
    out->sigmas.resize(static_cast<size_t>(n) + 1);
    for (int i = 0; i < n; ++i) out->sigmas[i] = static_cast<float>(interp_table(sched.sigmas(), ts[i]));
    out->sigmas[n] = 0.0f;
    return Status();
}

Status diffusers_dpmsolver_schedule(const NoiseSchedule & sched, int n, TimestepSpacing spacing,
                                    int steps_offset, DiffusersSchedule * out) {
    SDGO_TRY(check_diffusers_steps(n));
    const int T = NoiseSchedule::kTrainSteps;
    std::vector<float> ts(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
        switch (spacing) {
            case TimestepSpacing::Linspace:
                // np.linspace(0, T - 1, n + 1).round()[::-1][:-1]
                ts[i] = static_cast<float>(std::nearbyint(np_linspace_at(0.0, T - 1, n + 1, n - i)));
                break;
            case TimestepSpacing::Leading: {
                const int ratio = T / (n + 1);
                ts[i] = static_cast<float>((n - i) * ratio + steps_offset);
                break;
            }
            case TimestepSpacing::Trailing: {
                const double ratio = static_cast<double>(T) / n;
                ts[i] = static_cast<float>(std::nearbyint(T - i * ratio) - 1.0);
                break;
            }
        }
    }
    out->timesteps = ts;
    out->sigmas.resize(static_cast<size_t>(n) + 1);
    for (int i = 0; i < n; ++i) out->sigmas[i] = static_cast<float>(interp_table(sched.sigmas(), ts[i]));
    out->sigmas[n] = 0.0f;
    return Status();
}

float initial_noise_scale(NoiseInit mode, float sigma_first) {
    if (mode == NoiseInit::SqrtSigmaSqPlusOne) return std::sqrt(sigma_first * sigma_first + 1.0f);
    return sigma_first;
}

// ---- img2img ---------------------------------------------------------------------------------

Status img2img_plan(int n, double strength, Img2ImgMode mode, Img2ImgPlan * out) {
    if (n < 1) return error(SDGO_ERR_INVALID_ARGUMENT, "steps must be at least 1, got %d", n);
    if (!(strength > 0.0 && strength <= 1.0)) {
        return error(SDGO_ERR_INVALID_ARGUMENT, "img2img strength must be in (0, 1], got %g", strength);
    }
    if (mode == Img2ImgMode::A1111) {
        const int t_enc = static_cast<int>(std::floor(std::min(strength, 0.999) * n));
        out->start_index = n - t_enc - 1;
        out->steps = t_enc + 1;
        return Status();
    }
    const int init_timestep = std::min(static_cast<int>(std::floor(n * strength)), n);
    if (init_timestep < 1) {
        return error(SDGO_ERR_INVALID_ARGUMENT,
                     "img2img strength %g with %d steps leaves no step to run (diffusers mapping: "
                     "floor(steps * strength) = 0)",
                     strength, n);
    }
    out->start_index = n - init_timestep;
    out->steps = init_timestep;
    return Status();
}

}  // namespace sdgo::sampling
