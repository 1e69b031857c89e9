"""The session model: what a vault stores, as pydantic v2 models (``sessionseal schema`` prints it).

Design choices, each against the house default of ``frozen=True, extra="forbid"``:

* ``extra="allow"`` everywhere: a session written by a newer sessionseal (or a newer
  agent) may carry fields this build does not know.  They are kept, sanitized like
  everything else, stored, and returned unchanged; silently dropping them would lose
  data on a load/save round trip (issue #2).
* Models are mutable so that a caller can build a session turn by turn
  (``session.messages.append(...)``); the vault never mutates a caller's object.

Times are timezone-aware UTC; naive inputs are taken as UTC.  A message's ``content``
may be given as a plain string and is normalized to one text block.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from ._fields import SessionStatus, normalize_tag
from .errors import InvalidInput

__all__ = [
    "SCHEMA_VERSION",
    "ContentBlock",
    "Message",
    "OtherBlock",
    "ProcessInfo",
    "ServiceConnection",
    "Session",
    "SessionLinks",
    "SessionStats",
    "SessionStatus",
    "SessionSummary",
    "TextBlock",
    "ThinkingBlock",
    "TokenUsage",
    "ToolCallBlock",
    "ToolResultBlock",
    "ToolUse",
    "parse_session",
]

_M = TypeVar("_M", bound=BaseModel)

#: Version of the session document schema (not of the container).  2: ``source_records``,
#: and the ``records`` append operation (docs/spec/container-v1.md, "Appends").
SCHEMA_VERSION = 2


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    # Naive datetimes are taken as UTC and aware ones converted, so that every stored
    # time compares and sorts the same way.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59-01:00 is in year 10000 in UTC
        raise ValueError("the time is out of range in UTC") from None


#: A datetime normalized to UTC.  Only datetime fields carry a Python validator: a
#: model-wide ``"*"`` validator would run Python code for every field of every block
#: and made loading a 10 MiB session 4x slower than parsing its JSON.
UTCDateTime = Annotated[datetime, AfterValidator(_as_utc)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, ser_json_inf_nan="strings", defer_build=True)


class TokenUsage(_Model):
    """Token counts reported by a model for one message."""

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cache_read_tokens: int = Field(default=0, ge=0)
    cache_write_tokens: int = Field(default=0, ge=0)


class TextBlock(_Model):
    """Plain text."""

    type: Literal["text"] = "text"
    text: str


class ThinkingBlock(_Model):
    """A model's visible reasoning."""

    type: Literal["thinking"] = "thinking"
    text: str


class ToolCallBlock(_Model):
    """A call to a tool.  ``arguments`` is the JSON the model produced (or its raw text)."""

    type: Literal["tool_call"] = "tool_call"
    id: str | None = None
    name: str
    arguments: dict[str, Any] | list[Any] | str | None = None


class ToolResultBlock(_Model):
    """What a tool returned for a call."""

    type: Literal["tool_result"] = "tool_result"
    tool_call_id: str | None = None
    content: str | list[dict[str, Any]] = ""
    is_error: bool = False


class OtherBlock(_Model):
    """A block of a type this build does not know (images, newer types): kept verbatim."""

    type: str


#: Known block types are picked by their ``type`` tag inside pydantic-core; anything else
#: falls through to :class:`OtherBlock` and is kept verbatim.  (A Python discriminator
#: function ran once per block on every load *and* every save: 5-10 % of a save.)
ContentBlock = Annotated[
    Annotated[TextBlock | ThinkingBlock | ToolCallBlock | ToolResultBlock, Field(discriminator="type")] | OtherBlock,
    Field(union_mode="left_to_right"),
]


class Message(_Model):
    """One turn: who said it, what, when, with which model, at what cost."""

    id: str | None = None
    role: str = Field(
        min_length=1, max_length=64, description="system, developer, user, assistant or tool (other values are kept)"
    )
    content: list[ContentBlock] = Field(default_factory=list)
    timestamp: UTCDateTime | None = None
    model: str | None = None
    usage: TokenUsage | None = None
    cost_usd: float | None = Field(default=None, ge=0)

    @field_validator("content", mode="before")
    @classmethod
    def _text_shorthand(cls, value: Any) -> Any:
        # "content": "hi" is one text block; a block without a type is a text block.
        if isinstance(value, str):
            return [{"type": "text", "text": value}]
        if isinstance(value, list) and any(isinstance(b, dict) and "type" not in b for b in value):
            return [{"type": "text", **b} if isinstance(b, dict) and "type" not in b else b for b in value]
        return value


class ToolUse(_Model):
    """One entry of the tool usage history."""

    tool: str
    call_id: str | None = None
    started_at: UTCDateTime | None = None
    finished_at: UTCDateTime | None = None
    status: str | None = Field(default=None, description="ok, error, cancelled, ...")
    duration_ms: float | None = Field(default=None, ge=0)


class ProcessInfo(_Model):
    """A process the session started or watches."""

    pid: int = Field(ge=0)
    command: str
    state: str = "running"
    started_at: UTCDateTime | None = None


