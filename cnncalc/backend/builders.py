"""Spec → ``torch.nn.Module``. One builder per layer kind, keyed by the kind's registry name;
the network runs the spec's graph (cnncalc.graph) op by op, with every group a container of its
members. Submodule names are the spec's dotted paths, so ``model.get_submodule("layer3.2.conv1")``
is that row; a spec name that is already an attribute of nn.Module (``forward``, ``training``)
is registered as ``forward_``, and ``model.submodule(path)`` / ``model.torch_path(path)`` map
every spec path either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..engine import analyze
from ..errors import OptionError
from ..graph import GRAPH_INPUT, Graph
from ..layers import REGISTRY, Config, Shape, padding_per_axis
from ..spec import Spec

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
# The network: the graph's ops, run in order


class Block(nn.Module):
    """A group of the spec (sequence, branch, block instance, head, …): it only holds its
    members under their spec names, so module paths are the spec's paths. The network runs the
    layers itself, in the graph's order."""


@dataclass(frozen=True)
class _Step:
    tensor: int  # the op's index: its output's tensor id
    module: nn.Module | None  # None for the add/concat a residual or concat construct implies
    implied: str | None
    inputs: tuple[int, ...]
    head: bool


def _last_uses(graph: Graph, kept: set[int], heads: bool) -> dict[int, tuple[int, ...]]:
    """Per op, the tensors to drop once it has run: those it is the last to read (side heads'
    reads only when ``heads``: they run). The add of a residual and the concat of a concat
    construct also hold their block's input, as the block's forward would (the memory model,
    cnncalc.memory, assumes the same); outputs are kept."""
    last: dict[int, int] = {}
    for op in graph.ops:
        if op.head and not heads:
            continue
        reads = list(op.inputs)
        if op.implied is not None and op.group is not None:
            reads.append(graph.groups[op.group].input)
        for t in reads:
            last[t] = op.index
    frees: dict[int, list[int]] = {op.index: [] for op in graph.ops}
    for tensor, at in last.items():
        if tensor not in kept and tensor != GRAPH_INPUT:
            frees[at].append(tensor)
    return {k: tuple(v) for k, v in frees.items()}


class Network(nn.Module):
    """The root: runs the graph's ops in order. Side heads run in training (or with
    ``heads_always``); with ``collect_heads`` it returns ``(outputs…, head outputs…)``, else the
    output (a tuple when the spec has several). With ``record``, every tensor is kept in
    ``tensors`` (graph tensor id → tensor) for checks."""

    collect_heads: bool = False
    heads_always: bool = False
    record: bool = False

    def __init__(self, graph: Graph, modules: dict[int, nn.Module]):
        super().__init__()
        # the network's own attributes first, so that a spec name equal to one is escaped
        self._steps: list[_Step] = []
        self._outputs: tuple[int, ...] = ()
        self._head_outputs: tuple[int, ...] = ()
        self._frees: dict[bool, dict[int, tuple[int, ...]]] = {}
        self.tensors: dict[int, torch.Tensor] = {}
        self._spec_paths: dict[str, str] = {}
        blocks: dict[str, nn.Module] = {"": self}
        # spec path → torch module path: the same but where a spec name is already an
        # attribute of the container (forward, training, children, _steps…), which torch
        # refuses as a module name: that one is registered as name_ (name__, …)
        self._torch_paths: dict[str, str] = {"": ""}
        for group in graph.groups:
            block = Block()
            parent = graph.groups[group.parent].path if group.parent is not None else ""
            self._register(blocks[parent], parent, group.name, group.path, block)
            blocks[group.path] = block
        for op in graph.ops:
            if op.row:
                parent = graph.groups[op.group].path if op.group is not None else ""
                self._register(blocks[parent], parent, op.name, op.path, modules[op.index])
        self._spec_paths = {torch_path: path for path, torch_path in self._torch_paths.items()}
        self._steps = [_Step(op.index, modules.get(op.index), op.implied, op.inputs, op.head)
                       for op in graph.ops]
        self._outputs = graph.outputs
        self._head_outputs = tuple(g.output for g in graph.groups if g.side)
        kept = {*self._outputs, *self._head_outputs}
        self._frees = {heads: _last_uses(graph, kept, heads) for heads in (False, True)}

    def _register(self, container: nn.Module, parent: str, name: str, path: str,
                  module: nn.Module) -> None:
        attribute = name
        while attribute in container._modules or hasattr(container, attribute):
            attribute += "_"
        container.add_module(attribute, module)
        parent_torch = self._torch_paths[parent]
        self._torch_paths[path] = f"{parent_torch}.{attribute}" if parent_torch else attribute

    def torch_path(self, path: str) -> str:
        """The torch module path (``named_modules``, fvcore) of the row at spec ``path``."""
        return self._torch_paths[path]

    def spec_path(self, torch_path: str) -> str | None:
        """The spec path of the module at ``torch_path``, if it is a row's."""
        return self._spec_paths.get(torch_path)

    def submodule(self, path: str) -> nn.Module:
        """The module of the row at spec ``path`` (``get_submodule`` with the spec's names)."""
        return self.get_submodule(self._torch_paths[path])

    def forward(self, x: torch.Tensor) -> Any:
        values: dict[int, torch.Tensor] = {GRAPH_INPUT: x}
        heads = self.training or self.heads_always
        for step in self._steps:
            if step.head and not heads:
                continue
            args = [values[t] for t in step.inputs]
            if step.implied == "concat":
                values[step.tensor] = torch.cat(args, dim=1)
            elif step.implied == "residual":
                values[step.tensor] = args[0] + args[1]
            else:
                values[step.tensor] = step.module(*args)  # type: ignore[misc]
            if not self.record:  # drop what no later step reads, as eager code would
                for t in self._frees[heads][step.tensor]:
                    values.pop(t, None)
        self.tensors = values if self.record else {}
        outputs = tuple(values[t] for t in self._outputs)
        if self.collect_heads:
            return (*outputs, *(values[t] for t in self._head_outputs if t in values))
        return outputs[0] if len(outputs) == 1 else outputs


