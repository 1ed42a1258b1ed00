// log.h — process-wide logging routed to the callback installed through the
// C ABI (sdgo_log_set). Without a callback, messages are dropped.
#pragma once

#include <cstdint>

#include "sdgo.h"

namespace sdgo {

void log_set(sdgo_log_callback cb, void * user_data, int32_t min_level);
bool log_enabled(int32_t level);
void logf(int32_t level, const char * fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace sdgo

#define SDGO_LOG_D(...) ::sdgo::logf(SDGO_LOG_DEBUG, __VA_ARGS__)
#define SDGO_LOG_I(...) ::sdgo::logf(SDGO_LOG_INFO, __VA_ARGS__)
#define SDGO_LOG_W(...) ::sdgo::logf(SDGO_LOG_WARN, __VA_ARGS__)
#define SDGO_LOG_E(...) ::sdgo::logf(SDGO_LOG_ERROR, __VA_ARGS__)
