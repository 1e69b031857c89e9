"""The S3 client's timestamps (docs/sync.md, "Pull"; :mod:`sessionseal._s3`): the shape S3
servers write in XML (``2026-12-07T11:20:33.000Z``: a listing has one per object) is read
directly, every other shape or value by botocore's own parser as before, and each gives the
instant botocore's parser gives.  The client uses it: a real server's listing (``rclone serve
s3`` on 127.0.0.1) comes back through it, and ``list_dated`` dates objects as written."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionseal import _s3
from tests._infra.s3server import S3Server, open_store
from tests._infra.synccapture import (  # noqa: F401  (the module's rclone server's fixtures)
    fixture_module_server,
    fixture_s3_server,
    fixture_server_env,
)

pytestmark = pytest.mark.s3


def _either(parse: Callable[[Any], object], value: object) -> object:
    try:
        return parse(value)
    except (ValueError, TypeError, OverflowError, RuntimeError) as exc:
        return type(exc)


def _same(value: object) -> None:
    # Imported here: the agent SDKs' venv collects this module and has no botocore (.ci/run).
    from botocore.utils import parse_timestamp

    ours, theirs = _either(_s3._timestamp, value), _either(parse_timestamp, value)
    assert ours == theirs, value
    if isinstance(ours, datetime):
        assert isinstance(theirs, datetime) and ours.timestamp() == theirs.timestamp()


@given(
    st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)),
    st.integers(0, 9),
)
@settings(max_examples=300, deadline=None)
def test_iso_timestamps_in_utc_are_the_instant_botocore_reads(when: datetime, digits: int) -> None:
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{when.microsecond:06d}{when.microsecond % 1000:03d}"[:digits]
    _same(text + "Z")


@given(st.from_regex(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,8})?Z", fullmatch=True))
@settings(max_examples=300, deadline=None)
def test_out_of_range_fields_go_to_botocore(text: str) -> None:
    _same(text)  # a 30th of February, a 61st second, year 0: botocore's answer, error or not


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 07 Dec 2026 11:20:33 GMT",  # headers' RFC 822 dates
        "2026-12-07T11:20:33+01:00",
        "2026-12-07T11:20:33.000z",
        "2026-12-07 11:20:33Z",
        " 2026-12-07T11:20:33Z",
        "1765106433",
        1765106433,
        1765106433.5,
        "",
        "not a date",
    ],
)
def test_other_shapes_are_botocores(value: object) -> None:
    _same(value)


def test_a_real_listing_is_dated_through_it(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(s3_server, monkeypatch, "dated")
    before = time.time()
    store.put("dated/a", b"x")
    listed = store.client.list_objects_v2(Bucket=s3_server.bucket, Prefix="dated/")["Contents"]
    assert [o["LastModified"].tzinfo for o in listed] == [UTC]  # read directly, not by dateutil
    [(key, size, at)] = store.list_dated("dated/")
    assert (key, size) == ("dated/a", 1)
    assert before - 5 <= at <= time.time() + 5
