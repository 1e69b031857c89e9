"""``sessionseal device enroll`` and ``device revoke`` against a real S3 server (``rclone serve s3``
on 127.0.0.1; issue 26, "Keys"; docs/sync.md "Devices"; docs/spec/remote-v1.md "Enrolment
objects", "Log entries").

The spec: the enrolled device recomputes the new device's pairing code from the record's bytes
and refuses a code that differs, writing nothing (a bucket that swapped the record's keys makes
the codes differ); accepted, it writes ``P/d/<enroller>/enroll/<device>`` (an epoch key object
with one stanza for the new device) and a ``device.enroll`` entry naming the device, its keys
and that object's hash; the new device keeps the key only once the enroller's log holds that
entry; then its pushes verify for the first device.  A revocation makes a new epoch whose key
object has no stanza for the revoked device, and what is pushed after it is sealed under that
epoch, which the revoked device cannot open.  Audited with counts only.
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

from sessionseal import KeychainProvider, Vault, _device_enroll, _remote, _remotekeys, _remotelog, _s3, list_devices
from sessionseal.cli import cli
from sessionseal.errors import InvalidInput, RemoteError
from tests._infra import syncvaults
from tests._infra.s3server import S3Server, both_servers
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


@pytest.fixture
def second(tmp_path: Path, server_env: S3Server, first: Vault) -> Iterator[Vault]:
    v = _vault(tmp_path / "b", server_env)
    try:
        yield v
    finally:
        v.close()


def _files(server: S3Server) -> dict[str, bytes]:
    return {k[len(PREFIX) + 1 :]: server.read(k) for k in server.objects(PREFIX + "/")}


def _store(server: S3Server) -> _s3.S3Store:
    return _s3.open_store(
        _remote.parse_url(f"s3://{server.bucket}"), endpoint=server.endpoint, profile=None, region=None
    )


def _device(v: Vault) -> uuid.UUID:
    return v.remotes.devices.identity("cloud").device_id


def test_a_wrong_code_is_refused_and_nothing_is_written(first: Vault, second: Vault, server_env: S3Server) -> None:
    step = _device_enroll.request(second)
    assert step.pairing_code is not None and len(step.pairing_code) == 16
    before = _files(server_env)
    wrong = ("A" if step.pairing_code[0] != "A" else "B") + step.pairing_code[1:]
    with pytest.raises(InvalidInput, match="does not match"):
        _device_enroll.accept(first, None, _device(second).hex, wrong)
    assert _files(server_env) == before
    with pytest.raises(InvalidInput, match="no enrolled device has accepted"):
        _device_enroll.finish(second)
    assert second.remotes.devices.epoch_keys("cloud") == {}


@both_servers
def test_a_record_whose_keys_the_bucket_swapped_is_refused(first: Vault, second: Vault, server_env: S3Server) -> None:
    step = _device_enroll.request(second)
    me = _device(second)
    name = f"{PREFIX}/d/{me.hex}/device"
    record = json.loads(_store(server_env).get(name))
    record["x25519"] = base64.b64encode(_remotekeys.DeviceKeys.generate().x25519_public).decode()
    server_env.write(name, json.dumps(record, sort_keys=True, separators=(",", ":")).encode())
    before = _files(server_env)
    with pytest.raises(InvalidInput, match="does not match"):
        _device_enroll.accept(first, None, me.hex, step.pairing_code or "")
    assert _files(server_env) == before


@both_servers
def test_an_enrolled_device_pushes_and_its_log_verifies_for_the_first(
    first: Vault, second: Vault, server_env: S3Server
) -> None:
    step = _device_enroll.request(second)
    grouped = "-".join((step.pairing_code or "")[i : i + 4].lower() for i in range(0, 16, 4))  # as typed
    accepted = _device_enroll.accept(first, None, _device(second).hex, grouped)
    files = _files(server_env)
    offer = files[f"d/{_device(first).hex}/enroll/{_device(second).hex}"]
    keys = _remotekeys.parse_keys_object(offer)
    assert keys.maker == _device(first) and keys.for_device(_device(second)) is not None
    assert len(keys.stanzas) == 1 and keys.epoch == accepted.epoch == 1
    done = _device_enroll.finish(second)
    assert done.other == _device(first) and done.epoch == 1
    assert second.remotes.devices.epoch_keys("cloud") == first.remotes.devices.epoch_keys("cloud")
    # The enroller's entry names the device, its keys and the object's hash (the spec, by hand).
    held = first.remotes.devices.epoch_keys("cloud")
    rid = first.remotes.devices.identity("cloud").remote_id
    assert rid is not None
    logs = {int(k.rsplit("/", 1)[1], 16): v for k, v in files.items() if k.startswith(f"d/{_device(first).hex}/log/")}
    entry = _remotelog.read_log(logs, held, rid, _device(first)).entries[-1].entry
    ident = second.remotes.devices.identity("cloud")
    assert entry["kind"] == "device.enroll" and entry["device"] == _device(second).hex
    assert entry["keys"] == hashlib.sha256(offer).hexdigest()
    assert base64.b64decode(entry["x25519"]) == ident.x25519_public
    assert base64.b64decode(entry["ed25519"]) == ident.ed25519_public
    second.save({"title": "from b", "messages": [{"role": "user", "content": "hello"}]})
    assert second.remotes.push().put == 1
    status = {e.device: e.status for e in list_devices(first).devices}
    assert status == {_device(first): "enrolled", _device(second): "enrolled"}
    pulled = first.remotes.pull()  # the enrolled device's session is applied on the enroller
    assert {d.device for d in pulled.check.devices} == {_device(first), _device(second)}
    assert pulled.put == 1 and "from b" in {s.title for s in first.list()}
    assert [r["detail"] for r in second.audit_records() if r.get("action") == "device.enroll"] == [
        {"requested": 1},
        {"finished": 1, "epoch": 1, "epochs": 1},
    ]
    assert [r["detail"] for r in first.audit_records() if r.get("action") == "device.enroll"] == [
        {"accepted": 1, "epoch": 1}
    ]


def test_a_stanza_for_other_keys_is_not_taken(first: Vault, second: Vault, server_env: S3Server) -> None:
    """The bucket plants an enrolment object wrapped for this device's id but under its own key
    and log: nothing in an enrolled device's log names it, so it is refused and nothing kept."""
    _device_enroll.request(second)
    forger = uuid.uuid4()
    rid = first.remotes.devices.identity("cloud").remote_id
    assert rid is not None
    ident = second.remotes.devices.identity("cloud")
    stanza = _remotekeys.wrap_for_device(bytes(32), rid, 1, ident.device_id, ident.x25519_public)
    _store(server_env).put(
        f"{PREFIX}/d/{forger.hex}/enroll/{ident.device_id.hex}", _remotekeys.keys_object(rid, 1, forger, [stanza])
    )
    with pytest.raises(RemoteError, match="no enrolment"):
        _device_enroll.finish(second)
    assert second.remotes.devices.epoch_keys("cloud") == {}


