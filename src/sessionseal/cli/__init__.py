"""The ``sessionseal`` command line (docs/cli.md)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from sessionseal import __version__
from sessionseal.errors import InvalidInput

from ._common import (
    Context,
    echo_json,
    handle_errors,
    interactive,
    passphrase_source,
    private_text,
    private_words,
    read_input,
    text_file_option,
    warn_if_short,
)
from ._filters import list_filters, query_of
from ._resume_cmds import resume_into_options, run_agent_resume, wants_agent
from ._terminal import at_terminal, json_text, say, shown

if TYPE_CHECKING:
    from sessionseal import Session

# The vault, pydantic and the storage layer are imported inside the commands that use
# them: 'sessionseal sanitize' (a filter in pipelines) and '--help' start in a fraction
# of the time.

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--vault",
    "vault_path",
    envvar="SESSIONSEAL_VAULT",
    metavar="DIR",
    help="Vault directory [env SESSIONSEAL_VAULT; default: the user data dir].",
)
@click.option(
    "--passphrase-file",
    metavar="FILE",
    help="Read a passphrase vault's passphrase from FILE (else SESSIONSEAL_PASSPHRASE, else a prompt).",
)
@click.version_option(__version__, prog_name="sessionseal")
@click.pass_context
def cli(ctx: click.Context, vault_path: str | None, passphrase_file: str | None) -> None:
    """Keep AI-agent sessions sanitized, encrypted and owner-only on this machine."""
    ctx.obj = Context(vault_path, passphrase_file)
    ctx.call_on_close(ctx.obj.close)


@cli.command()
@click.option(
    "--key-provider",
    type=click.Choice(["keychain", "passphrase"]),
    default="keychain",
    show_default=True,
    help="Where the master key lives: the OS keychain, or a key file wrapped under a passphrase.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def init(obj: Context, key_provider: str, as_json: bool) -> None:
    """Create a vault with a new random master key."""
    from sessionseal import Vault

    # Asked (and its file checked) before anything is created: a refusal leaves no empty vault behind.
    passphrase = (
        warn_if_short(passphrase_source(obj.passphrase_file, confirm=True))() if key_provider == "passphrase" else None
    )
    vault = Vault.init(obj.vault_path, key_provider=key_provider, passphrase=passphrase, interactive=interactive())
    info = vault.info()
    vault.close()
    if as_json:
        echo_json({"vault_path": info.vault_path, "vault_id": info.vault_id, "key_provider": info.key_provider})
        return
    click.echo(shown(f"Created vault {info.vault_path}"))
    click.echo(f"  id:           {info.vault_id}")
    click.echo(shown(f"  key provider: {info.key_provider_detail}"))


@cli.command()
@click.argument("source", default="-", metavar="[FILE|-]")
@text_file_option("--title-file", "the title")
@click.option("--title", help="Set the session's title (visible in the process list: prefer --title-file).")
@text_file_option("--tags-file", "tags to add (blank- or line-separated)")
@click.option("--tag", "tags", multiple=True, help="Add a tag (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the id and redaction counts as JSON.")
@click.pass_obj
@handle_errors
def save(  # noqa: PLR0917 - one parameter per option
    obj: Context,
    source: str,
    title_file: str | None,
    title: str | None,
    tags_file: str | None,
    tags: tuple[str, ...],
    as_json: bool,
) -> None:
    """Store a session JSON document (from FILE or stdin) and print its id.

    The document follows 'sessionseal schema'; every field but the messages' role may
    be left out.  Secrets are replaced before anything reaches the disk.
    """
    from sessionseal import Vault

    title = private_text(title, title_file, what="the title", name="--title", option="--title-file")
    tags = private_words(tags, tags_file, what="the tags", name="--tag", option="--tags-file")
    data = read_input(source, Vault.MAX_SESSION_BYTES, what="the session document")
    session = _parse_session(data)
    if title is not None:
        session.title = title
    if tags:
        session.tags = list(dict.fromkeys([*session.tags, *tags]))
    vault = obj.vault()
    sid = vault.save(session)
    if as_json:
        stored = vault.load(sid)
        echo_json({"id": str(sid), "redactions": stored.redactions})
    else:
        click.echo(str(sid))


@cli.command()
@click.argument("session_id", metavar="ID")
@click.argument("source", default="-", metavar="[FILE|-]")
@click.option("--json", "as_json", is_flag=True, help="Print the count appended as JSON.")
@click.pass_obj
@handle_errors
def append(obj: Context, session_id: str, source: str, as_json: bool) -> None:
    """Append events to a stored session: JSON lines from FILE or stdin, one event per line.

    For recorders in any language, or a shell hook.  Each line is a message
    ({"role": "user", "content": "..."}) or an object with a "type": message, tool_call
    (name, arguments, id), tool_result (tool_call_id, content, is_error) or state (fields
    such as working_directory, environment, status).  Only the new events are sanitized,
    compressed and encrypted; a bad line appends nothing.
    """
    from sessionseal import Vault

    data = read_input(source, Vault.MAX_SESSION_BYTES)
    events: list[Any] = []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except RecursionError:
            raise InvalidInput(f"line {number} of {source} is {_TOO_DEEP}") from None
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            if not isinstance(exc, UnicodeDecodeError | json.JSONDecodeError):
                raise InvalidInput(f"line {number} of {source} {_TOO_LONG}") from None
            raise InvalidInput(f"line {number} of {source} is not JSON; give one event object per line") from None
    count = obj.vault().append(session_id, events)
    if as_json:
        echo_json({"id": session_id, "appended": count})
    else:
        click.echo(f"appended {count} event(s) to {session_id}", err=True)


# Python's parser refuses these (RecursionError; ValueError past sys.get_int_max_str_digits());
# no session could hold them anyway (the vault stores 64-bit integers and about 250 levels).
_TOO_DEEP = "JSON nested too deep to read (over about 1,000 levels); no session holds that"
_TOO_LONG = "holds an integer of thousands of digits; a session holds integers of up to 64 bits"


def _parse_session(data: bytes) -> Session:
    from sessionseal.models import parse_session

    try:
        doc = json.loads(data)
    except RecursionError:
        raise InvalidInput(f"the input is {_TOO_DEEP}") from None
    except ValueError as exc:
        if not isinstance(exc, UnicodeDecodeError | json.JSONDecodeError):
            raise InvalidInput(f"the input {_TOO_LONG}") from None
        where = f" at line {exc.lineno}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise InvalidInput(f"the input is not valid JSON{where}; give a session document") from None
    if not isinstance(doc, dict):
        raise InvalidInput("the input is JSON but not an object; give a session document")
    return parse_session(doc)


@cli.command()
@click.argument("session_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the whole session as JSON.")
@click.pass_obj
@handle_errors
def show(obj: Context, session_id: str, as_json: bool) -> None:
    """Decrypt and print one session."""
    if as_json:
        # The stored document is authenticated: pass it on without building models.
        doc = json.loads(obj.vault().load_json(session_id))
        click.echo(json_text(json.dumps(doc, indent=2, ensure_ascii=False)))
        return
    vault = obj.vault()
    session = vault.load(session_id)
    from ._render import render_session

    render_session(session, checkpoints=vault.checkpoints(session.id))


@cli.command(name="list")
@list_filters
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def list_(obj: Context, /, which: str | None, as_json: bool, here: bool, **filters: Any) -> None:
    """List the sessions in the vault, newest first (archived ones only when asked)."""
    query = query_of(here, which, filters)
    if as_json:
        # The documents as stored (authenticated): no models for what only goes to stdout.
        data, problems = obj.vault().list_json(query)
        for line in problems:
            say(f"sessionseal: warning: {line}")
        # Piped, the bytes go to the binary stream as they are: no 5 MB decode and re-encode.
        click.echo(json_text(data.decode()) if at_terminal() else data)
        return
    summaries, problems = obj.vault().list_with_problems(query)
    for line in problems:
        say(f"sessionseal: warning: {line}")
    from ._render import render_list

    render_list(summaries)


@cli.command()
@click.argument("text", metavar="[QUERY|-]", required=False)
@text_file_option("--text-file", "the query to search for")
@list_filters
@click.option("--regex", "mode", flag_value="regex", help="QUERY is a Python regular expression (a streaming scan).")
@click.option("--literal", "mode", flag_value="literal", help="QUERY is plain text to find as is (a streaming scan).")
@click.option("--case-sensitive", is_flag=True, help="Match case exactly (--literal, --regex; alone: --literal).")
@click.option("--no-snippets", is_flag=True, help="No snippets: ids, titles and scores from the index alone (faster).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def search(
    obj: Context,
    /,
    *,
    text: str | None,
    text_file: str | None,
    which: str | None,
    here: bool,
    mode: str | None,
    case_sensitive: bool,
    no_snippets: bool,
    as_json: bool,
    **filters: Any,
) -> None:
    """Find sessions by words, phrases, prefixes, AND/OR/NOT and fields (20 by default, best first).

    QUERY is answered from the encrypted full-text index: `deploy failed`, `"exact phrase"`,
    `pars*`, `timeout OR deadline`, `-flaky`, `title:release`, `tool:pytest`; see docs/cli.md.
    --regex and --literal scan the sessions instead. QUERY is seen by every local user in the
    process list: give - to read it from stdin, --text-file, or leave it out to be asked at a terminal.
    """
    what = private_text(
        text, text_file, what="the search query", name="QUERY", option="--text-file", dash=True, prompt="Search for"
    )
    assert what is not None
    query = query_of(here, which, filters)
    hits = obj.vault().search(what, query, mode=mode, case_sensitive=case_sensitive, snippets=not no_snippets)
    for line in hits.warnings:
        say(f"sessionseal: warning: {line}")
    if as_json:
        echo_json(
            {
                "index": hits.source,
                "stale": hits.stale,
                "warnings": hits.warnings,
                "hits": [
                    {
                        "id": h.id,
                        "title": h.title,
                        "updated_at": h.updated_at,
                        "score": h.score,
                        "fields": list(h.fields),
                        "field": h.field,
                        "offset": h.offset,
                        "snippet": h.snippet,
                    }
                    for h in hits
                ],
            }
        )
        return
    from ._render import render_hits

    render_hits(hits)


def _latest_query(here: bool, tags: tuple[str, ...]) -> Any:
    import os

    from sessionseal import ListQuery

    return ListQuery(workspace=os.getcwd() if here else None, tags=tags)


@cli.command()
@click.option("--here", is_flag=True, help="The latest whose workspace is the current directory (or inside it).")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="The latest with this tag (repeatable: all).")
@text_file_option("--tags-file", "more tags to match (blank- or line-separated)")
@click.option("--json", "as_json", is_flag=True, help="Print its summary as JSON instead of its id.")
@click.pass_obj
@handle_errors
def latest(obj: Context, here: bool, tags: tuple[str, ...], tags_file: str | None, as_json: bool) -> None:
    """Print the id of the most recently updated session (exit 3 when there is none)."""
    from sessionseal.errors import SessionNotFound

    tags = private_words(tags, tags_file, what="the tags", name="--tag", option="--tags-file")
    found = obj.vault().latest(_latest_query(here, tags))
    if found is None:
        raise SessionNotFound("no session matches; see 'sessionseal list'")
    if as_json:
        echo_json(found.model_dump(mode="json"))
    else:
        click.echo(str(found.id))


@cli.command()
@click.argument("session_id", metavar="[ID]", required=False)
@click.option("--latest", "use_latest", is_flag=True, help="Resume the most recently updated session.")
@click.option("--here", is_flag=True, help="With --latest: the latest in the current directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole session as JSON, for the next tool.")
@resume_into_options
@click.pass_obj
@handle_errors
def resume(obj: Context, /, session_id: str | None, use_latest: bool, here: bool, as_json: bool, **into: Any) -> None:
    """Print a session so that another tool can continue it (its read is recorded); with
    --into, resume it in its agent: Claude Code, Codex or Gemini CLI (docs/capture/resume.md)."""
    from sessionseal.errors import SessionNotFound

    if wants_agent(into) and into["cleanup"]:
        run_agent_resume(obj, session_id, as_json, into)
        return
    if (session_id is None) == (not use_latest):
        raise click.UsageError("give a session ID or --latest (not both)")
    vault = obj.vault()
    if use_latest:
        found = vault.latest(_latest_query(here, ()))
        if found is None:
            raise SessionNotFound("no session to resume; see 'sessionseal list'")
        session_id = str(found.id)
    assert session_id is not None
    if into["into"]:
        run_agent_resume(obj, session_id, as_json, into)
        return
    if as_json:
        click.echo(json_text(vault.load_json(session_id).decode()))
        return
    from ._render import render_session

    render_session(vault.load(session_id))


@cli.command()
@click.argument("session_id", metavar="ID")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
@handle_errors
def delete(obj: Context, session_id: str, yes: bool) -> None:
    """Erase a session: its key is destroyed (crypto-erase), then its file is overwritten and removed."""
    if not yes:
        if not interactive():
            raise click.UsageError("refusing to delete without confirmation; pass --yes")
        click.confirm(f"Delete session {session_id}?", abort=True, err=True)
    obj.vault().delete(session_id)
    click.echo(f"Deleted {session_id}; its key is destroyed and its file overwritten", err=True)


@cli.command()
@click.option(
    "--from-keyring-file",
    is_flag=True,
    help="Move a key an older sessionseal put in a keyrings.alt file into the OS keychain, rotate it, "
    "and remove the file's copy (docs/keychain.md).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def rekey(obj: Context, from_keyring_file: bool, as_json: bool) -> None:
    """Rotate the master key; the old one leaves the key store once the new one is in use."""
    vault = obj.vault(auto_cleanup=not from_keyring_file)
    epoch = vault.rekey(from_keyring_file=from_keyring_file)
    if as_json:
        echo_json({"vault_id": str(vault.vault_id), "epoch": epoch})
        return
    if from_keyring_file:
        click.echo(
            "Moved the master key into the OS keychain and removed the keyrings.alt file's entry; "
            "backups of that file hold only the old key",
            err=True,
        )
    click.echo(f"Rotated the master key to epoch {epoch}; old copies of the vault no longer open with it", err=True)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def reindex(obj: Context, as_json: bool) -> None:
    """Rebuild the encrypted index and the full-text index from the session files."""
    vault = obj.vault()
    if as_json or not interactive():
        n = vault.reindex()
    else:
        with click.progressbar(length=1, label="Indexing", file=sys.stderr) as bar:

            def step(done: int, total: int) -> None:
                bar.length = max(total, 1)
                bar.update(done - bar.pos)

            n = vault.reindex(progress=step)
    if as_json:
        echo_json({"sessions": n})
        return
    click.echo(f"Indexed {n} session(s)", err=True)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def info(obj: Context, as_json: bool) -> None:
    """Describe the vault: path, key provider, sessions, sizes."""
    i = obj.vault().info()
    doc: dict[str, Any] = {
        "vault_path": i.vault_path,
        "vault_id": i.vault_id,
        "key_provider": i.key_provider,
        "key_provider_detail": i.key_provider_detail,
        "key_backend": i.key_backend,
        "format_version": i.format_version,
        "container_version": i.container_version,
        "created_at": i.created_at,
        "session_count": i.session_count,
        "stored_bytes": i.stored_bytes,
    }
    if i.audit_log_path is not None:
        doc["audit_log_path"] = i.audit_log_path
    if as_json:
        echo_json(doc)
        return
    width = max(len(k) for k in doc)
    for k, v in doc.items():
        if v is not None:
            click.echo(shown(f"{k:<{width}}  {v}"))


@cli.command()
@click.option("--dry-run", is_flag=True, help="Say what would be migrated; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def migrate(obj: Context, dry_run: bool, as_json: bool) -> None:
    """Bring the vault's formats up to this sessionseal's (crash-safe; run again if interrupted).

    Exit 13 when the vault holds data from a newer sessionseal: upgrade instead.
    """
    found, steps = obj.vault().migrate(dry_run=dry_run)
    if as_json:
        echo_json({"formats": [f.to_json() for f in found], "steps": steps, "dry_run": dry_run})
        return
    width = max((len(f.name) for f in found), default=0)
    for f in found:
        have = "-" if f.newest is None else (str(f.newest) if f.oldest == f.newest else f"{f.oldest}..{f.newest}")
        click.echo(f"{f.name:<{width}} found {have:<6} current {f.current:<3} {f.state}")
    if not steps:
        click.echo("Nothing to migrate: the vault is in the current formats", err=True)
    for step in steps:
        click.echo(("would migrate " if dry_run else "migrated ") + step, err=True)


@cli.group()
def config() -> None:
    """Show, replace or accept the vault's (encrypted) configuration."""


