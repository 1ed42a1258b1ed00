#include "formats/torch_file.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "formats/pickle.h"
#include "formats/zip.h"
#include "util/inflate.h"

namespace sdgo::formats {

namespace {

// Legacy magic number 0x1950a86a20f9469cfc6c as LONG1 little-endian bytes.
const uint8_t kLegacyMagic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

bool mul_ok(uint64_t a, uint64_t b, uint64_t * out) {
    if (a != 0 && b > UINT64_MAX / a) return false;
    *out = a * b;
    return true;
}

struct StorageBytes {
    const uint8_t * data = nullptr;
    uint64_t size = 0;
    uint64_t file_offset = 0;
};

// What strided views of one file may gather into copies together: twice the
// file plus 64 MiB. A view copies at most its storage, but thousands of
// views of one storage would take a thousand times the file's size.
uint64_t gather_budget(uint64_t file_size) { return file_size * 2 + (uint64_t(64) << 20); }

// Materialises one tensor into out (zero copy when contiguous; a strided
// view is gathered into a copy, counted in *gathered against `budget`).
Status make_tensor(const Unpickler & up, const PTensor & pt, const std::vector<StorageBytes> & sb, int file_index,
                   const std::string & name, ModelFiles * out, uint64_t * gathered, uint64_t budget) {
    const PStorage & ps = up.storages[pt.storage];
    const StorageBytes & s = sb[pt.storage];
    const uint64_t es = (uint64_t)pt.elem.size;
    uint64_t nel = 1;
    for (int64_t d : pt.size)
        if (!mul_ok(nel, (uint64_t)d, &nel) || nel > (uint64_t)INT64_MAX)
            return error(SDGO_ERR_FORMAT, "tensor \"%s\": shape product overflows 64 bits", name.c_str());
    uint64_t nbytes;
    if (!mul_ok(nel, es, &nbytes)) return error(SDGO_ERR_FORMAT, "tensor \"%s\": byte size overflows", name.c_str());
    TensorEntry t;
    t.name = name;
    t.source_name = name;
    t.stored = pt.elem.stored;
    t.type = pt.elem.type;
    SDGO_TRY(shape_to_ne(pt.size, &t).wrap("tensor \"" + name + "\""));
    t.nbytes = nbytes;
    // Extent of the view in elements: offset + sum((size-1)*stride) + 1.
    bool contiguous = true;
    uint64_t expect = 1;
    uint64_t extent = (uint64_t)pt.offset;
    for (size_t k = pt.size.size(); k-- > 0;) {
        uint64_t sz = (uint64_t)pt.size[k], st = (uint64_t)pt.stride[k];
        if (sz > 1 && st != expect) contiguous = false;
        if (!mul_ok(expect, sz, &expect)) expect = UINT64_MAX;
        uint64_t span;
        if (sz > 0 && (!mul_ok(sz - 1, st, &span) || span > UINT64_MAX / 2 - extent))
            return error(SDGO_ERR_FORMAT, "tensor \"%s\": strides overflow", name.c_str());
        if (sz > 0) extent += span;
    }
    if (nel > 0) {
        uint64_t end_bytes;
        if (!mul_ok(extent + 1, es, &end_bytes) || end_bytes > s.size)
            return error(SDGO_ERR_FORMAT, "tensor \"%s\" reaches past the end of storage %s (%llu bytes)", name.c_str(),
                         ps.key.c_str(), (unsigned long long)s.size);
    }
    if (contiguous || nel == 0) {
        bool owned = s.file_offset == UINT64_MAX;  // inflated storage held by `out`
        t.file_index = owned ? -1 : file_index;
        t.file_offset = owned ? 0 : s.file_offset + (nel ? (uint64_t)pt.offset * es : 0);
        t.data = nel ? s.data + (uint64_t)pt.offset * es : s.data;
        if (!t.data) t.data = reinterpret_cast<const uint8_t *>("");
    } else {
        // Gather a strided view into an owned buffer. A view larger than its
        // storage would repeat elements (stride 0); refuse it rather than
        // let a tiny file ask for an arbitrary allocation.
        if (nbytes > s.size)
            return error(SDGO_ERR_UNSUPPORTED, "tensor \"%s\" is a broadcast view larger than its storage", name.c_str());
        if (nbytes > budget - std::min(*gathered, budget))
            return error(SDGO_ERR_FORMAT,
                         "tensor \"%s\": strided views would be copied past %llu bytes, twice the file: refused as an "
                         "amplification",
                         name.c_str(), (unsigned long long)budget);
        *gathered += nbytes;
        uint8_t * dst = out->alloc_owned((size_t)nbytes);
        size_t nd = pt.size.size();
        std::vector<int64_t> idx(nd, 0);
        for (uint64_t e = 0; e < nel; e++) {
            uint64_t off = (uint64_t)pt.offset;
            for (size_t k = 0; k < nd; k++) off += (uint64_t)idx[k] * (uint64_t)pt.stride[k];
            std::memcpy(dst + e * es, s.data + off * es, es);
            for (size_t k = nd; k-- > 0;) {
                if (++idx[k] < pt.size[k]) break;
                idx[k] = 0;
            }
        }
        t.data = dst;
        t.file_index = -1;
    }
    return out->add(std::move(t));
}

// Walks the unpickled object and collects (name, tensor index) pairs plus
// scalar metadata.
Status collect(const Unpickler & up, uint32_t root, std::vector<std::pair<std::string, uint32_t>> * tensors,
               std::vector<std::pair<std::string, std::string>> * meta) {
    const PNode & r = up.node(root);
    if (r.kind != PNode::dict) return error(SDGO_ERR_FORMAT, "checkpoint object is not a dict");
    for (size_t k = 0; k + 1 < r.v.size(); k += 2) {
        const PNode & key = up.node(r.v[k]);
        const PNode & val = up.node(r.v[k + 1]);
        if (key.kind != PNode::str) continue;
        if (val.kind == PNode::integer) meta->emplace_back(key.s, std::to_string(val.i));
        else if (val.kind == PNode::real) meta->emplace_back(key.s, strprintf("%.17g", val.f));
        else if (val.kind == PNode::str && val.s.size() < 256) meta->emplace_back(key.s, val.s);
        else if (val.kind == PNode::boolean) meta->emplace_back(key.s, val.i ? "true" : "false");
    }
    uint32_t start = root;
    uint32_t sd = up.dict_get(root, "state_dict");
    if (sd != UINT32_MAX && up.node(sd).kind == PNode::dict) start = sd;
    struct Item { uint32_t node; std::string prefix; int depth; };
    std::vector<Item> work{{start, "", 0}};
    std::unordered_set<uint32_t> seen{start};
    while (!work.empty()) {
        Item it = std::move(work.back());
        work.pop_back();
        const PNode & d = up.node(it.node);
        // Process in order; nested dicts are pushed in reverse so they come out in order.
        std::vector<Item> nested;
        for (size_t k = 0; k + 1 < d.v.size(); k += 2) {
            const PNode & key = up.node(d.v[k]);
            const PNode & val = up.node(d.v[k + 1]);
            std::string kname;
            if (key.kind == PNode::str) kname = key.s;
            else if (key.kind == PNode::integer) kname = std::to_string(key.i);
            else continue;
            if (val.kind == PNode::tensor) tensors->emplace_back(it.prefix + kname, (uint32_t)val.i);
            else if (val.kind == PNode::dict && it.depth < 16 && seen.insert(d.v[k + 1]).second)
                nested.push_back({d.v[k + 1], it.prefix + kname + ".", it.depth + 1});
        }
        for (size_t k = nested.size(); k-- > 0;) work.push_back(std::move(nested[k]));
    }
    return Status();
}

// What all deflated entries of one archive may inflate to together: 64 times
// the file plus 64 MiB. Each entry is also held to deflate's own ratio, but
// many entries at that ratio would take a thousand times the file's size;
// real checkpoints are stored, or compress weights barely.
uint64_t inflate_budget(const MappedFile & file) { return uint64_t(file.size()) * 64 + (uint64_t(64) << 20); }

// Bytes of a zip entry: stored entries in place, deflated ones inflated into
// a buffer owned by `out` (capped at the declared size, itself capped at
// deflate's maximum ratio of the compressed size, and the archive's total at
// inflate_budget: *inflated counts what this archive has inflated so far).
Status entry_bytes(const MappedFile & file, const ZipEntry & e, ModelFiles * out, const uint8_t ** data, bool * owned,
                   uint64_t * inflated) {
    *owned = false;
    if (e.method == 0) {
        *data = file.data() + e.data_offset;
        return Status();
    }
    if (e.method != 8)
        return error(SDGO_ERR_UNSUPPORTED, "%s: zip entry %s uses compression method %u (only stored and deflate are supported)",
                     file.path().c_str(), e.name.c_str(), e.method);
    if (e.size > e.comp_size * 1040 + 1024)
        return error(SDGO_ERR_FORMAT, "%s: zip entry %s claims %llu bytes from %llu compressed (beyond deflate's ratio)",
                     file.path().c_str(), e.name.c_str(), (unsigned long long)e.size, (unsigned long long)e.comp_size);
    if (e.size > inflate_budget(file) - std::min(*inflated, inflate_budget(file)))
        return error(SDGO_ERR_FORMAT,
                     "%s: zip entry %s would inflate the archive's entries past %llu bytes, 64 times its size: refused "
                     "as an amplification",
                     file.path().c_str(), e.name.c_str(), (unsigned long long)inflate_budget(file));
    *inflated += e.size;
    std::vector<uint8_t> buf;
    buf.reserve((size_t)e.size);
    Status st = util::inflate_raw(file.data() + e.data_offset, (size_t)e.comp_size, &buf, nullptr, (size_t)e.size);
    if (!st.ok()) return st.wrap(file.path() + ": zip entry " + e.name);
    if (buf.size() != e.size)
        return error(SDGO_ERR_FORMAT, "%s: zip entry %s inflated to %zu bytes, expected %llu", file.path().c_str(), e.name.c_str(),
                     buf.size(), (unsigned long long)e.size);
    uint8_t * dst = out->alloc_owned(buf.size());
    if (!buf.empty()) std::memcpy(dst, buf.data(), buf.size());
    *data = dst;
    *owned = true;
    return Status();
}

Status read_zip(std::shared_ptr<MappedFile> file, ModelFiles * out) {
    const std::string & path = file->path();
    std::vector<ZipEntry> entries;
    SDGO_TRY(zip_list(*file, &entries));
    uint64_t inflated = 0;
    const ZipEntry * pkl = nullptr;
    for (const auto & e : entries) {
        size_t slash = e.name.find('/');
        if (slash != std::string::npos && e.name.compare(slash, std::string::npos, "/data.pkl") == 0) { pkl = &e; break; }
    }
    if (!pkl) return error(SDGO_ERR_FORMAT, "%s: zip archive has no <root>/data.pkl (not a PyTorch checkpoint)", path.c_str());
    std::string root = pkl->name.substr(0, pkl->name.find('/'));
    std::unordered_map<std::string, const ZipEntry *> by_name;
    for (const auto & e : entries) by_name[e.name] = &e;
    auto bo = by_name.find(root + "/byteorder");
    if (bo != by_name.end()) {
        const uint8_t * bd;
        bool owned;
        SDGO_TRY(entry_bytes(*file, *bo->second, out, &bd, &owned, &inflated));
        std::string v(reinterpret_cast<const char *>(bd), (size_t)bo->second->size);
        if (v.rfind("big", 0) == 0) return error(SDGO_ERR_UNSUPPORTED, "%s: big-endian PyTorch checkpoints are not supported", path.c_str());
    }
    const uint8_t * pkl_data;
    bool pkl_owned;
    ModelFiles scratch;  // holds an inflated data.pkl only while unpickling
    SDGO_TRY(entry_bytes(*file, *pkl, &scratch, &pkl_data, &pkl_owned, &inflated));
    Unpickler up(false);
    uint32_t rootn;
    size_t endp;
    SDGO_TRY(up.run(pkl_data, (size_t)pkl->size, 0, &rootn, &endp).wrap(path));
    std::vector<StorageBytes> sb(up.storages.size());
    // Storages are resolved lazily below; only those referenced by tensors must exist.
    std::vector<std::pair<std::string, uint32_t>> names;
    std::vector<std::pair<std::string, std::string>> meta;
    SDGO_TRY(collect(up, rootn, &names, &meta).wrap(path));
    std::vector<bool> referenced(up.storages.size(), false);
    for (const auto & nt : names) referenced[up.tensors[nt.second].storage] = true;
    for (size_t i = 0; i < up.storages.size(); i++) {
        const PStorage & ps = up.storages[i];
        auto it = by_name.find(root + "/data/" + ps.key);
        if (it == by_name.end()) continue;
        const ZipEntry & e = *it->second;
        uint64_t need;
        if (!mul_ok((uint64_t)ps.numel, (uint64_t)ps.elem.size, &need) || need > e.size)
            return error(SDGO_ERR_FORMAT, "%s: storage %s declares %lld elements but the entry holds %llu bytes", path.c_str(),
                         ps.key.c_str(), (long long)ps.numel, (unsigned long long)e.size);
        if (!referenced[i]) continue;
        const uint8_t * sd;
        bool owned;
        SDGO_TRY(entry_bytes(*file, e, out, &sd, &owned, &inflated));
        sb[i] = StorageBytes{sd, need, owned ? UINT64_MAX : e.data_offset};
    }
    int fi = out->add_file(path, "torch-zip", file);
    uint64_t gathered = 0;
    for (const auto & nt : names) {
        const PTensor & pt = up.tensors[nt.second];
        if (!sb[pt.storage].data && up.storages[pt.storage].numel > 0)
            return error(SDGO_ERR_FORMAT, "%s: storage %s of tensor \"%s\" is missing from the archive", path.c_str(),
                         up.storages[pt.storage].key.c_str(), nt.first.c_str());
        SDGO_TRY(make_tensor(up, pt, sb, fi, nt.first, out, &gathered, gather_budget(file->size())).wrap(path));
    }
    for (auto & kv : meta) out->set_meta(kv.first, kv.second);
    return Status();
}

Status read_legacy(std::shared_ptr<MappedFile> file, ModelFiles * out) {
    const std::string & path = file->path();
    const uint8_t * d = file->data();
    const size_t size = file->size();
    size_t pos = 0;
    uint32_t r;
    {
        Unpickler u(true);
        SDGO_TRY(u.run(d, size, pos, &r, &pos).wrap(path + ": legacy magic"));
        const PNode & n = u.node(r);
        if (n.kind != PNode::bigint || n.s.size() != 10 || std::memcmp(n.s.data(), kLegacyMagic, 10) != 0)
            return error(SDGO_ERR_FORMAT, "%s: not a PyTorch checkpoint (legacy magic number missing)", path.c_str());
    }
    {
        Unpickler u(true);
        SDGO_TRY(u.run(d, size, pos, &r, &pos).wrap(path + ": legacy protocol"));
        if (u.node(r).kind != PNode::integer || u.node(r).i != 1001)
            return error(SDGO_ERR_UNSUPPORTED, "%s: legacy protocol version is not 1001", path.c_str());
    }
    {
        Unpickler u(true);
        SDGO_TRY(u.run(d, size, pos, &r, &pos).wrap(path + ": legacy sys_info"));
        uint32_t le = u.dict_get(r, "little_endian");
        if (le != UINT32_MAX && u.node(le).kind == PNode::boolean && !u.node(le).i)
            return error(SDGO_ERR_UNSUPPORTED, "%s: big-endian legacy checkpoints are not supported", path.c_str());
    }
    Unpickler up(true);
    uint32_t rootn;
    SDGO_TRY(up.run(d, size, pos, &rootn, &pos).wrap(path));
    std::vector<std::string> keys;
    {
        Unpickler u(true);
        SDGO_TRY(u.run(d, size, pos, &r, &pos).wrap(path + ": legacy storage key list"));
        const PNode & l = u.node(r);
        if (l.kind != PNode::list) return error(SDGO_ERR_FORMAT, "%s: legacy storage key list is not a list", path.c_str());
        for (uint32_t e : l.v) {
            if (u.node(e).kind != PNode::str) return error(SDGO_ERR_FORMAT, "%s: legacy storage key is not a string", path.c_str());
            keys.push_back(u.node(e).s);
        }
    }
    std::vector<StorageBytes> sb(up.storages.size());
    for (const auto & k : keys) {
        auto it = up.storage_by_key.find(k);
        if (it == up.storage_by_key.end())
            return error(SDGO_ERR_FORMAT, "%s: legacy storage %s is not referenced by the object (size unknown)", path.c_str(), k.c_str());
        const PStorage & ps = up.storages[it->second];
        int64_t numel;
        if (!file->in_bounds(pos, 8)) return error(SDGO_ERR_FORMAT, "%s: truncated legacy storage %s", path.c_str(), k.c_str());
        std::memcpy(&numel, d + pos, 8);
        pos += 8;
        uint64_t bytes;
        if (numel < 0 || !mul_ok((uint64_t)numel, (uint64_t)ps.elem.size, &bytes) || !file->in_bounds(pos, bytes))
            return error(SDGO_ERR_FORMAT, "%s: legacy storage %s (%lld elements) extends past the end of the file", path.c_str(),
                         k.c_str(), (long long)numel);
        sb[it->second] = StorageBytes{d + pos, bytes, pos};
        pos += bytes;
    }
    std::vector<std::pair<std::string, uint32_t>> names;
    std::vector<std::pair<std::string, std::string>> meta;
    SDGO_TRY(collect(up, rootn, &names, &meta).wrap(path));
    int fi = out->add_file(path, "torch-legacy", file);
    uint64_t gathered = 0;
    for (const auto & nt : names) {
        const PTensor & pt = up.tensors[nt.second];
        if (!sb[pt.storage].data && up.storages[pt.storage].numel > 0)
            return error(SDGO_ERR_FORMAT, "%s: storage %s of tensor \"%s\" is missing", path.c_str(),
                         up.storages[pt.storage].key.c_str(), nt.first.c_str());
        SDGO_TRY(make_tensor(up, pt, sb, fi, nt.first, out, &gathered, gather_budget(file->size())).wrap(path));
    }
    for (auto & kv : meta) out->set_meta(kv.first, kv.second);
    return Status();
}

}  // namespace

bool torch_legacy_looks_like(const MappedFile & file) {
    // PROTO 2, LONG1 of 10 bytes, then the magic.
    return file.size() >= 14 && file.data()[0] == 0x80 && file.data()[2] == 0x8a && file.data()[3] == 0x0a &&
           std::memcmp(file.data() + 4, kLegacyMagic, 10) == 0;
}

Status read_torch(std::shared_ptr<MappedFile> file, ModelFiles * out) {
    if (zip_looks_like(*file)) return read_zip(file, out);
    if (file->size() >= 2 && file->data()[0] == 0x80) return read_legacy(file, out);
    if (file->size() > 262 && std::memcmp(file->data() + 257, "ustar", 5) == 0)
        return error(SDGO_ERR_UNSUPPORTED, "%s: tar-based PyTorch checkpoints (torch < 0.4) are not supported", file->path().c_str());
    return error(SDGO_ERR_FORMAT, "%s: not a PyTorch checkpoint (neither zip nor legacy pickle)", file->path().c_str());
}

Status load_torch(const std::string & path, ModelFiles * out) {
    std::shared_ptr<MappedFile> f;
    SDGO_TRY(MappedFile::open(path, &f));
    return read_torch(f, out);
}

}  // namespace sdgo::formats
