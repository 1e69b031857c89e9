"""``verify``: a whole-vault check in the manner of ``restic check`` (docs/reliability.md).

What is checked, in order, and what each finding means:

* **The tree.**  Every entry of every vault directory is ``lstat``-ed (nothing is followed):
  a symlink, a FIFO or device, another owner, a group/other mode bit or a second hard link
  is an error (``unsafe``).  A name sessionseal never writes is a warning (``unknown-entry``:
  it may hold plaintext someone put there); a temp file is a warning (``temp-file``).  In
  ``run/``, a running resume's home is fine, a killed one's is ``resume-leftover`` (for
  ``resume --cleanup``: never removed here), anything else ``unknown-entry`` or ``unsafe``.
* **The key table** authenticates (else ``keytable``, and nothing keyed can be checked), every
  session file has its key, and every key has its file (``missing`` when the marks or the index
  know the session was written, else ``unused-key``: a first save killed between the two; no key
  is dropped, :mod:`._marks`).  A rotation killed before it dropped the old master key is a warning.
  A keychain vault's entry in a keyrings.alt file (a copy of the master key outside any OS
  keychain, written by an older sessionseal) is an error (``key-outside-keychain``).
* **Sessions and checkpoints.**  Each container is authenticated: its header and last META
  frame, or with *read_data* every frame, every appended group applied, the document
  validated.  A container at another one's name is ``misplaced``; a file whose key an
  erasure took, recording its tomb, is that erasure's leftover (``orphan``); any other file
  without its key is ``missing-key`` (an error: perhaps a key table put back from an older
  backup); a cut-short append is ``torn-append``.
* **The index** authenticates and matches the files: a stale entry is a warning (it is a
  cache, rebuilt on use), a recorded version newer than its file, or than its mark in a tracked
  vault's key table, is an error (``rollback``, ``truncated``: a file restored from an older
  backup, or cut), index or no index; an older index is ``index-rollback`` (:mod:`._marks`).
* **The config** and **the audit log** (its MAC chain, against the anchor) verify.

Warnings are crash leftovers and caches out of date: nothing was lost and ``--repair``
clears them.  Errors are damage or tampering: the data or the trust in it is gone, and
``--repair`` never "fixes" them by accepting what is there (a rolled-back file is not
indexed over the newer version the index remembers).
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from .. import _configfile, _container
from .._audit import AUDIT_DIR, VerifyReport
from .._container import Kind
from .._fs import Dir, temp_writer, unsafe_reason
from .._index import INDEX_FILE, OtherFormat, stamp_of
from .._keytable import KEYTABLE, KeyTable
from .._passphrase import KEYFILE
from ..errors import IntegrityError, KeyStoreError, SessionNotFound, SessionSealError, StorageError, UnsupportedVersion
from ._common import MAX_CONTAINER
from ._ftsfiles import FTS_DIR, is_fts_name
from ._marks import Anchored
from ._parts import Parts
from ._synccursor import SYNC_DIR

__all__ = ["Parts", "VerifyProblem", "VerifyResult", "run"]


Severity = Literal["error", "warning"]

_SESSION_NAME: Final = re.compile(r"[0-9a-f]{32}\.sst")
_CHECKPOINT_NAME: Final = re.compile(r"([0-9a-f]{32})-([1-9][0-9]*)\.ckp")
_LOCK_NAME: Final = re.compile(r"(?:[0-9a-f]{32}|vault|cleanup|audit|import|sync|autopush|ftsmerge)\.lock")
_AUDIT_NAME: Final = re.compile(r"audit\.log|audit-[0-9]{12}\.log|pending\.log|anchor\.sst")
_ROOT_FILES: Final = frozenset(
    {
        "vault.json",
        KEYTABLE,
        KEYFILE,
        _configfile.CONFIG_FILE,
        INDEX_FILE,
        "autoclean.json",
        "autopush.json",
        "ftsmerge.json",
    }
)
_SUBDIRS: Final = ("sessions", "checkpoints", "locks", AUDIT_DIR, FTS_DIR, SYNC_DIR)
RUN_DIR: Final = "run"  # resume's private homes (_resume._runtime.RUN_DIR)


@dataclass(frozen=True)
class VerifyProblem:
    """One finding of :meth:`Vault.verify`.

    ``code`` is stable, for scripts (docs/reliability.md lists them); ``path`` is relative
    to the vault; ``message`` says what is wrong and what to do, never a secret or content.
    """

    severity: Severity
    code: str
    path: str
    message: str

    def describe(self) -> str:
        # An unsafe entry's message starts with its full path already (it is what to chmod).
        return f"{self.path}: {self.message}" if self.path and self.code != "unsafe" else self.message


@dataclass
class VerifyResult:
    """The report of :meth:`Vault.verify`: ``ok`` when nothing is an error (warnings are
    crash leftovers and stale caches, which lose nothing)."""

    read_data: bool
    problems: list[VerifyProblem] = field(default_factory=list)
    #: What ``repair`` did, one line each.
    repaired: list[str] = field(default_factory=list)
    #: What was checked: entries, sessions, checkpoints, keys, index_entries, audit_records,
    #: frames (authenticated), bytes_read.
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> list[VerifyProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[VerifyProblem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "read_data": self.read_data,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "problems": [vars(p) | {"message": p.describe()} for p in self.problems],
            "repaired": self.repaired,
            "counts": dict(self.counts),
        }


@dataclass
class _Stored:
    """A session file that authenticated."""

    sid: uuid.UUID
    generation: int
    size: int  # committed, as the index records it: a torn append after it is no part of the version
    stamp: tuple[int, int, int]


class _Check:
    def __init__(self, vault: Parts, *, read_data: bool, progress: Callable[[int, int], None] | None) -> None:
        self.v = vault
        self.read_data = read_data
        self.progress = progress
        self.result = VerifyResult(read_data=read_data)
        self.counts = dict.fromkeys(
            ("entries", "sessions", "checkpoints", "keys", "index_entries", "audit_records", "frames", "bytes_read"), 0
        )
        self.result.counts = self.counts
        self.unsafe: set[str] = set()  # paths not to be opened: already reported
        self.names: dict[str, list[str]] = {}
        self.stored: dict[str, _Stored] = {}
        self.table: KeyTable | None = None
        self.anchored = Anchored()

    def add(self, severity: Severity, code: str, path: str, message: str) -> None:
        # Errors raised elsewhere end in "run 'sessionseal verify'": not advice for this report.
        message = message.replace("; run 'sessionseal verify'", "")
        self.result.problems.append(VerifyProblem(severity, code, path, message))

    # -- the tree ----------------------------------------------------------------

    def walk(self) -> None:
        root = self.v.ctx.root
        self.names[""] = self._walk_dir(root, "", lambda n: n in _ROOT_FILES)
        matchers: dict[str, Callable[[str], bool]] = {
            "sessions": lambda n: _SESSION_NAME.fullmatch(n) is not None,
            "checkpoints": lambda n: _CHECKPOINT_NAME.fullmatch(n) is not None,
            "locks": lambda n: _LOCK_NAME.fullmatch(n) is not None,
            AUDIT_DIR: lambda n: _AUDIT_NAME.fullmatch(n) is not None,
            FTS_DIR: is_fts_name,
            SYNC_DIR: lambda n: _SESSION_NAME.fullmatch(n) is not None,  # a remote's cursor: <device>.sst
        }
        for sub in _SUBDIRS:
            if sub not in self.names[""] or sub in self.unsafe:
                continue
            with _opened(root, sub) as d:
                if d is not None:
                    self.names[sub] = self._walk_dir(d, sub + "/", matchers[sub])
        if RUN_DIR in self.names[""] and RUN_DIR not in self.unsafe:  # resume homes (docs/capture/resume.md)
            from .._resume._runtime import survey  # here: only a vault holding run/ pays its import

            entries, problems = survey(self.v.path / RUN_DIR)
            self.counts["entries"] += entries
            for severity, code, name, message in problems:
                self.add(severity, code, f"{RUN_DIR}/{name}", message)

    def _walk_dir(self, d: Dir, prefix: str, known: Callable[[str], bool]) -> list[str]:
        names = sorted(d.names())
        for name in names:
            path = prefix + name
            self.counts["entries"] += 1
            try:
                st = os.stat(name, dir_fd=d.fd, follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed while we looked: a writer's temp file, a swept leftover
            is_dir = not prefix and (name in _SUBDIRS or name == RUN_DIR)
            reason = unsafe_reason(st, str(self.v.path / path), is_dir=is_dir)
            if reason is not None:
                self.unsafe.add(path)
                self.add("error", "unsafe", path, reason)
                continue
            writer = temp_writer(name)
            if writer is not None:
                if writer == "exited":
                    what = "left by a writer that was killed; 'sessionseal verify --repair' removes it"
                else:
                    what = "being written by a running process (or one whose state is unknown); left alone"
                self.add("warning", "temp-file", path, f"temp file {what}")
            elif not (is_dir or known(name)):
                self.add(
                    "warning",
                    "unknown-entry",
                    path,
                    "not written by sessionseal and never read by it; it may hold plaintext: inspect and remove it",
                )
        return names

    # -- keys ----------------------------------------------------------------------

    def keys(self) -> bool:
        if KEYTABLE in self.unsafe:
            return False
        try:
            self.table = self.v.keys.keytable(fresh=True)
        except IntegrityError as exc:
            self.add("error", "keytable", KEYTABLE, str(exc))
            return False
        except StorageError as exc:  # cannot be read (an I/O error, over the size limit)
            self.add("error", "keytable", KEYTABLE, str(exc))
            return False
        self.counts["keys"] = len(self.table.session_keys)
        self.anchored.read(self.table.state)  # before any session file is read
        with contextlib.suppress(SessionSealError):
            held = set(self.v.keys.fresh_master().keys)
            if held != {self.table.kek_epoch}:
                self.add(
                    "warning",
                    "rotation-unfinished",
                    "",
                    f"the key store still holds {len(held) - 1} old master key(s) of a rotation that was "
                    "interrupted; 'sessionseal verify --repair' (or any write) drops them",
                )
        self.key_copies()
        self.head()
        return True

    def head(self) -> None:
        """The key table against the key store's head: older is a rollback (docs/keychain.md)."""
        with contextlib.suppress(KeyStoreError):
            status = self.v.keys.head_status()
            if status.rolled_back:
                self.add(
                    "error",
                    "rollback",
                    KEYTABLE,
                    f"the key table records head {status.recorded[0]}, older than the head {status.key_store} "
                    "the OS keychain keeps: the vault (or its key table) was rolled back or restored from a "
                    "backup; writes are refused. If the restore was deliberate: 'sessionseal head accept'",
                )

    def key_copies(self) -> None:
        from .._keystore import KeychainProvider, file_copies

        if not isinstance(self.v.keys.provider, KeychainProvider):
            return
        for copy in file_copies(self.v.ctx.vault_id):
            self.add(
                "error",
                "key-outside-keychain",
                "",
                f"a copy of the vault's master key is in {copy.path} ({copy.backend}), a file, not an OS "
                "keychain: with a copy of your home directory it opens the vault; run "
                "'sessionseal rekey --from-keyring-file' (it rotates the key and removes that entry)",
            )

    def key(self, sid: uuid.UUID) -> bytes | None:
        assert self.table is not None
        key = self.table.session_keys.get(sid)
        if key is None:
            # Saved by another process since we read the table: read it again.
            self.table = self.v.keys.keytable(fresh=True)
            key = self.table.session_keys.get(sid)
        return key

    # -- sessions ----------------------------------------------------------------

    def sessions(self, done: list[int], total: int) -> None:
        for fname in self.names.get("sessions", []):
            if _SESSION_NAME.fullmatch(fname) and "sessions/" + fname not in self.unsafe:
                with contextlib.suppress(FileNotFoundError):  # deleted while we looked
                    self._session(fname)
            self._step(done, total)

    def _header(self, d: Dir, fname: str, path: str, kind: int) -> _container.Header | None:
        try:
            prefix, _ = d.read_prefix(fname, _container.HEADER_SIZE)
            header = _container.parse_unverified_header(prefix)
        except UnsupportedVersion as exc:
            self.add("error", "newer-format", path, str(exc))
            return None
        except IntegrityError:
            self.add("error", "damaged", path, "not a sessionseal container (damaged header, or a foreign file)")
            return None
        if header.vault_id != self.v.ctx.vault_id:
            self.add("error", "damaged", path, "a container of another vault; remove it")
            return None
        if header.kind != kind:
            self.add("error", "damaged", path, f"a container of kind {header.kind} in the place of kind {kind}")
            return None
        return header

    def _session(self, fname: str) -> None:
        path = "sessions/" + fname
        d = self.v.ctx.sessions
        header = self._header(d, fname, path, Kind.SESSION)
        if header is None:
            return
        sid = header.object_id
        own = self.v.keys.file_name(sid) + ".sst" == fname
        key = self.key(sid)
        if key is None:
            if own:
                self.keyless(path, f"session {sid}", header)
            else:
                self.add("error", "misplaced", path, "a session whose key is not in the key table, at a foreign name")
            return
        if not own:
            self.add(
                "error",
                "misplaced",
                path,
                f"holds session {sid}, whose file has another name (moved or copied in place of another session)",
            )
            return
        try:
            if self.read_data:
                raw = d.read(fname, max_size=MAX_CONTAINER)
                log = _container.open_session(raw, self.v.ctx.vault_id, sid, lambda _sid: key)
                document = self.v.store.document(log)
                from ..models import Session

                Session.model_validate_json(document)
                self.counts["frames"] += len(log.frames)
                self.counts["bytes_read"] += len(raw)
                size, end = len(raw), log.end
            else:
                with d.reader(fname) as (read_at, size):
                    tail = _container.open_session_tail(read_at, size, self.v.ctx.vault_id, lambda _sid: key)
                from ..models import SessionSummary

                SessionSummary.model_validate_json(_container.decode_payload(tail.meta))
                self.counts["frames"] += 1
                self.counts["bytes_read"] += _container.HEADER_SIZE + len(tail.meta)
                end = tail.end
        except (IntegrityError, ValueError) as exc:  # ValueError: pydantic's ValidationError
            reason = str(exc) if isinstance(exc, IntegrityError) else "the document does not match the schema"
            self.add("error", "damaged", path, f"session {sid}: {reason}")
            return
        self.counts["sessions"] += 1
        st = os.stat(fname, dir_fd=d.fd, follow_symlinks=False)
        self.stored[fname] = _Stored(sid, header.generation, end, stamp_of(st))
        if end != size:
            self.add(
                "warning",
                "torn-append",
                path,
                f"session {sid} ends in an append that was cut short ({size - end} bytes, never acknowledged); "
                "the next append or 'sessionseal verify --repair' cuts it off",
            )

    def keyless(self, path: str, what: str, header: _container.Header) -> None:
        """A file at its own name whose key is not in the key table: an erasure's leftover when
        the erasure recorded its tomb (``orphan``, removed by --repair); anything else is
        ``missing-key``, an error never repaired by removal: the key table may have been put back
        from an older backup, which lacks the keys of newer sessions (issue 20, item 3)."""
        if self.v.keys.tombed(header.raw):
            self.add(
                "warning",
                "orphan",
                path,
                f"{what} was erased (its key is gone) but the erasure was killed before overwriting the file; "
                "it cannot be decrypted. 'sessionseal verify --repair' or 'cleanup' removes it",
            )
            return
        self.add(
            "error",
            "missing-key",
            path,
            f"{what}: its key is not in the key table, and no erasure of it is recorded. If the key table "
            "was put back from an older backup, restore the newer one: the file is intact. sessionseal never "
            "removes it; if you know the session was deleted, remove the file yourself",
        )

    def unused_keys(self) -> None:
        assert self.table is not None
        present, exists = set(self.names.get("sessions", [])), self.v.ctx.sessions.exists
        for finding in self.anchored.keys_without_files(self.v.keys, self.table, present, exists):
            self.add(*finding)

    def against_marks(self) -> None:
        files = [(fname, s.sid, s.generation, s.size) for fname, s in self.stored.items()]
        for f in self.anchored.behind(files):  # once per file: the index may have seen it too
            if not any(p.code == f[1] and p.path == f[2] for p in self.result.problems):
                self.add(*f)

    # -- checkpoints -----------------------------------------------------------------

    def checkpoints(self, done: list[int], total: int) -> None:
        for fname in self.names.get("checkpoints", []):
            m = _CHECKPOINT_NAME.fullmatch(fname)
            if m is not None and "checkpoints/" + fname not in self.unsafe:
                with contextlib.suppress(FileNotFoundError):
                    self._checkpoint(fname, m.group(1), int(m.group(2)))
            self._step(done, total)

    def _checkpoint(self, fname: str, stem: str, number: int) -> None:
        path = "checkpoints/" + fname
        header = self._header(self.v.ctx.ckpts, fname, path, Kind.CHECKPOINT)
        if header is None:
            return
        sid = header.object_id
        own = self.v.keys.file_name(sid) == stem and header.generation == number
        key = self.key(sid)
        if key is None or not own:
            if key is None and own:
                self.keyless(path, f"a checkpoint of session {sid}", header)
            else:
                self.add("error", "misplaced", path, f"a checkpoint of session {sid} at a name not its own")
            return
        try:
            _, body = self.v.checkpoints.read(sid, number, fname, meta_only=not self.read_data)
            if body is not None:
                from ..models import Session

                Session.model_validate_json(body)
        except SessionNotFound:
            return  # erased while we looked
        except (IntegrityError, ValueError) as exc:
            reason = str(exc) if isinstance(exc, IntegrityError) else "the document does not match the schema"
            self.add("error", "damaged", path, f"checkpoint {number} of session {sid}: {reason}")
            return
        self.counts["checkpoints"] += 1
        self.counts["frames"] += 1 if body is None else 2
        if stem + ".sst" not in self.names.get("sessions", []):
            self.add(
                "warning",
                "checkpoint-without-session",
                path,
                f"checkpoint {number} of session {sid}, whose session file is missing; "
                f"'sessionseal checkpoint restore {sid} {number}' cannot run: export it with --plaintext or delete it",
            )

    # -- index, config, audit --------------------------------------------------------

    def index(self) -> bool:
        """Compare the index with the files; returns whether a rebuild would lose nothing."""
        if INDEX_FILE in self.unsafe:
            return False
        try:
            index = self.v.index.load(self.v.keys.master())
        except FileNotFoundError:
            self.add("warning", "index-missing", INDEX_FILE, "no index; the next listing or --repair rebuilds it")
            return True
        except OtherFormat as exc:
            self.add("warning", "index-format", INDEX_FILE, f"{exc}; 'sessionseal migrate' or --repair rebuilds it")
            return True
        except IntegrityError as exc:
            self.add("error", "index-damaged", INDEX_FILE, f"{exc}; --repair rebuilds it from the session files")
            return True
        except StorageError as exc:  # cannot be read: rebuilt like a damaged one
            self.add("error", "index-damaged", INDEX_FILE, f"{exc}; --repair rebuilds it from the session files")
            return True
        self.counts["index_entries"] = len(index.entries)
        for finding in self.anchored.index_read(index):
            self.add(*finding)
        safe_to_rebuild, stale = True, 0
        for fname, stored in self.stored.items():
            entry = index.entries.get(fname)
            if entry is None:
                stale += 1
                continue
            path = "sessions/" + fname
            if entry.id == str(stored.sid) and entry.generation > stored.generation:
                safe_to_rebuild = False
                self.add(
                    "error",
                    "rollback",
                    path,
                    f"session {stored.sid} is at version {stored.generation}, older than the version "
                    f"{entry.generation} the index recorded: the file was restored from an older backup or "
                    "rolled back; restore it from a newer backup ('sessionseal reindex' accepts it as it is)",
                )
            elif (
                entry.id == str(stored.sid)
                and entry.generation == stored.generation
                and entry.size_stored > stored.size
            ):
                safe_to_rebuild = False
                self.add(
                    "error",
                    "truncated",
                    path,
                    f"session {stored.sid} lost appended turns the index recorded (the file was cut short or "
                    "restored from a backup); restore it from a backup ('sessionseal reindex' accepts it as it is)",
                )
            elif tuple(index.stamps.get(fname, ())) != stored.stamp:
                stale += 1
        present = set(self.names.get("sessions", []))
        stale += sum(1 for fname in index.entries if fname not in present)
        if stale:
            self.add(
                "warning",
                "index-stale",
                INDEX_FILE,
                f"{stale} entr{'y is' if stale == 1 else 'ies are'} out of date (a writer killed between its file "
                "and the index, or one running now); the next listing or --repair updates them",
            )
        return safe_to_rebuild

    def config(self) -> None:
        if _configfile.CONFIG_FILE in self.unsafe:
            return
        try:
            problem = self.v.settings.check()  # damaged, or not the config recorded (issue 20)
        except (IntegrityError, StorageError) as exc:
            problem = str(exc)
        if problem is not None:
            self.add("error", "config", _configfile.CONFIG_FILE, problem)

    def audit(self, *, repair: bool) -> VerifyReport | None:
        if AUDIT_DIR in self.unsafe:
            return None
        assert self.table is not None
        try:
            report = self.v.auditor.verify(repair=repair)
        except (IntegrityError, StorageError) as exc:
            self.add("error", "audit", AUDIT_DIR, str(exc))
            return None
        self.counts["audit_records"] = report.records
        for p in report.problems:
            self.add(
                "error" if p.severity == "error" else "warning",
                f"audit:{p.code}",
                f"{AUDIT_DIR}/{p.file}",
                (f"line {p.line}: " + (f"record {p.seq}: " if p.seq is not None else "") + p.what),
            )
        return report

    def _step(self, done: list[int], total: int) -> None:
        done[0] += 1
        if self.progress is not None:
            self.progress(done[0], total)


