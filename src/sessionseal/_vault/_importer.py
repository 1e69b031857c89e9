"""Transcript import: Claude Code and Codex transcript files become sessions (docs/importing.md;
the parsers are in _transcripts.py).

A transcript's session id is derived from the tool's own session id, so importing is
idempotent: unchanged files are skipped, grown ones appended to, changed ones stored anew
(after a checkpoint).  An original is removed only when proved safe (:meth:`remove_original`).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import orjson

from .._checkpoints import Checkpoint
from ..errors import InvalidInput, SessionSealError, StorageError, UnsafePermissions
from . import _common
from ._common import SUFFIX
from ._context import VaultContext
from ._keys import Keys
from ._results import TranscriptOutcome
from ._store import SessionStore

if TYPE_CHECKING:
    from ..models import Session

#: Session ids of imported transcripts: uuid5 of "<tool>:<the tool's session id>".
TRANSCRIPT_NAMESPACE: Final = uuid.UUID("9f5e3d1c-6b4a-5c2e-8d7f-0a1b2c3d4e5f")


class TranscriptImporter:
    """Imports transcript files into one open vault."""

    def __init__(
        self,
        ctx: VaultContext,
        keys: Keys,
        store: SessionStore,
        *,
        audit: Callable[..., None],
        checkpoint: Callable[[uuid.UUID, str], Checkpoint],
        save_model: Callable[..., dict[str, int]],
    ) -> None:
        self._ctx = ctx
        self._keys = keys
        self._store = store
        self._audit = audit
        self._checkpoint = checkpoint
        self._save_model = save_model

    def run(
        self,
        items: list[Path],
        *,
        dry_run: bool,
        since: datetime | None,
        remove: int | None,
        progress: Callable[[int, int], None] | None,
    ) -> list[TranscriptOutcome]:
        """Import each file; one that fails is reported in its outcome and the others go on."""
        out: list[TranscriptOutcome] = []
        for n, path in enumerate(items, 1):
            outcome = TranscriptOutcome(str(path))
            try:
                self.import_one(path, outcome, dry_run=dry_run, since=since, remove=remove)
            except (SessionSealError, OSError) as exc:
                outcome.action = "failed"
                outcome.error = str(exc) if isinstance(exc, SessionSealError) else f"cannot read it ({exc.strerror})"
            out.append(outcome)
            if progress is not None:
                progress(n, len(items))
        return out

    def import_one(
        self, path: Path, outcome: TranscriptOutcome, *, dry_run: bool, since: datetime | None, remove: int | None
    ) -> None:
        """Import one file; *remove*: remove it afterwards if it has been quiet that many ns."""
        from .. import _transcripts
        from ..models import parse_session

        st = os.stat(path)
        if since is not None and datetime.fromtimestamp(st.st_mtime, UTC) < since:
            outcome.action = "skipped"
            return
        if self.unchanged(path, st, outcome):
            if remove is not None and not dry_run:
                self.remove_original(path, cast(uuid.UUID, outcome.session_id), None, outcome, remove)
            return
        t = _transcripts.read_transcript(path)
        # The stamp is the fstat of the descriptor read, taken before reading: what was read.
        st = t.stat or st
        sid = uuid.uuid5(TRANSCRIPT_NAMESPACE, f"{t.tool}:{t.source_id}")
        outcome.tool, outcome.source_id, outcome.session_id = t.tool, t.source_id, sid
        outcome.unknown, outcome.warnings = dict(t.unknown), list(t.warnings)
        doc = dict(t.document)
        messages = doc.get("messages") or []
        outcome.messages = len(messages)
        last = messages[-1] if messages else {}
        doc["id"] = str(sid)
        records = doc.get("source_records") or []
        doc["raw_events"] = raw_refs(doc.get("raw_events") or [], records)
        doc["source"] = {
            **(doc.get("source") or {}),
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "messages": len(messages),
            "raw_events": len(doc["raw_events"]),
            "last_message": [last.get("id"), len(last.get("content") or [])],
            "source_records": record_counts(records),
        }
        fname = self._keys.file_name(sid) + SUFFIX
        exists = self._ctx.sessions.exists(fname)
        old = self._store.read_summary(fname).get("source") if exists else None
        old = old if isinstance(old, dict) else None
        if not exists:
            outcome.action = "new"
        else:  # a session without a source record is never appended to: stored anew, kept first
            outcome.action = "appended" if old is not None and grown(old, doc) else "updated"
        new_records: list[Any] = []
        if outcome.action == "appended":
            # Only what is new is validated, sanitized and encrypted: the rest is stored.
            assert old is not None
            part = {**doc, "messages": messages[int(old.get("messages") or 0) :], "raw_events": []}
            new_records = records_after(records, old.get("source_records") or {})
            part["source_records"] = []
            model = parse_session(part)
        else:
            model = parse_session(doc)  # validated before anything is stored
        if not dry_run:
            raw = doc["raw_events"]
            raw_changed = old is not None and int(old.get("raw_events") or 0) != len(raw)
            outcome.redactions = self.store(sid, model, outcome.action, raw if raw_changed else None, new_records)
        if remove is not None and not dry_run:
            self.remove_original(path, sid, doc, outcome, remove)

    def unchanged(self, path: Path, st: os.stat_result, outcome: TranscriptOutcome) -> bool:
        """Whether the vault holds this file as it is (same path, size and time), found by the
        session id in its first records: then it is not parsed at all."""
        from .. import _transcripts

        try:
            tool, source_id = _transcripts.identify(path)
        except (InvalidInput, StorageError):
            return False  # the full read reports it
        sid = uuid.uuid5(TRANSCRIPT_NAMESPACE, f"{tool}:{source_id}")
        fname = self._keys.file_name(sid) + SUFFIX
        if not self._ctx.sessions.exists(fname):
            return False
        summary = self._store.read_summary(fname)
        old = summary.get("source")
        if not isinstance(old, dict) or (old.get("path"), old.get("size"), old.get("mtime_ns")) != (
            str(path),
            st.st_size,
            st.st_mtime_ns,
        ):
            return False
        outcome.tool, outcome.source_id, outcome.session_id = tool, source_id, sid
        outcome.action, outcome.messages = "unchanged", int(summary.get("message_count") or 0)
        return True

    def store(
        self, sid: uuid.UUID, model: Session, action: str, raw_events: list[Any] | None, records: list[Any]
    ) -> dict[str, int]:
        """Store a transcript's session: whole (new, updated), or its new part (appended: the
        model holds only the new messages, the new source *records*, and the fields that changed)."""
        if action != "appended":
            if action == "updated":
                self._checkpoint(sid, f"before re-import {_common.now():%Y-%m-%d %H:%M:%S.%f}")
            return self._save_model(model, touch=False)
        doc = model.model_dump(mode="json")
        ops: list[dict[str, Any]] = [{"op": "message", "value": m} for m in doc["messages"]]
        if records:  # one op for all: each record is a line of the file, and there are many
            ops.append({"op": "records", "value": {"records": records}})
        fields = {k: doc.get(k) for k in ("title", "updated_at", "workspace", "working_directory", "stats", "config")}
        # The tool history is small: replaced whole (calls of the old part may have finished).
        fields.update(tool_history=doc.get("tool_history") or [], source=doc.get("source"))
        if raw_events is not None:
            fields["raw_events"] = raw_events
        ops.append({"op": "set", "value": fields})
        nbytes, counts = self._store.append(sid, ops, touch=False)
        self._audit("append", session=sid, nbytes=nbytes, redactions=counts, private={"events": len(ops) - 1})
        return counts

    def remove_original(  # noqa: PLR0911 - each refusal keeps the file and says why
        self, path: Path, sid: uuid.UUID, doc: Mapping[str, Any] | None, outcome: TranscriptOutcome, quiet_ns: int
    ) -> None:
        """Delete an imported original (and its sub-agent files) once it is proved safe to:
        the session reads back whole (the right number of messages when the file was just
        read: *doc*; the source stamp of the file as it is), and every file is removable as
        :func:`_transcripts.removable` checks it now: read and stored up to its size, ending
        with a complete line, quiet for *quiet_ns*, open for writing nowhere.  Otherwise
        every file stays, and *outcome* says why."""
        from .. import _transcripts
        from .._fs import shred_file

        def keep(code: str, why: str) -> None:
            outcome.kept, outcome.error = code, f"original kept: {why}"

        stored = orjson.loads(self._store.document(self._store.open(sid)))
        source = stored.get("source") or {}
        mismatch = source.get("path") != str(path)  # its size and time: removable() below
        if doc is not None:
            mismatch = mismatch or len(stored.get("messages") or []) != len(doc.get("messages") or [])
            mismatch = mismatch or source.get("consumed") != doc["source"].get("consumed")
        if mismatch:
            keep("mismatch", "the stored session does not match it on reading back")
            return
        # The main file against its stamp; sub-agent files (no stamp) by what was consumed of them.
        sides = source.get("sidechains") or {}
        checks: list[tuple[Path, Any, Any]] = [
            (path, source.get("consumed"), (source.get("size"), source.get("mtime_ns")))
        ]
        for extra in source.get("sidechain_paths") or []:
            p = Path(extra)
            agent = p.name.removeprefix("agent-").removesuffix(".jsonl")
            checks.append((p, (sides.get(agent) or {}).get("consumed"), None))
        proofs: list[tuple[Path, os.stat_result]] = []
        for p, consumed, stamp in checks:
            if not isinstance(consumed, int) or (stamp is not None and not all(isinstance(x, int) for x in stamp)):
                keep("mismatch", "the stored session does not say how much of it was read")
                return
            try:
                proof = _transcripts.removable(p, consumed=consumed, stamp=stamp, quiet_ns=quiet_ns)
            except FileNotFoundError:
                if p == path:
                    keep("changed", "it is gone")
                    return
                continue  # a sub-agent file removed meanwhile: nothing of it to keep
            except OSError as exc:
                keep("error", f"{p.name} cannot be checked ({exc.strerror})")
                return
            if not isinstance(proof, os.stat_result):  # (a stat_result is a tuple too)
                code, why = proof
                keep(code, why if p == path else f"its sub-agent file {p.name}: {why}")
                return
            proofs.append((p, proof))
        try:
            # The main file last: kept, it leads the next run back to what is left.
            for p, proof in proofs[1:] + proofs[:1]:
                with contextlib.suppress(FileNotFoundError):
                    shred_file(p, expect=proof)
        except UnsafePermissions as exc:  # imported all the same; only the deletion was refused
            keep("unsafe", str(exc))
            return
        except SessionSealError as exc:
            keep("error", str(exc))
            return
        outcome.removed = True


def grown(old: Mapping[str, Any], doc: Mapping[str, Any]) -> bool:
    """Whether a transcript only grew since it was imported: more bytes consumed, no fewer
    messages, and the last message imported unchanged (a reply split over several records
    may have gained blocks: then the session is stored anew instead).  A session stored
    before source records were kept (schema 1) is stored anew once, so that it holds them all."""
    new = doc["source"]
    counts, before = new.get("source_records"), old.get("source_records")
    if counts and not isinstance(before, dict):
        return False
    start = int(old.get("messages") or 0)
    messages = doc.get("messages") or []
    more = int(new.get("consumed") or 0) > int(old.get("consumed") or 0)
    if isinstance(counts, dict) and isinstance(before, dict):
        # Counted in records, not bytes: a file resume --into wrote back holds the stored
        # records re-serialized (redacted), so its byte offsets are not the original's.
        if any(int(counts.get(f) or 0) < int(n or 0) for f, n in before.items()):
            return False
        more = counts != before or more
    if not more or len(messages) < start:
        return False
    if start == 0:
        return True
    last = messages[start - 1]
    return old.get("last_message") == [last.get("id"), len(last.get("content") or [])]


def record_counts(records: list[Any]) -> dict[str, int]:
    """How many source records each file gave ("": the main file; else a sub-agent's id)."""
    counts: dict[str, int] = {}
    for entry in records:
        agent = entry.get("agent") or ""
        counts[agent] = counts.get(agent, 0) + 1
    return counts


def records_after(records: list[Any], stored: Mapping[str, Any]) -> list[Any]:
    """The source records past the *stored* count of their file: what an append adds (each
    file only grows, so its first records are the ones stored)."""
    seen: dict[str, int] = {}
    out = []
    for entry in records:
        agent = entry.get("agent") or ""
        seen[agent] = seen.get(agent, 0) + 1
        if seen[agent] > int(stored.get(agent) or 0):
            out.append(entry)
    return out


def raw_refs(raw: list[Any], records: list[Any]) -> list[Any]:
    """Raw events whose record is among the source records name it (its file and line)
    instead of holding a second copy of it."""
    if not records:
        return raw
    where = {id(e["record"]): e for e in records}
    out = []
    for event in raw:
        entry = where.get(id(event.get("record")))
        if entry is None:
            out.append(event)
            continue
        ref = {"line": entry["line"], **({"agent": entry["agent"]} if "agent" in entry else {})}
        out.append({**{k: v for k, v in event.items() if k != "record"}, "source_record": ref})
    return out


def audit_of(out: list[TranscriptOutcome]) -> tuple[dict[str, int], list[tuple[str, uuid.UUID, dict[str, Any]]]]:
    """The audit record of an import: files counted by action, and the sessions stored."""
    counts: dict[str, int] = {}
    for o in out:
        counts[o.action] = counts.get(o.action, 0) + 1
    stored = [
        ("imported", o.session_id, {"action": o.action, "messages": o.messages, "redactions": o.redactions})
        for o in out
        if o.session_id is not None and o.action in ("new", "appended", "updated")
    ]
    return {"files": len(out), **counts}, stored
