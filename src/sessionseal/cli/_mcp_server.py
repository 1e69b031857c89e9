"""``sessionseal mcp serve``: the vault's history for agents, over MCP on stdio (docs/mcp.md).

The only module that imports the ``mcp`` SDK (the ``sessionseal[mcp]`` extra): the base install
and ``import sessionseal`` never do.  The answers come from :mod:`._mcp_history`; this module adds
the protocol: the tools and their annotations, the client's roots and name, the bound on the key
store, and one audit record per call.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from sessionseal import __version__
from sessionseal.errors import SessionSealError

from ._mcp_history import CAPS, UNTRUSTED, Answer, History, Scope, VaultBackend

if TYPE_CHECKING:
    from sessionseal import Vault

__all__ = ["build_server"]

#: Read-only, idempotent, closed-world, non-destructive: set explicitly, since a tool without
#: annotations is taken as destructive and open-world.
READ_ONLY: Final = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
#: How long the roots request may take before the call fails (a client that never answers).
_ROOTS_DEADLINE: Final = 5.0
_CLIENT_TEXT: Final = 64


class _Opener:
    """Opens the vault once, in a worker thread that may take at most *deadline* seconds: a locked
    or wedged key store answers the tool call with an error, never hangs the agent.  A worker
    still stuck is not started again; a failed open is tried again at the next call."""

    def __init__(self, open_vault: Callable[[], Vault], deadline: float) -> None:
        self._open_vault = open_vault
        self._deadline = deadline
        self._lock = threading.Lock()
        self._vault: Vault | None = None
        self._worker: threading.Thread | None = None
        self._result: dict[str, Any] = {}

    def get(self) -> Vault:
        with self._lock:
            if self._vault is not None:
                return self._vault
            if self._worker is None:
                result: dict[str, Any] = {}

                def work() -> None:
                    try:
                        vault = self._open_vault()
                        try:
                            # The master key is read when first needed: read it here, within the bound.
                            vault.parts.keys.keytable()
                        except BaseException:
                            vault.close()
                            raise
                        result["vault"] = vault
                    except BaseException as exc:
                        result["error"] = exc

                self._result = result
                self._worker = threading.Thread(target=work, daemon=True, name="sessionseal-open")
                self._worker.start()
            worker, result = self._worker, self._result
        worker.join(self._deadline)
        with self._lock:
            if worker.is_alive():
                raise ToolError(
                    f"the key store did not answer within {self._deadline:g} s: unlock the keychain "
                    "(docs/keychain.md), then call again"
                )
            self._worker = None
            if "vault" in result:
                self._vault = result["vault"]
                return self._vault
            exc = result.get("error")
            if isinstance(exc, SessionSealError):
                raise ToolError(f"cannot open the vault: {exc}")
            raise ToolError(f"cannot open the vault ({type(exc).__name__})")

    def close(self) -> None:
        with self._lock:
            if self._vault is not None:
                self._vault.close()
                self._vault = None


def _client(ctx: Context) -> tuple[str, str]:
    """The client's name and version from the handshake (cut short; never trusted as more)."""
    params = ctx.session.client_params
    info = None if params is None else params.client_info
    if info is None:
        return "(unnamed)", ""

    def clean(text: str) -> str:
        return "".join(c if c.isprintable() else "?" for c in text)[:_CLIENT_TEXT]

    return clean(info.name or "(unnamed)"), clean(info.version or "")


async def _roots(ctx: Context) -> tuple[str, ...]:
    """The client's workspace roots as directories; the server's working directory for a client
    that lists none (an agent starts its servers in the project it works in, as ``list --here``)."""
    caps = ctx.session.client_capabilities
    if caps is None or caps.roots is None:
        return (os.getcwd(),)
    try:
        with anyio.fail_after(_ROOTS_DEADLINE), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # roots are deprecated in protocol 2026-07-28, still used
            listed = await ctx.session.list_roots()
    except TimeoutError:
        raise ToolError(f"the client did not list its roots within {_ROOTS_DEADLINE:g} s") from None
    out = []
    for root in listed.roots:
        uri = urllib.parse.urlsplit(str(root.uri))
        if uri.scheme == "file" and uri.netloc in ("", "localhost"):
            out.append(os.path.normpath(urllib.parse.unquote(uri.path)))
    return tuple(out)


