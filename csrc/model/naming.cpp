#include "model/naming.h"

#include <algorithm>
#include <cstdlib>
#include <map>

namespace sdgo::model {

using formats::ModelFiles;
using formats::StoredType;
using formats::TensorEntry;

const char * const kUNetPrefix = "model.diffusion_model.";
const char * const kVAEPrefix = "first_stage_model.";
const char * const kTextEncoderPrefix = "cond_stage_model.transformer.";
const char * const kTextEncoder2Prefix = "cond_stage_model.1.transformer.";

const char * component_name(Component c) {
    switch (c) {
        case Component::unet: return "unet";
        case Component::vae: return "vae";
        case Component::text_encoder: return "text_encoder";
        case Component::text_encoder_2: return "text_encoder_2";
        case Component::other: return "other";
    }
    return "other";
}

static bool starts(const std::string & s, const char * p) { return s.compare(0, std::strlen(p), p) == 0; }

Component component_of(const std::string & n) {
    if (starts(n, kUNetPrefix)) return Component::unet;
    if (starts(n, kVAEPrefix)) return Component::vae;
    if (starts(n, kTextEncoder2Prefix)) return Component::text_encoder_2;
    if (starts(n, kTextEncoderPrefix)) return Component::text_encoder;
    return Component::other;
}

namespace {

enum class Layout { unet, vae, te_hf, te_openclip, te_auto, none };

struct PrefixRule {
    const char * prefix;
    Component comp;
    Layout layout;
};

// Longest prefixes first.
const PrefixRule kRules[] = {
    {"conditioner.embedders.0.transformer.", Component::text_encoder, Layout::te_hf},
    {"conditioner.embedders.1.transformer.", Component::text_encoder_2, Layout::te_hf},
    {"text_encoders.clip_l.transformer.", Component::text_encoder, Layout::te_hf},
    {"text_encoders.clip_g.transformer.", Component::text_encoder_2, Layout::te_hf},
    {"conditioner.embedders.0.model.", Component::text_encoder_2, Layout::te_openclip},
    {"conditioner.embedders.1.model.", Component::text_encoder_2, Layout::te_openclip},
    {"cond_stage_model.1.transformer.", Component::text_encoder_2, Layout::te_hf},
    {"cond_stage_model.transformer.", Component::text_encoder, Layout::te_hf},
    {"cond_stage_model.model.", Component::text_encoder, Layout::te_openclip},
    {"model.diffusion_model.", Component::unet, Layout::unet},
    {"first_stage_model.", Component::vae, Layout::vae},
    {"diffusion_model.", Component::unet, Layout::unet},
    {"text_encoder_2.", Component::text_encoder_2, Layout::te_auto},
    {"text_encoder.2.", Component::text_encoder_2, Layout::te_auto},
    {"text_encoder.", Component::text_encoder, Layout::te_auto},
    {"te.1.", Component::text_encoder_2, Layout::te_auto},
    {"te2.", Component::text_encoder_2, Layout::te_auto},
    {"te1.", Component::text_encoder, Layout::te_auto},
    {"te.", Component::text_encoder, Layout::te_auto},
    {"unet.", Component::unet, Layout::unet},
    {"vae.", Component::vae, Layout::vae},
};

bool is_openclip_rest(const std::string & r) {
    return starts(r, "transformer.resblocks.") || starts(r, "token_embedding.") || r == "positional_embedding" ||
           starts(r, "ln_final.") || r == "text_projection" || r == "logit_scale";
}

// Splits "a.b.c" into parts.
std::vector<std::string> split_dots(const std::string & s) {
    std::vector<std::string> out;
    size_t st = 0;
    for (;;) {
        size_t k = s.find('.', st);
        out.push_back(s.substr(st, k == std::string::npos ? std::string::npos : k - st));
        if (k == std::string::npos) break;
        st = k + 1;
    }
    return out;
}

bool to_int(const std::string & s, int * out) {
    if (s.empty() || s.size() > 6) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    *out = std::atoi(s.c_str());
    return true;
}

std::string join_from(const std::vector<std::string> & p, size_t from) {
    std::string o;
    for (size_t i = from; i < p.size(); i++) {
        if (i > from) o += ".";
        o += p[i];
    }
    return o;
}

std::string unet_resnet_rename(const std::string & r) {
    static const std::pair<const char *, const char *> m[] = {
        {"norm1.", "in_layers.0."}, {"conv1.", "in_layers.2."}, {"time_emb_proj.", "emb_layers.1."},
        {"norm2.", "out_layers.0."}, {"conv2.", "out_layers.3."}, {"conv_shortcut.", "skip_connection."}};
    for (const auto & kv : m)
        if (starts(r, kv.first)) return std::string(kv.second) + r.substr(std::strlen(kv.first));
    return r;
}

struct UNetShape {
    int L = 2;                    // layers per block
    std::vector<bool> up_has_attn;
};

// diffusers UNet name -> LDM name (rest after the prefix). Returns false when
// the name is not a diffusers name (already LDM).
bool unet_diffusers_to_ldm(const std::string & r, const UNetShape & u, std::string * out) {
    static const std::pair<const char *, const char *> top[] = {
        {"conv_in.", "input_blocks.0.0."}, {"time_embedding.linear_1.", "time_embed.0."},
        {"time_embedding.linear_2.", "time_embed.2."}, {"add_embedding.linear_1.", "label_emb.0.0."},
        {"add_embedding.linear_2.", "label_emb.0.2."}, {"conv_norm_out.", "out.0."}, {"conv_out.", "out.2."}};
    for (const auto & kv : top)
        if (starts(r, kv.first)) { *out = std::string(kv.second) + r.substr(std::strlen(kv.first)); return true; }
    std::vector<std::string> p = split_dots(r);
    int i, j;
    const int L = u.L;
    if (p.size() >= 4 && p[0] == "down_blocks" && to_int(p[1], &i)) {
        if (p[2] == "resnets" && to_int(p[3], &j)) {
            *out = strprintf("input_blocks.%d.0.", i * (L + 1) + j + 1) + unet_resnet_rename(join_from(p, 4));
            return true;
        }
        if (p[2] == "attentions" && to_int(p[3], &j)) {
            *out = strprintf("input_blocks.%d.1.", i * (L + 1) + j + 1) + join_from(p, 4);
            return true;
        }
        if (p[2] == "downsamplers" && p[3] == "0" && p.size() >= 5 && p[4] == "conv") {
            *out = strprintf("input_blocks.%d.0.op.", i * (L + 1) + L + 1) + join_from(p, 5);
            return true;
        }
    }
    if (p.size() >= 3 && p[0] == "mid_block") {
        if (p[1] == "resnets" && to_int(p[2], &j)) {
            *out = strprintf("middle_block.%d.", j == 0 ? 0 : 2) + unet_resnet_rename(join_from(p, 3));
            return true;
        }
        if (p[1] == "attentions" && p[2] == "0") {
            *out = "middle_block.1." + join_from(p, 3);
            return true;
        }
    }
    if (p.size() >= 4 && p[0] == "up_blocks" && to_int(p[1], &i)) {
        if (p[2] == "resnets" && to_int(p[3], &j)) {
            *out = strprintf("output_blocks.%d.0.", i * (L + 1) + j) + unet_resnet_rename(join_from(p, 4));
            return true;
        }
        if (p[2] == "attentions" && to_int(p[3], &j)) {
            *out = strprintf("output_blocks.%d.1.", i * (L + 1) + j) + join_from(p, 4);
            return true;
        }
        if (p[2] == "upsamplers" && p[3] == "0" && p.size() >= 5 && p[4] == "conv") {
            bool attn = (size_t)i < u.up_has_attn.size() && u.up_has_attn[(size_t)i];
            *out = strprintf("output_blocks.%d.%d.conv.", i * (L + 1) + L, attn ? 2 : 1) + join_from(p, 5);
            return true;
        }
    }
    return false;
}

std::string vae_resnet_rename(const std::string & r) {
    if (starts(r, "conv_shortcut.")) return "nin_shortcut." + r.substr(14);
    return r;
}

std::string vae_attn_rename(const std::string & r) {
    static const std::pair<const char *, const char *> m[] = {
        {"group_norm.", "norm."}, {"to_q.", "q."}, {"to_k.", "k."}, {"to_v.", "v."}, {"to_out.0.", "proj_out."},
        {"query.", "q."}, {"key.", "k."}, {"value.", "v."}, {"proj_attn.", "proj_out."}};
    for (const auto & kv : m)
        if (starts(r, kv.first)) return std::string(kv.second) + r.substr(std::strlen(kv.first));
    return r;
}

// diffusers VAE name -> LDM name; n_up = number of decoder up blocks.
bool vae_diffusers_to_ldm(const std::string & r, int n_up, std::string * out) {
    std::vector<std::string> p = split_dots(r);
    if (p.size() < 2 || (p[0] != "encoder" && p[0] != "decoder")) return false;
    const std::string & side = p[0];
    int i, j;
    if (p[1] == "conv_norm_out") { *out = side + ".norm_out." + join_from(p, 2); return true; }
    if (p.size() >= 5 && p[1] == "down_blocks" && to_int(p[2], &i)) {
        if (p[3] == "resnets" && to_int(p[4], &j)) {
            *out = strprintf("%s.down.%d.block.%d.", side.c_str(), i, j) + vae_resnet_rename(join_from(p, 5));
            return true;
        }
        if (p[3] == "downsamplers" && p[4] == "0") {
            *out = strprintf("%s.down.%d.downsample.", side.c_str(), i) + join_from(p, 5);
            return true;
        }
    }
    if (p.size() >= 5 && p[1] == "up_blocks" && to_int(p[2], &i) && i < n_up) {
        int li = n_up - 1 - i;
        if (p[3] == "resnets" && to_int(p[4], &j)) {
            *out = strprintf("%s.up.%d.block.%d.", side.c_str(), li, j) + vae_resnet_rename(join_from(p, 5));
            return true;
        }
        if (p[3] == "upsamplers" && p[4] == "0") {
            *out = strprintf("%s.up.%d.upsample.", side.c_str(), li) + join_from(p, 5);
            return true;
        }
    }
    if (p.size() >= 4 && p[1] == "mid_block") {
        if (p[2] == "resnets" && to_int(p[3], &j)) {
            *out = side + (j == 0 ? ".mid.block_1." : ".mid.block_2.") + vae_resnet_rename(join_from(p, 4));
            return true;
        }
        if (p[2] == "attentions" && p[3] == "0") {
            *out = side + ".mid.attn_1." + vae_attn_rename(join_from(p, 4));
            return true;
        }
    }
    return false;
}

enum class Fix { none, split_qkv, transpose };

// OpenCLIP text-model name -> HF CLIP name.
std::string openclip_to_hf(const std::string & r, Fix * fix) {
    *fix = Fix::none;
    if (r == "token_embedding.weight") return "text_model.embeddings.token_embedding.weight";
    if (r == "positional_embedding") return "text_model.embeddings.position_embedding.weight";
    if (starts(r, "ln_final.")) return "text_model.final_layer_norm." + r.substr(9);
    if (r == "text_projection") { *fix = Fix::transpose; return "text_projection.weight"; }
    std::vector<std::string> p = split_dots(r);
    int n;
    if (p.size() >= 4 && p[0] == "transformer" && p[1] == "resblocks" && to_int(p[2], &n)) {
        std::string base = strprintf("text_model.encoder.layers.%d.", n);
        std::string tail = join_from(p, 3);
        static const std::pair<const char *, const char *> m[] = {
            {"ln_1.", "layer_norm1."}, {"ln_2.", "layer_norm2."}, {"mlp.c_fc.", "mlp.fc1."},
            {"mlp.c_proj.", "mlp.fc2."}, {"attn.out_proj.", "self_attn.out_proj."}};
        for (const auto & kv : m)
            if (starts(tail, kv.first)) return base + kv.second + tail.substr(std::strlen(kv.first));
        if (tail == "attn.in_proj_weight") { *fix = Fix::split_qkv; return base + "self_attn.\x01_proj.weight"; }
        if (tail == "attn.in_proj_bias") { *fix = Fix::split_qkv; return base + "self_attn.\x01_proj.bias"; }
        return base + tail;
    }
    return r;
}

std::string hf_normalize(const std::string & r, Fix * fix) {
    *fix = Fix::none;
    std::string s = r;
    if (starts(s, "embeddings.") || starts(s, "encoder.") || starts(s, "final_layer_norm.")) s = "text_model." + s;
    if (s == "text_model.text_projection") { *fix = Fix::transpose; return "text_projection.weight"; }
    size_t k = s.find(".self_attn.in_proj.");
    if (k != std::string::npos && starts(s, "text_model.encoder.layers.")) {
        std::string tail = s.substr(k + 19);  // "weight" / "bias"
        *fix = Fix::split_qkv;
        return s.substr(0, k) + ".self_attn.\x01_proj." + tail;
    }
    return s;
}

Status split_qkv(const TensorEntry & t, const std::string & pattern, std::vector<TensorEntry> * out) {
    int outer = t.n_dims - 1;  // split the outermost dimension (PyTorch dim 0)
    if (t.ne[outer] % 3 != 0 || t.nbytes % 3 != 0)
        return error(SDGO_ERR_FORMAT, "tensor \"%s\": fused q/k/v dimension %lld is not divisible by 3", t.source_name.c_str(),
                     (long long)t.ne[outer]);
    uint64_t part = t.nbytes / 3;
    if (t.is_ggml()) {
        int64_t ne[4] = {t.ne[0], t.ne[1], t.ne[2], t.ne[3]};
        ne[outer] /= 3;
        uint64_t nb;
        SDGO_TRY(formats::ggml_nbytes(t.type_id(), ne, &nb).wrap("tensor \"" + t.source_name + "\""));
        if (nb != part) return error(SDGO_ERR_FORMAT, "tensor \"%s\": cannot split fused q/k/v", t.source_name.c_str());
    }
    static const char * qkv[3] = {"q", "k", "v"};
    for (int k = 0; k < 3; k++) {
        TensorEntry e = t;
        // The pattern holds one \x01 marker (never printf: names come from the file).
        e.name = pattern;
        size_t mk = e.name.rfind('\x01');
        if (mk == std::string::npos) return error(SDGO_ERR_INTERNAL, "bad q/k/v name pattern");
        e.name.replace(mk, 1, qkv[k]);
        e.ne[outer] /= 3;
        e.nbytes = part;
        e.data = t.data + part * (uint64_t)k;
        e.file_offset = t.file_offset + part * (uint64_t)k;
        out->push_back(std::move(e));
    }
    return Status();
}

Status transpose2d(ModelFiles * m, TensorEntry * t) {
    if (t->n_dims != 2) return error(SDGO_ERR_FORMAT, "tensor \"%s\": text projection is not 2-D", t->source_name.c_str());
    size_t es;
    if (t->is_ggml() && t->type == DType::f32) es = 4;
    else if (t->is_ggml() && (t->type == DType::f16 || t->type == DType::bf16)) es = 2;
    else return error(SDGO_ERR_UNSUPPORTED, "tensor \"%s\": cannot transpose type %s", t->source_name.c_str(), t->type_name().c_str());
    int64_t cols = t->ne[0], rows = t->ne[1];  // PyTorch [rows, cols]
    if ((uint64_t)cols * (uint64_t)rows * es != t->nbytes)
        return error(SDGO_ERR_FORMAT, "tensor \"%s\": size does not match its shape", t->source_name.c_str());
    uint8_t * dst = m->alloc_owned((size_t)t->nbytes);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            std::memcpy(dst + ((size_t)c * (size_t)rows + (size_t)r) * es, t->data + ((size_t)r * (size_t)cols + (size_t)c) * es, es);
    t->data = dst;
    t->file_index = -1;
    t->ne[0] = rows;
    t->ne[1] = cols;
    return Status();
}

Hint guess_hint(const ModelFiles & m) {
    int unet = 0, vae = 0, te = 0;
    for (const auto & t : m.tensors) {
        const std::string & n = t.name;
        if (starts(n, "input_blocks.") || starts(n, "middle_block.") || starts(n, "output_blocks.") ||
            starts(n, "down_blocks.") || starts(n, "up_blocks.") || starts(n, "mid_block.") || starts(n, "time_embed"))
            unet++;
        else if (starts(n, "encoder.layers.") || starts(n, "text_model.") || starts(n, "embeddings.") ||
                 is_openclip_rest(n) || n == "text_projection.weight")
            te++;
        else if (starts(n, "encoder.") || starts(n, "decoder.") || starts(n, "quant_conv.") || starts(n, "post_quant_conv."))
            vae++;
    }
    if (unet == 0 && vae == 0 && te == 0) return Hint::none;
    if (unet >= vae && unet >= te) return Hint::unet;
    if (vae >= te) return Hint::vae;
    return Hint::text_encoder;
}

}  // namespace

Status canonicalize(ModelFiles * m, Hint hint) {
    struct Cls {
        Component comp = Component::other;
        Layout layout = Layout::none;
        std::string rest;
    };
    std::vector<Cls> cls(m->tensors.size());
    bool any_prefixed = false;
    for (size_t i = 0; i < m->tensors.size(); i++) {
        const std::string & n = m->tensors[i].name;
        for (const auto & r : kRules) {
            if (starts(n, r.prefix)) {
                cls[i] = Cls{r.comp, r.layout, n.substr(std::strlen(r.prefix))};
                any_prefixed = true;
                break;
            }
        }
    }
    if (!any_prefixed && hint == Hint::none) hint = guess_hint(*m);
    if (!any_prefixed && hint != Hint::none) {
        for (size_t i = 0; i < m->tensors.size(); i++) {
            Cls & c = cls[i];
            c.rest = m->tensors[i].name;
            switch (hint) {
                case Hint::unet: c.comp = Component::unet; c.layout = Layout::unet; break;
                case Hint::vae: c.comp = Component::vae; c.layout = Layout::vae; break;
                case Hint::text_encoder: c.comp = Component::text_encoder; c.layout = Layout::te_auto; break;
                case Hint::text_encoder_2: c.comp = Component::text_encoder_2; c.layout = Layout::te_auto; break;
                case Hint::none: break;
            }
        }
    }
    // Structure of diffusers-named UNet / VAE parts.
    UNetShape us;
    int max_res = -1, n_up = 0;
    for (const auto & c : cls) {
        std::vector<std::string> p;
        int i, j;
        if (c.layout == Layout::unet && starts(c.rest, "down_blocks.")) {
            p = split_dots(c.rest);
            if (p.size() > 3 && p[2] == "resnets" && to_int(p[3], &j)) max_res = std::max(max_res, j);
        } else if (c.layout == Layout::unet && starts(c.rest, "up_blocks.")) {
            p = split_dots(c.rest);
            if (p.size() > 2 && p[2] == "attentions" && to_int(p[1], &i) && i < 64) {
                if (us.up_has_attn.size() <= (size_t)i) us.up_has_attn.resize((size_t)i + 1, false);
                us.up_has_attn[(size_t)i] = true;
            }
        } else if (c.layout == Layout::vae && starts(c.rest, "decoder.up_blocks.")) {
            p = split_dots(c.rest);
            if (p.size() > 2 && to_int(p[2], &i) && i < 64) n_up = std::max(n_up, i + 1);
        }
    }
    if (max_res >= 0) us.L = max_res + 1;

    std::vector<TensorEntry> out;
    out.reserve(m->tensors.size());
    for (size_t i = 0; i < m->tensors.size(); i++) {
        TensorEntry t = std::move(m->tensors[i]);
        const Cls & c = cls[i];
        Fix fix = Fix::none;
        std::string name = t.name;
        switch (c.layout) {
            case Layout::unet: {
                std::string r;
                name = kUNetPrefix + (unet_diffusers_to_ldm(c.rest, us, &r) ? r : c.rest);
                break;
            }
            case Layout::vae: {
                std::string r;
                name = kVAEPrefix + (vae_diffusers_to_ldm(c.rest, n_up, &r) ? r : c.rest);
                size_t k = name.find(".mid.attn_1.");
                if (k != std::string::npos && t.n_dims == 4 && t.ne[0] == 1 && t.ne[1] == 1 &&
                    (name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0) && name.find(".norm.") == std::string::npos) {
                    t.ne[0] = t.ne[2];
                    t.ne[1] = t.ne[3];
                    t.ne[2] = t.ne[3] = 1;
                    t.n_dims = 2;
                }
                break;
            }
            case Layout::te_hf: case Layout::te_openclip: case Layout::te_auto: {
                bool oc = c.layout == Layout::te_openclip || (c.layout == Layout::te_auto && is_openclip_rest(c.rest));
                std::string r = oc ? openclip_to_hf(c.rest, &fix) : hf_normalize(c.rest, &fix);
                name = std::string(c.comp == Component::text_encoder_2 ? kTextEncoder2Prefix : kTextEncoderPrefix) + r;
                break;
            }
            case Layout::none: break;
        }
        if (fix == Fix::split_qkv) {
            SDGO_TRY(split_qkv(t, name, &out));
            continue;
        }
        if (fix == Fix::transpose) SDGO_TRY(transpose2d(m, &t));
        t.name = name;
        out.push_back(std::move(t));
    }
    m->tensors = std::move(out);
    m->reindex();
    // Duplicate canonical names (e.g. a file holding both fused and split
    // q/k/v) are an error rather than a silent overwrite.
    if (m->tensors.size() > 0) {
        std::vector<const std::string *> names;
        names.reserve(m->tensors.size());
        for (const auto & t : m->tensors) names.push_back(&t.name);
        std::sort(names.begin(), names.end(), [](const std::string * a, const std::string * b) { return *a < *b; });
        for (size_t i = 1; i < names.size(); i++)
            if (*names[i] == *names[i - 1])
                return error(SDGO_ERR_FORMAT, "two tensors map to the same canonical name \"%s\"", names[i]->c_str());
    }
    return Status();
}

}  // namespace sdgo::model
