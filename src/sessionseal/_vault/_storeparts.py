"""What a save carries between its steps (:mod:`._store`): a session built for it, a batch's
version waiting for its flush, and a batch's save waiting for its BODY's compression."""

from __future__ import annotations

import uuid
from concurrent.futures import Future
from typing import Any, NamedTuple

from . import _edits

__all__ = ["Built", "Later", "Pending", "fit_tags"]


class Built(NamedTuple):
    """A session sanitized and serialized for a save (:meth:`SessionStore.build`)."""

    meta: bytes
    body: bytes
    #: The redaction counts.
    counts: dict[str, int]
    #: The sanitized document BODY serializes: the full-text index reads it, not BODY parsed again.
    doc: dict[str, Any]


def fit_tags(doc: dict[str, Any]) -> None:
    """Make the sanitized tags in *doc* valid tags again (:func:`._edits.fit_tag`).

    A tag is validated before it is sanitized; what the sanitizer made of it must still be a tag
    (or the session would not load), and two tags may now be the same one.
    """
    tags = doc.get("tags")
    if isinstance(tags, list):
        doc["tags"] = list(dict.fromkeys(_edits.fit_tag(t) if isinstance(t, str) else t for t in tags))


class Later(NamedTuple):
    """A version written in a batch (:meth:`SessionStore.batch`), not yet indexed or marked."""

    fname: str
    sid: uuid.UUID
    summary: dict[str, Any]
    stamp: Any
    generation: int
    size: int
    doc: Any
    nbytes: int  # the document's serialized size
    #: A new file written but not named yet (:meth:`.._fs.Dir.write_unsynced`): its temp name
    #: and open descriptor, fsynced and renamed at the flush; "" and -1 once it has its name.
    tmp: str = ""
    fd: int = -1


class Pending(NamedTuple):
    """A save in a batch whose BODY a thread compresses while the caller goes on; it is written
    at the batch's next save or at its flush (:meth:`.SessionStore.save`)."""

    sid: uuid.UUID
    built: Built
    #: ``encode_payload(built.body, compress=True)``, as the write would make it.
    body: Future[bytes]
