#!/usr/bin/env python3
"""Builds tiny random-weight SD-architecture networks with diffusers/transformers,
saves their weights as LDM-named single-file safetensors (the names a real
single-file checkpoint uses) plus the diffusers/transformers config.json files,
and records reference inputs/outputs for csrc/tests/test_models.cpp.

Run with the project virtualenv:  /work/venv/bin/python testdata/gen/gen_model_ref.py
Everything is deterministic (fixed seeds, CPU, float32). Weights are rounded to
float16 and stored as F16 (small files); the references are computed in float32
from exactly those values.

Outputs (testdata/ref/):
  tiny_sd1.safetensors      SD1-like: UNet (conv proj_in/out, 8 heads), VAE, CLIP-L-like
                            text encoder (quick_gelu, HF names under
                            cond_stage_model.transformer.text_model.)
  tiny_sd2.safetensors      SD2-like: 9-channel inpainting UNet (linear proj, fixed head dim,
                            transformer depth 2), OpenCLIP-named text encoder (gelu, fused
                            in_proj, under cond_stage_model.model.)
  tiny_sd1_ref.safetensors, tiny_sd2_ref.safetensors   inputs and outputs
  tiny_sdxl.safetensors     SDXL-like U-Net (level 0 without attention, depth 2, label embedding)
  tiny_sd{1,2}/{unet,vae,text_encoder}/config.json     the diffusers/transformers configs
  tiny_sdxl/unet/           the SDXL-like U-Net as a diffusers folder (config + f16 weights)
  fullsize_shapes.json      names and shapes of full-size SD 1.5 / SD 2.1 networks (no data)
"""
import json
import math
import os
import sys

import torch
from safetensors.torch import save_file

from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "ref"))

torch.set_grad_enabled(False)
torch.use_deterministic_algorithms(True)


def randomize(model, seed):
    """Replace the default init by random values everywhere (norm affines and
    biases included) so every parameter influences the output."""
    g = torch.Generator().manual_seed(seed)
    for name, p in sorted(model.named_parameters()):
        if p.dim() == 1:
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
        else:
            fan_in = p[0].numel()
            p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
    # Weights are stored as f16: make the f32 model use exactly those values.
    for _, p in model.named_parameters():
        p.copy_(p.half().float())
    return model


# ---------------------------------------------------------------- naming --
def unet_to_ldm(sd, n_levels, L, attn_down, attn_up):
    """diffusers UNet2DConditionModel keys -> LDM keys (model.diffusion_model.*)."""
    out = {}
    res_map = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
               "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}

    def res_name(rest):
        head, tail = rest.split(".", 1)
        return res_map[head] + "." + tail

    for k, v in sd.items():
        p = k.split(".")
        if k.startswith("add_embedding.linear_1."):
            n = "label_emb.0.0." + p[-1]
        elif k.startswith("add_embedding.linear_2."):
            n = "label_emb.0.2." + p[-1]
        elif k.startswith("time_embedding.linear_1."):
            n = "time_embed.0." + p[-1]
        elif k.startswith("time_embedding.linear_2."):
            n = "time_embed.2." + p[-1]
        elif k.startswith("conv_in."):
            n = "input_blocks.0.0." + p[-1]
        elif k.startswith("conv_norm_out."):
            n = "out.0." + p[-1]
        elif k.startswith("conv_out."):
            n = "out.2." + p[-1]
        elif k.startswith("down_blocks."):
            i = int(p[1])
            rest = ".".join(p[4:])
            if p[2] == "resnets":
                j = int(p[3])
                n = "input_blocks.%d.0.%s" % (i * (L + 1) + j + 1, res_name(rest))
            elif p[2] == "attentions":
                j = int(p[3])
                n = "input_blocks.%d.1.%s" % (i * (L + 1) + j + 1, rest)
            elif p[2] == "downsamplers":
                n = "input_blocks.%d.0.op.%s" % (i * (L + 1) + L + 1, ".".join(p[5:]))
            else:
                raise KeyError(k)
        elif k.startswith("mid_block."):
            rest = ".".join(p[3:])
            if p[1] == "resnets":
                n = "middle_block.%d.%s" % (0 if p[2] == "0" else 2, res_name(rest))
            else:
                n = "middle_block.1." + rest
        elif k.startswith("up_blocks."):
            i = int(p[1])
            rest = ".".join(p[4:])
            if p[2] == "resnets":
                j = int(p[3])
                n = "output_blocks.%d.0.%s" % (i * (L + 1) + j, res_name(rest))
            elif p[2] == "attentions":
                j = int(p[3])
                n = "output_blocks.%d.1.%s" % (i * (L + 1) + j, rest)
            elif p[2] == "upsamplers":
                sub = 2 if attn_up[i] else 1
                n = "output_blocks.%d.%d.conv.%s" % (i * (L + 1) + L, sub, ".".join(p[5:]))
            else:
                raise KeyError(k)
        else:
            raise KeyError(k)
        out["model.diffusion_model." + n] = v
    return out


