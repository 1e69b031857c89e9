#!/usr/bin/env python3
"""Google ADK's session service against the vault it runs on, in the same run (issue 24).

A session of ``--events`` events (default 1,000; about 1 KB of text each, user and model turns
in turn) is stored through :class:`SealedSessionService` (passphrase provider, scrypt 2^14),
then:

* ``append``: ``service.append_event(session, event)`` of one new event, ``--repeat`` times,
  against the baseline ``Vault.append(sid, [message])`` of one message of the same text to a
  session grown the same way (one append per event: a session file of as many append groups,
  which every append's tail read walks); medians;
* ``state`` (no bar, for the docs): an ``append_event`` whose event also sets a ``user:`` key
  (a second append, to the user's state session);
* ``window`` (no bar, for the docs): ``get_session`` with ``num_recent_events=20``, read from
  the latest append groups alone;
* ``get``: ``service.get_session(...)`` of the whole session against what any ADK service
  pays for the same events: ``Vault.load_json(sid)`` (the bytes it parses) plus ADK's
  ``Event.model_validate_json`` of each stored event (ADK's SQL services do the same per row);
  ``load_json`` alone is printed too.

The bars: an append within 2x of the vault's append; a get within 1.5x of ``load_json`` and
the models.  Timed in one event loop, as ADK's Runner calls the service.  Exit status 1 when a
bar is missed.  Needs google-adk (the extra ``google-adk``).

    python benchmarks/bench_adk_session.py [--events 1000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
from _adapter_bench import median, median_async, report, text, throwaway_vault


async def paired(mine: Callable[[], Awaitable[Any]], theirs: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """The medians of *repeat* awaits of *mine* and calls of *theirs*, one of each in turn."""
    a, b = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        await mine()
        a.append(time.perf_counter() - t)
        t = time.perf_counter()
        theirs()
        b.append(time.perf_counter() - t)
    return statistics.median(a), statistics.median(b)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    from google.adk.events.event import Event
    from google.adk.events.event_actions import EventActions
    from google.adk.sessions.base_session_service import GetSessionConfig
    from google.genai import types

    from sessionseal.integrations.google_adk import SealedSessionService

    rng = random.Random(24)
    n = [0]

    def event(**kwargs: Any) -> Any:
        n[0] += 1
        role, author = ("user", "user") if n[0] % 2 else ("model", "assistant")
        content = types.Content(role=role, parts=[types.Part(text=text(rng, 1000))])
        return Event(author=author, invocation_id=f"inv{n[0] // 2}", content=content, **kwargs)

    with tempfile.TemporaryDirectory() as tmp, throwaway_vault(tmp) as vault:
        service = SealedSessionService(vault)

        async def fill() -> Any:
            session = await service.create_session(app_name="bench", user_id="u", session_id="s")
            for _ in range(args.events):
                await service.append_event(session, event())
            return session

        session = asyncio.run(fill())
        sid = SealedSessionService.session_id_for("bench", "u", "s")
        base = vault.save({"title": "baseline", "messages": []})
        for _ in range(args.events):
            vault.append(base, [{"role": "user", "content": text(rng, 1000)}])

        async def append() -> None:
            await service.append_event(session, event())

        async def append_state() -> None:
            await service.append_event(session, event(actions=EventActions(state_delta={"user:turns": n[0]})))

        async def get() -> None:
            await service.get_session(app_name="bench", user_id="u", session_id="s")

        async def window() -> None:
            config = GetSessionConfig(num_recent_events=20)
            await service.get_session(app_name="bench", user_id="u", session_id="s", config=config)

        def vault_append() -> None:
            vault.append(base, [{"role": "user", "content": text(rng, 1000)}])

        def load_and_models() -> None:
            doc = orjson.loads(vault.load_json(sid))
            [Event.model_validate_json(orjson.dumps(r["record"])) for r in doc["source_records"]]

        async def timed() -> tuple[tuple[float, float], tuple[float, float], float, float]:
            # Each of the service's runs beside one of its baseline's, in turn: a machine that
            # slows down mid-run slows both alike.
            return (
                await paired(append, vault_append, args.repeat),
                await paired(get, load_and_models, args.repeat),
                await median_async(append_state, args.repeat),
                await median_async(window, args.repeat),
            )

        (mine_append, vault_appended), (mine_get, loaded), with_state, windowed = asyncio.run(timed())
        rows = [("append", mine_append, vault_appended, 2.0), ("get", mine_get, loaded, 1.5)]
        load_only = median(lambda: vault.load_json(sid), args.repeat)
    ok = report(f"{args.events} events, {args.repeat} runs each (medians)", "service", rows)
    print(f"{'state':8}{with_state * 1e3:10.2f}ms   (an append with a user: delta; no bar)")
    print(f"{'window':8}{windowed * 1e3:10.2f}ms   (get_session, num_recent_events=20: the latest groups; no bar)")
    print(f"{'load':8}{load_only * 1e3:10.2f}ms   (Vault.load_json alone, without ADK's models)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
