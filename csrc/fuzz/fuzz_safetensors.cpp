// libFuzzer harness: safetensors reader + canonical naming + detection.
// Built by scripts/fuzz.sh (not part of the default build).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "formats/safetensors.h"
#include "model/detect.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    using namespace sdgo;
    model::LoadedModel m;
    auto f = formats::MappedFile::from_bytes(data, size, "fuzz.safetensors");
    if (!formats::read_safetensors(f, &m.files).ok()) return 0;
    if (!model::canonicalize(&m.files).ok()) return 0;
    model::ModelInfo info;
    if (model::detect(m, &info).ok()) {
        // the summary of any accepted file must be valid JSON
        std::string js = model::model_info_json(m, info);
        formats::Json j;
        if (!formats::json_parse(js.data(), js.size(), &j).ok()) abort();
    }
    return 0;
}
