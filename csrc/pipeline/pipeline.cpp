// pipeline.cpp — see pipeline.h.
#include "pipeline/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "convert/convert.h"
#include "core/log.h"
#include "cpu/cpu_features.h"
#include "formats/json.h"
#include "model/naming.h"
#include "sampling/denoiser.h"
#include "text/prompt_parse.h"

namespace sdgo::pipeline {

namespace {

const char * const kClipPrefix = "cond_stage_model.transformer.text_model.";
const char * const kUNet = "model.diffusion_model.";
const char * const kVae = "first_stage_model.";

bool canceled(const Hooks & h) { return h.cancel && h.cancel->load(std::memory_order_relaxed) != 0; }

bool all_finite(const float * x, size_t n) {
    for (size_t i = 0; i < n; ++i)
        if (!std::isfinite(x[i])) return false;
    return true;
}


// The tensors stable-diffusion.cpp leaves alone when it converts a model
// (the same policy as Go's quantize package): biases and scales,
// embeddings and input/time projections, rows that are not whole blocks,
// integer tensors.
bool keep_at_quantize(const formats::TensorEntry & t, int32_t to) {
    if (!t.is_ggml()) return true;
    if (t.type != DType::f32 && t.type != DType::f16 && t.type != DType::bf16) return true;
    if (t.type_id() == to) return true;
    int64_t bs = 1;
    size_t ts = 0;
    const char * nm = nullptr;
    if (!formats::ggml_type_info(to, &bs, &ts, &nm) || bs < 1 || t.ne[0] % bs != 0) return true;
    auto ends_with = [&](const char * suf) {
        const size_t n = std::strlen(suf);
        return t.name.size() >= n && t.name.compare(t.name.size() - n, n, suf) == 0;
    };
    if (ends_with(".bias") || ends_with(".scale") || ends_with(".weight_scale")) return true;
    static const char * const kKeep[] = {"img_in.",     "txt_in.",     "time_in.",  "vector_in.", "guidance_in.",
                                         "final_layer.", "x_embedder.", "t_embedder.", "y_embedder.", "pos_embed",
                                         "context_embedder.", "time_embed.", "label_emb.", "embedding"};
    for (const char * k : kKeep)
        if (t.name.find(k) != std::string::npos) return true;
    return false;
}

// Converts the weights of `mf` to `to` in memory (owned buffers replace the
// mapped bytes). Returns the number of tensors converted.
Status quantize_in_memory(formats::ModelFiles * mf, DType to, ThreadPool * pool, int * converted) {
    *converted = 0;
    const int32_t id = static_cast<int32_t>(to);
    for (formats::TensorEntry & t : mf->tensors) {
        if (keep_at_quantize(t, id)) continue;
        uint64_t nbytes = 0;
        SDGO_TRY(formats::ggml_nbytes(id, t.ne, &nbytes));
        uint8_t * dst = mf->alloc_owned(size_t(nbytes));
        size_t off = 0;
        Status st = convert::convert_tensor(t, id, pool, nullptr, [&](const void * data, size_t n) -> Status {
            if (off + n > nbytes) return error(SDGO_ERR_INTERNAL, "converter wrote past %llu bytes", (unsigned long long)nbytes);
            std::memcpy(dst + off, data, n);
            off += n;
            return Status();
        });
        if (!st.ok()) return st.wrap(t.name);
        if (off != nbytes) return error(SDGO_ERR_INTERNAL, "%s: converter wrote %zu of %llu bytes", t.name.c_str(), off,
                                        (unsigned long long)nbytes);
        t.type = to;
        t.data = dst;
        t.nbytes = nbytes;
        t.file_index = -1;
        t.file_offset = 0;
        ++*converted;
    }
    return Status();
}

}  // namespace

Pipeline::Pipeline() = default;
Pipeline::~Pipeline() = default;

Status Pipeline::load(const LoadOptions & opt, std::unique_ptr<Pipeline> * out) {
    out->reset();
    if (opt.model_path.empty()) return error(SDGO_ERR_INVALID_ARGUMENT, "no model path given");
    std::unique_ptr<Pipeline> p(new Pipeline());
    p->opt_ = opt;
    model::WeightOptions wopt;
    DType qtype = DType::f32;
    bool quantize = false;
    if (opt.weight_type == "f32") {
        wopt.force_f32 = true;
    } else if (!opt.weight_type.empty()) {
        if (!dtype_from_name(opt.weight_type.c_str(), &qtype))
            return error(SDGO_ERR_INVALID_ARGUMENT, "unknown weight type \"%s\"", opt.weight_type.c_str());
        if (qtype != DType::f16 && qtype != DType::bf16 && qtype != DType::q8_0 && qtype != DType::q5_0 &&
            qtype != DType::q5_1 && qtype != DType::q4_0 && qtype != DType::q4_1)
            return error(SDGO_ERR_UNSUPPORTED,
                         "weight type \"%s\" is not supported at load (f32, f16, bf16, q8_0, q5_0, q5_1, q4_0, q4_1)",
                         opt.weight_type.c_str());
        quantize = true;
    }
    cpu::CodePath path = opt.code_path_set ? opt.code_path : cpu::best_code_path();
    if (opt.pool) {
        p->backend_.reset(new CpuBackend(opt.pool, path));
    } else {
        int nt = opt.n_threads > 0 ? opt.n_threads : std::max(1, cpu::cpu_info().physical_cores);
        p->backend_.reset(new CpuBackend(nt, path));
    }
    {
        Status st = model::load_model(opt.model_path, &p->lm_);
        if (!st.ok()) return st;
    }
    if (quantize) {
        int n = 0;
        Status st = quantize_in_memory(&p->lm_.files, qtype, &p->backend_->pool(), &n);
        if (!st.ok()) return st.wrap(strprintf("converting to %s", opt.weight_type.c_str()));
        SDGO_LOG_I("converted %d tensors to %s at load", n, opt.weight_type.c_str());
    }
    SDGO_TRY(model::detect(p->lm_, &p->info_));
    const model::ModelInfo & info = p->info_;
    if (info.family == "sdxl" || info.family == "sdxl-refiner")
        return error(SDGO_ERR_UNSUPPORTED, "%s: SDXL generation is not implemented yet (SD 1.x and 2.x only)",
                     opt.model_path.c_str());
    if (info.family != "sd1" && info.family != "sd2")
        return error(SDGO_ERR_UNSUPPORTED, "%s: not a Stable Diffusion 1.x/2.x checkpoint (detected \"%s\")",
                     opt.model_path.c_str(), info.family.c_str());
    if (!info.unet.present) return error(SDGO_ERR_FORMAT, "%s: the model has no U-Net", opt.model_path.c_str());
    if (!info.text_encoder.present)
        return error(SDGO_ERR_FORMAT, "%s: the model has no text encoder", opt.model_path.c_str());

    p->weights_.reset(new model::Weights(&p->lm_.files, wopt));
    model::Weights & w = *p->weights_;

    // U-Net
    SDGO_TRY(model::unet_config_from_weights(w, kUNet, &p->unet_cfg_));
    if (const model::DiffusersComponent * c = p->lm_.component("unet")) {
        if (c->config.kind == formats::Json::object) SDGO_TRY(model::unet_config_apply_json(c->config, &p->unet_cfg_));
    }
    if (p->unet_cfg_.in_channels != 4 && p->unet_cfg_.in_channels != 9)
        return error(SDGO_ERR_UNSUPPORTED, "U-Net with %lld input channels is not supported (4 or 9)",
                     (long long)p->unet_cfg_.in_channels);
    if (p->unet_cfg_.adm_in_channels != 0)
        return error(SDGO_ERR_UNSUPPORTED, "U-Net with a label embedding (SDXL-style) is not supported yet");

    // Text encoder
    SDGO_TRY(model::clip_config_from_weights(w, kClipPrefix, &p->clip_cfg_));
    if (const model::DiffusersComponent * c = p->lm_.component("text_encoder")) {
        if (c->config.kind == formats::Json::object) SDGO_TRY(model::clip_config_apply_json(c->config, &p->clip_cfg_));
    }
    if (info.family == "sd1" && p->clip_cfg_.hidden == 768) p->clip_cfg_.act = model::ClipAct::quick_gelu;
    if (info.family == "sd2" && !p->lm_.diffusers) p->clip_cfg_.act = model::ClipAct::gelu;
    if (info.family == "sd1" && !p->lm_.component("text_encoder")) p->clip_cfg_.act = model::ClipAct::quick_gelu;
    if (p->clip_cfg_.hidden != p->unet_cfg_.context_dim)
        return error(SDGO_ERR_FORMAT, "text encoder width %lld does not match the U-Net context width %lld",
                     (long long)p->clip_cfg_.hidden, (long long)p->unet_cfg_.context_dim);
    // SD2: the penultimate layer (+ final LN). A diffusers SD2 text encoder
    // stores only 23 of the 24 layers, so its last layer is the penultimate.
    p->default_clip_skip_ = (info.family == "sd2" && !p->lm_.diffusers) ? 2 : 1;

    // Tokenizer: the folder's own when present, else the built-in CLIP BPE.
    if (!p->lm_.tokenizer.vocab_json.empty() && !p->lm_.tokenizer.merges_txt.empty()) {
        p->own_tok_.reset(new text::ClipTokenizer());
        Status st = p->own_tok_->load_folder(p->lm_.tokenizer.dir, &p->pad_id_);
        if (!st.ok()) return st.wrap("tokenizer");
        p->tok_ = p->own_tok_.get();
    } else {
        Status st;
        p->tok_ = text::ClipTokenizer::builtin(&st);
        if (!p->tok_) return st.wrap("built-in tokenizer");
        p->pad_id_ = info.family == "sd2" ? 0 : text::kClipEosId;
    }
    if (int64_t(p->tok_->vocab_size()) > p->clip_cfg_.vocab)
        return error(SDGO_ERR_FORMAT,
                     "the tokenizer has %zu tokens but the text encoder only %lld (a model with a small vocabulary "
                     "needs its own tokenizer/ folder)",
                     p->tok_->vocab_size(), (long long)p->clip_cfg_.vocab);

    // VAE: the override file or the model's own.
    model::Weights * vw = &w;
    const formats::Json * vae_json = nullptr;
    if (!opt.vae_path.empty()) {
        p->vae_lm_.reset(new model::LoadedModel());
        model::LoadOptions lo;
        lo.hint = model::Hint::vae;
        Status st = model::load_model(opt.vae_path, p->vae_lm_.get(), lo);
        if (!st.ok()) return st.wrap("VAE");
        if (quantize) {
            int n = 0;
            st = quantize_in_memory(&p->vae_lm_->files, qtype, &p->backend_->pool(), &n);
            if (!st.ok()) return st.wrap("VAE");
        }
        p->vae_weights_.reset(new model::Weights(&p->vae_lm_->files, wopt));
        vw = p->vae_weights_.get();
        if (const model::DiffusersComponent * c = p->vae_lm_->component("vae")) vae_json = &c->config;
    } else if (const model::DiffusersComponent * c = p->lm_.component("vae")) {
        vae_json = &c->config;
    }
    {
        Status st = model::vae_config_from_weights(*vw, kVae, &p->vae_cfg_);
        if (!st.ok()) return st.wrap("VAE");
    }
    if (vae_json && vae_json->kind == formats::Json::object)
        SDGO_TRY(model::vae_config_apply_json(*vae_json, &p->vae_cfg_));
    if (p->vae_cfg_.z_channels != p->unet_cfg_.out_channels)
        return error(SDGO_ERR_FORMAT, "VAE latent channels %lld do not match the U-Net's %lld",
                     (long long)p->vae_cfg_.z_channels, (long long)p->unet_cfg_.out_channels);

    // Prediction type
    std::string pred = opt.prediction.empty() ? info.prediction : opt.prediction;
    if (pred == "v") {
        p->pred_ = sampling::Prediction::V;
    } else if (pred == "epsilon" || pred == "eps") {
        p->pred_ = sampling::Prediction::Eps;
    } else if (pred == "unknown" || pred.empty()) {
        p->pred_ = sampling::Prediction::Eps;
        SDGO_LOG_W("prediction type unknown for this %s model: assuming epsilon", info.family.c_str());
    } else {
        return error(SDGO_ERR_UNSUPPORTED, "prediction type \"%s\" is not supported", pred.c_str());
    }

    ModelSummary & s = p->summary_;
    s.family = info.family;
    s.variant = info.variant;
    s.prediction = p->pred_ == sampling::Prediction::V ? "v" : "epsilon";  // detect.h naming
    s.source = p->lm_.source;
    s.unet_in_channels = int(p->unet_cfg_.in_channels);
    s.latent_channels = int(p->unet_cfg_.out_channels);
    s.vae_downscale = p->vae_cfg_.downscale();
    s.granularity = s.vae_downscale * (1 << (p->unet_cfg_.levels() - 1));
    s.text_max_positions = int(p->clip_cfg_.max_positions);
    *out = std::move(p);
    return Status();
}

Status Pipeline::encode_prompts(const std::string & prompt, const std::string & negative, int clip_skip,
                                int max_chunks, std::vector<float> * cond, std::vector<float> * uncond,
                                int64_t * tokens, bool diffusers_style) {
    const int64_t T = clip_cfg_.max_positions;
    const int64_t D = clip_cfg_.hidden;
    std::vector<int32_t> ids_c, ids_u;
    std::vector<float> mult_c, mult_u;
    int kc = 1, ku = 1;
    bool weighted = false;
    if (T == text::kClipMaxLength && !diffusers_style) {
        text::ChunkOptions co;
        co.pad_id = pad_id_;
        co.max_chunks = max_chunks;
        text::PromptChunks pc, pu;
        Status st = text::tokenize_weighted_prompt(*tok_, prompt, co, &pc);
        if (!st.ok()) return st.wrap("prompt");
        st = text::tokenize_weighted_prompt(*tok_, negative, co, &pu);
        if (!st.ok()) return st.wrap("negative prompt");
        if (tokens) *tokens = pc.token_count;
        // Pad the shorter with empty-prompt chunks (A1111).
        text::PromptChunks empty;
        SDGO_TRY(text::tokenize_weighted_prompt(*tok_, "", co, &empty));
        while (pc.n_chunks < pu.n_chunks) {
            pc.ids.insert(pc.ids.end(), empty.ids.begin(), empty.ids.end());
            pc.multipliers.insert(pc.multipliers.end(), empty.multipliers.begin(), empty.multipliers.end());
            pc.n_chunks++;
        }
        while (pu.n_chunks < pc.n_chunks) {
            pu.ids.insert(pu.ids.end(), empty.ids.begin(), empty.ids.end());
            pu.multipliers.insert(pu.multipliers.end(), empty.multipliers.begin(), empty.multipliers.end());
            pu.n_chunks++;
        }
        kc = pc.n_chunks;
        ku = pu.n_chunks;
        ids_c = std::move(pc.ids);
        ids_u = std::move(pu.ids);
        mult_c = std::move(pc.multipliers);
        mult_u = std::move(pu.multipliers);
        weighted = true;
    } else {
        // diffusers-style truncation (also for a text encoder with a short window).
        if (T < 2) return error(SDGO_ERR_FORMAT, "text encoder window of %lld positions", (long long)T);
        ids_c = tok_->encode_padded(prompt, pad_id_, int(T));
        ids_u = tok_->encode_padded(negative, pad_id_, int(T));
        if (tokens) *tokens = int64_t(tok_->encode(prompt).size());
    }
    for (int32_t id : ids_c)
        if (id < 0 || id >= clip_cfg_.vocab) return error(SDGO_ERR_FORMAT, "token id %d outside the vocabulary", id);
    for (int32_t id : ids_u)
        if (id < 0 || id >= clip_cfg_.vocab) return error(SDGO_ERR_FORMAT, "token id %d outside the vocabulary", id);

    const int n = kc + ku;
    std::vector<int32_t> ids(ids_c);
    ids.insert(ids.end(), ids_u.begin(), ids_u.end());
    Graph g;
    Tensor * t_ids = g.input(DType::i32, {T, n}, "ids");
    model::ClipOptions copt;
    copt.clip_skip = clip_skip > 0 ? clip_skip : default_clip_skip_;
    if (copt.clip_skip > clip_cfg_.layers)
        return error(SDGO_ERR_INVALID_ARGUMENT, "clip skip %d exceeds the %d layers of the text encoder",
                     copt.clip_skip, clip_cfg_.layers);
    copt.final_norm = true;
    Tensor * y = nullptr;
    SDGO_TRY(model::build_clip_text(g, *weights_, kClipPrefix, clip_cfg_, copt, t_ids, &y));
    g.set_output(y);
    SDGO_TRY(backend_->alloc_graph(g));
    SDGO_TRY(backend_->set_tensor(t_ids, ids.data(), 0, ids.size() * sizeof(int32_t)));
    SDGO_TRY(backend_->compute(g));
    std::vector<float> z(size_t(D * T * n));
    SDGO_TRY(backend_->get_tensor(y, z.data(), 0, z.size() * sizeof(float)));
    cond->assign(z.begin(), z.begin() + size_t(D * T * kc));
    uncond->assign(z.begin() + size_t(D * T * kc), z.end());
    if (weighted) {
        auto all_one = [](const std::vector<float> & m) {
            for (float v : m)
                if (v != 1.0f) return false;
            return true;
        };
        if (!all_one(mult_c)) SDGO_TRY(text::apply_emphasis(cond->data(), mult_c.data(), 1, T * kc, D));
        if (!all_one(mult_u)) SDGO_TRY(text::apply_emphasis(uncond->data(), mult_u.data(), 1, T * ku, D));
    }
    if (!all_finite(cond->data(), cond->size()) || !all_finite(uncond->data(), uncond->size()))
        return error(SDGO_ERR_INTERNAL, "the text encoder produced NaN or infinity");
    return Status();
}

Status Pipeline::vae_encode(const std::vector<float> & image, int W, int H, std::vector<float> * mean,
                            std::vector<float> * logvar) {
    model::Weights & vw = vae_weights_ ? *vae_weights_ : *weights_;
    Graph g;
    Tensor * x = g.input(DType::f32, {W, H, vae_cfg_.in_channels, 1}, "image");
    Tensor *m = nullptr, *lv = nullptr;
    SDGO_TRY(model::build_vae_encoder(g, vw, kVae, vae_cfg_, x, &m, &lv));
    g.set_output(m);
    g.set_output(lv);
    SDGO_TRY(backend_->alloc_graph(g));
    SDGO_TRY(backend_->set_tensor(x, image.data(), 0, image.size() * sizeof(float)));
    SDGO_TRY(backend_->compute(g));
    mean->resize(size_t(m->nelements()));
    logvar->resize(size_t(lv->nelements()));
    SDGO_TRY(backend_->get_tensor(m, mean->data(), 0, mean->size() * sizeof(float)));
    SDGO_TRY(backend_->get_tensor(lv, logvar->data(), 0, logvar->size() * sizeof(float)));
    if (!all_finite(mean->data(), mean->size())) return error(SDGO_ERR_INTERNAL, "the VAE encoder produced NaN");
    return Status();
}

Status Pipeline::vae_decode(const float * latent, int w, int h, std::vector<float> * image) {
    model::Weights & vw = vae_weights_ ? *vae_weights_ : *weights_;
    const int64_t C = vae_cfg_.z_channels;
    std::vector<float> z(size_t(w) * h * C);
    const float inv = 1.0f / vae_cfg_.scaling_factor;
    for (size_t i = 0; i < z.size(); ++i) z[i] = latent[i] * inv;
    Graph g;
    Tensor * x = g.input(DType::f32, {w, h, C, 1}, "z");
    Tensor * y = nullptr;
    SDGO_TRY(model::build_vae_decoder(g, vw, kVae, vae_cfg_, x, &y));
    g.set_output(y);
    SDGO_TRY(backend_->alloc_graph(g));
    SDGO_TRY(backend_->set_tensor(x, z.data(), 0, z.size() * sizeof(float)));
    SDGO_TRY(backend_->compute(g));
    image->resize(size_t(y->nelements()));
    SDGO_TRY(backend_->get_tensor(y, image->data(), 0, image->size() * sizeof(float)));
    if (!all_finite(image->data(), image->size()))
        return error(SDGO_ERR_INTERNAL, "the VAE decoder produced NaN or infinity (not writing a black image)");
    return Status();
}

Status Pipeline::generate(const Request & req, const Hooks & hooks, Result * out) {
    std::lock_guard<std::mutex> lk(mu_);
    *out = Result();
    return generate_locked(req, hooks, out);
}

Status Pipeline::generate_locked(const Request & req, const Hooks & hooks, Result * out) {
    using clock = std::chrono::steady_clock;
    const ModelSummary & s = summary_;
    // ---- validate ----
    if (req.width <= 0 || req.height <= 0)
        return error(SDGO_ERR_INVALID_ARGUMENT, "image size %dx%d must be positive", req.width, req.height);
    if (req.width > 16384 || req.height > 16384)
        return error(SDGO_ERR_INVALID_ARGUMENT, "image size %dx%d is too large (max 16384)", req.width, req.height);
    if (req.width % s.granularity || req.height % s.granularity)
        return error(SDGO_ERR_INVALID_ARGUMENT, "width and height (%dx%d) must be multiples of %d for this model",
                     req.width, req.height, s.granularity);
    if (req.steps < 1 || req.steps > 10000)
        return error(SDGO_ERR_INVALID_ARGUMENT, "steps must be between 1 and 10000, got %d", req.steps);
    if (req.batch < 1 || req.batch > 1024)
        return error(SDGO_ERR_INVALID_ARGUMENT, "batch count must be between 1 and 1024, got %d", req.batch);
    if (!std::isfinite(req.cfg_scale))
        return error(SDGO_ERR_INVALID_ARGUMENT, "cfg scale must be finite");
    if (req.clip_skip < 0) return error(SDGO_ERR_INVALID_ARGUMENT, "clip skip must be >= 0, got %d", req.clip_skip);
    const bool has_init = !req.init_rgb.empty();
    const bool has_mask = !req.mask.empty();
    if (has_init) {
        if (req.init_width != req.width || req.init_height != req.height)
            return error(SDGO_ERR_INVALID_ARGUMENT, "init image is %dx%d but the output is %dx%d", req.init_width,
                         req.init_height, req.width, req.height);
        if (req.init_rgb.size() != size_t(req.width) * req.height * 3)
            return error(SDGO_ERR_INVALID_ARGUMENT, "init image buffer has %zu bytes, expected %zu",
                         req.init_rgb.size(), size_t(req.width) * req.height * 3);
        if (!(req.strength > 0.0f && req.strength <= 1.0f))
            return error(SDGO_ERR_INVALID_ARGUMENT, "strength must be in (0, 1], got %g", double(req.strength));
    }
    if (has_mask) {
        if (!has_init) return error(SDGO_ERR_INVALID_ARGUMENT, "a mask needs an init image");
        if ((req.mask_width && req.mask_width != req.width) || (req.mask_height && req.mask_height != req.height))
            return error(SDGO_ERR_INVALID_ARGUMENT, "mask is %dx%d but the output is %dx%d", req.mask_width,
                         req.mask_height, req.width, req.height);
        if (req.mask.size() != size_t(req.width) * req.height)
            return error(SDGO_ERR_INVALID_ARGUMENT, "mask has %zu pixels, expected %dx%d", req.mask.size(), req.width,
                         req.height);
    }
    const bool inpaint_model = unet_cfg_.in_channels == 9;
    if (inpaint_model && !has_mask && has_init)
        return error(SDGO_ERR_INVALID_ARGUMENT, "this is an inpainting model: img2img needs a mask (or use txt2img)");
    sampling::RngType rng_type = req.rng < 0 ? opt_.rng : sampling::RngType(req.rng);
    if (req.rng > 1) return error(SDGO_ERR_INVALID_ARGUMENT, "unknown rng %d", req.rng);
    if (canceled(hooks)) return error(SDGO_ERR_CANCELED, "canceled");

    const bool diffusers = req.compat == Compat::diffusers;
    const int W = req.width, H = req.height;
    const int f = s.vae_downscale;
    const int w = W / f, h = H / f;
    const int64_t C = unet_cfg_.out_channels;
    const size_t n_lat = size_t(w) * h * C;
    const size_t n_pix = size_t(W) * H;

    // ---- schedule ----
    sampling::NoiseSchedule sched(diffusers ? sampling::ScheduleTable::Diffusers : sampling::ScheduleTable::Ldm);
    std::vector<float> sigmas;
    sampling::TimestepMap tmap(&sched, diffusers ? sampling::TimestepMode::Table : sampling::TimestepMode::Interpolated);
    // diffusers: DPMSolverMultistepScheduler (dpmsolver++, order 2) for
    // dpm++2m, EulerDiscrete-style timesteps for everything else; "linspace"
    // spacing, steps_offset 0.
    const bool dpm_vp = diffusers && req.sampler == sampling::SamplerType::Dpmpp2m;
    if (diffusers) {
        sampling::DiffusersSchedule ds;
        if (dpm_vp)
            SDGO_TRY(sampling::diffusers_dpmsolver_schedule(sched, req.steps, sampling::TimestepSpacing::Linspace, 0, &ds));
        else
            SDGO_TRY(sampling::diffusers_euler_schedule(sched, req.steps, sampling::TimestepSpacing::Linspace, 0, &ds));
        sigmas = ds.sigmas;
        SDGO_TRY(tmap.set_table(ds.sigmas, ds.timesteps));
    } else {
        SDGO_TRY(sampling::make_sigmas(sched, req.scheduler, req.steps, &sigmas));
    }
    int start = 0;
    if (has_init) {
        sampling::Img2ImgPlan plan;
        SDGO_TRY(sampling::img2img_plan(req.steps, req.strength,
                                        diffusers ? sampling::Img2ImgMode::Diffusers : sampling::Img2ImgMode::A1111,
                                        &plan));
        start = plan.start_index;
        sigmas.erase(sigmas.begin(), sigmas.begin() + start);
    }
    const int steps = int(sigmas.size()) - 1;

    const auto t_start = clock::now();
    auto phase = [&](Phase ph, int index, int count) {
        if (hooks.phase) hooks.phase(ph, index, count, std::chrono::duration<double>(clock::now() - t_start).count());
    };
    phase(Phase::encode, 0, 1);

    // ---- text ----
    std::vector<float> cond, uncond;
    int64_t tokens = 0;
    SDGO_TRY(encode_prompts(req.prompt, req.negative_prompt, req.clip_skip, req.max_prompt_chunks, &cond, &uncond,
                            &tokens, diffusers));
    const int64_t D = clip_cfg_.hidden;
    const int64_t L = int64_t(cond.size()) / D;
    if (canceled(hooks)) return error(SDGO_ERR_CANCELED, "canceled");

    // ---- init image / mask ----
    std::vector<float> init_img;  // [W, H, 3] planar in [-1, 1]
    if (has_init) {
        init_img.resize(n_pix * 3);
        for (size_t i = 0; i < n_pix; ++i)
            for (int c = 0; c < 3; ++c) init_img[size_t(c) * n_pix + i] = req.init_rgb[i * 3 + c] / 255.0f * 2.0f - 1.0f;
    }
    std::vector<float> lmask;  // [w, h], 1 = repaint
    if (has_mask) {
        lmask.resize(size_t(w) * h);
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x) lmask[size_t(y) * w + x] = req.mask[size_t(y * f) * W + size_t(x * f)] >= 128;
    }
    std::vector<float> init_mean, init_logvar;
    if (has_init && !(inpaint_model && diffusers && req.strength >= 1.0f)) {
        SDGO_TRY(vae_encode(init_img, W, H, &init_mean, &init_logvar));
    }
    std::vector<float> masked_mean, masked_logvar;
    if (inpaint_model && has_mask) {
        std::vector<float> masked(init_img);
        for (size_t i = 0; i < n_pix; ++i) {
            const bool repaint = req.mask[i] >= 128;
            if (repaint)
                for (int c = 0; c < 3; ++c) masked[size_t(c) * n_pix + i] = 0.0f;
        }
        SDGO_TRY(vae_encode(masked, W, H, &masked_mean, &masked_logvar));
    }
    if (canceled(hooks)) return error(SDGO_ERR_CANCELED, "canceled");

