// mlx-asv dialect: CUDA (mx.fast.cuda_kernel)
#define MLXASV_SHARED __shared__
#define MLXASV_SYNC() __syncthreads()
#define MLXASV_FN __device__ __forceinline__
#define MLXASV_UNROLL _Pragma("unroll")
MLXASV_FN float mlxasv_sqrt(float x) { return sqrtf(x); }
MLXASV_FN float mlxasv_abs(float x) { return fabsf(x); }
MLXASV_FN float mlxasv_copysign(float a, float b) { return copysignf(a, b); }
MLXASV_FN float mlxasv_shfl_xor(float v, int o) { return __shfl_xor_sync(0xffffffffu, v, o); }
MLXASV_FN int mlxasv_shfl_xor(int v, int o) { return __shfl_xor_sync(0xffffffffu, v, o); }
MLXASV_FN float mlxasv_shfl(float v, int src) { return __shfl_sync(0xffffffffu, v, src); }
