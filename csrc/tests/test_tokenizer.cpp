// Tests for the CLIP tokenizer (csrc/text/tokenizer) against transformers /
// open_clip reference ids (testdata/gen/gen_tokenizer_ref.py), and for A1111
// prompt weighting and chunking (csrc/text/prompt_parse).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <unistd.h>
#include <string>
#include <thread>
#include <vector>

#include "formats/json.h"
#include "testing.h"
#include "text/clip_merges_data.h"
#include "text/prompt_parse.h"
#include "text/tokenizer.h"
#include "text/unicode.h"
#include "util/inflate.h"

using namespace sdgo;
using namespace sdgo::text;

namespace {

std::string read_text(const std::string & path) {
    std::string out;
    FILE * f = std::fopen(path.c_str(), "rb");
    if (!f) return out;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
    std::fclose(f);
    return out;
}

bool write_text(const std::string & path, const std::string & s) {
    FILE * f = std::fopen(path.c_str(), "wb");
    if (!f) return false;
    bool ok = std::fwrite(s.data(), 1, s.size(), f) == s.size();
    return std::fclose(f) == 0 && ok;
}

const formats::Json & ref() {
    static formats::Json j;
    static bool loaded = [] {
        std::string s = read_text(testing::source_path("testdata/tokenizer/ref_ids.json"));
        return formats::json_parse(s.data(), s.size(), &j).ok();
    }();
    (void)loaded;
    return j;
}

std::vector<int32_t> ids_of(const formats::Json & arr) {
    std::vector<int32_t> v;
    for (const auto & x : arr.items) v.push_back(int32_t(x.num));
    return v;
}

std::string join(const std::vector<int32_t> & v) {
    std::string s;
    for (int32_t x : v) s += std::to_string(x) + " ";
    return s;
}

std::string unhex(const std::string & h) {
    std::string out;
    for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(char(std::strtol(h.substr(i, 2).c_str(), nullptr, 16)));
    return out;
}

// A tokenizer of our own with the given normalisation, sharing nothing.
ClipTokenizer * fresh(Normalization n) {
    ClipTokenizer * t = new ClipTokenizer();
    Status st = t->load_merges_gz(clip_merges_gz_data(), clip_merges_gz_size());
    if (!st.ok()) std::printf("load: %s\n", st.message().c_str());
    t->set_normalization(n);
    return t;
}

void check_against(const char * key, Normalization norm) {
    const formats::Json & j = ref();
    const formats::Json * prompts = j.get("prompts");
    const formats::Json * part = j.get(key);
    REQUIRE(prompts && part);
    const formats::Json * ids = part->get("ids");
    REQUIRE(ids && ids->items.size() == prompts->items.size());
    REQUIRE(prompts->items.size() >= 200);
    std::unique_ptr<ClipTokenizer> tok(fresh(norm));
    int bad = 0;
    for (size_t i = 0; i < prompts->items.size(); ++i) {
        std::vector<int32_t> got = tok->encode(prompts->items[i].str);
        std::vector<int32_t> want = ids_of(ids->items[i]);
        if (got != want) {
            if (++bad <= 10)
                std::printf("  %s prompt %zu %s\n    got  %s\n    want %s\n", key, i,
                            formats::json_quote(prompts->items[i].str).c_str(), join(got).c_str(), join(want).c_str());
        }
    }
    CHECK_EQ(bad, 0);
    // Fixed 77-token windows: BOS + first 75 + EOS, padded with EOS.
    const formats::Json * padded = part->get("padded77_first40_and_long");
    REQUIRE(padded && padded->items.size() > 40);
    std::vector<std::string> sel;
    for (size_t i = 0; i < 40; ++i) sel.push_back(prompts->items[i].str);
    for (const auto & p : prompts->items)
        if (p.str.size() > 300) sel.push_back(p.str);
    REQUIRE(sel.size() == padded->items.size());
    for (size_t i = 0; i < sel.size(); ++i) CHECK(tok->encode_padded(sel[i], kClipEosId) == ids_of(padded->items[i]));
    // Invalid UTF-8: Python decodes with errors="replace" before tokenizing.
    const formats::Json * hex = j.get("invalid_utf8_hex");
    const formats::Json * bads = part->get("invalid_utf8");
    REQUIRE(hex && bads && hex->items.size() == bads->items.size());
    for (size_t i = 0; i < hex->items.size(); ++i) {
        std::vector<int32_t> got = tok->encode(unhex(hex->items[i].str));
        if (got != ids_of(bads->items[i]))
            std::printf("  %s invalid utf8 %zu got %s want %s\n", key, i, join(got).c_str(),
                        join(ids_of(bads->items[i])).c_str());
        CHECK(got == ids_of(bads->items[i]));
    }
}

}  // namespace

