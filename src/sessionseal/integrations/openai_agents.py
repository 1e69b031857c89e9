"""The OpenAI Agents SDK's ``Session``, kept in a sessionseal vault
(docs/integrations/openai-agents.md).

``Runner.run(agent, "...", session=SealedSession("user-42", vault))``: the SDK reads the
history with :meth:`SealedSession.get_items` before a turn and stores the turn's new items with
:meth:`SealedSession.add_items` after it.  The SDK's ``Session`` is a ``typing.Protocol`` (its
``SessionABC`` is for its own stores), so this module imports nothing of the SDK.

One vault session per SDK ``session_id``, its id a uuid5 of it; the items are its source
records, verbatim but sanitized, in the order they were added: ``{"record": item}``.  A batch
of :meth:`add_items` is one append group: all of it is stored, or none.  :meth:`pop_item` writes
a new version of the session without its last item; :meth:`clear_session` crypto-erases the
session (``Vault.delete``).  A resumed conversation sees ``[REDACTED:...]`` where a secret was.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import orjson

from .._async import AsyncVault
from .._vault import Vault
from ..errors import InvalidInput
from . import _core

if TYPE_CHECKING:
    from ..models import Session

__all__ = ["NAMESPACE", "TAG", "TOOL", "SealedSession"]

#: Vault session ids of SDK sessions: uuid5 of the SDK's ``session_id``.
NAMESPACE: Final = uuid.UUID("3e0c9b4a-7d21-5f6e-8b19-2a4c6d8e0f13")
#: ``source.tool`` of the sessions this store writes.
TOOL: Final = "openai-agents"
#: The tag every session of this store carries.
TAG: Final = "openai-agents"


class SealedSession:
    """An ``agents`` ``Session`` in a sessionseal vault: every method runs the vault in a worker
    thread (``asyncio.to_thread``), so the event loop never waits on a disk, a lock or the
    keychain.

    *session_settings* is the SDK's ``SessionSettings`` (or None): its ``limit``, when set, is
    what :meth:`get_items` returns at most when called without one, as the SDK's own stores do.
    *erase_on_clear* (default True): :meth:`clear_session` crypto-erases the session; False
    writes a new, empty version instead (the session and its audit trail stay, the old
    version's blocks are only freed by the file system).
    """

    def __init__(
        self,
        session_id: str,
        vault: Vault | AsyncVault,
        *,
        session_settings: Any = None,
        erase_on_clear: bool = True,
    ) -> None:
        if not isinstance(session_id, str) or not session_id:
            raise InvalidInput("a session_id is a non-empty string")
        self.session_id: str = session_id
        self.session_settings: Any = session_settings
        self.erase_on_clear = erase_on_clear
        self.vault: Vault = _core.sync_vault(vault)

    @classmethod
    async def open(cls, session_id: str, path: str | os.PathLike[str] | None = None, **options: Any) -> SealedSession:
        """A session on the vault at *path* (default: the user's vault, its key in the
        keychain); *options* as :meth:`Vault.open`'s.  Sessions of one application should
        share one vault: ``SealedSession(session_id, vault)``."""
        return cls(session_id, await asyncio.to_thread(_core.open_vault, path, **options))

    @staticmethod
    def vault_id_for(session_id: str) -> uuid.UUID:
        """The vault session that holds the SDK session *session_id*."""
        return uuid.uuid5(NAMESPACE, session_id)

    @property
    def vault_id(self) -> uuid.UUID:
        return self.vault_id_for(self.session_id)

    # -- the protocol -------------------------------------------------------------------

    async def get_items(self, limit: int | None = None) -> list[Any]:
        """The session's items in the order they were added (sanitized); with *limit* (or the
        settings' limit), the latest *limit* of them, still oldest first."""
        if limit is None:
            settings = self.session_settings
            limit = settings.get("limit") if isinstance(settings, Mapping) else getattr(settings, "limit", None)
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise InvalidInput("limit is a non-negative integer or None")
        return await asyncio.to_thread(self._get, limit)

    async def add_items(self, items: Sequence[Any]) -> None:
        """Store *items* after those stored, all of them or (on an error) none."""
        batch = list(items)
        for i, item in enumerate(batch):
            if not isinstance(item, Mapping):
                raise InvalidInput(f"item {i + 1}: every item is a JSON object (a dict)")
        if batch:
            await asyncio.to_thread(self._add, [dict(item) for item in batch])

    async def pop_item(self) -> Any:
        """Remove the latest item and return it (as stored: sanitized); None when there is
        none.  Writes a new version of the session without it (not a crypto-erase)."""
        return await asyncio.to_thread(self._pop)

    async def clear_session(self) -> None:
        """Remove every item: a crypto-erase of the session (``Vault.delete``) unless the
        session was made with ``erase_on_clear=False``.  Clearing an empty session is not an
        error."""
        await asyncio.to_thread(self._clear)

    # -- in the worker thread -----------------------------------------------------------

    def _get(self, limit: int | None) -> list[Any]:
        if limit:
            # The latest items are in the latest append groups: read those alone when they hold
            # enough (a long session read with a small limit costs O(limit), not O(session)).
            recent = _core.recent_records(self.vault, self.vault_id, limit)
            if recent is not None:
                return [r["record"] for r in recent]
        items = [r["record"] for r in _core.records(_core.document(self.vault, self.vault_id))]
        if limit is not None:
            items = items[max(0, len(items) - limit) :] if limit else []
        return items

    def _add(self, items: list[dict[str, Any]]) -> None:
        sid = self.vault_id

        def new() -> Session:
            source = _source_after({"tool": TOOL, "session_id": self.session_id}, len(items))
            return _core.new_session(sid, [TAG], source, [{"record": item} for item in items], _messages(items))

        def more(summary: dict[str, Any], _read: Any) -> list[dict[str, Any]]:
            old = summary.get("source")
            source = _source_after(old if isinstance(old, dict) else {}, len(items))
            # One group: the records, their messages and the new count land together or not at all.
            return _core.append_ops([{"record": item} for item in items], _messages(items), source)

        _core.upsert(self.vault, sid, new, more, count=lambda: len(items))

    def _rewrite(self, keep: int | None) -> tuple[bool, Any]:
        """A new version of the session with its first *keep* items (None: all but the last);
        returns whether it changed and the last item removed."""
        sid = self.vault_id
        removed: list[Any] = []

        def update(doc: dict[str, Any]) -> bool:
            records = [r for r in doc.get("source_records") or [] if isinstance(r, dict) and "record" in r]
            if not records:
                return False
            n = len(records) - 1 if keep is None else keep
            removed[:] = [r["record"] for r in records[n:]]
            if not removed:
                return False
            kept = records[:n]
            old = doc.get("source")
            source: dict[str, Any] = dict(old) if isinstance(old, dict) else {}
            source["items"] = len(kept)
            doc["source_records"] = kept
            doc["source"] = source
            # The messages are derived from the items: derived again from those kept (the
            # stored items are sanitized already, so are their messages).
            doc["messages"] = _messages([r["record"] for r in kept])
            return True

        changed = _core.rewrite(self.vault, sid, update)
        return changed, removed[-1] if removed else None

    def _pop(self) -> Any:
        return self._rewrite(None)[1]

    def _clear(self) -> None:
        if self.erase_on_clear:
            _core.erase(self.vault, self.vault_id)
        else:
            self._rewrite(0)


def _source_after(source: dict[str, Any], added: int) -> dict[str, Any]:
    new = dict(source)
    new["items"] = int(new.get("items") or 0) + added
    new["mtime"] = time.time_ns() // 1_000_000
    return new


def _text(content: Any) -> list[dict[str, Any]]:
    """The text blocks of an item's ``content``: a string, or parts whose ``text`` is a string
    (``input_text``, ``output_text``); other parts (images, files, refusals) are records only."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    out = []
    for part in content if isinstance(content, list) else []:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            out.append({"type": "text", "text": part["text"]})
    return out


def _message(item: Mapping[str, Any]) -> dict[str, Any] | None:
    """The message an item maps to (what ``list``, ``show`` and ``search`` read), or None: a
    message item is a turn of its role, a function call an assistant's tool call, its output a
    tool result.  Reasoning, web searches and the like stay records only."""
    kind = item.get("type")
    role = item.get("role")
    if isinstance(role, str) and kind in (None, "message"):
        return {"role": role, "content": _text(item.get("content"))}
    if kind == "function_call" and isinstance(item.get("name"), str):
        args: Any = item.get("arguments")
        with contextlib.suppress(ValueError, TypeError):
            args = orjson.loads(args) if isinstance(args, str) else args
        if not isinstance(args, (dict, list, str)):
            args = None
        block = {"type": "tool_call", "id": item.get("call_id"), "name": item["name"], "arguments": args}
        return {"role": "assistant", "content": [block]}
    if kind == "function_call_output":
        output = item.get("output")
        text = output if isinstance(output, str) else orjson.dumps(output).decode()
        return {
            "role": "tool",
            "content": [{"type": "tool_result", "tool_call_id": item.get("call_id"), "content": text}],
        }
    return None


def _messages(items: list[Any]) -> list[dict[str, Any]]:
    return _core.messages(items, _message)
