// test_pipeline.cpp — the SD pipeline end to end on the tiny diffusers
// pipelines of testdata/pipeline (made by testdata/gen/gen_pipeline_ref.py),
// compared with diffusers runs seeded with a CPU torch.Generator.
#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/registry.h"
#if defined(SDGO_HAVE_VULKAN)
#include "backends/vulkan/vulkan_backend.h"
#endif
#include "formats/safetensors.h"
#include "pipeline/model.h"
#include "pipeline/session.h"
#include "sdgo.h"
#include "tests/testing.h"

using namespace sdgo;
using namespace sdgo::pipeline;

namespace {

const char * const kModel = "testdata/pipeline/tiny_sd1";
const char * const kInpaintModel = "testdata/pipeline/tiny_sd1_inpaint";
const char * const kRef = "testdata/pipeline/ref.safetensors";
const char * const kSdxl = "testdata/pipeline/tiny_sdxl";
const char * const kSdxlRef = "testdata/pipeline/sdxl_ref.safetensors";
const char * const kRefiner = "testdata/pipeline/tiny_sdxl_refiner";

// A loaded model and one session on it (cached per path for the test run).
struct Loaded {
    std::unique_ptr<Model> model;
    std::unique_ptr<Session> session;
};

Status load(const ModelOptions & o, Loaded * out) {
    SDGO_TRY(Model::load(o, &out->model));
    SessionOptions so;
    so.n_threads = 2;
    return Session::create(*out->model, so, &out->session);
}

// The model at `rel` on a device (default: the CPU), cached per path and
// device for the whole run.
Session * get_model(const char * rel, Device * dev = nullptr) {
    if (!dev) dev = cpu::device();
    const std::string key = std::string(rel) + "@" + dev->info().backend + ":" + std::to_string(dev->info().index);
    static std::vector<std::pair<std::string, Loaded>> cache;
    for (auto & c : cache)
        if (c.first == key) return c.second.session.get();
    ModelOptions o;
    o.model_path = testing::source_path(rel);
    o.n_threads = 2;
    o.backend = dev->info().backend;
    o.device = dev->info().index;
    Loaded l;
    Status st = load(o, &l);
    if (!st.ok()) std::fprintf(stderr, "load %s: %s\n", key.c_str(), st.message().c_str());
    cache.emplace_back(key, std::move(l));
    return cache.back().second.session.get();
}

// A reference file, loaded once per run.
const formats::ModelFiles & refs(const char * rel = kRef) {
    static std::vector<std::pair<std::string, std::unique_ptr<formats::ModelFiles>>> cache;
    for (auto & c : cache)
        if (c.first == rel) return *c.second;
    auto f = std::make_unique<formats::ModelFiles>();
    Status st = formats::load_safetensors(testing::source_path(rel), f.get());
    if (!st.ok()) std::fprintf(stderr, "%s\n", st.message().c_str());
    cache.emplace_back(rel, std::move(f));
    return *cache.back().second;
}

std::vector<float> ref_data(const std::string & name, const char * file = kRef) {
    std::vector<float> v;
    const formats::TensorEntry * e = refs(file).find(name);
    if (!e) {
        std::fprintf(stderr, "missing reference %s\n", name.c_str());
        return v;
    }
    Status st = formats::tensor_to_f32(*e, &v);
    if (!st.ok()) std::fprintf(stderr, "%s\n", st.message().c_str());
    return v;
}

// max |a - b| relative to max |b|
double rel_err(const std::vector<float> & a, const std::vector<float> & b) {
    if (a.size() != b.size() || b.empty()) return 1e30;
    double m = 0, e = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        m = std::max(m, (double)std::fabs(b[i]));
        double d = std::fabs((double)a[i] - b[i]);
        if (!(d <= e)) e = d;
    }
    return e / (m > 0 ? m : 1);
}

Request base_request() {
    Request r;
    r.prompt = "a photo of a cat";
    r.negative_prompt = "blurry";
    r.width = r.height = 32;
    r.steps = 8;
    r.cfg_scale = 7.0f;
    r.seed = 42;
    r.sampler = sampling::SamplerType::Euler;
    r.rng = int(sampling::RngType::Cpu);
    return r;
}

std::vector<uint8_t> init_image() {
    std::vector<float> f = ref_data("init_image");
    std::vector<uint8_t> u(f.size());
    for (size_t i = 0; i < f.size(); ++i) u[i] = uint8_t(f[i]);
    return u;
}

// Runs the request on every registered device and compares with
// diffusers' recorded latents and image (relative error < 1e-3 on each).
void compare_run(const Request & r, const std::string & tag, const char * which = kModel, const char * ref = kRef) {
    for (Device * dev : backends::all_devices()) {
        Session * p = get_model(which, dev);
        REQUIRE(p != nullptr);
        Result res;
        Status st = p->generate(r, Hooks(), &res);
        // A backend still without some op of the networks refuses the run
        // up front, naming the op; the CPU must run everything.
        if (st.code() == SDGO_ERR_UNSUPPORTED && dev->info().backend != "cpu") {
            std::printf("  %-20s [%s:%d] skipped: %s\n", tag.c_str(), dev->info().backend.c_str(), dev->info().index,
                        st.message().c_str());
            continue;
        }
        if (!st.ok()) std::fprintf(stderr, "%s\n", st.message().c_str());
        REQUIRE(st.ok());
        const double el = rel_err(res.latents, ref_data(tag + "_latent", ref));
        const double ei = rel_err(res.images, ref_data(tag + "_image", ref));
        std::printf("  %-20s [%s:%d] latent rel err %.3g, image rel err %.3g\n", tag.c_str(),
                    dev->info().backend.c_str(), dev->info().index, el, ei);
        CHECK(el < 1e-3);
        CHECK(ei < 1e-3);
    }
}

// A plan for tests: every matrix and convolution weight whose rows are whole
// blocks of `type` (the product's per-tensor policy lives in Go's quantize
// package; these tests only need quantized weights to run through).
WeightPlan simple_plan(const std::string & path, const char * type) {
    WeightPlan plan;
    DType t;
    if (!dtype_from_name(type, &t)) return plan;
    model::LoadedModel lm;
    if (!model::load_model(path, &lm).ok()) return plan;
    const int64_t bs = type_traits(t)->block_size;
    for (const auto & e : lm.files.tensors) {
        const bool weight = e.name.size() > 7 && e.name.compare(e.name.size() - 7, 7, ".weight") == 0;
        if (weight && e.n_dims >= 2 && e.ne[0] % bs == 0 && e.name.find("norm") == std::string::npos &&
            e.name.find("embedding") == std::string::npos)
            plan.emplace_back(e.name, t);
    }
    return plan;
}

}  // namespace

TEST(loads_tiny_diffusers_pipeline) {
    Session * p = get_model(kModel);
    REQUIRE(p != nullptr);
    CHECK_EQ(p->model().summary().family, std::string("sd1"));
    CHECK_EQ(p->model().summary().unet_in_channels, 4);
    CHECK_EQ(p->model().summary().vae_downscale, 4);
    CHECK_EQ(p->model().summary().granularity, 8);
    CHECK_EQ(p->model().summary().text_max_positions, 77);
    Session * q = get_model(kInpaintModel);
    REQUIRE(q != nullptr);
    CHECK_EQ(q->model().summary().unet_in_channels, 9);
}

TEST(txt2img_euler_matches_diffusers) {
    Request r = base_request();
    r.compat = Compat::diffusers;
    compare_run(r, "t2i_euler_s42");
    r.seed = 7;
    compare_run(r, "t2i_euler_s7");
}

TEST(txt2img_euler_ancestral_matches_diffusers) {
    Request r = base_request();
    r.compat = Compat::diffusers;
    r.sampler = sampling::SamplerType::EulerA;
    compare_run(r, "t2i_euler_a_s42");
}

TEST(txt2img_dpmpp2m_matches_diffusers_dpmsolver) {
    Request r = base_request();
    r.compat = Compat::diffusers;
    r.sampler = sampling::SamplerType::Dpmpp2m;
    r.steps = 20;
    compare_run(r, "t2i_dpmpp2m_s42");
}