# --------------------------------------------------------------------------------------------
# Layer kinds


def _nd(x: Shape, modules: tuple[type, type, type]) -> type:
    """The torch class for the input's spatial rank: ``modules`` for 1-D, 2-D and 3-D."""
    return modules[len(x) - 2]


def _flat_padding(pads: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    """Per-axis (before, after) as F.pad wants it: the last axis first."""
    return tuple(p for before, after in reversed(pads) for p in (before, after))


class PaddedConv(nn.Module):
    """A convolution with unequal padding before and after ('same' at stride > 1, even kernels)."""

    def __init__(self, pad: tuple[int, ...], conv: nn.Module):
        super().__init__()
        self.pad = tuple(pad)  # F.pad's order: last axis first, (before, after) each
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.pad))


class TableConv(nn.Module):
    """A convolution with a partial connection table: output map j sees only the input maps
    ``table[j]`` (LeNet-5's C3), as one small convolution per output map."""

    def __init__(self, table: tuple[tuple[int, ...], ...], make: Callable[[int], nn.Module]):
        super().__init__()
        self.table = [list(row) for row in table]
        for j, row in enumerate(table):
            self.add_module(str(j), make(len(row)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([conv(x[:, row]) for row, conv in zip(self.table, self.children())], dim=1)


@builds("conv")
def _conv(cfg: Config, x: Shape) -> nn.Module:
    pads = padding_per_axis(cfg, x)
    symmetric = all(before == after for before, after in pads)
    conv_class = _nd(x, (nn.Conv1d, nn.Conv2d, nn.Conv3d))

    def make(in_channels: int, out_channels: int, groups: int) -> nn.Module:
        return conv_class(in_channels, out_channels, cfg["kernel"], cfg["stride"],
                          tuple(before for before, _ in pads) if symmetric else 0,
                          cfg["dilation"], groups, cfg["bias"])

    if cfg["connections"] is not None:
        module: nn.Module = TableConv(cfg["connections"], lambda n: make(n, 1, 1))
    else:
        module = make(x[0], cfg["out"], cfg["groups"])
    return module if symmetric else PaddedConv(_flat_padding(pads), module)


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
    pool = _nd(x, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d))
    return pool(cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"],
                ceil_mode=cfg["ceil_mode"])


@builds("avgpool")
def _avgpool(cfg: Config, x: Shape) -> nn.Module:
    pool = _nd(x, (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d))
    return pool(cfg["kernel"], cfg["stride"], cfg["padding"], ceil_mode=cfg["ceil_mode"],
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
    return _nd(x, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d))(cfg["output"])


@builds("adaptive_maxpool")
def _adaptive_maxpool(cfg: Config, x: Shape) -> nn.Module:
    return _nd(x, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d))(cfg["output"])


@builds("global_avgpool")
def _global_avgpool(cfg: Config, x: Shape) -> nn.Module:
    return _nd(x, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d))(1)


