"""The remote's keys: device keypairs, and the remote data key of an epoch wrapped for each
enrolled device and under a recovery passphrase (docs/spec/remote-v1.md, "Device record",
"Keys" and "Epoch key objects"; docs/design.md, "Keys" under "Sync through object storage").

A self-contained format module: bytes in, bytes out, every primitive from :mod:`._crypto`
(X25519, Ed25519, HKDF, scrypt, AES-GCM from ``cryptography``).  Nothing here stores a key;
the sync that is to come keeps the private halves in the OS keychain (or a passphrase vault's
key table) and the data keys in the key table's state.

Randomness is injectable (``ephemeral=``, ``nonce=``, ``salt=``) only so that the spec's test
vectors can be reproduced (``scripts/gen_remote_vectors.py``); production callers never pass it.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Final

from . import _crypto
from .errors import IntegrityError, InvalidInput

__all__ = [
    "DeviceKeys",
    "EpochKeys",
    "derive",
    "fingerprint",
    "keys_object",
    "pairing_code",
    "parse_keys_object",
    "unwrap_device",
    "unwrap_passphrase",
    "wrap_for_device",
    "wrap_passphrase",
]

MAGIC: Final = b"SSRK"
VERSION: Final = 1
STANZA_DEVICE: Final = 1
STANZA_PASSPHRASE: Final = 2
#: Bytes after the type byte: recipient (16), ephemeral public (32), nonce (12), K_e + tag (48).
DEVICE_STANZA: Final = 16 + 32 + _crypto.NONCE_SIZE + _crypto.KEY_SIZE + _crypto.TAG_SIZE
#: Bytes after the type byte: salt (16), log2 N, r, p (3), nonce (12), K_e + tag (48).
PASSPHRASE_STANZA: Final = 16 + 3 + _crypto.NONCE_SIZE + _crypto.KEY_SIZE + _crypto.TAG_SIZE
#: scrypt as writers use it, and the most a reader does before asking for the passphrase.
SCRYPT_LOG2_N: Final = 17
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
MAX_LOG2_N: Final = 20
_HEADER: Final = struct.Struct(">4sB16sI16sH")
#: What a derived key is for (docs/spec/remote-v1.md, "Keys").
PURPOSES: Final = {
    "log": b"sessionseal remote v1 log",
    "log mac": b"sessionseal remote v1 log mac",
    "object": b"sessionseal remote v1 object",
}
_WRAP_INFO: Final = b"sessionseal remote v1 x25519"
_FINGERPRINT_LABEL: Final = b"sessionseal remote v1 device"
_BAD: Final = "a remote's key object is malformed"


@dataclass(frozen=True, repr=False)
class DeviceKeys:
    """A device's two private keys (32 bytes each); ``repr`` shows no key."""

    x25519: bytes  # receives epoch keys
    ed25519: bytes  # signs heads

    @classmethod
    def generate(cls) -> DeviceKeys:
        return cls(_crypto.new_key(), _crypto.new_key())

    @property
    def x25519_public(self) -> bytes:
        return _crypto.x25519_public(self.x25519)

    @property
    def ed25519_public(self) -> bytes:
        return _crypto.ed25519_public(self.ed25519)

    def __repr__(self) -> str:
        return "DeviceKeys(<private>)"


@dataclass(frozen=True)
class EpochKeys:
    """An epoch key object as parsed: who made it, and its stanzas (type, bytes after the type)."""

    remote: uuid.UUID
    epoch: int
    maker: uuid.UUID
    stanzas: tuple[tuple[int, bytes], ...]

    def for_device(self, device: uuid.UUID) -> bytes | None:
        """The stanza wrapped for *device*, if there is one."""
        return next((s for t, s in self.stanzas if t == STANZA_DEVICE and s[:16] == device.bytes), None)

    def passphrase_stanzas(self) -> list[bytes]:
        return [s for t, s in self.stanzas if t == STANZA_PASSPHRASE]


def fingerprint(remote: uuid.UUID, device: uuid.UUID, x25519_public: bytes, ed25519_public: bytes) -> bytes:
    """SHA-256 of the device's identity (docs/spec/remote-v1.md, "Device record")."""
    return hashlib.sha256(_FINGERPRINT_LABEL + remote.bytes + device.bytes + x25519_public + ed25519_public).digest()


def pairing_code(fp: bytes) -> str:
    """The first 10 bytes of a fingerprint in base32 without padding: 16 characters."""
    return base64.b32encode(fp[:10]).decode("ascii")


def derive(epoch_key: bytes, remote: uuid.UUID, device: uuid.UUID, purpose: str) -> bytes:
    """A key of *device*'s log or objects in an epoch: HKDF(K_e, R || D, label)."""
    return _crypto.hkdf(epoch_key, remote.bytes + device.bytes, PURPOSES[purpose])


def _device_aad(remote: uuid.UUID, epoch: int, recipient: uuid.UUID, ephemeral_public: bytes) -> bytes:
    return (
        MAGIC
        + bytes([VERSION])
        + remote.bytes
        + struct.pack(">I", epoch)
        + bytes([STANZA_DEVICE])
        + recipient.bytes
        + ephemeral_public
    )


