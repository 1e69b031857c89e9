"""Recording a live session: events are buffered in memory and appended in groups.

A tool records while it runs::

    with vault.record(title="fix the build") as rec:
        rec.append_message("user", "the tests fail")
        rec.append_tool_call("bash", {"cmd": "pytest"}, id="c1")
        rec.append_tool_result("c1", "3 failed")
        rec.update_state(working_directory="/src/app")

Every :meth:`Recorder.flush` is one append (one group of frames, one fsync), as
:meth:`Vault.append` does.
The recorder flushes when the block ends, every *autosave* seconds from a background thread,
and at normal interpreter exit, so a crash loses at most the events of the last interval.
Events are validated when they are added (a bad one raises at once, not at the next flush).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import uuid
import weakref
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from ._events import parse_events

if TYPE_CHECKING:
    from ._checkpoints import Checkpoint

__all__ = ["AsyncRecorder", "Recorder"]

#: Appends operations already validated by :func:`parse_events` to a session, as one group,
#: audited as one ``append``; takes the session, the operations and how many events they came
#: from, returns that number.  The vault hands one to each recorder it makes: the recorder
#: imports nothing of the vault (docs/design.md, "The house").
AppendOps = Callable[[uuid.UUID, list[dict[str, Any]], int], int]


class RecordingVault(Protocol):
    """What a recorder uses of its vault besides the appender: a checkpoint."""

    def checkpoint(self, session_id: uuid.UUID | str, name: str | None = None) -> Checkpoint: ...


#: Recorders still open at interpreter exit are flushed (normal exit only: a SIGKILL loses
#: what the last autosave did not write).
_OPEN: weakref.WeakSet[Recorder] = weakref.WeakSet()


@atexit.register
def _flush_open_recorders() -> None:
    for rec in list(_OPEN):
        # At exit there is no caller left to tell; the next run sees what was written.
        with contextlib.suppress(Exception):
            rec.close()


class Recorder:
    """Buffers a session's new events and appends them to the vault (see the module doc).

    Thread-safe: events may be added from any thread while the autosave thread flushes.
    """

    def __init__(
        self, vault: RecordingVault, session_id: uuid.UUID, *, append: AppendOps, autosave: float | None = 5.0
    ) -> None:
        if autosave is not None and autosave <= 0:
            raise ValueError("autosave is a number of seconds over 0, or None")
        self.vault = vault
        self.session_id = session_id
        # Not parse_events again: it stamps times, and the events were validated when added.
        self._append = append
        # Validated operations (parse_events) and the number of events they came from.
        self._pending: list[dict[str, Any]] = []
        self._events = 0
        self._lock = threading.Lock()  # guards _pending and _events
        self._flushing = threading.Lock()  # one flush at a time, in order
        self._closed = threading.Event()
        self._error: BaseException | None = None
        self.flushed = 0  # events appended so far
        self._thread: threading.Thread | None = None
        if autosave is not None:
            self._thread = threading.Thread(
                target=self._autosave, args=(autosave,), name=f"sessionseal-autosave-{session_id}", daemon=True
            )
            self._thread.start()
        _OPEN.add(self)

    # -- adding events ---------------------------------------------------------------

    def add(self, event: Mapping[str, Any]) -> None:
        """Buffer one event (the shapes :meth:`Vault.append` takes); validated now.

        :raises InvalidInput: the event is invalid (nothing is buffered).
        """
        ops = parse_events([event], str(self.session_id))  # fail at the call that is wrong
        if self._closed.is_set():
            raise RuntimeError("this recorder is closed")
        with self._lock:
            self._pending.extend(ops)
            self._events += 1

    def append_message(self, role: str, content: Any, **fields: Any) -> None:
        """A message: *content* is text or a list of content blocks; *fields* as in ``Message``."""
        self.add({"type": "message", "role": role, "content": content, **fields})

    def append_tool_call(self, name: str, arguments: Any = None, *, id: str | None = None) -> None:
        """A call to a tool (an assistant message with a tool-call block, and a running tool use)."""
        self.add({"type": "tool_call", "name": name, "arguments": arguments, "id": id})

    def append_tool_result(self, tool_call_id: str | None, content: Any, *, is_error: bool = False) -> None:
        """What a tool returned (a ``tool`` message; the call's tool use is finished)."""
        self.add({"type": "tool_result", "tool_call_id": tool_call_id, "content": content, "is_error": is_error})

    def update_state(self, **fields: Any) -> None:
        """Replace state fields: ``working_directory``, ``environment``, ``open_files``,
        ``processes``, ``config``, ``status``... (see :data:`sessionseal._events.SET_FIELDS`)."""
        self.add({"type": "state", **fields})

    # -- writing -------------------------------------------------------------------

    def flush(self) -> int:
        """Append what is buffered, as one group; return how many events were written.

        On failure the events stay buffered (in order) for the next flush, and the error
        is raised.
        """
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, []
                count, self._events = self._events, 0
            if not batch:
                return 0
            try:
                self._append(self.session_id, batch, count)
            except BaseException:
                with self._lock:
                    self._pending[:0] = batch
                    self._events += count
                raise
            self.flushed += count
            return count

    def checkpoint(self, name: str | None = None) -> Checkpoint:
        """Flush, then save a named restore point of the session as it is now
        (:meth:`Vault.checkpoint`)."""
        self.flush()  # everything added before this call is in the checkpoint
        return self.vault.checkpoint(self.session_id, name)

    def _autosave(self, interval: float) -> None:
        while not self._closed.wait(interval):
            try:
                self.flush()
            except Exception as exc:  # kept, and raised by the next close
                self._error = exc

    def close(self) -> None:
        """Stop autosaving and flush what is left.  Idempotent."""
        self._closed.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        _OPEN.discard(self)
        self.flush()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Flushed even when the block raised: what was recorded before the error is kept.
        self.close()


class AsyncRecorder:
    """The asyncio form of :class:`Recorder`: flushes run in a worker thread, and autosave is
    an asyncio task, so the event loop is never blocked by encryption or fsync."""

    def __init__(self, recorder: Recorder, *, autosave: float | None = 5.0) -> None:
        # *recorder* has no autosave thread of its own: autosave is this object's asyncio task.
        self._rec = recorder
        self._interval = autosave
        self._task: asyncio.Task[None] | None = None
        self.session_id = recorder.session_id

    @property
    def flushed(self) -> int:
        """Events appended so far."""
        return self._rec.flushed

    def add(self, event: Mapping[str, Any]) -> None:
        """See :meth:`Recorder.add` (buffering is quick and does not block)."""
        self._rec.add(event)

    def append_message(self, role: str, content: Any, **fields: Any) -> None:
        """See :meth:`Recorder.append_message`."""
        self._rec.append_message(role, content, **fields)

    def append_tool_call(self, name: str, arguments: Any = None, *, id: str | None = None) -> None:
        """See :meth:`Recorder.append_tool_call`."""
        self._rec.append_tool_call(name, arguments, id=id)

    def append_tool_result(self, tool_call_id: str | None, content: Any, *, is_error: bool = False) -> None:
        """See :meth:`Recorder.append_tool_result`."""
        self._rec.append_tool_result(tool_call_id, content, is_error=is_error)

    def update_state(self, **fields: Any) -> None:
        """See :meth:`Recorder.update_state`."""
        self._rec.update_state(**fields)

    async def flush(self) -> int:
        """See :meth:`Recorder.flush`."""
        return await asyncio.to_thread(self._rec.flush)

    async def checkpoint(self, name: str | None = None) -> Checkpoint:
        """See :meth:`Recorder.checkpoint`."""
        return await asyncio.to_thread(self._rec.checkpoint, name)

    async def _autosave(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush()
            except Exception as exc:  # kept, and raised by close
                self._rec._error = exc

    async def close(self) -> None:
        """Stop autosaving and flush what is left."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        await asyncio.to_thread(self._rec.close)

    async def __aenter__(self) -> AsyncRecorder:
        if self._interval is not None:
            self._task = asyncio.create_task(self._autosave(self._interval))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
