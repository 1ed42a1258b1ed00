// pickle.h — a safe, non-executing pickle reader for PyTorch checkpoints.
//
// The VM interprets the pickle protocol 0–5 opcodes into an arena of
// inert values. Only an allow-list of globals can be referenced at all:
// collections.OrderedDict, torch._utils._rebuild_tensor{,_v2,_v3},
// torch._utils._rebuild_parameter{,_with_state}, the torch.*Storage classes,
// torch dtypes, torch.Size, torch.device and _codecs.encode. Any other global
// (os.system, builtins.eval, ...) is refused with an error naming it, and
// nothing is ever called: REDUCE on an allowed global builds a value
// (a dict, a tensor reference) according to fixed rules.
//
// Every length, memo index and stack operation is bounds-checked; values live
// in a flat arena (no recursion when freeing); memory is O(pickle size).
#pragma once

#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "formats/model_file.h"

namespace sdgo::formats {

// Element type of a torch storage or dtype.
struct TorchElem {
    StoredType stored = StoredType::ggml;
    DType type = DType::f32;
    int size = 4;            // bytes per element
    const char * name = "";  // e.g. "FloatStorage" / "float16"
};
// torch.<Name>Storage -> element type (UntypedStorage = bytes).
bool torch_storage_elem(const std::string & name, TorchElem * out);
// torch.<dtype> (float16, bfloat16, float8_e4m3fn, ...) -> element type.
bool torch_dtype_elem(const std::string & name, TorchElem * out);

struct PNode {
    enum Kind : uint8_t { none, boolean, integer, bigint, real, str, bytes, tuple, list, dict, set, global, storage, tensor, dtype };
    Kind kind = none;
    int64_t i = 0;        // integer / bool / index into storages or tensors
    double f = 0;
    std::string s;        // str, bytes, bigint (LE two's complement bytes), global "module.name"
    std::vector<uint32_t> v;  // tuple/list/set items; dict as key,value,key,value...
};

struct PStorage {
    std::string key;
    std::string location;
    TorchElem elem;
    int64_t numel = 0;
};

struct PTensor {
    uint32_t storage = 0;          // index into storages
    int64_t offset = 0;            // storage_offset in elements of elem
    std::vector<int64_t> size, stride;
    TorchElem elem;                // element type of the tensor view
};

class Unpickler {
public:
    // Persistent ids are resolved into storages; `legacy` accepts the 6-tuple
    // form of the non-zip format.
    explicit Unpickler(bool legacy) : legacy_(legacy) {}

    // Runs the pickle at data[pos..size) until STOP. On success *root is the
    // result node and *end_pos the offset after STOP.
    Status run(const uint8_t * data, size_t size, size_t pos, uint32_t * root, size_t * end_pos);

    std::vector<PNode> nodes;
    std::vector<PStorage> storages;
    std::vector<PTensor> tensors;
    std::unordered_map<std::string, uint32_t> storage_by_key;

    const PNode & node(uint32_t i) const { return nodes[i]; }
    // Looks up a string key in a dict node; returns UINT32_MAX when absent.
    uint32_t dict_get(uint32_t dict, const std::string & key) const;

    // The most node elements (a node, plus one per item it holds) a pickle
    // may build per byte of its stream, and the allowance every pickle has.
    // Rebuilding one big list into many containers (an OrderedDict made again
    // and again from a memoised list) would otherwise take thousands of times
    // the file's size in memory; real checkpoints build about 2 per byte.
    static constexpr size_t kElementsPerByte = 16;
    static constexpr size_t kElementAllowance = size_t(1) << 20;

private:
    bool legacy_;
    size_t elements_ = 0, element_budget_ = 0;
    uint32_t add(PNode n);
};

}  // namespace sdgo::formats
