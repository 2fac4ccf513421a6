"""Peer for rhscope's cluster.log reader: what a support engineer scripts.
Parses every line with one regex (pid.tid::time LEVEL [COMPONENT] text),
joins continuation lines, counts entries per component."""
import re
import sys
from collections import Counter
from datetime import datetime

HEADER = re.compile(r"^([0-9a-fA-F]{1,8})\.([0-9a-fA-F]{1,8})::(\d{4}/\d\d/\d\d-\d\d:\d\d:\d\d\.\d{3})\s+(\S+)\s+(?:\[([^\]]*)\]\s?)?(.*)$")

def main(path):
    per = Counter()
    entries = 0
    with open(path, "rb") as f:
        for raw in f:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            m = HEADER.match(line)
            if not m:
                continue
            int(m.group(1), 16)
            int(m.group(2), 16)
            datetime.strptime(m.group(3), "%Y/%m/%d-%H:%M:%S.%f")
            per[m.group(5) or ""] += 1
            entries += 1
    print(entries, dict(per))

if __name__ == "__main__":
    main(sys.argv[1])
