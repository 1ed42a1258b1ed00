// kernels.cpp — argument checking, dispatch and the blocked drivers of the
// CPU kernels. The drivers are shared by every instruction set: they cut the
// work into cache-sized blocks, pack the "B" operand into panels of NR
// floats (converting weights from their storage type on the way) and call
// the variant's register-tiled micro-kernel (gemm_micro.h).
//
// gemm: B (the weight, N rows of K) is packed per (column block, K block)
//   into kc x NR panels, converted to f32 on the way (f16 through the
//   variant's vector conversion, quantized types through the type table's
//   to_f32); A rows are read in place by the micro-kernel.
// conv2d: an implicit GEMM, two ways (conv.h): weight_rows (C = W x patches,
//   patch panels packed per block of pixels: large images) or pixel_rows
//   (C = patches x W^T, weight panels converted while packing, patch rows
//   packed per block, output transposed: small images with big weights).
// attention: per (batch, head, range of queries) and tile of keys, K^T and V
//   are packed once; per sub-tile of queries S = Q K^T and O += P V run on
//   the micro-kernel, with the online softmax in between (no score matrix).
//
// Determinism: every output element is the sum over K in fixed blocks of kc
// (chosen from the shape only), each block summed by the micro-kernel in
// increasing k, and the micro-kernel's arithmetic for one element does not
// depend on the tile it is in; threads only decide who computes which tile.
// So the result is bit-identical for any number of threads.
#include "backends/cpu/kernels.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "backends/cpu/conv.h"
#include "backends/cpu/gemm_micro.h"
#include "backends/cpu/type_convert.h"

