const int tid = thread_position_in_threadgroup.x;
const int bid = threadgroup_position_in_grid.x;
