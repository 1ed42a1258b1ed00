#include "base/log.h"

#include <atomic>
#include <cstdarg>
#include <mutex>
#include <string>

#include "base/status.h"

namespace sdgo {
namespace {

std::mutex g_log_mu;                 // serialises callback invocations
sdgo_log_callback g_cb = nullptr;
void * g_ud = nullptr;
std::atomic<int32_t> g_min_level{SDGO_LOG_INFO};
std::atomic<bool> g_has_cb{false};

}  // namespace

void log_set(sdgo_log_callback cb, void * user_data, int32_t min_level) {
    std::lock_guard<std::mutex> lk(g_log_mu);
    g_cb = cb;
    g_ud = user_data;
    g_min_level.store(min_level);
    g_has_cb.store(cb != nullptr);
}

bool log_enabled(int32_t level) {
    return g_has_cb.load(std::memory_order_relaxed) && level >= g_min_level.load(std::memory_order_relaxed);
}

void logf(int32_t level, const char * fmt, ...) {
    if (!log_enabled(level)) return;
    va_list ap;
    va_start(ap, fmt);
    std::string msg = vstrprintf(fmt, ap);
    va_end(ap);
    std::lock_guard<std::mutex> lk(g_log_mu);
    if (g_cb) g_cb(level, msg.c_str(), g_ud);
}

}  // namespace sdgo
