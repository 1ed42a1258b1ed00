#include "formats/gguf.h"

#include <set>

#include "formats/json.h"
#include "formats/safetensors.h"

namespace sdgo::formats {

namespace {

uint64_t pad_to(uint64_t x, uint64_t n) { return (x + n - 1) & ~(n - 1); }

bool is_pow2(uint32_t x) { return x != 0 && (x & (x - 1)) == 0; }

struct Cursor {
    Reader r;
    const std::string & path;
    Status fail(const char * what) const {
        return error(SDGO_ERR_FORMAT, "%s: GGUF: %s at offset %zu (truncated or corrupt file)", path.c_str(), what, r.pos());
    }
    Status str(std::string * s, const char * what) {
        uint64_t n;
        if (!r.read(&n)) return fail(what);
        if (n > kGGUFMaxLen)
            return error(SDGO_ERR_FORMAT, "%s: GGUF: %s length %llu exceeds the 2^30 limit", path.c_str(), what,
                         (unsigned long long)n);
        const uint8_t * p = r.take(n);
        if (!p) return fail(what);
        s->assign(reinterpret_cast<const char *>(p), (size_t)n);
        return Status();
    }
};

Status read_scalar(Cursor & c, int32_t type, GGUFValue * v) {
    v->type = type;
    switch (type) {
        case GGUF_UINT8: { uint8_t x; if (!c.r.read(&x)) return c.fail("value"); v->u = x; v->i = x; return Status(); }
        case GGUF_INT8: { int8_t x; if (!c.r.read(&x)) return c.fail("value"); v->i = x; return Status(); }
        case GGUF_UINT16: { uint16_t x; if (!c.r.read(&x)) return c.fail("value"); v->u = x; v->i = x; return Status(); }
        case GGUF_INT16: { int16_t x; if (!c.r.read(&x)) return c.fail("value"); v->i = x; return Status(); }
        case GGUF_UINT32: { uint32_t x; if (!c.r.read(&x)) return c.fail("value"); v->u = x; v->i = x; return Status(); }
        case GGUF_INT32: { int32_t x; if (!c.r.read(&x)) return c.fail("value"); v->i = x; return Status(); }
        case GGUF_UINT64: { uint64_t x; if (!c.r.read(&x)) return c.fail("value"); v->u = x; return Status(); }
        case GGUF_INT64: { int64_t x; if (!c.r.read(&x)) return c.fail("value"); v->i = x; return Status(); }
        case GGUF_FLOAT32: { float x; if (!c.r.read(&x)) return c.fail("value"); v->f = x; return Status(); }
        case GGUF_FLOAT64: { double x; if (!c.r.read(&x)) return c.fail("value"); v->f = x; return Status(); }
        case GGUF_BOOL: { uint8_t x; if (!c.r.read(&x)) return c.fail("value"); v->b = x != 0; return Status(); }
        case GGUF_STRING: return c.str(&v->s, "string value");
        default: break;
    }
    return error(SDGO_ERR_FORMAT, "%s: GGUF: unknown metadata value type %d", c.path.c_str(), type);
}

template <typename T>
std::string num_str(T v) { return std::to_string(v); }

}  // namespace

const char * gguf_type_name(int32_t t) {
    static const char * names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
    return t >= 0 && t <= 12 ? names[t] : "?";
}

size_t gguf_scalar_size(int32_t t) {
    switch (t) {
        case GGUF_UINT8: case GGUF_INT8: case GGUF_BOOL: return 1;
        case GGUF_UINT16: case GGUF_INT16: return 2;
        case GGUF_UINT32: case GGUF_INT32: case GGUF_FLOAT32: return 4;
        case GGUF_UINT64: case GGUF_INT64: case GGUF_FLOAT64: return 8;
        default: return 0;
    }
}

GGUFValue GGUFValue::of_array(int32_t elem_type, const void * data, uint64_t n) {
    GGUFValue x;
    x.type = GGUF_ARRAY;
    x.arr_type = elem_type;
    x.arr_n = n;
    size_t es = gguf_scalar_size(elem_type);
    x.arr_raw.assign(static_cast<const uint8_t *>(data), static_cast<const uint8_t *>(data) + es * n);
    return x;
}

static std::string render_elem(int32_t t, const uint8_t * p) {
    switch (t) {
        case GGUF_UINT8: return num_str(p[0]);
        case GGUF_INT8: return num_str((int8_t)p[0]);
        case GGUF_BOOL: return p[0] ? "true" : "false";
        case GGUF_UINT16: { uint16_t v; std::memcpy(&v, p, 2); return num_str(v); }
        case GGUF_INT16: { int16_t v; std::memcpy(&v, p, 2); return num_str(v); }
        case GGUF_UINT32: { uint32_t v; std::memcpy(&v, p, 4); return num_str(v); }
        case GGUF_INT32: { int32_t v; std::memcpy(&v, p, 4); return num_str(v); }
        case GGUF_UINT64: { uint64_t v; std::memcpy(&v, p, 8); return num_str(v); }
        case GGUF_INT64: { int64_t v; std::memcpy(&v, p, 8); return num_str(v); }
        case GGUF_FLOAT32: { float v; std::memcpy(&v, p, 4); return strprintf("%.9g", v); }
        case GGUF_FLOAT64: { double v; std::memcpy(&v, p, 8); return strprintf("%.17g", v); }
    }
    return "?";
}

std::string GGUFValue::render(size_t max_elems) const {
    switch (type) {
        case GGUF_UINT8: case GGUF_UINT16: case GGUF_UINT32: case GGUF_UINT64: return num_str(u);
        case GGUF_INT8: case GGUF_INT16: case GGUF_INT32: case GGUF_INT64: return num_str(i);
        case GGUF_FLOAT32: return strprintf("%.9g", f);
        case GGUF_FLOAT64: return strprintf("%.17g", f);
        case GGUF_BOOL: return b ? "true" : "false";
        case GGUF_STRING: return s;
        case GGUF_ARRAY: {
            std::string o = "[";
            uint64_t shown = arr_n < max_elems ? arr_n : max_elems;
            size_t es = gguf_scalar_size(arr_type);
            for (uint64_t k = 0; k < shown; k++) {
                if (k) o += ", ";
                if (arr_type == GGUF_STRING) o += json_quote(arr_str[k]);
                else o += render_elem(arr_type, arr_raw.data() + k * es);
            }
            if (shown < arr_n) o += strprintf(", ... (%llu %s)", (unsigned long long)arr_n, gguf_type_name(arr_type));
            return o + "]";
        }
    }
    return "?";
}

const GGUFValue * GGUFFile::get(const std::string & key) const {
    for (const auto & kv : this->kv)
        if (kv.key == key) return &kv.value;
    return nullptr;
}

Status gguf_parse(const MappedFile & file, GGUFFile * out) {
    const std::string & path = file.path();
    Cursor c{Reader(file.data(), file.size()), path};
    uint32_t magic, version;
    if (!c.r.read(&magic)) return c.fail("magic");
    if (magic != kGGUFMagic) return error(SDGO_ERR_FORMAT, "%s: bad GGUF magic 0x%08x", path.c_str(), magic);
    if (!c.r.read(&version)) return c.fail("version");
    if ((version & 0xFFFF) == 0)
        return error(SDGO_ERR_UNSUPPORTED, "%s: GGUF version field 0x%08x looks byte-swapped (big-endian GGUF is not supported)",
                     path.c_str(), version);
    if (version == 1) return error(SDGO_ERR_UNSUPPORTED, "%s: GGUF version 1 is no longer supported", path.c_str());
    if (version < 2 || version > 3) return error(SDGO_ERR_FORMAT, "%s: unsupported GGUF version %u", path.c_str(), version);
    int64_t n_tensors, n_kv;
    if (!c.r.read(&n_tensors)) return c.fail("tensor count");
    if (!c.r.read(&n_kv)) return c.fail("kv count");
    if (n_tensors < 0 || n_kv < 0) return error(SDGO_ERR_FORMAT, "%s: GGUF: negative tensor or kv count", path.c_str());
    // Minimum record sizes bound the counts by the file size before anything is reserved.
    if ((uint64_t)n_kv > c.r.remaining() / 13) return error(SDGO_ERR_FORMAT, "%s: GGUF: kv count %lld exceeds what the file can hold", path.c_str(), (long long)n_kv);
    GGUFFile g;
    g.version = version;
    g.kv.reserve((size_t)n_kv);
    std::set<std::string> keys;
    for (int64_t k = 0; k < n_kv; k++) {
        GGUFKV kv;
        SDGO_TRY(c.str(&kv.key, "key"));
        if (kv.key.empty()) return error(SDGO_ERR_FORMAT, "%s: GGUF: empty metadata key", path.c_str());
        if (!keys.insert(kv.key).second)
            return error(SDGO_ERR_FORMAT, "%s: GGUF: duplicate metadata key \"%s\"", path.c_str(), kv.key.c_str());
        int32_t type;
        if (!c.r.read(&type)) return c.fail("value type");
        if (type == GGUF_ARRAY) {
            int32_t et;
            uint64_t n;
            if (!c.r.read(&et) || !c.r.read(&n)) return c.fail("array header");
            if (et == GGUF_ARRAY)
                return error(SDGO_ERR_FORMAT, "%s: GGUF: nested arrays are not supported (key \"%s\")", path.c_str(), kv.key.c_str());
            if (n > kGGUFMaxLen)
                return error(SDGO_ERR_FORMAT, "%s: GGUF: array \"%s\" has %llu elements (limit 2^30)", path.c_str(),
                             kv.key.c_str(), (unsigned long long)n);
            kv.value.type = GGUF_ARRAY;
            kv.value.arr_type = et;
            kv.value.arr_n = n;
            if (et == GGUF_STRING) {
                if (n > c.r.remaining() / 8) return c.fail("string array");
                kv.value.arr_str.resize((size_t)n);
                for (uint64_t e = 0; e < n; e++) SDGO_TRY(c.str(&kv.value.arr_str[e], "array string"));
            } else {
                size_t es = gguf_scalar_size(et);
                if (es == 0)
                    return error(SDGO_ERR_FORMAT, "%s: GGUF: array \"%s\" has unknown element type %d", path.c_str(),
                                 kv.key.c_str(), et);
                const uint8_t * p = c.r.take(n * es);  // n <= 2^30, es <= 8: no overflow
                if (!p) return c.fail("array data");
                kv.value.arr_raw.assign(p, p + n * es);
            }
        } else {
            SDGO_TRY(read_scalar(c, type, &kv.value));
        }
        if (kv.key == "general.alignment") {
            if (kv.value.type != GGUF_UINT32)
                return error(SDGO_ERR_FORMAT, "%s: GGUF: general.alignment must be a UINT32, got %s", path.c_str(),
                             gguf_type_name(kv.value.type));
            if (!is_pow2((uint32_t)kv.value.u))
                return error(SDGO_ERR_FORMAT, "%s: GGUF: general.alignment %llu is not a power of two", path.c_str(),
                             (unsigned long long)kv.value.u);
            g.alignment = (uint32_t)kv.value.u;
        }
        g.kv.push_back(std::move(kv));
    }
    if ((uint64_t)n_tensors > c.r.remaining() / 24)
        return error(SDGO_ERR_FORMAT, "%s: GGUF: tensor count %lld exceeds what the file can hold", path.c_str(), (long long)n_tensors);
    g.tensors.reserve((size_t)n_tensors);
    std::set<std::string> names;
    for (int64_t k = 0; k < n_tensors; k++) {
        GGUFTensorInfo t;
        SDGO_TRY(c.str(&t.name, "tensor name"));
        if (t.name.empty()) return error(SDGO_ERR_FORMAT, "%s: GGUF: tensor %lld has an empty name", path.c_str(), (long long)k);
        if (t.name.size() >= kGGUFMaxName)
            return error(SDGO_ERR_FORMAT, "%s: GGUF: tensor name of %zu bytes is too long (limit %zu): %.60s...", path.c_str(),
                         t.name.size(), kGGUFMaxName - 1, t.name.c_str());
        if (!names.insert(t.name).second)
            return error(SDGO_ERR_FORMAT, "%s: GGUF: duplicate tensor name \"%s\"", path.c_str(), t.name.c_str());
        if (!c.r.read(&t.n_dims)) return c.fail("n_dims");
        if (t.n_dims > 4)
            return error(SDGO_ERR_FORMAT, "%s: GGUF: tensor \"%s\" has %u dims (max 4)", path.c_str(), t.name.c_str(), t.n_dims);
        for (uint32_t d = 0; d < t.n_dims; d++) {
            if (!c.r.read(&t.ne[d])) return c.fail("tensor dims");
            if (t.ne[d] < 0)
                return error(SDGO_ERR_FORMAT, "%s: GGUF: tensor \"%s\" has a negative dimension", path.c_str(), t.name.c_str());
        }
        if (!c.r.read(&t.type)) return c.fail("tensor type");
        if (!c.r.read(&t.offset)) return c.fail("tensor offset");
        if (!ggml_type_info(t.type, nullptr, nullptr, nullptr))
            return error(SDGO_ERR_FORMAT, "%s: GGUF: tensor \"%s\" has invalid type id %d", path.c_str(), t.name.c_str(), t.type);
        SDGO_TRY(ggml_nbytes(t.type, t.ne, &t.nbytes).wrap(path + ": GGUF: tensor \"" + t.name + "\""));
        g.tensors.push_back(std::move(t));
    }
    uint64_t expect = 0;
    for (const auto & t : g.tensors) {
        if (t.offset != expect)
            return error(SDGO_ERR_FORMAT, "%s: GGUF: tensor \"%s\" has offset %llu, expected %llu", path.c_str(), t.name.c_str(),
                         (unsigned long long)t.offset, (unsigned long long)expect);
        if (t.nbytes > UINT64_MAX / 2 - expect)
            return error(SDGO_ERR_FORMAT, "%s: GGUF: tensor offsets overflow", path.c_str());
        expect += pad_to(t.nbytes, g.alignment);
    }
    g.data_offset = c.r.pos();
    if (!g.tensors.empty()) {
        g.data_offset = pad_to(c.r.pos(), g.alignment);
        for (const auto & t : g.tensors)
            if (!file.in_bounds(g.data_offset, t.offset) || !file.in_bounds(g.data_offset + t.offset, t.nbytes))
                return error(SDGO_ERR_FORMAT, "%s: GGUF: data of tensor \"%s\" (%llu bytes at %llu) extends past the end of the file (%zu bytes)",
                             path.c_str(), t.name.c_str(), (unsigned long long)t.nbytes,
                             (unsigned long long)(g.data_offset + t.offset), file.size());
    }
    *out = std::move(g);
    return Status();
}

Status read_gguf(std::shared_ptr<MappedFile> file, ModelFiles * out) {
    GGUFFile g;
    SDGO_TRY(gguf_parse(*file, &g));
    int fi = out->add_file(file->path(), "gguf", file);
    for (const auto & gt : g.tensors) {
        TensorEntry t;
        t.name = gt.name;
        t.source_name = gt.name;
        t.stored = StoredType::ggml;
        t.type = static_cast<DType>(gt.type);
        t.n_dims = gt.n_dims == 0 ? 1 : (int)gt.n_dims;
        for (int d = 0; d < 4; d++) t.ne[d] = gt.ne[d];
        t.file_index = fi;
        t.file_offset = g.data_offset + gt.offset;
        t.nbytes = gt.nbytes;
        t.data = file->data() + t.file_offset;
        SDGO_TRY(out->add(std::move(t)).wrap(file->path()));
    }
    for (const auto & kv : g.kv) out->set_meta(kv.key, kv.value.render());
    return Status();
}

Status load_gguf(const std::string & path, ModelFiles * out) {
    std::shared_ptr<MappedFile> f;
    SDGO_TRY(MappedFile::open(path, &f));
    return read_gguf(f, out);
}

// ---- writer ------------------------------------------------------------------

void GGUFWriter::set(const std::string & key, const GGUFValue & v) {
    for (auto & kv : kv_)
        if (kv.key == key) { kv.value = v; return; }
    kv_.push_back(GGUFKV{key, v});
}

Status GGUFWriter::add_tensor(const std::string & name, int32_t type, const int64_t ne[4], const void * data, uint64_t nbytes) {
    if (name.empty() || name.size() >= kGGUFMaxName)
        return error(SDGO_ERR_INVALID_ARGUMENT, "GGUF tensor name must have 1..%zu bytes: \"%s\"", kGGUFMaxName - 1, name.c_str());
    if (names_.count(name)) return error(SDGO_ERR_INVALID_ARGUMENT, "duplicate GGUF tensor name \"%s\"", name.c_str());
    T t;
    t.info.name = name;
    t.info.type = type;
    for (int d = 0; d < 4; d++) t.info.ne[d] = ne[d];
    uint64_t nb;
    SDGO_TRY(ggml_nbytes(type, ne, &nb).wrap("GGUF tensor \"" + name + "\""));
    if (nb != nbytes)
        return error(SDGO_ERR_INVALID_ARGUMENT, "GGUF tensor \"%s\": %llu bytes given, shape needs %llu", name.c_str(),
                     (unsigned long long)nbytes, (unsigned long long)nb);
    t.info.nbytes = nb;
    // ggml_n_dims drops trailing dims of size 1; unlike it, a dimension of
    // size 0 is kept so that an empty tensor keeps its (zero) size.
    uint32_t nd = 1;
    for (uint32_t d = 1; d < 4; d++)
        if (ne[d] != 1) nd = d + 1;
    t.info.n_dims = nd;
    t.data = data;
    tensors_.push_back(std::move(t));
    names_.insert(name);
    return Status();
}

namespace {
void put_bytes(std::vector<uint8_t> * o, const void * p, size_t n) {
    const uint8_t * b = static_cast<const uint8_t *>(p);
    o->insert(o->end(), b, b + n);
}
template <typename T>
void put(std::vector<uint8_t> * o, T v) { put_bytes(o, &v, sizeof(T)); }
void put_str(std::vector<uint8_t> * o, const std::string & s) {
    put<uint64_t>(o, s.size());
    put_bytes(o, s.data(), s.size());
}
}  // namespace

uint32_t GGUFWriter::alignment() const {
    for (const auto & kv : kv_)
        if (kv.key == "general.alignment" && kv.value.type == GGUF_UINT32) return (uint32_t)kv.value.u;
    return kGGUFDefaultAlignment;
}

Status GGUFWriter::encode_header(std::vector<uint8_t> * out) const {
    const uint32_t align = alignment();
    for (const auto & kv : kv_) {
        if (kv.key.empty()) return error(SDGO_ERR_INVALID_ARGUMENT, "empty GGUF metadata key");
        if (kv.key == "general.alignment" && (kv.value.type != GGUF_UINT32 || !is_pow2((uint32_t)kv.value.u)))
            return error(SDGO_ERR_INVALID_ARGUMENT, "general.alignment must be a UINT32 power of two");
        if (kv.value.type == GGUF_ARRAY && (kv.value.arr_type == GGUF_ARRAY ||
                                            (kv.value.arr_type != GGUF_STRING && gguf_scalar_size(kv.value.arr_type) == 0)))
            return error(SDGO_ERR_INVALID_ARGUMENT, "GGUF key \"%s\": bad array element type", kv.key.c_str());
        if (kv.value.type < 0 || kv.value.type > 12)
            return error(SDGO_ERR_INVALID_ARGUMENT, "GGUF key \"%s\": bad value type", kv.key.c_str());
    }
    std::vector<uint8_t> & o = *out;
    o.clear();
    put<uint32_t>(&o, kGGUFMagic);
    put<uint32_t>(&o, 3);
    put<int64_t>(&o, (int64_t)tensors_.size());
    put<int64_t>(&o, (int64_t)kv_.size());
    for (const auto & kv : kv_) {
        put_str(&o, kv.key);
        const GGUFValue & v = kv.value;
        put<int32_t>(&o, v.type);
        switch (v.type) {
            case GGUF_UINT8: put<uint8_t>(&o, (uint8_t)v.u); break;
            case GGUF_INT8: put<int8_t>(&o, (int8_t)v.i); break;
            case GGUF_UINT16: put<uint16_t>(&o, (uint16_t)v.u); break;
            case GGUF_INT16: put<int16_t>(&o, (int16_t)v.i); break;
            case GGUF_UINT32: put<uint32_t>(&o, (uint32_t)v.u); break;
            case GGUF_INT32: put<int32_t>(&o, (int32_t)v.i); break;
            case GGUF_UINT64: put<uint64_t>(&o, v.u); break;
            case GGUF_INT64: put<int64_t>(&o, v.i); break;
            case GGUF_FLOAT32: put<float>(&o, (float)v.f); break;
            case GGUF_FLOAT64: put<double>(&o, v.f); break;
            case GGUF_BOOL: put<uint8_t>(&o, v.b ? 1 : 0); break;
            case GGUF_STRING: put_str(&o, v.s); break;
            case GGUF_ARRAY:
                put<int32_t>(&o, v.arr_type);
                put<uint64_t>(&o, v.arr_n);
                if (v.arr_type == GGUF_STRING) {
                    for (const auto & s : v.arr_str) put_str(&o, s);
                } else {
                    put_bytes(&o, v.arr_raw.data(), v.arr_raw.size());
                }
                break;
        }
    }
    uint64_t off = 0;
    for (const auto & t : tensors_) {
        put_str(&o, t.info.name);
        put<uint32_t>(&o, t.info.n_dims);
        for (uint32_t d = 0; d < t.info.n_dims; d++) put<int64_t>(&o, t.info.ne[d]);
        put<int32_t>(&o, t.info.type);
        put<uint64_t>(&o, off);
        off += pad_to(t.info.nbytes, align);
    }
    if (!tensors_.empty()) o.resize(pad_to(o.size(), align), 0);
    return Status();
}

Status GGUFWriter::encode(std::vector<uint8_t> * out) const {
    for (const auto & t : tensors_)
        if (!t.data && t.info.nbytes > 0)
            return error(SDGO_ERR_INVALID_ARGUMENT, "GGUF tensor \"%s\" has no data", t.info.name.c_str());
    SDGO_TRY(encode_header(out));
    const uint32_t align = alignment();
    for (const auto & t : tensors_) {
        put_bytes(out, t.data, t.info.nbytes);
        out->resize(pad_to(out->size(), align), 0);
    }
    return Status();
}

Status GGUFWriter::write(const std::string & path) const {
    std::vector<uint8_t> buf;
    SDGO_TRY(encode(&buf));
    return write_file(path, buf.data(), buf.size());
}

}  // namespace sdgo::formats
