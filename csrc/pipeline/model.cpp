// model.cpp — see model.h.
#include "pipeline/model.h"

#include <algorithm>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "backends/registry.h"
#include "base/log.h"
#include "base/threadpool.h"
#include "convert/convert.h"
#include "formats/json.h"
#include "model/naming.h"

namespace sdgo::pipeline {

namespace {

// The largest plan a caller may pass (real checkpoints have about 2,000
// tensors; SDXL with both encoders about 2,600).
constexpr size_t kMaxPlanEntries = 1u << 20;

// Converts the planned tensors of `mf` in memory (owned buffers replace the
// mapped bytes) with the converter `sd-go quantize` writes with, so that a
// model quantized at load holds exactly the bytes of the quantized file.
Status apply_weight_plan(formats::ModelFiles * mf, const WeightPlan & plan, ThreadPool * pool, int * converted) {
    *converted = 0;
    std::unordered_map<std::string, DType> want;
    for (const auto & e : plan) {
        if (!mf->find(e.first))
            return error(SDGO_ERR_INVALID_ARGUMENT, "the weight plan names %s, which the model does not have",
                         e.first.c_str());
        want[e.first] = e.second;
    }
    for (formats::TensorEntry & t : mf->tensors) {
        auto it = want.find(t.name);
        if (it == want.end()) continue;
        const int32_t id = static_cast<int32_t>(it->second);
        if (convert::normalized_type(t) == id && t.is_ggml() && t.type_id() == id) continue;
        SDGO_TRY(convert::check_target(t, id));
        uint64_t nbytes = 0;
        SDGO_TRY(formats::ggml_nbytes(id, t.ne, &nbytes));
        uint8_t * dst = mf->alloc_owned(size_t(nbytes));
        size_t off = 0;
        Status st = convert::convert_tensor(t, id, pool, nullptr, [&](const void * data, size_t n) -> Status {
            if (off + n > nbytes)
                return error(SDGO_ERR_INTERNAL, "converter wrote past %llu bytes", (unsigned long long)nbytes);
            std::memcpy(dst + off, data, n);
            off += n;
            return Status();
        });
        if (!st.ok()) return st.wrap(t.name);
        if (off != nbytes)
            return error(SDGO_ERR_INTERNAL, "%s: converter wrote %zu of %llu bytes", t.name.c_str(), off,
                         (unsigned long long)nbytes);
        // The converted copy replaces the file's bytes, which leave memory.
        if (t.file_index >= 0 && size_t(t.file_index) < mf->files.size() && mf->files[size_t(t.file_index)].map)
            mf->files[size_t(t.file_index)].map->release(t.data, size_t(t.nbytes));
        t.stored = formats::StoredType::ggml;
        t.type = it->second;
        t.data = dst;
        t.nbytes = nbytes;
        t.file_index = -1;
        t.file_offset = 0;
        ++*converted;
    }
    return Status();
}

int conversion_threads(int n) {
    if (n > 0) return n;
    const unsigned hc = std::thread::hardware_concurrency();
    return hc ? int(hc) : 1;
}

}  // namespace

Status parse_weight_plan(const std::string & text, WeightPlan * out) {
    out->clear();
    size_t pos = 0;
    int line_no = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(pos, end - pos);
        pos = end + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        const size_t eq = line.rfind('=');
        if (eq == std::string::npos || eq == 0)
            return error(SDGO_ERR_INVALID_ARGUMENT, "weight plan line %d: expected NAME=TYPE", line_no);
        DType t;
        const std::string tn = line.substr(eq + 1);
        if (!dtype_from_name(tn.c_str(), &t))
            return error(SDGO_ERR_INVALID_ARGUMENT, "weight plan line %d: unknown type \"%s\"", line_no, tn.c_str());
        if (out->size() >= kMaxPlanEntries)
            return error(SDGO_ERR_INVALID_ARGUMENT, "weight plan has more than %zu entries", kMaxPlanEntries);
        out->emplace_back(line.substr(0, eq), t);
    }
    return Status();
}

