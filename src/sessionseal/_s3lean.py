"""The lean GET (and PUT): an object read, or written, without the boto3 client's per-request
machinery (docs/design.md, "The S3 client: boto3", and docs/sync.md, "Pull" and "Deletes":
issue 26, "Speed").

A GET through the client costs 1.7 to 2 ms of CPU on this machine, most of it the client's
event hooks, its request serializer and its response parser; a pull makes two per session.  A
PUT costs as much, and a push makes one per object and per log entry (a delete's rebase, one
per live session).
This one is built of botocore's own parts, so nothing of the protocol is ours: the request is
signed by botocore's SigV4 signer (``S3SigV4Auth``), with the credentials the client itself
signs with (the session's, refreshed by ``get_frozen_credentials`` as the client's signer does),
and sent over botocore's own HTTP session (``URLLib3Session``: its urllib3 pool, TLS
verification, proxies from the environment), with the client's timeouts.  The object's URL is
the one the client makes: its endpoint and addressing (path style, or virtual host) are read
once from a URL the client presigns, as is the region it signs for.

It only ever does the common case, a ``200`` with the whole body (a HEAD, which
``S3Store.exists`` makes the same way: ``200`` or ``404``; a PUT: ``200``).  Anything else (any
other status, a short body, a connection error or timeout, no credentials) returns ``None`` (a
PUT: the status, or ``None``) and the caller asks the client, whose retries and error mapping
(``S3Store._call``) then decide what the caller sees: the lean path adds no error of its own.
When the client then succeeds where the lean path did not, :data:`MISSES` times in a row (a
server that wants what only the client does, such as a bucket in another region), the lean
path turns itself off for this store, reads and writes each on their own count.  Fail closed as
before: what it returns is checked by the caller exactly as the client's bytes are.

A PUT is sent as the client sends ``put_object`` with the store's configuration
(``request_checksum_calculation="when_required"``): ``Expect: 100-continue``, the bytes and
their ``Content-Length``, the SHA-256 of the payload signed as ``X-Amz-Content-SHA256`` (no
``Content-MD5`` and no flexible checksum: the client sends neither for a PUT that does not
require one), and the ``If-None-Match: *`` the caller asks for; only the client's own metadata
headers (``amz-sdk-invocation-id``, ``amz-sdk-request``) and its User-Agent are not sent.  A
``412`` (the name is taken) is not settled here: the client does that PUT again and the caller
compares, as for any resend; a name taken (412, 409) is no miss.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import parse_qs, quote, urlsplit

__all__ = ["MISSES", "LeanGet", "verify_value"]

#: Reads (or writes) the client served in a row after the lean path could not: then it is off
#: for reads (or writes).
MISSES: Final = 3
#: The key the client is asked to presign, only to learn its URL for an object (never sent).
_PROBE: Final = "k"


class LeanGet:
    """GETs, HEADs and PUTs of one bucket's objects, signed and sent as described above;
    thread-safe."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        credentials: Callable[[], Any],
        *,
        verify: bool | str,
        keepalive: bool,
    ) -> None:
        """*credentials*: the session's ``get_credentials`` (the object the client signs with);
        *verify*, *keepalive*: the TLS verification and TCP keep-alive the client's HTTP session
        was given (its timeouts and pool size are read from the client's config)."""
        self._client = client
        self._bucket = bucket
        self._credentials = credentials
        self._verify = verify
        self._keepalive = keepalive
        self._lock = threading.Lock()
        self._ready = False
        self._base = ""  # the URL of an object, up to its quoted key
        self._region = ""
        self._signing: Any = None  # the credentials object, as the session gives it
        self._http: Any = None
        self._misses = [0, 0]  # reads (GET, HEAD), writes (PUT) the client served in a row
        #: False once set up failed or the client served :data:`MISSES` reads in a row.
        self.on = True
        #: The same for PUTs, on their own count: a server could take the one and not the other.
        self.writes = True

    def get(self, key: str) -> bytes | None:
        """The object at *key*, whole; ``None`` when this GET could not get it (the caller then
        asks the client, which says why, or gets it)."""
        sent = self._send("GET", key)
        if sent is None or sent[0] != 200:
            return None
        _, length, body = sent
        # URLLib3Session does not enforce Content-Length; the client's body reader does.
        if length is not None and (not length.isdigit() or int(length) != len(body)):
            return None
        self._misses[0] = 0
        return body

    def exists(self, key: str) -> bool | None:
        """Whether *key* holds an object (HEAD: ``200`` yes, ``404`` no, as the client takes
        them); ``None`` when this HEAD could not tell (the caller then asks the client)."""
        sent = self._send("HEAD", key)
        if sent is None or sent[0] not in {200, 404}:
            return None
        self._misses[0] = 0
        return sent[0] == 200

    def put(self, key: str, data: bytes, *, if_none_match: bool) -> int | None:
        """The status the server answered a PUT of *data* at *key* sent as the client sends
        ``put_object`` (the bytes with their ``Content-Length`` after ``Expect: 100-continue``,
        ``X-Amz-Content-SHA256`` their SHA-256, signed; with ``If-None-Match: *`` when
        *if_none_match*); ``None`` when off or when no answer came.  Only ``200`` means stored:
        on anything else, a ``412`` included, the caller asks the client, which does it again
        and says what it got (the resend of bytes that did land is a case the caller already
        handles)."""
        # As the client's: Expect lets a server refuse (a redirect, a bad signature) before the
        # body is sent; Content-Length is set when the request is prepared, after signing.
        headers = {"Expect": "100-continue"}
        if if_none_match:
            headers["If-None-Match"] = "*"
        sent = self._send("PUT", key, data, headers, writes=True)
        if sent is None:
            return None
        if sent[0] == 200:
            self._misses[1] = 0
        return sent[0]

    def _send(
        self,
        method: str,
        key: str,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        writes: bool = False,
    ) -> tuple[int, str | None, bytes] | None:
        """(status, Content-Length, body) of a signed *method* of *key*; ``None`` when off (for
        reads, or for *writes*) or when no answer came."""
        if not (self.writes if writes else self.on) or (not self._ready and not self._setup()):
            return None
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest

        try:
            request = AWSRequest(method, self._url(key), headers=headers, data=data)
            S3SigV4Auth(self._signing.get_frozen_credentials(), "s3", self._region).add_auth(request)
            response = self._http.send(request.prepare())
            body = bytes(response.content)
        except Exception:
            # Whatever failed (the connection, a credentials refresh that STS refused with a
            # ClientError, ...), the client does it again and says what, mapped as always.
            return None
        return response.status_code, response.headers.get("Content-Length"), body

    def url(self, key: str) -> str | None:
        """The URL a GET of *key* is sent to (the client's, as it presigns it); ``None`` when the
        lean GET is off."""
        if not self.on or (not self._ready and not self._setup()):
            return None
        return self._url(key)

    def _url(self, key: str) -> str:
        # Quoted as botocore quotes a greedy label ({Key+}): '/' and '~' as they are.
        return self._base + quote(key, safe="/~")

    def missed(self, *, write: bool = False) -> None:
        """The client served a read this GET (or HEAD) could not, or a *write* this PUT could not
        (called by the caller after it)."""
        with self._lock:
            self._misses[write] += 1
            if self._misses[write] >= MISSES:
                if write:
                    self.writes = False
                else:
                    self.on = False

    def _setup(self) -> bool:
        """Learn the client's URL for an object and its signing region, once."""
        from botocore.httpsession import URLLib3Session
        from botocore.utils import get_environ_proxies

        with self._lock:
            if self._ready or not (self.on or self.writes):
                return self._ready
            try:
                signing = self._credentials()
                url = self._client.generate_presigned_url("get_object", Params={"Bucket": self._bucket, "Key": _PROBE})
            except Exception:  # as in _send: the client's to say what
                signing, url = None, ""
            parts = urlsplit(url)
            query = parse_qs(parts.query)
            scope = query.get("X-Amz-Credential", [""])[0].split("/")
            # Only plain SigV4 for S3 (an S3 Express bucket signs otherwise): else the client.
            if (
                signing is None
                or not parts.path.endswith("/" + _PROBE)
                or query.get("X-Amz-Algorithm") != ["AWS4-HMAC-SHA256"]
                or len(scope) != 5
                or scope[3:] != ["s3", "aws4_request"]
            ):
                self.on = self.writes = False
                return False
            self._signing = signing
            self._region = scope[2]
            self._base = f"{parts.scheme}://{parts.netloc}{parts.path[: -len(_PROBE)]}"
            # As botocore's EndpointCreator and ClientArgsCreator make the client's session
            # (open_store configures no proxies or client certificate: the environment's proxies).
            config = self._client.meta.config
            options = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
            if config.tcp_keepalive if config.tcp_keepalive is not None else self._keepalive:
                options.append((socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1))
            self._http = URLLib3Session(
                verify=self._verify,
                proxies=get_environ_proxies(self._client.meta.endpoint_url),
                timeout=(config.connect_timeout, config.read_timeout),
                max_pool_connections=config.max_pool_connections,
                socket_options=options,
            )
            self._ready = True
            return True


def verify_value(configured: str | None) -> bool | str:
    """The TLS verification the client gets: the session's ``ca_bundle`` (``AWS_CA_BUNDLE`` or
    the profile's), else ``REQUESTS_CA_BUNDLE``, else the default bundle (botocore's
    ``Session.create_client`` and ``EndpointCreator._get_verify_value``)."""
    if configured is not None:
        return configured
    bundle = os.environ.get("REQUESTS_CA_BUNDLE")
    return True if bundle is None else bundle
