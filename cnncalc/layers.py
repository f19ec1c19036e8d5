"""The layer kinds: one class per kind, its shape rule, parameters, multiply-adds and receptive-field
window side by side, registered by kind name.

Conventions, for every kind:

* Shapes are per sample: ``(C, H, W)`` for feature maps, ``(F,)`` for vectors. The batch is applied
  by the engine.
* ``params`` counts learnable tensors (weights, bias, BN affine); ``trainable`` the part of them that
  training updates; ``buffers`` counts non-learnable state (BN running mean and variance, plus the one
  ``num_batches_tracked`` element torch keeps).
* ``macs`` are multiply-accumulates for one sample, counted for conv and linear layers only (and the
  two LeNet-1998 kinds, stated below): bias adds, activations, pooling, normalisation and residual
  adds are not MACs. This is the convention of torchvision's published figures, fvcore's conv and
  linear counts and the papers' "multiply-adds".
* ``window`` is the layer's sliding window per axis, ``((k_h, s_h), (k_w, s_w))`` with ``k`` the
  effective (dilated) kernel extent, used for the receptive field; ``None`` for point-wise layers.

Adding a kind is one class here, decorated with :func:`register`, plus its tests (and its torch
builder in the backend, keyed by the same name).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import prod
from typing import Any, ClassVar

from .fields import (
    Field,
    boolean,
    connection_table,
    nonnegative_pair,
    number,
    padding,
    positive_int,
    positive_pair,
    probability,
)

Shape = tuple[int, ...]
Config = dict[str, Any]
Window = tuple[tuple[int, int], tuple[int, int]]

AXES = ("height", "width")


class ShapeError(ValueError):
    """The layer cannot be applied to its input (the engine adds the layer's path and location)."""


@dataclass(frozen=True)
class Floor:
    """A sliding window whose division was not exact, so the output size was rounded down."""

    axis: str  # "height" or "width"
    size: int  # input size along the axis
    padding: tuple[int, int]  # before, after
    extent: int  # effective kernel extent D·(K−1)+1
    stride: int
    output: int

    @property
    def numerator(self) -> int:
        return self.size + sum(self.padding) - self.extent

    @property
    def quotient(self) -> Fraction:
        return Fraction(self.numerator, self.stride)

    @property
    def unused(self) -> int:
        """Trailing rows (or columns) of the padded input that no window reaches."""
        return self.numerator % self.stride

    @property
    def ignored_padding(self) -> int:
        return min(self.unused, self.padding[1])

    @property
    def ignored_input(self) -> int:
        """Rows (or columns) of real input, not padding, that the layer never reads."""
        return self.unused - self.ignored_padding


@dataclass(frozen=True)
class Slide:
    """The output size along one axis and, when the division was not exact, the floor taken."""

    output: int
    floor: Floor | None


def slide(axis: str, size: int, kernel: int, stride: int, pad: tuple[int, int],
          dilation: int = 1, ceil_mode: bool = False) -> Slide:
    """Output size of a sliding window along one axis, as torch computes it.

    O = ⌊(I + P₀ + P₁ − D·(K−1) − 1)/S⌋ + 1, or with ``ceil_mode`` the ceiling, less one when the
    last window would start past the input and its left padding (torch's rule for pooling).
    """
    extent = dilation * (kernel - 1) + 1
    numerator = size + pad[0] + pad[1] - extent
    if numerator < 0:
        padded = size + pad[0] + pad[1]
        raise ShapeError(
            f"the {axis} kernel extent {extent} is larger than the padded input ({padded})"
        )
    whole, remainder = divmod(numerator, stride)
    if ceil_mode and remainder:
        output = whole + 2
        if (output - 1) * stride >= size + pad[0]:
            output -= 1
        return Slide(output, None)
    floor = Floor(axis, size, pad, extent, stride, whole + 1) if remainder else None
    return Slide(whole + 1, floor)


# --------------------------------------------------------------------------------------------
# The registry


class LayerRule:
    """Base of every layer kind. Subclasses override what differs from a point-wise layer."""

    kind: ClassVar[str]
    summary: ClassVar[str] = ""
    fields: ClassVar[dict[str, Field]] = {}
    accepts: ClassVar[tuple[int, ...]] = (1, 3)  # input ranks the kind takes

    def finish(self, cfg: Config) -> Config:
        """Fill defaults that depend on other fields; raise FieldError for inconsistent fields."""
        return cfg

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        return x

    def params(self, cfg: Config, x: Shape) -> int:
        return 0

    def trainable(self, cfg: Config, x: Shape) -> int:
        return self.params(cfg, x)

    def buffers(self, cfg: Config, x: Shape) -> int:
        return 0

    def macs(self, cfg: Config, x: Shape, y: Shape) -> int:
        """Multiply-accumulates for one sample; bias adds not counted."""
        return 0

    def window(self, cfg: Config, x: Shape) -> Window | None:
        return None

    def floors(self, cfg: Config, x: Shape) -> list[Floor]:
        return []

    def describe(self, cfg: Config) -> str:
        """A short summary of the layer's settings for tables (kernel, stride, padding, …)."""
        return ""


REGISTRY: dict[str, LayerRule] = {}


def register(cls: type[LayerRule]) -> type[LayerRule]:
    """Class decorator: add one instance of the kind to :data:`REGISTRY` under ``cls.kind``."""
    if cls.kind in REGISTRY:
        raise ValueError(f"layer kind {cls.kind!r} registered twice")
    REGISTRY[cls.kind] = cls()
    return cls


def rule(kind: str) -> LayerRule:
    return REGISTRY[kind]


# --------------------------------------------------------------------------------------------
# Helpers shared by windowed kinds


def _fmt_pair(pair: tuple[int, int], sep: str = "×") -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}{sep}{pair[1]}"


