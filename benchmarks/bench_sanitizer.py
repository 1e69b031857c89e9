"""Sanitizer throughput: the real engine vs a naive one-regex-at-a-time baseline, same rules, same text.

The synthetic text is an agent transcript: prose, code, shell output, JSON tool results
(some JSON-escaped, one line per message), with secrets planted from the rule
catalogue's own examples at a configurable density.  The baseline runs every rule's
regular expression over the whole text, one rule after another (``re.sub`` with the
secret group replaced), which is what a simple masker does; the sanitizer runs its
prefilter engine, rule regexes near keyword hits, and its value checks.

Usage::

    PYTHONPATH=src python benchmarks/bench_sanitizer.py [--mb 4] [--engine hyperscan|ahocorasick|python]
        [--secret-every 16384] [--repeat 3] [--transcript-mb 8] [--e2e-mb 20] [--e2e-rounds 3]
        [--peer "CMD"]

It prints MB/s for both and the ratio, measured in the same run on the same text.  Then, on
realistic Claude Code / Codex transcript text (``_transcripts_text.py``: usage fields on every
record, stdlib sources as tool results, logs, a secret every 256 KiB) and on the dense text
above: in-process MB/s of ``sanitize_text`` beside the raw Hyperscan scan of the same
database in the same run; and end to end, ``python -m sessionseal sanitize`` as a fresh
process (stdin from a file, stdout to /dev/null, start-up included) on ``--e2e-mb`` MB of
transcript text, rounds interleaved with ``--peer`` if given, medians.
``--save`` instead measures ``Vault.save`` of a 10 MiB session, sanitizer included, against
its floor in the same run (see :func:`save_benchmark`).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import time

from sessionseal._sanitize import Sanitizer, available_engines
from sessionseal._sanitize._rules import Rule, default_catalogue

WORDS = [
    "the",
    "a",
    "to",
    "of",
    "and",
    "in",
    "is",
    "for",
    "on",
    "that",
    "with",
    "this",
    "it",
    "as",
    "be",
    "are",
    "by",
    "from",
    "or",
    "at",
    "an",
    "file",
    "function",
    "test",
    "run",
    "build",
    "error",
    "value",
    "config",
    "server",
    "client",
    "request",
    "response",
    "import",
    "return",
    "class",
    "def",
    "self",
    "data",
    "path",
    "update",
    "change",
    "fix",
    "check",
    "list",
    "user",
    "token",
    "count",
    "output",
    "input",
    "result",
    "cache",
    "session",
    "key",
    "auth",
    "mode",
    "password",
    "length",
    "secret",
    "manager",
    "vault",
    "key-value",
    "api",
    "endpoint",
    "retry",
    "timeout",
    "deploy",
    "branch",
    "commit",
]

CODE = '''def load_settings(path: str) -> dict[str, str]:
    """Read settings; the api_key and password come from the environment."""
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    data["api_key"] = os.environ["API_KEY"]
    token_count = len(data.get("tokens", []))
    return {k: str(v) for k, v in data.items() if k != "password_min_length"}
'''

SHELL = """$ git log --oneline -3
1448e90 fix: retry on 502 (sha 1448e90e5974329a0ce3546af68ef1fcc1f224b5)
a457610 chore: bump deps
$ ls -la ~/.config/app
-rw-r--r--  1 dev dev  612 May  2 13:03 settings.json
$ pip install requests==2.32.3
Collecting requests==2.32.3
  Using cached requests-2.32.3-py3-none-any.whl (64 kB)
