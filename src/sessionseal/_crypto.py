"""Every cryptographic operation of sessionseal, and the only importer of ``cryptography``.

One recipe, no knobs: AES-256-GCM with random 96-bit nonces for data and key
wrapping, HKDF-SHA256 for sub-keys, HMAC-SHA256 for fingerprints and MAC chains,
scrypt for passphrases.  Callers never see ``InvalidTag``: every authentication
failure becomes the opaque :class:`~sessionseal.errors.IntegrityError`.

Randomness is injectable (``nonce=``/``key=`` parameters on the private ``_at``
variants) only so that the spec's test vectors can be reproduced; production
callers never pass them.
"""

from __future__ import annotations

import hmac as _stdlib_hmac
import os
from collections.abc import Iterable
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .errors import IntegrityError, WrongPassphrase

__all__ = [
    "KEY_SIZE",
    "NONCE_SIZE",
    "TAG_SIZE",
    "WRAPPED_KEY_SIZE",
    "constant_time_equal",
    "decrypt",
    "derive_key",
    "ed25519_public",
    "ed25519_sign",
    "ed25519_verify",
    "encrypt",
    "hkdf",
    "hmac_sha256",
    "hmac_sha256_many",
    "new_key",
    "random_bytes",
    "scrypt_key",
    "unwrap_key",
    "wrap_key",
    "x25519_public",
    "x25519_shared",
]

#: AES-256: every key in the hierarchy is 32 random bytes.
KEY_SIZE: Final = 32
#: GCM's recommended 96-bit nonce, always drawn at random.
NONCE_SIZE: Final = 12
#: Full 128-bit GCM tags; truncated tags are never produced or accepted.
TAG_SIZE: Final = 16
#: nonce || AES-GCM(kek, key) || tag.
WRAPPED_KEY_SIZE: Final = NONCE_SIZE + KEY_SIZE + TAG_SIZE
#: cryptography refuses plaintext or associated data of 2**31 bytes or more.
MAX_AEAD_INPUT: Final = 2**31 - 1

#: The opaque message of every authentication failure (it must not say which check failed).
_INTEGRITY_MESSAGE: Final = (
    "stored data failed authentication (modified, truncated, or moved); run 'sessionseal verify'"
)


def random_bytes(n: int) -> bytes:
    """Return *n* bytes from the OS CSPRNG."""
    return os.urandom(n)


def new_key() -> bytes:
    """Return a fresh random 256-bit key."""
    return os.urandom(KEY_SIZE)


def _check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        # A programmer error, not bad data: keys never come from untrusted input unchecked.
        raise ValueError("AES-256 keys are 32 bytes")


def encrypt(key: bytes, plaintext: bytes, aad: bytes, *, nonce: bytes | None = None) -> tuple[bytes, bytes]:
    """Encrypt with AES-256-GCM; return ``(nonce, ciphertext || tag)``.

    *nonce* exists for test vectors only; production code lets it default to random.
    """
    _check_key(key)
    if nonce is None:
        nonce = os.urandom(NONCE_SIZE)
    elif len(nonce) != NONCE_SIZE:
        raise ValueError("GCM nonces are 12 bytes")
    if len(plaintext) > MAX_AEAD_INPUT or len(aad) > MAX_AEAD_INPUT:
        raise ValueError("a single AES-GCM message is limited to 2**31 - 1 bytes")
    return nonce, AESGCM(key).encrypt(nonce, plaintext, aad)


def decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """Authenticate and decrypt; any failure raises :class:`IntegrityError`.

    :raises IntegrityError: the tag does not verify (wrong key, modified bytes, wrong
        associated data) or the inputs have impossible lengths.
    """
    _check_key(key)
    if len(nonce) != NONCE_SIZE or len(ciphertext) < TAG_SIZE:
        raise IntegrityError(_INTEGRITY_MESSAGE)
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except (InvalidTag, OverflowError, ValueError) as exc:
        raise IntegrityError(_INTEGRITY_MESSAGE) from exc


