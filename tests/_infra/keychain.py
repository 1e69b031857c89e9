"""A private freedesktop Secret Service for tests: its own D-Bus session bus plus gnome-keyring.

Nothing here touches the developer's real keychain: every daemon gets a fresh temp directory as
its HOME/XDG dirs and listens on its own bus socket. Facts relied on (measured on Debian 12,
see shared docs/keychain-in-ci.md):

- ``gnome-keyring-daemon --foreground --unlock`` reads the login password from stdin up to EOF.
  A trailing newline would be part of the password, so we write the exact bytes and close stdin.
- ``--unlock`` reports nothing useful (it carries on with a wrong or empty password), so
  readiness is checked on the bus: the daemon owns ``org.freedesktop.secrets`` *and* the default
  collection reports ``Locked == false``.
- On a stock session bus a client that arrives before the daemon owns the name D-Bus-activates a
  second, locked daemon. Our bus config lists only the gcr prompter's service files and, for an
  unlocked service, our own activation file for the secrets name: it starts the daemon again,
  unlocked with the same password on the same keyring files (``_RESPAWN``), so that a daemon
  that died (gnome-keyring has aborted on clients that vanish mid-call: upstream issues 190,
  196 and 199) comes back at the next call, as systemd's unit restarts it on a desktop, instead
  of failing every later test of the session. Activation waits for a name with no owner, so
  while our daemon runs nothing is started behind our back; a respawn is reported
  (``.ci/artefacts/keychain-respawns.txt``, printed by ``.ci/run``) with the dead daemon's exit
  status and log, never silent.
- The unlock/create prompt (gcr-prompter) is D-Bus-activated and inherits the *bus daemon's*
  environment. A bus with DISPLAY set makes stock ``keyring`` hang on the prompt; without one
  the prompter exits at once and the client gets ``KeyringLocked`` in about 0.1 s.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from xml.sax.saxutils import escape, quoteattr

import pytest

try:  # jeepney comes with secretstorage, i.e. with keyring's SecretService backend (Linux only)
    from jeepney.bus_messages import message_bus
    from jeepney.io.blocking import open_dbus_connection
    from jeepney.wrappers import DBusAddress, Properties, new_method_call, unwrap_msg
except ImportError:  # pragma: no cover - not Linux: the fixtures skip
    open_dbus_connection = None

__all__ = [
    "DEFAULT_COLLECTION",
    "DEFAULT_PASSWORD",
    "PROMPTER_NAME",
    "REQUIRE_KEYCHAIN_ENV",
    "SECRETS_NAME",
    "InfraError",
    "InfraUnavailable",
    "SecretService",
    "locked_secret_service",
    "prompting_secret_service",
    "require_or_skip",
    "secret_service",
    "secret_service_factory",
    "skip_unless_keychain_tools",
    "start_secret_service",
    "start_xvfb",
    "use_bus",
    "xvfb_display",
]

#: Set to "1" (``.ci/run`` does) to turn "tool not installed" skips into failures.
REQUIRE_KEYCHAIN_ENV = "SESSIONSEAL_REQUIRE_KEYCHAIN"
SECRETS_NAME = "org.freedesktop.secrets"
SERVICE_PATH = "/org/freedesktop/secrets"
DEFAULT_COLLECTION = "/org/freedesktop/secrets/aliases/default"
PROMPTER_NAME = "org.gnome.keyring.SystemPrompter"
DEFAULT_PASSWORD = "sessionseal-test-login"
STARTUP_TIMEOUT = 15.0

_SERVICE_IFACE = "org.freedesktop.Secret.Service"
_COLLECTION_IFACE = "org.freedesktop.Secret.Collection"
_SYSTEM_SERVICE_DIRS = (Path("/usr/share/dbus-1/services"), Path("/usr/local/share/dbus-1/services"))
_PROMPTER_SERVICE_FILES = (
    "org.gnome.keyring.SystemPrompter.service",
    "org.gnome.keyring.PrivatePrompter.service",
)
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"


class InfraUnavailable(Exception):
    """A tool the fixture needs is not installed (fixtures turn this into a skip or a failure)."""


class InfraError(RuntimeError):
    """A tool is installed but did not come up as expected (always a test error, never a skip)."""


def require_or_skip(reason: str, env_var: str = REQUIRE_KEYCHAIN_ENV) -> NoReturn:
    """Skip the test, or fail it when ``env_var=1`` says this machine must have the tool."""
    if os.environ.get(env_var) == "1":
        pytest.fail(f"{reason} (and {env_var}=1 forbids skipping)", pytrace=False)
    pytest.skip(reason)


# --------------------------------------------------------------------------------------------
# Tool discovery


def _tool(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + os.pathsep + _DEFAULT_PATH)
    if found is None:
        raise InfraUnavailable(f"{name} is not installed (Debian: apt-get install {_PACKAGE_OF[name]})")
    return found


_PACKAGE_OF = {
    "dbus-daemon": "dbus",
    "gnome-keyring-daemon": "gnome-keyring",
    "Xvfb": "xvfb",
}


def _prompter_service_files() -> list[Path]:
    """The gcr prompter's D-Bus activation files, if gcr-prompter itself is installed."""
    found: list[Path] = []
    for name in _PROMPTER_SERVICE_FILES:
        for directory in _SYSTEM_SERVICE_DIRS:
            path = directory / name
            if path.is_file():
                found.append(path)
                break
    for path in found:
        for line in path.read_text().splitlines():
            if line.startswith("Exec="):
                exe = line.removeprefix("Exec=").split()[0]
                if not os.access(exe, os.X_OK):
                    return []
    return found