    // ---- U-Net graph (built once, batch 2 with CFG) ----
    const bool cfg = req.cfg_scale != 1.0f;
    const int B = cfg ? 2 : 1;
    const int64_t Cin = unet_cfg_.in_channels;
    Graph g;
    Tensor * gx = g.input(DType::f32, {w, h, Cin, B}, "x");
    Tensor * gt = g.input(DType::f32, {B}, "t");
    Tensor * gc = g.input(DType::f32, {D, L, B}, "context");
    Tensor * gy = nullptr;
    SDGO_TRY(model::build_unet(g, *weights_, kUNet, unet_cfg_, gx, gt, gc, nullptr, &gy));
    g.set_output(gy);
    SDGO_TRY(backend_->alloc_graph(g));
    {
        std::vector<float> ctx;
        ctx.reserve(size_t(D * L * B));
        if (cfg) ctx.insert(ctx.end(), uncond.begin(), uncond.end());
        ctx.insert(ctx.end(), cond.begin(), cond.end());
        SDGO_TRY(backend_->set_tensor(gc, ctx.data(), 0, ctx.size() * sizeof(float)));
    }

    // Extra channels of the inpainting model: mask + masked-image latent.
    std::vector<float> extra;  // [w, h, 5]
    const size_t plane = size_t(w) * h;
    if (inpaint_model) {
        extra.assign(plane * 5, 0.0f);
        if (has_mask) {
            std::copy(lmask.begin(), lmask.end(), extra.begin());
            for (size_t i = 0; i < plane * 4; ++i) extra[plane + i] = masked_mean[i] * vae_cfg_.scaling_factor;
        } else {
            // txt2img on an inpainting model: repaint everything over an
            // empty (zero) masked image, as diffusers and A1111 do.
            std::fill(extra.begin(), extra.begin() + plane, 1.0f);
            std::vector<float> zero(n_pix * 3, 0.0f), m, lv;
            SDGO_TRY(vae_encode(zero, W, H, &m, &lv));
            for (size_t i = 0; i < plane * 4; ++i) extra[plane + i] = m[i] * vae_cfg_.scaling_factor;
        }
    }

