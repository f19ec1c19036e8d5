"""``--explain``: every layer's formulas with the numbers substituted, as course notes write them.

The expected lines are the seeds' hand counts; a property test re-evaluates the written arithmetic
of every formula in the zoo and checks it gives the number the engine computed, so text and
numbers cannot drift apart.
"""

from __future__ import annotations

import json
import math
import re

import pytest
from typer.testing import CliRunner

from cnncalc import analyze, load_spec, parse_spec, zoo_names
from cnncalc.cli import app
from cnncalc.layers import slide_text

runner = CliRunner()


def lines(*text: str) -> str:
    return "\n".join(text) + "\n"


def formula(spec_text: str, path: str, input: str | None = None) -> list[str]:
    analysis = analyze(parse_spec(spec_text, "net.yaml", "net"), input=input, explain=True)
    return list(analysis.row(path).formula)


def test_alexnet_conv1_as_the_course_notes_write_it():
    analysis = analyze(load_spec("alexnet"), explain=True)
    assert list(analysis.row("conv1").formula) == [
        "(227 − 11 + 2·0)/4 + 1 = 55",
        "params: 11·11·3·96 + 96 = 34,944",
        "MACs: 55·55·96 · 11·11·3 = 105,415,200",
        "RF: 1 + (11 − 1)·1 = 11, jump 1·4 = 4, start 0 + ((11 − 1)/2 − 0)·1 = 5",
    ]
    assert analysis.row("fc6").formula[:2] == ("params: 9216·4096 + 4096 = 37,752,832",
                                               "MACs: 9216·4096 = 37,748,736")
    assert analysis.row("flatten").formula[0] == "256·6·6 = 9,216"


def test_inexact_division_shows_the_quotient_and_the_floor():
    analysis = analyze(load_spec("alexnet"), input="3x224x224", explain=True)
    # (224 − 11)/4 = 53.25 → 54 windows
    assert analysis.row("conv1").formula[0] == "(224 − 11 + 2·0)/4 + 1 = ⌊53.25⌋ + 1 = 54"
    # (54 − 3)/2 = 25.5 → 26
    assert analysis.row("pool1").formula[0] == "(54 − 3 + 2·0)/2 + 1 = ⌊25.5⌋ + 1 = 26"


def test_non_terminating_quotient_is_a_fraction():
    # (10 − 3)/3 = 7/3
    assert slide_text(10, 3, 3, (0, 0)) == "(10 − 3 + 2·0)/3 + 1 = ⌊7/3 ≈ 2.333⌋ + 1 = 3"


def test_ceil_mode_shows_the_ceiling():
    analysis = analyze(load_spec("googlenet"), explain=True)
    # GoogLeNet's first pool: ⌈(112 − 3)/2⌉ + 1 = ⌈54.5⌉ + 1 = 56
    assert analysis.row("pool1").formula[0] == "(112 − 3 + 2·0)/2 + 1 = ⌈54.5⌉ + 1 = 56"


def test_ceil_mode_window_starting_in_the_padding_is_dropped():
    # ⌈(5 + 2 − 2)/2⌉ + 1 = 4, but the 4th window would start at 6 ≥ 5 + 1
    text = slide_text(5, 2, 2, (1, 1), ceil_mode=True)
    assert text == ("(5 − 2 + 2·1)/2 + 1 = ⌈2.5⌉ + 1 − 1 = 3 "
                    "(the last window would start in the right padding)")


def test_dilation_groups_asymmetric_padding_and_axes():
    spec = lines("input: 64x32x32", "layers:",
                 "  - conv: {name: d, out: 64, kernel: 3, dilation: 2, padding: 2, groups: 32}",
                 "  - conv: {name: s, out: 8, kernel: 2, stride: 2, padding: same, bias: false}",
                 "  - conv: {name: r, out: 8, kernel: [1, 7], padding: [0, 3]}")
    d = formula(spec, "d")
    # extent 2·(3 − 1) + 1 = 5: (32 − 5 + 4)/1 + 1 = 32; weights 3·3·(64/32)·64 = 1,152
    assert d[0] == "(32 − (2·(3 − 1) + 1) + 2·2)/1 + 1 = 32"
    assert d[1] == "params: 3·3·(64/32)·64 + 64 = 1,216"
    assert d[2] == "MACs: 32·32·64 · 3·3·(64/32) = 1,179,648"
    s = formula(spec, "s")
    # 'same' with stride 2 on 32: ⌈32/2⌉ = 16 outputs, total padding (16 − 1)·2 + 2 − 32 = 0
    assert s[0] == "(32 − 2 + 2·0)/2 + 1 = 16"
    assert s[1] == "params: 2·2·64·8 = 2,048"
    # 'same' for a 4-wide kernel at stride 1 pads 3: 1 before, 2 after
    t = formula(spec.replace("kernel: 2, stride: 2", "kernel: 4, stride: 1"), "s")
    assert t[0] == "(32 − 4 + 1 + 2)/1 + 1 = 32"
    r = formula(spec, "r")
    assert r[:2] == ["height: (16 − 1 + 2·0)/1 + 1 = 16", "width: (16 − 7 + 2·3)/1 + 1 = 16"]
    assert "RF height: " in r[-2] and "RF width: " in r[-1]


def test_lenet_1998_table_subsample_and_rbf():
    analysis = analyze(load_spec("lenet5-1998"), explain=True)
    # C3: 60 connections of 5×5 plus 16 biases = 1,516 (LeCun et al. 1998)
    assert analysis.row("c3").formula[1] == \
        "params: 5·5·60 + 16 = 1,516 (Σ input maps seen in the table)"
    assert analysis.row("s2").formula[1] == "params: 2·6 = 12 (a coefficient and a bias per map)"
    assert analysis.row("output").formula == ("params: 84·10 = 840", "MACs: 84·10 = 840")


