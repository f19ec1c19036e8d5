"""`cnncalc plot` (matplotlib, optional and lazily imported) and the table's MAC-share bars."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cnncalc.cli import app
from cnncalc.render import share_bar

runner = CliRunner()


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cnncalc: error: ")
    return lines[0]


# --------------------------------------------------------------------------------------------
# the table's bar column


@pytest.mark.parametrize("part, whole, bar", [
    (0, 100, ""), (5, 0, ""),
    (100, 100, "██████████"), (50, 100, "█████"), (1, 2, "█████"),
    (1, 8 * 10, "▏"), (1, 10**9, "▏"),  # a non-zero share always shows a sliver
    (3, 16, "█▉"),  # 3/16 of 80 eighths = 15 eighths: one full cell and ▉ (7/8)
    (150, 100, "██████████"),  # capped at the full width
])
def test_share_bar(part, whole, bar):
    assert share_bar(part, whole) == bar


def test_table_shows_the_mac_share_column():
    result = runner.invoke(app, ["table", "alexnet"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "MAC share" in lines[1]
    conv2 = next(line for line in lines if line.startswith("conv2 "))
    # conv2: 447,897,600 of 1,135,256,096 MACs = 39.5%: 31.6 eighths of 10 cells → 32 = ████
    assert conv2.rstrip().endswith("████")
    relu2 = next(line for line in lines if line.startswith("relu2 "))
    assert "█" not in relu2


def test_markdown_csv_and_json_have_no_bar_column():
    for fmt in ("markdown", "csv", "json"):
        out = runner.invoke(app, ["table", "alexnet", "--format", fmt]).stdout
        assert "share" not in out.lower() and "█" not in out


# --------------------------------------------------------------------------------------------
# plot without matplotlib


def test_plot_without_matplotlib_is_one_error_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    result = runner.invoke(app, ["plot", "alexnet", "--out", str(tmp_path / "a.svg")])
    assert result.exit_code == 2
    assert "pip install 'cnncalc[plot]'" in one_error_line(result)
    assert not (tmp_path / "a.svg").exists()


def test_other_commands_never_import_matplotlib():
    code = ("import sys; from typer.testing import CliRunner; from cnncalc.cli import app; "
            "r = CliRunner().invoke(app, ['table', 'resnet50']); assert r.exit_code == 0; "
            "r = CliRunner().invoke(app, ['schema']); assert r.exit_code == 0; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------
# plot with matplotlib


def _needs_matplotlib():
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (the plot extra)")


@pytest.mark.parametrize("args, labels", [
    (["alexnet"], ["conv1", "fc6", "fc8", "Live activation memory (inference)",
                   "peak 2.22MiB while relu1 runs"]),
    (["resnet50", "--depth", "2"], ["layer1.0 (bottleneck)", "layer4.2 (bottleneck)", "fc"]),
])
def test_plot_svg_has_every_row_label(tmp_path, args, labels):
    _needs_matplotlib()
    out = tmp_path / "net.svg"
    result = runner.invoke(app, ["plot", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {out}\n"
    svg = out.read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml")
    # matplotlib writes text as glyph paths with the string in a comment
    for label in labels:
        assert f"<!-- {label} -->" in svg, label


def test_plot_png(tmp_path):
    _needs_matplotlib()
    out = tmp_path / "net.png"
    result = runner.invoke(app, ["plot", "lenet5", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_default_output_is_the_spec_name(tmp_path, monkeypatch):
    _needs_matplotlib()
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["plot", "inception-bottleneck"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "inception-bottleneck.svg").is_file()


@pytest.mark.parametrize("out, problem", [("net.jpg", "must end in"), ("missing/net.svg", "no such directory")])
def test_plot_bad_output_is_one_error_line(tmp_path, monkeypatch, out, problem):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["plot", "alexnet", "--out", out])
    assert result.exit_code == 2
    assert problem in one_error_line(result)


def test_plot_never_overwrites_an_existing_file(tmp_path):
    out = tmp_path / "mine.png"
    out.write_bytes(b"the user's own picture")
    result = runner.invoke(app, ["plot", "lenet5", "--out", str(out)])
    assert result.exit_code == 2
    assert "exists; cnncalc does not overwrite files" in one_error_line(result)
    assert out.read_bytes() == b"the user's own picture"


def test_plot_force_replaces_the_file_and_leaves_no_partial(tmp_path):
    _needs_matplotlib()
    out = tmp_path / "mine.png"
    out.write_bytes(b"old")
    result = runner.invoke(app, ["plot", "lenet5", "--out", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.png"]


def test_plot_to_a_directory_is_refused_even_with_force(tmp_path):
    folder = tmp_path / "pics.svg"
    folder.mkdir()
    result = runner.invoke(app, ["plot", "lenet5", "--out", str(folder), "--force"])
    assert result.exit_code == 2
    assert "is a directory; give a file name" in one_error_line(result)
    assert folder.is_dir()


def _png_size(path) -> tuple[int, int]:
    import struct

    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def test_a_deep_network_is_drawn_at_a_depth_that_fits_and_says_so(tmp_path):
    _needs_matplotlib()
    out = tmp_path / "r152.png"
    result = runner.invoke(app, ["plot", "resnet152", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "note: 465 layers are more bars than a picture holds (80); drawn at --depth 2 " \
           "(57 rows)" in result.stderr
    width, height = _png_size(out)
    assert height < 2600  # was 14,700 px for every layer
    quiet = runner.invoke(app, ["plot", "resnet152", "--out", str(tmp_path / "q.png"), "-q"])
    assert "note:" not in quiet.stderr


def test_an_explicit_depth_is_drawn_as_asked():
    from cnncalc import analyze, load_spec
    from cnncalc.plot import fitting_depth

    analysis = analyze(load_spec("resnet152"))
    assert fitting_depth(analysis, 3) == (3, None)
    assert fitting_depth(analyze(load_spec("alexnet")), None) == (None, None)


def test_the_bars_fill_the_axes_and_log_scale_shows_small_layers(tmp_path):
    _needs_matplotlib()
    out = tmp_path / "alexnet.svg"
    result = runner.invoke(app, ["plot", "alexnet", "--log", "--out", str(out)])
    assert result.exit_code == 0, result.output
    svg = out.read_text(encoding="utf-8")
    assert "<!-- 34.9K -->" in svg and "log scale" in svg
    from matplotlib.figure import Figure  # noqa: F401 (matplotlib present)

    from cnncalc import analyze, load_spec
    from cnncalc.plot import _live_bytes

    analysis = analyze(load_spec("resnet18"))
    live, report = _live_bytes(analysis, analysis.at_depth(None))
    assert max(live) == report.activation_peak_bytes  # the panel's peak is cnncalc memory's
