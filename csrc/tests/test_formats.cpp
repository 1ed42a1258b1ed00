// Tests for csrc/formats (safetensors, GGUF, PyTorch zip/legacy, zip, JSON)
// and csrc/model naming/detection, on files written by the real Python
// writers (testdata/gen/gen_model_files.py) plus hostile inputs built here.
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <ftw.h>
#include <map>
#include <random>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/gguf.h"
#include "formats/json.h"
#include "formats/mapped_file.h"
#include "formats/pickle.h"
#include "formats/safetensors.h"
#include "formats/torch_file.h"
#include "formats/zip.h"
#include "model/detect.h"
#include "model/load.h"
#include "testing.h"

using namespace sdgo;
using namespace sdgo::formats;
using namespace sdgo::model;

namespace {

std::string M(const std::string & rel) { return testing::source_path("testdata/models/" + rel); }

std::vector<uint8_t> read_all(const std::string & path) {
    std::vector<uint8_t> v;
    FILE * f = std::fopen(path.c_str(), "rb");
    if (!f) return v;
    std::fseek(f, 0, SEEK_END);
    long n = std::ftell(f);
    std::fseek(f, 0, SEEK_SET);
    v.resize((size_t)n);
    if (n > 0 && std::fread(v.data(), 1, (size_t)n, f) != (size_t)n) v.clear();
    std::fclose(f);
    return v;
}

int rm_entry(const char * p, const struct stat *, int, struct FTW *) { return std::remove(p); }

// A scratch folder, removed with its contents when the test exits.
struct TmpDir {
    std::string path;
    TmpDir() {
        char buf[] = "/tmp/sdgo_test_formats_XXXXXX";
        if (mkdtemp(buf)) path = buf;
    }
    ~TmpDir() {
        if (!path.empty()) nftw(path.c_str(), rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
};

std::string tmpdir() {
    static TmpDir d;
    return d.path.empty() ? std::string("/tmp") : d.path;
}

std::string write_tmp(const std::string & name, const void * data, size_t n) {
    std::string p = tmpdir() + "/" + name;
    FILE * f = std::fopen(p.c_str(), "wb");
    if (n) std::fwrite(data, 1, n, f);
    std::fclose(f);
    return p;
}
std::string write_tmp(const std::string & name, const std::vector<uint8_t> & v) { return write_tmp(name, v.data(), v.size()); }

// Loads bytes through the format sniffing path.
Status load_bytes(const std::vector<uint8_t> & v, const std::string & name, LoadedModel * m) {
    return load_model(write_tmp(name, v), m);
}

bool same_bytes(const TensorEntry & a, const TensorEntry & b) {
    return a.nbytes == b.nbytes && std::memcmp(a.data, b.data, a.nbytes) == 0;
}

bool same_values(const TensorEntry & a, const TensorEntry & b) {
    std::vector<float> x, y;
    if (!tensor_to_f32(a, &x).ok() || !tensor_to_f32(b, &y).ok() || x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); i++)
        if (!(x[i] == y[i])) return false;
    return true;
}

bool same_shape(const TensorEntry & a, const TensorEntry & b) {
    for (int i = 0; i < 4; i++)
        if (a.ne[i] != b.ne[i]) return false;
    return true;
}

// Compares tensors with the manifest written by the generator (sum, sum of
// absolute values, first and last element, computed in float64 by numpy).
void check_manifest(const std::string & file, const ModelFiles & mf) {
    static Json manifest;
    static bool loaded = false;
    if (!loaded) {
        std::vector<uint8_t> t = read_all(M("manifest.json"));
        REQUIRE(!t.empty());
        REQUIRE(json_parse(reinterpret_cast<const char *>(t.data()), t.size(), &manifest).ok());
        loaded = true;
    }
    const Json * ent = manifest.get(file);
    REQUIRE(ent != nullptr);
    const Json * tensors = ent->get("tensors");
    REQUIRE(tensors != nullptr);
    CHECK_EQ(tensors->members.size(), mf.tensors.size());
    size_t checked = 0;
    for (const auto & kv : tensors->members) {
        const TensorEntry * t = mf.find(kv.first);
        if (!t) {
            testing::report_failure(__FILE__, __LINE__, "missing tensor " + kv.first);
            continue;
        }
        const Json * shape = kv.second.get("shape");
        std::vector<int64_t> sh;
        for (const auto & d : shape->items) sh.push_back((int64_t)d.num);
        TensorEntry ref;
        REQUIRE(shape_to_ne(sh, &ref).ok());
        CHECK(same_shape(*t, ref));
        std::vector<float> v;
        REQUIRE(tensor_to_f32(*t, &v).ok());
        double s = 0, a = 0;
        for (float x : v) { s += x; a += std::fabs(x); }
        const Json * sum = kv.second.get("sum");
        double tol = 1e-9 * (1 + sum->items[1].num);
        CHECK_NEAR(s, sum->items[0].num, tol);
        CHECK_NEAR(a, sum->items[1].num, tol);
        if (!v.empty()) {
            CHECK_EQ((double)v.front(), sum->items[2].num);
            CHECK_EQ((double)v.back(), sum->items[3].num);
        }
        checked++;
    }
    CHECK(checked > 0);
}

// f32 values of a q8_0 tensor (block: f16 scale + 32 int8).
std::vector<float> dequant_q8_0(const TensorEntry & t) {
    std::vector<float> out;
    int64_t nb = t.nelements() / 32;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t * p = t.data + b * 34;
        uint16_t h;
        std::memcpy(&h, p, 2);
        float d = fp16_to_fp32(h);
        for (int k = 0; k < 32; k++) out.push_back(d * (float)(int8_t)p[2 + k]);
    }
    return out;
}

}  // namespace

// ---------------------------------------------------------------- JSON ----

// A FIFO (or any non-regular file) given as a model, a shard or a config is
// refused at once: opening a FIFO for reading would otherwise wait forever
// for a writer.
TEST(fifo_is_refused_without_blocking) {
    char dir[] = "/tmp/sdgo_fifo_XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    const std::string fifo = std::string(dir) + "/model.safetensors";
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    std::shared_ptr<MappedFile> mf;
    Status st = MappedFile::open(fifo, &mf);
    CHECK_EQ(st.code(), SDGO_ERR_IO);
    CHECK(st.message().find("not a regular file") != std::string::npos);
    FILE * f = nullptr;
    CHECK_EQ(open_regular_file(fifo, &f).code(), SDGO_ERR_IO);
    CHECK(f == nullptr);
    model::LoadedModel lm;
    CHECK(!model::load_model(fifo, &lm).ok());
    // a diffusers folder whose config is a FIFO
    const std::string folder = std::string(dir) + "/unet";
    REQUIRE(mkdir(folder.c_str(), 0700) == 0);
    REQUIRE(mkfifo((folder + "/config.json").c_str(), 0600) == 0);
    CHECK(!model::load_model(folder, &lm).ok());
    unlink((folder + "/config.json").c_str());
    rmdir(folder.c_str());
    unlink(fifo.c_str());
    rmdir(dir);
}

#if defined(__linux__)
// Resident pages of this process (/proc/self/statm, second field).
long resident_pages() {
    FILE * f = std::fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long size = 0, res = -1;
    if (std::fscanf(f, "%ld %ld", &size, &res) != 2) res = -1;
    std::fclose(f);
    return res;
}

// release() drops the whole pages of a range from resident memory; the
// bytes read back the same afterwards (faulted in from the file); ranges
// outside the mapping and copies in memory are left alone.
TEST(mapped_file_release_leaves_memory_and_rereads) {
    TmpDir d;
    REQUIRE(!d.path.empty());
    const std::string path = d.path + "/blob.bin";
    const size_t n = size_t(32) << 20;
    {
        std::vector<uint8_t> bytes(n);
        for (size_t i = 0; i < n; i++) bytes[i] = uint8_t(i * 131 + 7);
        FILE * f = std::fopen(path.c_str(), "wb");
        REQUIRE(f != nullptr);
        REQUIRE(std::fwrite(bytes.data(), 1, n, f) == n);
        std::fclose(f);
    }
    std::shared_ptr<MappedFile> mf;
    REQUIRE(MappedFile::open(path, &mf).ok());
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i += 4096) sum += mf->data()[i];  // touch every page
    const long before = resident_pages();
    mf->release(mf->data() + 1, n - 2);  // all but the partial first and last pages
    const long after = resident_pages();
    const long page = sysconf(_SC_PAGESIZE);
    std::printf("    resident: %ld -> %ld pages (%zu MiB released of a %zu MiB mapping)\n", before, after,
                size_t(before - after) * size_t(page) >> 20, n >> 20);
    CHECK(before - after >= long((n >> 20) - 1) * (1L << 20) / page);
    uint64_t again = 0;
    for (size_t i = 0; i < n; i += 4096) again += mf->data()[i];
    CHECK_EQ(again, sum);
    CHECK_EQ(mf->data()[n / 2], uint8_t((n / 2) * 131 + 7));
    // outside the mapping, empty, or a memory copy: nothing happens
    uint8_t other[16] = {1};
    mf->release(other, sizeof other);
    mf->release(mf->data(), 0);
    std::shared_ptr<MappedFile> mem = MappedFile::from_bytes(other, sizeof other);
    mem->release(mem->data(), sizeof other);
    CHECK_EQ(mem->data()[0], uint8_t(1));
}
#endif

