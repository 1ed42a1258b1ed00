#!/usr/bin/env python3
"""Builds a tiny random-weight SDXL pipeline as a diffusers folder and records
diffusers runs of it (CPU torch.Generator) for csrc/tests/test_pipeline.cpp.

Run with the project virtualenv:  /work/venv/bin/python testdata/gen/gen_sdxl_ref.py
Recorded with torch 2.15.0, diffusers 0.42.1, transformers 5.25.0. Deterministic
(fixed seeds, CPU, float32); weights are rounded to float16 values (stored as
float32). Shares the tiny tokenizer and the weight randomizer of
gen_pipeline_ref.py.

Outputs (testdata/pipeline/):
  tiny_sdxl/          StableDiffusionXLPipeline folder: text_encoder (CLIPTextModel,
                      width 32, quick_gelu), text_encoder_2 (CLIPTextModelWithProjection,
                      width 48, gelu, projection 24), tokenizer (pads with the end token)
                      and tokenizer_2 (pads with "!"), a U-Net with the "text_time"
                      label embedding (level 0 without attention, 2 transformer layers
                      on level 1, context 32 + 48 = 80), an AutoencoderKL with SDXL's
                      scaling factor 0.13025, EulerDiscreteScheduler (linspace spacing)
  sdxl_ref.safetensors
      xl_cond_context / xl_cond_pooled, xl_uncond_context / xl_uncond_pooled:
          diffusers' encode_prompt for "a photo of a cat" / "blurry"
      xl_t2i_euler_s42_{latent,image}: txt2img, 8 Euler steps, CFG 7, seed 42, 32x32
      xl_t2i_noneg_s42_{latent,image}: the same without a negative prompt (diffusers then
          uses zeros for the negative side: force_zeros_for_empty_prompt)
      xl_t2i_micro_s42_{latent,image}: the first run with original_size (96, 64),
          crops_coords_top_left (8, 4) and target_size (40, 24) (height, width)
      xl_i2i_euler_s42_{latent,image}: img2img (StableDiffusionXLImg2ImgPipeline) of
          gen_pipeline_ref's init image, strength 0.6, 10 steps
      xl_inp4_euler_s42_{latent,image}: masked img2img (StableDiffusionXLInpaintPipeline on
          the 4-channel U-Net), the right half repainted, strength 1, 8 steps
      xl_inp4_eulera_s42_{latent,image}: the same with Euler a
  tiny_sdxl_refiner/   StableDiffusionXLImg2ImgPipeline folder of a refiner: the base's bigG
                      text encoder, tokenizer_2 and VAE, a refiner-shaped U-Net (attention on
                      the middle level only, label = pooled + 4 sizes + aesthetic score),
                      requires_aesthetics_score, force_zeros_for_empty_prompt false
      xlr_i2i_euler_s42_{latent,image}: the refiner's img2img, strength 0.6, 10 steps,
          aesthetic scores 6 / 2.5
      xlr_i2i_aes_s42_{latent,image}: the same without a negative prompt (encoded, not
          zeroed), aesthetic scores 7.5 / 1, original_size (48, 40), crop (4, 8)
  tiny_sdxl_inpaint/   the base's folder with a 9-channel inpainting U-Net
      xl_inp9_euler_s42_{latent,image}: StableDiffusionXLInpaintPipeline on it, the right
          half repainted, strength 1, 8 steps
      xl_t2i_leading_s42_{latent,image}: the first run with the real SDXL scheduler config
          (EulerDiscreteScheduler, timestep_spacing "leading", steps_offset 1)
      xl_turbo_trailing_s42_{latent,image}: as SDXL-Turbo runs: EulerAncestralDiscreteScheduler
          with "trailing" spacing (steps_offset 1), 2 steps, guidance_scale 0, no negative prompt
      xl_t2i_clipskip1_s42_{latent,image}: the first run with clip_skip=1 (the positive prompt
          from hidden_states[-3] of both encoders; diffusers leaves the negative at [-2])
      xl_t2i_negsize_s42_{latent,image}: the micro run with the negative side's own sizes:
          negative_original_size (64, 48), crop (2, 6), target (16, 24)
      xl_t2i_batch2_eulera_s42_{latent,image}: two images from one generator
          (num_images_per_prompt 2), Euler a, 8 steps: latents [2,4,8,8], images [2,32,32,3]
      xl_2stage_s42_{latent,image}: the base with denoising_end 0.75 handing its latents to
          the refiner with denoising_start 0.75 (8 steps, CFG 7, seed 42)
      latents [1,4,8,8] (unscaled); images [1,32,32,3] in [0,1] before 8-bit rounding
"""
import os
import shutil

