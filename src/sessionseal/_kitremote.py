"""The remote's part of a recovery kit, and ``remote restore`` (issue 26, "Keys"; docs/sync.md,
"Recovery kit"; docs/spec/remote-v1.md, "Recovery kit"; docs/design.md, "Keys").

``key export`` of a vault with remotes writes a version-2 kit: per remote whose keys this device
holds, the newest epoch key under the kit's passphrase (a type-2 stanza), the older epoch keys
wrapped under that one (a puller still reads objects sealed before the last delete or
revocation: no ``rebase`` re-seals them yet), where the remote is (its URL, endpoint and region;
never a credential), its id, and the witness vector (what this vault applied of each device's
log, its own log's end included), all under a MAC keyed from the newest key.

``remote restore`` (:func:`restore`), on a fresh device with the kit and the bucket alone:

1. opens the kit's stanza (a wrong passphrase: exit 12; an edited remote part: exit 4);
2. checks the bucket before anything is kept: its device records name the kit's remote id (a
   foreign bucket: exit 19), and no key object on it is of an epoch newer than the kit's (a kit
   older than a delete or a revocation: exit 19, nothing kept);
3. adds the remote under a new device id, keeps the kit's keys, reads and checks every log (as a
   pull does) and then against the kit's witness vector (a log cut or rolled back below what the
   kit's vault had applied is refused: exit 19, and the remote is removed again);
4. **enrols itself**: a ``device.enroll`` entry naming its own id and public keys, with its
   enrolment object (the epoch keys wrapped for its own X25519 key) and the kit's witnesses, as
   entry 1 of its own log, sealed under the kit's newest epoch.  Only a holder of that epoch's
   key can seal it (the log key and the MAC key derive from it), so a bucket cannot forge a
   self-enrolment; the other devices count it as any ``device.enroll`` entry, so they wrap the
   next epochs for the restored device as for any other;
5. pulls every session.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from . import _crypto, _recoverykit, _remote, _remotekeys
from ._device_list import parse_record
from ._fswrite import write_private_file
from ._vault._auditing import audited_by
from ._vault._synccursor import SYNC_DIR, read_cursor
from ._vault._syncpull import check_logs
from .errors import InvalidInput, RemoteError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._config import RemoteConfig
    from ._s3 import S3Store
    from ._vault import Vault
    from ._vault._syncstate import PullResult

__all__ = ["Restored", "Unlocked", "check_bucket", "export", "pick", "restore", "unlock", "unwrap_older", "wrap_older"]

_audited = audited_by(lambda auditor: auditor)
_OLDER_INFO: Final = b"sessionseal recovery kit v2 older epochs"
_STALE: Final = (
    "the recovery kit is older than epoch {newest} on the remote (a delete or a revocation made after it): a kit "
    "restores only while its epoch is the remote's newest; enrol this device from an enrolled one instead "
    "('sessionseal device enroll'); nothing was kept"
)


@dataclass(frozen=True)
class Restored:
    """What ``remote restore`` did: the remote added, this device's id on it, the epoch it
    enrolled under, the devices whose logs it checked, and the pull."""

    remote: str
    device: uuid.UUID
    epoch: int
    devices: int
    pull: PullResult


def _older_aad(remote: uuid.UUID, epoch: int) -> bytes:
    return b"SSKO" + bytes([1]) + remote.bytes + struct.pack(">I", epoch)


def wrap_older(newest: bytes, remote: uuid.UUID, keys: dict[int, bytes], *, nonces: list[bytes] | None = None) -> str:
    """The epoch keys below the newest, each ``u32 epoch || nonce || AES-GCM(k, nonce, K_e, a)``
    under ``k = HKDF(K_newest, R, "sessionseal recovery kit v2 older epochs")``, concatenated,
    base64 (docs/spec/remote-v1.md, "Recovery kit").  *nonces*: for the test vectors only."""
    kek = _crypto.hkdf(newest, remote.bytes, _OLDER_INFO)
    out = b""
    for i, (e, k) in enumerate(sorted(keys.items())):
        nonce = nonces[i] if nonces is not None else None
        out += struct.pack(">I", e) + _crypto.wrap_key(kek, k, _older_aad(remote, e), nonce=nonce)
    return base64.b64encode(out).decode("ascii")


def unwrap_older(newest: bytes, remote: uuid.UUID, blob: str, below: int) -> dict[int, bytes]:
    """:func:`wrap_older`'s keys (the kit's MAC, checked first, covers the blob).

    :raises InvalidInput: a malformed blob, or an epoch not below *below*.
    """
    size = 4 + _crypto.NONCE_SIZE + _crypto.KEY_SIZE + _crypto.TAG_SIZE
    raw = base64.b64decode(blob, validate=True)
    if len(raw) % size:
        raise InvalidInput("the recovery kit's older epoch keys are malformed")
    kek = _crypto.hkdf(newest, remote.bytes, _OLDER_INFO)
    keys = {}
    for at in range(0, len(raw), size):
        (epoch,) = struct.unpack_from(">I", raw, at)
        if not 1 <= epoch < below or epoch in keys:
            raise InvalidInput("the recovery kit's older epoch keys are malformed")
        keys[epoch] = _crypto.unwrap_key(kek, raw[at + 4 : at + size], _older_aad(remote, epoch))
    return keys


def _own_end(vault: Vault, config: RemoteConfig, remote: uuid.UUID, held: dict[int, bytes]) -> tuple[int, bytes] | None:
    """This device's own log's last entry known to be on the remote (its push cursor)."""
    root = vault.parts.ctx.root
    if not root.exists(SYNC_DIR):
        return None
    sync_dir = root.sub(SYNC_DIR, create=False)
    try:
        cursor = read_cursor(sync_dir, remote, config.device, held)
    finally:
        sync_dir.close()
    if cursor is None or cursor.seq == 0 or cursor.pending:
        return None  # an entry in the outbox may never land: witness only what surely did
    return cursor.seq, cursor.mac


def _parts(vault: Vault, passphrase: str) -> tuple[_recoverykit.KitRemote, ...]:
    devices = vault.remotes.devices
    parts = []
    for config in devices.remotes():
        held = devices.epoch_keys(config)
        rid = devices.identity(config).remote_id if held else None
        if rid is None:
            continue  # this device holds no key of it yet: nothing to restore from
        epoch = max(held)
        witness = dict(vault.parts.sync.witness(config))
        own = _own_end(vault, config, rid, held)
        if own is not None:
            witness[config.device] = own
        older = {e: k for e, k in held.items() if e != epoch}
        parts.append(
            _recoverykit.remote_part(
                vault.vault_id,
                name=config.name,
                url=config.url,
                endpoint=config.endpoint,
                region=config.region,
                remote_id=rid,
                epoch=epoch,
                epoch_key=held[epoch],
                stanza=_remotekeys.wrap_passphrase(held[epoch], rid, epoch, passphrase),
                older=wrap_older(held[epoch], rid, older) if older else "",
                witness=witness,
            )
        )
    return tuple(parts)


def export(vault: Vault, out: str | os.PathLike[str], passphrase: str) -> tuple[int, int]:
    """``key export --recovery-kit``: a version-1 kit for a vault without remotes (or whose
    remotes this device holds no key of), else a version 2 with their parts.  Returns the master
    key's epoch and how many remotes the kit carries.  Audited (``key.export``: the epoch and
    the count).

    :raises InvalidInput: *out* exists, or the passphrase is empty.
    """
    if not passphrase:
        raise InvalidInput("the recovery kit's passphrase is empty; give one")
    parts = _parts(vault, passphrase)
    if not parts:
        return vault.backups.export_kit(out, passphrase), 0
    keys = vault.parts.keys
    with vault.parts.ctx.vault_lock():  # no rotation between reading the table's epoch and its key
        epoch = keys.keytable(fresh=True).kek_epoch
        key = keys.kek(epoch)
    kit = _recoverykit.make(vault.vault_id, epoch, keys.provider.name, key, passphrase, remotes=parts)
    write_private_file(Path(os.path.abspath(out)), kit)
    vault.parts.auditor.record("key.export", detail={"epoch": epoch, "remotes": len(parts)})
    return epoch, len(parts)


def pick(kit: _recoverykit.Kit, name: str | None) -> _recoverykit.KitRemote:
    """The kit's remote called *name*, or its only one.

    :raises InvalidInput: a kit without remotes (version 1), no such remote, or several and
        none named.
    """
    if not kit.remotes:
        raise InvalidInput(
            "this recovery kit carries no remote (a version-1 kit, or a vault that had none): restore the "
            "vault from a backup and run 'sessionseal key import'"
        )
    if name is None:
        if len(kit.remotes) > 1:
            raise InvalidInput("the recovery kit carries several remotes: name one with --remote")
        return kit.remotes[0]
    for part in kit.remotes:
        if part.name == name:
            return part
    raise InvalidInput("the recovery kit carries no remote of that name")


def check_bucket(store: S3Store, part: _recoverykit.KitRemote) -> int:
    """Before anything is kept: the bucket's device records name the kit's remote (and only it),
    and no key object is of an epoch above the kit's.  Returns how many device records it has.

    :raises RemoteError: no device there, another remote's, or a kit older than its newest epoch.
    """
    root = _remote.parse_url(part.url).key("d") + "/"
    ids: set[uuid.UUID] = set()
    newest, records = 0, 0
    for key, _ in store.list(root):
        device_hex, _, rest = key[len(root) :].partition("/")
        try:
            device = uuid.UUID(hex=device_hex)
        except ValueError:
            continue
        if rest == "device":
            parsed = parse_record(store.get(key), device, None)
            ids.add(parsed[0] if parsed is not None else uuid.UUID(int=0))
            records += 1
        elif rest.startswith("keys/") and len(rest) == 13:
            try:
                newest = max(newest, int(rest[5:], 16))
            except ValueError:
                continue
    if not records:
        raise RemoteError(
            "the remote at the kit's URL holds no device (another bucket or prefix than the kit's?); nothing was kept"
        )
    if ids != {part.remote_id}:
        raise RemoteError(
            "the remote at the kit's URL is not the kit's: its device records name another remote; nothing was kept"
        )
    if newest > part.epoch:
        raise RemoteError(_STALE.format(newest=newest))
    return records


@dataclass(frozen=True, repr=False)
class Unlocked:
    """A kit's remote part, opened: its epoch keys; ``repr`` shows no key."""

    part: _recoverykit.KitRemote
    keys: dict[int, bytes]

    def __repr__(self) -> str:
        return f"Unlocked(epoch={self.part.epoch})"


