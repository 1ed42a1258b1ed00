#version 450
// Softmax along ne0 of f32 rows (any strides): one workgroup per row, the
// max and the sum of exponentials by shared-memory reductions. scale
// multiplies the inputs first; causal keeps only j <= i1 + (ne0 - ne1) of
// row i1 (the rest become 0).

layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 1) writeonly buffer D { float d[]; };

layout(push_constant) uniform Params {
    uint ne0, ne1, ne2, ne3;
    uint s0, s1, s2, s3;  // a's strides, elements
    uint a_off, d_off;
    float scale;
    uint causal;
} pc;

shared float red[256];

void main() {
    const uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (row >= pc.ne1 * pc.ne2 * pc.ne3) return;
    const uint i1 = row % pc.ne1, i2 = (row / pc.ne1) % pc.ne2, i3 = row / (pc.ne1 * pc.ne2);
    const uint base = pc.a_off + i1 * pc.s1 + i2 * pc.s2 + i3 * pc.s3;
    const uint out_row = pc.d_off + row * pc.ne0;
    const uint t = gl_LocalInvocationID.x;
    const uint lim = pc.causal != 0u ? min(pc.ne0, i1 + (pc.ne0 - pc.ne1) + 1u) : pc.ne0;

    float mx = -1.0 / 0.0;
    for (uint j = t; j < lim; j += 256u) mx = max(mx, pc.scale * a[base + j * pc.s0]);
    red[t] = mx;
    barrier();
    for (uint s = 128u; s > 0u; s >>= 1) {
        if (t < s) red[t] = max(red[t], red[t + s]);
        barrier();
    }
    mx = red[0];
    barrier();
    float sum = 0.0;
    for (uint j = t; j < lim; j += 256u) sum += exp(pc.scale * a[base + j * pc.s0] - mx);
    red[t] = sum;
    barrier();
    for (uint s = 128u; s > 0u; s >>= 1) {
        if (t < s) red[t] += red[t + s];
        barrier();
    }
    const float inv = 1.0 / red[0];
    for (uint j = t; j < pc.ne0; j += 256u)
        d[out_row + j] = j < lim ? exp(pc.scale * a[base + j * pc.s0] - mx) * inv : 0.0;
}
