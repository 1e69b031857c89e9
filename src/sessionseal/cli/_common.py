"""What every command shares: error-to-exit-code mapping, vault opening, passphrases, output.

The CLI is a client of the public library API only.  Every error a user can hit is
printed as one line on stderr (``sessionseal: error: ...``) with the exit code of its
class (docs/cli.md); tracebacks appear only with ``SESSIONSEAL_DEBUG=1``.
"""

from __future__ import annotations

import functools
import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, TypeVar

import click

from sessionseal.errors import InvalidInput, KeyStoreError, SessionSealError, UnsafePermissions

if TYPE_CHECKING:
    from sessionseal import Vault

__all__ = [
    "EXIT_INTERNAL",
    "TEXT_LIMIT",
    "Context",
    "OneLineUsageError",
    "claim_stdin",
    "echo_json",
    "handle_errors",
    "interactive",
    "passphrase_source",
    "private_text",
    "private_words",
    "read_input",
    "text_file_option",
    "warn_if_short",
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
    """Print one error line and exit with *code*.  It may name a file or hold stored text: its
    control characters (newlines too) are shown as escapes, whatever stderr is."""
    from ._terminal import visible

    click.echo(f"sessionseal: error: {visible(message, one_line=True)}", err=True)
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
        except click.exceptions.Abort:
            # Ctrl-C or Ctrl-D at a prompt, or "no" to a confirmation: every prompt comes
            # before the command changes anything.
            click.echo("sessionseal: cancelled; nothing was changed", err=True)
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


def _check_passphrase_file(st: os.stat_result, path: str, option: str) -> None:
    """Refuse a regular passphrase file that is not the user's own and private, as ssh refuses
    a private key file: owned by you (or root), no permission bits for group or others.  Only
    regular files: a pipe or a descriptor (``/dev/stdin``, ``/dev/fd/3``, ``<(pass show x)``)
    is private to the processes that hold it.  Checked on the opened file, so a link to a
    file of yours is fine and a swap between check and read is not possible."""
    if st.st_uid not in (os.geteuid(), 0):
        raise UnsafePermissions(
            f"{option} {path} is owned by uid {st.st_uid}, not by you; use a passphrase file of your own (mode 600)"
        )
    if st.st_mode & 0o077:
        raise UnsafePermissions(
            f"{option} {path} has mode {stat.S_IMODE(st.st_mode):04o}: group or others can read or change it; "
            f"run 'chmod 600 {path}' (and choose a new passphrase if others may have read it)"
        )


def _read_passphrase_file(path: str, option: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise KeyStoreError(f"cannot read the passphrase file {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if stat.S_ISREG(st.st_mode):
                _check_passphrase_file(st, path, option)
            data = f.read(4096)
    except OSError as exc:
        if isinstance(exc, UnsafePermissions):
            raise
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
    env: str | None = "SESSIONSEAL_PASSPHRASE",
    what: str = "Vault passphrase",
    option: str = "--passphrase-file",
) -> Callable[[], bytes]:
    """A callable that finds the passphrase only when the vault needs it, once:
    ``--passphrase-file``, then ``SESSIONSEAL_PASSPHRASE``, then a prompt at a terminal.
    (A bundle's passphrase comes the same way, from its own option and variable; a new
    passphrase, with *env* None, only from its file or a prompt.)
    """

    @functools.cache
    def get() -> bytes:
        if passphrase_file:
            return _read_passphrase_file(passphrase_file, option)
        # As the process's own command, sessionseal took it out of its environment at start.
        value_env = (os.environ.get(env) or taken_env.get(env)) if env else None
        if value_env:
            return value_env.encode()
        if interactive():
            value: str = click.prompt(what, hide_input=True, confirmation_prompt=confirm, err=True)
            return value.encode()
        where = f"set {env} or pass {option}" if env else f"pass {option}"
        raise KeyStoreError(f"the {what.lower()} is needed and there is no terminal to ask on; {where}")

    return get


def warn_if_short(source: Callable[[], bytes], what: str = "passphrase") -> Callable[[], bytes]:
    """*source*, warning on stderr when the passphrase it gives is short (a warning, not a
    refusal: the choice is the user's, and scripts that chose must keep working)."""
    from sessionseal import PassphraseProvider

    def get() -> bytes:
        value = source()
        # Characters, not UTF-8 bytes: an "ö" counts once, as the person who typed it counts it.
        if len(value.decode("utf-8", "replace")) < PassphraseProvider.RECOMMENDED_MIN_CHARS:
            click.echo(
                f"sessionseal: warning: the {what} is shorter than {PassphraseProvider.RECOMMENDED_MIN_CHARS} "
                "characters; whoever gets a copy of the vault can try guesses offline. Choose a longer one "
                "('sessionseal passphrase change')",
                err=True,
            )
        return value

    return get


class Context:
    """Global options, and the vault opened on demand."""

    def __init__(self, vault_path: str | None, passphrase_file: str | None) -> None:
        self.vault_path = vault_path
        self.passphrase_file = passphrase_file
        self._vault: Vault | None = None
        #: A capture hook's run: never a merge in its process (docs/capture/hooks.md).
        self.in_hook = False

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
            # A due tier merge runs in a detached child, never in the command's call (docs/design.md,
            # "Tier merges out of the writer's call"); the child may read the passphrase file too.
            self._vault.maintenance.mode = "background"
            self._vault.maintenance.unlock_with_file(self.passphrase_file)
            done = self._vault.last_auto_cleanup
            if done is not None and (done.removed or done.orphans_removed):
                click.echo(
                    f"sessionseal: automatic cleanup removed {len(done.removed) + done.orphans_removed} "
                    "session(s) by the vault's retention policy (see 'sessionseal audit show --action cleanup')",
                    err=True,
                )
        return self._vault

    def close(self) -> None:
        """Close the vault if it was opened, after taking up a tier merge still pending: started
        in the background, or at a terminal (a passphrase no child can have) run here, after
        the command's output; never in a hook."""
        if self._vault is None:
            return
        try:
            self._vault.maintenance.resume(foreground=interactive() and not self.in_hook, before=_say_merging)
        finally:
            self._vault.close()


def _say_merging() -> None:
    click.echo("sessionseal: merging the full-text index's segments (due after many writes)...", err=True)


def read_input(source: str, limit: int, *, what: str = "the input") -> bytes:
    """Read a document from a file or ``-`` (stdin), refusing more than *limit* bytes."""
    try:
        if source == "-":
            claim_stdin(what)
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


class OneLineUsageError(click.UsageError):
    """A usage error printed as one line, like every other error (exit 2, no usage block)."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"sessionseal: error: {self.format_message()}", err=True)


_STDIN_OWNER: Final = "sessionseal.stdin"


def claim_stdin(what: str) -> None:
    """Record that *what* reads stdin in this invocation; refuse a second reader.

    stdin is one stream: two inputs read from it (``save``'s document and ``--title-file -``,
    say) would split it at a place nobody chose.  The claim lives in the click context's
    ``meta``, which one invocation's nested contexts share.
    """
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return
    first = ctx.meta.get(_STDIN_OWNER)
    if first is not None:
        raise OneLineUsageError(f"{first} and {what} both read stdin; give one of them in a file")
    ctx.meta[_STDIN_OWNER] = what


#: The most a private text read from a file or stdin may hold (a title, a description, a
#: tag list, a search text...): far more than any needs, and a bound on what a wrong file
#: given by mistake (a disk image, /dev/zero) costs.
TEXT_LIMIT: Final = 1 << 20


def _read_text(source: str, what: str, label: str) -> str:
    """The UTF-8 text of FILE or ``-`` (stdin), less one trailing newline.

    Messages name the file, never what it holds.
    """
    where = "stdin" if source == "-" else source
    try:
        if source == "-":
            claim_stdin(label)
            data = sys.stdin.buffer.read(TEXT_LIMIT + 1)
        else:
            with open(source, "rb") as f:
                data = f.read(TEXT_LIMIT + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} from {where}: {exc.strerror}") from None
    if len(data) > TEXT_LIMIT:
        raise InvalidInput(f"{what} in {where} is over {TEXT_LIMIT >> 20} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{what} in {where} is not UTF-8 text") from None
    # The newline that editors, echo and here-documents add is not part of the text; only
    # one goes, so a text that really ends in a newline keeps the rest.
    for end in ("\r\n", "\n"):
        if text.endswith(end):
            return text[: -len(end)]
    return text


def text_file_option(option: str, what: str) -> Callable[[_F], _F]:
    """The ``--...-file FILE|-`` sibling of an option or argument that carries private text.

    Every private text has one (tests/unit/test_cli_private_text.py walks the command tree
    to check): what is on a command line is readable by every local user (docs/cli.md).
    """
    return click.option(
        option,
        option.lstrip("-").replace("-", "_"),
        metavar="FILE|-",
        help=f"Read {what} from FILE (- : stdin) instead of the command line, which other users can see.",
    )


def private_text(
    value: str | None,
    file: str | None,
    *,
    what: str,
    name: str,
    option: str,
    dash: bool = False,
    prompt: str | None = None,
) -> str | None:
    """A private text: from *file* (its ``--...-file`` option; ``-`` is stdin), from ``-`` in
    place of an argument (*dash*), from the command line, or else, when the command needs it
    (*prompt* given), from a prompt at a terminal.  ``None`` when it is optional and absent.

    *name* is how the command line calls it (TITLE, --title), *option* its file option.
    """
    if value is not None and file is not None:
        raise OneLineUsageError(f"give {name} or {option}, not both")
    if file is not None:
        return _read_text(file, what, f"{option} -")
    if dash and value == "-":
        return _read_text("-", what, f"{name} -")
    if value is not None or prompt is None:
        return value
    if interactive():
        claim_stdin("the prompt")
        answer: str = click.prompt(prompt, err=True)
        return answer
    raise OneLineUsageError(
        f"{name} is missing and there is no terminal to ask on; give it"
        + (", or - to read it from stdin," if dash else "")
        + f" or {option} FILE"
    )


def private_words(
    values: tuple[str, ...],
    file: str | None,
    *,
    what: str,
    name: str,
    option: str,
    dash: bool = False,
    prompt: str | None = None,
) -> tuple[str, ...]:
    """Private words such as tags: those given, then those of *file* (``-``: stdin), or of
    stdin where a value is ``-`` (*dash*), separated by blanks or lines.  When nothing is
    given and the command needs words (*prompt*), they are asked for at a terminal.
    """
    words: list[str] = []
    for value in values:
        if dash and value == "-":
            words += _read_text("-", what, f"{name} -").split()
        else:
            words.append(value)
    if file is not None:
        words += _read_text(file, what, f"{option} -").split()
    if values or file is not None or prompt is None:
        return tuple(words)
    answer = private_text(None, None, what=what, name=name, option=option, dash=dash, prompt=prompt)
    return tuple((answer or "").split())


def echo_json(value: Any) -> None:
    """Print JSON for scripts: one document, sorted keys, UTF-8 (at a terminal, C1 controls
    and invisible format characters as ``\\u`` escapes: the same value, see ``_terminal``)."""
    from ._terminal import json_text

    click.echo(json_text(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)))
