"""Google ADK's ``BaseSessionService``, kept in a sessionseal vault
(docs/integrations/google-adk.md).

``Runner(agent=..., app_name=..., session_service=SealedSessionService(vault))``, or without
code: ``adk web --session_service_uri=sessionseal://`` with a ``services.yaml`` beside the
agents that names :class:`SealedSessionService` for the scheme (ADK's service registry; or
call :func:`register` in a ``services.py``).

ADK's ``BaseSessionService`` is an abstract class whose ``append_event`` carries the state
semantics every service shares (``temp:`` state applied to the live session, never stored), so
this module subclasses it: unlike the other adapters, it imports ADK when it is imported.

What is stored where (one vault per application; its sessions are listed, searched, audited,
kept and erased like any other):

* an ADK session ``(app_name, user_id, session_id)``: one vault session, its id a uuid5 of the
  three, tagged ``google-adk``, ``adk-app:<app_name>`` and ``adk-user:<user_id>`` (the last two
  when they fit a tag); its events are its source records, ``{"record": <the event's JSON>}``,
  verbatim but sanitized, in append order, and its ``source`` holds the three names, the
  session's own state, the event count and ``last_update_time``;
* ``app:`` state: one vault session per app, ``user:`` state one per ``(app, user)``, their
  state in their ``source`` (shared by every session of the app, of the user);
* ``temp:`` state: nowhere (ADK's base class trims it from the event before it is stored).

A resumed session sees ``[REDACTED:...]`` where an event or a state value held a secret.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlparse

import orjson
from google.adk.errors._stale_session_error import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig, ListSessionsResponse
from google.adk.sessions.session import Session
from google.adk.sessions.state import State

from .._async import AsyncVault
from .._fields import MAX_TAG
from .._vault import Vault
from ..errors import InvalidInput, SessionNotFound
from . import _core

if TYPE_CHECKING:
    from ..models import Session as VaultSession

__all__ = ["NAMESPACE", "SCHEME", "TAG", "TOOL", "SealedSessionService", "register"]

#: Vault session ids: uuid5 of the JSON array ``[app_name, user_id, session_id]`` (a session),
#: ``["app:", app_name]`` (app state) or ``["user:", app_name, user_id]`` (user state).
NAMESPACE: Final = uuid.UUID("9b2f4c1e-5a7d-5e3b-8c6f-1d0e2a4b7c93")
#: ``source.tool`` of the sessions this service writes.
TOOL: Final = "google-adk"
#: The tag every ADK session carries (state sessions carry ``google-adk-state``).
TAG: Final = "google-adk"
STATE_TAG: Final = "google-adk-state"
#: The URI scheme ``register`` (or a ``services.yaml``) gives this service.
SCHEME: Final = "sessionseal"

_STALE: Final = (
    "The session has been modified in storage since it was loaded. "
    "Please reload the session before appending more events."
)


def _vid(*parts: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, json.dumps(list(parts), ensure_ascii=False, separators=(",", ":")))


def _tag(prefix: str, name: str) -> list[str]:
    """``prefix:name`` when it is a valid tag (no blanks, 64 characters at most); else none
    (the listing then selects by the ``source``, which always has the name)."""
    tag = f"{prefix}:{name}"
    return [tag] if len(tag) <= MAX_TAG and not any(c.isspace() for c in tag) else []


def _marker(stamp: _core.Stamp) -> str:
    return f"sessionseal:{stamp[0]}:{stamp[1]}"


def _names(app_name: Any, user_id: Any) -> tuple[str, str]:
    if not isinstance(app_name, str) or not app_name or not isinstance(user_id, str) or not user_id:
        raise InvalidInput("an ADK session has a non-empty string app_name and user_id")
    return app_name, user_id


class SealedSessionService(BaseSessionService):
    """An ADK session service in a sessionseal vault: every method runs the vault in a worker
    thread (``asyncio.to_thread``), so the event loop never waits on a disk, a lock or the
    keychain.

    *vault*: an open ``Vault`` or ``AsyncVault``.  Without one, the vault is opened on first
    use from *uri* (``sessionseal://`` + a path, as ADK's registry passes it: ``sessionseal://``
    is ``SESSIONSEAL_VAULT`` or the user's vault, ``sessionseal:///abs/path`` and
    ``sessionseal://~/path`` name one), its key in the OS keychain, or its passphrase in
    ``SESSIONSEAL_PASSPHRASE`` for a passphrase vault.  Other keyword arguments (ADK's registry
    passes ``agents_dir``) are accepted and ignored.
    """

    def __init__(self, vault: Vault | AsyncVault | None = None, *, uri: str | None = None, **_ignored: Any) -> None:
        self._vault: Vault | None = _core.sync_vault(vault) if vault is not None else None
        #: Whether the vault is this service's own (opened from the URI), to close.
        self._owned = vault is None
        self._path = _path_of(uri) if vault is None else None
        self._opening = threading.Lock()
        # The event keys stored per session, with the stored version they describe.
        self._seen: _core.Known[set[str]] = _core.Known()

    @property
    def vault(self) -> Vault:
        """The vault, opened on first use when the service was made from a URI."""
        if self._vault is None:
            with self._opening:
                if self._vault is None:
                    passphrase = os.environ.get("SESSIONSEAL_PASSPHRASE")
                    self._vault = _core.open_vault(self._path, passphrase=passphrase)
        return self._vault

    async def close(self) -> None:
        """Close the vault if this service opened it (from a URI); one it was given is the
        caller's to close.  The service opens it again on its next use."""
        if not self._owned:
            return
        with self._opening:
            vault, self._vault = self._vault, None
        if vault is not None:
            await asyncio.to_thread(vault.close)

    @staticmethod
    def session_id_for(app_name: str, user_id: str, session_id: str) -> uuid.UUID:
        """The vault session that holds an ADK session."""
        return _vid(app_name, user_id, session_id)

    @staticmethod
    def state_id_for(app_name: str, user_id: str | None = None) -> uuid.UUID:
        """The vault session that holds an app's ``app:`` state (*user_id* None), or a user's
        ``user:`` state: ``Vault.delete`` of it crypto-erases that state."""
        return _vid("app:", app_name) if user_id is None else _vid("user:", app_name, user_id)

    # -- the service --------------------------------------------------------------------

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        app_name, user_id = _names(app_name, user_id)
        sid = session_id.strip() if isinstance(session_id, str) else None
        if session_id is not None and not isinstance(session_id, str):
            raise InvalidInput("a session_id is a string")
        deltas = _deltas(state or {})
        out = await asyncio.to_thread(self._create, app_name, user_id, sid or str(uuid.uuid4()), deltas)
        return out

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        app_name, user_id = _names(app_name, user_id)
        if not isinstance(session_id, str):
            raise InvalidInput("a session_id is a string")
        return await asyncio.to_thread(self._get, app_name, user_id, session_id.strip(), config)

    async def list_sessions(self, *, app_name: str, user_id: str | None = None) -> ListSessionsResponse:
        if not isinstance(app_name, str) or not app_name or (user_id is not None and not isinstance(user_id, str)):
            raise InvalidInput("list_sessions takes a non-empty string app_name and a string user_id or None")
        return await asyncio.to_thread(self._list, app_name, user_id)

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        """A crypto-erase of the session (``Vault.delete``); its app and user state stay (they
        are shared).  An unknown session is not an error."""
        app_name, user_id = _names(app_name, user_id)
        if not isinstance(session_id, str):
            raise InvalidInput("a session_id is a string")
        await asyncio.to_thread(self._delete, app_name, user_id, session_id.strip())

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        app_name, user_id = _names(app_name, user_id)
        return await asyncio.to_thread(self._state, self.state_id_for(app_name, user_id))

    async def append_event(self, session: Session, event: Event) -> Event:
        """Store *event* after the session's events, as ADK's base class does it in memory:
        partial events are not stored, ``temp:`` state is applied to *session* and trimmed
        from the event, ``app:``/``user:`` state goes to the shared state sessions.

        :raises SessionNotFoundError: the session is not stored (never created, or deleted).
        :raises StaleSessionError: the session was written since *session* was read from it.
        """
        if event.partial:
            return event
        self._apply_temp_state(session, event)
        event = self._trim_temp_delta_state(event)
        record = orjson.loads(event.model_dump_json(exclude_none=True))
        deltas = _deltas(event.actions.state_delta if event.actions else {})
        stored, marker = await asyncio.to_thread(
            self._append,
            (session.app_name, session.user_id, session.id),
            record,
            deltas,
            session._storage_update_marker,  # ADK's revision marker (a private attribute)
            session.last_update_time,
        )
        if not stored:
            return event  # an equal event, delivered again: stored once, applied once
        session.last_update_time = event.timestamp
        session._storage_update_marker = marker
        return self._commit_event_to_session(session, event)

    # -- in the worker thread -----------------------------------------------------------

    def _state(self, sid: uuid.UUID) -> dict[str, Any]:
        state = (_core.source_of(self.vault, sid) or {}).get("state")
        return dict(state) if isinstance(state, dict) else {}

    def _merged(self, app_name: str, user_id: str, own: Mapping[str, Any]) -> dict[str, Any]:
        merged = dict(own)
        merged.update({State.APP_PREFIX + k: v for k, v in self._state(self.state_id_for(app_name)).items()})
        merged.update({State.USER_PREFIX + k: v for k, v in self._state(self.state_id_for(app_name, user_id)).items()})
        return merged

    def _share(self, app_name: str, user_id: str, deltas: dict[str, dict[str, Any]], now: float) -> None:
        """Apply ``app:`` and ``user:`` deltas to their state sessions (each an append under
        that session's lock: two processes' deltas to one scope both land)."""
        for scope, user in (("app", None), ("user", user_id)):
            delta = deltas[scope]
            if delta:
                self._share_one(scope, app_name, user, delta, now)

    def _share_one(self, scope: str, app_name: str, user: str | None, delta: dict[str, Any], now: float) -> None:
        sid = self.state_id_for(app_name, user)
        base: dict[str, Any] = {"tool": TOOL, "scope": scope, "app_name": app_name}
        tags = [STATE_TAG, *_tag("adk-app", app_name)]
        if user is not None:
            base["user_id"] = user
            tags += _tag("adk-user", user)

        def new() -> VaultSession:
            return _core.new_session(sid, tags, {**base, "state": delta, "mtime": now}, [], [])

        def more(summary: dict[str, Any], _read: Any) -> _core.Ops:
            old = summary.get("source")
            source = dict(old) if isinstance(old, dict) else dict(base)
            state = source.get("state")
            # dict.update semantics, as ADK's services: a value replaces the stored one (a
            # dict is not merged into it), None is stored (the key stays).
            source["state"] = {**(state if isinstance(state, dict) else {}), **delta}
            source["mtime"] = now
            return [{"op": "set", "value": {"source": source}}]

        _core.upsert(self.vault, sid, new, more, count=lambda: 0)

    def _create(self, app_name: str, user_id: str, session_id: str, deltas: dict[str, dict[str, Any]]) -> Session:
        sid = self.session_id_for(app_name, user_id, session_id)
        if self.vault.parts.store.exists(sid):
            raise AlreadyExistsError(f"Session with id {session_id} already exists.")
        now = time.time()
        self._share(app_name, user_id, deltas, now)
        own = deltas["session"]

        def new() -> VaultSession:
            source = {
                "tool": TOOL,
                "app_name": app_name,
                "user_id": user_id,
                "session_id": session_id,
                "state": own,
                "events": 0,
                "last_update_time": now,
            }
            tags = [TAG, *_tag("adk-app", app_name), *_tag("adk-user", user_id)]
            return _core.new_session(sid, tags, source, [], [])

        def taken(_summary: dict[str, Any], _read: Any) -> _core.Ops:
            # Another writer (a process) created it since the check above.
            raise AlreadyExistsError(f"Session with id {session_id} already exists.")

        _, after = _core.upsert(self.vault, sid, new, taken, count=lambda: 0)
        assert after is not None  # the session was just stored
        self._seen.put(sid, after, set())
        # What the session holds as stored (sanitized), as get_session will return it.
        source = _core.source_of(self.vault, sid) or {}
        session = Session(
            id=session_id,
            app_name=app_name,
            user_id=user_id,
            state=self._merged(app_name, user_id, source.get("state") or {}),
            last_update_time=float(source.get("last_update_time") or now),
        )
        session._storage_update_marker = _marker(after)
        return session

    def _get(self, app_name: str, user_id: str, session_id: str, config: GetSessionConfig | None) -> Session | None:
        sid = self.session_id_for(app_name, user_id, session_id)
        store = self.vault.parts.store
        # The version read: the summary before and after the document; when another writer
        # appended in between, the session carries no revision marker (the staleness check
        # then falls back on last_update_time, as ADK's own services do).
        try:
            before = _core.stamp_of(store.summary(sid))
        except (FileNotFoundError, SessionNotFound):
            return None
        n = config.num_recent_events if config is not None else None
        after_time = config.after_timestamp if config is not None else None
        # The latest events alone, from the latest append groups when they hold them (each
        # event is its own group): a long session resumed with a window costs O(window).
        recent = [] if n == 0 else _core.recent_records(self.vault, sid, n) if n else None
        if recent is not None:
            entries = [r["record"] for r in recent]
            try:
                summary = store.summary(sid)
            except (FileNotFoundError, SessionNotFound):
                return None
            after: _core.Stamp | None = _core.stamp_of(summary)
            source = summary.get("source")
        else:
            doc = _core.document(self.vault, sid)
            if doc is None:
                return None
            try:
                after = _core.stamp_of(store.summary(sid))
            except (FileNotFoundError, SessionNotFound):
                after = None
            entries = [r["record"] for r in _core.records(doc)]
            if after == before:
                self._seen.put(sid, before, {_key(e) for e in entries})
            source = doc.get("source")
            if n is not None:
                entries = entries[max(0, len(entries) - n) :] if n else []
        if after_time is not None:
            entries = [e for e in entries if float(e.get("timestamp") or 0) >= after_time]
        if not isinstance(source, dict):
            source = {}
        session = Session(
            id=session_id,
            app_name=app_name,
            user_id=user_id,
            state=self._merged(app_name, user_id, source.get("state") or {}),
            events=[_event(e) for e in entries],
            last_update_time=float(source.get("last_update_time") or 0.0),
        )
        session._storage_update_marker = _marker(before) if after == before else None
        return session

    def _list(self, app_name: str, user_id: str | None) -> ListSessionsResponse:
        tags = [TAG, *_tag("adk-app", app_name), *(_tag("adk-user", user_id) if user_id is not None else [])]

        def mine(source: dict[str, Any]) -> bool:
            return (
                source.get("tool") == TOOL
                and "scope" not in source
                and source.get("app_name") == app_name
                and (user_id is None or source.get("user_id") == user_id)
                and isinstance(source.get("session_id"), str)
                and isinstance(source.get("user_id"), str)
            )

        app_state = self._state(self.state_id_for(app_name))
        user_states: dict[str, dict[str, Any]] = {}
        out = []
        for _, source in _core.sources(self.vault, tags, mine):
            user = source["user_id"]
            if user not in user_states:
                user_states[user] = self._state(self.state_id_for(app_name, user))
            state = dict(source.get("state") or {})
            state.update({State.APP_PREFIX + k: v for k, v in app_state.items()})
            state.update({State.USER_PREFIX + k: v for k, v in user_states[user].items()})
            out.append(
                Session(
                    id=source["session_id"],
                    app_name=app_name,
                    user_id=user,
                    state=state,
                    last_update_time=float(source.get("last_update_time") or 0.0),
                )
            )
        out.sort(key=lambda s: (s.last_update_time, s.user_id, s.id))
        return ListSessionsResponse(sessions=out)

    def _delete(self, app_name: str, user_id: str, session_id: str) -> None:
        sid = self.session_id_for(app_name, user_id, session_id)
        self._seen.drop(sid)
        _core.erase(self.vault, sid)

    def _append(
        self,
        names: tuple[str, str, str],
        record: dict[str, Any],
        deltas: dict[str, dict[str, Any]],
        marker: str | None,
        last_update_time: float,
    ) -> tuple[bool, str | None]:
        app_name, user_id, session_id = names
        sid = self.session_id_for(*names)
        key = _key(record)
        timestamp = float(record.get("timestamp") or time.time())
        seen = self._seen.take(sid)
        stored = False

        def more(summary: dict[str, Any], read: Callable[[], dict[str, Any]]) -> _core.Ops:
            nonlocal seen, stored
            stamp = _core.stamp_of(summary)
            old = summary.get("source")
            source: dict[str, Any] = dict(old) if isinstance(old, dict) else {}
            if marker is not None and marker != _marker(stamp):
                if seen is not None and seen[0] == stamp and key in seen[1]:
                    return []  # this very event, stored by the append that moved the version
                raise StaleSessionError(_STALE)
            if marker is None and float(source.get("last_update_time") or 0.0) > last_update_time:
                raise StaleSessionError(_STALE)
            if seen is None or seen[0] != stamp:
                seen = (stamp, {_key(r["record"]) for r in _core.records(read())})
            if key in seen[1]:
                return []
            stored = True
            state = source.get("state")
            source["state"] = {**(state if isinstance(state, dict) else {}), **deltas["session"]}
            source["events"] = int(source.get("events") or 0) + 1
            source["last_update_time"] = timestamp
            return _core.append_ops([{"record": record}], _core.messages([record], _message), source)

        action, after = _core.upsert(self.vault, sid, lambda: None, more, count=lambda: 1)
        if after is None:
            raise SessionNotFoundError(f"Session {session_id} not found.")
        if seen is not None:
            known = seen[1]
            if stored:
                known.add(key)
            self._seen.put(sid, after, known)
        if stored:
            self._share(app_name, user_id, deltas, timestamp)
        return stored, _marker(after) if stored or action == "none" else None


def _deltas(state: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A state mapping split by scope, prefixes removed; ``temp:`` keys dropped (ADK's
    ``extract_state_delta``), as JSON."""
    out: dict[str, dict[str, Any]] = {"app": {}, "user": {}, "session": {}}
    for k, v in state.items():
        if not isinstance(k, str):
            raise InvalidInput("state keys are strings")
        if k.startswith(State.APP_PREFIX):
            out["app"][k.removeprefix(State.APP_PREFIX)] = v
        elif k.startswith(State.USER_PREFIX):
            out["user"][k.removeprefix(State.USER_PREFIX)] = v
        elif not k.startswith(State.TEMP_PREFIX):
            out["session"][k] = v
    try:
        return dict(orjson.loads(orjson.dumps(out)))
    except TypeError:
        # As ADK's persistent services (make_json_safe_state): a value JSON cannot hold (a
        # callable, say) is stored as its text rather than the event being refused.
        from pydantic_core import to_jsonable_python

        try:
            return dict(orjson.loads(orjson.dumps(to_jsonable_python(out, fallback=str))))
        except TypeError:  # an integer past 64 bits, a lone surrogate
            raise InvalidInput("a state value cannot be stored as JSON") from None


def _key(record: Mapping[str, Any]) -> str:
    """What makes two deliveries of an event one event: its id, invocation, author and time
    (distinct events that share an id, as tests that fix the id make them, are all kept)."""
    return json.dumps(
        [record.get("id"), record.get("invocation_id"), record.get("author"), record.get("timestamp")],
        ensure_ascii=False,
    )


def _event(record: Mapping[str, Any]) -> Event:
    """The ADK event of a stored record.  A field the sanitizer rewrote into something ADK's
    model refuses (a base64 ``bytes`` field whose text matched a secret rule, say) is left
    out of the event returned, not the whole event: it stays in the vault as stored."""
    from pydantic import ValidationError

    data: Any = record
    for _ in range(16):
        try:
            return Event.model_validate_json(orjson.dumps(data))
        except ValidationError as exc:
            if data is record:
                data = orjson.loads(orjson.dumps(record))  # a copy to cut
            if not all(_cut(data, err["loc"]) for err in exc.errors()):
                break
    raise InvalidInput("a stored event is no longer a valid ADK event (run 'sessionseal verify')")


def _cut(data: Any, loc: tuple[int | str, ...]) -> bool:
    """Remove the value at *loc* from *data*; whether there was one."""
    for step in loc[:-1]:
        inside = (isinstance(data, dict) and step in data) or (
            isinstance(data, list) and isinstance(step, int) and 0 <= step < len(data)
        )
        if not inside:
            return False
        data = data[step]
    last = loc[-1] if loc else None
    if isinstance(data, dict) and last in data:
        del data[last]
        return True
    return False


def _message(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The vault message of an event (what ``list``, ``show`` and ``search`` read): its text
    parts, function calls (an assistant's tool calls) and function responses (tool results);
    the user's events are the user's, every other author's the assistant's."""
    content = record.get("content")
    if not isinstance(content, dict):
        return None
    blocks: list[dict[str, Any]] = []
    role = "user" if content.get("role") == "user" else "assistant"
    for part in content.get("parts") or []:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str) and not part.get("thought"):
            blocks.append({"type": "text", "text": part["text"]})
        call = part.get("function_call")
        if isinstance(call, dict) and isinstance(call.get("name"), str):
            blocks.append(
                {"type": "tool_call", "id": call.get("id"), "name": call["name"], "arguments": call.get("args")}
            )
        response = part.get("function_response")
        if isinstance(response, dict):
            role = "tool"
            text = orjson.dumps(response.get("response")).decode()
            blocks.append({"type": "tool_result", "tool_call_id": response.get("id"), "content": text})
    return {"role": role, "content": blocks} if blocks else None


def _path_of(uri: str | None) -> str | None:
    """The vault path of a ``sessionseal://`` URI (None: ``SESSIONSEAL_VAULT`` or the user's).

    :raises InvalidInput: another scheme, or a query or fragment (a passphrase never goes in a
        URI: ADK logs it).
    """
    if uri is None:
        return os.environ.get("SESSIONSEAL_VAULT") or None
    parsed = urlparse(uri)
    if parsed.scheme != SCHEME or parsed.query or parsed.fragment or parsed.params:
        raise InvalidInput("a sessionseal session service URI is sessionseal:// followed by a vault path, or nothing")
    path = unquote(parsed.netloc + parsed.path)
    if not path or path == "/":
        return os.environ.get("SESSIONSEAL_VAULT") or None
    return os.path.expanduser(path)


def register(scheme: str = SCHEME) -> None:
    """Register :class:`SealedSessionService` under *scheme* in ADK's service registry (for a
    ``services.py``; a ``services.yaml`` does it without code)."""
    from google.adk.cli.service_registry import get_service_registry

    def factory(uri: str, **kwargs: Any) -> SealedSessionService:
        return SealedSessionService(uri=uri.replace(f"{scheme}:", f"{SCHEME}:", 1), **kwargs)

    get_service_registry().register_session_service(scheme, factory)
