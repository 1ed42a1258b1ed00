// test_convert.cpp — the GGUF converter behind `sd-go quantize`.
//
// What is checked:
//  * byte identity with ggml: ggml's own quantize output for the golden
//    inputs (testdata/quant, ggml_quantize_chunk with an all-ones importance
//    vector, the call stable-diffusion.cpp's converter makes) equals the bytes
//    our converter writes for the same f32 tensor, with and without threads;
//  * the files written pass the strict GGUF reader (ggml's rules) and every
//    structural rule re-checked here by hand (offsets, padding, file size);
//  * round trips through our reader: kept tensors byte-identical, converted
//    ones within the quantization error;
//  * source normalisation (f64, i64, f8), failures and cancellation leave no
//    file behind and never touch an existing output.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "convert/convert.h"
#include "base/threadpool.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "model/load.h"
#include "testing.h"
#include "types/types.h"

using namespace sdgo;
using namespace sdgo::formats;
using sdgo::convert::kDrop;

namespace {

std::vector<uint8_t> read_all(const std::string & path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}
uint32_t u32_at(const std::vector<uint8_t> & b, size_t off) {
    uint32_t v;
    std::memcpy(&v, b.data() + off, 4);
    return v;
}
bool exists(const std::string & p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0;
}

void remove_tree(const std::string & d) {
    std::string cmd = "rm -rf '" + d + "'";
    if (std::system(cmd.c_str()) != 0) std::printf("  could not remove %s\n", d.c_str());
}

// Folders made by temp_dir, removed when the test program exits.
struct TempDirs {
    std::vector<std::string> dirs;
    ~TempDirs() {
        for (const auto & d : dirs) remove_tree(d);
    }
};
TempDirs g_temp_dirs;

// A fresh empty folder for one test.
std::string temp_dir(const std::string & tag) {
    std::string d = "/tmp/sdgo_test_convert_" + tag + "_" + std::to_string(::getpid());
    remove_tree(d);
    ::mkdir(d.c_str(), 0755);
    g_temp_dirs.dirs.push_back(d);
    return d;
}
std::vector<std::string> list_dir(const std::string & d) {
    std::vector<std::string> out;
    if (DIR * dir = ::opendir(d.c_str())) {
        while (dirent * e = ::readdir(dir))
            if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) out.push_back(e->d_name);
        ::closedir(dir);
    }
    return out;
}

struct GoldenInputs {
    uint32_t nrows = 0, npr = 0;
    std::vector<float> x;
};
bool load_inputs(GoldenInputs * in) {
    const auto b = read_all(testing::source_path("testdata/quant/inputs.bin"));
    if (b.size() < 16 || std::memcmp(b.data(), "SDGI", 4) != 0) return false;
    in->nrows = u32_at(b, 8);
    in->npr = u32_at(b, 12);
    const size_t n = (size_t)in->nrows * in->npr;
    if (b.size() < 16 + 4 * n) return false;
    in->x.resize(n);
    std::memcpy(in->x.data(), b.data() + 16, 4 * n);
    return true;
}
// ggml's bytes from a golden file (header: magic, version, type, mode, nrows, npr, nbytes, has_deq).
bool load_golden(const char * file, int32_t * type, int * mode, std::vector<uint8_t> * bytes) {
    const auto b = read_all(testing::source_path(std::string("testdata/quant/") + file));
    if (b.size() < 32 || std::memcmp(b.data(), "SDGQ", 4) != 0) return false;
    *type = (int32_t)u32_at(b, 8);
    *mode = (int)u32_at(b, 12);
    const uint32_t nbytes = u32_at(b, 24);
    if (b.size() < 32 + (size_t)nbytes) return false;
    bytes->assign(b.begin() + 32, b.begin() + 32 + nbytes);
    return true;
}