class ServiceConnection(_Model):
    """A connection to an external service, such as an MCP server."""

    name: str
    kind: str = "mcp"
    transport: Literal["stdio", "sse", "http", "websocket"] | str = "stdio"
    command: list[str] | None = None
    url: str | None = None


class SessionStats(_Model):
    """Counters that describe the session as a whole."""

    duration_seconds: float = Field(default=0, ge=0)
    command_count: int = Field(default=0, ge=0)
    message_count: int = Field(default=0, ge=0)
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0, ge=0)


class SessionLinks(_Model):
    """Links to related sessions."""

    parent: uuid.UUID | None = None
    forked_from: uuid.UUID | None = None
    continued_from: uuid.UUID | None = None
    related: list[uuid.UUID] = Field(default_factory=list)


class Session(_Model):
    """A whole session: conversation, tools, state, and metadata."""

    schema_version: int = SCHEMA_VERSION
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    title: str = ""
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    status: SessionStatus = SessionStatus.ACTIVE
    archived_from: SessionStatus | None = Field(
        default=None, description="the status before 'archive'; 'unarchive' restores it"
    )
    pinned: bool = Field(default=False, description="never removed by a retention policy")
    created_at: UTCDateTime = Field(default_factory=utcnow)
    updated_at: UTCDateTime = Field(default_factory=utcnow)
    last_accessed_at: UTCDateTime | None = None
    workspace: str | None = Field(default=None, description="project root the session worked in")
    working_directory: str | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict, description="per-session tool configuration")
    preferences: dict[str, Any] = Field(default_factory=dict)
    messages: list[Message] = Field(default_factory=list)
    tool_history: list[ToolUse] = Field(default_factory=list)
    tool_state: dict[str, Any] = Field(default_factory=dict, description="per-tool state, keyed by tool name")
    open_files: list[str] = Field(default_factory=list)
    watched_files: list[str] = Field(default_factory=list)
    processes: list[ProcessInfo] = Field(default_factory=list)
    connections: list[ServiceConnection] = Field(default_factory=list)
    stats: SessionStats = Field(default_factory=SessionStats)
    outcome: str | None = None
    links: SessionLinks = Field(default_factory=SessionLinks)
    redactions: dict[str, int] = Field(
        default_factory=dict, description="secrets replaced by the sanitizer at save, per rule (never values)"
    )
    source_records: list[dict[str, Any]] = Field(
        default_factory=list,
        description="an imported transcript's records as the tool wrote them (sanitized), in file order: "
        "{line, record, agent (a sub-agent's file), json (fields stored parsed)}; what resume --into writes back; "
        "or the entries an agent SDK's session store was given: {record, subpath}",
    )

    @field_validator("schema_version")
    @classmethod
    def _schema_version(cls, value: int) -> int:
        if value > SCHEMA_VERSION:
            raise ValueError(f"schema version {value} is newer than this sessionseal reads ({SCHEMA_VERSION}); upgrade")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(normalize_tag(raw) for raw in value))


class SessionSummary(_Model):
    """What listing shows of a session, kept in the container's META frame."""

    id: uuid.UUID
    title: str = ""
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    status: SessionStatus = SessionStatus.ACTIVE
    pinned: bool = False
    created_at: UTCDateTime
    updated_at: UTCDateTime
    last_accessed_at: UTCDateTime | None = None
    workspace: str | None = None
    message_count: int = 0
    models: list[str] = Field(default_factory=list, description="the models that answered, in order of first use")
    cost_usd: float = 0
    outcome: str | None = None
    redactions: dict[str, int] = Field(default_factory=dict)
    size_original: int = Field(default=0, description="bytes of the serialized session before compression")
    size_stored: int = Field(default=0, description="bytes of the container on disk")
    generation: int = Field(default=0, description="version counter of the stored container")


def parse_model(model: type[_M], value: _M | Mapping[str, Any] | str | bytes, what: str) -> _M:
    """Turn an instance, a mapping or a JSON document into a validated *model*.

    :raises InvalidInput: malformed JSON or a schema violation; the message names the
        field, never the value (which may be a secret).
    """
    if isinstance(value, model):
        return value
    try:
        if isinstance(value, str | bytes):
            return model.model_validate_json(value)
        return model.model_validate(value)
    except ValidationError as exc:
        raise InvalidInput(f"not a valid {what}: {validation_summary(exc)}") from None


def parse_session(value: Session | Mapping[str, Any] | str | bytes) -> Session:
    """Turn a model, a mapping or a JSON document into a validated :class:`Session`.

    :raises InvalidInput: see :func:`parse_model`.
    """
    return parse_model(Session, value, "session document")


def validation_summary(exc: ValidationError) -> str:
    """One line naming the first invalid field, without echoing the input value."""
    err = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "document"
    if not where.isprintable():  # a key of the input: one line, whatever it holds
        where = where.encode("unicode_escape").decode("ascii")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {err['msg']}{more}"
