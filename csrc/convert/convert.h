// convert.h — the model converter behind `sd-go quantize`: any model the
// formats readers open, written as one GGUF file with a chosen type per
// tensor.
//
// The policy (which tensor gets which type) is not decided here: the caller
// passes a plan, one target type per tensor (Go's quantize package computes
// it from stable-diffusion.cpp's rules). This file owns the numerics and the
// file format:
//   * source types are first normalised as stable-diffusion.cpp does
//     (its model_loader): f8_e4m3/f8_e5m2 -> f16, f64 -> f32, i64 -> i32;
//     f32, f16, bf16, i8, i16, i32 and the ggml block types stay;
//   * a tensor whose target equals its normalised type is copied as is
//     (bytes unchanged); every other one goes through f32 and the type
//     table's quantizer (ggml_quantize_chunk semantics) with an importance
//     vector of ones, the call stable-diffusion.cpp's converter makes,
//     so q4_x/q5_x blocks come from ggml's weighted path;
//   * the GGUF (v3, alignment 32, tensors in plan order, each padded) is
//     streamed into a temporary file beside the output and renamed over it
//     at the end; on failure or cancellation the temporary file is removed
//     and nothing at the output path changes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "formats/model_file.h"
#include "types/types.h"

namespace sdgo {
class ThreadPool;
}

namespace sdgo::convert {

constexpr int32_t kDrop = -1;  // plan entry: leave the tensor out of the output

// The type a tensor is stored as after stable-diffusion.cpp's source
// normalisation, as a ggml id; kDrop when the tensor has no GGUF type
// (u8, bool, unsigned ints, fnuz/f6/f4 floats, ...).
int32_t normalized_type(const formats::TensorEntry & t);

// True when `t` (with normalised type `from`) can be written as `to`:
// to == from, or `from` is a float/block type we can decode and `to` is a
// float or block type we can encode and ne[0] is a multiple of its block size.
Status check_target(const formats::TensorEntry & t, int32_t to);

// Converts one tensor to `to`, handing the output bytes to `sink` in order,
// in pieces of whole rows. `pool` (may be NULL) spreads rows over threads;
// the bytes do not depend on it. `cancel` (may be NULL) is polled between
// pieces; a non-zero value stops with SDGO_ERR_CANCELED. `on_piece` (may be
// empty) is told the source bytes consumed by each piece.
Status convert_tensor(const formats::TensorEntry & t, int32_t to, ThreadPool * pool, const std::atomic<int32_t> * cancel,
                      const std::function<Status(const void * data, size_t n)> & sink,
                      const std::function<Status(uint64_t src_bytes)> & on_piece = {});

// quantize_rows (types.h) spread over the pool's threads by chunks of whole
// rows (about 64K elements each); rows are independent, so the bytes are the
// same for any thread count. f16 and bf16 go through the CPU's SIMD
// encoders, which give the reference bits. pool may be NULL.
Status quantize_rows_parallel(DType t, const float * src, void * dst, size_t cap, int64_t nrows, int64_t n_per_row,
                              const float * imatrix, size_t * written, ThreadPool * pool);

// Gives the VAE's mid-block attention q/k/v/proj_out weights back the 1x1
// convolution shape [C, C, 1, 1] (ggml ne = [1, 1, C, C]) that LDM
// checkpoints and stable-diffusion.cpp use; the canonical naming stores them
// as 2-D [C, C]. Same bytes; our loader reshapes them back to 2-D. With this
// shape stable-diffusion.cpp's rule 2 (row length 1) keeps them unquantized
// exactly as it does, and its VAE finds the shape it expects.
void restore_sdcpp_shapes(formats::ModelFiles * m);

struct Progress {
    int64_t tensor_index = 0;   // index into ModelFiles::tensors
    int64_t tensors_done = 0;   // tensors finished so far
    int64_t tensor_count = 0;   // tensors that will be written
    int32_t phase = 0;          // kPhase*
    int32_t out_type = 0;       // target type of the current tensor
    uint64_t bytes_done = 0;    // source bytes consumed so far (all tensors)
    uint64_t bytes_total = 0;   // source bytes of all tensors written
    uint64_t out_bytes_done = 0;// output bytes written so far (header included)
};
enum : int32_t { kPhaseTensorStart = 0, kPhaseBytes = 1, kPhaseTensorDone = 2, kPhaseFinishing = 3 };

// Return false to cancel.
using ProgressFn = std::function<bool(const Progress &)>;

struct Options {
    ThreadPool * pool = nullptr;
    const std::atomic<int32_t> * cancel = nullptr;
    ProgressFn progress;
    // String metadata written as well (e.g. model::embedded_metadata).
    std::vector<std::pair<std::string, std::string>> metadata;
};

struct Result {
    uint64_t bytes_in = 0;       // source bytes of the tensors written
    uint64_t bytes_out = 0;      // size of the GGUF file
    int64_t tensors_written = 0;
    int64_t tensors_dropped = 0;
};

// Writes `m` to out_path as GGUF with plan[i] the type of m.tensors[i]
// (kDrop to leave it out). Writes general.quantization_version = 2 when a
// tensor is block-quantized (stable-diffusion.cpp ignores metadata).
Status write_gguf(const formats::ModelFiles & m, const std::vector<int32_t> & plan, const std::string & out_path,
                  const Options & opt, Result * result);

}  // namespace sdgo::convert