TensorEntry owned_tensor(ModelFiles * m, const std::string & name, DType t, std::vector<int64_t> shape_pt,
                         const void * data, size_t nbytes) {
    TensorEntry e;
    e.name = e.source_name = name;
    e.type = t;
    shape_to_ne(shape_pt, &e);
    uint8_t * p = m->alloc_owned(nbytes);
    std::memcpy(p, data, nbytes);
    e.data = p;
    e.nbytes = nbytes;
    return e;
}

// Finds a tensor's bytes in a parsed GGUF.
const GGUFTensorInfo * find_info(const GGUFFile & g, const std::string & name) {
    for (const auto & t : g.tensors)
        if (t.name == name) return &t;
    return nullptr;
}

// Every structural rule of ggml's reader, checked by hand on the bytes.
void check_gguf_structure(const std::string & path, const GGUFFile & g) {
    const auto b = read_all(path);
    REQUIRE(b.size() >= 24);
    CHECK_EQ(u32_at(b, 0), kGGUFMagic);
    CHECK_EQ(u32_at(b, 4), 3u);
    CHECK_EQ(g.alignment, 32u);
    CHECK_EQ(g.data_offset % 32, (uint64_t)0);
    uint64_t expect = 0;
    for (const auto & t : g.tensors) {
        CHECK_EQ(t.offset, expect);  // sequential, each padded to 32
        CHECK(t.name.size() < kGGUFMaxName);
        CHECK(t.n_dims >= 1 && t.n_dims <= 4);
        int64_t bs = 0;
        size_t ts = 0;
        const char * nm = nullptr;
        CHECK(ggml_type_info(t.type, &bs, &ts, &nm));
        CHECK(bs > 0 && t.ne[0] % bs == 0);
        expect += (t.nbytes + 31) / 32 * 32;
        // Padding bytes are zero.
        for (uint64_t i = g.data_offset + t.offset + t.nbytes; i < g.data_offset + expect && i < b.size(); i++)
            CHECK(b[i] == 0);
    }
    CHECK_EQ((uint64_t)b.size(), g.data_offset + expect);  // trailing pad written, nothing more
}

convert::Result write_ok(const ModelFiles & m, const std::vector<int32_t> & plan, const std::string & out,
                         ThreadPool * pool = nullptr) {
    convert::Options opt;
    opt.pool = pool;
    convert::Result r;
    Status st = convert::write_gguf(m, plan, out, opt, &r);
    if (!st.ok()) std::printf("  write_gguf: %s\n", st.message().c_str());
    CHECK(st.ok());
    return r;
}

// To f32 for any tensor: block types through the type table's decoder.
Status any_to_f32(const TensorEntry & t, std::vector<float> * out) {
    const TypeTraits * tr = t.is_ggml() ? type_traits(t.type) : nullptr;
    if (tr && tr->is_quantized && tr->to_f32) {
        std::vector<uint8_t> a(t.nbytes);
        std::memcpy(a.data(), t.data, t.nbytes);
        out->assign((size_t)t.nelements(), 0.0f);
        tr->to_f32(a.data(), out->data(), t.nelements());
        return Status();
    }
    return tensor_to_f32(t, out);
}

}  // namespace

