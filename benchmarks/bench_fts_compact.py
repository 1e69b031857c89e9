#!/usr/bin/env python3
"""A delta-log compaction in a large vault, and the query forms against a full log (issue 23).

Takes the vault of ``benchmarks/bench_search.py --cache DIR`` (1 GB: 18 segments once
reindexed), never changing it: two copies are made under ``--tmp`` and reindexed (a copy's
session files have new inodes, so the index's stamps no longer vouch for them and search would
stream every session; about 90 s each at 1 GB). In copy A, one-turn appends
(``bench_append.py``'s turns) to sessions drawn at random, each timed (wall and CPU of this
process), with the compaction bound at ``--frames`` frames (and ``--bytes``, default the
vault's own), until ``--compactions`` appends have folded the log; the ratio of a compacting
append to the median append is reported (the baseline is the same run's plain appends). Then
copy A's log is filled to one frame under the bound and copy B's folded (one more append past
the bound), and ``bench_search.py``'s query forms are answered from both vaults, interleaved,
``--repeat`` times each: a full log against an empty one, in the same run.

Figures are medians; CPU time (``time.process_time``) is steadier than wall time on a shared
machine. The load average is printed at start and end.

    python benchmarks/bench_fts_compact.py --cache DIR [--frames 256] [--compactions 5] [--repeat 5]
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_append import make_turn, parse_size
from bench_search import CPU, FTS_QUERIES, interleaved_medians, open_vault

from sessionseal import Vault
from sessionseal._vault import _fulltext
from sessionseal._vault._ftscompact import count_frames


def _frames(vault: Path) -> int:
    """The delta log's frames, by their length fields."""
    (path,) = (vault / "fts").glob("*.delta")
    return count_frames(path.read_bytes())


def _segments(vault: Path) -> int:
    return len(list((vault / "fts").glob("*.seg")))


class Appender:
    """One-turn appends to sessions drawn at random, each timed: (wall s, CPU s, compacted)."""

    def __init__(self, v: Vault, path: Path, seed: int) -> None:
        self.v, self.path, self.rng, self.i = v, path, random.Random(seed), 0
        self.ids = [s.id for s in v.list(archived=None)]
        self.times: list[tuple[float, float, bool]] = []

    def one(self) -> None:
        sid, turn = self.rng.choice(self.ids), make_turn(self.i)
        self.i += 1
        before = _frames(self.path)
        t, c = time.perf_counter(), time.process_time()
        self.v.append(sid, turn)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        self.times.append((wall, cpu, _frames(self.path) < before))


def _report_appends(app: Appender, frames: int) -> None:
    plain = [(w, c) for w, c, folded in app.times if not folded]
    folds = [(w, c) for w, c, folded in app.times if folded]
    mw, mc = statistics.median(w for w, _ in plain), statistics.median(c for _, c in plain)
    print(
        f"{len(app.times)} appends, bound {frames} frames / {_fulltext.COMPACT_BYTES} bytes: "
        f"median append {mw * 1e3:.1f} ms wall, {mc * 1e3:.1f} ms CPU"
    )
    for w, c in folds:
        print(f"  compacting append: {w * 1e3:.0f} ms wall ({w / mw:.0f}x), {c * 1e3:.0f} ms CPU ({c / mc:.0f}x)")
    fw, fc = statistics.median(w for w, _ in folds), statistics.median(c for _, c in folds)
    print(f"  median compacting append: {fw * 1e3:.0f} ms wall, {fc * 1e3:.0f} ms CPU; segments {_segments(app.path)}")


def _queries(va: Vault, vb: Vault, repeat: int) -> None:
    """bench_search.py's query forms on *va* (a full log) and *vb* (an empty one), interleaved."""
    fns: dict[str, Callable[[], object]] = {}
    for n, (q, f) in FTS_QUERIES.items():
        fns[f"full log: {n}"] = functools.partial(va.search, q, f)
        fns[f"empty log: {n}"] = functools.partial(vb.search, q, f)
    medians = interleaved_medians(fns, repeat)
    print(f"\nquery forms, medians of {repeat} interleaved (with snippets), ms wall (CPU):")
    print(f"{'form':<24} {'empty log':>16} {'full log':>16} {'full / empty':>12}")
    for n in FTS_QUERIES:
        me, mf = medians[f"empty log: {n}"], medians[f"full log: {n}"]
        ce, cf = CPU[f"empty log: {n}"], CPU[f"full log: {n}"]
        print(f"{n:<24} {me * 1e3:>7.1f} ({ce * 1e3:5.1f}) {mf * 1e3:>7.1f} ({cf * 1e3:5.1f}) {mf / me:>12.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, required=True, help="bench_search.py's --cache (its vault is copied)")
    ap.add_argument("--tmp", type=Path, default=None, help="where the copies go (default: a temp dir)")
    ap.add_argument("--frames", type=int, default=_fulltext.COMPACT_FRAMES, help="the compaction bound in frames")
    ap.add_argument("--bytes", default=None, help="the bound in bytes (e.g. 512K; default the vault's own)")
    ap.add_argument("--compactions", type=int, default=5, help="appends that fold the log, in copy A")
    ap.add_argument("--repeat", type=int, default=5, help="rounds of the query forms")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    _fulltext.__dict__.update(COMPACT_FRAMES=a.frames)
    if a.bytes is not None:
        _fulltext.__dict__.update(COMPACT_BYTES=parse_size(a.bytes))
    print(f"load average at start: {os.getloadavg()}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-fts-compact-", dir=a.tmp))
    try:
        full, empty = tmp / "a", tmp / "b"
        for dst in (full, empty):
            shutil.copytree(a.cache / "vault", dst, symlinks=True)
        for dst in (full, empty):  # a copy's files are new inodes: every session is stale
            with open_vault(dst) as v:
                t = time.perf_counter()
                v.reindex()
                print(f"{dst.name}: reindexed in {time.perf_counter() - t:.0f} s")
        print(f"copied; segments {_segments(full)}, delta log frames {_frames(full)}")
        with open_vault(full) as va, open_vault(empty) as vb:
            app = Appender(va, full, a.seed)
            while sum(c for _w, _c, c in app.times) < a.compactions:
                app.one()
            _report_appends(app, a.frames)
            while _frames(full) < a.frames - 1:  # copy A: a log one frame under the bound
                app.one()
            other = Appender(vb, empty, a.seed + 1)  # copy B: folded, an empty log
            while not any(c for _w, _c, c in other.times):
                other.one()
            print(
                f"A: {_frames(full)} frames, {_segments(full)} segments; B: {_frames(empty)} frames, {_segments(empty)} segments"
            )
            _queries(va, vb, a.repeat)
        print(f"load average at end: {os.getloadavg()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
