"""Bundles from hostile senders (issue 18, item 9; docs/spec/bundle-v1.md, "Limits").

A bundle is authenticated under its own passphrase, so anyone who sends one controls every
byte of it: the scrypt cost it asks for, and what its zstd frames declare and expand to.  A
98 KB bundle of three frames took 5.3 GB of memory; one asking for scrypt 2^22 costs 4 GiB
before its passphrase can even be checked.  Each bomb here is sealed correctly, so it passes
authentication and reaches the limits."""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import zstandard
from click.testing import CliRunner

from sessionseal import KeychainProvider, Vault, _container, _export, errors
from sessionseal._container import FrameType, Kind
from sessionseal._crypto import scrypt_key
from sessionseal.cli import cli
from tests.memkeyring import MemoryKeyring

SRC = str(Path(__file__).resolve().parents[2] / "src")
PASS = b"bundle pass"
GIB = 1 << 30
#: The address space the importing process gets: one bomb frame would not fit.
AS_LIMIT = GIB


def _rle_frame(size: int, *, declare: bool = True, byte: int = 0x20) -> bytes:
    """A zstd frame (RFC 8878) of *size* copies of *byte*, made of RLE blocks of 128 KiB: four
    bytes per block, so a GiB takes 32 KiB.  It declares its content size unless told not to."""
    block = 128 << 10
    # Magic, then the frame header descriptor: a 4-byte content size field, or none; then a
    # window of 2^17 (exponent 7).
    head = b"\x28\xb5\x2f\xfd" + (bytes([0x80, 0x38]) + struct.pack("<I", size) if declare else bytes([0x00, 0x38]))
    blocks = bytearray()
    left = size
    while left:
        n = min(left, block)
        left -= n
        blocks += ((n << 3) | (1 << 1) | (0 if left else 1)).to_bytes(3, "little") + bytes([byte])
    return head + bytes(blocks)


def _seal(payloads: list[bytes], *, log2_n: int = 14, manifest: bytes = b'{"format":"sessionseal bundle"}') -> bytes:
    """A bundle as docs/spec/bundle-v1.md lays it out, whose BODY payloads (encoding byte
    included) are given as they are: a hostile sender's."""
    salt = os.urandom(16)
    kek = scrypt_key(PASS, salt, log2_n=log2_n, r=8, p=1)
    frames = [(FrameType.META, b"\x00" + manifest)] + [(FrameType.BODY, p) for p in payloads]
    body = _container.seal(
        kind=Kind.BUNDLE,
        vault_id=uuid.uuid4(),
        object_id=uuid.UUID(int=0),
        generation=len(payloads),
        kek=kek,
        kek_epoch=0,
        frames=frames,
    )
    return _export._PREFIX.pack(_export.BUNDLE_MAGIC, 1, log2_n, 8, 1, salt) + body


def _doc(title: str) -> bytes:
    return json.dumps(
        {"id": str(uuid.uuid4()), "title": title, "messages": [{"role": "user", "content": title}]}
    ).encode()


def _never() -> bytes:
    raise AssertionError("the passphrase was asked for: the bundle was not refused before any work")


def test_the_rle_frames_are_what_they_declare() -> None:
    for declare in (True, False):
        frame = _rle_frame(300_000, declare=declare)
        assert zstandard.ZstdDecompressor().stream_reader(frame).read(400_000) == b" " * 300_000
    assert len(_rle_frame(GIB)) < 33 << 10
    assert zstandard.frame_content_size(_rle_frame(GIB)) == GIB


def test_the_bundle_limits_are_the_vaults() -> None:
    assert _export.MAX_DOCUMENT_BYTES == Vault.MAX_SESSION_BYTES
    assert _export.KDF_CAP_LOG2_N == _export.DEFAULT_LOG2_N  # what sessionseal writes, no more


def _import_in_a_small_address_space(tmp_path: Path, bundle: bytes) -> subprocess.CompletedProcess[str]:
    vault_path = tmp_path / "vault"
    Vault.init(vault_path, key_provider="passphrase", passphrase="vault pass").close()
    (tmp_path / "bomb.bundle").write_bytes(bundle)
    pass_file = tmp_path / "bundle-pass"
    pass_file.write_bytes(PASS)
    pass_file.chmod(0o600)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))

    env = {**os.environ, "PYTHONPATH": SRC, "SESSIONSEAL_PASSPHRASE": "vault pass"}
    env.pop("SESSIONSEAL_BUNDLE_PASSPHRASE", None)
    args = ["--vault", str(vault_path), "import", str(tmp_path / "bomb.bundle"), "--bundle-passphrase-file"]
    return subprocess.run(
        [sys.executable, "-m", "sessionseal", *args, str(pass_file)],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=limit,  # the child is a fresh interpreter: nothing else runs in it
        timeout=300,
        check=False,
    )


def test_three_frames_of_a_gib_each_are_refused_before_decompressing(tmp_path: Path) -> None:
    bomb = _seal([b"\x01" + _rle_frame(GIB - 64) for _ in range(3)])
    assert len(bomb) < 100_000  # the 98 KB
    r = _import_in_a_small_address_space(tmp_path, bomb)
    assert (r.returncode, r.stdout) == (8, ""), r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "session 1 of the bundle" in r.stderr and "nothing was imported" in r.stderr


