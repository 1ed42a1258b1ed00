#include "model/detect.h"

#include "formats/json.h"
#include "model/naming.h"

namespace sdgo::model {

using formats::Json;
using formats::ModelFiles;
using formats::TensorEntry;

namespace {

const TensorEntry * get(const ModelFiles & f, const std::string & n) { return f.find(n); }

std::string str_list(const std::vector<int> & v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); i++) s += (i ? "," : "") + std::to_string(v[i]);
    return s + "]";
}

}  // namespace

std::string text_encoder_prefix(int which) {
    return std::string(which == 2 ? kTextEncoder2Prefix : kTextEncoderPrefix) + "text_model.";
}

Status infer_unet(const LoadedModel & m, Part<UNetConfig> * out) {
    *out = Part<UNetConfig>();
    const TensorEntry * cin = get(m.files, std::string(kUNetPrefix) + "input_blocks.0.0.weight");
    if (!cin || cin->n_dims != 4) return Status();
    out->present = true;
    UNetConfig & c = out->cfg;
    SDGO_TRY(unet_config_from_weights(m.files, kUNetPrefix, &c));
    const DiffusersComponent * dc = m.component("unet");
    if (!dc || dc->config.kind != Json::object) return Status();
    const UNetConfig shapes = c;
    SDGO_TRY(unet_config_apply_json(dc->config, &c).wrap("unet config.json"));
    out->from_config = true;
    // The config may not ask for more structure than the weights hold.
    if (c.levels() != shapes.levels() || c.num_res_blocks != shapes.num_res_blocks)
        return error(SDGO_ERR_FORMAT,
                     "unet config.json: %d levels of %d res blocks, but the weights have %d levels of %d",
                     c.levels(), c.num_res_blocks, shapes.levels(), shapes.num_res_blocks);
    for (int l = 0; l < c.levels(); l++) {
        const int want = c.attention[size_t(l)] ? c.transformer_depth[size_t(l)] : 0;
        const int have = shapes.attention[size_t(l)] ? shapes.transformer_depth[size_t(l)] : 0;
        if (want != have)
            return error(SDGO_ERR_FORMAT,
                         "unet config.json: level %d has %d transformer layers, but the weights have %d", l, want,
                         have);
    }
    if (c.mid_attention && c.mid_depth != shapes.mid_depth)
        return error(SDGO_ERR_FORMAT, "unet config.json: %d mid-block transformer layers, but the weights have %d",
                     c.mid_depth, shapes.mid_depth);
    if (c.in_channels != shapes.in_channels || c.out_channels != shapes.out_channels ||
        c.model_channels != shapes.model_channels || c.channel_mult != shapes.channel_mult)
        return error(SDGO_ERR_FORMAT, "unet config.json: its channels disagree with the weights");
    return Status();
}

Status infer_vae(const LoadedModel & m, const std::string & family, Part<VaeConfig> * out) {
    *out = Part<VaeConfig>();
    const std::string P = kVAEPrefix;
    if (!get(m.files, P + "encoder.conv_in.weight") && !get(m.files, P + "decoder.conv_out.weight")) return Status();
    out->present = true;
    VaeConfig & c = out->cfg;
    SDGO_TRY(vae_config_from_weights(m.files, P, &c));
    c.scaling_factor = (family == "sdxl" || family == "sdxl-refiner") ? 0.13025f : 0.18215f;
    const DiffusersComponent * dc = m.component("vae");
    if (!dc || dc->config.kind != Json::object) return Status();
    const VaeConfig shapes = c;
    SDGO_TRY(vae_config_apply_json(dc->config, &c).wrap("vae config.json"));
    out->from_config = true;
    if (c.levels() != shapes.levels() || c.num_res_blocks != shapes.num_res_blocks || c.ch != shapes.ch ||
        c.ch_mult != shapes.ch_mult || c.z_channels != shapes.z_channels || c.in_channels != shapes.in_channels)
        return error(SDGO_ERR_FORMAT, "vae config.json: its levels, blocks or channels disagree with the weights");
    return Status();
}