TEST(builtin_vocabulary) {
    Status st;
    const ClipTokenizer * tok = ClipTokenizer::builtin(&st);
    REQUIRE(st.ok() && tok);
    CHECK_EQ(tok->vocab_size(), size_t(kClipVocabSize));
    CHECK_EQ(tok->bos_id(), 49406);
    CHECK_EQ(tok->eos_id(), 49407);
    CHECK_EQ(tok->comma_id(), 267);
    CHECK_EQ(tok->token(0), std::string("!"));
    CHECK_EQ(tok->token(256), std::string("!</w>"));
    CHECK_EQ(tok->token(320), std::string("a</w>"));
    CHECK_EQ(tok->token(49406), std::string("<|startoftext|>"));
    CHECK_EQ(tok->token_id("cat</w>"), 2368);
    CHECK_EQ(tok->token_id("no such token"), -1);
    CHECK(tok->encode("a photo of a cat") == (std::vector<int32_t>{320, 1125, 539, 320, 2368}));
    std::vector<int32_t> p = tok->encode_padded("a photo of a cat", kClipEosId);
    CHECK_EQ(p.size(), size_t(77));
    CHECK_EQ(p[0], 49406);
    CHECK_EQ(p[6], 49407);
    CHECK_EQ(p[76], 49407);
    std::vector<int32_t> p0 = tok->encode_padded("a photo of a cat", 0);
    CHECK_EQ(p0[6], 49407);
    CHECK_EQ(p0[7], 0);
    CHECK(tok->encode("").empty());
    CHECK_EQ(ClipTokenizer::builtin(), tok);  // one shared instance
    // The byte map: printable bytes map to themselves, space to U+0120.
    CHECK_EQ(clip_byte_to_unicode('a'), uint32_t('a'));
    CHECK_EQ(clip_byte_to_unicode(' '), 0x120u);
    CHECK_EQ(clip_byte_to_unicode(0), 0x100u);
    CHECK_EQ(clip_byte_to_unicode(173), 0x143u);
}

TEST(pretokenize_pattern) {
    std::unique_ptr<ClipTokenizer> tok(fresh(Normalization::hf_basic));
    std::vector<std::string> got = tok->pretokenize("It's 2024!! don't  <|endoftext|>x caf\xc3\xa9 '");
    std::vector<std::string> want = {"it", "'s", "2", "0", "2", "4", "!!", "don", "'t", "<|endoftext|>", "x", "caf\xc3\xa9",
                                     "'"};
    CHECK(got == want);
}

TEST(matches_transformers_python_tokenizer) { check_against("hf_basic", Normalization::hf_basic); }

TEST(matches_transformers_tokenizers_backend) { check_against("hf_fast", Normalization::hf_fast); }

TEST(matches_open_clip_pad_zero) {
    const formats::Json & j = ref();
    const formats::Json * prompts = j.get("prompts");
    const formats::Json * oc = j.get("open_clip");
    REQUIRE(prompts && oc);
    const formats::Json * idx = oc->get("indices");
    const formats::Json * rows = oc->get("ids77");
    REQUIRE(idx && rows && idx->items.size() == rows->items.size());
    CHECK(idx->items.size() >= 100);
    const ClipTokenizer * tok = ClipTokenizer::builtin();
    REQUIRE(tok);
    for (size_t k = 0; k < idx->items.size(); ++k) {
        const std::string & p = prompts->items[size_t(idx->items[k].num)].str;
        std::vector<int32_t> got = tok->encode_padded(p, 0);
        if (got != ids_of(rows->items[k])) std::printf("  open_clip prompt %d differs\n", int(idx->items[k].num));
        CHECK(got == ids_of(rows->items[k]));
    }
}

