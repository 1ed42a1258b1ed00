#include "model/clip.h"

#include "model/blocks.h"

namespace sdgo::model {

static std::string projection_name(const std::string & prefix, ClipNaming naming) {
    if (naming == ClipNaming::openclip) return prefix + "text_projection";
    const std::string tm = "text_model.";
    if (prefix.size() >= tm.size() && prefix.compare(prefix.size() - tm.size(), tm.size(), tm) == 0)
        return prefix.substr(0, prefix.size() - tm.size()) + "text_projection.weight";
    return prefix + "text_projection.weight";
}

void clip_pooled_rows(const int32_t * ids, int64_t T, int64_t n, int32_t eos_id, int32_t * rows) {
    for (int64_t i = 0; i < n; i++) {
        const int32_t * w = ids + i * T;
        int64_t pos = -1, amax = 0;
        for (int64_t j = 0; j < T; j++) {
            if (pos < 0 && w[j] == eos_id) pos = j;
            if (w[j] > w[amax]) amax = j;
        }
        rows[i] = static_cast<int32_t>(i * T + (pos >= 0 ? pos : amax));
    }
}

Status clip_config_from_weights(const formats::ModelFiles & w, const std::string & prefix, ClipConfig * cfg) {
    const formats::TensorEntry * tok = w.find(prefix + "embeddings.token_embedding.weight");
    const formats::TensorEntry * pos = nullptr;
    if (tok) {
        cfg->naming = ClipNaming::hf;
        pos = w.find(prefix + "embeddings.position_embedding.weight");
    } else if ((tok = w.find(prefix + "token_embedding.weight"))) {
        cfg->naming = ClipNaming::openclip;
        pos = w.find(prefix + "positional_embedding");
    } else {
        return error(SDGO_ERR_FORMAT, "text encoder: no token embedding under '%s'", prefix.c_str());
    }
    if (!pos) return error(SDGO_ERR_FORMAT, "text encoder: no position embedding under '%s'", prefix.c_str());
    cfg->hidden = tok->ne[0];
    cfg->vocab = tok->ne[1];
    cfg->max_positions = pos->ne[1];
    if (pos->ne[0] != cfg->hidden || cfg->hidden <= 0 || cfg->vocab <= 0 || cfg->max_positions <= 0)
        return error(SDGO_ERR_FORMAT, "text encoder: token embedding %s and position embedding %s disagree",
                     tok->shape_str().c_str(), pos->shape_str().c_str());
    const bool hf = cfg->naming == ClipNaming::hf;
    auto layer = [&](int i) {
        return prefix + (hf ? "encoder.layers." : "transformer.resblocks.") + std::to_string(i) + ".";
    };
    int n = 0;
    while (n < 1000 && w.has(layer(n) + (hf ? "layer_norm1.weight" : "ln_1.weight"))) n++;
    if (n == 0) return error(SDGO_ERR_FORMAT, "text encoder: no layers under '%s'", prefix.c_str());
    cfg->layers = n;
    const formats::TensorEntry * fc1 = w.find(layer(0) + (hf ? "mlp.fc1.weight" : "mlp.c_fc.weight"));
    if (!fc1) return error(SDGO_ERR_FORMAT, "text encoder: missing %s", (layer(0) + "mlp").c_str());
    cfg->intermediate = fc1->ne[1];
    cfg->fused_qkv = hf && w.has(layer(0) + "self_attn.in_proj.weight");
    cfg->heads = cfg->hidden % 64 == 0 ? static_cast<int>(cfg->hidden / 64) : 1;
    cfg->act = (hf && cfg->hidden == 768) ? ClipAct::quick_gelu : ClipAct::gelu;
    cfg->projection_dim = 0;
    if (const formats::TensorEntry * p = w.find(projection_name(prefix, cfg->naming))) {
        // OpenCLIP [hidden, proj] -> ne {proj, hidden}; HF [proj, hidden] -> ne {hidden, proj}.
        const bool oc = cfg->naming == ClipNaming::openclip;
        if ((oc ? p->ne[1] : p->ne[0]) != cfg->hidden || p->ne[2] != 1 || p->ne[3] != 1)
            return error(SDGO_ERR_FORMAT, "text encoder: text projection %s does not match width %lld",
                         p->shape_str().c_str(), (long long)cfg->hidden);
        cfg->projection_dim = oc ? p->ne[0] : p->ne[1];
    }
    return Status();
}

Status clip_config_apply_json(const formats::Json & j, ClipConfig * cfg) {
    if (j.kind != formats::Json::object) return error(SDGO_ERR_FORMAT, "text encoder config: not a JSON object");
    // Bounds well past every real text encoder (CLIP-L: 12 layers of 768,
    // OpenCLIP-bigG: 32 of 1280), so that a hostile config cannot multiply
    // work or memory.
    const char * what = "text encoder config";
    int64_t layers = 0, heads = 0;
    double eps = 0;
    SDGO_TRY(j.int_in("hidden_size", 1, 16384, cfg->hidden, &cfg->hidden, what));
    SDGO_TRY(j.int_in("num_hidden_layers", 1, 64, cfg->layers, &layers, what));
    SDGO_TRY(j.int_in("num_attention_heads", 1, 256, cfg->heads, &heads, what));
    SDGO_TRY(j.int_in("intermediate_size", 1, 65536, cfg->intermediate, &cfg->intermediate, what));
    SDGO_TRY(j.int_in("vocab_size", 1, 1 << 20, cfg->vocab, &cfg->vocab, what));
    SDGO_TRY(j.int_in("max_position_embeddings", 1, 4096, cfg->max_positions, &cfg->max_positions, what));
    SDGO_TRY(j.num_in("layer_norm_eps", 1e-12, 1.0, cfg->eps, &eps, what));
    cfg->layers = static_cast<int>(layers);
    cfg->heads = static_cast<int>(heads);
    cfg->eps = static_cast<float>(eps);
    const std::string act = j.str_or("hidden_act", "");
    if (act == "quick_gelu")
        cfg->act = ClipAct::quick_gelu;
    else if (act == "gelu")
        cfg->act = ClipAct::gelu;
    else if (!act.empty())
        return error(SDGO_ERR_UNSUPPORTED, "text encoder config: hidden_act '%s'", act.c_str());
    return Status();
}

static Status check_config(const ClipConfig & c) {
    if (c.hidden <= 0 || c.layers <= 0 || c.heads <= 0 || c.hidden % c.heads != 0 || c.intermediate <= 0 ||
        c.vocab <= 0 || c.max_positions <= 0)
        return error(SDGO_ERR_INVALID_ARGUMENT,
                     "text encoder config: hidden %lld, layers %d, heads %d, intermediate %lld, vocab %lld, "
                     "positions %lld",
                     (long long)c.hidden, c.layers, c.heads, (long long)c.intermediate, (long long)c.vocab,
                     (long long)c.max_positions);
    return Status();
}

Status build_clip_text(Graph & g, const Weights & w, const std::string & prefix, const ClipConfig & cfg,
                       const ClipOptions & opt, Tensor * ids, Tensor ** out) {
    return build_clip_text_pooled(g, w, prefix, cfg, opt, ids, nullptr, out, nullptr);
}

Status build_clip_text_pooled(Graph & g, const Weights & w, const std::string & prefix, const ClipConfig & cfg,
                              const ClipOptions & opt, Tensor * ids, Tensor * rows, Tensor ** out,
                              Tensor ** pooled) {
    SDGO_TRY(check_config(cfg));
    if (!ids || ids->type != DType::i32 || ids->ne[2] != 1 || ids->ne[3] != 1)
        return error(SDGO_ERR_INVALID_ARGUMENT, "text encoder: ids must be i32 [tokens, windows]");
    const int64_t T = ids->ne[0], W = cfg.hidden;
    if (T < 1 || T > cfg.max_positions)
        return error(SDGO_ERR_INVALID_ARGUMENT, "text encoder: %lld tokens per window (1..%lld)", (long long)T,
                     (long long)cfg.max_positions);
    if (opt.clip_skip > cfg.layers)
        return error(SDGO_ERR_INVALID_ARGUMENT, "text encoder: clip skip %d with %d layers", opt.clip_skip,
                     cfg.layers);
    const bool want_pooled = pooled != nullptr;
    if (want_pooled && (!rows || rows->type != DType::i32 || rows->nelements() != ids->ne[1]))
        return error(SDGO_ERR_INVALID_ARGUMENT, "text encoder: pooled output needs i32 rows, one per window");
    const int sel_layers = cfg.layers - (opt.clip_skip > 1 ? opt.clip_skip - 1 : 0);
    const int run_layers = want_pooled ? cfg.layers : sel_layers;
    Tensor * selected = nullptr;
    const bool hf = cfg.naming == ClipNaming::hf;
    const Binder b(g, w, prefix);

    Tensor * tok = b.matrix(hf ? "embeddings.token_embedding.weight" : "token_embedding.weight", W, cfg.vocab);
    Tensor * pos = b.dense(hf ? "embeddings.position_embedding.weight" : "positional_embedding", W,
                           cfg.max_positions, T);  // positions 0..T-1
    Tensor * x = g.add(g.get_rows(tok, ids), pos);  // [W, T, n]

    for (int l = 0; l < run_layers; l++) {
        const std::string ln = std::to_string(l);
        const Binder lb = b.sub(hf ? "encoder.layers." + ln + "." : "transformer.resblocks." + ln + ".");
        Tensor * h = layer_norm(lb, hf ? "layer_norm1" : "ln_1", x, cfg.eps);
        Tensor *q, *k, *v;
        if (!hf || cfg.fused_qkv) {
            const std::string wn = hf ? "self_attn.in_proj.weight" : "attn.in_proj_weight";
            const std::string bn = hf ? "self_attn.in_proj.bias" : "attn.in_proj_bias";
            q = g.mul_mat(lb.matrix_rows(wn, W, 3 * W, 0, W), h, lb.vec(bn, W, 3 * W, 0));
            k = g.mul_mat(lb.matrix_rows(wn, W, 3 * W, W, W), h, lb.vec(bn, W, 3 * W, W));
            v = g.mul_mat(lb.matrix_rows(wn, W, 3 * W, 2 * W, W), h, lb.vec(bn, W, 3 * W, 2 * W));
        } else {
            q = linear(lb, "self_attn.q_proj", h, W, W);
            k = linear(lb, "self_attn.k_proj", h, W, W);
            v = linear(lb, "self_attn.v_proj", h, W, W);
        }
        Tensor * a = multi_head_attention(g, q, k, v, cfg.heads, true);
        a = linear(lb, hf ? "self_attn.out_proj" : "attn.out_proj", a, W, W);
        x = g.add(x, a);
        h = layer_norm(lb, hf ? "layer_norm2" : "ln_2", x, cfg.eps);
        h = linear(lb, hf ? "mlp.fc1" : "mlp.c_fc", h, W, cfg.intermediate);
        h = cfg.act == ClipAct::quick_gelu ? g.quick_gelu(h) : g.gelu(h);
        h = linear(lb, hf ? "mlp.fc2" : "mlp.c_proj", h, cfg.intermediate, W);
        x = g.add(x, h);
        if (l + 1 == sel_layers) selected = x;
    }
    const char * final_ln = hf ? "final_layer_norm" : "ln_final";
    if (opt.final_norm) selected = layer_norm(b, final_ln, selected, cfg.eps);
    if (want_pooled) {
        Tensor * last = layer_norm(b, final_ln, x, cfg.eps);                      // [W, T, n]
        Tensor * p = g.get_rows(g.reshape(last, {W, T * ids->ne[1]}), rows);      // [W, n]
        if (cfg.projection_dim > 0) {
            const int64_t P = cfg.projection_dim;
            const Binder rb = b.with_prefix("");
            const std::string pn = projection_name(prefix, cfg.naming);
            if (cfg.naming == ClipNaming::openclip) {
                // Stored [W, P] (ne {P, W}), applied as x @ P: transpose to [K = W, N = P].
                Tensor * pt = rb.dense(pn, P, W);
                p = g.mul_mat(g.cont(g.transpose(pt)), p);
            } else {
                p = g.mul_mat(rb.matrix(pn, W, P), p);
            }
        }
        *pooled = p;
    }
    SDGO_TRY(Status(b.status()).wrap("text encoder"));
    SDGO_TRY(g.status());
    *out = selected;
    return Status();
}

}  // namespace sdgo::model
