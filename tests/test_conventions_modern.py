"""Counting conventions for the modern kinds and the merges: each real tool run on the cnncalc
torch backend's module of the kind gives exactly what the convention's rule says for a
hand-built row."""

from __future__ import annotations

from math import prod

import pytest

from cnncalc.conventions import get
from cnncalc.engine import Row
from cnncalc.errors import Location
from cnncalc.layers import REGISTRY
from cnncalc.spec import Leaf

from .test_conventions import TOOLS, _require, run_tool

SHAPE = (6, 5, 4)

# (kind, fields) for every single-input modern kind and the variants the tools count apart
CASES = [
    ("layernorm", {}), ("layernorm", {"affine": False}), ("layernorm", {"over": "last"}),
    ("layernorm", {"over": "last", "elementwise_affine": False}),
    ("layernorm", {"over": "last", "bias": False}),
    ("groupnorm", {"groups": 3}), ("groupnorm", {"groups": 2, "affine": False}),
    ("instancenorm", {}), ("instancenorm", {"affine": True}),
    ("instancenorm", {"affine": True, "track_running_stats": True}),
    ("layer_scale", {}), ("slice", {"start": 1, "stop": 4}), ("slice", {"chunks": 2, "index": 1}),
    ("channel_shuffle", {"groups": 2}), ("drop_path", {"p": 0.2}), ("prelu", {}),
    ("prelu", {"num_parameters": 6}), ("gelu", {"approximate": "tanh"}), ("swish", {}),
    ("mish", {}), ("hardsigmoid", {}),
]
MERGES = ["add", "mul", "concat"]


def config(kind: str, fields: dict) -> dict:
    rule = REGISTRY[kind]
    cfg = {name: f.default for name, f in rule.fields.items() if not f.required}
    return rule.finish({**cfg, **fields})


def hand_row(kind: str, cfg: dict, x, batch: int) -> tuple[Leaf, Row]:
    """The leaf and row the engine would give the layer, built by hand from its rule."""
    rule = REGISTRY[kind]
    y = rule.output_shape(cfg, x)
    leaf = Leaf(name="0", path="0", label=kind, where=Location(), kind=kind, config=cfg)
    row = Row(path="0", name="0", kind=kind, depth=1, leaf=True, head=False, input=x, output=y,
              settings="", params=rule.params(cfg, x), trainable_params=rule.trainable(cfg, x),
              buffers=rule.buffers(cfg, x), macs=batch * rule.macs(cfg, x, y),
              activation_bytes=4 * batch * prod(y), rf=(1, 1), jump=(1, 1))
    return leaf, row


def _convention_total(tool: str, leaf: Leaf, row: Row, batch: int) -> int:
    return sum(get(tool).count(leaf, row, batch).values())


@pytest.mark.parametrize("kind,fields", CASES, ids=[f"{k}-{f}" for k, f in CASES])
@pytest.mark.parametrize("tool", [*TOOLS, "flops"])
def test_real_tool_counts_the_modern_kind_as_the_convention_says(kind, fields, tool):
    _require(tool)
    from torch import nn

    from cnncalc.backend.builders import BUILDERS

    cfg = config(kind, fields)
    model = nn.Sequential(BUILDERS[kind](cfg, SHAPE)).eval()
    for batch in (1, 3):
        leaf, row = hand_row(kind, cfg, SHAPE, batch)
        assert run_tool(tool, model, SHAPE, batch) == _convention_total(tool, leaf, row, batch)


class _TwoOperands:
    """A model that feeds the merge two operands made from its one input by views (which no
    tool counts): the input twice, or for mul the input and its first position per channel
    (a C×1×1 gate)."""

    @staticmethod
    def build(kind: str):
        import torch
        from torch import nn

        from cnncalc.backend.builders import BUILDERS

        shapes = (SHAPE, (SHAPE[0], 1, 1)) if kind == "mul" else (SHAPE, SHAPE)
        cfg = config(kind, {})

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.merge = BUILDERS[kind](cfg, shapes)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                other = x[:, :, :1, :1] if kind == "mul" else x
                return self.merge(x, other)

        return Model().eval(), cfg, shapes


@pytest.mark.parametrize("kind", MERGES)
@pytest.mark.parametrize("tool", [*TOOLS, "flops"])
def test_real_tool_counts_no_merge(kind, tool):
    _require(tool)
    model, cfg, shapes = _TwoOperands.build(kind)
    for batch in (1, 3):
        leaf, row = hand_row(kind, cfg, shapes, batch)
        measured = run_tool(tool, model, SHAPE, batch)
        assert measured == _convention_total(tool, leaf, row, batch) == 0


def test_the_counts_by_hand():
    """A few of the rules with the arithmetic written out (6×5×4 input: 120 elements)."""
    cfg = config("layernorm", {"over": "last"})
    leaf, row = hand_row("layernorm", cfg, SHAPE, 2)
    assert get("fvcore").count(leaf, row, 2) == {"layernorm": 5 * 2 * 120}  # with a weight
    assert get("ptflops").count(leaf, row, 2) == {"layernorm": 1 * 2 * 120}  # never doubled
    assert get("thop").count(leaf, row, 2) == {"layernorm": 4 * 2 * 120}
    assert get("torchinfo").count(leaf, row, 2) == {"layernorm": 2 * (4 + 4)}  # W=4: weight, bias
    channels = hand_row("layernorm", config("layernorm", {}), SHAPE, 2)
    assert get("ptflops").count(*channels, 2) == {} == get("thop").count(*channels, 2)
    gn = hand_row("groupnorm", config("groupnorm", {"groups": 3}), SHAPE, 1)
    assert get("fvcore").count(*gn, 1) == {"groupnorm": 5 * 120}
    assert get("ptflops").count(*gn, 1) == {"groupnorm": 2 * 120}
    assert get("thop").count(*gn, 1) == {}  # nn.GroupNorm is not registered
    prelu = hand_row("prelu", config("prelu", {"num_parameters": 6}), SHAPE, 1)
    assert get("ptflops").count(*prelu, 1) == {"prelu": 2 * 120}
    assert get("thop").count(*prelu, 1) == {"prelu": 120}
    assert get("torchinfo").count(*prelu, 1) == {"prelu": 6}
    scale = hand_row("layer_scale", config("layer_scale", {}), SHAPE, 1)
    assert get("torchinfo").count(*scale, 1) == {}  # γ is not named weight or bias
    for tool in ("macs", "flops", *TOOLS):
        merge = hand_row("mul", {}, (SHAPE, (6, 1, 1)), 1)
        assert get(tool).count(*merge, 1) == {}


def test_every_counted_modern_operator_has_a_why():
    for tool in TOOLS:
        conv = get(tool)
        for kind, fields in CASES:
            leaf, row = hand_row(kind, config(kind, fields), SHAPE, 1)
            for op in conv.count(leaf, row, 1):
                assert op in conv.why, (tool, op)
