"""The engine: shapes through whole networks, floor warnings, receptive fields, batch and dtype,
rows that add up to the totals, side heads, and property tests against brute-force counts."""

from __future__ import annotations

from fractions import Fraction

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cnncalc import OptionError, SpecError, analyze, load_spec, parse_spec, zoo_names
from cnncalc.layers import REGISTRY


def lines(*text: str) -> str:
    return "\n".join(text) + "\n"


def run(text: str, **options):
    return analyze(parse_spec(text, "net.yaml", "net"), **options)


# --------------------------------------------------------------------------------------------
# shapes through AlexNet


ALEXNET_SHAPES = [
    ("conv1", (96, 55, 55)),   # (227 − 11)/4 + 1 = 55
    ("pool1", (96, 27, 27)),   # (55 − 3)/2 + 1 = 27
    ("conv2", (256, 27, 27)),  # 27 + 2·2 − 5 + 1 = 27
    ("pool2", (256, 13, 13)),  # (27 − 3)/2 + 1 = 13
    ("conv3", (384, 13, 13)),  # 13 + 2 − 3 + 1 = 13
    ("conv4", (384, 13, 13)),
    ("conv5", (256, 13, 13)),
    ("pool5", (256, 6, 6)),    # (13 − 3)/2 + 1 = 6
    ("flatten", (9216,)),      # 256·6·6 = 9,216
]


@pytest.mark.parametrize("path, shape", ALEXNET_SHAPES)
def test_alexnet_layer_shapes(path, shape):
    assert analyze(load_spec("alexnet")).row(path).output == shape


def test_each_layer_reads_what_the_previous_one_wrote():
    rows = analyze(load_spec("alexnet")).rows  # a flat list: every row is a leaf
    assert rows[0].input == (3, 227, 227)
    for before, after in zip(rows, rows[1:]):
        assert after.input == before.output


def test_input_override_as_text_or_tuple():
    spec = load_spec("alexnet")
    assert analyze(spec, input="3x227x227").row("conv1").output == (96, 55, 55)
    # (224 − 11)/4 = 53.25 → 54
    assert analyze(spec, input=(3, 224, 224)).row("conv1").output == (96, 54, 54)


# --------------------------------------------------------------------------------------------
# floor warnings


def test_alexnet_at_224_warns_at_conv1():
    analysis = analyze(load_spec("alexnet"), input="3x224x224")
    (warning,) = [w for w in analysis.warnings if w.path == "conv1"]
    assert warning.severity == "warning"
    assert {f.axis for f in warning.floors} == {"height", "width"}
    for floor in warning.floors:
        # (224 − 11)/4 = 213/4 = 53.25: output ⌊53.25⌋ + 1 = 54; 213 = 53·4 + 1
        assert floor.quotient == Fraction(213, 4) == 53.25
        assert floor.output == 54
        assert floor.ignored_input == 1
    assert warning.ignored_input == {"height": 1, "width": 1}
    assert "53.25" in warning.message
    assert warning.message.startswith("conv1")


def test_alexnet_at_227_has_no_warnings():
    # 227 → 55 → 27 → 27 → 13 → 13 → 6: (227−11)/4, (55−3)/2, (27−3)/2, (13−3)/2 all exact
    assert analyze(load_spec("alexnet")).warnings == []


def test_resnet50_downsample_ignores_the_last_input_row_and_column():
    analysis = analyze(load_spec("resnet50"))
    (warning,) = [w for w in analysis.warnings if w.path == "layer2.0.downsample.0"]
    # 1×1/2 on 56 without padding: (56 − 1)/2 = 27.5, so input row and column 55 are never read
    assert warning.severity == "warning"
    assert warning.ignored_input == {"height": 1, "width": 1}
    assert all(f.quotient == Fraction(55, 2) for f in warning.floors)


def test_resnet50_conv1_floor_drops_only_padding():
    analysis = analyze(load_spec("resnet50"))
    (warning,) = [w for w in analysis.warnings if w.path == "conv1"]
    # (224 + 2·3 − 7)/2 = 111.5: the one row left over is the last of 3 padding rows
    assert warning.severity == "note"
    assert warning.ignored_input == {"height": 0, "width": 0}
    assert all(f.ignored_padding == 1 for f in warning.floors)