TEST(loads_diffusers_vocab_and_merges_files) {
    const ClipTokenizer * bt = ClipTokenizer::builtin();
    REQUIRE(bt);
    // Build vocab.json / merges.txt like a diffusers tokenizer/ folder.
    std::vector<uint8_t> raw;
    REQUIRE(util::gunzip(clip_merges_gz_data(), clip_merges_gz_size(), &raw).ok());
    std::string text(raw.begin(), raw.end());
    std::string merges = "#version: 0.2\n";
    size_t pos = text.find('\n') + 1;
    for (int i = 0; i < kClipMergeCount; ++i) {
        size_t e = text.find('\n', pos);
        merges += text.substr(pos, e - pos) + "\n";
        pos = e + 1;
    }
    std::string vocab = "{";
    for (int32_t id = 0; id < kClipVocabSize; ++id) {
        if (id) vocab += ",";
        vocab += formats::json_quote(bt->token(id)) + ":" + std::to_string(id);
    }
    vocab += "}";
    std::string vp = "/tmp/sdgo_test_vocab.json", mp = "/tmp/sdgo_test_merges.txt";
    REQUIRE(write_text(vp, vocab) && write_text(mp, merges));
    ClipTokenizer t;
    Status st = t.load_vocab_merges_files(vp, mp);
    if (!st.ok()) std::printf("  %s\n", st.message().c_str());
    REQUIRE(st.ok());
    CHECK_EQ(t.vocab_size(), size_t(kClipVocabSize));
    const formats::Json * prompts = ref().get("prompts");
    REQUIRE(prompts);
    for (const auto & p : prompts->items) CHECK(t.encode(p.str) == bt->encode(p.str));
    std::remove(vp.c_str());
    std::remove(mp.c_str());

    // A diffusers tokenizer folder, with and without a pad token.
    char tmpl[] = "/tmp/sdgo_tok_XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    std::string dir = tmpl;
    REQUIRE(write_text(dir + "/vocab.json", vocab) && write_text(dir + "/merges.txt", merges));
    ClipTokenizer f;
    int32_t pad = -5;
    REQUIRE(f.load_folder(dir, &pad).ok());
    CHECK_EQ(pad, 49407);
    CHECK(f.encode("a photo of a cat") == bt->encode("a photo of a cat"));
    REQUIRE(write_text(dir + "/tokenizer_config.json", "{\"pad_token\": {\"content\": \"!\", \"lstrip\": false}}"));
    REQUIRE(f.load_folder(dir, &pad).ok());
    CHECK_EQ(pad, 0);
    REQUIRE(write_text(dir + "/special_tokens_map.json", "{\"pad_token\": \"<|endoftext|>\"}"));
    REQUIRE(f.load_folder(dir, &pad).ok());
    CHECK_EQ(pad, 49407);
    REQUIRE(write_text(dir + "/special_tokens_map.json", "{\"pad_token\": \"no-such-token\"}"));
    CHECK_EQ(f.load_folder(dir, &pad).code(), SDGO_ERR_FORMAT);
    REQUIRE(write_text(dir + "/special_tokens_map.json", "{broken"));
    CHECK_EQ(f.load_folder(dir, &pad).code(), SDGO_ERR_FORMAT);
    for (const char * n : {"/vocab.json", "/merges.txt", "/tokenizer_config.json", "/special_tokens_map.json"})
        std::remove((dir + n).c_str());
    std::remove(dir.c_str());
    CHECK_EQ(f.load_folder(dir, &pad).code(), SDGO_ERR_IO);

    // Broken inputs give errors.
    ClipTokenizer b;
    CHECK_EQ(b.load_vocab_merges_files("/nonexistent/vocab.json", "/nonexistent/merges.txt").code(), SDGO_ERR_IO);
    CHECK_EQ(b.load_vocab_merges("{\"a\": 1", "#version: 0.2\n").code(), SDGO_ERR_FORMAT);
    CHECK_EQ(b.load_vocab_merges("[1,2]", "#version: 0.2\n").code(), SDGO_ERR_FORMAT);
    CHECK_EQ(b.load_vocab_merges("{\"a\": -4}", "").code(), SDGO_ERR_FORMAT);
    CHECK_EQ(b.load_vocab_merges("{\"a\": 0, \"b\": 1}", "#version: 0.2\na b\n").code(), SDGO_ERR_FORMAT);
    CHECK_EQ(b.load_vocab_merges(vocab, "#version: 0.2\na b c\n").code(), SDGO_ERR_FORMAT);
    CHECK_EQ(b.load_vocab_merges(vocab, "#version: 0.2\nzzzzq qqqqz\n").code(), SDGO_ERR_FORMAT);
    const char bad_gz[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage-garbage";
    CHECK_EQ(b.load_merges_gz(reinterpret_cast<const uint8_t *>(bad_gz), sizeof(bad_gz) - 1).code(), SDGO_ERR_FORMAT);
    CHECK_EQ(b.load_merges_text("#only a header\n", 15).code(), SDGO_ERR_FORMAT);
    CHECK(!b.is_loaded());
    CHECK(b.encode("a photo of a cat").empty());  // failed loads leave nothing half-built
    CHECK(b.load_merges_gz(clip_merges_gz_data(), clip_merges_gz_size()).ok());
    CHECK(b.is_loaded());
    CHECK_EQ(b.encode("a photo of a cat").size(), size_t(5));
    CHECK_EQ(b.load_merges_text(nullptr, 5).code(), SDGO_ERR_INVALID_ARGUMENT);
    CHECK(b.encode("a photo of a cat").empty());
}

// A folder whose pad token is "!" (SD 2.x, SDXL's tokenizer_2): transformers
// makes it a special token, so in the HF-style window each "!" is id 0 and
// splits the word there; a folder padding with the end token keeps "!" as
// text. Ids recorded from transformers 5.25 on the tiny folders.
TEST(pad_token_is_special_in_the_hf_window) {
    struct Case {
        const char * folder;
        const char * text;
        std::vector<int32_t> want;
    };
    const Case cases[] = {
        {"testdata/pipeline/tiny_sd2_v/tokenizer", "wow! great!!", {998, 86, 78, 342, 0, 830, 0, 0, 999}},
        {"testdata/pipeline/tiny_sd2_v/tokenizer", "a cat!", {998, 320, 66, 536, 0, 999}},
        {"testdata/pipeline/tiny_sd2_v/tokenizer", "hi!there", {998, 71, 328, 0, 997, 999}},
        {"testdata/pipeline/tiny_sd2_v/tokenizer", "a photo of a cat", {998, 320, 816, 531, 539, 320, 66, 536, 999}},
        {"testdata/pipeline/tiny_sd1/tokenizer", "wow! great!!", {998, 86, 78, 342, 256, 830, 748, 999}},
        {"testdata/pipeline/tiny_sd1/tokenizer", "a cat!", {998, 320, 66, 536, 256, 999}},
    };
    for (const Case & c : cases) {
        ClipTokenizer t;
        int32_t pad = -1;
        REQUIRE(t.load_folder(testing::source_path(c.folder), &pad).ok());
        std::vector<int32_t> got = t.encode_padded(c.text, pad, 77);
        REQUIRE(got.size() == 77);
        got.resize(c.want.size());
        if (got != c.want) std::printf("    %s: \"%s\" differs from transformers\n", c.folder, c.text);
        CHECK(got == c.want);
    }
}

TEST(hostile_prompts) {
    const ClipTokenizer * tok = ClipTokenizer::builtin();
    REQUIRE(tok);
    // 10,000 tokens: 5000 x ("word" ",").
    std::string p;
    for (int i = 0; i < 5000; ++i) p += "word, ";
    std::vector<int32_t> ids = tok->encode(p);
    CHECK_EQ(ids.size(), size_t(10000));
    PromptChunks ch;
    CHECK(tokenize_weighted_prompt(*tok, p, ChunkOptions(), &ch).ok());
    CHECK_EQ(ch.n_chunks, 134);  // 10000 / 75, comma-aligned chunks of 74 or 75
    CHECK_EQ(ch.ids.size(), size_t(ch.n_chunks) * 77);
    ChunkOptions capped;
    capped.max_chunks = 10;
    CHECK_EQ(tokenize_weighted_prompt(*tok, p, capped, &ch).code(), SDGO_ERR_INVALID_ARGUMENT);
    // One 20,000-letter word of pseudo-random letters.
    std::string w;
    uint32_t s = 1;
    for (int i = 0; i < 20000; ++i) {
        s = s * 1664525u + 1013904223u;
        w.push_back(char('a' + (s >> 24) % 26));
    }
    ids = tok->encode(w);
    CHECK(ids.size() > 2000 && ids.size() < 20000);
    std::string back;
    for (int32_t id : ids) back += tok->token(id);
    CHECK_EQ(back, w + "</w>");
    // Random bytes, including invalid UTF-8 and NULs.
    std::string junk;
    for (int i = 0; i < 200000; ++i) {
        s = s * 1664525u + 1013904223u;
        junk.push_back(char(s >> 24));
    }
    for (Normalization n : {Normalization::hf_basic, Normalization::hf_fast}) {
        std::unique_ptr<ClipTokenizer> t(fresh(n));
        ids = t->encode(junk);
        CHECK(!ids.empty());
        for (int32_t id : ids) CHECK(id >= 0 && id < kClipVocabSize);
    }
}

TEST(concurrent_encoding_is_consistent) {
    const ClipTokenizer * tok = ClipTokenizer::builtin();
    REQUIRE(tok);
    const formats::Json * prompts = ref().get("prompts");
    REQUIRE(prompts);
    std::vector<std::vector<int32_t>> want;
    for (const auto & p : prompts->items) want.push_back(tok->encode(p.str));
    std::vector<int> bad(4, 0);
    std::vector<std::thread> th;
    for (int t = 0; t < 4; ++t)
        th.emplace_back([&, t] {
            for (int rep = 0; rep < 3; ++rep)
                for (size_t i = 0; i < prompts->items.size(); ++i) {
                    size_t k = (i * 7 + size_t(t) * 13) % prompts->items.size();
                    if (tok->encode(prompts->items[k].str) != want[k]) bad[size_t(t)]++;
                }
        });
    for (auto & x : th) x.join();
    for (int b : bad) CHECK_EQ(b, 0);
}

TEST(unicode_helpers) {
    CHECK(utf8_decode("a\xff" "b") == std::u32string(U"a\uFFFDb"));
    CHECK(utf8_decode("\xe2\x82") == std::u32string(U"\uFFFD"));         // truncated: one U+FFFD
    CHECK(utf8_decode("\xed\xa0\x80") == std::u32string(U"\uFFFD\uFFFD\uFFFD"));  // surrogate: per byte
    CHECK(nfc(U"e\u0301") == std::u32string(U"\u00e9"));
    CHECK(nfc(U"\u212b") == std::u32string(U"\u00c5"));
    CHECK(nfc(U"\u1100\u1161\u11a8") == std::u32string(U"\uac01"));
    CHECK(nfc(U"a\u0323\u0308") == nfc(U"a\u0308\u0323"));
    std::u32string lw;
    const std::u32string word = U"\u039f\u0394\u039f\u03a3";  // ΟΔΟΣ
    append_lower_word(word.data(), word.size(), &lw);
    CHECK(lw == std::u32string(U"\u03bf\u03b4\u03bf\u03c2"));
    CHECK(uclass(U'a') == UClass::letter);
    CHECK(uclass(0x4E2D) == UClass::letter);
    CHECK(uclass(0x0661) == UClass::number);
    CHECK(uclass(0x200D) == UClass::control);
    CHECK(uclass(0x3000) == UClass::space_sep);
    CHECK(uclass(0x1F600) == UClass::other);
}

// ---- prompt weighting ------------------------------------------------------

namespace {

void check_parse(const std::string & in, const std::vector<std::pair<std::string, double>> & want) {
    std::vector<PromptFragment> got = parse_prompt_attention(in);
    bool same = got.size() == want.size();
    for (size_t i = 0; same && i < got.size(); ++i)
        same = got[i].text == want[i].first && std::fabs(got[i].weight - want[i].second) < 1e-12;
    if (!same) {
        std::printf("  parse %s:\n", in.c_str());
        for (auto & f : got) std::printf("    [%s] %.17g\n", f.text.c_str(), f.weight);
    }
    CHECK(same);
}

}  // namespace

TEST(parse_a1111_examples) {
    check_parse("normal text", {{"normal text", 1.0}});
    check_parse("an (important) word", {{"an ", 1.0}, {"important", 1.1}, {" word", 1.0}});
    check_parse("(unbalanced", {{"unbalanced", 1.1}});
    check_parse("\\(literal\\]", {{"(literal]", 1.0}});
    check_parse("(unnecessary)(parens)", {{"unnecessaryparens", 1.1}});
    check_parse("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
                {{"a ", 1.0}, {"house", 1.3 * 1.1 * 1.1}, {" ", 1.1}, {"on", 1.0}, {" a ", 1.1}, {"hill", 0.55},
                 {", sun, ", 1.1}, {"sky", 1.1 * 1.1 * 1.1 * 1.1}, {".", 1.1}});
}

TEST(parse_nesting_escapes_and_edge_cases) {
    check_parse("((x))", {{"x", 1.1 * 1.1}});
    check_parse("(((x)))", {{"x", 1.1 * 1.1 * 1.1}});
    check_parse("[x]", {{"x", 1 / 1.1}});
    check_parse("[[x]]", {{"x", (1 / 1.1) * (1 / 1.1)}});
    check_parse("((x:1.3))", {{"x", 1.3 * 1.1}});
    check_parse("(x:1.3)", {{"x", 1.3}});
    check_parse("(x: 0.5 )", {{"x", 0.5}});
    check_parse("(x:-1)", {{"x", -1.0}});
    check_parse("([x])", {{"x", 1.1 / 1.1}});
    check_parse("", {{"", 1.0}});
    check_parse("a)b]c", {{"a)b]c", 1.0}});           // unmatched closers stay text
    check_parse("x:1.5) y", {{"x:1.5) y", 1.0}});     // weight close without "(" stays text
    check_parse("a:b", {{"a:b", 1.0}});
    check_parse("(a:b)", {{"a:b", 1.1}});
    check_parse("a\\\\b", {{"a\\b", 1.0}});
    check_parse("a\\b", {{"ab", 1.0}});               // lone backslash dropped
    check_parse("[unbalanced", {{"unbalanced", 1 / 1.1}});
    check_parse("(a [b] c)", {{"a ", 1.1}, {"b", 1.0}, {" c", 1.1}});
    check_parse("a (b:1.2) (c:1.2)", {{"a ", 1.0}, {"b", 1.2}, {" ", 1.0}, {"c", 1.2}});
    check_parse("(a)(b:1.1)", {{"ab", 1.1}});  // equal weights merge
    check_parse("(x:1.2.3)", {{"x:1.2.3", 1.1}});     // not a number: kept as text (A1111 raises)
}

TEST(parse_break) {
    check_parse("a BREAK b", {{"a", 1.0}, {"BREAK", -1.0}, {"b", 1.0}});
    check_parse("a\n BREAK\tb", {{"a", 1.0}, {"BREAK", -1.0}, {"b", 1.0}});
    check_parse("aBREAK b", {{"aBREAK b", 1.0}});
    check_parse("BREAKfast", {{"BREAKfast", 1.0}});
    check_parse("a break b", {{"a break b", 1.0}});
    check_parse("BREAK,x", {{"", 1.0}, {"BREAK", -1.0}, {",x", 1.0}});
    check_parse("a BREAK BREAK b", {{"a", 1.0}, {"BREAK", -1.0}, {"", 1.0}, {"BREAK", -1.0}, {"b", 1.0}});
    check_parse("(a) BREAK (b)", {{"a", 1.1}, {"", 1.0}, {"BREAK", -1.0}, {"", 1.0}, {"b", 1.1}});
    check_parse("[x]BREAK", {{"x", 1 / 1.1}, {"", 1.0}, {"BREAK", -1.0}, {"", 1.0}});
    // Inside brackets the marker's -1 is multiplied too, so A1111 no longer
    // sees a BREAK there: it becomes the word "break" with weight -1.1.
    check_parse("(a BREAK b)", {{"a", 1.1}, {"BREAK", -1.1}, {"b", 1.1}});
}

TEST(chunking_short_and_empty) {
    const ClipTokenizer * tok = ClipTokenizer::builtin();
    REQUIRE(tok);
    PromptChunks c;
    REQUIRE(tokenize_weighted_prompt(*tok, "", ChunkOptions(), &c).ok());
    CHECK_EQ(c.n_chunks, 1);
    CHECK_EQ(c.ids[0], 49406);
    for (int i = 1; i < 77; ++i) CHECK_EQ(c.ids[size_t(i)], 49407);
    CHECK_EQ(c.token_count, 0);

    REQUIRE(tokenize_weighted_prompt(*tok, "a (photo:1.5) of a [cat]", ChunkOptions(), &c).ok());
    CHECK_EQ(c.n_chunks, 1);
    std::vector<int32_t> head(c.ids.begin(), c.ids.begin() + 7);
    CHECK(head == (std::vector<int32_t>{49406, 320, 1125, 539, 320, 2368, 49407}));
    CHECK_NEAR(c.multipliers[0], 1.0, 0);
    CHECK_NEAR(c.multipliers[1], 1.0, 0);
    CHECK_NEAR(c.multipliers[2], 1.5, 1e-7);
    CHECK_NEAR(c.multipliers[5], 1 / 1.1, 1e-7);
    CHECK_NEAR(c.multipliers[6], 1.0, 0);
    CHECK_EQ(c.token_count, 5);

    // OpenCLIP padding: everything after the first EOS becomes 0.
    ChunkOptions sd2;
    sd2.pad_id = 0;
    REQUIRE(tokenize_weighted_prompt(*tok, "a photo of a cat", sd2, &c).ok());
    CHECK_EQ(c.ids[6], 49407);
    CHECK_EQ(c.ids[7], 0);
    CHECK_EQ(c.ids[76], 0);

    // Weights off: brackets are plain text.
    ChunkOptions raw;
    raw.parse_weights = false;
    REQUIRE(tokenize_weighted_prompt(*tok, "(cat)", raw, &c).ok());
    CHECK(std::vector<int32_t>(c.ids.begin() + 1, c.ids.begin() + 4) == tok->encode("(cat)"));
    CHECK_NEAR(c.multipliers[1], 1.0, 0);
}

TEST(chunking_break_and_comma_backtrack) {
    const ClipTokenizer * tok = ClipTokenizer::builtin();
    REQUIRE(tok);
    const int32_t cat = 2368, dog = 1929, comma = 267;
    REQUIRE(tok->encode("cat") == std::vector<int32_t>{cat});
    REQUIRE(tok->encode("dog") == std::vector<int32_t>{dog});
    PromptChunks c;
    REQUIRE(tokenize_weighted_prompt(*tok, "cat BREAK dog", ChunkOptions(), &c).ok());
    CHECK_EQ(c.n_chunks, 2);
    CHECK_EQ(c.ids[1], cat);
    CHECK_EQ(c.ids[2], 49407);
    CHECK_EQ(c.ids[77], 49406);
    CHECK_EQ(c.ids[78], dog);
    CHECK_EQ(c.token_count, 76);  // 75 for the closed chunk + 1

    REQUIRE(tokenize_weighted_prompt(*tok, "BREAK dog", ChunkOptions(), &c).ok());
    CHECK_EQ(c.n_chunks, 2);  // A1111 closes the (empty) first chunk too
    CHECK_EQ(c.ids[1], 49407);

    // 70 x "cat", ",", 10 x "dog": the chunk fills at 75 tokens with the comma
    // at index 70; the next token (the 6th dog) is not a comma and the comma
    // is within 20 tokens of the end, so the 4 dogs after it move on.
    std::string p;
    for (int i = 0; i < 70; ++i) p += "cat ";
    p += ",";
    for (int i = 0; i < 10; ++i) p += " dog";
    REQUIRE(tok->encode(p).size() == 81);
    REQUIRE(tokenize_weighted_prompt(*tok, p, ChunkOptions(), &c).ok());
    CHECK_EQ(c.n_chunks, 2);
    CHECK_EQ(c.ids[70], cat);
    CHECK_EQ(c.ids[71], comma);
    for (int i = 72; i < 76; ++i) CHECK_EQ(c.ids[size_t(i)], 49407);  // padding after the comma
    CHECK_EQ(c.ids[76], 49407);
    for (int i = 0; i < 10; ++i) CHECK_EQ(c.ids[size_t(78 + i)], dog);
    CHECK_EQ(c.ids[88], 49407);

    // Backtrack disabled: a plain split at 75.
    ChunkOptions nob;
    nob.comma_padding_backtrack = 0;
    REQUIRE(tokenize_weighted_prompt(*tok, p, nob, &c).ok());
    CHECK_EQ(c.n_chunks, 2);
    CHECK_EQ(c.ids[75], dog);
    CHECK_EQ(c.ids[78], dog);
    CHECK_EQ(c.ids[84], 49407);

    // Comma too far back (50 + , + 30): no backtrack.
    std::string q;
    for (int i = 0; i < 50; ++i) q += "cat ";
    q += ",";
    for (int i = 0; i < 30; ++i) q += " dog";
    REQUIRE(tokenize_weighted_prompt(*tok, q, ChunkOptions(), &c).ok());
    CHECK_EQ(c.n_chunks, 2);
    CHECK_EQ(c.ids[52], dog);
    CHECK_EQ(c.ids[75], dog);
    CHECK_EQ(c.ids[78], dog);

    // Weights travel with relocated tokens.
    std::string r;
    for (int i = 0; i < 70; ++i) r += "cat ";
    r += ", (dog dog dog dog dog dog:1.5)";
    REQUIRE(tokenize_weighted_prompt(*tok, r, ChunkOptions(), &c).ok());
    CHECK_EQ(c.n_chunks, 2);
    CHECK_EQ(c.ids[78], dog);
    CHECK_NEAR(c.multipliers[78], 1.5, 1e-7);
    CHECK_NEAR(c.multipliers[72], 1.0, 0);

    CHECK_EQ(tokenize_weighted_prompt(*tok, "x", ChunkOptions{kClipEosId, -1, true, 0}, &c).code(),
             SDGO_ERR_INVALID_ARGUMENT);
}

TEST(apply_emphasis_restores_mean) {
    const int64_t B = 2, T = 154, D = 8;
    std::vector<float> z(size_t(B * T * D)), m(size_t(B * T), 1.0f);
    uint32_t s = 7;
    for (float & v : z) {
        s = s * 1664525u + 1013904223u;
        v = float(int(s >> 20) - 2048) / 1024.0f + 0.25f;
    }
    for (int64_t b = 0; b < B; ++b) {
        m[size_t(b * T + 3)] = 1.5f;
        m[size_t(b * T + 10)] = 0.5f;
    }
    std::vector<float> orig = z;
    REQUIRE(apply_emphasis(z.data(), m.data(), B, T, D).ok());
    // Chunk 0: mean restored; chunk 1 (all ones) untouched.
    double m0 = 0, m1 = 0;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t k = 0; k < 77 * D; ++k) {
            m0 += orig[size_t(b * T * D + k)];
            m1 += z[size_t(b * T * D + k)];
        }
    CHECK_NEAR(m1 / (B * 77 * D), m0 / (B * 77 * D), 1e-5);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t k = 77 * D; k < T * D; ++k) CHECK_EQ(z[size_t(b * T * D + k)], orig[size_t(b * T * D + k)]);
    // The ratio between a weighted token and an unweighted one is the multiplier.
    double r = double(z[size_t(3 * D)]) / orig[size_t(3 * D)] / (double(z[size_t(4 * D)]) / orig[size_t(4 * D)]);
    CHECK_NEAR(r, 1.5, 1e-5);
    // No-norm: plain multiply.
    std::vector<float> z2 = orig;
    REQUIRE(apply_emphasis(z2.data(), m.data(), B, T, D, false).ok());
    CHECK_NEAR(z2[size_t(10 * D + 1)], orig[size_t(10 * D + 1)] * 0.5f, 1e-7);
    CHECK_EQ(apply_emphasis(z2.data(), m.data(), B, 100, D).code(), SDGO_ERR_INVALID_ARGUMENT);
    CHECK_EQ(apply_emphasis(nullptr, m.data(), B, T, D).code(), SDGO_ERR_INVALID_ARGUMENT);
}

TEST(hostile_vocab_json_is_refused) {
    const std::string merges = "#version: 0.2\na b\n";
    struct Case {
        const char * vocab;
        const char * want;
    } cases[] = {
        {"{\"a\":0,\"b\":1,\"ab\":99999999999}", "far beyond"},    // would size a table of 10^11
        {"{\"a\":0,\"b\":\"one\"}", "no non-negative integer id"},
        {"{\"a\":0,\"b\":-1}", "no non-negative integer id"},
        {"{\"a\":0,\"a\":1}", "duplicate key"},
        {"[\"a\",\"b\"]", "expected an object"},
        {"{\"a\":0,", "vocab.json"},
    };
    for (const auto & c : cases) {
        ClipTokenizer t;
        Status st = t.load_vocab_merges(c.vocab, merges);
        CHECK_EQ(st.code(), SDGO_ERR_FORMAT);
        CHECK(st.message().find(c.want) != std::string::npos);
        CHECK_EQ(t.vocab_size(), size_t(0));  // a failed load leaves it empty
    }
}
