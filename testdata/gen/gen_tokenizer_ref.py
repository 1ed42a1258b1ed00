#!/usr/bin/env python3
"""Reference token ids for csrc/tests/test_tokenizer.cpp.

Builds vocab.json + merges.txt from third_party/clip/bpe_simple_vocab_16e6.txt.gz
exactly as the CLIP vocabulary rule says (256 byte characters, the same with
</w>, the first 48 894 merges joined, <|startoftext|>, <|endoftext|>) into a
temporary folder, tokenizes a fixed list of prompts with transformers'
CLIPTokenizer and writes testdata/tokenizer/ref_ids.json.

Three reference tokenizers, each run from its own environment (the script
merges its part into the JSON file, so run it once per part):

  --part basic     transformers 4.x CLIPTokenizer (the Python "slow" one)
                   WITHOUT ftfy installed, i.e. its BasicTokenizer fallback.
                   The script refuses to run if ftfy is importable.
                   e.g. a venv with: pip install "transformers<5" tokenizers
  --part fast      transformers 5.x CLIPTokenizer (backed by `tokenizers`).
  --part openclip  open_clip's SimpleTokenizer (SD 2.x: pad 0, 77 ids) for
                   the ASCII subset of the prompts, where its ftfy/html
                   clean-up is the identity. Prompts holding "<|" are left
                   out: open_clip's own special tokens are spelled
                   <start_of_text>/<end_of_text>, so it tokenizes a literal
                   <|endoftext|> as text, unlike transformers.

    /work/venv-tok4/bin/python testdata/gen/gen_tokenizer_ref.py --part basic
    /work/venv/bin/python      testdata/gen/gen_tokenizer_ref.py --part fast
    /work/venv/bin/python      testdata/gen/gen_tokenizer_ref.py --part openclip
"""
import argparse
import gzip
import json
import os
import random
import sys
import tempfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
GZ = os.path.join(ROOT, "third_party", "clip", "bpe_simple_vocab_16e6.txt.gz")
OUT = os.path.join(ROOT, "testdata", "tokenizer", "ref_ids.json")
N_MERGES = 49152 - 256 - 2


