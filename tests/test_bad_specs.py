"""The corpus of bad specs: each file in tests/bad_specs/ goes through the CLI, and must give
exactly the one line that tests/bad_specs/expected.yaml holds for it, exit status 2, nothing on
stdout and no traceback. Cases that need the file system (directories, missing and unreadable
files, huge files) are made here.

To add a case: write tests/bad_specs/NAME.yaml, run `cnncalc table NAME.yaml` from that folder,
check the message is right, and add `NAME.yaml: message` to expected.yaml (`{file}` for the path,
`{kinds}` for the list of every layer kind, which grows with the registry).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cnncalc.cli import app
from cnncalc.spec import MAX_NODES, MAX_REPEAT
from cnncalc.yamlio import MAX_YAML_CHARS, MAX_YAML_DEPTH, MAX_YAML_VALUES

HERE = Path(__file__).parent / "bad_specs"
EXPECTED: dict[str, str] = yaml.safe_load((HERE / "expected.yaml").read_text(encoding="utf-8"))


def expected(name: str) -> str:
    from cnncalc.layers import REGISTRY

    return EXPECTED[name].replace("{file}", name).replace("{kinds}", ", ".join(REGISTRY))
CORPUS = sorted(p.name for p in HERE.glob("*.yaml") if p.name != "expected.yaml")

runner = CliRunner()


def error_line(*args: str) -> str:
    """Run the CLI; it must fail with status 2 and exactly one line on stderr, no traceback."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cnncalc: error: ")
    return lines[0].removeprefix("cnncalc: error: ")


def test_every_corpus_file_has_an_expected_message_and_back():
    assert sorted(EXPECTED) == CORPUS


@pytest.mark.parametrize("name", CORPUS)
def test_bad_spec_gives_its_exact_message(name, monkeypatch):
    monkeypatch.chdir(HERE)
    started = time.perf_counter()
    assert error_line("table", name) == expected(name)
    # Not a benchmark: a generous bound that only a runaway expansion (alias or repeat bomb)
    # would exceed, on any machine.
    assert time.perf_counter() - started < 30


@pytest.mark.parametrize("name", ["yaml-python-object.yaml", "yaml-python-name.yaml"])
def test_python_tags_run_nothing(name, monkeypatch, capfd):
    monkeypatch.chdir(HERE)
    error_line("table", name)
    assert "pwned" not in capfd.readouterr().out


def test_the_limits_are_the_documented_ones():
    doc = (Path(__file__).parent.parent / "docs" / "errors.md").read_text(encoding="utf-8")
    for limit in (MAX_NODES, MAX_REPEAT, MAX_YAML_CHARS, MAX_YAML_DEPTH, MAX_YAML_VALUES):
        assert f"{limit:,}" in doc, limit


# --------------------------------------------------------------------------------------------
# Paths


def test_a_directory(tmp_path):
    folder = tmp_path / "net.yaml"
    folder.mkdir()
    assert error_line("table", str(folder)) == f"{folder}: is a directory, not a spec file"


def test_a_missing_file(tmp_path):
    path = tmp_path / "nowhere.yaml"
    assert error_line("table", str(path)) == f"{path}: no such file"


def test_an_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "secret.yaml"
    path.write_text("input: 3x8x8\nlayers: [relu]\n", encoding="utf-8")
    if os.geteuid() == 0:  # root reads through chmod 000: simulate the refusal
        real_open = os.open

        def refuse(file, *args, **kwargs):
            if str(file) == str(path):
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(os, "open", refuse)
    else:
        path.chmod(0)
    assert error_line("table", str(path)) == f"{path}: permission denied"


@pytest.mark.parametrize("make", [os.mkfifo, None])
def test_a_fifo_or_device_is_refused_without_blocking(tmp_path, make):
    path = tmp_path / "pipe.yaml"
    if make is None:
        path = Path(os.devnull)
    else:
        make(path)
    started = time.perf_counter()
    assert error_line("table", str(path)) == (
        f"{path}: is not a regular file (a FIFO, device or socket); a spec must be a file")
    assert time.perf_counter() - started < 30


