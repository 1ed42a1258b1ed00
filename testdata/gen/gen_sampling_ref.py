#!/usr/bin/env python3
"""Reference data for csrc/tests/test_rng.cpp and csrc/tests/test_sampling.cpp.

Run with the project venv (torch, k-diffusion, diffusers):

    /work/venv/bin/python testdata/gen/gen_sampling_ref.py            # CPU references
    python3 testdata/gen/gen_sampling_ref.py --cuda OUTDIR            # on a CUDA machine

Writes testdata/sampling/ref.txt (one record per line: `key count v0 v1 ...`,
float32 values printed with 9 significant digits, which round-trips float32
exactly) and testdata/sampling/randn_cpu_seed42_16384.bin (float32 LE).
With --cuda it writes OUTDIR/cuda_ref.txt from torch's CUDA generator, which
the "cuda" (Philox) RNG reproduces.

The denoiser used for the sampler trajectories is analytic and nonlinear:
    D(x, sigma) = x * a + b * sin(x),  a = 1 / (sigma^2 + 1),
                                       b = 0.5 * sigma / sqrt(sigma^2 + 1)
evaluated in float32 (the C++ test computes the same expression).
"""
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.normpath(os.path.join(HERE, "..", "sampling"))

records = []


def put(key, values):
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    vals = np.asarray(values, dtype=np.float32).reshape(-1).astype(np.float64)
    body = " ".join("%.9g" % v for v in vals)
    records.append("%s %d %s" % (key, len(vals), body))


def f32(t):
    return t.detach().to(torch.float32).cpu().numpy().reshape(-1)


# ---------------------------------------------------------------------------------
def gen_cuda(outdir):
    # torch's CUDA generator, for the Philox ("cuda") RNG.
    for seed in [0, 1, 42, 12345, 4294967297]:
        for n in [1, 12, 256]:
            g = torch.Generator(device="cuda").manual_seed(seed)
            put("cuda_randn_s%d_n%d" % (seed, n), f32(torch.randn(n, generator=g, device="cuda")))
    # Consecutive calls on one generator (the offset advances once per call).
    g = torch.Generator(device="cuda").manual_seed(7)
    for k, n in enumerate([256, 256, 100, 16]):
        put("cuda_seq_s7_call%d_n%d" % (k, n), f32(torch.randn(n, generator=g, device="cuda")))
    # Diagnostics: the Philox words for seed 0, n = 12, and Box-Muller of the
    # first two words evaluated in float32 on the GPU (CUDA's logf/sinf).
    M = [0xD2511F53, 0xCD9E8D57]
    W = [0x9E3779B9, 0xBB67AE85]
    n = 12
    c = [np.zeros(n, np.uint64), np.zeros(n, np.uint64), np.arange(n, dtype=np.uint64), np.zeros(n, np.uint64)]
    k0, k1 = 0, 0
    for r in range(10):
        p0 = c[0] * np.uint64(M[0])
        p1 = c[2] * np.uint64(M[1])
        c = [((p1 >> np.uint64(32)) ^ c[1] ^ np.uint64(k0)) & np.uint64(0xFFFFFFFF), p1 & np.uint64(0xFFFFFFFF),
             ((p0 >> np.uint64(32)) ^ c[3] ^ np.uint64(k1)) & np.uint64(0xFFFFFFFF), p0 & np.uint64(0xFFFFFFFF)]
        k0 = (k0 + W[0]) & 0xFFFFFFFF
        k1 = (k1 + W[1]) & 0xFFFFFFFF
    for w in range(4):
        records.append("philox_words_s0_n12_w%d %d %s" % (w, n, " ".join(str(int(v)) for v in c[w])))
    A = np.float32(2.3283064e-10)
    B = np.float32(2.3283064e-10 * 6.2831855)
    xs = torch.tensor(c[0].astype(np.float64), dtype=torch.float32, device="cuda")
    ys = torch.tensor(c[1].astype(np.float64), dtype=torch.float32, device="cuda")
    u = xs * float(A) + float(A / 2)
    v = ys * float(B) + float(B / 2)
    put("cuda_f32_boxmuller_s0_n12", f32(torch.sqrt(-2.0 * torch.log(u)) * torch.sin(v)))
    os.makedirs(outdir, exist_ok=True)
    dev = torch.cuda.get_device_name(0)
    with open(os.path.join(outdir, "cuda_ref.txt"), "w") as f:
        f.write('# torch.Generator("cuda") references, recorded on an %s with torch %s by '
                'testdata/gen/gen_sampling_ref.py --cuda\n' % (dev, torch.__version__))
        f.write("\n".join(records) + "\n")
    print("torch", torch.__version__, "wrote", len(records), "records")


