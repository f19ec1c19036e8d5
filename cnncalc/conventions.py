"""Counting conventions: the ways people count the "FLOPs" of a network, as exact integers.

Every CNN counter disagrees with the others because each counts different operators, and some
count them differently: multiply-adds or FLOPs, bias adds or not, batch norm, pooling, adaptive
pooling, activations. A :class:`Convention` is one such rule set, written per layer kind, so
that any spec can be counted the way a given tool counts it, and :func:`reconcile` can say, per
operator, where two counts differ and why.

``macs`` (the default) is the engine's own count. ``flops`` is 2 × MACs. ``fvcore``,
``torchinfo``, ``ptflops`` and ``thop`` reproduce the total that tool prints for the cnncalc torch
backend's model of the spec (and for torchvision's ResNet and VGG, which count the same), for the
tool version in :data:`TOOL_VERSIONS`, learned from the tool's source and checked against the real
tool in ``tests/test_conventions.py``. docs/counting.md is the reference.

Pure Python: nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from math import prod
from typing import Callable

from .engine import Analysis, Row, Totals
from .errors import OptionError
from .graph import Op
from .spec import Leaf  # the rules read kind and config, which graph ops share

# The versions whose rules are reproduced here (checked against these, with torch 2.13.0).
TOOL_VERSIONS = {
    "fvcore": "0.1.5.post20221221",
    "torchinfo": "1.8.0",
    "ptflops": "0.7.5",
    "thop": "0.1.1.post2209072238",
}

# One layer's count under a convention: {operator: count for the whole batch}. Operators are the
# layer kind ("conv", "batchnorm", "relu", …), with " bias" for a conv's or linear layer's bias
# adds and " matmul" / " pooling" for the parts of composite layers a tool counts apart.
Counts = dict[str, int]
Rule = Callable[[Leaf, Row, int], Counts]

@dataclass(frozen=True)
class Convention:
    """A named way of counting. ``count(leaf, row, batch)`` gives one layer's counts for the
    batch; ``why`` says, per operator, how the convention counts it (for reconcile)."""

    name: str
    unit: str  # what its numbers are called: "MACs", "FLOPs", "flops (fvcore)" …
    summary: str  # one line: what it counts
    tool: str = ""  # "fvcore 0.1.5.post20221221", empty for macs and flops
    call: str = ""  # how the tool was run to get the total this reproduces
    count: Rule = field(default=lambda leaf, row, batch: {}, repr=False, compare=False)
    why: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def description(self) -> str:
        text = f"{self.name}: {self.summary}"
        return f"{text} ({self.tool})" if self.tool else text


# --------------------------------------------------------------------------------------------
# Shape helpers. ``row.input`` / ``row.output`` are per sample.


def _n_in(row: Row) -> int:
    return prod(row.input)


def _n_out(row: Row) -> int:
    return prod(row.output)


def _bias(leaf: Leaf, row: Row, batch: int) -> int:
    """One add per output element when the layer has a bias."""
    return batch * _n_out(row) if leaf.config.get("bias", False) else 0


def _affine(leaf: Leaf) -> bool:
    return bool(leaf.config.get("affine", True))


def _nonzero(counts: Counts) -> Counts:
    return {k: v for k, v in counts.items() if v}


# --------------------------------------------------------------------------------------------
# macs and flops


def _count_macs(leaf: Leaf, row: Row, batch: int) -> Counts:
    return _nonzero({leaf.kind: row.macs})


def _count_flops(leaf: Leaf, row: Row, batch: int) -> Counts:
    return _nonzero({leaf.kind: 2 * row.macs})


_MAC_WHY = {
    "conv": "one per multiply-accumulate: H_out·W_out·out·(in/groups)·K_h·K_w per sample",
    "linear": "one per multiply-accumulate: in·out per sample",
    "subsample": "one multiply per output (the map's coefficient); the window sum is pooling",
    "rbf": "one squared-difference accumulate per centre coordinate: in·out",
    "conv_transpose": "one per multiply-accumulate: every input position times each weight, "
                      "∏I·(in/groups)·out·∏K per sample",
}


def _transposed_weights(leaf: Leaf, row: Row) -> int:
    """A transposed conv's weights without bias, (C_in/g)·out·∏K."""
    cfg = leaf.config
    return row.input[0] // cfg["groups"] * cfg["out"] * prod(cfg["kernel"])


