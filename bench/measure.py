"""Runs a command and prints its wall-clock seconds (to the microsecond)
and its peak resident memory in KiB; output of the command is discarded.
Commands under five seconds run three times and the fastest counts: on a
shared machine one run of a short command can take half as long again."""
import os
import subprocess
import sys
import time

REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))


def once(argv):
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"measure: {argv} failed with {code}")
    return seconds, usage.ru_maxrss


best, rss = once(sys.argv[1:])
for _ in range(REPEAT - 1):
    if best >= 5.0:
        break
    seconds, peak = once(sys.argv[1:])
    best, rss = min(best, seconds), max(rss, peak)
print(f"{best:.4f} {rss}")
