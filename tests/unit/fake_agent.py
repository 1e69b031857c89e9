"""A stand-in for ``claude``, ``codex`` and ``gemini`` (tests of ``resume --into``; never imported).

Run as ``fake_agent.py --resume <uuid>`` (Claude Code; Gemini CLI when ``$GEMINI_CLI_HOME`` is
set) or ``fake_agent.py resume <uuid>`` (Codex), it finds the session where the agent itself would look (its own reading of the
layout, not sessionseal's), checks it, appends one turn the way the agent would, writes
scratch files the way the agents do (a history, a todo), reports what it saw (no content) to
``$FAKE_REPORT``, and exits with ``$FAKE_STATUS``.  ``$FAKE_PHRASE`` goes into what it writes;
``$FAKE_KILL_PARENT`` makes it SIGKILL the process that started it first.
"""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import sqlite3
import stat
import sys
import uuid


def _mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _claude(sid: str, phrase: str) -> dict[str, object]:
    home = os.environ["CLAUDE_CONFIG_DIR"]
    # Claude Code's project key: the real path, every non-alphanumeric character a dash.
    key = re.sub(r"[^a-zA-Z0-9]", "-", os.path.realpath(os.getcwd()))
    path = os.path.join(home, "projects", key, sid + ".jsonl")
    with open(path, "rb") as f:
        lines = f.read().splitlines()
    records = [json.loads(line) for line in lines]
    with_uuid = [r for r in records if r.get("uuid") and not r.get("isSidechain")]
    parent = with_uuid[-1]["uuid"] if with_uuid else None
    user_id, reply_id = str(uuid.uuid4()), str(uuid.uuid4())
    common = {"isSidechain": False, "userType": "external", "cwd": os.getcwd(), "sessionId": sid, "version": "2.1.9"}
    new = [
        {
            "parentUuid": parent,
            **common,
            "type": "user",
            "message": {"role": "user", "content": f"one more thing: {phrase}"},
            "uuid": user_id,
            "timestamp": "2026-12-01T09:00:00.000Z",
        },
        {
            "parentUuid": user_id,
            **common,
            "message": {
                "id": "msg_fake_resumed",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [{"type": "text", "text": f"done: {phrase}"}],
                "usage": {"input_tokens": 3, "output_tokens": 2},
            },
            "type": "assistant",
            "uuid": reply_id,
            "timestamp": "2026-12-01T09:00:01.000Z",
        },
    ]
    with open(path, "a", encoding="utf-8") as f:
        f.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in new)
    with open(os.path.join(home, "history.jsonl"), "a", encoding="utf-8") as f:
        f.write(json.dumps({"display": phrase, "project": os.getcwd()}) + "\n")
    os.makedirs(os.path.join(home, "todos"), exist_ok=True)
    with open(os.path.join(home, "todos", sid + ".json"), "w", encoding="utf-8") as f:
        json.dump([{"content": phrase, "status": "pending"}], f)
    subagents = sorted(glob.glob(os.path.join(home, "projects", key, sid, "subagents", "agent-*.jsonl")))
    return {
        "path": path,
        "records": len(records),
        "first_key": next(iter(records[0])),
        "first_type": records[0].get("type"),
        "subagents": [os.path.basename(p) for p in subagents],
        "file_mode": _mode(path),
        "home_mode": _mode(home),
        "saw": {name: os.path.exists(os.path.join(home, name)) for name in (".credentials.json", "settings.json")},
        "refresh_token_copied": "refreshToken" in _read(os.path.join(home, ".credentials.json")),
    }


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def _codex(sid: str, phrase: str) -> dict[str, object]:
    home = os.environ["CODEX_HOME"]
    found = glob.glob(os.path.join(home, "sessions", "*", "*", "*", f"rollout-*-{sid}.jsonl"))
    [path] = found
    with open(path, "rb") as f:
        records = [json.loads(line) for line in f.read().splitlines()]
    rows: list[list[object]] = []
    migrations = 0
    for db in glob.glob(os.path.join(home, "state_*.sqlite")):
        con = sqlite3.connect(db)
        rows += [list(r) for r in con.execute("SELECT id, rollout_path, cwd FROM threads")]
        migrations = con.execute("SELECT count(*) FROM _sqlx_migrations").fetchone()[0]
        con.close()
    new = [
        {
            "timestamp": "2026-12-01T09:00:00.000Z",
            "type": "response_item",
            "payload": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": phrase}]},
        },
        {
            "timestamp": "2026-12-01T09:00:01.000Z",
            "type": "response_item",
            "payload": {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": f"done: {phrase}"}],
            },
        },
    ]
    with open(path, "a", encoding="utf-8") as f:
        f.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in new)
    with open(os.path.join(home, "history.jsonl"), "a", encoding="utf-8") as f:
        f.write(json.dumps({"session_id": sid, "text": phrase}) + "\n")
    return {
        "path": path,
        "records": len(records),
        "first_type": records[0].get("type"),
        "rows": rows,
        "migrations": migrations,
        "file_mode": _mode(path),
        "home_mode": _mode(home),
        "saw": {name: os.path.exists(os.path.join(home, name)) for name in ("auth.json", "config.toml")},
    }


