// clip.h — CLIP text encoders (OpenAI CLIP ViT-L/14 for SD 1.x, OpenCLIP
// ViT-H/14 for SD 2.x) as a graph, matched to transformers' CLIPTextModel.
//
// Input: token ids, i32 [T, n] (n windows of T <= max_positions tokens, each
// encoded independently with positions 0..T-1 and a causal mask; for a batch
// of prompts of k windows each, n = k * batch with each prompt's windows
// adjacent, so that the output reshaped to [hidden, T*k, batch] is the U-Net
// context). Output: hidden states f32 [hidden, T, n] of the layer selected
// by clip_skip, optionally through the final LayerNorm.
//
// Which layer feeds the U-Net (diffusers, A1111 and sd.cpp agree): SD1 clip_skip 1 (or the
// user's A1111 value) + final LN; SD2 the penultimate layer + final LN, i.e.
// clip_skip 2 on the 24-layer OpenCLIP checkpoint, but clip_skip 1 on a
// diffusers text_encoder, which stores only 23 layers; SDXL penultimate
// without the final LN, plus the pooled output below.
//
// Weights are read under a prefix in either naming:
//   HF      <prefix>embeddings.token_embedding.weight, ...encoder.layers.N.self_attn.{q,k,v,out}_proj
//           (or a fused self_attn.in_proj), layer_norm1/2, mlp.fc1/fc2, final_layer_norm
//           (SD1 prefix: cond_stage_model.transformer.text_model.)
//   OpenCLIP <prefix>token_embedding.weight, positional_embedding, transformer.resblocks.N.
//           {ln_1, attn.in_proj_weight/bias, attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj}, ln_final
//           (SD2 prefix: cond_stage_model.model.)
// SDXL additions (CLIP-G with text_projection, pooled output at the EOS
// token) fit as an extra output of the same builder.
#pragma once

#include <string>

#include "core/graph.h"
#include "base/status.h"
#include "formats/json.h"
#include "model/weights.h"

namespace sdgo::model {

enum class ClipAct { quick_gelu, gelu };
enum class ClipNaming { hf, openclip };

struct ClipConfig {
    int64_t hidden = 768;
    int layers = 12;
    int heads = 12;
    int64_t intermediate = 3072;
    ClipAct act = ClipAct::quick_gelu;
    int64_t vocab = 49408;
    int64_t max_positions = 77;
    float eps = 1e-5f;
    ClipNaming naming = ClipNaming::hf;
    bool fused_qkv = false;  // HF naming with self_attn.in_proj (sd.cpp canonical for OpenCLIP)
    int64_t projection_dim = 0;  // text projection output width; 0 = the model has none
};

// Fills naming, hidden, layers, intermediate, vocab, max_positions and
// projection_dim from the tensors under `prefix`; heads = hidden / 64; act:
// quick_gelu for the HF naming with hidden 768 (CLIP-L), gelu otherwise.
// Fails when the text model is missing or inconsistent.
// The text projection is `<prefix>text_projection` [hidden, proj] (OpenCLIP,
// applied as x @ P) or, in HF naming, `text_projection.weight` [proj, hidden]
// next to the text_model (prefix without its trailing "text_model.").
Status clip_config_from_weights(const formats::ModelFiles & w, const std::string & prefix, ClipConfig * cfg);
// Overrides fields from a transformers CLIPTextConfig config.json.
Status clip_config_apply_json(const formats::Json & j, ClipConfig * cfg);

struct ClipOptions {
    // A1111 clip skip: N >= 1 uses the output of layer L-N+1 (1 = last layer).
    int clip_skip = 1;
    // Apply the final LayerNorm to the selected hidden state (SD1, SD2: yes; SDXL: no).
    bool final_norm = true;
};

// Builds the encoder over ids [T, n]; returns [hidden, T, n].
Status build_clip_text(Graph & g, const Weights & w, const std::string & prefix, const ClipConfig & cfg,
                       const ClipOptions & opt, Tensor * ids, Tensor ** out);

// Same, plus the pooled output (SDXL): `rows` i32 [n] holds, for each window,
// the flat row index i*T + eos_position (clip_pooled_rows). *pooled is the
// final-LayerNorm output of the last layer at those rows times the text
// projection: [projection_dim, n] (or [hidden, n] without a projection).
// The pooled path always runs every layer, whatever opt.clip_skip selects
// for *out.
Status build_clip_text_pooled(Graph & g, const Weights & w, const std::string & prefix, const ClipConfig & cfg,
                              const ClipOptions & opt, Tensor * ids, Tensor * rows, Tensor ** out,
                              Tensor ** pooled);

// Host helper for `rows`: per window, the first position holding eos_id
// (transformers' rule), or the first maximum id when there is none
// (open_clip's argmax; the same position for SD vocabularies, whose EOS
// 49407 is the largest id). rows[i] = i*T + position.
void clip_pooled_rows(const int32_t * ids, int64_t T, int64_t n, int32_t eos_id, int32_t * rows);

}  // namespace sdgo::model
