#!/usr/bin/env python3
"""Build a vault in today's formats, to be committed under ``tests/fixtures/`` and read forever.

    python scripts/make_fixture_vault.py tests/fixtures/vault-v1

Run it once per set of formats, into a *new* directory: a fixture is never regenerated.
``tests/unit/test_fixtures.py`` opens every committed fixture and checks what is listed in
its ``expected.json``, so a later change of a format must ship a reader or a migration for
the old one.

The vault uses the passphrase provider (``fixture``), so that a test can open it anywhere,
and a small scrypt cost.  It holds what every format can hold: sessions saved whole and grown
by appends (messages, tool calls and results, state, edits), a redacted secret, tags, a pin,
an archive, a checkpoint, a fork, a deleted session (a rotated master key), a config with a
custom rule, and the audit log of all of it.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sessionseal import PassphraseProvider, Vault, __version__

PASSPHRASE = "fixture"  # noqa: S105  (a test fixture, committed on purpose)
SECRET = "ghp_" + "F1xture" * 5 + "Ab"  # a GitHub token shape; redacted at save


def main() -> None:
    out = Path(sys.argv[1])
    if out.exists():
        raise SystemExit(f"{out} exists: fixtures are never regenerated; pick a new directory")
    vault_dir = out / "vault"
    out.mkdir(parents=True)
    with Vault.init(vault_dir, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
        v.set_config({"sanitizer": {"literals": ["corp-internal-host-7"]}})
        whole = v.save(
            {
                "title": "refactor the parser",
                "tags": ["work", "parser"],
                "workspace": "/home/dev/parser",
                "messages": [
                    {"role": "user", "content": f"use token {SECRET} on corp-internal-host-7"},
                    {"role": "assistant", "content": "done", "model": "model-a", "cost_usd": 0.25},
                ],
            }
        )
        v.append(
            whole,
            [
                {"role": "user", "content": "run the tests"},
                {"type": "tool_call", "name": "bash", "arguments": {"cmd": "pytest -q"}, "id": "c1"},
                {"type": "tool_result", "tool_call_id": "c1", "content": "3 passed"},
                {"type": "state", "working_directory": "/home/dev/parser/src", "environment": {"LANG": "C"}},
            ],
        )
        v.checkpoint(whole, "tests green")
        v.append(whole, [{"role": "assistant", "content": "all green", "model": "model-b"}])
        v.tag(whole, add=["green"])
        v.pin(whole)
        fork = v.fork(whole, checkpoint="tests green", title="try another approach")
        old = v.save({"title": "old notes", "status": "completed", "messages": [{"role": "user", "content": "x"}]})
        v.archive(old)
        gone = v.save({"title": "deleted", "messages": []})
        v.delete(gone)
        # What this version reads back is what every later version must read.
        expected = {
            "made_by": __version__,
            "passphrase": PASSPHRASE,
            "secret_planted": SECRET,
            "deleted": str(gone),
            "sessions": {
                str(s.id): {
                    "title": s.title,
                    "status": s.status.value,
                    "tags": s.tags,
                    "pinned": s.pinned,
                    "message_count": s.message_count,
                    "generation": s.generation,
                    "checkpoints": [c.name for c in v.checkpoints(s.id)],
                    "document": json.loads(v.load_json(s.id)),
                }
                for s in v.list(archived=None)
            },
        }
        assert set(expected["sessions"]) == {str(whole), str(fork), str(old)}
    shutil.rmtree(vault_dir / "locks")  # run-time state, made again on open
    (out / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
