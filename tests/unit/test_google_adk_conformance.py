"""Google ADK's session-service contract, held by sessionseal's SealedSessionService.

ADK ships no session-service tests in its wheel or its sdist (google-adk 2.13.0: the sdist
holds src/ only). Its repository's shared contract tests (tests/unittests/sessions/
test_session_service.py, every test taking the ``session_service`` fixture of
tests/unittests/sessions/_conformance.py, which every backend must pass) are restated here
check for check against this service, each under the name it has there; the backend-specific
ones (SQL engines, rollbacks, the in-memory copy modes) have no counterpart.  .ci/run installs
ADK in the SDK venv and requires these tests there (SESSIONSEAL_REQUIRE_SDK); elsewhere they
are skipped."""

from __future__ import annotations

import asyncio
import importlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sessionseal import PassphraseProvider, Vault

pytestmark = pytest.mark.sdk


def _sdk(name: str) -> ModuleType:
    if os.environ.get("SESSIONSEAL_REQUIRE_SDK"):
        return importlib.import_module(name)
    module: ModuleType = pytest.importorskip(name)
    return module


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture
def adk() -> ModuleType:
    _sdk("google.adk")
    return _sdk("sessionseal.integrations.google_adk")


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    v = Vault.init(tmp_path / "vault", key_provider=PassphraseProvider("pw", log2_n=14))
    try:
        yield v
    finally:
        v.close()


@pytest.fixture
def service(adk: ModuleType, vault: Vault) -> Any:
    return adk.SealedSessionService(vault)


def Event(**kwargs: Any) -> Any:  # ADK's class, made on first use
    return _sdk("google.adk.events.event").Event(**kwargs)


def Actions(**kwargs: Any) -> Any:
    return _sdk("google.adk.events.event_actions").EventActions(**kwargs)


def types() -> ModuleType:
    return _sdk("google.genai.types")


def test_get_empty_session(service: Any) -> None:
    assert run(service.get_session(app_name="my_app", user_id="test_user", session_id="123")) is None


def test_create_get_session(service: Any) -> None:
    state = {"key": "value"}
    session = run(service.create_session(app_name="my_app", user_id="test_user", state=state))
    assert session.app_name == "my_app" and session.user_id == "test_user" and session.id
    assert session.state == state and session.last_update_time <= time.time()
    got = run(service.get_session(app_name="my_app", user_id="test_user", session_id=session.id))
    assert got == session
    run(service.delete_session(app_name="my_app", user_id="test_user", session_id=session.id))
    assert run(service.get_session(app_name="my_app", user_id="test_user", session_id=session.id)) is None


def test_create_and_list_sessions(service: Any) -> None:
    ids = [f"session{i}" for i in range(5)]
    for sid in ids:
        run(
            service.create_session(app_name="my_app", user_id="test_user", session_id=sid, state={"key": "value" + sid})
        )
    sessions = run(service.list_sessions(app_name="my_app", user_id="test_user")).sessions
    assert {s.id for s in sessions} == set(ids) and len(sessions) == 5
    assert all(s.state == {"key": "value" + s.id} for s in sessions)


def test_list_sessions_ordered_by_last_update_time(service: Any) -> None:
    for sid in ("a", "b", "c"):
        run(service.create_session(app_name="my_app", user_id="u", session_id=sid))
    a = run(service.get_session(app_name="my_app", user_id="u", session_id="a"))
    # A timestamp past the others' (ADK's test sleeps 10 ms; a fixed step does not depend on speed).
    run(service.append_event(a, Event(invocation_id="inv", author="user", timestamp=time.time() + 10)))
    assert [s.id for s in run(service.list_sessions(app_name="my_app", user_id="u")).sessions] == ["b", "c", "a"]


def test_list_sessions_all_users(service: Any) -> None:
    for user, sid in (("user1", "session1a"), ("user1", "session1b"), ("user2", "session2a")):
        run(service.create_session(app_name="my_app", user_id=user, session_id=sid, state={"key": "value" + sid[7:]}))
    one = {s.id: s for s in run(service.list_sessions(app_name="my_app", user_id="user1")).sessions}
    assert {k: s.state for k, s in one.items()} == {"session1a": {"key": "value1a"}, "session1b": {"key": "value1b"}}
    [two] = run(service.list_sessions(app_name="my_app", user_id="user2")).sessions
    assert (two.id, two.state) == ("session2a", {"key": "value2a"})
    every = run(service.list_sessions(app_name="my_app", user_id=None)).sessions
    assert {s.id: s.state["key"] for s in every} == {
        "session1a": "value1a",
        "session1b": "value1b",
        "session2a": "value2a",
    }
    assert run(service.list_sessions(app_name="other_app")).sessions == []


