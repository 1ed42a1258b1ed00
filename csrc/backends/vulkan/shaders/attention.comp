#version 450
// Attention without a score matrix (flash-style): a workgroup of 64
// invocations takes 64 queries of one (head, batch), one query each, and
// walks the keys in blocks that the workgroup first copies into shared
// memory; each invocation keeps its scaled query and its output row in
// registers and folds the keys in with an online softmax. The head size is
// specialization constant 0 (one pipeline per head size, at most 256), so
// the per-element loops have fixed bounds. q [D, Nq, H, B], k and v
// [D, Nk, H, B], f32 with any strides; d is [D, H, Nq, B]. causal keeps
// keys j <= i + (Nk - Nq).

layout(local_size_x = 64) in;
layout(constant_id = 0) const uint DH = 64u;

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

// Keys per block: KB * DH <= 2048 floats each for keys and values (16 KiB
// of shared memory in all, the least every device offers).
const uint KB = 2048u / DH;
shared float ks[2048];
shared float vs[2048];

void main() {
    const uint lid = gl_LocalInvocationIndex;
    const uint i0 = gl_WorkGroupID.x * 64u, i = i0 + lid;
    const uint h = gl_WorkGroupID.y % pc.H, b = gl_WorkGroupID.y / pc.H;
    const bool live = i < pc.Nq;
    const uint shift = pc.Nk - pc.Nq;  // causal: query i sees keys j <= i + shift
    const uint lim = pc.causal != 0u ? min(pc.Nk, i + shift + 1u) : pc.Nk;
    const uint last = min(pc.Nq, i0 + 64u) - 1u;
    const uint wg_lim = pc.causal != 0u ? min(pc.Nk, last + shift + 1u) : pc.Nk;

    float qv[DH], acc[DH];
    const uint qb = pc.q_off + min(i, pc.Nq - 1u) * pc.qs1 + h * pc.qs2 + b * pc.qs3;
    for (uint e = 0u; e < DH; e++) {
        qv[e] = q[qb + e * pc.qs0] * pc.scale;
        acc[e] = 0.0;
    }
    const uint kb = pc.k_off + h * pc.ks2 + b * pc.ks3;
    const uint vb = pc.v_off + h * pc.vs2 + b * pc.vs3;
    float mx = -1.0 / 0.0, sum = 0.0;
    for (uint j0 = 0u; j0 < wg_lim; j0 += KB) {
        for (uint e = lid; e < KB * DH; e += 64u) {
            const uint j = j0 + e / DH, c = e % DH;
            ks[e] = j < pc.Nk ? k[kb + j * pc.ks1 + c * pc.ks0] : 0.0;
            vs[e] = j < pc.Nk ? v[vb + j * pc.vs1 + c * pc.vs0] : 0.0;
        }
        barrier();
        if (live) {
            const uint n = min(KB, lim > j0 ? lim - j0 : 0u);
            for (uint jj = 0u; jj < n; jj++) {
                float s = 0.0;
                for (uint e = 0u; e < DH; e++) s = fma(qv[e], ks[jj * DH + e], s);
                if (s > mx) {
                    const float c = exp(mx - s);  // rescale what was summed so far
                    sum = sum * c + 1.0;
                    for (uint e = 0u; e < DH; e++) acc[e] = fma(acc[e], c, vs[jj * DH + e]);
                    mx = s;
                } else {
                    const float p = exp(s - mx);
                    sum += p;
                    for (uint e = 0u; e < DH; e++) acc[e] = fma(p, vs[jj * DH + e], acc[e]);
                }
            }
        }
        barrier();
    }
    if (!live) return;
    const float inv = 1.0 / sum;
    const uint ob = pc.o_off + DH * (h + pc.H * (i + pc.Nq * b));
    for (uint e = 0u; e < DH; e++) o[ob + e] = acc[e] * inv;
}