import torch
from safetensors.torch import save_file

import numpy as np
from PIL import Image

from diffusers import (AutoencoderKL, EulerAncestralDiscreteScheduler, EulerDiscreteScheduler,
                       StableDiffusionXLImg2ImgPipeline, StableDiffusionXLInpaintPipeline,
                       StableDiffusionXLPipeline, UNet2DConditionModel)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from gen_pipeline_ref import OUT, VOCAB, H, W, init_image, randomize, scheduler, write_tokenizer


def build_unet(seed, in_channels=4):
    unet = UNet2DConditionModel(sample_size=8, in_channels=in_channels, out_channels=4, layers_per_block=1,
                                block_out_channels=(16, 32), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=80,
                                transformer_layers_per_block=(1, 2), attention_head_dim=(2, 4),
                                use_linear_projection=True, addition_embed_type="text_time",
                                addition_time_embed_dim=8, projection_class_embeddings_input_dim=24 + 6 * 8,
                                norm_num_groups=8)
    randomize(unet, seed, scale=0.5)
    return unet.eval()


def build(seed):
    te1 = CLIPTextModel(CLIPTextConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                       num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu",
                                       bos_token_id=VOCAB - 2, eos_token_id=VOCAB - 1, pad_token_id=VOCAB - 1))
    randomize(te1, seed)
    te2 = CLIPTextModelWithProjection(CLIPTextConfig(vocab_size=VOCAB, hidden_size=48, intermediate_size=96,
                                                     num_hidden_layers=3, num_attention_heads=4,
                                                     max_position_embeddings=77, hidden_act="gelu",
                                                     projection_dim=24, bos_token_id=VOCAB - 2,
                                                     eos_token_id=VOCAB - 1, pad_token_id=0))
    randomize(te2, seed + 1)
    unet = build_unet(seed + 2)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16, 16),
                        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                        layers_per_block=1, norm_num_groups=4, sample_size=32, scaling_factor=0.13025)
    randomize(vae, seed + 3)
    return te1.eval(), te2.eval(), unet, vae.eval()


def build_refiner(seed):
    # The refiner's shape: no attention on the first and the deepest level,
    # context = bigG's width, label = pooled + four sizes + the aesthetic score.
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(16, 32, 32),
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=48,
                                transformer_layers_per_block=(1, 2, 1), attention_head_dim=(2, 4, 4),
                                use_linear_projection=True, addition_embed_type="text_time",
                                addition_time_embed_dim=8, projection_class_embeddings_input_dim=24 + 5 * 8,
                                norm_num_groups=8)
    randomize(unet, seed, scale=0.5)
    return unet.eval()


