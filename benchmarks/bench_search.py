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

Then it measures, medians of ``--repeat`` runs interleaved query by query, in the same run:

* ``Vault.search`` answered from the encrypted full-text index, for each query form above (as
  the query language writes it), with snippets (the CLI's default) and without (``--no-snippets``,
  the MCP listing's and scripts' fast path);
* the full streaming scan (``mode="literal"``, an absent word, no limit): the baseline the
  issue's "under 1/50" is against;
* the boolean forms on a streaming evaluation (decrypt every session on 4 threads, substring
  tests), and the plain forms on the literal scan (which stops after ``limit`` hits): what
  search cost before the index;
* ``Vault.verify(read_data=True)``: the floor an index build must match.

It prints the ratio table issue 23 asks for: each form's median, its fraction of the full scan,
whether it is under 50 ms and under 1/50; and the index's size on disk against the stored
sessions (target: under 40 %).

The index is the vault's own (``fts/``): kept by the writers as the vault was built, or, for a
vault from before the index, rebuilt first by ``Vault.reindex`` (which writes ``fts/`` into the
cached vault). ``--built-index`` measures instead an index the benchmark builds the way a
rebuild does, with the ``_fts`` functions over the session files, in segments of about 64 MB of
original text, handed to the search through its seam, writing nothing into the vault (for a
read-only cache; and to tell the segments' cost from the delta log's: a query decodes the whole
delta log, so its size shows in every query).

    python benchmarks/bench_search.py [--gb 1] [--cache DIR] [--repeat 5] [--json out.json]

``--cache DIR`` keeps the vault (and its manifest) to reuse across runs (the build of 1 GB takes
minutes: sanitizer, zstd and AES-GCM over every byte).  ``--gb 0.1`` is a quick run.  The
prototypes of the index engines (benchmarks/proto_index/) read the same cached vault.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import functools
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
import types
import uuid
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
#: The query forms in the query language (issue 23), answered from the index.
FTS_QUERIES: dict[str, tuple[str, ListQuery | None]] = {
    "rare word": (RARE, None),
    "common word": ("error", None),
    "phrase": (f'"{PHRASE}"', None),
    "prefix": ("serializ*", None),
    "AND": ("timeout AND violet", None),
    "OR": (f"{RARE} OR {RARE2}", None),
    "NOT": ("violet NOT timeout", None),
    "field": ("assistant:violet", None),
    "rare word, tag filter": (RARE, ListQuery(tags=("small",))),
}
#: Original text per segment when the benchmark builds the index (docs/design.md's policy).
SEGMENT_TEXT = 64_000_000
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
        return lambda: v.search(arg, mode="literal")
    if kind == "filtered":
        return lambda: v.search(arg, ListQuery(tags=("small",)), mode="literal")
    return lambda: streaming_bool(v, *arg)


# --------------------------------------------------------------------------- the index


class BenchIndex:
    """An index built as a rebuild builds it (``_fts`` over the session files), handed to the
    vault's search through its full-text seam, for a vault whose writers keep none."""

    def __init__(self, v: Vault, root: Path) -> None:
        from sessionseal import _fts

        self.vault_id, self.root = v.vault_id, root
        self.segments: list[tuple[uuid.UUID, bytes]] = []
        self.stamps: dict[uuid.UUID, tuple[int, int, int]] = {}
        sessions = {s.id: s for s in v.list(ListQuery(archived=None))}
        batch: list[Any] = []
        text = 0
        for sid, body in documents(v, ListQuery(archived=None)):
            s = sessions[uuid.UUID(sid)]
            batch.append(_fts.analyze(_fts.Doc(s.id, s.generation, _fts.doc_fields(json.loads(body)))))
            st = os.stat(v.path / "sessions" / (v._keys.file_name(s.id) + ".sst"))
            self.stamps[s.id] = (st.st_ino, st.st_size, st.st_mtime_ns)
            text += s.size_original
            if text >= SEGMENT_TEXT:
                self._seal(batch)
                batch, text = [], 0
        if batch:
            self._seal(batch)

    def _seal(self, batch: list[Any]) -> None:
        from sessionseal import _fts

        seg_id, key = uuid.uuid4(), os.urandom(32)
        (self.root / f"{seg_id}.seg").write_bytes(_fts.build_segment(self.vault_id, seg_id, key, batch))
        self.segments.append((seg_id, key))

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.root.iterdir())

    @contextlib.contextmanager
    def view(self) -> Iterator[Any]:
        from sessionseal import _fts

        with contextlib.ExitStack() as stack:
            readers = [
                stack.enter_context(_fts.SegmentReader(self.root / f"{i}.seg", self.vault_id, i, k))
                for i, k in self.segments
            ]
            yield types.SimpleNamespace(index=_fts.FtsIndex(readers), stamps=self.stamps)