TEST(sd2_v_prediction_matches_diffusers) {
    // linear projections, per-level heads, gelu text encoder padded with id 0, v-prediction
    Session * p = get_model("testdata/pipeline/tiny_sd2_v");
    REQUIRE(p != nullptr);
    CHECK_EQ(p->model().summary().family, std::string("sd2"));
    CHECK_EQ(p->model().summary().prediction, std::string("v"));
    Request r = base_request();
    r.compat = Compat::diffusers;
    compare_run(r, "sd2v_t2i_euler_s42", "testdata/pipeline/tiny_sd2_v");
}

TEST(img2img_matches_diffusers) {
    Request r = base_request();
    r.compat = Compat::diffusers;
    r.steps = 10;
    r.strength = 0.6f;
    r.init_rgb = init_image();
    r.init_width = r.init_height = 32;
    REQUIRE(r.init_rgb.size() == 32 * 32 * 3);
    compare_run(r, "i2i_euler_s42");
}

TEST(inpaint_matches_diffusers) {
    Request r = base_request();
    r.compat = Compat::diffusers;
    r.strength = 1.0f;
    r.init_rgb = init_image();
    r.init_width = r.init_height = 32;
    const std::vector<float> m = ref_data("mask");
    REQUIRE(m.size() == 32 * 32);
    r.mask.resize(m.size());
    for (size_t i = 0; i < m.size(); ++i) r.mask[i] = uint8_t(m[i]);
    compare_run(r, "inp9_euler_s42", kInpaintModel);  // mask + masked-image latent channels
    compare_run(r, "inp4_euler_s42", kModel);         // latent blending after every step
}

TEST(prompt_weights_chunks_and_clip_skip) {
    Session * p = get_model(kModel);
    REQUIRE(p != nullptr);
    Condition c1, u1, c2, u2, c3, u3;
    int64_t tokens = 0;
    PromptOptions po;
    REQUIRE(p->encode_prompts("a photo of a cat", "", po, &c1, &u1, &tokens).ok());
    CHECK_EQ(c1.context.size(), size_t(32 * 77));
    CHECK_EQ(c1.context_dim, 32);
    CHECK(c1.context.size() == u1.context.size());
    // weighting changes the conditioning, the unconditional side stays
    REQUIRE(p->encode_prompts("a photo of a (cat:1.5)", "", po, &c2, &u2, &tokens).ok());
    CHECK(c1.context != c2.context);
    CHECK(u1.context == u2.context);
    // clip skip 2 takes the penultimate layer
    PromptOptions skip2 = po, skip3 = po;
    skip2.clip_skip = 2;
    skip3.clip_skip = 3;
    REQUIRE(p->encode_prompts("a photo of a cat", "", skip2, &c3, &u3, &tokens).ok());
    CHECK(c1.context != c3.context);
    CHECK(p->encode_prompts("a photo of a cat", "", skip3, &c3, &u3, &tokens).code() == SDGO_ERR_INVALID_ARGUMENT);
    // a prompt over 75 tokens takes several chunks; the empty negative prompt is
    // padded to the same length
    std::string longp;
    for (int i = 0; i < 100; ++i) longp += "cat ";
    REQUIRE(p->encode_prompts(longp, "", po, &c3, &u3, &tokens).ok());
    CHECK(tokens >= 100);  // "cat" is one or two tokens in the tiny vocabulary
    const size_t chunks = size_t((tokens + 74) / 75);
    CHECK(chunks >= 2);
    CHECK_EQ(c3.context.size(), size_t(32 * 77) * chunks);
    CHECK_EQ(u3.context.size(), size_t(32 * 77) * chunks);
    // diffusers style: weights are text, long prompts are truncated to one window
    Condition d1, d2, du;
    PromptOptions literal = po;
    literal.literal = true;
    REQUIRE(p->encode_prompts(longp, "", literal, &d1, &du, &tokens).ok());
    CHECK_EQ(d1.context.size(), size_t(32 * 77));
    CHECK(std::equal(d1.context.begin(), d1.context.end(), c3.context.begin()));  // = A1111's first chunk (BOS + 75 + EOS, no commas)
    REQUIRE(p->encode_prompts("a photo of a cat", "", literal, &d2, &du, &tokens).ok());
    CHECK(d2.context == c1.context);  // unweighted, short: the same as the A1111 path
    // and generation runs with the longer context
    Request r = base_request();
    r.prompt = longp;
    r.steps = 2;
    Result res;
    REQUIRE(p->generate(r, Hooks(), &res).ok());
}

// SDXL: both text encoders (penultimate layers, concatenated per token) and
// the pooled output match diffusers' encode_prompt; an empty negative prompt
// gives zeros (force_zeros_for_empty_prompt); A1111 chunks and weighting
// apply to both encoders.
TEST(sdxl_conditioning_matches_diffusers) {
    Session * p = get_model(kSdxl);
    REQUIRE(p != nullptr);
    CHECK_EQ(p->model().summary().family, std::string("sdxl"));
    CHECK(std::fabs(p->model().vae_config().scaling_factor - 0.13025f) < 1e-7f);
    PromptOptions literal;
    literal.literal = true;
    Condition c, u;
    int64_t tokens = 0;
    REQUIRE(p->encode_prompts("a photo of a cat", "blurry", literal, &c, &u, &tokens).ok());
    CHECK_EQ(c.context_dim, int64_t(80));
    const double ec = rel_err(c.context, ref_data("xl_cond_context", kSdxlRef));
    const double eu = rel_err(u.context, ref_data("xl_uncond_context", kSdxlRef));
    const double epc = rel_err(c.pooled, ref_data("xl_cond_pooled", kSdxlRef));
    const double epu = rel_err(u.pooled, ref_data("xl_uncond_pooled", kSdxlRef));
    std::printf("  sdxl context rel err %.3g / %.3g, pooled %.3g / %.3g\n", ec, eu, epc, epu);
    CHECK(ec < 1e-5);
    CHECK(eu < 1e-5);
    CHECK(epc < 1e-5);
    CHECK(epu < 1e-5);
    // the A1111 path gives the same for a short unweighted prompt
    Condition ca, ua;
    REQUIRE(p->encode_prompts("a photo of a cat", "blurry", PromptOptions(), &ca, &ua, &tokens).ok());
    CHECK(ca.context == c.context);
    CHECK(ca.pooled == c.pooled);
    // empty negative: zeros of the positive's length
    Condition cz, uz;
    REQUIRE(p->encode_prompts("a photo of a cat", "", literal, &cz, &uz, &tokens).ok());
    CHECK_EQ(uz.context.size(), cz.context.size());
    CHECK_EQ(uz.pooled.size(), size_t(24));
    CHECK(std::all_of(uz.context.begin(), uz.context.end(), [](float v) { return v == 0.0f; }));
    CHECK(std::all_of(uz.pooled.begin(), uz.pooled.end(), [](float v) { return v == 0.0f; }));
    // weighting changes each encoder's part; chunks grow both sides alike
    Condition cw, uw;
    REQUIRE(p->encode_prompts("a photo of a (cat:1.5)", "blurry", PromptOptions(), &cw, &uw, &tokens).ok());
    CHECK(cw.context != ca.context);
    CHECK(cw.pooled == ca.pooled);  // the pooled output is not weighted (A1111)
    CHECK(uw.context == ua.context);
    std::string longp;
    for (int i = 0; i < 100; ++i) longp += "cat ";
    Condition cl, ul;
    REQUIRE(p->encode_prompts(longp, "blurry", PromptOptions(), &cl, &ul, &tokens).ok());
    const size_t chunks = size_t((tokens + 74) / 75);
    CHECK(chunks >= 2);
    CHECK_EQ(cl.context.size(), size_t(80 * 77) * chunks);
    CHECK_EQ(ul.context.size(), size_t(80 * 77) * chunks);
    // clip skip counts from the last layer; beyond the layers is refused
    PromptOptions skip1, skip4;
    skip1.clip_skip = 1;
    skip4.clip_skip = 4;
    Condition c1, u1;
    REQUIRE(p->encode_prompts("a photo of a cat", "blurry", skip1, &c1, &u1, &tokens).ok());
    CHECK(c1.context != ca.context);
    CHECK_EQ(p->encode_prompts("a photo of a cat", "", skip4, &c1, &u1, &tokens).code(), SDGO_ERR_INVALID_ARGUMENT);
}

