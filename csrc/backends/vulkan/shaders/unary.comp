#version 450
// Element-wise unary ops (and the plain copy behind cont) on f32: reads a
// strided source, writes a contiguous destination. The op codes match
// UnaryOp in vulkan_ops.cpp. Every invocation walks the elements with a
// grid stride, so one dispatch of at most 65535 workgroups covers any size.

layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 1) writeonly buffer D { float d[]; };

layout(push_constant) uniform Params {
    uint ne0, ne1, ne2, ne3;  // shape (source and destination)
    uint s0, s1, s2, s3;      // source strides, in elements
    uint a_off, d_off;        // element offsets into the bound ranges
    uint op, n;               // op code, element count
    float p0, p1;             // scale: x * p0 + p1; clamp: [p0, p1]
} pc;

// erf with an absolute error below 1.5e-7 (Abramowitz and Stegun 7.1.26).
float erf_approx(float x) {
    const float t = 1.0 / (1.0 + 0.3275911 * abs(x));
    const float y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t +
                           0.254829592) * t * exp(-x * x);
    return x < 0.0 ? -y : y;
}

// tanh that cannot form inf / inf: |x| > 10 is +-1 in f32 anyway.
float tanh_safe(float x) { return tanh(clamp(x, -10.0, 10.0)); }

float apply(float x) {
    switch (pc.op) {
        case 0u: return x;                                                     // copy
        case 1u: return x * pc.p0 + pc.p1;                                     // scale
        case 2u: return x / (1.0 + exp(-x));                                   // silu
        case 3u: return 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752)); // gelu
        case 4u: return 0.5 * x * (1.0 + tanh_safe(0.79788456080286536 * (x + 0.044715 * x * x * x)));
        case 5u: return x / (1.0 + exp(-1.702 * x));                           // quick_gelu
        case 6u: return min(max(x, pc.p0), pc.p1);                             // clamp
        case 7u: return max(x, 0.0);                                           // relu
        case 8u: return tanh_safe(x);                                          // tanh
        case 9u: return 1.0 / (1.0 + exp(-x));                                 // sigmoid
        case 10u: return exp(x);                                               // exp
        case 11u: return sqrt(x);                                              // sqrt
        case 12u: return x * x;                                                // sqr
    }
    return x;
}

void main() {
    const uint step = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += step) {
        const uint i0 = i % pc.ne0;
        uint r = i / pc.ne0;
        const uint i1 = r % pc.ne1;
        r /= pc.ne1;
        const uint i2 = r % pc.ne2;
        const uint i3 = r / pc.ne2;
        d[pc.d_off + i] = apply(a[pc.a_off + i0 * pc.s0 + i1 * pc.s1 + i2 * pc.s2 + i3 * pc.s3]);
    }
}
