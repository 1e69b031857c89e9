#!/usr/bin/env python3
"""What a delete's rebase costs a push against the vault's size (issue 26; docs/sync.md,
"Deletes"; docs/spec/remote-v1.md, "Rebase and retirement").

A delete makes a new epoch, and the deleting device's push then rebases: it re-seals every live
session its log serves (and the checkpoints it put of them) under the new epoch and sends them
again, so that the old epoch's key can be retired.  So a delete's push costs O(vault), not
O(delete).  This measures it: for each vault size in ``--sizes``, device A saves that many
realistic agent sessions (benchmarks/bench_save.py's transcript, ``--min`` to ``--max`` bytes of
JSON, ``--ckpts`` checkpoints each) and pushes them to a real S3 server (``rclone serve s3`` on
127.0.0.1, from the ``s3-test`` extra, stopped after); then each round, in turn (the order
alternates, so a busy neighbour slows both):

* ``delete``: one session deleted, then the push (tombstone, new epoch, rebase) timed;
* ``save``: one small session saved, then the push (one ``session.put``) timed: the baseline.

Reported per size: the bytes the server holds for A before the rounds, and medians of each
push's bytes sent, wall time and CPU time (this process's ``time.process_time``; the server's
own CPU is not counted), with the load average.  The machine is shared: CPU time is the
steadier signal, and only figures of the same run compare.

    python benchmarks/bench_sync_rebase.py [--sizes 25,100,400] [--rounds 3] [--min 3000]
        [--max 20000] [--ckpts 0]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' S3 server
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_save import make_session
from tests._infra.s3server import S3Server, serving

from sessionseal import PassphraseProvider, Session, Vault


def _seed(tmp: Path, server: S3Server, prefix: str, n: int, args: argparse.Namespace) -> tuple[Vault, list[uuid.UUID]]:
    rng = random.Random(n)
    a = Vault.init(tmp / prefix, key_provider=PassphraseProvider("bench", log2_n=14))
    a.remotes.add("cloud", f"s3://{server.bucket}/{prefix}", endpoint=server.endpoint, check=False)
    ids = []
    for i in range(n):
        doc = make_session(rng.randint(args.min, args.max), seed=i)
        doc["title"] = f"bench session {i}"
        sid = a.save(Session.model_validate(doc))
        for j in range(args.ckpts):
            a.checkpoint(sid, f"point {j}")
        ids.append(sid)
    assert a.remotes.push().put == n
    return a, ids


def _stored(server: S3Server, prefix: str) -> int:
    return sum(f.stat().st_size for f in (server.root / server.bucket / prefix).rglob("*") if f.is_file())


def _push(a: Vault) -> tuple[float, float, int, int]:
    cpu, wall = time.process_time(), time.perf_counter()
    pushed = a.remotes.push()
    return time.perf_counter() - wall, time.process_time() - cpu, pushed.bytes, pushed.rebased


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="25,100,400", help="vault sizes in sessions, comma-separated")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min", type=int, default=3000, help="a session's JSON bytes, at least")
    ap.add_argument("--max", type=int, default=20000, help="a session's JSON bytes, at most")
    ap.add_argument("--ckpts", type=int, default=0, help="checkpoints per session")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with serving(tmp / "s3") as server:
            for n in (int(x) for x in args.sizes.split(",")):
                prefix = f"bench{n}"
                a, ids = _seed(tmp, server, prefix, n, args)
                stored = _stored(server, prefix)
                runs: dict[str, list[tuple[float, float, int, int]]] = {"delete": [], "save": []}
                for r in range(args.rounds):
                    for what in ("delete", "save") if r % 2 == 0 else ("save", "delete"):
                        if what == "delete":
                            a.delete(ids.pop())
                        else:
                            a.save({"title": f"new {r}", "messages": [{"role": "user", "content": f"turn {r}"}]})
                        runs[what].append(_push(a))
                load = " ".join(f"{x:.1f}" for x in os.getloadavg())
                rows.append((n, stored, runs, load))
                print(f"{n} sessions done; load average {load}", file=sys.stderr)
                a.close()
    print("| sessions | on the server | push after | bytes sent | wall (median) | CPU (median) | rebased | load |")
    print("|---:|---:|---|---:|---:|---:|---:|---|")
    for n, stored, runs, load in rows:
        for what, got in runs.items():
            med = [statistics.median(x[i] for x in got) for i in range(4)]
            print(
                f"| {n} | {stored:,} B | one {what} | {int(med[2]):,} B | {med[0] * 1000:.0f} ms "
                f"| {med[1] * 1000:.0f} ms | {int(med[3])} | {load} |"
            )
    print(orjson.dumps({"args": vars(args)}).decode(), file=sys.stderr)


if __name__ == "__main__":
    main()
