#!/usr/bin/env python3
"""The Claude Agent SDK session store against the vault it runs on, in the same run (issue 24).

A session of ``--entries`` transcript entries (default 1,000; about 1 KB of text each) is
stored through :class:`SealedSessionStore` (passphrase provider, scrypt 2^14), then:

* ``append``: ``store.append(key, [entry])`` of one new entry, ``--repeat`` times, against the
  baseline ``Vault.append(sid, [message])`` of one message of the same text to a session of
  the same size; medians;
* ``load``: ``store.load(key)`` of the whole session against ``Vault.load_json(sid)`` of the
  same session (the bytes the store parses and filters); medians.

The bars (issue 24): an append costs what the vault's append costs (within 2x: it also reads
the session's summary, and maps and folds the entry), a load within 2x of ``load_json``.  Both
are timed in one event loop, as the SDK calls the store.  Exit status 1 when a bar is missed.

    python benchmarks/bench_sdk_store.py [--entries 1000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sessionseal import PassphraseProvider, Vault
from sessionseal.integrations.claude_agent_sdk import SealedSessionStore

PASSPHRASE = "bench"  # noqa: S105  (a throwaway vault in a temp dir)
WORDS = ["the", "session", "tool", "file", "test", "error", "run", "build", "import", "value", "return", "path"]


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n // 6))


def _entry(rng: random.Random, i: int) -> dict[str, Any]:
    role = "user" if i % 2 == 0 else "assistant"
    return {"type": role, "uuid": f"e-{i}", "message": {"role": role, "content": _text(rng, 1000)}}


def _median(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    rng = random.Random(24)
    key = {"project_key": "bench", "session_id": "s"}
    with (
        tempfile.TemporaryDirectory() as tmp,
        Vault.init(Path(tmp) / "v", key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as vault,
    ):
        store = SealedSessionStore(vault)
        entries = [_entry(rng, i) for i in range(args.entries)]
        for start in range(0, len(entries), 100):
            asyncio.run(store.append(key, entries[start : start + 100]))
        sid = store.session_id_for(key)
        msgs = [{"role": e["message"]["role"], "content": e["message"]["content"]} for e in entries]
        base = vault.save({"title": "baseline", "messages": msgs})
        n = [args.entries]

        async def timed(what: str) -> float:
            # In one event loop, as the SDK calls the store (a loop per call would time asyncio).
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                if what == "append":
                    await store.append(key, [_entry(rng, n[0])])
                    n[0] += 1
                else:
                    await store.load(key)
                times.append(time.perf_counter() - t)
            return statistics.median(times)

        def vault_append() -> None:
            vault.append(base, [{"role": "user", "content": _text(rng, 1000)}])

        rows = [
            ("append", asyncio.run(timed("append")), _median(vault_append, args.repeat), 2.0),
            ("load", asyncio.run(timed("load")), _median(lambda: vault.load_json(sid), args.repeat), 2.0),
        ]
    ok = True
    print(f"{args.entries} entries, {args.repeat} runs each (medians)")
    print(f"{'':8}{'store':>12}{'vault':>12}{'ratio':>8}{'bar':>6}")
    for name, mine, theirs, bar in rows:
        ratio = mine / theirs
        ok = ok and ratio <= bar
        print(f"{name:8}{mine * 1e3:10.2f}ms{theirs * 1e3:10.2f}ms{ratio:8.2f}{bar:6.1f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
