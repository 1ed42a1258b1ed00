#include "sampling/samplers.h"

#include <algorithm>
#include <cmath>

namespace sdgo::sampling {

namespace {

struct SamplerName {
    const char * name;
    SamplerType value;
};
const SamplerName kSamplerNames[] = {
    {"euler", SamplerType::Euler},         {"euler_a", SamplerType::EulerA},
    {"heun", SamplerType::Heun},           {"dpm2", SamplerType::Dpm2},
    {"dpm++2s_a", SamplerType::Dpmpp2sA},  {"dpm++2m", SamplerType::Dpmpp2m},
    {"lcm", SamplerType::Lcm},             {"ddim", SamplerType::Ddim},
    // aliases
    {"euler_ancestral", SamplerType::EulerA}, {"dpmpp_2s_a", SamplerType::Dpmpp2sA},
    {"dpmpp_2s_ancestral", SamplerType::Dpmpp2sA}, {"dpmpp_2m", SamplerType::Dpmpp2m},
    {"ddim_trailing", SamplerType::Ddim},
};

float default_eta(SamplerType t) {
    return (t == SamplerType::EulerA || t == SamplerType::Dpmpp2sA) ? 1.0f : 0.0f;
}

bool all_finite(const float * v, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        if (!std::isfinite(v[i])) return false;
    }
    return true;
}

Status check_sigmas(const std::vector<float> & s) {
    if (s.size() < 2) {
        return error(SDGO_ERR_INVALID_ARGUMENT, "the sigma schedule needs at least 2 entries (1 step), got %zu",
                     s.size());
    }
    for (size_t i = 0; i < s.size(); ++i) {
        if (!std::isfinite(s[i]) || s[i] < 0.0f) {
            return error(SDGO_ERR_INVALID_ARGUMENT, "sigma[%zu] = %g is not a finite non-negative number", i,
                         static_cast<double>(s[i]));
        }
        if (i + 1 < s.size() && !(s[i] > 0.0f)) {
            return error(SDGO_ERR_INVALID_ARGUMENT, "sigma[%zu] is 0 before the end of the schedule", i);
        }
        if (i > 0 && !(s[i] < s[i - 1])) {
            return error(SDGO_ERR_INVALID_ARGUMENT, "the sigma schedule is not strictly decreasing at %zu (%g >= %g)",
                         i, static_cast<double>(s[i]), static_cast<double>(s[i - 1]));
        }
    }
    return Status();
}

// Runs the model and checks its output.
struct Runner {
    const DenoiseFn & fn;
    size_t n;
    int total;

    Status operator()(const float * x, float sigma, float * out, int step) const {
        Status st = fn(x, sigma, out);
        if (!st.ok()) return st;
        if (!all_finite(out, n)) {
            return error(SDGO_ERR_INTERNAL, "the denoiser produced NaN or infinity at step %d of %d (sigma %g)",
                         step + 1, total, static_cast<double>(sigma));
        }
        return Status();
    }
};

}  // namespace

Status parse_sampler(const std::string & name, SamplerType * out) {
    for (const auto & e : kSamplerNames) {
        if (name == e.name) {
            *out = e.value;
            return Status();
        }
    }
    return error(SDGO_ERR_INVALID_ARGUMENT,
                 "unknown sampler '%s' (expected euler, euler_a, heun, dpm2, dpm++2s_a, dpm++2m, lcm or ddim)",
                 name.c_str());
}

std::vector<SamplerType> sampler_types() {
    std::vector<SamplerType> v;
    for (const auto & e : kSamplerNames)
        if (std::find(v.begin(), v.end(), e.value) == v.end()) v.push_back(e.value);
    return v;
}

const char * sampler_name(SamplerType s) {
    for (const auto & e : kSamplerNames) {
        if (e.value == s) return e.name;
    }
    return "?";
}

bool sampler_is_stochastic(SamplerType s, float eta) {
    if (eta < 0.0f) eta = default_eta(s);
    switch (s) {
        case SamplerType::EulerA:
        case SamplerType::Dpmpp2sA:
        case SamplerType::Ddim: return eta > 0.0f;
        case SamplerType::Lcm: return true;
        default: return false;
    }
}

int sampler_model_calls(SamplerType s, const std::vector<float> & sigmas) {
    if (sigmas.size() < 2) return 0;
    const int steps = static_cast<int>(sigmas.size()) - 1;
    int calls = 0;
    for (int i = 0; i < steps; ++i) {
        const bool last_to_zero = sigmas[i + 1] == 0.0f;
        switch (s) {
            case SamplerType::Heun:
            case SamplerType::Dpm2:
            case SamplerType::Dpmpp2sA: calls += last_to_zero ? 1 : 2; break;
            default: calls += 1; break;
        }
    }
    return calls;
}

