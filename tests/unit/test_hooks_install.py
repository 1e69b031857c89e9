"""``hooks install|status|uninstall`` and the ``hook`` commands they register (issue 22, Capture):
every agent's hook, run as the agent runs it, captures the session; the settings files are
merged idempotently, backed up, restored byte for byte, and never overwritten when broken."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sessionseal import PassphraseProvider, Vault
from tests._infra.cli_inprocess import sessionseal_in_process
from tests.integration._cli import Ran

SID = "5b2e9c1a-4d7f-4e3b-8a6c-1f0d2e3c4b5a"
CODEX_SID = "019ceb5a-3f21-7c4e-9b8a-5d2f1e0c7a93"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts"
PASSPHRASE = "hooks-test-passphrase"


def claude_line(n: int, role: str, text: str) -> str:
    """One Claude Code transcript record, in the shape Claude Code writes (synthetic values)."""
    message: dict[str, Any] = {"role": role, "content": text}
    if role == "assistant":
        message = {
            "id": f"msg_{n}",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": text}],
            "usage": {"input_tokens": 3, "output_tokens": 2},
        }
    record = {
        "type": role,
        "uuid": f"u{n}",
        "parentUuid": f"u{n - 1}" if n else None,
        "sessionId": SID,
        "timestamp": f"2026-03-14T10:{n:02d}:00.000Z",
        "cwd": "/home/dev/shop",
        "version": "2.1.0",
        "isSidechain": False,
        "userType": "external",
        "message": message,
    }
    return json.dumps(record) + "\n"


def turns(start: int, count: int) -> str:
    return "".join(
        claude_line(2 * n, "user", f"question {n}") + claude_line(2 * n + 1, "assistant", f"answer {n}")
        for n in range(start, start + count)
    )


class Homes:
    """A machine of its own: HOME, the three agents' homes, a passphrase vault."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.claude = root / "claude-config"
        self.codex = root / "codex-home"
        self.gemini_home = root / "gemini-home"
        self.gemini = self.gemini_home / ".gemini"
        for d in (self.home, self.claude, self.codex, self.gemini):
            d.mkdir(parents=True)
        self.vault = root / "vault"
        self.passphrase_file = root / "passphrase"
        self.passphrase_file.write_text(PASSPHRASE)
        self.passphrase_file.chmod(0o600)
        self.env = {
            "HOME": str(self.home),
            "CLAUDE_CONFIG_DIR": str(self.claude),
            "CODEX_HOME": str(self.codex),
            "GEMINI_CLI_HOME": str(self.gemini_home),
        }
        self.settings = {
            "claude": self.claude / "settings.json",
            "codex": self.codex / "hooks.json",
            "gemini": self.gemini / "settings.json",
        }

    def run(self, *args: str, vault: bool = True) -> Ran:
        """``hooks install|status|uninstall`` in this process (what they write and say is the
        subject; the hooks they register are run as the agents run them, in processes)."""
        pre = ["--vault", str(self.vault), "--passphrase-file", str(self.passphrase_file)] if vault else []
        return sessionseal_in_process(*pre, *args, env=self.env)

    def make_vault(self) -> None:
        # scrypt at the floor: every hook run opens the vault, and this file is not about the KDF.
        Vault.init(self.vault, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)).close()

    def sessions(self) -> list[Any]:
        with Vault.open(self.vault, passphrase=PASSPHRASE) as v:
            return [v.load(s.id) for s in v.list()]


@pytest.fixture
def homes(tmp_path: Path) -> Homes:
    return Homes(tmp_path)


def commands(settings: Path) -> dict[str, list[str]]:
    """Each event's hook commands, in order."""
    doc = json.loads(settings.read_text())
    return {event: [h["command"] for g in groups for h in g["hooks"]] for event, groups in doc.get("hooks", {}).items()}


