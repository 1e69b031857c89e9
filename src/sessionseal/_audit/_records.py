"""The audit log's records: their format, canonical encoding and MAC, subjects and their
boxes, and the report types of verification (docs/spec/audit-log.md)."""

from __future__ import annotations

import base64
import json
import math
import os
import socket
import sys
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from .. import _crypto
from ..errors import IntegrityError, KeyStoreError, UnsafePermissions

AUDIT_DIR: Final = "audit"
CURRENT: Final = "audit.log"
ANCHOR: Final = "anchor.sst"
PENDING: Final = "pending.log"
#: The newest format this build writes: format 3 records name the epoch of their MAC key
#: (``k``, an audit key of the vault's anchored state, issue 20).  Format 2 records (MACed
#: under the vault secret's key) are still written by a vault whose state is not tracked yet;
#: format 1 records (ids, sizes and redaction counts in the clear) are still read and verified;
#: formats 2 and 3 keep them in subjects (below).
FORMAT: Final = 3
#: The format of records without ``k`` (a vault whose state is not tracked).
FORMAT_UNTRACKED: Final = 2
#: The MAC's domain is that of the chain, not of a record format: format 2 records chain on
#: from format 1 records under the same key.
_DOMAIN: Final = b"sessionseal audit v1\n"
LABEL_MAC: Final = b"sessionseal v1 audit log"
LABEL_ANCHOR: Final = b"sessionseal v1 audit anchor"
#: A subject's keys are derived from the session's own key (the key table's), so that they
#: leave with it: erasing a session erases what its audit records say about it.
LABEL_TAG: Final = b"sessionseal v2 audit subject tag"
LABEL_BOX: Final = b"sessionseal v2 audit subject box"
TAG_INPUT: Final = b"sessionseal audit v2 subject\n"
_TAG_BYTES: Final = 16
#: What the ``session`` field may hold in format 2: never an id, only why there is none.
NOT_AN_ID: Final = "(not a session id)"
NOT_IN_VAULT: Final = "(not in the vault)"
WITHHELD: Final = "(withheld)"
ANCHOR_ID: Final = uuid.UUID(int=5)
_ZERO: Final = "0" * 64
ZERO_MAC: Final = _ZERO
_MAC_SUFFIX_LEN: Final = len(',"mac":""}') + 64
#: Outcomes a record may have.
OUTCOMES: Final = ("ok", "denied", "error")
#: Rotate the current file when it reaches this size (config may lower or raise it).
DEFAULT_MAX_FILE_BYTES: Final = 8 << 20
MAX_LINE: Final = 64 * 1024
MAX_PENDING: Final = 1 << 20
#: Format 1's fields that measure a session; format 2 keeps them in subjects' boxes only.
MEASURES: Final = ("bytes", "redactions", "subjects")


Record = dict[str, Any]


def canonical(fields: Mapping[str, Any]) -> bytes:
    """The canonical encoding of a record body: sorted keys, no whitespace, ASCII only."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def record_mac(key: bytes, body: bytes) -> str:
    return _crypto.hmac_sha256(key, _DOMAIN + body).hex()


def record_line(key: bytes, fields: Mapping[str, Any]) -> tuple[bytes, str]:
    """The stored line of a record (with its trailing newline) and its MAC."""
    body = canonical(fields)
    mac = record_mac(key, body)
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
    return _crypto.derive_key(session_key, LABEL_TAG), _crypto.derive_key(session_key, LABEL_BOX)


def subject_tag(tag_key: bytes) -> str:
    """A session's pseudonym in the log: 32 hex digits of HMAC-SHA256 under its tag key."""
    return _crypto.hmac_sha256(tag_key, TAG_INPUT)[:_TAG_BYTES].hex()


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
    values = parse_json(plain)
    if not isinstance(values, dict):
        raise IntegrityError("an audit record's box is not valid")
    return values


def subject_entry(vault_id: uuid.UUID, seq: int, action: str, subject: Subject) -> Record:
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


def parse_json(body: bytes) -> Any:
    """A JSON value, or None when *body* is not JSON that a record can hold: not JSON, nested
    too deep for the parser, or holding NaN or an infinity (which :func:`canonical` refuses,
    so no record was ever written with one)."""
    try:
        return json.loads(body, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError):
        return None