// SDXL txt2img against StableDiffusionXLPipeline: with a negative prompt,
// without one (zeros), and with the size conditioning set.
TEST(sdxl_txt2img_matches_diffusers) {
    Request r = base_request();
    r.compat = Compat::diffusers;
    compare_run(r, "xl_t2i_euler_s42", kSdxl, kSdxlRef);
    Request n = r;
    n.negative_prompt = "";
    compare_run(n, "xl_t2i_noneg_s42", kSdxl, kSdxlRef);
    Request m = r;
    m.original_height = 96;
    m.original_width = 64;
    m.crop_top = 8;
    m.crop_left = 4;
    m.target_height = 40;
    m.target_width = 24;
    compare_run(m, "xl_t2i_micro_s42", kSdxl, kSdxlRef);
    m.negative_original_height = 64;
    m.negative_original_width = 48;
    m.negative_crop_top = 2;
    m.negative_crop_left = 6;
    m.negative_target_height = 16;
    m.negative_target_width = 24;
    compare_run(m, "xl_t2i_negsize_s42", kSdxl, kSdxlRef);
    // a batch of two from one generator (num_images_per_prompt), Euler a:
    // the step noise of both images comes from one stream
    Request b = r;
    b.sampler = sampling::SamplerType::EulerA;
    b.batch = 2;
    b.one_generator = true;
    compare_run(b, "xl_t2i_batch2_eulera_s42", kSdxl, kSdxlRef);
    b.compat = Compat::a1111;  // offered in diffusers-mode txt2img only
    Result none;
    CHECK_EQ(get_model(kSdxl)->generate(b, Hooks(), &none).code(), SDGO_ERR_UNSUPPORTED);
    // clip skip: diffusers' clip_skip=1 is our 3 on SDXL (one layer before
    // the default penultimate); diffusers applies it to the positive only
    Request c = r;
    c.clip_skip = 3;
    compare_run(c, "xl_t2i_clipskip1_s42", kSdxl, kSdxlRef);
}

// SDXL base img2img and inpainting (masked img2img on the 4-channel U-Net,
// and the 9-channel inpainting U-Net) against StableDiffusionXLImg2ImgPipeline
// and StableDiffusionXLInpaintPipeline.
TEST(sdxl_img2img_and_inpaint_match_diffusers) {
    Request r = base_request();
    r.compat = Compat::diffusers;
    r.steps = 10;
    r.strength = 0.6f;
    r.init_rgb = init_image();
    r.init_width = r.init_height = 32;
    compare_run(r, "xl_i2i_euler_s42", kSdxl, kSdxlRef);
    r.steps = 8;
    r.strength = 1.0f;
    const std::vector<float> m = ref_data("mask");
    REQUIRE(m.size() == 32 * 32);
    r.mask.resize(m.size());
    for (size_t i = 0; i < m.size(); ++i) r.mask[i] = uint8_t(m[i]);
    compare_run(r, "xl_inp4_euler_s42", kSdxl, kSdxlRef);
    // with an ancestral sampler the pipeline's unused posterior draw of the
    // masked image shifts the step noise: reproduced in diffusers mode
    Request a = r;
    a.sampler = sampling::SamplerType::EulerA;
    compare_run(a, "xl_inp4_eulera_s42", kSdxl, kSdxlRef);
    // the 9-channel SDXL inpainting U-Net (mask and masked-image latent channels)
    compare_run(r, "xl_inp9_euler_s42", "testdata/pipeline/tiny_sdxl_inpaint", kSdxlRef);
}

// The SDXL refiner on its own (img2img: bigG alone, the aesthetic score in
// the label vector) against StableDiffusionXLImg2ImgPipeline with
// requires_aesthetics_score; its folder does not zero an empty negative.
TEST(sdxl_refiner_img2img_matches_diffusers) {
    Session * p = get_model(kRefiner);
    REQUIRE(p != nullptr);
    CHECK_EQ(p->model().summary().family, std::string("sdxl-refiner"));
    Request r = base_request();
    r.compat = Compat::diffusers;
    r.steps = 10;
    r.strength = 0.6f;
    r.init_rgb = init_image();
    r.init_width = r.init_height = 32;
    compare_run(r, "xlr_i2i_euler_s42", kRefiner, kSdxlRef);
    r.negative_prompt = "";
    r.aesthetic_score = 7.5f;
    r.negative_aesthetic_score = 1.0f;
    r.original_height = 48;
    r.original_width = 40;
    r.crop_top = 4;
    r.crop_left = 8;
    compare_run(r, "xlr_i2i_aes_s42", kRefiner, kSdxlRef);
}

// Two-stage SDXL in one call: the base samples until the switch, the
// refiner (loaded beside it) the rest, against diffusers' base with
// denoising_end 0.75 handing its latents to the refiner with
// denoising_start 0.75; on every device.
TEST(sdxl_base_then_refiner_matches_diffusers) {
    for (Device * dev : backends::all_devices()) {
        ModelOptions o;
        o.model_path = testing::source_path(kSdxl);
        o.refiner_path = testing::source_path(kRefiner);
        o.n_threads = 2;
        o.backend = dev->info().backend;
        o.device = dev->info().index;
        Loaded l;
        Status st = load(o, &l);
        if (!st.ok()) std::fprintf(stderr, "%s\n", st.message().c_str());
        REQUIRE(st.ok());
        CHECK_EQ(l.model->summary().refiner_family, std::string("sdxl-refiner"));
        Request r = base_request();
        r.compat = Compat::diffusers;
        r.refiner_switch = 0.75f;
        std::vector<int> steps;
        Hooks h;
        h.progress = [&](int step, int total, double) { steps.push_back(step * 100 + total); };
        Result res;
        st = l.session->generate(r, h, &res);
        if (!st.ok()) std::fprintf(stderr, "%s\n", st.message().c_str());
        REQUIRE(st.ok());
        const double el = rel_err(res.latents, ref_data("xl_2stage_s42_latent", kSdxlRef));
        const double ei = rel_err(res.images, ref_data("xl_2stage_s42_image", kSdxlRef));
        std::printf("  xl_2stage_s42        [%s:%d] latent rel err %.3g, image rel err %.3g\n",
                    dev->info().backend.c_str(), dev->info().index, el, ei);
        CHECK(el < 1e-3);
        CHECK(ei < 1e-3);
        // progress counts the steps of both models as one run of 8
        CHECK_EQ(steps.size(), size_t(8));
        if (steps.size() == 8) CHECK_EQ(steps.back(), 808);
        // switch 1: the base alone, as without a refiner
        r.refiner_switch = 1.0f;
        REQUIRE(l.session->generate(r, Hooks(), &res).ok());
        CHECK(rel_err(res.latents, ref_data("xl_t2i_euler_s42_latent", kSdxlRef)) < 1e-3);
        // A1111's switch (the model swapped inside one sampler run) runs, and
        // the refiner changes its result
        r.refiner_switch = 0.75f;
        r.compat = Compat::a1111;
        Result a1111, alone;
        REQUIRE(l.session->generate(r, Hooks(), &a1111).ok());
        r.refiner_switch = 1.0f;
        REQUIRE(l.session->generate(r, Hooks(), &alone).ok());
        CHECK(a1111.latents != alone.latents);
    }
    // a switch below 1 needs a refiner
    Session * p = get_model(kSdxl);
    REQUIRE(p != nullptr);
    Request r = base_request();
    r.refiner_switch = 0.5f;
    Result res;
    Status st = p->generate(r, Hooks(), &res);
    CHECK_EQ(st.code(), SDGO_ERR_INVALID_ARGUMENT);
    CHECK(st.message().find("refiner") != std::string::npos);
    r.refiner_switch = 1.5f;
    CHECK_EQ(p->generate(r, Hooks(), &res).code(), SDGO_ERR_INVALID_ARGUMENT);
    // a refiner beside an SD 1.x model, a refiner given as the base and a
    // base given as the refiner are refused, naming both
    const char * pairs[][2] = {{kModel, kRefiner}, {kRefiner, kSdxl}, {kSdxl, kSdxl}};
    for (const auto & pr : pairs) {
        ModelOptions o;
        o.model_path = testing::source_path(pr[0]);
        o.refiner_path = testing::source_path(pr[1]);
        std::unique_ptr<Model> m;
        st = Model::load(o, &m);
        std::printf("  %s + %s: %s\n", pr[0], pr[1], st.message().c_str());
        CHECK_EQ(st.code(), SDGO_ERR_INVALID_ARGUMENT);
        CHECK(st.message().find("SDXL refiner as the refiner") != std::string::npos);
    }
}

