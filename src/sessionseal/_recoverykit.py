"""The recovery kit: the vault's master key of one epoch under a recovery passphrase, to restore
the vault on a fresh machine (``key export --recovery-kit``, ``key import --recovery-kit``;
docs/design.md, "Keys" under "Sync through object storage"; docs/spec/remote-v1.md, "Recovery kit").
A version-2 kit also carries, per remote, the newest remote epoch key under the same passphrase,
where the remote is (no credential) and the witness vector, so that ``remote restore`` restores
from the bucket alone (:mod:`._kitremote`).

A format module: bytes in, bytes out.  The key is wrapped as a type-2 (passphrase) stanza of
:mod:`._remotekeys` (scrypt N=2^17, r=8, p=1, then AES-256-GCM) whose associated data names the
*vault's* id and the epoch: a kit opens only for that vault and that epoch, and a wrapped key
moved from one field or kit to another fails authentication.  Nothing here stores a key.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from . import _crypto, _remotekeys
from .errors import IntegrityError, InvalidInput, UnsupportedVersion, WrongPassphrase

__all__ = ["FORMAT", "Kit", "KitRemote", "encode", "make", "open_kit", "open_remote", "parse", "remote_part"]

FORMAT: Final = "sessionseal-recovery-kit"
VERSION: Final = 1
#: A kit with remotes (docs/spec/remote-v1.md, "Recovery kit"); a kit without is still written as 1.
VERSION_REMOTES: Final = 2
#: At most this many remotes in one kit (a vault has a few).
MAX_REMOTES: Final = 64
_MAC_INFO: Final = b"sessionseal recovery kit v2 remote"
#: A kit is a few hundred bytes; anything much larger is not one.
MAX_KIT: Final = 64 * 1024
_NOTE: Final = (
    "A sessionseal recovery kit: the vault's master key of this epoch under the kit's passphrase. "
    "Restore with 'sessionseal --vault DIR key import --recovery-kit FILE' next to a copy of the vault. "
    "Whoever has it and the passphrase can read every copy of the vault under this epoch: keep it safe."
)
_NOTE_REMOTES: Final = (
    " It also holds its remotes' keys: 'sessionseal remote restore --recovery-kit FILE' restores from the "
    "bucket alone on a fresh machine."
)
_DAMAGED: Final = "the file is not a sessionseal recovery kit, or it is damaged"


@dataclass(frozen=True)
class KitRemote:
    """A remote's part of a version-2 kit as parsed (nothing decrypted, the MAC not checked yet):
    where the remote is, its id, the newest epoch the vault held and that key's type-2 stanza,
    and the witness vector (each device's last entry the vault applied, its own included)."""

    name: str
    url: str
    endpoint: str | None
    region: str | None
    remote_id: uuid.UUID
    epoch: int
    stanza: bytes  # type byte included
    older: str  # the older epochs' keys wrapped under the newest (base64; "": none)
    witness: dict[uuid.UUID, tuple[int, bytes]]
    mac: bytes


@dataclass(frozen=True)
class Kit:
    """A kit as parsed: which vault and epoch it opens, and its stanza (nothing decrypted)."""

    vault_id: uuid.UUID
    epoch: int
    key_provider: str
    created_at: str
    stanza: bytes  # type byte included
    remotes: tuple[KitRemote, ...] = ()


def _remote_doc(r: KitRemote) -> dict[str, Any]:
    return {
        "name": r.name,
        "url": r.url,
        "endpoint": r.endpoint,
        "region": r.region,
        "remote_id": r.remote_id.hex,
        "epoch": r.epoch,
        "epoch_key": base64.b64encode(r.stanza).decode("ascii"),
        "older_keys": r.older,
        "witness": {d.hex: [seq, mac.hex()] for d, (seq, mac) in sorted(r.witness.items())},
    }


def _remote_mac(epoch_key: bytes, vault_id: uuid.UUID, r: KitRemote) -> bytes:
    # Binds what the kit says in the clear (where, the witnesses) to the key and the kit's vault:
    # an edited URL or witness vector is refused once the key is unwrapped.
    mac_key = _crypto.hkdf(epoch_key, r.remote_id.bytes, _MAC_INFO)
    body = _canonical(_remote_doc(r) | {"vault_id": vault_id.hex})
    return _crypto.hmac_sha256(mac_key, body)


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def remote_part(
    vault_id: uuid.UUID,
    *,
    name: str,
    url: str,
    endpoint: str | None,
    region: str | None,
    remote_id: uuid.UUID,
    epoch: int,
    epoch_key: bytes,
    stanza: bytes,
    older: str,
    witness: dict[uuid.UUID, tuple[int, bytes]],
) -> KitRemote:
    """A remote's part, *stanza* being *epoch_key*'s type-2 stanza under the kit's passphrase
    (:func:`.._remotekeys.wrap_passphrase` with the remote's id and *epoch*)."""
    part = KitRemote(name, url, endpoint, region, remote_id, epoch, stanza, older, dict(witness), b"")
    return dataclasses.replace(part, mac=_remote_mac(epoch_key, vault_id, part))


def encode(
    vault_id: uuid.UUID,
    epoch: int,
    key_provider: str,
    stanza: bytes,
    *,
    created_at: str,
    remotes: tuple[KitRemote, ...] = (),
) -> bytes:
    """A kit's JSON text (UTF-8): version 1 without remotes, 2 with."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION_REMOTES if remotes else VERSION,
        "note": _NOTE + (_NOTE_REMOTES if remotes else ""),
        "vault_id": str(vault_id),
        "key_provider": key_provider,
        "epoch": epoch,
        "created_at": created_at,
        "master_key": base64.b64encode(stanza).decode("ascii"),
    }
    if remotes:
        doc["remotes"] = [_remote_doc(r) | {"mac": r.mac.hex()} for r in remotes]
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def make(
    vault_id: uuid.UUID,
    epoch: int,
    key_provider: str,
    master_key: bytes,
    passphrase: str,
    *,
    remotes: tuple[KitRemote, ...] = (),
) -> bytes:
    """A kit holding *master_key* of *epoch* (and *remotes*, made under the same passphrase),
    as JSON text (UTF-8)."""
    if not passphrase:
        raise InvalidInput("the recovery kit's passphrase is empty; give one")
    stanza = _remotekeys.wrap_passphrase(master_key, vault_id, epoch, passphrase)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    return encode(vault_id, epoch, key_provider, stanza, created_at=created, remotes=remotes)


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
        version = doc.get("version")
        if version not in (VERSION, VERSION_REMOTES):
            raise UnsupportedVersion("the recovery kit is from a newer sessionseal; upgrade sessionseal")
        epoch = _epoch(doc["epoch"])
        stanza = _stanza(doc["master_key"])
        provider = doc["key_provider"]
        if provider not in ("keychain", "passphrase"):
            raise ValueError
        remotes: tuple[KitRemote, ...] = ()
        if version == VERSION_REMOTES:
            listed = doc["remotes"]
            if not isinstance(listed, list) or not 1 <= len(listed) <= MAX_REMOTES:
                raise ValueError
            remotes = tuple(_parse_remote(r) for r in listed)
        elif "remotes" in doc:
            raise ValueError
        return Kit(uuid.UUID(doc["vault_id"]), epoch, provider, str(doc.get("created_at", "")), stanza, remotes)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, binascii.Error):
        raise InvalidInput(_DAMAGED) from None


def _epoch(value: Any) -> int:
    if type(value) is not int or not 1 <= value <= 0xFFFFFFFF:
        raise ValueError
    return value


def _stanza(value: Any) -> bytes:
    stanza = base64.b64decode(value, validate=True)
    if len(stanza) != 1 + _remotekeys.PASSPHRASE_STANZA or stanza[0] != _remotekeys.STANZA_PASSPHRASE:
        raise ValueError
    return stanza


def _text(value: Any, *, optional: bool = False) -> Any:
    if (value is None and optional) or (isinstance(value, str) and 0 < len(value) <= 2048):
        return value
    raise ValueError


def _parse_remote(r: Any) -> KitRemote:
    if not isinstance(r, dict) or set(r) != {*_FIELDS, "mac"}:
        raise ValueError
    witness: dict[uuid.UUID, tuple[int, bytes]] = {}
    if not isinstance(r["witness"], dict):
        raise ValueError
    for device, at in r["witness"].items():
        if len(device) != 32 or not isinstance(at, list) or len(at) != 2:
            raise ValueError
        seq, mac = at
        if type(seq) is not int or not 1 <= seq < 1 << 64 or len(mac) != 64:
            raise ValueError
        witness[uuid.UUID(hex=device)] = (seq, bytes.fromhex(mac))
    mac = bytes.fromhex(r["mac"])
    if len(r["remote_id"]) != 32 or len(mac) != 32:
        raise ValueError
    return KitRemote(
        _text(r["name"]),
        _text(r["url"]),
        _text(r["endpoint"], optional=True),
        _text(r["region"], optional=True),
        uuid.UUID(hex=r["remote_id"]),
        _epoch(r["epoch"]),
        _stanza(r["epoch_key"]),
        _older(r["older_keys"]),
        witness,
        mac,
    )


_FIELDS: Final = ("name", "url", "endpoint", "region", "remote_id", "epoch", "epoch_key", "older_keys", "witness")


def _older(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_KIT:
        raise ValueError
    base64.b64decode(value, validate=True)
    return value


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


def open_remote(kit: Kit, remote: KitRemote, passphrase: str) -> bytes:
    """The remote epoch key *remote* (a part of *kit*) holds, once its MAC checks out.

    :raises WrongPassphrase: the passphrase does not open it (or its stanza was modified).
    :raises IntegrityError: it opens, but what the kit says of the remote was modified.
    :raises InvalidInput: it asks for more scrypt work than sessionseal does.
    """
    try:
        key = _remotekeys.unwrap_passphrase(remote.stanza[1:], remote.remote_id, remote.epoch, passphrase)
    except IntegrityError:
        raise WrongPassphrase("wrong recovery kit passphrase (or a modified kit); nothing was changed") from None
    if not _crypto.constant_time_equal(_remote_mac(key, kit.vault_id, remote), remote.mac):
        raise IntegrityError("the recovery kit's remote part was modified (its MAC fails); nothing was changed")
    return key
