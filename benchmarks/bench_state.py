#!/usr/bin/env python3
"""Save, append, delete and ``list`` at 10 and 10,000 sessions, against a baseline git ref in
the same run (issue 20, "Speed": anchoring the vault's state must not make a write O(vault
size); each operation stays within 1.2x of the baseline's figure).

Two sides: the working tree's ``src/`` (uncommitted changes included) and ``--baseline REF``
(default ``main``), extracted with ``git archive`` into a temp dir. Each side builds its own
vault of each size with its own code (a new on-disk format need not be readable by the
other), in a subprocess whose ``PYTHONPATH`` is that side's ``src``. Then the sides take turns,
round by round (A B, B A, A B, ...), each round a fresh subprocess that opens its vault once
(passphrase provider, scrypt 2^14, so the key costs nothing after the open) and times:

* ``save``: a new small session (the key-table append, the file, the index delta, the audit
  record), ``--per-round`` times;
* ``append``: one turn appended to an existing session, as often;
* ``list``: ``Vault.list()`` of every session (index read, every file's stamp checked);
* ``delete``: the sessions this round saved, one by one (each a crypto-erase: the key table
  and the index are rewritten under a new master key, already O(sessions) bytes today).

So the vault keeps its size. Medians over every sample of every round; ``ratio`` is the working
tree's median over the baseline's. Only the public API is used, so the script measures any
two versions.

    python benchmarks/bench_state.py [--baseline main] [--sizes 10,1000] [--full]
        [--rounds 6] [--per-round 5] [--keep DIR] [--json out.json]

``--full`` measures 10 and 10,000 sessions (the issue's sizes); building 10,000 sessions takes
a few minutes per side (the build time is printed and in the JSON). ``--keep DIR`` keeps the
built vaults there, keyed by each side's tree hash, and reuses them on the next run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PASSPHRASE = "bench"  # noqa: S105  (throwaway vaults in a temp dir)
OPS = ("save", "append", "list", "delete")
BAR = 1.2


# -- worker side: runs under one side's src, public API only ---------------------------------


def _doc(i: int, title: str = "bench") -> dict[str, Any]:
    return {
        "title": f"{title} {i}",
        "status": "completed",
        "tags": ["bench", f"t{i % 7}"],
        "workspace": f"/home/dev/project{i % 20}",
        "messages": [
            {"role": "user", "content": f"please fix test {i}"},
            {"role": "assistant", "content": "done, the test passes now", "model": "m1"},
        ],
    }


def worker_build(vault: Path, sessions: int) -> dict[str, Any]:
    from sessionseal import PassphraseProvider, Vault

    start = time.perf_counter()
    with Vault.init(vault, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
        for i in range(sessions):
            v.save(_doc(i))
            if sessions >= 1000 and i % (sessions // 10) == 0:
                print(f"  {vault.name}: built {i}/{sessions}", file=sys.stderr)
    return {"build_seconds": time.perf_counter() - start}


def worker_measure(vault: Path, per_round: int) -> dict[str, Any]:
    from sessionseal import Vault

    times: dict[str, list[float]] = {op: [] for op in OPS}
    with Vault.open(vault, passphrase=PASSPHRASE, auto_cleanup=False) as v:
        existing = [s.id for s in v.list(archived=None)]
        # Untimed warm-up: the key table, the sanitizer, the index are loaded once per process.
        warm = v.save(_doc(0, "warm-up"))
        v.append(warm, [{"role": "user", "content": "warm-up turn"}])
        v.list()
        v.delete(warm)
        targets = existing[: max(1, min(len(existing), per_round))] or [v.save(_doc(1, "target"))]
        made = []
        for i in range(per_round):
            t = time.perf_counter()
            made.append(v.save(_doc(i, "measured")))
            times["save"].append(time.perf_counter() - t)
        for i in range(per_round):
            sid = targets[i % len(targets)]
            t = time.perf_counter()
            v.append(sid, [{"role": "assistant", "content": f"appended turn {i}"}])
            times["append"].append(time.perf_counter() - t)
        for _ in range(per_round):
            t = time.perf_counter()
            v.list()
            times["list"].append(time.perf_counter() - t)
        for sid in made:
            t = time.perf_counter()
            v.delete(sid)
            times["delete"].append(time.perf_counter() - t)
    return {"times": times}


# -- driver side -----------------------------------------------------------------------------


def extract(ref: str, dest: Path) -> str:
    """``git archive REF src`` into *dest*; returns the commit."""
    git = shutil.which("git")
    if git is None:
        raise SystemExit("bench_state.py needs git to extract the baseline")
    commit = subprocess.run(
        [git, "-C", str(REPO), "rev-parse", "--verify", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    data = subprocess.run(
        [git, "-C", str(REPO), "archive", "--format=tar", commit, "src"], capture_output=True, check=True
    )
    with tarfile.open(fileobj=io.BytesIO(data.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return commit


def tree_hash(src: Path) -> str:
    """A hash of a side's sources (the working tree's uncommitted changes included)."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(src.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(p.relative_to(src).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def call(src: Path, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    env.pop("SESSIONSEAL_PASSPHRASE", None)
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", *args],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),  # never import a side's code from the current directory
    )
    reply: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return reply


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", default="main", metavar="REF", help="git ref to compare with (default main)")
    ap.add_argument("--sizes", default="10,1000", help="vault sizes in sessions (default 10,1000)")
    ap.add_argument("--full", action="store_true", help="the issue's sizes: 10 and 10,000 sessions")
    ap.add_argument("--rounds", type=int, default=6, help="rounds per side and size (default 6)")
    ap.add_argument("--per-round", type=int, default=5, help="operations of each kind per round (default 5)")
    ap.add_argument("--keep", metavar="DIR", help="keep the built vaults here and reuse them")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.worker:
        kind, vault, n = a.worker[0], Path(a.worker[1]), int(a.worker[2])
        out = worker_build(vault, n) if kind == "build" else worker_measure(vault, n)
        print(json.dumps(out))
        return

    sizes = [10, 10_000] if a.full else [int(s) for s in a.sizes.split(",")]
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-state-"))
    try:
        commit = extract(a.baseline, tmp / "baseline")
        sides = {"tree": REPO / "src", "baseline": tmp / "baseline" / "src"}
        hashes = {side: tree_hash(src) for side, src in sides.items()}
        vaults, builds = build_all(sides, hashes, sizes, Path(a.keep) if a.keep else tmp / "vaults")
        samples = measure_all(sides, vaults, sizes, a.rounds, a.per_round)
        results = summarize(samples, sizes)
        seconds = time.perf_counter() - started
        report(results, a.baseline, commit, a.rounds, a.per_round)
        print(f"took {seconds:.0f} s", file=sys.stderr)
        if a.json:
            out = {
                "baseline": a.baseline,
                "baseline_commit": commit,
                "tree_hashes": hashes,
                "rounds": a.rounds,
                "per_round": a.per_round,
                "bar": BAR,
                "build_seconds": builds,
                "seconds": seconds,
                "results": results,
            }
            Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


