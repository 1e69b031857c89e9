"""A resumed pull's judgement of the write a killed one was about to do (issue 26;
docs/spec/remote-v1.md, "The pull cursor"; docs/sync.md, "Pull").

Before each write a pull records its intent in the pull cursor: the session, its version
(container generation, committed end) before the write, and the write's **footprint**: for a
write that appends a group (an append or a metadata change), how many groups the session's
generation held before, how many operations the write appends, and the SHA-256 of those
operations as the store will hold them (sanitized: the same sanitizer, the same input, the same
result); for a put (a save), the SHA-256 of the BODY the save writes (built, sanitized and
serialized before the intent is recorded, then written as built).  A version that differs is not
enough to say the write happened: another process may have written that session between the
kill and the resume (a capture hook's append, a save or compaction that rewrites it), which
moves the version too.  So a resumed pull takes the write as done only when the session holds
it:

- a group-appending write: the session is still of the generation it was, and the group right
  after the ones it held is the write's own (its operations hash to the footprint), whatever
  was appended after it;
- a put: the session's generation moved on (or it exists, when it had none) and its BODY is the
  save's own, byte for byte (an append after it keeps the BODY; a rewrite by another process
  replaces it);
- a fork: the fork exists (its id is the pull's own, derived from the entry).

Otherwise the write is done again, through the usual decisions: a session another process wrote
in between is no longer as pushed, so the other device's change becomes a linked fork or loses
to the newer local one, as for any divergence; nothing is dropped.  A pending put recorded
without a footprint (a cursor written before puts had one) is judged as before: another
generation means written.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import orjson

from .. import _container
from ..errors import SessionNotFound
from ._store import SessionStore

__all__ = ["Footprint", "footprint", "saved", "was_written"]

#: (groups the generation held before, operations appended, SHA-256 hex of them as stored);
#: a put's: (0, 0, SHA-256 hex of the BODY it writes), :func:`saved`.
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


def saved(body: bytes) -> Footprint:
    """The footprint of a save that writes *body* (the serialized, sanitized document)."""
    return 0, 0, hashlib.sha256(body).hexdigest()


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
    if kind == "put" and foot is not None:
        moved = before is None or now[0] != before[0]
        return moved and hashlib.sha256(_container.decode_payload(log.body)).hexdigest() == foot[2]
    if foot is not None:
        return _holds_group(log, before, foot)
    if kind == "put" and before is not None:
        return now[0] != before[0]
    return True  # a put of a session the vault lacked, or a fork: it exists now


def _holds_group(log: _container.SessionLog, before: tuple[int, int] | None, foot: Footprint) -> bool:
    """*log* is of the generation it was *before*, and its group after the ones it held then is
    the one *foot* hashes."""
    groups, n, digest = foot
    if before is None or log.header.generation != before[0] or len(log.events) <= groups:
        return False
    ops = orjson.loads(_container.decode_payload(log.events[groups])).get("ops")
    return isinstance(ops, list) and _digest(ops[:n]) == digest
