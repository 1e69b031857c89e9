"""A resumed pull's judgement of the write a killed one was about to do (issue 26;
docs/spec/remote-v1.md, "The pull cursor"; docs/sync.md, "Pull").

Before each write a pull records its intent in the pull cursor: the session, its version
(container generation, committed end) before the write, and, for a write that appends a group
(an append or a metadata change), the write's **footprint**: how many groups the session's
generation held before, how many operations the write appends, and the SHA-256 of those
operations as the store will hold them (sanitized: the same sanitizer, the same input, the same
result).  A version that differs is not enough to say the write happened: another process may
have appended to that session between the kill and the resume (a capture hook, a save), which
moves the version too.  So a resumed pull takes the write as done only when:

- a group-appending write: the session is still of the generation it was, and the group right
  after the ones it held is the write's own (its operations hash to the footprint), whatever
  was appended after it;
- a put (a save that rewrites the session): the session's generation moved on (an append by
  another process keeps the generation; a put of a session the vault lacked: it exists now);
- a fork: the fork exists (its id is the pull's own, derived from the entry).

Otherwise the write is done again, through the usual decisions: a session another process
appended to in between is no longer as pushed, so the other device's change becomes a linked
fork or loses to the newer local one, as for any divergence; nothing is dropped.  What is left:
a put interrupted before its write, whose session another process then *rewrote* (an edit that
rewrites it, a compaction) before the resume, is taken as done.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import orjson

from .. import _container
from ..errors import SessionNotFound
from ._store import SessionStore

__all__ = ["Footprint", "footprint", "was_written"]

#: (groups the generation held before, operations appended, SHA-256 hex of them as stored).
Footprint = tuple[int, int, str]


def _digest(ops: list[Any]) -> str:
    return hashlib.sha256(orjson.dumps(ops, option=orjson.OPT_SORT_KEYS)).hexdigest()


def footprint(
    store: SessionStore, sid: uuid.UUID, ops: list[dict[str, Any]]
) -> tuple[tuple[int, int] | None, Footprint | None]:
    """*sid*'s version now, and what appending *ops* to it will leave (None, None: no such
    session), from one read of it."""
    try:
        log = store.open(sid)
    except SessionNotFound:
        return None, None
    clean = store.sanitized_ops(ops)
    return (log.header.generation, log.end), (len(log.events), len(clean), _digest(clean))


def was_written(
    store: SessionStore, kind: str, target: uuid.UUID, before: tuple[int, int] | None, foot: Footprint | None
) -> bool:
    """Whether the write a killed pull recorded (*kind* to *target*, which was at *before*)
    happened (see the module's docstring)."""
    try:
        log = store.open(target)
    except SessionNotFound:
        return False
    now = (log.header.generation, log.end)
    if now == before:
        return False
    if foot is not None:
        groups, n, digest = foot
        if before is None or log.header.generation != before[0] or len(log.events) <= groups:
            return False
        ops = orjson.loads(_container.decode_payload(log.events[groups])).get("ops")
        return isinstance(ops, list) and _digest(ops[:n]) == digest
    if kind == "put" and before is not None:
        return now[0] != before[0]
    return True  # a put of a session the vault lacked, or a fork: it exists now