Samples = dict[str, dict[int, dict[str, list[float]]]]


def build_all(
    sides: dict[str, Path], hashes: dict[str, str], sizes: list[int], store: Path
) -> tuple[dict[tuple[str, int], Path], dict[str, dict[str, float]]]:
    """Each side's vault of each size, built by that side's code (or found in *store*)."""
    store.mkdir(parents=True, exist_ok=True)
    vaults: dict[tuple[str, int], Path] = {}
    builds: dict[str, dict[str, float]] = {side: {} for side in sides}
    for n in sizes:
        for side, src in sides.items():
            vault = store / f"{side}-{hashes[side]}-{n}"
            if not (vault / "vault.json").exists():
                shutil.rmtree(vault, ignore_errors=True)
                builds[side][str(n)] = call(src, "build", str(vault), str(n))["build_seconds"]
                print(f"built {side} vault of {n} sessions in {builds[side][str(n)]:.1f} s", file=sys.stderr)
            vaults[side, n] = vault
    return vaults, builds


def measure_all(
    sides: dict[str, Path], vaults: dict[tuple[str, int], Path], sizes: list[int], rounds: int, per_round: int
) -> Samples:
    """The sides take turns (A B, B A, ...), each round in a fresh process."""
    samples: Samples = {side: {n: {op: [] for op in OPS} for n in sizes} for side in sides}
    for n in sizes:
        for r in range(rounds):
            order = list(sides) if r % 2 == 0 else list(reversed(sides))
            for side in order:
                got = call(sides[side], "measure", str(vaults[side, n]), str(per_round))["times"]
                for op in OPS:
                    samples[side][n][op] += got[op]
    return samples


def summarize(samples: Samples, sizes: list[int]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for n in sizes:
        for op in OPS:
            tree = statistics.median(samples["tree"][n][op]) * 1000
            base = statistics.median(samples["baseline"][n][op]) * 1000
            results.append(
                {
                    "sessions": n,
                    "op": op,
                    "tree_ms": tree,
                    "baseline_ms": base,
                    "ratio": tree / base,
                    "samples": len(samples["tree"][n][op]),
                }
            )
    return results


def report(results: list[dict[str, Any]], baseline: str, commit: str, rounds: int, per_round: int) -> None:
    print(f"working tree vs {baseline} ({commit[:12]}); medians of {rounds} rounds x {per_round} per side")
    print(f"{'sessions':>9} {'op':<8}{'tree':>11}{'baseline':>12}{'ratio':>8}")
    for row in results:
        flag = "" if row["ratio"] <= BAR else f"  over {BAR}x"
        print(
            f"{row['sessions']:>9} {row['op']:<8}{row['tree_ms']:>8.2f} ms{row['baseline_ms']:>9.2f} ms"
            f"{row['ratio']:>7.2f}x{flag}"
        )


if __name__ == "__main__":
    main()
