#!/usr/bin/env python3
"""Where the sanitizer's CPU goes, per MB of a text: the stages of one ``sanitize_text``.

One core, in-process, the cyclic collector paused (as ``sessionseal sanitize`` runs), CPU time
(``time.process_time``, the least of ``--repeat`` runs: neighbours on a shared machine disturb
it far less than wall time).  Stages, each timed on its own from the same inputs:

* ``fold``: the text to one byte per character (what Hyperscan scans);
* ``raw scan``: the Hyperscan database over it with a callback that does nothing, the floor
  any sanitizer built on this database pays;
* ``prefilter``: fold + scan + one Python callback per report (the list of hits);
* ``candidates``: rule regexes at the hits and the span of each match (``_candidates``),
  of which ``regex`` is the rules' ``match`` calls alone, replayed at the same places;
* ``resolve``: ranking, overlaps and the value checks of the candidates that could win;
* ``redact``: a placeholder (HMAC fingerprint) per finding and the output text;

and the counts per MB: prefilter reports, regex tries, candidates, findings.  So the Python
share is ``total - raw scan - regex`` and, divided by the findings, the cost of each.

    PYTHONPATH=src:benchmarks python benchmarks/bench_sanitizer_stages.py FILE [--mb 4] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import time
from collections.abc import Callable
from typing import TypeVar

from sessionseal._sanitize import Sanitizer
from sessionseal._sanitize import _engine as engine
from sessionseal._sanitize._native import fold

_T = TypeVar("_T")


def _least(fn: Callable[[], _T], repeat: int) -> tuple[float, _T]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t)
    assert out is not None or best >= 0
    return best, out  # type: ignore[return-value]


def _regex_tries(text: str) -> list[tuple[re.Pattern[str], int]]:
    """Every (rule regex, position) the hot loop tries on *text*, recorded by a sanitizer of
    its own whose match functions are wrapped (the timed one is left as it is)."""
    tries: list[tuple[re.Pattern[str], int]] = []
    original = engine.Scanner._first_match

    def recording(self: engine.Scanner, ri: int) -> Callable[[str, int], re.Match[str] | None]:
        def match(t: str, pos: int) -> re.Match[str] | None:
            pattern = self.rules[ri].pattern
            tries.append((pattern, pos))
            return pattern.match(t, pos)

        return match

    engine.Scanner._first_match = recording  # type: ignore[method-assign]
    try:
        Sanitizer(b"\x01" * 32).sanitize_text(text)
    finally:
        engine.Scanner._first_match = original  # type: ignore[method-assign]
    return tries


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", help="a UTF-8 text (a transcript, the dense corpus stream...)")
    ap.add_argument("--mb", type=float, default=4.0, help="first N MB of the file (default 4)")
    ap.add_argument("--repeat", type=int, default=5, help="least of N runs per stage (default 5)")
    args = ap.parse_args()
    with open(args.file, encoding="utf-8", errors="surrogateescape") as fh:
        text = fh.read(int(args.mb * 1e6))
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        _report(args.file, text, args.repeat)
    finally:
        if was_enabled:
            gc.enable()


def _report(path: str, text: str, n: int) -> None:
    mb = len(text.encode("utf-8", "surrogateescape")) / 1e6
    sanitizer = Sanitizer(b"\x01" * 32)
    scanner = sanitizer._scanner
    sanitizer.sanitize_text(text)  # rule regexes compiled, caches warm
    t_fold, folded = _least(lambda: fold(text), n)
    t_hits, hits = _least(lambda: scanner.prefilter.hits(text), n)
    db = getattr(scanner.prefilter, "_db", None)
    t_raw = 0.0
    if db is not None:
        scratch = getattr(scanner.prefilter, "_scratch", None)
        t_raw, _ = _least(lambda: db.scan(folded, match_event_handler=lambda *_a: None, scratch=scratch), n)
    t_cand, cands = _least(lambda: scanner._candidates(text, hits), n)
    t_spans, spans = _least(lambda: scanner.find_spans(text, hits), n)
    t_redact, _ = _least(lambda: sanitizer.redact(text, spans), n)
    t_total, _ = _least(lambda: sanitizer.sanitize_text(text), n)
    tries = _regex_tries(text)
    t_regex, _ = _least(lambda: [p.match(text, pos) for p, pos in tries], n)

    def ms(t: float) -> str:
        return f"{t * 1000 / mb:6.1f} ms"

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{path}: {mb:.1f} MB, engine {sanitizer.engine}, load average {load}; CPU per MB, least of {n}")
    print(f"  fold                 {ms(t_fold)}")
    print(f"  raw scan             {ms(t_raw)}   (no-op callback)")
    print(f"  prefilter            {ms(t_hits)}   fold + scan + a callback per report")
    print(f"  candidates           {ms(t_cand)}   of which regex {ms(t_regex)}")
    print(f"  resolve              {ms(t_spans - t_cand)}   ranking, overlaps, value checks")
    print(f"  redact               {ms(t_redact)}   placeholders, output text")
    print(f"  total                {ms(t_total)}")
    python = t_total - t_raw - t_fold - t_regex
    print(f"  Python (total - fold - raw scan - regex) {ms(python)}")
    print(
        f"per MB: {len(hits) / mb:,.0f} reports, {len(tries) / mb:,.0f} regex tries, {len(cands) / mb:,.0f} candidates,"
        f" {len(spans) / mb:,.0f} findings"
    )
    if spans:
        print(f"Python per finding: {python * 1e6 / len(spans):.1f} us")


if __name__ == "__main__":
    main()
