// rng.h — the random number generators behind the initial latent noise and
// the ancestral samplers' noise.
//
// Two generators, both producing float32 standard normals:
//
//   "cuda"  Philox 4x32-10 with a Box-Muller transform, as AUTOMATIC1111's
//           "NV" source and stable-diffusion.cpp's "cuda" RNG, which emulate
//           torch's CUDA generator. The generator state is (seed, offset);
//           each randn() call uses the counter (offset, 0, i, 0) and the key
//           (seed low, seed high) for element i, keeps the first Box-Muller
//           output of the first two words, and then advances offset by one,
//           whatever the number of elements. The Box-Muller arithmetic is done
//           in double and rounded once, as A1111's numpy code does: bit-exact
//           with A1111 "NV"; within 3e-6 (absolute) of torch.randn on CUDA,
//           whose float32 logf/sinf no CPU code reproduces bit for bit.
//
//   "cpu"   torch's CPU generator (MT19937) seeded with manual_seed(seed), and
//           torch.randn's float32 sampling path, so that diffusers pipelines
//           run with a CPU torch.Generator are reproducible:
//             - n >= 16: one uniform (low 24 bits of one 32-bit draw, times
//               2^-24) per element, Box-Muller over blocks of 16 (pairs j and
//               j+8), and when n is not a multiple of 16 the last 16 elements
//               are refilled with fresh uniforms and transformed again;
//             - n < 16: element by element, torch's double-precision
//               Box-Muller on 53-bit uniforms, whose second value is cached
//               in the generator for the next small draw.
//           The float32 Box-Muller of the n >= 16 path depends on how torch
//           was built: its x86 kernels (AVX2 and AVX-512 capability, so any
//           recent x86 CPU) use Cephes-style polynomial log/sincos in float32
//           with fused multiply-adds, which TorchKernel::X86 reproduces bit
//           for bit; its generic kernel (arm64 builds, or
//           ATEN_CPU_CAPABILITY=default) calls the C library's logf/cosf/sinf,
//           which TorchKernel::Generic follows (bit-exact where the C library
//           is the same; otherwise within an ulp or so).
//
// Batches: image b of a batch uses seed + b with its own generator (A1111 and
// stable-diffusion.cpp); see batch_seed(). A diffusers-style batch instead
// draws the whole batch from one generator in one call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>
#include <string>

#include "base/status.h"

namespace sdgo::sampling {

enum class RngType : int {
    Cuda = 0,  // Philox, A1111 "NV" / sd.cpp "cuda" (the default)
    Cpu = 1,   // torch CPU generator (MT19937) + torch.randn float32
};

// Parses "cuda" (also "philox", "gpu", "nv") or "cpu" (also "torch_cpu").
Status parse_rng_type(const std::string & name, RngType * out);
const char * rng_type_name(RngType t);

class Rng {
public:
    virtual ~Rng() = default;
    // Re-seeds the generator and clears any cached state.
    virtual void seed(uint64_t seed) = 0;
    // Fills out[0..n) with standard normal float32 samples (one "randn" call
    // for a contiguous tensor of n elements).
    virtual void randn(size_t n, float * out) = 0;
    virtual RngType type() const = 0;
};

// Philox 4x32-10 generator (A1111 "NV").
class PhiloxRng final : public Rng {
public:
    explicit PhiloxRng(uint64_t seed = 0) { this->seed(seed); }
    void seed(uint64_t seed) override {
        seed_ = seed;
        offset_ = 0;
    }
    void randn(size_t n, float * out) override;
    RngType type() const override { return RngType::Cuda; }
    uint64_t offset() const { return offset_; }

    // The raw block function: 10 rounds of Philox 4x32 on counter c with key k.
    static void philox4x32_10(uint32_t c[4], uint32_t k0, uint32_t k1);

private:
    uint64_t seed_ = 0;
    uint64_t offset_ = 0;
};

// The MT19937 engine as torch seeds it (32-bit seed, standard tempering).
class Mt19937 {
public:
    explicit Mt19937(uint64_t seed = 5489) { this->seed(seed); }
    void seed(uint64_t seed);
    uint32_t next();
    // Two draws, the first one in the high 32 bits (torch's random64()).
    uint64_t next64() {
        uint64_t hi = next();
        uint64_t lo = next();
        return (hi << 32) | lo;
    }

private:
    void twist();
    uint32_t state_[624];
    int index_ = 624;
};

// Which of torch's CPU normal kernels to reproduce (see the top of the file).
enum class TorchKernel : int { X86 = 0, Generic = 1 };

// torch.Generator("cpu").manual_seed(seed) + torch.randn(n, dtype=float32).
class TorchCpuRng final : public Rng {
public:
    explicit TorchCpuRng(uint64_t seed = 0, TorchKernel kernel = TorchKernel::X86) : kernel_(kernel) {
        this->seed(seed);
    }
    void seed(uint64_t seed) override;
    void randn(size_t n, float * out) override;
    RngType type() const override { return RngType::Cpu; }

    // torch's uniform_real_distribution<float>(0, 1) on one 32-bit draw.
    float uniform_float();
    // torch's uniform_real_distribution<double>(0, 1) on one 64-bit draw.
    double uniform_double();
    // torch's normal_distribution<double>(0, 1), with the cached second value.
    double normal_double();

private:
    TorchKernel kernel_;
    Mt19937 mt_;
    bool have_next_double_ = false;
    double next_double_ = 0.0;
};

std::unique_ptr<Rng> make_rng(RngType type, uint64_t seed);

// Image `index` of a batch of `count` drawn from one generator (diffusers'
// num_images_per_prompt): each randn(n) draws count * n values from the
// shared stream, as the batched tensor would be, and keeps slice `index`.
// Replaying the whole stream per image costs count times the draws.
class BatchSliceRng final : public Rng {
public:
    BatchSliceRng(std::unique_ptr<Rng> shared, int count, int index)
        : shared_(std::move(shared)), count_(count > 0 ? size_t(count) : 1),
          index_(index >= 0 && size_t(index) < count_ ? size_t(index) : 0) {}
    void seed(uint64_t seed) override { shared_->seed(seed); }
    void randn(size_t n, float * out) override;
    RngType type() const override { return shared_->type(); }

private:
    std::unique_ptr<Rng> shared_;
    size_t count_, index_;
    std::vector<float> buf_;
};

// The seed of image `index` of a batch: seed + index (wrapping, as uint64).
inline uint64_t batch_seed(uint64_t seed, int64_t index) {
    return seed + static_cast<uint64_t>(index);
}

}  // namespace sdgo::sampling
