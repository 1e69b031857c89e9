#!/usr/bin/env python3
"""A cold query against the size of the full-text index's delta log (issue 23).

A small vault (``--sessions`` sessions of ``--session-size``, folded into one segment), then
one-turn appends (benchmarks/bench_append.py's turns, round robin over the sessions) until the
delta log reaches each of ``--sizes``; at each size, ``--repeat`` cold queries: the manifest
forgotten, the view opened (manifest, segment heads, the delta log read, authenticated and
parsed), one query answered, the view closed (each of ``--queries``: a common word's records are
parsed, a rare one's are not). What a fresh process pays for the index, less
opening the vault. The compaction thresholds are lifted while the log grows (the vault's own
would fold it at 128 KiB or 64 frames, 4 MiB or 2,000 until 2026-12), so a frame count above
64 is not one the vault keeps; the ``frames`` column says how many there are.

Figures are medians in ms; the machine may be shared with other work.

    python benchmarks/bench_fts_delta.py [--sizes 0,256K,1M,4M] [--repeat 9] [--queries 'error AND value;zebra']
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_append import label, make_session, make_turn, parse_size

from sessionseal import PassphraseProvider, Vault, _fts
from sessionseal._container import HEADER_SIZE
from sessionseal._vault import _fulltext


def _delta_stats(fts_dir: Path) -> tuple[int, int]:
    """The delta log's size and frame count (by its length fields)."""
    (path,) = fts_dir.glob("*.delta")
    data = path.read_bytes()
    n, pos = 0, HEADER_SIZE
    while pos + 4 <= len(data):
        pos += 4 + int.from_bytes(data[pos : pos + 4], "big")
        n += 1
    return len(data), n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="0,256K,1M,4M")
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--session-size", default="20K")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--queries", default="error AND value;zebra", help="';'-separated: a column each")
    args = ap.parse_args()
    queries = [_fts.parse(q) for q in args.queries.split(";")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "v"
        with Vault.init(root, key_provider=PassphraseProvider("bench", log2_n=14)) as v:
            fulltext = v.parts.fulltext
            n = args.sessions
            sids = []
            for i in range(n):
                # One compaction, at the last save: one segment (the constants are Final to the code).
                _fulltext.__dict__.update(COMPACT_BYTES=0 if i == n - 1 else 1 << 40)
                sids.append(v.save(make_session(parse_size(args.session_size), seed=i)))
            _fulltext.__dict__.update(COMPACT_BYTES=1 << 40, COMPACT_FRAMES=1 << 40)
            print("| delta log | frames | " + " | ".join(f"`{q}` (ms, hits)" for q in args.queries.split(";")) + " |")
            print("|---:|---:|" + "---:|" * len(queries))
            turn = 0
            for target in (parse_size(s) if s != "0" else 0 for s in args.sizes.split(",")):
                while _delta_stats(root / "fts")[0] < target:
                    v.append(sids[turn % n], make_turn(turn))
                    turn += 1
                cells = []
                for query in queries:
                    times, hits = [], 0
                    for _ in range(args.repeat):
                        gc.collect()
                        fulltext._cached = None  # a fresh process reads and decrypts the manifest
                        t = time.perf_counter()
                        with fulltext.view() as view:
                            assert view is not None
                            hits = len(view.index.search(query))
                        times.append((time.perf_counter() - t) * 1000)
                    cells.append(f"{statistics.median(times):.1f} ({hits})")
                size, frames = _delta_stats(root / "fts")
                print(f"| {label(size)} | {frames} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