    std::vector<float> x_in(size_t(w) * h * Cin * B), model_out(n_lat * B), F(n_lat);
    int calls = 0;
    auto denoise = [&](const float * x, float sigma, float * d_out) -> Status {
        if (canceled(hooks)) return error(SDGO_ERR_CANCELED, "canceled");
        const sampling::DenoiserScalings sc = sampling::denoiser_scalings(pred_, sigma);
        const size_t per = size_t(w) * h * Cin;
        for (int b = 0; b < B; ++b) {
            float * dst = x_in.data() + per * b;
            for (size_t i = 0; i < n_lat; ++i) dst[i] = x[i] * sc.c_in;
            if (inpaint_model) std::copy(extra.begin(), extra.end(), dst + n_lat);
        }
        const float t = tmap.timestep(sigma);
        const float ts[2] = {t, t};
        SDGO_TRY(backend_->set_tensor(gx, x_in.data(), 0, x_in.size() * sizeof(float)));
        SDGO_TRY(backend_->set_tensor(gt, ts, 0, sizeof(float) * B));
        SDGO_TRY(backend_->compute(g));
        SDGO_TRY(backend_->get_tensor(gy, model_out.data(), 0, model_out.size() * sizeof(float)));
        ++calls;
        if (!all_finite(model_out.data(), model_out.size()))
            return error(SDGO_ERR_INTERNAL, "the U-Net produced NaN or infinity (sigma %g)", double(sigma));
        if (cfg) {
            sampling::cfg_combine(model_out.data(), model_out.data() + n_lat, req.cfg_scale, F.data(), n_lat);
        } else {
            std::copy(model_out.begin(), model_out.begin() + n_lat, F.begin());
        }
        sampling::apply_denoiser(pred_, sigma, x, F.data(), d_out, n_lat);
        return Status();
    };

