"""Wiring: builds an open vault's components and hands each the others it needs.

The components never import each other upwards (docs/design.md, "The house"): what one needs
of another above it, or of the facade, it gets here as an object or a callback.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._auditing import Auditor
from ._autopush import AutoPush
from ._ckpts import Checkpoints
from ._context import VaultContext
from ._devices import Devices
from ._erasure import Erasure
from ._formats import Formats
from ._ftsmerge import Maintenance
from ._fulltext import FullText
from ._importer import TranscriptImporter
from ._indexcache import IndexCache
from ._keys import Keys
from ._listing import Listing
from ._settings import Settings
from ._store import SessionStore
from ._sync import Sync
from ._syncckpt import CheckpointSync
from ._transfer import Transfer
from ._verify import Parts

if TYPE_CHECKING:
    from .._checkpoints import Checkpoint
    from .._config import VaultConfig
    from .._keystore import KeyProvider, MasterKeys
    from .._keytable import KeyTable

__all__ = ["wire"]


def _erase(erasure: Erasure, sids: list[uuid.UUID], device: uuid.UUID) -> None:
    """A tombstone's erasure on pull: the vault's own delete, one rotation per batch, recording
    no tombstone of this device's own for the remote it came from (docs/sync.md, "Deletes")."""
    erasure.delete_many(sids, spare=device)


def wire(
    ctx: VaultContext,
    doc: dict[str, Any],
    provider: KeyProvider,
    *,
    checkpoint: Callable[[uuid.UUID, str], Checkpoint],
    save_model: Callable[..., dict[str, int]],
    config: Callable[[], VaultConfig],
    reindex: Callable[[], int],
) -> Parts:
    """The components of the vault at *ctx*; *checkpoint*, *save_model*, *config* and *reindex*
    are the facade's audited operations that some components run as steps."""

    # The keys write their records ('open', 'rekey.finish') through the auditor, which reads
    # the key table through the keys: the auditor is named here before it is made.
    def audit(action: str, outcome: str = "ok", **fields: Any) -> None:
        auditor.record(action, outcome, **fields)

    def reseal(master: MasterKeys, table: KeyTable) -> None:
        # Both indexes name sessions: they follow the key table to the new epoch first.
        index.reseal(master, table)
        fulltext.reseal(master, table)

    keys = Keys(
        ctx,
        provider,
        audit=audit,
        audit_unkeyed=lambda exc: auditor.unkeyed_open(exc),  # noqa: PLW0108 - made below
        reseal_index=reseal,
        after_rotation=lambda: fulltext.after_rotation(),  # noqa: PLW0108 - made below
    )
    settings = Settings(ctx, keys)
    auditor = Auditor(ctx, keys, settings=settings.audit_settings, created=doc.get("created_at"))
    index, fulltext = IndexCache(ctx, keys, audit=audit), FullText(ctx, keys)
    store = SessionStore(ctx, keys, index, sanitizer=settings.sanitizer, fulltext=fulltext)
    checkpoints = Checkpoints(ctx, keys, store)
    listing = Listing(ctx, keys, store, index, audit=audit, fulltext=fulltext)
    steps: dict[str, Any] = {"audit": audit, "checkpoint": checkpoint, "save_model": save_model}
    erasure = Erasure(
        ctx,
        keys,
        store,
        checkpoints,
        audit=audit,
        audit_erasures=auditor.erasures,
        audit_failure=auditor.failure,
        read_config=settings.read,
        summaries=listing.summaries,
    )
    return Parts(
        path=ctx.path,
        ctx=ctx,
        keys=keys,
        store=store,
        checkpoints=checkpoints,
        index=index,
        fulltext=fulltext,
        settings=settings,
        erasure=erasure,
        audit_log=auditor.log,
        reindex=reindex,
        auditor=auditor,
        listing=listing,
        maintenance=Maintenance(ctx, keys, fulltext, auditor, keychain=provider.name == "keychain"),
        transfer=Transfer(ctx, keys, store, checkpoints, listing, **steps),
        importer=TranscriptImporter(ctx, keys, store, **steps),
        formats=Formats(
            ctx,
            doc,
            keys,
            index,
            store=store,
            audit_log=auditor.log,
            audit=audit,
            audit_records=auditor.log.records,
            config=config,
            reindex=reindex,
        ),
        **_remote_parts(ctx, keys, store, settings, checkpoints, provider=provider, auditor=auditor, erasure=erasure),
    )


def _remote_parts(
    ctx: VaultContext,
    keys: Keys,
    store: SessionStore,
    settings: Settings,
    ckpts: Checkpoints,
    *,
    provider: KeyProvider,
    auditor: Auditor,
    erasure: Erasure,
) -> dict[str, Any]:
    """The sync, and the automatic push, told of every write the auditor records (docs/sync.md)."""
    autopush = AutoPush(ctx, settings, keychain=provider.name == "keychain")
    auditor.after_write = autopush.after_write
    erase = functools.partial(_erase, erasure)
    sync = Sync(ctx, keys, store, Devices(ctx, keys, settings), auditor, erase=erase)
    sync.ckpts = CheckpointSync(ctx, keys, store, ckpts, auditor, sanitizer=settings.sanitizer)
    return {"sync": sync, "autopush": autopush}
