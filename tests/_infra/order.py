"""The order the test files run in: the heaviest first (``file_weights.json``, written by
scripts/test_weights.py from a junit report of a whole run).

CI runs two xdist workers with ``--dist loadfile --no-loadscope-reorder``: each worker takes
the next whole file from the front of the queue when it is free.  With the heaviest files
first, the last files handed out are the lightest, so both workers finish at about the same
time (longest processing time first).  xdist's own order (most tests first) put the files with
a few long tests (a three-device sync, the kill tests) last, and one worker ran them alone
while the other was idle.  A file's tests keep their order and stay together (module-scoped
fixtures); files without a weight keep their collection order, after the weighed ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

_WEIGHTS = Path(__file__).with_name("file_weights.json")


def heaviest_files_first(items: list[pytest.Item]) -> None:
    try:
        weights: dict[str, int] = json.loads(_WEIGHTS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # no weights: collection order
    first_seen: dict[str, int] = {}
    for item in items:
        first_seen.setdefault(item.nodeid.split("::", 1)[0], len(first_seen))

    def key(item: pytest.Item) -> tuple[int, int]:
        path = item.nodeid.split("::", 1)[0]
        return (-weights.get(path, 0), first_seen[path])

    items.sort(key=key)
