"""The harness of the fuzz tests (test_fuzz_*.py, issue 9): mutations, limits, counters.

Every parser of untrusted bytes is fed valid artefacts made by the real code, mutated
(bit flips, overwrites, cuts, insertions, deletions, splices of another file, length fields
set to huge values), and plain random bytes.  The property is always the same: it returns
or raises a :class:`~sessionseal.errors.SessionSealError` (one-line message), within a
deadline and a memory bound; most tests also check that what is returned is what was
written.  Any other exception propagates and fails the test with hypothesis' smallest input.

``SESSIONSEAL_FUZZ_EXAMPLES`` sets the examples per test (default 100; a soak run sets
thousands); with ``SESSIONSEAL_FUZZ_REPORT=<path>`` each test appends
``{"parser", "examples", "seconds"}`` as one JSON line to that file.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import struct
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionseal import _container
from sessionseal._fts import _format
from sessionseal.errors import IntegrityError, SessionSealError

EXAMPLES = int(os.environ.get("SESSIONSEAL_FUZZ_EXAMPLES", "100"))
#: Generous: this VM is noisy.  A slow example fails twice before hypothesis reports it.
DEADLINE = timedelta(seconds=2)
#: An example still running after this is a hang: SIGALRM interrupts it (Python code only).
HANG_SECONDS = 20.0
#: Peak traced memory allowed for one example (its inputs are a few KB).
MEMORY_LIMIT = 64 << 20

SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=DEADLINE,
    derandomize=False,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)

#: Examples run per parser in this process.
COUNTS: Counter[str] = Counter()


class Hang(BaseException):  # a BaseException: no parser under test swallows it
    """An example ran past HANG_SECONDS."""


def _alarm(signum: int, frame: Any) -> None:
    raise Hang(f"an example ran for more than {HANG_SECONDS} s")


def fuzz(
    parser: str, *given_args: st.SearchStrategy[Any], memory: bool = False, **given_kwargs: st.SearchStrategy[Any]
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``@given(...)`` with :data:`SETTINGS`, a hang watchdog per example, an optional memory
    bound per example, an example counter for *parser*, and the report line at the end."""

    def deco(fn: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(fn)
        def example(*args: Any, **kwargs: Any) -> None:
            COUNTS[parser] += 1
            signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
            try:
                with bounded_memory() if memory else contextlib.nullcontext():
                    fn(*args, **kwargs)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)

        test = SETTINGS(given(*given_args, **given_kwargs)(example))

        @functools.wraps(test)
        def run(*args: Any, **kwargs: Any) -> None:
            before, start = COUNTS[parser], time.perf_counter()
            previous = signal.signal(signal.SIGALRM, _alarm)
            try:
                test(*args, **kwargs)
            finally:
                signal.signal(signal.SIGALRM, previous)
                report(parser, COUNTS[parser] - before, time.perf_counter() - start)

        return run

    return deco


