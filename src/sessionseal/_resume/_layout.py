"""Where each agent looks for a session it resumes, and the files that make it find one
(docs/capture/resume.md).  A :class:`Writer` knows one agent: its config directory and the
variable that moves it, the files of the session it writes, the credentials and settings a
private home needs, the command that resumes, and where its transcripts are afterwards.

Each agent is one :class:`Writer` in ``WRITERS`` (the package's ``__init__``; Gemini CLI's is
in :mod:`._gemini`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from .._fs import write_private_file
from ..errors import InvalidInput, StorageError

Json = dict[str, Any]

#: Claude Code cuts a project key at this many characters and adds a hash (see project_key).
_KEY_MAX: Final = 200
_NOT_ALNUM: Final = re.compile(r"[^a-zA-Z0-9]")
_AGENT_ID: Final = re.compile(r"[A-Za-z0-9_.-]{1,128}")
#: A record whose inline data the vault kept as its length (``_transcripts.slim_inline``).
_SLIMMED: Final = re.compile(r'"(?:data|image_url)":[0-9]')
#: How the sanitizer's placeholders begin (docs/sanitizer.md).
_REDACTED: Final = "[REDACTED:"


@dataclass
class Files:
    """What a writer wrote: the main transcript, every file, and its size as written."""

    main: Path
    written: int
    paths: list[Path] = field(default_factory=list)


def project_key(cwd: str) -> str:
    """Claude Code's directory name for a project: the NFC form of the directory's real path,
    every character but ASCII letters and digits made ``-``; past 200 characters, cut, then
    ``-`` and a base-36 hash of the whole path (the 32-bit ``(h << 5) - h + c`` hash the Agent
    SDK uses: ``claude-agent-sdk-python``, ``_internal/sessions.py``, ``_sanitize_path``; its
    comment says the CLI under Bun may hash long paths differently)."""
    path = unicodedata.normalize("NFC", os.path.realpath(cwd))
    key = _NOT_ALNUM.sub("-", path)
    if len(key) <= _KEY_MAX:
        return key
    h = 0
    for ch in path:
        h = (h * 31 + ord(ch)) & 0xFFFFFFFF
    h = abs(h - (1 << 32) if h >= 1 << 31 else h)
    digits, out = "0123456789abcdefghijklmnopqrstuvwxyz", ""
    while True:
        h, r = divmod(h, 36)
        out = digits[r] + out
        if h == 0:
            break
    return f"{key[:_KEY_MAX]}-{out}"


def _dumps(record: Any) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def record_lines(records: list[Json], mend: Callable[[Json], Json | None] | None = None) -> bytes:
    """Records as JSON lines, as both agents write them: compact, UTF-8, keys in their order.
    Inline data the vault kept as its length becomes a text block saying so; a record with a
    redaction goes through *mend* (the agent's own repair of what the API verifies; None: left out)."""
    out = []
    for entry in records:
        record: Json | None = json_back(entry)
        line = _dumps(record)
        if _SLIMMED.search(line):
            record = _unslim(record)
            line = _dumps(record)
        if mend is not None and _REDACTED in line and record is not None:
            record = mend(record)
            if record is None:
                continue
            line = _dumps(record)
        out.append(line.encode("utf-8", "surrogatepass") + b"\n")
    return b"".join(out)


#: How a JSON string was written (``_transcripts.JSON_STYLES``, by the same numbers): compact or
#: spaced, raw or ASCII-escaped; an unknown style is written compact.
_STYLES: Final = ((",", ":", False), (", ", ": ", False), (", ", ": ", True), (",", ":", True))


def json_back(entry: Json) -> Json:
    """The record with the fields the import parsed (JSON held in a string: Codex tool
    arguments) written back as strings, in the style they had."""
    record: Json = entry["record"]
    fields = entry.get("json")
    if not isinstance(fields, dict) or not fields:
        return record
    record = dict(record)
    for path, style in fields.items():
        keys = str(path).split(".")
        holder = record
        if len(keys) == 2 and isinstance(record.get(keys[0]), dict):
            holder = record[keys[0]] = dict(record[keys[0]])
        key = keys[-1]
        if key in holder and not isinstance(holder[key], str):
            item, sep, ascii_ = _STYLES[style] if isinstance(style, int) and 0 <= style < len(_STYLES) else _STYLES[0]
            holder[key] = json.dumps(holder[key], separators=(item, sep), ensure_ascii=ascii_)
    return record


def _redacted(value: Any) -> bool:
    """Whether the sanitizer changed a provider's blob: a placeholder anywhere in it (the
    sanitizer keeps these blobs but for a token its own rule finds inside, docs/sanitizer.md)."""
    return isinstance(value, str) and _REDACTED in value


#: Claude's content blocks whose blob the API checks when it is sent back, by the blob's key.
_CLAUDE_BLOBS: Final = {"thinking": "signature", "redacted_thinking": "data"}


def _spoilt(block: Any) -> bool:
    kind = block.get("type") if isinstance(block, dict) else None
    key = _CLAUDE_BLOBS.get(kind) if isinstance(kind, str) else None
    return key is not None and _redacted(block.get(key))


def _mend_claude(record: Json) -> Json:
    """A thinking block whose signature the sanitizer redacted (or a redacted_thinking block
    whose data it did) becomes a text block saying so: the API checks each signature it is
    sent back, and refuses a request with a bad one.  An intact one stays as it is."""
    message = record.get("message")
    if not isinstance(message, dict):
        return record
    content = message.get("content")
    if not isinstance(content, list) or not any(_spoilt(b) for b in content):
        return record
    blocks = [
        {"type": "text", "text": "[thinking not kept: its signature was redacted]"} if _spoilt(b) else b
        for b in content
    ]
    return {**record, "message": {**message, "content": blocks}}


def _mend_codex(record: Json) -> Json | None:
    """A reasoning item whose encrypted content the sanitizer redacted is left out: the API
    cannot decrypt it, and Codex keeps no parent chain that its absence would break."""
    payload = record.get("payload")
    if isinstance(payload, dict) and payload.get("type") == "reasoning" and _redacted(payload.get("encrypted_content")):
        return None
    return record


def _unslim(value: Any) -> Any:
    if isinstance(value, list):
        return [_unslim(v) for v in value]
    if not isinstance(value, dict):
        return value
    source = value.get("source")
    if value.get("type") in ("image", "document") and isinstance(source, dict) and isinstance(source.get("data"), int):
        return {"type": "text", "text": f"[{value['type']} not kept by sessionseal]"}
    if value.get("type") == "input_image" and isinstance(value.get("image_url"), int):
        return {"type": "input_text", "text": "[image not kept by sessionseal]"}
    return {k: _unslim(v) for k, v in value.items()}


def split_records(records: list[Json]) -> tuple[list[Json], dict[str, list[Json]]]:
    main: list[Json] = []
    agents: dict[str, list[Json]] = {}
    for entry in records:
        agent = entry.get("agent")
        if agent is None:
            main.append(entry)
        elif isinstance(agent, str) and _AGENT_ID.fullmatch(agent) and agent not in (".", ".."):
            agents.setdefault(agent, []).append(entry)
        else:
            raise InvalidInput("a stored sub-agent name is not a file name; nothing was written")
    if not main:
        raise InvalidInput("the session holds no record of its main transcript; nothing was written")
    return main, agents


def session_uuid(source_id: str) -> str:
    try:
        return str(uuid.UUID(source_id))
    except ValueError:
        raise InvalidInput("the session's source id is not a UUID; the agent cannot resume it") from None


def write_new(path: Path, data: bytes) -> None:
    os.makedirs(path.parent, mode=0o700, exist_ok=True)
    write_private_file(path, data)  # refuses (InvalidInput) a path that exists: nothing is clobbered


def copy_private(src: Path, dst: Path, data: bytes | None = None) -> None:
    """Copy a settings or credentials file into a private home (0600), if it exists."""
    if data is None:
        try:
            data = src.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            return
    write_private_file(dst, data)


class Writer:
    """One agent.  Subclasses fill in the names and the layout."""

    #: The ``source.tool`` of the sessions it resumes, and its name in ``--into``.
    tool: str = ""
    into: str = ""
    #: The variable that moves the agent's config directory, and its default under the home.
    env: str = ""
    default_dir: str = ""

    def real_home(self) -> Path:
        """The user's own home of the agent: what :attr:`env` names, else its default."""
        base = os.environ.get(self.env)
        return Path(base) if base else Path.home() / self.default_dir

    def config_dir(self, home: Path) -> Path:
        """The agent's own directory in *home* (as :attr:`env` set to *home* makes it)."""
        return home

    def target(self, home: Path, doc: Json, cwd: str) -> Path:
        """Where the main transcript goes under *home* (:meth:`write` puts it there)."""
        raise NotImplementedError

    def write(self, home: Path, doc: Json, cwd: str) -> Files:
        raise NotImplementedError

    def seed(self, home: Path) -> None:
        """Copy the credentials and settings the agent needs into a private *home*."""
        raise NotImplementedError

    def argv(self, source_id: str) -> list[str]:
        raise NotImplementedError

    def transcripts(self, home: Path) -> list[Path]:
        """The main transcript files under *home* after the agent ran (its own, and any new one)."""
        raise NotImplementedError


class ClaudeWriter(Writer):
    """Claude Code: ``<config>/projects/<project key of cwd>/<uuid>.jsonl``, sub-agents under
    ``<uuid>/subagents/agent-<id>.jsonl``; ``claude --resume <uuid>`` from that directory."""

    tool, into, env, default_dir = "claude-code", "claude", "CLAUDE_CONFIG_DIR", ".claude"

    def target(self, home: Path, doc: Json, cwd: str) -> Path:
        return home / "projects" / project_key(cwd) / f"{session_uuid(doc['source']['source_id'])}.jsonl"

    def write(self, home: Path, doc: Json, cwd: str) -> Files:
        main, agents = split_records(doc["source_records"])
        data = record_lines(main, _mend_claude)
        files = Files(self.target(home, doc, cwd), len(data))
        write_new(files.main, data)
        files.paths.append(files.main)
        for agent, records in sorted(agents.items()):
            path = files.main.parent / files.main.stem / "subagents" / f"agent-{agent}.jsonl"
            write_new(path, record_lines(records, _mend_claude))
            files.paths.append(path)
        return files

    def seed(self, home: Path) -> None:
        # As the Agent SDK's own resume does (_internal/session_resume.py): the credentials
        # without their refresh token (a refresh in the copy would revoke the user's own),
        # and .claude.json, which lives beside the config directory when it is not moved.
        real = self.real_home()
        moved = bool(os.environ.get(self.env))
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            raw = (real / ".credentials.json").read_bytes()
            copy_private(real, home / ".credentials.json", _without_refresh(raw))
        copy_private(real / ".claude.json" if moved else Path.home() / ".claude.json", home / ".claude.json")
        copy_private(real / "settings.json", home / "settings.json")

    def argv(self, source_id: str) -> list[str]:
        return ["claude", "--resume", source_id]

    def transcripts(self, home: Path) -> list[Path]:
        from .._transcripts import find_claude

        projects = home / "projects"
        return find_claude(projects) if projects.is_dir() else []


def _without_refresh(raw: bytes) -> bytes:
    try:
        data = json.loads(raw)
    except ValueError:
        return raw
    oauth = data.get("claudeAiOauth") if isinstance(data, dict) else None
    if isinstance(oauth, dict) and "refreshToken" in oauth:
        del oauth["refreshToken"]
        return json.dumps(data).encode()
    return raw


class CodexWriter(Writer):
    """Codex: ``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<uuid>.jsonl`` and its row in
    ``state_<n>.sqlite`` ``threads`` (without it: "No saved session found", openai/codex#40426);
    ``codex resume <uuid>``."""

    tool, into, env, default_dir = "codex", "codex", "CODEX_HOME", ".codex"

    def target(self, home: Path, doc: Json, cwd: str) -> Path:
        sid = session_uuid(doc["source"]["source_id"])
        when = _started(doc, split_records(doc["source_records"])[0])
        name = f"rollout-{when:%Y-%m-%dT%H-%M-%S}-{sid}.jsonl"
        return home / "sessions" / f"{when:%Y}" / f"{when:%m}" / f"{when:%d}" / name

    def write(self, home: Path, doc: Json, cwd: str) -> Files:
        sid = session_uuid(doc["source"]["source_id"])
        main, agents = split_records(doc["source_records"])
        if agents:
            raise InvalidInput("a Codex session has no sub-agent files; the stored records are not Codex's")
        data = record_lines(main, _mend_codex)
        files = Files(self.target(home, doc, cwd), len(data))
        write_new(files.main, data)
        files.paths.append(files.main)
        db = self.state_db(home)
        if db is not None:
            try:
                _thread_row(db, _thread_values(sid, files.main, doc, main, cwd))
            except sqlite3.Error as exc:
                raise StorageError(f"{db}: the thread could not be registered ({exc.__class__.__name__})") from None
            files.paths.append(db)
        return files

    def state_db(self, home: Path) -> Path | None:
        """The state database to register the thread in: the home's own, else a copy of the
        schema (never the rows) of the user's, so that the row fits the installed Codex; None
        when there is neither (Codex then builds it from the rollouts it finds)."""
        own = _newest_state_db(home)
        if own is not None:
            return own
        real = _newest_state_db(self.real_home())
        if real is None:
            return None
        copy = home / real.name
        try:
            _clone_schema(real, copy)
        except sqlite3.Error:
            # Unreadable (locked, damaged): Codex then builds its own from the rollouts.
            with contextlib.suppress(FileNotFoundError):
                copy.unlink()
            return None
        return copy

    def seed(self, home: Path) -> None:
        real = self.real_home()
        for name in ("auth.json", "config.toml"):
            copy_private(real / name, home / name)

    def argv(self, source_id: str) -> list[str]:
        return ["codex", "resume", source_id]

    def transcripts(self, home: Path) -> list[Path]:
        from .._transcripts import find_codex

        sessions = home / "sessions"
        return find_codex(sessions) if sessions.is_dir() else []


def _started(doc: Json, records: list[Json]) -> datetime:
    """When the rollout began: its session_meta's time, else its first record's, else the session's."""
    for entry in records[:5]:
        rec = entry["record"]
        payload = rec.get("payload") if isinstance(rec.get("payload"), dict) else {}
        for value in (payload.get("timestamp"), rec.get("timestamp"), doc.get("created_at")):
            with contextlib.suppress(TypeError, ValueError):
                t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
                return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return datetime.now(UTC)


def _newest_state_db(home: Path) -> Path | None:
    found = []
    for p in home.glob("state_*.sqlite"):
        number = p.name.removeprefix("state_").removesuffix(".sqlite")
        if number.isdigit() and p.is_file():
            found.append((int(number), p))
    return max(found)[1] if found else None


def _clone_schema(src: Path, dst: Path) -> None:
    """Create *dst* with *src*'s tables and indexes and its migration ledger (so Codex sees
    its migrations as applied), without any of its rows: those name the user's other sessions."""
    uri = f"file:{src}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as old:
        schema = old.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        ledger_cols: list[str] = []
        ledger: list[Any] = []
        if any(name == "_sqlx_migrations" for _t, name, _s in schema):
            cur = old.execute("SELECT * FROM _sqlx_migrations")
            ledger_cols, ledger = [d[0] for d in cur.description], cur.fetchall()
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    os.close(fd)
    with contextlib.closing(sqlite3.connect(dst)) as new, new:
        for kind in ("table", "index", "view", "trigger"):
            for t, _name, sql in schema:
                if t == kind:
                    new.execute(sql)
        if ledger:
            marks = ", ".join("?" for _ in ledger_cols)
            names = ", ".join(_quoted(c) for c in ledger_cols)
            new.executemany(f"INSERT INTO _sqlx_migrations ({names}) VALUES ({marks})", ledger)  # noqa: S608


def _quoted(name: str) -> str:
    """An SQL identifier (a column name the database itself gave), quoted."""
    return '"' + name.replace('"', '""') + '"'


def _thread_row(db: Path, values: Json) -> None:
    """Insert the thread's row with every column the table has: known *values* where the
    rollout gives them, the column's zero where it is NOT NULL without a default."""
    with contextlib.closing(sqlite3.connect(db)) as con, con:
        cols = con.execute("PRAGMA table_info(threads)").fetchall()
        if not cols:
            return
        row: Json = {}
        for _cid, name, ctype, notnull, default, _pk in cols:
            if name in values:
                row[name] = values[name]
            elif notnull and default is None:
                row[name] = 0 if "INT" in str(ctype).upper() else ""
        names = list(row)
        cols_sql, marks = ", ".join(_quoted(n) for n in names), ", ".join("?" for _ in names)
        sql = f"INSERT OR IGNORE INTO threads ({cols_sql}) VALUES ({marks})"  # noqa: S608 - names from the schema
        con.execute(sql, [row[n] for n in names])


def _thread_values(sid: str, rollout: Path, doc: Json, records: list[Json], cwd: str) -> Json:
    meta: Json = {}
    turn: Json = {}
    for entry in records:
        rec = entry["record"]
        payload = rec.get("payload")
        if rec.get("type") == "session_meta" and isinstance(payload, dict) and not meta:
            meta = payload
        elif rec.get("type") == "turn_context" and isinstance(payload, dict):
            turn = payload
    created = _started(doc, records)
    updated = _started({"created_at": doc.get("updated_at")}, [])
    config = doc.get("config") or {}
    stats = doc.get("stats") or {}
    first = next((m for m in doc.get("messages") or [] if m.get("role") == "user" and not m.get("meta")), None)
    first_text = next((b.get("text") for b in (first or {}).get("content") or [] if b.get("type") == "text"), "")
    sandbox = turn.get("sandbox_policy")
    return {
        "id": sid,
        "rollout_path": str(rollout),
        "created_at": int(created.timestamp()),
        "updated_at": int(updated.timestamp()),
        "created_at_ms": int(created.timestamp() * 1000),
        "updated_at_ms": int(updated.timestamp() * 1000),
        "source": meta.get("source") if isinstance(meta.get("source"), str) else "cli",
        "model_provider": meta.get("model_provider") or "openai",
        "cwd": cwd,
        "title": doc.get("title") or "",
        "sandbox_policy": json.dumps(sandbox) if isinstance(sandbox, dict) else str(sandbox or ""),
        "approval_mode": str(turn.get("approval_policy") or ""),
        "tokens_used": int(stats.get("input_tokens") or 0) + int(stats.get("output_tokens") or 0),
        "has_user_event": 1,
        "archived": 0,
        "cli_version": str(meta.get("cli_version") or config.get("tool_version") or ""),
        "first_user_message": first_text or "",
        "model": str(turn.get("model") or config.get("model") or ""),
    }


def agent_on_path(name: str) -> str | None:
    return shutil.which(name)
