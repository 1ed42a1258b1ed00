// weights.h — a model's weights on a device, and how graph builders read them.
//
// A weight is used in one of three ways, and each use wants its own type:
//   matrix  mul_mat / get_rows operand: as stored when the device computes
//           that type directly (the CPU: f32, f16, bf16 and every block
//           type with a decoder), else converted to f32
//   conv    conv2d kernel: f32 or f16 as stored; bf16 converted to f16 when
//           every value is exactly representable (always, for weights in
//           f16's range), anything else converted to f32 (or, when the
//           device takes the stored type directly, that type)
//   vector  bias / norm affine / embedding added as a whole: always f32
//
// WeightStore holds one model's weights on one device, each (name, use)
// prepared once: at load, a WeightRecorder is handed to the same graph
// builders that generation uses, which records every (name, use) they ask
// for; WeightStore::finish() then places the prepared bytes in device
// buffers (on the CPU the memory-mapped file bytes are wrapped, not copied;
// other devices get one upload). From then on the store is read-only and
// may be shared by any number of concurrent graph builds.
//
// Binder is the builder-side helper: it prefixes names, checks every shape
// against the one the architecture expects and records the first problem
// (missing tensor, wrong shape, unsupported type) as a Status, returning NULL
// so that graph building goes on and the caller reports one clear error.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "core/backend.h"
#include "core/graph.h"
#include "formats/model_file.h"

namespace sdgo::model {

enum class WeightUse { matrix, conv, vector };
const char * weight_use_name(WeightUse u);

struct WeightOptions {
    // Convert every weight to f32 (reference tests; exact f32 math).
    bool force_f32 = false;
};

// What graph builders read weights through.
class Weights {
public:
    virtual ~Weights() = default;
    virtual const formats::ModelFiles & files() const = 0;
    const formats::TensorEntry * find(const std::string & name) const { return files().find(name); }
    bool has(const std::string & name) const { return find(name) != nullptr; }
    // A graph leaf of shape ne (n dims) for entry e used as `use`: the
    // prepared tensor viewed from row `skip_rows` on, rows being row_len
    // elements of the prepared type.
    virtual Status bind(Graph & g, const formats::TensorEntry & e, WeightUse use, int n, const int64_t * ne,
                        int64_t row_len, int64_t skip_rows, Tensor ** out) const = 0;
};

// One model's weights on one device (see above).
class WeightStore final : public Weights {
public:
    // `files` must outlive this object and every graph built from it.
    WeightStore(const formats::ModelFiles * files, Device * device, WeightOptions opt = {});
    ~WeightStore() override;
    WeightStore(const WeightStore &) = delete;
    WeightStore & operator=(const WeightStore &) = delete;

    const formats::ModelFiles & files() const override { return *files_; }
    Device * device() const { return device_; }

    // Prepares e for `use` (once per pair; before finish()).
    Status prepare(const formats::TensorEntry & e, WeightUse use, DType * type);
    // Places everything prepared on the device. After this the store is
    // read-only; bind() works only after it.
    Status finish();
    bool finished() const { return finished_; }

    Status bind(Graph & g, const formats::TensorEntry & e, WeightUse use, int n, const int64_t * ne, int64_t row_len,
                int64_t skip_rows, Tensor ** out) const override;

    size_t prepared_count() const { return prepared_.size(); }
    // Bytes of all prepared weights.
    uint64_t prepared_bytes() const;
    // Host bytes held by conversions and aligned copies.
    size_t converted_bytes() const;
    // Bytes copied into device memory (0 where the device wraps host memory).
    size_t device_bytes() const { return device_bytes_; }

private:
    struct Prepared {
        DType type = DType::f32;
        const void * host = nullptr;  // prepared bytes in host memory (until uploaded)
        size_t nbytes = 0;
        Buffer * buffer = nullptr;    // after finish()
        size_t offset = 0;
    };
    struct Owned {
        void * ptr = nullptr;
        size_t bytes = 0;
        ~Owned();
    };
    Status convert_f32(const formats::TensorEntry & e, const void ** data);
    // bf16 -> f16 when exact; false in *exact (nothing kept) otherwise.
    Status convert_bf16_f16(const formats::TensorEntry & e, const void ** data, bool * exact);
    Status copy_aligned(const formats::TensorEntry & e, const void ** data);
    void * own(size_t bytes);
    bool device_takes(WeightUse use, DType t, const formats::TensorEntry & e) const;
    static std::string key(const std::string & name, WeightUse use);