def test_app_state_is_shared_by_all_users_of_app(service: Any) -> None:
    s1 = run(service.create_session(app_name="my_app", user_id="u1", session_id="s1", state={"app:k1": "v1"}))
    run(
        service.append_event(
            s1, Event(invocation_id="inv1", author="user", actions=Actions(state_delta={"app:k2": "v2"}))
        )
    )
    s2 = run(service.create_session(app_name="my_app", user_id="u2", session_id="s2"))
    assert s2.state == {"app:k1": "v1", "app:k2": "v2"}
    got = run(service.get_session(app_name="my_app", user_id="u1", session_id="s1"))
    assert got.state["app:k1"] == "v1" and got.state["app:k2"] == "v2"


def test_user_state_is_shared_only_by_user_sessions(service: Any) -> None:
    s1 = run(service.create_session(app_name="my_app", user_id="u1", session_id="s1", state={"user:k1": "v1"}))
    run(
        service.append_event(
            s1, Event(invocation_id="inv1", author="user", actions=Actions(state_delta={"user:k2": "v2"}))
        )
    )
    s1b = run(service.create_session(app_name="my_app", user_id="u1", session_id="s1b"))
    assert s1b.state == {"user:k1": "v1", "user:k2": "v2"}
    assert run(service.create_session(app_name="my_app", user_id="u2", session_id="s2")).state == {}


def test_session_state_is_not_shared(service: Any) -> None:
    s1 = run(service.create_session(app_name="my_app", user_id="u1", session_id="s1", state={"sk1": "v1"}))
    run(
        service.append_event(s1, Event(invocation_id="inv1", author="user", actions=Actions(state_delta={"sk2": "v2"})))
    )
    got = run(service.get_session(app_name="my_app", user_id="u1", session_id="s1"))
    assert got.state == {"sk1": "v1", "sk2": "v2"}
    assert run(service.create_session(app_name="my_app", user_id="u1", session_id="s1b")).state == {}


@pytest.mark.parametrize(
    ("before", "delta", "other"),
    [
        # test_dict_valued_state_delta_replaces_stored_value: replaced, not deep-merged.
        ({"profile": {"name": "ada", "role": "admin"}}, {"profile": {"name": "bob"}}, None),
        # test_none_valued_state_delta_is_stored_not_dropped: None is stored, the key stays.
        ({"flag": True}, {"flag": None}, None),
        # test_boolean_state_survives_unrelated_state_delta.
        ({"flag": False}, {"new_flag": True}, None),
        # test_app_state_dict_valued_delta_replaces_stored_value: seen from another user's session.
        ({"app:cfg": {"name": "ada", "role": "admin"}}, {"app:cfg": {"name": "bob"}}, "u2"),
        # test_user_state_none_valued_delta_is_stored_not_dropped: seen from another session of the user.
        ({"user:pref": "dark_mode"}, {"user:pref": None}, "u1"),
    ],
)
def test_state_deltas_have_dict_update_semantics(
    service: Any, before: dict[str, Any], delta: dict[str, Any], other: str | None
) -> None:
    session = run(service.create_session(app_name="my_app", user_id="u1", session_id="s1", state=before))
    run(service.append_event(session, Event(invocation_id="inv1", author="user", actions=Actions(state_delta=delta))))
    want = {**before, **delta}
    if other is None:
        reloaded = run(service.get_session(app_name="my_app", user_id="u1", session_id="s1"))
    else:
        reloaded = run(service.create_session(app_name="my_app", user_id=other, session_id="s-other"))
    for k, v in want.items():
        assert k in reloaded.state and reloaded.state[k] == v and type(reloaded.state[k]) is type(v)
        assert k in session.state and session.state[k] == v


