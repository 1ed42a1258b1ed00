#include "model/unet.h"

#include "model/blocks.h"

namespace sdgo::model {

int UNetConfig::heads_at(int level, int64_t channels) const {
    if (head_dim > 0) return static_cast<int>(channels / head_dim);
    if (num_heads.empty()) return 1;
    if (level < 0 || level >= static_cast<int>(num_heads.size())) return num_heads.back();
    return num_heads[level];
}

static std::string S(int i) { return std::to_string(i); }

Status unet_config_from_weights(const formats::ModelFiles & w, const std::string & p, UNetConfig * cfg) {
    const formats::TensorEntry * cin = w.find(p + "input_blocks.0.0.weight");
    const formats::TensorEntry * cout = w.find(p + "out.2.weight");
    const formats::TensorEntry * t0 = w.find(p + "time_embed.0.weight");
    if (!cin || !cout || !t0) return error(SDGO_ERR_FORMAT, "unet: no U-Net weights under '%s'", p.c_str());
    cfg->in_channels = cin->ne[2];
    cfg->model_channels = cin->ne[3];
    cfg->out_channels = cout->ne[3];
    cfg->time_embed_dim = t0->ne[1];
    const int64_t mc = cfg->model_channels;
    if (mc <= 0) return error(SDGO_ERR_FORMAT, "unet: model channels %lld", (long long)mc);
    const formats::TensorEntry * label = w.find(p + "label_emb.0.0.weight");
    cfg->adm_in_channels = label ? label->ne[0] : 0;

    cfg->channel_mult.clear();
    cfg->attention.clear();
    cfg->transformer_depth.clear();
    cfg->num_res_blocks = 0;
    cfg->linear_projection = false;
    cfg->context_dim = 0;
    auto depth_of = [&](const std::string & st) {
        int d = 0;
        while (d < 1000 && w.has(st + "transformer_blocks." + S(d) + ".norm1.weight")) d++;
        return d;
    };
    auto note_st = [&](const std::string & st) {
        const formats::TensorEntry * pi = w.find(st + "proj_in.weight");
        // Linear [C, C] (ggml ne {C, C, 1, 1}) vs 1x1 conv (ne {1, 1, C, C}).
        if (pi && pi->ne[0] > 1 && pi->ne[2] == 1 && pi->ne[3] == 1) cfg->linear_projection = true;
        const formats::TensorEntry * k = w.find(st + "transformer_blocks.0.attn2.to_k.weight");
        if (k && cfg->context_dim == 0) cfg->context_dim = k->ne[0];
    };
    int n = 1;
    int res_in_level = 0;
    bool level_attn = false;
    int level_depth = 0;
    while (n < 10000) {
        const std::string blk = p + "input_blocks." + S(n) + ".";
        if (w.has(blk + "0.op.weight")) {  // downsampler ends the level
            if (cfg->num_res_blocks == 0) cfg->num_res_blocks = res_in_level;
            if (res_in_level != cfg->num_res_blocks)
                return error(SDGO_ERR_FORMAT, "unet: levels with different numbers of res blocks");
            cfg->attention.push_back(level_attn);
            cfg->transformer_depth.push_back(level_attn ? level_depth : 1);
            res_in_level = 0;
            level_attn = false;
            level_depth = 0;
            n++;
            continue;
        }
        const formats::TensorEntry * rb = w.find(blk + "0.out_layers.3.weight");
        if (!rb) break;
        if (res_in_level == 0) {
            const int64_t ch = rb->ne[3];
            if (ch % mc != 0)
                return error(SDGO_ERR_UNSUPPORTED,
                             "unet: level %zu has %lld channels, not a multiple of level 0's %lld (sd-go supports "
                             "U-Nets whose block_out_channels are multiples of the first)",
                             cfg->channel_mult.size(), (long long)ch, (long long)mc);
            cfg->channel_mult.push_back(static_cast<int>(ch / mc));
        }
        if (w.has(blk + "1.norm.weight")) {
            level_attn = true;
            level_depth = depth_of(blk + "1.");
            note_st(blk + "1.");
        }
        res_in_level++;
        n++;
    }
    if (res_in_level == 0) return error(SDGO_ERR_FORMAT, "unet: unexpected input block layout");
    if (cfg->num_res_blocks == 0) cfg->num_res_blocks = res_in_level;
    if (res_in_level != cfg->num_res_blocks)
        return error(SDGO_ERR_FORMAT, "unet: levels with different numbers of res blocks");
    cfg->attention.push_back(level_attn);
    cfg->transformer_depth.push_back(level_attn ? level_depth : 1);
    if (cfg->channel_mult.size() != cfg->attention.size())
        return error(SDGO_ERR_FORMAT, "unet: unexpected input block layout");
    cfg->mid_attention = w.has(p + "middle_block.1.norm.weight");
    cfg->mid_depth = cfg->mid_attention ? depth_of(p + "middle_block.1.") : 0;
    if (cfg->mid_attention) note_st(p + "middle_block.1.");
    if (cfg->linear_projection) {
        cfg->head_dim = 64;
        cfg->num_heads.clear();
    } else {
        cfg->head_dim = 0;
        cfg->num_heads.assign(cfg->channel_mult.size(), 8);
    }
    return Status();
}

// A number or a list of at most 8 numbers (one per level), each an integer
// in [lo, hi]. False when j is absent, null or not of that form; *bad is set
// when it has the form but a value out of range.
static bool int_list(const formats::Json * j, std::vector<int> * out, int64_t lo = 0, int64_t hi = 8192,
                     bool * bad = nullptr) {
    if (!j) return false;
    out->clear();
    auto take = [&](const formats::Json & v) {
        int64_t x = 0;
        if (!v.as_int64(&x) || x < lo || x > hi) {
            if (bad) *bad = true;
            return false;
        }
        out->push_back(static_cast<int>(x));
        return true;
    };
    if (j->kind == formats::Json::number) return take(*j);
    if (j->kind != formats::Json::array || j->items.size() > 8) return false;
    for (const auto & it : j->items)
        if (!take(it)) return false;
    return true;
}

// int_list, or an error naming the key when the value is out of [lo, hi].
static Status bounded_list(const formats::Json & j, const char * key, int64_t lo, int64_t hi, std::vector<int> * out,
                           bool * present) {
    bool bad = false;
    *present = int_list(j.get(key), out, lo, hi, &bad);
    if (bad)
        return error(SDGO_ERR_FORMAT, "unet config: %s must hold integers from %lld to %lld", key, (long long)lo,
                     (long long)hi);
    return Status();
}

Status unet_config_apply_json(const formats::Json & j, UNetConfig * cfg) {
    if (j.kind != formats::Json::object) return error(SDGO_ERR_FORMAT, "unet config: not a JSON object");
    // Bounds well past every real U-Net (SDXL: 3 levels, up to 10
    // transformer blocks, 20 heads), so that a hostile config cannot
    // multiply work or memory.
    const char * what = "unet config";
    SDGO_TRY(j.int_in("in_channels", 1, 64, cfg->in_channels, &cfg->in_channels, what));
    SDGO_TRY(j.int_in("out_channels", 1, 64, cfg->out_channels, &cfg->out_channels, what));
    std::vector<int> boc;
    bool have = false;
    SDGO_TRY(bounded_list(j, "block_out_channels", 1, 8192, &boc, &have));
    if (have && !boc.empty()) {
        cfg->model_channels = boc[0];
        cfg->channel_mult.clear();
        for (int c : boc) {
            if (c <= 0 || c % boc[0] != 0)
                return error(SDGO_ERR_UNSUPPORTED,
                             "unet config: block_out_channels %d is not a multiple of the first (%d); sd-go supports "
                             "U-Nets whose levels are multiples of the first",
                             c, boc[0]);
            cfg->channel_mult.push_back(c / boc[0]);
        }
    }
    const int levels = cfg->levels();
    int64_t res_blocks = 0;
    SDGO_TRY(j.int_in("layers_per_block", 1, 8, cfg->num_res_blocks, &res_blocks, what));
    cfg->num_res_blocks = static_cast<int>(res_blocks);
    if (const formats::Json * dbt = j.get("down_block_types")) {
        if (dbt->kind != formats::Json::array || static_cast<int>(dbt->items.size()) != levels)
            return error(SDGO_ERR_FORMAT, "unet config: down_block_types");
        cfg->attention.clear();
        for (const auto & t : dbt->items) cfg->attention.push_back(t.str.find("CrossAttn") != std::string::npos);
    }
    std::vector<int> v;
    SDGO_TRY(bounded_list(j, "transformer_layers_per_block", 0, 32, &v, &have));
    if (have) {
        if (v.size() == 1) v.assign(levels, v[0]);
        if (static_cast<int>(v.size()) != levels)
            return error(SDGO_ERR_FORMAT, "unet config: transformer_layers_per_block");
        cfg->transformer_depth = v;
        cfg->mid_depth = v.back();
    }
    // diffusers: num_attention_heads, else the legacy attention_head_dim,
    // both meaning the number of heads per level.
    const formats::Json * heads = j.get("num_attention_heads");
    if (!heads || heads->kind == formats::Json::null_) heads = j.get("attention_head_dim");
    bool bad_heads = false;
    const bool have_heads = int_list(heads, &v, 1, 256, &bad_heads);
    if (bad_heads) return error(SDGO_ERR_FORMAT, "unet config: attention heads must be integers from 1 to 256");
    if (have_heads) {
        if (v.size() == 1) v.assign(levels, v[0]);
        if (static_cast<int>(v.size()) != levels) return error(SDGO_ERR_FORMAT, "unet config: attention heads");
        cfg->num_heads = v;
        cfg->head_dim = 0;
    }
    SDGO_TRY(j.int_in("cross_attention_dim", 0, 16384, cfg->context_dim, &cfg->context_dim, what));
    cfg->linear_projection = j.bool_or("use_linear_projection", cfg->linear_projection);
    int64_t groups = 0;
    double eps = 0;
    SDGO_TRY(j.int_in("norm_num_groups", 1, 1024, cfg->groups, &groups, what));
    SDGO_TRY(j.num_in("norm_eps", 1e-12, 1.0, cfg->eps, &eps, what));
    cfg->groups = static_cast<int>(groups);
    cfg->eps = static_cast<float>(eps);
    SDGO_TRY(j.int_in("projection_class_embeddings_input_dim", 0, 65536, cfg->adm_in_channels,
                      &cfg->adm_in_channels, what));
    // Variants this graph does not implement are refused rather than run wrong.
    for (const char * key : {"class_embed_type", "num_class_embeds", "time_cond_proj_dim", "encoder_hid_dim",
                             "time_embedding_type", "conv_in_kernel", "conv_out_kernel"}) {
        const formats::Json * v = j.get(key);
        if (!v || v->kind == formats::Json::null_) continue;
        if (std::string(key) == "time_embedding_type" && v->str == "positional") continue;
        if (std::string(key).find("kernel") != std::string::npos && v->kind == formats::Json::number && v->num == 3)
            continue;
        return error(SDGO_ERR_UNSUPPORTED, "unet config: %s is not supported", key);
    }
    if (const formats::Json * v = j.get("addition_embed_type"))
        if (v->kind != formats::Json::null_ && v->str != "text_time")
            return error(SDGO_ERR_UNSUPPORTED, "unet config: addition_embed_type '%s'", v->str.c_str());
    const std::string mid = j.str_or("mid_block_type", "UNetMidBlock2DCrossAttn");
    cfg->mid_attention = mid == "UNetMidBlock2DCrossAttn";
    if (!j.bool_or("flip_sin_to_cos", true) || j.num_or("freq_shift", 0) != 0)
        return error(SDGO_ERR_UNSUPPORTED, "unet config: only flip_sin_to_cos=true, freq_shift=0 are supported");
    cfg->time_embed_dim = cfg->model_channels * 4;
    return Status();
}

static Status check_config(const UNetConfig & c) {
    const int L = c.levels();
    bool ok = L >= 1 && c.in_channels > 0 && c.out_channels > 0 && c.model_channels > 0 && c.num_res_blocks > 0 &&
              static_cast<int>(c.attention.size()) == L && static_cast<int>(c.transformer_depth.size()) == L &&
              c.groups > 0 && c.time_embed_dim > 0 && c.context_dim >= 0 && (c.head_dim > 0 || !c.num_heads.empty());
    if (!ok) return error(SDGO_ERR_INVALID_ARGUMENT, "unet: inconsistent config");
    for (int l = 0; l < L; l++) {
        const int64_t ch = c.model_channels * c.channel_mult[l];
        if (c.channel_mult[l] <= 0 || ch % c.groups != 0)
            return error(SDGO_ERR_INVALID_ARGUMENT, "unet: level %d has %lld channels (groups %d)", l, (long long)ch,
                         c.groups);
        if (c.attention[l] || (l == L - 1 && c.mid_attention)) {
            const int h = c.heads_at(l, ch);
            if (h <= 0 || ch % h != 0)
                return error(SDGO_ERR_INVALID_ARGUMENT, "unet: %lld channels cannot be split into %d heads",
                             (long long)ch, h);
        }
    }
    return Status();
}

Status build_unet(Graph & g, const Weights & w, const std::string & prefix, const UNetConfig & cfg, Tensor * x,
                  Tensor * timesteps, Tensor * context, Tensor * y, Tensor ** out) {
    SDGO_TRY(check_config(cfg));
    if (!x || !timesteps || !context)
        return error(SDGO_ERR_INVALID_ARGUMENT, "unet: x, timesteps and context are required");
    const int L = cfg.levels();
    const int64_t div = int64_t(1) << (L - 1);
    const int64_t B = x->ne[3];
    if (x->ne[2] != cfg.in_channels || x->ne[0] % div != 0 || x->ne[1] % div != 0 || x->ne[0] <= 0 || x->ne[1] <= 0)
        return error(SDGO_ERR_INVALID_ARGUMENT,
                     "unet: input %s must have %lld channels and a size that is a multiple of %lld",
                     x->shape_str().c_str(), (long long)cfg.in_channels, (long long)div);
    if (timesteps->nelements() != B)
        return error(SDGO_ERR_INVALID_ARGUMENT, "unet: %lld timesteps for a batch of %lld",
                     (long long)timesteps->nelements(), (long long)B);
    if (context->ne[0] != cfg.context_dim || context->ne[2] != B || context->ne[3] != 1)
        return error(SDGO_ERR_INVALID_ARGUMENT, "unet: context %s, expected [%lld, L, %lld]",
                     context->shape_str().c_str(), (long long)cfg.context_dim, (long long)B);
    if (cfg.adm_in_channels > 0 && (!y || y->ne[0] != cfg.adm_in_channels || y->ne[1] != B))
        return error(SDGO_ERR_INVALID_ARGUMENT, "unet: this model needs a [%lld, %lld] label vector",
                     (long long)cfg.adm_in_channels, (long long)B);

    const Binder b(g, w, prefix);
    const int64_t mc = cfg.model_channels, E = cfg.time_embed_dim;
    ResParams rp;
    rp.groups = cfg.groups;
    rp.eps = cfg.eps;
    rp.names = ResNames::unet;
    auto st_params = [&](int level, int64_t ch, int depth) {
        TransformerParams tp;
        tp.channels = ch;
        tp.heads = cfg.heads_at(level, ch);
        tp.depth = depth;
        tp.context_dim = cfg.context_dim;
        tp.groups = cfg.groups;
        tp.linear_proj = cfg.linear_projection;
        return tp;
    };

    // Time (and label) embedding.
    Tensor * emb = g.timestep_embedding(timesteps, static_cast<int>(mc), 10000.0f, true, 0.0f);  // [mc, B]
    emb = linear(b, "time_embed.0", emb, mc, E);
    emb = linear(b, "time_embed.2", g.silu(emb), E, E);
    if (cfg.adm_in_channels > 0) {
        Tensor * l = linear(b, "label_emb.0.0", y, cfg.adm_in_channels, E);
        l = linear(b, "label_emb.0.2", g.silu(l), E, E);
        emb = g.add(emb, l);
    }

    struct Skip {
        Tensor * t;
        int64_t ch;
    };
    std::vector<Skip> skips;
    Tensor * h = conv2d(b, "input_blocks.0.0", x, cfg.in_channels, mc, 3, 1, 1);
    int64_t ch = mc;
    skips.push_back({h, ch});
    int n = 1;
    for (int l = 0; l < L; l++) {
        const int64_t och = mc * cfg.channel_mult[l];
        for (int r = 0; r < cfg.num_res_blocks; r++, n++) {
            const Binder ib = b.sub("input_blocks." + S(n) + ".");
            h = resblock(ib.sub("0."), h, emb, E, ch, och, rp);
            ch = och;
            if (cfg.attention[l]) h = spatial_transformer(ib.sub("1."), h, context, st_params(l, ch, cfg.transformer_depth[l]));
            skips.push_back({h, ch});
        }
        if (l != L - 1) {
            h = downsample(b, "input_blocks." + S(n) + ".0.op", h, ch);
            skips.push_back({h, ch});
            n++;
        }
    }

    h = resblock(b.sub("middle_block.0."), h, emb, E, ch, ch, rp);
    if (cfg.mid_attention) h = spatial_transformer(b.sub("middle_block.1."), h, context, st_params(L - 1, ch, cfg.mid_depth));
    h = resblock(b.sub("middle_block.2."), h, emb, E, ch, ch, rp);

    n = 0;
    for (int l = L - 1; l >= 0; l--) {
        const int64_t och = mc * cfg.channel_mult[l];
        for (int r = 0; r <= cfg.num_res_blocks; r++, n++) {
            const Binder ob = b.sub("output_blocks." + S(n) + ".");
            const Skip s = skips.back();
            skips.pop_back();
            h = g.concat(h, s.t, 2);  // current features first, skip second
            h = resblock(ob.sub("0."), h, emb, E, ch + s.ch, och, rp);
            ch = och;
            int sub = 1;
            if (cfg.attention[l]) {
                h = spatial_transformer(ob.sub("1."), h, context, st_params(l, ch, cfg.transformer_depth[l]));
                sub = 2;
            }
            if (l > 0 && r == cfg.num_res_blocks) h = upsample(ob, S(sub) + ".conv", h, ch);
        }
    }

    h = group_norm_silu(b, "out.0", h, cfg.groups, cfg.eps);
    h = conv2d(b, "out.2", h, mc, cfg.out_channels, 3, 1, 1);
    SDGO_TRY(Status(b.status()).wrap("unet"));
    SDGO_TRY(g.status());
    *out = h;
    return Status();
}

Status build_sdxl_label(Graph & g, Tensor * pooled, Tensor * values, int embed_dim, Tensor ** y) {
    if (!pooled || !values || embed_dim <= 0 || pooled->ne[2] != 1 || pooled->ne[3] != 1 || values->ne[2] != 1 ||
        values->ne[3] != 1 || pooled->ne[1] != values->ne[1] || !values->is_contiguous())
        return error(SDGO_ERR_INVALID_ARGUMENT, "sdxl label: pooled [P, B] and contiguous values [k, B] expected");
    const int64_t k = values->ne[0], B = values->ne[1];
    Tensor * e = g.timestep_embedding(g.reshape(values, {k * B}), embed_dim, 10000.0f, true, 0.0f);  // [dim, k*B]
    e = g.reshape(e, {embed_dim * k, B});
    *y = g.concat(pooled, e, 0);
    return g.status();
}

}  // namespace sdgo::model
