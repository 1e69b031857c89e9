#!/usr/bin/env python3
"""Append latency against session size, with rewrite-everything beside it in the same run (issue 7).

For each size (of the session's stored JSON document) a session of varied agent-like text
is saved once (passphrase provider, scrypt 2^14), then:

* ``append``: ``Vault.append(sid, turn)`` of one turn (a user and an assistant message,
  about 2 KB of text), ``--repeat`` times, each a new turn on the same session (which grows
  by as much each time), after one untimed warm-up append; median, p95, max and mean.  Every 1024th append (or once the
  appends outgrow the saved body and 4 MiB) rewrites the file (compaction, amortized); the
  ``compact`` column counts the timed appends that did.  The default 20 appends see none:
  ``--repeat 1100`` covers a whole cycle, and the mean is then the amortized cost;
* ``rewrite``: the approach appends replace - ``Vault.save`` of the whole session as first
  saved plus one of the same turns (``"id"`` given: it overwrites the file); median of
  ``--rewrite-repeat`` (default: ``--repeat`` up to 20 at 1 MB and under, up to 5 above);

* ``checkpoint``: ``Vault.checkpoint(sid)`` of the session as it then is (median of up to 3);

and the table gives ``rewrite / append`` and every size's append median over the smallest
size's (the baseline, measured in the same run).  The bar (issue 7): a turn appended to a
50 MB session takes no more than 2x the same turn appended to a 10 KB session.

    python benchmarks/bench_append.py [--sizes 10K,1M,10M,50M] [--repeat 20]
        [--rewrite-repeat N] [--keep DIR]

Sizes are KiB (``K`` or no suffix) or MiB (``M``).
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sessionseal import PassphraseProvider, Session, Vault, _vault

PASSPHRASE = "bench"  # noqa: S105  (a throwaway vault in a temp dir)
BAR = 2.0

# fmt: off
_WORDS = [
    "the", "a", "to", "of", "and", "in", "is", "it", "for", "that", "this", "with", "on", "be", "not", "as", "are",
    "was", "can", "if", "we", "you", "but", "or", "by", "from", "session", "tool", "file", "test", "error", "run",
    "build", "import", "value", "return", "self", "def", "class", "async", "await", "config", "path", "data",
    "result", "output", "input", "model", "token", "message", "user", "assistant", "function", "module", "request",
    "response", "cache", "index", "query", "update", "delete", "create", "list", "table", "column", "row", "vault",
    "key", "append", "frame", "header", "compress", "encrypt", "decrypt", "parse", "serialize", "schema", "field",
    "retry", "timeout", "lock", "thread", "process", "buffer", "stream", "socket", "handler", "logger", "warning",
    "failed", "passed", "fixture", "assert", "expected", "actual", "branch", "commit", "merge", "rebase", "diff",
    "patch", "review", "refactor", "rename", "variable", "constant", "loop", "iterator", "generator", "exception",
    "traceback", "line", "column", "offset", "length", "size", "count", "total", "average", "median", "latency",
]
# fmt: on


def text(rng: random.Random, target: int) -> str:
    """About *target* characters of prose, identifiers, numbers and now and then code lines."""
    parts: list[str] = []
    n = 0
    while n < target:
        r = rng.random()
        if r < 0.08:
            w = f"{rng.choice(_WORDS)}_{rng.choice(_WORDS)}_{rng.randint(0, 999)}"
        elif r < 0.14:
            w = str(rng.randint(0, 10**6))
        elif r < 0.17:
            w = f"\n    {rng.choice(_WORDS)}_{rng.randint(0, 99)} = {rng.choice(_WORDS)}({rng.randint(0, 9999)})"
        elif r < 0.20:
            w = rng.choice(_WORDS).capitalize() + "."
        else:
            w = rng.choice(_WORDS)
        parts.append(w)
        n += len(w) + 1
    return " ".join(parts)


def _stored_overhead() -> tuple[int, dict[str, int]]:
    """Bytes a stored session adds around its messages, and around one message's text, by role."""
    empty = orjson.dumps(Session.model_validate({"title": "bench"}).model_dump(mode="json"))
    per_role = {}
    for role in ("user", "assistant"):
        one = Session.model_validate({"title": "bench", "messages": [{"role": role, "content": ""}]})
        per_role[role] = len(orjson.dumps(one.model_dump(mode="json"))) - len(empty) + 1  # + the comma
    return len(empty), per_role


def make_session(target: int, seed: int = 7) -> dict[str, Any]:
    """A deterministic transcript whose stored JSON document is about *target* bytes."""
    rng = random.Random(seed)
    base, per_role = _stored_overhead()
    size = base + len("bench")
    messages: list[dict[str, Any]] = []
    while size < target:
        role = ("user", "assistant")[len(messages) % 2]
        want = min(rng.choice((200, 600, 1500, 4000)) * rng.uniform(0.5, 1.5), max(target - size, 20))
        content = text(rng, int(want))
        messages.append({"role": role, "content": content})
        size += per_role[role] + len(orjson.dumps(content)) - 2
    return {"title": "bench", "tags": ["bench"], "messages": messages}


def make_turn(i: int) -> list[dict[str, Any]]:
    """Turn *i*: a user message of about 500 characters and an assistant one of about 1500 -
    the same turns at every size."""
    rng = random.Random(1_000_000 + i)
    return [{"role": "user", "content": text(rng, 500)}, {"role": "assistant", "content": text(rng, 1500)}]


