// json.h — a small strict JSON parser (RFC 8259) and string escaping.
//
// Used for safetensors headers, diffusers config.json / model_index.json and
// sharded index files, all of which may be hostile. The parser accepts
// exactly one value surrounded by optional whitespace, validates UTF-8,
// rejects duplicate object keys, caps nesting depth and never recurses
// deeper than that cap. Integers keep their exact 64-bit value.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace sdgo::formats {

struct Json {
    enum Kind { null_, boolean, number, string, array, object };
    Kind kind = null_;
    bool b = false;
    double num = 0;            // every number
    bool is_int = false;       // the literal was an integer that fits int64 or uint64
    bool neg = false;          // integer sign
    uint64_t mag = 0;          // integer magnitude when is_int
    std::string str;           // string value
    std::vector<Json> items;   // array elements
    std::vector<std::pair<std::string, Json>> members;  // object members, in file order

    const Json * get(const std::string & key) const;  // object member or NULL
    bool is_uint() const { return kind == number && is_int && !neg; }
    bool as_int64(int64_t * out) const;               // exact integer in int64 range
    // Convenience for configs: integer or default.
    int64_t int_or(const std::string & key, int64_t def) const;
    double num_or(const std::string & key, double def) const;
    std::string str_or(const std::string & key, const std::string & def) const;
    bool bool_or(const std::string & key, bool def) const;
    // Configs from files are untrusted: the integer at key (def when absent
    // or null) must lie in [lo, hi], the number at key must be finite and in
    // [lo, hi]; otherwise an SDGO_ERR_FORMAT error names `what`, the key and
    // the range.
    Status int_in(const std::string & key, int64_t lo, int64_t hi, int64_t def, int64_t * out,
                  const char * what) const;
    Status num_in(const std::string & key, double lo, double hi, double def, double * out, const char * what) const;
};

// Parses `text` (len bytes). Errors are SDGO_ERR_FORMAT with the byte offset.
Status json_parse(const char * text, size_t len, Json * out, int max_depth = 64);

// Appends s as a JSON string literal (with quotes) to out.
void json_escape(const std::string & s, std::string * out);
std::string json_quote(const std::string & s);

}  // namespace sdgo::formats