def byte_chars():
    """The byte-to-unicode table, in vocabulary order: (byte, character)."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    rest = [b for b in range(256) if b not in printable]
    return [(b, chr(b)) for b in printable] + [(b, chr(256 + i)) for i, b in enumerate(rest)]


def build_files(d):
    lines = gzip.open(GZ).read().decode("utf-8").split("\n")
    merges = lines[1:1 + N_MERGES]
    vocab = [c for _, c in byte_chars()]
    vocab += [c + "</w>" for c in vocab]
    for m in merges:
        vocab.append("".join(m.split()))
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408
    with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({v: i for i, v in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    return vocab, merges


def prompts():
    p = [
        "", " ", "a photo of a cat", "A Photo Of A CAT", "an astronaut riding a horse on mars",
        "a photograph of an astronaut riding a horse", "masterpiece, best quality, 1girl, solo, long hair",
        "portrait of a woman, (detailed eyes:1.2), [blurry], ((sharp focus))",
        "landscape, mountains, lake, sunset, 8k, uhd, dslr, soft lighting, high quality, film grain",
        "it's a dog's life", "they're here, we've been there, I'm sure you'll see, he'd go",
        "DON'T STOP", "'s 't 're 've 'm 'll 'd", "rock'n'roll", "o'clock", "''quoted''", "'sup",
        "hello,world", "hello , world", "hello ,world ,", "a,b,c,d,e,f", "..., !!! ???", "a.b.c", "e.g. i.e. etc.",
        "1234567890", "3.14159", "2024-01-01", "x=1+2*3/4", "100% pure", "$9.99", "#hashtag @user",
        "v1.5 vs v2.1", "1st 2nd 3rd 4th", "1,000,000", "0.5x", "4k 8k 16k", "abc123def456",
        "a\tb\nc\r\nd", "   leading and trailing   ", "multiple     spaces    here", "\n\nnewlines\n\n",
        "tabs\t\t\tand\tspaces", "\u00a0non-breaking\u00a0space", "em\u2003space", "ideographic\u3000space",
        "caf\u00e9", "cafe\u0301", "na\u00efve r\u00e9sum\u00e9", "\u00c9COLE \u00c0 PARIS", "Stra\u00dfe",
        "\u00c5ngstr\u00f6m", "\u212bngstr\u00f6m", "Ma\u00f1ana", "S\u00e3o Paulo", "Z\u00fcrich", "\u0141\u00f3d\u017a",
        "\u0130stanbul", "\u00c7ok g\u00fczel", "\u03b1\u03b2\u03b3 \u0394\u0395\u0396", "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440",
        "\u05e9\u05dc\u05d5\u05dd", "\u0645\u0631\u062d\u0628\u0627", "\u0928\u092e\u0938\u094d\u0924\u0947",
        "\u732b", "\u732b\u3068\u72ac", "\u4e00\u53ea\u732b\u5750\u5728\u57ab\u5b50\u4e0a", "\u6771\u4eac\u30bf\u30ef\u30fc",
        "\u3053\u3093\u306b\u3061\u306f\u4e16\u754c", "\u30ab\u30bf\u30ab\u30ca", "\ud55c\uad6d\uc5b4 \ubb38\uc7a5",
        "\u1100\u1161\u11a8", "cat \U0001F431 and dog \U0001F436", "\U0001F600\U0001F601\U0001F602",
        "\U0001F468\u200d\U0001F469\u200d\U0001F467", "\u2764\ufe0f love", "\U0001F1FA\U0001F1F8 flag",
        "\u00bd \u00bc \u00be", "\u2460\u2461\u2462", "\u00b2\u00b3", "\u0661\u0662\u0663",
        "\u2160\u2161\u2162 roman", "\u2018curly\u2019 \u201cquotes\u201d", "don\u2019t", "em\u2014dash en\u2013dash",
        "\u2026ellipsis", "\u00a9 \u00ae \u2122", "\u00b0C", "\u00b5m \u00e6\u00f8\u00e5", "\uff21\uff22\uff23 fullwidth",
        "\ufb01 ligature", "\u0301 leading combining", "a\u0308\u0323 stacked", "\u1e9e capital sharp s",
        "x\u200by zero width", "soft\u00adhyphen", "ctrl\u0001char\u007f", "bell\u0007", "\ufeffbom",
        "\ue000 private", "<|startoftext|>a cat<|endoftext|>", "a <|endoftext|> b", "<|ENDOFTEXT|>",
        "x<|endoftext|>y", "!<|endoftext|>", "<|startoftext|><|startoftext|>", "<|startoftext", "<||>",
        "(masterpiece:1.2), (best quality:1.1), 1girl", "[[low quality]]", "\\(escaped\\)", "a BREAK b",
        "url: https://example.com/path?q=1&x=2", "email@example.com", "C:\\Windows\\path", "snake_case_name",
        "camelCaseName", "kebab-case-name", "ALLCAPS", "MiXeD CaSe WoRdS", "<lora:name:0.8>", "{a|b|c}",
        "__wildcard__", "a+b=c", "~tilde~ ^caret^ `backtick`", "|pipe|", "***stars***", "---", "...",
        "!!!", "?!", "a--b", "a__b", "ab..cd", "x" * 60, "supercalifragilisticexpialidocious",
        "pneumonoultramicroscopicsilicovolcanoconiosis", "antidisestablishmentarianism",
        "photorealistic hyperdetailed ultrasharp octane render unreal engine trending on artstation",
        "by greg rutkowski and alphonse mucha", "studio ghibli style", "cyberpunk city at night, neon lights, rain",
        "a red apple on a wooden table, still life", "a Shiba Inu wearing a beret and black turtleneck",
        "an armchair in the shape of an avocado", "a bowl of soup that looks like a monster, knitted out of wool",
        "teddy bears working on new AI research underwater with 1990s technology",
        "\u039f\u0394\u039f\u03a3 \u03a3\u0391\u03a3. \u03a3", "a\u0345b !\u0345? \u1fb3", "\u1100\u1161 \u1112\u1161\u11ab",
        "\u00e9\u0301\u0327 e\u0327\u0301", "\u0958\u0915\u093c", "\u1e0d\u0307 d\u0307\u0323",
    ]
    long_words = ("a majestic castle on a hill surrounded by a dense forest with a river flowing through it, "
                  "dramatic clouds, golden hour, volumetric light, highly detailed, intricate, elegant").split()
    rng = random.Random(20261126)
    for n in (80, 150, 400):
        p.append(" ".join(rng.choice(long_words) for _ in range(n)))
    p.append(", ".join(["tag%d" % i for i in range(120)]))
    p.append("word " * 300)
    # random printable ASCII
    for _ in range(40):
        n = rng.randint(1, 60)
        p.append("".join(chr(rng.randint(32, 126)) for _ in range(n)))
    # random mixes of interesting code points
    pool = ("abcXYZ019 ,.'!?-_()[]:;\u00e9\u00e8\u00fc\u00df\u00c5\u0301\u0308\u03a3\u03c3\u0416\u0436\u4e2d\u6587"
            "\u3042\u30a2\uac00\U0001F600\u200d\u2019\u00a0\u3000\t\n\u00bd\u2460\u0661\uff21\ufb01")
    for _ in range(40):
        n = rng.randint(1, 25)
        p.append("".join(rng.choice(pool) for _ in range(n)))
    return p


def invalid_utf8():
    return [b"abc\xffdef", b"\xc3", b"caf\xc3", b"\xe2\x82", b"\xed\xa0\x80 surrogate", b"\xf4\x90\x80\x80 big",
            b"\xc0\xaf overlong", b"\x80\x80 lone continuation", b"ok \xe6\x97\xa5\xe6\x9c\xac \xfe end",
            b"\xf0\x9f\x98 emoji cut"]


def load_json():
    if os.path.exists(OUT):
        with open(OUT, encoding="utf-8") as f:
            return json.load(f)
    return {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["basic", "fast", "openclip"], required=True)
    args = ap.parse_args()

    ps = prompts()
    bad = invalid_utf8()
    data = load_json()
    data["prompts"] = ps
    data["invalid_utf8_hex"] = [b.hex() for b in bad]
    data.setdefault("sources", {})

    if args.part in ("basic", "fast"):
        import transformers
        from transformers import CLIPTokenizer
        major = int(transformers.__version__.split(".")[0])
        if args.part == "basic":
            import importlib.util
            if importlib.util.find_spec("ftfy") is not None:
                sys.exit("ftfy is installed here: the basic part needs transformers' BasicTokenizer fallback")
            if major >= 5:
                sys.exit("the basic part needs transformers 4.x (its Python CLIPTokenizer)")
        elif major < 5:
            sys.exit("the fast part needs transformers 5.x")
        with tempfile.TemporaryDirectory() as d:
            build_files(d)
            tok = CLIPTokenizer.from_pretrained(d)
            if args.part == "basic":
                assert tok.fix_text is None and not tok.is_fast
            ids = [tok(p, add_special_tokens=False)["input_ids"] for p in ps]
            padded = [tok(p, padding="max_length", max_length=77, truncation=True)["input_ids"] for p in ps[:40]]
            padded += [tok(p, padding="max_length", max_length=77, truncation=True)["input_ids"]
                       for p in ps if len(p) > 300]
            badids = [tok(b.decode("utf-8", "replace"), add_special_tokens=False)["input_ids"] for b in bad]
        key = "hf_" + args.part
        data[key] = {"ids": ids, "padded77_first40_and_long": padded, "invalid_utf8": badids}
        data["sources"][key] = "transformers %s CLIPTokenizer (%s)" % (
            transformers.__version__, "Python, no ftfy" if args.part == "basic" else "tokenizers backend")
    else:
        import open_clip
        from open_clip.tokenizer import SimpleTokenizer
        st = SimpleTokenizer()
        sub = [i for i, p in enumerate(ps)
               if p.isascii() and "&" not in p and "<|" not in p
               and all(32 <= ord(c) < 127 or c in "\t\n\r" for c in p)]
        rows = st([ps[i] for i in sub], context_length=77).tolist()
        data["open_clip"] = {"indices": sub, "ids77": rows}
        data["sources"]["open_clip"] = "open_clip_torch %s SimpleTokenizer (pad 0)" % open_clip.__version__

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=True, separators=(",", ":"))
    print("%s: %d prompts -> %s" % (args.part, len(ps), OUT))


if __name__ == "__main__":
    main()