TEST(json_parses_values_strictly) {
    Json j;
    const char * ok = " {\"a\": [1, -2, 3.5e2, true, false, null], \"s\": \"x\\u00e9\\ud83d\\ude00\\n\", \"big\": 18446744073709551615} ";
    REQUIRE(json_parse(ok, std::strlen(ok), &j).ok());
    CHECK_EQ(j.get("a")->items.size(), (size_t)6);
    int64_t v;
    CHECK(j.get("a")->items[1].as_int64(&v) && v == -2);
    CHECK_EQ(j.get("a")->items[2].num, 350.0);
    CHECK(!j.get("a")->items[2].is_int);
    CHECK_EQ(j.get("s")->str, std::string("x\xc3\xa9\xf0\x9f\x98\x80\n"));
    CHECK(j.get("big")->is_uint() && j.get("big")->mag == 18446744073709551615ull);
    const char * bad[] = {"", "{", "{\"a\":1,}", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"\\x\"", "\"\\ud800\"",
                          "\"a\x01\"", "{\"a\":1}x", "tru", "{\"a\":1,\"a\":2}", "\"\xff\"", "\"\xc0\x80\"", "[1 2]", "{1:2}"};
    for (const char * b : bad) {
        Status st = json_parse(b, std::strlen(b), &j);
        CHECK(!st.ok());
        CHECK_EQ(st.code(), SDGO_ERR_FORMAT);
    }
    std::string deep(100000, '[');
    CHECK(!json_parse(deep.data(), deep.size(), &j).ok());  // depth cap, no stack overflow
    CHECK_EQ(json_quote("a\"b\\\n\x01"), std::string("\"a\\\"b\\\\\\n\\u0001\""));
    // invalid UTF-8 from untrusted metadata still gives valid JSON
    std::string q = json_quote(std::string("x\xff\xc3\xa9\xed\xa0\x80y"));
    CHECK_EQ(q, std::string("\"x\\ufffd\xc3\xa9\\ufffd\\ufffd\\ufffdy\""));
    CHECK(json_parse(q.data(), q.size(), &j).ok());
}

TEST(json_objects_with_many_keys) {
    // A header with tens of thousands of keys (a vocab.json has 49408) parses,
    // and a duplicate at the very end is still caught.
    std::string text = "{";
    for (int i = 0; i < 60000; i++) text += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
    Json j;
    std::string ok = text + "}";
    REQUIRE(json_parse(ok.data(), ok.size(), &j).ok());
    CHECK_EQ(j.members.size(), (size_t)60000);
    int64_t v = 0;
    CHECK(j.members.back().second.as_int64(&v) && v == 59999);
    std::string dup = text + ",\"k123\":0}";
    Status st = json_parse(dup.data(), dup.size(), &j);
    CHECK_EQ(st.code(), SDGO_ERR_FORMAT);
    CHECK(st.message().find("duplicate key \"k123\"") != std::string::npos);
}

// --------------------------------------------------------- safetensors ----

TEST(safetensors_reads_every_tensor_intact) {
    ModelFiles mf;
    Status st = load_safetensors(M("sd1_ldm.safetensors"), &mf);
    REQUIRE(st.ok());
    check_manifest("sd1_ldm.safetensors", mf);
    CHECK(mf.meta("modelspec.title") && *mf.meta("modelspec.title") == "tiny sd1");
    CHECK(mf.meta("format") && *mf.meta("format") == "pt");
    const TensorEntry * t = mf.find("model.diffusion_model.input_blocks.0.0.weight");
    REQUIRE(t);
    CHECK(t->type == DType::f16);
    CHECK_EQ(t->n_dims, 4);
    CHECK_EQ(t->ne[0], 3); CHECK_EQ(t->ne[1], 3); CHECK_EQ(t->ne[2], 4); CHECK_EQ(t->ne[3], 4);
    // zero copy: the data points into the mapping
    const uint8_t * base = mf.files[0].map->data();
    CHECK(t->data >= base && t->data + t->nbytes <= base + mf.files[0].map->size());
}

TEST(safetensors_writer_roundtrip_and_layout) {
    std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
    std::vector<uint16_t> h = {fp32_to_fp16(0.5f), fp32_to_fp16(-1.0f), fp32_to_fp16(65504.0f)};
    std::vector<int64_t> ids = {0, 1, 2, 3};
    uint8_t u8[3] = {1, 2, 255};
    std::vector<SafetensorsTensor> ts = {
        {"a.weight", "F32", {2, 3}, a.data(), 24},
        {"h", "F16", {3}, h.data(), 6},
        {"ids", "I64", {1, 4}, ids.data(), 32},
        {"bytes", "U8", {3}, u8, 3},
        {"scalar", "F32", {}, a.data(), 4},
        {"empty", "F32", {0, 5}, nullptr, 0},
    };
    std::vector<uint8_t> buf;
    REQUIRE(encode_safetensors(ts, {{"k", "v\"q"}}, &buf).ok());
    uint64_t n;
    std::memcpy(&n, buf.data(), 8);
    CHECK_EQ(n % 8, (uint64_t)0);           // data buffer 8-byte aligned
    CHECK_EQ(buf[8], (uint8_t)'{');
    CHECK(std::string(reinterpret_cast<const char *>(buf.data() + 8), 15) == "{\"__metadata__\"");
    ModelFiles mf;
    REQUIRE(read_safetensors(MappedFile::from_bytes(buf.data(), buf.size(), "rt"), &mf).ok());
    CHECK_EQ(mf.tensors.size(), (size_t)6);
    CHECK(*mf.meta("k") == "v\"q");
    std::vector<float> v;
    REQUIRE(tensor_to_f32(*mf.find("a.weight"), &v).ok());
    CHECK_EQ(v[2], 3.25f);
    CHECK_EQ(mf.find("a.weight")->ne[0], 3);
    REQUIRE(tensor_to_f32(*mf.find("h"), &v).ok());
    CHECK_EQ(v[0], 0.5f); CHECK_EQ(v[2], 65504.0f);
    REQUIRE(tensor_to_f32(*mf.find("ids"), &v).ok());
    CHECK_EQ(v[3], 3.0f);
    CHECK(mf.find("bytes")->stored == StoredType::u8);
    CHECK_EQ(mf.find("scalar")->nelements(), 1);
    CHECK_EQ(mf.find("empty")->nelements(), 0);
    // the widest dtype comes first in the data buffer (reference writer order)
    CHECK(mf.find("ids")->file_offset < mf.find("a.weight")->file_offset);
    // writer refuses inconsistent input
    std::vector<SafetensorsTensor> badt = {{"x", "F32", {2}, a.data(), 4}};
    CHECK(!encode_safetensors(badt, {}, &buf).ok());
    badt = {{"x", "Q4", {2}, a.data(), 8}};
    CHECK(!encode_safetensors(badt, {}, &buf).ok());
}

namespace {
std::vector<uint8_t> st_file(const std::string & header, size_t data_bytes, uint64_t len_override = 0) {
    std::vector<uint8_t> v(8 + header.size() + data_bytes, 0);
    uint64_t n = len_override ? len_override : header.size();
    std::memcpy(v.data(), &n, 8);
    std::memcpy(v.data() + 8, header.data(), header.size());
    return v;
}
Status st_load(const std::vector<uint8_t> & v) {
    ModelFiles mf;
    return read_safetensors(MappedFile::from_bytes(v.data(), v.size(), "bad.safetensors"), &mf);
}
bool msg_has(const Status & st, const char * s) { return st.message().find(s) != std::string::npos; }
}  // namespace

