"""Finding and reading transcript files: the discovery under a tool's directory, reading one
file (decompressed, up to the size its fstat gave: the stamp an import records), telling the
formats apart, gathering a Claude Code session's side files: its sub-agent files and its
tool-results files (docs/capture/claude.md), and telling an older Gemini CLI ``.json`` that its
``.jsonl`` took over (docs/capture/gemini.md).
"""

from __future__ import annotations

import functools
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from .._compress import decompress_head, decompress_stream
from ..errors import InvalidInput, StorageError
from ._claude import CLAUDE_KINDS, parse_claude
from ._codex import CODEX_ENVELOPES, CODEX_LEGACY_ITEMS, parse_codex
from ._document import GEMINI, Transcript
from ._gemini import gemini_source_id, grew_in_place, parse_gemini
from ._values import first_objects, parse_instant

#: How much of an older-layout ``agent-*.jsonl`` is read to learn which session it serves.
_PEEK: Final = 1 << 20


def find_claude(root: Path) -> list[Path]:
    """Every Claude Code main-session ``*.jsonl`` under *root* (a ``projects`` directory, or
    ``~/.claude`` itself), sorted.

    Sub-agent files (``agent-*.jsonl``, anything under ``subagents/``) are not listed: they
    are read with their main session by :func:`read_transcript`.
    """
    base = root / "projects" if (root / "projects").is_dir() else root
    return [
        p
        for p in _walk(base)
        if p.name.endswith(".jsonl")
        and not p.name.startswith("agent-")
        and "subagents" not in p.relative_to(base).parts
    ]


def find_codex(root: Path) -> list[Path]:
    """Every Codex rollout (``*.jsonl`` and ``*.jsonl.zst``) under *root* (a ``sessions``
    directory, or ``~/.codex`` itself), sorted."""
    base = root / "sessions" if (root / "sessions").is_dir() else root
    return [p for p in _walk(base) if p.name.endswith((".jsonl", ".jsonl.zst"))]


def find_gemini(root: Path) -> list[Path]:
    """Every Gemini CLI main session (``chats/session-*.json`` and ``.jsonl``) under *root* (a
    ``tmp`` directory, or ``~/.gemini`` itself), sorted.

    A ``.json`` session with a ``.jsonl`` of the same name beside it is not listed: Gemini CLI
    resumed it into that file, which holds all of it (docs/capture/gemini.md).  Sub-agent
    files (``chats/<parent id>/<id>.jsonl``) are not listed.
    """
    base = root / "tmp" if (root / "tmp").is_dir() else root
    found = [
        p
        for p in _walk(base)
        if p.parent.name == "chats" and p.name.startswith("session-") and p.name.endswith((".json", ".jsonl"))
    ]
    names = {str(p) for p in found}
    return [p for p in found if not (p.name.endswith(".json") and f"{p}l" in names)]


def _walk(base: Path) -> list[Path]:
    # os.walk does not follow symlinked directories: a link loop cannot hang a scan.
    found: list[Path] = []
    for top, _dirs, files in os.walk(base):
        found += [p for name in files if (p := Path(top, name)).is_file()]
    return sorted(found)


