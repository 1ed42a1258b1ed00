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
// Hyperparameters come from tensor shapes, refined by diffusers config.json
// when present (infer_* below, shared with the pipeline). Prediction type: scheduler config, then markers
// (v_pred, edm_vpred.*, edm_mean, SD2 global_step 875000), else the family's
// default (epsilon for SD1/SDXL; "unknown" for SD2, where no tensor tells).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "model/clip.h"
#include "model/load.h"
#include "model/unet.h"
#include "model/vae.h"

namespace sdgo::model {

// One component's hyperparameters: the network config itself (the one
// source both detection and the graph builders use), whether the component
// is there, and whether a diffusers config.json contributed.
template <typename Config>
struct Part {
    bool present = false;
    bool from_config = false;
    Config cfg;
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
    Part<UNetConfig> unet;
    Part<VaeConfig> vae;
    Part<ClipConfig> text_encoder, text_encoder_2;
    std::map<std::string, ComponentStats> stats;   // by component name (and "other")
    std::map<std::string, ComponentStats> types;   // by type name
    uint64_t file_bytes = 0;
};

// Fails (SDGO_ERR_FORMAT) when no component at all is recognised, or when a
// component is present but its hyperparameters are inconsistent.
Status detect(const LoadedModel & m, ModelInfo * out);

// The hyperparameters of one component, inferred from the tensor shapes
// under the canonical prefix, then the family's defaults for what shapes
// cannot tell, then the diffusers config.json when there is one (bounded by
// the weights actually present). `family` is the detected family of the
// model the component belongs to ("" when unknown): it decides the VAE's
// scaling factor (SDXL: 0.13025, else 0.18215) and the text encoders'
// activation (CLIP-L quick_gelu, OpenCLIP gelu).
Status infer_unet(const LoadedModel & m, Part<UNetConfig> * out);
Status infer_vae(const LoadedModel & m, const std::string & family, Part<VaeConfig> * out);
// which = 1 (text_encoder) or 2 (text_encoder_2).
Status infer_text_encoder(const LoadedModel & m, int which, const std::string & family, Part<ClipConfig> * out);
// The canonical prefix of text encoder 1 or 2's text model.
std::string text_encoder_prefix(int which);

// The model summary as a JSON object (for `sd-go info --json`).
std::string model_info_json(const LoadedModel & m, const ModelInfo & info);

}  // namespace sdgo::model