def test_temp_state_is_not_persisted_in_state_or_events(service: Any, vault: Vault) -> None:
    session = run(service.create_session(app_name="my_app", user_id="u1", session_id="s1", state={"temp:c": 0}))
    event = Event(invocation_id="inv1", author="user", actions=Actions(state_delta={"temp:k1": "v1", "sk": "v2"}))
    run(service.append_event(session, event))
    assert session.state["temp:k1"] == "v1" and session.state["sk"] == "v2"  # the live session has it
    assert "temp:k1" not in event.actions.state_delta and event.actions.state_delta["sk"] == "v2"
    got = run(service.get_session(app_name="my_app", user_id="u1", session_id="s1"))
    assert got.state == {"sk": "v2"} and "temp:" not in got.events[0].model_dump_json()
    # Nowhere in the vault: neither the session nor a state session holds it.
    for summary in vault.list():
        assert b"temp:" not in vault.load_json(summary.id)


def test_temp_state_visible_across_sequential_events(service: Any) -> None:
    session = run(service.create_session(app_name="my_app", user_id="u1", session_id="s_seq"))
    event = Event(invocation_id="inv1", author="agent1", actions=Actions(state_delta={"temp:output": "from a1"}))
    run(service.append_event(session, event))
    assert session.state["temp:output"] == "from a1" and "temp:output" not in event.actions.state_delta


def test_get_session_respects_user_id(service: Any) -> None:
    s1 = run(service.create_session(app_name="my_app", user_id="u1", session_id="s1"))
    run(service.append_event(s1, Event(invocation_id="inv1", author="user")))
    run(service.create_session(app_name="my_app", user_id="u2", session_id="s1"))
    got = run(service.get_session(app_name="my_app", user_id="u2", session_id="s1"))
    assert got.user_id == "u2" and got.events == []


def test_create_session_with_existing_id_raises_error(service: Any) -> None:
    errors = _sdk("google.adk.errors.already_exists_error")
    run(service.create_session(app_name="my_app", user_id="u", session_id="existing", state={"keep": "original"}))
    with pytest.raises(errors.AlreadyExistsError):
        run(service.create_session(app_name="my_app", user_id="u", session_id="existing"))
    # test_create_session_with_padded_duplicate_id_raises_error: the id is stripped first.
    with pytest.raises(errors.AlreadyExistsError):
        run(service.create_session(app_name="my_app", user_id="u", session_id="  existing  ", state={"keep": "x"}))
    assert run(service.get_session(app_name="my_app", user_id="u", session_id="existing")).state == {"keep": "original"}
    # test_padded_session_id_reads_and_deletes: a padded id reads and deletes the stripped one.
    assert run(service.get_session(app_name="my_app", user_id="u", session_id=" existing ")) is not None
    run(service.delete_session(app_name="my_app", user_id="u", session_id=" existing "))
    assert run(service.get_session(app_name="my_app", user_id="u", session_id="existing")) is None


def test_create_session_with_blank_id_generates_one(service: Any) -> None:
    assert run(service.create_session(app_name="my_app", user_id="u", session_id="   ")).id.strip()


def test_create_session_concurrent_same_id_raises_already_exists_error(service: Any) -> None:
    errors = _sdk("google.adk.errors.already_exists_error")
    run(service.create_session(app_name="my_app", user_id="user", session_id="warmup-session"))

    async def race(sid: str) -> list[Any]:
        def make() -> Any:
            return service.create_session(app_name="my_app", user_id="user", session_id=sid)

        return list(await asyncio.gather(make(), make(), return_exceptions=True))

    for i in range(5):
        results = run(race(f"race-session-{i}"))
        errs = [r for r in results if isinstance(r, BaseException)]
        wins = [r for r in results if not isinstance(r, BaseException)]
        assert len(wins) == 1 and len(errs) == 1 and isinstance(errs[0], errors.AlreadyExistsError)
        assert f"race-session-{i}" in str(errs[0])
        got = run(service.get_session(app_name="my_app", user_id="user", session_id=f"race-session-{i}"))
        assert got is not None and got.id == wins[0].id


