#!/usr/bin/env python3
"""Filter commands (stdin -> stdout) timed side by side: wall time and CPU time, rounds interleaved.

Each round runs every command once, as a fresh process, with the input file on stdin and
``/dev/null`` as stdout; the figures are medians (and the best) over the rounds.  CPU time is
user + sys of the command and of every process it waited for (``getrusage(RUSAGE_CHILDREN)``),
which busy neighbours disturb far less than wall time: on a shared machine compare that.
``PYTHONDONTWRITEBYTECODE`` is removed from the commands' environment (a real install has
``.pyc`` files; without them every start compiles the modules again).

    python benchmarks/bench_filter_ab.py FILE [--rounds 9] -- "python -m sessionseal sanitize" "OTHER FILTER" ...

For example, the same sanitize from two worktrees, and sessionkeep as the peer:

    python benchmarks/bench_filter_ab.py transcripts.jsonl --rounds 15 -- \\
        "../base/.venv/bin/python -m sessionseal sanitize" ".venv/bin/python -m sessionseal sanitize" \\
        "/tmp/skvenv/bin/python /tmp/sk_filter.py"
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import subprocess
import time


def _run(cmd: list[str], path: str, env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    with open(path, "rb") as stdin:
        subprocess.run(cmd, stdin=stdin, stdout=subprocess.DEVNULL, env=env, check=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", help="the input, given to each command on stdin")
    ap.add_argument("--rounds", type=int, default=9, help="interleaved rounds (default 9)")
    ap.add_argument("commands", nargs="+", help="filter commands, each one shell-quoted string")
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    commands = [shlex.split(c) for c in args.commands]
    size = os.path.getsize(args.file) / 1e6
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; {size:.1f} MB; {args.rounds} rounds")
    for cmd in commands:  # warm: start-up caches, page cache
        _run(cmd, args.file, env)
    samples: list[list[tuple[float, float]]] = [[] for _ in commands]
    for _ in range(args.rounds):
        for i, cmd in enumerate(commands):
            samples[i].append(_run(cmd, args.file, env))
    for cmd, got in zip(args.commands, samples, strict=True):
        walls, cpus = [w for w, _ in got], [c for _, c in got]
        wall = statistics.median(walls)
        print(
            f"wall {wall * 1000:7.1f} ms ({size / wall:6.1f} MB/s), best {min(walls) * 1000:7.1f} ms"
            f" ({size / min(walls):6.1f} MB/s); cpu {statistics.median(cpus) * 1000:7.1f} ms,"
            f" least {min(cpus) * 1000:7.1f} ms  {cmd}"
        )


if __name__ == "__main__":
    main()
