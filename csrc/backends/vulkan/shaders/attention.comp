#version 450
// Attention without a score matrix: one invocation per (query i, head h,
// batch b) walks the keys with an online softmax and keeps its output row
// (at most 256 values) in registers. q [D, Nq, H, B], k and v [D, Nk, H, B],
// f32 with any strides; d is [D, H, Nq, B]. causal keeps keys
// j <= i + (Nk - Nq).

layout(local_size_x = 64) in;

layout(std430, set = 0, binding = 0) readonly buffer Q { float q[]; };
layout(std430, set = 0, binding = 1) readonly buffer K { float k[]; };
layout(std430, set = 0, binding = 2) readonly buffer V { float v[]; };
layout(std430, set = 0, binding = 3) writeonly buffer O { float o[]; };

layout(push_constant) uniform Params {
    uint D, Nq, H, B, Nk;
    uint qs0, qs1, qs2, qs3;
    uint ks0, ks1, ks2, ks3;
    uint vs0, vs1, vs2, vs3;
    uint q_off, k_off, v_off, o_off;
    float scale;
    uint causal;
} pc;

const uint kMaxD = 256u;

void main() {
    const uint id = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * 64u) + gl_GlobalInvocationID.x;
    if (id >= pc.Nq * pc.H * pc.B) return;
    const uint i = id % pc.Nq, h = (id / pc.Nq) % pc.H, b = id / (pc.Nq * pc.H);
    const uint qb = pc.q_off + i * pc.qs1 + h * pc.qs2 + b * pc.qs3;
    const uint lim = pc.causal != 0u ? min(pc.Nk, i + (pc.Nk - pc.Nq) + 1u) : pc.Nk;
    float acc[kMaxD];
    for (uint e = 0u; e < pc.D; e++) acc[e] = 0.0;
    float mx = -1.0 / 0.0, sum = 0.0;
    for (uint j = 0u; j < lim; j++) {
        const uint kb = pc.k_off + j * pc.ks1 + h * pc.ks2 + b * pc.ks3;
        float s = 0.0;
        for (uint e = 0u; e < pc.D; e++) s += q[qb + e * pc.qs0] * k[kb + e * pc.ks0];
        s *= pc.scale;
        const uint vb = pc.v_off + j * pc.vs1 + h * pc.vs2 + b * pc.vs3;
        if (s > mx) {
            const float c = exp(mx - s);  // rescale what was summed so far
            sum = sum * c + 1.0;
            for (uint e = 0u; e < pc.D; e++) acc[e] = acc[e] * c + v[vb + e * pc.vs0];
            mx = s;
        } else {
            const float p = exp(s - mx);
            sum += p;
            for (uint e = 0u; e < pc.D; e++) acc[e] += p * v[vb + e * pc.vs0];
        }
    }
    const float inv = 1.0 / sum;
    const uint ob = pc.o_off + pc.D * (h + pc.H * (i + pc.Nq * b));
    for (uint e = 0u; e < pc.D; e++) o[ob + e] = acc[e] * inv;
}
