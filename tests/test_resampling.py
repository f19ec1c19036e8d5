"""conv_transpose, upsample, pad and crop: the arithmetic written out by hand in 1-D, 2-D and
3-D, the load errors, the receptive-field windows, and hypothesis tests against torch (shapes,
parameter counts, fvcore's MACs for a transposed convolution, F.interpolate, F.pad, slicing)."""

from __future__ import annotations

import importlib.util
import textwrap
from fractions import Fraction

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnncalc import analyze
from cnncalc.errors import SpecError
from cnncalc.layers import REGISTRY, ShapeError, transposed_span
from cnncalc.spec import parse_spec

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="torch is not installed")
needs_fvcore = pytest.mark.skipif(importlib.util.find_spec("fvcore") is None,
                                  reason="fvcore is not installed")


def spec(text: str):
    return parse_spec(textwrap.dedent(text), "net.yaml", "net")


def row(layer: str, input: str, explain: bool = False):
    analysis = analyze(spec(f"input: {input}\nlayers: [{{{layer}}}]"), explain=explain)
    return analysis.rows[0]


def config(layer: dict, input: tuple[int, ...]) -> dict:
    """The loaded config of one layer (per-axis fields broadcast to the input's rank)."""
    text = yaml.safe_dump({"input": list(input), "layers": [layer]})
    return parse_spec(text, "p.yaml", "p").root.items[0].config


def load_error(layer: str, input: str) -> str:
    with pytest.raises(SpecError) as info:
        analyze(spec(f"input: {input}\nlayers: [{{{layer}}}]"))
    return info.value.problem


# --------------------------------------------------------------------------------------------
# conv_transpose


def test_conv_transpose_1d():
    r = row("conv_transpose: {out: 8, kernel: 3, stride: 2, padding: 1, output_padding: 1}",
            "4x10", explain=True)
    # (10 − 1)·2 − 2·1 + 1·(3 − 1) + 1 + 1 = 20
    assert r.output == (8, 20)
    assert r.params == 4 * 8 * 3 + 8 == 104
    assert r.macs == 10 * 4 * 8 * 3 == 960  # every input position meets every weight
    assert r.settings == "3/2 p1 op1"
    assert r.formula[:3] == ("(10 − 1)·2 − 2·1 + 1·(3 − 1) + 1 + 1 = 20",
                             "params: 4·8·3 + 8 = 104",
                             "MACs: 10 · 4·8·3 = 960 (each input position meets every weight)")


def test_conv_transpose_2d_unet_up_convolution():
    r = row("conv_transpose: {out: 32, kernel: 2, stride: 2}", "64x28x28")
    # (28 − 1)·2 + (2 − 1) + 1 = 56
    assert r.output == (32, 56, 56)
    assert r.params == 64 * 32 * 2 * 2 + 32 == 8224
    assert r.macs == 28 * 28 * 64 * 32 * 2 * 2 == 6_422_528
    assert r.settings == "2×2/2"