def test_append_event_bytes(service: Any) -> None:
    t = types()
    session = run(service.create_session(app_name="my_app", user_id="user"))
    content = t.Content(role="user", parts=[t.Part.from_bytes(data=b"test_image_data", mime_type="image/png")])
    grounding = t.GroundingMetadata(search_entry_point=t.SearchEntryPoint(sdk_blob=b"test_sdk_blob"))
    run(
        service.append_event(
            session, Event(invocation_id="invocation", author="user", content=content, grounding_metadata=grounding)
        )
    )
    assert session.events[0].content == content
    [event] = run(service.get_session(app_name="my_app", user_id="user", session_id=session.id)).events
    assert event.content == content and event.grounding_metadata == grounding


def test_append_event_complete(service: Any) -> None:
    t = types()
    session = run(service.create_session(app_name="my_app", user_id="user"))
    event = Event(
        invocation_id="invocation",
        author="user",
        content=t.Content(role="user", parts=[t.Part(text="test_text")]),
        turn_complete=True,
        partial=False,
        actions=Actions(artifact_delta={"file": 0}, transfer_to_agent="agent", escalate=True),
        long_running_tool_ids={"tool1"},
        error_code="error_code",
        error_message="error_message",
        interrupted=True,
        grounding_metadata=t.GroundingMetadata(web_search_queries=["query1"]),
        usage_metadata=t.GenerateContentResponseUsageMetadata(
            prompt_token_count=1, candidates_token_count=1, total_token_count=2
        ),
        citation_metadata=t.CitationMetadata(),
        custom_metadata={"custom_key": "custom_value"},
        timestamp=1700000000.123,
        input_transcription=t.Transcription(text="input transcription", finished=True),
        output_transcription=t.Transcription(text="output transcription", finished=True),
    )
    run(service.append_event(session, event))
    assert run(service.get_session(app_name="my_app", user_id="user", session_id=session.id)) == session


def test_append_event_with_requested_tool_confirmations(service: Any) -> None:
    confirmation = _sdk("google.adk.tools.tool_confirmation").ToolConfirmation
    session = run(service.create_session(app_name="my_app", user_id="user"))
    tc = confirmation(hint="dynamic hint", confirmed=False, payload={"collection_name": "photos", "resource_id": "a1"})
    run(
        service.append_event(
            session,
            Event(invocation_id="i", author="user", actions=Actions(requested_tool_confirmations={"tool_call_1": tc})),
        )
    )
    [event] = run(service.get_session(app_name="my_app", user_id="user", session_id=session.id)).events
    got = event.actions.requested_tool_confirmations["tool_call_1"]
    assert (got.hint, got.payload, got.confirmed) == (
        "dynamic hint",
        {"collection_name": "photos", "resource_id": "a1"},
        False,
    )


def test_append_event_with_non_serializable_state_delta(service: Any) -> None:
    # As ADK's persistent services: a value JSON cannot hold is stored as its text, the event whole.
    session = run(service.create_session(app_name="my_app", user_id="user"))
    run(
        service.append_event(
            session,
            Event(invocation_id="i", author="user", actions=Actions(state_delta={"callback": lambda: 1, "ok": 2})),
        )
    )
    got = run(service.get_session(app_name="my_app", user_id="user", session_id=session.id))
    assert len(got.events) == 1 and got.state["ok"] == 2 and isinstance(got.state["callback"], str)


def test_session_last_update_time_updates_on_event(service: Any) -> None:
    session = run(service.create_session(app_name="my_app", user_id="user"))
    original = session.last_update_time
    run(service.append_event(session, Event(invocation_id="invocation", author="user", timestamp=original + 10)))
    assert session.last_update_time == pytest.approx(original + 10, abs=1e-6)
    refreshed = run(service.get_session(app_name="my_app", user_id="user", session_id=session.id))
    assert refreshed.last_update_time == pytest.approx(original + 10, abs=1e-6)
    assert refreshed.last_update_time > original


def test_append_event_to_deleted_or_unknown_session_raises_session_not_found(service: Any) -> None:
    errors = _sdk("google.adk.errors.session_not_found_error")
    session = run(service.create_session(app_name="my_app", user_id="user"))
    run(service.delete_session(app_name="my_app", user_id="user", session_id=session.id))
    with pytest.raises(errors.SessionNotFoundError):
        run(service.append_event(session, Event(invocation_id="inv1", author="user")))
    never = _sdk("google.adk.sessions.session").Session(app_name="my_app", user_id="user", id="never_created")
    with pytest.raises(errors.SessionNotFoundError):
        run(service.append_event(never, Event(invocation_id="inv1", author="user")))
    run(service.delete_session(app_name="my_app", user_id="user", session_id="never_created"))  # not an error