def seq_of(body: bytes) -> int | None:
    """The ``seq`` of a record's body, or None."""
    rec = parse_json(body)
    seq = rec.get("seq") if isinstance(rec, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def canonical_or_none(rec: Record) -> bytes | None:
    # A record parsed from the log may hold what canonical() refuses (NaN, a lone surrogate).
    try:
        return canonical(rec)
    except (ValueError, RecursionError):
        return None


def split_line(line: bytes) -> tuple[bytes, str] | None:
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
    from .. import __version__

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


def utc_now() -> str:
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
class Anchor:
    seq: int = 0
    mac: str = _ZERO
    base_seq: int = 0  # records up to base_seq were removed by audit retention
    base_mac: str = _ZERO
    generation: int = 0


@dataclass(frozen=True)
class Chain:
    """How the chain of a vault whose state is anchored (issue 20) is keyed and anchored: in the
    key table's state, not in ``anchor.sst``.

    :param keys: the audit keys by master-key epoch (``state.audit_keys``); a record names the
        epoch of its key in ``k``.  Records without ``k`` are MACed under the vault secret's key.
    :param head: the anchored head, or None while no record was anchored.
    :param created: when the vault was made (``vault.json``), RFC 3339, if known.
    :param sessions: whether the vault holds sessions (a vault with sessions has a history).
    """

    keys: Mapping[int, bytes] = field(default_factory=dict, repr=False)
    head: Anchor | None = None
    created: str | None = None
    sessions: bool = False

    @property
    def epoch(self) -> int | None:
        """The epoch new records are MACed under (the newest), or None: the vault secret's key."""
        return max(self.keys) if self.keys else None


def key_epoch(rec: Mapping[str, Any]) -> int | bool | None:
    """The ``k`` of a record: an epoch, None when it has none, False when it is not an epoch."""
    k = rec.get("k")
    if k is None and "k" not in rec:
        return None
    return k if isinstance(k, int) and not isinstance(k, bool) and k > 0 else False


def mac_key_of(legacy: bytes, chain: Chain | None, rec: Mapping[str, Any]) -> bytes | None:
    """The MAC key a record names (its ``k``), or None when the vault holds no such key."""
    k = key_epoch(rec)
    if k is None:
        return legacy
    if k is False or chain is None:
        return None
    return chain.keys.get(k)


def parse_time(text: Any) -> datetime | None:
    """A record's ``time`` (or ``vault.json``'s ``created_at``), or None when it is not one."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def rotated_seq(name: str) -> int | None:
    digits = name[6:-4]
    if name.startswith("audit-") and name.endswith(".log") and digits.isascii() and digits.isdigit():
        return int(digits)  # ASCII only: "²".isdigit(), but int("²") fails
    return None


def line_spans(data: bytes) -> Iterable[tuple[int, bytes]]:
    pos = 0
    n = len(data)
    while pos < n:
        nl = data.find(b"\n", pos)
        end = n if nl < 0 else nl
        yield pos, data[pos:end]
        pos = end + 1


def complete_lines(data: bytes) -> Iterable[tuple[int, bytes]]:
    for offset, line in line_spans(data):
        if offset + len(line) < len(data):
            yield offset, line


def error_outcome(exc: BaseException) -> str:
    """``denied`` for refusals (permissions, keys), ``error`` for everything else."""
    return "denied" if isinstance(exc, UnsafePermissions | KeyStoreError) else "error"


#: The fields of a pending record, all required: a refused ``open`` (docs/spec/audit-log.md,
#: "Pending records").  Anything else in ``pending.log`` is dropped, and counted, when chained.
PENDING_FIELDS: Final = frozenset(
    {"action", "outcome", "error", "time", "user", "uid", "pid", "host", "program", "version"}
)


def _error_classes() -> frozenset[str]:
    from .. import errors

    out: set[str] = set()
    todo: list[type] = [errors.SessionSealError]
    while todo:
        cls = todo.pop()
        out.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return frozenset(out)


def _short_text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and value.isprintable()


def refusal(rec: Any, *, owner: tuple[int, str], after: datetime | None, now: datetime) -> Record | None:
    """*rec* as a pending record may be chained, or None when it is not a refused ``open`` of
    the fixed shape: exactly :data:`PENDING_FIELDS`, outcome ``denied`` or ``error``, an error
    class of sessionseal's, the vault owner's uid and user name, a time not before *after* (the
    last chained record) and not after *now*.  ``pending.log`` carries no MAC: whoever can
    write the vault directory can write it, so it may say nothing more than that."""
    if not isinstance(rec, dict) or set(rec) != PENDING_FIELDS:
        return None
    when = parse_time(rec["time"])
    ok = (
        rec["action"] == "open"
        and rec["outcome"] in ("denied", "error")
        and rec["error"] in _error_classes()
        and type(rec["uid"]) is int
        and (rec["uid"], rec["user"]) == owner
        and type(rec["pid"]) is int
        and rec["pid"] > 0
        and _short_text(rec["host"], 255)
        and _short_text(rec["program"], 64)
        and _short_text(rec["version"], 64)
        and when is not None
        and (after is None or when >= after)
        and when <= now
    )
    return dict(rec) if ok else None
