"""verify: the engine against torch, fvcore and FlopCounterMode, row by row."""

from __future__ import annotations

import textwrap

import pytest

from cnncalc import load_spec, parse_spec, zoo_names
from cnncalc.backend import verify
from cnncalc.layers import REGISTRY


def spec(text: str):
    return parse_spec(textwrap.dedent(text), "net.yaml", "net")


@pytest.mark.parametrize("name", zoo_names())
def test_every_zoo_spec_verifies_clean(name: str):
    result = verify(load_spec(name))
    assert result.ok, [(r.path, [(c.name, c.expected, c.actual) for c in r.checks if not c.ok])
                       for r in result.failed_rows[:5]]
    assert "fvcore" in result.versions  # the MAC check ran
    assert {c.name for c in result.totals} == {"params", "buffers", "flop_counter", "fvcore"}


def test_verify_with_a_batch_and_another_input():
    result = verify(load_spec("resnet18"), input="3x160x128", batch=3)
    assert result.ok
    fc = next(r for r in result.rows if r.path == "fc")
    assert next(c for c in fc.checks if c.name == "shape").actual == (3, 1000)


def test_unusual_layers_verify():
    loaded = spec("""
        input: 8x17x13
        layers:
          - conv: {out: 8, kernel: [1, 7], padding: [0, 3], groups: 4, bias: false}
          - conv: {out: 16, kernel: 3, stride: 2, padding: same, dilation: 2}
          - batchnorm
          - leaky_relu: {slope: 0.2}
          - maxpool: {kernel: 3, stride: 2, padding: 1, ceil_mode: true}
          - lrn: {size: 3}
          - conv: {out: 16, kernel: 1, groups: 16}
          - adaptive_avgpool: {output: [3, 2]}
          - flatten
          - batchnorm
          - linear: {out: 10, bias: false}
          - softmax
    """)
    assert verify(spec=loaded, batch=2).ok


def test_a_miscount_is_caught(monkeypatch):
    conv = REGISTRY["conv"]
    real = conv.params
    monkeypatch.setattr(conv, "params", lambda cfg, x: real(cfg, x) + 1)
    result = verify(load_spec("lenet5"))
    assert not result.ok
    failed = {r.path for r in result.failed_rows}
    assert {"c1", "c3"} <= failed
    params = next(c for c in result.totals if c.name == "params")
    assert params.expected == params.actual + 2  # two convolutions, one extra each


def test_a_wrong_shape_is_caught(monkeypatch):
    pool = REGISTRY["maxpool"]
    real = pool.output_shape
    monkeypatch.setattr(pool, "output_shape",
                        lambda cfg, x: (real(cfg, x)[0], real(cfg, x)[1], real(cfg, x)[2]))
    assert verify(load_spec("alexnet")).ok  # unchanged rule: still clean
    monkeypatch.setattr(REGISTRY["linear"], "macs", lambda cfg, x, y: 0)
    result = verify(load_spec("alexnet"))
    assert {"fc6", "fc7", "fc8"} <= {r.path for r in result.failed_rows}
