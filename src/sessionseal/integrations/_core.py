"""What the agent SDK adapters share (docs/integrations.md): one vault session per SDK
key, its entries the session's source records (verbatim, sanitized by the vault), appended
under the session's lock through the store's ``upsert`` (the first write creates the session,
decided under the lock, so two processes never both create it), new versions through its
``rewrite``, erasure through ``Vault.delete``, and each write audited like any other.

The adapters call these from a worker thread (``asyncio.to_thread``): every function here
blocks on the disk, a lock or the keychain.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import orjson

from .._async import AsyncVault
from .._query import ListQuery
from .._vault import Vault
from .._vault._common import SUFFIX
from ..errors import SessionNotFound, SessionSealError

if TYPE_CHECKING:
    from ..models import Session

#: A stored version of a session: (container generation, committed size).  Any write moves it.
Stamp = tuple[int, int]
#: Operations to append, as the vault's append log takes them (``_events``).
Ops = list[dict[str, Any]]
#: Given the stored summary and a reader of the stored document, the operations to append.
More = Callable[[dict[str, Any], Callable[[], dict[str, Any]]], Ops]

K = TypeVar("K")


def sync_vault(vault: Vault | AsyncVault) -> Vault:
    """The blocking vault of *vault* (an adapter runs it in a worker thread itself)."""
    return vault.sync if isinstance(vault, AsyncVault) else vault


def open_vault(path: str | os.PathLike[str] | None = None, **options: Any) -> Vault:
    """``Vault.open``: the user's vault by default, its key in the OS keychain."""
    return Vault.open(path, **options)


def stamp_of(summary: Mapping[str, Any]) -> Stamp:
    """The stored version a summary (from ``read_summary``) describes."""
    return int(summary.get("generation") or 0), int(summary.get("size_stored") or 0)


def document(vault: Vault, sid: uuid.UUID) -> dict[str, Any] | None:
    """A session's stored (sanitized) document; None when there is none.  Audited (a load)."""
    try:
        doc = orjson.loads(vault.load_json(sid))
    except SessionNotFound:
        return None
    return doc if isinstance(doc, dict) else None


