// ref_text.h — reads the text reference files that testdata/gen scripts
// write as `key count v0 v1 ...` lines ('#' starts a comment line).
#pragma once

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "testing.h"

namespace sdgo::testing {

using RefMap = std::map<std::string, std::vector<float>>;

// Loads a reference file by its path under the source tree.
inline RefMap load_ref_text(const std::string & rel) {
    RefMap m;
    std::ifstream f(source_path(rel));
    std::string line;
    while (std::getline(f, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream is(line);
        std::string key;
        size_t n = 0;
        is >> key >> n;
        std::vector<float> v(n);
        for (size_t i = 0; i < n; ++i) {
            std::string tok;
            is >> tok;
            v[i] = std::strtof(tok.c_str(), nullptr);
        }
        m[key] = std::move(v);
    }
    return m;
}

}  // namespace sdgo::testing
