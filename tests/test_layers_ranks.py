"""The windowed kinds over 1, 2 and 3 spatial axes: one rule, per-axis fields broadcast at load,
floors and receptive fields named per axis. The arithmetic is written out by hand here; the
hypothesis tests hold the shapes to torch's in 1-D and 3-D."""

from __future__ import annotations

import importlib.util
import textwrap
from fractions import Fraction
from math import ceil, floor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnncalc import analyze
from cnncalc.errors import SpecError
from cnncalc.fields import FieldError, broadcast, positive_axes
from cnncalc.layers import REGISTRY, ShapeError, adaptive_largest_window
from cnncalc.spec import parse_shape, parse_spec
from cnncalc.windows import Field2
from tests.test_properties import torch_output

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="torch is not installed")


def spec(text: str):
    return parse_spec(textwrap.dedent(text), "net.yaml", "net")


def leaves(text: str, **options):
    analysis = analyze(spec(text), **options)
    return analysis, [r for r in analysis.rows if r.leaf]


# --------------------------------------------------------------------------------------------
# Input shapes and the broadcast at load


@pytest.mark.parametrize("text, shape", [
    ("2x16000", (2, 16000)), ("3x224x224", (3, 224, 224)), ("1x16x112x112", (1, 16, 112, 112)),
    ([4, 8], (4, 8)), (10, (10,)),
])
def test_parse_shape_takes_one_to_four_dims(text, shape):
    assert parse_shape(text) == shape


def test_parse_shape_refuses_five_dims_clearly():
    with pytest.raises(ValueError, match=r"C×H×W \(or C×L, C×D×H×W, or one for a vector\)"):
        parse_shape("1x2x3x4x5")


def test_broadcast_repeats_one_value_and_checks_a_list():
    assert broadcast(positive_axes(3), 1, "kernel") == (3,)
    assert broadcast(positive_axes(3), 2, "kernel") == (3, 3)
    assert broadcast(positive_axes(3), 3, "kernel") == (3, 3, 3)
    assert broadcast(positive_axes([1, 7]), 2, "kernel") == (1, 7)
    assert broadcast("same", 3, "padding") == "same"
    assert broadcast(None, 3, "stride") is None
    with pytest.raises(FieldError, match=r"kernel has 2 entries \[3, 3\], but the spec's input "
                                         r"has 3 spatial axes \(depth, height, width\)"):
        broadcast(positive_axes([3, 3]), 3, "kernel")


def test_a_1d_spec_loads_with_one_entry_per_field():
    loaded = spec("""
        input: 2x100
        layers:
          - conv: {out: 8, kernel: 5, stride: 2, padding: 1}
          - maxpool: {kernel: 2}
    """)
    conv, pool = loaded.root.items
    assert (conv.config["kernel"], conv.config["stride"], conv.config["padding"],
            conv.config["dilation"]) == ((5,), (2,), (1,), (1,))
    assert (pool.config["kernel"], pool.config["stride"], pool.config["padding"]) == \
        ((2,), (2,), (0,))


def test_a_3d_spec_loads_with_three_entries_per_field():
    loaded = spec("""
        input: 3x16x112x112
        layers:
          - conv: {out: 64, kernel: [3, 7, 7], stride: [1, 2, 2], padding: [1, 3, 3]}
          - adaptive_avgpool: {output: 1}
    """)
    conv, pool = loaded.root.items
    assert conv.config["kernel"] == (3, 7, 7)
    assert conv.config["dilation"] == (1, 1, 1)
    assert pool.config["output"] == (1, 1, 1)


def test_2d_configs_are_pairs_as_before():
    (conv,) = spec("input: 3x8x8\nlayers: [{conv: {out: 2, kernel: 3}}]").root.items
    assert conv.config["kernel"] == (3, 3) and conv.config["stride"] == (1, 1)
    assert conv.config["padding"] == (0, 0) and conv.config["dilation"] == (1, 1)


def test_a_list_of_the_wrong_length_is_a_load_error_at_the_field():
    with pytest.raises(SpecError) as info:
        spec("""
            input: 2x100
            layers:
              - conv: {out: 8, kernel: [3, 3]}
        """)
    assert info.value.where.line == 4  # the text starts with a blank line
    assert "kernel has 2 entries [3, 3], but the spec's input has 1 spatial axis (length)" \
        in info.value.problem


def test_a_conv_on_a_vector_names_the_ranks_it_takes():
    with pytest.raises(SpecError, match="conv needs a C×L map or a C×H×W map or a C×D×H×W map, "
                                        "got 10"):
        analyze(spec("input: 10\nlayers: [{conv: {out: 2, kernel: 1}}]"))


