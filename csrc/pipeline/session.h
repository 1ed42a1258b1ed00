// session.h — one generation's state on one backend, over a shared Model.
//
// A Session owns a backend (for the CPU: its thread pool and scratch) and
// the arenas of the graphs it runs; the model's weights are read from the
// model's store. Several sessions of one model may generate at the same
// time, each on its own thread; one session runs one generate() at a time.
//
// generate() runs four stages, per request and then per image b of the
// batch (seed + b, A1111/sd.cpp style):
//   condition        the prompt pair through the model's conditioner (A1111
//                    weighting and 75-token chunks, or diffusers' literal
//                    window), and for inpainting models the concat channels
//                    (mask + masked-image latent);
//   prepare_latents  the noise, and for img2img the init image's latent,
//                    drawn from the image's generator in the order the
//                    reproduced pipeline draws them; the initial latent;
//   sample           the k-diffusion sampler over D(x, sigma), with one
//                    U-Net graph built per request (batch 2 with CFG: uncond
//                    at index 0, cond at 1, in ONE U-Net call; batch 1 when
//                    cfg_scale is 1), and for masked img2img on a regular
//                    model the latent blend after every step
//                    (x = mask * x + (1 - mask) * (init + noise * sigma_next));
//   decode           the VAE decoder and RGB8 (round((x + 1) / 2 * 255), clamped).
// img2img: the init image is VAE-encoded (the posterior mean; with
// Compat::diffusers a posterior sample drawn from the image's generator, as
// diffusers does) and noised to the first sigma of the strength plan
// (sampling::img2img_plan: A1111 mapping by default, one step more than
// diffusers for the same steps and strength).
// Inpainting (a mask, 255 = repaint, 0 = keep; needs an init image): on a
// regular model, masked img2img with the latent blend above; on an
// inpainting model, the U-Net gets [x, mask, masked-image latent] as its
// input channels (the masked image is the init image with the repaint region
// set to 0 in [-1, 1]). The latent mask is the pixel mask sampled nearest
// (pixel (f*i, f*j) for latent (i, j), f the VAE downscale) and binarised at
// 128.
//
// Errors (a Status, never a crash): requests validate_request refuses, sizes
// not multiples of the model's granularity, NaN or infinity in the U-Net
// output or in the decoded image (SDGO_ERR_INTERNAL with the step),
// cancellation (SDGO_ERR_CANCELED, checked before every U-Net call, between
// graph nodes and after every step). The session stays usable after any
// error, cancellation included.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "core/backend.h"
#include "pipeline/model.h"
#include "pipeline/request.h"

namespace sdgo::pipeline {

struct SessionOptions {
    int n_threads = 0;      // <= 0: the model's default
    std::string code_path;  // "" = the model's default
};

class Session {
public:
    static Status create(const Model & m, const SessionOptions & opt, std::unique_ptr<Session> * out);
    ~Session();

    Status generate(const Request & req, const Hooks & hooks, Result * out);

    const Model & model() const { return *m_; }
    Backend & backend() { return *be_; }

    // Stages, public for tests.
    // The text parts of both Conditions (see conditioner.h).
    Status encode_prompts(const std::string & prompt, const std::string & negative, const PromptOptions & opt,
                          Condition * cond, Condition * uncond, int64_t * tokens);
    // VAE moments of an image [W, H, 3] planar in [-1, 1].
    Status vae_encode(const std::vector<float> & image, int W, int H, std::vector<float> * mean,
                      std::vector<float> * logvar);
    // Image [w*f, h*f, 3] planar (not clamped) from a scaled latent [w, h, C],
    // whole or in tiles (request.h: VaeTiling).
    struct VaeTileOptions {
        VaeTiling tiling = VaeTiling::automatic;
        int tile_size = 512, tile_overlap = 64;  // output pixels
    };
    Status vae_decode(const float * latent, int w, int h, const VaeTileOptions & opt, std::vector<float> * image);
    // The whole decode, never tiled.
    Status vae_decode(const float * latent, int w, int h, std::vector<float> * image);

private:
    struct Plan;
    struct ImageCond;
    struct Latents;
    struct UNetStage;
    Session(const Model & m) : m_(&m) {}
    Status plan(const Request & req, Plan * p) const;
    Status condition(const Request & req, const Plan & p, Condition * cond, Condition * uncond, ImageCond * ic);
    Status prepare_latents(const Request & req, const Plan & p, int index, const ImageCond & ic, Condition * cond,
                           Latents * lat);
    Status decode(const Plan & p, const std::vector<float> & x, int index, Result * out);
    int vae_scale() const;
    Status decode_region(const std::vector<float> & z, int w, int h, int x0, int y0, int tw, int th,
                         std::vector<float> * image);
    Status decode_tiled(const std::vector<float> & z, int w, int h, const VaeTileOptions & opt,
                        std::vector<float> * image);

    const Model * m_;
    std::unique_ptr<Backend> be_;
};

}  // namespace sdgo::pipeline
