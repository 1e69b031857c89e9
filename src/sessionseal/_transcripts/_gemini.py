"""Gemini CLI sessions, mapped into a session document (docs/capture/gemini.md).

Where and how Gemini CLI writes them (``google-gemini/gemini-cli``, read for this module):

* ``packages/core/src/services/chatRecordingService.ts`` and ``chatRecordingTypes.ts``: a
  ``ConversationRecord`` is ``{sessionId, projectHash, startTime, lastUpdated, messages,
  summary?, directories?, kind?}``; each ``MessageRecord`` has ``id``, ``timestamp``,
  ``content`` (a ``PartListUnion``: a string, or ``{text}``, ``{inlineData}``,
  ``{functionResponse}``... parts), ``displayContent?`` and a ``type``: ``user``, ``info``,
  ``error``, ``warning``, or ``gemini`` with ``thoughts`` (``{subject, description,
  timestamp}``), ``tokens`` (``{input, output, cached, thoughts?, tool?, total}``, from the
  API's ``promptTokenCount``, ``candidatesTokenCount``, ``cachedContentTokenCount``,
  ``thoughtsTokenCount``, ``toolUsePromptTokenCount``, ``totalTokenCount``), ``model`` and
  ``toolCalls`` (``{id, name, args, result?, status, timestamp, displayName?, description?,
  resultDisplay?}``).
* Older releases write the record as one JSON document, ``JSON.stringify(record, null, 2)``
  with ``fs.writeFileSync`` (no trailing newline, not atomic), **rewritten whole** on every
  change: ``chats/session-<YYYY-MM-DDTHH-MM>-<first 8 of the id>.json``.  The last message
  changes in place (its tool calls, then its token counts, are added to it after it is
  first written), so a file that grew is not always one whose old part is unchanged.
* Newer releases append JSON lines to ``session-*.jsonl``: a first metadata line
  (``sessionId``, ``projectHash``, ...), then message records, where a record whose ``id``
  was seen before replaces that message in place, ``{"$set": {...}}`` updates the metadata
  (``messages`` in it replaces the whole list), and ``{"$rewindTo": id}`` drops that message
  and every later one.  Resuming an older ``.json`` session migrates it to ``<name>.jsonl``
  beside it (the ``.json`` is left).  Sub-agents write ``chats/<parent id>/<id>.jsonl``
  (``kind: "subagent"``): read here with their main session, as Claude Code's sidechains are.
* ``packages/core/src/config/storage.ts``, ``projectRegistry.ts`` and ``utils/paths.ts``:
  ``~/.gemini/tmp/<project>/chats/``, where ``<project>`` is a short slug listed in
  ``~/.gemini/projects.json`` (older releases: the SHA-256 of the project root), the slug
  directory holds ``.project_root`` (the project's path), and ``$GEMINI_CLI_HOME`` replaces
  the home directory (``$GEMINI_CLI_HOME/.gemini``).

Token counts are stored as the other tools' are (docs/capture/gemini.md): ``input_tokens`` is
what was read without the cache (``input - cached + tool``), ``cache_read_tokens`` the cached
part, ``output_tokens`` what was written including thoughts (``output + thoughts``); the
thought and total counts are kept beside them (``reasoning_tokens``, ``total_tokens``).

A whole-file rewrite has no byte offset to resume from, so the source record holds two
digests of the mapped messages: ``digest``, of their structure (ids, types, statuses, names,
numbers, the shape), and ``text_digest``, of all of them.  The next import appends only when
the messages stored are, unchanged, the first ones of the new read (:func:`grew_in_place`):
both digests must match, except for a file ``resume --into gemini`` wrote back, whose text is
the vault's sanitized copy: there the structure must match, and what the agent added is
appended.  A text changed in place in Gemini's own file is never taken for growth (it would
keep the old text in the vault while ``--remove-originals`` removed the new).

Source records (``resume --into gemini`` writes them back, docs/capture/resume.md): of a
``.jsonl`` file, each JSON line, as for the other tools; of a ``.json`` document, its top-level
fields first (line 0, with ``messages`` as ``[]`` where the list was, keeping the key order),
then each message (lines 1..n).  Both only grow at the end while the session only grows, so an
append stores only the new ones.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ..errors import InvalidInput
from ._document import GEMINI, Doc, Transcript, interleave
from ._values import (
    Json,
    Lines,
    as_str,
    as_text,
    decode_json,
    new_message,
    new_usage,
    other_block,
    read_lines,
    tool_arguments,
)

#: A slash command (``/init``, ``/memory add``): never the title.  A path (``/home/x``) is text.
_SLASH_COMMAND: Final = re.compile(r"/[A-Za-z][\w:-]*(?:\s|$)")
#: Tool call outcomes that are failures (the scheduler's ``Status``).
_FAILED: Final = frozenset({"error", "cancelled"})
#: The notices Gemini CLI records beside the conversation.
_NOTICES: Final = frozenset({"info", "error", "warning"})
#: The id that opens a legacy (pretty-printed) session file, as ``JSON.stringify`` writes it first.
_HEAD_ID: Final = re.compile(rb'\A\s*\{\s*"sessionId"\s*:\s*"([^"\\]{1,200})"')
#: Token counts above this are noise (a corrupt record): they count as 0.
_MAX_TOKENS: Final = 1 << 40


def parse_gemini(
    path: Path, data: bytes, project_root: str | None = None, sidechains: dict[str, bytes] | None = None
) -> Transcript:
    """Parse a Gemini CLI session file, either form (one JSON document, or JSON lines), with
    its sub-agent files (*sidechains*, by sub-agent session id), interleaved by time.

    *project_root* is the project's directory when known (the ``.project_root`` beside the
    ``chats`` directory): Gemini's records name only its hash.

    :raises InvalidInput: *data* is neither one complete JSON document nor JSON lines that
        hold a record (a ``.json`` file being rewritten is refused; the next import reads it).
    """
    session = _Session.read(path, data)
    doc = Doc(GEMINI)
    doc.capture(session.lines, None)
    streams = [_stream(doc, session, None)]
    warnings = list(session.warnings)
    side: Json = {}
    for agent, blob in sorted((sidechains or {}).items()):
        try:
            sub = _Session.read(Path(f"{agent}.jsonl"), blob)
        except InvalidInput:
            # Recorded as nothing read: its file is then kept, and the main file with it.
            warnings.append(f"sub-agent {agent}: no complete record yet")
            side[agent] = {"records": 0, "consumed": 0}
            continue
        warnings += [f"sub-agent {agent}: {w}" for w in sub.warnings]
        doc.capture(sub.lines, agent)
        streams.append(_stream(doc, sub, agent))
        side[agent] = {"records": sub.records, "consumed": sub.consumed}
    messages = interleave(streams)
    meta = session.meta
    doc.when(meta.get("startTime"))
    updated = doc.when(meta.get("lastUpdated"))
    source_id = session.session_id or path.name.removesuffix(".jsonl").removesuffix(".json")
    source: Json = {"tool": GEMINI, "source_id": source_id, "path": str(path), "form": session.form}
    source.update(
        records=session.records,
        consumed=session.consumed,
        digest=messages_digest(messages),
        text_digest=messages_digest(messages, text=True),
    )
    if updated is not None:
        # Gemini's own "last written" time (a tool call's time may be later: it is set after
        # its message is written): an older .json and its .jsonl are compared by it.
        source["last_updated"] = updated
    if side:
        source["sidechains"] = side
    config: Json = {"project_hash": as_str(meta.get("projectHash")) or None, "gemini_kind": as_str(meta.get("kind"))}
    directories = meta.get("directories")
    if isinstance(directories, list) and directories and all(isinstance(d, str) for d in directories):
        config["directories"] = directories
    summary = as_str(meta.get("summary"))
    document = doc.document(
        messages,
        title=summary.strip() if summary and summary.strip() else None,
        config=config,
        source=source,
        workspace=project_root,
        working_directory=project_root,
    )
    unknown = dict(doc.unknown)
    return Transcript(GEMINI, source_id, path, document, unknown, session.records, session.consumed, warnings)


def _stream(doc: Doc, session: _Session, agent: str | None) -> list[Json]:
    """The messages of one file (the main session or a sub-agent's), in conversation order."""
    out: list[Json] = []
    for n, record in session.messages:
        for m in _message(doc, n, record, agent):
            if agent is not None:
                m["sidechain"] = agent
            out.append(m)
    return out


def gemini_source_id(path: Path, head: bytes) -> str | None:
    """The session id from the first bytes of a session file (either form), or None when the
    head does not say (then a full read decides)."""
    if (m := _HEAD_ID.match(head)) is not None:
        return m.group(1).decode("utf-8", "replace") if b"\\" not in m.group(1) else None
    cut = head[: head.rfind(b"\n") + 1]
    for _n, record in read_lines(cut).objects:
        if isinstance(sid := record.get("sessionId"), str) and sid:
            return sid
        if isinstance(record.get("id"), str):
            break  # messages: the metadata line was not first
    whole = decode_json(head)
    if isinstance(whole, dict) and isinstance(sid := whole.get("sessionId"), str) and sid:
        return sid
    return None


#: The strings a message's digest keeps (:func:`messages_digest`): what names and places it,
#: never what the sanitizer may rewrite (text, arguments, results).
_DIGEST_KEYS: Final = frozenset(
    {"id", "type", "role", "status", "name", "tool_call_id", "model", "timestamp", "notice"}
)


def _structure(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _structure(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_structure(v) for v in value]
    if isinstance(value, str):
        return value if key in _DIGEST_KEYS else None
    return value


def messages_digest(messages: list[Json], *, text: bool = False) -> str:
    """A digest of mapped messages' structure (the test of :func:`grew_in_place`): their ids,
    types, roles, tool statuses and names, times, token counts, and the shape of every field,
    and with *text* their text too.  What Gemini CLI changes in a message it wrote (a reply's
    tool calls, their status, its token counts; a rewind or a compression: other ids) changes
    the structure; the sanitizer's placeholders change only the text."""
    h = hashlib.sha256()
    for m in messages:
        h.update(
            json.dumps(m if text else _structure(m), sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
        )
        h.update(b"\n")
    return "sha256:" + h.hexdigest()


def grew_in_place(old: Mapping[str, Any], doc: Mapping[str, Any], *, written_back: bool = False) -> bool:
    """Whether a session file rewritten in place only gained messages since the import that
    recorded *old* (its ``source``): the messages stored then are, unchanged, the first ones
    of *doc*.  A message changed since (a tool result or a token count added to the last
    reply, a rewind, a compression, a text) makes it False: the session is then stored anew.
    *written_back*: the file is one ``resume --into gemini`` wrote from the vault's sanitized
    copy, whose text differs from the original's where a secret was: its structure must match."""
    count, digest = old.get("messages"), old.get("digest")
    messages = doc.get("messages") or []
    if not isinstance(count, int) or isinstance(count, bool) or not isinstance(digest, str):
        return False
    if not 0 <= count <= len(messages) or messages_digest(messages[:count]) != digest:
        return False
    text = old.get("text_digest")
    # A source stored before text digests were kept has none: the structure alone decides.
    return written_back or not isinstance(text, str) or messages_digest(messages[:count], text=True) == text


class _Session:
    """The records of a session file, resolved as Gemini CLI's own loader resolves them."""

    def __init__(self, form: str) -> None:
        self.form = form
        self.meta: Json = {}
        self.session_id: str | None = None
        #: (line or position, record) of each message by id; the records without one.
        self.by_id: dict[str, tuple[float, Json]] = {}
        self.others: list[tuple[float, Json]] = []
        self.records = 0
        self.consumed = 0
        self.warnings: list[str] = []
        #: The source records (see the module docstring): a .jsonl file's lines, a .json
        #: document's fields then its messages.
        self.lines = Lines()

    @property
    def messages(self) -> list[tuple[float, Json]]:
        return sorted([*self.by_id.values(), *self.others], key=lambda item: item[0])

    @classmethod
    def read(cls, path: Path, data: bytes) -> _Session:
        whole = decode_json(data) if data.lstrip()[:1] == b"{" and not path.name.endswith(".jsonl") else None
        if isinstance(whole, dict) and ("messages" in whole or path.name.endswith(".json")):
            return cls._document(whole, len(data))
        if path.name.endswith(".json"):
            raise InvalidInput(f"{path}: not one complete JSON document (Gemini CLI may be rewriting it)")
        lines = read_lines(data)
        if not lines.objects:
            raise InvalidInput(f"{path}: not a Gemini CLI session (no complete line is a JSON object)")
        s = cls("jsonl")
        s.records, s.consumed, s.warnings, s.lines = lines.records, lines.consumed, list(lines.warnings), lines
        for n, record in lines.objects:
            s._line(n, record)
        return s

    @classmethod
    def _document(cls, record: Json, size: int) -> _Session:
        s = cls("json")
        s.consumed = size
        s._meta({k: v for k, v in record.items() if k != "messages"})
        messages = record.get("messages")
        # The fields with the list left empty where it was (the writer puts the messages back there).
        s.lines.objects.append((0, {k: [] if k == "messages" else v for k, v in record.items()}))
        if isinstance(messages, list):
            s.records = len(messages)
            for i, m in enumerate(messages, 1):
                s._message(i, m)
                if isinstance(m, dict):
                    s.lines.objects.append((i, m))
        else:
            s.warnings.append("its messages are not a list")
        return s

    def _meta(self, values: Json) -> None:
        if self.session_id is None and isinstance(sid := values.get("sessionId"), str) and sid:
            self.session_id = sid
        self.meta.update(values)

    def _message(self, n: float, record: Any) -> None:
        mid = record.get("id") if isinstance(record, dict) else None
        if isinstance(mid, str):
            old = self.by_id.get(mid)
            # A record written again replaces the message where it first was (Gemini's Map.set).
            self.by_id[mid] = (old[0] if old is not None else n, record)
        else:
            self.others.append((n, record if isinstance(record, dict) else {"value": record}))

    def _line(self, n: int, record: Json) -> None:
        rewind, update = record.get("$rewindTo"), record.get("$set")
        if isinstance(rewind, str):
            self._rewind(rewind)
        elif isinstance(update, dict):
            replaced = update.get("messages")
            self._meta({k: v for k, v in update.items() if k != "messages"})
            if isinstance(replaced, list):
                self.by_id, self.others = {}, []
                for i, m in enumerate(replaced):
                    # Placed at this line, in their order: before any message written later.
                    self._message(n + i / (len(replaced) + 1), m)
        elif isinstance(record.get("id"), str):
            self._message(n, record)
        elif isinstance(record.get("sessionId"), str):
            self._meta(record)
        else:
            self.others.append((n, record))

    def _rewind(self, mid: str) -> None:
        """Drop message *mid* and every later one (all of them when it is unknown, as Gemini does)."""
        if mid not in self.by_id:
            self.by_id.clear()
            return
        cut = self.by_id[mid][0]
        self.by_id = {k: v for k, v in self.by_id.items() if v[0] < cut}


def _message(doc: Doc, n: float, record: Json, agent: str | None) -> list[Json]:
    """One message record as sessionseal messages (a reply with tool results gives two)."""
    kind = as_str(record.get("type"))
    ts = doc.when(record.get("timestamp"))
    if kind == "user":
        blocks = _content(record.get("content"))
        m = new_message(record.get("id"), "user", blocks, ts)
        if "displayContent" in record and record["displayContent"] is not None:
            m["display"] = _content(record["displayContent"])
        # Only the main conversation names the session: a sub-agent's prompt is the model's.
        shown = (m.get("display") or blocks) if agent is None else []
        for b in shown:
            if b["type"] == "text" and not _SLASH_COMMAND.match(b["text"].lstrip()) and doc.offer_title(b["text"], ()):
                break
        return [m]
    if kind == "gemini":
        return _reply(doc, record, ts)
    if kind in _NOTICES:
        return [new_message(record.get("id"), "system", _content(record.get("content")), ts, notice=kind)]
    doc.keep(f"message:{kind}" if kind is not None else "(no type)", int(n), record, agent)
    return []


def _reply(doc: Doc, record: Json, ts: str | None) -> list[Json]:
    """A ``gemini`` record: thoughts, text and tool calls; the calls' results follow as a tool message."""
    blocks: list[Json] = []
    thoughts = record.get("thoughts")
    for t in thoughts if isinstance(thoughts, list) else []:
        if isinstance(t, dict):
            text = "\n".join(s for k in ("subject", "description") if (s := as_text(t.get(k)).strip()))
            blocks.append(
                {"type": "thinking", "text": text, **({"timestamp": t["timestamp"]} if "timestamp" in t else {})}
            )
    blocks += _content(record.get("content"))
    results: list[Json] = []
    calls = record.get("toolCalls")
    last_ts = ts
    for call in calls if isinstance(calls, list) else []:
        if not isinstance(call, dict):
            blocks.append(other_block({"type": "toolCall", "value": call}))
            continue
        cid = as_str(call.get("id"))
        block: Json = {
            "type": "tool_call",
            "id": cid,
            "name": as_text(call.get("name")),
            "arguments": tool_arguments(call.get("args")),
        }
        for key in ("status", "displayName", "description", "agentId"):
            if call.get(key) is not None:
                block[key] = call[key]
        blocks.append(block)
        doc.started(cid, ts)
        status = as_str(call.get("status"))
        if "result" in call and call["result"] is not None:
            done = doc.when(call.get("timestamp")) or ts
            failed = status in _FAILED
            result: Json = {
                "type": "tool_result",
                "tool_call_id": cid,
                "content": _result(call["result"]),
                "is_error": failed,
            }
            if call.get("resultDisplay") is not None:
                result["display"] = call["resultDisplay"]
            results.append(result)
            doc.finished(cid, done, failed)
            last_ts = done
        elif status in ("success", *_FAILED):
            doc.finished(cid, doc.when(call.get("timestamp")) or ts, status in _FAILED)
    model = doc.use_model(record.get("model"))
    reply = new_message(record.get("id"), "assistant", blocks, ts, model=model, usage=_usage(record.get("tokens")))
    if not results:
        return [reply]
    rid = as_str(record.get("id"))
    return [reply, new_message(f"{rid}:results" if rid else None, "tool", results, last_ts)]


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_TOKENS:
        return 0
    return value


def _usage(tokens: Any) -> Json | None:
    """Gemini's counts as the other tools' (see the module docstring): the prompt count
    includes the cached part; the thoughts are written output."""
    if not isinstance(tokens, dict):
        return None
    prompt, cached, tool = _count(tokens.get("input")), _count(tokens.get("cached")), _count(tokens.get("tool"))
    thoughts = _count(tokens.get("thoughts"))
    usage = new_usage(max(prompt - cached, 0) + tool, _count(tokens.get("output")) + thoughts, min(cached, prompt), 0)
    usage.update(reasoning_tokens=thoughts, total_tokens=_count(tokens.get("total")))
    return usage


def _content(content: Any) -> list[Json]:
    """A ``PartListUnion``: a string, one part, or a list of parts (each a string or a part)."""
    if content is None or content == "":
        return []
    parts = content if isinstance(content, list) else [content]
    out: list[Json] = []
    for p in parts:
        if isinstance(p, str):
            out.append({"type": "text", "text": p})
        elif isinstance(p, dict) and isinstance(p.get("text"), str) and "type" not in p:
            out.append({"type": "thinking" if p.get("thought") is True else "text", "text": p["text"]})
        elif isinstance(p, dict):
            out.append(_part(p))
        else:
            out.append({"type": "text", "text": as_text(p)})
    return out


def _part(part: Json) -> Json:
    """A non-text part, kept as it is (its inline data replaced by its length): typed by its key."""
    keys = [k for k in part if k not in ("thought", "thoughtSignature")]
    kind = keys[0] if len(keys) == 1 and not isinstance(part.get("type"), str) else part.get("type")
    if isinstance(kind, str) and kind != "type":
        return other_block({**part, "type": kind} if "type" not in part else part)
    return other_block(part)


def _result(result: Any) -> str | list[Json]:
    """A tool call's result: its text when it is one function response (``response.output``,
    else ``response.error``), else its parts as blocks."""
    if isinstance(result, str):
        return result
    parts = result if isinstance(result, list) else [result]
    texts: list[str] = []
    for p in parts:
        response = p.get("functionResponse") if isinstance(p, dict) else None
        response = response.get("response") if isinstance(response, dict) else None
        if isinstance(response, dict) and isinstance(out := response.get("output", response.get("error")), str):
            texts.append(out)
        elif isinstance(p, dict) and isinstance(p.get("text"), str) and len(p) == 1:
            texts.append(p["text"])
        else:
            return _content(result)
    return "\n".join(texts)