def _require_prompter() -> None:
    if not _prompter_service_files():
        raise InfraUnavailable("gcr-prompter is not installed (Debian: apt-get install gcr)")


# --------------------------------------------------------------------------------------------
# Process plumbing


def _wrap_pdeathsig(argv: list[str]) -> list[str]:
    """Ask the kernel to SIGTERM the daemon if pytest dies without tearing down (kill -9, OOM).

    The "parent" is the spawning *thread*, so only do it from the main thread: a daemon started
    from a worker thread would otherwise die when that thread ends.
    """
    setpriv = shutil.which("setpriv", path=_DEFAULT_PATH)
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return argv
    return [setpriv, "--pdeathsig", "TERM", "--", *argv]


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[0]


def _kill_pids(pids: Sequence[int], grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL what is still alive after ``grace`` seconds (zombies count as gone)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = [p for p in pids if _proc_state(p) not in (None, "Z")]
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while alive and time.monotonic() < deadline:
            alive = [p for p in alive if _proc_state(p) not in (None, "Z")]
            time.sleep(0.02)
        if not alive:
            return


def _stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Stop one daemon we started and close our ends of its pipes."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _read_line(fd: int, deadline: float, what: str, proc: subprocess.Popen[bytes], log: Path) -> str:
    buf = b""
    while not buf.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise InfraError(f"timed out waiting for {what}\n{_tail(log)}")
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.5))
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            raise InfraError(f"{what}: process exited (rc={proc.poll()}) before printing it\n{_tail(log)}")
        buf += chunk
    return buf.decode().strip()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return f"--- {path.name} ---\n" + "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True)
class _RunAs:
    name: str
    uid: int
    gid: int

    @classmethod
    def lookup(cls, user: str | Any) -> _RunAs:
        name = user if isinstance(user, str) else user.name
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise InfraUnavailable(f"OS user {name} does not exist") from None
        return cls(name, entry.pw_uid, entry.pw_gid)

    def popen_kwargs(self) -> dict[str, Any]:
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def _mkdir(path: Path, owner: _RunAs | None, mode: int = 0o700) -> Path:
    path.mkdir(mode=mode)
    path.chmod(mode)
    if owner is not None:
        os.chown(path, owner.uid, owner.gid)
    return path


# --------------------------------------------------------------------------------------------
# D-Bus calls (jeepney: a dependency of secretstorage, so of keyring's SecretService backend)


def _connect(address: str, deadline: float) -> Any:
    while True:
        try:
            return open_dbus_connection(address, auth_timeout=2.0)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _call(conn: Any, msg: Any, timeout: float = 5.0) -> Any:
    return unwrap_msg(conn.send_and_get_reply(msg, timeout=timeout))


def _name_has_owner(conn: Any, name: str) -> bool:
    return bool(_call(conn, message_bus.NameHasOwner(name))[0])


def _collection_locked(conn: Any, path: str = DEFAULT_COLLECTION) -> bool:
    collection = DBusAddress(path, bus_name=SECRETS_NAME, interface=_COLLECTION_IFACE)
    (variant,) = _call(conn, Properties(collection).get("Locked"))
    return bool(variant[1])


