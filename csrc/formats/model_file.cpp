#include "formats/model_file.h"

#include <cstring>

namespace sdgo::formats {

namespace {

bool mul_ok(uint64_t a, uint64_t b, uint64_t * out) {
    if (a != 0 && b > UINT64_MAX / a) return false;
    *out = a * b;
    return true;
}

}  // namespace

bool ggml_type_info(int32_t id, int64_t * block_size, size_t * type_size, const char ** name) {
    const TypeTraits * tt = type_traits(id);  // the engine's one type table (types/types.h)
    if (!tt) return false;
    if (block_size) *block_size = tt->block_size;
    if (type_size) *type_size = tt->type_size;
    if (name) *name = tt->name;
    return true;
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
            case DType::f16: SDGO_TRY(need(2)); for (int64_t i = 0; i < n; i++) { uint16_t h; std::memcpy(&h, p + 2 * i, 2); o[i] = fp16_to_fp32(h); } return Status();
            case DType::bf16: SDGO_TRY(need(2)); for (int64_t i = 0; i < n; i++) { uint16_t h; std::memcpy(&h, p + 2 * i, 2); o[i] = bf16_to_fp32(h); } return Status();
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
