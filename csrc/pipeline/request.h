// request.h — what one generation asks for, what it reports back, and the
// engine's defaults and names (the one home of both: the ABI, the CLI's help,
// the Go package and the server read them from here through
// sdgo_catalog_json).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "sampling/samplers.h"
#include "sampling/schedules.h"

namespace sdgo::pipeline {

// Reproduce A1111 / stable-diffusion.cpp (default) or diffusers' pipelines.
// diffusers: float32 alphas table, EulerDiscrete-style timesteps and sigmas
// (DPMSolverMultistep's for dpm++2m) spaced as the model folder's scheduler
// config says (timestep_spacing, steps_offset, beta range; a key it cannot
// reproduce, e.g. use_karras_sigmas, refuses the request by name; without a
// config "linspace", offset 0), the scheduler's own timesteps fed to the
// U-Net, guidance only for a CFG scale above 1, clip skip on the positive
// prompt only (the negative keeps the model's default layer), diffusers' img2img step
// mapping, the VAE posteriors sampled from the generator in diffusers' order,
// and prompts taken literally (no A1111 weighting) and truncated to one
// 77-token window. Request::scheduler other than the default is refused
// there. Batches use seed + b per image in both modes, or in diffusers-mode
// txt2img one generator for the whole batch (Request::one_generator, as
// diffusers' num_images_per_prompt). The ddim and lcm samplers
// are refused there (their schedulers' timesteps are not reproduced yet).
enum class Compat : int { a1111 = 0, diffusers = 1 };
Status parse_compat(const std::string & name, Compat * out);  // "" = a1111
const char * compat_name(Compat c);

// VAE decoding in tiles: automatic (only when the whole decode does not fit
// the device: an intermediate larger than its largest buffer or descriptor
// range, or its memory), always, or never. Tiles overlap and are blended
// with linear ramps across the overlap, so no seam shows; the result differs
// from the whole decode a little (the VAE sees less context per tile).
enum class VaeTiling : int { automatic = 0, on = 1, off = 2 };
Status parse_vae_tiling(const std::string & name, VaeTiling * out);  // "" = auto
const char * vae_tiling_name(VaeTiling t);

// Limits every request is checked against before any work.
constexpr int kMaxImageSide = 16384;
constexpr int kMaxSteps = 10000;
constexpr int kMaxBatch = 1024;
// Largest output of one request (batch * width * height * 3 bytes).
constexpr uint64_t kMaxOutputBytes = uint64_t(1) << 31;

struct Request {
    std::string prompt, negative_prompt;
    int width = 512, height = 512;
    int steps = 20;
    float cfg_scale = 7.0f;
    int64_t seed = 42;
    int batch = 1;                       // images; image b uses seed + b (sampling::batch_seed)
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
    // VAE tiling; tile size and overlap in output pixels (multiples of 8,
    // the VAE's scale; overlap at most half the tile).
    VaeTiling vae_tiling = VaeTiling::automatic;
    int vae_tile_size = 512;
    int vae_tile_overlap = 64;
    // SDXL size conditioning (the label vector's original size, crop
    // top-left and target size, the same on both CFG sides): a size of 0
    // takes the output size; crop defaults to (0, 0). Other models ignore them.
    int original_width = 0, original_height = 0;
    int crop_left = 0, crop_top = 0;
    int target_width = 0, target_height = 0;
    // The negative side's size conditioning (diffusers' negative_original_size,
    // negative_crops_coords_top_left, negative_target_size): -1 takes the
    // positive side's value; a size of 0 the output size.
    int negative_original_width = -1, negative_original_height = -1;
    int negative_crop_left = -1, negative_crop_top = -1;
    int negative_target_width = -1, negative_target_height = -1;
    // SDXL refiner: the aesthetic score conditioning of the positive and
    // the negative side (in place of the target size). Under
    // Compat::diffusers the refiner's negative side takes crop (0, 0), as
    // diffusers' img2img pipeline does; A1111 gives both sides the crop.
    float aesthetic_score = 6.0f, negative_aesthetic_score = 2.5f;
    // Two-stage SDXL, with a refiner loaded beside the base: the base samples
    // the share `refiner_switch` of the schedule and the refiner the rest
    // (< 0: kDefaultRefinerSwitch; 1: the base alone). Where the switch falls:
    // the first step whose timestep t (of 1000) has t < round(1000 * (1 -
    // switch)) under Compat::diffusers (denoising_end / denoising_start:
    // the refiner restarts the sampler from the base's latents, so a
    // multistep sampler's history is dropped); under Compat::a1111 the first
    // where (999 - t) / 1000 >= switch, t rounded to the nearest timestep,
    // and the sampler runs on (A1111 swaps the model inside the loop).
    float refiner_switch = -1.0f;
    // Compat::diffusers txt2img: draw the whole batch from one generator
    // seeded with `seed`, as diffusers' num_images_per_prompt does (every
    // image then reports that seed, and is made again only with its batch);
    // by default image b has its own generator seeded with seed + b.
    bool one_generator = false;
};

constexpr float kDefaultRefinerSwitch = 0.8f;

// Checks what can be checked without the model: sizes, counts, ranges, and
// that the output fits kMaxOutputBytes. Model-specific checks (granularity,
// inpainting models) come at generation.
Status validate_request(const Request & r);

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
    // A second token, e.g. set by a progress hook asking to stop.
    const std::atomic<int32_t> * stop = nullptr;
    bool canceled() const {
        return (cancel && cancel->load(std::memory_order_relaxed) != 0) ||
               (stop && stop->load(std::memory_order_relaxed) != 0);
    }
};

struct Result {
    int width = 0, height = 0, batch = 0;
    std::vector<uint8_t> rgb;        // batch * height * width * 3
    std::vector<float> latents;      // final latents, batch * C * h * w (NCHW)
    std::vector<float> images;       // decoded images in [0, 1], batch * height * width * 3 (before rounding)
    std::vector<int64_t> seeds;      // seed of each image
};

// The engine's defaults and names as JSON:
//   {"request":{"width":512,"height":512,"steps":20,"cfg_scale":7,"seed":42,
//     "batch":1,"sampler":"euler_a","scheduler":"discrete","strength":0.75,
//     "clip_skip":0,"rng":"cuda","compat":"a1111","vae_tiling":"auto",
//     "vae_tile_size":512,"vae_tile_overlap":64,"aesthetic_score":6,"negative_aesthetic_score":2.5,
//     "refiner_switch":0.8},
//    "samplers":[...],"schedulers":[...],"rngs":["cuda","cpu"],
//    "compat":["a1111","diffusers"],"vae_tiling":["auto","on","off"],"weight_types":[...],
//    "limits":{"max_side":16384,"max_steps":10000,"max_batch":1024,"max_output_bytes":N}}
std::string catalog_json();

}  // namespace sdgo::pipeline
