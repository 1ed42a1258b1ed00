#include "formats/mapped_file.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>

namespace sdgo::formats {

MappedFile::~MappedFile() {
    if (mapped_ && data_ && size_ > 0) munmap(const_cast<uint8_t *>(data_), size_);
}

namespace {

// Opens path read-only without blocking (O_NONBLOCK: opening a FIFO for
// reading would otherwise wait for a writer, deaf to signals) and checks that
// it is a regular file; for those O_NONBLOCK changes nothing.
Status open_regular_fd(const std::string & path, int * fd_out, off_t * size) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return error(SDGO_ERR_IO, "%s: cannot open: %s", path.c_str(), strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        return error(SDGO_ERR_IO, "%s: cannot stat: %s", path.c_str(), strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        return error(SDGO_ERR_IO, "%s: not a regular file", path.c_str());
    }
    *fd_out = fd;
    *size = st.st_size;
    return Status();
}

}  // namespace

Status open_regular_file(const std::string & path, FILE ** out) {
    *out = nullptr;
    int fd = -1;
    off_t size = 0;
    SDGO_TRY(open_regular_fd(path, &fd, &size));
    FILE * f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        ::close(fd);
        return error(SDGO_ERR_IO, "%s: cannot open: %s", path.c_str(), strerror(e));
    }
    *out = f;
    return Status();
}

Status MappedFile::open(const std::string & path, std::shared_ptr<MappedFile> * out) {
    int fd = -1;
    off_t fsize = 0;
    SDGO_TRY(open_regular_fd(path, &fd, &fsize));
    std::shared_ptr<MappedFile> mf(new MappedFile());
    mf->path_ = path;
    mf->size_ = (size_t)fsize;
    if (mf->size_ > 0) {
        void * p = mmap(nullptr, mf->size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            ::close(fd);
            return error(SDGO_ERR_IO, "%s: cannot map: %s", path.c_str(), strerror(e));
        }
        mf->data_ = static_cast<const uint8_t *>(p);
        mf->mapped_ = true;
    }
    ::close(fd);
    *out = std::move(mf);
    return Status();
}

std::shared_ptr<MappedFile> MappedFile::from_bytes(const void * data, size_t size, const std::string & name) {
    std::shared_ptr<MappedFile> mf(new MappedFile());
    mf->path_ = name;
    mf->size_ = size;
    mf->owned_.reset(new uint8_t[size > 0 ? size : 1]);
    if (size > 0) std::memcpy(mf->owned_.get(), data, size);
    mf->data_ = mf->owned_.get();
    return mf;
}

void MappedFile::release(const uint8_t * p, size_t len) const {
    if (!mapped_ || !p || p < data_ || len == 0 || size_t(p - data_) > size_ || len > size_ - size_t(p - data_))
        return;
    const long page_l = sysconf(_SC_PAGESIZE);
    const uintptr_t page = page_l > 0 ? uintptr_t(page_l) : 4096;
    const uintptr_t a = reinterpret_cast<uintptr_t>(p), b = a + len;
    const uintptr_t lo = (a + page - 1) / page * page, hi = b / page * page;  // whole pages inside
    if (hi <= lo) return;
#if defined(__linux__)
    (void)madvise(reinterpret_cast<void *>(lo), hi - lo, MADV_DONTNEED);
#else
    (void)posix_madvise(reinterpret_cast<void *>(lo), hi - lo, POSIX_MADV_DONTNEED);
#endif
}

Status MappedFile::slice(uint64_t off, uint64_t len, const char * what, const uint8_t ** out) const {
    if (!in_bounds(off, len))
        return error(SDGO_ERR_FORMAT, "%s: %s [%llu, +%llu) lies outside the file (%zu bytes)", path_.c_str(), what,
                     (unsigned long long)off, (unsigned long long)len, size_);
    *out = data_ + off;
    return Status();
}

}  // namespace sdgo::formats