TEST(safetensors_rejects_hostile_headers) {
    const std::string good = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    CHECK(st_load(st_file(good, 8)).ok());
    struct Case { std::string hdr; size_t data; uint64_t len; const char * msg; };
    std::vector<Case> cases = {
        {good, 8, 1000000, "larger than the file"},
        {good, 8, 200000000, "exceeds"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, 0, "does not match"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, 0, "cover"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, 0, "gap or overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, 0, "gap or overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, 0, "before begin"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,8]}}", 8, 0, "overflow"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}", 8, 0, "overflow"},
        {"{\"a\":{\"dtype\":\"Q4_K\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, "unknown dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, 0, "shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, 0, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},}", 8, 0, "invalid JSON"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, 0, "invalid JSON"},
        {"[1,2]", 0, 0, "not a JSON object"},
        {"{\"__metadata__\":{\"k\":1}}", 0, 0, "not a string"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, "duplicate"},
        {"{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2, 0, "whole bytes"},
    };
    for (const auto & c : cases) {
        Status st = st_load(st_file(c.hdr, c.data, c.len));
        CHECK(!st.ok());
        CHECK_EQ(st.code(), SDGO_ERR_FORMAT);
        if (!msg_has(st, c.msg)) testing::report_failure(__FILE__, __LINE__, "message \"" + st.message() + "\" lacks \"" + c.msg + "\"");
    }
    CHECK(!st_load(std::vector<uint8_t>(5, 0)).ok());  // shorter than the length field
    // trailing bytes after the last tensor are refused (polyglot files)
    CHECK(!st_load(st_file(good, 9)).ok());
}

TEST(safetensors_truncated_at_every_cut_fails_cleanly) {
    std::vector<uint8_t> v = read_all(M("sd1_ldm.safetensors"));
    REQUIRE(v.size() > 1000);
    int tried = 0;
    for (size_t cut = 0; cut < v.size(); cut += (cut < 2000 ? 7 : 997)) {
        Status st = st_load(std::vector<uint8_t>(v.begin(), v.begin() + (long)cut));
        CHECK(!st.ok());
        tried++;
    }
    CHECK(tried > 300);
}

TEST(safetensors_sharded_index_loads_all_shards) {
    ModelFiles mf;
    REQUIRE(load_safetensors_index(M("unet_sharded/diffusion_pytorch_model.safetensors.index.json"), &mf).ok());
    CHECK(mf.files.size() >= 2);
    ModelFiles whole;
    REQUIRE(load_safetensors(M("sd1_diffusers/unet/diffusion_pytorch_model.safetensors"), &whole).ok());
    CHECK_EQ(mf.tensors.size(), whole.tensors.size());
    size_t same = 0;
    for (const auto & t : whole.tensors) {
        const TensorEntry * s = mf.find(t.name);
        if (s && same_shape(*s, t) && same_bytes(*s, t)) same++;
    }
    CHECK_EQ(same, whole.tensors.size());
    // a shard name that escapes the folder is refused
    std::string idx = "{\"weight_map\":{\"a\":\"../x.safetensors\"}}";
    std::string p = write_tmp("evil.safetensors.index.json", idx.data(), idx.size());
    ModelFiles e;
    Status st = load_safetensors_index(p, &e);
    CHECK(!st.ok() && msg_has(st, "plain file name"));
}

// ---------------------------------------------------------------- GGUF ----

TEST(gguf_reads_sdcpp_style_file) {
    ModelFiles g, s;
    REQUIRE(load_gguf(M("sd1_sdcpp.gguf"), &g).ok());
    REQUIRE(load_safetensors(M("sd1_ldm.safetensors"), &s).ok());
    GGUFFile hdr;
    std::shared_ptr<MappedFile> f;
    REQUIRE(MappedFile::open(M("sd1_sdcpp.gguf"), &f).ok());
    REQUIRE(gguf_parse(*f, &hdr).ok());
    CHECK_EQ(hdr.kv.size(), (size_t)0);      // sd.cpp writes no metadata
    CHECK_EQ(hdr.version, 3u);
    CHECK_EQ(hdr.alignment, 32u);
    CHECK_EQ(g.tensors.size(), s.tensors.size());
    size_t q8 = 0, exact = 0, longnames = 0;
    for (const auto & t : s.tensors) {
        const TensorEntry * q = g.find(t.name);
        if (!q) { testing::report_failure(__FILE__, __LINE__, "missing " + t.name); continue; }
        if (t.name.size() >= 64) longnames++;
        CHECK(same_shape(*q, t));
        CHECK_EQ((q->file_offset - hdr.data_offset) % 32, (uint64_t)0);
        std::vector<float> ref;
        REQUIRE(tensor_to_f32(t, &ref).ok());
        if (q->type == DType::q8_0) {
            std::vector<float> d = dequant_q8_0(*q);
            REQUIRE(d.size() == ref.size());
            float amax = 0;
            for (float x : ref) amax = std::max(amax, std::fabs(x));
            for (size_t i = 0; i < d.size(); i++) CHECK_NEAR(d[i], ref[i], amax / 127.0 * 0.51 + 1e-3);
            q8++;
        } else {
            CHECK(same_values(*q, t));
            exact++;
        }
    }
    CHECK(q8 >= 2);
    CHECK(exact > 100);
    CHECK(longnames > 50);
}

TEST(gguf_reads_every_metadata_type) {
    ModelFiles g;
    REQUIRE(load_gguf(M("meta_all.gguf"), &g).ok());
    std::shared_ptr<MappedFile> f;
    REQUIRE(MappedFile::open(M("meta_all.gguf"), &f).ok());
    GGUFFile h;
    REQUIRE(gguf_parse(*f, &h).ok());
    CHECK_EQ(h.alignment, 64u);
    CHECK_EQ(h.get("t.u8")->u, 200u);
    CHECK_EQ(h.get("t.i8")->i, -100);
    CHECK_EQ(h.get("t.u16")->u, 60000u);
    CHECK_EQ(h.get("t.i16")->i, -30000);
    CHECK_EQ(h.get("t.u32")->u, 4000000000u);
    CHECK_EQ(h.get("t.i32")->i, -2000000000);
    CHECK_EQ(h.get("t.f32")->f, 1.5);
    CHECK(h.get("t.bool")->b);
    CHECK_EQ(h.get("t.str")->s, std::string("h\xc3\xa9llo w\xc3\xb6rld"));
    CHECK_EQ(h.get("t.u64")->u, 18000000000000000000ull);
    CHECK_EQ(h.get("t.i64")->i, -9000000000000000000ll);
    CHECK_EQ(h.get("t.f64")->f, 2.718281828459045);
    CHECK_EQ(h.get("t.arr_i32")->arr_n, (uint64_t)3);
    CHECK_EQ(h.get("t.arr_i32")->render(), std::string("[1, -2, 3]"));
    CHECK_EQ(h.get("t.arr_str")->arr_str.size(), (size_t)3);
    CHECK_EQ(h.get("t.arr_str")->arr_str[1], std::string("bc"));
    CHECK_EQ(h.get("t.arr_f32")->render(), std::string("[0.5, 0.25]"));
    CHECK_EQ(*g.meta("general.architecture"), std::string("sdgotest"));
    const TensorEntry * lt = nullptr;
    for (const auto & t : g.tensors)
        if (t.name.size() > 90) lt = &t;
    REQUIRE(lt);
    std::vector<float> v;
    REQUIRE(tensor_to_f32(*lt, &v).ok());
    CHECK_EQ(v.size(), (size_t)48);
    CHECK_NEAR(v[47], 47.0 / 7.0, 1e-6);
    for (const auto & t : g.tensors) CHECK_EQ((t.file_offset - h.data_offset) % 64, (uint64_t)0);
    REQUIRE(tensor_to_f32(*g.find("f16_vec"), &v).ok());
    CHECK_EQ(v[0], -2.0f); CHECK_EQ(v[4], 2.0f);
    REQUIRE(tensor_to_f32(*g.find("i32_mat"), &v).ok());
    CHECK_EQ(v[5], 5.0f);
    CHECK_EQ(g.find("i32_mat")->ne[0], 3);
    CHECK_EQ(g.find("q4_0_mat")->type_id(), 2);
    CHECK_EQ(g.find("q4_0_mat")->nbytes, (uint64_t)36);
}