def unlock(kit: _recoverykit.Kit, passphrase: str, remote: str | None = None) -> Unlocked:
    """Open the kit's remote called *remote* (or its only one) with *passphrase*: before any
    vault or bucket is touched.

    :raises WrongPassphrase: the kit's passphrase is wrong (or its stanza was edited).
    :raises IntegrityError: the kit's remote part was edited.
    :raises InvalidInput: a kit without remotes, or no such remote in it.
    """
    part = pick(kit, remote)
    newest = _recoverykit.open_remote(kit, part, passphrase)
    return Unlocked(part, {part.epoch: newest, **unwrap_older(newest, part.remote_id, part.older, part.epoch)})


def restore(
    vault: Vault,
    unlocked: Unlocked,
    *,
    name: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    progress: Callable[[int, int, int], None] | None = None,
) -> Restored:
    """Restore the remote *unlocked* opens into *vault* (see the module's docstring).  Audited
    (``remote.restore``: the epoch and counts; the pull as ``sync.pull``).

    :raises InvalidInput: the name is in use here.
    :raises RemoteError: the bucket cannot be reached, is another remote's, holds a newer epoch
        than the kit's, or a log cut or rolled back below the kit's witnesses.
    """
    return _restore(vault.parts.auditor, vault, unlocked, name=name, profile=profile, region=region, progress=progress)


