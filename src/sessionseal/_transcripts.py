"""Claude Code and Codex CLI transcripts, parsed into sessionseal session documents.

Both tools keep each session as a JSON-lines file that they append to while the agent runs
(docs/importing.md says where).  Neither format is documented as stable, so this module is
written to lose nothing and to fail on nothing:

* every line is one record; a line that is not a JSON object is skipped with a warning that
  names its number, never its content (a transcript is full of secrets until the vault has
  sanitized it);
* records this module does not map are kept verbatim as ``raw_events`` and counted in
  :attr:`Transcript.unknown`, so what a newer tool writes survives an import;
* a last line without its newline is still being written: it is neither parsed nor counted
  in :attr:`Transcript.consumed`, so the next import reads it whole (and the file is not
  removed, :func:`removable`).

It is pure: bytes in, dicts out (the vault validates, sanitizes and stores them).  Secrets
are passed through verbatim: redacting here would hide them from the sanitizer's count and
rules, which are the one place that decides what a secret is.
"""

from __future__ import annotations

import functools
import heapq
import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from ._compress import decompress_head, decompress_stream, scan_stream
from .errors import InvalidInput, StorageError

__all__ = [
    "QUIET_PERIOD",
    "Transcript",
    "find_claude",
    "find_codex",
    "identify",
    "parse_claude",
    "parse_codex",
    "read_transcript",
    "removable",
]

Json = dict[str, Any]

CLAUDE: Final = "claude-code"
CODEX: Final = "codex"
#: A title taken from a message is its first line, cut to this many characters.
_TITLE_MAX: Final = 80
#: Records nested deeper are skipped: the vault's serializer (orjson) stops at 255 levels,
#: a record is stored a few levels down, and no real record comes near this.
_MAX_DEPTH: Final = 100
#: Ints outside this range are kept as strings: orjson refuses them, and a token count
#: this large is noise anyway.
_INT_RANGE: Final = range(-(1 << 63), 1 << 63)
#: Token counts above this are noise (a corrupt record), not usage: they count as 0.
_MAX_TOKENS: Final = 1 << 40
#: How much of an older-layout ``agent-*.jsonl`` is read to learn which session it serves.
_PEEK: Final = 1 << 20
#: The block types of sessionseal's model: a foreign block with one of these names but
#: another shape would fail validation, so it is renamed (``raw:<type>``).
_OUR_BLOCKS: Final = frozenset({"text", "thinking", "tool_call", "tool_result"})
#: ISO 8601 as both tools write it, and as pydantic reads it (``fromisoformat`` alone
#: accepts forms such as week dates that the model then refuses).
_TIMESTAMP: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
)
#: The first line of the plain-text output of Codex's newer shell tools.
_EXIT_CODE: Final = re.compile(r"Exit code: (-?[0-9]{1,9})")
#: User text that Claude Code writes itself (slash commands, hook and shell echoes, notices).
_CLAUDE_BOILERPLATE: Final = (
    "<command-name>",
    "<command-message>",
    "<command-args>",
    "<local-command-stdout>",
    "<local-command-stderr>",
    "<system-reminder>",
    "<bash-input>",
    "<bash-stdout>",
    "<bash-stderr>",
    "<user-prompt-submit-hook>",
    "<ide_opened_file>",
    "<ide_selection>",
    "Caveat: ",
    "[Request interrupted",
)
#: User messages that Codex writes itself: environment, AGENTS.md and user instructions.
_CODEX_BOILERPLATE: Final = (
    "<environment_context>",
    "<user_instructions>",
    "# AGENTS.md instructions",
    "<INSTRUCTIONS>",
    "<permissions instructions>",
    "<user_shell_command>",
    "<turn_aborted>",
)
#: The record types of the Codex rollout envelope ``{"timestamp", "type", "payload"}``.
_CODEX_ENVELOPES: Final = frozenset({"session_meta", "turn_context", "response_item", "event_msg", "compacted"})
#: Bare response items of the legacy rollout format (no envelope).
_CODEX_LEGACY_ITEMS: Final = frozenset(
    {"message", "reasoning", "function_call", "function_call_output", "local_shell_call", "custom_tool_call"}
)
_CLAUDE_KINDS: Final = frozenset({"user", "assistant", "summary", "system", "file-history-snapshot", "queue-operation"})
#: Claude Code's model name for messages it makes up itself (errors, "no response requested").
_SYNTHETIC_MODEL: Final = "<synthetic>"
_NO_TIME: Final = datetime.min.replace(tzinfo=UTC)


@dataclass
class Transcript:
    """One transcript file, parsed: the session document and what reading it found."""

    #: ``claude-code`` or ``codex``.
    tool: str
    #: The tool's own session id (Claude ``sessionId``, Codex ``session_meta`` id; else the file stem).
    source_id: str
    path: Path
    #: A session document (validates as :class:`sessionseal.models.Session`).
    document: dict[str, Any]
    #: Record types kept as raw events, with counts.
    unknown: dict[str, int] = field(default_factory=dict)
    #: Complete lines of the main file consumed (sub-agent files are counted in ``document["source"]``).
    records: int = 0
    #: Bytes of complete lines consumed: where the next read of a growing file starts.
    consumed: int = 0
    #: What was skipped, by line number; never a line's content.
    warnings: list[str] = field(default_factory=list)
    #: The main file's fstat, taken on the descriptor read before reading it: what was read is
    #: the file as this says (its size, its time), the stamp an import records.
    stat: os.stat_result | None = None


# -- finding and reading files -----------------------------------------------------------


