#!/usr/bin/env python3
"""Importing a Claude Code transcript: first import, re-import unchanged, and a grown file (issue 8).

A synthetic Claude Code session of about ``--size`` MB (user turns, assistant replies with
tool calls, tool results, usage) is written in the tool's JSONL format, then timed:

* ``parse``: reading and mapping the file alone (``_transcripts.read_transcript``), the baseline;
* ``new``: ``import-transcripts`` of the file into an empty vault (parse, validate, sanitize,
  compress, encrypt, write);
* ``unchanged``: the same again (a stat and one META read: nothing is parsed or written);
* ``grown``: one turn appended to the file, then imported (the file is parsed again, only the
  new turn is sanitized, encrypted and appended);
* ``changed``: the file rewritten with the same turns (stored anew, the old version kept as a
  checkpoint): what ``grown`` would cost without appends.

It also prints the size of the stored session (compressed, encrypted) after ``new``: since
schema 2 it holds each source record as well as the mapped messages (docs/capture/resume.md).

Medians of ``--repeat`` runs; ratios against ``parse`` measured in the same run.

    python benchmarks/bench_transcripts.py [--size 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sessionseal import PassphraseProvider, Vault, _transcripts

SID = "5e1d7c3a-2b4f-4a6e-8c9d-0f1a2b3c4d5e"
WORDS = [
    "the",
    "a",
    "to",
    "of",
    "and",
    "in",
    "is",
    "it",
    "for",
    "that",
    "this",
    "with",
    "on",
    "file",
    "test",
    "error",
    "run",
    "build",
    "value",
    "path",
    "data",
]


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n // 4))


def _record(kind: str, n: int, message: dict[str, object]) -> str:
    return json.dumps(
        {
            "type": kind,
            "uuid": f"u{n}",
            "parentUuid": f"u{n - 1}" if n else None,
            "sessionId": SID,
            "timestamp": f"2026-03-14T10:00:{n % 60:02d}.000Z",
            "cwd": "/home/dev/app",
            "gitBranch": "main",
            "version": "2.1.0",
            "isSidechain": False,
            "userType": "external",
            "message": message,
        }
    )


def turn(rng: random.Random, i: int) -> str:
    """One turn: a request, a reply with a tool call, its result, a final answer (~4 KB)."""
    n = 4 * i
    call = f"toolu_{i:06d}"
    lines = [
        _record("user", n, {"role": "user", "content": _text(rng, 300)}),
        _record(
            "assistant",
            n + 1,
            {
                "id": f"msg_{i}a",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [{"type": "tool_use", "id": call, "name": "Bash", "input": {"command": "pytest -q"}}],
                "usage": {"input_tokens": 1200, "output_tokens": 40},
            },
        ),
        _record(
            "user",
            n + 2,
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call, "content": _text(rng, 2500)}]},
        ),
        _record(
            "assistant",
            n + 3,
            {
                "id": f"msg_{i}b",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [{"type": "text", "text": _text(rng, 800)}],
                "usage": {"input_tokens": 1500, "output_tokens": 200},
            },
        ),
    ]
    return "\n".join(lines) + "\n"


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=float, default=20, help="transcript size in MB")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    rng = random.Random(5)
    tmp = Path(tempfile.mkdtemp(prefix="bench-transcripts-"))
    try:
        project = tmp / "projects" / "-home-dev-app"
        project.mkdir(parents=True)
        path = project / f"{SID}.jsonl"
        turns: list[str] = []
        size = 0
        while size < a.size * (1 << 20):
            turns.append(turn(rng, len(turns)))
            size += len(turns[-1])
        path.write_text("".join(turns))
        mb = path.stat().st_size / (1 << 20)
        rows: dict[str, list[float]] = {k: [] for k in ("parse", "new", "unchanged", "grown", "changed")}
        stored: list[int] = []  # bytes of the session file after "new" (encrypted, compressed)
        for r in range(a.repeat):
            path.write_text("".join(turns))
            rows["parse"].append(timed(lambda: _transcripts.read_transcript(path)))
            with Vault.init(tmp / f"v{r}", key_provider=PassphraseProvider("bench", log2_n=14)) as v:
                for kind in ("new", "unchanged"):
                    rows[kind].append(timed(lambda: v.import_transcripts([path])))
                stored.append(sum(p.stat().st_size for p in (tmp / f"v{r}" / "sessions").iterdir()))
                with open(path, "a") as f:
                    f.write(turn(rng, len(turns) + r))
                rows["grown"].append(timed(lambda: v.import_transcripts([path])))
                path.write_text("".join(turns))  # shorter again: changed, not grown
                os.utime(path)
                rows["changed"].append(timed(lambda: v.import_transcripts([path])))
                assert [o.action for o in v.import_transcripts([path])] == ["unchanged"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = statistics.median(rows["parse"])
    print(f"Claude Code transcript, {mb:.1f} MB, {len(turns)} turns; median of {a.repeat}")
    print(f"stored after 'new': {statistics.median(stored) / (1 << 20):.2f} MB on disk")
    print(f"{'step':<10}{'time':>10}{'vs parse':>10}{'MB/s':>9}")
    for k, xs in rows.items():
        t = statistics.median(xs)
        print(f"{k:<10}{t * 1000:>8.0f} ms{t / base:>9.2f}x{mb / t:>9.1f}")


if __name__ == "__main__":
    main()