Status parse_diffusers_scheduler(const formats::Json & j, DiffusersScheduler * out) {
    *out = DiffusersScheduler();
    if (j.kind == formats::Json::null_) return Status();
    if (j.kind != formats::Json::object) return error(SDGO_ERR_FORMAT, "scheduler config: not a JSON object");
    auto unsupported = [&](const std::string & what) {
        if (out->unsupported.empty()) out->unsupported = "the model's scheduler config sets " + what;
    };
    const std::string spacing = j.str_or("timestep_spacing", "linspace");
    if (!sampling::parse_timestep_spacing(spacing, &out->spacing).ok())
        unsupported("timestep_spacing \"" + spacing + "\" (linspace, leading and trailing are supported)");
    const int64_t offset = j.int_or("steps_offset", 0);
    if (offset < 0 || offset >= sampling::NoiseSchedule::kTrainSteps)
        return error(SDGO_ERR_FORMAT, "scheduler config: steps_offset %lld out of range", (long long)offset);
    out->steps_offset = int(offset);
    if (j.int_or("num_train_timesteps", 1000) != sampling::NoiseSchedule::kTrainSteps)
        unsupported("num_train_timesteps " + std::to_string(j.int_or("num_train_timesteps", 1000)) + " (1000 is)");
    const std::string betas = j.str_or("beta_schedule", "scaled_linear");
    if (betas != "scaled_linear") unsupported("beta_schedule \"" + betas + "\" (scaled_linear is supported)");
    out->beta_start = j.num_or("beta_start", out->beta_start);
    out->beta_end = j.num_or("beta_end", out->beta_end);
    if (!(out->beta_start > 0 && out->beta_start < out->beta_end && out->beta_end < 1))
        return error(SDGO_ERR_FORMAT, "scheduler config: beta_start %g / beta_end %g out of range", out->beta_start,
                     out->beta_end);
    const formats::Json * tb = j.get("trained_betas");
    if (tb && tb->kind != formats::Json::null_) unsupported("trained_betas");
    for (const char * key : {"use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "rescale_betas_zero_snr"})
        if (j.bool_or(key, false)) unsupported(std::string(key) + " (not supported yet)");
    const std::string final_sigmas = j.str_or("final_sigmas_type", "zero");
    if (final_sigmas != "zero") unsupported("final_sigmas_type \"" + final_sigmas + "\" (zero is supported)");
    const std::string interp = j.str_or("interpolation_type", "linear");
    if (interp != "linear") unsupported("interpolation_type \"" + interp + "\" (linear is supported)");
    const std::string ttype = j.str_or("timestep_type", "discrete");
    if (ttype != "discrete") unsupported("timestep_type \"" + ttype + "\" (discrete is supported)");
    const std::string pred = j.str_or("prediction_type", "epsilon");
    if (pred != "epsilon" && pred != "v_prediction")
        unsupported("prediction_type \"" + pred + "\" (epsilon and v_prediction are supported)");
    return Status();
}

const char * Model::unet_prefix() { return model::kUNetPrefix; }

int Model::label_values(const std::string & family) { return family == "sdxl-refiner" ? 5 : 6; }
const char * Model::vae_prefix() { return model::kVAEPrefix; }

Model::Model() = default;
Model::~Model() = default;

Status Model::record_weights() {
    // The same builders generation runs, on the smallest inputs their
    // shapes allow, with a recorder: every (weight, use) they read.
    const model::UNetConfig & u = unet_cfg_;
    {
        Graph g;
        const int64_t side = int64_t(1) << (u.levels() - 1);
        Tensor * x = g.input(DType::f32, {side, side, u.in_channels, 1}, "x");
        Tensor * t = g.input(DType::f32, {1}, "t");
        Tensor * c = g.input(DType::f32, {u.context_dim, 1, 1}, "context");
        Tensor * y = u.adm_in_channels > 0 ? g.input(DType::f32, {u.adm_in_channels, 1}, "y") : nullptr;
        Tensor * out = nullptr;
        SDGO_TRY(model::build_unet(g, model::WeightRecorder(store_.get()), model::kUNetPrefix, u, x, t, c, y, &out));
    }
    SDGO_TRY(cond_->record(store_.get()));
    model::WeightStore * vs = vae_store_ ? vae_store_.get() : store_.get();
    const model::VaeConfig & v = vae_cfg_;
    {
        Graph g;
        const int64_t f = v.downscale();
        Tensor * img = g.input(DType::f32, {f, f, v.in_channels, 1}, "image");
        Tensor *m = nullptr, *lv = nullptr;
        SDGO_TRY(model::build_vae_encoder(g, model::WeightRecorder(vs), model::kVAEPrefix, v, img, &m, &lv));
    }
    {
        Graph g;
        Tensor * z = g.input(DType::f32, {1, 1, v.z_channels, 1}, "z");
        Tensor * img = nullptr;
        SDGO_TRY(model::build_vae_decoder(g, model::WeightRecorder(vs), model::kVAEPrefix, v, z, &img));
    }
    SDGO_TRY(store_->finish());
    if (vae_store_) SDGO_TRY(vae_store_->finish());
    return Status();
}

Status Model::tokenizer(const model::TokenizerFiles & tf, int32_t builtin_pad, const model::ClipConfig & clip,
                        std::unique_ptr<text::ClipTokenizer> * own, const text::ClipTokenizer ** tok,
                        int32_t * pad_id) const {
    *pad_id = text::kClipEosId;
    if (tf.present()) {
        own->reset(new text::ClipTokenizer());
        Status st;
        if (tf.embedded) {
            text::TokenizerTexts t;
            t.vocab_json = tf.vocab_text;
            t.merges_txt = tf.merges_text;
            t.special_tokens_map_json = tf.special_tokens_map_text;
            t.tokenizer_config_json = tf.tokenizer_config_text;
            st = (*own)->load_texts(t, pad_id);
        } else {
            st = (*own)->load_folder(tf.dir, pad_id);
        }
        if (!st.ok()) return st.wrap("tokenizer");
        *tok = own->get();
    } else {
        Status st;
        *tok = text::ClipTokenizer::builtin(&st);
        if (!*tok) return st.wrap("built-in tokenizer");
        *pad_id = builtin_pad;
    }
    if (int64_t((*tok)->vocab_size()) > clip.vocab)
        return error(SDGO_ERR_FORMAT,
                     "the tokenizer has %zu tokens but the text encoder only %lld (a model with a small vocabulary "
                     "needs its own tokenizer/ folder)",
                     (*tok)->vocab_size(), (long long)clip.vocab);
    return Status();
}

Status Model::load(const ModelOptions & opt, std::unique_ptr<Model> * out) {
    out->reset();
    Device * dev = opt.device_override;
    if (!dev) SDGO_TRY(backends::find_device(opt.backend, opt.device, &dev));
    Status st = load_on(opt, dev, out);
    const bool automatic = opt.backend.empty() || opt.backend == "auto";
    const bool device_fault = st.code() == SDGO_ERR_OUT_OF_MEMORY || st.code() == SDGO_ERR_INTERNAL;
    Device * cpu = nullptr;
    if (st.ok() || !automatic || !device_fault || !backends::find_device("cpu", 0, &cpu).ok() || dev == cpu)
        return st;
    SDGO_LOG_W("%s %s cannot take the model (%s); loading it on the CPU", dev->info().backend.c_str(),
               dev->info().name.c_str(), st.message().c_str());
    return load_on(opt, cpu, out);
}

Status Model::load_on(const ModelOptions & opt, Device * dev, std::unique_ptr<Model> * out) {
    out->reset();
    if (opt.model_path.empty()) return error(SDGO_ERR_INVALID_ARGUMENT, "no model path given");
    if (!opt.weight_type.empty() && opt.weight_type != "f32")
        return error(SDGO_ERR_INVALID_ARGUMENT,
                     "weight type \"%s\" at load: only \"f32\" is a load option; other types come as a per-tensor "
                     "weight plan (the Go quantize package computes it)",
                     opt.weight_type.c_str());
    std::unique_ptr<Model> p(new Model());
    p->opt_ = opt;
    p->device_ = dev;
    model::WeightOptions wopt;
    wopt.force_f32 = opt.weight_type == "f32";

    SDGO_TRY(model::load_model(opt.model_path, &p->lm_));
    if (!opt.weight_plan.empty() || !opt.vae_weight_plan.empty()) {
        ThreadPool pool(conversion_threads(opt.n_threads));
        int n = 0;
        Status st = apply_weight_plan(&p->lm_.files, opt.weight_plan, &pool, &n);
        if (!st.ok()) return st.wrap("applying the weight plan");
        if (n) SDGO_LOG_I("converted %d tensors at load", n);
    }
    SDGO_TRY(model::detect(p->lm_, &p->info_));
    const model::ModelInfo & info = p->info_;
    if (info.family != "sd1" && info.family != "sd2" && info.family != "sdxl" && info.family != "sdxl-refiner")
        return error(SDGO_ERR_UNSUPPORTED,
                     "%s: not a Stable Diffusion 1.x, 2.x or SDXL checkpoint (detected \"%s\")",
                     opt.model_path.c_str(), info.family.c_str());
    const bool sdxl = info.family == "sdxl", refiner = info.family == "sdxl-refiner";
    if (!opt.refiner_path.empty()) {
        // The families first (the files are only mapped), so that a wrong
        // pair fails before any weight is prepared.
        std::string rfam = "?";
        {
            model::LoadedModel rlm;
            model::ModelInfo ri;
            if (model::load_model(opt.refiner_path, &rlm).ok() && model::detect(rlm, &ri).ok()) rfam = ri.family;
        }
        if (info.family != "sdxl" || (rfam != "sdxl-refiner" && rfam != "?"))
            return error(SDGO_ERR_INVALID_ARGUMENT,
                         "two-stage generation takes an SDXL base as the model and an SDXL refiner as the refiner; "
                         "got %s (%s) and %s (%s)",
                         opt.model_path.c_str(), info.family.c_str(), opt.refiner_path.c_str(), rfam.c_str());
    }
    if (!info.unet.present) return error(SDGO_ERR_FORMAT, "%s: the model has no U-Net", opt.model_path.c_str());
    if (!refiner && !info.text_encoder.present)
        return error(SDGO_ERR_FORMAT, "%s: the model has no text encoder", opt.model_path.c_str());

    // U-Net
    p->unet_cfg_ = info.unet.cfg;
    const model::UNetConfig & u = p->unet_cfg_;
    const int64_t latent = u.out_channels;
    if (u.in_channels != latent && u.in_channels != 2 * latent + 1)
        return error(SDGO_ERR_UNSUPPORTED,
                     "U-Net with %lld input channels for %lld latent channels is not supported (the latent alone, "
                     "or an inpainting model's latent + mask + masked-image latent)",
                     (long long)u.in_channels, (long long)latent);
    if (u.adm_in_channels != 0 && !sdxl && !refiner)
        return error(SDGO_ERR_UNSUPPORTED, "U-Net with a label embedding outside an SDXL model is not supported");

    // Text encoders: SDXL's are concatenated per token (the base: CLIP-L and
    // bigG; the refiner: bigG alone); the label vector holds bigG's pooled
    // output and the size values (the base: six; the refiner: four and the
    // aesthetic score), each embedded in an even width.
    const model::ClipConfig & clip = info.text_encoder.cfg;
    const model::ClipConfig & clip2 = info.text_encoder_2.cfg;
    if (sdxl || refiner) {
        if (!info.text_encoder_2.present)
            return error(SDGO_ERR_FORMAT, "%s: the SDXL model has no OpenCLIP ViT-bigG text encoder",
                         opt.model_path.c_str());
        if (clip2.projection_dim <= 0)
            return error(SDGO_ERR_FORMAT, "%s: the OpenCLIP ViT-bigG text encoder has no text projection",
                         opt.model_path.c_str());
        const int64_t width = (sdxl ? clip.hidden : 0) + clip2.hidden;
        if (width != u.context_dim)
            return error(SDGO_ERR_FORMAT, "text encoder widths (%lld in all) do not match the U-Net context width %lld",
                         (long long)width, (long long)u.context_dim);
        const int64_t values = label_values(info.family);
        if (u.adm_in_channels <= clip2.projection_dim || (u.adm_in_channels - clip2.projection_dim) % (2 * values) != 0)
            return error(SDGO_ERR_FORMAT,
                         "the U-Net's label input of %lld does not fit the pooled text embedding of %lld and %lld "
                         "size embeddings",
                         (long long)u.adm_in_channels, (long long)clip2.projection_dim, (long long)values);
    } else if (clip.hidden != u.context_dim) {
        return error(SDGO_ERR_FORMAT, "text encoder width %lld does not match the U-Net context width %lld",
                     (long long)clip.hidden, (long long)u.context_dim);
    }
    // SD2: the penultimate layer (+ final LN). A diffusers SD2 text encoder
    // stores only 23 of the 24 layers, so its last layer is the penultimate.
    const int default_clip_skip = (info.family == "sd2" && !p->lm_.diffusers) ? 2 : 1;

    // Tokenizers: the folder's (or the file's) own when present, else the
    // built-in CLIP BPE (padding: SD 1.x and SDXL's CLIP-L with the end
    // token, SD 2.x and SDXL's bigG with "!", id 0).
    p->store_.reset(new model::WeightStore(&p->lm_.files, p->device_, wopt));
    const text::ClipTokenizer * tok = nullptr;
    int32_t pad_id = 0;
    if (!refiner)
        SDGO_TRY(p->tokenizer(p->lm_.tokenizer, info.family == "sd2" ? 0 : text::kClipEosId, clip, &p->own_tok_,
                              &tok, &pad_id));
    if (sdxl || refiner) {
        const text::ClipTokenizer * tok2 = nullptr;
        int32_t pad2 = 0;
        const model::TokenizerFiles & tf2 = p->lm_.tokenizer_2.present() ? p->lm_.tokenizer_2 : p->lm_.tokenizer;
        Status st = p->tokenizer(tf2, 0, clip2, &p->own_tok2_, &tok2, &pad2);
        if (!st.ok()) return st.wrap("bigG tokenizer");
        std::vector<SdxlConditioner::Encoder> enc;
        if (sdxl) enc.push_back({model::text_encoder_prefix(1), clip, tok, pad_id});
        enc.push_back({model::text_encoder_prefix(2), clip2, tok2, pad2});
        // A diffusers folder says whether an empty negative is zeroed (the
        // refiner's says no); single files follow A1111, which zeroes it.
        const bool zero_negative = p->lm_.model_index.kind == formats::Json::object
                                       ? p->lm_.model_index.bool_or("force_zeros_for_empty_prompt", true)
                                       : true;
        p->cond_.reset(new SdxlConditioner(p->store_.get(), std::move(enc), zero_negative));
    } else {
        p->cond_.reset(new ClipConditioner(p->store_.get(), model::text_encoder_prefix(1), clip, tok, pad_id,
                                           default_clip_skip));
    }

    // VAE: the override file or the model's own.
    if (!opt.vae_path.empty()) {
        p->vae_lm_.reset(new model::LoadedModel());
        model::LoadOptions lo;
        lo.hint = model::Hint::vae;
        Status st = model::load_model(opt.vae_path, p->vae_lm_.get(), lo);
        if (!st.ok()) return st.wrap("VAE");
        if (!opt.vae_weight_plan.empty()) {
            ThreadPool pool(conversion_threads(opt.n_threads));
            int n = 0;
            st = apply_weight_plan(&p->vae_lm_->files, opt.vae_weight_plan, &pool, &n);
            if (!st.ok()) return st.wrap("VAE: applying the weight plan");
        }
        model::Part<model::VaeConfig> vp;
        st = model::infer_vae(*p->vae_lm_, info.family, &vp);
        if (!st.ok()) return st.wrap("VAE");
        if (!vp.present) return error(SDGO_ERR_FORMAT, "%s: no VAE in this file", opt.vae_path.c_str());
        p->vae_cfg_ = vp.cfg;
        p->vae_store_.reset(new model::WeightStore(&p->vae_lm_->files, p->device_, wopt));
    } else {
        if (!info.vae.present) return error(SDGO_ERR_FORMAT, "%s: the model has no VAE", opt.model_path.c_str());
        p->vae_cfg_ = info.vae.cfg;
    }
    if (p->vae_cfg_.z_channels != latent)
        return error(SDGO_ERR_FORMAT, "VAE latent channels %lld do not match the U-Net's %lld",
                     (long long)p->vae_cfg_.z_channels, (long long)latent);

    // Prediction type
    const std::string pred = opt.prediction.empty() ? info.prediction : opt.prediction;
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

    SDGO_TRY(parse_diffusers_scheduler(p->lm_.scheduler_config, &p->dsched_).wrap(opt.model_path.c_str()));
    SDGO_TRY(p->record_weights());

    if (!opt.refiner_path.empty()) {
        ModelOptions ro = opt;
        ro.model_path = opt.refiner_path;
        ro.vae_path.clear();
        ro.weight_plan = opt.refiner_weight_plan;
        ro.vae_weight_plan.clear();
        ro.refiner_path.clear();
        ro.refiner_weight_plan.clear();
        Status st = load_on(ro, dev, &p->refiner_);
        if (!st.ok()) return st.wrap("refiner");
        // (the families were checked before the base's weights were prepared)
        const Model & r = *p->refiner_;
        if (r.unet_config().out_channels != latent || r.unet_config().in_channels != latent ||
            r.summary().vae_downscale != p->vae_cfg_.downscale())
            return error(SDGO_ERR_FORMAT, "the refiner's latents (%lld channels, 1/%d scale) do not match the model's",
                         (long long)r.unet_config().out_channels, r.summary().vae_downscale);
    }

    ModelSummary & s = p->summary_;
    s.family = info.family;
    s.variant = info.variant;
    s.prediction = p->pred_ == sampling::Prediction::V ? "v" : "epsilon";  // detect.h naming
    s.source = p->lm_.source;
    s.unet_in_channels = int(u.in_channels);
    s.latent_channels = int(latent);
    s.vae_downscale = p->vae_cfg_.downscale();
    s.granularity = s.vae_downscale * (1 << (u.levels() - 1));
    if (p->refiner_) {
        s.granularity = std::max(s.granularity, p->refiner_->summary().granularity);
        s.refiner_family = p->refiner_->info().family;
    }
    s.text_max_positions = int(refiner ? clip2.max_positions : clip.max_positions);
    s.backend = p->device_->info().backend;
    s.device = p->device_->info().name;
    s.weight_bytes = p->store_->prepared_bytes() + (p->vae_store_ ? p->vae_store_->prepared_bytes() : 0) +
                     (p->refiner_ ? p->refiner_->summary().weight_bytes : 0);
    *out = std::move(p);
    return Status();
}

}  // namespace sdgo::pipeline