def _same_padding(size: int, extent: int, stride: int) -> tuple[int, int]:
    """'same' padding: output ⌈I/S⌉, extra padding after (torch for stride 1, TensorFlow beyond)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + extent - size, 0)
    return (total // 2, total - total // 2)


def _pads(cfg: Config, x: Shape) -> tuple[tuple[int, int], tuple[int, int]]:
    """Per-axis (before, after) padding from the ``padding`` field."""
    pad = cfg.get("padding", (0, 0))
    if pad == "valid":
        return ((0, 0), (0, 0))
    if pad == "same":
        k, s, d = cfg["kernel"], cfg["stride"], cfg.get("dilation", (1, 1))
        return tuple(
            _same_padding(x[1 + a], d[a] * (k[a] - 1) + 1, s[a]) for a in range(2)
        )  # type: ignore[return-value]
    return ((pad[0], pad[0]), (pad[1], pad[1]))


def _slides(cfg: Config, x: Shape) -> tuple[Slide, Slide]:
    pads = _pads(cfg, x)
    dilation = cfg.get("dilation", (1, 1))
    ceil_mode = cfg.get("ceil_mode", False)
    return tuple(
        slide(AXES[a], x[1 + a], cfg["kernel"][a], cfg["stride"][a], pads[a], dilation[a], ceil_mode)
        for a in range(2)
    )  # type: ignore[return-value]


def _describe_window(cfg: Config) -> str:
    kernel = cfg["kernel"]
    text = f"{kernel[0]}×{kernel[1]}/{_fmt_pair(cfg['stride'])}"
    pad = cfg.get("padding", (0, 0))
    if isinstance(pad, str):
        text += f" {pad}"
    elif pad != (0, 0):
        text += f" p{_fmt_pair(pad, ',')}"
    if cfg.get("dilation", (1, 1)) != (1, 1):
        text += f" d{_fmt_pair(cfg['dilation'], ',')}"
    if cfg.get("ceil_mode"):
        text += " ceil"
    return text


class _Windowed(LayerRule):
    """A layer that slides a kernel over H and W and keeps or sets the channel count."""

    accepts = (3,)

    def spatial_output(self, cfg: Config, x: Shape) -> tuple[int, int]:
        h, w = _slides(cfg, x)
        return (h.output, w.output)

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        return (self.out_channels(cfg, x), *self.spatial_output(cfg, x))

    def out_channels(self, cfg: Config, x: Shape) -> int:
        return x[0]

    def window(self, cfg: Config, x: Shape) -> Window:
        d = cfg.get("dilation", (1, 1))
        k, s = cfg["kernel"], cfg["stride"]
        return ((d[0] * (k[0] - 1) + 1, s[0]), (d[1] * (k[1] - 1) + 1, s[1]))

    def floors(self, cfg: Config, x: Shape) -> list[Floor]:
        return [s.floor for s in _slides(cfg, x) if s.floor is not None]

    def describe(self, cfg: Config) -> str:
        return _describe_window(cfg)


# --------------------------------------------------------------------------------------------
# Convolution and linear layers


@register
class Conv(_Windowed):
    kind = "conv"
    summary = "2-D convolution (groups, dilation, optional partial connection table)"
    fields = {
        "out": Field(positive_int, doc="output channels"),
        "kernel": Field(positive_pair, doc="kernel size: int or [height, width]"),
        "stride": Field(positive_pair, (1, 1), "stride: int or [height, width]"),
        "padding": Field(padding, (0, 0), "int, [height, width], 'same' or 'valid'"),
        "dilation": Field(positive_pair, (1, 1), "dilation: int or [height, width]"),
        "groups": Field(positive_int, 1, "channel groups (in and out channels must divide)"),
        "bias": Field(boolean, True, "learnable bias per output channel"),
        "connections": Field(
            connection_table, None,
            "partial connection table: for each output map, the input maps it sees (LeNet-5 C3)",
        ),
    }

    def out_channels(self, cfg: Config, x: Shape) -> int:
        self._check_channels(cfg, x)
        return cfg["out"]

    @staticmethod
    def _check_channels(cfg: Config, x: Shape) -> None:
        c_in, groups, table = x[0], cfg["groups"], cfg["connections"]
        if table is not None:
            if groups != 1:
                raise ShapeError("a connection table and groups cannot be combined")
            if len(table) != cfg["out"]:
                raise ShapeError(
                    f"the connection table has {len(table)} rows for {cfg['out']} output maps"
                )
            worst = max(max(row) for row in table)
            if worst >= c_in:
                raise ShapeError(
                    f"the connection table names input map {worst}, but the input has {c_in} maps"
                )
            return
        if c_in % groups or cfg["out"] % groups:
            raise ShapeError(
                f"groups={groups} must divide the input channels ({c_in}) "
                f"and the output channels ({cfg['out']})"
            )

    def _weights_per_output_pixel(self, cfg: Config, x: Shape) -> int:
        """Weights of all output maps at one position: Σ_out (inputs seen) · K_h · K_w."""
        kernel_area = cfg["kernel"][0] * cfg["kernel"][1]
        if cfg["connections"] is not None:
            return sum(len(row) for row in cfg["connections"]) * kernel_area
        return cfg["out"] * (x[0] // cfg["groups"]) * kernel_area

    def params(self, cfg: Config, x: Shape) -> int:
        self._check_channels(cfg, x)
        bias = cfg["out"] if cfg["bias"] else 0
        return self._weights_per_output_pixel(cfg, x) + bias

    def macs(self, cfg: Config, x: Shape, y: Shape) -> int:
        return y[1] * y[2] * self._weights_per_output_pixel(cfg, x)

    def describe(self, cfg: Config) -> str:
        text = _describe_window(cfg)
        if cfg["groups"] != 1:
            text += f" g{cfg['groups']}"
        if cfg["connections"] is not None:
            text += " table"
        if not cfg["bias"]:
            text += " nobias"
        return text


def _require_vector(x: Shape, kind: str) -> int:
    if len(x) != 1:
        shape = "×".join(map(str, x))
        raise ShapeError(f"{kind} needs a vector input, got {shape} (add a flatten layer first)")
    return x[0]


@register
class Linear(LayerRule):
    kind = "linear"
    summary = "fully connected layer on a vector"
    fields = {
        "out": Field(positive_int, doc="output features"),
        "bias": Field(boolean, True, "learnable bias per output feature"),
    }
    accepts = (1,)

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        _require_vector(x, self.kind)
        return (cfg["out"],)

    def params(self, cfg: Config, x: Shape) -> int:
        return x[0] * cfg["out"] + (cfg["out"] if cfg["bias"] else 0)

    def macs(self, cfg: Config, x: Shape, y: Shape) -> int:
        return x[0] * cfg["out"]

    def describe(self, cfg: Config) -> str:
        return "" if cfg["bias"] else "nobias"


@register
class RBF(LayerRule):
    kind = "rbf"
    summary = "Euclidean radial-basis output units (LeNet-5, 1998): y_j = Σ_i (x_i − w_ij)²"
    fields = {
        "out": Field(positive_int, doc="output units"),
        "trainable": Field(boolean, False, "whether the centres are learned (fixed by hand in 1998)"),
    }
    accepts = (1,)

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        _require_vector(x, self.kind)
        return (cfg["out"],)

    def params(self, cfg: Config, x: Shape) -> int:
        return x[0] * cfg["out"]

    def trainable(self, cfg: Config, x: Shape) -> int:
        return self.params(cfg, x) if cfg["trainable"] else 0

    def macs(self, cfg: Config, x: Shape, y: Shape) -> int:
        """One squared-difference accumulate per centre coordinate: in · out."""
        return x[0] * cfg["out"]


# --------------------------------------------------------------------------------------------
# Pooling


def _check_pool_padding(cfg: Config) -> None:
    pad = cfg["padding"]
    for a in range(2):
        if pad[a] * 2 > cfg["kernel"][a]:
            raise ShapeError(
                f"{AXES[a]} padding {pad[a]} is more than half the kernel ({cfg['kernel'][a]})"
            )


class _Pool(_Windowed):
    def finish(self, cfg: Config) -> Config:
        if cfg["stride"] is None:
            cfg["stride"] = cfg["kernel"]
        return cfg

    def spatial_output(self, cfg: Config, x: Shape) -> tuple[int, int]:
        _check_pool_padding(cfg)
        return super().spatial_output(cfg, x)


_POOL_FIELDS = {
    "kernel": Field(positive_pair, doc="window size: int or [height, width]"),
    "stride": Field(positive_pair, None, "stride (defaults to the kernel)"),
    "padding": Field(nonnegative_pair, (0, 0), "int or [height, width], at most half the kernel"),
    "ceil_mode": Field(boolean, False, "round the output size up, as torch's ceil_mode does"),
}


@register
class MaxPool(_Pool):
    kind = "maxpool"
    summary = "max pooling"
    fields = {**_POOL_FIELDS, "dilation": Field(positive_pair, (1, 1), "dilation")}


@register
class AvgPool(_Pool):
    kind = "avgpool"
    summary = "average pooling"
    fields = {
        **_POOL_FIELDS,
        "count_include_pad": Field(boolean, True, "average over padding too (shape unaffected)"),
    }


@register
class Subsample(_Pool):
    kind = "subsample"
    summary = "LeNet-5 (1998) subsampling: window sum × a trainable coefficient + a bias, per map"
    fields = dict(_POOL_FIELDS)

    def params(self, cfg: Config, x: Shape) -> int:
        return 2 * x[0]

    def macs(self, cfg: Config, x: Shape, y: Shape) -> int:
        """One multiply by the map's coefficient per output; the window sum is pooling adds."""
        return prod(y)