def report(parser: str, examples: int, seconds: float) -> None:
    """Append one line to ``$SESSIONSEAL_FUZZ_REPORT`` (when set)."""
    path = os.environ.get("SESSIONSEAL_FUZZ_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"parser": parser, "examples": examples, "seconds": round(seconds, 3)}) + "\n")


@contextlib.contextmanager
def bounded_memory(limit: int = MEMORY_LIMIT) -> Iterator[dict[str, int]]:
    """Fail if the block's peak of traced allocations (above what was live) passes *limit*
    (plus ``budget["output"]``, which the block may set to what it legitimately returned)."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    budget = {"output": 0}
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        yield budget
        peak = tracemalloc.get_traced_memory()[1] - base
        limit += budget["output"]
        assert peak < limit, f"peak memory {peak >> 20} MiB for one example (limit {limit >> 20} MiB)"
    finally:
        if started:
            tracemalloc.stop()


def documented(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, SessionSealError | None]:
    """``(result, None)``, or ``(None, error)`` for a documented error with a one-line message.
    Anything else propagates (and fails the test)."""
    try:
        return fn(*args, **kwargs), None
    except SessionSealError as exc:
        error = exc
    message = str(error)
    assert message and "\n" not in message, f"{type(error).__name__} message is not one line: {message!r}"
    return None, error


# -- mutations ---------------------------------------------------------------------------

#: Values a 32-bit length field is set to: around the frame bounds, and huge.
LENGTHS = (0, 1, 28, 29, 30, 4095, 1 << 20, (1 << 31) - 1, 1 << 31, (1 << 31) + 29, 0xFFFFFFFF)


def frame_offsets(data: bytes, start: int = _container.HEADER_SIZE) -> list[int]:
    """Offsets of the frame prefixes of a well-formed container (body starting at *start*)."""
    out, pos = [], start
    while pos + 5 <= len(data):
        out.append(pos)
        pos += 4 + int.from_bytes(data[pos : pos + 4], "big")
    return out


def _position(draw: st.DrawFn, size: int, hot: Sequence[int]) -> int:
    if len(hot) > 0 and draw(st.booleans()):
        return min(draw(st.sampled_from(hot)) + draw(st.integers(0, 6)), size)
    return draw(st.integers(0, size))


@st.composite
def _mutate(draw: st.DrawFn, original: bytes, hot: Sequence[int], donors: Sequence[bytes]) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(("flip", "overwrite", "cut", "insert", "delete", "splice", "length", "copy")))
        pos = _position(draw, len(data), hot)
        if op == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "overwrite":
            data[pos : pos + 4] = draw(st.binary(min_size=1, max_size=4))
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=40))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "splice" and donors:
            donor = draw(st.sampled_from(donors))
            a = draw(st.integers(0, len(donor)))
            piece = donor[a : a + draw(st.integers(1, 400))]
            if draw(st.booleans()):
                data[pos:pos] = piece
            else:
                data[pos : pos + len(piece)] = piece
        elif op == "length":
            # A frame's length (or any 4 bytes) set to a boundary or huge value.
            value = draw(st.sampled_from(LENGTHS) | st.integers(0, 0xFFFFFFFF))
            data[pos : pos + 4] = struct.pack(">I", value)
        elif op == "copy" and data:
            a = draw(st.integers(0, len(data) - 1))
            data[pos:pos] = data[a : a + draw(st.integers(1, 200))]
    return bytes(data)


def mutations(
    original: bytes, *, hot: Sequence[int] = (), donors: Sequence[bytes] = (), random: int = 600
) -> st.SearchStrategy[bytes]:
    """*original* mutated (mostly), or random bytes of at most *random* bytes (sometimes)."""
    return st.one_of(
        _mutate(original, tuple(hot), tuple(donors)),
        _mutate(original, tuple(hot), tuple(donors)),
        _mutate(original, tuple(hot), tuple(donors)),
        st.binary(max_size=random),
    )


# -- hostile JSON --------------------------------------------------------------------------

#: Scalars that JSON parsers and serializers disagree about.
_AWKWARD = st.sampled_from(
    [
        10**30,
        -(2**63) - 1,
        2**64,
        1e308,
        float("inf"),
        float("-inf"),
        float("nan"),
        -0.0,
        "\ud800",
        "\x00",
        "\u2028",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+01:00",
        "2026-02-30T00:00:00Z",
        "00000000-0000-0000-0000-000000000000",
        "²³",
        "audit.torn-tail",
        "",
        True,
        None,
    ]
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), _AWKWARD)
#: Arbitrary JSON-like values (with keys the models know, so that they reach the validators).
KEYS = st.sampled_from(
    [
        "id",
        "v",
        "seq",
        "mac",
        "base_seq",
        "base_mac",
        "title",
        "tags",
        "status",
        "created_at",
        "updated_at",
        "messages",
        "role",
        "content",
        "type",
        "text",
        "entries",
        "stamps",
        "put",
        "doc",
        "stamp",
        "del",
        "acc",
        "at",
        "rules",
        "regex",
        "audit",
        "rotate_bytes",
        "keep_files",
        "syslog",
        "retention",
        "sanitizer",
        "version",
        "ops",
        "op",
        "value",
        "format",
        "vault_id",
        "key_provider",
        "salt",
        "log2_n",
        "r",
        "p",
        "keys",
        "sessions",
        "_n",
        "models",
        "stats",
        "message_count",
        "cost_usd",
        "size_original",
        "name",
        "reason",
        "tool_history",
        "call_id",
        "source",
        "redactions",
        "generation",
        "detail",
        "file",
        "offset",
        "length",
        "links",
        "action",
    ]
) | st.text(max_size=8)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25,
)


def deep(depth: int, leaf: Any = 0) -> Any:
    """A value nested *depth* levels (lists and dicts alternating)."""
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"x": value}
    return value


#: Depths around the serializers' limits (orjson: 255; pydantic: about 255; json: the recursion limit).
DEPTHS = st.sampled_from([50, 120, 200, 254, 255, 256, 300, 600])


def deep_text(depth: int) -> bytes:
    """JSON text nested *depth* levels: deeper than any value a Python walk could build."""
    return b'{"x":[' * (depth // 2) + b"0" + b"]}" * (depth // 2)


def long_int_text(digits: int) -> bytes:
    """A JSON integer of *digits* digits (Python's parser refuses past 4,300 by default)."""
    return b"9" * digits


#: Issue 18, item 12: JSON text nested 100,000 deep, and integers of thousands of digits.  Both
#: escaped the CLI as internal errors (RecursionError; ValueError past sys.get_int_max_str_digits()).
DEEP_TEXT = deep_text(100_000)
HUGE_TEXTS = st.sampled_from([DEEP_TEXT, long_int_text(5000), b"-" + long_int_text(4301), long_int_text(20)])


def huge_value(kind: str) -> Any:
    """The same as Python values: a 5,000-digit int (built here: hypothesis would print it,
    and printing it raises), or a list/dict nesting 100,000 deep."""
    return 10**5000 if kind == "int" else deep(100_000)


def loads(data: bytes, default: Any = None) -> Any:
    """JSON, or *default* when *data* is not JSON or nested too deep for Python's parser."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return default


def dumps(value: Any) -> bytes:
    """JSON as Python writes it (NaN, Infinity and lone surrogates escaped: it writes anything)."""
    return json.dumps(value).encode()


@st.composite
def _tweaked(draw: st.DrawFn, base: Any) -> Any:
    """*base* (a JSON document) with a few of its values replaced, at any depth."""
    doc = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 4))):
        node, key = doc, None
        path_len = draw(st.integers(0, 4))
        for _ in range(path_len):
            if isinstance(node, dict) and node:
                key = draw(st.sampled_from(sorted(node)))
            elif isinstance(node, list) and node:
                key = draw(st.integers(0, len(node) - 1))
            else:
                break
            child = node[key]
            if not isinstance(child, dict | list):
                break
            node = child
        if isinstance(node, dict):
            k = draw(st.sampled_from(sorted(node)) | KEYS) if node else draw(KEYS)
            if draw(st.integers(0, 5)) == 0:
                node.pop(k, None)
            else:
                node[k] = draw(JSON | DEPTHS.map(deep))
        elif isinstance(node, list):
            node.append(draw(JSON))
    return doc


def tweaked_json(base: Any) -> st.SearchStrategy[bytes]:
    """JSON bytes: *base* with values replaced (mostly), arbitrary JSON, or deep nesting."""
    return st.one_of(
        _tweaked(base).map(dumps),
        _tweaked(base).map(dumps),
        _tweaked(base).map(dumps),
        JSON.map(dumps),
        DEPTHS.map(lambda d: dumps(deep(d))),
        st.sampled_from([1100, 3000]).map(deep_text),
        _planted(base),
        st.binary(max_size=200),
    )


@st.composite
def _planted(draw: st.DrawFn, base: Any) -> bytes:
    """*base* with one value replaced by a :data:`HUGE_TEXTS` text, at any depth."""
    marker = "\ue000planted\ue000"
    doc = json.loads(json.dumps(base))
    node = doc
    for _ in range(draw(st.integers(0, 4))):
        children = [
            k
            for k, v in (node.items() if isinstance(node, dict) else enumerate(node))
            if isinstance(v, dict | list) and v
        ]
        if not children:
            break
        node = node[draw(st.sampled_from(children))]
    if isinstance(node, dict):
        node[draw(st.sampled_from(sorted(node)) | KEYS) if node else draw(KEYS)] = marker
    else:
        node.append(marker)
    return dumps(doc).replace(json.dumps(marker).encode(), draw(HUGE_TEXTS), 1)


def altered(payload: bytes, data: st.DataObject, *, start: int = 0, most: int = 6) -> bytes:
    """*payload* with one byte flipped, or cut, or 1 to *most* bytes inserted, at or after
    *start*: a tamper property's input (tests/unit/test_fts_lookup.py, test_fts_prefix.py)."""
    changed = bytearray(payload)
    at = data.draw(st.integers(min(start, len(payload)), len(payload)))
    how = data.draw(st.sampled_from(["flip", "cut", "grow"]))
    if how == "flip" and at < len(payload):
        changed[at] ^= data.draw(st.integers(1, 255))
    elif how == "cut":
        del changed[at:]
    else:
        changed[at:at] = data.draw(st.binary(min_size=1, max_size=most))
    return bytes(changed)


def altered_delta(payload: bytes, data: st.DataObject) -> tuple[bytes, dict[str, Any] | None]:
    """A full-text delta record's *payload* :func:`altered` after its head, and what decoding
    it whole answers (None: refused): the plain answer a lazy reading of the same bytes must
    give, or refuse."""
    changed = altered(payload, data, start=_format._DELTA_HEAD.size)
    try:
        decoded: dict[str, Any] | None = dict(_format.decode_delta(changed).terms)
    except IntegrityError:
        decoded = None
    return changed, decoded