def test_batchnorm_params_and_buffers():
    bn = formula(lines("input: 64x8x8", "layers:", "  - batchnorm: {name: bn}"), "bn")
    assert bn == ["params: 2·64 = 128", "buffers: 2·64 + 1 = 129"]


def test_pointwise_layers_have_no_formula():
    assert formula(lines("input: 4x8x8", "layers:", "  - relu: {name: act}"), "act") == []


def test_without_explain_rows_carry_no_formula():
    assert all(r.formula == () for r in analyze(load_spec("alexnet")).rows)


# --------------------------------------------------------------------------------------------
# Text and numbers cannot drift: evaluate what the formulas write


def _evaluate(arithmetic: str) -> float:
    python = (arithmetic.replace("−", "-").replace("·", "*").replace(",", "")
              .replace("⌊", "math.floor(").replace("⌋", ")")
              .replace("⌈", "math.ceil(").replace("⌉", ")"))
    return eval(python, {"math": math})  # noqa: S307 - our own formula text


def _check_size_line(text: str, expected: int) -> None:
    text = re.sub(r"^(height|width): ", "", text)
    text = text.split(" (the last window")[0]
    parts = text.split(" = ")
    assert int(parts[-1].replace(",", "")) == expected, text
    written = parts[0]
    if "⌊" in parts[1]:
        assert math.floor(_evaluate(written.removesuffix(" + 1"))) + 1 == expected, text
    elif "⌈" in parts[1]:
        correction = 1 if parts[1].endswith("− 1") else 0
        assert math.ceil(_evaluate(written.removesuffix(" + 1"))) + 1 - correction == expected
    else:
        assert _evaluate(written) == expected, text


@pytest.mark.parametrize("name", zoo_names())
def test_every_formula_in_the_zoo_evaluates_to_the_engines_number(name: str):
    analysis = analyze(load_spec(name), explain=True)
    for row in analysis.rows:
        for text in row.formula:
            if text.startswith("params: "):
                left, right = text.removeprefix("params: ").split(" (")[0].split(" = ")
                assert _evaluate(left) == int(right.replace(",", "")) == row.params, text
            elif text.startswith("MACs: "):
                left, right = text.removeprefix("MACs: ").split(" (")[0].split(" = ")
                assert _evaluate(left) == int(right.replace(",", "")) == row.macs, text
            elif text.startswith("buffers: "):
                left, right = text.removeprefix("buffers: ").split(" = ")
                assert _evaluate(left) == int(right.replace(",", "")) == row.buffers
            elif text.startswith("RF"):
                sizes = re.findall(r"= (\d+), jump", text)
                assert int(sizes[0]) in row.rf, text
            elif text.startswith("channels: "):  # a concat: the operands' channels summed
                left, right = text.removeprefix("channels: ").split(" = ")
                assert _evaluate(left) == int(right.replace(",", "")) == row.output[0], text
            elif row.kind == "flatten":
                assert _evaluate(text.split(" = ")[0]) == row.output[0]
            elif re.search(r"\d+ → \d+ from \d+ \(\(", text):  # a centre crop, per axis
                size, out, start, a, b = map(int, re.findall(r"\d+", text.split(": ")[-1])[:5])
                assert out in row.output[1:] and start == (size - out) // 2 == (a - b) // 2, text
            elif text.endswith("(broadcast)"):  # mul: the operands' shapes to the output's
                assert text.split(" → ")[1] == f"{'×'.join(map(str, row.output))} (broadcast)"
            elif "→" in text:
                assert text.endswith(f"→ {row.output[1]}×{row.output[2]} (a fixed output size)")
            else:
                axis = 2 if text.startswith("width") else 1
                _check_size_line(text, row.output[axis])
                if not text.startswith(("height", "width")):
                    assert row.output[1] == row.output[2] or "height" in text


# --------------------------------------------------------------------------------------------
# Command line


def test_cli_explain_prints_formulas_under_the_table():
    out = runner.invoke(app, ["table", "alexnet", "--explain"])
    assert out.exit_code == 0, out.output
    assert "conv1: (227 − 11 + 2·0)/4 + 1 = 55" in out.stdout
    assert "  params: 11·11·3·96 + 96 = 34,944" in out.stdout
    assert "  MACs: 55·55·96 · 11·11·3 = 105,415,200" in out.stdout
    plain = runner.invoke(app, ["table", "alexnet"])
    assert "params: 11·11·3·96" not in plain.stdout


def test_cli_explain_markdown_and_csv():
    md = runner.invoke(app, ["table", "alexnet", "--explain", "--format", "markdown"]).stdout
    assert "conv1: (227 − 11 + 2·0)/4 + 1 = 55" in md
    csv_text = runner.invoke(app, ["table", "alexnet", "--explain", "--format", "csv"]).stdout
    assert "(227 − 11 + 2·0)/4 + 1 = 55; params: 11·11·3·96 + 96 = 34,944" in csv_text


def test_json_always_has_the_formula_field():
    out = runner.invoke(app, ["table", "alexnet", "--format", "json"])
    rows = {r["path"]: r for r in json.loads(out.stdout)["layers"]}
    assert rows["conv1"]["formula"][0] == "(227 − 11 + 2·0)/4 + 1 = 55"
    assert rows["relu1"]["formula"] == []
    grouped = json.loads(runner.invoke(app, ["table", "resnet50", "--format", "json",
                                             "--depth", "1"]).stdout)
    assert {r["path"]: r["formula"] for r in grouped["layers"]}["layer1"] == []
