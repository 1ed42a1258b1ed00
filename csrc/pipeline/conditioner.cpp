#include "pipeline/conditioner.h"

#include <algorithm>
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

// Both sides of a prompt pair as token windows for one encoder: A1111
// weighting and 75-token chunks (both sides padded to the same number of
// chunks) for the usual 77-position window, else diffusers-style
// truncation to one window.
struct TokenSides {
    std::vector<int32_t> ids_c, ids_u;
    std::vector<float> mult_c, mult_u;
    int kc = 1, ku = 1;
    bool weighted = false;
};

Status tokenize_sides(const text::ClipTokenizer & tok, int32_t pad_id, const model::ClipConfig & cfg,
                      const std::string & prompt, const std::string & negative, const PromptOptions & opt,
                      TokenSides * out, int64_t * tokens) {
    const int64_t T = cfg.max_positions;
    TokenSides & s = *out;
    if (T == text::kClipMaxLength && !opt.literal) {
        text::ChunkOptions co;
        co.pad_id = pad_id;
        co.max_chunks = opt.max_chunks;
        text::PromptChunks pc, pu;
        Status st = text::tokenize_weighted_prompt(tok, prompt, co, &pc);
        if (!st.ok()) return st.wrap("prompt");
        st = text::tokenize_weighted_prompt(tok, negative, co, &pu);
        if (!st.ok()) return st.wrap("negative prompt");
        if (tokens) *tokens = pc.token_count;
        text::PromptChunks empty;
        SDGO_TRY(text::tokenize_weighted_prompt(tok, "", co, &empty));
        pad_chunks(&pc, empty, pu.n_chunks);
        pad_chunks(&pu, empty, pc.n_chunks);
        s.kc = pc.n_chunks;
        s.ku = pu.n_chunks;
        s.ids_c = std::move(pc.ids);
        s.ids_u = std::move(pu.ids);
        s.mult_c = std::move(pc.multipliers);
        s.mult_u = std::move(pu.multipliers);
        s.weighted = true;
    } else {
        // diffusers-style truncation (also for a text encoder with a short window).
        if (T < 2) return error(SDGO_ERR_FORMAT, "text encoder window of %lld positions", (long long)T);
        s.ids_c = tok.encode_padded(prompt, pad_id, int(T));
        s.ids_u = tok.encode_padded(negative, pad_id, int(T));
        if (tokens) *tokens = int64_t(tok.encode(prompt).size());
    }
    for (const std::vector<int32_t> * v : {&s.ids_c, &s.ids_u})
        for (int32_t id : *v)
            if (id < 0 || id >= cfg.vocab) return error(SDGO_ERR_FORMAT, "token id %d outside the vocabulary", id);
    return Status();
}

// The clip skip to use (0: the model's default), checked against the layers.
Status resolve_clip_skip(int requested, int dflt, const model::ClipConfig & cfg, int * out) {
    *out = requested > 0 ? requested : dflt;
    if (*out > cfg.layers)
        return error(SDGO_ERR_INVALID_ARGUMENT, "clip skip %d exceeds the %d layers of the text encoder", *out,
                     cfg.layers);
    return Status();
}

// Scales each side's context by its A1111 emphasis multipliers (D channels per token).
Status emphasize(const TokenSides & s, int64_t T, int64_t D, std::vector<float> * c, std::vector<float> * u) {
    if (!s.weighted) return Status();
    if (!all_one(s.mult_c)) SDGO_TRY(text::apply_emphasis(c->data(), s.mult_c.data(), 1, T * s.kc, D));
    if (!all_one(s.mult_u)) SDGO_TRY(text::apply_emphasis(u->data(), s.mult_u.data(), 1, T * s.ku, D));
    return Status();
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
    TokenSides ts;
    SDGO_TRY(tokenize_sides(*tok_, pad_id_, cfg_, prompt, negative, opt, &ts, tokens));
    const int kc = ts.kc, ku = ts.ku;
    const std::vector<int32_t> & ids_c = ts.ids_c;
    const std::vector<int32_t> & ids_u = ts.ids_u;

    int clip_skip = 0;
    SDGO_TRY(resolve_clip_skip(opt.clip_skip, default_clip_skip_, cfg_, &clip_skip));
    const int skip_u = opt.clip_skip_negative ? clip_skip : default_clip_skip_;
    // The windows `ids` (n of them) through the encoder at one clip skip.
    auto run = [&](const std::vector<int32_t> & ids, int n, int skip, std::vector<float> * z) -> Status {
        Graph g;
        Tensor * t_ids = g.input(DType::i32, {T, n}, "ids");
        Tensor * y = nullptr;
        SDGO_TRY(build(g, *w_, t_ids, skip, &y));
        g.set_output(y);
        SDGO_TRY(be.alloc_graph(g));
        SDGO_TRY(be.set_tensor(t_ids, ids.data(), 0, ids.size() * sizeof(int32_t)));
        SDGO_TRY(be.compute(g));
        z->resize(size_t(D * T * n));
        return be.get_tensor(y, z->data(), 0, z->size() * sizeof(float));
    };
    if (skip_u == clip_skip) {  // both sides in one run
        std::vector<int32_t> ids(ids_c);
        ids.insert(ids.end(), ids_u.begin(), ids_u.end());
        std::vector<float> z;
        SDGO_TRY(run(ids, kc + ku, clip_skip, &z));
        cond->context.assign(z.begin(), z.begin() + size_t(D * T * kc));
        uncond->context.assign(z.begin() + size_t(D * T * kc), z.end());
    } else {
        SDGO_TRY(run(ids_c, kc, clip_skip, &cond->context));
        SDGO_TRY(run(ids_u, ku, skip_u, &uncond->context));
    }
    cond->context_dim = uncond->context_dim = D;
    SDGO_TRY(emphasize(ts, T, D, &cond->context, &uncond->context));
    if (!all_finite(cond->context) || !all_finite(uncond->context))
        return error(SDGO_ERR_INTERNAL, "the text encoder produced NaN or infinity");
    return Status();
}

