#!/usr/bin/env python3
"""Writes a full-size SD 1.5-, SD 2.1-, SDXL- or SDXL-refiner-shaped single-file
checkpoint (LDM / sgm names, f16) with random weights, for end-to-end runs and
benchmarks of the real architecture. Nothing it writes is committed (about 2 GB;
SDXL about 7 GB, its refiner about 6 GB).

    /work/venv/bin/python testdata/gen/gen_fullsize_random.py sd15 /tmp/sd15_random.safetensors

Shapes come from testdata/ref/fullsize_shapes.json (recorded by
gen_model_ref.py). Matrices get N(0, 1/fan_in), norm scales 1, biases 0, so
activations keep a sane scale through the network; the pictures are noise.
"""
import json
import os
import sys

import numpy as np
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("sd15", "sd21", "sdxl", "sdxl_refiner"):
        sys.exit("usage: gen_fullsize_random.py sd15|sd21|sdxl|sdxl_refiner OUT.safetensors")
    shapes = json.load(open(os.path.join(HERE, "..", "ref", "fullsize_shapes.json")))[sys.argv[1]]
    rng = np.random.default_rng(0)
    out = {}
    for name, shape in sorted(shapes.items()):
        shape = tuple(shape)
        if len(shape) >= 2:
            fan_in = int(np.prod(shape[1:]))
            if "embedding" in name or "positional_embedding" in name:
                fan_in = 1  # embeddings are looked up / added, not multiplied
                v = rng.standard_normal(shape, dtype=np.float32) * 0.02
            else:
                v = rng.standard_normal(shape, dtype=np.float32) / np.sqrt(fan_in)
        elif "norm" in name and name.endswith("weight") or "ln_" in name and name.endswith("weight"):
            v = np.ones(shape, np.float32)
        else:
            v = np.zeros(shape, np.float32)
        out[name] = v.astype(np.float16)
    save_file(out, sys.argv[2])
    print("wrote", sys.argv[2], sum(v.nbytes for v in out.values()) / 1e9, "GB")


if __name__ == "__main__":
    main()
