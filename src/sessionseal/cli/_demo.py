"""``sessionseal demo``: the whole path, end to end, in a temporary vault.

The planted secrets are generated at run time in the shapes of real credentials, so
that no credential-shaped literal sits in the source (where secret scanners would
flag it) and the demo can show that none of them reaches any file of the vault.
"""

from __future__ import annotations

import base64
import secrets
import shutil
import string
import tempfile
from pathlib import Path

import click

from sessionseal import Session, Vault
from sessionseal.errors import KeyStoreError

from ._render import render_list, render_session

__all__ = ["run_demo"]


def _rand(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _planted() -> dict[str, str]:
    alnum = string.ascii_letters + string.digits
    key_body = base64.b64encode(secrets.token_bytes(96)).decode()
    return {
        "github token": "ghp_" + _rand(alnum, 36),
        "aws access key id": "AKIA" + _rand(string.ascii_uppercase + "234567", 16),
        "database password": _rand(alnum, 18),
        "private key": "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        + "\n".join(key_body[i : i + 64] for i in range(0, len(key_body), 64))
        + "\n-----END OPENSSH PRIVATE KEY-----",
        "openai key (env)": "sk-proj-" + _rand(alnum, 48),
        "bearer token": _rand(alnum + "-_", 40),
    }


def _session(s: dict[str, str]) -> Session:
    return Session.model_validate(
        {
            "title": "Fix the flaky deploy script",
            "tags": ["demo", "deploy"],
            "workspace": "/home/dev/projects/shop",
            "working_directory": "/home/dev/projects/shop/deploy",
            "environment": {"OPENAI_API_KEY": s["openai key (env)"], "LANG": "C.UTF-8"},
            "messages": [
                {
                    "role": "user",
                    "content": "deploy fails, here is my .env:\n"
                    f"GITHUB_TOKEN={s['github token']}\nAWS_ACCESS_KEY_ID={s['aws access key id']}\nREGION=eu-west-1",
                },
                {
                    "role": "assistant",
                    "model": "demo-model",
                    "content": [
                        {"type": "text", "text": "Let me check the API and the database."},
                        {
                            "type": "tool_call",
                            "id": "call_1",
                            "name": "bash",
                            "arguments": {
                                "command": f"curl -H 'Authorization: Bearer {s['bearer token']}' "
                                "https://api.example.com/health"
                            },
                        },
                    ],
                },
                {
                    "role": "tool",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_call_id": "call_1",
                            "content": "ok\nDATABASE_URL=postgres://shop:"
                            f"{s['database password']}@db.internal:5432/shop\n{s['private key']}\n",
                        }
                    ],
                },
                {"role": "assistant", "content": "Found it: the deploy key was rotated. All fixed."},
            ],
            "outcome": "fixed",
        }
    )


def _step(text: str) -> None:
    click.echo()
    click.secho(f"== {text}", bold=True)


def run_demo(*, keep: bool) -> None:  # noqa: PLR0915 - a linear script of steps
    """Run the tour; remove the vault and its key afterwards unless *keep*."""
    tmp = Path(tempfile.mkdtemp(prefix="sessionseal-demo-"))
    path = tmp / "vault"
    vault: Vault | None = None
    try:
        _step("1. init: a new vault with a random 256-bit master key")
        try:
            vault = Vault.init(path, key_provider="keychain")
            click.echo("key provider: " + vault.info().key_provider_detail)
        except KeyStoreError as exc:
            click.echo(f"no usable OS keychain here ({exc})")
            click.echo("key provider: passphrase (scrypt key file), with a random one-time passphrase for the demo")
            vault = Vault.init(path, key_provider="passphrase", passphrase=secrets.token_urlsafe(24))
        click.echo(f"vault: {path}")

        planted = _planted()
        _step("2. save: a session with planted secrets (sanitized, compressed, encrypted, written atomically)")
        sid = vault.save(_session(planted))
        stored = vault.load(sid)
        click.echo(f"saved {sid}")
        click.echo("redacted: " + ", ".join(f"{k} x{v}" for k, v in sorted(stored.redactions.items())))

        _step("3. list")
        render_list(vault.list())

        _step("4. show (what was stored: placeholders instead of secrets)")
        render_session(stored)

        _step("5. proof: no planted secret, and no title text, appears in any vault file")
        files = [p for p in path.rglob("*") if p.is_file()]
        blob = b"".join(p.read_bytes() for p in files)
        needles = {**planted, "title": stored.title}
        leaked = [name for name, value in needles.items() if value.encode() in blob]
        if leaked:  # pragma: no cover - would be a release-blocking bug
            raise KeyStoreError(f"demo found plaintext in the vault: {', '.join(leaked)}")
        click.echo(f"checked {len(files)} files ({len(blob)} bytes) for {len(needles)} strings: none found")

        _step("6. verify: every file's mode and owner, every frame authenticated, index, audit chain")
        report = vault.verify(read_data=True)
        c = report.counts
        click.echo(
            f"{'vault OK' if report.ok else 'VAULT DAMAGED'}: {c['sessions']} session, {c['frames']} frames "
            f"authenticated, {c['audit_records']} audit records chained, {len(report.problems)} problems"
        )

        _step("7. delete")
        vault.delete(sid)
        click.echo(f"deleted {sid}; sessions left: {len(vault.list())}")

        _step("8. info")
        info = vault.info()
        for key in ("vault_path", "vault_id", "key_provider_detail", "session_count", "format_version"):
            click.echo(f"{key:<20} {getattr(info, key)}")
    finally:
        if vault is not None and not keep:
            try:
                vault.destroy()
            finally:
                vault.close()
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
            click.echo("\nremoved the demo vault and its key")
        else:
            click.echo(f"\nkept the demo vault at {path}")
