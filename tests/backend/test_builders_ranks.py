"""Torch builders in 1-D, 2-D and 3-D and for the resampling kinds: each builds a module whose
output shape is the rule's and whose parameter and buffer counts are the rule's."""

from __future__ import annotations

import textwrap

import pytest
import torch
import yaml

from cnncalc import analyze, parse_spec
from cnncalc.backend import build
from cnncalc.backend.builders import BUILDERS
from cnncalc.layers import REGISTRY


def loaded(layer: dict, input: tuple[int, ...]):
    text = yaml.safe_dump({"input": list(input), "layers": [layer]})
    return parse_spec(text, "p.yaml", "p").root.items[0]


def check(kind: str, cfg: dict, x: tuple[int, ...]) -> torch.Tensor:
    rule = REGISTRY[kind]
    module = BUILDERS[kind](cfg, x)
    with torch.no_grad():
        y = module(torch.randn(2, *x))
    assert tuple(y.shape[1:]) == rule.output_shape(cfg, x)
    assert sum(p.numel() for p in module.parameters()) == rule.params(cfg, x)
    assert sum(b.numel() for b in module.buffers()) == rule.buffers(cfg, x)
    return y


CASES = [
    ({"conv": {"out": 4, "kernel": 3, "stride": 2, "padding": 1}}, (2, 17)),
    ({"conv": {"out": 4, "kernel": 4, "stride": 2, "padding": "same"}}, (2, 17)),
    ({"conv": {"out": 4, "kernel": [1, 3, 3], "padding": "same", "groups": 2}}, (2, 5, 9, 9)),
    ({"conv": {"out": 4, "kernel": 2, "stride": 3, "padding": "same"}}, (2, 5, 8, 7)),
    ({"maxpool": {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True}}, (3, 20)),
    ({"maxpool": {"kernel": [1, 2, 2]}}, (3, 4, 8, 8)),
    ({"avgpool": {"kernel": 2, "padding": 1}}, (3, 9)),
    ({"avgpool": {"kernel": [2, 3, 3], "stride": 1}}, (3, 4, 8, 8)),
    ({"adaptive_avgpool": {"output": 3}}, (3, 10)),
    ({"adaptive_maxpool": {"output": [2, 3, 3]}}, (3, 5, 7, 7)),
    ({"global_avgpool": None}, (3, 10)),
    ({"global_avgpool": None}, (3, 4, 5, 6)),
    ({"batchnorm": None}, (3, 10)),
    ({"batchnorm": None}, (3, 4, 5, 6)),
    ({"conv_transpose": {"out": 4, "kernel": 3, "stride": 2, "padding": 1, "output_padding": 1}},
     (2, 10)),
    ({"conv_transpose": {"out": 4, "kernel": 2, "stride": 2}}, (6, 7, 7)),
    ({"conv_transpose": {"out": 4, "kernel": [2, 4, 4], "stride": 2, "padding": [0, 1, 1],
                         "groups": 2, "bias": False}}, (4, 3, 5, 5)),
    ({"upsample": {"scale": 2}}, (2, 9)),
    ({"upsample": {"scale": 1.5, "mode": "bilinear"}}, (2, 7, 5)),
    ({"upsample": {"size": [6, 10, 12], "mode": "trilinear", "align_corners": True}},
     (2, 3, 5, 6)),
    ({"pad": {"padding": [[2, 1]], "mode": "reflect"}}, (2, 5)),
    ({"pad": {"padding": [1, [0, 2]]}}, (2, 5, 5)),
    ({"pad": {"padding": [1, 2, [0, 3]], "mode": "replicate"}}, (2, 3, 4, 5)),
    ({"crop": {"size": 3}}, (2, 10)),
    ({"crop": {"size": [4, 6]}}, (2, 11, 8)),
    ({"crop": {"size": [2, 4, 4]}}, (2, 4, 8, 8)),
]


@pytest.mark.parametrize("layer, x", CASES, ids=lambda v: str(v) if isinstance(v, tuple) else
                         next(iter(v)))
def test_builder_matches_the_rule(layer, x):
    leaf = loaded(layer, x)
    check(leaf.kind, leaf.config, x)


def test_pad_builder_pads_like_f_pad():
    leaf = loaded({"pad": {"padding": [1, [0, 2]], "mode": "reflect"}}, (1, 4, 4))
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    y = BUILDERS["pad"](leaf.config, (1, 4, 4))(x)
    assert torch.equal(y, torch.nn.functional.pad(x, (0, 2, 1, 1), mode="reflect"))


def test_crop_builder_keeps_the_centre():
    leaf = loaded({"crop": {"size": [2, 3]}}, (1, 6, 7))
    x = torch.arange(42.0).reshape(1, 1, 6, 7)
    y = BUILDERS["crop"](leaf.config, (1, 6, 7))(x)
    # offsets (6 − 2)//2 = 2 and (7 − 3)//2 = 2
    assert torch.equal(y, x[:, :, 2:4, 2:5])


@pytest.mark.parametrize("kind", ["upsample", "crop"])
def test_like_builders_take_the_referenced_shape(kind):
    cfg = dict(loaded({kind: {"like": "skip"}}, (3, 16, 16)).config)
    cfg["like"] = (8, 12, 12) if kind == "crop" else (8, 20, 24)
    y = check(kind, cfg, (3, 16, 16))
    assert tuple(y.shape[2:]) == cfg["like"][1:]


def test_a_1d_and_a_3d_spec_build_with_the_engines_counts():
    for text in ("""
        input: 2x64
        layers:
          - conv: {out: 8, kernel: 5, stride: 2, padding: 2}
          - batchnorm
          - relu
          - maxpool: {kernel: 2}
          - conv_transpose: {out: 4, kernel: 2, stride: 2}
          - upsample: {scale: 2, mode: linear}
          - pad: {padding: 1}
          - crop: {size: 60}
          - global_avgpool
          - flatten
          - linear: {out: 3}
    """, """
        input: 3x8x32x32
        layers:
          - conv: {out: 8, kernel: [3, 7, 7], stride: [1, 2, 2], padding: [1, 3, 3]}
          - batchnorm
          - relu
          - maxpool: {kernel: [1, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1]}
          - conv_transpose: {out: 4, kernel: 2, stride: 2}
          - upsample: {size: [16, 32, 32], mode: trilinear}
          - crop: {size: [12, 30, 30]}
          - adaptive_avgpool: {output: [1, 2, 2]}
          - flatten
          - linear: {out: 3}
    """):
        loaded_spec = parse_spec(textwrap.dedent(text), "net.yaml", "net")
        analysis = analyze(loaded_spec)
        model = build(loaded_spec)
        with torch.no_grad():
            y = model(torch.randn(2, *loaded_spec.input))
        assert tuple(y.shape[1:]) == analysis.output
        assert sum(p.numel() for p in model.parameters()) == analysis.totals.params
        assert sum(b.numel() for b in model.buffers()) == analysis.totals.buffers
        for row in analysis.rows:
            if row.leaf:
                module = model.get_submodule(row.path)
                assert sum(p.numel() for p in module.parameters()) == row.params, row.path
