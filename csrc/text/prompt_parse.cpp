// prompt_parse.cpp — see prompt_parse.h.
#include "text/prompt_parse.h"

#include <cmath>
#include <cstdlib>

#include "text/unicode.h"

namespace sdgo::text {
namespace {

// Python re's \w for str patterns, close enough: letters, numbers, '_'.
bool is_word(uint32_t c) { return c == '_' || is_letter(c) || is_number(c); }

// Splits plain text on \s*\bBREAK\b\s* (Python re.split semantics) and
// appends the parts with weight 1, a ("BREAK", -1) marker between parts.
void append_text(const std::string & text, std::vector<PromptFragment> * res) {
    std::u32string u = utf8_decode(text);
    size_t n = u.size(), part_begin = 0, pos = 0;
    std::vector<std::pair<size_t, size_t>> cuts;  // [begin, end) of each separator match
    while (pos + 5 <= n) {
        // Leftmost match: optional whitespace, then BREAK at a word boundary.
        size_t p = pos;
        while (p < n && is_py_space(u[p])) ++p;
        bool hit = p + 5 <= n && u[p] == 'B' && u[p + 1] == 'R' && u[p + 2] == 'E' && u[p + 3] == 'A' &&
                   u[p + 4] == 'K' && (p == 0 || !is_word(u[p - 1])) && (p + 5 == n || !is_word(u[p + 5]));
        if (!hit) {
            pos = (p > pos) ? p : pos + 1;
            continue;
        }
        size_t e = p + 5;
        while (e < n && is_py_space(u[e])) ++e;
        cuts.push_back({pos, e});
        pos = e;
    }
    for (size_t k = 0; k <= cuts.size(); ++k) {
        size_t b = k == 0 ? part_begin : cuts[k - 1].second;
        size_t e = k == cuts.size() ? n : cuts[k].first;
        if (k > 0) res->push_back({"BREAK", -1.0});
        res->push_back({utf8_encode(u.substr(b, e - b)), 1.0});
    }
}

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Matches :\s*([+-]?[.\d]+)\s*\) at s[i] (s[i] == ':'). Returns the match
// length (0 if none) and the number text.
size_t match_weight(const std::string & s, size_t i, std::string * num) {
    size_t j = i + 1, n = s.size();
    while (j < n && is_ascii_space(s[j])) ++j;
    size_t nb = j;
    if (j < n && (s[j] == '+' || s[j] == '-')) ++j;
    size_t db = j;
    while (j < n && (s[j] == '.' || (s[j] >= '0' && s[j] <= '9'))) ++j;
    if (j == db) return 0;
    *num = s.substr(nb, j - nb);
    while (j < n && is_ascii_space(s[j])) ++j;
    if (j >= n || s[j] != ')') return 0;
    return j + 1 - i;
}

// Python float() of [+-]?[.\d]+: at most one '.', at least one digit.
bool parse_number(const std::string & t, double * v) {
    int dots = 0, digits = 0;
    for (char c : t) {
        if (c == '.') ++dots;
        else if (c >= '0' && c <= '9') ++digits;
    }
    if (dots > 1 || digits == 0) return false;
    *v = std::strtod(t.c_str(), nullptr);
    return std::isfinite(*v);
}

}  // namespace

std::vector<PromptFragment> parse_prompt_attention(const std::string & text) {
    std::vector<PromptFragment> res;
    std::vector<size_t> round, square;
    const double round_mult = 1.1, square_mult = 1 / 1.1;
    auto multiply_range = [&](size_t start, double m) {
        for (size_t p = start; p < res.size(); ++p) res[p].weight *= m;
    };
    size_t i = 0, n = text.size();
    while (i < n) {
        char c = text[i];
        if (c == '\\') {
            if (i + 1 < n && (text[i + 1] == '(' || text[i + 1] == ')' || text[i + 1] == '[' || text[i + 1] == ']' ||
                              text[i + 1] == '\\')) {
                res.push_back({std::string(1, text[i + 1]), 1.0});
                i += 2;
            } else {
                res.push_back({"", 1.0});  // a lone backslash: dropped, as in A1111
                i += 1;
            }
            continue;
        }
        if (c == '(') { round.push_back(res.size()); ++i; continue; }
        if (c == '[') { square.push_back(res.size()); ++i; continue; }
        if (c == ':') {
            std::string num;
            size_t len = match_weight(text, i, &num);
            if (len) {
                double w;
                if (!parse_number(num, &w)) {
                    // Not a number (e.g. "1.2.3"; A1111 raises): the ':' is text
                    // and scanning goes on after it.
                    append_text(":", &res);
                    ++i;
                    continue;
                }
                if (!round.empty()) {
                    multiply_range(round.back(), w);
                    round.pop_back();
                } else {
                    append_text(text.substr(i, len), &res);
                }
                i += len;
            } else {
                append_text(":", &res);
                ++i;
            }
            continue;
        }
        if (c == ')') {
            if (!round.empty()) { multiply_range(round.back(), round_mult); round.pop_back(); }
            else append_text(")", &res);
            ++i;
            continue;
        }
        if (c == ']') {
            if (!square.empty()) { multiply_range(square.back(), square_mult); square.pop_back(); }
            else append_text("]", &res);
            ++i;
            continue;
        }
        size_t j = i;
        while (j < n && text[j] != '\\' && text[j] != '(' && text[j] != ')' && text[j] != '[' && text[j] != ']' &&
               text[j] != ':')
            ++j;
        append_text(text.substr(i, j - i), &res);
        i = j;
    }
    for (size_t pos : round) multiply_range(pos, round_mult);
    for (size_t pos : square) multiply_range(pos, square_mult);
    if (res.empty()) res.push_back({"", 1.0});
    // Merge runs of identical weights.
    std::vector<PromptFragment> merged;
    for (auto & f : res) {
        if (!merged.empty() && merged.back().weight == f.weight) merged.back().text += f.text;
        else merged.push_back(std::move(f));
    }
    return merged;
}