def vae_to_ldm(sd, n_levels):
    out = {}
    res_map = {"conv_shortcut": "nin_shortcut"}
    attn_map = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
    for k, v in sd.items():
        p = k.split(".")
        side = p[0]  # encoder / decoder / quant_conv / post_quant_conv
        if side in ("quant_conv", "post_quant_conv"):
            out["first_stage_model." + k] = v
            continue
        rest = p[1:]
        if rest[0] in ("conv_in", "conv_out"):
            n = ".".join(rest)
        elif rest[0] == "conv_norm_out":
            n = "norm_out." + rest[-1]
        elif rest[0] in ("down_blocks", "up_blocks"):
            i = int(rest[1])
            lvl = i if rest[0] == "down_blocks" else n_levels - 1 - i
            grp = "down" if rest[0] == "down_blocks" else "up"
            if rest[2] == "resnets":
                sub = rest[4]
                n = "%s.%d.block.%s.%s.%s" % (grp, lvl, rest[3], res_map.get(sub, sub), rest[-1])
            else:  # downsamplers / upsamplers
                n = "%s.%d.%s.conv.%s" % (grp, lvl, "downsample" if grp == "down" else "upsample", rest[-1])
        elif rest[0] == "mid_block":
            if rest[1] == "resnets":
                sub = rest[3]
                n = "mid.block_%d.%s.%s" % (int(rest[2]) + 1, res_map.get(sub, sub), rest[-1])
            else:
                sub = ".".join(rest[3:-1])
                n = "mid.attn_1.%s.%s" % (attn_map[sub], rest[-1])
                if v.dim() == 2:  # LDM stores the attention projections as 1x1 convs
                    v = v[:, :, None, None]
        else:
            raise KeyError(k)
        out["first_stage_model.%s.%s" % (side, n)] = v
    return out


def strip_text_model(sd):
    return {(k[len("text_model."):] if k.startswith("text_model.") else k): v for k, v in sd.items()}


def clip_to_ldm_hf(sd, prefix="cond_stage_model.transformer."):
    # HF layout: text_model.* plus (with projection) a sibling text_projection.weight.
    return {prefix + (k if k.startswith("text_projection") else "text_model." + k): v
            for k, v in strip_text_model(sd).items()}


