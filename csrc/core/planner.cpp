#include "core/planner.h"

#include <algorithm>
#include <cstdint>
#include <limits>

namespace sdgo {

namespace {

// First-level allocator over an unbounded arena: best fit among free blocks,
// else grow the top (reusing a free block that touches the top).
class ArenaAllocator {
public:
    size_t alloc(size_t size) {
        size_t best = blocks_.size();
        for (size_t i = 0; i < blocks_.size(); i++) {
            if (blocks_[i].size >= size && (best == blocks_.size() || blocks_[i].size < blocks_[best].size)) best = i;
        }
        if (best != blocks_.size()) {
            Block & b = blocks_[best];
            const size_t off = b.offset;
            b.offset += size;
            b.size -= size;
            if (b.size == 0) blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(best));
            return off;
        }
        size_t off = top_;
        if (!blocks_.empty() && blocks_.back().offset + blocks_.back().size == top_) {
            off = blocks_.back().offset;
            blocks_.pop_back();
        }
        top_ = off + size;
        peak_ = std::max(peak_, top_);
        return off;
    }

    void free(size_t offset, size_t size) {
        auto it = std::lower_bound(blocks_.begin(), blocks_.end(), offset,
                                   [](const Block & b, size_t off) { return b.offset < off; });
        it = blocks_.insert(it, Block{offset, size});
        // Merge with the next block, then with the previous one.
        auto next = it + 1;
        if (next != blocks_.end() && it->offset + it->size == next->offset) {
            it->size += next->size;
            blocks_.erase(next);
        }
        if (it != blocks_.begin()) {
            auto prev = it - 1;
            if (prev->offset + prev->size == it->offset) {
                prev->size += it->size;
                blocks_.erase(it);
            }
        }
    }

    size_t peak() const { return peak_; }

private:
    struct Block {
        size_t offset, size;
    };
    std::vector<Block> blocks_;  // sorted by offset, never adjacent
    size_t top_ = 0;
    size_t peak_ = 0;
};

size_t align_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

bool needs_memory(const Tensor * t) {
    if (t->is_view()) return false;
    if (t->is_leaf()) return (t->flags & kFlagInput) != 0;
    return true;
}

Tensor * storage(Tensor * t) { return t->view_src ? t->view_src : t; }

// Ops whose CPU kernels read each source element before writing the result
// element at the same position (row by row, group by group), so the result
// may overwrite a same-shaped source that dies at this op.
bool inplace_safe(Op op) {
    switch (op) {
        case Op::add:
        case Op::sub:
        case Op::mul:
        case Op::div:
        case Op::scale:
        case Op::silu:
        case Op::gelu:
        case Op::gelu_tanh:
        case Op::quick_gelu:
        case Op::clamp:
        case Op::relu:
        case Op::tanh:
        case Op::sigmoid:
        case Op::exp:
        case Op::sqrt:
        case Op::sqr:
        case Op::softmax:
        case Op::group_norm:
        case Op::layer_norm: return true;
        default: return false;
    }
}

}  // namespace

Status plan_memory(Graph & g, size_t alignment, MemoryPlan * out) { return plan_memory(g, alignment, true, out); }

Status plan_memory(Graph & g, size_t alignment, bool allow_inplace, MemoryPlan * out) {
    if (!g.status().ok()) return g.status();
    if (alignment == 0 || (alignment & (alignment - 1)) != 0)
        return error(SDGO_ERR_INVALID_ARGUMENT, "plan_memory: alignment %zu is not a power of two", alignment);
    const std::vector<Tensor *> & order = g.order();
    const size_t n = g.n_tensors();
    constexpr int64_t kForever = std::numeric_limits<int64_t>::max();
    constexpr int64_t kUnused = -2;

    std::vector<int64_t> last(n, kUnused);
    for (size_t p = 0; p < order.size(); p++) {
        Tensor * t = order[p];
        if (needs_memory(t)) last[t->id] = std::max<int64_t>(last[t->id], static_cast<int64_t>(p));
        for (Tensor * s : t->src) {
            if (!s) continue;
            Tensor * r = storage(s);
            last[r->id] = std::max<int64_t>(last[r->id], static_cast<int64_t>(p));
        }
    }
    for (Tensor * o : g.outputs()) last[storage(o)->id] = kForever;

    out->offset.assign(n, MemoryPlan::kNone);
    out->total_bytes = 0;
    out->inplace = 0;
    std::vector<uint8_t> handed_over(n, 0);  // block now owned by an in-place result
    ArenaAllocator arena;
    // Frees at step p: tensors whose last use is p, in creation order.
    std::vector<std::vector<Tensor *>> frees(order.size());
    auto place = [&](Tensor * t) {
        const size_t size = align_up(std::max<size_t>(t->nbytes(), 1), alignment);
        out->offset[t->id] = arena.alloc(size);
        out->total_bytes += size;
        const int64_t l = last[t->id];
        if (l == kForever) return;
        if (l < 0) {
            arena.free(out->offset[t->id], size);  // never read
            return;
        }
        frees[static_cast<size_t>(l)].push_back(t);
    };
    // Inputs first (live from the start), in creation order.
    for (size_t i = 0; i < n; i++) {
        Tensor * t = g.tensor(i);
        if (t->is_leaf() && needs_memory(t)) {
            // Inputs keep their memory for the whole compute, so a graph can
            // be computed again without setting unchanged inputs anew.
            last[t->id] = kForever;
            place(t);
        }
    }
    // A source that dies at step p and matches t exactly hands its block to t.
    auto try_inplace = [&](Tensor * t, size_t p) {
        if (!allow_inplace || !inplace_safe(t->op)) return false;
        const int nsrc = (t->op == Op::add || t->op == Op::sub || t->op == Op::mul || t->op == Op::div) ? 2 : 1;
        for (int k = 0; k < nsrc; k++) {
            Tensor * s = t->src[k];
            if (!s || s->is_view() || s->is_leaf() || handed_over[s->id]) continue;
            if (last[s->id] != static_cast<int64_t>(p) || out->offset[s->id] == MemoryPlan::kNone) continue;
            if (s->type != t->type || !same_shape(s, t) || !s->is_contiguous()) continue;
            bool aliased = false;  // another operand reading the same storage differently
            for (int j = 0; j < kMaxSrc; j++)
                if (j != k && t->src[j] && t->src[j] != s && storage(t->src[j]) == s) aliased = true;
            if (aliased) continue;
            handed_over[s->id] = 1;
            out->offset[t->id] = out->offset[s->id];
            out->total_bytes += align_up(std::max<size_t>(t->nbytes(), 1), alignment);
            out->inplace++;
            const int64_t l = last[t->id];
            if (l != kForever) frees[static_cast<size_t>(l)].push_back(t);
            return true;
        }
        return false;
    };
    for (size_t p = 0; p < order.size(); p++) {
        Tensor * t = order[p];
        if (needs_memory(t) && !try_inplace(t, p)) place(t);
        for (Tensor * f : frees[p])
            if (!handed_over[f->id]) arena.free(out->offset[f->id], align_up(std::max<size_t>(f->nbytes(), 1), alignment));
    }
    out->arena_bytes = arena.peak();
    return Status();
}

}  // namespace sdgo
