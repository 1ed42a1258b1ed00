// pipeline_abi.cpp — extern "C" shims for models, requests, cancel tokens and
// generation (the "Models and generation" section of sdgo.h).
#include <atomic>
#include <chrono>
#include <climits>
#include <cstring>
#include <memory>
#include <string>

#include "abi/abi_util.h"
#include "pipeline/pipeline.h"
#include "sdgo.h"

struct sdgo_model {
    std::unique_ptr<sdgo::pipeline::Pipeline> p;
    std::string error;
};

struct sdgo_request {
    sdgo::pipeline::Request r;
    std::string error;
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

}  // namespace

extern "C" {

SDGO_API int32_t sdgo_model_load(const char * path, const char * vae_path, const char * weight_type,
                                 const char * rng, const char * prediction, int32_t n_threads, sdgo_model ** out,
                                 char * err, size_t err_len) {
    std::string msg;
    if (out) *out = nullptr;
    int32_t rc = sdgo::abi::guarded(&msg, [&]() -> Status {
        if (!out) return error(SDGO_ERR_INVALID_ARGUMENT, "out is NULL");
        if (!path || !*path) return error(SDGO_ERR_INVALID_ARGUMENT, "no model path given");
        sdgo::pipeline::LoadOptions o;
        o.model_path = path;
        o.vae_path = str_or_empty(vae_path);
        o.weight_type = str_or_empty(weight_type);
        o.n_threads = n_threads;
        o.prediction = str_or_empty(prediction);
        if (!o.prediction.empty() && o.prediction != "epsilon" && o.prediction != "eps" && o.prediction != "v")
            return error(SDGO_ERR_INVALID_ARGUMENT, "unknown prediction type \"%s\" (epsilon, v)", o.prediction.c_str());
        if (rng && *rng) SDGO_TRY(sdgo::sampling::parse_rng_type(rng, &o.rng));
        std::unique_ptr<sdgo_model> m(new sdgo_model());
        SDGO_TRY(sdgo::pipeline::Pipeline::load(o, &m->p));
        *out = m.release();
        return Status();
    });
    if (rc != SDGO_OK) sdgo::abi::copy_message(msg, err, err_len);
    return rc;
}

SDGO_API void sdgo_model_free(sdgo_model * m) { delete m; }

SDGO_API const char * sdgo_model_error(const sdgo_model * m) { return m ? m->error.c_str() : ""; }

SDGO_API int32_t sdgo_model_info(sdgo_model * m, char * buf, size_t buf_len, size_t * needed) {
    if (!m) return SDGO_ERR_INVALID_ARGUMENT;
    m->error.clear();
    return sdgo::abi::guarded(&m->error, [&]() -> Status {
        const sdgo::pipeline::ModelSummary & s = m->p->summary();
        std::string j = sdgo::strprintf(
            "{\"family\":\"%s\",\"variant\":\"%s\",\"prediction\":\"%s\",\"source\":\"%s\",\"unet_in_channels\":%d,"
            "\"latent_channels\":%d,\"vae_downscale\":%d,\"granularity\":%d,\"text_max_positions\":%d}",
            json_escape(s.family).c_str(), json_escape(s.variant).c_str(), json_escape(s.prediction).c_str(),
            json_escape(s.source).c_str(), s.unet_in_channels, s.latent_channels, s.vae_downscale, s.granularity,
            s.text_max_positions);
        std::string e;
        int32_t rc = sdgo::abi::copy_out(j, buf, buf_len, needed, &e);
        if (rc != SDGO_OK) return error(rc, "%s", e.c_str());
        return Status();
    });
}

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
            case SDGO_REQ_COMPAT:
                if (v == "a1111" || v.empty()) q.compat = sdgo::pipeline::Compat::a1111;
                else if (v == "diffusers") q.compat = sdgo::pipeline::Compat::diffusers;
                else return error(SDGO_ERR_INVALID_ARGUMENT, "unknown compat mode \"%s\" (a1111, diffusers)", v.c_str());
                return Status();
        }
        return error(SDGO_ERR_INVALID_ARGUMENT, "request key %d is not a string key", key);
    });
}

