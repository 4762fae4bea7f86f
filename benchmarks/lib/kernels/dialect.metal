// mlx-asv dialect: Metal (mx.fast.metal_kernel) -- UNVERIFIED
#define MLXASV_SHARED threadgroup
#define MLXASV_SYNC() metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup)
#define MLXASV_FN inline
#define MLXASV_UNROLL  // (loops over N are unrolled by the compiler or not: UNVERIFIED)
MLXASV_FN float mlxasv_sqrt(float x) { return metal::sqrt(x); }
MLXASV_FN float mlxasv_abs(float x) { return metal::abs(x); }
MLXASV_FN float mlxasv_copysign(float a, float b) { return metal::copysign(a, b); }
MLXASV_FN float mlxasv_shfl_xor(float v, int o) { return metal::simd_shuffle_xor(v, ushort(o)); }
MLXASV_FN int mlxasv_shfl_xor(int v, int o) { return metal::simd_shuffle_xor(v, ushort(o)); }
MLXASV_FN float mlxasv_shfl(float v, int src) { return metal::simd_shuffle(v, ushort(src)); }
