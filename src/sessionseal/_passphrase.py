"""The passphrase key provider, for machines with no OS keychain (servers, containers).

The master keys are kept in ``<vault>/keyfile.json``, each wrapped with AES-256-GCM
under a key-encryption key stretched from the passphrase with scrypt
(default N=2^17, r=8, p=1: 128 MiB and about half a second here, the strength
OWASP recommends for interactive logins).  The wrap's associated data binds the
vault id and epoch, so a key file cannot be moved to another vault.

Honest limits (threat-model.md): the key file is *inside* the vault, so anyone with
a copy of the vault and the passphrase has the keys; crypto-erase against old
backups holds only for an attacker who lacks the passphrase.

The key file is only ever replaced whole (temp file, fsync, rename, fsync of the
directory), and the file replaced is then overwritten through a descriptor opened
before the rename (:meth:`Dir.write_atomic`).  A reader that opened the old file just
before may therefore read zeros: :meth:`PassphraseProvider._read` tells that from
damage by the name pointing at another file afterwards, and reads again.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import struct
from collections.abc import Callable
from typing import Any, Final
from uuid import UUID

from . import _crypto
from ._fs import Dir
from ._keystore import MasterKeys
from .errors import (
    IntegrityError,
    InvalidInput,
    KeyNotFound,
    UnsafePermissions,
    UnsupportedVersion,
    WrongPassphrase,
)

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
#: Reads of a key file that another process replaced meanwhile, before giving up.
_READ_ATTEMPTS: Final = 3


def _aad(vault_id: UUID, epoch: int) -> bytes:
    return b"sessionseal keyfile v1" + vault_id.bytes + struct.pack(">I", epoch)


class PassphraseProvider:
    """Master keys wrapped under a passphrase in the vault's key file.

    :param passphrase: the passphrase, or a callable returning it (called at most once,
        only when the key file must be unlocked).  Nothing here refuses a short one: a
        passphrase under :attr:`RECOMMENDED_MIN_CHARS` characters is accepted, and the CLI
        warns about it at ``init`` and ``passphrase change``.
    :param log2_n: scrypt cost for a new key file (init only; tests use the minimum).
    """

    name = "passphrase"
    #: Passphrases shorter than this (in characters) are accepted but weak: an offline guess
    #: costs one scrypt evaluation, so the length is what stands against a stolen vault copy.
    RECOMMENDED_MIN_CHARS: Final = 12

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
        self._fresh = True  # no key file read yet: a store is an init's, under a new salt

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
        self._source = data  # a callable (a prompt) is asked once, not again at every new salt
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
        """The key file's document, read again when another process replaced the file while it
        was read (a change or a rotation overwrites the file it replaced: see the module doc)."""
        for attempt in range(1, _READ_ATTEMPTS + 1):
            before = self._dir().identity(KEYFILE)
            try:
                return self._read_once()
            except (IntegrityError, UnsafePermissions):
                # Not a replaced file (the name still points where it did): damage, or unsafe.
                if attempt == _READ_ATTEMPTS or self._dir().identity(KEYFILE) == before:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_once(self) -> dict[str, Any]:
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
        self._fresh = False
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

    def reload(self, vault_id: UUID) -> MasterKeys:
        """Read the key file again: another process rotated since it was read (an opener reads
        the key file and then the key table without the vault lock, and a rotation can come in
        between).  :meth:`load` never caches keys, so this is the same read."""
        return self.load(vault_id)

    def store(self, vault_id: UUID, keys: MasterKeys) -> None:
        """Write the key file atomically and overwrite the replaced file's content (it holds
        master keys a rotation drops).

        A new key file (init) gets a new random salt.  Otherwise the keys are wrapped under the
        salt and cost of the key file *as it is now*, with this provider's passphrase checked
        against it first: a key-encryption key cached before another process changed the
        passphrase, or left over from a failed unlock, must never write a key file back under
        an old passphrase or a new salt.

        :raises WrongPassphrase: this provider's passphrase does not open the key file now.
        """
        if self._fresh and self._kek is None:
            salt, log2_n, r, p = _crypto.random_bytes(16), self._log2_n, 8, 1
            wrapping = (self._derive(salt, log2_n, r, p), salt, log2_n, r, p)
        else:
            if self._kek is None or self._params(self._read()) != self._kek[1:]:
                self.load(vault_id)
            assert self._kek is not None  # set by load
            wrapping = self._kek
        self._write(vault_id, keys, wrapping)

    def change(self, vault_id: UUID, new_passphrase: bytes) -> bool:
        """Re-wrap the key file's master keys under *new_passphrase* and a new random salt, at
        the key file's scrypt cost, replace the file atomically and overwrite the old one's
        content.  The caller holds the vault lock.

        Every epoch the file holds is re-wrapped: a rotation in flight (two epochs) stays in
        flight and is finished at the next use, as it would have been.  A crash leaves either
        the old file (the old passphrase opens the vault; the temp file is shredded at the
        next open) or the new one, never neither.

        :returns: whether the old key file's content was overwritten (best effort).
        :raises WrongPassphrase: the current passphrase does not open the key file as it is now.
        :raises InvalidInput: the new passphrase is empty or the current one.
        """
        if not new_passphrase:
            raise InvalidInput("the new passphrase is empty; choose a long one")
        keys = self.load(vault_id)  # the file as it is now: under the vault lock nothing else writes it
        assert self._kek is not None  # set by load
        if hmac.compare_digest(new_passphrase, self._passphrase()):
            raise InvalidInput("the new passphrase is the vault's current passphrase; choose another")
        _, _, log2_n, r, p = self._kek
        salt = _crypto.random_bytes(16)
        new_kek = (_crypto.scrypt_key(new_passphrase, salt, log2_n=log2_n, r=r, p=p), salt, log2_n, r, p)
        overwritten = self._write(vault_id, keys, new_kek)
        self._source, self._kek = new_passphrase, new_kek
        return overwritten

    @staticmethod
    def _params(doc: dict[str, Any]) -> tuple[bytes, int, int, int] | None:
        """The salt and cost a key file document names (None when it names none: load says why)."""
        try:
            return base64.b64decode(doc["salt"], validate=True), int(doc["log2_n"]), int(doc["r"]), int(doc["p"])
        except (KeyError, TypeError, ValueError, binascii.Error):
            return None

    def _write(self, vault_id: UUID, keys: MasterKeys, wrapping: tuple[bytes, bytes, int, int, int]) -> bool:
        """Replace the key file with *keys* wrapped under ``(kek, salt, log2_n, r, p)``; returns
        whether the replaced file's content was overwritten."""
        kek, salt, log2_n, r, p = wrapping
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
        return self._dir().write_atomic(KEYFILE, json.dumps(doc, indent=1).encode() + b"\n", overwrite_old=True)

    def delete(self, vault_id: UUID) -> None:
        """Remove the key file."""
        self._dir().unlink(KEYFILE)


# Shown as sessionseal.X in tracebacks and docs, where the public facade exports it (as httpx does).
PassphraseProvider.__module__ = "sessionseal"
