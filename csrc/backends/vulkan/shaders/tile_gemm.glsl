// tile_gemm.glsl — the inner loop shared by the tiled matrix multiply and the
// implicit-GEMM convolution. A workgroup of 256 invocations computes a
// 64 x 64 block of outputs C[r][c] = sum_k A[k][r] * B[k][c]; each
// invocation holds a 4 x 4 register tile, rows tx + 16 i and columns
// ty + 16 j (tx = index % 16, ty = index / 16), so neighbouring invocations
// read neighbouring shared-memory words. K advances 16 at a time: the
// including shader fills ta (A's 16 x 64 slice) and tb (B's) between
// barriers, as f32, and calls tile_step.

#define TILE 64u
#define TILE_K 16u

shared float ta[TILE_K][TILE];
shared float tb[TILE_K][TILE];

void tile_step(inout float acc[16], uint tx, uint ty) {
    for (uint kk = 0u; kk < TILE_K; kk++) {
        float a[4], b[4];
        for (uint i = 0u; i < 4u; i++) a[i] = ta[kk][tx + 16u * i];
        for (uint j = 0u; j < 4u; j++) b[j] = tb[kk][ty + 16u * j];
        for (uint i = 0u; i < 4u; i++)
            for (uint j = 0u; j < 4u; j++) acc[i * 4u + j] = fma(a[i], b[j], acc[i * 4u + j]);
    }
}
