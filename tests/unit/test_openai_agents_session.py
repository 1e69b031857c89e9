"""The OpenAI Agents SDK's Session in a vault (sessionseal.integrations.openai_agents;
docs/integrations/openai-agents.md), without the SDK: its contract as this store keeps it.
The SDK's own session tests and a Runner.run resume run in test_openai_agents_conformance.py."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sessionseal import Vault, _container
from sessionseal.errors import IntegrityError, InvalidInput, SessionNotFound
from sessionseal.integrations.openai_agents import TAG, SealedSession

SECRET = "ghp_" + "Oa7" * 12


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def reply(text: str, n: int = 1) -> dict[str, Any]:
    return {
        "id": f"msg_{n}",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


@pytest.fixture
def session(vault: Vault) -> SealedSession:
    return SealedSession("user-42", vault)


def test_items_round_trip_verbatim_in_order(vault: Vault, session: SealedSession) -> None:
    call = {"type": "function_call", "call_id": "c1", "name": "add", "arguments": '{"a": 1.5, "b": [null, true]}'}
    out = {"type": "function_call_output", "call_id": "c1", "output": "2.5"}
    odd = {"type": "reasoning", "id": "rs_1", "summary": [], "extra": {"ü": "日本"}}
    run(session.add_items([user("hi"), reply("hello")]))
    run(session.add_items([call, out, odd]))
    run(session.add_items([]))
    assert run(session.get_items()) == [user("hi"), reply("hello"), call, out, odd]
    # One vault session per SDK session id, tagged; a second SealedSession on it reads the same.
    [listed] = vault.list()
    assert listed.id == session.vault_id == SealedSession.vault_id_for("user-42") and TAG in listed.tags
    assert run(SealedSession("user-42", vault).get_items()) == [user("hi"), reply("hello"), call, out, odd]
    # Another id is another session.
    assert run(SealedSession("user-43", vault).get_items()) == []


def test_limit_returns_the_latest_items_oldest_first(vault: Vault, session: SealedSession) -> None:
    items = [user(f"m{i}") for i in range(5)]
    run(session.add_items(items))
    assert run(session.get_items(limit=2)) == items[3:]
    assert run(session.get_items(limit=10)) == items
    assert run(session.get_items(limit=7)) == items  # more than stored: all of them
    assert run(session.get_items(limit=0)) == []

    class Settings:
        limit = 3

    limited = SealedSession("user-42", vault, session_settings=Settings())
    assert run(limited.get_items()) == items[2:]
    assert run(limited.get_items(limit=1)) == items[4:]  # an explicit limit wins
    with pytest.raises(InvalidInput):
        run(session.get_items(limit=-1))


def test_a_limit_reads_the_latest_append_groups_alone(vault: Vault, session: SealedSession) -> None:
    # The first add is the session's first version (its BODY frame); later adds are groups.
    run(session.add_items([user(f"first{i}") for i in range(3)]))
    for i in range(5):
        run(session.add_items([user(f"m{i}")]))
    assert run(session.get_items(limit=2)) == [user("m3"), user("m4")]
    assert "load" in [e["action"] for e in vault.audit_entries(session=session.vault_id)[0]]
    # Damage the first version: a read that needs it fails closed, one served by the latest
    # groups does not decrypt it (and what it returns is authenticated, frame by frame).
    [path] = (vault.path / "sessions").glob("*.sst")
    with vault.parts.ctx.sessions.reader(path.name) as (read_at, size):
        tail = _container.open_session_tail(read_at, size, vault.vault_id, vault.parts.keys.key_for)
    raw = bytearray(path.read_bytes())
    raw[tail.body_end - 20] ^= 1
    path.write_bytes(bytes(raw))
    assert run(session.get_items(limit=5)) == [user(f"m{i}") for i in range(5)]
    with pytest.raises(IntegrityError):
        run(session.get_items(limit=6))
    with pytest.raises(IntegrityError):
        run(session.get_items())


def test_a_limit_returns_the_latest_items_whatever_the_history(vault: Vault, session: SealedSession) -> None:
    # Adds of any size, pops (new versions) and a clear between them: every limit gives the
    # tail of the whole list, however the items lie in versions and groups.
    rng = random.Random(24)
    n = 0
    for step in range(40):
        if step == 25:
            run(session.clear_session())
        elif rng.random() < 0.2:
            run(session.pop_item())
        else:
            run(session.add_items([user(f"i{n + k}") for k in range(rng.randint(1, 4))]))
            n += 4
        every = run(session.get_items())
        for limit in (1, 2, 3, 5, 8, len(every), len(every) + 1):
            assert run(session.get_items(limit=limit)) == every[max(0, len(every) - limit) :]


def test_pop_item_removes_the_latest_as_a_new_version(vault: Vault, session: SealedSession) -> None:
    assert run(session.pop_item()) is None  # never written
    run(session.add_items([user("a"), reply("b")]))
    run(session.add_items([user("c")]))
    assert run(session.pop_item()) == user("c")
    assert run(session.get_items()) == [user("a"), reply("b")]
    # The messages (what list/show/search read) follow the items.
    assert [m.role for m in vault.load(session.vault_id).messages] == ["user", "assistant"]
    run(session.add_items([user("d")]))
    assert run(session.get_items()) == [user("a"), reply("b"), user("d")]
    assert run(session.pop_item()) == user("d")
    assert run(session.pop_item()) == reply("b")
    assert run(session.pop_item()) == user("a")
    assert run(session.pop_item()) is None
    assert run(session.get_items()) == []
    actions = [e["action"] for e in vault.audit_entries(session=session.vault_id)[0]]
    assert actions.count("save") >= 4  # the first add, then each pop: a new version


def test_clear_session_crypto_erases(vault: Vault, session: SealedSession) -> None:
    run(session.add_items([user("a")]))
    sid = session.vault_id
    run(session.clear_session())
    assert run(session.get_items()) == [] and vault.list() == []
    with pytest.raises(SessionNotFound):
        vault.load(sid)
    assert "delete" in [e["action"] for e in vault.audit_entries()[0]]
    run(session.clear_session())  # clearing an empty session is not an error
    run(session.add_items([user("b")]))  # stored anew: nothing of the erased session comes back
    assert run(session.get_items()) == [user("b")]


def test_clear_session_without_erase_keeps_an_empty_session(vault: Vault) -> None:
    session = SealedSession("keep", vault, erase_on_clear=False)
    run(session.add_items([user("a"), user("b")]))
    run(session.clear_session())
    assert run(session.get_items()) == []
    assert vault.load(session.vault_id).messages == []  # the session stays, empty
    run(session.add_items([user("c")]))
    assert run(session.get_items()) == [user("c")]


def test_a_batch_is_one_append_group(vault: Vault, session: SealedSession) -> None:
    run(session.add_items([user("first")]))
    [path] = (vault.path / "sessions").glob("*.sst")
    before = path.read_bytes()
    run(session.add_items([user("x" * 3000), reply("y" * 3000), user("z")]))
    after = path.read_bytes()
    # Appended after what was stored, compressed together: less than the items' own size.
    assert after.startswith(before) and len(after) - len(before) < 3000
    actions = [e["action"] for e in vault.audit_entries(session=session.vault_id)[0]]
    assert actions[-2:] == ["save", "append"]
    # A batch with a bad item is refused whole: nothing of it is stored.
    with pytest.raises(InvalidInput):
        run(session.add_items([user("ok"), "not an item"]))
    assert after == path.read_bytes()
    assert len(run(session.get_items())) == 4


def test_a_batch_is_atomic_across_a_kill(tmp_path: Path) -> None:
    # A writer killed at any point leaves either no part of a batch or all of it: each batch
    # is 20 items tagged with its number, and every batch read back is whole.
    path = tmp_path / "v"
    subprocess.run([sys.executable, "-c", _INIT, str(path)], check=True, timeout=120)
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for _ in range(3):  # killed once it has stored a few batches, mid-way through another
        assert proc.stdout.readline().strip() == "added"
    proc.kill()
    proc.wait(timeout=60)
    proc.stdout.close()
    out = subprocess.run(
        [sys.executable, "-c", _READER, str(path)], check=False, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    batches = [int(b) for b in out.stdout.split()]
    assert len(batches) >= 3 * 20 and len(batches) % 20 == 0
    assert all(batches[i] == i // 20 for i in range(len(batches)))


_INIT = """
import sys
from sessionseal import PassphraseProvider, Vault
Vault.init(sys.argv[1], key_provider=PassphraseProvider("pw", log2_n=14)).close()
"""

_WRITER = """
import asyncio, sys
from sessionseal import PassphraseProvider, Vault
from sessionseal.integrations.openai_agents import SealedSession
s = SealedSession("k", Vault.open(sys.argv[1], key_provider=PassphraseProvider("pw", log2_n=14)))
for b in range(10_000):
    asyncio.run(s.add_items([{"role": "user", "content": str(b)} for _ in range(20)]))
    print("added", flush=True)
