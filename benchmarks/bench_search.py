#!/usr/bin/env python3
"""Full-text search against the naive search, measured in the same run (issue 6).

Builds a vault of ``--mb`` MB of original session text: sessions of about 1 MB, each with
messages and tool output of varied words. Then it measures:

* ``naive``: load every session (``Vault.load_json``), parse it, and look through every
  string value. This is the baseline.
* ``Vault.search``: the phrase is absent, so every session is scanned (the worst case).
* ``Vault.search``: the phrase is in one old session, and ``limit=1``.

It reports MB/s of original text, and what a full scan of 1 GB takes at that rate.

    python benchmarks/bench_search.py [--mb 200] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import gc
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import orjson

from sessionseal import ListQuery, PassphraseProvider, Vault

PASSPHRASE = "bench"  # noqa: S105  (a throwaway vault in a temp dir)
_TEXT = (
    "the parser fails when the fixture opens the file twice so we retry with a lock and the test passes "
    "function module import error trace line column value config build deploy cache index query"
)
WORDS = _TEXT.split(" ")


def session(i: int, rng: random.Random, size: int) -> dict[str, Any]:
    messages: list[dict[str, str]] = []
    total = 0
    while total < size:
        text = " ".join(rng.choice(WORDS) for _ in range(400))
        messages.append({"role": "user" if len(messages) % 2 else "tool", "content": text})
        total += len(text)
    if i == 3:
        messages[len(messages) // 2]["content"] += " the zanzibar-octopus phrase "
    return {"title": f"session {i}", "status": "completed", "messages": messages}


def median_s(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def naive(v: Vault, text: str) -> list[str]:
    found = []
    for s in v.list():
        doc = orjson.loads(v.load_json(s.id))
        stack: list[Any] = [doc]
        while stack:
            x = stack.pop()
            if isinstance(x, str):
                if text in x.casefold():
                    found.append(str(s.id))
                    break
            elif isinstance(x, dict):
                stack.extend(x.values())
            elif isinstance(x, list):
                stack.extend(x)
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=200, help="MB of original session text (default 200)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", metavar="DIR", help="build the vault here (reused if it exists)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-search-"))
    path = Path(a.keep) if a.keep else tmp / "vault"
    try:
        if not (path / "vault.json").exists():
            rng = random.Random(7)
            t = time.perf_counter()
            with Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
                for i in range(a.mb):
                    v.save(session(i, rng, 1_000_000))
            print(f"built {a.mb} sessions of ~1 MB in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        with Vault.open(path, passphrase=PASSPHRASE, auto_cleanup=False) as v:
            original = sum(s.size_original for s in v.list()) / 1e6
            base = median_s(lambda: naive(v, "absent-phrase-xyz"), a.repeat)
            full = median_s(lambda: v.search("absent-phrase-xyz", ListQuery(limit=1000)), a.repeat)
            one = median_s(lambda: v.search("zanzibar-octopus", ListQuery(limit=1)), a.repeat)
            assert [h.title for h in v.search("zanzibar-octopus")] == ["session 3"]
        print(f"{original:.0f} MB of original session text; medians of {a.repeat}")
        print(f"{'measurement':<52}{'time':>10}{'MB/s':>9}{'1 GB at this rate':>20}{'x naive':>9}")
        for name, s in (
            ("naive: load, parse, walk every session (baseline)", base),
            ("search, phrase absent (full scan)", full),
            ("search, phrase in one old session, limit 1", one),
        ):
            print(f"{name:<52}{s:>8.2f} s{original / s:>9.0f}{1000 / (original / s):>18.1f} s{s / base:>8.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
