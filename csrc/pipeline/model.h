// model.h — a loaded Stable Diffusion model: immutable once loaded, shared by
// any number of sessions (session.h), each generating on its own backend.
//
//   std::unique_ptr<Model> m;
//   SDGO_TRY(Model::load(opts, &m));            // files, configs, tokenizer, weights on the device
//   std::unique_ptr<Session> s;
//   SDGO_TRY(Session::create(*m, SessionOptions(), &s));
//   Result res; SDGO_TRY(s->generate(req, Hooks(), &res));
//
// What a model holds: the files (memory-mapped), the detected family and the
// network configs (inferred once, model/detect.h), the tokenizer, the
// conditioner, and the weights on one device in a WeightStore, prepared for
// every use the networks make of them and uploaded once at load. Nothing of
// it changes after load, so sessions read it without locks.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "core/backend.h"
#include "model/detect.h"
#include "model/load.h"
#include "model/unet.h"
#include "model/vae.h"
#include "model/weights.h"
#include "pipeline/conditioner.h"
#include "sampling/rng.h"
#include "sampling/schedules.h"
#include "text/tokenizer.h"

namespace sdgo::pipeline {

// Per-tensor weight types to convert to at load: canonical tensor name and
// target type. Computed by the caller's quantization policy (the Go
// quantize package), the same plan `sd-go quantize` writes with.
using WeightPlan = std::vector<std::pair<std::string, DType>>;

// Parses "NAME=TYPE" lines (the last '=' separates; ggml type names).
Status parse_weight_plan(const std::string & text, WeightPlan * out);

struct ModelOptions {
    std::string model_path;   // checkpoint file or diffusers folder
    std::string vae_path;     // optional VAE file that replaces the model's own
    // "" keeps the stored weight types; "f32" converts every weight to f32 at
    // load (exact reference math). Other conversions come as plans.
    std::string weight_type;
    WeightPlan weight_plan;      // for the model's tensors
    WeightPlan vae_weight_plan;  // for the VAE file's tensors
    // An SDXL refiner (file or folder) loaded beside the model on the same
    // device, for two-stage generation (Request::refiner_switch), and the
    // weight plan of its tensors.
    std::string refiner_path;
    WeightPlan refiner_weight_plan;
    sampling::RngType rng = sampling::RngType::Cuda;  // default RNG of requests
    // "" = auto; "epsilon" or "v" overrides what detection found.
    std::string prediction;
    std::string backend = "cpu";  // a registered backend, or "auto"
    int device = 0;               // index within the backend
    // A device outside the registry (tests: one with smaller limits); when
    // set, backend and device are ignored. Must outlive the model.
    Device * device_override = nullptr;
    int n_threads = 0;            // default threads of each session (<= 0: physical cores)
    std::string code_path;        // default code variant of sessions ("" = the device's best)
};

// What a diffusers folder's scheduler/scheduler_config.json asks of
// Compat::diffusers generation: the spacing of the timesteps, their offset
// and the beta range (defaults: SD's scaled_linear 0.00085..0.012, linspace,
// offset 0). A key we do not reproduce (Karras or exponential sigmas, other
// beta schedules, zero-SNR rescaling, ...) leaves `unsupported` naming it;
// diffusers-mode requests are then refused with that message (A1111 mode
// never reads the file).
struct DiffusersScheduler {
    sampling::TimestepSpacing spacing = sampling::TimestepSpacing::Linspace;
    int steps_offset = 0;
    double beta_start = 0.00085, beta_end = 0.012;
    std::string unsupported;
};
// Reads a scheduler config (a JSON object; null: the defaults).
Status parse_diffusers_scheduler(const formats::Json & config, DiffusersScheduler * out);

struct ModelSummary {
    std::string family, variant, prediction, source;
    int unet_in_channels = 0;
    int latent_channels = 0;
    int vae_downscale = 0;
    int granularity = 0;   // width/height must be multiples of this
    int text_max_positions = 0;
    std::string refiner_family;   // "" without a refiner
    std::string backend, device;  // where the weights live
    uint64_t weight_bytes = 0;    // prepared weight bytes (on the device, or wrapped host memory)
};

class Model {
public:
    // Loads onto the device the options name. With backend "auto", a GPU
    // that cannot take the model (out of memory, a driver error) is said in
    // a warning and the model loads on the CPU; a named backend never falls
    // back.
    static Status load(const ModelOptions & opt, std::unique_ptr<Model> * out);
    ~Model();
    Model(const Model &) = delete;
    Model & operator=(const Model &) = delete;

    const ModelSummary & summary() const { return summary_; }
    const ModelOptions & options() const { return opt_; }
    Device * device() const { return device_; }

    // The parts sessions read.
    const model::ModelInfo & info() const { return info_; }
    const model::UNetConfig & unet_config() const { return unet_cfg_; }
    const model::VaeConfig & vae_config() const { return vae_cfg_; }
    const model::Weights & unet_weights() const { return *store_; }
    const model::Weights & vae_weights() const { return vae_store_ ? *vae_store_ : *store_; }
    const Conditioner & conditioner() const { return *cond_; }
    // The refiner loaded with it, or NULL.
    const Model * refiner() const { return refiner_.get(); }
    sampling::Prediction prediction() const { return pred_; }
    const DiffusersScheduler & diffusers_scheduler() const { return dsched_; }
    // Extra U-Net input channels besides the latent (inpainting models: 1 + latent channels).
    int64_t concat_channels() const { return unet_cfg_.in_channels - unet_cfg_.out_channels; }

    static const char * unet_prefix();
    // How many values the SDXL label vector embeds besides the pooled text:
    // the base six (original height, width, crop top, left, target height,
    // width), the refiner five (the first four and the aesthetic score).
    static int label_values(const std::string & family);
    static const char * vae_prefix();

private:
    static Status load_on(const ModelOptions & opt, Device * dev, std::unique_ptr<Model> * out);
    Model();
    Status record_weights();
    // The tokenizer of a text encoder: its own files when present, else the
    // built-in CLIP BPE padding with builtin_pad.
    Status tokenizer(const model::TokenizerFiles & tf, int32_t builtin_pad, const model::ClipConfig & clip,
                     std::unique_ptr<text::ClipTokenizer> * own, const text::ClipTokenizer ** tok,
                     int32_t * pad_id) const;

    ModelOptions opt_;
    Device * device_ = nullptr;
    model::LoadedModel lm_;
    std::unique_ptr<model::LoadedModel> vae_lm_;
    model::ModelInfo info_;
    model::UNetConfig unet_cfg_;
    model::VaeConfig vae_cfg_;
    std::unique_ptr<text::ClipTokenizer> own_tok_, own_tok2_;
    std::unique_ptr<model::WeightStore> store_, vae_store_;
    std::unique_ptr<Conditioner> cond_;
    std::unique_ptr<Model> refiner_;
    sampling::Prediction pred_ = sampling::Prediction::Eps;
    DiffusersScheduler dsched_;
    ModelSummary summary_;
};

}  // namespace sdgo::pipeline
