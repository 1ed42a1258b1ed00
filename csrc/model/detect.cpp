#include "model/detect.h"

#include "formats/json.h"

namespace sdgo::model {

using formats::Json;
using formats::ModelFiles;
using formats::TensorEntry;

namespace {

const TensorEntry * get(const ModelFiles & f, const std::string & n) { return f.find(n); }

int count_indexed(const ModelFiles & f, const std::string & before, const std::string & after, int limit = 1000) {
    int k = 0;
    while (k < limit && get(f, before + std::to_string(k) + after)) k++;
    return k;
}

std::vector<int> int_list(const Json * v) {
    std::vector<int> out;
    if (!v) return out;
    int64_t x;
    if (v->as_int64(&x)) out.push_back((int)x);
    else if (v->kind == Json::array)
        for (const auto & e : v->items)
            if (e.as_int64(&x)) out.push_back((int)x);
    return out;
}

void unet_from_shapes(const ModelFiles & f, UNetParams * u) {
    const std::string P = kUNetPrefix;
    const TensorEntry * cin = get(f, P + "input_blocks.0.0.weight");
    if (!cin || cin->n_dims != 4) return;
    u->present = true;
    u->in_channels = (int)cin->ne[2];
    u->model_channels = (int)cin->ne[3];
    if (const TensorEntry * o = get(f, P + "out.2.weight")) u->out_channels = (int)o->ne[3];
    // Walk input blocks: resblocks until a downsampler closes a level.
    int level_res = 0;
    bool first_level = true;
    for (int n = 1; n < 256; n++) {
        std::string b = P + "input_blocks." + std::to_string(n) + ".";
        if (get(f, b + "0.op.weight")) {
            if (first_level) u->num_res_blocks = level_res;
            first_level = false;
            level_res = 0;
            continue;
        }
        const TensorEntry * rc = get(f, b + "0.in_layers.2.weight");
        if (!rc) break;
        if (level_res == 0) {
            int mult = u->model_channels ? (int)(rc->ne[3] / u->model_channels) : 0;
            u->channel_mult.push_back(mult);
            u->transformer_depth.push_back(count_indexed(f, b + "1.transformer_blocks.", ".attn1.to_q.weight"));
        }
        level_res++;
    }
    if (first_level) u->num_res_blocks = level_res;
    u->transformer_depth_middle = count_indexed(f, P + "middle_block.1.transformer_blocks.", ".attn1.to_q.weight");
    for (const auto & t : f.tensors) {
        if (t.name.compare(0, P.size(), P) != 0) continue;
        if (!u->context_dim && t.name.find(".attn2.to_k.weight") != std::string::npos) u->context_dim = (int)t.ne[0];
        if (t.name.size() > 15 && t.name.compare(t.name.size() - 15, 15, ".proj_in.weight") == 0)
            u->use_linear_projection = t.n_dims == 2;
    }
    if (const TensorEntry * l = get(f, P + "label_emb.0.0.weight")) u->adm_in_channels = (int)l->ne[0];
}

void unet_from_config(const Json & c, UNetParams * u) {
    u->from_config = true;
    u->in_channels = (int)c.int_or("in_channels", u->in_channels);
    u->out_channels = (int)c.int_or("out_channels", u->out_channels);
    std::vector<int> boc = int_list(c.get("block_out_channels"));
    if (!boc.empty()) {
        u->model_channels = boc[0];
        u->channel_mult.clear();
        for (int b : boc) u->channel_mult.push_back(boc[0] ? b / boc[0] : 0);
    }
    u->num_res_blocks = (int)c.int_or("layers_per_block", u->num_res_blocks);
    u->context_dim = (int)c.int_or("cross_attention_dim", u->context_dim);
    u->use_linear_projection = c.bool_or("use_linear_projection", u->use_linear_projection);
    u->adm_in_channels = (int)c.int_or("projection_class_embeddings_input_dim", u->adm_in_channels);
    // diffusers' attention_head_dim is, for these models, the number of heads.
    std::vector<int> heads = int_list(c.get("num_attention_heads"));
    if (heads.empty()) heads = int_list(c.get("attention_head_dim"));
    if (heads.size() == 1 && !u->channel_mult.empty()) heads.assign(u->channel_mult.size(), heads[0]);
    if (!heads.empty()) u->num_heads = heads;
}

void vae_from_shapes(const ModelFiles & f, VAEParams * v) {
    const std::string P = kVAEPrefix;
    const TensorEntry * cin = get(f, P + "encoder.conv_in.weight");
    const TensorEntry * dout = get(f, P + "decoder.conv_out.weight");
    if (!cin && !dout) return;
    v->present = true;
    if (cin && cin->n_dims == 4) {
        v->in_channels = (int)cin->ne[2];
        v->ch = (int)cin->ne[3];
    }
    if (dout && dout->n_dims == 4) v->out_channels = (int)dout->ne[3];
    if (const TensorEntry * pq = get(f, P + "post_quant_conv.weight")) v->z_channels = (int)pq->ne[3];
    else if (const TensorEntry * dc = get(f, P + "decoder.conv_in.weight")) v->z_channels = (int)dc->ne[2];
    for (int i = 0; i < 16; i++) {
        const TensorEntry * c = get(f, P + "encoder.down." + std::to_string(i) + ".block.0.conv1.weight");
        if (!c) break;
        v->ch_mult.push_back(v->ch ? (int)(c->ne[3] / v->ch) : 0);
    }
    v->num_res_blocks = count_indexed(f, P + "encoder.down.0.block.", ".conv1.weight");
}

void vae_from_config(const Json & c, VAEParams * v) {
    v->from_config = true;
    v->in_channels = (int)c.int_or("in_channels", v->in_channels);
    v->out_channels = (int)c.int_or("out_channels", v->out_channels);
    v->z_channels = (int)c.int_or("latent_channels", v->z_channels);
    v->num_res_blocks = (int)c.int_or("layers_per_block", v->num_res_blocks);
    std::vector<int> boc = int_list(c.get("block_out_channels"));
    if (!boc.empty()) {
        v->ch = boc[0];
        v->ch_mult.clear();
        for (int b : boc) v->ch_mult.push_back(boc[0] ? b / boc[0] : 0);
    }
    v->scaling_factor = c.num_or("scaling_factor", v->scaling_factor);
}

void te_from_shapes(const ModelFiles & f, const std::string & P, TextEncoderParams * t) {
    const TensorEntry * tok = get(f, P + "text_model.embeddings.token_embedding.weight");
    if (!tok) return;
    t->present = true;
    t->hidden_size = (int)tok->ne[0];
    t->vocab_size = (int)tok->ne[1];
    if (const TensorEntry * pe = get(f, P + "text_model.embeddings.position_embedding.weight")) t->max_positions = (int)pe->ne[1];
    t->num_layers = count_indexed(f, P + "text_model.encoder.layers.", ".mlp.fc1.weight");
    if (const TensorEntry * fc = get(f, P + "text_model.encoder.layers.0.mlp.fc1.weight")) t->intermediate_size = (int)fc->ne[1];
    if (const TensorEntry * pr = get(f, P + "text_projection.weight")) t->projection_dim = (int)pr->ne[1];
}

void te_from_config(const Json & c, TextEncoderParams * t) {
    t->from_config = true;
    t->hidden_size = (int)c.int_or("hidden_size", t->hidden_size);
    t->num_layers = (int)c.int_or("num_hidden_layers", t->num_layers);
    t->intermediate_size = (int)c.int_or("intermediate_size", t->intermediate_size);
    t->num_heads = (int)c.int_or("num_attention_heads", t->num_heads);
    t->vocab_size = (int)c.int_or("vocab_size", t->vocab_size);
    t->max_positions = (int)c.int_or("max_position_embeddings", t->max_positions);
    t->hidden_act = c.str_or("hidden_act", t->hidden_act);
}

std::string str_list(const std::vector<int> & v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); i++) s += (i ? "," : "") + std::to_string(v[i]);
    return s + "]";
}

}  // namespace

