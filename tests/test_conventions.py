"""Counting conventions: each tool's total reproduced exactly, operator by operator.

Three layers of checks:

* always: the conventions give the totals measured with the real tools (tests/peer_figures.py,
  with the tools' versions) for ResNet-18/50/152 and VGG-16;
* where torch and a tool are installed: the tool run on torchvision-layout models
  (tests/torch_models.py) gives exactly the convention's total;
* where the cnncalc torch backend is importable too: the tools run on the backend's model of
  small specs covering every layer kind, at batch 1 and 3, give exactly the conventions' totals.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import re
import warnings

import pytest
from typer.testing import CliRunner

from cnncalc import analyze, load_spec, parse_spec
from cnncalc.cli import app
from cnncalc.conventions import (
    CONVENTIONS,
    TOOL_VERSIONS,
    apply,
    count,
    get,
    layers_by_path,
    names,
    reconcile,
)
from cnncalc.errors import OptionError

from . import peer_figures

MODELS = ("resnet18", "resnet50", "resnet152", "vgg16")
TOOLS = ("fvcore", "torchinfo", "ptflops", "thop")
runner = CliRunner()


def _analysis(name: str, batch: int = 1):
    return analyze(load_spec(name), batch=batch)


# --------------------------------------------------------------------------------------------
# Always: against the figures measured with the real tools


def test_conventions_listed_with_tool_versions():
    assert names()[:2] == ["macs", "flops"]
    assert set(TOOLS) <= set(names())
    for tool in TOOLS:
        assert TOOL_VERSIONS[tool] == peer_figures.TOOL_VERSIONS[tool]
        assert get(tool).tool == f"{tool} {TOOL_VERSIONS[tool]}"
        assert get(tool).call


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("convention", [*TOOLS, "flops"])
def test_totals_equal_the_measured_figures(model, convention):
    assert count(_analysis(model), convention).total == peer_figures.TOTALS[convention][model]


@pytest.mark.parametrize("model", MODELS)
def test_params_equal_the_torch_models(model):
    assert _analysis(model).totals.params == peer_figures.PARAMS[model]


@pytest.mark.parametrize("model", MODELS)
def test_fvcore_by_operator_equals_fvcore_breakdown(model):
    ours = count(_analysis(model), "fvcore").by_operator
    names_ = {"conv": "conv", "batchnorm": "batch_norm", "adaptive_avgpool": "adaptive_avg_pool2d",
              "linear": "linear"}
    assert {names_[k]: v for k, v in ours.items()} == peer_figures.FVCORE_BY_OPERATOR[model]


def test_macs_is_the_engine_count_and_flops_twice_it():
    for model in MODELS:
        a = _analysis(model, batch=3)
        assert count(a, "macs").total == a.totals.macs
        assert count(a, "flops").total == 2 * a.totals.macs


def test_resnet50_by_operator_hand_figures():
    """The issue's example: conv+linear 4,089,184,256; fvcore adds BN and adaptive pooling;
    ptflops adds bias, BN, ReLU and pooling."""
    a = _analysis("resnet50")
    bn_elements = 11_113_984  # inputs of the 53 batch norms
    relu_elements = 9_608_704  # outputs of the 49 ReLU calls
    assert count(a, "macs").by_operator == {"conv": 4_087_136_256, "linear": 2_048_000}
    assert count(a, "fvcore").by_operator == {
        "conv": 4_087_136_256, "batchnorm": 2 * bn_elements, "adaptive_avgpool": 2048 * 7 * 7,
        "linear": 2_048_000}
    assert count(a, "ptflops").by_operator == {
        "conv": 4_087_136_256, "batchnorm": 2 * bn_elements, "relu": 2 * relu_elements,
        "maxpool": 2 * 64 * 112 * 112, "adaptive_avgpool": 2 * 2048 * 7 * 7,
        "linear": 2_048_000, "linear bias": 1000}
    assert count(a, "thop").by_operator == {
        "conv": 4_087_136_256, "batchnorm": 4 * bn_elements, "adaptive_avgpool": (49 + 1) * 2048,
        "linear": 2_048_000}
    assert count(a, "torchinfo").by_operator == {
        "conv": 4_087_136_256, "batchnorm": 53_120, "linear": 2_048_000, "linear bias": 1000}


def test_batch_scales_every_convention():
    one, four = _analysis("resnet18"), _analysis("resnet18", batch=4)
    for name in names():
        assert count(four, name).total == 4 * count(one, name).total


def test_thop_adaptive_pool_truncates_like_thop():
    """thop computes (input/output sizes as floats, multiplied, + 1) × output elements in
    doubles and truncates: 2×11 → 1×3 gives (2 · 11/3 + 1) · 3 = 25 exactly, but 24.999… in
    doubles, so thop says 24."""
    spec = parse_spec("input: 1x2x11\nlayers:\n  - adaptive_avgpool: {output: [1, 3]}\n",
                      "a.yaml", "a")
    assert count(analyze(spec), "thop").total == 24


def test_unknown_convention_is_an_option_error():
    with pytest.raises(OptionError, match="unknown convention 'gflops'"):
        get("gflops")


def test_layers_by_path_covers_every_leaf_row():
    for model in ("googlenet", "resnet50", "lenet5-1998"):
        a = _analysis(model)
        assert set(layers_by_path(a)) == {r.path for r in a.rows if r.leaf}


# --------------------------------------------------------------------------------------------
# apply: the analysis under a convention, rows summing to the totals


@pytest.mark.parametrize("convention", names())
def test_applied_rows_sum_to_the_total_at_every_depth(convention):
    a = apply(_analysis("googlenet", batch=2), convention)
    assert a.convention == convention
    for depth in (1, 2, None):
        rows = a.at_depth(depth)
        assert sum(r.macs for r in rows if not r.head) == a.totals.macs
        assert sum(r.macs for r in rows if r.head) == a.totals.head_macs


def test_apply_default_is_the_same_analysis_and_no_double_apply():
    a = _analysis("alexnet")
    assert apply(a, "macs") is a
    b = apply(a, "thop")
    assert apply(b, "thop") is b
    with pytest.raises(OptionError):
        apply(b, "fvcore")


# --------------------------------------------------------------------------------------------
# reconcile


def test_reconcile_resnet50_explains_each_difference():
    rec = reconcile(_analysis("resnet50"))
    assert rec.baseline == "macs" and rec.baseline_total == 4_089_184_256
    by = {r.convention.name: r for r in rec.rows}
    assert [r.convention.name for r in rec.rows] == names()
    assert by["macs"].differences == []
    assert {d.operator for d in by["fvcore"].differences} == {"batchnorm", "adaptive_avgpool"}
    assert {d.operator for d in by["ptflops"].differences} == {
        "linear bias", "batchnorm", "relu", "maxpool", "adaptive_avgpool"}
    assert {d.operator for d in by["thop"].differences} == {"batchnorm", "adaptive_avgpool"}
    assert {d.operator for d in by["torchinfo"].differences} == {"batchnorm", "linear bias"}
    assert "patched F.relu" in next(d.why for d in by["ptflops"].differences
                                    if d.operator == "relu")
    assert by["fvcore"].summary == "adds batchnorm 22,227,968, adaptive_avgpool 100,352"
    assert rec.operators[0] == "conv"
    for r in rec.rows:
        assert r.count.total == rec.baseline_total + sum(d.delta for d in r.differences)


def test_cli_reconcile_json_and_table():
    result = runner.invoke(app, ["reconcile", "resnet50", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    totals = {c["name"]: c["total"] for c in data["conventions"]}
    assert totals["fvcore"] == peer_figures.TOTALS["fvcore"]["resnet50"]
    assert totals["macs"] == 4_089_184_256
    fv = next(c for c in data["conventions"] if c["name"] == "fvcore")
    assert fv["tool"] == "fvcore 0.1.5.post20221221" and fv["difference"] == 22_328_320
    assert {d["operator"] for d in fv["differences"]} == {"batchnorm", "adaptive_avgpool"}
    result = runner.invoke(app, ["reconcile", "resnet50", "--exact"])
    assert result.exit_code == 0
    assert "4,132,436,968" in result.stdout and "patched F.relu" in result.stdout
    for fmt in ("csv", "markdown"):
        result = runner.invoke(app, ["reconcile", "vgg16", "--format", fmt, "--exact"])
        assert result.exit_code == 0 and "15523225576" in result.stdout.replace(",", "")


# --------------------------------------------------------------------------------------------
# --convention on table, list and compare


def test_cli_table_convention_json():
    result = runner.invoke(app, ["table", "resnet50", "--convention", "ptflops", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["convention_name"] == "ptflops"
    assert data["totals"]["macs"] == peer_figures.TOTALS["ptflops"]["resnet50"]
    assert "ptflops 0.7.5" in data["convention"]
    default = json.loads(runner.invoke(app, ["table", "resnet50", "-f", "json"]).stdout)
    assert default["convention_name"] == "macs" and default["totals"]["macs"] == 4_089_184_256


def test_cli_table_convention_heading_and_footer():
    result = runner.invoke(app, ["table", "vgg16", "-c", "flops", "-f", "markdown", "-d", "1"])
    assert result.exit_code == 0, result.output
    assert "| FLOPs |" in result.stdout
    assert "Counted as flops" in result.stdout


def test_cli_list_and_compare_convention():
    result = runner.invoke(app, ["list", "--convention", "thop", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["vgg16"]["macs"] == peer_figures.TOTALS["thop"]["vgg16"]
    assert rows["vgg16"]["convention"] == "thop"
    result = runner.invoke(app, ["compare", "resnet18", "resnet50", "-c", "fvcore", "-f", "json"])
    assert result.exit_code == 0, result.output
    specs = json.loads(result.stdout)["specs"]
    assert [s["totals"]["macs"] for s in specs] == [peer_figures.TOTALS["fvcore"]["resnet18"],
                                                   peer_figures.TOTALS["fvcore"]["resnet50"]]


def test_cli_unknown_convention_exits_2():
    result = runner.invoke(app, ["table", "alexnet", "--convention", "gflops"])
    assert result.exit_code == 2


# --------------------------------------------------------------------------------------------
# The real tools, where installed


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())


def run_tool(tool: str, model, shape: tuple[int, ...], batch: int) -> int:
    """The tool's total for ``model`` on a zero batch, run as the conventions' ``call`` says."""
    torch = pytest.importorskip("torch")
    x = torch.zeros(batch, *shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if tool == "fvcore":
            from fvcore.nn import FlopCountAnalysis

            analysis = FlopCountAnalysis(model, x)
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            return int(analysis.total())
        if tool == "torchinfo":
            from torchinfo import summary

            return int(summary(model, input_data=x, verbose=0).total_mult_adds)
        if tool == "ptflops":
            from ptflops import get_model_complexity_info

            with _quiet():
                macs, _ = get_model_complexity_info(model, tuple(shape), as_strings=False,
                                                    print_per_layer_stat=False)
            return int(macs) * batch  # ptflops reports per image
        if tool == "thop":
            from thop import profile

            with _quiet():
                ops, _ = profile(model, inputs=(x,), verbose=False)
            return int(ops)
        if tool == "flops":
            from torch.utils.flop_counter import FlopCounterMode

            with FlopCounterMode(display=False) as counter, torch.no_grad():
                model(x)
            return int(counter.get_total_flops())
    raise ValueError(tool)


def _require(tool: str) -> None:
    pytest.importorskip("torch")
    if tool != "flops":
        pytest.importorskip({"fvcore": "fvcore.nn"}.get(tool, tool))


def _installed_version(tool: str) -> str | None:
    from importlib import metadata

    try:
        version = metadata.version(tool)
    except metadata.PackageNotFoundError:
        return None
    return re.sub(r"-(\d)", r".post\1", version)  # thop's metadata says 0.1.1-2209072238


@functools.lru_cache(maxsize=2)
def _torch_model(name: str):
    """One torchvision-layout model per name for all the tools (each removes its hooks)."""
    from . import torch_models

    return torch_models.build(name)


@pytest.mark.parametrize("tool", TOOLS)
def test_installed_tool_is_the_version_reproduced(tool):
    version = _installed_version(tool)
    if version is None:
        pytest.skip(f"{tool} is not installed")
    assert version == TOOL_VERSIONS[tool], (
        f"cnncalc reproduces {tool} {TOOL_VERSIONS[tool]}; {version} is installed")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("tool", [*TOOLS, "flops"])
def test_real_tool_on_torchvision_layout(model, tool):
    _require(tool)
    net = _torch_model(model)
    assert sum(p.numel() for p in net.parameters()) == _analysis(model).totals.params
    measured = run_tool(tool, net, (3, 224, 224), 1)
    assert measured == count(_analysis(model), tool).total == peer_figures.TOTALS[tool][model]


def test_real_tools_at_batch_2():
    pytest.importorskip("torch")
    net = _torch_model("resnet18")
    a = _analysis("resnet18", batch=2)
    for tool in [*TOOLS, "flops"]:
        try:
            _require(tool)
        except pytest.skip.Exception:
            continue
        assert run_tool(tool, net, (3, 224, 224), 2) == count(a, tool).total, tool


# Small specs that together hold every layer kind, run through the cnncalc torch backend.
KIND_SPECS = {
    "conv-bias": "input: 3x17x17\nlayers:\n  - conv: {out: 8, kernel: 3, stride: 2, padding: 1}\n",
    "conv-groups": "input: 4x9x9\nlayers:\n  - conv: {out: 8, kernel: 3, groups: 2, bias: false}\n",
    "conv-same": "input: 4x10x10\nlayers:\n"
                 "  - conv: {out: 6, kernel: 4, stride: 2, padding: same}\n",
    "conv-table": "input: 6x14x14\nlayers:\n"
                  "  - conv: {out: 3, kernel: 5, connections: [[0, 1, 2], [1, 2, 3, 4], [0, 5]]}\n",
    "linear": "input: 3x4x4\nlayers:\n  - flatten\n  - linear: {out: 10}\n"
              "  - linear: {out: 5, bias: false}\n",
    "rbf": "input: 84\nlayers:\n  - rbf: {out: 10}\n",
    "pools": "input: 3x13x13\nlayers:\n  - maxpool: {kernel: 3, stride: 2}\n"
             "  - avgpool: {kernel: 2, padding: 1}\n  - adaptive_avgpool: {output: 3}\n"
             "  - adaptive_maxpool: {output: 2}\n  - global_avgpool\n",
    "adaptive-uneven": "input: 3x13x11\nlayers:\n  - adaptive_avgpool: {output: [6, 4]}\n",
    "adaptive-float": "input: 1x2x11\nlayers:\n  - adaptive_avgpool: {output: [1, 3]}\n",
    "subsample": "input: 6x28x28\nlayers:\n  - subsample: {kernel: 2}\n",
    "batchnorm": "input: 5x7x7\nlayers:\n  - batchnorm\n  - batchnorm: {affine: false}\n"
                 "  - batchnorm: {track_running_stats: false}\n  - flatten\n  - batchnorm\n",
    "lrn": "input: 8x6x6\nlayers:\n  - lrn: {size: 5}\n",
    "activations": "input: 4x5x5\nlayers:\n" + "".join(
        f"  - {k}\n" for k in ("relu", "relu6", "leaky_relu", "elu", "gelu", "silu", "hardswish",
                               "tanh", "sigmoid", "softmax", "log_softmax", "identity",
                               "dropout")),
    "modern-norms": "input: 6x5x5\nlayers:\n  - layernorm\n  - layernorm: {over: last}\n"
                    "  - groupnorm: {groups: 3}\n  - instancenorm: {affine: true}\n"
                    "  - layer_scale\n  - prelu: {num_parameters: 6}\n",
    "modern-others": "input: 6x5x5\nlayers:\n  - slice: {stop: 4}\n  - channel_shuffle: {groups: 2}\n"
                     "  - drop_path: {p: 0.1}\n  - gelu: {approximate: tanh}\n  - swish\n"
                     "  - mish\n  - hardsigmoid\n",
    "resampling": "input: 4x7x7\nlayers:\n"
                  "  - conv_transpose: {out: 6, kernel: 3, stride: 2, padding: 1, output_padding: 1}\n"
                  "  - conv_transpose: {out: 4, kernel: 2, stride: 2, groups: 2, bias: false}\n"
                  "  - pad: {padding: [1, [0, 2]], mode: reflect}\n  - crop: {size: [20, 24]}\n"
                  "  - upsample: {scale: 2}\n  - upsample: {size: [45, 50], mode: bilinear}\n",
    "upsample-float": "input: 3x5x6\nlayers:\n  - upsample: {scale: [1.5, 2.7], mode: bilinear}\n",
    "windows-1d": "input: 2x20\nlayers:\n  - conv: {out: 4, kernel: 3, padding: 1}\n"
                  "  - batchnorm\n  - relu\n  - maxpool: {kernel: 2}\n  - avgpool: {kernel: 2}\n"
                  "  - adaptive_avgpool: {output: 3}\n  - adaptive_maxpool: {output: 2}\n"
                  "  - global_avgpool\n  - flatten\n  - linear: {out: 3}\n",
    "windows-3d": "input: 2x4x6x6\nlayers:\n  - conv: {out: 3, kernel: [1, 3, 3], padding: [0, 1, 1]}\n"
                  "  - batchnorm\n  - relu\n  - maxpool: {kernel: 2}\n  - avgpool: {kernel: [1, 3, 3]}\n"
                  "  - adaptive_avgpool: {output: [1, 2, 1]}\n  - global_avgpool\n  - flatten\n"
                  "  - linear: {out: 3}\n",
    "resampling-1d": "input: 4x9\nlayers:\n  - conv_transpose: {out: 2, kernel: 4, stride: 2}\n"
                     "  - upsample: {scale: 2, mode: linear}\n  - upsample: {size: 50}\n"
                     "  - pad: {padding: 2}\n  - crop: {size: 40}\n",
    "resampling-3d": "input: 2x3x4x4\nlayers:\n  - conv_transpose: {out: 2, kernel: 2, stride: 2}\n"
                     "  - upsample: {scale: [1, 2, 2], mode: trilinear}\n"
                     "  - upsample: {scale: 2}\n",
    "residual-concat": "input: 4x6x6\nlayers:\n  - residual:\n"
                       "      layers: [conv: {out: 4, kernel: 3, padding: 1}]\n"
                       "  - concat:\n      branches: {a: [conv: {out: 2, kernel: 1}], b: [relu]}\n",
}


def _backend():
    pytest.importorskip("torch")
    try:
        return importlib.import_module("cnncalc.backend.builders")
    except ImportError as exc:  # pragma: no cover - the backend is optional
        pytest.skip(f"the torch backend is not importable: {exc}")


def test_kind_specs_cover_every_layer_kind():
    from cnncalc.layers import REGISTRY

    kinds = set()
    for name, text in KIND_SPECS.items():
        spec = parse_spec(text, f"{name}.yaml", name)
        kinds |= {leaf.kind for leaf in layers_by_path(analyze(spec)).values()}
    # merges read named tensors: tests/test_conventions_modern.py runs the tools on them; a
    # placeholder has no torch module to run a tool on (test_placeholder_counts_nothing)
    assert kinds == {k for k, rule in REGISTRY.items() if rule.arity == 1} - {"placeholder"}


def test_placeholder_counts_nothing_in_every_convention():
    spec = parse_spec("input: 3x8x8\nlayers:\n  - placeholder: {op: torch.matmul, shape: 5x8x8}\n"
                      "  - conv: {out: 2, kernel: 1, bias: false}\n", "p.yaml", "p")
    a = analyze(spec)
    for name in ("macs", "flops", "fvcore", "torchinfo", "ptflops", "thop"):
        assert count(a, name).by_path["0"] == 0, name
    assert a.rows[0].output == (5, 8, 8) and a.rows[0].params == a.rows[0].buffers == 0
    assert a.totals.macs == 5 * 2 * 8 * 8  # the conv after it reads its 5 channels: 5·2 per pixel


@pytest.mark.parametrize("name", KIND_SPECS)
@pytest.mark.parametrize("tool", [*TOOLS, "flops"])
def test_real_tool_on_backend_models_of_every_kind(name, tool):
    _require(tool)
    builders = _backend()
    spec = parse_spec(KIND_SPECS[name], f"{name}.yaml", name)
    model = builders.build(spec).eval()
    for batch in (1, 3):
        a = analyze(spec, batch=batch)
        assert run_tool(tool, model, a.input, batch) == count(a, tool).total, (name, batch)


@pytest.mark.parametrize("model", ["alexnet", "googlenet", "lenet5-1998", "resnet18"])
@pytest.mark.parametrize("tool", [*TOOLS, "flops"])
def test_real_tool_on_backend_models_of_the_zoo(model, tool):
    _require(tool)
    builders = _backend()
    spec = load_spec(model)
    a = analyze(spec)
    assert run_tool(tool, builders.build(spec).eval(), a.input, 1) == count(a, tool).total


def test_every_convention_documented():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "counting.md").read_text()
    for name, convention in CONVENTIONS.items():
        assert f"`{name}`" in text
        if convention.tool:
            assert TOOL_VERSIONS[name] in text


def test_reconcile_orders_operators_by_kind_even_inside_a_named_block():
    # the block's rows carry its name ('norm') as their label; the operator is still batchnorm
    text = ("input: 3x8x8\nblocks:\n  norm:\n    body:\n      batchnorm: {}\n"
            "layers:\n  - conv: {out: 4, kernel: 3}\n  - norm\n  - relu\n  - flatten\n"
            "  - linear: {out: 2}\n")
    rec = reconcile(analyze(parse_spec(text, "t.yaml", "t")))
    assert rec.operators == ["conv", "conv bias", "batchnorm", "relu", "linear", "linear bias"]
