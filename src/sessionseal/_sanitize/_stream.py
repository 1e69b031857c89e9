"""``sessionseal sanitize`` as a filter: bytes in, bytes out, on every CPU.

The input is cut at line starts into regions of at most :data:`CHUNK` bytes.  Each region
is decoded on its own (UTF-8; undecodable bytes pass through unchanged, as surrogate
escapes), with up to :data:`MARGIN` bytes of context on each side, and keeps the findings
that start inside it.  Large inputs are shared among the parent and forked workers, one
process per CPU: each takes the next region as soon as it is free (the regions get smaller
towards the end, so all finish together even when one CPU is slower), decodes, scans,
computes the placeholders and encodes that region's output; the parent writes the outputs
in order as soon as they are ready.

A finding can cross a cut (a key block across a line start), and then it may overlap a
finding of the next region.  So each region's output is split three ways (:class:`Run`):
the *lead*, its first ``MARGIN`` characters, which a finding of the region before may still
overlap; the *body*, final and already encoded; and the *trail*, from the start of a
finding that crosses the region's end, which the next region may still overlap.  Where two
regions meet, the trail of the first and the lead of the second are resolved together (the
better finding wins, as in one pass over the whole text) and only then encoded.  A region
too short to have a body stays all trail until its neighbours resolve it.
"""

from __future__ import annotations

import itertools
import os
import signal
import struct
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO, Final

if TYPE_CHECKING:
    from . import Sanitizer

__all__ = ["CHUNK", "MARGIN", "MIN_CHUNK", "PARALLEL_MIN", "Run", "sanitize_stream"]

ENCODING: Final = "utf-8"
ERRORS: Final = "surrogateescape"
#: Inputs at least this large (in bytes) are shared among forked workers (POSIX only).
PARALLEL_MIN: Final = 2 << 20
#: Work is done in regions of about this many bytes (bounded memory).
CHUNK: Final = 4 << 20
#: The smallest region handed to a worker, at the end of the input (each region costs its margins).
MIN_CHUNK: Final = 1 << 19
#: Context each region sees beyond its own bounds, in bytes, so matches near a cut are complete.
MARGIN: Final = 1 << 16

# (start, end, rule id, placeholder)
_Redaction = tuple[int, int, str, str]
#: Text with its findings, ``start`` is where ``text`` begins relative to some origin (a cut),
#: the findings are relative to the same origin.
_Zone = tuple[int, str, list[_Redaction]]
#: A piece of output: encoded bytes, or (file, offset, size) of encoded bytes a worker wrote.
_Part = bytes | tuple[int, int, int]


def _merge(priority: Callable[[str], int], found: list[_Redaction]) -> list[_Redaction]:
    """Sorted findings without overlaps: of two that overlap, the one with the lower priority
    (then the longer) stays.  Findings of one region never overlap, so only findings of two
    neighbouring regions can meet here."""
    found.sort()
    out: list[_Redaction] = []
    for f in found:
        if out and f[0] < out[-1][1]:
            prev = out[-1]
            if (priority(f[2]), f[0] - f[1]) < (priority(prev[2]), prev[0] - prev[1]):
                out[-1] = f
            continue
        out.append(f)
    return out


def _union(a: _Zone, b: _Zone) -> _Zone:
    """Two zones of the same text (same origin) that touch or overlap, as one."""
    (sa, ta, fa), (sb, tb, fb) = a, b
    if sb < sa:
        (sa, ta, fa), (sb, tb, fb) = (sb, tb, fb), (sa, ta, fa)
    ea = sa + len(ta)
    if sb > ea:
        raise AssertionError("zones do not touch")
    text = ta + tb[ea - sb :] if sb + len(tb) > ea else ta
    return sa, text, fa + fb


def _shift(zone: _Zone, by: int) -> _Zone:
    start, text, found = zone
    return start + by, text, [(s + by, e + by, r, p) for s, e, r, p in found]


def _compose(zone: _Zone, counts: dict[str, int]) -> bytes:
    """The zone's text with its findings (sorted, non-overlapping, inside it) replaced, encoded."""
    start, text, found = zone
    return _compose_text(text, 0, len(text), found, shift=-start, counts=counts)


def _compose_text(text: str, a: int, b: int, found: list[_Redaction], *, shift: int, counts: dict[str, int]) -> bytes:
    """``text[a:b]`` with the *found* redactions (sorted, non-overlapping, inside it once their
    positions are moved by *shift*) replaced, encoded."""
    parts: list[str] = []
    append = parts.append
    pos = a
    for s, e, rule_id, placeholder in found:
        append(text[pos : s + shift])
        append(placeholder)
        pos = e + shift
        counts[rule_id] = counts.get(rule_id, 0) + 1
    append(text[pos:b])
    return "".join(parts).encode(ENCODING, ERRORS)


