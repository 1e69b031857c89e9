"""What the benchmarks of the agent SDK adapters share (bench_sdk_store.py,
bench_openai_session.py): a throwaway vault, filler text, medians, and the table that sets each
adapter operation beside the vault operation it should cost about as much as."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sessionseal import PassphraseProvider, Vault

PASSPHRASE = "bench"  # noqa: S105  (a throwaway vault in a temp dir)
WORDS = ["the", "session", "tool", "file", "test", "error", "run", "build", "import", "value", "return", "path"]


def throwaway_vault(tmp: str) -> Vault:
    """A passphrase vault in *tmp* with a cheap scrypt: the key derivation is not what is timed."""
    return Vault.init(Path(tmp) / "v", key_provider=PassphraseProvider(PASSPHRASE, log2_n=14))


def text(rng: random.Random, n: int) -> str:
    """About *n* characters of filler words."""
    return " ".join(rng.choice(WORDS) for _ in range(n // 6))


def median(fn: Callable[[], Any], repeat: int) -> float:
    """The median wall time of *repeat* calls of *fn*."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


async def median_async(step: Callable[[], Awaitable[Any]], repeat: int) -> float:
    """The median wall time of *repeat* awaits of *step*, in one event loop, as an SDK calls
    its store (a loop per call would time asyncio)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        await step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def report(title: str, column: str, rows: list[tuple[str, float, float, float]]) -> bool:
    """Print *rows* (name, the adapter's time, the vault's, the bar on their ratio); whether
    every ratio is within its bar."""
    ok = True
    print(title)
    print(f"{'':8}{column:>12}{'vault':>12}{'ratio':>8}{'bar':>6}")
    for name, mine, theirs, bar in rows:
        ratio = mine / theirs
        ok = ok and ratio <= bar
        print(f"{name:8}{mine * 1e3:10.2f}ms{theirs * 1e3:10.2f}ms{ratio:8.2f}{bar:6.1f}")
    return ok
