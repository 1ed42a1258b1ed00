// pipeline_abi.cpp — extern "C" shims for load options, models, sessions,
// requests, results, cancel tokens and the catalog (the "Models, sessions
// and generation" section of sdgo.h).
#include <atomic>
#include <climits>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include "abi/abi_util.h"
#include "pipeline/model.h"
#include "pipeline/request.h"
#include "pipeline/session.h"
#include "sdgo.h"

struct sdgo_model_options {
    sdgo::pipeline::ModelOptions o;
    std::string error;
};

struct sdgo_model {
    std::shared_ptr<const sdgo::pipeline::Model> m;
    std::mutex mu;       // guards error
    std::string error;
};

struct sdgo_session {
    std::shared_ptr<const sdgo::pipeline::Model> model;  // keeps the model alive
    std::unique_ptr<sdgo::pipeline::Session> s;
    std::string error;
};

struct sdgo_request {
    sdgo::pipeline::Request r;
    std::string error;
};

struct sdgo_result {
    sdgo::pipeline::Result r;
};

struct sdgo_cancel {
    std::atomic<int32_t> flag{0};
};

namespace {

using sdgo::Status;
using sdgo::error;

std::string str_or_empty(const char * s) { return s ? std::string(s) : std::string(); }

std::string json_escape(const std::string & s) {
    std::string o;
    for (char c : s) {
        if (c == '"' || c == '\\') {
            o += '\\';
            o += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            o += sdgo::strprintf("\\u%04x", c);
        } else {
            o += c;
        }
    }
    return o;
}

Status as_int(int64_t value, int * dst, const char * what) {
    if (value < INT32_MIN || value > INT32_MAX)
        return error(SDGO_ERR_INVALID_ARGUMENT, "%s %lld is out of range", what, (long long)value);
    *dst = int(value);
    return Status();
}

}  // namespace

