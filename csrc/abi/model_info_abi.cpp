// model_info_abi.cpp — the extern "C" shim of the "Model files" section of
// sdgo.h (sdgo_files_info), over model/load.h and model/detect.h.
#include <string>
#include <vector>

#include "abi/abi_util.h"
#include "model/detect.h"
#include "sdgo.h"

extern "C" int32_t sdgo_files_info(const char * const * paths, int32_t n_paths, char * buf, size_t buf_len, size_t * needed,
                                   char * err, size_t err_len) {
    std::string msg;
    int32_t rc = sdgo::abi::guarded(&msg, [&]() -> sdgo::Status {
        if (!paths || n_paths <= 0) return sdgo::error(SDGO_ERR_INVALID_ARGUMENT, "no model paths given");
        std::vector<std::string> ps;
        for (int32_t i = 0; i < n_paths; i++) {
            if (!paths[i] || !*paths[i]) return sdgo::error(SDGO_ERR_INVALID_ARGUMENT, "model path %d is empty", i);
            ps.emplace_back(paths[i]);
        }
        sdgo::model::LoadedModel m;
        SDGO_TRY(sdgo::model::load_models(ps, &m));
        sdgo::model::ModelInfo info;
        SDGO_TRY(sdgo::model::detect(m, &info));
        std::string js = sdgo::model::model_info_json(m, info);
        std::string e;
        int32_t c = sdgo::abi::copy_out(js, buf, buf_len, needed, &e);
        if (c != SDGO_OK) return sdgo::Status(c, e);
        return sdgo::Status();
    });
    if (rc != SDGO_OK) sdgo::abi::copy_message(msg, err, err_len);
    else if (err && err_len) err[0] = '\0';
    return rc;
}
