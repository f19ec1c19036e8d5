"""Per-kind formulas of the layer registry: shapes, parameters, MACs and windows.

Every expectation is derived by hand in the comment next to it (or in the expression itself);
none is copied from the program's output.
"""

from __future__ import annotations

import pytest

from cnncalc import SpecError, analyze, parse_spec
from cnncalc.engine import Row
from cnncalc.layers import REGISTRY, ShapeError, slide


def layer(item: str, input: str = "3x32x32") -> Row:
    """Analyse a one-layer spec (``item`` is the YAML of the list item) and return its row."""
    spec = parse_spec(f"input: {input}\nlayers:\n  - {item}\n", "net.yaml", "net")
    (row,) = analyze(spec).rows
    return row


def shape_error(item: str, input: str = "3x32x32") -> SpecError:
    with pytest.raises(SpecError) as info:
        layer(item, input)
    return info.value


# --------------------------------------------------------------------------------------------
# conv


def test_conv_plain_shape_params_macs():
    row = layer("conv: {out: 8, kernel: 3}", "3x32x32")
    # 32 − 3 + 1 = 30
    assert row.output == (8, 30, 30)
    # weights 8·3·3·3 = 216, bias 8
    assert row.params == 8 * 3 * 3 * 3 + 8 == 224
    # 30·30 positions × 8 maps × 27 weights = 194,400
    assert row.macs == 30 * 30 * 8 * 27 == 194_400


def test_conv_integer_padding_keeps_size():
    # 32 + 2·1 − 3 + 1 = 32
    assert layer("conv: {out: 4, kernel: 3, padding: 1}").output == (4, 32, 32)


def test_conv_padding_pair_is_height_then_width():
    # H: 32 + 2·1 − 3 + 1 = 32;  W: 32 + 2·2 − 3 + 1 = 34
    assert layer("conv: {out: 4, kernel: 3, padding: [1, 2]}").output == (4, 32, 34)


@pytest.mark.parametrize("kernel", [1, 3, 4, 5, 7])
def test_conv_same_padding_at_stride_1_keeps_size(kernel):
    # 'same' pads k − 1 in total (the odd one after, as torch does for even kernels): 32 → 32
    assert layer(f"conv: {{out: 4, kernel: {kernel}, padding: same}}").output == (4, 32, 32)


def test_conv_same_padding_with_stride_gives_ceil_of_input_over_stride():
    # TensorFlow's 'same' beyond stride 1: ⌈7/2⌉ = 4
    assert layer("conv: {out: 4, kernel: 3, stride: 2, padding: same}", "3x7x7").output == (4, 4, 4)


def test_conv_valid_padding_is_no_padding():
    # 32 − 5 + 1 = 28
    assert layer("conv: {out: 4, kernel: 5, padding: valid}").output == (4, 28, 28)


def test_conv_stride():
    # ⌊(32 + 2·1 − 3)/2⌋ + 1 = ⌊31/2⌋ + 1 = 16
    row = layer("conv: {out: 4, kernel: 3, stride: 2, padding: 1}")
    assert row.output == (4, 16, 16)
    # 16·16 positions × 4 maps × 3·3·3 weights
    assert row.macs == 16 * 16 * 4 * 27


def test_conv_dilation_widens_the_window_but_not_the_weights():
    row = layer("conv: {out: 4, kernel: 3, dilation: 2}")
    # effective extent 2·(3 − 1) + 1 = 5, so 32 − 5 + 1 = 28
    assert row.output == (4, 28, 28)
    # still 3·3·3 weights per output map: params 4·27 + 4, MACs 28·28·4·27
    assert row.params == 4 * 27 + 4
    assert row.macs == 28 * 28 * 4 * 27
    # receptive field of one dilated layer is its extent
    assert row.rf == (5, 5)