@config.command(name="show")
@click.pass_obj
@handle_errors
def config_show(obj: Context) -> None:
    """Print the configuration as JSON."""
    echo_json(obj.vault().config().model_dump(mode="json"))


@config.command(name="set")
@click.argument("source", default="-", metavar="[FILE|-]")
@click.pass_obj
@handle_errors
def config_set(obj: Context, source: str) -> None:
    """Replace the configuration with a JSON document (see 'config show' for its shape)."""
    obj.vault().set_config(read_input(source, 4 << 20))
    click.echo("configuration updated", err=True)


@config.command(name="accept")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def config_accept(obj: Context, as_json: bool) -> None:
    """Record config.sst as it is (or that there is none) as the vault's config.

    For a config that is missing, older or other than the one the vault recorded (exit 17 from
    the commands it blocks): check it with 'config show' first, or restore the recorded one.
    """
    got = obj.vault().accept_config()
    if as_json:
        echo_json({"accepted": True, "was": got.was, "config": got.config, "generation": got.generation})
        return
    what = f"config.sst (generation {got.generation})" if got.config else "no config file (every default)"
    before = "it was the recorded config already" if got.was is None else f"it was {got.was}"
    click.echo(f"recorded {what} as the vault's config; {before}", err=True)


@cli.command()
@handle_errors
def schema() -> None:
    """Print the JSON schema of a session document."""
    from sessionseal import Session

    echo_json(Session.model_json_schema())


