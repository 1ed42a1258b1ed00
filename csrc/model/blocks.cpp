#include "model/blocks.h"

#include <cmath>

namespace sdgo::model {

Tensor * to_tokens(Graph & g, Tensor * x) {
    // [W, H, C, B] -> [C, W, H, B] -> [C, W*H, B]
    Tensor * t = g.cont(g.permute(x, 1, 2, 0, 3));
    return g.reshape(t, {x->ne[2], x->ne[0] * x->ne[1], x->ne[3]});
}

Tensor * to_image(Graph & g, Tensor * t, int64_t W, int64_t H) {
    // [C, W*H, B] -> [C, W, H, B] -> [W, H, C, B]
    Tensor * r = g.reshape(t, {t->ne[0], W, H, t->ne[2]});
    return g.cont(g.permute(r, 2, 0, 1, 3));
}

Tensor * group_norm(const Binder & b, const std::string & name, Tensor * x, int groups, float eps) {
    const int64_t C = x->ne[2];
    Tensor * w = b.vec(name + ".weight", C);
    Tensor * bias = b.vec(name + ".bias", C);
    return b.graph().group_norm(x, groups, eps, w, bias);
}

Tensor * group_norm_silu(const Binder & b, const std::string & name, Tensor * x, int groups, float eps) {
    const int64_t C = x->ne[2];
    Tensor * w = b.vec(name + ".weight", C);
    Tensor * bias = b.vec(name + ".bias", C);
    return b.graph().group_norm_silu(x, groups, eps, w, bias);
}

Tensor * layer_norm(const Binder & b, const std::string & name, Tensor * x, float eps) {
    const int64_t C = x->ne[0];
    Tensor * w = b.vec(name + ".weight", C);
    Tensor * bias = b.vec(name + ".bias", C);
    return b.graph().layer_norm(x, eps, w, bias);
}

Tensor * linear(const Binder & b, const std::string & name, Tensor * x, int64_t in, int64_t out, bool bias) {
    Tensor * w = b.matrix(name + ".weight", in, out);
    Tensor * bv = bias ? b.vec(name + ".bias", out) : nullptr;
    return b.graph().mul_mat(w, x, bv);
}

Tensor * conv2d(const Binder & b, const std::string & name, Tensor * x, int64_t cin, int64_t cout, int k, int stride,
                int pad) {
    Tensor * w = b.conv(name + ".weight", k, k, cin, cout);
    Tensor * bias = b.vec(name + ".bias", cout);
    return b.graph().conv2d(w, x, bias, stride, stride, pad, pad);
}

Tensor * resblock(const Binder & b, Tensor * x, Tensor * emb, int64_t emb_dim, int64_t cin, int64_t cout,
                  const ResParams & p) {
    Graph & g = b.graph();
    const bool unet = p.names == ResNames::unet;
    const char * n1 = unet ? "in_layers.0" : "norm1";
    const char * c1 = unet ? "in_layers.2" : "conv1";
    const char * n2 = unet ? "out_layers.0" : "norm2";
    const char * c2 = unet ? "out_layers.3" : "conv2";
    const char * sk = unet ? "skip_connection" : "nin_shortcut";

    Tensor * h = group_norm_silu(b, n1, x, p.groups, p.eps);
    h = conv2d(b, c1, h, cin, cout, 3, 1, 1);
    if (emb) {
        Tensor * e = linear(b, "emb_layers.1", g.silu(emb), emb_dim, cout);  // [cout, B]
        if (e) e = g.reshape(e, {1, 1, cout, e->ne[1]});
        h = g.add(h, e);
    }
    h = group_norm_silu(b, n2, h, p.groups, p.eps);
    h = conv2d(b, c2, h, cout, cout, 3, 1, 1);
    Tensor * skip = x;
    if (cin != cout || b.has(std::string(sk) + ".weight")) skip = conv2d(b, sk, x, cin, cout, 1, 1, 0);
    return g.add(skip, h);
}

Tensor * multi_head_attention(Graph & g, Tensor * q, Tensor * k, Tensor * v, int heads, bool causal) {
    if (!q || !k || !v) return g.attention(q, k, v, 1.0f);  // records the error
    const int64_t C = q->ne[0];
    const int64_t D = C / heads;
    // [C, N, B] -> [D, H, N, B] -> [D, N, H, B] (views)
    auto split = [&](Tensor * t) {
        Tensor * r = g.reshape(t, {D, heads, t->ne[1], t->ne[2]});
        return g.permute(r, 0, 2, 1, 3);
    };
    Tensor * o = g.attention(split(q), split(k), split(v), 1.0f / std::sqrt(static_cast<float>(D)), causal);
    // [D, H, Nq, B] -> [C, Nq, B]
    return g.reshape(o, {C, q->ne[1], q->ne[2]});
}

Tensor * cross_attention(const Binder & b, Tensor * x, Tensor * ctx, int64_t C, int64_t ctx_dim, int heads) {
    Graph & g = b.graph();
    Tensor * q = linear(b, "to_q", x, C, C, false);
    Tensor * k = linear(b, "to_k", ctx, ctx_dim, C, false);
    Tensor * v = linear(b, "to_v", ctx, ctx_dim, C, false);
    Tensor * o = multi_head_attention(g, q, k, v, heads, false);
    // Some diffusers exports name the output projection to_out.weight.
    return linear(b, b.has("to_out.0.weight") || !b.has("to_out.weight") ? "to_out.0" : "to_out", o, C, C);
}

Tensor * spatial_transformer(const Binder & b, Tensor * x, Tensor * context, const TransformerParams & p) {
    Graph & g = b.graph();
    const int64_t W = x->ne[0], H = x->ne[1], C = p.channels;
    Tensor * h = group_norm(b, "norm", x, p.groups, 1e-6f);
    // proj_in: a 1x1 conv (SD1) or a Linear applied after the reshape (SD2):
    // both are the same matrix over the channels.
    h = linear(b, "proj_in", to_tokens(g, h), C, C);
    for (int d = 0; d < p.depth; d++) {
        const Binder tb = b.sub("transformer_blocks." + std::to_string(d) + ".");
        Tensor * n = layer_norm(tb, "norm1", h, 1e-5f);
        h = g.add(h, cross_attention(tb.sub("attn1."), n, n, C, C, p.heads));
        n = layer_norm(tb, "norm2", h, 1e-5f);
        h = g.add(h, cross_attention(tb.sub("attn2."), n, context, C, p.context_dim, p.heads));
        n = layer_norm(tb, "norm3", h, 1e-5f);
        Tensor * f = linear(tb, "ff.net.0.proj", n, C, 8 * C);
        f = linear(tb, "ff.net.2", f ? g.geglu(f) : f, 4 * C, C);
        h = g.add(h, f);
    }
    h = linear(b, "proj_out", h, C, C);
    return g.add(to_image(g, h, W, H), x);
}

Tensor * downsample(const Binder & b, const std::string & name, Tensor * x, int64_t ch) {
    return conv2d(b, name, x, ch, ch, 3, 2, 1);
}

Tensor * upsample(const Binder & b, const std::string & name, Tensor * x, int64_t ch) {
    return conv2d(b, name, b.graph().upscale_nearest(x, 2), ch, ch, 3, 1, 1);
}

Tensor * vae_downsample(const Binder & b, const std::string & name, Tensor * x, int64_t ch) {
    return conv2d(b, name, b.graph().pad(x, 1, 1), ch, ch, 3, 2, 0);
}

Tensor * vae_attention(const Binder & b, Tensor * x, int64_t ch, int groups, float eps) {
    Graph & g = b.graph();
    const int64_t W = x->ne[0], H = x->ne[1];
    Tensor * h = to_tokens(g, group_norm(b, "norm", x, groups, eps));  // [C, N, B]
    Tensor * q = linear(b, "q", h, ch, ch);
    Tensor * k = linear(b, "k", h, ch, ch);
    Tensor * v = linear(b, "v", h, ch, ch);
    Tensor * o = multi_head_attention(g, q, k, v, 1, false);
    o = linear(b, "proj_out", o, ch, ch);
    return g.add(x, to_image(g, o, W, H));
}

}  // namespace sdgo::model
