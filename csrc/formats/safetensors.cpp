#include "formats/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "formats/json.h"

namespace sdgo::formats {

namespace {

struct DtypeRow {
    const char * name;
    StoredType stored;
    DType type;
    int bits;
};

const DtypeRow kDtypes[] = {
    {"BOOL", StoredType::boolean, DType::f32, 8},
    {"F4", StoredType::f4, DType::f32, 4},
    {"F6_E2M3", StoredType::f6_e2m3, DType::f32, 6},
    {"F6_E3M2", StoredType::f6_e3m2, DType::f32, 6},
    {"U8", StoredType::u8, DType::f32, 8},
    {"I8", StoredType::ggml, DType::i8, 8},
    {"F8_E5M2", StoredType::f8_e5m2, DType::f32, 8},
    {"F8_E4M3", StoredType::f8_e4m3, DType::f32, 8},
    {"F8_E8M0", StoredType::f8_e8m0, DType::f32, 8},
    {"F8_E4M3FNUZ", StoredType::f8_e4m3fnuz, DType::f32, 8},
    {"F8_E5M2FNUZ", StoredType::f8_e5m2fnuz, DType::f32, 8},
    {"I16", StoredType::ggml, DType::i16, 16},
    {"U16", StoredType::u16, DType::f32, 16},
    {"F16", StoredType::ggml, DType::f16, 16},
    {"BF16", StoredType::ggml, DType::bf16, 16},
    {"I32", StoredType::ggml, DType::i32, 32},
    {"U32", StoredType::u32, DType::f32, 32},
    {"F32", StoredType::ggml, DType::f32, 32},
    {"C64", StoredType::c64, DType::f32, 64},
    {"F64", StoredType::ggml, DType::f64, 64},
    {"I64", StoredType::ggml, DType::i64, 64},
    {"U64", StoredType::u64, DType::f32, 64},
};

bool mul_ok(uint64_t a, uint64_t b, uint64_t * out) {
    if (a != 0 && b > UINT64_MAX / a) return false;
    *out = a * b;
    return true;
}

std::string dir_of(const std::string & p) {
    size_t k = p.find_last_of('/');
    return k == std::string::npos ? std::string(".") : p.substr(0, k);
}

}  // namespace

bool safetensors_dtype(const std::string & name, StoredType * stored, DType * type, int * bits) {
    for (const auto & r : kDtypes) {
        if (name == r.name) {
            *stored = r.stored;
            *type = r.type;
            *bits = r.bits;
            return true;
        }
    }
    return false;
}

const char * safetensors_dtype_name(const TensorEntry & t) {
    for (const auto & r : kDtypes)
        if (r.stored == t.stored && (t.stored != StoredType::ggml || r.type == t.type)) return r.name;
    return nullptr;
}

Status read_safetensors(std::shared_ptr<MappedFile> file, ModelFiles * out) {
    const std::string & path = file->path();
    const size_t size = file->size();
    if (size < 8) return error(SDGO_ERR_FORMAT, "%s: safetensors file too small (%zu bytes)", path.c_str(), size);
    uint64_t n;
    std::memcpy(&n, file->data(), 8);
    if (n > kSafetensorsMaxHeader)
        return error(SDGO_ERR_FORMAT, "%s: safetensors header length %llu exceeds the 100000000-byte limit", path.c_str(),
                     (unsigned long long)n);
    if (n > size - 8)
        return error(SDGO_ERR_FORMAT, "%s: safetensors header length %llu is larger than the file (%zu bytes)",
                     path.c_str(), (unsigned long long)n, size);
    const char * hdr = reinterpret_cast<const char *>(file->data() + 8);
    Json root;
    Status st = json_parse(hdr, (size_t)n, &root, 8);
    if (!st.ok()) return st.wrap(path + ": safetensors header");
    if (root.kind != Json::object) return error(SDGO_ERR_FORMAT, "%s: safetensors header is not a JSON object", path.c_str());

    const uint64_t buf_start = 8 + n;
    const uint64_t buf_size = size - buf_start;
    struct Info {
        const std::string * name;
        StoredType stored;
        DType type;
        std::vector<int64_t> shape;
        uint64_t begin, end;
    };
    std::vector<Info> infos;
    infos.reserve(root.members.size());
    std::vector<std::pair<std::string, std::string>> meta;
    for (const auto & m : root.members) {
        const std::string & name = m.first;
        const Json & v = m.second;
        if (name == "__metadata__") {
            if (v.kind == Json::null_) continue;
            if (v.kind != Json::object) return error(SDGO_ERR_FORMAT, "%s: __metadata__ is not an object", path.c_str());
            for (const auto & kv : v.members) {
                if (kv.second.kind != Json::string)
                    return error(SDGO_ERR_FORMAT, "%s: __metadata__ value of \"%s\" is not a string", path.c_str(),
                                 kv.first.c_str());
                meta.emplace_back(kv.first, kv.second.str);
            }
            continue;
        }
        if (v.kind != Json::object)
            return error(SDGO_ERR_FORMAT, "%s: tensor \"%s\": entry is not an object", path.c_str(), name.c_str());
        const Json * dt = v.get("dtype");
        const Json * sh = v.get("shape");
        const Json * of = v.get("data_offsets");
        if (!dt || dt->kind != Json::string)
            return error(SDGO_ERR_FORMAT, "%s: tensor \"%s\": missing dtype", path.c_str(), name.c_str());
        if (!sh || sh->kind != Json::array)
            return error(SDGO_ERR_FORMAT, "%s: tensor \"%s\": missing shape", path.c_str(), name.c_str());
        if (!of || of->kind != Json::array || of->items.size() != 2 || !of->items[0].is_uint() || !of->items[1].is_uint())
            return error(SDGO_ERR_FORMAT, "%s: tensor \"%s\": data_offsets must be two non-negative integers", path.c_str(),
                         name.c_str());
        Info inf;
        inf.name = &name;
        int bits;
        if (!safetensors_dtype(dt->str, &inf.stored, &inf.type, &bits))
            return error(SDGO_ERR_FORMAT, "%s: tensor \"%s\": unknown dtype \"%s\"", path.c_str(), name.c_str(),
                         dt->str.c_str());
        uint64_t nel = 1;
        for (const auto & d : sh->items) {
            if (!d.is_uint() || d.mag > (uint64_t)INT64_MAX)
                return error(SDGO_ERR_FORMAT, "%s: tensor \"%s\": shape entries must be non-negative integers",
                             path.c_str(), name.c_str());
            if (!mul_ok(nel, d.mag, &nel))
                return error(SDGO_ERR_FORMAT, "%s: tensor \"%s\": shape product overflows 64 bits", path.c_str(),
                             name.c_str());
            inf.shape.push_back((int64_t)d.mag);
        }
        uint64_t nbits;
        if (!mul_ok(nel, (uint64_t)bits, &nbits) || nel > (uint64_t)INT64_MAX)
            return error(SDGO_ERR_FORMAT, "%s: tensor \"%s\": shape x dtype size overflows", path.c_str(), name.c_str());
        if (nbits % 8 != 0)
            return error(SDGO_ERR_FORMAT, "%s: tensor \"%s\": %llu elements of %s do not fill whole bytes", path.c_str(),
                         name.c_str(), (unsigned long long)nel, dt->str.c_str());
        inf.begin = of->items[0].mag;
        inf.end = of->items[1].mag;
        if (inf.end < inf.begin)
            return error(SDGO_ERR_FORMAT, "%s: tensor \"%s\": data_offsets end %llu before begin %llu", path.c_str(),
                         name.c_str(), (unsigned long long)inf.end, (unsigned long long)inf.begin);
        if (inf.end - inf.begin != nbits / 8)
            return error(SDGO_ERR_FORMAT, "%s: tensor \"%s\": byte length %llu does not match shape x dtype (%llu bytes)",
                         path.c_str(), name.c_str(), (unsigned long long)(inf.end - inf.begin),
                         (unsigned long long)(nbits / 8));
        infos.push_back(std::move(inf));
    }
    std::vector<size_t> order(infos.size());
    for (size_t i = 0; i < order.size(); i++) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        if (infos[a].begin != infos[b].begin) return infos[a].begin < infos[b].begin;
        return infos[a].end < infos[b].end;
    });
    uint64_t expect = 0;
    for (size_t k : order) {
        const Info & inf = infos[k];
        if (inf.begin != expect)
            return error(SDGO_ERR_FORMAT, "%s: tensor \"%s\": data_offsets begin at %llu, expected %llu (gap or overlap)",
                         path.c_str(), inf.name->c_str(), (unsigned long long)inf.begin, (unsigned long long)expect);
        expect = inf.end;
    }
    if (expect != buf_size)
        return error(SDGO_ERR_FORMAT, "%s: tensors cover %llu bytes but the data buffer holds %llu", path.c_str(),
                     (unsigned long long)expect, (unsigned long long)buf_size);

    int fi = out->add_file(path, "safetensors", file);
    for (const Info & inf : infos) {
        TensorEntry t;
        t.name = *inf.name;
        t.source_name = *inf.name;
        t.stored = inf.stored;
        t.type = inf.type;
        SDGO_TRY(shape_to_ne(inf.shape, &t).wrap(path + ": tensor \"" + *inf.name + "\""));
        t.file_index = fi;
        t.file_offset = buf_start + inf.begin;
        t.nbytes = inf.end - inf.begin;
        t.data = file->data() + t.file_offset;
        SDGO_TRY(out->add(std::move(t)).wrap(path));
    }
    for (auto & kv : meta) out->set_meta(kv.first, kv.second);
    return Status();
}

