// libFuzzer harness: GGUF reader, then re-encode what was read with the
// writer and read it back (the writer must only produce files the reader
// accepts).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "formats/gguf.h"
#include "model/naming.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    using namespace sdgo::formats;
    auto f = MappedFile::from_bytes(data, size, "fuzz.gguf");
    GGUFFile g;
    if (!gguf_parse(*f, &g).ok()) return 0;
    GGUFWriter w;
    for (const auto & kv : g.kv) w.set(kv.key, kv.value);
    for (const auto & t : g.tensors)
        if (!w.add_tensor(t.name, t.type, t.ne, f->data() + g.data_offset + t.offset, t.nbytes).ok()) abort();
    std::vector<uint8_t> out;
    if (!w.encode(&out).ok()) abort();
    ModelFiles back;
    if (!read_gguf(MappedFile::from_bytes(out.data(), out.size(), "re.gguf"), &back).ok()) abort();
    if (back.tensors.size() != g.tensors.size()) abort();
    (void)sdgo::model::canonicalize(&back);
    return 0;
}