extern "C" {

// ---- load options -----------------------------------------------------------

SDGO_API sdgo_model_options * sdgo_model_options_new(void) {
    try {
        return new sdgo_model_options();
    } catch (...) {
        return nullptr;
    }
}

SDGO_API void sdgo_model_options_free(sdgo_model_options * o) { delete o; }

SDGO_API const char * sdgo_model_options_error(const sdgo_model_options * o) { return o ? o->error.c_str() : ""; }

SDGO_API int32_t sdgo_model_options_set_str(sdgo_model_options * o, int32_t key, const char * value) {
    if (!o) return SDGO_ERR_INVALID_ARGUMENT;
    o->error.clear();
    return sdgo::abi::guarded(&o->error, [&]() -> Status {
        const std::string v = str_or_empty(value);
        sdgo::pipeline::ModelOptions & m = o->o;
        switch (key) {
            case SDGO_MODEL_PATH: m.model_path = v; return Status();
            case SDGO_MODEL_VAE: m.vae_path = v; return Status();
            case SDGO_MODEL_WEIGHT_TYPE:
                if (!v.empty() && v != "f32")
                    return error(SDGO_ERR_INVALID_ARGUMENT,
                                 "weight type \"%s\": only \"\" or \"f32\" here; convert other types with a weight "
                                 "plan (SDGO_MODEL_WEIGHT_PLAN)",
                                 v.c_str());
                m.weight_type = v;
                return Status();
            case SDGO_MODEL_RNG:
                if (v.empty()) {
                    m.rng = sdgo::sampling::RngType::Cuda;
                    return Status();
                }
                return sdgo::sampling::parse_rng_type(v, &m.rng);
            case SDGO_MODEL_PREDICTION:
                if (!v.empty() && v != "epsilon" && v != "eps" && v != "v")
                    return error(SDGO_ERR_INVALID_ARGUMENT, "unknown prediction type \"%s\" (epsilon, v)", v.c_str());
                m.prediction = v;
                return Status();
            case SDGO_MODEL_BACKEND: m.backend = v.empty() ? "cpu" : v; return Status();
            case SDGO_MODEL_CODE_PATH: m.code_path = v == "auto" ? "" : v; return Status();
            case SDGO_MODEL_WEIGHT_PLAN: return sdgo::pipeline::parse_weight_plan(v, &m.weight_plan);
            case SDGO_MODEL_VAE_WEIGHT_PLAN: return sdgo::pipeline::parse_weight_plan(v, &m.vae_weight_plan);
            case SDGO_MODEL_REFINER: m.refiner_path = v; return Status();
            case SDGO_MODEL_REFINER_WEIGHT_PLAN: return sdgo::pipeline::parse_weight_plan(v, &m.refiner_weight_plan);
        }
        return error(SDGO_ERR_INVALID_ARGUMENT, "model option key %d is not a string key", key);
    });
}

SDGO_API int32_t sdgo_model_options_set_i64(sdgo_model_options * o, int32_t key, int64_t value) {
    if (!o) return SDGO_ERR_INVALID_ARGUMENT;
    o->error.clear();
    return sdgo::abi::guarded(&o->error, [&]() -> Status {
        sdgo::pipeline::ModelOptions & m = o->o;
        switch (key) {
            case SDGO_MODEL_DEVICE:
                if (value < 0 || value > 1024)
                    return error(SDGO_ERR_INVALID_ARGUMENT, "device index %lld is out of range", (long long)value);
                m.device = int(value);
                return Status();
            case SDGO_MODEL_THREADS:
                if (value > 1024)
                    return error(SDGO_ERR_INVALID_ARGUMENT, "%lld threads is out of range (at most 1024; <= 0: auto)",
                                 (long long)value);
                m.n_threads = value > 0 ? int(value) : 0;
                return Status();
        }
        return error(SDGO_ERR_INVALID_ARGUMENT, "model option key %d is not an integer key", key);
    });
}

// ---- models -------------------------------------------------------------------

SDGO_API int32_t sdgo_model_load(const sdgo_model_options * opts, sdgo_model ** out, char * err, size_t err_len) {
    std::string msg;
    if (out) *out = nullptr;
    int32_t rc = sdgo::abi::guarded(&msg, [&]() -> Status {
        if (!out) return error(SDGO_ERR_INVALID_ARGUMENT, "out is NULL");
        if (!opts) return error(SDGO_ERR_INVALID_ARGUMENT, "no load options given");
        if (opts->o.model_path.empty()) return error(SDGO_ERR_INVALID_ARGUMENT, "no model path given");
        std::unique_ptr<sdgo::pipeline::Model> m;
        SDGO_TRY(sdgo::pipeline::Model::load(opts->o, &m));
        std::unique_ptr<sdgo_model> h(new sdgo_model());
        h->m = std::move(m);
        *out = h.release();
        return Status();
    });
    if (rc != SDGO_OK) sdgo::abi::copy_message(msg, err, err_len);
    return rc;
}

SDGO_API void sdgo_model_free(sdgo_model * m) { delete m; }

SDGO_API const char * sdgo_model_error(const sdgo_model * m) { return m ? m->error.c_str() : ""; }

SDGO_API int32_t sdgo_model_info(sdgo_model * m, char * buf, size_t buf_len, size_t * needed) {
    if (!m) return SDGO_ERR_INVALID_ARGUMENT;
    const sdgo::pipeline::ModelSummary & s = m->m->summary();
    const std::string j = sdgo::strprintf(
        "{\"family\":\"%s\",\"variant\":\"%s\",\"prediction\":\"%s\",\"source\":\"%s\",\"unet_in_channels\":%d,"
        "\"latent_channels\":%d,\"vae_downscale\":%d,\"granularity\":%d,\"text_max_positions\":%d,"
        "\"backend\":\"%s\",\"device\":\"%s\",\"weight_bytes\":%llu,\"refiner_family\":\"%s\"}",
        json_escape(s.family).c_str(), json_escape(s.variant).c_str(), json_escape(s.prediction).c_str(),
        json_escape(s.source).c_str(), s.unet_in_channels, s.latent_channels, s.vae_downscale, s.granularity,
        s.text_max_positions, json_escape(s.backend).c_str(), json_escape(s.device).c_str(),
        (unsigned long long)s.weight_bytes, json_escape(s.refiner_family).c_str());
    std::string e;
    const int32_t rc = sdgo::abi::copy_out(j, buf, buf_len, needed, &e);
    if (rc != SDGO_OK) {
        std::lock_guard<std::mutex> lk(m->mu);
        m->error = e;
    }
    return rc;
}

// ---- sessions -----------------------------------------------------------------

SDGO_API int32_t sdgo_session_new(sdgo_model * m, int32_t n_threads, sdgo_session ** out, char * err,
                                  size_t err_len) {
    std::string msg;
    if (out) *out = nullptr;
    int32_t rc = sdgo::abi::guarded(&msg, [&]() -> Status {
        if (!out) return error(SDGO_ERR_INVALID_ARGUMENT, "out is NULL");
        if (!m) return error(SDGO_ERR_INVALID_ARGUMENT, "model is NULL");
        if (n_threads > 1024)
            return error(SDGO_ERR_INVALID_ARGUMENT, "%d threads is out of range (at most 1024; <= 0: the model's)",
                         n_threads);
        std::unique_ptr<sdgo_session> h(new sdgo_session());
        h->model = m->m;
        sdgo::pipeline::SessionOptions so;
        so.n_threads = n_threads > 0 ? n_threads : 0;
        SDGO_TRY(sdgo::pipeline::Session::create(*h->model, so, &h->s));
        *out = h.release();
        return Status();
    });
    if (rc != SDGO_OK) sdgo::abi::copy_message(msg, err, err_len);
    return rc;
}

SDGO_API void sdgo_session_free(sdgo_session * s) { delete s; }

SDGO_API const char * sdgo_session_error(const sdgo_session * s) { return s ? s->error.c_str() : ""; }

// ---- requests -----------------------------------------------------------------

SDGO_API sdgo_request * sdgo_request_new(void) {
    try {
        return new sdgo_request();
    } catch (...) {
        return nullptr;
    }
}

SDGO_API void sdgo_request_free(sdgo_request * r) { delete r; }

SDGO_API const char * sdgo_request_error(const sdgo_request * r) { return r ? r->error.c_str() : ""; }

SDGO_API int32_t sdgo_request_set_str(sdgo_request * r, int32_t key, const char * value) {
    if (!r) return SDGO_ERR_INVALID_ARGUMENT;
    r->error.clear();
    return sdgo::abi::guarded(&r->error, [&]() -> Status {
        const std::string v = str_or_empty(value);
        sdgo::pipeline::Request & q = r->r;
        switch (key) {
            case SDGO_REQ_PROMPT: q.prompt = v; return Status();
            case SDGO_REQ_NEGATIVE_PROMPT: q.negative_prompt = v; return Status();
            case SDGO_REQ_SAMPLER: return sdgo::sampling::parse_sampler(v, &q.sampler);
            case SDGO_REQ_SCHEDULER: return sdgo::sampling::parse_scheduler(v, &q.scheduler);
            case SDGO_REQ_RNG: {
                if (v.empty()) {
                    q.rng = -1;
                    return Status();
                }
                sdgo::sampling::RngType t;
                SDGO_TRY(sdgo::sampling::parse_rng_type(v, &t));
                q.rng = int(t);
                return Status();
            }
            case SDGO_REQ_COMPAT: return sdgo::pipeline::parse_compat(v, &q.compat);
            case SDGO_REQ_VAE_TILING: return sdgo::pipeline::parse_vae_tiling(v, &q.vae_tiling);
        }
        return error(SDGO_ERR_INVALID_ARGUMENT, "request key %d is not a string key", key);
    });
}

SDGO_API int32_t sdgo_request_set_i64(sdgo_request * r, int32_t key, int64_t value) {
    if (!r) return SDGO_ERR_INVALID_ARGUMENT;
    r->error.clear();
    return sdgo::abi::guarded(&r->error, [&]() -> Status {
        sdgo::pipeline::Request & q = r->r;
        switch (key) {
            case SDGO_REQ_WIDTH: return as_int(value, &q.width, "width");
            case SDGO_REQ_HEIGHT: return as_int(value, &q.height, "height");
            case SDGO_REQ_STEPS: return as_int(value, &q.steps, "steps");
            case SDGO_REQ_BATCH: return as_int(value, &q.batch, "batch count");
            case SDGO_REQ_CLIP_SKIP: return as_int(value, &q.clip_skip, "clip skip");
            case SDGO_REQ_VAE_TILE_SIZE: return as_int(value, &q.vae_tile_size, "VAE tile size");
            case SDGO_REQ_VAE_TILE_OVERLAP: return as_int(value, &q.vae_tile_overlap, "VAE tile overlap");
            case SDGO_REQ_ORIGINAL_WIDTH: return as_int(value, &q.original_width, "original width");
            case SDGO_REQ_ORIGINAL_HEIGHT: return as_int(value, &q.original_height, "original height");
            case SDGO_REQ_CROP_LEFT: return as_int(value, &q.crop_left, "crop left");
            case SDGO_REQ_CROP_TOP: return as_int(value, &q.crop_top, "crop top");
            case SDGO_REQ_TARGET_WIDTH: return as_int(value, &q.target_width, "target width");
            case SDGO_REQ_TARGET_HEIGHT: return as_int(value, &q.target_height, "target height");
            case SDGO_REQ_ONE_GENERATOR:
                if (value != 0 && value != 1)
                    return error(SDGO_ERR_INVALID_ARGUMENT, "one generator must be 0 or 1, got %lld", (long long)value);
                q.one_generator = value == 1;
                return Status();
            case SDGO_REQ_NEGATIVE_ORIGINAL_WIDTH:
                return as_int(value, &q.negative_original_width, "negative original width");
            case SDGO_REQ_NEGATIVE_ORIGINAL_HEIGHT:
                return as_int(value, &q.negative_original_height, "negative original height");
            case SDGO_REQ_NEGATIVE_CROP_LEFT: return as_int(value, &q.negative_crop_left, "negative crop left");
            case SDGO_REQ_NEGATIVE_CROP_TOP: return as_int(value, &q.negative_crop_top, "negative crop top");
            case SDGO_REQ_NEGATIVE_TARGET_WIDTH: return as_int(value, &q.negative_target_width, "negative target width");
            case SDGO_REQ_NEGATIVE_TARGET_HEIGHT:
                return as_int(value, &q.negative_target_height, "negative target height");
            case SDGO_REQ_SEED: q.seed = value; return Status();
        }
        return error(SDGO_ERR_INVALID_ARGUMENT, "request key %d is not an integer key", key);
    });
}

SDGO_API int32_t sdgo_request_set_f64(sdgo_request * r, int32_t key, double value) {
    if (!r) return SDGO_ERR_INVALID_ARGUMENT;
    r->error.clear();
    return sdgo::abi::guarded(&r->error, [&]() -> Status {
        sdgo::pipeline::Request & q = r->r;
        if (!std::isfinite(value))
            return error(SDGO_ERR_INVALID_ARGUMENT, "request key %d: %g is not a finite number", key, value);
        switch (key) {
            case SDGO_REQ_CFG_SCALE: q.cfg_scale = float(value); return Status();
            case SDGO_REQ_STRENGTH: q.strength = float(value); return Status();
            case SDGO_REQ_ETA: q.eta = float(value); return Status();
            case SDGO_REQ_AESTHETIC_SCORE: q.aesthetic_score = float(value); return Status();
            case SDGO_REQ_NEGATIVE_AESTHETIC_SCORE: q.negative_aesthetic_score = float(value); return Status();
            case SDGO_REQ_REFINER_SWITCH: q.refiner_switch = float(value); return Status();
        }
        return error(SDGO_ERR_INVALID_ARGUMENT, "request key %d is not a float key", key);
    });
}

SDGO_API int32_t sdgo_request_set_image(sdgo_request * r, int32_t key, const uint8_t * px, int32_t width,
                                        int32_t height, int32_t channels) {
    if (!r) return SDGO_ERR_INVALID_ARGUMENT;
    r->error.clear();
    return sdgo::abi::guarded(&r->error, [&]() -> Status {
        sdgo::pipeline::Request & q = r->r;
        if (key != SDGO_REQ_INIT_IMAGE && key != SDGO_REQ_MASK)
            return error(SDGO_ERR_INVALID_ARGUMENT, "request key %d is not an image key", key);
        if (!px) {
            if (key == SDGO_REQ_INIT_IMAGE) {
                q.init_rgb.clear();
                q.init_width = q.init_height = 0;
            } else {
                q.mask.clear();
                q.mask_width = q.mask_height = 0;
            }
            return Status();
        }
        if (width <= 0 || height <= 0 || width > sdgo::pipeline::kMaxImageSide ||
            height > sdgo::pipeline::kMaxImageSide)
            return error(SDGO_ERR_INVALID_ARGUMENT, "image size %dx%d is invalid (1..%d per side)", width, height,
                         sdgo::pipeline::kMaxImageSide);
        const size_t n = size_t(width) * size_t(height);
        if (key == SDGO_REQ_INIT_IMAGE) {
            if (channels != 3) return error(SDGO_ERR_INVALID_ARGUMENT, "init image must have 3 channels, got %d", channels);
            q.init_rgb.assign(px, px + n * 3);
            q.init_width = width;
            q.init_height = height;
        } else {
            if (channels != 1) return error(SDGO_ERR_INVALID_ARGUMENT, "mask must have 1 channel, got %d", channels);
            q.mask.assign(px, px + n);
            q.mask_width = width;
            q.mask_height = height;
        }
        return Status();
    });
}

// ---- cancel tokens ------------------------------------------------------------

SDGO_API sdgo_cancel * sdgo_cancel_new(void) {
    try {
        return new sdgo_cancel();
    } catch (...) {
        return nullptr;
    }
}

SDGO_API void sdgo_cancel_trigger(sdgo_cancel * c) {
    if (c) c->flag.store(1);
}

SDGO_API void sdgo_cancel_reset(sdgo_cancel * c) {
    if (c) c->flag.store(0);
}

SDGO_API void sdgo_cancel_free(sdgo_cancel * c) { delete c; }

// ---- generation ---------------------------------------------------------------

SDGO_API int32_t sdgo_session_generate(sdgo_session * s, const sdgo_request * r, sdgo_cancel * cancel,
                                       sdgo_progress_callback progress, void * user_data, sdgo_result ** out) {
    if (!s) return SDGO_ERR_INVALID_ARGUMENT;
    if (out) *out = nullptr;
    s->error.clear();
    return sdgo::abi::guarded(&s->error, [&]() -> Status {
        if (!out) return error(SDGO_ERR_INVALID_ARGUMENT, "out is NULL");
        if (!r) return error(SDGO_ERR_INVALID_ARGUMENT, "request is NULL");
        // A progress callback that returns non-zero stops the generation
        // through a second token, so that the caller's stays untouched.
        std::atomic<int32_t> stop{0};
        sdgo::pipeline::Hooks h;
        h.cancel = cancel ? &cancel->flag : nullptr;
        h.stop = &stop;
        if (progress) {
            h.progress = [&stop, progress, user_data](int step, int total, double secs) {
                if (progress(SDGO_PHASE_SAMPLE, step, total, int64_t(secs * 1000.0), user_data) != 0) stop.store(1);
            };
            h.phase = [&stop, progress, user_data](sdgo::pipeline::Phase ph, int index, int count, double secs) {
                if (ph == sdgo::pipeline::Phase::sample) return;  // the steps say it
                const int32_t p = ph == sdgo::pipeline::Phase::encode ? SDGO_PHASE_ENCODE : SDGO_PHASE_DECODE;
                if (progress(p, index, count, int64_t(secs * 1000.0), user_data) != 0) stop.store(1);
            };
        }
        std::unique_ptr<sdgo_result> res(new sdgo_result());
        SDGO_TRY(s->s->generate(r->r, h, &res->r));
        *out = res.release();
        return Status();
    });
}

SDGO_API void sdgo_result_free(sdgo_result * res) { delete res; }

SDGO_API int32_t sdgo_result_count(const sdgo_result * res) { return res ? res->r.batch : 0; }
SDGO_API int32_t sdgo_result_width(const sdgo_result * res) { return res ? res->r.width : 0; }
SDGO_API int32_t sdgo_result_height(const sdgo_result * res) { return res ? res->r.height : 0; }

SDGO_API int64_t sdgo_result_seed(const sdgo_result * res, int32_t index) {
    if (!res || index < 0 || size_t(index) >= res->r.seeds.size()) return 0;
    return res->r.seeds[size_t(index)];
}

SDGO_API int32_t sdgo_result_image(const sdgo_result * res, int32_t index, uint8_t * buf, size_t buf_len,
                                   size_t * needed) {
    if (!res || index < 0 || index >= res->r.batch) return SDGO_ERR_INVALID_ARGUMENT;
    const size_t n = size_t(res->r.width) * size_t(res->r.height) * 3;
    if (needed) *needed = n;
    if (!buf || buf_len < n) return SDGO_ERR_BUFFER_TOO_SMALL;
    std::memcpy(buf, res->r.rgb.data() + n * size_t(index), n);
    return SDGO_OK;
}

SDGO_API int32_t sdgo_catalog_json(char * buf, size_t buf_len, size_t * needed) {
    std::string e;
    try {
        return sdgo::abi::copy_out(sdgo::pipeline::catalog_json(), buf, buf_len, needed, &e);
    } catch (...) {
        return SDGO_ERR_OUT_OF_MEMORY;
    }
}

}  // extern "C"