@_audited("remote.restore")
def _restore(
    auditor: Any,
    vault: Vault,
    unlocked: Unlocked,
    *,
    name: str | None,
    profile: str | None,
    region: str | None,
    progress: Callable[[int, int, int], None] | None,
) -> Restored:
    from . import _s3

    part, keys = unlocked.part, unlocked.keys
    region = part.region if region is None else region
    store = _s3.open_store(_remote.parse_url(part.url), endpoint=part.endpoint, profile=profile, region=region)
    records = check_bucket(store, part)
    config = vault.remotes.add(name or part.name, part.url, endpoint=part.endpoint, profile=profile, region=region)
    devices = vault.remotes.devices
    try:
        for epoch, key in sorted(keys.items(), reverse=True):  # newest first, as an enrolment keeps them
            devices.add_epoch_key(config, epoch, key, remote_id=part.remote_id)
        _check_witnesses(config, store, vault, part)
        _enrol_self(vault, config, part, keys)
    except BaseException:
        vault.remotes.remove(config.name)  # nothing of a refused restore stays in the config
        raise
    pulled = vault.remotes.pull(config.name, progress=progress)
    auditor.record("remote.restore", detail={"epoch": part.epoch, "epochs": len(keys), "devices": records})
    return Restored(config.name, config.device, part.epoch, records, pulled)


def _check_witnesses(config: RemoteConfig, store: S3Store, vault: Vault, part: _recoverykit.KitRemote) -> None:
    """Every log read and checked as a pull does, then against the kit's witness vector: each
    device's log reaches the entry the kit's vault had applied, with the same MAC (a bucket rolled
    back as a whole, consistently, before this device ever read it, is caught here)."""
    check = check_logs(config, store, vault.remotes.devices)
    newest = max((d.blocked for d in check.devices), default=0)
    if newest:
        raise RemoteError(_STALE.format(newest=newest))
    for device, (seq, mac) in sorted(part.witness.items()):
        found = next((o for o in check.logs.get(device, ()) if o.seq == seq), None)
        if found is None or not _crypto.constant_time_equal(found.mac, mac):
            raise RemoteError(
                f"device {device.hex}'s change log on the remote ends below, or differs at, entry {seq} that the "
                "recovery kit witnessed: cut or rolled back; nothing was kept"
            )


def _enrol_self(vault: Vault, config: RemoteConfig, part: _recoverykit.KitRemote, keys: dict[int, bytes]) -> None:
    """Entry 1 of this device's log: a ``device.enroll`` naming itself (the module's docstring)."""
    ident = vault.remotes.devices.identity(config)
    me, rid = config.device, part.remote_id
    obj = b"".join(
        _remotekeys.keys_object(rid, e, me, [_remotekeys.wrap_for_device(k, rid, e, me, ident.x25519_public)])
        for e, k in sorted(keys.items())
    )
    entry = {
        "kind": "device.enroll",
        "device": me.hex,
        "x25519": base64.b64encode(ident.x25519_public).decode(),
        "ed25519": base64.b64encode(ident.ed25519_public).decode(),
        "keys": hashlib.sha256(obj).hexdigest(),
        "witness": {d.hex: [seq, mac.hex()] for d, (seq, mac) in sorted(part.witness.items())},
    }
    vault.parts.sync.commit_entries(config, [entry], [(f"enroll/{me.hex}", obj)])
