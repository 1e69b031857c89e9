"""The public surface is pinned, and each dependency is imported by exactly one module."""

from __future__ import annotations

import ast
import functools
import pickle
from pathlib import Path

import pytest

import sessionseal
from sessionseal import errors

SRC = Path(sessionseal.__file__).parent

#: Third-party modules and the one module allowed to import each (house style rule 3).
OWNERS = {
    "cryptography": {"_crypto.py"},
    "zstandard": {"_compress.py"},
    "filelock": {"_fslock.py"},
    "keyring": {"_keystore.py"},
    "secretstorage": {"_keystore.py"},
    "platformdirs": {"_paths.py"},
    # The vault's components (a package) share it, and the key table's state encoding (canonical
    # JSON of 10,000 marks, decoded at every open); nothing else imports it.
    # The session-store adapters parse each session they load (in half the time of json: the
    # SDK's load is timed against the vault's load_json, issue 24).
    "orjson": {"_vault/", "_state.py", "integrations/"},
    # The index, and the usage rollups (decoded with their shape checked in one pass: issue 23).
    "msgspec": {"_index.py", "_usage.py"},
    "yaml": {"_export.py"},
    # The S3 client, behind the s3 extra (docs/design.md, "The S3 client: boto3").
    "boto3": {"_s3.py"},
    "botocore": {"_s3.py", "_s3lean.py"},
}


def test_all_is_sorted_complete_and_public() -> None:
    names = [n for n in sessionseal.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in sessionseal.__all__:
        assert hasattr(sessionseal, name)
        assert not name.startswith("_") or name == "__version__"


def test_public_classes_show_the_package_name() -> None:
    assert sessionseal.Vault.__module__ == "sessionseal"
    assert sessionseal.AsyncVault.__module__ == "sessionseal"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@functools.cache
def _imports_outside_cli() -> dict[str, set[str]]:
    """Each module's imports, parsed once for all the dependencies below (not once per each)."""
    return {str(p.relative_to(SRC)): _imports(p) for p in SRC.rglob("*.py") if "cli" not in p.parts}


@pytest.mark.parametrize("dependency", sorted(OWNERS))
def test_each_dependency_has_one_importer(dependency: str) -> None:
    importers = {path for path, imported in _imports_outside_cli().items() if dependency in imported}
    owners = OWNERS[dependency]
    # An owner ending in "/" is a package: any module in it may import the dependency.
    assert {i for i in importers if not any(o.endswith("/") and i.startswith(o) for o in owners)} <= owners


def test_cli_uses_only_the_public_api() -> None:
    for p in (SRC / "cli").glob("*.py"):
        tree = ast.parse(p.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sessionseal."):
                # The two sanitizer commands drive the private engine directly (no vault needed).
                allowed = {"errors", "models", "cli"} | ({"_sanitize"} if p.name == "_sanitize_cmds.py" else set())
                assert node.module.split(".")[1] in allowed, (p.name, node.module)


@pytest.mark.parametrize("cls", [getattr(errors, n) for n in errors.__all__])
def test_errors_pickle_and_keep_their_message(cls: type[errors.SessionSealError]) -> None:
    exc = cls("what to do")
    again = pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own object
    assert type(again) is cls
    assert str(again) == "what to do"
    assert isinstance(again, errors.SessionSealError)


def test_reprs_never_show_keys() -> None:
    from sessionseal._keystore import MasterKeys

    key = bytes(range(32))
    assert key.hex() not in repr(MasterKeys({1: key}))
    assert "0, 1, 2" not in repr(MasterKeys({1: key}))


def test_session_keys_behave_as_a_mapping_of_ids() -> None:
    import uuid

    from sessionseal._keytable import SessionKeys

    key = bytes(range(32))
    sid = uuid.uuid4()
    keys = SessionKeys({sid.bytes: key})
    assert keys[sid] == key and keys.get(uuid.uuid4()) is None and list(keys) == [sid]
    assert sid in keys and str(sid) not in keys and sid.bytes not in keys  # ids are UUIDs, nothing else
    assert key.hex() not in repr(keys) and "0, 1, 2" not in repr(keys)
    keys[uuid.UUID(int=1)] = key
    del keys[sid]
    assert keys.pop(sid, None) is None and len(keys) == 1


def test_a_filter_command_does_not_load_the_vault() -> None:
    # 'sessionseal sanitize' runs in pipelines and pre-commit hooks: its start-up must not
    # pay for pydantic, asyncio or the storage layer (the package facade is lazy).
    import subprocess
    import sys

    code = (
        "import sys; from sessionseal.cli import main; import sessionseal.cli._sanitize_cmds; "
        "heavy = [m for m in ('pydantic', 'asyncio', 'sessionseal._vault', 'cryptography', 'keyring') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_names_resolve_lazily_and_unknown_names_raise() -> None:
    assert "Vault" in dir(sessionseal)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = sessionseal.Nope


def test_listing_as_json_loads_neither_pydantic_nor_the_sanitizer(tmp_path: Path) -> None:
    # 'list --json' of 10,000 sessions in a fresh process must stay under half a second
    # (issue 6): pydantic, the models and the rule catalogue would be a third of that.
    import os
    import subprocess
    import sys

    from sessionseal import PassphraseProvider, Vault

    with Vault.init(tmp_path / "v", key_provider=PassphraseProvider("pw", log2_n=14)) as v:
        v.save({"title": "t", "messages": [{"role": "user", "content": "hi"}]})
        v.set_config({"audit": {"rotate_bytes": 1 << 20}})  # a stored config is read on this path too
    code = (
        "import sys\n"
        "from sessionseal.cli import main\n"
        "sys.argv = ['sessionseal', 'list', '--json']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = [m for m in ('pydantic', 'sessionseal.models', 'sessionseal._sanitize', 'sessionseal._config') "
        "if m in sys.modules]\n"
        "print(','.join(heavy), file=sys.stderr)\n"
    )
    env = {**os.environ, "SESSIONSEAL_VAULT": str(tmp_path / "v"), "SESSIONSEAL_PASSPHRASE": "pw"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert '"title": "t"' in proc.stdout
    assert proc.stderr.strip() == ""
