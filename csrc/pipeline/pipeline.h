// pipeline.h — a loaded Stable Diffusion model (files + configs + backend) and
// generation: txt2img, img2img and inpainting, prompt -> RGB8 pixels.
//
//   std::unique_ptr<Pipeline> p;
//   SDGO_TRY(Pipeline::load(opts, &p));
//   Request r; r.prompt = "a cat"; r.width = r.height = 512;
//   Result res; SDGO_TRY(p->generate(r, Hooks(), &res));   // res.rgb: batch * H * W * 3
//
// What generate does, per image b of the batch (seed + b, A1111/sd.cpp style):
//   1. tokenizes prompt and negative prompt (A1111 weighting, 75-token chunks;
//      a text encoder with fewer than 77 positions gets the diffusers-style
//      truncated window instead), encodes all chunks of both in one CLIP call,
//      applies the weights with mean restoration, and pads the shorter of the
//      two with empty-prompt chunks so both contexts have the same length;
//   2. builds the U-Net graph once with batch 2 (uncond at index 0, cond at 1:
//      classifier-free guidance in ONE U-Net call; batch 1 when cfg_scale is 1);
//   3. samples with the k-diffusion sampler over D(x, sigma) (denoiser.h);
//   4. decodes with the VAE and converts to RGB8 (round((x + 1) / 2 * 255),
//      clamped).
// img2img: the init image is VAE-encoded (the posterior mean; with
// Compat::diffusers a posterior sample drawn from the image's generator, as
// diffusers does) and noised to the first sigma of the strength plan
// (sampling::img2img_plan: A1111 mapping by default, one step more than
// diffusers for the same steps and strength).
// Inpainting (a mask, 255 = repaint, 0 = keep; needs an init image): on a
// regular 4-channel model, masked img2img with latent blending after every
// step (x = mask * x + (1 - mask) * (init + noise * sigma_next), so the kept
// region ends exactly at the init latent); on a 9-channel inpainting model,
// the U-Net gets [x, mask, masked-image latent] as its input channels (the
// masked image is the init image with the repaint region set to 0 in [-1, 1]).
// The latent mask is the pixel mask sampled nearest (pixel (f*i, f*j) for
// latent (i, j), f the VAE downscale) and binarised at 128.
//
// Errors (a Status, never a crash): sizes not multiples of the model's
// granularity, steps < 1, strength outside (0, 1], init image or mask of the
// wrong size, prompts longer than max_prompt_chunks * 75 tokens, NaN or
// infinity in the U-Net output or in the decoded image (SDGO_ERR_INTERNAL with
// the step), cancellation (SDGO_ERR_CANCELED, checked before every U-Net call
// and after every step).
//
// Concurrency: generate() calls on one Pipeline are serialised by an internal
// mutex (a second caller waits). The Pipeline stays usable after any error,
// cancellation included.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/status.h"
#include "model/clip.h"
#include "model/detect.h"
#include "model/load.h"
#include "model/unet.h"
#include "model/vae.h"
#include "model/weights.h"
#include "sampling/rng.h"
#include "sampling/samplers.h"
#include "sampling/schedules.h"
#include "text/tokenizer.h"

