"""What every command shares: error-to-exit-code mapping, vault opening, passphrases, output.

The CLI is a client of the public library API only.  Every error a user can hit is
printed as one line on stderr (``sessionseal: error: ...``) with the exit code of its
class (docs/cli.md); tracebacks appear only with ``SESSIONSEAL_DEBUG=1``.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import click

from sessionseal.errors import InvalidInput, KeyStoreError, SessionSealError

if TYPE_CHECKING:
    from sessionseal import Vault

__all__ = [
    "EXIT_INTERNAL",
    "Context",
    "echo_json",
    "handle_errors",
    "interactive",
    "passphrase_source",
    "read_input",
]

#: An unexpected exception: a bug (EX_SOFTWARE from sysexits.h).
EXIT_INTERNAL: Final = 70
_F = TypeVar("_F", bound=Callable[..., Any])


def interactive() -> bool:
    """A person is at a terminal (stdin and stderr are TTYs) and CI is not set."""
    if os.environ.get("CI") or os.environ.get("SESSIONSEAL_NONINTERACTIVE"):
        return False
    try:
        return sys.stdin.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def fail(message: str, code: int) -> None:
    """Print one error line and exit with *code*."""
    click.echo(f"sessionseal: error: {message}", err=True)
    sys.exit(code)


def handle_errors(fn: _F) -> _F:
    """Turn library errors into one line and a distinct exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SessionSealError as exc:
            if os.environ.get("SESSIONSEAL_DEBUG"):
                raise
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            click.echo("sessionseal: interrupted; nothing was left half-written", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:
            if os.environ.get("SESSIONSEAL_DEBUG"):
                raise
            fail(
                f"internal error ({type(exc).__name__}); please report it. "
                "Run with SESSIONSEAL_DEBUG=1 for a traceback (it may show session content)",
                EXIT_INTERNAL,
            )
        return None

    return wrapper  # type: ignore[return-value]


def _read_passphrase_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(4096)
    except OSError as exc:
        raise KeyStoreError(f"cannot read the passphrase file {path}: {exc.strerror}") from None
    # One trailing newline is what editors and `echo` add; it is not part of the passphrase.
    return data[:-1] if data.endswith(b"\n") else data


#: SESSIONSEAL_PASSPHRASE and SESSIONSEAL_BUNDLE_PASSPHRASE, when the ``sessionseal`` process
#: removed them from its environment at start so that no child process inherits them.
taken_env: dict[str, str] = {}


def passphrase_source(
    passphrase_file: str | None,
    *,
    confirm: bool = False,
    env: str = "SESSIONSEAL_PASSPHRASE",
    what: str = "Vault passphrase",
    option: str = "--passphrase-file",
) -> Callable[[], bytes]:
    """A callable that finds the passphrase only when the vault needs it:
    ``--passphrase-file``, then ``SESSIONSEAL_PASSPHRASE``, then a prompt at a terminal.
    (A bundle's passphrase comes the same way, from its own option and variable.)
    """

    def get() -> bytes:
        if passphrase_file:
            return _read_passphrase_file(passphrase_file)
        # As the process's own command, sessionseal took it out of its environment at start.
        value_env = os.environ.get(env) or taken_env.get(env)
        if value_env:
            return value_env.encode()
        if interactive():
            value: str = click.prompt(what, hide_input=True, confirmation_prompt=confirm, err=True)
            return value.encode()
        raise KeyStoreError(
            f"the {what.lower()} is needed and there is no terminal to ask on; set {env} or pass {option}"
        )

    return get


class Context:
    """Global options, and the vault opened on demand."""

    def __init__(self, vault_path: str | None, passphrase_file: str | None) -> None:
        self.vault_path = vault_path
        self.passphrase_file = passphrase_file
        self._vault: Vault | None = None

    def vault(self, *, auto_cleanup: bool = True) -> Vault:
        """Open the vault (once).  An automatic cleanup it ran is reported on stderr."""
        if self._vault is None:
            from sessionseal import Vault

            self._vault = Vault.open(
                self.vault_path,
                passphrase=passphrase_source(self.passphrase_file),
                interactive=interactive(),
                auto_cleanup=auto_cleanup,
            )
            done = self._vault.last_auto_cleanup
            if done is not None and (done.removed or done.orphans_removed):
                click.echo(
                    f"sessionseal: automatic cleanup removed {len(done.removed) + done.orphans_removed} "
                    "session(s) by the vault's retention policy (see 'sessionseal audit show --action cleanup')",
                    err=True,
                )
        return self._vault

    def close(self) -> None:
        """Close the vault if it was opened."""
        if self._vault is not None:
            self._vault.close()


def read_input(source: str, limit: int) -> bytes:
    """Read a document from a file or ``-`` (stdin), refusing more than *limit* bytes."""
    try:
        if source == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(Path(source), "rb") as f:
                data = f.read(limit + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read {source}: {exc.strerror}") from None
    if len(data) > limit:
        raise InvalidInput(f"{source} is over {limit >> 20} MiB; split the session")
    if not data.strip():
        raise InvalidInput(f"{source} is empty; give a session JSON document")
    return data


def echo_json(value: Any) -> None:
    """Print JSON for scripts: one document, sorted keys, UTF-8."""
    click.echo(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str))
