"""The recovery kit: the vault's master key of one epoch under a recovery passphrase, to restore
the vault on a fresh machine (``key export --recovery-kit``, ``key import --recovery-kit``;
docs/design.md, "Keys" under "Sync through object storage"; docs/spec/remote-v1.md, "Recovery kit").

A format module: bytes in, bytes out.  The key is wrapped as a type-2 (passphrase) stanza of
:mod:`._remotekeys` (scrypt N=2^17, r=8, p=1, then AES-256-GCM) whose associated data names the
*vault's* id and the epoch: a kit opens only for that vault and that epoch, and a wrapped key
moved from one field or kit to another fails authentication.  Nothing here stores a key.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from . import _remotekeys
from .errors import IntegrityError, InvalidInput, UnsupportedVersion, WrongPassphrase

__all__ = ["FORMAT", "Kit", "make", "open_kit", "parse"]

FORMAT: Final = "sessionseal-recovery-kit"
VERSION: Final = 1
#: A kit is a few hundred bytes; anything much larger is not one.
MAX_KIT: Final = 64 * 1024
_NOTE: Final = (
    "A sessionseal recovery kit: the vault's master key of this epoch under the kit's passphrase. "
    "Restore with 'sessionseal --vault DIR key import --recovery-kit FILE' next to a copy of the vault. "
    "Whoever has it and the passphrase can read every copy of the vault under this epoch: keep it safe."
)
_DAMAGED: Final = "the file is not a sessionseal recovery kit, or it is damaged"


@dataclass(frozen=True)
class Kit:
    """A kit as parsed: which vault and epoch it opens, and its stanza (nothing decrypted)."""

    vault_id: uuid.UUID
    epoch: int
    key_provider: str
    created_at: str
    stanza: bytes  # type byte included


def make(vault_id: uuid.UUID, epoch: int, key_provider: str, master_key: bytes, passphrase: str) -> bytes:
    """A kit holding *master_key* of *epoch*, as JSON text (UTF-8)."""
    if not passphrase:
        raise InvalidInput("the recovery kit's passphrase is empty; give one")
    stanza = _remotekeys.wrap_passphrase(master_key, vault_id, epoch, passphrase)
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "note": _NOTE,
        "vault_id": str(vault_id),
        "key_provider": key_provider,
        "epoch": epoch,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "master_key": base64.b64encode(stanza).decode("ascii"),
    }
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def parse(data: bytes) -> Kit:
    """Parse a kit without decrypting it.

    :raises InvalidInput: not a kit, or a damaged one (never echoed).
    :raises UnsupportedVersion: a kit of a newer sessionseal.
    """
    if len(data) > MAX_KIT:
        raise InvalidInput(_DAMAGED)
    try:
        doc: Any = json.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError
        if doc.get("version") != VERSION:
            raise UnsupportedVersion("the recovery kit is from a newer sessionseal; upgrade sessionseal")
        epoch = doc["epoch"]
        if type(epoch) is not int or not 1 <= epoch <= 0xFFFFFFFF:
            raise ValueError
        stanza = base64.b64decode(doc["master_key"], validate=True)
        if len(stanza) != 1 + _remotekeys.PASSPHRASE_STANZA or stanza[0] != _remotekeys.STANZA_PASSPHRASE:
            raise ValueError
        provider = doc["key_provider"]
        if provider not in ("keychain", "passphrase"):
            raise ValueError
        return Kit(uuid.UUID(doc["vault_id"]), epoch, provider, str(doc.get("created_at", "")), stanza)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, binascii.Error):
        raise InvalidInput(_DAMAGED) from None


def open_kit(kit: Kit, passphrase: str) -> bytes:
    """The master key a kit holds.

    :raises WrongPassphrase: the passphrase does not open it (or the kit was modified: AES-GCM
        cannot tell which).
    :raises InvalidInput: it asks for more scrypt work than sessionseal does.
    """
    try:
        return _remotekeys.unwrap_passphrase(kit.stanza[1:], kit.vault_id, kit.epoch, passphrase)
    except IntegrityError:
        raise WrongPassphrase("wrong recovery kit passphrase (or a modified kit); nothing was changed") from None