def read_transcript(path: Path, *, max_bytes: int = 512 << 20) -> Transcript:
    """Read and parse one transcript file, Claude Code, Codex or Gemini CLI (told apart by name
    and content).

    A ``.zst`` file is decompressed first.  A Claude Code main session brings its sub-agent
    files along (``<session>/subagents/agent-*.jsonl``, and older ``agent-*.jsonl`` beside it
    whose records name this session); their paths are in ``document["source"]["sidechain_paths"]``.
    It also brings its tool-results files (``<session>/tool-results/*``), their text put in the
    tool results that name them; their paths are in ``document["source"]["tool_result_paths"]``
    and the stamp of every side file read in ``document["source"]["side_stamps"]``.

    :raises InvalidInput: missing, larger than *max_bytes* (decompressed), or not a transcript.
    :raises StorageError: the file system refused the read.
    """
    path = Path(path)
    data, st = _read(path, max_bytes)
    if _looks_like_gemini(path, data):
        sidechains, paths, notes = _gemini_sub_agents(path, data, max_bytes)
        transcript = parse_gemini(path, data, _project_root(path), sidechains)
        if paths:
            transcript.document["source"]["sidechain_paths"] = [str(p) for p in paths]
        transcript.warnings += notes + _gemini_migrated(path, transcript, max_bytes)
    elif _looks_like_codex(path, data):
        transcript = parse_codex(path, data)
    else:
        sidechains, stamps, notes = _claude_sidechains(path, data, max_bytes)
        results, result_stamps, more = _claude_tool_results(path, max_bytes)
        transcript = parse_claude(path, data, sidechains, {p.name: text for p, text in results.items()})
        source = transcript.document["source"]
        source["sidechain_paths"] = list(stamps)
        if not path.name.startswith("agent-"):
            # What was read beside the file, with the fstat of each read: the unchanged check
            # (side_files_changed) and the removal (which takes these paths only) use them.
            source["tool_result_paths"] = [str(p) for p in results]
            source["side_stamps"] = {**stamps, **result_stamps}
        transcript.warnings += notes + more
    transcript.stat = st
    return transcript


