"""Keyword prefilters: the only module that imports native engines, and only if they are installed.

A prefilter finds every occurrence of every rule keyword (case-insensitively) and, for
"full scan" rules, every end offset of their regular expression, in one pass where the
engine allows it.  Three implementations share one interface:

* ``hyperscan`` (PyPI ``hyperscan``): one compiled database of all keywords, all
  full-scan regexes and the rules' start-of-match prefilter patterns (``hs_prefilter``:
  e.g. "a secret-named word followed by an assignment operator and a value", so a bare
  "token" in prose is not even a hit), scanned once (about a GB/s);
* ``ahocorasick`` (PyPI ``pyahocorasick``): one automaton of all keywords; full-scan
  rules are searched by Python ``re``;
* ``python``: ``bytes.find`` per keyword over an ASCII-folded copy of the text; always
  available and the reference the others are tested against.

Texts are folded to one byte per character (``str.encode("ascii", "replace")``) so that
byte offsets are character offsets whatever the text contains.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import re
import threading
from collections.abc import Sequence
from typing import Any, Final, Protocol

from . import _cache

__all__ = [
    "ENGINES",
    "Prefilter",
    "PrefilterCompileError",
    "available_engines",
    "build_prefilter",
    "fold",
    "fold_source",
    "hs_accepted",
    "resolve_engine",
]

ENGINES: Final = ("hyperscan", "ahocorasick", "python")


def _optional(module: str) -> Any:
    """Import an optional native engine; None when its wheel is not installed here."""
    try:
        return importlib.import_module(module)
    except ImportError:  # pragma: no cover - depends on the platform's wheels
        return None


_hs: Any = _optional("hyperscan")
_aho: Any = _optional("ahocorasick")


def available_engines() -> tuple[str, ...]:
    """The engines that can run here, best first."""
    found = []
    if _hs is not None:
        found.append("hyperscan")
    if _aho is not None:
        found.append("ahocorasick")
    found.append("python")
    return tuple(found)


def fold(text: str) -> bytes:
    """One byte per character, ASCII letters kept (not lowercased), everything else ``?``."""
    return text.encode("ascii") if text.isascii() else text.encode("ascii", "replace")


#: UTF-8 lead bytes (and bytes that start no valid sequence) to ``?``; ASCII as it is.
_UTF8_FOLD: Final = bytes(range(128)) + b"?" * 128
#: UTF-8 continuation bytes: deleted, so a character is one byte.
_UTF8_CONTINUATION: Final = bytes(range(0x80, 0xC0))


def fold_source(text: str, source: tuple[bytes, int, int] | None) -> bytes:
    """:func:`fold` of *text*, from its UTF-8 form ``data[a:b]`` (*source*) where that is
    cheaper: one ``bytes.translate`` (continuation bytes deleted, lead bytes to ``?``) costs
    about 30 % less than encoding a text that holds a non-ASCII character.

    Sound because each character of the decoded text is one valid UTF-8 sequence (one lead
    byte, folded to ``?``) or one undecodable byte (a lone surrogate, which :func:`fold` also
    makes ``?``): the two agree byte for byte unless an undecodable byte is a continuation
    byte, which the translation deletes, and then they differ in length: that text is
    folded from the characters instead.
    """
    if source is None or text.isascii():
        return fold(text)
    data, a, b = source
    folded = bytes(data[a:b]).translate(_UTF8_FOLD, _UTF8_CONTINUATION)  # (bytes of bytes: no copy)
    return folded if len(folded) == len(text) else fold(text)


Hits = list[tuple[int, int]]
#: (index, start, end) of anchor-pattern matches; start is 0 for patterns compiled without it.
AnchorHits = list[tuple[int, int, int]]
#: (id, start, end) of every match, in one id space: keywords first, then the full-scan
#: regexes, then the anchor patterns.  Keyword starts are ``end - len(keyword)`` (Hyperscan
#: reports 0), full-scan matches carry only their end, anchor patterns their start if asked.
RawHits = list[tuple[int, int, int]]
#: An anchor pattern and whether Hyperscan reports where its matches start.
Anchor = tuple[str, bool]


class Prefilter(Protocol):
    """Finds keyword occurrences, full-scan regex matches and anchor-pattern starts."""

    name: str
    #: Indexes (into the ``full`` sequence given at build time) that this engine scans natively.
    native_full: frozenset[int]

    def hits(self, text: str, folded: bytes | None = None) -> RawHits:
        """Every match as ``(id, start, end)`` (see :data:`RawHits`), in no particular order.
        *folded*: ``fold(text)``, where the caller has it (:func:`fold_source`)."""
        ...

    def scan(self, text: str) -> tuple[Hits, Hits, AnchorHits]:
        """Return ``[(keyword index, start)]``, ``[(full index, end)]`` and ``[(anchor index, start, end)]``."""
        ...


class _Split:
    """:meth:`Prefilter.scan` on top of :meth:`Prefilter.hits`."""

    _lengths: list[int]
    _nkw: int
    _nfull: int

    def hits(self, text: str, folded: bytes | None = None) -> RawHits:
        raise NotImplementedError

    def scan(self, text: str) -> tuple[Hits, Hits, AnchorHits]:
        nkw, nfull, lengths = self._nkw, self._nfull, self._lengths
        raw = self.hits(text)
        return (
            [(i, e - lengths[i]) for i, _s, e in raw if i < nkw],
            [(i - nkw, e) for i, _s, e in raw if nkw <= i < nfull],
            [(i - nfull, s, e) for i, s, e in raw if i >= nfull],
        )


class PythonPrefilter(_Split):
    """``bytes.find`` per keyword; no native dependency."""

    name = "python"
    native_full: frozenset[int] = frozenset()

    def __init__(self, keywords: Sequence[str]) -> None:
        self._keywords = [k.encode("ascii", "replace") for k in keywords]
        self._lengths = [len(k) for k in keywords]
        self._nkw = self._nfull = len(keywords)

    def hits(self, text: str, folded: bytes | None = None) -> RawHits:
        low = (fold(text) if folded is None else folded).lower()
        hits: RawHits = []
        append = hits.append
        find = low.find
        for i, kw in enumerate(self._keywords):
            n = len(kw)
            pos = find(kw)
            while pos >= 0:
                append((i, pos, pos + n))
                pos = find(kw, pos + 1)
        return hits


class AhoCorasickPrefilter(_Split):
    """One Aho-Corasick automaton over all keywords (pyahocorasick)."""

    name = "ahocorasick"
    native_full: frozenset[int] = frozenset()

    def __init__(self, keywords: Sequence[str]) -> None:
        assert _aho is not None
        self._automaton: Any = _aho.Automaton()
        for i, kw in enumerate(keywords):
            self._automaton.add_word(kw, (i, len(kw)))
        self._automaton.make_automaton()
        self._empty = not keywords
        self._lengths = [len(k) for k in keywords]
        self._nkw = self._nfull = len(keywords)

    def hits(self, text: str, folded: bytes | None = None) -> RawHits:
        if self._empty:
            return []
        low = (fold(text) if folded is None else folded).lower().decode("ascii")
        return [(i, end - n + 1, end + 1) for end, (i, n) in self._automaton.iter(low)]


def _hs_literal(kw: str) -> bytes:
    return "".join(c if c.isalnum() else f"\\x{ord(c):02x}" for c in kw).encode("ascii")


class PrefilterCompileError(Exception):
    """Hyperscan rejected a pattern of the database."""


def hs_accepted(regexes: Sequence[str], *, som: bool = False) -> list[bool]:
    """For each of *regexes*, whether Hyperscan accepts it.  One compile when all are
    accepted (the usual case: each compile costs milliseconds at start-up), else one each.
    """
    if _hs is None:
        return [False] * len(regexes)
    if not regexes:
        return []
    flags = (_hs.HS_FLAG_CASELESS | _hs.HS_FLAG_SOM_LEFTMOST) if som else 0

    def compiles(batch: Sequence[str]) -> bool:
        try:
            _hs.Database().compile(
                expressions=[r.encode("ascii") for r in batch], ids=list(range(len(batch))), flags=[flags] * len(batch)
            )
        except Exception:  # hyperscan.error, or a non-ASCII pattern
            return False
        return True

    if compiles(regexes):
        return [True] * len(regexes)
    return [compiles([r]) for r in regexes]


class HyperscanPrefilter(_Split):
    """One Hyperscan database: caseless literals for keywords, the full-scan regexes, and
    caseless start-of-match patterns for rules that Hyperscan anchors itself.
    """

    name = "hyperscan"

    def __init__(
        self, keywords: Sequence[str], full: Sequence[str | None], anchors: Sequence[Anchor], *, cache: bool = False
    ) -> None:
        assert _hs is not None
        self._cache = cache
        self._nkw = len(keywords)
        self._nfull = self._nkw + len(full)
        self._lengths = [len(k) for k in keywords]
        self._lock = threading.Lock()  # one scratch space: scans must not overlap
        self._db: Any = None
        try:
            self._compile(keywords, full, anchors, [rx is not None for rx in full])
        except PrefilterCompileError:
            som = [rx for rx, with_start in anchors if with_start]
            plain = [rx for rx, with_start in anchors if not with_start]
            if not (all(hs_accepted(som, som=True)) and all(hs_accepted(plain))):
                raise  # an anchor pattern: the caller retries without the rejected ones
            # A full-scan regex that Hyperscan rejects runs in Python re over the whole text.
            ok = iter(hs_accepted([rx for rx in full if rx is not None]))
            self._compile(keywords, full, anchors, [rx is not None and next(ok) for rx in full])

    def _compile(
        self, keywords: Sequence[str], full: Sequence[str | None], anchors: Sequence[Anchor], use: Sequence[bool]
    ) -> None:
        exprs: list[bytes] = [_hs_literal(k) for k in keywords]
        ids = list(range(len(keywords)))
        flags = [_hs.HS_FLAG_CASELESS] * len(keywords)
        native: set[int] = set()
        for j, rx in enumerate(full):
            if rx is None or not use[j]:
                continue
            exprs.append(rx.encode("ascii"))
            ids.append(self._nkw + j)
            flags.append(0)
            native.add(j)
        for k, (rx, with_start) in enumerate(anchors):
            exprs.append(rx.encode("ascii"))
            ids.append(self._nfull + k)
            flags.append(_hs.HS_FLAG_CASELESS | (_hs.HS_FLAG_SOM_LEFTMOST if with_start else 0))
        self.native_full = frozenset(native)
        if exprs:
            self._db, self._scratch = _hs_database(exprs, ids, flags, cache=self._cache)

    def hits(self, text: str, folded: bytes | None = None) -> RawHits:
        if self._db is None:
            return []
        raw: RawHits = []
        append = raw.append

        def on_match(ident: int, start: int, to: int, _flags: int, _ctx: object) -> None:
            append((ident, start, to))

        data = fold(text) if folded is None else folded
        with self._lock:
            self._db.scan(data, match_event_handler=on_match, scratch=self._scratch)
        return raw


_HS_CACHE: Final = "hyperscan"


def _hs_database(exprs: Sequence[bytes], ids: Sequence[int], flags: Sequence[int], *, cache: bool) -> tuple[Any, Any]:
    """A block-mode database of the patterns and its scratch space.

    With *cache*, the compiled database (tens of milliseconds to build) is kept in the
    sanitizer's cache under a hash of every pattern, id and flag and of the Hyperscan
    version; Hyperscan itself refuses a serialized database of another version or CPU
    platform, and then it is compiled again.
    """
    if not cache:
        return _hs_compile(exprs, ids, flags)
    key = hashlib.sha256()
    key.update(f"{_hs.__version__}\0{len(exprs)}\0".encode())
    for expr, ident, flag in zip(exprs, ids, flags, strict=True):
        key.update(b"%d\0%d\0%d\0%b\0" % (ident, flag, len(expr), expr))
    digest = key.digest()
    blob = _cache.load(_HS_CACHE, digest)
    if blob is not None:
        # hyperscan.error (another version or CPU platform) or a damaged entry: compile again.
        with contextlib.suppress(Exception):
            db = _hs.loadb(blob, _hs.HS_MODE_BLOCK)
            return db, _hs.Scratch(db)
    db, scratch = _hs_compile(exprs, ids, flags)
    with contextlib.suppress(Exception):  # the cache is an optimization only
        _cache.store(_HS_CACHE, digest, _hs.dumpb(db))
    return db, scratch


def _hs_compile(exprs: Sequence[bytes], ids: Sequence[int], flags: Sequence[int]) -> tuple[Any, Any]:
    db = _hs.Database()
    try:
        db.compile(expressions=list(exprs), ids=list(ids), flags=list(flags))
    except Exception as exc:  # hyperscan.error
        raise PrefilterCompileError(str(exc)) from None
    return db, _hs.Scratch(db)


_NAMED_GROUP: Final = re.compile(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>")


def hs_form(regex: str) -> str:
    """The Hyperscan spelling of a Python regex: named groups become plain groups."""
    return _NAMED_GROUP.sub("(?:", regex)


def resolve_engine(engine: str | None = None) -> str:
    """The engine that will run: *engine*, else ``$SESSIONSEAL_SANITIZER_ENGINE``, else the best
    installed; a requested native engine that is not installed degrades to the next one.
    """
    choice = engine or os.environ.get("SESSIONSEAL_SANITIZER_ENGINE") or available_engines()[0]
    if choice not in ENGINES:
        raise ValueError(f"unknown sanitizer engine {choice!r}; choose one of {', '.join(ENGINES)}")
    if choice == "hyperscan" and _hs is not None:
        return "hyperscan"
    if choice in ("hyperscan", "ahocorasick") and _aho is not None:
        return "ahocorasick"
    return "python"


def build_prefilter(
    keywords: Sequence[str],
    full: Sequence[str | None],
    engine: str,
    anchors: Sequence[Anchor] = (),
    *,
    cache: bool = False,
) -> Prefilter:
    """Build the prefilter for a resolved *engine* (see :func:`resolve_engine`).

    :param keywords: lowercase literals.
    :param full: per full-scan rule, its Hyperscan-compatible regex (or None: Python only).
    :param anchors: Hyperscan patterns of rules it anchors itself, each with whether it reports
        the start of its match (else only ends) (only with the ``hyperscan`` engine).
    :param cache: keep the compiled Hyperscan database in the on-disk cache (:mod:`._cache`);
        only for patterns that hold nothing private.
    """
    if engine == "hyperscan":
        return HyperscanPrefilter(keywords, full, anchors, cache=cache)
    if anchors:
        raise ValueError("anchor patterns need the hyperscan engine")
    if engine == "ahocorasick":
        return AhoCorasickPrefilter(keywords)
    return PythonPrefilter(keywords)
