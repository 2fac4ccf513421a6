"""Peer for the benchmark: reads every record of an .etl with dissect.etl
and prints the record count (what `rhscope stats` counts)."""
import sys

from dissect.etl.etl import ETL

with open(sys.argv[1], "rb") as f:
    n = sum(1 for _ in ETL(f))
print(n)
