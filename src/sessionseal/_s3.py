"""The S3 client: boto3, configured for every S3-compatible server (docs/design.md, "The S3
client: boto3"), behind the ``s3`` extra.

This module is the only one that imports boto3 (and, with ``_s3lean.py``, its GETs, HEADs and
PUTs without the client's per-request machinery, botocore), and only when a remote is used:
no other command pays for its start-up (about 130 ms to import, 40 MB installed).  Every error
of the client becomes one :class:`RemoteError` line that names the operation and the server's
error code, never a credential: the messages of botocore are not passed on (a server's message
is its own text, and a malicious server could write anything there).
"""

from __future__ import annotations

import builtins
import hmac
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from ._remote import RemoteUrl
from ._s3lean import LeanGet, verify_value
from .errors import MissingExtra, RemoteError

__all__ = ["S3Store", "open_store", "probe"]

_T = TypeVar("_T")
#: A server's error code as it may be shown; anything else is shown as "an error".
_CODE: Final = re.compile(r"[A-Za-z0-9.]{1,64}")
_REFUSED: Final = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "403"}
)
#: Bounded so that a dead endpoint is an error within seconds, never a hang.
CONNECT_TIMEOUT: Final = 5
READ_TIMEOUT: Final = 30
ATTEMPTS: Final = 3

# botocore's data loader (its JSON service models: S3's alone is 0.3 MB of JSON), shared by
# every client of the process, per data path: a new boto3 session parses the models again
# (0.15-0.3 s a client, against 30 ms with the loader shared), and one pull or push opens the
# remote several times.  Only the parsed models are shared; each client still gets a session
# of its own, so credentials are looked up afresh for each (a cached session would keep them
# for the life of the process).
_LOADERS: dict[str | None, Any] = {}
_LOADERS_LOCK: Final = threading.Lock()
#: The timestamps of S3's XML answers (a listing's ``LastModified``, one per object): ISO 8601
#: in UTC, to at most microseconds.
_ISO_UTC: Final = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z")


