"""What ``browse`` shows, as rich Text: list rows and transcript entries (no Textual here).

Everything comes from stored (sanitized) text, and is made safe the way ``show`` makes it
(``_terminal.styled``): never parsed as Rich markup (a stored ``[bold]`` or ``[link=...]`` is
text), control and invisible format characters shown as escapes in reverse video.  Redaction
placeholders (``[REDACTED:rule]``) are highlighted.

A transcript is a list of entries built from the stored document without rendering any text;
an entry is turned into Text only when the pane needs its lines (``_browse_app``), and a long
text is cut into pieces of about ``PIECE`` characters so that no single entry costs the
rendering of megabytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from rich.text import Text

from ._terminal import styled, visible

__all__ = ["COLUMNS", "PIECE", "Entries", "Entry", "build_entries", "entry_text", "row_cells"]

#: The list's columns and their widths (0: takes what is left); the index's fields.
COLUMNS: Final = (
    ("title", 0),
    ("updated", 16),
    ("status", 10),
    ("tags", 16),
    ("workspace", 22),
    ("model", 16),
    ("cost", 8),
    ("size", 9),
)
#: The most characters of one text rendered at once (a piece of a long text).
PIECE: Final = 8192
#: Kinds of entries folded by default: their first line only, until unfolded.
FOLDABLE: Final = frozenset({"tool_call", "tool_result", "thinking"})
_HIGHLIGHT: Final = "black on yellow"
#: A redaction placeholder, as the sanitizer writes it (its PLACEHOLDER_RE; the CLI uses the
#: public API only, so it is restated here and tests/unit/test_browse.py checks they agree).
PLACEHOLDER: Final = re.compile(r"\[REDACTED:[a-z0-9-]+(?::[0-9a-f]{8})?\]")


def size(n: int) -> str:
    """``1536`` -> ``"1.5 KiB"``, as ``_render.size`` (not imported: it brings in the models,
    a fifth of a second of start-up that browse, reading JSON, does not need)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def safe(value: str, style: str = "") -> Text:
    """Stored text for a terminal: literal (no markup), escapes visible, placeholders marked."""
    text = styled(value, style, terminal=True)
    if "[REDACTED:" in value:
        text.highlight_regex(PLACEHOLDER, _HIGHLIGHT)
    return text


def one_line(value: str, limit: int) -> str:
    """*value* on one line (its controls and newlines as escapes), cut to *limit* characters."""
    out = visible(value[: limit * 2], one_line=True)
    return out if len(out) <= limit else out[: max(limit - 1, 0)] + "…"


def _when(value: Any) -> str:
    if not isinstance(value, str):
        return "-"
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return one_line(value, 16)


def row_cells(row: dict[str, Any]) -> list[str]:
    """The list's cells for one summary (a dict of ``list --json``), each one line, escaped."""
    models = row.get("models") or []
    status = str(row.get("status", "")) + ("*" if row.get("pinned") else "")
    return [
        str(row.get("title") or "(untitled)"),
        _when(row.get("updated_at")),
        status,
        ",".join(row.get("tags") or []),
        str(row.get("workspace") or "-"),
        str(models[-1]) if models else "-",
        f"${float(row.get('cost_usd') or 0):.2f}",
        size(int(row.get("size_stored") or 0)),
    ]


@dataclass(slots=True)
class Entry:
    """One thing of a transcript: a message's heading, a text, a tool call or result, a thought.

    A block's text is worked out (arguments as JSON, a result's parts joined) only when the
    entry is first shown: opening a 10 MB session builds its entries without touching its text.
    """

    kind: str
    head_text: str = ""
    body_text: str | None = ""
    style: str = ""
    folded: bool = False
    message: int = -1
    block: Any = None

    @property
    def foldable(self) -> bool:
        return self.kind in FOLDABLE

    @property
    def body(self) -> str:
        if self.body_text is None:
            self.head_text, self.body_text = _texts(self.kind, self.block)
        return self.body_text

    @property
    def head(self) -> str:
        _ = self.body
        return self.head_text


def _args_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def _result_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    parts = []
    for item in value or []:
        if isinstance(item, dict) and isinstance(item.get("text"), str):
            parts.append(item["text"])
        else:
            parts.append(json.dumps(item, ensure_ascii=False))
    return "\n".join(parts)


def _first_line(text: str) -> str:
    line = text[:200].split("\n", 1)[0]
    return line + (" …" if len(line) < len(text) else "")


def _texts(kind: str, block: dict[str, Any]) -> tuple[str, str]:
    """(heading, body) of a block's entry."""
    if kind == "thinking":
        text = str(block.get("text", ""))
        return "(thinking) " + _first_line(text), text
    if kind == "tool_call":
        args = _args_text(block.get("arguments"))
        return f"-> {block.get('name', '?')} " + _first_line(args.replace("\n", " ")), args
    text = _result_text(block.get("content"))
    return ("<- error " if block.get("is_error") else "<- ") + _first_line(text), text


