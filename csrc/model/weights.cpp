#include "model/weights.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace sdgo::model {

using formats::TensorEntry;

Weights::Owned::~Owned() { std::free(ptr); }

Weights::Weights(const formats::ModelFiles * files, WeightOptions opt) : files_(files), opt_(opt) {}

const TensorEntry * Weights::find(const std::string & name) const { return files_ ? files_->find(name) : nullptr; }

size_t Weights::converted_bytes() const {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (const auto & kv : cache_) n += kv.second->bytes;
    return n;
}

static void * alloc64(size_t bytes) {
    const size_t want = ((bytes ? bytes : 1) + 63) & ~size_t(63);
    return std::aligned_alloc(64, want);
}

Status Weights::convert_f32(const TensorEntry & e, const void ** data) {
    const std::string key = "f32:" + e.name;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
        *data = it->second->ptr;
        return Status();
    }
    const int64_t n = e.nelements();
    auto owned = std::make_unique<Owned>();
    owned->bytes = static_cast<size_t>(n) * sizeof(float);
    owned->ptr = alloc64(owned->bytes);
    if (!owned->ptr) return error(SDGO_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", e.name.c_str(), owned->bytes);
    float * dst = static_cast<float *>(owned->ptr);
    const TypeTraits * tt = e.is_ggml() ? type_traits(e.type) : nullptr;
    if (tt && tt->is_quantized) {
        if (!tt->to_f32)
            return error(SDGO_ERR_UNSUPPORTED, "%s: type %s cannot be dequantized", e.name.c_str(), tt->name);
        if (tt->block_size <= 0 || e.ne[0] % tt->block_size != 0)
            return error(SDGO_ERR_FORMAT, "%s: row length %lld is not a multiple of the %s block size",
                         e.name.c_str(), (long long)e.ne[0], tt->name);
        const uint64_t need = static_cast<uint64_t>(n / tt->block_size) * tt->type_size;
        if (e.nbytes != need) return error(SDGO_ERR_FORMAT, "%s: byte size mismatch", e.name.c_str());
        // Decoders read block structs: give them an aligned copy.
        void * tmp = alloc64(e.nbytes);
        if (!tmp) return error(SDGO_ERR_OUT_OF_MEMORY, "%s: cannot allocate %llu bytes", e.name.c_str(),
                               (unsigned long long)e.nbytes);
        std::memcpy(tmp, e.data, e.nbytes);
        tt->to_f32(tmp, dst, n);
        std::free(tmp);
    } else {
        std::vector<float> v;
        SDGO_TRY(formats::tensor_to_f32(e, &v));
        std::memcpy(dst, v.data(), v.size() * sizeof(float));
    }
    owned->type = DType::f32;
    *data = owned->ptr;
    cache_.emplace(key, std::move(owned));
    return Status();
}

Status Weights::convert_bf16_f16(const TensorEntry & e, const void ** data, bool * exact) {
    const std::string key = "f16:" + e.name;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
        *data = it->second->ptr;
        *exact = true;
        return Status();
    }
    const int64_t n = e.nelements();
    if (e.nbytes != static_cast<uint64_t>(n) * 2) return error(SDGO_ERR_FORMAT, "%s: byte size mismatch", e.name.c_str());
    auto owned = std::make_unique<Owned>();
    owned->bytes = static_cast<size_t>(n) * 2;
    owned->ptr = alloc64(owned->bytes);
    if (!owned->ptr) return error(SDGO_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", e.name.c_str(), owned->bytes);
    uint16_t * dst = static_cast<uint16_t *>(owned->ptr);
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
        dst[i] = h;
    }
    owned->type = DType::f16;
    *data = owned->ptr;
    cache_.emplace(key, std::move(owned));
    return Status();
}

