"""The test infrastructure itself: private Secret Service fixtures and the second OS user."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests._infra.keychain import (
    PROMPTER_NAME,
    REQUIRE_KEYCHAIN_ENV,
    SECRETS_NAME,
    SecretService,
    require_or_skip,
    skip_unless_keychain_tools,
    start_secret_service,
    use_bus,
)
from tests._infra.users import MU_VENV, OSUser, OSUsers, UserDirs

STOCK_BACKEND = "keyring.backends.SecretService.Keyring"


def run_py(code: str, env: dict[str, str], timeout: float = 30) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return proc, time.monotonic() - start


def stock_env(ss: SecretService) -> dict[str, str]:
    return ss.env_for(PYTHON_KEYRING_BACKEND=STOCK_BACKEND)


def live_processes(uid: int, comm: str) -> list[int]:
    """PIDs of ``uid`` named ``comm`` that are not zombies (an orphan's zombie is init's business)."""
    found = []
    for entry in os.scandir("/proc"):
        try:
            owner = entry.stat().st_uid
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        name, _, rest = stat.partition("(")[2].rpartition(")")
        if entry.name.isdigit() and owner == uid and name == comm and rest.split()[0] != "Z":
            found.append(int(entry.name))
    return found


def unique_service() -> str:
    return f"sessionseal-infra-{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------------------------
# secret_service


def test_secret_service_round_trip_across_processes(secret_service: SecretService) -> None:
    env = stock_env(secret_service)
    service = unique_service()
    setter, _ = run_py(
        "import keyring, sys\n"
        f"keyring.set_password({service!r}, 'master', 'c2VjcmV0IGtleQ==')\n"
        "print(type(keyring.get_keyring()).__module__)",
        env,
    )
    assert setter.returncode == 0, setter.stderr
    assert setter.stdout.strip() == "keyring.backends.SecretService"

    getter, _ = run_py(f"import keyring; print(keyring.get_password({service!r}, 'master'))", env)
    assert getter.returncode == 0, getter.stderr
    assert getter.stdout.strip() == "c2VjcmV0IGtleQ=="

    deleter, _ = run_py(
        f"import keyring; keyring.delete_password({service!r}, 'master')\n"
        f"print(keyring.get_password({service!r}, 'master'))",
        env,
    )
    assert deleter.returncode == 0, deleter.stderr
    assert deleter.stdout.strip() == "None"


def test_secret_service_autodetected_without_backend_override(secret_service: SecretService) -> None:
    # With other viable backends installed (keyrings.alt, in the test extra) keyring's choice is its
    # chainer, which writes to its first backend: the Secret Service must be that one.
    proc, _ = run_py(
        "import keyring; b = keyring.get_keyring(); b = getattr(b, 'backends', [b])[0]; print(type(b).__module__)",
        secret_service.env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "keyring.backends.SecretService"


def test_secret_service_in_process_with_use_bus(secret_service: SecretService, monkeypatch: pytest.MonkeyPatch) -> None:
    keyring_ss = pytest.importorskip("keyring.backends.SecretService")
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    backend = keyring_ss.Keyring()
    service = unique_service()
    with use_bus(secret_service.bus_address):
        assert os.environ["DBUS_SESSION_BUS_ADDRESS"] == secret_service.bus_address
        backend.set_password(service, "u", "in-process")
        assert backend.get_password(service, "u") == "in-process"
    assert "DBUS_SESSION_BUS_ADDRESS" not in os.environ

    # A separate process sees what this one stored: it is a real keychain, not a mock.
    proc, _ = run_py(f"import keyring; print(keyring.get_password({service!r}, 'u'))", stock_env(secret_service))
    assert proc.stdout.strip() == "in-process", proc.stderr
    with secret_service.use():
        backend.delete_password(service, "u")


def test_secret_service_seen_by_libsecret_client(secret_service: SecretService) -> None:
    secret_tool = shutil.which("secret-tool")
    if secret_tool is None:
        require_or_skip("secret-tool is not installed (Debian: apt-get install libsecret-tools)")
    service = unique_service()
    env = stock_env(secret_service)
    proc, _ = run_py(f"import keyring; keyring.set_password({service!r}, 'u', 'from-python')", env)
    assert proc.returncode == 0, proc.stderr
    lookup = subprocess.run(
        [secret_tool, "lookup", "service", service, "username", "u"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (lookup.returncode, lookup.stdout) == (0, "from-python"), lookup.stderr


def test_secret_service_env_is_clean_and_private(secret_service: SecretService) -> None:
    env = secret_service.env
    assert env["DBUS_SESSION_BUS_ADDRESS"] == secret_service.bus_address
    assert "DISPLAY" not in env
    assert secret_service.home.is_dir()
    assert env["HOME"] == str(secret_service.home)
    env["MUTATED"] = "1"
    assert "MUTATED" not in secret_service.env  # each access is a copy
    assert secret_service.env_for(home="/x", A="b")["HOME"] == "/x"
    assert not secret_service.is_locked()


# --------------------------------------------------------------------------------------------
# locked and prompting services


def test_locked_secret_service_makes_stock_keyring_raise_fast(locked_secret_service: SecretService) -> None:
    assert locked_secret_service.is_locked()
    proc, _ = run_py(
        "import keyring; keyring.get_password('sessionseal-infra', 'master')",
        stock_env(locked_secret_service),
        timeout=20,
    )
    assert proc.returncode != 0
    # Raised, not waited: a prompt would have held the call until run_py's timeout.
    assert "keyring.errors.KeyringLocked" in proc.stderr, proc.stderr


@pytest.mark.slow
def test_prompting_secret_service_hangs_stock_keyring(prompting_secret_service: SecretService) -> None:
    """The hazard the library must avoid: with a reachable display, stock keyring waits forever."""
    ss = prompting_secret_service
    env = stock_env(ss)
    assert "DISPLAY" not in env  # the client has none; the bus (and so the prompter) does
    with subprocess.Popen(
        [
            "timeout",
            "8",
            sys.executable,
            "-c",
            "import keyring; keyring.get_password('sessionseal-infra', 'm')",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.communicate(timeout=6)
        assert ss.name_has_owner(PROMPTER_NAME), "hung, but not on a gcr prompt\n" + ss.logs()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 124, err  # killed by timeout(1), never answered


# --------------------------------------------------------------------------------------------
# lifecycle and skip policy


def test_start_secret_service_leaves_nothing_behind() -> None:
    skip_unless_keychain_tools()
    with start_secret_service(locked=True) as ss:
        pids = (ss.bus_pid, ss.daemon_pid)
        assert all(os.path.exists(f"/proc/{pid}") for pid in pids)
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}"), f"pid {pid} survived teardown"
    assert not ss.state_dir.parent.exists()


def test_a_daemon_that_died_comes_back_unlocked_with_its_items_at_the_next_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # gnome-keyring has aborted on clients that vanish mid-call (upstream issues 190, 196 and
    # 199); one that died must not fail every later test of a session-wide fixture. SIGKILL is
    # the harshest way to die: nothing is flushed that was not written already.
    skip_unless_keychain_tools()
    monkeypatch.setenv("SESSIONSEAL_ARTEFACTS", str(tmp_path))
    service = unique_service()
    put = f"import keyring; keyring.set_password({service!r}, 'u', 's3cret-value')"
    get = f"import keyring; print(keyring.get_password({service!r}, 'u'))"
    with start_secret_service() as ss:
        proc, _ = run_py(put, stock_env(ss))
        assert proc.returncode == 0, proc.stderr
        os.kill(ss.daemon_pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while ss.name_has_owner(SECRETS_NAME) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not ss.name_has_owner(SECRETS_NAME), "the killed daemon still owns the name"
        proc, _ = run_py(get, stock_env(ss))
        assert (proc.returncode, proc.stdout.strip()) == (0, "s3cret-value"), proc.stderr
        assert not ss.is_locked()
    report = (tmp_path / "keychain-respawns.txt").read_text()
    assert f"(pid {ss.daemon_pid}) exited with status -9" in report
    assert "s3cret-value" not in report and ss.password not in report


def test_a_locked_daemon_that_died_stays_gone() -> None:
    # A locked service must stay locked: activation would start an unlocked daemon, so a locked
    # one has no activation file, and keyring finds no service (KeyUnavailable in the CLI).
    skip_unless_keychain_tools()
    get = "import keyring; print(keyring.get_password('sessionseal-infra', 'u'))"
    with start_secret_service(locked=True) as ss:
        os.kill(ss.daemon_pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while ss.name_has_owner(SECRETS_NAME) and time.monotonic() < deadline:
            time.sleep(0.01)
        proc, _ = run_py(get, stock_env(ss))
        assert proc.returncode != 0
        assert "neither running nor activatable through D-Bus" in proc.stderr
        assert not ss.name_has_owner(SECRETS_NAME)


def test_require_or_skip_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_KEYCHAIN_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_or_skip("no daemon")
    monkeypatch.setenv(REQUIRE_KEYCHAIN_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="forbids skipping"):
        require_or_skip("no daemon")


# --------------------------------------------------------------------------------------------
# second OS user


def test_second_user_runs_as_that_user(second_user: OSUser) -> None:
    proc = second_user.run("import os, sys; print(os.getuid(), os.environ['HOME'], sys.prefix, os.getcwd())")
    assert proc.returncode == 0, proc.stderr
    uid, home, prefix, cwd = proc.stdout.split()
    assert int(uid) == second_user.uid != 0
    assert home == cwd == str(second_user.home)
    assert prefix == str(MU_VENV)


def test_second_user_env_is_clean_and_overridable(second_user: OSUser, make_user_dir: UserDirs) -> None:
    home = make_user_dir(second_user)
    proc = second_user.run(
        ["sh", "-c", 'echo "$HOME|$FOO|${DBUS_SESSION_BUS_ADDRESS-unset}|${VIRTUAL_ENV-unset}"'],
        env={"HOME": str(home), "FOO": "bar"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{home}|bar|unset|unset"


def test_second_user_timeout_kills_the_process(second_user: OSUser) -> None:
    start = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        second_user.run(["sleep", "30"], timeout=1)
    # Killed, not waited out: a sleep that ran its course takes its 30 s. (A tighter bound would
    # measure the machine: runuser's start on a loaded one is no part of the claim.)
    assert time.monotonic() - start < 30
    # SIGKILL is delivered at once but the dying process may still be listed for a moment
    # (seen once on a loaded CI machine): wait briefly for it to be gone, never 30 s.
    deadline = time.monotonic() + 5
    while live_processes(second_user.uid, "sleep") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live_processes(second_user.uid, "sleep") == []


def test_second_user_cannot_read_first_users_private_file(os_users: OSUsers, make_user_dir: UserDirs) -> None:
    alice, bob = os_users.alice, os_users.bob
    vault = make_user_dir(alice)
    assert vault.stat().st_uid == alice.uid
    assert oct(make_user_dir.base.stat().st_mode & 0o777) == "0o711"
    secret = vault / "master.key"
    made = alice.run(
        f"import os; fd = os.open({str(secret)!r}, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600); "
        "os.write(fd, b'alice only'); os.close(fd)"
    )
    assert made.returncode == 0, made.stderr
    assert secret.stat().st_uid == alice.uid

    assert alice.run(f"print(open({str(secret)!r}).read())").stdout.strip() == "alice only"
    denied = bob.run(f"open({str(secret)!r}).read()")
    assert denied.returncode != 0
    assert "PermissionError" in denied.stderr
    listing = bob.run(["ls", str(vault)])
    assert listing.returncode != 0


def test_keychain_for_second_user(
    second_user: OSUser, secret_service_factory: Callable[..., SecretService], make_user_dir: UserDirs
) -> None:
    ss = secret_service_factory(run_as=second_user)
    assert ss.run_as == second_user.name
    home = make_user_dir(second_user)
    code = (
        "import keyring; keyring.set_password('sessionseal-infra', 'bob', 'b0b'); "
        "print(keyring.get_password('sessionseal-infra', 'bob'))"
    )
    proc = second_user.run(code, env=ss.env_for(home=home, PYTHON_KEYRING_BACKEND=STOCK_BACKEND))
    assert proc.returncode == 0, proc.stderr + ss.logs()
    assert proc.stdout.strip() == "b0b"
    # Root (the test process) may still inspect it; other users' buses stay closed to bob.
    assert not ss.is_locked()
