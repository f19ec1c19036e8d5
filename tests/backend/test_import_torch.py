"""`cnncalc import` of torch models, and `verify --against`: round trips held to the modules'
own figures (numel, fvcore, a forward pass), never to cnncalc's output."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from cnncalc.backend import build
from cnncalc.backend.against import verify_against
from cnncalc.conventions import count
from cnncalc.engine import analyze
from cnncalc.importer.load import ImportFailed, checked_yaml
from cnncalc.importer.torch_fx import from_module, load_factory
from cnncalc.spec import parse_spec
from cnncalc.zoo import load_spec
from tests import import_models, reference_models, torch_models
from tests.backend.test_cli import invoke, one_error_line
from tests.test_zoo_modern import FIGURES  # published params, buffers, MACs, output

ROOT = Path(__file__).resolve().parents[2]

# (factory, a small input that still exercises every layer): the round trips compare the
# import with the module at the same input, so the published 224 is not needed there
MODELS = {
    "resnet50": (torch_models.resnet50, (3, 64, 64)),
    "mobilenet-v2": (reference_models.mobilenet_v2, (3, 64, 64)),
    "efficientnet-b0": (reference_models.efficientnet_b0, (3, 64, 64)),
    "densenet121": (reference_models.densenet121, (3, 64, 64)),
    "convnext-tiny": (reference_models.convnext_tiny, (3, 64, 64)),
    "unet": (reference_models.unet, (1, 188, 188)),  # 188: the smallest valid U-Net input
}
SOURCES = {"resnet50": "tests/torch_models.py:resnet50",
           "mobilenet-v2": "tests/reference_models.py:mobilenet_v2",
           "efficientnet-b0": "tests/reference_models.py:efficientnet_b0",
           "densenet121": "tests/reference_models.py:densenet121",
           "convnext-tiny": "tests/reference_models.py:convnext_tiny",
           "unet": "tests/reference_models.py:unet"}


def fvcore_total(model, x) -> int:
    from fvcore.nn import FlopCountAnalysis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        counter = FlopCountAnalysis(model, x)
        counter.unsupported_ops_warnings(False)
        counter.uncalled_modules_warnings(False)
        return int(counter.total())


def imported(model, shape, allow_unknown=False):
    text = checked_yaml(from_module(model, shape, "test", allow_unknown))
    return parse_spec(text, "imported.yaml", "imported"), text


@pytest.fixture(scope="module", params=sorted(MODELS))
def round_trip(request):
    pytest.importorskip("fvcore")
    factory, shape = MODELS[request.param]
    model = factory().eval()
    x = torch.zeros(1, *shape)
    with torch.no_grad():
        y = model(x)
    spec, _ = imported(model, shape)
    return request.param, model, x, y, spec


def test_import_equals_the_modules_params_buffers_fvcore_and_output(round_trip):
    name, model, x, y, spec = round_trip
    a = analyze(spec)
    assert a.totals.params == sum(p.numel() for p in model.parameters())
    assert a.totals.buffers == sum(b.numel() for b in model.buffers())
    assert count(a, "fvcore").total == fvcore_total(model, x)
    assert list(a.outputs) == [tuple(y.shape[1:])]


def test_built_import_has_the_modules_params_and_output_shape(round_trip):
    name, model, x, y, spec = round_trip
    built = build(spec).eval()
    assert sum(p.numel() for p in built.parameters()) == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        assert built(x).shape == y.shape


def test_imported_paths_are_the_module_paths(round_trip):
    """Every module holding parameters is a row at its own path, with its parameters."""
    name, model, x, y, spec = round_trip
    rows = {row.path: row for row in analyze(spec).rows}
    holders = [(path, m) for path, m in model.named_modules()
               if path and any(True for _ in m.parameters(recurse=False))]
    assert len(holders) >= 20  # U-Net: 23 convolutions
    for path, m in holders:
        assert rows[path].params == sum(p.numel() for p in m.parameters()), path


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_import_at_the_published_input_has_the_published_figures(name):
    """Fake tensors: no arithmetic, so the full 224 (and 572) inputs cost nothing."""
    params, buffers, macs, output = FIGURES[name]
    model = reference_models.build(name)
    spec, _ = imported(model, reference_models.input_shape(name))
    a = analyze(spec)
    assert (a.totals.params, a.totals.buffers, a.totals.macs, a.outputs[0]) == \
        (params, buffers, macs, output)


def test_convnext_channels_last_layers_are_read_channels_first():
    """CNBlock permutes to channels last for nn.LayerNorm and two nn.Linear; LayerNorm2d
    permutes around F.layer_norm with its own weight: layer norms over channels and 1×1
    convolutions (the same parameters and multiply-adds), at the modules' paths."""
    spec, text = imported(reference_models.build("convnext-tiny"), (3, 64, 64))
    rows = {r.path: r for r in analyze(spec).rows}
    assert rows["features.1.0.block.3"].kind == "conv"  # nn.Linear(96, 384)
    assert rows["features.1.0.block.3"].params == 96 * 384 + 384
    assert rows["features.1.0.block.2"].kind == rows["features.0.1"].kind == "layernorm"
    assert rows["features.0.1"].params == 2 * 96  # LayerNorm2d's weight and bias
    assert rows["features.1.0.layer_scale"].params == 96