TEST(gguf_writer_roundtrip_every_type) {
    GGUFWriter w;
    w.set("general.architecture", GGUFValue::of_str("sdgo"));
    w.set("general.alignment", GGUFValue::of_u32(64));
    GGUFValue v;
    int32_t ints[4] = {1, 2, -3, 4};
    w.set("a.i32s", GGUFValue::of_array(GGUF_INT32, ints, 4));
    w.set("a.strs", GGUFValue::of_strs({"x", "", "yz"}));
    w.set("a.f32", GGUFValue::of_f32(0.25f));
    w.set("a.u64", GGUFValue::of_u64(1ull << 40));
    w.set("a.b", GGUFValue::of_bool(false));
    std::vector<std::vector<uint8_t>> datas;
    std::vector<int32_t> ids;
    std::mt19937 rng(5);
    for (int32_t id = 0; id < 64; id++) {
        int64_t blk;
        size_t ts;
        if (!ggml_type_info(id, &blk, &ts, nullptr)) continue;
        int64_t ne[4] = {blk * 2, 3, 1, 1};
        uint64_t nb;
        REQUIRE(ggml_nbytes(id, ne, &nb).ok());
        std::vector<uint8_t> d(nb);
        for (auto & b : d) b = (uint8_t)rng();
        datas.push_back(std::move(d));
        ids.push_back(id);
        std::string name = std::string("t.") + ggml_type_name(id) + std::string(80, 'x');  // > 63 bytes
        REQUIRE(w.add_tensor(name, id, ne, datas.back().data(), nb).ok());
    }
    CHECK_EQ(ids.size(), (size_t)35);  // every id of ggml's table (removed ids excluded)
    std::vector<uint8_t> buf;
    REQUIRE(w.encode(&buf).ok());
    ModelFiles mf;
    REQUIRE(read_gguf(MappedFile::from_bytes(buf.data(), buf.size(), "rt.gguf"), &mf).ok());
    REQUIRE(mf.tensors.size() == ids.size());
    for (size_t i = 0; i < ids.size(); i++) {
        const TensorEntry & t = mf.tensors[i];
        CHECK_EQ(t.type_id(), ids[i]);
        CHECK_EQ(t.n_dims, 2);
        CHECK(t.nbytes == datas[i].size() && std::memcmp(t.data, datas[i].data(), t.nbytes) == 0);
    }
    GGUFFile h;
    auto mfile = MappedFile::from_bytes(buf.data(), buf.size(), "rt.gguf");
    REQUIRE(gguf_parse(*mfile, &h).ok());
    CHECK_EQ(h.alignment, 64u);
    CHECK_EQ(h.data_offset % 64, (uint64_t)0);
    uint64_t total = 0;
    for (const auto & t : h.tensors) total += (t.nbytes + 63) / 64 * 64;
    CHECK_EQ((uint64_t)buf.size(), h.data_offset + total);  // trailing pad written
    CHECK_EQ(h.get("a.i32s")->render(), std::string("[1, 2, -3, 4]"));
    CHECK_EQ(h.get("a.strs")->arr_str[2], std::string("yz"));
    CHECK_EQ(h.get("a.u64")->u, 1ull << 40);
    CHECK(!h.get("a.b")->b);
    // a file that ends right after the last tensor (sd.cpp) still loads
    uint64_t last_end = h.data_offset + h.tensors.back().offset + h.tensors.back().nbytes;
    std::vector<uint8_t> cut(buf.begin(), buf.begin() + (long)last_end);
    ModelFiles mf2;
    CHECK(read_gguf(MappedFile::from_bytes(cut.data(), cut.size(), "cut.gguf"), &mf2).ok());
    // ... but one byte less does not
    cut.pop_back();
    CHECK(!read_gguf(MappedFile::from_bytes(cut.data(), cut.size(), "cut.gguf"), &mf2).ok());
    // an empty tensor keeps its zero dimension (found by fuzzing: dropping it
    // like ggml_n_dims does would change the tensor's size)
    {
        GGUFWriter e;
        int64_t ne0[4] = {int64_t(1) << 57, 0, 1, 1};
        REQUIRE(e.add_tensor("empty", 2, ne0, nullptr, 0).ok());
        std::vector<uint8_t> eb;
        REQUIRE(e.encode(&eb).ok());
        ModelFiles em;
        REQUIRE(read_gguf(MappedFile::from_bytes(eb.data(), eb.size(), "e.gguf"), &em).ok());
        CHECK_EQ(em.tensors[0].ne[1], 0);
        CHECK_EQ(em.tensors[0].nbytes, (uint64_t)0);
    }
    // writer refuses what ggml's reader would refuse
    GGUFWriter bad;
    int64_t ne[4] = {31, 1, 1, 1};
    uint8_t d[64] = {};
    CHECK(!bad.add_tensor("q", 2, ne, d, 18).ok());                                  // row not a block multiple
    CHECK(!bad.add_tensor(std::string(160, 'n'), 0, ne, d, 124).ok());               // name too long
    CHECK(!bad.add_tensor("r", 4, ne, d, 4).ok());                                   // removed type id
    CHECK(bad.add_tensor("ok", 0, ne, d, 124).ok());
    CHECK(!bad.add_tensor("ok", 0, ne, d, 124).ok());                                // duplicate
    bad.set("general.alignment", GGUFValue::of_u32(48));
    CHECK(!bad.encode(&buf).ok());
    bad.set("general.alignment", GGUFValue::of_i32(32));
    CHECK(!bad.encode(&buf).ok());
}

namespace {
// A minimal GGUF with one f32 tensor of 4 elements, editable by tests.
struct MiniGGUF {
    uint32_t magic = kGGUFMagic, version = 3;
    int64_t n_tensors = 1, n_kv = 1;
    std::string key = "general.alignment";
    int32_t kv_type = GGUF_UINT32;
    uint32_t align = 32;
    std::string name = "w";
    uint32_t n_dims = 1;
    int64_t ne0 = 4;
    int32_t type = 0;
    uint64_t offset = 0;
    std::vector<uint8_t> bytes() const {
        std::vector<uint8_t> o;
        auto put = [&](const void * p, size_t n) { o.insert(o.end(), (const uint8_t *)p, (const uint8_t *)p + n); };
        put(&magic, 4); put(&version, 4); put(&n_tensors, 8); put(&n_kv, 8);
        uint64_t kl = key.size(); put(&kl, 8); put(key.data(), key.size());
        put(&kv_type, 4); put(&align, 4);
        uint64_t nl = name.size(); put(&nl, 8); put(name.data(), name.size());
        put(&n_dims, 4); put(&ne0, 8); put(&type, 4); put(&offset, 8);
        o.resize((o.size() + 31) / 32 * 32, 0);
        o.resize(o.size() + 32, 0x11);
        return o;
    }
};
Status gguf_load_bytes(const std::vector<uint8_t> & v) {
    ModelFiles mf;
    return read_gguf(MappedFile::from_bytes(v.data(), v.size(), "bad.gguf"), &mf);
}
}  // namespace