class Run:
    """The output of consecutive regions as far as they alone decide it (see the module doc).

    ``lead`` is relative to the run's start and None while no region of the run had a body;
    ``trail`` is relative to the run's end; ``body`` is final, encoded output in between.
    """

    __slots__ = ("body", "counts", "lead", "length", "priority", "trail")

    def __init__(self, priority: Callable[[str], int], *, first: bool = False) -> None:
        self.priority = priority
        # The first run of the input has nothing before it: its lead is final at once.
        self.lead: _Zone | None = (0, "", []) if first else None
        self.body: list[_Part] = []
        self.counts: dict[str, int] = {}
        self.trail: _Zone = (0, "", [])
        self.length = 0

    @classmethod
    def of_region(
        cls, priority: Callable[[str], int], text: str, a: int, b: int, found: list[_Redaction], *, margin: int
    ) -> Run:
        """The run of one region ``text[a:b]`` with its *found* redactions (sorted, non-overlapping,
        starting in the region, in *text* coordinates)."""
        run = cls(priority)
        run.length = b - a
        lead_end = a + margin
        n_lead = 0
        while n_lead < len(found) and found[n_lead][0] < lead_end:
            n_lead += 1
        if n_lead:  # a finding that starts in the lead stays in it whole
            lead_end = max(lead_end, found[n_lead - 1][1])
        cross = bool(found) and found[-1][1] > b
        trail_start = found[-1][0] if cross else b
        end = found[-1][1] if cross else b
        if lead_end > trail_start:
            run.trail = _shift((a, text[a:end], list(found)), -b)  # too short for a body
            return run
        n_body = len(found) - (1 if cross else 0)
        run.lead = _shift((a, text[a:lead_end], found[:n_lead]), -a)
        run.body.append(_compose_text(text, lead_end, trail_start, found[n_lead:n_body], shift=0, counts=run.counts))
        run.trail = _shift((trail_start, text[trail_start:end], found[n_body:]), -b)
        return run

    def add(self, nxt: Run) -> None:
        """Append the run that follows this one; where they meet is resolved and encoded."""
        if nxt.lead is None:  # all trail: it joins ours
            zone = _union(self.trail, _shift(nxt.trail, nxt.length))
            self.trail = _shift(self._resolved(zone), -nxt.length)
            self.length += nxt.length
            return
        if self.trail[0] + len(self.trail[1]) > len(nxt.lead[1]):
            raise AssertionError("a finding reaches past the next region's lead")
        zone = self._resolved(_union(self.trail, nxt.lead))
        if self.lead is None:
            self.lead = _shift(zone, self.length)
        else:
            self.body.append(_compose(zone, self.counts))
        self.body.extend(nxt.body)
        for rule_id, n in nxt.counts.items():
            self.counts[rule_id] = self.counts.get(rule_id, 0) + n
        self.trail = nxt.trail
        self.length += nxt.length

    def _resolved(self, zone: _Zone) -> _Zone:
        start, text, found = zone
        return start, text, _merge(self.priority, found)

    def take_body(self) -> list[_Part]:
        """The final output so far, handed over (the run keeps nothing of it)."""
        body, self.body = self.body, []
        return body

    def close(self) -> list[_Part]:
        """The rest of the output, once no region follows (only for a run that starts the input)."""
        if self.lead is None:
            raise AssertionError("a run that does not start the input cannot close")
        self.body.append(_compose(self.trail, self.counts))
        self.trail = (0, "", [])
        return self.take_body()


def _cut_points(data: bytes, a: int, b: int, size: int) -> list[int]:
    """Boundaries of regions of about *size* bytes in ``data[a:b]``, at line starts."""
    cuts = [a]
    while b - cuts[-1] > size:
        nl = data.find(b"\n", cuts[-1] + size, b)
        if nl < 0:
            break
        cuts.append(nl + 1)
    cuts.append(b)
    return cuts


def _char_start(data: bytes, i: int, step: int) -> int:
    """*i*, moved by *step* past bytes that continue a UTF-8 sequence: text decoded from (or up
    to) there is the same as that part of the whole text decoded.  A line start is such a
    place too, whatever byte follows the newline."""
    n = len(data)
    while 0 < i < n and 0x80 <= data[i] < 0xC0:
        i += step
    return i


