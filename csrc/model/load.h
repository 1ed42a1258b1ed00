// load.h — opening model files of any supported layout, with canonical names.
//
// load_model accepts a single-file checkpoint (.safetensors, .gguf, .ckpt,
// .pt, .pth, .bin; the format is sniffed from the bytes, not the extension),
// a sharded "*.safetensors.index.json", a diffusers pipeline folder (with
// model_index.json and unet/, vae/, text_encoder/, text_encoder_2/,
// tokenizer/ sub-folders) or a single diffusers component folder
// (config.json + weights). Tensor names are converted to the canonical scheme
// of model/naming.h.
#pragma once

#include <string>
#include <vector>

#include "formats/json.h"
#include "formats/model_file.h"
#include "model/naming.h"

namespace sdgo::model {

enum class FileKind { unknown, safetensors, safetensors_index, gguf, torch_zip, torch_legacy, directory };
const char * file_kind_name(FileKind k);
// Looks at the first bytes of a file (or stats a directory).
Status sniff(const std::string & path, FileKind * out);

// Loads one file of any format with names as stored (no renaming).
Status load_file_raw(const std::string & path, formats::ModelFiles * out, FileKind * kind = nullptr);

struct DiffusersComponent {
    std::string name;          // "unet", "vae", "text_encoder", "text_encoder_2"
    std::string dir;
    std::vector<std::string> weight_files;  // the file(s) loaded (index.json for shards)
    std::string config_path;   // "" when absent
    formats::Json config;      // parsed config.json (null when absent)
};

struct TokenizerFiles {
    std::string dir;
    std::string vocab_json, merges_txt, tokenizer_json;  // paths, "" when absent
    // A single file written from a diffusers folder (sd-go quantize) carries
    // the folder's texts instead of paths: vocab.json, merges.txt,
    // special_tokens_map.json, tokenizer_config.json ("" when absent).
    bool embedded = false;
    std::string vocab_text, merges_text, special_tokens_map_text, tokenizer_config_text;
    bool present() const { return embedded ? !vocab_text.empty() && !merges_text.empty()
                                           : !vocab_json.empty() && !merges_txt.empty(); }
};

struct LoadedModel {
    formats::ModelFiles files;
    std::string source;                      // "safetensors", "gguf", "torch-zip", "torch-legacy", "safetensors-sharded", "diffusers"
    std::vector<std::string> paths;          // what was opened (files, or the diffusers folder)
    bool diffusers = false;
    formats::Json model_index;               // model_index.json (diffusers pipelines)
    std::vector<DiffusersComponent> components;
    TokenizerFiles tokenizer, tokenizer_2;
    formats::Json scheduler_config;          // null when absent
    const DiffusersComponent * component(const std::string & name) const;
};

struct LoadOptions {
    std::string variant;       // diffusers weight variant to prefer, e.g. "fp16"; "" = the plain files first
    Hint hint = Hint::none;    // how to read unprefixed names in a single-file component
};

Status load_model(const std::string & path, LoadedModel * out, const LoadOptions & opt = LoadOptions());

// What a single output file must carry for a diffusers folder to load from
// it as from the folder: the components' config.json, model_index.json, the
// scheduler config and the tokenizer files, as GGUF string metadata under
// "sdgo." keys (other readers ignore them). Empty for single-file sources,
// which carry nothing outside their tensors. load_model reads them back.
Status embedded_metadata(const LoadedModel & m, std::vector<std::pair<std::string, std::string>> * out);
// Loads several files (e.g. a checkpoint plus a separate VAE) into one model;
// fails on duplicate canonical names.
Status load_models(const std::vector<std::string> & paths, LoadedModel * out, const LoadOptions & opt = LoadOptions());

}  // namespace sdgo::model
