// context.h — the engine context behind the opaque sdgo_context handle.
#pragma once

#include <memory>
#include <string>

#include "base/threadpool.h"
#include "backends/cpu/cpu_features.h"

struct sdgo_context {
    int n_threads = 1;
    sdgo::cpu::CodePath code_path = sdgo::cpu::CodePath::scalar;
    std::unique_ptr<sdgo::ThreadPool> pool;
    std::string error;  // message of the last failed call on this handle
};