TEST(gguf_rejects_bad_headers) {
    MiniGGUF g;
    CHECK(gguf_load_bytes(g.bytes()).ok());
    struct Case { MiniGGUF g; const char * msg; };
    std::vector<Case> cases;
    { MiniGGUF x; x.magic = 0x46554746; cases.push_back({x, "magic"}); }
    { MiniGGUF x; x.version = 1; cases.push_back({x, "version 1"}); }
    { MiniGGUF x; x.version = 4; cases.push_back({x, "version"}); }
    { MiniGGUF x; x.version = 0x03000000; cases.push_back({x, "byte-swapped"}); }
    { MiniGGUF x; x.type = 4; cases.push_back({x, "invalid type id"}); }
    { MiniGGUF x; x.type = 99; cases.push_back({x, "invalid type id"}); }
    { MiniGGUF x; x.type = 2; cases.push_back({x, "block size"}); }
    { MiniGGUF x; x.align = 48; cases.push_back({x, "power of two"}); }
    { MiniGGUF x; x.align = 0; cases.push_back({x, "power of two"}); }
    { MiniGGUF x; x.kv_type = GGUF_INT32; cases.push_back({x, "UINT32"}); }
    { MiniGGUF x; x.key = ""; cases.push_back({x, "empty"}); }
    { MiniGGUF x; x.n_dims = 5; cases.push_back({x, "dims"}); }
    { MiniGGUF x; x.ne0 = -4; cases.push_back({x, "negative"}); }
    { MiniGGUF x; x.offset = 32; cases.push_back({x, "expected 0"}); }
    { MiniGGUF x; x.name = std::string(200, 'a'); cases.push_back({x, "too long"}); }
    { MiniGGUF x; x.n_tensors = -1; cases.push_back({x, "negative"}); }
    { MiniGGUF x; x.name = ""; cases.push_back({x, "empty name"}); }  // found by fuzzing
    { MiniGGUF x; x.n_kv = 1ll << 40; cases.push_back({x, "kv count"}); }
    { MiniGGUF x; x.n_tensors = 1ll << 40; cases.push_back({x, "tensor count"}); }
    { MiniGGUF x; x.ne0 = 1ll << 40; cases.push_back({x, "past the end"}); }
    { MiniGGUF x; x.kv_type = 77; cases.push_back({x, "unknown metadata value type"}); }
    for (const auto & c : cases) {
        Status st = gguf_load_bytes(c.g.bytes());
        CHECK(!st.ok());
        if (!msg_has(st, c.msg)) testing::report_failure(__FILE__, __LINE__, "message \"" + st.message() + "\" lacks \"" + c.msg + "\"");
    }
    // huge string length: refused before any allocation
    std::vector<uint8_t> v = g.bytes();
    uint64_t huge = 1ull << 62;
    std::memcpy(v.data() + 24, &huge, 8);
    CHECK(msg_has(gguf_load_bytes(v), "limit"));
    // duplicate key
    {
        GGUFWriter w;
        std::vector<uint8_t> b;
        w.set("k", GGUFValue::of_u32(1));
        w.set("l", GGUFValue::of_u32(1));
        REQUIRE(w.encode(&b).ok());
        // rename "l" to "k"
        for (size_t i = 0; i + 1 < b.size(); i++)
            if (b[i] == 'l' && b[i - 1] == 0) { b[i] = 'k'; break; }
        CHECK(msg_has(gguf_load_bytes(b), "duplicate"));
    }
}

TEST(gguf_truncated_at_every_cut_fails_cleanly) {
    std::vector<uint8_t> v = read_all(M("meta_all.gguf"));
    REQUIRE(v.size() > 300);
    std::shared_ptr<MappedFile> f = MappedFile::from_bytes(v.data(), v.size(), "m.gguf");
    GGUFFile h;
    REQUIRE(gguf_parse(*f, &h).ok());
    uint64_t need = h.data_offset + h.tensors.back().offset + h.tensors.back().nbytes;
    for (size_t cut = 0; cut < v.size(); cut++) {
        Status st = gguf_load_bytes(std::vector<uint8_t>(v.begin(), v.begin() + (long)cut));
        CHECK(st.ok() == (cut >= need));
    }
}

// ------------------------------------------------------------- PyTorch ----

TEST(torch_zip_and_legacy_match_safetensors) {
    ModelFiles s, z, l;
    REQUIRE(load_safetensors(M("sd1_ldm.safetensors"), &s).ok());
    Status st = load_torch(M("sd1_ldm.ckpt"), &z);
    REQUIRE(st.ok());
    st = load_torch(M("sd1_ldm_legacy.ckpt"), &l);
    REQUIRE(st.ok());
    CHECK_EQ(z.files[0].format, std::string("torch-zip"));
    CHECK_EQ(l.files[0].format, std::string("torch-legacy"));
    CHECK_EQ(z.tensors.size(), s.tensors.size());
    CHECK_EQ(l.tensors.size(), s.tensors.size());
    size_t ok_z = 0, ok_l = 0;
    for (const auto & t : s.tensors) {
        const TensorEntry * a = z.find(t.name);
        const TensorEntry * b = l.find(t.name);
        if (a && a->type == t.type && same_shape(*a, t) && same_bytes(*a, t)) ok_z++;
        if (b && b->type == t.type && same_shape(*b, t) && same_bytes(*b, t)) ok_l++;
    }
    CHECK_EQ(ok_z, s.tensors.size());
    CHECK_EQ(ok_l, s.tensors.size());
    CHECK(z.meta("global_step") && *z.meta("global_step") == "470000");
    CHECK(l.meta("epoch") && *l.meta("epoch") == "3");
    check_manifest("vae_ldm.pt", [] { ModelFiles m; load_torch(M("vae_ldm.pt"), &m); return m; }());
    // zip entries are mapped in place
    const TensorEntry * t = z.find("model.diffusion_model.out.2.weight");
    REQUIRE(t);
    CHECK(t->file_index == 0 && t->data >= z.files[0].map->data());
}

TEST(torch_zip_with_deflated_entries_loads) {
    ModelFiles a, b;
    REQUIRE(load_torch(M("vae_ldm.pt"), &a).ok());
    Status st = load_torch(M("vae_ldm_deflate.pt"), &b);
    REQUIRE(st.ok());
    CHECK_EQ(a.tensors.size(), b.tensors.size());
    size_t same = 0;
    for (const auto & t : a.tensors) {
        const TensorEntry * u = b.find(t.name);
        if (u && same_shape(*u, t) && same_bytes(*u, t)) same++;
    }
    CHECK_EQ(same, a.tensors.size());
    CHECK_EQ(b.tensors[0].file_index, -1);  // inflated into an owned buffer
    // a deflated entry that claims far more than deflate can produce is refused
    std::vector<uint8_t> v = read_all(M("vae_ldm_deflate.pt"));
    size_t eocd = v.size() - 22;
    while (eocd > 0 && !(v[eocd] == 'P' && v[eocd + 1] == 'K' && v[eocd + 2] == 5 && v[eocd + 3] == 6)) eocd--;
    uint32_t cd_off;
    std::memcpy(&cd_off, v.data() + eocd + 16, 4);
    uint32_t huge = 0xFFFFFFF0u;
    std::memcpy(v.data() + cd_off + 24, &huge, 4);
    ModelFiles c;
    st = read_torch(MappedFile::from_bytes(v.data(), v.size(), "bomb.pt"), &c);
    CHECK(!st.ok());
}

TEST(torch_strided_views_are_gathered) {
    ModelFiles m;
    REQUIRE(load_torch(M("views.pt"), &m).ok());
    check_manifest("views.pt", m);
    const TensorEntry * t = m.find("transposed");
    REQUIRE(t);
    CHECK_EQ(t->file_index, -1);          // gathered copy
    CHECK_EQ(m.find("base")->file_index, 0);  // contiguous: in place
    std::vector<float> v;
    REQUIRE(tensor_to_f32(*t, &v).ok());
    CHECK_EQ(v[1], 4.0f);                 // base.t()[0][1] == base[1][0]
    Status st = load_torch(M("broadcast_view.pt"), &m);
    CHECK(!st.ok() && msg_has(st, "broadcast"));
}

TEST(pickle_refuses_forbidden_globals) {
    ModelFiles mf;
    Status st = load_torch(M("evil_os_system.ckpt"), &mf);
    CHECK(!st.ok());
    CHECK(msg_has(st, "forbidden global") && msg_has(st, "system"));
    st = load_torch(M("evil_eval.pt"), &mf);
    CHECK(!st.ok());
    CHECK(msg_has(st, "forbidden global") && msg_has(st, "eval"));
    struct Case { std::string pkl; const char * msg; };
#define PK(lit) std::string(lit, sizeof(lit) - 1)
    std::vector<Case> cases = {
        {PK("\x80\x02" "cos\nsystem\n(X\x02\x00\x00\x00lsX\x00\x00\x00\x00tR."), "forbidden global os.system"},
        {PK("\x80\x04\x8c\x08" "builtins\x8c\x04" "eval\x93\x8c\x03" "1+1\x85R."), "forbidden global builtins.eval"},
        {PK("csubprocess\nPopen\n."), "forbidden global subprocess.Popen"},
        {PK("c__builtin__\ngetattr\n."), "forbidden global __builtin__.getattr"},
        {PK("cwebbrowser\nopen\n."), "forbidden global webbrowser.open"},
        {PK("ctorch._utils\n_rebuild_tensor_v2\n(tb."), "not a dict or tensor"},
        {PK("ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00" "aK\x01u."), ""},  // fine
        {PK("(i__main__\nX\n."), "not allowed"},
        {PK("h\x05."), "memo"},
        {PK("0."), "empty stack"},
        {PK("K\x01K\x02K\x03s."), "non-dict"},
        {PK("\x80\x02}q\x00(X\x01\x00\x00\x00"), "truncated"},
        {PK("ctorch\nFloatStorage\nX\x01\x00\x00\x00" "0\x86Q."), "persistent id"},
        {PK("(X\x07\x00\x00\x00storagecos\nsystem\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x04tQ."), "forbidden global os.system"},
        {PK("(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x04tQ."), ""},
        {PK("\xff"), "unsupported opcode"},
        {PK("\x8b\xff\xff\xff\x7f"), "truncated"},
        {PK("r\xff\xff\xff\xff."), "empty stack"},
    };
#undef PK
    for (const auto & c : cases) {
        Unpickler up(false);
        uint32_t root;
        size_t end;
        Status s = up.run(reinterpret_cast<const uint8_t *>(c.pkl.data()), c.pkl.size(), 0, &root, &end);
        if (c.msg[0] == 0) {
            if (!s.ok()) testing::report_failure(__FILE__, __LINE__, "unexpected error: " + s.message());
            continue;
        }
        CHECK(!s.ok());
        if (!msg_has(s, c.msg)) testing::report_failure(__FILE__, __LINE__, "message \"" + s.message() + "\" lacks \"" + c.msg + "\"");
    }
}