"""


def _prose(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def _tool_json(rng: random.Random) -> str:
    doc = {
        "id": f"toolu_01{''.join(rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789') for _ in range(22))}",
        "request_id": "62b88db1-ed32-4cd6-abf6-5b7eb1ca8ef9",
        "timestamp": "2024-05-02T13:03:35.668Z",
        "usage": {"input_tokens": rng.randint(10, 9999), "output_tokens": rng.randint(1, 999)},
        "integrity": "sha512-xDWPP1okJHr0WiB6YgAb7i1hJOJqmy+DhlWqjgf98aVNLCQMnXlusf4Fs2HSeRwTz/L0JIN8l5SuKktQU7VLww==",
        "items": [{"name": rng.choice(WORDS), "size": rng.randint(1, 1 << 20)} for _ in range(rng.randint(1, 6))],
    }
    return json.dumps(doc, indent=2)


def synthetic_transcript(size: int, secret_every: int, rules: tuple[Rule, ...], seed: int = 7) -> str:
    """A deterministic transcript of about *size* characters with a secret every *secret_every*."""
    rng = random.Random(seed)
    examples = [ex for r in rules for ex in r.examples]
    parts: list[str] = []
    total = 0
    next_secret = secret_every
    while total < size:
        kind = rng.random()
        if kind < 0.35:
            chunk = _prose(rng, rng.randint(20, 120)) + "\n"
        elif kind < 0.55:
            chunk = CODE
        elif kind < 0.7:
            chunk = SHELL
        elif kind < 0.85:
            chunk = _tool_json(rng) + "\n"
        else:  # a transcript line: the message JSON-escaped on one line
            chunk = json.dumps({"type": "tool_result", "content": _prose(rng, 40) + "\n" + CODE}) + "\n"
        if total + len(chunk) >= next_secret:
            chunk += rng.choice(examples) + "\n"
            next_secret += secret_every
        parts.append(chunk)
        total += len(chunk)
    return "".join(parts)


class NaiveMasker:
    """Every rule's regex over the whole text, one after another (the baseline)."""

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = [(r.id, r.pattern, r.secret_groups) for r in rules]

    def sanitize(self, text: str) -> str:
        for rule_id, pattern, groups in self.rules:

            def repl(m: re.Match[str], rule_id: str = rule_id, groups: tuple[int | str, ...] = groups) -> str:
                for g in groups:
                    if m.start(g) >= 0:
                        s, e = m.start(g) - m.start(), m.end(g) - m.start()
                        whole = m.group(0)
                        return whole[:s] + f"[REDACTED:{rule_id}]" + whole[e:]
                return m.group(0)

            text = pattern.sub(repl, text)
        return text


