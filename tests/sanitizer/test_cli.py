"""``sessionseal sanitize`` and ``sessionseal scan`` through click's CliRunner."""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner

from sessionseal.cli._sanitize_cmds import sanitize_command, scan_command

from .conftest import sanitizer_for

GHP = "ghp_" + "9mO8TCf60NXSYkwR3tQd7zXIYTPFg83HxbyN"
TEXT = f"<<<CASE 0000>>>\nGH_TOKEN={GHP}\n<<<CASE 0001>>>\nnothing here\n"


def test_sanitize_filters_stdin_to_stdout_and_keeps_other_lines() -> None:
    result = CliRunner().invoke(sanitize_command, [], input=TEXT)
    assert result.exit_code == 0, result.output
    assert GHP not in result.stdout
    lines = result.stdout.splitlines()
    assert lines[0] == "<<<CASE 0000>>>" and lines[2:] == ["<<<CASE 0001>>>", "nothing here"]
    assert lines[1].startswith("GH_TOKEN=[REDACTED:github-pat:")


def test_sanitize_report_goes_to_stderr_as_json_counts_only() -> None:
    result = CliRunner().invoke(sanitize_command, ["--report"], input=TEXT)
    assert result.exit_code == 0
    report = json.loads(result.stderr)
    assert report == {"total": 1, "counts": {"github-pat": 1}}
    assert GHP not in result.stderr


def test_sanitize_fingerprint_key_is_random_per_run() -> None:
    runner = CliRunner()
    a = runner.invoke(sanitize_command, [], input=TEXT).stdout
    b = runner.invoke(sanitize_command, [], input=TEXT).stdout
    assert a != b


def test_sanitize_passes_invalid_utf8_through() -> None:
    data = b"caf\xe9 " + f"GH_TOKEN={GHP}".encode() + b" \xff\n"
    result = CliRunner().invoke(sanitize_command, ["--engine", "python"], input=data)
    assert result.exit_code == 0
    assert result.stdout_bytes.startswith(b"caf\xe9 GH_TOKEN=[REDACTED:github-pat:")
    assert result.stdout_bytes.endswith(b"] \xff\n")


def test_scan_lists_findings_without_values_and_exits_1(tmp_path: Path) -> None:
    f = tmp_path / "env"
    f.write_text(f"A=1\n  GH_TOKEN={GHP}\n", encoding="utf-8")
    result = CliRunner().invoke(scan_command, [str(f)])
    assert result.exit_code == 1
    assert result.stdout == f"{f}:2:12 github-pat ghp_********\n"
    assert GHP[4:] not in result.stdout


def test_scan_json_and_clean_file_exit_0(tmp_path: Path) -> None:
    dirty = tmp_path / "dirty.txt"
    dirty.write_text(f"x {GHP}\n", encoding="utf-8")
    clean = tmp_path / "clean.txt"
    clean.write_text("nothing to see\n", encoding="utf-8")
    result = CliRunner().invoke(scan_command, ["--json", str(dirty), str(clean)])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == [
        {"file": str(dirty), "line": 1, "column": 3, "rule": "github-pat", "preview": "ghp_********"}
    ]
    ok = CliRunner().invoke(scan_command, [str(clean)])
    assert ok.exit_code == 0 and ok.stdout == ""


def test_scan_unreadable_file_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(scan_command, [str(tmp_path / "missing.txt")])
    assert result.exit_code == 2
    assert "cannot read" in result.stderr


def test_scan_reads_stdin_with_dash() -> None:
    result = CliRunner().invoke(scan_command, ["-"], input=f"{GHP}\n")
    assert result.exit_code == 1 and result.stdout.startswith("-:1:1 github-pat ")


def _stream_out(san: object, data: bytes, workers: int) -> tuple[bytes, dict[str, int]]:
    from sessionseal._sanitize._stream import sanitize_stream

    sink = io.BytesIO()
    counts = sanitize_stream(san, data, sink, workers=workers)  # type: ignore[arg-type]
    return sink.getvalue(), counts


@cache  # the catalogue's rules are compiled once, not per test
def _catalogue_text(copies: int = 3) -> str:
    from sessionseal._sanitize._rules import default_catalogue

    rules, _ = default_catalogue()
    text = "\n".join(f"line {i}: {ex}" for i, r in enumerate(rules) for ex in (*r.examples, *r.counterexamples))
    return (text + "\n") * copies


