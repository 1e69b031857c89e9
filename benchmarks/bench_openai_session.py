#!/usr/bin/env python3
"""The OpenAI Agents SDK session against the vault it runs on, in the same run (issue 24).

A session of ``--items`` items (default 1,000; about 1 KB of text each) is stored through
:class:`SealedSession` (passphrase provider, scrypt 2^14), then:

* ``add``: ``session.add_items([item])`` of one new item, ``--repeat`` times, against the
  baseline ``Vault.append(sid, [message])`` of one message of the same text to a session of
  the same size; medians;
* ``get``: ``session.get_items()`` of the whole session against ``Vault.load_json(sid)`` of the
  same session (the bytes the session parses); medians;
* ``pop`` (no bar, for the docs): ``session.pop_item()``, a new version of the session.

The bars (issue 24): an add within 2x of the vault's append, a get within 2x of ``load_json``.
Timed in one event loop, as the SDK calls the session.  Exit status 1 when a bar is missed.

    python benchmarks/bench_openai_session.py [--items 1000] [--repeat 20]
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
from sessionseal.integrations.openai_agents import SealedSession

PASSPHRASE = "bench"  # noqa: S105  (a throwaway vault in a temp dir)
WORDS = ["the", "session", "tool", "file", "test", "error", "run", "build", "import", "value", "return", "path"]


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n // 6))


def _item(rng: random.Random, i: int) -> dict[str, Any]:
    if i % 2 == 0:
        return {"role": "user", "content": _text(rng, 1000)}
    return {
        "id": f"msg_{i}",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": _text(rng, 1000), "annotations": []}],
    }


def _median(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    rng = random.Random(24)
    with (
        tempfile.TemporaryDirectory() as tmp,
        Vault.init(Path(tmp) / "v", key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as vault,
    ):
        session = SealedSession("bench", vault)
        items = [_item(rng, i) for i in range(args.items)]
        for start in range(0, len(items), 100):
            asyncio.run(session.add_items(items[start : start + 100]))
        sid = session.vault_id
        base = vault.save(
            {"title": "baseline", "messages": [{"role": "user", "content": _text(rng, 1000)}] * args.items}
        )
        n = [args.items]

        async def timed(what: str) -> float:
            # In one event loop, as the SDK calls the session (a loop per call would time asyncio).
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                if what == "add":
                    await session.add_items([_item(rng, n[0])])
                    n[0] += 1
                elif what == "get":
                    await session.get_items()
                else:
                    await session.pop_item()
                times.append(time.perf_counter() - t)
            return statistics.median(times)

        def vault_append() -> None:
            vault.append(base, [{"role": "user", "content": _text(rng, 1000)}])

        rows = [
            ("add", asyncio.run(timed("add")), _median(vault_append, args.repeat), 2.0),
            ("get", asyncio.run(timed("get")), _median(lambda: vault.load_json(sid), args.repeat), 2.0),
        ]
        pop = asyncio.run(timed("pop"))
    ok = True
    print(f"{args.items} items, {args.repeat} runs each (medians)")
    print(f"{'':8}{'session':>12}{'vault':>12}{'ratio':>8}{'bar':>6}")
    for name, mine, theirs, bar in rows:
        ratio = mine / theirs
        ok = ok and ratio <= bar
        print(f"{name:8}{mine * 1e3:10.2f}ms{theirs * 1e3:10.2f}ms{ratio:8.2f}{bar:6.1f}")
    print(f"{'pop':8}{pop * 1e3:10.2f}ms{'(a new version; no bar)':>30}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
