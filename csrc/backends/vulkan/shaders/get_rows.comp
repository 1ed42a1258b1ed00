#version 450
#extension GL_GOOGLE_include_directive : require
// d[k, i, j] = table[k, idx[i, j]]: rows of a table in any weight type, by
// i32 indices (any strides). An index outside the table gives a row of 0
// (the graph cannot see index values; nothing outside the table is read).

layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer W { uint w[]; };
layout(std430, set = 0, binding = 1) readonly buffer I { int idx[]; };
layout(std430, set = 0, binding = 2) writeonly buffer D { float d[]; };

#include "common.glsl"

layout(push_constant) uniform Params {
    uint K, n1, rows;          // d is [K, n1, n2]; the table has `rows` rows
    uint w_nb1, w_off, w_type;
    uint is0, is1, i_off;
    uint d_off, n;
} pc;

void main() {
    const uint step = gl_NumWorkGroups.x * 256u;
    for (uint e = gl_GlobalInvocationID.x; e < pc.n; e += step) {
        const uint k = e % pc.K, r = e / pc.K;
        const uint i = r % pc.n1, j = r / pc.n1;
        const int row = idx[pc.i_off + i * pc.is0 + j * pc.is1];
        d[pc.d_off + e] = (row >= 0 && uint(row) < pc.rows) ? load_w(pc.w_type, pc.w_off + uint(row) * pc.w_nb1, k) : 0.0;
    }
}
