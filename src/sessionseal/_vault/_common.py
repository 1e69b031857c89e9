"""What every component of the vault shares: the clock, session ids, limits, and the helpers
that were once copied into each of them (docs/design.md, "The house").

Nothing here holds state or takes a lock.  The clock is read as ``_common.now()`` (a module
attribute, not an imported name), so that a test fixes the time of every component at once.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from .. import _container
from ..errors import IntegrityError, InvalidInput, SessionNotFound, SessionSealError

if TYPE_CHECKING:
    from .._fs import Dir

#: Largest serialized session accepted (a single AES-GCM message is limited to 2 GiB).
MAX_SESSION_BYTES: Final = 512 << 20
#: Largest container read whole: a session at the limit and its frames.
MAX_CONTAINER: Final = MAX_SESSION_BYTES + (1 << 20)
#: The vault's plaintext description (no secrets): its presence means the vault is complete.
VAULT_FILE: Final = "vault.json"
VAULT_FORMAT: Final = "sessionseal-vault"
VAULT_VERSION: Final = 1
#: The suffix of a session file (``sessions/<hex>.sst``).
SUFFIX: Final = ".sst"

INTEGRITY: Final = "a session file failed its integrity check (modified, truncated, or moved); run 'sessionseal verify'"


def now() -> datetime:
    """The time now, in UTC: the one clock of the vault."""
    return datetime.now(UTC)


def timestamp() -> str:
    """The time now as the session model writes it (``2026-01-02T03:04:05.678901Z``)."""
    return now().isoformat().replace("+00:00", "Z")


def parse_id(value: uuid.UUID | str) -> uuid.UUID:
    """A session id given as a UUID or its text.

    :raises InvalidInput: not a UUID (the message never repeats the value: it could be a secret).
    """
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value.strip())
    except (ValueError, AttributeError):
        raise InvalidInput("a session id is a UUID such as 3f2c8a4e-...; see 'sessionseal list'") from None


def no_session(sid: uuid.UUID) -> SessionNotFound:
    """The error for a session the vault does not hold."""
    return SessionNotFound(f"no session {sid} in this vault; see 'sessionseal list'")


def merge_counts(base: Mapping[str, int] | None, counts: Mapping[str, int]) -> dict[str, int]:
    """Redaction counts per rule: *base* (a stored ``redactions``) plus *counts*, as a new dict."""
    merged = dict(base or {})
    for rule, n in counts.items():
        merged[rule] = merged.get(rule, 0) + n
    return merged


def unstorable(what: str) -> InvalidInput:
    """The error for a document that validates but cannot be serialized."""
    return InvalidInput(
        f"the {what} cannot be stored: it holds an integer past 64 bits, a lone surrogate, or values "
        "nested too deep (about 250 levels); remove them"
    )


@contextlib.contextmanager
def stored_shape() -> Iterator[None]:
    """Read a stored document: one that authenticates but does not have the shape this build
    writes (a bug, a newer writer, or someone with the key) is an integrity failure, not a
    TypeError.  Errors of our own pass through."""
    try:
        yield
    except SessionSealError:
        raise
    except (AttributeError, LookupError, TypeError, ValueError, ArithmeticError, RecursionError):
        raise IntegrityError(INTEGRITY) from None


def read_header(d: Dir, fname: str) -> _container.Header | None:
    """The unverified header of the container file *fname* in *d*; None when the file is gone,
    unreadable or not a container (damage is for 'verify')."""
    try:
        prefix, _ = d.read_prefix(fname, _container.HEADER_SIZE)
        return _container.parse_unverified_header(prefix)
    except (FileNotFoundError, IntegrityError, OSError, SessionSealError):
        return None
