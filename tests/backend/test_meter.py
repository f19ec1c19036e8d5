"""The live-tensor meter (cnncalc.backend.meter) on models whose peaks are computed by hand."""

from __future__ import annotations

import gc

import pytest
import torch

from cnncalc.backend.meter import LiveTensorMeter, measure_inference, measure_training

F32 = 4


def _linear() -> tuple[torch.nn.Linear, torch.Tensor]:
    torch.manual_seed(0)
    return torch.nn.Linear(100, 50), torch.randn(8, 100)


WEIGHT = 100 * 50 * F32  # 20,000 B
BIAS = 50 * F32  # 200 B
INPUT = 8 * 100 * F32  # 3,200 B
OUTPUT = 8 * 50 * F32  # 1,600 B


def test_views_share_their_storage_and_frees_are_seen():
    with LiveTensorMeter() as meter:
        a = torch.ones(1000)
        b, c = a.view(10, 100), a[3:]
        assert meter.live_bytes == 4000
        del a, b
        assert meter.live_bytes == 4000  # c still holds the storage
        del c
        gc.collect()
        assert meter.live_bytes == 0
        assert meter.peak_bytes == 4000


def test_inference_of_one_linear_is_input_weight_bias_output():
    model, x = _linear()
    m = measure_inference(model, x)
    assert m.start_bytes == INPUT + WEIGHT + BIAS
    assert m.peak_bytes == INPUT + WEIGHT + BIAS + OUTPUT
    assert m.end_bytes == m.start_bytes  # the output is dropped after the pass


@pytest.mark.parametrize("set_to_none", [True, False])
def test_training_step_of_one_linear(set_to_none):
    """Backward: the loss's gradient expands to the output's size (1,600 B), then addmm's
    backward allocates the weight gradient (20,000 B) and the bias gradient (200 B); the input
    needs no gradient. With set_to_none the new gradients become .grad; without, they are
    added into the kept .grad and freed: the same peak, 20,000 + 200 B above either start."""
    model, x = _linear()
    m = measure_training(model, x, "sgd", set_to_none)
    grads = 0 if set_to_none else WEIGHT + BIAS
    assert m.start_bytes == INPUT + WEIGHT + BIAS + grads
    loss = 4  # the scalar loss
    assert m.peak_bytes == m.start_bytes + OUTPUT + WEIGHT + BIAS + 2 * loss
    assert m.end_bytes == INPUT + 2 * (WEIGHT + BIAS)


def test_adam_keeps_two_moments_and_divides_through_two_temporaries():
    """Adam's single-tensor step: exp_avg_sq.sqrt() and its division by the bias correction are
    two weight-sized temporaries alive together."""
    model, x = _linear()
    m = measure_training(model, x, "adam", set_to_none=False)
    steps = 2 * F32  # one float32 step count per parameter tensor
    state = 2 * (WEIGHT + BIAS) + steps
    assert m.start_bytes == INPUT + 2 * (WEIGHT + BIAS) + state
    assert m.peak_bytes == m.start_bytes + 2 * WEIGHT


def test_meta_device_meters_like_the_cpu():
    """The fp32 memory benchmark meters on the meta device (no arithmetic); same bytes."""
    from cnncalc import analyze, load_spec
    from cnncalc.backend import build

    spec = load_spec("resnet-bottleneck-block")
    figures = []
    for device in ("cpu", "meta"):
        torch.manual_seed(0)
        model = build(spec).to(device)
        shape = analyze(spec).input
        x = torch.randn(2, *shape, device=device)
        figures.append(measure_training(model, x, "momentum", True).peak_bytes)
    assert figures[0] == figures[1]
