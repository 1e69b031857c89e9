"""Plain value types shared by the models and the index, without pydantic.

They live apart from :mod:`sessionseal.models` so that the paths that never build a model
(``list --json``, the index, queries) do not pay for importing pydantic (about 80 ms of a
fresh process's start-up).  ``sessionseal.models`` re-exports them.
"""

from __future__ import annotations

import enum

__all__ = ["MAX_TAG", "SessionStatus", "normalize_tag"]

#: Longest tag, in characters.
MAX_TAG = 64


class SessionStatus(enum.StrEnum):
    """Where a session is in its life."""

    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    ARCHIVED = "archived"


def normalize_tag(raw: str) -> str:
    """A tag without surrounding blanks.

    :raises ValueError: empty, over 64 characters, or with whitespace inside.
    """
    tag = raw.strip() if isinstance(raw, str) else ""
    if not tag or len(tag) > MAX_TAG or any(c.isspace() for c in tag):
        raise ValueError("tags are 1-64 characters without whitespace")
    return tag


# Shown as sessionseal.models.SessionStatus, the public module that re-exports it (as the models are).
SessionStatus.__module__ = "sessionseal.models"