def test_a_channels_last_op_that_is_not_point_wise_is_refused():
    with pytest.raises(ImportFailed, match=r"fx node max_pool2d \(F.max_pool2d\) at the top "
                                           "level has no cnncalc layer kind: F.max_pool2d on a "
                                           "channels-last tensor"):
        from_module(import_models.last_pool(), (4, 8, 8))


def test_resnet50_at_224_has_torchvisions_figures():
    spec, text = imported(torch_models.resnet50(), (3, 224, 224))
    a = analyze(spec)
    # torchvision.models.resnet50: 25,557,032 params, 4.09 GFLOPS (fvcore's MACs)
    assert a.totals.params == 25_557_032 and a.totals.macs == 4_089_184_256
    assert "conv: {name: conv1, out: 64, kernel: 7, stride: 2, padding: 3, bias: false}" in text
    # the one ReLU module of a Bottleneck, called three times: three rows, module path first
    paths = [r.path for r in a.rows if r.path.startswith("layer3.2.relu")]
    assert paths == ["layer3.2.relu", "layer3.2.relu_1", "layer3.2.relu_2"]


# --------------------------------------------------------------------------------------------
# verify --against


@pytest.mark.parametrize("name", sorted(MODELS))
def test_zoo_spec_verifies_clean_against_the_reference(name):
    pytest.importorskip("fvcore")
    factory, shape = MODELS[name]
    result = verify_against(load_spec(name), SOURCES[name], shape, model=factory())
    assert result.ok, [r for r in result.rows if not r.ok] + list(result.spec_only) + \
        list(result.model_only) + [c for c in result.totals if not c.ok]
    assert len(result.rows) > 40


def test_a_changed_width_is_caught_and_listed_first(tmp_path):
    pytest.importorskip("fvcore")
    text = (ROOT / "specs" / "mobilenet-v2.yaml").read_text()
    assert text.count("out: 1280") == 1
    changed = tmp_path / "mobilenet-v2.yaml"
    changed.write_text(text.replace("out: 1280", "out: 1024"))
    result = invoke("verify", str(changed), "--against", SOURCES["mobilenet-v2"],
                    "--input", "3x64x64")
    assert result.exit_code == 1, result.output
    first = next(line for line in result.stdout.splitlines() if "✗" in line)
    assert first.startswith("features.18"), first  # the last 1×1 conv's block, in spec order
    assert "MISMATCH against" in result.stdout and "totals differ: params" in result.stdout


