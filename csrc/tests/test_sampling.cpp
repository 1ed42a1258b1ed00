// Tests of the noise schedule, sigma schedules, denoiser scalings, samplers
// and the img2img step mapping, against k-diffusion and diffusers
// (testdata/sampling/ref.txt, made by testdata/gen/gen_sampling_ref.py).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "sampling/denoiser.h"
#include "sampling/rng.h"
#include "sampling/samplers.h"
#include "sampling/schedules.h"
#include "ref_text.h"
#include "testing.h"

using namespace sdgo;
using namespace sdgo::sampling;

namespace {

using testing::RefMap;

const RefMap & ref() {
    static const RefMap m = testing::load_ref_text("testdata/sampling/ref.txt");
    return m;
}

const std::vector<float> & get(const std::string & key) {
    static const std::vector<float> empty;
    auto it = ref().find(key);
    if (it == ref().end()) {
        testing::report_failure(__FILE__, __LINE__, "missing reference record " + key);
        return empty;
    }
    return it->second;
}

// max |a - b| / max(|b|, floor) over the vectors; size mismatch -> infinity.
double max_rel(const std::vector<float> & a, const std::vector<float> & b, double floor = 1e-30) {
    if (a.size() != b.size()) return INFINITY;
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
        const double s = std::max(std::fabs(static_cast<double>(b[i])), floor);
        worst = std::max(worst, d / s);
    }
    return worst;
}

const NoiseSchedule & ldm() {
    static const NoiseSchedule s(ScheduleTable::Ldm);
    return s;
}
const NoiseSchedule & dif() {
    static const NoiseSchedule s(ScheduleTable::Diffusers);
    return s;
}

// The analytic test denoiser (same float32 expression as the generator).
Status analytic_denoiser(const float * x, float sigma, float * out, size_t n) {
    const float a = 1.0f / (sigma * sigma + 1.0f);
    const float b = 0.5f * sigma / std::sqrt(sigma * sigma + 1.0f);
    for (size_t i = 0; i < n; ++i) out[i] = x[i] * a + b * std::sin(x[i]);
    return Status();
}

constexpr size_t kLatent = 4 * 8 * 8;

// A k-diffusion run: torch.manual_seed(seed); x = randn * sigma0; sample.
std::vector<float> run_kdiffusion(SamplerType type, const std::vector<float> & sigmas, uint64_t seed,
                                  float eta = -1.0f) {
    TorchCpuRng rng(seed);
    std::vector<float> x(kLatent);
    rng.randn(kLatent, x.data());
    for (float & v : x) v = v * sigmas[0];
    SamplerOptions opts;
    opts.eta = eta;
    DenoiseFn fn = [](const float * in, float sigma, float * out) {
        return analytic_denoiser(in, sigma, out, kLatent);
    };
    Status st = sample(type, fn, sigmas, x.data(), kLatent, &rng, opts);
    CHECK(st.ok());
    if (!st.ok()) std::printf("  %s\n", st.message().c_str());
    return x;
}


}  // namespace

// ---- the training schedule ------------------------------------------------------------

TEST(ldm_schedule_matches_k_diffusion) {
    const auto & ac = get("ldm_alphas_cumprod");
    std::printf("alphas_cumprod: ldm %.3g, diffusers %.3g; sigmas: ldm %.3g (max relative differences)\n",
                max_rel(ldm().alphas_cumprod(), ac), max_rel(dif().alphas_cumprod(), get("diffusers_alphas_cumprod")),
                max_rel(ldm().sigmas(), get("ldm_sigmas")));
    CHECK(max_rel(ldm().alphas_cumprod(), ac) == 0.0);
    CHECK(max_rel(ldm().sigmas(), get("ldm_sigmas")) <= 1e-6);
    CHECK_NEAR(ldm().sigma_min(), 0.0291675, 1e-6);
    CHECK_NEAR(ldm().sigma_max(), 14.6146, 1e-4);
    // float32 arithmetic as torch does it: equal to within one float32 ulp.
    CHECK(max_rel(dif().alphas_cumprod(), get("diffusers_alphas_cumprod")) <= 1.2e-7);
    // The two tables are close but not identical (float64 vs float32 cumprod).
    CHECK(max_rel(dif().alphas_cumprod(), ac) < 1e-4);
}

TEST(sigma_timestep_mapping_matches_k_diffusion) {
    const auto & probe = get("sigma_probe");
    const auto & want_t = get("sigma_to_t");
    REQUIRE(probe.size() == want_t.size());
    for (size_t i = 0; i < probe.size(); ++i) {
        CHECK_NEAR(ldm().sigma_to_t(probe[i]), want_t[i], 2e-3);
    }
    const auto & tp = get("t_probe");
    const auto & want_s = get("t_to_sigma");
    REQUIRE(tp.size() == want_s.size());
    std::vector<float> got(tp.size());
    for (size_t i = 0; i < tp.size(); ++i) got[i] = ldm().t_to_sigma(tp[i]);
    CHECK(max_rel(got, want_s) <= 1e-6);
    // Round trip on the table.
    for (int t : {0, 1, 17, 500, 998, 999}) {
        CHECK_NEAR(ldm().sigma_to_t(ldm().sigmas()[t]), t, 1e-3);
        CHECK_EQ(ldm().sigma_to_t_quantized(ldm().sigmas()[t]), t);
    }
}