@dataclass(frozen=True)
class S3Store:
    """One bucket through one boto3 client; every method raises :class:`RemoteError` only."""

    client: Any
    bucket: str
    where: str  # the endpoint's host, or "AWS S3", for messages

    #: Set once the server answered ``NotImplemented`` to ``If-None-Match``: plain PUTs from then
    #: on (the header is hardening only; docs/design.md, "The layout: no compare-and-swap anywhere").
    unsupported: set[str] = field(default_factory=set, compare=False, repr=False)
    #: GETs, HEADs and PUTs without the client's per-request machinery, falling back to the
    #: client (_s3lean.py).
    lean: LeanGet | None = field(default=None, compare=False, repr=False)

    def put(self, key: str, data: bytes, *, taken: str | None = None) -> None:
        """PUT *data* at *key*, a name that must not hold other bytes (docs/spec/remote-v1.md,
        "Layout": a name, once written, holds the same bytes forever).

        ``If-None-Match: *`` is sent: a server that honours it (AWS S3, moto) refuses with 412
        when the name exists (or 409 while another write of it is in progress); then the object
        is read back (none there: a one-line error) and compared, so a resend of the same
        bytes (an outbox sent again, or a retried PUT whose first attempt landed) succeeds and
        anything else is refused.  A server that ignores the header (rclone) overwrites, as
        before: the callers' LIST and HEAD checks are what correctness rests on.

        The PUT goes the lean way first (_s3lean.py), with the same header; anything but its
        ``200`` is done again by the client, whose answer is what counts above.

        :raises RemoteError: *taken* (or a generic line) when the name holds other bytes; any
            error of the server or the connection.
        """
        lean = self.lean

        def write() -> bool:
            # The lean PUT first, with the header the client would send (_s3lean.py): anything
            # but its 200, a 412 included, is the client's to do again and to answer.
            conditional = "if-none-match" not in self.unsupported
            answer = None if lean is None else lean.put(key, data, if_none_match=conditional)
            if answer == 200:
                return True
            wrote = plain_or_conditional()
            # The client did what the lean PUT could not; a name taken, which both were told, is
            # no miss (a resent outbox meets many).
            if lean is not None and lean.writes and answer not in {409, 412}:
                lean.missed(write=True)
            return wrote

        def plain_or_conditional() -> bool:
            from botocore import exceptions as bx

            if "if-none-match" in self.unsupported:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
                return True
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*")
            except bx.ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                # 412: the name exists. 409 (AWS S3): a write of the same name was in progress,
                # another writer's or an earlier attempt of this one: what landed is compared too.
                if code in {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}:
                    return False
                if code not in {"NotImplemented", "501"}:
                    raise
                self.unsupported.add("if-none-match")
                self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
            return True

        if self._call("write", write):
            return
        # The name exists: only the very same bytes are a success.
        if not hmac.compare_digest(self.get(key), data):
            raise RemoteError(
                taken or f"{self.where} already holds other bytes under a name written once; nothing more was sent"
            )

    def get(self, key: str) -> bytes:
        lean = self.lean
        if lean is not None and (data := lean.get(key)) is not None:
            return data

        def read() -> bytes:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

        data = self._call("read", read)
        if lean is not None and lean.on:
            lean.missed()
        return data

    def exists(self, key: str) -> bool:
        """Whether *key* holds an object (HEAD): a writer checks before a first PUT, since no
        correctness may rest on ``If-None-Match`` (docs/spec/remote-v1.md, "Layout").  A HEAD
        cannot tell a missing bucket from a missing key: the PUT that follows says which."""
        lean = self.lean
        if lean is not None and (seen := lean.exists(key)) is not None:
            return seen
        from botocore import exceptions as bx

        def head() -> bool:
            try:
                self.client.head_object(Bucket=self.bucket, Key=key)
            except bx.ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in {"404", "NoSuchKey", "NotFound"}:
                    return False
                raise
            return True

        found = self._call("look up", head)
        if lean is not None and lean.on:
            lean.missed()
        return found

    def delete(self, key: str) -> None:
        self._call("delete", lambda: self.client.delete_object(Bucket=self.bucket, Key=key))

    def list(self, prefix: str, *, start_after: str | None = None) -> list[tuple[str, int]]:
        """Every ``(key, size)`` under *prefix* (after *start_after*, when given), in key order."""

        def walk() -> list[tuple[str, int]]:
            found: list[tuple[str, int]] = []
            extra = {} if start_after is None else {"StartAfter": start_after}
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix, **extra)
            for page in pages:
                found.extend((obj["Key"], int(obj["Size"])) for obj in page.get("Contents", ()))
            return sorted(found)

        return self._call("list", walk)

    def list_dated(self, prefix: str) -> builtins.list[tuple[str, int, float]]:
        """Every ``(key, size, last modified as a POSIX time)`` under *prefix*, in key order (the
        server's clock: ``sync --prune`` keeps what is younger than its safety age)."""

        def walk() -> builtins.list[tuple[str, int, float]]:
            found: builtins.list[tuple[str, int, float]] = []
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                found.extend(
                    (obj["Key"], int(obj["Size"]), obj["LastModified"].timestamp()) for obj in page.get("Contents", ())
                )
            return sorted(found)

        return self._call("list", walk)

    def _call(self, what: str, fn: Callable[[], _T]) -> _T:
        from botocore import exceptions as bx

        try:
            return fn()
        except bx.ClientError as exc:
            raise RemoteError(self._refusal(what, exc.response)) from None
        except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError, bx.ConnectionClosedError):
            raise RemoteError(f"cannot reach {self.where} to {what} (connection refused or timed out)") from None
        except bx.NoCredentialsError:
            raise RemoteError(
                "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, name a profile "
                "(--profile, AWS_PROFILE), or run where instance metadata provides them"
            ) from None
        except bx.BotoCoreError as exc:
            raise RemoteError(f"the S3 client failed to {what} on {self.where} ({type(exc).__name__})") from None

    def _refusal(self, what: str, response: dict[str, Any]) -> str:
        raw = str(response.get("Error", {}).get("Code", ""))
        code = raw if _CODE.fullmatch(raw) else "an error"
        if code in {"NoSuchBucket", "404"} and what != "read":
            return f"the bucket '{self.bucket}' does not exist on {self.where} ({code})"
        if code in _REFUSED:
            return (
                f"{self.where} refused the credentials or the access to '{self.bucket}' ({code}); "
                "check the AWS profile or environment variables in use"
            )
        return f"{self.where} answered {code} to a {what} in '{self.bucket}'"