// A copy of a tiny diffusers folder (in a new temporary folder) whose
// scheduler/scheduler_config.json is `config`: a user's folder with another
// scheduler. "" when it cannot be made.
std::string with_scheduler_config(const char * rel, const std::string & config) {
    char tmpl[] = "/tmp/sdgo-sched-XXXXXX";
    if (!mkdtemp(tmpl)) return "";
    namespace fs = std::filesystem;
    const fs::path dst = fs::path(tmpl) / "model";
    std::error_code ec;
    fs::copy(testing::source_path(rel), dst, fs::copy_options::recursive, ec);
    if (ec) return "";
    std::ofstream(dst / "scheduler" / "scheduler_config.json", std::ios::trunc) << config;
    return dst.string();
}

// Compat::diffusers follows the folder's scheduler config: the real SDXL
// one (leading spacing, steps_offset 1, which also starts from
// sqrt(sigma^2 + 1)) and SDXL-Turbo's (Euler a, trailing spacing; CFG 0 is
// one U-Net pass, as diffusers); keys it cannot reproduce are refused by
// name, and only in that mode.
TEST(sdxl_scheduler_configs_in_diffusers_mode) {
    struct Case {
        const char * tag;
        std::string config;
        sampling::SamplerType sampler;
        int steps;
        float cfg;
        const char * negative;
    };
    const Case cases[] = {
        {"xl_t2i_leading_s42",
         R"({"_class_name": "EulerDiscreteScheduler", "beta_start": 0.00085, "beta_end": 0.012,
             "beta_schedule": "scaled_linear", "num_train_timesteps": 1000, "prediction_type": "epsilon",
             "timestep_spacing": "leading", "steps_offset": 1, "use_karras_sigmas": false})",
         sampling::SamplerType::Euler, 8, 7.0f, "blurry"},
        {"xl_turbo_trailing_s42",
         R"({"_class_name": "EulerAncestralDiscreteScheduler", "beta_start": 0.00085, "beta_end": 0.012,
             "beta_schedule": "scaled_linear", "timestep_spacing": "trailing", "steps_offset": 1})",
         sampling::SamplerType::EulerA, 2, 0.0f, ""},
    };
    for (const Case & c : cases) {
        const std::string dir = with_scheduler_config(kSdxl, c.config);
        REQUIRE(!dir.empty());
        ModelOptions o;
        o.model_path = dir;
        o.n_threads = 2;
        Loaded l;
        REQUIRE(load(o, &l).ok());
        Request r = base_request();
        r.compat = Compat::diffusers;
        r.sampler = c.sampler;
        r.steps = c.steps;
        r.cfg_scale = c.cfg;
        r.negative_prompt = c.negative;
        Result res;
        Status st = l.session->generate(r, Hooks(), &res);
        if (!st.ok()) std::fprintf(stderr, "%s\n", st.message().c_str());
        REQUIRE(st.ok());
        const double el = rel_err(res.latents, ref_data(std::string(c.tag) + "_latent", kSdxlRef));
        const double ei = rel_err(res.images, ref_data(std::string(c.tag) + "_image", kSdxlRef));
        std::printf("  %-22s latent rel err %.3g, image rel err %.3g\n", c.tag, el, ei);
        CHECK(el < 1e-3);
        CHECK(ei < 1e-3);
        std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
    }
    // Karras sigmas: refused in diffusers mode, naming the key; a1111 runs
    const std::string dir = with_scheduler_config(kSdxl, R"({"use_karras_sigmas": true})");
    REQUIRE(!dir.empty());
    ModelOptions o;
    o.model_path = dir;
    Loaded l;
    REQUIRE(load(o, &l).ok());
    Request r = base_request();
    r.steps = 2;
    r.compat = Compat::diffusers;
    Result res;
    Status st = l.session->generate(r, Hooks(), &res);
    CHECK_EQ(st.code(), SDGO_ERR_UNSUPPORTED);
    CHECK(st.message().find("use_karras_sigmas") != std::string::npos);
    r.compat = Compat::a1111;
    CHECK(l.session->generate(r, Hooks(), &res).ok());
    // DDIM and LCM are refused in diffusers mode (their schedulers' own
    // timesteps are not reproduced), and run in a1111 mode
    for (sampling::SamplerType s : {sampling::SamplerType::Ddim, sampling::SamplerType::Lcm}) {
        Request q = base_request();
        q.steps = 2;
        q.compat = Compat::diffusers;
        q.sampler = s;
        st = get_model(kSdxl)->generate(q, Hooks(), &res);
        CHECK_EQ(st.code(), SDGO_ERR_UNSUPPORTED);
        CHECK(st.message().find(sampling::sampler_name(s)) != std::string::npos);
        q.compat = Compat::a1111;
        CHECK(get_model(kSdxl)->generate(q, Hooks(), &res).ok());
    }
    // a --scheduler other than the default is refused in diffusers mode
    r.compat = Compat::diffusers;
    r.scheduler = sampling::Scheduler::Karras;
    st = get_model(kSdxl)->generate(r, Hooks(), &res);
    CHECK_EQ(st.code(), SDGO_ERR_INVALID_ARGUMENT);
    CHECK(st.message().find("karras") != std::string::npos);
    std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
    // a malformed value is a load error
    DiffusersScheduler ds;
    formats::Json j;
    const char * bad = R"({"steps_offset": -3})";
    REQUIRE(formats::json_parse(bad, std::strlen(bad), &j).ok());
    CHECK_EQ(parse_diffusers_scheduler(j, &ds).code(), SDGO_ERR_FORMAT);
    const char * sample = R"({"prediction_type": "sample", "timestep_spacing": "leading"})";
    REQUIRE(formats::json_parse(sample, std::strlen(sample), &j).ok());
    REQUIRE(parse_diffusers_scheduler(j, &ds).ok());
    CHECK(ds.unsupported.find("prediction_type") != std::string::npos);
    CHECK(ds.spacing == sampling::TimestepSpacing::Leading);
}

TEST(vae_override) {
    Request r = base_request();
    r.compat = Compat::diffusers;
    r.steps = 4;
    Result base, same, other;
    REQUIRE(get_model(kModel)->generate(r, Hooks(), &base).ok());
    for (const char * vae : {"testdata/pipeline/tiny_sd1/vae", "testdata/pipeline/tiny_sd2_v/vae"}) {
        ModelOptions o;
        o.model_path = testing::source_path(kModel);
        o.vae_path = testing::source_path(vae);
        o.n_threads = 2;
        Loaded l;
        Status st = load(o, &l);
        if (!st.ok()) std::fprintf(stderr, "%s\n", st.message().c_str());
        REQUIRE(st.ok());
        REQUIRE(l.session->generate(r, Hooks(), vae == std::string("testdata/pipeline/tiny_sd1/vae") ? &same : &other).ok());
    }
    CHECK(same.rgb == base.rgb);      // the model's own VAE, given separately
    CHECK(same.latents == other.latents);  // the VAE does not take part in txt2img sampling
    CHECK(other.rgb != base.rgb);     // another VAE decodes differently
    ModelOptions o;
    o.model_path = testing::source_path(kModel);
    o.vae_path = testing::source_path("testdata/pipeline/nope.safetensors");
    std::unique_ptr<Model> m;
    CHECK(!Model::load(o, &m).ok());
}

TEST(batch_seeds_increase_by_one) {
    Session * p = get_model(kModel);
    REQUIRE(p != nullptr);
    Request r = base_request();
    r.rng = int(sampling::RngType::Cuda);
    r.sampler = sampling::SamplerType::EulerA;
    r.steps = 4;
    r.batch = 2;
    Result both, one, two;
    REQUIRE(p->generate(r, Hooks(), &both).ok());
    CHECK_EQ(both.seeds.size(), size_t(2));
    CHECK_EQ(both.seeds[1], int64_t(43));
    r.batch = 1;
    REQUIRE(p->generate(r, Hooks(), &one).ok());
    r.seed = 43;
    REQUIRE(p->generate(r, Hooks(), &two).ok());
    const size_t n = one.rgb.size();
    REQUIRE(both.rgb.size() == 2 * n);
    CHECK(std::memcmp(both.rgb.data(), one.rgb.data(), n) == 0);
    CHECK(std::memcmp(both.rgb.data() + n, two.rgb.data(), n) == 0);
    CHECK(std::memcmp(one.rgb.data(), two.rgb.data(), n) != 0);
}

