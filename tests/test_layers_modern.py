"""The modern layer kinds and the merges: shapes, parameters, buffers, MACs, memory rules and
explanations, with the arithmetic written out by hand."""

from __future__ import annotations

import pytest

from cnncalc import SpecError, analyze, parse_spec
from cnncalc.engine import Row
from cnncalc.layers import ALL_RANKS, REGISTRY, Saved, ShapeError, broadcast_shapes, resolve_axis

MODERN = ("layernorm", "groupnorm", "instancenorm", "layer_scale", "slice", "channel_shuffle",
          "drop_path", "prelu", "gelu", "swish", "mish", "hardsigmoid", "add", "mul", "concat")


def layer(item: str, input: str = "96x14x14") -> Row:
    """Analyse a one-layer spec and return its row (with --explain's formulas)."""
    spec = parse_spec(f"input: {input}\nlayers:\n  - {item}\n", "net.yaml", "net")
    (row,) = analyze(spec, explain=True).rows
    return row


def load_error(item: str, input: str = "96x14x14") -> str:
    with pytest.raises(SpecError) as info:
        analyze(parse_spec(f"input: {input}\nlayers:\n  - {item}\n", "net.yaml", "net"))
    return str(info.value)


def config(kind: str, **fields) -> dict:
    """A loaded config: the kind's defaults, ``fields`` over them, finished."""
    rule = REGISTRY[kind]
    cfg = {name: f.default for name, f in rule.fields.items() if not f.required}
    return rule.finish({**cfg, **fields})


@pytest.mark.parametrize("kind", MODERN)
def test_no_modern_kind_has_macs(kind):
    rule = REGISTRY[kind]
    fields = {"groups": 2, "p": 0.1, "stop": 2}
    cfg = config(kind, **{k: v for k, v in fields.items() if k in rule.fields})
    x = ((4, 6, 6), (4, 6, 6)) if rule.arity is None else (4, 6, 6)
    y = rule.output_shape(cfg, x)
    assert rule.macs(cfg, x, y) == 0  # norms, scales, activations and merges are not MACs
    assert rule.window(cfg, x) is None and rule.floors(cfg, x) == []


# --------------------------------------------------------------------------------------------
# Norms


def test_layernorm_over_channels_is_convnext_layernorm2d():
    row = layer("layernorm")
    assert row.output == (96, 14, 14)
    assert row.params == 2 * 96  # a weight and a bias per channel
    assert row.buffers == 0 and row.macs == 0
    assert row.settings == "channels"
    assert row.formula == ("params: 2·96 = 192 (a weight and a bias per channel)",)


def test_layernorm_over_the_last_axis_and_without_bias_or_affine():
    row = layer("layernorm: {over: last}")
    assert row.params == 2 * 14  # nn.LayerNorm(14): weight and bias over the width
    row = layer("layernorm: {bias: false}")
    assert row.params == 96  # the weight only
    assert row.formula == ("params: 96 = 96 (a weight per channel, no bias)",)
    for item in ("layernorm: {affine: false}", "layernorm: {elementwise_affine: false}"):
        row = layer(item)
        assert row.params == 0 and row.formula == () and row.settings == "channels noaffine"
    row = layer("layernorm: {elementwise_affine: true, affine: true}", "384")
    assert row.params == 2 * 384


def test_layernorm_affine_settings_must_agree_and_over_is_a_word():
    assert "disagree" in load_error("layernorm: {affine: true, elementwise_affine: false}")
    assert "'channels', 'last'" in load_error("layernorm: {over: width}")
    assert "elementwise_affine" in REGISTRY["layernorm"].fields
    cfg = config("layernorm", elementwise_affine=False)
    assert cfg["affine"] is False and cfg["elementwise_affine"] is False


def test_layernorm_saves_its_input_and_a_mean_and_inverse_std_per_group():
    rule = REGISTRY["layernorm"]
    x = (96, 14, 14)
    saved = rule.saved_for_backward(config("layernorm"), x, x)
    assert saved == (Saved("input"), Saved("mean and inverse std", 2 * 14 * 14))  # per position
    saved = rule.saved_for_backward(config("layernorm", over="last"), x, x)
    assert saved[1].elements == 2 * 96 * 14  # one group per row of the last axis


