// gguf.h — GGUF v2/v3 reader and writer.
//
// The reader enforces ggml's own rules (§1.5): magic, version 2 or 3 (v1 and
// byte-swapped files are refused), unique non-empty keys, a UINT32
// power-of-two general.alignment, unique tensor names shorter than
// kGGUFMaxName bytes (stable-diffusion.cpp's GGML_MAX_NAME, so its 80-90 byte
// names load), n_dims <= 4, non-negative dims, known type ids with ne[0] a
// multiple of the block size, and offsets exactly sequential with each tensor
// padded to the alignment. A file may end right after the last tensor
// (sd.cpp's converter writes no trailing pad). Every length is bounded by the
// bytes left in the file, so no allocation exceeds a small multiple of the
// file size. The writer produces files that satisfy the same rules, padding
// after the last tensor too.
#pragma once

#include <string>
#include <unordered_set>
#include <vector>

#include "formats/model_file.h"

namespace sdgo::formats {

constexpr uint32_t kGGUFMagic = 0x46554747;  // "GGUF" read as LE u32
constexpr uint32_t kGGUFDefaultAlignment = 32;
constexpr size_t kGGUFMaxName = 160;         // names must be shorter than this
constexpr uint64_t kGGUFMaxLen = 1ull << 30; // string length / array count cap (ggml)

enum GGUFType : int32_t {
    GGUF_UINT8 = 0, GGUF_INT8 = 1, GGUF_UINT16 = 2, GGUF_INT16 = 3, GGUF_UINT32 = 4, GGUF_INT32 = 5,
    GGUF_FLOAT32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_UINT64 = 10, GGUF_INT64 = 11,
    GGUF_FLOAT64 = 12,
};
const char * gguf_type_name(int32_t t);
size_t gguf_scalar_size(int32_t t);  // 0 for STRING/ARRAY/unknown

// One metadata value. Scalars live in u/i/f/b/s by type; arrays keep their
// element type, count and either raw little-endian element bytes (numbers,
// bools) or strings.
struct GGUFValue {
    int32_t type = GGUF_UINT32;
    uint64_t u = 0;
    int64_t i = 0;
    double f = 0;
    bool b = false;
    std::string s;
    int32_t arr_type = -1;
    uint64_t arr_n = 0;
    std::vector<uint8_t> arr_raw;
    std::vector<std::string> arr_str;

    static GGUFValue of_u32(uint32_t v) { GGUFValue x; x.type = GGUF_UINT32; x.u = v; return x; }
    static GGUFValue of_i32(int32_t v) { GGUFValue x; x.type = GGUF_INT32; x.i = v; return x; }
    static GGUFValue of_u64(uint64_t v) { GGUFValue x; x.type = GGUF_UINT64; x.u = v; return x; }
    static GGUFValue of_f32(float v) { GGUFValue x; x.type = GGUF_FLOAT32; x.f = v; return x; }
    static GGUFValue of_bool(bool v) { GGUFValue x; x.type = GGUF_BOOL; x.b = v; return x; }
    static GGUFValue of_str(const std::string & v) { GGUFValue x; x.type = GGUF_STRING; x.s = v; return x; }
    static GGUFValue of_strs(const std::vector<std::string> & v) {
        GGUFValue x; x.type = GGUF_ARRAY; x.arr_type = GGUF_STRING; x.arr_n = v.size(); x.arr_str = v; return x;
    }
    // Array of numbers/bools from raw LE element bytes (n elements of elem_type).
    static GGUFValue of_array(int32_t elem_type, const void * data, uint64_t n);

    std::string render(size_t max_elems = 16) const;  // human-readable text
};

struct GGUFKV {
    std::string key;
    GGUFValue value;
};

struct GGUFTensorInfo {
    std::string name;
    uint32_t n_dims = 1;
    int64_t ne[4] = {1, 1, 1, 1};
    int32_t type = 0;
    uint64_t offset = 0;   // relative to the data section
    uint64_t nbytes = 0;
};

struct GGUFFile {
    uint32_t version = 3;
    uint32_t alignment = kGGUFDefaultAlignment;
    std::vector<GGUFKV> kv;
    std::vector<GGUFTensorInfo> tensors;
    uint64_t data_offset = 0;  // absolute file offset of the data section
    const GGUFValue * get(const std::string & key) const;
};

// Parses the header of a GGUF file and validates every tensor's extent.
Status gguf_parse(const MappedFile & file, GGUFFile * out);
// Parses and appends tensors (zero copy) and rendered metadata to out.
Status read_gguf(std::shared_ptr<MappedFile> file, ModelFiles * out);
Status load_gguf(const std::string & path, ModelFiles * out);

// GGUF v3 writer.
class GGUFWriter {
public:
    void set(const std::string & key, const GGUFValue & v);   // replaces an existing key
    // ne in ggml order; n_dims is computed like ggml_n_dims. `data` must hold
    // exactly the tensor's byte size and stay valid until encode/write. A
    // caller that streams tensor data itself passes data = NULL and uses
    // encode_header.
    Status add_tensor(const std::string & name, int32_t type, const int64_t ne[4], const void * data, uint64_t nbytes);
    // Everything before the data section, its padding included. The data
    // section then holds the tensors in the order added, each padded to
    // alignment() bytes.
    Status encode_header(std::vector<uint8_t> * out) const;
    uint32_t alignment() const;  // general.alignment if set, else the default
    Status encode(std::vector<uint8_t> * out) const;  // header and data; every tensor needs data
    Status write(const std::string & path) const;

private:
    struct T {
        GGUFTensorInfo info;
        const void * data;
    };
    std::vector<GGUFKV> kv_;
    std::vector<T> tensors_;
    std::unordered_set<std::string> names_;  // for the duplicate check in linear time
};

}  // namespace sdgo::formats