TEST(progress_and_cancel_leave_model_reusable) {
    Session * p = get_model(kModel);
    REQUIRE(p != nullptr);
    Request r = base_request();
    r.steps = 6;
    std::vector<int> seen;
    Hooks h;
    h.progress = [&](int step, int total, double secs) {
        seen.push_back(step);
        CHECK_EQ(total, 6);
        CHECK(secs >= 0);
    };
    Result ref_run;
    REQUIRE(p->generate(r, h, &ref_run).ok());
    CHECK_EQ(seen.size(), size_t(6));
    CHECK_EQ(seen.back(), 6);

    std::atomic<int32_t> flag{0};
    int last = 0;
    Hooks hc;
    hc.cancel = &flag;
    hc.progress = [&](int step, int, double) {
        last = step;
        if (step == 2) flag.store(1);
    };
    Result res;
    Status st = p->generate(r, hc, &res);
    CHECK_EQ(st.code(), SDGO_ERR_CANCELED);
    CHECK_EQ(last, 2);  // stopped right after the step that set the flag

    Result again;
    REQUIRE(p->generate(r, Hooks(), &again).ok());
    CHECK(again.rgb == ref_run.rgb);
}

TEST(inpaint_regular_model_keeps_unmasked_latents) {
    Session * p = get_model(kModel);
    REQUIRE(p != nullptr);
    Request r = base_request();
    r.steps = 6;
    r.strength = 1.0f;
    r.init_rgb = init_image();
    r.init_width = r.init_height = 32;
    r.mask.assign(32 * 32, 0);
    Result keep;
    REQUIRE(p->generate(r, Hooks(), &keep).ok());  // nothing to repaint: the init latent
    for (int y = 0; y < 32; ++y)
        for (int x = 16; x < 32; ++x) r.mask[y * 32 + x] = 255;  // repaint the right half
    Result half;
    REQUIRE(p->generate(r, Hooks(), &half).ok());
    const int w = 8, h = 8, C = 4;
    int same_left = 0, diff_right = 0;
    for (int c = 0; c < C; ++c)
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x) {
                const size_t k = size_t(c) * w * h + size_t(y) * w + x;
                if (x < 4) same_left += keep.latents[k] == half.latents[k];
                else diff_right += keep.latents[k] != half.latents[k];
            }
    CHECK_EQ(same_left, C * h * 4);
    CHECK(diff_right > C * h * 4 * 9 / 10);
    // and the kept latent is the init image's: its decode is close to the init image
    std::vector<uint8_t> init = init_image();
    double err = 0;
    for (size_t i = 0; i < init.size(); ++i) err += std::fabs(double(keep.rgb[i]) - init[i]);
    std::printf("  keep-all decode mean abs diff from init: %.2f (random tiny VAE)\n", err / init.size());
}

TEST(inpaint_model_uses_mask_channels) {
    Session * p = get_model(kInpaintModel);
    REQUIRE(p != nullptr);
    Request r = base_request();
    r.steps = 5;
    r.init_rgb = init_image();
    r.init_width = r.init_height = 32;
    // img2img without a mask is refused on an inpainting model
    Result res;
    CHECK_EQ(p->generate(r, Hooks(), &res).code(), SDGO_ERR_INVALID_ARGUMENT);
    r.mask.assign(32 * 32, 0);
    for (int i = 0; i < 32 * 16; ++i) r.mask[i] = 255;
    Result a, b;
    REQUIRE(p->generate(r, Hooks(), &a).ok());
    // the mask channel matters
    for (int i = 0; i < 32 * 32; ++i) r.mask[i] = i < 32 * 16 ? 0 : 255;
    REQUIRE(p->generate(r, Hooks(), &b).ok());
    CHECK(a.rgb != b.rgb);
    for (float v : a.latents) CHECK(std::isfinite(v));
    // txt2img on an inpainting model works too
    Request t = base_request();
    t.steps = 3;
    REQUIRE(p->generate(t, Hooks(), &res).ok());
    CHECK_EQ(res.rgb.size(), size_t(32 * 32 * 3));
}

TEST(bad_requests_are_clear_errors) {
    Session * p = get_model(kModel);
    REQUIRE(p != nullptr);
    Result res;
    auto code = [&](const Request & r) {
        Status st = p->generate(r, Hooks(), &res);
        if (!st.ok()) std::printf("  expected error: %s\n", st.message().c_str());
        return st.code();
    };
    Request r = base_request();
    r.width = 30;
    CHECK_EQ(code(r), SDGO_ERR_INVALID_ARGUMENT);
    r = base_request();
    r.height = -8;
    CHECK_EQ(code(r), SDGO_ERR_INVALID_ARGUMENT);
    r = base_request();
    r.steps = 0;
    CHECK_EQ(code(r), SDGO_ERR_INVALID_ARGUMENT);
    r = base_request();
    r.init_rgb.assign(16 * 16 * 3, 0);
    r.init_width = r.init_height = 16;
    CHECK_EQ(code(r), SDGO_ERR_INVALID_ARGUMENT);
    r = base_request();
    r.init_rgb = init_image();
    r.init_width = r.init_height = 32;
    r.mask.assign(10, 0);
    CHECK_EQ(code(r), SDGO_ERR_INVALID_ARGUMENT);
    r.mask.clear();
    r.strength = 0.0f;
    CHECK_EQ(code(r), SDGO_ERR_INVALID_ARGUMENT);
    r = base_request();
    r.mask.assign(32 * 32, 255);  // mask without init image
    CHECK_EQ(code(r), SDGO_ERR_INVALID_ARGUMENT);
    // a prompt of 10,000 tokens is refused (more than 64 chunks)
    r = base_request();
    r.prompt.clear();
    for (int i = 0; i < 10000; ++i) r.prompt += "cat ";
    CHECK(code(r) != SDGO_OK);
    // NaN/infinity inside is reported, not written out as an image
    r = base_request();
    r.cfg_scale = 3e38f;
    r.steps = 3;
    CHECK_EQ(code(r), SDGO_ERR_INTERNAL);
    // and the model still works
    r = base_request();
    r.steps = 2;
    CHECK_EQ(code(r), SDGO_OK);
}

// PSNR (dB) of image a against b, both in [0, 1].
double psnr(const std::vector<float> & a, const std::vector<float> & b) {
    if (a.size() != b.size() || a.empty()) return -1;
    double se = 0;
    for (size_t i = 0; i < a.size(); ++i) se += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    return se == 0 ? 1e9 : 10.0 * std::log10(double(a.size()) / se);
}

// 64x64 (a 16x16 latent of the tiny model's 4x VAE), tiled decode settings.
Request tiling_request(VaeTiling t, int size, int overlap) {
    Request r = base_request();
    r.width = r.height = 64;
    r.steps = 3;
    r.vae_tiling = t;
    r.vae_tile_size = size;
    r.vae_tile_overlap = overlap;
    return r;
}

TEST(vae_tiling_one_tile_is_the_whole_decode) {
    Session * p = get_model(kModel);
    REQUIRE(p != nullptr);
    Result whole, one;
    REQUIRE(p->generate(tiling_request(VaeTiling::off, 512, 64), Hooks(), &whole).ok());
    REQUIRE(p->generate(tiling_request(VaeTiling::on, 64, 16), Hooks(), &one).ok());
    CHECK(whole.rgb == one.rgb);
}

