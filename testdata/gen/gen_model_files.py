#!/usr/bin/env python3
"""Writes the small model files the C++ format tests read (testdata/models/).

Every file is produced by the real writer of its format:
  * safetensors  - safetensors.torch.save_file / save_model
  * torch        - torch.save (zip format and _use_new_zipfile_serialization=False)
  * GGUF         - gguf-py's GGUFWriter
  * diffusers    - save_pretrained of tiny UNet2DConditionModel / AutoencoderKL /
                   CLIPTextModel(WithProjection) configs inside real pipelines

The LDM (single-file) layouts are built by a small generator of the LDM module
tree below; diffusers' own single-file converters then turn the same weights
into diffusers names and the diffusers models load them with strict=True, which
checks that the generated LDM names and shapes match the real architectures.
Values are deterministic (seeded). A manifest (manifest.json) records, for every
file, tensor names, shapes and a checksum of the values, for the C++ tests.

Usage: python3 testdata/gen/gen_model_files.py  [--out testdata/models]
Needs: torch, safetensors, gguf, diffusers, transformers, numpy (the committed
files were made with torch 2.15.0, safetensors 0.8.0, gguf 0.19.0, diffusers
0.42.1, transformers 5.24.0, numpy 2.4.6), e.g.
  python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch safetensors gguf diffusers transformers
Output is deterministic (fixed seeds); run from anywhere.
"""
import argparse
import hashlib
import json
import os
import shutil
import struct

import numpy as np
import torch
from safetensors.torch import save_file
import gguf

from diffusers import AutoencoderKL, UNet2DConditionModel, StableDiffusionPipeline, StableDiffusionXLPipeline, PNDMScheduler, EulerDiscreteScheduler
from diffusers.loaders.single_file_utils import (convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint,
                                                  convert_open_clip_checkpoint)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

torch.manual_seed(0)
GEN = torch.Generator().manual_seed(1234)


def rnd(*shape, dtype=torch.float32):
    return (torch.randn(*shape, generator=GEN) * 0.5).to(dtype)


# ---------------------------------------------------------------------------
# LDM module tree (openaimodel.UNetModel / ldm AutoencoderKL / OpenCLIP text)

def ldm_resblock(sd, p, cin, cout, emb):
    sd[p + "in_layers.0.weight"] = rnd(cin); sd[p + "in_layers.0.bias"] = rnd(cin)
    sd[p + "in_layers.2.weight"] = rnd(cout, cin, 3, 3); sd[p + "in_layers.2.bias"] = rnd(cout)
    sd[p + "emb_layers.1.weight"] = rnd(cout, emb); sd[p + "emb_layers.1.bias"] = rnd(cout)
    sd[p + "out_layers.0.weight"] = rnd(cout); sd[p + "out_layers.0.bias"] = rnd(cout)
    sd[p + "out_layers.3.weight"] = rnd(cout, cout, 3, 3); sd[p + "out_layers.3.bias"] = rnd(cout)
    if cin != cout:
        sd[p + "skip_connection.weight"] = rnd(cout, cin, 1, 1); sd[p + "skip_connection.bias"] = rnd(cout)


def ldm_transformer(sd, p, ch, depth, ctx, linear):
    sd[p + "norm.weight"] = rnd(ch); sd[p + "norm.bias"] = rnd(ch)
    pshape = (ch, ch) if linear else (ch, ch, 1, 1)
    sd[p + "proj_in.weight"] = rnd(*pshape); sd[p + "proj_in.bias"] = rnd(ch)
    for k in range(depth):
        b = p + f"transformer_blocks.{k}."
        for a, kv in (("attn1", ch), ("attn2", ctx)):
            sd[b + a + ".to_q.weight"] = rnd(ch, ch)
            sd[b + a + ".to_k.weight"] = rnd(ch, kv)
            sd[b + a + ".to_v.weight"] = rnd(ch, kv)
            sd[b + a + ".to_out.0.weight"] = rnd(ch, ch); sd[b + a + ".to_out.0.bias"] = rnd(ch)
        for n in ("norm1", "norm2", "norm3"):
            sd[b + n + ".weight"] = rnd(ch); sd[b + n + ".bias"] = rnd(ch)
        sd[b + "ff.net.0.proj.weight"] = rnd(8 * ch, ch); sd[b + "ff.net.0.proj.bias"] = rnd(8 * ch)
        sd[b + "ff.net.2.weight"] = rnd(ch, 4 * ch); sd[b + "ff.net.2.bias"] = rnd(ch)
    sd[p + "proj_out.weight"] = rnd(*pshape); sd[p + "proj_out.bias"] = rnd(ch)


