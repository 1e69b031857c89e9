"""Private text stays off the command line (issue 18, item 3).

Every local user can read every process's arguments (/proc/PID/cmdline, ``ps``), so every
text that says what a session is about (titles, descriptions, tags, checkpoint names, search
text, workspace and model filters) can also come from a file, from stdin (``-``) or from a
prompt at a terminal, and gives the same result as on the command line.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from sessionseal import PassphraseProvider, Vault, errors
from sessionseal.cli import cli
from tests.memkeyring import MemoryKeyring

SRC = str(Path(__file__).resolve().parents[2] / "src")

#: Every parameter that carries private text, as (command path, parameter name), and the
#: option that reads it from a file or stdin instead.  A new command that takes private
#: text must add its parameter here, with a file form, or the classification test fails.
PRIVATE: dict[tuple[str, str], str] = {
    ("save", "title"): "--title-file",
    ("save", "tags"): "--tags-file",
    ("rename", "title"): "--title-file",
    ("describe", "text"): "--text-file",
    ("tag", "changes"): "--changes-file",
    ("fork", "title"): "--title-file",
    ("fork", "at"): "--at-file",
    ("checkpoint create", "name"): "--name-file",
    ("checkpoint restore", "ref"): "--name-file",
    ("checkpoint restore", "title"): "--title-file",
    ("checkpoint delete", "ref"): "--name-file",
    ("search", "text"): "--text-file",
    ("latest", "tags"): "--tags-file",
    **{
        (command, name): f"--{option}-file"
        for command in ("list", "search", "export", "stats", "browse")
        for name, option in (("tags", "tags"), ("workspace", "workspace"), ("model", "model"))
    },
}

#: Text parameters that are not private, by parameter name, and why.
PUBLIC: dict[str, str] = {
    "session_id": "a random id: it names, it does not describe (item 6 of the issue covers ids at rest)",
    "session_ids": "random ids",
    "parent": "a random id",
    "session": "audit show --session: a random id",
    "user": "audit show --user: an OS user name, public in /etc/passwd",
    "actions": "audit show --action: the fixed vocabulary of audit actions",
    "private_tag": "mcp serve --private-tag: the marker tag's name, a setting (in the agent's MCP config)",
    "since": "a time or a duration",
    "until": "a time or a duration",
    "max_age": "a duration",
    "min_age": "a duration",
    "max_size": "a size",
    "expect_head": "verify --expect-head: an audit record's seq and MAC; it says nothing of a session",
    "vault_path": "a path the user chooses (docs/cli.md: paths are visible)",
    "passphrase_file": "a path; the passphrase itself never goes on the command line",
    "bundle_passphrase_file": "a path",
    "source": "the path of a document to read, or -",
    "out": "the path to write to",
    "files": "scan: the paths to scan",
    "claude": "import-transcripts: the agent's transcript directory",
    "codex": "import-transcripts: the agent's transcript directory",
    "gemini": "import-transcripts: the agent's transcript directory",
    "cwd": "resume --cwd: a path the user chooses",
    "agent_command": "resume --agent-command: a command line (a program and its options), not session content",
    "remote_name": "remote add/remove/restore: a remote's name, a setting of a fixed shape (a-z, 0-9, '_', '-')",
    "kit_remote": "remote restore --remote: the name of a remote in the kit, a setting of a fixed shape",
    "remote_url": "remote add: where a bucket is (s3://BUCKET/PREFIX), a location like a path",
    "endpoint": "remote add --endpoint: a server's URL; user information in it is refused",
    "profile": "remote add --profile: the name of an AWS profile, not a credential",
    "region": "remote add --region: an AWS region's name",
    "to": "snapshot --to: the path to write to",
    "recovery_kit": "key export/import --recovery-kit: the path of the kit file",
    "accept_device": "device enroll --accept: a device's random id, as device list shows it",
    "device": "device revoke: a device's random id",
    "code": "device enroll --code: a pairing code, 10 bytes of a hash of public keys (device list shows it)",
}


def _commands(cmd: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    yield " ".join(path), cmd
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from _commands(sub, (*path, name))


def _carries_text(p: click.Parameter) -> bool:
    return isinstance(p.type, click.types.StringParamType | click.Path) and not getattr(p, "is_flag", False)


def test_every_private_text_parameter_has_a_file_or_stdin_form() -> None:
    found: dict[tuple[str, str], click.Command] = {}
    unclassified = []
    for path, cmd in _commands(cli):
        file_options = {opt for p in cmd.params for opt in p.opts if opt.endswith("-file")}
        for p in cmd.params:
            assert p.name is not None
            if not _carries_text(p) or any(opt in file_options for opt in p.opts):
                continue
            if (path, p.name) in PRIVATE:
                found[path, p.name] = cmd
            elif p.name not in PUBLIC:
                unclassified.append(f"{path or 'sessionseal'} {p.name}")
    assert not unclassified, f"classify these parameters in PRIVATE (with a file form) or PUBLIC: {unclassified}"
    assert set(found) == set(PRIVATE), "PRIVATE names parameters that no longer exist"
    for (path, name), cmd in found.items():
        by_name = {p.name: p for p in cmd.params}
        sibling = [p for p in cmd.params if PRIVATE[path, name] in p.opts]
        assert sibling, f"{path} {name}: no {PRIVATE[path, name]} option"
        assert "FILE|-" in (sibling[0].metavar or "")
        if isinstance(by_name[name], click.Argument):
            # A positional text also takes "-" (stdin) and may be left out (then asked for).
            assert "|-]" in (by_name[name].metavar or ""), f"{path} {name}: '-' is not in its metavar"
            assert not by_name[name].required


# -- Each form gives the same result as the command line ---------------------------------------


@dataclass
class Case:
    """A command with its private text in the place marked ``{T}`` and how to observe the result."""

    id: str
    args: list[str]
    text: list[str]  # several words: a repeatable option or several arguments
    file_option: str
    observe: str  # the name of an observation below
    option: str | None = None  # the option that {T} belongs to; None: an argument


CASES = [
    Case("rename", ["rename", "{A}", "{T}"], ["Project Falcon: merger notes"], "--title-file", "title"),
    Case("describe", ["describe", "{A}", "{T}"], ["Due diligence for\nthe Falcon deal"], "--text-file", "description"),
    Case("tag", ["tag", "{A}", "{T}"], ["+falcon", "-old", "merger"], "--changes-file", "tags"),
    Case("save-title", ["save", "{doc}", "--title", "{T}"], ["Falcon saved"], "--title-file", "new-title", "--title"),
    Case("save-tags", ["save", "{doc}", "--tag", "{T}"], ["falcon", "merger"], "--tags-file", "new-tags", "--tag"),
    Case("fork-title", ["fork", "{A}", "--title", "{T}"], ["Falcon fork"], "--title-file", "new-title", "--title"),
    Case("fork-at", ["fork", "{A}", "--at", "{T}"], ["before falcon"], "--at-file", "new-messages", "--at"),
    Case("checkpoint-create", ["checkpoint", "create", "{A}", "{T}"], ["falcon point"], "--name-file", "checkpoints"),
    Case("checkpoint-restore", ["checkpoint", "restore", "{A}", "{T}"], ["before falcon"], "--name-file", "messages"),
    Case(
        "checkpoint-restore-fork-title",
        ["checkpoint", "restore", "{A}", "1", "--fork", "--title", "{T}"],
        ["Falcon restored"],
        "--title-file",
        "new-title",
        "--title",
    ),
    Case("checkpoint-delete", ["checkpoint", "delete", "{A}", "{T}"], ["before falcon"], "--name-file", "checkpoints"),
    Case("search", ["search", "{T}", "--json"], ["falcon secret"], "--text-file", "hit-titles"),
    Case("list-tags", ["list", "--tag", "{T}", "--json"], ["blue", "old"], "--tags-file", "titles", "--tag"),
    Case(
        "list-workspace",
        ["list", "--workspace", "{T}", "--json"],
        ["/srv/falcon"],
        "--workspace-file",
        "titles",
        "--workspace",
    ),
    Case("list-model", ["list", "--model", "{T}", "--json"], ["ft:acme:falcon"], "--model-file", "titles", "--model"),
    Case("search-tags", ["search", "body", "--tag", "{T}", "--json"], ["green"], "--tags-file", "hit-titles", "--tag"),
    Case("latest-tags", ["latest", "--tag", "{T}", "--json"], ["green"], "--tags-file", "latest-title", "--tag"),
    Case(
        "export-tags",
        ["export", "--all", "--tag", "{T}", "--format", "json", "--plaintext", "--out", "{out}", "--json"],
        ["blue"],
        "--tags-file",
        "exported",
        "--tag",
    ),
]


class Vaults:
    """A fresh vault per form, holding the same two sessions; session A has a checkpoint."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runner = CliRunner()
        self.n = 0

    def run(self, vault: Path, *args: str, input: str | bytes | None = None) -> Result:
        return self.runner.invoke(cli, ["--vault", str(vault), *args], input=input, catch_exceptions=False)

    def fresh(self) -> tuple[Path, dict[str, str]]:
        self.n += 1
        vault = self.root / f"vault{self.n}"
        assert self.run(vault, "init").exit_code == 0
        a = {
            "title": "alpha",
            "tags": ["old", "blue"],
            "workspace": "/srv/falcon",
            "messages": [{"role": "user", "content": "the falcon secret body"}],
        }
        b = {
            "title": "beta",
            "tags": ["green"],
            "workspace": "/srv/other",
            "messages": [{"role": "assistant", "content": "body", "model": "ft:acme:falcon"}],
        }
        ids = {}
        for key, doc in (("A", a), ("B", b)):
            r = self.run(vault, "save", input=json.dumps(doc))
            assert r.exit_code == 0, r.output
            ids[key] = r.output.strip()
        assert self.run(vault, "checkpoint", "create", ids["A"], "before falcon").exit_code == 0
        assert self.run(vault, "append", ids["A"], input='{"role": "user", "content": "later"}\n').exit_code == 0
        doc_file = self.root / f"doc{self.n}.json"
        doc_file.write_text(json.dumps({"title": "t", "tags": ["x"], "messages": [{"role": "user", "content": "c"}]}))
        ids["doc"] = str(doc_file)
        ids["out"] = str(self.root / f"out{self.n}.json")
        return vault, ids

    def observe(self, what: str, vault: Path, ids: dict[str, str], r: Result) -> object:
        """What the command did, in terms that do not depend on the vault (ids differ)."""
        assert r.exit_code == 0, r.output

        def show(sid: str) -> dict[str, Any]:
            doc: dict[str, Any] = json.loads(self.run(vault, "show", sid, "--json").output)
            return doc

        def new() -> dict[str, Any]:  # the session whose id the command printed first
            return show(r.stdout.split()[0])

        observations: dict[str, Callable[[], object]] = {
            "title": lambda: show(ids["A"])["title"],
            "description": lambda: show(ids["A"])["description"],
            "tags": lambda: show(ids["A"])["tags"],
            "new-title": lambda: new()["title"],
            "new-tags": lambda: new()["tags"],
            "new-messages": lambda: len(new()["messages"]),
            "messages": lambda: len(show(ids["A"])["messages"]),
            "checkpoints": lambda: [
                cp["name"] for cp in json.loads(self.run(vault, "checkpoint", "list", ids["A"], "--json").output)
            ],
            "titles": lambda: sorted(item["title"] for item in json.loads(r.stdout)),
            "hit-titles": lambda: sorted(item["title"] for item in json.loads(r.stdout)["hits"]),
            "latest-title": lambda: json.loads(r.stdout)["title"],
            "exported": lambda: len(json.loads(r.stdout)["sessions"]),
        }
        return observations[what]()