# --------------------------------------------------------------------------------------------
# 1-D


def test_1d_conv_shape_params_macs_and_floor():
    analysis, (conv,) = leaves("""
        input: 2x100
        layers: [{conv: {out: 8, kernel: 5, stride: 2, padding: 1}}]
    """)
    # (100 + 2·1 − 5)/2 + 1 = ⌊48.5⌋ + 1 = 49
    assert conv.output == (8, 49)
    assert conv.params == 5 * 2 * 8 + 8 == 88
    assert conv.macs == 49 * 8 * 5 * 2 == 3920
    (warning,) = analysis.warnings
    # 97 = 48·2 + 1: one unread position, the padding after
    assert warning.detail == ("length: (100 + 2·1 − 5)/2 = 48.5 is not exact: output "
                              "⌊48.5⌋ + 1 = 49; only padding is left unread")
    assert warning.ignored_input == {"length": 0}


def test_1d_maxpool_floor_names_positions():
    analysis, (pool,) = leaves("input: 4x9\nlayers: [{maxpool: {kernel: 2}}]")
    assert pool.output == (4, 4)  # ⌊(9 − 2)/2⌋ + 1
    (warning,) = analysis.warnings
    assert warning.detail == ("length: (9 + 2·0 − 2)/2 = 3.5 is not exact: output ⌊3.5⌋ + 1 = 4;"
                              " the last input position is never read")


def test_1d_same_padding_global_pool_batchnorm_and_flatten():
    _, rows = leaves("""
        input: 3x10
        layers:
          - conv: {out: 4, kernel: 4, stride: 3, padding: same}
          - batchnorm
          - relu
          - global_avgpool
          - flatten
          - linear: {out: 2}
    """)
    conv, bn, relu, gap, flat, fc = rows
    # same: ⌈10/3⌉ = 4 outputs, (4 − 1)·3 + 4 − 10 = 3 padding: 1 before, 2 after
    assert conv.output == (4, 4)
    assert conv.settings == "4/3 same"
    assert bn.params == 2 * 4 and bn.buffers == 2 * 4 + 1
    assert gap.output == (4, 1)
    assert flat.output == (4,)
    assert fc.params == 4 * 2 + 2


def test_1d_receptive_field():
    _, (a, b, c) = leaves("""
        input: 1x64
        layers:
          - conv: {out: 2, kernel: 3}
          - conv: {out: 2, kernel: 3, stride: 2, padding: 1}
          - maxpool: {kernel: 2}
    """)
    # r: 1 + 2·1 = 3; 3 + 2·1 = 5 (jump 2); 5 + 1·2 = 7 (jump 4)
    assert (a.rf, a.jump) == ((3,), (1,))
    assert (b.rf, b.jump) == ((5,), (2,))
    assert (c.rf, c.jump) == ((7,), (4,))
    # start: 0 + (3 − 1)/2 = 1; 1 + ((3 − 1)/2 − 1)·1 = 1; 1 + (2 − 1)/2·2 = 2
    assert (a.rf_start, b.rf_start, c.rf_start) == ((1,), (1,), (2,))


def test_1d_explain_is_one_line_per_formula():
    analysis = analyze(spec("input: 2x100\nlayers: [{conv: {out: 8, kernel: 5, stride: 2, "
                            "padding: 1}}]"), explain=True)
    assert analysis.rows[0].formula == (
        "(100 − 5 + 2·1)/2 + 1 = ⌊48.5⌋ + 1 = 49",
        "params: 5·2·8 + 8 = 88",
        "MACs: 49·8 · 5·2 = 3,920",
        "RF: 1 + (5 − 1)·1 = 5, jump 1·2 = 2, start 0 + ((5 − 1)/2 − 1)·1 = 1",
    )


# --------------------------------------------------------------------------------------------
# 3-D


def test_3d_conv_shape_params_macs_and_merged_floor():
    analysis, (conv,) = leaves("""
        input: 3x16x112x112
        layers: [{conv: {out: 64, kernel: [3, 7, 7], stride: [1, 2, 2], padding: [1, 3, 3]}}]
    """)
    # depth (16 + 2 − 3)/1 + 1 = 16; height and width (112 + 6 − 7)/2 + 1 = ⌊55.5⌋ + 1 = 56
    assert conv.output == (64, 16, 56, 56)
    assert conv.params == 3 * 7 * 7 * 3 * 64 + 64 == 28288
    assert conv.macs == 16 * 56 * 56 * 64 * (3 * 7 * 7 * 3) == 1_416_167_424
    assert conv.settings == "3×7×7/1×2×2 p1,3,3"
    (warning,) = analysis.warnings
    assert warning.detail == ("height and width: (112 + 2·3 − 7)/2 = 55.5 is not exact: output "
                              "⌊55.5⌋ + 1 = 56; only padding is left unread")


