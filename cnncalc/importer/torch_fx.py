"""Import a ``torch.nn.Module`` as a spec, through ``torch.fx``.

Why ``torch.fx.symbolic_trace`` and not ``torch.export``: a spec's rows are the model's modules
(``layer3.2.conv1`` is the module ``layer3.2.conv1``), and fx keeps them. With torch's own
modules as leaves, each ``nn.Conv2d`` call is one node whose target *is* its dotted path and
whose module holds every setting; the functional code between modules (``out += identity``,
``torch.cat``, ``F.adaptive_avg_pool2d``, ``torch.flatten``) is one node per call, in the module
whose ``forward`` made it. ``torch.export`` lowers everything to ATen ops (a convolution is
``aten.convolution`` on parameter inputs, a batch norm in eval mode is
``_native_batch_norm_legit_no_training``, a flatten a ``view``), so the layers would have to be
rebuilt from ops and their module paths recovered from metadata. The price of fx: a ``forward``
whose control flow depends on tensor values cannot be traced symbolically; that is one error
naming the cause (``cnncalc import`` never guesses).

The graph is then run once, node by node (``torch.fx.Interpreter``), at the given input and a
batch of 2, under torch's fake tensors (shapes only, no arithmetic: a 300-layer model imports in
about a second), falling back to a real forward where an op has no fake kernel. Every node's
arguments are then concrete (``x.shape[2:]`` is a size, not a proxy), so settings computed in
``forward`` are read as they were used, and each layer's traced output shape is kept: the
written spec is analysed and held to them (:func:`cnncalc.importer.load.checked_yaml`).

Paths: a module's layer is at its own path. A module without parameters or buffers that is
called several times (torchvision's one ``relu`` per Bottleneck, called three times) gets one
layer per call: its path, then ``relu_1``, ``relu_2``. A module *with* parameters called twice
shares its weights, which a spec cannot say (it would count them twice): an error. A functional
op is named after its function inside the module whose ``forward`` called it
(``layer1.0.add``, ``features.denseblock1.denselayer1.cat``), numbered ``add_1``, … when
repeated; no name is ever a module's.

An op with no layer kind is an error naming it and its node; with ``allow_unknown`` it becomes a
``placeholder`` layer with its traced output shape, which counts nothing (docs/import.md).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import operator
import os
import re
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import quoted
from ..layers import REGISTRY
from . import GRAPH_INPUT, ImportedLayer, ImportedModel, unique_name
from .load import ImportFailed, shape_text
from .write import compact

BATCH = 2  # the traced batch: an op that moves samples across the batch axis shows as a change

# --------------------------------------------------------------------------------------------
# SOURCE: path/to/file.py:factory or package.module:factory


def load_factory(source: str) -> Callable[[], Any]:
    """The callable SOURCE names; each way it can fail is one line."""
    where, colon, name = source.rpartition(":")
    if not colon or not where or not name:
        raise ImportFailed(f"SOURCE {quoted(source)} must name a factory: path/to/model.py:"
                           "make_model or package.module:make_model (a callable returning an "
                           "nn.Module), or an .onnx file")
    if where.endswith(".py") or os.sep in where or "/" in where:
        container = _load_file(Path(where))
    else:
        container = _load_module(where)
    target: Any = container
    for part in name.split("."):
        if not part.isidentifier() or not hasattr(target, part):
            raise ImportFailed(f"{where} has no attribute {quoted(name)}")
        target = getattr(target, part)
    if not callable(target):
        raise ImportFailed(f"{where}:{name} is {_a(target)}, not a callable that returns an "
                           "nn.Module")
    return target


def _load_file(path: Path) -> Any:
    if not path.exists():
        raise ImportFailed(f"no such file: {quoted(str(path))}")
    if not path.is_file():
        raise ImportFailed(f"{quoted(str(path))} is not a file")
    name = f"cnncalc_import_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportFailed(f"cannot load {quoted(str(path))} as Python")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.modules[name] = module  # dataclasses and pickling look their module up there
    sys.path.insert(0, folder)  # its sibling modules import, as under `python file.py`
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: any failure is one line
        sys.modules.pop(name, None)
        raise ImportFailed(f"running {path} raised {_exception_text(exc)}") from None
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:
            pass
    return module


def _load_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name != name and not name.startswith(exc.name + "."):
            raise ImportFailed(f"importing {name} failed: it needs {exc.name}, which is not "
                               "installed") from None
        raise ImportFailed(f"no module named {quoted(name)} (for a file, give its path: "
                           "path/to/model.py:factory)") from None
    except Exception as exc:
        raise ImportFailed(f"importing {name} raised {_exception_text(exc)}") from None


def _a(value: Any) -> str:
    """'an int', 'a list': the value's type with its article."""
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _exception_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def instantiate(source: str, factory: Callable[[], Any] | None = None) -> Any:
    """Call SOURCE's factory (or ``factory``, already loaded) and return the ``nn.Module`` it
    makes."""
    from torch import nn

    factory = factory or load_factory(source)
    try:
        module = factory()
    except Exception as exc:
        raise ImportFailed(f"{source}: calling the factory raised {_exception_text(exc)} (it "
                           "must take no arguments)") from None
    if not isinstance(module, nn.Module):
        raise ImportFailed(f"{source}: the factory returned {_a(module)}, not a "
                           "torch.nn.Module")
    return module


def from_source(source: str, input_shape: tuple[int, ...] | None,
                allow_unknown: bool = False) -> ImportedModel:
    """Import the module SOURCE's factory returns, traced at ``input_shape`` (per sample)."""
    from ..backend import require_torch

    require_torch()
    factory = load_factory(source)  # SOURCE's own errors first
    if input_shape is None:
        raise ImportFailed("a torch model has no input size of its own: give one with --input "
                           "(C×H×W, e.g. --input 3x224x224)")
    module = instantiate(source, factory)
    name = source.rpartition(":")[2].split(".")[-1]
    return from_module(module, input_shape, source, allow_unknown, name=name)


# --------------------------------------------------------------------------------------------
# Tracing and running the graph


@dataclass(frozen=True)
class TensorValue:
    """A tensor met in the run: its full shape (batch first), and whether it is a parameter or
    buffer read with ``get_attr`` (a constant, not an activation)."""

    shape: tuple[int, ...]
    constant: str = ""  # the parameter's or buffer's dotted name

    @property
    def sample(self) -> tuple[int, ...]:
        return self.shape[1:]


def _summary(value: Any) -> Any:
    """``value`` with every tensor replaced by a :class:`TensorValue` (nothing large is kept)."""
    import torch

    if isinstance(value, torch.Tensor):
        return TensorValue(tuple(int(d) for d in value.shape))
    if isinstance(value, list):
        return [_summary(v) for v in value]
    if isinstance(value, tuple):  # torch.return_types and named tuples too
        return tuple(_summary(v) for v in value)
    if isinstance(value, dict):
        return {k: _summary(v) for k, v in value.items()}
    if isinstance(value, slice):
        return slice(_summary(value.start), _summary(value.stop), _summary(value.step))
    if isinstance(value, torch.Size):
        return tuple(int(d) for d in value)
    return value


def _trace(module: Any) -> Any:
    import torch.fx as fx

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m: Any, qualname: str) -> bool:
            # a subclass that keeps its base's forward is that layer (class MyConv(nn.Conv2d))
            # torch's own modules without a kind stay leaves too: the error names them
            return _module_rule(m) is not None or super().is_leaf_module(m, qualname)

    tracer = Tracer()
    try:
        graph = tracer.trace(module)
    except Exception as exc:
        cls = type(module).__name__
        raise ImportFailed(f"cannot trace {cls} with torch.fx: {_exception_text(exc)} "
                           "(forward's control flow or sizes depend on tensor values, which a "
                           "spec cannot express)") from None
    return fx.GraphModule(tracer.root, graph, type(module).__name__)