def test_conv_groups_divide_the_weights():
    # 4 → 8 maps in 2 groups: each output map sees 4/2 = 2 inputs: 8·2·3·3 weights + 8 biases
    row = layer("conv: {out: 8, kernel: 3, padding: 1, groups: 2}", "4x8x8")
    assert row.params == 8 * 2 * 9 + 8 == 152
    assert row.macs == 8 * 8 * 8 * 2 * 9


def test_conv_depthwise():
    # groups = channels = 16: one 3×3 filter per map: 16·1·9 weights + 16 biases = 160
    row = layer("conv: {out: 16, kernel: 3, padding: 1, groups: 16}", "16x8x8")
    assert row.output == (16, 8, 8)
    assert row.params == 16 * 9 + 16 == 160
    # 8·8 positions × 16 maps × 9 weights = 9,216
    assert row.macs == 8 * 8 * 16 * 9 == 9_216


def test_conv_without_bias():
    # 8·3·3·3 = 216 weights, no bias; MACs do not change (bias adds are not MACs)
    row = layer("conv: {out: 8, kernel: 3, bias: false}")
    assert row.params == 216
    assert row.macs == 30 * 30 * 8 * 27


def test_conv_1x7_kernel():
    # H: 17 + 0 − 1 + 1 = 17;  W: 17 + 2·3 − 7 + 1 = 17
    row = layer("conv: {out: 8, kernel: [1, 7], padding: [0, 3]}", "4x17x17")
    assert row.output == (8, 17, 17)
    # 8·4·1·7 weights + 8 biases = 232
    assert row.params == 8 * 4 * 7 + 8 == 232
    assert row.macs == 17 * 17 * 8 * 4 * 7
    assert row.rf == (1, 7)


def test_conv_7x1_kernel():
    row = layer("conv: {out: 8, kernel: [7, 1], padding: [3, 0]}", "4x17x17")
    assert row.output == (8, 17, 17)
    assert row.params == 8 * 4 * 7 + 8
    assert row.rf == (7, 1)


def test_conv_rectangular_stride():
    # H: ⌊(32 + 2 − 3)/2⌋ + 1 = 16;  W: (32 + 2 − 3)/1 + 1 = 32
    row = layer("conv: {out: 4, kernel: 3, stride: [2, 1], padding: 1}")
    assert row.output == (4, 16, 32)
    assert row.jump == (2, 1)


def test_conv_rectangular_input():
    # H: 20 − 3 + 1 = 18;  W: 40 − 3 + 1 = 38
    assert layer("conv: {out: 2, kernel: 3}", "1x20x40").output == (2, 18, 38)


def test_conv_connection_table_counts_only_listed_inputs():
    # output map 0 sees inputs {0, 1}, map 1 sees {1, 2, 0}: (2 + 3)·3·3 = 45 weights, 2 biases
    row = layer("conv: {out: 2, kernel: 3, connections: [[0, 1], [1, 2, 0]]}", "3x6x6")
    assert row.output == (2, 4, 4)
    assert row.params == (2 + 3) * 9 + 2 == 47
    # 4·4 positions × 45 weights = 720
    assert row.macs == 4 * 4 * 45 == 720


def test_conv_connection_table_naming_a_missing_map_is_an_error():
    err = shape_error("conv: {out: 1, kernel: 1, connections: [[0, 3]]}", "3x4x4")
    assert "input map 3" in err.problem


def test_conv_connection_table_with_wrong_row_count_is_an_error():
    err = shape_error("conv: {out: 2, kernel: 1, connections: [[0]]}", "3x4x4")
    assert "1 rows for 2 output maps" in err.problem


def test_conv_groups_not_dividing_input_channels_is_an_error():
    err = shape_error("conv: {out: 4, kernel: 3, groups: 2}", "3x8x8")
    assert "groups=2" in err.problem and "(3)" in err.problem


def test_conv_groups_not_dividing_output_channels_is_an_error():
    err = shape_error("conv: {out: 3, kernel: 3, groups: 2}", "4x8x8")
    assert "groups=2" in err.problem


