// Tests for csrc/util/inflate: streams made by Python's zlib/gzip
// (testdata/gen/gen_inflate_ref.py), the embedded CLIP merges, and broken
// streams that must fail cleanly.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "formats/json.h"
#include "testing.h"
#include "text/clip_merges_data.h"
#include "util/inflate.h"

using namespace sdgo;
using sdgo::util::adler32;
using sdgo::util::crc32;
using sdgo::util::gunzip;
using sdgo::util::inflate_raw;
using sdgo::util::zlib_decompress;

namespace {

std::vector<uint8_t> read_bytes(const std::string & path) {
    std::vector<uint8_t> out;
    FILE * f = std::fopen(path.c_str(), "rb");
    if (!f) return out;
    uint8_t buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.insert(out.end(), buf, buf + n);
    std::fclose(f);
    return out;
}

// The payload generator shared with gen_inflate_ref.py.
struct Lcg {
    uint32_t s;
    uint32_t next() {
        s = s * 1664525u + 1013904223u;
        return s >> 8;
    }
};

std::vector<uint8_t> payload(const std::string & kind, size_t size, uint32_t seed) {
    static const char * words[] = {"a", "photo", "of", "cat", "sitting", "on", "the", "mat", ",", "highly",
                                   "detailed", "8k", "masterpiece", "(", ")", "\n", "lorem", "ipsum", "dolor", "sit"};
    Lcg r{seed};
    std::vector<uint8_t> out;
    if (kind == "random") {
        while (out.size() < size) out.push_back(uint8_t(r.next() & 0xff));
    } else if (kind == "text") {
        while (out.size() < size) {
            const char * w = words[r.next() % 20];
            out.insert(out.end(), w, w + std::strlen(w));
            out.push_back(' ');
        }
    } else if (kind == "runs") {
        while (out.size() < size) {
            uint8_t b = uint8_t(r.next() & 0xff);
            uint32_t n = 1 + r.next() % 300;
            out.insert(out.end(), n, b);
        }
    }
    out.resize(size);
    return out;
}

struct Case {
    std::string file, kind;
    size_t size;
    uint32_t seed;
};

std::vector<Case> manifest() {
    std::vector<Case> cases;
    std::vector<uint8_t> m = read_bytes(testing::source_path("testdata/inflate/manifest.json"));
    formats::Json j;
    if (!formats::json_parse(reinterpret_cast<const char *>(m.data()), m.size(), &j).ok()) return cases;
    for (const auto & it : j.items)
        cases.push_back({it.str_or("file", ""), it.str_or("kind", ""), size_t(it.int_or("size", 0)),
                         uint32_t(it.int_or("seed", 0))});
    return cases;
}

bool ends_with(const std::string & s, const char * suf) {
    size_t n = std::strlen(suf);
    return s.size() >= n && s.compare(s.size() - n, n, suf) == 0;
}

Status decode_any(const std::string & name, const std::vector<uint8_t> & in, std::vector<uint8_t> * out,
                  size_t max_out = util::kInflateDefaultMaxOut) {
    out->clear();
    if (ends_with(name, ".gz")) return gunzip(in.data(), in.size(), out, max_out);
    if (ends_with(name, ".zz")) return zlib_decompress(in.data(), in.size(), out, max_out);
    size_t used = 0;
    Status st = inflate_raw(in.data(), in.size(), out, &used, max_out);
    if (st.ok() && used != in.size()) return error(SDGO_ERR_FORMAT, "raw stream used %zu of %zu bytes", used, in.size());
    return st;
}

// Writes bits LSB-first; Huffman codes go MSB-first as RFC 1951 requires.
struct BitWriter {
    std::vector<uint8_t> out;
    int nbits = 0;
    void bits(uint32_t v, int n) {
        for (int i = 0; i < n; ++i) put((v >> i) & 1);
    }
    void code(uint32_t c, int len) {
        for (int i = len - 1; i >= 0; --i) put((c >> i) & 1);
    }
    void put(uint32_t b) {
        if (nbits % 8 == 0) out.push_back(0);
        out.back() |= uint8_t(b << (nbits % 8));
        ++nbits;
    }
};

}  // namespace

