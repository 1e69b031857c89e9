#!/usr/bin/env python3
"""The proving ground, long (issue 9; docs/reliability.md): thousands of SIGKILLs, concurrent
runs, and the fuzz and fault-injection suites at a larger size, with one figure table.

    python scripts/soak.py --kills 3000 --concurrent 20 --fuzz-examples 2000

Kills run in vaults of --per-vault rounds each (a fresh vault then), so a round's cost does
not grow with the run.  Every round checks the vault against the model of acknowledged
operations (tests/_infra/crash.py); the first failure stops the run and is printed with the
seed that reproduces it.  Exit status 0 when nothing was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

from tests._infra import crash  # noqa: E402 - after the path is set


def _kills(zyg: crash.Zygote, total: int, per_vault: int, seed: int) -> crash.Figures:
    out = crash.Figures()
    done, batch = 0, 0
    while done < total:
        n = min(per_vault, total - done)
        with tempfile.TemporaryDirectory(prefix="sessionseal-soak-") as tmp:
            vault = Path(tmp) / "vault"
            crash.init_vault(vault)
            f = crash.crash_rounds(zyg, vault, Path(tmp), kills=n, seed=seed + batch)
        out.add(f, f"seed {seed + batch}")
        if f.failures:
            break
        done += n
        batch += 1
        print(
            f"  kills {done}/{total} ({out.seconds:.0f} s, {sum(out.acked.values())} operations acknowledged)",
            flush=True,
        )
    return out


def _concurrent(zyg: crash.Zygote, runs: int, workers: int, duration: float, seed: int) -> crash.Figures:
    out = crash.Figures()
    for r in range(runs):
        with tempfile.TemporaryDirectory(prefix="sessionseal-soak-") as tmp:
            vault = Path(tmp) / "vault"
            crash.init_vault(vault)
            f = crash.concurrent_run(
                zyg, vault, Path(tmp), workers=workers, duration=duration, seed=seed + r, kill_one=True
            )
        out.add(f, f"seed {seed + r}")
        if f.failures:
            break
        print(f"  concurrent run {r + 1}/{runs}: {sum(f.acked.values())} operations acknowledged", flush=True)
    return out


def _pytest_with_report(
    tests: list[str], env_var: str, extra_env: dict[str, str]
) -> tuple[int, list[dict[str, Any]], float]:
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as f:
        report = f.name
    env = {**os.environ, env_var: report, **extra_env, "PYTHONPATH": str(REPO / "src")}
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], cwd=REPO, env=env, check=False
    )
    took = time.monotonic() - t0
    lines = [json.loads(x) for x in Path(report).read_text().splitlines() if x.strip()]
    os.unlink(report)
    return proc.returncode, lines, took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=2000, help="SIGKILL rounds (default 2000)")
    ap.add_argument("--per-vault", type=int, default=100, help="rounds per fresh vault (default 100)")
    ap.add_argument("--concurrent", type=int, default=10, help="concurrent runs (default 10)")
    ap.add_argument("--workers", type=int, default=4, help="workers per concurrent run (default 4)")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per concurrent run (default 15)")
    ap.add_argument("--fuzz-examples", type=int, default=0, help="also run the fuzz suite with N examples per test")
    ap.add_argument("--faults", action="store_true", help="also run the fault-injection suite")
    ap.add_argument(
        "--rollback-matrix", action="store_true", help="also run the whole rollback matrix (issue 20), every case"
    )
    ap.add_argument("--seed", type=int, default=int(time.time()), help="seed (printed; reproduces a failure)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()

    print(f"seed {args.seed}", flush=True)
    figures: dict[str, object] = {"seed": args.seed}
    failed = False
    with crash.zygote_process() as zyg:
        if args.kills:
            print(f"SIGKILL rounds: {args.kills}", flush=True)
            k = _kills(zyg, args.kills, args.per_vault, args.seed)
            figures["kills"] = k.to_json()
            failed |= bool(k.failures)
        if args.concurrent and not failed:
            print(f"concurrent runs: {args.concurrent} x {args.workers} workers x {args.duration:g} s", flush=True)
            c = _concurrent(zyg, args.concurrent, args.workers, args.duration, args.seed)
            figures["concurrent"] = c.to_json()
            failed |= bool(c.failures)
    if args.fuzz_examples and not failed:
        print(f"fuzzing: {args.fuzz_examples} examples per test", flush=True)
        rc, lines, took = _pytest_with_report(
            sorted(str(p.relative_to(REPO)) for p in (REPO / "tests" / "unit").glob("test_fuzz_*.py")),
            "SESSIONSEAL_FUZZ_REPORT",
            {"SESSIONSEAL_FUZZ_EXAMPLES": str(args.fuzz_examples)},
        )
        per: Counter[str] = Counter()
        for line in lines:
            per[str(line["parser"])] += int(line["examples"])
        figures["fuzz"] = {
            "inputs": sum(per.values()),
            "by_parser": dict(per),
            "seconds": round(took),
            "passed": rc == 0,
        }
        failed |= rc != 0
    if args.faults and not failed:
        print("fault injection", flush=True)
        rc, lines, took = _pytest_with_report(["tests/unit/test_faults.py"], "SESSIONSEAL_FAULT_REPORT", {})
        total = sum(int(line["faults"]) for line in lines)
        figures["faults"] = {"injected": total, "operations": len(lines), "seconds": round(took), "passed": rc == 0}
        failed |= rc != 0
    if args.rollback_matrix and not failed:
        print("rollback matrix: every case", flush=True)
        t0 = time.monotonic()
        rc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "tests/integration/test_rollback_matrix.py",
            ],
            cwd=REPO,
            env={**os.environ, "SESSIONSEAL_ROLLBACK_MATRIX": "full", "PYTHONPATH": str(REPO / "src")},
            check=False,
        ).returncode
        figures["rollback_matrix"] = {"seconds": round(time.monotonic() - t0), "passed": rc == 0}
        failed |= rc != 0
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        print(json.dumps(figures, indent=1))
        print("LOST: nothing" if not failed else "FAILED: see the failures above")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
