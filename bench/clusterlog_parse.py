"""Peer for rhscope's cluster.log reader: what a support engineer scripts.
Parses every line with one regex (pid.tid::time LEVEL [COMPONENT] text),
joins continuation lines, counts entries per component. Reads UTF-16LE
after a byte-order mark (as nodes write it), else UTF-8."""
import re
import sys
from collections import Counter
from datetime import datetime

HEADER = re.compile(r"^([0-9a-fA-F]{1,8})\.([0-9a-fA-F]{1,8})::(\d{4}/\d\d/\d\d-\d\d:\d\d:\d\d\.\d{3})\s+(\S+)\s+(?:\[([^\]]*)\]\s?)?(.*)$")

def main(path):
    per = Counter()
    entries = 0
    with open(path, "rb") as f:
        utf16 = f.read(2) == b"\xff\xfe"
    if utf16:
        f = open(path, "r", encoding="utf-16", errors="replace", newline="\n")
        lines = f
    else:
        f = open(path, "rb")
        lines = (raw.decode("utf-8", "replace") for raw in f)
    for line in lines:
        line = line.rstrip("\r\n")
        m = HEADER.match(line)
        if not m:
            continue
        int(m.group(1), 16)
        int(m.group(2), 16)
        datetime.strptime(m.group(3), "%Y/%m/%d-%H:%M:%S.%f")
        per[m.group(5) or ""] += 1
        entries += 1
    f.close()
    print(entries, dict(per))

if __name__ == "__main__":
    main(sys.argv[1])