def _region_run(sanitizer: Sanitizer, data: bytes, c0: int, c1: int, margin: int) -> Run:
    """Decode, scan and redact the region ``data[c0:c1]`` (cut at line starts)."""
    lo = min(c0, _char_start(data, max(0, c0 - margin), 1))
    hi = max(c1, _char_start(data, min(len(data), c1 + margin), -1))
    view = memoryview(data)  # decoded in place, not from a copy
    text = str(view[lo:hi], ENCODING, ERRORS)
    a = len(str(view[lo:c0], ENCODING, ERRORS)) if lo < c0 else 0
    b = len(text) - (len(str(view[c1:hi], ENCODING, ERRORS)) if c1 < hi else 0)
    placeholder = sanitizer.placeholder
    found = [
        (s, e, r, placeholder(r, text[s:e])) for s, e, r in sanitizer.find_spans(text, (data, lo, hi)) if a <= s < b
    ]
    return Run.of_region(sanitizer.priority, text, a, b, found, margin=margin)


def _range_run(sanitizer: Sanitizer, data: bytes, a: int, b: int, emit: Callable[[list[_Part]], None] | None) -> Run:
    """The run of ``data[a:b]`` region by region; with *emit*, the body is handed out as it is final."""
    run = Run(sanitizer.priority, first=emit is not None)
    for c0, c1 in itertools.pairwise(_cut_points(data, a, b, CHUNK)):
        run.add(_region_run(sanitizer, data, c0, c1, MARGIN))
        if emit is not None:
            emit(run.take_body())
    return run


def _workers() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cpus, 8)


