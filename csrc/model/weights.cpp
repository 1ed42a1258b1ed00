#include "model/weights.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "backends/cpu/type_convert.h"

namespace sdgo::model {

using formats::TensorEntry;

namespace {

void * alloc64(size_t bytes) {
    const size_t want = ((bytes ? bytes : 1) + 63) & ~size_t(63);
    return std::aligned_alloc(64, want);
}

bool is_integer_or_bool(const TensorEntry & e) {
    if (!e.is_ggml()) {
        switch (e.stored) {
            case formats::StoredType::u8:
            case formats::StoredType::boolean:
            case formats::StoredType::u16:
            case formats::StoredType::u32:
            case formats::StoredType::u64:
            case formats::StoredType::c64:
            case formats::StoredType::c128: return true;
            default: return false;
        }
    }
    return e.type == DType::i8 || e.type == DType::i16 || e.type == DType::i32 || e.type == DType::i64;
}

// Largest buffer a device upload uses (a device may allow less).
constexpr uint64_t kMaxUploadBuffer = uint64_t(1) << 30;

}  // namespace

const char * weight_use_name(WeightUse u) {
    switch (u) {
        case WeightUse::matrix: return "matrix";
        case WeightUse::conv: return "conv";
        case WeightUse::vector: return "vector";
    }
    return "?";
}

WeightStore::Owned::~Owned() { std::free(ptr); }

WeightStore::WeightStore(const formats::ModelFiles * files, Device * device, WeightOptions opt)
    : files_(files), device_(device), opt_(opt) {}

WeightStore::~WeightStore() = default;

std::string WeightStore::key(const std::string & name, WeightUse use) {
    return std::string(weight_use_name(use)) + ":" + name;
}

uint64_t WeightStore::prepared_bytes() const {
    uint64_t n = 0;
    for (const auto & kv : prepared_) n += kv.second.nbytes;
    return n;
}

size_t WeightStore::converted_bytes() const {
    size_t n = 0;
    for (const auto & o : owned_) n += o->bytes;
    return n;
}

void * WeightStore::own(size_t bytes) {
    auto o = std::make_unique<Owned>();
    o->bytes = bytes;
    o->ptr = alloc64(bytes);
    if (!o->ptr) return nullptr;
    void * p = o->ptr;
    owned_.push_back(std::move(o));
    return p;
}

Status WeightStore::convert_f32(const TensorEntry & e, const void ** data) {
    const int64_t n = e.nelements();
    const size_t bytes = static_cast<size_t>(n) * sizeof(float);
    float * dst = static_cast<float *>(own(bytes));
    if (!dst) return error(SDGO_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", e.name.c_str(), bytes);
    const TypeTraits * tt = e.is_ggml() ? type_traits(e.type) : nullptr;
    if (tt && (tt->is_quantized || e.type == DType::f16 || e.type == DType::bf16)) {
        const ToF32Fn to_f32 = cpu::host_to_f32(e.type);
        if (!to_f32) return error(SDGO_ERR_UNSUPPORTED, "%s: type %s cannot be converted", e.name.c_str(), tt->name);
        // Decoders read block structs and aligned halves: give them an aligned copy.
        std::unique_ptr<void, void (*)(void *)> tmp(alloc64(e.nbytes), std::free);
        if (!tmp) return error(SDGO_ERR_OUT_OF_MEMORY, "%s: cannot allocate %llu bytes", e.name.c_str(),
                               (unsigned long long)e.nbytes);
        std::memcpy(tmp.get(), e.data, e.nbytes);
        to_f32(tmp.get(), dst, n);
    } else {
        std::vector<float> v;
        SDGO_TRY(formats::tensor_to_f32(e, &v));
        std::memcpy(dst, v.data(), v.size() * sizeof(float));
    }
    *data = dst;
    return Status();
}

Status WeightStore::convert_bf16_f16(const TensorEntry & e, const void ** data, bool * exact) {
    const int64_t n = e.nelements();
    if (e.nbytes != static_cast<uint64_t>(n) * 2) return error(SDGO_ERR_FORMAT, "%s: byte size mismatch", e.name.c_str());
    std::vector<uint16_t> tmp(static_cast<size_t>(n));
    *exact = true;
    for (int64_t i = 0; i < n; i++) {
        uint16_t b;
        std::memcpy(&b, e.data + 2 * i, 2);
        const float f = bf16_to_fp32(b);
        const uint16_t h = fp32_to_fp16(f);
        if (fp16_to_fp32(h) != f && !(f != f)) {
            *exact = false;
            return Status();
        }
        tmp[static_cast<size_t>(i)] = h;
    }
    void * dst = own(static_cast<size_t>(n) * 2);
    if (!dst) return error(SDGO_ERR_OUT_OF_MEMORY, "%s: cannot allocate %lld bytes", e.name.c_str(), (long long)n * 2);
    std::memcpy(dst, tmp.data(), static_cast<size_t>(n) * 2);
    *data = dst;
    return Status();
}

Status WeightStore::copy_aligned(const TensorEntry & e, const void ** data) {
    void * dst = own(e.nbytes);
    if (!dst) return error(SDGO_ERR_OUT_OF_MEMORY, "%s: cannot allocate %llu bytes", e.name.c_str(),
                           (unsigned long long)e.nbytes);
    std::memcpy(dst, e.data, e.nbytes);
    *data = dst;
    return Status();
}

// Whether the device computes `use` with weights of type t directly.
bool WeightStore::device_takes(WeightUse use, DType t, const TensorEntry & e) const {
    if (use == WeightUse::vector) return t == DType::f32;
    Tensor w, x, node;
    w.type = t;
    for (int i = 0; i < 4; i++) w.ne[i] = e.ne[i];
    set_contiguous_strides(&w);
    x.type = DType::f32;
    x.ne[0] = use == WeightUse::matrix ? e.ne[0] : 1;
    set_contiguous_strides(&x);
    node.type = DType::f32;
    node.op = use == WeightUse::matrix ? Op::mul_mat : Op::conv2d;
    node.src[0] = &w;
    node.src[1] = &x;
    set_contiguous_strides(&node);
    return device_->supports_op(&node);
}

Status WeightStore::prepare(const TensorEntry & e, WeightUse use, DType * type) {
    const std::string k = key(e.name, use);
    auto it = prepared_.find(k);
    if (it != prepared_.end()) {
        *type = it->second.type;
        return Status();
    }
    if (finished_) return error(SDGO_ERR_INTERNAL, "weights: %s (%s) prepared after the store was finished",
                                e.name.c_str(), weight_use_name(use));
    if (!e.data) return error(SDGO_ERR_FORMAT, "%s: tensor has no data", e.name.c_str());
    if (is_integer_or_bool(e))
        return error(SDGO_ERR_FORMAT, "%s: weights must be floating point, this one is %s", e.name.c_str(),
                     e.type_name().c_str());
    if (e.is_ggml()) {
        size_t need = 0;
        Status st = tensor_bytes(e.type, e.ne[0], e.ne[1] * e.ne[2] * e.ne[3], &need);
        if (!st.ok() || need != e.nbytes)
            return error(SDGO_ERR_FORMAT, "%s: %llu bytes for a %s tensor of shape %s", e.name.c_str(),
                         (unsigned long long)e.nbytes, dtype_name(e.type), e.shape_str().c_str());
    }
    Prepared p;
    bool as_is = e.is_ggml() && !opt_.force_f32;
    if (as_is) {
        switch (use) {
            case WeightUse::vector: as_is = e.type == DType::f32; break;
            case WeightUse::conv:
                as_is = (e.type == DType::f32 || e.type == DType::f16) && device_takes(use, e.type, e);
                break;
            case WeightUse::matrix: as_is = device_takes(use, e.type, e); break;
        }
    }
    const void * data = nullptr;
    if (!as_is && use == WeightUse::conv && e.is_ggml() && e.type == DType::bf16 && !opt_.force_f32 &&
        device_takes(use, DType::f16, e)) {
        bool exact = false;
        SDGO_TRY(convert_bf16_f16(e, &data, &exact));
        if (exact) {
            p.type = DType::f16;
            p.host = data;
            p.nbytes = e.nbytes;
            prepared_.emplace(k, p);
            *type = p.type;
            return Status();
        }
    }
    if (!as_is) {
        p.type = DType::f32;
        p.nbytes = static_cast<size_t>(e.nelements()) * sizeof(float);
        if (e.is_ggml() && e.type == DType::f32) {
            // Already f32: only alignment may need fixing.
            if (reinterpret_cast<uintptr_t>(e.data) % 4 == 0) data = e.data;
            else SDGO_TRY(copy_aligned(e, &data));
        } else {
            SDGO_TRY(convert_f32(e, &data));
        }
    } else {
        p.type = e.type;
        p.nbytes = e.nbytes;
        const uintptr_t align = e.type == DType::f32 ? 4 : 2;
        if (reinterpret_cast<uintptr_t>(e.data) % align == 0) data = e.data;
        else SDGO_TRY(copy_aligned(e, &data));
    }
    p.host = data;
    prepared_.emplace(k, p);
    *type = p.type;
    return Status();
}

Status WeightStore::finish() {
    if (finished_) return Status();
    if (device_->can_wrap_host()) {
        for (auto & kv : prepared_) {
            std::unique_ptr<Buffer> b;
            SDGO_TRY(device_->wrap_host(kv.second.host, kv.second.nbytes, &b));
            kv.second.buffer = b.get();
            kv.second.offset = 0;
            buffers_.push_back(std::move(b));
        }
        finished_ = true;
        return Status();
    }
    // One upload into as few buffers as the device allows, in name order.
    std::vector<Prepared *> order;
    order.reserve(prepared_.size());
    std::vector<const std::string *> names;
    for (auto & kv : prepared_) names.push_back(&kv.first);
    std::sort(names.begin(), names.end(), [](const std::string * a, const std::string * b) { return *a < *b; });
    for (const std::string * n : names) order.push_back(&prepared_[*n]);
    uint64_t cap = device_->info().max_buffer_bytes ? device_->info().max_buffer_bytes : kMaxUploadBuffer;
    cap = std::min(cap, kMaxUploadBuffer);
    const size_t align = 256;
    size_t i = 0;
    while (i < order.size()) {
        size_t j = i, total = 0;
        while (j < order.size()) {
            const size_t at = (total + align - 1) & ~(align - 1);
            if (j > i && at + order[j]->nbytes > cap) break;
            total = at + order[j]->nbytes;
            ++j;
        }
        std::unique_ptr<Buffer> buf;
        SDGO_TRY(device_->alloc_buffer(total, &buf).wrap("uploading weights"));
        size_t at = 0;
        for (size_t k = i; k < j; ++k) {
            at = (at + align - 1) & ~(align - 1);
            SDGO_TRY(device_->write(buf.get(), at, order[k]->host, order[k]->nbytes));
            order[k]->buffer = buf.get();
            order[k]->offset = at;
            order[k]->host = nullptr;
            at += order[k]->nbytes;
        }
        device_bytes_ += total;
        buffers_.push_back(std::move(buf));
        i = j;
    }
    owned_.clear();  // the host copies are on the device now
    finished_ = true;
    return Status();
}

Status WeightStore::bind(Graph & g, const TensorEntry & e, WeightUse use, int n, const int64_t * ne, int64_t row_len,
                         int64_t skip_rows, Tensor ** out) const {
    *out = nullptr;
    if (!finished_) return error(SDGO_ERR_INTERNAL, "weights: bound before the store was finished");
    auto it = prepared_.find(key(e.name, use));
    if (it == prepared_.end())
        return error(SDGO_ERR_INTERNAL, "weights: %s (%s) was not prepared at load", e.name.c_str(),
                     weight_use_name(use));
    const Prepared & p = it->second;
    size_t off = 0;
    if (skip_rows > 0) {
        const size_t rs = row_size(p.type, row_len);
        if (rs == 0)
            return error(SDGO_ERR_FORMAT, "%s: row of %lld elements is not a whole number of %s blocks", e.name.c_str(),
                         (long long)row_len, dtype_name(p.type));
        off = rs * static_cast<size_t>(skip_rows);
    }
    Tensor * t = g.weight(p.type, n, ne, p.buffer, p.offset + off, e.name.c_str());
    if (!g.status().ok()) return g.status();
    *out = t;
    return Status();
}

Status WeightRecorder::bind(Graph & g, const TensorEntry & e, WeightUse use, int n, const int64_t * ne,
                            int64_t row_len, int64_t skip_rows, Tensor ** out) const {
    *out = nullptr;
    DType type = DType::f32;
    SDGO_TRY(store_->prepare(e, use, &type));
    if (skip_rows > 0 && row_size(type, row_len) == 0)
        return error(SDGO_ERR_FORMAT, "%s: row of %lld elements is not a whole number of %s blocks", e.name.c_str(),
                     (long long)row_len, dtype_name(type));
    Tensor * t = g.input(type, n, ne, e.name.c_str());
    if (!g.status().ok()) return g.status();
    *out = t;
    return Status();
}

// ---------------------------------------------------------------------------

Binder::Binder(Graph & g, const Weights & w, std::string prefix)
    : g_(&g), w_(&w), prefix_(std::move(prefix)), st_(std::make_shared<Status>()) {}

Binder Binder::sub(const std::string & more) const {
    Binder b(*this);
    b.prefix_ += more;
    return b;
}

void Binder::fail(Status st) const {
    if (st_->ok() && !st.ok()) *st_ = std::move(st);
}

Binder Binder::with_prefix(const std::string & prefix) const {
    Binder b(*this);
    b.prefix_ = prefix;
    return b;
}

bool Binder::has(const std::string & name) const { return w_->has(prefix_ + name); }
const TensorEntry * Binder::entry(const std::string & name) const { return w_->find(prefix_ + name); }

static std::string ne_str(const int64_t * ne, int n) {
    std::string s = "[";
    for (int i = 0; i < n; i++) s += (i ? ", " : "") + std::to_string(ne[i]);
    return s + "]";
}

const TensorEntry * Binder::need(const std::string & full, const int64_t * ne, int n) const {
    const TensorEntry * e = w_->find(full);
    if (!e) {
        fail(error(SDGO_ERR_FORMAT, "model: missing tensor %s", full.c_str()));
        return nullptr;
    }
    if (ne) {
        bool same = true;
        for (int i = 0; i < 4; i++) same = same && e->ne[i] == (i < n ? ne[i] : 1);
        if (!same) {
            fail(error(SDGO_ERR_FORMAT, "model: tensor %s has shape %s (ggml order %s), expected ggml order %s",
                       full.c_str(), e->shape_str().c_str(), ne_str(e->ne, 4).c_str(), ne_str(ne, n).c_str()));
            return nullptr;
        }
    }
    return e;
}

Tensor * Binder::make(const TensorEntry & e, WeightUse use, int n, const int64_t * ne, int64_t row_len,
                      int64_t skip_rows) const {
    Tensor * t = nullptr;
    Status st = w_->bind(*g_, e, use, n, ne, row_len, skip_rows, &t);
    if (!st.ok()) {
        fail(st);
        return nullptr;
    }
    return t;
}

Tensor * Binder::matrix(const std::string & name, int64_t K, int64_t N) const {
    if (!ok()) return nullptr;
    const std::string full = prefix_ + name;
    const TensorEntry * e = w_->find(full);
    const int64_t ne2[2] = {K, N};
    if (e && e->ne[0] == 1 && e->ne[1] == 1 && e->ne[2] == K && e->ne[3] == N) {
        return make(*e, WeightUse::matrix, 2, ne2);  // 1x1 conv kernel used as a matrix
    }
    e = need(full, ne2, 2);
    return e ? make(*e, WeightUse::matrix, 2, ne2) : nullptr;
}

Tensor * Binder::matrix_rows(const std::string & name, int64_t K, int64_t R, int64_t row0, int64_t n) const {
    if (!ok()) return nullptr;
    const int64_t full_ne[2] = {K, R};
    const TensorEntry * e = need(prefix_ + name, full_ne, 2);
    if (!e) return nullptr;
    if (row0 < 0 || n < 1 || row0 + n > R) {
        fail(error(SDGO_ERR_INTERNAL, "%s: rows [%lld, %lld) outside %lld", e->name.c_str(), (long long)row0,
                   (long long)(row0 + n), (long long)R));
        return nullptr;
    }
    const int64_t ne[2] = {K, n};
    return make(*e, WeightUse::matrix, 2, ne, K, row0);
}

Tensor * Binder::conv(const std::string & name, int64_t kw, int64_t kh, int64_t cin, int64_t cout) const {
    if (!ok()) return nullptr;
    const int64_t ne[4] = {kw, kh, cin, cout};
    const TensorEntry * e = need(prefix_ + name, ne, 4);
    return e ? make(*e, WeightUse::conv, 4, ne) : nullptr;
}

Tensor * Binder::vec(const std::string & name, int64_t n, int64_t slice_of, int64_t off) const {
    if (!ok()) return nullptr;
    const int64_t stored = slice_of > 0 ? slice_of : n;
    const TensorEntry * e = need(prefix_ + name, &stored, 1);
    if (!e) return nullptr;
    if (off < 0 || off + n > stored) {
        fail(error(SDGO_ERR_INTERNAL, "%s: elements [%lld, %lld) outside %lld", e->name.c_str(), (long long)off,
                   (long long)(off + n), (long long)stored));
        return nullptr;
    }
    const int64_t ne[1] = {n};
    return make(*e, WeightUse::vector, 1, ne, 1, off);
}

Tensor * Binder::dense(const std::string & name, int64_t ne0, int64_t ne1, int64_t rows) const {
    if (!ok()) return nullptr;
    const int64_t ne[2] = {ne0, ne1};
    const TensorEntry * e = need(prefix_ + name, ne, 2);
    if (!e) return nullptr;
    if (rows < 0 || rows > ne1) rows = ne1;
    const int64_t used[2] = {ne0, rows};
    return make(*e, WeightUse::vector, 2, used);
}

Tensor * Binder::opt_vec(const std::string & name, int64_t n) const {
    if (!ok() || !has(name)) return nullptr;
    return vec(name, n);
}

}  // namespace sdgo::model
