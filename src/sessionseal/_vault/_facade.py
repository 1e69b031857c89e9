"""The facade: :class:`Vault`, whose public methods check their arguments, call the components
that own each concern, and write the audit record of the operation (docs/design.md, "The house").

The facade builds the components and wires them together (objects and callbacks handed down);
no component imports it.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Unpack

import orjson

from .. import _checkpoints, _events
from .._audit import VerifyReport
from .._checkpoints import Checkpoint
from .._fields import SessionStatus
from .._fs import Dir
from .._index import list_json, to_builtins
from .._keystore import KeyProvider
from .._keytable import KeyTable
from .._passphrase import PassphraseProvider
from .._query import ListQuery, SortKey
from .._usage import UsageQuery, UsageReport
from ..errors import (
    IntegrityError,
    InvalidInput,
    SessionSealError,
)
from . import _edits, _marks, _opening
from ._auditing import audited_by
from ._backups import Backups
from ._common import INTEGRITY, MAX_SESSION_BYTES, SUFFIX, no_session, parse_id
from ._context import VaultContext
from ._importer import audit_of
from ._listing import summaries_adapter
from ._remotes import Remotes
from ._results import (
    CleanupResult,
    ConfigAccepted,
    ExportResult,
    FormatStatus,
    HeadStatus,
    ImportResult,
    SearchHits,
    TranscriptOutcome,
    VaultInfo,
    VaultStats,
)
from ._search import SearchHow
from ._settings import change_detail
from ._verify import VerifyResult, audit_detail, run
from ._wiring import wire

if TYPE_CHECKING:
    # Imported where used: pydantic, the models and the sanitizer cost a fresh process
    # about 150 ms, which 'list --json' and the other index-only paths never need.

    from .._config import VaultConfig
    from .._recorder import Recorder
    from .._retention import CleanupPlan, RetentionConfig
    from ..models import Session, SessionSummary


_audited = audited_by(lambda vault: vault._auditor)


class Vault:
    """An open vault (:meth:`init` creates one, :meth:`open` opens one); thread-safe, process-safe."""

    def __init__(self, path: Path, root: Dir, doc: dict[str, Any], provider: KeyProvider) -> None:
        self.path, self._doc, self._provider = path, doc, provider
        self.vault_id = uuid.UUID(doc["vault_id"])
        ctx = self._ctx = VaultContext(path, root, self.vault_id)
        #: The wired components: internal and unstable, for tests and tools (docs/api.md).
        self.parts = parts = wire(
            ctx,
            doc,
            provider,
            checkpoint=self.checkpoint,
            save_model=self._save_model,
            config=self.config,
            reindex=lambda: self._reindex(accept=False),
        )
        self._keys, self._settings, self._auditor = parts.keys, parts.settings, parts.auditor
        self._audit_log, self._index_cache, self._store = parts.audit_log, parts.index, parts.store
        self._checkpoints, self._listing, self._erasure = parts.checkpoints, parts.listing, parts.erasure
        self._transfer, self._importer, self._formats = parts.transfer, parts.importer, parts.formats
        self._audit = self._auditor.record  # writes the audit record of an operation
        #: Its remotes (docs/api.md, "Remotes": list, add, remove, push); snapshots and kits ("Backups").
        self.remotes = Remotes(self._settings, self._auditor, parts.sync, parts.autopush)
        self.backups = Backups(ctx, self._keys, self._auditor)
        self.maintenance = parts.maintenance  #: full-text tier merges (docs/api.md, "Maintenance")
        #: What the automatic cleanup run by :meth:`open` did, if one ran.
        self.last_auto_cleanup: CleanupResult | None = None

    #: Largest serialized session accepted.
    MAX_SESSION_BYTES: Final = MAX_SESSION_BYTES

    # -- construction ---------------------------------------------------------------

    @classmethod
    def init(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        key_provider: str | KeyProvider = "keychain",
        passphrase: str | bytes | Callable[[], str | bytes] | None = None,
        interactive: bool = False,
    ) -> Vault:
        """Create a new vault (a random 256-bit master key in the key store).

        :param key_provider: ``"keychain"``, ``"passphrase"`` (needs *passphrase*), or a provider.
        :raises VaultExists: a vault is already there.
        :raises UnsafePermissions: the path or a parent is unsafe.
        :raises KeyStoreError: the key could not be stored (nothing is left behind).
        """
        return _opening.create(
            path,
            key_provider=key_provider,
            passphrase=passphrase,
            interactive=interactive,
            build=cls,
            finish=lambda vault, table: vault._created(table),
        )

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        key_provider: KeyProvider | None = None,
        passphrase: str | bytes | Callable[[], str | bytes] | None = None,
        interactive: bool = False,
        auto_cleanup: bool = True,
    ) -> Vault:
        """Open an existing vault, first running the config's automatic cleanup when due.

        :raises VaultNotFound: no vault at the path.
        :raises UnsafePermissions: the vault (or a parent) is a link, not ours, open to others, or unreachable.
        :raises UnsupportedVersion: the vault was made by a newer sessionseal.
        """
        vault = _opening.open_existing(
            path, key_provider=key_provider, passphrase=passphrase, interactive=interactive, build=cls
        )
        vault._erasure.sweep_temp()
        if auto_cleanup:
            try:
                vault.last_auto_cleanup = vault._erasure.maybe_auto_cleanup()
            except BaseException:
                vault.close()
                raise
        return vault

    def _created(self, table: KeyTable) -> None:
        """The end of :meth:`init`: the new table is the one to use, and the vault's first record."""
        self._keys.table = table
        self._audit("init", detail={"key_provider": self._provider.name})

    def close(self) -> None:
        """Stop the merge thread, release the vault's directory descriptors (the cached keys stay)."""
        with contextlib.suppress(SessionSealError):
            self.parts.keys.commit()  # marks of an operation that wrote no record (it failed first)
        self._audit_log.close()
        self._ctx.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- audit (_auditing.py) ----------------------------------------------------------

    def audit_entries(
        self, *, session: uuid.UUID | str | None = None
    ) -> tuple[builtins.list[dict[str, Any]], VerifyReport]:
        """Every audit record, oldest first, checked as it is read, and the chain's report.

        :param session: only the records about this session.
        """
        return self._auditor.entries(None if session is None else parse_id(session))

    @property
    def audit_log_path(self) -> Path:
        """The current audit log file."""
        return self._audit_log.path

    def audit_records(self) -> Iterator[dict[str, Any]]:
        """Every record of the audit log, oldest first, as stored: unverified, subjects sealed."""
        return self._audit_log.records()

    @_audited("verify")
    def verify(
        self, *, read_data: bool = False, repair: bool = False, progress: Callable[[int, int], None] | None = None
    ) -> VerifyResult:
        """Check the whole vault (docs/reliability.md); nothing is changed unless *repair*.

        :param progress: called with (files checked, files).
        :raises KeyStoreError: the master key is not available.
        """
        result = run(self.parts, read_data=read_data, repair=repair, progress=progress)
        detail = audit_detail(result, read_data=read_data)
        failed = None if result.ok else "IntegrityError"
        self._audit("verify", "ok" if result.ok else "error", error=failed, detail=detail)
        return result

    @_audited("audit.verify")
    def verify_audit(self, *, repair: bool = False) -> VerifyReport:
        """Check the audit log's MAC chain against its anchor (*repair*: seal a torn last line first)."""
        report = self._auditor.verify(repair=repair)
        outcome = "ok" if report.ok else "error"
        self._audit(
            "audit.verify",
            outcome,
            error=None if report.ok else "AuditLogTampered",
            detail={"records": report.records, "problems": len(report.problems), "repaired": len(report.repaired)},
        )
        return report

    # -- configuration ---------------------------------------------------------------

    @_audited("config.show")
    def config(self) -> VaultConfig:
        """The configuration as stored, recorded or not (defaults when none); audited; IntegrityError: modified."""
        cfg = self._settings.read(checked=False)
        self._audit("config.show")
        return cfg

    @_audited("config.set")
    def set_config(self, config: VaultConfig | dict[str, Any] | str | bytes) -> VaultConfig:
        """Validate and store a new configuration atomically; return it (InvalidInput: nothing is changed)."""
        old, new = self._settings.store(config, schedule_auto=self._erasure.schedule_auto)
        self._auditor.reconfigure()  # the audit settings may have changed
        self._audit("config.set", detail=change_detail(old, new))
        return new

    @_audited("config.accept")
    def accept_config(self) -> ConfigAccepted:
        """Record ``config.sst`` as it is (or its absence) as the vault's config (docs/api.md); audited."""
        return self._settings.accept(self._auditor)

    # -- sessions --------------------------------------------------------------------

    @_audited("save")
    def save(self, session: Session | Mapping[str, Any] | str | bytes, *, touch: bool = True) -> uuid.UUID:
        """Sanitize, serialize, compress, encrypt and atomically write *session*; return its id.

        :param touch: set ``updated_at`` to now (importers keep the original time).
        :raises InvalidInput: the document is not a valid session, or too large.
        """
        from ..models import parse_session

        model = parse_session(session)
        self._save_model(model, touch=touch)
        return model.id

    # -- the session store (_store.py) -----------------------------------------------

    def _save_model(self, model: Session, *, touch: bool) -> dict[str, int]:
        """Save a validated model (see :meth:`save`); returns the redaction counts."""
        nbytes, counts = self._store.save(model, touch=touch)
        self._audit("save", session=model.id, nbytes=nbytes, redactions=counts)
        return counts

    def _edit(
        self,
        session_id: uuid.UUID | str,
        action: str,
        update: Callable[[dict[str, Any]], bool],
        *,
        others: Sequence[tuple[str, uuid.UUID, Mapping[str, Any] | None]] = (),
    ) -> bool:
        """Apply *update* to a session's metadata (:meth:`SessionStore.edit`), and record it."""
        sid = parse_id(session_id)
        changed = self._store.edit(sid, update)
        self._audit(action, session=sid, detail={"changed": changed}, others=others)
        return changed

    @_audited("load", by_id=True)
    def load_json(self, session_id: uuid.UUID | str, *, into: str | None = None) -> bytes:
        """Decrypt a session and return its stored, authenticated JSON document, without models.
        *into*: the agent ``resume --into`` writes it for (audited as ``resume``, with that name).

        :raises SessionNotFound: no such session.
        :raises IntegrityError: the stored container was modified or damaged.
        """
        sid = parse_id(session_id)
        body = self._store.document(self._store.open(sid))
        self._index_cache.touch(self._keys.file_name(sid) + SUFFIX)
        self._audit(
            "resume" if into else "load", session=sid, nbytes=len(body), detail={"into": into} if into else None
        )
        return body

    def load(self, session_id: uuid.UUID | str) -> Session:
        """Decrypt and return a session as a validated model.

        :raises SessionNotFound: no such session.
        :raises IntegrityError: the stored container was modified or damaged.
        """
        from pydantic import ValidationError

        from ..models import Session

        body = self.load_json(session_id)
        try:
            return Session.model_validate_json(body)
        except ValidationError:
            pass
        try:
            # pydantic's JSON parser stops at 200 levels; a document saved from a mapping (or
            # imported) may be nested deeper, up to what orjson writes (255).
            return Session.model_validate(orjson.loads(body))
        except (ValidationError, orjson.JSONDecodeError):
            raise IntegrityError(INTEGRITY) from None

    def list(self, query: ListQuery | None = None, *, archived: bool | None = False) -> list[SessionSummary]:
        """Summaries of the readable sessions, newest update first (*query* overrides *archived*)."""
        return self.list_with_problems(query, archived=archived)[0]

    @_audited("list")
    def list_with_problems(
        self, query: ListQuery | None = None, *, archived: bool | None = False
    ) -> tuple[builtins.list[SessionSummary], builtins.list[str]]:
        """Summaries (see :meth:`list`), and one line per container that failed to open."""
        entries, problems = self._listing.select(query or ListQuery(archived=archived))
        return summaries_adapter().validate_python(to_builtins(entries)), problems

    @_audited("list")
    def list_json(
        self, query: ListQuery | None = None, *, archived: bool | None = False
    ) -> tuple[bytes, builtins.list[str]]:
        """What :meth:`list_with_problems` returns, as one JSON array, without building models."""
        entries, problems = self._listing.select(query or ListQuery(archived=archived))
        return list_json(entries), problems

    def latest(self, query: ListQuery | None = None) -> SessionSummary | None:
        """The most recently updated session that *query* keeps (archived ones aside), or None."""
        q = dataclasses.replace(query or ListQuery(), sort=SortKey.UPDATED, limit=1)
        return next(iter(self.list(q)), None)

    @_audited("search")
    def search(self, text: str, query: ListQuery | None = None, **how: Unpack[SearchHow]) -> SearchHits:
        """Sessions *text* (a query; ``mode``: a literal or regex scan) finds, best first, at most
        ``query.limit`` (default 20), with snippets unless ``snippets=False`` (docs/api.md)."""
        return self._listing.search(text, query, how)

    @_audited("reindex")
    def reindex(self, *, progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuild the index and the full-text index from the session files, accepting them as they are
        (rolled-back or cut files lower their marks); returns the sessions indexed. *progress*: (bytes done, bytes)."""
        return self._reindex(accept=True, fts=(self.parts.fulltext, progress))

    @_audited("reindex")
    def _reindex(self, *, accept: bool, fts: _marks.FullTextBuild | None = None) -> int:  # also verify --repair
        n, detail = _marks.reindex(self._ctx, self._keys, self._store, self._index_cache, accept=accept, fts=fts)
        self._audit("reindex", detail=detail)
        return n

    # -- export and import (issue 8; _export.py, docs/spec/bundle-v1.md) -------------------

    @_audited("export")
    def export(
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
        """Export the given sessions, or every session *query* selects.

        :raises InvalidInput: an unknown format, a plaintext format without *plaintext*, no
            passphrase for a bundle, nothing to export, or *out* exists.
        :raises SessionNotFound: an id is not in the vault.
        """
        return self._transfer.export(
            session_ids,
            query=query,
            format=format,
            passphrase=passphrase,
            plaintext=plaintext,
            out=out,
            overwrite=overwrite,
            log2_n=log2_n,
        )

    @_audited("import")
    def import_sessions(
        self,
        source: bytes | str | os.PathLike[str],
        *,
        passphrase: str | bytes | Callable[[], str | bytes] | None = None,
        on_conflict: str = "skip",
        allow_expensive_kdf: bool = False,
    ) -> ImportResult:
        """Import a bundle or session JSON, validated and sanitized, times kept.

        :param on_conflict: ``skip``, ``replace`` (old version kept as a checkpoint) or ``copy``.
        :raises WrongPassphrase: the bundle's passphrase is wrong.
        :raises IntegrityError: the bundle is damaged or altered.
        :raises InvalidInput: not a bundle nor session JSON, a document is not a session, or a
            bundle is over the limits (nothing is imported then).
        """
        return self._transfer.import_sessions(
            source, passphrase=passphrase, on_conflict=on_conflict, allow_expensive_kdf=allow_expensive_kdf
        )

    # -- agent transcripts (issue 8; _transcripts.py, docs/importing.md) -----------------

    def import_transcripts(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        dry_run: bool = False,
        since: datetime | None = None,
        remove_originals: bool = False,
        quiet_period: float | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> builtins.list[TranscriptOutcome]:
        """Import Claude Code and Codex transcript files (docs/importing.md).

        :param quiet_period: seconds an original must be unmodified before it is removed (600).
        :raises InvalidInput: *quiet_period* is negative.
        """
        from .._transcripts import QUIET_PERIOD

        quiet = QUIET_PERIOD if quiet_period is None else quiet_period
        if not quiet >= 0:
            raise InvalidInput("the quiet period is a number of seconds, 0 or more")
        remove: int | None = int(quiet * 10**9) if remove_originals else None
        out = self._importer.run(
            [Path(p) for p in paths], dry_run=dry_run, since=since, remove=remove, progress=progress
        )
        if not dry_run:
            detail, stored = audit_of(out)
            self._audit("import-transcripts", detail=detail, others=stored)
        return out

    # -- format versions (issue 8) ------------------------------------------------------

    def formats(self) -> builtins.list[FormatStatus]:
        """The version of every format in the vault, as found on disk."""
        return self._formats.formats()

    @_audited("migrate")
    def migrate(self, *, dry_run: bool = False) -> tuple[builtins.list[FormatStatus], builtins.list[str]]:
        """Bring every format to the version this sessionseal writes; return (formats, steps).

        :raises UnsupportedVersion: a format is newer than this sessionseal (upgrade it).
        """
        return self._formats.migrate(dry_run=dry_run)

    @_audited("delete", by_id=True)
    def delete(self, session_id: uuid.UUID | str) -> None:
        """Crypto-erase a session, then overwrite and unlink its file (docs/secure-deletion.md).

        :raises SessionNotFound: no such session.
        """
        self._erasure.delete(parse_id(session_id))

    @_audited("rekey")
    def rekey(self, *, from_keyring_file: bool = False) -> int:
        """Rotate the master key; return the new epoch.

        :raises InvalidInput: *from_keyring_file* and no such file holds a key for the vault.
        """
        old, epoch, removed = self._erasure.rekey(from_keyring_file=from_keyring_file)
        detail: dict[str, Any] = {"from_epoch": old, "epoch": epoch}
        if from_keyring_file:
            detail["keyring_file_copies_removed"] = removed
        self._audit("rekey", detail=detail)
        return epoch

    @_audited("passphrase.change")
    def change_passphrase(self, new_passphrase: str | bytes | Callable[[], str | bytes]) -> bool:
        """Re-wrap a passphrase vault's master keys under *new_passphrase*; whether the old key file was overwritten.

        :raises InvalidInput: a keychain vault, or the new passphrase is empty or the current one.
        :raises WrongPassphrase: the current passphrase is wrong (audited as denied).
        """
        provider = self._provider
        if not isinstance(provider, PassphraseProvider):
            raise InvalidInput(
                "this vault keeps its master key in the OS keychain, not under a passphrase: there is no "
                "passphrase to change (the keychain's own password protects the key)"
            )
        self._keys.keytable()  # the current passphrase, before the new one is asked for
        value = new_passphrase() if callable(new_passphrase) else new_passphrase
        new = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        with self._ctx.vault_lock(), self._ctx.mutex:
            # A key file a killed change or rotation was writing: shredded, not left beside the new one.
            self._ctx.root.sweep_temp()
            overwritten = provider.change(self.vault_id, new)
        self._audit("passphrase.change", detail={"old_key_file_overwritten": overwritten})
        return overwritten

    # -- checkpoints and forks (_ckpts.py) -------------------------------------------

    @_audited("checkpoint.create", by_id=True)
    def checkpoint(self, session_id: uuid.UUID | str, name: str | None = None) -> Checkpoint:
        """Save a named restore point of a session as it is now (appends included).

        :param name: unique within the session, not a bare number (default ``checkpoint-N``).
        :raises SessionNotFound: no such session.
        :raises InvalidInput: the name is taken or not a valid name.
        """
        sid = parse_id(session_id)
        label: str | None = None
        counts: dict[str, int] = {}
        if name is not None:
            label, counts = _edits.clean_text(
                self._settings.sanitizer(), _checkpoints.check_label(name), "checkpoint name"
            )
        cp = self._checkpoints.create(sid, label)
        self._audit(
            "checkpoint.create", session=sid, nbytes=cp.size_original, redactions=counts, private={"number": cp.number}
        )
        return cp

    def checkpoints(self, session_id: uuid.UUID | str) -> builtins.list[Checkpoint]:
        """A session's checkpoints, oldest first (each authenticated; only its summary is read).

        :raises SessionNotFound: no such session.
        :raises IntegrityError: a checkpoint file was modified or moved.
        """
        return self._checkpoints.of_session(parse_id(session_id))

    @_audited("checkpoint.restore", by_id=True)
    def restore_checkpoint(self, session_id: uuid.UUID | str, checkpoint: str | int) -> Checkpoint:
        """Put a session's content back as at *checkpoint*; return the ``before-restore`` one.

        :raises SessionNotFound: no such session or checkpoint.
        """
        sid = parse_id(session_id)
        cp, saved, nbytes = self._checkpoints.restore(sid, checkpoint)
        self._audit(
            "checkpoint.restore", session=sid, nbytes=nbytes, private={"number": cp.number, "saved_as": saved.number}
        )
        return saved

    @_audited("checkpoint.delete", by_id=True)
    def delete_checkpoint(self, session_id: uuid.UUID | str, checkpoint: str | int) -> Checkpoint:
        """Remove a checkpoint: its file is overwritten and unlinked.

        :raises SessionNotFound: no such session or checkpoint.
        """
        sid = parse_id(session_id)
        cp, overwritten = self._checkpoints.delete(sid, checkpoint)
        self._audit(
            "checkpoint.delete", session=sid, private={"number": cp.number}, detail={"overwritten": overwritten}
        )
        return cp

    @_audited("fork", by_id=True)
    def fork(
        self,
        session_id: uuid.UUID | str,
        *,
        checkpoint: str | int | None = None,
        title: str | None = None,
        continuation: bool = False,
    ) -> uuid.UUID:
        """Start a new session from a stored one (or a checkpoint of it); return its id.

        :raises SessionNotFound: no such session or checkpoint.
        """
        sid = parse_id(session_id)
        clean_title: str | None = None
        counts: dict[str, int] = {}
        if title is not None:
            clean_title, counts = _edits.clean_text(self._settings.sanitizer(), title, "title")
        new_id = uuid.uuid4()
        number, nbytes = self._checkpoints.fork(
            sid, new_id, checkpoint, title=clean_title, counts=counts, continuation=continuation
        )
        self._audit(
            "fork",
            session=new_id,
            nbytes=nbytes,
            redactions=counts,
            private={"checkpoint": number},
            detail={"continuation": continuation},
            others=[("from", sid, {})],
        )
        return new_id

    # -- appends (docs/spec/container-v1.md, "Appends") ------------------------------

    @_audited("append", by_id=True)
    def append(self, session_id: uuid.UUID | str, events: Iterable[Mapping[str, Any]]) -> int:
        """Append *events* to a stored session; return how many were appended.

        :raises SessionNotFound: no such session.
        :raises InvalidInput: an event is invalid (nothing is appended), or the session would grow over the size limit.
        """
        sid = parse_id(session_id)
        items = builtins.list(events)
        if not items:
            return 0
        return self._append_ops(sid, _events.parse_events(items, str(sid)), len(items))

    @_audited("append", by_id=True)
    def _append_ops(self, sid: uuid.UUID, ops: builtins.list[dict[str, Any]], events: int) -> int:
        """Sanitize and append operations validated by :func:`_events.parse_events` (a recorder's: as each came)."""
        nbytes, counts = self._store.append(sid, ops, touch=True)
        self._audit("append", session=sid, nbytes=nbytes, redactions=counts, private={"events": events})
        return events

    def record(
        self,
        session_id: uuid.UUID | str | None = None,
        *,
        title: str = "",
        autosave: float | None = 5.0,
        **fields: Any,
    ) -> Recorder:
        """Record a live session (a new one when *session_id* is None): a :class:`Recorder`.

        :raises SessionNotFound: no such session.
        """
        from .._recorder import Recorder

        sid = self._session_to_record(session_id, title, fields)
        return Recorder(self, sid, append=self._append_ops, autosave=autosave)

    def _session_to_record(
        self, session_id: uuid.UUID | str | None, title: str, fields: Mapping[str, Any]
    ) -> uuid.UUID:
        if session_id is None:
            return self.save({"title": title, "messages": [], **fields})
        sid = parse_id(session_id)
        if not self._ctx.sessions.exists(self._keys.file_name(sid) + SUFFIX):
            raise no_session(sid)
        return sid

    def _edit_text(self, session_id: uuid.UUID | str, action: str, field_name: str, text: str) -> bool:
        clean, counts = _edits.clean_text(self._settings.sanitizer(), text, field_name)
        return self._edit(session_id, action, _edits.set_text(field_name, clean, counts))

    @_audited("rename", by_id=True)
    def rename(self, session_id: uuid.UUID | str, title: str) -> bool:
        """Set a session's title (sanitized like everything stored).  Returns whether it changed."""
        return self._edit_text(session_id, "rename", "title", title)

    @_audited("describe", by_id=True)
    def describe(self, session_id: uuid.UUID | str, text: str) -> bool:
        """Set a session's description (sanitized).  Returns whether it changed."""
        return self._edit_text(session_id, "describe", "description", text)

    @_audited("tag", by_id=True)
    def tag(
        self, session_id: uuid.UUID | str, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> builtins.list[str]:
        """Add and remove tags (removals first); return the session's tags afterwards.  Tags are
        sanitized like every text stored (:func:`._edits.tag_edit`).

        :raises InvalidInput: a tag is empty, over 64 characters, or has whitespace.
        """
        after: builtins.list[str] = []
        self._edit(session_id, "tag", _edits.tag_edit(self._settings.sanitizer(), add, remove, after))
        return after

    @_audited("set-status", by_id=True)
    def set_status(self, session_id: uuid.UUID | str, status: SessionStatus | str) -> bool:
        """Set a session's status; ``archived`` is :meth:`archive`.  Returns whether it changed."""
        new = _edits.status_of(status)
        if new is SessionStatus.ARCHIVED:
            return self.archive(session_id)
        return self._edit(session_id, "set-status", _edits.set_status(new))

    @_audited("link", by_id=True)
    def link(self, session_id: uuid.UUID | str, *, parent: uuid.UUID | str | None) -> bool:
        """Set (or with ``None`` clear) a session's parent session.  Returns whether it changed.

        :raises SessionNotFound: either session is not in the vault.
        """
        sid = parse_id(session_id)
        pid = None if parent is None else parse_id(parent)
        if pid == sid:
            raise InvalidInput("a session cannot be its own parent")
        if pid is not None and self._keys.file_name(pid) + SUFFIX not in set(self._ctx.sessions.names()):
            raise no_session(pid)
        return self._edit(sid, "link", _edits.set_parent(pid), others=[] if pid is None else [("link", pid, {})])

    @_audited("pin", by_id=True)
    def pin(self, session_id: uuid.UUID | str) -> bool:
        """Protect a session from every retention policy; False when already pinned."""
        return self._edit(session_id, "pin", _edits.set_flag("pinned", True))

    @_audited("unpin", by_id=True)
    def unpin(self, session_id: uuid.UUID | str) -> bool:
        """Undo :meth:`pin`.  Returns False when it was not pinned."""
        return self._edit(session_id, "unpin", _edits.set_flag("pinned", False))

    @_audited("archive", by_id=True)
    def archive(self, session_id: uuid.UUID | str) -> bool:
        """Set the status to ``archived``; False when already archived."""
        return self._edit(session_id, "archive", _edits.archive)

    @_audited("unarchive", by_id=True)
    def unarchive(self, session_id: uuid.UUID | str) -> bool:
        """Restore the status a session had before :meth:`archive`; False when not archived."""
        return self._edit(session_id, "unarchive", _edits.unarchive)

    @_audited("stats")
    def stats(self) -> VaultStats:
        """Counts by status, sizes, oldest and newest, and warnings."""
        return self._listing.stats(self._settings.read(checked=False).retention.warn_size)

    @_audited("stats")
    def usage(self, query: UsageQuery | None = None) -> UsageReport:
        """Tokens and cost by day, week, month, model, workspace or tool (docs/api.md, "Usage")."""
        return self._listing.usage(query or UsageQuery())

    @_audited("cleanup.plan")
    def plan_cleanup(
        self, policy: RetentionConfig | Mapping[str, Any] | None = None, *, now: datetime | None = None
    ) -> CleanupPlan:
        """What :meth:`cleanup` would remove under *policy*, and why; changes nothing.

        :raises InvalidInput: the policy is invalid, or has no rule that can remove anything.
        """
        plan = self._erasure.plan(self._erasure.policy(policy), now)
        self._audit("cleanup.plan", detail={"remove": len(plan.remove), "keep": len(plan.keep)})
        return plan

    @_audited("cleanup")
    def cleanup(
        self,
        policy: RetentionConfig | Mapping[str, Any] | None = None,
        *,
        plan: CleanupPlan | None = None,
        now: datetime | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> CleanupResult:
        """Remove what *policy* (default: the config's) says (docs/retention.md).

        :param plan: carry out this plan (from :meth:`plan_cleanup`) instead of planning anew.
        :param progress: called with (done, total) after each batch.
        :raises InvalidInput: the policy is invalid or has no rule.
        :raises LockTimeout: another cleanup is running.
        """
        return self._erasure.cleanup(policy, plan=plan, now=now, progress=progress)

    # -- vault -----------------------------------------------------------------------

    def info(self) -> VaultInfo:
        """Describe the vault without needing its key."""
        return _opening.describe(self._ctx, self._doc, self._provider, self._audit_log.path)

    def head(self, *, accept: bool = False) -> HeadStatus:
        """The vault's head against the keychain's; *accept* a deliberate restore (audited; docs/keychain.md)."""
        return self._keys.head_status(accept=accept, kept=self._auditor)

    def destroy(self) -> None:
        """Remove the vault's master key from the key store (audited first)."""
        with contextlib.suppress(SessionSealError):
            self._audit("destroy")
        self._provider.delete(self.vault_id)
