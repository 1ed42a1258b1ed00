// unicode.cpp — see unicode.h.
#include "text/unicode.h"

#include <algorithm>

namespace sdgo::text {
namespace {

struct CatRange { uint32_t start; uint8_t cls; };
struct CpPair { uint32_t cp, lower; };
struct CccRange { uint32_t first, last; uint8_t ccc; };
struct Decomp { uint32_t cp; uint16_t off; uint8_t len; };
struct Comp { uint32_t a, b, c; };

#include "text/unicode_tables.inc"

// Hangul syllable arithmetic (Unicode §3.12).
constexpr uint32_t SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
constexpr uint32_t LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

uint8_t ccc_of(uint32_t cp) {
    if (cp < 0x300) return 0;
    const CccRange * end = kCcc + sizeof(kCcc) / sizeof(kCcc[0]);
    const CccRange * it = std::upper_bound(kCcc, end, cp, [](uint32_t v, const CccRange & r) { return v < r.first; });
    if (it == kCcc) return 0;
    --it;
    return cp <= it->last ? it->ccc : 0;
}

void decompose(uint32_t cp, std::u32string * out) {
    if (cp >= SBase && cp < SBase + SCount) {
        uint32_t s = cp - SBase;
        out->push_back(LBase + s / NCount);
        out->push_back(VBase + (s % NCount) / TCount);
        if (s % TCount) out->push_back(TBase + s % TCount);
        return;
    }
    if (cp < 0xC0) { out->push_back(cp); return; }
    const Decomp * end = kDecomp + sizeof(kDecomp) / sizeof(kDecomp[0]);
    const Decomp * it = std::lower_bound(kDecomp, end, cp, [](const Decomp & d, uint32_t v) { return d.cp < v; });
    if (it != end && it->cp == cp) {
        out->append(reinterpret_cast<const char32_t *>(kDecompPool + it->off), it->len);
        return;
    }
    out->push_back(cp);
}

// Composite of the pair, or 0.
uint32_t compose(uint32_t a, uint32_t b) {
    if (a >= LBase && a < LBase + LCount && b >= VBase && b < VBase + VCount)
        return SBase + ((a - LBase) * VCount + (b - VBase)) * TCount;
    if (a >= SBase && a < SBase + SCount && (a - SBase) % TCount == 0 && b > TBase && b < TBase + TCount)
        return a + (b - TBase);
    const Comp * end = kComp + sizeof(kComp) / sizeof(kComp[0]);
    const Comp * it = std::lower_bound(kComp, end, std::make_pair(a, b), [](const Comp & c, const std::pair<uint32_t, uint32_t> & v) {
        return c.a < v.first || (c.a == v.first && c.b < v.second);
    });
    if (it != end && it->a == a && it->b == b) return it->c;
    return 0;
}

}  // namespace

const char * unicode_version() { return kUnicodeVersion; }

UClass uclass(uint32_t cp) {
    if (cp >= 0x110000) return UClass::control;
    const CatRange * end = kCatRanges + sizeof(kCatRanges) / sizeof(kCatRanges[0]);
    const CatRange * it = std::upper_bound(kCatRanges, end, cp, [](uint32_t v, const CatRange & r) { return v < r.start; });
    return UClass((it - 1)->cls);  // kCatRanges[0].start == 0
}

bool is_white_space(uint32_t cp) {
    if (cp < 0x80) return (cp >= 9 && cp <= 13) || cp == 32;
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool is_py_space(uint32_t cp) { return is_white_space(cp) || (cp >= 0x1C && cp <= 0x1F); }

std::u32string utf8_decode(const std::string & s) {
    std::u32string out;
    out.reserve(s.size());
    const unsigned char * p = reinterpret_cast<const unsigned char *>(s.data());
    size_t n = s.size(), i = 0;
    while (i < n) {
        unsigned b = p[i];
        if (b < 0x80) { out.push_back(b); ++i; continue; }
        int need;
        uint32_t cp;
        unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
        if (b >= 0xC2 && b <= 0xDF) { need = 1; cp = b & 0x1F; }
        else if (b >= 0xE0 && b <= 0xEF) {
            need = 2; cp = b & 0x0F;
            if (b == 0xE0) lo = 0xA0;
            if (b == 0xED) hi = 0x9F;  // no surrogates
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3; cp = b & 0x07;
            if (b == 0xF0) lo = 0x90;
            if (b == 0xF4) hi = 0x8F;  // <= U+10FFFF
        } else { out.push_back(0xFFFD); ++i; continue; }
        size_t j = i + 1;
        bool ok = true;
        for (int k = 0; k < need; ++k, ++j) {
            unsigned lo_k = k == 0 ? lo : 0x80, hi_k = k == 0 ? hi : 0xBF;
            if (j >= n || p[j] < lo_k || p[j] > hi_k) { ok = false; break; }
            cp = (cp << 6) | (p[j] & 0x3F);
        }
        out.push_back(ok ? cp : 0xFFFD);
        i = j;  // on failure: resume at the offending byte
    }
    return out;
}

void utf8_append(uint32_t cp, std::string * out) {
    if (cp < 0x80) out->push_back(char(cp));
    else if (cp < 0x800) { out->push_back(char(0xC0 | (cp >> 6))); out->push_back(char(0x80 | (cp & 0x3F))); }
    else if (cp < 0x10000) {
        out->push_back(char(0xE0 | (cp >> 12)));
        out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
        out->push_back(char(0x80 | (cp & 0x3F)));
    } else {
        out->push_back(char(0xF0 | (cp >> 18)));
        out->push_back(char(0x80 | ((cp >> 12) & 0x3F)));
        out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
        out->push_back(char(0x80 | (cp & 0x3F)));
    }
}

std::string utf8_encode(const std::u32string & s) {
    std::string out;
    out.reserve(s.size());
    for (char32_t c : s) utf8_append(uint32_t(c), &out);
    return out;
}

void append_lower(uint32_t cp, std::u32string * out) {
    if (cp < 0x80) { out->push_back((cp >= 'A' && cp <= 'Z') ? cp + 32 : cp); return; }
    if (cp == 0x130) { out->push_back(U'i'); out->push_back(0x307); return; }
    const CpPair * end = kLower + sizeof(kLower) / sizeof(kLower[0]);
    const CpPair * it = std::lower_bound(kLower, end, cp, [](const CpPair & p, uint32_t v) { return p.cp < v; });
    out->push_back((it != end && it->cp == cp) ? it->lower : cp);
}

namespace {
int case_state(uint32_t cp) {
    const CatRange * end = kCaseRanges + sizeof(kCaseRanges) / sizeof(kCaseRanges[0]);
    const CatRange * it = std::upper_bound(kCaseRanges, end, cp, [](uint32_t v, const CatRange & r) { return v < r.start; });
    return (it - 1)->cls;
}
}  // namespace

void append_lower_word(const char32_t * w, size_t n, std::u32string * out) {
    for (size_t i = 0; i < n; ++i) {
        uint32_t c = uint32_t(w[i]);
        if (c != 0x3A3) { append_lower(c, out); continue; }
        // \p{cased} \p{case-ignorable}* U+03A3 !(\p{case-ignorable}* \p{cased})
        long j = long(i) - 1;
        while (j >= 0 && case_state(uint32_t(w[j])) == 1) --j;
        bool final_sigma = j >= 0 && case_state(uint32_t(w[j])) == 2;
        if (final_sigma) {
            size_t k = i + 1;
            while (k < n && case_state(uint32_t(w[k])) == 1) ++k;
            final_sigma = k == n || case_state(uint32_t(w[k])) != 2;
        }
        out->push_back(final_sigma ? 0x3C2 : 0x3C3);
    }
}

std::u32string nfc(const std::u32string & s) {
    // Fast path: text below U+0300 is already in NFC.
    bool simple = true;
    for (char32_t c : s) if (c >= 0x300) { simple = false; break; }
    if (simple) return s;

    std::u32string d;
    d.reserve(s.size() + 8);
    for (char32_t c : s) decompose(uint32_t(c), &d);
    // Canonical ordering: stable sort of each run of non-starters by class.
    for (size_t i = 0; i < d.size();) {
        if (ccc_of(d[i]) == 0) { ++i; continue; }
        size_t j = i;
        while (j < d.size() && ccc_of(d[j]) != 0) ++j;
        std::stable_sort(d.begin() + i, d.begin() + j, [](char32_t a, char32_t b) { return ccc_of(a) < ccc_of(b); });
        i = j;
    }
    // Canonical composition.
    std::u32string out;
    out.reserve(d.size());
    long starter = -1;
    for (char32_t ch : d) {
        uint8_t c = ccc_of(ch);
        if (starter >= 0) {
            bool adjacent = size_t(starter) + 1 == out.size();
            uint8_t prev = adjacent ? 0 : ccc_of(out.back());
            bool blocked = !adjacent && (prev == 0 || prev >= c);
            if (!blocked) {
                uint32_t comp = compose(out[starter], ch);
                if (comp) { out[starter] = comp; continue; }
            }
        }
        if (c == 0) starter = long(out.size());
        out.push_back(ch);
    }
    return out;
}

}  // namespace sdgo::text
