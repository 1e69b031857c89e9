"""The record model both formats map to: :class:`Transcript` (what reading a file gives) and
:class:`Doc` (raw events, times, models, tool calls and the title, gathered while a reader
walks the records, then made into one session document).
"""

from __future__ import annotations

import heapq
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from ..errors import InvalidInput
from ._values import Json, Lines, as_str, json_strings, parse_instant, slim_inline, title_line

CLAUDE: Final = "claude-code"
CODEX: Final = "codex"
GEMINI: Final = "gemini-cli"
#: Claude Code's model name for messages it makes up itself (errors, "no response requested").
_SYNTHETIC_MODEL: Final = "<synthetic>"
_NO_TIME: Final = datetime.min.replace(tzinfo=UTC)


@dataclass
class Transcript:
    """One transcript file, parsed: the session document and what reading it found."""

    #: ``claude-code``, ``codex`` or ``gemini-cli``.
    tool: str
    #: The tool's own session id (Claude and Gemini ``sessionId``, Codex ``session_meta`` id; else the file stem).
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


class Doc:
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
        #: The first record of each id (:meth:`repeated`), and how many repeated one, by id kind.
        self.ids: dict[tuple[str, str], Json] = {}
        self.repeats: dict[str, int] = {}
        #: Every JSON object of every file read, in file order (:meth:`capture`).
        self.records: list[Json] = []

    def capture(self, lines: Lines, agent: str | None) -> None:
        """Keep each record of one file as it was written, tagged with its file (*agent*: a
        sub-agent file; none: the main file) and line: the vault stores them (sanitized) as
        ``source_records``, and ``resume --into`` writes them back (docs/capture/resume.md).
        Inline data (images) is kept as its length, as in the messages."""
        for n, record in lines.objects:
            entry: Json = {"line": n, "record": slim_inline(record) if n in lines.inline else record}
            if agent is not None:
                entry["agent"] = agent
            parsed = json_strings(entry["record"])
            if parsed is not None:
                entry["record"], entry["json"] = parsed
            self.records.append(entry)

    def when(self, value: Any) -> str | None:
        """*value* if it is a usable timestamp (the session's first and last are tracked)."""
        t = parse_instant(value)
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

    def repeated(self, what: str, key: str, n: int, record: Json, sidechain: str | None = None) -> bool:
        """Whether *record* repeats the id (*what*: which one; *key*: its value) of an earlier
        record, which then wins: it was mapped first, and what came after it may refer to it.
        A copy that differs from it is kept verbatim as a raw event (``duplicate <what>``), an
        identical one (a resumed session replaying its tail) is dropped; both are counted
        (:meth:`repeat_warnings`)."""
        first = self.ids.setdefault((what, key), record)
        if first is record:
            return False
        self.repeats[what] = self.repeats.get(what, 0) + 1
        if record != first:
            self.keep(f"duplicate {what}", n, record, sidechain)
        return True

    def repeat_warnings(self) -> list[str]:
        """One warning per id kind that records repeated: a count, never an id or content."""
        return [
            f"{count} record(s) repeat the {what} of an earlier record: the first was kept"
            " (a copy that differs is kept as a raw event)"
            for what, count in sorted(self.repeats.items())
        ]

    def use_model(self, value: Any) -> str | None:
        model = as_str(value) or None
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
        line = title_line(text)
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
        if self.records:
            doc["source_records"] = self.records
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
                t0, t1 = parse_instant(started), parse_instant(finished)
                if t0 is not None and t1 is not None and t1 >= t0:
                    entry["duration_ms"] = (t1 - t0).total_seconds() * 1000
                out.append(entry)
        return out


def interleave(streams: list[list[Json]]) -> list[Json]:
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
            last = parse_instant(m.get("timestamp")) or last
            items.append((last, i, m))
        keyed.append(items)
    return [m for _, _, m in heapq.merge(*keyed, key=lambda item: (item[0], item[1]))]


def no_records(path: Path, tool: str) -> InvalidInput:
    return InvalidInput(f"{path}: not a {tool} transcript (no complete line is a JSON object)")
