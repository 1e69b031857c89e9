"""Issue 18, item 10: terminal escapes in stored text reached the terminal through ``show``,
``search`` snippets, ``resume`` and every other command that prints stored text (OSC 52
clipboard writes, OSC 8 links, screen and line erases that hide content from a reviewer).

At a terminal, C0/C1 controls but newline and tab, DEL, invisible format characters (bidi
overrides, tag characters...) and lone CRs are shown as escapes; rich markup in stored text is
printed literally; ``--json`` stays exact (piped: the stored bytes; at a terminal: the same
JSON value).  Piped human output is the text as stored.  Error lines are escaped always.

"At a terminal" is simulated with ``TTY_COMPATIBLE=1`` (what rich honours) under CliRunner,
and is real in one test: ``show`` under a pty.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from sessionseal import PassphraseProvider, Vault
from sessionseal.cli import cli
from sessionseal.cli._terminal import json_text, visible
from tests.memkeyring import MemoryKeyring

SRC = str(Path(__file__).resolve().parents[2] / "src")

#: What a hostile transcript can carry.
PAYLOADS = {
    "osc52": "\x1b]52;c;cm0gLXJmIH4=\x07",  # writes the clipboard
    "osc8": "\x1b]8;;https://evil.example/\x1b\\innocent\x1b]8;;\x1b\\",  # a link
    "clear": "\x1b[2J\x1b[H",  # clears the screen
    "erase": "\x1b[1A\x1b[2K",  # erases the line above
    "cr": "shown\rhidden",  # overwrites the line
    "c1": "\x9b2J\x9d0;title\x9c",  # 8-bit CSI and OSC
    "bidi": "admin\u202e\u2066 // not\u2069\u2066",  # Trojan Source
    "tags": "x\U000e0069\U000e0067\U000e006e",  # invisible tag characters
    "del": "a\x7fb",
}
EVIL = "".join(PAYLOADS.values())
MARKUP = "[bold red]x[/] [link=https://evil.example]click[/link] :smile:"
#: Raw characters that must not reach a terminal (rich's own SGR styling is removed first).
_SGR = re.compile(r"\x1b\[[0-9;]*m")
_RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f]")

TERMINAL = {"TTY_COMPATIBLE": "1", "COLUMNS": "200"}
PIPED = {"TTY_COMPATIBLE": "0", "FORCE_COLOR": None}


def _raw_left(output: str) -> list[str]:
    """The dangerous characters in *output*, but rich's SGR styling and CR LF line ends."""
    text = _SGR.sub("", output).replace("\r\n", "\n")
    return sorted({repr(c) for c in _RAW.findall(text)})


@pytest.fixture
def run(memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(tmp_path / "vault"))
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE", raising=False)
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, Any] | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, env=env or PIPED, catch_exceptions=False)

    assert invoke("init").exit_code == 0
    return invoke


def _document(evil: str = EVIL) -> dict[str, Any]:
    return {
        "title": f"review me {evil} {MARKUP}",
        "description": f"about {evil}",
        "tags": [f"t{PAYLOADS['osc52']}", f"u{PAYLOADS['c1']}\u202eabc"],  # tags hold no whitespace
        "workspace": f"/w/{PAYLOADS['clear']}",
        "messages": [
            {"role": "user", "content": f"needle before {evil} after {MARKUP}"},
            {
                "role": "assistant",
                "model": f"m{PAYLOADS['c1']}",
                "content": [{"type": "tool_call", "id": "c", "name": "bash", "arguments": {"cmd": evil}}],
            },
            {"role": "tool", "content": [{"type": "tool_result", "tool_call_id": "c", "content": f"out {evil}"}]},
        ],
    }


@pytest.fixture
def sid(run: Callable[..., Result]) -> str:
    r = run("save", input=json.dumps(_document()))
    assert r.exit_code == 0, r.output
    sid = r.output.strip()
    # C0 controls are refused in checkpoint names; C1 and bidi are not.
    assert run("checkpoint", "create", sid, f"cp{PAYLOADS['c1']}\u202e").exit_code == 0
    return sid


