"""Copy stdin to stdout, each line prefixed by the seconds since this process started (issue 27, fifth
session): an asv run's log then shows when each phase began. ``... 2>&1 | python3 -u studies/gpu27/stamp.py``"""

import sys
import time

t0 = time.monotonic()
for line in sys.stdin:
    sys.stdout.write(f"[{time.monotonic() - t0:8.2f}] {line}")
    sys.stdout.flush()