Status detect(const LoadedModel & m, ModelInfo * out) {
    ModelInfo info;
    const ModelFiles & f = m.files;
    unet_from_shapes(f, &info.unet);
    vae_from_shapes(f, &info.vae);
    te_from_shapes(f, kTextEncoderPrefix, &info.text_encoder);
    te_from_shapes(f, kTextEncoder2Prefix, &info.text_encoder_2);
    if (const DiffusersComponent * c = m.component("unet"); c && c->config.kind == Json::object) unet_from_config(c->config, &info.unet);
    if (const DiffusersComponent * c = m.component("vae"); c && c->config.kind == Json::object) vae_from_config(c->config, &info.vae);
    if (const DiffusersComponent * c = m.component("text_encoder"); c && c->config.kind == Json::object) te_from_config(c->config, &info.text_encoder);
    if (const DiffusersComponent * c = m.component("text_encoder_2"); c && c->config.kind == Json::object) te_from_config(c->config, &info.text_encoder_2);

    const UNetParams & u = info.unet;
    if (u.present) {
        bool deep_attn = !u.transformer_depth.empty() && u.transformer_depth.back() > 0;
        if (u.adm_in_channels > 0) info.family = deep_attn ? "sdxl" : "sdxl-refiner";
        else info.family = u.use_linear_projection ? "sd2" : "sd1";
        if (u.in_channels == 9) info.variant = "inpaint";
        else if (u.in_channels == 8) info.variant = "instruct-pix2pix";
        else if (u.transformer_depth_middle == 0) info.variant = "distilled";
        else info.variant = "base";
    } else if (info.vae.present && !info.text_encoder.present && !info.text_encoder_2.present) {
        info.family = "vae";
        info.variant = "base";
    } else if (info.text_encoder.present || info.text_encoder_2.present) {
        info.family = "text-encoder";
        info.variant = "base";
    } else if (info.vae.present) {
        info.family = "unknown";
        info.variant = "base";
    } else {
        return error(SDGO_ERR_FORMAT, "no Stable Diffusion component (UNet, VAE or text encoder) found among %zu tensors",
                     f.tensors.size());
    }
    // Family defaults for what shapes cannot tell.
    const std::string & fam = info.family;
    if (!info.unet.num_heads.size() && info.unet.present) {
        if (fam == "sd1") info.unet.num_heads.assign(info.unet.channel_mult.size(), 8);
        else info.unet.head_dim = 64;
    }
    if (info.vae.present && info.vae.scaling_factor == 0)
        info.vae.scaling_factor = (fam == "sdxl" || fam == "sdxl-refiner") ? 0.13025 : 0.18215;
    auto te_defaults = [&](TextEncoderParams * t, bool second) {
        if (!t->present) return;
        if (t->hidden_act.empty()) t->hidden_act = (second || fam == "sd2") ? "gelu" : "quick_gelu";
        if (!t->num_heads) t->num_heads = t->hidden_size >= 64 ? t->hidden_size / 64 : 1;
    };
    te_defaults(&info.text_encoder, false);
    te_defaults(&info.text_encoder_2, true);

    // Prediction type.
    std::string pred;
    if (m.scheduler_config.kind == Json::object) {
        std::string p = m.scheduler_config.str_or("prediction_type", "");
        if (p == "epsilon") pred = "epsilon";
        else if (p == "v_prediction") pred = "v";
    }
    if (pred.empty()) {
        if (f.find("edm_vpred.sigma_max")) pred = "edm-v";
        else if (f.find("edm_mean") && f.find("edm_std")) pred = "edm";
        else if (f.find("v_pred")) pred = "v";
        else if (fam == "sd2") {
            const std::string * gs = f.meta("global_step");
            pred = (gs && *gs == "875000") ? "epsilon" : "unknown";
        } else if (fam == "sd1" || fam == "sdxl" || fam == "sdxl-refiner") pred = "epsilon";
        else pred = "unknown";
    }
    info.prediction = pred;

    // Components, statistics, type histogram.
    if (info.unet.present) info.components.push_back("unet");
    if (info.vae.present) info.components.push_back("vae");
    if (info.text_encoder.present) info.components.push_back("text_encoder");
    if (info.text_encoder_2.present) info.components.push_back("text_encoder_2");
    for (const auto & t : f.tensors) {
        ComponentStats & cs = info.stats[component_name(component_of(t.name))];
        cs.tensors++;
        cs.params += (uint64_t)t.nelements();
        cs.bytes += t.nbytes;
        ComponentStats & ts = info.types[t.type_name()];
        ts.tensors++;
        ts.params += (uint64_t)t.nelements();
        ts.bytes += t.nbytes;
    }
    info.file_bytes = f.total_file_bytes();
    *out = std::move(info);
    return Status();
}

