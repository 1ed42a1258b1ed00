#include "model/vae.h"

#include <cmath>

#include "model/blocks.h"

namespace sdgo::model {

static std::string S(int i) { return std::to_string(i); }

Status vae_config_from_weights(const formats::ModelFiles & w, const std::string & p, VaeConfig * cfg) {
    const formats::TensorEntry * ein = w.find(p + "encoder.conv_in.weight");
    const formats::TensorEntry * din = w.find(p + "decoder.conv_in.weight");
    const formats::TensorEntry * dout = w.find(p + "decoder.conv_out.weight");
    if (!din || !dout) return error(SDGO_ERR_FORMAT, "vae: no decoder weights under '%s'", p.c_str());
    cfg->z_channels = din->ne[2];
    cfg->in_channels = dout->ne[3];
    // The level-0 channel count is the decoder's last conv input.
    cfg->ch = dout->ne[2];
    if (ein && (ein->ne[3] != cfg->ch || ein->ne[2] != cfg->in_channels))
        return error(SDGO_ERR_FORMAT, "vae: encoder conv_in %s does not match the decoder", ein->shape_str().c_str());
    int levels = 0;
    while (levels < 64 && w.has(p + "decoder.up." + S(levels) + ".block.0.conv1.weight")) levels++;
    if (levels == 0) return error(SDGO_ERR_FORMAT, "vae: no decoder levels");
    cfg->ch_mult.clear();
    for (int l = 0; l < levels; l++) {
        const formats::TensorEntry * c = w.find(p + "decoder.up." + S(l) + ".block.0.conv2.weight");
        if (!c) return error(SDGO_ERR_FORMAT, "vae: decoder level %d has no block 0 conv2 weight", l);
        if (c->ne[3] % cfg->ch != 0)
            return error(SDGO_ERR_UNSUPPORTED,
                         "vae: decoder level %d has %lld channels, not a multiple of level 0's %lld (sd-go supports "
                         "VAEs whose block_out_channels are multiples of the first)",
                         l, (long long)c->ne[3], (long long)cfg->ch);
        cfg->ch_mult.push_back(static_cast<int>(c->ne[3] / cfg->ch));
    }
    int blocks = 0;
    while (blocks < 64 && w.has(p + "decoder.up.0.block." + S(blocks) + ".conv1.weight")) blocks++;
    if (blocks < 2) return error(SDGO_ERR_FORMAT, "vae: decoder has %d blocks per level", blocks);
    cfg->num_res_blocks = blocks - 1;
    cfg->mid_attention = w.has(p + "decoder.mid.attn_1.q.weight");
    cfg->quant_conv = w.has(p + "post_quant_conv.weight");
    return Status();
}

Status vae_config_apply_json(const formats::Json & j, VaeConfig * cfg) {
    if (j.kind != formats::Json::object) return error(SDGO_ERR_FORMAT, "vae config: not a JSON object");
    // Bounds well past every real VAE (4 levels of at most 512 channels, 2
    // blocks each), so that a hostile config cannot multiply work or memory.
    const char * what = "vae config";
    SDGO_TRY(j.int_in("in_channels", 1, 64, cfg->in_channels, &cfg->in_channels, what));
    if (const formats::Json * boc = j.get("block_out_channels")) {
        if (boc->kind != formats::Json::array || boc->items.empty() || boc->items.size() > 8)
            return error(SDGO_ERR_FORMAT, "vae config: block_out_channels must list 1 to 8 channel counts");
        cfg->ch_mult.clear();
        for (const auto & it : boc->items) {
            int64_t c = 0;
            if (!it.as_int64(&c) || c < 1 || c > 8192)
                return error(SDGO_ERR_FORMAT, "vae config: block_out_channels must be integers from 1 to 8192");
            if (cfg->ch_mult.empty()) cfg->ch = c;
            if (c % cfg->ch != 0)
                return error(SDGO_ERR_UNSUPPORTED,
                             "vae config: block_out_channels %lld is not a multiple of the first (%lld); sd-go supports "
                             "VAEs whose levels are multiples of the first",
                             (long long)c, (long long)cfg->ch);
            cfg->ch_mult.push_back(static_cast<int>(c / cfg->ch));
        }
    }
    int64_t res_blocks = 0, groups = 0;
    double scale = 0;
    SDGO_TRY(j.int_in("layers_per_block", 1, 8, cfg->num_res_blocks, &res_blocks, what));
    SDGO_TRY(j.int_in("latent_channels", 1, 64, cfg->z_channels, &cfg->z_channels, what));
    SDGO_TRY(j.int_in("norm_num_groups", 1, 1024, cfg->groups, &groups, what));
    SDGO_TRY(j.num_in("scaling_factor", 1e-6, 1e6, cfg->scaling_factor, &scale, what));
    cfg->num_res_blocks = static_cast<int>(res_blocks);
    cfg->groups = static_cast<int>(groups);
    cfg->scaling_factor = static_cast<float>(scale);
    cfg->mid_attention = j.bool_or("mid_block_add_attention", cfg->mid_attention);
    cfg->quant_conv = j.bool_or("use_quant_conv", cfg->quant_conv);
    return Status();
}

static Status check_config(const VaeConfig & c) {
    if (c.levels() < 1 || c.levels() > 8 || c.ch <= 0 || c.num_res_blocks < 1 || c.z_channels <= 0 ||
        c.in_channels <= 0 || c.groups <= 0)
        return error(SDGO_ERR_INVALID_ARGUMENT, "vae: inconsistent config");
    for (int m : c.ch_mult)
        if (m <= 0 || (c.ch * m) % c.groups != 0)
            return error(SDGO_ERR_INVALID_ARGUMENT, "vae: %lld channels with %d groups", (long long)(c.ch * m), c.groups);
    return Status();
}

static Tensor * mid_block(const Binder & b, Tensor * h, int64_t ch, const VaeConfig & cfg, const ResParams & rp) {
    h = resblock(b.sub("block_1."), h, nullptr, 0, ch, ch, rp);
    if (cfg.mid_attention) h = vae_attention(b.sub("attn_1."), h, ch, cfg.groups, cfg.eps);
    return resblock(b.sub("block_2."), h, nullptr, 0, ch, ch, rp);
}

Status build_vae_encoder(Graph & g, const Weights & w, const std::string & prefix, const VaeConfig & cfg, Tensor * image,
                         Tensor ** mean, Tensor ** logvar) {
    SDGO_TRY(check_config(cfg));
    const int64_t f = cfg.downscale();
    if (!image || image->ne[2] != cfg.in_channels || image->ne[0] % f != 0 || image->ne[1] % f != 0 ||
        image->ne[0] <= 0 || image->ne[1] <= 0)
        return error(SDGO_ERR_INVALID_ARGUMENT, "vae encode: image %s must have %lld channels and a size that is a "
                     "multiple of %lld", image ? image->shape_str().c_str() : "(null)", (long long)cfg.in_channels,
                     (long long)f);
    const Binder b(g, w, prefix);
    const Binder eb = b.sub("encoder.");
    ResParams rp;
    rp.groups = cfg.groups;
    rp.eps = cfg.eps;
    rp.names = ResNames::vae;
    const int L = cfg.levels();
    Tensor * h = conv2d(eb, "conv_in", image, cfg.in_channels, cfg.ch, 3, 1, 1);
    int64_t ch = cfg.ch;
    for (int l = 0; l < L; l++) {
        const int64_t och = cfg.ch * cfg.ch_mult[l];
        for (int r = 0; r < cfg.num_res_blocks; r++) {
            h = resblock(eb.sub("down." + S(l) + ".block." + S(r) + "."), h, nullptr, 0, ch, och, rp);
            ch = och;
        }
        if (l != L - 1) h = vae_downsample(eb, "down." + S(l) + ".downsample.conv", h, ch);
    }
    h = mid_block(eb.sub("mid."), h, ch, cfg, rp);
    h = group_norm_silu(eb, "norm_out", h, cfg.groups, cfg.eps);
    const int64_t z2 = 2 * cfg.z_channels;
    h = conv2d(eb, "conv_out", h, ch, z2, 3, 1, 1);
    if (cfg.quant_conv) h = conv2d(b, "quant_conv", h, z2, z2, 1, 1, 0);
    SDGO_TRY(Status(b.status()).wrap("vae encoder"));
    SDGO_TRY(g.status());
    // Split the moments along channels: mean first, logvar second.
    const size_t half = static_cast<size_t>(cfg.z_channels) * h->nb[2];
    if (mean) *mean = g.cont(g.view(h, {h->ne[0], h->ne[1], cfg.z_channels, h->ne[3]}, {h->nb[1], h->nb[2], h->nb[3]}, 0));
    if (logvar) {
        Tensor * lv = g.view(h, {h->ne[0], h->ne[1], cfg.z_channels, h->ne[3]}, {h->nb[1], h->nb[2], h->nb[3]}, half);
        *logvar = g.clamp(lv, -30.0f, 20.0f);
    }
    return g.status();
}

void vae_sample(const float * mean, const float * logvar, const float * noise, float * out, size_t n) {
    for (size_t i = 0; i < n; i++)
        out[i] = noise ? mean[i] + std::exp(0.5f * logvar[i]) * noise[i] : mean[i];
}

Status build_vae_decoder(Graph & g, const Weights & w, const std::string & prefix, const VaeConfig & cfg, Tensor * z,
                         Tensor ** image) {
    SDGO_TRY(check_config(cfg));
    if (!z || z->ne[2] != cfg.z_channels || z->ne[0] <= 0 || z->ne[1] <= 0)
        return error(SDGO_ERR_INVALID_ARGUMENT, "vae decode: latent %s must have %lld channels",
                     z ? z->shape_str().c_str() : "(null)", (long long)cfg.z_channels);
    const Binder b(g, w, prefix);
    const Binder db = b.sub("decoder.");
    ResParams rp;
    rp.groups = cfg.groups;
    rp.eps = cfg.eps;
    rp.names = ResNames::vae;
    const int L = cfg.levels();
    Tensor * h = z;
    if (cfg.quant_conv) h = conv2d(b, "post_quant_conv", h, cfg.z_channels, cfg.z_channels, 1, 1, 0);
    int64_t ch = cfg.ch * cfg.ch_mult[L - 1];
    h = conv2d(db, "conv_in", h, cfg.z_channels, ch, 3, 1, 1);
    h = mid_block(db.sub("mid."), h, ch, cfg, rp);
    for (int l = L - 1; l >= 0; l--) {
        const int64_t och = cfg.ch * cfg.ch_mult[l];
        for (int r = 0; r <= cfg.num_res_blocks; r++) {
            h = resblock(db.sub("up." + S(l) + ".block." + S(r) + "."), h, nullptr, 0, ch, och, rp);
            ch = och;
        }
        if (l != 0) h = upsample(db, "up." + S(l) + ".upsample.conv", h, ch);
    }
    h = group_norm_silu(db, "norm_out", h, cfg.groups, cfg.eps);
    h = conv2d(db, "conv_out", h, ch, cfg.in_channels, 3, 1, 1);
    SDGO_TRY(Status(b.status()).wrap("vae decoder"));
    SDGO_TRY(g.status());
    *image = h;
    return Status();
}

}  // namespace sdgo::model
