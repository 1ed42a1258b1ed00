// convert.cpp — see convert.h.
#include "convert/convert.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>

#include "backends/cpu/type_convert.h"
#include "base/threadpool.h"
#include "formats/gguf.h"

namespace sdgo::convert {

using formats::StoredType;
using formats::TensorEntry;

namespace {

bool is_float_id(int32_t id) {
    return id == (int32_t)DType::f32 || id == (int32_t)DType::f16 || id == (int32_t)DType::bf16;
}
bool is_int_id(int32_t id) {
    return id == (int32_t)DType::i8 || id == (int32_t)DType::i16 || id == (int32_t)DType::i32 ||
           id == (int32_t)DType::i64;
}

// Can we produce f32 from a tensor of normalised type `id`?
bool decodable(int32_t id) {
    if (is_float_id(id)) return true;
    const TypeTraits * tr = type_traits(id);
    return tr && tr->is_quantized && tr->to_f32 != nullptr;
}
// Can we encode f32 into `id`?
bool encodable(int32_t id) {
    if (is_float_id(id)) return true;
    const TypeTraits * tr = type_traits(id);
    return tr && tr->is_quantized && tr->quantize != nullptr && id != (int32_t)DType::q8_1;
}

float f8_e4m3_to_f32(uint8_t b) {
    const int sign = b >> 7, exp = (b >> 3) & 15, man = b & 7;
    float v;
    if (exp == 15 && man == 7) return std::numeric_limits<float>::quiet_NaN();
    if (exp == 0) v = std::ldexp((float)man, -9);
    else v = std::ldexp(1.0f + man / 8.0f, exp - 7);
    return sign ? -v : v;
}

// Bytes of element range [e0, e0+n) of a tensor stored as `t`.
uint64_t src_elem_bytes(const TensorEntry & t, int64_t n) {
    const int64_t ne = t.nelements();
    if (ne <= 0) return 0;
    // Proportional share of the stored bytes (exact for whole rows).
    return (uint64_t)((long double)t.nbytes * (long double)n / (long double)ne);
}

// Decodes elements [e0, e0+n) of t (n and e0 multiples of the block size)
// into out. t's normalised type must be decodable; f8 sources decode
// through their f16 normalisation, which is exact.
Status decode(const TensorEntry & t, int64_t e0, int64_t n, float * out, std::vector<uint8_t> * scratch,
              ThreadPool * pool) {
    const uint8_t * p = t.data;
    if (!t.is_ggml()) {
        if (t.stored == StoredType::f8_e4m3) {
            for (int64_t i = 0; i < n; i++) out[i] = f8_e4m3_to_f32(p[e0 + i]);
            return Status();
        }
        if (t.stored == StoredType::f8_e5m2) {
            for (int64_t i = 0; i < n; i++) out[i] = fp16_to_fp32((uint16_t)(p[e0 + i] << 8));
            return Status();
        }
        return error(SDGO_ERR_UNSUPPORTED, "%s: cannot convert type %s", t.name.c_str(), t.type_name().c_str());
    }
    if (t.type == DType::f64) {
        for (int64_t i = 0; i < n; i++) {
            double d;
            std::memcpy(&d, p + 8 * (e0 + i), 8);
            out[i] = (float)d;
        }
        return Status();
    }
    const TypeTraits * tr = type_traits(t.type);
    const ToF32Fn to_f32 = cpu::host_to_f32(t.type);
    if (!tr || !to_f32)
        return error(SDGO_ERR_UNSUPPORTED, "%s: cannot convert type %s", t.name.c_str(), t.type_name().c_str());
    const size_t off = (size_t)(e0 / tr->block_size) * tr->type_size;
    const size_t nb = (size_t)(n / tr->block_size) * tr->type_size;
    // The mapping's offsets are arbitrary; the decoders want their element
    // alignment, so go through an aligned copy.
    scratch->resize(nb + 64);
    uint8_t * a = scratch->data();
    a += (64 - ((uintptr_t)a & 63)) & 63;
    std::memcpy(a, p + off, nb);
    const int64_t nblocks = n / tr->block_size;
    if (pool && pool->size() > 1 && nblocks >= 4096) {
        const int64_t per = std::max<int64_t>(1, 65536 / tr->block_size);
        const int64_t chunks = (nblocks + per - 1) / per;
        pool->parallel_for(chunks, 1, [&](int64_t c, int) {
            const int64_t b0 = c * per, bn = std::min(per, nblocks - b0);
            to_f32(a + (size_t)b0 * tr->type_size, out + b0 * tr->block_size, bn * tr->block_size);
        });
    } else {
        to_f32(a, out, n);
    }
    return Status();
}

bool canceled(const std::atomic<int32_t> * c) { return c && c->load(std::memory_order_relaxed) != 0; }

std::string dir_of(const std::string & path) {
    size_t s = path.find_last_of('/');
    if (s == std::string::npos) return ".";
    if (s == 0) return "/";
    return path.substr(0, s);
}

// A temporary output file that is removed unless committed.
class TempFile {
public:
    ~TempFile() {
        if (f_) std::fclose(f_);
        if (!tmp_.empty()) ::unlink(tmp_.c_str());
    }
    Status open(const std::string & out_path) {
        final_ = out_path;
        struct stat st;
        if (::stat(out_path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
            return error(SDGO_ERR_INVALID_ARGUMENT, "output %s is a folder, not a file", out_path.c_str());
        const std::string dir = dir_of(out_path);
        if (::stat(dir.c_str(), &st) != 0)
            return error(SDGO_ERR_IO, "output folder %s does not exist", dir.c_str());
        if (!S_ISDIR(st.st_mode)) return error(SDGO_ERR_IO, "output folder %s is not a folder", dir.c_str());
        std::random_device rd;
        for (int attempt = 0; attempt < 16; attempt++) {
            std::string cand = strprintf("%s.tmp-%d-%08x", out_path.c_str(), (int)::getpid(), (unsigned)rd());
            int fd = ::open(cand.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
            if (fd < 0) {
                if (errno == EEXIST) continue;
                return error(SDGO_ERR_IO, "cannot create a file in %s: %s", dir.c_str(), std::strerror(errno));
            }
            tmp_ = cand;
            f_ = ::fdopen(fd, "wb");
            if (!f_) {
                ::close(fd);
                return error(SDGO_ERR_IO, "cannot open %s: %s", cand.c_str(), std::strerror(errno));
            }
            std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
            return Status();
        }
        return error(SDGO_ERR_IO, "cannot create a temporary file beside %s", out_path.c_str());
    }
    Status write(const void * p, size_t n) {
        if (n && std::fwrite(p, 1, n, f_) != n)
            return error(SDGO_ERR_IO, "writing %s: %s", tmp_.c_str(), std::strerror(errno));
        written_ += n;
        return Status();
    }
    Status zeros(size_t n) {
        static const uint8_t z[64] = {};
        while (n) {
            size_t k = std::min(n, sizeof(z));
            SDGO_TRY(write(z, k));
            n -= k;
        }
        return Status();
    }
    Status commit() {
        if (std::fflush(f_) != 0) return error(SDGO_ERR_IO, "writing %s: %s", tmp_.c_str(), std::strerror(errno));
        if (::fsync(::fileno(f_)) != 0)
            return error(SDGO_ERR_IO, "syncing %s: %s", tmp_.c_str(), std::strerror(errno));
        FILE * f = f_;
        f_ = nullptr;
        if (std::fclose(f) != 0) return error(SDGO_ERR_IO, "closing %s: %s", tmp_.c_str(), std::strerror(errno));
        if (::rename(tmp_.c_str(), final_.c_str()) != 0)
            return error(SDGO_ERR_IO, "cannot rename %s to %s: %s", tmp_.c_str(), final_.c_str(), std::strerror(errno));
        tmp_.clear();
        return Status();
    }
    uint64_t written() const { return written_; }

private:
    std::string final_, tmp_;
    FILE * f_ = nullptr;
    uint64_t written_ = 0;
};

}  // namespace

Status quantize_rows_parallel(DType t, const float * src, void * dst, size_t cap, int64_t nrows, int64_t n_per_row,
                              const float * imatrix, size_t * written, ThreadPool * pool) {
    *written = 0;
    if (t == DType::f16 || t == DType::bf16) {
        size_t need = 0;
        SDGO_TRY(tensor_bytes(t, n_per_row, nrows, &need).wrap("quantize"));
        if (need > cap) return error(SDGO_ERR_BUFFER_TOO_SMALL, "quantize: %zu bytes needed, %zu available", need, cap);
        cpu::host_from_f32(t)(src, dst, nrows * n_per_row);
        *written = need;
        return Status();
    }
    if (!pool || pool->size() < 2 || nrows < 2)
        return quantize_rows(t, src, dst, cap, nrows, n_per_row, imatrix, written);
    size_t need = 0;
    SDGO_TRY(tensor_bytes(t, n_per_row, nrows, &need).wrap("quantize"));
    if (need > cap) return error(SDGO_ERR_BUFFER_TOO_SMALL, "quantize: %zu bytes needed, %zu available", need, cap);
    const size_t rs = row_size(t, n_per_row);
    const int64_t rows_per_chunk = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, n_per_row));
    const int64_t nchunks = (nrows + rows_per_chunk - 1) / rows_per_chunk;
    std::vector<Status> st(static_cast<size_t>(nchunks));
    pool->parallel_for(nchunks, 1, [&](int64_t c, int) {
        const int64_t r0 = c * rows_per_chunk;
        const int64_t nr = std::min(rows_per_chunk, nrows - r0);
        size_t w = 0;
        st[static_cast<size_t>(c)] = quantize_rows(t, src + r0 * n_per_row, static_cast<uint8_t *>(dst) + size_t(r0) * rs,
                                                   size_t(nr) * rs, nr, n_per_row, imatrix, &w);
    });
    for (const Status & s : st) SDGO_TRY(s);
    *written = need;
    return Status();
}


void restore_sdcpp_shapes(formats::ModelFiles * m) {
    auto ends = [](const std::string & s, const char * suf) {
        const size_t n = std::strlen(suf);
        return s.size() >= n && s.compare(s.size() - n, n, suf) == 0;
    };
    for (TensorEntry & t : m->tensors) {
        const std::string & n = t.name;
        if (n.rfind("first_stage_model.", 0) != 0 || n.find(".mid.attn_1.") == std::string::npos) continue;
        if (!ends(n, ".weight") || n.find(".norm.") != std::string::npos) continue;
        if (t.n_dims != 2 || t.ne[2] != 1 || t.ne[3] != 1) continue;
        t.ne[2] = t.ne[0];
        t.ne[3] = t.ne[1];
        t.ne[0] = t.ne[1] = 1;
        t.n_dims = 4;
    }
}

int32_t normalized_type(const TensorEntry & t) {
    if (!t.is_ggml()) {
        if (t.stored == StoredType::f8_e4m3 || t.stored == StoredType::f8_e5m2) return (int32_t)DType::f16;
        return kDrop;
    }
    switch (t.type) {
        case DType::f64: return (int32_t)DType::f32;
        case DType::i64: return (int32_t)DType::i32;
        default: break;
    }
    const TypeTraits * tr = type_traits(t.type);
    return tr ? (int32_t)t.type : kDrop;
}

Status check_target(const TensorEntry & t, int32_t to) {
    const int32_t from = normalized_type(t);
    if (from == kDrop)
        return error(SDGO_ERR_UNSUPPORTED, "tensor %s: type %s cannot be stored in GGUF", t.name.c_str(),
                     t.type_name().c_str());
    const TypeTraits * ttr = type_traits(to);
    if (!ttr) return error(SDGO_ERR_INVALID_ARGUMENT, "tensor %s: unknown target type id %d", t.name.c_str(), (int)to);
    if (to == from) return Status();
    if (is_int_id(from))
        return error(SDGO_ERR_INVALID_ARGUMENT, "tensor %s: integer tensor (%s) cannot become %s", t.name.c_str(),
                     t.type_name().c_str(), ttr->name);
    if (!decodable(from))
        return error(SDGO_ERR_UNSUPPORTED, "tensor %s: converting from %s is not supported", t.name.c_str(),
                     t.type_name().c_str());
    if (!encodable(to))
        return error(SDGO_ERR_UNSUPPORTED, "tensor %s: converting to %s is not supported", t.name.c_str(), ttr->name);
    if (t.ne[0] % ttr->block_size != 0)
        return error(SDGO_ERR_INVALID_ARGUMENT, "tensor %s: row length %lld is not a multiple of %s's block size %lld",
                     t.name.c_str(), (long long)t.ne[0], ttr->name, (long long)ttr->block_size);
    return Status();
}

Status convert_tensor(const TensorEntry & t, int32_t to, ThreadPool * pool, const std::atomic<int32_t> * cancel,
                      const std::function<Status(const void *, size_t)> & sink,
                      const std::function<Status(uint64_t)> & on_piece) {
    SDGO_TRY(check_target(t, to));
    const int32_t from = normalized_type(t);
    const int64_t ne0 = t.ne[0];
    const int64_t nel = t.nelements();
    const int64_t nrows = ne0 > 0 ? nel / ne0 : 0;
    if (nel == 0) return Status();
    // Pieces of whole rows, about 4M elements (at least one row).
    const int64_t rows_per = std::max<int64_t>(1, (int64_t(4) << 20) / ne0);

    if (to == from && t.is_ggml() && t.type != DType::i64 && t.type != DType::f64) {
        // Stored type kept: copy the bytes (same size by construction).
        size_t rb = 0;
        SDGO_TRY(tensor_bytes(t.type, ne0, 1, &rb).wrap(t.name));
        size_t total = 0;
        SDGO_TRY(tensor_bytes(t.type, ne0, nrows, &total).wrap(t.name));
        if (total != t.nbytes)
            return error(SDGO_ERR_FORMAT, "tensor %s: %llu bytes stored, shape needs %zu", t.name.c_str(),
                         (unsigned long long)t.nbytes, total);
        for (int64_t r0 = 0; r0 < nrows; r0 += rows_per) {
            if (canceled(cancel)) return error(SDGO_ERR_CANCELED, "canceled");
            const int64_t nr = std::min(rows_per, nrows - r0);
            SDGO_TRY(sink(t.data + (size_t)r0 * rb, (size_t)nr * rb));
            if (on_piece) SDGO_TRY(on_piece((uint64_t)nr * rb));
        }
        return Status();
    }
    if (t.is_ggml() && t.type == DType::i64) {  // -> i32, values must fit
        std::vector<int32_t> buf;
        for (int64_t r0 = 0; r0 < nrows; r0 += rows_per) {
            if (canceled(cancel)) return error(SDGO_ERR_CANCELED, "canceled");
            const int64_t nr = std::min(rows_per, nrows - r0);
            buf.resize((size_t)(nr * ne0));
            for (int64_t i = 0; i < nr * ne0; i++) {
                int64_t v;
                std::memcpy(&v, t.data + 8 * (r0 * ne0 + i), 8);
                if (v < INT32_MIN || v > INT32_MAX)
                    return error(SDGO_ERR_UNSUPPORTED, "tensor %s: int64 value %lld does not fit int32", t.name.c_str(),
                                 (long long)v);
                buf[(size_t)i] = (int32_t)v;
            }
            SDGO_TRY(sink(buf.data(), buf.size() * 4));
            if (on_piece) SDGO_TRY(on_piece((uint64_t)nr * ne0 * 8));
        }
        return Status();
    }
    const DType dst = static_cast<DType>(to);
    const TypeTraits * ttr = type_traits(to);
    std::vector<float> f32;
    std::vector<uint8_t> scratch, out;
    // stable-diffusion.cpp passes a vector of ones when it has no imatrix;
    // q8_0 ignores it, q4_x/q5_x take the weighted path with it.
    std::vector<float> ones;
    if (ttr->is_quantized) ones.assign((size_t)ne0, 1.0f);
    for (int64_t r0 = 0; r0 < nrows; r0 += rows_per) {
        if (canceled(cancel)) return error(SDGO_ERR_CANCELED, "canceled");
        const int64_t nr = std::min(rows_per, nrows - r0);
        f32.resize((size_t)(nr * ne0));
        SDGO_TRY(decode(t, r0 * ne0, nr * ne0, f32.data(), &scratch, pool).wrap("tensor " + t.name));
        size_t need = 0;
        SDGO_TRY(tensor_bytes(dst, ne0, nr, &need).wrap(t.name));
        out.resize(need);
        size_t written = 0;
        SDGO_TRY(quantize_rows_parallel(dst, f32.data(), out.data(), out.size(), nr, ne0,
                                        ones.empty() ? nullptr : ones.data(), &written, pool)
                     .wrap("tensor " + t.name));
        SDGO_TRY(sink(out.data(), written));
        if (on_piece) SDGO_TRY(on_piece(src_elem_bytes(t, nr * ne0)));
    }
    return Status();
}

Status write_gguf(const formats::ModelFiles & m, const std::vector<int32_t> & plan, const std::string & out_path,
                  const Options & opt, Result * result) {
    if (result) *result = Result();
    if (plan.size() != m.tensors.size())
        return error(SDGO_ERR_INVALID_ARGUMENT, "the plan has %zu entries for %zu tensors", plan.size(),
                     m.tensors.size());
    if (out_path.empty()) return error(SDGO_ERR_INVALID_ARGUMENT, "empty output path");

    // Validate the whole plan and lay the file out before writing a byte.
    struct Out {
        size_t index;
        int32_t type;
        uint64_t nbytes;
    };
    std::vector<Out> outs;
    uint64_t bytes_total = 0;
    bool any_quantized = false;
    Result res;
    for (size_t i = 0; i < plan.size(); i++) {
        const TensorEntry & t = m.tensors[i];
        if (plan[i] == kDrop) {
            res.tensors_dropped++;
            continue;
        }
        SDGO_TRY(check_target(t, plan[i]));
        if (t.name.empty() || t.name.size() >= formats::kGGUFMaxName)
            return error(SDGO_ERR_UNSUPPORTED, "tensor name \"%s\" is too long for GGUF (%zu bytes, limit %zu)",
                         t.name.c_str(), t.name.size(), formats::kGGUFMaxName - 1);
        for (int d = 0; d < 4; d++)
            if (t.ne[d] < 0) return error(SDGO_ERR_FORMAT, "tensor %s has a negative dimension", t.name.c_str());
        Out o;
        o.index = i;
        o.type = plan[i];
        uint64_t nb = 0;
        SDGO_TRY(formats::ggml_nbytes(plan[i], t.ne, &nb).wrap("tensor " + t.name));
        o.nbytes = nb;
        outs.push_back(o);
        bytes_total += t.nbytes;
        if (type_traits(plan[i])->is_quantized) any_quantized = true;
    }

    // The header comes from the GGUF writer; the data is streamed after it.
    formats::GGUFWriter w;
    if (any_quantized) w.set("general.quantization_version", formats::GGUFValue::of_u32(2));
    for (const auto & kv : opt.metadata) {
        if (kv.second.size() > formats::kGGUFMaxLen)
            return error(SDGO_ERR_UNSUPPORTED, "metadata %s is too long for GGUF", kv.first.c_str());
        w.set(kv.first, formats::GGUFValue::of_str(kv.second));
    }
    for (const Out & o : outs) {
        const TensorEntry & t = m.tensors[o.index];
        SDGO_TRY(w.add_tensor(t.name, o.type, t.ne, nullptr, o.nbytes));
    }
    std::vector<uint8_t> hdr;
    SDGO_TRY(w.encode_header(&hdr));
    const uint64_t align = w.alignment();

    TempFile tf;
    SDGO_TRY(tf.open(out_path));
    SDGO_TRY(tf.write(hdr.data(), hdr.size()));

    Progress pr;
    pr.tensor_count = (int64_t)outs.size();
    pr.bytes_total = bytes_total;
    auto report = [&](int32_t phase) -> Status {
        pr.phase = phase;
        pr.out_bytes_done = tf.written();
        if (opt.progress && !opt.progress(pr)) return error(SDGO_ERR_CANCELED, "canceled");
        if (canceled(opt.cancel)) return error(SDGO_ERR_CANCELED, "canceled");
        return Status();
    };
    for (const Out & o : outs) {
        const TensorEntry & t = m.tensors[o.index];
        pr.tensor_index = (int64_t)o.index;
        pr.out_type = o.type;
        SDGO_TRY(report(kPhaseTensorStart));
        uint64_t got = 0;
        const uint64_t src_before = pr.bytes_done;
        SDGO_TRY(convert_tensor(
            t, o.type, opt.pool, opt.cancel,
            [&](const void * p, size_t n) -> Status {
                got += n;
                if (got > o.nbytes)
                    return error(SDGO_ERR_INTERNAL, "tensor %s: more bytes than planned", t.name.c_str());
                return tf.write(p, n);
            },
            [&](uint64_t src) -> Status {
                pr.bytes_done += src;
                return report(kPhaseBytes);
            }));
        if (got != o.nbytes)
            return error(SDGO_ERR_INTERNAL, "tensor %s: wrote %llu bytes, planned %llu", t.name.c_str(),
                         (unsigned long long)got, (unsigned long long)o.nbytes);
        SDGO_TRY(tf.zeros((align - o.nbytes % align) % align));
        pr.bytes_done = src_before + t.nbytes;
        pr.tensors_done++;
        SDGO_TRY(report(kPhaseTensorDone));
    }
    SDGO_TRY(report(kPhaseFinishing));
    res.bytes_out = tf.written();
    res.bytes_in = bytes_total;
    res.tensors_written = (int64_t)outs.size();
    SDGO_TRY(tf.commit());
    if (result) *result = res;
    return Status();
}

}  // namespace sdgo::convert