def test_the_payloads_are_stored_as_given(sid: str, run: Callable[..., Result]) -> None:
    # The premise: the sanitizer keeps them (they are not secrets), so only rendering can help.
    doc = json.loads(run("show", sid, "--json").output)
    assert doc["title"] == f"review me {EVIL} {MARKUP}"
    assert doc["messages"][2]["content"][0]["content"] == f"out {EVIL}"


@pytest.mark.parametrize(
    "args",
    [
        ["show", "{sid}"],
        ["resume", "{sid}"],
        ["resume", "--latest"],
        ["list"],
        ["list", "--all", "--tag", "t" + PAYLOADS["osc52"]],
        ["search", "needle"],
        ["search", "out"],
        ["checkpoint", "list", "{sid}"],
        ["checkpoint", "create", "{sid}", "again\x9b2J\u2066"],
        ["tag", "{sid}", "+v" + PAYLOADS["erase"]],
        ["audit", "show"],
        ["stats"],
        ["cleanup", "--dry-run", "--show-kept", "--max-age", "1d", "--min-age", "0"],
    ],
    ids=lambda a: " ".join(a)[:40],
)
def test_at_a_terminal_no_raw_control_reaches_it(sid: str, run: Callable[..., Result], args: list[str]) -> None:
    r = run(*(a.format(sid=sid) for a in args), env=TERMINAL)
    assert r.exit_code == 0, r.output
    assert _raw_left(r.output) == []


def test_what_the_reviewer_sees(sid: str, run: Callable[..., Result]) -> None:
    out = _SGR.sub("", run("show", sid, env=TERMINAL).output)
    for shown in ("\\x1b]52;c;cm0gLXJmIH4=\\x07", "\\x1b[2J", "\\x1b[1A\\x1b[2K", "shown\\rhidden", "\\x9b2J"):
        assert shown in out
    assert "admin\\u202e\\u2066 //" in out and "not\\u2069\\u2066" in out
    assert "x\\U000e0069" in out and "a\\x7fb" in out
    assert MARKUP in out  # markup and emoji codes print literally
    assert "needle before" in out and "out " in out and "cp\\x9b2J" in out  # the checkpoint's name


def test_rich_markup_in_stored_text_is_text_piped_too(run: Callable[..., Result]) -> None:
    doc = {"title": MARKUP[:40], "tags": ["[red]t[/red]"], "messages": [{"role": "user", "content": MARKUP}]}
    sid = run("save", input=json.dumps(doc)).output.strip()
    for env in (PIPED, TERMINAL):
        for args in (["show", sid], ["list"], ["search", "click"]):
            out = _SGR.sub("", run(*args, env=env).output)
            assert MARKUP[:40] in out, args  # the title, as typed
            assert "[red]t[/red]" in out or args[0] == "search", args
            assert "\x1b]8;" not in out, args  # no link of rich's making


def test_piped_human_output_is_the_text_as_stored(sid: str, run: Callable[..., Result]) -> None:
    # (rich drops BEL, BS, VT, FF and CR from what it prints, as it always has; --json is exact.)
    out = run("show", sid).output
    assert PAYLOADS["clear"] in out and PAYLOADS["bidi"] in out and PAYLOADS["c1"] in out


def test_json_is_exact_piped_and_the_same_value_at_a_terminal(
    sid: str, run: Callable[..., Result], tmp_path: Path
) -> None:
    cli_listed = run("list", "--json").output.encode()
    with Vault.open(tmp_path / "vault") as v:
        listed, _ = v.list_json()
        stored = v.load_json(sid)
    assert cli_listed == listed + b"\n"
    assert run("resume", sid, "--json").output == stored.decode() + "\n"
    hits = json.loads(run("search", "needle", "--json").output)["hits"]
    assert "needle before " + PAYLOADS["osc52"] in hits[0]["snippet"]  # as stored
    for args in (["show", sid, "--json"], ["resume", sid, "--json"]):
        piped, at_tty = run(*args).output, run(*args, env=TERMINAL).output
        assert json.loads(piped) == json.loads(at_tty) == json.loads(stored), args
        assert "\x9b" in piped and _raw_left(at_tty) == []
    for args in (["list", "--json"], ["search", "needle", "--json"], ["latest", "--json"], ["audit", "show", "--json"]):
        piped, at_tty = run(*args).output, run(*args, env=TERMINAL).output
        if args[0] == "audit":
            # Each 'audit show' opens the vault, which is itself audited: the second run sees
            # one record more than the first, and the same records before it.
            first, second = ([json.loads(x) for x in s.splitlines()] for s in (piped, at_tty))
            assert first == second[: len(first)] and len(second) == len(first) + 1, args
        else:
            assert json.loads(piped) == json.loads(at_tty), args
        assert _raw_left(at_tty) == [], args