TEST(schedule_from_checkpoint_alphas) {
    NoiseSchedule s;
    CHECK(NoiseSchedule::from_alphas_cumprod(ldm().alphas_cumprod(), &s).ok());
    CHECK(max_rel(s.sigmas(), ldm().sigmas()) == 0.0);
    std::vector<float> bad(10, 0.5f);
    Status st = NoiseSchedule::from_alphas_cumprod(bad, &s);
    CHECK_EQ(st.code(), SDGO_ERR_INVALID_ARGUMENT);
    bad = ldm().alphas_cumprod();
    bad[5] = bad[4];
    CHECK_EQ(NoiseSchedule::from_alphas_cumprod(bad, &s).code(), SDGO_ERR_INVALID_ARGUMENT);
    bad[5] = NAN;
    CHECK_EQ(NoiseSchedule::from_alphas_cumprod(bad, &s).code(), SDGO_ERR_INVALID_ARGUMENT);
}

// ---- sigma schedules ----------------------------------------------------------------------

TEST(sigma_schedules_match_references) {
    const Scheduler kinds[] = {Scheduler::Discrete, Scheduler::Karras, Scheduler::Exponential,
                               Scheduler::SgmUniform, Scheduler::Simple, Scheduler::DdimUniform};
    int checked = 0;
    double worst = 0;
    for (Scheduler k : kinds) {
        for (int n : {1, 2, 3, 7, 10, 20, 30, 50}) {
            const std::string key = std::string("sched_") + scheduler_name(k) + "_n" + std::to_string(n);
            std::vector<float> got;
            REQUIRE(make_sigmas(ldm(), k, n, &got).ok());
            const auto & want = get(key);
            const double r = max_rel(got, want, 1e-3);
            if (!(r <= 1e-6)) std::printf("  %s: rel %.3g (sizes %zu/%zu)\n", key.c_str(), r, got.size(), want.size());
            CHECK(r <= 1e-6);
            CHECK_EQ(got.back(), 0.0f);
            worst = std::max(worst, r);
            ++checked;
        }
    }
    std::printf("sigma schedules: %d checked, worst relative difference %.3g\n", checked, worst);
    // ddim_uniform may give more sigmas than steps, as in A1111.
    std::vector<float> d7;
    REQUIRE(make_sigmas(ldm(), Scheduler::DdimUniform, 7, &d7).ok());
    CHECK_EQ(d7.size(), size_t(9));
}

TEST(discard_next_to_last_sigma_for_dpm2) {
    // A1111 runs DPM2 on the (n + 1)-step schedule without its next-to-last sigma.
    std::vector<float> a, b;
    REQUIRE(make_sigmas(ldm(), Scheduler::Karras, 11, &a).ok());
    b = a;
    REQUIRE(discard_next_to_last_sigma(&b).ok());
    REQUIRE(b.size() == 11);
    for (size_t i = 0; i + 2 < a.size(); ++i) CHECK_EQ(b[i], a[i]);
    CHECK_EQ(b[9], a[9]);
    CHECK_EQ(b[10], 0.0f);
    std::vector<float> tiny = {1.0f, 0.0f};
    CHECK_EQ(discard_next_to_last_sigma(&tiny).code(), SDGO_ERR_INVALID_ARGUMENT);
}

TEST(lcm_schedule_matches_diffusers_lcm_scheduler) {
    for (int n : {1, 2, 4, 8, 50}) {
        const auto & ts = get("lcm_timesteps_n" + std::to_string(n));
        std::vector<float> got;
        REQUIRE(make_sigmas(ldm(), Scheduler::Lcm, n, &got).ok());
        REQUIRE(got.size() == ts.size() + 1);
        for (size_t i = 0; i < ts.size(); ++i) CHECK_EQ(got[i], ldm().sigmas()[static_cast<int>(ts[i])]);
    }
    std::vector<float> tmp;
    CHECK_EQ(make_sigmas(ldm(), Scheduler::Lcm, 51, &tmp).code(), SDGO_ERR_INVALID_ARGUMENT);
}