Status tokenize_weighted_prompt(const ClipTokenizer & tok, const std::string & prompt, const ChunkOptions & opt,
                                PromptChunks * out) {
    if (!out) return error(SDGO_ERR_INVALID_ARGUMENT, "tokenize_weighted_prompt: null output");
    if (!tok.is_loaded()) return error(SDGO_ERR_INVALID_ARGUMENT, "tokenize_weighted_prompt: tokenizer not loaded");
    if (opt.comma_padding_backtrack < 0 || opt.comma_padding_backtrack > 74)
        return error(SDGO_ERR_INVALID_ARGUMENT, "comma_padding_backtrack must be in [0, 74], got %d",
                     opt.comma_padding_backtrack);
    std::vector<PromptFragment> parsed;
    if (opt.parse_weights) parsed = parse_prompt_attention(prompt);
    else parsed.push_back({prompt, 1.0});

    const int L = 75;
    const int32_t bos = tok.bos_id(), eos = tok.eos_id(), comma = tok.comma_id();
    *out = PromptChunks();
    std::vector<int32_t> ct;  // current chunk
    std::vector<float> cm;
    int last_comma = -1;
    auto next_chunk = [&](bool is_last) -> Status {
        if (opt.max_chunks > 0 && out->n_chunks >= opt.max_chunks)
            return error(SDGO_ERR_INVALID_ARGUMENT, "prompt needs more than %d chunks of 75 tokens", opt.max_chunks);
        out->token_count += is_last ? int(ct.size()) : L;
        while (int(ct.size()) < L) { ct.push_back(eos); cm.push_back(1.0f); }
        size_t base = out->ids.size();
        out->ids.push_back(bos);
        out->multipliers.push_back(1.0f);
        out->ids.insert(out->ids.end(), ct.begin(), ct.end());
        out->multipliers.insert(out->multipliers.end(), cm.begin(), cm.end());
        out->ids.push_back(eos);
        out->multipliers.push_back(1.0f);
        if (opt.pad_id != eos) {
            size_t k = base;
            while (out->ids[k] != eos) ++k;  // an EOS is always present
            for (++k; k < base + 77; ++k) out->ids[k] = opt.pad_id;
        }
        out->n_chunks++;
        last_comma = -1;
        ct.clear();
        cm.clear();
        return Status();
    };

    for (const PromptFragment & f : parsed) {
        if (f.weight == -1.0 && f.text == "BREAK") {
            SDGO_TRY(next_chunk(false));
            continue;
        }
        std::vector<int32_t> tokens = tok.encode(f.text);
        float w = float(f.weight);
        for (int32_t t : tokens) {
            if (t == comma) {
                last_comma = int(ct.size());
            } else if (opt.comma_padding_backtrack != 0 && int(ct.size()) == L && last_comma != -1 &&
                       int(ct.size()) - last_comma <= opt.comma_padding_backtrack) {
                size_t brk = size_t(last_comma + 1);
                std::vector<int32_t> rt(ct.begin() + long(brk), ct.end());
                std::vector<float> rm(cm.begin() + long(brk), cm.end());
                ct.resize(brk);
                cm.resize(brk);
                SDGO_TRY(next_chunk(false));
                ct = std::move(rt);
                cm = std::move(rm);
            }
            if (int(ct.size()) == L) SDGO_TRY(next_chunk(false));
            ct.push_back(t);
            cm.push_back(w);
        }
    }
    if (!ct.empty() || out->n_chunks == 0) SDGO_TRY(next_chunk(true));
    return Status();
}

Status apply_emphasis(float * z, const float * mult, int64_t batch, int64_t tokens, int64_t dim, bool restore_mean) {
    if (!z || !mult) return error(SDGO_ERR_INVALID_ARGUMENT, "apply_emphasis: null buffer");
    if (batch <= 0 || tokens <= 0 || dim <= 0 || tokens % 77 != 0)
        return error(SDGO_ERR_INVALID_ARGUMENT,
                     "apply_emphasis: bad shape %lld x %lld x %lld (tokens must be a multiple of 77)",
                     (long long)batch, (long long)tokens, (long long)dim);
    const int64_t chunks = tokens / 77;
    for (int64_t c = 0; c < chunks; ++c) {
        bool all_one = true;
        for (int64_t b = 0; b < batch && all_one; ++b)
            for (int64_t t = 0; t < 77; ++t)
                if (mult[b * tokens + c * 77 + t] != 1.0f) { all_one = false; break; }
        if (all_one) continue;  // exact no-op in A1111's arithmetic too
        double s0 = 0, s1 = 0;
        for (int64_t b = 0; b < batch; ++b)
            for (int64_t t = 0; t < 77; ++t) {
                float * row = z + (b * tokens + c * 77 + t) * dim;
                float m = mult[b * tokens + c * 77 + t];
                for (int64_t d = 0; d < dim; ++d) {
                    s0 += row[d];
                    row[d] *= m;
                    s1 += row[d];
                }
            }
        if (!restore_mean) continue;
        double cnt = double(batch) * 77.0 * double(dim);
        float m0 = float(s0 / cnt), m1 = float(s1 / cnt);
        if (m1 == 0.0f || !std::isfinite(m1) || !std::isfinite(m0)) continue;
        float r = m0 / m1;
        for (int64_t b = 0; b < batch; ++b) {
            float * row = z + (b * tokens + c * 77) * dim;
            for (int64_t k = 0; k < 77 * dim; ++k) row[k] *= r;
        }
    }
    return Status();
}

}  // namespace sdgo::text