def records(doc: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The source records of a stored document that hold an entry (``{"record": ...}``)."""
    return [r for r in (doc or {}).get("source_records") or [] if isinstance(r, dict) and "record" in r]


def recent_records(vault: Vault, sid: uuid.UUID, n: int) -> list[dict[str, Any]] | None:
    """The last *n* entries (``{"record": ...}``) of a session, read from its latest append
    groups only (``SessionStore.recent_ops``: its first version is not decrypted); None when
    those groups hold fewer than *n* (the caller reads the whole document), [] when there is
    no session.  Audited as a ``load`` of the bytes decrypted.

    Exact for a session whose entries only grow by ``records`` operations (a ``rewrite``
    makes a new first version, which holds them all).
    """
    found: list[dict[str, Any]] = []

    def enough(ops: list[dict[str, Any]]) -> bool:
        group = [r for op in ops if op["op"] == "records" for r in op["value"]["records"]]
        found[:0] = [r for r in group if isinstance(r, dict) and "record" in r]
        return len(found) >= n

    try:
        done, nbytes = vault.parts.store.recent_ops(sid, enough)
    except SessionNotFound:
        return []
    if not done:
        return None
    # A read as Vault.load_json records it: its access time (retention by access), its audit.
    vault.parts.index.touch(vault.parts.keys.file_name(sid) + SUFFIX)
    vault.parts.auditor.record("load", session=sid, nbytes=nbytes)
    return found[len(found) - n :]


def source_of(vault: Vault, sid: uuid.UUID) -> dict[str, Any] | None:
    """A session's ``source`` as its last summary holds it (one META frame decrypted, not the
    document); None when the session is gone or has none."""
    try:
        source = vault.parts.store.summary(sid).get("source")
    except (FileNotFoundError, SessionNotFound):
        return None
    return source if isinstance(source, dict) else None


def sources(
    vault: Vault, tags: Sequence[str], keep: Callable[[dict[str, Any]], bool]
) -> list[tuple[str, dict[str, Any]]]:
    """(vault id, ``source``) of each session carrying every one of *tags* whose source *keep*
    accepts, archived ones too (the tags narrow the listing; the source decides)."""
    found = []
    for summary in vault.list(ListQuery(tags=tuple(tags), archived=None)):
        source = source_of(vault, uuid.UUID(str(summary.id)))
        if source is not None and keep(source):
            found.append((str(summary.id), source))
    return found


def new_session(sid: uuid.UUID, tags: Iterable[str], source: dict[str, Any], entries: Ops, messages: Ops) -> Session:
    """A new vault session holding *entries* as its source records (validated, not yet sanitized)."""
    from ..models import parse_session

    doc = {"id": str(sid), "tags": list(tags), "source": source, "source_records": entries, "messages": messages}
    return parse_session(doc)


def append_ops(entries: Ops, messages: Ops, source: dict[str, Any]) -> Ops:
    """One append group: the records, their messages and the new ``source`` land together or
    not at all (a killed writer's torn group is cut off by the next append)."""
    return [
        {"op": "records", "value": {"records": entries}},
        *({"op": "message", "value": m} for m in messages),
        {"op": "set", "value": {"source": source}},
    ]


def upsert(
    vault: Vault, sid: uuid.UUID, new: Callable[[], Session | None], more: More, *, count: Callable[[], int]
) -> tuple[str, Stamp | None]:
    """Create the session (*new*) or append to it (*more*), deciding which under its lock
    (``SessionStore.upsert``), and audit it: a creation is a ``save``, an append an ``append``
    of ``count()`` entries, a failure an ``append`` failure.  Returns what was done (``new``,
    ``appended``, ``none``) and the stored version after it."""
    store, auditor = vault.parts.store, vault.parts.auditor
    try:
        action, nbytes, counts, after = store.upsert(sid, new, more)
    except SessionSealError as exc:
        auditor.failure("append", exc, session=sid)
        raise
    if action == "new":
        auditor.record("save", session=sid, nbytes=nbytes, redactions=counts)
    elif action == "appended":
        auditor.record("append", session=sid, nbytes=nbytes, redactions=counts, private={"events": count()})
    return action, after


def rewrite(vault: Vault, sid: uuid.UUID, update: Callable[[dict[str, Any]], bool]) -> bool:
    """A new version of the session, *update* applied to its stored document, when *update*
    says it changed it (under a fresh data key; not a crypto-erase of what it took out).
    False when it did not, or there is no session."""
    try:
        changed = vault.parts.store.rewrite(sid, update)
    except SessionNotFound:
        return False
    if changed:
        # A new version of the session (docs/spec/audit-log.md: a save, its content changed).
        vault.parts.auditor.record("save", session=sid, detail={"changed": True})
    return changed


def erase(vault: Vault, sid: uuid.UUID) -> None:
    """Crypto-erase the session (``Vault.delete``); an unknown session is not an error."""
    with contextlib.suppress(SessionNotFound):
        vault.delete(sid)


def messages(entries: Iterable[Any], message_of: Callable[[Any], dict[str, Any] | None]) -> Ops:
    """The vault messages (what ``list``, ``show`` and ``search`` read) of *entries*: one per
    entry *message_of* maps; an entry whose message the model refuses stays a record only."""
    from pydantic import ValidationError

    from ..models import Message

    out = []
    for entry in entries:
        try:
            m = message_of(entry)
            if m is not None:
                out.append(Message.model_validate(m).model_dump(mode="json"))
        except (ValidationError, ValueError, TypeError):
            continue
    return out


class Known(Generic[K]):
    """What an adapter knows of its stored sessions (the ids of the entries stored, say), each
    with the stored version it describes: an append reads the whole session only when another
    writer (a process) changed it since.

    A session's entry is taken out while an append of it runs (:meth:`take`): another
    thread's append of the same session reads the session itself, and the one that finishes
    last puts back what it knows (:meth:`put`)."""

    def __init__(self) -> None:
        self._known: dict[uuid.UUID, tuple[Stamp, K]] = {}
        self._lock = threading.Lock()

    def take(self, sid: uuid.UUID) -> tuple[Stamp, K] | None:
        with self._lock:
            return self._known.pop(sid, None)

    def put(self, sid: uuid.UUID, stamp: Stamp, known: K) -> None:
        with self._lock:
            self._known[sid] = (stamp, known)

    def drop(self, sid: uuid.UUID) -> None:
        with self._lock:
            self._known.pop(sid, None)
