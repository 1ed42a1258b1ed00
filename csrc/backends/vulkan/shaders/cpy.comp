#version 450
// Contiguous copies between float types: the source (f32, f16 or bf16, any
// strides in elements) is converted to the destination type (f32, f16 or
// bf16, contiguous). A 16-bit destination is written two elements per
// invocation, one 32-bit word each, so that no two invocations share a word
// (the element count is even). f32 to f16 and to bf16 round to nearest even,
// as the CPU does.

layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer A { uint a[]; };
layout(std430, set = 0, binding = 1) writeonly buffer D { uint d[]; };

layout(push_constant) uniform Params {
    uint ne0, ne1, ne2, ne3;
    uint s0, s1, s2, s3;   // source strides, elements
    uint a_off, d_off;     // byte offsets
    uint src_type, dst_type, n;
} pc;

#define T_F32 0u
#define T_F16 1u
#define T_BF16 2u

float load(uint e) {
    const uint i0 = e % pc.ne0;
    uint r = e / pc.ne0;
    const uint i1 = r % pc.ne1;
    r /= pc.ne1;
    const uint i2 = r % pc.ne2;
    const uint i3 = r / pc.ne2;
    const uint idx = i0 * pc.s0 + i1 * pc.s1 + i2 * pc.s2 + i3 * pc.s3;
    if (pc.src_type == T_F32) return uintBitsToFloat(a[(pc.a_off >> 2) + idx]);
    const uint addr = pc.a_off + 2u * idx;
    const uint word = a[addr >> 2];
    const uint h = (addr & 2u) != 0u ? (word >> 16) : (word & 0xffffu);
    return pc.src_type == T_F16 ? unpackHalf2x16(h).x : uintBitsToFloat(h << 16);
}

uint to_bf16(float f) {
    const uint u = floatBitsToUint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;  // NaN stays NaN
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

// IEEE binary16, round to nearest even, with subnormals, inf and NaN.
uint to_f16(float f) {
    const uint u = floatBitsToUint(f);
    const uint sign = (u >> 16) & 0x8000u;
    const uint au = u & 0x7fffffffu;
    if (au > 0x7f800000u) return sign | 0x7e00u;                // NaN
    if (au >= 0x477ff000u) return sign | 0x7c00u;               // rounds past 65504: inf
    if (au >= 0x38800000u) {                                    // normal
        const uint m = au - 0x38000000u;                        // rebias 127 -> 15
        return sign | ((m + 0xfffu + ((m >> 13) & 1u)) >> 13);
    }
    if (au < 0x33000000u) return sign;                          // below half the smallest subnormal
    // subnormal: round(|f| / 2^-24) = mant * 2^(e - 126), to nearest even
    const uint e = au >> 23;
    const uint mant = (au & 0x7fffffu) | 0x800000u;
    const uint shift = 126u - e;  // 14..24
    uint q = mant >> shift;
    const uint rem = mant & ((1u << shift) - 1u);
    const uint halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (q & 1u) != 0u)) q += 1u;
    return sign | q;
}

uint convert(float f) { return pc.dst_type == T_F16 ? to_f16(f) : to_bf16(f); }

void main() {
    const uint step = gl_NumWorkGroups.x * 256u;
    if (pc.dst_type == T_F32) {
        for (uint e = gl_GlobalInvocationID.x; e < pc.n; e += step) d[(pc.d_off >> 2) + e] = floatBitsToUint(load(e));
    } else {
        for (uint p = gl_GlobalInvocationID.x; 2u * p < pc.n; p += step)
            d[(pc.d_off >> 2) + p] = convert(load(2u * p)) | (convert(load(2u * p + 1u)) << 16);
    }
}
