// threadpool.h — a persistent pool of worker threads for data-parallel ops.
//
// The calling thread takes part as thread 0, so a pool of n threads starts
// n-1 workers. Workers spin briefly after each job (graph ops come back to
// back) and then sleep on a condition variable, so an idle pool costs nothing.
// A pool runs one job at a time; it is owned by one engine context and is
// not meant to be shared by concurrent callers.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace sdgo {

class ThreadPool {
public:
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool &) = delete;
    ThreadPool & operator=(const ThreadPool &) = delete;

    int size() const { return n_threads_; }

    // Runs fn(ith, nth) once on each of the nth = size() threads and returns
    // when all have finished. An exception thrown by fn is rethrown here.
    void run(const std::function<void(int ith, int nth)> & fn);

    // Runs fn(i, ith) for every i in [0, n), handing indices out dynamically
    // in chunks of `grain`. With n <= grain it runs inline on the caller.
    void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t i, int ith)> & fn);

private:
    void worker_main(int ith);
    void execute(int ith);

    int n_threads_;
    std::vector<std::thread> workers_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> pending_{0};
    std::atomic<bool> stop_{false};
    const std::function<void(int, int)> * job_ = nullptr;
    std::mutex err_mu_;
    std::exception_ptr err_;
};

}  // namespace sdgo
