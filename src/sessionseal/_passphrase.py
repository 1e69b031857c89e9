"""The passphrase key provider, for machines with no OS keychain (servers, containers).

The master keys are kept in ``<vault>/keyfile.json``, each wrapped with AES-256-GCM
under a key-encryption key stretched from the passphrase with scrypt
(default N=2^17, r=8, p=1: 128 MiB and about half a second here, the strength
OWASP recommends for interactive logins).  The wrap's associated data binds the
vault id and epoch, so a key file cannot be moved to another vault.

Honest limits (threat-model.md): the key file is *inside* the vault, so anyone with
a copy of the vault and the passphrase has the keys; crypto-erase against old
backups holds only for an attacker who lacks the passphrase.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Callable
from typing import Any, Final
from uuid import UUID

from . import _crypto
from ._fs import Dir
from ._keystore import MasterKeys
from .errors import IntegrityError, KeyNotFound, KeyStoreError, UnsupportedVersion, WrongPassphrase

__all__ = ["KEYFILE", "PassphraseProvider"]

KEYFILE: Final = "keyfile.json"
_FORMAT: Final = "sessionseal-keyfile"
_VERSION: Final = 1
#: The key file's format version (``version`` in keyfile.json).
KEYFILE_VERSION: Final = _VERSION
#: scrypt cost bounds accepted from a key file: below 2^14 is too weak to stretch a
#: passphrase; above 2^22 (4 GiB at r=8) would let a crafted file exhaust memory.
MIN_LOG2_N: Final = 14
MAX_LOG2_N: Final = 22
DEFAULT_LOG2_N: Final = 17
_MAX_KEYFILE: Final = 64 * 1024


def _aad(vault_id: UUID, epoch: int) -> bytes:
    return b"sessionseal keyfile v1" + vault_id.bytes + struct.pack(">I", epoch)


class PassphraseProvider:
    """Master keys wrapped under a passphrase in the vault's key file.

    :param passphrase: the passphrase, or a callable returning it (called at most once,
        only when the key file must be unlocked).
    :param log2_n: scrypt cost for a new key file (init only; tests use the minimum).
    """

    name = "passphrase"

    def __init__(
        self,
        passphrase: bytes | str | Callable[[], bytes | str],
        *,
        root: Dir | None = None,
        log2_n: int = DEFAULT_LOG2_N,
    ) -> None:
        self._source = passphrase
        self._root = root
        if not MIN_LOG2_N <= log2_n <= MAX_LOG2_N:
            raise ValueError(f"log2_n must be between {MIN_LOG2_N} and {MAX_LOG2_N}")
        self._log2_n = log2_n
        self._kek: tuple[bytes, bytes, int, int, int] | None = None  # (kek, salt, log2_n, r, p)

    def bind(self, root: Dir) -> None:
        """Attach the vault directory the key file lives in."""
        self._root = root

    def describe(self) -> str:
        """Name the provider."""
        return "passphrase (scrypt-wrapped key file in the vault)"

    def _passphrase(self) -> bytes:
        value = self._source() if callable(self._source) else self._source
        data = value.encode("utf-8") if isinstance(value, str) else value
        if not data:
            raise WrongPassphrase("the passphrase is empty; give the vault's passphrase")
        return data

    def _dir(self) -> Dir:
        if self._root is None:  # pragma: no cover - the vault always binds before use
            raise RuntimeError("PassphraseProvider used before bind()")
        return self._root

    def _derive(self, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
        if self._kek is not None and self._kek[1:] == (salt, log2_n, r, p):
            return self._kek[0]
        kek = _crypto.scrypt_key(self._passphrase(), salt, log2_n=log2_n, r=r, p=p)
        self._kek = (kek, salt, log2_n, r, p)
        return kek

    def _read(self) -> dict[str, Any]:
        try:
            raw = self._dir().read(KEYFILE, max_size=_MAX_KEYFILE)
        except FileNotFoundError:
            raise KeyNotFound(
                f"the vault's key file {self._dir().path / KEYFILE} is missing; restore it from a backup"
            ) from None
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
                raise ValueError
        except (ValueError, RecursionError):
            raise IntegrityError("the vault's key file is damaged; restore it from a backup") from None
        if doc.get("version") != _VERSION:
            raise UnsupportedVersion("the vault's key file is from a newer sessionseal; upgrade sessionseal")
        return doc

    def load(self, vault_id: UUID) -> MasterKeys:
        """Unlock the key file with the passphrase.

        :raises WrongPassphrase: the passphrase does not unwrap the keys.
        """
        doc = self._read()
        try:
            salt = base64.b64decode(doc["salt"], validate=True)
            log2_n, r, p = int(doc["log2_n"]), int(doc["r"]), int(doc["p"])
            wrapped = {int(e): base64.b64decode(w, validate=True) for e, w in doc["keys"].items()}
            if any(not 1 <= e <= 0xFFFFFFFF for e in wrapped):  # epochs are 32-bit in the wrap's associated data
                raise ValueError
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError, binascii.Error):
            raise IntegrityError("the vault's key file is damaged; restore it from a backup") from None
        if not (MIN_LOG2_N <= log2_n <= MAX_LOG2_N and 1 <= r <= 32 and 1 <= p <= 16 and len(salt) >= 16):
            raise IntegrityError("the vault's key file has unsafe parameters; restore it from a backup")
        if not wrapped:
            raise IntegrityError("the vault's key file holds no keys; restore it from a backup")
        kek = self._derive(salt, log2_n, r, p)
        keys: dict[int, bytes] = {}
        for epoch, blob in wrapped.items():
            try:
                keys[epoch] = _crypto.unwrap_key(kek, blob, _aad(vault_id, epoch))
            except IntegrityError:
                self._kek = None
                raise WrongPassphrase(
                    "wrong passphrase for this vault (or a damaged key file); "
                    "check SESSIONSEAL_PASSPHRASE / --passphrase-file"
                ) from None
        return MasterKeys(keys)

    def store(self, vault_id: UUID, keys: MasterKeys) -> None:
        """Write the key file atomically, keeping the salt and cost of an existing one."""
        if self._kek is not None:
            _, salt, log2_n, r, p = self._kek
        else:
            salt, log2_n, r, p = _crypto.random_bytes(16), self._log2_n, 8, 1
        kek = self._derive(salt, log2_n, r, p)
        doc = {
            "format": _FORMAT,
            "version": _VERSION,
            "kdf": "scrypt",
            "log2_n": log2_n,
            "r": r,
            "p": p,
            "salt": base64.b64encode(salt).decode(),
            "keys": {
                str(epoch): base64.b64encode(_crypto.wrap_key(kek, key, _aad(vault_id, epoch))).decode()
                for epoch, key in sorted(keys.keys.items())
            },
        }
        self._dir().write_atomic(KEYFILE, json.dumps(doc, indent=1).encode() + b"\n")

    def delete(self, vault_id: UUID) -> None:
        """Remove the key file."""
        self._dir().unlink(KEYFILE)


def check_provider_name(name: str) -> str:
    """Validate a ``--key-provider`` value."""
    if name not in ("keychain", "passphrase"):
        raise KeyStoreError(f"unknown key provider {name!r}; use 'keychain' or 'passphrase'")
    return name


# Shown as sessionseal.X in tracebacks and docs, where the public facade exports it (as httpx does).
PassphraseProvider.__module__ = "sessionseal"
