"""Export and import formats: plaintext renderings and encrypted bundles (docs/spec/bundle-v1.md).

Plaintext formats (JSON, YAML, Markdown) render the *sanitized* stored document: what is in
the vault, never more.  A bundle is a self-contained encrypted file for moving sessions to
another machine or user: a container (kind 7) whose data key is wrapped under a key derived
from a passphrase with scrypt, prefixed by the scrypt parameters and salt.

The vault decides what to export and stores what is imported (sanitizing it again); this
module only turns documents into bytes and back.
"""

from __future__ import annotations

import json
import re
import struct
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from . import _compress, _container, _crypto
from ._container import FrameType, Kind
from ._passphrase import DEFAULT_LOG2_N, MAX_LOG2_N, MIN_LOG2_N
from .errors import IntegrityError, InvalidInput, UnsupportedVersion, WrongPassphrase

__all__ = [
    "BUNDLE_MAGIC",
    "DEFAULT_LOG2_N",
    "FORMATS",
    "KDF_CAP_LOG2_N",
    "MAX_BUNDLE_BYTES",
    "MAX_DOCUMENT_BYTES",
    "PLAINTEXT_FORMATS",
    "Bundle",
    "check_cost",
    "is_bundle",
    "open_bundle",
    "render",
    "render_html_site",
    "seal_bundle",
]

#: The first 8 bytes of a bundle (PNG-style: a high byte, a name, CR LF).
BUNDLE_MAGIC: Final = b"\x89SSBNDL\n"
BUNDLE_VERSION: Final = 1
#: magic, version, scrypt log2(N), r, p, salt
_PREFIX: Final = struct.Struct(">8sBBBB16s")
_R: Final = 8
_P: Final = 1
PLAINTEXT_FORMATS: Final = ("json", "yaml", "markdown", "html")
FORMATS: Final = (*PLAINTEXT_FORMATS, "bundle")
_BAD_BUNDLE: Final = "the file is not a sessionseal bundle, or it is damaged"
#: The most scrypt work a bundle may ask of its reader unless the caller allows more
#: (``--allow-expensive-kdf``): what sessionseal writes, N = 2^17 with r = 8, p = 1, that is
#: 128 * r * N = 128 MiB of memory.  Up to MAX_LOG2_N (2^22: 4 GiB) when allowed.
KDF_CAP_LOG2_N: Final = DEFAULT_LOG2_N
#: The largest session document a bundle may hold: the vault's MAX_SESSION_BYTES (a test
#: keeps them equal; this module does not import the vault).
MAX_DOCUMENT_BYTES: Final = 512 << 20
#: The most that a bundle's session documents may hold together, decompressed.
MAX_BUNDLE_BYTES: Final = 4 << 30
#: The largest manifest (a few fields and the session ids: 40 bytes each).
_MAX_MANIFEST: Final = 16 << 20


@dataclass(frozen=True)
class Bundle:
    """An opened bundle: its manifest and the session documents it holds (JSON bytes).

    Every frame is authenticated and every document's declared size checked when the bundle
    is opened; the documents are decompressed only as they are read, one at a time, so an
    importer holds one document at once rather than all of them.
    """

    manifest: dict[str, Any]
    #: The BODY frames' payloads (decrypted, still compressed), in order.
    payloads: tuple[bytes, ...] = field(repr=False)
    #: The sizes the payloads declare (None: a zstd frame without one; bounded when read).
    sizes: tuple[int | None, ...] = field(repr=False)
    max_document: int = MAX_DOCUMENT_BYTES
    max_total: int = MAX_BUNDLE_BYTES

    def __len__(self) -> int:
        return len(self.payloads)

    def iter_documents(self) -> Iterator[bytes]:
        """The documents, decompressed one at a time (each call starts again).

        :raises InvalidInput: a document without a declared size expands past the bounds.
        """
        left = self.max_total - sum(s for s in self.sizes if s is not None)
        for n, (payload, size) in enumerate(zip(self.payloads, self.sizes, strict=True), 1):
            # A declared size was checked when the bundle was opened (and decompression stops
            # at it); an undeclared one takes what is left of the bounds.
            limit = min(self.max_document, left) if size is None else size
            try:
                doc = _decode(payload, limit)
            except InvalidInput:
                raise _too_large(n, None, self.max_document, self.max_total, whole=limit < self.max_document) from None
            if size is None:
                left -= len(doc)
            yield doc

    @property
    def documents(self) -> list[bytes]:
        """Every document at once (a small bundle; an importer uses :meth:`iter_documents`)."""
        return list(self.iter_documents())


