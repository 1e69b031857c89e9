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

import contextlib
import json
import os
import socket
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
    "OUTCOMES",
    "AuditLog",
    "Problem",
    "Record",
    "VerifyReport",
    "actor",
    "canonical",
    "error_outcome",
    "record_line",
]

AUDIT_DIR: Final = "audit"
CURRENT: Final = "audit.log"
ANCHOR: Final = "anchor.sst"
PENDING: Final = "pending.log"
FORMAT: Final = 1
_DOMAIN: Final = b"sessionseal audit v1\n"
_LABEL_MAC: Final = b"sessionseal v1 audit log"
_LABEL_ANCHOR: Final = b"sessionseal v1 audit anchor"
_ANCHOR_ID: Final = uuid.UUID(int=5)
_ZERO: Final = "0" * 64
_MAC_SUFFIX_LEN: Final = len(',"mac":""}') + 64
#: Outcomes a record may have.
OUTCOMES: Final = ("ok", "denied", "error")
#: Rotate the current file when it reaches this size (config may lower or raise it).
DEFAULT_MAX_FILE_BYTES: Final = 8 << 20
_MAX_LINE: Final = 64 * 1024
_MAX_PENDING: Final = 1 << 20


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


def _loads(body: bytes) -> Any:
    """A JSON value, or None when *body* is not JSON (or nested too deep for the parser)."""
    try:
        return json.loads(body)
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
                out.append({k: v for k, v in rec.items() if k not in ("v", "seq", "prev", "mac", "unkeyed")})
        if not out:
            d.unlink(PENDING)
        return out

    def _rotate_if_needed(self, d: Dir, last_seq: int) -> bool:
        try:
            head, size = d.read_prefix(CURRENT, _MAX_LINE)
        except FileNotFoundError:
            return False
        if size < self.max_file_bytes:
            return False
        # Named by the first record's seq, so names sort in chain order; a damaged first line
        # falls back to the last seq, which still sorts after every earlier file.
        split = _split_line(head.split(b"\n", 1)[0])
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

    def verify(self, vault_secret: bytes, *, repair: bool = False) -> VerifyReport:  # noqa: PLR0911, PLR0912, PLR0915
        """Check the whole chain against the anchor; with *repair*, seal a torn tail."""
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
        for fi, name in enumerate(names):
            data = d.read(name, max_size=1 << 31)
            for lineno, (offset, line) in enumerate(_line_spans(data), 1):
                complete = offset + len(line) < len(data)
                split = _split_line(line) if complete else None
                rec: Record | None = None
                if split is not None:
                    parsed = _loads(split[0])
                    rec = parsed if isinstance(parsed, dict) else None
                if rec is None:
                    last_file = fi == len(names) - 1
                    if not complete and last_file:
                        report.problems.append(
                            Problem(
                                name, lineno, None, "torn-tail",
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
                        report.problems.append(
                            Problem(name, torn["line"], None, "bad-line", "a line is not a valid record")
                        )
                        return report
                    torn = None
                if not _crypto.constant_time_equal(_mac(mac_key, split[0]).encode(), split[1].encode()):  # type: ignore[index]
                    report.problems.append(
                        Problem(name, lineno, seq, "bad-mac", "its MAC does not match (edited or forged)")
                    )
                    return report
                if isinstance(rec.get("v"), int) and rec["v"] > FORMAT:
                    # Authentic, but written by a newer sessionseal: its fields may mean other things.
                    raise UnsupportedVersion(
                        f"the audit log has records of format {rec['v']}, this sessionseal reads {FORMAT}; "
                        "upgrade sessionseal"
                    )
                if _canonical_or_none(rec) != split[0]:  # type: ignore[index]
                    report.problems.append(Problem(name, lineno, seq, "not-canonical", "it is not in canonical form"))
                    return report
                if seq != expected:
                    what = (
                        f"expected record {expected} here: records are missing or out of order"
                        if isinstance(seq, int)
                        else "it has no sequence number"
                    )
                    report.problems.append(Problem(name, lineno, seq, "out-of-sequence", what))
                    return report
                if rec.get("prev") != prev:
                    report.problems.append(
                        Problem(name, lineno, seq, "broken-chain", "it does not follow the record before it")
                    )
                    return report
                macs[seq] = split[1]  # type: ignore[index]
                prev = split[1]  # type: ignore[index]
                report.first_seq = report.first_seq or seq
                report.last_seq = seq
                report.records += 1
                expected += 1
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
    """The last line's worth of the current file, and its size (empty when there is none)."""
    try:
        return d.read_tail(CURRENT, _MAX_LINE)
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

