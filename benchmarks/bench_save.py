#!/usr/bin/env python3
"""``Vault.save`` of a realistic 10 MiB session, sanitizer included, against a floor measured in the same run.

Floor (no sessionseal code): ``orjson.dumps`` of the session document as stored, the sanitizer's
own Hyperscan database scanned alone over that JSON (a callback that does nothing), zstd level 3,
AES-256-GCM and an fsynced atomic write (temp, fsync, rename, fsync dir).  Product: ``Vault.save``
with the vault's real sanitizer (the tree walk with its structural rules, every string scanned).
The save is measured twice in each round: without the full-text index (``FullText.enabled``
off: the session file alone, issue 21's target) and with it (the delta-log record of the whole
session, issue 23; its compactions fall on some rounds, so the mean is given too). Rounds are
interleaved (floor, save without the index, save with it, floor...) so a busy neighbour slows
all three; the figures are medians and their ratios to the floor of the same run.

The session is an agent transcript: user prompts, assistant text and thinking, tool calls with
argv arrays (Codex ``shell``), shell command strings and JSON inputs (file edits), tool results
with file contents and command output, usage counts, timestamps and ids, tool state, an MCP
connection, and a few secrets from the rule catalogue's examples.

    python benchmarks/bench_save.py [--mb 10] [--rounds 9] [--profile]
    python benchmarks/bench_sanitizer.py --save [--mb 10] [--rounds 9]   (the same)
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sanitizer import WORDS
from bench_vault import floor_save

from sessionseal import PassphraseProvider, Session, Vault
from sessionseal._sanitize._rules import default_catalogue

# The words of bench_sanitizer's synthetic text without its secret words (that text is dense in
# them on purpose; a session is not), and some of a codebase's.
_WORDS = [w for w in WORDS if w not in {"token", "key", "password", "secret", "vault", "key-value", "api"}] + [
    "module",
    "parser",
    "schema",
    "index",
    "query",
    "table",
    "column",
    "migration",
    "handler",
]
_NAMES = [
    "utils",
    "config",
    "models",
    "server",
    "client",
    "views",
    "handlers",
    "parser",
    "schema",
    "cache",
    "index",
    "store",
    "api",
    "cli",
]
_CODE_LINES = (
    "def {f}(self, {a}: str, {b}: int = 0) -> dict[str, Any]:",
    '    """Return the {a} of {b} as a mapping; raise KeyError when it is missing."""',
    "    result = self._{a}.get({b}, {{}})",
    "    for key, value in sorted(result.items()):",
    "        if value is None or key.startswith('_'):",
    "            continue",
    "        log.debug('%s=%r', key, value)",
    "    return {{k: v for k, v in result.items() if v}}",
    "",
    "class {F}Handler(BaseHandler):",
    "    timeout = {n}",
    "    retries = 3",
    "    async def handle(self, request: Request) -> Response:",
    "        data = await request.json()",
    "        return Response(status=200, body=json.dumps(data))",
)


def _prose(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choices(_WORDS, k=rng.randint(lo, hi))).capitalize() + "."


def _code(rng: random.Random, lines: int) -> str:
    out = []
    for _ in range(lines):
        f, a, b = rng.choice(_WORDS), rng.choice(_WORDS), rng.choice(_WORDS)
        out.append(rng.choice(_CODE_LINES).format(f=f, F=f.capitalize(), a=a, b=b, n=rng.randint(1, 600)))
    return "\n".join(out)


def _output(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.4:  # pytest: -q mostly, -v (a PASSED line per test) a third of the time
        n = rng.randint(5, 200)
        name = rng.choice(_NAMES)
        summary = f"{n} passed in {rng.random() * 9:.2f}s"
        if rng.random() < 0.33:
            lines = [
                f"tests/test_{name}.py::test_{rng.choice(_WORDS)}_{i} PASSED [{i * 100 // n:3d}%]" for i in range(n)
            ]
            return "\n".join([f"collected {n} items", "", *lines, "", f"{'=' * 30} {summary} {'=' * 30}"])
        dots = "".join(rng.choice("........F.s") for _ in range(n))
        lines = [f"{dots[i : i + 72]:<72} [{min(100, (i + 72) * 100 // n):3d}%]" for i in range(0, n, 72)]
        return "\n".join([*lines, summary])
    if kind < 0.7:
        return "\n".join(
            f"-rw-r--r--  1 dev dev {rng.randint(100, 99999):6d} May  2 13:{rng.randint(0, 59):02d} {rng.choice(_NAMES)}.py"
            for _ in range(rng.randint(3, 60))
        )
    return "\n".join(
        f"{uuid.UUID(int=rng.getrandbits(128)).hex[:7]} {_prose(rng, 3, 9)}" for _ in range(rng.randint(3, 30))
    )


def make_session(target: int, seed: int = 7) -> dict[str, Any]:
    """A deterministic agent session of about *target* bytes of JSON, with a few secrets."""
    rng = random.Random(seed)
    rules, _ = default_catalogue()
    examples = [ex for r in rules for ex in r.examples]
    messages: list[dict[str, Any]] = []
    tool_history: list[dict[str, Any]] = []
    size, i = 0, 0
    t0 = 1_767_225_600
    while size < target:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 + i * 7)) + f".{i % 1000:03d}Z"
        cid = f"toolu_01{uuid.UUID(int=rng.getrandbits(128)).hex[:22]}"
        path = f"src/app/{rng.choice(_NAMES)}.py"
        secret = rng.choice(examples) if i % 97 == 50 else ""
        msg: dict[str, Any]
        turn = i % 4
        if turn == 0:
            msg = {"role": "user", "content": _prose(rng, 10, 80) + (f"\n{secret}" if secret else "")}
        elif turn == 1:
            call = rng.random()
            arguments: Any
            if call < 0.3:  # Codex shell: an argv array
                arguments = {
                    "command": ["bash", "-lc", f"pytest -q tests/test_{rng.choice(_NAMES)}.py -k {rng.choice(_WORDS)}"],
                    "workdir": "/home/dev/app",
                    "timeout_ms": 120000,
                }
            elif call < 0.6:
                arguments = {
                    "command": f"rg -n '{rng.choice(_WORDS)}' src/ | head -{rng.randint(5, 50)}",
                    "description": _prose(rng, 3, 8),
                }
            elif call < 0.85:
                arguments = {
                    "file_path": f"/home/dev/app/{path}",
                    "old_string": _code(rng, rng.randint(1, 6)),
                    "new_string": _code(rng, rng.randint(1, 8)),
                }
            else:
                arguments = {"file_path": f"/home/dev/app/{path}", "offset": rng.randint(1, 400), "limit": 200}
            msg = {
                "id": f"msg_01{uuid.UUID(int=rng.getrandbits(128)).hex[:22]}",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "timestamp": ts,
                "usage": {
                    "input_tokens": rng.randint(10, 99999),
                    "output_tokens": rng.randint(1, 4000),
                    "cache_read_tokens": rng.randint(0, 200000),
                    "cache_write_tokens": rng.randint(0, 9999),
                },
                "content": [
                    {"type": "thinking", "text": _prose(rng, 20, 150)},
                    {"type": "text", "text": _prose(rng, 10, 120) + (f" {secret}" if secret else "")},
                    {
                        "type": "tool_call",
                        "id": cid,
                        "name": rng.choice(["Bash", "Edit", "Read", "shell"]),
                        "arguments": arguments,
                    },
                ],
            }
            tool_history.append(
                {
                    "tool": "Bash",
                    "call_id": cid,
                    "started_at": ts,
                    "finished_at": ts,
                    "status": "ok",
                    "duration_ms": rng.randint(5, 90000),
                }
            )
        elif turn == 2:
            content = _code(rng, rng.randint(10, 160)) if rng.random() < 0.5 else _output(rng)
            msg = {
                "role": "tool",
                "timestamp": ts,
                "content": [
                    {
                        "type": "tool_result",
                        "tool_call_id": cid,
                        "content": content + (f"\n{secret}\n" if secret else ""),
                        "is_error": rng.random() < 0.05,
                    }
                ],
            }
        else:
            msg = {
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "timestamp": ts,
                "content": _prose(rng, 20, 200),
                "cost_usd": rng.random() / 10,
            }
        messages.append(msg)
        size += len(orjson.dumps(msg))
        i += 1
    return {
        "title": "Refactor the request handlers",
        "tags": ["bench", "refactor"],
        "workspace": "/home/dev/app",
        "working_directory": "/home/dev/app",
        "environment": {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "GITHUB_TOKEN": "ghp_" + "Zb0zDXrzRQpTA3VynMF143hT3wSZhx38g0mT",
        },
        "config": {
            "model": "claude-sonnet-4-5",
            "max_tokens": 32000,
            "permissions": {"allow": ["Bash(pytest:*)", "Edit"]},
        },
        "messages": messages,
        "tool_history": tool_history,
        "tool_state": {"todo": {"items": [{"content": _prose(rng, 4, 10), "status": "pending"} for _ in range(12)]}},
        "open_files": [f"src/app/{n}.py" for n in _NAMES],
        "connections": [
            {
                "name": "acme",
                "command": ["npx", "-y", "acme-mcp-server", "--api-key", "k8Zq2Lm9Xv4Rt7Yp1Wn6Bc3Hd5Fg0Js"],
            }
        ],
    }


def _scan_of(db: Any, scratch: Any) -> Callable[[bytes], object]:
    """The Hyperscan database's scan of a text, with a callback that does nothing."""

    def on_match(*_args: object) -> None:
        return None

    return lambda body: db.scan(body, match_event_handler=on_match, scratch=scratch)


