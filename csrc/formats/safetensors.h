// safetensors.h — safetensors reader (mmap, zero copy) and writer.
//
// Validation follows the reference implementation (the Rust safetensors crate):
// header length bounds, strict JSON, known dtypes, shape products checked for
// overflow, byte lengths equal to shape x dtype size, tensors sorted by offset
// from 0 with no gaps or overlaps and covering the buffer exactly.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "formats/model_file.h"

namespace sdgo::formats {

constexpr uint64_t kSafetensorsMaxHeader = 100000000;  // reference HeaderTooLarge bound

// Maps a safetensors dtype string ("F16", "BF16", ...) to our types.
bool safetensors_dtype(const std::string & name, StoredType * stored, DType * type, int * bits);
// The safetensors dtype name for a tensor's type, or NULL if it has none
// (block-quantized ggml types).
const char * safetensors_dtype_name(const TensorEntry & t);

// Parses an already mapped file and appends its tensors (names as stored)
// and __metadata__ to out.
Status read_safetensors(std::shared_ptr<MappedFile> file, ModelFiles * out);
Status load_safetensors(const std::string & path, ModelFiles * out);
// Sharded weights: path of a "*.safetensors.index.json" file; shards are
// looked up next to it.
Status load_safetensors_index(const std::string & index_path, ModelFiles * out);

struct SafetensorsTensor {
    std::string name;
    std::string dtype;            // safetensors dtype name
    std::vector<int64_t> shape;   // PyTorch order
    const void * data = nullptr;
    uint64_t nbytes = 0;
};

// Serialises tensors like the reference writer: sorted by dtype width
// (widest first) then name, JSON header padded with spaces to a multiple of
// 8, __metadata__ first when non-empty. Validates shapes and sizes.
Status encode_safetensors(const std::vector<SafetensorsTensor> & tensors,
                          const std::vector<std::pair<std::string, std::string>> & metadata,
                          std::vector<uint8_t> * out);
Status write_safetensors(const std::string & path, const std::vector<SafetensorsTensor> & tensors,
                         const std::vector<std::pair<std::string, std::string>> & metadata);

// Writes a whole file atomically-ish (temp file + rename).
Status write_file(const std::string & path, const void * data, size_t size);

}  // namespace sdgo::formats
