#include "model/load.h"

#include <cstdio>
#include <cstring>

#include <sys/stat.h>

#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "formats/torch_file.h"
#include "formats/zip.h"

namespace sdgo::model {

using formats::Json;
using formats::torch_legacy_looks_like;
using formats::MappedFile;
using formats::ModelFiles;

namespace {

bool is_dir(const std::string & p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool is_file(const std::string & p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
bool ends(const std::string & s, const char * e) {
    size_t n = std::strlen(e);
    return s.size() >= n && s.compare(s.size() - n, n, e) == 0;
}

Status read_json_file(const std::string & path, Json * out) {
    std::shared_ptr<MappedFile> f;
    SDGO_TRY(MappedFile::open(path, &f));
    if (f->size() > (64u << 20)) return error(SDGO_ERR_FORMAT, "%s: JSON file too large", path.c_str());
    return formats::json_parse(reinterpret_cast<const char *>(f->data()), f->size(), out).wrap(path);
}

Hint hint_for_class(const std::string & cls) {
    if (cls == "UNet2DConditionModel") return Hint::unet;
    if (cls == "AutoencoderKL") return Hint::vae;
    if (cls == "CLIPTextModelWithProjection") return Hint::text_encoder_2;
    if (cls == "CLIPTextModel") return Hint::text_encoder;
    return Hint::none;
}

// Picks the weights file(s) of a diffusers component folder.
bool find_weights(const std::string & dir, const std::string & variant, std::string * out) {
    static const char * bases[] = {"diffusion_pytorch_model", "model", "pytorch_model"};
    std::vector<std::string> cands;
    for (const char * b : bases) {
        std::string base = dir + "/" + b;
        if (!variant.empty()) {
            cands.push_back(base + "." + variant + ".safetensors");
            cands.push_back(base + ".safetensors.index." + variant + ".json");
        }
        cands.push_back(base + ".safetensors");
        cands.push_back(base + ".safetensors.index.json");
    }
    for (const char * b : bases) {
        std::string base = dir + "/" + b;
        cands.push_back(base + ".fp16.safetensors");
        cands.push_back(base + ".safetensors.index.fp16.json");
        if (!variant.empty()) cands.push_back(base + "." + variant + ".bin");
        cands.push_back(base + ".bin");
        cands.push_back(base + ".fp16.bin");
        cands.push_back(base + ".bin.index.json");
    }
    for (const auto & c : cands)
        if (is_file(c)) {
            *out = c;
            return true;
        }
    return false;
}

Status load_component(const std::string & name, const std::string & dir, Hint hint, const LoadOptions & opt,
                      LoadedModel * out) {
    DiffusersComponent comp;
    comp.name = name;
    comp.dir = dir;
    if (is_file(dir + "/config.json")) {
        comp.config_path = dir + "/config.json";
        SDGO_TRY(read_json_file(comp.config_path, &comp.config));
    }
    std::string w;
    if (!find_weights(dir, opt.variant, &w))
        return error(SDGO_ERR_IO, "%s: diffusers component \"%s\" has no weights file", dir.c_str(), name.c_str());
    if (ends(w, ".bin.index.json"))
        return error(SDGO_ERR_UNSUPPORTED, "%s: sharded .bin weights are not supported; use safetensors", w.c_str());
    ModelFiles mf;
    if (ends(w, ".json")) SDGO_TRY(formats::load_safetensors_index(w, &mf));
    else SDGO_TRY(load_file_raw(w, &mf));
    SDGO_TRY(canonicalize(&mf, hint).wrap(w));
    comp.weight_files.push_back(w);
    SDGO_TRY(out->files.merge(std::move(mf), ""));
    out->components.push_back(std::move(comp));
    return Status();
}

void find_tokenizer(const std::string & dir, TokenizerFiles * t) {
    if (!is_dir(dir)) return;
    t->dir = dir;
    if (is_file(dir + "/vocab.json")) t->vocab_json = dir + "/vocab.json";
    if (is_file(dir + "/merges.txt")) t->merges_txt = dir + "/merges.txt";
    if (is_file(dir + "/tokenizer.json")) t->tokenizer_json = dir + "/tokenizer.json";
}

Status load_directory(const std::string & dir, LoadedModel * out, const LoadOptions & opt) {
    out->source = "diffusers";
    out->diffusers = true;
    out->paths.push_back(dir);
    bool has_index = is_file(dir + "/model_index.json");
    if (has_index) SDGO_TRY(read_json_file(dir + "/model_index.json", &out->model_index));
    static const struct { const char * name; Hint hint; } kComps[] = {
        {"unet", Hint::unet}, {"vae", Hint::vae}, {"text_encoder", Hint::text_encoder}, {"text_encoder_2", Hint::text_encoder_2}};
    int loaded = 0;
    for (const auto & c : kComps) {
        std::string sub = dir + "/" + c.name;
        bool listed = false;
        if (has_index) {
            const Json * e = out->model_index.get(c.name);
            listed = e && e->kind == Json::array && !e->items.empty() && e->items[0].kind == Json::string;
        }
        if (!is_dir(sub)) {
            if (listed)
                return error(SDGO_ERR_IO, "%s: model_index.json lists \"%s\" but the folder is missing", dir.c_str(), c.name);
            continue;
        }
        SDGO_TRY(load_component(c.name, sub, c.hint, opt, out));
        loaded++;
    }
    find_tokenizer(dir + "/tokenizer", &out->tokenizer);
    find_tokenizer(dir + "/tokenizer_2", &out->tokenizer_2);
    if (is_file(dir + "/scheduler/scheduler_config.json"))
        SDGO_TRY(read_json_file(dir + "/scheduler/scheduler_config.json", &out->scheduler_config));
    if (loaded == 0) {
        // A single component folder: config.json next to the weights.
        std::string w;
        if (find_weights(dir, opt.variant, &w)) {
            Hint h = opt.hint;
            if (is_file(dir + "/config.json")) {
                Json cfg;
                SDGO_TRY(read_json_file(dir + "/config.json", &cfg));
                if (h == Hint::none) h = hint_for_class(cfg.str_or("_class_name", cfg.get("architectures") &&
                                                                    cfg.get("architectures")->kind == Json::array &&
                                                                    !cfg.get("architectures")->items.empty()
                                                                ? cfg.get("architectures")->items[0].str
                                                                : std::string()));
            }
            const char * name = h == Hint::vae ? "vae" : h == Hint::text_encoder ? "text_encoder"
                                : h == Hint::text_encoder_2 ? "text_encoder_2" : "unet";
            SDGO_TRY(load_component(name, dir, h, opt, out));
            loaded++;
        }
    }
    if (loaded == 0)
        return error(SDGO_ERR_FORMAT, "%s: no model found in this directory (expected model_index.json with unet/, vae/, "
                     "text_encoder/ folders, or a component folder with config.json and weights)", dir.c_str());
    return Status();
}

}  // namespace

const char * file_kind_name(FileKind k) {
    switch (k) {
        case FileKind::safetensors: return "safetensors";
        case FileKind::safetensors_index: return "safetensors-sharded";
        case FileKind::gguf: return "gguf";
        case FileKind::torch_zip: return "torch-zip";
        case FileKind::torch_legacy: return "torch-legacy";
        case FileKind::directory: return "diffusers";
        case FileKind::unknown: break;
    }
    return "unknown";
}

Status sniff(const std::string & path, FileKind * out) {
    *out = FileKind::unknown;
    if (is_dir(path)) {
        *out = FileKind::directory;
        return Status();
    }
    std::shared_ptr<MappedFile> f;
    SDGO_TRY(MappedFile::open(path, &f));
    const uint8_t * d = f->data();
    size_t n = f->size();
    if (n >= 4 && std::memcmp(d, "GGUF", 4) == 0) *out = FileKind::gguf;
    else if (formats::zip_looks_like(*f)) *out = FileKind::torch_zip;
    else if (n >= 9 && d[8] == '{' && !torch_legacy_looks_like(*f)) *out = FileKind::safetensors;
    else if (torch_legacy_looks_like(*f) || (n >= 2 && d[0] == 0x80 && d[1] <= 5)) *out = FileKind::torch_legacy;
    else if (ends(path, ".json") || (n > 0 && d[0] == '{')) *out = FileKind::safetensors_index;
    else if (n >= 8 && ends(path, ".safetensors")) *out = FileKind::safetensors;  // the reader reports what is wrong
    if (*out == FileKind::unknown)
        return error(SDGO_ERR_FORMAT, "%s: unrecognized model file (not safetensors, GGUF, a PyTorch checkpoint or a diffusers folder)",
                     path.c_str());
    return Status();
}

Status load_file_raw(const std::string & path, ModelFiles * out, FileKind * kind) {
    FileKind k;
    SDGO_TRY(sniff(path, &k));
    if (kind) *kind = k;
    switch (k) {
        case FileKind::gguf: return formats::load_gguf(path, out);
        case FileKind::torch_zip: case FileKind::torch_legacy: return formats::load_torch(path, out);
        case FileKind::safetensors: return formats::load_safetensors(path, out);
        case FileKind::safetensors_index: return formats::load_safetensors_index(path, out);
        case FileKind::directory: return error(SDGO_ERR_INVALID_ARGUMENT, "%s: is a directory", path.c_str());
        case FileKind::unknown: break;
    }
    return error(SDGO_ERR_FORMAT, "%s: unrecognized model file", path.c_str());
}

const DiffusersComponent * LoadedModel::component(const std::string & name) const {
    for (const auto & c : components)
        if (c.name == name) return &c;
    return nullptr;
}

namespace {

constexpr const char * kEmbedPrefix = "sdgo.diffusers.";
constexpr const char * kEmbedComponents[] = {"unet", "vae", "text_encoder", "text_encoder_2"};
// The largest embedded text accepted back (CLIP's vocab.json is ~1 MB).
constexpr size_t kMaxEmbeddedText = size_t(64) << 20;

Status read_text_file(const std::string & path, std::string * out) {
    FILE * f = nullptr;
    SDGO_TRY(formats::open_regular_file(path, &f));
    out->clear();
    char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
        if (out->size() + n > kMaxEmbeddedText) {
            std::fclose(f);
            return error(SDGO_ERR_FORMAT, "%s: larger than %zu MiB", path.c_str(), kMaxEmbeddedText >> 20);
        }
        out->append(buf, n);
    }
    const bool bad = std::ferror(f) != 0;
    std::fclose(f);
    if (bad) return error(SDGO_ERR_IO, "%s: read error", path.c_str());
    return Status();
}

Status add_file(std::vector<std::pair<std::string, std::string>> * out, const std::string & key,
                const std::string & path, bool optional) {
    if (path.empty() || (optional && !is_file(path))) return Status();
    std::string text;
    SDGO_TRY(read_text_file(path, &text));
    out->emplace_back(kEmbedPrefix + key, std::move(text));
    return Status();
}

Status parse_embedded_json(const std::string & key, const std::string & text, Json * out) {
    if (text.size() > kMaxEmbeddedText) return error(SDGO_ERR_FORMAT, "%s: too large", key.c_str());
    return formats::json_parse(text.data(), text.size(), out).wrap(key);
}

// Restores what embedded_metadata stored (see load.h).
Status apply_embedded(LoadedModel * m) {
    const auto & md = m->files.metadata;
    const size_t plen = std::strlen(kEmbedPrefix);
    bool any = false;
    for (const auto & kv : md) {
        if (kv.first.compare(0, plen, kEmbedPrefix) != 0) continue;
        const std::string key = kv.first.substr(plen);
        const std::string & text = kv.second;
        if (text.size() > kMaxEmbeddedText) return error(SDGO_ERR_FORMAT, "%s: too large", kv.first.c_str());
        any = true;
        if (key == "model_index.json") {
            SDGO_TRY(parse_embedded_json(kv.first, text, &m->model_index));
        } else if (key == "scheduler/scheduler_config.json") {
            SDGO_TRY(parse_embedded_json(kv.first, text, &m->scheduler_config));
        } else if (key.size() > 12 && key.compare(key.size() - 12, 12, "/config.json") == 0) {
            const std::string name = key.substr(0, key.size() - 12);
            bool known = false;
            for (const char * c : kEmbedComponents) known = known || name == c;
            if (!known) continue;  // a later version's component: ignore
            DiffusersComponent c;
            c.name = name;
            SDGO_TRY(parse_embedded_json(kv.first, text, &c.config));
            m->components.push_back(std::move(c));
        } else {
            for (int which = 1; which <= 2; which++) {
                const std::string dir = which == 1 ? "tokenizer/" : "tokenizer_2/";
                if (key.compare(0, dir.size(), dir) != 0) continue;
                TokenizerFiles & t = which == 1 ? m->tokenizer : m->tokenizer_2;
                t.embedded = true;
                const std::string file = key.substr(dir.size());
                if (file == "vocab.json") t.vocab_text = text;
                else if (file == "merges.txt") t.merges_text = text;
                else if (file == "special_tokens_map.json") t.special_tokens_map_text = text;
                else if (file == "tokenizer_config.json") t.tokenizer_config_text = text;
            }
        }
    }
    if (any) m->diffusers = true;  // the networks are the folder's, e.g. SD 2.x's 23-layer text encoder
    return Status();
}

}  // namespace

Status embedded_metadata(const LoadedModel & m, std::vector<std::pair<std::string, std::string>> * out) {
    out->clear();
    if (m.source == "gguf") {  // a file written by sd-go: pass its texts on
        const size_t plen = std::strlen(kEmbedPrefix);
        for (const auto & kv : m.files.metadata)
            if (kv.first.compare(0, plen, kEmbedPrefix) == 0) out->push_back(kv);
        return Status();
    }
    if (m.source != "diffusers" || m.paths.size() != 1) return Status();
    const std::string & dir = m.paths[0];
    SDGO_TRY(add_file(out, "model_index.json", dir + "/model_index.json", true));
    SDGO_TRY(add_file(out, "scheduler/scheduler_config.json", dir + "/scheduler/scheduler_config.json", true));
    for (const DiffusersComponent & c : m.components) {
        std::string key = c.name + "/config.json";
        SDGO_TRY(add_file(out, key, c.config_path, false));
    }
    const struct { const char * dir; const TokenizerFiles * t; } toks[] = {{"tokenizer/", &m.tokenizer},
                                                                             {"tokenizer_2/", &m.tokenizer_2}};
    for (const auto & t : toks) {
        if (t.t->dir.empty() || !t.t->present()) continue;
        for (const char * f : {"vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"})
            SDGO_TRY(add_file(out, std::string(t.dir) + f, t.t->dir + "/" + f, true));
    }
    return Status();
}

Status load_model(const std::string & path, LoadedModel * out, const LoadOptions & opt) {
    *out = LoadedModel();
    FileKind k;
    SDGO_TRY(sniff(path, &k));
    if (k == FileKind::directory) return load_directory(path, out, opt);
    SDGO_TRY(load_file_raw(path, &out->files, &k));
    out->source = file_kind_name(k);
    out->paths.push_back(path);
    SDGO_TRY(canonicalize(&out->files, opt.hint).wrap(path));
    if (k == FileKind::gguf) SDGO_TRY(apply_embedded(out).wrap(path));
    return Status();
}

Status load_models(const std::vector<std::string> & paths, LoadedModel * out, const LoadOptions & opt) {
    if (paths.empty()) return error(SDGO_ERR_INVALID_ARGUMENT, "no model paths given");
    SDGO_TRY(load_model(paths[0], out, opt));
    for (size_t i = 1; i < paths.size(); i++) {
        LoadedModel more;
        SDGO_TRY(load_model(paths[i], &more, opt));
        SDGO_TRY(out->files.merge(std::move(more.files), "").wrap(paths[i]));
        out->paths.insert(out->paths.end(), more.paths.begin(), more.paths.end());
        for (auto & c : more.components) out->components.push_back(std::move(c));
        if (more.diffusers) {
            out->diffusers = true;
            if (out->scheduler_config.kind == Json::null_) out->scheduler_config = std::move(more.scheduler_config);
            if (out->tokenizer.dir.empty()) out->tokenizer = more.tokenizer;
            if (out->tokenizer_2.dir.empty()) out->tokenizer_2 = more.tokenizer_2;
        }
        if (out->source != more.source) out->source += "+" + more.source;
    }
    return Status();
}

}  // namespace sdgo::model