def test_conv_transpose_3d_groups_no_bias():
    r = row("conv_transpose: {out: 8, kernel: [2, 4, 4], stride: 2, padding: [0, 1, 1], "
            "groups: 2, bias: false}", "16x4x8x8")
    # depth (4 − 1)·2 − 0 + (2 − 1) + 1 = 8; height, width (8 − 1)·2 − 2 + (4 − 1) + 1 = 16
    assert r.output == (8, 8, 16, 16)
    assert r.params == (16 // 2) * 8 * 2 * 4 * 4 == 2048
    assert r.macs == 4 * 8 * 8 * 2048 == 524_288
    assert r.settings == "2×4×4/2 p0,1,1 g2 nobias"


def test_conv_transpose_output_padding_must_be_below_stride_or_dilation():
    problem = load_error("conv_transpose: {out: 2, kernel: 3, stride: 2, output_padding: 2}",
                         "1x8x8")
    assert problem == ("output_padding 2 must be smaller than the stride (2) or the dilation (1), "
                       "as torch requires")
    # dilation 3 allows output_padding 2 at stride 1
    assert row("conv_transpose: {out: 2, kernel: 3, dilation: 3, output_padding: 2}",
               "1x8").output == (2, 7 + 3 * 2 + 2 + 1)


def test_conv_transpose_groups_must_divide():
    assert "groups=2 must divide" in load_error("conv_transpose: {out: 3, kernel: 2, groups: 2}",
                                                "4x8x8")


def test_conv_transpose_padding_that_leaves_nothing_is_an_error():
    # (1 − 1)·1 − 2·1 + 0 + 0 + 1 = −1
    assert "leaves no output" in load_error("conv_transpose: {out: 2, kernel: 1, padding: 1}",
                                            "1x1")


@pytest.mark.parametrize("kernel, stride, dilation, span", [
    (2, 2, 1, 0),  # each output reads one input
    (3, 2, 1, 1),  # even outputs read taps 0 and 2: two inputs
    (4, 2, 1, 1),  # taps 0, 2 or 1, 3
    (3, 1, 1, 2),  # stride 1: a convolution's D·(K − 1)
    (5, 3, 1, 1),  # taps 0, 3 (or 1, 4)
    (3, 2, 2, 2),  # D = S: every tap lands on the lattice, 2 inputs apart... g = 2, t = 1: 2·1
    (1, 4, 1, 0),
])
def test_transposed_span_by_hand(kernel, stride, dilation, span):
    assert transposed_span(kernel, stride, dilation) == span


def brute_span(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    """Per output position o, the inputs i with o = i·S − P + k·D; the largest i_max − i_min."""
    out = (size - 1) * stride - 2 * pad + dilation * (kernel - 1) + 1
    best = 0
    for o in range(out):
        inputs = [(o + pad - k * dilation) // stride for k in range(kernel)
                  if (o + pad - k * dilation) % stride == 0
                  and 0 <= (o + pad - k * dilation) // stride < size]
        if inputs:
            best = max(best, max(inputs) - min(inputs))
    return best


@FAST
@given(st.integers(1, 6), st.integers(1, 4), st.integers(1, 3))
def test_transposed_span_is_the_largest_over_output_positions(kernel, stride, dilation):
    # on an input long enough that every residue of every output position occurs
    assert transposed_span(kernel, stride, dilation) == brute_span(40, kernel, stride, 0, dilation)


def test_conv_transpose_receptive_field():
    analysis = analyze(spec("""
        input: 1x32
        layers:
          - conv: {out: 2, kernel: 3, stride: 2}
          - conv_transpose: {out: 2, kernel: 2, stride: 2}
          - conv_transpose: {out: 2, kernel: 3, stride: 2, padding: 1}
    """))
    down, up, up3 = analysis.rows
    assert (down.rf, down.jump, down.rf_start) == ((3,), (2,), (1,))
    # k2 s2: each output reads one input: r = 3; jump 2·(1/2) = 1; output 0's taps centre at
    # input coordinate (2·0 − 1·(2 − 1))/(2·2) = −1/4: start 1 − (1/4)·2 = 1/2
    assert (up.rf, up.jump, up.rf_start) == ((3,), (1,), (Fraction(1, 2),))
    # k3 s2 p1: outputs read up to 2 inputs: r = 3 + 1·1 = 4; jump 1/2; centre (2 − 2)/4 = 0
    assert (up3.rf, up3.jump, up3.rf_start) == ((4,), (Fraction(1, 2),), (Fraction(1, 2),))


@st.composite
def transposed_case(draw):
    rank = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 6)) for _ in range(rank)]
    kernel = [draw(st.integers(1, 4)) for _ in range(rank)]
    stride = [draw(st.integers(1, 3)) for _ in range(rank)]
    dilation = [draw(st.integers(1, 2)) for _ in range(rank)]
    padding = [draw(st.integers(0, 2)) for _ in range(rank)]
    output_padding = [draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation)]
    groups = draw(st.sampled_from([1, 2]))
    return rank, sizes, dict(out=2 * draw(st.integers(1, 2)), kernel=kernel, stride=stride,
                             padding=padding, output_padding=output_padding, dilation=dilation,
                             groups=groups, bias=draw(st.booleans()))


@needs_torch
@needs_fvcore
@FAST
@given(transposed_case())
def test_conv_transpose_matches_torch_and_fvcore(case):
    import torch
    from fvcore.nn import FlopCountAnalysis

    rank, sizes, fields = case
    channels = 2 * fields["groups"]
    x = (channels, *sizes)
    rule = REGISTRY["conv_transpose"]
    cfg = config({"conv_transpose": fields}, x)
    module = getattr(torch.nn, f"ConvTranspose{rank}d")(
        channels, fields["out"], fields["kernel"], fields["stride"], fields["padding"],
        fields["output_padding"], fields["groups"], fields["bias"], fields["dilation"])
    try:
        with torch.no_grad():
            y = tuple(module(torch.zeros(1, *x)).shape[1:])
    except RuntimeError:  # torch refuses a negative output size
        y = (0,)
    if 0 in y:  # …and returns an empty tensor for a zero one: both refused here
        with pytest.raises(ShapeError):
            rule.output_shape(cfg, x)
        return
    assert rule.output_shape(cfg, x) == y
    assert rule.params(cfg, x) == sum(p.numel() for p in module.parameters())
    flops = FlopCountAnalysis(module.eval(), torch.zeros(1, *x))
    flops.unsupported_ops_warnings(False)
    flops.uncalled_modules_warnings(False)
    assert rule.macs(cfg, x, y) == flops.total()


