/* Marks for tools/instructions.py: count the instructions of one call under
 * valgrind's callgrind. Python cannot issue valgrind's client requests (they
 * are special instruction sequences), so the child process loads this
 * library with ctypes and calls start() before the timed call and stop(name)
 * after it. Outside valgrind the requests do nothing. */
#include <valgrind/callgrind.h>

int on_valgrind(void) { return RUNNING_ON_VALGRIND; }

/* Instrument from here, the counters at zero (every thread's). */
void start(void) {
    CALLGRIND_START_INSTRUMENTATION;
    CALLGRIND_ZERO_STATS;
}

/* Write the counts since start() as a dump named `name`, and stop
 * instrumenting (the untimed code between calls runs faster without it). */
void stop(const char *name) {
    CALLGRIND_DUMP_STATS_AT(name);
    CALLGRIND_STOP_INSTRUMENTATION;
}
