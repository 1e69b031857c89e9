"""Hyperscan "shapes" derived from rule regexes, so a keyword occurrence that cannot start a
match never reaches Python.

An anchor rule's regex is matched in Python at each occurrence of its keywords.  Most
occurrences fail (``"input_tokens":3``, the word "token" in prose, ``key = None``), and
each one costs a callback, a regex match and bookkeeping.  :func:`shape` turns the rule's
own regex into a Hyperscan pattern that matches *at least* where the regex can start, so
Hyperscan, which runs the automaton over every byte anyway, reports only places where the
regex may match.  The engine then tries the rule, as before, at each keyword occurrence
inside a reported match (see ``Scanner._shape_hit``): what Python does per finding is
unchanged; only hopeless keyword hits are skipped.

The shape is a *prefix superset* of the regex on the folded text (:func:`._native.fold`:
one byte per character, non-ASCII as ``?``): whenever the regex matches ``text[s:e]``,
the shape matches some ``folded[s:e2]`` starting at the same ``s``.  It is built from
Python's own parse of the regex (``re._parser``), not from its spelling:

* every single-character test becomes an explicit byte class, computed under the scoped
  flags: case-insensitive letters get both cases, and ``?`` is added wherever the Python
  test can match a non-ASCII character (``\\w``, ``\\s``, negated classes, ``.``, and the
  letters i, k, s under IGNORECASE, which match U+0130/U+0131, U+212A and U+017F);
* possessive and atomic constructs become plain ones (they only ever reject);
* lookbehinds, negative lookaheads, anchors and word boundaries are dropped (``\\b`` of
  Unicode text is not Hyperscan's ``\\b`` of folded bytes); a positive lookahead becomes
  what it looks at, and the shape stops there (the prefix so far is what is kept);
* the tail is trimmed: a trailing optional part is dropped, a trailing repeat keeps its
  minimum, so that a long value gives one report, not one per character;
* the shape ends at the first repeat without a small bound (``+``, ``*``, ``{8,}``,
  ``{1,1024}``), which keeps its minimum count (at most :data:`_MAX_COUNT`): every shape
  has a longest match, so the engine knows how far before a reported end the keyword is,
  without Hyperscan's costly start-of-match tracking.

A shape that would match fewer than :data:`_MIN_WIDTH` characters, or that uses something
this module does not know (a backreference at the start, a future opcode), is None: the
rule keeps its keyword hits.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any, Final, TypeVar

__all__ = [
    "SHAPE_VERSION",
    "Intl",
    "KeywordPattern",
    "finditer_lines",
    "folded_keyword",
    "intl_table",
    "keyword_pattern",
    "no_text_anchor",
    "shape",
    "shapes",
    "starts_lines",
]

#: Bumped whenever the derivation changes (it is part of the start-up cache's key).
SHAPE_VERSION: Final = 4
#: A shape must match at least this many characters to be worth a Hyperscan pattern.
_MIN_WIDTH: Final = 4
#: Repeat counts are capped here (``{40}`` -> ``{16}``, ``{8,200}`` -> ``{8,}``).
_MAX_COUNT: Final = 16
#: Longer bounded repeats become unbounded (``{0,4096}`` -> ``{0,}``: Hyperscan builds them slowly).
_MAX_BOUND: Final = 256
_QMARK: Final = ord("?")
#: ASCII letters that Python's IGNORECASE also matches to a non-ASCII character.
_UNICODE_CASE: Final = frozenset(map(ord, "iIkKsS"))


class _Unsupported(Exception):
    """The regex uses something no shape is derived for."""


def _ascii_set(pattern: str) -> frozenset[int]:
    rx = re.compile(pattern)
    return frozenset(c for c in range(128) if rx.fullmatch(chr(c)))


_CATEGORIES: dict[str, frozenset[int]] = {}


def _category(name: str) -> frozenset[int]:
    found = _CATEGORIES.get(name)
    if found is None:
        spelled = {
            "CATEGORY_DIGIT": r"\d",
            "CATEGORY_NOT_DIGIT": r"\D",
            "CATEGORY_SPACE": r"\s",
            "CATEGORY_NOT_SPACE": r"\S",
            "CATEGORY_WORD": r"\w",
            "CATEGORY_NOT_WORD": r"\W",
        }.get(name)
        if spelled is None:
            raise _Unsupported(name)
        found = _CATEGORIES[name] = _ascii_set(spelled)
    return found


def _cased(chars: set[int], ignorecase: bool) -> set[int]:
    if ignorecase:
        chars |= {ord(chr(c).swapcase()) for c in chars if chr(c).isalpha()}
        if chars & _UNICODE_CASE:
            chars.add(_QMARK)
    return chars


def _class(items: list[tuple[Any, Any]], ignorecase: bool) -> set[int]:
    """The folded bytes a Python character class (``IN`` items) can match."""
    chars: set[int] = set()
    negate = False
    wide = False  # the class can match a non-ASCII character
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            if av < 128:
                chars.add(av)
            else:
                wide = True
        elif name == "RANGE":
            lo, hi = av
            chars.update(range(lo, min(hi, 127) + 1))
            wide = wide or hi >= 128
        elif name == "CATEGORY":
            chars |= _category(str(av))
            wide = True  # Unicode digits, letters and spaces; and their complements
        else:
            raise _Unsupported(name)
    chars = _cased(chars, ignorecase)
    if negate:
        # Some non-ASCII character is always left, and it folds to "?".
        return (set(range(128)) - chars) | {_QMARK}
    if wide:
        chars.add(_QMARK)
    return chars


def _emit(chars: set[int]) -> str:
    if not chars:
        raise _Unsupported("empty class")
    out = []
    run: list[int] = []
    for c in sorted(chars):
        if run and c == run[-1] + 1:
            run.append(c)
            continue
        if run:
            out.append(_span(run))
        run = [c]
    out.append(_span(run))
    return "[" + "".join(out) + "]"


def _span(run: list[int]) -> str:
    if len(run) <= 2:
        return "".join(f"\\x{c:02x}" for c in run)
    return f"\\x{run[0]:02x}-\\x{run[-1]:02x}"


class _Builder:
    def __init__(self, state: Any, *, fixed: bool = False) -> None:
        self.state = state  # the parse's state: group widths, for backreferences
        # Fixed width: the shape also ends before the first part whose width varies, so every
        # match of it has one length and the engine knows exactly where the keyword starts.
        self.fixed = fixed

    def _width(self, items: list[tuple[Any, Any]]) -> tuple[int, int]:
        lo, hi = _sre_parser.SubPattern(self.state, items).getwidth()
        return int(lo), int(hi)

    def seq(self, items: list[tuple[Any, Any]], flags: int, *, tail: bool, may_stop: bool) -> tuple[str, bool, int]:
        """(pattern, stopped, minimum width) of a sequence of parse items."""
        items = list(items)
        if tail:
            # Trailing parts that may be empty add nothing to a prefix superset.
            while items and _sre_parser.SubPattern(self.state, [items[-1]]).getwidth()[0] == 0:
                items.pop()
        out: list[str] = []
        width = 0
        for i, item in enumerate(items):
            last = i == len(items) - 1
            text, stopped, w = self.item(item, flags, tail=tail and last, may_stop=may_stop)
            out.append(text)
            width += w
            if stopped:
                return "".join(out), True, width
        return "".join(out), False, width

    def _fixed_cut(self, item: tuple[Any, Any], flags: int, *, may_stop: bool) -> tuple[str, bool, int] | None:
        """Where a fixed-width shape ends at *item* (its width varies), what it keeps of it."""
        lo, hi = self._width([item])
        if lo == hi:
            return None
        if not may_stop:
            raise _Unsupported("variable width")
        op, av = item
        if str(op) in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and av[0] >= 1:
            body_lo, body_hi = self._width(list(av[2].data))
            if body_lo == body_hi:
                text, _, w = self.seq(av[2].data, flags, tail=False, may_stop=False)
                count = min(av[0], _MAX_COUNT)
                return f"(?:{text}){{{count}}}", True, w * count
        return "", True, 0  # the prefix so far

    def item(self, item: tuple[Any, Any], flags: int, *, tail: bool, may_stop: bool) -> tuple[str, bool, int]:  # noqa: PLR0911, PLR0912 - one branch per opcode
        op, av = item
        name = str(op)
        icase = bool(flags & re.IGNORECASE)
        if self.fixed and name not in ("SUBPATTERN", "ATOMIC_GROUP", "ASSERT", "ASSERT_NOT", "AT"):
            cut = self._fixed_cut(item, flags, may_stop=may_stop)
            if cut is not None:
                return cut
        if name == "LITERAL":
            return _emit(_cased({av} if av < 128 else {_QMARK}, icase)), False, 1
        if name == "NOT_LITERAL":
            return _emit(_class([(_NEGATE, None), (_LITERAL, av)], icase)), False, 1
        if name == "ANY":
            chars = set(range(128)) if flags & re.DOTALL else set(range(128)) - {10}
            return _emit(chars), False, 1
        if name == "IN":
            return _emit(_class(av, icase)), False, 1
        if name == "AT":
            return "", False, 0  # anchors and boundaries: dropped
        if name in ("ASSERT", "ASSERT_NOT"):
            direction, sub = av
            if name == "ASSERT" and direction == 1 and may_stop:
                if self.fixed and len(set(self._width(list(sub.data)))) > 1:
                    return "", True, 0
                text, _, w = self.seq(sub.data, flags, tail=True, may_stop=True)
                if w > 0:
                    return text, True, w  # consumed, and the shape ends here
            return "", False, 0
        if name in ("SUBPATTERN", "ATOMIC_GROUP"):
            if name == "SUBPATTERN":
                _group, add, remove, sub = av
                flags = (flags | add) & ~remove
            else:
                sub = av
            text, stopped, w = self.seq(sub.data, flags, tail=tail, may_stop=may_stop)
            return f"(?:{text})", stopped, w
        if name == "BRANCH":
            _, branches = av
            parts = [self.seq(b.data, flags, tail=tail, may_stop=may_stop) for b in branches]
            stopped = any(p[1] for p in parts)
            return "(?:" + "|".join(p[0] for p in parts) + ")", stopped, min(p[2] for p in parts)
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            lo, hi, sub = av
            lo = min(lo, _MAX_COUNT)
            if tail or hi >= _MAXREPEAT or hi > _MAX_BOUND:
                # The shape ends here (bounded, and one report per match): the least it must match.
                if not (tail or may_stop):
                    raise _Unsupported("unbounded repeat")
                if lo == 0:
                    return "", True, 0
                text, stopped, w = self.seq(sub.data, flags, tail=False, may_stop=True)
                return (f"(?:{text})", True, w) if stopped else (f"(?:{text}){{{lo}}}", True, w * lo)
            try:
                text, stopped, w = self.seq(sub.data, flags, tail=False, may_stop=may_stop and lo > 0)
            except _Unsupported:
                if not may_stop:
                    raise
                return "", True, 0  # an optional part that cannot be bounded: the shape ends before it
            if stopped:
                return f"(?:{text})", True, w  # one repetition's prefix, then the end
            return f"(?:{text}){{{lo},{hi}}}", False, w * lo
        if name in ("GROUPREF", "GROUPREF_EXISTS"):
            if may_stop:
                return "", True, 0  # what it matches is not known here: the prefix so far
            raise _Unsupported(name)
        raise _Unsupported(name)


try:  # CPython's own regex parser (private; part of ``re`` since 3.11, so already loaded)
    from re import _constants as _sre  # type: ignore[attr-defined]
    from re import _parser as _sre_parser  # type: ignore[attr-defined]

    _NEGATE, _LITERAL, _MAXREPEAT = _sre.NEGATE, _sre.LITERAL, _sre.MAXREPEAT
except (ImportError, AttributeError):  # pragma: no cover - another Python: no shapes, keywords as before
    _sre_parser = None
    _NEGATE = _LITERAL = _MAXREPEAT = None


def shape(regex: str, min_width: int = _MIN_WIDTH, *, fixed: bool = False) -> str | None:
    """The Hyperscan shape of *regex* (see the module doc), or None where none is derived or
    where its shortest match is shorter than *min_width*; with *fixed*, a shape whose matches
    all have one length (it ends before the first part of varying width)."""
    if _sre_parser is None:
        return None
    try:
        parsed = _sre_parser.parse(regex)
        flags = parsed.state.flags
        text, _, width = _Builder(parsed.state, fixed=fixed).seq(parsed.data, flags, tail=True, may_stop=True)
        if width < max(min_width, _MIN_WIDTH) or not _selective(_sre_parser.parse(text).data):
            return None
    except Exception:  # anything this derivation does not know: the rule keeps its keywords
        return None
    return text


def _selective(items: Any) -> bool:
    """Whether a shape holds a run of three narrow characters (a letter in either case counts
    as one) wherever it matches: a shape of only broad classes (``[A-Za-z0-9]{8}``) would
    report nearly everywhere, and the keywords serve better."""
    run = 0
    for op, av in items:
        name = str(op)
        if name == "LITERAL" or (name == "IN" and _narrow(av)):
            run += 1
            if run >= 3:
                return True
            continue
        if run and run + _lead([(op, av)]) >= 3:
            return True  # the run goes on into a group or into every branch
        run = 0
        if name == "SUBPATTERN" and _selective(av[3].data):
            return True
        if name == "BRANCH" and all(_selective(b.data) for b in av[1]):
            return True
        if name in ("MAX_REPEAT", "MIN_REPEAT") and av[0] >= 1 and _selective(av[2].data):
            return True
    return False


def _lead(items: Any) -> int:
    """How many narrow characters a sequence surely starts with."""
    n = 0
    for op, av in items:
        name = str(op)
        if name == "LITERAL" or (name == "IN" and _narrow(av)):
            n += 1
            continue
        if name == "SUBPATTERN":
            return n + _lead(av[3].data)
        if name == "BRANCH":
            return n + min(_lead(b.data) for b in av[1])
        return n
    return n


def _narrow(items: Any) -> bool:
    size = 0
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            size += 1
        elif name == "RANGE":
            size += av[1] - av[0] + 1
        else:
            return False
    return size <= 3


def shape_width(pattern: str) -> int | None:
    """The longest match of a shape, or None when it is unbounded."""
    widths = shape_widths(pattern)
    return None if widths is None else widths[1]


def shape_widths(pattern: str) -> tuple[int, int] | None:
    """The shortest and the longest match of a shape, or None when it is unbounded."""
    if _sre_parser is None:
        return None
    lo, hi = _sre_parser.parse(pattern).getwidth()
    return None if hi >= _MAXREPEAT else (int(lo), int(hi))


_SHAPE_CACHE: Final = "shapes"


def shapes(regexes: list[tuple[str, int]], *, cache: bool) -> list[tuple[str, int, int] | None]:
    """Per (regex, shortest useful match), its shape in Hyperscan syntax (case-sensitive,
    ``(?-i)`` first) with the shape's shortest and longest match, or None.  With *cache*
    (the built-in catalogue only: user rules may name internal hosts), the result is kept in
    the start-up cache: deriving costs about half a millisecond per rule, which a filter's
    start-up should not pay."""
    import hashlib
    import json
    import sys

    from . import _cache

    key = b""
    if cache:
        digest = hashlib.sha256(f"{SHAPE_VERSION}\0{sys.version}\0".encode())
        for rx, least in regexes:
            raw = rx.encode("utf-8", "surrogatepass")
            digest.update(b"%d\0%d\0%b" % (least, len(raw), raw))
        key = digest.digest()
        blob = _cache.load(_SHAPE_CACHE, key)
        if blob is not None:
            try:
                got = json.loads(blob)
                if isinstance(got, list) and len(got) == len(regexes):
                    return [(str(x[0]), int(x[1]), int(x[2])) if x else None for x in got]
            except (ValueError, TypeError, IndexError):
                pass  # not what this process would have stored: derive again
    out: list[tuple[str, int, int] | None] = []
    for rx, least in regexes:
        # Fixed width where that is still selective (the cheapest for the engine), else bounded.
        found = shape(rx, least, fixed=True) or shape(rx, least)
        widths = shape_widths(found) if found is not None else None
        out.append(("(?-i)" + found, *widths) if found is not None and widths is not None else None)
    if cache:
        import contextlib

        with contextlib.suppress(Exception):  # the cache is an optimization only
            _cache.store(_SHAPE_CACHE, key, json.dumps(out).encode("utf-8"))
    return out


# -- regex facts the scanner needs besides shapes -------------------------------------------


def no_text_anchor(regex: str) -> bool:
    """True when *regex* (Hyperscan syntax) has no ``^``, ``$``, ``\\A``, ``\\Z``, ``\\z`` or
    ``\\G`` outside a character class: it matches a part of a text as it matches the part alone."""
    i, n, in_class = 0, len(regex), False
    while i < n:
        c = regex[i]
        if c == "\\":
            if not in_class and regex[i + 1 : i + 2] in ("A", "Z", "z", "G"):
                return False
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
            i += 1
            if regex[i : i + 1] == "^":
                i += 1
            if regex[i : i + 1] == "]":
                i += 1  # a ] first in a class is a literal
            continue
        elif c in "^$":
            return False
        i += 1
    return True


def folded_keyword(kw: str) -> str:
    """A non-ASCII keyword as the prefilter sees it (``hasło`` -> ``has?o``) when three or more
    ASCII letters make that distinctive, so the prefilter finds it on every engine; otherwise
    the keyword itself, for :meth:`._engine.Scanner._intl_candidates` (``пароль`` folds to ``??????``).
    Each ``str.find`` of a non-ASCII character there scans the whole text when the text has
    any character as wide (``→`` in every ``Read`` result), and some (``ş``, ``ł``, ``ö``) are
    slow: their low byte is a common ASCII one."""
    if kw.isascii():
        return kw
    folded = kw.encode("ascii", "replace").decode("ascii")
    return folded if sum(c.isalpha() for c in folded) >= 3 else kw


#: A folded keyword's ``?``: any non-ASCII character, or "?" itself.
_NON_ASCII_CLASS: Final = "[?\x80-\U0010ffff]"


def keyword_pattern(keywords: Iterable[bytes], *, for_search: bool = False) -> re.Pattern[str]:
    """Where ``fold(text).lower()`` holds one of the folded *keywords*, found in the text itself:
    ASCII letters in either case (``re.ASCII``: no Kelvin sign for k), and a ``?`` of a keyword
    for any non-ASCII character or "?" (fold() turns the former into the latter).

    *for_search*: the same matches, led by a lookahead of the keywords' first characters, which
    ``re`` uses to skip to the next place a keyword can start (an alternation of literals
    under IGNORECASE is otherwise tried at every position: ``search`` over the 10-40 characters
    of a shape's match costs about 40 % less with it); ``match`` is faster without it."""
    unique = sorted(set(keywords), key=len, reverse=True)
    alternatives = ["".join(_NON_ASCII_CLASS if b == 0x3F else re.escape(chr(b)) for b in kw) for kw in unique]
    body = "|".join(alternatives) or "(?!)"
    if for_search and alternatives and all(unique):
        firsts = sorted({kw[0] for kw in unique})
        lead = "".join(_NON_ASCII_CLASS[1:-1] if b == 0x3F else re.escape(chr(b)) for b in firsts)
        body = f"(?=[{lead}])(?:{body})"
    return re.compile(body, re.IGNORECASE | re.ASCII)


_T = TypeVar("_T")
#: Per non-ASCII character: the keywords holding it, as (offset of the character in the
#: keyword, the keyword, its length, the anchor rules to try at the keyword: (index, spec)).
Intl = dict[str, tuple[tuple[int, str, int, tuple[tuple[int, _T], ...]], ...]]


def intl_table(intl: dict[str, list[int]], specs: list[_T]) -> Intl[_T] | None:
    """Each non-ASCII keyword under its first non-ASCII character, in both cases (a
    keyword's case-insensitive matches hold that character in one of its cases at the same
    offset: the keywords are lowercase and have no character whose case changes its length)."""
    table: dict[str, list[tuple[int, str, int, tuple[tuple[int, _T], ...]]]] = {}
    for kw, ris in intl.items():
        j, c = next((j, c) for j, c in enumerate(kw) if not c.isascii())
        entry = (j, kw, len(kw), tuple((ri, specs[ri]) for ri in ris))
        for v in {c, c.upper(), c.lower()}:
            if len(v) == 1:
                table.setdefault(v, []).append(entry)
    return {c: tuple(entries) for c, entries in table.items()} or None


class KeywordPattern:
    """:func:`keyword_pattern` of *keywords*, compiled when first used: a run tries few of
    the rules, and a filter's start-up should not compile a pattern for each."""

    def __init__(self, keywords: Iterable[bytes]) -> None:
        self._keywords = tuple(keywords)

    def match(self, text: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        # From now on the compiled pattern's own method (instance attributes win).
        self.match = keyword_pattern(self._keywords).match  # type: ignore[method-assign,assignment]
        return self.match(text, pos, endpos)

    def search(self, text: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        self.search = keyword_pattern(self._keywords, for_search=True).search  # type: ignore[method-assign,assignment]
        return self.search(text, pos, endpos)


_GLOBAL_FLAGS: Final = re.compile(r"(?:\(\?[aiLmsux]+\))+")


def starts_lines(regex: str) -> bool:
    """True when every match of *regex* starts a line and is not empty: ``(?m)^`` before
    everything else, then at least one character."""
    flags = _GLOBAL_FLAGS.match(regex)
    if "^" not in regex or flags is None or "m" not in flags.group():
        return False  # MULTILINE can only come from global flags, which Python wants first
    try:
        from re import _constants, _parser  # type: ignore[attr-defined]  # private, used at start-up only

        parsed = _parser.parse(regex)
        first = parsed.data[0] if parsed.data else None
        at_line_start = bool(parsed.state.flags & re.MULTILINE) and first == (_constants.AT, _constants.AT_BEGINNING)
        return at_line_start and parsed.getwidth()[0] > 0
    except Exception:  # another Python's internals: the rule is searched the plain way
        return False


def finditer_lines(pattern: re.Pattern[str], text: str, a: int, b: int) -> Iterator[re.Match[str]]:
    """``pattern.finditer(text, a, b)`` for a pattern whose matches start lines: tried only at line
    starts instead of at every position."""
    if a > 0 and text[a - 1] != "\n":
        nl = text.find("\n", a, b)
        a = nl + 1 if nl >= 0 else b + 1
    match = pattern.match
    find = text.find
    while a <= b:
        m = match(text, a, b)
        if m is not None:
            yield m
            a = m.end()  # never empty: the next search starts where the match ends
            if text[a - 1] == "\n":
                continue
        nl = find("\n", a, b)
        a = nl + 1 if nl >= 0 else b + 1