void ancestral_step(float sigma_from, float sigma_to, float eta, float * sigma_down, float * sigma_up) {
    if (eta == 0.0f) {
        *sigma_down = sigma_to;
        *sigma_up = 0.0f;
        return;
    }
    const float to2 = sigma_to * sigma_to;
    const float from2 = sigma_from * sigma_from;
    const float up = eta * std::sqrt(to2 * (from2 - to2) / from2);
    *sigma_up = std::min(sigma_to, up);
    *sigma_down = std::sqrt(to2 - (*sigma_up) * (*sigma_up));
}

NoiseFn batch_noise(const std::vector<Rng *> & rngs) {
    if (rngs.empty()) return NoiseFn();
    return [rngs](float * out, size_t n) {
        const size_t per = n / rngs.size();
        for (size_t b = 0; b < rngs.size(); ++b) rngs[b]->randn(per, out + b * per);
    };
}

Status sample(SamplerType type, const DenoiseFn & denoise, const std::vector<float> & sigmas, float * x,
              size_t n, Rng * rng, const SamplerOptions & opts, const StepFn & progress) {
    NoiseFn noise;
    if (rng != nullptr) noise = [rng](float * out, size_t count) { rng->randn(count, out); };
    return sample(type, denoise, sigmas, x, n, noise, 1, opts, progress);
}

