"""``sessionseal sanitize`` and ``sessionseal scan``: the sanitizer without a vault.

``sanitize`` is a filter (stdin to stdout) with a random per-run fingerprint key, so its
placeholders are consistent within one run and unlinkable across runs.  ``scan`` lists
findings as ``file:line:col rule masked-preview`` (never the value) and exits 1 when it
finds anything, for pre-commit hooks and CI.  Both work on bytes that are not UTF-8: the
undecodable bytes pass through unchanged.

Run directly as ``python -m sessionseal.cli._sanitize_cmds`` for ``sanitize``.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import itertools
import json
import os
import pickle
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, Final

import click

if TYPE_CHECKING:  # imported by the two commands: other commands never load the catalogue
    from sessionseal._sanitize import Sanitizer

__all__ = ["sanitize_command", "scan_command"]

EXIT_FOUND: Final = 1
EXIT_UNREADABLE: Final = 2
_ENCODING: Final = "utf-8"
_ERRORS: Final = "surrogateescape"
#: Inputs at least this large are split across CPU cores (fork-based, POSIX only).
PARALLEL_MIN: Final = 2 << 20
#: Work is done in regions of about this many characters (bounded memory).
_CHUNK: Final = 4 << 20
#: Output is encoded and written in pieces of about this many characters.
_WRITE: Final = 1 << 20
#: Context each region sees beyond its own bounds, so matches near a cut are complete.
_MARGIN: Final = 1 << 16

# (start, end, rule id, placeholder)
_Redaction = tuple[int, int, str, str]
_Emit = Callable[[list[_Redaction], int], None]


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

    Placeholders look like [REDACTED:github-pat:1a2b3c4d]; the fingerprint uses a random
    key for this run only.  Nothing but counts is ever reported.
    """
    from sessionseal._sanitize import Sanitizer

    with _no_cyclic_gc():
        sanitizer = Sanitizer(os.urandom(32), engine=engine)
        data = sys.stdin.buffer.read()
        text = data.decode(_ENCODING, _ERRORS)
        del data
        writer = _Writer(sys.stdout.buffer, text)
        redact_parallel(sanitizer, text, emit=writer.write)
        writer.close()
    if report:
        counts = dict(sorted(writer.counts.items()))
        click.echo(json.dumps({"total": sum(counts.values()), "counts": counts}), err=True)


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic collector: the sanitizer makes no reference cycles, and the collector
    would only re-walk the growing lists of findings (about 15% of a large run)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _Writer:
    """Writes *text* with redactions applied, in order, as they become final."""

    def __init__(self, out: BinaryIO, text: str) -> None:
        self._out = out
        self._text = text
        self._pos = 0
        self.counts: dict[str, int] = {}

    def write(self, redactions: list[_Redaction], upto: int) -> None:
        """Write the text up to *upto* with *redactions* (sorted, all before *upto*) applied."""
        text = self._text
        counts = self.counts
        parts: list[str] = []
        size = 0
        pos = self._pos
        for start, end, rule_id, placeholder in redactions:
            parts.append(text[pos:start])
            parts.append(placeholder)
            size += start - pos
            pos = end
            counts[rule_id] = counts.get(rule_id, 0) + 1
            if size >= _WRITE:
                self._out.write("".join(parts).encode(_ENCODING, _ERRORS))
                parts.clear()
                size = 0
        parts.append(text[pos:upto])
        self._out.write("".join(parts).encode(_ENCODING, _ERRORS))
        self._pos = max(pos, upto)

    def close(self) -> None:
        self.write([], len(self._text))
        self._out.flush()


def _cut_points(text: str, a: int, b: int, size: int) -> list[int]:
    """Boundaries of regions of about *size* characters in ``text[a:b]``, at line starts."""
    cuts = [a]
    while b - cuts[-1] > size:
        nl = text.find("\n", cuts[-1] + size, b)
        if nl < 0:
            break
        cuts.append(nl + 1)
    cuts.append(b)
    return cuts


