"""Listing and search: the sessions' summaries, from the index cache checked against the files,
and a full-text search of the sanitized documents (docs/design.md, "Index").  Reads only: the
index is brought up to date on the way, best effort, when the vault lock is free.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import os
import uuid
from collections.abc import Callable, Iterator
from itertools import compress, repeat
from typing import TYPE_CHECKING, Any, Final, cast

import orjson

from .._fields import SessionStatus
from .._index import Entry, Stamp, entry_of, to_builtins
from .._query import ListQuery, select
from .._state import VaultState
from .._usage import Counted, UsageBy, UsageQuery, UsageReport, report, rollup_of, stored_rollup, zone_name
from ..errors import IntegrityError, InvalidInput, SessionNotFound
from ._common import SUFFIX, parse_id, read_header, stored_shape
from ._context import VaultContext
from ._indexcache import IndexCache
from ._keys import Keys
from ._results import SearchHits, VaultStats
from ._search import FullTextViews, NoFullText, Search, SearchHow
from ._store import SessionStore

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from ..models import SessionSummary

#: Longest search text.
MAX_QUERY: Final = 1024
_ID: Final = operator.attrgetter("id")


class Listing:
    """Lists and searches the sessions of one open vault."""

    def __init__(
        self,
        ctx: VaultContext,
        keys: Keys,
        store: SessionStore,
        index: IndexCache,
        *,
        audit: Callable[..., None],
        fulltext: FullTextViews | None = None,
    ) -> None:
        self._ctx = ctx
        self._keys = keys
        self._store = store
        self._index = index
        self._audit = audit
        # The full-text index (issue 23) is handed in by _wiring.py; without it, search streams.
        self._search = Search(lambda sid: store.document_parsed(store.open(sid)), fulltext or NoFullText())

    def select(self, query: ListQuery) -> tuple[list[Entry], list[str]]:
        entries, problems = self.summary_docs()
        if (rolled_back := self._keys.rollback_problem()) is not None:
            problems.insert(0, rolled_back)  # what came back is listed; what did not cannot be named
        chosen = select(entries, query)
        detail: dict[str, Any] = {"sessions": len(chosen), "problems": len(problems)}
        if filters := query.describe():
            detail["filters"] = sorted(filters)
        self._audit("list", detail=detail)
        return chosen, problems

    def summaries(self) -> tuple[list[SessionSummary], list[str]]:
        """Every readable session's summary, newest update first, and the problems (not audited)."""
        entries, problems = self.summary_docs()
        out = summaries_adapter().validate_python(to_builtins(entries))
        out.sort(key=lambda s: s.updated_at, reverse=True)
        return out, problems

    def summary_docs(
        self, stamps: dict[str, Stamp] | None = None, *, report: bool = True
    ) -> tuple[list[Entry], list[str]]:
        """Every readable session's summary document, and the problems (not audited); each
        listed session's file stamp as stat saw it goes into *stamps* by session id, if given
        (search compares it with the full-text index's). *report* False: the caller drops the
        problems (search), so the sessions are checked against their marks only when that
        decides what the index records (a file changed since it was recorded).

        From the index, checked file by file against the file system: a session whose file
        changed since the index recorded it (or that the index lacks) has its META frame
        re-read, and the index is brought up to date when the vault lock is free.
        """
        # Vault-wide failures (no key, a damaged key table) must surface, not become per-file problems.
        # The marks are read before any file: a writer raises a mark only after writing its file.
        state = self._keys.keytable().state
        index, reason = self._index.current()
        problems: list[str] = []
        puts: list[tuple[str, Entry, Stamp]] = []
        known_stamps = index.stamps if index is not None else {}
        known_entries = index.entries if index is not None else {}
        names = self._ctx.session_files()
        # Every file is stat'ed (a session changed since the index recorded it must be seen),
        # at C speed: the per-file steps are maps, not a Python loop (2,800 files: 25 -> 8 ms).
        now = stamps_of(self._ctx.sessions.fd, names)
        same = list(map(operator.eq, now, map(known_stamps.get, names, repeat(()))))  # () matches no stamp
        where = list(compress(names, same))  # the file of each of docs (for the marks)
        docs = list(map(known_entries.__getitem__, where))
        hits = len(docs)
        if stamps is not None:
            stamps.update(
                zip(map(_ID, docs), cast("Iterator[Stamp]", compress(now, same)), strict=True)
            )  # equal: not None
        reported: set[str] = set()
        for fname, stamp in compress(zip(names, now, strict=True), map(operator.not_, same)):
            if stamp is None:
                continue  # gone meanwhile
            try:
                doc = entry_of(self._store.read_summary(fname))
            except SessionNotFound:
                self.keyless(fname, problems)
                continue
            except (IntegrityError, OSError) as exc:
                problems.append(f"sessions/{fname}: {exc}")
                continue
            if not behind_index(fname, doc, known_entries.get(fname), reported, problems):
                puts.append((fname, doc, stamp))
            # A file older or shorter than the index recorded is listed as it is, but not recorded:
            # the index keeps what it knew, so every listing (and verify) reports it until the owner
            # saves the session anew or accepts the files as they are ('sessionseal reindex').
            docs.append(doc)
            where.append(fname)
            if stamps is not None:  # by session id: the caller need not name the files again
                stamps[doc.id] = stamp
        if state.tracked and (report or puts):
            behind = self.against_marks(state, docs, where, reported, problems)
            if behind:
                puts = [p for p in puts if p[0] not in behind]
        # Entries whose file is gone; none when every entry matched a file (the usual case).
        drops = [] if hits == len(known_entries) else sorted(known_entries.keys() - set(names))
        if reason is not None or puts or drops:
            self._index.refresh(puts, drops, reason)
        return docs, problems

    def keyless(self, fname: str, problems: list[str]) -> None:
        """A session file whose key is not in the table: a leftover an erasure recorded (its tomb
        is in the state) is no session, and is skipped; any other is reported, never dropped
        silently: a key table put back from an older backup lacks the keys of newer sessions."""
        header = read_header(self._ctx.sessions, fname)
        if header is None or self._keys.tombed(header.raw):
            return  # gone meanwhile (an erasure overwrote it), or an erased session's leftover
        problems.append(
            f"sessions/{fname}: its key is not in the key table and no erasure of it is recorded "
            "(missing-key); run 'sessionseal verify'"
        )

    def against_marks(
        self, state: VaultState, docs: list[Entry], where: list[str], reported: set[str], problems: list[str]
    ) -> set[str]:
        """Check the listed sessions against their marks, and report the marked sessions that
        have no file (issue 20): a rebuilt or restored index, or none, hides neither.  Returns
        the files below their marks (listed as they are, never recorded in the index)."""
        # Compared as hex: one cheap conversion per mark and per entry (10,000 of each: a few ms).
        marks = {sid.hex(): mark for sid, mark in state.marks.items()}
        ids = [doc.id.replace("-", "") for doc in docs]
        get, behind = marks.get, set()
        for doc, fname, sid in zip(docs, where, ids, strict=True):
            mark = get(sid)
            if mark is None or (doc.generation, doc.size_stored) >= mark or fname in reported:
                continue  # at or above its mark (above: written since the marks were read)
            behind.add(fname)
            if doc.generation < mark[0]:
                problems.append(
                    f"sessions/{fname}: version {doc.generation} is older than the version {mark[0]} the vault "
                    "recorded (restored from a backup, or rolled back); run 'sessionseal verify'"
                )
            else:
                problems.append(
                    f"sessions/{fname}: appended turns the vault recorded are missing (the file was cut "
                    "short, or restored from a backup); run 'sessionseal verify'"
                )
        unlisted = marks.keys() - set(ids)
        if unlisted:
            problems.extend(self._missing({bytes.fromhex(x) for x in unlisted}, set(where)))
        return behind

    def _missing(self, unlisted: set[bytes], listed: set[str]) -> list[str]:
        """The marked sessions among *unlisted* that still have their key but no file."""
        keyed = self._keys.keytable().session_keys
        # An erased session's mark may outlive its key: only keyed sessions can be missing.
        candidates = [uuid.UUID(bytes=raw) for raw in sorted(unlisted)]
        candidates = [sid for sid in candidates if sid in keyed]
        if not candidates:
            return []
        present = set(self._ctx.session_files())
        # An erasure by another process since our copy was read leaves a mark and no key.
        table = self._keys.keytable(fresh=True)
        out = []
        for sid in candidates:
            fname = self._keys.file_name(sid) + SUFFIX
            if fname in listed or fname in present:
                continue  # a file that failed to open: reported already
            if sid in table.session_keys and not self._ctx.sessions.exists(fname):
                out.append(
                    f"sessions/{fname}: session {sid} is missing: the vault recorded it, but its file is gone "
                    "(restore it from a backup; its key is kept); run 'sessionseal verify'"
                )
        return out

    def stats(self, warn: int | None) -> VaultStats:
        """See :meth:`Vault.stats` (*warn*: the config's warn size)."""
        summaries, problems = self.summaries()
        result = stats_of(summaries, problems, warn)
        # Not the bytes stored: two totals around an erasure would give the erased session's size.
        self._audit("stats", detail={"sessions": result.sessions})
        return result

    def usage(self, q: UsageQuery) -> UsageReport:
        """See :meth:`Vault.usage`: from each session's rollup (its META frame), decrypting only
        the sessions an older sessionseal wrote, which have none."""
        entries, problems = self.summary_docs()
        lq = ListQuery(archived=None if q.archived else False, tags=q.tags, workspace=q.workspace, model=q.model)
        counted: list[Counted] = []
        computed = unreadable = 0
        for e in select(entries, lq):
            sid = parse_id(e.id)
            try:
                _, meta = self._store.read_meta(self._keys.file_name(sid) + SUFFIX)
                found = stored_rollup(meta)
                if found is None:
                    with stored_shape():
                        rollup = rollup_of(orjson.loads(self._store.document(self._store.open(sid))))
                    found = rollup["rows"], rollup["stats"]
                    computed += 1
            except (SessionNotFound, FileNotFoundError):
                continue  # erased meanwhile
            except (IntegrityError, OSError, AttributeError):
                unreadable += 1  # damaged ('list' and 'verify' name it)
                continue
            counted.append(Counted(e.id, e.updated_at, e.workspace, e.tags, *found))
        rows, total = report(counted, q)
        unreadable += len(problems)
        warnings = [f"{unreadable} session file(s) could not be read; run 'sessionseal list' to see which"] * bool(
            unreadable
        )
        by = UsageBy(q.by)
        detail: dict[str, Any] = {"sessions": total.sessions, "usage": by.value, "computed": computed}
        if filters := [n for n in ("since", "until", "tags", "workspace", "model") if getattr(q, n) not in (None, ())]:
            detail["filters"] = filters
        self._audit("stats", detail=detail)
        return UsageReport(by, zone_name(q.tz), q.since, q.until, rows, total, computed, unreadable, warnings)

    def search(self, text: str, query: ListQuery | None, how: SearchHow) -> SearchHits:
        """See :meth:`Vault.search`."""
        if not text or len(text) > MAX_QUERY:
            raise InvalidInput(f"search for 1 to {MAX_QUERY} characters")
        q = query or ListQuery()
        limit = 20 if q.limit is None else q.limit
        stamps: dict[str, Stamp] = {}
        entries, _ = self.summary_docs(stamps, report=False)
        # A query ranks its hits itself: only the literal and regex scans go in the listing's order.
        ordered = how.get("mode") not in (None, "query") or bool(how.get("case_sensitive"))
        candidates = select(entries, dataclasses.replace(q, limit=None), ordered=ordered)
        hits, counts = self._search.run(text, candidates, stamps, limit, how)
        detail: dict[str, Any] = {"scanned": counts.scanned, "hits": len(hits), "index": counts.index}
        if counts.index == "fts":
            detail["stale"] = counts.stale
        if filters := q.describe():
            detail["filters"] = sorted(filters)
        # Never the query (it may be a secret someone looks for); the sessions it found, by tag.
        matched = [("match", uuid.UUID(h.id), None) for h in hits]
        self._audit("search", detail=detail, others=matched)
        return hits


