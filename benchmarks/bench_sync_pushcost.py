#!/usr/bin/env python3
"""What a push costs when little changed, this tree against another, interleaved in one run
(issue 26, "Speed": a push's cost should follow what changed; docs/sync.md, "Push" and
"Deletes").

Two scenarios, each measured by one long-lived process per source tree (``--base``, a ``git
worktree add`` of the ref to compare against, and this tree), its ``src`` first on ``sys.path``,
each with vaults of its own under a prefix of its own on one ``rclone serve s3`` on 127.0.0.1.
The parent tells both to take a step, in the order base, this, then this, base, and so on, so a
busy neighbour slows both alike; each reports its step's CPU time (``time.process_time``: the
machine is shared), wall time, and the S3 GETs, LISTs and PUTs it made with the CPU time spent
inside each kind (``time.thread_time`` around each call, summed: counted by wrapping
``S3Store``'s methods in the child, instrumentation, not a change of what runs).

* ``ckpts``: one vault of ``--sessions`` sessions with ``--per`` checkpoints each, pushed, then
  pushed again after a few seconds (what a push after a quiet while sees); a step is one push with
  nothing changed (the common automatic push: it must still find that no checkpoint changed).
* ``delete``: devices A, B and C on one remote (B and C enrolled by A), B and C with
  ``--entries`` sessions each in their logs, A with ``--own``; another device's key object that
  never gets its proof (a planted one, or one still uploading: *pending*) sits under B's prefix.
  A step is: B saves and pushes one session (untimed), then A deletes one of its sessions and
  pushes (timed: the tombstone, its new epoch, the rebase of A's few sessions).
* ``rebase``: one device with ``--sessions`` agent sessions of 3 to 20 kB of JSON
  (benchmarks/bench_save.py's), pushed; a step is one of them deleted, then the push (the
  tombstone, the new epoch, and the rebase restating every other session: O(vault) by design).

    python benchmarks/bench_sync_pushcost.py --base /tmp/base [--scenario ckpts,delete,rebase]
        [--rounds 5] [--sessions 300] [--per 1] [--entries 300] [--own 5]
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' S3 server

from tests._infra.s3server import serving

HERE = Path(__file__).resolve().parents[1]

#: The measuring process: argv[1] the tree, argv[2] a JSON of the settings; one JSON line out
#: per line in ("go"), after a "ready" line once its vaults are made.
CHILD = r"""
import json, os, sys, time, uuid
from pathlib import Path
tree, cfg = sys.argv[1], json.loads(sys.argv[2])
sys.path[:0] = [tree + "/src", tree]
from sessionseal import KeychainProvider, Vault, _crypto, _device_enroll, _remote, _remotekeys, _s3
from tests.memkeyring import MemoryKeyring

calls = {"get": 0, "list": 0, "put": 0, "get_cpu": 0.0, "list_cpu": 0.0, "put_cpu": 0.0}
def counted(name):
    real = getattr(_s3.S3Store, name)
    def wrapper(self, *a, **k):
        calls[name] += 1
        t = time.thread_time()  # the calling thread's: a pull's GETs run in threads of their own
        try:
            return real(self, *a, **k)
        finally:
            calls[name + "_cpu"] += time.thread_time() - t
    setattr(_s3.S3Store, name, wrapper)
counted("get"); counted("list"); counted("put")

tmp, url, endpoint = Path(cfg["tmp"]), cfg["url"], cfg["endpoint"]
kr = MemoryKeyring()
def vault(name):
    v = Vault.init(tmp / name, key_provider=KeychainProvider(backend=kr))
    v.remotes.add("cloud", url, endpoint=endpoint, check=False)
    return v
def save(v, title):
    return v.save({"title": title, "messages": [{"role": "user", "content": title + " " + "x" * 200}]})
def device(v):
    return v.remotes.devices.identity("cloud").device_id

def step(fn):
    before = dict(calls)
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"cpu": cpu, "wall": wall, "bytes": out.bytes, **{k: calls[k] - before[k] for k in calls}}

if cfg["scenario"] == "ckpts":
    v = vault("v")
    for i in range(cfg["sessions"]):
        sid = save(v, f"s{i}")
        for j in range(cfg["per"]):
            v.checkpoint(sid, f"point {j}")
    v.remotes.push()
    time.sleep(3.5)  # checkpoints/ settled (_syncckpt.SETTLED_NS): what a push after a quiet while sees
    v.remotes.push()
    def go():
        r = v.remotes.push()
        assert r.entries == 0, r.counts()
        return r
elif cfg["scenario"] == "rebase":
    import random
    sys.path.insert(0, tree + "/benchmarks")
    from bench_save import make_session
    v, rng, mine = vault("v"), random.Random(1), []
    for i in range(cfg["sessions"]):
        doc = make_session(rng.randint(3000, 20000), seed=i)
        doc["title"] = f"s{i}"
        mine.append(v.save(doc))
    v.remotes.push()
    def go():
        v.delete(mine.pop())
        r = v.remotes.push()
        assert r.tombstoned == 1 and r.rebased == len(mine), r.counts()
        return r
