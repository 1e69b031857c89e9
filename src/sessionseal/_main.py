"""The ``sessionseal`` command's entry point.

``sessionseal sanitize`` is a filter in pipelines and hooks, where start-up is much of a
short run: with only its own options it starts without the command-line framework, and
reads its input while the sanitizer loads (see :mod:`sessionseal._sanitize._filter`).
Everything else is the ``click`` command line of :mod:`sessionseal.cli`.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable, Sequence
from typing import Final

__all__ = ["main", "parse_filter_args"]

_ENGINES: Final = ("hyperscan", "ahocorasick", "python")


def main(argv: list[str] | None = None) -> None:
    """Run the ``sessionseal`` command with *argv* (default: ``sys.argv[1:]``).

    As the process's own command (no *argv*), a successful ``sanitize`` ends the process at
    once when its output is flushed: tearing down the interpreter after a large input would
    take longer than a small one's whole run.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    secret_env: dict[str, str] = {}
    if argv is None:
        # The process's own command: no core dumps, no same-user readers of its memory, and no
        # passphrase left in the environment for a child to inherit (threat-model.md).  Cheap
        # enough for the sanitize filter too: about 2 ms, most of it importing ctypes.
        from sessionseal._harden import harden_process, take_secret_env

        secret_env = take_secret_env()
        harden_process()
    if args[:1] == ["sanitize"]:
        options = parse_filter_args(args[1:])
        if options is not None:
            _run_sanitize(*options, own_process=argv is None)
            if argv is None:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(0)
            return
    from sessionseal.cli import main as cli_main

    cli_main(args, secret_env=secret_env)


def parse_filter_args(args: Sequence[str]) -> tuple[bool, str | None] | None:
    """``(report, engine)`` for the arguments after ``sanitize`` when they are only its own
    options, plainly spelled and valid; else None (the full command line parses them)."""
    report = False
    engine: str | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--report":
            report = True
        elif arg == "--engine" and i + 1 < len(args) and args[i + 1] in _ENGINES:
            engine = args[i + 1]
            i += 1
        elif arg.startswith("--engine=") and arg.partition("=")[2] in _ENGINES:
            engine = arg.partition("=")[2]
        else:
            return None
        i += 1
    return report, engine


def _run_sanitize(report: bool, engine: str | None, *, own_process: bool = False) -> None:
    """As the ``click`` command would run it: a broken pipe or Ctrl-C ends it quietly with status 1.

    *own_process*: the process is this command and ends with it (its memory may be tuned for
    the run, see :func:`sessionseal._sanitize._filter.run_filter`)."""
    try:
        read = _read_stdin_behind()  # before the sanitizer's modules load: they take longer
        from sessionseal._sanitize._filter import run_filter

        run_filter(report=report, engine=engine, read=read, own_process=own_process)
    except KeyboardInterrupt:
        sys.stderr.write("\nAborted!\n")
        sys.exit(1)
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        # Exit 1 without Python's complaint about flushing into the closed pipe at shutdown.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)


def _read_stdin_behind() -> Callable[[], bytes]:
    """Start reading all of stdin (a pipe) in a thread; return the function that waits for it.

    A writer feeds a pipe a few kilobytes at a time, so reading 20 MB takes tens of
    milliseconds: here they pass while the sanitizer loads.  The pipe is enlarged where the
    platform allows (fewer, larger reads), and the interpreter switches threads more often
    meanwhile, so the reader is not kept waiting for the lock after each read.
    """
    import threading

    stdin = sys.stdin.buffer
    try:
        # The process's own stdin, untouched so far (nothing buffered that os.read would miss).
        pipe = sys.stdin is sys.__stdin__ and _is_pipe(stdin.fileno())
    except (AttributeError, OSError, ValueError):
        pipe = False
    if not pipe:
        return stdin.read
    fd = stdin.fileno()
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (ImportError, AttributeError, OSError):
        pass
    import io

    result: list[bytes] = []
    failed: list[BaseException] = []

    def reader() -> None:
        try:
            # One growing buffer, read in C: no chunks to join afterwards.
            result.append(io.FileIO(fd, closefd=False).readall())
        except BaseException as exc:  # handed to the main thread
            failed.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, 0.0005))
    thread = threading.Thread(target=reader, name="sessionseal-stdin", daemon=True)
    thread.start()

    def wait() -> bytes:
        thread.join()
        sys.setswitchinterval(interval)
        if failed:
            raise failed[0]
        return result[0]

    wait.pending = thread.is_alive  # type: ignore[attr-defined]  # see run_filter
    return wait


def _is_pipe(fd: int) -> bool:
    import stat

    return stat.S_ISFIFO(os.fstat(fd).st_mode)
