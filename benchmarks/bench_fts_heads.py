#!/usr/bin/env python3
"""A cold append from a fresh process, to a session deep in a full delta log (issue 23: "an
append of one turn stays O(turn)"; docs/spec/fts-v1.md, "Heads checkpoint").

The vault: ``--deep`` sessions saved at the start of a delta log, then ``--frames`` one-turn
appends round robin over ``--hot`` other sessions (the compaction thresholds lifted, in every
process: the vault's own fold the log at 64 frames, 2,000 until 2026-12, so the default 1,999
is the old bound's full log). Then, in
interleaved rounds, each a real fresh process (``python -c``) that opens the vault and appends
one turn (``bench_append.make_turn``) to a deep session no other round touched:

* ``off``: the index off (``SESSIONSEAL_BENCH_NO_FTS=1``), the baseline;
* ``before``: the code in ``--before`` (a ``src/`` directory: ``git archive main src | tar -x``),
  which folds the whole log when the session is not among its last 32 records;
* ``after``: this tree's code, which reads the log's heads checkpoint and the records after it.

And ``warm``: one process appends ``--warm`` turns round robin over the hot sessions after one
untimed append (its memory of the log kept: a long-running writer, the MCP server, an importer),
with each code; its median includes the checkpoint rewritten every 32 records.

Each child times ``Vault.append`` alone (wall, and its CPU time by ``getrusage``: on a shared
machine the CPU time is the steadier signal); the process start, the key store's unlock and
the process's first append (imports, the sanitizer's patterns: paid on a spare session with the
index off) are not counted. Medians over ``--repeat`` rounds; the load average is printed at the start and end.

    python benchmarks/bench_fts_heads.py --before /tmp/base/src [--frames 1999] [--repeat 11]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_append import make_session, make_turn
from bench_fts_delta import _delta_stats

from sessionseal import PassphraseProvider, Vault
from sessionseal._vault import _fulltext

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
CHILD = """
import json, resource, sys, time, uuid
src, bench, path, ids, first, spare = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
sys.path[:0] = [src, bench]
import sessionseal  # before bench_append, which puts this tree's src/ first on the path
from sessionseal import Vault
from sessionseal._vault import _fulltext
from bench_append import make_turn
assert sessionseal.__file__.startswith(src), sessionseal.__file__
_fulltext.COMPACT_FRAMES = _fulltext.COMPACT_BYTES = 1 << 40  # the log stays full

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

out = []
with Vault.open(path, passphrase="bench", auto_cleanup=False) as v:
    # The process's first append pays what every first use does (imports, the sanitizer's
    # patterns, index.sst): paid here, on a spare session, without the index.
    enabled, v.parts.fulltext.enabled = v.parts.fulltext.enabled, False
    v.append(uuid.UUID(spare), make_turn(0))
    v.parts.fulltext.enabled = enabled
    for i, sid in enumerate(ids):
        turn = make_turn(first + i)
        w, c = time.perf_counter(), cpu()
        v.append(uuid.UUID(sid), turn)
        out.append(((time.perf_counter() - w) * 1000, (cpu() - c) * 1000))
print(json.dumps(out))
"""


def _child(
    src: Path, path: Path, ids: list[str], first: int, *, spare: str, off: bool = False
) -> list[tuple[float, float]]:
    env = {k: v for k, v in os.environ.items() if k != "SESSIONSEAL_BENCH_NO_FTS"}
    if off:
        env["SESSIONSEAL_BENCH_NO_FTS"] = "1"
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(src), str(HERE), str(path), json.dumps(ids), str(first), spare],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    return [(w, c) for w, c in json.loads(run.stdout)]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", type=Path, required=True, help="the src/ directory of the code to compare with")
    ap.add_argument("--frames", type=int, default=1999)
    ap.add_argument("--hot", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--warm", type=int, default=64)
    args = ap.parse_args()
    print(f"load average at the start: {_load()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "v"
        _fulltext.__dict__.update(COMPACT_BYTES=1 << 40, COMPACT_FRAMES=1 << 40)
        with Vault.init(root, key_provider=PassphraseProvider("bench", log2_n=14)) as v:
            deep = [str(v.save(make_session(2000, seed=i))) for i in range(3 * args.repeat)]
            hot = [str(v.save(make_session(2000, seed=1000 + i))) for i in range(args.hot)]
            spare = str(v.save(make_session(2000, seed=999)))
            turn = 0
            while _delta_stats(root / "fts")[1] < args.frames:
                v.append(hot[turn % args.hot], make_turn(turn))
                turn += 1
        size, frames = _delta_stats(root / "fts")
        print(f"delta log: {frames} frames, {size / 2**20:.2f} MiB; deep sessions' last records at 0..{len(deep) - 1}")
        rows: dict[str, list[tuple[float, float]]] = {k: [] for k in ("off", "before", "after")}
        warm: dict[str, list[tuple[float, float]]] = {"before": [], "after": []}
        for r in range(args.repeat):
            rows["off"] += _child(SRC, root, [deep[3 * r]], turn, spare=spare, off=True)
            rows["before"] += _child(args.before, root, [deep[3 * r + 1]], turn + 1, spare=spare)
            rows["after"] += _child(SRC, root, [deep[3 * r + 2]], turn + 2, spare=spare)
            turn += 3
            if r < 3:  # warm: a few processes of --warm appends each, interleaved
                for name, src in (("before", args.before), ("after", SRC)):
                    ids = [hot[i % args.hot] for i in range(args.warm + 1)]
                    warm[name] += _child(src, root, ids, turn, spare=spare)[1:]
                    turn += args.warm + 1
        size, frames = _delta_stats(root / "fts")
        print(f"delta log at the end: {frames} frames, {size / 2**20:.2f} MiB")
        base_w = statistics.median(w for w, _ in rows["off"])
        base_c = statistics.median(c for _, c in rows["off"])
        print("| append of one turn | wall median (ms) | vs off | CPU median (ms) | vs off |")
        print("|---|---:|---:|---:|---:|")
        for name, label in (
            ("off", "index off (baseline)"),
            ("before", "cold, fresh process, before"),
            ("after", "cold, fresh process, after"),
        ):
            w = statistics.median(x for x, _ in rows[name])
            c = statistics.median(x for _, x in rows[name])
            print(f"| {label} | {w:.2f} | {w / base_w:.2f} | {c:.2f} | {c / base_c:.2f} |")
        for name in ("before", "after"):
            w = statistics.median(x for x, _ in warm[name])
            c = statistics.median(x for _, x in warm[name])
            mw = statistics.mean(x for x, _ in warm[name])
            print(
                f"| warm, one process, {name} | {w:.2f} (mean {mw:.2f}) | {w / base_w:.2f} | {c:.2f} | {c / base_c:.2f} |"
            )
    print(f"load average at the end: {_load()}")


if __name__ == "__main__":
    main()
