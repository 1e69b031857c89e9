"""The audit log: one MAC-chained JSON line per vault operation (docs/spec/audit-log.md).

Layout, in ``<vault>/audit/`` (0700, files 0600):

* ``audit.log`` -- the current file; ``audit-<first seq, 12 digits>.log`` -- rotated files;
* ``anchor.sst`` -- a container of kind 5 holding the latest sequence number and MAC (and
  the base the chain starts from after audit retention), encrypted and authenticated under a
  key derived from the vault secret: cutting off the tail or putting back an older copy of
  the log no longer matches it;
* ``pending.log`` -- records of failures that happened before the vault key was available
  (wrong passphrase, locked keychain, unsafe permissions).  They carry no MAC; the next
  keyed append moves them into the chain, marked ``"unkeyed": true``.

A record is the canonical JSON of its fields (keys sorted, no spaces, ASCII only) with
``,"mac":"<hex>"`` spliced in before the closing brace; the MAC is HMAC-SHA256 under the
audit key over ``"sessionseal audit v1\\n" || canonical body``.  The body holds ``seq`` and
``prev`` (the previous record's MAC), so every record is bound to all records before it.

Appends happen under ``locks/audit.lock`` with ``O_APPEND`` and fsync; the anchor is then
replaced atomically.  A record appended by a process killed before it updated the anchor
is adopted by the next writer (its MAC proves we wrote it).  A torn last line (a writer
killed mid-write) is sealed by the next writer (or ``audit verify --repair``) with a
``audit.torn-tail`` record that names the fragment's offset and length.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import socket
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from . import _container, _crypto
from ._container import FrameType, Kind
from ._fs import Dir, _storage_error, lock
from .errors import IntegrityError, KeyStoreError, UnsafePermissions, UnsupportedVersion

__all__ = [
    "AUDIT_DIR",
    "CURRENT",
    "NOT_AN_ID",
    "NOT_IN_VAULT",
    "OUTCOMES",
    "WITHHELD",
    "AuditLog",
    "Problem",
    "Record",
    "Subject",
    "VerifyReport",
    "actor",
    "box_ad",
    "canonical",
    "error_outcome",
    "open_box",
    "record_line",
    "seal_box",
    "subject_keys",
    "subject_tag",
]

AUDIT_DIR: Final = "audit"
CURRENT: Final = "audit.log"
ANCHOR: Final = "anchor.sst"
PENDING: Final = "pending.log"
#: The format this build writes.  Format 1 records (ids, sizes and redaction counts in the
#: clear) are still read and verified; format 2 keeps them in subjects (below).
FORMAT: Final = 2
#: The MAC's domain is that of the chain, not of a record format: format 2 records chain on
#: from format 1 records under the same key.
_DOMAIN: Final = b"sessionseal audit v1\n"
_LABEL_MAC: Final = b"sessionseal v1 audit log"
_LABEL_ANCHOR: Final = b"sessionseal v1 audit anchor"
#: A subject's keys are derived from the session's own key (the key table's), so that they
#: leave with it: erasing a session erases what its audit records say about it.
_LABEL_TAG: Final = b"sessionseal v2 audit subject tag"
_LABEL_BOX: Final = b"sessionseal v2 audit subject box"
_TAG_INPUT: Final = b"sessionseal audit v2 subject\n"
_TAG_BYTES: Final = 16
#: What the ``session`` field may hold in format 2: never an id, only why there is none.
NOT_AN_ID: Final = "(not a session id)"
NOT_IN_VAULT: Final = "(not in the vault)"
WITHHELD: Final = "(withheld)"
_ANCHOR_ID: Final = uuid.UUID(int=5)
_ZERO: Final = "0" * 64
_MAC_SUFFIX_LEN: Final = len(',"mac":""}') + 64
#: Outcomes a record may have.
OUTCOMES: Final = ("ok", "denied", "error")
#: Rotate the current file when it reaches this size (config may lower or raise it).
DEFAULT_MAX_FILE_BYTES: Final = 8 << 20
_MAX_LINE: Final = 64 * 1024
_MAX_PENDING: Final = 1 << 20
#: Format 1's fields that measure a session; format 2 keeps them in subjects' boxes only.
_MEASURES: Final = ("bytes", "redactions", "subjects")


Record = dict[str, Any]


def canonical(fields: Mapping[str, Any]) -> bytes:
    """The canonical encoding of a record body: sorted keys, no whitespace, ASCII only."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def _mac(key: bytes, body: bytes) -> str:
    return _crypto.hmac_sha256(key, _DOMAIN + body).hex()


