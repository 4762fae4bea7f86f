const int tid = threadIdx.x;
const int bid = blockIdx.x;
