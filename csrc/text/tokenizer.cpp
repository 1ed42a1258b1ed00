// tokenizer.cpp — see tokenizer.h.
#include "text/tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>

#include "formats/json.h"
#include "formats/mapped_file.h"
#include "text/clip_merges_data.h"
#include "text/unicode.h"
#include "util/inflate.h"

namespace sdgo::text {
namespace {

const char * const kStartText = "<|startoftext|>";
const char * const kEndText = "<|endoftext|>";
constexpr uint64_t kNoRank = std::numeric_limits<uint64_t>::max();
constexpr size_t kCacheMaxEntries = 1 << 16;
constexpr size_t kCacheMaxPiece = 64;

// Bytes in vocabulary order and the code point standing for each byte.
struct ByteMap {
    uint8_t order[256];
    uint32_t cp[256];
    ByteMap() {
        bool printable[256] = {};
        int n = 0;
        for (int b = 33; b <= 126; ++b) printable[b] = true;
        for (int b = 161; b <= 172; ++b) printable[b] = true;
        for (int b = 174; b <= 255; ++b) printable[b] = true;
        for (int b = 0; b < 256; ++b)
            if (printable[b]) { order[n++] = uint8_t(b); cp[b] = uint32_t(b); }
        uint32_t extra = 256;
        for (int b = 0; b < 256; ++b)
            if (!printable[b]) { order[n++] = uint8_t(b); cp[b] = extra++; }
    }
};

const ByteMap & byte_map() {
    static const ByteMap m;
    return m;
}

std::string byte_char(uint8_t b) {
    std::string s;
    utf8_append(byte_map().cp[b], &s);
    return s;
}

bool is_cjk(uint32_t cp) {  // BasicTokenizer's "Chinese character" ranges
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
           (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// transformers 4.x BasicTokenizer(strip_accents=False, do_split_on_punc=False).
std::u32string normalize_basic(const std::u32string & in) {
    std::u32string t;
    t.reserve(in.size());
    for (char32_t ch : in) {
        uint32_t c = uint32_t(ch);
        bool ws = c == ' ' || c == '\t' || c == '\n' || c == '\r';
        if (c == 0 || c == 0xFFFD) continue;
        if (!ws && uclass(c) == UClass::control) continue;
        if (ws || uclass(c) == UClass::space_sep) { t.push_back(U' '); continue; }
        if (is_cjk(c)) {
            t.push_back(U' ');
            t.push_back(ch);
            t.push_back(U' ');
            continue;
        }
        t.push_back(ch);
    }
    t = nfc(t);
    // Split on Python whitespace, lowercase each word, join with one space.
    std::u32string out;
    out.reserve(t.size());
    size_t i = 0, n = t.size();
    while (i < n) {
        while (i < n && is_py_space(t[i])) ++i;
        if (i >= n) break;
        if (!out.empty()) out.push_back(U' ');
        size_t b = i;
        while (i < n && !is_py_space(t[i])) ++i;
        append_lower_word(t.data() + b, i - b, &out);
    }
    return out;
}

// transformers 5.x / tokenizers: NFC, \s+ -> " ", lowercase.
std::u32string normalize_fast(const std::u32string & in) {
    std::u32string t = nfc(in);
    std::u32string out;
    out.reserve(t.size());
    for (size_t i = 0; i < t.size();) {
        if (is_white_space(t[i])) {
            while (i < t.size() && is_white_space(t[i])) ++i;
            out.push_back(U' ');
            continue;
        }
        append_lower(t[i++], &out);
    }
    return out;
}

bool match_ascii(const std::u32string & s, size_t i, const char * lit) {
    for (size_t k = 0; lit[k]; ++k)
        if (i + k >= s.size() || s[i + k] != char32_t(uint8_t(lit[k]))) return false;
    return true;
}

// One pre-token: [begin, end) of the normalised text; special = 1 for
// <|startoftext|>, 2 for <|endoftext|>.
struct Piece {
    size_t begin, end;
    int special;
};

// The CLIP split pattern (see tokenizer.h). The text is already lowercase,
// so the pattern's case-insensitivity matters for one character only: the
// Python `regex` module, matching case-insensitively, lets U+0345 (combining
// ypogegrammeni, which case-folds to the letter iota) match neither \p{L}
// nor [^\s\p{L}\p{N}], so the transformers 4.x tokenizer drops it
// (ignorecase_quirk). The tokenizers library has no such flag.
void split_pattern(const std::u32string & s, bool ignorecase_quirk, std::vector<Piece> * out) {
    size_t i = 0, n = s.size();
    auto dropped = [&](char32_t ch) { return ignorecase_quirk && ch == 0x345; };
    while (i < n) {
        uint32_t c = uint32_t(s[i]);
        if (dropped(c)) { ++i; continue; }
        if (c == '<') {
            if (match_ascii(s, i, kStartText)) { out->push_back({i, i + 15, 1}); i += 15; continue; }
            if (match_ascii(s, i, kEndText)) { out->push_back({i, i + 13, 2}); i += 13; continue; }
        }
        if (c == '\'' && i + 1 < n) {
            char32_t a = s[i + 1], b = i + 2 < n ? s[i + 2] : 0;
            size_t len = 0;
            if (a == 's' || a == 't' || a == 'm' || a == 'd') len = 2;
            else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) len = 3;
            if (len) { out->push_back({i, i + len, 0}); i += len; continue; }
        }
        if (is_letter(c)) {
            size_t j = i + 1;
            while (j < n && is_letter(s[j])) ++j;
            out->push_back({i, j, 0});
            i = j;
            continue;
        }
        if (is_number(c)) { out->push_back({i, i + 1, 0}); ++i; continue; }
        if (is_white_space(c)) { ++i; continue; }
        size_t j = i + 1;
        while (j < n && !is_white_space(s[j]) && !is_letter(s[j]) && !is_number(s[j]) && !dropped(s[j])) ++j;
        out->push_back({i, j, 0});
        i = j;
    }
}

std::string utf8_range(const std::u32string & s, size_t b, size_t e) {
    std::string out;
    for (size_t i = b; i < e; ++i) utf8_append(uint32_t(s[i]), &out);
    return out;
}

bool is_ascii_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

// Splits a merges line on ASCII whitespace (Python's str.split() for these
// lines, whose symbols are byte-mapped and never contain whitespace).
void split_ws(const std::string & line, std::vector<std::string> * parts) {
    parts->clear();
    size_t i = 0, n = line.size();
    while (i < n) {
        while (i < n && is_ascii_ws(line[i])) ++i;
        if (i >= n) break;
        size_t j = i;
        while (j < n && !is_ascii_ws(line[j])) ++j;
        parts->push_back(line.substr(i, j - i));
        i = j;
    }
}

// Splits text into lines on \n.
std::vector<std::string> lines_of(const char * data, size_t len) {
    std::vector<std::string> lines;
    size_t i = 0;
    while (i < len) {
        const char * nl = static_cast<const char *>(std::memchr(data + i, '\n', len - i));
        size_t e = nl ? size_t(nl - data) : len;
        lines.emplace_back(data + i, e - i);
        i = e + 1;
    }
    return lines;
}

Status read_file(const std::string & path, std::string * out) {
    FILE * f = nullptr;
    SDGO_TRY(formats::open_regular_file(path, &f));
    out->clear();
    char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
        out->append(buf, n);
        if (out->size() > (size_t(64) << 20)) {
            std::fclose(f);
            return error(SDGO_ERR_FORMAT, "%s is larger than 64 MiB", path.c_str());
        }
    }
    bool bad = std::ferror(f) != 0;
    std::fclose(f);
    if (bad) return error(SDGO_ERR_IO, "error reading %s", path.c_str());
    return Status();
}


}  // namespace

uint32_t clip_byte_to_unicode(uint8_t b) { return byte_map().cp[b]; }

const ClipTokenizer * ClipTokenizer::builtin(Status * st) {
    struct Holder {
        std::unique_ptr<ClipTokenizer> tok;
        Status status;
        Holder() {
            tok.reset(new ClipTokenizer());
            status = tok->load_merges_gz(clip_merges_gz_data(), clip_merges_gz_size());
            if (!status.ok()) {
                status.wrap("built-in CLIP merges");
                tok.reset();
            }
        }
    };
    static const Holder h;
    if (st) *st = h.status;
    return h.tok.get();
}

// Loading is all or nothing: after a failure the tokenizer is empty and
// encode() returns no ids.
Status ClipTokenizer::loaded(Status st) {
    loaded_ = st.ok();
    if (!st.ok()) {
        vocab_.clear();
        id_to_token_.clear();
        merges_.clear();
        std::lock_guard<std::mutex> lk(cache_mu_);
        cache_.clear();
    }
    return st;
}

Status ClipTokenizer::load_merges_text(const char * data, size_t len, int max_merges) {
    if (!data && len) return loaded(error(SDGO_ERR_INVALID_ARGUMENT, "CLIP merges: null buffer"));
    return loaded(load_merges_text_impl(data, len, max_merges));
}

Status ClipTokenizer::load_vocab_merges(const std::string & vocab_json, const std::string & merges_txt) {
    return loaded(load_vocab_merges_impl(vocab_json, merges_txt));
}

Status ClipTokenizer::load_merges_gz(const uint8_t * data, size_t len) {
    std::vector<uint8_t> text;
    Status st = util::gunzip(data, len, &text, size_t(64) << 20);
    if (!st.ok()) return loaded(st);
    return load_merges_text(reinterpret_cast<const char *>(text.data()), text.size());
}

Status ClipTokenizer::load_merges_text_impl(const char * data, size_t len, int max_merges) {
    std::vector<std::string> lines = lines_of(data, len);
    if (lines.size() < 2) return error(SDGO_ERR_FORMAT, "CLIP merges: no merges after the header line");
    const ByteMap & bm = byte_map();
    vocab_.clear();
    id_to_token_.clear();
    merges_.clear();
    for (int k = 0; k < 256; ++k) id_to_token_.push_back(byte_char(bm.order[k]));
    for (int k = 0; k < 256; ++k) id_to_token_.push_back(byte_char(bm.order[k]) + "</w>");
    std::vector<std::pair<std::string, std::string>> pairs;
    std::vector<std::string> parts;
    for (size_t li = 1; li < lines.size() && int(pairs.size()) < max_merges; ++li) {
        split_ws(lines[li], &parts);
        if (parts.empty() && li + 1 == lines.size()) break;  // final newline
        if (parts.size() != 2)
            return error(SDGO_ERR_FORMAT, "CLIP merges: line %zu does not hold two symbols", li + 1);
        pairs.emplace_back(parts[0], parts[1]);
        id_to_token_.push_back(parts[0] + parts[1]);
    }
    id_to_token_.push_back(kStartText);
    id_to_token_.push_back(kEndText);
    for (size_t id = 0; id < id_to_token_.size(); ++id) vocab_[id_to_token_[id]] = int32_t(id);
    for (size_t r = 0; r < pairs.size(); ++r) {
        auto a = vocab_.find(pairs[r].first), b = vocab_.find(pairs[r].second);
        if (a == vocab_.end() || b == vocab_.end())
            return error(SDGO_ERR_FORMAT, "CLIP merges: merge %zu uses a symbol that is not in the vocabulary", r);
        int32_t merged = vocab_.at(pairs[r].first + pairs[r].second);
        uint64_t key = uint64_t(uint32_t(a->second)) << 32 | uint32_t(b->second);
        merges_[key] = uint64_t(r) << 32 | uint32_t(merged);  // a repeated pair keeps its last rank, like a Python dict
    }
    return finish_load();
}

Status ClipTokenizer::load_vocab_merges_files(const std::string & vocab_json_path, const std::string & merges_txt_path) {
    std::string vj, mt;
    Status rd = read_file(vocab_json_path, &vj);
    if (rd.ok()) rd = read_file(merges_txt_path, &mt);
    if (!rd.ok()) return loaded(rd);
    Status st = load_vocab_merges(vj, mt);
    if (!st.ok()) st.wrap(vocab_json_path);
    return st;
}

namespace {

bool file_exists(const std::string & path) {
    FILE * f = nullptr;
    if (!formats::open_regular_file(path, &f).ok()) return false;
    std::fclose(f);
    return true;
}

// The "pad_token" of a tokenizer JSON text: a string or {"content": ...}.
// Empty when the text (an absent file) or the key is absent.
Status pad_token_of(const std::string & text, std::string * out) {
    out->clear();
    if (text.empty()) return Status();
    formats::Json j;
    SDGO_TRY(formats::json_parse(text.data(), text.size(), &j));
    const formats::Json * p = j.kind == formats::Json::object ? j.get("pad_token") : nullptr;
    if (!p) return Status();
    if (p->kind == formats::Json::string) *out = p->str;
    else if (p->kind == formats::Json::object) *out = p->str_or("content", "");
    return Status();
}

}  // namespace

Status ClipTokenizer::load_folder(const std::string & dir, int32_t * pad_id) {
    TokenizerTexts t;
    SDGO_TRY(read_folder(dir, &t));
    Status st = load_texts(t, pad_id);
    if (!st.ok()) st.wrap(dir);
    return st;
}

Status ClipTokenizer::read_folder(const std::string & dir, TokenizerTexts * out) {
    *out = TokenizerTexts();
    SDGO_TRY(read_file(dir + "/vocab.json", &out->vocab_json));
    SDGO_TRY(read_file(dir + "/merges.txt", &out->merges_txt));
    if (file_exists(dir + "/special_tokens_map.json"))
        SDGO_TRY(read_file(dir + "/special_tokens_map.json", &out->special_tokens_map_json));
    if (file_exists(dir + "/tokenizer_config.json"))
        SDGO_TRY(read_file(dir + "/tokenizer_config.json", &out->tokenizer_config_json));
    return Status();
}

Status ClipTokenizer::load_texts(const TokenizerTexts & t, int32_t * pad_id) {
    SDGO_TRY(load_vocab_merges(t.vocab_json, t.merges_txt));
    pad_token_.clear();
    pad_token_id_ = -1;
    if (!pad_id) return Status();
    *pad_id = eos_;
    const struct { const char * name; const std::string * text; } files[] = {
        {"special_tokens_map.json", &t.special_tokens_map_json}, {"tokenizer_config.json", &t.tokenizer_config_json}};
    for (const auto & f : files) {
        std::string pad;
        Status st = pad_token_of(*f.text, &pad);
        if (!st.ok()) return st.wrap(f.name);
        if (pad.empty()) continue;
        int32_t id = token_id(pad);
        if (id < 0) return error(SDGO_ERR_FORMAT, "%s: pad token is not in the vocabulary", f.name);
        *pad_id = id;
        if (id != bos_ && id != eos_) {
            pad_token_ = pad;
            pad_token_id_ = id;
        }
        break;
    }
    return Status();
}

Status ClipTokenizer::load_vocab_merges_impl(const std::string & vocab_json, const std::string & merges_txt) {
    // vocab.json is one flat object mapping token strings to ids.
    formats::Json doc;
    SDGO_TRY(formats::json_parse(vocab_json.data(), vocab_json.size(), &doc).wrap("vocab.json"));
    if (doc.kind != formats::Json::object) return error(SDGO_ERR_FORMAT, "vocab.json: expected an object");
    std::vector<std::pair<std::string, int64_t>> entries;
    entries.reserve(doc.members.size());
    for (auto & m : doc.members) {
        int64_t id;
        if (!m.second.as_int64(&id) || id < 0)
            return error(SDGO_ERR_FORMAT, "vocab.json: token \"%.40s\" has no non-negative integer id", m.first.c_str());
        entries.emplace_back(std::move(m.first), id);
    }
    vocab_.clear();
    id_to_token_.clear();
    merges_.clear();
    int64_t max_id = -1;
    for (const auto & e : entries) max_id = std::max(max_id, e.second);
    if (max_id < 0) return error(SDGO_ERR_FORMAT, "vocab.json: empty vocabulary");
    // Ids index a table: an absurd id in a hostile file must not allocate gigabytes.
    if (max_id >= int64_t(entries.size()) + 1024)
        return error(SDGO_ERR_FORMAT, "vocab.json: id %lld is far beyond the %zu tokens", (long long)max_id, entries.size());
    id_to_token_.assign(size_t(max_id + 1), std::string());
    vocab_.reserve(entries.size());
    for (auto & e : entries) {
        if (!vocab_.emplace(e.first, int32_t(e.second)).second)
            return error(SDGO_ERR_FORMAT, "vocab.json: duplicate token \"%.40s\"", e.first.c_str());
        id_to_token_[size_t(e.second)] = std::move(e.first);
    }
    std::vector<std::string> lines = lines_of(merges_txt.data(), merges_txt.size());
    size_t first = (!lines.empty() && !lines[0].empty() && lines[0][0] == '#') ? 1 : 0;
    std::vector<std::string> parts;
    int rank = 0;
    for (size_t li = first; li < lines.size() && rank < kClipMergeCount; ++li) {
        split_ws(lines[li], &parts);
        if (parts.empty()) continue;
        if (parts.size() != 2) return error(SDGO_ERR_FORMAT, "merges.txt: line %zu does not hold two symbols", li + 1);
        auto a = vocab_.find(parts[0]), b = vocab_.find(parts[1]), ab = vocab_.find(parts[0] + parts[1]);
        if (a == vocab_.end() || b == vocab_.end() || ab == vocab_.end())
            return error(SDGO_ERR_FORMAT, "merges.txt: line %zu uses a token missing from vocab.json", li + 1);
        uint64_t key = uint64_t(uint32_t(a->second)) << 32 | uint32_t(b->second);
        merges_[key] = uint64_t(rank) << 32 | uint32_t(ab->second);
        ++rank;
    }
    return finish_load();
}

Status ClipTokenizer::finish_load() {
    for (int b = 0; b < 256; ++b) {
        std::string c = byte_char(uint8_t(b));
        auto a = vocab_.find(c), e = vocab_.find(c + "</w>");
        if (a == vocab_.end() || e == vocab_.end())
            return error(SDGO_ERR_FORMAT, "CLIP vocabulary lacks the character for byte %d", b);
        byte_id_[b] = a->second;
        byte_id_eow_[b] = e->second;
    }
    auto s = vocab_.find(kStartText), e = vocab_.find(kEndText);
    if (s == vocab_.end() || e == vocab_.end())
        return error(SDGO_ERR_FORMAT, "CLIP vocabulary lacks <|startoftext|> or <|endoftext|>");
    bos_ = s->second;
    eos_ = e->second;
    auto c = vocab_.find(",</w>");
    comma_ = c == vocab_.end() ? -1 : c->second;
    std::lock_guard<std::mutex> lk(cache_mu_);
    cache_.clear();
    return Status();
}

const std::string & ClipTokenizer::token(int32_t id) const {
    static const std::string empty;
    if (id < 0 || size_t(id) >= id_to_token_.size()) return empty;
    return id_to_token_[size_t(id)];
}

int32_t ClipTokenizer::token_id(const std::string & tok) const {
    auto it = vocab_.find(tok);
    return it == vocab_.end() ? -1 : it->second;
}

// BPE as in CLIP's reference: repeatedly take the adjacent pair with the
// lowest merge rank and merge all its non-overlapping occurrences left to
// right. Pair ranks are kept in an array and only recomputed next to merges,
// so very long words stay affordable.
void ClipTokenizer::bpe(const std::string & piece, std::vector<int32_t> * out) const {
    size_t n = piece.size();
    if (n == 0) return;
    if (n <= kCacheMaxPiece) {
        std::lock_guard<std::mutex> lk(cache_mu_);
        auto it = cache_.find(piece);
        if (it != cache_.end()) {
            out->insert(out->end(), it->second.begin(), it->second.end());
            return;
        }
    }
    std::vector<int32_t> sym(n);
    for (size_t i = 0; i + 1 < n; ++i) sym[i] = byte_id_[uint8_t(piece[i])];
    sym[n - 1] = byte_id_eow_[uint8_t(piece[n - 1])];
    auto rank_of = [&](int32_t a, int32_t b) -> uint64_t {
        auto it = merges_.find(uint64_t(uint32_t(a)) << 32 | uint32_t(b));
        return it == merges_.end() ? kNoRank : it->second;
    };
    std::vector<uint64_t> rank(n > 1 ? n - 1 : 0);
    for (size_t i = 0; i + 1 < sym.size(); ++i) rank[i] = rank_of(sym[i], sym[i + 1]);
    std::vector<int32_t> nsym;
    std::vector<uint64_t> nrank;
    std::vector<size_t> oldpos;
    std::vector<uint8_t> merged;
    while (sym.size() > 1) {
        uint64_t best = kNoRank;
        for (uint64_t r : rank) if (r < best) best = r;
        if (best == kNoRank) break;  // (rank << 32 | id): min rank first
        size_t at = 0;
        while (rank[at] != best) ++at;
        int32_t a = sym[at], b = sym[at + 1], ab = int32_t(uint32_t(best));
        nsym.clear();
        oldpos.clear();
        merged.clear();
        for (size_t i = 0; i < sym.size();) {
            if (i + 1 < sym.size() && sym[i] == a && sym[i + 1] == b) {
                nsym.push_back(ab);
                oldpos.push_back(i);
                merged.push_back(1);
                i += 2;
            } else {
                nsym.push_back(sym[i]);
                oldpos.push_back(i);
                merged.push_back(0);
                i += 1;
            }
        }
        nrank.assign(nsym.size() > 1 ? nsym.size() - 1 : 0, kNoRank);
        for (size_t k = 0; k + 1 < nsym.size(); ++k)
            nrank[k] = (merged[k] || merged[k + 1]) ? rank_of(nsym[k], nsym[k + 1]) : rank[oldpos[k]];
        sym.swap(nsym);
        rank.swap(nrank);
    }
    out->insert(out->end(), sym.begin(), sym.end());
    if (n <= kCacheMaxPiece) {
        std::lock_guard<std::mutex> lk(cache_mu_);
        if (cache_.size() >= kCacheMaxEntries) cache_.clear();
        cache_.emplace(piece, std::move(sym));
    }
}

void ClipTokenizer::encode_segment(const std::string & seg, std::vector<int32_t> * out) const {
    std::u32string u = utf8_decode(seg);
    std::u32string t = norm_ == Normalization::hf_basic ? normalize_basic(u) : normalize_fast(u);
    std::vector<Piece> pieces;
    split_pattern(t, norm_ == Normalization::hf_basic, &pieces);
    for (const Piece & p : pieces) {
        if (p.special && norm_ == Normalization::hf_basic) {
            // The Python tokenizer's BPE cache maps these strings to themselves.
            out->push_back(p.special == 1 ? bos_ : eos_);
            continue;
        }
        if (p.special) {
            // The tokenizers library's ByteLevel step re-splits the piece with
            // the GPT-2 pattern: "<|", the word, "|>".
            bpe("<|", out);
            bpe(utf8_range(t, p.begin + 2, p.end - 2), out);
            bpe("|>", out);
            continue;
        }
        bpe(utf8_range(t, p.begin, p.end), out);
    }
}

std::vector<int32_t> ClipTokenizer::encode(const std::string & text) const {
    std::vector<int32_t> out;
    if (!loaded_) return out;
    out.reserve(text.size() / 3 + 4);
    // Literal special tokens are cut out of the raw text first (exact case).
    size_t i = 0, seg = 0, n = text.size();
    while (i < n) {
        if (text[i] == '<') {
            bool st = text.compare(i, 15, kStartText) == 0;
            bool et = !st && text.compare(i, 13, kEndText) == 0;
            if (st || et) {
                if (i > seg) encode_segment(text.substr(seg, i - seg), &out);
                out.push_back(st ? bos_ : eos_);
                i += st ? 15 : 13;
                seg = i;
                continue;
            }
        }
        ++i;
    }
    if (seg < n) encode_segment(text.substr(seg), &out);
    return out;
}

std::vector<int32_t> ClipTokenizer::encode_padded(const std::string & text, int32_t pad_id, int max_length) const {
    std::vector<int32_t> out;
    if (!loaded_) return out;
    if (max_length < 2) max_length = 2;
    std::vector<int32_t> ids;
    if (pad_token_.empty()) {
        ids = encode(text);
    } else {  // the pad token's occurrences are its id
        size_t at = 0;
        for (;;) {
            const size_t hit = text.find(pad_token_, at);
            const std::vector<int32_t> part = encode(text.substr(at, hit == std::string::npos ? std::string::npos : hit - at));
            ids.insert(ids.end(), part.begin(), part.end());
            if (hit == std::string::npos) break;
            ids.push_back(pad_token_id_);
            at = hit + pad_token_.size();
        }
    }
    out.reserve(size_t(max_length));
    out.push_back(bos_);
    size_t keep = std::min(ids.size(), size_t(max_length - 2));
    out.insert(out.end(), ids.begin(), ids.begin() + long(keep));
    out.push_back(eos_);
    while (out.size() < size_t(max_length)) out.push_back(pad_id);
    return out;
}

std::vector<std::string> ClipTokenizer::pretokenize(const std::string & text) const {
    std::u32string u = utf8_decode(text);
    std::u32string t = norm_ == Normalization::hf_basic ? normalize_basic(u) : normalize_fast(u);
    std::vector<Piece> pieces;
    split_pattern(t, norm_ == Normalization::hf_basic, &pieces);
    std::vector<std::string> out;
    for (const Piece & p : pieces) out.push_back(utf8_range(t, p.begin, p.end));
    return out;
}

}  // namespace sdgo::text
