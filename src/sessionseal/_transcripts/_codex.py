"""Codex CLI rollouts (``~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl``, and ``.jsonl.zst``
once compressed), in the envelope format or the legacy one, mapped into a session document
(docs/importing.md).  The decompression is done by the reader (:mod:`._files`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from ._document import CODEX, Doc, Transcript, no_records
from ._values import Json, as_str, as_text, decode_json, new_message, new_usage, other_block, read_lines, tool_arguments

#: The first line of the plain-text output of Codex's newer shell tools.
_EXIT_CODE: Final = re.compile(r"Exit code: (-?[0-9]{1,9})")
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
CODEX_ENVELOPES: Final = frozenset({"session_meta", "turn_context", "response_item", "event_msg", "compacted"})
#: Bare response items of the legacy rollout format (no envelope).
CODEX_LEGACY_ITEMS: Final = frozenset(
    {"message", "reasoning", "function_call", "function_call_output", "local_shell_call", "custom_tool_call"}
)


def parse_codex(path: Path, data: bytes) -> Transcript:
    """Parse a Codex rollout, in the envelope format or the legacy one (bare items).

    :raises InvalidInput: no complete line of *data* is a JSON object.
    """
    lines = read_lines(data)
    if not lines.objects:
        raise no_records(path, "Codex")
    rollout = _Codex(Doc(CODEX))
    rollout.doc.capture(lines, None)
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
    warnings = lines.warnings + doc.repeat_warnings()
    return Transcript(CODEX, source_id, path, document, unknown, lines.records, lines.consumed, warnings)


class _Codex:
    """The state of a rollout being read: one method per record family."""

    def __init__(self, doc: Doc) -> None:
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
        #: The user's prompts since the model last answered, by where they came from
        #: (``item``: a response item, ``event``: a ``user_message`` event) and their text:
        #: Codex writes each prompt both ways, some releases only as the event (:meth:`_prompt`).
        self.prompts: list[tuple[str, frozenset[str]]] = []
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
        self.session_id = as_str(meta.get("id")) or None
        self.meta_cwd = as_str(meta.get("cwd")) or None
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
        self.cwd = as_str(turn.get("cwd")) or self.cwd
        self.doc.use_model(turn.get("model"))
        for key, value in (
            ("approval_policy", turn.get("approval_policy")),
            ("sandbox_policy", turn.get("sandbox_policy")),
            ("reasoning_effort", turn.get("effort")),
        ):
            if value is not None:
                self.config[key] = value

    def response_item(self, n: int, record: Json, item: Json, ts: str | None) -> None:
        """A conversation item: a message, reasoning, a tool call or a tool's output.  An item
        whose id an earlier item of its type had is that item again: the first wins."""
        kind, iid = item.get("type"), as_str(item.get("id"))
        if iid and self.doc.repeated("item id", f"{kind}:{iid}", n, record):
            return
        if kind == "message":
            self._message(n, record, item, ts)
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
        """UI events.  They repeat the response items, but for token counts (the only usage)
        and for prompts that only an event records (:meth:`_user_event`)."""
        kind, info = event.get("type"), event.get("info")
        if kind == "user_message":
            self._user_event(n, record, event, ts)
        elif kind != "token_count":
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
        text = {"type": "text", "text": as_text(payload.get("message"))}
        self._add(new_message(None, "system", [text], ts, compaction={}))

    def _message(self, n: int, record: Json, item: Json, ts: str | None) -> None:
        role = item.get("role")
        role = role if isinstance(role, str) and 0 < len(role) <= 64 else "unknown"
        blocks = _codex_content(item.get("content"))
        if role == "assistant":
            self._reply(item, ts)["content"] += blocks
            return
        self.open = None
        if role == "user":
            texts = [b["text"] for b in blocks if b["type"] == "text"]
            keys = {t.strip() for t in texts} | {"\n".join(texts).strip()}
            if not self._prompt("item", keys):
                self.doc.keep("response_item:message", n, record)  # its event came first
                return
            self._user(item.get("id"), blocks, ts, texts)
            return
        self._add(new_message(item.get("id"), role, blocks, ts))

    def _user_event(self, n: int, record: Json, event: Json, ts: str | None) -> None:
        """A prompt as the UI event records it: ``message``, the images sent with it
        (``images``: URLs, inline data included; ``local_images``: paths) and, in older
        releases, ``kind`` (``plain``, ``user_instructions``, ``environment_context``).
        Codex writes it right after the prompt's response item (``openai/codex``
        codex-rs/core ``record_user_prompt_and_emit_turn_item``; both are persisted, per
        codex-rs/rollout ``policy.rs``), and some releases (Codex Desktop 0.128) only this."""
        text = as_text(event.get("message"))
        if not self._prompt("event", {text.strip()}):
            self.doc.keep("event_msg:user_message", n, record)  # the response item said it
            return
        blocks: list[Json] = [{"type": "text", "text": text}] if text else []
        images, paths = event.get("images"), event.get("local_images")
        blocks += [other_block({"type": "input_image", "image_url": u}) for u in _listed(images)]
        blocks += [other_block({"type": "local_image", "path": p}) for p in _listed(paths)]
        kind = event.get("kind")
        self._user(None, blocks, ts, [text] if text else [], meta=kind in ("user_instructions", "environment_context"))

    def _prompt(self, origin: str, keys: set[str]) -> bool:
        """Whether a prompt is new: not the other record of one already taken (same text,
        since the model last answered, from the other origin), which it then pairs with."""
        for i, (other, seen) in enumerate(self.prompts):
            if other != origin and not keys.isdisjoint(seen):
                del self.prompts[i]
                return False
        self.prompts.append((origin, frozenset(keys)))
        return True

    def _user(self, mid: Any, blocks: list[Json], ts: str | None, texts: list[str], *, meta: bool = False) -> None:
        self.open = None  # a prompt ends the reply before it
        m = new_message(mid, "user", blocks, ts)
        if meta or (texts and all(t.lstrip().startswith(_CODEX_BOILERPLATE) for t in texts)):
            m["meta"] = True
        else:
            for t in texts:
                if self.doc.offer_title(t, _CODEX_BOILERPLATE):
                    break
        self.messages.append(m)

    def _add(self, m: Json) -> None:
        """Add a message that is not the user's: the prompts before it are answered."""
        self.prompts.clear()
        self.messages.append(m)

    def _reply(self, item: Json, ts: str | None) -> Json:
        if self.open is None:
            self.open = new_message(item.get("id"), "assistant", [], ts, model=self.doc.model)
            self._add(self.open)
            self.last_reply = self.open
        return self.open

    def _call(self, item: Json, ts: str | None) -> None:
        kind = item.get("type")
        cid = as_str(item.get("call_id")) or as_str(item.get("id"))
        if kind == "function_call":
            name, arguments = as_text(item.get("name")), tool_arguments(item.get("arguments"))
        elif kind == "custom_tool_call":
            name, arguments = as_text(item.get("name")), tool_arguments(item.get("input"))
        else:  # local_shell_call, web_search_call: the action is the argument
            name, arguments = str(kind).removesuffix("_call"), tool_arguments(item.get("action"))
        block: Json = {"type": "tool_call", "id": cid, "name": name, "arguments": arguments}
        if kind == "web_search_call" and isinstance(item.get("status"), str):
            block["status"] = item["status"]  # it has no output item: this is its outcome
        self._reply(item, ts)["content"].append(block)
        self.doc.started(cid, ts)

    def _output(self, item: Json, ts: str | None) -> None:
        self.open = None
        cid = as_str(item.get("call_id"))
        content, is_error, metadata = _codex_output(item.get("output"))
        block: Json = {"type": "tool_result", "tool_call_id": cid, "content": content, "is_error": is_error}
        if metadata is not None:
            block["metadata"] = metadata
        self.doc.finished(cid, ts, is_error)
        self._add(new_message(item.get("id"), "tool", [block], ts))