Status sample(SamplerType type, const DenoiseFn & denoise, const std::vector<float> & sigmas, float * x,
              size_t n, const NoiseFn & noise_fn, size_t noise_batch, const SamplerOptions & opts,
              const StepFn & progress) {
    if (!denoise) return error(SDGO_ERR_INVALID_ARGUMENT, "sampler: no denoiser callback");
    if (x == nullptr || n == 0) return error(SDGO_ERR_INVALID_ARGUMENT, "sampler: empty latent");
    SDGO_TRY(check_sigmas(sigmas));
    const float eta = opts.eta < 0.0f ? default_eta(type) : opts.eta;
    if (!std::isfinite(eta) || !std::isfinite(opts.s_noise) || opts.s_noise < 0.0f) {
        return error(SDGO_ERR_INVALID_ARGUMENT, "sampler: eta %g / s_noise %g must be finite and non-negative",
                     static_cast<double>(eta), static_cast<double>(opts.s_noise));
    }
    if (sampler_is_stochastic(type, eta) && !noise_fn) {
        return error(SDGO_ERR_INVALID_ARGUMENT, "sampler %s needs a random number generator", sampler_name(type));
    }
    if (noise_fn && (noise_batch == 0 || n % noise_batch != 0)) {
        return error(SDGO_ERR_INVALID_ARGUMENT, "sampler: %zu latent values do not split into %zu images", n,
                     noise_batch);
    }
    if (!all_finite(x, n)) return error(SDGO_ERR_INVALID_ARGUMENT, "sampler: the initial latent has NaN or infinity");

    const int steps = static_cast<int>(sigmas.size()) - 1;
    const Runner model{denoise, n, steps};
    const float s_noise = opts.s_noise;

    std::vector<float> den(n), x2, den2, d1, old_den, noise;
    bool have_old = false;

    for (int i = 0; i < steps; ++i) {
        const float si = sigmas[i];
        const float sn = sigmas[i + 1];
        SDGO_TRY(model(x, si, den.data(), i));

        switch (type) {
            case SamplerType::Euler: {
                const float dt = sn - si;
                for (size_t j = 0; j < n; ++j) {
                    const float d = (x[j] - den[j]) / si;
                    x[j] = x[j] + d * dt;
                }
                break;
            }
            case SamplerType::EulerA:
            case SamplerType::Ddim: {
                float down, up;
                ancestral_step(si, sn, eta, &down, &up);
                const float dt = down - si;
                for (size_t j = 0; j < n; ++j) {
                    const float d = (x[j] - den[j]) / si;
                    x[j] = x[j] + d * dt;
                }
                // Noise only while the next sigma is > 0 (k-diffusion) and eta > 0
                // (with eta = 0 k-diffusion adds noise * 0, which changes nothing).
                if (sn > 0.0f && eta > 0.0f) {
                    noise.resize(n);
                    noise_fn(noise.data(), n);
                    for (size_t j = 0; j < n; ++j) x[j] = x[j] + noise[j] * s_noise * up;
                }
                break;
            }
            case SamplerType::Heun: {
                const float dt = sn - si;
                if (sn == 0.0f) {
                    for (size_t j = 0; j < n; ++j) {
                        const float d = (x[j] - den[j]) / si;
                        x[j] = x[j] + d * dt;
                    }
                } else {
                    x2.resize(n);
                    den2.resize(n);
                    d1.resize(n);
                    for (size_t j = 0; j < n; ++j) {
                        d1[j] = (x[j] - den[j]) / si;
                        x2[j] = x[j] + d1[j] * dt;
                    }
                    SDGO_TRY(model(x2.data(), sn, den2.data(), i));
                    for (size_t j = 0; j < n; ++j) {
                        const float d2 = (x2[j] - den2[j]) / sn;
                        const float dp = (d1[j] + d2) / 2.0f;
                        x[j] = x[j] + dp * dt;
                    }
                }
                break;
            }
            case SamplerType::Dpm2: {
                if (sn == 0.0f) {
                    const float dt = sn - si;
                    for (size_t j = 0; j < n; ++j) {
                        const float d = (x[j] - den[j]) / si;
                        x[j] = x[j] + d * dt;
                    }
                } else {
                    // sigma_mid = exp(lerp(log si, log sn, 0.5)); torch's lerp
                    // with weight 0.5 computes end - (end - start) * 0.5.
                    const float ls = std::log(si), le = std::log(sn);
                    const float smid = std::exp(le - (le - ls) * 0.5f);
                    const float dt1 = smid - si;
                    const float dt2 = sn - si;
                    x2.resize(n);
                    den2.resize(n);
                    for (size_t j = 0; j < n; ++j) {
                        const float d = (x[j] - den[j]) / si;
                        x2[j] = x[j] + d * dt1;
                    }
                    SDGO_TRY(model(x2.data(), smid, den2.data(), i));
                    for (size_t j = 0; j < n; ++j) {
                        const float d2 = (x2[j] - den2[j]) / smid;
                        x[j] = x[j] + d2 * dt2;
                    }
                }
                break;
            }
            case SamplerType::Dpmpp2sA: {
                float down, up;
                ancestral_step(si, sn, eta, &down, &up);
                if (down == 0.0f) {
                    const float dt = down - si;
                    for (size_t j = 0; j < n; ++j) {
                        const float d = (x[j] - den[j]) / si;
                        x[j] = x[j] + d * dt;
                    }
                } else {
                    // t = -log(sigma); sigma_fn(t) = exp(-t).
                    const float t = -std::log(si);
                    const float t_next = -std::log(down);
                    const float h = t_next - t;
                    const float s = t + 0.5f * h;
                    const float sig_s = std::exp(-s);
                    const float ratio1 = sig_s / std::exp(-t);
                    const float c1 = std::expm1(-h * 0.5f);
                    x2.resize(n);
                    den2.resize(n);
                    for (size_t j = 0; j < n; ++j) x2[j] = ratio1 * x[j] - c1 * den[j];
                    SDGO_TRY(model(x2.data(), sig_s, den2.data(), i));
                    const float ratio2 = std::exp(-t_next) / std::exp(-t);
                    const float c2 = std::expm1(-h);
                    for (size_t j = 0; j < n; ++j) x[j] = ratio2 * x[j] - c2 * den2[j];
                }
                if (sn > 0.0f && eta > 0.0f) {
                    noise.resize(n);
                    noise_fn(noise.data(), n);
                    for (size_t j = 0; j < n; ++j) x[j] = x[j] + noise[j] * s_noise * up;
                }
                break;
            }
            case SamplerType::Dpmpp2m: {
                if (sn == 0.0f) {
                    // sigma_fn(inf) / sigma_fn(t) = 0 and -expm1(-inf) = 1.
                    std::copy(den.begin(), den.end(), x);
                } else {
                    const float t = -std::log(si);
                    const float t_next = -std::log(sn);
                    const float h = t_next - t;
                    const float ratio = std::exp(-t_next) / std::exp(-t);
                    const float c = std::expm1(-h);
                    if (!have_old) {
                        for (size_t j = 0; j < n; ++j) x[j] = ratio * x[j] - c * den[j];
                    } else {
                        const float h_last = t - (-std::log(sigmas[i - 1]));
                        const float r = h_last / h;
                        const float inv2r = 1.0f / (2.0f * r);
                        const float a = 1.0f + inv2r;
                        for (size_t j = 0; j < n; ++j) {
                            const float dd = a * den[j] - inv2r * old_den[j];
                            x[j] = ratio * x[j] - c * dd;
                        }
                    }
                }
                old_den.swap(den);
                den.resize(n);
                have_old = true;
                break;
            }
            case SamplerType::Lcm: {
                std::copy(den.begin(), den.end(), x);
                if (sn > 0.0f) {
                    noise.resize(n);
                    noise_fn(noise.data(), n);
                    for (size_t j = 0; j < n; ++j) x[j] = x[j] + sn * noise[j];
                }
                break;
            }
            default:
                return error(SDGO_ERR_INVALID_ARGUMENT, "unknown sampler id %d", static_cast<int>(type));
        }

        if (!all_finite(x, n)) {
            return error(SDGO_ERR_INTERNAL, "the sampler produced NaN or infinity at step %d of %d (sigma %g)", i + 1,
                         steps, static_cast<double>(si));
        }
        if (progress && !progress(i + 1, steps)) {
            return error(SDGO_ERR_CANCELED, "canceled after step %d of %d", i + 1, steps);
        }
    }
    return Status();
}

}  // namespace sdgo::sampling
