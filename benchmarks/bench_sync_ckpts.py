#!/usr/bin/env python3
"""What finding the checkpoints to send costs every push (issue 26; docs/spec/remote-v1.md,
"Checkpoints"; src/sessionseal/_vault/_syncckpt.py): a checkpoint makes no new version of
its session, so a push lists ``checkpoints/`` once and reads the header of every checkpoint
file of a live session, to compare its tag with what the cursor saw.

Measured, on a keychain vault on an in-memory keychain (tests/memkeyring.py), no remote needed:
``CheckpointSync.changed`` with a cursor that saw every checkpoint (the common push: nothing
new), against the vault with no checkpoint at all (one listing, nothing read), interleaved,
medians of CPU time (``time.process_time``: the machine is shared) and of wall time.  This is
the push that finds ``checkpoints/`` changed since the last one (its stamp, ``Cursor.ckpts_dir``,
is cleared before each call); one that finds it as it was reads nothing
(benchmarks/bench_sync_pushcost.py measures that push whole).

    python benchmarks/bench_sync_ckpts.py [--sessions 1000] [--per 1] [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/memkeyring.py

from tests.memkeyring import MemoryKeyring

from sessionseal import KeychainProvider, Vault
from sessionseal._vault._synccursor import Cursor


def _vault(path: Path, sessions: int, per: int) -> tuple[Vault, list[bytes]]:
    v = Vault.init(path, key_provider=KeychainProvider(backend=MemoryKeyring()))
    ids = [v.save({"title": f"s{i}", "messages": [{"role": "user", "content": f"turn {i}"}]}) for i in range(sessions)]
    for sid in ids:
        for j in range(per):
            v.checkpoint(sid, f"point {j}")
    return v, [sid.bytes for sid in ids]


def _time(v: Vault, cursor: Cursor, live: list[bytes]) -> tuple[float, float]:
    cursor.ckpts_dir = None  # the files looked at, as when checkpoints/ changed since the last push
    cpu, wall = time.process_time(), time.perf_counter()
    changed = v.parts.sync.ckpts.changed(cursor, live)
    assert not changed
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--per", type=int, default=1, help="checkpoints per session")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with_, live_w = _vault(Path(tmp) / "with", args.sessions, args.per)
        without, live_n = _vault(Path(tmp) / "without", args.sessions, 0)
        seen = Cursor(uuid.uuid4(), uuid.uuid4())
        first = with_.parts.sync.ckpts.changed(seen, live_w)  # what a push would note
        seen.ckpts = {sid: {n: (tag, None) for n, (_, tag) in files.items()} for sid, files in first.items()}
        empty = Cursor(uuid.uuid4(), uuid.uuid4())
        runs: dict[str, list[tuple[float, float]]] = {"with": [], "without": []}
        for _ in range(args.rounds):
            runs["with"].append(_time(with_, seen, live_w))
            runs["without"].append(_time(without, empty, live_n))
        with_.close()
        without.close()
    for name, got in runs.items():
        cpu = statistics.median(c for c, _ in got) * 1000
        wall = statistics.median(w for _, w in got) * 1000
        per = args.per if name == "with" else 0
        print(f"{name:8} {args.sessions} sessions x {per}: cpu {cpu:.1f} ms, wall {wall:.1f} ms")


if __name__ == "__main__":
    main()