def _lock_default(conn: Any) -> None:
    service = DBusAddress(SERVICE_PATH, bus_name=SECRETS_NAME, interface=_SERVICE_IFACE)
    (real_path,) = _call(conn, new_method_call(service, "ReadAlias", "s", ("default",)))
    _locked, prompt = _call(conn, new_method_call(service, "Lock", "ao", ([real_path],)))
    if prompt != "/":
        raise InfraError(f"Lock({real_path}) wanted a prompt ({prompt}); cannot lock headlessly")


def _activated_service_pids(address: str, exclude: Sequence[int]) -> list[int]:
    """PIDs owning well-known names on our bus, e.g. a gcr-prompter the bus D-Bus-activated.

    dbus-daemon double-forks activated services, so they are not our descendants: ask the bus.
    """
    pids: set[int] = set()
    with contextlib.closing(_connect(address, time.monotonic() + 2)) as conn:
        (names,) = _call(conn, message_bus.ListNames(), timeout=2)
        for name in names:
            if name.startswith(":") or name == "org.freedesktop.DBus":
                continue
            with contextlib.suppress(Exception):
                pids.add(int(_call(conn, message_bus.GetConnectionUnixProcessID(name), timeout=2)[0]))
    return sorted(pids - {os.getpid(), *exclude})


def _stop_activated(address: str, exclude: Sequence[int]) -> None:
    with contextlib.suppress(Exception):  # the bus may already be gone; then so are its clients
        _kill_pids(_activated_service_pids(address, exclude))


# --------------------------------------------------------------------------------------------
# The service object


