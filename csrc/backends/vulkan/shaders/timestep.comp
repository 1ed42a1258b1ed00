#version 450
// Sinusoidal timestep embedding: for timestep t[n] and i < dim / 2, the
// argument t * exp(-ln(max_period) * i / (dim / 2 - shift)) gives cos and
// sin, cos first when flip is set (sin first otherwise); an odd dim leaves
// its last value 0. The argument is reduced by 2 pi in two parts first, so
// that sin and cos stay accurate for timesteps up to 1000.

layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer T { float ts[]; };
layout(std430, set = 0, binding = 1) writeonly buffer D { float d[]; };

layout(push_constant) uniform Params {
    uint dim, count, flip;
    uint t_s0, t_off, d_off;
    float log_max_period, shift;
} pc;

void main() {
    const uint step = gl_NumWorkGroups.x * 256u;
    const uint half_dim = pc.dim / 2u;
    for (uint e = gl_GlobalInvocationID.x; e < pc.dim * pc.count; e += step) {
        const uint j = e % pc.dim, n = e / pc.dim;
        float v = 0.0;
        if (j < 2u * half_dim) {
            const uint i = j < half_dim ? j : j - half_dim;
            const bool first = j < half_dim;  // the cos half when flip, else the sin half
            const float freq = exp(-pc.log_max_period * float(i) / (float(half_dim) - pc.shift));
            const float arg = ts[pc.t_off + n * pc.t_s0] * freq;
            const float k = floor(arg * 0.15915494309189535 + 0.5);
            const float red = (arg - k * 6.28125) - k * 1.9353071795864769e-3;
            v = (first == (pc.flip != 0u)) ? cos(red) : sin(red);
        }
        d[pc.d_off + e] = v;
    }
}
