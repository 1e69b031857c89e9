#!/usr/bin/env python3
"""What erasing a tombstone's sessions costs a pulling device (issue 26; docs/sync.md,
"Deletes"): the sessions erased one ``delete`` each (a master-key rotation per session, what a
pull did before ``Erasure.delete_many``) against one ``delete_many`` (one rotation per batch of
128, as ``cleanup`` does), on vaults of the same sessions, in the same run, rounds interleaved.

No remote is involved: this is the local half of applying a tombstone, the part that grows with
the number of sessions it names.  Reported: medians over the rounds of wall-clock time and of
the process's CPU time (``getrusage``; the machine is shared, so CPU time is the steadier
signal), and their ratio against the per-session baseline.

    python benchmarks/bench_tomb_erase.py [--sessions 50] [--keep 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sessionseal import PassphraseProvider, Vault


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _vault(path: Path, sessions: int, keep: int) -> tuple[Vault, list[uuid.UUID]]:
    v = Vault.init(path, key_provider=PassphraseProvider("bench", log2_n=14))
    ids = []
    for i in range(sessions + keep):
        turns = [{"role": "user", "content": f"session {i} turn {j} " * 20} for j in range(10)]
        ids.append(v.save({"title": f"s{i}", "messages": turns}))
    return v, ids[:sessions]


def _timed(erase: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), _cpu()
    erase()
    return (time.perf_counter() - wall) * 1000, (_cpu() - cpu) * 1000


def _each(delete: Callable[[uuid.UUID], None], sids: list[uuid.UUID]) -> None:
    for sid in sids:
        delete(sid)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=50, help="sessions the tombstone names")
    ap.add_argument("--keep", type=int, default=50, help="other sessions in the vault")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    got: dict[str, list[tuple[float, float]]] = {"one delete each": [], "delete_many": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name in list(got) if r % 2 == 0 else list(reversed(got)):  # interleaved
                v, doomed = _vault(Path(tmp) / f"{name}-{r}".replace(" ", "_"), args.sessions, args.keep)
                erasure = v.parts.erasure
                with v:
                    if name == "delete_many":
                        got[name].append(_timed(lambda: erasure.delete_many(doomed)))
                    else:
                        got[name].append(_timed(lambda: _each(erasure.delete, doomed)))
    base_wall = statistics.median(w for w, _ in got["one delete each"])
    base_cpu = statistics.median(c for _, c in got["one delete each"])
    print(
        f"| erasing {args.sessions} sessions of {args.sessions + args.keep} | wall ms | CPU ms | wall ratio | CPU ratio |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, runs in got.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"| {name} | {wall:.0f} | {cpu:.0f} | {wall / base_wall:.2f} | {cpu / base_cpu:.2f} |")
    load = os.getloadavg()
    print(f"rounds {args.rounds}; load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