def test_groupnorm():
    row = layer("groupnorm: {groups: 32}")
    assert row.output == (96, 14, 14)
    assert row.params == 2 * 96 and row.buffers == 0
    assert row.settings == "g32"
    assert layer("groupnorm: {groups: 3, affine: false}").params == 0
    assert "groups=5 must divide the channels (96)" in load_error("groupnorm: {groups: 5}")
    assert "needs groups" in load_error("groupnorm")
    saved = REGISTRY["groupnorm"].saved_for_backward(config("groupnorm", groups=32), (96, 14, 14),
                                                      (96, 14, 14))
    assert saved == (Saved("input"), Saved("mean and inverse std", 2 * 32))


def test_instancenorm_defaults_are_torchs():
    row = layer("instancenorm")
    assert row.params == 0 and row.buffers == 0  # affine and running stats off, as torch
    row = layer("instancenorm: {affine: true, track_running_stats: true}")
    assert row.params == 2 * 96
    assert row.buffers == 2 * 96 + 1  # running mean and variance, num_batches_tracked
    assert row.formula == ("params: 2·96 = 192", "buffers: 2·96 + 1 = 193")
    assert row.settings == "affine stats"
    assert REGISTRY["instancenorm"].accepts == (2, 3, 4)  # it needs positions


def test_instancenorm_saves_the_repeated_weight_and_statistics():
    rule, x = REGISTRY["instancenorm"], (8, 5, 5)
    assert rule.saved_for_backward(config("instancenorm"), x, x) == (
        Saved("input"), Saved("mean and inverse std", 2 * 8))
    both = rule.saved_for_backward(config("instancenorm", affine=True, track_running_stats=True),
                                   x, x)
    assert [s.elements for s in both[1:]] == [2 * 8, 8, 2 * 8]


# --------------------------------------------------------------------------------------------
# Layer scale, slices, shuffles, stochastic depth


def test_layer_scale_is_one_gamma_per_channel():
    row = layer("layer_scale")
    assert row.params == 96 and row.trainable_params == 96 and row.output == (96, 14, 14)
    assert row.formula == ("params: 96 = 96 (one γ per channel)",)
    assert layer("layer_scale: {init: 0.5}", "768").params == 768


def test_slice_by_range():
    row = layer("slice: {start: 0, stop: 58}", "116x28x28")
    assert row.output == (58, 28, 28)  # ShuffleNetV2's split: 58 of 116 channels
    assert row.params == 0 and row.settings == "0:58"
    assert row.formula == ("channels 0 to 57: 58 − 0 = 58",)
    assert layer("slice: {start: -10}", "116x28x28").output == (10, 28, 28)  # the last 10
    assert layer("slice: {stop: -16}", "116x28x28").output == (100, 28, 28)
    assert layer("slice: {start: 100, stop: 500}", "116x28x28").output == (16, 28, 28)  # clamped


def test_slice_by_chunk_follows_torch_chunk():
    assert layer("slice: {chunks: 2, index: 1}", "116x28x28").output == (58, 28, 28)
    # torch.chunk(10 channels, 3): chunks of ⌈10/3⌉ = 4: 4, 4, 2
    assert [layer(f"slice: {{chunks: 3, index: {i}}}", "10x4x4").output[0] for i in range(3)] == [
        4, 4, 2]
    # torch.chunk(6, 4) gives chunks of ⌈6/4⌉ = 2: only three of them
    assert "torch.chunk gives 3, not 4" in load_error("slice: {chunks: 4, index: 3}", "6x4x4")
    row = layer("slice: {chunks: 3, index: 2}", "10x4x4")
    assert row.formula == ("chunks of ⌈10/3⌉ = 4: channels 8 to 9 = 2",)
    assert row.settings == "chunk 2/3"


