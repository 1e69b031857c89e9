"""Queries over segments and a delta log: parsing, boolean evaluation, BM25 ranking.

The grammar (docs/spec/fts-v1.md, "Queries")::

    query  := or
    or     := and ("OR" and)*
    and    := unary (["AND"] unary)*          adjacent terms are ANDed
    unary  := "NOT" unary | "-" unary | atom
    atom   := "(" or ")" | [field ":"] (word | word "*" | '"' words '"')
    field  := title | user | assistant | tool

A word is tokenized like stored text (``_tokens.words``); one that gives several words
(``foo.bar``) means all of them. A phrase is the AND of its words: the caller confirms it in the
decrypted text (``Query.phrases``), since the index keeps no positions. ``foo*`` matches the
word-like terms that start with ``foo`` (3 characters or more), at most :data:`MAX_EXPANSION`
per segment, the most frequent first. A query's text never appears in an error message.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
import operator
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from uuid import UUID

from .._gc import collector_paused
from ..errors import InvalidInput
from . import _format as F
from ._format import DeltaRecord, DocEntry, LazyDeltaRecord, Posting
from ._segment import Analyzed, SegmentReader
from ._tokens import is_wordlike, words

__all__ = ["MAX_EXPANSION", "FtsIndex", "Hit", "Query", "parse"]

MAX_EXPANSION: Final = 64
K1: Final = 1.2
B: Final = 0.75
_FIELDS: Final = {"title": F.TITLE, "user": F.USER, "assistant": F.ASSISTANT, "tool": F.TOOL}
_TOKEN: Final = re.compile(r'\s*(?:(\()|(\))|"([^"]*)"?|(-)(?=\S)|([^\s()"]+))')
_MAX_QUERY: Final = 4096


@dataclass(frozen=True, slots=True)
class Term:
    text: str
    prefix: bool
    fields: int


@dataclass(frozen=True, slots=True)
class Node:
    op: str  # "term", "and", "or", "not"
    term: Term | None = None
    children: tuple[Node, ...] = ()
    #: An "and" of a quoted phrase's words (the caller confirms their order in the text).
    phrase: bool = False


@dataclass(frozen=True, slots=True)
class Query:
    root: Node
    phrases: tuple[tuple[str, ...], ...] = field(default=())

    def leaves(self) -> list[Term]:
        out: list[Term] = []
        stack = [self.root]
        while stack:
            n = stack.pop()
            if n.term is not None:
                out.append(n.term)
            stack.extend(n.children)
        return out


@dataclass(frozen=True, slots=True)
class Hit:
    session_id: UUID
    score: float
    fields: int  # the fields where the query's (non-negated) terms matched


def _bad(why: str) -> InvalidInput:
    # The message names the rule, never the query's text (queries are never logged).
    return InvalidInput(f"search query: {why}")


def _lex(text: str) -> list[tuple[str, str]]:
    if len(text) > _MAX_QUERY:
        raise _bad("longer than 4096 characters")
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            break
        pos = m.end()
        if m.group(1):
            out.append(("(", ""))
        elif m.group(2):
            out.append((")", ""))
        elif m.group(3) is not None:
            out.append(("phrase", m.group(3)))
        elif m.group(4):
            out.append(("NOT", ""))
        elif m.group(5) in ("AND", "OR", "NOT"):
            out.append((m.group(5), ""))
        elif m.group(5):
            out.append(("word", m.group(5)))
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.phrases: list[tuple[str, ...]] = []

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def or_(self) -> Node:
        kids = [self.and_()]
        while self.peek() == "OR":
            self.take()
            kids.append(self.and_())
        return kids[0] if len(kids) == 1 else Node("or", children=tuple(kids))

    def and_(self) -> Node:
        kids = [self.unary()]
        while self.peek() in ("AND", "NOT", "(", "word", "phrase"):
            if self.peek() == "AND":
                self.take()
            kids.append(self.unary())
        return kids[0] if len(kids) == 1 else Node("and", children=tuple(kids))

    def unary(self) -> Node:
        if self.peek() == "NOT":
            self.take()
            return Node("not", children=(self.unary(),))
        return self.atom()

    def atom(self) -> Node:
        kind = self.peek()
        if kind == "(":
            self.take()
            node = self.or_()
            if self.peek() != ")":
                raise _bad("unbalanced parentheses")
            self.take()
            return node
        if kind not in ("word", "phrase"):
            raise _bad("an operator without a term")
        _kind, text = self.take()
        fields = F.ALL_FIELDS
        if kind == "word" and ":" in text:
            name, _, rest = text.partition(":")
            if name.lower() in _FIELDS:
                fields, text = _FIELDS[name.lower()], rest
                if not text and self.peek() == "phrase":
                    _kind, text = self.take()
                    kind = "phrase"
        return self.leaf(kind, text, fields)

    def leaf(self, kind: str, text: str, fields: int) -> Node:
        if kind == "word" and text.endswith("*"):
            stem = words(text[:-1])
            if len(stem) != 1 or text[:-1].endswith("*") or not is_wordlike(stem[0].ljust(3, "x")):
                raise _bad("a prefix is one word followed by '*'")
            if len(stem[0]) < F.PREFIX_CHARS:
                raise _bad("a prefix needs at least 3 characters")
            return Node("term", Term(stem[0], True, fields))
        found = words(text)
        if not found:
            raise _bad("a term with nothing searchable in it")
        if kind == "phrase" and len(found) > 1:
            self.phrases.append(tuple(found))
        kids = tuple(Node("term", Term(w, False, fields)) for w in found)
        return kids[0] if len(kids) == 1 else Node("and", children=kids, phrase=kind == "phrase")


def parse(text: str) -> Query:
    """Parse a query (grammar above). :raises InvalidInput: a malformed query."""
    parser = _Parser(_lex(text))
    if not parser.tokens:
        raise _bad("empty")
    root = parser.or_()
    if parser.pos != len(parser.tokens):
        raise _bad("unbalanced parentheses")
    return Query(root, tuple(parser.phrases))


Postings = dict[UUID, Posting]
#: Postings by raw 16-byte session id: what a query works on (a ``bytes`` hashes at C speed;
#: a ``UUID`` hashes in Python, and a common word's query hashed one 30,000 times).
RawPostings = dict[bytes, Posting]


class FtsIndex:
    """Segments and delta records seen as one index of the sessions' current generations.

    Opening it makes no Python object per session but C-built dicts: per raw 16-byte session
    id, its current generation and length (BM25's). A query works on raw ids too; a ``UUID``
    is made only for a hit it returns; :attr:`docs` (every session's :class:`DocEntry`) is
    built on first use.
    """

    def __init__(
        self, segments: Sequence[SegmentReader], records: Iterable[DeltaRecord | LazyDeltaRecord] = ()
    ) -> None:
        self.segments = list(segments)
        #: Per session (raw id): its current generation and its words in all fields.
        cur: dict[bytes, tuple[int, int]] = {}
        for seg in self.segments:
            table = seg.docs
            new = dict(zip(table.ids, zip(table.gens, table.lengths, strict=True), strict=True))
            # Held by two segments: the newer generation, or both pieces of the same one (a
            # compaction folds the delta log into a segment of its own: "Generations").
            for sid in cur.keys() & new.keys():
                (top, words), (at, more) = cur[sid], new[sid]
                if at < top:
                    del new[sid]
                elif at == top:
                    new[sid] = (at, words + more)
            cur.update(new)
        recs = list(records)
        for rec in recs:
            sid, gen, dl = rec.doc.session_id.bytes, rec.doc.generation, sum(rec.doc.lengths)
            have = cur.get(sid)
            if have is None or gen > have[0]:
                cur[sid] = (gen, dl)
            elif gen == have[0]:
                cur[sid] = (gen, have[1] + dl)
        self._cur = cur
        self._recs = recs
        # The records of each session's current generation, as they are: a term's postings are
        # gathered from them when it is looked up. A query looks up a few terms; folding every
        # term of every record first cost more than the query (0.7 s for a 580 kB log).
        self._records = [rec for rec in recs if rec.doc.generation == cur[rec.doc.session_id.bytes][0]]
        self._fresh: dict[str, RawPostings] = {}
        self._fresh_docs: dict[UUID, DocEntry] = {}
        self._replaced: frozenset[bytes] = frozenset()

    @functools.cached_property
    def docs(self) -> dict[UUID, DocEntry]:
        """Every session's current :class:`DocEntry` (for a caller that lists them)."""
        out: dict[UUID, DocEntry] = {}
        for seg in self.segments:
            for d in seg.docs:
                _see(out, d)
        for rec in self._recs:
            _see(out, rec.doc)
        out.update(self._fresh_docs)
        return out

    def __len__(self) -> int:
        """The sessions the index holds."""
        return len(self._cur)

    @functools.cached_property
    def _delta(self) -> dict[str, Postings]:
        """The delta records' postings by term, all folded (for a caller that walks every term)."""
        out: dict[str, Postings] = {}
        for rec in self._records:
            for term, p in rec.terms.items():
                _add(out.setdefault(term, {}), rec.doc.session_id, p)
        return out

    def overlaid(self, fresh: Iterable[Analyzed]) -> FtsIndex:
        """This index with *fresh* postings in place of what it holds of their sessions.

        A search evaluates the sessions the index is behind on (or lacks) from their decrypted
        text and sees them through this, with the same semantics and one ranking. The segments
        are shared, not copied: this is per query, and costs what *fresh* holds.
        """
        out = copy.copy(self)
        out.__dict__.pop("docs", None)  # a cached_property: rebuilt with *fresh* if read
        out._cur = dict(self._cur)
        out._fresh_docs = dict(self._fresh_docs)
        out._fresh = {t: dict(ps) for t, ps in self._fresh.items()}
        replaced = set(self._replaced)
        for a in fresh:
            sid = a.entry.session_id
            raw = sid.bytes
            out._cur[raw] = (a.entry.generation, sum(a.entry.lengths))
            out._fresh_docs[sid] = a.entry
            replaced.add(raw)
            for term, p in a.terms.items():
                out._fresh.setdefault(term, {})[raw] = p
        out._replaced = frozenset(replaced)
        return out

    def _term(self, term: str) -> Postings:
        """*term*'s postings by session (a ``UUID`` each: for a caller that walks them)."""
        return {UUID(bytes=sid): p for sid, p in self._raw(term).items()}

    def _raw(self, term: str, where: _Where | None = None) -> RawPostings:
        """*term*'s postings by raw session id. *where* (a prefix's expansion, which read them):
        the segments that hold the term, and its postings in the delta records."""
        out: RawPostings = {}
        cur = self._cur
        for seg in self.segments if where is None else [s for s, held in where.held if term in held]:
            ids, gens = seg.docs.ids, seg.docs.gens
            for ordinal, p in seg.postings(term):
                sid = ids[ordinal]
                if cur[sid][0] == gens[ordinal]:
                    q = out.get(sid)
                    out[sid] = p if q is None else Posting(q.tf + p.tf, q.mask | p.mask)
        if where is None:
            for rec in self._records:
                q = rec.posting(term)
                if q is not None:
                    _add_raw(out, rec.doc.session_id.bytes, q)
        else:
            for sid, found in where.records:
                q = found.get(term)
                if q is not None:
                    _add_raw(out, sid, q)
        if self._replaced:
            out = {sid: p for sid, p in out.items() if sid not in self._replaced}
            out.update(self._fresh.get(term, {}))
        return out

    def _expand(self, prefix: str) -> list[str]:
        return sorted(self._expansion(prefix).terms)

    def _expansion(self, prefix: str) -> _Where:
        """The terms *prefix* stands for (each segment's :data:`MAX_EXPANSION` most frequent,
        every one of the delta records' and the overlay's) and where each is.

        A segment's prefix bucket lists every word-like term it holds (docs/spec/fts-v1.md,
        "Segment"), so a term missing from it has no postings there: that segment's bucket is
        not read for it. A delta record's terms come with their postings, from one walk of
        its entries (a lookup of each term after the expansion walked a big record again)."""
        found: set[str] = set()
        held: list[tuple[SegmentReader, frozenset[str]]] = []
        for seg in self.segments:
            rows = seg.expand(prefix)
            held.append((seg, frozenset(t for t, _df in rows)))
            rows.sort(key=lambda r: (-r[1], r[0]))
            found.update(t for t, _df in rows[:MAX_EXPANSION])
        records: list[tuple[bytes, dict[str, Posting]]] = []
        for rec in self._records:
            if rec.may_hold(prefix):
                terms = {t: p for t, p in rec.prefixed(prefix).items() if is_wordlike(t)}
                if terms:
                    records.append((rec.doc.session_id.bytes, terms))
                    found.update(terms)
        found.update(t for t in self._fresh if t.startswith(prefix) and is_wordlike(t))
        return _Where(found, held, records)

    def leaf_postings(self, leaf: Term) -> dict[str, Postings]:
        """The postings of each term a leaf stands for, restricted to its fields."""
        return {t: {UUID(bytes=sid): p for sid, p in ps.items()} for t, ps in self._leaf(leaf).items()}

    def leaf_sessions(self, leaf: Term) -> set[bytes]:
        """The sessions (raw ids) a leaf matches."""
        return set().union(*self._leaf(leaf).values())

    def _leaf(self, leaf: Term) -> dict[str, RawPostings]:
        where = self._expansion(leaf.text) if leaf.prefix else None
        terms = [leaf.text] if where is None else sorted(where.terms)  # sorted: the scores' order of sums
        out: dict[str, RawPostings] = {}
        fields = leaf.fields
        for t in terms:
            raw = self._raw(t, where)
            ps = raw if fields == F.ALL_FIELDS else {sid: p for sid, p in raw.items() if p.mask & fields}
            if ps:
                out[t] = ps
        return out

    def search(self, query: Query | str, limit: int | None = None, keep: set[bytes] | None = None) -> list[Hit]:
        """Sessions matching *query*, best first (BM25; ties by session id); only those of
        *keep* (raw ids) if given."""
        return list(itertools.islice(self.ranking(query, keep), limit))

    def ranking(
        self, query: Query | str, keep: set[bytes] | None = None, sessions: dict[Term, set[bytes]] | None = None
    ) -> Iterator[Hit]:
        """:meth:`search`'s hits, made as they are read (a caller that reads a page of a
        common word's thousands makes a ``UUID`` for the page only). *sessions*, if given,
        receives what :meth:`leaf_sessions` says of each leaf of the query, from the lookups
        the ranking made (a phrase's confirmation needs them: looking them up again doubled
        the lookups of a phrase query)."""
        q = parse(query) if isinstance(query, str) else query
        with collector_paused():  # the delta records' terms are parsed here, at first lookup
            leaves = {leaf: self._leaf(leaf) for leaf in q.leaves()}
        if sessions is not None:
            sessions.update((leaf, set().union(*found.values())) for leaf, found in leaves.items())
        matched = _evaluate(q.root, leaves, self._cur)
        if keep is not None:
            matched &= keep
        return self._rank(q.root, leaves, matched)

    def _rank(self, root: Node, leaves: dict[Term, dict[str, RawPostings]], matched: set[bytes]) -> Iterator[Hit]:
        cur = self._cur
        n = max(1, len(cur))
        avg = sum(map(operator.itemgetter(1), cur.values())) / n or 1.0
        score = dict.fromkeys(matched, 0.0)
        fields = dict.fromkeys(matched, 0)
        for leaf in _positive(root):
            for postings in leaves[leaf].values():
                idf = math.log(1 + (n - len(postings) + 0.5) / (len(postings) + 0.5))
                for sid, p in postings.items():
                    if sid in score:
                        dl = cur[sid][1]
                        score[sid] += idf * p.tf * (K1 + 1) / (p.tf + K1 * (1 - B + B * dl / avg))
                        fields[sid] |= p.mask & leaf.fields
        ranked = sorted(matched)  # ties by session id (its bytes), then best first: stable
        ranked.sort(key=score.__getitem__, reverse=True)
        return (Hit(UUID(bytes=s), score[s], fields[s]) for s in ranked)


@dataclass(frozen=True, slots=True)
class _Where:
    """A prefix's expansion (:meth:`FtsIndex._expansion`): its terms, each segment with the
    terms it holds that start with the prefix, and each delta record's (raw session id,
    postings of those terms)."""

    terms: set[str]
    held: list[tuple[SegmentReader, frozenset[str]]]
    records: list[tuple[bytes, dict[str, Posting]]]


def _add(out: Postings, sid: UUID, p: Posting) -> None:
    q = out.get(sid)
    out[sid] = p if q is None else Posting(q.tf + p.tf, q.mask | p.mask)


def _add_raw(out: RawPostings, sid: bytes, p: Posting) -> None:
    q = out.get(sid)
    out[sid] = p if q is None else Posting(q.tf + p.tf, q.mask | p.mask)


def _see(docs: dict[UUID, DocEntry], d: DocEntry) -> None:
    """Fold *d* into *docs*: a newer generation replaces, pieces of the same one add up."""
    have = docs.get(d.session_id)
    if have is None or d.generation > have.generation:
        docs[d.session_id] = d
    elif d.generation == have.generation:
        (a, b, c, e), (w, x, y, z) = have.lengths, d.lengths
        docs[d.session_id] = DocEntry(d.session_id, d.generation, (a + w, b + x, c + y, e + z))


def _evaluate(node: Node, leaves: dict[Term, dict[str, RawPostings]], universe: Mapping[bytes, object]) -> set[bytes]:
    if node.term is not None:
        out: set[bytes] = set()
        for ps in leaves[node.term].values():
            out.update(ps)
        return out
    sets = [_evaluate(c, leaves, universe) for c in node.children]
    if node.op == "not":
        return universe.keys() - sets[0]
    if node.op == "and":
        return set.intersection(*sets)
    return set.union(*sets)


def _positive(node: Node, negated: bool = False) -> Iterable[Term]:
    if node.term is not None:
        if not negated:
            yield node.term
        return
    for c in node.children:
        yield from _positive(c, negated ^ (node.op == "not"))
