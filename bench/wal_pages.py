#!/usr/bin/env python3
"""bench/wal_pages.py DB: which pages the commits in DB's write-ahead log (DB-wal) wrote.

Reads the WAL's valid frames (those with the header's salts, up to the last commit frame),
groups them into commits, and names each page by the table or index that owns it (dbstat on
DB with its WAL). Prints the frames per commit and, per object, the frames over all commits
and in how many commits it appeared. Run it on a copy of DB, DB-wal taken together while the
daemon runs (bench/efficiency.sh does, with EFF_DISK=1): at a checkpoint the log starts over.
"""
import collections
import sqlite3
import struct
import sys


def frames(wal_path):
    with open(wal_path, "rb") as f:
        data = f.read()
    if len(data) < 32:
        return 0, []
    magic, _ver, page_size, _seq, salt1, salt2 = struct.unpack(">IIIIII", data[:24])
    if magic not in (0x377F0682, 0x377F0683):
        return page_size, []
    out, commits, cur = [], [], []
    off = 32
    while off + 24 + page_size <= len(data):
        pgno, db_size, s1, s2 = struct.unpack(">IIII", data[off:off + 16])
        if (s1, s2) != (salt1, salt2):
            break
        cur.append(pgno)
        if db_size:
            commits.append(cur)
            cur = []
        off += 24 + page_size
    return page_size, commits


def main():
    db = sys.argv[1]
    page_size, commits = frames(db + "-wal")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    owner = {}
    for pageno, name, pagetype in con.execute("SELECT pageno, name, pagetype FROM dbstat"):
        owner[pageno] = f"{name} ({pagetype})"
    owner[1] = owner.get(1, "sqlite_schema") + " [page 1: header]"
    if not commits:
        print("no commit in the WAL")
        return
    total = collections.Counter()
    seen = collections.Counter()
    sizes = collections.Counter(len(c) for c in commits)
    for c in commits:
        for p in c:
            total[owner.get(p, f"page {p} (free or new)")] += 1
        for name in {owner.get(p, f"page {p} (free or new)") for p in c}:
            seen[name] += 1
    nframes = sum(len(c) for c in commits)
    print(f"page size {page_size}; {len(commits)} commits, {nframes} frames, "
          f"{nframes / len(commits):.2f} frames per commit ({(24 + page_size) * nframes / len(commits):.0f} B)")
    print("frames per commit: " + ", ".join(f"{k}: {v}x" for k, v in sorted(sizes.items())))
    print(f"{'object (page type)':<42} {'frames':>7} {'/commit':>8} {'in commits':>10}")
    for name, n in total.most_common():
        print(f"{name:<42} {n:7d} {n / len(commits):8.2f} {seen[name]:10d}")
    distinct = len({p for c in commits for p in c})
    print(f"distinct pages over these commits (what a checkpoint of them writes): {distinct}")


if __name__ == "__main__":
    main()