def with_index(v: Vault, root: Path, *, own: bool = True) -> tuple[str, int]:
    """Make sure *v*'s search has an index (its own, if it has one and *own*; else one the
    benchmark builds); return how it got one and the index's bytes on disk."""
    fts = v.path / "fts"
    if own:
        made = "kept by the writers"
        if not (fts / "manifest.sst").exists():  # a vault from before the index: rebuild it
            t = time.perf_counter()
            v.reindex()
            made = f"rebuilt by Vault.reindex in {time.perf_counter() - t:.0f} s"
        files = [p for p in fts.iterdir() if p.is_file()]
        delta = sum(p.stat().st_size for p in files if p.suffix == ".delta")
        # Its segments by their suffix: a log's heads checkpoint (fts/*.heads) is no segment.
        segs = sum(p.suffix == ".seg" for p in files)
        desc = f"the vault's own, {made} (fts/: {segs} segment(s), a delta log of {delta / 1e3:.0f} kB)"
        return desc, sum(p.stat().st_size for p in files)
    t = time.perf_counter()
    built = BenchIndex(v, root)
    v._listing._search._fulltext = built  # the seam _wiring.py hands the vault's FullText through
    return f"built by the benchmark from _fts in {time.perf_counter() - t:.0f} s", built.size()


#: Per measurement, the median CPU seconds of this process (all its threads) beside the wall
#: clock's: on a shared machine the wall time follows the neighbours' load, the CPU time less.
CPU: dict[str, float] = {}


def interleaved_medians(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median seconds of each of *fns*, run round-robin so a busy neighbour hits all alike
    (and their median CPU seconds into :data:`CPU`)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            gc.collect()
            c, t = time.process_time(), time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
            cpu[k].append(time.process_time() - c)
    CPU.update({k: statistics.median(ts) for k, ts in cpu.items()})
    return {k: statistics.median(ts) for k, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=1.0, help="GB of original session text (default 1)")
    ap.add_argument("--cache", type=Path, help="keep the vault here and reuse it (default: a temp dir)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path, help="write the figures here too")
    ap.add_argument(
        "--built-index",
        action="store_true",
        help="measure an index the benchmark builds from the files (one per 64 MB of text, no delta log), "
        "even if the vault keeps its own",
    )
    a = ap.parse_args()
    path, manifest, tmp = open_or_build(a.cache, a.gb)
    index_dir = Path(tempfile.mkdtemp(prefix="bench-search-fts-"))
    try:
        with open_vault(path) as v:
            how, index_bytes = with_index(v, index_dir, own=not a.built_index)
            hits = {
                n: len(v.search(q, dataclasses.replace(f or ListQuery(), limit=100_000)))
                for n, (q, f) in FTS_QUERIES.items()
            }
            fns: dict[str, Callable[[], object]] = {}
            for n, (q, f) in FTS_QUERIES.items():
                fns[f"index: {n}"] = functools.partial(v.search, q, f)
                fns[f"index, no snippets: {n}"] = functools.partial(v.search, q, f, snippets=False)
            fns[FULL] = lambda: v.search("absent-word-xyz", ListQuery(limit=100_000), mode="literal")
            fns.update({f"before the index: {n}": streaming(v, n) for n in QUERIES})
            fns["verify --read-data"] = lambda: v.verify(read_data=True)
            medians = interleaved_medians(fns, a.repeat)
        report(manifest, medians, hits, how, index_bytes, a.repeat)
        if a.json:
            figures = {"manifest": manifest, "load": os.getloadavg()[0], "medians_s": medians, "cpu_s": CPU}
            figures |= {"index": how, "index_bytes": index_bytes, "hits": hits}
            a.json.write_text(json.dumps(figures, indent=2))
    finally:
        shutil.rmtree(index_dir, ignore_errors=True)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


FULL = "full streaming scan (literal, absent word, no limit)"


def report(manifest: dict[str, Any], medians: dict[str, float], hits: dict[str, int], *figures: Any) -> None:
    """The ratio table issue 23 asks for, and every measurement (*figures*: how the index was
    made, its bytes, the repeats)."""
    how, index_bytes, repeat = figures
    mb = manifest["original_bytes"] / 1e6
    print(
        f"{mb:.0f} MB original in {manifest['sessions']} sessions ({manifest['large']} large), "
        f"{manifest['stored_bytes'] / 1e6:.0f} MB stored; medians of {repeat}, interleaved; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (a shared, busy machine: "
        "other jobs ran alongside, so compare the ratios, not the absolute times)"
    )
    print(
        f"index: {how}; {index_bytes / 1e6:.1f} MB on disk = {100 * index_bytes / manifest['stored_bytes']:.0f} % of the stored sessions (target < 40 %)"
    )
    full = medians[FULL]
    print(f"full streaming scan: {full * 1000:.0f} ms ({mb / full:.0f} MB/s)")
    print(
        f"{'query form':<24}{'hits':>6}{'index':>10}{'no snip.':>10}{'1/x scan':>10}{'cpu':>9}{'cpu n.s.':>10}"
        "  < 50 ms and < 1/50"
    )
    for n in FTS_QUERIES:
        t, bare = medians[f"index: {n}"], medians[f"index, no snippets: {n}"]
        ok = "yes" if t < 0.05 and t < full / 50 else ("no snippets only" if bare < 0.05 and bare < full / 50 else "no")
        cpu, cpu_bare = CPU.get(f"index: {n}", 0.0), CPU.get(f"index, no snippets: {n}", 0.0)
        print(
            f"{n:<24}{hits[n]:>6}{t * 1000:>8.1f}ms{bare * 1000:>8.1f}ms{full / t:>10.0f}"
            f"{cpu * 1000:>7.1f}ms{cpu_bare * 1000:>8.1f}ms  {ok}"
        )
    print(f"{'other measurement':<48}{'median':>10}")
    for name, s in medians.items():
        if not name.startswith("index"):
            print(f"{name:<48}{s * 1000:>8.0f} ms")


if __name__ == "__main__":
    main()
