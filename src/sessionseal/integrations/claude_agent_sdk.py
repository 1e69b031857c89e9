"""The Claude Agent SDK's ``SessionStore``, kept in a sessionseal vault
(docs/integrations/claude-agent-sdk.md).

``ClaudeAgentOptions(session_store=SealedSessionStore(vault))``: the SDK mirrors every line the
CLI adds to its transcript into :meth:`SealedSessionStore.append`, and a resume reads it back
with :meth:`SealedSessionStore.load`.  The SDK's protocol is duck-typed (it never checks it with
``isinstance``), so this module imports nothing of the SDK, but for the summary fold that
:meth:`append` runs when the SDK is installed (the SDK is what calls it).

One vault session per ``(project_key, session_id)``, its id a uuid5 of the two; the entries are
its source records, verbatim but sanitized, in append order: ``{"record": entry}`` for the main
transcript, with ``"subpath"`` for a sub-agent's.  An entry whose ``uuid`` is already stored
for the same key is skipped.  A resumed session sees ``[REDACTED:...]`` where a secret was;
:meth:`load` returns exactly what was appended when nothing was redacted.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from .._async import AsyncVault
from .._vault import Vault
from ..errors import InvalidInput
from . import _core

if TYPE_CHECKING:
    from ..models import Session

__all__ = ["NAMESPACE", "TAG", "TOOL", "SealedSessionStore"]

#: Vault session ids of SDK sessions: uuid5 of the JSON array ``[project_key, session_id]``.
NAMESPACE: Final = uuid.UUID("6c1f6a2e-0d7b-5b8e-9a34-5f2d1c0e7b91")
#: ``source.tool`` of the sessions this store writes (``resume --into`` refuses them: their
#: records are the SDK's, keyed by the SDK's project key, not a file the importer read).
TOOL: Final = "claude-agent-sdk"
#: The tag every session of this store carries: what ``list_sessions`` selects by.
TAG: Final = "claude-agent-sdk"
#: The main transcript's name in ``source.entries`` (a subpath is never empty: the SDK says so).
_MAIN: Final = ""

_Fold = Callable[[Any, Any, Any], Any]


class SealedSessionStore:
    """A ``claude_agent_sdk`` ``SessionStore`` in a sessionseal vault: every method runs the
    vault in a worker thread (``asyncio.to_thread``), so the event loop never waits on a disk,
    a lock or the keychain."""

    def __init__(self, vault: Vault | AsyncVault) -> None:
        self.vault: Vault = _core.sync_vault(vault)
        # The uuids stored per session and part, with the stored version they describe.
        self._seen: _core.Known[dict[str, set[str]]] = _core.Known()

    @classmethod
    async def open(cls, path: str | os.PathLike[str] | None = None, **options: Any) -> SealedSessionStore:
        """A store on the vault at *path* (default: the user's vault, its key in the keychain);
        *options* as :meth:`Vault.open`'s."""
        return cls(await asyncio.to_thread(_core.open_vault, path, **options))

    @staticmethod
    def session_id_for(key: Mapping[str, Any]) -> uuid.UUID:
        """The vault session that holds *key*'s session (and its subpaths)."""
        project, session, _ = _parse_key(key)
        return uuid.uuid5(NAMESPACE, json.dumps([project, session], ensure_ascii=False, separators=(",", ":")))

    # -- the protocol -------------------------------------------------------------------

    async def append(self, key: Mapping[str, Any], entries: Sequence[Mapping[str, Any]]) -> None:
        """Store *entries* after those stored for *key*, skipping any whose ``uuid`` is stored."""
        batch = list(entries)
        await asyncio.to_thread(self._append, key, batch)

    async def load(self, key: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        """The entries stored for *key*, in append order (sanitized); None when it has none."""
        return await asyncio.to_thread(self._load, key)

    async def list_sessions(self, project_key: str) -> list[dict[str, Any]]:
        """``{session_id, mtime}`` of each session of *project_key* with a main transcript;
        ``mtime`` in epoch milliseconds, of its last main append."""
        found = await asyncio.to_thread(self._sources, project_key)
        return [{"session_id": s["session_id"], "mtime": s["mtime"]} for s in found]

    async def list_session_summaries(self, project_key: str) -> list[dict[str, Any]]:
        """The SDK's summaries (``fold_session_summary``) of *project_key*'s sessions, kept by
        :meth:`append` in the session's ``source.summary``; ``mtime`` as :meth:`list_sessions`'."""
        found = await asyncio.to_thread(self._sources, project_key)
        return [
            {"session_id": s["session_id"], "mtime": s["mtime"], "data": s["summary"]}
            for s in found
            if isinstance(s.get("summary"), dict)
        ]

    async def delete(self, key: Mapping[str, Any]) -> None:
        """The main key: crypto-erase the session and its subpaths (:meth:`Vault.delete`); a
        subpath: a new version of the session without that subpath's entries.  An unknown key
        is not an error."""
        await asyncio.to_thread(self._delete, key)

    async def list_subkeys(self, key: Mapping[str, Any]) -> list[str]:
        """The subpaths stored for *key*'s session, never the main transcript."""
        return await asyncio.to_thread(self._subkeys, key)

    # -- in the worker thread -----------------------------------------------------------

    def _append(self, key: Mapping[str, Any], entries: list[Any]) -> None:
        project, session, subpath = _parse_key(key)
        if not entries:
            return
        for i, entry in enumerate(entries):
            if not isinstance(entry, Mapping) or not isinstance(entry.get("type"), str):
                raise InvalidInput(f"entry {i + 1}: every entry is a JSON object with a string 'type'")
        sid = self.session_id_for(key)
        part = subpath or _MAIN
        batch = _unique(entries, set())
        fold = _fold() if subpath is None else None
        seen = self._seen.take(sid)
        added: list[str] = []
        appended = 0

        def new() -> Session:
            nonlocal added
            added = [e["uuid"] for e in batch if isinstance(e.get("uuid"), str)]
            source = _source_after({"tool": TOOL, "project_key": project, "session_id": session}, part, batch, fold)
            records = [_record(e, subpath) for e in batch]
            return _core.new_session(sid, [TAG], source, records, _messages(batch, subpath))

        def more(summary: dict[str, Any], read: Callable[[], dict[str, Any]]) -> list[dict[str, Any]]:
            nonlocal seen, added, appended
            stamp = _core.stamp_of(summary)
            if seen is None or seen[0] != stamp:
                seen = (stamp, _uuids(read().get("source_records") or []))
            fresh = _unique(batch, seen[1].get(part, set()))
            if not fresh:
                return []
            appended = len(fresh)
            added = [e["uuid"] for e in fresh if isinstance(e.get("uuid"), str)]
            old = summary.get("source")
            source = _source_after(old if isinstance(old, dict) else {}, part, fresh, fold)
            return _core.append_ops([_record(e, subpath) for e in fresh], _messages(fresh, subpath), source)

        action, after = _core.upsert(self.vault, sid, new, more, count=lambda: appended)
        known = seen[1] if seen is not None and action != "new" else {}
        known.setdefault(part, set()).update(added)
        if after is not None and (seen is not None or action == "new"):
            self._seen.put(sid, after, known)

    def _document(self, key: Mapping[str, Any]) -> dict[str, Any] | None:
        return _core.document(self.vault, self.session_id_for(key))

    def _load(self, key: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        _, _, subpath = _parse_key(key)
        doc = self._document(key)
        if doc is None:
            return None
        out = [r["record"] for r in doc.get("source_records") or [] if r.get("subpath") == subpath]
        return out or None

    def _sources(self, project_key: str) -> list[dict[str, Any]]:
        if not isinstance(project_key, str):
            raise InvalidInput("project_key is a string")

        def mine(source: dict[str, Any]) -> bool:
            return (
                source.get("tool") == TOOL
                and source.get("project_key") == project_key
                and int((source.get("entries") or {}).get(_MAIN) or 0) > 0
            )

        return [source for _, source in _core.sources(self.vault, (TAG,), mine)]

    def _delete(self, key: Mapping[str, Any]) -> None:
        _, _, subpath = _parse_key(key)
        sid = self.session_id_for(key)
        self._seen.drop(sid)
        if subpath is None:
            _core.erase(self.vault, sid)
            return

        def without(doc: dict[str, Any]) -> bool:
            records = doc.get("source_records") or []
            kept = [r for r in records if r.get("subpath") != subpath]
            old = doc.get("source")
            source: dict[str, Any] = old if isinstance(old, dict) else {}
            doc["source_records"] = kept
            doc["source"] = {
                **source,
                "entries": {k: v for k, v in (source.get("entries") or {}).items() if k != subpath},
            }
            return len(kept) < len(records)

        _core.rewrite(self.vault, sid, without)

    def _subkeys(self, key: Mapping[str, Any]) -> list[str]:
        doc = self._document(key)
        source = (doc or {}).get("source")
        entries = source.get("entries") if isinstance(source, dict) else None
        return [k for k, n in (entries or {}).items() if k != _MAIN and n]


def _parse_key(key: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """A key's (project_key, session_id, subpath or None).

    :raises InvalidInput: not a SessionKey (no value is echoed: keys may be tenants' names).
    """
    if not isinstance(key, Mapping):
        raise InvalidInput("a session key is a mapping with project_key and session_id")
    project, session, subpath = key.get("project_key"), key.get("session_id"), key.get("subpath")
    if not isinstance(project, str) or not isinstance(session, str) or not session:
        raise InvalidInput("a session key has a string project_key and a non-empty string session_id")
    if subpath is not None and (not isinstance(subpath, str) or not subpath):
        raise InvalidInput("a session key's subpath is a non-empty string, or absent for the main transcript")
    return project, session, subpath


def _unique(entries: list[Any], stored: set[str]) -> list[Any]:
    """*entries* without those whose uuid is in *stored* or came earlier in the batch (entries
    without a uuid are all kept: titles, tags, mode markers)."""
    out, seen = [], set(stored)
    for e in entries:
        u = e.get("uuid")
        if isinstance(u, str):
            if u in seen:
                continue
            seen.add(u)
        out.append(e)
    return out


def _uuids(records: list[Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in records:
        u = r.get("record", {}).get("uuid") if isinstance(r, dict) else None
        if isinstance(u, str):
            out.setdefault(r.get("subpath") or _MAIN, set()).add(u)
    return out


def _record(entry: Mapping[str, Any], subpath: str | None) -> dict[str, Any]:
    return {"record": dict(entry)} if subpath is None else {"record": dict(entry), "subpath": subpath}


def _messages(entries: list[Any], subpath: str | None) -> list[dict[str, Any]]:
    """The messages of a main transcript's *entries* (``list``, ``show`` and ``search`` read
    these; the entries stay the source records): one per user or assistant entry, as the
    transcript importer maps a record, but the records of one streamed reply are not merged.
    An entry the model refuses is kept as a record only.  A sub-agent's entries map to none."""
    if subpath is not None:
        return []
    from .. import _transcripts

    return _core.messages(entries, lambda e: _transcripts.claude_message(dict(e)))


def _source_after(source: dict[str, Any], part: str, entries: list[Any], fold: _Fold | None) -> dict[str, Any]:
    """The session's ``source`` after *entries* were appended to *part*: counts per part and,
    for the main transcript, the time (epoch ms) and the SDK's summary folded over them."""
    new = dict(source)
    counts = dict(new.get("entries") or {})
    counts[part] = int(counts.get(part) or 0) + len(entries)
    new["entries"] = counts
    if part == _MAIN:
        # Strictly later than the last stamp: the SDK takes an older summary for a stale one.
        new["mtime"] = max(time.time_ns() // 1_000_000, int(new.get("mtime") or 0) + 1)
        if fold is not None:
            prev = new.get("summary")
            key = {"project_key": new["project_key"], "session_id": new["session_id"]}
            before = None if not isinstance(prev, dict) else {"session_id": key["session_id"], "mtime": 0, "data": prev}
            new["summary"] = fold(before, key, [dict(e) for e in entries])["data"]
    return new


@functools.cache
def _fold() -> _Fold | None:
    """The SDK's summary fold, when the SDK is installed (it is the SDK that calls append):
    imported on the first append, never with this module."""
    try:
        from claude_agent_sdk import fold_session_summary  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        try:
            from claude_agent_sdk._internal.session_summary import (  # type: ignore[import-not-found,unused-ignore]
                fold_session_summary,
            )
        except ImportError:
            return None
    return fold_session_summary  # type: ignore[no-any-return,unused-ignore]
