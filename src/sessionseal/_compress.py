"""zstd framing, and the only importer of ``zstandard``.

A payload is ``encoding (1 byte) || data`` (restic's "encoding_version || data"):
encoding 1 is a zstd frame of level 3, the measured sweet spot on these machines
(docs/design.md).  Decompression is bounded: a frame may not expand past
:data:`MAX_PLAINTEXT`, so even an authenticated but absurd frame cannot exhaust memory.
"""

from __future__ import annotations

import threading
from typing import BinaryIO, Final

import zstandard

from .errors import IntegrityError, InvalidInput

__all__ = [
    "ENCODING_ZSTD",
    "MAX_PLAINTEXT",
    "compress",
    "declared_size",
    "decompress",
    "decompress_bounded",
    "decompress_head",
    "decompress_stream",
    "scan_stream",
]

#: Encoding byte: the rest is one zstd frame with its content size recorded.
ENCODING_ZSTD: Final = 1
#: Upper bound for one decompressed payload (sessions larger than this are refused at save).
MAX_PLAINTEXT: Final = 1 << 30
#: Level 3: about 3.5x on transcripts at 135-175 MiB/s; higher levels cost 2.5-7x for 7-20 %.
_LEVEL: Final = 3
#: Above this size a second worker thread pays off (perf-floor: 1.4-1.9x at 50 MiB).
_THREADED_FROM: Final = 48 << 20
#: Read size of :func:`decompress_stream`: the limit is checked after every chunk.
_STREAM_CHUNK: Final = 1 << 20
#: Input step of :func:`scan_stream`: at most 32 MiB of output per step.
_SCAN_STEP: Final = 1 << 10
#: The most a zstd frame can expand: a block holds at most 128 KiB and takes at least 4 bytes
#: (an RLE block; RFC 8878, 3.1.1.2), so a frame never decompresses to 32768 times its size.
_MAX_RATIO: Final = 1 << 15
#: A frame declaring up to this many times its size (or up to _ONE_SHOT bytes) is decompressed
#: into one buffer of the declared size; one declaring more (zeros, or a lie) is decompressed in
#: steps, so that memory follows what it really holds.  Sessions compress 3-10x.
_PLAUSIBLE_RATIO: Final = 64
_ONE_SHOT: Final = 1 << 20

_local = threading.local()


def _contexts() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    # zstd contexts are reusable but not thread-safe: keep one set per thread.
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        ctx = (
            zstandard.ZstdCompressor(level=_LEVEL, write_content_size=True),
            zstandard.ZstdCompressor(level=_LEVEL, write_content_size=True, threads=2),
            zstandard.ZstdDecompressor(),
        )
        _local.ctx = ctx
    return ctx


def compress(data: bytes) -> bytes:
    """Return ``ENCODING_ZSTD || zstd(data)``."""
    single, threaded, _ = _contexts()
    ctx = threaded if len(data) >= _THREADED_FROM else single
    return bytes([ENCODING_ZSTD]) + ctx.compress(data)


def decompress(payload: bytes) -> bytes:
    """Reverse :func:`compress`.

    :raises IntegrityError: unknown encoding, a corrupt frame, or a frame that would
        expand past :data:`MAX_PLAINTEXT`.  Only authenticated payloads reach this
        function, so a failure here means a bug or a key compromise, never noise.

    A frame's declared size is not trusted to allocate memory: a few bytes declaring 1 GiB
    fail in a few bytes' worth of memory.
    """
    if not payload or payload[0] != ENCODING_ZSTD:
        raise IntegrityError("stored payload has an unknown encoding; run 'sessionseal verify'")
    _, _, d = _contexts()
    frame = memoryview(payload)[1:]
    try:
        size = zstandard.frame_content_size(frame)
        if size < 0 or size > MAX_PLAINTEXT or size > len(frame) * _MAX_RATIO:
            raise IntegrityError("stored payload has an invalid size; run 'sessionseal verify'")
        if size <= max(_ONE_SHOT, len(frame) * _PLAUSIBLE_RATIO):
            out: bytes = d.decompress(frame, max_output_size=max(size, 1))  # one buffer of the declared size
        else:
            out = _decompress_in_steps(d, frame, size)
    except zstandard.ZstdError as exc:
        raise IntegrityError("stored payload does not decompress; run 'sessionseal verify'") from exc
    if len(out) != size:
        raise IntegrityError("stored payload has an invalid size; run 'sessionseal verify'")
    return out