Status load_safetensors(const std::string & path, ModelFiles * out) {
    std::shared_ptr<MappedFile> f;
    SDGO_TRY(MappedFile::open(path, &f));
    return read_safetensors(f, out);
}

Status load_safetensors_index(const std::string & index_path, ModelFiles * out) {
    std::shared_ptr<MappedFile> f;
    SDGO_TRY(MappedFile::open(index_path, &f));
    if (f->size() > kSafetensorsMaxHeader)
        return error(SDGO_ERR_FORMAT, "%s: index file too large", index_path.c_str());
    Json root;
    SDGO_TRY(json_parse(reinterpret_cast<const char *>(f->data()), f->size(), &root).wrap(index_path));
    const Json * wm = root.get("weight_map");
    if (!wm || wm->kind != Json::object || wm->members.empty())
        return error(SDGO_ERR_FORMAT, "%s: sharded index has no weight_map", index_path.c_str());
    std::vector<std::string> shards;
    std::set<std::string> seen;
    for (const auto & m : wm->members) {
        if (m.second.kind != Json::string)
            return error(SDGO_ERR_FORMAT, "%s: weight_map entry \"%s\" is not a file name", index_path.c_str(),
                         m.first.c_str());
        const std::string & s = m.second.str;
        if (s.empty() || s.find('/') != std::string::npos || s.find('\\') != std::string::npos || s == "." || s == "..")
            return error(SDGO_ERR_FORMAT, "%s: shard name \"%s\" is not a plain file name", index_path.c_str(), s.c_str());
        if (seen.insert(s).second) shards.push_back(s);
    }
    std::string dir = dir_of(index_path);
    ModelFiles all;
    for (const auto & s : shards) SDGO_TRY(load_safetensors(dir + "/" + s, &all));
    for (const auto & m : wm->members) {
        const TensorEntry * t = all.find(m.first);
        if (!t)
            return error(SDGO_ERR_FORMAT, "%s: tensor \"%s\" is missing from shard %s", index_path.c_str(),
                         m.first.c_str(), m.second.str.c_str());
        if (all.files[(size_t)t->file_index].path != dir + "/" + m.second.str)
            return error(SDGO_ERR_FORMAT, "%s: tensor \"%s\" found in a different shard than %s", index_path.c_str(),
                         m.first.c_str(), m.second.str.c_str());
    }
    const Json * md = root.get("metadata");
    if (md && md->kind == Json::object)
        for (const auto & kv : md->members) {
            if (kv.second.kind == Json::number) all.set_meta("index." + kv.first, strprintf("%.17g", kv.second.num));
            else if (kv.second.kind == Json::string) all.set_meta("index." + kv.first, kv.second.str);
        }
    return out->merge(std::move(all), "");
}

