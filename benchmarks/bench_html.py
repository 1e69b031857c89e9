#!/usr/bin/env python3
"""``export --format html`` against ``show --json`` and ``export --format json`` in the same run
(issue 25), and ``audit report`` against ``audit show --json``.

Builds a vault (passphrase provider, scrypt 2^14) with one large session of about ``--mb`` MB
(agent turns with thinking, tool calls and results) and ``--sessions`` small ones, then
measures, median of ``--repeat``:

* ``load_json (large)``: ``Vault.load_json`` (what ``show --json`` runs): decrypt and decompress;
* ``export json (large)`` and ``export html (large)``: the same, rendered, returned as bytes;
* ``export html --all``: every session, a directory with an index page (written to a temp dir);
* ``audit_entries`` and ``audit report html/json``: the log read and checked, then the report.

    python benchmarks/bench_html.py [--mb 10] [--sessions 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_vault import median_ms

from sessionseal import PassphraseProvider, Vault, audit_report

PASSPHRASE = "bench"  # noqa: S105  (a throwaway vault in a temp dir)


def large(mb: float) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    output = "PASSED tests/test_parser.py::test_case <ok> & done\n" * 40  # about 2 KB
    k = total = 0
    while total < mb * 1_000_000:
        k += 1
        start = len(messages)
        messages.append({"role": "user", "content": f"step {k}: make the parser accept <tags> & quotes"})
        messages.append(
            {
                "role": "assistant",
                "model": "model-large",
                "usage": {"input_tokens": 900, "output_tokens": 300, "cache_read_tokens": 12000},
                "cost_usd": 0.0125,
                "content": [
                    {"type": "thinking", "text": "Look at the tokenizer first; " * 20},
                    {"type": "text", "text": "Running the tests now."},
                    {"type": "tool_call", "id": f"c{k}", "name": "bash", "arguments": {"cmd": "pytest -x -q"}},
                ],
            }
        )
        messages.append(
            {"role": "tool", "content": [{"type": "tool_result", "tool_call_id": f"c{k}", "content": output}]}
        )
        total += len(json.dumps(messages[start:]))
    return {"title": "a long session", "messages": messages}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=10)
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-html-"))
    try:
        with Vault.init(tmp / "vault", key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
            t = time.perf_counter()
            big = v.save(large(args.mb))
            for i in range(args.sessions):
                v.save({"title": f"small {i}", "messages": [{"role": "user", "content": f"hello {i}"}]})
            size = len(v.load_json(big))
            print(
                f"built in {time.perf_counter() - t:.1f} s; the large session is {size / 1e6:.1f} MB of JSON",
                file=sys.stderr,
            )
            n = [0]

            def export_all() -> None:
                n[0] += 1
                v.export(None, format="html", plaintext=True, out=tmp / f"site{n[0]}")

            rows = [
                ("load_json (large, show --json)", lambda: v.load_json(big)),
                ("export json (large)", lambda: v.export([big], format="json", plaintext=True)),
                ("export html (large)", lambda: v.export([big], format="html", plaintext=True)),
                (f"export html --all ({args.sessions + 1} sessions)", export_all),
                ("audit_entries (audit show --json)", v.audit_entries),
                ("audit report html", lambda: audit_report(v, format="html")),
                ("audit report json", lambda: audit_report(v, format="json")),
            ]
            results = [(name, median_ms(fn, args.repeat)) for name, fn in rows]
            page = v.export([big], format="html", plaintext=True).data or b""
        print(f"median of {args.repeat}; the large session's page is {len(page) / 1e6:.1f} MB:")
        for name, ms in results:
            print(f"  {name:<42} {ms:9.1f} ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
