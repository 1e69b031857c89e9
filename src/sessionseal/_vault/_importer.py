"""Transcript import: Claude Code and Codex transcript files become sessions (docs/importing.md;
the parsers are in _transcripts.py).

A transcript's session id is derived from the tool's own session id, so importing is
idempotent: unchanged files are skipped, grown ones appended to, changed ones stored anew
(after a checkpoint).  An original is removed only when proved safe (:meth:`remove_original`).
"""

from __future__ import annotations

import contextlib
import hashlib
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
                # One file at a time, decision and store together: a second run for the same
                # session (hooks overlap) then finds the first one's append, not the old state.
                with self._ctx.import_lock():
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
        outcome.tool_results = len(t.document["source"].get("tool_result_paths") or [])
        doc = dict(t.document)
        messages = doc.get("messages") or []
        outcome.messages = len(messages)
        doc["id"] = str(sid)
        records = doc.get("source_records") or []
        doc["raw_events"] = raw_refs(doc.get("raw_events") or [], records)
        doc["source"] = {
            **(doc.get("source") or {}),
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "messages": len(messages),
            "raw_events": len(doc["raw_events"]),
            "last_message": _last_stamp(messages),
            "source_records": record_counts(records),
        }
        fname = self._keys.file_name(sid) + SUFFIX
        exists = self._ctx.sessions.exists(fname)
        summary = self._store.read_summary(fname) if exists else None
        if (why := _transcripts.gemini_superseded(path, t, summary)) is not None:
            # Stored, it would replace newer messages (the file stays: it is not in the vault).
            outcome.action = "superseded"
            outcome.warnings.append(why)
            return
        old = summary.get("source") if summary is not None else None
        old = old if isinstance(old, dict) else None
        if not exists:
            outcome.action = "new"
        else:  # a session without a source record is never appended to: stored anew, kept first
            # A file resume --into wrote lives in the vault's run/ (_resume._runtime.RUN_DIR).
            back = Path(os.path.realpath(path)).is_relative_to(os.path.realpath(self._ctx.path / "run"))
            outcome.action = "appended" if old is not None and grown(old, doc, written_back=back) else "updated"
        extend: int | None = None
        new_records: list[Any] = []
        if outcome.action == "appended":
            # Only what is new is validated, sanitized and encrypted: the rest is stored.
            assert old is not None
            part, extend, new_records = appended_part(old, doc, records)
            model = parse_session(part)
        else:
            model = parse_session(doc)  # validated before anything is stored
        if not dry_run:
            raw = doc["raw_events"]
            raw_changed = old is not None and int(old.get("raw_events") or 0) != len(raw)
            outcome.redactions = self.store(
                sid, model, outcome.action, raw if raw_changed else None, new_records, extend=extend
            )
        if remove is not None and not dry_run:
            self.remove_original(path, sid, doc, outcome, remove)

    def unchanged(self, path: Path, st: os.stat_result, outcome: TranscriptOutcome) -> bool:
        """Whether the vault holds this file as it is (same path, size and time, and for Claude
        Code the same side files: sub-agent and tool-results files, which may change while the
        transcript does not), found by the session id in its first records: then it is not
        parsed at all."""
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
        if tool == _transcripts.CLAUDE and _transcripts.side_files_changed(path, old.get("side_stamps")):
            return False
        outcome.tool, outcome.source_id, outcome.session_id = tool, source_id, sid
        outcome.action, outcome.messages = "unchanged", int(summary.get("message_count") or 0)
        return True

    def store(
        self,
        sid: uuid.UUID,
        model: Session,
        action: str,
        raw_events: list[Any] | None,
        records: list[Any],
        *,
        extend: int | None = None,
    ) -> dict[str, int]:
        """Store a transcript's session: whole (new, updated), or its new part (appended: the
        model holds only the new messages, the new source *records*, and the fields that
        changed; with *extend*, the stored last message first, whole, of which the first
        *extend* blocks are stored)."""
        if action != "appended":
            if action == "updated":
                self._checkpoint(sid, f"before re-import {_common.now():%Y-%m-%d %H:%M:%S.%f}")
            return self._save_model(model, touch=False)
        doc = model.model_dump(mode="json")
        messages = doc["messages"]
        ops: list[dict[str, Any]] = []
        if extend is not None:
            # The stored last message went on: its new blocks, and its usage as it now stands.
            first, messages = messages[0], messages[1:]
            ops.append({"op": "extend", "value": {"content": first["content"][extend:], "usage": first.get("usage")}})
        ops += [{"op": "message", "value": m} for m in messages]
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

    def remove_original(
        self, path: Path, sid: uuid.UUID, doc: Mapping[str, Any] | None, outcome: TranscriptOutcome, quiet_ns: int
    ) -> None:
        """Delete an imported original (and its sub-agent and tool-results files) once it is
        proved safe to: the session reads back whole (the right number of messages when the
        file was just read: *doc*; the source stamp of the file as it is), no side file
        appeared since the read, and every file is removable as :func:`_transcripts.removable`
        checks it now: read and stored up to its size (a JSON-lines file: ending with a complete
        line), quiet for *quiet_ns*, open for writing nowhere.  Otherwise every file stays, and
        *outcome* says why.  The session's own directories go too, once empty (never a tree)."""
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
        checks = _removal_checks(path, source)
        if isinstance(checks, str):
            keep("changed", checks)
            return
        proofs = _prove(path, checks, quiet_ns)
        if isinstance(proofs, tuple):
            keep(*proofs)
            return
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
        if source.get("tool") == _transcripts.CLAUDE:
            _remove_empty_dirs(path)


