#!/usr/bin/env python3
"""What a push costs (issue 26): the first push of a large session against a push after one
appended turn, in bytes sent and in time, against a real S3 server (``rclone serve s3`` on
127.0.0.1, from the ``s3-test`` extra), in the same run.

One vault holds one session of ``--size`` (benchmarks/bench_append.py's transcript).  Each round
adds a new remote (a fresh prefix, so a fresh device log) and times its first push (the whole
session), then ``--turns`` pushes that each follow one appended turn (about 2 KB of text:
bench_append.py's turns).  Bytes are what the push PUT (``PushResult.bytes``, equal to what the
server stores); times are wall-clock medians over the rounds and turns.  The machine is shared:
only figures of the same run compare.

    python benchmarks/bench_sync.py [--size 50M] [--rounds 3] [--turns 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_append import label, make_session, make_turn, parse_size

from sessionseal import PassphraseProvider, Vault
from tests._infra.s3server import start_s3_server


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="50M")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--turns", type=int, default=5)
    args = ap.parse_args()
    size = parse_size(args.size)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_s3_server(Path(tmp) / "s3")
        os.environ.update(server.env())
        try:
            run(Path(tmp), server.bucket, server.endpoint, size, args.rounds, args.turns)
        finally:
            server.stop()


def run(tmp: Path, bucket: str, endpoint: str, size: int, rounds: int, turns: int) -> None:
    provider = PassphraseProvider("bench", log2_n=14)
    with Vault.init(tmp / "v", key_provider=provider) as v:
        sid = v.save(make_session(size))
        stored = len(v.load_json(sid))
        first_ms, first_bytes, turn_ms, turn_bytes = [], [], [], []
        k = 0
        for r in range(rounds):
            name = f"r{r}"
            v.remotes.add(name, f"s3://{bucket}/bench/{name}", endpoint=endpoint, check=False)
            t = time.perf_counter()
            first = v.remotes.push(name)
            first_ms.append((time.perf_counter() - t) * 1000)
            first_bytes.append(first.bytes)
            for _ in range(turns):
                v.append(sid, make_turn(k))
                k += 1
                t = time.perf_counter()
                after = v.remotes.push(name)
                turn_ms.append((time.perf_counter() - t) * 1000)
                turn_bytes.append(after.bytes)
                assert after.appended == 1 and after.put == 0, "an appended turn went as a whole session"
    load = os.getloadavg()
    print(f"session: {label(size)} target, {stored:,} bytes stored (JSON); rounds {rounds}, turns {turns}")
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("| push | bytes sent (median) | time (median ms) | n |")
    print("|---|---:|---:|---:|")
    print(f"| first (whole session) | {statistics.median(first_bytes):,.0f} | {statistics.median(first_ms):,.1f} | {len(first_ms)} |")
    print(f"| after one appended turn | {statistics.median(turn_bytes):,.0f} | {statistics.median(turn_ms):,.1f} | {len(turn_ms)} |")
    print(
        f"ratio first/turn: bytes {statistics.median(first_bytes) / statistics.median(turn_bytes):,.0f}x, "
        f"time {statistics.median(first_ms) / statistics.median(turn_ms):,.1f}x"
    )


if __name__ == "__main__":
    main()