def test_conv_kernel_larger_than_input_is_an_error():
    err = shape_error("conv: {out: 4, kernel: 5}", "3x4x4")
    assert "larger than the padded input" in err.problem


def test_conv_kernel_that_fits_only_with_padding():
    # 3 + 2·1 − 5 + 1 = 1
    assert layer("conv: {out: 4, kernel: 5, padding: 1}", "3x3x3").output == (4, 1, 1)


def test_conv_on_a_vector_is_an_error():
    err = shape_error("conv: {out: 4, kernel: 1}", "10")
    assert "C×H×W" in err.problem


# --------------------------------------------------------------------------------------------
# slide()


def test_slide_exact_division_has_no_floor():
    # (227 − 11)/4 = 54 exactly → 55
    result = slide("height", 227, 11, 4, (0, 0))
    assert result.output == 55
    assert result.floor is None


def test_slide_inexact_division_reports_the_floor():
    # (224 − 11)/4 = 53.25 → 54 windows; 213 = 53·4 + 1 leaves 1 input row unread
    result = slide("height", 224, 11, 4, (0, 0))
    assert result.output == 54
    floor = result.floor
    assert floor.numerator == 213
    assert floor.unused == 1
    assert floor.ignored_input == 1
    assert floor.ignored_padding == 0


def test_slide_floor_that_drops_only_padding():
    # (224 + 3 + 3 − 7)/2 = 111.5: 1 row left over, and it is padding (3 rows of it after)
    floor = slide("width", 224, 7, 2, (3, 3)).floor
    assert floor.unused == 1
    assert floor.ignored_padding == 1
    assert floor.ignored_input == 0


def test_slide_kernel_extent_larger_than_padded_input_raises():
    with pytest.raises(ShapeError, match="larger than the padded input"):
        slide("height", 4, 5, 1, (0, 0))


def test_slide_dilated_extent_larger_than_padded_input_raises():
    # extent 3·(3 − 1) + 1 = 7 > 5 + 2·0
    with pytest.raises(ShapeError):
        slide("width", 5, 3, 1, (0, 0), dilation=3)


def test_slide_ceil_mode_last_window_must_start_inside_input_and_left_padding():
    # 5 + 1 + 1 − 2 = 5; ⌈5/2⌉ + 1 = 4 windows would start at 0, 2, 4, 6 (padded coordinates),
    # but 6 ≥ 5 + 1 (input plus left padding): torch drops it → 3
    assert slide("height", 5, 2, 2, (1, 1), ceil_mode=True).output == 3
    # 3 + 2 − 2 = 3; ⌈3/2⌉ + 1 = 3, last start (3 − 1)·2 = 4 ≥ 3 + 1 → 2
    assert slide("height", 3, 2, 2, (1, 1), ceil_mode=True).output == 2


# --------------------------------------------------------------------------------------------
# linear and rbf


def test_linear():
    row = layer("linear: {out: 10}", "100")
    assert row.output == (10,)
    # 100·10 weights + 10 biases
    assert row.params == 100 * 10 + 10 == 1_010
    assert row.macs == 100 * 10 == 1_000


def test_linear_without_bias():
    assert layer("linear: {out: 10, bias: false}", "100").params == 1_000


def test_linear_on_a_feature_map_is_an_error_mentioning_flatten():
    err = shape_error("linear: {out: 10}", "16x5x5")
    assert "flatten" in err.problem
    assert "16×5×5" in err.problem


def test_rbf_params_are_not_trainable_by_default():
    # LeNet-5's output: 84 inputs × 10 fixed centres = 840 parameters, none trained
    row = layer("rbf: {out: 10}", "84")
    assert row.output == (10,)
    assert row.params == 84 * 10 == 840
    assert row.trainable_params == 0
    # one squared-difference accumulate per centre coordinate
    assert row.macs == 840