TEST(checksums_known_values) {
    const char * s = "123456789";
    CHECK_EQ(crc32(reinterpret_cast<const uint8_t *>(s), 9), 0xCBF43926u);
    const char * w = "Wikipedia";
    CHECK_EQ(adler32(reinterpret_cast<const uint8_t *>(w), 9), 0x11E60398u);
    CHECK_EQ(crc32(nullptr, 0), 0u);
    // Continuing a CRC over two pieces equals one pass.
    uint32_t c = crc32(reinterpret_cast<const uint8_t *>(s), 4);
    CHECK_EQ(crc32(reinterpret_cast<const uint8_t *>(s) + 4, 5, c), 0xCBF43926u);
}

TEST(python_streams_round_trip) {
    std::vector<Case> cases = manifest();
    REQUIRE(cases.size() >= 40);
    int stored = 0, fixed = 0, gz = 0;
    for (const Case & c : cases) {
        std::vector<uint8_t> in = read_bytes(testing::source_path("testdata/inflate/" + c.file));
        REQUIRE(!in.empty());
        std::vector<uint8_t> out;
        Status st = decode_any(c.file, in, &out);
        if (!st.ok()) std::printf("  %s: %s\n", c.file.c_str(), st.message().c_str());
        CHECK(st.ok());
        CHECK(out == payload(c.kind, c.size, c.seed));
        stored += c.file.find("_l0") != std::string::npos;
        fixed += c.file.find("_fixed") != std::string::npos;
        gz += ends_with(c.file, ".gz");
    }
    CHECK(stored >= 4);
    CHECK(fixed >= 3);
    CHECK(gz >= 5);
}

TEST(embedded_clip_merges_decode) {
    std::vector<uint8_t> out;
    Status st = gunzip(text::clip_merges_gz_data(), text::clip_merges_gz_size(), &out);
    REQUIRE(st.ok());
    CHECK_EQ(text::clip_merges_gz_size(), size_t(1356917));
    CHECK_EQ(out.size(), size_t(3194984));
    std::string head(out.begin(), out.begin() + 44);
    CHECK_EQ(head, std::string("\"bpe_simple_vocab_16e6.txt#version: 0.2\ni n\n"));
}

TEST(truncated_streams_fail) {
    const char * files[] = {"text_6000.gz", "text_6000_l9.zz", "text_6000_fixed.deflate", "random_2000_l0.deflate",
                            "text_3000_named_2members.gz", "runs_40000_l9.deflate"};
    for (const char * f : files) {
        std::vector<uint8_t> in = read_bytes(testing::source_path(std::string("testdata/inflate/") + f));
        REQUIRE(in.size() > 10);
        size_t step = in.size() > 3000 ? 7 : 1;
        for (size_t len = 0; len < in.size(); len += step) {
            std::vector<uint8_t> cut(in.begin(), in.begin() + long(len));
            std::vector<uint8_t> out;
            Status st = decode_any(f, cut, &out);
            if (st.ok() && std::strcmp(f, "text_3000_named_2members.gz") == 0 && out == payload("text", 1000, 7)) {
                continue;  // cut exactly after the first member: a complete gzip file
            }
            if (st.ok()) std::printf("  %s cut to %zu decoded\n", f, len);
            CHECK(!st.ok());
            CHECK(st.code() == SDGO_ERR_FORMAT);
        }
    }
}

TEST(bit_flips_never_crash_and_are_caught_by_checksums) {
    const char * files[] = {"text_6000.gz", "runs_40000.gz", "text_6000_l6.zz"};
    for (const char * f : files) {
        std::vector<uint8_t> in = read_bytes(testing::source_path(std::string("testdata/inflate/") + f));
        std::vector<uint8_t> good;
        REQUIRE(decode_any(f, in, &good).ok());
        int failures = 0;
        for (size_t i = 0; i < in.size(); i += 3) {
            std::vector<uint8_t> bad = in;
            bad[i] ^= uint8_t(1u << (i % 8));
            std::vector<uint8_t> out;
            Status st = decode_any(f, bad, &out);
            if (st.ok()) CHECK(out == good);  // only header fields without meaning (mtime, OS) may flip
            else ++failures;
        }
        CHECK(failures > 0);
    }
}

