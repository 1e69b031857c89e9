"""Transfer: exporting sessions (an encrypted bundle, or plaintext renderings) and importing
bundles and session JSON (docs/spec/bundle-v1.md; the formats are in _export.py).

An import validates every document before it stores any, and keeps a replaced session's
previous version as a checkpoint (undone if the replacement fails).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from .. import __version__
from .._checkpoints import Checkpoint
from .._query import ListQuery
from ..errors import InvalidInput, SessionSealError
from . import _common
from ._ckpts import Checkpoints
from ._common import MAX_CONTAINER, MAX_SESSION_BYTES, SUFFIX, merge_counts, parse_id, stored_shape, timestamp
from ._context import VaultContext
from ._keys import Keys
from ._listing import Listing
from ._results import ExportResult, ImportResult
from ._store import SessionStore

if TYPE_CHECKING:
    from ..models import Session


class Transfer:
    """Exports from and imports into one open vault."""

    def __init__(
        self,
        ctx: VaultContext,
        keys: Keys,
        store: SessionStore,
        checkpoints: Checkpoints,
        listing: Listing,
        *,
        audit: Callable[..., None],
        checkpoint: Callable[[uuid.UUID, str], Checkpoint],
        save_model: Callable[..., dict[str, int]],
    ) -> None:
        self._ctx = ctx
        self._keys = keys
        self._store = store
        self._checkpoints = checkpoints
        self._listing = listing
        self._audit = audit
        self._checkpoint = checkpoint
        self._save_model = save_model

    def export(
        self,
        session_ids: Iterable[uuid.UUID | str] | None,
        *,
        query: ListQuery | None,
        format: str,
        passphrase: str | bytes | None,
        plaintext: bool,
        out: str | os.PathLike[str] | None,
        overwrite: bool,
        log2_n: int | None,
    ) -> ExportResult:
        """See :meth:`Vault.export`."""
        from .. import _export

        if format not in _export.FORMATS:
            raise InvalidInput(f"unknown export format {format!r}; use one of {', '.join(_export.FORMATS)}")
        if format != "bundle" and not plaintext:
            raise InvalidInput(
                f"{format} is plaintext (sanitized, but readable by anyone who gets the file); "
                "allow it with --plaintext, or export a passphrase-protected bundle"
            )
        if session_ids is not None:
            ids = list(dict.fromkeys(parse_id(s) for s in session_ids))
        else:
            q = query if query is not None else ListQuery(archived=None)
            ids = [uuid.UUID(e.id) for e in self._listing.select(q)[0]]
        if not ids:
            raise InvalidInput("no session to export; give ids, or filters that match")
        docs = [self._store.document(self._store.open(sid)) for sid in ids]
        site: dict[str, bytes] | None = None
        if format == "bundle":
            if not passphrase:
                raise InvalidInput("a bundle needs a passphrase (not the vault's); give one")
            secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
            manifest = {
                "format": "sessionseal bundle",
                "made_by": f"sessionseal {__version__}",
                "created_at": timestamp(),
                "sessions": [str(sid) for sid in ids],
            }
            cost = _export.DEFAULT_LOG2_N if log2_n is None else log2_n
            data = _export.seal_bundle(docs, manifest, secret, log2_n=cost)
        elif format == "html" and (session_ids is None or len(ids) > 1):
            site = _html_site(docs, out)
            data = b"".join(site.values())
        else:
            with stored_shape():
                data = _export.render(format, [orjson.loads(d) for d in docs])
        path = None
        if out is not None:
            from .._fs import write_private_dir, write_private_file

            path = Path(out).absolute()
            if site is not None:
                write_private_dir(path, site, overwrite=overwrite)
            else:
                write_private_file(path, data, overwrite=overwrite)
        detail = {"format": format, "sessions": len(ids), "plaintext": format != "bundle", "file": path is not None}
        # What left the vault: each session, with the output's name and size in its box (user
        # text and a measure: they go when the last of these sessions is erased).
        left = {"file": path.name if path else None, "format": format, "bytes": len(data), "sessions": len(ids)}
        self._audit("export", detail=detail, others=[("exported", sid, left) for sid in ids])
        return ExportResult(format, ids, None if path else data, str(path) if path else None, len(data))

    def import_sessions(
        self,
        source: bytes | str | os.PathLike[str],
        *,
        passphrase: str | bytes | Callable[[], str | bytes] | None,
        on_conflict: str,
        allow_expensive_kdf: bool,
    ) -> ImportResult:
        """See :meth:`Vault.import_sessions`."""
        from ..models import parse_session

        if on_conflict not in ("skip", "replace", "copy"):
            raise InvalidInput("on_conflict is skip, replace or copy")
        kind, documents = import_documents(source, passphrase, allow_expensive_kdf=allow_expensive_kdf)
        result = ImportResult(kind)
        per_session: list[tuple[str, uuid.UUID, Mapping[str, Any] | None]] = []

        def models() -> Iterator[Session]:
            for n, doc in enumerate(documents(), 1):
                if not isinstance(doc, dict):
                    raise InvalidInput(f"document {n} is not a session object; nothing was imported")
                try:
                    yield parse_session(doc)
                except InvalidInput as exc:
                    raise InvalidInput(f"document {n}: {exc}; nothing was imported") from None

        # Validate every document before storing any (a bad one imports nothing), one at a
        # time: each is dropped once checked, and decoded again below to be stored.
        for _ in models():
            pass
        for model in models():
            sid = model.id
            name = self._keys.file_name(sid)
            undo: tuple[int, set[int]] | None = None
            if self._ctx.sessions.exists(name + SUFFIX):
                if on_conflict == "skip":
                    result.skipped.append((str(sid), "already in the vault"))
                    continue
                if on_conflict == "replace":
                    undo = (
                        self._store.stored_generation(name + SUFFIX) or 0,
                        {n for n, _ in self._checkpoints.files(name)},
                    )
                else:
                    model.id = sid = uuid.uuid4()
            label = f"before import {_common.now():%Y-%m-%d %H:%M:%S.%f}"
            try:
                if undo is not None:
                    self._checkpoint(sid, label)
                counts = self._save_model(model, touch=False)
            except BaseException:
                if undo is not None:
                    with contextlib.suppress(SessionSealError), self._ctx.session_lock(name, sid):
                        self._checkpoints.drop_unused(name, sid, *undo, label=label)
                raise
            result.redactions = merge_counts(result.redactions, counts)
            result.imported.append(sid)
            per_session.append(("imported", sid, {"redactions": dict(sorted(counts.items()))}))
        detail = {"source": result.source, "imported": len(result.imported), "skipped": len(result.skipped)}
        self._audit("import", detail=detail, others=per_session)
        return result


def import_documents(
    source: bytes | str | os.PathLike[str],
    passphrase: str | bytes | Callable[[], str | bytes] | None,
    *,
    allow_expensive_kdf: bool = False,
) -> tuple[str, Callable[[], Iterator[Any]]]:
    """What a bundle or session JSON (an object or a list) holds: its kind, and a function
    that yields the documents as parsed JSON, one at a time, each call from the start."""
    from .. import _export
    from .._passphrase import MAX_LOG2_N

    if isinstance(source, bytes):
        data = source
    else:
        try:
            with open(source, "rb") as f:
                data = f.read(MAX_CONTAINER + 1)
        except OSError as exc:
            raise InvalidInput(f"cannot read {source}: {exc.strerror}") from None
    if _export.is_bundle(data):
        max_log2_n = MAX_LOG2_N if allow_expensive_kdf else _export.KDF_CAP_LOG2_N
        _export.check_cost(data, max_log2_n=max_log2_n)  # before the passphrase is asked for
        value = passphrase() if callable(passphrase) else passphrase
        secret = value.encode() if isinstance(value, str) else (value or b"")
        bundle = _export.open_bundle(
            data, secret, max_log2_n=max_log2_n, max_document=MAX_SESSION_BYTES, max_total=_export.MAX_BUNDLE_BYTES
        )

        def documents() -> Iterator[Any]:
            for n, doc in enumerate(bundle.iter_documents(), 1):
                try:
                    yield orjson.loads(doc)
                except orjson.JSONDecodeError:
                    raise InvalidInput(f"document {n} of the bundle is not JSON; nothing was imported") from None

        return "bundle", documents
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise InvalidInput("the input is neither a sessionseal bundle nor session JSON") from None
    docs = parsed if isinstance(parsed, list) else [parsed]
    return "json", lambda: iter(docs)


def _html_site(docs: list[bytes], out: object) -> dict[str, bytes]:
    """The pages of an HTML export of several sessions (or of a query, however many match): a
    directory with an index page, never stdout."""
    from .. import _export

    if out is None:
        raise InvalidInput(
            "an HTML export of several sessions (or --all) is a directory with an index page; give --out DIR"
        )
    with stored_shape():
        return _export.render_html_site([orjson.loads(d) for d in docs])