class _Server:
    """The tools' shared state: the vault opener, the scope rule, and one call at a time."""

    def __init__(self, opener: _Opener, *, serve_all: bool, private_tag: str) -> None:
        self.opener = opener
        self.serve_all = serve_all
        self.private_tag = private_tag
        self.lock = threading.Lock()

    async def call(self, ctx: Context, tool: str, fn: Callable[[History], Answer]) -> dict[str, Any]:
        name, version = _client(ctx)
        roots = None if self.serve_all else await _roots(ctx)
        scope = Scope(roots, self.private_tag)
        detail: dict[str, Any] = {"client": name, "client_version": version, "scope": scope.describe()}
        if roots is not None:
            detail["roots"] = len(roots)

        def work() -> dict[str, Any]:
            vault = self.opener.get()  # ToolError when the key store does not answer
            # One record per call in the vault's chain (Vault.parts: the components' seam for tools).
            audit = vault.parts.auditor.served
            with self.lock:
                try:
                    answer = fn(History(VaultBackend(vault), scope))
                except SessionSealError as exc:
                    outcome = "denied" if type(exc).__name__ == "SessionNotFound" else "error"
                    audit(f"mcp.{tool}", outcome, (), error=type(exc).__name__, detail=detail)
                    raise ToolError(str(exc)) from None
                except Exception as exc:  # a bug: recorded too, and said without its text
                    audit(f"mcp.{tool}", "error", (), error=type(exc).__name__, detail=detail)
                    raise ToolError(f"internal error ({type(exc).__name__}); please report it") from None
                detail.update(results=len(answer.ids), bytes=answer.nbytes)
                audit(f"mcp.{tool}", "ok", answer.ids, detail=detail)
                return answer.body

        return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)


_Limit = Annotated[int | None, Field(description=f"At most this many results (default {CAPS['results_default']}).")]
_Status = Literal["active", "paused", "completed", "failed", "archived"]
# The list filters, as search_sessions and list_sessions take them.
_Tags = Annotated[list[str] | None, Field(description="Only sessions with all these tags.")]
_Statuses = Annotated[list[_Status] | None, Field(description="Only sessions with one of these statuses.")]
_Workspace = Annotated[str | None, Field(description="Only sessions in this directory (within the roots).")]
_Since = Annotated[str | None, Field(description="Updated at or after: a date, RFC 3339 time, or 7d.")]
_Until = Annotated[str | None, Field(description="Updated before this time.")]
_Model = Annotated[str | None, Field(description="Only sessions a model of this name answered in.")]


SEARCH_DESCRIPTION = (
    "Search past sessions' sanitized text (an encrypted full-text index), best match first (BM25), "
    "with a snippet around each hit."
)
QUERY_DESCRIPTION = (
    'Words (all must appear; case-insensitive), "an exact phrase", a prefix such as pars* (3 letters '
    "or more), OR, NOT or -word, parentheses, and fields: title:, user:, assistant:, tool: (tool calls "
    "and their output), e.g. 'tool:pytest \"connection refused\" -flaky'."
)


def _filters(tag: list[str] | None, status: list[_Status] | None, **rest: Any) -> dict[str, Any]:
    return {"tags": tag or [], "statuses": status or [], **rest}


