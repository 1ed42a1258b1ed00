// unicode.h — the few Unicode facilities the CLIP tokenizer needs: UTF-8
// decoding/encoding, general-category classes, lowercase and NFC.
//
// The data comes from csrc/text/unicode_tables.inc, generated from Python's
// unicodedata by csrc/text/gen_unicode_tables.py (Unicode version in
// unicode_version()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace sdgo::text {

enum class UClass : uint8_t {
    other = 0,     // marks, punctuation, symbols, Zl, Zp
    letter = 1,    // L*
    number = 2,    // N*
    space_sep = 3, // Zs
    control = 4,   // Cc, Cf, Cs, Co, Cn
};

UClass uclass(uint32_t cp);
inline bool is_letter(uint32_t cp) { return cp < 0x80 ? ((cp | 32) - 'a' < 26u) : uclass(cp) == UClass::letter; }
inline bool is_number(uint32_t cp) { return cp < 0x80 ? (cp - '0' < 10u) : uclass(cp) == UClass::number; }
// Unicode White_Space (what \s matches in the tokenizers' patterns).
bool is_white_space(uint32_t cp);
// Python str.isspace(): White_Space plus U+001C..U+001F.
bool is_py_space(uint32_t cp);

// Decodes UTF-8. Each maximal invalid subsequence (bad lead byte, truncated
// or overlong sequence, surrogate, > U+10FFFF) becomes one U+FFFD, the way
// Python's bytes.decode("utf-8", "replace") does it.
std::u32string utf8_decode(const std::string & s);
void utf8_append(uint32_t cp, std::string * out);
std::string utf8_encode(const std::u32string & s);

// Appends the lowercase of cp (Python str.lower() for one code point, or
// Rust's char::to_lowercase; no context-dependent final-sigma rule).
void append_lower(uint32_t cp, std::u32string * out);

// Appends Python's str.lower() of the word w[0..n): append_lower per code
// point plus the Final_Sigma rule (U+03A3 becomes U+03C2 when a cased
// letter precedes it and none follows, skipping case-ignorable characters).
void append_lower_word(const char32_t * w, size_t n, std::u32string * out);

// Unicode Normalization Form C.
std::u32string nfc(const std::u32string & s);

const char * unicode_version();

}  // namespace sdgo::text
