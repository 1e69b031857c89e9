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

import importlib
import os
import re
import threading
from collections.abc import Sequence
from typing import Any, Final, Protocol

__all__ = [
    "ENGINES",
    "Prefilter",
    "PrefilterCompileError",
    "available_engines",
    "build_prefilter",
    "fold",
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


Hits = list[tuple[int, int]]
#: (index, start, end) of anchor-pattern matches; start is 0 for patterns compiled without it.
AnchorHits = list[tuple[int, int, int]]
#: An anchor pattern and whether Hyperscan reports where its matches start.
Anchor = tuple[str, bool]


class Prefilter(Protocol):
    """Finds keyword occurrences, full-scan regex matches and anchor-pattern starts."""

    name: str
    #: Indexes (into the ``full`` sequence given at build time) that this engine scans natively.
    native_full: frozenset[int]

    def scan(self, text: str) -> tuple[Hits, Hits, AnchorHits]:
        """Return ``[(keyword index, start)]``, ``[(full index, end)]`` and ``[(anchor index, start, end)]``."""
        ...


class PythonPrefilter:
    """``bytes.find`` per keyword; no native dependency."""

    name = "python"
    native_full: frozenset[int] = frozenset()

    def __init__(self, keywords: Sequence[str]) -> None:
        self._keywords = [k.encode("ascii", "replace") for k in keywords]

    def scan(self, text: str) -> tuple[Hits, Hits, AnchorHits]:
        folded = fold(text).lower()
        hits: Hits = []
        append = hits.append
        find = folded.find
        for i, kw in enumerate(self._keywords):
            pos = find(kw)
            while pos >= 0:
                append((i, pos))
                pos = find(kw, pos + 1)
        return hits, [], []


class AhoCorasickPrefilter:
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

    def scan(self, text: str) -> tuple[Hits, Hits, AnchorHits]:
        if self._empty:
            return [], [], []
        folded = fold(text).lower().decode("ascii")
        return [(i, end - n + 1) for end, (i, n) in self._automaton.iter(folded)], [], []


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


class HyperscanPrefilter:
    """One Hyperscan database: caseless literals for keywords, the full-scan regexes, and
    caseless start-of-match patterns for rules that Hyperscan anchors itself.
    """

    name = "hyperscan"

    def __init__(self, keywords: Sequence[str], full: Sequence[str | None], anchors: Sequence[Anchor]) -> None:
        assert _hs is not None
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
            db = _hs.Database()
            try:
                db.compile(expressions=exprs, ids=ids, flags=flags)
            except Exception as exc:  # hyperscan.error
                raise PrefilterCompileError(str(exc)) from None
            self._db = db
            self._scratch: Any = _hs.Scratch(db)

    def scan(self, text: str) -> tuple[Hits, Hits, AnchorHits]:
        if self._db is None:
            return [], [], []
        raw: list[tuple[int, int, int]] = []
        append = raw.append

        def on_match(ident: int, start: int, to: int, _flags: int, _ctx: object) -> None:
            append((ident, start, to))

        data = fold(text)
        with self._lock:
            self._db.scan(data, match_event_handler=on_match, scratch=self._scratch)
        nkw = self._nkw
        lengths = self._lengths
        kw_hits = [(i, to - lengths[i]) for i, _s, to in raw if i < nkw]
        if len(kw_hits) == len(raw):
            return kw_hits, [], []
        nfull = self._nfull
        full_hits = [(i - nkw, to) for i, _s, to in raw if nkw <= i < nfull]
        anchor_hits = [(i - nfull, s, t) for i, s, t in raw if i >= nfull]
        return kw_hits, full_hits, anchor_hits


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
    keywords: Sequence[str], full: Sequence[str | None], engine: str, anchors: Sequence[Anchor] = ()
) -> Prefilter:
    """Build the prefilter for a resolved *engine* (see :func:`resolve_engine`).

    :param keywords: lowercase literals.
    :param full: per full-scan rule, its Hyperscan-compatible regex (or None: Python only).
    :param anchors: Hyperscan patterns of rules it anchors itself, each with whether it reports
        the start of its match (else only ends) (only with the ``hyperscan`` engine).
    """
    if engine == "hyperscan":
        return HyperscanPrefilter(keywords, full, anchors)
    if anchors:
        raise ValueError("anchor patterns need the hyperscan engine")
    if engine == "ahocorasick":
        return AhoCorasickPrefilter(keywords)
    return PythonPrefilter(keywords)