def test_slice_fields_and_empty_slices():
    assert "not both" in load_error("slice: {start: 0, chunks: 2, index: 0}")
    assert "needs start and/or stop" in load_error("slice")
    assert "both chunks and index" in load_error("slice: {chunks: 2}")
    assert "are empty" in load_error("slice: {start: 10, stop: 5}")
    assert "must be an integer" in load_error("slice: {start: 1.5}")
    rule = REGISTRY["slice"]
    assert rule.view_at_inference and rule.view_in_training  # a view, at any time
    assert rule.saved_for_backward(config("slice", stop=2), (4,), (2,)) == ()


def test_channel_shuffle():
    row = layer("channel_shuffle: {groups: 2}", "116x28x28")
    assert row.output == (116, 28, 28) and row.params == 0 and row.settings == "g2"
    assert "groups=3 must divide the channels (116)" in load_error(
        "channel_shuffle: {groups: 3}", "116x28x28")
    rule = REGISTRY["channel_shuffle"]
    assert not rule.view_at_inference  # the transpose is made contiguous: a copy
    assert rule.saved_for_backward(config("channel_shuffle", groups=2), (4,), (4,)) == ()


def test_drop_path_saves_one_mask_element_per_sample():
    row = layer("drop_path: {p: 0.1}")
    assert row.output == (96, 14, 14) and row.params == 0 and row.settings == "p0.1"
    rule = REGISTRY["drop_path"]
    assert rule.view_at_inference and not rule.view_in_training
    x = (96, 14, 14)
    assert rule.saved_for_backward(config("drop_path", p=0.1), x, x) == (Saved("mask", 1),)
    assert rule.saved_for_backward(config("drop_path", p=0.0), x, x) == ()  # returns its input
    assert "needs p" in load_error("drop_path")


# --------------------------------------------------------------------------------------------
# Activations


def test_prelu_parameters():
    assert layer("prelu").params == 1  # one slope shared by every channel
    row = layer("prelu: {num_parameters: 96}")
    assert row.params == 96 and row.settings == "per channel"
    assert row.formula == ("params: 96 = 96 (a slope per channel)",)
    assert "must be 1 or the channels (96)" in load_error("prelu: {num_parameters: 3}")


def test_gelu_approximate():
    assert layer("gelu").settings == ""
    assert layer("gelu: {approximate: tanh}").settings == "tanh"
    assert "'none', 'tanh'" in load_error("gelu: {approximate: fast}")


@pytest.mark.parametrize("kind,saves", [
    ("relu", "output"), ("sigmoid", "output"), ("tanh", "output"), ("softmax", "output"),
    ("relu6", "input"), ("leaky_relu", "input"), ("elu", "input"), ("gelu", "input"),
    ("silu", "input"), ("swish", "input"), ("mish", "input"), ("hardswish", "input"),
    ("hardsigmoid", "input"), ("prelu", "input"), ("layer_scale", "input"),
])
def test_activation_saves_what_torch_derivatives_say(kind, saves):
    rule, x = REGISTRY[kind], (4, 5, 5)
    assert rule.saved_for_backward(config(kind), x, x) == (Saved(saves),)


def test_swish_is_silu_under_another_name():
    assert layer("swish").output == layer("silu").output
    assert "silu" in REGISTRY["swish"].summary


@pytest.mark.parametrize("kind", ["relu", "gelu", "mish", "layernorm", "groupnorm", "prelu",
                                  "layer_scale", "slice", "channel_shuffle", "drop_path"])
def test_every_rank(kind):
    rule = REGISTRY[kind]
    assert rule.accepts == ALL_RANKS
    cfg = config(kind, **{k: v for k, v in {"groups": 2, "p": 0.1, "stop": 2}.items()
                          if k in rule.fields})
    for x in ((4,), (4, 7), (4, 5, 6), (4, 3, 5, 6)):
        y = rule.output_shape(cfg, x)
        assert y[1:] == x[1:]


# --------------------------------------------------------------------------------------------
# Merges


def test_merges_take_several_inputs():
    for kind in ("add", "mul", "concat"):
        rule = REGISTRY[kind]
        assert rule.arity is None and rule.accepts == ALL_RANKS
        assert not rule.view_at_inference and not rule.view_in_training
    assert REGISTRY["conv"].arity == 1


