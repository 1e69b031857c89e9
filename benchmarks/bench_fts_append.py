#!/usr/bin/env python3
"""An append's cost against a full delta log (issue 23): what the full-text index adds to
``Vault.append`` of one turn when the log holds ``--frames`` records of other sessions.

The vault: ``--cold`` sessions folded into one segment (compacted once), then ``--frames``
one-turn appends round robin over ``--hot`` other sessions, the compaction thresholds lifted
(the vault's own fold the log at 64 frames, 2,000 until 2026-12: the default 1,999 is the old
bound's full log, ``--frames 63`` the new one's). Then, interleaved, each
``--repeat`` times:

* ``hot``: one turn appended to the session that wrote the log's last record (an agent
  appending turn after turn);
* ``cold``: one turn to a session the log holds no record of (its last write is in the
  segment), in this process (the index's per-process memory of the log kept);
* ``cold, fresh process``: the same with that memory dropped first (what a new CLI process pays);
* ``off``: one turn with the index off (``FullText.enabled``), the baseline.

Medians in ms; the machine may be shared with other work: read the figures of one run together.

    python benchmarks/bench_fts_append.py [--frames 1999] [--repeat 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_append import make_session, make_turn
from bench_fts_delta import _delta_stats
from bench_fts_write import timed_ms

from sessionseal import PassphraseProvider, Vault
from sessionseal._vault import _fulltext


def _forget(fulltext: object) -> None:
    """What a fresh process does not have: the manifest and the log's heads as last read (the
    log's heads checkpoint on disk it does have: benchmarks/bench_fts_heads.py runs real
    fresh processes)."""
    fulltext._cached = None  # type: ignore[attr-defined]
    heads = getattr(fulltext, "_log_heads", None)  # (before issue 23's append check, none)
    if heads is not None:
        heads.forget()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=1999)
    ap.add_argument("--hot", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "v"
        with Vault.init(root, key_provider=PassphraseProvider("bench", log2_n=14)) as v:
            fulltext = v.parts.fulltext
            n_cold = 3 * args.repeat + 1
            cold = []
            for i in range(n_cold):
                _fulltext.__dict__.update(COMPACT_BYTES=0 if i == n_cold - 1 else 1 << 40)
                cold.append(v.save(make_session(2000, seed=i)))
            _fulltext.__dict__.update(COMPACT_BYTES=1 << 40, COMPACT_FRAMES=1 << 40)
            hot = [v.save(make_session(2000, seed=1000 + i)) for i in range(args.hot)]
            turn = 0
            while _delta_stats(root / "fts")[1] < args.frames:
                v.append(hot[turn % args.hot], make_turn(turn))
                turn += 1
            last = hot[(turn - 1) % args.hot]
            rows: dict[str, list[float]] = {"off": [], "hot": [], "cold": [], "cold, fresh process": []}
            for r in range(args.repeat):
                fulltext.enabled = False
                rows["off"].append(timed_ms(lambda: v.append(cold[3 * r], make_turn(turn + r))))
                fulltext.enabled = True
                rows["hot"].append(timed_ms(lambda: v.append(last, make_turn(turn + r))))
                rows["cold"].append(timed_ms(lambda: v.append(cold[3 * r + 1], make_turn(turn + r))))
                _forget(fulltext)
                rows["cold, fresh process"].append(timed_ms(lambda: v.append(cold[3 * r + 2], make_turn(turn + r))))
                v.append(last, make_turn(turn + r))  # the hot session writes the log's last record again
            size, frames = _delta_stats(root / "fts")
            print(f"delta log at the end: {frames} frames, {size / 2**20:.1f} MiB")
            print("| append of one turn | median (ms) | vs off |")
            print("|---|---:|---:|")
            base = statistics.median(rows["off"])
            for name, times in rows.items():
                m = statistics.median(times)
                print(f"| {name} | {m:.2f} | {m / base:.2f} |")


if __name__ == "__main__":
    main()