def parse_size(s: str) -> int:
    s = s.strip().upper().removesuffix("B")
    units = {"K": 1 << 10, "M": 1 << 20}
    if s[-1:] in units:
        return int(float(s[:-1]) * units[s[-1]])
    return int(float(s) * units["K"])


def label(n: int) -> str:
    return f"{n / (1 << 20):.3g} MB" if n >= 1 << 20 else f"{n / (1 << 10):.3g} KB"


def p95(xs: list[float]) -> float:
    """The nearest-rank 95th percentile."""
    ordered = sorted(xs)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def generation(v: Vault, sid: uuid.UUID) -> int | None:
    return v.parts.store.stored_generation(v.parts.keys.file_name(sid) + _vault._common.SUFFIX)


def measure(v: Vault, size: int, repeat: int, rewrite_repeat: int) -> dict[str, Any]:
    doc = make_session(size)
    t = time.perf_counter()
    sid = v.save(doc)
    built = time.perf_counter() - t
    stored = next(s.size_original for s in v.list() if s.id == sid)
    print(
        f"  {label(size)}: {len(doc['messages'])} messages, {stored} bytes stored JSON, saved in {built:.2f} s",
        file=sys.stderr,
    )

    base = doc["messages"]
    v.append(sid, make_turn(0))  # warm-up: page cache, key look-up
    appended = make_turn(0)
    appends: list[float] = []
    compactions = 0
    for i in range(1, repeat + 1):
        turn = make_turn(i)
        before = generation(v, sid)
        gc.collect()
        t = time.perf_counter()
        v.append(sid, turn)
        appends.append(time.perf_counter() - t)
        compactions += generation(v, sid) != before
        appended += turn

    if size <= 1 << 20:  # the appends are all there, in order (a full load is slow at the big sizes)
        got = orjson.loads(v.load_json(sid))["messages"]
        assert len(got) == len(base) + len(appended), (len(got), len(base) + len(appended))
        assert got[-1]["content"][0]["text"] == appended[-1]["content"]

    # Rewrite-everything: the session as saved plus one of the same turns, written whole over
    # the file (whatever was appended is replaced), so every rewrite is of the same size.
    rewrites: list[float] = []
    for i in range(1, rewrite_repeat + 1):
        whole = {**doc, "id": str(sid), "messages": base + make_turn(i)}
        gc.collect()
        t = time.perf_counter()
        v.save(whole)
        rewrites.append(time.perf_counter() - t)
    # A checkpoint of the session as it now is: a copy compressed and encrypted once (what a
    # restore point costs; the session itself is not rewritten).
    checkpoints: list[float] = []
    for _ in range(min(rewrite_repeat, 3)):
        gc.collect()
        t = time.perf_counter()
        v.checkpoint(sid)
        checkpoints.append(time.perf_counter() - t)
    return {
        "size": size,
        "stored": stored,
        "checkpoint": statistics.median(checkpoints) * 1000,
        "append": statistics.median(appends) * 1000,
        "append_p95": p95(appends) * 1000,
        "append_max": max(appends) * 1000,
        "append_mean": statistics.fmean(appends) * 1000,
        "compactions": compactions,
        "rewrite": statistics.median(rewrites) * 1000,
        "rewrite_n": len(rewrites),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10K,1M,10M,50M", help="comma list: 10K, 1M, 50M (no suffix: KiB)")
    ap.add_argument("--repeat", type=int, default=20, help="timed appends per size")
    ap.add_argument("--rewrite-repeat", type=int, help="timed rewrites per size (default: see above)")
    ap.add_argument("--keep", metavar="DIR", help="build the vault here (must not exist) and keep it")
    a = ap.parse_args()
    sizes = sorted(parse_size(s) for s in a.sizes.split(",") if s.strip())

    tmp = Path(tempfile.mkdtemp(prefix="bench-append-"))
    path = Path(a.keep) if a.keep else tmp / "vault"
    rows = []
    try:
        with Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
            for size in sizes:
                rr = a.rewrite_repeat or min(a.repeat, 20 if size <= 1 << 20 else 5)
                rows.append(measure(v, size, a.repeat, rr))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    base = rows[0]["append"]
    print(f"one turn (user + assistant, ~2 KB); append: median of {a.repeat} (after 1 warm-up); rewrite: median of n")
    head = (
        f"{'size':>9}{'stored JSON':>13}{'append':>11}{'p95':>12}{'max':>12}{'mean':>12}{'compact':>9}"
        f"{'rewrite':>12}{'n':>4}{'rewrite/append':>16}{'append/base':>13}{'checkpoint':>13}"
    )
    print(head)
    for r in rows:
        print(
            f"{label(r['size']):>9}{r['stored']:>13}{r['append']:>8.2f} ms{r['append_p95']:>9.2f} ms"
            f"{r['append_max']:>9.2f} ms{r['append_mean']:>9.2f} ms{r['compactions']:>9}"
            f"{r['rewrite']:>9.1f} ms{r['rewrite_n']:>4}"
            f"{r['rewrite'] / r['append']:>15.1f}x{r['append'] / base:>12.2f}x{r['checkpoint']:>10.1f} ms"
        )
    small, big = rows[0], rows[-1]
    ratio = big["append"] / small["append"]
    verdict = "HOLDS" if ratio <= BAR else "FAILS"
    print(
        f"bar: append median at {label(big['size'])} <= {BAR:g} x append median at {label(small['size'])}: "
        f"{big['append']:.2f} ms vs {small['append']:.2f} ms = {ratio:.2f}x -> {verdict}"
    )


if __name__ == "__main__":
    main()