def _spatial_out(row: Row) -> int:
    return prod(row.output[1:])


# --------------------------------------------------------------------------------------------
# fvcore: FlopCountAnalysis(model.eval(), x).total(); a jit trace, counted per aten op.


def _count_fvcore(leaf: Leaf, row: Row, batch: int) -> Counts:
    kind = leaf.kind
    if leaf.kind in _FVCORE_MODERN:  # the modern kinds and merges, below
        return _FVCORE_MODERN[leaf.kind](leaf, row, batch)
    if kind in ("conv", "linear", "subsample", "conv_transpose"):
        # aten::_convolution: batch·prod(weight shape)·H_out·W_out, no bias (transposed: the
        # input's H·W instead, as the row's MACs count them); aten::linear:
        # prod(input)·out, no bias; subsample's 1×1 depthwise conv: one per output.
        return _nonzero({kind: row.macs})
    if kind == "rbf":  # aten::matmul of the batch with the centres; the squares are not counted
        return {"rbf matmul": row.macs}
    if kind == "batchnorm":
        # Eval mode uses the running statistics: 2 per element with affine (1 without). Without
        # running statistics batch norm runs in training mode, counted 5 (4) per element.
        uses_batch_stats = not leaf.config.get("track_running_stats", True)
        per = (5 if _affine(leaf) else 4) if uses_batch_stats else (2 if _affine(leaf) else 1)
        return {kind: per * batch * _n_in(row)}
    if kind in ("adaptive_avgpool", "global_avgpool") and len(row.input) == 3:
        # aten::adaptive_avg_pool2d: 1 per input (fvcore has no handle for the 1-D and 3-D ops)
        return {kind: batch * _n_in(row)}
    if kind == "upsample" and len(row.input) == 3:
        # aten::upsample_nearest2d 1, aten::upsample_bilinear2d 4 per output element; the 1-D
        # and 3-D upsampling ops have no handle
        per = {"nearest": 1, "bilinear": 4}.get(leaf.config["mode"], 0)
        return _nonzero({kind: per * batch * _n_out(row)})
    return {}


_FVCORE_WHY = {
    "conv": "multiply-adds, bias not counted",
    "linear": "multiply-adds (aten::linear), bias not counted",
    "subsample": "its 1×1 depthwise convolution: one per output",
    "rbf": "the matmul with the centres (in·out); squares and sums not counted",
    "rbf matmul": "the matmul with the centres (in·out); squares and sums not counted",
    "batchnorm": "2 per input element in eval mode (1 without affine); 5 (4) in training mode",
    "adaptive_avgpool": "1 per input element (aten::adaptive_avg_pool2d)",
    "global_avgpool": "1 per input element (aten::adaptive_avg_pool2d)",
    "conv_transpose": "multiply-adds (∏ weight shape · ∏ input size), bias not counted",
    "upsample": "2-D only: 1 per output element for nearest, 4 for bilinear",
    "_others": "activations, padding, cropping, max/avg pooling, LRN, dropout, adds and concatenation not counted "
               "(no handle for those aten ops)",
}


# --------------------------------------------------------------------------------------------
# torchinfo: summary(model, input_size=(batch, C, H, W)).total_mult_adds. Per leaf module
# call, from its parameters named weight and bias: a class whose name contains "Conv" counts
# params × batch × H_out·W_out, any other counts params × batch. Modules without parameters
# count nothing.