// The converter's output for ggml's golden inputs equals ggml's quantize
// output with the all-ones importance vector (stable-diffusion.cpp's call),
// for every type, single- and multi-threaded, through file and reader.
TEST(bytes_identical_to_ggml_goldens) {
    GoldenInputs in;
    REQUIRE(load_inputs(&in));
    const char * goldens[] = {"q4_0_imat1.bin", "q4_1_imat1.bin", "q5_0_imat1.bin", "q5_1_imat1.bin",
                              "q8_0_imat1.bin", "f16_ref.bin",    "bf16_ref.bin"};
    ModelFiles m;
    REQUIRE(m.add(owned_tensor(&m, "model.diffusion_model.w.weight", DType::f32, {(int64_t)in.nrows, (int64_t)in.npr}, in.x.data(),
                               in.x.size() * 4))
                .ok());
    // The same values as f16 and bf16 sources must convert through f32 too.
    const std::string dir = temp_dir("golden");
    ThreadPool pool(3);
    for (const char * g : goldens) {
        int32_t type = -1;
        int mode = -1;
        std::vector<uint8_t> gold;
        REQUIRE(load_golden(g, &type, &mode, &gold));
        for (int threaded = 0; threaded < 2; threaded++) {
            const std::string out = dir + "/" + g + (threaded ? ".mt" : "") + ".gguf";
            convert::Result r = write_ok(m, {type}, out, threaded ? &pool : nullptr);
            CHECK_EQ(r.tensors_written, (int64_t)1);
            CHECK_EQ(r.bytes_in, (uint64_t)in.x.size() * 4);
            std::shared_ptr<MappedFile> f;
            REQUIRE(MappedFile::open(out, &f).ok());
            GGUFFile gf;
            REQUIRE(gguf_parse(*f, &gf).ok());
            check_gguf_structure(out, gf);
            CHECK_EQ(r.bytes_out, (uint64_t)f->size());
            REQUIRE(gf.tensors.size() == 1);
            const GGUFTensorInfo & ti = gf.tensors[0];
            CHECK_EQ(ti.type, type);
            CHECK_EQ(ti.ne[0], (int64_t)in.npr);
            CHECK_EQ(ti.ne[1], (int64_t)in.nrows);
            REQUIRE(ti.nbytes == gold.size());
            const bool same = std::memcmp(f->data() + gf.data_offset + ti.offset, gold.data(), gold.size()) == 0;
            if (!same) std::printf("  %s (threads %d): bytes differ from ggml\n", g, threaded);
            CHECK(same);
            // Block types carry general.quantization_version = 2.
            const GGUFValue * qv = gf.get("general.quantization_version");
            if (type_traits(type)->is_quantized) {
                REQUIRE(qv != nullptr);
                CHECK_EQ(qv->type, (int32_t)GGUF_UINT32);
                CHECK_EQ(qv->u, (uint64_t)2);
            } else {
                CHECK(qv == nullptr);
            }
        }
    }
}

// convert_tensor's bytes equal quantize_rows' with the ones vector on an
// odd-sized tensor of many rows (several pieces), from an f16 source.
TEST(tensor_bytes_equal_types_quantize) {
    const int64_t ne0 = 96, nrows_all = 50000;  // 4.8M elements: two pieces of whole rows
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 0.05f);
    std::vector<uint16_t> h((size_t)(ne0 * nrows_all));
    std::vector<float> f(h.size());
    for (size_t i = 0; i < h.size(); i++) {
        h[i] = fp32_to_fp16(nd(rng));
        f[i] = fp16_to_fp32(h[i]);
    }
    ModelFiles m;
    REQUIRE(m.add(owned_tensor(&m, "t", DType::f16, {nrows_all, ne0}, h.data(), h.size() * 2)).ok());
    ThreadPool pool(2);
    for (DType t : {DType::q4_0, DType::q4_1, DType::q5_0, DType::q5_1, DType::q8_0, DType::bf16, DType::f32}) {
        // q4_1/q5_1's weighted search is slow: one piece of 2000 rows for
        // them, the whole tensor (several pieces) for the others.
        const bool slow = t == DType::q4_1 || t == DType::q5_1;
        const int64_t nrows = slow ? 2000 : nrows_all;
        m.tensors[0].ne[1] = nrows;
        m.tensors[0].nbytes = (uint64_t)(ne0 * nrows * 2);
        size_t need = 0;
        REQUIRE(tensor_bytes(t, ne0, nrows, &need).ok());
        std::vector<float> ones((size_t)ne0, 1.0f);
        std::vector<uint8_t> want(need);
        size_t w = 0;
        REQUIRE(quantize_rows(t, f.data(), want.data(), want.size(), nrows, ne0,
                              type_traits(t)->is_quantized ? ones.data() : nullptr, &w)
                    .ok());
        std::vector<uint8_t> got;
        int pieces = 0;
        uint64_t src_seen = 0;
        Status st = convert::convert_tensor(
            m.tensors[0], (int32_t)t, &pool, nullptr,
            [&](const void * p, size_t n) -> Status {
                got.insert(got.end(), (const uint8_t *)p, (const uint8_t *)p + n);
                pieces++;
                return Status();
            },
            [&](uint64_t b) -> Status {
                src_seen += b;
                return Status();
            });
        CHECK(st.ok());
        CHECK(slow || pieces >= 2);
        CHECK_EQ(src_seen, (uint64_t)(ne0 * nrows * 2));
        CHECK(got == want);
    }
}

