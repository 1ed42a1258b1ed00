// tokenizer.h — the CLIP byte-level BPE tokenizer (SD 1.x / 2.x / SDXL).
//
// Vocabulary: 49408 ids. Ids 0-255 are the 256 byte characters of the
// byte-to-unicode map in its table order, 256-511 the same with "</w>",
// 512-49405 the concatenations of the first 48 894 merges in rank order,
// 49406 <|startoftext|> and 49407 <|endoftext|>. The merges come either from
// the bpe_simple_vocab_16e6.txt.gz built into the library (third_party/clip)
// or from a diffusers folder's tokenizer/vocab.json + merges.txt.
//
// Text handling follows Hugging Face transformers' CLIPTokenizer, in one of
// two flavours (see Normalization). Both first split the raw text on the
// literal special tokens "<|startoftext|>" / "<|endoftext|>" (exact case),
// then normalise each remaining piece, split it with the CLIP pattern
//   <|startoftext|> | <|endoftext|> | 's | 't | 're | 've | 'm | 'll | 'd |
//   \p{L}+ | \p{N} | [^\s\p{L}\p{N}]+
// (whitespace dropped) and run BPE on the UTF-8 bytes of each piece.
//
// Input bytes that are not valid UTF-8 are decoded the way Python's
// bytes.decode("utf-8", "replace") does it: each maximal invalid subsequence
// becomes U+FFFD (which hf_basic then deletes, like any U+FFFD).
//
// Both flavours reproduce transformers' ids exactly on the 237 prompts of
// testdata/tokenizer/ref_ids.json (ASCII, punctuation, numbers, accents,
// combining marks, Greek sigma, CJK, Hangul, emoji, control characters,
// very long prompts, invalid UTF-8); with pad 0 they also reproduce
// open_clip (SD 2.x) on its ASCII subset. During development they also
// matched transformers 4.57.6 / 5.24.0 on 24 000 random strings drawn from
// all planes (0 differences).
//
// Known divergences (documented, not tested):
//  * the Unicode tables are Unicode 14.0 (Python 3.11); characters assigned
//    later count as unassigned (hf_basic drops them, as Python 3.11 does;
//    hf_fast treats them as symbols while the tokenizers library may know
//    them as letters);
//  * hf_fast: the tokenizers library's NFC data is older than Unicode 14,
//    so runs of several combining marks that include marks added after
//    about Unicode 9 (e.g. U+1DF9, U+20EA) can be ordered differently;
//    151 of 10 000 random mark-heavy strings differed, 0 without those marks;
//  * ftfy is never applied (transformers uses it when it is installed, and
//    open_clip always does, plus HTML unescaping): curly quotes, mojibake,
//    full-width letters or "&amp;" can give other ids than such setups;
//  * open_clip spells its special tokens <start_of_text>/<end_of_text>, so
//    it tokenizes a literal "<|endoftext|>" in a prompt as text; we map it
//    to the special id as transformers does.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/status.h"

namespace sdgo::text {

constexpr int32_t kClipBosId = 49406;
constexpr int32_t kClipEosId = 49407;
constexpr int32_t kClipVocabSize = 49408;
constexpr int32_t kClipCommaId = 267;  // ",</w>"
constexpr int kClipMaxLength = 77;     // BOS + 75 + EOS
constexpr int kClipMergeCount = 48894; // 49152 - 256 - 2

enum class Normalization {
    // transformers 4.x CLIPTokenizer (the Python "slow" one) when ftfy is not
    // installed, i.e. its BasicTokenizer fallback: drop NUL, U+FFFD and
    // control/format/unassigned characters (except \t \n \r), turn
    // whitespace into spaces, put spaces around CJK ideographs, NFC,
    // split on whitespace, lowercase each word with Python's str.lower()
    // (incl. the final-sigma rule); its case-insensitive pattern also drops
    // U+0345, which we reproduce. The default; it is what diffusers +
    // transformers 4.x used for SD 1.x/2.x, and what A1111 uses when ftfy
    // is absent.
    hf_basic,
    // transformers 5.x CLIPTokenizer (tokenizers library): NFC, every
    // whitespace run to one space, lowercase per code point. Differs from
    // hf_basic only for control/format characters (kept), CJK ideographs
    // (not split), Greek final sigma (always σ) and upper-case look-alikes
    // of the special tokens (split by the GPT-2 pattern, not mapped).
    hf_fast,
};

// The texts of a diffusers tokenizer folder.
struct TokenizerTexts {
    std::string vocab_json, merges_txt;                   // required
    std::string special_tokens_map_json, tokenizer_config_json;  // "" when absent
};

class ClipTokenizer {
public:
    ClipTokenizer() = default;
    ClipTokenizer(const ClipTokenizer &) = delete;
    ClipTokenizer & operator=(const ClipTokenizer &) = delete;

