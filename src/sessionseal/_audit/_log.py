"""The audit log's files: appending under the lock, rotation and retention, pending records,
the anchor, and reading them back (docs/spec/audit-log.md)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import _container, _crypto
from .._container import FrameType, Kind
from .._fs import Dir, lock
from .._fscheck import storage_error
from ..errors import IntegrityError
from ._records import (
    ANCHOR,
    ANCHOR_ID,
    AUDIT_DIR,
    CURRENT,
    DEFAULT_MAX_FILE_BYTES,
    FORMAT,
    FORMAT_UNTRACKED,
    LABEL_ANCHOR,
    LABEL_MAC,
    MAX_LINE,
    MAX_PENDING,
    PENDING,
    Anchor,
    Chain,
    Problem,
    Record,
    VerifyReport,
    actor,
    canonical,
    complete_lines,
    key_epoch,
    mac_key_of,
    parse_json,
    parse_time,
    record_line,
    record_mac,
    refusal,
    rotated_seq,
    seq_of,
    split_line,
    subject_entry,
    utc_now,
)
from ._verify import ChainCheck


class AuditLog:
    """The audit log of one vault.

    :param root: the vault directory; ``audit/`` is created on first write.
    :param locks: the vault's lock directory.
    :param vault_id: binds the anchor to this vault.
    """

    def __init__(self, root: Dir, locks: Dir, vault_id: uuid.UUID, *, lock_timeout: float = 10.0) -> None:
        self._root = root
        self._locks = locks
        self._vault_id = vault_id
        self._lock_timeout = lock_timeout
        self._dir: Dir | None = None
        self.max_file_bytes = DEFAULT_MAX_FILE_BYTES
        self.keep_files = 0  # 0: keep every rotated file
        self.syslog = False

    @property
    def path(self) -> Path:
        """The current log file."""
        return self._root.path / AUDIT_DIR / CURRENT

    def close(self) -> None:
        if self._dir is not None:
            self._dir.close()
            self._dir = None

    def _audit_dir(self) -> Dir:
        if self._dir is None:
            self._dir = self._root.sub(AUDIT_DIR, create=True)
        return self._dir

    @staticmethod
    def keys(vault_secret: bytes) -> tuple[bytes, bytes]:
        """The MAC key and the anchor key, derived from the vault secret."""
        return _crypto.derive_key(vault_secret, LABEL_MAC), _crypto.derive_key(vault_secret, LABEL_ANCHOR)

    # ------------------------------------------------------------------ writing

    def append(self, vault_secret: bytes, fields: Mapping[str, Any], *, chain: Chain | None = None) -> Anchor:
        """Append one record (``seq``, ``prev``, ``time``, ``v`` and ``k`` are filled in); return
        the new head."""
        return self.append_many(vault_secret, [fields], chain=chain)

    def append_many(
        self,
        vault_secret: bytes,
        many: Sequence[Mapping[str, Any]],
        *,
        chain: Chain | None = None,
        anchor_to: Callable[[Anchor], None] | None = None,
    ) -> Anchor:
        """Append several records with one lock and one fsync (a cleanup batch's erasures);
        return the new head.

        :param chain: the vault's anchored state (issue 20): the records are MACed under its
            newest audit key and continue from its head; the caller anchors the head returned
            (no ``anchor.sst`` is written).  None: a vault of before, anchored by ``anchor.sst``.
        :param anchor_to: with *chain*, makes a new base durable before the audit log's own
            retention removes files (called only when a rotation makes that due).
        """
        legacy_key, anchor_key = self.keys(vault_secret)
        k = chain.epoch if chain is not None else None
        mac_key = legacy_key if k is None or chain is None else chain.keys[k]
        d = self._audit_dir()
        with lock(self._locks.path / "audit.lock", timeout=self._lock_timeout, what="the audit log"):
            anchor = self._read_anchor(d, anchor_key) if chain is None else _head(chain)
            tail = _read_tail(d)
            seq, prev, last_time = self._tail(legacy_key, chain, anchor, tail)
            adopted = _adoption(chain, anchor, seq)
            seq, prev = self._seal_torn_tail(d, (mac_key, k), seq, prev, tail)
            pending = self._take_pending(d, chain, last_time)
            rotated = self._rotate_if_needed(d, seq)
            out = bytearray()
            lines = []
            for rec in [*adopted, *pending, *many]:
                seq += 1
                body = {**rec, "v": FORMAT_UNTRACKED, "seq": seq, "prev": prev}
                if k is not None:
                    body["v"], body["k"] = FORMAT, k
                subjects = body.pop("subjects", None)
                if subjects:
                    # Sealed here, where the seq is known: each box is bound to its place.
                    body["subjects"] = [subject_entry(self._vault_id, seq, str(rec["action"]), s) for s in subjects]
                body.setdefault("time", utc_now())
                line, prev = record_line(mac_key, body)
                out += line
                lines.append(line)
            self._append(d, CURRENT, bytes(out))
            anchor.seq, anchor.mac = seq, prev
            if chain is None:
                self._write_anchor(d, anchor_key, anchor)
            if d.exists(PENDING):
                d.unlink(PENDING)
        # Forwarded once written; folded pending records were forwarded when they happened.
        for line in lines[len(adopted) + len(pending) :]:
            self._forward(line)
        if rotated and self.keep_files > 0:
            # The audit log's own retention, never session cleanup's.
            self.apply_retention(vault_secret, chain=chain, anchor_to=anchor_to, head=anchor)
        return anchor

    def append_unkeyed(self, fields: Mapping[str, Any]) -> None:
        """Record a failure that happened before the vault key was available (no MAC yet)."""
        d = self._audit_dir()
        line = canonical({**fields, "time": utc_now()}) + b"\n"
        with lock(self._locks.path / "audit.lock", timeout=self._lock_timeout, what="the audit log"):
            try:
                size = os.stat(PENDING, dir_fd=d.fd, follow_symlinks=False).st_size
            except FileNotFoundError:
                size = 0
            if size > MAX_PENDING:
                return  # bounded: a flood of failed attempts must not fill the disk
            self._append(d, PENDING, line)
        self._forward(line)

    @staticmethod
    def _append(d: Dir, name: str, data: bytes) -> None:
        if not d.exists(name):
            d.write_atomic(name, b"")
        d.append(name, data)

    def _forward(self, line: bytes) -> None:
        if not self.syslog:
            return
        with contextlib.suppress(Exception):
            import syslog

            syslog.openlog("sessionseal", syslog.LOG_PID, syslog.LOG_AUTHPRIV)
            syslog.syslog(syslog.LOG_INFO, line.decode("ascii", "replace").rstrip("\n"))

    def _read_anchor(self, d: Dir, key: bytes) -> Anchor:
        try:
            raw = d.read(ANCHOR, max_size=4096)
        except FileNotFoundError:
            if d.exists(CURRENT) and self._has_records(d):
                # A log without its anchor was tampered with: keep writing, verify will say so.
                return Anchor(seq=-1)
            return Anchor()
        header = _container.parse_unverified_header(raw)
        if header.kind != Kind.AUDIT_ANCHOR or header.vault_id != self._vault_id or header.object_id != ANCHOR_ID:
            raise IntegrityError("the audit log's anchor failed its integrity check; run 'sessionseal audit verify'")
        _, frames = _container.open_frames(raw, header, key)
        if [f.type for f in frames] != [FrameType.BODY]:  # the kind's frame sequence (container-v1.md, step 8)
            raise IntegrityError("the audit log's anchor failed its integrity check; run 'sessionseal audit verify'")
        try:
            doc = parse_json(_container.decode_payload(frames[0].data))
            return Anchor(
                seq=int(doc["seq"]),
                mac=str(doc["mac"]),
                base_seq=int(doc["base_seq"]),
                base_mac=str(doc["base_mac"]),
                generation=header.generation,
            )
        except (ValueError, KeyError, TypeError, IndexError, OverflowError):
            raise IntegrityError("the audit log's anchor does not parse; run 'sessionseal audit verify'") from None

    def _write_anchor(self, d: Dir, key: bytes, anchor: Anchor) -> None:
        body = json.dumps(
            {"seq": anchor.seq, "mac": anchor.mac, "base_seq": anchor.base_seq, "base_mac": anchor.base_mac}
        ).encode()
        anchor.generation += 1
        data = _container.seal(
            kind=Kind.AUDIT_ANCHOR,
            vault_id=self._vault_id,
            object_id=ANCHOR_ID,
            generation=anchor.generation,
            kek=key,
            kek_epoch=0,
            frames=[(FrameType.BODY, _container.encode_payload(body, compress=False))],
        )
        d.write_atomic(ANCHOR, data)

    def _has_records(self, d: Dir) -> bool:
        return any(n == CURRENT or rotated_seq(n) is not None for n in d.names())

    def _tail(
        self, legacy_key: bytes, chain: Chain | None, anchor: Anchor, tail: tuple[bytes, int]
    ) -> tuple[int, str, datetime | None]:
        """Where the next record continues the chain: the anchor, or a newer record of ours;
        and the time of the last record of the log, if it is ours (pending records may not be
        older)."""
        seq, prev = max(anchor.seq, 0), anchor.mac if anchor.seq > 0 else anchor.base_mac
        chunk = tail[0]
        end = chunk.rfind(b"\n")
        if end < 0:
            return seq, prev, None
        split = split_line(chunk[chunk.rfind(b"\n", 0, end) + 1 : end])
        rec = parse_json(split[0]) if split is not None else None
        key = mac_key_of(legacy_key, chain, rec) if isinstance(rec, dict) else None
        if split is None or key is None or not isinstance(rec, dict):
            return seq, prev, None
        if chain is not None and chain.keys and key_epoch(rec) is None:
            # Only a record under a key of the state's is ours: the vault secret's key is also
            # in every older copy of the key table.
            return seq, prev, None
        if not _crypto.constant_time_equal(record_mac(key, split[0]).encode(), split[1].encode()):
            return seq, prev, None
        last = seq_of(split[0])
        if last is not None and last > seq:
            # Appended by a writer killed before it moved the anchor: its MAC proves it is ours.
            return last, split[1], parse_time(rec.get("time"))
        return seq, prev, parse_time(rec.get("time"))

    def _seal_torn_tail(
        self, d: Dir, key: tuple[bytes, int | None], seq: int, prev: str, tail: tuple[bytes, int]
    ) -> tuple[int, str]:
        """If the last line is incomplete, end it and append a record that names it."""
        chunk, size = tail
        if size == 0 or chunk.endswith(b"\n"):
            return seq, prev
        start = size - len(chunk)
        nl = chunk.rfind(b"\n")
        offset = start + nl + 1 if nl >= 0 else start
        fields = {
            "action": "audit.torn-tail",
            "outcome": "ok",
            "detail": {"file": CURRENT, "offset": offset, "length": size - offset},
            **actor(),
        }
        body = {**fields, "v": FORMAT_UNTRACKED, "seq": seq + 1, "prev": prev, "time": utc_now()}
        mac_key, k = key
        if k is not None:
            body["v"], body["k"] = FORMAT, k
        line, mac = record_line(mac_key, body)
        d.append(CURRENT, b"\n" + line)
        return seq + 1, mac

    def _take_pending(self, d: Dir, chain: Chain | None, after: datetime | None) -> list[Record]:
        """The pending records to chain, marked ``unkeyed``: refused opens of the fixed shape
        only (:func:`refusal`); the others are dropped, and a record that counts them follows."""
        try:
            raw = d.read(PENDING, max_size=MAX_PENDING + MAX_LINE)
        except FileNotFoundError:
            return []
        who = actor()
        if after is None and chain is not None:
            after = parse_time(chain.created)
        now = datetime.now(UTC)
        out: list[Record] = []
        dropped = 0
        for line in raw.splitlines():
            if not line.strip():
                continue
            rec = refusal(parse_json(line), owner=(who["uid"], who["user"]), after=after, now=now)
            if rec is None:
                dropped += 1
            else:
                out.append({**rec, "unkeyed": True})
        if dropped:
            # Counted in the chain, never copied: a line of pending.log is anyone's writing.
            out.append({"action": "audit.pending-dropped", "outcome": "ok", "detail": {"dropped": dropped}, **who})
        return out

    def _rotate_if_needed(self, d: Dir, last_seq: int) -> bool:
        try:
            head, size = d.read_prefix(CURRENT, MAX_LINE)
        except FileNotFoundError:
            return False
        split = split_line(head.split(b"\n", 1)[0])
        rec = parse_json(split[0]) if split is not None else None
        older = isinstance(rec, dict) and isinstance(rec.get("v"), int) and rec["v"] < FORMAT_UNTRACKED
        # Records of an older format (ids in the clear) are kept whole, in a file of their
        # own: the audit log's retention can then remove them with the anchor's base moved on.
        if size < self.max_file_bytes and not older:
            return False
        # Named by the first record's seq, so names sort in chain order; a damaged first line
        # falls back to the last seq, which still sorts after every earlier file.
        first = seq_of(split[0]) if split is not None else None
        name = f"audit-{last_seq if first is None or first < 0 else first:012d}.log"
        if d.exists(name):
            return False  # never replace a rotated file: keep appending to the current one
        try:
            os.rename(CURRENT, name, src_dir_fd=d.fd, dst_dir_fd=d.fd)
        except OSError as exc:
            raise storage_error(exc, "rotate the audit log", str(d.path / CURRENT)) from exc
        d.fsync()
        return True

    def apply_retention(
        self,
        vault_secret: bytes,
        *,
        chain: Chain | None = None,
        anchor_to: Callable[[Anchor], None] | None = None,
        head: Anchor | None = None,
    ) -> list[str]:
        """Remove the oldest rotated files beyond ``keep_files``; the anchor keeps the chain's new
        base (with *chain*: *anchor_to* makes it durable in the vault's state, from *head*)."""
        if self.keep_files <= 0 or (chain is not None and (anchor_to is None or head is None)):
            return []
        _, anchor_key = self.keys(vault_secret)
        d = self._audit_dir()
        removed: list[str] = []
        with lock(self._locks.path / "audit.lock", timeout=self._lock_timeout, what="the audit log"):
            rotated = sorted(n for n in d.names() if rotated_seq(n) is not None)
            excess = rotated[: max(0, len(rotated) - self.keep_files)]
            if not excess:
                return []
            anchor = self._read_anchor(d, anchor_key) if head is None else head
            for name in excess:
                complete = list(complete_lines(d.read(name, max_size=1 << 31)))
                split = split_line(complete[-1][1]) if complete else None
                last = seq_of(split[0]) if split is not None else None
                if split is None or last is None:
                    break  # a damaged file stays for the reviewer
                anchor.base_seq, anchor.base_mac = last, split[1]
                # The new base first, then the file goes.
                if anchor_to is not None and chain is not None:
                    anchor_to(anchor)
                else:
                    self._write_anchor(d, anchor_key, anchor)
                d.unlink(name)
                removed.append(name)
        return removed

    # ------------------------------------------------------------------ reading

    def anchored(self, vault_secret: bytes) -> Anchor | None:
        """The head ``anchor.sst`` vouches for, authenticated; None when the log has no record
        and no anchor yet.  ``migrate`` records it in the key table (issue 20).

        :raises IntegrityError: the anchor failed its check, or it is missing while the log has
            records (``audit verify`` says which).
        """
        if self._dir is None and not self._root.exists(AUDIT_DIR):
            return None
        anchor = self._read_anchor(self._audit_dir(), self.keys(vault_secret)[1])
        if anchor.seq < 0:
            raise IntegrityError("the audit log's anchor is missing; run 'sessionseal audit verify'")
        return anchor if anchor.generation else None

    def files(self) -> list[str]:
        """The log files, oldest first."""
        if self._dir is None and not self._root.exists(AUDIT_DIR):
            return []
        d = self._audit_dir()
        names = sorted((n for n in d.names() if rotated_seq(n) is not None), key=lambda n: rotated_seq(n) or 0)
        if d.exists(CURRENT):
            names.append(CURRENT)
        return names

    def records(self) -> Iterator[Record]:
        """Every complete, parsable record, oldest first (no verification: see :meth:`verify`)."""
        d = self._audit_dir() if self._root.exists(AUDIT_DIR) else None
        if d is None:
            return
        for name in self.files():
            for _, line in complete_lines(d.read(name, max_size=1 << 31)):
                split = split_line(line)
                if split is None:
                    continue
                rec = parse_json(split[0])
                if isinstance(rec, dict):
                    yield rec
        with contextlib.suppress(FileNotFoundError):
            for line in d.read(PENDING, max_size=MAX_PENDING + MAX_LINE).splitlines():
                rec = parse_json(line)
                if isinstance(rec, dict):
                    yield {**rec, "unkeyed": True, "seq": None}

    def verify(
        self,
        vault_secret: bytes,
        *,
        repair: bool = False,
        chain: Chain | None = None,
        anchor_to: Callable[[Anchor], None] | None = None,
        sessions: bool = False,
    ) -> VerifyReport:
        """Check the whole chain against the anchor (with *chain*: against the vault's anchored
        state); with *repair*, seal a torn tail (and anchor it through *anchor_to*).

        :param sessions: the vault holds sessions: a log without records is then a wiped one.
        """
        return self._check(vault_secret, repair=repair, chain=chain, anchor_to=anchor_to, sessions=sessions).report

    def checked_records(
        self, vault_secret: bytes, *, chain: Chain | None = None, sessions: bool = False
    ) -> tuple[list[tuple[Record, str | None]], VerifyReport]:
        """Every record, oldest first, each with ``None`` when the chain vouches for it or the
        code of why it does not (docs/spec/audit-log.md, "Showing"), and the verify report.

        Records after the first bad one are read on but marked ``after-error``; pending records
        (no MAC yet) are marked ``pending``; when the anchor fails or names another history, no
        record is vouched for (``anchor``).
        """
        out: list[tuple[Record, str | None]] = []

        def visit(rec: Record, problem: str | None) -> None:
            out.append((rec, problem))

        report = self._check(vault_secret, visit=visit, chain=chain, sessions=sessions).report
        anchor_bad = any(p.code in ("anchor-invalid", "anchor-missing", "replaced") for p in report.problems)
        if anchor_bad:
            out = [(rec, problem or "anchor") for rec, problem in out]
        d = self._audit_dir() if self._root.exists(AUDIT_DIR) else None
        if d is not None:
            with contextlib.suppress(FileNotFoundError):
                for line in d.read(PENDING, max_size=MAX_PENDING + MAX_LINE).splitlines():
                    rec = parse_json(line)
                    if isinstance(rec, dict):
                        out.append(({**rec, "unkeyed": True, "seq": None}, "pending"))
        return out, report

    def record_at(
        self, vault_secret: bytes, seq: int, *, chain: Chain | None = None, sessions: bool = False
    ) -> tuple[VerifyReport, Anchor, str | None, bool]:
        """For a kept head's check (docs/keychain.md, "The vault's head"): the chain checked as
        :meth:`verify` checks it, the head it was checked against, the MAC of record *seq* when
        the chain vouches for it (the base's, for the record the log's retention removed last;
        None when no verified record *seq* is there), and whether a verified ``audit.adopted``
        record says a writer adopted record *seq* rather than anchored it."""
        adopted = False

        def visit(rec: Record, problem: str | None) -> None:
            nonlocal adopted
            detail = rec.get("detail")
            if problem is None and rec.get("action") == "audit.adopted" and isinstance(detail, dict):
                start, end = detail.get("from"), detail.get("to")
                if isinstance(start, int) and isinstance(end, int) and start <= seq <= end:
                    adopted = True

        check = self._check(vault_secret, visit=visit, chain=chain, sessions=sessions)
        anchor = check.anchor
        mac = check.macs.get(seq)
        if mac is None and seq == anchor.base_seq:
            mac = anchor.base_mac
        return check.report, anchor, mac, adopted

    def _check(
        self,
        vault_secret: bytes,
        *,
        repair: bool = False,
        visit: Callable[[Record, str | None], None] | None = None,
        chain: Chain | None = None,
        anchor_to: Callable[[Anchor], None] | None = None,
        sessions: bool = False,
    ) -> ChainCheck:
        # With *visit*, every parsed record is passed on, with None while the chain holds and a
        # reason once it does not; without it, verification stops at the first error.
        legacy_key, anchor_key = self.keys(vault_secret)
        report = VerifyReport()
        check = ChainCheck(legacy_key, chain, report, visit, sessions=sessions)
        if not self._root.exists(AUDIT_DIR):
            check.run(None, [], Anchor() if chain is None else _head(chain))
            return check
        d = self._audit_dir()
        if repair:
            chain = self._repair_torn_tail(
                d, legacy_key=legacy_key, anchor_key=anchor_key, report=report, chain=chain, anchor_to=anchor_to
            )
            check.chain = chain
        anchor = self._anchor_to_verify(d, anchor_key, report) if chain is None else _head(chain)
        names = self.files()
        report.files = names
        check.run(d, names, anchor)
        return check

    def _repair_torn_tail(
        self,
        d: Dir,
        *,
        legacy_key: bytes,
        anchor_key: bytes,
        report: VerifyReport,
        chain: Chain | None,
        anchor_to: Callable[[Anchor], None] | None,
    ) -> Chain | None:
        """Seal a torn last line; returns the chain as it is then (its new head anchored)."""
        if chain is not None and anchor_to is None:
            return chain  # nobody to anchor the sealing record: verify only
        k = chain.epoch if chain is not None else None
        mac_key = legacy_key if k is None or chain is None else chain.keys[k]
        with lock(self._locks.path / "audit.lock", timeout=self._lock_timeout, what="the audit log"):
            anchor = self._read_anchor(d, anchor_key) if chain is None else _head(chain)
            tail = _read_tail(d)
            tail_seq, tail_prev, _ = self._tail(legacy_key, chain, anchor, tail)
            seq2, prev2 = self._seal_torn_tail(d, (mac_key, k), tail_seq, tail_prev, tail)
            if seq2 == tail_seq:
                return chain
            for rec in _adoption(chain, anchor, tail_seq):
                # The sealing record anchors the records before it: say which it adopted.
                body = {**rec, "v": FORMAT_UNTRACKED, "seq": seq2 + 1, "prev": prev2, "time": utc_now()}
                if k is not None:
                    body["v"], body["k"] = FORMAT, k
                line, prev2 = record_line(mac_key, body)
                d.append(CURRENT, line)
                seq2 += 1
            anchor.seq, anchor.mac = seq2, prev2
            if chain is None or anchor_to is None:
                self._write_anchor(d, anchor_key, anchor)
            else:
                anchor_to(anchor)
                chain = dataclasses.replace(chain, head=anchor)
            report.repaired.append(f"sealed a torn last line of {AUDIT_DIR}/{CURRENT} with record {seq2}")
        return chain

    def _anchor_to_verify(self, d: Dir, anchor_key: bytes, report: VerifyReport) -> Anchor:
        """The anchor, or one that vouches for nothing (seq -1) with the problem reported."""
        try:
            anchor = self._read_anchor(d, anchor_key)
        except IntegrityError:
            report.problems.append(Problem(ANCHOR, 0, None, "anchor-invalid", "the anchor failed its integrity check"))
            anchor = Anchor(seq=-1)
        if anchor.seq == -1 and not report.problems:
            report.problems.append(
                Problem(ANCHOR, 0, None, "anchor-missing", "the anchor is missing but the log has records")
            )
        return anchor


def _adoption(chain: Chain | None, anchor: Anchor, seq: int) -> list[Record]:
    """The ``audit.adopted`` record that says a writer of a tracked vault continues from records
    its anchored head did not vouch for (a killed writer's, under the vault's key), or none.

    The kept head's check needs it (docs/keychain.md, "The vault's head"): a kept head names a
    record its own writer anchored, and the newer log put back over a restored copy is adopted,
    not anchored, by the copy's next writer: this record says which records that was.
    """
    start = max(anchor.seq, 0)
    if chain is None or seq <= start:
        return []
    return [{"action": "audit.adopted", "outcome": "ok", "detail": {"from": start + 1, "to": seq}, **actor()}]


def _head(chain: Chain) -> Anchor:
    """The anchored head of *chain*, as an anchor (a copy: the writer moves it on)."""
    return dataclasses.replace(chain.head) if chain.head is not None else Anchor()


def _read_tail(d: Dir) -> tuple[bytes, int]:
    """The end of the current file from the start of its last complete line (and a torn
    fragment after it), and the file's size (empty when there is none).

    Read in growing steps: a record naming many sessions (an export, a search) can be longer
    than one step, and the writer must find where the last one starts.
    """
    step = MAX_LINE
    try:
        while True:
            chunk, size = d.read_tail(CURRENT, step)
            if len(chunk) >= size or chunk.count(b"\n", 0, max(0, chunk.rfind(b"\n"))) >= 1:
                return chunk, size
            step *= 4
    except FileNotFoundError:
        return b"", 0
