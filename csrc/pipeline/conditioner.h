// conditioner.h — what the U-Net is conditioned on, and the text encoders
// that produce it.
//
// A Condition is everything one side (positive or negative) of classifier-
// free guidance feeds the U-Net besides the latent: the cross-attention
// context, and where a model uses them the pooled text embedding, the label
// vector y (SDXL) and extra input channels concatenated to the latent
// (inpainting models: the mask and the masked image's latent). Stages fill
// the parts they know: the conditioner the text parts, the image stage the
// concat channels.
//
// A Conditioner turns a prompt pair into the text parts of both Conditions.
// It belongs to a loaded model (immutable, shared by its sessions) and runs
// its graphs on the backend of the session that calls it. SD 1.x and 2.x
// use one CLIP text encoder (ClipConditioner); SDXL's two encoders and pooled
// output are another implementation of the same interface (SdxlConditioner).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "core/backend.h"
#include "model/clip.h"
#include "model/weights.h"
#include "text/tokenizer.h"

namespace sdgo::pipeline {

struct Condition {
    std::vector<float> context;  // [context_dim, tokens] (ggml order)
    int64_t context_dim = 0;
    std::vector<float> pooled;   // pooled text embedding; empty when the model takes none
    std::vector<float> y;        // label vector; empty when the model takes none
    std::vector<float> concat;   // extra latent-sized input channels [w, h, concat_channels]; empty when none
    int64_t concat_channels = 0;
    int64_t tokens() const { return context_dim > 0 ? int64_t(context.size()) / context_dim : 0; }
};

struct PromptOptions {
    int clip_skip = 0;        // 0: the model's default
    int max_chunks = 64;      // 75-token chunks allowed per prompt
    // diffusers' encode_prompt: no A1111 weighting or chunks; one window
    // truncated after max_positions - 2 tokens.
    bool literal = false;
    // Apply clip_skip to the negative prompt too (A1111); diffusers encodes
    // the negative prompt with the model's default layer.
    bool clip_skip_negative = true;
};

class Conditioner {
public:
    virtual ~Conditioner() = default;
    // Cross-attention width of the contexts it produces.
    virtual int64_t context_dim() const = 0;
    // Fills the text parts of *cond and *uncond (contexts of equal length).
    // *tokens (may be NULL) receives the prompt's token count.
    virtual Status encode(Backend & be, const std::string & prompt, const std::string & negative,
                          const PromptOptions & opt, Condition * cond, Condition * uncond, int64_t * tokens) const = 0;
    // Records the weights encode() reads into a store being prepared.
    virtual Status record(model::WeightStore * store) const = 0;
};

// One CLIP text encoder (SD 1.x: CLIP ViT-L; SD 2.x: OpenCLIP ViT-H): the
// selected layer through the final LayerNorm, A1111 weighting and chunks.
class ClipConditioner final : public Conditioner {
public:
    // `weights` (the model's store), `tok` and the prefix name the encoder;
    // default_clip_skip is what clip_skip 0 means; pad_id pads chunks.
    ClipConditioner(const model::Weights * weights, std::string prefix, model::ClipConfig cfg,
                    const text::ClipTokenizer * tok, int32_t pad_id, int default_clip_skip)
        : w_(weights), prefix_(std::move(prefix)), cfg_(cfg), tok_(tok), pad_id_(pad_id),
          default_clip_skip_(default_clip_skip) {}

    int64_t context_dim() const override { return cfg_.hidden; }
    Status encode(Backend & be, const std::string & prompt, const std::string & negative, const PromptOptions & opt,
                  Condition * cond, Condition * uncond, int64_t * tokens) const override;
    Status record(model::WeightStore * store) const override;
    const model::ClipConfig & config() const { return cfg_; }

private:
    Status build(Graph & g, const model::Weights & w, Tensor * ids, int clip_skip, Tensor ** out) const;

    const model::Weights * w_;
    std::string prefix_;
    model::ClipConfig cfg_;
    const text::ClipTokenizer * tok_;
    int32_t pad_id_;
    int default_clip_skip_;
};

// SDXL: the base's CLIP ViT-L and OpenCLIP ViT-bigG read the same text
// (each with its own tokenizer: L pads with the end token, bigG with "!");
// the refiner has bigG alone. The selected layer of each (default the
// penultimate), without the final LayerNorm, is weighted by the A1111
// emphasis on its own and the encoders' outputs are concatenated per token
// in order (context_dim = the sum of their widths). The pooled output is
// the last encoder's (bigG's) final-LayerNorm state at the end token of the
// first chunk, through its text projection, unweighted (as A1111). With
// zero_empty_negative, an empty negative prompt gives zeros for the negative
// context and pooled output (diffusers' force_zeros_for_empty_prompt, A1111's
// zeroed empty negative).
class SdxlConditioner final : public Conditioner {
public:
    struct Encoder {
        std::string prefix;
        model::ClipConfig cfg;
        const text::ClipTokenizer * tok = nullptr;
        int32_t pad_id = 0;
    };
    // One or two encoders; the last must have a text projection
    // (cfg.projection_dim > 0).
    SdxlConditioner(const model::Weights * weights, std::vector<Encoder> encoders, bool zero_empty_negative)
        : w_(weights), e_(std::move(encoders)), zero_empty_negative_(zero_empty_negative) {}

    int64_t context_dim() const override;
    Status encode(Backend & be, const std::string & prompt, const std::string & negative, const PromptOptions & opt,
                  Condition * cond, Condition * uncond, int64_t * tokens) const override;
    Status record(model::WeightStore * store) const override;

private:
    // The encoders over ids[i] [T, n]: the contexts [hidden_i, T, n] and the
    // last encoder's pooled output [projection_dim, n] at the rows `rows`.
    Status build(Graph & g, const model::Weights & w, Tensor * const * ids, Tensor * rows, int clip_skip,
                 Tensor ** outs, Tensor ** pooled) const;

    const model::Weights * w_;
    std::vector<Encoder> e_;
    bool zero_empty_negative_;
};

}  // namespace sdgo::pipeline
