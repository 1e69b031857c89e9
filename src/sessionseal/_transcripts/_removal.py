"""Whether an imported original may be removed: checked on the file as it is now, against the
stamp recorded when it was read (docs/importing.md lists the reasons a file is kept).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

from .._compress import scan_stream

#: How long an original must have been left unmodified before it is removed, in seconds.  A
#: Claude Code session does not keep its transcript open between records, so on every platform
#: this is the sign that the agent is done with it rather than between two records: a tool call
#: may run for up to 10 minutes (Claude Code's Bash tool allows 600 s) before its result is
#: written.  Codex keeps its rollout open while it runs (the writer check sees that on Linux).
QUIET_PERIOD: Final = 600

#: Why an imported original is kept (:func:`removable`; docs/importing.md lists them).
KEPT_CHANGED: Final = "changed"
KEPT_INCOMPLETE: Final = "incomplete"
KEPT_RECENT: Final = "recent"
KEPT_WRITING: Final = "open-for-writing"
KEPT_WRITERS_UNKNOWN: Final = "writers-unknown"
KEPT_UNSAFE: Final = "unsafe"


def removable(  # noqa: PLR0911 - one return per reason to keep a file, in the order checked
    path: Path,
    *,
    consumed: int,
    stamp: tuple[int, int] | None,
    quiet_ns: int,
    max_bytes: int = 512 << 20,
    lines: bool = True,
) -> tuple[str, str] | os.stat_result:
    """Whether an imported transcript file may be removed, checked on the file as it is now.

    Its fstat (on a descriptor opened without following a link) must match *stamp*, the
    ``(size, mtime_ns)`` recorded when it was read (None: not recorded, as for sub-agent
    files); every byte of it must have been *consumed*, the last one a newline (for ``.zst``:
    the decompressed stream, which must end with a complete frame; for a Gemini ``.json``
    document: all of it one JSON document); it must not have been
    modified for *quiet_ns*; and, on Linux, no process may have it open for writing.

    *lines* False: a file that is not JSON lines (a Claude Code tool-results file, read whole
    as text): it need not end with a newline, and *stamp* (required) proves it is what was read.

    Returns the fstat to hand to the removal (which refuses a file that differs from it), or
    ``(code, why)``: a stable code (``KEPT_*``) and one line that names no content.

    :raises OSError: it cannot be opened or read (the caller keeps it).
    """
    import time

    from .. import _writers

    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return KEPT_UNSAFE, "it is not a regular file"
        if stamp is not None and (st.st_size, st.st_mtime_ns) != tuple(stamp):
            return KEPT_CHANGED, "it changed since it was imported (the next import takes the rest)"
        if not lines and stamp is None:
            return KEPT_CHANGED, "it is not known how much of it was imported"
        if lines and (kept := _lines_kept(path, fd, st, consumed, max_bytes)) is not None:
            return kept
        age_ns = time.time_ns() - st.st_mtime_ns
        if age_ns < quiet_ns:
            return KEPT_RECENT, f"modified less than {quiet_ns // 10**9} s ago (see --quiet-period)"
        writing = _writers.open_for_writing(fd, st)
        if writing:
            return KEPT_WRITING, "a process has it open for writing"
        if writing is None and _writers.SUPPORTED:
            return KEPT_WRITERS_UNKNOWN, "cannot tell whether a process has it open for writing"
        return st
    finally:
        os.close(fd)


def _lines_kept(path: Path, fd: int, st: os.stat_result, consumed: int, max_bytes: int) -> tuple[str, str] | None:  # noqa: PLR0911 - one return per reason
    """Why a JSON-lines file is not wholly imported, or None: it must end with a complete line
    (for ``.zst``: a complete frame too; a Gemini ``.json`` document must parse whole) and be
    exactly as long as what was *consumed*."""
    if path.name.endswith(".zst"):
        with os.fdopen(os.dup(fd), "rb") as f:
            total, last, whole = scan_stream(f, max_bytes)
        if not whole or last != ord("\n") or total != consumed:
            return KEPT_INCOMPLETE, "it does not end with a complete line and a complete zstd frame"
        return None
    if path.name.endswith(".json"):
        # A Gemini CLI session document is rewritten whole and ends without a newline: it
        # is complete when every byte of it parses as one JSON document.
        if consumed != st.st_size or not _one_json_document(fd, st.st_size, max_bytes):
            return KEPT_INCOMPLETE, "it is not one complete JSON document (the agent may be rewriting it)"
        return None
    ends_a_line = st.st_size > 0 and os.pread(fd, 1, st.st_size - 1) == b"\n"
    if not ends_a_line:
        return KEPT_INCOMPLETE, "its last line is incomplete (the agent may still be writing it)"
    if consumed != st.st_size:  # a sub-agent file (no stamp) that grew or shrank since
        return KEPT_CHANGED, "it is not the size that was imported (the next import takes the rest)"
    return None


def _one_json_document(fd: int, size: int, max_bytes: int) -> bool:
    """Whether the *size* bytes of *fd* are one complete JSON object (read, not trusted from the import)."""
    import json

    if not 0 < size <= max_bytes:
        return False
    chunks, pos = [], 0
    while pos < size and (chunk := os.pread(fd, min(1 << 20, size - pos), pos)):
        chunks.append(chunk)
        pos += len(chunk)
    try:
        return pos == size and isinstance(json.loads(b"".join(chunks)), dict)
    except (ValueError, RecursionError):
        return False