def clip_to_openclip(sd, n_layers, prefix="cond_stage_model.model."):
    sd = strip_text_model(sd)
    out = {}
    if "text_projection.weight" in sd:  # OpenCLIP applies x @ P with P [width, proj]
        out[prefix + "text_projection"] = sd["text_projection.weight"].t()
    out[prefix + "token_embedding.weight"] = sd["embeddings.token_embedding.weight"]
    out[prefix + "positional_embedding"] = sd["embeddings.position_embedding.weight"]
    out[prefix + "ln_final.weight"] = sd["final_layer_norm.weight"]
    out[prefix + "ln_final.bias"] = sd["final_layer_norm.bias"]
    for l in range(n_layers):
        s = "encoder.layers.%d." % l
        d = prefix + "transformer.resblocks.%d." % l
        out[d + "attn.in_proj_weight"] = torch.cat([sd[s + "self_attn.%s_proj.weight" % c] for c in "qkv"], 0)
        out[d + "attn.in_proj_bias"] = torch.cat([sd[s + "self_attn.%s_proj.bias" % c] for c in "qkv"], 0)
        out[d + "attn.out_proj.weight"] = sd[s + "self_attn.out_proj.weight"]
        out[d + "attn.out_proj.bias"] = sd[s + "self_attn.out_proj.bias"]
        for a, b in (("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"), ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
            out[d + a + ".weight"] = sd[s + b + ".weight"]
            out[d + a + ".bias"] = sd[s + b + ".bias"]
    return out


def contig(d):
    return {k: v.detach().to(torch.float16).contiguous() for k, v in d.items()}


# ----------------------------------------------------------------- models --
def make_clip(act, layers, seed):
    cfg = CLIPTextConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=layers, num_attention_heads=4,
                         vocab_size=1000, max_position_embeddings=77, hidden_act=act, layer_norm_eps=1e-5,
                         bos_token_id=998, eos_token_id=999, pad_token_id=999, projection_dim=24)
    m = CLIPTextModelWithProjection(cfg).eval()
    return randomize(m, seed), cfg


def clip_ids(gen, n, pad_eos):
    ids = torch.full((n, 77), 999 if pad_eos else 0, dtype=torch.int64)
    for r in range(n):
        length = [5, 40, 76, 1][r % 4]
        ids[r, 0] = 998
        ids[r, 1:1 + length] = torch.randint(1, 998, (length,), generator=gen)
        ids[r, 1 + length] = 999
    return ids