// Tiles of 32 pixels sharing 0, 8 or 16 pixels (3 x 3 tiles) against the
// whole decode, on every device. The tiny random VAE sees the whole 16x16
// latent through its mid-block attention, so a tile that sees less differs;
// the blend across the overlap hides the seams. Measured on the CPU and on
// lavapipe alike: 20.5 dB with no overlap, 28.0 dB with 8, 30.6 dB with 16.
TEST(vae_tiles_blend_close_to_the_whole_decode) {
    for (Device * dev : backends::all_devices()) {
        Session * p = get_model(kModel, dev);
        REQUIRE(p != nullptr);
        Result whole;
        REQUIRE(p->generate(tiling_request(VaeTiling::off, 512, 64), Hooks(), &whole).ok());
        double db[3] = {0, 0, 0};
        const int overlaps[3] = {0, 8, 16};
        for (int i = 0; i < 3; i++) {
            Result tiled;
            REQUIRE(p->generate(tiling_request(VaeTiling::on, 32, overlaps[i]), Hooks(), &tiled).ok());
            CHECK(whole.latents == tiled.latents);
            db[i] = psnr(tiled.images, whole.images);
        }
        std::printf("  tiled VAE decode [%s:%d] against the whole decode: overlap 0 %.1f dB, 8 %.1f dB, 16 %.1f dB\n",
                    dev->info().backend.c_str(), dev->info().index, db[0], db[1], db[2]);
        CHECK(db[0] > 18.0 && db[0] < 1e9);  // the tiles did change something
        CHECK(db[1] > 27.0);
        CHECK(db[2] > 29.5);
        CHECK(db[1] > db[0] + 5.0);  // blending across the overlap is what hides the seams
    }
}

TEST(vae_tiling_bad_settings_are_refused) {
    Session * p = get_model(kModel);
    REQUIRE(p != nullptr);
    Result res;
    for (auto so : {std::make_pair(60, 8), std::make_pair(32, 24), std::make_pair(64, 12), std::make_pair(0, 0),
                    std::make_pair(64, -8)}) {
        Status st = p->generate(tiling_request(VaeTiling::on, so.first, so.second), Hooks(), &res);
        CHECK_EQ(st.code(), SDGO_ERR_INVALID_ARGUMENT);
        CHECK(st.message().find("VAE tile") != std::string::npos);
    }
    VaeTiling t;
    CHECK_EQ(parse_vae_tiling("sometimes", &t).code(), SDGO_ERR_INVALID_ARGUMENT);
}

#if defined(SDGO_HAVE_VULKAN)
// A Vulkan device whose descriptor range (192 KiB) holds every tensor of the
// tiny model's text encoder, U-Net (without CFG: 128 KiB at most) and
// 32-pixel VAE tiles, but not the whole 64x64 VAE decode (its 64x64x16
// activations are 256 KiB): auto tiles, off refuses before computing
// anything, and auto equals tiling on.
TEST(vae_tiling_automatic_when_the_decode_does_not_fit) {
    std::string why;
    if (vk::devices(&why).empty()) {
        std::printf("  no Vulkan device (%s): skipped\n", why.c_str());
        return;
    }
    vk::DeviceOptions opt;
    opt.max_storage_range = 192 << 10;
    std::unique_ptr<Device> dev;
    REQUIRE(vk::make_device(0, opt, &dev).ok());
    Loaded l;
    {
        ModelOptions o;
        o.model_path = testing::source_path(kModel);
        o.device_override = dev.get();
        REQUIRE(load(o, &l).ok());
    }
    auto request = [](VaeTiling t) {
        Request r = tiling_request(t, 32, 8);
        r.cfg_scale = 1.0f;
        return r;
    };
    Result off, autod, on;
    Status st = l.session->generate(request(VaeTiling::off), Hooks(), &off);
    std::printf("  expected error: %s\n", st.message().c_str());
    CHECK_EQ(st.code(), SDGO_ERR_UNSUPPORTED);
    REQUIRE(l.session->generate(request(VaeTiling::automatic), Hooks(), &autod).ok());
    REQUIRE(l.session->generate(request(VaeTiling::on), Hooks(), &on).ok());
    CHECK(autod.rgb == on.rgb);
    l.session.reset();
    l.model.reset();
}

// A Vulkan device whose largest buffer (64 KiB) cannot hold some of the tiny
// model's weights: named, it fails with the sizes and what to try; under
// "auto" the model loads on the CPU instead and generates the CPU's image.
TEST(auto_backend_falls_back_to_the_cpu_at_load) {
    std::string why;
    if (vk::devices(&why).empty()) {
        std::printf("  no Vulkan device (%s): skipped\n", why.c_str());
        return;
    }
    vk::DeviceOptions opt;
    opt.max_allocation = 64 << 10;
    std::unique_ptr<Device> dev;
    REQUIRE(vk::make_device(0, opt, &dev).ok());
    ModelOptions o;
    o.model_path = testing::source_path(kModel);
    o.n_threads = 2;
    o.device_override = dev.get();
    o.backend = "vulkan";
    Loaded named;
    Status st = load(o, &named);
    std::printf("  expected error: %s\n", st.message().c_str());
    CHECK_EQ(st.code(), SDGO_ERR_OUT_OF_MEMORY);
    CHECK(st.message().find("--vae-tiling") != std::string::npos);
    o.backend = "auto";
    Loaded fallback;
    REQUIRE(load(o, &fallback).ok());
    CHECK_EQ(fallback.model->summary().backend, std::string("cpu"));
    Result res, want;
    REQUIRE(fallback.session->generate(base_request(), Hooks(), &res).ok());
    REQUIRE(get_model(kModel)->generate(base_request(), Hooks(), &want).ok());
    CHECK(res.rgb == want.rgb);
}
#endif