namespace sdgo::cpu {

namespace {

constexpr int64_t kKcTarget = 384;  // K block: a B block of kc x ~192 floats (<= 288 KiB) stays in L2
constexpr int64_t kNcTarget = 192;  // columns per B block
constexpr int64_t kMcTarget = 512;  // rows of A per work item (linear GEMM)
constexpr int kMaxSubTiles = 16;    // attention: query sub-tiles per work item

const KernelSet * kernels_for(CodePath p) {
    // Each get_kernels is compiled with its instruction set's flags, so the
    // compiler may use that set even to fill the table (AVX-512 stores of
    // the pointers): only a path this CPU can run is asked for its table.
    static const KernelSet * table = [] {
        static KernelSet sets[4];
        scalar_isa::get_kernels(&sets[(int)CodePath::scalar]);
#if defined(SDGO_HAVE_AVX2)
        if (code_path_runnable(CodePath::avx2)) avx2_isa::get_kernels(&sets[(int)CodePath::avx2]);
#endif
#if defined(SDGO_HAVE_AVX512)
        if (code_path_runnable(CodePath::avx512)) avx512_isa::get_kernels(&sets[(int)CodePath::avx512]);
#endif
#if defined(SDGO_HAVE_NEON)
        if (code_path_runnable(CodePath::neon)) neon_isa::get_kernels(&sets[(int)CodePath::neon]);
#endif
        return sets;
    }();
    int i = (int)p;
    if (i < 0 || i > 3 || !table[i].ukernel) return nullptr;
    return &table[i];
}

Status select_kernels(CodePath path, const char * what, const KernelSet ** out) {
    if (!code_path_runnable(path))
        return error(SDGO_ERR_UNSUPPORTED, "%s: code path %s is not runnable on this CPU", what, code_path_name(path));
    const KernelSet * ks = kernels_for(path);
    if (!ks) return error(SDGO_ERR_UNSUPPORTED, "%s: no kernels for code path %s", what, code_path_name(path));
    *out = ks;
    return Status();
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Per-thread scratch buffers, 64-byte aligned, kept between calls (they only
// grow) so that small calls do not pay for allocation and page faults.
// `slot` picks one of several independent buffers.
constexpr int kScratchSlots = 8;
float * thread_scratch(int slot, size_t n) {
    struct Buf {
        std::vector<float> store;
        float * p = nullptr;
        size_t cap = 0;
    };
    thread_local Buf bufs[kScratchSlots];
    Buf & b = bufs[slot];
    if (b.cap < n) {
        b.store.clear();
        b.store.shrink_to_fit();
        b.store.resize(n + 16);
        uintptr_t u = reinterpret_cast<uintptr_t>(b.store.data());
        b.p = reinterpret_cast<float *>((u + 63) & ~uintptr_t(63));
        b.cap = n;
    }
    return b.p;
}

// K block size: a multiple of `align`, about kKcTarget, blocks of near-equal size.
int64_t choose_kc(int64_t K, int64_t align) {
    if (K <= 0) return align;
    int64_t nb = ceil_div(K, kKcTarget);
    return std::min(round_up(ceil_div(K, nb), align), round_up(K, align));
}

// Column blocking: N is cut into `count` blocks of near-equal width, each a
// multiple of `gran` columns (but the last), so that small-M products still
// split evenly among threads. Block b covers [start(b), start(b+1)).
struct ColBlocks {
    int64_t N, gran, count;
    int64_t start(int64_t b) const {
        const int64_t ng = ceil_div(N, gran);
        return std::min(N, (ng * b / count) * gran);
    }
    int64_t max_width() const { return ceil_div(ceil_div(N, gran), count) * gran; }
};

// Column granularity for a kernel set: one 16-float vector where the panel is
// made of them (a narrower block then costs only the vectors it uses).
int64_t col_granularity(const KernelSet & ks) { return ks.nr % 16 == 0 ? 16 : ks.nr; }

// C[m0:m1, n0:n1] (+)= A[m0:m1, 0:kc] * packed panels (kc x NR each).
void run_block(const KernelSet & ks, const float * A, int64_t lda, int64_t m0, int64_t m1, const float * bp,
               int64_t n0, int64_t n1, int64_t kc, float * C, int64_t ldc, bool load_c, const float * bias_row,
               const float * bias_col) {
    const int MR = ks.mr, NR = ks.nr;
    for (int64_t m = m0; m < m1; m += MR) {
        const int mr = (int)std::min<int64_t>(MR, m1 - m);
        int64_t p = 0;
        for (int64_t n = n0; n < n1; n += NR, p++) {
            const int nr = (int)std::min<int64_t>(NR, n1 - n);
            ks.ukernel(kc, A + m * lda, lda, mr, bp + p * kc * NR, nr, C + m * ldc + n, ldc, load_c ? 1 : 0,
                       bias_row ? bias_row + m : nullptr, bias_col ? bias_col + (n - n0) : nullptr);
        }
    }
}

// ---- GEMM ------------------------------------------------------------------

struct LinearB {
    const char * B;
    size_t ldb;
    DType type;
    const TypeTraits * traits;
    ToF32Fn to_f32;  // the decoder for the code path (quantized types)
};

// 16-bit elements [k0, k0+kc) of a row, through an aligned copy when the
// row sits at an odd address.
const uint16_t * half_row(const char * row, int64_t k0, int64_t kc) {
    const char * p = row + k0 * 2;
    if ((reinterpret_cast<uintptr_t>(p) & 1) == 0) return reinterpret_cast<const uint16_t *>(p);
    float * tmp = thread_scratch(7, (size_t)(kc + 1) / 2);
    std::memcpy(tmp, p, (size_t)kc * 2);
    return reinterpret_cast<const uint16_t *>(tmp);
}

// Converts elements [k0, k0+kc) of weight row n to f32.
void convert_row_range(const KernelSet & ks, const LinearB & b, int64_t n, int64_t k0, int64_t kc, float * dst) {
    const char * row = b.B + (size_t)n * b.ldb;
    switch (b.type) {
        case DType::f32: std::memcpy(dst, row + k0 * 4, (size_t)kc * 4); break;
        case DType::f16: ks.f16_to_f32(half_row(row, k0, kc), dst, kc); break;
        case DType::bf16: ks.bf16_to_f32(half_row(row, k0, kc), dst, kc); break;
        default: {
            const int64_t bs = b.traits->block_size;
            b.to_f32(row + (size_t)(k0 / bs) * b.traits->type_size, dst, kc);
        }
    }
}

// Packs weight rows [n0, n1), elements [k0, k0+kc) into panels of NR.
void pack_linear(const KernelSet & ks, const LinearB & b, int64_t n0, int64_t n1, int64_t k0, int64_t kc, float * bp,
                 float * tmp) {
    const int NR = ks.nr;
    int64_t p = 0;
    for (int64_t n = n0; n < n1; n += NR, p++) {
        const int nr = (int)std::min<int64_t>(NR, n1 - n);
        float * dst = bp + p * kc * NR;
        const uintptr_t base = reinterpret_cast<uintptr_t>(b.B);
        if (b.type == DType::f16 && ks.pack_trans_f16 && b.ldb % 2 == 0 && base % 2 == 0) {
            ks.pack_trans_f16(reinterpret_cast<const uint16_t *>(b.B + (size_t)n * b.ldb) + k0, (int64_t)(b.ldb / 2), nr,
                              kc, dst, NR);
        } else if (b.type == DType::f32 && b.ldb % 4 == 0 && base % 4 == 0) {
            ks.pack_trans(reinterpret_cast<const float *>(b.B + (size_t)n * b.ldb) + k0, (int64_t)(b.ldb / 4), nr, kc,
                          dst, NR);
        } else {
            for (int j = 0; j < nr; j++) convert_row_range(ks, b, n + j, k0, kc, tmp + j * kc);
            ks.pack_trans(tmp, kc, nr, kc, dst, NR);
        }
    }
}

}  // namespace

bool gemm_weight_type_supported(DType t) {
    if (t == DType::f32 || t == DType::f16 || t == DType::bf16) return true;
    const TypeTraits * tr = type_traits(t);
    return tr && tr->to_f32;
}

namespace {

}  // namespace

Status gemm(ThreadPool & pool, CodePath path, int64_t M, int64_t N, int64_t K, const float * A, int64_t lda,
            const void * B, DType btype, size_t ldb_bytes, float * C, int64_t ldc, const float * bias,
            bool accumulate) {
    const KernelSet * ks = nullptr;
    SDGO_TRY(select_kernels(path, "gemm", &ks));
    if (M < 0 || N < 0 || K < 0)
        return error(SDGO_ERR_INVALID_ARGUMENT, "gemm: negative size (M=%lld N=%lld K=%lld)", (long long)M,
                     (long long)N, (long long)K);
    const TypeTraits * tr = type_traits(btype);
    if (!tr || !gemm_weight_type_supported(btype))
        return error(SDGO_ERR_UNSUPPORTED, "gemm: weight type %s (%d) is not supported", dtype_name(btype), (int)btype);
    if (K % tr->block_size != 0)
        return error(SDGO_ERR_INVALID_ARGUMENT, "gemm: K=%lld is not a multiple of the %s block size %lld",
                     (long long)K, tr->name, (long long)tr->block_size);
    if (M == 0 || N == 0) return Status();
    if (!C || (K > 0 && (!A || !B))) return error(SDGO_ERR_INVALID_ARGUMENT, "gemm: null pointer");
    if (ldc < N || (K > 0 && lda < K))
        return error(SDGO_ERR_INVALID_ARGUMENT, "gemm: leading dimension too small (lda=%lld ldc=%lld)",
                     (long long)lda, (long long)ldc);
    const size_t row_bytes = (size_t)(K / tr->block_size) * tr->type_size;
    if (K > 0 && ldb_bytes < row_bytes)
        return error(SDGO_ERR_INVALID_ARGUMENT, "gemm: ldb_bytes=%zu is less than a row (%zu bytes)", ldb_bytes,
                     row_bytes);

    if (K == 0) {  // empty sum: C = bias (+ C)
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                float x = accumulate ? C[m * ldc + n] : 0.0f;
                if (bias) x += bias[n];
                C[m * ldc + n] = x;
            }
        return Status();
    }

    const int MR = ks->mr, NR = ks->nr;
    const int64_t kc = choose_kc(K, tr->block_size);
    // Work items: (column block of ~kNcTarget columns) x (block of ~kMcTarget
    // rows); narrower column blocks, then shorter row blocks, when there are
    // too few items to keep every thread busy.
    const int64_t nth = pool.size(), want = 4 * nth;
    const int64_t gran = col_granularity(*ks);
    int64_t nmb = ceil_div(M, kMcTarget);
    ColBlocks cols{N, gran, ceil_div(N, std::max<int64_t>(NR, kNcTarget / NR * NR))};
    if (cols.count * nmb < want) cols.count = std::min(ceil_div(N, gran), ceil_div(want, nmb));
    while (cols.count * nmb < 2 * nth && ceil_div(M, nmb + 1) >= 4 * MR) nmb++;
    const int64_t mc = round_up(ceil_div(M, nmb), MR);
    nmb = ceil_div(M, mc);
    const int64_t ncb = cols.count;
    const int64_t max_panels = ceil_div(cols.max_width(), NR);

    const LinearB lb{static_cast<const char *>(B), ldb_bytes, btype, tr, to_f32_for(btype, path)};
    pool.parallel_for(ncb * nmb, 1, [&](int64_t item, int) {
        const int64_t cb = item % ncb, mb = item / ncb;
        const int64_t n0 = cols.start(cb), n1 = cols.start(cb + 1);
        const int64_t m0 = mb * mc, m1 = std::min(M, m0 + mc);
        if (n0 >= n1 || m0 >= m1) return;
        float * bp = thread_scratch(0, (size_t)(max_panels * NR * kc));
        float * tmp = thread_scratch(1, (size_t)(NR * kc));
        for (int64_t k0 = 0; k0 < K; k0 += kc) {
            const int64_t kcur = std::min(kc, K - k0);
            pack_linear(*ks, lb, n0, n1, k0, kcur, bp, tmp);
            const bool last = k0 + kcur >= K;
            run_block(*ks, A + k0, lda, m0, m1, bp, n0, n1, kcur, C, ldc, accumulate || k0 > 0, nullptr,
                      last && bias ? bias + n0 : nullptr);
        }
    });
    return Status();
}

// ---- convolution -------------------------------------------------------------

namespace {

struct ConvGeom {
    int64_t Cin, H, W, KH, KW, OH, OW;
    int sh, sw, ph, pw;
};

// Packs input patches for output pixels [p0, p1) of one image and patch rows
// [k0, k0+kc) (k = (ci*KH + kh)*KW + kw) into panels of NR pixels.
void pack_patches(const ConvGeom & g, const float * img, int64_t p0, int64_t p1, int64_t k0, int64_t kc, float * bp,
                  int NR) {
    struct Seg {
        int j, len;
        int64_t oh, ow;
    };
    Seg segs[128];
    int64_t p = 0;
    for (int64_t pp = p0; pp < p1; pp += NR, p++) {
        const int nr = (int)std::min<int64_t>(NR, p1 - pp);
        int nseg = 0;
        for (int j = 0; j < nr;) {
            const int64_t px = pp + j, oh = px / g.OW, ow = px % g.OW;
            const int len = (int)std::min<int64_t>(nr - j, g.OW - ow);
            segs[nseg++] = Seg{j, len, oh, ow};
            j += len;
        }
        float * panel = bp + p * kc * NR;
        int64_t k = k0;
        int64_t ci = k / (g.KH * g.KW), kh = (k / g.KW) % g.KH, kw = k % g.KW;
        for (int64_t kk = 0; kk < kc; kk++) {
            float * d = panel + kk * NR;
            for (int j = nr; j < NR; j++) d[j] = 0.0f;
            const float * plane = img + ci * g.H * g.W;
            for (int s = 0; s < nseg; s++) {
                const Seg & sg = segs[s];
                float * dd = d + sg.j;
                const int64_t ih = sg.oh * g.sh - g.ph + kh;
                if (ih < 0 || ih >= g.H) {
                    for (int t = 0; t < sg.len; t++) dd[t] = 0.0f;
                    continue;
                }
                const float * row = plane + ih * g.W;
                const int64_t iw0 = sg.ow * g.sw - g.pw + kw;
                if (g.sw == 1) {
                    const int64_t lo = std::min<int64_t>(sg.len, std::max<int64_t>(0, -iw0));
                    const int64_t hi = std::max<int64_t>(lo, std::min<int64_t>(sg.len, g.W - iw0));
                    for (int64_t t = 0; t < lo; t++) dd[t] = 0.0f;
                    const float * r = row + iw0;
                    for (int64_t t = lo; t < hi; t++) dd[t] = r[t];
                    for (int64_t t = hi; t < sg.len; t++) dd[t] = 0.0f;
                } else {
                    for (int t = 0; t < sg.len; t++) {
                        const int64_t iw = iw0 + (int64_t)t * g.sw;
                        dd[t] = (iw >= 0 && iw < g.W) ? row[iw] : 0.0f;
                    }
                }
            }
            if (++kw == g.KW) {
                kw = 0;
                if (++kh == g.KH) {
                    kh = 0;
                    ci++;
                }
            }
        }
    }
}

// Packs patch rows for output pixels [m0, m1) (over the whole batch: m =
// n*OH*OW + oh*OW + ow) and patch elements [k0, k0+kc) into a[(m-m0)*lda + kk]
// (zero for kc <= kk < lda; lda a multiple of 16). The patches are first
// gathered k-major into p (contiguous runs along output rows), then
// transposed with the variant's panel transposer.
void pack_patch_rows(const KernelSet & ks, const ConvGeom & g, const float * src, int64_t m0, int64_t m1, int64_t k0,
                     int64_t kc, float * p, float * a, int64_t lda) {
    const int64_t OHW = g.OH * g.OW, img_size = g.Cin * g.H * g.W;
    const int64_t rows = m1 - m0, ldp = round_up(rows, 16);
    struct Run {
        int64_t off, len, img, oh, ow;
    };
    thread_local std::vector<Run> runs;
    runs.clear();
    for (int64_t m = m0; m < m1;) {
        const int64_t n = m / OHW, px = m % OHW, oh = px / g.OW, ow = px % g.OW;
        const int64_t len = std::min(m1 - m, g.OW - ow);
        runs.push_back(Run{m - m0, len, n * img_size, oh, ow});
        m += len;
    }
    int64_t ci = k0 / (g.KH * g.KW), kh = (k0 / g.KW) % g.KH, kw = k0 % g.KW;
    for (int64_t kk = 0; kk < kc; kk++) {
        float * prow = p + kk * ldp;
        for (const Run & r : runs) {
            float * d = prow + r.off;
            const int64_t ih = r.oh * g.sh - g.ph + kh;
            if (ih < 0 || ih >= g.H) {
                for (int64_t t = 0; t < r.len; t++) d[t] = 0.0f;
                continue;
            }
            const float * row = src + r.img + (ci * g.H + ih) * g.W;
            const int64_t iw0 = r.ow * g.sw - g.pw + kw;
            if (g.sw == 1) {
                const int64_t lo = std::min<int64_t>(r.len, std::max<int64_t>(0, -iw0));
                const int64_t hi = std::max<int64_t>(lo, std::min<int64_t>(r.len, g.W - iw0));
                for (int64_t t = 0; t < lo; t++) d[t] = 0.0f;
                for (int64_t t = lo; t < hi; t++) d[t] = row[iw0 + t];
                for (int64_t t = hi; t < r.len; t++) d[t] = 0.0f;
            } else {
                for (int64_t t = 0; t < r.len; t++) {
                    const int64_t iw = iw0 + t * g.sw;
                    d[t] = (iw >= 0 && iw < g.W) ? row[iw] : 0.0f;
                }
            }
        }
        if (++kw == g.KW) {
            kw = 0;
            if (++kh == g.KH) {
                kh = 0;
                ci++;
            }
        }
    }
    // a[m*lda + kk] = p[kk*ldp + m]
    ks.pack_trans(p, ldp, (int)kc, rows, a, (int)lda);
}

}  // namespace

Status conv2d(ThreadPool & pool, CodePath path, int64_t N, int64_t Cin, int64_t H, int64_t W, const float * src,
              int64_t Cout, int64_t KH, int64_t KW, const void * weight, DType wtype, const float * bias,
              int stride_h, int stride_w, int pad_h, int pad_w, float * dst) {
    return conv2d_strategy(ConvStrategy::automatic, pool, path, N, Cin, H, W, src, Cout, KH, KW, weight, wtype, bias,
                           stride_h, stride_w, pad_h, pad_w, dst);
}

Status conv2d_strategy(ConvStrategy strategy, ThreadPool & pool, CodePath path, int64_t N, int64_t Cin, int64_t H,
                       int64_t W, const float * src, int64_t Cout, int64_t KH, int64_t KW, const void * weight,
                       DType wtype, const float * bias, int stride_h, int stride_w, int pad_h, int pad_w,
                       float * dst) {
    const KernelSet * ks = nullptr;
    SDGO_TRY(select_kernels(path, "conv2d", &ks));
    if (N < 0 || Cin <= 0 || H <= 0 || W <= 0 || Cout <= 0 || KH <= 0 || KW <= 0)
        return error(SDGO_ERR_INVALID_ARGUMENT, "conv2d: bad size (N=%lld Cin=%lld H=%lld W=%lld Cout=%lld K=%lldx%lld)",
                     (long long)N, (long long)Cin, (long long)H, (long long)W, (long long)Cout, (long long)KH,
                     (long long)KW);
    if (stride_h <= 0 || stride_w <= 0 || pad_h < 0 || pad_w < 0)
        return error(SDGO_ERR_INVALID_ARGUMENT, "conv2d: bad stride %dx%d or padding %dx%d", stride_h, stride_w, pad_h,
                     pad_w);
    if (H + 2 * (int64_t)pad_h < KH || W + 2 * (int64_t)pad_w < KW)
        return error(SDGO_ERR_INVALID_ARGUMENT, "conv2d: kernel %lldx%lld larger than the padded input",
                     (long long)KH, (long long)KW);
    const TypeTraits * tr = type_traits(wtype);
    if (!tr || !gemm_weight_type_supported(wtype))
        return error(SDGO_ERR_UNSUPPORTED, "conv2d: weight type %s (%d) is not supported", dtype_name(wtype),
                     (int)wtype);
    const int64_t K = Cin * KH * KW;
    if (K % tr->block_size != 0)
        return error(SDGO_ERR_UNSUPPORTED, "conv2d: Cin*KH*KW=%lld is not a multiple of the %s block size",
                     (long long)K, tr->name);
    if (N == 0) return Status();
    if (!src || !weight || !dst) return error(SDGO_ERR_INVALID_ARGUMENT, "conv2d: null pointer");

    ConvGeom g{Cin, H, W, KH, KW, 0, 0, stride_h, stride_w, pad_h, pad_w};
    g.OH = (H + 2 * pad_h - KH) / stride_h + 1;
    g.OW = (W + 2 * pad_w - KW) / stride_w + 1;
    const int64_t OHW = g.OH * g.OW;
    if (strategy == ConvStrategy::automatic)
        strategy = N * OHW <= kConvPixelRowsMax ? ConvStrategy::pixel_rows : ConvStrategy::weight_rows;
    const int MR = ks->mr, NR = ks->nr;

    if (strategy == ConvStrategy::pixel_rows) {
        // C[pixels x Cout] = patches[pixels x K] * W^T. A work item is (block
        // of pixel rows, group of output channels); it packs its patch rows
        // once per K block and runs every column block of its group on them,
        // so splitting Cout among threads costs one patch packing per thread.
        const int64_t M = N * OHW;
        const int64_t kc = choose_kc(K, tr->block_size);
        const int64_t nth = pool.size();
        const int64_t gran = col_granularity(*ks);
        int64_t nmb = ceil_div(M, kMcTarget);
        const ColBlocks groups{Cout, gran, std::min(ceil_div(Cout, gran), std::max<int64_t>(1, ceil_div(nth, nmb)))};
        while (groups.count * nmb < nth && ceil_div(M, nmb + 1) >= 4 * MR) nmb++;
        const int64_t mc = round_up(ceil_div(M, nmb), MR);
        nmb = ceil_div(M, mc);
        const int64_t ng = groups.count;
        const int64_t sub = std::max<int64_t>(NR, kNcTarget / NR * NR);  // columns per B block
        const int64_t ldt = round_up(groups.max_width(), 16);
        const LinearB lb{static_cast<const char *>(weight), (size_t)(K / tr->block_size) * tr->type_size, wtype, tr,
                           to_f32_for(wtype, path)};
        pool.parallel_for(ng * nmb, 1, [&](int64_t item, int) {
            const int64_t gi = item % ng, mb = item / ng;
            const int64_t c0 = groups.start(gi), c1 = groups.start(gi + 1);
            const int64_t m0 = mb * mc, m1 = std::min(M, m0 + mc);
            if (c0 >= c1 || m0 >= m1) return;
            const int64_t lda = round_up(kc, 16);
            float * bp = thread_scratch(0, (size_t)(ceil_div(sub, NR) * NR * kc));
            float * tmp = thread_scratch(1, (size_t)(NR * kc));
            float * pp = thread_scratch(2, (size_t)(kc * round_up(mc, 16)));
            float * ct = thread_scratch(3, (size_t)(mc * ldt));
            float * ap = thread_scratch(4, (size_t)(mc * lda));
            for (int64_t k0 = 0; k0 < K; k0 += kc) {
                const int64_t kcur = std::min(kc, K - k0);
                pack_patch_rows(*ks, g, src, m0, m1, k0, kcur, pp, ap, lda);
                for (int64_t n0 = c0; n0 < c1; n0 += sub) {
                    const int64_t n1 = std::min(c1, n0 + sub);
                    pack_linear(*ks, lb, n0, n1, k0, kcur, bp, tmp);
                    run_block(*ks, ap, lda, 0, m1 - m0, bp, 0, n1 - n0, kcur, ct + (n0 - c0), ldt, k0 > 0, nullptr,
                              nullptr);
                }
            }
            // Transpose into NCHW, adding the bias.
            for (int64_t co = c0; co < c1; co++) {
                const float b = bias ? bias[co] : 0.0f;
                for (int64_t m = m0; m < m1; m++) {
                    const int64_t n = m / OHW, px = m % OHW;
                    dst[(n * Cout + co) * OHW + px] = ct[(m - m0) * ldt + (co - c0)] + b;
                }
            }
        });
        return Status();
    }

    // The weight is the A operand (Cout x K, row-major): convert it once.
    std::unique_ptr<float[]> w32;
    const float * wf = static_cast<const float *>(weight);
    if (wtype != DType::f32) {
        w32.reset(new float[(size_t)(Cout * K)]);
        float * w = w32.get();
        const LinearB lb{static_cast<const char *>(weight), (size_t)(K / tr->block_size) * tr->type_size, wtype, tr,
                           to_f32_for(wtype, path)};
        pool.parallel_for(Cout, 8, [&](int64_t co, int) { convert_row_range(*ks, lb, co, 0, K, w + co * K); });
        wf = w;
    }

    const int64_t kc = choose_kc(K, 1);
    const int64_t np = ceil_div(OHW, NR);
    int64_t pb = std::max<int64_t>(1, kNcTarget / NR);
    const int64_t want = 4 * (int64_t)pool.size();
    while (N * ceil_div(np, pb) < want && pb > 1) pb = (pb + 1) / 2;
    const int64_t ncb = ceil_div(np, pb);

    pool.parallel_for(N * ncb, 1, [&](int64_t item, int) {
        const int64_t n = item / ncb, cb = item % ncb;
        const int64_t p0 = cb * pb * NR, p1 = std::min(OHW, p0 + pb * NR);
        const float * img = src + n * Cin * H * W;
        float * out = dst + n * Cout * OHW;
        float * bp = thread_scratch(0, (size_t)(pb * NR * kc));
        for (int64_t k0 = 0; k0 < K; k0 += kc) {
            const int64_t kcur = std::min(kc, K - k0);
            pack_patches(g, img, p0, p1, k0, kcur, bp, NR);
            const bool last = k0 + kcur >= K;
            run_block(*ks, wf + k0, K, 0, Cout, bp, p0, p1, kcur, out, OHW, k0 > 0, last ? bias : nullptr, nullptr);
        }
    });
    return Status();
}

// ---- attention ---------------------------------------------------------------

Status attention(ThreadPool & pool, CodePath path, int64_t B, int64_t H, int64_t Nq, int64_t Nk, int64_t D,
                 const float * q, int64_t q_sb, int64_t q_sh, int64_t q_st,
                 const float * k, int64_t k_sb, int64_t k_sh, int64_t k_st,
                 const float * v, int64_t v_sb, int64_t v_sh, int64_t v_st,
                 float * out, int64_t o_sb, int64_t o_sh, int64_t o_st, float scale, bool causal) {
    const KernelSet * ks = nullptr;
    SDGO_TRY(select_kernels(path, "attention", &ks));
    if (B < 0 || H < 0 || Nq < 0 || Nk < 0 || D <= 0)
        return error(SDGO_ERR_INVALID_ARGUMENT, "attention: bad size (B=%lld H=%lld Nq=%lld Nk=%lld D=%lld)",
                     (long long)B, (long long)H, (long long)Nq, (long long)Nk, (long long)D);
    if (B == 0 || H == 0 || Nq == 0) return Status();
    if (!q || !k || !v || !out) return error(SDGO_ERR_INVALID_ARGUMENT, "attention: null pointer");
    if (!std::isfinite(scale)) return error(SDGO_ERR_INVALID_ARGUMENT, "attention: scale is not finite");

    const int MR = ks->mr, NR = ks->nr;
    // A work item is (b, h, a range of up to qr queries). For each tile of bk
    // keys it packs K^T and V once, then runs sub-tiles of qt queries:
    // S = Q K^T, the online-softmax step, O = alpha*O + P V.
    const int64_t qt = round_up(64, MR);
    int64_t qr = kMaxSubTiles * qt;
    const int64_t want = 4 * (int64_t)pool.size();
    while (qr > qt && B * H * ceil_div(Nq, qr) < want) qr -= qt;
    const int64_t pbk = std::max<int64_t>(1, kNcTarget / NR);
    const int64_t bk = pbk * NR;                                       // keys per tile
    const int64_t npv = ceil_div(D, NR), dp = npv * NR;              // padded head size
    const int64_t nqr = ceil_div(Nq, qr);
    const int64_t off = Nk - Nq;
    pool.parallel_for(B * H * nqr, 1, [&](int64_t item, int) {
        float * kp = thread_scratch(0, (size_t)(bk * D));     // K^T panels of this key tile
        float * vp = thread_scratch(1, (size_t)(bk * dp));    // V panels of this key tile
        float * S = thread_scratch(2, (size_t)(qt * bk));     // scores, then p
        float * O = thread_scratch(3, (size_t)(qr * dp));     // unnormalised output rows
        float * mrow = thread_scratch(4, (size_t)qr);         // running max
        float * lrow = thread_scratch(5, (size_t)qr);         // running sum
        float * arow = thread_scratch(6, (size_t)qr);         // rescale factors
        thread_local std::vector<int> valid;
        if (valid.size() < (size_t)qt) valid.resize((size_t)qt);
        const int64_t b = item / (H * nqr), h = (item / nqr) % H, qb = item % nqr;
        const int64_t i0 = qb * qr;
        const int64_t rows = std::min<int64_t>(qr, Nq - i0);
        const float * qbase = q + b * q_sb + h * q_sh + i0 * q_st;
        const float * kbase = k + b * k_sb + h * k_sh;
        const float * vbase = v + b * v_sb + h * v_sh;
        float * obase = out + b * o_sb + h * o_sh + i0 * o_st;
        for (int64_t r = 0; r < rows; r++) {
            mrow[r] = -std::numeric_limits<float>::infinity();
            lrow[r] = 0.0f;
        }
        // A sub-tile's O rows are written (not accumulated) by its first P V.
        bool started[kMaxSubTiles] = {};
        int64_t jmax = Nk;
        if (causal) jmax = std::min<int64_t>(Nk, std::max<int64_t>(0, i0 + rows + off));
        for (int64_t j0 = 0; j0 < jmax; j0 += bk) {
            const int64_t cols = std::min(bk, jmax - j0);
            int64_t p = 0;
            for (int64_t jj = j0; jj < j0 + cols; jj += NR, p++) {
                const int nr = (int)std::min<int64_t>(NR, j0 + cols - jj);
                ks->pack_trans(kbase + jj * k_st, k_st, nr, D, kp + p * D * NR, NR);
            }
            for (int64_t pv = 0; pv < npv; pv++) {
                const int nd = (int)std::min<int64_t>(NR, D - pv * NR);
                ks->pack_rows(vbase + j0 * v_st + pv * NR, v_st, cols, nd, vp + pv * cols * NR, NR);
            }
            for (int64_t r0 = 0; r0 < rows; r0 += qt) {
                const int sub = (int)std::min<int64_t>(qt, rows - r0);
                // Keys this sub-tile can see at all (causal): skip the rest.
                int64_t ccols = cols;
                if (causal) ccols = std::min<int64_t>(cols, std::max<int64_t>(0, i0 + r0 + sub + off - j0));
                if (ccols <= 0) continue;
                float * m = mrow + r0, * l = lrow + r0, * alpha = arow + r0;
                float * Osub = O + r0 * dp;
                run_block(*ks, qbase + r0 * q_st, q_st, 0, sub, kp, 0, ccols, D, S, bk, false, nullptr, nullptr);
                for (int r = 0; r < sub; r++) {
                    int64_t nv = ccols;
                    if (causal) nv = std::min<int64_t>(ccols, std::max<int64_t>(0, i0 + r0 + r + off - j0 + 1));
                    valid[r] = (int)nv;
                }
                ks->softmax_step(S, bk, sub, (int)ccols, valid.data(), scale, m, l, alpha);
                const int64_t st = r0 / qt;
                if (started[st]) {
                    for (int r = 0; r < sub; r++) {
                        const float a = alpha[r];
                        if (a != 1.0f) {
                            float * o = Osub + r * dp;
                            for (int64_t d = 0; d < D; d++) o[d] *= a;
                        }
                    }
                }
                // O += P V over the first ccols keys (V panels hold cols rows each).
                int64_t pvn = 0;
                for (int64_t n = 0; n < D; n += NR, pvn++) {
                    const int nr = (int)std::min<int64_t>(NR, D - n);
                    for (int64_t r = 0; r < sub; r += MR) {
                        const int mr = (int)std::min<int64_t>(MR, sub - r);
                        ks->ukernel(ccols, S + r * bk, bk, mr, vp + pvn * cols * NR, nr, Osub + r * dp + n, dp,
                                    started[st] ? 1 : 0, nullptr, nullptr);
                    }
                }
                started[st] = true;
            }
        }
        for (int64_t r = 0; r < rows; r++) {
            const float l = lrow[r];
            float * o = obase + r * o_st;
            if (!started[r / qt] || !(l > 0.0f)) {  // no key visible: zero output
                for (int64_t d = 0; d < D; d++) o[d] = 0.0f;
                continue;
            }
            const float inv = 1.0f / l;
            const float * src = O + r * dp;
            for (int64_t d = 0; d < D; d++) o[d] = src[d] * inv;
        }
    });
    return Status();
}

// ---- FMA peak ----------------------------------------------------------------

double measure_fma_peak_gflops(ThreadPool & pool, CodePath path, double seconds) {
    if (!code_path_runnable(path)) return 0.0;
    const KernelSet * ks = kernels_for(path);
    if (!ks) return 0.0;
    using clock = std::chrono::steady_clock;
    // Calibrate one chunk to about 20 ms on one thread.
    int64_t iters = 1 << 12;
    for (;;) {
        auto t0 = clock::now();
        ks->fma_loop(iters);
        double dt = std::chrono::duration<double>(clock::now() - t0).count();
        if (dt > 0.02 || iters > (int64_t(1) << 40)) break;
        iters *= 2;
    }
    double best = 0.0;
    auto start = clock::now();
    do {
        std::vector<double> flops((size_t)pool.size(), 0.0);
        auto t0 = clock::now();
        pool.run([&](int ith, int) { flops[ith] = ks->fma_loop(iters); });
        double dt = std::chrono::duration<double>(clock::now() - t0).count();
        double total = 0;
        for (double f : flops) total += f;
        best = std::max(best, total / dt / 1e9);
    } while (std::chrono::duration<double>(clock::now() - start).count() < seconds);
    return best;
}

}  // namespace sdgo::cpu
