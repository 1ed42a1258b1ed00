#version 450
#extension GL_GOOGLE_include_directive : require
// Direct 2-D convolution: one invocation per output element sums over the
// input channels and the kernel window (no im2col buffer). w [KW, KH, Cin,
// Cout] contiguous in any float weight type, read in place; x [IW, IH, Cin,
// N] f32 with any strides; d [OW, OH, Cout, N].

layout(local_size_x = 64) in;

layout(std430, set = 0, binding = 0) readonly buffer W { uint w[]; };
layout(std430, set = 0, binding = 1) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, set = 0, binding = 3) writeonly buffer D { float d[]; };

#include "common.glsl"

layout(push_constant) uniform Params {
    uint OW, OH, Cout, N;
    uint KW, KH, Cin, IW, IH;
    uint sw, sh, pw, ph;
    uint xs0, xs1, xs2, xs3;
    uint x_off, w_off, w_type, b_off, has_bias, d_off;
} pc;

void main() {
    const uint id = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * 64u) + gl_GlobalInvocationID.x;
    if (id >= pc.OW * pc.OH * pc.Cout * pc.N) return;
    const uint ox = id % pc.OW, oy = (id / pc.OW) % pc.OH, co = (id / (pc.OW * pc.OH)) % pc.Cout;
    const uint n = id / (pc.OW * pc.OH * pc.Cout);
    float acc = pc.has_bias != 0u ? bias[pc.b_off + co] : 0.0;
    const uint krow = pc.KW * pc.KH * pc.Cin;  // weights per output channel
    for (uint ci = 0u; ci < pc.Cin; ci++) {
        const uint xb = pc.x_off + ci * pc.xs2 + n * pc.xs3;
        for (uint ky = 0u; ky < pc.KH; ky++) {
            const int iy = int(oy * pc.sh + ky) - int(pc.ph);
            if (iy < 0 || iy >= int(pc.IH)) continue;
            for (uint kx = 0u; kx < pc.KW; kx++) {
                const int ix = int(ox * pc.sw + kx) - int(pc.pw);
                if (ix < 0 || ix >= int(pc.IW)) continue;
                const uint widx = co * krow + (ci * pc.KH + ky) * pc.KW + kx;
                acc += load_w(pc.w_type, pc.w_off, widx) * x[xb + uint(ix) * pc.xs0 + uint(iy) * pc.xs1];
            }
        }
    }
    d[pc.d_off + id] = acc;
}
