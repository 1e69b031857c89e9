#!/usr/bin/env python3
"""The streaming search on a realistic vault: the baseline issue 23's full-text index must beat.

Builds (or reuses, from ``--cache DIR``) a vault of ``--gb`` GB of original session text in
sessions of realistic sizes: many small (10-100 KB, log-uniform) and some large (1-20 MB), 95 to
5 by count, so most of the bytes are in the large ones, as in real use.  The text is what agents
write (``_transcripts_text``: Claude Code / Codex records, real stdlib code read and edited,
command output, logs, ids, paths), with a Zipfian long tail of prose words (a 40,000-word
vocabulary, frequency ~ 1/rank) so rare words exist besides the ids.  A few marker words are
planted at known rates so each query form has a known answer:

* rare: ``quokkafjord`` (about one session in 1,000), ``marmotvault`` (one in 700);
* common: ``error`` (nearly every session);
* phrase: ``violet harbor protocol`` (one session in 50);
* prefix: ``serializ`` (serialize, serializer, serialization... in the stdlib code);
* boolean: ``timeout AND violet``, ``quokkafjord OR marmotvault``, ``violet NOT timeout``;
* filter: the rare word among the sessions tagged ``small``.

Then it measures, medians of ``--repeat`` runs interleaved query by query:

* ``Vault.search`` for each plain form (the streaming scan stops after ``limit`` hits, 20 by
  default, so a common word is cheap; a rare one scans everything);
* the full streaming scan (an absent word, no limit): the figure the index's "1/50" is against;
* the boolean forms, which today's search cannot express: a streaming evaluation on the search's
  own read path (decrypt every session on 4 threads, substring tests);
* ``Vault.verify(read_data=True)``: the floor an index build must match.

    python benchmarks/bench_search.py [--gb 1] [--cache DIR] [--repeat 5] [--json out.json]

``--cache DIR`` keeps the vault (and its manifest) to reuse across runs (the build of 1 GB takes
minutes: sanitizer, zstd and AES-GCM over every byte).  ``--gb 0.1`` is a quick run.  The
prototypes of the index engines (benchmarks/proto_index/) read the same cached vault.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gc
import itertools
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _transcripts_text import _Gen, _stdlib_sources

from sessionseal import ListQuery, PassphraseProvider, Vault

PASSPHRASE = "bench"  # noqa: S105  (a throwaway vault in a temp or cache dir)
SEED = 23
RARE, RARE2, PHRASE = "quokkafjord", "marmotvault", "violet harbor protocol"
#: The query forms: name -> (kind, argument).  ``kind`` says how the streaming scan answers it.
QUERIES: dict[str, tuple[str, Any]] = {
    "rare word": ("text", RARE),
    "common word": ("text", "error"),
    "phrase": ("text", PHRASE),
    "prefix": ("text", "serializ"),
    "AND": ("bool", (("timeout", "violet"), (), ())),
    "OR": ("bool", ((), (RARE, RARE2), ())),
    "NOT": ("bool", (("violet",), (), ("timeout",))),
    "rare word, tag filter": ("filtered", RARE),
}
_SKIP_KEYS = frozenset(
    {"type", "role", "timestamp", "uuid", "parentUuid", "sessionId", "version", "userType", "isSidechain"}
)


# --------------------------------------------------------------------------- the corpus


class Zipf:
    """A deterministic vocabulary of pronounceable pseudo-words, drawn with frequency ~ 1/rank."""

    def __init__(self, n: int = 40_000, seed: int = SEED) -> None:
        rng = random.Random(seed)
        onsets = [
            "b",
            "c",
            "d",
            "f",
            "g",
            "h",
            "j",
            "k",
            "l",
            "m",
            "n",
            "p",
            "r",
            "s",
            "t",
            "v",
            "w",
            "z",
            "br",
            "cr",
            "dr",
            "fl",
            "gr",
            "pl",
            "pr",
            "st",
            "tr",
            "sk",
            "sp",
        ]
        vowels = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou"]
        words: set[str] = set()
        while len(words) < n:
            words.add("".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.randint(1, 4))))
        self.words = sorted(words, key=lambda w: (rng.random(), w))
        self.cum = list(itertools.accumulate(1 / (r + 1) ** 1.07 for r in range(n)))

    def prose(self, rng: random.Random, k: int) -> str:
        return " ".join(rng.choices(self.words, cum_weights=self.cum, k=k))


def _strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        if len(value) >= 8:
            out.append(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k not in _SKIP_KEYS:
                _strings(v, out)
    elif isinstance(value, list):
        for v in value:
            _strings(v, out)


def _role(line: str) -> str:
    if '"tool_result"' in line or "function_call_output" in line:
        return "tool"
    if '"type":"user"' in line or '"role":"user"' in line:
        return "user"
    return "assistant"


def session_doc(i: int, size: int, zipf: Zipf, sources: list[str]) -> dict[str, Any]:
    """Session *i*: about *size* bytes of agent records turned into messages, with Zipfian prose."""
    rng = random.Random(SEED * 1_000_003 + i)
    gen = _Gen(rng, sources, [])
    messages: list[dict[str, Any]] = []
    total = 0
    plant = [w for w, every in ((RARE, 1000), (RARE2, 700), (PHRASE, 50)) if i % every == 7 % every]
    while total < size:
        lines = gen.claude_turn(None) if rng.random() < 0.6 else gen.codex_turn(None)
        for line in lines:
            parts: list[str] = []
            _strings(json.loads(line), parts)
            role = _role(line)
            if role != "tool" and rng.random() < 0.5:
                parts.append(zipf.prose(rng, rng.randint(20, 200)))
            text = "\n".join(parts)
            if not text:
                continue
            messages.append({"role": role, "content": text})
            total += len(text) + 24
    for word in plant:
        m = messages[rng.randrange(len(messages))]
        m["content"] += f" and then {word} again"
    small = size < 1_000_000
    return {
        "title": f"session {i}",
        "status": "completed",
        "tags": ["small" if small else "large"],
        "workspace": rng.choice(("/home/dev/webapp", "/home/dev/ledger", "/srv/api-gateway")),
        "messages": messages,
    }


def session_sizes(total: int, seed: int = SEED) -> list[int]:
    """Sizes summing to about *total*: 95 % log-uniform 10-100 KB, 5 % log-uniform 1-20 MB."""
    rng = random.Random(seed)
    out: list[int] = []
    while sum(out) < total:
        lo, hi = (1e6, 20e6) if rng.random() < 0.05 else (10e3, 100e3)
        out.append(int(math.exp(rng.uniform(math.log(lo), math.log(hi)))))
    return out


def build(path: Path, gb: float, progress: bool = True) -> dict[str, Any]:
    """Create the vault at *path* (the caller checked it is absent); return its manifest."""
    t0 = time.perf_counter()
    zipf, sources = Zipf(), _stdlib_sources()
    sizes = session_sizes(int(gb * 1e9))
    gen_s = 0.0
    with Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
        done = 0
        for i, size in enumerate(sizes):
            t = time.perf_counter()
            doc = session_doc(i, size, zipf, sources)
            gen_s += time.perf_counter() - t
            v.save(doc)
            done += size
            if progress and i % 50 == 0:
                print(f"  built {i + 1}/{len(sizes)} sessions, {done / 1e6:.0f} MB", file=sys.stderr)
        stats = v.stats()
    manifest = {
        "gb": gb,
        "seed": SEED,
        "sessions": len(sizes),
        "large": sum(s >= 1_000_000 for s in sizes),
        "original_bytes": stats.original_bytes,
        "stored_bytes": stats.stored_bytes,
        "build_s": round(time.perf_counter() - t0, 1),
        "generate_s": round(gen_s, 1),
    }
    (path.parent / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def open_or_build(cache: Path | None, gb: float) -> tuple[Path, dict[str, Any], Path | None]:
    """The vault (built if absent), its manifest, and a temp dir to remove (or None)."""
    tmp = None
    if cache is None:
        tmp = Path(tempfile.mkdtemp(prefix="bench-search-"))
        cache = tmp
    path = cache / "vault"
    manifest_path = cache / "manifest.json"
    if (path / "vault.json").exists() and manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest["gb"] == gb and manifest["seed"] == SEED:
            return path, manifest, tmp
        raise SystemExit(f"{cache} holds a {manifest['gb']} GB vault; use another --cache for {gb} GB")
    if path.exists():
        shutil.rmtree(path)  # a build cut short: no manifest
    cache.mkdir(parents=True, exist_ok=True)
    print(f"building a {gb} GB vault in {path} ...", file=sys.stderr)
    return path, build(path, gb), tmp


def open_vault(path: Path) -> Vault:
    return Vault.open(path, passphrase=PASSPHRASE, auto_cleanup=False)


def text_of(content: Any) -> str:
    """The text of a message's content (a string, or its blocks' strings but their types and ids)."""
    if isinstance(content, str):
        return content
    out: list[str] = []
    stack = [content]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            out.append(x)
        elif isinstance(x, dict):
            stack.extend(v for k, v in x.items() if k not in ("type", "id", "tool_call_id"))
        elif isinstance(x, list):
            stack.extend(reversed(x))
    return "\n".join(out)


def documents(v: Vault, query: ListQuery | None = None) -> Iterator[tuple[str, bytes]]:
    """(id, stored JSON) of every session, decrypted on 4 threads as ``Vault.search`` does: what an
    index build reads.  Through the store, not ``Vault.load_json``, which audits every load (an
    fsync each) as a user's read should, and an index build would not."""
    store = v._store  # a benchmark's look inside: the same read path as the streaming search
    ids = [s.id for s in v.list(query or ListQuery(limit=None))]
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        yield from zip(map(str, ids), pool.map(lambda sid: store.document(store.open(sid)), ids), strict=True)