def test_3d_pool_floor_on_every_axis_is_one_clause():
    analysis, (pool,) = leaves("input: 2x5x5x5\nlayers: [{maxpool: {kernel: 2}}]")
    assert pool.output == (2, 2, 2, 2)
    (warning,) = analysis.warnings
    assert warning.detail == ("depth, height and width: (5 + 2·0 − 2)/2 = 1.5 is not exact: "
                              "output ⌊1.5⌋ + 1 = 2; the last input slice, row and column are "
                              "never read")
    assert warning.ignored_input == {"depth": 1, "height": 1, "width": 1}


def test_3d_floor_on_one_axis():
    analysis, _ = leaves("input: 2x7x8x8\nlayers: [{avgpool: {kernel: 2}}]")
    (warning,) = analysis.warnings
    assert warning.detail == ("depth: (7 + 2·0 − 2)/2 = 2.5 is not exact: output ⌊2.5⌋ + 1 = 3; "
                              "the last input slice is never read")


def test_3d_receptive_field_text_per_axis_when_axes_differ():
    analysis = analyze(spec("""
        input: 1x8x32x32
        layers: [{conv: {out: 2, kernel: [1, 3, 3]}}]
    """), explain=True)
    row = analysis.rows[0]
    assert row.rf == (1, 3, 3)
    assert row.formula[-3:] == (
        "RF depth: 1 + (1 − 1)·1 = 1, jump 1·1 = 1, start 0 + ((1 − 1)/2 − 0)·1 = 0",
        "RF height: 1 + (3 − 1)·1 = 3, jump 1·1 = 1, start 0 + ((3 − 1)/2 − 0)·1 = 1",
        "RF width: 1 + (3 − 1)·1 = 3, jump 1·1 = 1, start 0 + ((3 − 1)/2 − 0)·1 = 1",
    )


def test_3d_adaptive_global_pool_batchnorm():
    _, (bn, adaptive, gap) = leaves("""
        input: 8x4x9x9
        layers:
          - batchnorm
          - adaptive_maxpool: {output: [2, 3, 3]}
          - global_avgpool
    """)
    assert bn.params == 16 and bn.buffers == 17
    assert adaptive.output == (8, 2, 3, 3)
    assert adaptive.settings == "→2×3×3"
    assert gap.output == (8, 1, 1, 1)


def test_a_residual_in_a_1d_spec_unions_the_identity_field():
    _, rows = leaves("""
        input: 4x20
        layers:
          - residual:
              layers: [{conv: {out: 4, kernel: 3, padding: 1}}]
    """)
    assert rows[0].rf == (3,)


def test_field2_identity_takes_the_rank_of_its_first_window():
    field = Field2().through(((3, 1, Fraction(1)),))
    assert field == Field2((3,), (1,), (Fraction(1),))
    assert Field2.union([Field2(), field]).size == (3,)


# --------------------------------------------------------------------------------------------
# Adaptive pooling's largest window, in O(1)


def brute_largest(size: int, out: int) -> int:
    """torch's rule: window i is [⌊i·I/O⌋, ⌈(i+1)·I/O⌉)."""
    return max(ceil((i + 1) * size / out) - floor(i * size / out) for i in range(out))


@pytest.mark.parametrize("size, out, largest", [
    (7, 7, 1), (14, 7, 2), (10, 3, 4), (5, 3, 3), (2, 3, 2), (7, 2, 4), (8, 3, 4), (6, 4, 2),
])
def test_adaptive_largest_window_by_hand(size, out, largest):
    # 10 → 3: windows [0,4) [3,7) [6,10): 4 (r = 1 divides O: ⌈I/O⌉).
    # 5 → 3: [0,2) [1,4) [3,5): 3 (r = 2 does not divide 3: ⌈I/O⌉ + 1).
    # 8 → 3: [0,3) [2,6) [5,8): 4 (r = 2, 3 mod 2 = 1: ⌈8/3⌉ + 1).
    # 6 → 4: [0,2) [1,3) [3,5) [4,6): 2 (r = 2 divides 4: ⌈6/4⌉).
    assert adaptive_largest_window(size, out) == brute_largest(size, out) == largest


