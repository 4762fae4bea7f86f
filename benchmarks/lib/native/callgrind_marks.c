/* Marks for the counting child (benchmarks/lib/count_child.py): count the
 * instructions of single calls under valgrind's callgrind. Python cannot
 * issue valgrind's client requests (they are special instruction
 * sequences), so the child loads this library with ctypes. Outside valgrind
 * the requests do nothing. */
#include <valgrind/callgrind.h>

int on_valgrind(void) { return RUNNING_ON_VALGRIND; }

/* Instrument from here, the counters at zero (every thread's). */
void start(void) {
    CALLGRIND_START_INSTRUMENTATION;
    CALLGRIND_ZERO_STATS;
}

/* The counters at zero again, instrumentation left on: the child's own work
 * between two counted calls (reading a dump) is not counted, and the code
 * already translated with instrumentation is kept (stopping and starting
 * instrumentation discards every translation). */
void zero(void) { CALLGRIND_ZERO_STATS; }

/* Write the counts since the last zero as a dump named `name` (which zeroes
 * them). */
void dump(const char *name) { CALLGRIND_DUMP_STATS_AT(name); }

/* Stop instrumenting: the untimed code between cases runs faster without. */
void stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