MAX_ADAPTIVE_OUTPUT = 1_000_000


def _adaptive_windows(size: int, out: int) -> tuple[int, int]:
    """Largest window and the typical stride torch's adaptive pooling uses along one axis."""
    if out > MAX_ADAPTIVE_OUTPUT:
        raise ShapeError(f"adaptive pooling output {out} is over the limit of {MAX_ADAPTIVE_OUTPUT:,}")
    largest = max(-(-(i + 1) * size // out) - (i * size // out) for i in range(out))
    return largest, max(size // out, 1)


class _Adaptive(LayerRule):
    accepts = (3,)
    fields = {"output": Field(positive_pair, doc="output size: int or [height, width]")}

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        return (x[0], *cfg["output"])

    def window(self, cfg: Config, x: Shape) -> Window:
        return tuple(_adaptive_windows(x[1 + a], cfg["output"][a]) for a in range(2))  # type: ignore

    def describe(self, cfg: Config) -> str:
        return f"→{_fmt_pair(cfg['output'])}"


@register
class AdaptiveAvgPool(_Adaptive):
    kind = "adaptive_avgpool"
    summary = "adaptive average pooling to a fixed output size"


@register
class AdaptiveMaxPool(_Adaptive):
    kind = "adaptive_maxpool"
    summary = "adaptive max pooling to a fixed output size"


@register
class GlobalAvgPool(_Adaptive):
    kind = "global_avgpool"
    summary = "average over all of H×W, to C×1×1"
    fields = {}

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        return (x[0], 1, 1)

    def window(self, cfg: Config, x: Shape) -> Window:
        return ((x[1], x[1]), (x[2], x[2]))

    def describe(self, cfg: Config) -> str:
        return "→1"


@register
class Flatten(LayerRule):
    kind = "flatten"
    summary = "C×H×W to a vector of C·H·W features"

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        return (prod(x),)

    def window(self, cfg: Config, x: Shape) -> Window | None:
        """Everything after a flatten sees the whole map: a window of H×W."""
        if len(x) != 3:
            return None
        return ((x[1], x[1]), (x[2], x[2]))


# --------------------------------------------------------------------------------------------
# Normalisation, regularisation, activations


@register
class BatchNorm(LayerRule):
    kind = "batchnorm"
    summary = "batch normalisation over channels (features for a vector)"
    fields = {
        "affine": Field(boolean, True, "learnable scale and shift per channel"),
        "track_running_stats": Field(boolean, True, "keep running mean and variance buffers"),
    }

    def params(self, cfg: Config, x: Shape) -> int:
        return 2 * x[0] if cfg["affine"] else 0

    def buffers(self, cfg: Config, x: Shape) -> int:
        """running_mean and running_var (C each) and num_batches_tracked (1)."""
        return 2 * x[0] + 1 if cfg["track_running_stats"] else 0


@register
class LRN(LayerRule):
    kind = "lrn"
    summary = "local response normalisation across channels (AlexNet, GoogLeNet)"
    fields = {
        "size": Field(positive_int, doc="number of neighbouring channels"),
        "alpha": Field(number, 1e-4, "scale"),
        "beta": Field(number, 0.75, "exponent"),
        "k": Field(number, 1.0, "additive constant"),
    }
    accepts = (3,)

    def describe(self, cfg: Config) -> str:
        return f"n{cfg['size']}"


@register
class Dropout(LayerRule):
    kind = "dropout"
    summary = "dropout (identity at inference)"
    fields = {"p": Field(probability, 0.5, "drop probability")}

    def describe(self, cfg: Config) -> str:
        return f"p{cfg['p']:g}"


def _pointwise(kind: str, summary: str, fields: dict[str, Field] | None = None) -> None:
    register(type(kind.title().replace("_", ""), (LayerRule,),
                  {"kind": kind, "summary": summary, "fields": fields or {}}))


_pointwise("relu", "rectified linear unit")
_pointwise("relu6", "ReLU clipped at 6")
_pointwise("leaky_relu", "leaky ReLU", {"slope": Field(number, 0.01, "negative slope")})
_pointwise("elu", "exponential linear unit")
_pointwise("gelu", "Gaussian error linear unit")
_pointwise("silu", "sigmoid-weighted linear unit (swish)")
_pointwise("hardswish", "hard swish")
_pointwise("tanh", "hyperbolic tangent")
_pointwise("sigmoid", "logistic sigmoid")
_pointwise("softmax", "softmax over channels (features for a vector)")
_pointwise("log_softmax", "log-softmax over channels (features for a vector)")
_pointwise("identity", "does nothing (a placeholder)")
