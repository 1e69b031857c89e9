"""The rule regexes' compiled form, kept in the start-up cache so a process skips ``re``'s parser.

``re.compile`` parses a pattern and compiles it to the regex engine's code in Python (about
0.4 ms for a rule's regex); building the pattern object from that code is a C call of a few
microseconds.  A ``sessionseal sanitize`` process compiles each rule regex it needs when first
used (see :attr:`._rules.Rule.pattern`): 40 for a region of agent transcripts, 80 for a
region of the dense secret corpus, 13 and 39 ms of every process (each forked worker too).

So when the built-in catalogue is cached (:func:`._rules.default_catalogue`), the code of
every rule regex is cached beside it, under the same key plus this interpreter's version;
the entry is built from ``re``'s own parser and compiler, and only if every pattern built
from the code is equal (``Pattern.__eq__``: same source, flags and code) to
``re.compile``'s.  A process then builds a rule's pattern from the cached code when it first
needs it.  ``_sre.compile`` validates the code it is given (malformed code is an error, not
a crash), and anything unexpected (another Python, a damaged entry) means ``re.compile``,
as without a cache.  The entry holds compiled patterns of the built-in rules only: never
text, never a user's rule.
"""

from __future__ import annotations

import array
import contextlib
import importlib
import json
import re
import struct
import sys
from collections.abc import Sequence
from typing import Any, Final

from . import _cache

__all__ = ["build", "compiled", "use"]

_CACHE: Final = "regex"
_FORMAT: Final = b"sessionseal regex cache 1\0"
_HEADER: Final = struct.Struct("<Q")
#: The regex engine's code words are 32-bit (``SRE_CODE``); ``array("I")`` is 32-bit here too.
_WORD: Final = "I"

#: Per regex (flags 0): the arguments of ``_sre.compile`` after the pattern, the code as a
#: (start, end) slice of :data:`_code`.  Filled by :func:`use` when its entry is first needed.
_table: dict[str, tuple[int, int, int, int, dict[str, int], tuple[str | None, ...]]] = {}
_code: array.array[int] = array.array(_WORD)
#: (cache key, the regexes in the entry's order) of a catalogue whose entry is not loaded yet.
_pending: tuple[bytes, Sequence[str]] | None = None


def _engine() -> tuple[Any, Any, Any] | None:
    """``(_sre, re._parser, re._compiler)``, or None where they are not CPython's as expected."""
    if sys.implementation.name != "cpython" or array.array(_WORD).itemsize != 4:
        return None
    try:
        sre = importlib.import_module("_sre")
        parser = importlib.import_module("re._parser")
        compiler = importlib.import_module("re._compiler")
    except ImportError:
        return None
    if not all(hasattr(m, n) for m, n in ((sre, "compile"), (parser, "parse"), (compiler, "_code"))):
        return None
    return sre, parser, compiler


def _key(catalogue_key: bytes) -> bytes:
    return b"%b%b\0%b\0%b" % (_FORMAT, sys.version.encode(), sys.byteorder.encode(), catalogue_key)


def build(catalogue_key: bytes, regexes: Sequence[str]) -> None:
    """Cache the compiled code of *regexes* (flags 0) under *catalogue_key*; nothing if any
    pattern built from its code is not the one ``re.compile`` gives (another ``re``)."""
    engine = _engine()
    if engine is None:
        return
    sre, parser, compiler = engine
    header: list[list[Any]] = []
    code = array.array(_WORD)
    try:
        for rx in regexes:
            parsed = parser.parse(rx, 0)
            words = compiler._code(parsed, 0)  # re's own compiler (checked below)
            state = parsed.state
            indexgroup: list[str | None] = [None] * state.groups
            for name, i in state.groupdict.items():
                indexgroup[i] = name
            groups, groupindex = state.groups - 1, dict(state.groupdict)
            if sre.compile(rx, state.flags, words, groups, groupindex, tuple(indexgroup)) != re.compile(rx):
                return
            header.append([state.flags, len(code), len(code) + len(words), groups, groupindex, indexgroup])
            code.extend(words)
    except (re.error, TypeError, ValueError, OverflowError, RuntimeError, AttributeError):
        return
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    with contextlib.suppress(Exception):  # the cache is an optimization only
        _cache.store(_CACHE, _key(catalogue_key), _HEADER.pack(len(head)) + head + code.tobytes())


def use(catalogue_key: bytes, regexes: Sequence[str]) -> None:
    """Take the cached code of *regexes* (as :func:`build` stored it) when a rule regex is
    first compiled; nothing is read before."""
    global _pending
    _pending = (catalogue_key, regexes)


def _load() -> None:
    global _pending
    if _pending is None:
        return
    catalogue_key, regexes = _pending
    _pending = None
    if _engine() is None:
        return
    blob = _cache.load(_CACHE, _key(catalogue_key))
    if blob is None or len(blob) < _HEADER.size:
        return
    with contextlib.suppress(ValueError, TypeError, IndexError, OverflowError):
        (n,) = _HEADER.unpack_from(blob)
        header = json.loads(blob[_HEADER.size : _HEADER.size + n])
        code = array.array(_WORD)
        code.frombytes(blob[_HEADER.size + n :])
        if not isinstance(header, list) or len(header) != len(regexes):
            return
        table = {}
        base = len(_code)
        for rx, (flags, start, end, groups, groupindex, indexgroup) in zip(regexes, header, strict=True):
            if not 0 <= start <= end <= len(code):
                return
            table[rx] = (int(flags), base + start, base + end, int(groups), dict(groupindex), tuple(indexgroup))
        _table.update(table)
        _code.extend(code)


def compiled(regex: str) -> re.Pattern[str]:
    """``re.compile(regex)``, from the cached code when there is some."""
    _load()
    entry = _table.get(regex)
    if entry is not None:
        flags, start, end, groups, groupindex, indexgroup = entry
        with contextlib.suppress(RuntimeError, TypeError, ValueError, OverflowError):
            words = _code[start:end].tolist()
            pattern: re.Pattern[str] = sys.modules["_sre"].compile(regex, flags, words, groups, groupindex, indexgroup)
            return pattern
    return re.compile(regex)