# --------------------------------------------------------------------------------------------
# upsample


def test_upsample_nearest_by_two():
    r = row("upsample: {scale: 2}", "3x7x5")
    assert r.output == (3, 14, 10)
    assert (r.params, r.macs) == (0, 0)
    assert r.settings == "×2 nearest"


def test_upsample_bilinear_fractional_scale_floors():
    r = row("upsample: {scale: 1.5, mode: bilinear}", "3x7x5", explain=True)
    # ⌊7·1.5⌋ = ⌊10.5⌋ = 10, ⌊5·1.5⌋ = ⌊7.5⌋ = 7
    assert r.output == (3, 10, 7)
    assert r.formula[:2] == ("height: ⌊7·1.5⌋ = 10", "width: ⌊5·1.5⌋ = 7")


def test_upsample_1d_linear_to_a_size_and_3d_trilinear_per_axis():
    assert row("upsample: {size: 9, mode: linear}", "4x3").output == (4, 9)
    r = row("upsample: {scale: [1, 2, 2], mode: trilinear, align_corners: true}", "2x4x8x8")
    assert r.output == (2, 4, 16, 16)
    assert r.settings == "×1×2×2 trilinear corners"


def test_upsample_like_takes_the_tensors_spatial_size():
    rule = REGISTRY["upsample"]
    cfg = dict(config({"upsample": {"like": "enc1", "mode": "bilinear"}}, (3, 8, 8)))
    assert cfg["like"] == "enc1"  # a name at load…
    cfg["like"] = (64, 12, 20)  # …the tensor's shape at run time
    assert rule.output_shape(cfg, (3, 8, 8)) == (3, 12, 20)
    cfg["like"] = (64, 12)
    with pytest.raises(ShapeError, match="a 1-D tensor for a 2-D input"):
        rule.output_shape(cfg, (3, 8, 8))


@pytest.mark.parametrize("layer, input, message", [
    ("upsample: {scale: 2, mode: bilinear}", "3x8",
     "bilinear interpolation is for 2-D input; use linear (or nearest) on a 1-D input"),
    ("upsample: {scale: 2, mode: linear}", "3x8x8",
     "linear interpolation is for 1-D input; use bilinear (or nearest) on a 2-D input"),
    ("upsample: {scale: 2, mode: bilinear}", "3x4x8x8",
     "bilinear interpolation is for 2-D input; use trilinear (or nearest) on a 3-D input"),
    ("upsample: {mode: nearest}", "3x8x8",
     "upsample needs exactly one of scale, size and like, got none"),
    ("upsample: {scale: 2, size: 16}", "3x8x8",
     "upsample needs exactly one of scale, size and like, got scale and size"),
    ("upsample: {scale: 2, align_corners: true}", "3x8x8",
     "align_corners applies to the linear modes only, not nearest"),
    ("upsample: {scale: 0}", "3x8x8", "scale must be a positive number, got 0"),
    ("upsample: {scale: 2, mode: cubic}", "3x8x8",
     "mode must be one of nearest, linear, bilinear, trilinear, got 'cubic'"),
])
def test_upsample_errors(layer, input, message):
    problem = load_error(layer, input)
    assert problem.startswith(message), problem


def test_upsample_receptive_field_windows():
    rule = REGISTRY["upsample"]
    nearest = config({"upsample": {"scale": 2}}, (1, 8))
    # nearest: one input per output; outputs 1/2 input apart; output 0 reads input 0
    assert rule.window(nearest, (1, 8)) == ((1, Fraction(1, 2), Fraction(0)),)
    linear = config({"upsample": {"scale": 2, "mode": "linear"}}, (1, 8))
    # linear: two taps; output 0's source (8/16 − 1)/2 < 0 clamps to 0: taps 0, 1, centre 1/2
    assert rule.window(linear, (1, 8)) == ((2, Fraction(1, 2), Fraction(1, 2)),)
    down = config({"upsample": {"size": 4, "mode": "linear"}}, (1, 8))
    # 8 → 4: source (0 + 1/2)·2 − 1/2 = 1/2: taps 0, 1; outputs 2 inputs apart
    assert rule.window(down, (1, 8)) == ((2, Fraction(2), Fraction(1, 2)),)
    r = analyze(spec("input: 1x8\nlayers: [{upsample: {scale: 2, mode: linear}}]")).rows[0]
    assert (r.rf, r.jump) == ((2,), (Fraction(1, 2),))