def test_resnet50_warnings_and_notes_at_224():
    analysis = analyze(load_spec("resnet50"))
    by_severity = {"warning": set(), "note": set()}
    for w in analysis.warnings:
        by_severity[w.severity].add(w.path)
    # Stride-2 layers: 1×1/2 projections without padding on 56, 28, 14 (even sizes) read
    # ⌊(n − 1)/2⌋·2 + 1 = n − 1 rows: warnings.  The padded ones, 7×7/2 p3 on 224,
    # 3×3/2 p1 on 112, 56, 28, 14, leave one row over that is padding: notes.
    assert by_severity["warning"] == {
        "layer2.0.downsample.0", "layer3.0.downsample.0", "layer4.0.downsample.0"}
    assert by_severity["note"] == {
        "conv1", "maxpool", "layer2.0.conv2", "layer3.0.conv2", "layer4.0.conv2"}


def test_one_axis_floor():
    # height: (9 − 3)/2 = 3 exact; width: (10 − 3)/2 = 3.5 → one column unread
    analysis = run(lines("input: 1x9x10", "layers:", "  - conv: {out: 1, kernel: 3, stride: 2}"))
    (warning,) = analysis.warnings
    assert [f.axis for f in warning.floors] == ["width"]
    assert warning.ignored_input == {"width": 1}


def test_unread_rows_beyond_one():
    # 1×1/4 on 11: (11 − 1)/4 = 2.5 → 3 windows, at rows 0, 4 and 8; rows 9 and 10 are unread
    analysis = run(lines("input: 1x11x11", "layers:", "  - conv: {out: 1, kernel: 1, stride: 4}"))
    (warning,) = analysis.warnings
    assert all(f.ignored_input == 2 for f in warning.floors)
    assert analysis.rows[0].output == (1, 3, 3)


# --------------------------------------------------------------------------------------------
# receptive field


def test_two_stacked_3x3_convs_see_5x5():
    analysis = run(lines("input: 1x16x16", "layers:",
                         "  - conv: {out: 1, kernel: 3}", "  - conv: {out: 1, kernel: 3}"))
    # 1 + (3 − 1)·1 + (3 − 1)·1 = 5
    assert analysis.rows[-1].rf == (5, 5)


def test_three_stacked_3x3_convs_see_7x7():
    analysis = run(lines("input: 1x16x16", "layers:",
                         "  - repeat: {times: 3, layers: [conv: {out: 1, kernel: 3}]}"))
    # 1 + 3·2 = 7
    assert analysis.rows[-1].rf == (7, 7)


def test_stride_multiplies_later_growth():
    analysis = run(lines("input: 1x16x16", "layers:",
                         "  - conv: {out: 1, kernel: 3, stride: 2}", "  - conv: {out: 1, kernel: 3}"))
    # 3 (jump 2), then 3 + (3 − 1)·2 = 7
    assert analysis.rows[0].rf == (3, 3) and analysis.rows[0].jump == (2, 2)
    assert analysis.rows[1].rf == (7, 7)


def test_alexnet_receptive_field():
    analysis = analyze(load_spec("alexnet"))
    assert analysis.row("conv1").rf == (11, 11) and analysis.row("conv1").jump == (4, 4)
    # 11 + (3 − 1)·4 = 19, jump 4·2 = 8
    assert analysis.row("pool1").rf == (19, 19) and analysis.row("pool1").jump == (8, 8)
    # 19 + (5 − 1)·8 = 51
    assert analysis.row("conv2").rf == (51, 51)
    # point-wise layers change nothing
    assert analysis.row("norm1").rf == (11, 11)


def test_residual_takes_the_larger_path():
    analysis = run(lines(
        "input: 4x16x16",
        "layers:",
        "  - residual:",
        "      name: block",
        "      layers:",
        "        - conv: {out: 4, kernel: 3, padding: 1}",
        "        - conv: {out: 4, kernel: 3, padding: 1}",
        "      post: [relu: {name: act}]",
    ))
    # main path 1 + 2 + 2 = 5, identity 1: the sum sees 5
    assert analysis.row("block").rf == (5, 5)
    assert analysis.row("block.act").rf == (5, 5)


def test_concat_takes_the_larger_branch():
    analysis = run(lines(
        "input: 4x16x16",
        "layers:",
        "  - concat:",
        "      name: mix",
        "      branches:",
        "        small: [conv: {out: 2, kernel: 1}]",
        "        large: [conv: {out: 2, kernel: 5, padding: 2}]",
        "  - conv: {name: after, out: 2, kernel: 3, padding: 1}",
    ))
    assert analysis.row("mix.small").rf == (1, 1)
    assert analysis.row("mix").rf == (5, 5)
    # 5 + (3 − 1) = 7
    assert analysis.row("after").rf == (7, 7)


