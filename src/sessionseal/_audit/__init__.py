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

The package: :mod:`._records` (the record format, canonical encoding, MAC, subjects and
boxes), :mod:`._log` (the files: append, rotation, retention, pending, anchor) and
:mod:`._verify` (the chain check).  Its names are re-exported here.
"""

from __future__ import annotations

# Names outside __all__ that tests and scripts/gen_vectors.py use are re-exported as
# "name as name" (explicitly, for ruff and mypy).
from ._log import AuditLog
from ._records import ANCHOR as ANCHOR
from ._records import (
    AUDIT_DIR,
    CURRENT,
    NOT_AN_ID,
    NOT_IN_VAULT,
    OUTCOMES,
    WITHHELD,
    Chain,
    Problem,
    Record,
    Subject,
    VerifyReport,
    actor,
    box_ad,
    canonical,
    error_outcome,
    open_box,
    record_line,
    seal_box,
    subject_keys,
    subject_tag,
)
from ._records import DEFAULT_MAX_FILE_BYTES as DEFAULT_MAX_FILE_BYTES
from ._records import FORMAT as FORMAT
from ._records import LABEL_BOX as LABEL_BOX
from ._records import LABEL_TAG as LABEL_TAG
from ._records import PENDING as PENDING
from ._records import TAG_INPUT as TAG_INPUT
from ._records import Anchor as Anchor
from ._records import parse_time as parse_time
from ._records import record_mac as record_mac
from ._records import refusal as refusal
from ._records import split_line as split_line
from ._records import utc_now as utc_now

__all__ = [
    "AUDIT_DIR",
    "CURRENT",
    "NOT_AN_ID",
    "NOT_IN_VAULT",
    "OUTCOMES",
    "WITHHELD",
    "AuditLog",
    "Chain",
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
