"""Appended events: what an append stores, how a session document is rebuilt from them,
and how the summary follows them without reading the session (docs/spec/container-v1.md,
"Appends").

An append is a list of *operations* on the stored (sanitized) session document, kept in an
EVENTS frame as ``{"ops": [{"op": NAME, "value": ...}, ...]}``:

* ``message``: append ``value`` (a message) to ``messages``;
* ``tool_use``: append ``value`` (a tool use) to ``tool_history``;
* ``tool_done``: update the last ``tool_history`` entry whose ``call_id`` is
  ``value["call_id"]`` with the other keys of ``value`` (a result came back);
* ``set``: replace top-level fields of the document with those of ``value`` (state, status,
  title, ``updated_at``, ``redactions``...);
* ``extend``: add the blocks of ``value["content"]`` to the last message's content, and set
  its other keys of ``value`` on that message (a transcript's last reply went on: issue 22);
* ``records``: append the list ``value["records"]`` to ``source_records`` (session schema 2:
  the source records of an imported transcript, for ``resume --into``).

Callers give *events* (:func:`parse_events`), a small public vocabulary that maps onto these
operations; the operations are what is stored, so that loading never has to know the
vocabulary's defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from ._usage import rollup_after, rollup_of, usage_current
from .errors import InvalidInput

__all__ = [
    "EVENT_TYPES",
    "SET_FIELDS",
    "SUMMARY_FIELDS",
    "apply",
    "check_ops",
    "parse_events",
    "summary_after",
    "summary_of",
]

#: The fields a summary (META frame) copies from the document as they are.
SUMMARY_FIELDS: Final = (
    "id",
    "title",
    "description",
    "tags",
    "status",
    "pinned",
    "created_at",
    "updated_at",
    "last_accessed_at",
    "workspace",
    "outcome",
    "redactions",
    "source",  # where an imported transcript came from, and how much of it (issue 8)
)

#: Fields a ``state`` event may set.  Not the id, the creation time, the lists that only
#: grow by their own events, nor ``redactions`` (counted by the vault).
SET_FIELDS: Final = frozenset(
    {
        "title",
        "description",
        "tags",
        "status",
        "workspace",
        "working_directory",
        "environment",
        "config",
        "preferences",
        "tool_state",
        "open_files",
        "watched_files",
        "processes",
        "connections",
        "stats",
        "outcome",
    }
)

EVENT_TYPES: Final = ("message", "tool_call", "tool_result", "state")
#: ``records`` (schema 2): source records of an imported transcript, appended to ``source_records``.
_OPS: Final = frozenset({"message", "tool_use", "tool_done", "set", "extend", "records"})


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _where(i: int, kind: str) -> str:
    return f"event {i + 1} ({kind})"


def parse_events(events: Iterable[Mapping[str, Any]], session_id: str) -> list[dict[str, Any]]:
    """Validate *events* and turn them into stored operations (JSON values, not yet sanitized).

    Each event is an object with a ``type``:

    * ``message`` (or no type, with a ``role``): a message, as in a session's ``messages``;
    * ``tool_call``: ``name``, optional ``arguments`` and ``id``: an assistant message with a
      tool-call block, and a running entry in ``tool_history``;
    * ``tool_result``: ``tool_call_id``, ``content``, optional ``is_error``: a ``tool`` message
      with a tool-result block, and the call's ``tool_history`` entry finished;
    * ``state``: any of :data:`SET_FIELDS`, replacing the stored values.

    :raises InvalidInput: names the event and the field, never a value.
    """
    from pydantic import ValidationError

    from .models import Message, Session, ToolCallBlock, ToolResultBlock, ToolUse, validation_summary

    ops: list[dict[str, Any]] = []
    for i, event in enumerate(events):
        if not isinstance(event, Mapping):
            raise InvalidInput(f"{_where(i, 'not an object')}: every event is a JSON object")
        kind = event.get("type", "message" if "role" in event else None)
        fields = {k: v for k, v in event.items() if k != "type"}
        try:
            if kind == "message":
                ops.append({"op": "message", "value": Message.model_validate(fields).model_dump(mode="json")})
            elif kind == "tool_call":
                block = ToolCallBlock.model_validate(fields).model_dump(mode="json")
                now = _now()
                ops.append({"op": "message", "value": {"role": "assistant", "content": [block], "timestamp": now}})
                use = ToolUse(tool=block["name"], call_id=block.get("id"), started_at=now, status="running")  # type: ignore[arg-type]
                ops.append({"op": "tool_use", "value": use.model_dump(mode="json")})
            elif kind == "tool_result":
                block = ToolResultBlock.model_validate(fields).model_dump(mode="json")
                now = _now()
                ops.append({"op": "message", "value": {"role": "tool", "content": [block], "timestamp": now}})
                if block.get("tool_call_id"):
                    status = "error" if block.get("is_error") else "ok"
                    done = {"call_id": block["tool_call_id"], "finished_at": now, "status": status}
                    ops.append({"op": "tool_done", "value": done})
            elif kind == "state":
                # Names of the input: escaped to keep the message on one line.
                unknown = sorted(str(k).encode("unicode_escape").decode("ascii") for k in set(fields) - SET_FIELDS)
                if unknown or not fields:
                    raise InvalidInput(
                        f"{_where(i, kind)}: a state event sets some of {', '.join(sorted(SET_FIELDS))}"
                        + (f"; not {', '.join(unknown)}" if unknown else "")
                    )
                model = Session.model_validate({"id": session_id, **fields})
                ops.append({"op": "set", "value": model.model_dump(mode="json", include=set(fields))})
            else:
                # The unknown value is not echoed: it is input, and could be anything.
                raise InvalidInput(f"{_where(i, 'unknown type')}: type is one of {', '.join(EVENT_TYPES)}")
        except ValidationError as exc:
            raise InvalidInput(f"{_where(i, str(kind))}: {validation_summary(exc)}") from None
        except InvalidInput:
            raise
        except ValueError:  # model_dump: valid, but nested too deep to serialize
            raise InvalidInput(f"{_where(i, str(kind))}: values are nested too deep (about 250 levels)") from None
    return ops


def check_ops(ops: Any) -> list[dict[str, Any]]:
    """The operations of a decrypted EVENTS payload, checked for shape.

    :raises ValueError: not a list of known operations (an authentic frame of a newer writer,
        or a bug; the caller reports an integrity failure).
    """
    if not isinstance(ops, list):
        raise ValueError("ops")
    for op in ops:
        if not isinstance(op, dict) or not isinstance(op.get("op"), str) or op["op"] not in _OPS:
            raise ValueError("op")
        value = op.get("value")
        if not isinstance(value, dict):
            raise ValueError("value")
        if op["op"] == "extend" and not isinstance(value.get("content"), list):
            raise ValueError("content")
        if op["op"] == "records" and not isinstance(value.get("records"), list):
            raise ValueError("records")
    return ops


def apply(doc: dict[str, Any], ops: Sequence[Mapping[str, Any]]) -> None:
    """Apply stored operations to a session document, in order."""
    for op in ops:
        name, value = op["op"], op["value"]
        if name == "message":
            doc.setdefault("messages", []).append(value)
        elif name == "tool_use":
            doc.setdefault("tool_history", []).append(value)
        elif name == "tool_done":
            for use in reversed(doc.get("tool_history") or []):
                if use.get("call_id") == value.get("call_id"):
                    use.update({k: v for k, v in value.items() if k != "call_id"})
                    break
        elif name == "set":
            doc.update(value)
        elif name == "extend" and doc.get("messages"):  # none to extend: nothing changes
            last = doc["messages"][-1]
            last.update({k: v for k, v in value.items() if k != "content"})
            last["content"] = [*(last.get("content") or []), *value["content"]]
        elif name == "records":
            doc.setdefault("source_records", []).extend(value["records"])


def _finish(meta: dict[str, Any], n: dict[str, Any]) -> dict[str, Any]:
    meta["message_count"] = max(int(n["messages"]), int(n["stats_messages"]))
    meta["cost_usd"] = float(n["stats_cost"]) or float(n["message_cost"])
    # Running totals the next append needs to update the summary without the document.
    # Not a summary field: the index and listings never carry it.
    meta["_n"] = n
    return meta


def summary_of(doc: Mapping[str, Any], size: int) -> dict[str, Any]:
    """The summary (META document) of a whole sanitized session document of *size* bytes."""
    meta = {k: doc.get(k) for k in SUMMARY_FIELDS}
    messages = doc.get("messages") or []
    stats = doc.get("stats") or {}
    meta["models"] = list(dict.fromkeys(m["model"] for m in messages if isinstance(m.get("model"), str)))
    meta["size_original"] = size
    # Tokens and cost per quarter hour and model (stats --usage), stamped with the size it
    # describes: an older sessionseal that appends copies it unchanged, and the sizes then differ.
    meta["usage"] = {**rollup_of(doc), "size": size}
    n = {
        "messages": len(messages),
        "message_cost": float(sum(c for m in messages if (c := m.get("cost_usd")))),
        "stats_messages": int(stats.get("message_count") or 0),
        "stats_cost": float(stats.get("cost_usd") or 0),
    }
    return _finish(meta, n)


def summary_after(meta: Mapping[str, Any], ops: Sequence[Mapping[str, Any]], size: int) -> dict[str, Any]:
    """The summary after *ops* (*size* more bytes) were appended to a session summarized by *meta*."""
    new = {k: v for k, v in meta.items() if k not in ("size_stored", "generation")}
    n = dict(new.get("_n") or {})
    n.setdefault("messages", new.get("message_count") or 0)
    n.setdefault("message_cost", new.get("cost_usd") or 0.0)
    n.setdefault("stats_messages", 0)
    n.setdefault("stats_cost", 0.0)
    models = list(new.get("models") or [])
    for op in ops:
        value = op["value"]
        if op["op"] in ("message", "extend"):
            n["messages"] += op["op"] == "message"  # an extension is of a message counted
            if op["op"] == "message" and isinstance(cost := value.get("cost_usd"), int | float):
                n["message_cost"] += cost
            if isinstance(model := value.get("model"), str) and model not in models:
                models.append(model)
        elif op["op"] == "set":
            new.update({k: v for k, v in value.items() if k in SUMMARY_FIELDS})
            if isinstance(stats := value.get("stats"), dict):
                n["stats_messages"] = int(stats.get("message_count") or 0)
                n["stats_cost"] = float(stats.get("cost_usd") or 0)
    new["models"] = models
    before = int(new.get("size_original") or 0)
    new["size_original"] = before + size
    rollup = new.pop("usage", None)
    usage = rollup_after(rollup, ops) if usage_current(rollup, before) else None
    if usage is not None:  # a session saved before rollups has none until it is saved anew
        new["usage"] = {**usage, "size": new["size_original"]}
    return _finish(new, n)
