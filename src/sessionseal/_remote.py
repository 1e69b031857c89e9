"""Remotes: what names an S3-compatible store a vault syncs through, checked before it is kept
(docs/spec/remote-v1.md, "Where: the remote URL"; docs/sync.md).

Only what the spec allows is accepted, so that an object key never needs escaping and means
the same on every server, and so that nothing secret ever sits in the vault's config: an
endpoint with user information (``https://user:secret@host``), a query or a fragment is
refused, and there is no field for a credential at all.  Messages name the field, never echo a
refused value (it may be a secret pasted in the wrong place).
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from .errors import InvalidInput

__all__ = [
    "RemoteUrl",
    "check_endpoint",
    "check_name",
    "check_profile",
    "check_region",
    "device_prefix",
    "parse_url",
    "probe_key",
    "taken_refusal",
]

_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_BUCKET: Final = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
#: S3's "safe characters" for object keys (its user guide, "Naming Amazon S3 objects").
_SEGMENT: Final = re.compile(r"[A-Za-z0-9!_.*'()-]+")
_PREFIX_MAX: Final = 512
_PROFILE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+=,/-]{0,127}")
_REGION: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


@dataclass(frozen=True)
class RemoteUrl:
    """``s3://bucket/prefix``, checked."""

    bucket: str
    prefix: str  # "" or segments joined by "/", no leading or trailing slash

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key(self, *parts: str) -> str:
        """The object key of *parts* under the prefix."""
        return "/".join([self.prefix, *parts] if self.prefix else parts)


def check_name(name: str) -> str:
    """A remote's name: 1 to 32 of ``a-z 0-9 _ -``, starting with a letter or digit."""
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            "a remote name is 1 to 32 characters of a-z, 0-9, '_' and '-', starting with a letter or digit"
        )
    return name


def parse_url(url: str) -> RemoteUrl:
    """``s3://BUCKET[/PREFIX]`` as the spec allows it.

    :raises InvalidInput: names what is wrong, never echoes the value.
    """
    if not url.startswith("s3://"):
        raise InvalidInput("a remote URL starts with s3:// (s3://BUCKET/PREFIX)")
    rest = url[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket or _is_ip(bucket):
        raise InvalidInput(
            "the bucket of a remote URL is 3 to 63 characters of a-z, 0-9, '.' and '-', "
            "starting and ending with a letter or digit, not an IP address"
        )
    if prefix.endswith("/"):
        prefix = prefix[:-1]  # s3://bucket/prefix/ means the same as without the slash
    if prefix:
        segments = prefix.split("/")
        if len(prefix) > _PREFIX_MAX or any(not _SEGMENT.fullmatch(s) or s in {".", ".."} for s in segments):
            raise InvalidInput(
                "the prefix of a remote URL is up to 512 characters of A-Z a-z 0-9 ! - _ . * ' ( ) "
                "in non-empty segments separated by single '/', none of them '.' or '..'"
            )
    return RemoteUrl(bucket, prefix)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def check_endpoint(endpoint: str) -> str:
    """An ``http(s)://host[:port][/path]`` URL with nothing secret in it; returned without a
    trailing slash.

    :raises InvalidInput: another scheme, no host, user information, a query or a fragment.
    """
    try:
        parts = urlsplit(endpoint)
        port = parts.port  # raises ValueError when it is not a number in range
    except ValueError:
        raise InvalidInput("the endpoint is not a valid URL (http(s)://HOST[:PORT])") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidInput("the endpoint is an http:// or https:// URL with a host (http(s)://HOST[:PORT])")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidInput(
            "the endpoint must not hold user information: credentials come from your AWS profile or "
            "environment, never from the vault's config"
        )
    if parts.query or parts.fragment or "?" in endpoint or "#" in endpoint:
        raise InvalidInput("the endpoint must not have a query or a fragment")
    if any(ord(c) < 0x21 or ord(c) > 0x7E for c in endpoint):
        raise InvalidInput("the endpoint must be printable ASCII without spaces")
    del port
    return endpoint.rstrip("/")


def check_profile(profile: str) -> str:
    """An AWS profile's name (a section of ``~/.aws/config``), not a credential."""
    if not _PROFILE.fullmatch(profile):
        raise InvalidInput("an AWS profile name is 1 to 128 characters of letters, digits and _.@+=,/-")
    return profile


def check_region(region: str) -> str:
    if not _REGION.fullmatch(region):
        raise InvalidInput("a region is 1 to 63 characters of a-z, 0-9 and '-' (e.g. us-east-1, auto)")
    return region


def device_prefix(url: RemoteUrl, device: uuid.UUID) -> str:
    """The key prefix only this device writes under (docs/spec/remote-v1.md, "Layout")."""
    return url.key("d", device.hex) + "/"


def probe_key(url: RemoteUrl, device: uuid.UUID, nonce: bytes) -> str:
    """Where ``remote add`` writes its probe (docs/spec/remote-v1.md, "Probe")."""
    return url.key("d", device.hex, "probe", nonce.hex())


def taken_refusal(key: str) -> str:
    """The refusal when a server that honours ``If-None-Match`` says *key* (under this device's
    prefix) holds other bytes: never a name of the vault's, only what kind of object it is."""
    kind, _, rest = key.partition("/")
    if kind == "log":
        return (
            f"entry {int(rest, 16)} of this device's log is on the remote already with other bytes: another "
            "copy of this vault pushes as this device (a restored backup?); nothing more was sent"
        )
    if kind == "head":
        return (
            "a signed head of this device is on the remote already with other bytes: another copy of this "
            "vault pushes as this device (a restored backup?); nothing more was sent"
        )
    if kind == "o":
        return (
            "a content object of this device is on the remote already under its hash with other bytes: "
            "the bucket is damaged; nothing more was sent"
        )
    what = {"device": "record", "keys": "epoch key object", "enroll": "enrolment object", "wrap": "wrap"}.get(
        kind, "object"
    )
    return f"this device's {what} on the remote is not the one it made; nothing more was sent"