@builds("conv_transpose")
def _conv_transpose(cfg: Config, x: Shape) -> nn.Module:
    conv = _nd(x, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
    return conv(x[0], cfg["out"], cfg["kernel"], cfg["stride"], cfg["padding"],
                cfg["output_padding"], cfg["groups"], cfg["bias"], cfg["dilation"])


def _like_size(like: Any) -> tuple[int, ...]:
    """The spatial size of a shape reference (the engine passes the referenced tensor's shape)."""
    if isinstance(like, str):
        raise ValueError(f"the shape reference {like!r} was not resolved to a shape")
    return tuple(like[1:])


@builds("upsample")
def _upsample(cfg: Config, x: Shape) -> nn.Module:
    size = _like_size(cfg["like"]) if cfg["like"] is not None else cfg["size"]
    scale = None if size is not None else tuple(float(s) for s in cfg["scale"])
    corners = None if cfg["mode"] == "nearest" else cfg["align_corners"]
    return nn.Upsample(size=size, scale_factor=scale, mode=cfg["mode"], align_corners=corners)


class Pad(nn.Module):
    """F.pad with per-axis (before, after) padding: zero, reflect or replicate."""

    def __init__(self, pads: tuple[tuple[int, int], ...], mode: str):
        super().__init__()
        self.pad = _flat_padding(pads)
        self.mode = "constant" if mode == "zero" else mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pad, mode=self.mode)


@builds("pad")
def _pad(cfg: Config, x: Shape) -> nn.Module:
    return Pad(cfg["padding"], cfg["mode"])


class CentreCrop(nn.Module):
    """A slice of each spatial axis, from ``offsets`` for ``sizes`` (a view of the input)."""

    def __init__(self, offsets: tuple[int, ...], sizes: tuple[int, ...]):
        super().__init__()
        self.offsets, self.sizes = tuple(offsets), tuple(sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = (slice(None), slice(None),
                 *(slice(o, o + n) for o, n in zip(self.offsets, self.sizes)))
        return x[index]


@builds("crop")
def _crop(cfg: Config, x: Shape) -> nn.Module:
    rule = REGISTRY["crop"]
    return CentreCrop(rule.offsets(cfg, x), rule.output_shape(cfg, x)[1:])


@builds("flatten")
def _flatten(cfg: Config, x: Shape) -> nn.Module:
    return nn.Flatten()


@builds("batchnorm")
def _batchnorm(cfg: Config, x: Shape) -> nn.Module:
    norm = {1: nn.BatchNorm1d, 2: nn.BatchNorm1d, 3: nn.BatchNorm2d, 4: nn.BatchNorm3d}[len(x)]
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
    "relu6": nn.ReLU6, "elu": nn.ELU, "silu": nn.SiLU,
    "hardswish": nn.Hardswish, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
    "softmax": lambda: nn.Softmax(dim=1), "log_softmax": lambda: nn.LogSoftmax(dim=1),
    "identity": nn.Identity,
}
for _kind, _factory in _ELEMENTWISE.items():
    builds(_kind)(lambda cfg, x, factory=_factory: factory())


class PlaceholderError(OptionError):
    """A spec with placeholder layers (``cnncalc import --allow-unknown``) cannot be built."""


def _placeholder_message(places: list[str]) -> str:
    shown = ", ".join(places[:5]) + (f" and {len(places) - 5} more" if len(places) > 5 else "")
    return (f"cannot build {len(places)} placeholder layer(s) in torch: {shown}; a placeholder "
            "stands for an op with no layer kind (imported with --allow-unknown) and has no "
            "module: replace it with real layers to build, verify or profile the spec")


def refuse_placeholders(graph: Graph) -> None:
    """Refuse, naming them, a graph with placeholder layers: they have no torch module."""
    places = [f"{op.path} ({op.config['op']})" for op in graph.ops if op.kind == "placeholder"]
    if places:
        raise PlaceholderError(_placeholder_message(places))


@builds("placeholder")
def _placeholder(cfg: Config, x: Shape) -> nn.Module:
    raise PlaceholderError(_placeholder_message([cfg["op"]]))


# --------------------------------------------------------------------------------------------
# Specs


def build(spec: Spec, input: Any = None) -> Network:
    """Build ``spec`` for an input shape (default: the spec's). Weights are torch's defaults."""
    analysis = analyze(spec, input)
    graph = analysis.graph
    assert graph is not None
    refuse_placeholders(graph)
    modules = {}
    for op in graph.ops:
        if not op.row:
            continue
        shapes = tuple(analysis.input if t == GRAPH_INPUT else analysis.shapes[t]
                       for t in op.inputs)
        x = shapes[0] if getattr(REGISTRY[op.kind], "arity", 1) == 1 else shapes
        modules[op.index] = BUILDERS[op.kind](analysis.configs[op.index], x)
    return Network(graph, modules)


# --------------------------------------------------------------------------------------------
# Modern layer kinds and the merges (cnncalc/layers.py's last section). Merges take their inputs
# positionally: ``module(*inputs)``.


