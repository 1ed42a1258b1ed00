// vae.h — the KL autoencoder (LDM AutoencoderKL "kl-f8" / diffusers
// AutoencoderKL) encoder and decoder as graphs.
//
// Weights: LDM names under a prefix (default "first_stage_model."):
// encoder.{conv_in, down.I.block.J, down.I.downsample.conv, mid.block_1,
// mid.attn_1, mid.block_2, norm_out, conv_out}, quant_conv, post_quant_conv,
// decoder.{conv_in, mid.*, up.I.block.J, up.I.upsample.conv, norm_out, conv_out}.
#pragma once

#include <string>
#include <vector>

#include "core/graph.h"
#include "base/status.h"
#include "formats/json.h"
#include "model/weights.h"

namespace sdgo::model {

struct VaeConfig {
    int64_t in_channels = 3;   // image channels (encoder in, decoder out)
    int64_t ch = 128;
    std::vector<int> ch_mult = {1, 2, 4, 4};
    int num_res_blocks = 2;    // encoder blocks per level (the decoder has one more)
    int64_t z_channels = 4;
    bool mid_attention = true;
    bool quant_conv = true;     // quant_conv / post_quant_conv present
    int groups = 32;
    float eps = 1e-6f;
    float scaling_factor = 0.18215f;

    int levels() const { return static_cast<int>(ch_mult.size()); }
    int downscale() const { return 1 << (levels() - 1); }
};

// Infers channels, levels, res blocks, z channels and the mid attention from
// the tensors under `prefix` (scaling factor keeps its value).
Status vae_config_from_weights(const formats::ModelFiles & w, const std::string & prefix, VaeConfig * cfg);
// Overrides fields from a diffusers AutoencoderKL config.json.
Status vae_config_apply_json(const formats::Json & j, VaeConfig * cfg);

// Encoder: image [W, H, in_channels, B] in [-1, 1] (W, H multiples of
// downscale()) -> moments: *mean and *logvar [W/f, H/f, z, B]; logvar is
// clamped to [-30, 20] as in the references. Either output may be requested
// alone (pass NULL for the other).
Status build_vae_encoder(Graph & g, const Weights & w, const std::string & prefix, const VaeConfig & cfg, Tensor * image,
                         Tensor ** mean, Tensor ** logvar);
// Host side of the posterior sample: out[i] = mean[i] + exp(logvar[i]/2) *
// noise[i] (noise NULL: the mean). The result is the unscaled latent
// (multiply by scaling_factor for diffusion space).
void vae_sample(const float * mean, const float * logvar, const float * noise, float * out, size_t n);
// Decoder: unscaled latent z [w, h, z_channels, B] -> image [w*f, h*f, in_channels, B]
// (not clamped).
Status build_vae_decoder(Graph & g, const Weights & w, const std::string & prefix, const VaeConfig & cfg, Tensor * z,
                         Tensor ** image);

}  // namespace sdgo::model