def find_claude(root: Path) -> list[Path]:
    """Every Claude Code main-session ``*.jsonl`` under *root* (a ``projects`` directory, or
    ``~/.claude`` itself), sorted.

    Sub-agent files (``agent-*.jsonl``, anything under ``subagents/``) are not listed: they
    are read with their main session by :func:`read_transcript`.
    """
    base = root / "projects" if (root / "projects").is_dir() else root
    return [
        p
        for p in _walk(base)
        if p.name.endswith(".jsonl")
        and not p.name.startswith("agent-")
        and "subagents" not in p.relative_to(base).parts
    ]


def find_codex(root: Path) -> list[Path]:
    """Every Codex rollout (``*.jsonl`` and ``*.jsonl.zst``) under *root* (a ``sessions``
    directory, or ``~/.codex`` itself), sorted."""
    base = root / "sessions" if (root / "sessions").is_dir() else root
    return [p for p in _walk(base) if p.name.endswith((".jsonl", ".jsonl.zst"))]


def _walk(base: Path) -> list[Path]:
    # os.walk does not follow symlinked directories: a link loop cannot hang a scan.
    found: list[Path] = []
    for top, _dirs, files in os.walk(base):
        found += [p for name in files if (p := Path(top, name)).is_file()]
    return sorted(found)


def read_transcript(path: Path, *, max_bytes: int = 512 << 20) -> Transcript:
    """Read and parse one transcript file, Claude Code or Codex (told apart by name and content).

    A ``.zst`` file is decompressed first.  A Claude Code main session brings its sub-agent
    files along (``<session>/subagents/agent-*.jsonl``, and older ``agent-*.jsonl`` beside it
    whose records name this session); their paths are in ``document["source"]["sidechain_paths"]``.

    :raises InvalidInput: missing, larger than *max_bytes* (decompressed), or not a transcript.
    :raises StorageError: the file system refused the read.
    """
    path = Path(path)
    data, st = _read(path, max_bytes)
    if _looks_like_codex(path, data):
        transcript = parse_codex(path, data)
    else:
        sidechains, paths, notes = _claude_sidechains(path, data, max_bytes)
        transcript = parse_claude(path, data, sidechains)
        transcript.document["source"]["sidechain_paths"] = [str(p) for p in paths]
        transcript.warnings += notes
    transcript.stat = st
    return transcript


