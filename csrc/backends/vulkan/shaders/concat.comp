#version 450
// d = a and b joined along dimension `dim` (f32, any source strides).

layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 1) readonly buffer B { float b[]; };
layout(std430, set = 0, binding = 2) writeonly buffer D { float d[]; };

layout(push_constant) uniform Params {
    uint ne0, ne1, ne2, ne3;
    uint dim, a_len;            // a's size along dim
    uint as0, as1, as2, as3;
    uint bs0, bs1, bs2, bs3;
    uint a_off, b_off, d_off, n;
} pc;

void main() {
    const uint step = gl_NumWorkGroups.x * 256u;
    for (uint e = gl_GlobalInvocationID.x; e < pc.n; e += step) {
        uint i[4];
        i[0] = e % pc.ne0;
        uint r = e / pc.ne0;
        i[1] = r % pc.ne1;
        r /= pc.ne1;
        i[2] = r % pc.ne2;
        i[3] = r / pc.ne2;
        float v;
        if (i[pc.dim] < pc.a_len) {
            v = a[pc.a_off + i[0] * pc.as0 + i[1] * pc.as1 + i[2] * pc.as2 + i[3] * pc.as3];
        } else {
            i[pc.dim] -= pc.a_len;
            v = b[pc.b_off + i[0] * pc.bs0 + i[1] * pc.bs1 + i[2] * pc.bs2 + i[3] * pc.bs3];
        }
        d[pc.d_off + e] = v;
    }
}
