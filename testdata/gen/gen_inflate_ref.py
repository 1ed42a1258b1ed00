#!/usr/bin/env python3
"""Writes compressed test streams for csrc/tests/test_inflate.cpp.

The payloads are not stored: both this script and the C++ test rebuild them
from the same tiny generator (an LCG), so only the compressed streams (made
by Python's zlib/gzip) are committed, under testdata/inflate/.

    python3 testdata/gen/gen_inflate_ref.py
"""
import gzip
import io
import json
import os
import zlib

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "inflate")

WORDS = [b"a", b"photo", b"of", b"cat", b"sitting", b"on", b"the", b"mat", b",", b"highly",
         b"detailed", b"8k", b"masterpiece", b"(", b")", b"\n", b"lorem", b"ipsum", b"dolor", b"sit"]


class Lcg:
    def __init__(self, seed):
        self.s = seed & 0xFFFFFFFF

    def next(self):
        self.s = (self.s * 1664525 + 1013904223) & 0xFFFFFFFF
        return self.s >> 8


def payload(kind, size, seed):
    r = Lcg(seed)
    out = bytearray()
    if kind == "random":
        while len(out) < size:
            out.append(r.next() & 0xFF)
    elif kind == "text":
        while len(out) < size:
            out += WORDS[r.next() % len(WORDS)] + b" "
    elif kind == "runs":
        while len(out) < size:
            out += bytes([r.next() & 0xFF]) * (1 + r.next() % 300)
    return bytes(out[:size])


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = []

    def add(name, kind, size, seed, data):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        cases.append({"file": name, "kind": kind, "size": size, "seed": seed})

    def zraw(p, level=6, strategy=zlib.Z_DEFAULT_STRATEGY):
        c = zlib.compressobj(level, zlib.DEFLATED, -15, 9, strategy)
        return c.compress(p) + c.flush()

    specs = [("text", 6000, 1), ("random", 2000, 2), ("runs", 40000, 3), ("text", 0, 4), ("text", 70000, 5)]
    for kind, size, seed in specs:
        p = payload(kind, size, seed)
        base = "%s_%d" % (kind, size)
        if size > 6000:  # keep the committed files small: no stored copies of big payloads
            add("%s_l9.deflate" % base, kind, size, seed, zraw(p, 9))
            add("%s.gz" % base, kind, size, seed, gzip.compress(p, 6, mtime=0))
            continue
        for level in (0, 1, 6, 9):
            add("%s_l%d.deflate" % (base, level), kind, size, seed, zraw(p, level))
            add("%s_l%d.zz" % (base, level), kind, size, seed, zlib.compress(p, level))
        add("%s_fixed.deflate" % base, kind, size, seed, zraw(p, 6, zlib.Z_FIXED))
        for level in (0, 6):  # many blocks: a sync flush every 700 bytes adds empty stored blocks
            c = zlib.compressobj(level, zlib.DEFLATED, -15)
            parts = [c.compress(p[i:i + 700]) + c.flush(zlib.Z_SYNC_FLUSH) for i in range(0, len(p), 700)]
            add("%s_l%d_sync.deflate" % (base, level), kind, size, seed, b"".join(parts) + c.flush())
        add("%s_huffonly.deflate" % base, kind, size, seed, zraw(p, 6, zlib.Z_HUFFMAN_ONLY))
        add("%s_rle.deflate" % base, kind, size, seed, zraw(p, 6, zlib.Z_RLE))
        add("%s.gz" % base, kind, size, seed, gzip.compress(p, 9, mtime=0))
    # gzip with a file name, a comment-free header CRC is not produced by Python;
    # a name + two members exercises FNAME and multi-member files.
    p = payload("text", 3000, 7)
    bio = io.BytesIO()
    with gzip.GzipFile(filename="prompt.txt", mode="wb", fileobj=bio, mtime=0) as g:
        g.write(p[:1000])
    bio2 = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=bio2, mtime=0) as g:
        g.write(p[1000:])
    add("text_3000_named_2members.gz", "text", 3000, 7, bio.getvalue() + bio2.getvalue())

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(cases, f, indent=1)
    print("wrote %d streams to %s" % (len(cases), OUT))


if __name__ == "__main__":
    main()