// Kept tensors are copied byte for byte; f64 -> f32, i64 -> i32, f8 -> f16
// (stable-diffusion.cpp's normalisation); rows not a multiple of 32 cannot be
// quantized; integers cannot become floats; unsupported types must be dropped.
TEST(source_normalisation_and_plan_checks) {
    ModelFiles m;
    std::vector<double> d64 = {1.5, -2.25, 3.0, 1e-3};
    std::vector<int64_t> i64 = {0, 1, 2, -7};
    std::vector<uint8_t> f8 = {0x38, 0xb8, 0x7e, 0x01};  // e4m3: 1.0, -1.0, 448, 2^-9
    std::vector<uint8_t> f8b = {0x3c, 0xc0, 0x00, 0x7b};  // e5m2: 1.0, -2.0, 0, 57344
    std::vector<uint16_t> h48(48 * 2);
    for (size_t i = 0; i < h48.size(); i++) h48[i] = fp32_to_fp16((float)i / 10);
    std::vector<uint8_t> u8 = {1, 2, 3};
    REQUIRE(m.add(owned_tensor(&m, "a.f64", DType::f64, {4}, d64.data(), 32)).ok());
    REQUIRE(m.add(owned_tensor(&m, "b.i64", DType::i64, {4}, i64.data(), 32)).ok());
    TensorEntry e8 = owned_tensor(&m, "c.f8", DType::f32, {4}, f8.data(), 4);
    e8.stored = StoredType::f8_e4m3;
    REQUIRE(m.add(e8).ok());
    TensorEntry e8b = owned_tensor(&m, "c2.f8", DType::f32, {4}, f8b.data(), 4);
    e8b.stored = StoredType::f8_e5m2;
    REQUIRE(m.add(e8b).ok());
    REQUIRE(m.add(owned_tensor(&m, "d.h48", DType::f16, {2, 48}, h48.data(), h48.size() * 2)).ok());
    TensorEntry eu8 = owned_tensor(&m, "e.u8", DType::f32, {3}, u8.data(), 3);
    eu8.stored = StoredType::u8;
    REQUIRE(m.add(eu8).ok());

    CHECK_EQ(convert::normalized_type(m.tensors[0]), (int32_t)DType::f32);
    CHECK_EQ(convert::normalized_type(m.tensors[1]), (int32_t)DType::i32);
    CHECK_EQ(convert::normalized_type(m.tensors[2]), (int32_t)DType::f16);
    CHECK_EQ(convert::normalized_type(m.tensors[3]), (int32_t)DType::f16);
    CHECK_EQ(convert::normalized_type(m.tensors[4]), (int32_t)DType::f16);
    CHECK_EQ(convert::normalized_type(m.tensors[5]), kDrop);

    const std::string dir = temp_dir("norm");
    const std::string out = dir + "/n.gguf";
    convert::Result r = write_ok(m, {(int32_t)DType::f32, (int32_t)DType::i32, (int32_t)DType::f16,
                                     (int32_t)DType::f16, (int32_t)DType::f16, kDrop},
                                 out);
    CHECK_EQ(r.tensors_written, (int64_t)5);
    CHECK_EQ(r.tensors_dropped, (int64_t)1);
    ModelFiles back;
    REQUIRE(load_gguf(out, &back).ok());
    REQUIRE(back.tensors.size() == 5);
    std::vector<float> v;
    REQUIRE(tensor_to_f32(*back.find("a.f64"), &v).ok());
    CHECK(back.find("a.f64")->type == DType::f32);
    for (size_t i = 0; i < 4; i++) CHECK_EQ(v[i], (float)d64[i]);
    REQUIRE(back.find("b.i64")->type == DType::i32);
    const int32_t * iv = reinterpret_cast<const int32_t *>(back.find("b.i64")->data);
    for (size_t i = 0; i < 4; i++) CHECK_EQ((int64_t)iv[i], i64[i]);
    REQUIRE(tensor_to_f32(*back.find("c.f8"), &v).ok());
    CHECK_EQ(v[0], 1.0f);
    CHECK_EQ(v[1], -1.0f);
    CHECK_EQ(v[2], 448.0f);
    CHECK_EQ(v[3], std::ldexp(1.0f, -9));
    REQUIRE(tensor_to_f32(*back.find("c2.f8"), &v).ok());
    CHECK_EQ(v[0], 1.0f);
    CHECK_EQ(v[1], -2.0f);
    CHECK_EQ(v[2], 0.0f);
    CHECK_EQ(v[3], 57344.0f);
    CHECK(std::memcmp(back.find("d.h48")->data, h48.data(), h48.size() * 2) == 0);  // kept: same bytes
    CHECK(back.find("e.u8") == nullptr);

    // Plans that cannot be honoured fail before any file appears.
    const std::string bad = dir + "/bad.gguf";
    auto fails = [&](std::vector<int32_t> plan, int32_t code) {
        convert::Result rr;
        Status st = convert::write_gguf(m, plan, bad, convert::Options(), &rr);
        CHECK_EQ(st.code(), code);
        CHECK(!st.message().empty());
        CHECK(!exists(bad));
    };
    const int32_t f32 = (int32_t)DType::f32, i32 = (int32_t)DType::i32, f16 = (int32_t)DType::f16;
    fails({f32, i32, f16, f16, (int32_t)DType::q4_0, kDrop}, SDGO_ERR_INVALID_ARGUMENT);  // 48 % 32 != 0
    fails({f32, (int32_t)DType::q8_0, f16, f16, f16, kDrop}, SDGO_ERR_INVALID_ARGUMENT);  // int -> q8_0
    fails({f32, i32, f16, f16, f16, f16}, SDGO_ERR_UNSUPPORTED);                           // u8 kept
    fails({f32, i32, f16, f16, f16}, SDGO_ERR_INVALID_ARGUMENT);                           // short plan
    fails({f32, i32, f16, f16, 99, kDrop}, SDGO_ERR_INVALID_ARGUMENT);                     // unknown type
    fails({f32, i32, f16, f16, (int32_t)DType::q2_K, kDrop}, SDGO_ERR_UNSUPPORTED);       // no encoder yet
    CHECK_EQ(list_dir(dir).size(), (size_t)1);  // only n.gguf
}