def run_hook_command(command: str, payload: dict[str, Any], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """Run a hook's command as the agents do: through the shell, the payload on stdin."""
    return subprocess.run(
        ["/bin/sh", "-c", command],
        input=json.dumps(payload).encode(),
        capture_output=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        timeout=120,
        check=False,
    )


# -- Install, then the agent runs the hook --------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "event"),
    [
        ("claude", "SessionEnd"),
        ("claude", "Stop"),
        ("claude", "PreCompact"),
        ("codex", "Stop"),
        ("gemini", "SessionEnd"),
    ],
)
def test_each_installed_hook_captures_the_session(homes: Homes, tool: str, event: str) -> None:
    homes.make_vault()
    r = homes.run("hooks", "install", f"--{tool}")
    assert r.code == 0, r.err
    [command] = commands(homes.settings[tool])[event]
    assert command.startswith(f"{sys.executable} -m sessionseal --vault {homes.vault} --passphrase-file ")
    if tool == "codex":
        transcript = FIXTURES / "codex" / "sessions" / "2026" / "03" / "14"
        [path] = transcript.glob(f"*{CODEX_SID}.jsonl")
        payload = {"session_id": CODEX_SID, "transcript_path": str(path), "hook_event_name": "Stop"}
    elif tool == "gemini":
        chats = homes.gemini / "tmp" / "webshop" / "chats"
        chats.mkdir(parents=True)
        [fixture] = (FIXTURES / "gemini" / "tmp" / "webshop" / "chats").glob("session-*.json")
        path = chats / fixture.name
        path.write_bytes(fixture.read_bytes())
        sid = json.loads(fixture.read_bytes())["sessionId"]
        payload = {
            "session_id": sid,
            "transcript_path": str(path),
            "cwd": "/home/dev/webshop",
            "hook_event_name": event,
        }
    else:
        path = homes.root / "projects" / f"{SID}.jsonl"
        path.parent.mkdir()
        path.write_text(turns(0, 2))
        payload = {"session_id": SID, "transcript_path": str(path), "cwd": "/home/dev/shop", "hook_event_name": event}
    done = run_hook_command(command, payload, homes.env)
    assert (done.returncode, done.stdout) == (0, b"")
    [session] = homes.sessions()
    assert session.tags == [{"codex": "codex", "gemini": "gemini-cli"}.get(tool, "claude-code")]
    assert len(session.messages) > 0


def test_codex_stop_without_a_transcript_path_finds_the_rollout_by_session_id(homes: Homes) -> None:
    homes.make_vault()
    day = homes.codex / "sessions" / "2026" / "03" / "14"
    day.mkdir(parents=True)
    [fixture] = (FIXTURES / "codex" / "sessions" / "2026" / "03" / "14").glob("*.jsonl")
    (day / fixture.name).write_bytes(fixture.read_bytes())
    assert homes.run("hooks", "install", "--codex").code == 0
    [command] = commands(homes.settings["codex"])["Stop"]
    run_hook_command(command, {"session_id": "../../*", "transcript_path": None}, homes.env)
    assert homes.sessions() == []  # not a session id: nothing is looked for
    done = run_hook_command(command, {"session_id": CODEX_SID, "transcript_path": None}, homes.env)
    assert (done.returncode, done.stdout) == (0, b"")
    [session] = homes.sessions()
    assert session.tags == ["codex"]


@pytest.mark.parametrize("hook", ["claude-stop", "claude-precompact", "codex-stop", "gemini-session-end"])
@pytest.mark.parametrize(
    "payload", [b"", b"garbage \xff", b"[1, 2]", b'{"transcript_path": 7}', b'{"transcript_path": "/nope"}']
)
def test_every_hook_exits_0_and_prints_nothing_on_garbage(tmp_path: Path, hook: str, payload: bytes) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "sessionseal", "--vault", str(tmp_path / "none"), "hook", hook],
        input=payload,
        capture_output=True,
        env={**os.environ, "HOME": str(tmp_path), "CODEX_HOME": str(tmp_path / "codex")},
        timeout=60,
        check=False,
    )
    assert (r.returncode, r.stdout) == (0, b"")


