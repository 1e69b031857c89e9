"""The asyncio face of :class:`~sessionseal.Vault` for agent frameworks.

Every method runs the blocking vault operation in a worker thread
(``asyncio.to_thread``), so disk I/O, fsync, locks, scrypt and keychain calls never
block the event loop.  The vault is thread-safe, so concurrent awaits are fine.

The surface mirrors :class:`Vault` name for name, with the same parameters (a test compares
the two by introspection).  Three kinds of member are not plain coroutines, by design:

* :meth:`AsyncVault.audit_records` is an async iterator (``async for``): the sync one is
  lazy, and this one reads the log in batches in a worker thread rather than all at once;
* :meth:`AsyncVault.record` is a coroutine that returns an :class:`AsyncRecorder`, an async
  context manager (``async with await vault.record() as rec``);
* attributes and properties (``path``, ``vault_id``, ``audit_log_path``, ...) read no disk
  and are plain properties.

Callbacks (``progress``, a passphrase callable) are called in the worker thread, as the
sync vault calls them in its caller's thread: one that touches the event loop must use
``loop.call_soon_threadsafe``.  Iterables the caller passes (events, ids, paths) are read
into a list in the event loop's thread first, so a generator is never run in another thread.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Unpack

from ._vault import Vault

if TYPE_CHECKING:
    from ._audit import VerifyReport
    from ._checkpoints import Checkpoint
    from ._config import RemoteConfig, VaultConfig
    from ._keystore import KeyProvider
    from ._query import ListQuery
    from ._recorder import AsyncRecorder, Recorder
    from ._retention import CleanupPlan, RetentionConfig
    from ._usage import UsageQuery, UsageReport
    from ._vault import (
        CleanupResult,
        ConfigAccepted,
        ExportResult,
        FormatStatus,
        HeadStatus,
        ImportResult,
        Parts,
        SearchHits,
        TranscriptOutcome,
        VaultInfo,
        VaultStats,
    )
    from ._vault._backups import Backups, Snapshot
    from ._vault._ftsmerge import Maintenance, MergeStatus, Mode
    from ._vault._remotes import Remotes
    from ._vault._search import SearchHow
    from ._vault._syncprune import PruneResult
    from ._vault._syncstate import PullResult, PushResult
    from ._verify import VerifyResult
    from .models import Session, SessionStatus, SessionSummary

__all__ = ["AsyncVault"]

#: Audit records read per worker-thread call by :meth:`AsyncVault.audit_records`.
_AUDIT_BATCH: Final = 512


class AsyncVault:
    """Async wrapper: ``async with await AsyncVault.open(path) as vault: await vault.save(s)``."""

    def __init__(self, vault: Vault) -> None:
        self.sync = vault

    #: Largest serialized session accepted (as :attr:`Vault.MAX_SESSION_BYTES`).
    MAX_SESSION_BYTES: Final = Vault.MAX_SESSION_BYTES

    # -- construction ---------------------------------------------------------------

    @classmethod
    async def init(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        key_provider: str | KeyProvider = "keychain",
        passphrase: str | bytes | Callable[[], str | bytes] | None = None,
        interactive: bool = False,
    ) -> AsyncVault:
        """Create a vault (see :meth:`Vault.init`)."""
        vault = await asyncio.to_thread(
            Vault.init, path, key_provider=key_provider, passphrase=passphrase, interactive=interactive
        )
        return cls(vault)

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        key_provider: KeyProvider | None = None,
        passphrase: str | bytes | Callable[[], str | bytes] | None = None,
        interactive: bool = False,
        auto_cleanup: bool = True,
    ) -> AsyncVault:
        """Open a vault (see :meth:`Vault.open`; an automatic cleanup runs in the worker thread too)."""
        vault = await asyncio.to_thread(
            Vault.open,
            path,
            key_provider=key_provider,
            passphrase=passphrase,
            interactive=interactive,
            auto_cleanup=auto_cleanup,
        )
        return cls(vault)

    async def close(self) -> None:
        """Release the vault's descriptors (see :meth:`Vault.close`)."""
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> AsyncVault:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- attributes (no disk read: plain properties) ------------------------------------

    @property
    def path(self) -> Path:
        """The vault's directory (see :attr:`Vault.path`)."""
        return self.sync.path

    @property
    def vault_id(self) -> uuid.UUID:
        """The vault's id (see :attr:`Vault.vault_id`)."""
        return self.sync.vault_id

    @property
    def last_auto_cleanup(self) -> CleanupResult | None:
        """What the automatic cleanup run by :meth:`open` did, if one ran."""
        return self.sync.last_auto_cleanup

    @property
    def audit_log_path(self) -> Path:
        """The current audit log file (see :attr:`Vault.audit_log_path`)."""
        return self.sync.audit_log_path

    @property
    def parts(self) -> Parts:
        """The sync vault's components (see :attr:`Vault.parts`: internal, for tests and tools)."""
        return self.sync.parts

    @property
    def remotes(self) -> AsyncRemotes:
        """The vault's remotes, each call in a worker thread (see :attr:`Vault.remotes`)."""
        return AsyncRemotes(self.sync.remotes)

    @property
    def backups(self) -> AsyncBackups:
        """Snapshots and recovery kits, each call in a worker thread (see :attr:`Vault.backups`)."""
        return AsyncBackups(self.sync.backups)

    @property
    def maintenance(self) -> AsyncMaintenance:
        """The full-text index's tier merges, a run in a worker thread (see :attr:`Vault.maintenance`)."""
        return AsyncMaintenance(self.sync.maintenance)

    # -- sessions -------------------------------------------------------------------

    async def save(self, session: Session | Mapping[str, Any] | str | bytes, *, touch: bool = True) -> uuid.UUID:
        """See :meth:`Vault.save`."""
        return await asyncio.to_thread(self.sync.save, session, touch=touch)

    async def load(self, session_id: uuid.UUID | str) -> Session:
        """See :meth:`Vault.load`."""
        return await asyncio.to_thread(self.sync.load, session_id)

    async def load_json(self, session_id: uuid.UUID | str, *, into: str | None = None) -> bytes:
        """See :meth:`Vault.load_json`."""
        return await asyncio.to_thread(self.sync.load_json, session_id, into=into)

    async def append(self, session_id: uuid.UUID | str, events: Iterable[Mapping[str, Any]]) -> int:
        """See :meth:`Vault.append`."""
        return await asyncio.to_thread(self.sync.append, session_id, builtins.list(events))

    async def record(
        self, session_id: uuid.UUID | str | None = None, *, title: str = "", autosave: float | None = 5.0, **fields: Any
    ) -> AsyncRecorder:
        """See :meth:`Vault.record`: ``async with await vault.record() as rec: rec.append_message(...)``;
        autosave is an asyncio task, and every flush runs in a worker thread."""
        from ._recorder import AsyncRecorder

        def start() -> Recorder:
            # A sync recorder without an autosave thread: the async one autosaves from a task.
            return self.sync.record(session_id, title=title, autosave=None, **fields)

        return AsyncRecorder(await asyncio.to_thread(start), autosave=autosave)

    async def delete(self, session_id: uuid.UUID | str) -> None:
        """See :meth:`Vault.delete`."""
        await asyncio.to_thread(self.sync.delete, session_id)

    # -- checkpoints and forks -------------------------------------------------------

    async def checkpoint(self, session_id: uuid.UUID | str, name: str | None = None) -> Checkpoint:
        """See :meth:`Vault.checkpoint`."""
        return await asyncio.to_thread(self.sync.checkpoint, session_id, name)

    async def checkpoints(self, session_id: uuid.UUID | str) -> builtins.list[Checkpoint]:
        """See :meth:`Vault.checkpoints`."""
        return await asyncio.to_thread(self.sync.checkpoints, session_id)

    async def restore_checkpoint(self, session_id: uuid.UUID | str, checkpoint: str | int) -> Checkpoint:
        """See :meth:`Vault.restore_checkpoint`."""
        return await asyncio.to_thread(self.sync.restore_checkpoint, session_id, checkpoint)

    async def delete_checkpoint(self, session_id: uuid.UUID | str, checkpoint: str | int) -> Checkpoint:
        """See :meth:`Vault.delete_checkpoint`."""
        return await asyncio.to_thread(self.sync.delete_checkpoint, session_id, checkpoint)

    async def fork(
        self,
        session_id: uuid.UUID | str,
        *,
        checkpoint: str | int | None = None,
        title: str | None = None,
        continuation: bool = False,
    ) -> uuid.UUID:
        """See :meth:`Vault.fork`."""
        return await asyncio.to_thread(
            self.sync.fork, session_id, checkpoint=checkpoint, title=title, continuation=continuation
        )

    # -- listing and search ----------------------------------------------------------

    async def list(self, query: ListQuery | None = None, *, archived: bool | None = False) -> list[SessionSummary]:
        """See :meth:`Vault.list`."""
        return await asyncio.to_thread(self.sync.list, query, archived=archived)

    async def list_with_problems(
        self, query: ListQuery | None = None, *, archived: bool | None = False
    ) -> tuple[builtins.list[SessionSummary], builtins.list[str]]:
        """See :meth:`Vault.list_with_problems`."""
        return await asyncio.to_thread(self.sync.list_with_problems, query, archived=archived)

    async def list_json(
        self, query: ListQuery | None = None, *, archived: bool | None = False
    ) -> tuple[bytes, builtins.list[str]]:
        """See :meth:`Vault.list_json`."""
        return await asyncio.to_thread(self.sync.list_json, query, archived=archived)

    async def latest(self, query: ListQuery | None = None) -> SessionSummary | None:
        """See :meth:`Vault.latest`."""
        return await asyncio.to_thread(self.sync.latest, query)

    async def search(self, text: str, query: ListQuery | None = None, **how: Unpack[SearchHow]) -> SearchHits:
        """See :meth:`Vault.search` (the index is read, and sessions decrypted, in worker threads)."""
        return await asyncio.to_thread(self.sync.search, text, query, **how)

    async def reindex(self, *, progress: Callable[[int, int], None] | None = None) -> int:
        """See :meth:`Vault.reindex` (*progress* is called from the worker thread)."""
        return await asyncio.to_thread(self.sync.reindex, progress=progress)

    async def stats(self) -> VaultStats:
        """See :meth:`Vault.stats`."""
        return await asyncio.to_thread(self.sync.stats)

    async def usage(self, query: UsageQuery | None = None) -> UsageReport:
        """See :meth:`Vault.usage`."""
        return await asyncio.to_thread(self.sync.usage, query)

    # -- metadata edits --------------------------------------------------------------

    async def rename(self, session_id: uuid.UUID | str, title: str) -> bool:
        """See :meth:`Vault.rename`."""
        return await asyncio.to_thread(self.sync.rename, session_id, title)

    async def describe(self, session_id: uuid.UUID | str, text: str) -> bool:
        """See :meth:`Vault.describe`."""
        return await asyncio.to_thread(self.sync.describe, session_id, text)

    async def tag(
        self, session_id: uuid.UUID | str, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> builtins.list[str]:
        """See :meth:`Vault.tag`."""
        return await asyncio.to_thread(self.sync.tag, session_id, add=add, remove=remove)

    async def set_status(self, session_id: uuid.UUID | str, status: SessionStatus | str) -> bool:
        """See :meth:`Vault.set_status`."""
        return await asyncio.to_thread(self.sync.set_status, session_id, status)

    async def link(self, session_id: uuid.UUID | str, *, parent: uuid.UUID | str | None) -> bool:
        """See :meth:`Vault.link`."""
        return await asyncio.to_thread(self.sync.link, session_id, parent=parent)

    async def pin(self, session_id: uuid.UUID | str) -> bool:
        """See :meth:`Vault.pin`."""
        return await asyncio.to_thread(self.sync.pin, session_id)

    async def unpin(self, session_id: uuid.UUID | str) -> bool:
        """See :meth:`Vault.unpin`."""
        return await asyncio.to_thread(self.sync.unpin, session_id)

    async def archive(self, session_id: uuid.UUID | str) -> bool:
        """See :meth:`Vault.archive`."""
        return await asyncio.to_thread(self.sync.archive, session_id)

    async def unarchive(self, session_id: uuid.UUID | str) -> bool:
        """See :meth:`Vault.unarchive`."""
        return await asyncio.to_thread(self.sync.unarchive, session_id)

    # -- retention and erasure -------------------------------------------------------

    async def plan_cleanup(
        self, policy: RetentionConfig | Mapping[str, Any] | None = None, *, now: datetime | None = None
    ) -> CleanupPlan:
        """See :meth:`Vault.plan_cleanup`."""
        return await asyncio.to_thread(self.sync.plan_cleanup, policy, now=now)

    async def cleanup(
        self,
        policy: RetentionConfig | Mapping[str, Any] | None = None,
        *,
        plan: CleanupPlan | None = None,
        now: datetime | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> CleanupResult:
        """See :meth:`Vault.cleanup` (*progress* is called in the worker thread)."""
        return await asyncio.to_thread(self.sync.cleanup, policy, plan=plan, now=now, progress=progress)

    async def rekey(self, *, from_keyring_file: bool = False) -> int:
        """See :meth:`Vault.rekey`."""
        return await asyncio.to_thread(self.sync.rekey, from_keyring_file=from_keyring_file)

    async def change_passphrase(self, new_passphrase: str | bytes | Callable[[], str | bytes]) -> bool:
        """See :meth:`Vault.change_passphrase` (scrypt and a callable run in the worker thread)."""
        return await asyncio.to_thread(self.sync.change_passphrase, new_passphrase)

    async def destroy(self) -> None:
        """See :meth:`Vault.destroy`."""
        await asyncio.to_thread(self.sync.destroy)

    # -- export, import, formats -----------------------------------------------------

    async def export(
        self,
        session_ids: Iterable[uuid.UUID | str] | None = None,
        *,
        query: ListQuery | None = None,
        format: str = "bundle",
        passphrase: str | bytes | None = None,
        plaintext: bool = False,
        out: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        log2_n: int | None = None,
    ) -> ExportResult:
        """See :meth:`Vault.export` (scrypt for a bundle runs in the worker thread)."""
        ids = None if session_ids is None else builtins.list(session_ids)
        return await asyncio.to_thread(
            self.sync.export,
            ids,
            query=query,
            format=format,
            passphrase=passphrase,
            plaintext=plaintext,
            out=out,
            overwrite=overwrite,
            log2_n=log2_n,
        )

    async def import_sessions(
        self,
        source: bytes | str | os.PathLike[str],
        *,
        passphrase: str | bytes | Callable[[], str | bytes] | None = None,
        on_conflict: str = "skip",
        allow_expensive_kdf: bool = False,
    ) -> ImportResult:
        """See :meth:`Vault.import_sessions`."""
        return await asyncio.to_thread(
            self.sync.import_sessions,
            source,
            passphrase=passphrase,
            on_conflict=on_conflict,
            allow_expensive_kdf=allow_expensive_kdf,
        )

    async def import_transcripts(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        dry_run: bool = False,
        since: datetime | None = None,
        remove_originals: bool = False,
        quiet_period: float | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> builtins.list[TranscriptOutcome]:
        """See :meth:`Vault.import_transcripts` (*progress* is called in the worker thread)."""
        return await asyncio.to_thread(
            self.sync.import_transcripts,
            builtins.list(paths),
            dry_run=dry_run,
            since=since,
            remove_originals=remove_originals,
            quiet_period=quiet_period,
            progress=progress,
        )

    async def formats(self) -> builtins.list[FormatStatus]:
        """See :meth:`Vault.formats`."""
        return await asyncio.to_thread(self.sync.formats)

    async def migrate(self, *, dry_run: bool = False) -> tuple[builtins.list[FormatStatus], builtins.list[str]]:
        """See :meth:`Vault.migrate`."""
        return await asyncio.to_thread(self.sync.migrate, dry_run=dry_run)

    # -- configuration, information, checks -------------------------------------------

    async def config(self) -> VaultConfig:
        """See :meth:`Vault.config`."""
        return await asyncio.to_thread(self.sync.config)

    async def set_config(self, config: VaultConfig | dict[str, Any] | str | bytes) -> VaultConfig:
        """See :meth:`Vault.set_config`."""
        return await asyncio.to_thread(self.sync.set_config, config)

    async def accept_config(self) -> ConfigAccepted:
        """See :meth:`Vault.accept_config`."""
        return await asyncio.to_thread(self.sync.accept_config)

    async def info(self) -> VaultInfo:
        """See :meth:`Vault.info`."""
        return await asyncio.to_thread(self.sync.info)

    async def head(self, *, accept: bool = False) -> HeadStatus:
        """See :meth:`Vault.head`."""
        return await asyncio.to_thread(self.sync.head, accept=accept)

    async def verify(
        self, *, read_data: bool = False, repair: bool = False, progress: Callable[[int, int], None] | None = None
    ) -> VerifyResult:
        """See :meth:`Vault.verify` (*progress* is called in the worker thread)."""
        return await asyncio.to_thread(self.sync.verify, read_data=read_data, repair=repair, progress=progress)

    async def verify_audit(self, *, repair: bool = False) -> VerifyReport:
        """See :meth:`Vault.verify_audit`."""
        return await asyncio.to_thread(self.sync.verify_audit, repair=repair)

    async def audit_entries(
        self, *, session: uuid.UUID | str | None = None
    ) -> tuple[builtins.list[dict[str, Any]], VerifyReport]:
        """See :meth:`Vault.audit_entries`."""
        return await asyncio.to_thread(self.sync.audit_entries, session=session)

    async def audit_records(self) -> AsyncIterator[dict[str, Any]]:
        """See :meth:`Vault.audit_records`: ``async for record in vault.audit_records()``.

        The log is read in batches, each in a worker thread, so a long log neither blocks the
        event loop nor is held in memory at once.
        """
        records: Iterator[dict[str, Any]] = self.sync.audit_records()

        def batch() -> builtins.list[dict[str, Any]]:
            out: builtins.list[dict[str, Any]] = []
            for rec in records:
                out.append(rec)
                if len(out) == _AUDIT_BATCH:
                    break
            return out

        while chunk := await asyncio.to_thread(batch):
            for rec in chunk:
                yield rec


# Shown as sessionseal.X in tracebacks and docs, where the public facade exports it (as httpx does).
AsyncVault.__module__ = "sessionseal"


class AsyncRemotes:
    """:attr:`Vault.remotes` for asyncio: ``add`` checks the remote over the network, so every
    call runs in a worker thread, never on the event loop."""

    def __init__(self, remotes: Remotes) -> None:
        self.sync = remotes

    async def list(self) -> builtins.list[RemoteConfig]:
        """See ``Vault.remotes.list``."""
        return await asyncio.to_thread(self.sync.list)

    async def add(
        self,
        name: str,
        url: str,
        *,
        endpoint: str | None = None,
        profile: str | None = None,
        region: str | None = None,
        check: bool = True,
    ) -> RemoteConfig:
        """See ``Vault.remotes.add``."""
        return await asyncio.to_thread(
            self.sync.add, name, url, endpoint=endpoint, profile=profile, region=region, check=check
        )

    async def remove(self, name: str) -> RemoteConfig:
        """See ``Vault.remotes.remove``."""
        return await asyncio.to_thread(self.sync.remove, name)

    async def auto(self, name: str, *, on: bool, delay: float = 5.0) -> RemoteConfig:
        """See ``Vault.remotes.auto``."""
        return await asyncio.to_thread(self.sync.auto, name, on=on, delay=delay)

    async def push(self, name: str | None = None, *, dry_run: bool = False) -> PushResult:
        """See ``Vault.remotes.push`` (network and disk: in a worker thread)."""
        return await asyncio.to_thread(self.sync.push, name, dry_run=dry_run)

    async def pull(self, name: str | None = None, *, dry_run: bool = False) -> PullResult:
        """See ``Vault.remotes.pull`` (network and disk: in a worker thread)."""
        return await asyncio.to_thread(self.sync.pull, name, dry_run=dry_run)

    async def prune(self, name: str | None = None, *, min_age: float = 86400.0, dry_run: bool = False) -> PruneResult:
        """See ``Vault.remotes.prune`` (network: in a worker thread)."""
        return await asyncio.to_thread(self.sync.prune, name, min_age=min_age, dry_run=dry_run)


class AsyncBackups:
    """:attr:`Vault.backups` for asyncio: a snapshot copies the whole vault and a recovery kit
    runs scrypt, so every call runs in a worker thread, never on the event loop."""

    def __init__(self, backups: Backups) -> None:
        self.sync = backups

    async def snapshot(
        self, to: str | os.PathLike[str], *, progress: Callable[[int, int], None] | None = None
    ) -> Snapshot:
        """See ``Vault.backups.snapshot`` (*progress* is called from the worker thread)."""
        return await asyncio.to_thread(self.sync.snapshot, to, progress=progress)

    async def export_kit(self, out: str | os.PathLike[str], passphrase: str) -> int:
        """See ``Vault.backups.export_kit``."""
        return await asyncio.to_thread(self.sync.export_kit, out, passphrase)

    async def imported(self, epoch: int) -> None:
        """See ``Vault.backups.imported``."""
        await asyncio.to_thread(self.sync.imported, epoch)


class AsyncMaintenance:
    """:attr:`Vault.maintenance` for asyncio: a merge is seconds of CPU and reading its status
    reads the index's manifest, so both run in a worker thread, never on the event loop.  (In the
    default ``thread`` mode a merge due by a call runs in the vault's merge thread, which
    :meth:`AsyncVault.close` stops; in ``inline``, at the call's end in its worker thread.)"""

    def __init__(self, maintenance: Maintenance) -> None:
        self.sync = maintenance

    @property
    def mode(self) -> Mode:
        """See ``Vault.maintenance.mode``."""
        return self.sync.mode

    @mode.setter
    def mode(self, value: Mode) -> None:
        self.sync.mode = value

    async def run(self) -> int | None:
        """See ``Vault.maintenance.run``."""
        return await asyncio.to_thread(self.sync.run)

    async def status(self) -> MergeStatus:
        """See ``Vault.maintenance.status``."""
        return await asyncio.to_thread(self.sync.status)

    async def wait(self, timeout: float | None = None) -> bool:
        """See ``Vault.maintenance.wait``."""
        return await asyncio.to_thread(self.sync.wait, timeout)
