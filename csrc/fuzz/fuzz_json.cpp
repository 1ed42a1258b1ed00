// libFuzzer harness: the strict JSON parser (safetensors headers, configs).
#include <cstddef>
#include <cstdint>

#include "formats/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    sdgo::formats::Json j;
    (void)sdgo::formats::json_parse(reinterpret_cast<const char *>(data), size, &j);
    return 0;
}
