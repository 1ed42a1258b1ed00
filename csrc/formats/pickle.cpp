#include "formats/pickle.h"

#include <cstring>

namespace sdgo::formats {

namespace {

struct ElemRow {
    const char * storage;  // torch.<storage>
    const char * dtype;    // torch.<dtype>
    StoredType stored;
    DType type;
    int size;
};

const ElemRow kElems[] = {
    {"FloatStorage", "float32", StoredType::ggml, DType::f32, 4},
    {"DoubleStorage", "float64", StoredType::ggml, DType::f64, 8},
    {"HalfStorage", "float16", StoredType::ggml, DType::f16, 2},
    {"BFloat16Storage", "bfloat16", StoredType::ggml, DType::bf16, 2},
    {"LongStorage", "int64", StoredType::ggml, DType::i64, 8},
    {"IntStorage", "int32", StoredType::ggml, DType::i32, 4},
    {"ShortStorage", "int16", StoredType::ggml, DType::i16, 2},
    {"CharStorage", "int8", StoredType::ggml, DType::i8, 1},
    {"ByteStorage", "uint8", StoredType::u8, DType::f32, 1},
    {"BoolStorage", "bool", StoredType::boolean, DType::f32, 1},
    {"ComplexFloatStorage", "complex64", StoredType::c64, DType::f32, 8},
    {"ComplexDoubleStorage", "complex128", StoredType::c128, DType::f32, 16},
    {nullptr, "float", StoredType::ggml, DType::f32, 4},
    {nullptr, "half", StoredType::ggml, DType::f16, 2},
    {nullptr, "double", StoredType::ggml, DType::f64, 8},
    {nullptr, "long", StoredType::ggml, DType::i64, 8},
    {nullptr, "int", StoredType::ggml, DType::i32, 4},
    {nullptr, "uint16", StoredType::u16, DType::f32, 2},
    {nullptr, "uint32", StoredType::u32, DType::f32, 4},
    {nullptr, "uint64", StoredType::u64, DType::f32, 8},
    {nullptr, "float8_e4m3fn", StoredType::f8_e4m3, DType::f32, 1},
    {nullptr, "float8_e5m2", StoredType::f8_e5m2, DType::f32, 1},
    {nullptr, "float8_e4m3fnuz", StoredType::f8_e4m3fnuz, DType::f32, 1},
    {nullptr, "float8_e5m2fnuz", StoredType::f8_e5m2fnuz, DType::f32, 1},
    {nullptr, "float8_e8m0fnu", StoredType::f8_e8m0, DType::f32, 1},
    {"UntypedStorage", nullptr, StoredType::u8, DType::f32, 1},
};

// Globals a checkpoint may reference (module.name).
enum class G { none, ordered_dict, rebuild_tensor, rebuild_tensor_v2, rebuild_tensor_v3, rebuild_parameter,
               rebuild_parameter_state, storage, dtype, size, device, codecs_encode };

G classify(const std::string & mod, const std::string & name) {
    if (mod == "collections" && name == "OrderedDict") return G::ordered_dict;
    if (mod == "torch._utils") {
        if (name == "_rebuild_tensor") return G::rebuild_tensor;
        if (name == "_rebuild_tensor_v2") return G::rebuild_tensor_v2;
        if (name == "_rebuild_tensor_v3") return G::rebuild_tensor_v3;
        if (name == "_rebuild_parameter") return G::rebuild_parameter;
        if (name == "_rebuild_parameter_with_state") return G::rebuild_parameter_state;
    }
    if (mod == "torch") {
        TorchElem e;
        if (torch_storage_elem(name, &e)) return G::storage;
        if (torch_dtype_elem(name, &e)) return G::dtype;
        if (name == "Size") return G::size;
        if (name == "device") return G::device;
    }
    if (mod == "_codecs" && name == "encode") return G::codecs_encode;
    return G::none;
}

constexpr size_t kMaxLine = 4096;
constexpr size_t kMaxDims = 64;

}  // namespace

bool torch_storage_elem(const std::string & name, TorchElem * out) {
    for (const auto & r : kElems)
        if (r.storage && name == r.storage) {
            *out = TorchElem{r.stored, r.type, r.size, r.storage};
            return true;
        }
    return false;
}

bool torch_dtype_elem(const std::string & name, TorchElem * out) {
    for (const auto & r : kElems)
        if (r.dtype && name == r.dtype) {
            *out = TorchElem{r.stored, r.type, r.size, r.dtype};
            return true;
        }
    return false;
}

uint32_t Unpickler::add(PNode n) {
    elements_ += 1 + n.v.size();
    nodes.push_back(std::move(n));
    return (uint32_t)(nodes.size() - 1);
}

uint32_t Unpickler::dict_get(uint32_t dict, const std::string & key) const {
    const PNode & d = nodes[dict];
    if (d.kind != PNode::dict) return UINT32_MAX;
    for (size_t k = 0; k + 1 < d.v.size(); k += 2) {
        const PNode & kn = nodes[d.v[k]];
        if (kn.kind == PNode::str && kn.s == key) return d.v[k + 1];
    }
    return UINT32_MAX;
}

Status Unpickler::run(const uint8_t * data, size_t size, size_t pos, uint32_t * root, size_t * end_pos) {
    Reader r(data, size, pos);
    elements_ = 0;
    element_budget_ = (size - pos) * kElementsPerByte + kElementAllowance;
    std::vector<uint32_t> stack;
    std::vector<size_t> marks;
    std::unordered_map<uint64_t, uint32_t> memo;

    auto fail = [&](const char * fmt, const std::string & a = std::string()) -> Status {
        std::string m = strprintf("pickle: ");
        m += strprintf(fmt, a.c_str());
        m += strprintf(" (at byte %zu)", r.pos());
        return Status(SDGO_ERR_FORMAT, m);
    };
    auto trunc = [&]() { return fail("truncated stream%s"); };
    auto pop = [&](uint32_t * v) -> bool {
        if (stack.empty() || (!marks.empty() && stack.size() <= marks.back())) return false;
        *v = stack.back();
        stack.pop_back();
        return true;
    };
    auto pop_mark = [&](size_t * start) -> bool {
        if (marks.empty()) return false;
        *start = marks.back();
        marks.pop_back();
        return *start <= stack.size();
    };
    auto push_new = [&](PNode n) { stack.push_back(add(std::move(n))); };
    auto read_line = [&](std::string * s) -> bool {
        size_t rem = r.remaining();
        const uint8_t * p = r.ptr();
        size_t lim = rem < kMaxLine ? rem : kMaxLine;
        const void * nl = std::memchr(p, '\n', lim);
        if (!nl) return false;
        size_t n = (size_t)(static_cast<const uint8_t *>(nl) - p);
        s->assign(reinterpret_cast<const char *>(p), n);
        r.skip(n + 1);
        return true;
    };
    auto make_global = [&](const std::string & mod, const std::string & name) -> Status {
        if (classify(mod, name) == G::none)
            return Status(SDGO_ERR_FORMAT, "pickle references forbidden global " + mod + "." + name +
                                               " (only tensor-rebuilding globals are allowed; nothing is executed)");
        PNode n;
        n.kind = PNode::global;
        n.s = mod + "\n" + name;
        push_new(std::move(n));
        return Status();
    };
    auto int_of = [&](uint32_t idx, int64_t * out) -> bool {
        const PNode & n = nodes[idx];
        if (n.kind == PNode::integer || n.kind == PNode::boolean) { *out = n.i; return true; }
        return false;
    };
    auto ints_of = [&](uint32_t idx, std::vector<int64_t> * out) -> bool {
        const PNode & n = nodes[idx];
        if (n.kind != PNode::tuple && n.kind != PNode::list) return false;
        if (n.v.size() > kMaxDims) return false;
        out->clear();
        for (uint32_t e : n.v) {
            int64_t x;
            if (!int_of(e, &x)) return false;
            out->push_back(x);
        }
        return true;
    };
    auto global_parts = [&](const PNode & g, std::string * mod, std::string * name) {
        size_t k = g.s.find('\n');
        *mod = g.s.substr(0, k);
        *name = g.s.substr(k + 1);
    };
    // Builds a tensor node from _rebuild_tensor* arguments.
    auto rebuild = [&](G which, const PNode & args) -> Status {
        size_t need = which == G::rebuild_tensor ? 4 : which == G::rebuild_tensor_v3 ? 7 : 6;
        if (args.kind != PNode::tuple || args.v.size() < need) return fail("_rebuild_tensor called with bad arguments%s");
        const PNode & sn = nodes[args.v[0]];
        if (sn.kind != PNode::storage) return fail("_rebuild_tensor argument 0 is not a storage%s");
        PTensor t;
        t.storage = (uint32_t)sn.i;
        t.elem = storages[t.storage].elem;
        if (!int_of(args.v[1], &t.offset) || t.offset < 0) return fail("bad storage offset%s");
        if (!ints_of(args.v[2], &t.size) || !ints_of(args.v[3], &t.stride) || t.size.size() != t.stride.size())
            return fail("bad tensor size/stride%s");
        for (size_t k = 0; k < t.size.size(); k++)
            if (t.size[k] < 0 || t.stride[k] < 0) return fail("negative tensor size or stride%s");
        if (which == G::rebuild_tensor_v3) {
            const PNode & dn = nodes[args.v[6]];
            std::string mod, name;
            if (dn.kind != PNode::global) return fail("_rebuild_tensor_v3 dtype is not a torch dtype%s");
            global_parts(dn, &mod, &name);
            if (!torch_dtype_elem(name, &t.elem)) return fail("unknown dtype torch.%s", name);
        }
        PNode n;
        n.kind = PNode::tensor;
        n.i = (int64_t)tensors.size();
        tensors.push_back(std::move(t));
        push_new(std::move(n));
        return Status();
    };

    for (;;) {
        if (elements_ > element_budget_)
            return fail("the stream builds more than %s items, over 16 per byte of it: refused as an amplification",
                        std::to_string(element_budget_));
        uint8_t op;
        if (!r.read(&op)) return trunc();
        switch (op) {
            case 0x80: {  // PROTO
                uint8_t p;
                if (!r.read(&p)) return trunc();
                if (p > 5) return fail("unsupported pickle protocol%s");
                break;
            }
            case 0x95: {  // FRAME
                uint64_t n;
                if (!r.read(&n)) return trunc();
                break;
            }
            case '.': {  // STOP
                uint32_t v;
                if (!pop(&v)) return fail("STOP with an empty stack%s");
                *root = v;
                *end_pos = r.pos();
                return Status();
            }
            case '(': marks.push_back(stack.size()); break;
            case '0': { uint32_t v; if (!pop(&v)) return fail("POP on empty stack%s"); break; }
            case '1': { size_t s; if (!pop_mark(&s)) return fail("POP_MARK without MARK%s"); stack.resize(s); break; }
            case '2': { if (stack.empty()) return fail("DUP on empty stack%s"); stack.push_back(stack.back()); break; }
            case 'N': push_new(PNode{}); break;
            case 0x88: case 0x89: { PNode n; n.kind = PNode::boolean; n.i = op == 0x88; push_new(std::move(n)); break; }
            case 'K': { uint8_t v; if (!r.read(&v)) return trunc(); PNode n; n.kind = PNode::integer; n.i = v; push_new(std::move(n)); break; }
            case 'M': { uint16_t v; if (!r.read(&v)) return trunc(); PNode n; n.kind = PNode::integer; n.i = v; push_new(std::move(n)); break; }
            case 'J': { int32_t v; if (!r.read(&v)) return trunc(); PNode n; n.kind = PNode::integer; n.i = v; push_new(std::move(n)); break; }
            case 'I': case 'L': {  // INT / LONG (text)
                std::string s;
                if (!read_line(&s)) return trunc();
                if (!s.empty() && s.back() == 'L') s.pop_back();
                PNode n;
                if (op == 'I' && (s == "00" || s == "01")) { n.kind = PNode::boolean; n.i = s == "01"; }
                else {
                    char * e = nullptr;
                    errno = 0;
                    long long x = std::strtoll(s.c_str(), &e, 10);
                    if (s.empty() || *e != 0 || errno) return fail("bad integer literal%s");
                    n.kind = PNode::integer;
                    n.i = x;
                }
                push_new(std::move(n));
                break;
            }
            case 0x8a: case 0x8b: {  // LONG1 / LONG4
                uint64_t len;
                if (op == 0x8a) { uint8_t l; if (!r.read(&l)) return trunc(); len = l; }
                else { int32_t l; if (!r.read(&l)) return trunc(); if (l < 0) return fail("negative LONG4 length%s"); len = (uint64_t)l; }
                const uint8_t * p = r.take(len);
                if (!p) return trunc();
                PNode n;
                if (len <= 8) {
                    uint64_t u = 0;
                    for (size_t k = 0; k < len; k++) u |= (uint64_t)p[k] << (8 * k);
                    if (len > 0 && len < 8 && (p[len - 1] & 0x80)) u |= ~0ull << (8 * len);
                    n.kind = PNode::integer;
                    n.i = (int64_t)u;
                } else {
                    n.kind = PNode::bigint;
                    n.s.assign(reinterpret_cast<const char *>(p), (size_t)len);
                }
                push_new(std::move(n));
                break;
            }
            case 'G': {
                uint8_t b[8];
                if (!r.read_bytes(b, 8)) return trunc();
                uint8_t le[8];
                for (int k = 0; k < 8; k++) le[k] = b[7 - k];
                PNode n;
                n.kind = PNode::real;
                std::memcpy(&n.f, le, 8);
                push_new(std::move(n));
                break;
            }
            case 'F': {
                std::string s;
                if (!read_line(&s)) return trunc();
                PNode n;
                n.kind = PNode::real;
                n.f = std::strtod(s.c_str(), nullptr);
                push_new(std::move(n));
                break;
            }
            case 'X': case 0x8c: case 0x8d: case 'T': case 'U': case 'B': case 'C': case 0x8e: case 0x96: {
                uint64_t len;
                if (op == 0x8c || op == 'U' || op == 'C') { uint8_t l; if (!r.read(&l)) return trunc(); len = l; }
                else if (op == 0x8d || op == 0x8e || op == 0x96) { if (!r.read(&len)) return trunc(); }
                else if (op == 'T') { int32_t l; if (!r.read(&l)) return trunc(); if (l < 0) return fail("negative string length%s"); len = (uint64_t)l; }
                else { uint32_t l; if (!r.read(&l)) return trunc(); len = l; }
                const uint8_t * p = r.take(len);
                if (!p) return trunc();
                PNode n;
                n.kind = (op == 'X' || op == 0x8c || op == 0x8d || op == 'T' || op == 'U') ? PNode::str : PNode::bytes;
                n.s.assign(reinterpret_cast<const char *>(p), (size_t)len);
                push_new(std::move(n));
                break;
            }
            case ')': { PNode n; n.kind = PNode::tuple; push_new(std::move(n)); break; }
            case ']': { PNode n; n.kind = PNode::list; push_new(std::move(n)); break; }
            case '}': { PNode n; n.kind = PNode::dict; push_new(std::move(n)); break; }
            case 0x8f: { PNode n; n.kind = PNode::set; push_new(std::move(n)); break; }
            case 't': case 'l': case 'd': case 0x91: {  // TUPLE / LIST / DICT / FROZENSET from mark
                size_t s;
                if (!pop_mark(&s)) return fail("container opcode without MARK%s");
                PNode n;
                n.kind = op == 't' ? PNode::tuple : op == 'l' ? PNode::list : op == 'd' ? PNode::dict : PNode::set;
                if (op == 'd' && (stack.size() - s) % 2) return fail("DICT with an odd number of items%s");
                n.v.assign(stack.begin() + (long)s, stack.end());
                stack.resize(s);
                push_new(std::move(n));
                break;
            }
            case 0x85: case 0x86: case 0x87: {
                size_t k = (size_t)(op - 0x84);
                if (stack.size() < k || (!marks.empty() && stack.size() - k < marks.back())) return fail("TUPLEn on a short stack%s");
                PNode n;
                n.kind = PNode::tuple;
                n.v.assign(stack.end() - (long)k, stack.end());
                stack.resize(stack.size() - k);
                push_new(std::move(n));
                break;
            }
            case 'a': {  // APPEND
                uint32_t v;
                if (!pop(&v) || stack.empty()) return fail("APPEND on a short stack%s");
                PNode & l = nodes[stack.back()];
                if (l.kind != PNode::list) return fail("APPEND to a non-list%s");
                l.v.push_back(v);
                break;
            }
            case 'e': case 0x90: {  // APPENDS / ADDITEMS
                size_t s;
                if (!pop_mark(&s) || s == 0) return fail("APPENDS without MARK or target%s");
                PNode & l = nodes[stack[s - 1]];
                if ((op == 'e' && l.kind != PNode::list) || (op == 0x90 && l.kind != PNode::set)) return fail("APPENDS/ADDITEMS to a wrong container%s");
                l.v.insert(l.v.end(), stack.begin() + (long)s, stack.end());
                stack.resize(s);
                break;
            }
            case 's': {  // SETITEM
                uint32_t v, k;
                if (!pop(&v) || !pop(&k) || stack.empty()) return fail("SETITEM on a short stack%s");
                PNode & d = nodes[stack.back()];
                if (d.kind != PNode::dict) return fail("SETITEM on a non-dict%s");
                d.v.push_back(k);
                d.v.push_back(v);
                break;
            }
            case 'u': {  // SETITEMS
                size_t s;
                if (!pop_mark(&s) || s == 0 || (stack.size() - s) % 2) return fail("SETITEMS without MARK, target or pairs%s");
                PNode & d = nodes[stack[s - 1]];
                if (d.kind != PNode::dict) return fail("SETITEMS on a non-dict%s");
                d.v.insert(d.v.end(), stack.begin() + (long)s, stack.end());
                stack.resize(s);
                break;
            }
            case 'c': {  // GLOBAL
                std::string mod, name;
                if (!read_line(&mod) || !read_line(&name)) return trunc();
                SDGO_TRY(make_global(mod, name));
                break;
            }
            case 0x93: {  // STACK_GLOBAL
                uint32_t nm, md;
                if (!pop(&nm) || !pop(&md)) return fail("STACK_GLOBAL on a short stack%s");
                if (nodes[nm].kind != PNode::str || nodes[md].kind != PNode::str) return fail("STACK_GLOBAL needs two strings%s");
                std::string mod = nodes[md].s, name = nodes[nm].s;
                SDGO_TRY(make_global(mod, name));
                break;
            }
            case 'R': case 0x81: {  // REDUCE / NEWOBJ
                uint32_t a, f;
                if (!pop(&a) || !pop(&f)) return fail("REDUCE on a short stack%s");
                const PNode & fn = nodes[f];
                if (fn.kind != PNode::global) return fail("REDUCE on a non-callable value%s");
                std::string mod, name;
                global_parts(fn, &mod, &name);
                const PNode args = nodes[a];  // copy: nodes may grow below
                if (args.kind != PNode::tuple) return fail("REDUCE arguments are not a tuple%s");
                G g = classify(mod, name);
                switch (g) {
                    case G::ordered_dict: {
                        PNode d;
                        d.kind = PNode::dict;
                        if (!args.v.empty()) {  // OrderedDict([(k, v), ...])
                            const PNode & items = nodes[args.v[0]];
                            if (items.kind != PNode::list && items.kind != PNode::tuple) return fail("OrderedDict argument is not a sequence%s");
                            for (uint32_t it : items.v) {
                                const PNode & pr = nodes[it];
                                if ((pr.kind != PNode::tuple && pr.kind != PNode::list) || pr.v.size() != 2) return fail("OrderedDict item is not a pair%s");
                                d.v.push_back(pr.v[0]);
                                d.v.push_back(pr.v[1]);
                            }
                        }
                        push_new(std::move(d));
                        break;
                    }
                    case G::rebuild_tensor: case G::rebuild_tensor_v2: case G::rebuild_tensor_v3:
                        if (op != 'R') return fail("NEWOBJ on a function%s");
                        SDGO_TRY(rebuild(g, args));
                        break;
                    case G::rebuild_parameter: case G::rebuild_parameter_state: {
                        if (args.v.empty() || nodes[args.v[0]].kind != PNode::tensor) return fail("_rebuild_parameter without a tensor%s");
                        stack.push_back(args.v[0]);
                        break;
                    }
                    case G::size: {
                        PNode t;
                        t.kind = PNode::tuple;
                        if (!args.v.empty()) {
                            const PNode & seq = nodes[args.v[0]];
                            if (seq.kind != PNode::tuple && seq.kind != PNode::list) return fail("torch.Size argument is not a sequence%s");
                            t.v = seq.v;
                        }
                        push_new(std::move(t));
                        break;
                    }
                    case G::device: {
                        PNode s;
                        s.kind = PNode::str;
                        if (!args.v.empty() && nodes[args.v[0]].kind == PNode::str) s.s = nodes[args.v[0]].s;
                        push_new(std::move(s));
                        break;
                    }
                    case G::codecs_encode: {
                        if (args.v.empty() || nodes[args.v[0]].kind != PNode::str) return fail("_codecs.encode needs a string%s");
                        // latin1: each code point < 256 becomes one byte.
                        const std::string & u = nodes[args.v[0]].s;
                        PNode b;
                        b.kind = PNode::bytes;
                        for (size_t k = 0; k < u.size();) {
                            unsigned char c = (unsigned char)u[k];
                            if (c < 0x80) { b.s.push_back((char)c); k++; }
                            else if ((c & 0xE0) == 0xC0 && k + 1 < u.size()) {
                                b.s.push_back((char)(((c & 0x1F) << 6) | ((unsigned char)u[k + 1] & 0x3F)));
                                k += 2;
                            } else return fail("_codecs.encode of a non-latin1 string%s");
                        }
                        push_new(std::move(b));
                        break;
                    }
                    default:
                        return Status(SDGO_ERR_FORMAT, "pickle: calling " + mod + "." + name + " is not allowed");
                }
                break;
            }
            case 'b': {  // BUILD: state is ignored for dicts and tensors
                uint32_t st;
                if (!pop(&st) || stack.empty()) return fail("BUILD on a short stack%s");
                PNode::Kind k = nodes[stack.back()].kind;
                if (k != PNode::dict && k != PNode::tensor) return fail("BUILD on an object that is not a dict or tensor%s");
                break;
            }
            case 'Q': {  // BINPERSID
                uint32_t pid;
                if (!pop(&pid)) return fail("BINPERSID on empty stack%s");
                const PNode t = nodes[pid];
                if (t.kind != PNode::tuple || t.v.size() < 5 || nodes[t.v[0]].kind != PNode::str || nodes[t.v[0]].s != "storage")
                    return fail("persistent id is not a ('storage', ...) tuple%s");
                if (legacy_ ? t.v.size() != 6 : t.v.size() != 5) return fail("persistent id has the wrong arity%s");
                const PNode & ty = nodes[t.v[1]];
                const PNode & key = nodes[t.v[2]];
                const PNode & loc = nodes[t.v[3]];
                int64_t numel;
                if (ty.kind != PNode::global) return fail("persistent id storage type is not a global%s");
                std::string mod, name;
                global_parts(ty, &mod, &name);
                TorchElem elem;
                if (mod != "torch" || !torch_storage_elem(name, &elem)) return fail("persistent id names unknown storage type %s", name);
                if (key.kind != PNode::str) return fail("storage key is not a string%s");
                if (!int_of(t.v[4], &numel) || numel < 0) return fail("bad storage size%s");
                if (legacy_ && nodes[t.v[5]].kind != PNode::none)
                    return Status(SDGO_ERR_UNSUPPORTED, "pickle: legacy storage views are not supported");
                uint32_t si;
                auto it = storage_by_key.find(key.s);
                if (it != storage_by_key.end()) {
                    si = it->second;
                    if (storages[si].elem.size != elem.size || storages[si].numel != numel)
                        return fail("storage %s is declared twice with different types", key.s);
                } else {
                    si = (uint32_t)storages.size();
                    PStorage ps;
                    ps.key = key.s;
                    ps.elem = elem;
                    ps.numel = numel;
                    if (loc.kind == PNode::str) ps.location = loc.s;
                    storages.push_back(std::move(ps));
                    storage_by_key[key.s] = si;
                }
                PNode n;
                n.kind = PNode::storage;
                n.i = si;
                push_new(std::move(n));
                break;
            }
            case 'q': case 'r': case 0x94: case 'p': {  // BINPUT / LONG_BINPUT / MEMOIZE / PUT
                uint64_t idx;
                if (op == 'q') { uint8_t v; if (!r.read(&v)) return trunc(); idx = v; }
                else if (op == 'r') { uint32_t v; if (!r.read(&v)) return trunc(); idx = v; }
                else if (op == 'p') {
                    std::string s;
                    if (!read_line(&s)) return trunc();
                    char * e = nullptr;
                    idx = std::strtoull(s.c_str(), &e, 10);
                    if (s.empty() || *e) return fail("bad PUT index%s");
                } else idx = memo.size();
                if (stack.empty()) return fail("memo store from an empty stack%s");
                memo[idx] = stack.back();
                break;
            }
            case 'h': case 'j': case 'g': {  // BINGET / LONG_BINGET / GET
                uint64_t idx;
                if (op == 'h') { uint8_t v; if (!r.read(&v)) return trunc(); idx = v; }
                else if (op == 'j') { uint32_t v; if (!r.read(&v)) return trunc(); idx = v; }
                else {
                    std::string s;
                    if (!read_line(&s)) return trunc();
                    char * e = nullptr;
                    idx = std::strtoull(s.c_str(), &e, 10);
                    if (s.empty() || *e) return fail("bad GET index%s");
                }
                auto it = memo.find(idx);
                if (it == memo.end()) return fail("memo index not defined%s");
                stack.push_back(it->second);
                break;
            }
            case 'P':
                return fail("text persistent ids (PERSID) are not allowed%s");
            case 'i': case 'o': case 0x82: case 0x83: case 0x84:
                return Status(SDGO_ERR_FORMAT, strprintf("pickle: opcode 0x%02x (object construction / extension registry) is not allowed", op));
            default:
                return Status(SDGO_ERR_FORMAT, strprintf("pickle: unsupported opcode 0x%02x at byte %zu", op, r.pos() - 1));
        }
    }
}

}  // namespace sdgo::formats