namespace sdgo::pipeline {

struct LoadOptions {
    std::string model_path;   // checkpoint file or diffusers folder
    std::string vae_path;     // optional VAE file that replaces the model's own
    int n_threads = 0;        // <= 0: physical cores
    // "" keeps the stored weight types; "f32" converts every weight to f32 at
    // load; f16, bf16, q8_0, q5_0, q5_1, q4_0, q4_1 convert the weights that
    // stable-diffusion.cpp's converter would (not biases, norms' scales,
    // embeddings, time embedding, rows that are not whole blocks) in memory.
    std::string weight_type;
    sampling::RngType rng = sampling::RngType::Cuda;  // default RNG of requests
    // "" = auto; "epsilon" or "v" overrides what detection found.
    std::string prediction;
    ThreadPool * pool = nullptr;  // optional shared pool (not owned)
    cpu::CodePath code_path = cpu::CodePath::scalar;
    bool code_path_set = false;   // false: the best path of this CPU
};

// Reproduce A1111 / stable-diffusion.cpp (default) or diffusers' pipelines.
// diffusers: float32 alphas table, EulerDiscrete-style "linspace" timesteps
// and sigmas (DPMSolverMultistep's for dpm++2m), the scheduler's own
// timesteps fed to the U-Net, diffusers' img2img step mapping, the VAE
// posteriors sampled from the generator in diffusers' order, and prompts
// taken literally (no A1111 weighting) and truncated to one 77-token window.
// Request::scheduler is ignored there. Batches use seed + b per image in both
// modes (a diffusers batch drawn from one generator is not reproduced).
enum class Compat : int { a1111 = 0, diffusers = 1 };

struct Request {
    std::string prompt, negative_prompt;
    int width = 512, height = 512;
    int steps = 20;
    float cfg_scale = 7.0f;
    int64_t seed = 42;
    int batch = 1;                       // images; image b uses seed + b
    sampling::SamplerType sampler = sampling::SamplerType::EulerA;
    sampling::Scheduler scheduler = sampling::Scheduler::Discrete;
    float eta = -1.0f;                   // sampler default when negative
    int clip_skip = 0;                   // 0: the model's default (A1111 meaning otherwise)
    int rng = -1;                        // -1: the model's RNG; else a sampling::RngType
    Compat compat = Compat::a1111;
    // img2img / inpaint: RGB8, init_width x init_height x 3 (must equal the
    // output size). strength in (0, 1].
    std::vector<uint8_t> init_rgb;
    int init_width = 0, init_height = 0;
    float strength = 0.75f;
    // inpaint: one byte per pixel, width x height; >= 128 = repaint.
    std::vector<uint8_t> mask;
    int mask_width = 0, mask_height = 0; // 0: not given (only the pixel count is checked)
    int max_prompt_chunks = 64;          // 64 * 75 tokens
};

enum class Phase : int { encode = 0, sample = 1, decode = 2 };

struct Hooks {
    // After every sampler step: step 1..total over the whole batch, seconds
    // since sampling of the batch started.
    std::function<void(int step, int total, double seconds)> progress;
    // When a phase begins: encode (0 of 1: text, and the init image if any),
    // sample (image index of count) and decode (image index of count);
    // seconds since generate() started.
    std::function<void(Phase phase, int index, int count, double seconds)> phase;
    // Set to non-zero (from any thread) to cancel.
    const std::atomic<int32_t> * cancel = nullptr;
};

struct Result {
    int width = 0, height = 0, batch = 0;
    std::vector<uint8_t> rgb;        // batch * height * width * 3
    std::vector<float> latents;      // final latents, batch * C * h * w (NCHW)
    std::vector<float> images;       // decoded images in [0, 1], batch * height * width * 3 (before rounding)
    std::vector<int64_t> seeds;      // seed of each image
};

struct ModelSummary {
    std::string family, variant, prediction, source;
    int unet_in_channels = 0;
    int latent_channels = 0;
    int vae_downscale = 0;
    int granularity = 0;   // width/height must be multiples of this
    int text_max_positions = 0;
};

class Pipeline {
public:
    static Status load(const LoadOptions & opt, std::unique_ptr<Pipeline> * out);
    ~Pipeline();

    Status generate(const Request & req, const Hooks & hooks, Result * out);
    const ModelSummary & summary() const { return summary_; }

    // Pieces, public for tests.
    // Text conditioning for one prompt pair: *cond and *uncond, each
    // [hidden, L] (L = 77 * chunks, the same for both). With
    // diffusers_style, no weighting and no chunks: one window truncated
    // after max_positions - 2 tokens, as diffusers' encode_prompt does.
    // Not locked: call it only when no generate() runs (tests).
    Status encode_prompts(const std::string & prompt, const std::string & negative, int clip_skip, int max_chunks,
                          std::vector<float> * cond, std::vector<float> * uncond, int64_t * tokens,
                          bool diffusers_style = false);

private:
    Pipeline();
    Status generate_locked(const Request & req, const Hooks & hooks, Result * out);
    Status vae_encode(const std::vector<float> & image, int W, int H, std::vector<float> * mean,
                      std::vector<float> * logvar);
    Status vae_decode(const float * latent, int w, int h, std::vector<float> * image);

    LoadOptions opt_;
    model::LoadedModel lm_;
    std::unique_ptr<model::LoadedModel> vae_lm_;
    model::ModelInfo info_;
    std::unique_ptr<model::Weights> weights_, vae_weights_;
    model::UNetConfig unet_cfg_;
    model::VaeConfig vae_cfg_;
    model::ClipConfig clip_cfg_;
    std::unique_ptr<text::ClipTokenizer> own_tok_;
    const text::ClipTokenizer * tok_ = nullptr;
    int32_t pad_id_ = text::kClipEosId;
    int default_clip_skip_ = 1;
    sampling::Prediction pred_ = sampling::Prediction::Eps;
    std::unique_ptr<CpuBackend> backend_;
    ModelSummary summary_;
    std::mutex mu_;
};

}  // namespace sdgo::pipeline