def test_rbf_trainable_when_asked():
    assert layer("rbf: {out: 10, trainable: true}", "84").trainable_params == 840


def test_rbf_on_a_feature_map_is_an_error():
    assert "flatten" in shape_error("rbf: {out: 10}", "4x3x3").problem


# --------------------------------------------------------------------------------------------
# pooling


@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
def test_pool_stride_defaults_to_kernel(kind):
    # 32 / 2 = 16
    row = layer(f"{kind}: {{kernel: 2}}")
    assert row.output == (3, 16, 16)
    assert row.jump == (2, 2)
    assert row.params == 0 and row.macs == 0


@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
def test_pool_overlapping_stride(kind):
    # AlexNet pool1: ⌊(55 − 3)/2⌋ + 1 = 27
    assert layer(f"{kind}: {{kernel: 3, stride: 2}}", "96x55x55").output == (96, 27, 27)


@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
def test_pool_padding(kind):
    # ResNet maxpool: ⌊(112 + 2 − 3)/2⌋ + 1 = 55 + 1 = 56
    assert layer(f"{kind}: {{kernel: 3, stride: 2, padding: 1}}", "64x112x112").output == (64, 56, 56)


def test_pool_ceil_mode_googlenet():
    # ⌈(112 − 3)/2⌉ + 1 = ⌈54.5⌉ + 1 = 56 (last window starts at 110 < 112)
    assert layer("maxpool: {kernel: 3, stride: 2, ceil_mode: true}", "64x112x112").output == (64, 56, 56)


def test_pool_floor_mode_googlenet_size():
    # ⌊(112 − 3)/2⌋ + 1 = 54 + 1 = 55
    assert layer("maxpool: {kernel: 3, stride: 2}", "64x112x112").output == (64, 55, 55)


def test_pool_ceil_mode_exact_division_with_padding():
    # (6 + 2 − 2)/2 = 3 exactly → 4; the last window starts at 6 < 6 + 1
    assert layer("maxpool: {kernel: 2, stride: 2, padding: 1, ceil_mode: true}", "1x6x6").output == (1, 4, 4)


@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
def test_pool_ceil_mode_drops_a_window_starting_in_right_padding(kind):
    # ⌈(5 + 2 − 2)/2⌉ + 1 = 4, but the 4th window starts at 6 ≥ 5 + 1 → 3
    item = f"{kind}: {{kernel: 2, stride: 2, padding: 1, ceil_mode: true}}"
    assert layer(item, "1x5x5").output == (1, 3, 3)


def test_pool_ceil_mode_rounds_up():
    # ⌈(7 − 2)/2⌉ + 1 = 3 + 1 = 4 (floor would give 3); last window starts at 6 < 7
    assert layer("maxpool: {kernel: 2, ceil_mode: true}", "1x7x7").output == (1, 4, 4)
    assert layer("maxpool: {kernel: 2}", "1x7x7").output == (1, 3, 3)


def test_maxpool_dilation():
    # extent 2·(2 − 1) + 1 = 3; ⌊(9 − 3)/2⌋ + 1 = 4
    assert layer("maxpool: {kernel: 2, stride: 2, dilation: 2}", "1x9x9").output == (1, 4, 4)


def test_avgpool_count_include_pad_does_not_change_the_shape():
    item = "avgpool: {kernel: 3, stride: 1, padding: 1, count_include_pad: false}"
    assert layer(item, "2x5x5").output == (2, 5, 5)


@pytest.mark.parametrize("kind", ["maxpool", "avgpool", "subsample"])
def test_pool_padding_more_than_half_the_kernel_is_an_error(kind):
    err = shape_error(f"{kind}: {{kernel: 3, padding: 2}}", "1x8x8")
    assert "half the kernel" in err.problem


def test_pool_padding_exactly_half_the_kernel_is_allowed():
    # kernel 2, padding 1: ⌊(4 + 2 − 2)/2⌋ + 1 = 3
    assert layer("maxpool: {kernel: 2, padding: 1}", "1x4x4").output == (1, 3, 3)


