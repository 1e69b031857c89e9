"""The public result types of :class:`~sessionseal.Vault`'s methods (plain data, no behaviour)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._retention import CleanupPlan

__all__ = [
    "CleanupResult",
    "ConfigAccepted",
    "ExportResult",
    "FormatStatus",
    "HeadStatus",
    "ImportResult",
    "SearchHit",
    "SearchHits",
    "TranscriptOutcome",
    "VaultInfo",
    "VaultStats",
]


@dataclass(frozen=True)
class VaultInfo:
    """What ``sessionseal info`` shows."""

    vault_path: str
    vault_id: str
    key_provider: str
    key_provider_detail: str
    format_version: int
    container_version: int
    created_at: str
    session_count: int
    stored_bytes: int
    audit_log_path: str | None
    #: The keyring backend class holding the master key (``module.Class``), for a keychain vault.
    key_backend: str | None = None


@dataclass(frozen=True)
class ExportResult:
    """What :meth:`Vault.export` wrote (or returns, without *out*)."""

    format: str
    session_ids: list[uuid.UUID]
    #: The exported bytes when no *out* path was given; None once written to *path*.
    data: bytes | None
    path: str | None
    nbytes: int


@dataclass
class ImportResult:
    """What :meth:`Vault.import_sessions` stored and skipped."""

    source: str  # "bundle" or "json"
    imported: list[uuid.UUID] = field(default_factory=list)
    #: (id as given, why): an id already in the vault, with ``on_conflict="skip"``.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: Secrets the sanitizer replaced on the way in, per rule.
    redactions: dict[str, int] = field(default_factory=dict)


@dataclass
class TranscriptOutcome:
    """What :meth:`Vault.import_transcripts` did with one transcript file."""

    path: str
    tool: str = ""
    #: The tool's own session id.
    source_id: str = ""
    session_id: uuid.UUID | None = None
    #: ``new``, ``appended`` (it grew), ``updated`` (it changed; the old version is kept as a
    #: checkpoint), ``unchanged``, ``skipped`` (older than *since*), ``superseded`` (an older
    #: Gemini CLI ``.json`` that its ``.jsonl`` took over: not stored, never removed) or ``failed``.
    action: str = ""
    messages: int = 0
    #: Record types kept as raw events, with counts.
    unknown: dict[str, int] = field(default_factory=dict)
    redactions: dict[str, int] = field(default_factory=dict)
    #: Claude Code tool-results files read with the transcript (docs/capture/claude.md).
    tool_results: int = 0
    removed: bool = False
    #: Why the original was kept, when its removal was asked for: a stable code
    #: (docs/importing.md): ``incomplete``, ``changed``, ``recent``, ``open-for-writing``,
    #: ``writers-unknown``, ``mismatch``, ``unsafe`` or ``error``.
    kept: str | None = None
    #: One line, never content (``failed``), or why the original was kept.
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FormatStatus:
    """The version of one of the vault's formats as found on disk (:meth:`Vault.formats`)."""

    #: ``vault``, ``key file``, ``container``, ``index``, ``config``, ``audit log`` or
    #: ``key table state`` (0: untracked, a key table written before issue 20; 1: tracked).
    name: str
    #: The oldest and newest versions found (equal for a single file); None: not present.
    oldest: int | None
    newest: int | None
    #: The version this sessionseal writes.
    current: int
    #: How many files (or records, for the audit log) were looked at.
    items: int

    @property
    def state(self) -> str:
        """``current``, ``older`` (a migration applies), ``newer`` (upgrade sessionseal), ``absent``."""
        if self.oldest is None or self.newest is None:
            return "absent"
        if self.newest > self.current:
            return "newer"
        return "older" if self.oldest < self.current else "current"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {**dataclasses.asdict(self), "state": self.state}


@dataclass(frozen=True)
class VaultStats:
    """What ``sessionseal stats`` shows: counts, sizes, ages, and warnings."""

    sessions: int
    by_status: dict[str, int]
    pinned: int
    stored_bytes: int
    original_bytes: int
    compression_ratio: float | None
    oldest_created: datetime | None
    newest_updated: datetime | None
    messages: int
    cost_usd: float
    redactions: int
    unreadable: int
    warn_size: int | None
    warnings: list[str]