else:
    a, b, c = vault("a"), vault("b"), vault("c")
    mine = [save(a, f"a{i}") for i in range(cfg["own"])]
    a.remotes.push()
    for other in (b, c):
        step_ = _device_enroll.request(other)
        _device_enroll.accept(a, None, device(other).hex, step_.pairing_code or "")
        _device_enroll.finish(other)
        for i in range(cfg["entries"]):
            save(other, f"o{i}")
        other.remotes.push()
    for v in (a, b, c):
        v.remotes.pull()
    ident = a.remotes.devices.identity("cloud")
    rid, held = ident.remote_id, a.remotes.devices.epoch_keys("cloud")
    epoch = max(held) + 1
    stanza = _remotekeys.wrap_for_device(_crypto.new_key(), rid, epoch, ident.device_id, ident.x25519_public)
    planted = _remotekeys.keys_object(rid, epoch, device(b), [stanza])
    store = _s3.open_store(_remote.parse_url(url), endpoint=endpoint, profile=None, region=None)
    store.put(_remote.device_prefix(_remote.parse_url(url), device(b)) + f"keys/{epoch:08x}", planted)
    n = [0]
    def go():
        n[0] += 1
        save(b, f"b round {n[0]}")
        b.remotes.push()
        a.delete(mine.pop())
        r = a.remotes.push()
        assert r.tombstoned == 1, r.counts()
        return r
print("ready", flush=True)
for line in sys.stdin:
    print(json.dumps(step(go)), flush=True)
"""


class Child:
    """One tree's measuring process."""

    def __init__(self, tree: Path, cfg: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tree), json.dumps(cfg)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            raise SystemExit(f"the {tree} child did not start: {line!r}")

    def step(self) -> dict[str, float]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("a child failed (its error is above)")
        return dict(json.loads(line))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the source tree to compare against")
    ap.add_argument("--scenario", default="ckpts,delete,rebase")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sessions", type=int, default=300, help="ckpts, rebase: sessions in the vault")
    ap.add_argument("--per", type=int, default=1, help="ckpts: checkpoints per session")
    ap.add_argument("--entries", type=int, default=300, help="delete: sessions in each of B's and C's logs")
    ap.add_argument("--own", type=int, default=5, help="delete: A's sessions (at least --rounds)")
    args = ap.parse_args()
    trees = {"base": Path(args.base).resolve(), "this": HERE}
    rows = []
    with tempfile.TemporaryDirectory(prefix="pushcost-") as tmp_name:
        tmp = Path(tmp_name)
        with serving(tmp / "s3") as server:
            for scenario in args.scenario.split(","):
                children = {
                    name: Child(
                        tree,
                        {
                            "scenario": scenario,
                            "tmp": str(tmp / f"{scenario}-{name}"),
                            "url": f"s3://{server.bucket}/{scenario}-{name}",
                            "endpoint": server.endpoint,
                            "sessions": args.sessions,
                            "per": args.per,
                            "entries": args.entries,
                            "own": max(args.own, args.rounds),
                        },
                    )
                    for name, tree in trees.items()
                }
                load = [os.getloadavg()[0]]
                got: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
                for r in range(args.rounds):
                    for name in ("base", "this") if r % 2 == 0 else ("this", "base"):
                        got[name].append(children[name].step())
                        print(f"{scenario} round {r + 1} {name}: {got[name][-1]}", file=sys.stderr)
                    load.append(os.getloadavg()[0])
                for child in children.values():
                    child.close()
                rows.append((scenario, got, min(load), max(load)))
    print("| scenario | tree | CPU (median) | wall (median) | GETs | LISTs | bytes sent | load |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for scenario, got, lo, hi in rows:
        for name, xs in got.items():
            med = {k: statistics.median(x[k] for x in xs) for k in xs[0]}
            print(
                f"| {scenario} | {name} | {med['cpu'] * 1000:.1f} ms | {med['wall'] * 1000:.1f} ms | {med['get']:.0f} "
                f"| {med['list']:.0f} | {med['bytes']:,.0f} | {lo:.1f}-{hi:.1f} |"
            )
        ratio = statistics.median(t["cpu"] / b["cpu"] for t, b in zip(got["this"], got["base"], strict=True))
        print(f"| {scenario} | this / base, CPU (median of per-round ratios) | {ratio:.2f}x | | | | | |")
    print()
    print("| scenario | tree | CPU (median) | in GETs | in PUTs | in LISTs | PUTs | CPU a PUT |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for scenario, got, _, _ in rows:
        for name, xs in got.items():
            med = {k: statistics.median(x.get(k, 0.0) for x in xs) for k in xs[0]}
            print(
                f"| {scenario} | {name} | {med['cpu'] * 1000:.1f} ms | {med['get_cpu'] * 1000:.1f} ms "
                f"| {med['put_cpu'] * 1000:.1f} ms | {med['list_cpu'] * 1000:.1f} ms | {med['put']:.0f} "
                f"| {med['put_cpu'] / med['put'] * 1000 if med['put'] else 0.0:.2f} ms |"
            )


if __name__ == "__main__":
    main()
