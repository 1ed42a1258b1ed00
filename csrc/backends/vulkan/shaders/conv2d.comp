#version 450
#extension GL_GOOGLE_include_directive : require
// 2-D convolution as an implicit GEMM (no im2col buffer): per image, output
// pixel p and output channel co, d = sum_k patch[k][p] * w[k][co] with
// k = (ci * KH + ky) * KW + kx. A workgroup computes 64 pixels x 64 output
// channels (tile_gemm.glsl: pixels on the rows, so writes are contiguous),
// gathering each 16-deep slice of the patches straight from x. w [KW, KH,
// Cin, Cout] contiguous, its type (f32, f16, bf16) specialization constant
// 0, read in place; x [IW, IH, Cin, N] f32 with any strides; d [OW, OH,
// Cout, N].

layout(local_size_x = 256) in;
layout(constant_id = 0) const uint WTYPE = 0u;

layout(std430, set = 0, binding = 0) readonly buffer W { uint w[]; };
layout(std430, set = 0, binding = 1) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, set = 0, binding = 3) writeonly buffer D { float d[]; };

#include "common.glsl"
#include "tile_gemm.glsl"

layout(push_constant) uniform Params {
    uint OW, OH, Cout, N;
    uint KW, KH, Cin, IW, IH;
    uint sw, sh, pw, ph;
    uint xs0, xs1, xs2, xs3;
    uint x_off, w_off, w_type, b_off, has_bias, d_off;
} pc;

void main() {
    const uint t = gl_LocalInvocationIndex;
    const uint tx = t % 16u, ty = t / 16u;
    const uint M = pc.OW * pc.OH;           // pixels per image
    const uint KK = pc.KW * pc.KH;
    const uint K = KK * pc.Cin;             // weights per output channel
    const uint p0 = gl_WorkGroupID.x * TILE, c0 = gl_WorkGroupID.y * TILE;
    const uint img = gl_WorkGroupID.z;
    const uint xb = pc.x_off + img * pc.xs3;
    // Patch loads: slice row kq, pixels pq .. pq + 3 (their window origins
    // hoisted out of the K loop).
    const uint kq = t / 16u, pq = (t % 16u) * 4u;
    int oy[4], ox[4];
    for (uint q = 0u; q < 4u; q++) {
        const uint p = p0 + pq + q;
        oy[q] = p < M ? int((p / pc.OW) * pc.sh) - int(pc.ph) : -(1 << 30);
        ox[q] = int((p % pc.OW) * pc.sw) - int(pc.pw);
    }
    // Weight loads: four k of output channel c0 + wr.
    const uint wr = t / 4u, wk = (t % 4u) * 4u;
    const uint co_l = c0 + wr;
    const uint esize = WTYPE == T_F32 ? 4u : 2u;
    const uint wrow = pc.w_off + co_l * K * esize;
    float acc[16];
    for (uint i = 0u; i < 16u; i++) acc[i] = 0.0;
    for (uint k0 = 0u; k0 < K; k0 += TILE_K) {
        const uint k = k0 + kq;
        const uint ci = k / KK, r = k % KK;
        const int ky = int(r / pc.KW), kx = int(r % pc.KW);
        const uint xc = xb + ci * pc.xs2;
        for (uint q = 0u; q < 4u; q++) {
            const int iy = oy[q] + ky, ix = ox[q] + kx;
            const bool in_x = k < K && iy >= 0 && iy < int(pc.IH) && ix >= 0 && ix < int(pc.IW);
            ta[kq][pq + q] = in_x ? x[xc + uint(iy) * pc.xs1 + uint(ix) * pc.xs0] : 0.0;
        }
        const vec4 wv = co_l < pc.Cout ? load_w4(WTYPE, wrow, k0 + wk, K) : vec4(0.0);
        for (uint q = 0u; q < 4u; q++) tb[wk + q][wr] = wv[q];
        barrier();
        tile_step(acc, tx, ty);
        barrier();
    }
    for (uint j = 0u; j < 4u; j++) {
        const uint co = c0 + ty + 16u * j;
        if (co >= pc.Cout) continue;
        const float bv = pc.has_bias != 0u ? bias[pc.b_off + co] : 0.0;
        for (uint i = 0u; i < 4u; i++) {
            const uint p = p0 + tx + 16u * i;
            if (p < M) d[pc.d_off + p + M * (co + pc.Cout * img)] = acc[i * 4u + j] + bv;
        }
    }
}
