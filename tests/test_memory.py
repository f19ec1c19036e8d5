"""The memory model (cnncalc.memory) against hand-computed cases (docs/memory.md)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cnncalc import analyze, load_spec, parse_spec
from cnncalc.cli import app
from cnncalc.errors import OptionError
from cnncalc.layers import REGISTRY
from cnncalc.memory import OPTIMIZER_STATES, memory

runner = CliRunner()


def _spec(text: str):
    return parse_spec(text, "m.yaml", "m")


# Two branches on a 1×8×8 input (256 B in fp32): branch a is one small conv, branch b a wide
# conv, a ReLU and a narrow conv; then the concatenation.
TWO_BRANCH = """\
input: 1x8x8
layers:
  - concat:
      name: block
      branches:
        a: [conv: {name: conv, out: 1, kernel: 1}]
        b:
          - conv: {name: wide, out: 4, kernel: 1}
          - relu: {name: relu}
          - conv: {name: narrow, out: 1, kernel: 1}
"""


def test_two_branch_peak_is_set_by_liveness():
    """Hand-computed, fp32, batch 1 (x = input 256 B, held by the caller throughout; a = branch
    a's output 256 B, w = wide conv output 1024 B, r = ReLU output 1024 B, n = narrow output
    256 B, cat = 512 B):

    block.a.conv     x + a             = 512
    block.b.wide     x + a + w         = 1536
    block.b.relu     x + a + w + r     = 2560   ← the peak: a is kept alive for the concat
    block.b.narrow   x + a + r + n     = 1792
    block (concat)   x + a + n + cat   = 1280

    The largest input + output of any one layer is 2048 B (the ReLU): not the peak."""
    report = memory(analyze(_spec(TWO_BRANCH)))
    live = [(m.path, m.kind, m.live_bytes) for m in report.layers]
    assert live == [("block.a.conv", "conv", 512), ("block.b.wide", "conv", 1536),
                    ("block.b.relu", "relu", 2560), ("block.b.narrow", "conv", 1792),
                    ("block", "concat", 1280)]
    assert report.activation_peak_bytes == 2560
    assert report.activation_peak_at == "block.b.relu"
    assert report.activation_sum_bytes == 2560
    assert report.input_bytes == 256
    params = (1 + 1) + (4 + 4) + (4 + 1)  # weights + biases of the three 1×1 convs
    assert report.param_bytes == 4 * params
    assert report.inference_bytes == 4 * params + 2560


def test_two_branch_scales_with_batch_and_dtype():
    one = memory(analyze(_spec(TWO_BRANCH)))
    many = memory(analyze(_spec(TWO_BRANCH), batch=8, dtype="fp16"))
    assert many.activation_peak_bytes == one.activation_peak_bytes * 8 // 2
    assert many.param_bytes == one.param_bytes // 2


def test_residual_shortcut_keeps_its_input_alive():
    """1×4×4 input (64 B): body conv (64 B) and ReLU (64 B), identity shortcut, add (64 B), post
    ReLU (64 B). The input stays alive (for the add, and the caller holds it): conv x + c = 128,
    relu x + c + r = 192, add x + r + sum = 192, post relu x + sum + out = 192."""
    report = memory(analyze(_spec("""\
input: 1x4x4
layers:
  - residual:
      name: res
      layers: [conv: {name: conv, out: 1, kernel: 3, padding: 1}, relu: {name: relu}]
      post: [relu: {name: out}]
""")))
    assert [(m.path, m.kind, m.live_bytes) for m in report.layers] == [
        ("res.conv", "conv", 128), ("res.relu", "relu", 192), ("res", "add", 192),
        ("res.out", "relu", 192)]
    assert report.activation_peak_bytes == 192


CHAIN = """\
input: 1x4x4
layers:
  - conv: {name: conv, out: 2, kernel: 3, padding: 1}
  - relu: {name: relu}
  - maxpool: {name: pool, kernel: 2}
  - flatten: {name: flat}
  - linear: {name: fc, out: 3}
