// libFuzzer harness: PyTorch checkpoints (zip reader, legacy format and the
// safe unpickler), plus the raw unpickler on the input as a bare pickle.
#include <cstddef>
#include <cstdint>

#include "formats/pickle.h"
#include "formats/torch_file.h"
#include "model/naming.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    using namespace sdgo::formats;
    ModelFiles m;
    if (read_torch(MappedFile::from_bytes(data, size, "fuzz.ckpt"), &m).ok()) (void)sdgo::model::canonicalize(&m);
    for (int legacy = 0; legacy < 2; legacy++) {
        Unpickler up(legacy != 0);
        uint32_t root;
        size_t end;
        (void)up.run(data, size, 0, &root, &end);
    }
    return 0;
}
