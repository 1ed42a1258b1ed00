#include "pipeline/request.h"

#include <cmath>

#include "sampling/rng.h"
#include "types/types.h"

namespace sdgo::pipeline {

namespace {

std::string quoted_list(const std::vector<std::string> & v) {
    std::string o = "[";
    for (size_t i = 0; i < v.size(); i++) o += (i ? ",\"" : "\"") + v[i] + "\"";
    return o + "]";
}

}  // namespace

Status parse_compat(const std::string & name, Compat * out) {
    if (name.empty() || name == "a1111") {
        *out = Compat::a1111;
        return Status();
    }
    if (name == "diffusers") {
        *out = Compat::diffusers;
        return Status();
    }
    return error(SDGO_ERR_INVALID_ARGUMENT, "unknown compat mode \"%s\" (a1111, diffusers)", name.c_str());
}

const char * compat_name(Compat c) { return c == Compat::diffusers ? "diffusers" : "a1111"; }

Status parse_vae_tiling(const std::string & name, VaeTiling * out) {
    if (name.empty() || name == "auto") {
        *out = VaeTiling::automatic;
        return Status();
    }
    if (name == "on" || name == "off") {
        *out = name == "on" ? VaeTiling::on : VaeTiling::off;
        return Status();
    }
    return error(SDGO_ERR_INVALID_ARGUMENT, "unknown VAE tiling \"%s\" (auto, on, off)", name.c_str());
}

const char * vae_tiling_name(VaeTiling t) {
    return t == VaeTiling::on ? "on" : t == VaeTiling::off ? "off" : "auto";
}

Status validate_request(const Request & r) {
    if (r.width <= 0 || r.height <= 0)
        return error(SDGO_ERR_INVALID_ARGUMENT, "image size %dx%d must be positive", r.width, r.height);
    if (r.width > kMaxImageSide || r.height > kMaxImageSide)
        return error(SDGO_ERR_INVALID_ARGUMENT, "image size %dx%d is too large (max %d)", r.width, r.height,
                     kMaxImageSide);
    if (r.steps < 1 || r.steps > kMaxSteps)
        return error(SDGO_ERR_INVALID_ARGUMENT, "steps must be between 1 and %d, got %d", kMaxSteps, r.steps);
    if (r.batch < 1 || r.batch > kMaxBatch)
        return error(SDGO_ERR_INVALID_ARGUMENT, "batch count must be between 1 and %d, got %d", kMaxBatch, r.batch);
    const uint64_t bytes = uint64_t(r.width) * uint64_t(r.height) * 3 * uint64_t(r.batch);
    if (bytes > kMaxOutputBytes)
        return error(SDGO_ERR_INVALID_ARGUMENT,
                     "%d images of %dx%d would take %llu bytes of output (at most %llu): use a smaller batch or size",
                     r.batch, r.width, r.height, (unsigned long long)bytes, (unsigned long long)kMaxOutputBytes);
    if (!std::isfinite(r.cfg_scale)) return error(SDGO_ERR_INVALID_ARGUMENT, "cfg scale must be finite");
    if (!std::isfinite(r.eta)) return error(SDGO_ERR_INVALID_ARGUMENT, "eta must be finite");
    if (!std::isfinite(r.aesthetic_score) || !std::isfinite(r.negative_aesthetic_score))
        return error(SDGO_ERR_INVALID_ARGUMENT, "aesthetic scores must be finite");
    if (!(r.refiner_switch < 0.0f || (r.refiner_switch > 0.0f && r.refiner_switch <= 1.0f)))
        return error(SDGO_ERR_INVALID_ARGUMENT, "refiner switch must be in (0, 1], got %g", double(r.refiner_switch));
    if (r.clip_skip < 0) return error(SDGO_ERR_INVALID_ARGUMENT, "clip skip must be >= 0, got %d", r.clip_skip);
    if (r.rng < -1 || r.rng > 1) return error(SDGO_ERR_INVALID_ARGUMENT, "unknown rng %d", r.rng);
    if (r.vae_tile_size < 32 || r.vae_tile_size > kMaxImageSide || r.vae_tile_size % 8 != 0)
        return error(SDGO_ERR_INVALID_ARGUMENT, "VAE tile size must be a multiple of 8 from 32 to %d, got %d",
                     kMaxImageSide, r.vae_tile_size);
    if (r.vae_tile_overlap < 0 || r.vae_tile_overlap > r.vae_tile_size / 2 || r.vae_tile_overlap % 8 != 0)
        return error(SDGO_ERR_INVALID_ARGUMENT,
                     "VAE tile overlap must be a multiple of 8 from 0 to half the tile size (%d), got %d",
                     r.vae_tile_size / 2, r.vae_tile_overlap);
    const int sizes[6] = {r.original_width, r.original_height, r.crop_left, r.crop_top, r.target_width,
                          r.target_height};
    for (int v : sizes)
        if (v < 0 || v > kMaxImageSide)
            return error(SDGO_ERR_INVALID_ARGUMENT,
                         "SDXL original size, crop and target size must be from 0 to %d, got %d", kMaxImageSide, v);
    const int negative_sizes[6] = {r.negative_original_width, r.negative_original_height, r.negative_crop_left,
                                   r.negative_crop_top,       r.negative_target_width,    r.negative_target_height};
    for (int v : negative_sizes)
        if (v < -1 || v > kMaxImageSide)
            return error(SDGO_ERR_INVALID_ARGUMENT,
                         "SDXL negative original size, crop and target size must be from 0 to %d (-1: the positive "
                         "side's), got %d",
                         kMaxImageSide, v);
    const bool has_init = !r.init_rgb.empty();
    if (has_init) {
        if (r.init_width != r.width || r.init_height != r.height)
            return error(SDGO_ERR_INVALID_ARGUMENT, "init image is %dx%d but the output is %dx%d", r.init_width,
                         r.init_height, r.width, r.height);
        if (r.init_rgb.size() != size_t(r.width) * r.height * 3)
            return error(SDGO_ERR_INVALID_ARGUMENT, "init image buffer has %zu bytes, expected %zu", r.init_rgb.size(),
                         size_t(r.width) * r.height * 3);
        if (!(r.strength > 0.0f && r.strength <= 1.0f))
            return error(SDGO_ERR_INVALID_ARGUMENT, "strength must be in (0, 1], got %g", double(r.strength));
    }
    if (!r.mask.empty()) {
        if (!has_init) return error(SDGO_ERR_INVALID_ARGUMENT, "a mask needs an init image");
        if ((r.mask_width && r.mask_width != r.width) || (r.mask_height && r.mask_height != r.height))
            return error(SDGO_ERR_INVALID_ARGUMENT, "mask is %dx%d but the output is %dx%d", r.mask_width,
                         r.mask_height, r.width, r.height);
        if (r.mask.size() != size_t(r.width) * r.height)
            return error(SDGO_ERR_INVALID_ARGUMENT, "mask has %zu pixels, expected %dx%d", r.mask.size(), r.width,
                         r.height);
    }
    return Status();
}

std::string catalog_json() {
    const Request d;
    std::vector<std::string> samplers, schedulers, weight_types = {"f32"};
    for (sampling::SamplerType s : sampling::sampler_types()) samplers.push_back(sampling::sampler_name(s));
    for (sampling::Scheduler s : sampling::scheduler_types()) schedulers.push_back(sampling::scheduler_name(s));
    for (DType t : {DType::f16, DType::bf16, DType::q8_0, DType::q5_0, DType::q5_1, DType::q4_0, DType::q4_1})
        weight_types.push_back(dtype_name(t));
    std::string o = "{\"request\":{";
    o += strprintf("\"width\":%d,\"height\":%d,\"steps\":%d,\"cfg_scale\":%g,\"seed\":%lld,\"batch\":%d,", d.width,
                   d.height, d.steps, double(d.cfg_scale), (long long)d.seed, d.batch);
    o += strprintf("\"sampler\":\"%s\",\"scheduler\":\"%s\",\"strength\":%g,\"clip_skip\":%d,\"rng\":\"%s\",",
                   sampling::sampler_name(d.sampler), sampling::scheduler_name(d.scheduler), double(d.strength),
                   d.clip_skip, sampling::rng_type_name(sampling::RngType::Cuda));
    o += strprintf("\"compat\":\"%s\",\"vae_tiling\":\"%s\",\"vae_tile_size\":%d,\"vae_tile_overlap\":%d,",
                   compat_name(d.compat), vae_tiling_name(d.vae_tiling), d.vae_tile_size, d.vae_tile_overlap);
    o += strprintf("\"aesthetic_score\":%g,\"negative_aesthetic_score\":%g,\"refiner_switch\":%g},",
                   double(d.aesthetic_score), double(d.negative_aesthetic_score), double(kDefaultRefinerSwitch));
    o += "\"samplers\":" + quoted_list(samplers) + ",\"schedulers\":" + quoted_list(schedulers);
    o += ",\"rngs\":" + quoted_list({sampling::rng_type_name(sampling::RngType::Cuda),
                                    sampling::rng_type_name(sampling::RngType::Cpu)});
    o += ",\"compat\":" + quoted_list({compat_name(Compat::a1111), compat_name(Compat::diffusers)});
    o += ",\"vae_tiling\":" + quoted_list({vae_tiling_name(VaeTiling::automatic), vae_tiling_name(VaeTiling::on),
                                          vae_tiling_name(VaeTiling::off)});
    o += ",\"weight_types\":" + quoted_list(weight_types);
    o += strprintf(",\"limits\":{\"max_side\":%d,\"max_steps\":%d,\"max_batch\":%d,\"max_output_bytes\":%llu}}",
                   kMaxImageSide, kMaxSteps, kMaxBatch, (unsigned long long)kMaxOutputBytes);
    return o;
}

}  // namespace sdgo::pipeline