// A memoised list of 20000 pairs turned into an OrderedDict again and again
// (each REDUCE copies the list) would build 400 million items from a few
// hundred kilobytes; the unpickler stops it at 16 items per byte.
TEST(pickle_amplification_is_bounded) {
    std::string p = "\x80\x02]\x94(";
    const int n = 20000, reps = 10000;
    for (int i = 0; i < n; i++) p += "K\x01K\x02\x86";  // (1, 2)
    p += "e";
    const std::string rebuild("ccollections\nOrderedDict\nh\x00\x85R0", 30), get_list("h\x00.", 3);
    for (int i = 0; i < reps; i++) p += rebuild;
    p += get_list;
    Unpickler up(false);
    uint32_t root;
    size_t end;
    Status s = up.run(reinterpret_cast<const uint8_t *>(p.data()), p.size(), 0, &root, &end);
    std::printf("    %zu bytes: %s\n", p.size(), s.message().c_str());
    CHECK_EQ(s.code(), SDGO_ERR_FORMAT);
    CHECK(msg_has(s, "amplification"));
    CHECK(up.nodes.size() < p.size() * 16);
    // the same list made into a dict a few times is fine
    std::string q = "\x80\x02]\x94(";
    for (int i = 0; i < n; i++) q += "K\x01K\x02\x86";
    q += "e";
    for (int i = 0; i < 3; i++) q += rebuild;
    q += get_list;
    Unpickler ok(false);
    CHECK(ok.run(reinterpret_cast<const uint8_t *>(q.data()), q.size(), 0, &root, &end).ok());
    // a million MARKs cost one mark each (8 bytes per byte), no nodes
    std::string marks(size_t(1) << 20, '(');
    marks += "N.";
    Unpickler m(false);
    Status ms = m.run(reinterpret_cast<const uint8_t *>(marks.data()), marks.size(), 0, &root, &end);
    CHECK(ms.ok());
    CHECK(m.nodes.size() < 4);
}

// Four 64 MiB storages of zeros deflated into a 256 KB checkpoint: each
// entry is within deflate's ratio, but together they would take 1000 times
// the file; refused by the archive's total. An ordinary deflated checkpoint
// still loads. And 1000 strided views of one storage, each gathered into a
// copy: refused by the total copied (testdata/gen/gen_amplified_checkpoints.py).
TEST(torch_amplification_is_bounded_in_total) {
    ModelFiles mf;
    Status st = load_torch(M("deflate_bomb.pt"), &mf);
    std::printf("    %s\n", st.message().c_str());
    CHECK_EQ(st.code(), SDGO_ERR_FORMAT);
    CHECK(msg_has(st, "amplification"));
    ModelFiles ok;
    CHECK(load_torch(M("vae_ldm_deflate.pt"), &ok).ok());
    // 1000 transposed views of one 256 KiB storage: each would be gathered
    ModelFiles views;
    st = load_torch(M("view_bomb.pt"), &views);
    std::printf("    %s\n", st.message().c_str());
    CHECK_EQ(st.code(), SDGO_ERR_FORMAT);
    CHECK(msg_has(st, "amplification"));
}

TEST(torch_zip_rejects_broken_archives) {
    std::vector<uint8_t> v = read_all(M("sd1_ldm.ckpt"));
    REQUIRE(v.size() > 1000);
    auto load = [](const std::vector<uint8_t> & b) {
        ModelFiles mf;
        return read_torch(MappedFile::from_bytes(b.data(), b.size(), "bad.ckpt"), &mf);
    };
    CHECK(load(v).ok());
    // find the EOCD and the central directory
    size_t eocd = v.size() - 22;
    while (eocd > 0 && !(v[eocd] == 'P' && v[eocd + 1] == 'K' && v[eocd + 2] == 5 && v[eocd + 3] == 6)) eocd--;
    REQUIRE(eocd > 0);
    uint32_t cd_off;
    std::memcpy(&cd_off, v.data() + eocd + 16, 4);
    {
        std::vector<uint8_t> b = v;
        b[cd_off] = 'X';  // broken central-directory signature
        Status st = load(b);
        CHECK(!st.ok() && msg_has(st, "central directory"));
    }
    {
        std::vector<uint8_t> b = v;
        uint32_t off = (uint32_t)v.size() + 100;  // central directory offset past the end
        std::memcpy(b.data() + eocd + 16, &off, 4);
        CHECK(!load(b).ok());
    }
    {
        std::vector<uint8_t> b = v;
        uint16_t n = 0xFFFE;  // more entries than fit
        std::memcpy(b.data() + eocd + 10, &n, 2);
        CHECK(!load(b).ok());
    }
    {
        std::vector<uint8_t> b = v;
        uint32_t lo;
        std::memcpy(&lo, b.data() + cd_off + 42, 4);
        uint32_t bad = lo + 3;  // local header offset points at garbage
        std::memcpy(b.data() + cd_off + 42, &bad, 4);
        CHECK(!load(b).ok());
    }
    {
        std::vector<uint8_t> b = v;
        uint16_t m = 8;  // deflate method on the first entry
        std::memcpy(b.data() + cd_off + 10, &m, 2);
        Status st = load(b);
        CHECK(!st.ok() && (st.code() == SDGO_ERR_UNSUPPORTED || st.code() == SDGO_ERR_FORMAT));
    }
    int tried = 0;
    for (size_t cut = 0; cut < v.size(); cut += (cut + 2000 > v.size() ? 13 : 1499)) {
        CHECK(!load(std::vector<uint8_t>(v.begin(), v.begin() + (long)cut)).ok());
        tried++;
    }
    CHECK(tried > 100);
    std::vector<uint8_t> lv = read_all(M("sd1_ldm_legacy.ckpt"));
    REQUIRE(lv.size() > 1000);
    tried = 0;
    for (size_t cut = 0; cut < lv.size(); cut += (cut < 3000 ? 11 : 1201)) {
        CHECK(!load(std::vector<uint8_t>(lv.begin(), lv.begin() + (long)cut)).ok());
        tried++;
    }
    CHECK(tried > 200);
}

// ------------------------------------------------------ naming/detection ----

TEST(detects_families_and_variants) {
    struct Case { const char * path; const char * family; const char * variant; const char * pred; size_t comps; };
    const Case cases[] = {
        {"sd1_ldm.safetensors", "sd1", "base", "epsilon", 3},
        {"sd1_ldm.ckpt", "sd1", "base", "epsilon", 3},
        {"sd1_ldm_legacy.ckpt", "sd1", "base", "epsilon", 3},
        {"sd1_sdcpp.gguf", "sd1", "base", "epsilon", 3},
        {"sd1_diffusers", "sd1", "base", "epsilon", 3},
        {"sd1_inpaint.safetensors", "sd1", "inpaint", "epsilon", 3},
        {"sd2_ldm.safetensors", "sd2", "base", "unknown", 3},
        {"sdxl_ldm.safetensors", "sdxl", "base", "epsilon", 4},
        {"sdxl_diffusers", "sdxl", "base", "epsilon", 4},
        {"sdxl_refiner_ldm.safetensors", "sdxl-refiner", "base", "epsilon", 3},
        {"unet_sharded", "sd1", "base", "epsilon", 1},
        {"vae_diffusers.safetensors", "vae", "base", "unknown", 1},
        {"vae_ldm.pt", "vae", "base", "unknown", 1},
        {"sd2_te_hf.safetensors", "text-encoder", "base", "unknown", 1},
    };
    for (const auto & c : cases) {
        LoadedModel m;
        ModelInfo info;
        Status st = load_model(M(c.path), &m);
        if (st.ok()) st = detect(m, &info);
        if (!st.ok()) {
            testing::report_failure(__FILE__, __LINE__, std::string(c.path) + ": " + st.message());
            continue;
        }
        if (info.family != c.family || info.variant != c.variant || info.prediction != c.pred || info.components.size() != c.comps)
            testing::report_failure(__FILE__, __LINE__, std::string(c.path) + ": got " + info.family + "/" + info.variant + "/" +
                                                            info.prediction + "/" + std::to_string(info.components.size()));
    }
}