def record_line(key: bytes, fields: Mapping[str, Any]) -> tuple[bytes, str]:
    """The stored line of a record (with its trailing newline) and its MAC."""
    body = canonical(fields)
    mac = _mac(key, body)
    return body[:-1] + b',"mac":"' + mac.encode() + b'"}\n', mac


@dataclass(frozen=True)
class Subject:
    """A session a record is about, as the writer passes it (docs/spec/audit-log.md, "Subjects").

    :param role: what the session is to the action: ``session``, ``from``, ``link``,
        ``exported``, ``match``, ``imported``.
    :param key: the session's key from the key table (never stored).
    :param values: sealed in the subject's box with its id (sizes, counts, file names);
        None for a tag only (the record of an erasure: no key will ever open a box again).
    """

    role: str
    key: bytes = field(repr=False)
    values: Mapping[str, Any] | None = None


def subject_keys(session_key: bytes) -> tuple[bytes, bytes]:
    """The tag key and the box key of a session's audit subjects (HKDF-SHA256 of its key)."""
    return _crypto.derive_key(session_key, _LABEL_TAG), _crypto.derive_key(session_key, _LABEL_BOX)


def subject_tag(tag_key: bytes) -> str:
    """A session's pseudonym in the log: 32 hex digits of HMAC-SHA256 under its tag key."""
    return _crypto.hmac_sha256(tag_key, _TAG_INPUT)[:_TAG_BYTES].hex()


def box_ad(vault_id: uuid.UUID, seq: int, action: str, role: str, tag: str) -> bytes:
    """The associated data of a box: it opens only in its own record, place and role."""
    return canonical({"action": action, "role": role, "seq": seq, "tag": tag, "vault": str(vault_id)})


def seal_box(box_key: bytes, values: Mapping[str, Any], ad: bytes, *, nonce: bytes | None = None) -> str:
    """``base64url(nonce || AES-256-GCM(box key, canonical(values), ad))``, unpadded.

    *nonce* exists for the spec's vectors only; records always draw a random one.
    """
    n, ct = _crypto.encrypt(box_key, canonical(values), ad, nonce=nonce)
    return base64.urlsafe_b64encode(n + ct).rstrip(b"=").decode("ascii")


def open_box(box_key: bytes, box: str, ad: bytes) -> Record:
    """The values of a box.

    :raises IntegrityError: the box does not open under this key and place (edited, moved
        to another record, or not this session's).
    """
    try:
        raw = base64.urlsafe_b64decode(box + "=" * (-len(box) % 4))
    except (ValueError, TypeError):
        raise IntegrityError("an audit record's box is not valid") from None
    plain = _crypto.decrypt(box_key, raw[: _crypto.NONCE_SIZE], raw[_crypto.NONCE_SIZE :], ad)
    values = _loads(plain)
    if not isinstance(values, dict):
        raise IntegrityError("an audit record's box is not valid")
    return values


def _subject_entry(vault_id: uuid.UUID, seq: int, action: str, subject: Subject) -> Record:
    tag_key, box_key = subject_keys(subject.key)
    tag = subject_tag(tag_key)
    entry: Record = {"role": subject.role, "tag": tag}
    if subject.values is not None:
        entry["box"] = seal_box(box_key, subject.values, box_ad(vault_id, seq, action, subject.role, tag))
    return entry


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: what canonical() could never encode
        raise ValueError(text)
    return value


def _loads(body: bytes) -> Any:
    """A JSON value, or None when *body* is not JSON that a record can hold: not JSON, nested
    too deep for the parser, or holding NaN or an infinity (which :func:`canonical` refuses,
    so no record was ever written with one)."""
    try:
        return json.loads(body, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError):
        return None