def test_head_does_not_change_the_main_receptive_field():
    analysis = run(lines(
        "input: 4x16x16",
        "layers:",
        "  - conv: {out: 4, kernel: 3}",
        "  - head: {name: aux, layers: [conv: {out: 4, kernel: 5}]}",
        "  - conv: {name: last, out: 4, kernel: 3}",
    ))
    # 1 + 2 + 2 = 5; the head's 5×5 is off the main path
    assert analysis.row("last").rf == (5, 5)


# --------------------------------------------------------------------------------------------
# batch and dtype


def test_batch_scales_macs_and_activations_not_params():
    spec = load_spec("alexnet")
    one, eight = analyze(spec), analyze(spec, batch=8)
    assert eight.totals.macs == 8 * one.totals.macs
    assert eight.totals.activation_bytes == 8 * one.totals.activation_bytes
    assert eight.totals.params == one.totals.params
    assert eight.totals.param_bytes == one.totals.param_bytes
    assert eight.row("conv1").macs == 8 * 105_415_200  # 55·55·96·363 per sample


def test_activation_bytes_of_one_conv():
    analysis = run(lines("input: 3x8x8", "layers:", "  - conv: {out: 4, kernel: 3, padding: 1}"))
    # 4·8·8 = 256 outputs × 4 bytes
    assert analysis.totals.activation_bytes == 256 * 4 == 1_024
    # (4·3·9 + 4) = 112 params × 4 bytes
    assert analysis.totals.param_bytes == 112 * 4


@pytest.mark.parametrize("dtype, size", [("fp32", 4), ("fp16", 2), ("bf16", 2), ("fp64", 8), ("int8", 1)])
def test_dtype_bytes(dtype, size):
    analysis = run(lines("input: 3x8x8", "layers:", "  - conv: {out: 4, kernel: 3, padding: 1}",
                         "  - batchnorm"), dtype=dtype, batch=2)
    # outputs 256 (conv) + 256 (batchnorm), × batch 2
    assert analysis.totals.activation_bytes == (256 + 256) * 2 * size
    # params 112 + 2·4 = 120; buffers 2·4 + 1 = 9
    assert analysis.totals.param_bytes == 120 * size
    assert analysis.totals.buffer_bytes == 9 * size


def test_fp16_halves_alexnet_bytes():
    spec = load_spec("alexnet")
    fp32, fp16 = analyze(spec), analyze(spec, dtype="fp16")
    assert 2 * fp16.totals.activation_bytes == fp32.totals.activation_bytes
    assert 2 * fp16.totals.param_bytes == fp32.totals.param_bytes
    assert fp16.totals.macs == fp32.totals.macs


@pytest.mark.parametrize("options", [
    {"dtype": "fp8"}, {"batch": 0}, {"batch": -1}, {"batch": True}, {"batch": 1.5},
    {"input": "3x2x2x2x2"}, {"input": "big"},
])
def test_bad_options_are_option_errors(options):
    with pytest.raises(OptionError):
        analyze(load_spec("lenet5"), **options)


def test_depth_below_one_is_an_option_error():
    with pytest.raises(OptionError):
        analyze(load_spec("lenet5")).at_depth(0)


# --------------------------------------------------------------------------------------------
# rows add up to the totals


SUMMED = ("params", "trainable_params", "buffers")
MAIN_ONLY = ("macs", "activation_bytes")


def assert_rows_add_up(analysis, depth):
    rows = analysis.at_depth(depth)
    totals = analysis.totals
    for metric in SUMMED:
        assert sum(getattr(r, metric) for r in rows) == getattr(totals, metric), metric
    assert sum(r.params for r in rows if r.head) == totals.head_params
    for metric in MAIN_ONLY:
        assert sum(getattr(r, metric) for r in rows if not r.head) == getattr(totals, metric), metric
        assert sum(getattr(r, metric) for r in rows if r.head) == getattr(totals, "head_" + metric), metric


@pytest.mark.parametrize("depth", [1, 2, 3, None])
@pytest.mark.parametrize("name", zoo_names())
def test_zoo_rows_add_up_to_the_totals(name, depth):
    assert_rows_add_up(analyze(load_spec(name), batch=2), depth)


