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
from math import floor, gcd, prod
from typing import Any, Callable, ClassVar

from .errors import brief
from .fields import (
    AXIS_NAMES,
    Field,
    FieldError,
    before_after_axes,
    boolean,
    choice,
    connection_table,
    nonnegative_int,
    nonnegative_pair,
    nonnegative_axes,
    number,
    padding_axes,
    positive_axes,
    positive_int,
    positive_scale_axes,
    probability,
    tensor_name,
)

Shape = tuple[int, ...]
Config = dict[str, Any]
# per spatial axis: (extent k, stride s, offset of the first window's centre); 2-D: (height, width)
Window = tuple[tuple[Any, Any, Fraction], ...]

AXES = ("height", "width")  # the 2-D axes (check.py); any rank: axis_names


class ShapeError(ValueError):
    """The layer cannot be applied to its input (the engine adds the layer's path and location)."""


@dataclass(frozen=True)
class Floor:
    """A sliding window whose division was not exact, so the output size was rounded down."""

    axis: str  # "length"; "height" or "width"; "depth", "height" or "width"
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


def _known_negative(value: Any) -> bool:
    """``_known(value < 0)``, without asking sympy when the answer is plain: a positive size
    symbol plus a constant is never known to be negative (sympy takes milliseconds to say so,
    per layer, on a symbolic --input)."""
    if _is_int(value):
        return value < 0
    const, rest = value.as_coeff_Add()
    if rest.is_Symbol and rest.is_positive and const.is_Integer:
        return False
    return _known(value < 0)


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
        # stride 1: the same number without a floor (sympy spends milliseconds on one)
        return numerator + 1 if stride == 1 else numerator // stride + 1
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
    if _known_negative(numerator) and not (ceil_mode and _known(numerator > -stride)):
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
    # input ranks the kind takes: 1 a vector, 2 C×L, 3 C×H×W, 4 C×D×H×W
    accepts: ClassVar[tuple[int, ...]] = (1, 2, 3, 4)
    # How many inputs: 1, or None for two or more (merges), whose every method then takes ``x``
    # as a tuple of the input shapes.
    arity: ClassVar[int | None] = 1
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
#
# One rule over N spatial axes: a config's per-axis fields (kernel, stride, padding, …) hold one
# entry per spatial axis of the spec (broadcast at load, cnncalc.fields.broadcast), and the input
# is C × (one size per axis). 2-D configs are the (height, width) pairs of before.


def spatial_rank(x: Shape) -> int:
    """Spatial axes of a per-sample shape: 1 for C×L, 2 for C×H×W, 3 for C×D×H×W."""
    return len(x) - 1


def axis_names(rank: int) -> tuple[str, ...]:
    """length; height, width; depth, height, width."""
    return AXIS_NAMES[rank]


def shape_text(x: Shape) -> str:
    return "×".join(map(str, x))


def _check_axes(cfg: Config, x: Shape, key: str = "kernel") -> int:
    """The number of spatial axes, checked against the config's per-axis field ``key``."""
    n = spatial_rank(x)
    given = len(cfg[key])
    if given != n:
        raise ShapeError(f"{key} has {given} entr{'y' if given == 1 else 'ies'} "
                         f"({', '.join(axis_names(given)) if given in AXIS_NAMES else given}) "
                         f"for a {n}-D input")
    return n


def _fmt_axes(values: tuple[Any, ...], sep: str = "×") -> str:
    """One value when every axis agrees, else the values joined by ``sep``."""
    if all(v == values[0] for v in values):
        return str(values[0])
    return sep.join(str(v) for v in values)


