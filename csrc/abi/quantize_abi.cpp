// quantize_abi.cpp — the extern "C" shims of the Quantization section of
// sdgo.h, over convert/convert.h and model/load.h.
#include <atomic>
#include <string>
#include <vector>

#include "abi/abi_util.h"
#include "abi/context.h"
#include "convert/convert.h"
#include "model/load.h"
#include "sdgo.h"

struct sdgo_quantize_source {
    sdgo::model::LoadedModel model;
    std::string error;
};

using sdgo::Status;

static_assert(sizeof(std::atomic<int32_t>) == sizeof(int32_t), "cancel flag layout");

extern "C" {

int32_t sdgo_quantize_open(const char * path, sdgo_quantize_source ** out, char * err, size_t err_len) {
    if (out) *out = nullptr;
    std::string msg;
    sdgo_quantize_source * src = nullptr;
    int32_t rc = sdgo::abi::guarded(&msg, [&]() -> Status {
        if (!out) return sdgo::error(SDGO_ERR_INVALID_ARGUMENT, "out is NULL");
        if (!path || !*path) return sdgo::error(SDGO_ERR_INVALID_ARGUMENT, "empty model path");
        auto s = std::make_unique<sdgo_quantize_source>();
        SDGO_TRY(sdgo::model::load_model(path, &s->model));
        sdgo::convert::restore_sdcpp_shapes(&s->model.files);
        src = s.release();
        return Status();
    });
    if (rc != SDGO_OK) {
        sdgo::abi::copy_message(msg, err, err_len);
        return rc;
    }
    *out = src;
    return SDGO_OK;
}

void sdgo_quantize_free(sdgo_quantize_source * src) { delete src; }

const char * sdgo_quantize_error(const sdgo_quantize_source * src) { return src ? src->error.c_str() : ""; }

int64_t sdgo_quantize_tensor_count(const sdgo_quantize_source * src) {
    return src ? (int64_t)src->model.files.tensors.size() : 0;
}

uint64_t sdgo_quantize_source_bytes(const sdgo_quantize_source * src) {
    return src ? src->model.files.total_file_bytes() : 0;
}

int32_t sdgo_quantize_tensor_info(sdgo_quantize_source * src, int64_t i, sdgo_quantize_tensor * info, char * name_buf,
                                  size_t name_len, size_t * name_needed) {
    if (!src) return SDGO_ERR_INVALID_ARGUMENT;
    src->error.clear();
    return sdgo::abi::guarded(&src->error, [&]() -> Status {
        const auto & ts = src->model.files.tensors;
        if (i < 0 || (size_t)i >= ts.size())
            return sdgo::error(SDGO_ERR_INVALID_ARGUMENT, "tensor index %lld out of range (0..%zu)", (long long)i,
                               ts.size());
        const auto & t = ts[(size_t)i];
        if (info) {
            info->type = sdgo::convert::normalized_type(t);
            info->stored_type = t.is_ggml() ? t.type_id() : -1;
            info->n_dims = t.n_dims;
            info->reserved = 0;
            for (int d = 0; d < 4; d++) info->ne[d] = t.ne[d];
            info->nbytes = t.nbytes;
        }
        std::string msg;
        int32_t rc = sdgo::abi::copy_out(t.name, name_buf, name_len, name_needed, &msg);
        return Status(rc, msg);
    });
}

int32_t sdgo_quantize_write(sdgo_quantize_source * src, sdgo_context * ctx, const int32_t * plan, int64_t plan_len,
                            const char * out_path, const int32_t * cancel, sdgo_quantize_progress_fn progress,
                            void * user_data, sdgo_quantize_result * result) {
    if (!src) return SDGO_ERR_INVALID_ARGUMENT;
    src->error.clear();
    if (result) *result = sdgo_quantize_result{};
    return sdgo::abi::guarded(&src->error, [&]() -> Status {
        if (!ctx) return sdgo::error(SDGO_ERR_INVALID_ARGUMENT, "context is NULL");
        if (!out_path || !*out_path) return sdgo::error(SDGO_ERR_INVALID_ARGUMENT, "empty output path");
        const size_t n = src->model.files.tensors.size();
        if (plan_len < 0 || (size_t)plan_len != n || (n > 0 && !plan))
            return sdgo::error(SDGO_ERR_INVALID_ARGUMENT, "the plan has %lld entries, the model %zu tensors",
                               (long long)plan_len, n);
        std::vector<int32_t> p(plan, plan + n);
        sdgo::convert::Options opt;
        opt.pool = ctx->pool.get();
        SDGO_TRY(sdgo::model::embedded_metadata(src->model, &opt.metadata));
        opt.cancel = reinterpret_cast<const std::atomic<int32_t> *>(cancel);
        if (progress) {
            opt.progress = [&](const sdgo::convert::Progress & pr) -> bool {
                sdgo_quantize_progress c;
                c.tensor_index = pr.tensor_index;
                c.tensors_done = pr.tensors_done;
                c.tensor_count = pr.tensor_count;
                c.phase = pr.phase;
                c.out_type = pr.out_type;
                c.bytes_done = pr.bytes_done;
                c.bytes_total = pr.bytes_total;
                c.out_bytes_done = pr.out_bytes_done;
                return progress(&c, user_data) == 0;
            };
        }
        sdgo::convert::Result r;
        SDGO_TRY(sdgo::convert::write_gguf(src->model.files, p, out_path, opt, &r));
        if (result) {
            result->bytes_in = r.bytes_in;
            result->bytes_out = r.bytes_out;
            result->tensors_written = r.tensors_written;
            result->tensors_dropped = r.tensors_dropped;
        }
        return Status();
    });
}

}  // extern "C"