// A real (tiny) SD1 checkpoint: load with canonical names, quantize the
// eligible tensors to q8_0 / q4_0, read back through the model loader.
TEST(tiny_model_round_trip) {
    model::LoadedModel src;
    REQUIRE(model::load_model(testing::source_path("testdata/models/sd1_ldm.safetensors"), &src).ok());
    const auto & ts = src.files.tensors;
    REQUIRE(!ts.empty());
    const std::string dir = temp_dir("tiny");
    ThreadPool pool(2);
    for (DType target : {DType::q8_0, DType::q4_0, DType::f16}) {
        std::vector<int32_t> plan;
        int n_quant = 0;
        for (const auto & t : ts) {
            int32_t keep = convert::normalized_type(t);
            const bool is_float = keep == (int32_t)DType::f32 || keep == (int32_t)DType::f16 ||
                                  keep == (int32_t)DType::bf16;
            if (is_float && t.ne[0] % type_traits(target)->block_size == 0) {
                plan.push_back((int32_t)target);
                n_quant += type_traits(target)->is_quantized;
            } else {
                plan.push_back(keep);
            }
        }
        const std::string out = dir + "/tiny_" + dtype_name(target) + ".gguf";
        convert::Result r = write_ok(src.files, plan, out, &pool);
        CHECK_EQ(r.tensors_written, (int64_t)ts.size());
        std::shared_ptr<MappedFile> f;
        REQUIRE(MappedFile::open(out, &f).ok());
        GGUFFile gf;
        REQUIRE(gguf_parse(*f, &gf).ok());
        check_gguf_structure(out, gf);
        model::LoadedModel back;
        Status st = model::load_model(out, &back);
        if (!st.ok()) std::printf("  reload: %s\n", st.message().c_str());
        REQUIRE(st.ok());
        REQUIRE(back.files.tensors.size() == ts.size());
        for (size_t i = 0; i < ts.size(); i++) {
            const TensorEntry * b = back.files.find(ts[i].name);
            REQUIRE(b != nullptr);
            CHECK_EQ(b->type_id(), plan[i]);
            for (int d = 0; d < 4; d++) CHECK_EQ(b->ne[d], ts[i].ne[d]);
            const GGUFTensorInfo * gi = find_info(gf, ts[i].name);
            CHECK(gi != nullptr);
            std::vector<float> a, c;
            REQUIRE(tensor_to_f32(ts[i], &a).ok());
            REQUIRE(any_to_f32(*b, &c).ok());
            REQUIRE(a.size() == c.size());
            if (plan[i] == convert::normalized_type(ts[i]) && ts[i].is_ggml()) {
                CHECK(b->nbytes == ts[i].nbytes && std::memcmp(b->data, ts[i].data, b->nbytes) == 0);
            } else {
                // Within the quantization error: each element off by at most
                // a few steps of its block's scale.
                double amax = 0;
                for (float x : a) amax = std::max(amax, (double)std::fabs(x));
                const double tol = target == DType::q4_0 ? amax / 4 : amax / 50;
                for (size_t k = 0; k < a.size(); k++) CHECK(std::fabs(a[k] - c[k]) <= tol + 1e-6);
            }
        }
        if (target != DType::f16) CHECK(n_quant > 0);
    }
}