def _seq(body: bytes) -> int | None:
    """The ``seq`` of a record's body, or None."""
    rec = _loads(body)
    seq = rec.get("seq") if isinstance(rec, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def _canonical_or_none(rec: Record) -> bytes | None:
    # A record parsed from the log may hold what canonical() refuses (NaN, a lone surrogate).
    try:
        return canonical(rec)
    except (ValueError, RecursionError):
        return None


def _split_line(line: bytes) -> tuple[bytes, str] | None:
    """Body bytes and MAC of a stored line (without its newline); None if malformed."""
    if len(line) < _MAC_SUFFIX_LEN + 2 or not line.endswith(b'"}'):
        return None
    suffix = line[-_MAC_SUFFIX_LEN:]
    if not suffix.startswith(b',"mac":"'):
        return None
    mac = suffix[8:-2].decode("ascii", "replace")
    if len(mac) != 64 or any(c not in "0123456789abcdef" for c in mac):
        return None
    return line[:-_MAC_SUFFIX_LEN] + b"}", mac


def actor() -> dict[str, Any]:
    """Who is acting: OS user name and uid, pid, host, program (never arguments)."""
    from . import __version__

    uid = os.getuid()
    try:
        import pwd

        user = pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        user = str(uid)
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    if program in ("-c", "-m", "__main__.py"):
        program = "python"
    return {
        "user": user[:64],
        "uid": uid,
        "pid": os.getpid(),
        "host": socket.gethostname()[:255],
        "program": program[:64],
        "version": __version__,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class Problem:
    """One thing wrong with the chain, as ``audit verify`` reports it."""

    file: str
    line: int
    seq: int | None
    code: str  # stable, for scripts: see docs/spec/audit-log.md, "Verifying"
    what: str
    severity: str = "error"  # "error": tampering or damage; "warning": repairable crash artefact

    def describe(self) -> str:
        rec = f"record {self.seq}" if self.seq is not None else "a record"
        return f"{AUDIT_DIR}/{self.file} line {self.line}: {rec}: {self.what}"


@dataclass
class VerifyReport:
    """The result of :meth:`AuditLog.verify`."""

    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    files: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "files": self.files,
            "problems": [vars(p) | {"message": p.describe()} for p in self.problems],
            "repaired": self.repaired,
        }


@dataclass
class _Anchor:
    seq: int = 0
    mac: str = _ZERO
    base_seq: int = 0  # records up to base_seq were removed by audit retention
    base_mac: str = _ZERO
    generation: int = 0


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
        return _crypto.derive_key(vault_secret, _LABEL_MAC), _crypto.derive_key(vault_secret, _LABEL_ANCHOR)

    # ------------------------------------------------------------------ writing

    def append(self, vault_secret: bytes, fields: Mapping[str, Any]) -> int:
        """Append one record (``seq``, ``prev``, ``time`` and ``v`` are filled in); return its seq."""
        return self.append_many(vault_secret, [fields])

    def append_many(self, vault_secret: bytes, many: Sequence[Mapping[str, Any]]) -> int:
        """Append several records with one lock, one fsync and one anchor update (a cleanup
        batch's erasures); return the last seq."""
        mac_key, anchor_key = self.keys(vault_secret)
        d = self._audit_dir()
        with lock(self._locks.path / "audit.lock", timeout=self._lock_timeout, what="the audit log"):
            anchor = self._read_anchor(d, anchor_key)
            tail = _read_tail(d)
            seq, prev = self._tail(mac_key, anchor, tail)
            seq, prev = self._seal_torn_tail(d, mac_key, seq, prev, tail)
            pending = [{**p, "unkeyed": True} for p in self._take_pending(d)]
            rotated = self._rotate_if_needed(d, seq)
            out = bytearray()
            lines = []
            for rec in [*pending, *many]:
                seq += 1
                body = {**rec, "v": FORMAT, "seq": seq, "prev": prev}
                subjects = body.pop("subjects", None)
                if subjects:
                    # Sealed here, where the seq is known: each box is bound to its place.
                    body["subjects"] = [_subject_entry(self._vault_id, seq, str(rec["action"]), s) for s in subjects]
                body.setdefault("time", _now())
                line, prev = record_line(mac_key, body)
                out += line
                lines.append(line)
            self._append(d, CURRENT, bytes(out))
            anchor.seq, anchor.mac = seq, prev
            self._write_anchor(d, anchor_key, anchor)
            if pending:
                d.unlink(PENDING)
        # Forwarded once written; folded pending records were forwarded when they happened.
        for line in lines[len(pending) :]:
            self._forward(line)
        if rotated and self.keep_files > 0:
            self.apply_retention(vault_secret)  # the audit log's own retention, never session cleanup's
        return seq

    def append_unkeyed(self, fields: Mapping[str, Any]) -> None:
        """Record a failure that happened before the vault key was available (no MAC yet)."""
        d = self._audit_dir()
        line = canonical({**fields, "time": _now()}) + b"\n"
        with lock(self._locks.path / "audit.lock", timeout=self._lock_timeout, what="the audit log"):
            try:
                size = os.stat(PENDING, dir_fd=d.fd, follow_symlinks=False).st_size
            except FileNotFoundError:
                size = 0
            if size > _MAX_PENDING:
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

    def _read_anchor(self, d: Dir, key: bytes) -> _Anchor:
        try:
            raw = d.read(ANCHOR, max_size=4096)
        except FileNotFoundError:
            if d.exists(CURRENT) and self._has_records(d):
                # A log without its anchor was tampered with: keep writing, verify will say so.
                return _Anchor(seq=-1)
            return _Anchor()
        header = _container.parse_unverified_header(raw)
        if header.kind != Kind.AUDIT_ANCHOR or header.vault_id != self._vault_id or header.object_id != _ANCHOR_ID:
            raise IntegrityError("the audit log's anchor failed its integrity check; run 'sessionseal audit verify'")
        _, frames = _container.open_frames(raw, header, key)
        if [f.type for f in frames] != [FrameType.BODY]:  # the kind's frame sequence (container-v1.md, step 8)
            raise IntegrityError("the audit log's anchor failed its integrity check; run 'sessionseal audit verify'")
        try:
            doc = _loads(_container.decode_payload(frames[0].data))
            return _Anchor(
                seq=int(doc["seq"]),
                mac=str(doc["mac"]),
                base_seq=int(doc["base_seq"]),
                base_mac=str(doc["base_mac"]),
                generation=header.generation,
            )
        except (ValueError, KeyError, TypeError, IndexError, OverflowError):
            raise IntegrityError("the audit log's anchor does not parse; run 'sessionseal audit verify'") from None

    def _write_anchor(self, d: Dir, key: bytes, anchor: _Anchor) -> None:
        body = json.dumps(
            {"seq": anchor.seq, "mac": anchor.mac, "base_seq": anchor.base_seq, "base_mac": anchor.base_mac}
        ).encode()
        anchor.generation += 1
        data = _container.seal(
            kind=Kind.AUDIT_ANCHOR,
            vault_id=self._vault_id,
            object_id=_ANCHOR_ID,
            generation=anchor.generation,
            kek=key,
            kek_epoch=0,
            frames=[(FrameType.BODY, _container.encode_payload(body, compress=False))],
        )
        d.write_atomic(ANCHOR, data)

    def _has_records(self, d: Dir) -> bool:
        return any(n == CURRENT or _rotated_seq(n) is not None for n in d.names())

    def _tail(self, key: bytes, anchor: _Anchor, tail: tuple[bytes, int]) -> tuple[int, str]:
        """Where the next record continues the chain: the anchor, or a newer record of ours."""
        seq, prev = max(anchor.seq, 0), anchor.mac if anchor.seq > 0 else anchor.base_mac
        chunk = tail[0]
        end = chunk.rfind(b"\n")
        if end < 0:
            return seq, prev
        split = _split_line(chunk[chunk.rfind(b"\n", 0, end) + 1 : end])
        if split is not None and _crypto.constant_time_equal(_mac(key, split[0]).encode(), split[1].encode()):
            last = _seq(split[0])
            if last is not None and last > seq:
                # Appended by a writer killed before it moved the anchor: its MAC proves it is ours.
                return last, split[1]
        return seq, prev

    def _seal_torn_tail(self, d: Dir, key: bytes, seq: int, prev: str, tail: tuple[bytes, int]) -> tuple[int, str]:
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
        body = {**fields, "v": FORMAT, "seq": seq + 1, "prev": prev, "time": _now()}
        line, mac = record_line(key, body)
        d.append(CURRENT, b"\n" + line)
        return seq + 1, mac

    def _take_pending(self, d: Dir) -> list[Record]:
        try:
            raw = d.read(PENDING, max_size=_MAX_PENDING + _MAX_LINE)
        except FileNotFoundError:
            return []
        out = []
        for line in raw.splitlines():
            rec = _loads(line)
            if isinstance(rec, dict):
                rec = {k: v for k, v in rec.items() if k not in ("v", "seq", "prev", "mac", "unkeyed", *_MEASURES)}
                if "session" in rec and rec["session"] not in (NOT_AN_ID, NOT_IN_VAULT, WITHHELD):
                    rec["session"] = WITHHELD  # written by an older sessionseal: an id in the clear
                out.append(rec)
        if not out:
            d.unlink(PENDING)
        return out

    def _rotate_if_needed(self, d: Dir, last_seq: int) -> bool:
        try:
            head, size = d.read_prefix(CURRENT, _MAX_LINE)
        except FileNotFoundError:
            return False
        split = _split_line(head.split(b"\n", 1)[0])
        rec = _loads(split[0]) if split is not None else None
        older = isinstance(rec, dict) and isinstance(rec.get("v"), int) and rec["v"] < FORMAT
        # Records of an older format (ids in the clear) are kept whole, in a file of their
        # own: the audit log's retention can then remove them with the anchor's base moved on.
        if size < self.max_file_bytes and not older:
            return False
        # Named by the first record's seq, so names sort in chain order; a damaged first line
        # falls back to the last seq, which still sorts after every earlier file.
        first = _seq(split[0]) if split is not None else None
        name = f"audit-{last_seq if first is None or first < 0 else first:012d}.log"
        if d.exists(name):
            return False  # never replace a rotated file: keep appending to the current one
        try:
            os.rename(CURRENT, name, src_dir_fd=d.fd, dst_dir_fd=d.fd)
        except OSError as exc:
            raise _storage_error(exc, "rotate the audit log", str(d.path / CURRENT)) from exc
        d.fsync()
        return True

    def apply_retention(self, vault_secret: bytes) -> list[str]:
        """Remove the oldest rotated files beyond ``keep_files``; the anchor keeps the chain's new base."""
        if self.keep_files <= 0:
            return []
        _, anchor_key = self.keys(vault_secret)
        d = self._audit_dir()
        removed: list[str] = []
        with lock(self._locks.path / "audit.lock", timeout=self._lock_timeout, what="the audit log"):
            rotated = sorted(n for n in d.names() if _rotated_seq(n) is not None)
            excess = rotated[: max(0, len(rotated) - self.keep_files)]
            if not excess:
                return []
            anchor = self._read_anchor(d, anchor_key)
            for name in excess:
                complete = list(_lines(d.read(name, max_size=1 << 31)))
                split = _split_line(complete[-1][1]) if complete else None
                last = _seq(split[0]) if split is not None else None
                if split is None or last is None:
                    break  # a damaged file stays for the reviewer
                anchor.base_seq, anchor.base_mac = last, split[1]
                self._write_anchor(d, anchor_key, anchor)  # the new base first, then the file goes
                d.unlink(name)
                removed.append(name)
        return removed

    # ------------------------------------------------------------------ reading

    def files(self) -> list[str]:
        """The log files, oldest first."""
        if self._dir is None and not self._root.exists(AUDIT_DIR):
            return []
        d = self._audit_dir()
        names = sorted((n for n in d.names() if _rotated_seq(n) is not None), key=lambda n: _rotated_seq(n) or 0)
        if d.exists(CURRENT):
            names.append(CURRENT)
        return names

    def records(self) -> Iterator[Record]:
        """Every complete, parsable record, oldest first (no verification: see :meth:`verify`)."""
        d = self._audit_dir() if self._root.exists(AUDIT_DIR) else None
        if d is None:
            return
        for name in self.files():
            for _, line in _lines(d.read(name, max_size=1 << 31)):
                split = _split_line(line)
                if split is None:
                    continue
                rec = _loads(split[0])
                if isinstance(rec, dict):
                    yield rec
        with contextlib.suppress(FileNotFoundError):
            for line in d.read(PENDING, max_size=_MAX_PENDING + _MAX_LINE).splitlines():
                rec = _loads(line)
                if isinstance(rec, dict):
                    yield {**rec, "unkeyed": True, "seq": None}

    def verify(self, vault_secret: bytes, *, repair: bool = False) -> VerifyReport:
        """Check the whole chain against the anchor; with *repair*, seal a torn tail."""
        return self._verify(vault_secret, repair=repair)

    def checked_records(self, vault_secret: bytes) -> tuple[list[tuple[Record, str | None]], VerifyReport]:
        """Every record, oldest first, each with ``None`` when the chain vouches for it or the
        code of why it does not (docs/spec/audit-log.md, "Showing"), and the verify report.

        Records after the first bad one are read on but marked ``after-error``; pending records
        (no MAC yet) are marked ``pending``; when the anchor fails or names another history, no
        record is vouched for (``anchor``).
        """
        out: list[tuple[Record, str | None]] = []

        def visit(rec: Record, problem: str | None) -> None:
            out.append((rec, problem))

        report = self._verify(vault_secret, visit=visit)
        anchor_bad = any(p.code in ("anchor-invalid", "anchor-missing", "replaced") for p in report.problems)
        if anchor_bad:
            out = [(rec, problem or "anchor") for rec, problem in out]
        d = self._audit_dir() if self._root.exists(AUDIT_DIR) else None
        if d is not None:
            with contextlib.suppress(FileNotFoundError):
                for line in d.read(PENDING, max_size=_MAX_PENDING + _MAX_LINE).splitlines():
                    rec = _loads(line)
                    if isinstance(rec, dict):
                        out.append(({**rec, "unkeyed": True, "seq": None}, "pending"))
        return out, report

    def _verify(  # noqa: PLR0912, PLR0915
        self, vault_secret: bytes, *, repair: bool = False, visit: Callable[[Record, str | None], None] | None = None
    ) -> VerifyReport:
        # With *visit*, every parsed record is passed on, with None while the chain holds and a
        # reason once it does not; without it, verification stops at the first error.
        mac_key, anchor_key = self.keys(vault_secret)
        report = VerifyReport()
        if not self._root.exists(AUDIT_DIR):
            return report
        d = self._audit_dir()
        if repair:
            with lock(self._locks.path / "audit.lock", timeout=self._lock_timeout, what="the audit log"):
                anchor = self._read_anchor(d, anchor_key)
                tail = _read_tail(d)
                tail_seq, tail_prev = self._tail(mac_key, anchor, tail)
                seq2, prev2 = self._seal_torn_tail(d, mac_key, tail_seq, tail_prev, tail)
                if seq2 != tail_seq:
                    anchor.seq, anchor.mac = seq2, prev2
                    self._write_anchor(d, anchor_key, anchor)
                    report.repaired.append(f"sealed a torn last line of {AUDIT_DIR}/{CURRENT} with record {seq2}")
        try:
            anchor = self._read_anchor(d, anchor_key)
        except IntegrityError:
            report.problems.append(Problem(ANCHOR, 0, None, "anchor-invalid", "the anchor failed its integrity check"))
            anchor = _Anchor(seq=-1)
        if anchor.seq == -1 and not report.problems:
            report.problems.append(
                Problem(ANCHOR, 0, None, "anchor-missing", "the anchor is missing but the log has records")
            )
        expected, prev = anchor.base_seq + 1, anchor.base_mac
        macs: dict[int, str] = {}
        names = self.files()
        report.files = names
        torn: dict[str, Any] | None = None
        broken = False  # an error was found: what follows is read (for visit) but not vouched for

        def fail(problem: Problem, rec: Record | None) -> None:
            nonlocal broken
            report.problems.append(problem)
            broken = True
            if visit is not None and rec is not None:
                visit(rec, problem.code)

        for fi, name in enumerate(names):
            data = d.read(name, max_size=1 << 31)
            for lineno, (offset, line) in enumerate(_line_spans(data), 1):
                complete = offset + len(line) < len(data)
                split = _split_line(line) if complete else None
                rec: Record | None = None
                if split is not None:
                    parsed = _loads(split[0])
                    rec = parsed if isinstance(parsed, dict) else None
                if broken:
                    if visit is None:
                        return report
                    if rec is not None:
                        visit(rec, "after-error")
                    continue
                if rec is None or split is None:
                    last_file = fi == len(names) - 1
                    if not complete and last_file:
                        report.problems.append(
                            Problem(
                                name,
                                lineno,
                                None,
                                "torn-tail",
                                "the last line is incomplete (a writer was killed mid-write); "
                                "run 'sessionseal audit verify --repair' to seal it",
                                "warning",
                            )
                        )
                        continue
                    torn = {"file": name, "offset": offset, "length": len(line), "line": lineno}
                    continue
                seq = rec.get("seq")
                if torn is not None:
                    detail = rec.get("detail")
                    detail = detail if isinstance(detail, dict) else {}
                    if not (
                        rec.get("action") == "audit.torn-tail"
                        # Named as it was when sealed: the current file, rotated since.
                        and detail.get("file") in (torn["file"], CURRENT)
                        and detail.get("offset") == torn["offset"]
                        and detail.get("length") == torn["length"]
                    ):
                        fail(Problem(name, torn["line"], None, "bad-line", "a line is not a valid record"), rec)
                        continue
                    torn = None
                if not _crypto.constant_time_equal(_mac(mac_key, split[0]).encode(), split[1].encode()):
                    fail(Problem(name, lineno, seq, "bad-mac", "its MAC does not match (edited or forged)"), rec)
                    continue
                if isinstance(rec.get("v"), int) and rec["v"] > FORMAT:
                    # Authentic, but written by a newer sessionseal: its fields may mean other things.
                    raise UnsupportedVersion(
                        f"the audit log has records of format {rec['v']}, this sessionseal reads {FORMAT}; "
                        "upgrade sessionseal"
                    )
                if _canonical_or_none(rec) != split[0]:
                    fail(Problem(name, lineno, seq, "not-canonical", "it is not in canonical form"), rec)
                    continue
                if seq != expected:
                    what = (
                        f"expected record {expected} here: records are missing or out of order"
                        if isinstance(seq, int)
                        else "it has no sequence number"
                    )
                    fail(Problem(name, lineno, seq, "out-of-sequence", what), rec)
                    continue
                if rec.get("prev") != prev:
                    fail(Problem(name, lineno, seq, "broken-chain", "it does not follow the record before it"), rec)
                    continue
                macs[seq] = split[1]
                prev = split[1]
                report.first_seq = report.first_seq or seq
                report.last_seq = seq
                report.records += 1
                expected += 1
                if visit is not None:
                    visit(rec, None)
        if broken:
            return report
        if torn is not None:
            report.problems.append(
                Problem(torn["file"], torn["line"], None, "bad-line", "a line is not a valid record")
            )
            return report
        if anchor.seq > 0:
            last: int = report.last_seq or anchor.base_seq
            if last < anchor.seq:
                report.problems.append(
                    Problem(
                        names[-1] if names else CURRENT,
                        0,
                        anchor.seq,
                        "truncated",
                        f"the log ends at record {last} but the anchor names record {anchor.seq}: "
                        "the tail was cut off or the log was replaced with an older copy",
                    )
                )
            elif macs.get(anchor.seq, anchor.mac if anchor.seq == anchor.base_seq else "") != anchor.mac:
                report.problems.append(
                    Problem(CURRENT, 0, anchor.seq, "replaced", "it differs from the anchor's (the log was replaced)")
                )
        return report


def _read_tail(d: Dir) -> tuple[bytes, int]:
    """The end of the current file from the start of its last complete line (and a torn
    fragment after it), and the file's size (empty when there is none).

    Read in growing steps: a record naming many sessions (an export, a search) can be longer
    than one step, and the writer must find where the last one starts.
    """
    step = _MAX_LINE
    try:
        while True:
            chunk, size = d.read_tail(CURRENT, step)
            if len(chunk) >= size or chunk.count(b"\n", 0, max(0, chunk.rfind(b"\n"))) >= 1:
                return chunk, size
            step *= 4
    except FileNotFoundError:
        return b"", 0


def _rotated_seq(name: str) -> int | None:
    digits = name[6:-4]
    if name.startswith("audit-") and name.endswith(".log") and digits.isascii() and digits.isdigit():
        return int(digits)  # ASCII only: "²".isdigit(), but int("²") fails
    return None


def _line_spans(data: bytes) -> Iterable[tuple[int, bytes]]:
    pos = 0
    n = len(data)
    while pos < n:
        nl = data.find(b"\n", pos)
        end = n if nl < 0 else nl
        yield pos, data[pos:end]
        pos = end + 1


def _lines(data: bytes) -> Iterable[tuple[int, bytes]]:
    for offset, line in _line_spans(data):
        if offset + len(line) < len(data):
            yield offset, line


def error_outcome(exc: BaseException) -> str:
    """``denied`` for refusals (permissions, keys), ``error`` for everything else."""
    return "denied" if isinstance(exc, UnsafePermissions | KeyStoreError) else "error"
