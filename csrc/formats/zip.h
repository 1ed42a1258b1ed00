// zip.h — a minimal read-only ZIP reader for PyTorch checkpoints.
//
// Reads the end-of-central-directory record (ZIP64 included), the central
// directory, and each entry's local header to find where its data starts.
// Sizes and offsets come from the central directory (torch-style local
// headers may carry zero sizes and a data descriptor). Stored (method 0)
// entries are mapped in place; other methods are reported as unsupported.
#pragma once

#include <string>
#include <vector>

#include "formats/mapped_file.h"

namespace sdgo::formats {

struct ZipEntry {
    std::string name;
    uint16_t method = 0;        // 0 = stored, 8 = deflate
    uint16_t flags = 0;
    uint64_t comp_size = 0;
    uint64_t size = 0;
    uint64_t local_offset = 0;  // local header offset
    uint64_t data_offset = 0;   // absolute offset of the entry data
};

// Lists entries; every entry's [data_offset, data_offset + comp_size) is
// checked to lie inside the file.
Status zip_list(const MappedFile & file, std::vector<ZipEntry> * out);

// True when the file starts with a local-file-header signature.
bool zip_looks_like(const MappedFile & file);

}  // namespace sdgo::formats
