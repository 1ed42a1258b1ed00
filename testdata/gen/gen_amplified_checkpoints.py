#!/usr/bin/env python3
"""Writes two valid torch checkpoints that would take about a thousand times
their size in memory, which test_formats checks the loader refuses:

  testdata/models/deflate_bomb.pt   four 64 MiB storages of zeros deflated into
                                    about 256 KB (each entry within deflate's
                                    own ratio, together 1000x the file)
  testdata/models/view_bomb.pt      1000 transposed (strided) views of one
                                    256 KiB storage: each view is gathered into
                                    its own copy, 1000x the file

    /work/venv/bin/python testdata/gen/gen_amplified_checkpoints.py
"""
import os
import tempfile
import zipfile

import torch

MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models")
OUT = os.path.join(MODELS, "deflate_bomb.pt")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        plain = os.path.join(tmp, "plain.pt")
        torch.save({"state_dict": {"w%d" % i: torch.zeros(16 << 20) for i in range(4)}}, plain)
        with zipfile.ZipFile(plain) as src, zipfile.ZipFile(OUT, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
            for item in src.infolist():
                dst.writestr(item.filename, src.read(item.filename))
    print("wrote", OUT, os.path.getsize(OUT), "bytes")
    base = torch.arange(256 * 256, dtype=torch.float32).reshape(256, 256)
    views = os.path.join(MODELS, "view_bomb.pt")
    torch.save({"state_dict": {"v%d" % i: base.t() for i in range(1000)}}, views)
    print("wrote", views, os.path.getsize(views), "bytes")


if __name__ == "__main__":
    main()
