"""Where an index build's CPU time goes, stage by stage, with the pure and the compiled tokenizer.

On bench_search.py's cached vault (``--cache DIR``, built with ``--gb`` GB if missing), in one
process: the sessions are read and parsed once (timed), then ``--repeat`` rounds, interleaved,
each measure the CPU seconds (``time.process_time``: this process's threads, steadier than wall
time on a shared machine) of

* ``verify --read-data`` (the issue's target), for scale;
* ``pack`` of every session with the pure-Python tokenizer and with the compiled one (one call
  per session: ``_tokens.pack_fields_native``), when built, each round with a cold cache of the
  rules (``_tokens._terms_of_run``), as in a build's new process;
* inverting the postings (``SegmentBuilder.invert``, no key; pure and compiled) and placing, encoding, compressing
  and sealing them (``Inverted.build``, keyed), per segment of about ``--segment-mb`` MB of text.

Medians of the rounds; the load average is printed with them.

    python benchmarks/bench_fts_stages.py --cache /tmp/fts-0.1 [--gb 0.1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_fts as bf
import bench_search as bs

from sessionseal import _fts
from sessionseal._fts import _analyze, _build, _tokens


def cpu(fn: Callable[[], object]) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def same(pure: list[_fts.PackedDoc], native: list[_fts.PackedDoc]) -> bool:
    return all(p.analyzed() == n.analyzed() for p, n in zip(pure, native, strict=True))


def switch(native: bool) -> None:
    """The tokenizer ``pack`` uses (the benchmark's switch between the two paths)."""
    vars(_analyze)["NATIVE"] = native
    vars(_analyze)["count_translated"] = _tokens.count_translated_native if native else _tokens.count_translated_pure


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=0.1)
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--segment-mb", type=float, default=64)
    a = ap.parse_args()
    path, manifest, _tmp = bs.open_or_build(a.cache, a.gb)
    with bs.open_vault(path) as v:
        t = time.process_time()
        bodies = list(bf.read_documents(v))
        read_s = time.process_time() - t
        t = time.process_time()
        docs = [bf.doc_of(sid, body)[0] for sid, body in bodies]
        parse_s = time.process_time() - t
        text = sum(len(t) for d in docs for _f, t in d.fields) / 1e6
        del bodies
        limit = int(a.segment_mb * 1e6)

        def pack_with(native: bool) -> list[_fts.PackedDoc]:
            switch(native)
            # Cold, as in a build's process: the rules' cache would otherwise keep what the
            # previous round (or the other path) computed.
            _tokens._terms_of_run.cache_clear()
            try:
                return [_fts.pack(d) for d in docs]
            finally:
                switch(_tokens.NATIVE)

        packed = pack_with(False)
        if _tokens.NATIVE:
            print(f"native and pure postings equal: {same(packed, pack_with(True))}", file=sys.stderr)

        def builders() -> list[_fts.SegmentBuilder]:
            out = [_fts.SegmentBuilder()]
            for p in packed:
                if len(out[-1]) and out[-1].size + p.size > limit:
                    out.append(_fts.SegmentBuilder())
                out[-1].add(p)
            return out

        inverted: list[_fts.Inverted] = []

        def invert(native: bool) -> None:
            inverted[:] = [b._invert_native() if native else b._invert_pure() for b in builders()]

        def seal(native: bool) -> None:
            vars(_build)["NATIVE"] = native
            try:
                for inv in inverted:
                    inv.build(bf.VAULT_ID, uuid.uuid4(), os.urandom(32))
            finally:
                vars(_build)["NATIVE"] = _tokens.NATIVE

        stages: dict[str, Callable[[], object]] = {"verify --read-data": lambda: v.verify(read_data=True)}
        paths = {"pure": False, "compiled": True} if _tokens.NATIVE else {"pure": False}
        for how, native in paths.items():
            stages[f"pack, {how}"] = functools.partial(pack_with, native)
            stages[f"invert (per posting, no key), {how}"] = functools.partial(invert, native)
            stages[f"place, encode, zstd, seal (keyed), {how}"] = functools.partial(seal, native)
        rounds: dict[str, list[float]] = {k: [] for k in stages}
        for _ in range(a.repeat):
            for name, fn in stages.items():
                rounds[name].append(cpu(fn))
    report(text, sessions=manifest["sessions"], repeat=a.repeat, read_s=read_s, parse_s=parse_s, rounds=rounds)


def report(
    text: float, *, sessions: int, repeat: int, read_s: float, parse_s: float, rounds: dict[str, list[float]]
) -> None:
    print(
        f"{text:.0f} MB of message text in {sessions} sessions; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; CPU seconds, medians of {repeat}, interleaved"
    )
    print(f"| read, decrypt, decompress (once) | {read_s:.2f} s | {text / read_s:.0f} MB/s |")
    print(f"| JSON parse and fields (once) | {parse_s:.2f} s | {text / parse_s:.0f} MB/s |")
    for name, got in rounds.items():
        s = statistics.median(got)
        print(f"| {name} | {s:.2f} s | {text / s:.0f} MB/s |")


if __name__ == "__main__":
    main()