def ldm_unet(c):
    """c: dict(mc, mult, L, depth (per level), mid_depth, ctx, linear, in_ch, out_ch, adm)."""
    sd = {}
    P = "model.diffusion_model."
    mc, L = c["mc"], c["L"]
    emb = 4 * mc
    sd[P + "time_embed.0.weight"] = rnd(emb, mc); sd[P + "time_embed.0.bias"] = rnd(emb)
    sd[P + "time_embed.2.weight"] = rnd(emb, emb); sd[P + "time_embed.2.bias"] = rnd(emb)
    if c.get("adm"):
        sd[P + "label_emb.0.0.weight"] = rnd(emb, c["adm"]); sd[P + "label_emb.0.0.bias"] = rnd(emb)
        sd[P + "label_emb.0.2.weight"] = rnd(emb, emb); sd[P + "label_emb.0.2.bias"] = rnd(emb)
    sd[P + "input_blocks.0.0.weight"] = rnd(mc, c["in_ch"], 3, 3); sd[P + "input_blocks.0.0.bias"] = rnd(mc)
    ch = mc
    chans = [mc]
    idx = 1
    nlev = len(c["mult"])
    for lev, m in enumerate(c["mult"]):
        for _ in range(L):
            ldm_resblock(sd, P + f"input_blocks.{idx}.0.", ch, m * mc, emb)
            ch = m * mc
            if c["depth"][lev] > 0:
                ldm_transformer(sd, P + f"input_blocks.{idx}.1.", ch, c["depth"][lev], c["ctx"], c["linear"])
            chans.append(ch)
            idx += 1
        if lev != nlev - 1:
            sd[P + f"input_blocks.{idx}.0.op.weight"] = rnd(ch, ch, 3, 3); sd[P + f"input_blocks.{idx}.0.op.bias"] = rnd(ch)
            chans.append(ch)
            idx += 1
    ldm_resblock(sd, P + "middle_block.0.", ch, ch, emb)
    ldm_transformer(sd, P + "middle_block.1.", ch, c["mid_depth"], c["ctx"], c["linear"])
    ldm_resblock(sd, P + "middle_block.2.", ch, ch, emb)
    idx = 0
    for lev in reversed(range(nlev)):
        m = c["mult"][lev]
        for i in range(L + 1):
            ich = chans.pop()
            ldm_resblock(sd, P + f"output_blocks.{idx}.0.", ch + ich, m * mc, emb)
            ch = m * mc
            sub = 1
            if c["depth"][lev] > 0:
                ldm_transformer(sd, P + f"output_blocks.{idx}.1.", ch, c["depth"][lev], c["ctx"], c["linear"])
                sub = 2
            if lev and i == L:
                sd[P + f"output_blocks.{idx}.{sub}.conv.weight"] = rnd(ch, ch, 3, 3)
                sd[P + f"output_blocks.{idx}.{sub}.conv.bias"] = rnd(ch)
            idx += 1
    sd[P + "out.0.weight"] = rnd(mc); sd[P + "out.0.bias"] = rnd(mc)
    sd[P + "out.2.weight"] = rnd(c["out_ch"], mc, 3, 3); sd[P + "out.2.bias"] = rnd(c["out_ch"])
    return sd


