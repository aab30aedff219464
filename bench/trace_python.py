"""trace_python.py — the python3 program of the objmem-trace overhead
benchmark (bench/trace.sh): an interpreter not written here, made to
allocate a lot.

Each round builds records as a program handling data does (dicts of
strings, ints, lists and bytes), indexes them, serialises them to text
and back, and drops everything.  bench/trace.sh runs it with
PYTHONMALLOC=malloc, so that each object is one malloc and one free that
the tracers see (see that script for why).

Usage: python3 trace_python.py ROUNDS.  Prints a checksum, so that the
traced runs can be checked against the untraced one.
"""
import sys

RECORDS = 20000


def make_records(seed):
    records = []
    for i in range(RECORDS):
        k = (i * 2654435761 + seed) % 1000003
        records.append({
            "id": k,
            "name": "user-%d-%d" % (seed, k),
            "tags": ["t%d" % (k % 7), "t%d" % (k % 11), "t%d" % (k % 13)],
            "blob": k.to_bytes(8, "little") * (1 + k % 16),
            "score": k / 7.0,
        })
    return records


def index(records):
    by_tag = {}
    for r in records:
        for t in r["tags"]:
            by_tag.setdefault(t, []).append(r["id"])
    return by_tag


def to_text(records):
    lines = []
    for r in records:
        lines.append("%d,%s,%s,%s,%.3f" % (r["id"], r["name"], ";".join(r["tags"]),
                                          r["blob"].hex(), r["score"]))
    return "\n".join(lines)


def from_text(text):
    out = []
    for line in text.split("\n"):
        f = line.split(",")
        out.append({"id": int(f[0]), "name": f[1], "tags": f[2].split(";"),
                    "blob": bytes.fromhex(f[3]), "score": float(f[4])})
    return out


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    if not 1 <= rounds <= 100000:
        sys.exit("usage: trace_python.py ROUNDS (1 to 100000)")
    checksum = 0
    for seed in range(rounds):
        records = make_records(seed)
        by_tag = index(records)
        back = from_text(to_text(records))
        checksum += len(by_tag) + sum(len(ids) for ids in by_tag.values())
        checksum += sum(r["id"] + len(r["blob"]) for r in back)
        checksum %= 1 << 64
    print("trace_python: checksum %d" % checksum)


main()
