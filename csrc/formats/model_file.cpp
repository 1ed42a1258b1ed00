#include "formats/model_file.h"

#include <cstring>

namespace sdgo::formats {

namespace {

struct GgmlTypeRow {
    int32_t id;
    const char * name;
    int64_t block;
    size_t size;
};

// spec-formats.md §2.1 (ggml's type table; removed ids are absent).
const GgmlTypeRow kGgmlTypes[] = {
    {0, "f32", 1, 4},         {1, "f16", 1, 2},          {2, "q4_0", 32, 18},     {3, "q4_1", 32, 20},
    {6, "q5_0", 32, 22},      {7, "q5_1", 32, 24},       {8, "q8_0", 32, 34},     {9, "q8_1", 32, 36},
    {10, "q2_K", 256, 84},    {11, "q3_K", 256, 110},    {12, "q4_K", 256, 144},  {13, "q5_K", 256, 176},
    {14, "q6_K", 256, 210},   {15, "q8_K", 256, 292},    {16, "iq2_xxs", 256, 66}, {17, "iq2_xs", 256, 74},
    {18, "iq3_xxs", 256, 98}, {19, "iq1_s", 256, 50},    {20, "iq4_nl", 32, 18},  {21, "iq3_s", 256, 110},
    {22, "iq2_s", 256, 82},   {23, "iq4_xs", 256, 136},  {24, "i8", 1, 1},        {25, "i16", 1, 2},
    {26, "i32", 1, 4},        {27, "i64", 1, 8},         {28, "f64", 1, 8},       {29, "iq1_m", 256, 56},
    {30, "bf16", 1, 2},       {34, "tq1_0", 256, 54},    {35, "tq2_0", 256, 66},  {39, "mxfp4", 32, 17},
    {40, "nvfp4", 64, 36},    {41, "q1_0", 128, 18},     {42, "q2_0", 64, 18},
};

bool mul_ok(uint64_t a, uint64_t b, uint64_t * out) {
    if (a != 0 && b > UINT64_MAX / a) return false;
    *out = a * b;
    return true;
}

}  // namespace

bool ggml_type_info(int32_t id, int64_t * block_size, size_t * type_size, const char ** name) {
    for (const auto & r : kGgmlTypes) {
        if (r.id == id) {
            if (block_size) *block_size = r.block;
            if (type_size) *type_size = r.size;
            if (name) *name = r.name;
            return true;
        }
    }
    return false;
}

const char * ggml_type_name(int32_t id) {
    const char * n = "?";
    ggml_type_info(id, nullptr, nullptr, &n);
    return n;
}

Status ggml_nbytes(int32_t id, const int64_t ne[4], uint64_t * out) {
    int64_t blk;
    size_t tsz;
    if (!ggml_type_info(id, &blk, &tsz, nullptr)) return error(SDGO_ERR_FORMAT, "unknown tensor type id %d", id);
    for (int i = 0; i < 4; i++)
        if (ne[i] < 0) return error(SDGO_ERR_FORMAT, "negative dimension %lld", (long long)ne[i]);
    uint64_t nel = 1;
    for (int i = 0; i < 4; i++)
        if (!mul_ok(nel, (uint64_t)ne[i], &nel) || nel > (uint64_t)INT64_MAX)
            return error(SDGO_ERR_FORMAT, "element count overflows 64 bits");
    if (ne[0] % blk != 0)
        return error(SDGO_ERR_FORMAT, "row length %lld is not a multiple of the %s block size %lld", (long long)ne[0],
                     ggml_type_name(id), (long long)blk);
    uint64_t b = (uint64_t)(ne[0] / blk);
    if (!mul_ok(b, tsz, &b) || !mul_ok(b, (uint64_t)ne[1], &b) || !mul_ok(b, (uint64_t)ne[2], &b) ||
        !mul_ok(b, (uint64_t)ne[3], &b) || b > (uint64_t)SIZE_MAX / 2)
        return error(SDGO_ERR_FORMAT, "tensor byte size overflows");
    *out = b;
    return Status();
}

const char * stored_type_name(StoredType t) {
    switch (t) {
        case StoredType::ggml: return "ggml";
        case StoredType::u8: return "u8";
        case StoredType::boolean: return "bool";
        case StoredType::u16: return "u16";
        case StoredType::u32: return "u32";
        case StoredType::u64: return "u64";
        case StoredType::c64: return "c64";
        case StoredType::c128: return "c128";
        case StoredType::f8_e4m3: return "f8_e4m3";
        case StoredType::f8_e5m2: return "f8_e5m2";
        case StoredType::f8_e8m0: return "f8_e8m0";
        case StoredType::f8_e4m3fnuz: return "f8_e4m3fnuz";
        case StoredType::f8_e5m2fnuz: return "f8_e5m2fnuz";
        case StoredType::f4: return "f4";
        case StoredType::f6_e2m3: return "f6_e2m3";
        case StoredType::f6_e3m2: return "f6_e3m2";
    }
    return "?";
}

int stored_type_bits(StoredType t) {
    switch (t) {
        case StoredType::ggml: return 0;
        case StoredType::u8: case StoredType::boolean: case StoredType::f8_e4m3: case StoredType::f8_e5m2:
        case StoredType::f8_e8m0: case StoredType::f8_e4m3fnuz: case StoredType::f8_e5m2fnuz: return 8;
        case StoredType::u16: return 16;
        case StoredType::u32: return 32;
        case StoredType::u64: case StoredType::c64: return 64;
        case StoredType::c128: return 128;
        case StoredType::f4: return 4;
        case StoredType::f6_e2m3: case StoredType::f6_e3m2: return 6;
    }
    return 0;
}

std::string TensorEntry::type_name() const {
    return is_ggml() ? ggml_type_name(type_id()) : stored_type_name(stored);
}

std::string TensorEntry::shape_str() const {
    std::string s = "[";
    for (int i = n_dims - 1; i >= 0; i--) {
        s += std::to_string(ne[i]);
        if (i) s += ", ";
    }
    return s + "]";
}

const TensorEntry * ModelFiles::find(const std::string & name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors[it->second];
}

TensorEntry * ModelFiles::find_mut(const std::string & name) {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors[it->second];
}

void ModelFiles::reindex() {
    index_.clear();
    for (size_t i = 0; i < tensors.size(); i++) index_[tensors[i].name] = i;
}

Status ModelFiles::add(TensorEntry t) {
    if (index_.count(t.name)) return error(SDGO_ERR_FORMAT, "duplicate tensor name \"%s\"", t.name.c_str());
    index_[t.name] = tensors.size();
    tensors.push_back(std::move(t));
    return Status();
}

uint8_t * ModelFiles::alloc_owned(size_t n) {
    owned_.emplace_back(new uint8_t[n > 0 ? n : 1]());
    return owned_.back().get();
}

int ModelFiles::add_file(const std::string & path, const std::string & format, std::shared_ptr<MappedFile> map) {
    files.push_back(SourceFile{path, format, std::move(map)});
    return (int)files.size() - 1;
}

const std::string * ModelFiles::meta(const std::string & key) const {
    for (const auto & kv : metadata)
        if (kv.first == key) return &kv.second;
    return nullptr;
}

void ModelFiles::set_meta(const std::string & key, const std::string & value) {
    for (auto & kv : metadata)
        if (kv.first == key) { kv.second = value; return; }
    metadata.emplace_back(key, value);
}

uint64_t ModelFiles::total_file_bytes() const {
    uint64_t s = 0;
    for (const auto & f : files) s += f.map ? f.map->size() : 0;
    return s;
}

Status ModelFiles::merge(ModelFiles && other, const std::string & prefix) {
    int base = (int)files.size();
    for (auto & f : other.files) files.push_back(std::move(f));
    for (auto & t : other.tensors) {
        t.name = prefix + t.name;
        if (t.file_index >= 0) t.file_index += base;
        SDGO_TRY(add(std::move(t)));
    }
    for (auto & kv : other.metadata) set_meta(prefix.empty() ? kv.first : prefix + kv.first, kv.second);
    for (auto & o : other.owned_) owned_.push_back(std::move(o));
    other.tensors.clear();
    other.files.clear();
    other.metadata.clear();
    other.owned_.clear();
    other.index_.clear();
    return Status();
}

Status shape_to_ne(const std::vector<int64_t> & shape, TensorEntry * t) {
    for (int i = 0; i < 4; i++) t->ne[i] = 1;
    uint64_t nel = 1;
    for (int64_t d : shape) {
        if (d < 0) return error(SDGO_ERR_FORMAT, "negative dimension %lld", (long long)d);
        if (!mul_ok(nel, (uint64_t)d, &nel) || nel > (uint64_t)INT64_MAX)
            return error(SDGO_ERR_FORMAT, "shape element count overflows 64 bits");
    }
    size_t r = shape.size();
    if (r == 0) {
        t->n_dims = 1;
        return Status();
    }
    if (r <= 4) {
        for (size_t i = 0; i < r; i++) t->ne[i] = shape[r - 1 - i];
        t->n_dims = (int)r;
    } else {
        for (size_t i = 0; i < 3; i++) t->ne[i] = shape[r - 1 - i];
        int64_t outer = 1;
        for (size_t i = 0; i + 3 < r; i++) outer *= shape[i];  // cannot overflow: total checked above
        t->ne[3] = outer;
        t->n_dims = 4;
    }
    return Status();
}

float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t man = h & 0x3FF;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else {
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            man &= 0x3FF;
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | (man << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7F800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

uint16_t float_to_half(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    uint32_t a = u & 0x7FFFFFFF;
    if (a > 0x7F800000) return (uint16_t)(sign | 0x7E00);
    if (a >= 0x477FF000) return (uint16_t)(sign | 0x7C00);  // rounds to inf
    if (a < 0x38800000) {  // subnormal or zero in half
        if (a < 0x33000000) return (uint16_t)sign;
        uint32_t e = a >> 23;
        uint32_t m = (a & 0x7FFFFF) | 0x800000;
        uint32_t shift = 126 - e;  // in [14, 24]: value = M * 2^-24 >> shift in half-subnormal units
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        uint32_t r = m >> shift;
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((a >> 13) - (112u << 10));
    uint32_t rem = a & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

float bfloat_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

Status tensor_to_f32(const TensorEntry & t, std::vector<float> * out) {
    int64_t n = t.nelements();
    const uint8_t * p = t.data;
    auto need = [&](uint64_t esz) -> Status {
        uint64_t b;
        if (!mul_ok((uint64_t)n, esz, &b) || b != t.nbytes)
            return error(SDGO_ERR_FORMAT, "%s: byte size mismatch", t.name.c_str());
        return Status();
    };
    out->assign((size_t)n, 0.0f);
    float * o = out->data();
    if (t.is_ggml()) {
        switch (t.type) {
            case DType::f32: SDGO_TRY(need(4)); for (int64_t i = 0; i < n; i++) std::memcpy(&o[i], p + 4 * i, 4); return Status();
            case DType::f16: SDGO_TRY(need(2)); for (int64_t i = 0; i < n; i++) { uint16_t h; std::memcpy(&h, p + 2 * i, 2); o[i] = half_to_float(h); } return Status();
            case DType::bf16: SDGO_TRY(need(2)); for (int64_t i = 0; i < n; i++) { uint16_t h; std::memcpy(&h, p + 2 * i, 2); o[i] = bfloat_to_float(h); } return Status();
            case DType::f64: SDGO_TRY(need(8)); for (int64_t i = 0; i < n; i++) { double d; std::memcpy(&d, p + 8 * i, 8); o[i] = (float)d; } return Status();
            case DType::i8: SDGO_TRY(need(1)); for (int64_t i = 0; i < n; i++) o[i] = (float)(int8_t)p[i]; return Status();
            case DType::i16: SDGO_TRY(need(2)); for (int64_t i = 0; i < n; i++) { int16_t v; std::memcpy(&v, p + 2 * i, 2); o[i] = (float)v; } return Status();
            case DType::i32: SDGO_TRY(need(4)); for (int64_t i = 0; i < n; i++) { int32_t v; std::memcpy(&v, p + 4 * i, 4); o[i] = (float)v; } return Status();
            case DType::i64: SDGO_TRY(need(8)); for (int64_t i = 0; i < n; i++) { int64_t v; std::memcpy(&v, p + 8 * i, 8); o[i] = (float)v; } return Status();
            default: break;
        }
    } else {
        switch (t.stored) {
            case StoredType::u8: case StoredType::boolean: SDGO_TRY(need(1)); for (int64_t i = 0; i < n; i++) o[i] = (float)p[i]; return Status();
            case StoredType::u16: SDGO_TRY(need(2)); for (int64_t i = 0; i < n; i++) { uint16_t v; std::memcpy(&v, p + 2 * i, 2); o[i] = (float)v; } return Status();
            case StoredType::u32: SDGO_TRY(need(4)); for (int64_t i = 0; i < n; i++) { uint32_t v; std::memcpy(&v, p + 4 * i, 4); o[i] = (float)v; } return Status();
            case StoredType::u64: SDGO_TRY(need(8)); for (int64_t i = 0; i < n; i++) { uint64_t v; std::memcpy(&v, p + 8 * i, 8); o[i] = (float)v; } return Status();
            default: break;
        }
    }
    out->clear();
    return error(SDGO_ERR_UNSUPPORTED, "%s: no f32 conversion for type %s", t.name.c_str(), t.type_name().c_str());
}

}  // namespace sdgo::formats