def _opened_the_vault(pid: int, sessions: Path) -> bool:
    """Whether process *pid* (or the child its shell started) has the vault open: it holds its
    sessions/ directory.  A process that is gone counts too (it will say what it did)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids = [pid, *map(int, f.read().split())]
        return any(
            os.readlink(f"/proc/{p}/fd/{fd}") == str(sessions) for p in pids for fd in os.listdir(f"/proc/{p}/fd")
        )
    except FileNotFoundError:
        return not os.path.exists(f"/proc/{pid}")
    except OSError:
        return False


def test_two_hook_runs_at_once_on_one_transcript_store_each_turn_once(homes: Homes) -> None:
    """Claude Code's Stop fires every turn, in the background: runs overlap.  Here the session's
    lock is held while two runs for its grown transcript start, so that both have read the
    vault's state before either can store: each turn must still be stored once, in order."""
    from sessionseal._fs import lock

    homes.make_vault()
    assert homes.run("hooks", "install", "--claude").code == 0
    [command] = commands(homes.settings["claude"])["Stop"]
    path = homes.root / f"{SID}.jsonl"
    payload = json.dumps({"session_id": SID, "transcript_path": str(path), "hook_event_name": "Stop"}).encode()
    path.write_text(turns(0, 1))
    env = {"PATH": os.environ.get("PATH", ""), **homes.env, "SESSIONSEAL_LOCK_TIMEOUT": "600"}
    assert run_hook_command(command, json.loads(payload), env).returncode == 0
    [name] = [p.stem for p in (homes.vault / "sessions").glob("*.sst")]
    for rounds in range(1, 4):
        with path.open("a") as f:
            f.write(turns(rounds, 1))
        with lock(homes.vault / "locks" / f"{name}.lock", timeout=60, what="the test"):
            procs = [
                subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
                for _ in range(2)
            ]
            for p in procs:
                assert p.stdin is not None
                p.stdin.write(payload)
                p.stdin.close()
            deadline = time.monotonic() + 20
            while not all(_opened_the_vault(p.pid, homes.vault / "sessions") for p in procs):
                assert time.monotonic() < deadline, "the hooks did not open the vault"
                time.sleep(0.05)
            time.sleep(2)  # time to read the state (the result must hold whatever they reached)
        for p in procs:
            assert p.stdout is not None
            with p.stdout:
                assert (p.wait(timeout=120), p.stdout.read()) == (0, b"")
        [session] = homes.sessions()
        texts = [b.text for m in session.messages for b in m.content if getattr(b, "text", None)]
        assert texts == [t for n in range(rounds + 1) for t in (f"question {n}", f"answer {n}")]


# -- The settings files ---------------------------------------------------------------------------


USER_FILE = (
    '{\n    "model": "opus",\n    "hooks": {\n        "Stop": [\n            {\n                "hooks": [\n'
    '                    {"type": "command", "command": "notify-send done"}\n'
    "                ]\n            }\n        ]\n    },\n"
    '    "permissions": {"allow": ["Bash(ls:*)"]},\n    "cleanupPeriodDays": 90\n}'
)


