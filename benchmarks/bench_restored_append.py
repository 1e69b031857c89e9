#!/usr/bin/env python3
"""One turn appended to each session of a vault restored from a file copy, against the same in
the original (issue 26, "a vault restored from a file copy must sync like the original").

A copy's files have new inodes, so every stamp the full-text index holds differs from its
file's. Before, the append's check compared the whole stamp: the first append to each session of
a copy rewrote it as a new version (O(session), and sync then pushed it whole). It now compares
what the file holds (generation, committed end): the same O(turn) append as in the original.

The vault: ``--sessions`` sessions of about ``--kb`` KiB of text. It is copied with
``shutil.copytree``; then one turn is appended to every session, in the original and in the
copy, alternately. Prints the median CPU time (``time.process_time``) of one append in each,
in ms, and how many appends rewrote their session (a new generation). Run it from the tree
whose ``src`` it should measure (it imports ``../src``), and read ``uptime`` beside it.

    python benchmarks/bench_restored_append.py [--sessions 60] [--kb 64]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sessionseal import PassphraseProvider, Vault


def _session(i: int, kb: int) -> dict[str, object]:
    words = " ".join(f"word{i}x{j}" for j in range(kb * 1024 // 10))
    return {"title": f"s{i}", "messages": [{"role": "user", "content": words}]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=60)
    ap.add_argument("--kb", type=int, default=64)
    args = ap.parse_args()
    provider = PassphraseProvider("bench", log2_n=14)
    with tempfile.TemporaryDirectory() as tmp:
        original, copy = Path(tmp) / "original", Path(tmp) / "copy"
        with Vault.init(original, key_provider=provider) as v:
            ids = [v.save(_session(i, args.kb)) for i in range(args.sessions)]
        shutil.copytree(original, copy, symlinks=True)
        times: dict[str, list[float]] = {"original": [], "copy": []}
        rewritten = dict.fromkeys(times, 0)
        with (
            Vault.open(original, key_provider=provider) as a,
            Vault.open(copy, key_provider=provider) as b,
        ):
            for sid in ids:
                for name, v in (("original", a), ("copy", b)):
                    before = {s.id: s.generation for s in v.list()}[sid]
                    t0 = time.process_time()
                    v.append(sid, [{"role": "assistant", "content": "one more turn"}])
                    times[name].append((time.process_time() - t0) * 1000)
                    rewritten[name] += {s.id: s.generation for s in v.list()}[sid] != before
        for name, ts in times.items():
            print(
                f"{name:8} median {statistics.median(ts):7.2f} ms CPU per append; rewritten {rewritten[name]}/{len(ts)}"
            )


if __name__ == "__main__":
    main()
