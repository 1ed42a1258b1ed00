#version 450
// add, sub, mul, div on f32 with ggml's broadcast: every dimension of b
// divides the matching one of a, and b repeats along it. Both sources may be
// strided; the destination is contiguous with a's shape. Op codes match
// BinaryOp in vulkan_ops.cpp.

layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 1) readonly buffer B { float b[]; };
layout(std430, set = 0, binding = 2) writeonly buffer D { float d[]; };

layout(push_constant) uniform Params {
    uint ne0, ne1, ne2, ne3;   // shape of a and the destination
    uint as0, as1, as2, as3;   // a's strides, in elements
    uint bne0, bne1, bne2, bne3;
    uint bs0, bs1, bs2, bs3;   // b's strides, in elements
    uint a_off, b_off, d_off;  // element offsets into the bound ranges
    uint op, n;
} pc;

void main() {
    const uint step = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += step) {
        const uint i0 = i % pc.ne0;
        uint r = i / pc.ne0;
        const uint i1 = r % pc.ne1;
        r /= pc.ne1;
        const uint i2 = r % pc.ne2;
        const uint i3 = r / pc.ne2;
        const float x = a[pc.a_off + i0 * pc.as0 + i1 * pc.as1 + i2 * pc.as2 + i3 * pc.as3];
        const float y = b[pc.b_off + (i0 % pc.bne0) * pc.bs0 + (i1 % pc.bne1) * pc.bs1 + (i2 % pc.bne2) * pc.bs2 +
                          (i3 % pc.bne3) * pc.bs3];
        float z;
        switch (pc.op) {
            case 0u: z = x + y; break;
            case 1u: z = x - y; break;
            case 2u: z = x * y; break;
            default: z = x / y; break;
        }
        d[pc.d_off + i] = z;
    }
}
