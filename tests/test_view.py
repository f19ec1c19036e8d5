"""`cnncalc view`: the page's data is the analysis' (the rows `table --format json` prints, at
every depth), the file is self-contained and small, and it is written as `plot` writes (never
over a file without --force). What the page does in a browser: tests/test_view_browser.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnncalc import analyze, load_spec
from cnncalc.cli import app
from cnncalc.compare import compare
from cnncalc import render, view

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def page_data(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="cnncalc-data">(.*?)</script>', html,
                      re.S)
    assert found, "no page data"
    return json.loads(found.group(1))


def rows_at(data: dict, depth: int | None) -> list[dict]:
    """The rows the page shows at a depth: as `Analysis.at_depth`, over the embedded rows."""
    if depth is None:
        return [r for r in data["rows"] if r["leaf"]]
    return [r for r in data["rows"] if r["depth"] == depth or (r["leaf"] and r["depth"] < depth)]


def table_json(*args: str) -> dict:
    result = runner.invoke(app, ["table", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("spec", ["alexnet", "googlenet", "unet", "resnet50"])
def test_the_page_holds_the_rows_of_table_json_at_every_depth(spec, tmp_path):
    out = tmp_path / "page.html"
    result = runner.invoke(app, ["view", spec, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"wrote {out}"
    data = page_data(out.read_text(encoding="utf-8"))
    (page,) = data["views"]
    for depth in [*page["depths"], None]:
        args = [spec] + (["--depth", str(depth)] if depth else [])
        expected = table_json(*args)
        assert rows_at(page, depth) == expected["layers"], depth
        assert page["totals"] == expected["totals"]
        assert page["convention"] == expected["convention"]
        assert page["warnings"] == expected["warnings"]
    # one node, one table row, per row; merges are the implied adds and concats
    assert len(page["nodes"]) == len(page["rows"])
    graph = analyze(load_spec(spec)).graph
    assert len(page["merges"]) == sum(1 for op in graph.ops if not op.row)


def test_options_reach_the_analysis(tmp_path):
    out = tmp_path / "a.html"
    result = runner.invoke(app, ["view", "alexnet", "-o", str(out), "--input", "3x224x224",
                                 "--batch", "4", "--convention", "flops", "-q"])
    assert result.exit_code == 0, result.output
    (page,) = page_data(out.read_text(encoding="utf-8"))["views"]
    expected = table_json("alexnet", "--input", "3x224x224", "--batch", "4", "--convention",
                          "flops")
    assert rows_at(page, None) == expected["layers"]
    assert page["convention_name"] == "flops" and page["batch"] == 4
    assert page["input"] == [3, 224, 224]


def test_the_page_opens_at_a_depth_that_fits():
    for spec, depth in (("alexnet", None), ("googlenet", 2), ("resnet152", 2), ("unet", None)):
        data = view.view_dict(analyze(load_spec(spec), explain=True))
        assert data["start_depth"] == depth, spec
        assert len(rows_at(data, depth)) <= view.MAX_NODES
    assert view.view_dict(analyze(load_spec("resnet152")), 3)["start_depth"] == 3


def test_edges_join_every_op_to_its_inputs_with_the_tensor_shape():
    analysis = analyze(load_spec("resnet50"), explain=True)
    data = view.view_dict(analysis)
    units = {f"r{i}" for i in range(len(data["rows"]))} | {m["id"] for m in data["merges"]} | \
        {"in"} | {o["id"] for o in data["outputs"]}
    assert all(a in units and b in units for a, b, _ in data["edges"])
    first_add = next(m for m in data["merges"] if m["label"] == "+")
    into = [e for e in data["edges"] if e[1] == first_add["id"]]
    assert len(into) == 2 and {e[2] for e in into} == {"256×56×56"}
    assert data["edges"][-1][1:] == ["out0", "1000"]


def test_floor_warnings_are_on_the_node_that_floors_and_the_blocks_around_it():
    data = view.view_dict(analyze(load_spec("resnet50"), explain=True))
    paths = [r["path"] for r in data["rows"]]
    node = data["nodes"][paths.index("layer2.0.downsample.0")]
    assert len(node["warnings"]) == 1 and node["warnings"][0].startswith("warning: layer2.0.")
    block = data["nodes"][paths.index("layer2")]["warnings"]
    assert node["warnings"][0] in block and all(w.split(": ")[1].startswith("layer2.")
                                                for w in block)
    assert data["nodes"][paths.index("layer1")]["warnings"] == []


def test_compare_two_specs_side_by_side(tmp_path):
    out = tmp_path / "c.html"
    result = runner.invoke(app, ["view", "inception-naive", "inception-bottleneck", "-o",
                                 str(out)])
    assert result.exit_code == 0, result.output
    data = page_data(out.read_text(encoding="utf-8"))
    assert [v["spec"] for v in data["views"]] == ["inception-naive", "inception-bottleneck"]
    analyses = [analyze(load_spec(s), explain=True) for s in ("inception-naive",
                                                                "inception-bottleneck")]
    comparison = compare(analyses)
    numbers = render.Numbers(False)
    headers, rows = render._comparison_totals(comparison, numbers)
    assert data["comparison"]["totals"] == {"headers": headers, "rows": rows}
    macs = next(r for r in rows if r[0] == "MACs")
    assert macs[-1] == render.ratio_text(comparison.ratios("macs")[1])
    assert data["comparison"]["rows"]["paths"] == [m.path for m in comparison.rows]
    default = tmp_path / "inception-naive-vs-inception-bottleneck.html"
    assert view.default_output(["inception-naive", "inception-bottleneck"]).name == default.name
    assert view.default_output(["-"]).name == "stdin.html"
    assert view.default_output(["../../x/net.yaml"]).name == "net.html"


def test_three_specs_and_other_suffixes_are_refused(tmp_path):
    result = runner.invoke(app, ["view", "alexnet", "vgg11", "vgg13", "-o", str(tmp_path / "x.html")])
    assert result.exit_code == 2 and "one spec, or two" in result.stderr
    result = runner.invoke(app, ["view", "alexnet", "-o", str(tmp_path / "x.svg")])
    assert result.exit_code == 2 and "must end in .html" in result.stderr
    assert not list(tmp_path.iterdir())


def test_symbolic_inputs_and_huge_networks_are_refused_in_one_line(tmp_path):
    result = runner.invoke(app, ["view", "alexnet", "--input", "3xHxW", "-o",
                                 str(tmp_path / "x.html")])
    assert result.exit_code == 2 and "numeric --input" in result.stderr
    spec = tmp_path / "big.yaml"
    spec.write_text("input: 8x4x4\nlayers:\n  - repeat: {times: 2001, layers: [relu]}\n")
    result = runner.invoke(app, ["view", str(spec), "-o", str(tmp_path / "x.html")])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "the limit is 2,000" in result.stderr
    assert not (tmp_path / "x.html").exists()


def test_an_existing_file_is_never_overwritten_without_force(tmp_path):
    out = tmp_path / "a.html"
    out.write_text("mine")
    result = runner.invoke(app, ["view", "alexnet", "-o", str(out)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "exists" in result.stderr and "--force" in result.stderr
    assert out.read_text() == "mine"
    link = tmp_path / "link.html"
    link.symlink_to(out)
    assert runner.invoke(app, ["view", "alexnet", "-o", str(link)]).exit_code == 2
    assert out.read_text() == "mine"
    result = runner.invoke(app, ["view", "alexnet", "-o", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html", "link.html"]


def test_a_real_run_writes_the_default_name_from_the_argument(tmp_path):
    spec = tmp_path / "my net.yaml"
    spec.write_text((ROOT / "specs" / "alexnet.yaml").read_text())
    proc = subprocess.run([sys.executable, "-m", "cnncalc", "view", str(spec), "-q"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "wrote my_net.html\n" and proc.stderr == ""
    assert (tmp_path / "my_net.html").stat().st_size > 50_000


def _outside_references(html: str) -> list[str]:
    """Anything that could make the page fetch: a URL other than the SVG namespace, a src or
    href that is not a data: URL or a fragment, an @import or url() in the style."""
    found = [u for u in re.findall(r"(?:https?:|wss?:|ftp:)//[^\s\"'<>)]*", html)
             if u != "http://www.w3.org/2000/svg"]
    found += [m for m in re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", html)
              if not m.startswith(("data:", "#"))]
    found += re.findall(r"@import|url\((?!#)", html)
    return found


@pytest.mark.parametrize("spec", ["resnet152", "googlenet", "unet"])
def test_the_file_is_self_contained_and_small(spec, tmp_path):
    html = view.page([analyze(load_spec(spec), explain=True)])
    assert _outside_references(html) == []
    assert "sourceMappingURL" not in html
    assert "default-src 'none'" in html  # the page may fetch nothing, even if it tried
    assert "Copyright (c) 2012-2014 Chris Pettitt" in html and "Permission is hereby granted" in html
    size = len(html.encode("utf-8"))
    assert size < 3 * 2**20, size  # resnet152: about 0.6 MB


def test_text_from_a_spec_cannot_close_the_script_or_fill_a_slot(tmp_path):
    spec = tmp_path / "x.yaml"
    spec.write_text('name: x\ntitle: "</script><script>alert(1)</script> {{DATA}} {{SCRIPT}}"\n'
                    "input: 3x8x8\nlayers:\n  - conv: {out: 4, kernel: 3}\n")
    out = tmp_path / "x.html"
    assert runner.invoke(app, ["view", str(spec), "-o", str(out)]).exit_code == 0
    html = out.read_text(encoding="utf-8")
    assert html.count("</script>") == 3  # the data, dagre and the page's script
    assert page_data(html)["views"][0]["title"].startswith("</script><script>alert(1)")
    assert html.count("var dagre=") == 1 and html.count("data-ready") == 1  # each slot once
    assert "<title>cnncalc view: x</title>" in html


def test_the_wheel_ships_the_page_files():
    """The template, style, script and dagre with its licence are package files (hatch takes
    every file under cnncalc/ that git does not ignore)."""
    here = ROOT / "cnncalc" / "view"
    names = ("page.html", "view.css", "view.js", "vendor/dagre.min.js", "vendor/LICENSE-dagre",
             "vendor/NOTICE")
    for name in names:
        assert (here / name).is_file(), name
    ignored = subprocess.run(["git", "check-ignore", *(str(here / n) for n in names)],
                             cwd=ROOT, capture_output=True, text=True)
    assert ignored.stdout == ""
