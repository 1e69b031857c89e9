"""A search's page (``_search._paged``): its items run in order until the page is full, a
light item on the caller's thread and a heavy one (a large session) on the pool, with the
same hits either way."""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from sessionseal._vault import _search
from sessionseal._vault._results import SearchHit


def _hit(x: int) -> SearchHit:
    return SearchHit(str(x), "", "", "", "")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 99), max_size=40), st.integers(0, 25), st.integers(0, 100))
def test_a_page_holds_the_first_hits_in_order_wherever_each_ran(items: list[int], limit: int, cut: int) -> None:
    caller = threading.get_ident()
    ran: dict[int, int] = {}

    def fn(x: int) -> SearchHit | None:
        ran[x] = threading.get_ident()
        return _hit(x) if x % 3 else None  # every third item is no hit (a phrase not confirmed)

    out: list[SearchHit] = []
    done = _search._paged(fn, items, limit, out, lambda x: x < cut)
    expected = [str(x) for x in items if x % 3][:limit]
    assert [h.id for h in out] == expected
    assert done <= len(items)
    for x, ident in ran.items():
        if x < cut:
            assert ident == caller  # light: no future, no hand-off of the GIL
        else:
            assert ident != caller  # heavy: its decryption overlaps the caller's work