class ChannelsLayerNorm(nn.LayerNorm):
    """Layer norm over the channels at every position, as torchvision's ConvNeXt LayerNorm2d:
    channels last, F.layer_norm over them, and back."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # a vector: the features are the last axis already
            return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        last = (0, *range(2, x.dim()), 1)
        back = (0, x.dim() - 1, *range(1, x.dim() - 1))
        x = F.layer_norm(x.permute(*last), self.normalized_shape, self.weight, self.bias,
                         self.eps)
        return x.permute(*back)


@builds("layernorm")
def _layernorm(cfg: Config, x: Shape) -> nn.Module:
    norm = ChannelsLayerNorm if cfg["over"] == "channels" else nn.LayerNorm
    size = x[0] if cfg["over"] == "channels" else x[-1]
    return norm(size, eps=cfg["eps"], elementwise_affine=cfg["affine"], bias=cfg["bias"])


@builds("groupnorm")
def _groupnorm(cfg: Config, x: Shape) -> nn.Module:
    return nn.GroupNorm(cfg["groups"], x[0], eps=cfg["eps"], affine=cfg["affine"])


@builds("instancenorm")
def _instancenorm(cfg: Config, x: Shape) -> nn.Module:
    norm = {2: nn.InstanceNorm1d, 3: nn.InstanceNorm2d, 4: nn.InstanceNorm3d}[len(x)]
    return norm(x[0], eps=cfg["eps"], affine=cfg["affine"],
                track_running_stats=cfg["track_running_stats"])


class LayerScale(nn.Module):
    """y = γ ⊙ x with γ of shape (C, 1, …, 1), as torchvision's CNBlock keeps it."""

    def __init__(self, channels: int, rank: int, init: float):
        super().__init__()
        self.layer_scale = nn.Parameter(torch.ones(channels, *[1] * (rank - 1)) * init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_scale * x


@builds("layer_scale")
def _layer_scale(cfg: Config, x: Shape) -> nn.Module:
    return LayerScale(x[0], len(x), cfg["init"])


class ChannelSlice(nn.Module):
    """Channels [start, stop): a view."""

    def __init__(self, start: int, stop: int):
        super().__init__()
        self.start, self.stop = start, stop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.start:self.stop]


@builds("slice")
def _slice(cfg: Config, x: Shape) -> nn.Module:
    from ..layers import rule

    return ChannelSlice(*rule("slice").channels(cfg, x))


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle, as torchvision writes it: (g, C/g) → (C/g, g)."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, *rest = x.shape
        x = x.view(n, self.groups, c // self.groups, *rest).transpose(1, 2).contiguous()
        return x.view(n, c, *rest)


@builds("channel_shuffle")
def _channel_shuffle(cfg: Config, x: Shape) -> nn.Module:
    return ChannelShuffle(cfg["groups"])


class StochasticDepth(nn.Module):
    """torchvision's StochasticDepth in row mode: in training, each sample's tensor is zeroed
    with probability p and the kept ones scaled by 1/(1 − p); the identity at inference."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        noise = torch.empty([x.shape[0]] + [1] * (x.dim() - 1), dtype=x.dtype, device=x.device)
        noise = noise.bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise


@builds("drop_path")
def _drop_path(cfg: Config, x: Shape) -> nn.Module:
    return StochasticDepth(cfg["p"])


@builds("prelu")
def _prelu(cfg: Config, x: Shape) -> nn.Module:
    return nn.PReLU(cfg["num_parameters"], cfg["init"])


@builds("gelu")
def _gelu(cfg: Config, x: Shape) -> nn.Module:
    return nn.GELU(approximate=cfg["approximate"])


_MODERN_ELEMENTWISE: dict[str, Callable[[], nn.Module]] = {
    "swish": nn.SiLU, "mish": nn.Mish, "hardsigmoid": nn.Hardsigmoid,
}
for _kind, _factory in _MODERN_ELEMENTWISE.items():
    builds(_kind)(lambda cfg, x, factory=_factory: factory())


class Add(nn.Module):
    """The sum of the inputs, written ``a + b`` as residual blocks do."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        y = xs[0]
        for other in xs[1:]:
            y = y + other
        return y


class Mul(nn.Module):
    """The product of the inputs, broadcast (``a * b``, as squeeze-and-excitation writes it)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        y = xs[0]
        for other in xs[1:]:
            y = y * other
        return y


class Cat(nn.Module):
    """The inputs concatenated along ``dim`` (of the batched tensors)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)


@builds("add")
def _add(cfg: Config, x: tuple[Shape, ...]) -> nn.Module:  # type: ignore[misc]
    return Add()


@builds("mul")
def _mul(cfg: Config, x: tuple[Shape, ...]) -> nn.Module:  # type: ignore[misc]
    return Mul()


@builds("concat")
def _concat(cfg: Config, x: tuple[Shape, ...]) -> nn.Module:  # type: ignore[misc]
    from ..layers import resolve_axis

    return Cat(resolve_axis(cfg["axis"], x[0]) + 1)  # past the batch axis