std::string model_info_json(const LoadedModel & m, const ModelInfo & info) {
    using formats::json_quote;
    std::string o = "{";
    o += "\"family\":" + json_quote(info.family);
    o += ",\"variant\":" + json_quote(info.variant);
    o += ",\"prediction\":" + json_quote(info.prediction);
    o += ",\"source\":" + json_quote(m.source);
    o += ",\"paths\":[";
    for (size_t i = 0; i < m.paths.size(); i++) o += (i ? "," : "") + json_quote(m.paths[i]);
    o += "],\"file_bytes\":" + std::to_string(info.file_bytes);
    o += ",\"components\":[";
    for (size_t i = 0; i < info.components.size(); i++) o += (i ? "," : "") + json_quote(info.components[i]);
    o += "],\"tensor_count\":" + std::to_string(m.files.tensors.size());
    o += ",\"parameters\":{";
    bool first = true;
    for (const auto & kv : info.stats) {
        o += (first ? "" : ",") + json_quote(kv.first) + ":{\"tensors\":" + std::to_string(kv.second.tensors) +
             ",\"params\":" + std::to_string(kv.second.params) + ",\"bytes\":" + std::to_string(kv.second.bytes) + "}";
        first = false;
    }
    o += "},\"types\":{";
    first = true;
    for (const auto & kv : info.types) {
        o += (first ? "" : ",") + json_quote(kv.first) + ":{\"tensors\":" + std::to_string(kv.second.tensors) +
             ",\"params\":" + std::to_string(kv.second.params) + ",\"bytes\":" + std::to_string(kv.second.bytes) + "}";
        first = false;
    }
    o += "}";
    if (info.unet.present) {
        const UNetParams & u = info.unet;
        o += ",\"unet\":{\"in_channels\":" + std::to_string(u.in_channels) + ",\"out_channels\":" + std::to_string(u.out_channels) +
             ",\"model_channels\":" + std::to_string(u.model_channels) + ",\"channel_mult\":" + str_list(u.channel_mult) +
             ",\"num_res_blocks\":" + std::to_string(u.num_res_blocks) + ",\"transformer_depth\":" + str_list(u.transformer_depth) +
             ",\"transformer_depth_middle\":" + std::to_string(u.transformer_depth_middle) +
             ",\"context_dim\":" + std::to_string(u.context_dim) +
             ",\"use_linear_projection\":" + (u.use_linear_projection ? "true" : "false") +
             ",\"adm_in_channels\":" + std::to_string(u.adm_in_channels) + ",\"num_heads\":" + str_list(u.num_heads) +
             ",\"head_dim\":" + std::to_string(u.head_dim) + ",\"from_config\":" + (u.from_config ? "true" : "false") + "}";
    }
    if (info.vae.present) {
        const VAEParams & v = info.vae;
        o += ",\"vae\":{\"ch\":" + std::to_string(v.ch) + ",\"ch_mult\":" + str_list(v.ch_mult) +
             ",\"num_res_blocks\":" + std::to_string(v.num_res_blocks) + ",\"z_channels\":" + std::to_string(v.z_channels) +
             ",\"in_channels\":" + std::to_string(v.in_channels) + ",\"out_channels\":" + std::to_string(v.out_channels) +
             ",\"scaling_factor\":" + strprintf("%.6g", v.scaling_factor) + ",\"from_config\":" + (v.from_config ? "true" : "false") + "}";
    }
    auto te = [&](const char * key, const TextEncoderParams & t) {
        if (!t.present) return;
        o += std::string(",\"") + key + "\":{\"hidden_size\":" + std::to_string(t.hidden_size) +
             ",\"num_layers\":" + std::to_string(t.num_layers) + ",\"intermediate_size\":" + std::to_string(t.intermediate_size) +
             ",\"num_heads\":" + std::to_string(t.num_heads) + ",\"vocab_size\":" + std::to_string(t.vocab_size) +
             ",\"max_positions\":" + std::to_string(t.max_positions) + ",\"projection_dim\":" + std::to_string(t.projection_dim) +
             ",\"hidden_act\":" + json_quote(t.hidden_act) + ",\"from_config\":" + (t.from_config ? "true" : "false") + "}";
    };
    te("text_encoder", info.text_encoder);
    te("text_encoder_2", info.text_encoder_2);
    if (!m.tokenizer.dir.empty())
        o += ",\"tokenizer\":{\"vocab\":" + json_quote(m.tokenizer.vocab_json) + ",\"merges\":" + json_quote(m.tokenizer.merges_txt) +
             ",\"tokenizer_json\":" + json_quote(m.tokenizer.tokenizer_json) + "}";
    o += ",\"metadata\":{";
    for (size_t i = 0; i < m.files.metadata.size(); i++)
        o += (i ? "," : "") + json_quote(m.files.metadata[i].first) + ":" + json_quote(m.files.metadata[i].second);
    o += "}}";
    return o;
}

}  // namespace sdgo::model
