"""The per-layer roofline (cnncalc.roofline): bytes moved, FLOPs, bound, devices; no torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cnncalc import analyze, load_spec, parse_spec
from cnncalc.cli import app
from cnncalc.errors import OptionError
from cnncalc.roofline import Device, datasheet, resolve, roofline, save_calibration

runner = CliRunner()

CHAIN = """\
input: 100
layers:
  - linear: {name: fc, out: 50}
  - relu: {name: relu}
  - flatten: {name: flat}
"""
# 1 TFLOP/s, 100 GB/s: ridge 10 FLOP/B
TOY = Device("toy", {"fp32": 1e12}, 100e9)


def test_linear_by_hand():
    """Batch 8, fp32. fc: 2 × 8·100·50 = 80,000 FLOPs; bytes: input 8·100·4 = 3,200, weights
    and bias (5,000 + 50)·4 = 20,200, output 8·50·4 = 1,600: 25,000 B; intensity 3.2 FLOP/B,
    below the ridge: memory-bound, 25,000 B / 100 GB/s = 0.25 µs (compute 0.08 µs).
    relu: reads 1,600 and writes 1,600 B: 32 ns. The flatten is a view: nothing."""
    r = roofline(analyze(parse_spec(CHAIN, "m.yaml", "m"), batch=8), TOY)
    fc, relu, flat = r.layers
    assert (fc.flops, fc.bytes, fc.bound) == (80_000, 25_000, "memory")
    assert fc.intensity == pytest.approx(3.2)
    assert fc.compute_s == pytest.approx(80e-9) and fc.predicted_s == pytest.approx(250e-9)
    assert (relu.flops, relu.bytes, relu.predicted_s) == (400, 3_200, pytest.approx(32e-9))
    assert (flat.bytes, flat.predicted_s, flat.bound) == (0, 0.0, "")
    assert r.ridge == pytest.approx(10.0)
    assert r.predicted_s == pytest.approx(282e-9)


def test_big_convolutions_are_compute_bound_on_a_gpu():
    r = roofline(analyze(load_spec("vgg16"), batch=32), resolve("H100"))
    conv = next(layer for layer in r.layers if layer.path == "block2.conv1")
    assert conv.bound == "compute" and conv.intensity > r.ridge
    assert all(layer.bound in ("memory", "") for layer in r.layers if layer.kind == "relu")
    adds = roofline(analyze(load_spec("resnet18")), TOY).layers
    assert any(layer.kind == "add" and layer.bytes > 0 for layer in adds)  # adds are ops too


def test_devices():
    h100 = datasheet("NVIDIA H100 80GB HBM3")
    assert h100.name == "H100" and h100.bandwidth == 3350e9 and h100.peak("bf16") == 989.4e12
    assert datasheet("NVIDIA H100 PCIe").bandwidth == 2000e9
    custom = resolve("custom:10:500:5")
    assert (custom.peak("fp32"), custom.bandwidth) == (10e12, 500e9)
    assert custom.overhead_s == pytest.approx(5e-6)
    with pytest.raises(OptionError, match="unknown device"):
        resolve("abacus")
    with pytest.raises(OptionError, match="custom:TFLOPS"):
        resolve("custom:ten")


def test_cpu_needs_a_saved_calibration(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNCALC_CALIBRATION", str(tmp_path / "cal.json"))
    with pytest.raises(OptionError, match="--calibrate"):
        resolve("cpu")
    save_calibration(Device("My CPU", {"fp32": 1e11}, 2e10, 2e-6, "calibrated"))
    assert resolve("cpu").overhead_s == 2e-6
    r = roofline(analyze(parse_spec(CHAIN, "m.yaml", "m")), resolve("cpu"))
    assert r.layers[0].predicted_s == pytest.approx(max(10_000 / 1e11, 20_800 / 2e10) + 2e-6)


def test_cli_table_roofline_formats():
    result = runner.invoke(app, ["table", "resnet18", "--roofline", "A100", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["device"]["name"] == "A100" and data["layers"][0]["bound"] in ("compute", "memory")
    for fmt in ("table", "csv", "markdown"):
        result = runner.invoke(app, ["table", "alexnet", "--roofline", "H100", "-f", fmt])
        assert result.exit_code == 0 and "conv1" in result.stdout
    assert runner.invoke(app, ["table", "alexnet", "--roofline", "abacus"]).exit_code == 2


def test_table_roofline_imports_no_torch():
    code = ("import sys; from cnncalc.cli import app; from typer.testing import CliRunner; "
            "r = CliRunner().invoke(app, ['table', 'resnet50', '--roofline', 'H100']); "
            "assert r.exit_code == 0, r.output; assert 'torch' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_roofline_needs_numbers():
    result = runner.invoke(app, ["table", "resnet18", "--input", "3xHxH", "--roofline", "H100"])
    assert result.exit_code == 2 and "numeric --input" in result.output
