#!/usr/bin/env python3
"""What ``verify`` costs, as ratios to ``reindex`` measured in the same run (issue 9).

``reindex`` reads every session's header and last summary and rewrites the index: the same
reads as ``verify`` without ``--read-data``, so it is the baseline.  Also measured: opening
the vault (which sweeps killed writers' temp files), ``verify``, ``verify --read-data`` (every
frame decrypted, every document validated) and, for scale, ``load_json`` of every session
one by one (each load is audited: an fsync each).

    python benchmarks/bench_verify.py [--sessions 2000] [--turns 20] [--repeat 3]
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

from sessionseal import PassphraseProvider, Vault

PASSPHRASE = "bench"  # noqa: S105  (a throwaway vault in a temp dir)


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def build(path: Path, n: int, turns: int) -> None:
    with Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
        for i in range(n):
            sid = v.save(
                {
                    "title": f"session {i}",
                    "tags": ["bench"],
                    "messages": [
                        {"role": "user" if k % 2 == 0 else "assistant", "content": f"turn {k} of {i} " + "x" * 400}
                        for k in range(turns)
                    ],
                }
            )
            if i % 10 == 0:
                v.append(sid, [{"role": "user", "content": "one more turn"}])
            if i % 50 == 0:
                v.checkpoint(sid)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=2000)
    ap.add_argument("--turns", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vault"
        t = time.perf_counter()
        build(path, args.sessions, args.turns)
        print(
            f"built {args.sessions} sessions of {args.turns} turns in {time.perf_counter() - t:.1f} s", file=sys.stderr
        )
        with Vault.open(path, passphrase=PASSPHRASE) as v:
            v.list()  # keys and index read once, as any later command's would be
            ids = [s.id for s in v.list()]
            rows = [
                ("reindex (baseline)", median_ms(v.reindex, args.repeat)),
                ("open (temp sweep)", median_ms(lambda: Vault.open(path, passphrase=PASSPHRASE).close(), args.repeat)),
                ("verify", median_ms(v.verify, args.repeat)),
                ("verify --read-data", median_ms(lambda: v.verify(read_data=True), args.repeat)),
                ("load_json of each (audited)", median_ms(lambda: [v.load_json(i) for i in ids], args.repeat)),
            ]
            result = v.verify(read_data=True)
            if result.problems:
                raise SystemExit(f"the vault does not verify: {result.problems}")
    base = rows[0][1]
    print(f"| step ({args.sessions} sessions, {args.turns} turns each) | time | vs reindex |")
    print("|---|---|---|")
    for name, ms in rows:
        print(f"| {name} | {ms:.0f} ms | {ms / base:.2f}x |")


if __name__ == "__main__":
    main()
