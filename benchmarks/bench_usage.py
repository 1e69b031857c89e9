#!/usr/bin/env python3
"""``stats --usage`` from the rollups against summing the decrypted sessions, with ``list --json``
as the yardstick, measured in the same run (issue 23).

Builds a vault of ``--sessions`` sessions (passphrase provider, scrypt 2^14), each of 40 messages
(20 replies with usage and cost, over three models and about two hours, some across midnight)
spread over a year, tagged as one of three agents.  Then it measures, median of ``--repeat``:

* ``list_json``: ``Vault.list_json()`` (what ``list --json`` runs; the index only);
* ``usage by day`` and ``usage by model``: ``Vault.usage()`` from each session's rollup (one
  META frame decrypted per session, no body);
* ``naive``: load every session (``Vault.load_json``) and sum its messages, which is what a vault
  whose sessions have no rollup (written before issue 23) costs.

    python benchmarks/bench_usage.py [--sessions 1000] [--repeat 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
from bench_vault import median_ms

from sessionseal import PassphraseProvider, UsageQuery, Vault
from sessionseal._usage import Counted, report, rollup_of

PASSPHRASE = "bench"  # noqa: S105  (a throwaway vault in a temp dir)
TOOLS = ("claude-code", "codex", "gemini-cli")
MODELS = ("model-large", "model-small", "model-mini")
START = datetime(2025, 12, 1, 20, tzinfo=UTC)


def session(i: int) -> dict[str, Any]:
    t0 = START + timedelta(hours=i * 8.77)  # a year for 1,000 sessions
    messages: list[dict[str, Any]] = []
    for k in range(20):
        at = t0 + timedelta(minutes=6 * k)
        messages.append({"role": "user", "content": f"step {k} of task {i}: fix the parser", "timestamp": at})
        usage = {"input_tokens": 900 + k, "output_tokens": 300 + i % 50, "cache_read_tokens": 12000 + 40 * k}
        messages.append(
            {
                "role": "assistant",
                "content": "done; the tests pass " * 10,
                "timestamp": at + timedelta(seconds=40),
                "model": MODELS[(i + k) % 3],
                "usage": usage,
                "cost_usd": 0.0125,
            }
        )
    return {
        "title": f"task {i}",
        "tags": [TOOLS[i % 3], f"t{i % 5}"],
        "workspace": f"/home/dev/project{i % 12}",
        "updated_at": messages[-1]["timestamp"],
        "messages": messages,
    }


def build(path: Path, n: int) -> None:
    with Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
        for i in range(n):
            v.save(session(i), touch=False)
            if n >= 1000 and i % (n // 10) == 0:
                print(f"  built {i}/{n}", file=sys.stderr)


def naive(v: Vault) -> Any:
    counted = []
    for s in v.list(archived=None):
        doc = orjson.loads(v.load_json(s.id))
        rollup = rollup_of(doc)
        counted.append(
            Counted(str(s.id), doc["updated_at"], doc.get("workspace"), doc["tags"], rollup["rows"], rollup["stats"])
        )
    return report(counted, UsageQuery(by="day"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="build the vault here (or reuse it) and keep it")
    args = ap.parse_args()
    tmp = None if args.keep else Path(tempfile.mkdtemp(prefix="bench-usage-"))
    path = args.keep or (tmp / "vault")  # type: ignore[operator]
    try:
        if not path.exists():
            t = time.perf_counter()
            build(path, args.sessions)
            print(f"built {args.sessions} sessions in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        with Vault.open(path, key_provider=PassphraseProvider(PASSPHRASE), auto_cleanup=False) as v:
            v.list_json()  # the index is read (and rebuilt if need be) before anything is timed
            day = v.usage(UsageQuery(by="day"))
            assert day.computed == 0, day
            assert day.total.sessions == args.sessions, day
            assert naive(v)[1].input_tokens == day.total.input_tokens
            rows = [
                ("list_json (yardstick)", median_ms(v.list_json, args.repeat)),
                ("usage --by day (rollups)", median_ms(lambda: v.usage(UsageQuery(by="day")), args.repeat)),
                ("usage --by model (rollups)", median_ms(lambda: v.usage(UsageQuery(by="model")), args.repeat)),
                ("naive: decrypt and sum every session", median_ms(lambda: naive(v), args.repeat)),
            ]
        print(f"{args.sessions} sessions, median of {args.repeat}:")
        for name, ms in rows:
            print(f"  {name:<40} {ms:9.1f} ms")
        print(
            f"  rollups vs naive: {rows[3][1] / rows[1][1]:.1f}x faster; vs list_json: {rows[1][1] / rows[0][1]:.1f}x"
        )
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