def _schedule(data: bytes, workers: int) -> list[int]:
    """Cut points (at line starts) of the regions the workers take in turn: :data:`CHUNK`
    bytes while much is left, then smaller ones, down to :data:`MIN_CHUNK`, so the workers
    finish together even when one CPU is slower than the other."""
    n = len(data)
    cuts = [0]
    # At most a few thousand regions: their numbers must fit in the queue pipe before anyone reads it.
    least = max(MIN_CHUNK, n >> 12)
    while True:
        size = min(max(CHUNK, least), max(least, (n - cuts[-1]) // workers))
        if n - cuts[-1] <= size + size // 2:
            break
        nl = data.find(b"\n", cuts[-1] + size, n)
        if nl < 0 or nl + 1 >= n:
            break
        cuts.append(nl + 1)
    cuts.append(n)
    return cuts


def sanitize_stream(sanitizer: Sanitizer, data: bytes, out: BinaryIO, workers: int | None = None) -> dict[str, int]:
    """Write *data* to *out* with every secret replaced; return how many each rule replaced.

    The output is the same as ``sanitizer.sanitize_text`` on the whole decoded text, but
    for pathological inputs: a secret longer than :data:`MARGIN` across a region cut.
    """
    n = workers if workers is not None else _workers()

    def emit(parts: list[_Part]) -> None:
        _write_parts(out, parts)

    # fork() only from a single-threaded process: a lock held by another thread would deadlock the child.
    # Workers hand their output over in memory files: where Python has none (os.memfd_create is
    # Linux's; not macOS), one process does it all rather than spill text to a file in $TMPDIR.
    parallel_ok = hasattr(os, "fork") and hasattr(os, "memfd_create") and threading.active_count() == 1
    if n < 2 or len(data) < PARALLEL_MIN or not parallel_ok:
        run = _range_run(sanitizer, data, 0, len(data), emit)
        emit(run.close())
        return run.counts
    return _parallel(sanitizer, data, n, out)


def _write_parts(out: BinaryIO, parts: list[_Part]) -> None:
    for part in parts:
        if isinstance(part, bytes):
            if part:
                out.write(part)
        else:
            _copy_out(part, out)


def _parallel(sanitizer: Sanitizer, data: bytes, n: int, out: BinaryIO) -> dict[str, int]:
    """The regions of :func:`_schedule` shared among the parent and ``n - 1`` forked workers.

    The region numbers wait in a pipe that all of them read, four bytes each, so each
    region goes to whichever process is free first.  A worker writes each region's run
    into a scratch file of its own (never blocking on the parent) and tells the parent
    where; the parent writes the output region by region, in order, as soon as it can.
    """
    cuts = _schedule(data, n)
    queue_r, queue_w = os.pipe()
    try:
        os.write(queue_w, b"".join(_INDEX.pack(i) for i in range(len(cuts) - 1)))
    finally:
        os.close(queue_w)
    out.flush()  # a child must not inherit (and never writes) buffered output
    parent = _Parent(sanitizer, data, cuts, out)
    try:
        parent.fork_workers(n - 1, queue_r)
        parent.work(queue_r)
    finally:
        os.close(queue_r)
        parent.stop()
    return parent.run.counts


class _Parent:
    """The parent's side of :func:`_parallel`: its workers, and the runs not yet written."""

    def __init__(self, sanitizer: Sanitizer, data: bytes, cuts: list[int], out: BinaryIO) -> None:
        self.sanitizer, self.data, self.cuts, self.out = sanitizer, data, cuts, out
        self.children: dict[int, tuple[int, int]] = {}  # result pipe -> (pid, scratch file)
        self.scratch: list[int] = []
        self.pending: dict[int, Run] = {}
        self.run = Run(sanitizer.priority, first=True)
        self.written = 0

    def fork_workers(self, count: int, queue_r: int) -> None:
        for _ in range(count):
            file = _scratch_file()
            self.scratch.append(file)
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                code = 1
                try:
                    os.close(r)
                    _worker(self.sanitizer, self.data, self.cuts, queue=queue_r, results=w, file=file)
                    code = 0
                finally:
                    os._exit(code)
            os.close(w)
            os.set_blocking(r, False)
            self.children[r] = (pid, file)

    def work(self, queue_r: int) -> None:
        """Take regions from the queue until none is left, then wait for the workers' last ones."""
        cuts, sanitizer, data = self.cuts, self.sanitizer, self.data
        while (index := _take(queue_r)) is not None:
            self.pending[index] = _region_run(sanitizer, data, cuts[index], cuts[index + 1], MARGIN)
            self.collect(block=False)
            self.flush()
        while self.written < len(cuts) - 1:
            if not self.children:
                raise RuntimeError("a sanitizer worker failed")
            self.collect(block=True)
            self.flush()
        _write_parts(self.out, self.run.close())

    def collect(self, block: bool) -> None:
        """Read the workers' notes of regions done (waiting for one if *block*)."""
        import pickle
        import select

        ready = list(self.children)
        if block:
            ready, _, _ = select.select(ready, [], [])
        for fd in ready:
            try:
                raw = os.read(fd, _RECORD.size * 256)
            except BlockingIOError:
                continue
            if not raw:
                pid, _ = self.children.pop(fd)
                os.close(fd)
                _, status = os.waitpid(pid, 0)
                if status != 0:
                    raise RuntimeError("a sanitizer worker failed")
                continue
            for index, file, offset, n_header, n_body in _RECORD.iter_unpack(raw):
                part = Run(self.sanitizer.priority)
                header = os.pread(file, n_header, offset)
                part.lead, part.trail, part.counts, part.length = pickle.loads(header)  # noqa: S301 - our own
                part.body = [(file, offset + n_header, n_body)]
                self.pending[index] = part

    def flush(self) -> None:
        """Write the regions done, in order, up to the first one not done yet."""
        while self.written in self.pending:
            self.run.add(self.pending.pop(self.written))
            _write_parts(self.out, self.run.take_body())
            self.written += 1

    def stop(self) -> None:
        for fd, (pid, _) in self.children.items():  # only after a failure: stop the workers still running
            os.close(fd)
            try:
                os.kill(pid, signal.SIGKILL)
            finally:
                os.waitpid(pid, 0)
        for file in self.scratch:
            os.close(file)


_INDEX: Final = struct.Struct("<I")
#: A worker's note that a region is done: (region, scratch file, offset, header size, body size).
_RECORD: Final = struct.Struct("<IiQII")


def _take(queue: int) -> int | None:
    """The next region number from the shared queue, or None when all are taken."""
    raw = os.read(queue, _INDEX.size)
    return _INDEX.unpack(raw)[0] if raw else None


def _worker(  # pragma: no cover - runs in the child
    sanitizer: Sanitizer, data: bytes, cuts: list[int], *, queue: int, results: int, file: int
) -> None:
    import pickle

    offset = 0
    while (index := _take(queue)) is not None:
        part = _region_run(sanitizer, data, cuts[index], cuts[index + 1], MARGIN)
        body = b"".join(p for p in part.take_body() if isinstance(p, bytes))
        header = pickle.dumps((part.lead, part.trail, part.counts, part.length), protocol=pickle.HIGHEST_PROTOCOL)
        _write_all(file, header)  # not header + body: a copy of the region's output
        _write_all(file, body)
        _write_all(results, _RECORD.pack(index, file, offset, len(header), len(body)))
        offset += len(header) + len(body)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _scratch_file() -> int:
    """A file in memory that a worker and the parent share (never a file on disk: it holds
    sanitized text; :func:`sanitize_stream` forks no workers where there are no memory files)."""
    return os.memfd_create("sessionseal-sanitize", os.MFD_CLOEXEC)


def _copy_out(segment: tuple[int, int, int], out: BinaryIO) -> None:
    file, offset, size = segment
    end = offset + size
    while offset < end:
        block = os.pread(file, min(end - offset, 1 << 22), offset)
        if not block:
            raise RuntimeError("a sanitizer worker's output is missing")
        out.write(block)
        offset += len(block)
