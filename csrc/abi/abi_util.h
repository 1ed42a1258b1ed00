// abi_util.h — helpers shared by the extern "C" shims: copying messages into
// caller buffers, and turning exceptions into status codes so that nothing
// ever unwinds across the C boundary.
#pragma once

#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "base/status.h"

namespace sdgo::abi {

// Copies msg into buf (truncating, always NUL-terminated when buf_len > 0).
inline void copy_message(const std::string & msg, char * buf, size_t buf_len) {
    if (!buf || buf_len == 0) return;
    size_t n = msg.size() < buf_len - 1 ? msg.size() : buf_len - 1;
    std::memcpy(buf, msg.data(), n);
    buf[n] = '\0';
}

// Writes s plus a NUL into buf; reports the size needed.
inline int32_t copy_out(const std::string & s, char * buf, size_t buf_len, size_t * needed, std::string * err) {
    if (needed) *needed = s.size() + 1;
    if (!buf || buf_len < s.size() + 1) {
        *err = strprintf("buffer too small: need %zu bytes, have %zu", s.size() + 1, buf_len);
        return SDGO_ERR_BUFFER_TOO_SMALL;
    }
    std::memcpy(buf, s.data(), s.size());
    buf[s.size()] = '\0';
    return SDGO_OK;
}

// Runs fn (returning Status) and converts any escaping exception. The
// message of a failure goes to *err_out.
template <typename F>
int32_t guarded(std::string * err_out, F && fn) noexcept {
    try {
        Status st = fn();
        if (!st.ok()) *err_out = st.message();
        return st.code();
    } catch (const std::bad_alloc &) {
        *err_out = "out of memory";
        return SDGO_ERR_OUT_OF_MEMORY;
    } catch (const std::exception & e) {
        *err_out = std::string("internal error: ") + e.what();
        return SDGO_ERR_INTERNAL;
    } catch (...) {
        *err_out = "internal error: unknown exception";
        return SDGO_ERR_INTERNAL;
    }
}

}  // namespace sdgo::abi
