"""Spec → torch.nn.Module: every kind has a builder, names are the spec's paths, and the
modules compute what the spec format says."""

from __future__ import annotations

import textwrap

import pytest
import torch

from cnncalc import analyze, load_spec, parse_spec, zoo_names
from cnncalc.backend import build
from cnncalc.backend.builders import BUILDERS, Block
from cnncalc.layers import REGISTRY


def spec(text: str):
    return parse_spec(textwrap.dedent(text), "net.yaml", "net")


def test_every_layer_kind_has_a_torch_builder():
    assert set(BUILDERS) == set(REGISTRY)


@pytest.mark.parametrize("name", zoo_names())
def test_zoo_builds_with_spec_paths_and_counts(name: str):
    loaded = load_spec(name)
    analysis = analyze(loaded)
    model = build(loaded)
    for row in analysis.rows:
        module = model.get_submodule(row.path)  # every row maps to exactly one module
        assert sum(p.numel() for p in module.parameters()) == row.params, row.path
        assert sum(b.numel() for b in module.buffers()) == row.buffers, row.path
    # …and back: every named module is a row, or lies inside a leaf row (a table conv's per-map
    # convolutions, a padded conv's pad and conv).
    paths = {r.path for r in analysis.rows}
    leaves = {r.path for r in analysis.rows if r.leaf}
    for name, _ in model.named_modules():
        if name:
            assert name in paths or any(name.startswith(leaf + ".") for leaf in leaves), name


def test_connection_table_output_maps_only_see_their_inputs():
    # LeNet-5 C3: map 0 sees S2 maps 0, 1, 2; changing map 5 must not change it.
    loaded = load_spec("lenet5-1998")
    c3 = build(loaded).get_submodule("c3").eval()
    x = torch.randn(1, 6, 14, 14)
    y = x.clone()
    y[:, 5] += 10
    with torch.no_grad():
        a, b = c3(x), c3(y)
    assert torch.equal(a[:, 0], b[:, 0])  # row [0, 1, 2]
    assert not torch.equal(a[:, 3], b[:, 3])  # row [3, 4, 5]
    assert sum(p.numel() for p in c3.parameters()) == 1516  # 60 connections·25 + 16 biases


def test_same_padding_at_stride_2_pads_after():
    # 'same' at stride 2 on 7: output ⌈7/2⌉ = 4; padding (4−1)·2 + 3 − 7 = 2 → 1 before, 1 after;
    # on 8: ⌈8/2⌉ = 4, (4−1)·2 + 3 − 8 = 1 → 0 before, 1 after (unequal: torch needs a ZeroPad2d).
    for size in (7, 8):
        loaded = spec(f"""
            input: 3x{size}x{size}
            layers:
              - conv: {{out: 4, kernel: 3, stride: 2, padding: same}}
        """)
        with torch.no_grad():
            out = build(loaded)(torch.randn(2, 3, size, size))
        assert tuple(out.shape) == (2, 4, 4, 4)
        assert analyze(loaded).output == (4, 4, 4)


def test_subsample_is_window_sum_times_coefficient_plus_bias():
    loaded = spec("""
        input: 1x4x4
        layers:
          - subsample: {kernel: 2}
    """)
    layer = build(loaded).get_submodule("0")
    with torch.no_grad():
        layer.weight.fill_(2.0)
        layer.bias.fill_(1.0)
        out = layer(torch.ones(1, 1, 4, 4))
    assert torch.equal(out, torch.full((1, 1, 2, 2), 4 * 2.0 + 1.0))  # (1+1+1+1)·2 + 1


def test_subsample_windows_past_the_edge_sum_only_what_they_cover():
    # 1×3×3 of ones, 2×2/2 with ceil_mode: output 2×2; the windows cover 4, 2, 2 and 1 inputs
    loaded = spec("""
        input: 1x3x3
        layers:
          - subsample: {kernel: 2, ceil_mode: true}
    """)
    layer = build(loaded).get_submodule("0")
    with torch.no_grad():
        out = layer(torch.ones(1, 1, 3, 3))  # coefficient 1, bias 0
    assert out.tolist() == [[[[4.0, 2.0], [2.0, 1.0]]]]


def test_rbf_is_squared_distance_to_each_centre():
    loaded = spec("""
        input: 5
        layers:
          - rbf: {out: 3}
    """)
    rbf = build(loaded).get_submodule("0")
    x = torch.randn(4, 5)
    expected = ((x[:, None, :] - rbf.weight[None]) ** 2).sum(-1)
    assert torch.allclose(rbf(x), expected, atol=1e-5)
    assert not rbf.weight.requires_grad  # fixed by hand in 1998


def test_heads_run_in_training_and_stay_off_the_main_path():
    model = build(load_spec("googlenet"))
    x = torch.randn(1, 3, 224, 224)
    model.eval()
    with torch.no_grad():
        assert tuple(model(x).shape) == (1, 1000)
        model.collect_heads = True
        assert len(model(x)) == 1  # at inference the heads do not run
        model.heads_always = True
        main, aux1, aux2 = model(x)
    assert tuple(main.shape) == tuple(aux1.shape) == tuple(aux2.shape) == (1, 1000)
    assert isinstance(model.get_submodule("aux1"), Block)
    assert isinstance(model.get_submodule("aux1.fc2"), torch.nn.Linear)


def test_residual_without_shortcut_adds_the_input():
    loaded = spec("""
        input: 2x3x3
        layers:
          - residual: {layers: [identity]}
    """)
    x = torch.randn(1, 2, 3, 3)
    assert torch.equal(build(loaded)(x), 2 * x)


def test_a_graph_spec_with_from_and_two_outputs_builds_and_verifies():
    from cnncalc.backend import verify
    from tests.test_graph import BRANCHY

    loaded = spec(BRANCHY)
    wide, side = build(loaded).eval()(torch.randn(2, 3, 32, 32))
    assert tuple(wide.shape) == (2, 24, 16, 16) and tuple(side.shape) == (2, 4, 32, 32)
    result = verify(loaded)
    assert result.ok, [r for r in result.failed_rows]


def test_a_squeeze_and_excitation_spec_verifies():
    from cnncalc.backend import verify
    from tests.test_graph import SE_SPEC

    result = verify(spec(SE_SPEC))
    assert result.ok, [r for r in result.failed_rows]