def run_clip(m, ids):
    o = m(input_ids=ids, output_hidden_states=True)
    hs = o.hidden_states
    fl = m.text_model.final_layer_norm if hasattr(m, "text_model") else m.final_layer_norm
    return {
        "last_ln": o.last_hidden_state,   # all layers + final LN (SD1, clip skip 1)
        "skip2_ln": fl(hs[-2]),          # A1111 clip skip 2 (penultimate) + final LN (SD2 style)
        "skip2_raw": hs[-2],             # penultimate, no final LN (SDXL style)
        "pooled": o.text_embeds,         # final LN row at the first EOS, times text_projection (SDXL)
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(1234)

    # ========================= SD1-like =========================
    clip1, clip1_cfg = make_clip("quick_gelu", 3, 11)
    unet1 = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 32), layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8, use_linear_projection=False).eval()
    randomize(unet1, 12)
    vae = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(8, 16, 16),
                        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                        layers_per_block=1, latent_channels=4, norm_num_groups=4, sample_size=16).eval()
    randomize(vae, 13)

    w = {}
    w.update(clip_to_ldm_hf(clip1.state_dict()))
    w.update(unet_to_ldm(unet1.state_dict(), 2, 2, [True, False], [False, True]))
    w.update(vae_to_ldm(vae.state_dict(), 3))
    save_file(contig(w), os.path.join(OUT, "tiny_sd1.safetensors"))

    ref = {}
    ids = clip_ids(gen, 2, True)
    ref["clip.ids"] = ids.to(torch.int32)
    for k, v in run_clip(clip1, ids).items():
        ref["clip." + k] = v

    x = torch.randn(2, 4, 8, 8, generator=gen)
    t = torch.tensor([999.0, 10.5])
    ctx = torch.randn(2, 77, 32, generator=gen)
    ref["unet.x"], ref["unet.t"], ref["unet.ctx"] = x, t, ctx
    ref["unet.out"] = unet1(x, t, encoder_hidden_states=ctx).sample

    img = torch.rand(2, 3, 16, 24, generator=gen) * 2 - 1
    post = vae.encode(img).latent_dist
    ref["vae.img"], ref["vae.mean"], ref["vae.logvar"] = img, post.mean, post.logvar
    z = torch.randn(2, 4, 4, 6, generator=gen)
    ref["vae.z"] = z
    ref["vae.dec"] = vae.decode(z).sample
    save_file(contig_ref(ref), os.path.join(OUT, "tiny_sd1_ref.safetensors"))

    d = os.path.join(OUT, "tiny_sd1")
    unet1.save_config(os.path.join(d, "unet"))
    vae.save_config(os.path.join(d, "vae"))
    clip1_cfg.save_pretrained(os.path.join(d, "text_encoder"))

    # ========================= SD2-like (inpainting) =========================
    clip2, clip2_cfg = make_clip("gelu", 3, 21)
    unet2 = UNet2DConditionModel(
        sample_size=8, in_channels=9, out_channels=4, block_out_channels=(16, 32, 32), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=48, attention_head_dim=(2, 4, 4), norm_num_groups=8, use_linear_projection=True,
        transformer_layers_per_block=2).eval()
    randomize(unet2, 22)

    w = {}
    w.update(clip_to_openclip(clip2.state_dict(), 3))
    w.update(unet_to_ldm(unet2.state_dict(), 3, 1, [True, True, False], [False, True, True]))
    save_file(contig(w), os.path.join(OUT, "tiny_sd2.safetensors"))

    ref = {}
    ids = clip_ids(gen, 2, False)
    ref["clip.ids"] = ids.to(torch.int32)
    for k, v in run_clip(clip2, ids).items():
        ref["clip." + k] = v
    x = torch.randn(2, 9, 8, 12, generator=gen)
    t = torch.tensor([500.25, 1.0])
    ctx = torch.randn(2, 154, 48, generator=gen)
    ref["unet.x"], ref["unet.t"], ref["unet.ctx"] = x, t, ctx
    ref["unet.out"] = unet2(x, t, encoder_hidden_states=ctx).sample
    save_file(contig_ref(ref), os.path.join(OUT, "tiny_sd2_ref.safetensors"))

    d = os.path.join(OUT, "tiny_sd2")
    unet2.save_config(os.path.join(d, "unet"))
    clip2_cfg.save_pretrained(os.path.join(d, "text_encoder"))

    # ========================= SDXL-like UNet (label embedding) =========================
    unet3 = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=24, attention_head_dim=(2, 4), transformer_layers_per_block=(1, 2),
        use_linear_projection=True, norm_num_groups=4, addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=24 + 6 * 8).eval()
    randomize(unet3, 32)
    save_file(contig(unet_to_ldm(unet3.state_dict(), 2, 1, [False, True], [True, False])),
              os.path.join(OUT, "tiny_sdxl.safetensors"))
    ref = {}
    x = torch.randn(2, 4, 8, 8, generator=gen)
    t = torch.tensor([999.0, 250.0])
    ctx = torch.randn(2, 77, 24, generator=gen)
    text_embeds = torch.randn(2, 24, generator=gen)
    time_ids = torch.tensor([[512.0, 768.0, 0.0, 16.0, 512.0, 768.0], [1024.0, 1024.0, 8.0, 0.0, 1024.0, 1024.0]])
    out = unet3(x, t, encoder_hidden_states=ctx,
                added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids}).sample
    # The label vector the LDM/sgm U-Net takes: [pooled, E(h), E(w), E(top), E(left), E(th), E(tw)].
    y = torch.cat([text_embeds, unet3.add_time_proj(time_ids.flatten()).reshape(2, -1)], dim=1)
    ref["unet.x"], ref["unet.t"], ref["unet.ctx"], ref["unet.y"], ref["unet.out"] = x, t, ctx, y, out
    ref["unet.text_embeds"], ref["unet.time_ids"] = text_embeds, time_ids
    save_file(contig_ref(ref), os.path.join(OUT, "tiny_sdxl_ref.safetensors"))
    # Also as a diffusers component folder (config.json + f16 weights, diffusers names).
    unet3.to(torch.float16).save_pretrained(os.path.join(OUT, "tiny_sdxl", "unet"), safe_serialization=True)

    write_fullsize_shapes()

    total = 0
    for root, _, files in os.walk(OUT):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    print("testdata/ref total: %.2f MB" % (total / 1e6))


