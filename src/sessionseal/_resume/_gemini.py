"""Where Gemini CLI looks for a session it resumes (docs/capture/resume.md), as one more
:class:`~._layout.Writer`.

Read at the source (``google-gemini/gemini-cli``, 2026-12-06):

* ``packages/core/src/config/storage.ts``: the home is ``homedir()/.gemini``, where
  ``homedir()`` is ``$GEMINI_CLI_HOME`` when set (``utils/paths.ts``); a project's sessions are
  in ``tmp/<project>/chats/``; the credentials are ``oauth_creds.json`` and
  ``google_accounts.json``, the settings ``settings.json``.
* ``packages/core/src/config/projectRegistry.ts``: ``<project>`` is a short name registered in
  ``projects.json`` (``{"projects": {<path.resolve(cwd)>: <name>}}``), the basename of the
  project's directory lower-cased, every character but ``a-z0-9`` made ``-`` (runs of them one,
  none at either end; ``project`` if nothing is left), then ``-1``, ``-2``... past a name taken.
  The name is the project's when its directory holds ``.project_root`` naming the project's
  path (or none), and Gemini CLI finds a name by that marker when the registry lacks it.  (The
  older SHA-256 of the path is migrated to the name on start: ``Storage.performMigration``.)
* ``packages/cli/src/utils/sessionUtils.ts``: ``gemini --resume <uuid>`` lists
  ``chats/session-*.json`` and ``*.jsonl`` of the project of the directory it starts in and
  takes the one whose ``sessionId`` is the uuid; sub-agents are ``chats/<session id>/<id>.jsonl``.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from .._fs import write_private_file
from ..errors import InvalidInput
from ._layout import Files, Json, Writer, copy_private, json_back, record_lines, session_uuid, split_records, write_new

#: A session file name as Gemini CLI makes it (``session-<time>-<first 8 of the id>``).
_NAME: Final = re.compile(r"session-[A-Za-z0-9_-]{1,120}\.jsonl?")
#: A project directory name that is a plain file name.
_SLUG: Final = re.compile(r"[A-Za-z0-9._-]{1,255}")
_MARKER: Final = ".project_root"
#: What a private home gets from the user's ``~/.gemini``: credentials (Google sign-in),
#: settings, the install id, the trusted folders (else Gemini CLI asks again) and the ``.env``
#: it reads an API key from.
_SEEDED: Final = (
    "settings.json",
    "oauth_creds.json",
    "google_accounts.json",
    "installation_id",
    "trustedFolders.json",
    ".env",
)


def slugify(name: str) -> str:
    """Gemini CLI's short project name for a directory's basename (``ProjectRegistry.slugify``)."""
    return re.sub(r"^-|-$", "", re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", name.lower()))) or "project"


def _read_marker(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _registry(gem: Path) -> dict[str, Any]:
    """``projects.json``: its ``projects`` map (empty when there is none).

    :raises InvalidInput: it is there but not Gemini CLI's registry (nothing is changed then).
    """
    try:
        data = json.loads((gem / "projects.json").read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        raise InvalidInput(f"{gem / 'projects.json'} is not readable JSON; nothing was written") from None
    projects = data.get("projects") if isinstance(data, dict) else None
    if not isinstance(projects, dict):
        raise InvalidInput(f"{gem / 'projects.json'} is not Gemini CLI's project registry; nothing was written")
    return projects


def project_name(gem: Path, cwd: str) -> str:
    """The directory name Gemini CLI gives the project *cwd* under ``<gem>/tmp``: the one
    registered (if its marker does not name another project), else the one whose marker names
    it, else a new name by Gemini's own rule."""
    projects = _registry(gem)
    tmp = gem / "tmp"
    given = projects.get(cwd)
    if isinstance(given, str) and _safe(given) and _read_marker(tmp / given / _MARKER) in (None, cwd):
        return given
    if tmp.is_dir():
        for d in sorted(tmp.iterdir()):
            if _safe(d.name) and _read_marker(d / _MARKER) == cwd:
                return d.name
    base, taken, n = slugify(os.path.basename(cwd)), set(projects.values()), 0
    while True:
        name = base if n == 0 else f"{base}-{n}"
        n += 1
        if name not in taken and _read_marker(tmp / name / _MARKER) in (None, cwd):
            return name


def _safe(name: str) -> bool:
    return bool(_SLUG.fullmatch(name)) and name not in (".", "..")