def _codex_reasoning(item: Json) -> list[str]:
    """The readable part of a reasoning item: its summaries, else raw reasoning text (models
    that expose it); the encrypted content is opaque and dropped."""
    for key, kind in (("summary", "summary_text"), ("content", "reasoning_text")):
        parts = item.get(key)
        if isinstance(parts, list):
            texts = [
                p["text"] for p in parts if isinstance(p, dict) and p.get("type") == kind and as_str(p.get("text"))
            ]
            if texts:
                return texts
    return []


def _codex_usage(value: Json) -> Json:
    """Codex's counts in sessionseal's convention, Claude's (docs/capture/codex.md): OpenAI
    counts cached input inside ``input_tokens`` (``cached_input_tokens`` is the part of it
    served from cache: ``openai/codex`` codex-rs/protocol ``TokenUsage::non_cached_input`` is
    their difference), Anthropic does not; so ``input_tokens`` here is the input that was not
    cached, and ``cache_read_tokens`` the cached part.  ``output_tokens`` includes reasoning
    tokens in both (``reasoning_output_tokens`` is the part of it spent reasoning)."""
    total, cached = _count(value.get("input_tokens")), _count(value.get("cached_input_tokens"))
    return new_usage(max(total - cached, 0), value.get("output_tokens"), min(cached, total), 0)


def _count(value: Any) -> int:
    count: int = new_usage(value, 0, 0, 0)["input_tokens"]  # the same bounds as every count
    return count


def _listed(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _codex_content(content: Any) -> list[Json]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        return [] if content is None else [{"type": "text", "text": as_text(content)}]
    out: list[Json] = []
    for c in content:
        if isinstance(c, dict) and c.get("type") in ("input_text", "output_text", "text"):
            out.append({"type": "text", "text": as_text(c.get("text"))})
        elif isinstance(c, dict):
            out.append(other_block(c))
        else:
            out.append({"type": "text", "text": as_text(c)})
    return out


def _codex_output(output: Any) -> tuple[str | list[Json], bool, Json | None]:
    """A tool's output: its text, whether it failed, and the metadata Codex wrapped it in.

    Shell tools wrote ``{"output": ..., "metadata": {"exit_code": ...}}`` as a string; newer
    ones write plain text that starts ``Exit code: N``; some outputs are content items.
    """
    if isinstance(output, list):
        return _codex_content(output), False, None
    if not isinstance(output, str):
        return as_text(output), False, None
    if output.lstrip().startswith("{"):
        parsed = decode_json(output)
        if isinstance(parsed, dict) and "output" in parsed:
            metadata = parsed.get("metadata")
            metadata = metadata if isinstance(metadata, dict) else None
            code = metadata.get("exit_code") if metadata is not None else None
            failed = isinstance(code, int) and not isinstance(code, bool) and code != 0
            return as_text(parsed["output"]), failed, metadata
    if match := _EXIT_CODE.match(output):
        return output, int(match.group(1)) != 0, None
    return output, False, None
