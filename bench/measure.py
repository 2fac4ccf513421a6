"""Runs a command once; prints its wall-clock seconds (to the microsecond)
and its peak resident memory in KiB. Output of the command is discarded."""
import resource
import subprocess
import sys
import time

start = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
if done.returncode != 0:
    sys.exit(f"measure: {sys.argv[1:]} failed with {done.returncode}")
print(f"{seconds:.4f} {rss}")