def identify(path: Path, *, head: int = 1 << 18) -> tuple[str, str]:
    """The tool and the tool's session id of a transcript, from its first records only: an
    import looks here first, and skips a file it already holds unchanged without parsing it.

    The head is parsed by the same parsers, so the id is the one a full read gives (it comes
    from the first records of both formats).

    :raises InvalidInput: the head holds no complete record.
    :raises StorageError: the file system refused the read.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            if path.name.endswith(".zst"):
                try:
                    data = decompress_head(f, head)
                except InvalidInput as exc:
                    raise InvalidInput(f"{path}: {exc}") from None
            else:
                data = f.read(head)
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such transcript file") from None
    except OSError as exc:
        raise StorageError(f"{path}: cannot read it ({exc.strerror})") from None
    data = data[: data.rfind(b"\n") + 1]  # whole lines only
    t = parse_codex(path, data) if _looks_like_codex(path, data) else parse_claude(path, data)
    return t.tool, t.source_id


def _read(path: Path, max_bytes: int) -> tuple[bytes, os.stat_result]:
    """The bytes of a file (decompressed, for ``.zst``) and its fstat taken before reading.

    A regular file is read up to the size that fstat gave, not past it: what an agent appends
    meanwhile is left for the next import, and the stamp describes exactly what was read.
    """
    try:
        with path.open("rb") as f:
            st = os.fstat(f.fileno())
            if path.name.endswith(".zst"):
                try:
                    return decompress_stream(f, max_bytes), st
                except InvalidInput as exc:
                    raise InvalidInput(f"{path}: {exc}") from None
            regular = stat.S_ISREG(st.st_mode)
            data = f.read(min(st.st_size, max_bytes + 1) if regular else max_bytes + 1)
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such transcript file") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path}: is a directory, not a transcript file") from None
    except OSError as exc:
        raise StorageError(f"{path}: cannot read it ({exc.strerror})") from None
    if len(data) > max_bytes:
        raise InvalidInput(f"{path}: larger than {max_bytes} bytes; not read")
    return data, st


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
) -> tuple[str, str] | os.stat_result:
    """Whether an imported transcript file may be removed, checked on the file as it is now.

    Its fstat (on a descriptor opened without following a link) must match *stamp*, the
    ``(size, mtime_ns)`` recorded when it was read (None: not recorded, as for sub-agent
    files); every byte of it must have been *consumed*, the last one a newline (for ``.zst``:
    the decompressed stream, which must end with a complete frame); it must not have been
    modified for *quiet_ns*; and, on Linux, no process may have it open for writing.

    Returns the fstat to hand to the removal (which refuses a file that differs from it), or
    ``(code, why)``: a stable code (``KEPT_*``) and one line that names no content.

    :raises OSError: it cannot be opened or read (the caller keeps it).
    """
    import time

    from . import _writers

    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return KEPT_UNSAFE, "it is not a regular file"
        if stamp is not None and (st.st_size, st.st_mtime_ns) != tuple(stamp):
            return KEPT_CHANGED, "it changed since it was imported (the next import takes the rest)"
        if path.name.endswith(".zst"):
            with os.fdopen(os.dup(fd), "rb") as f:
                total, last, whole = scan_stream(f, max_bytes)
            if not whole or last != ord("\n") or total != consumed:
                return KEPT_INCOMPLETE, "it does not end with a complete line and a complete zstd frame"
        else:
            ends_a_line = st.st_size > 0 and os.pread(fd, 1, st.st_size - 1) == b"\n"
            if not ends_a_line:
                return KEPT_INCOMPLETE, "its last line is incomplete (the agent may still be writing it)"
            if consumed != st.st_size:  # a sub-agent file (no stamp) that grew or shrank since
                return KEPT_CHANGED, "it is not the size that was imported (the next import takes the rest)"
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


def _looks_like_codex(path: Path, data: bytes) -> bool:
    """Codex by its file name, else by the first records that only one of the tools writes."""
    if path.name.startswith("rollout-") or path.name.endswith(".zst"):
        return True
    for obj in _first_objects(data, 50):
        kind = obj.get("type")
        if kind in _CODEX_ENVELOPES or "record_type" in obj or kind in _CODEX_LEGACY_ITEMS:
            return True
        if kind in _CLAUDE_KINDS or "sessionId" in obj:
            return False
        if kind is None and "id" in obj and "instructions" in obj:
            return True  # the bare session meta that opens a legacy rollout
    return ".codex" in path.parts


def _first_objects(data: bytes, limit: int) -> Iterator[Json]:
    # Walks lines with find(): splitting would copy the whole (possibly huge) rest.
    pos = 0
    for _ in range(limit):
        end = data.find(b"\n", pos)
        if end < 0:
            return
        obj = _decode(data[pos:end])
        pos = end + 1
        if isinstance(obj, dict):
            yield obj


def _claude_sidechains(path: Path, data: bytes, max_bytes: int) -> tuple[dict[str, bytes], list[Path], list[str]]:
    """The sub-agent files of a main session, both layouts, keyed by agent id."""
    found: dict[str, Path] = {}
    if path.name.startswith("agent-"):
        return {}, [], []  # a sub-agent file read on its own has no sub-agents
    newer = path.parent / path.name.removesuffix(".jsonl") / "subagents"
    if newer.is_dir():
        found.update((_agent_id(p), p) for p in sorted(newer.glob("agent-*.jsonl")) if p.is_file())
    # Older layout: agent files sit beside every main session of the project; each record
    # names its parent session, so only those naming this one are taken.
    ours = {path.name.removesuffix(".jsonl")}
    ours.update(s for obj in _first_objects(data, 20) if isinstance(s := obj.get("sessionId"), str))
    for p in sorted(path.parent.glob("agent-*.jsonl")):
        if _agent_id(p) not in found and p.is_file() and _peek_session(p) in ours:
            found[_agent_id(p)] = p
    blobs: dict[str, bytes] = {}
    notes: list[str] = []
    for agent, p in found.items():
        try:
            blobs[agent] = _read(p, max_bytes)[0]
        except (InvalidInput, StorageError) as exc:
            notes.append(f"sidechain {agent} was not read: {exc}")
    return blobs, [found[a] for a in blobs], notes


def _agent_id(path: Path) -> str:
    return path.name.removeprefix("agent-").removesuffix(".jsonl")


def _peek_session(path: Path) -> str | None:
    """The session an older-layout agent file serves, from its first records."""
    try:
        st = path.stat()
    except OSError:
        return None
    # Every main session of a project asks about every agent file beside it: an import of
    # the project would read each file once per session without the cache.
    return _session_of(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=4096)
def _session_of(path: str, _mtime_ns: int, _size: int) -> str | None:
    head = b""
    try:
        with open(path, "rb") as f:
            # The first line is the sub-agent's prompt: usually small, read until it ends.
            while b"\n" not in head and len(head) < _PEEK and (chunk := f.read(1 << 16)):
                head += chunk
    except OSError:
        return None
    for obj in _first_objects(head, 20):
        if isinstance(sid := obj.get("sessionId"), str):
            return sid
    return None


# -- lines and values ---------------------------------------------------------------------


@dataclass
class _Lines:
    """The JSON objects of one file, by line number, and what reading them found."""

    objects: list[tuple[int, Json]] = field(default_factory=list)
    records: int = 0
    consumed: int = 0
    warnings: list[str] = field(default_factory=list)


def _lines(data: bytes, where: str = "") -> _Lines:
    out = _Lines()
    pos = n = 0
    while (end := data.find(b"\n", pos)) >= 0:
        n += 1
        line = data[pos:end]
        pos = end + 1
        if not line.strip():
            continue
        obj = _decode(line)
        if isinstance(obj, dict):
            out.objects.append((n, obj))
        else:
            why = obj.reason if isinstance(obj, _Refused) else "is not a JSON object"
            out.warnings.append(f"{where}line {n} {why}")
    out.records, out.consumed = n, pos
    if data[pos:].strip():
        out.warnings.append(f"{where}line {n + 1} is incomplete (no newline yet); left for the next read")
    return out


@dataclass(frozen=True)
class _Refused:
    """A line or string that did not decode, and why (None is valid JSON: it cannot say so)."""

    reason: str


_BAD: Final = _Refused("is not JSON")
_DEEP: Final = _Refused("is nested too deeply")


def _decode(raw: bytes | str) -> Any:
    """One JSON value, repaired for storage (:func:`_repair`), or a :class:`_Refused`."""
    try:
        # Both tools write UTF-8; a line that is not is not one of theirs.
        text = raw.decode() if isinstance(raw, bytes) else raw
        value = _DECODER.decode(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return _BAD
    # Cheap bounds first: nesting needs brackets, a lone surrogate needs its escape.
    if text.count("{") + text.count("[") >= _MAX_DEPTH and _too_deep(value):
        return _DEEP
    return _repair(value) if "\\ud" in text or "\\uD" in text else value


def _int(digits: str) -> int | str:
    """A JSON integer; past 64 bits it is kept as its digits, which the vault's serializer
    (orjson) can store and the number cannot."""
    value = int(digits)
    return value if value in _INT_RANGE else digits


#: One decoder for every line (``json.loads`` with a hook builds a new one per call).
_DECODER: Final = json.JSONDecoder(parse_int=_int)


def _too_deep(value: Any) -> bool:
    # Iterative: the point is to refuse what would overflow a recursive walk.
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > _MAX_DEPTH:
            return True
        if isinstance(v, dict):
            stack += [(x, depth + 1) for x in v.values()]
        elif isinstance(v, list):
            stack += [(x, depth + 1) for x in v]
    return False


def _repair(value: Any) -> Any:
    """Make a decoded value storable: a lone surrogate (a JSON escape of half an emoji, as a
    tool cutting a string may write) is legal JSON that the vault's serializer refuses; it
    becomes U+FFFD (a whole pair was joined by the parser and survives)."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_repair(v) for v in value]
    if isinstance(value, dict):
        return {_repair(k): _repair(v) for k, v in value.items()}
    return value


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _text(value: Any) -> str:
    """Text for a field that should hold text: non-strings are kept as their JSON."""
    if isinstance(value, str):
        return value
    return "" if value is None else json.dumps(value, ensure_ascii=False)


