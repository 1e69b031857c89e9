"""Remotes: the S3-compatible stores a vault syncs through, kept in its encrypted config
(docs/sync.md).  Each change is a read-modify-write of the config under the vault lock
(:meth:`Settings.update`), and audited; credentials are never stored, they come from the usual
AWS sources when a remote is used.
"""

from __future__ import annotations

import builtins
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..errors import InvalidInput
from ._auditing import Auditor, audited_by
from ._devices import Devices
from ._settings import Settings
from ._sync import Progress, PushResult, Sync
from ._syncapply import PullResult

if TYPE_CHECKING:
    from .._config import RemoteConfig, VaultConfig

__all__ = ["Remotes"]

_audited = audited_by(lambda remotes: remotes._auditor)


class Remotes:
    """``vault.remotes``: list, add and remove the vault's remotes (docs/api.md, "Remotes")."""

    def __init__(self, settings: Settings, auditor: Auditor, sync: Sync) -> None:
        self._settings = settings
        self._auditor = auditor
        self._sync = sync

    @property
    def devices(self) -> Devices:
        """This device's keys on each remote (internal: for the sync's own commands and tests)."""
        return self._sync.devices

    def push(self, name: str | None = None, *, dry_run: bool = False, progress: Progress | None = None) -> PushResult:
        """Send this device's new and changed sessions to the remote *name* (the only one when
        None): whole documents for new or rewritten sessions, only the new operations for
        appended ones (docs/sync.md, "Push").  With *dry_run*, count what would be sent and
        write nothing.  Resumes a push that was killed.  Audited (``sync.push``, counts only).

        :raises InvalidInput: no such remote, none, or several and *name* is None.
        :raises RemoteError: the remote cannot be reached or refuses; this device's log there is
            not where the vault left it; the remote holds other devices and this one is not
            enrolled.
        :raises MissingExtra: boto3 is not installed.
        :raises LockTimeout: another push of this vault is running.
        """
        return self._sync.push(name, dry_run=dry_run, progress=progress)

    def pull(self, name: str | None = None, *, dry_run: bool = False, progress: Progress | None = None) -> PullResult:
        """Check every device's log on the remote *name* (the only one when None): its record,
        signed head and MAC chain, against the floors the heads name; then apply the other
        devices' new sessions, appends and metadata through the vault's own write paths
        (docs/sync.md, "Pull").  Resumes a pull that was killed; a second pull with nothing
        new is a no-op.  With *dry_run*, count what would be applied.  Audited (``sync.pull``,
        counts only).

        :raises InvalidInput: no such remote, none, or several and *name* is None.
        :raises RemoteError: unreachable or refused; this device holds none of the remote's
            keys; a device's log is cut, edited, reordered or rolled back; an object fails
            its check.
        :raises MissingExtra: boto3 is not installed.
        :raises LockTimeout: another sync of this vault is running.
        """
        return self._sync.pull(name, dry_run=dry_run, progress=progress)

    @_audited("remote.list")
    def list(self) -> builtins.list[RemoteConfig]:
        """The remotes, in the order they were added; audited (``remote.list``)."""
        remotes = self._settings.read(checked=False).remotes
        self._auditor.record("remote.list", detail={"remotes": len(remotes)})
        return remotes

    @_audited("remote.add")
    def add(
        self,
        name: str,
        url: str,
        *,
        endpoint: str | None = None,
        profile: str | None = None,
        region: str | None = None,
        check: bool = True,
    ) -> RemoteConfig:
        """Add a remote, after checking (unless *check* is false) that it is reachable and
        writable: a probe object written, read back and deleted under this device's prefix.

        :raises InvalidInput: a bad name, URL, endpoint, profile or region, or a name in use.
        :raises RemoteError: the probe failed (nothing is stored).
        :raises MissingExtra: *check* and boto3 is not installed.
        """
        from .._config import RemoteConfig
        from ..models import parse_model

        fields = {"name": name, "url": url, "endpoint": endpoint, "profile": profile, "region": region}
        remote = parse_model(
            RemoteConfig,
            {**fields, "device": str(uuid.uuid4()), "added_at": datetime.now(UTC).isoformat()},
            "remote",
        )
        _unused(self._settings.read(checked=False), remote.name)  # before the probe's round trips
        if check:
            self._probe(remote)

        def change(cfg: VaultConfig) -> VaultConfig:
            _unused(cfg, remote.name)
            return cfg.model_copy(update={"remotes": [*cfg.remotes, remote]})

        _, new = self._settings.update(change)
        self._auditor.record(
            "remote.add",
            detail={"remotes": len(new.remotes), "checked": check, "endpoint": endpoint is not None},
        )
        return remote

    @_audited("remote.remove")
    def remove(self, name: str) -> RemoteConfig:
        """Forget the remote *name* (its objects stay in the bucket); audited (``remote.remove``).

        :raises InvalidInput: there is no remote of that name.
        """
        gone: builtins.list[RemoteConfig] = []

        def change(cfg: VaultConfig) -> VaultConfig:
            gone.extend(r for r in cfg.remotes if r.name == name)
            if not gone:
                raise InvalidInput("no remote of that name; 'sessionseal remote list' shows them")
            return cfg.model_copy(update={"remotes": [r for r in cfg.remotes if r.name != name]})

        _, new = self._settings.update(change)
        self._sync.drop_erased(gone[0].device)  # no push will tombstone them there now
        self._auditor.record("remote.remove", detail={"remotes": len(new.remotes)})
        return gone[0]

    @staticmethod
    def _probe(remote: RemoteConfig) -> None:
        from .. import _remote, _s3

        url = _remote.parse_url(remote.url)
        store = _s3.open_store(url, endpoint=remote.endpoint, profile=remote.profile, region=remote.region)
        _s3.probe(store, _remote.probe_key(url, remote.device, uuid.uuid4().bytes))


def _unused(cfg: VaultConfig, name: str) -> None:
    if any(r.name == name for r in cfg.remotes):
        raise InvalidInput("a remote of that name exists; remove it first ('sessionseal remote remove NAME')")
