// detect.h — model family, variant and hyperparameters from the files alone.
//
// Works on canonical names (model/naming.h). Structure decides the family so
// that a tiny model of an architecture is recognised like the full-size one:
//   * UNet with label_emb (ADM input): SDXL base when its deepest level has
//     attention, SDXL refiner when it has none (refiner depth [0,4,4,0]);
//   * otherwise SD 2.x when proj_in is a Linear (2-D), SD 1.x when it is a
//     1x1 conv (4-D);
//   * inpainting = 9 UNet input channels, instruct-pix2pix = 8;
//   * a file with only a VAE or only text encoders is reported as such.
// Hyperparameters come from diffusers config.json when present, otherwise
// from tensor shapes. Prediction type: scheduler config, then markers
// (v_pred, edm_vpred.*, edm_mean, SD2 global_step 875000), else the family's
// default (epsilon for SD1/SDXL; "unknown" for SD2, where no tensor tells).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "model/load.h"

namespace sdgo::model {

struct UNetParams {
    bool present = false;
    bool from_config = false;
    int in_channels = 0, out_channels = 0, model_channels = 0, num_res_blocks = 0;
    std::vector<int> channel_mult;
    std::vector<int> transformer_depth;  // per level, 0 = no attention
    int transformer_depth_middle = 0;     // 0 = no middle attention (distilled variants)
    int context_dim = 0;
    bool use_linear_projection = false;
    int adm_in_channels = 0;              // SDXL vector conditioning width, 0 if none
    std::vector<int> num_heads;           // per level when known (config), else empty
    int head_dim = 0;                     // when fixed by the family (64 for SD2/SDXL)
};

struct VAEParams {
    bool present = false;
    bool from_config = false;
    int in_channels = 0, out_channels = 0, ch = 0, z_channels = 0, num_res_blocks = 0;
    std::vector<int> ch_mult;
    double scaling_factor = 0;
};

struct TextEncoderParams {
    bool present = false;
    bool from_config = false;
    int hidden_size = 0, num_layers = 0, intermediate_size = 0, num_heads = 0, vocab_size = 0, max_positions = 0;
    int projection_dim = 0;   // 0 = no text projection
    std::string hidden_act;   // "quick_gelu" (CLIP-L) or "gelu" (OpenCLIP)
};

struct ComponentStats {
    uint64_t tensors = 0;
    uint64_t params = 0;
    uint64_t bytes = 0;
};

struct ModelInfo {
    std::string family;       // "sd1", "sd2", "sdxl", "sdxl-refiner", "vae", "text-encoder", "unknown"
    std::string variant;      // "base", "inpaint", "instruct-pix2pix", "distilled" (no middle attention)
    std::string prediction;   // "epsilon", "v", "edm", "edm-v", "unknown"
    std::vector<std::string> components;  // present components in canonical order
    UNetParams unet;
    VAEParams vae;
    TextEncoderParams text_encoder, text_encoder_2;
    std::map<std::string, ComponentStats> stats;   // by component name (and "other")
    std::map<std::string, ComponentStats> types;   // by type name
    uint64_t file_bytes = 0;
};

// Fails (SDGO_ERR_FORMAT) when no component at all is recognised.
Status detect(const LoadedModel & m, ModelInfo * out);

// The model summary as a JSON object (for `sd-go info --json`).
std::string model_info_json(const LoadedModel & m, const ModelInfo & info);

}  // namespace sdgo::model
