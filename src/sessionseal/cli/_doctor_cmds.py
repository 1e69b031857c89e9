"""``sessionseal doctor``: is every session being captured, and is the vault usable? (docs/capture/hooks.md)

Read only: the vault is opened without its automatic cleanup, transcripts are compared with the
vault as a dry-run import compares them, and no settings file is written.  Each check is ``ok``,
``warn`` or ``error`` with a one-line hint; exit 1 when one is an error, 0 otherwise.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final

import click

from ._common import Context, echo_json, handle_errors, passphrase_source, taken_env
from ._hooks_cmds import tool_state
from ._terminal import shown

if TYPE_CHECKING:
    from sessionseal import Vault

__all__ = ["doctor"]

#: How long the keychain has to answer: a wedged Secret Service must not hang the doctor.
_KEYCHAIN_DEADLINE: Final = 10.0
#: The exit status when a check is an error (docs/cli.md, "Exit codes").
EXIT_PROBLEMS: Final = 1
_TOOL_OF: Final = {"claude-code": "claude", "codex": "codex", "gemini-cli": "gemini"}
_NAMES: Final = {"claude": "Claude Code", "codex": "Codex", "gemini": "Gemini CLI"}


@dataclass
class Check:
    name: str
    status: str  # ok, warn, error
    message: str
    hint: str = ""


class _NoPassphrase(Exception):
    """The vault asked for a passphrase that was not given (the doctor never prompts)."""


def _open(obj: Context) -> tuple[Vault | None, list[Check], bool]:
    """Open the vault (no cleanup, no prompt) in a worker that may take at most the deadline.
    Returns the vault, the checks of the keychain and the vault, and whether a worker is stuck."""
    from sessionseal import Vault

    # As its own command, sessionseal took the variable out of its environment at start.
    env = "SESSIONSEAL_PASSPHRASE"
    given = bool(obj.passphrase_file or os.environ.get(env) or taken_env.get(env))
    asked: list[bool] = []

    def no_passphrase() -> bytes:
        asked.append(True)
        raise _NoPassphrase

    result: dict[str, Any] = {}

    def work() -> None:
        try:
            v = Vault.open(
                obj.vault_path,
                passphrase=passphrase_source(obj.passphrase_file) if given else no_passphrase,
                interactive=False,
                auto_cleanup=False,
            )
            result["info"] = v.info()
            v.list()  # reads the index: the master key is needed (info alone does not need it)
            result["vault"] = v
        except BaseException as exc:
            result["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(_KEYCHAIN_DEADLINE)
    if worker.is_alive():
        return (
            None,
            [
                Check(
                    "keychain",
                    "error",
                    f"the key store did not answer within {_KEYCHAIN_DEADLINE:.0f} s",
                    "unlock the keychain, or restart its daemon (docs/keychain.md)",
                )
            ],
            True,
        )
    exc = result.get("error")
    if exc is None:
        info = result["info"]
        kind = (
            "passphrase vault, unlocked" if info.key_provider == "passphrase" else f"key in {info.key_provider_detail}"
        )
        return (
            result["vault"],
            [
                Check("keychain", "ok", kind),
                Check("vault", "ok", f"{info.vault_path}: {info.session_count} session(s)"),
            ],
            False,
        )
    return None, [_refusal(exc, bool(asked))], False


def _refusal(exc: BaseException, asked: bool) -> Check:
    """The check an exception of opening the vault makes."""
    from sessionseal.errors import KeyStoreError, SessionSealError, VaultNotFound, WrongPassphrase

    if isinstance(exc, VaultNotFound):
        return Check("vault", "error", str(exc), "create one with 'sessionseal init'")
    if asked or isinstance(exc, _NoPassphrase):
        return Check(
            "keychain",
            "warn",
            "passphrase vault: not opened, no passphrase given (doctor never prompts)",
            "pass --passphrase-file FILE to check it",
        )
    if isinstance(exc, WrongPassphrase):
        return Check("keychain", "error", str(exc), "give the vault's passphrase")
    if isinstance(exc, KeyStoreError):
        return Check("keychain", "error", str(exc), "unlock the OS keychain (docs/keychain.md)")
    if isinstance(exc, SessionSealError):
        return Check("vault", "error", str(exc), "run 'sessionseal verify'")
    return Check("vault", "error", f"cannot open the vault ({type(exc).__name__})", "run 'sessionseal verify'")


def _hook_checks() -> tuple[list[Check], dict[str, str]]:
    checks, states = [], {}
    for tool in ("claude", "codex", "gemini"):
        s = tool_state(tool)
        states[tool] = s["state"]
        if s["state"] == "tool not present":
            continue
        name, status, hint = f"hooks:{tool}", "ok", ""
        message = f"{_NAMES[tool]} hooks {s['state']} ({s['settings']})"
        if s["state"] == "unreadable":
            status, message, hint = "error", s["error"], "fix the file, then 'sessionseal hooks install'"
        elif s["state"] != "installed":
            status, hint = "warn", f"sessionseal hooks install --{tool}"
            if s["missing"] and s["state"] == "partly":
                message += f"; missing or out of date: {', '.join(s['missing'])}"
        elif s["off"]:
            status, message, hint = "warn", f"{_NAMES[tool]} hooks are off: {s['off']}", "turn hooks on in the agent"
        checks.append(Check(name, status, message, hint))
    return checks, states


def _cleanup_check(claude_state: str) -> Check | None:
    """Claude Code deletes transcripts idle for ``cleanupPeriodDays`` (default 30); 0 stops it
    writing them at all (Claude Code settings; anthropics/claude-code#23710)."""
    from sessionseal.errors import InvalidInput

    from . import _hook_files, _hooks

    if claude_state in ("tool not present", "unreadable"):
        return None
    try:
        doc = _hooks.load(_hook_files.read(_hooks.settings_path("claude")), "settings.json")
    except (InvalidInput, OSError):
        return None
    days = doc.get("cleanupPeriodDays", 30)
    if days == 0:
        return Check(
            "claude-cleanup",
            "error",
            "cleanupPeriodDays is 0: Claude Code writes no transcripts to capture",
            "remove cleanupPeriodDays from Claude Code's settings.json, or set a number of days",
        )
    if claude_state != "installed":
        return Check(
            "claude-cleanup",
            "error",
            f"Claude Code deletes transcripts after {days} day(s) (cleanupPeriodDays) and no hook captures them first",
            "sessionseal hooks install --claude",
        )
    return Check("claude-cleanup", "ok", f"Claude Code's {days}-day sweep runs after the hooks capture each session")


def _plaintext_checks(vault: Vault, states: dict[str, str]) -> list[Check]:
    """Transcripts on disk that the vault holds as they are (the importer's unchanged check)."""
    from sessionseal import find_transcripts

    present = {t: states.get(t) != "tool not present" for t in ("claude", "codex", "gemini")}
    paths = find_transcripts(claude=present["claude"], codex=present["codex"], gemini=present["gemini"])
    counts = dict.fromkeys((t for t, on in present.items() if on), 0)
    for o in vault.import_transcripts(paths, dry_run=True):  # reads only; not audited
        if o.action == "unchanged" and _TOOL_OF.get(o.tool or "") in counts:
            counts[_TOOL_OF[o.tool or ""]] += 1
    return [
        Check(
            f"plaintext:{tool}",
            "warn",
            f"{n} {_NAMES[tool]} transcript(s) in the vault are still on disk in plaintext",
            f"sessionseal import-transcripts --{tool} --remove-originals",
        )
        if n
        else Check(f"plaintext:{tool}", "ok", f"no {_NAMES[tool]} transcript in the vault is still on disk")
        for tool, n in counts.items()
    ]


def _merge_checks(vault: Vault) -> list[Check]:
    """The full-text index's tier merge: pending (search is slower until it runs, never wrong), or
    failed in the background, which prints nothing (docs/design.md, "Tier merges out of the
    writer's call")."""
    status = vault.maintenance.status()
    last, hint = status.last, "run 'sessionseal index merge'"
    if status.running:
        return [Check("fts-merge", "ok", "a full-text index merge is running")]
    if last.get("outcome") == "error":
        what = f"the last full-text index merge ({last.get('by')}) at {last.get('at')} failed"
        return [Check("fts-merge", "warn", f"{what} ({last.get('error')}, exit {last.get('exit_code')})", hint)]
    if status.due:  # a pending mark with no full tier left (a reindex since) goes with the next command
        since = f" since {status.pending}" if status.pending else ""
        what = f"a full-text index merge is due{since}; search is slower until it runs"
        return [Check("fts-merge", "warn", what, hint)]
    if last:
        return [Check("fts-merge", "ok", f"the last full-text index merge at {last.get('at')} succeeded")]
    return []


def _autopush_checks(vault: Vault) -> list[Check]:
    """The automatic push's last outcome per remote (``autopush.json``, as ``remote list``
    shows it): it runs detached and prints nothing, so a failure would otherwise go unseen."""
    remotes = vault.remotes.list()
    status = vault.remotes.auto_status()
    checks = []
    if "" in status:  # the last background run could not open the vault (a locked keychain)
        unopened = status[""]
        checks.append(
            Check(
                "auto-push",
                "warn",
                f"the last automatic push at {unopened.get('at')} could not open the vault "
                f"({unopened.get('error')}, exit {unopened.get('exit_code')})",
                "unlock the OS keychain, then run 'sessionseal sync --push'",
            )
        )
    for r in remotes:
        last = status.get(r.name)
        name = f"auto-push:{r.name}"
        if r.auto_push is None and last is None:
            continue
        if last is None:
            checks.append(Check(name, "ok", f"on, {r.auto_push:g} s after a write; none ran yet"))
        elif last.get("outcome") == "ok":
            checks.append(Check(name, "ok", f"the last automatic push at {last.get('at')} succeeded"))
        else:
            checks.append(
                Check(
                    name,
                    "warn",
                    f"the last automatic push at {last.get('at')} failed ({last.get('error')}, "
                    f"exit {last.get('exit_code')})",
                    f"run 'sessionseal sync {r.name} --push' to see why",
                )
            )
    return checks


def _mcp_checks(states: dict[str, str]) -> list[Check]:
    """Per agent present: is ``mcp serve`` registered, and can it run (docs/mcp.md)."""
    import importlib.util

    from . import _mcp_files

    have_sdk = importlib.util.find_spec("mcp") is not None
    checks = []
    for tool in ("claude", "codex", "gemini"):
        if states.get(tool) == "tool not present":
            continue
        s = _mcp_files.state(tool)
        name, where = f"mcp:{tool}", s["file"]
        if s["state"] == "unreadable":
            checks.append(Check(name, "warn", s["error"], "fix the file, then 'sessionseal mcp install'"))
        elif s["state"] == "stale":
            checks.append(
                Check(
                    name,
                    "warn",
                    f"{_NAMES[tool]}: the registered server's program is gone ({where})",
                    f"sessionseal mcp install --{tool}",
                )
            )
        elif s["state"] == "registered" and not have_sdk:
            checks.append(
                Check(
                    name,
                    "error",
                    f"{_NAMES[tool]} starts 'mcp serve' but the mcp package is not installed",
                    "pip install 'sessionseal[mcp]'",
                )
            )
        elif s["state"] == "registered":
            checks.append(Check(name, "ok", f"{_NAMES[tool]}: the MCP server is registered ({where})"))
        else:
            checks.append(
                Check(
                    name,
                    "ok",
                    f"{_NAMES[tool]}: the MCP server is not registered (optional)",
                    f"sessionseal mcp install --{tool}",
                )
            )
    return checks


@click.command(name="doctor")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object: each check, and whether all passed.")
@click.pass_obj
@handle_errors
def doctor(obj: Context, as_json: bool) -> None:
    """Check that sessions are captured and the vault is usable: the keychain, the vault, each
    agent's hooks, Claude Code's transcript sweep, transcripts left in plaintext, the automatic
    push's last outcome, a full-text index merge pending or failed, the MCP server.

    Read only and never prompts.  Exit 1 when a check is an error; warnings alone exit 0.
    """
    vault, checks, stuck = _open(obj)
    hook_checks, states = _hook_checks()
    checks += hook_checks
    cleanup = _cleanup_check(states["claude"])
    if cleanup is not None:
        checks.append(cleanup)
    if vault is not None:
        try:
            checks += _plaintext_checks(vault, states)
            checks += _autopush_checks(vault)
            checks += _merge_checks(vault)
        finally:
            vault.close()
    checks += _mcp_checks(states)
    errors = sum(c.status == "error" for c in checks)
    if as_json:
        echo_json(
            {
                "ok": errors == 0,
                "errors": errors,
                "warnings": sum(c.status == "warn" for c in checks),
                "checks": [asdict(c) for c in checks],
            }
        )
    else:
        for c in checks:
            click.echo(shown(f"{c.status:<5}  {c.name:<16} {c.message}" + (f"  [{c.hint}]" if c.hint else "")))
    code = EXIT_PROBLEMS if errors else 0
    if stuck:  # the worker still waits on the key store: do not wait for it at exit
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