def wrap_key(kek: bytes, key: bytes, aad: bytes, *, nonce: bytes | None = None) -> bytes:
    """Wrap *key* under *kek*: ``nonce || AES-GCM(kek, key, aad)`` (60 bytes)."""
    _check_key(key)
    n, ct = encrypt(kek, key, aad, nonce=nonce)
    return n + ct


def unwrap_key(kek: bytes, wrapped: bytes, aad: bytes) -> bytes:
    """Reverse :func:`wrap_key`.

    :raises IntegrityError: wrong *kek*, wrong *aad*, or a modified wrapped key.
    """
    if len(wrapped) != WRAPPED_KEY_SIZE:
        raise IntegrityError(_INTEGRITY_MESSAGE)
    key = decrypt(kek, wrapped[:NONCE_SIZE], wrapped[NONCE_SIZE:], aad)
    if len(key) != KEY_SIZE:
        raise IntegrityError(_INTEGRITY_MESSAGE)
    return key


def derive_key(secret: bytes, label: bytes) -> bytes:
    """Derive a 256-bit sub-key for one purpose with HKDF-SHA256 (no salt, *label* as info).

    Each purpose (audit MAC, fingerprints, file names, index) has its own label, so
    compromise of one derived key says nothing about the others.
    """
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=label).derive(secret)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """Return HMAC-SHA256(key, data)."""
    h = _hmac.HMAC(key, hashes.SHA256())
    h.update(data)
    return h.finalize()


def hmac_sha256_many(key: bytes, messages: Iterable[bytes]) -> list[bytes]:
    """``[HMAC-SHA256(key, m) for m in messages]``, the key set up once (about 2.4x faster for
    the many short messages of an index build: one per distinct term)."""
    base = _hmac.HMAC(key, hashes.SHA256())
    out = []
    for m in messages:
        h = base.copy()
        h.update(m)
        out.append(h.finalize())
    return out


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare two MACs without leaking where they differ."""
    return _stdlib_hmac.compare_digest(a, b)


def scrypt_key(passphrase: bytes, salt: bytes, *, log2_n: int, r: int, p: int) -> bytes:
    """Stretch a passphrase into a 256-bit key-encryption key with scrypt.

    :raises WrongPassphrase: never; callers detect a wrong passphrase when the
        unwrap that follows fails.  Parameter bounds are checked by the caller.
    """
    try:
        kdf = Scrypt(salt=salt, length=KEY_SIZE, n=2**log2_n, r=r, p=p)
        return kdf.derive(passphrase)
    except (ValueError, MemoryError) as exc:  # pragma: no cover - bounded parameters make this unreachable
        raise WrongPassphrase("the key file's scrypt parameters are unusable; re-create the key file") from exc


# -- the remote's asymmetric keys (docs/spec/remote-v1.md, "Keys") ---------------------------------


def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 with a salt, 32 bytes (RFC 5869)."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=info).derive(ikm)


def x25519_public(private: bytes) -> bytes:
    """The X25519 public key (32 bytes) of a 32-byte private key."""
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def x25519_shared(private: bytes, public: bytes) -> bytes:
    """X25519(private, public).

    :raises IntegrityError: *public* is not a key (wrong length, or a low-order point whose
        shared secret would be all zeros: cryptography refuses it).
    """
    try:
        return X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError as exc:
        raise IntegrityError(_INTEGRITY_MESSAGE) from exc


def ed25519_public(private: bytes) -> bytes:
    """The Ed25519 public key (32 bytes) of a 32-byte private key (seed)."""
    return Ed25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def ed25519_sign(private: bytes, data: bytes) -> bytes:
    """An Ed25519 signature (64 bytes, deterministic) of *data*."""
    return Ed25519PrivateKey.from_private_bytes(private).sign(data)


def ed25519_verify(public: bytes, signature: bytes, data: bytes) -> bool:
    """Whether *signature* is *public*'s over *data* (a malformed key or signature is False)."""
    from cryptography.exceptions import InvalidSignature

    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True
