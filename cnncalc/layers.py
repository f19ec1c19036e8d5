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
* ``window`` is the layer's sliding window per axis, ``((k_h, s_h, o_h), (k_w, s_w, o_w))`` with
  ``k`` the effective (dilated) kernel extent and ``o`` where the first window's centre lies
  relative to the first input position, (k − 1)/2 − P_before, used for the receptive field;
  ``None`` for point-wise layers.
* ``explain`` gives the formulas with the numbers substituted (``cnncalc table --explain``), built
  from the same helpers as the arithmetic, with the results the methods above return.

Adding a kind is one class here, decorated with :func:`register`, plus its tests (and its torch
builder in the backend, keyed by the same name).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import prod
from typing import Any, Callable, ClassVar

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
# per axis (height, width): (extent k, stride s, offset of the first window's centre)
Window = tuple[tuple[int, int, Fraction], tuple[int, int, Fraction]]

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


def _known(condition: Any) -> bool:
    """A comparison's truth when it can be decided: always for integers; for a sympy expression
    (a symbolic input size, see cnncalc.symbolic) only when sympy can decide it."""
    try:
        return bool(condition)
    except TypeError:
        return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int)


def ceil_div(a: Any, b: int) -> Any:
    """⌈a/b⌉ for integers, and for sympy expressions (sympy imported only then)."""
    if _is_int(a):
        return -(-a // b)
    import sympy

    return sympy.ceiling(a / sympy.Integer(b))


def at_least_zero(value: Any) -> Any:
    """max(value, 0) for integers, and for sympy expressions."""
    if _is_int(value):
        return max(value, 0)
    import sympy

    return sympy.Max(value, 0)


def slide_output(size: Any, kernel: int, stride: int, pad: tuple[Any, Any], dilation: int = 1,
                 ceil_mode: bool = False) -> Any:
    """The output size of a sliding window along one axis: the arithmetic itself, for integers and
    for sympy expressions alike (``//`` is sympy's floor there).

    O = ⌊(I + P₀ + P₁ − D·(K−1) − 1)/S⌋ + 1, or with ``ceil_mode`` the ceiling, less one when the
    last window would start past the input and its left padding (torch's rule for pooling).
    """
    extent = dilation * (kernel - 1) + 1
    numerator = size + pad[0] + pad[1] - extent
    if not ceil_mode:
        return numerator // stride + 1
    output = ceil_div(numerator, stride) + 1
    if _known(stride + pad[1] <= extent):
        return output  # (O − 1)·S ≤ numerator + S − 1 < I + P₀: the last window starts inside
    starts_outside = (output - 1) * stride >= size + pad[0]
    if _is_int(output):
        return output - 1 if starts_outside else output
    import sympy

    return sympy.Piecewise((output - 1, starts_outside), (output, True))


def slide(axis: str, size: int, kernel: int, stride: int, pad: tuple[int, int],
          dilation: int = 1, ceil_mode: bool = False) -> Slide:
    """Output size of a sliding window along one axis, as torch computes it (see
    :func:`slide_output`), with the floor taken when the division is not exact."""
    extent = dilation * (kernel - 1) + 1
    numerator = size + pad[0] + pad[1] - extent
    # torch's ceil_mode lets the one window hang past the end: the output is 1 down to −(S − 1)
    if _known(numerator < 0) and not (ceil_mode and _known(numerator > -stride)):
        padded = size + pad[0] + pad[1]
        raise ShapeError(
            f"the {axis} kernel extent {extent} is larger than the padded input ({padded})"
        )
    output = slide_output(size, kernel, stride, pad, dilation, ceil_mode)
    if ceil_mode or not _is_int(numerator) or not numerator % stride:
        return Slide(output, None)
    return Slide(output, Floor(axis, size, pad, extent, stride, output))


def quotient_text(q: Fraction) -> str:
    """53.25 for a terminating decimal, 26/3 ≈ 8.667 otherwise."""
    if q.denominator == 1:
        return str(q.numerator)
    if q.denominator in (2, 4, 5, 8, 10, 16, 20, 25):
        return f"{float(q):g}"
    return f"{q.numerator}/{q.denominator} ≈ {float(q):.3f}"


def slide_text(size: int, kernel: int, stride: int, pad: tuple[int, int], dilation: int = 1,
               ceil_mode: bool = False) -> str:
    """The window count as course notes write it, with the engine's own result:
    ``(227 − 11 + 2·0)/4 + 1 = 55``; ``(224 − 11 + 2·0)/4 + 1 = ⌊53.25⌋ + 1 = 54``."""
    output = slide_output(size, kernel, stride, pad, dilation, ceil_mode)
    extent = dilation * (kernel - 1) + 1
    kernel_text = str(kernel) if dilation == 1 else f"({dilation}·({kernel} − 1) + 1)"
    pad_text = f"2·{pad[0]}" if pad[0] == pad[1] else f"{pad[0]} + {pad[1]}"
    text = f"({size} − {kernel_text} + {pad_text})/{stride} + 1 = "
    q = Fraction(size + pad[0] + pad[1] - extent, stride)
    if q.denominator == 1:
        return text + f"{output:,}"
    if not ceil_mode:
        return text + f"⌊{quotient_text(q)}⌋ + 1 = {output:,}"
    ceiling = -(-q.numerator // q.denominator) + 1
    text += f"⌈{quotient_text(q)}⌉ + 1"
    if output != ceiling:
        return text + f" − 1 = {output:,} (the last window would start in the right padding)"
    return text + f" = {output:,}"


def product_text(factors: list[int]) -> str:
    return "·".join(str(f) for f in factors)


def window_offset(extent: int, pad_before: Any) -> Fraction:
    """Where the centre of the first window lies, in input units from the first input position:
    (k − 1)/2 − P_before (Araujo et al., Distill 2019)."""
    if isinstance(pad_before, int):
        return Fraction(extent - 1 - 2 * pad_before, 2)  # the same, in one step
    return Fraction(extent - 1, 2) - pad_before


@dataclass(frozen=True)
class Saved:
    """A tensor autograd keeps for a layer's backward (torch's derivatives), for the training
    memory model (cnncalc.memory): the layer's ``input`` or ``output`` itself, or an extra tensor
    of ``elements`` per sample, ``bytes_each`` bytes each (None: the dtype's)."""

    what: str
    elements: int | None = None
    bytes_each: int | None = None


SAVED_INPUT = (Saved("input"),)
INDEX_BYTES = 8  # torch's max-pooling indices are int64
MASK_BYTES = 1  # dropout's mask is bool


# --------------------------------------------------------------------------------------------
# The registry


class LayerRule:
    """Base of every layer kind. Subclasses override what differs from a point-wise layer."""

    kind: ClassVar[str]
    summary: ClassVar[str] = ""
    fields: ClassVar[dict[str, Field]] = {}
    accepts: ClassVar[tuple[int, ...]] = (1, 3)  # input ranks the kind takes
    # The memory model: whether the output is the input itself (a view or a no-op), at inference
    # and in training; what autograd saves is :meth:`saved_for_backward`.
    view_at_inference: ClassVar[bool] = False
    view_in_training: ClassVar[bool] = False

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

    def saved_for_backward(self, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
        """What autograd keeps for the layer's backward (torch's derivatives): by default its
        input, as for conv, linear, pooling and most activations."""
        return SAVED_INPUT

    def describe(self, cfg: Config) -> str:
        """A short summary of the layer's settings for tables (kernel, stride, padding, …)."""
        return ""

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        """The layer's formulas with the numbers substituted, for ``--explain``: the output size
        first (unlabelled), then ``params: …``, ``MACs: …``. Nothing for point-wise layers."""
        return []


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
    out = ceil_div(size, stride)
    total = at_least_zero((out - 1) * stride + extent - size)
    return (total // 2, total - total // 2)


def padding_per_axis(cfg: Config, x: Shape) -> tuple[tuple[int, int], tuple[int, int]]:
    """Per-axis (before, after) padding from the ``padding`` field, ``same`` resolved for ``x``."""
    pad = cfg.get("padding", (0, 0))
    if pad == "valid":
        return ((0, 0), (0, 0))
    if pad == "same":
        k, s, d = cfg["kernel"], cfg["stride"], cfg.get("dilation", (1, 1))
        return tuple(
            _same_padding(x[1 + a], d[a] * (k[a] - 1) + 1, s[a]) for a in range(2)
        )  # type: ignore[return-value]
    return ((pad[0], pad[0]), (pad[1], pad[1]))


def _slide_args(cfg: Config, x: Shape) -> list[tuple[Any, int, int, tuple[Any, Any], int, bool]]:
    """Per axis: (size, kernel, stride, (before, after) padding, dilation, ceil_mode)."""
    pads = padding_per_axis(cfg, x)
    dilation = cfg.get("dilation", (1, 1))
    ceil_mode = cfg.get("ceil_mode", False)
    return [(x[1 + a], cfg["kernel"][a], cfg["stride"][a], pads[a], dilation[a], ceil_mode)
            for a in range(2)]


def _slides(cfg: Config, x: Shape) -> tuple[Slide, Slide]:
    return tuple(slide(AXES[a], *args) for a, args in enumerate(_slide_args(cfg, x)))  # type: ignore


def _slides_text(cfg: Config, x: Shape) -> list[str]:
    """One line when both axes compute alike, else one per axis."""
    height, width = (slide_text(*args) for args in _slide_args(cfg, x))
    return [height] if height == width else [f"height: {height}", f"width: {width}"]


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
        pads = padding_per_axis(cfg, x)
        extents = [d[a] * (k[a] - 1) + 1 for a in range(2)]
        return tuple((extents[a], s[a], window_offset(extents[a], pads[a][0]))
                     for a in range(2))  # type: ignore[return-value]

    def floors(self, cfg: Config, x: Shape) -> list[Floor]:
        return [s.floor for s in _slides(cfg, x) if s.floor is not None]

    def describe(self, cfg: Config) -> str:
        return _describe_window(cfg)

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        return _slides_text(cfg, x)


def whole_map_window(x: Shape) -> Window:
    """One window over the whole H×W map (global pooling; what follows a flatten)."""
    return tuple((x[1 + a], x[1 + a], window_offset(x[1 + a], 0))
                 for a in range(2))  # type: ignore[return-value]


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

    @staticmethod
    def _weight_factors(cfg: Config, x: Shape) -> tuple[list[Any], str]:
        """The factors of the weights of all output maps at one position, K_h·K_w·(C/g)·out (or
        K_h·K_w·Σ_out inputs seen, for a connection table), and how to write the inputs factor."""
        kh, kw = cfg["kernel"]
        if cfg["connections"] is not None:
            seen = sum(len(row) for row in cfg["connections"])
            return [kh, kw, seen], str(seen)
        groups = cfg["groups"]
        per_group = x[0] // groups
        inputs = str(per_group) if groups == 1 else f"({x[0]}/{groups})"
        return [kh, kw, per_group, cfg["out"]], inputs

    def _weights_per_output_pixel(self, cfg: Config, x: Shape) -> int:
        """Weights of all output maps at one position: Σ_out (inputs seen) · K_h · K_w."""
        return prod(self._weight_factors(cfg, x)[0])

    def params(self, cfg: Config, x: Shape) -> int:
        self._check_channels(cfg, x)
        bias = cfg["out"] if cfg["bias"] else 0
        return self._weights_per_output_pixel(cfg, x) + bias

    def macs(self, cfg: Config, x: Shape, y: Shape) -> int:
        return y[1] * y[2] * self._weights_per_output_pixel(cfg, x)

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        _, inputs = self._weight_factors(cfg, x)
        kh, kw = cfg["kernel"]
        bias = f" + {cfg['out']}" if cfg["bias"] else ""
        if cfg["connections"] is not None:
            weights = f"{kh}·{kw}·{inputs}"
            seen = " (Σ input maps seen in the table)"
            macs = f"{y[1]}·{y[2]} · {weights}"
        else:  # as course notes write it: output positions · out, then the window per output
            weights = f"{kh}·{kw}·{inputs}·{cfg['out']}"
            seen = ""
            macs = f"{y[1]}·{y[2]}·{cfg['out']} · {kh}·{kw}·{inputs}"
        return [*_slides_text(cfg, x),
                f"params: {weights}{bias} = {self.params(cfg, x):,}{seen}",
                f"MACs: {macs} = {self.macs(cfg, x, y):,}"]

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

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        bias = f" + {cfg['out']}" if cfg["bias"] else ""
        return [f"params: {x[0]}·{cfg['out']}{bias} = {self.params(cfg, x):,}",
                f"MACs: {x[0]}·{cfg['out']} = {self.macs(cfg, x, y):,}"]


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

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        return [f"params: {x[0]}·{cfg['out']} = {self.params(cfg, x):,}",
                f"MACs: {x[0]}·{cfg['out']} = {self.macs(cfg, x, y):,}"]


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

    def saved_for_backward(self, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
        return (*SAVED_INPUT, Saved("indices", prod(y), INDEX_BYTES))


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

    def saved_for_backward(self, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
        """Its input, and the window sums its depthwise 1×1 convolution keeps."""
        return (*SAVED_INPUT, Saved("window sums", prod(y)))

    def macs(self, cfg: Config, x: Shape, y: Shape) -> int:
        """One multiply by the map's coefficient per output; the window sum is pooling adds."""
        return prod(y)

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        return [*_slides_text(cfg, x),
                f"params: 2·{x[0]} = {self.params(cfg, x):,} (a coefficient and a bias per map)",
                f"MACs: {product_text(list(y))} = {self.macs(cfg, x, y):,}"]


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
        windows = []
        for a in range(2):
            largest, stride = _adaptive_windows(x[1 + a], cfg["output"][a])
            first = ceil_div(x[1 + a], cfg["output"][a])  # the first window is [0, ⌈I/O⌉)
            windows.append((largest, stride, window_offset(first, 0)))
        return tuple(windows)  # type: ignore[return-value]

    def describe(self, cfg: Config) -> str:
        return f"→{_fmt_pair(cfg['output'])}"

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        return [f"{x[1]}×{x[2]} → {y[1]}×{y[2]} (a fixed output size)"]


@register
class AdaptiveAvgPool(_Adaptive):
    kind = "adaptive_avgpool"
    summary = "adaptive average pooling to a fixed output size"


@register
class AdaptiveMaxPool(_Adaptive):
    kind = "adaptive_maxpool"
    summary = "adaptive max pooling to a fixed output size"

    def saved_for_backward(self, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
        return (*SAVED_INPUT, Saved("indices", prod(y), INDEX_BYTES))


@register
class GlobalAvgPool(_Adaptive):
    kind = "global_avgpool"
    summary = "average over all of H×W, to C×1×1"
    fields = {}

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        return (x[0], 1, 1)

    def window(self, cfg: Config, x: Shape) -> Window:
        return whole_map_window(x)

    def describe(self, cfg: Config) -> str:
        return "→1"


@register
class Flatten(LayerRule):
    kind = "flatten"
    summary = "C×H×W to a vector of C·H·W features"
    view_at_inference = view_in_training = True

    def saved_for_backward(self, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
        return ()

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        return (prod(x),)

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        return [f"{product_text(list(x))} = {y[0]:,}"] if len(x) > 1 else []

    def window(self, cfg: Config, x: Shape) -> Window | None:
        """Everything after a flatten sees the whole map: a window of H×W."""
        return whole_map_window(x) if len(x) == 3 else None


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

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        lines = []
        if cfg["affine"]:
            lines.append(f"params: 2·{x[0]} = {self.params(cfg, x):,}")
        if cfg["track_running_stats"]:
            lines.append(f"buffers: 2·{x[0]} + 1 = {self.buffers(cfg, x):,}")
        return lines

    def saved_for_backward(self, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
        return (*SAVED_INPUT, Saved("batch mean and inverse std", 2 * x[0]))


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

    def saved_for_backward(self, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
        """Its input, the channel-padded squares (avg_pool3d's input), and the base and the
        result of the power."""
        c, h, w = x
        return (*SAVED_INPUT, Saved("padded squares", (c + cfg["size"] - 1) * h * w),
                Saved("scale and its power", 2 * prod(x)))


@register
class Dropout(LayerRule):
    kind = "dropout"
    summary = "dropout (identity at inference)"
    fields = {"p": Field(probability, 0.5, "drop probability")}
    view_at_inference = True

    def describe(self, cfg: Config) -> str:
        return f"p{cfg['p']:g}"

    def saved_for_backward(self, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
        return (Saved("mask", prod(y), MASK_BYTES),)


def _saves_output(self: LayerRule, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
    return (Saved("output"),)


def _saves_nothing(self: LayerRule, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
    return ()


def _pointwise(kind: str, summary: str, fields: dict[str, Field] | None = None,
               saves: Callable[..., tuple[Saved, ...]] | None = None, view: bool = False) -> None:
    """A point-wise kind; ``saves`` overrides what autograd keeps (its input by default)."""
    body: dict[str, Any] = {"kind": kind, "summary": summary, "fields": fields or {},
                            "view_at_inference": view, "view_in_training": view}
    if saves is not None:
        body["saved_for_backward"] = saves
    register(type(kind.title().replace("_", ""), (LayerRule,), body))


# relu, tanh, sigmoid and the softmaxes compute their gradient from their output
_pointwise("relu", "rectified linear unit",
           {"inplace": Field(boolean, False, "overwrite its input (torch's inplace=True)")},
           saves=_saves_output)
_pointwise("relu6", "ReLU clipped at 6")
_pointwise("leaky_relu", "leaky ReLU", {"slope": Field(number, 0.01, "negative slope")})
_pointwise("elu", "exponential linear unit")
_pointwise("gelu", "Gaussian error linear unit")
_pointwise("silu", "sigmoid-weighted linear unit (swish)")
_pointwise("hardswish", "hard swish")
_pointwise("tanh", "hyperbolic tangent", saves=_saves_output)
_pointwise("sigmoid", "logistic sigmoid", saves=_saves_output)
_pointwise("softmax", "softmax over channels (features for a vector)", saves=_saves_output)
_pointwise("log_softmax", "log-softmax over channels (features for a vector)",
           saves=_saves_output)
_pointwise("identity", "does nothing (a placeholder)", saves=_saves_nothing, view=True)