def test_append_event_to_stale_session(service: Any) -> None:
    stale_error = _sdk("google.adk.errors._stale_session_error").StaleSessionError
    now = time.time()
    original = run(service.create_session(app_name="my_app", user_id="user"))
    run(
        service.append_event(
            original,
            Event(invocation_id="inv1", author="user", timestamp=now + 1, actions=Actions(state_delta={"sk1": "v1"})),
        )
    )
    updated = run(service.get_session(app_name="my_app", user_id="user", session_id=original.id))
    run(
        service.append_event(
            updated,
            Event(invocation_id="inv2", author="user", timestamp=now + 2, actions=Actions(state_delta={"sk2": "v2"})),
        )
    )
    assert original.last_update_time < updated.last_update_time and "sk2" not in original.state
    with pytest.raises(stale_error, match="modified in storage"):
        run(
            service.append_event(
                original,
                Event(
                    invocation_id="inv3", author="user", timestamp=now + 3, actions=Actions(state_delta={"sk3": "v3"})
                ),
            )
        )
    final = run(service.get_session(app_name="my_app", user_id="user", session_id=original.id))
    assert [e.invocation_id for e in final.events] == ["inv1", "inv2"]
    assert final.state == {"sk1": "v1", "sk2": "v2"}
    # test_sqlite_append_event_uses_typed_stale_session_error: a copy of a session read before
    # a write is stale too (and the error is a ValueError, as ADK's contract says).
    copy = final.model_copy(deep=True)
    run(service.append_event(final, Event(invocation_id="winner", author="user", timestamp=now + 4)))
    with pytest.raises(stale_error) as caught:
        run(service.append_event(copy, Event(invocation_id="stale", author="user", timestamp=now + 4)))
    assert isinstance(caught.value, ValueError)


def test_append_event_concurrent_stale_sessions_reject_stale_writer(service: Any) -> None:
    stale_error = _sdk("google.adk.errors._stale_session_error").StaleSessionError
    session = run(service.create_session(app_name="my_app", user_id="user"))
    for i in range(8):
        latest = run(service.get_session(app_name="my_app", user_id="user", session_id=session.id))
        one, two = latest.model_copy(deep=True), latest.model_copy(deep=True)
        base = latest.last_update_time + 10.0

        async def both(i: int = i, base: float = base, one: Any = one, two: Any = two) -> list[Any]:
            e1 = Event(
                invocation_id=f"inv{i}-1",
                author="user",
                timestamp=base + 1,
                actions=Actions(state_delta={f"sk{i}-1": 1}),
            )
            e2 = Event(
                invocation_id=f"inv{i}-2",
                author="user",
                timestamp=base + 2,
                actions=Actions(state_delta={f"sk{i}-2": 2}),
            )
            return list(
                await asyncio.gather(
                    service.append_event(one, e1), service.append_event(two, e2), return_exceptions=True
                )
            )

        results = run(both())
        errs = [r for r in results if isinstance(r, BaseException)]
        assert len(errs) == 1 and isinstance(errs[0], stale_error) and "modified in storage" in str(errs[0])
    final = run(service.get_session(app_name="my_app", user_id="user", session_id=session.id))
    assert len(final.events) == 8
    for i in range(8):
        assert len({f"sk{i}-1", f"sk{i}-2"} & set(final.state)) == 1


def test_get_session_with_config(service: Any) -> None:
    config = _sdk("google.adk.sessions.base_session_service").GetSessionConfig
    base = int(time.time())
    session = run(service.create_session(app_name="my_app", user_id="user"))
    for i in range(1, 6):
        run(service.append_event(session, Event(author="user", timestamp=base + i)))

    def get(**kwargs: Any) -> list[Any]:
        got = run(
            service.get_session(app_name="my_app", user_id="user", session_id=session.id, config=config(**kwargs))
        )
        return [e.timestamp for e in got.events]

    assert len(run(service.get_session(app_name="my_app", user_id="user", session_id=session.id)).events) == 5
    assert get(num_recent_events=0) == []
    assert get(num_recent_events=3) == [base + 3, base + 4, base + 5]
    assert get(after_timestamp=base + 4) == [base + 4, base + 5]  # inclusive
    assert get(after_timestamp=base + 50) == []
    assert get(after_timestamp=base + 4, num_recent_events=3) == [base + 4, base + 5]
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        config(num_recent_events=-1)


