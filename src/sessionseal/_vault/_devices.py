"""This device's keys on each remote (issue 26; docs/spec/remote-v1.md, "Device record" and
"Keys"; docs/sync.md, "Keys").

A device keypair per vault per remote: X25519 (receives the remote data keys of its epochs,
wrapped for it) and Ed25519 (signs its heads).  The private halves, the remote's id and the
epoch keys this device holds are kept in the key table's state (:class:`.._state.RemoteKeys`),
where the vault keeps its other secrets (session keys, audit MAC keys): sealed under the master
key, which is in the OS keychain or the passphrase key file, and rewritten with the key table by
every master-key rotation.  Nothing of them is ever written elsewhere, or in the clear.

The internal API the push (:mod:`._sync`) and the enrolment, revocation and recovery build on;
kept stable (a change is announced in a commit starting ``SYNC-KEYS-CHANGED:``).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .. import _crypto
from .._remotekeys import DeviceKeys, fingerprint, pairing_code
from .._remotelog import canonical
from .._state import RemoteKeys, StateChange
from ..errors import InvalidInput, RemoteError
from ._context import VaultContext
from ._keys import Keys
from ._settings import Settings

if TYPE_CHECKING:
    from .._config import RemoteConfig

__all__ = ["DeviceIdentity", "Devices"]


@dataclass(frozen=True, repr=False)
class DeviceIdentity:
    """This device on one remote: its id, its private keys, and the remote's id once known
    (made with epoch 1 by the first device, or learnt at enrolment); ``repr`` shows no key."""

    device_id: uuid.UUID
    x25519: bytes  # private
    ed25519: bytes  # private
    created_at: str
    remote_id: uuid.UUID | None

    @property
    def keys(self) -> DeviceKeys:
        return DeviceKeys(self.x25519, self.ed25519)

    @property
    def x25519_public(self) -> bytes:
        return self.keys.x25519_public

    @property
    def ed25519_public(self) -> bytes:
        return self.keys.ed25519_public

    def fingerprint(self, remote_id: uuid.UUID | None = None) -> bytes:
        """docs/spec/remote-v1.md, "Device record": SHA-256 of the remote, device and public keys."""
        return fingerprint(self._remote(remote_id), self.device_id, self.x25519_public, self.ed25519_public)

    def pairing_code(self, remote_id: uuid.UUID | None = None) -> str:
        return pairing_code(self.fingerprint(remote_id))

    def record(self, remote_id: uuid.UUID | None = None) -> bytes:
        """``P/d/<device>/device``: the same bytes every time (its ``created_at`` is kept)."""
        return canonical(
            {
                "created_at": self.created_at,
                "device": self.device_id.hex,
                "ed25519": base64.b64encode(self.ed25519_public).decode(),
                "format": "sessionseal-remote-device",
                "remote": self._remote(remote_id).hex,
                "version": 1,
                "x25519": base64.b64encode(self.x25519_public).decode(),
            }
        )

    def _remote(self, remote_id: uuid.UUID | None) -> uuid.UUID:
        rid = remote_id or self.remote_id
        if rid is None:
            raise InvalidInput("this device does not know the remote's id yet: enrol it or push first")
        return rid

    def __repr__(self) -> str:
        return f"DeviceIdentity(device_id={self.device_id})"


class Devices:
    """``vault.remotes.devices`` (and ``vault.parts.devices``): this device's keys on the vault's
    remotes.  Every change is one state delta of the key table, appended under the vault lock
    (:meth:`Keys.commit`)."""

    def __init__(self, ctx: VaultContext, keys: Keys, settings: Settings) -> None:
        self._ctx = ctx
        self._keys = keys
        self._settings = settings

    def remotes(self) -> list[RemoteConfig]:
        """The vault's remotes, in the order they were added (not audited: a step of another operation)."""
        return self._settings.read(checked=False).remotes

    def remote(self, name: str) -> RemoteConfig:
        """The remote called *name*.

        :raises InvalidInput: there is none.
        """
        for remote in self.remotes():
            if remote.name == name:
                return remote
        raise InvalidInput("no remote of that name; 'sessionseal remote list' shows them")

    def _resolve(self, remote: str | RemoteConfig) -> RemoteConfig:
        return self.remote(remote) if isinstance(remote, str) else remote

    def _held(self, device: uuid.UUID, *, fresh: bool = False) -> RemoteKeys | None:
        return self._keys.state(fresh=fresh).remote_keys.get(device.bytes)

    def _put(self, device: uuid.UUID, keys: RemoteKeys) -> None:
        state = self._keys.state(fresh=True)
        if not state.tracked:
            # An untracked table (written before issue 20) records no state: the keys would be lost.
            raise InvalidInput("this vault predates the key table's state: run 'sessionseal migrate' first")
        self._keys.commit(StateChange(remote_keys={device.bytes: keys}))

    def identity(self, remote: str | RemoteConfig) -> DeviceIdentity:
        """This device's identity on *remote*, made (and kept durably) on first use.

        :raises InvalidInput: no such remote, or a vault to migrate first.
        """
        config = self._resolve(remote)
        held = self._held(config.device)
        if held is None:
            with self._ctx.vault_lock():
                held = self._held(config.device, fresh=True)  # another process may have made it
                if held is None:
                    fresh = DeviceKeys.generate()
                    held = RemoteKeys(fresh.x25519, fresh.ed25519, datetime.now(UTC).isoformat(timespec="seconds"))
                    self._put(config.device, held)
        return DeviceIdentity(
            config.device,
            held.x25519,
            held.ed25519,
            held.created_at,
            uuid.UUID(bytes=held.remote) if held.remote else None,
        )

    def epoch_keys(self, remote: str | RemoteConfig) -> dict[int, bytes]:
        """The remote data keys this device holds on *remote*, by epoch (none before its first
        push or its enrolment)."""
        held = self._held(self._resolve(remote).device)
        return dict(held.epochs) if held is not None else {}

    def epoch_key(self, remote: str | RemoteConfig, epoch: int) -> bytes:
        """The remote data key of *epoch*.

        :raises RemoteError: this device does not hold it.
        """
        key = self.epoch_keys(remote).get(epoch)
        if key is None:
            raise RemoteError(f"this device holds no key of the remote's epoch {epoch}")
        return key

    def add_epoch_key(
        self, remote: str | RemoteConfig, epoch: int, key: bytes, *, remote_id: uuid.UUID | None = None
    ) -> None:
        """Keep *key* as the remote data key of *epoch* (made here, or unwrapped from a stanza for
        this device), and *remote_id* as the remote's id when this device does not know it yet.

        :raises InvalidInput: a key that is not 32 bytes, an epoch below 1, another key for an
            epoch already held, or another remote id than the one known.
        """
        if len(key) != 32 or epoch < 1:
            raise InvalidInput("a remote data key is 32 bytes, of an epoch from 1")
        config = self._resolve(remote)
        self.identity(config)  # the device's keys first: a key is held by a device
        with self._ctx.vault_lock():
            held = self._held(config.device, fresh=True)
            assert held is not None
            known = dict(held.epochs)
            if epoch in known and not _crypto.constant_time_equal(known[epoch], key):
                raise InvalidInput(f"this device already holds another key of epoch {epoch}")
            rid = held.remote
            if remote_id is not None and rid and rid != remote_id.bytes:
                raise InvalidInput("the key is of another remote than the one this device is on")
            if epoch in known and (remote_id is None or rid):
                return  # held already: nothing to write
            known[epoch] = key
            new_rid = rid or (remote_id.bytes if remote_id is not None else b"")
            self._put(
                config.device,
                replace(held, remote=new_rid, epochs=tuple(sorted(known.items()))),
            )

    def drop_epoch_keys(self, remote: str | RemoteConfig, *, below: int) -> int:
        """Drop the remote data keys of the epochs below *below* from this device's store (their
        retirement, proved by the caller: ``_syncrebase``); the newest is always kept.  Returns
        how many were dropped."""
        config = self._resolve(remote)
        with self._ctx.vault_lock():
            held = self._held(config.device, fresh=True)
            if held is None or not held.epochs:
                return 0
            newest = max(e for e, _ in held.epochs)
            kept = tuple((e, k) for e, k in held.epochs if e >= min(below, newest))
            # Another maker's key of a retired epoch goes with it (docs/spec/remote-v1.md,
            # "Two makers of one epoch"): it opens nothing a rebased log still needs.
            makers = tuple(m for m in held.makers if m[0] >= min(below, newest))
            if len(kept) == len(held.epochs) and len(makers) == len(held.makers):
                return 0
            self._put(config.device, replace(held, epochs=kept, makers=makers))
        return len(held.epochs) - len(kept)

    def maker_keys(self, remote: str | RemoteConfig) -> dict[int, dict[uuid.UUID, bytes]]:
        """The keys of epochs that several devices made at once, by epoch and maker, as this
        device took them up (docs/spec/remote-v1.md, "Two makers of one epoch")."""
        held = self._held(self._resolve(remote).device)
        out: dict[int, dict[uuid.UUID, bytes]] = {}
        for epoch, maker, key in held.makers if held is not None else ():
            out.setdefault(epoch, {})[uuid.UUID(bytes=maker)] = key
        return out

    def keyring(self, remote: str | RemoteConfig) -> dict[int, bytes | tuple[bytes, ...]]:
        """Every key this device holds on *remote*, by epoch, to read under: the epoch's key,
        then the other makers' keys of it when several devices made it (by maker id)."""
        ring: dict[int, bytes | tuple[bytes, ...]] = dict(self.epoch_keys(remote))
        for epoch, by_maker in self.maker_keys(remote).items():
            first = ring.get(epoch)
            keys = [first] if isinstance(first, bytes) else []
            for _, key in sorted(by_maker.items()):
                if not any(_crypto.constant_time_equal(key, k) for k in keys):
                    keys.append(key)
            ring[epoch] = tuple(keys)
        return ring

    def add_maker_key(self, remote: str | RemoteConfig, epoch: int, maker: uuid.UUID, key: bytes) -> None:
        """Keep *key* as *maker*'s key of *epoch*, an epoch another device made too; the first
        key this device holds of an epoch stays its key (:meth:`epoch_keys`, what it seals under).

        :raises InvalidInput: a key that is not 32 bytes, or an epoch below 1.
        """
        if len(key) != 32 or epoch < 1:
            raise InvalidInput("a remote data key is 32 bytes, of an epoch from 1")
        config = self._resolve(remote)
        with self._ctx.vault_lock():
            held = self._held(config.device, fresh=True)
            if held is None or any(e == epoch and m == maker.bytes for e, m, _ in held.makers):
                return  # kept already (a maker's key is proved once: it never changes)
            makers = tuple(sorted((*held.makers, (epoch, maker.bytes, key))))
            self._put(config.device, replace(held, makers=makers))

    def current_epoch(self, remote: str | RemoteConfig) -> tuple[int, bytes]:
        """The newest epoch this device holds on *remote*, and its key (what it seals under).

        :raises RemoteError: it holds none (neither pushed first nor enrolled).
        """
        held = self.epoch_keys(remote)
        if not held:
            raise RemoteError("this device holds no key of the remote yet: push first, or enrol it")
        epoch = max(held)
        return epoch, held[epoch]

    def start_remote(self, remote: str | RemoteConfig) -> uuid.UUID:
        """Make the remote's id and epoch 1's key, as the first device on a remote does, unless
        this device holds a remote id and an epoch key already; returns the remote's id."""
        config = self._resolve(remote)
        ident = self.identity(config)
        if ident.remote_id is not None and self.epoch_keys(config):
            return ident.remote_id
        with self._ctx.vault_lock():
            held = self._held(config.device, fresh=True)
            assert held is not None
            if held.remote and held.epochs:
                return uuid.UUID(bytes=held.remote)
            rid = uuid.UUID(bytes=held.remote) if held.remote else uuid.uuid4()
            self.add_epoch_key(config, 1, _crypto.new_key(), remote_id=rid)
        return rid
