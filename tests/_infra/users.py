"""Run code as the unprivileged OS users ``ssalice`` and ``ssbob`` (created by ``.ci/run``).

Both users get the project from ``/opt/sessionseal-mu/venv`` (built with /usr/bin/python3 and
a non-editable install, because the test venv may live somewhere they cannot read), or from
the venv ``$SESSIONSEAL_MU_VENV`` names, built the same way. Processes
are started with ``runuser -p -u NAME --`` and a clean environment, so nothing of root's leaks in.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from .keychain import require_or_skip

__all__ = [
    "ALICE",
    "BOB",
    "MU_VENV",
    "REQUIRE_MULTIUSER_ENV",
    "OSUser",
    "OSUsers",
    "UserDirs",
    "UsersUnavailable",
    "first_user",
    "lookup_users",
    "make_user_dir",
    "os_users",
    "second_user",
]

#: Set to "1" (``.ci/run`` does) to turn "no second user here" skips into failures.
REQUIRE_MULTIUSER_ENV = "SESSIONSEAL_REQUIRE_MULTIUSER"
ALICE = "ssalice"
BOB = "ssbob"
#: The users' venv; ``SESSIONSEAL_MU_VENV`` names another (a helper's own build, say), and
#: .ci/run builds and uses the default.
MU_VENV = Path(os.environ.get("SESSIONSEAL_MU_VENV") or "/opt/sessionseal-mu/venv")
DEFAULT_TIMEOUT = 60.0
_RUNUSER = "/usr/sbin/runuser"


class UsersUnavailable(Exception):
    """Not root, or the users / their venv are missing (run ``.ci/run`` once as root)."""


@dataclass(frozen=True)
class OSUser:
    name: str
    uid: int
    gid: int
    home: Path
    venv: Path = MU_VENV

    @property
    def python(self) -> Path:
        """The interpreter with sessionseal installed that this user can read."""
        return self.venv / "bin" / "python"

    def bin(self, script: str) -> Path:
        """A console script of the multi-user venv, e.g. ``user.bin("sessionseal")``."""
        return self.venv / "bin" / script

    def base_env(self) -> dict[str, str]:
        return {
            "HOME": str(self.home),
            "USER": self.name,
            "LOGNAME": self.name,
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
        }

    def run(
        self,
        cmd: str | Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        input: str | None = None,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` as this user; a ``str`` is Python code for ``self.python -c``.

        The environment is ``base_env()`` (HOME = the user's home, PATH with the multi-user venv
        first) updated with ``env``, so ``env={"HOME": str(some_dir)}`` chooses another HOME.
        cwd defaults to HOME. Output is captured as text. On timeout the whole process group
        (runuser and the user's process) is killed and ``subprocess.TimeoutExpired`` raised.
        """
        argv = [str(self.python), "-c", cmd] if isinstance(cmd, str) else [os.fspath(a) for a in cmd]
        full_env = {**self.base_env(), **(env or {})}
        workdir = os.fspath(cwd) if cwd is not None else full_env["HOME"]
        # -p: keep exactly our environment (runuser would otherwise reset HOME from passwd).
        with subprocess.Popen(
            [_RUNUSER, "-p", "-u", self.name, "--", *argv],
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            cwd=workdir,
            text=True,
            start_new_session=True,  # own process group, so a timeout can kill all of it
        ) as proc:
            try:
                out, err = proc.communicate(input, timeout=timeout)
            except subprocess.TimeoutExpired:
                # Kill the whole group at once: runuser's own SIGTERM handling sleeps 2 s and
                # exits without reaping, so being gentle buys nothing.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                out, err = proc.communicate()
                raise subprocess.TimeoutExpired(proc.args, timeout, out, err) from None
        result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        if check:
            result.check_returncode()
        return result


@dataclass(frozen=True)
class OSUsers:
    alice: OSUser
    bob: OSUser


def _lookup(name: str) -> OSUser:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise UsersUnavailable(f"OS user {name} does not exist (run .ci/run as root to create it)") from None
    return OSUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid, home=Path(entry.pw_dir))


def lookup_users() -> OSUsers:
    if os.geteuid() != 0:
        raise UsersUnavailable("multi-user tests need root (to runuser as ssalice/ssbob)")
    if not os.access(_RUNUSER, os.X_OK):
        raise UsersUnavailable(f"{_RUNUSER} is missing (Debian: util-linux)")
    users = OSUsers(alice=_lookup(ALICE), bob=_lookup(BOB))
    if not users.bob.python.exists():
        raise UsersUnavailable(f"{users.bob.python} is missing (run .ci/run as root to build it)")
    return users


class UserDirs:
    """Per-user private directories under one world-traversable base (``/tmp/sessionseal-mu-*``).

    The base is 0711: every user can reach a subdirectory whose name they know, none can list
    the base. Each ``make(user)`` directory is 0700 and owned by that user.
    """

    def __init__(self, parent: str | os.PathLike[str] = "/tmp") -> None:
        self.base = Path(tempfile.mkdtemp(prefix="sessionseal-mu-", dir=parent))
        self.base.chmod(0o711)

    def make(self, user: OSUser, name: str | None = None, mode: int = 0o700) -> Path:
        """A new directory under the base, owned by ``user`` (a random name unless ``name``)."""
        if name is None:
            path = Path(tempfile.mkdtemp(prefix=f"{user.name}-", dir=self.base))
        else:
            path = self.base / name
            path.mkdir()
        path.chmod(mode)
        os.chown(path, user.uid, user.gid)
        return path

    __call__ = make

    def cleanup(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def os_users() -> OSUsers:
    """``os_users.alice`` (ssalice) and ``os_users.bob`` (ssbob)."""
    try:
        return lookup_users()
    except UsersUnavailable as exc:
        require_or_skip(str(exc), REQUIRE_MULTIUSER_ENV)


@pytest.fixture(scope="session")
def first_user(os_users: OSUsers) -> OSUser:
    """ssalice: the vault owner in two-user tests."""
    return os_users.alice


@pytest.fixture(scope="session")
def second_user(os_users: OSUsers) -> OSUser:
    """ssbob: the other user, who must not be able to read ssalice's vault."""
    return os_users.bob


@pytest.fixture
def make_user_dir(os_users: OSUsers) -> Iterator[UserDirs]:
    """``make_user_dir(user) -> Path``: a fresh 0700 directory owned by ``user`` under a 0711
    base in /tmp, all removed after the test (``make_user_dir.base`` is the base)."""
    dirs = UserDirs()
    try:
        yield dirs
    finally:
        dirs.cleanup()
