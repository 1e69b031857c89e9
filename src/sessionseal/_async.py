"""The asyncio face of :class:`~sessionseal.Vault` for agent frameworks.

Every method runs the blocking vault operation in a worker thread
(``asyncio.to_thread``), so disk I/O, fsync, locks, scrypt and keychain calls never
block the event loop.  The vault is thread-safe, so concurrent awaits are fine.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._checkpoints import Checkpoint
from ._keystore import KeyProvider
from ._query import ListQuery
from ._retention import CleanupPlan, RetentionConfig
from ._vault import CleanupResult, SearchHit, Vault, VaultInfo, VaultStats
from .models import Session, SessionStatus, SessionSummary

if TYPE_CHECKING:
    from ._recorder import AsyncRecorder

__all__ = ["AsyncVault"]


class AsyncVault:
    """Async wrapper: ``async with await AsyncVault.open(path) as vault: await vault.save(s)``."""

    def __init__(self, vault: Vault) -> None:
        self.sync = vault

    @classmethod
    async def init(cls, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> AsyncVault:
        """Create a vault (see :meth:`Vault.init`)."""
        return cls(await asyncio.to_thread(Vault.init, path, **kwargs))

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        key_provider: KeyProvider | None = None,
        passphrase: str | bytes | Callable[[], str | bytes] | None = None,
        auto_cleanup: bool = True,
    ) -> AsyncVault:
        """Open a vault (see :meth:`Vault.open`; an automatic cleanup runs in the worker thread too)."""
        vault = await asyncio.to_thread(
            Vault.open, path, key_provider=key_provider, passphrase=passphrase, auto_cleanup=auto_cleanup
        )
        return cls(vault)

    async def save(self, session: Session | Mapping[str, Any] | str | bytes, *, touch: bool = True) -> uuid.UUID:
        """See :meth:`Vault.save`."""
        return await asyncio.to_thread(self.sync.save, session, touch=touch)

    async def load(self, session_id: uuid.UUID | str) -> Session:
        """See :meth:`Vault.load`."""
        return await asyncio.to_thread(self.sync.load, session_id)

    async def load_json(self, session_id: uuid.UUID | str) -> bytes:
        """See :meth:`Vault.load_json`."""
        return await asyncio.to_thread(self.sync.load_json, session_id)

    async def append(self, session_id: uuid.UUID | str, events: Iterable[Mapping[str, Any]]) -> int:
        """See :meth:`Vault.append`."""
        return await asyncio.to_thread(self.sync.append, session_id, builtins.list(events))

    async def record(
        self, session_id: uuid.UUID | str | None = None, *, title: str = "", autosave: float | None = 5.0, **fields: Any
    ) -> AsyncRecorder:
        """See :meth:`Vault.record`: ``async with await vault.record() as rec: rec.append_message(...)``;
        autosave is an asyncio task, and every flush runs in a worker thread."""
        from ._recorder import AsyncRecorder

        sid = await asyncio.to_thread(self.sync._session_to_record, session_id, title, fields)
        return AsyncRecorder(self.sync, sid, autosave=autosave)

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

    async def list(self, query: ListQuery | None = None, *, archived: bool | None = False) -> list[SessionSummary]:
        """See :meth:`Vault.list`."""
        return await asyncio.to_thread(self.sync.list, query, archived=archived)

    async def delete(self, session_id: uuid.UUID | str) -> None:
        """See :meth:`Vault.delete`."""
        await asyncio.to_thread(self.sync.delete, session_id)

    async def search(
        self, text: str, query: ListQuery | None = None, *, case_sensitive: bool = False
    ) -> builtins.list[SearchHit]:
        """See :meth:`Vault.search` (sessions are decrypted in worker threads)."""
        return await asyncio.to_thread(self.sync.search, text, query, case_sensitive=case_sensitive)

    async def latest(self, query: ListQuery | None = None) -> SessionSummary | None:
        """See :meth:`Vault.latest`."""
        return await asyncio.to_thread(self.sync.latest, query)

    async def list_json(
        self, query: ListQuery | None = None, *, archived: bool | None = False
    ) -> tuple[bytes, builtins.list[str]]:
        """See :meth:`Vault.list_json`."""
        return await asyncio.to_thread(self.sync.list_json, query, archived=archived)

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

    async def stats(self) -> VaultStats:
        """See :meth:`Vault.stats`."""
        return await asyncio.to_thread(self.sync.stats)

    async def plan_cleanup(self, policy: RetentionConfig | Mapping[str, Any] | None = None) -> CleanupPlan:
        """See :meth:`Vault.plan_cleanup`."""
        return await asyncio.to_thread(self.sync.plan_cleanup, policy)

    async def cleanup(
        self, policy: RetentionConfig | Mapping[str, Any] | None = None, *, plan: CleanupPlan | None = None
    ) -> CleanupResult:
        """See :meth:`Vault.cleanup`."""
        return await asyncio.to_thread(self.sync.cleanup, policy, plan=plan)

    async def reindex(self) -> int:
        """See :meth:`Vault.reindex`."""
        return await asyncio.to_thread(self.sync.reindex)

    async def rekey(self, *, from_keyring_file: bool = False) -> int:
        """See :meth:`Vault.rekey`."""
        return await asyncio.to_thread(self.sync.rekey, from_keyring_file=from_keyring_file)

    async def change_passphrase(self, new_passphrase: str | bytes | Callable[[], str | bytes]) -> bool:
        """See :meth:`Vault.change_passphrase` (scrypt and a callable run in the worker thread)."""
        return await asyncio.to_thread(self.sync.change_passphrase, new_passphrase)

    async def info(self) -> VaultInfo:
        """See :meth:`Vault.info`."""
        return await asyncio.to_thread(self.sync.info)

    async def close(self) -> None:
        """Release the vault's descriptors."""
        self.sync.close()

    async def __aenter__(self) -> AsyncVault:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# Shown as sessionseal.X in tracebacks and docs, where the public facade exports it (as httpx does).
AsyncVault.__module__ = "sessionseal"