    sampling::SamplerOptions so;
    so.eta = req.eta;
    out->width = W;
    out->height = H;
    out->batch = req.batch;
    out->rgb.resize(size_t(req.batch) * n_pix * 3);
    out->images.resize(size_t(req.batch) * n_pix * 3);
    out->latents.resize(size_t(req.batch) * n_lat);
    const int total = steps * req.batch;
    const auto t0 = clock::now();

    for (int bi = 0; bi < req.batch; ++bi) {
        phase(Phase::sample, bi, req.batch);
        const int64_t seed = int64_t(sampling::batch_seed(uint64_t(req.seed), bi));
        out->seeds.push_back(seed);
        std::unique_ptr<sampling::Rng> rng = sampling::make_rng(rng_type, uint64_t(seed));
        // Initial latent
        std::vector<float> init_lat;  // scaled init latent
        if (!init_mean.empty()) {
            init_lat.resize(n_lat);
            if (diffusers) {
                std::vector<float> eps(n_lat);
                rng->randn(n_lat, eps.data());
                model::vae_sample(init_mean.data(), init_logvar.data(), eps.data(), init_lat.data(), n_lat);
            } else {
                std::copy(init_mean.begin(), init_mean.end(), init_lat.begin());
            }
            for (float & v : init_lat) v *= vae_cfg_.scaling_factor;
        }
        std::vector<float> noise(n_lat), x(n_lat);
        rng->randn(n_lat, noise.data());
        if (inpaint_model && has_mask && diffusers) {
            // diffusers encodes the masked image with a posterior sample drawn
            // after the initial noise
            std::vector<float> eps(plane * 4), lat(plane * 4);
            rng->randn(eps.size(), eps.data());
            model::vae_sample(masked_mean.data(), masked_logvar.data(), eps.data(), lat.data(), lat.size());
            for (size_t i = 0; i < plane * 4; ++i) extra[plane + i] = lat[i] * vae_cfg_.scaling_factor;
        }
        if (!init_lat.empty() && !(has_mask && !inpaint_model && req.strength >= 1.0f && diffusers)) {
            for (size_t i = 0; i < n_lat; ++i) x[i] = init_lat[i] + noise[i] * sigmas[0];
        } else {
            // VP schedulers start from unit-variance noise: sqrt(sigma^2 + 1) in VE units
            const float scale =
                diffusers ? sampling::initial_noise_scale(
                                dpm_vp ? sampling::NoiseInit::SqrtSigmaSqPlusOne : sampling::NoiseInit::Sigma, sigmas[0])
                          : sigmas[0];
            for (size_t i = 0; i < n_lat; ++i) x[i] = noise[i] * scale;
        }
        const bool blend = has_mask && !inpaint_model;
        auto step_fn = [&](int step, int) -> bool {
            if (blend) {
                const float sn = sigmas[size_t(step)];
                for (size_t c = 0; c < size_t(C); ++c)
                    for (size_t i = 0; i < plane; ++i) {
                        const size_t k = c * plane + i;
                        if (lmask[i] < 0.5f) x[k] = init_lat[k] + noise[k] * sn;
                    }
            }
            if (hooks.progress) {
                const double secs = std::chrono::duration<double>(clock::now() - t0).count();
                hooks.progress(bi * steps + step, total, secs);
            }
            return !canceled(hooks);
        };
        Status st = sampling::sample(req.sampler, denoise, sigmas, x.data(), n_lat, rng.get(), so, step_fn);
        if (!st.ok()) {
            if (st.code() == SDGO_ERR_CANCELED) return error(SDGO_ERR_CANCELED, "canceled: %s", st.message().c_str());
            return st.wrap(strprintf("image %d (seed %lld)", bi + 1, (long long)seed));
        }
        std::copy(x.begin(), x.end(), out->latents.begin() + size_t(bi) * n_lat);
        if (canceled(hooks)) return error(SDGO_ERR_CANCELED, "canceled");
        phase(Phase::decode, bi, req.batch);
        std::vector<float> img;
        SDGO_TRY(vae_decode(x.data(), w, h, &img));
        float * fim = out->images.data() + size_t(bi) * n_pix * 3;
        uint8_t * rgb = out->rgb.data() + size_t(bi) * n_pix * 3;
        for (size_t i = 0; i < n_pix; ++i)
            for (int c = 0; c < 3; ++c) {
                float v = (img[size_t(c) * n_pix + i] + 1.0f) * 0.5f;
                v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
                fim[i * 3 + c] = v;
                rgb[i * 3 + c] = uint8_t(std::lround(v * 255.0f));
            }
    }
    SDGO_LOG_D("generated %d image(s) %dx%d, %d steps, %d U-Net calls, %lld prompt tokens", req.batch, W, H, steps,
              calls, (long long)tokens);
    return Status();
}

}  // namespace sdgo::pipeline