def test_a_revoked_device_cannot_open_what_is_pushed_after(
    first: Vault, second: Vault, tmp_path: Path, server_env: S3Server
) -> None:
    syncvaults.enrol(first, second)
    gone = _device(second)
    step = _device_enroll.revoke(first, None, gone.hex)
    assert (step.epoch, step.devices) == (2, 1)
    first.save({"title": "after", "messages": [{"role": "user", "content": "secret plans"}]})
    result = first.remotes.push()
    assert result.epoch == 2 and result.put == 1
    files = _files(server_env)
    me = _device(first)
    keys = _remotekeys.parse_keys_object(files[f"d/{me.hex}/keys/{2:08x}"])
    assert keys.for_device(gone) is None and keys.for_device(me) is not None
    rid = first.remotes.devices.identity("cloud").remote_id
    assert rid is not None
    last = max(int(k.rsplit("/", 1)[1], 16) for k in files if k.startswith(f"d/{me.hex}/log/"))
    with pytest.raises(RemoteError, match="epoch 2"):
        _remotelog.open_entry(
            files[f"d/{me.hex}/log/{last:016x}"], second.remotes.devices.epoch_keys("cloud"), rid, me, last
        )
    status = {e.device: e.status for e in list_devices(first).devices}
    assert status[gone] == "revoked"
    assert [r["detail"] for r in first.audit_records() if r.get("action") == "device.revoke"] == [
        {"revoked": 1, "epoch": 2, "devices": 1}
    ]
    with pytest.raises(InvalidInput, match="not enrolled"):
        _device_enroll.revoke(first, None, gone.hex)