SDGO_API int32_t sdgo_request_set_i64(sdgo_request * r, int32_t key, int64_t value) {
    if (!r) return SDGO_ERR_INVALID_ARGUMENT;
    r->error.clear();
    return sdgo::abi::guarded(&r->error, [&]() -> Status {
        sdgo::pipeline::Request & q = r->r;
        auto as_int = [&](int * dst, const char * what) -> Status {
            if (value < INT32_MIN || value > INT32_MAX)
                return error(SDGO_ERR_INVALID_ARGUMENT, "%s %lld is out of range", what, (long long)value);
            *dst = int(value);
            return Status();
        };
        switch (key) {
            case SDGO_REQ_WIDTH: return as_int(&q.width, "width");
            case SDGO_REQ_HEIGHT: return as_int(&q.height, "height");
            case SDGO_REQ_STEPS: return as_int(&q.steps, "steps");
            case SDGO_REQ_BATCH: return as_int(&q.batch, "batch count");
            case SDGO_REQ_CLIP_SKIP: return as_int(&q.clip_skip, "clip skip");
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
        switch (key) {
            case SDGO_REQ_CFG_SCALE: q.cfg_scale = float(value); return Status();
            case SDGO_REQ_STRENGTH: q.strength = float(value); return Status();
            case SDGO_REQ_ETA: q.eta = float(value); return Status();
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
            }
            return Status();
        }
        if (width <= 0 || height <= 0 || width > 65536 || height > 65536)
            return error(SDGO_ERR_INVALID_ARGUMENT, "image size %dx%d is invalid", width, height);
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

SDGO_API int32_t sdgo_generate(sdgo_model * m, const sdgo_request * r, sdgo_cancel * cancel,
                               sdgo_progress_callback progress, void * user_data, uint8_t * out, size_t out_len,
                               size_t * needed) {
    if (!m) return SDGO_ERR_INVALID_ARGUMENT;
    m->error.clear();
    return sdgo::abi::guarded(&m->error, [&]() -> Status {
        if (!r) return error(SDGO_ERR_INVALID_ARGUMENT, "request is NULL");
        const sdgo::pipeline::Request & q = r->r;
        if (q.width <= 0 || q.height <= 0 || q.batch <= 0)
            return error(SDGO_ERR_INVALID_ARGUMENT, "size %dx%d and batch count %d must be positive", q.width,
                         q.height, q.batch);
        const size_t need = size_t(q.width) * size_t(q.height) * 3 * size_t(q.batch);
        if (needed) *needed = need;
        if (!out || out_len < need)
            return error(SDGO_ERR_BUFFER_TOO_SMALL, "output buffer too small: need %zu bytes, have %zu", need, out_len);
        sdgo::pipeline::Hooks h;
        if (cancel) h.cancel = &cancel->flag;
        if (progress) {
            h.progress = [progress, user_data](int step, int total, double secs) {
                progress(SDGO_PHASE_SAMPLE, step, total, int64_t(secs * 1000.0), user_data);
            };
            h.phase = [progress, user_data](sdgo::pipeline::Phase ph, int index, int count, double secs) {
                if (ph == sdgo::pipeline::Phase::sample) return;  // the steps say it
                progress(ph == sdgo::pipeline::Phase::encode ? SDGO_PHASE_ENCODE : SDGO_PHASE_DECODE, index, count,
                         int64_t(secs * 1000.0), user_data);
            };
        }
        sdgo::pipeline::Result res;
        SDGO_TRY(m->p->generate(q, h, &res));
        if (res.rgb.size() != need) return error(SDGO_ERR_INTERNAL, "generated %zu bytes, expected %zu", res.rgb.size(), need);
        std::memcpy(out, res.rgb.data(), need);
        return Status();
    });
}

}  // extern "C"
