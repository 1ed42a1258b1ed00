// prompt_parse.h — A1111 prompt weighting ("emphasis") and 75-token chunking.
//
// parse_prompt_attention follows AUTOMATIC1111's prompt_parser semantics:
//   (text)       weight x 1.1           [text]   weight / 1.1
//   (text:1.3)   weight x 1.3           \( \) \[ \] \\   literal characters
//   nesting multiplies; brackets still open at the end apply their 1.1 or
//   1/1.1 to everything after them; a ")" or "]" with nothing open and a
//   ":1.3)" with no "(" open stay as text; a lone backslash is dropped;
//   "BREAK" (a whole word, upper case) inside plain text becomes a marker
//   fragment ("BREAK", -1); adjacent fragments with identical weights merge.
// Weights are computed in double precision in A1111's order of operations,
// so merging decisions match. Differences (documented): for a weight literal
// that is not a valid number (e.g. "(x:1.2.3)", where A1111 raises) the ':'
// is plain text and parsing continues after it; only ASCII digits and
// ASCII whitespace count inside ":<number>)".
//
// tokenize_weighted_prompt follows A1111's FrozenCLIPEmbedderWithCustomWords
// tokenize_line: each fragment is tokenised on its own (no BOS/EOS), tokens
// fill chunks of 75; when a chunk is full and the next token is not a comma,
// the tokens after the last comma move to the next chunk if that comma is
// within comma_padding_backtrack tokens of the end; a BREAK marker closes the
// chunk. Each chunk is padded with EOS to 75 and wrapped as BOS + 75 + EOS
// with multiplier 1.0 on BOS, EOS and padding. For encoders that pad with
// another id (OpenCLIP: 0), every position after the chunk's first EOS is
// set to pad_id. Textual-inversion embeddings are not supported.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "text/tokenizer.h"

namespace sdgo::text {

struct PromptFragment {
    std::string text;
    double weight;  // -1 marks a BREAK
};

std::vector<PromptFragment> parse_prompt_attention(const std::string & text);

struct ChunkOptions {
    int32_t pad_id = kClipEosId;      // CLIP-L: EOS; OpenCLIP: 0
    int comma_padding_backtrack = 20; // 0 disables
    bool parse_weights = true;        // false: the whole prompt, weight 1 (A1111 emphasis "None")
    int max_chunks = 0;               // > 0: refuse prompts needing more chunks
};

struct PromptChunks {
    int n_chunks = 0;
    std::vector<int32_t> ids;       // n_chunks * 77
    std::vector<float> multipliers; // n_chunks * 77
    int token_count = 0;            // A1111's count: prompt tokens incl. BREAK padding
};

Status tokenize_weighted_prompt(const ClipTokenizer & tok, const std::string & prompt, const ChunkOptions & opt,
                                PromptChunks * out);

// Applies per-token multipliers to encoder output z (batch x tokens x dim,
// row-major; tokens a multiple of 77) in place, A1111 "Original" emphasis:
// for each 77-token chunk c, over all batch rows together,
//   m0 = mean(z[:, c]);  z[:, c] *= mult;  m1 = mean(z[:, c]);  z[:, c] *= m0 / m1
// (the last step skipped when restore_mean is false, i.e. "No norm", or when
// m1 is 0 or not finite). mult is batch x tokens.
Status apply_emphasis(float * z, const float * mult, int64_t batch, int64_t tokens, int64_t dim,
                      bool restore_mean = true);

}  // namespace sdgo::text