@contextlib.contextmanager
def _opened(root: Dir, name: str) -> Iterator[Dir | None]:
    try:
        d = root.sub(name)
    except SessionSealError:
        yield None  # reported by the walk of its parent
        return
    try:
        yield d
    finally:
        d.close()


def _check(vault: Parts, *, read_data: bool, progress: Callable[[int, int], None] | None) -> tuple[_Check, bool]:
    c = _Check(vault, read_data=read_data, progress=progress)
    c.walk()
    rebuild_safe = False
    if c.keys():
        total = len(c.names.get("sessions", [])) + len(c.names.get("checkpoints", []))
        done = [0]
        c.sessions(done, total)
        c.checkpoints(done, total)
        rebuild_safe = c.index()
        for finding in vault.fulltext.check(c.table, read_data=read_data):
            c.add(*finding)
        c.against_marks()
        c.unused_keys()
        c.config()
        c.audit(repair=False)
    return c, rebuild_safe


def run(
    vault: Parts, *, read_data: bool, repair: bool, progress: Callable[[int, int], None] | None = None
) -> VerifyResult:
    """Check *vault* (see the module doc); with *repair*, then clear what can be cleared
    without losing data and check again.  The result is of the last check.

    :raises KeyStoreError: the master key cannot be had (nothing keyed can be checked).
    """
    c, rebuild_safe = _check(vault, read_data=read_data, progress=progress)
    # A rolled-back vault is read-only (issue 20): nothing is repaired until 'head accept'.
    if not repair or not c.result.problems or vault.keys.rollback_problem() is not None:
        return c.result
    repaired = _repair(vault, c, rebuild_safe=rebuild_safe)
    again, _ = _check(vault, read_data=read_data, progress=progress)
    again.result.repaired = repaired
    return again.result


