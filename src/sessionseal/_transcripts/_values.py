"""Lines and values: the JSON lines of a transcript file, and the small value helpers both
formats' readers share (text, times, usage, blocks, tool arguments).

A line that does not decode is refused with a reason that names its number, never its content
(a transcript is full of secrets until the vault has sanitized it); what decodes is repaired
for storage (lone surrogates, integers past 64 bits, nesting past the serializer's limit).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

Json = dict[str, Any]

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
#: The block types of sessionseal's model: a foreign block with one of these names but
#: another shape would fail validation, so it is renamed (``raw:<type>``).
_OUR_BLOCKS: Final = frozenset({"text", "thinking", "tool_call", "tool_result"})
#: ISO 8601 as both tools write it, and as pydantic reads it (``fromisoformat`` alone
#: accepts forms such as week dates that the model then refuses).
_TIMESTAMP: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
)


@dataclass
class Lines:
    """The JSON objects of one file, by line number, and what reading them found."""

    objects: list[tuple[int, Json]] = field(default_factory=list)
    records: int = 0
    consumed: int = 0
    warnings: list[str] = field(default_factory=list)
    #: Lines that may hold inline data (base64 images): :func:`slim_inline` before keeping them.
    inline: set[int] = field(default_factory=set)


def read_lines(data: bytes, where: str = "") -> Lines:
    out = Lines()
    pos = n = 0
    while (end := data.find(b"\n", pos)) >= 0:
        n += 1
        line = data[pos:end]
        pos = end + 1
        if not line.strip():
            continue
        obj = decode_json(line)
        if isinstance(obj, dict):
            out.objects.append((n, obj))
            if b'"base64"' in line or b'"data:' in line:
                out.inline.add(n)
        else:
            why = obj.reason if isinstance(obj, _Refused) else "is not a JSON object"
            out.warnings.append(f"{where}line {n} {why}")
    out.records, out.consumed = n, pos
    if data[pos:].strip():
        # A last line without its newline that decodes as a JSON object is whole: no proper
        # prefix of a JSON object is itself one (its closing brace would end it early), so the
        # agent cannot still be adding to it, only its newline.  It is read and consumed; once
        # the newline comes the same record ends the same line, and the file grew by one byte.
        # Anything else is still being written: left for the next read.
        obj = decode_json(data[pos:])
        if isinstance(obj, dict):
            out.objects.append((n + 1, obj))
            out.records, out.consumed = n + 1, len(data)
        else:
            out.warnings.append(f"{where}line {n + 1} is incomplete (no newline yet); left for the next read")
    return out


@dataclass(frozen=True)
class _Refused:
    """A line or string that did not decode, and why (None is valid JSON: it cannot say so)."""

    reason: str


_BAD: Final = _Refused("is not JSON")
_DEEP: Final = _Refused("is nested too deeply")


def decode_json(raw: bytes | str) -> Any:
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


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_text(value: Any) -> str:
    """Text for a field that should hold text: non-strings are kept as their JSON."""
    if isinstance(value, str):
        return value
    return "" if value is None else json.dumps(value, ensure_ascii=False)


def _tokens(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_TOKENS:
        return 0
    return value


def parse_instant(value: Any) -> datetime | None:
    """*value* as an aware UTC datetime when it is an ISO 8601 time the model accepts."""
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        return None
    try:
        t = datetime.fromisoformat(value)
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    except (ValueError, OverflowError):  # 31 February; year 1 with a positive offset
        return None


def title_line(text: str) -> str:
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    return line if len(line) <= _TITLE_MAX else line[: _TITLE_MAX - 1] + "…"


def new_message(mid: Any, role: str, content: list[Json], ts: str | None, **extra: Any) -> Json:
    return {
        "id": as_str(mid),
        "role": role,
        "content": content,
        "timestamp": ts,
        "model": extra.pop("model", None),
        "usage": extra.pop("usage", None),
        **extra,
    }


def new_usage(input_tokens: Any, output_tokens: Any, cache_read: Any, cache_write: Any) -> Json:
    return {
        "input_tokens": _tokens(input_tokens),
        "output_tokens": _tokens(output_tokens),
        "cache_read_tokens": _tokens(cache_read),
        "cache_write_tokens": _tokens(cache_write),
    }


def other_block(block: Json) -> Json:
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


def slim_inline(value: Any) -> Any:
    """A copy of a record with its inline data replaced by its length, as :func:`other_block`
    does: a base64 ``source`` (Anthropic images, documents) and ``data:`` image URLs (OpenAI)."""
    if isinstance(value, list):
        return [slim_inline(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: slim_inline(v) for k, v in value.items()}
    if out.get("type") == "base64" and isinstance(out.get("data"), str):
        out["data"] = len(out["data"])
    url = out.get("image_url")
    if isinstance(url, str) and url.startswith("data:"):
        out["image_url"] = len(url)
    return out


#: Fields that hold JSON as a string (Codex ``function_call.arguments``, ``custom_tool_call.input``,
#: ``function_call_output.output``), at the top of a record or of its ``payload``.
_JSON_FIELDS: Final = ("arguments", "input", "output")
#: How a JSON string may have been written, by number: compact or spaced, raw or ASCII-escaped.
JSON_STYLES: Final = ((",", ":", False), (", ", ": ", False), (", ", ": ", True), (",", ":", True))


def json_strings(record: Json) -> tuple[Json, Json] | None:
    """A copy of *record* whose JSON-in-a-string fields are parsed into the tree, so that the
    sanitizer sees them as it sees the mapped tool arguments (an argv list, a ``-p`` flag and
    its value), and for each such field the style that writes it back byte for byte (an index
    of :data:`JSON_STYLES`, or -1: none does).  None when the record has no such field."""
    found: Json = {}
    out = record
    for prefix, holder in (("", record), ("payload.", record.get("payload"))):
        if not isinstance(holder, dict):
            continue
        for key in _JSON_FIELDS:
            text = holder.get(key)
            if not isinstance(text, str) or text.lstrip()[:1] not in ("{", "["):
                continue
            value = decode_json(text)
            if not isinstance(value, dict | list):
                continue
            style = next((i for i, (a, b, ascii_) in enumerate(JSON_STYLES) if _dumps(value, a, b, ascii_) == text), -1)
            found[prefix + key] = style
            if out is record:  # copies: the parsers read the record itself
                out = dict(record)
            if prefix and out["payload"] is record["payload"]:
                out["payload"] = dict(record["payload"])
            (out["payload"] if prefix else out)[key] = value
    return (out, found) if found else None


def _dumps(value: Any, item: str, key: str, ascii_: bool) -> str:
    return json.dumps(value, separators=(item, key), ensure_ascii=ascii_)


def tool_arguments(value: Any) -> Any:
    """Tool arguments as the model wrote them: JSON when they parse as an object or array."""
    if isinstance(value, str):
        parsed = decode_json(value) if value.lstrip()[:1] in ("{", "[") else None
        return parsed if isinstance(parsed, dict | list) else value
    if value is None or isinstance(value, dict | list):
        return value
    return as_text(value)


def first_objects(data: bytes, limit: int) -> Iterator[Json]:
    # Walks lines with find(): splitting would copy the whole (possibly huge) rest.
    pos = 0
    for _ in range(limit):
        end = data.find(b"\n", pos)
        if end < 0:
            return
        obj = decode_json(data[pos:end])
        pos = end + 1
        if isinstance(obj, dict):
            yield obj
