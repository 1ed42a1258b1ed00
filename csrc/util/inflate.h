// inflate.h — a DEFLATE decoder (RFC 1951) with gzip (RFC 1952) and zlib
// (RFC 1950) wrappers, written for sd-go.
//
// Used to unpack the embedded CLIP BPE merges (a .gz) and, later, the
// deflated members of zip-based checkpoints. Input may be hostile: every
// malformed, truncated or over-long stream gives SDGO_ERR_FORMAT (or
// SDGO_ERR_INVALID_ARGUMENT when the output would exceed max_out), never a
// crash. Distances are checked against the output produced by the current
// stream, code tables are checked for over-subscription, and the output is
// capped by max_out so a "zip bomb" is refused rather than exhausting memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/status.h"

namespace sdgo::util {

// Default output cap: 1 GiB.
constexpr size_t kInflateDefaultMaxOut = size_t(1) << 30;

// Decodes one raw DEFLATE stream starting at in[0], appending the bytes to
// *out. On success *consumed (if not NULL) is the number of input bytes the
// stream occupied (rounded up to a whole byte).
Status inflate_raw(const uint8_t * in, size_t in_len, std::vector<uint8_t> * out,
                   size_t * consumed = nullptr, size_t max_out = kInflateDefaultMaxOut);

// Decodes a gzip file: one or more members, each checked against its CRC-32
// and length trailer. Bytes after the last member must not be present.
Status gunzip(const uint8_t * in, size_t in_len, std::vector<uint8_t> * out,
              size_t max_out = kInflateDefaultMaxOut);

// Decodes a zlib stream (no preset dictionary), checking its Adler-32.
Status zlib_decompress(const uint8_t * in, size_t in_len, std::vector<uint8_t> * out,
                       size_t max_out = kInflateDefaultMaxOut);

// CRC-32 (IEEE 802.3, as in gzip and zip); pass the previous value to continue.
uint32_t crc32(const uint8_t * data, size_t len, uint32_t crc = 0);
// Adler-32 (zlib); start with 1.
uint32_t adler32(const uint8_t * data, size_t len, uint32_t adler = 1);

}  // namespace sdgo::util