"""

_READER = """
import asyncio, sys
from sessionseal import PassphraseProvider, Vault
from sessionseal.integrations.openai_agents import SealedSession
s = SealedSession("k", Vault.open(sys.argv[1], key_provider=PassphraseProvider("pw", log2_n=14)))
print(" ".join(i["content"] for i in asyncio.run(s.get_items())))
"""


def test_a_secret_is_redacted_in_the_vault_and_in_what_is_read(vault: Vault, session: SealedSession) -> None:
    run(session.add_items([user(f"deploy with {SECRET} please")]))
    [item] = run(session.get_items())
    assert SECRET not in item["content"] and "[REDACTED:" in item["content"]
    assert SECRET.encode() not in vault.load_json(session.vault_id)
    # The message derived from the item holds the same placeholder (docs/sanitizer.md).
    assert vault.load(session.vault_id).model_dump(mode="json")["messages"][0]["content"][0]["text"] == item["content"]


def test_items_map_to_messages_that_show_and_search_read(vault: Vault, session: SealedSession) -> None:
    call = {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": '{"q": "capacitor"}'}
    out = {"type": "function_call_output", "call_id": "c1", "output": "fine"}
    run(session.add_items([user("is the flux capacitor ok?"), call, out, reply("it is fine")]))
    messages = vault.load(session.vault_id).messages
    assert [m.role for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[1].content[0].model_dump()["arguments"] == {"q": "capacitor"}
    assert {h.id for h in vault.search("capacitor")} == {str(session.vault_id)}


def test_bad_arguments_are_refused(vault: Vault, session: SealedSession) -> None:
    with pytest.raises(InvalidInput):
        SealedSession("", vault)
    with pytest.raises(InvalidInput):
        run(session.add_items([["not", "a", "dict"]]))
    with pytest.raises(InvalidInput):
        run(session.get_items(limit="3"))  # type: ignore[arg-type]
    assert vault.list() == []


def test_the_module_imports_nothing_of_the_sdk() -> None:
    code = (
        "import sys, sessionseal.integrations.openai_agents as m; "
        "assert not [n for n in sys.modules if n == 'agents' or n.startswith(('agents.', 'openai'))], 'imported'; "
        "print(m.TAG)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == TAG


_BATCHES = """
import asyncio, sys
from sessionseal import PassphraseProvider, Vault
from sessionseal.integrations.openai_agents import SealedSession
name, path = sys.argv[1], sys.argv[2]
with Vault.open(path, key_provider=PassphraseProvider("pw", log2_n=14)) as vault:
    s = SealedSession("shared", vault)
    for b in range(8):
        asyncio.run(s.add_items([{"role": "user", "content": f"{name}{b}.{i}"} for i in range(3)]))
"""


def test_two_processes_adding_to_one_session_keep_every_batch_whole(tmp_path: Path) -> None:
    # Two processes' first adds race to create the session, then their batches interleave:
    # every item lands once, each batch's items together and in order.
    path = tmp_path / "v"
    subprocess.run([sys.executable, "-c", _INIT, str(path)], check=True, timeout=120)
    procs = [subprocess.Popen([sys.executable, "-c", _BATCHES, n, str(path)]) for n in "ab"]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    out = subprocess.run(
        [sys.executable, "-c", _READER.replace('"k"', '"shared"'), str(path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    got = out.stdout.split()
    assert sorted(got) == sorted(f"{n}{b}.{i}" for n in "ab" for b in range(8) for i in range(3))
    for start in range(0, len(got), 3):
        batch = got[start : start + 3]
        assert [x.split(".")[1] for x in batch] == ["0", "1", "2"]
        assert len({x.split(".")[0] for x in batch}) == 1