// Progress reports are ordered and complete; cancellation (by flag or by the
// callback) removes the temporary file and leaves an existing output alone;
// a missing output folder is a clear I/O error.
TEST(progress_cancel_and_output_errors) {
    const int64_t ne0 = 256, nrows = 40000;
    std::vector<float> x((size_t)(ne0 * nrows));
    for (size_t i = 0; i < x.size(); i++) x[i] = std::sin((float)i * 0.001f);
    ModelFiles m;
    REQUIRE(m.add(owned_tensor(&m, "big", DType::f32, {nrows, ne0}, x.data(), x.size() * 4)).ok());
    REQUIRE(m.add(owned_tensor(&m, "small", DType::f32, {ne0}, x.data(), ne0 * 4)).ok());
    const std::string dir = temp_dir("cancel");
    const std::string out = dir + "/out.gguf";

    // Progress.
    std::vector<convert::Progress> seen;
    convert::Options opt;
    opt.progress = [&](const convert::Progress & p) {
        seen.push_back(p);
        return true;
    };
    convert::Result r;
    REQUIRE(convert::write_gguf(m, {(int32_t)DType::q8_0, (int32_t)DType::f16}, out, opt, &r).ok());
    REQUIRE(seen.size() >= 6);
    uint64_t last = 0;
    int starts = 0, dones = 0;
    for (const auto & p : seen) {
        CHECK(p.bytes_done >= last);
        last = p.bytes_done;
        CHECK_EQ(p.bytes_total, (uint64_t)(x.size() + ne0) * 4);
        CHECK_EQ(p.tensor_count, (int64_t)2);
        starts += p.phase == convert::kPhaseTensorStart;
        dones += p.phase == convert::kPhaseTensorDone;
    }
    CHECK_EQ(starts, 2);
    CHECK_EQ(dones, 2);
    CHECK_EQ(seen.back().phase, (int32_t)convert::kPhaseFinishing);
    CHECK_EQ(seen.back().bytes_done, seen.back().bytes_total);
    CHECK_EQ(seen.back().out_bytes_done, r.bytes_out);
    const auto before = read_all(out);
    REQUIRE(!before.empty());

    // Cancel from the callback in the middle of the big tensor.
    int calls = 0;
    opt.progress = [&](const convert::Progress & p) { return ++calls < 2 || p.phase != convert::kPhaseBytes; };
    Status st = convert::write_gguf(m, {(int32_t)DType::q4_0, (int32_t)DType::f16}, out, opt, &r);
    CHECK_EQ(st.code(), (int32_t)SDGO_ERR_CANCELED);
    CHECK(read_all(out) == before);
    CHECK_EQ(list_dir(dir).size(), (size_t)1);

    // Cancel by flag, set before the start.
    std::atomic<int32_t> flag{1};
    convert::Options o2;
    o2.cancel = &flag;
    st = convert::write_gguf(m, {(int32_t)DType::q4_0, (int32_t)DType::f16}, dir + "/other.gguf", o2, &r);
    CHECK_EQ(st.code(), (int32_t)SDGO_ERR_CANCELED);
    CHECK_EQ(list_dir(dir).size(), (size_t)1);

    // Output folder missing; output is a folder.
    st = convert::write_gguf(m, {(int32_t)DType::f32, (int32_t)DType::f32}, dir + "/nope/x.gguf", convert::Options(), &r);
    CHECK_EQ(st.code(), (int32_t)SDGO_ERR_IO);
    CHECK(st.message().find("does not exist") != std::string::npos);
    st = convert::write_gguf(m, {(int32_t)DType::f32, (int32_t)DType::f32}, dir, convert::Options(), &r);
    CHECK_EQ(st.code(), (int32_t)SDGO_ERR_INVALID_ARGUMENT);
    // A read-only folder (skipped when running as root, which may write anyway).
    if (::geteuid() != 0) {
        const std::string ro = dir + "/ro";
        ::mkdir(ro.c_str(), 0555);
        st = convert::write_gguf(m, {(int32_t)DType::f32, (int32_t)DType::f32}, ro + "/x.gguf", convert::Options(), &r);
        CHECK_EQ(st.code(), (int32_t)SDGO_ERR_IO);
    }
}