def test_pool_kernel_larger_than_input_is_an_error():
    assert "larger than the padded input" in shape_error("maxpool: {kernel: 3}", "1x2x2").problem


def test_subsample_lenet_s2():
    # LeNet-5 S2 on 6×28×28: 2×2/2 → 6×14×14; a coefficient and a bias per map: 2·6 = 12
    row = layer("subsample: {kernel: 2}", "6x28x28")
    assert row.output == (6, 14, 14)
    assert row.params == 2 * 6 == 12
    assert row.trainable_params == 12
    # one multiply per output: 6·14·14 = 1,176
    assert row.macs == 6 * 14 * 14 == 1_176


# --------------------------------------------------------------------------------------------
# adaptive and global pooling, flatten


@pytest.mark.parametrize("kind", ["adaptive_avgpool", "adaptive_maxpool"])
def test_adaptive_pool_to_a_fixed_size(kind):
    row = layer(f"{kind}: {{output: 7}}", "512x14x14")
    assert row.output == (512, 7, 7)
    assert row.params == 0 and row.macs == 0


def test_adaptive_pool_non_divisible():
    # 13 → 7 does not divide; torch still gives exactly 7×7
    assert layer("adaptive_avgpool: {output: 7}", "256x13x13").output == (256, 7, 7)


def test_adaptive_pool_non_divisible_window_is_the_largest():
    # 5 → 3: windows [⌊5i/3⌋, ⌈5(i+1)/3⌉) are [0,2), [1,4), [3,5): the largest is 3 wide
    assert layer("adaptive_avgpool: {output: 3}", "1x5x5").rf == (3, 3)


def test_adaptive_pool_rectangular_output():
    assert layer("adaptive_avgpool: {output: [2, 3]}", "4x10x12").output == (4, 2, 3)


def test_adaptive_pool_larger_than_input():
    # torch allows upsampling windows: 3 → 5
    assert layer("adaptive_avgpool: {output: 5}", "1x3x3").output == (1, 5, 5)


def test_global_avgpool():
    row = layer("global_avgpool", "2048x7x7")
    assert row.output == (2048, 1, 1)
    assert row.params == 0 and row.macs == 0
    # its one window covers the whole 7×7 map
    assert row.rf == (7, 7)


def test_flatten():
    # 16·5·5 = 400
    row = layer("flatten", "16x5x5")
    assert row.output == (400,)
    assert row.params == 0


def test_flatten_of_a_vector_is_the_same_vector():
    assert layer("flatten", "10").output == (10,)


# --------------------------------------------------------------------------------------------
# normalisation, dropout, activations


def test_batchnorm_params_and_buffers():
    row = layer("batchnorm", "64x8x8")
    assert row.output == (64, 8, 8)
    # weight and bias: 2·64 = 128
    assert row.params == 2 * 64 == 128
    # running_mean, running_var (64 each) + num_batches_tracked (1) = 129
    assert row.buffers == 2 * 64 + 1 == 129
    assert row.macs == 0


def test_batchnorm_on_a_vector():
    row = layer("batchnorm", "10")
    assert row.params == 20
    assert row.buffers == 21


def test_batchnorm_without_affine_or_running_stats():
    assert layer("batchnorm: {affine: false}", "8x2x2").params == 0
    assert layer("batchnorm: {track_running_stats: false}", "8x2x2").buffers == 0


POINTWISE_3D = [
    "lrn: {size: 5}", "dropout", "dropout: {p: 0.2}", "relu", "relu6", "leaky_relu",
    "leaky_relu: {slope: 0.2}", "elu", "gelu", "silu", "hardswish", "tanh", "sigmoid", "softmax",
    "log_softmax", "identity",
]


