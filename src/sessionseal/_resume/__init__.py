"""``resume --into``: a stored session written back in an agent's own layout, and the agent
started on it (docs/capture/resume.md).

The stored session keeps each record of the transcript it was imported from (sanitized:
``source_records``), so writing it back is a writer, not a converter: the lines come out as the
agent wrote them, redactions aside.  By default they are written into a private home under the
vault (``run/``), the agent runs with its config directory moved there, and when it exits what
it added is sealed back into the vault as an append and the home is shredded: the plaintext
exists only while the agent runs.  A home a killed resume left is sealed back and shredded by
the next resume, or ``resume --cleanup`` (:func:`sweep`).

Layouts are in :mod:`._layout` and :mod:`._gemini` (one :class:`~._layout.Writer` per agent); the private homes
in :mod:`._runtime`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ..errors import InvalidInput, SessionSealError, StorageError
from . import _runtime
from ._gemini import GeminiWriter
from ._layout import ClaudeWriter, CodexWriter, Files, Writer, project_key

if TYPE_CHECKING:
    from .._vault import TranscriptOutcome, Vault

__all__ = ["INTO", "ResumeResult", "Sealer", "cleanup_resumes", "project_key", "resume_session", "sweep"]

#: The agents ``resume --into`` writes for, by their ``--into`` name.
WRITERS: Final[dict[str, Writer]] = {w.into: w for w in (ClaudeWriter(), CodexWriter(), GeminiWriter())}
#: The names ``--into`` accepts.
INTO: Final = tuple(WRITERS)

#: Seals transcripts back into the vault (:meth:`Vault.import_transcripts`): one outcome per file.
Sealer = Callable[[list[Path]], "list[TranscriptOutcome]"]


@dataclass
class ResumeResult:
    """What ``resume --into`` did (never content: paths, ids, counts)."""

    into: str
    session_id: uuid.UUID
    source_id: str
    cwd: str
    #: The main transcript written, and every file.
    path: str
    files: list[str]
    #: The command that resumes it (run from *cwd*; with the config variable when *home* is set).
    command: list[str]
    executed: bool
    #: The private home the agent ran in (gone when *shredded*), or None (written in place).
    home: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    agent_status: int | None = None
    sealed: list[TranscriptOutcome] = field(default_factory=list)
    shredded: bool = False
    #: Homes of killed resumes that this run sealed back and shredded first.
    swept: int = 0


def writer_for(doc: dict[str, Any], into: str) -> Writer:
    """The writer of *into*, for a session it can write back.

    :raises InvalidInput: an unknown agent, a session from another agent, or one without records.
    """
    writer = WRITERS.get(into)
    if writer is None:
        raise InvalidInput(f"--into is one of {', '.join(INTO)}")
    source = doc.get("source")
    source = source if isinstance(source, dict) else {}
    tool = source.get("tool")
    if tool != writer.tool:
        came = (
            f"came from {tool}"
            if isinstance(tool, str) and tool in {w.tool for w in WRITERS.values()}
            else ("is not an imported agent transcript")
        )
        raise InvalidInput(f"the session {came}; it can be resumed only in the agent it came from")
    if not doc.get("source_records") or not isinstance(source.get("source_id"), str):
        raise InvalidInput(
            "the session holds no source records (imported before sessionseal kept them): "
            "import its transcript again with import-transcripts, then resume"
        )
    return writer


def _workdir(doc: dict[str, Any], cwd: str | None) -> str:
    """The directory the agent resumes from: *cwd*, else the session's own if it still
    exists, else the current one (Claude Code finds a session only from its project's directory)."""
    if cwd is not None:
        if not os.path.isdir(cwd):
            raise InvalidInput("--cwd is not a directory")
        return os.path.realpath(cwd)
    for key in ("working_directory", "workspace"):
        value = doc.get(key)
        if isinstance(value, str) and value and os.path.isdir(value):
            return os.path.realpath(value)
    return os.path.realpath(os.getcwd())


def _command(writer: Writer, source_id: str, agent_command: Sequence[str] | None) -> list[str]:
    base = list(agent_command or [])
    resume = writer.argv(source_id)
    return (base or resume[:1]) + resume[1:]


def resume_session(
    vault: Vault,
    session_id: uuid.UUID | str,
    *,
    into: str,
    cwd: str | None = None,
    execute: bool = True,
    plaintext: bool = False,
    agent_command: Sequence[str] | None = None,
    dry_run: bool = False,
) -> ResumeResult:
    """Write a stored session back for the agent *into*; with *execute*, run the agent on it
    in a private home, seal back what it added (an append), and shred the home.  With
    *dry_run*, only say where it would go and the command (nothing is written or run).

    The read is audited as ``resume`` (who, which session, into which agent; never content).

    :raises InvalidInput: see :func:`writer_for`; no agent to run; written in place without
        *plaintext*; a file of the session exists already in place.
    :raises StorageError: the home could not be removed whole, or what the agent added could
        not be sealed back (the home is kept then, and named).
    """
    if into not in WRITERS:
        raise InvalidInput(f"--into is one of {', '.join(INTO)}")
    doc = json.loads(vault.load_json(session_id, into=into))
    writer = writer_for(doc, into)
    where = _workdir(doc, cwd)
    source_id = doc["source"]["source_id"]
    command = _command(writer, source_id, agent_command)
    result = ResumeResult(into, uuid.UUID(str(doc["id"])), source_id, where, "", [], command, execute)
    if dry_run:  # checked and said, nothing written or run
        base = writer.real_home() if not execute else vault.path / _runtime.RUN_DIR / "resume-(private)"
        result.path = str(writer.target(base, doc, where))
        result.files, result.executed = [result.path], False
        return result
    if not execute:
        if not plaintext:
            raise InvalidInput(
                f"without --exec the session is left in {writer.config_dir(writer.real_home())} in plaintext "
                "(sanitized, readable by anything that reads your files) until you remove it; "
                "pass --plaintext to accept that"
            )
        files = writer.write(writer.real_home(), doc, where)
        result.path, result.files = str(files.main), [str(p) for p in files.paths]
        return result
    if shutil.which(command[0]) is None:
        raise InvalidInput(f"{command[0]}: not found on PATH; install the agent, or name it with --agent-command")

    def seal(paths: list[Path]) -> list[TranscriptOutcome]:
        return vault.import_transcripts(paths)

    run = _runtime.run_dir(vault.path)
    result.swept = sweep(run, seal)[0]
    home = _runtime.new_home(run, into)
    result.home, result.env = str(home), {writer.env: str(home)}
    ran = False
    try:
        writer.seed(home)
        files = writer.write(home, doc, where)
        del doc  # the plaintext document is not kept while the agent runs
        result.path, result.files = str(files.main), [str(p) for p in files.paths]
        _runtime.note(home, main=str(files.main.relative_to(home)), stamps=_stamps(files))
        ran = True
        result.agent_status = _run_agent(command, {**os.environ, writer.env: str(home)}, where)
        result.sealed = _seal_home(home, writer, seal)
    except BaseException:
        if ran:
            _keep_or_shred(home, writer)
        else:  # the agent never ran: nothing in the home is new
            _runtime.shred_tree(home)
            _runtime.remove_run_dir(run)
        raise
    _runtime.check_removed(home, _runtime.shred_tree(home))
    _runtime.remove_run_dir(run)
    result.shredded = True
    return result


def _stamps(files: Files) -> dict[str, list[int]]:
    """Size and time of each transcript written (not the state database or project registry,
    which the agent updates whether or not it adds to the session)."""
    out = {}
    for p in files.paths:
        if p != files.main and not p.name.endswith(".jsonl"):
            continue
        st = os.stat(p)
        out[str(p)] = [st.st_size, st.st_mtime_ns]
    return out


def _run_agent(argv: list[str], env: dict[str, str], cwd: str) -> int:
    """Run the agent on this terminal and wait for it.  Ctrl-C and Ctrl-\\ are the agent's:
    sessionseal lets them pass meanwhile, so that it is still there to seal the session back
    when the agent exits.  (A handler, not SIG_IGN: a caught signal is reset to its default
    in the agent by exec, an ignored one would stay ignored there.)"""
    handlers = {s: signal.signal(s, _let_pass) for s in (signal.SIGINT, signal.SIGQUIT)}
    try:
        return subprocess.call(argv, env=env, cwd=cwd)
    except OSError as exc:
        raise InvalidInput(f"{argv[0]}: cannot be started ({exc.strerror})") from None
    finally:
        for s, old in handlers.items():
            signal.signal(s, old)


def _let_pass(_signum: int, _frame: object) -> None:
    return None


def _seal_home(home: Path, writer: Writer, seal: Sealer) -> list[TranscriptOutcome]:
    """Seal back every transcript in *home* that the agent wrote to: the one resume wrote
    (from the byte where the stored records end) and any new one it started.

    :raises StorageError: a transcript could not be sealed (the home is then kept).
    """
    marker = _runtime.read_marker(home)
    stamps: dict[str, Any] = marker.get("stamps") or {}
    main = str(home / str(marker.get("main")))
    changed = any(_stamp(Path(p)) != s for p, s in stamps.items())
    paths = [p for p in writer.transcripts(home) if str(p) != main or changed]
    if not paths:
        return []
    out = seal(paths)
    if any(o.action == "failed" for o in out):
        raise StorageError(f"the resumed session could not be sealed back; its files are kept in {home}")
    return out


def _stamp(path: Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _keep_or_shred(home: Path, writer: Writer) -> None:
    """After a failure: shred the home if it holds nothing the vault lacks (nothing was
    written yet, or nothing changed since), else keep it for the next sweep."""
    marker = _runtime.read_marker(home)
    stamps: dict[str, Any] = marker.get("stamps") or {}
    main = str(home / str(marker.get("main")))
    untouched = all(_stamp(Path(p)) == s for p, s in stamps.items()) and all(
        str(p) == main for p in writer.transcripts(home)
    )
    if untouched:
        _runtime.shred_tree(home)
    else:
        _runtime.note(home, abandoned=True)  # the next sweep seals it back, then shreds it


def sweep(run: Path, seal: Sealer) -> tuple[int, list[str]]:
    """Seal back, then shred, the homes killed resumes left under *run*.  A home whose
    transcripts cannot be sealed back is kept (and named), never shredded.

    Returns how many homes were removed, and the ones kept or not removed whole.
    """
    count, kept = 0, []
    for home in _runtime.leftovers(run):
        writer = WRITERS.get(str(_runtime.read_marker(home).get("tool")))
        try:
            if writer is not None and _runtime.read_marker(home).get("main"):
                _seal_home(home, writer, seal)
        except (SessionSealError, OSError):
            kept.append(str(home))
            continue
        if _runtime.shred_tree(home):
            kept.append(str(home))
        else:
            count += 1
    return count, kept


def cleanup_resumes(vault: Vault) -> tuple[int, list[str]]:
    """Seal back, then shred, what killed resumes left in the vault's ``run/`` directory
    (``resume --cleanup``; :func:`sweep`).  Returns how many homes were removed, and the
    paths of those kept (their transcripts could not be sealed back) or not removed whole."""
    if not (vault.path / _runtime.RUN_DIR).exists():
        return 0, []
    run = _runtime.run_dir(vault.path)
    out = sweep(run, vault.import_transcripts)
    _runtime.remove_run_dir(run)
    return out