// The VAE's mid-block attention weights go out as 1x1 convolutions (the
// LDM / stable-diffusion.cpp shape) and come back 2-D through our loader.
TEST(vae_attention_shape_restored) {
    model::LoadedModel src;
    REQUIRE(model::load_model(testing::source_path("testdata/models/vae_diffusers.safetensors"), &src).ok());
    const std::string q = "first_stage_model.decoder.mid.attn_1.q.weight";
    const TensorEntry * t = src.files.find(q);
    REQUIRE(t != nullptr);
    REQUIRE(t->n_dims == 2);
    const int64_t c0 = t->ne[0], c1 = t->ne[1];
    convert::restore_sdcpp_shapes(&src.files);
    src.files.reindex();
    t = src.files.find(q);
    CHECK_EQ(t->n_dims, 4);
    CHECK(t->ne[0] == 1 && t->ne[1] == 1 && t->ne[2] == c0 && t->ne[3] == c1);
    const TensorEntry * nb = src.files.find("first_stage_model.decoder.mid.attn_1.q.bias");
    REQUIRE(nb != nullptr);
    CHECK_EQ(nb->n_dims, 1);
    std::vector<int32_t> plan;
    for (const auto & x : src.files.tensors) plan.push_back(convert::normalized_type(x));
    const std::string dir = temp_dir("vae");
    write_ok(src.files, plan, dir + "/vae.gguf");
    model::LoadedModel back;
    REQUIRE(model::load_model(dir + "/vae.gguf", &back).ok());
    const TensorEntry * b = back.files.find(q);
    REQUIRE(b != nullptr);
    CHECK_EQ(b->n_dims, 2);
    CHECK(b->ne[0] == c0 && b->ne[1] == c1);
    CHECK(b->nbytes == t->nbytes && std::memcmp(b->data, t->data, b->nbytes) == 0);
}
