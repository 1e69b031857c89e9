"""Checkpoints and forks: named restore points of a session, and sessions made from them.

A checkpoint is its own container (kind 6, docs/spec/container-v1.md, "Checkpoints") in
``checkpoints/<session file name>-<number>.ckp``: the session's document as it was, under a
fresh data key wrapped by the *session's* key.  So deleting the session crypto-erases its
checkpoints with it, and a checkpoint costs nothing on the session's own appends.

This module holds the pure parts: names, the checkpoint summary, and the documents a
restore or a fork writes.  The vault does the locking and the files.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .errors import IntegrityError, InvalidInput

__all__ = ["CKPT_SUFFIX", "Checkpoint", "check_label", "file_name", "fork_document", "number_of", "restored_document"]

CKPT_SUFFIX: Final = ".ckp"
#: Longest checkpoint name.
MAX_LABEL: Final = 200
#: Fields a restore keeps from the session as it is now: what the user set about the
#: session, not its content.  Restoring the conversation must not unpin a session (and
#: expose it to retention), nor drop tags or links set since.
_KEEP_ON_RESTORE: Final = ("title", "description", "tags", "status", "archived_from", "pinned", "links")


@dataclass(frozen=True)
class Checkpoint:
    """A named restore point of a session (:meth:`Vault.checkpoint`)."""

    session_id: uuid.UUID
    #: Numbers a session's checkpoints in the order they were made; never reused while
    #: a later one exists.
    number: int
    name: str
    created_at: str
    #: ``manual`` (asked for), or ``before-restore`` (the state a restore replaced).
    reason: str
    title: str
    message_count: int
    #: Size of the session document it holds, uncompressed.
    size_original: int
    #: The session's version (container generation) it was taken from.
    session_generation: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``--json`` output)."""
        return {
            "session_id": str(self.session_id),
            "number": self.number,
            "name": self.name,
            "created_at": self.created_at,
            "reason": self.reason,
            "title": self.title,
            "message_count": self.message_count,
            "size_original": self.size_original,
            "session_generation": self.session_generation,
        }

    @classmethod
    def from_meta(cls, session_id: uuid.UUID, number: int, meta: Mapping[str, Any]) -> Checkpoint:
        """Build from an authenticated checkpoint META document.

        :raises IntegrityError: the document does not have the shape this build writes.
        """
        try:
            return cls(
                session_id=session_id,
                number=number,
                name=str(meta.get("name", "")),
                created_at=str(meta.get("created_at", "")),
                reason=str(meta.get("reason", "manual")),
                title=str(meta.get("title", "")),
                message_count=int(meta.get("message_count") or 0),
                size_original=int(meta.get("size_original") or 0),
                session_generation=int(meta.get("session_generation") or 0),
            )
        except (TypeError, ValueError, OverflowError):
            raise IntegrityError("a checkpoint's summary does not parse; run 'sessionseal verify'") from None


def file_name(session_file: str, number: int) -> str:
    """The checkpoint file of a session file name (without its suffix) and a number."""
    return f"{session_file}-{number}{CKPT_SUFFIX}"


def number_of(session_file: str, name: str) -> int | None:
    """The number of a checkpoint file name of *session_file*, or None if it is not one."""
    prefix = session_file + "-"
    if not (name.startswith(prefix) and name.endswith(CKPT_SUFFIX)):
        return None
    digits = name[len(prefix) : -len(CKPT_SUFFIX)]
    if not digits.isdigit() or digits.startswith("0") or not digits.isascii():
        return None
    return int(digits)


def check_label(label: str) -> str:
    """Validate a checkpoint name given by a user (before it is sanitized).

    A name may not be a bare number: numbers already name checkpoints, and ``restore ID 3``
    must mean one thing.
    """
    if not isinstance(label, str):
        raise InvalidInput("a checkpoint name is text")
    label = label.strip()
    if not label or len(label) > MAX_LABEL:
        raise InvalidInput(f"a checkpoint name is 1 to {MAX_LABEL} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in label):
        raise InvalidInput("a checkpoint name cannot hold control characters")
    if label.lstrip("#").isdigit():
        raise InvalidInput("a checkpoint name cannot be a number (numbers already name checkpoints); add a word")
    return label


def restored_document(checkpoint: Mapping[str, Any], current: Mapping[str, Any], now: str) -> dict[str, Any]:
    """The document a restore writes: the checkpoint's content with the session's current
    metadata (:data:`_KEEP_ON_RESTORE`), updated now."""
    doc = dict(checkpoint)
    for key in _KEEP_ON_RESTORE:
        if key in current:
            doc[key] = current[key]
        else:
            doc.pop(key, None)
    doc["id"] = current["id"]
    doc["updated_at"] = now
    return doc


def fork_document(
    source: Mapping[str, Any], new_id: uuid.UUID, now: str, *, title: str | None, continuation: bool
) -> dict[str, Any]:
    """The document of a fork (a copy that goes its own way) or a continuation (a new session
    that carries the state on without the conversation) of *source*.

    The new session is linked to its source, starts active and unpinned, and has no
    checkpoints.  Its content was sanitized when the source stored it.
    """
    doc = dict(source)
    if continuation:
        # A continuation carries the state on, not the conversation: that starts afresh, as a
        # new session's would.  Every session statistic is a count or a sum from zero.
        doc.update(messages=[], tool_history=[], outcome=None, redactions={})
        doc["stats"] = dict.fromkeys(source.get("stats") or {}, 0)
    doc["id"] = str(new_id)
    doc["created_at"] = doc["updated_at"] = now
    doc["last_accessed_at"] = None
    doc["status"] = "active"
    doc["archived_from"] = None
    doc["pinned"] = False
    source_id = str(source["id"])
    doc["links"] = {
        "parent": None,
        "forked_from": None if continuation else source_id,
        "continued_from": source_id if continuation else None,
        "related": [],
    }
    if title is not None:
        doc["title"] = title
    elif not continuation and doc.get("title"):
        doc["title"] = f"{doc['title']} (fork)"
    return doc


# Shown as sessionseal.X in tracebacks and docs, where the public facade exports it (as httpx does).
Checkpoint.__module__ = "sessionseal"
