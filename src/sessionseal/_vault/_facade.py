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
from typing import TYPE_CHECKING, Any, Final

import orjson

from .. import _checkpoints, _events
from .._audit import VerifyReport
from .._checkpoints import Checkpoint
from .._fields import SessionStatus
from .._fs import Dir
from .._index import (
    entry_of,
    list_json,
    stamp_of,
    to_builtins,
)
from .._keystore import KeyProvider
from .._keytable import KeyTable
from .._passphrase import PassphraseProvider
from .._query import ListQuery, SortKey
from ..errors import (
    IntegrityError,
    InvalidInput,
    SessionNotFound,
    SessionSealError,
)
from . import _edits, _opening
from ._auditing import audited_by
from ._common import (
    INTEGRITY,
    MAX_SESSION_BYTES,
    SUFFIX,
    no_session,
    parse_id,
)
from ._context import VaultContext
from ._listing import stats_of, summaries_adapter
from ._results import (
    CleanupResult,
    ExportResult,
    FormatStatus,
    ImportResult,
    SearchHit,
    TranscriptOutcome,
    VaultInfo,
    VaultStats,
)
from ._verify import VerifyResult, run
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
    """An open vault.  Use :meth:`init` to create one and :meth:`open` to open one.

    Thread-safe: operations on one session are serialized by a file lock, which also
    excludes other processes.
    """

    def __init__(self, path: Path, root: Dir, doc: dict[str, Any], provider: KeyProvider) -> None:
        self.path = path
        self._doc = doc
        self.vault_id = uuid.UUID(doc["vault_id"])
        self._provider = provider
        ctx = self._ctx = VaultContext(path, root, self.vault_id)
        # The context's directories and mutex, by the names the methods below still use.
        self._root, self._sessions, self._ckpts, self._locks = ctx.root, ctx.sessions, ctx.ckpts, ctx.locks
        self._mutex = ctx.mutex
        #: The wired components: internal and unstable, for tests and tools (docs/api.md).
        self.parts = parts = wire(
            ctx,
            doc,
            provider,
            checkpoint=self.checkpoint,
            save_model=self._save_model,
            config=self.config,
            reindex=self.reindex,
        )
        self._keys, self._settings, self._auditor = parts.keys, parts.settings, parts.auditor
        self._audit_log, self._index_cache, self._store = parts.audit_log, parts.index, parts.store
        self._checkpoints, self._listing, self._erasure = parts.checkpoints, parts.listing, parts.erasure
        self._transfer, self._importer, self._formats = parts.transfer, parts.importer, parts.formats
        #: Writes the audit record of an operation.
        self._audit = self._auditor.record
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
        """Create a new vault: a vault id, a random 256-bit master key in the key store,
        an empty key table.

        :param key_provider: ``"keychain"`` (default), ``"passphrase"`` (needs
            *passphrase*), or a provider instance.
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
        """Open an existing vault.  The master key is read lazily, on first use.

        When the config's ``retention.auto_interval`` is set and has passed since the last
        cleanup, the config's policy is run first (:attr:`last_auto_cleanup` says what it
        did); a failure there is audited and never fails the open.

        :raises VaultNotFound: no vault at the path.
        :raises UnsafePermissions: the vault (or a parent) is a link, not ours, or open to others;
            or a directory above it is closed to this user (it cannot be reached).
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
        """Release the vault's directory descriptors (the cached keys stay for the process)."""
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

        Each record gets ``verified`` (true only when the MAC chain vouches for it and each of
        its boxes opens) and, when false, ``problem``: ``pending`` (not chained yet), the
        verify code of the first bad record, ``after-error`` (after it), ``anchor`` (the anchor
        vouches for no record) or ``box``.  Subjects are opened with the sessions' keys: each
        gets its ``id`` and its box's values; a tag that no key in the table yields gets
        ``erased: true`` (docs/spec/audit-log.md, "Showing").

        :param session: only the records about this session (by its tag, or by its id in
            format 1 records).
        """
        return self._auditor.entries(None if session is None else parse_id(session))

    @property
    def audit_log_path(self) -> Path:
        """The current audit log file."""
        return self._audit_log.path

    def audit_records(self) -> Iterator[dict[str, Any]]:
        """Every record of the audit log, oldest first, as stored: unverified, subjects sealed
        (see :meth:`audit_entries` and :meth:`verify_audit`)."""
        return self._audit_log.records()

    @_audited("verify")
    def verify(
        self, *, read_data: bool = False, repair: bool = False, progress: Callable[[int, int], None] | None = None
    ) -> VerifyResult:
        """Check the whole vault (docs/reliability.md): every entry's type, owner and mode;
        the key table; every session and checkpoint container authenticated (its header and
        last summary, or with *read_data* every frame and the document); the index against
        the files; the config; the audit chain.  Nothing is changed unless *repair*.

        Problems are errors (damage, tampering, unsafe entries: :attr:`VerifyResult.ok` is
        false) or warnings (leftovers of killed writers, a stale index: nothing lost).

        :param repair: then remove killed writers' temp files and erased sessions' leftovers,
            cut torn appends, drop keys of sessions never written, finish an interrupted
            rotation, rebuild the index (unless it remembers newer versions than the files
            hold), seal a torn audit line; and check again.  Never deletes data that reads.
        :param progress: called with (files checked, files) as containers are checked.
        :raises KeyStoreError: the master key is not available (nothing keyed can be checked).
        """
        result = run(self.parts, read_data=read_data, repair=repair, progress=progress)
        detail = {
            "read_data": read_data,
            "errors": len(result.errors),
            "warnings": len(result.warnings),
            "repaired": len(result.repaired),
            "sessions": result.counts.get("sessions", 0),
        }
        failed = None if result.ok else "IntegrityError"
        self._audit("verify", "ok" if result.ok else "error", error=failed, detail=detail)
        return result

    @_audited("audit.verify")
    def verify_audit(self, *, repair: bool = False) -> VerifyReport:
        """Check the audit log's MAC chain against its anchor.

        :param repair: seal a torn last line (left by a killed writer) first.
        """
        report = self._audit_log.verify(self._keys.keytable().vault_secret, repair=repair)
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
        """The vault's configuration (defaults when none was set).  Audited: it holds the
        user's literals (hostnames, customer ids), which are sensitive in themselves.

        :raises IntegrityError: the stored configuration was modified.
        """
        cfg = self._settings.read()
        self._audit("config.show")
        return cfg

    @_audited("config.set")
    def set_config(self, config: VaultConfig | dict[str, Any] | str | bytes) -> VaultConfig:
        """Validate and store a new configuration atomically; return it.

        :raises InvalidInput: the document is not a valid configuration (nothing is changed).
        """
        old, new = self._settings.store(config, schedule_auto=self._erasure.schedule_auto)
        self._auditor.reconfigure()  # the audit settings may have changed
        # Counts only: rules, literals and allowlist entries may name internal hosts or customers.
        self._audit(
            "config.set",
            detail={
                "rules_changed": old.sanitizer != new.sanitizer,
                "rules": len(new.sanitizer.rules),
                "literals": len(new.sanitizer.literals),
                "allowlist": len(new.sanitizer.allowlist),
                "audit_changed": old.audit != new.audit,
                "retention_changed": old.retention != new.retention,
            },
        )
        return new

    # -- sessions --------------------------------------------------------------------

    @_audited("save")
    def save(self, session: Session | Mapping[str, Any] | str | bytes, *, touch: bool = True) -> uuid.UUID:
        """Sanitize, serialize, compress, encrypt and atomically write *session*.

        This is the only path to disk.  A fresh data key is drawn for every saved
        version.  Per-rule redaction counts are added to the stored ``redactions``.

        :param touch: set ``updated_at`` to now (importers keep the original time).
        :returns: the session id.
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
    def load_json(self, session_id: uuid.UUID | str) -> bytes:
        """Decrypt a session and return its stored JSON document, without building models.

        The bytes are authenticated (they are exactly what :meth:`save` wrote after
        validating and sanitizing), so tools that only pass the session on — ``show
        --json``, a resume hook — skip pydantic validation, which costs about twice
        the JSON parse itself.

        :raises SessionNotFound: no such session.
        :raises IntegrityError: the stored container was modified or damaged.
        """
        sid = parse_id(session_id)
        body = self._store.document(self._store.open(sid))
        self._index_cache.touch(self._keys.file_name(sid) + SUFFIX)
        self._audit("load", session=sid, nbytes=len(body))
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
        """Summaries of the readable sessions, newest update first.

        :param query: filters, order and limit (:class:`ListQuery`); it overrides *archived*.
        :param archived: ``False`` (default) hides archived sessions, ``True`` shows only
            them, ``None`` shows all.
        Unreadable containers are skipped here; :meth:`list_with_problems` reports them.
        """
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
        """What :meth:`list_with_problems` returns, as one JSON array (indented, sorted keys)
        of the summaries' documents, without building models: ``list --json`` of 10,000
        sessions in a fraction of the time.  The documents are authenticated, and were
        validated when read from their session files."""
        entries, problems = self._listing.select(query or ListQuery(archived=archived))
        return list_json(entries), problems

    def latest(self, query: ListQuery | None = None) -> SessionSummary | None:
        """The most recently updated session that *query* keeps (archived ones aside), or None:
        what ``sessionseal latest`` and ``resume --latest`` continue, as ``claude --continue`` does."""
        q = dataclasses.replace(query or ListQuery(), sort=SortKey.UPDATED, limit=1)
        found = self.list(q)
        return found[0] if found else None

    @_audited("search")
    def search(
        self, text: str, query: ListQuery | None = None, *, case_sensitive: bool = False
    ) -> builtins.list[SearchHit]:
        """Sessions whose titles, descriptions, tags, messages or tool output contain *text*,
        newest first, at most ``query.limit`` (default 20), each with a snippet around the
        first match.  Everything searched is sanitized text; nothing is written anywhere.

        Sessions are decrypted one at a time in memory (a bounded stream, two at once on
        two cores).  The raw stored JSON is searched for *text* as it is escaped there, and
        only a session that contains it is parsed, to find the field and cut the snippet.
        """
        return self._listing.search(text, query, case_sensitive=case_sensitive)

    @_audited("reindex")
    def reindex(self) -> int:
        """Rebuild the index from the session files (it is also rebuilt on its own when missing,
        stale or damaged).  Returns the number of sessions indexed."""
        with self._ctx.vault_lock(), self._mutex:
            entries = []
            for fname in sorted(self._ctx.session_files()):
                try:
                    stamp = stamp_of(os.stat(fname, dir_fd=self._sessions.fd, follow_symlinks=False))
                    entries.append((fname, entry_of(self._store.read_summary(fname)), stamp))
                except (SessionNotFound, IntegrityError, OSError):
                    continue
            index = self._index_cache.rebuild(entries)
        self._audit("reindex", detail={"reason": "asked", "sessions": len(index.entries)})
        return len(index.entries)

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
        """Export sessions: the given ids, or every session *query* selects (all, archived
        ones too, without either).

        ``bundle`` is encrypted under *passphrase* (scrypt, then AES-GCM; not the vault's
        key) and holds any number of sessions.  ``json``, ``yaml`` and ``markdown`` are
        plaintext renderings of the sanitized documents and need ``plaintext=True``.  With
        *out*, the file is written owner-only and atomically (an existing file is an error
        unless *overwrite*); otherwise the bytes are returned.  Checkpoints stay behind.

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
        """Import a bundle or session JSON (one document, or a list of them): each session is
        validated and sanitized with this vault's rules, then saved with its times kept.

        A bundle's documents are read one at a time, twice: once to validate them all (a bad
        one imports nothing), once to store them; memory follows the largest document, not the
        bundle (docs/spec/bundle-v1.md, "Limits").

        :param source: the bytes, or a file path.
        :param passphrase: the bundle's passphrase (or a callable asked only for a bundle).
        :param on_conflict: for an id already in the vault: ``skip`` it, ``replace`` the stored
            session (its previous version is kept as a checkpoint), or store a ``copy`` under a
            new id.
        :param allow_expensive_kdf: open a bundle that asks for more scrypt work than
            sessionseal writes (up to 2^22, 4 GiB of memory); without it such a bundle is
            refused before any work.
        :raises WrongPassphrase: the bundle's passphrase is wrong.
        :raises IntegrityError: the bundle is damaged or altered.
        :raises InvalidInput: not a bundle nor session JSON, a document is not a session, a
            bundle asks for too much scrypt work or holds more than the limits (nothing is
            imported then).
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
        """Import Claude Code and Codex transcript files (see ``find_transcripts``).

        Each transcript becomes one session whose id is derived from the tool's own session
        id, so importing is idempotent: an unchanged file is skipped, one that grew has its
        new turns appended, one that changed otherwise is stored as a new version (the old
        one kept as a checkpoint).  Everything is sanitized on the way in.  A file that fails
        is reported and the others go on.

        :param since: skip files last modified before this time.
        :param remove_originals: after a file's import is verified by reading the session
            back, overwrite and delete the file (best effort, as retention does); only a file
            read and stored up to its size, ending with a complete line, unmodified for
            *quiet_period* and (on Linux) open for writing nowhere.  A file kept says why in
            :attr:`TranscriptOutcome.kept`.
        :param quiet_period: seconds an original must have been left unmodified before it is
            removed (default 600: an agent between two records leaves it alone that long).
        """
        from .._transcripts import QUIET_PERIOD

        quiet = QUIET_PERIOD if quiet_period is None else quiet_period
        if not quiet >= 0:
            raise InvalidInput("the quiet period is a number of seconds, 0 or more")
        remove: int | None = int(quiet * 10**9) if remove_originals else None
        out = self._importer.run(
            [Path(p) for p in paths], dry_run=dry_run, since=since, remove=remove, progress=progress
        )
        counts: dict[str, int] = {}
        for o in out:
            counts[o.action] = counts.get(o.action, 0) + 1
        if not dry_run:
            stored = [
                ("imported", o.session_id, {"action": o.action, "messages": o.messages, "redactions": o.redactions})
                for o in out
                if o.session_id is not None and o.action in ("new", "appended", "updated")
            ]
            self._audit("import-transcripts", detail={"files": len(out), **counts}, others=stored)
        return out

    # -- format versions (issue 8) ------------------------------------------------------

    def formats(self) -> builtins.list[FormatStatus]:
        """The version of every format in the vault, as found on disk.

        Containers (sessions, checkpoints, key table, index, config, audit anchor) are read by
        their header's version byte alone; the index, the config and the audit log also carry
        versions of their own payloads.  Nothing is rewritten here.
        """
        return self._formats.formats()

    @_audited("migrate")
    def migrate(self, *, dry_run: bool = False) -> tuple[builtins.list[FormatStatus], builtins.list[str]]:
        """Bring every format of the vault to the version this sessionseal writes.

        Each step is crash-safe on its own (an atomic rewrite), so a migration killed midway
        is finished by running it again.  Returns the formats as found and the steps done
        (or, with *dry_run*, that would be done).

        :raises UnsupportedVersion: a format is newer than this sessionseal (upgrade it).
        """
        return self._formats.migrate(dry_run=dry_run)

    @_audited("delete", by_id=True)
    def delete(self, session_id: uuid.UUID | str) -> None:
        """Erase a session: its key leaves the key table, the table is re-encrypted under a
        new master key and the old master key leaves the key store (crypto-erase), then its
        file is overwritten and unlinked (best effort on the medium).

        After this, nothing the vault and the key store hold can decrypt the session, not
        even from a copy of the vault's files taken before (docs/secure-deletion.md).

        :raises SessionNotFound: no such session.
        """
        self._erasure.delete(parse_id(session_id))

    @_audited("rekey")
    def rekey(self, *, from_keyring_file: bool = False) -> int:
        """Rotate the master key: the key table is re-encrypted under a new one, which the key
        store then holds alone.  Returns the new epoch.

        Old copies of the vault's files stop opening with what the key store holds.  Session
        data is not re-encrypted: its keys are in the table, which only the new master key
        opens (docs/secure-deletion.md says what this does and does not protect).

        :param from_keyring_file: for a keychain vault whose key an older sessionseal put in
            a keyrings.alt file (docs/keychain.md): when the OS keychain has no key for the
            vault, copy the file's key into it first (the only time a key is ever read from
            such a file); then rotate, and remove the vault's entries from those files, which
            after the rotation open no current key table.
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
        """Re-wrap a passphrase vault's master keys under *new_passphrase* (a new random salt,
        the key file's scrypt cost); the current passphrase is the one the vault was opened with.

        The current passphrase is checked first, then *new_passphrase* is read (a callable is
        called then, outside the vault lock: a prompt never holds other processes up).  Under
        the vault lock the key file is read as it is now (a rotation in flight stays in flight),
        re-wrapped, replaced atomically, and the replaced file's content is overwritten (best
        effort: docs/secure-deletion.md).  A crash leaves exactly one of the two passphrases
        working.  The master keys do not change: after a passphrase may have leaked together
        with a copy of the vault, follow with :meth:`rekey`.

        :returns: whether the old key file's content was overwritten.
        :raises InvalidInput: a keychain vault (it has no passphrase), or the new passphrase
            is empty or the current one.
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
        with self._ctx.vault_lock(), self._mutex:
            # A key file a killed change or rotation was writing: shredded, not left beside the new one.
            self._root.sweep_temp()
            overwritten = provider.change(self.vault_id, new)
        self._audit("passphrase.change", detail={"old_key_file_overwritten": overwritten})
        return overwritten

    # -- checkpoints and forks (_ckpts.py) -------------------------------------------

    @_audited("checkpoint.create", by_id=True)
    def checkpoint(self, session_id: uuid.UUID | str, name: str | None = None) -> Checkpoint:
        """Save a named restore point of a session as it is now (appends included).

        The checkpoint is its own container, under a fresh data key wrapped by the
        session's key: deleting the session crypto-erases its checkpoints too.  It costs a
        copy of the session (compressed and encrypted once); the session itself is untouched.

        :param name: unique within the session, not a bare number (default ``checkpoint-N``).
            Secrets in it are redacted, as everywhere.
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
        """Put a session's content back as it was at *checkpoint* (a name or number).

        Nothing is lost: the session as it is now is saved first as a ``before-restore``
        checkpoint (returned, so the restore can itself be undone), and the restored content
        is written as a new version of the session.  What was set about the session rather
        than said in it (title, description, tags, status, pin, links) stays as it is now.
        Use :meth:`fork` with ``checkpoint=`` to get it back as a new session instead.

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
        """Remove a checkpoint: its file is overwritten and unlinked (best effort on the medium).

        Its data key is wrapped by the session's key, so the checkpoint is crypto-erased when
        the session is deleted; until then a backup copy of its file still opens
        (docs/secure-deletion.md).

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
        """Start a new session from a stored one, linked to it (``links.forked_from``).

        :param checkpoint: fork the session as it was at this checkpoint (name or number).
        :param title: the new session's title (default: the source's, marked "(fork)").
        :param continuation: carry the state on (working directory, environment, config,
            tags...) but not the conversation; linked by ``links.continued_from``.
        :returns: the new session's id.
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

    # -- lifecycle: pin, archive, stats, retention --------------------------------------

    # -- appends (docs/spec/container-v1.md, "Appends") ------------------------------

    @_audited("append", by_id=True)
    def append(self, session_id: uuid.UUID | str, events: Iterable[Mapping[str, Any]]) -> int:
        """Append *events* to a stored session: messages, tool calls, tool results, state.

        Costs what the new events cost: only they are sanitized, compressed and encrypted,
        as one group of frames appended to the session's file (its data key is kept).  The
        file is rewritten as a new version now and then, once the appended groups outgrow
        what they were appended to.  ``updated_at`` is set to now.

        Events (see :func:`sessionseal._events.parse_events`)::

            {"type": "message", "role": "user", "content": "..."}   (or no type, with a role)
            {"type": "tool_call", "name": "bash", "arguments": {...}, "id": "c1"}
            {"type": "tool_result", "tool_call_id": "c1", "content": "...", "is_error": false}
            {"type": "state", "working_directory": "...", "environment": {...}, ...}

        :returns: how many events were appended.
        :raises SessionNotFound: no such session.
        :raises InvalidInput: an event is invalid (nothing is appended), or the session
            would grow over the size limit.
        """
        sid = parse_id(session_id)
        items = builtins.list(events)
        if not items:
            return 0
        return self._append_ops(sid, _events.parse_events(items, str(sid)), len(items))

    @_audited("append", by_id=True)
    def _append_ops(self, sid: uuid.UUID, ops: builtins.list[dict[str, Any]], events: int) -> int:
        """Sanitize and append operations already validated by :func:`_events.parse_events`
        (a recorder validates each event as it is added, not again at its flush)."""
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
        """Record a live session: a :class:`Recorder` that buffers events and appends them on
        :meth:`Recorder.flush`, every *autosave* seconds (a background thread; None: only when
        asked), when its ``with`` block ends, and at normal interpreter exit.

        :param session_id: the session to continue; None starts a new one, saved now with
            *title* and *fields* (``workspace``, ``tags``...).
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
        if not self._sessions.exists(self._keys.file_name(sid) + SUFFIX):
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
        """Add and remove tags (removals first); return the session's tags afterwards.

        :raises InvalidInput: a tag is empty, over 64 characters, or has whitespace.
        """
        after: builtins.list[str] = []
        self._edit(session_id, "tag", _edits.set_tags(add, remove, after))
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
        if pid is not None and self._keys.file_name(pid) + SUFFIX not in set(self._sessions.names()):
            raise no_session(pid)
        return self._edit(sid, "link", _edits.set_parent(pid), others=[] if pid is None else [("link", pid, {})])

    @_audited("pin", by_id=True)
    def pin(self, session_id: uuid.UUID | str) -> bool:
        """Protect a session from every retention policy (not from :meth:`delete`).
        Returns False when it was already pinned."""
        return self._edit(session_id, "pin", _edits.set_flag("pinned", True))

    @_audited("unpin", by_id=True)
    def unpin(self, session_id: uuid.UUID | str) -> bool:
        """Undo :meth:`pin`.  Returns False when it was not pinned."""
        return self._edit(session_id, "unpin", _edits.set_flag("pinned", False))

    @_audited("archive", by_id=True)
    def archive(self, session_id: uuid.UUID | str) -> bool:
        """Set the status to ``archived``: still encrypted, hidden from :meth:`list` unless
        asked for.  The previous status is kept for :meth:`unarchive`.  Returns False when it
        was already archived."""
        return self._edit(session_id, "archive", _edits.archive)

    @_audited("unarchive", by_id=True)
    def unarchive(self, session_id: uuid.UUID | str) -> bool:
        """Restore the status a session had before :meth:`archive` (``completed`` if unknown).
        Returns False when it was not archived."""
        return self._edit(session_id, "unarchive", _edits.unarchive)

    @_audited("stats")
    def stats(self) -> VaultStats:
        """Counts by status, sizes stored and original, oldest and newest, and a warning when
        the vault is over the configured ``retention.warn_size``."""
        summaries, problems = self._listing.summaries()
        result = stats_of(summaries, problems, self._settings.read().retention.warn_size)
        # Not the bytes stored: two totals around an erasure would give the erased session's size.
        self._audit("stats", detail={"sessions": result.sessions})
        return result

    @_audited("cleanup.plan")
    def plan_cleanup(
        self, policy: RetentionConfig | Mapping[str, Any] | None = None, *, now: datetime | None = None
    ) -> CleanupPlan:
        """What :meth:`cleanup` would remove under *policy* (default: the config's), and why.
        Changes nothing.

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
        """Remove what *policy* (default: the config's) says, each session erased as by
        :meth:`delete` but with one key rotation per batch; then remove files whose key an
        earlier, killed run already erased.

        :param plan: carry out this plan (from :meth:`plan_cleanup`, shown to a user first)
            instead of planning anew.  A session saved since it was planned is skipped.
        :param progress: called with (done, total) after each batch.
        :raises InvalidInput: the policy is invalid or has no rule.
        :raises LockTimeout: another cleanup is running.
        """
        return self._erasure.cleanup(policy, plan=plan, now=now, progress=progress)

    # -- vault -----------------------------------------------------------------------

    def info(self) -> VaultInfo:
        """Describe the vault without needing its key."""
        return _opening.describe(self._ctx, self._doc, self._provider, self._audit_log.path)

    def destroy(self) -> None:
        """Remove the vault's master key from the key store: every session becomes unreadable.

        The files are left for the caller to remove (the demo does).  Recorded in the audit
        log first: afterwards no record can be keyed.
        """
        with contextlib.suppress(SessionSealError):
            self._audit("destroy")
        self._provider.delete(self.vault_id)
