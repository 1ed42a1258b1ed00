// common.glsl — included by the shaders that read weights: element types
// decoded from a buffer of 32-bit words, with byte addressing, so that f16,
// bf16 and ggml's block types are read in place (no expanded copy) and
// dequantized in registers. The type codes match weight_code() in
// vk_compute.cpp; the block layouts are ggml's (docs/quant-formats.md).
//
// The including shader declares `uint w[]` (the weight words) before this.
// Shaders that take the weight type as specialization constant 0 (WTYPE)
// get one pipeline per type, with the type switch folded away.

#define T_F32 0u
#define T_F16 1u
#define T_BF16 2u
#define T_Q8_0 3u
#define T_Q4_0 4u
#define T_Q4_1 5u
#define T_Q5_0 6u
#define T_Q5_1 7u

uint w_byte(uint addr) { return (w[addr >> 2] >> ((addr & 3u) * 8u)) & 0xffu; }
// A 16-bit value at an even byte address.
uint w_u16(uint addr) {
    const uint word = w[addr >> 2];
    return (addr & 2u) != 0u ? (word >> 16) : (word & 0xffffu);
}
uint w_u32_unaligned(uint addr) {
    return w_byte(addr) | (w_byte(addr + 1u) << 8) | (w_byte(addr + 2u) << 16) | (w_byte(addr + 3u) << 24);
}
float half_to_float(uint h) { return unpackHalf2x16(h).x; }

// Element k of the row that starts at byte `row` (rows of block types start
// at a block boundary; f32 rows at a multiple of 4, f16 / bf16 at a
// multiple of 2).
float load_w(uint type, uint row, uint k) {
    if (type == T_F32) return uintBitsToFloat(w[(row >> 2) + k]);
    if (type == T_F16) return half_to_float(w_u16(row + 2u * k));
    if (type == T_BF16) return uintBitsToFloat(w_u16(row + 2u * k) << 16);
    const uint j = k & 31u;
    if (type == T_Q8_0) {
        const uint blk = row + (k >> 5) * 34u;
        const int q = int(w_byte(blk + 2u + j) << 24) >> 24;
        return half_to_float(w_u16(blk)) * float(q);
    }
    if (type == T_Q4_0 || type == T_Q4_1) {
        const uint bsz = type == T_Q4_0 ? 18u : 20u;
        const uint blk = row + (k >> 5) * bsz;
        const uint qs = blk + bsz - 16u;
        const uint q = j < 16u ? (w_byte(qs + j) & 15u) : (w_byte(qs + j - 16u) >> 4);
        const float d = half_to_float(w_u16(blk));
        return type == T_Q4_0 ? d * (float(q) - 8.0) : d * float(q) + half_to_float(w_u16(blk + 2u));
    }
    // Q5_0, Q5_1
    const uint bsz = type == T_Q5_0 ? 22u : 24u;
    const uint blk = row + (k >> 5) * bsz;
    const uint qh = w_u32_unaligned(blk + bsz - 20u);
    const uint qs = blk + bsz - 16u;
    const uint lo = j < 16u ? (w_byte(qs + j) & 15u) : (w_byte(qs + j - 16u) >> 4);
    const uint q = lo | (((qh >> j) & 1u) << 4);
    const float d = half_to_float(w_u16(blk));
    return type == T_Q5_0 ? d * (float(q) - 16.0) : d * float(q) + half_to_float(w_u16(blk + 2u));
}

// Elements k .. k+3 of a row (k a multiple of 4; a block type never has a
// group of four straddling two blocks, since its blocks hold 32). Elements at
// or past `K` read as 0.
vec4 load_w4(uint type, uint row, uint k, uint K) {
    if (k + 3u >= K) {
        vec4 v = vec4(0.0);
        for (uint i = 0u; i < 4u; i++)
            if (k + i < K) v[i] = load_w(type, row, k + i);
        return v;
    }
    if (type == T_F16) {
        const uint addr = row + 2u * k;
        if ((addr & 3u) == 0u) {
            const uint i = addr >> 2;
            return vec4(unpackHalf2x16(w[i]), unpackHalf2x16(w[i + 1u]));
        }
    }
    if (type == T_F32) {
        const uint i = (row >> 2) + k;
        return uintBitsToFloat(uvec4(w[i], w[i + 1u], w[i + 2u], w[i + 3u]));
    }
    return vec4(load_w(type, row, k), load_w(type, row, k + 1u), load_w(type, row, k + 2u), load_w(type, row, k + 3u));
}
