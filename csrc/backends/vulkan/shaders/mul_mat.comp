#version 450
#extension GL_GOOGLE_include_directive : require
// d[n, m, i2, i3] = sum_k w[k, n, i2 / r2, i3 / r3] * x[k, m, i2, i3] (+ bias[n]):
// a 64 x 64 output block per workgroup (tile_gemm.glsl: n on the rows, m on
// the columns), f32 accumulation. w's type is specialization constant 0;
// its rows are contiguous and read in place. x is f32 with any strides.

layout(local_size_x = 256) in;
layout(constant_id = 0) const uint WTYPE = 0u;

layout(std430, set = 0, binding = 0) readonly buffer W { uint w[]; };
layout(std430, set = 0, binding = 1) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, set = 0, binding = 3) writeonly buffer D { float d[]; };

#include "common.glsl"
#include "tile_gemm.glsl"

layout(push_constant) uniform Params {
    uint K, N, M, ne2, ne3;      // d is [N, M, ne2, ne3]
    uint wne2, wne3;             // w's batch dims (they divide ne2, ne3)
    uint w_nb1, w_nb2, w_nb3;    // w's strides, bytes
    uint w_off, w_type;          // byte offset of w, its type code (= WTYPE)
    uint xs0, xs1, xs2, xs3;     // x's strides, elements
    uint x_off, b_off, d_off;    // element offsets
    uint has_bias;
} pc;

void main() {
    const uint t = gl_LocalInvocationIndex;
    const uint tx = t % 16u, ty = t / 16u;
    const uint n0 = gl_WorkGroupID.x * TILE, m0 = gl_WorkGroupID.y * TILE;
    const uint b = gl_WorkGroupID.z;
    const uint i2 = b % pc.ne2, i3 = b / pc.ne2;
    const uint w2 = i2 / (pc.ne2 / pc.wne2), w3 = i3 / (pc.ne3 / pc.wne3);
    const uint wbase = pc.w_off + w2 * pc.w_nb2 + w3 * pc.w_nb3;
    const uint xbase = pc.x_off + i2 * pc.xs2 + i3 * pc.xs3;
    // What this invocation loads each step: four k of one w row and of one x row.
    const uint lr = t / 4u, lk = (t % 4u) * 4u;
    const uint ln = n0 + lr, lm = m0 + lr;
    const uint wrow = wbase + ln * pc.w_nb1;
    const uint xrow = xbase + lm * pc.xs1;
    float acc[16];
    for (uint i = 0u; i < 16u; i++) acc[i] = 0.0;
    for (uint k0 = 0u; k0 < pc.K; k0 += TILE_K) {
        const uint k = k0 + lk;
        const vec4 wv = ln < pc.N ? load_w4(WTYPE, wrow, k, pc.K) : vec4(0.0);
        for (uint q = 0u; q < 4u; q++) {
            ta[lk + q][lr] = wv[q];
            tb[lk + q][lr] = (lm < pc.M && k + q < pc.K) ? x[xrow + (k + q) * pc.xs0] : 0.0;
        }
        barrier();
        tile_step(acc, tx, ty);
        barrier();
    }
    for (uint i = 0u; i < 4u; i++) {
        const uint n = n0 + tx + 16u * i;
        if (n >= pc.N) continue;
        const float bv = pc.has_bias != 0u ? bias[pc.b_off + n] : 0.0;
        for (uint j = 0u; j < 4u; j++) {
            const uint m = m0 + ty + 16u * j;
            if (m < pc.M) d[pc.d_off + n + pc.N * (m + pc.M * b)] = acc[i * 4u + j] + bv;
        }
    }
}