    const formats::ModelFiles * files_;
    Device * device_;
    WeightOptions opt_;
    bool finished_ = false;
    std::unordered_map<std::string, Prepared> prepared_;  // key(name, use)
    std::vector<std::unique_ptr<Owned>> owned_;           // host conversions
    std::vector<std::unique_ptr<Buffer>> buffers_;
    size_t device_bytes_ = 0;
};

// Records the (name, use) pairs a graph builder asks for into a store that
// is being prepared, handing the builder placeholder inputs of the prepared
// types and shapes (the graph is for recording only; never compute it).
class WeightRecorder final : public Weights {
public:
    explicit WeightRecorder(WeightStore * store) : store_(store) {}
    const formats::ModelFiles & files() const override { return store_->files(); }
    Status bind(Graph & g, const formats::TensorEntry & e, WeightUse use, int n, const int64_t * ne, int64_t row_len,
                int64_t skip_rows, Tensor ** out) const override;

private:
    WeightStore * store_;
};

// Graph-builder helper. Copies share the recorded status.
class Binder {
public:
    Binder(Graph & g, const Weights & w, std::string prefix = std::string());

    Binder sub(const std::string & more) const;  // prefix + more
    Binder with_prefix(const std::string & prefix) const;  // another prefix, same status
    const std::string & prefix() const { return prefix_; }
    bool has(const std::string & name) const;
    const formats::TensorEntry * entry(const std::string & name) const;

    // Linear weight [K, N] (ggml order: K = in features). Also accepts a 1x1
    // convolution kernel [1, 1, K, N] (same bytes).
    Tensor * matrix(const std::string & name, int64_t K, int64_t N) const;
    // Rows [row0, row0 + n) of a 2-D matrix [K, R] (e.g. a fused q/k/v weight).
    Tensor * matrix_rows(const std::string & name, int64_t K, int64_t R, int64_t row0, int64_t n) const;
    // Convolution kernel [kw, kh, cin, cout].
    Tensor * conv(const std::string & name, int64_t kw, int64_t kh, int64_t cin, int64_t cout) const;
    // f32 vector of n elements; with `slice_of` > 0 the stored tensor has that
    // many elements and elements [off, off + n) are taken.
    Tensor * vec(const std::string & name, int64_t n, int64_t slice_of = 0, int64_t off = 0) const;
    // f32 2-D tensor [ne0, ne1] (e.g. a position embedding added whole); with
    // rows >= 0 only the first `rows` rows (ne1 = rows) are taken.
    Tensor * dense(const std::string & name, int64_t ne0, int64_t ne1, int64_t rows = -1) const;
    // Like vec() but NULL without an error when the tensor is absent.
    Tensor * opt_vec(const std::string & name, int64_t n) const;

    Graph & graph() const { return *g_; }
    const Weights & weights() const { return *w_; }
    const Status & status() const { return *st_; }
    bool ok() const { return st_->ok(); }
    void fail(Status st) const;

private:
    const formats::TensorEntry * need(const std::string & full, const int64_t * ne, int n_dims_expected) const;
    Tensor * make(const formats::TensorEntry & e, WeightUse use, int n, const int64_t * ne, int64_t row_len = 0,
                  int64_t skip_rows = 0) const;

    Graph * g_;
    const Weights * w_;
    std::string prefix_;
    std::shared_ptr<Status> st_;
};

}  // namespace sdgo::model