Status encode_safetensors(const std::vector<SafetensorsTensor> & tensors,
                          const std::vector<std::pair<std::string, std::string>> & metadata,
                          std::vector<uint8_t> * out) {
    struct W {
        const SafetensorsTensor * t;
        int bits;
    };
    std::vector<W> ws;
    std::set<std::string> names;
    for (const auto & t : tensors) {
        StoredType s;
        DType d;
        int bits;
        if (!safetensors_dtype(t.dtype, &s, &d, &bits))
            return error(SDGO_ERR_INVALID_ARGUMENT, "tensor \"%s\": unknown safetensors dtype \"%s\"", t.name.c_str(),
                         t.dtype.c_str());
        if (t.name == "__metadata__" || !names.insert(t.name).second)
            return error(SDGO_ERR_INVALID_ARGUMENT, "tensor name \"%s\" is reserved or duplicated", t.name.c_str());
        uint64_t nel = 1;
        for (int64_t dim : t.shape)
            if (dim < 0 || !mul_ok(nel, (uint64_t)dim, &nel))
                return error(SDGO_ERR_INVALID_ARGUMENT, "tensor \"%s\": bad shape", t.name.c_str());
        uint64_t nbits;
        if (!mul_ok(nel, (uint64_t)bits, &nbits) || nbits % 8 != 0 || nbits / 8 != t.nbytes)
            return error(SDGO_ERR_INVALID_ARGUMENT, "tensor \"%s\": %llu bytes do not match shape x dtype", t.name.c_str(),
                         (unsigned long long)t.nbytes);
        ws.push_back({&t, bits});
    }
    std::stable_sort(ws.begin(), ws.end(), [](const W & a, const W & b) {
        if (a.bits != b.bits) return a.bits > b.bits;
        return a.t->name < b.t->name;
    });
    std::string h = "{";
    bool first = true;
    if (!metadata.empty()) {
        h += "\"__metadata__\":{";
        for (size_t i = 0; i < metadata.size(); i++) {
            if (i) h += ",";
            json_escape(metadata[i].first, &h);
            h += ":";
            json_escape(metadata[i].second, &h);
        }
        h += "}";
        first = false;
    }
    uint64_t off = 0;
    for (const auto & w : ws) {
        if (!first) h += ",";
        first = false;
        json_escape(w.t->name, &h);
        h += ":{\"dtype\":";
        json_escape(w.t->dtype, &h);
        h += ",\"shape\":[";
        for (size_t i = 0; i < w.t->shape.size(); i++) {
            if (i) h += ",";
            h += std::to_string(w.t->shape[i]);
        }
        h += "],\"data_offsets\":[" + std::to_string(off) + "," + std::to_string(off + w.t->nbytes) + "]}";
        off += w.t->nbytes;
    }
    h += "}";
    while (h.size() % 8) h.push_back(' ');
    out->clear();
    out->resize(8 + h.size() + off);
    uint64_t n = h.size();
    std::memcpy(out->data(), &n, 8);
    std::memcpy(out->data() + 8, h.data(), h.size());
    uint8_t * p = out->data() + 8 + h.size();
    for (const auto & w : ws) {
        if (w.t->nbytes) std::memcpy(p, w.t->data, w.t->nbytes);
        p += w.t->nbytes;
    }
    return Status();
}

Status write_file(const std::string & path, const void * data, size_t size) {
    std::string tmp = path + ".tmp";
    FILE * f = std::fopen(tmp.c_str(), "wb");
    if (!f) return error(SDGO_ERR_IO, "%s: cannot create: %s", tmp.c_str(), strerror(errno));
    bool ok = size == 0 || std::fwrite(data, 1, size, f) == size;
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) {
        std::remove(tmp.c_str());
        return error(SDGO_ERR_IO, "%s: write failed", tmp.c_str());
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        return error(SDGO_ERR_IO, "%s: cannot rename into place: %s", path.c_str(), strerror(errno));
    }
    return Status();
}

Status write_safetensors(const std::string & path, const std::vector<SafetensorsTensor> & tensors,
                         const std::vector<std::pair<std::string, std::string>> & metadata) {
    std::vector<uint8_t> buf;
    SDGO_TRY(encode_safetensors(tensors, metadata, &buf));
    return write_file(path, buf.data(), buf.size());
}

}  // namespace sdgo::formats
