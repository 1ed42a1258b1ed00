#include "formats/zip.h"

namespace sdgo::formats {

namespace {
constexpr uint32_t kEOCD = 0x06054b50, kEOCD64 = 0x06064b50, kLoc64 = 0x07064b50, kCentral = 0x02014b50,
                   kLocal = 0x04034b50;

template <typename T>
T rd(const uint8_t * p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}
}  // namespace

bool zip_looks_like(const MappedFile & file) {
    return file.size() >= 4 && rd<uint32_t>(file.data()) == kLocal;
}

Status zip_list(const MappedFile & file, std::vector<ZipEntry> * out) {
    const std::string & path = file.path();
    const uint8_t * d = file.data();
    const size_t size = file.size();
    if (size < 22) return error(SDGO_ERR_FORMAT, "%s: zip: file too small for an end-of-central-directory record", path.c_str());
    // Scan backwards for the EOCD signature (the comment is at most 65535 bytes).
    size_t eocd = SIZE_MAX;
    size_t lo = size >= 22 + 65535 ? size - 22 - 65535 : 0;
    for (size_t i = size - 22 + 1; i-- > lo;) {
        if (rd<uint32_t>(d + i) == kEOCD && i + 22 + rd<uint16_t>(d + i + 20) <= size) {
            eocd = i;
            break;
        }
    }
    if (eocd == SIZE_MAX) return error(SDGO_ERR_FORMAT, "%s: zip: end-of-central-directory record not found", path.c_str());
    uint64_t n_entries = rd<uint16_t>(d + eocd + 10);
    uint64_t cd_size = rd<uint32_t>(d + eocd + 12);
    uint64_t cd_off = rd<uint32_t>(d + eocd + 16);
    if (rd<uint16_t>(d + eocd + 4) != 0 && rd<uint16_t>(d + eocd + 4) != 0xFFFF)
        return error(SDGO_ERR_UNSUPPORTED, "%s: zip: multi-disk archives are not supported", path.c_str());
    if (n_entries == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_off == 0xFFFFFFFFu) {
        if (eocd < 20 || rd<uint32_t>(d + eocd - 20) != kLoc64)
            return error(SDGO_ERR_FORMAT, "%s: zip: ZIP64 locator missing", path.c_str());
        uint64_t off64 = rd<uint64_t>(d + eocd - 20 + 8);
        if (!file.in_bounds(off64, 56) || rd<uint32_t>(d + off64) != kEOCD64)
            return error(SDGO_ERR_FORMAT, "%s: zip: ZIP64 end-of-central-directory record not found", path.c_str());
        n_entries = rd<uint64_t>(d + off64 + 32);
        cd_size = rd<uint64_t>(d + off64 + 40);
        cd_off = rd<uint64_t>(d + off64 + 48);
    }
    if (!file.in_bounds(cd_off, cd_size))
        return error(SDGO_ERR_FORMAT, "%s: zip: central directory [%llu, +%llu) lies outside the file", path.c_str(),
                     (unsigned long long)cd_off, (unsigned long long)cd_size);
    if (n_entries > cd_size / 46)
        return error(SDGO_ERR_FORMAT, "%s: zip: %llu entries cannot fit in a %llu-byte central directory", path.c_str(),
                     (unsigned long long)n_entries, (unsigned long long)cd_size);
    Reader r(d + cd_off, (size_t)cd_size);
    std::vector<ZipEntry> entries;
    entries.reserve((size_t)n_entries);
    for (uint64_t k = 0; k < n_entries; k++) {
        const uint8_t * h = r.take(46);
        if (!h || rd<uint32_t>(h) != kCentral)
            return error(SDGO_ERR_FORMAT, "%s: zip: broken central directory (entry %llu)", path.c_str(), (unsigned long long)k);
        ZipEntry e;
        e.flags = rd<uint16_t>(h + 8);
        e.method = rd<uint16_t>(h + 10);
        e.comp_size = rd<uint32_t>(h + 20);
        e.size = rd<uint32_t>(h + 24);
        uint16_t nlen = rd<uint16_t>(h + 28), xlen = rd<uint16_t>(h + 30), clen = rd<uint16_t>(h + 32);
        e.local_offset = rd<uint32_t>(h + 42);
        const uint8_t * nm = r.take(nlen);
        const uint8_t * ex = nm ? r.take(xlen) : nullptr;
        if (!nm || !ex || !r.take(clen))
            return error(SDGO_ERR_FORMAT, "%s: zip: broken central directory (entry %llu name)", path.c_str(), (unsigned long long)k);
        e.name.assign(reinterpret_cast<const char *>(nm), nlen);
        // ZIP64 extra field: values present only for fields saturated in the header.
        for (size_t p = 0; p + 4 <= xlen;) {
            uint16_t id = rd<uint16_t>(ex + p), len = rd<uint16_t>(ex + p + 2);
            if (p + 4 + len > xlen) break;
            if (id == 0x0001) {
                size_t q = p + 4, end = p + 4 + len;
                auto take64 = [&](uint64_t * v) -> bool {
                    if (q + 8 > end) return false;
                    *v = rd<uint64_t>(ex + q);
                    q += 8;
                    return true;
                };
                if (e.size == 0xFFFFFFFFu && !take64(&e.size)) return error(SDGO_ERR_FORMAT, "%s: zip: bad ZIP64 extra", path.c_str());
                if (e.comp_size == 0xFFFFFFFFu && !take64(&e.comp_size)) return error(SDGO_ERR_FORMAT, "%s: zip: bad ZIP64 extra", path.c_str());
                if (e.local_offset == 0xFFFFFFFFu && !take64(&e.local_offset)) return error(SDGO_ERR_FORMAT, "%s: zip: bad ZIP64 extra", path.c_str());
            }
            p += 4 + (size_t)len;
        }
        if (e.flags & 1) return error(SDGO_ERR_UNSUPPORTED, "%s: zip: entry %s is encrypted", path.c_str(), e.name.c_str());
        if (!file.in_bounds(e.local_offset, 30) || rd<uint32_t>(d + e.local_offset) != kLocal)
            return error(SDGO_ERR_FORMAT, "%s: zip: entry %s: local header missing at offset %llu", path.c_str(), e.name.c_str(),
                         (unsigned long long)e.local_offset);
        uint64_t lh = e.local_offset;
        e.data_offset = lh + 30 + rd<uint16_t>(d + lh + 26) + rd<uint16_t>(d + lh + 28);
        if (!file.in_bounds(e.data_offset, e.comp_size))
            return error(SDGO_ERR_FORMAT, "%s: zip: entry %s data (%llu bytes) extends past the end of the file", path.c_str(),
                         e.name.c_str(), (unsigned long long)e.comp_size);
        if (e.method == 0 && e.size != e.comp_size)
            return error(SDGO_ERR_FORMAT, "%s: zip: stored entry %s has different sizes", path.c_str(), e.name.c_str());
        entries.push_back(std::move(e));
    }
    *out = std::move(entries);
    return Status();
}

}  // namespace sdgo::formats
