#include "pipeline/conditioner.h"

#include <cmath>

#include "text/prompt_parse.h"

namespace sdgo::pipeline {

namespace {

bool all_finite(const std::vector<float> & v) {
    for (float x : v)
        if (!std::isfinite(x)) return false;
    return true;
}

bool all_one(const std::vector<float> & m) {
    for (float v : m)
        if (v != 1.0f) return false;
    return true;
}

// Appends empty-prompt chunks to the shorter side so that both have n chunks (A1111).
void pad_chunks(text::PromptChunks * pc, const text::PromptChunks & empty, int n) {
    while (pc->n_chunks < n) {
        pc->ids.insert(pc->ids.end(), empty.ids.begin(), empty.ids.end());
        pc->multipliers.insert(pc->multipliers.end(), empty.multipliers.begin(), empty.multipliers.end());
        pc->n_chunks++;
    }
}

}  // namespace

Status ClipConditioner::build(Graph & g, const model::Weights & w, Tensor * ids, int clip_skip, Tensor ** out) const {
    model::ClipOptions copt;
    copt.clip_skip = clip_skip;
    copt.final_norm = true;
    return model::build_clip_text(g, w, prefix_, cfg_, copt, ids, out);
}

Status ClipConditioner::record(model::WeightStore * store) const {
    Graph g;
    Tensor * ids = g.input(DType::i32, {cfg_.max_positions, 1}, "ids");
    Tensor * y = nullptr;
    return build(g, model::WeightRecorder(store), ids, 1, &y);
}

Status ClipConditioner::encode(Backend & be, const std::string & prompt, const std::string & negative,
                               const PromptOptions & opt, Condition * cond, Condition * uncond,
                               int64_t * tokens) const {
    const int64_t T = cfg_.max_positions;
    const int64_t D = cfg_.hidden;
    std::vector<int32_t> ids_c, ids_u;
    std::vector<float> mult_c, mult_u;
    int kc = 1, ku = 1;
    bool weighted = false;
    if (T == text::kClipMaxLength && !opt.literal) {
        text::ChunkOptions co;
        co.pad_id = pad_id_;
        co.max_chunks = opt.max_chunks;
        text::PromptChunks pc, pu;
        Status st = text::tokenize_weighted_prompt(*tok_, prompt, co, &pc);
        if (!st.ok()) return st.wrap("prompt");
        st = text::tokenize_weighted_prompt(*tok_, negative, co, &pu);
        if (!st.ok()) return st.wrap("negative prompt");
        if (tokens) *tokens = pc.token_count;
        text::PromptChunks empty;
        SDGO_TRY(text::tokenize_weighted_prompt(*tok_, "", co, &empty));
        pad_chunks(&pc, empty, pu.n_chunks);
        pad_chunks(&pu, empty, pc.n_chunks);
        kc = pc.n_chunks;
        ku = pu.n_chunks;
        ids_c = std::move(pc.ids);
        ids_u = std::move(pu.ids);
        mult_c = std::move(pc.multipliers);
        mult_u = std::move(pu.multipliers);
        weighted = true;
    } else {
        // diffusers-style truncation (also for a text encoder with a short window).
        if (T < 2) return error(SDGO_ERR_FORMAT, "text encoder window of %lld positions", (long long)T);
        ids_c = tok_->encode_padded(prompt, pad_id_, int(T));
        ids_u = tok_->encode_padded(negative, pad_id_, int(T));
        if (tokens) *tokens = int64_t(tok_->encode(prompt).size());
    }
    for (const std::vector<int32_t> * v : {&ids_c, &ids_u})
        for (int32_t id : *v)
            if (id < 0 || id >= cfg_.vocab) return error(SDGO_ERR_FORMAT, "token id %d outside the vocabulary", id);

    const int clip_skip = opt.clip_skip > 0 ? opt.clip_skip : default_clip_skip_;
    if (clip_skip > cfg_.layers)
        return error(SDGO_ERR_INVALID_ARGUMENT, "clip skip %d exceeds the %d layers of the text encoder", clip_skip,
                     cfg_.layers);
    const int n = kc + ku;
    std::vector<int32_t> ids(ids_c);
    ids.insert(ids.end(), ids_u.begin(), ids_u.end());
    Graph g;
    Tensor * t_ids = g.input(DType::i32, {T, n}, "ids");
    Tensor * y = nullptr;
    SDGO_TRY(build(g, *w_, t_ids, clip_skip, &y));
    g.set_output(y);
    SDGO_TRY(be.alloc_graph(g));
    SDGO_TRY(be.set_tensor(t_ids, ids.data(), 0, ids.size() * sizeof(int32_t)));
    SDGO_TRY(be.compute(g));
    std::vector<float> z(size_t(D * T * n));
    SDGO_TRY(be.get_tensor(y, z.data(), 0, z.size() * sizeof(float)));
    cond->context.assign(z.begin(), z.begin() + size_t(D * T * kc));
    uncond->context.assign(z.begin() + size_t(D * T * kc), z.end());
    cond->context_dim = uncond->context_dim = D;
    if (weighted) {
        if (!all_one(mult_c)) SDGO_TRY(text::apply_emphasis(cond->context.data(), mult_c.data(), 1, T * kc, D));
        if (!all_one(mult_u)) SDGO_TRY(text::apply_emphasis(uncond->context.data(), mult_u.data(), 1, T * ku, D));
    }
    if (!all_finite(cond->context) || !all_finite(uncond->context))
        return error(SDGO_ERR_INTERNAL, "the text encoder produced NaN or infinity");
    return Status();
}

}  // namespace sdgo::pipeline
