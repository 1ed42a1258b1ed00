#include "formats/json.h"

#include <cmath>
#include <cstdlib>
#include <unordered_set>

namespace sdgo::formats {

const Json * Json::get(const std::string & key) const {
    if (kind != object) return nullptr;
    for (const auto & m : members)
        if (m.first == key) return &m.second;
    return nullptr;
}

bool Json::as_int64(int64_t * out) const {
    if (kind != number || !is_int) return false;
    if (!neg) {
        if (mag > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX + 1) return false;
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    }
    return true;
}

int64_t Json::int_or(const std::string & key, int64_t def) const {
    const Json * v = get(key);
    int64_t x;
    if (v && v->as_int64(&x)) return x;
    return def;
}
Status Json::int_in(const std::string & key, int64_t lo, int64_t hi, int64_t def, int64_t * out,
                    const char * what) const {
    const Json * v = get(key);
    if (!v || v->kind == null_) {
        *out = def;
        return Status();
    }
    int64_t x = 0;
    if (!v->as_int64(&x) || x < lo || x > hi)
        return error(SDGO_ERR_FORMAT, "%s: %s must be an integer from %lld to %lld", what, key.c_str(), (long long)lo,
                     (long long)hi);
    *out = x;
    return Status();
}

Status Json::num_in(const std::string & key, double lo, double hi, double def, double * out, const char * what) const {
    const Json * v = get(key);
    if (!v || v->kind == null_) {
        *out = def;
        return Status();
    }
    if (v->kind != number || !std::isfinite(v->num) || v->num < lo || v->num > hi)
        return error(SDGO_ERR_FORMAT, "%s: %s must be a finite number from %g to %g", what, key.c_str(), lo, hi);
    *out = v->num;
    return Status();
}

double Json::num_or(const std::string & key, double def) const {
    const Json * v = get(key);
    return v && v->kind == number ? v->num : def;
}
std::string Json::str_or(const std::string & key, const std::string & def) const {
    const Json * v = get(key);
    return v && v->kind == string ? v->str : def;
}
bool Json::bool_or(const std::string & key, bool def) const {
    const Json * v = get(key);
    return v && v->kind == boolean ? v->b : def;
}

namespace {

struct Parser {
    const char * s;
    size_t n;
    size_t i = 0;
    int max_depth;
    std::string err;

