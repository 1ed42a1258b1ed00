#version 450
// One source element per destination element, by a map: mode 0 nearest
// upscale by an integer factor, mode 1 nearest resize (PyTorch's 'nearest':
// floor(x * in / out)), mode 2 zero padding (lp = pad before, per dim).
// f32, any source strides.

layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 1) writeonly buffer D { float d[]; };

layout(push_constant) uniform Params {
    uint ne0, ne1, ne2, ne3;      // destination
    uint ane0, ane1, ane2, ane3;  // source
    uint s0, s1, s2, s3;
    uint a_off, d_off, n;
    uint mode, factor;
    uint lp0, lp1, lp2, lp3;
} pc;

void main() {
    const uint step = gl_NumWorkGroups.x * 256u;
    for (uint e = gl_GlobalInvocationID.x; e < pc.n; e += step) {
        uint i0 = e % pc.ne0;
        uint r = e / pc.ne0;
        uint i1 = r % pc.ne1;
        r /= pc.ne1;
        uint i2 = r % pc.ne2;
        uint i3 = r / pc.ne2;
        bool inside = true;
        if (pc.mode == 0u) {
            i0 /= pc.factor;
            i1 /= pc.factor;
        } else if (pc.mode == 1u) {
            i0 = min(i0 * pc.ane0 / pc.ne0, pc.ane0 - 1u);
            i1 = min(i1 * pc.ane1 / pc.ne1, pc.ane1 - 1u);
        } else {
            inside = i0 >= pc.lp0 && i1 >= pc.lp1 && i2 >= pc.lp2 && i3 >= pc.lp3;
            i0 -= pc.lp0;
            i1 -= pc.lp1;
            i2 -= pc.lp2;
            i3 -= pc.lp3;
            inside = inside && i0 < pc.ane0 && i1 < pc.ane1 && i2 < pc.ane2 && i3 < pc.ane3;
        }
        d[pc.d_off + e] = inside ? a[pc.a_off + i0 * pc.s0 + i1 * pc.s1 + i2 * pc.s2 + i3 * pc.s3] : 0.0;
    }
}