def test_error_lines_are_one_line_and_escaped_always(run: Callable[..., Result], tmp_path: Path) -> None:
    name = str(tmp_path / f"x{PAYLOADS['clear']}\n{PAYLOADS['osc52']}.json")
    for env in (PIPED, TERMINAL):
        r = run("save", name, env=env)
        assert r.exit_code == 8
        [line] = r.output.splitlines()
        assert "\\x1b[2J\\x1b[H\\n\\x1b]52" in line and _raw_left(line) == []


def test_transcript_file_names_are_shown_escaped(
    run: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "claude" / "projects" / "-p"
    project.mkdir(parents=True)
    line = {"type": "user", "uuid": "u", "sessionId": "s", "timestamp": "2026-03-14T10:00:00Z"}
    line["message"] = {"role": "user", "content": EVIL}  # type: ignore[assignment]
    (project / f"a{PAYLOADS['osc52']}{PAYLOADS['c1']}\u202e.jsonl").write_text(json.dumps(line) + "\n")
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude"))
    r = run("import-transcripts", "--claude", env=TERMINAL)
    assert r.exit_code == 0, r.output
    assert _raw_left(r.output) == [] and "\\x1b]52" in _SGR.sub("", r.output)


def test_info_shows_a_vault_path_escaped(memory_keyring: MemoryKeyring, tmp_path: Path) -> None:
    path = tmp_path / f"v{PAYLOADS['osc8']}"
    runner = CliRunner()
    env = {**TERMINAL, "SESSIONSEAL_VAULT": str(path)}
    assert runner.invoke(cli, ["init"], env=env).exit_code == 0
    r = runner.invoke(cli, ["info"], env=env)
    assert r.exit_code == 0 and _raw_left(r.output) == [] and "\\x1b]8;;" in r.output


def test_the_escaped_set_is_every_control_and_invisible_format_character() -> None:
    """C0 but LF and tab, DEL, C1, Cf but ZWNJ/ZWJ, Zl, Zp, surrogates: checked against this
    Python's Unicode database, code point by code point."""
    wanted = {"Cc", "Cf", "Zl", "Zp", "Cs"}
    for n in range(0x110000):
        ch = chr(n)
        cat = unicodedata.category(ch)
        escaped = visible(ch) != ch
        if cat in wanted and ch not in "\n\t\u200c\u200d":
            assert escaped, f"U+{n:04X} ({cat}) is not escaped"
        elif escaped:
            assert cat == "Cn", f"U+{n:04X} ({cat}) is escaped"  # format characters of a newer Unicode
    assert visible("a\r\nb") == "a\nb" and visible("a\rb") == "a\\rb"
    assert visible("a\nb\tc", one_line=True) == "a\\nb\tc"
    assert visible("👩\u200d💻") == "👩\u200d💻"


def test_json_escapes_keep_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    value = {"k": EVIL + "\U000e0001\u2028\xad"}
    text = json_text(json.dumps(value, ensure_ascii=False))
    assert json.loads(text) == value and _raw_left(text) == []


def test_show_under_a_real_pty(tmp_path: Path) -> None:
    path = tmp_path / "vault"
    with Vault.init(path, key_provider=PassphraseProvider("pty test", log2_n=14)) as v:
        sid = str(v.save(_document()))
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR")}
    env.update(PYTHONPATH=SRC, SESSIONSEAL_VAULT=str(path), SESSIONSEAL_PASSPHRASE="pty test", TERM="xterm")
    env.update(COLUMNS="200", LINES="50")
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sessionseal", "show", sid],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            env=env,
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its side
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(master)
    out = b"".join(chunks).decode()
    assert "needle before" in out
    assert _raw_left(out) == []
    assert "\\x1b]52;c;" in _SGR.sub("", out)