    bool fail(const char * what) {
        if (err.empty()) err = strprintf("invalid JSON at byte %zu: %s", i, what);
        return false;
    }
    void ws() {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    }
    bool lit(const char * w) {
        size_t k = 0;
        while (w[k]) {
            if (i + k >= n || s[i + k] != w[k]) return fail("unknown literal");
            k++;
        }
        i += k;
        return true;
    }
    static void put_utf8(uint32_t cp, std::string * o) {
        if (cp < 0x80) o->push_back((char)cp);
        else if (cp < 0x800) { o->push_back((char)(0xC0 | (cp >> 6))); o->push_back((char)(0x80 | (cp & 0x3F))); }
        else if (cp < 0x10000) {
            o->push_back((char)(0xE0 | (cp >> 12))); o->push_back((char)(0x80 | ((cp >> 6) & 0x3F)));
            o->push_back((char)(0x80 | (cp & 0x3F)));
        } else {
            o->push_back((char)(0xF0 | (cp >> 18))); o->push_back((char)(0x80 | ((cp >> 12) & 0x3F)));
            o->push_back((char)(0x80 | ((cp >> 6) & 0x3F))); o->push_back((char)(0x80 | (cp & 0x3F)));
        }
    }
    bool hex4(uint32_t * v) {
        if (n - i < 4) return fail("short \\u escape");
        uint32_t x = 0;
        for (int k = 0; k < 4; k++) {
            char c = s[i + k];
            x <<= 4;
            if (c >= '0' && c <= '9') x |= (uint32_t)(c - '0');
            else if (c >= 'a' && c <= 'f') x |= (uint32_t)(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') x |= (uint32_t)(c - 'A' + 10);
            else return fail("bad hex digit in \\u escape");
        }
        i += 4;
        *v = x;
        return true;
    }
    // Validates one UTF-8 sequence starting at s[i] (non-ASCII) and copies it.
    bool utf8(std::string * o) {
        unsigned char c = (unsigned char)s[i];
        int len;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
        else return fail("invalid UTF-8");
        if (n - i < (size_t)len) return fail("truncated UTF-8");
        for (int k = 1; k < len; k++) {
            unsigned char d = (unsigned char)s[i + k];
            if ((d & 0xC0) != 0x80) return fail("invalid UTF-8");
            cp = (cp << 6) | (d & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
            return fail("invalid UTF-8");
        o->append(s + i, (size_t)len);
        i += (size_t)len;
        return true;
    }
    bool string(std::string * o) {
        if (i >= n || s[i] != '"') return fail("expected string");
        i++;
        for (;;) {
            if (i >= n) return fail("unterminated string");
            unsigned char c = (unsigned char)s[i];
            if (c == '"') { i++; return true; }
            if (c < 0x20) return fail("control character in string");
            if (c == '\\') {
                i++;
                if (i >= n) return fail("unterminated escape");
                char e = s[i++];
                switch (e) {
                    case '"': o->push_back('"'); break;
                    case '\\': o->push_back('\\'); break;
                    case '/': o->push_back('/'); break;
                    case 'b': o->push_back('\b'); break;
                    case 'f': o->push_back('\f'); break;
                    case 'n': o->push_back('\n'); break;
                    case 'r': o->push_back('\r'); break;
                    case 't': o->push_back('\t'); break;
                    case 'u': {
                        uint32_t cp;
                        if (!hex4(&cp)) return false;
                        if (cp >= 0xD800 && cp <= 0xDBFF) {
                            if (n - i < 6 || s[i] != '\\' || s[i + 1] != 'u') return fail("unpaired surrogate");
                            i += 2;
                            uint32_t lo;
                            if (!hex4(&lo)) return false;
                            if (lo < 0xDC00 || lo > 0xDFFF) return fail("unpaired surrogate");
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                            return fail("unpaired surrogate");
                        }
                        put_utf8(cp, o);
                        break;
                    }
                    default: return fail("unknown escape");
                }
            } else if (c < 0x80) {
                o->push_back((char)c);
                i++;
            } else if (!utf8(o)) {
                return false;
            }
        }
    }
    bool number(Json * v) {
        size_t st = i;
        bool neg = false;
        if (s[i] == '-') { neg = true; i++; }
        if (i >= n) return fail("bad number");
        if (s[i] == '0') {
            i++;
        } else if (s[i] >= '1' && s[i] <= '9') {
            while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        } else {
            return fail("bad number");
        }
        size_t int_end = i;
        bool is_int = true;
        if (i < n && s[i] == '.') {
            is_int = false;
            i++;
            if (i >= n || !(s[i] >= '0' && s[i] <= '9')) return fail("bad fraction");
            while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        }
        if (i < n && (s[i] == 'e' || s[i] == 'E')) {
            is_int = false;
            i++;
            if (i < n && (s[i] == '+' || s[i] == '-')) i++;
            if (i >= n || !(s[i] >= '0' && s[i] <= '9')) return fail("bad exponent");
            while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        }
        v->kind = Json::number;
        v->neg = neg;
        std::string text(s + st, i - st);
        v->num = std::strtod(text.c_str(), nullptr);
        if (is_int) {
            uint64_t m = 0;
            bool ovf = false;
            for (size_t k = st + (neg ? 1 : 0); k < int_end; k++) {
                uint64_t d = (uint64_t)(s[k] - '0');
                if (m > (UINT64_MAX - d) / 10) { ovf = true; break; }
                m = m * 10 + d;
            }
            v->is_int = !ovf;
            v->mag = ovf ? 0 : m;
        }
        return true;
    }
    bool value(Json * v, int depth) {
        if (depth > max_depth) return fail("nesting too deep");
        ws();
        if (i >= n) return fail("unexpected end");
        char c = s[i];
        if (c == '{') {
            v->kind = Json::object;
            i++;
            ws();
            if (i < n && s[i] == '}') { i++; return true; }
            // Keys seen so far, for the duplicate check: a set keeps it
            // linear, where scanning the members would be quadratic (a
            // hostile header with many keys must not stall the reader).
            std::unordered_set<std::string> seen;
            for (;;) {
                ws();
                std::string key;
                if (!string(&key)) return false;
                if (!seen.insert(key).second)
                    return fail(("duplicate key \"" + key.substr(0, 80) + "\"").c_str());
                ws();
                if (i >= n || s[i] != ':') return fail("expected ':'");
                i++;
                v->members.emplace_back(std::move(key), Json());
                if (!value(&v->members.back().second, depth + 1)) return false;
                ws();
                if (i < n && s[i] == ',') { i++; continue; }
                if (i < n && s[i] == '}') { i++; return true; }
                return fail("expected ',' or '}'");
            }
        }
        if (c == '[') {
            v->kind = Json::array;
            i++;
            ws();
            if (i < n && s[i] == ']') { i++; return true; }
            for (;;) {
                v->items.emplace_back();
                if (!value(&v->items.back(), depth + 1)) return false;
                ws();
                if (i < n && s[i] == ',') { i++; continue; }
                if (i < n && s[i] == ']') { i++; return true; }
                return fail("expected ',' or ']'");
            }
        }
        if (c == '"') { v->kind = Json::string; return string(&v->str); }
        if (c == 't') { v->kind = Json::boolean; v->b = true; return lit("true"); }
        if (c == 'f') { v->kind = Json::boolean; v->b = false; return lit("false"); }
        if (c == 'n') { v->kind = Json::null_; return lit("null"); }
        if (c == '-' || (c >= '0' && c <= '9')) return number(v);
        return fail("unexpected character");
    }
};

}  // namespace

Status json_parse(const char * text, size_t len, Json * out, int max_depth) {
    Parser p{text, len, 0, max_depth, {}};
    Json v;
    if (!p.value(&v, 0)) return Status(SDGO_ERR_FORMAT, p.err);
    p.ws();
    if (p.i != len) {
        p.fail("trailing characters after the value");
        return Status(SDGO_ERR_FORMAT, p.err);
    }
    *out = std::move(v);
    return Status();
}

// Length of a valid UTF-8 sequence at s[i] (non-ASCII lead), or 0.
static size_t utf8_len(const std::string & s, size_t i) {
    unsigned char c = (unsigned char)s[i];
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    else return 0;
    if (s.size() - i < len) return 0;
    for (size_t k = 1; k < len; k++) {
        unsigned char d = (unsigned char)s[i + k];
        if ((d & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (d & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

void json_escape(const std::string & s, std::string * out) {
    out->push_back('"');
    for (size_t i = 0; i < s.size();) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t n = utf8_len(s, i);
            if (n == 0) {
                out->append("\\ufffd");  // invalid UTF-8 byte (file metadata is untrusted)
                i++;
            } else {
                out->append(s, i, n);
                i += n;
            }
            continue;
        }
        switch (c) {
            case '"': out->append("\\\""); break;
            case '\\': out->append("\\\\"); break;
            case '\n': out->append("\\n"); break;
            case '\r': out->append("\\r"); break;
            case '\t': out->append("\\t"); break;
            default:
                if (c < 0x20 || c == 0x7f) out->append(strprintf("\\u%04x", c));
                else out->push_back((char)c);
        }
        i++;
    }
    out->push_back('"');
}

std::string json_quote(const std::string & s) {
    std::string o;
    json_escape(s, &o);
    return o;
}

}  // namespace sdgo::formats
