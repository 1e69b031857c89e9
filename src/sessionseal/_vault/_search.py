"""Search (issue 23): a query answered from the encrypted full-text index, made complete by
evaluating the sessions the index is behind on from their decrypted text (docs/design.md,
"The format (d), as designed"; docs/spec/fts-v1.md, "Queries"; docs/api.md, "Search").

- ``query`` (the default): the query language, evaluated on the index's view for the sessions
  it is current on (its recorded stamp equals the file's), and on the decrypted, sanitized text
  of the others (stale: written while an index write failed, or absent), both through one
  :meth:`FtsIndex.overlaid`, so that one BM25 ranking covers them. No index at all: every
  candidate is evaluated that way, and the answer says so. Phrases are confirmed in the
  decrypted text of the best candidates until the page is full; snippets are cut for the page
  only, on a thread pool.
- ``literal`` (the search before issue 23: a substring of the stored document) and ``regex``:
  streaming scans, newest first.

Nothing here writes: not the query, not a term. Its text is never in an error or the audit log.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import operator
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, compress, islice
from typing import Any, Final, Protocol, TypedDict

import orjson

from .. import _fts
from .._fts._fields import REPLACED, message_fields
from .._fts._phrase import Phrase
from .._fts._query import Node, Query, Term
from .._fts._tokens import is_wordlike
from .._index import Entry, Stamp
from ..errors import IntegrityError, InvalidInput, SessionNotFound
from ._common import parse_id, stored_shape
from ._results import SearchHit, SearchHits

__all__ = ["NO_INDEX", "SNIPPET_TEXT", "FullTextViews", "NoFullText", "Search", "SearchHow", "doc_pieces"]

MODES: Final = ("query", "literal", "regex")

#: Said (a warning, on stderr by the CLI) when no index answered.
NO_INDEX: Final = (
    "the full-text index is missing or unusable: every candidate session was decrypted to answer "
    "(slower; 'sessionseal reindex' rebuilds it)"
)
#: Session text (original bytes, as listed) decrypted for a page's snippets at most, smallest
#: session first (docs/api.md, "Search"): a common word's best hits are the largest sessions,
#: and decrypting twenty of 1-20 MB to cut their snippets took over a second at 1 GB.
SNIPPET_TEXT: Final = 2_000_000
#: A page's session of this much text (original bytes, as listed) or more is decrypted on the
#: search's thread pool, a smaller one on the caller's thread (``_paged``).
POOLED_TEXT: Final = 1_000_000
#: Said when hits of the page come without a snippet for that budget.
SNIPPETS_LEFT: Final = (
    "{n} hit(s) shown without a snippet: their sessions are larger than a page's snippet budget "
    "({mb} MB of text, smallest sessions first); 'sessionseal show ID' opens one"
)
#: Characters of context either side of a snippet's match.
_CONTEXT: Final = 60
_FIELD_NAMES: Final = ((_fts.TITLE, "title"), (_fts.USER, "user"), (_fts.ASSISTANT, "assistant"), (_fts.TOOL, "tool"))
_NOTHING: Final = Node("term", Term("", False, _fts.ALL_FIELDS))  # "" is never a term


class SearchHow(TypedDict, total=False):
    """How :meth:`Vault.search` searches (docs/api.md, "Search")."""

    #: ``query`` (default), ``literal`` (a substring, as before issue 23) or ``regex``.
    mode: str | None
    #: For ``literal`` and ``regex``: match case exactly. Given alone, it selects ``literal``
    #: (what it meant before issue 23); the index is case-folded, so ``query`` refuses it.
    case_sensitive: bool
    #: Cut a snippet around each hit (default). Without, a query decrypts nothing it need not.
    snippets: bool


class View(Protocol):
    """What a search needs of the full-text index's view (``_fulltext.FtsView``)."""

    @property
    def index(self) -> _fts.FtsIndex: ...
    @property
    def stamps(self) -> Mapping[uuid.UUID, Stamp]: ...


class FullTextViews(Protocol):
    """The full-text index component (``_fulltext.FullText``), as search uses it."""

    def view(self) -> contextlib.AbstractContextManager[View | None]: ...


class NoFullText:
    """No full-text index component wired in: every search streams, and says so."""

    def view(self) -> contextlib.AbstractContextManager[View | None]:
        return contextlib.nullcontext(None)


# -- the text of a stored document ---------------------------------------------------------