@dataclass(frozen=True)
class SecretService:
    """A running private Secret Service.

    Subprocess use: ``subprocess.run(argv, env=ss.env)`` (a clean environment: PATH, LANG, an
    empty private HOME, DBUS_SESSION_BUS_ADDRESS and no DISPLAY), or
    ``ss.env_for(home=my_vault_home, EXTRA="1")`` to choose HOME and add variables. In-process:
    ``with ss.use(): keyring.get_password(...)`` (or ``use_bus(ss.bus_address)``).
    """

    bus_address: str
    home: Path
    state_dir: Path
    password: str
    display: str | None
    run_as: str | None
    bus_pid: int
    daemon_pid: int
    startup_seconds: float
    _base_env: dict[str, str] = field(repr=False)

    @property
    def env(self) -> dict[str, str]:
        """A fresh copy each time, so one test's edits cannot leak into another's."""
        return dict(self._base_env)

    def env_for(self, home: str | os.PathLike[str] | None = None, **extra: str) -> dict[str, str]:
        env = self.env
        if home is not None:
            env["HOME"] = os.fspath(home)
        env.update(extra)
        return env

    def use(self) -> contextlib.AbstractContextManager[str]:
        return use_bus(self.bus_address)

    def _conn(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.closing(_connect(self.bus_address, time.monotonic() + 5))

    def name_has_owner(self, name: str) -> bool:
        with self._conn() as conn:
            return _name_has_owner(conn, name)

    def is_locked(self, collection: str = DEFAULT_COLLECTION) -> bool:
        with self._conn() as conn:
            return _collection_locked(conn, collection)

    def lock(self) -> None:
        """Lock the default collection through the Secret Service API (no prompt needed)."""
        with self._conn() as conn:
            _lock_default(conn)
            if not _collection_locked(conn):
                raise InfraError("default collection still unlocked after Lock()")

    def logs(self) -> str:
        return "\n".join(_tail(p, 200) for p in sorted(self.state_dir.glob("*.log")))


@contextlib.contextmanager
def use_bus(address: str) -> Iterator[str]:
    """Point this process's D-Bus clients (keyring, secretstorage) at ``address``; restore on exit.

    keyring's SecretService backend reads DBUS_SESSION_BUS_ADDRESS on every call, so switching
    the variable is enough. It does not change which backend ``keyring.get_keyring()`` chose.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        yield address


def _report_respawns(state: Path, daemon: subprocess.Popen[bytes], log: Path) -> None:
    """If the daemon died and D-Bus activation started it again, say so where CI shows it:
    when, the first daemon's exit status and the tail of its log (it holds no secret: the
    password goes in on stdin)."""
    try:
        times = (state / RESPAWNS).read_text().split()
    except FileNotFoundError:
        return
    report = (
        f"gnome-keyring-daemon (pid {daemon.pid}) exited with status {daemon.poll()} and was started again"
        f" by D-Bus activation {len(times)} time(s), at {', '.join(times)}\n{_tail(log)}\n"
    )
    out = Path(os.environ.get("SESSIONSEAL_ARTEFACTS") or Path(__file__).resolve().parents[2] / ".ci" / "artefacts")
    with contextlib.suppress(OSError):
        out.mkdir(parents=True, exist_ok=True)
        with (out / "keychain-respawns.txt").open("a") as f:
            f.write(report)


def _state_root() -> Path:
    # unix socket paths are limited to 108 bytes; a long TMPDIR would overflow that.
    base = Path(tempfile.gettempdir())
    if len(str(base)) > 60:
        base = Path("/tmp")
    return Path(tempfile.mkdtemp(prefix="sessionseal-kr-", dir=base))


def _bus_config(socket: Path, service_dir: Path, extra_users: Sequence[str]) -> str:
    allow = "".join(f"\n    <allow user={quoteattr(u)}/>" for u in extra_users)
    return f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <keep_umask/>
  <listen>unix:path={escape(str(socket))}</listen>
  <auth>EXTERNAL</auth>
  <servicedir>{escape(str(service_dir))}</servicedir>
  <policy context="default">{allow}
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def _preflight(
    *, display: str | None = None, run_as: str | Any | None = None
) -> tuple[str, str, list[Path], _RunAs | None]:
    """Find the tools ``start_secret_service`` needs; raise InfraUnavailable naming what is missing."""
    if open_dbus_connection is None:
        raise InfraUnavailable("jeepney is not installed (pip install secretstorage)")
    dbus_daemon = _tool("dbus-daemon")
    gkd = _tool("gnome-keyring-daemon")
    prompter_files = _prompter_service_files()
    if display is not None:
        _require_prompter()
    owner = _RunAs.lookup(run_as) if run_as is not None else None
    if owner is not None and os.geteuid() != 0:
        raise InfraUnavailable("start_secret_service(run_as=...) needs root")
    return dbus_daemon, gkd, prompter_files, owner


#: The activation file and script that start gnome-keyring-daemon again if it died (unlocked
#: services only: a locked one must stay locked). dbus-daemon runs Exec with its own environment
#: plus DBUS_STARTER_ADDRESS; the password comes from a file, read to EOF as from our pipe.
_RESPAWN_SERVICE = """[D-BUS Service]
Name=org.freedesktop.secrets
Exec=/bin/sh {script}
"""
_RESPAWN = """#!/bin/sh
DBUS_SESSION_BUS_ADDRESS="$DBUS_STARTER_ADDRESS"
export DBUS_SESSION_BUS_ADDRESS
date -u +%Y-%m-%dT%H:%M:%S.%NZ >> {respawns}
exec {gkd} --foreground --unlock --components=secrets < {password} >> {log} 2>&1
"""
RESPAWNS = "respawns"


def _respawn_files(state: Path, services: Path, gkd: str, password: str, owner: _RunAs | None) -> None:
    secret = state / "password"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)  # owner-only from the start
    with os.fdopen(fd, "wb") as f:
        f.write(password.encode())  # no trailing newline, as written to the first daemon
    script = state / "respawn-gnome-keyring.sh"
    script.write_text(
        _RESPAWN.format(
            respawns=shlex.quote(str(state / RESPAWNS)),
            gkd=shlex.quote(gkd),
            password=shlex.quote(str(secret)),
            log=shlex.quote(str(state / "gnome-keyring-daemon.respawned.log")),
        )
    )
    service = services / f"{SECRETS_NAME}.service"
    service.write_text(_RESPAWN_SERVICE.format(script=script))
    if owner is not None:
        for path in (secret, script, service):
            os.chown(path, owner.uid, owner.gid)


def _prepare_state(
    stack: contextlib.ExitStack, owner: _RunAs | None, prompter_files: Sequence[Path]
) -> tuple[Path, dict[str, Path], Path]:
    """Temp dirs (daemon HOME/XDG dirs, clients' HOME, service dir) and the bus config."""
    root = _state_root()
    stack.callback(shutil.rmtree, root, ignore_errors=True)
    if owner is not None:
        root.chmod(0o711)  # let the daemon user reach its own 0700 subdirs
    state = _mkdir(root / "s", owner)
    dirs = {
        name: _mkdir(state / name, owner)
        for name in ("daemon-home", "run", "data", "config", "cache", "services", "home")
    }
    for src in prompter_files:
        shutil.copy(src, dirs["services"] / src.name)
    socket = state / "bus"
    config = state / "bus.conf"
    me = pwd.getpwuid(os.geteuid()).pw_name
    config.write_text(_bus_config(socket, dirs["services"], [me] if owner else []))
    if owner is not None:
        for path in [config, *dirs["services"].iterdir()]:
            os.chown(path, owner.uid, owner.gid)
    return state, dirs, config


@contextlib.contextmanager
def start_secret_service(
    *,
    locked: bool = False,
    display: str | None = None,
    run_as: str | Any | None = None,
    password: str = DEFAULT_PASSWORD,
    timeout: float = STARTUP_TIMEOUT,
) -> Iterator[SecretService]:
    """Start dbus-daemon + gnome-keyring-daemon, wait until usable, yield, then stop both.

    ``locked``: lock the default collection after start-up (stock keyring raises KeyringLocked,
    or hangs on a prompt when ``display`` is set). ``display``: an X display (see ``start_xvfb``)
    that the bus, hence the D-Bus-activated gcr-prompter, can reach. ``run_as``: a user name (or
    object with ``.name``) to run the daemons as, so that that user's processes may connect;
    needs root. Raises InfraUnavailable if a tool is missing, InfraError if start-up fails.
    """
    dbus_daemon, gkd, prompter_files, owner = _preflight(display=display, run_as=run_as)
    started = time.monotonic()
    deadline = started + timeout

    with contextlib.ExitStack() as stack:
        state, dirs, config = _prepare_state(stack, owner, prompter_files)
        if not locked:
            _respawn_files(state, dirs["services"], gkd, password, owner)
        daemon_env = {
            "PATH": os.environ.get("PATH", _DEFAULT_PATH),
            "LANG": "C.UTF-8",
            "HOME": str(dirs["daemon-home"]),
            "XDG_RUNTIME_DIR": str(dirs["run"]),
            "XDG_DATA_HOME": str(dirs["data"]),
            "XDG_CONFIG_HOME": str(dirs["config"]),
            "XDG_CACHE_HOME": str(dirs["cache"]),
            # Keep an activated gcr-prompter (GTK) from looking for dconf or the a11y bus.
            "GSETTINGS_BACKEND": "memory",
            "NO_AT_BRIDGE": "1",
        }
        if display is not None:
            daemon_env["DISPLAY"] = display
        popen_extra: dict[str, Any] = owner.popen_kwargs() if owner else {}

        bus_log = state / "dbus-daemon.log"
        with bus_log.open("wb") as log:
            bus = subprocess.Popen(
                _wrap_pdeathsig([dbus_daemon, "--nofork", f"--config-file={config}", "--print-address"]),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=daemon_env,
                cwd=dirs["daemon-home"],
                start_new_session=True,
                **popen_extra,
            )
        stack.callback(_stop, bus)
        assert bus.stdout is not None
        address = _read_line(bus.stdout.fileno(), deadline, "dbus-daemon's address", bus, bus_log)
        bus.stdout.close()

        gkd_log = state / "gnome-keyring-daemon.log"
        with gkd_log.open("wb") as log:
            daemon = subprocess.Popen(
                _wrap_pdeathsig([gkd, "--foreground", "--unlock", "--components=secrets"]),
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**daemon_env, "DBUS_SESSION_BUS_ADDRESS": address},
                cwd=dirs["daemon-home"],
                start_new_session=True,
                **popen_extra,
            )
        stack.callback(_stop, daemon)
        stack.callback(_stop_activated, address, [bus.pid, daemon.pid])
        stack.callback(_report_respawns, state, daemon, gkd_log)
        assert daemon.stdin is not None
        try:
            daemon.stdin.write(password.encode())  # printf %s: no trailing newline
            daemon.stdin.close()
        except BrokenPipeError:
            pass  # it died early; reported below with its log

        with contextlib.closing(_connect(address, deadline)) as conn:
            while not _name_has_owner(conn, SECRETS_NAME):
                if daemon.poll() is not None:
                    raise InfraError(f"gnome-keyring-daemon exited (rc={daemon.returncode})\n{_tail(gkd_log)}")
                if time.monotonic() > deadline:
                    raise InfraError(f"timed out waiting for {SECRETS_NAME} on {address}\n{_tail(gkd_log)}")
                time.sleep(0.01)
            if _collection_locked(conn):
                raise InfraError(f"default collection is locked right after --unlock\n{_tail(gkd_log)}")
            if locked:
                _lock_default(conn)
                if not _collection_locked(conn):
                    raise InfraError("default collection still unlocked after Lock()")

        client_env = {
            "PATH": os.environ.get("PATH", _DEFAULT_PATH),
            "LANG": "C.UTF-8",
            "HOME": str(dirs["home"]),
            "DBUS_SESSION_BUS_ADDRESS": address,
        }
        if "TMPDIR" in os.environ:
            client_env["TMPDIR"] = os.environ["TMPDIR"]
        yield SecretService(
            bus_address=address,
            home=dirs["home"],
            state_dir=state,
            password=password,
            display=display,
            run_as=owner.name if owner else None,
            bus_pid=bus.pid,
            daemon_pid=daemon.pid,
            startup_seconds=time.monotonic() - started,
            _base_env=client_env,
        )
        # ExitStack unwinds in reverse: services the bus activated (a gcr-prompter), then
        # gnome-keyring-daemon, then dbus-daemon, then the state directory.


