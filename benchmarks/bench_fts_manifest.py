#!/usr/bin/env python3
"""What a fresh process pays for the full-text index's manifest (issue 23): ``Manifest.load``
(read, authenticate, decompress, decode) of a manifest of ``--sessions`` sessions in
``--segments`` segments, then what an append asks of it (one session's stamp) and what a
query's view asks (every session's stamp, as search compares them with the listing's).

Synthetic: the manifest is written by this tree's ``Manifest.write`` into a temporary ``fts/``
(run the script from another tree for its format's figures). Medians in ms; the machine may be
shared with other work.

    python benchmarks/bench_fts_manifest.py [--sessions 10000] [--segments 21] [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bench_fts_write import timed_ms

from sessionseal._fs import Dir
from sessionseal._keystore import MasterKeys
from sessionseal._vault._ftsfiles import MANIFEST, Manifest, SegmentInfo


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--segments", type=int, default=21)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    sids = [uuid.uuid4() for _ in range(args.sessions)]
    n = args.segments
    segments = [SegmentInfo(uuid.uuid4(), os.urandom(32), sids[i::n], 100_000, 1_000_000) for i in range(n)]
    stamps = {s: (5 << 20, 40_000_000 + i, 2_345_678 + i, 1_765_000_000_000_000_000 + i) for i, s in enumerate(sids)}
    vid, kek = uuid.uuid4(), os.urandom(32)
    master = MasterKeys({1: kek})
    with tempfile.TemporaryDirectory() as tmp:
        fts = Dir(Path(tmp) / "fts", create=True)
        Manifest(segments, uuid.uuid4(), os.urandom(32), stamps).write(fts, vid, kek, 1)
        size = os.path.getsize(Path(tmp) / "fts" / MANIFEST)
        one = sids[len(sids) // 2]
        rows: dict[str, list[float]] = {"load": [], "load + one stamp": [], "load + every stamp": []}
        for _ in range(args.repeat):
            rows["load"].append(timed_ms(lambda: Manifest.load(fts, vid, master)))
            rows["load + one stamp"].append(timed_ms(lambda: Manifest.load(fts, vid, master).stamps.get(one)))
            rows["load + every stamp"].append(timed_ms(lambda: dict(Manifest.load(fts, vid, master).stamps.items())))
        fts.close()
    print(f"manifest of {args.sessions} sessions in {n} segments: {size / 1024:.0f} KiB on disk")
    print("| step | median (ms) |")
    print("|---|---:|")
    for name, times in rows.items():
        print(f"| {name} | {statistics.median(times):.1f} |")


if __name__ == "__main__":
    main()
