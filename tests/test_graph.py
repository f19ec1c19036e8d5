"""The graph form (cnncalc/graph.py) and the graph syntax of specs: as, from, with, outputs and
${X.channels}. Merge kinds (add, mul, concat) have their own tests with the layer kinds."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cnncalc import analyze
from cnncalc.check import check
from cnncalc.errors import SpecError
from cnncalc.graph import GRAPH_INPUT, lower
from cnncalc.memory import memory
from cnncalc.spec import parse_spec
from cnncalc.zoo import load_spec


def spec(text: str):
    return parse_spec(textwrap.dedent(text), "g.yaml", "g")


def error(text: str) -> str:
    with pytest.raises(SpecError) as caught:
        analyze(spec(text))
    return str(caught.value)


BRANCHY = """
    input: 3x32x32
    blocks:
      widen:
        params: {factor: 2}
        layers:
          - conv: {out: "${input.channels * factor}", kernel: 1}
    layers:
      - conv: {out: 8, kernel: 3, padding: 1, as: stem}
      - maxpool: {kernel: 2, as: p1}
      - conv: {name: side, from: stem, out: 4, kernel: 1, as: side}
      - widen: {name: wide, from: p1, factor: 3, as: wide}
    outputs: [wide, side]
"""


def test_from_reads_an_earlier_tensor_and_outputs_are_each_reported():
    a = analyze(spec(BRANCHY))
    # side: a 1×1 conv on the 8×32×32 stem, not on the pooled 8×16×16 map
    side = a.row("side")
    assert side.input == (8, 32, 32) and side.output == (4, 32, 32)
    assert side.params == 8 * 4 + 4 and side.macs == 32 * 32 * 4 * 8
    # widen reads p1 (8 channels): out = 8·3 = 24, a 1×1 conv on 16×16
    wide = a.row("wide.0")
    assert wide.output == (24, 16, 16) and wide.params == 8 * 24 + 24
    assert a.outputs == ((24, 16, 16), (4, 32, 32)) and a.output == (24, 16, 16)
    # totals: every layer counts once, both outputs' costs included
    assert a.totals.params == (3 * 9 * 8 + 8) + (8 * 4 + 4) + (8 * 24 + 24)
    assert a.totals.macs == 32 * 32 * 8 * 27 + 32 * 32 * 4 * 8 + 16 * 16 * 24 * 8
    assert a.graph_warnings == []


def test_the_graph_form_orders_ops_and_keeps_groups_contiguous():
    g = lower(spec(BRANCHY))
    assert [op.path for op in g.ops] == ["0", "1", "side", "wide.0"]
    assert g.ops[0].inputs == (GRAPH_INPUT,) and g.ops[2].inputs == (0,)  # side reads stem
    (wide,) = g.groups
    assert (wide.path, wide.input, wide.output, wide.first, wide.end) == ("wide", 1, 3, 3, 4)
    assert g.outputs == (3, 2) and g.output_names == ("wide", "side")


def test_concat_and_residual_constructs_lower_to_implied_merges_without_rows():
    g = lower(load_spec("resnet-basic-block"))
    implied = [op for op in g.ops if op.implied]
    assert implied and all(not op.row and op.kind == "add" for op in implied)
    g = lower(load_spec("inception-naive"))
    assert [op.kind for op in g.ops if op.implied] == ["concat"]
    assert len(analyze(load_spec("resnet50")).rows) == len(lower(load_spec("resnet50")).preorder)


def test_graph_specs_work_in_memory_check_and_symbolic():
    loaded = spec(BRANCHY)
    report = memory(analyze(loaded))
    # while side runs: the stem (8·32·32·4 B, read by side), p1 (8·16·16·4, read later) and
    # side's own output (4·32·32·4, an output: kept) are alive
    assert report.activation_peak_bytes == 8 * 32 * 32 * 4 + 8 * 16 * 16 * 4 + 4 * 32 * 32 * 4
    assert report.activation_peak_at == "side"
    assert check(loaded).exact  # no division floors: 32 → 16 by 2×2 pooling
    sympy = pytest.importorskip("sympy")
    from cnncalc.symbolic import analyze_symbolic

    result = analyze_symbolic(loaded, "3xHxW")
    H = sympy.Symbol("H", integer=True, positive=True)
    assert result.row("side").output[1] == H


@pytest.mark.parametrize("text, message", [
    ("""
        input: 3x8x8
        layers:
          - conv: {from: later, out: 4, kernel: 1}
          - relu: {as: later}
     """, "g.yaml:4:5: layer 0: from 'later' is defined later (line 5): a layer can only read "
          "tensors computed before it (the graph would have a cycle)"),
    ("""
        input: 3x8x8
        layers:
          - conv: {out: 4, kernel: 1, as: stem}
          - relu: {from: stme}
     """, "g.yaml:5:5: layer 1: unknown tensor 'stme' in from (did you mean 'stem'?) "
          "(tensors here: input, stem)"),
    ("""
        input: 3x8x8
        layers:
          - conv: {out: 4, kernel: 1, as: x}
          - relu: {as: x}
     """, "g.yaml:5:5: layer 1: tensor 'x' is already defined at line 4 in this scope (in a "
          "repeat, name each copy: as: x${i})"),
    ("""
        input: 3x8x8
        layers:
          - relu: {with: x}
     """, "g.yaml:4:18: layer 0: with: only merge kinds (add, mul, concat) take it, not relu"),
    ("""
        input: 3x8x8
        layers:
          - relu: {from: [a, b]}
     """, "g.yaml:4:18: layer 0: from: relu reads one tensor; only merge kinds (add, mul, "
          "concat) take a list"),
    ("""
        input: 3x8x8
        layers:
          - conv: {out: 4, kernel: 1}
        outputs: [nope]
     """, "g.yaml:5:11: unknown tensor 'nope' in outputs (tensors here: input)"),
    ("""
        input: 3x8x8
        layers:
          - conv: {out: "${input.channels - 3}", kernel: 1}
     """, "g.yaml:4:17: layer 0: out must be a positive integer, got 0 (${input.channels - 3})"),
    ("""
        input: 3x8x8
        layers:
          - conv: {out: "${input.width}", kernel: 1}
     """, "g.yaml:4:17: layer 0: out: ${input.width}: a tensor has only .channels, not .width"),
    ("""
        input: 3x8x8
        layers:
          - relu: {when: "${input.channels > 2}"}
     """, "g.yaml:4:18: when: ${…} that reads a tensor's shape (.channels) can only be a layer "
          "field's or a block argument's whole value"),
])
def test_graph_errors_are_one_located_line(text: str, message: str):
    assert error(text) == message


def test_an_output_nothing_reads_is_a_warning():
    a = analyze(spec("""
        input: 3x8x8
        layers:
          - conv: {out: 4, kernel: 1, as: a}
          - conv: {name: lost, out: 4, kernel: 1}
          - relu: {from: a}
    """))
    assert [w.message for w in a.graph_warnings] == [
        "lost: its output is never used (not read by a later layer and not one of the outputs)"]


def test_block_input_channels_and_deferred_arguments():
    a = analyze(spec("""
        input: 6x8x8
        blocks:
          half:
            params: {width: ~}
            layers:
              - conv: {out: "${width}", kernel: 1}
        layers:
          - conv: {out: 10, kernel: 1}
          - half: {width: "${input.channels // 2}"}
    """))
    # the argument is read in the caller's scope: the spec's input has 6 channels → width 3
    assert a.row("1.0").output == (3, 8, 8)
    assert a.row("1.0").params == 10 * 3 + 3


def test_a_block_instance_reads_its_own_input():
    a = analyze(spec("""
        input: 3x8x8
        blocks:
          keep:
            layers:
              - conv: {out: 7, kernel: 1}
              - conv: {from: input, out: 5, kernel: 1}
        layers:
          - conv: {out: 4, kernel: 1}
          - keep
    """))
    assert a.row("1.1").input == (4, 8, 8)  # the instance's input, not the 7-channel map
    assert [w.path for w in a.graph_warnings] == ["1.0"]


def test_an_input_of_another_rank_is_refused_in_one_line():
    from cnncalc.errors import OptionError

    with pytest.raises(OptionError) as caught:
        analyze(load_spec("alexnet"), input="150528")
    assert str(caught.value) == ("--input 150528 is a vector F, but alexnet takes C×H×W "
                                 "(3x227x227): give an input of the same rank")


SE_SPEC = (Path(__file__).parent / "graph_se.yaml").read_text()


def test_a_squeeze_and_excitation_gate_and_a_concat_merge():
    """SE on a 32×8×8 map: pool to 32×1×1, 1×1 conv to 8, 1×1 conv back to the block input's
    32 channels, sigmoid, times the block's input; then a concat of three tensors."""
    a = analyze(spec(SE_SPEC))
    assert a.row("1.3").output == (32, 1, 1)  # out: ${input.channels} = 32
    assert a.row("1.5").output == (32, 8, 8) and a.row("1.5").macs == 0  # a merge: no MACs
    assert a.row("1").params == (32 * 8 + 8) + (8 * 32 + 32)
    assert a.row("3").output == (32 + 32 + 16, 8, 8)  # a, b and the 16-channel input
    assert a.totals.macs == 8 * 8 * 32 * 16 * 9 + 32 * 8 + 8 * 32 + 8 * 8 * 32 * 32
    assert a.graph_warnings == []


def test_a_shape_reading_argument_is_evaluated_only_where_it_is_read():
    """A block's argument that reads its caller's input, and a layer in the block that reads
    the block's own input instead: each resolves in its own scope (EfficientNet's SE)."""
    a = analyze(spec("""
        input: 8x4x4
        blocks:
          gate:
            params: {squeeze: ~}
            layers:
              - conv: {out: "${squeeze}", kernel: 1}
              - conv: {out: "${input.channels}", kernel: 1}
          outer:
            layers:
              - conv: {out: 12, kernel: 1}
              - gate: {squeeze: "${input.channels // 4}"}
        layers:
          - outer
    """))
    assert a.row("0.1.0").output == (2, 4, 4)  # outer's input has 8 channels: 8 // 4
    assert a.row("0.1.1").output == (12, 4, 4)  # gate's input: the 12-channel conv
