// blocks.h — building blocks shared by the U-Net, the VAE and the text
// encoders, as graph builders over named weights (Binder).
//
// Layouts: images/feature maps are [W, H, C, B] (ggml order; PyTorch NCHW);
// token sequences are [C, N, B] (C innermost). Conversions between the two
// are to_tokens()/to_image(). Each block reads its weights relative to the
// Binder's prefix (include the trailing '.').
#pragma once

#include <string>

#include "core/graph.h"
#include "model/weights.h"

namespace sdgo::model {

// [W, H, C, B] -> [C, W*H, B] (contiguous) and back.
Tensor * to_tokens(Graph & g, Tensor * x);
Tensor * to_image(Graph & g, Tensor * t, int64_t W, int64_t H);

// GroupNorm with affine weight/bias `<name>.weight`, `<name>.bias`.
Tensor * group_norm(const Binder & b, const std::string & name, Tensor * x, int groups, float eps);
// silu(GroupNorm(x)) as one fused op.
Tensor * group_norm_silu(const Binder & b, const std::string & name, Tensor * x, int groups, float eps);
// LayerNorm over ne0 with `<name>.weight`, `<name>.bias`.
Tensor * layer_norm(const Binder & b, const std::string & name, Tensor * x, float eps);
// y = W x + bias, weights `<name>.weight` [in, out] (or a 1x1 conv kernel), `<name>.bias` (optional).
Tensor * linear(const Binder & b, const std::string & name, Tensor * x, int64_t in, int64_t out, bool bias = true);
// 2-D convolution with `<name>.weight` [k, k, cin, cout] and `<name>.bias`.
Tensor * conv2d(const Binder & b, const std::string & name, Tensor * x, int64_t cin, int64_t cout, int k,
                int stride, int pad);

// Residual block names: LDM U-Net (in_layers/emb_layers/out_layers/
// skip_connection) or LDM VAE (norm1/conv1/norm2/conv2/nin_shortcut).
enum class ResNames { unet, vae };

struct ResParams {
    int groups = 32;
    float eps = 1e-5f;
    ResNames names = ResNames::unet;
};

// ResBlock: x [W,H,cin,B], emb [E,B] (U-Net) or NULL (VAE).
Tensor * resblock(const Binder & b, Tensor * x, Tensor * emb, int64_t emb_dim, int64_t cin, int64_t cout,
                  const ResParams & p);

// Multi-head attention of token sequences: x [C, N, B] (queries), ctx
// [Dc, L, B] (keys/values; x itself for self-attention). Weights
// `to_q`, `to_k`, `to_v` (no bias), `to_out.0` (with bias).
Tensor * cross_attention(const Binder & b, Tensor * x, Tensor * ctx, int64_t C, int64_t ctx_dim, int heads);
// Splits [C, N, B] into heads and runs attention: q/k/v [heads*D, N, B] ->
// [heads*D, Nq, B].
Tensor * multi_head_attention(Graph & g, Tensor * q, Tensor * k, Tensor * v, int heads, bool causal);

struct TransformerParams {
    int64_t channels = 0;
    int heads = 8;
    int depth = 1;
    int64_t context_dim = 0;
    int groups = 32;
    bool linear_proj = false;  // SD2/SDXL Linear proj_in/out (SD1: 1x1 convs; same math)
};

// SpatialTransformer (diffusers Transformer2DModel): x [W,H,C,B], context [Dc, L, B].
Tensor * spatial_transformer(const Binder & b, Tensor * x, Tensor * context, const TransformerParams & p);

// U-Net down/up sampling: conv3x3 stride 2 pad 1 (`<name>`), nearest x2 then conv3x3.
Tensor * downsample(const Binder & b, const std::string & name, Tensor * x, int64_t ch);
Tensor * upsample(const Binder & b, const std::string & name, Tensor * x, int64_t ch);
// VAE downsample: zero pad right/bottom by one, conv3x3 stride 2 pad 0.
Tensor * vae_downsample(const Binder & b, const std::string & name, Tensor * x, int64_t ch);

// VAE mid-block attention (single head over all positions), names norm, q,
// k, v, proj_out under the Binder prefix.
Tensor * vae_attention(const Binder & b, Tensor * x, int64_t ch, int groups, float eps);

}  // namespace sdgo::model