# ---------------------------------------------------------------------------------
def denoiser_fn(x, sigma):
    s = sigma.reshape(-1)[0].to(torch.float32)
    a = 1.0 / (s * s + 1.0)
    b = 0.5 * s / torch.sqrt(s * s + 1.0)
    return x * a + b * torch.sin(x)


def gen_cpu():
    import types
    # k_diffusion/__init__ imports its CLIP-based evaluation module, which
    # needs pkg_resources; the samplers do not. Stand in an empty module.
    sys.modules.setdefault("clip", types.ModuleType("clip"))
    import k_diffusion as K
    from k_diffusion import sampling as KS
    from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                           EulerDiscreteScheduler, LCMScheduler)

    # ---- torch.randn with a CPU generator ----
    for seed in [0, 1, 42, 12345, 4294967297]:
        for n in [1, 7, 15, 16, 17, 100]:
            g = torch.Generator().manual_seed(seed)
            put("cpu_randn_s%d_n%d" % (seed, n), f32(torch.randn(n, generator=g)))
    # One generator, several calls: the small-size path caches its second
    # Box-Muller value; the large path does not touch the cache.
    g = torch.Generator().manual_seed(3)
    for k, n in enumerate([7, 3, 20, 5, 1, 33]):
        put("cpu_seq_s3_call%d_n%d" % (k, n), f32(torch.randn(n, generator=g)))
    g = torch.Generator().manual_seed(42)
    big = f32(torch.randn(4 * 64 * 64, generator=g))
    big.astype("<f4").tofile(os.path.join(OUT_DIR, "randn_cpu_seed42_16384.bin"))

    # torch's generic CPU kernel (what arm64 builds run): same draws, libm
    # Box-Muller. ATEN_CPU_CAPABILITY must be set before torch starts.
    import subprocess
    code = ("import torch\n"
            "for s, n in [(0, 16), (42, 100), (7, 1000)]:\n"
            "    g = torch.Generator().manual_seed(s)\n"
            "    v = torch.randn(n, generator=g).tolist()\n"
            "    print('cpu_generic_randn_s%d_n%d %d %s' % (s, n, n, ' '.join('%.9g' % x for x in v)))\n")
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stdout
    records.extend(line for line in out.splitlines() if line.startswith("cpu_generic_"))

    # A1111's "NV" source (modules/rng_philox.py) evaluates Box-Muller with
    # numpy in float64 on the Philox words; the same arithmetic, written out:
    def philox_words(seed, offset, n):
        M = [0xD2511F53, 0xCD9E8D57]
        W = [0x9E3779B9, 0xBB67AE85]
        c = [np.full(n, offset, np.uint64), np.zeros(n, np.uint64), np.arange(n, dtype=np.uint64),
             np.zeros(n, np.uint64)]
        k0, k1 = seed & 0xFFFFFFFF, seed >> 32
        for r in range(10):
            p0 = c[0] * np.uint64(M[0])
            p1 = c[2] * np.uint64(M[1])
            c = [((p1 >> np.uint64(32)) ^ c[1] ^ np.uint64(k0)) & np.uint64(0xFFFFFFFF),
                 p1 & np.uint64(0xFFFFFFFF),
                 ((p0 >> np.uint64(32)) ^ c[3] ^ np.uint64(k1)) & np.uint64(0xFFFFFFFF),
                 p0 & np.uint64(0xFFFFFFFF)]
            k0 = (k0 + W[0]) & 0xFFFFFFFF
            k1 = (k1 + W[1]) & 0xFFFFFFFF
        return c

    A = np.array([2.3283064e-10], dtype=np.float32)
    B = np.array([2.3283064e-10 * 6.2831855], dtype=np.float32)
    for seed, offset, n in [(0, 0, 12), (42, 0, 256), (42, 1, 256), (123456789012, 3, 100)]:
        w = philox_words(seed, offset, n)
        x = w[0].astype(np.uint32)
        y = w[1].astype(np.uint32)
        u = x * A + A / 2  # uint32 * float32 array -> float64
        v = y * B + B / 2
        assert u.dtype == np.float64
        put("a1111_philox_s%d_o%d_n%d" % (seed, offset, n), (np.sqrt(-2.0 * np.log(u)) * np.sin(v)).astype(np.float32))

    # ---- the LDM schedule (float64 betas/cumprod -> float32) ----
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    ac64 = np.cumprod(1.0 - betas.numpy(), axis=0)
    ac = torch.tensor(ac64, dtype=torch.float32)
    put("ldm_alphas_cumprod", f32(ac))

    class Inner(torch.nn.Module):
        def forward(self, x, t):
            raise RuntimeError("unused")

    wrap = K.external.DiscreteEpsDDPMDenoiser(Inner(), ac, quantize=False)
    put("ldm_sigmas", f32(wrap.sigmas))

    probe = torch.tensor([0.02, 0.0291675, 0.03, 0.1, 0.5, 1.0, 2.5, 7.0, 14.0, 14.6146, 20.0], dtype=torch.float32)
    put("sigma_probe", f32(probe))
    put("sigma_to_t", f32(wrap.sigma_to_t(probe)))
    tprobe = torch.tensor([0.0, 0.5, 1.0, 10.25, 100.0, 499.5, 998.9998, 999.0], dtype=torch.float32)
    put("t_probe", f32(tprobe))
    put("t_to_sigma", f32(wrap.t_to_sigma(tprobe)))

    smin, smax = float(wrap.sigmas[0]), float(wrap.sigmas[-1])
    for n in [1, 2, 3, 7, 10, 20, 30, 50]:
        put("sched_discrete_n%d" % n, f32(wrap.get_sigmas(n)))
        put("sched_karras_n%d" % n, f32(KS.get_sigmas_karras(n, smin, smax)))
        put("sched_exponential_n%d" % n, f32(KS.get_sigmas_exponential(n, smin, smax)))
        # A1111 / ComfyUI sgm_uniform ("normal_scheduler" with sgm=True).
        start = wrap.sigma_to_t(torch.tensor(smax))
        end = wrap.sigma_to_t(torch.tensor(smin))
        sigs = [float(wrap.t_to_sigma(ts)) for ts in torch.linspace(start, end, n + 1)[:-1]] + [0.0]
        put("sched_sgm_uniform_n%d" % n, np.array(sigs, dtype=np.float32))
        # A1111 / ComfyUI simple.
        ss = len(wrap.sigmas) / n
        sigs = [float(wrap.sigmas[-(1 + int(x * ss))]) for x in range(n)] + [0.0]
        put("sched_simple_n%d" % n, np.array(sigs, dtype=np.float32))
        # A1111 / ComfyUI ddim_uniform.
        sigs = []
        step = max(len(wrap.sigmas) // n, 1)
        x = 1
        while x < len(wrap.sigmas):
            sigs.append(float(wrap.sigmas[x]))
            x += step
        sigs = sigs[::-1] + [0.0]
        put("sched_ddim_uniform_n%d" % n, np.array(sigs, dtype=np.float32))
    for n in [1, 2, 4, 8, 50]:
        lcm = LCMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
        lcm.set_timesteps(n)
        put("lcm_timesteps_n%d" % n, lcm.timesteps.numpy().astype(np.float32))

    # ---- diffusers tables and schedules ----
    eul = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    put("diffusers_alphas_cumprod", f32(eul.alphas_cumprod))
    for spacing in ["linspace", "leading", "trailing"]:
        for n in [20, 7]:
            e = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       timestep_spacing=spacing, steps_offset=1)
            e.set_timesteps(n)
            put("diffusers_euler_%s_n%d_timesteps" % (spacing, n), f32(e.timesteps))
            put("diffusers_euler_%s_n%d_sigmas" % (spacing, n), f32(e.sigmas))
            put("diffusers_euler_%s_n%d_init_sigma" % (spacing, n), [float(e.init_noise_sigma)])
            d = DPMSolverMultistepScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                            timestep_spacing=spacing, steps_offset=1,
                                            algorithm_type="dpmsolver++", solver_order=2)
            d.set_timesteps(n)
            put("diffusers_dpm_%s_n%d_timesteps" % (spacing, n), d.timesteps.numpy().astype(np.float32))
            put("diffusers_dpm_%s_n%d_sigmas" % (spacing, n), f32(d.sigmas))

    # ---- k-diffusion sampler trajectories ----
    shape = (1, 4, 8, 8)

    def run_kd(name, sigmas, seed):
        torch.manual_seed(seed)
        x = torch.randn(shape) * sigmas[0]
        if name == "euler":
            return KS.sample_euler(denoiser_fn, x, sigmas, disable=True)
        if name == "euler_a":
            return KS.sample_euler_ancestral(denoiser_fn, x, sigmas, disable=True)
        if name == "heun":
            return KS.sample_heun(denoiser_fn, x, sigmas, disable=True)
        if name == "dpm2":
            return KS.sample_dpm_2(denoiser_fn, x, sigmas, disable=True)
        if name == "dpm++2s_a":
            return KS.sample_dpmpp_2s_ancestral(denoiser_fn, x, sigmas, disable=True)
        if name == "dpm++2m":
            return KS.sample_dpmpp_2m(denoiser_fn, x, sigmas, disable=True)
        if name == "lcm":
            # k-diffusion's sample_lcm (not in the 0.1.1 release on PyPI):
            # x = D(x, s_i); if s_{i+1} > 0: x += s_{i+1} * randn_like(x).
            for i in range(len(sigmas) - 1):
                x = denoiser_fn(x, sigmas[i] * x.new_ones([1]))
                if sigmas[i + 1] > 0:
                    x = x + sigmas[i + 1] * torch.randn_like(x)
            return x
        raise ValueError(name)

    for sched_name, sigmas in [("karras10", KS.get_sigmas_karras(10, smin, smax)),
                               ("discrete12", wrap.get_sigmas(12))]:
        for name in ["euler", "euler_a", "heun", "dpm2", "dpm++2s_a", "dpm++2m", "lcm"]:
            put("traj_%s_%s_s1234" % (name, sched_name), f32(run_kd(name, sigmas, 1234)))
    # euler_a with eta = 0.5, and s_noise = 1 (the default) on sgm-ish sigmas.
    torch.manual_seed(99)
    sig = KS.get_sigmas_exponential(8, smin, smax)
    x = torch.randn(shape) * sig[0]
    put("traj_euler_a_eta05_exp8_s99", f32(KS.sample_euler_ancestral(denoiser_fn, x, sig, eta=0.5, disable=True)))

    # ---- the full k-diffusion wrapper around an analytic "network" ----
    # F(x_in, t) = 0.3 * tanh(x_in) + 0.0005 * t * x_in, as eps and as v, with
    # k-diffusion's DiscreteEpsDDPMDenoiser / DiscreteVDDPMDenoiser (c_in
    # scaling, fractional t from sigma_to_t, c_skip/c_out).
    class Net(torch.nn.Module):
        def forward(self, x, t):
            return 0.3 * torch.tanh(x) + 0.0005 * t.reshape(-1, 1, 1, 1) * x

    for cls, tag in [(K.external.DiscreteEpsDDPMDenoiser, "eps"), (K.external.DiscreteVDDPMDenoiser, "v")]:
        wrapped = cls(Net(), ac, quantize=False)  # get_eps / get_v call the inner model
        sig = KS.get_sigmas_karras(10, smin, smax)
        torch.manual_seed(4321)
        x = torch.randn(shape) * sig[0]
        put("traj_wrapped_%s_euler_karras10_s4321" % tag, f32(KS.sample_euler(wrapped, x, sig, disable=True)))

    # ---- diffusers scheduler loops with the same analytic model ----
    def eps_from_ve(x_ve, sigma):
        # The "U-Net" output (epsilon) whose denoised value is D(x_ve, sigma).
        return (x_ve - denoiser_fn(x_ve, sigma.reshape(1))) / sigma

    n = 20
    for spacing in ["linspace", "leading"]:
        for cls, tag in [(EulerDiscreteScheduler, "euler"), (EulerAncestralDiscreteScheduler, "euler_a")]:
            sch = cls(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                      timestep_spacing=spacing, steps_offset=1)
            sch.set_timesteps(n)
            g = torch.Generator().manual_seed(777)
            lat = torch.randn(shape, generator=g) * sch.init_noise_sigma
            for k, t in enumerate(sch.timesteps):
                sigma = sch.sigmas[k]
                sch.scale_model_input(lat, t)  # the model input itself is not used
                eps = eps_from_ve(lat, sigma)
                lat = sch.step(eps, t, lat, generator=g).prev_sample
            put("diffusers_traj_%s_%s_n%d_s777" % (tag, spacing, n), f32(lat))
        sch = DPMSolverMultistepScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                          timestep_spacing=spacing, steps_offset=1,
                                          algorithm_type="dpmsolver++", solver_order=2)
        sch.set_timesteps(n)
        g = torch.Generator().manual_seed(777)
        lat = torch.randn(shape, generator=g) * sch.init_noise_sigma
        for k, t in enumerate(sch.timesteps):
            sigma = sch.sigmas[k]
            x_ve = lat * torch.sqrt(sigma * sigma + 1.0)
            eps = eps_from_ve(x_ve, sigma)
            lat = sch.step(eps, t, lat).prev_sample
        put("diffusers_traj_dpm_%s_n%d_s777" % (spacing, n), f32(lat))
    # DDIM, eta = 0, SD configuration (leading, steps_offset 1, set_alpha_to_one False).
    for n in [10, 20]:
        sch = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                            clip_sample=False, set_alpha_to_one=False, steps_offset=1, timestep_spacing="leading")
        sch.set_timesteps(n)
        g = torch.Generator().manual_seed(555)
        lat = torch.randn(shape, generator=g) * sch.init_noise_sigma
        table = ((1 - sch.alphas_cumprod) / sch.alphas_cumprod) ** 0.5
        for t in sch.timesteps:
            sigma = table[int(t)]
            x_ve = lat * torch.sqrt(sigma * sigma + 1.0)
            eps = eps_from_ve(x_ve, sigma)
            lat = sch.step(eps, t, lat, eta=0.0).prev_sample
        put("diffusers_ddim_n%d_timesteps" % n, sch.timesteps.numpy().astype(np.float32))
        put("diffusers_traj_ddim_n%d_s555" % n, f32(lat))

    with open(os.path.join(OUT_DIR, "ref.txt"), "w") as f:
        f.write("# generated by testdata/gen/gen_sampling_ref.py; torch %s\n" % torch.__version__)
        f.write("\n".join(records) + "\n")
    print("wrote", len(records), "records")


if __name__ == "__main__":
    torch.set_num_threads(1)
    if len(sys.argv) >= 3 and sys.argv[1] == "--cuda":
        gen_cuda(sys.argv[2])
    else:
        os.makedirs(OUT_DIR, exist_ok=True)
        gen_cpu()