Status infer_text_encoder(const LoadedModel & m, int which, const std::string & family, Part<ClipConfig> * out) {
    *out = Part<ClipConfig>();
    const std::string P = text_encoder_prefix(which);
    if (!get(m.files, P + "embeddings.token_embedding.weight") && !get(m.files, P + "token_embedding.weight"))
        return Status();
    out->present = true;
    ClipConfig & c = out->cfg;
    SDGO_TRY(clip_config_from_weights(m.files, P, &c));
    // CLIP ViT-L (SD 1.x, SDXL's first encoder) uses quick_gelu; OpenCLIP
    // (SD 2.x, SDXL's bigG) gelu. Unknown families keep the shape rule.
    if (which == 2 || family == "sd2") c.act = ClipAct::gelu;
    else if (family == "sd1" || family == "sdxl" || family == "text-encoder") c.act = ClipAct::quick_gelu;
    const DiffusersComponent * dc = m.component(which == 2 ? "text_encoder_2" : "text_encoder");
    if (!dc || dc->config.kind != Json::object) return Status();
    const ClipConfig shapes = c;
    SDGO_TRY(clip_config_apply_json(dc->config, &c).wrap(which == 2 ? "text_encoder_2 config.json"
                                                                     : "text_encoder config.json"));
    out->from_config = true;
    if (c.layers != shapes.layers || c.hidden != shapes.hidden || c.intermediate != shapes.intermediate ||
        c.vocab != shapes.vocab || c.max_positions != shapes.max_positions)
        return error(SDGO_ERR_FORMAT,
                     "text encoder config.json: %d layers of width %lld, but the weights have %d of width %lld",
                     c.layers, (long long)c.hidden, shapes.layers, (long long)shapes.hidden);
    if (c.heads < 1 || c.hidden % c.heads != 0)
        return error(SDGO_ERR_FORMAT, "text encoder config.json: %d heads do not divide width %lld", c.heads,
                     (long long)c.hidden);
    return Status();
}

