# The optional compiled accelerator (_ctok.c): types for mypy; _tokens imports it when built.
from collections.abc import Callable

def count_translated(
    raw: bytes, terms_of_run: Callable[[bytes], tuple[tuple[bytes, ...], int]], /
) -> tuple[dict[bytes, int], int]: ...
def pack_fields(
    fields: list[tuple[int, bytes]], terms_of_run: Callable[[bytes], tuple[tuple[bytes, ...], int]], /
) -> tuple[bytes, bytes, bytes, tuple[int, ...]]: ...
def invert_rows(
    terms: list[bytes], ords: bytes, tfs: bytes, masks: bytes, /
) -> tuple[bytes, bytes, bytes, bytes, bytes]: ...
def gather_terms(
    moved: bytes, dfs: bytes, deltas: bytes, tfs: bytes, masks: bytes, /
) -> tuple[bytes, bytes, bytes, bytes]: ...
