"""``sessionseal sanitize`` and ``sessionseal scan``: the sanitizer without a vault.

``sanitize`` is a filter (stdin to stdout) with a random per-run fingerprint key, so its
token placeholders are consistent within one run and unlinkable across runs.  ``scan`` lists
findings as ``file:line:col rule masked-preview`` (never the value) and exits 1 when it
finds anything, for pre-commit hooks and CI.  Both work on bytes that are not UTF-8: the
undecodable bytes pass through unchanged.

Run directly as ``python -m sessionseal.cli._sanitize_cmds`` for ``sanitize``.
"""

from __future__ import annotations

import bisect
import json
import os
import sys
from typing import Any, Final

import click

__all__ = ["sanitize_command", "scan_command"]

EXIT_FOUND: Final = 1
EXIT_UNREADABLE: Final = 2
_ENCODING: Final = "utf-8"
_ERRORS: Final = "surrogateescape"


_ENGINE_OPTION = click.option(
    "--engine",
    type=click.Choice(["hyperscan", "ahocorasick", "python"]),
    default=None,
    help="Prefilter engine [default: $SESSIONSEAL_SANITIZER_ENGINE, else the fastest installed].",
)


@click.command("sanitize", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--report", is_flag=True, help="Write per-rule redaction counts as JSON to stderr.")
@_ENGINE_OPTION
def sanitize_command(report: bool, engine: str | None) -> None:
    """Read text on stdin, write it with every secret replaced on stdout.

    Placeholders look like [REDACTED:github-pat:1a2b3c4d] for tokens (the fingerprint uses
    a random key for this run only) and [REDACTED:password-in-prose] for passwords and
    other values a person may have chosen.  Nothing but counts is ever reported.
    """
    from sessionseal._sanitize._filter import run_filter

    run_filter(report=report, engine=engine)


def _line_starts(text: str) -> list[int]:
    starts = [0]
    pos = text.find("\n")
    while pos >= 0:
        starts.append(pos + 1)
        pos = text.find("\n", pos + 1)
    return starts


@click.command("scan", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="Print findings as a JSON array.")
@_ENGINE_OPTION
def scan_command(files: tuple[str, ...], as_json: bool, engine: str | None) -> None:
    """List secrets in FILE... without changing anything.

    One line per finding: FILE:LINE:COL RULE PREVIEW, where the preview shows at most the
    first 4 characters.  Exit status: 0 nothing found, 1 secrets found, 2 a file could
    not be read.
    """
    from sessionseal._sanitize import Sanitizer, mask_preview

    from ._terminal import say, shown

    sanitizer = Sanitizer(os.urandom(32), engine=engine)
    findings: list[dict[str, Any]] = []
    unreadable = False
    for name in files:
        try:
            if name == "-":
                raw = sys.stdin.buffer.read()
            else:
                with open(name, "rb") as fh:
                    raw = fh.read()
        except OSError as exc:
            say(f"sessionseal: error: cannot read {name}: {exc.strerror or exc}")
            unreadable = True
            continue
        text = raw.decode(_ENCODING, _ERRORS)
        starts: list[int] | None = None
        for f in sanitizer.find(text):
            if starts is None:
                starts = _line_starts(text)
            line = bisect.bisect_right(starts, f.start)
            col = f.start - starts[line - 1] + 1
            preview = mask_preview(text[f.start : f.end])
            findings.append({"file": name, "line": line, "column": col, "rule": f.rule_id, "preview": preview})
    if as_json:
        click.echo(json.dumps(findings, indent=2))
    else:
        for item in findings:
            click.echo(shown(f"{item['file']}:{item['line']}:{item['column']} {item['rule']} {item['preview']}"))
    if unreadable:
        sys.exit(EXIT_UNREADABLE)
    sys.exit(EXIT_FOUND if findings else 0)


if __name__ == "__main__":
    sanitize_command()
