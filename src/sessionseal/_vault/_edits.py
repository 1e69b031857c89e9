"""Metadata edits: what rename, describe, tag, set_status, link, pin, unpin, archive and unarchive
change in a session's stored document.

Each returns an *update*: it changes the document in place and says whether it changed
anything. The facade applies it under the session's lock (:meth:`SessionStore.edit`) and
writes the operation's audit record.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from .._fields import MAX_TAG, SessionStatus, normalize_tag
from ..errors import InvalidInput
from ._common import merge_counts

if TYPE_CHECKING:
    from .._sanitize import Sanitizer

__all__ = [
    "Update",
    "archive",
    "clean_tags",
    "clean_text",
    "fit_tag",
    "set_flag",
    "set_parent",
    "set_status",
    "set_tags",
    "set_text",
    "status_of",
    "tag_edit",
    "unarchive",
]

#: Changes a session's document in place; returns whether anything changed.
Update = Callable[[dict[str, Any]], bool]

#: Longest title or description an edit accepts.
_MAX_META_TEXT: Final = 64 * 1024
#: The statuses 'unarchive' may restore.
_UNARCHIVED: Final = frozenset(st.value for st in SessionStatus if st is not SessionStatus.ARCHIVED)
#: A placeholder in sanitized text (:data:`sessionseal._sanitize.PLACEHOLDER_RE`, not imported
#: here: that module loads the rules, which an edit without tags never needs).
_PLACEHOLDER: Final = re.compile(r"\[REDACTED:[^\]\s]+\]")


def clean_text(sanitizer: Sanitizer, text: str, what: str) -> tuple[str, dict[str, int]]:
    """A new title or description, sanitized (it is user text like any other), and the counts."""
    if not isinstance(text, str) or len(text) > _MAX_META_TEXT:
        raise InvalidInput(f"a {what} is text of at most {_MAX_META_TEXT} characters")
    result = sanitizer.sanitize_text(text)
    return result.text, dict(result.counts)


def set_text(field_name: str, clean: str, counts: dict[str, int]) -> Update:
    """Set the title or the description to *clean*, adding its redaction counts."""

    def update(doc: dict[str, Any]) -> bool:
        if doc.get(field_name) == clean:
            return False
        doc[field_name] = clean
        doc["redactions"] = merge_counts(doc.get("redactions"), counts)
        return True

    return update


def _check_tag(tag: str) -> str:
    try:
        return normalize_tag(tag)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def clean_tags(sanitizer: Sanitizer, tags: Sequence[str]) -> tuple[list[str], dict[str, int]]:
    """*tags*, checked and sanitized (a tag is user text like any other), and the counts.

    A tag with no secret in it is kept byte for byte.  A tag with one is stored as the
    sanitizer's text (``deploy-[REDACTED:github-pat:1a2b3c4d]``), or, when the placeholders
    make that longer than a tag may be, as its first placeholder alone: a stored tag stays a
    valid tag.  Two tags that become the same text are one tag.

    :raises InvalidInput: a tag is empty, over 64 characters, or has whitespace (checked on
        the text given, before anything is read).
    """
    out: list[str] = []
    counts: dict[str, int] = {}
    for raw in tags:
        tag = _check_tag(raw)
        result = sanitizer.sanitize_text(tag)
        if result.counts:
            tag = fit_tag(result.text)
            counts = merge_counts(counts, dict(result.counts))
        out.append(tag)
    return list(dict.fromkeys(out)), counts


def fit_tag(clean: str) -> str:
    """A sanitized tag, made a valid tag again: placeholders are longer than many secrets, and a
    stored tag over :data:`MAX_TAG` characters would make the session fail validation on load.
    Such a tag becomes its first placeholder alone (``[REDACTED]`` if even that is too long)."""
    if len(clean) <= MAX_TAG:
        return clean
    first = _PLACEHOLDER.search(clean)
    return first.group(0) if first is not None and len(first.group(0)) <= MAX_TAG else "[REDACTED]"


def tag_edit(sanitizer: Sanitizer, add: Sequence[str], remove: Sequence[str], after: list[str]) -> Update:
    """:meth:`Vault.tag`'s edit: both lists through :func:`clean_tags` (removals too, so that the
    tag a secret was stored as is removed by giving the secret), then :func:`set_tags`."""
    adds, counts = clean_tags(sanitizer, add)
    removes, _ = clean_tags(sanitizer, remove)
    return set_tags(adds, removes, after, counts)


def set_tags(add: Sequence[str], remove: Sequence[str], after: list[str], counts: dict[str, int]) -> Update:
    """Remove, then add tags (both already through :func:`clean_tags`), adding the redaction
    counts of the tags added; *after* gets the tags the edit leaves."""
    removes = set(remove)

    def update(doc: dict[str, Any]) -> bool:
        before = list(doc.get("tags") or [])
        tags = [t for t in before if t not in removes]
        new = [t for t in dict.fromkeys(add) if t not in tags]
        tags += new
        after[:] = tags
        doc["tags"] = tags
        if tags == before:
            return False
        if new and counts:
            doc["redactions"] = merge_counts(doc.get("redactions"), counts)
        return True

    return update


def status_of(status: SessionStatus | str) -> SessionStatus:
    """*status* as a :class:`SessionStatus`, or :class:`InvalidInput`."""
    try:
        return SessionStatus(status)
    except ValueError:
        raise InvalidInput(f"a status is one of: {', '.join(SessionStatus)}") from None


def set_status(new: SessionStatus) -> Update:
    """Set a status other than ``archived`` (that is :func:`archive`)."""

    def update(doc: dict[str, Any]) -> bool:
        doc.pop("archived_from", None)
        return set_flag("status", new.value)(doc)

    return update


def set_parent(pid: uuid.UUID | None) -> Update:
    """Set (or with None clear) the parent session."""

    def update(doc: dict[str, Any]) -> bool:
        links = doc.setdefault("links", {})
        value = None if pid is None else str(pid)
        if links.get("parent") == value:
            return False
        links["parent"] = value
        return True

    return update


def set_flag(key: str, value: Any) -> Update:
    """Set one field (``pinned``, ``status``)."""

    def update(doc: dict[str, Any]) -> bool:
        if doc.get(key) == value:
            return False
        doc[key] = value
        return True

    return update


def archive(doc: dict[str, Any]) -> bool:
    """Set the status to ``archived``, keeping the previous one for :func:`unarchive`."""
    if doc.get("status") == SessionStatus.ARCHIVED:
        return False
    doc["archived_from"] = doc.get("status") or SessionStatus.ACTIVE.value
    doc["status"] = SessionStatus.ARCHIVED.value
    return True


def unarchive(doc: dict[str, Any]) -> bool:
    """Restore the status before :func:`archive` (``completed`` if unknown)."""
    if doc.get("status") != SessionStatus.ARCHIVED:
        return False
    previous = doc.pop("archived_from", None)
    doc["status"] = previous if previous in _UNARCHIVED else SessionStatus.COMPLETED.value
    return True
