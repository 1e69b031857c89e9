"""Verifying the audit log's chain, record by record, against the anchor
(docs/spec/audit-log.md, "Verifying"): the problems it reports, by stable code."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final

from .. import _crypto
from .._fs import Dir
from ..errors import UnsupportedVersion
from ._records import (
    CURRENT,
    FORMAT,
    ZERO_MAC,
    Anchor,
    Chain,
    Problem,
    Record,
    VerifyReport,
    canonical_or_none,
    line_spans,
    mac_key_of,
    parse_json,
    parse_time,
    record_mac,
    split_line,
)

Visit = Callable[[Record, str | None], None]
#: Record 1 may be this much older than ``vault.json``'s ``created_at`` (written just before it,
#: by the same process): a clock stepped back by NTP in between is not tampering.
CLOCK_SLACK: Final = timedelta(minutes=5)


class ChainCheck:
    """One pass over the log files, oldest first, checking each record's place in the chain.

    With *visit*, every parsed record is passed on, with None while the chain holds and a
    reason once it does not; without it, verification stops at the first error.
    """

    def __init__(
        self, legacy_key: bytes, chain: Chain | None, report: VerifyReport, visit: Visit | None, *, sessions: bool
    ) -> None:
        self.legacy_key = legacy_key
        #: The vault's anchored state (issue 20), or None: a vault of before, with ``anchor.sst``.
        self.chain = chain
        self.sessions = sessions
        self.anchor = Anchor()
        self.report = report
        self.visit = visit
        self.expected, self.prev = 1, ZERO_MAC
        self.epoch = 0  # the key epoch of the last record: it never goes down along the chain
        self.macs: dict[int, str] = {}
        self.torn: dict[str, Any] | None = None  # an unreadable line, unless a torn-tail record seals it
        self.broken = False  # an error was found: what follows is read (for visit) but not vouched for

    def run(self, d: Dir | None, names: list[str], anchor: Anchor) -> VerifyReport:
        self.anchor = anchor
        self.expected, self.prev = anchor.base_seq + 1, anchor.base_mac
        for fi, name in enumerate(names):
            assert d is not None
            data = d.read(name, max_size=1 << 31)
            last_file = fi == len(names) - 1
            for lineno, (offset, line) in enumerate(line_spans(data), 1):
                complete = offset + len(line) < len(data)
                if not self._line(name, lineno, offset, line, complete=complete, last_file=last_file):
                    return self.report
        if self.broken:
            return self.report
        if self.torn is not None:
            self.report.problems.append(
                Problem(self.torn["file"], self.torn["line"], None, "bad-line", "a line is not a valid record")
            )
            return self.report
        self._check_anchor(names)
        self._check_history(names)
        return self.report

    def _line(self, name: str, lineno: int, offset: int, line: bytes, *, complete: bool, last_file: bool) -> bool:
        """Check one line; False: stop reading (an error, and nobody to visit the rest)."""
        split = split_line(line) if complete else None
        rec: Record | None = None
        if split is not None:
            parsed = parse_json(split[0])
            rec = parsed if isinstance(parsed, dict) else None
        if self.broken:
            if self.visit is None:
                return False
            if rec is not None:
                self.visit(rec, "after-error")
            return True
        if rec is None or split is None:
            self._unreadable(name, lineno, offset, line, complete=complete, last_file=last_file)
            return True
        problem = self._check(name, lineno, rec, split)
        if problem is not None:
            self._fail(problem, rec)
        else:
            self._accept(rec, split[1])
        return True

    def _unreadable(self, name: str, lineno: int, offset: int, line: bytes, *, complete: bool, last_file: bool) -> None:
        if not complete and last_file:
            self.report.problems.append(
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
            return
        self.torn = {"file": name, "offset": offset, "length": len(line), "line": lineno}

    def _check(self, name: str, lineno: int, rec: Record, split: tuple[bytes, str]) -> Problem | None:
        """What is wrong with a parsed record here, or None."""
        seq = rec.get("seq")
        if self.torn is not None:
            if not _seals(rec, self.torn):
                return Problem(name, self.torn["line"], None, "bad-line", "a line is not a valid record")
            self.torn = None
        problem = self._mac(name, lineno, rec, split)
        if problem is not None:
            return problem
        if isinstance(rec.get("v"), int) and rec["v"] > FORMAT:
            # Authentic, but written by a newer sessionseal: its fields may mean other things.
            raise UnsupportedVersion(
                f"the audit log has records of format {rec['v']}, this sessionseal reads {FORMAT}; upgrade sessionseal"
            )
        if canonical_or_none(rec) != split[0]:
            return Problem(name, lineno, seq, "not-canonical", "it is not in canonical form")
        if seq != self.expected:
            what = (
                f"expected record {self.expected} here: records are missing or out of order"
                if isinstance(seq, int)
                else "it has no sequence number"
            )
            return Problem(name, lineno, seq, "out-of-sequence", what)
        if rec.get("prev") != self.prev:
            return Problem(name, lineno, seq, "broken-chain", "it does not follow the record before it")
        return self._first(name, lineno, rec) if seq == 1 and self.chain is not None else None

    def _mac(self, name: str, lineno: int, rec: Record, split: tuple[bytes, str]) -> Problem | None:
        """The record's MAC under the key it names (``k``), never older than the last record's."""
        seq = rec.get("seq")
        key = mac_key_of(self.legacy_key, self.chain, rec)
        if key is None:
            return Problem(name, lineno, seq, "key-epoch", "it names an audit key this vault does not hold")
        if not _crypto.constant_time_equal(record_mac(key, split[0]).encode(), split[1].encode()):
            return Problem(name, lineno, seq, "bad-mac", "its MAC does not match (edited or forged)")
        if (rec.get("k") or 0) < self.epoch:
            what = "it is MACed under an older audit key than the record before it"
            return Problem(name, lineno, seq, "key-epoch", what)
        return None

    def _first(self, name: str, lineno: int, rec: Record) -> Problem | None:
        """Record 1 of an anchored vault: its ``init``, not older than the vault (a chain that
        started again is not the vault's history)."""
        assert self.chain is not None
        if rec.get("action") != "init":
            return Problem(name, lineno, 1, "no-init", "record 1 is not the vault's 'init': the chain started again")
        created, when = parse_time(self.chain.created), parse_time(rec.get("time"))
        if created is not None and (when is None or when < created - CLOCK_SLACK):
            return Problem(name, lineno, 1, "before-creation", "record 1 is older than the vault")
        return None

    def _fail(self, problem: Problem, rec: Record) -> None:
        self.report.problems.append(problem)
        self.broken = True
        if self.visit is not None:
            self.visit(rec, problem.code)

    def _accept(self, rec: Record, mac: str) -> None:
        seq: int = rec["seq"]
        report = self.report
        self.macs[seq] = mac
        self.prev = mac
        self.epoch = rec.get("k") or 0
        report.first_seq = report.first_seq or seq
        report.last_seq = seq
        report.records += 1
        self.expected += 1
        if self.visit is not None:
            self.visit(rec, None)

    def _check_anchor(self, names: list[str]) -> None:
        """The end of the chain against the anchor: cut off, or replaced by another history."""
        anchor, report = self.anchor, self.report
        if anchor.seq <= 0:
            return
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
        elif self.macs.get(anchor.seq, anchor.mac if anchor.seq == anchor.base_seq else "") != anchor.mac:
            report.problems.append(
                Problem(CURRENT, 0, anchor.seq, "replaced", "it differs from the anchor's (the log was replaced)")
            )

    def _check_history(self, names: list[str]) -> None:
        """A log with no record at all, where the vault's history says there were some."""
        report = self.report
        if report.records or report.problems or self.anchor.seq > 0:
            return  # a head with no records is reported as 'truncated'
        if self.sessions or (self.chain is not None and self.chain.head is not None):
            report.problems.append(
                Problem(
                    names[-1] if names else CURRENT,
                    0,
                    None,
                    "log-missing",
                    "the vault has a history but its audit log has no record: the log was removed",
                )
            )


def _seals(rec: Record, torn: dict[str, Any]) -> bool:
    """Whether *rec* is the torn-tail record that seals the unreadable line *torn*."""
    detail = rec.get("detail")
    detail = detail if isinstance(detail, dict) else {}
    return bool(
        rec.get("action") == "audit.torn-tail"
        # Named as it was when sealed: the current file, rotated since.
        and detail.get("file") in (torn["file"], CURRENT)
        and detail.get("offset") == torn["offset"]
        and detail.get("length") == torn["length"]
    )