TEST(hyperparameters_from_shapes_and_config) {
    LoadedModel m;
    ModelInfo i;
    REQUIRE(load_model(M("sd1_ldm.safetensors"), &m).ok());
    REQUIRE(detect(m, &i).ok());
    const UNetConfig & u = i.unet.cfg;
    CHECK(i.unet.present && !i.unet.from_config);
    CHECK_EQ(u.in_channels, 4); CHECK_EQ(u.out_channels, 4); CHECK_EQ(u.model_channels, 4);
    CHECK(u.channel_mult == std::vector<int>({1, 2}));
    CHECK_EQ(u.num_res_blocks, 2);
    CHECK(u.attention == std::vector<bool>({true, false}) && u.transformer_depth[0] == 1);
    CHECK(u.mid_attention); CHECK_EQ(u.mid_depth, 1);
    CHECK_EQ(u.context_dim, 16);
    CHECK(!u.linear_projection);
    CHECK_EQ(u.adm_in_channels, 0);
    CHECK(u.num_heads == std::vector<int>({8, 8}));  // SD1 family default
    CHECK_EQ(u.head_dim, 0);
    const VaeConfig & v = i.vae.cfg;
    CHECK_EQ(v.ch, 4); CHECK(v.ch_mult == std::vector<int>({1, 2})); CHECK_EQ(v.z_channels, 4);
    CHECK_EQ(v.num_res_blocks, 1); CHECK_EQ(v.in_channels, 3);
    CHECK_NEAR(v.scaling_factor, 0.18215, 1e-7);
    const ClipConfig & t = i.text_encoder.cfg;
    CHECK_EQ(t.hidden, 16); CHECK_EQ(t.layers, 2);
    CHECK_EQ(t.intermediate, 32); CHECK_EQ(t.vocab, 64);
    CHECK_EQ(t.max_positions, 8); CHECK(t.act == ClipAct::quick_gelu);
    CHECK(!i.text_encoder_2.present);
    CHECK(i.stats["unet"].params > 1000);
    CHECK_EQ(i.types["f16"].tensors, (uint64_t)m.files.tensors.size());
    CHECK(i.file_bytes > 100000);

    LoadedModel d;
    ModelInfo di;
    REQUIRE(load_model(M("sd1_diffusers"), &d).ok());
    REQUIRE(detect(d, &di).ok());
    CHECK(di.unet.from_config && di.vae.from_config && di.text_encoder.from_config);
    CHECK(di.unet.cfg.num_heads == std::vector<int>({2, 2}));      // attention_head_dim from config.json
    CHECK_EQ(di.unet.cfg.num_res_blocks, 2);
    CHECK_EQ(di.text_encoder.cfg.heads, 2);
    CHECK(!d.tokenizer.vocab_json.empty() && !d.tokenizer.merges_txt.empty() && !d.tokenizer.tokenizer_json.empty());
    CHECK(d.scheduler_config.kind == Json::object);

    LoadedModel x;
    ModelInfo xi;
    REQUIRE(load_model(M("sdxl_ldm.safetensors"), &x).ok());
    REQUIRE(detect(x, &xi).ok());
    CHECK_EQ(xi.unet.cfg.adm_in_channels, 40);
    CHECK(xi.unet.cfg.attention == std::vector<bool>({false, true, true}));
    CHECK_EQ(xi.unet.cfg.transformer_depth[1], 1); CHECK_EQ(xi.unet.cfg.transformer_depth[2], 2);
    CHECK_EQ(xi.unet.cfg.mid_depth, 2);
    CHECK_EQ(xi.unet.cfg.context_dim, 40);
    CHECK(xi.unet.cfg.linear_projection);
    CHECK_EQ(xi.unet.cfg.head_dim, 64);
    CHECK_EQ(xi.text_encoder_2.cfg.hidden, 24);
    CHECK_EQ(xi.text_encoder_2.cfg.projection_dim, 24);
    CHECK(xi.text_encoder_2.cfg.act == ClipAct::gelu);
    CHECK_NEAR(xi.vae.cfg.scaling_factor, 0.13025, 1e-7);
    LoadedModel r;
    ModelInfo ri;
    REQUIRE(load_model(M("sdxl_refiner_ldm.safetensors"), &r).ok());
    REQUIRE(detect(r, &ri).ok());
    CHECK(!ri.text_encoder.present && ri.text_encoder_2.present);   // bigG is encoder 2, as in diffusers
    CHECK(ri.unet.cfg.attention == std::vector<bool>({false, true, false}));
    LoadedModel ip;
    ModelInfo ii;
    REQUIRE(load_model(M("sd1_inpaint.safetensors"), &ip).ok());
    REQUIRE(detect(ip, &ii).ok());
    CHECK_EQ(ii.unet.cfg.in_channels, 9);
    std::string js = model_info_json(m, i);
    Json parsed;
    CHECK(json_parse(js.data(), js.size(), &parsed).ok());
    CHECK_EQ(parsed.str_or("family", ""), std::string("sd1"));
}

TEST(canonical_names_agree_across_layouts) {
    // LDM single file, diffusers folder, torch checkpoint and sd.cpp GGUF of the
    // same weights must give the same canonical names with identical values.
    LoadedModel ldm, dif, ck, gg;
    REQUIRE(load_model(M("sd1_ldm.safetensors"), &ldm).ok());
    REQUIRE(load_model(M("sd1_diffusers"), &dif).ok());
    REQUIRE(load_model(M("sd1_ldm.ckpt"), &ck).ok());
    REQUIRE(load_model(M("sd1_sdcpp.gguf"), &gg).ok());
    size_t matched = 0;
    for (const auto & t : dif.files.tensors) {
        const TensorEntry * r = ldm.files.find(t.name);
        if (!r) {
            testing::report_failure(__FILE__, __LINE__, "diffusers tensor without LDM counterpart: " + t.name);
            continue;
        }
        CHECK(same_shape(*r, t));
        if (!same_values(*r, t)) testing::report_failure(__FILE__, __LINE__, "values differ: " + t.name);
        else matched++;
    }
    CHECK_EQ(matched, dif.files.tensors.size());
    CHECK_EQ(dif.files.tensors.size() + 1, ldm.files.tensors.size());  // + alphas_cumprod
    for (const auto & t : ldm.files.tensors) {
        CHECK(ck.files.find(t.name) != nullptr);
        CHECK(gg.files.find(t.name) != nullptr);
    }
    // spot checks of the canonical scheme
    CHECK(ldm.files.find("model.diffusion_model.output_blocks.2.1.conv.weight"));       // upsampler without attention
    CHECK(ldm.files.find("model.diffusion_model.output_blocks.5.2.conv.weight") == nullptr);
    CHECK(dif.files.find("first_stage_model.decoder.up.1.upsample.conv.weight"));       // reversed decoder order
    CHECK(dif.files.find("first_stage_model.encoder.mid.attn_1.q.weight")->n_dims == 2);
    CHECK(ldm.files.find("first_stage_model.encoder.mid.attn_1.q.weight")->n_dims == 2);
    CHECK(dif.files.find("cond_stage_model.transformer.text_model.encoder.layers.1.self_attn.q_proj.weight"));
    // fp16 variant of the text encoder
    LoadedModel v16;
    LoadOptions opt;
    opt.variant = "fp16";
    REQUIRE(load_model(M("sd1_diffusers"), &v16, opt).ok());
    CHECK(v16.files.find("cond_stage_model.transformer.text_model.final_layer_norm.weight")->type == DType::f16);
    CHECK(dif.files.find("cond_stage_model.transformer.text_model.final_layer_norm.weight")->type == DType::f32);
    CHECK(v16.component("text_encoder")->weight_files[0].find("model.fp16.safetensors") != std::string::npos);
}