def test_add_is_strict():
    add = REGISTRY["add"]
    assert add.output_shape({}, ((64, 56, 56), (64, 56, 56))) == (64, 56, 56)
    assert add.output_shape({}, ((8,), (8,), (8,))) == (8,)
    with pytest.raises(ShapeError, match=r"same shape, got 64×56×56, 64×1×1"):
        add.output_shape({}, ((64, 56, 56), (64, 1, 1)))
    assert add.saved_for_backward({}, ((8,), (8,)), (8,)) == ()


def test_mul_broadcasts_per_sample():
    mul = REGISTRY["mul"]
    assert mul.output_shape({}, ((64, 56, 56), (64, 1, 1))) == (64, 56, 56)  # the SE gate
    assert mul.output_shape({}, ((64, 56, 56), (1, 56, 56))) == (64, 56, 56)  # a spatial map
    assert mul.output_shape({}, ((64, 1, 56), (1, 56, 1))) == (64, 56, 56)
    assert mul.explain({}, ((64, 56, 56), (64, 1, 1)), (64, 56, 56)) == [
        "64×56×56 · 64×1×1 → 64×56×56 (broadcast)"]
    with pytest.raises(ShapeError, match=r"64×56×56, 32×1×1: channels 32 and 64 differ"):
        mul.output_shape({}, ((64, 56, 56), (32, 1, 1)))
    with pytest.raises(ShapeError, match="same rank, got 64×56×56, 56×56"):
        mul.output_shape({}, ((64, 56, 56), (56, 56)))


def test_mul_saves_both_operands_and_partial_products():
    mul = REGISTRY["mul"]
    assert mul.saved_for_backward({}, ((64, 56, 56), (64, 1, 1)), (64, 56, 56)) == (
        Saved("input"),)  # every input, as it is (not broadcast)
    three = mul.saved_for_backward({}, ((4, 5, 5), (4, 1, 1), (1, 5, 5)), (4, 5, 5))
    assert three == (Saved("input"), Saved("partial product 1", 4 * 5 * 5))


def test_concat_merge_axes():
    cat = REGISTRY["concat"]
    two = ((64, 28, 28), (32, 28, 28))
    assert cat.output_shape(config("concat"), two) == (96, 28, 28)
    assert cat.output_shape(config("concat", axis="channels"), two) == (96, 28, 28)
    assert cat.explain(config("concat"), two, (96, 28, 28)) == ["channels: 64 + 32 = 96"]
    wide = ((8, 4, 5), (8, 4, 7))
    assert cat.output_shape(config("concat", axis=2), wide) == (8, 4, 12)
    assert cat.output_shape(config("concat", axis=-1), wide) == (8, 4, 12)
    assert cat.output_shape(config("concat", axis="width"), wide) == (8, 4, 12)
    assert cat.describe(config("concat", axis="width")) == "axis width"
    assert cat.describe(config("concat")) == ""
    assert cat.output_shape(config("concat", axis="length"), ((3, 4), (3, 6))) == (3, 10)
    with pytest.raises(ShapeError, match=r"along channels .* 64×28×28, 32×14×14 differ in height"):
        cat.output_shape(config("concat"), ((64, 28, 28), (32, 14, 14)))
    with pytest.raises(ShapeError, match="no depth axis"):
        resolve_axis("depth", (3, 4, 4))
    with pytest.raises(ShapeError, match="axis 3 is out of range"):
        resolve_axis(3, (3, 4, 4))
    assert cat.saved_for_backward(config("concat"), two, (96, 28, 28)) == ()


def test_a_merge_without_operands_is_a_spec_error():
    assert "add merges two or more tensors: give 'from: [a, b]' or 'with: b'" in load_error("add")
    with pytest.raises(ShapeError, match="got 1"):
        REGISTRY["mul"].output_shape({}, ((3, 4, 4),))


def test_broadcast_shapes_of_several():
    assert broadcast_shapes(((1, 1, 5), (3, 1, 1), (1, 4, 1))) == (3, 4, 5)