Status Weights::copy_aligned(const TensorEntry & e, const void ** data) {
    const std::string key = "raw:" + e.name;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
        *data = it->second->ptr;
        return Status();
    }
    auto owned = std::make_unique<Owned>();
    owned->bytes = e.nbytes;
    owned->ptr = alloc64(e.nbytes);
    if (!owned->ptr) return error(SDGO_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", e.name.c_str(), owned->bytes);
    std::memcpy(owned->ptr, e.data, e.nbytes);
    owned->type = e.type;
    *data = owned->ptr;
    cache_.emplace(key, std::move(owned));
    return Status();
}

Status Weights::prepare(const TensorEntry & e, WeightUse use, DType * type, const void ** data) {
    if (!e.data) return error(SDGO_ERR_FORMAT, "%s: tensor has no data", e.name.c_str());
    if (e.is_ggml()) {
        size_t need = 0;
        Status st = tensor_bytes(e.type, e.ne[0], e.ne[1] * e.ne[2] * e.ne[3], &need);
        if (!st.ok() || need != e.nbytes)
            return error(SDGO_ERR_FORMAT, "%s: %llu bytes for a %s tensor of shape %s", e.name.c_str(),
                         (unsigned long long)e.nbytes, dtype_name(e.type), e.shape_str().c_str());
    }
    bool as_is = e.is_ggml() && !opt_.force_f32;
    if (as_is) {
        switch (use) {
            case WeightUse::vector: as_is = e.type == DType::f32; break;
            case WeightUse::conv: as_is = e.type == DType::f32 || e.type == DType::f16; break;
            case WeightUse::matrix: {
                const TypeTraits * tt = type_traits(e.type);
                as_is = e.type == DType::f32 || (tt && tt->to_f32 && (tt->is_quantized || e.type == DType::f16 ||
                                                                      e.type == DType::bf16));
                break;
            }
        }
    }
    if (!as_is && use == WeightUse::conv && e.is_ggml() && e.type == DType::bf16 && !opt_.force_f32) {
        bool exact = false;
        SDGO_TRY(convert_bf16_f16(e, data, &exact));
        if (exact) {
            *type = DType::f16;
            return Status();
        }
    }
    if (!as_is) {
        if (e.is_ggml() && e.type == DType::f32) {
            // Already f32: only alignment may need fixing.
            *type = DType::f32;
            if (reinterpret_cast<uintptr_t>(e.data) % 4 == 0) {
                *data = e.data;
                return Status();
            }
            return copy_aligned(e, data);
        }
        *type = DType::f32;
        return convert_f32(e, data);
    }
    *type = e.type;
    const uintptr_t align = e.type == DType::f32 ? 4 : 2;
    if (reinterpret_cast<uintptr_t>(e.data) % align == 0) {
        *data = e.data;
        return Status();
    }
    return copy_aligned(e, data);
}

// ---------------------------------------------------------------------------

Binder::Binder(Graph & g, Weights & w, std::string prefix)
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

Tensor * Binder::make(const TensorEntry & e, WeightUse use, int n, const int64_t * ne, size_t byte_off) const {
    DType type = DType::f32;
    const void * data = nullptr;
    Status st = w_->prepare(e, use, &type, &data);
    if (!st.ok()) {
        fail(st);
        return nullptr;
    }
    return g_->weight(type, n, ne, static_cast<const uint8_t *>(data) + byte_off, e.name.c_str());
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
    DType type = DType::f32;
    const void * data = nullptr;
    Status st = w_->prepare(*e, WeightUse::matrix, &type, &data);
    if (!st.ok()) {
        fail(st);
        return nullptr;
    }
    const size_t rs = row_size(type, K);
    if (rs == 0) {
        fail(error(SDGO_ERR_FORMAT, "%s: row of %lld elements is not a whole number of %s blocks", e->name.c_str(),
                   (long long)K, dtype_name(type)));
        return nullptr;
    }
    const int64_t ne[2] = {K, n};
    return g_->weight(type, 2, ne, static_cast<const uint8_t *>(data) + rs * static_cast<size_t>(row0),
                      e->name.c_str());
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
    const int64_t ne[1] = {n};
    return make(*e, WeightUse::vector, 1, ne, static_cast<size_t>(off) * sizeof(float));
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
