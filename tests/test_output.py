"""cnncalc.output: a command writes the file the user named and nothing else (issue 11)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnncalc.cli import app
from cnncalc.errors import CnncalcError
from cnncalc.output import safe_stem, write_file, write_text

runner = CliRunner()


def _error(result) -> str:
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def _listing(folder: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for p in sorted(folder.iterdir()):
        out[p.name] = f"-> {os.readlink(p)}" if p.is_symlink() else (
            "<dir>" if p.is_dir() else p.read_bytes())
    return out


def test_an_existing_partial_of_the_same_name_is_left_alone(tmp_path):
    (tmp_path / ".chart.svg.partial").write_text("notes")
    write_text(tmp_path / "chart.svg", "<svg/>")
    assert _listing(tmp_path) == {".chart.svg.partial": b"notes", "chart.svg": b"<svg/>"}


def test_a_symlink_is_never_written_through(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep")
    (tmp_path / "chart.svg").symlink_to(target)
    with pytest.raises(CnncalcError, match="exists; cnncalc does not overwrite"):
        write_text(tmp_path / "chart.svg", "new")
    write_text(tmp_path / "chart.svg", "new", overwrite=True)  # replaces the link itself
    assert target.read_text() == "keep"
    assert not (tmp_path / "chart.svg").is_symlink()
    assert (tmp_path / "chart.svg").read_text() == "new"


def test_a_failed_write_leaves_nothing(tmp_path):
    def boom(stream):
        stream.write(b"half")
        raise CnncalcError("the writer failed")

    with pytest.raises(CnncalcError):
        write_file(tmp_path / "x.svg", boom)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("make, problem", [
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: os.mkfifo(p), "is not a regular file"),
])
def test_directories_and_special_files_are_refused_even_with_overwrite(tmp_path, make, problem):
    path = tmp_path / "out.svg"
    make(path)
    with pytest.raises(CnncalcError, match=problem):
        write_text(path, "x", overwrite=True)


@pytest.mark.parametrize("path, problem", [
    ("a" * 300 + ".svg", "the limit is 255"),
    ("/proc/x.svg", "cannot be written"),
    ("no/such/dir/x.svg", "no such directory"),
])
def test_bad_output_paths_are_one_line(tmp_path, monkeypatch, path, problem):
    monkeypatch.chdir(tmp_path)
    line = _error(runner.invoke(app, ["plot", "lenet5", "--out", path]))
    assert problem in line
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folder_is_one_line(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes through chmod")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        assert "permission denied" in _error(runner.invoke(app, ["plot", "lenet5", "--out",
                                                                 str(folder / "x.svg")]))
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize("name", ["../escaped", "/abs/escaped", "x/../../y"])
def test_the_spec_name_never_chooses_the_output_path(tmp_path, monkeypatch, name):
    pytest.importorskip("matplotlib")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    (work / "net.yaml").write_text(f"name: {name}\ninput: 3x8x8\nlayers: [relu]\n")
    result = runner.invoke(app, ["plot", "net.yaml", "--force"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in work.iterdir()) == ["net.svg", "net.yaml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


def test_safe_stem():
    assert safe_stem("resnet50") == "resnet50"
    assert safe_stem("nets/mine.yaml") == "mine"
    assert safe_stem("../..") == "plot"
    assert safe_stem("a\x1bb c") == "a_b_c"
    assert safe_stem("") == "plot"
    assert len(safe_stem("x" * 500)) == 100


def test_plot_of_a_network_with_no_layers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.yaml").write_text("input: 3x8x8\nlayers: []\n")
    assert "no layers" in _error(runner.invoke(app, ["plot", "empty.yaml", "--out", "e.svg"]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.yaml"]


def test_plot_refuses_more_bars_than_it_can_draw(tmp_path, monkeypatch):
    from cnncalc.plot import MAX_PLOT_ROWS

    monkeypatch.chdir(tmp_path)
    (tmp_path / "flat.yaml").write_text(
        f"input: 3x8x8\nlayers:\n  - repeat: {{times: {MAX_PLOT_ROWS + 1}, layers: [relu]}}\n")
    (tmp_path / "nested.yaml").write_text(
        "input: 3x8x8\nlayers:\n  - repeat: {times: 101, layers: [{sequence: {layers: "
        "[relu, relu, relu, relu, relu, relu, relu, relu, relu, relu]}}]}\n")
    assert _error(runner.invoke(app, ["plot", "flat.yaml", "--out", "f.svg"])).endswith(
        f"the chart would have {MAX_PLOT_ROWS + 1:,} bars; the limit is {MAX_PLOT_ROWS:,} at "
        "every --depth")
    assert _error(runner.invoke(app, ["plot", "nested.yaml", "--out", "n.svg", "--depth",
                                      "2"])).endswith(": --depth 1 gives 101")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flat.yaml", "nested.yaml"]


def test_plot_draws_dollar_signs_as_text_not_matplotlib_math(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.yaml").write_text('input: 3x8x8\ntitle: "cost $\\\\frac{$"\n'
                                     'layers:\n  - relu: {name: "a$^$"}\n')
    result = runner.invoke(app, ["plot", "d.yaml", "--out", "d.svg"])
    assert result.exit_code == 0, result.output
    assert "<!-- a$^$ -->" in (tmp_path / "d.svg").read_text()


# --------------------------------------------------------------------------------------------
# stdout that cannot be written


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("args", [["table", "resnet152"], ["table", "resnet50", "-f", "json"],
                                  ["check", "alexnet"]])
def test_a_full_disk_on_stdout_is_one_line(args):
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    with open("/dev/full", "w") as full:
        out = subprocess.run([sys.executable, "-m", "cnncalc", *args], stdout=full,
                             stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    assert out.returncode == 2
    assert out.stderr == "cnncalc: error: cannot write the output: no space left on the device\n"


def test_a_closed_stdout_is_one_line():
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(f"'{sys.executable}' -m cnncalc table lenet5 >&-", shell=True,
                         stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    assert out.returncode == 2
    assert out.stderr == "cnncalc: error: cannot write the output: stdout is closed\n"


def test_a_broken_pipe_is_one_line(monkeypatch):
    import errno

    from cnncalc import cli

    def broken(*args, **kwargs):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(cli, "_write_report", broken)
    assert _error(runner.invoke(app, ["table", "lenet5"])) == (
        "cnncalc: error: cannot write the output: the reader closed the pipe")


def test_sigterm_while_writing_leaves_no_temporary_file(tmp_path):
    import signal
    import subprocess
    import sys
    import time as clock

    root = Path(__file__).resolve().parent.parent
    script = ("import sys, time\nfrom pathlib import Path\nfrom cnncalc.output import write_file\n"
              "def slow(stream):\n    stream.write(b'half'); print('writing', flush=True); "
              "time.sleep(60)\n"
              f"write_file(Path({str(tmp_path / 'x.svg')!r}), slow)\n")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(root)})
    assert child.stdout.readline() == "writing\n"
    assert len(list(tmp_path.iterdir())) == 1  # the temporary file
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == 128 + signal.SIGTERM
    clock.sleep(0.1)
    assert list(tmp_path.iterdir()) == []