@pytest.mark.parametrize("item", POINTWISE_3D)
def test_pointwise_layers_have_no_params_and_keep_the_shape(item):
    row = layer(item, "6x7x5")
    assert row.output == (6, 7, 5)
    assert (row.params, row.buffers, row.macs) == (0, 0, 0)
    assert row.rf == (1, 1)


@pytest.mark.parametrize("item", [i for i in POINTWISE_3D if not i.startswith("lrn")])
def test_pointwise_layers_on_vectors(item):
    row = layer(item, "10")
    assert row.output == (10,)
    assert row.params == 0


def test_lrn_on_a_vector_is_an_error():
    shape_error("lrn: {size: 5}", "10")


def test_dropout_probability_out_of_range_is_an_error():
    err = shape_error("dropout: {p: 1.5}")
    assert "between 0 and 1" in err.problem


# --------------------------------------------------------------------------------------------
# every registered kind


# The least each kind needs: its required fields and an input it accepts.
MINIMAL = {
    "conv": ("{out: 2, kernel: 3}", "3x8x8"),
    "linear": ("{out: 2}", "8"),
    "rbf": ("{out: 2}", "8"),
    "maxpool": ("{kernel: 2}", "3x8x8"),
    "avgpool": ("{kernel: 2}", "3x8x8"),
    "subsample": ("{kernel: 2}", "3x8x8"),
    "adaptive_avgpool": ("{output: 2}", "3x8x8"),
    "adaptive_maxpool": ("{output: 2}", "3x8x8"),
    "lrn": ("{size: 3}", "3x8x8"),
    "groupnorm": ("{groups: 3}", "3x8x8"),
    "channel_shuffle": ("{groups: 3}", "3x8x8"),
    "drop_path": ("{p: 0.1}", "3x8x8"),
    "slice": ("{stop: 2}", "3x8x8"),  # start/stop or chunks/index, none of them required alone
    "conv_transpose": ("{out: 2, kernel: 2, stride: 2}", "3x8x8"),
    "upsample": ("{scale: 2}", "3x8x8"),
    "pad": ("{padding: 1}", "3x8x8"),
    "crop": ("{size: 4}", "3x8x8"),
    "placeholder": ("{op: torch.matmul, shape: 3x4x4}", "3x8x8"),
}


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_registered_kind_loads_and_analyses(kind):
    rule = REGISTRY[kind]
    if rule.arity != 1:  # a merge of the input with itself
        row = layer(f"{kind}: {{with: input}}", "3x8x8")
        assert row.kind == kind and row.input == (3, 8, 8)
        return
    required = [name for name, f in rule.fields.items() if f.required]
    if required or kind in MINIMAL:
        assert kind in MINIMAL, f"add minimal fields for {kind} (needs {', '.join(required)})"
        fields, input = MINIMAL[kind]
    else:
        fields, input = "", ("3x8x8" if 3 in rule.accepts else "8")
    row = layer(f"{kind}: {fields}" if fields else kind, input)
    assert row.kind == kind
    assert row.leaf
    assert len(row.output) in (1, 3) and all(d >= 1 for d in row.output)
    assert row.trainable_params <= row.params


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_registered_kind_documents_itself(kind):
    rule = REGISTRY[kind]
    assert rule.kind == kind
    assert rule.summary
    assert all(f.doc for f in rule.fields.values())


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_registered_kind_refuses_an_unknown_field(kind):
    with pytest.raises(SpecError, match="unknown field 'bogus'"):
        parse_spec(f"input: 3x8x8\nlayers:\n  - {kind}: {{bogus: 1}}\n", "net.yaml", "net")


def test_adaptive_largest_window_closed_form_matches_the_loop():
    """Issue 11: the largest adaptive window is computed without a loop over the output."""
    from cnncalc.layers import _adaptive_windows

    for size in range(1, 200):
        for out in range(1, 200):
            loop = max(-(-(i + 1) * size // out) - (i * size // out) for i in range(out))
            assert _adaptive_windows(size, out)[0] == loop, (size, out)