def identify(path: Path, *, head: int = 1 << 18) -> tuple[str, str]:
    """The tool and the tool's session id of a transcript, from its first records only: an
    import looks here first, and skips a file it already holds unchanged without parsing it.

    The head is parsed by the same parsers, so the id is the one a full read gives (it comes
    from the first records of both formats).

    :raises InvalidInput: the head holds no complete record.
    :raises StorageError: the file system refused the read.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            if path.name.endswith(".zst"):
                try:
                    data = decompress_head(f, head)
                except InvalidInput as exc:
                    raise InvalidInput(f"{path}: {exc}") from None
            else:
                data = f.read(head)
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such transcript file") from None
    except OSError as exc:
        raise StorageError(f"{path}: cannot read it ({exc.strerror})") from None
    if _looks_like_gemini(path, data):
        # A whole-file JSON document has no complete head to parse: its id opens it.
        sid = gemini_source_id(path, data)
        if sid is None:
            raise InvalidInput(f"{path}: its head does not name its session")
        return GEMINI, sid
    data = data[: data.rfind(b"\n") + 1]  # whole lines only
    t = parse_codex(path, data) if _looks_like_codex(path, data) else parse_claude(path, data)
    return t.tool, t.source_id


def _read(path: Path, max_bytes: int) -> tuple[bytes, os.stat_result]:
    """The bytes of a file (decompressed, for ``.zst``) and its fstat taken before reading.

    A regular file is read up to the size that fstat gave, not past it: what an agent appends
    meanwhile is left for the next import, and the stamp describes exactly what was read.
    """
    try:
        with path.open("rb") as f:
            st = os.fstat(f.fileno())
            if path.name.endswith(".zst"):
                try:
                    return decompress_stream(f, max_bytes), st
                except InvalidInput as exc:
                    raise InvalidInput(f"{path}: {exc}") from None
            regular = stat.S_ISREG(st.st_mode)
            data = f.read(min(st.st_size, max_bytes + 1) if regular else max_bytes + 1)
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such transcript file") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path}: is a directory, not a transcript file") from None
    except OSError as exc:
        raise StorageError(f"{path}: cannot read it ({exc.strerror})") from None
    if len(data) > max_bytes:
        raise InvalidInput(f"{path}: larger than {max_bytes} bytes; not read")
    return data, st


def _looks_like_gemini(path: Path, data: bytes) -> bool:
    """Gemini CLI by its file name (neither other tool writes ``.json`` or ``session-*``), else
    by a record only it writes (a ``projectHash``, a ``$set`` or a ``$rewindTo``)."""
    name = path.name
    if name.endswith(".json") or (name.startswith("session-") and name.endswith(".jsonl")):
        return True
    if name.startswith("rollout-") or name.endswith(".zst"):
        return False
    return any("projectHash" in obj or "$set" in obj or "$rewindTo" in obj for obj in first_objects(data, 5))


def _gemini_migrated(path: Path, t: Transcript, max_bytes: int) -> list[str]:
    """The older ``.json`` a ``.jsonl`` session was migrated from, when all of it is in this
    read (the same session; its messages, unchanged, the first ones; its raw records among
    these): listed in ``source["sidechain_paths"]``, so that ``--remove-originals`` proves and
    removes it with the ``.jsonl``.  Otherwise it is left alone, and a warning says so."""
    old = path.with_name(path.name[:-1]) if path.name.endswith(".jsonl") else None
    if old is None or not old.is_file():
        return []
    try:
        before = parse_gemini(old, _read(old, max_bytes)[0])
    except (InvalidInput, StorageError):
        return [f"{old.name} beside it was not read; it is kept"]
    done = before.document
    raw_now = {json.dumps(e["record"], sort_keys=True) for e in t.document["raw_events"]}
    if (
        before.source_id != t.source_id
        or not grew_in_place({**done["source"], "messages": len(done["messages"])}, t.document)
        or any(json.dumps(e["record"], sort_keys=True) not in raw_now for e in done["raw_events"])
    ):
        return [f"{old.name} beside it is not all in this session; it is kept"]
    source = t.document["source"]
    source["sidechain_paths"] = [*source.get("sidechain_paths", []), str(old)]
    # Keyed by its file name: the removal looks its consumed size up by that name.
    source["sidechains"] = {
        **source.get("sidechains", {}),
        old.name: {"records": before.records, "consumed": before.consumed},
    }
    return []


def gemini_superseded(path: Path, t: Transcript, stored: Mapping[str, Any] | None) -> str | None:
    """Why the older ``.json`` session *t* read from *path* must not be stored, or None.

    Gemini CLI resumes a ``.json`` session into ``<name>.jsonl``, copying its ``lastUpdated``,
    and writes only there from then on: the ``.json`` it leaves is the session as it was
    (google-gemini/gemini-cli ``chatRecordingService.ts``, ``initialize``).  Stored, it would
    replace what the ``.jsonl`` holds now (a rewind after the resume makes the ``.json``
    more than a prefix of it).  So it is superseded while that ``.jsonl`` (the same session)
    is beside it, and once the vault's session (*stored*: its summary) was last stored from
    that ``.jsonl``, unless the ``.json`` was updated after it (an older Gemini CLI went on
    with it): then it is the newer file.  No time to compare means superseded: the vault
    keeps what it has, the file stays, and nothing is lost either way.
    """
    if not path.name.endswith(".json") or t.tool != GEMINI:
        return None
    successor = path.with_name(path.name + "l")
    if successor.is_file():
        try:
            beside = identify(successor)
        except (InvalidInput, StorageError):
            beside = None
        if beside == (GEMINI, t.source_id):
            return f"{successor.name} beside it holds this session (Gemini CLI resumed it there); it is kept"
    source = stored.get("source") if stored is not None else None
    # Its name, not its whole path: the same file reached from another spelling of the path.
    if stored is None or not isinstance(source, Mapping) or Path(str(source.get("path"))).name != successor.name:
        return None
    mine = parse_instant(t.document["source"].get("last_updated"))
    theirs = parse_instant(source.get("last_updated")) or parse_instant(stored.get("updated_at"))
    if mine is not None and theirs is not None and mine > theirs:
        return None
    return f"the vault holds this session from {successor.name}, written after it; it is kept"


def _gemini_sub_agents(path: Path, data: bytes, max_bytes: int) -> tuple[dict[str, bytes], list[Path], list[str]]:
    """The sub-agent files of a Gemini main session: ``chats/<its session id>/<id>.jsonl``."""
    sid = gemini_source_id(path, data[: 1 << 18]) if path.name.startswith("session-") else None
    if sid is None or "/" in sid or "\\" in sid or sid in (".", ".."):
        return {}, [], []
    folder = path.parent / sid
    if not folder.is_dir():
        return {}, [], []
    blobs: dict[str, bytes] = {}
    paths: list[Path] = []
    notes: list[str] = []
    for p in sorted(folder.glob("*.jsonl")):
        agent = p.name.removesuffix(".jsonl")
        if not p.is_file() or agent.startswith("agent-"):  # (the removal keys sub-agents without it)
            continue
        try:
            blobs[agent] = _read(p, max_bytes)[0]
        except (InvalidInput, StorageError) as exc:
            notes.append(f"sub-agent {agent} was not read: {exc}")
            continue
        paths.append(p)
    return blobs, paths, notes


def _project_root(path: Path) -> str | None:
    """The project a Gemini session belongs to: ``.project_root`` in its project directory
    (``tmp/<slug>/``, releases with ``projects.json``); None for older hashed directories."""
    if path.parent.name != "chats":
        return None
    try:
        with open(path.parent.parent / ".project_root", "rb") as f:
            text = f.read(4097).decode().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if 0 < len(text) <= 4096 and "\n" not in text and "\x00" not in text else None


def _looks_like_codex(path: Path, data: bytes) -> bool:
    """Codex by its file name, else by the first records that only one of the tools writes."""
    if path.name.startswith("rollout-") or path.name.endswith(".zst"):
        return True
    for obj in first_objects(data, 50):
        kind = obj.get("type")
        if kind in CODEX_ENVELOPES or "record_type" in obj or kind in CODEX_LEGACY_ITEMS:
            return True
        if kind in CLAUDE_KINDS or "sessionId" in obj:
            return False
        if kind is None and "id" in obj and "instructions" in obj:
            return True  # the bare session meta that opens a legacy rollout
    return ".codex" in path.parts


def _claude_sidechains(
    path: Path, data: bytes, max_bytes: int
) -> tuple[dict[str, bytes], dict[str, list[int]], list[str]]:
    """The sub-agent files of a main session, both layouts, keyed by agent id; the stamp
    (size, mtime_ns) of each file read, by path; notes on those that could not be read."""
    found: dict[str, Path] = {}
    if path.name.startswith("agent-"):
        return {}, {}, []  # a sub-agent file read on its own has no sub-agents
    newer = path.parent / path.name.removesuffix(".jsonl") / "subagents"
    if newer.is_dir():
        found.update((_agent_id(p), p) for p in sorted(newer.glob("agent-*.jsonl")) if p.is_file())
    # Older layout: agent files sit beside every main session of the project; each record
    # names its parent session, so only those naming this one are taken.
    ours = {path.name.removesuffix(".jsonl")}
    ours.update(s for obj in first_objects(data, 20) if isinstance(s := obj.get("sessionId"), str))
    for p in sorted(path.parent.glob("agent-*.jsonl")):
        if _agent_id(p) not in found and p.is_file() and _peek_session(p) in ours:
            found[_agent_id(p)] = p
    blobs: dict[str, bytes] = {}
    stamps: dict[str, list[int]] = {}
    notes: list[str] = []
    for agent, p in found.items():
        try:
            blobs[agent], st = _read(p, max_bytes)
        except (InvalidInput, StorageError) as exc:
            notes.append(f"sidechain {agent} was not read: {exc}")
            continue
        stamps[str(p)] = [st.st_size, st.st_mtime_ns]
    return blobs, stamps, notes


def _session_dir(path: Path, name: str) -> Path | None:
    """``<session>/<name>`` beside a main session file, if both are real directories (a link
    is not followed: what is read here may later be removed)."""
    d = path.parent / path.name.removesuffix(".jsonl")
    for p in (d, d / name):
        try:
            if not stat.S_ISDIR(os.lstat(p).st_mode):
                return None
        except OSError:
            return None
    return d / name


def claude_side_files(path: Path) -> list[Path]:
    """The side files a Claude Code main session has now in its own directory: sub-agent files
    (``<session>/subagents/agent-*.jsonl``) and tool-results files (``<session>/tool-results/*``),
    regular files only (links are neither read nor removed), sorted."""
    if path.name.startswith("agent-"):
        return []
    found: list[Path] = []
    for name, pattern in (("subagents", "agent-*.jsonl"), ("tool-results", "*")):
        d = _session_dir(path, name)
        if d is not None:
            found += [p for p in d.glob(pattern) if _regular(p)]
    return sorted(found)


def _regular(p: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(p).st_mode)
    except OSError:
        return False


def side_files_changed(path: Path, stamps: Mapping[str, Any] | None) -> bool:
    """Whether a Claude Code session's side files differ from *stamps* (``side_stamps`` of its
    import): a file that was not there, or one whose size or time changed.  The transcript
    itself may be unchanged meanwhile (a tool-results file written after the last read):
    the import then reads the session again.  A side file that is gone is no change: there
    is nothing new to take, and what was imported of it stays in the vault."""
    stamps = stamps if isinstance(stamps, Mapping) else {}
    if any(str(p) not in stamps for p in claude_side_files(path)):
        return True
    for name, stamp in stamps.items():
        try:
            st = os.lstat(name)
        except FileNotFoundError:
            continue
        except OSError:
            return True
        if [st.st_size, st.st_mtime_ns] != stamp:
            return True
    return False


def _claude_tool_results(path: Path, max_bytes: int) -> tuple[dict[Path, str], dict[str, list[int]], list[str]]:
    """The text of a main session's tool-results files (anthropics/claude-code#23948: large
    tool outputs saved as ``<session>/tool-results/<tool_use_id>.txt``), by path; the stamp of
    every regular file there, by path; notes (names, never content) on those not imported."""
    d = _session_dir(path, "tool-results")
    if d is None or path.name.startswith("agent-"):
        return {}, {}, []
    texts: dict[Path, str] = {}
    stamps: dict[str, list[int]] = {}
    notes: list[str] = []
    for p in sorted(d.iterdir()):
        try:
            blob, st = _read_regular(p, max_bytes)
        except (InvalidInput, StorageError) as exc:
            notes.append(f"tool-results file {p.name} was not read: {exc}")
            continue
        stamps[str(p)] = [st.st_size, st.st_mtime_ns]
        try:
            texts[p] = blob.decode("utf-8")
        except UnicodeDecodeError:
            # Not text: stored with replacement characters it would not be what the file
            # holds, and the file would be removed for a lossy copy.  It stays where it is.
            notes.append(f"tool-results file {p.name} is not UTF-8 text: not imported, left in place")
    return texts, stamps, notes


def _read_regular(path: Path, max_bytes: int) -> tuple[bytes, os.stat_result]:
    """A regular file's bytes up to the size its fstat gave (opened without following a link)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise StorageError(f"{path}: cannot read it ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidInput(f"{path}: not a regular file; not read")
        if st.st_size > max_bytes:
            raise InvalidInput(f"{path}: larger than {max_bytes} bytes; not read")
        try:
            data = f.read(st.st_size)
        except OSError as exc:
            raise StorageError(f"{path}: cannot read it ({exc.strerror})") from None
    return data, st


def _agent_id(path: Path) -> str:
    return path.name.removeprefix("agent-").removesuffix(".jsonl")


def _peek_session(path: Path) -> str | None:
    """The session an older-layout agent file serves, from its first records."""
    try:
        st = path.stat()
    except OSError:
        return None
    # Every main session of a project asks about every agent file beside it: an import of
    # the project would read each file once per session without the cache.
    return _session_of(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=4096)
def _session_of(path: str, _mtime_ns: int, _size: int) -> str | None:
    head = b""
    try:
        with open(path, "rb") as f:
            # The first line is the sub-agent's prompt: usually small, read until it ends.
            while b"\n" not in head and len(head) < _PEEK and (chunk := f.read(1 << 16)):
                head += chunk
    except OSError:
        return None
    for obj in first_objects(head, 20):
        if isinstance(sid := obj.get("sessionId"), str):
            return sid
    return None
