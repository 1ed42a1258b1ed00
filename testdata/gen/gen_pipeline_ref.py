#!/usr/bin/env python3
"""Builds tiny random-weight Stable Diffusion 1.x pipelines as diffusers folders
(with a tiny 1000-entry CLIP BPE tokenizer cut from the real merges) and records
complete diffusers runs with a CPU torch.Generator for csrc/tests/test_pipeline.cpp.

Run with the project virtualenv:  /work/venv/bin/python testdata/gen/gen_pipeline_ref.py
Deterministic (fixed seeds, CPU, float32). Weights are rounded to float16 values
(stored as float32) so any weight type we load them as is exact.

Outputs (testdata/pipeline/):
  tiny_sd1/          StableDiffusionPipeline folder: 4-channel UNet (2 levels),
                     AutoencoderKL (3 levels, downscale 4), CLIPTextModel (77 positions,
                     vocab 1000), tokenizer/{vocab.json,merges.txt}, EulerDiscreteScheduler
  tiny_sd1_inpaint/  same, with a 9-channel inpainting UNet
  tiny_sd2_v/        SD 2.x-like: linear projections, per-level heads, gelu text encoder,
                     tokenizer padding with "!" (id 0), v-prediction
  ref.safetensors    reference runs (see main()): final latents [1,4,h,w] and decoded
                     images [1,H,W,3] in [0,1] (float, before 8-bit rounding) of txt2img
                     (Euler, Euler a, DPM-Solver++ 2M; SD1 and SD2-v), img2img and inpainting
                     (9-channel model and masked img2img on the regular one), plus the
                     init image and mask used
"""
import gzip
import json
import math
import os
import shutil

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from diffusers import (AutoencoderKL, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler,
                       StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline, StableDiffusionPipeline,
                       UNet2DConditionModel)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(ROOT, "testdata", "pipeline")

torch.set_grad_enabled(False)
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

VOCAB = 1000
W = H = 32  # image size; latents are 8x8


def randomize(model, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    for name, p in sorted(model.named_parameters()):
        if p.dim() == 1:
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
        else:
            fan_in = p[0].numel()
            p.copy_(scale * torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
    for _, p in model.named_parameters():
        p.copy_(p.half().float())
    return model


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_tokenizer(d, pad="<|endoftext|>"):
    os.makedirs(d, exist_ok=True)
    with gzip.open(os.path.join(ROOT, "third_party", "clip", "bpe_simple_vocab_16e6.txt.gz"), "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    n_merges = VOCAB - 512 - 2
    merges = [tuple(l.split()) for l in lines[1:1 + n_merges]]
    chars = bytes_to_unicode()
    vocab = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == VOCAB
    with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    with open(os.path.join(d, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": pad,
                   "unk_token": "<|endoftext|>"}, f)
    return CLIPTokenizer(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt"), pad_token=pad,
                         model_max_length=77)


def scheduler(prediction="epsilon"):
    return EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                  timestep_spacing="linspace", steps_offset=0, prediction_type=prediction)


def build(in_channels, seed, sd2=False):
    te = CLIPTextModel(CLIPTextConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, max_position_embeddings=77,
                                      hidden_act="gelu" if sd2 else "quick_gelu",
                                      bos_token_id=VOCAB - 2, eos_token_id=VOCAB - 1, pad_token_id=VOCAB - 1))
    randomize(te, seed)
    unet = UNet2DConditionModel(sample_size=8, in_channels=in_channels, out_channels=4, layers_per_block=1,
                                block_out_channels=(16, 32), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                                attention_head_dim=(2, 4) if sd2 else 8, use_linear_projection=sd2,
                                norm_num_groups=8)
    randomize(unet, seed + 1, scale=0.5)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16, 16),
                        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                        layers_per_block=1, norm_num_groups=4, sample_size=32)
    randomize(vae, seed + 2)
    return te.eval(), unet.eval(), vae.eval()


def save_pipe(name, te, unet, vae, prediction="epsilon", pad="<|endoftext|>"):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    tok = write_tokenizer(os.path.join(OUT, "_tok"), pad)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet, scheduler=scheduler(prediction),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(d, safe_serialization=True)
    # the slow tokenizer's files (what our loader reads)
    for fn in ("vocab.json", "merges.txt", "special_tokens_map.json"):
        shutil.copy(os.path.join(OUT, "_tok", fn), os.path.join(d, "tokenizer", fn))
    shutil.rmtree(os.path.join(OUT, "_tok"))
    return pipe