def wrap_for_device(
    epoch_key: bytes,
    remote: uuid.UUID,
    epoch: int,
    recipient: uuid.UUID,
    recipient_public: bytes,
    *,
    ephemeral: bytes | None = None,
    nonce: bytes | None = None,
) -> bytes:
    """A type-1 stanza (type byte included): *epoch_key* for *recipient*'s X25519 key."""
    ephemeral = _crypto.new_key() if ephemeral is None else ephemeral
    ephemeral_public = _crypto.x25519_public(ephemeral)
    shared = _crypto.x25519_shared(ephemeral, recipient_public)
    wrapping = _crypto.hkdf(shared, ephemeral_public + recipient_public, _WRAP_INFO)
    aad = _device_aad(remote, epoch, recipient, ephemeral_public)
    return (
        bytes([STANZA_DEVICE])
        + recipient.bytes
        + ephemeral_public
        + _crypto.wrap_key(wrapping, epoch_key, aad, nonce=nonce)
    )


def unwrap_device(stanza: bytes, remote: uuid.UUID, epoch: int, device: uuid.UUID, keys: DeviceKeys) -> bytes:
    """The epoch key of a type-1 stanza (without its type byte) wrapped for *device*.

    :raises IntegrityError: not for this device, remote or epoch, or modified.
    """
    if len(stanza) != DEVICE_STANZA or stanza[:16] != device.bytes:
        raise IntegrityError(_BAD)
    ephemeral_public, wrapped = stanza[16:48], stanza[48:]
    own_public = keys.x25519_public
    shared = _crypto.x25519_shared(keys.x25519, ephemeral_public)
    wrapping = _crypto.hkdf(shared, ephemeral_public + own_public, _WRAP_INFO)
    return _crypto.unwrap_key(wrapping, wrapped, _device_aad(remote, epoch, device, ephemeral_public))


def _passphrase_aad(remote: uuid.UUID, epoch: int, params: bytes) -> bytes:
    return MAGIC + bytes([VERSION]) + remote.bytes + struct.pack(">I", epoch) + bytes([STANZA_PASSPHRASE]) + params


def _secret(passphrase: str) -> bytes:
    # NFC: the same passphrase typed on two systems is the same bytes.
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def wrap_passphrase(
    epoch_key: bytes,
    remote: uuid.UUID,
    epoch: int,
    passphrase: str,
    *,
    log2_n: int = SCRYPT_LOG2_N,
    r: int = SCRYPT_R,
    p: int = SCRYPT_P,
    salt: bytes | None = None,
    nonce: bytes | None = None,
) -> bytes:
    """A type-2 stanza (type byte included): *epoch_key* under scrypt(*passphrase*)."""
    salt = _crypto.random_bytes(16) if salt is None else salt
    params = salt + bytes([log2_n, r, p])
    kek = _crypto.scrypt_key(_secret(passphrase), salt, log2_n=log2_n, r=r, p=p)
    wrapped = _crypto.wrap_key(kek, epoch_key, _passphrase_aad(remote, epoch, params), nonce=nonce)
    return bytes([STANZA_PASSPHRASE]) + params + wrapped


def unwrap_passphrase(stanza: bytes, remote: uuid.UUID, epoch: int, passphrase: str) -> bytes:
    """The epoch key of a type-2 stanza (without its type byte).

    :raises InvalidInput: it asks for more scrypt work than :data:`MAX_LOG2_N` (refused before
        any work), or parameters scrypt cannot use.
    :raises IntegrityError: a wrong passphrase, or a modified stanza (one cannot tell which).
    """
    if len(stanza) != PASSPHRASE_STANZA:
        raise IntegrityError(_BAD)
    params = stanza[:19]
    salt, log2_n, r, p = params[:16], params[16], params[17], params[18]
    if not 1 <= log2_n <= MAX_LOG2_N or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise InvalidInput("the recovery stanza asks for scrypt work sessionseal does not do")
    kek = _crypto.scrypt_key(_secret(passphrase), salt, log2_n=log2_n, r=r, p=p)
    return _crypto.unwrap_key(kek, stanza[19:], _passphrase_aad(remote, epoch, params))


def keys_object(remote: uuid.UUID, epoch: int, maker: uuid.UUID, stanzas: list[bytes]) -> bytes:
    """``P/d/<maker>/keys/<epoch>``: the header, then the stanzas (each with its type byte)."""
    return _HEADER.pack(MAGIC, VERSION, remote.bytes, epoch, maker.bytes, len(stanzas)) + b"".join(stanzas)


def parse_keys_object(data: bytes) -> EpochKeys:
    """Split an epoch key object into its stanzas (nothing is decrypted).

    :raises IntegrityError: not a version-1 key object, a stanza of unknown type, or bytes
        before or after the stanzas it declares.
    """
    if len(data) < _HEADER.size:
        raise IntegrityError(_BAD)
    magic, version, remote, epoch, maker, count = _HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        raise IntegrityError(_BAD)
    sizes = {STANZA_DEVICE: DEVICE_STANZA, STANZA_PASSPHRASE: PASSPHRASE_STANZA}
    stanzas, at = [], _HEADER.size
    for _ in range(count):
        if at >= len(data) or data[at] not in sizes:
            raise IntegrityError(_BAD)
        kind, end = data[at], at + 1 + sizes[data[at]]
        if end > len(data):
            raise IntegrityError(_BAD)
        stanzas.append((kind, data[at + 1 : end]))
        at = end
    if at != len(data):
        raise IntegrityError(_BAD)
    return EpochKeys(uuid.UUID(bytes=remote), epoch, uuid.UUID(bytes=maker), tuple(stanzas))
