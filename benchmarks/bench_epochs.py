#!/usr/bin/env python3
"""What taking up another device's new epoch costs a pull (issue 26; docs/sync.md, "Devices"),
against a pull with nothing new, in the same run, on a real S3 server (``rclone serve s3`` on
127.0.0.1, from the ``s3-test`` extra).

Device A pushes ``--sessions`` small sessions; device B, enrolled by A, pulls them.  Each round
enrols a throwaway device T on A and B pulls that, then B's **no-op pull** (nothing new) is timed;
then A revokes T (a new epoch, two entries under it) and B's **pickup pull** is timed: it finds
the key object, proves it (reads every device's log once and the maker's signed head) and keeps
the key, then checks and applies as usual.  Both are medians over the rounds, interleaved, wall
clock and this process's CPU time (getrusage: boto3 and the crypto; the server is another
process).  The machine is shared: CPU time is the steadier signal, and only ratios of the same
run compare.

    python benchmarks/bench_epochs.py [--sessions 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' S3 server

from tests._infra.s3server import start_s3_server

from sessionseal import PassphraseProvider, Vault, _device_enroll


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), _cpu()
    fn()
    return (time.perf_counter() - wall) * 1000, (_cpu() - cpu) * 1000


def _enrol(enroller: Vault, new: Vault) -> None:
    step = _device_enroll.request(new)
    device = new.remotes.devices.identity("cloud").device_id.hex
    _device_enroll.accept(enroller, None, device, step.pairing_code or "")
    _device_enroll.finish(new)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_s3_server(Path(tmp) / "s3")
        os.environ.update(server.env())
        try:
            run(Path(tmp), server.bucket, server.endpoint, sessions=args.sessions, rounds=args.rounds)
        finally:
            server.stop()
    load = os.getloadavg()
    print(f"sessions {args.sessions}, rounds {args.rounds}; load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def run(tmp: Path, bucket: str, endpoint: str, *, sessions: int, rounds: int) -> None:
    url = f"s3://{bucket}/epochs"

    def vault(name: str) -> Vault:  # a provider is one vault's: one each
        v = Vault.init(tmp / name, key_provider=PassphraseProvider("bench", log2_n=14))
        v.remotes.add("cloud", url, endpoint=endpoint)
        return v

    a, b = vault("a"), vault("b")
    for i in range(sessions):
        a.save({"title": f"s{i}", "messages": [{"role": "user", "content": f"turn {i} " * 40}]})
    a.remotes.push()
    _enrol(a, b)
    b.remotes.pull()
    noop: list[tuple[float, float]] = []
    pickup: list[tuple[float, float]] = []
    for r in range(rounds):
        with vault(f"t{r}") as t:
            _enrol(a, t)
            b.remotes.pull()
            noop.append(_timed(b.remotes.pull))
            _device_enroll.revoke(a, None, t.remotes.devices.identity("cloud").device_id.hex)
            result: list[object] = []
            pickup.append(_timed(lambda: result.append(b.remotes.pull())))
            assert max(b.remotes.devices.epoch_keys("cloud")) == r + 2
    entries = b.remotes.pull().check.counts()["entries"]
    print(f"| pull on B ({entries} log entries on the remote) | wall ms (median) | CPU ms (median) | n |")
    print("|---|---:|---:|---:|")
    for name, rows in (("nothing new", noop), ("taking up a new epoch", pickup)):
        wall = statistics.median(w for w, _ in rows)
        cpu = statistics.median(c for _, c in rows)
        print(f"| {name} | {wall:.0f} | {cpu:.0f} | {len(rows)} |")
    ratio_wall = statistics.median(p[0] / n[0] for p, n in zip(pickup, noop, strict=True))
    ratio_cpu = statistics.median(p[1] / n[1] for p, n in zip(pickup, noop, strict=True))
    print(f"taking up / nothing new, median of per-round ratios: wall {ratio_wall:.2f}x, CPU {ratio_cpu:.2f}x")
    a.close()
    b.close()


if __name__ == "__main__":
    main()
