// naming.h — one canonical tensor naming for every source layout.
//
// The canonical scheme is stable-diffusion.cpp's (its model.cpp name conversion), so
// GGUF files converted by sd.cpp already use it, with two normalisations that
// give every model's code exactly one vocabulary:
//   * UNet:  model.diffusion_model.<LDM name>     (diffusers names mapped)
//   * VAE:   first_stage_model.<LDM name>          (diffusers names mapped);
//            mid.attn_1.{q,k,v,proj_out}.weight always 2-D [C, C]
//   * text encoder 1 (CLIP-L, or SD2's OpenCLIP-H):
//            cond_stage_model.transformer.text_model.<HF CLIP name>
//   * text encoder 2 (SDXL OpenCLIP-bigG; also the refiner's only encoder):
//            cond_stage_model.1.transformer.text_model.<HF CLIP name>
//   * attention q/k/v are always separate (…self_attn.{q,k,v}_proj.*): fused
//     OpenCLIP in_proj and sd.cpp's self_attn.in_proj.* are split into three
//     zero-copy row views;
//   * the text projection is always cond_stage_model[.1].transformer.text_projection.weight
//     in HF Linear layout [proj, d] (OpenCLIP's [d, proj] matrix is transposed);
//   * HF CLIP names without the text_model. level (recent transformers) get it.
// Names that belong to no component (alphas_cumprod, model_ema.*, position_ids
// buffers, logit_scale, ...) are kept unchanged.
#pragma once

#include <string>

#include "formats/model_file.h"

namespace sdgo::model {

enum class Component { unet, vae, text_encoder, text_encoder_2, other };
const char * component_name(Component c);

// Prefixes of the canonical scheme.
extern const char * const kUNetPrefix;        // "model.diffusion_model."
extern const char * const kVAEPrefix;         // "first_stage_model."
extern const char * const kTextEncoderPrefix; // "cond_stage_model.transformer."
extern const char * const kTextEncoder2Prefix;// "cond_stage_model.1.transformer."

// Which component a canonical name belongs to.
Component component_of(const std::string & canonical);

// What an unprefixed file holds, for standalone component files.
enum class Hint { none, unet, vae, text_encoder, text_encoder_2 };

// Renames every tensor of `m` to the canonical scheme in place (splitting and
// transposing where described above) and reindexes. `hint` tells how to read
// names without a known prefix (a standalone file or a diffusers
// sub-folder); Hint::none guesses from the names themselves.
Status canonicalize(formats::ModelFiles * m, Hint hint = Hint::none);

}  // namespace sdgo::model