@cache
def _catalogue_one_pass(copies: int = 3) -> tuple[str, dict[str, int]]:
    """The catalogue text sanitized in one pass by the shared python-engine sanitizer: the
    reference the region runs are compared with (seconds of work, the same for each test)."""
    result = sanitizer_for("python").sanitize_text(_catalogue_text(copies))
    return result.text, dict(result.counts)


@pytest.mark.parametrize(("chunk", "margin"), [(3000, 2500), (700, 2500), (20000, 400)])
def test_parallel_regions_give_the_same_result_as_one_pass(
    monkeypatch: pytest.MonkeyPatch, chunk: int, margin: int
) -> None:
    # Regions smaller than their margin (700 < 2500) have no body of their own: their
    # output waits for their neighbours.  Then nothing is final before the end: the pending
    # text and its findings are handled again at each region (quadratic), so that case reads
    # the catalogue once, not three times (cuts fall at line starts: the copies add no new cut
    # through a line, only more of the same regions).
    from sessionseal._sanitize import _stream as stream

    copies = 1 if chunk < margin else 3
    text = _catalogue_text(copies)
    san = sanitizer_for("python")
    expected_text, expected_counts = _catalogue_one_pass(copies)
    monkeypatch.setattr(stream, "CHUNK", chunk)
    monkeypatch.setattr(stream, "MIN_CHUNK", chunk // 5)
    monkeypatch.setattr(stream, "MARGIN", margin)
    monkeypatch.setattr(stream, "PARALLEL_MIN", 1000)
    for workers in (1, 2, 3):
        out, counts = _stream_out(san, text.encode(), workers)
        assert out.decode() == expected_text, workers
        assert counts == expected_counts, workers


def test_regions_cut_through_multibyte_and_invalid_utf8(monkeypatch: pytest.MonkeyPatch) -> None:
    # Region margins are counted in bytes and may fall inside a character: each region is
    # decoded from a character start, and undecodable bytes pass through unchanged.
    from sessionseal._sanitize import Sanitizer
    from sessionseal._sanitize import _stream as stream

    lines = []
    for i in range(400):
        lines.append(f"caf\u00e9 \u2014 \U0001f600 {i} GH_TOKEN={GHP} and p\u00e4ss".encode())
        lines.append(b"\x80\xff\xe2\x82 broken " + str(i).encode() + b" \xf0\x9f\x98")
    data = b"\n".join(lines) + b"\n"
    san = Sanitizer(b"\x05" * 32)
    expected = san.sanitize_text(data.decode("utf-8", "surrogateescape"))
    monkeypatch.setattr(stream, "PARALLEL_MIN", 1000)
    for chunk, margin in ((997, 301), (5003, 1499), (211, 800)):
        monkeypatch.setattr(stream, "CHUNK", chunk)
        monkeypatch.setattr(stream, "MIN_CHUNK", chunk // 3)
        monkeypatch.setattr(stream, "MARGIN", margin)
        for workers in (1, 2):
            out, counts = _stream_out(san, data, workers)
            assert out == expected.text.encode("utf-8", "surrogateescape"), (chunk, margin, workers)
            assert counts == expected.counts == {"github-pat": 400}


def test_regions_get_smaller_towards_the_end_and_cut_at_line_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionseal._sanitize import _stream as stream

    data = b"".join(b"line %d " % i + b"x" * (i % 50) + b"\n" for i in range(20000))
    monkeypatch.setattr(stream, "CHUNK", 100_000)
    monkeypatch.setattr(stream, "MIN_CHUNK", 10_000)
    cuts = stream._schedule(data, 2)
    assert cuts[0] == 0 and cuts[-1] == len(data) and cuts == sorted(set(cuts))
    assert all(data[c - 1 : c] == b"\n" for c in cuts[1:-1])
    sizes = [b - a for a, b in itertools.pairwise(cuts)]
    assert min(sizes[:3]) > 90_000 and max(sizes[-2:]) < 20_000  # big first, small last
    assert stream._schedule(b"no newline at all" * 100, 2) == [0, 1700]


def test_a_secret_across_the_region_cut_is_written_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionseal._sanitize import Sanitizer
    from sessionseal._sanitize import _stream as stream

    body = "\n".join("".join(chr(65 + (i * 7 + j) % 26) for j in range(64)) + str(i % 10) for i in range(40))
    key = "-----BEGIN RSA PRIVATE KEY-----\n" + body + "\n-----END RSA PRIVATE KEY-----"
    filler = "".join(f"plain line {i}\n" for i in range(150))
    text = filler + key + "\n" + filler  # the middle of the text is inside the key
    monkeypatch.setattr(stream, "PARALLEL_MIN", 100)
    san = Sanitizer(b"\x03" * 32)
    for chunk in (stream.CHUNK, 500, 97):  # one region per worker, or many cuts inside the key
        monkeypatch.setattr(stream, "CHUNK", chunk)
        out, counts = _stream_out(san, text.encode(), 2)
        assert out.decode() == san.sanitize_text(text).text, chunk
        assert counts == {"private-key": 1}, chunk


def test_a_finding_across_a_cut_that_loses_to_the_next_regions_finding() -> None:
    # Where two regions meet, a finding of one may overlap a better finding of the other:
    # resolved as in one pass (lower priority first, then the longer).
    from sessionseal._sanitize import Sanitizer
    from sessionseal._sanitize._stream import Run

    san = Sanitizer(b"\x04" * 32)
    text = "x" * 40 + "AAAA\nBBBBBBBB" + "y" * 40
    cut = text.index("\n") + 1
    weak = (38, cut + 3, "generic-secret-assignment", "[W]")  # priority 50, crosses the cut
    strong = (cut + 1, cut + 8, "github-pat", "[S]")  # priority 10, in the next region
    first = Run.of_region(san.priority, text, 0, cut, [weak], margin=10)
    second = Run.of_region(san.priority, text, cut, len(text), [strong], margin=10)
    first_run = Run(san.priority, first=True)
    first_run.add(first)
    first_run.add(second)
    parts = first_run.close()
    assert all(isinstance(p, bytes) for p in parts)  # no worker ran: no part is in a scratch file
    out = b"".join(p for p in parts if isinstance(p, bytes)).decode()
    assert out == text[: cut + 1] + "[S]" + text[cut + 8 :]
    assert first_run.counts == {"github-pat": 1}


def test_sanitize_large_input_through_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionseal._sanitize import _stream as stream

    monkeypatch.setattr(stream, "PARALLEL_MIN", 1000)
    monkeypatch.setattr(stream, "CHUNK", 2000)
    big = "".join(f"<<<CASE {i:04d}>>>\nGH_TOKEN={GHP}\nplain text line {i}\n" for i in range(300))
    result = CliRunner().invoke(sanitize_command, ["--report"], input=big)
    assert result.exit_code == 0
    assert GHP not in result.stdout
    assert result.stdout.count("<<<CASE ") == 300
    assert json.loads(result.stderr)["counts"] == {"github-pat": 300}


def test_filter_arguments_are_parsed_without_the_cli_only_when_plain() -> None:
    from sessionseal._main import parse_filter_args

    assert parse_filter_args([]) == (False, None)
    assert parse_filter_args(["--report", "--engine", "python"]) == (True, "python")
    assert parse_filter_args(["--engine=hyperscan", "--engine", "ahocorasick"]) == (False, "ahocorasick")
    for args in (["--help"], ["-h"], ["--engine"], ["--engine", "nope"], ["--engine=nope"], ["--rep"], ["x"], ["--"]):
        assert parse_filter_args(args) is None, args


def _run_module(*args: str, data: bytes, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    full = {**os.environ, "PYTHONPATH": src, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "sessionseal", *args], input=data, capture_output=True, env=full, check=False
    )


def test_python_m_sessionseal_sanitize_is_the_same_filter_with_and_without_click(tmp_path: Path) -> None:
    data = (TEXT * 3 + "caf\u00e9 \U0001f600\n").encode() + b"\xff\xfe tail\n"
    env = {"SESSIONSEAL_CACHE_DIR": str(tmp_path / "cache")}
    fast = _run_module("sanitize", "--report", "--engine", "python", data=data, env=env)
    # A global option before the command: parsed by click, same filter.
    slow = _run_module("--vault", str(tmp_path / "none"), "sanitize", "--report", "--engine=python", data=data, env=env)
    for proc in (fast, slow):
        assert proc.returncode == 0, proc.stderr
        assert GHP.encode() not in proc.stdout
        assert proc.stdout.endswith(b"\xff\xfe tail\n")
        assert json.loads(proc.stderr) == {"total": 3, "counts": {"github-pat": 3}}
    mask = re.compile(rb"\[REDACTED:github-pat:[0-9a-f]{8}\]")
    assert mask.sub(b"P", fast.stdout) == mask.sub(b"P", slow.stdout)
    bad = _run_module("sanitize", "--engine", "nope", data=data, env=env)
    assert bad.returncode == 2 and b"nope" in bad.stderr and not bad.stdout


def test_the_filter_starts_without_click_or_the_vault() -> None:
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src, "SESSIONSEAL_CACHE_DIR": ""}
    cmd = [sys.executable, "-X", "importtime", "-m", "sessionseal", "sanitize"]
    proc = subprocess.run(cmd, input=b"x\n", capture_output=True, env=env, check=True)
    assert proc.stdout == b"x\n"
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.decode().splitlines() if "|" in line}
    assert "sessionseal._sanitize._filter" in imported
    heavy = {"click", "pydantic", "asyncio", "sessionseal.cli", "sessionseal._vault", "cryptography", "keyring"}
    assert not heavy & imported