def _gemini_session(chats: str, sid: str) -> tuple[str, list[dict[str, object]], dict[str, object] | None]:
    """The file of *sid* in *chats*, as ``gemini --resume`` finds it: the session-* file whose
    sessionId it is; its JSON lines, or its document."""
    for path in sorted(glob.glob(os.path.join(chats, "session-*.json*"))):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if path.endswith(".jsonl"):
            lines = [json.loads(line) for line in text.splitlines() if line.strip()]
            if lines and lines[0].get("sessionId") == sid:
                return path, lines, None
        else:
            whole = json.loads(text)
            if whole.get("sessionId") == sid:
                return path, [], whole
    raise SystemExit(f"no session {sid} in {chats}")


def _gemini(sid: str, phrase: str) -> dict[str, object]:
    gem = os.path.join(os.environ["GEMINI_CLI_HOME"], ".gemini")
    cwd = os.path.realpath(os.getcwd())
    with open(os.path.join(gem, "projects.json"), encoding="utf-8") as f:
        name = json.load(f)["projects"][cwd]
    with open(os.path.join(gem, "tmp", name, ".project_root"), encoding="utf-8") as f:
        owner = f.read().strip()
    path, lines, whole = _gemini_session(os.path.join(gem, "tmp", name, "chats"), sid)
    new = [
        {"id": "fake-u", "timestamp": "2026-12-01T09:00:00.000Z", "type": "user", "content": [{"text": phrase}]},
        {
            "id": "fake-g",
            "timestamp": "2026-12-01T09:00:01.000Z",
            "type": "gemini",
            "content": f"done: {phrase}",
            "model": "gemini-2.5-pro",
        },
    ]
    if whole is not None:  # an older release: the document rewritten whole
        messages = list(whole["messages"])  # type: ignore[call-overload]
        records = len(messages)
        whole["messages"], whole["lastUpdated"] = messages + new, "2026-12-01T09:00:01.000Z"
        with open(path, "w", encoding="utf-8") as f:
            f.write(json.dumps(whole, indent=2, ensure_ascii=False))
        first_key = next(iter(whole))
    else:  # a newer one: lines appended
        records, first_key = len(lines), next(iter(lines[0]))
        update = {"$set": {"lastUpdated": "2026-12-01T09:00:01.000Z"}}
        with open(path, "a", encoding="utf-8") as f:
            f.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in [*new, update])
    subagents = sorted(os.path.basename(p) for p in glob.glob(os.path.join(os.path.dirname(path), sid, "*.jsonl")))
    with open(os.path.join(gem, "tmp", name, "shell_history"), "a", encoding="utf-8") as f:
        f.write(phrase + "\n")
    return {
        "path": path,
        "project": name,
        "owner": owner,
        "records": records,
        "first_key": first_key,
        "subagents": subagents,
        "file_mode": _mode(path),
        "home_mode": _mode(os.environ["GEMINI_CLI_HOME"]),
        "saw": {n: os.path.exists(os.path.join(gem, n)) for n in ("oauth_creds.json", "settings.json")},
    }


def main() -> int:
    args = sys.argv[1:]
    phrase = os.environ.get("FAKE_PHRASE", "")
    if os.environ.get("GEMINI_CLI_HOME"):
        report = _gemini(args[1], phrase)
    else:
        report = _claude(args[1], phrase) if args[0] == "--resume" else _codex(args[1], phrase)
    report["argv"] = args
    report["cwd"] = os.getcwd()
    if os.environ.get("FAKE_KILL_PARENT"):
        os.kill(os.getppid(), signal.SIGKILL)
    with open(os.environ["FAKE_REPORT"], "w", encoding="utf-8") as f:
        json.dump(report, f)
    return int(os.environ.get("FAKE_STATUS", "0"))


if __name__ == "__main__":
    sys.exit(main())
