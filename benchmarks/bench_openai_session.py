#!/usr/bin/env python3
"""The OpenAI Agents SDK session against the vault it runs on, in the same run (issue 24).

A session of ``--items`` items (default 1,000; about 1 KB of text each) is stored through
:class:`SealedSession` (passphrase provider, scrypt 2^14), then:

* ``add``: ``session.add_items([item])`` of one new item, ``--repeat`` times, against the
  baseline ``Vault.append(sid, [message])`` of one message of the same text to a session of
  the same size; medians;
* ``get``: ``session.get_items()`` of the whole session against ``Vault.load_json(sid)`` of the
  same session (the bytes the session parses); medians;
* ``get20`` (no bar, for the docs): ``session.get_items(limit=20)``, served by the latest
  append groups (the session is stored in batches of 100);
* ``pop`` (no bar, for the docs): ``session.pop_item()``, a new version of the session.

The bars (issue 24): an add within 2x of the vault's append, a get within 2x of ``load_json``.
Timed in one event loop, as the SDK calls the session.  Exit status 1 when a bar is missed.

    python benchmarks/bench_openai_session.py [--items 1000] [--repeat 20]
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

from sessionseal.integrations.openai_agents import SealedSession


def _item(rng: random.Random, i: int) -> dict[str, Any]:
    if i % 2 == 0:
        return {"role": "user", "content": text(rng, 1000)}
    return {
        "id": f"msg_{i}",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text(rng, 1000), "annotations": []}],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    rng = random.Random(24)
    with tempfile.TemporaryDirectory() as tmp, throwaway_vault(tmp) as vault:
        session = SealedSession("bench", vault)
        items = [_item(rng, i) for i in range(args.items)]
        for start in range(0, len(items), 100):
            asyncio.run(session.add_items(items[start : start + 100]))
        sid = session.vault_id
        base = vault.save(
            {"title": "baseline", "messages": [{"role": "user", "content": text(rng, 1000)}] * args.items}
        )
        n = [args.items]

        async def add() -> None:
            await session.add_items([_item(rng, n[0])])
            n[0] += 1

        def vault_append() -> None:
            vault.append(base, [{"role": "user", "content": text(rng, 1000)}])

        rows = [
            ("add", asyncio.run(median_async(add, args.repeat)), median(vault_append, args.repeat), 2.0),
            (
                "get",
                asyncio.run(median_async(session.get_items, args.repeat)),
                median(lambda: vault.load_json(sid), args.repeat),
                2.0,
            ),
        ]
        recent = asyncio.run(median_async(lambda: session.get_items(limit=20), args.repeat))
        pop = asyncio.run(median_async(session.pop_item, args.repeat))
    ok = report(f"{args.items} items, {args.repeat} runs each (medians)", "session", rows)
    print(f"{'get20':8}{recent * 1e3:10.2f}ms{'(get_items(limit=20): the latest groups; no bar)':>55}")
    print(f"{'pop':8}{pop * 1e3:10.2f}ms{'(a new version; no bar)':>30}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