def _decompress_in_steps(d: zstandard.ZstdDecompressor, frame: memoryview, size: int) -> bytes:
    """The one frame of *frame*, read in steps of _STREAM_CHUNK and refused once past *size*."""
    chunks, total = [], 0
    with d.stream_reader(frame, read_size=_STREAM_CHUNK) as reader:
        while chunk := reader.read(_STREAM_CHUNK):
            total += len(chunk)
            if total > size:
                raise IntegrityError("stored payload has an invalid size; run 'sessionseal verify'")
            chunks.append(chunk)
    return b"".join(chunks)


def declared_size(payload: bytes) -> int | None:
    """The content size a :func:`compress` payload declares in its zstd frame header, read
    without decompressing anything; None when the frame does not declare one.

    :raises IntegrityError: unknown encoding, or not a zstd frame header.
    """
    if not payload or payload[0] != ENCODING_ZSTD:
        raise IntegrityError("stored payload has an unknown encoding; run 'sessionseal verify'")
    try:
        size = zstandard.frame_content_size(memoryview(payload)[1:])
    except zstandard.ZstdError:
        raise IntegrityError("stored payload does not decompress; run 'sessionseal verify'") from None
    return None if size < 0 else size


def decompress_bounded(payload: bytes, limit: int) -> bytes:
    """:func:`decompress` for a payload from outside the vault (a bundle's): never more than
    *limit* bytes, whatever its frame declares.  A frame that declares its size is checked
    before any work; one that does not is decompressed in steps and refused once past *limit*.

    :raises InvalidInput: it holds more than *limit* bytes (the message names the limit only).
    :raises IntegrityError: it is not a well-formed frame.
    """
    size = declared_size(payload)
    if size is not None:
        if size > limit:
            raise InvalidInput(f"decompresses to more than {limit} bytes")
        return decompress(payload)
    chunks, total = [], 0
    try:
        reader = _contexts()[2].stream_reader(memoryview(payload)[1:], read_size=_STREAM_CHUNK)
        with reader:
            while chunk := reader.read(_STREAM_CHUNK):
                total += len(chunk)
                if total > limit:
                    raise InvalidInput(f"decompresses to more than {limit} bytes")
                chunks.append(chunk)
    except zstandard.ZstdError as exc:
        raise IntegrityError("stored payload does not decompress; run 'sessionseal verify'") from exc
    return b"".join(chunks)


def decompress_head(source: BinaryIO, n: int) -> bytes:
    """The first *n* bytes (or fewer, at the end) that a foreign ``.zst`` stream decompresses to.

    :raises InvalidInput: the data is not zstd.
    """
    reader = zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True, closefd=False)
    out = bytearray()
    try:
        while len(out) < n and (chunk := reader.read(n - len(out))):
            out += chunk
    except zstandard.ZstdError:
        raise InvalidInput("is not a valid zstd stream") from None
    return bytes(out)


def decompress_stream(source: BinaryIO, limit: int) -> bytes:
    """Decompress every zstd frame of *source* (a foreign ``.zst`` file), at most *limit* bytes.

    Unlike :func:`decompress`, the input is not ours: frames may omit their content size
    and there may be several, so the output is read in chunks and refused as soon as it
    passes *limit* (a small bomb cannot exhaust memory).  A stream cut short yields what
    it decoded; the caller's parser sees a torn last line.

    :raises InvalidInput: the data is not zstd, or expands past *limit*.  The message names
        neither the file nor its content: the caller adds the file.
    """
    reader = zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True, closefd=False)
    out = bytearray()
    try:
        while chunk := reader.read(_STREAM_CHUNK):
            out += chunk
            if len(out) > limit:
                raise InvalidInput(f"decompresses to more than {limit} bytes")
    except zstandard.ZstdError:
        raise InvalidInput("is not a valid zstd stream") from None
    return bytes(out)


def scan_stream(source: BinaryIO, limit: int) -> tuple[int, int | None, bool]:
    """Read a foreign ``.zst`` stream to its end without keeping what it decompresses to:
    ``(decompressed length, its last byte or None, whether it ends with a complete frame)``.

    What :func:`decompress_stream` forgives (a stream cut short yields what it decoded), this
    reports: an importer that removes the file checks that nothing was left undecoded.  Input
    is fed in small steps, so that one step never expands past a few MiB (RLE blocks expand
    32768 times).

    :raises InvalidInput: not zstd, or more than *limit* bytes.
    """
    total, last, frame = 0, None, None
    try:
        while data := source.read(_SCAN_STEP):
            while data:
                if frame is None:
                    frame = zstandard.ZstdDecompressor().decompressobj()
                out = frame.decompress(data)
                if out:
                    total, last = total + len(out), out[-1]
                    if total > limit:
                        raise InvalidInput(f"decompresses to more than {limit} bytes")
                if not frame.eof:
                    break
                data, frame = frame.unused_data, None
    except zstandard.ZstdError:
        raise InvalidInput("is not a valid zstd stream") from None
    return total, last, frame is None and total > 0