    // The tokenizer built from the merges embedded in the library; created
    // on first use (thread-safe) and shared. NULL with *st set on failure.
    static const ClipTokenizer * builtin(Status * st = nullptr);

    // From the text of a merges file (bpe_simple_vocab_16e6.txt or HF
    // merges.txt): the first line is a header and the next max_merges lines
    // are merges; the vocabulary is derived as described above.
    Status load_merges_text(const char * data, size_t len, int max_merges = kClipMergeCount);
    // From a gzip-compressed merges file in memory.
    Status load_merges_gz(const uint8_t * data, size_t len);
    // From a diffusers tokenizer/ or tokenizer_2/ folder: <dir>/vocab.json
    // and <dir>/merges.txt. *pad_id (if not NULL) receives the id of the
    // folder's pad token, read from special_tokens_map.json, else
    // tokenizer_config.json ("pad_token": "!" or {"content": "!"}); EOS when
    // neither names one (SD 1.x: EOS; SD 2.x and SDXL tokenizer_2: "!" = 0).
    Status load_folder(const std::string & dir, int32_t * pad_id = nullptr);
    // The files load_folder reads, as texts (absent optional files are "").
    static Status read_folder(const std::string & dir, TokenizerTexts * out);
    // load_folder on texts already in memory (e.g. embedded in a GGUF file).
    Status load_texts(const TokenizerTexts & t, int32_t * pad_id = nullptr);
    // From a diffusers/HF tokenizer folder's vocab.json and merges.txt.
    Status load_vocab_merges_files(const std::string & vocab_json_path, const std::string & merges_txt_path);
    // Same, with the file contents already in memory.
    Status load_vocab_merges(const std::string & vocab_json, const std::string & merges_txt);

    void set_normalization(Normalization n) { norm_ = n; }
    Normalization normalization() const { return norm_; }

    // Token ids of the text, without BOS/EOS, no length limit (none when
    // nothing is loaded).
    std::vector<int32_t> encode(const std::string & text) const;
    // HF/diffusers style fixed window: BOS + the first (max_length - 2)
    // tokens + EOS, then pad_id up to max_length. CLIP-L pads with EOS
    // (49407), OpenCLIP (SD 2.x, SDXL bigG) with 0. Empty when nothing is
    // loaded. As transformers' tokenizer, it treats the pad token a folder
    // names (load_texts; e.g. "!") as a special token: each occurrence in
    // the text is that id, cut out before the rest is split into words.
    std::vector<int32_t> encode_padded(const std::string & text, int32_t pad_id,
                                       int max_length = kClipMaxLength) const;

    int32_t bos_id() const { return bos_; }
    int32_t eos_id() const { return eos_; }
    int32_t comma_id() const { return comma_; }
    size_t vocab_size() const { return id_to_token_.size(); }
    // The vocabulary string of an id ("" when out of range).
    const std::string & token(int32_t id) const;
    // Id of a vocabulary string, or -1.
    int32_t token_id(const std::string & tok) const;
    // Pre-tokenisation only (for tests): the normalised pieces, UTF-8.
    std::vector<std::string> pretokenize(const std::string & text) const;

    // True after a successful load.
    bool is_loaded() const { return loaded_; }

private:
    Status loaded(Status st);
    Status load_merges_text_impl(const char * data, size_t len, int max_merges);
    Status load_vocab_merges_impl(const std::string & vocab_json, const std::string & merges_txt);
    Status finish_load();
    void bpe(const std::string & piece, std::vector<int32_t> * out) const;
    void encode_segment(const std::string & seg, std::vector<int32_t> * out) const;

    Normalization norm_ = Normalization::hf_basic;
    bool loaded_ = false;
    std::unordered_map<std::string, int32_t> vocab_;
    std::vector<std::string> id_to_token_;
    // Merge table: (left id << 32 | right id) -> (rank << 32 | merged id).
    std::unordered_map<uint64_t, uint64_t> merges_;
    int32_t byte_id_[256] = {};      // id of the byte's character
    int32_t byte_id_eow_[256] = {};  // id of the byte's character + "</w>"
    int32_t bos_ = kClipBosId, eos_ = kClipEosId, comma_ = kClipCommaId;
    // The pad token a folder names when it is not BOS/EOS (e.g. "!"), and its id.
    std::string pad_token_;
    int32_t pad_token_id_ = -1;

    mutable std::mutex cache_mu_;
    mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

// The byte-to-unicode map: the code point that stands for byte b.
uint32_t clip_byte_to_unicode(uint8_t b);

}  // namespace sdgo::text
