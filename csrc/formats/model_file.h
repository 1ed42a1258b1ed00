// model_file.h — the loaded-model representation shared by every reader.
//
// A ModelFiles holds a list of tensors (name, element type, shape in ggml
// order, pointer to the bytes), string metadata, and the files they came
// from. Tensor bytes point into a read-only memory mapping of the source file
// whenever the stored type is used as is (zero copy; NOT necessarily aligned
// to the element size — safetensors and torch offsets are arbitrary), or into
// a buffer the ModelFiles owns (e.g. a transposed tensor). The pointers stay
// valid for the life of the ModelFiles.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/status.h"
#include "formats/mapped_file.h"
#include "types/types.h"

namespace sdgo::formats {

// Element types a file can store. ggml types are represented by their ggml id
// (StoredType::ggml + TensorEntry::type); the others have no ggml equivalent
// and are kept as raw bytes for the model code to convert or ignore.
enum class StoredType : int32_t {
    ggml = 0,
    u8, boolean, u16, u32, u64, c64, c128,
    f8_e4m3, f8_e5m2, f8_e8m0, f8_e4m3fnuz, f8_e5m2fnuz, f4, f6_e2m3, f6_e3m2,
};
const char * stored_type_name(StoredType t);   // "u8", "f8_e4m3", ...; "ggml" for ggml
int stored_type_bits(StoredType t);            // bits per element (0 for ggml)

// ggml's block layout for a type id, from the engine's type table
// (types/types.h), which has a row for every id ggml knows, including types
// the engine cannot compute with. Returns false for ids that are unknown or
// removed (4, 5, 31-33, 36-38, >= 43).
bool ggml_type_info(int32_t id, int64_t * block_size, size_t * type_size, const char ** name);
// Name for a ggml id, "?" when unknown.
const char * ggml_type_name(int32_t id);

// Bytes of a tensor with shape ne[4] (ggml order) of ggml type id; checks the
// row-length rule and overflow. SDGO_ERR_FORMAT on any violation.
Status ggml_nbytes(int32_t id, const int64_t ne[4], uint64_t * out);

struct TensorEntry {
    std::string name;          // canonical name (formats/naming), or the stored one before naming
    std::string source_name;   // the name exactly as stored in the file
    StoredType stored = StoredType::ggml;
    DType type = DType::f32;   // the ggml type when stored == ggml
    int n_dims = 1;            // number of meaningful dims (1..4)
    int64_t ne[4] = {1, 1, 1, 1};  // ggml order: ne[0] is the contiguous dimension
    const uint8_t * data = nullptr;
    uint64_t nbytes = 0;
    int file_index = -1;       // index into ModelFiles::files; -1 for owned buffers
    uint64_t file_offset = 0;  // offset of data within that file
    int32_t type_id() const { return static_cast<int32_t>(type); }
    int64_t nelements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
    bool is_ggml() const { return stored == StoredType::ggml; }
    std::string type_name() const;   // ggml name ("f16", "q4_0") or stored type name
    // PyTorch-order shape string "[320, 4, 3, 3]".
    std::string shape_str() const;
};

struct SourceFile {
    std::string path;
    std::string format;   // "safetensors", "gguf", "torch-zip", "torch-legacy"
    std::shared_ptr<MappedFile> map;
};

class ModelFiles {
public:
    std::vector<TensorEntry> tensors;
    std::vector<std::pair<std::string, std::string>> metadata;  // in file order; GGUF values rendered as text
    std::vector<SourceFile> files;

    // Lookup by canonical name (call reindex() after renaming).
    const TensorEntry * find(const std::string & name) const;
    bool has(const std::string & name) const { return find(name) != nullptr; }
    TensorEntry * find_mut(const std::string & name);
    void reindex();
    // Adds a tensor; fails on a duplicate name.
    Status add(TensorEntry t);
    // A zero-initialised buffer owned by this object.
    uint8_t * alloc_owned(size_t n);
    // Adds a file and returns its index.
    int add_file(const std::string & path, const std::string & format, std::shared_ptr<MappedFile> map);
    const std::string * meta(const std::string & key) const;
    void set_meta(const std::string & key, const std::string & value);
    uint64_t total_file_bytes() const;

    // Moves everything from other into this, prefixing tensor names with
    // `prefix`. Fails on duplicate names.
    Status merge(ModelFiles && other, const std::string & prefix);

private:
    std::unordered_map<std::string, size_t> index_;
    std::vector<std::unique_ptr<uint8_t[]>> owned_;
};

// Fills ne/n_dims from a PyTorch-order shape: ne[0] = last dim. Ranks above
// 4 fold the outermost dims into ne[3]. Fails on negative dims or overflow of
// the element count.
Status shape_to_ne(const std::vector<int64_t> & shape, TensorEntry * t);

// Converts a tensor to f32 (f32, f16, bf16, f64, i8..i64, u8, bool; and the
// ggml block types whose to_f32 the type table provides). For tests and tools.
Status tensor_to_f32(const TensorEntry & t, std::vector<float> * out);


}  // namespace sdgo::formats