_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


@st.composite
def upsample_case(draw):
    rank = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 9)) for _ in range(rank)]
    mode = draw(st.sampled_from(["nearest", _MODES[rank]]))
    fields: dict = {"mode": mode}
    if draw(st.booleans()):
        fields["size"] = [draw(st.integers(1, 20)) for _ in range(rank)]
    else:
        fields["scale"] = [draw(st.one_of(st.integers(1, 4),
                                          st.floats(0.25, 4.0, allow_nan=False).map(
                                              lambda s: round(s, 3))))
                           for _ in range(rank)]
    if mode != "nearest":
        fields["align_corners"] = draw(st.booleans())
    return rank, sizes, fields


@needs_torch
@FAST
@given(upsample_case())
def test_upsample_shapes_match_interpolate(case):
    import torch

    rank, sizes, fields = case
    x = (2, *sizes)
    rule = REGISTRY["upsample"]
    cfg = config({"upsample": fields}, x)
    scale = fields.get("scale")
    try:
        with torch.no_grad():
            y = torch.nn.functional.interpolate(
                torch.zeros(1, *x), size=fields.get("size"),
                scale_factor=None if scale is None else [float(s) for s in scale],
                mode=fields["mode"], align_corners=fields.get("align_corners"))
    except RuntimeError:  # an empty output
        assert 0 in [int(n * s) for n, s in zip(sizes, scale)]
        assert 0 in rule.output_shape(cfg, x)
        return
    assert rule.output_shape(cfg, x) == tuple(y.shape[1:])


# --------------------------------------------------------------------------------------------
# pad


def test_pad_2d_per_axis_before_after():
    r = row("pad: {padding: [1, [0, 2]]}", "3x5x5", explain=True)
    # height 5 + 1 + 1 = 7, width 5 + 0 + 2 = 7
    assert r.output == (3, 7, 7)
    assert (r.params, r.macs) == (0, 0)
    assert r.settings == "p1+1,0+2"
    assert r.formula[:2] == ("height: 5 + 1 + 1 = 7", "width: 5 + 0 + 2 = 7")


def test_pad_1d_reflect_and_3d_replicate():
    r = row("pad: {padding: [[2, 1]], mode: reflect}", "4x5")
    assert r.output == (4, 8)  # 5 + 2 + 1
    assert r.settings == "p2+1 reflect"
    r = row("pad: {padding: 1, mode: replicate}", "2x3x4x5")
    assert r.output == (2, 5, 6, 7)
    assert r.settings == "p1 replicate"


def test_pad_reflect_must_be_smaller_than_the_input():
    assert load_error("pad: {padding: 5, mode: reflect}", "4x5").startswith(
        "reflect padding 5 must be smaller than the length (5)")


def test_pad_1d_pair_needs_nesting():
    problem = load_error("pad: {padding: [1, 2]}", "4x5")
    assert "padding has 2 entries" in problem and "1 spatial axis (length)" in problem


def test_pad_shifts_the_receptive_field_start():
    analysis = analyze(spec("""
        input: 1x16x16
        layers:
          - pad: {padding: 2}
          - conv: {out: 1, kernel: 3}
    """))
    pad, conv = analysis.rows
    # the first output of the pad lies 2 pixels before input 0; the conv's window centre 1 on
    assert (pad.rf, pad.rf_start) == ((1, 1), (-2, -2))
    assert (conv.rf, conv.rf_start) == ((3, 3), (-1, -1))


@st.composite
def pad_case(draw):
    rank = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 6)) for _ in range(rank)]
    pads = [[draw(st.integers(0, 4)), draw(st.integers(0, 4))] for _ in range(rank)]
    mode = draw(st.sampled_from(["zero", "reflect", "replicate"]))
    return rank, sizes, pads, mode


@needs_torch
@FAST
@given(pad_case())
def test_pad_matches_f_pad(case):
    import torch

    rank, sizes, pads, mode = case
    x = (2, *sizes)
    rule = REGISTRY["pad"]
    cfg = config({"pad": {"padding": pads, "mode": mode}}, x)
    flat = [p for before, after in reversed(pads) for p in (before, after)]
    try:
        y = torch.nn.functional.pad(torch.zeros(1, *x), flat,
                                    mode="constant" if mode == "zero" else mode)
    except (RuntimeError, NotImplementedError):
        with pytest.raises(ShapeError):
            rule.output_shape(cfg, x)
        return
    assert rule.output_shape(cfg, x) == tuple(y.shape[1:])


