// status.h — the engine's error value.
//
// Every fallible internal function returns a Status. Codes are the C ABI's
// sdgo_status values, so the ABI layer passes them through unchanged and the
// message travels with them up to the handle that reports it.
#pragma once

#include <cstdarg>
#include <string>
#include <utility>

#include "sdgo.h"

namespace sdgo {

class Status {
public:
    Status() = default;  // OK
    Status(int32_t code, std::string msg) : code_(code), msg_(std::move(msg)) {}

    bool ok() const { return code_ == SDGO_OK; }
    int32_t code() const { return code_; }
    const std::string & message() const { return msg_; }

    // Prefix the message with context, e.g. the file or tensor being read.
    Status & wrap(const std::string & context) {
        if (!ok()) msg_ = context + ": " + msg_;
        return *this;
    }

private:
    int32_t code_ = SDGO_OK;
    std::string msg_;
};

// printf-style constructors for the common codes.
Status error(int32_t code, const char * fmt, ...) __attribute__((format(printf, 2, 3)));
std::string strprintf(const char * fmt, ...) __attribute__((format(printf, 1, 2)));
std::string vstrprintf(const char * fmt, va_list ap);

}  // namespace sdgo

// Return early from the enclosing function when a Status-returning
// expression fails.
#define SDGO_TRY(expr)                        \
    do {                                      \
        ::sdgo::Status sdgo_try_st_ = (expr); \
        if (!sdgo_try_st_.ok()) return sdgo_try_st_; \
    } while (0)
