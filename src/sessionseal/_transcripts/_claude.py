"""Claude Code session files (``~/.claude/projects/<project>/<session>.jsonl``) and their
sub-agent files, mapped into a session document (docs/importing.md).

Claude Code writes one record per line; a streamed reply comes as one record per content block
with the same message id, merged here into one message.  What is not mapped is kept verbatim.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

from ._document import CLAUDE, Doc, Transcript, interleave, no_records
from ._values import (
    Json,
    as_str,
    as_text,
    new_message,
    new_usage,
    other_block,
    parse_instant,
    read_lines,
    title_line,
    tool_arguments,
)

#: User text that Claude Code writes itself (slash commands, hook and shell echoes, notices).
_CLAUDE_BOILERPLATE: Final = (
    "<command-name>",
    "<command-message>",
    "<command-args>",
    "<local-command-stdout>",
    "<local-command-stderr>",
    "<local-command-caveat>",
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
#: A slash command as Claude Code records it: ``<command-name>/init</command-name>``, with
#: ``<command-message>`` and ``<command-args>`` tags around or after it, in either order.
_COMMAND_NAME: Final = re.compile(r"<command-name>\s*(/?[^<]*?)\s*</command-name>")
_COMMAND_ARGS: Final = re.compile(r"<command-args>(.*?)</command-args>", re.DOTALL)
#: The line a tool result keeps when Claude Code saved the whole output beside the transcript
#: (``<persisted-output>`` ... ``Full output saved to: <dir>/tool-results/<tool_use_id>.txt``;
#: anthropics/claude-code#23948).  Windows paths use backslashes.
_SAVED_TO: Final = re.compile(r"Full output saved to: *([^\r\n]+)")
#: The raw event kind of a tool-results file that no tool result of the transcript names.
TOOL_RESULTS_FILE: Final = "tool-results-file"
#: The record types of a Claude Code file (how it is told from a Codex rollout).
CLAUDE_KINDS: Final = frozenset({"user", "assistant", "summary", "system", "file-history-snapshot", "queue-operation"})


class _ClaudeMeta:
    """Session-wide facts of a Claude Code main file: id, directories, branch, version, summary."""

    def __init__(self) -> None:
        self.session_id: str | None = None
        self.first_cwd: str | None = None
        self.cwd: str | None = None
        self.branch: str | None = None
        self.version: str | None = None
        #: ``(leafUuid, summary)`` of each summary record, in file order.
        self.summaries: list[tuple[str | None, str]] = []
        #: The uuid of every record of the file: a summary titles it only if its leaf is one.
        self.uuids: set[str] = set()
        #: The first slash command (``/init args``): the title when no request was typed.
        self.command: str | None = None
        #: The last ``custom-title`` (``/rename``, ``--name``) and ``ai-title`` records' titles.
        self.named: dict[str, str] = {}

    def note(self, record: Json) -> None:
        if self.session_id is None:
            self.session_id = as_str(record.get("sessionId")) or None
        if cwd := as_str(record.get("cwd")):
            self.first_cwd = self.first_cwd or cwd
            self.cwd = cwd
        # An empty branch means "not a git checkout" at that moment: keep the last real one.
        self.branch = as_str(record.get("gitBranch")) or self.branch
        self.version = as_str(record.get("version")) or self.version
        if uid := as_str(record.get("uuid")):
            self.uuids.add(uid)
        for kind, key in (("custom-title", "customTitle"), ("ai-title", "aiTitle")):
            if record.get("type") == kind and (name := as_str(record.get(key))) and name.strip():
                self.named[kind] = name.strip()

    def title(self, first_text: str | None) -> str | None:
        """The title the user gave, else the one Claude Code gave (the Claude Agent SDK's session
        listing ranks them so: ``_internal/sessions.py``), else the session's own summary, else
        None (the first real request) or the first command.

        Claude Code writes ``summary`` records for the conversation that ends at ``leafUuid``;
        a resumed session's file starts with those of *earlier* conversations, whose leaves
        are in other files (anthropics/claude-code#2597): they do not describe this one.
        """
        if named := self.named.get("custom-title") or self.named.get("ai-title"):
            return named
        own = [text.strip() for leaf, text in self.summaries if leaf in self.uuids and text.strip()]
        if own:
            return own[-1]
        return None if first_text else self.command

    def note_command(self, text: str) -> None:
        if self.command is not None or not (name := _COMMAND_NAME.search(text)):
            return
        args = _COMMAND_ARGS.search(text)
        line = " ".join(filter(None, [name.group(1).strip(), args.group(1).strip() if args else ""]))
        self.command = title_line(line) or None


def parse_claude(
    path: Path, data: bytes, sidechains: dict[str, bytes] | None = None, tool_results: dict[str, str] | None = None
) -> Transcript:
    """Parse a Claude Code session file, with its sub-agent files (*sidechains*, by agent id)
    and the text of its tool-results files (*tool_results*, by file name: :func:`attach_tool_results`).

    :raises InvalidInput: no complete line of *data* is a JSON object.
    """
    lines = read_lines(data)
    if not lines.objects:
        raise no_records(path, "Claude Code")
    doc, meta = Doc(CLAUDE), _ClaudeMeta()
    doc.capture(lines, None)
    streams = [_claude_stream(doc, meta, lines.objects, None)]
    warnings = list(lines.warnings)
    side: Json = {}
    for agent, blob in sorted((sidechains or {}).items()):
        sl = read_lines(blob, f"sidechain {agent}: ")
        warnings += sl.warnings
        doc.capture(sl, agent)
        # Sub-agents run in the same checkout: their directories and branch add nothing.
        streams.append(_claude_stream(doc, _ClaudeMeta(), sl.objects, agent))
        side[agent] = {"records": sl.records, "consumed": sl.consumed}
    messages = interleave(streams)
    attach_tool_results(doc, messages, tool_results or {})
    warnings += doc.repeat_warnings()
    stem = path.name.removesuffix(".jsonl")
    # A sub-agent file names its parent session: read alone, it is known by its own name.
    source_id = stem if stem.startswith("agent-") else (meta.session_id or stem)
    source: Json = {"tool": CLAUDE, "source_id": source_id, "path": str(path)}
    source.update(records=lines.records, consumed=lines.consumed)
    if side:
        source["sidechains"] = side
    document = doc.document(
        messages,
        title=meta.title(doc.first_text),
        config={"git_branch": meta.branch, "tool_version": meta.version},
        source=source,
        workspace=meta.first_cwd,
        working_directory=meta.cwd,
    )
    return Transcript(CLAUDE, source_id, path, document, dict(doc.unknown), lines.records, lines.consumed, warnings)


def claude_message(record: Json) -> Json | None:
    """One record of a Claude Code transcript as a message by itself, or None when it is not a
    message: for records that come a batch at a time (the Claude Agent SDK's session store,
    sessionseal.integrations.claude_agent_sdk).  Unlike :func:`parse_claude`, the records of one
    streamed reply are not merged (each is a message of its blocks), and no tool history is kept."""
    kind, message = record.get("type"), record.get("message")
    if kind not in ("user", "assistant") or not isinstance(message, dict):
        return None
    stamp = record.get("timestamp")
    ts = stamp if isinstance(stamp, str) and parse_instant(stamp) is not None else None
    blocks = _claude_content(message.get("content"))
    if kind == "assistant":
        model = as_str(message.get("model")) or None
        m = new_message(
            record.get("uuid"), "assistant", blocks, ts, model=model, usage=_claude_usage(message.get("usage"))
        )
    else:
        role = "tool" if any(b["type"] == "tool_result" for b in blocks) else "user"
        m = new_message(record.get("uuid"), role, blocks, ts)
    if parent := as_str(record.get("parentUuid")):
        m["parent_id"] = parent
    return m


def _claude_stream(doc: Doc, meta: _ClaudeMeta, objects: list[tuple[int, Json]], agent: str | None) -> list[Json]:
    """The messages of one file (main or sub-agent), in file order; the rest goes to *doc*."""
    out: list[Json] = []
    by_api_id: dict[str, Json] = {}
    for n, record in objects:
        ts = doc.when(record.get("timestamp"))
        meta.note(record)
        kind, message = record.get("type"), record.get("message")
        sidechain = agent or _claude_sidechain(record)
        if kind in ("user", "assistant") and isinstance(message, dict):
            uid = as_str(record.get("uuid"))
            # The same record written twice (a resumed session replays its tail): the first wins.
            if uid is not None and doc.repeated("uuid", f"{agent}:{uid}", n, record, sidechain):
                continue
            m: Json | None
            if kind == "user":
                m = _claude_user(doc, meta, record, message, ts, sidechain=sidechain)
            else:
                m = _claude_assistant(doc, record, message, ts, by_api_id)
        elif kind == "summary" and isinstance(record.get("summary"), str):
            meta.summaries.append((as_str(record.get("leafUuid")), record["summary"]))
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


def attach_tool_results(doc: Doc, messages: list[Json], files: dict[str, str]) -> None:
    """Put the text of each tool-results file into the tool result it belongs to.

    Claude Code saves a large tool output to ``<session>/tool-results/<tool_use_id>.txt`` and
    keeps only a preview in the transcript (anthropics/claude-code#23948).  A result is paired
    with the file its text names (``Full output saved to: ...``), else with the file named
    after its ``tool_use_id``; its content becomes the whole output and the block keeps
    ``persisted_output``: the file name and what the transcript held (the preview).  A file
    that no result names (the agent stopped before writing the record) is kept as a raw event
    of kind ``tool-results-file`` with its name and text.
    """
    left = dict(files)
    for m in messages:
        for b in m["content"]:
            if b.get("type") != "tool_result":
                continue
            name = _saved_file(b["content"], files)
            if name is None and (cid := b.get("tool_call_id")) and f"{cid}.txt" in files:
                name = f"{cid}.txt"
            if name is None:
                continue
            b["persisted_output"] = {"file": name, "inline": b["content"]}
            b["content"] = files[name]
            left.pop(name, None)
    for name, text in sorted(left.items()):
        doc.raw.append(
            {"file": f"tool-results/{name}", "record": {"type": TOOL_RESULTS_FILE, "name": name, "text": text}}
        )


def _saved_file(content: Any, files: dict[str, str]) -> str | None:
    """The tool-results file a result's text names, if it is one of *files*."""
    texts = [content] if isinstance(content, str) else [b.get("text") for b in content if isinstance(b, dict)]
    for text in texts:
        if isinstance(text, str) and "Full output saved to:" in text and (found := _SAVED_TO.search(text)):
            name = re.split(r"[\\/]", found.group(1).strip())[-1]
            if name in files:
                return name
    return None


def _claude_sidechain(record: Json) -> str | None:
    # Versions before sub-agent files wrote sidechain records into the main file.
    if record.get("isSidechain") is not True:
        return None
    return as_str(record.get("agentId")) or "sidechain"


def _claude_kind(record: Json) -> str:
    kind, subtype = record.get("type"), record.get("subtype")
    if not isinstance(kind, str):
        return "(no type)"
    return f"{kind}:{subtype}" if kind == "system" and isinstance(subtype, str) else kind


def _claude_user(
    doc: Doc, meta: _ClaudeMeta, record: Json, message: Json, ts: str | None, *, sidechain: str | None
) -> Json:
    """A user record: the user's words, or (tool_result blocks) what tools returned."""
    blocks = _claude_content(message.get("content"))
    results = [b for b in blocks if b["type"] == "tool_result"]
    for b in results:
        doc.finished(b["tool_call_id"], ts, b["is_error"])
    m = new_message(record.get("uuid"), "tool" if results else "user", blocks, ts)
    if parent := as_str(record.get("parentUuid")):
        m["parent_id"] = parent
    if record.get("isMeta") is True:
        m["meta"] = True
    if record.get("isCompactSummary") is True:
        m["compact_summary"] = True
    elif not results and "meta" not in m and sidechain is None:
        # Only the main conversation names the session: a sub-agent's prompt is the model's.
        for b in blocks:
            if b["type"] == "text":
                meta.note_command(b["text"])
                if doc.offer_title(b["text"], _CLAUDE_BOILERPLATE):
                    break
    return m


def _claude_assistant(doc: Doc, record: Json, message: Json, ts: str | None, merged: dict[str, Json]) -> Json | None:
    """An assistant record.  Claude Code writes one record per content block of a streamed
    reply, each with the same ``message.id``: they are merged into the first one's message
    (and the usage, repeated on each, is counted once).  None when merged."""
    blocks = _claude_content(message.get("content"))
    for b in blocks:
        if b["type"] == "tool_call":
            doc.started(b["id"], ts)
    model = doc.use_model(message.get("model"))
    usage = _claude_usage(message.get("usage"))
    api_id = as_str(message.get("id"))
    if api_id is not None and api_id in merged:
        first = merged[api_id]
        first["content"].extend(blocks)
        if usage is not None:
            old = first["usage"]
            # The streamed copies differ only in how far the count had got: take the largest.
            first["usage"] = usage if old is None else {k: max(old[k], usage[k]) for k in usage}
        return None
    m = new_message(record.get("uuid"), "assistant", blocks, ts, model=model, usage=usage)
    if parent := as_str(record.get("parentUuid")):
        m["parent_id"] = parent
    if api_id is not None:
        merged[api_id] = m
    return m


def _claude_compaction(record: Json, ts: str | None) -> Json:
    """A compact boundary: the conversation before it was summarized (the summary follows)."""
    meta = record.get("compactMetadata")
    text = {"type": "text", "text": "[conversation compacted]"}
    return new_message(
        record.get("uuid"), "system", [text], ts, compaction=dict(meta) if isinstance(meta, dict) else {}
    )


def _claude_usage(value: Any) -> Json | None:
    if not isinstance(value, dict):
        return None
    return new_usage(
        value.get("input_tokens"),
        value.get("output_tokens"),
        value.get("cache_read_input_tokens"),
        value.get("cache_creation_input_tokens"),
    )


def _claude_content(content: Any) -> list[Json]:
    if isinstance(content, list):
        return [_claude_block(b) for b in content]
    return [] if content is None else [{"type": "text", "text": as_text(content)}]


def _claude_block(block: Any) -> Json:
    """An Anthropic content block as a sessionseal block."""
    if not isinstance(block, dict):
        return {"type": "text", "text": as_text(block)}
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": as_text(block.get("text"))}
    if kind == "thinking":
        # The signature is an opaque blob that lets the API verify the thinking: of no use here.
        return {"type": "thinking", "text": as_text(block.get("thinking"))}
    if kind == "tool_use":
        return {
            "type": "tool_call",
            "id": as_str(block.get("id")),
            "name": as_text(block.get("name")),
            "arguments": tool_arguments(block.get("input")),
        }
    if kind == "tool_result":
        content = block.get("content")
        return {
            "type": "tool_result",
            "tool_call_id": as_str(block.get("tool_use_id")),
            "content": [_claude_block(b) for b in content] if isinstance(content, list) else as_text(content),
            "is_error": block.get("is_error") is True,
        }
    return other_block(block)