def test_a_spec_layer_not_in_the_model_and_a_module_not_in_the_spec_are_listed(tmp_path):
    pytest.importorskip("fvcore")
    text = (ROOT / "specs" / "resnet50.yaml").read_text().replace(
        "linear: {name: fc, out: 1000}", "linear: {name: head, out: 1000}")
    spec = parse_spec(text, "r.yaml", "r")
    result = verify_against(spec, "r", (3, 64, 64), model=torch_models.resnet50())
    assert not result.ok
    assert result.spec_only == (("head", 2_049_000, 0),)  # 2048·1000 + 1000
    assert result.model_only == (("fc", 2_049_000, 0),)
    assert all(c.ok for c in result.totals)  # the same network under another name


def test_verify_against_through_the_cli_json():
    pytest.importorskip("fvcore")
    import json

    result = invoke("verify", "unet", "--against", SOURCES["unet"], "--input", "1x188x188",
                    "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] and data["totals"]["params"]["actual"] == 31_030_658  # the paper's


# --------------------------------------------------------------------------------------------
# The CLI


SINK = "tests/import_models.py:sink"


def test_import_prints_a_spec_with_a_header_and_module_paths():
    result = invoke("import", SINK, "--input", "3x32x32")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"# Imported by cnncalc from {SINK} (input 3x32x32).")
    spec = parse_spec(result.stdout, "s.yaml", "s")
    a = analyze(spec)
    model = import_models.sink().eval()
    with torch.no_grad():
        y = model(torch.zeros(1, 3, 32, 32))
    assert a.totals.params == sum(p.numel() for p in model.parameters())
    assert a.totals.buffers == sum(b.numel() for b in model.buffers())
    assert list(a.outputs) == [tuple(y.shape[1:])]
    assert {"stem.0", "dw", "head.3", "add", "cat", "crop"} <= {r.path for r in a.rows}


def test_the_sink_builds_with_its_params_and_output():
    model = import_models.sink().eval()
    spec, _ = imported(model, (3, 32, 32))
    built = build(spec).eval()
    x = torch.zeros(2, 3, 32, 32)
    with torch.no_grad():
        assert built(x).shape == model(x).shape
    assert sum(p.numel() for p in built.parameters()) == \
        sum(p.numel() for p in model.parameters())


def test_import_writes_a_file_and_never_overwrites_without_force(tmp_path):
    out = tmp_path / "net.yaml"
    result = invoke("import", SINK, "--input", "3x32x32", "-o", str(out))
    assert result.exit_code == 0 and out.read_text().startswith("# Imported by cnncalc")
    out.write_text("mine")
    result = invoke("import", SINK, "--input", "3x32x32", "-o", str(out))
    assert result.exit_code == 2 and "exists" in one_error_line(result)
    assert out.read_text() == "mine"
    assert invoke("import", SINK, "--input", "3x32x32", "-o", str(out), "--force").exit_code == 0
    assert out.read_text().startswith("# Imported")