def _run(gm: Any, input_shape: tuple[int, ...]) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """Run ``gm`` once at a batch of :data:`BATCH`; each node's output and its arguments, as
    summaries. Fake tensors first (shapes only); a real forward if that fails."""
    import torch
    import torch.fx as fx

    values: dict[Any, Any] = {}
    calls: dict[Any, tuple[Any, Any]] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, n: Any) -> Any:
            with self._set_current_node(n):
                args, kwargs = self.fetch_args_kwargs_from_env(n)
                if n.op in ("call_function", "call_method", "call_module", "output"):
                    calls[n] = (_summary(args), _summary(kwargs))
                result = getattr(self, n.op)(n.target, args, kwargs)
            values[n] = _summary(result)
            if n.op == "get_attr" and isinstance(values[n], TensorValue):
                values[n] = TensorValue(values[n].shape, constant=str(n.target))
            return result

    def run(x: Any) -> None:
        values.clear()
        calls.clear()
        with torch.no_grad():
            Recorder(gm).run(x)

    try:
        from torch._subclasses.fake_tensor import FakeTensorMode

        with FakeTensorMode(allow_non_fake_inputs=True):
            run(torch.zeros(BATCH, *input_shape))
    except Exception:
        try:
            run(torch.zeros(BATCH, *input_shape))
        except Exception as exc:
            shape = shape_text(input_shape)
            raise ImportFailed(f"the model does not run at input {shape} (batch {BATCH}): "
                               f"{_exception_text(exc)}") from None
    return values, calls


# --------------------------------------------------------------------------------------------
# Converting one node


class Unknown(Exception):
    """The node has no layer kind (``reason`` says why, or is empty)."""


ALIAS = object()  # a conversion result: the node's output is its input (contiguous, clone, …)


@dataclass
class Call:
    """One node being converted: its concrete arguments and tensor shapes (per sample)."""

    node: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    inputs: list[tuple[int, ...]]  # the activation inputs' shapes per sample, in order
    output: tuple[int, ...] | None
    module: Any = None
    constants: list[TensorValue] = field(default_factory=list)

    def arg(self, index: int, name: str, default: Any = None) -> Any:
        """The argument at position ``index`` (counting ``self``/the input as 0) or keyword."""
        if name in self.kwargs:
            return self.kwargs[name]
        return self.args[index] if index < len(self.args) else default

    @property
    def rank(self) -> int:
        """The batched rank of the main input."""
        return len(self.inputs[0]) + 1 if self.inputs else 0


Conversion = Any  # (kind, config), ALIAS, or a list of (suffix, kind, config)


def _axes(value: Any, rank: int) -> list[Any]:
    """A per-axis torch setting (int or tuple) as a list of one per spatial axis."""
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value] * rank


def _spatial(call: Call) -> int:
    return len(call.inputs[0]) - 1


# modules ------------------------------------------------------------------------------------


def _conv(m: Any, call: Call) -> Conversion:
    if m.padding_mode != "zeros":
        raise Unknown(f"padding_mode={m.padding_mode!r} (cnncalc's conv pads with zeros)")
    padding = m.padding if isinstance(m.padding, str) else list(m.padding)
    return "conv", {"out": m.out_channels, "kernel": list(m.kernel_size),
                    "stride": list(m.stride), "padding": padding, "dilation": list(m.dilation),
                    "groups": m.groups, "bias": m.bias is not None}


def _conv_transpose(m: Any, call: Call) -> Conversion:
    if len(call.args) > 1 or "output_size" in call.kwargs:
        raise Unknown("called with output_size")
    return "conv_transpose", {
        "out": m.out_channels, "kernel": list(m.kernel_size), "stride": list(m.stride),
        "padding": list(m.padding), "output_padding": list(m.output_padding),
        "dilation": list(m.dilation), "groups": m.groups, "bias": m.bias is not None}


def _linear(m: Any, call: Call) -> Conversion:
    if len(call.inputs[0]) != 1:
        raise Unknown(f"nn.Linear on a {shape_text(call.inputs[0])} tensor per sample; cnncalc's "
                      "linear takes a vector (flatten first)")
    return "linear", {"out": m.out_features, "bias": m.bias is not None}


def _batchnorm(m: Any, call: Call) -> Conversion:
    return "batchnorm", {"affine": m.affine, "track_running_stats": m.track_running_stats}


def _layernorm(m: Any, call: Call) -> Conversion:
    shape = tuple(m.normalized_shape)
    if len(shape) != 1 or shape[0] != call.inputs[0][-1]:
        raise Unknown(f"normalized_shape {list(shape)} on {shape_text(call.inputs[0])}: cnncalc's "
                      "layernorm normalises the last axis or the channels")
    affine = m.elementwise_affine
    return "layernorm", {"over": "last", "affine": affine,
                         "bias": affine and getattr(m, "bias", None) is not None, "eps": m.eps}


def _groupnorm(m: Any, call: Call) -> Conversion:
    return "groupnorm", {"groups": m.num_groups, "affine": m.affine, "eps": m.eps}


def _instancenorm(m: Any, call: Call) -> Conversion:
    return "instancenorm", {"affine": m.affine, "track_running_stats": m.track_running_stats,
                            "eps": m.eps}


def _lrn(m: Any, call: Call) -> Conversion:
    return "lrn", {"size": m.size, "alpha": m.alpha, "beta": m.beta, "k": m.k}


def _maxpool_config(call: Call, kernel: Any, stride: Any, padding: Any, dilation: Any,
                    ceil_mode: bool, indices: bool) -> Conversion:
    if indices:
        raise Unknown("return_indices=True")
    rank = _spatial(call)
    return "maxpool", {"kernel": _axes(kernel, rank),
                       "stride": _axes(stride if stride not in (None, [], ()) else kernel, rank),
                       "padding": _axes(padding, rank), "dilation": _axes(dilation, rank),
                       "ceil_mode": bool(ceil_mode)}


def _maxpool(m: Any, call: Call) -> Conversion:
    return _maxpool_config(call, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode,
                           m.return_indices)


def _avgpool_config(call: Call, kernel: Any, stride: Any, padding: Any, ceil_mode: bool,
                    count_include_pad: bool, divisor: Any) -> Conversion:
    if divisor is not None:
        raise Unknown(f"divisor_override={divisor}")
    rank = _spatial(call)
    return "avgpool", {"kernel": _axes(kernel, rank),
                       "stride": _axes(stride if stride not in (None, [], ()) else kernel, rank),
                       "padding": _axes(padding, rank), "ceil_mode": bool(ceil_mode),
                       "count_include_pad": bool(count_include_pad)}


def _avgpool(m: Any, call: Call) -> Conversion:
    return _avgpool_config(call, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                           m.count_include_pad, getattr(m, "divisor_override", None))


def _adaptive(kind: str, output: Any, call: Call) -> Conversion:
    sizes = _axes(output, _spatial(call))
    # None keeps the input's size along that axis
    sizes = [call.inputs[0][1 + i] if s is None else s for i, s in enumerate(sizes)]
    return kind, {"output": sizes}


def _adaptive_avg(m: Any, call: Call) -> Conversion:
    return _adaptive("adaptive_avgpool", m.output_size, call)


def _adaptive_max(m: Any, call: Call) -> Conversion:
    if m.return_indices:
        raise Unknown("return_indices=True")
    return _adaptive("adaptive_maxpool", m.output_size, call)


_MODES = {"nearest": "nearest", "linear": "linear", "bilinear": "bilinear",
          "trilinear": "trilinear"}