def open_store(url: RemoteUrl, *, endpoint: str | None, profile: str | None, region: str | None) -> S3Store:
    """A client for *url*, its credentials from the usual AWS sources (the profile, else the
    environment, the shared files, SSO, instance or container metadata); none is ever stored.

    :raises MissingExtra: boto3 is not installed.
    :raises RemoteError: the profile does not exist, or the client cannot be made.
    """
    try:
        import boto3
        from botocore import exceptions as bx
        from botocore.config import Config
        from botocore.utils import ensure_boolean
    except ImportError:
        raise MissingExtra("remotes need the S3 client: pip install 'sessionseal[s3]'") from None
    config = Config(
        signature_version="s3v4",
        # Path style wherever an endpoint is given: rclone serves it by default
        # (--force-path-style), as MinIO and most self-hosted servers do.
        s3={"addressing_style": "path" if endpoint else "auto"},
        # botocore >= 1.36 adds CRC32 trailers that several S3-compatible servers reject or
        # store inside the object (boto/boto3#4392); every object is authenticated by AES-GCM
        # and named by its SHA-256 anyway.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "max_attempts": ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
    )
    try:
        core = _botocore_session()
        session = boto3.session.Session(botocore_session=core, profile_name=profile)
        client = session.client(
            "s3",
            endpoint_url=endpoint,
            # A custom endpoint needs a region to sign with; us-east-1 is what they accept.
            region_name=region or session.region_name or ("us-east-1" if endpoint else None),
            config=config,
        )
    except bx.ProfileNotFound:
        raise RemoteError(
            f"the AWS profile '{profile}' is not in your AWS config files (~/.aws/config, ~/.aws/credentials)"
        ) from None
    except bx.BotoCoreError as exc:
        raise RemoteError(f"the S3 client could not be set up ({type(exc).__name__})") from None
    where = _host(endpoint) if endpoint else "AWS S3"
    lean = LeanGet(
        client,
        url.bucket,
        session.get_credentials,
        verify=verify_value(core.get_config_variable("ca_bundle")),
        keepalive=ensure_boolean(core.get_config_variable("tcp_keepalive")),
    )
    return S3Store(client, url.bucket, where, lean=lean)


def _botocore_session() -> Any:
    """A new botocore session whose data loader is the process's (see ``_LOADERS``)."""
    import botocore.loaders
    import botocore.session

    core = botocore.session.Session()
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp)
    data_path = core.get_config_variable("data_path")
    with _LOADERS_LOCK:
        loader = _LOADERS.get(data_path)
        if loader is None:
            loader = _LOADERS[data_path] = botocore.loaders.create_loader(data_path)
    core.register_component("data_loader", loader)
    return core


def _timestamp(value: Any) -> datetime:
    """botocore's timestamp parser, the shape S3 servers write in XML (:data:`_ISO_UTC`) read
    directly: the same instant.  botocore's own hands every timestamp to dateutil, about 0.1 ms
    of Python each, and a pull's listing has one per object (two a session pulled: docs/sync.md,
    "Pull"); any other shape or value goes to it as before."""
    from botocore.utils import parse_timestamp

    if isinstance(value, str) and (m := _ISO_UTC.fullmatch(value)):
        y, mo, d, h, mi, sec, frac = m.groups()
        try:
            return datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec), int((frac or "").ljust(6, "0")), UTC)
        except ValueError:
            pass  # out of range (a 60th second, a 30th of February): botocore's to decide
    result: datetime = parse_timestamp(value)
    return result


def _host(endpoint: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(endpoint).netloc


def probe(store: S3Store, key: str) -> None:
    """Write 16 random bytes at *key*, read them back and delete them (``remote add``'s check
    that the remote is reachable and writable; docs/spec/remote-v1.md, "Probe").

    :raises RemoteError: any step failed, or the server gave back other bytes.
    """
    import os

    nonce = os.urandom(16)
    store.put(key, nonce)
    try:
        back = store.get(key)
    finally:
        store.delete(key)
    if back != nonce:
        raise RemoteError(f"{store.where} gave back other bytes than were written: not a faithful S3 store")
