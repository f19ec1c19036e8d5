"""Spec → ``torch.nn.Module``. One builder per layer kind, keyed by the kind's registry name;
composition (sequence, concat, residual, head) maps to the small containers below. Submodule
names are the spec's dotted paths, so ``model.get_submodule("layer3.2.conv1")`` is that row.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..engine import analyze
from ..layers import Config, Shape, padding_per_axis
from ..spec import Concat as ConcatNode
from ..spec import Leaf, Node, Residual as ResidualNode, Sequence, Spec

Builder = Callable[[Config, Shape], nn.Module]
BUILDERS: dict[str, Builder] = {}


def builds(*kinds: str) -> Callable[[Builder], Builder]:
    """Register a builder for layer kinds (the names in ``cnncalc.layers.REGISTRY``)."""

    def register(builder: Builder) -> Builder:
        for kind in kinds:
            if kind in BUILDERS:
                raise ValueError(f"a torch builder for {kind!r} is registered twice")
            BUILDERS[kind] = builder
        return builder

    return register


# --------------------------------------------------------------------------------------------
# Containers


class Chain(nn.Sequential):
    """Layers in order, under their spec names."""


class Concat(nn.Module):
    """Branches on the same input, concatenated along channels."""

    def __init__(self, branches: list[tuple[str, nn.Module]]):
        super().__init__()
        for name, module in branches:
            self.add_module(name, module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.children()], dim=1)


class Residual(nn.Module):
    """``post(body(x) + shortcut(x))``; the shortcut is the identity when absent."""

    def __init__(self, body: list[tuple[str, nn.Module]], shortcut: tuple[str, nn.Module] | None,
                 post: list[tuple[str, nn.Module]]):
        super().__init__()
        for name, module in [*body, *([shortcut] if shortcut else []), *post]:
            self.add_module(name, module)
        self.body_names = [name for name, _ in body]
        self.shortcut_name = shortcut[0] if shortcut else None
        self.post_names = [name for name, _ in post]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for name in self.body_names:
            y = self._modules[name](y)
        y = y + (self._modules[self.shortcut_name](x) if self.shortcut_name else x)
        for name in self.post_names:
            y = self._modules[name](y)
        return y


class Head(nn.Sequential):
    """A side head: runs in training (or when ``always``), keeps its output in ``self.output``
    and passes its input on unchanged, so the main path does not see it."""

    always: bool = False
    output: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        self.output = super().forward(x) if (self.training or self.always) else None
        return x


class Network(nn.Module):
    """The root. With ``collect_heads`` it returns ``(main output, head outputs…)``."""

    collect_heads: bool = False

    def __init__(self, items: list[tuple[str, nn.Module]]):
        super().__init__()
        for name, module in items:
            self.add_module(name, module)

    def heads(self) -> list[Head]:
        return [m for m in self.modules() if isinstance(m, Head)]

    def forward(self, x: torch.Tensor) -> Any:
        for module in self.children():
            x = module(x)
        if not self.collect_heads:
            return x
        return (x, *(h.output for h in self.heads() if h.output is not None))


# --------------------------------------------------------------------------------------------
# Layer kinds


class PaddedConv(nn.Module):
    """A convolution with unequal padding before and after ('same' at stride > 1, even kernels)."""

    def __init__(self, pad: tuple[int, int, int, int], conv: nn.Conv2d):
        super().__init__()
        self.pad = nn.ZeroPad2d(pad)
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pad(x))


class TableConv(nn.Module):
    """A convolution with a partial connection table: output map j sees only the input maps
    ``table[j]`` (LeNet-5's C3), as one small convolution per output map."""

    def __init__(self, table: tuple[tuple[int, ...], ...], make: Callable[[int], nn.Conv2d]):
        super().__init__()
        self.table = [list(row) for row in table]
        for j, row in enumerate(table):
            self.add_module(str(j), make(len(row)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([conv(x[:, row]) for row, conv in zip(self.table, self.children())], dim=1)


@builds("conv")
def _conv(cfg: Config, x: Shape) -> nn.Module:
    (top, bottom), (left, right) = padding_per_axis(cfg, x)
    symmetric = top == bottom and left == right

    def make(in_channels: int, out_channels: int, groups: int) -> nn.Conv2d:
        return nn.Conv2d(in_channels, out_channels, cfg["kernel"], cfg["stride"],
                         (top, left) if symmetric else 0, cfg["dilation"], groups, cfg["bias"])

    if cfg["connections"] is not None:
        module: nn.Module = TableConv(cfg["connections"], lambda n: make(n, 1, 1))
    else:
        module = make(x[0], cfg["out"], cfg["groups"])
    return module if symmetric else PaddedConv((left, right, top, bottom), module)


@builds("linear")
def _linear(cfg: Config, x: Shape) -> nn.Module:
    return nn.Linear(x[0], cfg["out"], bias=cfg["bias"])


class RBF(nn.Module):
    """Euclidean RBF units: y_j = Σ_i (x_i − w_ji)², computed as |x|² − 2·x·w_j + |w_j|²."""

    def __init__(self, features: int, units: int, trainable: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(units, features), requires_grad=trainable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        return (x * x).sum(1, keepdim=True) - 2 * torch.matmul(x, w.t()) + (w * w).sum(1)


@builds("rbf")
def _rbf(cfg: Config, x: Shape) -> nn.Module:
    return RBF(x[0], cfg["out"], cfg["trainable"])


@builds("maxpool")
def _maxpool(cfg: Config, x: Shape) -> nn.Module:
    return nn.MaxPool2d(cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"],
                        ceil_mode=cfg["ceil_mode"])


@builds("avgpool")
def _avgpool(cfg: Config, x: Shape) -> nn.Module:
    return nn.AvgPool2d(cfg["kernel"], cfg["stride"], cfg["padding"], ceil_mode=cfg["ceil_mode"],
                        count_include_pad=cfg["count_include_pad"])


class Subsample(nn.Module):
    """LeNet-5 (1998) subsampling: window sum × a trainable coefficient + a bias, per map. The
    multiply is a depthwise 1×1 convolution, so counters see one MAC per output."""

    def __init__(self, channels: int, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.weight = nn.Parameter(torch.ones(channels, 1, 1, 1))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.cfg["kernel"]
        # divisor 1: the plain sum, also for a window that hangs past the edge under ceil_mode
        # (avg_pool2d × K_h·K_w would scale those by the full window, not what they cover)
        window_sum = F.avg_pool2d(x, k, self.cfg["stride"], self.cfg["padding"],
                                  ceil_mode=self.cfg["ceil_mode"], divisor_override=1)
        return F.conv2d(window_sum, self.weight, self.bias, groups=x.shape[1])


@builds("subsample")
def _subsample(cfg: Config, x: Shape) -> nn.Module:
    return Subsample(x[0], cfg)


@builds("adaptive_avgpool")
def _adaptive_avgpool(cfg: Config, x: Shape) -> nn.Module:
    return nn.AdaptiveAvgPool2d(cfg["output"])


@builds("adaptive_maxpool")
def _adaptive_maxpool(cfg: Config, x: Shape) -> nn.Module:
    return nn.AdaptiveMaxPool2d(cfg["output"])


@builds("global_avgpool")
def _global_avgpool(cfg: Config, x: Shape) -> nn.Module:
    return nn.AdaptiveAvgPool2d(1)


@builds("flatten")
def _flatten(cfg: Config, x: Shape) -> nn.Module:
    return nn.Flatten()


@builds("batchnorm")
def _batchnorm(cfg: Config, x: Shape) -> nn.Module:
    norm = nn.BatchNorm2d if len(x) == 3 else nn.BatchNorm1d
    return norm(x[0], affine=cfg["affine"], track_running_stats=cfg["track_running_stats"])


@builds("lrn")
def _lrn(cfg: Config, x: Shape) -> nn.Module:
    return nn.LocalResponseNorm(cfg["size"], cfg["alpha"], cfg["beta"], cfg["k"])


@builds("dropout")
def _dropout(cfg: Config, x: Shape) -> nn.Module:
    return nn.Dropout(cfg["p"])


@builds("relu")
def _relu(cfg: Config, x: Shape) -> nn.Module:
    return nn.ReLU(inplace=cfg.get("inplace", False))


@builds("leaky_relu")
def _leaky_relu(cfg: Config, x: Shape) -> nn.Module:
    return nn.LeakyReLU(cfg["slope"])


_ELEMENTWISE: dict[str, Callable[[], nn.Module]] = {
    "relu6": nn.ReLU6, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU,
    "hardswish": nn.Hardswish, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
    "softmax": lambda: nn.Softmax(dim=1), "log_softmax": lambda: nn.LogSoftmax(dim=1),
    "identity": nn.Identity,
}
for _kind, _factory in _ELEMENTWISE.items():
    builds(_kind)(lambda cfg, x, factory=_factory: factory())


# --------------------------------------------------------------------------------------------
# Specs


def _module(node: Node, inputs: dict[str, Shape]) -> nn.Module:
    if isinstance(node, Leaf):
        return BUILDERS[node.kind](node.config, inputs[node.path])
    if isinstance(node, Sequence):
        items = OrderedDict((item.name, _module(item, inputs)) for item in node.items)
        return Head(items) if node.side else Chain(items)
    if isinstance(node, ConcatNode):
        return Concat([(b.name, _module(b, inputs)) for b in node.branches])
    if isinstance(node, ResidualNode):
        shortcut = (node.shortcut.name, _module(node.shortcut, inputs)) if node.shortcut else None
        return Residual([(n.name, _module(n, inputs)) for n in node.body], shortcut,
                        [(n.name, _module(n, inputs)) for n in node.post])
    raise TypeError(f"cannot build {type(node).__name__}")  # pragma: no cover


def build(spec: Spec, input: Any = None) -> Network:
    """Build ``spec`` for an input shape (default: the spec's). Weights are torch's defaults."""
    analysis = analyze(spec, input)
    inputs = {row.path: row.input for row in analysis.rows}
    return Network([(item.name, _module(item, inputs)) for item in spec.root.items])