def _redact_range(sanitizer: Sanitizer, text: str, a: int, b: int) -> list[_Redaction]:
    """Findings (with their placeholders) that start in ``text[a:b]``, region by region."""
    out: list[_Redaction] = []
    cuts = _cut_points(text, a, b, _CHUNK)
    n = len(text)
    for lo_cut, hi_cut in itertools.pairwise(cuts):
        lo = max(0, lo_cut - _MARGIN)
        hi = min(n, hi_cut + _MARGIN)
        chunk = text[lo:hi] if (lo, hi) != (0, n) else text
        for f in sanitizer.find(chunk):
            s = f.start + lo
            if lo_cut <= s < hi_cut:
                e = f.end + lo
                out.append((s, e, f.rule_id, sanitizer.placeholder(f.rule_id, text[s:e])))
    return _merge(sanitizer, out)


def _merge(sanitizer: Sanitizer, found: list[_Redaction]) -> list[_Redaction]:
    """Resolve overlaps between findings of neighbouring regions (rare: only near a cut)."""
    found.sort()
    out: list[_Redaction] = []
    for f in found:
        if out and f[0] < out[-1][1]:
            prev = out[-1]
            if (sanitizer.priority(f[2]), f[0] - f[1]) < (sanitizer.priority(prev[2]), prev[0] - prev[1]):
                out[-1] = f
            continue
        out.append(f)
    return out


def redact_parallel(
    sanitizer: Sanitizer, text: str, workers: int | None = None, emit: _Emit | None = None
) -> list[_Redaction]:
    """Every finding of *text* with its placeholder, sorted and non-overlapping.

    Large inputs are cut at line starts into regions; each region is scanned with a
    margin of context on both sides and keeps the findings that start inside it.  With
    ``os.fork`` and more than one CPU the regions are shared among forked workers, which
    also compute the placeholders; the parent merges.  Small inputs take one ``find``.

    With *emit*, findings are also passed on in order as they become final, as
    ``emit(findings, upto)``: every finding before ``upto`` is in the call, and the text
    before ``upto`` can be written.  The parent's own region (the first) is emitted while
    the workers finish theirs.
    """
    n = (
        workers
        if workers is not None
        else min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1), 8)
    )
    # fork() only from a single-threaded process: a lock held by another thread would deadlock the child.
    if n < 2 or len(text) < PARALLEL_MIN or not hasattr(os, "fork") or threading.active_count() > 1:
        found = _redact_range(sanitizer, text, 0, len(text))
        if emit is not None:
            emit(found, len(text))
        return found
    cuts = _cut_points(text, 0, len(text), -(-len(text) // n))
    # Objects that exist now are left alone by the collector in the children (fewer
    # copy-on-write page faults); undone below for the parent.
    gc.freeze()
    children: list[tuple[int, int]] = []
    try:
        for a, b in itertools.pairwise(cuts[1:]):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                os.close(r)
                code = 1
                try:
                    payload = pickle.dumps(_redact_range(sanitizer, text, a, b), protocol=pickle.HIGHEST_PROTOCOL)
                    with os.fdopen(w, "wb") as fh:
                        fh.write(payload)
                    code = 0
                finally:
                    os._exit(code)
            os.close(w)
            children.append((pid, r))
    finally:
        gc.unfreeze()
    found = _redact_range(sanitizer, text, cuts[0], cuts[1])
    emitted: list[_Redaction] = []
    if emit is not None:
        # Findings of the first region that end before the next region starts are final:
        # only one that crosses the cut can lose to a finding of the next region.
        done = 0
        while done < len(found) and found[done][1] <= cuts[1]:
            done += 1
        upto = found[done][0] if done < len(found) else cuts[1]
        emitted, found = found[:done], found[done:]
        emit(emitted, upto)
    for pid, r in children:
        with os.fdopen(r, "rb") as fh:
            raw = fh.read()
        _, status = os.waitpid(pid, 0)
        if status != 0:
            raise RuntimeError("a sanitizer worker failed")
        found.extend(pickle.loads(raw))  # noqa: S301 - our own child's output
    rest = _merge(sanitizer, found)
    if emit is not None:
        emit(rest, len(text))
    return emitted + rest


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
            click.echo(f"sessionseal: error: cannot read {name}: {exc.strerror or exc}", err=True)
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
            click.echo(f"{item['file']}:{item['line']}:{item['column']} {item['rule']} {item['preview']}")
    if unreadable:
        sys.exit(EXIT_UNREADABLE)
    sys.exit(EXIT_FOUND if findings else 0)


if __name__ == "__main__":
    sanitize_command()