TEST(load_errors) {
    ModelOptions o;
    std::unique_ptr<Model> p;
    CHECK_EQ(Model::load(o, &p).code(), SDGO_ERR_INVALID_ARGUMENT);
    o.model_path = testing::source_path("testdata/pipeline/does_not_exist.safetensors");
    CHECK(!Model::load(o, &p).ok());
    CHECK(p == nullptr);
    o.model_path = testing::source_path(kModel);
    o.weight_type = "q4_0";  // conversions come as plans
    CHECK_EQ(Model::load(o, &p).code(), SDGO_ERR_INVALID_ARGUMENT);
    o.weight_type.clear();
    o.weight_plan = {{"no.such.tensor", DType::q8_0}};
    Status st = Model::load(o, &p);
    CHECK_EQ(st.code(), SDGO_ERR_INVALID_ARGUMENT);
    CHECK(st.message().find("no.such.tensor") != std::string::npos);
    o.weight_plan = {{"model.diffusion_model.out.2.bias", DType::q4_0}};  // 4 elements: not a whole block
    CHECK(!Model::load(o, &p).ok());
    o.weight_plan = {{"model.diffusion_model.out.2.weight", DType::q2_K}};  // a ggml type we cannot encode
    CHECK(!Model::load(o, &p).ok());
    o.weight_plan.clear();
    o.backend = "no-such-backend";
    st = Model::load(o, &p);
    CHECK_EQ(st.code(), SDGO_ERR_UNSUPPORTED);
    CHECK(st.message().find("cpu") != std::string::npos);  // lists what there is
    o.backend = "cpu";
    o.device = 3;
    CHECK_EQ(Model::load(o, &p).code(), SDGO_ERR_INVALID_ARGUMENT);
    o.device = 0;
    o.model_path = testing::source_path("testdata/models/sdxl_ldm.safetensors");
    st = Model::load(o, &p);
    // a file-format fixture whose label input does not fit SDXL's layout: named
    std::printf("  sdxl fixture: %s\n", st.message().c_str());
    CHECK_EQ(st.code(), SDGO_ERR_FORMAT);
    CHECK(st.message().find("label input") != std::string::npos);
    o.model_path = testing::source_path("testdata/models/sdxl_refiner_ldm.safetensors");
    st = Model::load(o, &p);
    std::printf("  sdxl refiner fixture: %s\n", st.message().c_str());
    CHECK_EQ(st.code(), SDGO_ERR_FORMAT);
    WeightPlan plan;
    CHECK(parse_weight_plan("a.b=q8_0\nc=f16\n\n", &plan).ok());
    CHECK(plan.size() == 2 && plan[0].first == "a.b" && plan[0].second == DType::q8_0 && plan[1].second == DType::f16);
    CHECK_EQ(parse_weight_plan("a.b", &plan).code(), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(parse_weight_plan("a=q9_9", &plan).code(), SDGO_ERR_INVALID_ARGUMENT);
}

TEST(prediction_override) {
    ModelOptions o;
    o.model_path = testing::source_path("testdata/pipeline/tiny_sd2_v");
    o.n_threads = 2;
    o.prediction = "epsilon";
    Loaded l;
    REQUIRE(load(o, &l).ok());
    CHECK_EQ(l.model->summary().prediction, std::string("epsilon"));
    Request r = base_request();
    r.compat = Compat::diffusers;
    Result eps, v;
    REQUIRE(l.session->generate(r, Hooks(), &eps).ok());
    REQUIRE(get_model("testdata/pipeline/tiny_sd2_v")->generate(r, Hooks(), &v).ok());
    CHECK(eps.latents != v.latents);
    o.prediction = "x0";
    std::unique_ptr<Model> m;
    CHECK_EQ(Model::load(o, &m).code(), SDGO_ERR_UNSUPPORTED);
}

// Every weight type at load, on every device: against diffusers' f32
// latents (the tolerance grows with the quantization), and other devices
// against the CPU with the same weights (the same dequantized values, so
// only the order of f32 sums differs: within 1e-4 relative).
TEST(weight_types_at_load) {
    Request r = base_request();
    r.compat = Compat::diffusers;
    const std::vector<float> want = ref_data("t2i_euler_s42_latent");
    struct Case {
        const char * type;
        double tol;
    };
    for (const Case & c : {Case{"f32", 1e-3}, Case{"f16", 1e-3}, Case{"q8_0", 0.05}, Case{"q4_0", 0.5}}) {
        std::vector<float> cpu_latents;
        for (Device * dev : backends::all_devices()) {
            ModelOptions o;
            o.model_path = testing::source_path(kModel);
            o.n_threads = 2;
            o.backend = dev->info().backend;
            o.device = dev->info().index;
            if (std::string(c.type) == "f32") o.weight_type = c.type;
            else o.weight_plan = simple_plan(o.model_path, c.type);
            Loaded l;
            Status st = load(o, &l);
            if (!st.ok()) std::fprintf(stderr, "%s: %s\n", c.type, st.message().c_str());
            REQUIRE(st.ok());
            Result res;
            st = l.session->generate(r, Hooks(), &res);
            if (!st.ok()) std::fprintf(stderr, "%s: %s\n", c.type, st.message().c_str());
            REQUIRE(st.ok());
            const double e = rel_err(res.latents, want);
            std::printf("  weights %-5s [%s:%d] latent rel err vs diffusers f32: %.3g", c.type,
                        dev->info().backend.c_str(), dev->info().index, e);
            CHECK(e < c.tol);
            // the tiny weights are f16 values: f32 and f16 are exact, the block types are not
            if (std::string(c.type) == "q8_0" || std::string(c.type) == "q4_0") CHECK(e > 1e-5);
            if (dev == cpu::device()) {
                cpu_latents = res.latents;
            } else {
                const double ec = rel_err(res.latents, cpu_latents);
                std::printf(", vs the CPU with the same weights: %.3g", ec);
                CHECK(ec < 1e-4);
            }
            std::printf("\n");
        }
    }
}

// ---- the C ABI (sdgo.h "Models, sessions and generation") ----

namespace {

sdgo_model * abi_load(const char * rel, std::string * err_out = nullptr) {
    sdgo_model_options * o = sdgo_model_options_new();
    if (!o) return nullptr;
    sdgo_model_options_set_str(o, SDGO_MODEL_PATH, testing::source_path(rel).c_str());
    sdgo_model_options_set_i64(o, SDGO_MODEL_THREADS, 2);
    char err[512] = {0};
    sdgo_model * m = nullptr;
    if (sdgo_model_load(o, &m, err, sizeof err) != SDGO_OK && err_out) *err_out = err;
    sdgo_model_options_free(o);
    return m;
}

sdgo_request * abi_request() {
    sdgo_request * r = sdgo_request_new();
    sdgo_request_set_str(r, SDGO_REQ_PROMPT, "a photo of a cat");
    sdgo_request_set_str(r, SDGO_REQ_NEGATIVE_PROMPT, "blurry");
    sdgo_request_set_str(r, SDGO_REQ_SAMPLER, "euler");
    sdgo_request_set_str(r, SDGO_REQ_COMPAT, "diffusers");
    sdgo_request_set_str(r, SDGO_REQ_RNG, "cpu");
    sdgo_request_set_i64(r, SDGO_REQ_WIDTH, 32);
    sdgo_request_set_i64(r, SDGO_REQ_HEIGHT, 32);
    sdgo_request_set_i64(r, SDGO_REQ_STEPS, 8);
    sdgo_request_set_i64(r, SDGO_REQ_SEED, 42);
    sdgo_request_set_f64(r, SDGO_REQ_CFG_SCALE, 7.0);
    return r;
}

}  // namespace

TEST(c_abi_load_options) {
    sdgo_model_options * o = sdgo_model_options_new();
    REQUIRE(o != nullptr);
    CHECK_EQ(sdgo_model_options_set_str(o, SDGO_MODEL_RNG, "nope"), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sdgo_model_options_set_str(o, SDGO_MODEL_PREDICTION, "x0"), SDGO_ERR_INVALID_ARGUMENT);
    CHECK(std::string(sdgo_model_options_error(o)).find("x0") != std::string::npos);
    CHECK_EQ(sdgo_model_options_set_str(o, SDGO_MODEL_WEIGHT_TYPE, "q4_0"), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sdgo_model_options_set_str(o, SDGO_MODEL_WEIGHT_PLAN, "no-equals-sign"), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sdgo_model_options_set_i64(o, SDGO_MODEL_PATH, 1), SDGO_ERR_INVALID_ARGUMENT);  // wrong kind of key
    CHECK_EQ(sdgo_model_options_set_str(o, SDGO_MODEL_THREADS, "2"), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sdgo_model_options_set_i64(o, SDGO_MODEL_THREADS, 100000), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sdgo_model_options_set_str(o, 999, "x"), SDGO_ERR_INVALID_ARGUMENT);
    CHECK(std::string(sdgo_model_options_error(o)).find("999") != std::string::npos);  // names the key
    char err[256] = {0};
    sdgo_model * m = nullptr;
    CHECK_EQ(sdgo_model_load(o, &m, err, sizeof err), SDGO_ERR_INVALID_ARGUMENT);  // no path
    CHECK(m == nullptr);
    CHECK_EQ(sdgo_model_load(nullptr, &m, err, sizeof err), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sdgo_model_options_set_str(o, SDGO_MODEL_PATH, testing::source_path(kModel).c_str()), SDGO_OK);
    CHECK_EQ(sdgo_model_options_set_str(o, SDGO_MODEL_BACKEND, "no-such-backend"), SDGO_OK);
    CHECK_EQ(sdgo_model_load(o, &m, err, sizeof err), SDGO_ERR_UNSUPPORTED);
    CHECK(std::string(err).find("no-such-backend") != std::string::npos);
    sdgo_model_options_free(o);
    sdgo_model_options_free(nullptr);

    char cat[4096];
    size_t need = 0;
    CHECK_EQ(sdgo_catalog_json(cat, 4, &need), SDGO_ERR_BUFFER_TOO_SMALL);
    REQUIRE(need > 4 && need <= sizeof cat);
    REQUIRE(sdgo_catalog_json(cat, sizeof cat, &need) == SDGO_OK);
    const std::string c(cat);
    CHECK(c.find("\"sampler\":\"euler_a\"") != std::string::npos);
    CHECK(c.find("\"dpm++2m\"") != std::string::npos);
    CHECK(c.find("\"karras\"") != std::string::npos);
    CHECK(c.find("\"steps\":20") != std::string::npos);
}

TEST(c_abi_model_session_generate) {
    std::string err;
    sdgo_model * m = abi_load(kModel, &err);
    if (!m) std::fprintf(stderr, "%s\n", err.c_str());
    REQUIRE(m != nullptr);

    char info[512];
    size_t needed = 0;
    CHECK_EQ(sdgo_model_info(m, info, 4, &needed), SDGO_ERR_BUFFER_TOO_SMALL);
    REQUIRE(needed > 4 && needed <= sizeof info);
    REQUIRE(sdgo_model_info(m, info, sizeof info, &needed) == SDGO_OK);
    CHECK(std::string(info).find("\"family\":\"sd1\"") != std::string::npos);
    CHECK(std::string(info).find("\"granularity\":8") != std::string::npos);
    CHECK(std::string(info).find("\"backend\":\"cpu\"") != std::string::npos);

    char serr[256] = {0};
    sdgo_session * s = nullptr;
    CHECK_EQ(sdgo_session_new(nullptr, 1, &s, serr, sizeof serr), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sdgo_session_new(m, 100000, &s, serr, sizeof serr), SDGO_ERR_INVALID_ARGUMENT);
    REQUIRE(sdgo_session_new(m, 0, &s, serr, sizeof serr) == SDGO_OK);
    // the session keeps the model alive after the caller's reference is gone
    sdgo_model_free(m);

    sdgo_request * r = sdgo_request_new();
    REQUIRE(r != nullptr);
    CHECK_EQ(sdgo_request_set_str(r, SDGO_REQ_SAMPLER, "bogus"), SDGO_ERR_INVALID_ARGUMENT);
    CHECK(std::string(sdgo_request_error(r)).find("bogus") != std::string::npos);
    CHECK_EQ(sdgo_request_set_i64(r, SDGO_REQ_PROMPT, 3), SDGO_ERR_INVALID_ARGUMENT);  // wrong kind of key
    CHECK_EQ(sdgo_request_set_i64(r, SDGO_REQ_WIDTH, int64_t(1) << 40), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sdgo_request_set_f64(r, SDGO_REQ_CFG_SCALE, std::nan("")), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sdgo_request_set_image(r, SDGO_REQ_MASK, (const uint8_t *)"x", 1, 1, 3), SDGO_ERR_INVALID_ARGUMENT);
    sdgo_request_free(r);
    r = abi_request();

    // a request whose output would be too large is refused before any work
    sdgo_result * res = nullptr;
    sdgo_request * big = abi_request();
    sdgo_request_set_i64(big, SDGO_REQ_WIDTH, 16384);
    sdgo_request_set_i64(big, SDGO_REQ_HEIGHT, 16384);
    sdgo_request_set_i64(big, SDGO_REQ_BATCH, 8);
    CHECK_EQ(sdgo_session_generate(s, big, nullptr, nullptr, nullptr, &res), SDGO_ERR_INVALID_ARGUMENT);
    CHECK(res == nullptr);
    CHECK(std::string(sdgo_session_error(s)).find("bytes") != std::string::npos);
    sdgo_request_free(big);

    // a cancel token triggered before the call stops it at once
    sdgo_cancel * c = sdgo_cancel_new();
    REQUIRE(c != nullptr);
    sdgo_cancel_trigger(c);
    CHECK_EQ(sdgo_session_generate(s, r, c, nullptr, nullptr, &res), SDGO_ERR_CANCELED);
    CHECK(std::string(sdgo_session_error(s)).find("cancel") != std::string::npos);
    sdgo_cancel_reset(c);

    struct Seen {
        int encode = 0, sample = 0, decode = 0, last_step = 0, stop_at = 0;
    } seen;
    auto cb = [](int32_t phase, int32_t step, int32_t total, int64_t ms, void * ud) -> int32_t {
        Seen * s = static_cast<Seen *>(ud);
        if (phase == SDGO_PHASE_ENCODE) s->encode++;
        if (phase == SDGO_PHASE_SAMPLE) {
            s->sample++;
            s->last_step = step;
            CHECK_EQ(total, 8);
        }
        if (phase == SDGO_PHASE_DECODE) s->decode++;
        CHECK(ms >= 0);
        return s->stop_at && s->last_step >= s->stop_at ? 1 : 0;
    };
    // a progress callback that returns non-zero stops the generation
    seen.stop_at = 3;
    CHECK_EQ(sdgo_session_generate(s, r, c, cb, &seen, &res), SDGO_ERR_CANCELED);
    CHECK_EQ(seen.last_step, 3);
    seen = Seen();
    REQUIRE(sdgo_session_generate(s, r, c, cb, &seen, &res) == SDGO_OK);
    REQUIRE(res != nullptr);
    CHECK_EQ(seen.encode, 1);
    CHECK_EQ(seen.sample, 8);
    CHECK_EQ(seen.last_step, 8);
    CHECK_EQ(seen.decode, 1);
    CHECK_EQ(std::string(sdgo_session_error(s)), std::string());
    CHECK_EQ(sdgo_result_count(res), 1);
    CHECK_EQ(sdgo_result_width(res), 32);
    CHECK_EQ(sdgo_result_height(res), 32);
    CHECK_EQ(sdgo_result_seed(res, 0), int64_t(42));
    CHECK_EQ(sdgo_result_seed(res, 5), int64_t(0));
    std::vector<uint8_t> out(32 * 32 * 3);
    CHECK_EQ(sdgo_result_image(res, 0, out.data(), 10, &needed), SDGO_ERR_BUFFER_TOO_SMALL);
    CHECK_EQ(needed, out.size());
    CHECK_EQ(sdgo_result_image(res, 1, out.data(), out.size(), &needed), SDGO_ERR_INVALID_ARGUMENT);
    REQUIRE(sdgo_result_image(res, 0, out.data(), out.size(), &needed) == SDGO_OK);
    // the same pixels as diffusers (8-bit rounding of its float image)
    const std::vector<float> want = ref_data("t2i_euler_s42_image");
    REQUIRE(want.size() == out.size());
    int worst = 0;
    for (size_t i = 0; i < out.size(); ++i)
        worst = std::max(worst, std::abs(int(out[i]) - int(std::lround(want[i] * 255.0f))));
    CHECK(worst <= 1);
    sdgo_result_free(res);

    // the engine reports each image's seed, wrapping at the top of the range
    sdgo_request_set_i64(r, SDGO_REQ_SEED, INT64_MAX);
    sdgo_request_set_i64(r, SDGO_REQ_BATCH, 2);
    sdgo_request_set_i64(r, SDGO_REQ_STEPS, 1);
    REQUIRE(sdgo_session_generate(s, r, nullptr, nullptr, nullptr, &res) == SDGO_OK);
    CHECK_EQ(sdgo_result_count(res), 2);
    CHECK_EQ(sdgo_result_seed(res, 0), INT64_MAX);
    CHECK_EQ(sdgo_result_seed(res, 1), INT64_MIN);
    sdgo_result_free(res);

    sdgo_cancel_free(c);
    sdgo_request_free(r);
    sdgo_session_free(s);
    sdgo_session_free(nullptr);
    sdgo_model_free(nullptr);
    sdgo_request_free(nullptr);
    sdgo_cancel_free(nullptr);
    sdgo_result_free(nullptr);
}

TEST(sessions_of_one_model_run_concurrently_and_match_serial_runs) {
    std::string err;
    sdgo_model * m = abi_load(kModel, &err);
    REQUIRE(m != nullptr);
    char e[256];
    sdgo_session *s1 = nullptr, *s2 = nullptr;
    REQUIRE(sdgo_session_new(m, 1, &s1, e, sizeof e) == SDGO_OK);
    REQUIRE(sdgo_session_new(m, 1, &s2, e, sizeof e) == SDGO_OK);
    sdgo_request * r1 = abi_request();
    sdgo_request * r2 = abi_request();
    sdgo_request_set_i64(r2, SDGO_REQ_SEED, 7);
    auto pixels = [](sdgo_session * s, const sdgo_request * r, std::vector<uint8_t> * px) {
        sdgo_result * res = nullptr;
        if (sdgo_session_generate(s, r, nullptr, nullptr, nullptr, &res) != SDGO_OK) return false;
        px->resize(32 * 32 * 3);
        const bool ok = sdgo_result_image(res, 0, px->data(), px->size(), nullptr) == SDGO_OK;
        sdgo_result_free(res);
        return ok;
    };
    std::vector<uint8_t> a_serial, b_serial, a_conc, b_conc;
    REQUIRE(pixels(s1, r1, &a_serial));
    REQUIRE(pixels(s1, r2, &b_serial));
    bool ok_a = false, ok_b = false;
    std::thread ta([&] { ok_a = pixels(s1, r1, &a_conc); });
    std::thread tb([&] { ok_b = pixels(s2, r2, &b_conc); });
    ta.join();
    tb.join();
    CHECK(ok_a && ok_b);
    CHECK(a_conc == a_serial);
    CHECK(b_conc == b_serial);
    CHECK(a_serial != b_serial);
    sdgo_request_free(r1);
    sdgo_request_free(r2);
    sdgo_session_free(s1);
    sdgo_session_free(s2);
    sdgo_model_free(m);
}
