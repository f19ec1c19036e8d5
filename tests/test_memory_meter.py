"""The memory model (cnncalc.memory) against the live-tensor meter (cnncalc.backend.meter) on
every zoo spec: each predicted peak within 5 % of the measured one (docs/memory.md).

fp32 runs on torch's meta device: the same ATen ops, autograd graph and tensor sizes as the CPU,
without the arithmetic, so the whole zoo meters in seconds; test_meta_meters_like_the_cpu checks
that on real CPU tensors. bf16 autocast needs a real device: a few small specs on the CPU.
benchmarks/memory_error.py runs the full grid (every optimizer, batch 32) and writes the table.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from cnncalc import analyze, load_spec  # noqa: E402
from cnncalc.backend import build  # noqa: E402
from cnncalc.backend.meter import measure_inference, measure_training  # noqa: E402
from cnncalc.memory import memory  # noqa: E402
from cnncalc.zoo import zoo_names  # noqa: E402

TOLERANCE = 0.05
BIG = {"resnet101", "resnet152", "vgg13", "vgg19"}  # training: one setting, to keep CI short


def _measure(spec, batch, device, dtype="fp32", optimizer=None, set_to_none=True):
    torch.manual_seed(0)
    model = build(spec).to(device)
    x = torch.randn(batch, *analyze(spec).input, device=device)
    if optimizer is None:
        return measure_inference(model, x, dtype).peak_bytes
    return measure_training(model, x, optimizer, set_to_none, dtype).peak_bytes


def _predict(spec, batch, dtype="fp32", optimizer=None, set_to_none=True):
    report = memory(analyze(spec, batch=batch, dtype=dtype), optimizer or "sgd",
                    param_dtype="fp32", set_to_none=set_to_none)
    return report.inference_bytes if optimizer is None else report.training_bytes


def _cases():
    for name in zoo_names():
        for batch in (1, 8):
            yield name, batch, None, True
            yield name, batch, "sgd", True
            if name not in BIG:
                yield name, batch, "sgd", False
                yield name, batch, "adam", batch == 1


@pytest.mark.parametrize("name,batch,optimizer,set_to_none", list(_cases()))
def test_prediction_within_5_percent_of_the_meter(name, batch, optimizer, set_to_none):
    spec = load_spec(name)
    measured = _measure(spec, batch, "meta", optimizer=optimizer, set_to_none=set_to_none)
    predicted = _predict(spec, batch, optimizer=optimizer, set_to_none=set_to_none)
    assert abs(predicted / measured - 1) <= TOLERANCE, (predicted, measured)


@pytest.mark.parametrize("name", ["resnet-bottleneck-block", "inception-bottleneck", "lenet5-1998"])
def test_meta_meters_like_the_cpu(name):
    spec = load_spec(name)
    for optimizer in (None, "momentum"):
        cpu = _measure(spec, 2, "cpu", optimizer=optimizer)
        meta = _measure(spec, 2, "meta", optimizer=optimizer)
        # eval batch norm on the CPU returns two small empty statistics: 512 B a layer
        assert abs(cpu - meta) <= 0.001 * cpu, (optimizer, cpu, meta)


@pytest.mark.parametrize("name", ["lenet5", "nin-1x1", "inception-bottleneck",
                                  "resnet-bottleneck-block"])
@pytest.mark.parametrize("optimizer,set_to_none", [(None, True), ("sgd", True), ("adam", False)])
def test_bf16_autocast_within_5_percent(name, optimizer, set_to_none):
    spec = load_spec(name)
    measured = _measure(spec, 1, "cpu", "bf16", optimizer, set_to_none)
    predicted = _predict(spec, 1, "bf16", optimizer, set_to_none)
    assert abs(predicted / measured - 1) <= TOLERANCE, (predicted, measured)


def test_inplace_relu_like_torch():
    """torchvision-style in-place ReLUs: the prediction follows the meter both ways."""
    from cnncalc import parse_spec

    text = ("input: 3x32x32\nlayers:\n  - conv: {name: c1, out: 16, kernel: 3, padding: 1}\n"
            "  - batchnorm: {name: bn}\n  - relu: {name: r1, inplace: %s}\n"
            "  - conv: {name: c2, out: 16, kernel: 3, padding: 1}\n"
            "  - relu: {name: r2, inplace: %s}\n  - global_avgpool: {name: pool}\n"
            "  - flatten: {name: flat}\n  - linear: {name: fc, out: 10}\n")
    for flag in ("true", "false"):
        spec = parse_spec(text % (flag, flag), "m.yaml", "m")
        for optimizer in (None, "sgd"):
            measured = _measure(spec, 4, "cpu", optimizer=optimizer)
            predicted = _predict(spec, 4, optimizer=optimizer)
            assert abs(predicted / measured - 1) <= 0.01, (flag, optimizer, predicted, measured)