@pytest.mark.parametrize(
    "before",
    [
        None,  # no file: uninstall removes the one install made
        b"{}",
        b"{}\n",
        b'{"model":"opus","hooks":{}}',
        USER_FILE.encode(),
        json.dumps({"hooks": {"SessionEnd": [{"hooks": [{"type": "command", "command": "x"}]}]}}, indent=2).encode(),
        json.dumps({"\u00e9t\u00e9": "caf\u00e9 \u2028", "n": 1.5e300, "a": [1, 2]}, indent="\t").encode() + b"\n",
    ],
    ids=["absent", "empty", "empty-nl", "compact", "user-file", "user-hook", "tabs-unicode"],
)
def test_install_twice_is_install_once_and_uninstall_gives_back_the_same_bytes(
    homes: Homes, before: bytes | None
) -> None:
    path = homes.settings["claude"]
    if before is not None:
        path.write_bytes(before)
    r = homes.run("hooks", "install", "--claude", "--json")
    assert r.code == 0, r.err
    [done] = json.loads(r.out)["tools"]
    assert done["changed"] and done["settings"] == str(path)
    backup = Path(done["backup"])
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert backup.read_bytes() == (before or b"")
    installed = path.read_bytes()
    doc = json.loads(installed)
    if before is not None:  # every key of the user's file is kept, in its order
        user = json.loads(before)
        assert list(doc)[: len(user)] == list(user)
        assert {k: v for k, v in doc.items() if k != "hooks"} == {k: v for k, v in user.items() if k != "hooks"}
    ours = {e: [c for c in cs if " -m sessionseal " in c] for e, cs in commands(path).items()}
    assert {e: len(c) for e, c in ours.items() if c} == {"SessionEnd": 1, "Stop": 1, "PreCompact": 1}
    # Twice is once: same bytes, no second backup.
    r = homes.run("hooks", "install", "--claude", "--json")
    [again] = json.loads(r.out)["tools"]
    assert (again["changed"], again["backup"], path.read_bytes()) == (False, None, installed)
    r = homes.run("hooks", "uninstall", "--claude", "--json")
    assert r.code == 0, r.err
    if before is None:
        assert not path.exists()
    else:
        assert path.read_bytes() == before


def test_install_adds_each_event_once_beside_the_users_hooks(homes: Homes) -> None:
    homes.settings["claude"].write_text(USER_FILE)
    assert homes.run("hooks", "install").code == 0
    got = commands(homes.settings["claude"])
    assert got["Stop"][0] == "notify-send done" and len(got["Stop"]) == 2
    assert all(len(got[e]) == 1 for e in ("SessionEnd", "PreCompact"))
    stop = json.loads(homes.settings["claude"].read_text())["hooks"]["Stop"][1]["hooks"][0]
    assert stop["async"] is True and stop["type"] == "command"
    assert list(commands(homes.settings["codex"])) == ["Stop"]
    gemini = json.loads(homes.settings["gemini"].read_text())["hooks"]["SessionEnd"][0]["hooks"][0]
    assert gemini["timeout"] == 30000 and gemini["command"].endswith(" hook gemini-session-end")


def test_an_older_install_is_replaced_in_place_not_doubled(homes: Homes) -> None:
    old = "/old/venv/bin/python -m sessionseal hook claude-stop"
    homes.settings["claude"].write_text(
        json.dumps(
            {
                "hooks": {
                    "Stop": [{"hooks": [{"type": "command", "command": "echo a"}, {"type": "command", "command": old}]}]
                }
            }
        )
    )
    r = homes.run("hooks", "status", "--claude", "--json")
    [state] = json.loads(r.out)["tools"]
    assert state["state"] == "partly"  # /old/venv/bin/python is not there
    assert homes.run("hooks", "install", "--claude").code == 0
    stop = json.loads(homes.settings["claude"].read_text())["hooks"]["Stop"]
    assert len(stop) == 1 and stop[0]["hooks"][0]["command"] == "echo a"
    assert stop[0]["hooks"][1]["command"].startswith(sys.executable)


def test_uninstall_after_the_user_changed_the_file_keeps_the_change(homes: Homes) -> None:
    path = homes.settings["claude"]
    path.write_text(USER_FILE)
    assert homes.run("hooks", "install", "--claude").code == 0
    doc = json.loads(path.read_text())
    doc["theme"] = "dark"
    doc["hooks"]["Stop"][0]["hooks"].append({"type": "command", "command": "echo mine"})
    path.write_text(json.dumps(doc, indent=2))
    assert homes.run("hooks", "uninstall", "--claude").code == 0
    after = json.loads(path.read_text())
    assert after["theme"] == "dark"
    assert commands(path) == {"Stop": ["notify-send done", "echo mine"]}