def test_at_depth_keeps_shallower_leaves():
    analysis = analyze(load_spec("resnet50"))
    depth2 = [r.path for r in analysis.at_depth(2)]
    assert depth2[:4] == ["conv1", "bn1", "relu", "maxpool"]  # top-level leaves
    assert "layer1.0" in depth2 and "layer1" not in depth2 and "layer1.0.conv1" not in depth2
    assert all(r.leaf for r in analysis.at_depth(None))


def test_group_rows_sum_their_leaves():
    analysis = analyze(load_spec("resnet50"))
    block = analysis.row("layer1.0")
    leaves = [r for r in analysis.rows if r.leaf and r.path.startswith("layer1.0.")]
    assert block.params == sum(r.params for r in leaves)
    assert block.macs == sum(r.macs for r in leaves)
    # the block reads 64×56×56 and writes 256×56×56
    assert (block.input, block.output) == ((64, 56, 56), (256, 56, 56))


def test_head_inside_a_sequence_keeps_main_path_totals_consistent():
    # A sequence holding a conv (main path) and a head: the sequence's row is on the main path,
    # so the main-path rows at any depth must add up to the main-path totals.
    analysis = run(lines(
        "input: 3x8x8",
        "layers:",
        "  - sequence:",
        "      name: stage",
        "      layers:",
        "        - conv: {out: 3, kernel: 3, padding: 1}",
        "        - head: {name: aux, layers: [flatten, linear: {out: 10}]}",
    ))
    # main: 8·8·3·27 = 5,184 MACs; head: 192·10 = 1,920
    assert analysis.totals.macs == 8 * 8 * 3 * 27 == 5_184
    assert analysis.totals.head_macs == 3 * 8 * 8 * 10 == 1_920
    # main activations: the conv's 3·8·8 = 192 outputs × 4 bytes
    assert analysis.totals.activation_bytes == 192 * 4
    for depth in (1, 2, 3, None):
        rows = analysis.at_depth(depth)
        assert sum(r.params for r in rows) == analysis.totals.params
        assert sum(r.macs for r in rows if not r.head) == analysis.totals.macs, depth
        assert sum(r.activation_bytes for r in rows if not r.head) == \
            analysis.totals.activation_bytes, depth


# --------------------------------------------------------------------------------------------
# side heads


def aux_params(channels: int) -> int:
    # 1×1 conv to 128 (+bias), fc 128·4·4 = 2048 → 1024 (+bias), fc 1024 → 1000 (+bias)
    return channels * 128 + 128 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000


def aux_macs(channels: int) -> int:
    # 4·4 positions × channels·128, then 2048·1024 and 1024·1000
    return 4 * 4 * channels * 128 + 2048 * 1024 + 1024 * 1000


def test_googlenet_heads_do_not_change_the_main_path():
    analysis = analyze(load_spec("googlenet"))
    assert analysis.output == (1000,)
    assert analysis.row("fc").output == (1000,)
    # 4b reads what 4a wrote, not aux1's 1000 classes
    assert analysis.row("inception4b").input == analysis.row("inception4a").output == (512, 14, 14)
    assert analysis.row("inception4e").input == (528, 14, 14)


def test_googlenet_heads_count_in_params():
    analysis = analyze(load_spec("googlenet"))
    aux1, aux2 = analysis.row("aux1"), analysis.row("aux2")
    assert aux1.head and aux2.head
    assert aux1.output == aux2.output == (1000,)
    assert aux1.params == aux_params(512) == 3_188_840
    assert aux2.params == aux_params(528) == 3_190_888
    assert analysis.totals.head_params == aux_params(512) + aux_params(528)
    assert analysis.totals.params == analysis.totals.head_params + sum(
        r.params for r in analysis.at_depth(1) if not r.head)


def test_googlenet_head_macs_are_apart_from_the_main_path():
    analysis = analyze(load_spec("googlenet"))
    assert analysis.row("aux1").macs == aux_macs(512)
    assert analysis.totals.head_macs == aux_macs(512) + aux_macs(528)
    assert analysis.totals.macs == sum(r.macs for r in analysis.at_depth(None) if not r.head)


def test_googlenet_aux_pool():
    # 5×5/3 average pool on 14×14: ⌊(14 − 5)/3⌋ + 1 = 4
    assert analyze(load_spec("googlenet")).row("aux1.pool").output == (512, 4, 4)