Status detect(const LoadedModel & m, ModelInfo * out) {
    ModelInfo info;
    const ModelFiles & f = m.files;
    SDGO_TRY(infer_unet(m, &info.unet));
    const Part<UNetConfig> & u = info.unet;
    const bool has_vae = get(f, std::string(kVAEPrefix) + "encoder.conv_in.weight") ||
                         get(f, std::string(kVAEPrefix) + "decoder.conv_out.weight");
    const bool has_te1 = get(f, text_encoder_prefix(1) + "embeddings.token_embedding.weight") ||
                         get(f, text_encoder_prefix(1) + "token_embedding.weight");
    const bool has_te2 = get(f, text_encoder_prefix(2) + "embeddings.token_embedding.weight") ||
                         get(f, text_encoder_prefix(2) + "token_embedding.weight");
    if (u.present) {
        const UNetConfig & c = u.cfg;
        const bool deep_attn = !c.attention.empty() && c.attention.back();
        if (c.adm_in_channels > 0) info.family = deep_attn ? "sdxl" : "sdxl-refiner";
        else info.family = c.linear_projection ? "sd2" : "sd1";
        if (c.in_channels == 9) info.variant = "inpaint";
        else if (c.in_channels == 8) info.variant = "instruct-pix2pix";
        else if (!c.mid_attention) info.variant = "distilled";
        else info.variant = "base";
    } else if (has_vae && !has_te1 && !has_te2) {
        info.family = "vae";
        info.variant = "base";
    } else if (has_te1 || has_te2) {
        info.family = "text-encoder";
        info.variant = "base";
    } else if (has_vae) {
        info.family = "unknown";
        info.variant = "base";
    } else {
        return error(SDGO_ERR_FORMAT, "no Stable Diffusion component (UNet, VAE or text encoder) found among %zu tensors",
                     f.tensors.size());
    }
    const std::string & fam = info.family;
    SDGO_TRY(infer_vae(m, fam, &info.vae));
    SDGO_TRY(infer_text_encoder(m, 1, fam, &info.text_encoder));
    SDGO_TRY(infer_text_encoder(m, 2, fam, &info.text_encoder_2));

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
        const UNetConfig & u = info.unet.cfg;
        std::vector<int> depth;
        for (int l = 0; l < u.levels(); l++) depth.push_back(u.attention[size_t(l)] ? u.transformer_depth[size_t(l)] : 0);
        const std::vector<int> heads = u.head_dim > 0 ? std::vector<int>() : u.num_heads;
        o += ",\"unet\":{\"in_channels\":" + std::to_string(u.in_channels) + ",\"out_channels\":" + std::to_string(u.out_channels) +
             ",\"model_channels\":" + std::to_string(u.model_channels) + ",\"channel_mult\":" + str_list(u.channel_mult) +
             ",\"num_res_blocks\":" + std::to_string(u.num_res_blocks) + ",\"transformer_depth\":" + str_list(depth) +
             ",\"transformer_depth_middle\":" + std::to_string(u.mid_attention ? u.mid_depth : 0) +
             ",\"context_dim\":" + std::to_string(u.context_dim) +
             ",\"use_linear_projection\":" + (u.linear_projection ? "true" : "false") +
             ",\"adm_in_channels\":" + std::to_string(u.adm_in_channels) + ",\"num_heads\":" + str_list(heads) +
             ",\"head_dim\":" + std::to_string(u.head_dim) + ",\"from_config\":" + (info.unet.from_config ? "true" : "false") + "}";
    }
    if (info.vae.present) {
        const VaeConfig & v = info.vae.cfg;
        o += ",\"vae\":{\"ch\":" + std::to_string(v.ch) + ",\"ch_mult\":" + str_list(v.ch_mult) +
             ",\"num_res_blocks\":" + std::to_string(v.num_res_blocks) + ",\"z_channels\":" + std::to_string(v.z_channels) +
             ",\"in_channels\":" + std::to_string(v.in_channels) + ",\"out_channels\":" + std::to_string(v.in_channels) +
             ",\"scaling_factor\":" + strprintf("%.6g", v.scaling_factor) + ",\"from_config\":" + (info.vae.from_config ? "true" : "false") + "}";
    }
    auto te = [&](const char * key, const Part<ClipConfig> & p) {
        if (!p.present) return;
        const ClipConfig & t = p.cfg;
        o += std::string(",\"") + key + "\":{\"hidden_size\":" + std::to_string(t.hidden) +
             ",\"num_layers\":" + std::to_string(t.layers) + ",\"intermediate_size\":" + std::to_string(t.intermediate) +
             ",\"num_heads\":" + std::to_string(t.heads) + ",\"vocab_size\":" + std::to_string(t.vocab) +
             ",\"max_positions\":" + std::to_string(t.max_positions) + ",\"projection_dim\":" + std::to_string(t.projection_dim) +
             ",\"hidden_act\":" + json_quote(t.act == ClipAct::quick_gelu ? "quick_gelu" : "gelu") +
             ",\"from_config\":" + (p.from_config ? "true" : "false") + "}";
    };
    te("text_encoder", info.text_encoder);
    te("text_encoder_2", info.text_encoder_2);
    if (!m.tokenizer.dir.empty())
        o += ",\"tokenizer\":{\"vocab\":" + json_quote(m.tokenizer.vocab_json) + ",\"merges\":" + json_quote(m.tokenizer.merges_txt) +
             ",\"tokenizer_json\":" + json_quote(m.tokenizer.tokenizer_json) + "}";
    else if (m.tokenizer.embedded)
        o += ",\"tokenizer\":{\"embedded\":true}";
    o += ",\"metadata\":{";
    for (size_t i = 0; i < m.files.metadata.size(); i++) {
        // Embedded files (a vocabulary is a megabyte) show as their size.
        const std::string & v = m.files.metadata[i].second;
        size_t cut = 200;
        while (cut > 0 && cut < v.size() && (uint8_t(v[cut]) & 0xC0) == 0x80) cut--;  // whole UTF-8 characters
        const std::string shown = v.size() <= 256 ? v : v.substr(0, cut) + strprintf("... (%zu bytes)", v.size());
        o += (i ? "," : "") + json_quote(m.files.metadata[i].first) + ":" + json_quote(shown);
    }
    o += "}}";
    return o;
}

}  // namespace sdgo::model