@cli.command()
@click.option("--keep", is_flag=True, help="Keep the demo vault (and its key) instead of removing them.")
@handle_errors
def demo(keep: bool) -> None:
    """A tour in a temporary vault: init, save a session with planted secrets, list, show, delete, info."""
    from ._demo import run_demo

    run_demo(keep=keep)


from ._audit_cmds import audit_group  # noqa: E402 - registered after the group exists
from ._backup_cmds import key_group, snapshot  # noqa: E402
from ._browse_cmds import browse  # noqa: E402
from ._checkpoint_cmds import checkpoint_group, fork  # noqa: E402
from ._device_cmds import device_group  # noqa: E402
from ._doctor_cmds import doctor  # noqa: E402
from ._head_cmds import head_group  # noqa: E402
from ._hook_cmds import hook_group  # noqa: E402
from ._hooks_cmds import hooks_group  # noqa: E402
from ._index_cmds import index_group  # noqa: E402
from ._mcp_cmds import mcp_group  # noqa: E402
from ._meta_cmds import describe, link, rename, set_status, tag  # noqa: E402
from ._passphrase_cmds import passphrase_group  # noqa: E402
from ._remote_cmds import remote_group  # noqa: E402
from ._restore_cmds import restore_remote  # noqa: E402
from ._retention_cmds import archive, cleanup, pin, stats, unarchive, unpin  # noqa: E402
from ._sanitize_cmds import sanitize_command, scan_command  # noqa: E402
from ._sync_cmds import sync_command  # noqa: E402
from ._transcript_cmds import import_transcripts  # noqa: E402
from ._transfer_cmds import export_command, import_command  # noqa: E402
from ._verify_cmds import verify  # noqa: E402