def init_image():
    y, x = np.mgrid[0:H, 0:W]
    img = np.stack([(x * 8) % 256, (y * 8) % 256, ((x + y) * 4) % 256], axis=-1).astype(np.uint8)
    return img


def main():
    os.makedirs(OUT, exist_ok=True)
    te, unet, vae = build(4, 1234)
    pipe = save_pipe("tiny_sd1", te, unet, vae)
    te9, unet9, vae9 = build(9, 1234)
    pipe9 = save_pipe("tiny_sd1_inpaint", te9, unet9, vae9)
    # SD 2.x-like: linear projections, per-level heads, gelu text encoder padded
    # with "!" (id 0), v-prediction
    te2, unet2, vae2 = build(4, 4321, sd2=True)
    pipe2 = save_pipe("tiny_sd2_v", te2, unet2, vae2, prediction="v_prediction", pad="!")

    ref = {}
    prompt, negative = "a photo of a cat", "blurry"
    for tag, sched_cls, seed, steps in [("t2i_euler_s42", EulerDiscreteScheduler, 42, 8),
                                        ("t2i_euler_s7", EulerDiscreteScheduler, 7, 8),
                                        ("t2i_euler_a_s42", EulerAncestralDiscreteScheduler, 42, 8),
                                        ("t2i_dpmpp2m_s42", DPMSolverMultistepScheduler, 42, 20)]:
        pipe.scheduler = sched_cls.from_config(scheduler().config)
        out = pipe(prompt, negative_prompt=negative, height=H, width=W, num_inference_steps=steps, guidance_scale=7.0,
                   generator=torch.Generator("cpu").manual_seed(seed), output_type="latent")
        lat = out.images
        img = vae.decode(lat / vae.config.scaling_factor).sample
        img = (img / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1)
        ref[tag + "_latent"] = lat.contiguous()
        ref[tag + "_image"] = img.contiguous()

    out = pipe2(prompt, negative_prompt=negative, height=H, width=W, num_inference_steps=8, guidance_scale=7.0,
                generator=torch.Generator("cpu").manual_seed(42), output_type="latent")
    lat = out.images
    img = (vae2.decode(lat / vae2.config.scaling_factor).sample / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1)
    ref["sd2v_t2i_euler_s42_latent"] = lat.contiguous()
    ref["sd2v_t2i_euler_s42_image"] = img.contiguous()

    # img2img (diffusers step mapping: floor(steps * strength) steps)
    init = init_image()
    ipipe = StableDiffusionImg2ImgPipeline(vae=vae, text_encoder=te, tokenizer=pipe.tokenizer, unet=unet,
                                           scheduler=scheduler(), safety_checker=None, feature_extractor=None,
                                           requires_safety_checker=False)
    out = ipipe(prompt, image=Image.fromarray(init), strength=0.6, negative_prompt=negative, num_inference_steps=10,
                guidance_scale=7.0, generator=torch.Generator("cpu").manual_seed(42), output_type="latent")
    lat = out.images
    img = (vae.decode(lat / vae.config.scaling_factor).sample / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1)
    ref["i2i_euler_s42_latent"] = lat.contiguous()
    ref["i2i_euler_s42_image"] = img.contiguous()
    ref["init_image"] = torch.from_numpy(init.astype(np.float32))

    # inpainting (strength 1): the 9-channel model, and masked img2img with latent
    # blending on the regular model; mask = right half
    mask = np.zeros((H, W), np.uint8)
    mask[:, W // 2:] = 255
    for tag, p in [("inp9_euler_s42", pipe9), ("inp4_euler_s42", pipe)]:
        ipipe = StableDiffusionInpaintPipeline(vae=p.vae, text_encoder=p.text_encoder, tokenizer=p.tokenizer,
                                               unet=p.unet, scheduler=scheduler(), safety_checker=None,
                                               feature_extractor=None, requires_safety_checker=False)
        out = ipipe(prompt, image=Image.fromarray(init), mask_image=Image.fromarray(mask), strength=1.0, height=H,
                    width=W, negative_prompt=negative, num_inference_steps=8, guidance_scale=7.0,
                    generator=torch.Generator("cpu").manual_seed(42), output_type="latent")
        lat = out.images
        img = (p.vae.decode(lat / p.vae.config.scaling_factor).sample / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1)
        ref[tag + "_latent"] = lat.contiguous()
        ref[tag + "_image"] = img.contiguous()
    ref["mask"] = torch.from_numpy(mask.astype(np.float32))

    save_file(ref, os.path.join(OUT, "ref.safetensors"))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