def test_a_closed_stdout_ends_the_filter_quietly(tmp_path: Path) -> None:
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src, "SESSIONSEAL_CACHE_DIR": str(tmp_path)}
    with subprocess.Popen(
        [sys.executable, "-m", "sessionseal", "sanitize"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        assert proc.stdout is not None and proc.stdin is not None and proc.stderr is not None
        proc.stdout.close()  # the reader went away (| head)
        proc.stdin.write(b"plain line\n" * 200_000)
        proc.stdin.close()
        err = proc.stderr.read()
        assert proc.wait(timeout=60) == 1
    assert b"Traceback" not in err and b"Exception ignored" not in err


_AUDITED: list[tuple[str, tuple[object, ...]]] | None = None
_HOOKED = False


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _AUDITED is not None and event in ("open", "os.fork"):
        _AUDITED.append((event, args))


def _audited_stream(san: object, data: bytes, workers: int) -> tuple[bytes, list[tuple[str, tuple[object, ...]]]]:
    """The output of sanitize_stream and the files it opened and the forks it made (Python's
    audit events: whatever opens a file or forks raises them, tempfile included)."""
    global _AUDITED, _HOOKED
    if not _HOOKED:
        sys.addaudithook(_audit)  # for the rest of the process (a hook cannot be removed); idle then
        _HOOKED = True
    _AUDITED = []
    try:
        out, _ = _stream_out(san, data, workers)
        return out, _AUDITED
    finally:
        _AUDITED = None


def test_without_memory_files_no_text_goes_to_tmpdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Workers hand sanitized text over in memory files (memfd_create); a platform without them
    # (macOS) must not spill it into a file of $TMPDIR, not even an unlinked one.
    import tempfile

    from sessionseal._sanitize import _stream as stream

    text = _catalogue_text()
    san = sanitizer_for("python")
    expected = _catalogue_one_pass()[0].encode()
    monkeypatch.setattr(stream, "PARALLEL_MIN", 1000)
    # A few regions per worker, with the context of the parallel test: with 3,000-byte regions
    # and the default 64 KiB margin each region re-read 130 KiB (the text 45 times over, on the
    # python engine); neither the region size nor the margin is at stake here.
    monkeypatch.setattr(stream, "CHUNK", 20000)
    monkeypatch.setattr(stream, "MIN_CHUNK", 4000)
    monkeypatch.setattr(stream, "MARGIN", 2500)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out, events = _audited_stream(san, text.encode(), 2)
    assert out == expected and ("os.fork", ()) in events  # with memory files: workers (the case at stake)

    monkeypatch.delattr(os, "memfd_create")
    out, events = _audited_stream(san, text.encode(), 2)
    assert out == expected
    opened = [os.fsdecode(args[0]) for event, args in events if event == "open" and isinstance(args[0], str | bytes)]
    assert [p for p in opened if str(tmp_path) in p] == [] and list(tmp_path.iterdir()) == []


_FRESH_PAGES_PER_REGION = """
import resource
from sessionseal._sanitize._filter import _reuse_freed_memory
_reuse_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def region():  # a 4 MiB region's large buffers: text, folded copy, marks, output, encoded
    buffers = [bytearray(n << 20) for n in (8, 4, 4, 8, 4)]
    del buffers
region()  # the heap grows to a region's size
before = faults()
for _ in range(4):
    region()
print(faults() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None, reason="glibc")
def test_the_filter_reuses_the_memory_a_region_frees() -> None:
    # Later regions' buffers reuse the pages of those the first one freed: in fresh pages
    # they would be about 28,000 page faults (19,000 were counted with glibc's defaults).
    out = subprocess.run([sys.executable, "-c", _FRESH_PAGES_PER_REGION], capture_output=True, text=True, check=True)
    assert int(out.stdout) < 1000
