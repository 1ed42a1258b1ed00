// test_models.cpp — the CLIP text encoder, U-Net and VAE graphs against
// references computed with transformers/diffusers (testdata/gen/gen_model_ref.py)
// on tiny random-weight models of the real architectures.
//
// Tolerance: |ours - ref| <= 1e-4 * max|ref| + 1e-4 * |ref| per element, in
// f32 (weights converted to f32; they were rounded to f16 values by the
// generator, so both sides use identical weights). The f16-weight runs (the
// weights as stored, f16 GEMM/conv paths) use 5e-3 of max|ref|.
// Every graph also runs with 1 and 2 threads, which must give identical bits.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "core/graph.h"
#include "backends/cpu/cpu_features.h"
#include "formats/json.h"
#include "formats/safetensors.h"
#include "model/detect.h"
#include "model/load.h"
#include "model/naming.h"
#include "model/clip.h"
#include "model/unet.h"
#include "model/vae.h"
#include "model/weights.h"
#include "tests/testing.h"

using namespace sdgo;
using namespace sdgo::model;

namespace {

// Weights for tests that build graphs one at a time: each (name, use) is
// prepared on first use into a store of its own on the CPU device (a loaded
// model instead records all of them at load, then finishes one store).
class TestWeights final : public Weights {
public:
    explicit TestWeights(const formats::ModelFiles * f, WeightOptions o = {}) : f_(f), o_(o) {}
    const formats::ModelFiles & files() const override { return *f_; }
    Status bind(Graph & g, const formats::TensorEntry & e, WeightUse use, int n, const int64_t * ne, int64_t row_len,
                int64_t skip_rows, Tensor ** out) const override {
        const std::string k = std::string(weight_use_name(use)) + ":" + e.name;
        auto it = stores_.find(k);
        if (it == stores_.end()) {
            auto s = std::make_unique<WeightStore>(f_, cpu::device(), o_);
            DType t;
            SDGO_TRY(s->prepare(e, use, &t));
            SDGO_TRY(s->finish());
            it = stores_.emplace(k, std::move(s)).first;
        }
        return it->second->bind(g, e, use, n, ne, row_len, skip_rows, out);
    }
    size_t converted_bytes() const {
        size_t n = 0;
        for (const auto & kv : stores_) n += kv.second->converted_bytes();
        return n;
    }

private:
    const formats::ModelFiles * f_;
    WeightOptions o_;
    mutable std::map<std::string, std::unique_ptr<WeightStore>> stores_;
};


struct Loaded {
    formats::ModelFiles files;
    Status st;
};

const formats::ModelFiles & load(const std::string & rel) {
    static std::vector<std::pair<std::string, std::unique_ptr<Loaded>>> cache;
    for (auto & c : cache)
        if (c.first == rel) return c.second->files;
    auto l = std::make_unique<Loaded>();
    l->st = formats::load_safetensors(testing::source_path(rel), &l->files);
    if (!l->st.ok()) std::fprintf(stderr, "load %s: %s\n", rel.c_str(), l->st.message().c_str());
    cache.emplace_back(rel, std::move(l));
    return cache.back().second->files;
}

std::vector<float> ref_f32(const formats::ModelFiles & f, const std::string & name, std::vector<int64_t> * ne = nullptr) {
    std::vector<float> v;
    const formats::TensorEntry * e = f.find(name);
    if (!e) {
        std::fprintf(stderr, "missing reference tensor %s\n", name.c_str());
        return v;
    }
    if (ne) ne->assign(e->ne, e->ne + 4);
    Status st = formats::tensor_to_f32(*e, &v);
    if (!st.ok()) std::fprintf(stderr, "%s\n", st.message().c_str());
    return v;
}

std::vector<int32_t> ref_i32(const formats::ModelFiles & f, const std::string & name) {
    std::vector<int32_t> v;
    const formats::TensorEntry * e = f.find(name);
    if (!e || e->type != DType::i32) return v;
    v.resize(e->nelements());
    std::memcpy(v.data(), e->data, v.size() * 4);
    return v;
}

bool read_json(const std::string & rel, formats::Json * j) {
    std::ifstream in(testing::source_path(rel), std::ios::binary);
    if (!in) return false;
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string s = ss.str();
    return formats::json_parse(s.data(), s.size(), j).ok();
}

struct Input {
    Tensor * t;
    const void * data;
    size_t bytes;
};

struct RunResult {
    Status st;
    std::vector<std::vector<float>> outs;
    size_t arena = 0;
    size_t nodes = 0;
};

// Builds with `build` (which creates the inputs and returns the outputs),
// allocates on a CpuBackend with n threads, sets inputs, computes, reads the outputs.
using BuildFn = std::function<Status(Graph &, std::vector<Input> *, std::vector<Tensor *> *)>;

RunResult run(const BuildFn & build, int threads) {
    RunResult r;
    Graph g;
    std::vector<Input> inputs;
    std::vector<Tensor *> outs;
    r.st = build(g, &inputs, &outs);
    if (!r.st.ok()) return r;
    for (Tensor * o : outs) g.set_output(o);
    CpuBackend be(threads, cpu::best_code_path());
    r.st = be.alloc_graph(g);
    if (!r.st.ok()) return r;
    r.arena = g.arena_bytes();
    r.nodes = g.order().size();
    for (const Input & in : inputs) {
        r.st = be.set_tensor(in.t, in.data, 0, in.bytes);
        if (!r.st.ok()) return r;
    }
    r.st = be.compute(g);
    if (!r.st.ok()) return r;
    for (Tensor * o : outs) {
        std::vector<float> v(o->nelements());
        r.st = be.get_tensor(o, v.data(), 0, v.size() * sizeof(float));
        if (!r.st.ok()) return r;
        r.outs.push_back(std::move(v));
    }
    return r;
}

// Max error relative to max|ref|; also checks the per-element bound.
double compare(const std::vector<float> & got, const std::vector<float> & want, double tol, const char * what) {
    if (got.size() != want.size() || want.empty()) {
        testing::report_failure(__FILE__, __LINE__,
                                std::string(what) + ": size " + std::to_string(got.size()) + " vs " + std::to_string(want.size()));
        return 1e30;
    }
    double maxref = 0, maxerr = 0;
    for (float w : want) maxref = std::max(maxref, (double)std::fabs(w));
    size_t bad = 0, first_bad = 0;
    for (size_t i = 0; i < got.size(); i++) {
        const double e = std::fabs((double)got[i] - want[i]);
        if (!(e <= tol * maxref + tol * std::fabs(want[i]))) {
            if (!bad) first_bad = i;
            bad++;
        }
        if (!(e <= maxerr)) maxerr = e;  // NaN propagates
    }
    const double rel = maxerr / (maxref > 0 ? maxref : 1);
    std::printf("  %-28s n=%-7zu max|ref|=%-9.4g max err=%.3g (rel %.3g)\n", what, got.size(), maxref, maxerr, rel);
    if (bad) {
        char buf[256];
        std::snprintf(buf, sizeof buf, "%s: %zu of %zu elements out of tolerance, first at %zu: %g vs %g", what, bad,
                      got.size(), first_bad, got[first_bad], want[first_bad]);
        testing::report_failure(__FILE__, __LINE__, buf);
    }
    return rel;
}

void check_threads_identical(const RunResult & a, const RunResult & b, const char * what) {
    CHECK(a.st.ok() && b.st.ok());
    if (!a.st.ok() || !b.st.ok()) return;
    CHECK_EQ(a.outs.size(), b.outs.size());
    for (size_t i = 0; i < a.outs.size() && i < b.outs.size(); i++) {
        const bool same = a.outs[i].size() == b.outs[i].size() &&
                          std::memcmp(a.outs[i].data(), b.outs[i].data(), a.outs[i].size() * sizeof(float)) == 0;
        if (!same) testing::report_failure(__FILE__, __LINE__, std::string(what) + ": 1 and 2 threads differ");
    }
}

void report_arena(const char * what, const RunResult & r) {
    std::printf("  %-28s %zu nodes, arena %.2f MiB\n", what, r.nodes, r.arena / 1048576.0);
}

constexpr double kTolF32 = 1e-4;
constexpr double kTolF16 = 5e-3;

// ---------------------------------------------------------------- CLIP ----

struct ClipCase {
    const char * model;
    const char * ref;
    const char * config;
    const char * prefix;
    ClipNaming naming;
};

const ClipCase kSd1Clip = {"testdata/ref/tiny_sd1.safetensors", "testdata/ref/tiny_sd1_ref.safetensors",
                           "testdata/ref/tiny_sd1/text_encoder/config.json",
                           "cond_stage_model.transformer.text_model.", ClipNaming::hf};
const ClipCase kSd2Clip = {"testdata/ref/tiny_sd2.safetensors", "testdata/ref/tiny_sd2_ref.safetensors",
                           "testdata/ref/tiny_sd2/text_encoder/config.json", "cond_stage_model.model.",
                           ClipNaming::openclip};

void clip_case(const ClipCase & c, ClipAct want_act) {
    const formats::ModelFiles & mf = load(c.model);
    const formats::ModelFiles & rf = load(c.ref);
    REQUIRE(!mf.tensors.empty() && !rf.tensors.empty());
    TestWeights w(&mf, WeightOptions{true});
    ClipConfig cfg;
    Status st = clip_config_from_weights(w.files(), c.prefix, &cfg);
    REQUIRE(st.ok());
    CHECK(cfg.naming == c.naming);
    CHECK_EQ(cfg.hidden, 32);
    CHECK_EQ(cfg.layers, 3);
    CHECK_EQ(cfg.intermediate, 64);
    CHECK_EQ(cfg.vocab, 1000);
    CHECK_EQ(cfg.max_positions, 77);
    CHECK_EQ(cfg.projection_dim, 24);
    formats::Json j;
    REQUIRE(read_json(c.config, &j));
    REQUIRE(clip_config_apply_json(j, &cfg).ok());
    CHECK_EQ(cfg.heads, 4);
    CHECK(cfg.act == want_act);

    std::vector<int32_t> ids = ref_i32(rf, "clip.ids");
    REQUIRE(ids.size() == 2 * 77);
    struct Variant {
        int skip;
        bool norm;
        const char * ref;
    };
    const Variant variants[] = {{1, true, "clip.last_ln"}, {2, true, "clip.skip2_ln"}, {2, false, "clip.skip2_raw"}};
    for (const Variant & v : variants) {
        auto build = [&](Graph & g, std::vector<Input> * in, std::vector<Tensor *> * out) {
            Tensor * t = g.input(DType::i32, {77, 2});
            in->push_back({t, ids.data(), ids.size() * 4});
            ClipOptions o;
            o.clip_skip = v.skip;
            o.final_norm = v.norm;
            Tensor * y = nullptr;
            SDGO_TRY(build_clip_text(g, w, c.prefix, cfg, o, t, &y));
            out->push_back(y);
            return Status();
        };
        RunResult r1 = run(build, 1), r2 = run(build, 2);
        if (!r1.st.ok()) std::fprintf(stderr, "clip: %s\n", r1.st.message().c_str());
        REQUIRE(r1.st.ok());
        compare(r1.outs[0], ref_f32(rf, v.ref), kTolF32, v.ref);
        check_threads_identical(r1, r2, v.ref);
        if (v.skip == 1) report_arena("clip graph", r1);
    }

    // Pooled output (SDXL): final LN at the first EOS, times the text projection;
    // the hidden output is still the clip-skip-2 layer without LN.
    std::vector<int32_t> rows(2);
    clip_pooled_rows(ids.data(), 77, 2, 999, rows.data());
    auto build = [&](Graph & g, std::vector<Input> * in, std::vector<Tensor *> * out) {
        Tensor * t = g.input(DType::i32, {77, 2});
        Tensor * r = g.input(DType::i32, {2});
        in->push_back({t, ids.data(), ids.size() * 4});
        in->push_back({r, rows.data(), rows.size() * 4});
        ClipOptions o;
        o.clip_skip = 2;
        o.final_norm = false;
        Tensor *y = nullptr, *p = nullptr;
        SDGO_TRY(build_clip_text_pooled(g, w, c.prefix, cfg, o, t, r, &y, &p));
        out->push_back(y);
        out->push_back(p);
        return Status();
    };
    RunResult r1 = run(build, 1), r2 = run(build, 2);
    if (!r1.st.ok()) std::fprintf(stderr, "clip pooled: %s\n", r1.st.message().c_str());
    REQUIRE(r1.st.ok());
    compare(r1.outs[0], ref_f32(rf, "clip.skip2_raw"), kTolF32, "clip.skip2_raw (+pooled)");
    compare(r1.outs[1], ref_f32(rf, "clip.pooled"), kTolF32, "clip.pooled");
    check_threads_identical(r1, r2, "clip pooled");
}

TEST(clip_pooled_rows_follow_transformers) {
    // EOS = 9: first EOS wins even when padding repeats it; without EOS, the first max id.
    const int32_t ids[3 * 5] = {8, 3, 9, 9, 9, /**/ 8, 4, 5, 9, 0, /**/ 8, 1, 7, 2, 7};
    int32_t rows[3];
    clip_pooled_rows(ids, 5, 3, 9, rows);
    CHECK_EQ(rows[0], 2);
    CHECK_EQ(rows[1], 5 + 3);
    CHECK_EQ(rows[2], 10 + 0);
}

TEST(clip_sd1_hf_names_quick_gelu_matches_transformers) { clip_case(kSd1Clip, ClipAct::quick_gelu); }
TEST(clip_sd2_openclip_names_gelu_matches_transformers) { clip_case(kSd2Clip, ClipAct::gelu); }

// Through the loader: model/load.h canonicalizes names (SD2's OpenCLIP names
// become HF names with split q/k/v and a transposed text projection); the
// graphs must give the same results on the canonical names.
TEST(canonical_names_from_loader_give_same_results) {
    for (int k = 0; k < 2; k++) {
        const ClipCase & c = k ? kSd2Clip : kSd1Clip;
        LoadedModel lm;
        Status st = load_model(testing::source_path(c.model), &lm);
        if (!st.ok()) std::fprintf(stderr, "load_model: %s\n", st.message().c_str());
        REQUIRE(st.ok());
        const formats::ModelFiles & rf = load(c.ref);
        TestWeights w(&lm.files, WeightOptions{true});
        const std::string prefix = "cond_stage_model.transformer.text_model.";
        ClipConfig cfg;
        REQUIRE(clip_config_from_weights(w.files(), prefix, &cfg).ok());
        CHECK(cfg.naming == ClipNaming::hf);
        CHECK(!cfg.fused_qkv);
        CHECK_EQ(cfg.projection_dim, 24);
        formats::Json j;
        REQUIRE(read_json(c.config, &j));
        REQUIRE(clip_config_apply_json(j, &cfg).ok());
        std::vector<int32_t> ids = ref_i32(rf, "clip.ids");
        std::vector<int32_t> rows(2);
        clip_pooled_rows(ids.data(), 77, 2, 999, rows.data());
        auto build = [&](Graph & g, std::vector<Input> * in, std::vector<Tensor *> * out) {
            Tensor * t = g.input(DType::i32, {77, 2});
            Tensor * r = g.input(DType::i32, {2});
            in->push_back({t, ids.data(), ids.size() * 4});
            in->push_back({r, rows.data(), rows.size() * 4});
            ClipOptions o;
            o.clip_skip = 2;
            Tensor *y = nullptr, *p = nullptr;
            SDGO_TRY(build_clip_text_pooled(g, w, prefix, cfg, o, t, r, &y, &p));
            out->push_back(y);
            out->push_back(p);
            return Status();
        };
        RunResult r = run(build, 2);
        if (!r.st.ok()) std::fprintf(stderr, "clip canonical: %s\n", r.st.message().c_str());
        REQUIRE(r.st.ok());
        compare(r.outs[0], ref_f32(rf, "clip.skip2_ln"), kTolF32, k ? "canonical sd2 clip skip2" : "canonical sd1 clip skip2");
        compare(r.outs[1], ref_f32(rf, "clip.pooled"), kTolF32, k ? "canonical sd2 pooled" : "canonical sd1 pooled");
        if (k == 0) {
            // The VAE's canonical attention weights are 2-D; the decoder still matches.
            VaeConfig vc;
            REQUIRE(vae_config_from_weights(w.files(), "first_stage_model.", &vc).ok());
            vc.groups = 4;
            std::vector<int64_t> ne;
            std::vector<float> z = ref_f32(rf, "vae.z", &ne);
            auto bv = [&](Graph & g, std::vector<Input> * in, std::vector<Tensor *> * out) {
                Tensor * x = g.input(DType::f32, {ne[0], ne[1], ne[2], ne[3]});
                in->push_back({x, z.data(), z.size() * 4});
                Tensor * y = nullptr;
                SDGO_TRY(build_vae_decoder(g, w, "first_stage_model.", vc, x, &y));
                out->push_back(y);
                return Status();
            };
            RunResult rv = run(bv, 2);
            REQUIRE(rv.st.ok());
            compare(rv.outs[0], ref_f32(rf, "vae.dec"), kTolF32, "canonical vae decode");
        }
    }
}

TEST(clip_rejects_bad_requests) {
    const formats::ModelFiles & mf = load(kSd1Clip.model);
    REQUIRE(!mf.tensors.empty());
    TestWeights w(&mf);
    ClipConfig cfg;
    REQUIRE(clip_config_from_weights(w.files(), kSd1Clip.prefix, &cfg).ok());
    cfg.heads = 4;
    Graph g;
    Tensor * ids = g.input(DType::i32, {78, 1});
    Tensor * out = nullptr;
    Status st = build_clip_text(g, w, kSd1Clip.prefix, cfg, ClipOptions{}, ids, &out);
    CHECK_EQ(st.code(), SDGO_ERR_INVALID_ARGUMENT);  // more tokens than positions
    ClipOptions o;
    o.clip_skip = 4;
    Graph g2;
    st = build_clip_text(g2, w, kSd1Clip.prefix, cfg, o, g2.input(DType::i32, {77, 1}), &out);
    CHECK_EQ(st.code(), SDGO_ERR_INVALID_ARGUMENT);  // skip more layers than exist
    ClipConfig none;
    CHECK(!clip_config_from_weights(w.files(), "nothing.here.", &none).ok());
}

// ---------------------------------------------------------------- U-Net ---

void unet_case(const char * model, const char * ref, const char * config, bool f32, UNetConfig * inferred_out) {
    const formats::ModelFiles & mf = load(model);
    const formats::ModelFiles & rf = load(ref);
    REQUIRE(!mf.tensors.empty() && !rf.tensors.empty());
    TestWeights w(&mf, WeightOptions{f32});
    const std::string prefix = "model.diffusion_model.";
    UNetConfig cfg;
    REQUIRE(unet_config_from_weights(w.files(), prefix, &cfg).ok());
    if (inferred_out) *inferred_out = cfg;
    formats::Json j;
    REQUIRE(read_json(config, &j));
    REQUIRE(unet_config_apply_json(j, &cfg).ok());

    std::vector<int64_t> xne, cne;
    std::vector<float> x = ref_f32(rf, "unet.x", &xne);
    std::vector<float> t = ref_f32(rf, "unet.t");
    std::vector<float> ctx = ref_f32(rf, "unet.ctx", &cne);
    REQUIRE(!x.empty() && t.size() == 2 && !ctx.empty());
    std::vector<float> yv;
    if (rf.find("unet.y")) yv = ref_f32(rf, "unet.y");
    auto build = [&](Graph & g, std::vector<Input> * in, std::vector<Tensor *> * out) {
        Tensor * tx = g.input(DType::f32, {xne[0], xne[1], xne[2], xne[3]});
        Tensor * tt = g.input(DType::f32, {2});
        Tensor * tc = g.input(DType::f32, {cne[0], cne[1], cne[2]});
        in->push_back({tx, x.data(), x.size() * 4});
        in->push_back({tt, t.data(), t.size() * 4});
        in->push_back({tc, ctx.data(), ctx.size() * 4});
        Tensor * ty = nullptr;
        if (!yv.empty()) {
            ty = g.input(DType::f32, {static_cast<int64_t>(yv.size() / 2), 2});
            in->push_back({ty, yv.data(), yv.size() * 4});
        }
        Tensor * y = nullptr;
        SDGO_TRY(build_unet(g, w, prefix, cfg, tx, tt, tc, ty, &y));
        out->push_back(y);
        return Status();
    };
    RunResult r1 = run(build, 1);
    if (!r1.st.ok()) std::fprintf(stderr, "unet: %s\n", r1.st.message().c_str());
    REQUIRE(r1.st.ok());
    compare(r1.outs[0], ref_f32(rf, "unet.out"), f32 ? kTolF32 : kTolF16, f32 ? "unet out (f32)" : "unet out (f16 w)");
    if (f32) {
        RunResult r2 = run(build, 2);
        check_threads_identical(r1, r2, "unet");
        report_arena("unet graph (batch 2)", r1);
    }
}

TEST(unet_sd1_conv_proj_matches_diffusers) {
    UNetConfig inf;
    unet_case("testdata/ref/tiny_sd1.safetensors", "testdata/ref/tiny_sd1_ref.safetensors",
              "testdata/ref/tiny_sd1/unet/config.json", true, &inf);
    // What the shapes alone give (SD1 rules: 8 heads, conv projection).
    CHECK_EQ(inf.in_channels, 4);
    CHECK_EQ(inf.out_channels, 4);
    CHECK_EQ(inf.model_channels, 16);
    CHECK_EQ(inf.channel_mult.size(), 2u);
    if (inf.channel_mult.size() == 2) CHECK(inf.channel_mult[0] == 1 && inf.channel_mult[1] == 2);
    CHECK_EQ(inf.num_res_blocks, 2);
    CHECK(inf.attention.size() == 2 && inf.attention[0] && !inf.attention[1]);
    CHECK(inf.mid_attention);
    CHECK_EQ(inf.mid_depth, 1);
    CHECK_EQ(inf.context_dim, 32);
    CHECK(!inf.linear_projection);
    CHECK_EQ(inf.head_dim, 0);
    CHECK_EQ(inf.heads_at(0, 16), 8);
    CHECK_EQ(inf.time_embed_dim, 64);
}

TEST(unet_sd2_inpaint_linear_proj_matches_diffusers) {
    UNetConfig inf;
    unet_case("testdata/ref/tiny_sd2.safetensors", "testdata/ref/tiny_sd2_ref.safetensors",
              "testdata/ref/tiny_sd2/unet/config.json", true, &inf);
    CHECK_EQ(inf.in_channels, 9);
    CHECK_EQ(inf.out_channels, 4);
    CHECK_EQ(inf.model_channels, 16);
    CHECK_EQ(inf.channel_mult.size(), 3u);
    CHECK_EQ(inf.num_res_blocks, 1);
    CHECK(inf.attention.size() == 3 && inf.attention[0] && inf.attention[1] && !inf.attention[2]);
    CHECK(inf.transformer_depth.size() == 3 && inf.transformer_depth[0] == 2 && inf.transformer_depth[1] == 2);
    CHECK_EQ(inf.mid_depth, 2);
    CHECK_EQ(inf.context_dim, 48);
    CHECK(inf.linear_projection);
    CHECK_EQ(inf.head_dim, 64);
}

TEST(unet_sdxl_layout_label_embedding_matches_diffusers) {
    UNetConfig inf;
    unet_case("testdata/ref/tiny_sdxl.safetensors", "testdata/ref/tiny_sdxl_ref.safetensors",
              "testdata/ref/tiny_sdxl/unet/config.json", true, &inf);
    CHECK_EQ(inf.adm_in_channels, 24 + 6 * 8);
    CHECK(inf.attention.size() == 2 && !inf.attention[0] && inf.attention[1]);
    CHECK(inf.transformer_depth.size() == 2 && inf.transformer_depth[1] == 2);
    CHECK_EQ(inf.mid_depth, 2);
    CHECK_EQ(inf.context_dim, 24);
    CHECK(inf.linear_projection);
}

// The same SDXL-like U-Net saved by diffusers (save_pretrained: diffusers
// names, f16 weights, config.json) and opened with model/load.h, which maps
// the names to the canonical LDM ones.
TEST(unet_from_diffusers_folder_matches_diffusers) {
    LoadedModel lm;
    Status st = load_model(testing::source_path("testdata/ref/tiny_sdxl/unet"), &lm);
    if (!st.ok()) std::fprintf(stderr, "load_model: %s\n", st.message().c_str());
    REQUIRE(st.ok());
    const formats::ModelFiles & rf = load("testdata/ref/tiny_sdxl_ref.safetensors");
    REQUIRE(!rf.tensors.empty());
    TestWeights w(&lm.files);
    UNetConfig cfg;
    st = unet_config_from_weights(w.files(), "model.diffusion_model.", &cfg);
    if (!st.ok()) std::fprintf(stderr, "config: %s\n", st.message().c_str());
    REQUIRE(st.ok());
    const DiffusersComponent * comp = lm.component("unet");
    formats::Json j;
    if (comp && comp->config.kind == formats::Json::object)
        j = comp->config;
    else
        REQUIRE(read_json("testdata/ref/tiny_sdxl/unet/config.json", &j));
    REQUIRE(unet_config_apply_json(j, &cfg).ok());
    std::vector<int64_t> xne, cne;
    std::vector<float> x = ref_f32(rf, "unet.x", &xne), t = ref_f32(rf, "unet.t"), ctx = ref_f32(rf, "unet.ctx", &cne),
                       yv = ref_f32(rf, "unet.y");
    auto build = [&](Graph & g, std::vector<Input> * in, std::vector<Tensor *> * out) {
        Tensor * tx = g.input(DType::f32, {xne[0], xne[1], xne[2], xne[3]});
        Tensor * tt = g.input(DType::f32, {2});
        Tensor * tc = g.input(DType::f32, {cne[0], cne[1], cne[2]});
        Tensor * ty = g.input(DType::f32, {static_cast<int64_t>(yv.size() / 2), 2});
        in->push_back({tx, x.data(), x.size() * 4});
        in->push_back({tt, t.data(), t.size() * 4});
        in->push_back({tc, ctx.data(), ctx.size() * 4});
        in->push_back({ty, yv.data(), yv.size() * 4});
        Tensor * y = nullptr;
        SDGO_TRY(build_unet(g, w, "model.diffusion_model.", cfg, tx, tt, tc, ty, &y));
        out->push_back(y);
        return Status();
    };
    RunResult r = run(build, 2);
    if (!r.st.ok()) std::fprintf(stderr, "unet: %s\n", r.st.message().c_str());
    REQUIRE(r.st.ok());
    compare(r.outs[0], ref_f32(rf, "unet.out"), kTolF32, "unet (diffusers folder, f16)");
}

TEST(sdxl_label_vector_matches_diffusers) {
    const formats::ModelFiles & rf = load("testdata/ref/tiny_sdxl_ref.safetensors");
    REQUIRE(!rf.tensors.empty());
    std::vector<int64_t> pne, tne;
    std::vector<float> te = ref_f32(rf, "unet.text_embeds", &pne), ids = ref_f32(rf, "unet.time_ids", &tne);
    REQUIRE(!te.empty() && !ids.empty());
    auto build = [&](Graph & g, std::vector<Input> * in, std::vector<Tensor *> * out) {
        Tensor * p = g.input(DType::f32, {pne[0], pne[1]});
        Tensor * v = g.input(DType::f32, {tne[0], tne[1]});
        in->push_back({p, te.data(), te.size() * 4});
        in->push_back({v, ids.data(), ids.size() * 4});
        Tensor * y = nullptr;
        SDGO_TRY(build_sdxl_label(g, p, v, 8, &y));
        out->push_back(y);
        return Status();
    };
    RunResult r = run(build, 1);
    REQUIRE(r.st.ok());
    compare(r.outs[0], ref_f32(rf, "unet.y"), 1e-6, "sdxl label vector");
}

TEST(unet_f16_weights_close_to_diffusers) {
    unet_case("testdata/ref/tiny_sd1.safetensors", "testdata/ref/tiny_sd1_ref.safetensors",
              "testdata/ref/tiny_sd1/unet/config.json", false, nullptr);
}

// The same weights with every quantizable matrix (2-D, rows a multiple of 32)
// in q8_0 / q4_0 — what a quantized GGUF holds — through the quantized GEMM
// and get_rows paths. Quantization error bounds the tolerance.
bool quantize_copy(const formats::ModelFiles & src, DType type, formats::ModelFiles * dst, int * n_quantized) {
    *n_quantized = 0;
    for (const auto & t : src.tensors) {
        formats::TensorEntry e = t;
        if (t.n_dims == 2 && t.ne[0] % 32 == 0 && t.type == DType::f16) {
            std::vector<float> f;
            if (!formats::tensor_to_f32(t, &f).ok()) return false;
            const size_t cap = row_size(type, t.ne[0]) * static_cast<size_t>(t.ne[1]);
            uint8_t * buf = dst->alloc_owned(cap);
            size_t written = 0;
            if (!quantize_rows(type, f.data(), buf, cap, t.ne[1], t.ne[0], nullptr, &written).ok()) return false;
            e.type = type;
            e.data = buf;
            e.nbytes = written;
            e.file_index = -1;
            ++*n_quantized;
        }
        if (!dst->add(e).ok()) return false;
    }
    return true;
}

TEST(quantized_weights_close_to_reference) {
    const formats::ModelFiles & mf = load("testdata/ref/tiny_sd2.safetensors");
    const formats::ModelFiles & rf = load("testdata/ref/tiny_sd2_ref.safetensors");
    REQUIRE(!mf.tensors.empty() && !rf.tensors.empty());
    std::vector<int64_t> xne, cne;
    std::vector<float> x = ref_f32(rf, "unet.x", &xne), t = ref_f32(rf, "unet.t"), ctx = ref_f32(rf, "unet.ctx", &cne);
    formats::Json j;
    REQUIRE(read_json("testdata/ref/tiny_sd2/unet/config.json", &j));
    for (DType type : {DType::q8_0, DType::q4_0}) {
        formats::ModelFiles q;
        int nq = 0;
        REQUIRE(quantize_copy(mf, type, &q, &nq));
        CHECK(nq > 20);
        // Quantized kernels vs the same (dequantized) weights in f32.
        std::vector<float> outs[2];
        for (int pass = 0; pass < 2; pass++) {
            TestWeights w(&q, WeightOptions{pass == 1});
            UNetConfig cfg;
            REQUIRE(unet_config_from_weights(w.files(), "model.diffusion_model.", &cfg).ok());
            REQUIRE(unet_config_apply_json(j, &cfg).ok());
            auto build = [&](Graph & g, std::vector<Input> * in, std::vector<Tensor *> * out) {
                Tensor * tx = g.input(DType::f32, {xne[0], xne[1], xne[2], xne[3]});
                Tensor * tt = g.input(DType::f32, {2});
                Tensor * tc = g.input(DType::f32, {cne[0], cne[1], cne[2]});
                in->push_back({tx, x.data(), x.size() * 4});
                in->push_back({tt, t.data(), t.size() * 4});
                in->push_back({tc, ctx.data(), ctx.size() * 4});
                Tensor * y = nullptr;
                SDGO_TRY(build_unet(g, w, "model.diffusion_model.", cfg, tx, tt, tc, nullptr, &y));
                out->push_back(y);
                return Status();
            };
            RunResult r1 = run(build, 1);
            if (!r1.st.ok()) std::fprintf(stderr, "unet %s: %s\n", dtype_name(type), r1.st.message().c_str());
            REQUIRE(r1.st.ok());
            if (pass == 0) check_threads_identical(r1, run(build, 2), "unet quantized");
            outs[pass] = r1.outs[0];
        }
        const std::string what = std::string("unet ") + dtype_name(type) + " vs dequant f32";
        compare(outs[0], outs[1], 1e-3, what.c_str());
        // Against diffusers (unquantized): the quantization error itself.
        if (type == DType::q8_0) compare(outs[0], ref_f32(rf, "unet.out"), 3e-2, "unet q8_0 vs diffusers");
    }
}

TEST(weights_fix_alignment_and_types) {
    // f32 data at an odd address is copied to aligned memory; an f16 vector is
    // converted to f32; the values survive.
    alignas(64) static uint8_t buf[64 + 1];
    const float vals[3] = {1.5f, -2.25f, 3.0f};
    std::memcpy(buf + 1, vals, sizeof vals);
    alignas(64) static uint16_t half[3];
    for (int i = 0; i < 3; i++) half[i] = fp32_to_fp16(vals[i]);
    formats::ModelFiles mf;
    formats::TensorEntry a;
    a.name = "a";
    a.type = DType::f32;
    a.ne[0] = 3;
    a.data = buf + 1;
    a.nbytes = 12;
    formats::TensorEntry h = a;
    h.name = "h";
    h.type = DType::f16;
    h.data = reinterpret_cast<const uint8_t *>(half);
    h.nbytes = 6;
    REQUIRE(mf.add(a).ok() && mf.add(h).ok());
    // f32 at an odd address and f16 both become aligned f32 vectors.
    TestWeights w(&mf);
    for (const char * name : {"a", "h"}) {
        Graph g;
        Binder b(g, w);
        Tensor * t = b.vec(name, 3);
        REQUIRE(t != nullptr);
        CHECK(t->type == DType::f32);
        CHECK(reinterpret_cast<uintptr_t>(t->data) % 4 == 0);
        CHECK(std::memcmp(t->data, vals, sizeof vals) == 0);
    }
    CHECK(w.converted_bytes() >= 24);
    // bf16 conv kernels become f16 when exact, f32 when not.
    alignas(64) static uint16_t bf[2][4];
    const float exact_vals[4] = {0.5f, -0.375f, 2.0f, 1.0f / 1024};
    const float inexact_vals[4] = {0.5f, 1e-30f, 2.0f, 1e30f};  // outside f16's range
    for (int i = 0; i < 4; i++) {
        bf[0][i] = fp32_to_bf16(exact_vals[i]);
        bf[1][i] = fp32_to_bf16(inexact_vals[i]);
    }
    formats::ModelFiles cf;
    for (int k = 0; k < 2; k++) {
        formats::TensorEntry c;
        c.name = k ? "inexact" : "exact";
        c.type = DType::bf16;
        c.ne[0] = 1;
        c.ne[1] = 1;
        c.ne[2] = 2;
        c.ne[3] = 2;
        c.n_dims = 4;
        c.data = reinterpret_cast<const uint8_t *>(bf[k]);
        c.nbytes = 8;
        REQUIRE(cf.add(c).ok());
    }
    TestWeights cw(&cf);
    {
        Graph g;
        Binder b(g, cw);
        Tensor * t = b.conv("exact", 1, 1, 2, 2);
        REQUIRE(t != nullptr);
        CHECK(t->type == DType::f16);
        for (int i = 0; i < 4; i++) CHECK_EQ(fp16_to_fp32(static_cast<const uint16_t *>(t->data)[i]), exact_vals[i]);
        Tensor * u = b.conv("inexact", 1, 1, 2, 2);
        REQUIRE(u != nullptr);
        CHECK(u->type == DType::f32);
        CHECK_EQ(static_cast<const float *>(u->data)[3], bf16_to_fp32(bf[1][3]));
    }
    // Integer tensors are not weights.
    alignas(64) static int32_t ints[3] = {1, 2, 3};
    formats::ModelFiles imf;
    {
        formats::TensorEntry e;
        e.name = "i";
        e.type = DType::i32;
        e.ne[0] = 3;
        e.data = reinterpret_cast<const uint8_t *>(ints);
        e.nbytes = 12;
        REQUIRE(imf.add(e).ok());
    }
    TestWeights iw(&imf);
    {
        Graph g;
        Binder b(g, iw);
        CHECK(b.vec("i", 3) == nullptr);
        CHECK_EQ(b.status().code(), SDGO_ERR_FORMAT);
        CHECK(b.status().message().find("floating point") != std::string::npos);
    }
    // Shape checks name the tensor.
    Graph g;
    Binder b(g, w);
    CHECK(b.vec("a", 4) == nullptr);
    CHECK_EQ(b.status().code(), SDGO_ERR_FORMAT);
    CHECK(b.status().message().find("a") != std::string::npos);
}

// Config values that would multiply work or memory, or are not finite, are
// refused when the config is read, naming the key (hostile diffusers
// folders: layer counts of 10^6..10^9, a scaling factor of 1e999).
TEST(configs_bound_every_count) {
    auto refused = [](const char * text, const char * key, int which) {
        formats::Json j;
        if (!formats::json_parse(text, std::strlen(text), &j).ok()) return false;
        Status st;
        if (which == 0) {
            UNetConfig u;
            st = unet_config_apply_json(j, &u);
        } else if (which == 1) {
            ClipConfig c;
            st = clip_config_apply_json(j, &c);
        } else {
            VaeConfig v;
            st = vae_config_apply_json(j, &v);
        }
        if (st.ok()) return false;
        std::printf("  expected error: %s\n", st.message().c_str());
        return st.code() == SDGO_ERR_FORMAT && st.message().find(key) != std::string::npos;
    };
    CHECK(refused("{\"layers_per_block\": 1000000}", "layers_per_block", 0));
    CHECK(refused("{\"transformer_layers_per_block\": [1, 1000000000]}", "transformer_layers_per_block", 0));
    CHECK(refused("{\"block_out_channels\": [320, 1e12]}", "block_out_channels", 0));
    CHECK(refused("{\"attention_head_dim\": 100000}", "heads", 0));
    CHECK(refused("{\"norm_eps\": 1e999}", "norm_eps", 0));
    CHECK(refused("{\"num_hidden_layers\": 1000000000}", "num_hidden_layers", 1));
    CHECK(refused("{\"num_hidden_layers\": -3}", "num_hidden_layers", 1));
    CHECK(refused("{\"vocab_size\": 4000000000}", "vocab_size", 1));
    CHECK(refused("{\"layers_per_block\": 1000000}", "layers_per_block", 2));
    CHECK(refused("{\"scaling_factor\": 1e999}", "scaling_factor", 2));
    CHECK(refused("{\"block_out_channels\": [128, 1e300]}", "block_out_channels", 2));
    // real values pass: SDXL's U-Net and OpenCLIP-bigG
    formats::Json j;
    const char * sdxl = "{\"block_out_channels\": [320, 640, 1280], \"layers_per_block\": 2, "
                        "\"transformer_layers_per_block\": [1, 2, 10], \"attention_head_dim\": [5, 10, 20], "
                        "\"cross_attention_dim\": 2048, \"projection_class_embeddings_input_dim\": 2816, "
                        "\"norm_eps\": 1e-05, \"norm_num_groups\": 32}";
    REQUIRE(formats::json_parse(sdxl, std::strlen(sdxl), &j).ok());
    UNetConfig u;
    CHECK(unet_config_apply_json(j, &u).ok());
    const char * bigg = "{\"hidden_size\": 1280, \"num_hidden_layers\": 32, \"num_attention_heads\": 20, "
                        "\"intermediate_size\": 5120, \"vocab_size\": 49408, \"layer_norm_eps\": 1e-05}";
    REQUIRE(formats::json_parse(bigg, std::strlen(bigg), &j).ok());
    ClipConfig c;
    CHECK(clip_config_apply_json(j, &c).ok());
}

TEST(configs_reject_bad_json) {
    auto parse = [](const char * text, formats::Json * j) { return formats::json_parse(text, std::strlen(text), j).ok(); };
    formats::Json j;
    UNetConfig u;
    REQUIRE(parse("[1, 2]", &j));
    CHECK_EQ(unet_config_apply_json(j, &u).code(), SDGO_ERR_FORMAT);
    REQUIRE(parse("{\"block_out_channels\": [32, 48]}", &j));  // not multiples of the first: unsupported
    CHECK_EQ(unet_config_apply_json(j, &u).code(), SDGO_ERR_UNSUPPORTED);
    UNetConfig u2;
    REQUIRE(parse("{\"block_out_channels\": [32, 64], \"down_block_types\": [\"CrossAttnDownBlock2D\"]}", &j));
    CHECK_EQ(unet_config_apply_json(j, &u2).code(), SDGO_ERR_FORMAT);  // 1 block type for 2 levels
    UNetConfig u3;
    REQUIRE(parse("{\"freq_shift\": 1}", &j));
    CHECK_EQ(unet_config_apply_json(j, &u3).code(), SDGO_ERR_UNSUPPORTED);
    UNetConfig u4;
    REQUIRE(parse("{\"time_cond_proj_dim\": 256}", &j));  // LCM-distilled U-Net with guidance embedding
    CHECK_EQ(unet_config_apply_json(j, &u4).code(), SDGO_ERR_UNSUPPORTED);
    REQUIRE(parse("{\"class_embed_type\": null, \"conv_in_kernel\": 3, \"addition_embed_type\": \"text_time\"}", &j));
    CHECK(unet_config_apply_json(j, &u4).ok());
    ClipConfig c;
    REQUIRE(parse("{\"hidden_act\": \"relu\"}", &j));
    CHECK_EQ(clip_config_apply_json(j, &c).code(), SDGO_ERR_UNSUPPORTED);
    VaeConfig v;
    REQUIRE(parse("{\"block_out_channels\": []}", &j));
    CHECK_EQ(vae_config_apply_json(j, &v).code(), SDGO_ERR_FORMAT);
    // A config that passes JSON but cannot be built is refused at build time.
    const formats::ModelFiles & mf = load("testdata/ref/tiny_sd1.safetensors");
    REQUIRE(!mf.tensors.empty());
    TestWeights w(&mf);
    UNetConfig bad;
    REQUIRE(unet_config_from_weights(w.files(), "model.diffusion_model.", &bad).ok());
    bad.groups = 8;
    bad.num_heads = {3, 3};  // 16 channels are not divisible into 3 heads
    Graph g;
    Tensor * out = nullptr;
    CHECK_EQ(build_unet(g, w, "model.diffusion_model.", bad, g.input(DType::f32, {8, 8, 4, 1}), g.input(DType::f32, {1}),
                        g.input(DType::f32, {32, 77, 1}), nullptr, &out)
                 .code(),
             SDGO_ERR_INVALID_ARGUMENT);
}

TEST(unet_rejects_bad_inputs) {
    const formats::ModelFiles & mf = load("testdata/ref/tiny_sd1.safetensors");
    REQUIRE(!mf.tensors.empty());
    TestWeights w(&mf);
    UNetConfig cfg;
    REQUIRE(unet_config_from_weights(w.files(), "model.diffusion_model.", &cfg).ok());
    cfg.groups = 8;
    Tensor * out = nullptr;
    {
        Graph g;  // size not a multiple of 2
        Status st = build_unet(g, w, "model.diffusion_model.", cfg, g.input(DType::f32, {7, 8, 4, 1}),
                               g.input(DType::f32, {1}), g.input(DType::f32, {32, 77, 1}), nullptr, &out);
        CHECK_EQ(st.code(), SDGO_ERR_INVALID_ARGUMENT);
    }
    {
        Graph g;  // wrong context width
        Status st = build_unet(g, w, "model.diffusion_model.", cfg, g.input(DType::f32, {8, 8, 4, 1}),
                               g.input(DType::f32, {1}), g.input(DType::f32, {16, 77, 1}), nullptr, &out);
        CHECK_EQ(st.code(), SDGO_ERR_INVALID_ARGUMENT);
    }
    {
        Graph g;  // batch of 2 with one timestep
        Status st = build_unet(g, w, "model.diffusion_model.", cfg, g.input(DType::f32, {8, 8, 4, 2}),
                               g.input(DType::f32, {1}), g.input(DType::f32, {32, 77, 2}), nullptr, &out);
        CHECK_EQ(st.code(), SDGO_ERR_INVALID_ARGUMENT);
    }
    {
        // A missing tensor is a clear format error naming it.
        formats::ModelFiles partial;
        for (const auto & t : mf.tensors)
            if (t.name.find("output_blocks.1.0.out_layers.3.weight") == std::string::npos) CHECK(partial.add(t).ok());
        TestWeights pw(&partial);
        Graph g;
        Status st = build_unet(g, pw, "model.diffusion_model.", cfg, g.input(DType::f32, {8, 8, 4, 1}),
                               g.input(DType::f32, {1}), g.input(DType::f32, {32, 77, 1}), nullptr, &out);
        CHECK_EQ(st.code(), SDGO_ERR_FORMAT);
        CHECK(st.message().find("output_blocks.1.0.out_layers.3.weight") != std::string::npos);
    }
}

// ---------------------------------------------------------------- VAE -----

void vae_setup(Weights & w, VaeConfig * cfg) {
    REQUIRE(vae_config_from_weights(w.files(), "first_stage_model.", cfg).ok());
    formats::Json j;
    REQUIRE(read_json("testdata/ref/tiny_sd1/vae/config.json", &j));
    REQUIRE(vae_config_apply_json(j, cfg).ok());
}

TEST(vae_config_inferred_from_shapes) {
    const formats::ModelFiles & mf = load("testdata/ref/tiny_sd1.safetensors");
    REQUIRE(!mf.tensors.empty());
    TestWeights w(&mf);
    VaeConfig cfg;
    REQUIRE(vae_config_from_weights(w.files(), "first_stage_model.", &cfg).ok());
    CHECK_EQ(cfg.ch, 8);
    CHECK(cfg.ch_mult == std::vector<int>({1, 2, 2}));
    CHECK_EQ(cfg.num_res_blocks, 1);
    CHECK_EQ(cfg.z_channels, 4);
    CHECK_EQ(cfg.in_channels, 3);
    CHECK(cfg.mid_attention);
    CHECK(cfg.quant_conv);
    CHECK_EQ(cfg.downscale(), 4);
    vae_setup(w, &cfg);
    CHECK_EQ(cfg.groups, 4);
    CHECK_NEAR(cfg.scaling_factor, 0.18215, 1e-7);
}

TEST(vae_encoder_matches_diffusers) {
    const formats::ModelFiles & mf = load("testdata/ref/tiny_sd1.safetensors");
    const formats::ModelFiles & rf = load("testdata/ref/tiny_sd1_ref.safetensors");
    REQUIRE(!mf.tensors.empty() && !rf.tensors.empty());
    TestWeights w(&mf, WeightOptions{true});
    VaeConfig cfg;
    vae_setup(w, &cfg);
    std::vector<int64_t> ne;
    std::vector<float> img = ref_f32(rf, "vae.img", &ne);
    REQUIRE(!img.empty());
    auto build = [&](Graph & g, std::vector<Input> * in, std::vector<Tensor *> * out) {
        Tensor * x = g.input(DType::f32, {ne[0], ne[1], ne[2], ne[3]});
        in->push_back({x, img.data(), img.size() * 4});
        Tensor *mean = nullptr, *logvar = nullptr;
        SDGO_TRY(build_vae_encoder(g, w, "first_stage_model.", cfg, x, &mean, &logvar));
        out->push_back(mean);
        out->push_back(logvar);
        return Status();
    };
    RunResult r1 = run(build, 1), r2 = run(build, 2);
    if (!r1.st.ok()) std::fprintf(stderr, "vae enc: %s\n", r1.st.message().c_str());
    REQUIRE(r1.st.ok());
    compare(r1.outs[0], ref_f32(rf, "vae.mean"), kTolF32, "vae mean");
    compare(r1.outs[1], ref_f32(rf, "vae.logvar"), kTolF32, "vae logvar");
    check_threads_identical(r1, r2, "vae encoder");
    report_arena("vae encoder graph", r1);

    // Posterior sample on the host: mean + exp(logvar/2) * noise.
    const std::vector<float> & m = r1.outs[0];
    const std::vector<float> & lv = r1.outs[1];
    std::vector<float> noise(m.size(), 0.5f), z(m.size());
    vae_sample(m.data(), lv.data(), noise.data(), z.data(), z.size());
    CHECK_NEAR(z[3], m[3] + std::exp(0.5 * lv[3]) * 0.5, 1e-5);
    vae_sample(m.data(), lv.data(), nullptr, z.data(), z.size());
    CHECK_EQ(z[5], m[5]);
}

TEST(vae_decoder_matches_diffusers) {
    const formats::ModelFiles & mf = load("testdata/ref/tiny_sd1.safetensors");
    const formats::ModelFiles & rf = load("testdata/ref/tiny_sd1_ref.safetensors");
    REQUIRE(!mf.tensors.empty() && !rf.tensors.empty());
    for (bool f32 : {true, false}) {
        TestWeights w(&mf, WeightOptions{f32});
        VaeConfig cfg;
        vae_setup(w, &cfg);
        std::vector<int64_t> ne;
        std::vector<float> z = ref_f32(rf, "vae.z", &ne);
        REQUIRE(!z.empty());
        auto build = [&](Graph & g, std::vector<Input> * in, std::vector<Tensor *> * out) {
            Tensor * x = g.input(DType::f32, {ne[0], ne[1], ne[2], ne[3]});
            in->push_back({x, z.data(), z.size() * 4});
            Tensor * y = nullptr;
            SDGO_TRY(build_vae_decoder(g, w, "first_stage_model.", cfg, x, &y));
            out->push_back(y);
            return Status();
        };
        RunResult r1 = run(build, 1);
        if (!r1.st.ok()) std::fprintf(stderr, "vae dec: %s\n", r1.st.message().c_str());
        REQUIRE(r1.st.ok());
        compare(r1.outs[0], ref_f32(rf, "vae.dec"), f32 ? kTolF32 : kTolF16, f32 ? "vae decode (f32)" : "vae decode (f16 w)");
        if (f32) {
            RunResult r2 = run(build, 2);
            check_threads_identical(r1, r2, "vae decoder");
            report_arena("vae decoder graph", r1);
        }
    }
}

TEST(vae_standalone_file_without_prefix) {
    // A separate VAE file (the --vae override) stores the same names without
    // "first_stage_model.": the builders take any prefix.
    const formats::ModelFiles & mf = load("testdata/ref/tiny_sd1.safetensors");
    const formats::ModelFiles & rf = load("testdata/ref/tiny_sd1_ref.safetensors");
    REQUIRE(!mf.tensors.empty() && !rf.tensors.empty());
    formats::ModelFiles vae;
    const std::string pre = "first_stage_model.";
    for (const auto & t : mf.tensors) {
        if (t.name.compare(0, pre.size(), pre) != 0) continue;
        formats::TensorEntry e = t;
        e.name = t.name.substr(pre.size());
        REQUIRE(vae.add(e).ok());
    }
    TestWeights w(&vae, WeightOptions{true});
    VaeConfig cfg;
    REQUIRE(vae_config_from_weights(w.files(), "", &cfg).ok());
    cfg.groups = 4;
    std::vector<int64_t> ne;
    std::vector<float> z = ref_f32(rf, "vae.z", &ne);
    auto build = [&](Graph & g, std::vector<Input> * in, std::vector<Tensor *> * out) {
        Tensor * x = g.input(DType::f32, {ne[0], ne[1], ne[2], ne[3]});
        in->push_back({x, z.data(), z.size() * 4});
        Tensor * y = nullptr;
        SDGO_TRY(build_vae_decoder(g, w, "", cfg, x, &y));
        out->push_back(y);
        return Status();
    };
    RunResult r = run(build, 2);
    REQUIRE(r.st.ok());
    compare(r.outs[0], ref_f32(rf, "vae.dec"), kTolF32, "vae decode (no prefix)");
}

TEST(vae_rejects_bad_inputs) {
    const formats::ModelFiles & mf = load("testdata/ref/tiny_sd1.safetensors");
    REQUIRE(!mf.tensors.empty());
    TestWeights w(&mf);
    VaeConfig cfg;
    vae_setup(w, &cfg);
    Graph g;
    Tensor *m = nullptr, *lv = nullptr, *img = nullptr;
    CHECK_EQ(build_vae_encoder(g, w, "first_stage_model.", cfg, g.input(DType::f32, {18, 16, 3, 1}), &m, &lv).code(),
             SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(build_vae_encoder(g, w, "first_stage_model.", cfg, g.input(DType::f32, {16, 16, 4, 1}), &m, &lv).code(),
             SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(build_vae_decoder(g, w, "first_stage_model.", cfg, g.input(DType::f32, {4, 4, 3, 1}), &img).code(),
             SDGO_ERR_INVALID_ARGUMENT);
}

}  // namespace

// ------------------------------------------------- full-size shapes -------
// testdata/ref/fullsize_shapes.json holds the names and shapes of full-size
// SD 1.5 and SD 2.1 networks (no data). Configs are inferred from them and the
// full-size graphs are built and planned (not computed) to report the arena.
#include "core/planner.h"

namespace {

alignas(64) const uint8_t kNoData[64] = {0};

bool load_shapes(const char * key, formats::ModelFiles * mf) {
    formats::Json j;
    if (!read_json("testdata/ref/fullsize_shapes.json", &j)) return false;
    const formats::Json * m = j.get(key);
    if (!m || m->kind != formats::Json::object) return false;
    for (const auto & kv : m->members) {
        formats::TensorEntry e;
        e.name = e.source_name = kv.first;
        std::vector<int64_t> shape;
        for (const auto & d : kv.second.items) shape.push_back(static_cast<int64_t>(d.num));
        if (!formats::shape_to_ne(shape, &e).ok()) return false;
        e.type = DType::f32;
        e.data = kNoData;  // never read: f32 weights are used in place and nothing is computed
        e.nbytes = static_cast<uint64_t>(e.nelements()) * 4;
        if (!mf->add(e).ok()) return false;
    }
    return true;
}

size_t plan_arena(Graph & g, Tensor * out, size_t * total) {
    g.set_output(out);
    MemoryPlan plan;
    Status st = plan_memory(g, Device::kAlignment, &plan);
    if (!st.ok()) {
        std::fprintf(stderr, "plan: %s\n", st.message().c_str());
        return 0;
    }
    *total = plan.total_bytes;
    return plan.arena_bytes;
}

void fullsize_case(const char * key, bool sd2) {
    formats::ModelFiles mf;
    REQUIRE(load_shapes(key, &mf));
    TestWeights w(&mf);

    ClipConfig cc;
    const std::string cprefix = sd2 ? "cond_stage_model.model." : "cond_stage_model.transformer.text_model.";
    REQUIRE(clip_config_from_weights(w.files(), cprefix, &cc).ok());
    CHECK_EQ(cc.hidden, sd2 ? 1024 : 768);
    CHECK_EQ(cc.layers, sd2 ? 24 : 12);
    CHECK_EQ(cc.heads, sd2 ? 16 : 12);
    CHECK_EQ(cc.intermediate, sd2 ? 4096 : 3072);
    CHECK_EQ(cc.vocab, 49408);
    CHECK_EQ(cc.max_positions, 77);
    CHECK(cc.act == (sd2 ? ClipAct::gelu : ClipAct::quick_gelu));
    CHECK(cc.naming == (sd2 ? ClipNaming::openclip : ClipNaming::hf));

    UNetConfig uc;
    REQUIRE(unet_config_from_weights(w.files(), "model.diffusion_model.", &uc).ok());
    CHECK_EQ(uc.in_channels, 4);
    CHECK_EQ(uc.out_channels, 4);
    CHECK_EQ(uc.model_channels, 320);
    CHECK(uc.channel_mult == std::vector<int>({1, 2, 4, 4}));
    CHECK_EQ(uc.num_res_blocks, 2);
    CHECK(uc.attention == std::vector<bool>({true, true, true, false}));
    CHECK_EQ(uc.transformer_depth[0], 1);
    CHECK(uc.mid_attention);
    CHECK_EQ(uc.mid_depth, 1);
    CHECK_EQ(uc.context_dim, sd2 ? 1024 : 768);
    CHECK_EQ(uc.linear_projection, sd2);
    CHECK_EQ(uc.heads_at(0, 320), sd2 ? 5 : 8);
    CHECK_EQ(uc.heads_at(2, 1280), sd2 ? 20 : 8);
    CHECK_EQ(uc.time_embed_dim, 1280);
    CHECK_EQ(uc.adm_in_channels, 0);

    VaeConfig vc;
    REQUIRE(vae_config_from_weights(w.files(), "first_stage_model.", &vc).ok());
    CHECK_EQ(vc.ch, 128);
    CHECK(vc.ch_mult == std::vector<int>({1, 2, 4, 4}));
    CHECK_EQ(vc.num_res_blocks, 2);
    CHECK_EQ(vc.z_channels, 4);
    CHECK_EQ(vc.downscale(), 8);

    size_t total = 0, arena = 0;
    {
        Graph g;
        Tensor * y = nullptr;
        ClipOptions o;
        o.clip_skip = sd2 ? 2 : 1;
        REQUIRE(build_clip_text(g, w, cprefix, cc, o, g.input(DType::i32, {77, 2}), &y).ok());
        arena = plan_arena(g, y, &total);
        CHECK(arena > 0 && arena <= total);
        std::printf("  %s clip 77x2:            %5zu nodes, arena %8.2f MiB (no reuse %8.2f MiB)\n", key,
                    g.order().size(), arena / 1048576.0, total / 1048576.0);
    }
    for (int px : {256, 512}) {
        Graph g;
        const int64_t l = px / 8;
        Tensor * y = nullptr;
        REQUIRE(build_unet(g, w, "model.diffusion_model.", uc, g.input(DType::f32, {l, l, 4, 2}),
                           g.input(DType::f32, {2}), g.input(DType::f32, {uc.context_dim, 77, 2}), nullptr, &y)
                    .ok());
        CHECK(y->ne[0] == l && y->ne[1] == l && y->ne[2] == 4 && y->ne[3] == 2);
        arena = plan_arena(g, y, &total);
        CHECK(arena > 0 && arena <= total);
        std::printf("  %s unet %d^2 batch 2:    %5zu nodes, arena %8.2f MiB (no reuse %8.2f MiB)\n", key, px,
                    g.order().size(), arena / 1048576.0, total / 1048576.0);
    }
    if (sd2) return;  // same VAE for both
    for (int px : {256, 512}) {
        Graph g;
        Tensor * img = nullptr;
        REQUIRE(build_vae_decoder(g, w, "first_stage_model.", vc, g.input(DType::f32, {px / 8, px / 8, 4, 1}), &img)
                    .ok());
        CHECK(img->ne[0] == px && img->ne[1] == px && img->ne[2] == 3);
        arena = plan_arena(g, img, &total);
        CHECK(arena > 0 && arena <= total);
        std::printf("  %s vae decode %d^2:      %5zu nodes, arena %8.2f MiB (no reuse %8.2f MiB)\n", key, px,
                    g.order().size(), arena / 1048576.0, total / 1048576.0);
        Graph ge;
        Tensor *mean = nullptr, *logvar = nullptr;
        REQUIRE(build_vae_encoder(ge, w, "first_stage_model.", vc, ge.input(DType::f32, {px, px, 3, 1}), &mean,
                                  &logvar)
                    .ok());
        CHECK(mean->ne[0] == px / 8 && mean->ne[2] == 4);
        ge.set_output(logvar);
        arena = plan_arena(ge, mean, &total);
        CHECK(arena > 0 && arena <= total);
        std::printf("  %s vae encode %d^2:      %5zu nodes, arena %8.2f MiB (no reuse %8.2f MiB)\n", key, px,
                    ge.order().size(), arena / 1048576.0, total / 1048576.0);
    }
}

TEST(fullsize_sd15_configs_and_graph_memory) { fullsize_case("sd15", false); }
TEST(fullsize_sd21_configs_and_graph_memory) { fullsize_case("sd21", true); }

// Full-size SDXL base and refiner in the sgm single-file layout (the names
// of the checkpoints people download: conditioner.embedders.N.*): the names
// canonicalize, detection finds the family, the configs inferred from the
// shapes are SDXL's, and the U-Net graphs with the label vector build and plan.
void fullsize_sdxl_case(const char * key, bool refiner) {
    model::LoadedModel lm;
    REQUIRE(load_shapes(key, &lm.files));
    // canonicalize reads some tensors (it splits fused projections): give
    // every entry zeros to read
    uint64_t most = 0;
    for (const auto & e : lm.files.tensors) most = std::max(most, e.nbytes);
    static std::vector<uint8_t> zeros;
    zeros.assign(size_t(most), 0);
    for (auto & e : lm.files.tensors) e.data = zeros.data();
    REQUIRE(canonicalize(&lm.files).ok());
    ModelInfo info;
    REQUIRE(detect(lm, &info).ok());
    CHECK_EQ(info.family, std::string(refiner ? "sdxl-refiner" : "sdxl"));
    CHECK_EQ(info.text_encoder.present, !refiner);
    CHECK(info.text_encoder_2.present);
    const ClipConfig & g = info.text_encoder_2.cfg;
    CHECK_EQ(g.hidden, 1280);
    CHECK_EQ(g.layers, 32);
    CHECK_EQ(g.heads, 20);
    CHECK_EQ(g.projection_dim, 1280);
    CHECK(g.act == ClipAct::gelu);
    if (!refiner) {
        const ClipConfig & l = info.text_encoder.cfg;
        CHECK_EQ(l.hidden, 768);
        CHECK_EQ(l.layers, 12);
        CHECK(l.act == ClipAct::quick_gelu);
    }
    const UNetConfig & uc = info.unet.cfg;
    CHECK_EQ(uc.model_channels, refiner ? 384 : 320);
    CHECK_EQ(uc.context_dim, refiner ? 1280 : 2048);
    CHECK_EQ(uc.adm_in_channels, refiner ? 2560 : 2816);
    CHECK(uc.attention == (refiner ? std::vector<bool>({false, true, true, false}) : std::vector<bool>({false, true, true})));
    CHECK_EQ(uc.transformer_depth[2], refiner ? 4 : 10);
    CHECK_EQ(uc.mid_depth, refiner ? 4 : 10);
    CHECK_EQ(uc.heads_at(1, refiner ? 768 : 640), refiner ? 12 : 10);  // head size 64
    CHECK(std::fabs(info.vae.cfg.scaling_factor - 0.13025f) < 1e-7f);
    TestWeights w(&lm.files);
    for (int px : {1024}) {
        Graph gr;
        const int64_t l = px / 8;
        Tensor * y = nullptr;
        Tensor * label = nullptr;
        const int k = refiner ? 5 : 6;
        REQUIRE(build_sdxl_label(gr, gr.input(DType::f32, {1280, 2}), gr.input(DType::f32, {k, 2}), 256, &label).ok());
        REQUIRE(build_unet(gr, w, kUNetPrefix, uc, gr.input(DType::f32, {l, l, 4, 2}), gr.input(DType::f32, {2}),
                           gr.input(DType::f32, {uc.context_dim, 77, 2}), label, &y)
                    .ok());
        CHECK(y->ne[0] == l && y->ne[1] == l && y->ne[2] == 4 && y->ne[3] == 2);
        size_t total = 0;
        const size_t arena = plan_arena(gr, y, &total);
        CHECK(arena > 0 && arena <= total);
        std::printf("  %s unet %d^2 batch 2: %5zu nodes, arena %8.2f MiB (no reuse %8.2f MiB)\n", key, px,
                    gr.order().size(), arena / 1048576.0, total / 1048576.0);
    }
}

// A VAE or U-Net whose level channel counts are not multiples of the first
// (diffusers accepts them) is refused with a message saying exactly that.
TEST(level_channels_not_multiples_of_the_first_are_named) {
    auto add = [](formats::ModelFiles * mf, const std::string & name, std::vector<int64_t> shape) {
        formats::TensorEntry e;
        e.name = e.source_name = name;
        REQUIRE(formats::shape_to_ne(shape, &e).ok());
        e.type = DType::f32;
        e.data = kNoData;
        e.nbytes = uint64_t(e.nelements()) * 4;
        REQUIRE(mf->add(e).ok());
    };
    formats::ModelFiles v;
    const std::string p = "first_stage_model.";
    add(&v, p + "decoder.conv_in.weight", {12, 4, 3, 3});
    add(&v, p + "decoder.conv_out.weight", {3, 8, 3, 3});
    for (int l = 0; l < 2; l++)
        for (int b = 0; b < 2; b++) {
            const int64_t ch = l == 0 ? 8 : 12;
            add(&v, p + "decoder.up." + std::to_string(l) + ".block." + std::to_string(b) + ".conv1.weight",
                {ch, ch, 3, 3});
            add(&v, p + "decoder.up." + std::to_string(l) + ".block." + std::to_string(b) + ".conv2.weight",
                {ch, ch, 3, 3});
        }
    VaeConfig vc;
    Status st = vae_config_from_weights(v, p, &vc);
    std::printf("  %s\n", st.message().c_str());
    CHECK_EQ(st.code(), SDGO_ERR_UNSUPPORTED);
    CHECK(st.message().find("level 1 has 12 channels, not a multiple of level 0's 8") != std::string::npos);
    formats::Json j;
    const char * cfg = R"({"block_out_channels": [32, 48]})";
    REQUIRE(formats::json_parse(cfg, std::strlen(cfg), &j).ok());
    UNetConfig uc;
    st = unet_config_apply_json(j, &uc);
    std::printf("  %s\n", st.message().c_str());
    CHECK_EQ(st.code(), SDGO_ERR_UNSUPPORTED);
    CHECK(st.message().find("48 is not a multiple of the first (32)") != std::string::npos);
}

// A weight declared with an integer type (I32, U8, bool) is refused by name
// when the networks read it, not taken as if it were float.
TEST(integer_weights_are_refused) {
    alignas(64) static const int32_t ints[64] = {1};
    for (DType t : {DType::i32, DType::i8}) {
        formats::ModelFiles mf;
        formats::TensorEntry e;
        e.name = e.source_name = "model.diffusion_model.out.2.weight";
        REQUIRE(formats::shape_to_ne({4, 4}, &e).ok());
        e.type = t;
        e.data = reinterpret_cast<const uint8_t *>(ints);
        e.nbytes = uint64_t(e.nelements()) * dtype_size(t);
        REQUIRE(mf.add(e).ok());
        WeightStore store(&mf, cpu::device(), WeightOptions());
        DType got;
        Status st = store.prepare(*mf.find(e.name), WeightUse::matrix, &got);
        std::printf("  %s\n", st.message().c_str());
        CHECK_EQ(st.code(), SDGO_ERR_FORMAT);
        CHECK(st.message().find("must be floating point") != std::string::npos);
        CHECK(st.message().find("out.2.weight") != std::string::npos);
    }
}

TEST(fullsize_sdxl_sgm_names_configs_and_graph_memory) { fullsize_sdxl_case("sdxl", false); }
TEST(fullsize_sdxl_refiner_sgm_names_configs_and_graph_memory) { fullsize_sdxl_case("sdxl_refiner", true); }

}  // namespace