# --------------------------------------------------------------------------------------------
# crop


def test_crop_unet_skip_connection():
    r = row("crop: {size: 104}", "64x136x136", explain=True)
    # offset (136 − 104)//2 = 16 on each axis
    assert r.output == (64, 104, 104)
    assert r.rf_start == (16, 16)
    assert r.formula[0] == "136 → 104 from 16 ((136 − 104)//2)"
    assert r.settings == "→104"


def test_crop_odd_difference_starts_low():
    rule = REGISTRY["crop"]
    cfg = config({"crop": {"size": [4, 6]}}, (1, 11, 8))
    # (11 − 4)//2 = 3 (the 4 rows 3..6 leave 3 before and 4 after); (8 − 6)//2 = 1
    assert rule.offsets(cfg, (1, 11, 8)) == (3, 1)
    assert rule.output_shape(cfg, (1, 11, 8)) == (1, 4, 6)


def test_crop_1d_3d_and_like():
    assert row("crop: {size: 3}", "2x10").output == (2, 3)
    assert row("crop: {size: [2, 4, 4]}", "2x4x8x8").output == (2, 2, 4, 4)
    rule = REGISTRY["crop"]
    cfg = dict(config({"crop": {"like": "up1"}}, (64, 64, 64)))
    cfg["like"] = (128, 56, 56)
    assert rule.output_shape(cfg, (64, 64, 64)) == (64, 56, 56)
    assert rule.offsets(cfg, (64, 64, 64)) == (4, 4)


def test_crop_errors():
    assert load_error("crop: {size: 12}", "3x10x10") == \
        "cannot crop 10×10 to the larger 12×12 (input 3×10×10)"
    assert load_error("crop: {}", "3x10x10") == "crop needs exactly one of size and like"
    assert load_error("crop: {size: 2, like: a}", "3x10x10") == \
        "crop needs exactly one of size and like"


def test_crop_is_a_view_and_saves_nothing():
    rule = REGISTRY["crop"]
    assert rule.view_at_inference and rule.view_in_training
    assert rule.saved_for_backward({}, (1, 4, 4), (1, 2, 2)) == ()


@needs_torch
@FAST
@given(st.integers(1, 3).flatmap(lambda rank: st.tuples(
    st.lists(st.integers(1, 12), min_size=rank, max_size=rank),
    st.lists(st.integers(0, 12), min_size=rank, max_size=rank))))
def test_crop_matches_a_centre_slice(case):
    """Against a centre crop written as a torch slice: the kept block has (I − O)//2 before it and
    the rest, at most one more, after it (the U-Net paper's crop)."""
    import torch

    sizes, cut = case
    target = [max(1, n - c) for n, c in zip(sizes, cut)]
    x = (1, *sizes)
    rule = REGISTRY["crop"]
    cfg = config({"crop": {"size": target}}, x)
    y = rule.output_shape(cfg, x)
    data = torch.arange(int(torch.tensor(x).prod())).reshape(1, *x)
    index = [slice(None), slice(None)]
    for n, t in zip(sizes, target):
        before = (n - t) // 2
        after = n - t - before
        assert after - before in (0, 1)
        index.append(slice(before, n - after))
    expected = data[tuple(index)]
    assert y == tuple(expected.shape[1:])
    offsets = rule.offsets(cfg, x)
    got = data[(slice(None), slice(None), *(slice(o, o + t) for o, t in zip(offsets, target)))]
    assert torch.equal(got, expected)


# --------------------------------------------------------------------------------------------
# Symbolic input sizes


@pytest.mark.parametrize("h, w", [(64, 64), (33, 47), (100, 81)])
def test_resampling_kinds_take_symbolic_sizes(h, w):
    sympy = pytest.importorskip("sympy")
    from cnncalc.symbolic import analyze_symbolic

    loaded = spec("""
        input: 3x64x64
        layers:
          - conv_transpose: {out: 4, kernel: 3, stride: 2, padding: 1, output_padding: 1}
          - upsample: {scale: 1.5, mode: bilinear}
          - pad: {padding: [1, [0, 2]], mode: reflect}
          - crop: {size: 40}
    """)
    result = analyze_symbolic(loaded, "3xHxW")
    H, W = sympy.symbols("H W", integer=True, positive=True)
    concrete = analyze(loaded, input=(3, h, w))
    for got, want in zip(result.rows, concrete.rows):
        assert tuple(result.evaluate(d, {H: h, W: w}) for d in got.output) == want.output
        assert result.evaluate(got.macs, {H: h, W: w}) == want.macs