def is_bundle(data: bytes) -> bool:
    """Whether *data* starts like a bundle."""
    return data[: len(BUNDLE_MAGIC)] == BUNDLE_MAGIC


def seal_bundle(
    documents: Sequence[bytes],
    manifest: Mapping[str, Any],
    passphrase: bytes,
    *,
    log2_n: int = DEFAULT_LOG2_N,
    compress: bool = True,
    _fixed: tuple[bytes, uuid.UUID, bytes, Iterator[bytes]] | None = None,
) -> bytes:
    """Encrypt *documents* (session JSON) and *manifest* into a bundle under *passphrase*.

    A fresh salt and data key every time; the number of sessions is the header's generation,
    so a bundle cut short by whole frames is refused.  *_fixed* (salt, bundle id, data key,
    nonces) and ``compress=False`` exist for the spec's test vectors only.
    """
    if not passphrase:
        raise InvalidInput("a bundle needs a passphrase; give one (it is not the vault's)")
    if not MIN_LOG2_N <= log2_n <= MAX_LOG2_N:
        raise InvalidInput(f"the bundle's scrypt cost must be between 2^{MIN_LOG2_N} and 2^{MAX_LOG2_N}")
    total = sum(len(d) for d in documents)
    if total > MAX_BUNDLE_BYTES or any(len(d) > MAX_DOCUMENT_BYTES for d in documents):
        # What no reader would open is not written.
        raise InvalidInput(
            f"these sessions hold {total} bytes together, more than a bundle may ({MAX_BUNDLE_BYTES}); "
            "export them in several bundles"
        )
    salt, bundle_id, dek, nonces = _fixed or (_crypto.random_bytes(16), uuid.uuid4(), None, None)
    kek = _crypto.scrypt_key(passphrase, salt, log2_n=log2_n, r=_R, p=_P)
    frames = [(FrameType.META, _container.encode_payload(_dumps(manifest), compress=compress))]
    frames += [(FrameType.BODY, _container.encode_payload(doc, compress=compress)) for doc in documents]
    body = _container.seal(
        kind=Kind.BUNDLE,
        vault_id=bundle_id,  # the bundle's own id
        object_id=uuid.UUID(int=0),
        generation=len(documents),
        kek=kek,
        kek_epoch=0,
        frames=frames,
        dek=dek,
        nonces=nonces,
    )
    return _PREFIX.pack(BUNDLE_MAGIC, BUNDLE_VERSION, log2_n, _R, _P, salt) + body


def check_cost(data: bytes, *, max_log2_n: int = KDF_CAP_LOG2_N) -> int:
    """Check a bundle's prefix and the scrypt cost it asks for, before any work (and before
    asking for its passphrase); returns its log2(N).

    :raises IntegrityError: not a bundle, or a cost outside the format's bounds (2^14 to
        2^22, r = 8, p = 1): no sessionseal writes one.
    :raises UnsupportedVersion: made by a newer sessionseal.
    :raises InvalidInput: a cost within the format's bounds but above *max_log2_n*.
    """
    if len(data) < _PREFIX.size or not is_bundle(data):
        raise IntegrityError(_BAD_BUNDLE)
    _, version, log2_n, r, p, _salt = _PREFIX.unpack_from(data)
    if version != BUNDLE_VERSION:
        if version > BUNDLE_VERSION:
            raise UnsupportedVersion(f"the bundle is format {version}, this sessionseal reads 1; upgrade sessionseal")
        raise IntegrityError(_BAD_BUNDLE)
    # Unauthenticated parameters: bounded before any work (a planted 2^40 must not exhaust memory).
    if not (MIN_LOG2_N <= log2_n <= MAX_LOG2_N and r == _R and p == _P):
        raise IntegrityError(
            f"the bundle asks for scrypt N=2^{log2_n}, r={r}, p={p}, outside what the format allows "
            f"(N from 2^{MIN_LOG2_N} to 2^{MAX_LOG2_N}, r={_R}, p={_P}); it is damaged or not a sessionseal bundle"
        )
    if log2_n > max_log2_n:
        # Within the format, but a sender may not make its reader spend gigabytes and seconds
        # unasked: the reader runs scrypt before it can tell anything about the bundle.
        raise InvalidInput(
            f"the bundle asks for scrypt N=2^{log2_n} ({_scrypt_mib(log2_n)} MiB of memory), more than "
            f"sessionseal writes (2^{KDF_CAP_LOG2_N}, {_scrypt_mib(KDF_CAP_LOG2_N)} MiB); if you trust its "
            "sender, import it with --allow-expensive-kdf"
        )
    return int(log2_n)


