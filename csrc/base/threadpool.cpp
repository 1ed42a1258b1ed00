#include "base/threadpool.h"

#if defined(__x86_64__)
#  include <immintrin.h>
#  define SDGO_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#  define SDGO_PAUSE() __asm__ volatile("yield")
#else
#  define SDGO_PAUSE() ((void)0)
#endif

namespace sdgo {

namespace {
constexpr int kSpinIterations = 20000;  // roughly tens of microseconds
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
    workers_.reserve(n_threads_ - 1);
    for (int i = 1; i < n_threads_; i++) workers_.emplace_back([this, i] { worker_main(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stop_.store(true);
        generation_.fetch_add(1);
    }
    cv_.notify_all();
    for (auto & t : workers_) t.join();
}

void ThreadPool::execute(int ith) {
    try {
        (*job_)(ith, n_threads_);
    } catch (...) {
        std::lock_guard<std::mutex> lk(err_mu_);
        if (!err_) err_ = std::current_exception();
    }
}

void ThreadPool::worker_main(int ith) {
    uint64_t seen = 0;
    for (;;) {
        // Spin for a while: consecutive ops arrive within microseconds.
        uint64_t g = generation_.load(std::memory_order_acquire);
        for (int i = 0; i < kSpinIterations && g == seen; i++) {
            SDGO_PAUSE();
            g = generation_.load(std::memory_order_acquire);
        }
        if (g == seen) {
            std::unique_lock<std::mutex> lk(mu_);
            cv_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
            g = generation_.load(std::memory_order_acquire);
        }
        seen = g;
        if (stop_.load()) return;
        execute(ith);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
}

void ThreadPool::run(const std::function<void(int, int)> & fn) {
    if (n_threads_ == 1) {
        fn(0, 1);
        return;
    }
    job_ = &fn;
    err_ = nullptr;
    pending_.store(n_threads_ - 1, std::memory_order_release);
    {
        std::lock_guard<std::mutex> lk(mu_);
        generation_.fetch_add(1, std::memory_order_acq_rel);
    }
    cv_.notify_all();
    execute(0);
    while (pending_.load(std::memory_order_acquire) != 0) SDGO_PAUSE();
    job_ = nullptr;
    if (err_) {
        std::exception_ptr e = err_;
        err_ = nullptr;
        std::rethrow_exception(e);
    }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int)> & fn) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    if (n <= grain || n_threads_ == 1) {
        for (int64_t i = 0; i < n; i++) fn(i, 0);
        return;
    }
    std::atomic<int64_t> next{0};
    run([&](int ith, int) {
        for (;;) {
            int64_t start = next.fetch_add(grain, std::memory_order_relaxed);
            if (start >= n) break;
            int64_t end = start + grain < n ? start + grain : n;
            for (int64_t i = start; i < end; i++) fn(i, ith);
        }
    });
}

}  // namespace sdgo