def _args(case: Case, ids: dict[str, str], text: list[str] | None) -> list[str]:
    """The case's arguments with the text on the command line, or without it (text None)."""
    out: list[str] = []
    template = case.args
    i = 0
    while i < len(template):
        item = template[i]
        if item == case.option and template[i + 1] == "{T}":
            for word in text or []:
                out += [item, word]
            i += 2
            continue
        if item == "{T}":
            out += text or []
        else:
            out.append(item.format(**ids))
        i += 1
    return out


@pytest.fixture
def vaults(memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Vaults:
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE", raising=False)
    return Vaults(tmp_path)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_file_and_stdin_forms_give_what_the_command_line_gives(vaults: Vaults, case: Case) -> None:
    results = {}
    joined = "\n".join(case.text) if len(case.text) > 1 else case.text[0]

    vault, ids = vaults.fresh()
    argv = _args(case, ids, case.text)
    results["argv"] = vaults.observe(case.observe, vault, ids, vaults.run(vault, *argv))

    vault, ids = vaults.fresh()
    path = vaults.root / f"{case.id}.txt"
    path.write_text(joined + "\n")  # one trailing newline is dropped, as editors and echo add it
    r = vaults.run(vault, *_args(case, ids, None), case.file_option, str(path))
    results["file"] = vaults.observe(case.observe, vault, ids, r)

    vault, ids = vaults.fresh()
    r = vaults.run(vault, *_args(case, ids, None), case.file_option, "-", input=joined.encode() + b"\n")
    results["stdin"] = vaults.observe(case.observe, vault, ids, r)

    if case.option is None:  # an argument: "-" in its place reads stdin
        vault, ids = vaults.fresh()
        r = vaults.run(vault, *_args(case, ids, ["-"]), input=joined.encode() + b"\n")
        results["dash"] = vaults.observe(case.observe, vault, ids, r)

    assert all(value == results["argv"] for value in results.values()), results


# -- Refusals: one line, a distinct exit code, nothing changed ----------------------------------


@pytest.fixture
def one(vaults: Vaults) -> tuple[Vaults, Path, dict[str, str]]:
    vault, ids = vaults.fresh()
    return vaults, vault, ids


def _one_line(r: Result, code: int) -> None:
    assert r.exit_code == code, r.output
    assert r.output.count("\n") == 1 and r.output.startswith("sessionseal: error:"), r.output


def test_only_one_input_may_read_stdin(one: tuple[Vaults, Path, dict[str, str]]) -> None:
    vaults, vault, ids = one
    before = json.loads(vaults.run(vault, "list", "--all", "--json").output)
    doc = '{"messages": []}'
    # 'save' reads the document from stdin unless given FILE.
    r = vaults.run(vault, "save", "--title-file", "-", input=doc)
    _one_line(r, 2)
    assert "--title-file -" in r.output and "document" in r.output
    _one_line(vaults.run(vault, "search", "-", "--tags-file", "-", input="x"), 2)
    _one_line(vaults.run(vault, "checkpoint", "restore", ids["A"], "-", "--fork", "--title-file", "-", input="x"), 2)
    _one_line(vaults.run(vault, "tag", ids["A"], "-", "-", input="x"), 2)
    assert json.loads(vaults.run(vault, "list", "--all", "--json").output) == before


def test_a_text_and_its_file_together_are_refused(one: tuple[Vaults, Path, dict[str, str]], tmp_path: Path) -> None:
    vaults, vault, ids = one
    f = tmp_path / "t.txt"
    f.write_text("x")
    _one_line(vaults.run(vault, "rename", ids["A"], "T", "--title-file", str(f)), 2)
    _one_line(vaults.run(vault, "fork", ids["A"], "--title", "T", "--title-file", str(f)), 2)
    _one_line(vaults.run(vault, "list", "--workspace", "/w", "--workspace-file", str(f)), 2)
    assert vaults.run(vault, "checkpoint", "restore", ids["A"], "1", "--title-file", str(f)).exit_code == 2  # no --fork
    assert json.loads(vaults.run(vault, "show", ids["A"], "--json").output)["title"] == "alpha"


@pytest.mark.parametrize(
    "args",
    [
        ["rename", "{A}"],
        ["describe", "{A}"],
        ["tag", "{A}"],
        ["search"],
        ["checkpoint", "restore", "{A}"],
        ["checkpoint", "delete", "{A}"],
    ],
    ids=lambda a: "-".join(x for x in a if x != "{A}"),
)
def test_a_missing_text_without_a_terminal_is_a_usage_error(
    one: tuple[Vaults, Path, dict[str, str]], args: list[str]
) -> None:
    vaults, vault, ids = one
    r = vaults.run(vault, *[a.format(**ids) for a in args])
    _one_line(r, 2)
    assert "no terminal" in r.output and "-file FILE" in r.output


@pytest.mark.parametrize(
    ("data", "why"),
    [(b"caf\xe9 title\n", "not UTF-8"), (b"x" * ((1 << 20) + 1), "over 1 MiB")],
    ids=["latin-1", "too-big"],
)
def test_bad_text_files_exit_8_and_change_nothing(
    one: tuple[Vaults, Path, dict[str, str]], tmp_path: Path, data: bytes, why: str
) -> None:
    vaults, vault, ids = one
    f = tmp_path / "bad.txt"
    f.write_bytes(data)
    for args, inp in (
        (["rename", ids["A"], "--title-file", str(f)], None),
        (["rename", ids["A"], "-"], data),
        (["tag", ids["A"], "--changes-file", str(f)], None),
        (["save", ids["doc"], "--tags-file", "-"], data),
    ):
        r = vaults.run(vault, *args, input=inp)
        _one_line(r, errors.InvalidInput.exit_code)
        assert why in r.output and "caf" not in r.output
    assert json.loads(vaults.run(vault, "show", ids["A"], "--json").output)["title"] == "alpha"
    assert len(json.loads(vaults.run(vault, "list", "--json").output)) == 2
    r = vaults.run(vault, "rename", ids["A"], "--title-file", str(tmp_path / "missing"))
    _one_line(r, errors.InvalidInput.exit_code)


def test_only_one_trailing_newline_is_dropped(one: tuple[Vaults, Path, dict[str, str]]) -> None:
    vaults, vault, ids = one
    assert vaults.run(vault, "describe", ids["A"], "-", input="line one\nline two\n\n").exit_code == 0
    assert json.loads(vaults.run(vault, "show", ids["A"], "--json").output)["description"] == "line one\nline two\n"
    assert vaults.run(vault, "rename", ids["A"], "-", input="crlf title\r\n").exit_code == 0
    assert json.loads(vaults.run(vault, "show", ids["A"], "--json").output)["title"] == "crlf title"


# -- Real processes ----------------------------------------------------------------------------


def _env(vault: Path) -> dict[str, str]:
    # No CI and no SESSIONSEAL_NONINTERACTIVE: the pty test needs a terminal to count as one.
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": SRC,
        "HOME": str(vault.parent),
        "SESSIONSEAL_VAULT": str(vault),
        "SESSIONSEAL_PASSPHRASE": "private-text test passphrase",
    }