@contextlib.contextmanager
def start_xvfb(timeout: float = STARTUP_TIMEOUT) -> Iterator[str]:
    """Start Xvfb on a free display number (it picks one via -displayfd); yield ``":N"``."""
    xvfb = _tool("Xvfb")
    with contextlib.ExitStack() as stack:
        state = _state_root()
        stack.callback(shutil.rmtree, state, ignore_errors=True)
        log_path = state / "xvfb.log"
        read_fd, write_fd = os.pipe()
        stack.callback(os.close, read_fd)
        try:
            with log_path.open("wb") as log:
                proc = subprocess.Popen(
                    _wrap_pdeathsig(
                        [xvfb, "-displayfd", str(write_fd), "-nolisten", "tcp", "-screen", "0", "800x600x24"]
                    ),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(write_fd,),
                    cwd=state,
                    start_new_session=True,
                )
        finally:
            os.close(write_fd)
        stack.callback(_stop, proc)
        number = _read_line(read_fd, time.monotonic() + timeout, "Xvfb's display number", proc, log_path)
        yield f":{number}"


# --------------------------------------------------------------------------------------------
# Fixtures


def _available(check: Callable[[], object]) -> None:
    try:
        check()
    except InfraUnavailable as exc:
        require_or_skip(str(exc))


