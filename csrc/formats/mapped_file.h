// mapped_file.h — read-only memory-mapped files with bounds-checked access,
// and a little-endian cursor for parsing headers out of them.
//
// Every parser in csrc/formats reads through these two classes, so an
// offset or length taken from a hostile file can never reach memory outside
// the mapping: each access checks `off + len <= size` without overflow.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <cstdio>
#include <memory>
#include <string>

#include "base/status.h"

namespace sdgo::formats {

// Opens a regular file for reading as a stdio stream. The open itself never
// blocks (a FIFO, a device or a socket is refused before anything is read),
// and anything but a regular file gives SDGO_ERR_IO naming the path.
Status open_regular_file(const std::string & path, FILE ** out);

class MappedFile {
public:
    ~MappedFile();
    MappedFile(const MappedFile &) = delete;
    MappedFile & operator=(const MappedFile &) = delete;

    // Maps a regular file read-only. Directories, missing files and
    // unreadable files give SDGO_ERR_IO. An empty file maps to size 0.
    static Status open(const std::string & path, std::shared_ptr<MappedFile> * out);
    // Wraps a copy of an in-memory buffer (tests, fuzzing).
    static std::shared_ptr<MappedFile> from_bytes(const void * data, size_t size, const std::string & name = "<memory>");

    const uint8_t * data() const { return data_; }
    size_t size() const { return size_; }
    const std::string & path() const { return path_; }

    // True when [off, off+len) lies inside the file (overflow-safe).
    bool in_bounds(uint64_t off, uint64_t len) const { return off <= size_ && len <= size_ - off; }
    // Pointer to [off, off+len) or an SDGO_ERR_FORMAT error naming `what`.
    Status slice(uint64_t off, uint64_t len, const char * what, const uint8_t ** out) const;
    // Tells the system that [p, p+len) (inside this mapping) is not needed
    // for now: the whole pages in it leave the process's resident memory
    // (a later read faults them back in from the file). For bytes already
    // copied elsewhere, e.g. weights converted at load. A no-op for a copy
    // in memory or a range outside the mapping.
    void release(const uint8_t * p, size_t len) const;

private:
    MappedFile() = default;
    const uint8_t * data_ = nullptr;
    size_t size_ = 0;
    bool mapped_ = false;
    std::string path_;
    std::unique_ptr<uint8_t[]> owned_;
};

// A bounds-checked little-endian cursor over [begin, end) of a buffer.
class Reader {
public:
    Reader(const uint8_t * base, size_t size, size_t pos = 0) : base_(base), size_(size), pos_(pos) {}
    size_t pos() const { return pos_; }
    size_t remaining() const { return pos_ <= size_ ? size_ - pos_ : 0; }
    bool seek(size_t p) { if (p > size_) return false; pos_ = p; return true; }
    bool skip(uint64_t n) { if (n > remaining()) return false; pos_ += (size_t)n; return true; }
    const uint8_t * ptr() const { return base_ + pos_; }

    template <typename T>
    bool read(T * v) {
        if (sizeof(T) > remaining()) return false;
        std::memcpy(v, base_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return true;
    }
    bool read_bytes(void * dst, size_t n) {
        if (n > remaining()) return false;
        std::memcpy(dst, base_ + pos_, n);
        pos_ += n;
        return true;
    }
    // Returns a pointer to the next n bytes and advances, or NULL.
    const uint8_t * take(uint64_t n) {
        if (n > remaining()) return nullptr;
        const uint8_t * p = base_ + pos_;
        pos_ += (size_t)n;
        return p;
    }

private:
    const uint8_t * base_;
    size_t size_;
    size_t pos_;
};

}  // namespace sdgo::formats
