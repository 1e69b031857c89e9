"""``sessionseal device list`` against a real S3 server (``rclone serve s3`` on 127.0.0.1; issue 26,
"Keys"; docs/sync.md "Devices"; docs/spec/remote-v1.md "Device record").

The spec: the pairing code is the first 10 bytes of the device's fingerprint
``SHA-256("sessionseal remote v1 device" || remote id || device id || x25519 || ed25519)`` in
base32 without padding, computed here from the record's bytes on the server by the spec alone; a
device is enrolled only when a change log the lister verifies says so (the first device by its
``epoch``/``first`` entry); a record the bucket holds that no verified entry names is
``not-enrolled``, a malformed one ``invalid``; a device that holds no key of the remote sees
every device as ``unverified`` but still shows its own code, made with the remote id the records
claim; an edited log entry refuses the listing (exit 19); audited with counts only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from sessionseal import KeychainProvider, Vault, _remote, _s3, list_devices
from sessionseal.cli import cli
from sessionseal.errors import RemoteError
from tests._infra.s3server import S3Server
from tests._infra.synccapture import (  # noqa: F401  (the module's rclone server's fixtures)
    fixture_module_server,
    fixture_s3_server,
    fixture_server_env,
)
from tests.memkeyring import MemoryKeyring

PREFIX = "team/me"


def _vault(path: Path, server: S3Server) -> Vault:
    v = Vault.init(path, key_provider=KeychainProvider(backend=MemoryKeyring()))
    v.remotes.add("cloud", f"s3://{server.bucket}/{PREFIX}", endpoint=server.endpoint)
    return v


@pytest.fixture
def first(tmp_path: Path, server_env: S3Server) -> Iterator[Vault]:
    v = _vault(tmp_path / "a", server_env)
    v.save({"title": "t", "messages": [{"role": "user", "content": "hi"}]})
    v.remotes.push()
    try:
        yield v
    finally:
        v.close()


def _on_server(server: S3Server, *parts: str) -> Path:
    return server.root / server.bucket / PREFIX / "d" / "/".join(parts)


def _put(server: S3Server, key: str, data: bytes) -> None:
    """Write as the bucket's operator would (through the S3 API: rclone's listing cache then knows it)."""
    store = _s3.open_store(
        _remote.parse_url(f"s3://{server.bucket}"), endpoint=server.endpoint, profile=None, region=None
    )
    store.put(f"{PREFIX}/d/{key}", data)


def _code_by_the_spec(record: bytes) -> str:
    doc = json.loads(record)
    fp = hashlib.sha256(
        b"sessionseal remote v1 device"
        + uuid.UUID(doc["remote"]).bytes
        + uuid.UUID(doc["device"]).bytes
        + base64.b64decode(doc["x25519"])
        + base64.b64decode(doc["ed25519"])
    ).digest()
    return base64.b32encode(fp[:10]).decode().rstrip("=")


def test_the_first_device_is_enrolled_and_shows_the_spec_pairing_code(first: Vault, server_env: S3Server) -> None:
    me = first.remotes.devices.identity("cloud").device_id
    listing = list_devices(first)
    (entry,) = listing.devices
    code = _code_by_the_spec(_on_server(server_env, me.hex, "device").read_bytes())
    assert len(code) == 16
    assert (entry.device, entry.status, entry.this_device, entry.enrolled_by) == (me, "enrolled", True, me)
    assert entry.pairing_code == listing.pairing_code == code
    records = [r for r in first.audit_records() if r.get("action") == "device.list"]
    assert [r["detail"] for r in records] == [{"devices": 1, "enrolled": 1}]


def test_a_new_device_sees_the_others_unverified_and_shows_its_code_for_pairing(
    first: Vault, server_env: S3Server, tmp_path: Path
) -> None:
    with _vault(tmp_path / "b", server_env) as second:
        listing = list_devices(second)
        ident = second.remotes.devices.identity("cloud")
        rid = first.remotes.devices.identity("cloud").remote_id
        assert ident.remote_id is None and rid is not None
        by_device = {e.device: e for e in listing.devices}
        assert by_device[ident.device_id].this_device and by_device[ident.device_id].status == "unverified"
        assert listing.pairing_code == ident.pairing_code(rid)  # under the remote id the records claim
        first_id = first.remotes.devices.identity("cloud").device_id
        assert by_device[first_id].status == "unverified"  # it holds no key: it cannot check a log


def test_records_the_bucket_planted_are_not_enrolled_or_invalid(first: Vault, server_env: S3Server) -> None:
    me = first.remotes.devices.identity("cloud")
    planted, broken = uuid.uuid4(), uuid.uuid4()
    record = json.loads(_on_server(server_env, me.device_id.hex, "device").read_bytes())
    record["device"] = planted.hex
    _put(server_env, f"{planted.hex}/device", json.dumps(record, sort_keys=True, separators=(",", ":")).encode())
    _put(server_env, f"{broken.hex}/device", b'{"format": "sessionseal-remote-device"}')
    by_device = {e.device: e for e in list_devices(first).devices}
    assert by_device[planted].status == "not-enrolled"
    assert by_device[broken].status == "invalid" and by_device[broken].pairing_code is None
    assert by_device[me.device_id].status == "enrolled"


def test_an_edited_log_entry_refuses_the_listing(first: Vault, server_env: S3Server) -> None:
    me = first.remotes.devices.identity("cloud").device_id
    data = bytearray(_on_server(server_env, me.hex, "log", f"{1:016x}").read_bytes())
    data[-1] ^= 1
    _put(server_env, f"{me.hex}/log/{1:016x}", bytes(data))  # entry 1 of 2: a failing entry with one after it
    with pytest.raises(RemoteError, match="fails authentication"):
        list_devices(first)


def test_the_command_prints_json_for_scripts(
    tmp_path: Path, server_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessionseal import _keystore

    kr = MemoryKeyring()
    monkeypatch.setattr(_keystore, "_select_backend", lambda interactive: kr)
    path = tmp_path / "vault"
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str, str]:
        res = runner.invoke(cli, ["--vault", str(path), *args])
        return res.exit_code, res.stdout, res.stderr

    assert run("init")[0] == 0
    url = f"s3://{server_env.bucket}/{PREFIX}"
    assert run("remote", "add", "cloud", url, "--endpoint", server_env.endpoint)[0] == 0
    code, out, err = run("device", "list", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["remote"] == "cloud" and doc["pairing_code"] is None  # an empty remote: push to start it
    (mine,) = doc["devices"]
    assert (mine["this_device"], mine["status"], mine["device"]) == (True, "unverified", doc["device"])
    res = runner.invoke(cli, ["--vault", str(path), "save"], input='{"title": "t", "messages": []}')
    assert res.exit_code == 0, res.stderr
    assert run("sync", "--push")[0] == 0
    code, out, err = run("device", "list")
    assert code == 0, err
    assert "enrolled" in out and "pairing code" in err
    # A log the bucket edited: one line, exit 19.
    data = bytearray(_on_server(server_env, doc["device"], "log", f"{1:016x}").read_bytes())
    data[-1] ^= 1
    _put(server_env, f"{doc['device']}/log/{1:016x}", bytes(data))
    code, out, err = run("device", "list")
    assert code == 19 and err.startswith("sessionseal: error: ") and err.count("\n") == 1, err
    assert out == ""