def _repair(vault: Parts, c: _Check, *, rebuild_safe: bool) -> list[str]:  # noqa: PLR0912
    """Clear warnings (and rebuild a damaged index) without losing data; returns what was done."""
    codes = {p.code for p in c.result.problems}
    done: list[str] = []
    if "temp-file" in codes:
        n = vault.erasure.sweep_temp_files()
        if n:
            done.append(f"removed {n} temp file(s) left by killed writers (overwritten first)")
    for p in c.result.problems:
        if p.code == "torn-append":
            fname = p.path.split("/", 1)[1]
            stored = c.stored.get(fname)
            if stored is not None and _cut_torn_append(vault, fname, stored.sid):
                done.append(f"cut the torn append off {p.path}")
    if "orphan" in codes:
        n = vault.erasure.sweep_orphans()
        if n:
            done.append(f"removed {n} file(s) of erased sessions (undecryptable; overwritten first)")
    # No key is dropped, not even an 'unused-key' (issue 20, item 2): "never written" is inferred
    # from missing evidence (a mark, an index entry), and evidence goes missing exactly when files
    # are rolled back; a dropped key makes the file that comes back undecryptable for good.
    if "rotation-unfinished" in codes:
        with vault.ctx.vault_lock(), vault.ctx.mutex:
            if vault.keys.finish_rotation():
                done.append("finished an interrupted key rotation (the old master key left the key store)")
    if "fts-retired" in codes and vault.fulltext.sweep_retired():
        done.append("removed the full-text index's replaced files (overwritten first)")
    if codes & {"index-missing", "index-format", "index-stale", "index-damaged", "index-rollback"} or (
        "torn-append" in codes or "orphan" in codes
    ):
        if rebuild_safe and not c.anchored.index_evidence:
            n = vault.reindex()
            done.append(f"rebuilt the index from the session files ({n} sessions)")
        else:
            done.append(
                "kept the index: it records versions or sessions some files lack (see the errors); "
                "restore those files from a backup, or run 'sessionseal reindex' to accept them as they are"
            )
    if any(p.code.startswith("audit:") and p.severity == "warning" for p in c.result.problems):
        report = vault.auditor.verify(repair=True)
        done.extend(report.repaired)
    return done


def _cut_torn_append(vault: Parts, fname: str, sid: uuid.UUID) -> bool:
    d = vault.ctx.sessions
    with vault.ctx.session_lock(fname[: -len(".sst")], sid):
        try:
            with d.reader(fname) as (read_at, size):
                tail = _container.open_session_tail(read_at, size, vault.ctx.vault_id, vault.keys.key_for)
        except (FileNotFoundError, SessionSealError):
            return False
        if tail.end == size:
            return False  # appended to (which cut it) meanwhile
        d.truncate(fname, tail.end)
    return True


def audit_detail(result: VerifyResult, *, read_data: bool) -> dict[str, Any]:
    """The audit detail of a verify run: counts only."""
    return {
        "read_data": read_data,
        "errors": len(result.errors),
        "warnings": len(result.warnings),
        "repaired": len(result.repaired),
        "sessions": result.counts.get("sessions", 0),
    }