def write_fullsize_shapes():
    """Names and shapes (no data) of full-size SD 1.5, SD 2.1, SDXL base and
    SDXL refiner networks in LDM / sgm naming, built on the meta device: the
    C++ tests infer the configs from them and plan the full-size graphs'
    memory; gen_fullsize_random.py writes random checkpoints of them.
    `gen_model_ref.py --shapes` writes only this file."""
    out = {}
    with torch.device("meta"):
        for key, unet_kw, clip_kw, openclip in (
                ("sd15", dict(cross_attention_dim=768, attention_head_dim=8),
                 dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                      hidden_act="quick_gelu"), False),
                ("sd21", dict(cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True),
                 dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                      hidden_act="gelu"), True)):
            unet = UNet2DConditionModel(block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, **unet_kw)
            vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                                down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
            clip = CLIPTextModel(CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, **clip_kw))
            w = {}
            w.update(unet_to_ldm(unet.state_dict(), 4, 2, [True, True, True, False], [False, True, True, True]))
            w.update(vae_to_ldm(vae.state_dict(), 4))
            csd = {k: v for k, v in clip.state_dict().items() if "position_ids" not in k}
            if openclip:
                w.update(clip_to_openclip(csd, clip_kw["num_hidden_layers"]))
            else:
                w.update(clip_to_ldm_hf(csd))
            out[key] = {k: list(v.shape) for k, v in sorted(w.items())}
        # SDXL base and refiner in the sgm single-file layout (conditioner.embedders.N)
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
        clip_l = CLIPTextModel(CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, hidden_size=768,
                                              intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                                              hidden_act="quick_gelu"))
        clip_g = CLIPTextModelWithProjection(CLIPTextConfig(vocab_size=49408, max_position_embeddings=77,
                                                            hidden_size=1280, intermediate_size=5120,
                                                            num_hidden_layers=32, num_attention_heads=20,
                                                            hidden_act="gelu", projection_dim=1280))
        gsd = {k: v for k, v in clip_g.state_dict().items() if "position_ids" not in k}
        lsd = {k: v for k, v in clip_l.state_dict().items() if "position_ids" not in k}
        base = UNet2DConditionModel(block_out_channels=(320, 640, 1280), layers_per_block=2,
                                    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                                    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                                    transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20),
                                    cross_attention_dim=2048, use_linear_projection=True,
                                    addition_embed_type="text_time", addition_time_embed_dim=256,
                                    projection_class_embeddings_input_dim=2816)
        w = {}
        w.update(unet_to_ldm(base.state_dict(), 3, 2, [False, True, True], [True, True, False]))
        w.update(vae_to_ldm(vae.state_dict(), 4))
        w.update(clip_to_ldm_hf(lsd, prefix="conditioner.embedders.0.transformer."))
        w.update(clip_to_openclip(gsd, 32, prefix="conditioner.embedders.1.model."))
        out["sdxl"] = {k: list(v.shape) for k, v in sorted(w.items())}
        refiner = UNet2DConditionModel(block_out_channels=(384, 768, 1536, 1536), layers_per_block=2,
                                       down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                                         "DownBlock2D"),
                                       up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                                                       "UpBlock2D"),
                                       transformer_layers_per_block=4, attention_head_dim=(6, 12, 24, 24),
                                       cross_attention_dim=1280, use_linear_projection=True,
                                       addition_embed_type="text_time", addition_time_embed_dim=256,
                                       projection_class_embeddings_input_dim=2560)
        w = {}
        w.update(unet_to_ldm(refiner.state_dict(), 4, 2, [False, True, True, False], [False, True, True, False]))
        w.update(vae_to_ldm(vae.state_dict(), 4))
        w.update(clip_to_openclip(gsd, 32, prefix="conditioner.embedders.0.model."))
        out["sdxl_refiner"] = {k: list(v.shape) for k, v in sorted(w.items())}
    with open(os.path.join(OUT, "fullsize_shapes.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))


def contig_ref(d):
    return {k: (v.contiguous() if v.dtype == torch.int32 else v.detach().to(torch.float32).contiguous())
            for k, v in d.items()}


if __name__ == "__main__":
    if sys.argv[1:] == ["--shapes"]:
        sys.exit(write_fullsize_shapes())
    sys.exit(main())