def _block_entry(block: Any, number: int) -> Entry:
    if not isinstance(block, dict):
        return Entry("text", body_text=str(block), message=number)
    kind = block.get("type")
    if kind == "text":
        return Entry("text", body_text=str(block.get("text", "")), message=number)
    if kind == "thinking":
        return Entry("thinking", body_text=None, style="dim", folded=True, message=number, block=block)
    if kind == "tool_call":
        return Entry("tool_call", body_text=None, style="magenta", folded=True, message=number, block=block)
    if kind == "tool_result":
        style = "red" if block.get("is_error") else "green"
        return Entry("tool_result", body_text=None, style=style, folded=True, message=number, block=block)
    return Entry("other", f"({kind} block)", style="dim", message=number)


def _header(doc: dict[str, Any], checkpoints: Sequence[str]) -> list[Entry]:
    out = [Entry("title", str(doc.get("title") or "(untitled)"), style="bold")]
    tags = ", ".join(str(t) for t in doc.get("tags") or []) or "-"
    pinned = ", pinned" if doc.get("pinned") else ""
    out.append(Entry("meta", f"status {doc.get('status')}{pinned}   tags {tags}"))
    out.append(Entry("meta", f"created {_when(doc.get('created_at'))}   updated {_when(doc.get('updated_at'))}"))
    if doc.get("workspace") or doc.get("working_directory"):
        out.append(
            Entry("meta", f"workspace {doc.get('workspace') or '-'}   cwd {doc.get('working_directory') or '-'}")
        )
    links = doc.get("links") or {}
    named = [("parent", "parent"), ("forked from", "forked_from"), ("continues", "continued_from")]
    parts = [f"{k} {links[v]}" for k, v in named if links.get(v)] + [f"related {r}" for r in links.get("related", [])]
    if parts:
        out.append(Entry("meta", "links: " + ", ".join(parts)))
    if checkpoints:
        out.append(Entry("meta", "checkpoints: " + ", ".join(checkpoints)))
    if doc.get("description"):
        out.append(Entry("text", body_text=str(doc["description"])))
    if doc.get("redactions"):
        counts = ", ".join(f"{k} x{v}" for k, v in sorted(doc["redactions"].items()))
        out.append(Entry("meta", "redacted at save: " + counts, style="yellow"))
    return out


class Entries:
    """A transcript's entries, made a message at a time as they are asked for: opening a
    session of 20,000 messages makes those of its first screen."""

    def __init__(self, doc: dict[str, Any] | None = None, checkpoints: Sequence[str] = ()) -> None:
        doc = doc or {}
        self.items = _header(doc, checkpoints) if doc else []
        messages = doc.get("messages")
        self._messages: list[Any] = messages if isinstance(messages, list) else []
        self._next = 0

    @classmethod
    def of(cls, items: list[Entry]) -> Entries:
        out = cls()
        out.items = items
        return out

    def _more(self) -> bool:
        """Add the next message's entries; False when there are no more."""
        while self._next < len(self._messages):
            number, msg = self._next, self._messages[self._next]
            self._next += 1
            if not isinstance(msg, dict):
                continue
            stamp = f" {msg['timestamp'][11:19]}" if isinstance(msg.get("timestamp"), str) else ""
            model = f" ({msg['model']})" if msg.get("model") else ""
            self.items.append(Entry("role", f"{msg.get('role', '?')}{model}{stamp}", style="bold cyan", message=number))
            content = msg.get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
            self.items.extend(_block_entry(block, number) for block in blocks)
            return True
        return False

    def has(self, index: int) -> bool:
        """Whether there is an entry *index* (made if it was not yet)."""
        while index >= len(self.items):
            if not self._more():
                return False
        return index >= 0

    def __getitem__(self, index: int) -> Entry:
        self.has(index)
        return self.items[index]

    def all(self) -> list[Entry]:
        while self._more():
            pass
        return self.items


def build_entries(doc: dict[str, Any], checkpoints: Sequence[str] = ()) -> list[Entry]:
    """Every entry of a stored session document (its JSON, parsed): header, then messages."""
    return Entries(doc, checkpoints).all()


def pieces(text: str) -> list[str]:
    """*text* cut into pieces of about PIECE characters, at a line end where there is one."""
    if len(text) <= PIECE:
        return [text]
    out, pos = [], 0
    while pos < len(text):
        end = min(pos + PIECE, len(text))
        if end < len(text):
            cut = text.rfind("\n", pos + PIECE // 2, end)
            end = cut + 1 if cut > 0 else end
        out.append(text[pos:end])
        pos = end
    return out


def entry_text(entry: Entry, *, cursor: bool = False) -> list[Text]:
    """The Text of an entry as the pane shows it now: a heading (folded: only that) and the
    pieces of its body.  The heading is stored text, made safe like the body."""
    if entry.kind == "role":
        return [Text.assemble("\n", safe(entry.head, entry.style))]
    if entry.kind in ("title", "meta"):
        return [safe(entry.head, entry.style)]
    if not entry.foldable:
        out = [safe(p) for p in pieces(entry.body)] if entry.body else []
        return out or [safe(entry.head, entry.style)]
    mark = "▸ " if entry.folded else "▾ "
    head = Text.assemble((mark, "bold"), safe(one_line(entry.head, 160), entry.style))
    if cursor:
        head.stylize("reverse")
    if entry.folded:
        return [head]
    return [head, *(safe(p, "dim" if entry.kind == "thinking" else "") for p in pieces(entry.body))]
