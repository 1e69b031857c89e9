"""The matching core: prefilter hits -> rule regexes -> checks -> non-overlapping findings.

One pass of the prefilter (:mod:`._native`) finds where each rule's keywords occur.  An
"anchor" rule's regex is then matched once at each of its keyword hits (``pattern.match``
at the hit), a "window" rule's regex is searched in a small window around its hits, and
a "full" rule is scanned natively by Hyperscan (then confirmed by Python ``re`` near the
reported end offset) or, without Hyperscan, searched over the whole text.  Each match is
checked (allowlist, placeholders, entropy floor, the rule's named check, in
:mod:`._valuechecks`) and the
surviving candidates are resolved: lower ``priority`` first, then longer spans, and no
two findings overlap each other or a placeholder already in the text.
"""

from __future__ import annotations

import operator
import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate, repeat
from typing import Final, NamedTuple

from . import _cache
from . import _checks as checks
from ._native import (
    Prefilter,
    PrefilterCompileError,
    RawHits,
    build_prefilter,
    fold_source,
    hs_accepted,
    hs_form,
    resolve_engine,
)
from ._rules import Allowlist, Rule
from ._shape import (
    Intl,
    KeywordPattern,
    finditer_lines,
    folded_keyword,
    intl_table,
    no_text_anchor,
    shapes,
    starts_lines,
)
from ._valuechecks import CHECKS, LATE_CHECKS, STRIPPED_CHECKS
from ._windows import gated_matches, merged_windows

__all__ = ["PLACEHOLDER", "Finding", "Scanner"]

#: Placeholders already in a text are left alone, so sanitizing twice is a no-op.
#: Both forms: with a fingerprint (tokens) and without (everything a person may have chosen).
PLACEHOLDER: Final = re.compile(r"\[REDACTED:[a-z0-9-]+(?::[0-9a-f]{8})?\]")

_QUOTED_GROUPS: Final = frozenset({"dq", "sq", "eq", "bq", "xq"})
_TRAILING: Final = frozenset(",;.)]}>")
_COOKIE_PAIR: Final = re.compile(r"([A-Za-z0-9_.\-~!#$%&'*+^`|]{1,128})=([^;,\s\"\\]{1,4096})")
_UUID: Final = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_UUID_SPAN: Final = re.compile(_UUID.pattern[1:-1])


def _starts_in(spans: list[tuple[int, int]], pos: int) -> bool:
    """Whether *pos* falls strictly inside one of the (sorted, disjoint) *spans*."""
    return any(a < pos < b for a, b in spans)


class Finding(NamedTuple):
    """A secret at ``text[start:end]`` found by rule ``rule_id``."""

    start: int
    end: int
    rule_id: str


# (rank, rule id, start, end, rule, match, secret group): literals carry no rule, cookie pairs
# no match.  The rank orders candidates best first: lower priority, then longer span, then
# earlier start, then the rule's place in the catalogue; one int compares fast.
_Candidate = tuple[int, str, int, int, "Rule | None", "re.Match[str] | None", "int | str | None"]
_by_rank: Final = operator.itemgetter(0)
#: A text's UTF-8 form (surrogateescape) as ``(data, start, end)``, where the caller has it.
Source = tuple[bytes, int, int]
_ONES: Final = b"\x01" * 4096
_Match = Callable[[str, int], "re.Match[str] | None"]
_LEN_BITS: Final = 24
_POS_BITS: Final = 40
_RULE_BITS: Final = 12
_MAX_LEN: Final = (1 << _LEN_BITS) - 1
#: How a candidate's span is adjusted: as matched, without trailing punctuation, or cut into cookie values.
_PLAIN, _STRIP, _COOKIE = 0, 1, 2
# What _accept needs of a rule, unpacked once: (rule, rule id, secret groups, span adjustment,
# minimum length, UUIDs allowed, rank base, rule index).
_Spec = tuple[Rule, str, tuple["int | str", ...], int, int, bool, int, int]
#: A rule Hyperscan anchors itself: (rule index, pattern, reports starts, and when only ends
#: are reported, how far before an end its keyword starts: at most, at least; and whether the
#: pattern only gates the rule's keyword windows instead, see _other_candidates).
_AnchorSpec = tuple[int, str, bool, int, int, bool]
#: A start-of-match pattern: (match, spec, the rule's keyword search).
_Som = tuple[_Match, _Spec, KeywordPattern]
#: An end-only pattern of fixed width: (match, spec, width, the rule's keywords as one pattern).
_Fixed = tuple[_Match, _Spec, int, KeywordPattern]
#: Any other end-only pattern: (match, spec, how far before the end its keyword starts at most,
#: at least, the keywords' search, the longest keyword).
_Varying = tuple[_Match, _Spec, int, int, KeywordPattern, int]


