#!/usr/bin/env python3
"""What one S3 request costs in CPU, the lean way against the boto3 client's (issue 26, "Speed";
docs/design.md, "The S3 client: boto3": the lean GET, HEAD and PUT of ``_s3lean.py``).

One ``rclone serve s3`` on 127.0.0.1 (the tests' fixture, from the ``s3-test`` extra) and one
``S3Store`` opened as a remote opens it.  Each round makes, for each kind in turn, ``--count``
requests of objects of ``--size`` bytes, lean and through the client (the same store with the
lean path off, as a request it cannot do: every request through ``put_object``, ``get_object``,
``head_object``), the order of the kinds rotating between rounds so a busy neighbour slows each
alike.  Reported: the CPU time of the calling thread (``time.thread_time``: the machine is
shared, and the server's CPU is its own process's) per request, its median over the rounds, the
median of each round's lean / client ratio, and the load average.  Only figures of the same run
compare.

    python benchmarks/bench_s3_lean.py [--count 200] [--size 5000] [--rounds 5] [--kinds put,get,head]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' S3 server

from tests._infra.s3server import serving

from sessionseal import _remote, _s3


def _put(store: _s3.S3Store, data: bytes, key: str) -> None:
    store.put(key, data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=200, help="requests of each kind a round")
    ap.add_argument("--size", type=int, default=5000, help="an object's bytes (a rebased session's: about 5 kB)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--kinds", default="put,get,head")
    args = ap.parse_args()
    kinds = [f"{k} {way}" for k in args.kinds.split(",") for way in ("lean", "client")]
    got: dict[str, list[float]] = {k: [] for k in kinds}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="bench-s3-lean-") as tmp, serving(Path(tmp) / "s3") as server:
        os.environ.update(server.env())
        os.environ.pop("AWS_PROFILE", None)
        url = _remote.parse_url(f"s3://{server.bucket}/bench")
        lean = _s3.open_store(url, endpoint=server.endpoint, profile=None, region=None)
        client = dataclasses.replace(lean, lean=None)
        data = os.urandom(args.size)
        keys = [f"bench/{i:06d}" for i in range(args.count)]
        for key in keys:  # what the GETs and HEADs read; the PUTs write these names again
            client.put(key, data)
        lean.get(keys[0])  # the lean path's set-up (one presigned URL), outside the timing
        for r in range(args.rounds):
            for kind in kinds[r % len(kinds) :] + kinds[: r % len(kinds)]:
                op, way = kind.split()
                store = lean if way == "lean" else client
                calls: dict[str, Callable[[str], object]] = {
                    "put": partial(_put, store, data),
                    "get": store.get,
                    "head": store.exists,
                }
                call = calls[op]
                t = time.thread_time()
                for key in keys:
                    call(key)
                got[kind].append((time.thread_time() - t) / args.count)
            load.append(os.getloadavg()[0])
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1] * 1000:.2f} ms" for k, v in got.items()), file=sys.stderr)
        if lean.lean is None or not (lean.lean.on and lean.lean.writes):
            sys.exit("the lean path fell back to the client: its figures are not the lean path's")
    print(
        f"| request ({args.size:,} B objects, {args.count} a round, {args.rounds} rounds) | lean CPU | client CPU | lean / client |"
    )
    print("|---|---:|---:|---:|")
    for op in args.kinds.split(","):
        lean_s, client_s = got[f"{op} lean"], got[f"{op} client"]
        ratio = statistics.median(a / b for a, b in zip(lean_s, client_s, strict=True))
        print(
            f"| {op.upper()} | {statistics.median(lean_s) * 1000:.2f} ms | {statistics.median(client_s) * 1000:.2f} ms "
            f"| {ratio:.2f}x |"
        )
    print(f"load average {min(load):.1f} to {max(load):.1f} (1 min)")


if __name__ == "__main__":
    main()
