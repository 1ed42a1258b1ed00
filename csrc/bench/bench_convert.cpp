// bench_convert — throughput of the GGUF converter (`sd-go quantize`).
//
//   bench_convert [--quick] [threads]
//
// One SD-sized weight (f16 source, 1280 x 5120 = an SD1 UNet ff.net.0.proj,
// or 1280 x 1280 with --quick) converted to each target type through
// convert_tensor (decode to f32, quantize with the all-ones importance vector,
// the bytes handed to a sink that discards them): source MB/s and Melem/s,
// best of several runs, with 1 thread and with `threads` (default 2).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "convert/convert.h"
#include "base/threadpool.h"
#include "types/types.h"

using namespace sdgo;

int main(int argc, char ** argv) {
    bool quick = false;
    int threads = 2;
    for (int i = 1; i < argc; i++) {
        if (std::strcmp(argv[i], "--quick") == 0) quick = true;
        else threads = std::max(1, std::atoi(argv[i]));
    }
    const int64_t ne0 = 1280, nrows = quick ? 1280 : 5120;
    std::vector<uint16_t> h((size_t)(ne0 * nrows));
    std::mt19937 rng(1);
    std::normal_distribution<float> nd(0.0f, 0.02f);
    for (auto & v : h) v = fp32_to_fp16(nd(rng));
    formats::TensorEntry t;
    t.name = "w";
    t.type = DType::f16;
    t.n_dims = 2;
    t.ne[0] = ne0;
    t.ne[1] = nrows;
    t.data = reinterpret_cast<const uint8_t *>(h.data());
    t.nbytes = h.size() * 2;

    std::printf("bench_convert: f16 source %lld x %lld (%.1f MB)\n", (long long)nrows, (long long)ne0, t.nbytes / 1e6);
    std::printf("%-6s %8s %12s %12s\n", "target", "threads", "src MB/s", "Melem/s");
    for (int nth : {1, threads}) {
        ThreadPool pool(nth);
        for (DType to : {DType::f32, DType::bf16, DType::q8_0, DType::q5_1, DType::q5_0, DType::q4_1, DType::q4_0}) {
            double best = 1e30;
            for (int rep = 0; rep < (quick ? 2 : 4); rep++) {
                size_t sum = 0;
                auto t0 = std::chrono::steady_clock::now();
                Status st = convert::convert_tensor(t, (int32_t)to, &pool, nullptr, [&](const void *, size_t n) {
                    sum += n;
                    return Status();
                });
                double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                if (!st.ok()) {
                    std::printf("error: %s\n", st.message().c_str());
                    return 1;
                }
                best = std::min(best, dt);
            }
            std::printf("%-6s %8d %12.1f %12.1f\n", dtype_name(to), nth, t.nbytes / best / 1e6,
                        (double)(ne0 * nrows) / best / 1e6);
        }
    }
    return 0;
}