def _rank(priority: int, start: int, end: int, rule_index: int) -> int:
    length = min(end - start, _MAX_LEN)
    return ((((priority << _LEN_BITS) + (1 << _LEN_BITS) - length) << _POS_BITS) + start) << _RULE_BITS | rule_index


class Scanner:
    """Finds secrets in text with a rule set and a prefilter engine."""

    def __init__(
        self, rules: Sequence[Rule], allowlist: Allowlist, literals: Iterable[str] = (), engine: str | None = None
    ) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.priorities: dict[str, int] = {r.id: r.priority for r in self.rules}
        if len(self.rules) >= (1 << _RULE_BITS) - 1:
            raise ValueError(f"at most {(1 << _RULE_BITS) - 2} rules")
        # What _rank computes, split into per-rule constants for the hot path in _accept.
        self._specs: list[_Spec] = [
            (
                r,
                r.id,
                r.secret_groups,
                _COOKIE if r.check == "cookie" else _STRIP if r.check in STRIPPED_CHECKS else _PLAIN,
                r.min_length,
                r.allow_uuid,
                (r.priority << _LEN_BITS) + (1 << _LEN_BITS),
                i,
            )
            for i, r in enumerate(self.rules)
        ]
        self._literal_index = len(self.rules)
        self.allowlist = allowlist
        self._literals = tuple(sorted({lit for lit in literals if lit}, key=len, reverse=True))
        self.engine = resolve_engine(engine)
        self._joinable_db: Prefilter | None = None
        self._joinable_ok = False
        self._anchor_has_start: list[bool] = []
        self._full: list[int] = [ri for ri, r in enumerate(self.rules) if r.mode == "full"]
        self._line_anchored = frozenset(
            ri for ri, r in enumerate(self.rules) if r.mode == "window" and starts_lines(r.regex)
        )
        # Rules that Hyperscan anchors itself need no keyword hits: those with a hand-written
        # pattern (hs_prefilter, often with start of match), and every other anchor rule whose
        # regex gives a bounded shape (see _shape: a superset of where the regex can match).
        # Hyperscan accepts all of ours, so build optimistically (each compile costs
        # milliseconds of start-up) and sort out the rejected ones only on failure.
        anchors: list[_AnchorSpec] = []
        if self.engine == "hyperscan":
            rules = self.rules
            for ri, r in enumerate(rules):
                if r.hs_prefilter:
                    anchors.append((ri, str(r.hs_prefilter), r.hs_som, r.before, 0, False))
            plain = [ri for ri, r in enumerate(rules) if r.mode in ("anchor", "window") and not r.hs_prefilter]
            # A shape no longer than an anchor rule's shortest keyword would report what the
            # keyword does.  A window rule's shape gates its windows: one without a match of
            # the shape cannot hold a match of the regex.  A gate shorter than the rule's
            # shortest keyword is dropped: it is a common word next to the rare keywords
            # (``message`` for ``messagebird``, ``user`` for Redis's ``acl setuser``, ``echo``
            # for ``chpasswd``), reported thousands of times per MB to gate a few windows.
            wanted = [
                (rules[ri].regex, min(map(len, rules[ri].keywords)) + (rules[ri].mode == "anchor")) for ri in plain
            ]
            # Shapes make the Hyperscan database slower to build (about 0.2 s instead of 40 ms),
            # so only a database that the start-up cache keeps gets them: the built-in catalogue
            # alone, with the cache on.  With user rules or literals (from the encrypted
            # configuration, never cached) the rules keep their keywords, with the same findings.
            cached = not self._literals and all(r.builtin for r in rules) and _cache.cache_dir() is not None
            derived = shapes(wanted, cache=True) if cached else [None] * len(wanted)
            anchors.extend(
                (ri, d[0], False, d[2], d[1], rules[ri].mode == "window")
                for ri, d in zip(plain, derived, strict=True)
                if d is not None
            )
        try:
            self._layout(anchors)
        except PrefilterCompileError:
            self._layout([a for a in anchors if hs_accepted([a[1]], som=a[2])[0]])

    def _layout(self, anchors: list[_AnchorSpec]) -> None:
        """Build the keyword table and the prefilter, with *anchors* left to Hyperscan."""
        anchored = [a[0] for a in anchors]
        self._anchored = anchored
        # Each anchor pattern as Hyperscan has it, and whether it reports starts (the tree
        # walk's joined scan, _joinable and _find_in_joined, reads them).
        self._anchor_patterns = [(a[1], a[2]) for a in anchors]
        native_anchor = {a[0] for a in anchors if not a[5]}
        # Window rules gated by a shape: the shape's shortest and longest match, by rule.
        self._gated = {a[0]: (a[4], a[3]) for a in anchors if a[5]}
        self._kw_bytes: dict[int, tuple[bytes, ...]] = {
            ri: tuple(kw.encode("ascii", "replace") for kw in self.rules[ri].keywords) for ri in anchored
        }
        self._kw_max = {ri: max(map(len, self._kw_bytes[ri]), default=0) for ri in anchored}
        by_keyword: dict[str, list[int]] = {}
        intl: dict[str, list[int]] = {}
        for ri, rule in enumerate(self.rules):
            if rule.mode == "full" or ri in native_anchor:
                continue
            folded = [folded_keyword(k) if rule.mode == "anchor" else k for k in rule.keywords]
            for kw in dict.fromkeys(folded):
                if not kw.isascii():
                    intl.setdefault(kw, []).append(ri)
                    continue
                # Two keywords that hit at one place are prefixes of each other, and an anchor
                # rule is tried at the hit's start: its longer keyword adds nothing.
                if rule.mode == "anchor" and any(k != kw and kw.startswith(k) for k in folded):
                    continue
                by_keyword.setdefault(kw, []).append(ri)
        keywords = list(by_keyword)
        # Each rule's match method, or until the rule is first tried, a stand-in that compiles
        # its regex and then puts the real method in its places (see _first_match).
        self._kw_anchor: list[tuple[tuple[_Match, _Spec], ...]] = []
        self._kw_other: list[tuple[int, ...]] = []
        self._kw_of_rule: dict[int, list[int]] = defaultdict(list)
        rules = self.rules
        for kwi, kw in enumerate(keywords):
            ris = by_keyword[kw]
            anchor = [ri for ri in ris if rules[ri].mode == "anchor"]
            self._kw_anchor.append(tuple((self._first_match(ri), self._specs[ri]) for ri in anchor))
            for ri in anchor:
                self._kw_of_rule[ri].append(kwi)
            self._kw_other.append(tuple(ri for ri in ris if rules[ri].mode != "anchor"))
        self._intl: Intl[_Spec] | None = intl_table(intl, self._specs)
        self._literal_base = len(keywords)
        keywords.extend(lit.lower() for lit in self._literals)
        self._keywords = keywords
        self._kw_len = [len(k) for k in keywords]
        # Prefilter ids: keywords and literals, then full-scan rules, then anchor patterns.
        self._nkw = len(keywords)
        self._nfull = self._nkw + len(self._full)
        self._anchor_tables(anchors)
        full_hs: list[str | None] = [hs_form(self.rules[ri].hs_regex or self.rules[ri].regex) for ri in self._full]
        # Only the built-in catalogue's database is cached on disk: user rules and literals
        # come from the encrypted configuration and may name internal hosts or customers.
        cacheable = not self._literals and all(r.builtin for r in self.rules)
        self.prefilter: Prefilter = build_prefilter(
            keywords, full_hs, self.engine, [(rx, som) for _ri, rx, som, _hi, _lo, _g in anchors], cache=cacheable
        )
        self._python_full = [ri for j, ri in enumerate(self._full) if j not in self.prefilter.native_full]

    def _anchor_tables(self, anchors: list[_AnchorSpec]) -> None:
        """What the hot loop does with each anchor pattern's reports (see _candidates)."""
        anchored = self._anchored
        # Per anchor pattern: the (match, spec) of its rule when Hyperscan reports where matches start.
        # Each anchored rule's keywords as one pattern over the text itself: what fold() and
        # bytes.lower() would find (ASCII letters in either case; "?" for any non-ASCII).
        # (Compiled when first used: 356 patterns would cost 10 ms of every start.)
        self._kw_re = {ri: KeywordPattern(self._kw_bytes[ri]) for ri in set(anchored)}
        # Per anchor pattern that reports starts: its rule's match, spec and keyword search.
        self._anchor_som: list[_Som | None] = [
            (self._first_match(ri), self._specs[ri], self._kw_re[ri]) if som else None
            for ri, _rx, som, _hi, _lo, _g in anchors
        ]
        # A fixed-width shape that ends at e starts at e - width: its keyword is checked there,
        # and the rule tried once, in the hot loop.
        self._anchor_fixed: list[_Fixed | None] = [
            (self._first_match(ri), self._specs[ri], hi, self._kw_re[ri])
            if not som and not gate and 0 < lo == hi
            else None
            for ri, _rx, som, hi, lo, gate in anchors
        ]
        # Any other end-only pattern: its keywords are searched between the longest and the
        # shortest width before the end, in the hot loop too.
        self._anchor_varying: list[_Varying | None] = [
            (self._first_match(ri), self._specs[ri], hi, lo, self._kw_re[ri], self._kw_max[ri])
            if not som and not gate and not 0 < lo == hi
            else None
            for ri, _rx, som, hi, lo, gate in anchors
        ]

    def _first_match(self, ri: int) -> _Match:
        """Rule *ri*'s ``pattern.match`` that compiles the regex when first called, then
        puts the compiled pattern's own method in its places in the hot tables."""

        def first(text: str, pos: int) -> re.Match[str] | None:
            match = self.rules[ri].pattern.match
            spec = self._specs[ri]
            for kwi in self._kw_of_rule.get(ri, ()):
                self._kw_anchor[kwi] = tuple((match if s is spec else m, s) for m, s in self._kw_anchor[kwi])
            if ri in self._anchored:
                k = self._anchored.index(ri)
                som = self._anchor_som[k]
                if som is not None:
                    self._anchor_som[k] = (match, *som[1:])
                fixed = self._anchor_fixed[k]
                if fixed is not None:
                    self._anchor_fixed[k] = (match, *fixed[1:])
                varying = self._anchor_varying[k]
                if varying is not None:
                    self._anchor_varying[k] = (match, *varying[1:])
            return match(text, pos)

        return first

    def prepare(self, go_on: Callable[[], bool]) -> None:
        """Compile rule regexes while *go_on* (): the Hyperscan-anchored rules first (they are
        tried most), then the others in catalogue order."""
        for ri in sorted(range(len(self.rules)), key=lambda ri: ri not in self._anchored):
            if not go_on():
                return
            _ = self.rules[ri].pattern

    # ------------------------------------------------------------------ public

    def find(self, text: str) -> list[Finding]:
        """Every secret in *text*, sorted, non-overlapping, never inside an existing placeholder."""
        return [Finding(s, e, r) for s, e, r in self.find_spans(text)]

    def find_spans(
        self, text: str, hits: RawHits | None = None, source: Source | None = None
    ) -> list[tuple[int, int, str]]:
        """:meth:`find` as ``(start, end, rule id)`` tuples (no objects to build in the hot path).

        *hits*: the prefilter's hits of *text*, when they are known (:meth:`find_spans_of_parts`).
        *source*: ``(data, a, b)``, where ``data[a:b]`` is *text* in UTF-8 (surrogateescape).
        """
        if not text:
            return []
        cands = self._candidates(text, hits, source)
        if not cands:
            return []
        # One byte per character of text: 1 where a kept finding or a placeholder already is.
        taken = bytearray(len(text))
        placeholders: list[tuple[int, int]] = []
        if "[REDACTED:" in text:
            for m in PLACEHOLDER.finditer(text):
                taken[m.start() : m.end()] = _ONES[: m.end() - m.start()]
                placeholders.append(m.span())
        kept: list[tuple[int, int, str]] = []
        keep = kept.append
        verify = self._verify
        overlaps = taken.find
        # Best candidates first.  A candidate that overlaps one already kept can never be
        # kept, so its (costlier) value checks are skipped: they run only for candidates
        # that would win.  The result is the same as checking every candidate first.
        cands.sort(key=_by_rank)
        for cand in cands:
            start = cand[2]
            end = cand[3]
            if overlaps(b"\x01", start, end) >= 0:
                continue  # overlaps a placeholder or a better finding
            if placeholders and cand[5] is not None and _starts_in(placeholders, cand[5].start()):
                # The match begins inside a placeholder: its context (a secret *name*, as
                # ``[REDACTED:mysql-password-flag]"=…`` would give) is our own redaction, so
                # sanitizing a sanitized text again would find something new.
                continue
            if not verify(cand, text, 0):
                continue
            n = end - start
            taken[start:end] = _ONES[:n] if n <= 4096 else b"\x01" * n
            keep((start, end, cand[1]))
        kept.sort()
        return kept

    def find_spans_of_parts(self, parts: Sequence[str]) -> dict[int, list[tuple[int, int, str]]]:
        """:meth:`find_spans` of each of *parts*, for the parts that hold any: ``{index: spans}``.

        The same as calling :meth:`find_spans` on each part, with one prefilter pass over the
        parts joined by newlines (about 1 MiB at a time) instead of one per part: a call costs
        about as much as 10 kB of text, and a session holds tens of thousands of short strings.
        A part with no hit of its own has no finding and is not looked at again; the others get
        their own hits back from the joined pass, translated, and only a part whose hits cannot
        be told apart from a neighbour's (a shape Hyperscan reports without its start, or whose
        leftmost start lies in the part before) is scanned again alone.  Sound because every
        hit a part alone gives also ends inside it in the joined text: keywords are literals,
        and a pattern with no ``^``, ``$``, ``\\A`` or ``\\Z`` sees the newline before a
        part as it sees the start of a text (a non-word character); without that (or with
        full-scan rules that Python runs over every text), each part is scanned alone.  It needs
        :meth:`Prefilter.hits` to report *every* match, as its contract says (no Hyperscan
        single-match flag, no early stop): a pattern's first match would be one part's only.
        """
        out: dict[int, list[tuple[int, int, str]]] = {}
        if not self._joinable():
            for j, part in enumerate(parts):
                if spans := self.find_spans(part):
                    out[j] = spans
            return out
        # offs[j]: where part j starts if all were joined; offs[j + 1] - 1: the newline after it.
        offs = list(accumulate(map(operator.add, map(len, parts), repeat(1)), initial=0))
        # Passes over about _JOIN_CHUNK characters each: the joined text and its folded copy
        # stay small next to the session, and a pass still covers thousands of parts.
        first, n = 0, len(parts)
        while first < n:
            stop = min(n, bisect_left(offs, offs[first] + _JOIN_CHUNK, first + 1))
            self._find_in_joined(parts, first, stop, offs, out)
            first = stop
        return out

    def _find_in_joined(  # noqa: PLR0912 - one branch per kind of hit
        self, parts: Sequence[str], first: int, stop: int, offs: list[int], out: dict[int, list[tuple[int, int, str]]]
    ) -> None:
        """:meth:`find_spans_of_parts` for ``parts[first:stop]``, in one prefilter pass."""
        joined = "\n".join(parts[first:stop])
        raw = self.prefilter.hits(joined)
        groups: dict[int, RawHits | None] = {}
        if self._intl is not None and not joined.isascii():  # (a flag of the string: no scan)
            # Non-ASCII keywords are no prefilter's (see _intl_candidates): a part that may hold
            # one is looked at whatever its hits.
            for j in range(first, stop):
                if not parts[j].isascii():
                    groups[j] = []
        if not raw and not groups:
            return
        base = offs[first]
        nkw, nfull, kw_len, som = self._nkw, self._nfull, self._kw_len, self._anchor_has_start
        # Hits come about in order of their ends, many in one part: the part of the last hit is
        # tried first.  lo, hi: where that part starts and where the newline after it ends, in
        # the joined text; hits: its list so far, or None when it is to be scanned again.
        j = 0
        lo = hi = -1
        hits: RawHits | None = None
        for i, s, e in raw:
            if e <= lo or e > hi:
                j = bisect_right(offs, base + e - 1, first, stop) - 1
                lo, hi = offs[j] - base, offs[j + 1] - base
                if j in groups:
                    hits = groups[j]
                else:
                    hits = groups[j] = []
            if hits is None or e == hi:
                continue  # to be scanned again anyway, or ends on the newline: no part's own hit
            if i < nkw:
                if e - kw_len[i] < lo:
                    continue  # begins in the part before
                hits.append((i, e - kw_len[i] - lo, e - lo))
            elif i >= nfull and som[i - nfull] and s >= lo:
                hits.append((i, s - lo, e - lo))
            else:
                hits = groups[j] = None
        for j, part_hits in groups.items():
            if part_hits == [] and (self._intl is None or parts[j].isascii()):
                continue  # only hits of its neighbours
            if spans := self.find_spans(parts[j], part_hits):
                out[j] = spans

    def _joinable(self) -> bool:
        """Whether a text's prefilter hits include those of its newline-separated parts (see
        :meth:`find_spans_of_parts`); decided once per database."""
        if self._joinable_db is not self.prefilter:
            rules = self.rules
            shapes = [rx for rx, _som in self._anchor_patterns]
            shapes += [
                hs_form(rules[ri].hs_regex or rules[ri].regex)
                for j, ri in enumerate(self._full)
                if j in self.prefilter.native_full
            ]
            self._joinable_ok = not self._python_full and all(no_text_anchor(rx) for rx in shapes)
            self._anchor_has_start = [som for _rx, som in self._anchor_patterns]
            self._joinable_db = self.prefilter
        return self._joinable_ok

    def has_secret(self, text: str, depth: int = 1) -> bool:
        """True when *text* holds any secret (used to judge decoded base64)."""
        return any(self._verify(c, text, depth) for c in self._candidates(text))

    # ------------------------------------------------------------------ candidates

    def _candidates(self, text: str, hits: RawHits | None = None, source: Source | None = None) -> list[_Candidate]:  # noqa: PLR0912, PLR0915 - the hot loop, one branch per kind of hit
        out: list[_Candidate] = []
        kw_len = self._kw_len
        kw_anchor = self._kw_anchor
        kw_other = self._kw_other
        lit_base = self._literal_base
        nfull = self._nfull
        anchor_som = self._anchor_som
        anchor_fixed = self._anchor_fixed
        anchor_varying = self._anchor_varying
        seen: set[tuple[int, int]] = set()
        accept = self._accept
        rest: list[tuple[int, int, int]] = []  # hits that take one of the slower paths below
        # The hot loop: a keyword hit tries its anchor rules at the keyword, a start-of-match
        # shape its rule at the start Hyperscan reports.  (Hyperscan reports one start per
        # end, and these shapes rarely end twice after one start: a second report of a start
        # only yields the same candidate again, which loses to its twin.)
        for i, s, e in self.prefilter.hits(text, fold_source(text, source)) if hits is None else hits:
            if i < lit_base:
                start = e - kw_len[i]
                for match, spec in kw_anchor[i]:
                    m = match(text, start)
                    if m is not None:
                        accept(spec, m, text, out)
                if kw_other[i]:
                    rest.append((i, start, e))
            elif i >= nfull and (som := anchor_som[i - nfull]) is not None:
                match, spec, kws = som
                m = match(text, s)
                if m is not None:
                    accept(spec, m, text, out)
                # Hyperscan reports the leftmost start of each end: a keyword further in that
                # begins a match with the same end (``TOKEN:PASSWORD=...``) is tried here.
                kwm = kws.search(text, s + 1, e)
                k = i - nfull
                while kwm is not None:
                    at = kwm.start()
                    if (k, at) not in seen:
                        seen.add((k, at))
                        m = match(text, at)
                        if m is not None:
                            accept(spec, m, text, out)
                    kwm = kws.search(text, at + 1, e)
            elif i >= nfull and (fixed := anchor_fixed[i - nfull]) is not None:
                match, spec, width, kw_re = fixed
                start = e - width
                if start >= 0 and kw_re.match(text, start) is not None:
                    m = match(text, start)
                    if m is not None:
                        accept(spec, m, text, out)
            elif i >= nfull and (varying := anchor_varying[i - nfull]) is not None:
                # Only the end is known: the rule is tried at its keywords that start between
                # the longest and the shortest width before it (a keyword may run past the end
                # of a shape cut short).
                match, spec, most, least, kws, longest = varying
                a = e - most if e > most else 0
                last = e - least
                kwm = kws.search(text, a, last + longest)
                k = i - nfull
                while kwm is not None and (at := kwm.start()) <= last:
                    if (k, at) not in seen:
                        seen.add((k, at))
                        m = match(text, at)
                        if m is not None:
                            accept(spec, m, text, out)
                    kwm = kws.search(text, at + 1, last + longest)
            else:
                rest.append((i, s, e))
        if rest or self._python_full:
            self._other_candidates(text, rest, out)
        if self._intl is not None and not text.isascii():
            self._intl_candidates(text, out, source)
        return out

    def _intl_candidates(self, text: str, out: list[_Candidate], source: Source | None) -> None:
        """Anchor rules at their non-ASCII keywords (``пароль``, ``密码``).  The prefilter sees
        every non-ASCII character as ``?``, so these keywords are found here, the same on
        every engine: ``str.find`` of a non-ASCII character of each keyword (a C loop, and no
        scan at all for a character wider than any of the text's), and at each one a
        comparison with the keywords that hold it.  With the text's UTF-8 *source*, only a
        character whose lead byte is there (``memchr``) is looked for: ``str.find`` scans a
        text of two bytes per character (one ``→`` makes it so) at the pace of the
        character's low byte, which is common (``D`` for ``비``, ``?`` for ``п``)."""
        assert self._intl is not None
        accept = self._accept
        rules = self.rules
        find = text.find
        tried: set[tuple[int, int]] = set()
        for c, entries in self._intl.items():
            if source is not None and source[0].find(c.encode()[0], source[1], source[2]) < 0:
                continue  # not even its UTF-8 lead byte in the text
            p = find(c)
            while p >= 0:
                for j, kw, n, anchored in entries:
                    start = p - j
                    if start >= 0 and text[start : start + n].lower() == kw:
                        for ri, spec in anchored:
                            if (start, ri) not in tried:
                                tried.add((start, ri))
                                m = rules[ri].pattern.match(text, start)
                                if m is not None:
                                    accept(spec, m, text, out)
                p = find(c, p + 1)

    def _other_candidates(self, text: str, hits: list[tuple[int, int, int]], out: list[_Candidate]) -> None:  # noqa: PLR0912 - one branch per kind of hit
        """Literals, window and blob rules, full-scan rules and end-only shapes."""
        rules = self.rules
        specs = self._specs
        accept = self._accept
        anchored = self._anchored
        lit_base = self._literal_base
        nkw = self._nkw
        nfull = self._nfull
        gate_ends: dict[int, list[int]] = defaultdict(list)
        tried: set[tuple[int, int]] = set()
        windows: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for i, start, end in hits:
            if i < lit_base:
                for ri in self._kw_other[i]:
                    rule = rules[ri]
                    if rule.mode == "blob":
                        a, b = checks.blob_around(text, start)
                        if (ri, a) in tried:
                            continue
                        tried.add((ri, a))
                        m = rule.pattern.match(text, a, b)
                        if m is not None:
                            accept(specs[ri], m, text, out)
                    else:
                        windows[ri].append((start - rule.before, end + rule.after))
            elif i < nkw:
                self._literal_hit(text, end - self._kw_len[i], i - lit_base, out)
            elif i < nfull:
                ri = self._full[i - nkw]
                rule = rules[ri]
                windows[ri].append((end - max(rule.before, 256), end + rule.after))
            else:
                # A window rule's shape: where it ends gates the rule's windows (below).
                k = i - nfull
                gate_ends[anchored[k]].append(end)
        for ri in self._python_full:
            for m in rules[ri].pattern.finditer(text):
                accept(specs[ri], m, text, out)
        for ri, spans in windows.items():
            spec = specs[ri]
            pattern = rules[ri].pattern
            lines = ri in self._line_anchored
            gated = self._gated.get(ri)
            ends = sorted(gate_ends.get(ri, ())) if gated is not None else None
            for a, b in merged_windows(spans, text):
                if gated is not None and ends is not None:
                    # A match in [a, b] begins with a match of the shape that ends in [a + least, b].
                    j = bisect_left(ends, a + gated[0])
                    if j == len(ends) or ends[j] > b:
                        continue
                    if not lines:
                        for m in gated_matches(pattern, text, a, b, ends=ends, least=gated[0], most=gated[1]):
                            accept(spec, m, text, out)
                        continue
                for m in finditer_lines(pattern, text, a, b) if lines else pattern.finditer(text, a, b):
                    accept(spec, m, text, out)

    def _literal_hit(self, text: str, start: int, li: int, out: list[_Candidate]) -> None:
        lit = self._literals[li]
        end = start + len(lit)
        if text[start:end].lower() == lit.lower():
            out.append((_rank(0, start, end, self._literal_index), "literal", start, end, None, None, None))

    # ------------------------------------------------------------------ checks

    def _accept(self, spec: _Spec, m: re.Match[str], text: str, out: list[_Candidate]) -> None:
        """Add a match's secret span as a candidate; only the cheap, span-defining tests run here."""
        rule, rule_id, groups, adjust, min_length, allow_uuid, base, index = spec
        group: int | str | None = m.lastgroup
        if group is None or group not in groups:
            for g in groups:
                if m.start(g) >= 0:
                    group = g
                    break
            else:
                return
        start, end = m.span(group)
        if start >= end:
            return
        if adjust:
            if adjust == _COOKIE:
                for pm in _COOKIE_PAIR.finditer(text, start, end):
                    s, e = pm.span(2)
                    if e - s >= 8:
                        out.append((_rank(rule.priority, s, e, index), rule_id, s, e, rule, None, None))
                return
            if text[end - 1] in _TRAILING and group not in _QUOTED_GROUPS:
                value = text[start:end]
                end -= len(value) - len(checks.strip_trailing(value))
        n = end - start
        if n < min_length or (n == 36 and not allow_uuid and _UUID_SPAN.fullmatch(text, start, end)):
            return
        rank = ((base - (n if n < _MAX_LEN else _MAX_LEN)) << _POS_BITS | start) << _RULE_BITS | index
        out.append((rank, rule_id, start, end, rule, m, group))

    def _verify(self, cand: _Candidate, text: str, depth: int) -> bool:  # noqa: PLR0911 - cheapest rejections first
        """The value checks of a candidate: allowlist, placeholders, the rule's check, entropy floor."""
        rule, m, group = cand[4], cand[5], cand[6]
        if rule is None:
            return True  # a literal
        value = text[cand[2] : cand[3]]
        if m is None:  # a cookie pair
            return not checks.is_placeholder(value) and not self.allowlist.allows(value)
        check = rule.check
        quoted = group in _QUOTED_GROUPS
        if check is not None and check not in LATE_CHECKS:
            # name-based checks are cheap and selective: run them first
            if not CHECKS[check](self, rule, m, text, value, quoted, depth):
                return False
            if self.allowlist.allows(value):
                return False
        else:
            if self.allowlist.allows(value) or checks.is_placeholder(value):
                return False
            if check is not None and not CHECKS[check](self, rule, m, text, value, quoted, depth):
                return False
        return not (
            rule.entropy is not None and check != "key-assignment" and checks.shannon_entropy(value) < rule.entropy
        )


#: About how many characters of parts :meth:`Scanner.find_spans_of_parts` joins for one pass.
_JOIN_CHUNK: Final = 1 << 20