def _count_torchinfo(leaf: Leaf, row: Row, batch: int) -> Counts:
    """torchinfo counts, per leaf module with parameters, its parameters × output positions for
    conv and linear (the multiply-adds, and the bias once per output element), and its parameters
    once per sample for the others (batch norm, rbf, subsample)."""
    kind = leaf.kind
    if leaf.kind in _TORCHINFO_MODERN:  # the modern kinds and merges, below
        return _TORCHINFO_MODERN[leaf.kind](leaf, row, batch)
    if kind in ("conv", "linear"):
        return _nonzero({kind: row.macs, f"{kind} bias": _bias(leaf, row, batch)})
    if kind == "conv_transpose":  # a "Conv" class: parameters × output positions
        positions = batch * _spatial_out(row)
        return _nonzero({kind: _transposed_weights(leaf, row) * positions,
                         "conv_transpose bias": _bias(leaf, row, batch)})
    return _nonzero({kind: batch * row.params})


_TORCHINFO_WHY = {
    "conv": "(weights + bias) × H_out·W_out per sample: multiply-adds",
    "conv bias": "bias × H_out·W_out per sample: one add per output element",
    "linear": "weights per sample: multiply-adds",
    "linear bias": "bias per sample: one add per output feature",
    "batchnorm": "its parameters (2C) once per sample, not per element",
    "rbf": "its parameters (in·out) per sample",
    "subsample": "its parameters (2C) once per sample",
    "conv_transpose": "weights × H_out·W_out per sample (a Conv class: output positions)",
    "conv_transpose bias": "bias × H_out·W_out per sample: one add per output element",
    "_others": "modules without parameters (activations, pooling, resampling, dropout, LRN) and the "
               "residual adds count nothing",
}


# --------------------------------------------------------------------------------------------
# ptflops: get_model_complexity_info(model, (C, H, W), as_strings=False) with its default
# pytorch backend: forward hooks on known module classes, plus patches of torch.nn.functional
# and of torch/Tensor matmul, mul and add (count_functional=True). A module whose forward calls
# a patched functional is counted twice (nn.ReLU, nn.MaxPool2d, nn.AdaptiveAvgPool2d, …).
# ptflops reports per image (batch 1); cnncalc multiplies by the batch.

_PTFLOPS_TWICE = {"relu", "elu", "gelu"}  # module hook (output numel) + F.relu/F.elu/F.gelu
_PTFLOPS_ONCE_OUT = {"relu6", "leaky_relu"}  # module hook only (F.hardtanh, F.leaky_relu unpatched)
_PTFLOPS_FUNCTIONAL_ONLY = {"silu", "softmax"}  # no module hook; F.silu / F.softmax patched


def _count_ptflops(leaf: Leaf, row: Row, batch: int) -> Counts:
    if leaf.kind in _PTFLOPS_MODERN:  # the modern kinds and merges, below
        return _PTFLOPS_MODERN[leaf.kind](leaf, row, batch)
    kind, n_in, n_out = leaf.kind, _n_in(row), _n_out(row)
    if kind in ("conv", "conv_transpose"):  # transposed: per input position, as the row's MACs
        return _nonzero({kind: row.macs, f"{kind} bias": _bias(leaf, row, batch)})
    if kind == "upsample":
        # the nn.Upsample hook: output elements; the patched F.interpolate: output elements for
        # a size, else input elements × ∏ of the scales each truncated to an int
        if leaf.config["scale"] is None:
            functional = _n_out(row)
        else:
            functional = _n_in(row) * prod(int(s) for s in leaf.config["scale"])
        return _nonzero({kind: batch * (_n_out(row) + functional)})
    if kind == "linear":
        return _nonzero({kind: row.macs, "linear bias": _bias(leaf, row, batch)})
    if kind == "batchnorm":
        return {kind: (2 if _affine(leaf) else 1) * batch * n_in}
    if kind in _PTFLOPS_TWICE:
        return {kind: 2 * batch * n_out}
    if kind in _PTFLOPS_ONCE_OUT or kind in _PTFLOPS_FUNCTIONAL_ONLY:
        return {kind: batch * n_out}
    if kind in ("maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool", "global_avgpool"):
        return {kind: 2 * batch * n_in}  # module hook + patched F.*_pool2d, input elements each
    if kind == "subsample":  # F.avg_pool2d (patched) on the input; its F.conv2d is not patched
        return {"subsample pooling": batch * n_in}
    if kind == "rbf":  # torch.matmul (patched): batch·in·out
        return {"rbf matmul": row.macs}
    if kind == "lrn":
        # F.local_response_norm: input.mul(input), avg_pool3d over the channel-padded squares
        # (C + size − 1 channels), .mul(alpha), .add(k): all patched, numel each.
        c, h, w = row.input
        return {kind: batch * (3 * n_in + (c + leaf.config["size"] - 1) * h * w)}
    return {}