@pytest.fixture
def passphrase_vault(tmp_path: Path) -> tuple[Path, str]:
    vault = tmp_path / "vault"
    with Vault.init(vault, key_provider=PassphraseProvider("private-text test passphrase", log2_n=14)) as v:
        sid = str(v.save({"title": "before", "messages": [{"role": "user", "content": "hi"}]}))
    return vault, sid


def _title(vault: Path, sid: str) -> str:
    with Vault.open(vault, passphrase="private-text test passphrase") as v:
        return v.load(sid).title


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_a_title_on_stdin_is_not_in_the_process_list(passphrase_vault: tuple[Path, str]) -> None:
    vault, sid = passphrase_vault
    title = "Falcon acquisition: board notes"
    with subprocess.Popen(
        [sys.executable, "-m", "sessionseal", "rename", sid, "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(vault),
    ) as proc:
        try:
            # The process cannot finish before its stdin is closed, so it is alive for as long
            # as we look.  Its argument pages are set up a moment after exec lets Popen return
            # (the command line reads as empty until then); once set, they stay for the
            # process's life and are what every other local user can read.
            deadline = time.monotonic() + 120  # an upper bound for a loaded machine, not a speed test
            cmdline = b""
            while not cmdline and proc.poll() is None and time.monotonic() < deadline:
                cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
                time.sleep(0.01)
            assert proc.poll() is None
            assert b"rename" in cmdline and sid.encode() in cmdline
            assert title.encode() not in cmdline and b"Falcon" not in cmdline
            _, err = proc.communicate(title.encode() + b"\n", timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    assert _title(vault, sid) == title


def _at_a_terminal(vault: Path, args: list[str], prompt: bytes, answer: bytes) -> tuple[int, bytes]:
    """Run sessionseal with stdin and stderr on a real pseudo-terminal, answer *prompt*."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sessionseal", *args],
        stdin=slave,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env=_env(vault),
    )
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 120  # an upper bound for a loaded machine, not a speed test
        while prompt not in seen:
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"no prompt; the terminal showed {seen!r}"
            seen += os.read(master, 4096)
        os.write(master, answer)
        code = proc.wait(timeout=120)
        while select.select([master], [], [], 0)[0]:
            try:
                seen += os.read(master, 4096)
            except OSError:  # EIO: the terminal's last reader has gone
                break
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, seen


def test_a_missing_title_is_asked_for_at_a_terminal(passphrase_vault: tuple[Path, str]) -> None:
    vault, sid = passphrase_vault
    code, _ = _at_a_terminal(vault, ["rename", sid], b"Title:", b"Typed at the terminal\n")
    assert code == 0
    assert _title(vault, sid) == "Typed at the terminal"


def test_ctrl_d_at_the_prompt_cancels_with_exit_130(passphrase_vault: tuple[Path, str]) -> None:
    vault, sid = passphrase_vault
    code, seen = _at_a_terminal(vault, ["search"], b"Search for:", b"\x04")
    assert code == 130 and b"cancelled" in seen and b"Traceback" not in seen
    code, _ = _at_a_terminal(vault, ["checkpoint", "restore", sid], b"Checkpoint (name or number):", b"\x04")
    assert code == 130
    assert _title(vault, sid) == "before"


def test_the_docs_show_every_file_form_and_what_argv_exposes() -> None:
    root = Path(__file__).resolve().parents[2]
    cli_md = (root / "docs" / "cli.md").read_text()
    for option in set(PRIVATE.values()):
        assert f"{option} FILE" in cli_md, option
    for doc in (cli_md, (root / "threat-model.md").read_text()):
        assert "/proc/PID/cmdline" in doc and "hidepid=invisible" in doc