// ---- SDXL ----------------------------------------------------------------

int64_t SdxlConditioner::context_dim() const {
    int64_t d = 0;
    for (const Encoder & e : e_) d += e.cfg.hidden;
    return d;
}

Status SdxlConditioner::build(Graph & g, const model::Weights & w, Tensor * const * ids, Tensor * rows,
                              int clip_skip, Tensor ** outs, Tensor ** pooled) const {
    model::ClipOptions copt;
    copt.clip_skip = clip_skip;
    copt.final_norm = false;
    const size_t last = e_.size() - 1;
    for (size_t i = 0; i < last; i++)
        SDGO_TRY(model::build_clip_text(g, w, e_[i].prefix, e_[i].cfg, copt, ids[i], &outs[i]));
    return model::build_clip_text_pooled(g, w, e_[last].prefix, e_[last].cfg, copt, ids[last], rows, &outs[last],
                                         pooled);
}

Status SdxlConditioner::record(model::WeightStore * store) const {
    Graph g;
    std::vector<Tensor *> ids(e_.size()), outs(e_.size());
    for (size_t i = 0; i < e_.size(); i++) ids[i] = g.input(DType::i32, {e_[i].cfg.max_positions, 1}, "ids");
    Tensor * rows = g.input(DType::i32, {1}, "rows");
    Tensor * p = nullptr;
    // clip skip 1 reads every layer (a request may select any of them)
    return build(g, model::WeightRecorder(store), ids.data(), rows, 1, outs.data(), &p);
}

