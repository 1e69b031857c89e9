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
from dataclasses import dataclass
from typing import Any, Final

from . import _container, _crypto
from ._container import FrameType, Kind
from ._passphrase import DEFAULT_LOG2_N, MAX_LOG2_N, MIN_LOG2_N
from .errors import IntegrityError, InvalidInput, UnsupportedVersion, WrongPassphrase

__all__ = [
    "BUNDLE_MAGIC",
    "DEFAULT_LOG2_N",
    "FORMATS",
    "PLAINTEXT_FORMATS",
    "Bundle",
    "is_bundle",
    "open_bundle",
    "render",
    "seal_bundle",
]

#: The first 8 bytes of a bundle (PNG-style: a high byte, a name, CR LF).
BUNDLE_MAGIC: Final = b"\x89SSBNDL\n"
BUNDLE_VERSION: Final = 1
#: magic, version, scrypt log2(N), r, p, salt
_PREFIX: Final = struct.Struct(">8sBBBB16s")
_R: Final = 8
_P: Final = 1
PLAINTEXT_FORMATS: Final = ("json", "yaml", "markdown")
FORMATS: Final = (*PLAINTEXT_FORMATS, "bundle")
_BAD_BUNDLE: Final = "the file is not a sessionseal bundle, or it is damaged"


@dataclass(frozen=True)
class Bundle:
    """An opened bundle: its manifest and the session documents it holds (JSON bytes)."""

    manifest: dict[str, Any]
    documents: list[bytes]


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


def open_bundle(data: bytes, passphrase: bytes) -> Bundle:
    """Authenticate and decrypt a bundle.

    :raises WrongPassphrase: the passphrase does not open it (or its key wrap was altered).
    :raises IntegrityError: anything else about it is not authentic or not well formed.
    :raises UnsupportedVersion: made by a newer sessionseal.
    """
    if len(data) < _PREFIX.size or not is_bundle(data):
        raise IntegrityError(_BAD_BUNDLE)
    _, version, log2_n, r, p, salt = _PREFIX.unpack_from(data)
    if version != BUNDLE_VERSION:
        if version > BUNDLE_VERSION:
            raise UnsupportedVersion(f"the bundle is format {version}, this sessionseal reads 1; upgrade sessionseal")
        raise IntegrityError(_BAD_BUNDLE)
    # Unauthenticated parameters: bounded before any work (a planted 2^40 must not exhaust memory).
    if not (MIN_LOG2_N <= log2_n <= MAX_LOG2_N and r == _R and p == _P):
        raise IntegrityError(_BAD_BUNDLE)
    if not passphrase:
        raise WrongPassphrase("the bundle's passphrase is empty; give the passphrase it was exported with")
    body = memoryview(data)[_PREFIX.size :]
    header = _container.parse_unverified_header(body)
    if header.kind != Kind.BUNDLE:
        raise IntegrityError(_BAD_BUNDLE)
    kek = _crypto.scrypt_key(passphrase, salt, log2_n=log2_n, r=r, p=p)
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
    try:
        manifest = json.loads(_container.decode_payload(frames[0].data))
    except (ValueError, RecursionError):
        raise IntegrityError(_BAD_BUNDLE) from None
    if not isinstance(manifest, dict):
        raise IntegrityError(_BAD_BUNDLE)
    return Bundle(manifest, [_container.decode_payload(f.data) for f in frames[1:]])


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


# -- plaintext renderings ----------------------------------------------------------------


def render(fmt: str, documents: Sequence[Mapping[str, Any]]) -> bytes:
    """Render sanitized session documents as ``json``, ``yaml`` or ``markdown``.

    One document renders as itself; several as a list (JSON, YAML) or one after another
    (Markdown).
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
    raise InvalidInput(f"unknown export format; use one of {', '.join(FORMATS)}")


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