cli.add_command(audit_group)
cli.add_command(browse)
cli.add_command(snapshot)
cli.add_command(key_group)
cli.add_command(device_group)
cli.add_command(checkpoint_group)
cli.add_command(export_command)
cli.add_command(import_command)
cli.add_command(import_transcripts)
cli.add_command(hook_group)
cli.add_command(hooks_group)
cli.add_command(index_group)
cli.add_command(doctor)
cli.add_command(mcp_group)
cli.add_command(passphrase_group)
remote_group.add_command(restore_remote)
cli.add_command(remote_group)
cli.add_command(sync_command)
cli.add_command(head_group)
cli.add_command(verify)
cli.add_command(fork)
for _command in (cleanup, pin, unpin, archive, unarchive, stats, tag, rename, describe, set_status, link):
    cli.add_command(_command)

cli.add_command(sanitize_command)
cli.add_command(scan_command)


def main(argv: list[str] | None = None, *, secret_env: dict[str, str] | None = None) -> None:
    """Entry point of the ``sessionseal`` console script.

    :param secret_env: passphrase variables the process took out of its environment at start
        (``sessionseal._main``), so that no child inherits them; read as if still there.
    """
    if secret_env:
        from ._common import taken_env

        taken_env.update(secret_env)
    cli.main(args=argv, prog_name="sessionseal")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