def open_bundle(
    data: bytes,
    passphrase: bytes,
    *,
    max_log2_n: int = KDF_CAP_LOG2_N,
    max_document: int = MAX_DOCUMENT_BYTES,
    max_total: int = MAX_BUNDLE_BYTES,
) -> Bundle:
    """Authenticate and decrypt a bundle, and check what its documents declare they hold.

    Nothing is decompressed here but the manifest: each document's declared size must be at
    most *max_document* and their sum at most *max_total* (the bundle's sender is not trusted:
    three frames of a few KiB each can declare a gigabyte).

    :raises WrongPassphrase: the passphrase does not open it (or its key wrap was altered).
    :raises IntegrityError: anything else about it is not authentic or not well formed.
    :raises UnsupportedVersion: made by a newer sessionseal.
    :raises InvalidInput: it asks for more scrypt work than *max_log2_n*, or its documents
        declare more than the bounds.
    """
    log2_n = check_cost(data, max_log2_n=max_log2_n)
    salt = _PREFIX.unpack_from(data)[5]
    if not passphrase:
        raise WrongPassphrase("the bundle's passphrase is empty; give the passphrase it was exported with")
    body = memoryview(data)[_PREFIX.size :]
    header = _container.parse_unverified_header(body)
    if header.kind != Kind.BUNDLE:
        raise IntegrityError(_BAD_BUNDLE)
    kek = _crypto.scrypt_key(passphrase, salt, log2_n=log2_n, r=_R, p=_P)
    try:
        _crypto.unwrap_key(kek, header.wrapped_dek, header.wrap_aad)
    except IntegrityError:
        raise WrongPassphrase("wrong passphrase for this bundle (or its header was altered)") from None
    _, frames = _container.open_frames(body, header, kek)
    types = [f.type for f in frames]
    # The count first: [BODY] * generation would build a list of the (authenticated, but
    # sender-chosen) generation's length, up to 2**64.
    if header.generation != len(types) - 1 or types != [FrameType.META] + [FrameType.BODY] * header.generation:
        raise IntegrityError(_BAD_BUNDLE)
    # Every size is checked before anything is decompressed.
    payloads = tuple(f.data for f in frames[1:])
    sizes = tuple(_declared(p) for p in payloads)
    declared = 0
    for n, size in enumerate(sizes, 1):
        declared += size or 0
        if (size or 0) > max_document or declared > max_total:
            raise _too_large(n, size, max_document, max_total, whole=declared > max_total)
    meta = frames[0].data
    try:
        manifest = json.loads(_decode(meta, _MAX_MANIFEST))
    except (ValueError, RecursionError):  # InvalidInput (past the bound) is a ValueError too
        raise IntegrityError(_BAD_BUNDLE) from None
    if not isinstance(manifest, dict):
        raise IntegrityError(_BAD_BUNDLE)
    return Bundle(manifest, payloads, sizes, max_document, max_total)


def _declared(payload: bytes) -> int | None:
    """The size a payload says it holds, read without decompressing it."""
    if payload[:1] == bytes([_container.ENCODING_RAW]):
        return len(payload) - 1
    try:
        return _compress.declared_size(payload)
    except IntegrityError:  # its message speaks of the vault's files
        raise IntegrityError(_BAD_BUNDLE) from None


def _decode(payload: bytes, limit: int) -> bytes:
    """A payload of the bundle, decompressed to at most *limit* bytes.

    :raises InvalidInput: it holds more.
    """
    if payload[:1] == bytes([_container.ENCODING_RAW]):
        if len(payload) - 1 > limit:
            raise InvalidInput(f"holds more than {limit} bytes")
        return payload[1:]
    try:
        return _compress.decompress_bounded(payload, limit)
    except IntegrityError:
        raise IntegrityError(_BAD_BUNDLE) from None