def skip_unless_keychain_tools(*, display: str | None = None, run_as: str | Any | None = None) -> None:
    """For tests that call ``start_secret_service`` themselves: same skip/fail policy as fixtures."""
    _available(lambda: _preflight(display=display, run_as=run_as))


@pytest.fixture(scope="session")
def secret_service() -> Iterator[SecretService]:
    """One unlocked private Secret Service shared by the whole session (use unique service names)."""
    _available(_preflight)
    with start_secret_service() as ss:
        yield ss


@pytest.fixture
def locked_secret_service() -> Iterator[SecretService]:
    """A fresh headless Secret Service whose default collection is locked (stock keyring raises)."""
    _available(_preflight)
    with start_secret_service(locked=True) as ss:
        yield ss


@pytest.fixture(scope="session")
def xvfb_display() -> Iterator[str]:
    """An X display (":N") on Xvfb, for tests that need a prompt to be able to open a window."""

    def check() -> None:
        _tool("Xvfb")
        _require_prompter()

    _available(check)
    with start_xvfb() as display:
        yield display


@pytest.fixture
def prompting_secret_service(xvfb_display: str) -> Iterator[SecretService]:
    """Locked collection + a bus that can reach a display: stock keyring hangs on a gcr prompt."""
    _available(lambda: _preflight(display=xvfb_display))
    with start_secret_service(locked=True, display=xvfb_display) as ss:
        yield ss


@pytest.fixture
def secret_service_factory() -> Iterator[Callable[..., SecretService]]:
    """``make(locked=False, display=None, run_as=None, password=...)``: fresh services, stopped
    at the end of the test. ``run_as=second_user`` gives a keychain that user can connect to."""
    with contextlib.ExitStack() as stack:

        def make(**kwargs: Any) -> SecretService:
            _available(lambda: _preflight(display=kwargs.get("display"), run_as=kwargs.get("run_as")))
            ss: SecretService = stack.enter_context(start_secret_service(**kwargs))
            return ss

        yield make