def doc_pieces(doc: Mapping[str, Any]) -> Iterator[tuple[int, str, str]]:
    """``(field bit, place, text)``: :func:`~sessionseal._fts.doc_fields`'s pieces of a stored
    document, in the same order, each with its place in the document (for a hit's snippet).
    Lazily: a snippet is usually in the first few, and a session may have 10,000 messages."""
    return _pieces_where(doc, None)


def _pieces_where(doc: Mapping[str, Any], wanted: Callable[[int, str], bool] | None) -> Iterator[tuple[int, str, str]]:
    """:func:`doc_pieces`, less the messages none of whose pieces is *wanted* (a snippet's
    search: a message's places are made only for one that holds a match)."""
    for key in REPLACED:
        yield from ((bit, key, text) for bit, text in _fts.doc_fields(_only(doc, (key,))))
    for i, m in enumerate(doc.get("messages") or ()):
        if wanted is None or any(wanted(bit, text) for bit, text in message_fields(m)):
            yield from _message_pieces(i, m)


def _message_pieces(i: int, m: Any) -> Iterator[tuple[int, str, str]]:
    blocks = m.get("content") if isinstance(m, Mapping) else None
    if not isinstance(blocks, list):
        yield from ((bit, f"messages[{i}].content", text) for bit, text in message_fields(m))
        return
    for j, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, Mapping) else None
        place = f"messages[{i}].content[{j}]" + {"tool_call": "", "tool_result": ".content"}.get(str(kind), ".text")
        one = {"role": m.get("role"), "content": [block]}
        yield from ((bit, place, text) for bit, text in message_fields(one))