def ldm_vae(ch, mult, L, z, prefix="first_stage_model."):
    sd = {}
    P = prefix

    def res(p, cin, cout):
        sd[p + "norm1.weight"] = rnd(cin); sd[p + "norm1.bias"] = rnd(cin)
        sd[p + "conv1.weight"] = rnd(cout, cin, 3, 3); sd[p + "conv1.bias"] = rnd(cout)
        sd[p + "norm2.weight"] = rnd(cout); sd[p + "norm2.bias"] = rnd(cout)
        sd[p + "conv2.weight"] = rnd(cout, cout, 3, 3); sd[p + "conv2.bias"] = rnd(cout)
        if cin != cout:
            sd[p + "nin_shortcut.weight"] = rnd(cout, cin, 1, 1); sd[p + "nin_shortcut.bias"] = rnd(cout)

    def mid(p, c):
        res(p + "mid.block_1.", c, c)
        sd[p + "mid.attn_1.norm.weight"] = rnd(c); sd[p + "mid.attn_1.norm.bias"] = rnd(c)
        for n in ("q", "k", "v", "proj_out"):
            sd[p + f"mid.attn_1.{n}.weight"] = rnd(c, c, 1, 1); sd[p + f"mid.attn_1.{n}.bias"] = rnd(c)
        res(p + "mid.block_2.", c, c)

    n = len(mult)
    E = P + "encoder."
    sd[E + "conv_in.weight"] = rnd(ch, 3, 3, 3); sd[E + "conv_in.bias"] = rnd(ch)
    cin = ch
    for i, m in enumerate(mult):
        for j in range(L):
            res(E + f"down.{i}.block.{j}.", cin, ch * m)
            cin = ch * m
        if i != n - 1:
            sd[E + f"down.{i}.downsample.conv.weight"] = rnd(cin, cin, 3, 3); sd[E + f"down.{i}.downsample.conv.bias"] = rnd(cin)
    mid(E, cin)
    sd[E + "norm_out.weight"] = rnd(cin); sd[E + "norm_out.bias"] = rnd(cin)
    sd[E + "conv_out.weight"] = rnd(2 * z, cin, 3, 3); sd[E + "conv_out.bias"] = rnd(2 * z)
    sd[P + "quant_conv.weight"] = rnd(2 * z, 2 * z, 1, 1); sd[P + "quant_conv.bias"] = rnd(2 * z)
    sd[P + "post_quant_conv.weight"] = rnd(z, z, 1, 1); sd[P + "post_quant_conv.bias"] = rnd(z)
    D = P + "decoder."
    c = ch * mult[-1]
    sd[D + "conv_in.weight"] = rnd(c, z, 3, 3); sd[D + "conv_in.bias"] = rnd(c)
    mid(D, c)
    for i in reversed(range(n)):
        for j in range(L + 1):
            res(D + f"up.{i}.block.{j}.", c, ch * mult[i])
            c = ch * mult[i]
        if i != 0:
            sd[D + f"up.{i}.upsample.conv.weight"] = rnd(c, c, 3, 3); sd[D + f"up.{i}.upsample.conv.bias"] = rnd(c)
    sd[D + "norm_out.weight"] = rnd(c); sd[D + "norm_out.bias"] = rnd(c)
    sd[D + "conv_out.weight"] = rnd(3, c, 3, 3); sd[D + "conv_out.bias"] = rnd(3)
    return sd