_STAMP: Final = operator.attrgetter("st_ino", "st_size", "st_mtime_ns")  # stamp_of() at C speed


def stamps_of(fd: int, names: list[str]) -> list[Stamp | None]:
    """The stamp of each of *names* in the directory *fd* (None: gone), in one C-speed pass
    unless a file went away meanwhile."""
    stat = functools.partial(os.stat, dir_fd=fd, follow_symlinks=False)
    try:
        return list(map(_STAMP, map(stat, names)))
    except FileNotFoundError:
        pass
    out: list[Stamp | None] = []
    for name in names:
        try:
            out.append(_STAMP(stat(name)))
        except FileNotFoundError:
            out.append(None)
    return out


def behind_index(fname: str, doc: Entry, known: Entry | None, reported: set[str], problems: list[str]) -> bool:
    """Whether the file *fname* holds an older version of its session, or fewer appended
    turns, than the index recorded (*known*); if so, it is reported."""
    if known is not None and known.id == doc.id and known.generation > doc.generation:
        reported.add(fname)
        problems.append(
            f"sessions/{fname}: version {doc.generation} is older than the version {known.generation} "
            "the index recorded (restored from a backup, or rolled back); run 'sessionseal verify'"
        )
        return True
    if (
        known is not None
        and known.id == doc.id
        and known.generation == doc.generation
        and known.size_stored > doc.size_stored  # a version only grows, by appends
    ):
        reported.add(fname)
        problems.append(
            f"sessions/{fname}: appended turns the index recorded are missing (the file was cut "
            "short, or restored from a backup); run 'sessionseal verify'"
        )
        return True
    return False


