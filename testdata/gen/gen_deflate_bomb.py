#!/usr/bin/env python3
"""Writes testdata/models/deflate_bomb.pt: a valid torch zip checkpoint whose
four 64 MiB storages of zeros are deflate-compressed into a file of about
256 KB (each entry within deflate's own ratio, together 1000x the file).
test_formats checks that the loader refuses it by its total, not only per
entry.

    /work/venv/bin/python testdata/gen/gen_deflate_bomb.py
"""
import os
import tempfile
import zipfile

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "deflate_bomb.pt")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        plain = os.path.join(tmp, "plain.pt")
        torch.save({"state_dict": {"w%d" % i: torch.zeros(16 << 20) for i in range(4)}}, plain)
        with zipfile.ZipFile(plain) as src, zipfile.ZipFile(OUT, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
            for item in src.infolist():
                dst.writestr(item.filename, src.read(item.filename))
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