def _only(doc: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {k: doc[k] for k in keys if k in doc}


@dataclass
class DocText:
    """One decrypted document, for the exact evaluation of a query (phrases) and snippets."""

    doc: Mapping[str, Any]
    _fields: list[tuple[int, str]] | None = None

    def has_phrase(self, phrase: Phrase, fields: int) -> bool:
        """Whether a piece of *fields* holds the phrase's words in a row (as the tokenizer says)."""
        if self._fields is None:
            self._fields = _fts.doc_fields(self.doc)  # the pieces without their places: no walk of
        in_text = phrase.in_text  # doc_pieces (its places are for the one snippet)
        return any(bit & fields and in_text(text) for bit, text in self._fields)

    def matches(self, node: Node, has: Callable[[Term], bool], phrases: Phrases) -> bool:
        """The query's exact answer for this document: its terms as *has* says (the index's
        answer, exact for terms), its phrases confirmed in the text, in order."""
        if node.term is not None:
            return has(node.term)
        if node.phrase:
            terms, fields = _phrase_of(node)
            return self.has_phrase(phrases.of(terms), fields)
        if node.op == "not":
            return not self.matches(node.children[0], has, phrases)
        found = (self.matches(c, has, phrases) for c in node.children)
        return all(found) if node.op == "and" else any(found)


class Phrases:
    """A query's phrases, each compiled once (``_fts._phrase``)."""

    def __init__(self) -> None:
        self._made: dict[tuple[str, ...], Phrase] = {}

    def of(self, terms: tuple[str, ...]) -> Phrase:
        made = self._made.get(terms)
        if made is None:
            made = self._made[terms] = Phrase(terms)
        return made


def _phrase_of(node: Node) -> tuple[tuple[str, ...], int]:
    leaves = [c.term for c in node.children if c.term is not None]
    return tuple(t.text for t in leaves), leaves[0].fields


def may_match(node: Node, has: Callable[[Term], bool], body: bytes, phrases: Phrases, negated: bool = False) -> bool:
    """False only if *node* cannot match the stored document *body* (its JSON, unparsed): its
    terms as *has* says, each phrase as :meth:`Phrase.may_be_in` says of the raw bytes; a
    negated phrase counts as absent (its lower bound), so that the answer bounds the exact one
    from above. A candidate that holds a phrase's words apart is dropped without a parse."""
    if node.term is not None:
        return has(node.term)
    if node.phrase:
        return not negated and phrases.of(_phrase_of(node)[0]).may_be_in(body)
    if node.op == "not":
        return not may_match(node.children[0], has, body, phrases, not negated)
    found = (may_match(c, has, body, phrases, negated) for c in node.children)
    return all(found) if node.op == "and" else any(found)


# -- the query's shape ----------------------------------------------------------------------


def relaxed(node: Node, negated: bool = False) -> Node:
    """*node* with each negated phrase made "matches nothing": the index has no positions, so a
    phrase is the AND of its words there, a superset; under a NOT that would drop sessions that
    have the words apart. The relaxed query's answer holds the exact one (confirmed later)."""
    if node.phrase and negated:
        return _NOTHING
    if node.term is not None or not node.children:
        return node
    kids = tuple(relaxed(c, negated ^ (node.op == "not")) for c in node.children)
    return Node(node.op, node.term, kids, node.phrase)


def positive(node: Node, negated: bool = False) -> Iterator[Node]:
    """The non-negated leaves and phrases of *node* (what a snippet shows)."""
    if node.term is not None or node.phrase:
        if not negated:
            yield node
        return
    for c in node.children:
        yield from positive(c, negated ^ (node.op == "not"))


def _relevant(terms: Mapping[str, _fts.Posting], leaves: Sequence[Term]) -> dict[str, _fts.Posting]:
    """The postings of *terms* a query's *leaves* can reach (a stale session keeps only these)."""
    exact = {leaf.text for leaf in leaves if not leaf.prefix}
    prefixes = tuple(leaf.text for leaf in leaves if leaf.prefix)
    return {t: p for t, p in terms.items() if t in exact or (prefixes and _prefixed_any(t, prefixes))}


def _prefixed_any(term: str, prefixes: tuple[str, ...]) -> bool:
    return term.startswith(prefixes) and is_wordlike(term)


# -- the search ----------------------------------------------------------------------------


@dataclass
class Counts:
    """What the audit record says of a search (never the query)."""

    scanned: int = 0  # sessions decrypted
    stale: int = 0  # of which: evaluated from their text for the index was behind, or absent
    index: str = "fts"  # "fts": the index answered; "none": no usable index; "scan": literal/regex


class Search:
    """Runs one search over the candidate sessions a listing selected."""

    def __init__(self, read: Callable[[uuid.UUID], tuple[bytes, Any]], fulltext: FullTextViews) -> None:
        # A session's stored document (its JSON), decrypted, and the document itself if reading
        # it parsed it (appended groups applied), else None.
        self._read = read
        self._fulltext = fulltext
        #: The last view's stamps, and the same by the id's text (what the listing gives): made
        #: once per index state, not per query (a ``str(UUID)`` per session cost 3 ms at 2,800).
        self._by_text: tuple[Mapping[uuid.UUID, Stamp], dict[str, Stamp]] | None = None
        self._raws: dict[str, bytes] = {}  # a session id's text -> its 16 bytes

    def load(self, sid: uuid.UUID) -> dict[str, Any] | None:
        """A session's stored document; None when it was erased meanwhile or is damaged (as
        the scan before issue 23: 'list' and 'verify' report those)."""
        got = self.body(sid)
        return None if got is None else self.parse(*got)

    def body(self, sid: uuid.UUID) -> tuple[bytes, Any] | None:
        """A session's stored document, its JSON, and the document if reading it parsed it
        (:meth:`parse` takes both; None: as :meth:`load`)."""
        try:
            return self._read(sid)
        except (SessionNotFound, IntegrityError, FileNotFoundError):
            return None

    @staticmethod
    def parse(body: bytes, doc: Any = None) -> dict[str, Any] | None:
        try:
            with stored_shape():
                if doc is None:  # not parsed yet (an appended session's was: not parsed twice)
                    doc = orjson.loads(body)
                if not isinstance(doc, dict):
                    raise IntegrityError("not a document")
                return doc
        except IntegrityError:
            return None

    def run(
        self, text: str, candidates: list[Entry], stamps: Mapping[str, Stamp], limit: int, how: SearchHow
    ) -> tuple[SearchHits, Counts]:
        mode = how.get("mode") or ("literal" if how.get("case_sensitive") else "query")
        if mode not in MODES:
            raise InvalidInput("search mode: one of query, literal, regex")
        if mode == "query":
            if how.get("case_sensitive"):
                raise InvalidInput(
                    "search: case-sensitive matching is for the literal and regex scans (a query is case-folded)"
                )
            return self._query(_fts.parse(text), candidates, stamps, limit, how.get("snippets", True))
        return self._scan(_matcher(text, mode, how.get("case_sensitive", False)), candidates, limit)

    def _query(
        self, q: Query, candidates: list[Entry], stamps: Mapping[str, Stamp], limit: int, snippets: bool
    ) -> tuple[SearchHits, Counts]:
        counts = Counts()
        by_id = {e.id: e for e in candidates}  # by the id's text: no UUID made per candidate
        ranking, having = self._rank(q, by_id, stamps, counts)
        page = list(islice(ranking, limit))  # a Hit (and its UUID) is made for what is read only
        need_doc = snippets or bool(q.phrases)
        hits = SearchHits(source=counts.index, stale=counts.stale if counts.index == "fts" else 0)
        if counts.index == "none":
            hits.warnings.append(NO_INDEX)
        if not need_doc:
            hits.extend(_hit(by_id[str(h.session_id)], h, None) for h in page)
            return hits, counts
        # Without a phrase the index's answer is exact: a session is decrypted only for its
        # snippet, and only within the page's budget, smallest sessions first.
        cut = None if q.phrases else _budgeted([by_id[str(h.session_id)] for h in page])
        loaded: list[uuid.UUID] = []  # appended on the pool's threads

        phrases = Phrases()

        def confirm(h: _fts.Hit) -> SearchHit | None:
            e = by_id[str(h.session_id)]
            if cut is not None and e.id not in cut:
                return _hit(e, h, None)
            got = self.body(h.session_id)
            loaded.append(h.session_id)
            if got is None:
                return None
            body, parsed = got

            def has(term: Term) -> bool:
                return h.session_id.bytes in having[term]

            if q.phrases and not may_match(q.root, has, body, phrases):
                return None  # its phrases' words are not in a row anywhere in its bytes
            doc = self.parse(body, parsed)
            if doc is None:
                return None
            text = DocText(doc)
            if q.phrases and not text.matches(q.root, has, phrases):
                return None
            return _hit(e, h, _snippet(text, q.root) if snippets else None)

        def light(h: _fts.Hit) -> bool:
            return by_id[str(h.session_id)].size_original < POOLED_TEXT

        _paged(confirm, chain(page, ranking), limit, hits, light)
        counts.scanned += len(loaded)
        if cut is not None and (left := sum(not h.snippet for h in hits if h.id not in cut)):
            hits.warnings.append(SNIPPETS_LEFT.format(n=left, mb=SNIPPET_TEXT // 1_000_000))
        return hits, counts

    def _rank(
        self, q: Query, by_id: Mapping[str, Entry], stamps: Mapping[str, Stamp], counts: Counts
    ) -> tuple[Iterator[_fts.Hit], dict[Term, set[bytes]]]:
        """The candidates the query's relaxed form matches, best first: from the index for the
        sessions it is current on, from their decrypted text for the others."""
        with self._fulltext.view() as view:
            if view is not None:
                indexed = self._indexed(view.stamps)
                # At C speed: a query compares every candidate's stamp (2,800 at 1 GB).
                stale = list(compress(by_id, map(operator.ne, map(indexed.get, by_id), map(stamps.get, by_id))))
                try:
                    return self._ranked(q, by_id, view.index, stale, counts)
                except IntegrityError:
                    pass  # a damaged segment or delta frame ('verify' names it): never trusted; streamed
        counts.index, counts.stale, counts.scanned = "none", 0, 0
        return self._ranked(q, by_id, _fts.FtsIndex([]), list(by_id), counts)

    def _indexed(self, stamps: Mapping[uuid.UUID, Stamp]) -> dict[str, Stamp]:
        """*stamps* (a view's) by the id's text; the same table while the view's is the same object."""
        memo = self._by_text
        if memo is not None and memo[0] is stamps:
            return memo[1]
        indexed = dict(zip(map(str, stamps), stamps.values(), strict=True))
        self._by_text = (stamps, indexed)
        return indexed

    def _ranked(
        self,
        q: Query,
        by_id: Mapping[str, Entry],
        base: _fts.FtsIndex,
        stale: list[str],
        counts: Counts,
    ) -> tuple[Iterator[_fts.Hit], dict[Term, set[bytes]]]:
        """The ranked hits (made as they are read), and for a query with a phrase the sessions
        (raw ids) each term matches (the phrases' confirmation evaluates the query on a
        session's text with them)."""
        counts.stale = len(stale)
        index = base.overlaid(self._analyze(stale, by_id, q.leaves(), counts))
        seen: dict[Term, set[bytes]] = {}
        hits = index.ranking(Query(relaxed(q.root), q.phrases), keep=self._raw_ids(by_id), sessions=seen)
        wanted = q.leaves() if q.phrases else []
        having = {leaf: seen[leaf] if leaf in seen else index.leaf_sessions(leaf) for leaf in wanted}
        return hits, having

    def _raw_ids(self, ids: Iterable[str]) -> set[bytes]:
        """The raw (16-byte) ids of *ids*, each parsed once per process (a query keeps its
        candidates by them, at C speed)."""
        memo, wanted = self._raws, set(ids)
        if len(memo) > 2 * len(wanted) + 1024:
            # Sessions gone since: not kept for the life of a long-running process. Replaced,
            # never cleared: a search on another thread goes on with the table it holds.
            memo = self._raws = {}
        for key in wanted - memo.keys():
            memo[key] = parse_id(key).bytes
        return set(map(memo.__getitem__, wanted))

    def _analyze(
        self, stale: list[str], by_id: Mapping[str, Entry], leaves: list[Term], counts: Counts
    ) -> list[_fts.Analyzed]:
        """The stale sessions' postings, from their decrypted text (only the query's terms are kept)."""

        def one(key: str) -> _fts.Analyzed | None:
            sid = parse_id(key)
            doc = self.load(sid)
            if doc is None:
                return None
            a = _fts.analyze(_fts.Doc(sid, by_id[key].generation, _fts.doc_fields(doc)))
            return _fts.Analyzed(a.entry, _relevant(a.terms, leaves))

        out: list[_fts.Analyzed] = []
        with _pool() as pool:
            for got in pool.map(one, stale):
                counts.scanned += 1
                if got is not None:
                    out.append(got)
        return out

    def _scan(
        self, match: Callable[[Any], tuple[str, str] | None], candidates: list[Entry], limit: int
    ) -> tuple[SearchHits, Counts]:
        """``literal`` and ``regex``: every candidate decrypted in turn, newest first (the
        listing's order), until *limit* hits."""
        counts = Counts(index="scan")
        hits = SearchHits(source="scan")

        def scan(e: Entry) -> SearchHit | None:
            doc = self.load(parse_id(e.id))
            found = None if doc is None else match(doc)
            return None if found is None else SearchHit(e.id, e.title, e.updated_at, *found)

        counts.scanned = _paged(scan, candidates, limit, hits)
        return hits, counts


def _budgeted(page: Sequence[Entry]) -> set[str]:
    """The ids of *page* whose snippets fit :data:`SNIPPET_TEXT`, taken smallest session first."""
    out: set[str] = set()
    spent = 0
    for e in sorted(page, key=lambda e: (e.size_original, e.id)):
        if spent + e.size_original > SNIPPET_TEXT:
            break
        spent += e.size_original
        out.add(e.id)
    return out


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    # Decryption and zstd release the GIL: a few threads overlap them with the Python work.
    return concurrent.futures.ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1))


def _paged(
    fn: Callable[[Any], SearchHit | None],
    items: Iterable[Any],
    limit: int,
    out: list[SearchHit],
    inline: Callable[[Any], bool] | None = None,
) -> int:
    """*fn* over *items* in order, a window ahead on the pool, until *out* holds *limit* hits;
    returns how many were run to the end. An item *inline* says is light runs on the caller's
    thread when its turn comes: the pool pays for a large session's decryption (which releases
    the GIL), not for a small one's, whose futures and GIL hand-offs cost more CPU than its
    work (a phrase's page of small sessions: about 5 ms of CPU a query)."""
    done = 0
    with _pool() as pool:
        pending = iter(items)

        def start(x: Any) -> tuple[Any, concurrent.futures.Future[SearchHit | None] | None]:
            return x, None if inline is not None and inline(x) else pool.submit(fn, x)

        window = [start(x) for x in _take(pending, 8)] if limit > 0 else []
        while window and len(out) < limit:
            x, future = window.pop(0)
            hit = fn(x) if future is None else future.result()
            done += 1
            if hit is not None:
                out.append(hit)
            window.extend(start(x) for x in _take(pending, 1))
        for _x, f in window:
            if f is not None:
                f.cancel()
    return done


def _take(it: Iterator[Any], n: int) -> list[Any]:
    out = []
    for x in it:
        out.append(x)
        if len(out) == n:
            break
    return out


def _hit(e: Entry, h: _fts.Hit, found: tuple[str, str, int] | None) -> SearchHit:
    names = tuple(name for bit, name in _FIELD_NAMES if h.fields & bit)
    place, snippet, offset = found if found is not None else ("", "", None)
    return SearchHit(e.id, e.title, e.updated_at, place, snippet, score=round(h.score, 6), fields=names, offset=offset)


def _snippet(text: DocText, root: Node) -> tuple[str, str, int] | None:
    """The first place (document order) that holds a non-negated term or phrase of the query
    (a phrase: its first word), and ~120 characters of its sanitized text around the match."""
    firsts = [leaves[0] for node in positive(root) if (leaves := _leaves_of(node))]

    def wanted(bit: int, piece: str) -> bool:
        folded = _folded(piece)
        return any(bit & leaf.fields and leaf.text in folded for leaf in firsts)

    for bit, place, piece in _pieces_where(text.doc, wanted):
        folded = _folded(piece)
        for leaf in firsts:
            if not bit & leaf.fields:
                continue
            at = _find(folded, leaf.text, prefix=leaf.prefix)  # None iff the text is not in it
            if at is not None:
                return place, _cut(piece, at, len(leaf.text)), at
    return None


def _leaves_of(node: Node) -> list[Term]:
    return [node.term] if node.term is not None else [c.term for c in node.children if c.term is not None]


def _folded(piece: str) -> str:
    """A piece as a snippet's search sees it: case-folded where that keeps the offsets."""
    if piece.isascii():
        return piece.lower()  # casefold is lower for ASCII, and keeps the length
    folded = piece.casefold()
    return folded if len(folded) == len(piece) else piece.lower()


def _find(folded: str, term: str, *, prefix: bool) -> int | None:
    # A word boundary before the term; after it too unless a prefix (identifiers' parts such as
    # "token" in "refresh_token" are found inside their word as a last resort).
    m = _finder(term, prefix).search(folded)
    if m is None:
        at = folded.find(term)
        return None if at < 0 else at
    return m.start()


@functools.lru_cache(maxsize=256)
def _finder(term: str, prefix: bool) -> re.Pattern[str]:
    """The term not after a letter or digit, and unless a prefix not before one. The term comes
    first, a literal the engine searches for at C speed, and the boundary before it is a
    look-behind over the term and the character before: a pattern that starts with the
    look-behind is tried at every position (the prefix's page: 1.6 ms of CPU that way, 0.06 ms
    this; tests/unit/test_fts_prefix.py holds the two to the same answers)."""
    t = re.escape(term)
    return re.compile(t + r"(?<![^\W_]" + t + ")" + ("" if prefix else r"(?![^\W_])"))


def _cut(text: str, at: int, n: int) -> str:
    start, end = max(0, at - _CONTEXT), min(len(text), at + n + _CONTEXT)
    snippet = ("..." if start else "") + text[start:end] + ("..." if end < len(text) else "")
    return " ".join(snippet.split())


def _matcher(text: str, mode: str, case_sensitive: bool) -> Callable[[Any], tuple[str, str] | None]:
    """``literal``: the first string value of the document holding *text* (the search before
    issue 23); ``regex``: the first whose text a Python regular expression matches."""
    if mode == "literal":
        return lambda doc: find_in_doc(doc, lambda s: _literal_at(s, text, case_sensitive))
    try:
        rx = re.compile(text, 0 if case_sensitive else re.IGNORECASE)
    except (re.error, RecursionError, OverflowError):
        raise InvalidInput("search regex: not a valid Python regular expression") from None

    def at(s: str) -> tuple[int, int] | None:
        m = rx.search(s)
        return None if m is None else (m.start(), m.end() - m.start())

    return lambda doc: find_in_doc(doc, at)


def _literal_at(value: str, text: str, case_sensitive: bool) -> tuple[int, int] | None:
    hay, want = (value, text) if case_sensitive else (value.casefold(), text.casefold())
    at = hay.find(want)
    if at < 0:
        return None
    return (at, len(text)) if len(hay) == len(value) else (0, 0)  # casefold moved the offsets


def find_in_doc(doc: Any, at: Callable[[str], tuple[int, int] | None]) -> tuple[str, str] | None:
    """The first string value of *doc* that *at* finds something in (depth first, in document
    order): its path and a one-line snippet of up to ~120 characters around the match."""
    stack: list[tuple[str, Any]] = [("", doc)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            found = at(value)
            if found is not None:
                start, n = found
                if n == 0 and start == 0:
                    return path or "(document)", " ".join(value[:120].split())
                return path or "(document)", _cut(value, start, n)
        elif isinstance(value, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(value))))
    return None
