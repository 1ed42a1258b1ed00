// weights.h — weight lookup for the network graph builders.
//
// Weights wraps a loaded ModelFiles (tensors by canonical name) and hands the
// graph builders tensor data in a type the ops accept for each use:
//   matrix  mul_mat / get_rows operand: any type with a dequantizer, as stored
//   conv    conv2d kernel: f32 or f16 as stored; bf16 converted to f16 when
//           every value is exactly representable (always, for weights in
//           f16's range), anything else converted to f32
//   vector  bias / norm affine / embedding added as a whole: always f32
// Conversions (and copies of data that is not aligned to its element size)
// are made once and cached for the life of the Weights object, so graphs can
// be rebuilt (e.g. for another image size) without converting again.
//
// Binder is the builder-side helper: it prefixes names, checks every shape
// against the one the architecture expects and records the first problem
// (missing tensor, wrong shape, unsupported type) as a Status, returning NULL
// so that graph building goes on and the caller reports one clear error.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/graph.h"
#include "core/status.h"
#include "formats/model_file.h"

namespace sdgo::model {

enum class WeightUse { matrix, conv, vector };

struct WeightOptions {
    // Convert every weight to f32 (reference tests; exact f32 math).
    bool force_f32 = false;
};

class Weights {
public:
    // `files` must outlive this object and every graph built from it.
    explicit Weights(const formats::ModelFiles * files, WeightOptions opt = {});
    Weights(const Weights &) = delete;
    Weights & operator=(const Weights &) = delete;

    const formats::TensorEntry * find(const std::string & name) const;
    bool has(const std::string & name) const { return find(name) != nullptr; }
    const formats::ModelFiles * files() const { return files_; }

    // Data for `e` in a type fit for `use`: *type/*data are the graph weight's
    // type and bytes (the mapped bytes when usable as they are).
    Status prepare(const formats::TensorEntry & e, WeightUse use, DType * type, const void ** data);

    // Bytes held by conversions and aligned copies.
    size_t converted_bytes() const;

private:
    struct Owned {
        void * ptr = nullptr;
        size_t bytes = 0;
        DType type = DType::f32;
        ~Owned();
    };
    Status convert_f32(const formats::TensorEntry & e, const void ** data);
    // bf16 -> f16 when exact; false in *exact (nothing cached) otherwise.
    Status convert_bf16_f16(const formats::TensorEntry & e, const void ** data, bool * exact);
    Status copy_aligned(const formats::TensorEntry & e, const void ** data);

    const formats::ModelFiles * files_;
    WeightOptions opt_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, std::unique_ptr<Owned>> cache_;  // key: use tag + name
};

// Graph-builder helper. Copies share the recorded status.
class Binder {
public:
    Binder(Graph & g, Weights & w, std::string prefix = std::string());

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
    Weights & weights() const { return *w_; }
    const Status & status() const { return *st_; }
    bool ok() const { return st_->ok(); }
    void fail(Status st) const;

private:
    const formats::TensorEntry * need(const std::string & full, const int64_t * ne, int n_dims_expected) const;
    Tensor * make(const formats::TensorEntry & e, WeightUse use, int n, const int64_t * ne, size_t byte_off = 0) const;

    Graph * g_;
    Weights * w_;
    std::string prefix_;
    std::shared_ptr<Status> st_;
};

}  // namespace sdgo::model
