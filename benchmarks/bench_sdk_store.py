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
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _adapter_bench import median, median_async, report, text, throwaway_vault

from sessionseal.integrations.claude_agent_sdk import SealedSessionStore


def _entry(rng: random.Random, i: int) -> dict[str, Any]:
    role = "user" if i % 2 == 0 else "assistant"
    return {"type": role, "uuid": f"e-{i}", "message": {"role": role, "content": text(rng, 1000)}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    rng = random.Random(24)
    key = {"project_key": "bench", "session_id": "s"}
    with tempfile.TemporaryDirectory() as tmp, throwaway_vault(tmp) as vault:
        store = SealedSessionStore(vault)
        entries = [_entry(rng, i) for i in range(args.entries)]
        for start in range(0, len(entries), 100):
            asyncio.run(store.append(key, entries[start : start + 100]))
        sid = store.session_id_for(key)
        msgs = [{"role": e["message"]["role"], "content": e["message"]["content"]} for e in entries]
        base = vault.save({"title": "baseline", "messages": msgs})
        n = [args.entries]

        async def append() -> None:
            await store.append(key, [_entry(rng, n[0])])
            n[0] += 1

        def vault_append() -> None:
            vault.append(base, [{"role": "user", "content": text(rng, 1000)}])

        rows = [
            ("append", asyncio.run(median_async(append, args.repeat)), median(vault_append, args.repeat), 2.0),
            (
                "load",
                asyncio.run(median_async(lambda: store.load(key), args.repeat)),
                median(lambda: vault.load_json(sid), args.repeat),
                2.0,
            ),
        ]
    ok = report(f"{args.entries} entries, {args.repeat} runs each (medians)", "store", rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
