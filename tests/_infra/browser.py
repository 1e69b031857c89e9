"""A real headless Chromium, driven over the Chrome DevTools Protocol on a pipe.

``--remote-debugging-pipe`` makes Chromium read protocol messages from its descriptor 3 and
write replies and events to descriptor 4, each a JSON text ended by a NUL byte: no port is
opened (nothing else on the machine can reach the browser) and no client library is needed.
The browser is Debian's ``chromium`` package, installed by ``.ci/run``; Playwright's own
browser builds cannot be downloaded here.

Tests use :func:`browser` (a fixture helper): it skips when Chromium is missing, unless
``SESSIONSEAL_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that a failure.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = ["REQUIRE_BROWSER_ENV", "Browser", "PageReport", "artefacts_dir", "browser", "find_chromium"]

#: Set to "1" (``.ci/run`` does) to turn "no Chromium here" skips into failures.
REQUIRE_BROWSER_ENV = "SESSIONSEAL_REQUIRE_BROWSER"
#: Generous: a test must not depend on the machine's speed, only stop a hung browser.
TIMEOUT = 90.0
_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")
_REPO = Path(__file__).resolve().parents[2]


def find_chromium() -> str | None:
    """The Chromium executable, or None."""
    for name in _CANDIDATES:
        found = name if os.path.isabs(name) and os.access(name, os.X_OK) else shutil.which(name)
        if found:
            return found
    return None


def artefacts_dir() -> Path:
    """Where tests leave what a person looks at (screenshots): ``$SESSIONSEAL_ARTEFACTS`` or
    ``.ci/artefacts/`` (git-ignored)."""
    path = Path(os.environ.get("SESSIONSEAL_ARTEFACTS") or _REPO / ".ci" / "artefacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class PageReport:
    """What happened while a page loaded."""

    url: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def extra_requests(self) -> list[str]:
        """Every request but the page's own document: what a self-contained page never makes."""
        return [u for u in self.requests if u != self.url]


class BrowserError(Exception):
    pass


class Browser:
    """One headless Chromium process and one page (a target attached in flat mode)."""

    def __init__(self, exe: str, workdir: Path) -> None:
        self._workdir = workdir
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        self._log = open(workdir / "chromium.log", "wb")  # noqa: SIM115 - closed in close()
        args = [
            exe,
            "--headless",
            "--remote-debugging-pipe",
            "--no-sandbox",  # root in CI; the pages are our own files
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--mute-audio",
            "--hide-scrollbars",
            "--window-size=1280,1000",
            f"--user-data-dir={workdir / 'profile'}",
            "about:blank",
        ]
        actions = [
            (os.POSIX_SPAWN_DUP2, to_chrome_r, 3),
            (os.POSIX_SPAWN_DUP2, from_chrome_w, 4),
            (os.POSIX_SPAWN_DUP2, self._log.fileno(), 1),
            (os.POSIX_SPAWN_DUP2, self._log.fileno(), 2),
        ]
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        env["HOME"] = str(workdir)
        self.pid = os.posix_spawn(exe, args, env, file_actions=actions, setsid=True)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []
        self._session: str | None = None

    # -- the protocol -----------------------------------------------------------------------

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium exited; see {self._workdir / 'chromium.log'}")
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        msg: dict[str, Any] = json.loads(raw)
        return msg

    def call(self, method: str, params: dict[str, Any] | None = None, *, page: bool = True) -> dict[str, Any]:
        """Send one command (to the page's session unless *page* is false) and wait for its reply."""
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if page and self._session is not None:
            msg["sessionId"] = self._session
        data = json.dumps(msg).encode() + b"\0"
        view = memoryview(data)
        while view:
            view = view[os.write(self._to_chrome, view) :]
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def wait_event(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        for ev in self.events:
            if ev.get("method") == method and ev.get("sessionId") == self._session:
                return ev
        while True:
            ev = self._read_message(deadline)
            self.events.append(ev)
            if ev.get("method") == method and ev.get("sessionId") == self._session:
                return ev

    # -- a page ------------------------------------------------------------------------------

    def open_page(self) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"}, page=False)["targetId"]
        self._session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True}, page=False)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def load(self, path: Path) -> PageReport:
        """Load a file into the page; what it requested and every console error on the way."""
        url = path.resolve().as_uri()
        self.events.clear()
        self.call("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")
        # One round trip more, so that events emitted with the load are read.
        self.evaluate("document.readyState")
        report = PageReport(url)
        for ev in self.events:
            if ev.get("sessionId") != self._session:
                continue
            method, params = ev.get("method"), ev.get("params", {})
            if method == "Network.requestWillBeSent":
                report.requests.append(params["request"]["url"])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                report.console_errors.append(json.dumps(params.get("args")))
            elif method == "Runtime.exceptionThrown":
                report.console_errors.append(json.dumps(params.get("exceptionDetails")))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                report.console_errors.append(params["entry"].get("text", ""))
        return report

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"evaluate failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, out: Path) -> Path:
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        out.write_bytes(base64.b64decode(data))
        return out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call("Browser.close", page=False)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)  # its own session: the renderers go too
            os.waitpid(self.pid, 0)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # helpers left behind by the zygote
        for fd in (self._to_chrome, self._from_chrome):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._log.close()


@contextlib.contextmanager
def browser() -> Iterator[Browser]:
    """A headless Chromium with one page open; skipped without Chromium (unless required)."""
    exe = find_chromium()
    if exe is None:
        reason = "headless Chromium is not installed (apt-get install chromium; .ci/run does)"
        if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_BROWSER_ENV}=1")
        pytest.skip(reason)
    with tempfile.TemporaryDirectory(prefix="sessionseal-chromium-", ignore_cleanup_errors=True) as tmp:
        b = Browser(exe, Path(tmp))
        try:
            b.open_page()
            yield b
        finally:
            b.close()