@dataclass
class CleanupResult:
    """What a cleanup did: the plan it carried out and what happened to each removal."""

    plan: CleanupPlan
    removed: list[uuid.UUID] = field(default_factory=list)
    skipped: list[tuple[uuid.UUID, str]] = field(default_factory=list)  # (session, why it stayed)
    orphans_removed: int = 0
    temp_removed: int = 0  # temp files of killed writers, shredded
    bytes_freed: int = 0
    epoch: int | None = None  # the master key epoch after the last rotation
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ConfigAccepted:
    """What :meth:`Vault.accept_config` recorded."""

    #: what was wrong with the file before ("missing", "older", "different", "unrecorded"),
    #: or None when it was the recorded config already
    was: str | None
    #: whether the vault has a config file (False: every default, recorded as "no config")
    config: bool
    #: the generation recorded (the highest ever written or accepted)
    generation: int


@dataclass(frozen=True)
class SearchHit:
    """A session that matched a search: where, and the sanitized text around the match."""

    id: str
    title: str
    updated_at: str
    field: str  # e.g. "title", "messages[3].content[0].text" ("" without a snippet)
    snippet: str
    #: The query's BM25 score (0 for the literal and regex scans).
    score: float = 0.0
    #: The fields the query's (non-negated) terms matched in: title, user, assistant, tool.
    fields: tuple[str, ...] = ()
    #: Where the snippet's match starts in the text at *field*, in characters (None: no snippet).
    offset: int | None = None


class SearchHits(list[SearchHit]):
    """What :meth:`~sessionseal.Vault.search` found, best first, and how it was answered."""

    def __init__(
        self, hits: Iterable[SearchHit] = (), *, source: str = "fts", stale: int = 0, warnings: list[str] | None = None
    ) -> None:
        super().__init__(hits)
        #: ``fts``: the full-text index answered; ``none``: there was no usable index, every
        #: candidate was decrypted; ``scan``: a literal or regex scan.
        self.source = source
        #: Sessions the index was behind on (or lacked), evaluated from their decrypted text.
        self.stale = stale
        #: What the caller should tell its user (the CLI prints them on stderr).
        self.warnings: list[str] = [] if warnings is None else warnings


@dataclass(frozen=True)
class HeadStatus:
    """The vault's head (``sessionseal head show``): the key table's state against the key store's."""

    #: Whether the key store keeps the head (the keychain); a passphrase vault's key file is in the vault.
    kept_outside: bool
    #: Whether the key table records its state (vaults made before issue 20 are not, until ``migrate``).
    tracked: bool
    #: The state's counter now (one more with every state change).
    counter: int
    #: The counter and unix time of the last head write, as the key table records them.
    recorded: tuple[int, int]
    #: The counter the key store holds (None for a passphrase vault).
    key_store: int | None
    #: The head to keep outside the vault and give to ``verify --expect-head`` later:
    #: ``sseal-head2:<seq>:<MAC>:<check>``, a record of the vault's audit history (its anchored head).
    kept_head: str
    #: Whether ``accept`` moved the key store's head to this table (a deliberate restore accepted).
    accepted: bool = False
    _descent: Callable[[str], str | None] = field(default=lambda _: None, repr=False, compare=False)

    @property
    def rolled_back(self) -> bool:
        """The key table is older than the key store's head: the vault was rolled back."""
        return self.key_store is not None and self.key_store > self.recorded[0]

    def descent(self, kept: str) -> str | None:
        """None when the vault descends from a head kept earlier (a :attr:`kept_head`): its audit
        chain verifies and holds, at or before its anchored head, the record the kept head names.
        Otherwise why not, in one line that never repeats the head: the vault was rolled back or
        restored from an older copy (whatever it did since: a restored copy has fewer records, or
        another record at that place), its audit log does not verify, or the log's own retention
        removed that record (keep a newer head).

        :raises InvalidInput: *kept* is not a head of this vault (never echoed).
        """
        return self._descent(kept)

    def older_than(self, kept: str) -> bool:
        """Whether the vault does not descend from a head kept earlier (:meth:`descent`): it was
        rolled back since, or restored from an older backup.

        :raises InvalidInput: *kept* is not a head of this vault (never echoed).
        """
        return self.descent(kept) is not None
