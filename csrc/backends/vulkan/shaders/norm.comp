#version 450
// layer_norm (mode 0: each row along ne0) and group_norm (mode 1: each
// group of ne2 / groups channels of one image, over its W x H x channels),
// on f32 with any source strides; optional per-element (layer) or
// per-channel (group) weight and bias; optional SiLU after (fused group
// norm). One workgroup per row or group: the mean, then the variance around
// it (two passes, as the CPU), by shared-memory reductions.

layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 1) readonly buffer Wt { float wt[]; };
layout(std430, set = 0, binding = 2) readonly buffer Bs { float bs[]; };
layout(std430, set = 0, binding = 3) writeonly buffer D { float d[]; };

layout(push_constant) uniform Params {
    uint ne0, ne1, ne2, ne3;
    uint s0, s1, s2, s3;
    uint a_off, w_off, b_off, d_off;
    uint mode, groups, has_w, has_b, silu;
    float eps;
} pc;

shared float red[256];

float reduce_sum(float v) {
    const uint t = gl_LocalInvocationID.x;
    red[t] = v;
    barrier();
    for (uint s = 128u; s > 0u; s >>= 1) {
        if (t < s) red[t] += red[t + s];
        barrier();
    }
    const float r = red[0];
    barrier();
    return r;
}

void main() {
    const uint unit = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    const uint t = gl_LocalInvocationID.x;
    uint count, base, cg = 1u, g = 0u, n = 0u, i1 = 0u, i2 = 0u, i3 = 0u;
    if (pc.mode == 0u) {
        if (unit >= pc.ne1 * pc.ne2 * pc.ne3) return;
        i1 = unit % pc.ne1;
        i2 = (unit / pc.ne1) % pc.ne2;
        i3 = unit / (pc.ne1 * pc.ne2);
        count = pc.ne0;
        base = pc.a_off + i1 * pc.s1 + i2 * pc.s2 + i3 * pc.s3;
    } else {
        if (unit >= pc.groups * pc.ne3) return;
        g = unit % pc.groups;
        n = unit / pc.groups;
        cg = pc.ne2 / pc.groups;
        count = pc.ne0 * pc.ne1 * cg;
        base = pc.a_off + g * cg * pc.s2 + n * pc.s3;
    }
    const uint plane = pc.ne0 * pc.ne1;
    // Element e of this unit: (x, y, c) = (e % ne0, e / ne0 % ne1, e / plane)
    // for a group, (e, 0, 0) for a row.
    float s = 0.0;
    for (uint e = t; e < count; e += 256u) {
        const uint src = pc.mode == 0u ? base + e * pc.s0
                                       : base + (e % pc.ne0) * pc.s0 + (e / pc.ne0 % pc.ne1) * pc.s1 + (e / plane) * pc.s2;
        s += a[src];
    }
    const float mean = reduce_sum(s) / float(count);
    float v = 0.0;
    for (uint e = t; e < count; e += 256u) {
        const uint src = pc.mode == 0u ? base + e * pc.s0
                                       : base + (e % pc.ne0) * pc.s0 + (e / pc.ne0 % pc.ne1) * pc.s1 + (e / plane) * pc.s2;
        const float x = a[src] - mean;
        v += x * x;
    }
    const float inv = inversesqrt(reduce_sum(v) / float(count) + pc.eps);
    for (uint e = t; e < count; e += 256u) {
        uint src, dst, p;
        if (pc.mode == 0u) {
            src = base + e * pc.s0;
            dst = pc.d_off + unit * pc.ne0 + e;
            p = e;
        } else {
            const uint c = g * cg + e / plane;
            src = base + (e % pc.ne0) * pc.s0 + (e / pc.ne0 % pc.ne1) * pc.s1 + (e / plane) * pc.s2;
            dst = pc.d_off + (e % plane) + plane * (c + pc.ne2 * n);
            p = c;
        }
        float y = (a[src] - mean) * inv;
        if (pc.has_w != 0u) y *= wt[pc.w_off + p];
        if (pc.has_b != 0u) y += bs[pc.b_off + p];
        if (pc.silu != 0u) y = y / (1.0 + exp(-y));
        d[dst] = y;
    }
}