Status SdxlConditioner::encode(Backend & be, const std::string & prompt, const std::string & negative,
                               const PromptOptions & opt, Condition * cond, Condition * uncond,
                               int64_t * tokens) const {
    const size_t ne = e_.size();
    if (ne < 1 || ne > 2) return error(SDGO_ERR_INTERNAL, "SDXL conditioner with %zu text encoders", ne);
    const int64_t T = e_[0].cfg.max_positions;
    std::vector<TokenSides> ts(ne);
    for (size_t i = 0; i < ne; i++) {
        if (e_[i].cfg.max_positions != T)
            return error(SDGO_ERR_FORMAT, "the SDXL text encoders have windows of %lld and %lld positions",
                         (long long)T, (long long)e_[i].cfg.max_positions);
        SDGO_TRY(tokenize_sides(*e_[i].tok, e_[i].pad_id, e_[i].cfg, prompt, negative, opt, &ts[i],
                                i == 0 ? tokens : nullptr));
        if (ts[i].kc != ts[0].kc || ts[i].ku != ts[0].ku)
            return error(SDGO_ERR_FORMAT, "the two SDXL tokenizers split the prompt into different chunk counts");
    }
    int clip_skip = 0;
    // The default is the penultimate layer; a clip skip counts from the last
    // layer as in SD 1.x (1 = last, 2 = penultimate).
    const int default_skip = 2;
    for (size_t i = 0; i < ne; i++) SDGO_TRY(resolve_clip_skip(opt.clip_skip, default_skip, e_[i].cfg, &clip_skip));
    const int skip_u = opt.clip_skip_negative ? clip_skip : default_skip;
    const int kc = ts[0].kc, n = ts[0].kc + ts[0].ku;
    // Each encoder's windows: the positive side's, then the negative's.
    std::vector<std::vector<int32_t>> all_ids(ne);
    for (size_t i = 0; i < ne; i++) {
        all_ids[i] = ts[i].ids_c;
        all_ids[i].insert(all_ids[i].end(), ts[i].ids_u.begin(), ts[i].ids_u.end());
    }
    // Windows [from, to) through the encoders at one clip skip: per encoder
    // [hidden, T, to - from] appended to z[i], the pooled output [P, to - from] to pv.
    std::vector<std::vector<float>> z(ne);
    std::vector<float> pv;
    auto run = [&](int from, int to, int skip) -> Status {
        const int m = to - from;
        const size_t first = size_t(from) * size_t(T), count = size_t(m) * size_t(T);
        std::vector<int32_t> rows(size_t(m), 0);
        model::clip_pooled_rows(all_ids[ne - 1].data() + first, T, m, e_[ne - 1].tok->eos_id(), rows.data());
        Graph g;
        std::vector<Tensor *> t_ids(ne), outs(ne);
        for (size_t i = 0; i < ne; i++) t_ids[i] = g.input(DType::i32, {T, m}, "ids");
        Tensor * t_rows = g.input(DType::i32, {m}, "rows");
        Tensor * pooled = nullptr;
        SDGO_TRY(build(g, *w_, t_ids.data(), t_rows, skip, outs.data(), &pooled));
        for (Tensor * o : outs) g.set_output(o);
        g.set_output(pooled);
        SDGO_TRY(be.alloc_graph(g));
        for (size_t i = 0; i < ne; i++)
            SDGO_TRY(be.set_tensor(t_ids[i], all_ids[i].data() + first, 0, count * sizeof(int32_t)));
        SDGO_TRY(be.set_tensor(t_rows, rows.data(), 0, rows.size() * sizeof(int32_t)));
        SDGO_TRY(be.compute(g));
        for (size_t i = 0; i < ne; i++) {
            std::vector<float> part(size_t(e_[i].cfg.hidden * T * m));
            SDGO_TRY(be.get_tensor(outs[i], part.data(), 0, part.size() * sizeof(float)));
            z[i].insert(z[i].end(), part.begin(), part.end());
        }
        std::vector<float> pp(size_t(pooled->ne[0] * m));
        SDGO_TRY(be.get_tensor(pooled, pp.data(), 0, pp.size() * sizeof(float)));
        pv.insert(pv.end(), pp.begin(), pp.end());
        return Status();
    };
    if (skip_u == clip_skip) {  // both sides in one run
        SDGO_TRY(run(0, n, clip_skip));
    } else {
        SDGO_TRY(run(0, kc, clip_skip));
        SDGO_TRY(run(kc, n, skip_u));
    }

    // Each encoder's contexts, weighted on their own, then interleaved per token.
    const int64_t DC = context_dim();
    const size_t n_tok_c = size_t(T) * size_t(kc), n_tok_u = size_t(T) * size_t(n - kc);
    cond->context.assign(n_tok_c * size_t(DC), 0.0f);
    uncond->context.assign(n_tok_u * size_t(DC), 0.0f);
    int64_t at = 0;  // channel offset of encoder i in the context
    for (size_t i = 0; i < ne; i++) {
        const int64_t D = e_[i].cfg.hidden;
        std::vector<float> c(z[i].begin(), z[i].begin() + size_t(D) * n_tok_c);
        std::vector<float> u(z[i].begin() + size_t(D) * n_tok_c, z[i].end());
        SDGO_TRY(emphasize(ts[i], T, D, &c, &u));
        for (size_t t = 0; t < n_tok_c; t++) std::copy_n(c.data() + t * D, D, cond->context.data() + t * DC + at);
        for (size_t t = 0; t < n_tok_u; t++) std::copy_n(u.data() + t * D, D, uncond->context.data() + t * DC + at);
        at += D;
    }
    cond->context_dim = uncond->context_dim = DC;
    const int64_t P = int64_t(pv.size()) / n;
    cond->pooled.assign(pv.begin(), pv.begin() + P);  // the first chunk's
    uncond->pooled.assign(pv.begin() + size_t(P * kc), pv.begin() + size_t(P * (kc + 1)));
    if (negative.empty() && zero_empty_negative_) {
        std::fill(uncond->context.begin(), uncond->context.end(), 0.0f);
        std::fill(uncond->pooled.begin(), uncond->pooled.end(), 0.0f);
    }
    if (!all_finite(cond->context) || !all_finite(uncond->context) || !all_finite(cond->pooled) ||
        !all_finite(uncond->pooled))
        return error(SDGO_ERR_INTERNAL, "the text encoders produced NaN or infinity");
    return Status();
}

}  // namespace sdgo::pipeline