def grown(old: Mapping[str, Any], doc: Mapping[str, Any], *, written_back: bool = False) -> bool:
    """Whether a transcript only grew since it was imported: more bytes consumed, no fewer
    messages, the messages before the last one imported unchanged (their ids, roles, block
    counts and usage, by digest), and the last one the same message with at least its blocks.
    A reply written as one record per block may have gained blocks, and a count its usage:
    :func:`went_on` says so, and the append extends it.  Otherwise it is stored anew.  A
    session stored before source records were kept (schema 1) is stored anew once, so that it
    holds them all.  *written_back*: the file is one ``resume --into`` wrote from the vault
    (under its ``run/``), whose text is the sanitized copy."""
    new = doc["source"]
    if "digest" in new:  # a file rewritten in place (Gemini CLI): its messages must be unchanged
        from .. import _transcripts

        return _transcripts.grew_in_place(old, doc, written_back=written_back)
    start = int(old.get("messages") or 0)
    messages = doc.get("messages") or []
    if not _gave_more(old, new) or len(messages) < start:
        return False
    return start == 0 or _stamp_holds(old.get("last_message"), messages, start)


def _gave_more(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether the file gave more than was stored: more records of its files, else (stored
    before records were counted) more bytes consumed.  A session stored before source records
    were kept (schema 1) gave nothing to append to: it is stored anew once, to hold them all."""
    counts, before = new.get("source_records"), old.get("source_records")
    more = int(new.get("consumed") or 0) > int(old.get("consumed") or 0)
    if counts and not isinstance(before, dict):
        return False
    if isinstance(counts, dict) and isinstance(before, dict):
        # Counted in records, not bytes: a file resume --into wrote back holds the stored
        # records re-serialized (redacted), so its byte offsets are not the original's.
        if any(int(counts.get(f) or 0) < int(n or 0) for f, n in before.items()):
            return False
        return counts != before or more
    return more


def _stamp_holds(stamp: Any, messages: list[Any], start: int) -> bool:
    """Whether the last stored message (*stamp*, :func:`_last_stamp`) is still message
    *start* of *messages*, with at least its blocks, after the same messages."""
    last = messages[start - 1]
    # [id, blocks, digest of the messages before it, usage].  A stamp of before issue 22 is
    # [id, blocks]: its session was read by the parser of then (no Codex prompt events, Codex's
    # own token counts), so it is stored anew once rather than appended to.
    if not isinstance(stamp, list) or len(stamp) != 4 or stamp[0] != last.get("id"):
        return False
    if not isinstance(stamp[1], int) or isinstance(stamp[1], bool) or len(last.get("content") or []) < stamp[1]:
        return False
    return bool(stamp[2] == _digest(messages[: start - 1]))


def appended_part(
    old: Mapping[str, Any], doc: Mapping[str, Any], records: list[Any]
) -> tuple[dict[str, Any], int | None, list[Any]]:
    """What an append of a grown transcript stores: the document with only the new messages
    (led by the last stored one when it went on: :func:`went_on`, whose block count is the
    second item), and the new source records (stored by their own operation)."""
    messages = doc.get("messages") or []
    start = int(old.get("messages") or 0)
    extend = went_on(old, messages)
    part = {**doc, "messages": messages[start - (extend is not None) :], "raw_events": [], "source_records": []}
    return part, extend, records_after(records, old.get("source_records") or {})


def went_on(old: Mapping[str, Any], messages: list[Any]) -> int | None:
    """For a transcript that :func:`grown`: how many blocks of its last stored message are
    stored when that message went on (more blocks, or another usage), else None."""
    start, stamp = int(old.get("messages") or 0), old.get("last_message")
    if start == 0 or not isinstance(stamp, list):
        return None
    last = messages[start - 1]
    return stamp[1] if len(last.get("content") or []) > stamp[1] or stamp[3] != last.get("usage") else None


def _last_stamp(messages: list[Any]) -> list[Any]:
    """What an append needs to know of the messages stored (:func:`grown`)."""
    last = messages[-1] if messages else {}
    return [last.get("id"), len(last.get("content") or []), _digest(messages[:-1]), last.get("usage")]


def _digest(messages: list[Any]) -> str:
    """The shape of *messages* (ids, roles, block counts, usage): never their content."""
    shape = [[m.get("id"), m.get("role"), len(m.get("content") or []), m.get("usage")] for m in messages]
    return hashlib.sha256(orjson.dumps(shape, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


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


#: A file to prove removable: its path, how much of it was consumed, its stamp (size, mtime_ns)
#: when it was read, and whether it is JSON lines (consumed and a final newline are checked; a
#: tool-results file is not: its stamp, required, proves it is what was read).
_Check = tuple[Path, Any, Any, bool]


def _prove(path: Path, checks: list[_Check], quiet_ns: int) -> list[tuple[Path, os.stat_result]] | tuple[str, str]:
    """Each file of *checks* with the fstat that proves it removable now, or why all are kept."""
    from .. import _transcripts

    proofs: list[tuple[Path, os.stat_result]] = []
    for p, consumed, stamp, lines in checks:
        if (lines and not isinstance(consumed, int)) or (stamp is not None and not _ints(stamp)):
            return "mismatch", "the stored session does not say how much of it was read"
        try:
            proof = _transcripts.removable(p, consumed=consumed or 0, stamp=stamp, quiet_ns=quiet_ns, lines=lines)
        except FileNotFoundError:
            if p == path:
                return "changed", "it is gone"
            continue  # a side file removed meanwhile: nothing of it to keep
        except OSError as exc:
            return "error", f"{p.name} cannot be checked ({exc.strerror})"
        if not isinstance(proof, os.stat_result):  # (a stat_result is a tuple too)
            code, why = proof
            return code, why if p == path else f"{_side_name(p)}: {why}"
        proofs.append((p, proof))
    return proofs


def _removal_checks(path: Path, source: Mapping[str, Any]) -> list[_Check] | str:
    """What :meth:`TranscriptImporter.remove_original` checks, main file first (:data:`_Check`),
    or why nothing may be removed: a side file appeared in the session's directory since the
    import (removing the transcript would leave it behind, never imported)."""
    from .. import _transcripts

    # The main file against its stamp; sub-agent files by what was consumed of them.
    sides = source.get("sidechains") or {}
    checks: list[_Check] = [(path, source.get("consumed"), (source.get("size"), source.get("mtime_ns")), True)]
    for extra in source.get("sidechain_paths") or []:
        p = Path(extra)
        agent = p.name.removeprefix("agent-").removesuffix(".jsonl")
        checks.append((p, (sides.get(agent) or {}).get("consumed"), None, True))
    stamps = source.get("side_stamps")
    stamps = stamps if isinstance(stamps, dict) else {}
    for extra in source.get("tool_result_paths") or []:
        checks.append((Path(extra), None, stamps.get(extra), False))
    # A file seen at the import but not taken (not UTF-8 text: its warning said so) stays,
    # and does not hold the rest back.
    seen = {str(c[0]) for c in checks} | set(stamps)
    if source.get("tool") == _transcripts.CLAUDE and any(
        str(p) not in seen for p in _transcripts.claude_side_files(path)
    ):
        return "a file beside it (sub-agent or tool-results) is not imported yet (the next import takes it)"
    return checks


def _ints(stamp: Any) -> bool:
    return isinstance(stamp, list | tuple) and len(stamp) == 2 and all(isinstance(x, int) for x in stamp)


def _side_name(p: Path) -> str:
    kind = "tool-results file" if p.parent.name == "tool-results" else "sub-agent file"
    return f"its {kind} {p.name}"


def _remove_empty_dirs(path: Path) -> None:
    """The removed session's own directories (``<session>/tool-results``, ``<session>/subagents``,
    ``<session>``), each only if it is now empty: rmdir refuses one that is not (anything left
    there, the agent's or another tool's, stays with its directory), and a link is not a
    directory to it."""
    if path.name.startswith("agent-"):
        return
    base = path.parent / path.name.removesuffix(".jsonl")
    for d in (base / "tool-results", base / "subagents", base):
        with contextlib.suppress(OSError):
            os.rmdir(d)