TEST(diffusers_schedules_match) {
    const std::pair<const char *, TimestepSpacing> spacings[] = {
        {"linspace", TimestepSpacing::Linspace}, {"leading", TimestepSpacing::Leading},
        {"trailing", TimestepSpacing::Trailing}};
    for (const auto & sp : spacings) {
        for (int n : {20, 7}) {
            const std::string base = std::string("_") + sp.first + "_n" + std::to_string(n);
            DiffusersSchedule e;
            REQUIRE(diffusers_euler_schedule(dif(), n, sp.second, 1, &e).ok());
            CHECK(max_rel(e.timesteps, get("diffusers_euler" + base + "_timesteps")) == 0.0);
            CHECK(max_rel(e.sigmas, get("diffusers_euler" + base + "_sigmas"), 1e-3) <= 1e-6);
            // init_noise_sigma: sigma_max for linspace/trailing, sqrt(sigma_max^2 + 1) for leading.
            const NoiseInit init =
                sp.second == TimestepSpacing::Leading ? NoiseInit::SqrtSigmaSqPlusOne : NoiseInit::Sigma;
            CHECK_NEAR(initial_noise_scale(init, e.sigmas[0]), get("diffusers_euler" + base + "_init_sigma")[0],
                       1e-5);
            DiffusersSchedule d;
            REQUIRE(diffusers_dpmsolver_schedule(dif(), n, sp.second, 1, &d).ok());
            CHECK(max_rel(d.timesteps, get("diffusers_dpm" + base + "_timesteps")) == 0.0);
            CHECK(max_rel(d.sigmas, get("diffusers_dpm" + base + "_sigmas"), 1e-3) <= 1e-6);
        }
    }
    DiffusersSchedule e;
    CHECK_EQ(diffusers_euler_schedule(dif(), 0, TimestepSpacing::Leading, 1, &e).code(), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(diffusers_dpmsolver_schedule(dif(), 1001, TimestepSpacing::Leading, 1, &e).code(),
             SDGO_ERR_INVALID_ARGUMENT);
}

// ---- denoiser scalings ------------------------------------------------------------------

TEST(denoiser_scalings_recover_x0) {
    // x = x0 + sigma * eps. eps-model: F = eps; v-model: F = v =
    // alpha * eps - sigma_vp * x0 with alpha = 1/sqrt(1+s^2), sigma_vp = s/sqrt(1+s^2).
    for (float s : {0.03f, 0.5f, 1.0f, 3.0f, 14.6f}) {
        const double x0 = 0.7, eps = -1.3;
        const double x = x0 + s * eps;
        const DenoiserScalings e = denoiser_scalings(Prediction::Eps, s);
        CHECK_NEAR(e.c_skip, 1.0, 0);
        CHECK_NEAR(e.c_out, -s, 0);
        CHECK_NEAR(e.c_in, 1.0 / std::sqrt(double(s) * s + 1.0), 1e-7);
        CHECK_NEAR(e.c_skip * x + e.c_out * eps, x0, 1e-5 * (1 + s));
        const double alpha = 1.0 / std::sqrt(double(s) * s + 1.0), svp = s * alpha;
        const double v = alpha * eps - svp * x0;
        const DenoiserScalings vs = denoiser_scalings(Prediction::V, s);
        CHECK_NEAR(vs.c_in, alpha, 1e-7);
        CHECK_NEAR(vs.c_skip * x + vs.c_out * v, x0, 1e-5 * (1 + s));
    }
    Prediction p;
    CHECK(parse_prediction("v", &p).ok() && p == Prediction::V);
    CHECK(parse_prediction("epsilon", &p).ok() && p == Prediction::Eps);
    CHECK_EQ(parse_prediction("x0", &p).code(), SDGO_ERR_INVALID_ARGUMENT);
}

// ---- samplers against k-diffusion ---------------------------------------------------------

TEST(samplers_match_k_diffusion) {
    const std::pair<const char *, SamplerType> samplers[] = {
        {"euler", SamplerType::Euler},       {"euler_a", SamplerType::EulerA},     {"heun", SamplerType::Heun},
        {"dpm2", SamplerType::Dpm2},         {"dpm++2s_a", SamplerType::Dpmpp2sA}, {"dpm++2m", SamplerType::Dpmpp2m},
        {"lcm", SamplerType::Lcm}};
    std::vector<float> karras10, discrete12;
    REQUIRE(make_sigmas(ldm(), Scheduler::Karras, 10, &karras10).ok());
    REQUIRE(make_sigmas(ldm(), Scheduler::Discrete, 12, &discrete12).ok());
    double worst = 0;
    for (const auto & sc : {std::make_pair("karras10", &karras10), std::make_pair("discrete12", &discrete12)}) {
        for (const auto & sm : samplers) {
            const std::string key = std::string("traj_") + sm.first + "_" + sc.first + "_s1234";
            const std::vector<float> got = run_kdiffusion(sm.second, *sc.second, 1234);
            const double r = max_rel(got, get(key), 1.0);
            if (!(r <= 1e-5)) std::printf("  %s: %.3g\n", key.c_str(), r);
            CHECK(r <= 1e-5);
            worst = std::max(worst, r);
        }
    }
    std::vector<float> exp8;
    REQUIRE(make_sigmas(ldm(), Scheduler::Exponential, 8, &exp8).ok());
    const double r = max_rel(run_kdiffusion(SamplerType::EulerA, exp8, 99, 0.5f), get("traj_euler_a_eta05_exp8_s99"), 1.0);
    CHECK(r <= 1e-5);
    worst = std::max(worst, r);
    std::printf("k-diffusion trajectories: worst difference %.3g (relative to max(|x|, 1))\n", worst);
}

// ---- the denoiser wrapper ------------------------------------------------------------------

TEST(wrapped_network_matches_k_diffusion_denoisers) {
    // k-diffusion's DiscreteEpsDDPMDenoiser / DiscreteVDDPMDenoiser around
    // F(x_in, t) = 0.3 tanh(x_in) + 0.0005 t x_in, sampled with Euler.
    std::vector<float> sig;
    REQUIRE(make_sigmas(ldm(), Scheduler::Karras, 10, &sig).ok());
    for (Prediction p : {Prediction::Eps, Prediction::V}) {
        const TimestepMap tmap(&ldm(), TimestepMode::Interpolated);
        std::vector<float> x_in(kLatent), f(kLatent);
        DenoiseFn fn = [&](const float * x, float sigma, float * out) {
            scale_model_input(p, sigma, x, x_in.data(), kLatent);
            const float t = tmap.timestep(sigma);
            for (size_t i = 0; i < kLatent; ++i) {
                const float a = 0.3f * std::tanh(x_in[i]);
                const float b = 0.0005f * t;
                f[i] = a + b * x_in[i];
            }
            apply_denoiser(p, sigma, x, f.data(), out, kLatent);
            return Status();
        };
        TorchCpuRng rng(4321);
        std::vector<float> x(kLatent);
        rng.randn(kLatent, x.data());
        for (float & v : x) v = v * sig[0];
        REQUIRE(sample(SamplerType::Euler, fn, sig, x.data(), kLatent, nullptr).ok());
        const std::string key = std::string("traj_wrapped_") + prediction_name(p) + "_euler_karras10_s4321";
        const double d = max_rel(x, get(key), 1.0);
        std::printf("wrapped %s network vs k-diffusion: %.3g\n", prediction_name(p), d);
        CHECK(d <= 1e-5);
    }
}

TEST(cfg_and_timestep_helpers) {
    const float u[3] = {1.0f, -2.0f, 0.5f};
    const float c[3] = {2.0f, -1.0f, 0.5f};
    float o[3];
    cfg_combine(u, c, 7.5f, o, 3);
    CHECK_NEAR(o[0], 8.5, 1e-6);
    CHECK_NEAR(o[1], 5.5, 1e-6);
    CHECK_NEAR(o[2], 0.5, 1e-6);
    cfg_combine(u, c, 1.0f, o, 3);
    CHECK_EQ(o[1], -1.0f);

    // D(x, sigma) from an exact eps / v prediction gives x0.
    const float s = 2.5f, x0 = 0.25f, eps = 1.5f;
    const float x = x0 + s * eps;
    float d = 0;
    apply_denoiser(Prediction::Eps, s, &x, &eps, &d, 1);
    CHECK_NEAR(d, x0, 1e-6);
    const float alpha = 1.0f / std::sqrt(s * s + 1.0f);
    const float v = alpha * eps - s * alpha * x0;
    apply_denoiser(Prediction::V, s, &x, &v, &d, 1);
    CHECK_NEAR(d, x0, 1e-5);
    float xin = 0;
    scale_model_input(Prediction::Eps, s, &x, &xin, 1);
    CHECK_NEAR(xin, x * alpha, 1e-6);

    // Timesteps: interpolated, quantized, and diffusers' table.
    const float sig500 = dif().sigmas()[500];
    TimestepMap interp(&dif(), TimestepMode::Interpolated);
    CHECK_NEAR(interp.timestep(sig500), 500.0, 1e-3);
    TimestepMap quant(&dif(), TimestepMode::Quantized);
    CHECK_EQ(quant.timestep(sig500 * 1.001f), 500.0f);
    DiffusersSchedule ds;
    REQUIRE(diffusers_euler_schedule(dif(), 20, TimestepSpacing::Linspace, 1, &ds).ok());
    TimestepMap table(&dif(), TimestepMode::Table);
    REQUIRE(table.set_table(ds.sigmas, ds.timesteps).ok());
    for (size_t i = 0; i < ds.timesteps.size(); ++i) CHECK_EQ(table.timestep(ds.sigmas[i]), ds.timesteps[i]);
    CHECK_NEAR(table.timestep(sig500), 500.0, 1e-3);  // not in the table: interpolated
    CHECK_EQ(table.set_table({1.0f}, {1.0f, 2.0f}).code(), SDGO_ERR_INVALID_ARGUMENT);
}

// ---- samplers against diffusers schedulers --------------------------------------------------

TEST(samplers_match_diffusers_schedulers) {
    const int n = 20;
    double worst = 0;
    for (const auto & sp : {std::make_pair("linspace", TimestepSpacing::Linspace),
                            std::make_pair("leading", TimestepSpacing::Leading)}) {
        DiffusersSchedule es, ds;
        REQUIRE(diffusers_euler_schedule(dif(), n, sp.second, 1, &es).ok());
        REQUIRE(diffusers_dpmsolver_schedule(dif(), n, sp.second, 1, &ds).ok());
        const NoiseInit euler_init =
            sp.second == TimestepSpacing::Leading ? NoiseInit::SqrtSigmaSqPlusOne : NoiseInit::Sigma;
        struct Run {
            const char * tag;
            SamplerType type;
            const std::vector<float> * sigmas;
            NoiseInit init;
        };
        const Run runs[] = {
            {"euler", SamplerType::Euler, &es.sigmas, euler_init},
            {"euler_a", SamplerType::EulerA, &es.sigmas, euler_init},
            // DPM-Solver (VP): unit-variance start, i.e. sqrt(s^2 + 1) in VE units;
            // the final VE latent at sigma 0 equals the VP one.
            {"dpm", SamplerType::Dpmpp2m, &ds.sigmas, NoiseInit::SqrtSigmaSqPlusOne},
        };
        for (const Run & r : runs) {
            TorchCpuRng rng(777);
            std::vector<float> x(kLatent);
            rng.randn(kLatent, x.data());
            const float scale = initial_noise_scale(r.init, (*r.sigmas)[0]);
            for (float & v : x) v = v * scale;
            DenoiseFn fn = [](const float * in, float sigma, float * out) {
                return analytic_denoiser(in, sigma, out, kLatent);
            };
            REQUIRE(sample(r.type, fn, *r.sigmas, x.data(), kLatent, &rng).ok());
            const std::string key =
                std::string("diffusers_traj_") + r.tag + "_" + sp.first + "_n" + std::to_string(n) + "_s777";
            const double d = max_rel(x, get(key), 1.0);
            if (!(d <= 1e-5)) std::printf("  %s: %.3g\n", key.c_str(), d);
            CHECK(d <= 1e-5);
            worst = std::max(worst, d);
        }
    }
    // DDIM (eta 0) is an Euler step in sigma space. diffusers' DDIMScheduler
    // with the SD configuration (leading spacing, steps_offset 1,
    // set_alpha_to_one False) starts from unit-variance noise (VP) and ends at
    // alphas_cumprod[0], i.e. sigma_min, not 0.
    for (int steps : {10, 20}) {
        const auto & ts = get("diffusers_ddim_n" + std::to_string(steps) + "_timesteps");
        std::vector<float> sig;
        for (float t : ts) sig.push_back(dif().sigmas()[static_cast<int>(t)]);
        sig.push_back(dif().sigmas()[0]);
        TorchCpuRng rng(555);
        std::vector<float> x(kLatent);
        rng.randn(kLatent, x.data());
        const float scale = std::sqrt(sig[0] * sig[0] + 1.0f);
        for (float & v : x) v = v * scale;
        DenoiseFn fn = [](const float * in, float sigma, float * out) {
            return analytic_denoiser(in, sigma, out, kLatent);
        };
        REQUIRE(sample(SamplerType::Ddim, fn, sig, x.data(), kLatent, nullptr).ok());
        const float back = 1.0f / std::sqrt(sig.back() * sig.back() + 1.0f);  // VE -> VP
        for (float & v : x) v = v * back;
        const double d = max_rel(x, get("diffusers_traj_ddim_n" + std::to_string(steps) + "_s555"), 1.0);
        if (!(d <= 1e-5)) std::printf("  ddim n=%d: %.3g\n", steps, d);
        CHECK(d <= 1e-5);
        worst = std::max(worst, d);
    }
    std::printf("diffusers trajectories: worst difference %.3g (relative to max(|x|, 1))\n", worst);
}

// ---- behaviour ----------------------------------------------------------------------------------

TEST(sampler_model_call_counts) {
    std::vector<float> sig;
    REQUIRE(make_sigmas(ldm(), Scheduler::Karras, 6, &sig).ok());
    for (SamplerType t : {SamplerType::Euler, SamplerType::EulerA, SamplerType::Heun, SamplerType::Dpm2,
                          SamplerType::Dpmpp2sA, SamplerType::Dpmpp2m, SamplerType::Lcm, SamplerType::Ddim}) {
        int calls = 0;
        DenoiseFn fn = [&](const float * in, float sigma, float * out) {
            ++calls;
            return analytic_denoiser(in, sigma, out, 16);
        };
        std::vector<float> x(16, 1.0f);
        PhiloxRng rng(1);
        REQUIRE(sample(t, fn, sig, x.data(), x.size(), &rng).ok());
        CHECK_EQ(calls, sampler_model_calls(t, sig));
    }
    CHECK_EQ(sampler_model_calls(SamplerType::Heun, sig), 11);
    CHECK_EQ(sampler_model_calls(SamplerType::Euler, sig), 6);
}

TEST(ancestral_noise_follows_the_generator_stream) {
    // euler_a draws one randn(n) per step while the next sigma is > 0: with
    // the "cuda" RNG the initial noise is offset 0 and step i uses offset i+1.
    std::vector<float> sig;
    REQUIRE(make_sigmas(ldm(), Scheduler::Discrete, 5, &sig).ok());
    PhiloxRng rng(11);
    std::vector<float> x(64);
    rng.randn(x.size(), x.data());
    DenoiseFn fn = [](const float * in, float sigma, float * out) { return analytic_denoiser(in, sigma, out, 64); };
    REQUIRE(sample(SamplerType::EulerA, fn, sig, x.data(), x.size(), &rng).ok());
    CHECK_EQ(rng.offset(), uint64_t(5));  // 1 initial + 4 steps with a next sigma > 0
    // Deterministic samplers draw nothing.
    PhiloxRng rng2(11);
    rng2.randn(x.size(), x.data());
    REQUIRE(sample(SamplerType::Dpmpp2m, fn, sig, x.data(), x.size(), &rng2).ok());
    CHECK_EQ(rng2.offset(), uint64_t(1));
}

TEST(batch_with_per_image_generators_equals_single_runs) {
    // Two latents sampled together, image b's noise from seed + b, equal the
    // two single-image runs (A1111 / sd.cpp batch semantics).
    std::vector<float> sig;
    REQUIRE(make_sigmas(ldm(), Scheduler::Karras, 8, &sig).ok());
    const uint64_t seed = 1000;
    const size_t per = kLatent;
    for (SamplerType t : {SamplerType::EulerA, SamplerType::Dpmpp2sA, SamplerType::Lcm}) {
        std::vector<float> singles;
        for (int b = 0; b < 2; ++b) {
            PhiloxRng rng(batch_seed(seed, b));
            std::vector<float> x(per);
            rng.randn(per, x.data());
            for (float & v : x) v = v * sig[0];
            DenoiseFn fn = [&](const float * in, float sigma, float * out) {
                return analytic_denoiser(in, sigma, out, per);
            };
            REQUIRE(sample(t, fn, sig, x.data(), per, &rng).ok());
            singles.insert(singles.end(), x.begin(), x.end());
        }
        PhiloxRng r0(batch_seed(seed, 0)), r1(batch_seed(seed, 1));
        std::vector<float> x(2 * per);
        r0.randn(per, x.data());
        r1.randn(per, x.data() + per);
        for (float & v : x) v = v * sig[0];
        int calls = 0;
        DenoiseFn fn = [&](const float * in, float sigma, float * out) {
            ++calls;
            return analytic_denoiser(in, sigma, out, 2 * per);
        };
        REQUIRE(sample(t, fn, sig, x.data(), x.size(), batch_noise({&r0, &r1}), 2).ok());
        CHECK_EQ(calls, sampler_model_calls(t, sig));
        CHECK(max_rel(x, singles, 1.0) == 0.0);
    }
    // The batch must split evenly.
    PhiloxRng r0(0), r1(1), r2(2);
    std::vector<float> x(16, 1.0f);
    DenoiseFn fn = [](const float * in, float sigma, float * out) { return analytic_denoiser(in, sigma, out, 16); };
    CHECK_EQ(sample(SamplerType::EulerA, fn, sig, x.data(), 16, batch_noise({&r0, &r1, &r2}), 3).code(),
             SDGO_ERR_INVALID_ARGUMENT);
    CHECK(!batch_noise({}));
}

TEST(cancel_stops_within_one_step) {
    std::vector<float> sig;
    REQUIRE(make_sigmas(ldm(), Scheduler::Karras, 10, &sig).ok());
    int calls = 0;
    DenoiseFn fn = [&](const float * in, float sigma, float * out) {
        ++calls;
        return analytic_denoiser(in, sigma, out, 16);
    };
    std::vector<int> seen;
    StepFn progress = [&](int step, int total) {
        seen.push_back(step);
        CHECK_EQ(total, 10);
        return step < 3;
    };
    std::vector<float> x(16, 2.0f);
    Status st = sample(SamplerType::Euler, fn, sig, x.data(), x.size(), nullptr, SamplerOptions(), progress);
    CHECK_EQ(st.code(), SDGO_ERR_CANCELED);
    CHECK_EQ(calls, 3);
    CHECK_EQ(seen.size(), size_t(3));
    // A denoiser error stops the run and is passed through.
    DenoiseFn failing = [](const float *, float, float *) { return error(SDGO_ERR_OUT_OF_MEMORY, "no memory"); };
    st = sample(SamplerType::Heun, failing, sig, x.data(), x.size(), nullptr);
    CHECK_EQ(st.code(), SDGO_ERR_OUT_OF_MEMORY);
}

TEST(nan_from_the_denoiser_names_the_step) {
    std::vector<float> sig;
    REQUIRE(make_sigmas(ldm(), Scheduler::Discrete, 8, &sig).ok());
    int calls = 0;
    DenoiseFn fn = [&](const float * in, float sigma, float * out) {
        analytic_denoiser(in, sigma, out, 16);
        if (++calls == 4) out[7] = NAN;
        return Status();
    };
    std::vector<float> x(16, 1.0f);
    Status st = sample(SamplerType::Euler, fn, sig, x.data(), x.size(), nullptr);
    CHECK_EQ(st.code(), SDGO_ERR_INTERNAL);
    CHECK(st.message().find("step 4 of 8") != std::string::npos);
    CHECK(st.message().find("NaN") != std::string::npos);
    // Infinity as well, on the second model call of a Heun step.
    calls = 0;
    DenoiseFn inf_fn = [&](const float * in, float sigma, float * out) {
        analytic_denoiser(in, sigma, out, 16);
        if (++calls == 2) out[0] = INFINITY;
        return Status();
    };
    std::fill(x.begin(), x.end(), 1.0f);
    st = sample(SamplerType::Heun, inf_fn, sig, x.data(), x.size(), nullptr);
    CHECK_EQ(st.code(), SDGO_ERR_INTERNAL);
    CHECK(st.message().find("step 1 of 8") != std::string::npos);
}

TEST(bad_input_is_rejected) {
    std::vector<float> sig;
    for (int n : {0, -1, -100}) {
        Status st = make_sigmas(ldm(), Scheduler::Karras, n, &sig);
        CHECK_EQ(st.code(), SDGO_ERR_INVALID_ARGUMENT);
        CHECK(st.message().find("steps") != std::string::npos);
    }
    CHECK_EQ(make_sigmas(ldm(), Scheduler::Simple, 1001, &sig).code(), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(make_sigmas(ldm(), Scheduler::Discrete, 10001, &sig).code(), SDGO_ERR_INVALID_ARGUMENT);
    REQUIRE(make_sigmas(ldm(), Scheduler::Discrete, 1500, &sig).ok());
    CHECK_EQ(sig.size(), size_t(1501));
    SamplerType t;
    Status st = parse_sampler("euler_b", &t);
    CHECK_EQ(st.code(), SDGO_ERR_INVALID_ARGUMENT);
    CHECK(st.message().find("euler_b") != std::string::npos);
    Scheduler s;
    st = parse_scheduler("cosine", &s);
    CHECK_EQ(st.code(), SDGO_ERR_INVALID_ARGUMENT);
    CHECK(st.message().find("cosine") != std::string::npos);
    TimestepSpacing sp;
    CHECK_EQ(parse_timestep_spacing("middle", &sp).code(), SDGO_ERR_INVALID_ARGUMENT);

    DenoiseFn fn = [](const float * in, float sigma, float * out) { return analytic_denoiser(in, sigma, out, 4); };
    std::vector<float> x(4, 0.5f);
    const std::vector<std::vector<float>> bad_schedules = {
        {}, {1.0f}, {1.0f, 2.0f, 0.0f}, {1.0f, 1.0f, 0.0f}, {1.0f, NAN, 0.0f}, {2.0f, 0.0f, 0.0f}, {-1.0f, 0.0f},
        {INFINITY, 1.0f, 0.0f}};
    for (const auto & b : bad_schedules) {
        CHECK_EQ(sample(SamplerType::Euler, fn, b, x.data(), x.size(), nullptr).code(), SDGO_ERR_INVALID_ARGUMENT);
    }
    const std::vector<float> good = {2.0f, 1.0f, 0.0f};
    CHECK_EQ(sample(SamplerType::EulerA, fn, good, x.data(), x.size(), nullptr).code(), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sample(SamplerType::Lcm, fn, good, x.data(), x.size(), nullptr).code(), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sample(SamplerType::Euler, fn, good, nullptr, 4, nullptr).code(), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sample(SamplerType::Euler, DenoiseFn(), good, x.data(), 4, nullptr).code(), SDGO_ERR_INVALID_ARGUMENT);
    SamplerOptions o;
    o.eta = NAN;
    PhiloxRng rng(0);
    CHECK_EQ(sample(SamplerType::EulerA, fn, good, x.data(), 4, &rng, o).code(), SDGO_ERR_INVALID_ARGUMENT);
    x[2] = NAN;
    CHECK_EQ(sample(SamplerType::Euler, fn, good, x.data(), 4, nullptr).code(), SDGO_ERR_INVALID_ARGUMENT);
    // eta = 0 makes euler_a deterministic (no generator needed).
    std::fill(x.begin(), x.end(), 0.5f);
    o.eta = 0.0f;
    CHECK(sample(SamplerType::EulerA, fn, good, x.data(), 4, nullptr, o).ok());
}

TEST(names_round_trip) {
    for (SamplerType t : {SamplerType::Euler, SamplerType::EulerA, SamplerType::Heun, SamplerType::Dpm2,
                          SamplerType::Dpmpp2sA, SamplerType::Dpmpp2m, SamplerType::Lcm, SamplerType::Ddim}) {
        SamplerType back;
        REQUIRE(parse_sampler(sampler_name(t), &back).ok());
        CHECK(back == t);
    }
    for (Scheduler s : {Scheduler::Discrete, Scheduler::Karras, Scheduler::Exponential, Scheduler::SgmUniform,
                        Scheduler::Simple, Scheduler::DdimUniform, Scheduler::Lcm}) {
        Scheduler back;
        REQUIRE(parse_scheduler(scheduler_name(s), &back).ok());
        CHECK(back == s);
    }
    SamplerType t;
    CHECK(parse_sampler("dpmpp_2m", &t).ok() && t == SamplerType::Dpmpp2m);
    CHECK(parse_sampler("euler_ancestral", &t).ok() && t == SamplerType::EulerA);
}

// ---- img2img ----------------------------------------------------------------------------------

TEST(img2img_strength_mappings) {
    Img2ImgPlan p;
    // n = 20, s = 0.75: A1111/sd.cpp run 16 steps from sigma[4]; diffusers 15 from sigma[5].
    REQUIRE(img2img_plan(20, 0.75, Img2ImgMode::A1111, &p).ok());
    CHECK_EQ(p.start_index, 4);
    CHECK_EQ(p.steps, 16);
    REQUIRE(img2img_plan(20, 0.75, Img2ImgMode::Diffusers, &p).ok());
    CHECK_EQ(p.start_index, 5);
    CHECK_EQ(p.steps, 15);
    // Strength 1: all steps in both (A1111 caps at 0.999 -> floor(19.98) + 1).
    REQUIRE(img2img_plan(20, 1.0, Img2ImgMode::A1111, &p).ok());
    CHECK_EQ(p.start_index, 0);
    CHECK_EQ(p.steps, 20);
    REQUIRE(img2img_plan(20, 1.0, Img2ImgMode::Diffusers, &p).ok());
    CHECK_EQ(p.start_index, 0);
    CHECK_EQ(p.steps, 20);
    // Tiny strength: A1111 still runs one step from the last sigma; diffusers has none.
    REQUIRE(img2img_plan(20, 0.01, Img2ImgMode::A1111, &p).ok());
    CHECK_EQ(p.start_index, 19);
    CHECK_EQ(p.steps, 1);
    CHECK_EQ(img2img_plan(20, 0.01, Img2ImgMode::Diffusers, &p).code(), SDGO_ERR_INVALID_ARGUMENT);
    // For every (n, s), start_index + steps = n and A1111 runs one step more
    // than diffusers unless the strength is 1 (then both run all n).
    for (int n : {1, 4, 20, 50}) {
        for (double s : {0.3, 0.5, 0.6, 0.8, 0.99}) {
            Img2ImgPlan a, d;
            REQUIRE(img2img_plan(n, s, Img2ImgMode::A1111, &a).ok());
            CHECK_EQ(a.start_index + a.steps, n);
            Status st = img2img_plan(n, s, Img2ImgMode::Diffusers, &d);
            if (static_cast<int>(std::floor(n * s)) == 0) {
                CHECK_EQ(st.code(), SDGO_ERR_INVALID_ARGUMENT);
                continue;
            }
            REQUIRE(st.ok());
            CHECK_EQ(d.start_index + d.steps, n);
            CHECK_EQ(a.steps, d.steps + 1);
        }
    }
    for (double bad : {0.0, -0.5, 1.5, static_cast<double>(NAN)}) {
        CHECK_EQ(img2img_plan(20, bad, Img2ImgMode::A1111, &p).code(), SDGO_ERR_INVALID_ARGUMENT);
    }
    CHECK_EQ(img2img_plan(0, 0.5, Img2ImgMode::A1111, &p).code(), SDGO_ERR_INVALID_ARGUMENT);

    // The tail of the schedule an img2img run uses: a1111 plan over Karras 20.
    std::vector<float> sig;
    REQUIRE(make_sigmas(ldm(), Scheduler::Karras, 20, &sig).ok());
    REQUIRE(img2img_plan(20, 0.75, Img2ImgMode::A1111, &p).ok());
    const std::vector<float> tail(sig.begin() + p.start_index, sig.end());
    CHECK_EQ(tail.size(), size_t(p.steps + 1));
    CHECK_EQ(tail.back(), 0.0f);
}
