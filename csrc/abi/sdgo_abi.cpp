// sdgo_abi.cpp — the extern "C" entry points for versions, logging and the
// engine context. Each shim validates its arguments, runs the C++ code under
// abi::guarded, and keeps the failure message on the handle.
#include <cstdlib>
#include <string>

#include "abi/abi_util.h"
#include "abi/context.h"
#include "backends/registry.h"
#include "base/log.h"
#include "sdgo.h"

#ifndef SDGO_VERSION_STRING
#  define SDGO_VERSION_STRING "0.0.0"
#endif

using sdgo::Status;
using sdgo::cpu::CodePath;

namespace {

Status select_code_path(sdgo_context * ctx, const std::string & name) {
    if (name == "auto" || name.empty()) {
        ctx->code_path = sdgo::cpu::best_code_path();
        return Status();
    }
    CodePath p;
    if (!sdgo::cpu::parse_code_path(name, &p))
        return sdgo::error(SDGO_ERR_INVALID_ARGUMENT,
                           "unknown code path \"%s\" (want auto, avx512, avx2, neon or scalar)", name.c_str());
    if (!sdgo::cpu::code_path_compiled(p))
        return sdgo::error(SDGO_ERR_UNSUPPORTED, "code path %s is not compiled into this library", name.c_str());
    if (!sdgo::cpu::code_path_runnable(p))
        return sdgo::error(SDGO_ERR_UNSUPPORTED, "this CPU cannot run code path %s", name.c_str());
    ctx->code_path = p;
    return Status();
}

std::string json_escape(const std::string & s) {
    std::string o;
    for (char c : s) {
        if (c == '"' || c == '\\') { o += '\\'; o += c; }
        else if (static_cast<unsigned char>(c) < 0x20) o += sdgo::strprintf("\\u%04x", c);
        else o += c;
    }
    return o;
}

std::string json_list(const std::vector<std::string> & v) {
    std::string o = "[";
    for (size_t i = 0; i < v.size(); i++) o += (i ? ",\"" : "\"") + json_escape(v[i]) + "\"";
    return o + "]";
}

}  // namespace

extern "C" {

int32_t sdgo_abi_version(void) { return SDGO_ABI_VERSION; }

const char * sdgo_version(void) { return SDGO_VERSION_STRING; }

const char * sdgo_status_name(int32_t status) {
    switch (status) {
        case SDGO_OK: return "ok";
        case SDGO_ERR_INVALID_ARGUMENT: return "invalid argument";
        case SDGO_ERR_IO: return "i/o error";
        case SDGO_ERR_FORMAT: return "malformed file";
        case SDGO_ERR_UNSUPPORTED: return "unsupported";
        case SDGO_ERR_OUT_OF_MEMORY: return "out of memory";
        case SDGO_ERR_CANCELED: return "canceled";
        case SDGO_ERR_BUFFER_TOO_SMALL: return "buffer too small";
        case SDGO_ERR_INTERNAL: return "internal error";
        default: return "unknown status";
    }
}

void sdgo_log_set(sdgo_log_callback cb, void * user_data, int32_t min_level) {
    sdgo::log_set(cb, user_data, min_level);
}

int32_t sdgo_context_new(int32_t n_threads, sdgo_context ** out, char * err, size_t err_len) {
    std::string msg;
    if (!out) {
        sdgo::abi::copy_message("sdgo_context_new: out is NULL", err, err_len);
        return SDGO_ERR_INVALID_ARGUMENT;
    }
    *out = nullptr;
    sdgo_context * made = nullptr;
    int32_t rc = sdgo::abi::guarded(&msg, [&]() -> Status {
        if (n_threads > 1024)
            return sdgo::error(SDGO_ERR_INVALID_ARGUMENT, "thread count %d is out of range (1..1024, or <= 0 for auto)", n_threads);
        auto ctx = std::make_unique<sdgo_context>();
        ctx->n_threads = n_threads > 0 ? n_threads : sdgo::cpu::cpu_info().physical_cores;
        const char * env = std::getenv("SDGO_CODE_PATH");
        SDGO_TRY(select_code_path(ctx.get(), env ? env : "auto").wrap("SDGO_CODE_PATH"));
        ctx->pool = std::make_unique<sdgo::ThreadPool>(ctx->n_threads);
        SDGO_LOG_D("context: %d threads, code path %s", ctx->n_threads, sdgo::cpu::code_path_name(ctx->code_path));
        made = ctx.release();
        return Status();
    });
    if (rc != SDGO_OK) {
        sdgo::abi::copy_message(msg, err, err_len);
        return rc;
    }
    *out = made;
    return SDGO_OK;
}

void sdgo_context_free(sdgo_context * ctx) { delete ctx; }

const char * sdgo_context_error(const sdgo_context * ctx) { return ctx ? ctx->error.c_str() : "context is NULL"; }

int32_t sdgo_context_set_code_path(sdgo_context * ctx, const char * name) {
    if (!ctx) return SDGO_ERR_INVALID_ARGUMENT;
    ctx->error.clear();
    return sdgo::abi::guarded(&ctx->error, [&] {
        if (!name) return sdgo::error(SDGO_ERR_INVALID_ARGUMENT, "code path name is NULL");
        return select_code_path(ctx, name);
    });
}

int32_t sdgo_context_system_info(sdgo_context * ctx, char * buf, size_t buf_len, size_t * needed) {
    if (!ctx) return SDGO_ERR_INVALID_ARGUMENT;
    ctx->error.clear();
    return sdgo::abi::guarded(&ctx->error, [&]() -> Status {
        const auto & ci = sdgo::cpu::cpu_info();
        std::vector<std::string> paths;
        for (CodePath p : sdgo::cpu::runnable_code_paths()) paths.emplace_back(sdgo::cpu::code_path_name(p));
        std::string s = sdgo::strprintf(
            "{\"engine_version\":\"%s\",\"abi_version\":%d,\"arch\":\"%s\",\"cpu_model\":\"%s\","
            "\"cpu_features\":%s,\"code_paths\":%s,\"code_path\":\"%s\",\"threads\":%d,\"physical_cores\":%d,"
            "\"logical_cores\":%d,\"backends\":%s}",
            SDGO_VERSION_STRING, SDGO_ABI_VERSION, json_escape(ci.arch).c_str(), json_escape(ci.model).c_str(),
            json_list(ci.feature_names()).c_str(), json_list(paths).c_str(), sdgo::cpu::code_path_name(ctx->code_path),
            ctx->n_threads, ci.physical_cores, ci.logical_cores, sdgo::backends::registry_json().c_str());
        std::string msg;
        int32_t rc = sdgo::abi::copy_out(s, buf, buf_len, needed, &msg);
        return Status(rc, msg);
    });
}

}  // extern "C"