def main():
    te1, te2, unet, vae = build(2024)
    d = os.path.join(OUT, "tiny_sdxl")
    shutil.rmtree(d, ignore_errors=True)
    tok1 = write_tokenizer(os.path.join(OUT, "_tok1"))
    tok2 = write_tokenizer(os.path.join(OUT, "_tok2"), pad="!")
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=te1, text_encoder_2=te2, tokenizer=tok1, tokenizer_2=tok2,
                                     unet=unet, scheduler=scheduler(), force_zeros_for_empty_prompt=True,
                                     add_watermarker=False)
    pipe.save_pretrained(d, safe_serialization=True)
    for sub, src in (("tokenizer", "_tok1"), ("tokenizer_2", "_tok2")):
        for fn in ("vocab.json", "merges.txt", "special_tokens_map.json"):
            shutil.copy(os.path.join(OUT, src, fn), os.path.join(d, sub, fn))
        shutil.rmtree(os.path.join(OUT, src))

    ref = {}
    prompt, negative = "a photo of a cat", "blurry"
    pe, npe, pp, npp = pipe.encode_prompt(prompt, device="cpu", num_images_per_prompt=1,
                                          do_classifier_free_guidance=True, negative_prompt=negative)
    ref["xl_cond_context"] = pe.contiguous()
    ref["xl_cond_pooled"] = pp.contiguous()
    ref["xl_uncond_context"] = npe.contiguous()
    ref["xl_uncond_pooled"] = npp.contiguous()

    def run(tag, **kw):
        out = pipe(prompt, height=H, width=W, num_inference_steps=8, guidance_scale=7.0,
                   generator=torch.Generator("cpu").manual_seed(42), output_type="latent", **kw)
        lat = out.images
        img = (vae.decode(lat / vae.config.scaling_factor).sample / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1)
        ref[tag + "_latent"] = lat.contiguous()
        ref[tag + "_image"] = img.contiguous()

    run("xl_t2i_euler_s42", negative_prompt=negative)
    run("xl_t2i_noneg_s42")
    run("xl_t2i_clipskip1_s42", negative_prompt=negative, clip_skip=1)
    run("xl_t2i_negsize_s42", negative_prompt=negative, original_size=(96, 64), crops_coords_top_left=(8, 4),
        target_size=(40, 24), negative_original_size=(64, 48), negative_crops_coords_top_left=(2, 6),
        negative_target_size=(16, 24))
    run("xl_t2i_micro_s42", negative_prompt=negative, original_size=(96, 64), crops_coords_top_left=(8, 4),
        target_size=(40, 24))

    parts = dict(vae=vae, text_encoder=te1, text_encoder_2=te2, tokenizer=pipe.tokenizer, tokenizer_2=pipe.tokenizer_2,
                 unet=unet, scheduler=scheduler(), force_zeros_for_empty_prompt=True, add_watermarker=False)
    init = Image.fromarray(init_image())

    def decoded(tag, lat):
        img = (vae.decode(lat / vae.config.scaling_factor).sample / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1)
        ref[tag + "_latent"] = lat.contiguous()
        ref[tag + "_image"] = img.contiguous()

    i2i = StableDiffusionXLImg2ImgPipeline(requires_aesthetics_score=False, **parts)
    out = i2i(prompt, image=init, strength=0.6, negative_prompt=negative, num_inference_steps=10, guidance_scale=7.0,
              generator=torch.Generator("cpu").manual_seed(42), output_type="latent")
    decoded("xl_i2i_euler_s42", out.images)
    mask = np.zeros((H, W), np.uint8)
    mask[:, W // 2:] = 255
    inp = StableDiffusionXLInpaintPipeline(requires_aesthetics_score=False, **parts)
    out = inp(prompt, image=init, mask_image=Image.fromarray(mask), strength=1.0, height=H, width=W,
              negative_prompt=negative, num_inference_steps=8, guidance_scale=7.0,
              generator=torch.Generator("cpu").manual_seed(42), output_type="latent")
    decoded("xl_inp4_euler_s42", out.images)
    # Euler a: the posterior sample of the masked image that the pipeline draws
    # (and does not use on a 4-channel U-Net) shifts every later noise draw
    inp.scheduler = EulerAncestralDiscreteScheduler.from_config(scheduler().config)
    out = inp(prompt, image=init, mask_image=Image.fromarray(mask), strength=1.0, height=H, width=W,
              negative_prompt=negative, num_inference_steps=8, guidance_scale=7.0,
              generator=torch.Generator("cpu").manual_seed(42), output_type="latent")
    decoded("xl_inp4_eulera_s42", out.images)

    # a 9-channel inpainting U-Net with the base's other components
    di = os.path.join(OUT, "tiny_sdxl_inpaint")
    shutil.rmtree(di, ignore_errors=True)
    inp9 = StableDiffusionXLInpaintPipeline(requires_aesthetics_score=False,
                                            **dict(parts, unet=build_unet(2040, in_channels=9)))
    inp9.save_pretrained(di, safe_serialization=True)
    for sub in ("tokenizer", "tokenizer_2"):
        for fn in ("vocab.json", "merges.txt", "special_tokens_map.json"):
            shutil.copy(os.path.join(d, sub, fn), os.path.join(di, sub, fn))
    out = inp9(prompt, image=init, mask_image=Image.fromarray(mask), strength=1.0, height=H, width=W,
               negative_prompt=negative, num_inference_steps=8, guidance_scale=7.0,
               generator=torch.Generator("cpu").manual_seed(42), output_type="latent")
    decoded("xl_inp9_euler_s42", out.images)

    # the refiner, on its own and after the base
    unet_r = build_refiner(2031)
    dr = os.path.join(OUT, "tiny_sdxl_refiner")
    shutil.rmtree(dr, ignore_errors=True)
    refiner = StableDiffusionXLImg2ImgPipeline(vae=vae, text_encoder=None, text_encoder_2=te2, tokenizer=None,
                                               tokenizer_2=pipe.tokenizer_2, unet=unet_r, scheduler=scheduler(),
                                               requires_aesthetics_score=True, force_zeros_for_empty_prompt=False,
                                               add_watermarker=False)
    refiner.save_pretrained(dr, safe_serialization=True)
    for fn in ("vocab.json", "merges.txt", "special_tokens_map.json"):
        shutil.copy(os.path.join(d, "tokenizer_2", fn), os.path.join(dr, "tokenizer_2", fn))
    out = refiner(prompt, image=init, strength=0.6, negative_prompt=negative, num_inference_steps=10,
                  guidance_scale=7.0, generator=torch.Generator("cpu").manual_seed(42), output_type="latent")
    decoded("xlr_i2i_euler_s42", out.images)
    out = refiner(prompt, image=init, strength=0.6, num_inference_steps=10, guidance_scale=7.0,
                  aesthetic_score=7.5, negative_aesthetic_score=1.0, original_size=(48, 40),
                  crops_coords_top_left=(4, 8), generator=torch.Generator("cpu").manual_seed(42),
                  output_type="latent")
    decoded("xlr_i2i_aes_s42", out.images)
    g = torch.Generator("cpu").manual_seed(42)
    lat = pipe(prompt, negative_prompt=negative, height=H, width=W, num_inference_steps=8, guidance_scale=7.0,
               denoising_end=0.75, generator=g, output_type="latent").images
    out = refiner(prompt, image=lat, negative_prompt=negative, num_inference_steps=8, guidance_scale=7.0,
                  denoising_start=0.75, generator=g, output_type="latent")
    decoded("xl_2stage_s42", out.images)

    # the scheduler configs of real folders (the tests write them into a copy of tiny_sdxl)
    base_sched = pipe.scheduler
    pipe.scheduler = EulerDiscreteScheduler.from_config(scheduler().config, timestep_spacing="leading",
                                                        steps_offset=1)
    run("xl_t2i_leading_s42", negative_prompt=negative)
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(scheduler().config, timestep_spacing="trailing",
                                                                 steps_offset=1)
    out = pipe(prompt, height=H, width=W, num_inference_steps=2, guidance_scale=0.0,
               generator=torch.Generator("cpu").manual_seed(42), output_type="latent")
    decoded("xl_turbo_trailing_s42", out.images)
    # a batch of two drawn from one generator (num_images_per_prompt), Euler a
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(scheduler().config)
    out = pipe(prompt, negative_prompt=negative, height=H, width=W, num_inference_steps=8, guidance_scale=7.0,
               num_images_per_prompt=2, generator=torch.Generator("cpu").manual_seed(42), output_type="latent")
    decoded("xl_t2i_batch2_eulera_s42", out.images)
    pipe.scheduler = base_sched
    save_file(ref, os.path.join(OUT, "sdxl_ref.safetensors"))
    print("wrote", d)


if __name__ == "__main__":
    main()
