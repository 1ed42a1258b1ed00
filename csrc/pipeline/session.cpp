// session.cpp — see session.h.
#include "pipeline/session.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "base/log.h"
#include "model/naming.h"
#include "sampling/denoiser.h"

namespace sdgo::pipeline {

namespace {

using clock = std::chrono::steady_clock;

bool canceled(const Hooks & h) { return h.canceled(); }

bool all_finite(const float * x, size_t n) {
    for (size_t i = 0; i < n; ++i)
        if (!std::isfinite(x[i])) return false;
    return true;
}

// How a request's prompts are encoded (by the model and by its refiner).
PromptOptions prompt_options(const Request & req, bool diffusers) {
    PromptOptions po;
    po.clip_skip = req.clip_skip;
    po.max_chunks = req.max_prompt_chunks;
    po.literal = diffusers;
    po.clip_skip_negative = !diffusers;
    return po;
}

bool abort_requested(void * user) { return canceled(*static_cast<const Hooks *>(user)); }

// Clears the backend's abort callback when a generation leaves.
struct AbortGuard {
    Backend * be;
    AbortGuard(Backend * b, const Hooks * h) : be(b) { be->set_abort_callback(abort_requested, const_cast<Hooks *>(h)); }
    ~AbortGuard() { be->set_abort_callback(nullptr, nullptr); }
};

}  // namespace

// Everything about a request that follows from it and the model before any
// network runs: sizes, the noise schedule and the sigmas.
struct Session::Plan {
    int W = 0, H = 0, f = 0, w = 0, h = 0;
    int64_t C = 0;        // latent channels
    int64_t Cin = 0;      // U-Net input channels (latent + concat)
    size_t n_lat = 0, n_pix = 0, plane = 0;
    bool diffusers = false, dpm_vp = false, has_init = false, has_mask = false, inpaint_model = false, cfg = false;
    sampling::RngType rng = sampling::RngType::Cuda;
    std::unique_ptr<sampling::NoiseSchedule> sched;
    std::unique_ptr<sampling::TimestepMap> tmap;
    std::vector<float> sigmas;
    int steps = 0;
    int refine_at = 0;    // the first step the refiner takes (= steps: none)
    VaeTileOptions vae;
};

// The image side of conditioning: init image moments and the latent mask.
struct Session::ImageCond {
    std::vector<float> init_mean, init_logvar;      // VAE moments of the init image
    std::vector<float> masked_mean, masked_logvar;  // of the masked image (inpainting models)
    std::vector<float> lmask;                       // [w, h], 1 = repaint
};

// One image's latents through sampling.
struct Session::Latents {
    std::unique_ptr<sampling::Rng> rng;
    int64_t seed = 0;
    std::vector<float> x, init_lat, noise;
};

Status Session::create(const Model & m, const SessionOptions & opt, std::unique_ptr<Session> * out) {
    out->reset();
    std::unique_ptr<Session> s(new Session(m));
    BackendOptions bo;
    bo.n_threads = opt.n_threads > 0 ? opt.n_threads : m.options().n_threads;
    bo.variant = opt.code_path.empty() ? m.options().code_path : opt.code_path;
    SDGO_TRY(m.device()->new_backend(bo, &s->be_));
    *out = std::move(s);
    return Status();
}

Session::~Session() = default;

Status Session::encode_prompts(const std::string & prompt, const std::string & negative, const PromptOptions & opt,
                               Condition * cond, Condition * uncond, int64_t * tokens) {
    return m_->conditioner().encode(*be_, prompt, negative, opt, cond, uncond, tokens);
}

Status Session::vae_encode(const std::vector<float> & image, int W, int H, std::vector<float> * mean,
                           std::vector<float> * logvar) {
    const model::VaeConfig & vc = m_->vae_config();
    Graph g;
    Tensor * x = g.input(DType::f32, {W, H, vc.in_channels, 1}, "image");
    Tensor *m = nullptr, *lv = nullptr;
    SDGO_TRY(model::build_vae_encoder(g, m_->vae_weights(), Model::vae_prefix(), vc, x, &m, &lv));
    g.set_output(m);
    g.set_output(lv);
    SDGO_TRY(be_->alloc_graph(g));
    SDGO_TRY(be_->set_tensor(x, image.data(), 0, image.size() * sizeof(float)));
    SDGO_TRY(be_->compute(g));
    mean->resize(size_t(m->nelements()));
    logvar->resize(size_t(lv->nelements()));
    SDGO_TRY(be_->get_tensor(m, mean->data(), 0, mean->size() * sizeof(float)));
    SDGO_TRY(be_->get_tensor(lv, logvar->data(), 0, logvar->size() * sizeof(float)));
    if (!all_finite(mean->data(), mean->size())) return error(SDGO_ERR_INTERNAL, "the VAE encoder produced NaN");
    return Status();
}

Status Session::vae_decode(const float * latent, int w, int h, std::vector<float> * image) {
    VaeTileOptions whole;
    whole.tiling = VaeTiling::off;
    return vae_decode(latent, w, h, whole, image);
}

Status Session::vae_decode(const float * latent, int w, int h, const VaeTileOptions & opt, std::vector<float> * image) {
    const model::VaeConfig & vc = m_->vae_config();
    std::vector<float> z(size_t(w) * h * size_t(vc.z_channels));
    const float inv = 1.0f / vc.scaling_factor;
    for (size_t i = 0; i < z.size(); ++i) z[i] = latent[i] * inv;
    if (opt.tiling != VaeTiling::on) {
        Status st = decode_region(z, w, h, 0, 0, w, h, image);
        if (st.ok() || opt.tiling == VaeTiling::off) return st;
        // Too big for the device (refused before any compute): in tiles.
        if (st.code() != SDGO_ERR_UNSUPPORTED && st.code() != SDGO_ERR_OUT_OF_MEMORY) return st;
        SDGO_LOG_I("VAE decode of %dx%d does not fit %s (%s): decoding in tiles of %d pixels", w * vae_scale(),
                   h * vae_scale(), be_->device()->info().name.c_str(), st.message().c_str(), opt.tile_size);
    }
    return decode_tiled(z, w, h, opt, image);
}

int Session::vae_scale() const { return m_->summary().vae_downscale; }

// Decodes the latent window [x0, x0 + tw) x [y0, y0 + th) of the unscaled
// latent z [w, h, C] into an image [tw*f, th*f, 3].
Status Session::decode_region(const std::vector<float> & z, int w, int h, int x0, int y0, int tw, int th,
                              std::vector<float> * image) {
    const model::VaeConfig & vc = m_->vae_config();
    const int64_t C = vc.z_channels;
    std::vector<float> zt;
    const float * src = z.data();
    if (x0 != 0 || y0 != 0 || tw != w || th != h) {
        zt.resize(size_t(tw) * th * size_t(C));
        for (int64_t c = 0; c < C; ++c)
            for (int y = 0; y < th; ++y)
                std::memcpy(&zt[(size_t(c) * th + y) * tw], &z[(size_t(c) * h + y0 + y) * w + x0], size_t(tw) * 4);
        src = zt.data();
    }
    Graph g;
    Tensor * x = g.input(DType::f32, {tw, th, C, 1}, "z");
    Tensor * y = nullptr;
    SDGO_TRY(model::build_vae_decoder(g, m_->vae_weights(), Model::vae_prefix(), vc, x, &y));
    g.set_output(y);
    SDGO_TRY(be_->alloc_graph(g));
    SDGO_TRY(be_->set_tensor(x, src, 0, size_t(tw) * th * size_t(C) * sizeof(float)));
    SDGO_TRY(be_->compute(g));
    image->resize(size_t(y->nelements()));
    SDGO_TRY(be_->get_tensor(y, image->data(), 0, image->size() * sizeof(float)));
    if (!all_finite(image->data(), image->size()))
        return error(SDGO_ERR_INTERNAL, "the VAE decoder produced NaN or infinity (not writing a black image)");
    return Status();
}

namespace {

// Tile starts along an axis of n latent pixels: tiles of t with at least o
// shared between neighbours, the last one flush with the end.
std::vector<int> tile_starts(int n, int t, int o) {
    if (t >= n) return {0};
    std::vector<int> v;
    for (int s = 0; s + t < n; s += t - o) v.push_back(s);
    v.push_back(n - t);
    return v;
}

// Blend weight of pixel i of a tile of n pixels: 1 inside, a linear ramp
// over the `ramp` pixels next to a side that has a neighbouring tile.
float ramp_weight(int i, int n, int ramp, bool before, bool after) {
    float wt = 1.0f;
    if (ramp <= 0) return wt;
    if (before) wt = std::min(wt, (float(i) + 0.5f) / float(ramp));
    if (after) wt = std::min(wt, (float(n - i) - 0.5f) / float(ramp));
    return wt;
}

}  // namespace

Status Session::decode_tiled(const std::vector<float> & z, int w, int h, const VaeTileOptions & opt,
                             std::vector<float> * image) {
    const int f = vae_scale();
    const int t = std::max(1, opt.tile_size / f), o = std::min(opt.tile_overlap / f, t / 2);
    const int W = w * f, H = h * f;
    const std::vector<int> xs = tile_starts(w, t, o), ys = tile_starts(h, t, o);
    const int tw = std::min(t, w), th = std::min(t, h);
    std::vector<float> acc(size_t(W) * H * 3, 0.0f), wsum(size_t(W) * H, 0.0f), tile;
    for (size_t yi = 0; yi < ys.size(); ++yi)
        for (size_t xi = 0; xi < xs.size(); ++xi) {
            SDGO_TRY(decode_region(z, w, h, xs[xi], ys[yi], tw, th, &tile)
                         .wrap(strprintf("VAE tile at (%d, %d)", xs[xi] * f, ys[yi] * f).c_str()));
            const int PW = tw * f, PH = th * f, X0 = xs[xi] * f, Y0 = ys[yi] * f;
            for (int py = 0; py < PH; ++py) {
                const float wy = ramp_weight(py, PH, o * f, yi > 0, yi + 1 < ys.size());
                for (int px = 0; px < PW; ++px) {
                    const float wt = wy * ramp_weight(px, PW, o * f, xi > 0, xi + 1 < xs.size());
                    const size_t at = size_t(Y0 + py) * W + X0 + px;
                    wsum[at] += wt;
                    for (int c = 0; c < 3; ++c) acc[size_t(c) * W * H + at] += wt * tile[(size_t(c) * PH + py) * PW + px];
                }
            }
        }
    image->resize(acc.size());
    for (size_t i = 0; i < wsum.size(); ++i)
        for (int c = 0; c < 3; ++c) (*image)[size_t(c) * wsum.size() + i] = acc[size_t(c) * wsum.size() + i] / wsum[i];
    return Status();
}

Status Session::plan(const Request & req, Plan * p) const {
    SDGO_TRY(validate_request(req));
    const ModelSummary & s = m_->summary();
    if (req.width % s.granularity || req.height % s.granularity)
        return error(SDGO_ERR_INVALID_ARGUMENT, "width and height (%dx%d) must be multiples of %d for this model",
                     req.width, req.height, s.granularity);
    p->vae.tiling = req.vae_tiling;
    p->vae.tile_size = req.vae_tile_size;
    p->vae.tile_overlap = req.vae_tile_overlap;
    p->has_init = !req.init_rgb.empty();
    p->has_mask = !req.mask.empty();
    p->inpaint_model = m_->concat_channels() > 0;
    if (p->inpaint_model && !p->has_mask && p->has_init)
        return error(SDGO_ERR_INVALID_ARGUMENT, "this is an inpainting model: img2img needs a mask (or use txt2img)");
    p->rng = req.rng < 0 ? m_->options().rng : sampling::RngType(req.rng);
    p->diffusers = req.compat == Compat::diffusers;
    p->W = req.width;
    p->H = req.height;
    p->f = s.vae_downscale;
    p->w = p->W / p->f;
    p->h = p->H / p->f;
    p->C = m_->unet_config().out_channels;
    p->Cin = m_->unet_config().in_channels;
    p->plane = size_t(p->w) * p->h;
    p->n_lat = p->plane * size_t(p->C);
    p->n_pix = size_t(p->W) * p->H;
    // diffusers guides only above 1 (a scale <= 1 is one U-Net pass); A1111
    // applies the formula to any scale but 1.
    p->cfg = req.compat == Compat::diffusers ? req.cfg_scale > 1.0f : req.cfg_scale != 1.0f;

    // The schedule. diffusers: DPMSolverMultistepScheduler (dpmsolver++,
    // order 2) for dpm++2m, EulerDiscrete-style timesteps for everything
    // else; "linspace" spacing, steps_offset 0.
    const bool d = p->diffusers;
    const DiffusersScheduler & dsc = m_->diffusers_scheduler();
    if (d && !dsc.unsupported.empty())
        return error(SDGO_ERR_UNSUPPORTED, "%s, which the diffusers mode does not reproduce (the a1111 mode ignores it)",
                     dsc.unsupported.c_str());
    if (req.one_generator && (!d || p->has_init || p->has_mask))
        return error(SDGO_ERR_UNSUPPORTED, "one generator for the whole batch is offered for diffusers-mode txt2img only");
    if (d && (req.sampler == sampling::SamplerType::Ddim || req.sampler == sampling::SamplerType::Lcm))
        return error(SDGO_ERR_UNSUPPORTED,
                     "sampler %s: the diffusers mode does not reproduce DDIMScheduler's and LCMScheduler's own "
                     "timesteps yet; use the a1111 mode for it",
                     sampling::sampler_name(req.sampler));
    if (d && req.scheduler != sampling::Scheduler::Discrete)
        return error(SDGO_ERR_INVALID_ARGUMENT,
                     "scheduler %s: the diffusers mode takes its schedule from the model's scheduler config; use "
                     "the a1111 mode for other schedules",
                     sampling::scheduler_name(req.scheduler));
    p->sched = d ? std::make_unique<sampling::NoiseSchedule>(sampling::ScheduleTable::Diffusers, dsc.beta_start,
                                                             dsc.beta_end)
                 : std::make_unique<sampling::NoiseSchedule>(sampling::ScheduleTable::Ldm);
    p->tmap = std::make_unique<sampling::TimestepMap>(
        p->sched.get(), d ? sampling::TimestepMode::Table : sampling::TimestepMode::Interpolated);
    p->dpm_vp = d && req.sampler == sampling::SamplerType::Dpmpp2m;
    if (d) {
        sampling::DiffusersSchedule ds;
        if (p->dpm_vp)
            SDGO_TRY(sampling::diffusers_dpmsolver_schedule(*p->sched, req.steps, dsc.spacing, dsc.steps_offset, &ds));
        else
            SDGO_TRY(sampling::diffusers_euler_schedule(*p->sched, req.steps, dsc.spacing, dsc.steps_offset, &ds));
        p->sigmas = ds.sigmas;
        SDGO_TRY(p->tmap->set_table(ds.sigmas, ds.timesteps));
    } else {
        SDGO_TRY(sampling::make_sigmas(*p->sched, req.scheduler, req.steps, &p->sigmas));
    }
    if (p->has_init) {
        sampling::Img2ImgPlan ip;
        SDGO_TRY(sampling::img2img_plan(req.steps, req.strength,
                                        d ? sampling::Img2ImgMode::Diffusers : sampling::Img2ImgMode::A1111, &ip));
        p->sigmas.erase(p->sigmas.begin(), p->sigmas.begin() + ip.start_index);
    }
    p->steps = int(p->sigmas.size()) - 1;

    // Two-stage SDXL: where the refiner takes over (Request::refiner_switch).
    p->refine_at = p->steps;
    const float sw = req.refiner_switch < 0.0f ? (m_->refiner() ? kDefaultRefinerSwitch : 1.0f) : req.refiner_switch;
    if (sw < 1.0f) {
        if (!m_->refiner())
            return error(SDGO_ERR_INVALID_ARGUMENT,
                         "refiner switch %g asks for a refiner, but the model was loaded without one", double(sw));
        const float n_train = float(sampling::NoiseSchedule::kTrainSteps);
        for (int i = 0; i < p->steps; ++i) {
            const float t = p->tmap->timestep(p->sigmas[size_t(i)]);
            const bool refiner = d ? t < std::round(n_train * (1.0f - sw))
                                   : (n_train - 1.0f - std::round(t)) / n_train >= sw;
            if (refiner) {
                p->refine_at = i;
                break;
            }
        }
    }
    return Status();
}

Status Session::condition(const Request & req, const Plan & p, Condition * cond, Condition * uncond, ImageCond * ic) {
    int64_t tokens = 0;
    SDGO_TRY(encode_prompts(req.prompt, req.negative_prompt, prompt_options(req, p.diffusers), cond, uncond, &tokens));
    SDGO_LOG_D("prompt: %lld tokens, context of %lld", (long long)tokens, (long long)cond->tokens());
    if (!p.has_init && !p.inpaint_model) return Status();

    // The init image, and its moments.
    std::vector<float> init_img(p.n_pix * 3);  // [W, H, 3] planar in [-1, 1]
    if (p.has_init)
        for (size_t i = 0; i < p.n_pix; ++i)
            for (int c = 0; c < 3; ++c) init_img[size_t(c) * p.n_pix + i] = req.init_rgb[i * 3 + c] / 255.0f * 2.0f - 1.0f;
    if (p.has_mask) {
        ic->lmask.resize(p.plane);
        for (int y = 0; y < p.h; ++y)
            for (int x = 0; x < p.w; ++x)
                ic->lmask[size_t(y) * p.w + x] = req.mask[size_t(y * p.f) * p.W + size_t(x * p.f)] >= 128;
    }
    if (p.has_init && !(p.inpaint_model && p.diffusers && req.strength >= 1.0f))
        SDGO_TRY(vae_encode(init_img, p.W, p.H, &ic->init_mean, &ic->init_logvar));
    if (!p.inpaint_model) return Status();

    // Concat channels of an inpainting model: the latent mask and the
    // masked image's latent (txt2img: repaint everything over an empty,
    // zero, masked image, as diffusers and A1111 do).
    const float scale = m_->vae_config().scaling_factor;
    const int64_t cc = m_->concat_channels();
    const int64_t masked_ch = cc - 1;
    std::vector<float> concat(p.plane * size_t(cc), 0.0f);
    if (p.has_mask) {
        std::vector<float> masked(init_img);
        for (size_t i = 0; i < p.n_pix; ++i)
            if (req.mask[i] >= 128)
                for (int c = 0; c < 3; ++c) masked[size_t(c) * p.n_pix + i] = 0.0f;
        SDGO_TRY(vae_encode(masked, p.W, p.H, &ic->masked_mean, &ic->masked_logvar));
        std::copy(ic->lmask.begin(), ic->lmask.end(), concat.begin());
    } else {
        std::fill(concat.begin(), concat.begin() + p.plane, 1.0f);
        std::vector<float> zero(p.n_pix * 3, 0.0f);
        SDGO_TRY(vae_encode(zero, p.W, p.H, &ic->masked_mean, &ic->masked_logvar));
    }
    if (ic->masked_mean.size() != p.plane * size_t(masked_ch))
        return error(SDGO_ERR_FORMAT, "the VAE gives %zu latent values, the U-Net's concat channels need %zu",
                     ic->masked_mean.size(), p.plane * size_t(masked_ch));
    for (size_t i = 0; i < p.plane * size_t(masked_ch); ++i) concat[p.plane + i] = ic->masked_mean[i] * scale;
    cond->concat = concat;
    cond->concat_channels = cc;
    uncond->concat = std::move(concat);
    uncond->concat_channels = cc;
    return Status();
}

Status Session::prepare_latents(const Request & req, const Plan & p, int index, const ImageCond & ic,
                                Condition * cond, Latents * lat) {
    if (req.one_generator) {
        lat->seed = req.seed;
        lat->rng = std::make_unique<sampling::BatchSliceRng>(sampling::make_rng(p.rng, uint64_t(req.seed)),
                                                             req.batch, index);
    } else {
        lat->seed = int64_t(sampling::batch_seed(uint64_t(req.seed), index));
        lat->rng = sampling::make_rng(p.rng, uint64_t(lat->seed));
    }
    sampling::Rng & rng = *lat->rng;
    const float scale = m_->vae_config().scaling_factor;
    // The init latent (diffusers: a posterior sample, drawn first).
    lat->init_lat.clear();
    if (!ic.init_mean.empty()) {
        lat->init_lat.resize(p.n_lat);
        if (p.diffusers) {
            std::vector<float> eps(p.n_lat);
            rng.randn(p.n_lat, eps.data());
            model::vae_sample(ic.init_mean.data(), ic.init_logvar.data(), eps.data(), lat->init_lat.data(), p.n_lat);
        } else {
            std::copy(ic.init_mean.begin(), ic.init_mean.end(), lat->init_lat.begin());
        }
        for (float & v : lat->init_lat) v *= scale;
    }
    lat->noise.resize(p.n_lat);
    lat->x.resize(p.n_lat);
    rng.randn(p.n_lat, lat->noise.data());
    if (p.inpaint_model && p.has_mask && p.diffusers) {
        // diffusers encodes the masked image with a posterior sample drawn
        // after the initial noise.
        const size_t n = ic.masked_mean.size();
        std::vector<float> eps(n), sample(n);
        rng.randn(n, eps.data());
        model::vae_sample(ic.masked_mean.data(), ic.masked_logvar.data(), eps.data(), sample.data(), n);
        for (size_t i = 0; i < n; ++i) cond->concat[p.plane + i] = sample[i] * scale;
    } else if (p.has_mask && p.diffusers) {
        // On a latent-only U-Net diffusers' inpaint pipelines still encode
        // the masked image and draw its posterior sample (unused): the same
        // draw keeps the later noise (ancestral samplers) in step.
        std::vector<float> unused(p.n_lat);
        rng.randn(p.n_lat, unused.data());
    }
    const std::vector<float> & sig = p.sigmas;
    if (!lat->init_lat.empty() && !(p.has_mask && !p.inpaint_model && req.strength >= 1.0f && p.diffusers)) {
        for (size_t i = 0; i < p.n_lat; ++i) lat->x[i] = lat->init_lat[i] + lat->noise[i] * sig[0];
    } else {
        // VP schedulers start from unit-variance noise: sqrt(sigma^2 + 1) in VE units
        // diffusers: a VP scheduler, or Euler with leading spacing, starts
        // from sqrt(sigma^2 + 1) (its init_noise_sigma)
        const bool vp_init =
            p.dpm_vp || m_->diffusers_scheduler().spacing == sampling::TimestepSpacing::Leading;
        const float s0 = p.diffusers ? sampling::initial_noise_scale(vp_init ? sampling::NoiseInit::SqrtSigmaSqPlusOne
                                                                             : sampling::NoiseInit::Sigma,
                                                                     sig[0])
                                     : sig[0];
        for (size_t i = 0; i < p.n_lat; ++i) lat->x[i] = lat->noise[i] * s0;
    }
    return Status();
}

Status Session::decode(const Plan & p, const std::vector<float> & x, int index, Result * out) {
    std::vector<float> img;
    SDGO_TRY(vae_decode(x.data(), p.w, p.h, p.vae, &img));
    float * fim = out->images.data() + size_t(index) * p.n_pix * 3;
    uint8_t * rgb = out->rgb.data() + size_t(index) * p.n_pix * 3;
    for (size_t i = 0; i < p.n_pix; ++i)
        for (int c = 0; c < 3; ++c) {
            float v = (img[size_t(c) * p.n_pix + i] + 1.0f) * 0.5f;
            v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
            fim[i * 3 + c] = v;
            rgb[i * 3 + c] = uint8_t(std::lround(v * 255.0f));
        }
    return Status();
}

// One model's U-Net over one request: its graph (built once), the
// conditioning it reads (the caller's Conditions; an inpainting model's
// concat channels change per image) and the denoiser the samplers call.
struct Session::UNetStage {
    const Model * m = nullptr;
    const Condition *cond = nullptr, *uncond = nullptr;
    int B = 1;
    Graph g;
    Tensor *gx = nullptr, *gt = nullptr, *gy = nullptr;
    std::vector<float> x_in, model_out, F;

