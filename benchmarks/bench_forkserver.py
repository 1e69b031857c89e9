"""The tests' fork servers' cost per child (tests/_infra/_forkserver.py and its users).

Compares two checkouts of the repository (``--tree``, default this one, against ``--base``, an
older one: e.g. ``git worktree add /tmp/base integ3``), each in a process of its own, rounds
interleaved: per round and tree, a server of each kind is started, runs *children* children, and
is closed. Figures are medians over the rounds, per child: the wall time of a run (fork, the
child's body, its exit, the wait and its output read back), and the CPU time of the server and
its children (``RUSAGE_CHILDREN`` of the measuring process once the server is reaped). The
children are trivial (``pass``; ``sessionseal --version``; a rollback ``keychain`` operation
would need a Secret Service, so the rollback server runs ``list`` on a missing vault): the
figures are the servers' own overhead, not the vault's work. The load average is printed with
the figures: the machine is shared.

    python benchmarks/bench_forkserver.py --base /tmp/base [--rounds 5] [--children 40]
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

HERE = Path(__file__).resolve().parents[1]

#: Run in a process of its own with the tree first on sys.path: one round of every server.
_ROUND = r"""
import json, os, resource, sys, tempfile, time
from pathlib import Path
tree, n = sys.argv[1], int(sys.argv[2])
sys.path.insert(0, tree)
from tests._infra import crash, forkcli, forkscript, rollback

def cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime

out = {}
with tempfile.TemporaryDirectory() as tmp:
    def kind(name, start, call, close):
        c0 = cpu()
        obj = start()
        walls = []
        for _ in range(n):
            t = time.perf_counter()
            call(obj)
            walls.append(time.perf_counter() - t)
        close(obj)
        out[name] = {"wall": sorted(walls)[n // 2], "cpu": (cpu() - c0) / n}

    kind("forkscript", lambda: forkscript.Forker(Path(tmp)), lambda f: f.run("pass"), lambda f: f.close())
    env = {"PATH": os.environ["PATH"], "HOME": tmp}
    kind("forkcli", lambda: forkcli._Server(),
         lambda s: forkcli._run(s, ("--version",), env, None, 60), lambda s: s.close())
    missing = Path(tmp) / "missing"
    kind("rollback", lambda: rollback.Zygote(dict(os.environ)),
         lambda z: z.run("list", path=missing, provider="passphrase"), lambda z: z.close())

    def crash_one(z):
        pid = z.fork({"vault": str(missing), "ack": str(Path(tmp) / "ack"), "seed": 1, "owned": {}, "tag": "b"})
        z.wait(pid, 60)
    kind("crash", lambda: crash.Zygote(), crash_one, lambda z: z.close())
print(json.dumps(out))
"""


def _round(tree: Path, children: int) -> dict[str, dict[str, float]]:
    proc = subprocess.run(
        [sys.executable, "-c", _ROUND, str(tree), str(children)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
    )
    result: dict[str, dict[str, float]] = json.loads(proc.stdout.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=HERE)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--children", type=int, default=40)
    args = parser.parse_args()
    trees = {"base": args.base.resolve(), "tree": args.tree.resolve()}
    seen: dict[tuple[str, str, str], list[float]] = {}
    loads = []
    for _ in range(args.rounds):
        for label, tree in trees.items():  # interleaved: the load changes under both alike
            loads.append(os.getloadavg()[0])
            for kind, figures in _round(tree, args.children).items():
                for what, value in figures.items():
                    seen.setdefault((kind, what, label), []).append(value)
    print(f"load average (1 min) during the runs: {min(loads):.1f} to {max(loads):.1f}")
    print(
        f"{'server':<11} {'base wall':>10} {'tree wall':>10} {'base cpu':>10} {'tree cpu':>10}   (ms per child, medians)"
    )
    for kind in ("forkscript", "forkcli", "rollback", "crash"):
        row = [statistics.median(seen[kind, what, label]) * 1000 for what in ("wall", "cpu") for label in trees]
        print(f"{kind:<11} {row[0]:>10.1f} {row[1]:>10.1f} {row[2]:>10.1f} {row[3]:>10.1f}")


if __name__ == "__main__":
    main()
