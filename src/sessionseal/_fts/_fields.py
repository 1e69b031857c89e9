"""What of a stored session document is indexed, and in which field (docs/spec/fts-v1.md,
"What is indexed").

The caller passes the document *as stored* (sanitized), or the sanitized operations of an
append, never their input. The pieces are ``(field bit, text)``; :func:`~._segment.analyze`
tokenizes them one field at a time, and a newline never joins two pieces' words, so the
postings of a document are the sum of the postings of its pieces. That is what makes an
append O(turn): for any document and any split of it into a save and appends that add
messages, tool events, records or blocks (:func:`ops_fields`), the postings of the parts add
up to those of the whole (``tests/unit/test_fts_fields.py``, a property). A ``set`` of an
indexed field (:data:`REPLACED`) replaces text instead of adding some: the vault then writes
the whole session anew (:func:`replaces_text`).

Indexed, by evidence of what users search for (words they remember reading or typing):

- TITLE: the title and the description (the names a user gave the session);
- USER: the text of ``user``, ``system`` and ``developer`` messages, and of messages of any
  other role but ``assistant`` and ``tool``: what the agent was told;
- ASSISTANT: the text and thinking of ``assistant`` messages;
- TOOL: a tool call's name and the string values of its arguments (the command run, the file
  read, the pattern searched), and a tool result's output (its text, or the ``text`` of its
  blocks), in messages of any role; and the text of ``tool`` messages.

Not indexed: tags, status, workspace, model and times (list filters, answered by ``index.sst``);
the keys of a tool call's arguments; blocks of other types but their ``text`` (images' base64,
for instance); ``source_records`` (an imported transcript's raw lines repeat its messages);
``config``, ``environment``, ``preferences``, ``tool_state``, ``open_files``, ``processes``,
``connections``, ``stats`` and ``outcome``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from ._format import ASSISTANT, TITLE, TOOL, USER

__all__ = ["REPLACED", "doc_fields", "ops_fields", "replaces_text"]

#: The document's top-level fields that are indexed and that a ``set`` replaces.
REPLACED: Final = ("title", "description")
#: Tool arguments nested deeper than this are not indexed (a sanitized document is at most
#: about 250 levels deep; the recursion stays well below Python's limit).
_MAX_DEPTH: Final = 64


def _role_field(role: Any) -> int:
    if role == "assistant":
        return ASSISTANT
    if role == "tool":
        return TOOL
    return USER


def _strings(value: Any, out: list[str], depth: int = 0) -> None:
    """The string values in *value* (never a key), depth first, in order."""
    if isinstance(value, str):
        if value:
            out.append(value)
    elif depth < _MAX_DEPTH:
        if isinstance(value, Mapping):
            for v in value.values():
                _strings(v, out, depth + 1)
        elif isinstance(value, list):
            for v in value:
                _strings(v, out, depth + 1)


def _result_text(content: Any, out: list[str]) -> None:
    if isinstance(content, str):
        if content:
            out.append(content)
    elif isinstance(content, list):
        for block in content:
            if isinstance(block, Mapping) and isinstance(block.get("text"), str) and block["text"]:
                out.append(block["text"])


def _blocks(blocks: Any, field: int) -> list[tuple[int, str]]:
    """The pieces of a message's content blocks; *field* is its role's."""
    out: list[tuple[int, str]] = []
    _add_blocks(blocks, field, out)
    return out


def _add_blocks(blocks: Any, field: int, out: list[tuple[int, str]]) -> None:
    """:func:`_blocks`, appended to *out* (a save walks thousands of messages: no list or
    generator per block)."""
    if isinstance(blocks, str):  # never stored (the model turns it into a block); tolerated
        if blocks:
            out.append((field, blocks))
        return
    if not isinstance(blocks, list):
        return
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "tool_call":
            texts: list[str] = []
            _strings(block.get("name"), texts)
            _strings(block.get("arguments"), texts)
            out += [(TOOL, t) for t in texts]
        elif kind == "tool_result":
            content = block.get("content")
            if isinstance(content, str):  # the common case, without a list
                if content:
                    out.append((TOOL, content))
            else:
                texts = []
                _result_text(content, texts)
                out += [(TOOL, t) for t in texts]
        else:
            text = block.get("text")
            if isinstance(text, str) and text:
                out.append((field, text))  # text, thinking, and any other block's text


def message_fields(message: Any) -> list[tuple[int, str]]:
    """The pieces of one stored message."""
    if not isinstance(message, Mapping):
        return []
    return _blocks(message.get("content"), _role_field(message.get("role")))


def doc_fields(doc: Mapping[str, Any]) -> list[tuple[int, str]]:
    """A stored (sanitized) session document's text, as ``(field bit, text)`` pieces."""
    out: list[tuple[int, str]] = []
    for key in REPLACED:
        value = doc.get(key)
        if isinstance(value, str) and value:
            out.append((TITLE, value))
    messages = doc.get("messages")
    if isinstance(messages, list):
        for m in messages:
            if isinstance(m, Mapping):
                _add_blocks(m.get("content"), _role_field(m.get("role")), out)
    return out


def ops_fields(ops: Sequence[Mapping[str, Any]], *, last_role: str | None = "assistant") -> list[tuple[int, str]]:
    """The pieces an append's sanitized operations add to a document.

    *last_role* is the role of the document's last message before the append, which an
    ``extend`` continues (None: the document has no message, and an ``extend`` then adds
    nothing, as :func:`sessionseal._events.apply` does). The vault does not read the
    document to append, so it passes the default: the importers extend only an agent's reply
    (docs/spec/fts-v1.md, "What is indexed"). A ``set`` adds nothing: see :func:`replaces_text`.
    """
    out: list[tuple[int, str]] = []
    role = last_role
    for op in ops:
        name, value = op.get("op"), op.get("value")
        if not isinstance(value, Mapping):
            continue
        if name == "message":
            out += message_fields(value)
            role = value.get("role") if isinstance(value.get("role"), str) else ""
        elif name == "extend" and role is not None:
            out += _blocks(value.get("content"), _role_field(role))
            if "role" in value:  # an extend may set the message's other keys
                role = value.get("role") if isinstance(value.get("role"), str) else ""
    return out


def replaces_text(before: Mapping[str, Any], ops: Sequence[Mapping[str, Any]]) -> bool:
    """Whether *ops* change an indexed field that a ``set`` replaces (:data:`REPLACED`) from
    its value in *before* (the stored summary, which carries them): the index cannot retract
    words, so the vault then indexes the whole session at a new generation."""
    now = {k: before.get(k) for k in REPLACED}
    after = dict(now)
    for op in ops:
        value = op.get("value")
        if op.get("op") == "set" and isinstance(value, Mapping):
            after.update({k: value.get(k) for k in REPLACED if k in value})
    return any((after[k] or "") != (now[k] or "") for k in REPLACED)