# --------------------------------------------------------------------------------------------
# property tests


def windows(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    """Brute force: every start position in the padded input where the whole window fits."""
    extent = dilation * (kernel - 1) + 1
    return len(range(0, size + 2 * pad - extent + 1, stride))


@settings(max_examples=300, deadline=None)
@given(h=st.integers(1, 64), w=st.integers(1, 64), k=st.integers(1, 7), s=st.integers(1, 4),
       p=st.integers(0, 3), d=st.integers(1, 3))
def test_conv_output_is_the_number_of_window_positions(h, w, k, s, p, d):
    extent = d * (k - 1) + 1
    assume(h + 2 * p >= extent and w + 2 * p >= extent)
    analysis = run(lines(f"input: 2x{h}x{w}", "layers:",
                         f"  - conv: {{out: 3, kernel: {k}, stride: {s}, padding: {p}, dilation: {d}}}"))
    out_h, out_w = windows(h, k, s, p, d), windows(w, k, s, p, d)
    assert analysis.output == (3, out_h, out_w)
    floors = [f for warning in analysis.warnings for f in warning.floors]
    # a floor is reported exactly where the last window stops short of the padded edge
    expected_axes = {axis for axis, size, out in (("height", h, out_h), ("width", w, out_w))
                     if (out - 1) * s + extent < size + 2 * p}
    assert {f.axis for f in floors} == expected_axes
    for f in floors:
        size, out = (h, out_h) if f.axis == "height" else (w, out_w)
        assert f.output == out
        assert (out - 1) * s + extent + f.unused == size + 2 * p
        assert f.ignored_input + f.ignored_padding == f.unused
        assert 0 <= f.ignored_padding <= p


@settings(max_examples=200, deadline=None)
@given(size=st.integers(1, 40), k=st.integers(1, 6), s=st.integers(1, 4), data=st.data())
def test_ceil_mode_pool_counts_windows_starting_inside_input_and_left_padding(size, k, s, data):
    p = data.draw(st.integers(0, k // 2))
    assume(size + 2 * p >= k)
    analysis = run(lines(f"input: 1x{size}x{size}", "layers:",
                         f"  - maxpool: {{kernel: {k}, stride: {s}, padding: {p}, ceil_mode: true}}"))
    # torch: ⌈(I + 2P − K)/S⌉ + 1 windows, less any that would start at or beyond I + P.
    # Brute force: start positions j·S (padded coordinates) with j·S ≤ ⌈(I + 2P − K)/S⌉·S
    # (i.e. j·S < I + 2P − K + S) and j·S < I + P.
    starts = [j for j in range(0, size + 2 * p + s, s) if j < size + 2 * p - k + s and j < size + p]
    assert analysis.output == (1, len(starts), len(starts))


# random small sequential specs, valid by construction (mostly): shapes are kept by padding


def _conv(out: int, k: int, stride: int = 1) -> dict:
    return {"conv": {"out": out, "kernel": k, "padding": k // 2, "stride": stride}}


@st.composite
def _plain_item(draw):
    choice = draw(st.sampled_from(["conv", "relu", "batchnorm", "maxpool", "dropout", "lrn"]))
    if choice == "conv":
        return _conv(draw(st.integers(1, 6)), draw(st.sampled_from([1, 3, 5])),
                     draw(st.integers(1, 2)))
    if choice == "maxpool":
        return {"maxpool": {"kernel": 2, "ceil_mode": draw(st.booleans())}}
    if choice == "lrn":
        return {"lrn": {"size": 3}}
    return choice


def _block(item):
    out = st.integers(1, 6)
    return st.one_of(
        st.lists(item, min_size=1, max_size=3).map(lambda ls: {"sequence": {"layers": ls}}),
        out.map(lambda o: {"residual": {"layers": [_conv(o, 3), "batchnorm"],
                                        "shortcut": [_conv(o, 1)], "post": ["relu"]}}),
        st.tuples(out, out).map(lambda oo: {"concat": {"branches": {
            "a": [_conv(oo[0], 1)], "b": [_conv(oo[1], 3), "relu"]}}}),
    )


_items = st.recursive(_plain_item(), _block, max_leaves=8)
_head = st.just({"head": {"layers": ["global_avgpool", "flatten", {"linear": {"out": 5}}]}})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(layers=st.lists(st.one_of(_items, _head), min_size=1, max_size=6),
       classifier=st.booleans(), c=st.integers(1, 4), size=st.integers(4, 16),
       batch=st.integers(1, 3), dtype=st.sampled_from(["fp32", "fp16", "int8"]))
def test_random_specs_rows_add_up_to_the_totals(layers, classifier, c, size, batch, dtype):
    # Heads are drawn at the top level only here; a head inside a group is covered by
    # test_head_inside_a_sequence_keeps_main_path_totals_consistent.
    if classifier:
        layers = [*layers, "flatten", {"linear": {"out": 3}}]
    text = yaml.safe_dump({"input": f"{c}x{size}x{size}", "layers": layers})
    try:
        analysis = run(text, batch=batch, dtype=dtype)
    except SpecError:
        assume(False)  # e.g. pooled down below the kernel size
    for depth in (1, 2, 3, 4, None):
        assert_rows_add_up(analysis, depth)


# random, possibly invalid specs: only SpecError or OptionError may come out


_values = st.one_of(
    st.integers(-3, 40),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["same", "valid", "three", "", "${1 // 0}", "${nope}", "${2 + 2}",
                     "${true}", "${'a' - 1}", "${-'a'}", "x${1 + 1}"]),
    st.lists(st.integers(-2, 10), max_size=3),
    st.lists(st.lists(st.integers(-1, 6), max_size=4), max_size=4),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 3), max_size=2),
)


@st.composite
def _any_leaf(draw):
    kind = draw(st.sampled_from(sorted(REGISTRY) + ["bogus_kind"]))
    names = list(REGISTRY[kind].fields) if kind in REGISTRY else []
    keys = st.sampled_from(names + ["name", "when", "bogus"])
    fields = draw(st.dictionaries(keys, _values, max_size=5))
    return draw(st.sampled_from([kind, {kind: fields}, {kind: None}, {kind: fields, "extra": 1}]))


def _any_block(item):
    body = st.lists(item, max_size=3)
    return st.one_of(
        body.map(lambda ls: {"sequence": {"layers": ls}}),
        body.map(lambda ls: {"head": {"layers": ls}}),
        st.tuples(body, body).map(lambda t: {"concat": {"branches": {"a": t[0], "b": t[1]}}}),
        st.tuples(body, body, body).map(
            lambda t: {"residual": {"layers": t[0], "shortcut": t[1], "post": t[2]}}),
        st.tuples(st.integers(-1, 3), body).map(lambda t: {"repeat": {"times": t[0], "layers": t[1]}}),
        _values.map(lambda v: {"sequence": {"layers": v}}),
    )


_any_items = st.recursive(_any_leaf(), _any_block, max_leaves=6)
_inputs = st.one_of(
    st.sampled_from(["3x16x16", "1x8x8", "16", "64x4x4", "3x1x1", "3x0x4", "3x4", "x", 5]),
    st.lists(st.integers(-1, 20), max_size=4),
)


@settings(max_examples=500, deadline=None)
@given(layers=st.lists(_any_items, max_size=5), input=_inputs,
       override=st.one_of(st.none(), st.sampled_from(["3x16x16", "10", "3x5", "0x1x1", "abc"])),
       batch=st.sampled_from([1, 2, 0, -1, True]), dtype=st.sampled_from(["fp32", "bf16", "fp8"]))
def test_random_specs_raise_only_spec_or_option_errors(layers, input, override, batch, dtype):
    text = yaml.safe_dump({"input": input, "layers": layers})
    try:
        analysis = analyze(parse_spec(text, "fuzz.yaml", "fuzz"), input=override, batch=batch,
                           dtype=dtype)
    except (SpecError, OptionError) as exc:
        assert str(exc)
        return
    assert analysis.totals.params >= 0 and analysis.totals.macs >= 0
    assert all(d >= 1 for d in analysis.output)


def test_rows_made_without_init_are_complete_frozen_rows():
    """The engine builds rows with engine.new_frozen (no per-field __setattr__): each must hold
    every field, equal the row Row(**fields) makes, and stay frozen."""
    import dataclasses

    from cnncalc.engine import Row

    names = {f.name for f in dataclasses.fields(Row)}
    for spec_name in ("googlenet", "resnet50", "unet"):
        for row in analyze(load_spec(spec_name)).rows:
            assert set(vars(row)) == names
            assert row == Row(**{name: getattr(row, name) for name in names})
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.params = 0
