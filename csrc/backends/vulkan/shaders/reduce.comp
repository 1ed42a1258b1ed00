#version 450
// Sums of f32 (any strides): mode 0 sum_rows, 1 mean_rows (one workgroup
// per row along ne0), mode 2 sum, 3 mean (one workgroup over everything).

layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 1) writeonly buffer D { float d[]; };

layout(push_constant) uniform Params {
    uint ne0, ne1, ne2, ne3;
    uint s0, s1, s2, s3;
    uint a_off, d_off, mode;
} pc;

shared float red[256];

void main() {
    const uint t = gl_LocalInvocationID.x;
    const uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    const bool rows = pc.mode < 2u;
    const uint nrows = pc.ne1 * pc.ne2 * pc.ne3;
    if (rows && row >= nrows) return;
    float s = 0.0;
    if (rows) {
        const uint base = pc.a_off + (row % pc.ne1) * pc.s1 + (row / pc.ne1 % pc.ne2) * pc.s2 + (row / (pc.ne1 * pc.ne2)) * pc.s3;
        for (uint j = t; j < pc.ne0; j += 256u) s += a[base + j * pc.s0];
    } else {
        const uint n = pc.ne0 * nrows;
        for (uint e = t; e < n; e += 256u) {
            const uint r = e / pc.ne0;
            s += a[pc.a_off + (e % pc.ne0) * pc.s0 + (r % pc.ne1) * pc.s1 + (r / pc.ne1 % pc.ne2) * pc.s2 +
                   (r / (pc.ne1 * pc.ne2)) * pc.s3];
        }
    }
    red[t] = s;
    barrier();
    for (uint k = 128u; k > 0u; k >>= 1) {
        if (t < k) red[t] += red[t + k];
        barrier();
    }
    if (t == 0u) {
        const float count = rows ? float(pc.ne0) : float(pc.ne0 * nrows);
        d[pc.d_off + (rows ? row : 0u)] = (pc.mode == 1u || pc.mode == 3u) ? red[0] / count : red[0];
    }
}
