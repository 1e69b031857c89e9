#!/usr/bin/env python3
"""What the full-text index adds to a save and an append (issue 23): the same writes with and
without it, interleaved in the same run, on one vault.

* ``save``: ``Vault.save`` of a whole session of each size (``"id"`` given: a new version of
  the same session), alternately with the index on and off (``FullText.enabled``, a switch only
  benchmarks use); medians of ``--repeat`` each.
* ``append``: ``Vault.append`` of one turn (about 2 KB of text: benchmarks/bench_append.py's
  turns) to a session of ``--append-size``, alternately on and off; medians and means of
  ``--appends`` each (the mean includes the delta log's compactions, amortized).

Figures are medians in ms and the ratio on/off; the machine is shared with other work, so only
the ratios of the same run mean much.

    python benchmarks/bench_fts_write.py [--sizes 100K,1M,10M] [--repeat 9] [--append-size 1M] [--appends 60]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_append import label, make_session, make_turn, parse_size

from sessionseal import PassphraseProvider, Vault


def timed_ms(fn: Callable[[], object]) -> float:
    """*fn*'s wall time in ms, after a garbage collection (so none lands inside)."""
    gc.collect()
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100K,1M,10M")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--append-size", default="1M")
    ap.add_argument("--appends", type=int, default=60)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        provider = PassphraseProvider("bench", log2_n=14)
        with Vault.init(Path(tmp) / "v", key_provider=provider) as v:
            fulltext = v.parts.fulltext
            print("| write | without index (ms) | with index (ms) | ratio |")
            print("|---|---:|---:|---:|")
            for size in (parse_size(s) for s in args.sizes.split(",")):
                doc = make_session(size)
                sid = v.save(doc)
                whole = {**doc, "id": str(sid)}
                on: list[float] = []
                off: list[float] = []
                for _ in range(args.repeat):
                    for enabled, out in ((False, off), (True, on)):
                        fulltext.enabled = enabled
                        out.append(timed_ms(lambda: v.save(whole)))
                a, b = statistics.median(off), statistics.median(on)
                print(f"| save {label(size)} | {a:.1f} | {b:.1f} | {b / a:.2f} |")
            sid = v.save(make_session(parse_size(args.append_size)))
            on, off = [], []
            for i in range(args.appends):
                for enabled, out in ((False, off), (True, on)):
                    fulltext.enabled = enabled
                    turn = make_turn(i)
                    out.append(timed_ms(lambda: v.append(sid, turn)))
            a, b = statistics.median(off), statistics.median(on)
            ma, mb = statistics.fmean(off), statistics.fmean(on)
            print(
                f"| append one turn to {label(parse_size(args.append_size))} (median) | {a:.2f} | {b:.2f} | {b / a:.2f} |"
            )
            print(f"| the same, mean (compactions amortized) | {ma:.2f} | {mb:.2f} | {mb / ma:.2f} |")


if __name__ == "__main__":
    main()