"""


def test_training_chain_by_hand():
    """fp32, batch 1. Tensors: x input 64 B; c conv output 128; r ReLU output 128; m pool output
    32 (+ int64 indices 8 × 8 = 64); the flatten is a view of m; y the output 12.

    Saved for backward: conv keeps x (64), ReLU r (128), max pool r again (shared) and its
    indices (64), the linear layer m (32): 288 B.
    Forward peak: at the ReLU, kept x + r = 192 plus c still live = 320.
    Backward peak: at the ReLU's backward, kept x + r = 192 plus the gradients of c and r
    (128 each) = 448.
    Parameters 20 + 27 = 47 (188 B); Adam: gradients 188, state 2 × 188 = 376.
    Training, gradients kept (set_to_none=False) = 188 + 188 + 376 + 448 = 1200 B. With
    set_to_none (the default) the step starts without gradients; at the ReLU's backward only fc's
    (27 · 4 = 108 B) exist: 188 + 108 + 376 + 448 = 1120 B. The live-tensor meter measures both
    plus 8 B (the scalar loss, not counted).
    MACs: forward conv 16·2·9 = 288 + fc 24 = 312; backward: conv reads the input batch, so only
    its weight gradient (288), fc both (48): 336."""
    report = memory(analyze(_spec(CHAIN)), optimizer="adam")
    assert report.saved_bytes == 288
    assert [(m.path, m.saved, m.saved_bytes) for m in report.layers] == [
        ("conv", "input", 64), ("relu", "output", 128), ("pool", "input + indices", 64),
        ("flat", "", 0), ("fc", "input", 32)]
    assert report.forward_peak_bytes == 320
    assert report.backward_peak_bytes == 448
    assert (report.param_bytes, report.gradient_bytes, report.optimizer_bytes) == (188, 188, 376)
    assert report.training_bytes == 1120 and report.training_peak_at == "backward: relu"
    assert memory(analyze(_spec(CHAIN)), "adam", set_to_none=False).training_bytes == 1200
    assert (report.forward_macs, report.backward_macs, report.training_macs) == (312, 336, 648)
    # inference: the flatten is a view (no new tensor); peak at the ReLU: x + c + r = 320 (the
    # max pool's int64 indices, dropped at once under no_grad, make x + r + m + 64 = 288)
    assert report.activation_peak_bytes == 320
    assert report.layers[3].output_bytes == 0


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZER_STATES))
def test_optimizer_state_copies(optimizer):
    kept = memory(analyze(_spec(CHAIN)), optimizer=optimizer, set_to_none=False)
    assert kept.optimizer_bytes == {"sgd": 0, "momentum": 1, "adam": 2}[optimizer] * 188
    assert kept.training_bytes == 188 * 2 + kept.optimizer_bytes + 448
    freed = memory(analyze(_spec(CHAIN)), optimizer=optimizer)
    assert freed.training_bytes == 188 + 108 + freed.optimizer_bytes + 448


def test_unknown_optimizer():
    with pytest.raises(OptionError, match="unknown optimizer 'lamb'"):
        memory(analyze(_spec(CHAIN)), optimizer="lamb")


def test_dropout_is_free_at_inference_and_keeps_its_noise_in_training():
    report = memory(analyze(_spec("input: 10\nlayers:\n  - linear: {name: fc, out: 100}\n"
                                  "  - dropout: {name: drop}\n  - linear: {name: out, out: 2}\n"),
                            batch=4))
    drop = next(m for m in report.layers if m.path == "drop")
    assert drop.output_bytes == 0  # inference: the dropout's output is its input
    # torch's CPU dropout multiplies by a noise tensor in the dtype (CUDA's fused kernel keeps
    # a bool mask), and the multiply keeps it
    assert drop.saved == "noise" and drop.saved_bytes == 4 * 100 * 4


def test_batchnorm_keeps_its_input_and_statistics():
    report = memory(analyze(_spec("input: 3x4x4\nlayers:\n"
                                  "  - conv: {name: conv, out: 8, kernel: 1}\n"
                                  "  - batchnorm: {name: bn}\n")))
    bn = next(m for m in report.layers if m.path == "bn")
    assert bn.saved == "input + batch mean and inverse std"
    assert bn.saved_bytes == 4 * (8 * 4 * 4 + 2 * 8)


def test_side_heads_run_only_in_training():
    a = analyze(load_spec("googlenet"))
    report = memory(a)
    heads = [m for m in report.layers if any(r.path == m.path and r.head for r in a.rows)]
    assert heads and all(m.live_bytes == 0 for m in heads)  # not run at inference
    assert sum(m.saved_bytes for m in heads) > 0  # run in training
    assert report.forward_macs == a.totals.macs + a.totals.head_macs


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "vgg16", "googlenet", "alexnet",
                                  "lenet5-1998", "inception-naive"])
def test_zoo_reports_are_consistent(name):
    a = analyze(load_spec(name), batch=2)
    report = memory(a, "momentum")
    allocated = report.input_bytes + sum(m.output_bytes for m in report.layers)
    assert 0 < report.activation_peak_bytes < allocated  # liveness frees tensors
    assert report.inference_bytes == (report.param_bytes + report.buffer_bytes
                                      + report.activation_peak_bytes)
    assert report.saved_bytes == sum(m.saved_bytes for m in report.layers)
    assert report.forward_peak_bytes >= report.saved_bytes
    assert report.backward_macs <= 2 * report.forward_macs
    assert report.optimizer_bytes == report.gradient_bytes == a.totals.trainable_params * 4


def test_resnet50_peak_is_inside_the_first_projection_block():
    """Batch 32, fp32: while layer1.0's projection batch norm runs, the main path's bn3 output,
    the projection conv's output and the batch norm's output are live: 3 × 256·56·56·32·4 B,
    the block's input (64·56·56·32·4 B: the block's forward holds its argument until it
    returns) and the input batch the caller holds, 3·224·224·32·4 B."""
    report = memory(analyze(load_spec("resnet50"), batch=32))
    assert report.activation_peak_at == "layer1.0.downsample.1"
    assert report.activation_peak_bytes == (3 * 256 * 56 * 56 + 64 * 56 * 56
                                            + 3 * 224 * 224) * 32 * 4
    assert report.backward_macs == 2 * report.forward_macs - 118_013_952 * 32  # conv1 input grad


def test_cli_memory_json_and_table():
    result = runner.invoke(app, ["memory", "resnet18", "--batch", "4", "--optimizer", "adam",
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    report = memory(analyze(load_spec("resnet18"), batch=4), "adam")
    assert data["inference"]["activation_peak_bytes"] == report.activation_peak_bytes
    assert data["training"]["total_bytes"] == report.training_bytes
    assert data["training"]["optimizer_bytes"] == 2 * data["training"]["gradient_bytes"]
    assert data["training"]["macs"] == report.forward_macs + report.backward_macs
    assert len(data["layers"]) == len(report.layers) and data["assumptions"]
    result = runner.invoke(app, ["memory", "resnet18", "--no-layers"])
    assert result.exit_code == 0 and "Inference" in result.stdout and "Training" in result.stdout
    for fmt in ("csv", "markdown"):
        assert runner.invoke(app, ["memory", "alexnet", "-f", fmt]).exit_code == 0
    assert runner.invoke(app, ["memory", "alexnet", "--optimizer", "lamb"]).exit_code == 2


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_kind_declares_what_backward_keeps(kind):
    # the rule lives with the kind (cnncalc/layers.py); a new kind saves its input by default
    rule = REGISTRY[kind]
    shape = (4, 6, 6) if 3 in rule.accepts else (4,)
    from cnncalc.fields import broadcast, is_per_axis

    cfg = {name: f.default for name, f in rule.fields.items() if not f.required}
    cfg = {**cfg, "size": 3, "groups": 2, "p": 0.1, "stop": 2, "kernel": 2, "out": 4}
    if kind == "upsample":
        cfg["size"] = None
        cfg["scale"] = 2
    cfg = {name: broadcast(value, 2, name) if name in rule.fields and is_per_axis(
        rule.fields[name].parse) else value for name, value in cfg.items()}
    cfg = rule.finish(cfg)
    x = (shape, shape) if rule.arity != 1 else shape  # a merge takes its inputs' shapes
    saved = rule.saved_for_backward(cfg, x, shape)
    assert all(s.what in ("input", "output") or s.elements > 0 for s in saved), saved
    assert rule.view_at_inference or not rule.view_in_training  # a training view is one at inference too


def test_memory_refuses_counts_of_another_convention():
    from cnncalc.conventions import apply

    with pytest.raises(OptionError, match="plain multiply-adds"):
        memory(apply(analyze(load_spec("lenet5")), "flops"))


def test_mixed_precision_keeps_parameters_gradients_and_state_in_fp32():
    # lenet5 in bf16 with fp32 weights (autocast): 61,706 params, 0 buffers, all trainable
    analysis = analyze(load_spec("lenet5"), dtype="bf16")
    plain, mixed = memory(analysis, "adam"), memory(analysis, "adam", param_dtype="fp32")
    assert mixed.param_bytes == 61_706 * 4 and plain.param_bytes == 61_706 * 2
    assert mixed.gradient_bytes == 61_706 * 4
    assert mixed.optimizer_bytes == 2 * 61_706 * 4  # Adam's two moments
    # autocast: the input batch stays fp32 (2 more bytes per element), c1 casts it to bf16 for
    # itself, and the bf16 copies of the conv and linear weights are cached for the pass
    weights = 2 * sum(r.params for r in analysis.rows if r.leaf and r.kind in ("conv", "linear"))
    assert mixed.autocast_weight_bytes == weights and plain.autocast_weight_bytes == 0
    assert mixed.input_bytes == 2 * plain.input_bytes


def test_inplace_relu_allocates_nothing_at_inference():
    """conv → relu (inplace) on 1×4×4, 2 maps: the ReLU overwrites the conv's output, so the
    peak is x + c = 64 + 128 B; out of place it is x + c + r = 320 B."""
    text = ("input: 1x4x4\nlayers:\n  - conv: {name: conv, out: 2, kernel: 3, padding: 1}\n"
            "  - relu: {name: relu, inplace: %s}\n")
    assert memory(analyze(_spec(text % "true"))).activation_peak_bytes == 192
    assert memory(analyze(_spec(text % "false"))).activation_peak_bytes == 320


def test_keep_grads_counts_every_gradient_from_the_start():
    a = analyze(load_spec("vgg11"))
    freed, kept = memory(a), memory(a, set_to_none=False)
    assert freed.set_to_none and not kept.set_to_none
    assert kept.training_bytes > freed.training_bytes
    result = runner.invoke(app, ["memory", "vgg11", "--keep-grads", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["training"]["total_bytes"] == kept.training_bytes


def test_layer_entries_made_without_init_are_complete_and_frozen():
    import dataclasses

    from cnncalc.memory import LayerMemory

    names = {f.name for f in dataclasses.fields(LayerMemory)}
    for spec_name in ("googlenet", "resnet50"):
        report = memory(analyze(load_spec(spec_name)), "adam")
        for layer in report.layers:
            assert set(vars(layer)) == names
            assert layer == LayerMemory(**{name: getattr(layer, name) for name in names})
    with pytest.raises(dataclasses.FrozenInstanceError):
        layer.saved_bytes = 0
