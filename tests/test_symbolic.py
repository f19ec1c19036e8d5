"""Symbolic input sizes: the expressions must agree with the concrete engine at every sampled size,
for every layer's output, parameters, MACs and activation memory."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

sympy = pytest.importorskip("sympy")

from cnncalc import analyze, load_spec  # noqa: E402
from cnncalc.check import Exactness  # noqa: E402
from cnncalc.cli import app  # noqa: E402
from cnncalc.symbolic import analyze_symbolic, has_symbol, pretty  # noqa: E402

runner = CliRunner()
H, W = sympy.symbols("H W", integer=True, positive=True)


def agree(result, values: dict, shape: tuple[int, int, int]) -> None:
    """Every leaf and group of the symbolic result, evaluated at ``values``, equals the engine."""
    concrete = analyze(result.spec, input=shape, batch=result.batch, dtype=result.dtype)
    by_path = {r.path: r for r in concrete.rows}
    for row in result.rows:
        want = by_path[row.path]
        got_output = tuple(result.evaluate(d, values) for d in row.output)
        assert got_output == want.output, (row.path, shape)
        assert result.evaluate(row.params, values) == want.params, (row.path, shape)
        assert result.evaluate(row.macs, values) == want.macs, (row.path, shape)
        assert result.evaluate(row.activation_bytes, values) == want.activation_bytes, row.path
    for key in ("params", "macs", "activation_bytes"):
        assert result.evaluate(result.totals[key], values) == getattr(concrete.totals, key)


def valid_sizes(name: str, sizes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    spec = load_spec(name)
    exactness = Exactness(spec)
    return [(h, w) for h, w in sizes if exactness.floored_axes((spec.input[0], h, w)) is not None]


SAMPLES = [(224, 224), (227, 227), (225, 231), (256, 199), (300, 300), (97, 130), (512, 384),
           (67, 67), (129, 163), (1000, 777)]


@pytest.mark.parametrize("name", ["alexnet", "resnet50", "vgg16", "googlenet", "lenet5-1998"])
def test_expressions_agree_with_the_engine_at_sampled_sizes(name: str):
    spec = load_spec(name)
    result = analyze_symbolic(spec, f"{spec.input[0]}xHxW", batch=2, dtype="fp16")
    sizes = valid_sizes(name, SAMPLES + [(spec.input[1], spec.input[2])])
    assert len(sizes) >= 4
    for h, w in sizes:
        agree(result, {H: h, W: w}, (spec.input[0], h, w))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=st.integers(67, 600), w=st.integers(67, 600))
def test_alexnet_expressions_agree_everywhere(h: int, w: int):
    agree(ALEXNET, {H: h, W: w}, (3, h, w))


ALEXNET = analyze_symbolic(load_spec("alexnet"), "3xHxW")


def test_alexnet_sizes_are_the_stepwise_floors():
    result = ALEXNET
    defs = {str(k): pretty(v) for k, v in result.sizes.items()}
    assert defs["H1"] == "⌊(H − 11)/4⌋ + 1"
    assert defs["H2"] == "⌊(H1 − 3)/2⌋ + 1"
    assert defs["W4"] == "⌊(W3 − 3)/2⌋ + 1"
    # conv1: 96 maps of H1×W1, 55·55 → H1·W1 positions of 11·11·3·96 = 34,848 weights
    conv1 = result.row("conv1")
    assert pretty(conv1.macs) == "34,848·H1·W1"
    assert conv1.params == 34_944 and not conv1.params_depend
    # expanded in the input symbols, the floors are the formulas'
    expanded = result.expand(conv1.output[1])
    assert expanded == sympy.floor((H - 11) / 4) + 1


def test_linear_after_flatten_depends_on_the_input_size():
    result = ALEXNET
    fc6 = result.row("fc6")
    assert fc6.params_depend and not result.row("fc7").params_depend
    # in = 256·H4·W4; at 227: 256·6·6 = 9,216. H4 = 6 for H from 227 to 258 (259 gives 7 and
    # 226 gives 5: the exact sizes are 32 apart)
    (req,) = result.requirements
    assert req.path == "fc6" and req.value == 9216 and req.fits == (227, 258)


def test_fully_convolutional_stretch_and_adaptive_pool_keep_params_numbers():
    result = analyze_symbolic(load_spec("resnet50"), "3xSxS")
    assert isinstance(result.totals["params"], int)
    assert result.totals["params"] == 25_557_032
    assert result.requirements == []
    # ResNet-50's five halvings: S1 = ⌊(S − 1)/2⌋ + 1 (7×7/2 p3), … S5
    assert [str(s) for s in result.sizes] == ["S1", "S2", "S3", "S4", "S5"]
    assert pretty(result.sizes[sympy.Symbol("S1", integer=True, positive=True)]) == "⌊(S − 1)/2⌋ + 1"
    # the 1×1/2 projection and the 3×3/2 p1 reach the same size: one name, no error
    row = result.row("layer2.0")
    assert row.output[1] == sympy.Symbol("S3", integer=True, positive=True)


def test_one_symbol_with_numbers():
    result = analyze_symbolic(load_spec("alexnet"), "3x227xW")
    assert result.row("conv1").output[1] == 55
    for w in (227, 300, 128):
        agree(result, {sympy.Symbol("W", integer=True, positive=True): w}, (3, 227, w))


def test_ceil_mode_sizes_are_ceilings():
    result = analyze_symbolic(load_spec("googlenet"), "3xHxW")
    assert "⌈(H1 − 3)/2⌉ + 1" in [pretty(d) for d in result.sizes.values()]


def test_has_symbol():
    assert has_symbol("3xHxW") and has_symbol("Cx224x224") and has_symbol("3×S×S")
    assert not has_symbol("3x224x224") and not has_symbol(None)


def test_sympy_is_not_imported_without_a_symbol():
    code = ("import sys; from typer.testing import CliRunner; from cnncalc.cli import app; "
            "r = CliRunner().invoke(app, ['table', 'alexnet', '--explain']); "
            "assert r.exit_code == 0; r = CliRunner().invoke(app, ['check', 'resnet50']); "
            "print('sympy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------
# Command line


def test_cli_table_symbolic():
    out = runner.invoke(app, ["table", "alexnet", "--input", "3xHxW"])
    assert out.exit_code == 0, out.output
    assert "H1 = ⌊(H − 11)/4⌋ + 1" in out.stdout
    assert "34,848·H1·W1" in out.stdout
    assert "fc6: its parameters depend on the input size" in out.stdout
    md = runner.invoke(app, ["table", "alexnet", "--input", "3xHxW", "--format", "markdown"])
    assert "- H1 = ⌊(H − 11)/4⌋ + 1" in md.stdout
    csv_text = runner.invoke(app, ["table", "alexnet", "-i", "3xHxW", "-f", "csv"]).stdout
    assert "floor(H/4 - 11/4) + 1" in csv_text


def test_cli_symbolic_json():
    out = runner.invoke(app, ["table", "alexnet", "--input", "3xHxW", "--format", "json"])
    data = json.loads(out.stdout)
    assert data["symbolic"] is True and data["input"] == [3, "H", "W"]
    assert data["sizes"]["H1"] == {"definition": "floor(H/4 - 11/4) + 1",
                                   "expression": "floor(H/4 - 11/4) + 1"}
    rows = {r["path"]: r for r in data["layers"]}
    assert rows["conv1"]["params"] == 34944
    assert rows["conv1"]["output_named"] == [96, "H1", "W1"]
    assert sympy.sympify(rows["conv1"]["output"][1]).subs({"H": 227}) == 55
    assert rows["fc6"]["params_depend_on_input"] is True
    assert data["requirements"] == [{"path": "fc6", "features": data["requirements"][0]["features"],
                                     "value_at_spec_input": 9216, "fits": [227, 258]}]


def test_cli_symbolic_errors_exit_2():
    for shape in ("3xHx", "3xH-1xW", "HxW"):
        out = runner.invoke(app, ["table", "alexnet", "--input", shape])
        assert out.exit_code == 2, (shape, out.output)
        assert out.stderr.startswith("cnncalc: error: ")


@pytest.mark.parametrize("option", [["--explain"], ["--convention", "fvcore"]])
def test_cli_symbolic_refuses_what_needs_numbers(option):
    out = runner.invoke(app, ["table", "alexnet", "--input", "3xHxW", *option])
    assert out.exit_code == 2, out.output
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and f"{option[0]} needs a numeric --input" in lines[0]


def _spec(text: str, name: str = "t"):
    from cnncalc.spec import parse_spec

    return parse_spec(text, f"{name}.yaml", name)


def test_residual_paths_equal_for_every_size_though_sympy_cannot_simplify():
    # main: 3×3/2 'same' → ⌈H/2⌉ (TensorFlow-style 'same'); shortcut 1×1/2 → ⌊(H − 1)/2⌋ + 1.
    # ⌈H/2⌉ = ⌊(H + 1)/2⌋ = ⌊(H − 1)/2⌋ + 1 for every H ≥ 1, which sympy does not simplify.
    spec = _spec("input: 4x32x32\nlayers:\n  - residual:\n      layers:\n"
                 "        - conv: {out: 4, kernel: 3, stride: 2, padding: same}\n"
                 "      shortcut:\n        - conv: {out: 4, kernel: 1, stride: 2}\n")
    result = analyze_symbolic(spec, "4xHxW")
    for h, w in [(32, 32), (31, 17), (1, 2), (100, 99)]:
        agree(result, {H: h, W: w}, (4, h, w))


def test_residual_paths_that_differ_are_still_refused():
    spec = _spec("input: 4x32x32\nlayers:\n  - residual:\n      layers:\n"
                 "        - conv: {out: 4, kernel: 3, stride: 2}\n")
    from cnncalc.errors import SpecError

    with pytest.raises(SpecError, match=r"cannot add 4×H1×W1 \(main path\) to 4×H×W \(the identity shortcut\)"):
        analyze_symbolic(spec, "4xHxW")


def test_parameters_that_depend_only_on_channels_have_no_size_range():
    result = analyze_symbolic(load_spec("lenet5"), "CxHxW")
    c1 = result.row("c1")
    assert c1.params_depend  # 5·5·C·6 + 6
    (c1_req,) = [r for r in result.requirements if r.path == "c1"]
    assert c1_req.value == 5 * 5 * 1 * 6 + 6 and c1_req.fits is None


def test_one_name_for_two_different_spec_sizes_gives_no_value():
    # the spec's own input is 3×64×32: S cannot be both, so no "value at the spec's input"
    spec = _spec("input: 3x64x32\nlayers:\n  - conv: {out: 4, kernel: 3}\n  - flatten\n"
                 "  - linear: {name: fc, out: 2}\n")
    (req,) = analyze_symbolic(spec, "3xSxS").requirements
    assert req.path == "fc" and req.value is None and req.fits is None


def test_derived_size_names_never_reuse_an_input_name():
    # 3xHxH1: the derived H1 = ⌊(H − 11)/4⌋ + 1 must not be the input's width H1
    result = analyze_symbolic(load_spec("alexnet"), "3xHxH1")
    assert "H1" not in {str(name) for name in result.sizes}
    h1 = sympy.Symbol("H1", integer=True, positive=True)
    agree(result, {H: 227, h1: 259}, (3, 227, 259))


def test_non_ascii_digits_are_one_error_line():
    out = runner.invoke(app, ["table", "alexnet", "--input", "3x²xW"])
    assert out.exit_code == 2, out.output
    assert out.stderr.startswith("cnncalc: error: ") and len(out.stderr.splitlines()) == 1


def _doc_example(heading: str, index: int):
    import re
    from pathlib import Path

    from cnncalc import parse_spec

    doc = (Path(__file__).resolve().parents[1] / "docs" / "spec-format.md").read_text()
    section = doc.split(f"### {heading}", 1)[1].split("\n## ", 1)[0]
    return parse_spec(re.findall(r"```yaml\n(.*?)```", section, re.S)[index], "d.yaml", "d")


@pytest.mark.parametrize("index, text", [(0, "1xL"), (1, "3xDxHxW")])
def test_symbolic_sizes_in_1d_and_3d_evaluate_to_the_engines(index: int, text: str):
    """The docs' audio net (C×L) and C3D (C×D×H×W): every row's symbolic output, at the spec's
    own input, is the numeric engine's."""
    from cnncalc.symbolic import analyze_symbolic

    loaded = _doc_example("1-D and 3-D networks", index)
    result = analyze_symbolic(loaded, text)
    numeric = analyze(loaded)
    values = dict(zip(result.input[1:], loaded.input[1:]))
    for row in result.rows:
        want = numeric.row(row.path).output
        got = tuple(result.evaluate(d, values) if not isinstance(d, int) else d for d in row.output)
        assert got == want, row.path


def test_a_symbolic_input_of_another_rank_is_refused():
    from cnncalc.errors import OptionError
    from cnncalc.symbolic import analyze_symbolic

    with pytest.raises(OptionError, match="is C×L, but alexnet takes C×H×W"):
        analyze_symbolic(load_spec("alexnet"), "3xH")
