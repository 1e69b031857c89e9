"""Auditing: the records of the vault's operations, and the wrapper that records failures
(docs/spec/audit-log.md; docs/design.md, "The house": one record per operation).

The :class:`Auditor` owns the vault's :class:`~sessionseal._audit.AuditLog`: every record an
operation writes goes through :meth:`Auditor.record`, which names sessions by keyed tags and
seals what measures them in boxes under their keys (read through the :class:`Keys` it is given).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar, cast

from .. import _crypto
from .._audit import (
    NOT_AN_ID,
    NOT_IN_VAULT,
    Anchor,
    AuditLog,
    Chain,
    Subject,
    VerifyReport,
    actor,
    box_ad,
    error_outcome,
    open_box,
    subject_keys,
    subject_tag,
)
from .._fs import Dir
from .._keytable import KeyTable
from .._state import ZERO_MAC, AuditHead, StateChange
from ..errors import IntegrityError, InvalidInput, SessionSealError, StorageError, UnsafePermissions
from ._common import parse_id
from ._context import VaultContext
from ._keys import Keys

#: The kept head (docs/keychain.md, "The vault's head"): ``sseal-head2:<seq>:<MAC>:<check>``.
KEPT_PREFIX: Final = "sseal-head2"
LABEL_KEPT_HEAD: Final = b"sessionseal v1 kept audit head"
_KEPT_MAC_HEX: Final = 32  # 128 bits of the record's MAC: no forger finds another record for it
_KEPT_CHECK_HEX: Final = 16  # tells a head of another vault (or a typo) from a rollback, no more
_MAX_SEQ_DIGITS: Final = 19  # a seq fits in 8 bytes
_HEX: Final = frozenset("0123456789abcdef")
_FORKED: Final = (
    "the vault's audit history holds another record where the head you kept names one: the vault was "
    "restored from an older copy (or rolled back) and used since"
)


class Auditor:
    """Writes and reads the audit log of one open vault."""

    def __init__(
        self,
        ctx: VaultContext,
        keys: Keys,
        *,
        settings: Callable[[], tuple[int, int, bool] | None],
        created: str | None = None,
    ) -> None:
        self._ctx = ctx
        self._vault_id = ctx.vault_id
        self._keys = keys
        self._settings = settings
        self._created = created  # vault.json's created_at: record 1 may not be older
        self._configured = False
        self.log = AuditLog(ctx.root, ctx.locks, ctx.vault_id, lock_timeout=ctx.lock_timeout)
        #: Told the actions of each batch of successful records once they are committed (the
        #: automatic push, :mod:`._autopush`), except within a pull: what a pull writes came
        #: from the remote.  Set by the wiring; it must never raise.
        self.after_write: Callable[[list[str]], None] | None = None
        #: Called when a thread's outermost audited call returns, every lock it took released
        #: (a tier merge a fold found due, :mod:`._ftsmerge`).  Set by the wiring; never raises.
        self.after_call: Callable[[], None] | None = None
        #: Called after a record written outside every audited call (an operation that records
        #: itself, as an import of transcripts; locks may be held).  Never raises.
        self.after_record: Callable[[], None] | None = None

    # -- the chain and its head in the vault's state (issue 20) ---------------------------------

    def chain(self, table: KeyTable) -> Chain | None:
        """How *table*'s vault keys and anchors its chain, or None for a vault whose state is not
        tracked (its head stays in ``anchor.sst``)."""
        state = table.state
        if not state.tracked:
            return None
        head = state.audit
        return Chain(
            keys=state.audit_keys,
            head=None if head is None else Anchor(head.seq, head.mac, head.base_seq, head.base_mac),
            created=self._created,
            sessions=bool(table.session_keys),
        )

    # -- the kept head: a point of the vault's history, kept outside it (docs/keychain.md) -------

    def _anchored(self, table: KeyTable) -> tuple[int, str]:
        """The anchored head's (seq, MAC): the key table's state's, or ``anchor.sst``'s in a vault
        whose state is not tracked; (0, zeros) before any record."""
        if table.state.tracked:
            head = table.state.audit
            return (0, ZERO_MAC) if head is None else (head.seq, head.mac)
        anchor = self.log.anchored(table.vault_secret)
        return (0, ZERO_MAC) if anchor is None else (anchor.seq, anchor.mac)

    def _check_of(self, table: KeyTable, seq: int, mac: str) -> str:
        # Under a key of the vault secret (no rotation changes it): a head of another vault, or a
        # mistyped one, is told from a head of this vault that its history does not hold.
        key = _crypto.derive_key(table.vault_secret, LABEL_KEPT_HEAD)
        return _crypto.hmac_sha256(key, self._vault_id.bytes + seq.to_bytes(8, "big") + mac.encode())[:8].hex()

    def kept_head(self, table: KeyTable) -> str:
        """``sseal-head2:<seq>:<MAC>:<check>``: the anchored head's record (its seq and the first
        128 bits of its MAC, which the vault's audit key made), and a check of this vault's.

        Not a counter: every command, reads too, moves the state on, and a restored copy's
        counter climbs past any number kept. A record of the append-only history is what a copy
        cannot reach again: restored from before it, the copy has fewer records, or, once used,
        another record (another MAC, under a key nobody without the vault holds) at that place.
        """
        seq, mac = self._anchored(table)
        mac = mac[:_KEPT_MAC_HEX]
        return f"{KEPT_PREFIX}:{seq}:{mac}:{self._check_of(table, seq, mac)}"

    def _parse_kept(self, table: KeyTable, kept: str) -> tuple[int, str]:
        """The (seq, MAC prefix) of a head :meth:`kept_head` printed for this vault.

        :raises InvalidInput: malformed, or not a head of this vault (never echoed).
        """
        parts = kept.strip().split(":")
        if len(parts) != 4 or parts[0] != KEPT_PREFIX:
            old = parts[0] == "sseal-head1"
            raise InvalidInput(
                "that head is of an older format (a state counter, which reads of a restored copy move "
                "past); run 'sessionseal head show' on the vault you trust and keep the head it prints"
                if old
                else "--expect-head takes a head as 'sessionseal head show' prints it (sseal-head2:SEQ:MAC:CHECK)"
            )
        _, seq_text, mac, check = parts
        if not (
            seq_text.isascii()
            and seq_text.isdigit()
            and len(seq_text) <= _MAX_SEQ_DIGITS
            and len(mac) == _KEPT_MAC_HEX
            and len(check) == _KEPT_CHECK_HEX
            and all(c in _HEX for c in mac + check)
        ):
            raise InvalidInput(
                "--expect-head takes a head as 'sessionseal head show' prints it (sseal-head2:SEQ:MAC:CHECK)"
            )
        seq = int(seq_text)
        if not _crypto.constant_time_equal(self._check_of(table, seq, mac).encode(), check.encode()):
            raise InvalidInput("that head is not one of this vault (its check does not match); check what you kept")
        return seq, mac

    def descent(self, table: KeyTable, kept: str) -> str | None:
        """None when the vault's history holds the head *kept* names: its audit chain verifies
        and holds, at or before the anchored head, that record with that MAC; otherwise why not
        (one line that does not repeat the head).

        :raises InvalidInput: *kept* is malformed, or not a head of this vault (never echoed).
        """
        seq, mac = self._parse_kept(table, kept)
        # Head 0 (no record yet) is the chain's start: its base, zeros, before any retention.
        report, anchor, at, adopted = self.log.record_at(
            table.vault_secret, seq, chain=self.chain(table), sessions=bool(table.session_keys)
        )
        if not report.ok:
            return (
                "the vault's audit log does not verify ('sessionseal audit verify' says why): nothing in it "
                "vouches for the head you kept"
            )
        if anchor.seq < seq:
            return (
                f"the vault's history ends at audit record {max(anchor.seq, 0)}, before the record the head "
                "you kept names: the vault is older than that head (rolled back, or restored from an older backup)"
            )
        if at is None:
            return (
                "the audit log's retention removed the record the head you kept names, so the vault can no "
                "longer show it descends from it: keep a newer head ('sessionseal head show')"
            )
        if not _crypto.constant_time_equal(at[:_KEPT_MAC_HEX].encode(), mac.encode()):
            return _FORKED
        if adopted:
            # A kept head names a record its own writer anchored; this one a writer of this copy
            # found beyond its anchored head and adopted: another copy's log was put back here.
            return (
                "the vault's key table never anchored the record the head you kept names (a later writer "
                "adopted it): a newer audit log was put back over an older copy of the vault"
            )
        return None

    def _anchor(self, head: Anchor) -> None:
        """Make *head* the anchored head, durably (the caller holds the vault lock)."""
        self._keys.commit(StateChange(audit=AuditHead(head.seq, head.mac, head.base_seq, head.base_mac)))

    def _append(self, many: Sequence[Mapping[str, Any]]) -> None:
        """Append *many* and anchor the new head with everything the operation noted, at one
        commit.  Under the vault lock (re-entrant), before the audit lock: the head read from
        the state and the one written back cannot interleave with another writer's."""
        with self._ctx.vault_lock():
            table = self._keys.keytable(fresh=True)
            chain = self.chain(table)
            if chain is not None and chain.epoch is None:
                # Tracked by 'migrate' (a new vault has its key from 'init'): the chain goes on
                # under a key of the state's, committed before any record uses it.
                self._keys.commit(StateChange(audit_keys={table.kek_epoch: _crypto.new_key()}))
                table = self._keys.keytable(fresh=True)
                chain = self.chain(table)
            head = self.log.append_many(table.vault_secret, many, chain=chain, anchor_to=self._anchor)
            if chain is not None:
                self._anchor(head)
            else:
                # What the operation wrote (its sessions' marks) is committed with its record; a
                # failure keeps the marks for the next commit (they are lower bounds).
                self._keys.commit()
        if self.after_write is not None and "sync.pull" not in _running():
            done = [str(r["action"]) for r in many if r.get("outcome") == "ok"]
            if done:
                self.after_write(done)
        if self.after_record is not None and not _running():
            self.after_record()

    def served(self, action: str, outcome: str, sessions: Iterable[str], **fields: Any) -> None:
        """One record of what a server gave a client (``mcp.<tool>``): the *sessions* as subjects
        (role ``served``), *fields*' ``detail`` (counts, bytes, the client) and ``error``."""
        if not action.startswith("mcp.") or not action[4:].replace("_", "").isalpha():
            raise InvalidInput("a served read's action is mcp.<tool>")
        others = [("served", parse_id(s), None) for s in sessions]
        self.record(action, outcome, detail=fields.get("detail"), error=fields.get("error"), others=others)

    def record(  # noqa: PLR0912 - one branch per kind of subject
        self,
        action: str,
        outcome: str = "ok",
        *,
        session: uuid.UUID | str | None = None,
        error: str | None = None,
        nbytes: int | None = None,
        redactions: Mapping[str, int] | None = None,
        detail: Mapping[str, Any] | None = None,
        private: Mapping[str, Any] | None = None,
        others: Sequence[tuple[str, uuid.UUID, Mapping[str, Any] | None]] = (),
        session_key: bytes | None = None,
    ) -> None:
        """Append one record: what, the outcome and who in the clear; the sessions it is about
        as subjects (docs/spec/audit-log.md): a tag keyed by the session's own key, and a box
        sealed under it holding the id and what measures the session (*nbytes*, *redactions*,
        *private*); never a value, a title or content.

        :param others: further subjects, as (role, id, values for the box or None for a tag
            only); an id without a key in the table is left out.
        :param session_key: the key of *session* when it has already left the table (the
            record of its erasure): only its tag is recorded then.
        """
        fields: dict[str, Any] = {"action": action, "outcome": outcome, **actor()}
        if error is not None:
            fields["error"] = error
        if detail:
            fields["detail"] = dict(detail)
        try:
            self._keys.keytable()
        except SessionSealError:
            # The key read that failed recorded the refused open (:meth:`unkeyed_open`): pending
            # records are refusals of that fixed shape only, never an operation's own record.
            return
        subjects: list[Subject] = []
        if session is not None:
            try:
                sid = parse_id(session)
            except InvalidInput:
                fields["session"] = NOT_AN_ID  # a mistyped argument could be anything, a secret too
            else:
                values: dict[str, Any] = {"id": str(sid)}
                if nbytes is not None:
                    values["bytes"] = nbytes
                if redactions:
                    values["redactions"] = dict(sorted(redactions.items()))
                values.update(private or {})
                key = session_key if session_key is not None else self.key_of(sid)
                if key is None:
                    fields["session"] = NOT_IN_VAULT
                else:
                    subjects.append(Subject("session", key, None if session_key is not None else values))
        for role, other, vals in others:
            key = self.key_of(other)
            if key is not None:
                subjects.append(Subject(role, key, None if vals is None else {"id": str(other), **vals}))
        if subjects:
            fields["subjects"] = subjects
        self.configure()
        try:
            self._append([fields])
        except (StorageError, UnsafePermissions) as exc:
            # The record of the operation called, which is done: the error must say so.  Records
            # of steps within it ('open', a replacing import's checkpoint) fail it as they are.
            if outcome != "ok" or _running()[:1] != [action]:
                raise
            raise unrecorded(action, exc, self.log.path.parent) from exc

    def saves(self, saved: Sequence[tuple[uuid.UUID, int, Mapping[str, int]]]) -> None:
        """One ``save`` record per (session, bytes, redactions), as :meth:`record` writes it,
        appended together: one fsync and one anchor for a batch (a pull's run of new sessions)."""
        if not saved:
            return
        try:
            self._keys.keytable()
        except SessionSealError:
            return  # as record: the refused key read is recorded on its own
        who = actor()
        records: list[dict[str, Any]] = []
        for sid, nbytes, redactions in saved:
            rec: dict[str, Any] = {"action": "save", "outcome": "ok", **who}
            values: dict[str, Any] = {"id": str(sid), "bytes": nbytes}
            if redactions:
                values["redactions"] = dict(sorted(redactions.items()))
            key = self.key_of(sid)
            if key is None:
                rec["session"] = NOT_IN_VAULT
            else:
                rec["subjects"] = [Subject("session", key, values)]
            records.append(rec)
        self.configure()
        self._append(records)

    def verify(self, *, repair: bool = False) -> VerifyReport:
        """Check the chain against its anchored head (:meth:`AuditLog.verify`); *repair* seals a
        torn last line, under the vault lock when the head is in the vault's state."""
        lock = self._ctx.vault_lock() if repair else contextlib.nullcontext()
        with lock:
            table = self._keys.keytable(fresh=True)
            return self.log.verify(
                table.vault_secret,
                repair=repair,
                chain=self.chain(table),
                anchor_to=self._anchor,
                sessions=bool(table.session_keys),
            )

    def unkeyed_open(self, exc: SessionSealError) -> None:
        self.log.append_unkeyed(
            {"action": "open", "outcome": error_outcome(exc), "error": type(exc).__name__, **actor()}
        )

    def key_of(self, sid: uuid.UUID) -> bytes | None:
        """The key of *sid* for its audit subject, or None when the table holds none."""
        key = self._keys.keytable().session_keys.get(sid)
        if key is None:
            with contextlib.suppress(SessionSealError):
                key = self._keys.keytable(fresh=True).session_keys.get(sid)  # saved by another process
        return key

    def erasures(self, erased: Sequence[tuple[uuid.UUID, bytes | None, dict[str, Any]]]) -> None:
        """One ``delete`` record per erased session, appended together (one fsync for a batch:
        per-record appends were two thirds of a cleanup's cost per session).  Each names its
        session by tag only: the key its tag came from is gone."""
        if not erased:
            return
        who = actor()
        self.configure()
        records: list[dict[str, Any]] = []
        for _, key, detail in erased:
            rec: dict[str, Any] = {"action": "delete", "outcome": "ok", **who, "detail": detail}
            if key is None:
                rec["session"] = NOT_IN_VAULT
            else:
                rec["subjects"] = [Subject("session", key)]
            records.append(rec)
        try:
            self._append(records)
        except (StorageError, UnsafePermissions) as exc:
            raise unrecorded(f"the erasure of {len(erased)} session(s)", exc, self.log.path.parent) from exc

    def failure(
        self,
        action: str,
        exc: SessionSealError,
        *,
        session: uuid.UUID | str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        # Recording a failure must never hide it: a second failure here is swallowed.
        with contextlib.suppress(Exception):
            self.record(action, error_outcome(exc), session=session, error=type(exc).__name__, detail=detail)

    def configure(self) -> None:
        """Apply the config's audit settings (rotation, syslog), once until :meth:`reconfigure`."""
        if self._configured:
            return
        self._configured = True
        with contextlib.suppress(SessionSealError):
            settings = self._settings()
            if settings is not None:
                log = self.log
                log.max_file_bytes, log.keep_files, log.syslog = settings

    def reconfigure(self) -> None:
        """The config changed: read the audit settings again before the next record."""
        self._configured = False

    def entries(self, want: uuid.UUID | None, *, fresh: bool = False) -> tuple[list[dict[str, Any]], VerifyReport]:
        """Every audit record, oldest first, checked as it is read, and the chain's report.

        Each record gets ``verified`` (true only when the MAC chain vouches for it and each of
        its boxes opens) and, when false, ``problem``: ``pending`` (not chained yet), the
        verify code of the first bad record, ``after-error`` (after it), ``anchor`` (the anchor
        vouches for no record) or ``box``.  Subjects are opened with the sessions' keys: each
        gets its ``id`` and its box's values; a tag that no key in the table yields gets
        ``erased: true`` (docs/spec/audit-log.md, "Showing").

        :param want: only the records about this session (by its tag, or by its id in
            format 1 records).
        """
        table = self._keys.keytable(fresh=fresh)
        records, report = self.log.checked_records(
            table.vault_secret, chain=self.chain(table), sessions=bool(table.session_keys)
        )
        tags: dict[str, tuple[uuid.UUID, bytes]] | None = None

        def by_tag() -> dict[str, tuple[uuid.UUID, bytes]]:
            nonlocal tags
            if tags is None:
                tags = {}
                for sid, key in table.session_keys.items():
                    tag_key, box_key = subject_keys(key)
                    tags[subject_tag(tag_key)] = (sid, box_key)
            return tags

        want_tag = None
        if want is not None and want in table.session_keys:
            want_tag = subject_tag(subject_keys(table.session_keys[want])[0])
        out: list[dict[str, Any]] = []
        for rec, chain_problem in records:
            problem = chain_problem
            subjects = rec.get("subjects")
            if want is not None:
                named = isinstance(subjects, list) and any(
                    isinstance(e, dict) and e.get("tag") == want_tag for e in subjects
                )
                if not (named and want_tag is not None) and rec.get("session") != str(want):
                    continue
            shown = {k: v for k, v in rec.items() if k != "subjects"}
            if subjects is not None:
                opened, ok = open_subjects(self._vault_id, rec, subjects, by_tag())
                shown["subjects"] = opened
                main = next((e for e in opened if e.get("role") == "session"), None)
                if main is not None:
                    shown["session"] = main.get("id") or "(erased)"
                    for k in ("bytes", "redactions"):
                        if k in main:
                            shown[k] = main[k]
                if not ok and problem is None:
                    problem = "box"
            shown["verified"] = problem is None
            if problem is not None:
                shown["problem"] = problem
            out.append(shown)
        return out, report


def record_refusal(vpath: Path, root: Dir | None, exc: SessionSealError) -> None:
    """Note a refused open in the vault's pending audit records, when that is safe.

    Only in a vault directory that is ours and that nobody else can write: a vault that
    others can merely read is refused, and that refusal is worth a record; a link, a foreign
    owner or a writable-by-others directory gets nothing written into it.  Best effort.
    """
    fields = {"action": "open", "outcome": error_outcome(exc), "error": type(exc).__name__, **actor()}
    with contextlib.suppress(Exception):
        opened = root is None
        d = Dir(vpath, others_may_read=True) if root is None else root
        try:
            locks = d.sub("locks")
            log = AuditLog(d, locks, uuid.UUID(int=0))
            try:
                log.append_unkeyed(fields)
            finally:
                log.close()
                locks.close()
        finally:
            if opened:
                d.close()


_F = TypeVar("_F", bound=Callable[..., Any])


def audited_by(auditor_of: Callable[[Any], Auditor]) -> Callable[..., Callable[[_F], _F]]:
    """The ``audited`` decorator of a facade whose auditor is ``auditor_of(self)``."""

    def audited(action: str, *, by_id: bool = False) -> Callable[[_F], _F]:
        return _audited(auditor_of, action, by_id=by_id)

    return audited


def _audited(auditor_of: Callable[[Any], Auditor], action: str, *, by_id: bool = False) -> Callable[[_F], _F]:
    """Record a failed *action* in the audit log (successes are recorded by the method, with
    their byte and redaction counts), then re-raise.  Only the outermost audited call of a
    thread records a failure: one record per operation (docs/design.md, "The house").

    :param by_id: the method's first argument is a session id, recorded with the failure.
    """

    def deco(fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            running = _running()
            running.append(action)
            try:
                out = fn(self, *args, **kwargs)
            except SessionSealError as exc:
                # One record per operation: a failure is recorded by the outermost audited call
                # only (append over its sanitize-and-write step, set_status over archive).
                outermost = len(running) == 1
                if outermost and not done_but_unrecorded(exc):  # done: not a failure to record
                    session = args[0] if by_id and args and isinstance(args[0], uuid.UUID | str) else None
                    auditor_of(self).failure(action, exc, session=session)
                raise
            finally:
                running.pop()
            hook = auditor_of(self).after_call if not running else None
            if hook is not None:
                hook()  # the outermost call returned: its locks are released
            return out

        return cast(_F, wrapper)

    return deco


_thread = threading.local()


@contextlib.contextmanager
def recorded_by_caller(action: str) -> Iterator[None]:
    """Within the block, an audited call's failure is not recorded by its decorator: the caller
    records it, with what the decorator cannot know (the automatic push's ``auto`` flag)."""
    running = _running()
    running.append(action)
    try:
        yield
    finally:
        running.pop()


def _running() -> list[str]:
    """The audited actions running in this thread, outermost first."""
    running: list[str] | None = getattr(_thread, "running", None)
    if running is None:
        running = _thread.running = []
    return running


_DONE_ATTR: Final = "_sessionseal_done"


def done_but_unrecorded(exc: BaseException) -> bool:
    """Whether *exc* says an operation was done but its audit record could not be written."""
    return bool(getattr(exc, _DONE_ATTR, False))


def unrecorded(action: str, exc: StorageError | UnsafePermissions, audit_dir: Path) -> SessionSealError:
    """The error for an operation that was done but whose audit record failed: of the same
    documented type (a disk failure, or an audit log that is unsafe to write: exit 6), saying
    that it was done, and marked so that it is not recorded as a failed operation."""
    if isinstance(exc, UnsafePermissions):
        err: SessionSealError = UnsafePermissions(f"{action} was done, but the audit log was refused: {exc}")
    else:
        cause = exc.__cause__
        reason = os.strerror(cause.errno) if isinstance(cause, OSError) and cause.errno else str(exc)
        err = StorageError(
            f"{action} was done, but recording it in the audit log failed ({reason} in {audit_dir}); "
            "free disk space or check the disk before the next operation"
        )
    setattr(err, _DONE_ATTR, True)
    return err


def open_subjects(
    vault_id: uuid.UUID, rec: Mapping[str, Any], subjects: Any, tags: Mapping[str, tuple[uuid.UUID, bytes]]
) -> tuple[list[dict[str, Any]], bool]:
    """A record's subjects as shown, and whether every box that a living key should open did."""
    if not isinstance(subjects, list):
        return [], False
    seq, action = rec.get("seq"), rec.get("action")
    out: list[dict[str, Any]] = []
    ok = True
    for e in subjects:
        role, tag, box = (e.get("role"), e.get("tag"), e.get("box")) if isinstance(e, dict) else (None, None, None)
        if not isinstance(role, str) or not isinstance(tag, str) or not (box is None or isinstance(box, str)):
            ok = False
            continue
        entry: dict[str, Any] = {"role": role, "tag": tag}
        hit = tags.get(tag)
        if hit is None:
            entry["erased"] = True  # no key in the table yields this tag
        else:
            sid, box_key = hit
            entry["id"] = str(sid)
            if box is not None:
                try:
                    if not isinstance(seq, int) or not isinstance(action, str):
                        raise IntegrityError("no place to bind the box to")
                    values = open_box(box_key, box, box_ad(vault_id, seq, action, role, tag))
                    if values.get("id") != str(sid):
                        raise IntegrityError("the box names another session")
                except IntegrityError:
                    entry["unreadable"] = True
                    ok = False
                else:
                    entry.update({k: v for k, v in values.items() if k != "id"})
        out.append(entry)
    return out, ok