def _register(gem: Path, name: str, cwd: str) -> list[Path]:
    """Make the project *name* Gemini CLI's for *cwd*: its ``.project_root`` and its entry in
    ``projects.json`` (the registry rewritten whole, other entries kept).  Returns what was written."""
    written = []
    marker = gem / "tmp" / name / _MARKER
    if _read_marker(marker) is None:
        write_new(marker, cwd.encode())
        written.append(marker)
    projects = _registry(gem)
    if projects.get(cwd) != name:
        reg = gem / "projects.json"
        try:
            data = json.loads(reg.read_bytes())
        except FileNotFoundError:
            data = {"projects": {}}
        data["projects"][cwd] = name
        tmp = gem / "projects.json.sessionseal-tmp"
        tmp.unlink(missing_ok=True)
        write_private_file(tmp, json.dumps(data, indent=2).encode())
        os.replace(tmp, reg)
        written.append(reg)
    return written


class GeminiWriter(Writer):
    """Gemini CLI: ``$GEMINI_CLI_HOME/.gemini/tmp/<project>/chats/session-*.json(l)``, the
    project registered for the directory; ``gemini --resume <uuid>`` from that directory."""

    tool, into, env, default_dir = "gemini-cli", "gemini", "GEMINI_CLI_HOME", ""

    def real_home(self) -> Path:
        # GEMINI_CLI_HOME stands for the home directory, not for .gemini in it.
        base = os.environ.get(self.env)
        return Path(base) if base else Path.home()

    def config_dir(self, home: Path) -> Path:
        return home / ".gemini"

    def target(self, home: Path, doc: Json, cwd: str) -> Path:
        gem = self.config_dir(home)
        return gem / "tmp" / project_name(gem, cwd) / "chats" / _file_name(doc)

    def write(self, home: Path, doc: Json, cwd: str) -> Files:
        gem = self.config_dir(home)
        sid = session_uuid(doc["source"]["source_id"])
        main, agents = split_records(doc["source_records"])
        path = self.target(home, doc, cwd)
        data = _document(main, doc) if path.name.endswith(".json") else record_lines(main)
        files = Files(path, len(data))
        write_new(path, data)
        files.paths.append(path)
        for agent, records in sorted(agents.items()):
            sub = path.parent / sid / f"{agent}.jsonl"
            write_new(sub, record_lines(records))
            files.paths.append(sub)
        files.paths += _register(gem, path.parent.parent.name, cwd)
        return files

    def seed(self, home: Path) -> None:
        real, gem = self.config_dir(self.real_home()), self.config_dir(home)
        os.makedirs(gem, mode=0o700, exist_ok=True)
        for name in _SEEDED:
            copy_private(real / name, gem / name)

    def argv(self, source_id: str) -> list[str]:
        return ["gemini", "--resume", source_id]

    def transcripts(self, home: Path) -> list[Path]:
        from .._transcripts import find_gemini

        tmp = self.config_dir(home) / "tmp"
        return find_gemini(tmp) if tmp.is_dir() else []


def _file_name(doc: Json) -> str:
    """The session's own file name when it is one Gemini CLI makes for its form, else one made
    by the same rule (``session-<start, to the minute>-<first 8 of the id>``)."""
    source = doc["source"]
    suffix = ".json" if source.get("form") == "json" else ".jsonl"
    name = Path(str(source.get("path") or "")).name
    if _NAME.fullmatch(name) and name.endswith(suffix) and not name.endswith(suffix + "l"):
        return name
    sid = session_uuid(source["source_id"])
    try:
        when = datetime.fromisoformat(str(doc.get("created_at")).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        when = datetime.now(UTC)
    return f"session-{when:%Y-%m-%dT%H-%M}-{sid[:8]}{suffix}"


def _document(records: list[Json], doc: Json) -> bytes:
    """A ``.json`` session as older Gemini CLI releases write it (``JSON.stringify(record, null,
    2)``, no newline at the end): its fields (the first record), the messages where the list
    was, ``lastUpdated`` as the last import read it (an append stores only new messages)."""
    if not records or records[0].get("line") != 0:
        raise InvalidInput("the session holds no record of its document's fields; nothing was written")
    head = dict(json_back(records[0]))
    last = doc["source"].get("last_updated")
    if isinstance(last, str) and "lastUpdated" in head:
        head["lastUpdated"] = last
    head["messages"] = [json_back(e) for e in records[1:]]
    return json.dumps(head, indent=2, ensure_ascii=False).encode("utf-8", "surrogatepass")