def test_import_does_not_write_through_a_symlink(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("keep")
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    result = invoke("import", SINK, "--input", "3x32x32", "-o", str(link))
    assert result.exit_code == 2 and target.read_text() == "keep"


@pytest.mark.parametrize("args, expected", [
    (["tests/import_models.py"], "must name a factory"),
    (["tests/no_such_file.py:f"], "no such file"),
    (["no_such_package_xyz:f"], "no module named 'no_such_package_xyz'"),
    (["tests/import_models.py:nothing_here"], "has no attribute 'nothing_here'"),
    (["tests/import_models.py:NOT_CALLABLE"], "is an int, not a callable"),
    (["tests/import_models.py:raises"], "calling the factory raised ValueError: no weights here"),
    (["tests/import_models.py:needs_width"], "calling the factory raised TypeError"),
    (["tests/import_models.py:not_a_module"], "returned an int, not a torch.nn.Module"),
    (["tests/import_models.py:sink", "--input", "-"], "--input"),
    (["tests/import_models.py:sink"], "give one with --input"),
    (["tests/import_models.py:shared"], "the module conv is called 2 times (fx nodes conv, conv_1)"),
    (["tests/import_models.py:data_dependent"], "cannot trace DataDependent with torch.fx"),
    (["tests/import_models.py:two_inputs"], "forward takes 2 required inputs (x, y)"),
    (["tests/import_models.py:plus_one"], "fx node add (operator.add) at the top level has no "
                                          "cnncalc layer kind: add of a tensor and a number"),
    (["tests/import_models.py:attention"],
     "fx node transpose (Tensor.transpose) at the top level has no cnncalc layer kind; "
     "--allow-unknown writes a placeholder"),
    (["tests/import_models.py:lstm", "--input", "4x8"], "fx node lstm (nn.LSTM) in lstm has no "
                                                        "cnncalc layer kind"),
])
def test_each_failure_is_one_line_exit_2(args, expected):
    if "--input" not in args and "give one" not in expected:
        args = [*args, "--input", "4x8x8"]
    result = invoke("import", *args)
    assert result.exit_code == 2, result.output
    assert expected in one_error_line(result)


def test_allow_unknown_writes_placeholders_named_in_the_footer():
    result = invoke("import", "tests/import_models.py:attention", "--input", "4x8x8",
                    "--allow-unknown")
    assert result.exit_code == 0, result.output
    assert 'placeholder: {name: transpose, op: "Tensor.transpose", shape: "4x8x8"}' in result.stdout
    spec = parse_spec(result.stdout, "a.yaml", "a")
    a = analyze(spec)
    assert list(a.outputs) == [(4, 8, 8)]  # y @ yᵀ per sample: 4×8×8
    from cnncalc.render import Numbers, footer_lines

    assert "2 placeholder layers count nothing: Tensor.transpose, torch.matmul" in \
        footer_lines(a, Numbers(False))
    with pytest.raises(Exception, match="placeholder"):
        build(spec)


@pytest.mark.parametrize("factory, shape", [
    (import_models.audio, (1, 800)), (import_models.clip, (3, 4, 16, 16)),
    (import_models.mlp, (20,)), (import_models.segment, (3, 32, 32)),
    (import_models.standardised, (3, 16, 16)),
])
def test_other_ranks_vectors_dict_outputs_and_layer_scales_round_trip(factory, shape):
    model = factory().eval()
    x = torch.randn(2, *shape)
    with torch.no_grad():
        y = model(x)
    y = y["out"] if isinstance(y, dict) else y
    spec, _ = imported(model, shape)
    a = analyze(spec)
    assert a.totals.params == sum(p.numel() for p in model.parameters())
    assert a.totals.buffers == sum(b.numel() for b in model.buffers())
    assert list(a.outputs) == [tuple(y.shape[1:])]
    built = build(spec).eval()
    assert sum(p.numel() for p in built.parameters()) == a.totals.params
    with torch.no_grad():
        assert built(x).shape == y.shape


def test_modules_forward_does_not_call_are_named_in_the_header():
    result = invoke("import", "tests/import_models.py:with_aux", "--input", "3x8x8")
    assert result.exit_code == 0, result.output
    # aux.1: Linear(256, 2) = 256·2 + 2; the conv is the spec's only layer
    assert "# Not in the spec: 1 module(s) with 514 parameters and buffers that forward does " \
        "not call in eval mode: aux.1." in result.stdout
    assert analyze(parse_spec(result.stdout, "a.yaml", "a")).totals.params == 3 * 4 + 4


def test_a_parameterless_module_called_three_times_gets_three_paths():
    spec, _ = imported(import_models.reused(), (4, 8, 8))
    assert [r.path for r in analyze(spec).rows] == ["relu", "conv1", "relu_1", "conv2", "relu_2"]


def test_a_written_out_channel_shuffle_is_one_layer_and_torchvisions_stochastic_depth_a_drop_path():
    model = import_models.shuffle().eval()
    spec, text = imported(model, (16, 8, 8))
    a = analyze(spec)
    kinds = [r.kind for r in a.rows if r.leaf]
    assert kinds == ["slice", "slice", "conv", "batchnorm", "relu", "concat", "channel_shuffle",
                     "drop_path", "add"]
    assert "channel_shuffle: {name: channel_shuffle, groups: 2" in text
    built = build(spec).eval()
    x = torch.randn(2, 16, 8, 8)
    built.load_state_dict(model.state_dict())  # the spec's paths are the module's
    with torch.no_grad():  # the same function, not only the same shapes
        assert torch.allclose(built(x), model(x))


def test_a_reshape_no_shuffle_undoes_is_refused():
    result = invoke("import", "tests/import_models.py:half_shuffle", "--input", "16x8x8")
    assert result.exit_code == 2
    assert "fx node view (Tensor.view) at the top level has no cnncalc layer kind: a reshape " \
        "of 2×8×8×8 per sample" in one_error_line(result)


def test_load_factory_reads_package_modules():
    assert load_factory("tests.import_models:sink") is import_models.sink


def test_import_in_a_real_process_and_its_speed(tmp_path):
    """ResNet-152 (over 500 layers) in one process: start-up, trace, check and write."""
    import time

    out = tmp_path / "r152.yaml"
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cnncalc", "import",
                           "tests/torch_models.py:resnet152", "--input", "3x224x224", "-o",
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"wrote {out}\n"
    a = analyze(parse_spec(out.read_text(), "r152.yaml", "r152"))
    assert a.totals.params == 60_192_808  # torchvision.models.resnet152's published count
    assert sum(1 for r in a.rows if r.leaf) > 500
    assert elapsed < 60  # measured: about 3 s on 2 shared cores (docs/import.md)


def test_import_failure_in_a_real_process_is_one_line():
    proc = subprocess.run([sys.executable, "-m", "cnncalc", "import",
                           "tests/import_models.py:attention", "--input", "4x8x8"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("cnncalc: error: cannot import")


def test_import_errors_are_importfailed():
    with pytest.raises(ImportFailed, match="cannot trace"):
        from_module(import_models.data_dependent(), (4, 8, 8))


@pytest.mark.parametrize("name, factory", [("tinynet", "tinynet"), ("gram", "gram")])
def test_the_docs_example_specs_are_what_import_writes(name, factory, monkeypatch):
    """docs/examples/*.yaml are import's output (docs/import.md shows them), kept in step."""
    monkeypatch.chdir(ROOT)
    result = invoke("import", f"docs/examples/tinynet.py:{factory}", "--input", "3x32x32",
                    *(["--allow-unknown"] if name == "gram" else []))
    assert result.exit_code == 0, result.output
    assert result.stdout == (ROOT / "docs" / "examples" / f"{name}.yaml").read_text()


@pytest.mark.parametrize("command", [["verify"], ["profile", "--device", "cpu", "--iters", "1",
                                                  "--warmup", "0"]])
def test_verify_and_profile_refuse_placeholders_in_one_line(command, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = invoke(command[0], "docs/examples/gram.yaml", *command[1:])
    assert result.exit_code == 2, result.output
    assert one_error_line(result) == (
        "cnncalc: error: cannot build 3 placeholder layer(s) in torch: flatten (Tensor.flatten), "
        "transpose (Tensor.transpose), matmul (torch.matmul); a placeholder stands for an op with "
        "no layer kind (imported with --allow-unknown) and has no module: replace it with real "
        "layers to build, verify or profile the spec")


def test_weights_used_directly_import_at_their_modules_path_and_verify_clean():
    """F.conv2d of a standardised weight, F.linear(x, self.fc.weight, self.fc.bias)."""
    pytest.importorskip("fvcore")
    spec, _ = imported(import_models.standardised(), (3, 16, 16))
    rows = {r.path: r for r in analyze(spec).rows}
    assert rows["conv"].params == 8 * 3 * 3 * 3 and rows["fc"].params == 8 * 4 + 4
    assert verify_against(spec, "s", model=import_models.standardised()).ok