def test_partial_events_are_not_persisted(service: Any) -> None:
    session = run(service.create_session(app_name="my_app", user_id="user"))
    run(service.append_event(session, Event(author="user", partial=True)))
    assert session.events == []
    assert run(service.get_session(app_name="my_app", user_id="user", session_id=session.id)).events == []


def test_get_user_state(service: Any) -> None:
    # test_get_user_state_returns_empty_dict_when_no_state_exists, _returns_state_written_via_
    # append_event, _is_not_visible_across_users, _is_not_visible_across_apps,
    # _available_before_session_is_created, _reflects_latest_write.
    assert run(service.get_user_state(app_name="my_app", user_id="u1")) == {}
    session = run(service.create_session(app_name="my_app", user_id="u1"))
    delta = {"user:profile": {"name": "Alice"}, "session_key": 1}
    run(service.append_event(session, Event(author="system", actions=Actions(state_delta=delta))))
    assert run(service.get_user_state(app_name="my_app", user_id="u1")) == {"profile": {"name": "Alice"}}
    assert run(service.get_user_state(app_name="my_app", user_id="u2")) == {}
    assert run(service.get_user_state(app_name="other_app", user_id="u1")) == {}
    for n in (1, 2):
        run(service.append_event(session, Event(author="system", actions=Actions(state_delta={"user:counter": n}))))
    assert run(service.get_user_state(app_name="my_app", user_id="u1"))["counter"] == 2


def test_get_session_keeps_exact_epoch_across_a_repeated_local_hour(service: Any) -> None:
    epochs = [1730613600.0, 1730615400.0]
    session = run(service.create_session(app_name="my_app", user_id="user"))
    for epoch in epochs:
        run(service.append_event(session, Event(author="user", timestamp=epoch)))
    got = run(service.get_session(app_name="my_app", user_id="user", session_id=session.id))
    assert [e.timestamp for e in got.events] == epochs


def test_list_sessions_strips_events_and_merges_scoped_state(service: Any) -> None:
    state = {"app:a": "av", "user:u": "uv", "sk": "sv", "temp:t": "tv"}
    session = run(service.create_session(app_name="my_app", user_id="u1", session_id="s1", state=state))
    run(
        service.append_event(
            session, Event(invocation_id="inv1", author="user", actions=Actions(state_delta={"sk2": "sv2"}))
        )
    )
    [listed] = run(service.list_sessions(app_name="my_app", user_id="u1")).sessions
    assert listed.id == "s1" and listed.events == []
    assert listed.state == {"app:a": "av", "user:u": "uv", "sk": "sv", "sk2": "sv2"}
    assert run(service.list_sessions(app_name="unknown_app")).sessions == []
    assert run(service.list_sessions(app_name="my_app", user_id="unknown_user")).sessions == []


def test_append_event_is_idempotent_for_same_event_id(service: Any) -> None:
    session = run(service.create_session(app_name="test_app", user_id="user_dup", session_id="session_dup"))
    event = Event(invocation_id="inv_dup", author="user", actions=Actions(state_delta={"session:counter": 1}))
    run(service.append_event(session, event))
    run(service.append_event(session, event))
    run(service.append_event(session, event.model_copy(deep=True)))
    got = run(service.get_session(app_name="test_app", user_id="user_dup", session_id="session_dup"))
    assert [e.id for e in got.events] == [event.id] and got.state["session:counter"] == 1
    assert len(session.events) == 1


def test_append_different_events_not_deduplicated(service: Any) -> None:
    session = run(service.create_session(app_name="test_app", user_id="user_multi", session_id="session_multi"))
    run(service.append_event(session, Event(id="shared-event-id", invocation_id="inv_a", author="user")))
    run(service.append_event(session, Event(id="shared-event-id", invocation_id="inv_b", author="agent")))
    got = run(service.get_session(app_name="test_app", user_id="user_multi", session_id="session_multi"))
    assert [e.author for e in got.events] == ["user", "agent"]
