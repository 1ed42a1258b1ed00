#version 450
#extension GL_GOOGLE_include_directive : require
// d[n, m, i2, i3] = sum_k w[k, n, i2 / r2, i3 / r3] * x[k, m, i2, i3] (+ bias[n]):
// a 16 x 16 output tile per workgroup, K in steps of 16 through shared
// memory, f32 accumulation. w is any weight type (rows contiguous, read in
// place), x is f32 with any strides.

layout(local_size_x = 16, local_size_y = 16) in;

layout(std430, set = 0, binding = 0) readonly buffer W { uint w[]; };
layout(std430, set = 0, binding = 1) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, set = 0, binding = 3) writeonly buffer D { float d[]; };

#include "common.glsl"

layout(push_constant) uniform Params {
    uint K, N, M, ne2, ne3;      // d is [N, M, ne2, ne3]
    uint wne2, wne3;             // w's batch dims (they divide ne2, ne3)
    uint w_nb1, w_nb2, w_nb3;    // w's strides, bytes
    uint w_off, w_type;          // byte offset of w, its type code
    uint xs0, xs1, xs2, xs3;     // x's strides, elements
    uint x_off, b_off, d_off;    // element offsets
    uint has_bias;
} pc;

shared float tw[16][17];  // [n][k]
shared float tx[16][17];  // [m][k]

void main() {
    const uint tn = gl_LocalInvocationID.x, tm = gl_LocalInvocationID.y;
    const uint n = gl_WorkGroupID.x * 16u + tn;
    const uint m = gl_WorkGroupID.y * 16u + tm;
    const uint b = gl_WorkGroupID.z;
    const uint i2 = b % pc.ne2, i3 = b / pc.ne2;
    const uint w2 = i2 / (pc.ne2 / pc.wne2), w3 = i3 / (pc.ne3 / pc.wne3);
    const uint wbase = pc.w_off + w2 * pc.w_nb2 + w3 * pc.w_nb3;
    const uint xbase = pc.x_off + i2 * pc.xs2 + i3 * pc.xs3;
    // The rows this thread loads: w row n0 + tm, x row m0 + tm (k = tn).
    const uint ln = gl_WorkGroupID.x * 16u + tm;
    const uint lm = gl_WorkGroupID.y * 16u + tm;
    float acc = 0.0;
    for (uint k0 = 0u; k0 < pc.K; k0 += 16u) {
        const uint k = k0 + tn;
        tw[tm][tn] = (ln < pc.N && k < pc.K) ? load_w(pc.w_type, wbase + ln * pc.w_nb1, k) : 0.0;
        tx[tm][tn] = (lm < pc.M && k < pc.K) ? x[xbase + lm * pc.xs1 + k * pc.xs0] : 0.0;
        barrier();
        for (uint kk = 0u; kk < 16u; kk++) acc += tw[tn][kk] * tx[tm][kk];
        barrier();
    }
    if (n < pc.N && m < pc.M) {
        if (pc.has_bias != 0u) acc += bias[pc.b_off + n];
        d[pc.d_off + n + pc.N * (m + pc.M * b)] = acc;
    }
}