def test_frames_under_the_session_limit_are_refused_by_their_sum(tmp_path: Path) -> None:
    each = 500 << 20  # under the 512 MiB a session may hold; nine of them are over 4 GiB
    bomb = _seal([b"\x01" + _rle_frame(each) for _ in range(9)])
    r = _import_in_a_small_address_space(tmp_path, bomb)
    assert (r.returncode, r.stdout) == (8, ""), r.stderr
    assert "Traceback" not in r.stderr and "together" in r.stderr


def test_a_frame_without_a_declared_size_is_bounded_while_it_is_read(vault: Vault) -> None:
    first = _doc("kept in order")
    bundle = _seal([b"\x00" + first, b"\x01" + _rle_frame(3 << 20, declare=False)])
    opened = _export.open_bundle(bundle, PASS, max_document=2 << 20)  # opens: its size is not declared
    docs = opened.iter_documents()
    assert next(docs) == first  # one at a time: the first is read before the second is touched
    with pytest.raises(errors.InvalidInput, match="session 2 of the bundle"):
        next(docs)
    # Through the vault (512 MiB a session): the 3 MiB frame is within bounds but is not JSON,
    # and the first session is not stored either: every document is checked before any is.
    with pytest.raises(errors.InvalidInput, match="document 2 of the bundle is not JSON; nothing was imported"):
        vault.import_sessions(bundle, passphrase=PASS)
    assert vault.list() == []


def test_an_undeclared_frame_counts_toward_the_total() -> None:
    bundle = _seal([b"\x01" + _rle_frame(1 << 20), b"\x01" + _rle_frame(2 << 20, declare=False)])
    opened = _export.open_bundle(bundle, PASS, max_total=(2 << 20) + 5)
    docs = opened.iter_documents()
    assert len(next(docs)) == 1 << 20
    with pytest.raises(errors.InvalidInput, match="together"):
        next(docs)


@pytest.fixture(scope="module")
def costly_bundle() -> bytes:
    """A real bundle of two sessions at scrypt 2^18: one step above what sessionseal writes
    (256 MiB and well under a second: cheap enough for a test, refused all the same)."""
    return _export.seal_bundle([_doc("one"), _doc("two")], {"sessions": []}, PASS, log2_n=_export.KDF_CAP_LOG2_N + 1)


def test_a_costly_bundle_is_refused_without_running_scrypt_unless_allowed(vault: Vault, costly_bundle: bytes) -> None:
    with pytest.raises(errors.InvalidInput, match=r"N=2\^18 \(256 MiB.*--allow-expensive-kdf"):
        vault.import_sessions(costly_bundle, passphrase=_never)  # refused before the passphrase is asked for
    with pytest.raises(errors.InvalidInput, match="--allow-expensive-kdf"):
        _export.open_bundle(costly_bundle, PASS)
    assert vault.list() == []
    result = vault.import_sessions(costly_bundle, passphrase=lambda: PASS, allow_expensive_kdf=True)
    assert sorted(s.title for s in vault.list()) == ["one", "two"] and len(result.imported) == 2


@pytest.mark.parametrize("allow", [False, True])
def test_a_cost_beyond_the_format_is_refused_even_when_allowed(vault: Vault, allow: bool) -> None:
    bundle = bytearray(_seal([b"\x00" + _doc("x")]))
    bundle[9] = 24  # scrypt 2^24: 16 GiB
    with pytest.raises(errors.IntegrityError, match=r"N=2\^24"):
        vault.import_sessions(bytes(bundle), passphrase=_never, allow_expensive_kdf=allow)
    assert vault.list() == []


def test_cli_refuses_a_costly_bundle_with_exit_8_and_takes_it_with_the_flag(
    memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, costly_bundle: bytes
) -> None:
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE", raising=False)
    monkeypatch.setenv("SESSIONSEAL_BUNDLE_PASSPHRASE", PASS.decode())
    path = tmp_path / "in.bundle"
    path.write_bytes(costly_bundle)
    runner = CliRunner()
    v = str(tmp_path / "v")
    assert runner.invoke(cli, ["--vault", v, "init"]).exit_code == 0
    r = runner.invoke(cli, ["--vault", v, "import", str(path)])
    assert r.exit_code == 8 and "--allow-expensive-kdf" in r.output and "Traceback" not in r.output
    r = runner.invoke(cli, ["--vault", v, "import", str(path), "--allow-expensive-kdf", "--json"])
    assert r.exit_code == 0 and len(json.loads(r.output)["imported"]) == 2


def test_a_normal_bundle_of_several_sessions_imports_one_at_a_time(vault: Vault, tmp_path: Path) -> None:
    other = Vault.init(tmp_path / "other", key_provider=KeychainProvider(backend=MemoryKeyring()))
    ids = [
        vault.save({"title": f"s{i}", "messages": [{"role": "user", "content": "x" * 10_000 * i}]}) for i in range(5)
    ]
    data = vault.export(ids, passphrase="p", log2_n=14).data
    assert data is not None
    opened = _export.open_bundle(data, b"p")
    assert len(opened) == 5 and opened.sizes == tuple(len(vault.load_json(s)) for s in ids)
    result = other.import_sessions(data, passphrase="p")
    assert result.imported == ids
    for sid in ids:
        assert json.loads(other.load_json(sid)) == json.loads(vault.load_json(sid))