def test_dry_run_prints_a_diff_and_writes_nothing(homes: Homes) -> None:
    homes.settings["claude"].write_text(USER_FILE)
    before = sorted(p.name for p in homes.root.rglob("*"))
    r = homes.run("hooks", "install", "--dry-run")
    assert r.code == 0, r.err
    assert f"--- {homes.settings['claude']}" in r.out and "+++ /" in r.out and "hook claude-stop" in r.out
    assert "--- /dev/null" in r.out  # codex and gemini would get a new file
    assert sorted(p.name for p in homes.root.rglob("*")) == before
    assert homes.settings["claude"].read_text() == USER_FILE
    r = homes.run("hooks", "install", "--claude", "--dry-run", "--json")
    [planned] = json.loads(r.out)["tools"]
    assert planned["changed"] and planned["backup"] is None and "+" in planned["diff"]
    assert homes.settings["claude"].read_text() == USER_FILE


@pytest.mark.parametrize(
    "content",
    [b'{"hooks": {', b"not json", b"[1]", b'{"a": NaN}', b'{"hooks": []}', b'{"hooks": {"Stop": {}}}', b"\xff\xfe"],
)
def test_a_settings_file_that_is_not_json_is_refused_and_nothing_changes(homes: Homes, content: bytes) -> None:
    homes.settings["claude"].write_bytes(content)
    before = sorted(p.name for p in homes.root.rglob("*"))
    r = homes.run("hooks", "install")
    assert r.code == 8, r.err
    assert r.err.count("\n") == 1 and r.err.startswith("sessionseal: error: ") and "Traceback" not in r.err
    assert str(homes.settings["claude"]) in r.err
    # Every file is checked before any is changed: codex and gemini are untouched too.
    assert sorted(p.name for p in homes.root.rglob("*")) == before
    assert homes.settings["claude"].read_bytes() == content
    # Uninstall refuses what is not a JSON object; an object with nothing of ours it leaves alone.
    shaped = content == b'{"hooks": {"Stop": {}}}'
    assert homes.run("hooks", "uninstall", "--claude").code == (0 if shaped else 8)
    assert homes.settings["claude"].read_bytes() == content


def test_the_agents_homes_come_from_their_environment_variables(homes: Homes) -> None:
    r = homes.run("hooks", "install", "--json")
    got = {t["tool"]: t["settings"] for t in json.loads(r.out)["tools"]}
    assert got == {t: str(p) for t, p in homes.settings.items()}
    assert not any(homes.home.iterdir())  # nothing under HOME: every home was moved
    # Without the variables: ~/.claude, ~/.codex, ~/.gemini; an agent not on disk is skipped.
    (homes.home / ".claude").mkdir()
    r = sessionseal_in_process("hooks", "install", "--json", env={"HOME": str(homes.home)})
    out = json.loads(r.out)
    assert [t["settings"] for t in out["tools"]] == [str(homes.home / ".claude" / "settings.json")]
    assert [s["tool"] for s in out["skipped"]] == ["codex", "gemini"]


def test_a_linked_settings_file_stays_a_link(homes: Homes) -> None:
    dotfiles = homes.root / "dotfiles" / "claude-settings.json"
    dotfiles.parent.mkdir()
    dotfiles.write_text('{"model": "opus"}\n')
    homes.settings["claude"].symlink_to(dotfiles)
    assert homes.run("hooks", "install", "--claude").code == 0
    assert homes.settings["claude"].is_symlink() and "claude-stop" in dotfiles.read_text()
    assert homes.run("hooks", "uninstall", "--claude").code == 0
    assert homes.settings["claude"].is_symlink() and dotfiles.read_text() == '{"model": "opus"}\n'