def test_a_device_enrolled_after_a_revocation_gets_every_epoch_and_reads_every_log(
    first: Vault, second: Vault, tmp_path: Path, server_env: S3Server
) -> None:
    syncvaults.enrol(first, second)
    _device_enroll.revoke(first, None, _device(second).hex)
    with _vault(tmp_path / "c", server_env) as third:
        syncvaults.enrol(first, third)
        assert third.remotes.devices.epoch_keys("cloud") == first.remotes.devices.epoch_keys("cloud")
        assert set(third.remotes.devices.epoch_keys("cloud")) == {1, 2}
        offer = _files(server_env)[f"d/{_device(first).hex}/enroll/{_device(third).hex}"]
        one = _remotekeys.parse_keys_object(_remotekeys.keys_object(uuid.uuid4(), 1, uuid.uuid4(), []))
        assert one.stanzas == ()  # an empty key object is its 43-byte header
        assert len(offer) == 2 * (43 + 1 + _remotekeys.DEVICE_STANZA)  # epochs 1 and 2, one stanza each
        third.save({"title": "c", "messages": [{"role": "user", "content": "from c"}]})
        assert third.remotes.push().epoch == 2
        status = {e.device: e.status for e in list_devices(third).devices}
        assert status == {_device(first): "enrolled", _device(second): "revoked", _device(third): "enrolled"}
        assert {e.device: e.status for e in list_devices(first).devices} == status


def test_the_commands_print_json_and_refuse_in_one_line(
    tmp_path: Path, server_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessionseal import _keystore

    kr = MemoryKeyring()
    monkeypatch.setattr(_keystore, "_select_backend", lambda interactive: kr)
    runner = CliRunner()
    url = f"s3://{server_env.bucket}/{PREFIX}"

    def run(path: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
        res = runner.invoke(cli, ["--vault", str(path), *args], input=stdin)
        return res.exit_code, res.stdout, res.stderr

    a, b = tmp_path / "a", tmp_path / "b"
    for path in (a, b):
        assert run(path, "init")[0] == 0
        assert run(path, "remote", "add", "cloud", url, "--endpoint", server_env.endpoint)[0] == 0
    assert run(a, "save", stdin='{"title": "t", "messages": []}')[0] == 0
    assert run(a, "sync", "--push")[0] == 0
    code, out, err = run(b, "device", "enroll", "--json")
    assert code == 0, err
    req = json.loads(out)
    assert len(req["pairing_code"]) == 16 and req["enrolled"] is False
    code, out, err = run(b, "device", "enroll")
    assert code == 0 and "--accept " + req["device"] in err
    code, out, err = run(a, "device", "enroll", "--accept", req["device"], "--code", "AAAAAAAAAAAAAAAA")
    assert (code, out) == (8, "") and err.startswith("sessionseal: error: ") and err.count("\n") == 1, err
    code, out, err = run(a, "device", "enroll", "--accept", req["device"], "--code", "not a code")
    assert code == 8 and "not a code" not in err
    code, out, err = run(a, "device", "enroll", "--accept", req["device"], "--code", req["pairing_code"], "--json")
    assert code == 0, err
    assert json.loads(out)["other"] == req["device"]
    code, out, err = run(b, "device", "enroll", "--finish", "--json")
    assert code == 0, err
    assert json.loads(out)["enrolled"] is True
    code, out, err = run(a, "device", "revoke", "cloud", req["device"], "--json")
    assert code == 0, err
    assert (json.loads(out)["epoch"], json.loads(out)["devices"]) == (2, 1)
    code, out, err = run(a, "device", "revoke", "cloud", "zz")
    assert code == 8 and err.count("\n") == 1