def _timed(fn: Callable[[], object]) -> float:
    gc.collect()
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=10.0, help="session size in MiB of JSON (default 10)")
    ap.add_argument("--rounds", type=int, default=9, help="interleaved rounds; medians are reported (default 9)")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one save (sanitizer included)")
    args = ap.parse_args(argv)
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())} (the floor is measured in the same rounds)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        vault = Vault.init(root / "v", key_provider=PassphraseProvider("bench", log2_n=14))
        sanitizer = vault.parts.settings.sanitizer()
        prefilter: Any = sanitizer._scanner.prefilter
        if sanitizer.engine != "hyperscan":
            sys.exit(f"the floor is Hyperscan's scan: this sanitizer runs on {sanitizer.engine}")
        session = Session.model_validate(make_session(int(args.mb * (1 << 20))))
        doc = session.model_dump(mode="json")  # the document as the vault stores it, outside the timer
        size = len(orjson.dumps(doc))
        (root / "floor").mkdir()
        floor = floor_save(doc, root / "floor", os.urandom(32), _scan_of(prefilter._db, prefilter._scratch))
        _, counts = sanitizer.sanitize_tree(doc)  # warm: regexes compiled, keys seen
        fulltext = vault.parts.fulltext
        vault.save(session)
        floors, saves, indexed, scans = [], [], [], []
        for _ in range(args.rounds):
            floors.append(_timed(floor))
            fulltext.enabled = False
            saves.append(_timed(lambda: vault.save(session)))
            fulltext.enabled = True
            indexed.append(_timed(lambda: vault.save(session)))
            scans.append(_timed(lambda: sanitizer.sanitize_tree(doc)))
        f, s, x, w = (statistics.median(v) * 1000 for v in (floors, saves, indexed, scans))
        xm = statistics.fmean(indexed) * 1000
        print(
            f"session: {size / (1 << 20):.2f} MiB of JSON, {len(doc['messages'])} messages, {sum(counts.values())} redactions; engine {sanitizer.engine}"
        )
        print(f"floor (orjson + hyperscan scan + zstd-3 + AES-GCM + fsynced write) {f:8.1f} ms")
        print(
            f"Vault.save incl. sanitizer, no full-text index                    {s:8.1f} ms  = {s / f:.2f}x the floor"
        )
        print(
            f"Vault.save incl. sanitizer and the full-text index                {x:8.1f} ms  = {x / f:.2f}x the floor"
            f" (mean {xm:.1f} ms = {xm / f:.2f}x)"
        )
        print(
            f"  of which sanitize_tree alone                                    {w:8.1f} ms  = {w / f:.2f}x the floor"
        )
        print(
            f"rounds: {args.rounds}; per round save/floor: {', '.join(f'{a / b:.2f}' for a, b in zip(saves, floors, strict=True))}"
        )
        print(f"  with the index: {', '.join(f'{a / b:.2f}' for a, b in zip(indexed, floors, strict=True))}")
        if args.profile:
            prof = cProfile.Profile()
            prof.runcall(vault.save, session)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        vault.close()


if __name__ == "__main__":
    main()