def _same_padding(size: int, extent: int, stride: int) -> tuple[int, int]:
    """'same' padding: output ⌈I/S⌉, extra padding after (torch for stride 1, TensorFlow beyond)."""
    out = ceil_div(size, stride)
    total = at_least_zero((out - 1) * stride + extent - size)
    return (total // 2, total - total // 2)


def padding_per_axis(cfg: Config, x: Shape) -> tuple[tuple[int, int], ...]:
    """Per-axis (before, after) padding from the ``padding`` field, ``same`` resolved for ``x``."""
    n = spatial_rank(x)
    pad = cfg.get("padding", (0,) * n)
    if pad == "valid":
        return ((0, 0),) * n
    if pad == "same":
        k, s, d = cfg["kernel"], cfg["stride"], cfg.get("dilation", (1,) * n)
        return tuple(_same_padding(x[1 + a], d[a] * (k[a] - 1) + 1, s[a]) for a in range(n))
    return tuple((p, p) for p in pad)


def _slide_args(cfg: Config, x: Shape) -> list[tuple[Any, int, int, tuple[Any, Any], int, bool]]:
    """Per axis: (size, kernel, stride, (before, after) padding, dilation, ceil_mode)."""
    n = _check_axes(cfg, x)
    pads = padding_per_axis(cfg, x)
    dilation = cfg.get("dilation", (1,) * n)
    ceil_mode = cfg.get("ceil_mode", False)
    return [(x[1 + a], cfg["kernel"][a], cfg["stride"][a], pads[a], dilation[a], ceil_mode)
            for a in range(n)]


def _slides(cfg: Config, x: Shape) -> tuple[Slide, ...]:
    names = axis_names(spatial_rank(x))
    return tuple(slide(names[a], *args) for a, args in enumerate(_slide_args(cfg, x)))


def per_axis_lines(texts: list[str], rank: int, label: str = "") -> list[str]:
    """One line when every axis computes alike, else one per axis (``height: …``)."""
    if all(t == texts[0] for t in texts):
        return [f"{label}{texts[0]}"] if label else [texts[0]]
    names = axis_names(rank)
    return [f"{label}{names[a]}: {t}" if label else f"{names[a]}: {t}"
            for a, t in enumerate(texts)]


def _slides_text(cfg: Config, x: Shape) -> list[str]:
    """One line when every axis computes alike, else one per axis."""
    return per_axis_lines([slide_text(*args) for args in _slide_args(cfg, x)], spatial_rank(x))


def _describe_window(cfg: Config) -> str:
    kernel = cfg["kernel"]
    n = len(kernel)
    text = f"{'×'.join(map(str, kernel))}/{_fmt_axes(cfg['stride'])}"
    pad = cfg.get("padding", (0,) * n)
    if isinstance(pad, str):
        text += f" {pad}"
    elif any(pad):
        text += f" p{_fmt_axes(pad, ',')}"
    if any(d != 1 for d in cfg.get("dilation", (1,) * n)):
        text += f" d{_fmt_axes(cfg['dilation'], ',')}"
    if cfg.get("ceil_mode"):
        text += " ceil"
    return text


class _Windowed(LayerRule):
    """A layer that slides a kernel over the spatial axes and keeps or sets the channel count."""

    accepts = (2, 3, 4)

    def spatial_output(self, cfg: Config, x: Shape) -> tuple[int, ...]:
        return tuple(s.output for s in _slides(cfg, x))

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        return (self.out_channels(cfg, x), *self.spatial_output(cfg, x))

    def out_channels(self, cfg: Config, x: Shape) -> int:
        return x[0]

    def window(self, cfg: Config, x: Shape) -> Window:
        n = _check_axes(cfg, x)
        d = cfg.get("dilation", (1,) * n)
        k, s = cfg["kernel"], cfg["stride"]
        pads = padding_per_axis(cfg, x)
        extents = [d[a] * (k[a] - 1) + 1 for a in range(n)]
        return tuple((extents[a], s[a], window_offset(extents[a], pads[a][0]))
                     for a in range(n))

    def floors(self, cfg: Config, x: Shape) -> list[Floor]:
        return [s.floor for s in _slides(cfg, x) if s.floor is not None]

    def describe(self, cfg: Config) -> str:
        return _describe_window(cfg)

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        return _slides_text(cfg, x)


def whole_map_window(x: Shape) -> Window:
    """One window over the whole map (global pooling; what follows a flatten)."""
    return tuple((x[1 + a], x[1 + a], window_offset(x[1 + a], 0))
                 for a in range(spatial_rank(x)))


# --------------------------------------------------------------------------------------------
# Convolution and linear layers


def check_groups(c_in: int, c_out: int, groups: int) -> None:
    """Channel groups must divide the input and the output channels (conv, conv_transpose)."""
    if c_in % groups or c_out % groups:
        raise ShapeError(f"groups={groups} must divide the input channels ({c_in}) "
                         f"and the output channels ({c_out})")


@register
class Conv(_Windowed):
    kind = "conv"
    summary = "convolution, 1-D/2-D/3-D (groups, dilation, optional partial connection table)"
    fields = {
        "out": Field(positive_int, doc="output channels"),
        "kernel": Field(positive_axes, doc="kernel size: int or one per axis ([height, width])"),
        "stride": Field(positive_axes, 1, "stride: int or one per axis"),
        "padding": Field(padding_axes, 0, "int, one per axis, 'same' or 'valid'"),
        "dilation": Field(positive_axes, 1, "dilation: int or one per axis"),
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
        check_groups(c_in, cfg["out"], groups)

    @staticmethod
    def _weight_factors(cfg: Config, x: Shape) -> tuple[list[Any], str]:
        """The factors of the weights of all output maps at one position, ∏K·(C/g)·out (or
        ∏K·Σ_out inputs seen, for a connection table), and how to write the inputs factor."""
        kernel = list(cfg["kernel"])
        if cfg["connections"] is not None:
            seen = sum(len(row) for row in cfg["connections"])
            return [*kernel, seen], str(seen)
        groups = cfg["groups"]
        per_group = x[0] // groups
        inputs = str(per_group) if groups == 1 else f"({x[0]}/{groups})"
        return [*kernel, per_group, cfg["out"]], inputs

    def _weights_per_output_pixel(self, cfg: Config, x: Shape) -> int:
        """Weights of all output maps at one position: Σ_out (inputs seen) · ∏K."""
        return prod(self._weight_factors(cfg, x)[0])

    def params(self, cfg: Config, x: Shape) -> int:
        self._check_channels(cfg, x)
        bias = cfg["out"] if cfg["bias"] else 0
        return self._weights_per_output_pixel(cfg, x) + bias

    def macs(self, cfg: Config, x: Shape, y: Shape) -> int:
        return prod(y[1:]) * self._weights_per_output_pixel(cfg, x)

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        _, inputs = self._weight_factors(cfg, x)
        kernel = product_text(list(cfg["kernel"]))
        positions = product_text(list(y[1:]))
        bias = f" + {cfg['out']}" if cfg["bias"] else ""
        if cfg["connections"] is not None:
            weights = f"{kernel}·{inputs}"
            seen = " (Σ input maps seen in the table)"
            macs = f"{positions} · {weights}"
        else:  # as course notes write it: output positions · out, then the window per output
            weights = f"{kernel}·{inputs}·{cfg['out']}"
            seen = ""
            macs = f"{positions}·{cfg['out']} · {kernel}·{inputs}"
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
    names = axis_names(len(pad)) if len(pad) in AXIS_NAMES else ()
    for a, p in enumerate(pad):
        if p * 2 > cfg["kernel"][a]:
            raise ShapeError(
                f"{names[a]} padding {p} is more than half the kernel ({cfg['kernel'][a]})"
            )


class _Pool(_Windowed):
    def finish(self, cfg: Config) -> Config:
        if cfg["stride"] is None:
            cfg["stride"] = cfg["kernel"]
        return cfg

    def spatial_output(self, cfg: Config, x: Shape) -> tuple[int, ...]:
        _check_axes(cfg, x)
        _check_pool_padding(cfg)
        return super().spatial_output(cfg, x)


_POOL_FIELDS = {
    "kernel": Field(positive_axes, doc="window size: int or one per axis ([height, width])"),
    "stride": Field(positive_axes, None, "stride (defaults to the kernel)"),
    "padding": Field(nonnegative_axes, 0, "int or one per axis, at most half the kernel"),
    "ceil_mode": Field(boolean, False, "round the output size up, as torch's ceil_mode does"),
}


@register
class MaxPool(_Pool):
    kind = "maxpool"
    summary = "max pooling, 1-D/2-D/3-D"
    fields = {**_POOL_FIELDS, "dilation": Field(positive_axes, 1, "dilation")}

    def saved_for_backward(self, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
        return (*SAVED_INPUT, Saved("indices", prod(y), INDEX_BYTES))


@register
class AvgPool(_Pool):
    kind = "avgpool"
    summary = "average pooling, 1-D/2-D/3-D"
    fields = {
        **_POOL_FIELDS,
        "count_include_pad": Field(boolean, True, "average over padding too (shape unaffected)"),
    }

    def spatial_output(self, cfg: Config, x: Shape) -> tuple[int, ...]:
        if spatial_rank(x) == 3 and any(size < k for size, k in zip(x[1:], cfg["kernel"])):
            # torch's avg_pool3d checks the kernel against the input before padding
            raise ShapeError(f"3-D average pooling needs an input at least the kernel "
                             f"({shape_text(cfg['kernel'])}) before padding, as torch's avg_pool3d")
        return super().spatial_output(cfg, x)


@register
class Subsample(_Pool):
    kind = "subsample"
    summary = "LeNet-5 (1998) subsampling: window sum × a trainable coefficient + a bias, per map"
    fields = dict(_POOL_FIELDS)
    accepts = (3,)

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


def adaptive_largest_window(size: int, out: int) -> int:
    """The largest window of torch's adaptive pooling along one axis, in O(1).

    Window i is [⌊i·I/O⌋, ⌈(i+1)·I/O⌉). With I = q·O + r (0 ≤ r < O) its length is
    q + ⌈(m_i + r)/O⌉, m_i = i·r mod O: q when r = 0; else q + 1 or q + 2, and q + 2 for some i
    iff the largest m_i, O − gcd(r, O), exceeds O − r, that is iff r does not divide O. So the
    largest window is ⌈I/O⌉, plus one when r ≠ 0 and O mod r ≠ 0.
    """
    q, r = divmod(size, out)
    if r == 0:
        return q
    return q + 1 + (1 if out % r else 0)


def _adaptive_windows(size: int, out: int) -> tuple[int, int]:
    """Largest window and the typical stride torch's adaptive pooling uses along one axis."""
    if out > MAX_ADAPTIVE_OUTPUT:
        raise ShapeError(f"adaptive pooling output {out} is over the limit of {MAX_ADAPTIVE_OUTPUT:,}")
    return adaptive_largest_window(size, out), max(size // out, 1)


class _Adaptive(LayerRule):
    accepts = (2, 3, 4)
    fields = {"output": Field(positive_axes, doc="output size: int or one per axis ([height, width])")}

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        _check_axes(cfg, x, "output")
        return (x[0], *cfg["output"])

    def window(self, cfg: Config, x: Shape) -> Window:
        windows = []
        for a in range(_check_axes(cfg, x, "output")):
            largest, stride = _adaptive_windows(x[1 + a], cfg["output"][a])
            first = ceil_div(x[1 + a], cfg["output"][a])  # the first window is [0, ⌈I/O⌉)
            windows.append((largest, stride, window_offset(first, 0)))
        return tuple(windows)

    def describe(self, cfg: Config) -> str:
        return f"→{_fmt_axes(cfg['output'])}"

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        return [f"{shape_text(x[1:])} → {shape_text(y[1:])} (a fixed output size)"]


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
    summary = "average over the whole map (all of H×W), to C×1×1 (C×1, C×1×1×1)"
    fields = {}

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        return (x[0], *(1,) * spatial_rank(x))

    def window(self, cfg: Config, x: Shape) -> Window:
        return whole_map_window(x)

    def describe(self, cfg: Config) -> str:
        return "→1"


# --------------------------------------------------------------------------------------------
# Resampling: transposed convolution, upsampling, padding, centre crop
#
# Receptive field through an upsampling layer (conv_transpose, upsample): the window's stride is
# the Fraction 1/S (in input units per output unit), so the jump after it is j/S, exact (a
# Fraction while S does not divide the jump, an int again once a later stride makes it whole).
# The window's extent k is the most input positions any one output unit reads, so the layer's
# own field size r + (k − 1)·j is exact: the largest field of any of its output units. Its start
# is where output 0's taps centre. Layers after it compose by the usual recurrences on those
# figures (Araujo et al., Distill 2019), which take the units as evenly spaced; an upsampling
# layer's units are evenly spaced on average (jump j/S), not one by one.


def _same_rank_shape(x: Shape, like: Any, kind: str, key: str = "like") -> Shape:
    """The spatial size of the tensor ``like`` refers to (a Shape at run time), checked for the
    rank of ``x``."""
    if isinstance(like, str):
        raise ShapeError(f"{kind}: {key}: {like!r} names a tensor, which this engine cannot "
                         "resolve (shape references need the graph engine)")
    if len(like) != len(x):
        raise ShapeError(f"{kind} like {shape_text(tuple(like))}: a {spatial_rank(tuple(like))}-D "
                         f"tensor for a {spatial_rank(x)}-D input")
    return tuple(like[1:])


def _like_text(like: Any) -> str:
    return f"like {like}" if isinstance(like, str) else f"like {shape_text(tuple(like))}"


def transposed_output(size: int, kernel: int, stride: int, pad: int, output_padding: int,
                      dilation: int) -> int:
    """O = (I − 1)·S − 2P + D·(K − 1) + output_padding + 1 (torch's ConvTranspose)."""
    return (size - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_padding + 1


def transposed_span(kernel: int, stride: int, dilation: int) -> int:
    """The most input positions, less one, that one output unit of a transposed conv reads.

    Output o reads input i = (o + P − k·D)/S for each tap k in [0, K) that makes it whole; taps
    that do are k ≡ k₀ (mod t), t = S/g, g = gcd(D, S), so at most ⌊(K − 1)/t⌋ + 1 of them, and
    neighbouring ones are D/g inputs apart: the span is ⌊(K − 1)/t⌋·D/g (D·(K − 1) when S = 1,
    as a convolution; 0 for K = S = 2: each output reads one input).
    """
    g = gcd(dilation, stride)
    return (kernel - 1) // (stride // g) * (dilation // g)


@register
class ConvTranspose(LayerRule):
    kind = "conv_transpose"
    summary = "transposed convolution (fractionally strided), 1-D/2-D/3-D"
    fields = {
        "out": Field(positive_int, doc="output channels"),
        "kernel": Field(positive_axes, doc="kernel size: int or one per axis ([height, width])"),
        "stride": Field(positive_axes, 1, "stride (the upsampling factor): int or one per axis"),
        "padding": Field(nonnegative_axes, 0, "removed from both ends of the output: int or one per axis"),
        "output_padding": Field(nonnegative_axes, 0,
                                "added at the end of the output, less than the stride or the dilation"),
        "dilation": Field(positive_axes, 1, "dilation: int or one per axis"),
        "groups": Field(positive_int, 1, "channel groups (in and out channels must divide)"),
        "bias": Field(boolean, True, "learnable bias per output channel"),
    }
    accepts = (2, 3, 4)

    def finish(self, cfg: Config) -> Config:
        for a, extra in enumerate(cfg["output_padding"]):
            s, d = cfg["stride"][a], cfg["dilation"][a]
            if extra >= max(s, d):
                raise FieldError(f"output_padding {extra} must be smaller than the stride ({s}) "
                                 f"or the dilation ({d}), as torch requires")
        return cfg

    def _check_channels(self, cfg: Config, x: Shape) -> None:
        check_groups(x[0], cfg["out"], cfg["groups"])

    def _args(self, cfg: Config, x: Shape) -> list[tuple[int, int, int, int, int, int]]:
        """Per axis: (size, kernel, stride, padding, output_padding, dilation)."""
        n = _check_axes(cfg, x)
        return [(x[1 + a], cfg["kernel"][a], cfg["stride"][a], cfg["padding"][a],
                 cfg["output_padding"][a], cfg["dilation"][a]) for a in range(n)]

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        self._check_channels(cfg, x)
        sizes = []
        for name, args in zip(axis_names(spatial_rank(x)), self._args(cfg, x)):
            out = transposed_output(*args)
            if out < 1:
                raise ShapeError(f"the {name} padding {args[3]} on each side leaves no output "
                                 f"(({args[0]} − 1)·{args[2]} + {args[5] * (args[1] - 1) + 1} "
                                 f"+ {args[4]} − 2·{args[3]} = {out})")
            sizes.append(out)
        return (cfg["out"], *sizes)

    def _weights(self, cfg: Config, x: Shape) -> int:
        """(C_in/g)·out·∏K: torch's weight is C_in × out/g × K…"""
        return x[0] // cfg["groups"] * cfg["out"] * prod(cfg["kernel"])

    def params(self, cfg: Config, x: Shape) -> int:
        self._check_channels(cfg, x)
        return self._weights(cfg, x) + (cfg["out"] if cfg["bias"] else 0)

    def macs(self, cfg: Config, x: Shape, y: Shape) -> int:
        """Every input element times each of the (out/g)·∏K weights it meets: ∏I · weights,
        fvcore's count for aten::_convolution with transposed=True (∏ weight shape · ∏ input
        spatial size); the outputs the padding crops away are computed too."""
        return prod(x[1:]) * self._weights(cfg, x)

    def window(self, cfg: Config, x: Shape) -> Window:
        """Per axis: extent span + 1 (:func:`transposed_span`), stride 1/S, offset (the centre of
        output 0's taps, input coordinates (P − k·D)/S for k in [0, K)) (P − D·(K − 1)/2)/S."""
        windows = []
        for _, kernel, stride, pad, _, dilation in self._args(cfg, x):
            centre = Fraction(2 * pad - dilation * (kernel - 1), 2 * stride)
            windows.append((transposed_span(kernel, stride, dilation) + 1, Fraction(1, stride),
                            centre))
        return tuple(windows)

    def describe(self, cfg: Config) -> str:
        text = f"{'×'.join(map(str, cfg['kernel']))}/{_fmt_axes(cfg['stride'])}"
        if any(cfg["padding"]):
            text += f" p{_fmt_axes(cfg['padding'], ',')}"
        if any(cfg["output_padding"]):
            text += f" op{_fmt_axes(cfg['output_padding'], ',')}"
        if any(d != 1 for d in cfg["dilation"]):
            text += f" d{_fmt_axes(cfg['dilation'], ',')}"
        if cfg["groups"] != 1:
            text += f" g{cfg['groups']}"
        if not cfg["bias"]:
            text += " nobias"
        return text

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        texts = []
        for (size, kernel, stride, pad, extra, dilation), out in zip(self._args(cfg, x), y[1:]):
            texts.append(f"({size} − 1)·{stride} − 2·{pad} + {dilation}·({kernel} − 1) + {extra} + 1"
                         f" = {out:,}")
        groups = cfg["groups"]
        inputs = str(x[0]) if groups == 1 else f"({x[0]}/{groups})"
        kernel = product_text(list(cfg["kernel"]))
        bias = f" + {cfg['out']}" if cfg["bias"] else ""
        return [*per_axis_lines(texts, spatial_rank(x)),
                f"params: {inputs}·{cfg['out']}·{kernel}{bias} = {self.params(cfg, x):,}",
                f"MACs: {product_text(list(x[1:]))} · {inputs}·{cfg['out']}·{kernel} = "
                f"{self.macs(cfg, x, y):,} (each input position meets every weight)"]


_INTERPOLATION = {1: "linear", 2: "bilinear", 3: "trilinear"}


def _scaled(size: Any, scale: int | float) -> Any:
    """⌊I·scale⌋ as torch computes it (in doubles), for integers and sympy expressions."""
    if isinstance(scale, int):
        return size * scale
    if _is_int(size):
        return floor(size * scale)
    import sympy

    return sympy.floor(size * sympy.nsimplify(scale))


@register
class Upsample(LayerRule):
    kind = "upsample"
    summary = "upsampling by interpolation (nearest, linear/bilinear/trilinear) to a scale or a size"
    fields = {
        "mode": Field(choice("nearest", "linear", "bilinear", "trilinear"), "nearest",
                      "nearest, or linear (1-D), bilinear (2-D), trilinear (3-D)"),
        "scale": Field(positive_scale_axes, None, "scale factor: a number or one per axis; "
                       "output ⌊I·scale⌋"),
        "size": Field(positive_axes, None, "output size: int or one per axis"),
        "like": Field(tensor_name, None, "the output takes this tensor's spatial size"),
        "align_corners": Field(boolean, False, "align the corner pixels (linear modes only)"),
    }
    accepts = (2, 3, 4)

    def finish(self, cfg: Config) -> Config:
        given = [key for key in ("scale", "size", "like") if cfg[key] is not None]
        if len(given) != 1:
            raise FieldError("upsample needs exactly one of scale, size and like, got "
                             f"{' and '.join(given) if given else 'none'}")
        if cfg["align_corners"] and cfg["mode"] == "nearest":
            raise FieldError("align_corners applies to the linear modes only, not nearest")
        return cfg

    def _check_mode(self, cfg: Config, x: Shape) -> None:
        mode, n = cfg["mode"], spatial_rank(x)
        if mode != "nearest" and mode != _INTERPOLATION[n]:
            names = {v: k for k, v in _INTERPOLATION.items()}
            raise ShapeError(f"{mode} interpolation is for {names[mode]}-D input; "
                             f"use {_INTERPOLATION[n]} (or nearest) on a {n}-D input")

    def spatial_output(self, cfg: Config, x: Shape) -> tuple[int, ...]:
        n = spatial_rank(x)
        if cfg["like"] is not None:
            return _same_rank_shape(x, cfg["like"], self.kind)
        key = "scale" if cfg["scale"] is not None else "size"
        _check_axes(cfg, x, key)
        if key == "size":
            return tuple(cfg["size"])
        return tuple(_scaled(x[1 + a], cfg["scale"][a]) for a in range(n))

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        self._check_mode(cfg, x)
        return (x[0], *self.spatial_output(cfg, x))

    def saved_for_backward(self, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
        """Nothing: torch's upsample backward needs only the sizes."""
        return ()

    def window(self, cfg: Config, x: Shape) -> Window:
        """Per axis: nearest reads 1 input per output, the linear modes 2 (1 when I = 1); the
        stride is I/O (align_corners: (I − 1)/(O − 1)), the mean input step per output; the
        offset, the centre of output 0's taps (the linear modes: at source ⌊max(0, (I/O − 1)/2)⌋
        + 1/2, align_corners at 0 + 1/2)."""
        y = self.spatial_output(cfg, x)
        windows = []
        for size, out in zip(x[1:], y):
            if cfg["mode"] == "nearest" or size == 1:
                windows.append((1, Fraction(size, out), Fraction(0)))
                continue
            if cfg["align_corners"]:
                step = Fraction(size - 1, out - 1) if out > 1 else Fraction(size)
                windows.append((2, step, Fraction(1, 2)))
                continue
            source = max(Fraction(size - out, 2 * out), Fraction(0))
            windows.append((2, Fraction(size, out), source.numerator // source.denominator
                            + Fraction(1, 2)))
        return tuple(windows)

    def describe(self, cfg: Config) -> str:
        if cfg["scale"] is not None:
            text = f"×{_fmt_axes(tuple(f'{s:g}' for s in cfg['scale']))}"
        elif cfg["size"] is not None:
            text = f"→{_fmt_axes(cfg['size'])}"
        else:
            text = _like_text(cfg["like"])
        text += f" {cfg['mode']}"
        return text + (" corners" if cfg["align_corners"] else "")

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        if cfg["scale"] is not None:
            texts = [f"{size}·{scale} = {out:,}" if isinstance(scale, int)
                     else f"⌊{size}·{scale:g}⌋ = {out:,}"
                     for size, scale, out in zip(x[1:], cfg["scale"], y[1:])]
            return per_axis_lines(texts, spatial_rank(x))
        if cfg["size"] is not None:
            return [f"{shape_text(x[1:])} → {shape_text(y[1:])} (the size given)"]
        return [f"{shape_text(x[1:])} → {shape_text(y[1:])} ({_like_text(cfg['like'])})"]


@register
class Pad(LayerRule):
    kind = "pad"
    summary = "padding before and after each spatial axis: zero, reflect or replicate"
    fields = {
        "padding": Field(before_after_axes, doc="int, or one per axis: an int or [before, after]"),
        "mode": Field(choice("zero", "reflect", "replicate"), "zero",
                      "zero, reflect (mirror, edge not repeated) or replicate (edge repeated)"),
    }
    accepts = (2, 3, 4)

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        n = _check_axes(cfg, x, "padding")
        names = axis_names(n)
        if cfg["mode"] == "reflect":
            for a, (before, after) in enumerate(cfg["padding"]):
                if _known(max(before, after) >= x[1 + a]):
                    raise ShapeError(f"reflect padding {max(before, after)} must be smaller than "
                                     f"the {names[a]} ({x[1 + a]})")
        return (x[0], *(x[1 + a] + sum(cfg["padding"][a]) for a in range(n)))

    def saved_for_backward(self, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
        """Nothing: the backward of padding needs only the sizes."""
        return ()

    def window(self, cfg: Config, x: Shape) -> Window:
        """A 1-wide window, stride 1, moved ``before`` positions back: the first output unit lies
        in the padding, before input 0."""
        return tuple((1, 1, Fraction(-before)) for before, _ in cfg["padding"])

    def describe(self, cfg: Config) -> str:
        pads = cfg["padding"]
        if all(b == a for b, a in pads):
            text = f"p{_fmt_axes(tuple(b for b, _ in pads), ',')}"
        else:
            text = "p" + ",".join(f"{b}+{a}" for b, a in pads)
        return text if cfg["mode"] == "zero" else f"{text} {cfg['mode']}"

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        texts = [f"{size} + {before} + {after} = {out:,}"
                 for size, (before, after), out in zip(x[1:], cfg["padding"], y[1:])]
        return per_axis_lines(texts, spatial_rank(x))


@register
class Crop(LayerRule):
    kind = "crop"
    summary = "centre crop to a size or to another tensor's size (U-Net's crop and concatenate)"
    fields = {
        "size": Field(positive_axes, None, "output size: int or one per axis"),
        "like": Field(tensor_name, None, "crop to this tensor's spatial size"),
    }
    accepts = (2, 3, 4)
    view_at_inference = view_in_training = True  # a slice of its input

    def finish(self, cfg: Config) -> Config:
        if (cfg["size"] is None) == (cfg["like"] is None):
            raise FieldError("crop needs exactly one of size and like")
        return cfg

    def _target(self, cfg: Config, x: Shape) -> tuple[int, ...]:
        if cfg["like"] is not None:
            return _same_rank_shape(x, cfg["like"], self.kind)
        _check_axes(cfg, x, "size")
        return tuple(cfg["size"])

    def offsets(self, cfg: Config, x: Shape) -> tuple[int, ...]:
        """Where the crop starts on each axis: (I − O)//2 (the U-Net paper; torchvision's
        center_crop rounds half to even instead, which differs when I − O ≡ 3 mod 4)."""
        return tuple((size - out) // 2 for size, out in zip(x[1:], self._target(cfg, x)))

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        target = self._target(cfg, x)
        if any(_known(out > size) for size, out in zip(x[1:], target)):
            raise ShapeError(f"cannot crop {shape_text(x[1:])} to the larger {shape_text(target)}")
        return (x[0], *target)

    def saved_for_backward(self, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
        """Nothing: the backward of a slice needs only the sizes."""
        return ()

    def window(self, cfg: Config, x: Shape) -> Window:
        """A 1-wide window, stride 1, moved forward by the offset."""
        return tuple((1, 1, Fraction(o)) for o in self.offsets(cfg, x))

    def describe(self, cfg: Config) -> str:
        return f"→{_fmt_axes(cfg['size'])}" if cfg["size"] is not None else _like_text(cfg["like"])

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        texts = [f"{size} → {out:,} from {offset} (({size} − {out})//2)"
                 for size, out, offset in zip(x[1:], y[1:], self.offsets(cfg, x))]
        return per_axis_lines(texts, spatial_rank(x))


@register
class Flatten(LayerRule):
    kind = "flatten"
    summary = "C×H×W (C×L, C×D×H×W) to a vector of C·H·W features"
    view_at_inference = view_in_training = True

    def saved_for_backward(self, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
        return ()

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        return (prod(x),)

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        return [f"{product_text(list(x))} = {y[0]:,}"] if len(x) > 1 else []

    def window(self, cfg: Config, x: Shape) -> Window | None:
        """Everything after a flatten sees the whole map: a window of H×W (L, D×H×W)."""
        return whole_map_window(x) if len(x) > 1 else None


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
               saves: Callable[..., tuple[Saved, ...]] | None = None, view: bool = False,
               describe: Callable[..., str] | None = None) -> None:
    """A point-wise kind, of any rank; ``saves`` overrides what autograd keeps (its input by
    default)."""
    body: dict[str, Any] = {"kind": kind, "summary": summary, "fields": fields or {},
                            "accepts": ALL_RANKS, "view_at_inference": view,
                            "view_in_training": view}
    if saves is not None:
        body["saved_for_backward"] = saves
    if describe is not None:
        body["describe"] = describe
    register(type(kind.title().replace("_", ""), (LayerRule,), body))


ALL_RANKS = (1, 2, 3, 4)  # (F,), C×L, C×H×W, C×D×H×W


# --------------------------------------------------------------------------------------------
# Modern layer kinds: layer, group and instance norm, layer scale, channel slices and shuffles,
# stochastic depth, more activations, and the merges (add, mul, concat) of graph specs.
#
# None of these has multiply-adds under the default convention (norms, scales, activations,
# element-wise and broadcast merges are not MACs); each states its parameters, buffers and what
# autograd saves for its backward as torch 2.x does (torchgen's derivatives.yaml, checked with
# torch.autograd.graph.saved_tensors_hooks in tests/test_layers_modern.py).


def integer(value: Any) -> int:
    """Any integer, negative ones counting from the end as Python's slices do."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(f"must be an integer, got {brief(value)}")
    return value


integer.json_schema = {"type": "integer"}  # type: ignore[attr-defined]


def choice(*words: str) -> Callable[[Any], str]:
    """One of ``words`` (case-insensitive), returned in lower case."""

    def parse(value: Any) -> str:
        word = value.strip().lower() if isinstance(value, str) else None
        if word not in words:
            allowed = ", ".join(repr(w) for w in words)
            raise FieldError(f"must be one of {allowed}, got {brief(value)}")
        return word

    parse.json_schema = {"type": "string", "enum": list(words)}  # type: ignore[attr-defined]
    return parse


AXIS_WORDS = {1: ("channels",), 2: ("channels", "length"), 3: ("channels", "height", "width"),
              4: ("channels", "depth", "height", "width")}
_ANY_AXIS_WORD = ("channels", "length", "depth", "height", "width")


def axis(value: Any) -> int | str:
    """A per-sample axis: its index (0 = channels, negative from the end) or its name."""
    if isinstance(value, str):
        return choice(*_ANY_AXIS_WORD)(value)
    return integer(value)


axis.json_schema = {"anyOf": [{"type": "integer"},  # type: ignore[attr-defined]
                              {"type": "string", "enum": list(_ANY_AXIS_WORD)}]}


def _shape_text(x: Shape) -> str:
    return "×".join(map(str, x))


def resolve_axis(value: int | str, x: Shape) -> int:
    """The per-sample axis index that ``value`` names for an input of shape ``x``."""
    rank = len(x)
    if isinstance(value, str):
        if value not in AXIS_WORDS[rank]:
            raise ShapeError(f"a {_shape_text(x)} input has no {value} axis "
                             f"(axes: {', '.join(AXIS_WORDS[rank])})")
        return AXIS_WORDS[rank].index(value)
    if not -rank <= value < rank:
        raise ShapeError(f"axis {value} is out of range for a {_shape_text(x)} input "
                         f"(0 to {rank - 1}, or −{rank} to −1 from the end)")
    return value % rank


def _check_divides(groups: int, channels: int, kind: str) -> None:
    if channels % groups:
        raise ShapeError(f"{kind} groups={groups} must divide the channels ({channels})")


_EPS = Field(number, 1e-5, "added to the variance for stability (does not change the counts)")


@register
class LayerNorm(LayerRule):
    kind = "layernorm"
    summary = ("layer normalisation over the channels at every position (ConvNeXt's "
               "LayerNorm2d) or over the last axis (torch's nn.LayerNorm(last size))")
    fields = {
        "over": Field(choice("channels", "last"), "channels",
                      "what to normalise: 'channels' (C, at every position) or 'last' (the "
                      "last axis, as nn.LayerNorm(normalized_shape=last size))"),
        "affine": Field(boolean, None, "learnable weight (and bias) per normalised element; "
                                       "default true"),
        "elementwise_affine": Field(boolean, None, "torch's name for affine (give one of them)"),
        "bias": Field(boolean, True, "learnable bias too (with affine)"),
        "eps": _EPS,
    }
    accepts = ALL_RANKS

    def finish(self, cfg: Config) -> Config:
        affine, torch_name = cfg["affine"], cfg["elementwise_affine"]
        if affine is not None and torch_name is not None and affine != torch_name:
            raise FieldError("affine and elementwise_affine disagree (they are one setting)")
        cfg["affine"] = cfg["elementwise_affine"] = (
            affine if affine is not None else torch_name if torch_name is not None else True)
        return cfg

    @staticmethod
    def normalized(cfg: Config, x: Shape) -> int:
        """The size of the normalised axis: C, or the last axis."""
        return x[0] if cfg["over"] == "channels" else x[-1]

    def params(self, cfg: Config, x: Shape) -> int:
        """A weight per normalised element, and a bias with ``bias``, when affine."""
        if not cfg["affine"]:
            return 0
        return (2 if cfg["bias"] else 1) * self.normalized(cfg, x)

    def saved_for_backward(self, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
        """native_layer_norm keeps its input, and the mean and 1/std of each normalised group
        (one group per position for ``channels``, per row of the last axis for ``last``)."""
        groups = prod(x) // self.normalized(cfg, x)
        return (*SAVED_INPUT, Saved("mean and inverse std", 2 * groups))

    def describe(self, cfg: Config) -> str:
        return cfg["over"] + ("" if cfg["affine"] else " noaffine")

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        if not cfg["affine"]:
            return []
        n = self.normalized(cfg, x)
        what = "channel" if cfg["over"] == "channels" else "element of the last axis"
        if cfg["bias"]:
            return [f"params: 2·{n} = {self.params(cfg, x):,} (a weight and a bias per {what})"]
        return [f"params: {n} = {self.params(cfg, x):,} (a weight per {what}, no bias)"]


@register
class GroupNorm(LayerRule):
    kind = "groupnorm"
    summary = "group normalisation: channels in groups, each normalised over its channels and positions"
    fields = {
        "groups": Field(positive_int, doc="channel groups (must divide the channels)"),
        "affine": Field(boolean, True, "learnable weight and bias per channel"),
        "eps": _EPS,
    }
    accepts = ALL_RANKS

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        _check_divides(cfg["groups"], x[0], self.kind)
        return x

    def params(self, cfg: Config, x: Shape) -> int:
        return 2 * x[0] if cfg["affine"] else 0

    def saved_for_backward(self, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
        """native_group_norm keeps its input and the mean and 1/std of each group."""
        return (*SAVED_INPUT, Saved("mean and inverse std", 2 * cfg["groups"]))

    def describe(self, cfg: Config) -> str:
        return f"g{cfg['groups']}" + ("" if cfg["affine"] else " noaffine")

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        if not cfg["affine"]:
            return []
        return [f"params: 2·{x[0]} = {self.params(cfg, x):,} (a weight and a bias per channel)"]


@register
class InstanceNorm(LayerRule):
    kind = "instancenorm"
    summary = "instance normalisation: each channel of each sample over its positions"
    fields = {
        "affine": Field(boolean, False, "learnable weight and bias per channel (torch: off)"),
        "track_running_stats": Field(boolean, False,
                                     "keep running mean and variance buffers (torch: off)"),
        "eps": _EPS,
    }
    accepts = (2, 3, 4)

    def params(self, cfg: Config, x: Shape) -> int:
        return 2 * x[0] if cfg["affine"] else 0

    def buffers(self, cfg: Config, x: Shape) -> int:
        """running_mean and running_var (C each) and num_batches_tracked (1)."""
        return 2 * x[0] + 1 if cfg["track_running_stats"] else 0

    def saved_for_backward(self, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
        """torch runs batch norm on the input seen as 1 × (N·C) × …: it keeps the input and a
        mean and 1/std per channel of each sample, and the weight and running statistics it
        repeated for every sample (C each per sample)."""
        c = x[0]
        saved = [*SAVED_INPUT, Saved("mean and inverse std", 2 * c)]
        if cfg["affine"]:
            saved.append(Saved("weight repeated per sample", c))
        if cfg["track_running_stats"]:
            saved.append(Saved("running statistics repeated per sample", 2 * c))
        return tuple(saved)

    def describe(self, cfg: Config) -> str:
        return " ".join(w for w, on in (("affine", cfg["affine"]),
                                         ("stats", cfg["track_running_stats"])) if on)

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        lines = []
        if cfg["affine"]:
            lines.append(f"params: 2·{x[0]} = {self.params(cfg, x):,}")
        if cfg["track_running_stats"]:
            lines.append(f"buffers: 2·{x[0]} + 1 = {self.buffers(cfg, x):,}")
        return lines


@register
class LayerScale(LayerRule):
    kind = "layer_scale"
    summary = "a learnable scale per channel, y = γ ⊙ x over every position (ConvNeXt's γ)"
    fields = {"init": Field(number, 1e-6, "initial value of every γ (ConvNeXt: 1e-6)")}
    accepts = ALL_RANKS

    def params(self, cfg: Config, x: Shape) -> int:
        return x[0]

    def saved_for_backward(self, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
        """The multiply keeps its input (for γ's gradient) and γ, a parameter."""
        return SAVED_INPUT

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        return [f"params: {x[0]} = {x[0]:,} (one γ per channel)"]


@register
class Slice(LayerRule):
    kind = "slice"
    summary = ("a range of channels, by start/stop or as one of torch.chunk's chunks "
               "(ShuffleNetV2's channel split); a view")
    fields = {
        "start": Field(integer, None, "first channel (negative: from the end; default 0)"),
        "stop": Field(integer, None, "channel after the last (negative: from the end; "
                                     "default the end)"),
        "chunks": Field(positive_int, None, "split the channels as torch.chunk(chunks) does …"),
        "index": Field(nonnegative_int, None, "… and take this chunk (0-based)"),
    }
    accepts = ALL_RANKS
    view_at_inference = view_in_training = True

    def finish(self, cfg: Config) -> Config:
        ranged = cfg["start"] is not None or cfg["stop"] is not None
        chunked = cfg["chunks"] is not None or cfg["index"] is not None
        if ranged and chunked:
            raise FieldError("slice takes start/stop or chunks/index, not both")
        if not ranged and not chunked:
            raise FieldError("slice needs start and/or stop, or chunks and index")
        if chunked and (cfg["chunks"] is None or cfg["index"] is None):
            raise FieldError("slice needs both chunks and index")
        return cfg

    def channels(self, cfg: Config, x: Shape) -> tuple[int, int]:
        """The [start, stop) channel range taken from an input of shape ``x``."""
        c = x[0]
        if cfg["chunks"] is not None:
            size = -(-c // cfg["chunks"])  # torch.chunk: chunks of ⌈C/chunks⌉, the last smaller
            count = -(-c // size)
            if cfg["index"] >= count:
                more = "" if count == cfg["chunks"] else f" (torch.chunk gives {count}, not {cfg['chunks']})"
                raise ShapeError(f"chunk {cfg['index']} does not exist: {c} channels in chunks "
                                 f"of {size} make {count}{more}")
            start = cfg["index"] * size
            return start, min(start + size, c)
        start, stop, _ = slice(cfg["start"], cfg["stop"]).indices(c)
        if stop <= start:
            raise ShapeError(f"channels {cfg['start']}:{cfg['stop']} of {c} are empty")
        return start, stop

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        start, stop = self.channels(cfg, x)
        return (stop - start, *x[1:])

    def saved_for_backward(self, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
        return ()  # a view: its backward needs only the sizes

    def describe(self, cfg: Config) -> str:
        if cfg["chunks"] is not None:
            return f"chunk {cfg['index']}/{cfg['chunks']}"
        start = "" if cfg["start"] is None else cfg["start"]
        stop = "" if cfg["stop"] is None else cfg["stop"]
        return f"{start}:{stop}"

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        start, stop = self.channels(cfg, x)
        if cfg["chunks"] is not None:
            size = -(-x[0] // cfg["chunks"])
            return [f"chunks of ⌈{x[0]}/{cfg['chunks']}⌉ = {size}: channels {start} to {stop - 1}"
                    f" = {y[0]:,}"]
        return [f"channels {start} to {stop - 1}: {stop} − {start} = {y[0]:,}"]


@register
class ChannelShuffle(LayerRule):
    kind = "channel_shuffle"
    summary = "interleave the channels of `groups` groups (ShuffleNet); a copy"
    fields = {"groups": Field(positive_int, doc="channel groups (must divide the channels)")}
    accepts = ALL_RANKS

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        _check_divides(cfg["groups"], x[0], self.kind)
        return x

    def saved_for_backward(self, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
        return ()  # views and a copy: their backward needs only the sizes

    def describe(self, cfg: Config) -> str:
        return f"g{cfg['groups']}"


@register
class DropPath(LayerRule):
    kind = "drop_path"
    summary = ("stochastic depth: drops the whole sample's tensor with probability p in "
               "training (torchvision's StochasticDepth, row mode); identity at inference")
    fields = {"p": Field(probability, doc="drop probability")}
    accepts = ALL_RANKS
    view_at_inference = True

    def saved_for_backward(self, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
        """The multiply by the per-sample keep mask (scaled by 1/(1 − p)) keeps the mask: one
        element per sample in the input's dtype. At p = 0 the layer returns its input."""
        return () if cfg["p"] == 0 else (Saved("mask", 1),)

    def describe(self, cfg: Config) -> str:
        return f"p{cfg['p']:g}"


@register
class PReLU(LayerRule):
    kind = "prelu"
    summary = "parametric ReLU: a learnable negative slope, shared or per channel"
    fields = {
        "num_parameters": Field(positive_int, 1, "slopes: 1 (shared) or the channel count"),
        "init": Field(number, 0.25, "initial slope"),
    }
    accepts = ALL_RANKS

    def params(self, cfg: Config, x: Shape) -> int:
        n = cfg["num_parameters"]
        if n not in (1, x[0]):
            raise ShapeError(f"prelu num_parameters={n} must be 1 or the channels ({x[0]})")
        return n

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        self.params(cfg, x)
        return x

    def describe(self, cfg: Config) -> str:
        return "" if cfg["num_parameters"] == 1 else "per channel"

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        if cfg["num_parameters"] == 1:
            return ["params: 1 (one slope shared by every channel)"]
        return [f"params: {x[0]} = {x[0]:,} (a slope per channel)"]


def _describe_gelu(self: LayerRule, cfg: Config) -> str:
    return "" if cfg["approximate"] == "none" else cfg["approximate"]


# --------------------------------------------------------------------------------------------
# Merges: two or more inputs (graph specs' from/with); ``x`` is the tuple of input shapes.


class _Merge(LayerRule):
    """Two or more inputs. In :meth:`saved_for_backward`, ``Saved("input")`` means every input
    itself (the operands autograd keeps)."""

    arity = None
    accepts = ALL_RANKS

    def output_shape(self, cfg: Config, x: tuple[Shape, ...]) -> Shape:  # type: ignore[override]
        if not x or not isinstance(x[0], tuple):  # one plain shape: the item named no operands
            raise ShapeError(f"{self.kind} needs two or more inputs (name them with from or with)")
        if len(x) < 2:
            raise ShapeError(f"{self.kind} needs two or more inputs, got {len(x)}")
        ranks = {len(s) for s in x}
        if len(ranks) > 1:
            raise ShapeError(f"{self.kind} needs inputs of the same rank, got {self._shapes(x)}")
        return self.merged(cfg, x)

    def merged(self, cfg: Config, x: tuple[Shape, ...]) -> Shape:
        raise NotImplementedError

    @staticmethod
    def _shapes(x: tuple[Shape, ...]) -> str:
        return ", ".join(_shape_text(s) for s in x)

    def saved_for_backward(self, cfg: Config, x: Any, y: Shape) -> tuple[Saved, ...]:
        return ()  # the gradient passes to each input as it is (its sizes suffice)

    def window(self, cfg: Config, x: Any) -> None:
        return None  # the engine unions the inputs' receptive fields


def _axis_name(axis_index: int, rank: int) -> str:
    return AXIS_WORDS[rank][axis_index]


def broadcast_shapes(x: tuple[Shape, ...], kind: str = "mul") -> Shape:
    """NumPy's broadcasting per sample, for inputs of one rank (the batch axis lines up): each
    axis equal, or 1 in all but one size."""
    rank = len(x[0])
    out = []
    for a in range(rank):
        sizes = {s[a] for s in x} - {1}
        if len(sizes) > 1:
            raise ShapeError(
                f"{kind} cannot broadcast {', '.join(_shape_text(s) for s in x)}: "
                f"{_axis_name(a, rank)} {' and '.join(map(str, sorted(sizes)))} differ "
                "(each axis must be equal or 1)")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


@register
class Add(_Merge):
    kind = "add"
    summary = ("element-wise sum of two or more inputs of the same shape (no broadcasting: "
               "a residual's shapes must agree)")

    def merged(self, cfg: Config, x: tuple[Shape, ...]) -> Shape:
        if len(set(x)) > 1:
            raise ShapeError(f"add needs inputs of the same shape, got {self._shapes(x)}")
        return x[0]


@register
class Mul(_Merge):
    kind = "mul"
    summary = ("element-wise product of two or more inputs, broadcast as NumPy does per sample "
               "(C×H×W · C×1×1: squeeze-and-excitation's gate)")

    def merged(self, cfg: Config, x: tuple[Shape, ...]) -> Shape:
        return broadcast_shapes(x, self.kind)

    def saved_for_backward(self, cfg: Config, x: Any, y: Shape) -> tuple[Saved, ...]:
        """Each product keeps both its operands (for each other's gradient), as they are, not
        broadcast: every input, and for three or more the partial products in between."""
        partial = []
        for k in range(2, len(x)):
            partial.append(Saved(f"partial product {k - 1}", prod(broadcast_shapes(x[:k]))))
        return (*SAVED_INPUT, *partial)

    def explain(self, cfg: Config, x: Any, y: Shape) -> list[str]:
        if len(set(x)) == 1:
            return []
        return [f"{' · '.join(_shape_text(s) for s in x)} → {_shape_text(y)} (broadcast)"]


@register
class ConcatMerge(_Merge):
    kind = "concat"
    summary = "concatenation of two or more inputs along one axis (default the channels)"
    fields = {"axis": Field(axis, 0, "per-sample axis: 0 or 'channels' (default), an index "
                                     "(1 = the first spatial axis, negative from the end) or "
                                     "'length', 'depth', 'height', 'width'")}

    def merged(self, cfg: Config, x: tuple[Shape, ...]) -> Shape:
        a = resolve_axis(cfg["axis"], x[0])
        rank = len(x[0])
        for other in x[1:]:
            for b in range(rank):
                if b != a and other[b] != x[0][b]:
                    raise ShapeError(
                        f"concat along {_axis_name(a, rank)} needs the inputs to agree on every "
                        f"other axis: {self._shapes(x)} differ in {_axis_name(b, rank)}")
        return tuple(sum(s[a] for s in x) if b == a else x[0][b] for b in range(rank))

    def describe(self, cfg: Config) -> str:
        value = cfg["axis"]
        return "" if value in (0, "channels") else f"axis {value}"

    def explain(self, cfg: Config, x: Any, y: Shape) -> list[str]:
        a = resolve_axis(cfg["axis"], x[0])
        sizes = " + ".join(str(s[a]) for s in x)
        return [f"{_axis_name(a, len(y))}: {sizes} = {y[a]:,}"]


# --------------------------------------------------------------------------------------------
# Placeholder: what an importer writes, with --allow-unknown, for an op that has no kind here.


def text(value: Any) -> str:
    """A non-empty line of text."""
    if not isinstance(value, str) or not value.strip() or "\n" in value:
        raise FieldError(f"must be a line of text, got {brief(value)}")
    return value.strip()


text.json_schema = {"type": "string", "minLength": 1}  # type: ignore[attr-defined]


def output_shape_value(value: Any) -> Shape:
    """A per-sample shape: ``[256, 14, 14]``, ``256x14x14`` or one integer for a vector."""
    if isinstance(value, str) and value.strip():
        parts = value.replace("×", "x").replace(" ", "").split("x")
        value = [int(p) if p.isdigit() and len(p) <= 19 else p for p in parts]
    elif isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= 4:
        raise FieldError(f"must be a shape per sample like [256, 14, 14] or 256x14x14 (one to "
                         f"four sizes), got {brief(value)}")
    return tuple(positive_int(v) for v in value)


output_shape_value.json_schema = {  # type: ignore[attr-defined]
    "anyOf": [{"type": "array", "items": {"type": "integer", "minimum": 1},
               "minItems": 1, "maxItems": 4},
              {"type": "string"}, {"type": "integer", "minimum": 1}]}


@register
class Placeholder(LayerRule):
    kind = "placeholder"
    summary = ("an op with no layer kind, kept by `cnncalc import --allow-unknown`: its output "
               "shape as traced, and nothing counted (no parameters, buffers or MACs)")
    fields = {
        "op": Field(text, doc="what the op was in the source model (e.g. torch.matmul)"),
        "shape": Field(output_shape_value, doc="its output shape per sample, as traced"),
    }
    accepts = ALL_RANKS

    def output_shape(self, cfg: Config, x: Shape) -> Shape:
        return tuple(cfg["shape"])

    def saved_for_backward(self, cfg: Config, x: Shape, y: Shape) -> tuple[Saved, ...]:
        return ()  # unknown: counted as nothing, as everything else about it

    def describe(self, cfg: Config) -> str:
        return cfg["op"]

    def explain(self, cfg: Config, x: Shape, y: Shape) -> list[str]:
        return [f"counts nothing: a placeholder for {cfg['op']} (no layer kind); its output "
                f"{_shape_text(y)} is as traced, its parameters and MACs are not counted"]


# relu, tanh, sigmoid and the softmaxes compute their gradient from their output; the others
# (hardtanh for relu6, leaky_relu, elu, gelu, silu, mish, hardswish, hardsigmoid) from their
# input, as torch's derivatives.yaml says.
_pointwise("relu", "rectified linear unit",
           {"inplace": Field(boolean, False, "overwrite its input (torch's inplace=True)")},
           saves=_saves_output)
_pointwise("relu6", "ReLU clipped at 6")
_pointwise("leaky_relu", "leaky ReLU", {"slope": Field(number, 0.01, "negative slope")})
_pointwise("elu", "exponential linear unit")
_pointwise("gelu", "Gaussian error linear unit",
           {"approximate": Field(choice("none", "tanh"), "none",
                                 "'none' (the exact erf form) or 'tanh' (the tanh approximation)")},
           describe=_describe_gelu)
_pointwise("silu", "sigmoid-weighted linear unit (swish)")
_pointwise("swish", "swish: the same as silu (x·sigmoid(x)), under Ramachandran et al.'s name")
_pointwise("mish", "mish: x·tanh(softplus(x))")
_pointwise("hardswish", "hard swish")
_pointwise("hardsigmoid", "hard sigmoid: relu6(x + 3)/6")
_pointwise("tanh", "hyperbolic tangent", saves=_saves_output)
_pointwise("sigmoid", "logistic sigmoid", saves=_saves_output)
_pointwise("softmax", "softmax over channels (features for a vector)", saves=_saves_output)
_pointwise("log_softmax", "log-softmax over channels (features for a vector)",
           saves=_saves_output)
_pointwise("identity", "does nothing (a placeholder)", saves=_saves_nothing, view=True)