def test_status_says_per_tool(homes: Homes) -> None:
    homes.gemini.rmdir()
    r = homes.run("hooks", "status", "--json")
    assert {t["tool"]: t["state"] for t in json.loads(r.out)["tools"]} == {
        "claude": "not installed",
        "codex": "not installed",
        "gemini": "tool not present",
    }
    assert homes.run("hooks", "install", "--claude").code == 0
    doc = json.loads(homes.settings["claude"].read_text())
    del doc["hooks"]["PreCompact"]
    homes.settings["claude"].write_text(json.dumps(doc))
    (homes.codex / "config.toml").write_text('model = "o3"\n[features]\nhooks = false\n')
    assert homes.run("hooks", "install", "--codex").code == 0
    r = homes.run("hooks", "status", "--json")
    states = {t["tool"]: t for t in json.loads(r.out)["tools"]}
    assert (states["claude"]["state"], states["claude"]["missing"]) == ("partly", ["PreCompact"])
    assert states["codex"]["state"] == "installed" and "hooks = false" in states["codex"]["off"]
    r = homes.run("hooks", "status")
    assert r.code == 0 and "partly" in r.out and "PreCompact" in r.out


# -- The pure part: which entries are ours, and the layout kept ----------------------------------


@pytest.mark.parametrize(
    ("command", "ours"),
    [
        ("/usr/bin/python3 -m sessionseal hook claude-stop", True),
        ("'/opt/my venv/bin/python' -m sessionseal --vault /v --passphrase-file /p hook codex-stop", True),
        ("sessionseal hook claude-session-end", True),
        ("/home/u/.local/bin/sessionseal --vault /v hook gemini-session-end", True),
        ("sessionseal hook unknown-event", False),  # not one of ours
        ("python3 -m sessionsealx hook claude-stop", False),
        ("echo sessionseal hook claude-stop", False),
        ("notify-send 'sessionseal hook claude-stop'", False),
        ("sessionseal hook claude-stop 'unterminated", False),
        ("", False),
    ],
)
def test_an_entry_is_ours_when_its_command_runs_sessionseals_hook(command: str, ours: bool) -> None:
    from sessionseal.cli import _hooks

    assert _hooks.is_ours({"type": "command", "command": command}) is ours
    assert not _hooks.is_ours({"type": "command", "command": 7}) and not _hooks.is_ours("sessionseal hook claude-stop")


@pytest.mark.parametrize(
    "text",
    [
        b'{\n  "a": 1\n}\n',
        b'{\n    "a": [\n        1\n    ]\n}',
        b'{\n\t"a": {\n\t\t"b": "\xc3\xa9"\n\t}\n}\n',
        b'{"a": 1, "b": [1, 2]}',
        b"{}",
    ],
)
def test_a_file_is_written_back_in_its_own_layout(text: bytes) -> None:
    from sessionseal.cli import _hooks

    assert _hooks.dump(_hooks.load(text, "f"), text) == text


@pytest.mark.parametrize("tool", ["claude", "codex", "gemini"])
@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"hooks": {}},
        {"x": 1, "hooks": {"Stop": []}},
        {"hooks": {"Stop": [{"matcher": "", "hooks": [{"type": "command", "command": "a"}]}], "Other": [{}]}},
        {"hooks": {"SessionEnd": [{"hooks": [{"type": "command", "command": "sessionseal hook claude-stop"}]}]}},
    ],
)
def test_install_then_uninstall_leaves_only_what_was_not_ours(tool: str, doc: dict[str, Any]) -> None:
    from sessionseal.cli import _hooks

    def command(sub: str) -> str:
        return f"/py -m sessionseal hook {sub}"

    installed = _hooks.install(doc, tool, command, "f")
    assert _hooks.state(installed, tool, command) == ("installed", [])
    assert _hooks.same(_hooks.install(installed, tool, command, "f"), installed)
    assert _hooks.bare(_hooks.uninstall(installed, "f")) == _hooks.bare(doc)
    assert _hooks.state(_hooks.uninstall(installed, "f"), tool)[0] == "not installed"
