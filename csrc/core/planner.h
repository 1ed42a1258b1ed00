// planner.h — assigns graph intermediates offsets in one arena by liveness.
//
// Every tensor that needs backend memory (inputs and non-view op results)
// gets an interval of the execution order: inputs are live for the whole
// compute (so a graph can be recomputed without setting unchanged inputs
// again); a node from its own step until the last step that reads it
// directly or through any view of it (views alias their storage owner and
// extend its lifetime). Outputs live to the end. Walking the order, each
// node's result is placed in the best-fitting free block (or at the top of
// the arena), then the blocks whose last use was this step are freed and
// merged. Peak memory is therefore about the largest live set, not the sum
// of all activations. Weights use their own external memory.
//
// In-place: an element-wise op, softmax, group norm or layer norm whose
// same-shaped, contiguous source dies at that op (and is not read through
// another operand's view) takes over the source's block instead of a new
// one.
#pragma once

#include <cstddef>
#include <vector>

#include "core/graph.h"
#include "base/status.h"

namespace sdgo {

struct MemoryPlan {
    static constexpr size_t kNone = static_cast<size_t>(-1);
    std::vector<size_t> offset;  // per tensor id; kNone if not placed in the arena
    size_t arena_bytes = 0;      // peak, i.e. the arena size needed
    size_t total_bytes = 0;      // sum of all placed tensors (what no reuse would need)
    int inplace = 0;             // results that took over their source's block
};

// Plans g's memory with every block aligned to `alignment` (a power of two).
// Fails with the graph's recorded build error, if any. The first form
// allows in-place results.
Status plan_memory(Graph & g, size_t alignment, MemoryPlan * out);
Status plan_memory(Graph & g, size_t alignment, bool allow_inplace, MemoryPlan * out);

}  // namespace sdgo
