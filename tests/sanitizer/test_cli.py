"""``sessionseal sanitize`` and ``sessionseal scan`` through click's CliRunner."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sessionseal.cli._sanitize_cmds import sanitize_command, scan_command

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


def test_parallel_regions_give_the_same_result_as_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionseal._sanitize import Sanitizer
    from sessionseal._sanitize._rules import default_catalogue
    from sessionseal.cli import _sanitize_cmds as cmds

    rules, _ = default_catalogue()
    text = "\n".join(f"line {i}: {ex}" for i, r in enumerate(rules) for ex in (*r.examples, *r.counterexamples))
    text = (text + "\n") * 3
    san = Sanitizer(b"\x02" * 32, engine="python")
    expected = san.sanitize_text(text).text
    monkeypatch.setattr(cmds, "_CHUNK", 3000)
    monkeypatch.setattr(cmds, "_MARGIN", 2500)
    monkeypatch.setattr(cmds, "PARALLEL_MIN", 1000)
    for workers in (1, 2, 3):
        redactions = cmds.redact_parallel(san, text, workers=workers)
        out, pos = [], 0
        for start, end, _rule, placeholder in redactions:
            out.append(text[pos:start])
            out.append(placeholder)
            pos = end
        out.append(text[pos:])
        assert "".join(out) == expected, workers
        # The streaming writer (the first region is written while the workers finish) agrees.
        sink = io.BytesIO()
        writer = cmds._Writer(sink, text)
        cmds.redact_parallel(san, text, workers=workers, emit=writer.write)
        writer.close()
        assert sink.getvalue().decode() == expected, workers
        assert sum(writer.counts.values()) == len(redactions)


def test_a_secret_across_the_region_cut_is_written_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionseal._sanitize import Sanitizer
    from sessionseal.cli import _sanitize_cmds as cmds

    body = "\n".join("".join(chr(65 + (i * 7 + j) % 26) for j in range(64)) + str(i % 10) for i in range(40))
    key = "-----BEGIN RSA PRIVATE KEY-----\n" + body + "\n-----END RSA PRIVATE KEY-----"
    filler = "".join(f"plain line {i}\n" for i in range(150))
    text = filler + key + "\n" + filler  # the middle of the text is inside the key
    monkeypatch.setattr(cmds, "PARALLEL_MIN", 100)
    san = Sanitizer(b"\x03" * 32)
    sink = io.BytesIO()
    writer = cmds._Writer(sink, text)
    cmds.redact_parallel(san, text, workers=2, emit=writer.write)
    writer.close()
    assert sink.getvalue().decode() == san.sanitize_text(text).text
    assert writer.counts == {"private-key": 1}


def test_sanitize_large_input_through_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionseal.cli import _sanitize_cmds as cmds

    monkeypatch.setattr(cmds, "PARALLEL_MIN", 1000)
    monkeypatch.setattr(cmds, "_CHUNK", 2000)
    monkeypatch.setattr(cmds, "_WRITE", 500)
    big = "".join(f"<<<CASE {i:04d}>>>\nGH_TOKEN={GHP}\nplain text line {i}\n" for i in range(300))
    result = CliRunner().invoke(sanitize_command, ["--report"], input=big)
    assert result.exit_code == 0
    assert GHP not in result.stdout
    assert result.stdout.count("<<<CASE ") == 300
    assert json.loads(result.stderr)["counts"] == {"github-pat": 300}
