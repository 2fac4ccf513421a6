"""A node's log in the shape real ones have: the lines of a simulated
cluster.log (which every map to a record) with N lines of the cluster's
other components after each (network, GUM, database, API chatter no
pattern maps), at the same time, process and thread. Used to measure the
reader where most lines match nothing, as on a real node.

    noise_log.py IN.cluster.log OUT.cluster.log N [utf16]

With `utf16`, OUT is written as `Get-ClusterLog` writes a node's log:
UTF-16LE after a byte-order mark, lines ending in CRLF.
"""
import sys

# Shapes of the chatter a node logs all day (component, text); numbers
# vary with the line so no two lines are alike.
CHATTER = [
    ("NM", "Received message from node {a}: type 4, seqno {n}"),
    ("NM", "Sending heartbeat to node {a} over route 10.0.0.{a}:~3343~ (id {b})"),
    ("GUM", "GumHandler::ProcessUpdate: received update {n} of type Update from node {a}"),
    ("GUM", "Processing GUM update for resource group Role{b}, sequence {n}"),
    ("DM", "Writing to registry key Resources\\{n:08x}, value LastOnline, size 8"),
    ("API", "ApiGetResourceState: state 2 for resource Res{b}, owner node NODE-{a}"),
    ("CHANNEL 10.0.0.{a}:~3343~", "graceful close, status {b} (sequence {n})"),
    ("DCM", "DcmSweeper: no disks to sweep, next sweep in {b} s"),
    ("NETFT", "Route local 10.0.0.1:~3343~ to remote 10.0.0.{a}:~3343~ is up (latency {b} ms)"),
    ("QUORUM", "Witness check-in {n} succeeded in {b} ms"),
]


def main(src, dst, per_line, encoding="utf-8"):
    n = 0
    newline = "\r\n" if encoding == "utf-16-le" else None
    with open(src, "r", encoding="utf-8", errors="replace") as f, open(dst, "w", encoding=encoding, newline=newline) as out:
        if encoding == "utf-16-le":
            out.write("\ufeff")
        for line in f:
            out.write(line)
            head, sep, _ = line.partition(" INFO ")
            if not sep:
                continue
            for _ in range(per_line):
                n += 1
                component, text = CHATTER[n % len(CHATTER)]
                fill = {"a": 1 + n % 4, "b": n % 97, "n": n}
                out.write(f"{head} INFO  [{component.format(**fill)}] {text.format(**fill)}\n")


if __name__ == "__main__":
    if sys.argv[4:] not in ([], ["utf16"]):
        sys.exit("usage: noise_log.py IN OUT N [utf16]")
    utf16 = sys.argv[4:] == ["utf16"]
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), "utf-16-le" if utf16 else "utf-8")
