"""The components of an open vault, as the wiring hands them out (``Vault.parts``): what
``verify`` reads and repairs, and the seam tests and tools reach them by (internal: docs/api.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._audit import AuditLog
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
    from ._transfer import Transfer

__all__ = ["Parts"]


@dataclass(frozen=True)
class Parts:
    """The components of an open vault, wired by the facade: what verify reads and repairs,
    and ``Vault.parts``, the seam tests and tools reach them by (internal: docs/api.md)."""

    path: Path
    ctx: VaultContext
    keys: Keys
    store: SessionStore
    checkpoints: Checkpoints
    index: IndexCache
    fulltext: FullText
    settings: Settings
    erasure: Erasure
    audit_log: AuditLog
    #: The facade's audited reindex (a repair that rebuilds the index is recorded as one).
    reindex: Callable[[], int]
    auditor: Auditor
    listing: Listing
    transfer: Transfer
    importer: TranscriptImporter
    formats: Formats
    #: Push to a remote (``Vault.remotes.push``; issue 26, docs/sync.md).
    sync: Sync
    #: The automatic push after writes (``remote auto``; docs/sync.md, "Automatic push").
    autopush: AutoPush
    #: The full-text index's tier merges, out of the writers' calls (``vault.maintenance``).
    maintenance: Maintenance

    @property
    def devices(self) -> Devices:
        """This device's keys on the vault's remotes (``Vault.remotes.devices``)."""
        return self.sync.devices
