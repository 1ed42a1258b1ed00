// clip_merges_data.h — the CLIP BPE merges file built into the library:
// third_party/clip/bpe_simple_vocab_16e6.txt.gz, byte for byte (gzip).
#pragma once

#include <cstddef>
#include <cstdint>

namespace sdgo::text {

const uint8_t * clip_merges_gz_data();
size_t clip_merges_gz_size();

}  // namespace sdgo::text
