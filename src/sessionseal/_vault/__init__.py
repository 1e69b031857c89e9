"""The vault: :class:`Vault` (``_facade.py``) over one component per concern (docs/design.md,
"The house"); this module only re-exports the names the package and the tests import.

Vault tree (docs/design.md)::

    <vault>/            0700
      vault.json        plaintext, no secrets: format, vault id, key provider, created
      keytable.sst      vault secret + session keys, under the master key
      keyfile.json      passphrase vaults only: master keys wrapped under scrypt(passphrase)
      config.sst        the vault's config (sanitizer extensions, audit, retention), encrypted
      index.sst         every session's summary, under the master key (a verified cache)
      autoclean.json    when the next automatic cleanup is due (only with retention.auto_interval)
      autopush.json     the automatic push's last outcomes (only once one ran; docs/sync.md)
      ftsmerge.json     a full-text tier merge pending, the last merge's outcome (only once one was due)
      sessions/<hex>.sst  one container per session; <hex> = HMAC(file-name key, session id)
      checkpoints/<hex>-<n>.ckp  checkpoint n of that session, under the session's key
      audit/            the audit log (docs/spec/audit-log.md)
      locks/vault.lock, locks/cleanup.lock, locks/import.lock, locks/<hex>.lock

Write ordering (the invariants that make crashes safe):

* ``vault.json`` is written last at init: its presence means the vault is complete.
* A new session's key is appended to the key table (durably) *before* its container
  is written: a crash leaves at worst an unused key, never an undecryptable session.
* A deleted session's key leaves the key table *before* its container is unlinked:
  once the key is gone the session is gone, whatever happens to the file.
* Lock order is import lock, cleanup lock, then session locks, then the vault lock; a lock taken out of
  this order is taken without waiting (the orphan sweep's session locks).
"""

from .._checkpoints import Checkpoint
from ._auditing import done_but_unrecorded
from ._common import MAX_SESSION_BYTES
from ._facade import Vault
from ._results import (
    CleanupResult,
    ConfigAccepted,
    ExportResult,
    FormatStatus,
    HeadStatus,
    ImportResult,
    SearchHit,
    SearchHits,
    TranscriptOutcome,
    VaultInfo,
    VaultStats,
)
from ._verify import Parts, VerifyProblem, VerifyResult

__all__ = [
    "MAX_SESSION_BYTES",
    "Checkpoint",
    "CleanupResult",
    "ConfigAccepted",
    "ExportResult",
    "FormatStatus",
    "HeadStatus",
    "ImportResult",
    "Parts",
    "SearchHit",
    "SearchHits",
    "TranscriptOutcome",
    "Vault",
    "VaultInfo",
    "VaultStats",
    "VerifyProblem",
    "VerifyResult",
    "done_but_unrecorded",
]

# Shown as sessionseal.X in tracebacks and docs, where the public facade exports it (as httpx does).
Vault.__module__ = "sessionseal"
VaultInfo.__module__ = "sessionseal"
VaultStats.__module__ = "sessionseal"
SearchHit.__module__ = "sessionseal"
SearchHits.__module__ = "sessionseal"
CleanupResult.__module__ = "sessionseal"
HeadStatus.__module__ = "sessionseal"
