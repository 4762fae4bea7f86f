// Sum over a group of W consecutive lanes (W a power of two <= 32); every
// lane of the warp / SIMD-group must call it.
template <int W>
MLXASV_FN float mlxasv_group_sum(float v) {
  for (int o = W / 2; o > 0; o /= 2) {
    v += mlxasv_shfl_xor(v, o);
  }
  return v;
}