def build_server(
    open_vault: Callable[[], Vault], *, serve_all: bool, private_tag: str, deadline: float
) -> tuple[MCPServer, Callable[[], None]]:
    """The MCP server, its tools registered (the vault is opened at the first call), and what
    closes the vault when the server is done."""
    server: MCPServer = MCPServer(
        "sessionseal",
        version=__version__,
        log_level="WARNING",  # stderr is the agent's log: no line per refused call
        instructions="Read-only access to this user's sealed AI-agent session history. " + UNTRUSTED,
    )
    state = _Server(_Opener(open_vault, deadline), serve_all=serve_all, private_tag=private_tag)
    scope_note = (
        " Only sessions whose workspace is under the client's roots are served"
        + (" (this server was started with --all: every workspace)." if serve_all else ".")
        + f" Sessions tagged {private_tag!r} are never served. "
        + UNTRUSTED
    )
    _register(server, state, scope_note)
    return server, state.opener.close


def _register(server: MCPServer, state: _Server, note: str) -> None:
    @server.tool(annotations=READ_ONLY, description=SEARCH_DESCRIPTION + note)
    async def search_sessions(  # noqa: PLR0917 - the list filters
        ctx: Context,
        query: Annotated[str, Field(description=QUERY_DESCRIPTION, min_length=1, max_length=1000)],
        tag: _Tags = None,
        status: _Statuses = None,
        workspace: _Workspace = None,
        since: _Since = None,
        until: _Until = None,
        model: _Model = None,
        limit: _Limit = None,
    ) -> dict[str, Any]:
        f = _filters(tag, status, workspace=workspace, since=since, until=until, model=model)
        return await state.call(ctx, "search_sessions", lambda h: h.search_sessions(query, f, limit))

    @server.tool(annotations=READ_ONLY, description="List past sessions, newest first." + note)
    async def list_sessions(  # noqa: PLR0917 - the list filters
        ctx: Context,
        tag: _Tags = None,
        status: _Statuses = None,
        workspace: _Workspace = None,
        since: _Since = None,
        until: _Until = None,
        model: _Model = None,
        limit: _Limit = None,
    ) -> dict[str, Any]:
        f = _filters(tag, status, workspace=workspace, since=since, until=until, model=model)
        return await state.call(ctx, "list_sessions", lambda h: h.list_sessions(f, limit))

    @server.tool(
        annotations=READ_ONLY,
        description=(
            "Read one session's messages, a page at a time (offset, max_messages, max_chars; "
            f"tool output over {CAPS['tool_output_chars']} characters is cut with a marker). "
            "Continue with next_offset." + note
        ),
    )
    async def get_session(
        ctx: Context,
        session_id: Annotated[str, Field(description="The session's id (from list_sessions or search_sessions).")],
        offset: Annotated[int, Field(description="The first message to return (0: the first).", ge=0)] = 0,
        max_messages: Annotated[int | None, Field(description=f"At most {CAPS['messages_max']}.")] = None,
        max_chars: Annotated[int | None, Field(description=f"1000 to {CAPS['chars_max']} characters.")] = None,
    ) -> dict[str, Any]:
        return await state.call(
            ctx, "get_session", lambda h: h.get_session(session_id, offset, max_messages, max_chars)
        )

    @server.tool(
        annotations=READ_ONLY,
        description="The most recently updated session (in a workspace), to continue where the user left off." + note,
    )
    async def latest_session(
        ctx: Context,
        workspace: Annotated[str | None, Field(description="Only in this directory (within the roots).")] = None,
    ) -> dict[str, Any]:
        return await state.call(ctx, "latest_session", lambda h: h.latest_session(workspace))

    @server.tool(
        annotations=READ_ONLY,
        description="The command that resumes a session in Claude Code, Codex or Gemini CLI "
        "(text only; nothing is run)." + note,
    )
    async def resume_hint(
        ctx: Context,
        session_id: Annotated[str, Field(description="The session's id.")],
        tool: Annotated[
            Literal["claude", "codex", "gemini"] | None, Field(description="The agent (all of them: none).")
        ] = None,
    ) -> dict[str, Any]:
        return await state.call(ctx, "resume_hint", lambda h: h.resume_hint(session_id, tool))