    Status build(const Model & model, Backend & be, const Request & req, const Plan & p, const Condition * c,
                 const Condition * u);
    Status denoise(Backend & be, const Request & req, const Plan & p, float sigma, const float * x, float * d_out);
};

Status Session::UNetStage::build(const Model & model, Backend & be, const Request & req, const Plan & p,
                                 const Condition * c, const Condition * u) {
    m = &model;
    cond = c;
    uncond = u;
    B = p.cfg ? 2 : 1;
    const model::UNetConfig & ucfg = model.unet_config();
    const int64_t Cin = ucfg.in_channels;
    const int64_t D = cond->context_dim, L = cond->tokens();
    gx = g.input(DType::f32, {p.w, p.h, Cin, B}, "x");
    gt = g.input(DType::f32, {B}, "t");
    Tensor * gc = g.input(DType::f32, {D, L, B}, "context");
    // SDXL: the label vector from the pooled text embedding and the size
    // conditioning (the refiner: the aesthetic score in place of the target
    // size, its own value on each side), inside the U-Net graph (set once
    // per request).
    Tensor *gp = nullptr, *gv = nullptr, *glabel = nullptr;
    std::vector<float> values_c, values_u;
    if (ucfg.adm_in_channels > 0) {
        const int64_t P = int64_t(cond->pooled.size());
        // A size of 0 is the output's; a negative-side value of -1 the positive's.
        auto size_or = [](int v, int dflt) { return float(v > 0 ? v : dflt); };
        auto neg_or = [](int v, float pos) { return v >= 0 ? float(v) : pos; };
        auto neg_size = [&](int v, float pos, int out) { return v < 0 ? pos : size_or(v, out); };
        const bool refiner = model.info().family == "sdxl-refiner";
        values_c = {size_or(req.original_height, p.H), size_or(req.original_width, p.W), float(req.crop_top),
                    float(req.crop_left)};
        // diffusers' refiner pipeline gives the negative side crop (0, 0)
        // (negative_crops_coords_top_left); A1111 the same crop as the positive.
        const bool zero_crop = refiner && p.diffusers;
        values_u = {neg_size(req.negative_original_height, values_c[0], p.H),
                    neg_size(req.negative_original_width, values_c[1], p.W),
                    neg_or(req.negative_crop_top, zero_crop ? 0.0f : values_c[2]),
                    neg_or(req.negative_crop_left, zero_crop ? 0.0f : values_c[3])};
        if (refiner) {
            values_c.push_back(req.aesthetic_score);
            values_u.push_back(req.negative_aesthetic_score);
        } else {
            values_c.push_back(size_or(req.target_height, p.H));
            values_c.push_back(size_or(req.target_width, p.W));
            values_u.push_back(neg_size(req.negative_target_height, values_c[4], p.H));
            values_u.push_back(neg_size(req.negative_target_width, values_c[5], p.W));
        }
        const int64_t k = int64_t(values_c.size());
        const int64_t embed = (ucfg.adm_in_channels - P) / k;
        if (P == 0 || k != Model::label_values(model.info().family) || embed <= 0 || embed % 2 != 0 ||
            P + k * embed != ucfg.adm_in_channels)
            return error(SDGO_ERR_FORMAT, "the U-Net's label input of %lld does not fit a pooled text embedding of %lld "
                         "and %lld size values",
                         (long long)ucfg.adm_in_channels, (long long)P, (long long)k);
        gp = g.input(DType::f32, {P, B}, "pooled");
        gv = g.input(DType::f32, {k, B}, "label values");
        SDGO_TRY(model::build_sdxl_label(g, gp, gv, int(embed), &glabel));
    }
    SDGO_TRY(model::build_unet(g, model.unet_weights(), Model::unet_prefix(), ucfg, gx, gt, gc, glabel, &gy));
    g.set_output(gy);
    SDGO_TRY(be.alloc_graph(g));
    if (gp) {
        std::vector<float> pooled, values;
        for (int b = 0; b < B; ++b) {
            const bool neg = p.cfg && b == 0;
            const Condition & side = neg ? *uncond : *cond;
            const std::vector<float> & v = neg ? values_u : values_c;
            pooled.insert(pooled.end(), side.pooled.begin(), side.pooled.end());
            values.insert(values.end(), v.begin(), v.end());
        }
        SDGO_TRY(be.set_tensor(gp, pooled.data(), 0, pooled.size() * sizeof(float)));
        SDGO_TRY(be.set_tensor(gv, values.data(), 0, values.size() * sizeof(float)));
    }
    std::vector<float> ctx;
    ctx.reserve(size_t(D * L * B));
    if (p.cfg) ctx.insert(ctx.end(), uncond->context.begin(), uncond->context.end());
    ctx.insert(ctx.end(), cond->context.begin(), cond->context.end());
    SDGO_TRY(be.set_tensor(gc, ctx.data(), 0, ctx.size() * sizeof(float)));
    x_in.assign(size_t(p.w) * p.h * size_t(Cin) * B, 0.0f);
    model_out.assign(p.n_lat * B, 0.0f);
    F.assign(p.n_lat, 0.0f);
    return Status();
}

Status Session::UNetStage::denoise(Backend & be, const Request & req, const Plan & p, float sigma, const float * x,
                                   float * d_out) {
    const sampling::Prediction pred = m->prediction();
    const sampling::DenoiserScalings sc = sampling::denoiser_scalings(pred, sigma);
    const size_t per = x_in.size() / size_t(B);
    const Condition * sides[2] = {p.cfg ? uncond : cond, cond};
    for (int b = 0; b < B; ++b) {
        float * dst = x_in.data() + per * b;
        for (size_t i = 0; i < p.n_lat; ++i) dst[i] = x[i] * sc.c_in;
        const Condition & c = *sides[b];
        if (!c.concat.empty()) std::copy(c.concat.begin(), c.concat.end(), dst + p.n_lat);
    }
    const float t = p.tmap->timestep(sigma);
    const float ts[2] = {t, t};
    SDGO_TRY(be.set_tensor(gx, x_in.data(), 0, x_in.size() * sizeof(float)));
    SDGO_TRY(be.set_tensor(gt, ts, 0, sizeof(float) * B));
    SDGO_TRY(be.compute(g));
    SDGO_TRY(be.get_tensor(gy, model_out.data(), 0, model_out.size() * sizeof(float)));
    if (!all_finite(model_out.data(), model_out.size()))
        return error(SDGO_ERR_INTERNAL, "the U-Net produced NaN or infinity (sigma %g)", double(sigma));
    if (p.cfg) sampling::cfg_combine(model_out.data(), model_out.data() + p.n_lat, req.cfg_scale, F.data(), p.n_lat);
    else std::copy(model_out.begin(), model_out.begin() + p.n_lat, F.begin());
    sampling::apply_denoiser(pred, sigma, x, F.data(), d_out, p.n_lat);
    return Status();
}

Status Session::generate(const Request & req, const Hooks & hooks, Result * out) {
    *out = Result();
    Plan p;
    SDGO_TRY(plan(req, &p));
    if (canceled(hooks)) return error(SDGO_ERR_CANCELED, "canceled");
    AbortGuard guard(be_.get(), &hooks);
    const auto t_start = clock::now();
    auto phase = [&](Phase ph, int index, int count) {
        if (hooks.phase) hooks.phase(ph, index, count, std::chrono::duration<double>(clock::now() - t_start).count());
    };

    // ---- condition ----
    phase(Phase::encode, 0, 1);
    Condition cond, uncond;
    ImageCond ic;
    SDGO_TRY(condition(req, p, &cond, &uncond, &ic));
    if (canceled(hooks)) return error(SDGO_ERR_CANCELED, "canceled");

    // ---- the U-Net graphs (built once per request): the model's, and the
    // refiner's when the request hands part of the schedule to it ----
    UNetStage base;
    SDGO_TRY(base.build(*m_, *be_, req, p, &cond, &uncond));
    const Model * rm = p.refine_at < p.steps ? m_->refiner() : nullptr;
    Condition rcond, runcond;
    UNetStage refine;
    if (rm) {
        SDGO_TRY(rm->conditioner()
                     .encode(*be_, req.prompt, req.negative_prompt, prompt_options(req, p.diffusers), &rcond, &runcond,
                             nullptr)
                     .wrap("refiner"));
        SDGO_TRY(refine.build(*rm, *be_, req, p, &rcond, &runcond).wrap("refiner"));
    }
    int calls = 0;
    // A1111 swaps the model inside one sampler run, by sigma (see
    // Request::refiner_switch); under diffusers each model runs its own part.
    auto run_stage = [&](UNetStage & stage, const float * x, float sigma, float * d_out) -> Status {
        if (canceled(hooks)) return error(SDGO_ERR_CANCELED, "canceled");
        ++calls;
        return stage.denoise(*be_, req, p, sigma, x, d_out);
    };
    auto denoise = [&](const float * x, float sigma, float * d_out) -> Status {
        const bool use_refiner = rm && !p.diffusers && sigma <= p.sigmas[size_t(p.refine_at)];
        return run_stage(use_refiner ? refine : base, x, sigma, d_out);
    };
    auto denoise_refiner = [&](const float * x, float sigma, float * d_out) -> Status {
        return run_stage(refine, x, sigma, d_out);
    };

    sampling::SamplerOptions so;
    so.eta = req.eta;
    out->width = p.W;
    out->height = p.H;
    out->batch = req.batch;
    out->rgb.resize(size_t(req.batch) * p.n_pix * 3);
    out->images.resize(size_t(req.batch) * p.n_pix * 3);
    out->latents.resize(size_t(req.batch) * p.n_lat);
    const int total = p.steps * req.batch;
    const auto t0 = clock::now();

    for (int bi = 0; bi < req.batch; ++bi) {
        // ---- prepare latents ----
        phase(Phase::sample, bi, req.batch);
        Latents lat;
        SDGO_TRY(prepare_latents(req, p, bi, ic, &cond, &lat));
        if (p.cfg && !cond.concat.empty()) uncond.concat = cond.concat;
        out->seeds.push_back(lat.seed);

        // ---- sample ----
        const bool blend = p.has_mask && !p.inpaint_model;
        auto step_fn = [&](int step, int) -> bool {
            if (blend) {
                const float sn = p.sigmas[size_t(step)];
                for (size_t c = 0; c < size_t(p.C); ++c)
                    for (size_t i = 0; i < p.plane; ++i) {
                        const size_t k = c * p.plane + i;
                        if (ic.lmask[i] < 0.5f) lat.x[k] = lat.init_lat[k] + lat.noise[k] * sn;
                    }
            }
            if (hooks.progress) {
                const double secs = std::chrono::duration<double>(clock::now() - t0).count();
                hooks.progress(bi * p.steps + step, total, secs);
            }
            return !canceled(hooks);
        };
        Status st;
        if (rm && p.diffusers) {
            // the base's part, then the refiner's from the base's latents,
            // each a sampler run of its own (denoising_end / denoising_start)
            const std::vector<float> first(p.sigmas.begin(), p.sigmas.begin() + p.refine_at + 1);
            const std::vector<float> second(p.sigmas.begin() + p.refine_at, p.sigmas.end());
            st = sampling::sample(req.sampler, denoise, first, lat.x.data(), p.n_lat, lat.rng.get(), so, step_fn);
            auto step_fn2 = [&](int step, int n) { return step_fn(step + p.refine_at, n); };
            if (st.ok())
                st = sampling::sample(req.sampler, denoise_refiner, second, lat.x.data(), p.n_lat, lat.rng.get(), so,
                                      step_fn2);
        } else {
            st = sampling::sample(req.sampler, denoise, p.sigmas, lat.x.data(), p.n_lat, lat.rng.get(), so, step_fn);
        }
        if (!st.ok()) {
            if (st.code() == SDGO_ERR_CANCELED || canceled(hooks))
                return error(SDGO_ERR_CANCELED, "canceled: %s", st.message().c_str());
            return st.wrap(strprintf("image %d (seed %lld)", bi + 1, (long long)lat.seed));
        }
        std::copy(lat.x.begin(), lat.x.end(), out->latents.begin() + size_t(bi) * p.n_lat);
        if (canceled(hooks)) return error(SDGO_ERR_CANCELED, "canceled");

        // ---- decode ----
        phase(Phase::decode, bi, req.batch);
        Status ds = decode(p, lat.x, bi, out);
        if (!ds.ok()) return canceled(hooks) ? error(SDGO_ERR_CANCELED, "canceled during decode") : ds;
    }
    SDGO_LOG_D("generated %d image(s) %dx%d, %d steps, %d U-Net calls", req.batch, p.W, p.H, p.steps, calls);
    return Status();
}

}  // namespace sdgo::pipeline