def _too_large(n: int, size: int | None, max_document: int, max_total: int, *, whole: bool) -> InvalidInput:
    if whole:
        return InvalidInput(
            f"the bundle's sessions hold more than {max_total >> 20} MiB together (by session {n}), more than "
            "an import takes; nothing was imported"
        )
    holds = f"{size} bytes" if size is not None else f"more than {max_document} bytes"
    return InvalidInput(
        f"session {n} of the bundle holds {holds}, more than a vault stores ({max_document >> 20} MiB a session); "
        "nothing was imported"
    )


def _scrypt_mib(log2_n: int) -> int:
    return (128 * _R * (1 << log2_n)) >> 20


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


# -- plaintext renderings ----------------------------------------------------------------


def render(fmt: str, documents: Sequence[Mapping[str, Any]]) -> bytes:
    """Render sanitized session documents as ``json``, ``yaml``, ``markdown`` or ``html``.

    One document renders as itself; several as a list (JSON, YAML) or one after another
    (Markdown).  HTML is one page of one session (several: :func:`render_html_site`).
    """
    if fmt == "json":
        value: Any = documents[0] if len(documents) == 1 else list(documents)
        return json.dumps(value, indent=2, ensure_ascii=False).encode() + b"\n"
    if fmt == "yaml":
        import yaml  # only here: the one command that writes YAML pays for it

        value = dict(documents[0]) if len(documents) == 1 else [dict(d) for d in documents]
        text: str = yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=100)
        return text.encode()
    if fmt == "markdown":
        return "\n\n---\n\n".join(_markdown(d) for d in documents).encode() + b"\n"
    if fmt == "html":
        from . import _html

        if len(documents) != 1:
            raise InvalidInput("an HTML export of several sessions is a directory with an index page; give --out DIR")
        return _html.render_session(documents[0])
    raise InvalidInput(f"unknown export format; use one of {', '.join(FORMATS)}")


def render_html_site(documents: Sequence[Mapping[str, Any]]) -> dict[str, bytes]:
    """An HTML export directory's files: ``index.html`` and one page per session, linked."""
    from . import _html

    return _html.render_site(documents)


def _fence(text: str, lang: str = "") -> str:
    # A fence longer than any run of backticks inside, so content cannot end it early.
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text}\n{ticks}"


def _markdown(doc: Mapping[str, Any]) -> str:
    lines = [f"# {doc.get('title') or '(untitled)'}", ""]
    facts = [
        ("id", doc.get("id")),
        ("status", doc.get("status")),
        ("created", doc.get("created_at")),
        ("updated", doc.get("updated_at")),
        ("workspace", doc.get("workspace")),
        ("working directory", doc.get("working_directory")),
        ("tags", ", ".join(doc.get("tags") or [])),
    ]
    links = doc.get("links") or {}
    facts += [(f"link: {k.replace('_', ' ')}", v) for k, v in links.items() if v and k != "related"]
    redactions = doc.get("redactions") or {}
    if redactions:
        facts.append(("redacted", ", ".join(f"{k} x{v}" for k, v in sorted(redactions.items()))))
    lines += [f"- **{k}**: {v}" for k, v in facts if v]
    if doc.get("description"):
        lines += ["", str(doc["description"])]
    for msg in doc.get("messages") or []:
        who = str(msg.get("role", "?"))
        extra = " · ".join(str(x) for x in (msg.get("model"), msg.get("timestamp")) if x)
        lines += [*([""] if lines[-1] else []), f"## {who}" + (f" ({extra})" if extra else ""), ""]
        for block in msg.get("content") or []:
            kind = block.get("type")
            if kind == "text":
                lines.append(str(block.get("text", "")))
            elif kind == "thinking":
                lines += ["<details><summary>thinking</summary>", "", str(block.get("text", "")), "", "</details>"]
            elif kind == "tool_call":
                args = json.dumps(block.get("arguments"), indent=2, ensure_ascii=False)
                head = f"**tool call** `{block.get('name', '')}` ({block.get('id') or '-'})"
                lines += [head, "", _fence(args, "json")]
            elif kind == "tool_result":
                content = block.get("content")
                text = content if isinstance(content, str) else json.dumps(content, indent=2, ensure_ascii=False)
                label = "**tool error**" if block.get("is_error") else "**tool result**"
                lines += [f"{label} ({block.get('tool_call_id') or '-'})", "", _fence(text)]
            else:
                lines.append(f"*({kind} block)*")
            lines.append("")
    return "\n".join(lines).rstrip()