def _upsample_config(call: Call, size: Any, scale: Any, mode: str, corners: Any) -> Conversion:
    if mode not in _MODES:
        raise Unknown(f"mode={mode!r} (cnncalc's upsample: nearest, linear, bilinear, "
                      "trilinear)")
    cfg: dict[str, Any] = {"mode": mode}
    rank = _spatial(call)
    if size is not None:
        cfg["size"] = _axes(size, rank)
    elif scale is not None:
        scales = _axes(scale, rank)
        cfg["scale"] = [int(s) if float(s).is_integer() else float(s) for s in scales]
    else:
        raise Unknown("neither size nor scale_factor")
    if mode != "nearest":
        cfg["align_corners"] = bool(corners)
    return "upsample", cfg


def _upsample(m: Any, call: Call) -> Conversion:
    return _upsample_config(call, m.size, m.scale_factor, m.mode, m.align_corners)


def _pad_config(call: Call, pad: Any, mode: str, value: Any) -> Conversion:
    pad = list(pad)
    rank = _spatial(call)
    if len(pad) % 2 or len(pad) // 2 > rank:
        raise Unknown(f"padding {pad} reaches past the spatial axes")
    if any(p < 0 for p in pad):
        raise Unknown(f"negative padding {pad}")
    mode = {"constant": "zero", "reflect": "reflect", "replicate": "replicate"}.get(mode, "")
    if not mode:
        raise Unknown(f"mode {mode!r}")
    if value not in (None, 0, 0.0):
        raise Unknown(f"padding with the value {value} (cnncalc's pad: zero, reflect, replicate)")
    # torch lists (before, after) from the last axis back; cnncalc one pair per axis in order
    pairs = [[pad[2 * i], pad[2 * i + 1]] for i in range(len(pad) // 2)][::-1]
    pairs = [[0, 0]] * (rank - len(pairs)) + pairs
    return "pad", {"padding": pairs, "mode": mode}


def _pad_module(m: Any, call: Call) -> Conversion:
    mode = {"ConstantPad": "constant", "ZeroPad": "constant", "ReflectionPad": "reflect",
            "ReplicationPad": "replicate"}
    name = next((v for k, v in mode.items() if type(m).__name__.startswith(k)), "circular")
    return _pad_config(call, m.padding, name, getattr(m, "value", 0))


def _flatten_dims(call: Call, start: int, end: int) -> Conversion:
    rank = call.rank
    if start % rank == 1 and end % rank == rank - 1:
        return "flatten", {}
    raise Unknown(f"flatten from dim {start} to {end} (cnncalc flattens everything but the "
                  "batch)")


def _flatten(m: Any, call: Call) -> Conversion:
    return _flatten_dims(call, m.start_dim, m.end_dim)


def _dropout(m: Any, call: Call) -> Conversion:
    return "dropout", {"p": float(m.p)}


def _plain(kind: str) -> Callable[[Any, Call], Conversion]:
    return lambda m, call: (kind, {})


def _relu(m: Any, call: Call) -> Conversion:
    return "relu", {"inplace": bool(m.inplace)}


def _hardtanh(m: Any, call: Call) -> Conversion:
    if (m.min_val, m.max_val) == (0.0, 6.0):
        return "relu6", {}
    raise Unknown(f"hardtanh({m.min_val}, {m.max_val})")


def _softmax_dim(kind: str, dim: Any, call: Call) -> Conversion:
    if dim is not None and dim % call.rank == 1:
        return kind, {}
    raise Unknown(f"{kind} over dim {dim} (cnncalc's is over the channels, dim 1)")


MODULES: dict[type, Callable[[Any, Call], Conversion]] = {}


def _register_modules() -> None:
    from torch import nn

    table: dict[Callable[[Any, Call], Conversion], tuple[type, ...]] = {
        _conv: (nn.Conv1d, nn.Conv2d, nn.Conv3d),
        _conv_transpose: (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d),
        _linear: (nn.Linear,),
        _batchnorm: (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm),
        _layernorm: (nn.LayerNorm,),
        _groupnorm: (nn.GroupNorm,),
        _instancenorm: (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d),
        _lrn: (nn.LocalResponseNorm,),
        _maxpool: (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d),
        _avgpool: (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d),
        _adaptive_avg: (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d),
        _adaptive_max: (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d),
        _upsample: (nn.Upsample,),
        _pad_module: (nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d, nn.ConstantPad1d,
                      nn.ConstantPad2d, nn.ConstantPad3d, nn.ReflectionPad1d,
                      nn.ReflectionPad2d, nn.ReflectionPad3d, nn.ReplicationPad1d,
                      nn.ReplicationPad2d, nn.ReplicationPad3d, nn.CircularPad1d,
                      nn.CircularPad2d, nn.CircularPad3d),
        _flatten: (nn.Flatten,),
        _dropout: (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout),
        _relu: (nn.ReLU,),
        _plain("relu6"): (nn.ReLU6,),
        _hardtanh: (nn.Hardtanh,),
        (lambda m, call: ("leaky_relu", {"slope": float(m.negative_slope)})): (nn.LeakyReLU,),
        _plain("elu"): (nn.ELU,),
        (lambda m, call: ("gelu", {"approximate": m.approximate})): (nn.GELU,),
        _plain("silu"): (nn.SiLU,),
        _plain("hardswish"): (nn.Hardswish,),
        _plain("hardsigmoid"): (nn.Hardsigmoid,),
        _plain("sigmoid"): (nn.Sigmoid,),
        _plain("tanh"): (nn.Tanh,),
        _plain("mish"): (nn.Mish,),
        (lambda m, call: ("prelu", {"num_parameters": m.num_parameters,
                                    "init": float(getattr(m, "init", 0.25))})): (nn.PReLU,),
        (lambda m, call: _softmax_dim("softmax", m.dim, call)): (nn.Softmax,),
        (lambda m, call: _softmax_dim("log_softmax", m.dim, call)): (nn.LogSoftmax,),
        _plain("softmax"): (nn.Softmax2d,),
        _plain("identity"): (nn.Identity,),
        (lambda m, call: ("channel_shuffle", {"groups": m.groups})): (nn.ChannelShuffle,),
    }
    for rule, classes in table.items():
        for cls in classes:
            MODULES[cls] = rule


def _module_rule(m: Any) -> Callable[[Any, Call], Conversion] | None:
    """The conversion of ``m``: its class's, or a base class's whose ``forward`` it keeps."""
    if not MODULES:
        _register_modules()
    for cls in type(m).__mro__:
        if cls in MODULES:
            return MODULES[cls] if type(m).forward is cls.forward else None
    return None


# functions and methods ----------------------------------------------------------------------


def _merge(kind: str) -> Callable[[Call], Conversion]:
    """``a + b`` and ``a * b`` of two activations (and ``gamma * x``: a layer scale)."""

    def convert(call: Call) -> Conversion:
        if call.constants and kind == "mul" and len(call.inputs) == 1:
            return _layer_scale(call)
        if call.constants:
            raise Unknown(f"{kind} of a tensor and the constant {call.constants[0].constant}")
        if len(call.inputs) != 2:
            raise Unknown(f"{kind} of a tensor and a number")
        if kind == "add" and call.inputs[0] != call.inputs[1]:
            raise Unknown(f"add broadcasts {shape_text(call.inputs[0])} and "
                          f"{shape_text(call.inputs[1])}; cnncalc's add needs one shape")
        return kind, {}

    convert.reads_constants = kind == "mul"  # type: ignore[attr-defined]  # a layer scale's γ
    return convert


def _layer_scale(call: Call) -> Conversion:
    """``gamma * x`` with gamma a parameter of C×1×…×1: a layer scale (ConvNeXt's)."""
    gamma, x = call.constants[0].shape, call.inputs[0]
    if gamma and gamma[0] == x[0] and all(d == 1 for d in gamma[1:]) and len(gamma) <= len(x):
        return "layer_scale", {}
    raise Unknown(f"mul by the constant {call.constants[0].constant} of shape "
                  f"{shape_text(gamma)}")


def _cat(call: Call) -> Conversion:
    tensors = call.arg(0, "tensors")
    dim = call.arg(1, "dim", 0)
    rank = call.rank
    if not isinstance(tensors, (list, tuple)) or call.constants:
        raise Unknown("concatenation of constants")
    if dim % rank == 0:
        raise Unknown("concatenation along the batch axis")
    if len(tensors) == 1:
        return ALIAS
    return "concat", {"axis": dim % rank - 1}


def _flatten_function(call: Call) -> Conversion:
    return _flatten_dims(call, call.arg(1, "start_dim", 0), call.arg(2, "end_dim", -1))


def _reshape(call: Call) -> Conversion:
    source, target = call.inputs[0], call.output
    if target == source:
        return ALIAS
    if target == (math.prod(source),) and len(source) > 1:
        return "flatten", {}
    raise Unknown(f"reshape of {shape_text(source)} to {shape_text(target or ())} per sample "
                  "(only flattening has a kind)")


def _mean(call: Call) -> Conversion:
    dims = call.arg(1, "dim")
    keep = call.arg(2, "keepdim", False)
    rank = call.rank
    spatial = set(range(2, rank))
    dims = {d % rank for d in (dims if isinstance(dims, (list, tuple)) else [dims])} \
        if dims is not None else set(range(rank))
    if dims != spatial or not spatial:
        raise Unknown(f"mean over dims {sorted(dims)} (only the mean over every spatial axis, "
                      "a global average pool, has a kind)")
    if keep:
        return "global_avgpool", {}
    return [("", "global_avgpool", {}), ("flatten", "flatten", {})]


def _getitem(call: Call) -> Conversion:
    index = call.args[1]
    shape = (BATCH, *call.inputs[0])
    items = list(index) if isinstance(index, tuple) else [index]
    if any(i is Ellipsis for i in items):
        at = items.index(Ellipsis)
        items[at:at + 1] = [slice(None)] * (len(shape) - len(items) + 1)
    if len(items) > len(shape) or not all(isinstance(i, slice) for i in items):
        raise Unknown(f"indexing with {index!r} (only slices of channels, or a centre crop, "
                      "have a kind)")
    items += [slice(None)] * (len(shape) - len(items))
    ranges = []
    for item, size in zip(items, shape):
        if not all(v is None or isinstance(v, int) for v in (item.start, item.stop, item.step)):
            raise Unknown(f"indexing with {index!r}")
        start, stop, step = item.indices(size)
        if step != 1:
            raise Unknown(f"a slice with step {step}")
        ranges.append((start, max(stop, start), size))
    if ranges[0][:2] != (0, BATCH):
        raise Unknown("a slice of the batch")
    changed = [i for i, (start, stop, size) in enumerate(ranges) if (start, stop) != (0, size)]
    if not changed:
        return ALIAS
    if changed == [1]:
        start, stop, _ = ranges[1]
        return "slice", {"start": start, "stop": stop}
    if 1 not in changed and all(start == (size - (stop - start)) // 2
                                for start, stop, size in ranges[2:]):
        return "crop", {"size": [stop - start for start, stop, _ in ranges[2:]]}
    raise Unknown(f"a slice {index!r} that is neither a channel range nor a centre crop")


def _positional(*names: str, defaults: dict[str, Any] | None = None
                ) -> Callable[[Call], dict[str, Any]]:
    """Named arguments of a torch function whose signature Python cannot read."""
    defaults = defaults or {}

    def read(call: Call) -> dict[str, Any]:
        return {name: call.arg(i + 1, name, defaults.get(name)) for i, name in enumerate(names)}

    return read


_MAXPOOL = _positional("kernel_size", "stride", "padding", "dilation", "ceil_mode",
                       "return_indices", defaults={"padding": 0, "dilation": 1,
                                                   "ceil_mode": False, "return_indices": False})
_AVGPOOL = _positional("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                       "divisor_override", defaults={"padding": 0, "ceil_mode": False,
                                                     "count_include_pad": True})


def _maxpool_function(call: Call) -> Conversion:
    a = _MAXPOOL(call)
    return _maxpool_config(call, a["kernel_size"], a["stride"], a["padding"], a["dilation"],
                           a["ceil_mode"], a["return_indices"])


def _avgpool_function(call: Call) -> Conversion:
    a = _AVGPOOL(call)
    return _avgpool_config(call, a["kernel_size"], a["stride"], a["padding"], a["ceil_mode"],
                           a["count_include_pad"], a["divisor_override"])


def _interpolate(call: Call) -> Conversion:
    return _upsample_config(call, call.arg(1, "size"), call.arg(2, "scale_factor"),
                            call.arg(3, "mode", "nearest"), call.arg(4, "align_corners"))


def _target_name(node: Any) -> str:
    return str(node.target) if node.op != "call_function" else \
        getattr(node.target, "__name__", str(node.target))


def _inplace(kind: str, position: int = 1) -> Callable[[Call], Conversion]:
    """relu and its in-place forms (``F.relu(x, inplace=True)``, ``x.relu_()``)."""

    def convert(call: Call) -> Conversion:
        inplace = bool(call.arg(position, "inplace", False)) or _target_name(call.node).endswith("_")
        return kind, ({"inplace": True} if inplace and kind == "relu" else {})

    return convert


def _function_rules() -> dict[Any, Callable[[Call], Conversion]]:
    import torch
    import torch.nn.functional as F

    def simple(kind: str) -> Callable[[Call], Conversion]:
        return lambda call: (kind, {})

    rules: dict[Any, Callable[[Call], Conversion]] = {
        operator.add: _merge("add"), operator.iadd: _merge("add"), torch.add: _merge("add"),
        operator.mul: _merge("mul"), operator.imul: _merge("mul"), torch.mul: _merge("mul"),
        torch.cat: _cat, torch.concat: _cat, torch.concatenate: _cat,
        torch.flatten: _flatten_function, torch.reshape: _reshape, torch.mean: _mean,
        operator.getitem: _getitem,
        F.relu: _inplace("relu", 1), torch.relu: _inplace("relu"), torch.relu_: _inplace("relu"),
        F.relu_: _inplace("relu"), F.relu6: simple("relu6"),
        F.hardtanh: lambda call: ("relu6", {}) if (call.arg(1, "min_val", -1.0),
                                                   call.arg(2, "max_val", 1.0)) == (0.0, 6.0)
        else _unknown("hardtanh outside [0, 6]"),
        F.leaky_relu: lambda call: ("leaky_relu", {"slope": float(call.arg(1, "negative_slope",
                                                                           0.01))}),
        F.elu: simple("elu"), F.silu: simple("silu"), F.hardswish: simple("hardswish"),
        F.hardsigmoid: simple("hardsigmoid"), F.mish: simple("mish"),
        F.gelu: lambda call: ("gelu", {"approximate": call.arg(1, "approximate", "none")}),
        torch.sigmoid: simple("sigmoid"), F.sigmoid: simple("sigmoid"),
        torch.tanh: simple("tanh"), F.tanh: simple("tanh"),
        F.softmax: lambda call: _softmax_dim("softmax", call.arg(1, "dim"), call),
        F.log_softmax: lambda call: _softmax_dim("log_softmax", call.arg(1, "dim"), call),
        F.max_pool1d: _maxpool_function, F.max_pool2d: _maxpool_function,
        F.max_pool3d: _maxpool_function,
        F.avg_pool1d: _avgpool_function, F.avg_pool2d: _avgpool_function,
        F.avg_pool3d: _avgpool_function,
        F.adaptive_avg_pool1d: lambda c: _adaptive("adaptive_avgpool", c.arg(1, "output_size"), c),
        F.adaptive_avg_pool2d: lambda c: _adaptive("adaptive_avgpool", c.arg(1, "output_size"), c),
        F.adaptive_avg_pool3d: lambda c: _adaptive("adaptive_avgpool", c.arg(1, "output_size"), c),
        F.adaptive_max_pool1d: lambda c: _adaptive_max_function(c),
        F.adaptive_max_pool2d: lambda c: _adaptive_max_function(c),
        F.adaptive_max_pool3d: lambda c: _adaptive_max_function(c),
        F.interpolate: _interpolate,
        F.pad: lambda c: _pad_config(c, c.arg(1, "pad"), c.arg(2, "mode", "constant"),
                                     c.arg(3, "value")),
        F.dropout: lambda c: ("dropout", {"p": float(c.arg(1, "p", 0.5))}),
        F.dropout1d: lambda c: ("dropout", {"p": float(c.arg(1, "p", 0.5))}),
        F.dropout2d: lambda c: ("dropout", {"p": float(c.arg(1, "p", 0.5))}),
        F.dropout3d: lambda c: ("dropout", {"p": float(c.arg(1, "p", 0.5))}),
        F.channel_shuffle: lambda c: ("channel_shuffle", {"groups": c.arg(1, "groups")}),
        torch.channel_shuffle: lambda c: ("channel_shuffle", {"groups": c.arg(1, "groups")}),
        torch.clone: lambda c: ALIAS,
        torch.chunk: _chunk, torch.split: _split,
        F.layer_norm: _layer_norm_function, F.linear: _linear_function,
        F.conv1d: _conv_function, F.conv2d: _conv_function, F.conv3d: _conv_function,
    }
    return rules


def _layer_norm_function(call: Call) -> Conversion:
    """``F.layer_norm(x, shape, weight, bias, eps)`` over the last axis (weight and bias are
    read from the module that owns them)."""
    shape = call.arg(1, "normalized_shape")
    shape = list(shape) if isinstance(shape, (list, tuple)) else [shape]
    weight, bias = call.arg(2, "weight"), call.arg(3, "bias")
    if shape != [call.inputs[0][-1]]:
        raise Unknown(f"layer_norm over {shape} of {shape_text(call.inputs[0])}: cnncalc's "
                      "layernorm normalises the last axis or the channels")
    return "layernorm", {"over": "last", "affine": weight is not None,
                         "bias": weight is not None and bias is not None,
                         "eps": float(call.arg(4, "eps", 1e-5))}


_layer_norm_function.reads_constants = True  # type: ignore[attr-defined]


def _weights(call: Call) -> tuple[TensorValue, Any]:
    """The weight and bias a functional conv or linear reads (module parameters, or tensors
    computed from them, as a weight-standardised convolution does)."""
    weight, bias = call.arg(1, "weight"), call.arg(2, "bias")
    if not isinstance(weight, TensorValue) or not weight.constant:
        raise Unknown("its weight is an activation, not a parameter")
    return weight, bias


def _conv_function(call: Call) -> Conversion:
    """``F.conv1d/2d/3d(x, weight, bias, stride, padding, dilation, groups)``."""
    weight, bias = _weights(call)
    rank = len(weight.shape) - 2
    padding = call.arg(4, "padding", 0)
    return "conv", {"out": weight.shape[0], "kernel": list(weight.shape[2:]),
                    "stride": _axes(call.arg(3, "stride", 1), rank),
                    "padding": padding if isinstance(padding, str) else _axes(padding, rank),
                    "dilation": _axes(call.arg(5, "dilation", 1), rank),
                    "groups": call.arg(6, "groups", 1), "bias": bias is not None}


def _linear_function(call: Call) -> Conversion:
    """``F.linear(x, weight, bias)`` on a vector."""
    weight, bias = _weights(call)
    if len(call.inputs[0]) != 1:
        raise Unknown(f"F.linear on a {shape_text(call.inputs[0])} tensor per sample; cnncalc's "
                      "linear takes a vector (flatten first)")
    return "linear", {"out": weight.shape[0], "bias": bias is not None}


for _rule in (_conv_function, _linear_function):
    _rule.reads_constants = True  # type: ignore[attr-defined]


def _adaptive_max_function(call: Call) -> Conversion:
    if call.arg(2, "return_indices", False):
        raise Unknown("return_indices=True")
    return _adaptive("adaptive_maxpool", call.arg(1, "output_size"), call)


def _unknown(reason: str) -> Conversion:
    raise Unknown(reason)


def _method_rules() -> dict[str, Callable[[Call], Conversion]]:
    def simple(kind: str) -> Callable[[Call], Conversion]:
        return lambda call: (kind, {})

    alias = lambda call: ALIAS  # noqa: E731
    return {
        "add": _merge("add"), "add_": _merge("add"), "__add__": _merge("add"),
        "mul": _merge("mul"), "mul_": _merge("mul"), "__mul__": _merge("mul"),
        "flatten": _flatten_function, "view": _reshape, "reshape": _reshape,
        "mean": _mean, "relu": _inplace("relu"), "relu_": _inplace("relu"),
        "sigmoid": simple("sigmoid"), "sigmoid_": simple("sigmoid"),
        "tanh": simple("tanh"), "tanh_": simple("tanh"),
        "softmax": lambda call: _softmax_dim("softmax", call.arg(1, "dim"), call),
        "log_softmax": lambda call: _softmax_dim("log_softmax", call.arg(1, "dim"), call),
        "contiguous": alias, "clone": alias, "detach": alias, "float": alias,
        "to": lambda call: ALIAS if call.output == call.inputs[0] else _unknown("to"),
        "chunk": _chunk, "split": _split,
    }


def _chunk(call: Call) -> Conversion:
    chunks, dim = call.arg(1, "chunks"), call.arg(2, "dim", 0)
    if dim % call.rank != 1:
        raise Unknown(f"chunk along dim {dim} (only the channels have a kind: slice)")
    return ("split", [{"chunks": chunks, "index": i} for i in range(len(call.output or ()))])


def _split(call: Call) -> Conversion:
    sizes, dim = call.arg(1, "split_size_or_sections" if "split_size_or_sections"
                          in call.kwargs else "split_size"), call.arg(2, "dim", 0)
    if dim % call.rank != 1:
        raise Unknown(f"split along dim {dim} (only the channels have a kind: slice)")
    channels = call.inputs[0][0]
    if isinstance(sizes, int):
        sizes = [min(sizes, channels - s) for s in range(0, channels, sizes)]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return ("split", [{"start": s, "stop": s + n} for s, n in zip(starts, sizes)])


def _stochastic_depth(call: Call) -> Conversion:
    """torchvision.ops.stochastic_depth(input, p, mode, training), which torchvision registers
    with ``torch.fx.wrap``: drop_path in row mode."""
    mode = call.arg(2, "mode", "row")
    if mode != "row":
        raise Unknown(f"stochastic depth in {mode!r} mode (drop_path is row mode)")
    return "drop_path", {"p": float(call.arg(1, "p"))}


# functions of other packages, by (module, name): they need not be importable here
NAMED_FUNCTIONS: dict[tuple[str, str], Callable[[Call], Conversion]] = {
    ("torchvision.ops.stochastic_depth", "stochastic_depth"): _stochastic_depth,
}

FUNCTIONS: dict[Any, Callable[[Call], Conversion]] = {}
_INPLACE_POSITION: dict[Any, int] = {}  # functions with an inplace argument: its position
METHODS: dict[str, Callable[[Call], Conversion]] = {}


def _op_text(node: Any, module: Any = None) -> str:
    """What the node calls, for messages and placeholders: ``nn.LSTM``, ``torch.matmul``,
    ``Tensor.permute``, ``operator.sub``."""
    if node.op == "call_module":
        cls = type(module)
        where = "nn" if cls.__module__.startswith("torch.nn") else cls.__module__
        return f"{where}.{cls.__name__}"
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    target = node.target
    where = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", str(target))
    if where.startswith("torch.nn.functional") or where == "torch._C._nn":
        where = "F"
    elif where in ("_operator", "operator"):
        where = "operator"
    elif where.startswith("torch"):
        where = "torch"
    return f"{where}.{name}" if where else name


def _op_name(node: Any, kind: str | None) -> str:
    """The last part of a functional op's path: its function's name (``add``, ``cat``,
    ``adaptive_avg_pool2d``), or for indexing and reshapes the kind it became."""
    if node.op == "call_method":
        name = str(node.target)
    else:
        name = getattr(node.target, "__name__", "op")
    name = name.strip("_") or "op"
    if name in ("getitem", "view", "reshape", "to") and kind:
        return kind
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


# --------------------------------------------------------------------------------------------
# The import


class _Float(float):
    """A float whose ``repr`` YAML 1.1 reads as a number: ``1.0e-06``, not ``1e-06`` (which the
    spec loader reads as a string). The writer writes floats with ``repr``."""

    def __repr__(self) -> str:
        text = float.__repr__(self)
        mantissa, e, exponent = text.partition("e")
        return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text


def _drop_defaults(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """The config without the fields equal to the kind's default (a shorter spec line)."""
    fields = REGISTRY[kind].fields
    out = {}
    for key, value in config.items():
        default = fields[key].default if key in fields and not fields[key].required else None
        short = compact(value)
        if key in fields and not fields[key].required and (short == default or (
                isinstance(default, (tuple, list)) and compact(default) == short)):
            continue
        out[key] = _Float(short) if isinstance(short, float) else short
    return out


_POINTWISE = {"relu", "relu6", "leaky_relu", "elu", "gelu", "silu", "hardswish", "hardsigmoid",
              "sigmoid", "tanh", "mish", "dropout", "identity", "drop_path"}


def _first(x: tuple[int, ...]) -> tuple[int, ...]:
    """A channels-last shape per sample (H, W, C) as channels first (C, H, W)."""
    return (x[-1], *x[:-1]) if len(x) > 1 else x


def _owner(constants: list[TensorValue]) -> str:
    """The module whose parameters an op reads (``features.0.1`` for ``features.0.1.weight``
    and ``.bias``), or ''."""
    owners = {c.constant.rpartition(".")[0] for c in constants}
    return owners.pop() if len(owners) == 1 else ""


def _nodes_in(value: Any) -> Any:
    """The fx nodes in an argument structure (lists, tuples, dicts, slices), in order."""
    if hasattr(value, "op") and hasattr(value, "target"):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _nodes_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _nodes_in(item)
    elif isinstance(value, slice):
        yield from _nodes_in((value.start, value.stop, value.step))


class _Importer:
    def __init__(self, module: Any, gm: Any, values: dict[Any, Any], calls: dict[Any, Any],
                 source: str, allow_unknown: bool):
        self.module, self.gm, self.values, self.calls = module, gm, values, calls
        self.source, self.allow_unknown = source, allow_unknown
        self.modules = dict(module.named_modules())
        self.taken: set[str] = {path for path in self.modules if path}
        self.layers: list[ImportedLayer] = []
        self.tensor: dict[Any, str] = {}  # node → the tensor name its readers use
        self.splits: dict[Any, tuple[str, list[dict[str, Any]]]] = {}
        # channel shuffle steps held (_shuffle_step): node → (input tensor, its shape, groups,
        # 1 after the view, 2 after the transpose)
        self.shuffles: dict[Any, tuple[str, tuple[int, ...], int, int]] = {}
        self.last: set[Any] = set()  # nodes whose tensor is channels last (after a permute)
        self.module_calls: dict[str, int] = {}
        self.placeholders: list[str] = []
        if not FUNCTIONS:
            import torch.nn.functional as F

            FUNCTIONS.update(_function_rules())
            METHODS.update(_method_rules())
            _INPLACE_POSITION.update({F.relu: 1, F.relu6: 1, F.elu: 2, F.leaky_relu: 2,
                                      F.silu: 1, F.hardswish: 1, F.hardsigmoid: 1, F.mish: 1,
                                      F.dropout: 3, F.dropout2d: 3, F.hardtanh: 3})

    # names ---------------------------------------------------------------------------------

    def _unique(self, path: str) -> str:
        return unique_name(path, self.taken, start=1)  # relu, relu_1, relu_2 as fx names calls

    def _scope(self, node: Any) -> str:
        stack = node.meta.get("nn_module_stack") or {}
        if not stack:
            return ""
        path = list(stack.values())[-1][0]
        return path if isinstance(path, str) else ""

    def _where(self, node: Any) -> str:
        scope = self._scope(node) if node.op != "call_module" else str(node.target)
        return f"in {scope}" if scope else "at the top level"

    # nodes ---------------------------------------------------------------------------------

    def run(self) -> tuple[list[ImportedLayer], list[str]]:
        graph = self.gm.graph
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        self.tensor[placeholders[0]] = GRAPH_INPUT
        self._check_shared_modules(graph)
        outputs: list[str] = []
        for node in graph.nodes:
            if node.op == "output":
                outputs = self._outputs(node)
            elif node.op in ("call_module", "call_function", "call_method"):
                self._node(node)
        return self.layers, outputs

    def _check_shared_modules(self, graph: Any) -> None:
        calls: dict[str, list[str]] = {}
        for node in graph.nodes:
            if node.op == "call_module":
                calls.setdefault(str(node.target), []).append(node.name)
        for target, names in calls.items():
            m = self.modules[target]
            owned = sum(p.numel() for p in m.parameters()) + sum(b.numel() for b in m.buffers())
            if len(names) > 1 and owned:
                raise ImportFailed(
                    f"cannot import {self.source}: the module {target} is called {len(names)} "
                    f"times (fx nodes {', '.join(names)}) and so shares its parameters; a spec "
                    "has one set per layer and would count them once per call")

    def _outputs(self, node: Any) -> list[str]:
        found = [self.tensor[n] for n in _nodes_in(node.args[0]) if n in self.tensor and
                 isinstance(self.values.get(n), TensorValue) and not self.values[n].constant]
        if not found:
            raise ImportFailed(f"{self.source}: the model returns no tensor")
        return list(dict.fromkeys(found))

    def _tensor_inputs(self, node: Any) -> tuple[list[Any], list[TensorValue]]:
        """The node's activation inputs (nodes, in argument order) and the constants it reads."""
        activations: list[Any] = []
        constants: list[TensorValue] = []
        for n in _nodes_in((node.args, node.kwargs)):
            v = self.values.get(n)
            if isinstance(v, TensorValue):
                (constants.append(v) if v.constant else activations.append(n))
            elif n in self.splits:
                activations.append(n)
        return activations, constants

    def _node(self, node: Any) -> None:
        out = self.values.get(node)
        is_tensor = isinstance(out, TensorValue)
        multi = isinstance(out, tuple) and out and all(isinstance(v, TensorValue) for v in out)
        activations, constants = self._tensor_inputs(node)
        if not is_tensor and not multi:
            if node.op == "call_module":
                self._refuse(node, f"it returns {_a(out)}, not one tensor",
                             activations)
            return  # arithmetic on sizes (x.shape[2:], x.size(0) // 2): read where it is used
        if node.op == "call_function" and node.target is operator.getitem and \
                activations and activations[0] in self.splits:
            self._split_item(node, activations[0])
            return
        if is_tensor and (self._shuffle_step(node, activations, out) or
                          self._permute(node, activations, out)):
            return
        if not activations and constants and is_tensor:
            # computed from parameters alone (a standardised weight): a constant still, named
            # after the parameter it came from, read where it is used
            self.values[node] = TensorValue(out.shape, constant=constants[0].constant)
            return
        if not activations:
            self._refuse(node, "it makes a tensor from no input", activations)
            return
        for a in activations:
            if a in self.shuffles:
                self._refuse(a, f"a reshape of {shape_text(self.values[a].sample)} per sample "
                                "that only a channel shuffle (view, transpose(1, 2), view) would "
                                "undo", [])
            if a not in self.tensor:  # read from an op that was refused with a placeholder
                self._refuse(node, "it reads a tuple of tensors", activations)
                return
        if is_tensor and out.shape[:1] != (BATCH,):
            self._refuse(node, f"its output {shape_text(out.shape)} has lost the batch axis",
                         activations)
            return
        args, kwargs = self.calls[node]
        args = tuple(self._constant(n, v) for n, v in zip(node.args, args))
        kwargs = {k: self._constant(node.kwargs.get(k), v) for k, v in kwargs.items()}
        inputs = [self.values[a].sample for a in activations
                  if isinstance(self.values.get(a), TensorValue)]
        module = self.modules.get(str(node.target)) if node.op == "call_module" else None
        last = [a in self.last for a in activations]
        output = out.sample if is_tensor else tuple(v.sample for v in out)
        if any(last) and is_tensor:  # channels last, after a permute: read as channels first
            inputs, output = [_first(x) for x in inputs], _first(output)
        call = Call(node, tuple(args), dict(kwargs), inputs, output, module, constants)
        try:
            if any(last) and not (all(last) and is_tensor):
                raise Unknown("it mixes channels-last and channels-first tensors")
            result = self._convert_last(call) if any(last) else self._convert(call)
        except Unknown as exc:
            self._refuse(node, str(exc), activations, module)
            return
        if multi:
            if not (isinstance(result, tuple) and result[0] == "split"):
                self._refuse(node, "it returns several tensors", activations, module)
                return
            self.splits[node] = (self.tensor[activations[0]], result[1])
            return
        if result is ALIAS:
            self.tensor[node] = self.tensor[activations[0]]
            return
        steps = result if isinstance(result, list) else [("", *result)]
        owner = _owner(constants)
        if steps[0][1] == "layer_scale" and constants[0].constant not in self.taken:
            path = constants[0].constant  # γ is the parameter at that path (ConvNeXt's CNBlock)
            self.taken.add(path)
        elif owner in self.modules and owner and not any(True for _ in
                                                         self.modules[owner].children()):
            # F.layer_norm(x, …, self.weight, self.bias): the layer is the module owning them
            if self.module_calls.get(owner):
                raise ImportFailed(
                    f"cannot import {self.source}: the parameters of {owner} are used twice "
                    f"(fx node {node.name} again); a spec has one set per layer and would count "
                    "them once per use")
            path = self._module_path(owner)
        else:
            path = self._path(node, steps[0][1])
        names = [self.tensor[a] for a in activations]
        if REGISTRY[steps[0][1]].arity == 1:
            names = names[:1]
        origin = f"fx node {node.name} ({_op_text(node, module)})"
        for i, (suffix, kind, config) in enumerate(steps):
            step_path = path if not suffix else self._unique(f"{path}_{suffix}")
            output = node.name if i == len(steps) - 1 else f"{node.name}__{i}"
            shape = call.output if i == len(steps) - 1 else None
            self.layers.append(ImportedLayer(step_path, kind, _drop_defaults(kind, config),
                                             names, output, origin, shape))
            names = [output]
        self._produced(node, activations, node.name)
        if any(last):
            self.last.add(node)

    def _constant(self, arg: Any, value: Any) -> Any:
        """An argument as the rules see it: a parameter (or a tensor computed from parameters
        alone) as its constant :class:`TensorValue`, anything else as it was run."""
        known = self.values.get(arg) if hasattr(arg, "op") else None
        return known if isinstance(known, TensorValue) and known.constant else value

    def _permute(self, node: Any, activations: list[Any], out: TensorValue) -> bool:
        """``x.permute(0, 2, 3, 1)`` (channels last) and back: no layer, but the layout is kept,
        so that what runs between (ConvNeXt's LayerNorm and Linear over the channels) is read
        as the channels-first layer it is."""
        if _target_name(node) != "permute" or len(activations) != 1 or \
                activations[0] not in self.tensor:
            return False
        args = self.calls[node][0]
        dims = list(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) \
            else list(args[1:])
        rank = len(out.shape)
        if not all(isinstance(d, int) for d in dims) or len(dims) != rank or rank < 3:
            return False
        dims = [d % rank for d in dims]
        source = activations[0]
        if source not in self.last and dims == [0, *range(2, rank), 1]:
            self.last.add(node)
        elif not (source in self.last and dims == [0, rank - 1, *range(1, rank - 1)]):
            return False
        self.tensor[node] = self.tensor[source]
        return True

    def _convert_last(self, call: Call) -> Conversion:
        """A layer on a channels-last tensor, whose shapes ``call`` gives channels first:
        ``nn.LayerNorm`` and ``F.layer_norm`` over the channels, ``nn.Linear`` as the 1×1
        convolution it is (the same parameters and multiply-adds; the zoo's ConvNeXt writes it
        so), and point-wise kinds as they are."""
        node, m = call.node, call.module
        channels = call.inputs[0][0]
        if node.op == "call_module" and _module_rule(m) is _linear:
            return "conv", {"out": m.out_features, "kernel": 1, "bias": m.bias is not None}
        if node.op == "call_module" and _module_rule(m) is _layernorm:
            if tuple(m.normalized_shape) != (channels,):
                raise Unknown(f"normalized_shape {list(m.normalized_shape)} over {channels} "
                              "channels last")
            return "layernorm", {"over": "channels", "affine": m.elementwise_affine,
                                 "bias": m.elementwise_affine and m.bias is not None,
                                 "eps": m.eps}
        # the rules below read the shapes as they are in torch: channels last
        last = Call(node, call.args, call.kwargs, [(*x[1:], x[0]) for x in call.inputs],
                    (*call.output[1:], call.output[0]), m, call.constants)
        result = self._convert(last)
        kind = result[0] if isinstance(result, tuple) else None
        if kind == "layernorm" and result[1]["over"] == "last":
            return "layernorm", {**result[1], "over": "channels"}
        if kind in _POINTWISE or (kind in ("add", "mul") and len(set(call.inputs)) == 1):
            return result
        raise Unknown(f"{_op_text(node, m)} on a channels-last tensor (after a permute): only "
                      "layer norms, linear layers over the channels and point-wise ops are read")

    def _module_path(self, target: str) -> str:
        """The path of a layer that is the module ``target`` (its first call: the module's
        path; later ones numbered)."""
        self.module_calls[target] = self.module_calls.get(target, 0) + 1
        if self.module_calls[target] == 1:
            self.taken.add(target)
            return target
        return self._unique(target)

    def _shuffle_step(self, node: Any, activations: list[Any], out: TensorValue) -> bool:
        """ShuffleNet's channel shuffle written out, as torchvision's ``channel_shuffle``:
        ``x.view(n, g, c // g, h, w)``, ``torch.transpose(x, 1, 2)``, ``.contiguous()``,
        ``x.view(n, c, h, w)``. The steps are held here and become one channel_shuffle layer at
        the last view; any other use of a held step is refused, naming it."""
        name = _target_name(node)
        if len(activations) != 1 or node.op == "call_module":
            return False
        source = activations[0]
        held = self.shuffles.get(source)
        shape = self.values[source].sample if source in self.values else ()
        if held is None:
            if name in ("view", "reshape") and source in self.tensor and \
                    len(out.sample) == len(shape) + 1 and out.sample[2:] == shape[1:] and \
                    out.sample[0] * out.sample[1] == shape[0] and out.sample[0] > 1:
                self.shuffles[node] = (self.tensor[source], shape, out.sample[0], 1)
                return True
            return False
        tensor, original, groups, stage = held
        args = self.calls[node][0]
        if name == "transpose" and stage == 1 and {a % (len(shape) + 1) for a in args[1:3]} \
                == {1, 2}:
            self.shuffles[node] = (tensor, original, groups, 2)
            return True
        if name == "contiguous":
            self.shuffles[node] = held
            return True
        if name in ("view", "reshape") and stage == 2 and out.sample == original:
            path = self._path(node, "channel_shuffle")
            self.layers.append(ImportedLayer(path, "channel_shuffle", {"groups": groups},
                                             [tensor], node.name,
                                             f"fx node {node.name} (a channel shuffle)",
                                             out.sample))
            self.tensor[node] = node.name
            return True
        return False

    def _produced(self, node: Any, activations: list[Any], name: str) -> None:
        self.tensor[node] = name
        # an in-place op (relu_, add_, nn.ReLU(inplace=True)) changed its input: later readers
        # of that tensor read this layer's output
        if node.op == "call_module":
            inplace = getattr(self.modules.get(str(node.target)), "inplace", False) is True
        else:
            inplace = _target_name(node).endswith("_") or node.kwargs.get("inplace") is True
            if node.target in _INPLACE_POSITION and len(node.args) > _INPLACE_POSITION[node.target]:
                inplace = inplace or node.args[_INPLACE_POSITION[node.target]] is True
        if inplace and activations:
            self.tensor[activations[0]] = name

    def _convert(self, call: Call) -> Conversion:
        node = call.node
        if node.op == "call_module":
            rule = _module_rule(call.module)
            if rule is None:
                raise Unknown("")
            return rule(call.module, call)
        if node.op == "call_function":
            rule = FUNCTIONS.get(node.target) or NAMED_FUNCTIONS.get(
                (getattr(node.target, "__module__", ""), getattr(node.target, "__name__", "")))
        else:
            rule = METHODS.get(str(node.target))
        if rule is None:
            raise Unknown("")
        if call.constants and not getattr(rule, "reads_constants", False):
            names = ", ".join(c.constant for c in call.constants)
            raise Unknown(f"it reads the parameter or buffer {names} directly, not through a "
                          "module")
        return rule(call)

    def _path(self, node: Any, kind: str) -> str:
        if node.op == "call_module":
            return self._module_path(str(node.target))
        scope = self._scope(node)
        base = _op_name(node, kind)
        return self._unique(f"{scope}.{base}" if scope else base)

    def _split_item(self, node: Any, source: Any) -> None:
        """``chunks[i]`` of a ``chunk`` or ``split`` along the channels: a slice layer."""
        tensor, configs = self.splits[source]
        index = self.calls[node][0][1]
        scope = self._scope(source)
        base = f"{_op_name(source, None)}_{index}"
        path = self._unique(f"{scope}.{base}" if scope else base)
        out = self.values[node]
        origin = f"fx node {source.name} ({_op_text(source)})[{index}]"
        self.layers.append(ImportedLayer(path, "slice", configs[index], [tensor], node.name,
                                         origin, out.sample))
        self.tensor[node] = node.name

    def _refuse(self, node: Any, reason: str, activations: list[Any], module: Any = None) -> None:
        op = _op_text(node, module if module is not None else
                      self.modules.get(str(node.target)) if node.op == "call_module" else None)
        out = self.values.get(node)
        usable = self.allow_unknown and isinstance(out, TensorValue) and activations and \
            all(a in self.tensor for a in activations[:1]) and out.shape[:1] == (BATCH,)
        if not usable:
            why = f": {reason}" if reason else ""
            hint = ("; --allow-unknown writes a placeholder that counts nothing"
                    if not self.allow_unknown else "; no placeholder can stand for it")
            raise ImportFailed(f"cannot import {self.source}: fx node {node.name} ({op}) "
                               f"{self._where(node)} has no cnncalc layer kind{why}{hint}")
        path = self._path(node, "placeholder")
        self.placeholders.append(op)
        self.layers.append(ImportedLayer(
            path, "placeholder", {"op": op, "shape": shape_text(out.sample).replace("×", "x")},
            [self.tensor[activations[0]]], node.name, f"fx node {node.name} ({op})", out.sample))
        self._produced(node, activations, node.name)


def _check_inputs(gm: Any, source: str) -> None:
    """One input without a default: a spec has one input."""
    inputs = [n for n in gm.graph.nodes if n.op == "placeholder"]
    required = [n.name for n in inputs if not n.args]
    if not inputs or len(required) > 1 or (inputs and inputs[0].args):
        listed = ", ".join(n.name for n in inputs) or "none"
        raise ImportFailed(f"{source}: forward takes {len(required)} required inputs "
                           f"({listed}); a spec has one")


def _uncalled(module: Any, gm: Any) -> list[tuple[str, int]]:
    """Modules holding parameters or buffers of their own that the traced forward never reaches
    (GoogLeNet's auxiliary heads at inference): neither called, nor inside a called module, nor
    read directly."""
    reached = {str(n.target) for n in gm.graph.nodes if n.op in ("call_module", "get_attr")}
    out = []
    for path, m in module.named_modules():
        own = sum(t.numel() for t in (*m.parameters(recurse=False), *m.buffers(recurse=False)))
        parts = path.split(".")
        inside = any(".".join(parts[:i]) in reached for i in range(1, len(parts) + 1))
        read = any(f"{path}.{name}" in reached for name, _ in m.named_parameters(recurse=False))
        if path and own and not inside and not read:
            out.append((path, own))
    return out


def from_module(module: Any, input_shape: tuple[int, ...], source: str = "",
                allow_unknown: bool = False, name: str = "") -> ImportedModel:
    """``module`` as an :class:`~cnncalc.importer.ImportedModel`, traced with torch.fx at
    ``input_shape`` (per sample, no batch) in eval mode; its training flags are put back."""
    source = source or type(module).__name__
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        gm = _trace(module)
        _check_inputs(gm, source)
        values, calls = _run(gm, tuple(input_shape))
        importer = _Importer(module, gm, values, calls, source, allow_unknown)
        layers, outputs = importer.run()
    finally:
        for m, mode in modes.items():
            m.training = mode
    if not layers:
        raise ImportFailed(f"{source}: the model has no layers (its forward returns its input)")
    notes = ["Traced with torch.fx in eval mode; every layer's output shape was checked against "
             "the trace."]
    if importer.placeholders:
        ops = ", ".join(dict.fromkeys(importer.placeholders))
        notes.append(f"{len(importer.placeholders)} placeholder layer(s) count nothing: {ops}.")
    unused = _uncalled(module, gm)
    if unused:
        count = sum(n for _, n in unused)
        shown = ", ".join(path for path, _ in unused[:5]) + (" …" if len(unused) > 5 else "")
        notes.append(f"Not in the spec: {len(unused)} module(s) with {count:,} parameters and "
                     f"buffers that forward does not call in eval mode: {shown}.")
    spec_name = re.sub(r"[^A-Za-z0-9_\-]", "_", name or type(module).__name__) or "imported"
    return ImportedModel(
        source=source, input_shape=tuple(input_shape), layers=layers, outputs=outputs,
        module_types={path: type(m).__name__ for path, m in module.named_modules() if path},
        name=spec_name, title=f"{type(module).__name__}, imported from {source}", notes=notes)


__all__ = ["ImportFailed", "from_module", "from_source", "instantiate", "load_factory"]