# --------------------------------------------------------------------------- the streaming forms


def streaming_bool(v: Vault, must: tuple[str, ...], any_of: tuple[str, ...], none: tuple[str, ...]) -> list[str]:
    """What a streaming scan does for a boolean query: decrypt every session and test substrings."""
    found = []
    for sid, body in documents(v):
        low = body.lower()
        wanted = all(w.encode() in low for w in must) and (not any_of or any(w.encode() in low for w in any_of))
        if wanted and not any(w.encode() in low for w in none):
            found.append(sid)
    return found


def streaming(v: Vault, name: str) -> Callable[[], object]:
    kind, arg = QUERIES[name]
    if kind == "text":
        return lambda: v.search(arg)
    if kind == "filtered":
        return lambda: v.search(arg, ListQuery(tags=("small",)))
    return lambda: streaming_bool(v, *arg)


def interleaved_medians(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median seconds of each of *fns*, run round-robin so a busy neighbour hits all alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            gc.collect()
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(ts) for k, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=1.0, help="GB of original session text (default 1)")
    ap.add_argument("--cache", type=Path, help="keep the vault here and reuse it (default: a temp dir)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path, help="write the figures here too")
    a = ap.parse_args()
    path, manifest, tmp = open_or_build(a.cache, a.gb)
    try:
        with open_vault(path) as v:
            hits = {n: len(v.search(QUERIES[n][1], ListQuery(limit=100_000))) for n in ("rare word", "phrase")}
            fns = {n: streaming(v, n) for n in QUERIES}
            fns["full scan (absent word, no limit)"] = lambda: v.search("absent-word-xyz", ListQuery(limit=100_000))
            fns["verify --read-data"] = lambda: v.verify(read_data=True)
            medians = interleaved_medians(fns, a.repeat)
        load = os.getloadavg()[0]
        mb = manifest["original_bytes"] / 1e6
        print(
            f"{mb:.0f} MB original in {manifest['sessions']} sessions ({manifest['large']} large), "
            f"{manifest['stored_bytes'] / 1e6:.0f} MB stored; built in {manifest['build_s']:.0f} s "
            f"(generation {manifest['generate_s']:.0f} s); medians of {a.repeat}, interleaved; "
            f"load average {load:.1f} on {os.cpu_count()} CPUs (shared machine)"
        )
        print(f"sessions found: {hits}")
        print(f"{'streaming measurement':<40}{'median':>10}{'MB/s':>9}")
        for name, s in medians.items():
            print(f"{name:<40}{s * 1000:>8.0f} ms{mb / s:>9.0f}")
        if a.json:
            a.json.write_text(json.dumps({"manifest": manifest, "load": load, "medians_s": medians}, indent=2))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