TEST(openclip_split_and_sdxl_match_diffusers) {
    // SD2: OpenCLIP fused in_proj split into q/k/v views == diffusers' conversion
    LoadedModel ldm, hf;
    REQUIRE(load_model(M("sd2_ldm.safetensors"), &ldm).ok());
    REQUIRE(load_model(M("sd2_te_hf.safetensors"), &hf).ok());
    size_t n = 0;
    for (const auto & t : hf.files.tensors) {
        const TensorEntry * r = ldm.files.find(t.name);
        if (!r) { testing::report_failure(__FILE__, __LINE__, "no OpenCLIP counterpart: " + t.name); continue; }
        CHECK(same_shape(*r, t));
        if (same_values(*r, t)) n++;
        else testing::report_failure(__FILE__, __LINE__, "values differ: " + t.name);
    }
    CHECK_EQ(n, hf.files.tensors.size());
    CHECK(n > 30);
    // SDXL: diffusers folder UNet + VAE equal to the single file
    LoadedModel xl, xd;
    REQUIRE(load_model(M("sdxl_ldm.safetensors"), &xl).ok());
    REQUIRE(load_model(M("sdxl_diffusers"), &xd).ok());
    size_t unet = 0;
    for (const auto & t : xd.files.tensors) {
        Component c = component_of(t.name);
        if (c != Component::unet && c != Component::vae) continue;
        const TensorEntry * r = xl.files.find(t.name);
        if (!r) { testing::report_failure(__FILE__, __LINE__, "no LDM counterpart: " + t.name); continue; }
        if (same_values(*r, t) && same_shape(*r, t)) unet++;
        else testing::report_failure(__FILE__, __LINE__, "differs: " + t.name);
    }
    CHECK(unet > 400);
    // text projection: HF Linear layout [proj, d] for both sources
    const TensorEntry * p1 = xl.files.find("cond_stage_model.1.transformer.text_projection.weight");
    const TensorEntry * p2 = xd.files.find("cond_stage_model.1.transformer.text_projection.weight");
    CHECK(p1 && p2);
    // the transposed OpenCLIP matrix: element [p][i] of ours == [i][p] of the file
    ModelFiles raw;
    REQUIRE(load_safetensors(M("sdxl_ldm.safetensors"), &raw).ok());
    const TensorEntry * op = raw.find("conditioner.embedders.1.model.text_projection");
    REQUIRE(op && p1);
    std::vector<float> a, b;
    REQUIRE(tensor_to_f32(*op, &a).ok());
    REQUIRE(tensor_to_f32(*p1, &b).ok());
    int64_t d = op->ne[1], pd = op->ne[0];
    for (int64_t i = 0; i < d; i++)
        for (int64_t p = 0; p < pd; p++) CHECK_EQ(b[(size_t)(p * d + i)], a[(size_t)(i * pd + p)]);
}

TEST(sdcpp_fused_qkv_names_are_split) {
    // stable-diffusion.cpp's --convert-name GGUFs keep OpenCLIP's fused
    // in_proj as ...self_attn.in_proj.{weight,bias}; they must canonicalize to
    // the same split q/k/v as the OpenCLIP single file.
    ModelFiles raw;
    REQUIRE(load_safetensors(M("sdxl_ldm.safetensors"), &raw).ok());
    GGUFWriter w;
    const std::string oc = "conditioner.embedders.1.model.transformer.resblocks.";
    int n = 0;
    for (const auto & t : raw.tensors) {
        if (t.name.compare(0, oc.size(), oc) != 0) continue;
        size_t dot = t.name.find('.', oc.size());
        std::string layer = t.name.substr(oc.size(), dot - oc.size());
        std::string tail = t.name.substr(dot + 1);
        std::string base = "cond_stage_model.1.transformer.text_model.encoder.layers." + layer + ".self_attn.in_proj.";
        if (tail == "attn.in_proj_weight") REQUIRE(w.add_tensor(base + "weight", t.type_id(), t.ne, t.data, t.nbytes).ok());
        else if (tail == "attn.in_proj_bias") REQUIRE(w.add_tensor(base + "bias", t.type_id(), t.ne, t.data, t.nbytes).ok());
        else continue;
        n++;
    }
    REQUIRE(n == 4);
    std::vector<uint8_t> buf;
    REQUIRE(w.encode(&buf).ok());
    LoadedModel g, ref;
    REQUIRE(load_bytes(buf, "fused.gguf", &g).ok());
    REQUIRE(load_model(M("sdxl_ldm.safetensors"), &ref).ok());
    CHECK_EQ(g.files.tensors.size(), (size_t)12);
    for (const auto & t : g.files.tensors) {
        const TensorEntry * r = ref.files.find(t.name);
        if (!r) { testing::report_failure(__FILE__, __LINE__, "no counterpart: " + t.name); continue; }
        CHECK(same_shape(*r, t) && same_bytes(*r, t));
    }
    CHECK(g.files.find("cond_stage_model.1.transformer.text_model.encoder.layers.1.self_attn.v_proj.bias") != nullptr);
}

TEST(c_abi_files_info) {
    const char * paths[] = {nullptr, nullptr};
    std::string p0 = M("sd1_ldm.safetensors"), p1 = M("evil_os_system.ckpt");
    paths[0] = p0.c_str();
    char err[512];
    size_t need = 0;
    int32_t rc = sdgo_files_info(paths, 1, nullptr, 0, &need, err, sizeof err);
    CHECK_EQ(rc, (int32_t)SDGO_ERR_BUFFER_TOO_SMALL);
    CHECK(need > 100);
    std::vector<char> buf(need);
    rc = sdgo_files_info(paths, 1, buf.data(), buf.size(), &need, err, sizeof err);
    REQUIRE(rc == SDGO_OK);
    Json j;
    REQUIRE(json_parse(buf.data(), std::strlen(buf.data()), &j).ok());
    CHECK_EQ(j.str_or("family", ""), std::string("sd1"));
    CHECK_EQ(j.get("components")->items.size(), (size_t)3);
    CHECK_EQ(j.get("metadata")->str_or("modelspec.title", ""), std::string("tiny sd1"));
    paths[0] = p1.c_str();
    rc = sdgo_files_info(paths, 1, buf.data(), buf.size(), &need, err, sizeof err);
    CHECK_EQ(rc, (int32_t)SDGO_ERR_FORMAT);
    CHECK(std::strstr(err, "forbidden global posix.system") != nullptr);
    CHECK_EQ(sdgo_files_info(paths, 0, buf.data(), buf.size(), &need, err, sizeof err), (int32_t)SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sdgo_files_info(nullptr, 1, buf.data(), buf.size(), &need, err, sizeof err), (int32_t)SDGO_ERR_INVALID_ARGUMENT);
}

TEST(directory_without_model_and_unknown_files_fail) {
    std::string d = tmpdir() + "/empty_dir";
    mkdir(d.c_str(), 0755);
    LoadedModel m;
    Status st = load_model(d, &m);
    CHECK(!st.ok());
    CHECK(msg_has(st, "no model found"));
    std::string p = write_tmp("junk.bin", "hello world, not a model", 24);
    st = load_model(p, &m);
    CHECK(!st.ok());
    st = load_model(tmpdir() + "/does_not_exist.safetensors", &m);
    CHECK(!st.ok());
    CHECK_EQ(st.code(), SDGO_ERR_IO);
    // a valid safetensors with no SD tensors loads but detection reports it
    float x = 1;
    std::vector<SafetensorsTensor> ts = {{"foo", "F32", {1}, &x, 4}};
    std::vector<uint8_t> buf;
    REQUIRE(encode_safetensors(ts, {}, &buf).ok());
    REQUIRE(load_bytes(buf, "foo.safetensors", &m).ok());
    ModelInfo info;
    st = detect(m, &info);
    CHECK(!st.ok() && msg_has(st, "no Stable Diffusion component"));
    // a model_index.json that lists a missing component
    std::string d2 = tmpdir() + "/broken_pipe";
    mkdir(d2.c_str(), 0755);
    std::string mi = "{\"_class_name\":\"StableDiffusionPipeline\",\"unet\":[\"diffusers\",\"UNet2DConditionModel\"]}";
    write_tmp("broken_pipe/model_index.json", mi.data(), mi.size());
    st = load_model(d2, &m);
    CHECK(!st.ok() && msg_has(st, "unet"));
}