TEST(handmade_invalid_streams) {
    std::vector<uint8_t> out;
    const uint8_t type3[] = {0x07};
    Status st = inflate_raw(type3, 1, &out);
    CHECK(!st.ok());
    CHECK(st.message().find("block type") != std::string::npos);

    const uint8_t bad_nlen[] = {0x01, 0x05, 0x00, 0x00, 0x00, 'h', 'e', 'l', 'l', 'o'};
    st = inflate_raw(bad_nlen, sizeof(bad_nlen), &out);
    CHECK(!st.ok());

    const uint8_t good_stored[] = {0x01, 0x05, 0x00, 0xfa, 0xff, 'h', 'e', 'l', 'l', 'o'};
    out.clear();
    CHECK(inflate_raw(good_stored, sizeof(good_stored), &out).ok());
    CHECK_EQ(std::string(out.begin(), out.end()), std::string("hello"));

    // Fixed block starting with a back-reference: distance too far back.
    BitWriter w;
    w.bits(1, 1);
    w.bits(1, 2);
    w.code(1, 7);   // symbol 257: length 3
    w.code(0, 5);   // distance symbol 0: distance 1
    w.code(0, 7);   // end of block
    out.clear();
    st = inflate_raw(w.out.data(), w.out.size(), &out);
    CHECK(!st.ok());
    CHECK(st.message().find("too far") != std::string::npos);

    // Fixed block: 'A' then length 5 distance 1 = "AAAAAA".
    BitWriter v;
    v.bits(1, 1);
    v.bits(1, 2);
    v.code(0x30 + 'A', 8);
    v.code(3, 7);  // symbol 259: length 5
    v.code(0, 5);
    v.code(0, 7);
    out.clear();
    CHECK(inflate_raw(v.out.data(), v.out.size(), &out).ok());
    CHECK_EQ(std::string(out.begin(), out.end()), std::string("AAAAAA"));

    // Dynamic block whose code-length code is over-subscribed (all 19 of length 1).
    BitWriter d;
    d.bits(1, 1);
    d.bits(2, 2);
    d.bits(0, 5);
    d.bits(0, 5);
    d.bits(15, 4);
    for (int i = 0; i < 19; ++i) d.bits(1, 3);
    for (int i = 0; i < 8; ++i) d.bits(0, 8);
    out.clear();
    st = inflate_raw(d.out.data(), d.out.size(), &out);
    CHECK(!st.ok());

    // Dynamic block announcing too many length codes (HLIT = 30 -> 287).
    BitWriter h;
    h.bits(1, 1);
    h.bits(2, 2);
    h.bits(30, 5);
    h.bits(0, 5);
    h.bits(0, 4);
    for (int i = 0; i < 8; ++i) h.bits(0, 8);
    out.clear();
    CHECK(!inflate_raw(h.out.data(), h.out.size(), &out).ok());

    // Empty input and garbage headers.
    out.clear();
    CHECK(!inflate_raw(nullptr, 0, &out).ok());
    CHECK(!gunzip(nullptr, 0, &out).ok());
    const uint8_t notgz[] = {0x1f, 0x8c, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK(!gunzip(notgz, sizeof(notgz), &out).ok());
    const uint8_t badzlib[] = {0x78, 0x9d, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01};
    CHECK(!zlib_decompress(badzlib, sizeof(badzlib), &out).ok());
    CHECK(zlib_decompress(nullptr, 0, &out).code() == SDGO_ERR_FORMAT);
}

TEST(trailing_garbage_and_output_cap) {
    std::vector<uint8_t> in = read_bytes(testing::source_path("testdata/inflate/text_6000.gz"));
    REQUIRE(!in.empty());
    std::vector<uint8_t> out;
    std::vector<uint8_t> padded = in;
    padded.push_back(0);
    padded.push_back(0);
    CHECK(!gunzip(padded.data(), padded.size(), &out).ok());
    out.clear();
    Status st = gunzip(in.data(), in.size(), &out, 1000);
    CHECK(!st.ok());
    CHECK_EQ(st.code(), SDGO_ERR_INVALID_ARGUMENT);
    out.clear();
    std::vector<uint8_t> zz = read_bytes(testing::source_path("testdata/inflate/text_6000_l9.zz"));
    zz.back() ^= 1;  // Adler-32
    CHECK(!zlib_decompress(zz.data(), zz.size(), &out).ok());
}

TEST(random_garbage_never_crashes) {
    Lcg r{12345};
    int ok = 0;
    for (int iter = 0; iter < 3000; ++iter) {
        size_t n = r.next() % 200;
        std::vector<uint8_t> buf(n);
        for (auto & b : buf) b = uint8_t(r.next());
        std::vector<uint8_t> out;
        ok += inflate_raw(buf.data(), buf.size(), &out, nullptr, 1 << 20).ok();
        if (n >= 2) {
            buf[0] = 0x1f;
            buf[1] = 0x8b;
        }
        out.clear();
        (void)gunzip(buf.data(), buf.size(), &out, 1 << 20);
    }
    CHECK(ok < 3000);
}