def _tokens(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_TOKENS:
        return 0
    return value


def _instant(value: Any) -> datetime | None:
    """*value* as an aware UTC datetime when it is an ISO 8601 time the model accepts."""
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        return None
    try:
        t = datetime.fromisoformat(value)
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    except (ValueError, OverflowError):  # 31 February; year 1 with a positive offset
        return None


def _title_line(text: str) -> str:
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    return line if len(line) <= _TITLE_MAX else line[: _TITLE_MAX - 1] + "…"


def _message(mid: Any, role: str, content: list[Json], ts: str | None, **extra: Any) -> Json:
    return {
        "id": _str(mid),
        "role": role,
        "content": content,
        "timestamp": ts,
        "model": extra.pop("model", None),
        "usage": extra.pop("usage", None),
        **extra,
    }


def _usage(input_tokens: Any, output_tokens: Any, cache_read: Any, cache_write: Any) -> Json:
    return {
        "input_tokens": _tokens(input_tokens),
        "output_tokens": _tokens(output_tokens),
        "cache_read_tokens": _tokens(cache_read),
        "cache_write_tokens": _tokens(cache_write),
    }


def _other_block(block: Json) -> Json:
    """A block kept as it is, but for inline data (base64 images): replaced by its length."""
    kind = block.get("type")
    kind = kind if isinstance(kind, str) and kind else "unknown"
    if kind in _OUR_BLOCKS:
        kind = f"raw:{kind}"
    return {"type": kind, **{k: _slim(k, v) for k, v in block.items() if k != "type"}}


def _slim(key: str, value: Any) -> Any:
    if isinstance(value, str) and (key == "data" or (key == "image_url" and value.startswith("data:"))):
        return len(value)
    if isinstance(value, dict):
        return {k: _slim(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_slim("", v) for v in value]
    return value


def _arguments(value: Any) -> Any:
    """Tool arguments as the model wrote them: JSON when they parse as an object or array."""
    if isinstance(value, str):
        parsed = _decode(value) if value.lstrip()[:1] in ("{", "[") else None
        return parsed if isinstance(parsed, dict | list) else value
    if value is None or isinstance(value, dict | list):
        return value
    return _text(value)


# -- the document both formats map to -------------------------------------------------------


class _Doc:
    """What both formats are mapped into: raw events, times, models, tool calls, the title."""

    def __init__(self, tool: str) -> None:
        self.tool = tool
        self.raw: list[Json] = []
        self.unknown: dict[str, int] = {}
        self.first: tuple[datetime, str] | None = None
        self.last: tuple[datetime, str] | None = None
        self.models: list[str] = []
        self.model: str | None = None
        self.starts: dict[str, str | None] = {}
        self.results: dict[str, tuple[str | None, bool]] = {}
        self.first_text: str | None = None

    def when(self, value: Any) -> str | None:
        """*value* if it is a usable timestamp (the session's first and last are tracked)."""
        t = _instant(value)
        if t is None:
            return None
        assert isinstance(value, str)
        if self.first is None or t < self.first[0]:
            self.first = (t, value)
        if self.last is None or t >= self.last[0]:
            self.last = (t, value)
        return value

    def keep(self, kind: str, line: int, record: Json, sidechain: str | None = None) -> None:
        """Keep a record that is not mapped, verbatim, and count it."""
        self.unknown[kind] = self.unknown.get(kind, 0) + 1
        event: Json = {"line": line, "record": record}
        if sidechain is not None:
            event["sidechain"] = sidechain
        self.raw.append(event)

    def use_model(self, value: Any) -> str | None:
        model = _str(value) or None
        if model is not None and model != _SYNTHETIC_MODEL:
            self.model = model
            if model not in self.models:
                self.models.append(model)
        return model

    def started(self, call_id: str | None, ts: str | None) -> None:
        if call_id is not None:
            self.starts.setdefault(call_id, ts)

    def finished(self, call_id: str | None, ts: str | None, is_error: bool) -> None:
        if call_id is not None:
            self.results[call_id] = (ts, is_error)

    def offer_title(self, text: str, boilerplate: tuple[str, ...]) -> bool:
        """Take *text* as the first real user text unless one was taken or it is boilerplate."""
        if self.first_text is not None or text.lstrip().startswith(boilerplate):
            return False
        line = _title_line(text)
        if line:
            self.first_text = line
        return bool(line)

    def document(self, messages: list[Json], *, title: str | None, config: Json, source: Json, **more: Any) -> Json:
        usages = [m["usage"] for m in messages if isinstance(m.get("usage"), dict)]
        stats: Json = {"message_count": len(messages)}
        stats.update((k, sum(u[k] for u in usages)) for k in ("input_tokens", "output_tokens"))
        # Not fields of SessionStats (kept as extras): what the input counts above leave out.
        stats.update((k, sum(u[k] for u in usages)) for k in ("cache_read_tokens", "cache_write_tokens"))
        doc: Json = {"title": title or self.first_text or "", "tags": [self.tool]}
        if self.first is not None and self.last is not None:
            doc["created_at"], doc["updated_at"] = self.first[1], self.last[1]
            stats["duration_seconds"] = (self.last[0] - self.first[0]).total_seconds()
        doc.update({k: v for k, v in more.items() if v is not None})
        model, models = self._models(messages)
        extra = {"model": model, "models": models or None, **config, "source_tool": self.tool}
        doc.update(
            messages=messages,
            tool_history=self._tool_history(messages),
            stats=stats,
            config={k: v for k, v in extra.items() if v is not None},
            raw_events=self.raw,
            source=source,
        )
        return doc

    def _models(self, messages: list[Json]) -> tuple[str | None, list[str]]:
        """The main conversation's last model, and every model in order of first answer
        (sub-agents included); models named by a turn that never answered come last."""
        model, models = self.model, []
        for m in messages:
            name = m.get("model")
            if isinstance(name, str) and name != _SYNTHETIC_MODEL:
                models.append(name)
                model = name if "sidechain" not in m else model
        return model, list(dict.fromkeys([*models, *self.models]))

    def _tool_history(self, messages: list[Json]) -> list[Json]:
        """One entry per tool call, in conversation order, paired with its result by id."""
        out: list[Json] = []
        for m in messages:
            for block in m["content"]:
                if block.get("type") != "tool_call":
                    continue
                cid = block.get("id")
                started = self.starts.get(cid, m.get("timestamp")) if cid is not None else m.get("timestamp")
                finished, status = None, None
                if cid is not None and cid in self.results:
                    finished, error = self.results[cid]
                    status = "error" if error else "ok"
                elif (own := block.get("status")) in ("completed", "failed"):
                    # A call without an output item (a web search) reports its own outcome.
                    status = "error" if own == "failed" else "ok"
                entry: Json = {
                    "tool": block["name"],
                    "call_id": cid,
                    "started_at": started,
                    "finished_at": finished,
                    "status": status,
                }
                t0, t1 = _instant(started), _instant(finished)
                if t0 is not None and t1 is not None and t1 >= t0:
                    entry["duration_ms"] = (t1 - t0).total_seconds() * 1000
                out.append(entry)
        return out


def _interleave(streams: list[list[Json]]) -> list[Json]:
    """Merge the main conversation and sub-agent conversations by time.

    Each file keeps its own order (a message without a time stays after its predecessor);
    on equal times the main conversation comes first.
    """
    if len(streams) == 1:
        return streams[0]
    keyed: list[list[tuple[datetime, int, Json]]] = []
    for i, stream in enumerate(streams):
        items, last = [], _NO_TIME
        for m in stream:
            last = _instant(m.get("timestamp")) or last
            items.append((last, i, m))
        keyed.append(items)
    return [m for _, _, m in heapq.merge(*keyed, key=lambda item: (item[0], item[1]))]


def _no_records(path: Path, tool: str) -> InvalidInput:
    return InvalidInput(f"{path}: not a {tool} transcript (no complete line is a JSON object)")


# -- Claude Code ---------------------------------------------------------------------------------


class _ClaudeMeta:
    """Session-wide facts of a Claude Code main file: id, directories, branch, version, summary."""

    def __init__(self) -> None:
        self.session_id: str | None = None
        self.first_cwd: str | None = None
        self.cwd: str | None = None
        self.branch: str | None = None
        self.version: str | None = None
        self.summary: str | None = None

    def note(self, record: Json) -> None:
        if self.session_id is None:
            self.session_id = _str(record.get("sessionId")) or None
        if cwd := _str(record.get("cwd")):
            self.first_cwd = self.first_cwd or cwd
            self.cwd = cwd
        # An empty branch means "not a git checkout" at that moment: keep the last real one.
        self.branch = _str(record.get("gitBranch")) or self.branch
        self.version = _str(record.get("version")) or self.version


def parse_claude(path: Path, data: bytes, sidechains: dict[str, bytes] | None = None) -> Transcript:
    """Parse a Claude Code session file, with its sub-agent files (*sidechains*, by agent id).

    :raises InvalidInput: no complete line of *data* is a JSON object.
    """
    lines = _lines(data)
    if not lines.objects:
        raise _no_records(path, "Claude Code")
    doc, meta = _Doc(CLAUDE), _ClaudeMeta()
    streams = [_claude_stream(doc, meta, lines.objects, None)]
    warnings = list(lines.warnings)
    side: Json = {}
    for agent, blob in sorted((sidechains or {}).items()):
        sl = _lines(blob, f"sidechain {agent}: ")
        warnings += sl.warnings
        # Sub-agents run in the same checkout: their directories and branch add nothing.
        streams.append(_claude_stream(doc, _ClaudeMeta(), sl.objects, agent))
        side[agent] = {"records": sl.records, "consumed": sl.consumed}
    messages = _interleave(streams)
    stem = path.name.removesuffix(".jsonl")
    # A sub-agent file names its parent session: read alone, it is known by its own name.
    source_id = stem if stem.startswith("agent-") else (meta.session_id or stem)
    source: Json = {"tool": CLAUDE, "source_id": source_id, "path": str(path)}
    source.update(records=lines.records, consumed=lines.consumed)
    if side:
        source["sidechains"] = side
    document = doc.document(
        messages,
        title=meta.summary.strip() if meta.summary and meta.summary.strip() else None,
        config={"git_branch": meta.branch, "tool_version": meta.version},
        source=source,
        workspace=meta.first_cwd,
        working_directory=meta.cwd,
    )
    return Transcript(CLAUDE, source_id, path, document, dict(doc.unknown), lines.records, lines.consumed, warnings)


def _claude_stream(doc: _Doc, meta: _ClaudeMeta, objects: list[tuple[int, Json]], agent: str | None) -> list[Json]:
    """The messages of one file (main or sub-agent), in file order; the rest goes to *doc*."""
    out: list[Json] = []
    by_api_id: dict[str, Json] = {}
    seen: set[str] = set()
    for n, record in objects:
        ts = doc.when(record.get("timestamp"))
        meta.note(record)
        kind, message = record.get("type"), record.get("message")
        sidechain = agent or _claude_sidechain(record)
        if kind in ("user", "assistant") and isinstance(message, dict):
            uid = _str(record.get("uuid"))
            if uid is not None and uid in seen:
                continue  # the same record written twice (a resumed session replays its tail)
            if uid is not None:
                seen.add(uid)
            m: Json | None
            if kind == "user":
                m = _claude_user(doc, record, message, ts, sidechain)
            else:
                m = _claude_assistant(doc, record, message, ts, by_api_id)
        elif kind == "summary" and isinstance(record.get("summary"), str):
            meta.summary = record["summary"]
            continue
        elif kind == "system" and record.get("subtype") == "compact_boundary":
            m = _claude_compaction(record, ts)
        else:
            doc.keep(_claude_kind(record), n, record, sidechain)
            continue
        if m is None:
            continue
        if sidechain is not None:
            m["sidechain"] = sidechain
        out.append(m)
    return out


def _claude_sidechain(record: Json) -> str | None:
    # Versions before sub-agent files wrote sidechain records into the main file.
    if record.get("isSidechain") is not True:
        return None
    return _str(record.get("agentId")) or "sidechain"


def _claude_kind(record: Json) -> str:
    kind, subtype = record.get("type"), record.get("subtype")
    if not isinstance(kind, str):
        return "(no type)"
    return f"{kind}:{subtype}" if kind == "system" and isinstance(subtype, str) else kind


def _claude_user(doc: _Doc, record: Json, message: Json, ts: str | None, sidechain: str | None) -> Json:
    """A user record: the user's words, or (tool_result blocks) what tools returned."""
    blocks = _claude_content(message.get("content"))
    results = [b for b in blocks if b["type"] == "tool_result"]
    for b in results:
        doc.finished(b["tool_call_id"], ts, b["is_error"])
    m = _message(record.get("uuid"), "tool" if results else "user", blocks, ts)
    if parent := _str(record.get("parentUuid")):
        m["parent_id"] = parent
    if record.get("isMeta") is True:
        m["meta"] = True
    if record.get("isCompactSummary") is True:
        m["compact_summary"] = True
    elif not results and "meta" not in m and sidechain is None:
        # Only the main conversation names the session: a sub-agent's prompt is the model's.
        for b in blocks:
            if b["type"] == "text" and doc.offer_title(b["text"], _CLAUDE_BOILERPLATE):
                break
    return m


def _claude_assistant(doc: _Doc, record: Json, message: Json, ts: str | None, merged: dict[str, Json]) -> Json | None:
    """An assistant record.  Claude Code writes one record per content block of a streamed
    reply, each with the same ``message.id``: they are merged into the first one's message
    (and the usage, repeated on each, is counted once).  None when merged."""
    blocks = _claude_content(message.get("content"))
    for b in blocks:
        if b["type"] == "tool_call":
            doc.started(b["id"], ts)
    model = doc.use_model(message.get("model"))
    usage = _claude_usage(message.get("usage"))
    api_id = _str(message.get("id"))
    if api_id is not None and api_id in merged:
        first = merged[api_id]
        first["content"].extend(blocks)
        if usage is not None:
            old = first["usage"]
            # The streamed copies differ only in how far the count had got: take the largest.
            first["usage"] = usage if old is None else {k: max(old[k], usage[k]) for k in usage}
        return None
    m = _message(record.get("uuid"), "assistant", blocks, ts, model=model, usage=usage)
    if parent := _str(record.get("parentUuid")):
        m["parent_id"] = parent
    if api_id is not None:
        merged[api_id] = m
    return m


def _claude_compaction(record: Json, ts: str | None) -> Json:
    """A compact boundary: the conversation before it was summarized (the summary follows)."""
    meta = record.get("compactMetadata")
    text = {"type": "text", "text": "[conversation compacted]"}
    return _message(record.get("uuid"), "system", [text], ts, compaction=dict(meta) if isinstance(meta, dict) else {})


def _claude_usage(value: Any) -> Json | None:
    if not isinstance(value, dict):
        return None
    return _usage(
        value.get("input_tokens"),
        value.get("output_tokens"),
        value.get("cache_read_input_tokens"),
        value.get("cache_creation_input_tokens"),
    )


def _claude_content(content: Any) -> list[Json]:
    if isinstance(content, list):
        return [_claude_block(b) for b in content]
    return [] if content is None else [{"type": "text", "text": _text(content)}]


def _claude_block(block: Any) -> Json:
    """An Anthropic content block as a sessionseal block."""
    if not isinstance(block, dict):
        return {"type": "text", "text": _text(block)}
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": _text(block.get("text"))}
    if kind == "thinking":
        # The signature is an opaque blob that lets the API verify the thinking: of no use here.
        return {"type": "thinking", "text": _text(block.get("thinking"))}
    if kind == "tool_use":
        return {
            "type": "tool_call",
            "id": _str(block.get("id")),
            "name": _text(block.get("name")),
            "arguments": _arguments(block.get("input")),
        }
    if kind == "tool_result":
        content = block.get("content")
        return {
            "type": "tool_result",
            "tool_call_id": _str(block.get("tool_use_id")),
            "content": [_claude_block(b) for b in content] if isinstance(content, list) else _text(content),
            "is_error": block.get("is_error") is True,
        }
    return _other_block(block)


# -- Codex ---------------------------------------------------------------------------------------


def parse_codex(path: Path, data: bytes) -> Transcript:
    """Parse a Codex rollout, in the envelope format or the legacy one (bare items).

    :raises InvalidInput: no complete line of *data* is a JSON object.
    """
    lines = _lines(data)
    if not lines.objects:
        raise _no_records(path, "Codex")
    rollout = _Codex(_Doc(CODEX))
    for n, record in lines.objects:
        rollout.record(n, record)
    doc = rollout.doc
    source_id = rollout.session_id or path.name.removesuffix(".zst").removesuffix(".jsonl")
    source: Json = {"tool": CODEX, "source_id": source_id, "path": str(path)}
    source.update(records=lines.records, consumed=lines.consumed)
    document = doc.document(rollout.messages, title=None, config=rollout.config, source=source, **rollout.directories())
    if rollout.totals is not None:
        # The running total is what the session cost; per-message usage may miss turns.
        document["stats"].update(rollout.totals)
    unknown = dict(doc.unknown)
    return Transcript(CODEX, source_id, path, document, unknown, lines.records, lines.consumed, list(lines.warnings))


class _Codex:
    """The state of a rollout being read: one method per record family."""

    def __init__(self, doc: _Doc) -> None:
        self.doc = doc
        self.messages: list[Json] = []
        #: The assistant message that reasoning, replies and tool calls are added to until
        #: something else (a result, a user message, a new turn, a token count) ends it.
        self.open: Json | None = None
        self.last_reply: Json | None = None
        self.session_id: str | None = None
        self.meta_cwd: str | None = None
        self.cwd: str | None = None
        self.config: Json = {}
        self.totals: Json | None = None
        self.handlers: dict[str, Callable[[int, Json, Json, str | None], None]] = {
            "session_meta": self.session_meta,
            "turn_context": self.turn_context,
            "response_item": self.response_item,
            "event_msg": self.event_msg,
            "compacted": self.compacted,
        }

    def directories(self) -> Json:
        return {"workspace": self.meta_cwd or self.cwd, "working_directory": self.cwd or self.meta_cwd}

    def record(self, n: int, record: Json) -> None:
        ts = self.doc.when(record.get("timestamp"))
        kind = record.get("type")
        if isinstance(kind, str) and "payload" in record:
            payload = record["payload"]
            handler = self.handlers.get(kind)
            if handler is not None and isinstance(payload, dict):
                handler(n, record, payload, ts)
            else:
                self.doc.keep(kind, n, record)
        # The legacy format: a bare meta object first, then bare items and state markers.
        elif isinstance(record.get("record_type"), str):
            self.doc.keep(f"legacy {record['record_type']}", n, record)
        elif isinstance(kind, str):
            self.response_item(n, record, record, ts)
        elif "id" in record and self.session_id is None:
            self.session_meta(n, record, record, ts)
        else:
            self.doc.keep("(no type)", n, record)

    def session_meta(self, n: int, record: Json, meta: Json, ts: str | None) -> None:
        """Who and where: the session id, its directory, the CLI version and the git state."""
        if self.session_id is not None:
            # A resumed or forked rollout repeats metadata: the first is this session's.
            self.doc.keep("session_meta", n, record)
            return
        self.doc.when(meta.get("timestamp"))
        self.session_id = _str(meta.get("id")) or None
        self.meta_cwd = _str(meta.get("cwd")) or None
        git = meta.get("git")
        git = git if isinstance(git, dict) else {}
        for key, value in (
            ("tool_version", meta.get("cli_version")),
            ("originator", meta.get("originator")),
            ("instructions", meta.get("instructions")),
            ("git_branch", git.get("branch")),
            ("git_commit", git.get("commit_hash")),
            ("git_repository_url", git.get("repository_url")),
        ):
            if isinstance(value, str) and value:
                self.config[key] = value

    def turn_context(self, n: int, record: Json, turn: Json, ts: str | None) -> None:
        """A new turn: its directory, model and policies (the last turn's are the session's)."""
        self.open = None
        self.cwd = _str(turn.get("cwd")) or self.cwd
        self.doc.use_model(turn.get("model"))
        for key, value in (
            ("approval_policy", turn.get("approval_policy")),
            ("sandbox_policy", turn.get("sandbox_policy")),
            ("reasoning_effort", turn.get("effort")),
        ):
            if value is not None:
                self.config[key] = value

    def response_item(self, n: int, record: Json, item: Json, ts: str | None) -> None:
        """A conversation item: a message, reasoning, a tool call or a tool's output."""
        kind = item.get("type")
        if kind == "message":
            self._message(item, ts)
        elif kind == "reasoning":
            texts = _codex_reasoning(item)
            if texts:
                self._reply(item, ts)["content"] += [{"type": "thinking", "text": t} for t in texts]
            else:
                self.doc.keep("reasoning (encrypted)", n, record)
        elif kind in ("function_call", "custom_tool_call", "local_shell_call", "web_search_call"):
            self._call(item, ts)
        elif kind in ("function_call_output", "custom_tool_call_output"):
            self._output(item, ts)
        else:
            self.doc.keep(f"response_item:{kind}" if isinstance(kind, str) else "response_item", n, record)

    def event_msg(self, n: int, record: Json, event: Json, ts: str | None) -> None:
        """UI events.  They repeat the response items, but for token counts (the only usage)."""
        kind, info = event.get("type"), event.get("info")
        if kind != "token_count":
            self.doc.keep(f"event_msg:{kind}" if isinstance(kind, str) else "event_msg", n, record)
        elif isinstance(info, dict):
            # A count ends the model call it reports on: later items start a new message.
            self.open = None
            total, last = info.get("total_token_usage"), info.get("last_token_usage")
            if isinstance(total, dict):
                u = _codex_usage(total)
                self.totals = {k: u[k] for k in ("input_tokens", "output_tokens", "cache_read_tokens")}
            if isinstance(last, dict) and self.last_reply is not None and self.last_reply["usage"] is None:
                self.last_reply["usage"] = _codex_usage(last)
        # A count without info carries rate limits only: nothing of the session's.

    def compacted(self, n: int, record: Json, payload: Json, ts: str | None) -> None:
        """The history was replaced by a summary (the replacement items repeat earlier ones)."""
        self.open = None
        text = {"type": "text", "text": _text(payload.get("message"))}
        self.messages.append(_message(None, "system", [text], ts, compaction={}))

    def _message(self, item: Json, ts: str | None) -> None:
        role = item.get("role")
        role = role if isinstance(role, str) and 0 < len(role) <= 64 else "unknown"
        blocks = _codex_content(item.get("content"))
        if role == "assistant":
            self._reply(item, ts)["content"] += blocks
            return
        self.open = None
        m = _message(item.get("id"), role, blocks, ts)
        if role == "user":
            texts = [b["text"] for b in blocks if b["type"] == "text"]
            if texts and all(t.lstrip().startswith(_CODEX_BOILERPLATE) for t in texts):
                m["meta"] = True
            for t in texts:
                if self.doc.offer_title(t, _CODEX_BOILERPLATE):
                    break
        self.messages.append(m)

    def _reply(self, item: Json, ts: str | None) -> Json:
        if self.open is None:
            self.open = _message(item.get("id"), "assistant", [], ts, model=self.doc.model)
            self.messages.append(self.open)
            self.last_reply = self.open
        return self.open

    def _call(self, item: Json, ts: str | None) -> None:
        kind = item.get("type")
        cid = _str(item.get("call_id")) or _str(item.get("id"))
        if kind == "function_call":
            name, arguments = _text(item.get("name")), _arguments(item.get("arguments"))
        elif kind == "custom_tool_call":
            name, arguments = _text(item.get("name")), _arguments(item.get("input"))
        else:  # local_shell_call, web_search_call: the action is the argument
            name, arguments = str(kind).removesuffix("_call"), _arguments(item.get("action"))
        block: Json = {"type": "tool_call", "id": cid, "name": name, "arguments": arguments}
        if kind == "web_search_call" and isinstance(item.get("status"), str):
            block["status"] = item["status"]  # it has no output item: this is its outcome
        self._reply(item, ts)["content"].append(block)
        self.doc.started(cid, ts)

    def _output(self, item: Json, ts: str | None) -> None:
        self.open = None
        cid = _str(item.get("call_id"))
        content, is_error, metadata = _codex_output(item.get("output"))
        block: Json = {"type": "tool_result", "tool_call_id": cid, "content": content, "is_error": is_error}
        if metadata is not None:
            block["metadata"] = metadata
        self.doc.finished(cid, ts, is_error)
        self.messages.append(_message(item.get("id"), "tool", [block], ts))


def _codex_reasoning(item: Json) -> list[str]:
    """The readable part of a reasoning item: its summaries, else raw reasoning text (models
    that expose it); the encrypted content is opaque and dropped."""
    for key, kind in (("summary", "summary_text"), ("content", "reasoning_text")):
        parts = item.get(key)
        if isinstance(parts, list):
            texts = [p["text"] for p in parts if isinstance(p, dict) and p.get("type") == kind and _str(p.get("text"))]
            if texts:
                return texts
    return []


def _codex_usage(value: Json) -> Json:
    # OpenAI counts cached input inside input_tokens; it is reported as cache reads too.
    return _usage(value.get("input_tokens"), value.get("output_tokens"), value.get("cached_input_tokens"), 0)


def _codex_content(content: Any) -> list[Json]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        return [] if content is None else [{"type": "text", "text": _text(content)}]
    out: list[Json] = []
    for c in content:
        if isinstance(c, dict) and c.get("type") in ("input_text", "output_text", "text"):
            out.append({"type": "text", "text": _text(c.get("text"))})
        elif isinstance(c, dict):
            out.append(_other_block(c))
        else:
            out.append({"type": "text", "text": _text(c)})
    return out


def _codex_output(output: Any) -> tuple[str | list[Json], bool, Json | None]:
    """A tool's output: its text, whether it failed, and the metadata Codex wrapped it in.

    Shell tools wrote ``{"output": ..., "metadata": {"exit_code": ...}}`` as a string; newer
    ones write plain text that starts ``Exit code: N``; some outputs are content items.
    """
    if isinstance(output, list):
        return _codex_content(output), False, None
    if not isinstance(output, str):
        return _text(output), False, None
    if output.lstrip().startswith("{"):
        parsed = _decode(output)
        if isinstance(parsed, dict) and "output" in parsed:
            metadata = parsed.get("metadata")
            metadata = metadata if isinstance(metadata, dict) else None
            code = metadata.get("exit_code") if metadata is not None else None
            failed = isinstance(code, int) and not isinstance(code, bool) and code != 0
            return _text(parsed["output"]), failed, metadata
    if match := _EXIT_CODE.match(output):
        return output, int(match.group(1)) != 0, None
    return output, False, None