@FAST
@given(st.integers(1, 400), st.integers(1, 400))
def test_adaptive_largest_window_is_torchs_rule(size, out):
    assert adaptive_largest_window(size, out) == brute_largest(size, out)


def test_adaptive_largest_window_of_a_huge_axis_is_instant():
    # I = 10⁹ + 1, O = 10⁶: q = 1000, r = 1 divides O: ⌈I/O⌉ = 1001
    assert adaptive_largest_window(10**9 + 1, 10**6) == 1001
    # r = 3, 10⁶ mod 3 = 1: one window more
    assert adaptive_largest_window(10**9 + 3, 10**6) == 1002


# --------------------------------------------------------------------------------------------
# Against torch: conv and pooling shapes in 1-D and 3-D


def engine_output(input: tuple[int, ...], layer: dict) -> tuple[int, ...] | None:
    import yaml

    text = yaml.safe_dump({"input": list(input), "layers": [layer]})
    try:
        return analyze(parse_spec(text, "p.yaml", "p")).output
    except SpecError:
        return None




@st.composite
def conv_case(draw, rank: int):
    sizes = tuple(draw(st.integers(1, 12 if rank == 3 else 40)) for _ in range(rank))
    kernel = [draw(st.integers(1, 5)) for _ in range(rank)]
    stride = [draw(st.integers(1, 3)) for _ in range(rank)]
    padding = [draw(st.integers(0, 3)) for _ in range(rank)]
    dilation = [draw(st.integers(1, 2)) for _ in range(rank)]
    return sizes, kernel, stride, padding, dilation


@needs_torch
@pytest.mark.parametrize("rank", [1, 3])
@FAST
@given(data=st.data())
def test_conv_shapes_match_torch(rank, data):
    sizes, kernel, stride, padding, dilation = data.draw(conv_case(rank))
    layer = {"conv": {"out": 2, "kernel": kernel, "stride": stride, "padding": padding,
                      "dilation": dilation}}
    ours = engine_output((2, *sizes), layer)

    def run(torch):
        conv = getattr(torch.nn.functional, f"conv{rank}d")
        return conv(torch.zeros(1, 2, *sizes), torch.zeros(2, 2, *kernel), None, stride,
                    padding, dilation)

    assert ours == torch_output(run)


@needs_torch
@pytest.mark.parametrize("rank", [1, 3])
@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
@FAST
@given(data=st.data())
def test_pool_shapes_match_torch(rank, kind, data):
    sizes, kernel, stride, _, _ = data.draw(conv_case(rank))
    padding = [data.draw(st.integers(0, k // 2)) for k in kernel]
    ceil_mode = data.draw(st.booleans())
    layer = {kind: {"kernel": kernel, "stride": stride, "padding": padding,
                    "ceil_mode": ceil_mode}}
    ours = engine_output((2, *sizes), layer)

    def run(torch):
        pool = getattr(torch.nn.functional, f"{kind[:3]}_pool{rank}d")
        return pool(torch.zeros(1, 2, *sizes), kernel, stride, padding, ceil_mode=ceil_mode)

    assert ours == torch_output(run)


@needs_torch
@pytest.mark.parametrize("rank", [1, 2, 3])
@FAST
@given(data=st.data())
def test_adaptive_windows_match_torchs_index_rule(rank, data):
    """The largest window against the windows torch's kernels use (start ⌊i·I/O⌋, end
    ⌈(i+1)·I/O⌉), read from adaptive_max_pool's indices on a ramp input."""
    import torch

    size = data.draw(st.integers(1, 60))
    out = data.draw(st.integers(1, 60))
    cfg = {"output": (out,) * rank}
    window = REGISTRY["adaptive_maxpool"].window(cfg, (1, *(size,) * rank))
    x = torch.arange(size, dtype=torch.float64).reshape(1, 1, size)
    _, argmax = torch.nn.functional.adaptive_max_pool1d(x, out, return_indices=True)
    # the ramp's max is each window's last element: end − 1
    ends = argmax.flatten().tolist()
    starts = [floor(i * size / out) for i in range(out)]
    assert window[0][0] == max(e + 1 - s for s, e in zip(starts, ends))


def test_windowed_rules_refuse_a_config_of_another_rank():
    cfg = {"kernel": (3, 3), "stride": (1, 1), "padding": (0, 0), "dilation": (1, 1),
           "groups": 1, "bias": True, "connections": None, "out": 2}
    with pytest.raises(ShapeError, match="kernel has 2 entries .height, width. for a 1-D input"):
        REGISTRY["conv"].output_shape(cfg, (2, 10))
