#include "core/graph.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "core/backend.h"

namespace sdgo {

namespace {

constexpr int64_t kMaxDimSize = int64_t(1) << 40;
constexpr int64_t kMaxElements = int64_t(1) << 46;


}  // namespace

Graph::Graph() = default;
Graph::~Graph() = default;

Tensor * Graph::fail(Status st) {
    if (status_.ok()) status_ = std::move(st);
    // A placeholder keeps the builder going; compute reports status_.
    int64_t one = 1;
    return new_tensor(DType::f32, 1, &one);
}

bool Graph::owns(const Tensor * t) const {
    return t && t->id >= 0 && static_cast<size_t>(t->id) < tensors_.size() && tensors_[t->id].get() == t;
}

bool Graph::check(Tensor * t, const char * what) {
    if (!t) {
        fail(error(SDGO_ERR_INVALID_ARGUMENT, "%s: null tensor", what));
        return false;
    }
    if (!owns(t)) {
        fail(error(SDGO_ERR_INVALID_ARGUMENT, "%s: tensor does not belong to this graph", what));
        return false;
    }
    return true;
}

Tensor * Graph::new_tensor(DType type, int n_dims, const int64_t * ne) {
    auto t = std::make_unique<Tensor>();
    t->type = type;
    for (int i = 0; i < n_dims && i < kMaxDims; i++) t->ne[i] = ne[i];
    set_contiguous_strides(t.get());
    t->id = static_cast<int32_t>(tensors_.size());
    order_valid_ = false;
    if (backend_ && status_.ok())
        status_ = error(SDGO_ERR_INVALID_ARGUMENT, "graph: tensors added after the graph was allocated");
    tensors_.push_back(std::move(t));
    return tensors_.back().get();
}

static Status check_dims(DType type, int n_dims, const int64_t * ne, const char * what) {
    const TypeTraits * tr = type_traits(type);
    if (!tr) return error(SDGO_ERR_INVALID_ARGUMENT, "%s: unknown type id %d", what, static_cast<int>(type));
    if (n_dims < 1 || n_dims > kMaxDims)
        return error(SDGO_ERR_INVALID_ARGUMENT, "%s: %d dimensions (1..4 allowed)", what, n_dims);
    if (!ne) return error(SDGO_ERR_INVALID_ARGUMENT, "%s: null shape", what);
    int64_t total = 1;
    for (int i = 0; i < n_dims; i++) {
        if (ne[i] < 1 || ne[i] > kMaxDimSize)
            return error(SDGO_ERR_INVALID_ARGUMENT, "%s: dimension %d has size %lld", what, i, (long long)ne[i]);
        total *= ne[i];
        if (total > kMaxElements) return error(SDGO_ERR_INVALID_ARGUMENT, "%s: too many elements", what);
    }
    if (ne[0] % tr->block_size != 0)
        return error(SDGO_ERR_INVALID_ARGUMENT, "%s: ne0 = %lld is not a multiple of %s's block size %lld", what,
                     (long long)ne[0], tr->name, (long long)tr->block_size);
    return Status();
}

Tensor * Graph::input(DType type, int n_dims, const int64_t * ne, const char * name) {
    Status st = check_dims(type, n_dims, ne, "input");
    if (!st.ok()) return fail(st);
    Tensor * t = new_tensor(type, n_dims, ne);
    t->flags |= kFlagInput;
    if (name) t->name = name;
    return t;
}

Tensor * Graph::input(DType type, std::initializer_list<int64_t> ne, const char * name) {
    return input(type, static_cast<int>(ne.size()), ne.begin(), name);
}

Tensor * Graph::weight(DType type, int n_dims, const int64_t * ne, Buffer * buffer, size_t offset, const char * name) {
    Status st = check_dims(type, n_dims, ne, "weight");
    if (!st.ok()) return fail(st.wrap(name ? name : "weight"));
    if (!buffer) return fail(error(SDGO_ERR_INVALID_ARGUMENT, "weight %s: no buffer", name ? name : ""));
    Tensor * t = new_tensor(type, n_dims, ne);
    if (offset > buffer->size() || t->nbytes() > buffer->size() - offset) {
        return fail(error(SDGO_ERR_INVALID_ARGUMENT, "weight %s: %zu bytes at offset %zu exceed its buffer of %zu",
                          name ? name : "", t->nbytes(), offset, buffer->size()));
    }
    t->flags |= kFlagWeight;
    t->buffer = buffer;
    t->offset = offset;
    // A device whose memory the host cannot address has no base: such
    // tensors are reached by buffer and offset only.
    t->data = buffer->base() ? static_cast<char *>(buffer->base()) + offset : nullptr;
    if (name) t->name = name;
    return t;
}

Tensor * Graph::weight(DType type, std::initializer_list<int64_t> ne, Buffer * buffer, size_t offset,
                       const char * name) {
    return weight(type, static_cast<int>(ne.size()), ne.begin(), buffer, offset, name);
}

// ---- views ---------------------------------------------------------------

Tensor * Graph::make_view(Tensor * a, const int64_t ne[4], const size_t nb[4], size_t offset) {
    Tensor * root = a->view_src ? a->view_src : a;
    const size_t offs = (a->view_src ? a->view_offs : 0) + offset;
    Tensor probe;
    probe.type = a->type;
    for (int i = 0; i < 4; i++) {
        probe.ne[i] = ne[i];
        probe.nb[i] = nb[i];
    }
    if (offs + probe.nbytes() > root->nbytes())
        return fail(error(SDGO_ERR_INVALID_ARGUMENT, "view: %s at offset %zu exceeds its storage of %zu bytes",
                          probe.shape_str().c_str(), offs, root->nbytes()));
    Tensor * t = new_tensor(a->type, 4, ne);
    for (int i = 0; i < 4; i++) t->nb[i] = nb[i];
    t->op = Op::view;
    t->src[0] = a;
    t->view_src = root;
    t->view_offs = offs;
    if (root->buffer) {
        t->buffer = root->buffer;
        t->offset = root->offset + offs;
        t->data = root->data ? static_cast<char *>(root->data) + offs : nullptr;
    }
    return t;
}

Tensor * Graph::view(Tensor * a, std::initializer_list<int64_t> ne, std::initializer_list<size_t> nb, size_t offset) {
    if (!check(a, "view")) return fail(Status());
    const int n = static_cast<int>(ne.size());
    Status st = check_dims(a->type, n, ne.begin(), "view");
    if (!st.ok()) return fail(st);
    if (static_cast<int>(nb.size()) != n - 1)
        return fail(error(SDGO_ERR_INVALID_ARGUMENT, "view: %d sizes need %d strides, got %d", n, n - 1,
                          static_cast<int>(nb.size())));
    int64_t vne[4] = {1, 1, 1, 1};
    size_t vnb[4];
    for (int i = 0; i < n; i++) vne[i] = ne.begin()[i];
    vnb[0] = a->nb[0];
    for (int i = 1; i < n; i++) vnb[i] = nb.begin()[i - 1];
    for (int i = n; i < 4; i++)
        vnb[i] = i == 1 ? vnb[0] * static_cast<size_t>(vne[0] / dtype_block(a->type))
                        : vnb[i - 1] * static_cast<size_t>(vne[i - 1]);
    return make_view(a, vne, vnb, offset);
}

Tensor * Graph::reshape(Tensor * a, std::initializer_list<int64_t> ne) {
    if (!check(a, "reshape")) return fail(Status());
    const int n = static_cast<int>(ne.size());
    Status st = check_dims(a->type, n, ne.begin(), "reshape");
    if (!st.ok()) return fail(st);
    if (!a->is_contiguous())
        return fail(error(SDGO_ERR_INVALID_ARGUMENT, "reshape: source %s is not contiguous (use cont first)",
                          a->shape_str().c_str()));
    Tensor tmp;
    tmp.type = a->type;
    for (int i = 0; i < n; i++) tmp.ne[i] = ne.begin()[i];
    if (tmp.nelements() != a->nelements())
        return fail(error(SDGO_ERR_INVALID_ARGUMENT, "reshape: %s has %lld elements, target has %lld",
                          a->shape_str().c_str(), (long long)a->nelements(), (long long)tmp.nelements()));
    set_contiguous_strides(&tmp);
    return make_view(a, tmp.ne, tmp.nb, 0);
}

Tensor * Graph::permute(Tensor * a, int axis0, int axis1, int axis2, int axis3) {
    if (!check(a, "permute")) return fail(Status());
    const int ax[4] = {axis0, axis1, axis2, axis3};
    bool seen[4] = {false, false, false, false};
    for (int i = 0; i < 4; i++) {
        if (ax[i] < 0 || ax[i] > 3 || seen[ax[i]])
            return fail(error(SDGO_ERR_INVALID_ARGUMENT, "permute: axes (%d,%d,%d,%d) are not a permutation of 0..3",
                              axis0, axis1, axis2, axis3));
        seen[ax[i]] = true;
    }
    if (dtype_block(a->type) != 1 && ax[0] != 0)
        return fail(error(SDGO_ERR_UNSUPPORTED, "permute: cannot move dim 0 of block type %s", dtype_name(a->type)));
    int64_t ne[4];
    size_t nb[4];
    for (int i = 0; i < 4; i++) {
        ne[ax[i]] = a->ne[i];
        nb[ax[i]] = a->nb[i];
    }
    return make_view(a, ne, nb, 0);
}

Tensor * Graph::transpose(Tensor * a) { return permute(a, 1, 0, 2, 3); }

// ---- copies ----------------------------------------------------------------

Tensor * Graph::cont(Tensor * a) {
    if (!check(a, "cont")) return fail(Status());
    if (!is_float_type(a->type) && !a->rows_contiguous())
        return fail(error(SDGO_ERR_UNSUPPORTED, "cont: %s rows must be contiguous for block types",
                          a->shape_str().c_str()));
    Tensor * t = new_tensor(a->type, 4, a->ne);
    t->op = Op::cont;
    t->src[0] = a;
    return t;
}

Tensor * Graph::cast(Tensor * a, DType type) {
    if (!check(a, "cast")) return fail(Status());
    if (!is_float_type(type))
        return fail(error(SDGO_ERR_UNSUPPORTED, "cast: target type %s (f32, f16, bf16 supported)", dtype_name(type)));
    if (!is_float_type(a->type) && !(a->rows_contiguous() && type == DType::f32))
        return fail(error(SDGO_ERR_UNSUPPORTED, "cast: %s to %s", a->shape_str().c_str(), dtype_name(type)));
    Tensor * t = new_tensor(type, 4, a->ne);
    t->op = Op::cpy;
    t->src[0] = a;
    return t;
}

// ---- element-wise ----------------------------------------------------------

Tensor * Graph::unary(Op op, Tensor * a) {
    if (!check(a, op_name(op))) return fail(Status());
    if (a->type != DType::f32)
        return fail(error(SDGO_ERR_UNSUPPORTED, "%s: source must be f32, got %s", op_name(op),
                          a->shape_str().c_str()));
    Tensor * t = new_tensor(DType::f32, 4, a->ne);
    t->op = op;
    t->src[0] = a;
    return t;
}

Tensor * Graph::binary(Op op, Tensor * a, Tensor * b) {
    if (!check(a, op_name(op)) || !check(b, op_name(op))) return fail(Status());
    if (a->type != DType::f32 || b->type != DType::f32)
        return fail(error(SDGO_ERR_UNSUPPORTED, "%s: operands must be f32, got %s and %s", op_name(op),
                          a->shape_str().c_str(), b->shape_str().c_str()));
    int64_t ne[4];
    for (int i = 0; i < 4; i++) {
        ne[i] = std::max(a->ne[i], b->ne[i]);
        if (ne[i] % a->ne[i] != 0 || ne[i] % b->ne[i] != 0)
            return fail(error(SDGO_ERR_INVALID_ARGUMENT, "%s: shapes %s and %s do not broadcast (dim %d)",
                              op_name(op), a->shape_str().c_str(), b->shape_str().c_str(), i));
    }
    Tensor * t = new_tensor(DType::f32, 4, ne);
    t->op = op;
    t->src[0] = a;
    t->src[1] = b;
    return t;
}

Tensor * Graph::add(Tensor * a, Tensor * b) { return binary(Op::add, a, b); }
Tensor * Graph::sub(Tensor * a, Tensor * b) { return binary(Op::sub, a, b); }
Tensor * Graph::mul(Tensor * a, Tensor * b) { return binary(Op::mul, a, b); }
Tensor * Graph::div(Tensor * a, Tensor * b) { return binary(Op::div, a, b); }

Tensor * Graph::scale(Tensor * a, float s, float bias) {
    Tensor * t = unary(Op::scale, a);
    t->fparams[0] = s;
    t->fparams[1] = bias;
    return t;
}
Tensor * Graph::silu(Tensor * a) { return unary(Op::silu, a); }
Tensor * Graph::gelu(Tensor * a) { return unary(Op::gelu, a); }
Tensor * Graph::gelu_tanh(Tensor * a) { return unary(Op::gelu_tanh, a); }
Tensor * Graph::quick_gelu(Tensor * a) { return unary(Op::quick_gelu, a); }

Tensor * Graph::relu(Tensor * a) { return unary(Op::relu, a); }
Tensor * Graph::tanh(Tensor * a) { return unary(Op::tanh, a); }
Tensor * Graph::sigmoid(Tensor * a) { return unary(Op::sigmoid, a); }
Tensor * Graph::exp(Tensor * a) { return unary(Op::exp, a); }
Tensor * Graph::sqrt(Tensor * a) { return unary(Op::sqrt, a); }
Tensor * Graph::sqr(Tensor * a) { return unary(Op::sqr, a); }

Tensor * Graph::clamp(Tensor * a, float lo, float hi) {
    if (!(lo <= hi)) return fail(error(SDGO_ERR_INVALID_ARGUMENT, "clamp: lo %g > hi %g", lo, hi));
    Tensor * t = unary(Op::clamp, a);
    t->fparams[0] = lo;
    t->fparams[1] = hi;
    return t;
}

Tensor * Graph::geglu(Tensor * a) {
    if (!check(a, "geglu")) return fail(Status());
    if (a->type != DType::f32 || a->ne[0] % 2 != 0)
        return fail(error(SDGO_ERR_INVALID_ARGUMENT, "geglu: needs f32 with even ne0, got %s", a->shape_str().c_str()));
    const int64_t h = a->ne[0] / 2;
    int64_t ne[4] = {h, a->ne[1], a->ne[2], a->ne[3]};
    Tensor * value = make_view(a, ne, a->nb, 0);
    Tensor * gate = make_view(a, ne, a->nb, static_cast<size_t>(h) * a->nb[0]);
    return mul(value, gelu(gate));
}

// ---- normalisation ---------------------------------------------------------

Tensor * Graph::softmax(Tensor * a, float scale, bool causal) {
    Tensor * t = unary(Op::softmax, a);
    t->fparams[0] = scale;
    t->iparams[0] = causal ? 1 : 0;
    return t;
}

static Status check_affine(const Tensor * p, int64_t n, const char * what, const char * role) {
    if (!p) return Status();
    if (p->type != DType::f32 || p->nelements() != n || !p->is_contiguous())
        return error(SDGO_ERR_INVALID_ARGUMENT, "%s: %s must be %lld contiguous f32 values, got %s", what, role,
                     (long long)n, p->shape_str().c_str());
    return Status();
}

Tensor * Graph::group_norm(Tensor * a, int groups, float eps, Tensor * w, Tensor * b) {
    if (!check(a, "group_norm")) return fail(Status());
    if ((w && !check(w, "group_norm weight")) || (b && !check(b, "group_norm bias"))) return fail(Status());
    if (a->type != DType::f32) return fail(error(SDGO_ERR_UNSUPPORTED, "group_norm: source must be f32"));
    if (groups < 1 || a->ne[2] % groups != 0)
        return fail(error(SDGO_ERR_INVALID_ARGUMENT, "group_norm: %lld channels not divisible into %d groups",
                          (long long)a->ne[2], groups));
    if (!(eps >= 0.0f)) return fail(error(SDGO_ERR_INVALID_ARGUMENT, "group_norm: eps %g", eps));
    Status st = check_affine(w, a->ne[2], "group_norm", "weight");
    if (st.ok()) st = check_affine(b, a->ne[2], "group_norm", "bias");
    if (!st.ok()) return fail(st);
    Tensor * t = unary(Op::group_norm, a);
    t->iparams[0] = groups;
    t->fparams[0] = eps;
    t->src[1] = w;
    t->src[2] = b;
    return t;
}

Tensor * Graph::group_norm_silu(Tensor * a, int groups, float eps, Tensor * w, Tensor * b) {
    Tensor * t = group_norm(a, groups, eps, w, b);
    if (t->op == Op::group_norm) t->iparams[1] = 1;
    return t;
}

Tensor * Graph::layer_norm(Tensor * a, float eps, Tensor * w, Tensor * b) {
    if (!check(a, "layer_norm")) return fail(Status());
    if ((w && !check(w, "layer_norm weight")) || (b && !check(b, "layer_norm bias"))) return fail(Status());
    if (a->type != DType::f32) return fail(error(SDGO_ERR_UNSUPPORTED, "layer_norm: source must be f32"));
    if (!(eps >= 0.0f)) return fail(error(SDGO_ERR_INVALID_ARGUMENT, "layer_norm: eps %g", eps));
    Status st = check_affine(w, a->ne[0], "layer_norm", "weight");
    if (st.ok()) st = check_affine(b, a->ne[0], "layer_norm", "bias");
    if (!st.ok()) return fail(st);
    Tensor * t = unary(Op::layer_norm, a);
    t->fparams[0] = eps;
    t->src[1] = w;
    t->src[2] = b;
    return t;
}

// ---- linear algebra --------------------------------------------------------

Tensor * Graph::mul_mat(Tensor * w, Tensor * x, Tensor * bias) {
    if (!check(w, "mul_mat") || !check(x, "mul_mat")) return fail(Status());
    if (bias && !check(bias, "mul_mat bias")) return fail(Status());
    if (x->type != DType::f32)
        return fail(error(SDGO_ERR_UNSUPPORTED, "mul_mat: activations must be f32, got %s", x->shape_str().c_str()));
    if (w->ne[0] != x->ne[0])
        return fail(error(SDGO_ERR_INVALID_ARGUMENT, "mul_mat: inner sizes differ: weight %s, input %s",
                          w->shape_str().c_str(), x->shape_str().c_str()));
    if (x->ne[2] % w->ne[2] != 0 || x->ne[3] % w->ne[3] != 0)
        return fail(error(SDGO_ERR_INVALID_ARGUMENT, "mul_mat: weight %s does not broadcast over input %s",
                          w->shape_str().c_str(), x->shape_str().c_str()));
    if (!w->rows_contiguous() && w->type != DType::f32)
        return fail(error(SDGO_ERR_UNSUPPORTED, "mul_mat: %s weight rows must be contiguous", dtype_name(w->type)));
    Status st = check_affine(bias, w->ne[1], "mul_mat", "bias");
    if (!st.ok()) return fail(st);
    const int64_t ne[4] = {w->ne[1], x->ne[1], x->ne[2], x->ne[3]};
    Tensor * t = new_tensor(DType::f32, 4, ne);
    t->op = Op::mul_mat;
    t->src[0] = w;
    t->src[1] = x;
    t->src[2] = bias;
    return t;
}

Tensor * Graph::conv2d(Tensor * w, Tensor * x, Tensor * bias, int stride_w, int stride_h, int pad_w, int pad_h) {
    if (!check(w, "conv2d") || !check(x, "conv2d")) return fail(Status());
    if (bias && !check(bias, "conv2d bias")) return fail(Status());
    if (x->type != DType::f32)
        return fail(error(SDGO_ERR_UNSUPPORTED, "conv2d: input must be f32, got %s", x->shape_str().c_str()));
    if (!w->is_contiguous()) return fail(error(SDGO_ERR_UNSUPPORTED, "conv2d: weight must be contiguous"));
    if (w->ne[2] != x->ne[2])
        return fail(error(SDGO_ERR_INVALID_ARGUMENT, "conv2d: weight %s expects %lld input channels, input %s",
                          w->shape_str().c_str(), (long long)w->ne[2], x->shape_str().c_str()));
    if (stride_w < 1 || stride_h < 1 || pad_w < 0 || pad_h < 0)
        return fail(error(SDGO_ERR_INVALID_ARGUMENT, "conv2d: stride (%d,%d) pad (%d,%d)", stride_w, stride_h,
                          pad_w, pad_h));
    const int64_t ow_num = x->ne[0] + 2 * pad_w - w->ne[0];
    const int64_t oh_num = x->ne[1] + 2 * pad_h - w->ne[1];
    if (ow_num < 0 || oh_num < 0)
        return fail(error(SDGO_ERR_INVALID_ARGUMENT, "conv2d: kernel %s larger than padded input %s",
                          w->shape_str().c_str(), x->shape_str().c_str()));
    Status st = check_affine(bias, w->ne[3], "conv2d", "bias");
    if (!st.ok()) return fail(st);
    const int64_t ne[4] = {ow_num / stride_w + 1, oh_num / stride_h + 1, w->ne[3], x->ne[3]};
    Tensor * t = new_tensor(DType::f32, 4, ne);
    t->op = Op::conv2d;
    t->src[0] = w;
    t->src[1] = x;
    t->src[2] = bias;
    t->iparams[0] = stride_w;
    t->iparams[1] = stride_h;
    t->iparams[2] = pad_w;
    t->iparams[3] = pad_h;
    return t;
}

Tensor * Graph::attention(Tensor * q, Tensor * k, Tensor * v, float scale, bool causal) {
    if (!check(q, "attention") || !check(k, "attention") || !check(v, "attention")) return fail(Status());
    for (const Tensor * t : {q, k, v}) {
        if (t->type != DType::f32 || t->nb[0] != sizeof(float))
            return fail(error(SDGO_ERR_UNSUPPORTED, "attention: q/k/v must be f32 with contiguous ne0, got %s",
                              t->shape_str().c_str()));
        for (int i = 1; i < 4; i++)
            if (t->nb[i] % sizeof(float) != 0)
                return fail(error(SDGO_ERR_UNSUPPORTED, "attention: stride %zu not a multiple of 4", t->nb[i]));
    }
    if (k->ne[0] != q->ne[0] || v->ne[0] != q->ne[0] || k->ne[1] != v->ne[1] || k->ne[2] != q->ne[2] ||
        v->ne[2] != q->ne[2] || k->ne[3] != q->ne[3] || v->ne[3] != q->ne[3])
        return fail(error(SDGO_ERR_INVALID_ARGUMENT, "attention: q %s, k %s, v %s do not match", q->shape_str().c_str(),
                          k->shape_str().c_str(), v->shape_str().c_str()));
    const int64_t ne[4] = {q->ne[0], q->ne[2], q->ne[1], q->ne[3]};
    Tensor * t = new_tensor(DType::f32, 4, ne);
    t->op = Op::attention;
    t->src[0] = q;
    t->src[1] = k;
    t->src[2] = v;
    t->fparams[0] = scale;
    t->iparams[0] = causal ? 1 : 0;
    return t;
}

// ---- shape ops -------------------------------------------------------------

Tensor * Graph::concat(Tensor * a, Tensor * b, int dim) {
    if (!check(a, "concat") || !check(b, "concat")) return fail(Status());
    if (dim < 0 || dim > 3) return fail(error(SDGO_ERR_INVALID_ARGUMENT, "concat: dim %d", dim));
    if (a->type != DType::f32 || b->type != DType::f32)
        return fail(error(SDGO_ERR_UNSUPPORTED, "concat: operands must be f32"));
    int64_t ne[4];
    for (int i = 0; i < 4; i++) {
        if (i != dim && a->ne[i] != b->ne[i])
            return fail(error(SDGO_ERR_INVALID_ARGUMENT, "concat: %s and %s differ outside dim %d",
                              a->shape_str().c_str(), b->shape_str().c_str(), dim));
        ne[i] = i == dim ? a->ne[i] + b->ne[i] : a->ne[i];
    }
    Tensor * t = new_tensor(DType::f32, 4, ne);
    t->op = Op::concat;
    t->src[0] = a;
    t->src[1] = b;
    t->iparams[0] = dim;
    return t;
}

Tensor * Graph::upscale_nearest(Tensor * a, int factor) {
    if (!check(a, "upscale")) return fail(Status());
    if (factor < 1 || factor > 64) return fail(error(SDGO_ERR_INVALID_ARGUMENT, "upscale: factor %d", factor));
    if (a->type != DType::f32) return fail(error(SDGO_ERR_UNSUPPORTED, "upscale: source must be f32"));
    const int64_t ne[4] = {a->ne[0] * factor, a->ne[1] * factor, a->ne[2], a->ne[3]};
    Tensor * t = new_tensor(DType::f32, 4, ne);
    t->op = Op::upscale;
    t->src[0] = a;
    t->iparams[0] = factor;
    return t;
}

Tensor * Graph::resize_nearest(Tensor * a, int64_t w, int64_t h) {
    if (!check(a, "resize")) return fail(Status());
    if (a->type != DType::f32) return fail(error(SDGO_ERR_UNSUPPORTED, "resize: source must be f32"));
    if (w < 1 || h < 1 || w > kMaxDimSize || h > kMaxDimSize)
        return fail(error(SDGO_ERR_INVALID_ARGUMENT, "resize: target %lld x %lld", (long long)w, (long long)h));
    const int64_t ne[4] = {w, h, a->ne[2], a->ne[3]};
    Tensor * t = new_tensor(DType::f32, 4, ne);
    t->op = Op::resize;
    t->src[0] = a;
    return t;
}

Tensor * Graph::pad(Tensor * a, const int lp[4], const int rp[4]) {
    if (!check(a, "pad")) return fail(Status());
    if (a->type != DType::f32) return fail(error(SDGO_ERR_UNSUPPORTED, "pad: source must be f32"));
    int64_t ne[4];
    for (int i = 0; i < 4; i++) {
        if (lp[i] < 0 || rp[i] < 0)
            return fail(error(SDGO_ERR_INVALID_ARGUMENT, "pad: negative padding on dim %d", i));
        ne[i] = a->ne[i] + lp[i] + rp[i];
    }
    Tensor * t = new_tensor(DType::f32, 4, ne);
    t->op = Op::pad;
    t->src[0] = a;
    for (int i = 0; i < 4; i++) {
        t->iparams[2 * i] = lp[i];
        t->iparams[2 * i + 1] = rp[i];
    }
    return t;
}

Tensor * Graph::pad(Tensor * a, int p0, int p1, int p2, int p3) {
    const int lp[4] = {0, 0, 0, 0};
    const int rp[4] = {p0, p1, p2, p3};
    return pad(a, lp, rp);
}

Tensor * Graph::timestep_embedding(Tensor * ts, int dim, float max_period, bool flip_sin_to_cos,
                                   float downscale_freq_shift) {
    if (!check(ts, "timestep_embedding")) return fail(Status());
    if (ts->type != DType::f32 || ts->ne[1] != 1 || ts->ne[2] != 1 || ts->ne[3] != 1)
        return fail(error(SDGO_ERR_INVALID_ARGUMENT, "timestep_embedding: timesteps must be a 1-D f32 tensor, got %s",
                          ts->shape_str().c_str()));
    if (dim < 2 || !(max_period > 0.0f) || !(dim / 2 - downscale_freq_shift > 0.0f))
        return fail(error(SDGO_ERR_INVALID_ARGUMENT, "timestep_embedding: dim %d, max_period %g, shift %g", dim,
                          max_period, downscale_freq_shift));
    const int64_t ne[2] = {dim, ts->ne[0]};
    Tensor * t = new_tensor(DType::f32, 2, ne);
    t->op = Op::timestep_embedding;
    t->src[0] = ts;
    t->iparams[0] = dim;
    t->iparams[1] = flip_sin_to_cos ? 1 : 0;
    t->fparams[0] = max_period;
    t->fparams[1] = downscale_freq_shift;
    return t;
}

Tensor * Graph::get_rows(Tensor * table, Tensor * idx) {
    if (!check(table, "get_rows") || !check(idx, "get_rows")) return fail(Status());
    if (!table->rows_contiguous() || table->ne[2] != 1 || table->ne[3] != 1)
        return fail(error(SDGO_ERR_UNSUPPORTED, "get_rows: table must be 2-D with contiguous rows, got %s",
                          table->shape_str().c_str()));
    if (idx->type != DType::i32 || !idx->is_contiguous() || idx->ne[2] != 1 || idx->ne[3] != 1)
        return fail(error(SDGO_ERR_INVALID_ARGUMENT, "get_rows: indices must be contiguous 1-D/2-D i32, got %s",
                          idx->shape_str().c_str()));
    const int64_t ne[3] = {table->ne[0], idx->ne[0], idx->ne[1]};
    Tensor * t = new_tensor(DType::f32, 3, ne);
    t->op = Op::get_rows;
    t->src[0] = table;
    t->src[1] = idx;
    return t;
}

// ---- reductions ------------------------------------------------------------

Tensor * Graph::reduce(Op op, Tensor * a, bool all) {
    if (!check(a, op_name(op))) return fail(Status());
    if (a->type != DType::f32) return fail(error(SDGO_ERR_UNSUPPORTED, "%s: source must be f32", op_name(op)));
    int64_t ne[4] = {1, a->ne[1], a->ne[2], a->ne[3]};
    if (all) ne[1] = ne[2] = ne[3] = 1;
    Tensor * t = new_tensor(DType::f32, 4, ne);
    t->op = op;
    t->src[0] = a;
    return t;
}

Tensor * Graph::sum_rows(Tensor * a) { return reduce(Op::sum_rows, a, false); }
Tensor * Graph::mean_rows(Tensor * a) { return reduce(Op::mean_rows, a, false); }
Tensor * Graph::sum(Tensor * a) { return reduce(Op::sum, a, true); }
Tensor * Graph::mean(Tensor * a) { return reduce(Op::mean, a, true); }

// ---- outputs and order -----------------------------------------------------

void Graph::set_output(Tensor * t) {
    if (!check(t, "set_output")) return;
    if (backend_ && status_.ok()) {
        status_ = error(SDGO_ERR_INVALID_ARGUMENT, "set_output: the graph is already allocated");
        return;
    }
    if (!(t->flags & kFlagOutput)) {
        t->flags |= kFlagOutput;
        outputs_.push_back(t);
        order_valid_ = false;
    }
}

void Graph::set_name(Tensor * t, const char * name) {
    if (check(t, "set_name") && name) t->name = name;
}

const std::vector<Tensor *> & Graph::outputs() {
    order();
    return outputs_;
}

const std::vector<Tensor *> & Graph::order() {
    if (order_valid_) return order_;
    order_.clear();
    if (outputs_.empty() && !tensors_.empty()) {
        Tensor * last = tensors_.back().get();
        last->flags |= kFlagOutput;
        outputs_.push_back(last);
    }
    // Iterative post-order DFS: sources first, in src[] order.
    std::vector<uint8_t> state(tensors_.size(), 0);  // 0 new, 1 on stack, 2 done
    std::vector<std::pair<Tensor *, int>> stack;
    for (Tensor * out : outputs_) {
        if (state[out->id]) continue;
        stack.push_back({out, 0});
        state[out->id] = 1;
        while (!stack.empty()) {
            auto & top = stack.back();
            Tensor * t = top.first;
            if (top.second < kMaxSrc) {
                Tensor * s = t->src[top.second++];
                if (s && state[s->id] == 0) {
                    state[s->id] = 1;
                    stack.push_back({s, 0});
                }
                continue;
            }
            state[t->id] = 2;
            stack.pop_back();
            if (!t->is_leaf()) order_.push_back(t);
        }
    }
    order_valid_ = true;
    return order_;
}

std::vector<Tensor *> Graph::leaves() const {
    std::vector<Tensor *> out;
    for (const auto & t : tensors_)
        if (t->is_leaf() && (t->flags & (kFlagInput | kFlagWeight))) out.push_back(t.get());
    return out;
}

void Graph::attach(Backend * b, std::unique_ptr<Buffer> arena, size_t arena_bytes) {
    static std::atomic<uint64_t> next_serial{1};
    serial_ = next_serial.fetch_add(1);
    backend_ = b;
    arena_ = std::move(arena);
    arena_bytes_ = arena_bytes;
}

}  // namespace sdgo
