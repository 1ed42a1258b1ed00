// inflate.cpp — DEFLATE / gzip / zlib decoding (see inflate.h).
//
// Bits are read least-significant first (RFC 1951 §3.1.1). Huffman codes are
// canonical; each table keeps the per-length counts and the symbols sorted
// by code, and a FAST_BITS-wide lookup table indexed by the next (bit-
// reversed) input bits resolves short codes in one step. Longer codes, and
// codes near the end of the input, are decoded one bit at a time from the
// counts.
#include "util/inflate.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace sdgo::util {
namespace {

constexpr int MAX_BITS = 15;
constexpr int FAST_BITS = 10;
constexpr int MAX_LIT = 288;
constexpr int MAX_DIST = 32;

struct BitReader {
    const uint8_t * p = nullptr;
    size_t n = 0;
    size_t pos = 0;       // next byte to load into the buffer
    uint64_t buf = 0;     // loaded, unconsumed bits (LSB = next bit)
    int cnt = 0;          // number of valid bits in buf

    // Loads whole bytes until at least k bits are buffered or input ends.
    void fill(int k) {
        while (cnt < k && pos < n) {
            buf |= uint64_t(p[pos++]) << cnt;
            cnt += 8;
        }
    }
    // Takes k (<= 32) bits; false when the input is exhausted.
    bool bits(int k, uint32_t * v) {
        if (k == 0) { *v = 0; return true; }
        fill(k);
        if (cnt < k) return false;
        *v = uint32_t(buf & ((uint64_t(1) << k) - 1));
        buf >>= k;
        cnt -= k;
        return true;
    }
    void align() {  // drop the bits up to the next byte boundary
        int drop = cnt & 7;
        buf >>= drop;
        cnt -= drop;
    }
    // Bytes consumed so far (buffered whole bytes are handed back).
    size_t consumed() const { return pos - size_t(cnt / 8); }
};

struct Huffman {
    uint16_t count[MAX_BITS + 1];
    uint16_t symbol[MAX_LIT];
    // fast[bits] = (length << 9) | symbol, or 0 when the code is longer than
    // FAST_BITS or not assigned.
    uint16_t fast[1 << FAST_BITS];
};

// Builds a table from code lengths. Over-subscribed sets are rejected;
// incomplete sets are allowed (RFC 1951 permits a single distance code) and
// an unassigned code then fails at decode time.
bool build(Huffman * h, const uint8_t * lengths, int n) {
    std::memset(h->count, 0, sizeof(h->count));
    for (int s = 0; s < n; ++s) h->count[lengths[s]]++;
    h->count[0] = 0;
    int left = 1;
    for (int len = 1; len <= MAX_BITS; ++len) {
        left <<= 1;
        left -= h->count[len];
        if (left < 0) return false;  // over-subscribed
    }
    uint16_t offs[MAX_BITS + 2];
    offs[1] = 0;
    for (int len = 1; len < MAX_BITS; ++len) offs[len + 1] = uint16_t(offs[len] + h->count[len]);
    for (int s = 0; s < n; ++s)
        if (lengths[s] != 0) h->symbol[offs[lengths[s]]++] = uint16_t(s);

    // Fast table: walk codes in canonical order.
    std::memset(h->fast, 0, sizeof(h->fast));
    uint32_t code = 0;
    int idx = 0;
    for (int len = 1; len <= MAX_BITS; ++len) {
        for (int i = 0; i < h->count[len]; ++i, ++idx, ++code) {
            if (len > FAST_BITS) continue;
            // Reverse the len-bit code: the stream delivers its MSB first.
            uint32_t rev = 0;
            for (int b = 0; b < len; ++b) rev |= ((code >> b) & 1u) << (len - 1 - b);
            uint16_t entry = uint16_t((len << 9) | h->symbol[idx]);
            for (uint32_t k = rev; k < (1u << FAST_BITS); k += (1u << len)) h->fast[k] = entry;
        }
        code <<= 1;
    }
    return true;
}

// Decodes one symbol; -1 on truncated input or an unassigned code.
int decode(BitReader * br, const Huffman * h) {
    br->fill(FAST_BITS);
    if (br->cnt >= FAST_BITS) {
        uint16_t e = h->fast[br->buf & ((1u << FAST_BITS) - 1)];
        if (e != 0) {
            int len = e >> 9;
            br->buf >>= len;
            br->cnt -= len;
            return e & 0x1ff;
        }
    }
    // Slow path: one bit at a time through the canonical counts.
    int code = 0, first = 0, index = 0;
    for (int len = 1; len <= MAX_BITS; ++len) {
        uint32_t bit;
        if (!br->bits(1, &bit)) return -1;
        code |= int(bit);
        int count = h->count[len];
        if (code - count < first) return h->symbol[index + (code - first)];
        index += count;
        first += count;
        first <<= 1;
        code <<= 1;
    }
    return -1;
}

const uint16_t kLenBase[29] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
                               35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
const uint8_t kLenExtra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
                               3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
const uint16_t kDistBase[30] = {1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129,
                                193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097,
                                6145, 8193, 12289, 16385, 24577};
const uint8_t kDistExtra[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6,
                                6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

Status truncated() { return error(SDGO_ERR_FORMAT, "deflate: truncated stream"); }

struct Inflater {
    BitReader br;
    std::vector<uint8_t> * out;
    size_t start;    // out->size() when this stream began (distance limit)
    size_t max_out;  // cap on the output size
    size_t pos;      // bytes of *out in use; out->size() may run ahead (spare room)

    // Makes room for `more` bytes at pos, growing geometrically.
    Status room(size_t more) {
        if (more > max_out || pos > max_out - more)
            return error(SDGO_ERR_INVALID_ARGUMENT, "deflate: output exceeds the limit of %zu bytes", max_out);
        if (pos + more > out->size()) {
            // Use all the capacity a caller reserved, else double.
            size_t grow = std::max({pos + more, out->capacity(), out->size() * 2, size_t(1) << 16});
            out->resize(std::min(grow, std::max(max_out, pos + more)));
        }
        return Status();
    }

    Status stored() {
        br.align();
        uint32_t len, nlen;
        if (!br.bits(16, &len) || !br.bits(16, &nlen)) return truncated();
        if ((len ^ 0xffffu) != nlen) return error(SDGO_ERR_FORMAT, "deflate: stored block length check failed");
        SDGO_TRY(room(len));
        uint8_t * dst = out->data();
        // Whole bytes may still sit in the bit buffer; take those first.
        while (len > 0 && br.cnt >= 8) {
            dst[pos++] = uint8_t(br.buf & 0xff);
            br.buf >>= 8;
            br.cnt -= 8;
            --len;
        }
        if (br.n - br.pos < len) return truncated();
        if (len) std::memcpy(dst + pos, br.p + br.pos, len);
        pos += len;
        br.pos += len;
        return Status();
    }

    Status codes(const Huffman & lit, const Huffman & dist) {
        for (;;) {
            int sym = decode(&br, &lit);
            if (sym < 0) return error(SDGO_ERR_FORMAT, "deflate: bad or truncated literal/length code");
            if (sym < 256) {
                if (pos >= out->size()) SDGO_TRY(room(1));
                (*out)[pos++] = uint8_t(sym);
                continue;
            }
            if (sym == 256) return Status();
            sym -= 257;
            if (sym >= 29) return error(SDGO_ERR_FORMAT, "deflate: invalid length symbol");
            uint32_t extra;
            if (!br.bits(kLenExtra[sym], &extra)) return truncated();
            size_t len = kLenBase[sym] + extra;
            int ds = decode(&br, &dist);
            if (ds < 0) return error(SDGO_ERR_FORMAT, "deflate: bad or truncated distance code");
            if (ds >= 30) return error(SDGO_ERR_FORMAT, "deflate: invalid distance symbol");
            if (!br.bits(kDistExtra[ds], &extra)) return truncated();
            size_t d = kDistBase[ds] + extra;
            if (d > pos - start) return error(SDGO_ERR_FORMAT, "deflate: distance too far back");
            if (pos + len > out->size()) SDGO_TRY(room(len));
            uint8_t * dst = out->data() + pos;
            const uint8_t * src = dst - d;
            if (d >= len) std::memcpy(dst, src, len);
            else for (size_t i = 0; i < len; ++i) dst[i] = src[i];  // overlapping: a repeating pattern
            pos += len;
        }
    }

    Status fixed() {
        static Huffman lit, dist;
        static bool ready = [] {
            uint8_t l[MAX_LIT];
            int s = 0;
            for (; s < 144; ++s) l[s] = 8;
            for (; s < 256; ++s) l[s] = 9;
            for (; s < 280; ++s) l[s] = 7;
            for (; s < 288; ++s) l[s] = 8;
            build(&lit, l, MAX_LIT);
            uint8_t d[MAX_DIST];
            for (int i = 0; i < MAX_DIST; ++i) d[i] = 5;
            build(&dist, d, MAX_DIST);
            return true;
        }();
        (void)ready;
        return codes(lit, dist);
    }

    Status dynamic() {
        uint32_t hlit, hdist, hclen;
        if (!br.bits(5, &hlit) || !br.bits(5, &hdist) || !br.bits(4, &hclen)) return truncated();
        int nlen = int(hlit) + 257, ndist = int(hdist) + 1, ncode = int(hclen) + 4;
        if (nlen > 286 || ndist > 30) return error(SDGO_ERR_FORMAT, "deflate: too many length or distance codes");
        static const uint8_t order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
        uint8_t lengths[MAX_LIT + MAX_DIST];
        std::memset(lengths, 0, sizeof(lengths));
        for (int i = 0; i < ncode; ++i) {
            uint32_t v;
            if (!br.bits(3, &v)) return truncated();
            lengths[order[i]] = uint8_t(v);
        }
        Huffman lencode;
        if (!build(&lencode, lengths, 19)) return error(SDGO_ERR_FORMAT, "deflate: bad code-length code");
        int idx = 0;
        while (idx < nlen + ndist) {
            int sym = decode(&br, &lencode);
            if (sym < 0) return error(SDGO_ERR_FORMAT, "deflate: bad or truncated code-length symbol");
            if (sym < 16) {
                lengths[idx++] = uint8_t(sym);
                continue;
            }
            uint8_t val = 0;
            uint32_t rep;
            if (sym == 16) {
                if (idx == 0) return error(SDGO_ERR_FORMAT, "deflate: repeat with no previous length");
                val = lengths[idx - 1];
                if (!br.bits(2, &rep)) return truncated();
                rep += 3;
            } else if (sym == 17) {
                if (!br.bits(3, &rep)) return truncated();
                rep += 3;
            } else {
                if (!br.bits(7, &rep)) return truncated();
                rep += 11;
            }
            if (idx + int(rep) > nlen + ndist) return error(SDGO_ERR_FORMAT, "deflate: too many code lengths");
            while (rep--) lengths[idx++] = val;
        }
        if (lengths[256] == 0) return error(SDGO_ERR_FORMAT, "deflate: no end-of-block code");
        Huffman lit, dist;
        if (!build(&lit, lengths, nlen)) return error(SDGO_ERR_FORMAT, "deflate: over-subscribed literal/length code");
        if (!build(&dist, lengths + nlen, ndist)) return error(SDGO_ERR_FORMAT, "deflate: over-subscribed distance code");
        return codes(lit, dist);
    }

    Status run() {
        for (;;) {
            uint32_t last, type;
            if (!br.bits(1, &last) || !br.bits(2, &type)) return truncated();
            if (type == 0) SDGO_TRY(stored());
            else if (type == 1) SDGO_TRY(fixed());
            else if (type == 2) SDGO_TRY(dynamic());
            else return error(SDGO_ERR_FORMAT, "deflate: invalid block type 3");
            if (last) return Status();
        }
    }
};

uint32_t crc_table_entry(uint32_t n) {
    uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    return c;
}

uint32_t rd32le(const uint8_t * p) {
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

}  // namespace

uint32_t crc32(const uint8_t * data, size_t len, uint32_t crc) {
    static uint32_t table[256];
    static bool ready = [] {
        for (uint32_t n = 0; n < 256; ++n) table[n] = crc_table_entry(n);
        return true;
    }();
    (void)ready;
    crc = ~crc;
    for (size_t i = 0; i < len; ++i) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint32_t adler32(const uint8_t * data, size_t len, uint32_t adler) {
    uint32_t a = adler & 0xffff, b = adler >> 16;
    while (len > 0) {
        size_t n = len < 5552 ? len : 5552;  // largest n with no uint32 overflow
        len -= n;
        while (n--) {
            a += *data++;
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    return (b << 16) | a;
}

Status inflate_raw(const uint8_t * in, size_t in_len, std::vector<uint8_t> * out, size_t * consumed,
                   size_t max_out) {
    if (!out || (!in && in_len)) return error(SDGO_ERR_INVALID_ARGUMENT, "inflate: null buffer");
    Inflater inf;
    inf.br.p = in;
    inf.br.n = in_len;
    inf.out = out;
    inf.start = out->size();
    inf.pos = out->size();
    inf.max_out = max_out;
    Status st = inf.run();
    out->resize(inf.pos);  // drop the spare room (and, on failure, keep what was decoded)
    if (!st.ok()) return st;
    if (consumed) *consumed = inf.br.consumed();
    return Status();
}

Status gunzip(const uint8_t * in, size_t in_len, std::vector<uint8_t> * out, size_t max_out) {
    if (!out || (!in && in_len)) return error(SDGO_ERR_INVALID_ARGUMENT, "gunzip: null buffer");
    // Reserve the size the last trailer announces, bounded by what DEFLATE
    // can expand in_len bytes to (about 1032:1) and by max_out.
    if (in_len >= 18) {
        size_t isize = rd32le(in + in_len - 4);
        size_t bound = in_len > (SIZE_MAX - 1024) / 1032 ? SIZE_MAX : in_len * 1032 + 1024;
        size_t want = std::min(std::min(isize, bound), max_out);
        if (want > out->capacity() - out->size()) out->reserve(out->size() + want);
    }
    size_t pos = 0;
    int member = 0;
    do {
        const uint8_t * p = in + pos;
        size_t n = in_len - pos;
        if (n < 18) return error(SDGO_ERR_FORMAT, "gzip: member %d is truncated (%zu bytes)", member, n);
        if (p[0] != 0x1f || p[1] != 0x8b) return error(SDGO_ERR_FORMAT, "gzip: bad magic in member %d", member);
        if (p[2] != 8) return error(SDGO_ERR_FORMAT, "gzip: unknown compression method %d", p[2]);
        uint8_t flg = p[3];
        if (flg & 0xe0) return error(SDGO_ERR_FORMAT, "gzip: reserved flag bits set");
        size_t h = 10;
        if (flg & 4) {  // FEXTRA
            if (n < h + 2) return error(SDGO_ERR_FORMAT, "gzip: truncated extra field");
            size_t xlen = size_t(p[h]) | size_t(p[h + 1]) << 8;
            h += 2;
            if (n - h < xlen) return error(SDGO_ERR_FORMAT, "gzip: truncated extra field");
            h += xlen;
        }
        for (int f = 8; f <= 16; f <<= 1) {  // FNAME, FCOMMENT: zero-terminated
            if (!(flg & f)) continue;
            while (h < n && p[h] != 0) ++h;
            if (h >= n) return error(SDGO_ERR_FORMAT, "gzip: unterminated header string");
            ++h;
        }
        if (flg & 2) {  // FHCRC: low 16 bits of the header's CRC-32
            if (n < h + 2) return error(SDGO_ERR_FORMAT, "gzip: truncated header");
            uint32_t want = uint32_t(p[h]) | uint32_t(p[h + 1]) << 8;
            if ((crc32(p, h) & 0xffff) != want) return error(SDGO_ERR_FORMAT, "gzip: header CRC mismatch");
            h += 2;
        }
        if (n < h) return error(SDGO_ERR_FORMAT, "gzip: truncated header");
        size_t start = out->size();
        size_t used = 0;
        Status st = inflate_raw(p + h, n - h, out, &used, max_out);
        if (!st.ok()) return st.wrap(strprintf("gzip member %d", member));
        size_t t = h + used;
        if (n - t < 8) return error(SDGO_ERR_FORMAT, "gzip: truncated trailer");
        uint32_t want_crc = rd32le(p + t), want_size = rd32le(p + t + 4);
        if (crc32(out->data() + start, out->size() - start) != want_crc)
            return error(SDGO_ERR_FORMAT, "gzip: CRC-32 mismatch in member %d", member);
        if (uint32_t(out->size() - start) != want_size)
            return error(SDGO_ERR_FORMAT, "gzip: length mismatch in member %d", member);
        pos += t + 8;
        ++member;
    } while (pos < in_len);
    return Status();
}

Status zlib_decompress(const uint8_t * in, size_t in_len, std::vector<uint8_t> * out, size_t max_out) {
    if (!out || (!in && in_len)) return error(SDGO_ERR_INVALID_ARGUMENT, "zlib: null buffer");
    if (in_len < 6) return error(SDGO_ERR_FORMAT, "zlib: stream too short");
    uint8_t cmf = in[0], flg = in[1];
    if ((cmf & 0x0f) != 8 || (cmf >> 4) > 7) return error(SDGO_ERR_FORMAT, "zlib: bad compression method");
    if ((uint32_t(cmf) * 256 + flg) % 31 != 0) return error(SDGO_ERR_FORMAT, "zlib: header check failed");
    if (flg & 0x20) return error(SDGO_ERR_UNSUPPORTED, "zlib: preset dictionaries are not supported");
    size_t start = out->size(), used = 0;
    SDGO_TRY(inflate_raw(in + 2, in_len - 2, out, &used, max_out));
    size_t t = 2 + used;
    if (in_len - t < 4) return error(SDGO_ERR_FORMAT, "zlib: truncated trailer");
    uint32_t want = uint32_t(in[t]) << 24 | uint32_t(in[t + 1]) << 16 | uint32_t(in[t + 2]) << 8 | in[t + 3];
    if (adler32(out->data() + start, out->size() - start) != want)
        return error(SDGO_ERR_FORMAT, "zlib: Adler-32 mismatch");
    if (t + 4 != in_len) return error(SDGO_ERR_FORMAT, "zlib: %zu trailing bytes", in_len - t - 4);
    return Status();
}

}  // namespace sdgo::util
