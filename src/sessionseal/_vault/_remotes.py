"""Remotes: the S3-compatible stores a vault syncs through, kept in its encrypted config
(docs/sync.md).  Each change is a read-modify-write of the config under the vault lock
(:meth:`Settings.update`), and audited; credentials are never stored, they come from the usual
AWS sources when a remote is used.
"""

from __future__ import annotations

import builtins
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, SessionSealError
from ._auditing import Auditor, audited_by
from ._autopush import AutoPush
from ._devices import Devices
from ._settings import Settings
from ._sync import Progress, Sync
from ._syncprune import DEFAULT_MIN_AGE, PruneResult
from ._syncstate import PullResult, PushResult

if TYPE_CHECKING:
    from .._config import RemoteConfig, VaultConfig

__all__ = ["Remotes"]

_audited = audited_by(lambda remotes: remotes._auditor)


class Remotes:
    """``vault.remotes``: list, add and remove the vault's remotes (docs/api.md, "Remotes")."""

    def __init__(self, settings: Settings, auditor: Auditor, sync: Sync, autopush: AutoPush) -> None:
        self._settings = settings
        self._auditor = auditor
        self._sync = sync
        self._autopush = autopush

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

    @_audited("remote.auto")
    def auto(self, name: str, *, on: bool, delay: float = 5.0) -> RemoteConfig:
        """Turn the automatic push to the remote *name* on (a background push *delay* seconds
        after a write, debounced; docs/sync.md, "Automatic push") or off.  Audited
        (``remote.auto``).

        :raises InvalidInput: no such remote; a delay outside 0..3600 s; on for a passphrase
            vault (a background process cannot ask for the passphrase).
        """
        from .._config import AUTO_PUSH_MAX_DELAY

        if on and not self._autopush.keychain:
            raise InvalidInput(
                "automatic push needs a keychain vault: a push in the background cannot ask for the "
                "passphrase; run 'sessionseal sync --push' after your writes instead"
            )
        if on and not 0 <= delay <= AUTO_PUSH_MAX_DELAY:  # NaN fails both
            raise InvalidInput(f"the automatic push's delay is 0 to {AUTO_PUSH_MAX_DELAY:g} seconds")
        changed: builtins.list[RemoteConfig] = []

        def change(cfg: VaultConfig) -> VaultConfig:
            remotes = []
            for r in cfg.remotes:
                if r.name == name:
                    r = r.model_copy(update={"auto_push": float(delay) if on else None})  # noqa: PLW2901
                    changed.append(r)
                remotes.append(r)
            if not changed:
                raise InvalidInput("no remote of that name; 'sessionseal remote list' shows them")
            return cfg.model_copy(update={"remotes": remotes})

        _, new = self._settings.update(change)
        self._auditor.record(
            "remote.auto",
            detail={"on": on, "auto_remotes": sum(r.auto_push is not None for r in new.remotes)},
        )
        return changed[-1]

    def auto_status(self) -> dict[str, dict[str, Any]]:
        """The last automatic push's outcome to each remote, by name (``at``, ``outcome``: ok or
        error, ``error`` and ``exit_code`` of a failure, counts of a success); ``""`` holds the
        last background run's, when it could not open the vault (a locked keychain).  Empty
        when none ran."""
        doc = self._autopush.outcomes()
        by_device = doc.get("remotes", {})
        found = {
            r.name: dict(by_device[r.device.hex])
            for r in self._settings.read(checked=False).remotes
            if isinstance(by_device.get(r.device.hex), dict)
        }
        last = doc.get("last")
        if isinstance(last, dict) and last.get("outcome") != "ok" and "remotes" not in last and not found:
            found[""] = dict(last)
        return found

    def run_auto(self) -> dict[str, dict[str, Any]] | None:
        """The background push (``sessionseal sync --auto``, started by a write): wait the
        delay, then push to every remote with automatic push on; each outcome audited
        (``sync.push`` with ``auto``) and kept for :meth:`auto_status`.  None when another
        one is pending."""
        try:
            remotes = [r for r in self._settings.read().remotes if r.auto_push is not None]
        except SessionSealError as exc:  # the vault's keys (read lazily: here) or config
            self._autopush.unopened(exc)
            raise
        return self._autopush.run(remotes, lambda name: self._sync.push(name, auto=True).counts(), self._auditor)

    def prune(self, name: str | None = None, *, min_age: float = DEFAULT_MIN_AGE, dry_run: bool = False) -> PruneResult:
        """Delete this device's content objects on the remote *name* (the only one when None)
        that no entry of its log names (a push killed between an object's PUT and its entry's
        commit leaves one) and that are older than *min_age* seconds (a day by default); never
        under another device's prefix, and nothing at all when it cannot prove it (an entry it
        cannot open, an outbox not sent: ``unproven`` says why).  With *dry_run*, count them.
        Audited (``sync.prune``, counts only).

        :raises InvalidInput: no such remote, none, or several and *name* is None.
        :raises RemoteError: unreachable; this device never pushed there; its log fails its check.
        :raises LockTimeout: another sync of this vault is running.
        """
        return self._sync.prune(name, min_age=min_age, dry_run=dry_run)

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