_PTFLOPS_WHY = {
    "conv": "multiply-adds", "conv bias": "one add per output element",
    "conv_transpose": "multiply-adds, per input position",
    "conv_transpose bias": "one add per output element",
    "upsample": "the module hook (output elements) and the patched F.interpolate (output "
                "elements for a size; input elements × ∏ int(scale) for a scale)",
    "linear": "multiply-adds", "linear bias": "one add per output feature",
    "batchnorm": "2 per input element (1 without affine)",
    "relu": "2 per element: the nn.ReLU hook and the patched F.relu it calls",
    "elu": "2 per element: the module hook and the patched F.elu",
    "gelu": "2 per element: the module hook and the patched F.gelu",
    "relu6": "1 per element (module hook; F.hardtanh is not patched)",
    "leaky_relu": "1 per element (module hook; F.leaky_relu is not patched)",
    "silu": "1 per element (patched F.silu; no module hook)",
    "softmax": "1 per element (patched F.softmax; no module hook)",
    "maxpool": "2 per input element: the module hook and the patched F.max_pool2d",
    "avgpool": "2 per input element: the module hook and the patched F.avg_pool2d",
    "adaptive_avgpool": "2 per input element: the module hook and the patched "
                        "F.adaptive_avg_pool2d",
    "adaptive_maxpool": "2 per input element: the module hook and the patched "
                        "F.adaptive_max_pool2d",
    "global_avgpool": "2 per input element: the module hook and the patched "
                      "F.adaptive_avg_pool2d",
    "subsample pooling": "1 per input element (its patched F.avg_pool2d)",
    "rbf matmul": "the patched torch.matmul: in·out",
    "lrn": "3 per input element (mul, mul, add) + the channel-padded avg_pool3d input",
    "_others": "residual adds (x + y is not the patched torch.add), concatenation, dropout, "
               "tanh, sigmoid, hardswish and log-softmax not counted",
}


# --------------------------------------------------------------------------------------------
# thop: profile(model, inputs=(x,)) → (ops, params). Forward hooks on known module classes
# (exact type), no functional patching; unknown modules count 0.