def test_an_empty_spec_argument():
    assert error_line("table", "") == ("SPEC is empty: give a zoo name (`cnncalc list` shows "
                                       "the zoo) or a spec file")


@pytest.mark.parametrize("typed", ["alexnet.yml", "specs/alexnet.yaml"])
def test_a_missing_file_named_like_a_zoo_spec_points_at_it(tmp_path, monkeypatch, typed):
    monkeypatch.chdir(tmp_path)
    assert error_line("table", typed) == (
        f"{typed}: no such file; the zoo has 'alexnet' (without a path or extension: cnncalc "
        "table alexnet)")


def test_a_file_too_large_to_be_a_spec(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"# " + b"x" * (MAX_YAML_CHARS * 4) + b"\n")
    assert error_line("table", str(path)) == (
        f"{path}: the file is over {MAX_YAML_CHARS * 4:,} bytes; specs are limited to "
        f"{MAX_YAML_CHARS:,} characters")


def test_text_over_the_character_limit(tmp_path):
    path = tmp_path / "long.yaml"
    text = "input: 3x8x8\nlayers: [relu]\n" + "#" * MAX_YAML_CHARS + "\n"
    path.write_text(text, encoding="utf-8")
    assert error_line("table", str(path)) == (
        f"{path}: the spec is {len(text):,} characters long; the limit is "
        f"{MAX_YAML_CHARS:,}")


def test_debug_shows_the_traceback_then_the_same_line(monkeypatch):
    monkeypatch.chdir(HERE)
    result = runner.invoke(app, ["--debug", "table", "stride-zero.yaml"])
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "cnncalc: error: " + EXPECTED["stride-zero.yaml"].replace("{file}", "stride-zero.yaml"))


# --------------------------------------------------------------------------------------------
# YAML that is fine


def test_merge_keys_are_not_duplicates(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text(
        "input: 3x8x8\n"
        "layers:\n"
        "  - conv: &base {out: 4, kernel: 3, padding: 1}\n"
        "  - conv: {<<: *base, out: 8}\n", encoding="utf-8")
    result = runner.invoke(app, ["table", str(path), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert "8×8×8" in result.stdout or "8x8x8" in result.stdout


def test_an_alias_used_a_few_times_is_fine(tmp_path):
    path = tmp_path / "alias.yaml"
    path.write_text(
        "input: 3x8x8\n"
        "layers:\n"
        "  - sequence: &pair {layers: [{conv: {out: 3, kernel: 3, padding: 1}}, relu]}\n"
        "  - sequence: *pair\n", encoding="utf-8")
    assert runner.invoke(app, ["table", str(path)]).exit_code == 0


def test_a_flat_list_of_a_million_scalars_is_refused_as_what_it_is(tmp_path):
    """Issue 11: no alias, so not "an alias bomb"; refused from the parser's events before a
    node is composed (it took 4.8 s and 549 MB)."""
    path = tmp_path / "flat.yaml"
    path.write_text("input: 3x8x8\nlayers: [" + ",".join(["1"] * (MAX_YAML_VALUES + 10)) + "]\n",
                    encoding="utf-8")
    started = time.perf_counter()
    line = error_line("table", str(path))
    assert time.perf_counter() - started < 30
    assert line.startswith(f"{path}:2:")
    assert line.endswith(f"the YAML holds more than {MAX_YAML_VALUES:,} values (mappings, lists "
                         "and scalars): refused as too large for a spec")


def test_stdin_is_bounded_as_a_file_is():
    """`yes | cnncalc table -` must not read without end."""
    result = runner.invoke(app, ["table", "-"], input=b"y\n" * (MAX_YAML_CHARS * 2 + 10))
    assert result.exit_code == 2
    assert result.stderr == (f"cnncalc: error: <stdin>: stdin is over {MAX_YAML_CHARS * 4:,} "
                             f"bytes; specs are limited to {MAX_YAML_CHARS:,} characters\n")