def hf_clip(hidden, layers, inter, heads, vocab=64, pos=8, proj=0, act="quick_gelu"):
    cfg = CLIPTextConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                         num_attention_heads=heads, max_position_embeddings=pos, hidden_act=act,
                         projection_dim=proj if proj else hidden, bos_token_id=vocab - 2, eos_token_id=vocab - 1,
                         pad_token_id=vocab - 1)
    m = (CLIPTextModelWithProjection if proj else CLIPTextModel)(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(rnd(*p.shape))
    return m


def open_clip(prefix, width, layers, vocab=64, pos=8, proj=None):
    sd = {}
    sd[prefix + "token_embedding.weight"] = rnd(vocab, width)
    sd[prefix + "positional_embedding"] = rnd(pos, width)
    for n in range(layers):
        b = prefix + f"transformer.resblocks.{n}."
        sd[b + "ln_1.weight"] = rnd(width); sd[b + "ln_1.bias"] = rnd(width)
        sd[b + "attn.in_proj_weight"] = rnd(3 * width, width); sd[b + "attn.in_proj_bias"] = rnd(3 * width)
        sd[b + "attn.out_proj.weight"] = rnd(width, width); sd[b + "attn.out_proj.bias"] = rnd(width)
        sd[b + "ln_2.weight"] = rnd(width); sd[b + "ln_2.bias"] = rnd(width)
        sd[b + "mlp.c_fc.weight"] = rnd(4 * width, width); sd[b + "mlp.c_fc.bias"] = rnd(4 * width)
        sd[b + "mlp.c_proj.weight"] = rnd(width, 4 * width); sd[b + "mlp.c_proj.bias"] = rnd(width)
    sd[prefix + "ln_final.weight"] = rnd(width); sd[prefix + "ln_final.bias"] = rnd(width)
    if proj:
        sd[prefix + "text_projection"] = rnd(width, proj)
    sd[prefix + "logit_scale"] = torch.tensor(4.6052)
    return sd


# ---------------------------------------------------------------------------
# tiny configurations (structure of the real families, tiny widths)

SD1_UNET = dict(mc=4, mult=[1, 2], L=2, depth=[1, 0], mid_depth=1, ctx=16, linear=False, in_ch=4, out_ch=4)
SD2_UNET = dict(SD1_UNET, linear=True, ctx=24)
XL_UNET = dict(mc=4, mult=[1, 2, 2], L=2, depth=[0, 1, 2], mid_depth=2, ctx=40, linear=True, in_ch=4, out_ch=4, adm=40)
XLR_UNET = dict(mc=4, mult=[1, 2, 2], L=2, depth=[0, 1, 0], mid_depth=1, ctx=24, linear=True, in_ch=4, out_ch=4, adm=32)
VAE = dict(ch=4, mult=[1, 2], L=1, z=4)


def unet_diffusers_config(c, xl=False):
    down, up = [], []
    for d in c["depth"]:
        down.append("CrossAttnDownBlock2D" if d else "DownBlock2D")
    for d in reversed(c["depth"]):
        up.append("CrossAttnUpBlock2D" if d else "UpBlock2D")
    cfg = dict(sample_size=8, in_channels=c["in_ch"], out_channels=c["out_ch"], layers_per_block=c["L"],
               block_out_channels=[c["mc"] * m for m in c["mult"]], down_block_types=down, up_block_types=up,
               cross_attention_dim=c["ctx"], attention_head_dim=2, norm_num_groups=4,
               use_linear_projection=c["linear"], transformer_layers_per_block=[max(d, 1) for d in c["depth"]])
    if c.get("adm"):
        cfg.update(addition_embed_type="text_time", addition_time_embed_dim=4,
                   projection_class_embeddings_input_dim=c["adm"])
    cfg["mid_block_type"] = "UNetMidBlock2DCrossAttn"
    cfg["transformer_layers_per_block"] = [max(d, 1) for d in c["depth"]]
    if c["mid_depth"] != cfg["transformer_layers_per_block"][-1]:
        cfg["transformer_layers_per_block"][-1] = c["mid_depth"]
    return cfg


def vae_diffusers_config(v):
    n = len(v["mult"])
    return dict(in_channels=3, out_channels=3, latent_channels=v["z"], layers_per_block=v["L"], norm_num_groups=4,
                block_out_channels=[v["ch"] * m for m in v["mult"]], sample_size=16,
                down_block_types=["DownEncoderBlock2D"] * n, up_block_types=["UpDecoderBlock2D"] * n)


def to_unet(ldm, c):
    cfg = unet_diffusers_config(c)
    m = UNet2DConditionModel(**cfg)
    conv = convert_ldm_unet_checkpoint(ldm, cfg)
    m.load_state_dict(conv, strict=True)
    return m


def to_vae(ldm, v):
    cfg = vae_diffusers_config(v)
    m = AutoencoderKL(**cfg)
    conv = convert_ldm_vae_checkpoint(ldm, cfg)
    conv = {k: (t.reshape(t.shape[0], t.shape[1]) if t.ndim == 4 and "attentions" in k and t.shape[2:] == (1, 1) else t)
            for k, t in conv.items()}
    m.load_state_dict(conv, strict=True)
    return m


def tokenizer(dirpath):
    os.makedirs(dirpath, exist_ok=True)
    vocab = {"<|startoftext|>": 62, "<|endoftext|>": 63}
    letters = "abcdefghijklmnopqrstuvwxyz"
    for i, ch in enumerate(letters):
        vocab[ch] = i
        vocab[ch + "</w>"] = 26 + i
    vocab["th</w>"] = 52
    vocab["th"] = 53
    with open(os.path.join(dirpath, "vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(dirpath, "merges.txt"), "w") as f:
        f.write("#version: 0.2\nt h\nt h</w>\n")
    tok = CLIPTokenizer(os.path.join(dirpath, "vocab.json"), os.path.join(dirpath, "merges.txt"))
    return tok


def checksum(t):
    a = t.detach().to(torch.float64).flatten().numpy()
    return [float(a.sum()), float(np.abs(a).sum()), float(a[0]) if a.size else 0.0, float(a[-1]) if a.size else 0.0]


MANIFEST = {}


def record(name, sd, extra=None):
    ent = {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", ""), "sum": checksum(v)}
           for k, v in sd.items()}
    MANIFEST[name] = {"tensors": ent}
    if extra:
        MANIFEST[name].update(extra)


def half(sd):
    return {k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    tmp = os.path.join(out, "_tmp")

    # ---- SD1 single-file (LDM names), f16 -----------------------------------
    te = hf_clip(16, 2, 32, 2)
    sd1 = {}
    sd1.update(ldm_unet(SD1_UNET))
    sd1.update(ldm_vae(**VAE))
    sd1.update({"cond_stage_model.transformer." + k: v for k, v in te.state_dict().items()})
    sd1["alphas_cumprod"] = torch.linspace(1, 0.01, 10)
    sd1 = half(sd1)
    save_file(sd1, os.path.join(out, "sd1_ldm.safetensors"), metadata={"modelspec.title": "tiny sd1", "format": "pt"})
    record("sd1_ldm.safetensors", sd1)

    # the same weights as a torch zip checkpoint (full training-style object) and legacy
    ck = {"state_dict": sd1, "global_step": 470000, "epoch": 3}
    torch.save(ck, os.path.join(out, "sd1_ldm.ckpt"))
    torch.save(ck, os.path.join(out, "sd1_ldm_legacy.ckpt"), _use_new_zipfile_serialization=False)

    # ---- SD1 diffusers folder from the same weights -------------------------
    sd1f = {k: v.float() for k, v in sd1.items()}
    unet = to_unet({k: v for k, v in sd1f.items() if k.startswith("model.diffusion_model.")}, SD1_UNET)
    vae = to_vae({k: v for k, v in sd1f.items() if k.startswith("first_stage_model.")}, VAE)
    te_f = hf_clip(16, 2, 32, 2)
    te_f.load_state_dict({k[len("cond_stage_model.transformer."):]: v for k, v in sd1f.items()
                          if k.startswith("cond_stage_model.transformer.")}, strict=True)
    tok = tokenizer(tmp)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=te_f, tokenizer=tok, unet=unet, scheduler=PNDMScheduler(),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.to(torch.float16)
    pipe.save_pretrained(os.path.join(out, "sd1_diffusers"))
    # recent transformers write only tokenizer.json; older ones (and most hub
    # folders) also carry the slow tokenizer's vocab.json + merges.txt
    for fn in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(tmp, fn), os.path.join(out, "sd1_diffusers", "tokenizer", fn))
    # fp16 variant of the text encoder next to it, and a sharded UNet
    te_f.save_pretrained(os.path.join(out, "sd1_diffusers", "text_encoder"), variant="fp16")
    te_f.float().save_pretrained(os.path.join(out, "sd1_diffusers", "text_encoder"))
    # ---- sharded standalone UNet (diffusers names, no prefix) ----------------
    unet.save_pretrained(os.path.join(out, "unet_sharded"), max_shard_size="12KB")
    # ---- standalone VAE: diffusers file and LDM-named file -------------------
    save_file({k: v.contiguous() for k, v in vae.state_dict().items()}, os.path.join(out, "vae_diffusers.safetensors"))
    vae_ldm = {k[len("first_stage_model."):]: v for k, v in sd1.items() if k.startswith("first_stage_model.")}
    torch.save({"state_dict": vae_ldm}, os.path.join(out, "vae_ldm.pt"))
    record("vae_ldm.pt", vae_ldm)
    # the same checkpoint re-packed with deflate-compressed entries (some
    # tools re-zip checkpoints; torch.load reads them)
    import zipfile
    with zipfile.ZipFile(os.path.join(out, "vae_ldm.pt")) as src, \
            zipfile.ZipFile(os.path.join(out, "vae_ldm_deflate.pt"), "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))
    assert torch.load(os.path.join(out, "vae_ldm_deflate.pt"))["state_dict"].keys() == vae_ldm.keys()

    # ---- SD1 inpainting (9 input channels), UNet+VAE+TE, f32, in a .pth -------
    c9 = dict(SD1_UNET, in_ch=9)
    inp = {}
    inp.update(ldm_unet(c9))
    inp.update(ldm_vae(**VAE))
    inp.update({"cond_stage_model.transformer." + k: v for k, v in hf_clip(16, 1, 32, 2).state_dict().items()})
    inp = half(inp)
    save_file(inp, os.path.join(out, "sd1_inpaint.safetensors"))

    # ---- SD2 single file: linear proj, OpenCLIP text encoder -----------------
    sd2 = {}
    sd2.update(ldm_unet(SD2_UNET))
    sd2.update(ldm_vae(**VAE))
    sd2.update(open_clip("cond_stage_model.model.", 24, 2))
    sd2 = half(sd2)
    save_file(sd2, os.path.join(out, "sd2_ldm.safetensors"))
    record("sd2_ldm.safetensors", sd2)
    # diffusers' own OpenCLIP -> HF conversion of the same weights, for the naming test
    te2 = hf_clip(24, 2, 96, 2, act="gelu")
    conv = convert_open_clip_checkpoint(te2, {k: v.float() for k, v in sd2.items()}, prefix="cond_stage_model.model.")
    want = te2.state_dict()
    # recent transformers drop the "text_model." level from CLIPTextModel keys
    conv = {(k if k in want else k[len("text_model."):]): v for k, v in conv.items()}
    conv = {k: v for k, v in conv.items() if k in want}
    missing = set(want) - set(conv)
    assert missing <= {"text_model.embeddings.position_ids", "embeddings.position_ids"} or \
        all(k.startswith("encoder.layers.1.") or k.startswith("text_model.encoder.layers.1.") for k in missing), missing
    te2.load_state_dict(conv, strict=False)
    save_file({k: v.contiguous() for k, v in conv.items()}, os.path.join(out, "sd2_te_hf.safetensors"))

    # ---- SDXL base single file ------------------------------------------------
    xl = {}
    xl.update(ldm_unet(XL_UNET))
    xl.update(ldm_vae(**VAE))
    xl.update({"conditioner.embedders.0.transformer." + k: v for k, v in hf_clip(16, 1, 32, 2).state_dict().items()})
    xl.update(open_clip("conditioner.embedders.1.model.", 24, 2, proj=24))
    xl = half(xl)
    save_file(xl, os.path.join(out, "sdxl_ldm.safetensors"))
    record("sdxl_ldm.safetensors", xl)

    # ---- SDXL refiner single file (bigG-style encoder only) ------------------
    xr = {}
    xr.update(ldm_unet(XLR_UNET))
    xr.update(ldm_vae(**VAE))
    xr.update(open_clip("conditioner.embedders.0.model.", 24, 1, proj=24))
    xr = half(xr)
    save_file(xr, os.path.join(out, "sdxl_refiner_ldm.safetensors"))

    # ---- SDXL diffusers folder (text_encoder_2 with projection) --------------
    xlf = {k: v.float() for k, v in xl.items()}
    xunet = to_unet({k: v for k, v in xlf.items() if k.startswith("model.diffusion_model.")}, XL_UNET)
    xvae = to_vae({k: v for k, v in xlf.items() if k.startswith("first_stage_model.")}, VAE)
    xte1 = hf_clip(16, 1, 32, 2)
    xte2 = hf_clip(24, 2, 96, 2, proj=24, act="gelu")
    xpipe = StableDiffusionXLPipeline(vae=xvae, text_encoder=xte1, text_encoder_2=xte2, tokenizer=tok, tokenizer_2=tok,
                                      unet=xunet, scheduler=EulerDiscreteScheduler(prediction_type="epsilon"))
    xpipe.to(torch.float16)
    xpipe.save_pretrained(os.path.join(out, "sdxl_diffusers"), safe_serialization=True)

    # ---- GGUF as stable-diffusion.cpp's convert writes it ---------------------
    # no metadata, version 3, alignment 32, LDM names (80+ bytes), f16/f32 and
    # q8_0 for a 2-D weight whose rows are a multiple of 32.
    w = gguf.GGUFWriter(os.path.join(out, "sd1_sdcpp.gguf"), arch="sd1")
    w.kv_data[0].clear() if isinstance(w.kv_data, list) else None
    names = sorted(sd1.keys())
    g_tensors = {}
    for k in names:
        t = sd1[k].float().numpy()
        if k.endswith("ff.net.0.proj.weight"):  # [64, 8] rows of 8: keep f16
            arr = t.astype(np.float16)
            w.add_tensor(k, arr)
        elif t.ndim >= 2 and t.shape[-1] % 32 == 0:
            q = gguf.quants.quantize(t, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(k, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        elif t.ndim == 1:
            w.add_tensor(k, t.astype(np.float32))
        else:
            w.add_tensor(k, t.astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # ---- GGUF with every metadata value type, arrays, alignment 64, long names
    w = gguf.GGUFWriter(os.path.join(out, "meta_all.gguf"), arch="sdgotest")
    w.add_uint8("t.u8", 200); w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000); w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000); w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 1.5); w.add_bool("t.bool", True)
    w.add_string("t.str", "héllo wörld")
    w.add_uint64("t.u64", 18000000000000000000); w.add_int64("t.i64", -9000000000000000000)
    w.add_float64("t.f64", 2.718281828459045)
    w.add_array("t.arr_i32", [1, -2, 3])
    w.add_array("t.arr_str", ["a", "bc", ""])
    w.add_array("t.arr_f32", [0.5, 0.25])
    w.add_custom_alignment(64)
    long = "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.attn2.to_out.0.weight.with.a.longer.tail"
    vals = np.arange(48, dtype=np.float32).reshape(3, 16) / 7.0
    w.add_tensor(long, vals)
    w.add_tensor("f16_vec", (np.arange(5, dtype=np.float32) - 2).astype(np.float16))
    w.add_tensor("i32_mat", np.arange(6, dtype=np.int32).reshape(2, 3))
    q4 = gguf.quants.quantize(np.linspace(-1, 1, 64, dtype=np.float32).reshape(2, 32), gguf.GGMLQuantizationType.Q4_0)
    w.add_tensor("q4_0_mat", q4, raw_shape=q4.shape, raw_dtype=gguf.GGMLQuantizationType.Q4_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # ---- views: a transposed (strided) tensor sharing storage, and a broadcast view
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    views = {"base": base, "transposed": base.t(), "row": base[1], "col": base[:, 2]}
    torch.save(views, os.path.join(out, "views.pt"))
    record("views.pt", {k: v.contiguous() for k, v in views.items()})
    torch.save({"x": torch.zeros(2).expand(100000, 2)}, os.path.join(out, "broadcast_view.pt"))

    # ---- a pickle that asks for os.system (never executed by the C++ side) ---
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    torch.save({"x": Evil()}, os.path.join(out, "evil_os_system.ckpt"))

    class Evil2:
        def __reduce__(self):
            import builtins
            return (builtins.eval, ("1+1",))
    torch.save({"x": Evil2()}, os.path.join(out, "evil_eval.pt"))

    shutil.rmtree(tmp, ignore_errors=True)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(MANIFEST, f, separators=(",", ":"), sort_keys=True)
    total = 0
    for root, _, files in os.walk(out):
        for fn in files:
            total += os.path.getsize(os.path.join(root, fn))
    print(f"wrote {out}: {total} bytes")


if __name__ == "__main__":
    main()
