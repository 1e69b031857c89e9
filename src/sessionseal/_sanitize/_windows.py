"""Where a window rule's regex is searched: the lines around its hits (see :mod:`._engine`)."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator

__all__ = ["gated_matches", "merged_windows"]


def merged_windows(spans: list[tuple[int, int]], text: str) -> Iterator[tuple[int, int]]:
    """The *spans* around a rule's hits, overlapping ones merged, each widened to line
    boundaries (up to 512 characters before, 4096 after) so a match is never cut by it."""
    n = len(text)
    spans.sort()
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    for wa, wb in merged:
        a = max(0, wa)
        b = min(n, wb)
        nl = text.rfind("\n", max(0, a - 512), a)
        a = nl + 1 if nl >= 0 else max(0, a - 512)
        nl = text.find("\n", b, b + 4096)
        yield a, (nl if nl >= 0 else min(n, b + 4096))


def gated_matches(
    pattern: re.Pattern[str], text: str, a: int, b: int, *, ends: list[int], least: int, most: int
) -> Iterator[re.Match[str]]:
    """``pattern.finditer(text, a, b)`` of a rule whose matches all begin with a match of its
    shape, which is *least* to *most* characters long and ends at one of the sorted *ends*
    Hyperscan reported (every end of every match of the shape).  So no match starts before
    the first end at ``pos + least`` or later, less *most*, and none at all where there is
    no such end: the regex is searched only from there, not over the whole widened window
    (whole lines, up to 4 KiB after the hit).  The same matches as ``finditer``: each
    starts where it would (a search from ``pos`` and one from later find the same first
    match when none can start in between) and none is empty (each holds the shape's).
    """
    pos = a
    while True:
        j = bisect_left(ends, pos + least)
        if j == len(ends) or ends[j] > b:
            return
        m = pattern.search(text, max(pos, ends[j] - most), b)
        if m is None:
            return
        yield m
        pos = m.end() if m.end() > m.start() else m.end() + 1