def _count_thop(leaf: Leaf, row: Row, batch: int) -> Counts:
    kind = leaf.kind
    if leaf.kind in _THOP_MODERN:  # the modern kinds and merges, below
        return _THOP_MODERN[leaf.kind](leaf, row, batch)
    if kind in ("conv", "linear"):  # output numel × (in/groups)·K_h·K_w; in × output numel
        return _nonzero({kind: row.macs})
    if kind == "conv_transpose":  # count_convNd: output numel × (in/groups)·∏K, as for a conv
        cfg = leaf.config
        return _nonzero({kind: batch * _n_out(row) * (row.input[0] // cfg["groups"])
                         * prod(cfg["kernel"])})
    if kind == "upsample":  # calculate_upsample: per output element; trilinear not implemented
        per = {"nearest": 1, "linear": 5, "bilinear": 11}.get(leaf.config["mode"], 0)
        return _nonzero({kind: per * batch * _n_out(row)})
    if kind == "batchnorm":  # calculate_norm: 2 per element, doubled with affine
        return {kind: (4 if _affine(leaf) else 2) * batch * _n_in(row)}
    if kind == "avgpool":
        return {kind: batch * _n_out(row)}
    if kind in ("adaptive_avgpool", "global_avgpool"):
        # (prod(input size / output size, as floats) + 1) × output numel, truncated to an int,
        # computed in IEEE doubles exactly as thop does.
        kernel = 1.0
        for size, out in zip(row.input[1:], row.output[1:]):
            kernel *= size / out
        return {kind: int((kernel + 1) * (batch * _n_out(row)))}
    if kind == "softmax":  # exp, sum and divide over the C features: 3C − 1 per position
        c = row.input[0]
        return {kind: batch * (_n_in(row) // c) * (3 * c - 1)}
    return {}


_THOP_WHY = {
    "conv": "multiply-adds, bias not counted", "linear": "multiply-adds, bias not counted",
    "batchnorm": "4 per input element with affine (2 without)",
    "avgpool": "1 per output element",
    "adaptive_avgpool": "(window area + 1) per output element, window = input/output size "
                        "(as floats)",
    "global_avgpool": "(H·W + 1) per output element",
    "softmax": "3C − 1 per position (exp, sum, divide)",
    "conv_transpose": "output elements × (in/groups)·∏K, bias not counted",
    "upsample": "per output element: nearest 1, linear 5, bilinear 11 (trilinear not counted)",
    "_others": "ReLU and leaky ReLU are registered as 0; max pooling, dropout, other "
               "activations, LRN, residual adds and custom modules count 0",
}


# --------------------------------------------------------------------------------------------
# The modern kinds and the merges (cnncalc/layers.py's last section), as each tool counts the
# cnncalc torch backend's module for them (tests/test_conventions_modern.py runs the tools).
# None of them has multiply-adds under macs and flops. Merges (add, mul, concat) count 0 in
# every tool: fvcore has no handle for aten::add/aten::mul and ignores aten::cat, ptflops patches
# torch.add/mul and Tensor.add/mul but not the ``a + b`` / ``a * b`` operators the modules use,
# thop and torchinfo only see modules with hooks or parameters.

_CountRule = Callable[[Leaf, Row, int], Counts]


def _per_input_element(per_affine: int, per_plain: int) -> _CountRule:
    """``per_affine`` (with affine) or ``per_plain`` counts per input element."""

    def rule(leaf: Leaf, row: Row, batch: int) -> Counts:
        return {leaf.kind: (per_affine if _affine(leaf) else per_plain) * batch * _n_in(row)}

    return rule


def _per_element(times: int, of: Callable[[Row], int] = _n_out) -> _CountRule:
    def rule(leaf: Leaf, row: Row, batch: int) -> Counts:
        return {leaf.kind: times * batch * of(row)}

    return rule


def _nothing(leaf: Leaf, row: Row, batch: int) -> Counts:
    return {}


def _layernorm_module(on_last: _CountRule) -> _CountRule:
    """A tool that hooks nn.LayerNorm by exact type: ``over: last`` builds one; ``over:
    channels`` builds ChannelsLayerNorm (as torchvision's LayerNorm2d), which it does not see."""

    def rule(leaf: Leaf, row: Row, batch: int) -> Counts:
        return on_last(leaf, row, batch) if leaf.config.get("over") == "last" else {}

    return rule


# fvcore: aten::layer_norm, aten::group_norm and aten::instance_norm by norm_flop_counter: 5 per
# input element with a weight, 4 without; nothing else here has a handle.
_FVCORE_MODERN: dict[str, _CountRule] = {
    "layernorm": _per_input_element(5, 4),
    "groupnorm": _per_input_element(5, 4),
    "instancenorm": _per_input_element(5, 4),
}
_FVCORE_WHY.update({
    "layernorm": "5 per input element with a weight, 4 without (aten::layer_norm)",
    "groupnorm": "5 per input element with affine, 4 without (aten::group_norm)",
    "instancenorm": "5 per input element with affine, 4 without (aten::instance_norm)",
})

# torchinfo: parameters named weight or bias, once per sample: the norms' and prelu's. The layer
# scale's γ is named layer_scale (as in torchvision's CNBlock), so torchinfo does not count it.
_TORCHINFO_MODERN: dict[str, _CountRule] = {
    "layer_scale": _nothing,
    **{k: _nothing for k in ("add", "mul", "concat")},
}
_TORCHINFO_WHY.update({
    "layernorm": "its parameters (weight and bias) once per sample",
    "groupnorm": "its parameters (2C) once per sample",
    "instancenorm": "its parameters (2C with affine) once per sample",
    "prelu": "its slopes (a parameter named weight) once per sample",
})

# ptflops: bn_flops_counter_hook on nn.GroupNorm, nn.InstanceNorm*d and nn.LayerNorm: input
# elements, doubled when the module has an ``affine`` attribute that is true (nn.LayerNorm has
# elementwise_affine instead, so never doubled); nn.PReLU's hook (output elements) plus the
# patched F.prelu (input elements); nn.SiLU (swish) through the patched F.silu only.
_PTFLOPS_MODERN: dict[str, _CountRule] = {
    "layernorm": _layernorm_module(_per_element(1, _n_in)),
    "groupnorm": _per_input_element(2, 1),
    "instancenorm": _per_input_element(2, 1),
    "prelu": _per_element(2),
    "swish": _per_element(1),
    **{k: _nothing for k in ("add", "mul", "concat")},
}
_PTFLOPS_WHY.update({
    "layernorm": "over last: 1 per input element (nn.LayerNorm's hook; it has no `affine` "
                 "attribute, so never 2); over channels: 0 (not an nn.LayerNorm by type)",
    "groupnorm": "2 per input element with affine, 1 without (the batch-norm hook)",
    "instancenorm": "2 per input element with affine, 1 without (the batch-norm hook)",
    "prelu": "2 per element: the nn.PReLU hook and the patched F.prelu",
    "swish": "1 per element (patched F.silu; no module hook)",
})

# thop: count_normalization on nn.LayerNorm and nn.InstanceNorm*d: 2 per input element, doubled
# with affine or elementwise_affine (GroupNorm is not registered); count_prelu in eval mode: 1
# per input element.
_THOP_MODERN: dict[str, _CountRule] = {
    "layernorm": _layernorm_module(_per_input_element(4, 2)),
    "instancenorm": _per_input_element(4, 2),
    "prelu": _per_element(1, _n_in),
}
_THOP_WHY.update({
    "layernorm": "over last: 4 per input element with affine, 2 without (nn.LayerNorm); over "
                 "channels: 0 (not an nn.LayerNorm by type)",
    "instancenorm": "4 per input element with affine (2 without)",
    "prelu": "1 per input element (in eval mode)",
})

# A placeholder (an imported op with no kind, cnncalc import --allow-unknown) counts nothing in
# every convention: what the op costs is not known.
for _rules in (_FVCORE_MODERN, _TORCHINFO_MODERN, _PTFLOPS_MODERN, _THOP_MODERN):
    _rules["placeholder"] = _nothing
_PLACEHOLDER_WHY = "not counted: a placeholder for an op with no layer kind (its cost is unknown)"
for _why in (_FVCORE_WHY, _TORCHINFO_WHY, _PTFLOPS_WHY, _THOP_WHY):
    _why["placeholder"] = _PLACEHOLDER_WHY

_NOT_COUNTED = ("; nor mish, hardsigmoid, layer scale, slices, channel shuffle, drop path (the "
                "identity in eval mode) and the merges (add, mul, concat)")
for _why in (_FVCORE_WHY, _PTFLOPS_WHY, _THOP_WHY):
    _why["_others"] += _NOT_COUNTED
_TORCHINFO_WHY["_others"] += ("; the layer scale's γ is not named weight or bias, so not "
                              "counted either")


# --------------------------------------------------------------------------------------------
# The registry


CONVENTIONS: dict[str, Convention] = {c.name: c for c in (
    Convention(
        "macs", "MACs",
        "multiply-adds of conv and linear layers; bias, batch norm, pooling, activations and "
        "residual adds not counted (torchvision's published figures, the papers)",
        count=_count_macs, why=_MAC_WHY),
    Convention(
        "flops", "FLOPs",
        "2 × MACs: a multiply and an add per multiply-add (torch's FlopCounterMode, Darknet, "
        "TensorFlow's profiler)",
        count=_count_flops,
        why={k: "2 × " + v for k, v in _MAC_WHY.items()}),
    Convention(
        "fvcore", "flops (fvcore)",
        "fvcore's FlopCountAnalysis: conv and linear multiply-adds without bias, batch norm "
        "and adaptive average pooling",
        tool=f"fvcore {TOOL_VERSIONS['fvcore']}",
        call="FlopCountAnalysis(model.eval(), x).total()",
        count=_count_fvcore, why=_FVCORE_WHY),
    Convention(
        "torchinfo", "mult-adds (torchinfo)",
        "torchinfo's Total mult-adds: parameters × output positions per layer, so conv and "
        "linear multiply-adds with bias, and batch norm's 2C per sample",
        tool=f"torchinfo {TOOL_VERSIONS['torchinfo']}",
        call="summary(model, input_size=(batch, C, H, W)).total_mult_adds",
        count=_count_torchinfo, why=_TORCHINFO_WHY),
    Convention(
        "ptflops", "MACs (ptflops)",
        "ptflops' pytorch backend: conv and linear with bias, batch norm, and activations and "
        "pooling counted twice (module hook and patched functional)",
        tool=f"ptflops {TOOL_VERSIONS['ptflops']}",
        call="get_model_complexity_info(model, (C, H, W), as_strings=False)[0] × batch",
        count=_count_ptflops, why=_PTFLOPS_WHY),
    Convention(
        "thop", "MACs (thop)",
        "thop's profile: conv and linear multiply-adds without bias, batch norm at 4 per "
        "element, average and adaptive pooling",
        tool=f"thop {TOOL_VERSIONS['thop']}",
        call="profile(model, inputs=(x,))[0]",
        count=_count_thop, why=_THOP_WHY),
)}

DEFAULT = "macs"


def names() -> list[str]:
    return list(CONVENTIONS)


def get(name: str | Convention) -> Convention:
    if isinstance(name, Convention):
        return name
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise OptionError(
            f"unknown convention {name!r}; choose one of {', '.join(CONVENTIONS)}") from None


# --------------------------------------------------------------------------------------------
# Counting an analysis


def layers_by_path(analysis: Analysis) -> dict[str, Op]:
    """Every row op of the analysis's graph by its dotted path, its config as resolved for the
    analysis's input (what a convention's rule reads: ``kind`` and ``config``)."""
    assert analysis.graph is not None
    out: dict[str, Op] = {}
    for op in analysis.graph.ops:
        if op.row:
            out[op.path] = (op if not op.dynamic
                            else replace(op, config=analysis.configs[op.index]))
    return out


@dataclass(frozen=True)
class Count:
    """One convention applied to one analysis: the main-path total, per operator, per row."""

    convention: Convention
    total: int
    by_operator: dict[str, int]  # main path, in network order of first appearance
    by_path: dict[str, int]  # every row (leaves and groups; a group sums its same-path leaves)
    head_total: int  # side heads, apart (as head_macs)


def count(analysis: Analysis, convention: str | Convention = DEFAULT) -> Count:
    """Count ``analysis`` under ``convention`` (a name from :data:`CONVENTIONS` or an object)."""
    conv = get(convention)
    leaves = layers_by_path(analysis)
    per_leaf: dict[str, Counts] = {}
    for row in analysis.rows:
        if row.leaf:
            per_leaf[row.path] = conv.count(leaves[row.path], row, analysis.batch)
    by_operator: dict[str, int] = {}
    head_total = 0
    for row in analysis.rows:
        if not row.leaf:
            continue
        if row.head:
            head_total += sum(per_leaf[row.path].values())
            continue
        for op, n in per_leaf[row.path].items():
            by_operator[op] = by_operator.get(op, 0) + n
    by_path = {path: sum(counts.values()) for path, counts in per_leaf.items()}
    ops = analysis.graph.ops if analysis.graph is not None else []
    for group in (analysis.graph.groups if analysis.graph is not None else []):
        by_path[group.path] = sum(by_path[op.path] for op in ops[group.first:group.end]
                                  if op.row and op.head == group.head)
    return Count(conv, sum(by_operator.values()), by_operator, by_path, head_total)


def apply(analysis: Analysis, convention: str | Convention = DEFAULT) -> Analysis:
    """The analysis with every row's and the totals' ``macs`` counted under ``convention``
    (``analysis.convention`` names it), so tables, lists and comparisons show that count."""
    conv = get(convention)
    if conv.name == analysis.convention:
        return analysis
    if analysis.convention != DEFAULT:
        raise OptionError(f"the analysis is already counted as {analysis.convention!r}")
    result = count(analysis, conv)
    rows = [replace(r, macs=result.by_path[r.path]) for r in analysis.rows]
    totals: Totals = replace(analysis.totals, macs=result.total, head_macs=result.head_total)
    return replace(analysis, rows=rows, totals=totals, convention=conv.name)


# --------------------------------------------------------------------------------------------
# Reconciliation


@dataclass(frozen=True)
class Difference:
    """One operator where a convention's count differs from the baseline's."""

    operator: str
    count: int  # the convention's count for the operator
    baseline: int  # the baseline's
    why: str

    @property
    def delta(self) -> int:
        return self.count - self.baseline


@dataclass(frozen=True)
class Reconciled:
    """One convention's row in a reconciliation."""

    count: Count
    differences: list[Difference]

    @property
    def convention(self) -> Convention:
        return self.count.convention

    @property
    def summary(self) -> str:
        """'adds batchnorm 22,227,968; adaptive_avgpool 100,352' style text."""
        if not self.differences:
            return "same as the baseline"
        adds = [d for d in self.differences if d.baseline == 0]
        others = [d for d in self.differences if d.baseline != 0]
        parts = []
        if adds:
            parts.append("adds " + ", ".join(f"{d.operator} {d.count:,}" for d in adds))
        for d in others:
            sign = "+" if d.delta > 0 else "−"
            parts.append(f"{d.operator} {sign}{abs(d.delta):,}")
        return "; ".join(parts)


@dataclass(frozen=True)
class Reconciliation:
    """Every convention's total for one analysis, with the operators where each differs from
    the baseline (``macs``) and why."""

    analysis: Analysis
    baseline: str
    baseline_total: int
    rows: list[Reconciled]
    operators: list[str]  # every operator counted by any convention, in network order


def _why(conv: Convention, op: str) -> str:
    if op in conv.why:
        return conv.why[op]
    base = op.split(" ")[0]
    if base in conv.why:
        return conv.why[base]
    return conv.why.get("_others", "not counted")


def reconcile(analysis: Analysis, conventions: list[str] | None = None,
              baseline: str = DEFAULT) -> Reconciliation:
    """Count ``analysis`` under every convention (or those named) and explain each one's
    difference from ``baseline`` operator by operator."""
    chosen = [get(n) for n in (conventions or names())]
    base = count(analysis, baseline)
    counts = [count(analysis, c) for c in chosen]
    operators: list[str] = []
    for c in [base, *counts]:
        for op in c.by_operator:
            if op not in operators:
                operators.append(op)
    order = {op: i for i, op in enumerate(operators)}
    leaf_order: dict[str, int] = {}  # operator kinds in network order (the kind, not its label)
    for leaf in layers_by_path(analysis).values():
        leaf_order.setdefault(leaf.kind, len(leaf_order))
    operators.sort(key=lambda op: (leaf_order.get(op.split(" ")[0], len(leaf_order)), order[op]))
    rows = []
    for c in counts:
        diffs = []
        for op in operators:
            mine, theirs = c.by_operator.get(op, 0), base.by_operator.get(op, 0)
            if mine != theirs:
                why = _why(c.convention, op) if mine else "not counted"
                diffs.append(Difference(op, mine, theirs, why))
        rows.append(Reconciled(c, diffs))
    return Reconciliation(analysis, base.convention.name, base.total, rows, operators)


__all__ = [
    "CONVENTIONS", "Convention", "Count", "DEFAULT", "Difference", "Reconciled", "Reconciliation",
    "TOOL_VERSIONS", "apply", "count", "get", "layers_by_path", "names", "reconcile",
]
