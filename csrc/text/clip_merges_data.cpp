// clip_merges_data.cpp — embeds third_party/clip/bpe_simple_vocab_16e6.txt.gz
// with the assembler's .incbin. CMakeLists.txt passes the file's absolute
// path as SDGO_CLIP_MERGES_GZ_PATH and makes this object depend on it.
//
// The symbols are global for the linker but hidden (ELF .hidden, Mach-O
// .private_extern), so the shared library does not export them.
#include "text/clip_merges_data.h"

#ifndef SDGO_CLIP_MERGES_GZ_PATH
#error "SDGO_CLIP_MERGES_GZ_PATH must name third_party/clip/bpe_simple_vocab_16e6.txt.gz (set by CMakeLists.txt)"
#endif

#if defined(__APPLE__)
#define SDGO_ASM_SYM(name) "_" #name
#define SDGO_ASM_PUSH ".const_data\n"
#define SDGO_ASM_POP ".text\n"
#define SDGO_ASM_HIDE(name) ".private_extern " SDGO_ASM_SYM(name) "\n"
#elif defined(__ELF__)
#define SDGO_ASM_SYM(name) #name
#define SDGO_ASM_PUSH ".pushsection .rodata\n"
#define SDGO_ASM_POP ".popsection\n"
#define SDGO_ASM_HIDE(name) ".hidden " SDGO_ASM_SYM(name) "\n"
#else
#error "embedding the CLIP merges needs an ELF or Mach-O assembler"
#endif

__asm__(
    SDGO_ASM_PUSH
    ".globl " SDGO_ASM_SYM(sdgo_clip_merges_gz_begin) "\n"
    SDGO_ASM_HIDE(sdgo_clip_merges_gz_begin)
    ".globl " SDGO_ASM_SYM(sdgo_clip_merges_gz_end) "\n"
    SDGO_ASM_HIDE(sdgo_clip_merges_gz_end)
    ".balign 16\n"
    SDGO_ASM_SYM(sdgo_clip_merges_gz_begin) ":\n"
    ".incbin \"" SDGO_CLIP_MERGES_GZ_PATH "\"\n"
    SDGO_ASM_SYM(sdgo_clip_merges_gz_end) ":\n"
    ".byte 0\n"
    SDGO_ASM_POP);

extern "C" {
__attribute__((visibility("hidden"))) extern const uint8_t sdgo_clip_merges_gz_begin[];
__attribute__((visibility("hidden"))) extern const uint8_t sdgo_clip_merges_gz_end[];
}

namespace sdgo::text {

const uint8_t * clip_merges_gz_data() { return sdgo_clip_merges_gz_begin; }
size_t clip_merges_gz_size() { return size_t(sdgo_clip_merges_gz_end - sdgo_clip_merges_gz_begin); }

}  // namespace sdgo::text