def _time(fn: object, text: str, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(text)  # type: ignore[operator]
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def _raw_scan_seconds(sanitizer: Sanitizer, text: str, repeat: int) -> float | None:
    """The prefilter's Hyperscan database alone over *text* (folded, no-op callback): the
    floor any sanitizer built on it pays.  None without the hyperscan engine."""
    from sessionseal._sanitize._native import fold

    prefilter = sanitizer._scanner.prefilter
    db = getattr(prefilter, "_db", None)
    scratch = getattr(prefilter, "_scratch", None)
    if db is None:
        return None
    data = fold(text)

    def scan(_: str) -> None:
        db.scan(data, match_event_handler=lambda *_a: None, scratch=scratch)

    return _time(scan, text, repeat)


def in_process(sanitizer: Sanitizer, label: str, text: str, repeat: int) -> None:
    """``sanitize_text`` on *text* against the raw Hyperscan scan, same run, one core."""
    size = len(text.encode())
    sanitizer.sanitize_text(text)  # rule regexes compiled, caches warm
    t_san = _time(sanitizer.sanitize_text, text, repeat)
    t_raw = _raw_scan_seconds(sanitizer, text, repeat)
    found = sum(sanitizer.sanitize_text(text).counts.values())
    line = f"{label:<22} {size / 1e6 / t_san:8.1f} MB/s  ({found} redacted in {size / 1e6:.1f} MB)"
    if t_raw is not None:
        line += f"   raw Hyperscan scan {size / 1e6 / t_raw:7.1f} MB/s  (sanitizer = {t_raw / t_san:.0%} of it)"
    print(line)


def end_to_end(data: bytes, rounds: int, peer: str | None) -> None:
    """``python -m sessionseal sanitize`` as a fresh process, stdin -> stdout (a file in, /dev/null
    out), wall time including start-up; with *peer*, that command too; rounds interleaved, medians."""
    import os
    import shlex
    import subprocess
    import sys
    import tempfile

    commands = {"sessionseal sanitize": [sys.executable, "-m", "sessionseal", "sanitize"]}
    if peer:
        commands["peer"] = shlex.split(peer)
    with tempfile.NamedTemporaryFile(prefix="bench-sanitize-", suffix=".jsonl") as fh:
        fh.write(data)
        fh.flush()
        subprocess.run(commands["sessionseal sanitize"], stdin=subprocess.DEVNULL, check=True)  # warm the cache
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(rounds):
            for name, cmd in commands.items():
                with open(fh.name, "rb") as stdin, open(os.devnull, "wb") as stdout:
                    t = time.perf_counter()
                    subprocess.run(cmd, stdin=stdin, stdout=stdout, check=True)
                    times[name].append(time.perf_counter() - t)
    size = len(data) / 1e6
    for name, samples in times.items():
        rates = ", ".join(f"{size / x:.1f}" for x in samples)
        print(
            f"{name:<22} {size / statistics.median(samples):8.1f} MB/s  median of {rounds} ({rates}) on {size:.1f} MB"
        )
    if peer:
        ratio = statistics.median(times["peer"]) / statistics.median(times["sessionseal sanitize"])
        print(f"{'ratio to peer':<22} {ratio:8.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=4.0, help="size of the synthetic text in MB (default 4)")
    ap.add_argument("--engine", choices=available_engines(), default=None)
    ap.add_argument("--secret-every", type=int, default=16384, help="plant a secret every N characters")
    ap.add_argument("--repeat", type=int, default=3, help="median of N runs (default 3)")
    ap.add_argument("--baseline-mb", type=float, default=1.0, help="size used for the slow baseline (default 1)")
    ap.add_argument(
        "--transcript-mb", type=float, default=8.0, help="realistic transcript text, in-process (default 8)"
    )
    ap.add_argument(
        "--e2e-mb", type=float, default=20.0, help="transcript text for the end-to-end run (default 20; 0: skip)"
    )
    ap.add_argument("--e2e-rounds", type=int, default=3, help="end-to-end rounds, interleaved (default 3)")
    ap.add_argument("--peer", default=None, help="another filter command (stdin -> stdout) timed beside sanitize")
    args = ap.parse_args()

    rules, _ = default_catalogue()
    sanitizer = Sanitizer(b"k" * 32, engine=args.engine)
    text = synthetic_transcript(int(args.mb * 1e6), args.secret_every, rules)
    base_text = text[: int(args.baseline_mb * 1e6)]
    size = len(text.encode())
    base_size = len(base_text.encode())

    t_san = _time(sanitizer.sanitize_text, text, args.repeat)
    t_base = _time(NaiveMasker(rules).sanitize, base_text, max(1, args.repeat // 2))
    found = sum(sanitizer.sanitize_text(text).counts.values())

    mbps = size / 1e6 / t_san
    base_mbps = base_size / 1e6 / t_base
    print(f"rules: {len(rules)}  engine: {sanitizer.engine}  text: {size / 1e6:.1f} MB, {found} secrets redacted")
    print(f"sanitizer          {mbps:8.1f} MB/s  ({t_san * 1000:.0f} ms for {size / 1e6:.1f} MB)")
    print(f"naive one-by-one   {base_mbps:8.2f} MB/s  ({t_base * 1000:.0f} ms for {base_size / 1e6:.1f} MB)")
    print(f"ratio              {mbps / base_mbps:8.1f}x")

    # Realistic transcripts (benchmarks/_transcripts_text.py) and the dense synthetic text,
    # each against the raw Hyperscan scan of the same database in the same run.
    from _transcripts_text import transcript_text

    examples = [ex for r in rules for ex in r.examples]
    transcript = transcript_text(int(args.transcript_mb * 1e6), examples)
    print()
    in_process(sanitizer, "transcripts", transcript, args.repeat)
    in_process(sanitizer, "dense synthetic", text, args.repeat)
    if args.e2e_mb > 0:
        print()
        data = transcript_text(int(args.e2e_mb * 1e6), examples).encode()
        end_to_end(data, args.e2e_rounds, args.peer)


def save_benchmark(argv: list[str]) -> None:
    """``--save [--mb 10] [--rounds 9]``: ``Vault.save`` of a 10 MiB session, sanitizer included,
    against its floor (orjson + this Hyperscan database's scan alone + zstd-3 + AES-GCM + fsynced
    write) in the same run: benchmarks/bench_save.py."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_save

    bench_save.main(argv)


if __name__ == "__main__":
    import sys

    if "--save" in sys.argv[1:]:
        save_benchmark([a for a in sys.argv[1:] if a != "--save"])
    else:
        main()