@functools.cache
def summaries_adapter() -> TypeAdapter[list[SessionSummary]]:
    """Validates a listing's summaries in one pydantic-core call (10x faster than one model at a time)."""
    from pydantic import TypeAdapter

    from ..models import SessionSummary

    return TypeAdapter(list[SessionSummary])


def stats_of(summaries: list[SessionSummary], problems: list[str], warn: int | None) -> VaultStats:
    """What :meth:`Vault.stats` reports of *summaries* (*warn*: the config's warn size)."""
    by_status = {st.value: 0 for st in SessionStatus}
    for s in summaries:
        by_status[s.status.value] += 1
    stored = sum(s.size_stored for s in summaries)
    original = sum(s.size_original for s in summaries)
    from .._retention import human_size

    warnings = [f"{len(problems)} session file(s) could not be read; run 'sessionseal list' to see which"] * bool(
        problems
    )
    if warn is not None and stored > warn:
        warnings.append(
            f"the vault holds {human_size(stored)}, over its warn-size {human_size(warn)}; "
            "see 'sessionseal cleanup --dry-run'"
        )
    return VaultStats(
        sessions=len(summaries),
        by_status=by_status,
        pinned=sum(s.pinned for s in summaries),
        stored_bytes=stored,
        original_bytes=original,
        compression_ratio=round(original / stored, 2) if stored else None,
        oldest_created=min((s.created_at for s in summaries), default=None),
        newest_updated=max((s.updated_at for s in summaries), default=None),
        messages=sum(s.message_count for s in summaries),
        cost_usd=round(sum(s.cost_usd for s in summaries), 6),
        redactions=sum(sum(s.redactions.values()) for s in summaries),
        unreadable=len(problems),
        warn_size=warn,
        warnings=warnings,
    )
