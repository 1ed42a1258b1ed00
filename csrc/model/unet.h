// unet.h — the denoising U-Net (LDM UNetModel / diffusers
// UNet2DConditionModel) as a graph, driven by a config so that SD 1.x, SD 2.x,
// their 9-channel inpainting variants and (with the label embedding) SDXL's
// layout are the same code.
//
// Weights: LDM names under a prefix (default "model.diffusion_model."):
// time_embed.{0,2}, label_emb.0.{0,2} (SDXL), input_blocks.N.{0,1},
// middle_block.{0,1,2}, output_blocks.N.{0,1,2}, out.{0,2}.
#pragma once

#include <string>
#include <vector>

#include "core/graph.h"
#include "base/status.h"
#include "formats/json.h"
#include "model/weights.h"

namespace sdgo::model {

struct UNetConfig {
    int64_t in_channels = 4;
    int64_t out_channels = 4;
    int64_t model_channels = 320;
    std::vector<int> channel_mult = {1, 2, 4, 4};
    int num_res_blocks = 2;
    std::vector<bool> attention = {true, true, true, false};  // per level
    std::vector<int> transformer_depth = {1, 1, 1, 1};         // per level (used where attention is on)
    int mid_depth = 1;
    bool mid_attention = true;
    // Heads: head_dim > 0 gives channels / head_dim heads (SD2/SDXL: 64);
    // otherwise num_heads[level] (SD1: 8 everywhere; the middle block uses
    // the last level's value).
    int head_dim = 0;
    std::vector<int> num_heads = {8, 8, 8, 8};
    int64_t context_dim = 768;
    bool linear_projection = false;  // SD2/SDXL; informational (same math, other weight shape)
    int64_t adm_in_channels = 0;     // SDXL label ("vector") embedding input, 0 = none
    int64_t time_embed_dim = 1280;
    int groups = 32;
    float eps = 1e-5f;  // ResBlock and output GroupNorms (the transformer GroupNorm uses 1e-6)

    int levels() const { return static_cast<int>(channel_mult.size()); }
    int heads_at(int level, int64_t channels) const;
};

// Infers the config from the tensors under `prefix` (LDM names). Heads cannot
// be read from shapes: Linear proj_in (SD2/SDXL) gives head_dim 64, a 1x1 conv
// proj_in (SD1) 8 heads; a config.json (unet_config_apply_json) overrides.
Status unet_config_from_weights(const formats::ModelFiles & w, const std::string & prefix, UNetConfig * cfg);
// Overrides fields from a diffusers UNet2DConditionModel config.json.
Status unet_config_apply_json(const formats::Json & j, UNetConfig * cfg);

// x [W, H, in_channels, B] f32, timesteps [B] f32 (may be fractional),
// context [context_dim, L, B], y [adm_in_channels, B] or NULL. W and H must be
// multiples of 2^(levels-1). Returns [W, H, out_channels, B].
Status build_unet(Graph & g, const Weights & w, const std::string & prefix, const UNetConfig & cfg, Tensor * x,
                  Tensor * timesteps, Tensor * context, Tensor * y, Tensor ** out);

// SDXL's label vector y = [pooled (P), E(v_0), ..., E(v_{k-1})] per batch
// element, E = the sinusoidal embedding of width `embed_dim` (256 for SDXL;
// cos half first), from pooled [P, B] and values [k, B] (SDXL base: original
// h, w, crop top, left, target h, w; refiner: h, w, top, left, aesthetic
// score). Returns [P + k*embed_dim, B].
Status build_sdxl_label(Graph & g, Tensor * pooled, Tensor * values, int embed_dim, Tensor ** y);

}  // namespace sdgo::model
