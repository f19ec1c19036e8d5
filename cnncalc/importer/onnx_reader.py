"""Read an ONNX file as an :class:`~cnncalc.importer.ImportedModel`, statically.

The file is read with the ``onnx`` package only (no runtime, no torch): ``onnx.load``, then
``onnx.shape_inference.infer_shapes`` for the shapes the graph lacks. Nodes that compute only
from constants (initializers, ``Constant``, the static shapes of tensors) are evaluated with
numpy and make no layer; every other node becomes one cnncalc layer, or none where it does
nothing at inference (``Identity``, ``Dropout``, a ``Reshape`` to the shape it had), or is
refused: an op with no layer kind is an error naming the node and its op, never dropped.

Parameters are what the file holds: a convolution has a bias where the file gives it one as an
initializer (an exporter that fused batch norm into the convolution gives one; a computed
zero bias, as torch's dynamo exporter writes for ``bias=False``, is no parameter). Every
initializer a layer reads is checked against the kind's rule (a batch norm's four C-vectors, a
convolution's O×(C/g)×K weights), and a mismatch is an error.

Paths are the source model's module paths where the file records them: the initializer names
an exporter takes from ``state_dict`` (``layer1.0.conv1.weight``), torch's dynamo exporter's
``pkg.torch.onnx.name_scopes`` metadata, or the legacy exporter's node names
(``/layer1/layer1.0/conv1/Conv``); otherwise the node's name, made a valid spec name.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Location, SpecError
from . import GRAPH_INPUT, ImportedLayer, ImportedModel, unique_name

MAX_ONNX_BYTES = 2 << 30  # protobuf's own limit; larger files need external data anyway
_PATH_PART = re.compile(r"[A-Za-z0-9_\-]+\Z")


MAX_VALUE_ELEMENTS = 4096  # larger initializers are read for their shape only, never their data


class _Dims:
    """A stored tensor known by its shape only (weights: cnncalc needs their sizes, not values)."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = tuple(int(d) for d in shape)
        self.ndim = len(self.shape)
        self.size = 1
        for d in self.shape:
            self.size *= d

    def transpose(self, perm: list[int] | None) -> "_Dims":
        perm = list(perm) if perm is not None else list(range(self.ndim))[::-1]
        return _Dims(tuple(self.shape[p] for p in perm))


def _initializer(t: Any) -> Any:
    """An initializer's values where it is small and held in the file, else its shape."""
    from onnx import TensorProto, numpy_helper

    dims = tuple(int(d) for d in t.dims)
    held = t.data_location != TensorProto.EXTERNAL
    size = 1
    for d in dims:
        size *= d
    if held and size <= MAX_VALUE_ELEMENTS:
        try:
            return numpy_helper.to_array(t)
        except Exception:
            return _Dims(dims)
    return _Dims(dims)


class _Refused(Exception):
    """A node that cannot be imported: (message); made a SpecError with the file's name."""


@dataclass
class _Value:
    """A constant: its array, and whether it is a stored tensor (an initializer or a Constant
    node: a parameter when a layer reads it) or computed from others."""

    array: Any
    stored: bool
    name: str


@dataclass
class _Reader:
    path: str
    allow_unknown: bool
    shapes: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # with the batch axis
    consts: dict[str, _Value] = field(default_factory=dict)
    alias: dict[str, str] = field(default_factory=dict)  # tensor → the tensor it equals
    layers: list[ImportedLayer] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)
    module_types: dict[str, str] = field(default_factory=dict)
    leaves: set[str] = field(default_factory=set)  # module scopes with no scope under them
    unknown: list[str] = field(default_factory=list)
    producer: dict[str, Any] = field(default_factory=dict)
    readers: dict[str, list[Any]] = field(default_factory=dict)
    skip: set[int] = field(default_factory=set)  # nodes folded into another layer
    # tensors held channels-last (N×H×W×C, after a Transpose), followed as the channels-first
    # tensor they permute, through the ops that act on every position alike (ConvNeXt's
    # LayerNorm and pointwise Linear layers)
    last: set[str] = field(default_factory=set)
    outputs: set[str] = field(default_factory=set)  # the graph's outputs
    also_reads: dict[str, list[str]] = field(default_factory=dict)  # a placeholder's other inputs

    def fail(self, message: str) -> SpecError:
        return SpecError(message, Location(self.path))


def _load(path: str) -> Any:
    import onnx

    shown = str(path)
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise SpecError("no such file", Location(shown)) from None
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror or exc}", Location(shown)) from None
    if not Path(path).is_file():
        raise SpecError("is not a regular file; an ONNX model must be a file", Location(shown))
    if size > MAX_ONNX_BYTES:
        raise SpecError(f"the file is {size:,} bytes, over the limit of {MAX_ONNX_BYTES:,} for "
                        "an ONNX model", Location(shown))
    try:
        model = onnx.load(shown, load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends: not an ONNX file
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise SpecError(f"not an ONNX model (onnx.load: {reason})", Location(shown)) from None
    if not model.graph.node:
        raise SpecError("not an ONNX model, or one with no nodes (an empty graph)",
                        Location(shown))
    return model


def _dims(value_info: Any) -> tuple[Any, ...] | None:
    t = value_info.type
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    out: list[Any] = []
    for d in t.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value))
        else:
            out.append(d.dim_param or "?")
    return tuple(out)


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def from_onnx(path: str | Path, input_shape: tuple[int, ...] | str | None = None,
              allow_unknown: bool = False) -> ImportedModel:
    """The model in the ONNX file ``path``; ``input_shape`` (per sample, C×H×W) replaces the
    graph input's sizes (needed where they are symbolic); ``allow_unknown`` writes an op with
    no layer kind as a ``placeholder`` layer that counts nothing, instead of refusing it."""
    import onnx
    from onnx import numpy_helper

    shown = str(path)
    model = _load(shown)
    graph = model.graph
    init_names = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in init_names]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise SpecError(f"cannot import: the graph has {len(inputs)} inputs ({names}); a spec "
                        "has one", Location(shown))
    graph_input = inputs[0]
    dims = _dims(graph_input)
    if dims is None or len(dims) < 2:
        raise SpecError(f"cannot import: the graph input {graph_input.name!r} has no shape of "
                        "rank 2 or more (batch, channels, …)", Location(shown))
    if isinstance(input_shape, str):  # "3x224x224", as --input is written
        input_shape = tuple(int(n) for n in re.split(r"[x×]", input_shape.strip()) if n)
    if input_shape is not None:
        input_shape = tuple(int(n) for n in input_shape)
        if len(input_shape) != len(dims) - 1:
            raise SpecError(f"cannot import: --input has {len(input_shape)} axes, the graph "
                            f"input {graph_input.name!r} has {len(dims) - 1} per sample "
                            f"({_shape_text(dims)})", Location(shown))
        dims = (1, *input_shape)
    else:
        symbolic = [str(d) for d in dims[1:] if not isinstance(d, int)]
        if symbolic:
            raise SpecError(f"cannot import: the graph input {graph_input.name!r} is "
                            f"{_shape_text(dims)}, with symbolic sizes "
                            f"({', '.join(symbolic)}); give them with --input (cnncalc import "
                            f"{shown} --input {_example(dims[1:])})", Location(shown))
        dims = (1, *dims[1:])
    # fix the input's sizes (batch 1), then infer every shape the graph lacks
    tensor_type = graph_input.type.tensor_type
    del tensor_type.shape.dim[:]
    for d in dims:
        tensor_type.shape.dim.add().dim_value = int(d)
    if input_shape is not None:  # the shapes recorded for the old size are wrong now
        del graph.value_info[:]
        for out in graph.output:
            out.type.tensor_type.ClearField("shape")
    try:
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise SpecError(f"cannot import: ONNX shape inference failed ({reason})",
                        Location(shown)) from None
    graph = model.graph
    reader = _Reader(shown, allow_unknown)
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        got = _dims(vi)
        if got is not None:
            reader.shapes[vi.name] = got
    for t in graph.initializer:
        reader.consts[t.name] = _Value(_initializer(t), True, t.name)
    reader.alias[graph_input.name] = GRAPH_INPUT
    reader.outputs = {out.name for out in graph.output}
    reader.shapes[GRAPH_INPUT] = dims
    nodes = list(graph.node)
    for node in nodes:
        for name in node.output:
            reader.producer[name] = node
        for name in node.input:
            reader.readers.setdefault(name, []).append(node)
    _scan_scopes(reader, nodes)
    for node in nodes:
        if id(node) in reader.skip:
            continue
        _node(reader, node)
    outputs = []
    for out in graph.output:
        name = reader.resolve(out.name)
        if name in reader.consts:
            raise SpecError(f"cannot import: the graph output {out.name!r} is a constant",
                            Location(shown))
        outputs.append(name)
    if not reader.layers:
        raise SpecError("cannot import: the graph has no layers (every output is its input)",
                        Location(shown))
    used = _live(reader.layers, outputs, reader.also_reads)
    layers = [layer for layer in reader.layers if layer.output in used]
    notes = []
    if reader.unknown:
        notes.append(f"{len(reader.unknown)} ONNX op(s) with no layer kind are placeholders "
                     f"that count nothing: {', '.join(sorted(set(reader.unknown)))}")
    stem = re.sub(r"[^A-Za-z0-9_\-]", "_", Path(shown).stem) or "imported"
    producer = f"{model.producer_name} {model.producer_version}".strip()
    title = f"{stem} (ONNX, opset {_opset(model)}{', ' + producer if producer else ''})"
    return ImportedModel(source=shown, input_shape=tuple(int(d) for d in dims[1:]),
                         layers=layers, outputs=outputs, module_types=reader.module_types,
                         name=stem, title=title, notes=notes)


def _opset(model: Any) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    return 0


def _shape_text(dims: tuple[Any, ...], unknown: str = "") -> str:
    return "x".join(str(d) if isinstance(d, int) else (unknown or str(d)) for d in dims)


def _example(dims: tuple[Any, ...]) -> str:
    """``3xHxW`` for a C×H×W input whose sizes are symbolic: the known ones as they are."""
    names = ("L",) if len(dims) == 2 else ("H", "W") if len(dims) == 3 else ("D", "H", "W")
    out = [str(dims[0]) if isinstance(dims[0], int) else "C"]
    for d, name in zip(dims[1:], names):
        out.append(str(d) if isinstance(d, int) else name)
    return "x".join(out)


def _live(layers: list[ImportedLayer], outputs: list[str],
          also_reads: dict[str, list[str]]) -> set[str]:
    """The tensors the outputs depend on: layers nothing reads are not the model's. What a
    placeholder reads beyond its one input stays (the spec warns that nothing reads it)."""
    made = {layer.output: layer for layer in layers}
    live: set[str] = set()
    stack = list(outputs)
    while stack:
        t = stack.pop()
        if t in live:
            continue
        live.add(t)
        if t in made:
            stack.extend(made[t].inputs)
            stack.extend(also_reads.get(t, ()))
    return live


# --------------------------------------------------------------------------------------------
# Module paths


def _scopes(node: Any) -> tuple[list[str], list[str]] | None:
    """torch's dynamo exporter: the module scopes of the node (``['', 'layer1', 'layer1.0',
    'add']``, the last the op's own name) and their classes."""
    meta = {p.key: p.value for p in node.metadata_props}
    raw = meta.get("pkg.torch.onnx.name_scopes")
    if not raw:
        return None
    try:
        scopes = ast.literal_eval(raw)
        classes = ast.literal_eval(meta.get("pkg.torch.onnx.class_hierarchy", "[]"))
    except (ValueError, SyntaxError):
        return None
    if not isinstance(scopes, list) or not scopes:
        return None
    return [str(s) for s in scopes], [str(c) for c in classes]


def _legacy_scopes(name: str) -> list[str] | None:
    """torch's legacy exporter names nodes ``/layer1/layer1.0/conv1/Conv``: module scopes, each
    extending the one before, then the op."""
    if not name.startswith("/") or len(name) < 2:
        return None
    parts = name.split("/")[1:-1]
    out: list[str] = []
    last = ""  # the raw segment before: a Sequential's child is named "downsample.0" under it
    for part in parts:
        if not part:
            return None
        if out and last and part.startswith(last + "."):
            out.append(out[-1] + part[len(last):])
        else:
            out.append(f"{out[-1]}.{part}" if out else part)
        last = part
    return out


def _scan_scopes(reader: _Reader, nodes: list[Any]) -> None:
    """Which module scopes are leaves (no node sits deeper), and each scope's class."""
    seen: set[str] = set()
    parents: set[str] = set()
    for node in nodes:
        got = _scopes(node)
        if got is not None:
            scopes, classes = got
            modules = [s for s in scopes[:-1] if s]
            for s, c in zip(scopes[:-1], classes[:-1]):
                if s and c:
                    reader.module_types.setdefault(_clean_path(s), c.rsplit(".", 1)[-1])
        else:
            modules = _legacy_scopes(node.name) or []
        if modules:
            seen.add(modules[-1])
            parents.update(modules[:-1])
    reader.leaves = seen - parents


def _clean_path(path: str) -> str:
    parts = [re.sub(r"[^A-Za-z0-9_\-]", "_", p) or "_" for p in path.split(".")]
    return ".".join(parts)


_SUFFIX = re.compile(r"_\d+\Z")


def _node_path(reader: _Reader, node: Any, weight: str | None) -> str:
    """The layer's module path, unique among the layers."""
    path = None
    if weight and "." in weight and all(_PATH_PART.match(p) for p in weight.split(".")):
        # a state_dict name: the module's weight, or a parameter of its own (layer_scale)
        path = weight.rsplit(".", 1)[0] if weight.endswith((".weight", ".scale")) else weight
    if path is None:
        got = _scopes(node)
        if got is not None:
            scopes = got[0]
            module, op = (scopes[-2] if len(scopes) >= 2 else ""), scopes[-1]
            if module and module in reader.leaves:
                path = module
            else:
                op = _SUFFIX.sub("", op) or node.op_type.lower()
                path = f"{module}.{op}" if module else op
        else:
            modules = _legacy_scopes(node.name)
            if modules is not None:
                module = modules[-1] if modules else ""
                if module in reader.leaves:
                    path = module
                else:
                    op = node.op_type.lower()
                    path = f"{module}.{op}" if module else op
    if path is None:
        path = node.name or node.op_type.lower()
        path = re.sub(r"[^A-Za-z0-9_\-]", "_", path.strip("/").replace("/", "."))
    path = _clean_path(path.strip("."))
    return _unique_path(reader, path)


def _unique_path(reader: _Reader, path: str) -> str:
    return unique_name(path, reader.taken)


# --------------------------------------------------------------------------------------------
# Constants


def _resolve(self: _Reader, name: str) -> str:
    while name in self.alias and self.alias[name] != name:
        name = self.alias[name]
    return name


_Reader.resolve = _resolve  # type: ignore[attr-defined]


def _fold(reader: _Reader, node: Any) -> bool:
    """Evaluate a node of constants; False when some input is an activation."""
    import numpy as np
    from onnx import numpy_helper

    op, a = node.op_type, _attrs(node)
    ins = [i for i in node.input]
    if op == "Constant":
        if "value" in a:
            value = numpy_helper.to_array(a["value"])
        elif "value_float" in a:
            value = np.array(a["value_float"], dtype=np.float32)
        elif "value_floats" in a:
            value = np.array(a["value_floats"], dtype=np.float32)
        elif "value_int" in a:
            value = np.array(a["value_int"], dtype=np.int64)
        elif "value_ints" in a:
            value = np.array(a["value_ints"], dtype=np.int64)
        else:
            value = None
        reader.consts[node.output[0]] = _Value(value, True, node.output[0])
        return True
    if op == "Shape":
        known = reader.consts.get(reader.resolve(ins[0]))
        shape = tuple(known.array.shape) if known is not None and known.array is not None else \
            reader.shapes.get(reader.resolve(ins[0])) or reader.shapes.get(ins[0])
        if shape is None or not all(isinstance(d, int) for d in shape):
            return False
        start, end = a.get("start", 0), a.get("end", None)
        reader.consts[node.output[0]] = _Value(np.array(shape[start:end], dtype=np.int64),
                                               False, node.output[0])
        return True
    if op == "CastLike" and reader.resolve(ins[0]) in reader.consts:  # the other: a dtype only
        src = reader.consts[reader.resolve(ins[0])]
        reader.consts[node.output[0]] = _Value(src.array, False, node.output[0])
        return True
    present = [i for i in ins if i]
    if not all(reader.resolve(i) in reader.consts for i in present):
        return False
    vals = [reader.consts[reader.resolve(i)].array if i else None for i in ins]
    if op == "Identity":
        src = reader.consts[reader.resolve(ins[0])]
        reader.consts[node.output[0]] = _Value(src.array, src.stored, node.output[0])
        return True
    try:
        if op in ("Transpose", "Reshape", "Cast", "Squeeze", "Unsqueeze", "DequantizeLinear",
                  "QuantizeLinear") and \
                reader.consts[reader.resolve(ins[0])].stored:  # the same values, laid out anew
            src = vals[0]
            if op in ("DequantizeLinear", "QuantizeLinear", "Cast"):
                out = src  # the same weights in another type
            elif isinstance(src, _Dims):
                out = src.transpose(a.get("perm")) if op == "Transpose" else None
            else:
                out = _evaluate(op, a, vals)
            if out is not None:
                reader.consts[node.output[0]] = _Value(out, True, node.output[0])
                return True
        if op == "Transpose" and isinstance(vals[0], _Dims):
            out = vals[0].transpose(a.get("perm"))
        elif any(isinstance(v, _Dims) for v in vals):
            out = None
        else:
            out = _evaluate(op, a, vals)
    except Exception:
        out = None
    for name in node.output:
        reader.consts[name] = _Value(out, False, name)
    return True


def _evaluate(op: str, a: dict[str, Any], v: list[Any]) -> Any:
    import numpy as np

    if any(x is None for x in v[:1]):
        return None
    if op in ("Cast",):
        return v[0]
    if op == "CastLike":
        return v[0].astype(v[1].dtype) if v[1] is not None else v[0]
    if op == "Expand":
        return v[0] * np.ones(tuple(int(n) for n in v[1]), dtype=v[0].dtype)
    if op == "ConstantOfShape":
        fill = a.get("value")
        from onnx import numpy_helper
        base = numpy_helper.to_array(fill) if fill is not None else np.zeros(1, np.float32)
        return np.full(tuple(int(n) for n in v[0]), base.reshape(-1)[0], dtype=base.dtype)
    if op == "Gather":
        return np.take(v[0], v[1], axis=a.get("axis", 0))
    if op == "Unsqueeze":
        axes = a.get("axes", None) if len(v) < 2 or v[1] is None else list(v[1])
        out = v[0]
        for ax in sorted(int(x) % (out.ndim + len(axes)) for x in axes):
            out = np.expand_dims(out, ax)
        return out
    if op == "Squeeze":
        axes = a.get("axes", None) if len(v) < 2 or v[1] is None else list(v[1])
        return np.squeeze(v[0], axis=tuple(int(x) for x in axes) if axes is not None else None)
    if op == "Concat":
        return np.concatenate([np.atleast_1d(x) for x in v], axis=a.get("axis", 0))
    if op == "Reshape":
        shape = [int(s) for s in v[1]]
        shape = [v[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
        return v[0].reshape(shape)
    if op == "Transpose":
        return np.transpose(v[0], a.get("perm"))
    if op == "Slice":
        starts, ends = list(v[1]), list(v[2])
        axes = list(v[3]) if len(v) > 3 and v[3] is not None else list(range(len(starts)))
        steps = list(v[4]) if len(v) > 4 and v[4] is not None else [1] * len(starts)
        index = [slice(None)] * v[0].ndim
        for s, e, ax, st in zip(starts, ends, axes, steps):
            index[int(ax)] = slice(int(s), int(e), int(st))
        return v[0][tuple(index)]
    binary = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
              "Pow": np.power, "Equal": np.equal, "Max": np.maximum, "Min": np.minimum}
    if op in binary:
        return binary[op](v[0], v[1])
    if op == "Sqrt":
        return np.sqrt(v[0])
    if op == "Neg":
        return -v[0]
    if op == "Range":
        return np.arange(v[0], v[1], v[2])
    if op == "Where":
        return np.where(v[0], v[1], v[2])
    return None


# --------------------------------------------------------------------------------------------
# Nodes to layers


def _per_sample(reader: _Reader, name: str) -> tuple[int, ...] | None:
    """The per-sample shape, channels first (a channels-last tensor's own shape permuted)."""
    shape = reader.shapes.get(name)
    if shape is None or len(shape) < 1 or not all(isinstance(d, int) for d in shape[1:]):
        return None
    if name in reader.last and len(shape) > 2:
        return (shape[-1], *shape[1:-1])
    return tuple(shape[1:])


# ops that act on every position alike, so that a channels-last tensor may pass through them
_POSITIONWISE = {"LayerNormalization", "MatMul", "Add", "Mul", "Sum", "Relu", "Gelu", "Sigmoid",
                 "Tanh", "HardSwish", "HardSigmoid", "Elu", "Mish", "LeakyRelu", "Clip",
                 "Identity", "Dropout", "Transpose", "Cast", "CastLike", "QuantizeLinear",
                 "DequantizeLinear"}


def _origin(node: Any) -> str:
    return f"ONNX node {node.name or node.output[0]} ({node.op_type})"


def _node(reader: _Reader, node: Any) -> None:
    if _fold(reader, node):
        return
    try:
        _layer(reader, node)
    except _Refused as exc:
        message = str(exc)
        if not reader.allow_unknown or not message.startswith("has no cnncalc layer kind"):
            raise reader.fail(f"cannot import: {_origin(node)} {message}") from None
        _placeholder(reader, node)


def _placeholder(reader: _Reader, node: Any) -> None:
    acts = [reader.resolve(i) for i in node.input if i and reader.resolve(i) not in reader.consts]
    shape = _per_sample(reader, node.output[0])
    if shape is None:
        raise reader.fail(f"cannot import: {_origin(node)}: its output shape is unknown, so "
                          "not even a placeholder can stand for it")
    reader.unknown.append(node.op_type)
    _emit(reader, node, "placeholder", {"op": node.op_type, "shape": list(shape)}, acts[:1] or
          [GRAPH_INPUT])
    reader.also_reads[reader.layers[-1].output] = acts[1:]  # kept: never a silent drop


def _emit(reader: _Reader, node: Any, kind: str, config: dict[str, Any], inputs: list[str],
          weight: str | None = None, output: str | None = None, path: str | None = None) -> None:
    path = path or _node_path(reader, node, weight)
    made = output or node.output[0]
    reader.layers.append(ImportedLayer(path, kind, config, inputs, made, _origin(node),
                                       _per_sample(reader, made)))


def _unknown(node: Any, why: str = "") -> _Refused:
    return _Refused("has no cnncalc layer kind" + (f" ({why})" if why else "") +
                    "; write the spec by hand, or import with --allow-unknown for a "
                    "placeholder that counts nothing")


def _const(reader: _Reader, name: str) -> _Value | None:
    if not name:
        return None
    return reader.consts.get(reader.resolve(name))


def _need_const(reader: _Reader, name: str, what: str) -> Any:
    value = _const(reader, name)
    if value is None or value.array is None or isinstance(value.array, _Dims):
        raise _Refused(f"needs a constant {what} (input {name!r} is computed from the model's "
                       "input)")
    return value.array


def _param(reader: _Reader, name: str) -> _Value | None:
    """A stored constant a layer reads as its parameter (None: absent or computed)."""
    value = _const(reader, name)
    return value if value is not None and value.stored and value.array is not None else None


def _ints(values: Any) -> list[int]:
    return [int(v) for v in values]


def _spatial_pads(pads: list[int], n: int) -> list[tuple[int, int]]:
    return [(pads[i], pads[i + n]) for i in range(n)]


def _auto_pads(a: dict[str, Any], x: tuple[int, ...], kernel: list[int], strides: list[int],
               dilations: list[int]) -> list[tuple[int, int]]:
    n = len(kernel)
    mode = _text(a.get("auto_pad", "NOTSET"))
    if mode in ("NOTSET", ""):
        pads = _ints(a.get("pads", [0] * 2 * n))
        return _spatial_pads(pads, n)
    if mode == "VALID":
        return [(0, 0)] * n
    out = []
    for size, k, s, d in zip(x[1:], kernel, strides, dilations):
        target = -(-size // s)
        total = max((target - 1) * s + (k - 1) * d + 1 - size, 0)
        small = total // 2
        out.append((small, total - small) if mode == "SAME_UPPER" else (total - small, small))
    return out


def _layer(reader: _Reader, node: Any) -> None:
    op, a = node.op_type, _attrs(node)
    ins = list(node.input)
    acts = [reader.resolve(i) for i in ins if i and reader.resolve(i) not in reader.consts]
    x_name = reader.resolve(ins[0]) if ins else None
    x = _per_sample(reader, x_name) if x_name else None
    if x is None and op not in ("Concat", "Add", "Mul", "Sum"):
        raise _Refused(f"reads {ins[0]!r}, whose shape ONNX shape inference does not know")
    handler = _HANDLERS.get(op)
    if handler is None:
        raise _unknown(node)
    last = [i for i in ins if i and i in reader.last]
    if last and op not in _POSITIONWISE:
        raise _unknown(node, f"{op} on a channels-last tensor ({last[0]!r}, from a Transpose); "
                             "cnncalc follows one only through layer norm, linear layers, "
                             "element-wise ops and the Transpose back")
    before = len(reader.layers)
    handler(reader, node, a, ins, x, acts)
    if last and op != "Transpose":
        reader.last.update(node.output)
        for layer in reader.layers[before:]:
            reader.last.add(layer.output)
            layer.shape = _per_sample(reader, layer.output)  # channels first


def _alias(reader: _Reader, node: Any, source: str) -> None:
    reader.alias[node.output[0]] = reader.resolve(source)


def _conv(reader: _Reader, node: Any, a: dict[str, Any], ins: list[str], x: Any,
          acts: list[str]) -> None:
    w = _param(reader, ins[1]) if len(ins) > 1 else None
    if w is None:
        raise _Refused("has a weight that is not stored in the file (computed or an input); "
                       "cnncalc counts stored weights")
    shape = w.array.shape
    n = len(shape) - 2
    if len(x) != n + 1:
        raise _Refused(f"has a {n}-D kernel on a {len(x) - 1}-D input")
    groups = int(a.get("group", 1))
    kernel = _ints(a.get("kernel_shape", shape[2:]))
    if list(shape[2:]) != kernel:
        raise _Refused(f"has kernel_shape {kernel} but its weight is {list(shape)}")
    strides = _ints(a.get("strides", [1] * n))
    dilations = _ints(a.get("dilations", [1] * n))
    transposed = node.op_type == "ConvTranspose"
    out = int(shape[1]) * groups if transposed else int(shape[0])
    c_in = int(shape[0]) if transposed else int(shape[1]) * groups
    if c_in != x[0]:
        raise _Refused(f"has a weight {list(shape)} for {c_in} input channels, but its input "
                       f"has {x[0]}")
    b = _param(reader, ins[2]) if len(ins) > 2 else None
    if b is not None and b.array.size != out:
        raise _Refused(f"has a bias of {b.array.size} values for {out} output channels")
    cfg: dict[str, Any] = {"out": out, "kernel": kernel}
    if any(s != 1 for s in strides):
        cfg["stride"] = strides
    pads = _auto_pads(a, x, kernel, strides, dilations) if not transposed else \
        _spatial_pads(_ints(a.get("pads", [0] * 2 * n)), n)
    before: list[tuple[int, int]] | None = None
    if transposed:
        if _text(a.get("auto_pad", "NOTSET")) not in ("NOTSET", "", "VALID"):
            raise _Refused("uses auto_pad on a transposed convolution; export with explicit "
                           "pads")
        if "output_shape" in a:
            raise _Refused("gives output_shape; export with pads and output_padding")
        if any(p != q for p, q in pads):
            raise _Refused(f"has asymmetric padding {pads} on a transposed convolution")
        if any(p for p, _ in pads):
            cfg["padding"] = [p for p, _ in pads]
        output_padding = _ints(a.get("output_padding", [0] * n))
        if any(output_padding):
            cfg["output_padding"] = output_padding
    else:
        if all(b == e for b, e in pads):
            if any(b for b, _ in pads):
                cfg["padding"] = [b for b, _ in pads]
        elif pads == _auto_pads({"auto_pad": "SAME_UPPER"}, x, kernel, strides, dilations):
            cfg["padding"] = "same"  # TensorFlow's rule: the odd pixel after
        else:
            before = pads  # a pad layer in front takes what the convolution cannot
    if any(d != 1 for d in dilations):
        cfg["dilation"] = dilations
    if groups != 1:
        cfg["groups"] = groups
    cfg["bias"] = b is not None
    source = acts[0]
    path = _node_path(reader, node, ins[1])
    if before is not None:  # the padding the convolution cannot take, in front: PATH_pad
        pad_out = node.output[0] + "::pad"
        _emit(reader, node, "pad", {"padding": [list(p) for p in before]}, [source],
              output=pad_out, path=_unique_path(reader, path + "_pad"))
        source = pad_out
    _emit(reader, node, "conv_transpose" if transposed else "conv", cfg, [source], path=path)


def _pool(reader: _Reader, node: Any, a: dict[str, Any], ins: list[str], x: Any,
          acts: list[str]) -> None:
    op = node.op_type
    if op in ("GlobalAveragePool", "GlobalMaxPool"):
        if op == "GlobalAveragePool":
            _emit(reader, node, "global_avgpool", {}, acts[:1])
        else:
            _emit(reader, node, "adaptive_maxpool", {"output": 1}, acts[:1])
        return
    if len(node.output) > 1 and any(node.output[1:]):
        raise _Refused("returns indices too, which no cnncalc kind makes")
    kernel = _ints(a["kernel_shape"])
    n = len(kernel)
    strides = _ints(a.get("strides", [1] * n))
    dilations = _ints(a.get("dilations", [1] * n))
    pads = _auto_pads(a, x, kernel, strides, dilations)
    if any(b != e for b, e in pads):
        raise _Refused(f"has asymmetric padding {pads} (before, after per axis), which cnncalc's "
                       "pooling cannot take")
    cfg: dict[str, Any] = {"kernel": kernel, "stride": strides}
    if any(b for b, _ in pads):
        cfg["padding"] = [b for b, _ in pads]
    if int(a.get("ceil_mode", 0)):
        cfg["ceil_mode"] = True
    if op == "MaxPool":
        if any(d != 1 for d in dilations):
            cfg["dilation"] = dilations
        _emit(reader, node, "maxpool", cfg, acts[:1])
    else:
        if any(d != 1 for d in dilations):
            raise _Refused("has dilations, which cnncalc's avgpool does not take")
        if "padding" in cfg:
            cfg["count_include_pad"] = bool(int(a.get("count_include_pad", 0)))
        _emit(reader, node, "avgpool", cfg, acts[:1])


def _gemm(reader: _Reader, node: Any, a: dict[str, Any], ins: list[str], x: Any,
          acts: list[str]) -> None:
    if len(x) != 1:
        raise _Refused(f"multiplies a {_shape_text(x)} input per sample; cnncalc's linear "
                       "takes a vector (a flatten first)")
    if int(a.get("transA", 0)):
        raise _Refused("has transA=1, an input that is not a batch of vectors")
    w = _param(reader, ins[1])
    if w is None or w.array.ndim != 2:
        raise _Refused("has a weight that is not a stored matrix; cnncalc's linear has one")
    shape = w.array.shape
    out, fan_in = (shape[0], shape[1]) if int(a.get("transB", 0)) else (shape[1], shape[0])
    if fan_in != x[0]:
        raise _Refused(f"has a {shape[0]}×{shape[1]} weight for {x[0]} input features")
    b = _param(reader, ins[2]) if len(ins) > 2 and ins[2] else None
    if b is not None and b.array.size != out:
        raise _Refused(f"has a bias of {b.array.size} values for {out} outputs")
    _emit(reader, node, "linear", {"out": int(out), "bias": b is not None}, acts[:1],
          weight=ins[1])


def _matmul(reader: _Reader, node: Any, a: dict[str, Any], ins: list[str], x: Any,
            acts: list[str]) -> None:
    w = _param(reader, ins[1])
    if w is None or reader.resolve(ins[0]) in reader.consts or w.array.ndim != 2:
        raise _unknown(node, "a product of two activations, or with a weight that is not a "
                             "stored matrix")
    positionwise = ins[0] in reader.last  # nn.Linear on N×H×W×C: a 1×1 convolution
    if len(x) != 1 and not positionwise:
        raise _Refused(f"multiplies a {_shape_text(x)} input per sample; cnncalc's linear "
                       "takes a vector")
    fan_in, out = w.array.shape
    if fan_in != x[0]:
        raise _Refused(f"has a {fan_in}×{out} weight for {x[0]} input features")
    bias = False
    output = node.output[0]
    users = reader.readers.get(output, [])
    if len(users) == 1 and users[0].op_type == "Add":
        add = users[0]
        other = [i for i in add.input if i != output]
        b = _param(reader, other[0]) if len(other) == 1 else None
        if b is not None and b.array.size == out:
            bias = True
            reader.alias[add.output[0]] = output
            reader.skip.add(id(add))
            if positionwise:
                reader.last.add(add.output[0])
    if positionwise:
        _emit(reader, node, "conv", {"out": int(out), "kernel": 1, "bias": bias}, acts[:1],
              weight=ins[1])
        return
    _emit(reader, node, "linear", {"out": int(out), "bias": bias}, acts[:1], weight=ins[1])


def _batchnorm(reader: _Reader, node: Any, a: dict[str, Any], ins: list[str], x: Any,
               acts: list[str]) -> None:
    c = x[0]
    got = [_param(reader, i) if i else None for i in ins[1:5]]
    for value, what in zip(got, ("scale", "bias", "mean", "var")):
        if value is not None and value.array.size != c:
            raise _Refused(f"has a {what} of {value.array.size} values for {c} channels "
                           "(batch norm has one per channel)")
    affine = got[0] is not None and got[1] is not None
    if (got[0] is None) != (got[1] is None):
        raise _Refused("stores only one of its scale and bias; cnncalc's batchnorm has both "
                       "or neither")
    stats = got[2] is not None and got[3] is not None
    cfg: dict[str, Any] = {}
    if not affine:
        cfg["affine"] = False
    if not stats:
        cfg["track_running_stats"] = False
    _emit(reader, node, "batchnorm", cfg, acts[:1], weight=ins[1])


def _norm(reader: _Reader, node: Any, a: dict[str, Any], ins: list[str], x: Any,
          acts: list[str]) -> None:
    op = node.op_type
    scale = _param(reader, ins[1]) if len(ins) > 1 and ins[1] else None
    bias = _param(reader, ins[2]) if len(ins) > 2 and ins[2] else None
    if op == "LayerNormalization":
        axis = int(a.get("axis", -1))
        over_last = axis in (-1, len(x))  # ONNX's axis counts the batch
        if over_last and ins[0] in reader.last:
            cfg: dict[str, Any] = {"over": "channels"}  # N×H×W×C: every position's C values
        elif over_last and len(x) == 1:
            cfg = {"over": "last"}
        else:
            raise _unknown(node, f"normalising over axis {axis} of a {_shape_text(x)} input; "
                                 "cnncalc's layernorm takes a vector or the channels")
        if scale is None:
            cfg["affine"] = False
        elif bias is None:
            cfg["bias"] = False
        _emit(reader, node, "layernorm", cfg, acts[:1], weight=ins[1])
        return
    if op == "InstanceNormalization":
        _emit(reader, node, "instancenorm", {"affine": scale is not None and bias is not None},
              acts[:1], weight=ins[1])
        return
    if op == "GroupNormalization":
        cfg = {"groups": int(a["num_groups"])}
        if scale is None:
            cfg["affine"] = False
        _emit(reader, node, "groupnorm", cfg, acts[:1], weight=ins[1])
        return
    if op == "LRN":
        _emit(reader, node, "lrn", {"size": int(a["size"]), "alpha": float(a.get("alpha", 1e-4)),
                                    "beta": float(a.get("beta", 0.75)),
                                    "k": float(a.get("bias", 1.0))}, acts[:1])


_POINTWISE = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hardswish",
              "HardSigmoid": "hardsigmoid", "Elu": "elu", "Mish": "mish", "Gelu": "gelu"}


def _pointwise(reader: _Reader, node: Any, a: dict[str, Any], ins: list[str], x: Any,
               acts: list[str]) -> None:
    op = node.op_type
    cfg: dict[str, Any] = {}
    if op == "Sigmoid":
        # x · sigmoid(x): SiLU (swish), as exporters write nn.SiLU
        users = reader.readers.get(node.output[0], [])
        if len(users) == 1 and users[0].op_type == "Mul" and \
                sorted(users[0].input) == sorted([ins[0], node.output[0]]):
            mul = users[0]
            reader.skip.add(id(mul))
            _emit(reader, mul, "silu", {}, acts[:1], output=mul.output[0])
            return
    if op == "Gelu" and _text(a.get("approximate", "none")) == "tanh":
        cfg["approximate"] = "tanh"
    if op == "LeakyRelu":
        _emit(reader, node, "leaky_relu", {"slope": float(a.get("alpha", 0.01))}, acts[:1])
        return
    _emit(reader, node, _POINTWISE[op], cfg, acts[:1])


def _clip(reader: _Reader, node: Any, a: dict[str, Any], ins: list[str], x: Any,
          acts: list[str]) -> None:
    low = a.get("min") if len(ins) < 2 or not ins[1] else _need_const(reader, ins[1], "min")
    high = a.get("max") if len(ins) < 3 or not ins[2] else _need_const(reader, ins[2], "max")
    low = None if low is None else float(low)
    high = None if high is None else float(high)
    if low == 0.0 and high == 6.0:
        _emit(reader, node, "relu6", {}, acts[:1])
    elif low == 0.0 and high is None:
        _emit(reader, node, "relu", {}, acts[:1])
    else:
        raise _unknown(node, f"clipping to [{low}, {high}]; cnncalc has relu (0, ∞) and relu6 "
                             "(0, 6)")


def _softmax(reader: _Reader, node: Any, a: dict[str, Any], ins: list[str], x: Any,
             acts: list[str]) -> None:
    axis = int(a.get("axis", -1))
    if (axis % (len(x) + 1)) != 1:
        raise _unknown(node, f"over axis {axis}; cnncalc's softmax is over the channels")
    _emit(reader, node, "softmax" if node.op_type == "Softmax" else "log_softmax", {}, acts[:1])


def _prelu(reader: _Reader, node: Any, a: dict[str, Any], ins: list[str], x: Any,
           acts: list[str]) -> None:
    slope = _param(reader, ins[1])
    if slope is None or slope.array.size not in (1, x[0]):
        raise _Refused("has a slope that is neither one value nor one per channel")
    _emit(reader, node, "prelu", {"num_parameters": int(slope.array.size)}, acts[:1],
          weight=ins[1])


def _merge(reader: _Reader, node: Any, a: dict[str, Any], ins: list[str], x: Any,
           acts: list[str]) -> None:
    op = node.op_type
    consts = [i for i in ins if i and reader.resolve(i) in reader.consts]
    if op == "Mul" and len(acts) == 1 and len(consts) == 1:
        value = _param(reader, consts[0])
        y = _per_sample(reader, acts[0])
        if value is not None and y is not None and value.array.size == y[0] and \
                _channel_shaped(value.array, y, any(i in reader.last for i in ins)):
            _emit(reader, node, "layer_scale", {}, acts, weight=consts[0])
            return
    if consts:
        raise _unknown(node, f"{op} with a constant operand; cnncalc's merges join tensors "
                             "computed from the input")
    if op == "Concat":
        if len(acts) == 1:
            _alias(reader, node, acts[0])
            return
        axis = int(a.get("axis", 1))
        rank = len(_per_sample(reader, acts[0]) or ())
        if axis == 0 or axis == -(rank + 1):
            raise _Refused("concatenates along the batch axis")
        cfg = {} if axis in (1, -rank) else {"axis": axis - 1 if axis > 0 else axis}
        _emit(reader, node, "concat", cfg, acts)
        return
    shapes = {_per_sample(reader, t) for t in acts}
    if op in ("Add", "Sum") and len(shapes) > 1:
        raise _unknown(node, f"an addition that broadcasts ({', '.join(_shape_text(s) for s in shapes if s)}); cnncalc's add takes one shape")
    if op == "Sum" and len(acts) == 1:
        _alias(reader, node, acts[0])
        return
    _emit(reader, node, "add" if op in ("Add", "Sum") else "mul", {}, acts)


def _channel_shaped(array: Any, y: tuple[int, ...], last: bool = False) -> bool:
    """A constant of C×1×…×1 (or C for a vector; …×C for a channels-last tensor): one value
    per channel."""
    dims = [d for d in array.shape]
    if last:
        return array.size == y[0] and (not dims or dims[-1] == y[0])
    while len(dims) > len(y):
        if dims[0] != 1:
            return False
        dims = dims[1:]
    return len(dims) == len(y) and dims[0] == y[0] and all(d == 1 for d in dims[1:])


def _reshaped(reader: _Reader, node: Any, x: tuple[int, ...], acts: list[str]
              ) -> tuple[int, ...] | None:
    """The output shape of a node that may only move or view values; None (and no layer: the
    output is the input) where it is the input's shape."""
    y = _per_sample(reader, node.output[0])
    if y is None:
        raise _Refused("has an output shape ONNX shape inference does not know")
    if tuple(y) == tuple(x):
        _alias(reader, node, acts[0])
        return None
    return y


def _reshape(reader: _Reader, node: Any, a: dict[str, Any], ins: list[str], x: Any,
             acts: list[str]) -> None:
    y = _reshaped(reader, node, x, acts)
    if y is None:
        return
    if node.op_type == "Flatten" and int(a.get("axis", 1)) != 1:
        raise _unknown(node, f"flattening from axis {a.get('axis')}; cnncalc's flatten keeps the "
                             "batch axis only")
    if len(y) == 1 and y[0] == _prod(x):
        _emit(reader, node, "flatten", {}, acts[:1])
        return
    if y == () and _gathered_back(reader, node, x):
        _alias(reader, node, acts[0])
        return
    if y == ():
        raise _unknown(node, f"a reshape of N×{_shape_text(x)} to one axis, the batch merged "
                             "into it")
    raise _unknown(node, f"reshaping {_shape_text(x)} to {_shape_text(y)} per sample; cnncalc "
                         "has flatten only")


def _gathered_back(reader: _Reader, node: Any, x: tuple[int, ...]) -> bool:
    """torch's dynamo exporter writes some views (``as_strided``) as a reshape to one axis and
    a ``Gather`` of every element in order, back to the shape it had: no layer. True when the
    reshape's only reader is such a gather (which is then skipped)."""
    import numpy as np

    users = reader.readers.get(node.output[0], [])
    if len(users) != 1 or users[0].op_type != "Gather" or len(users[0].input) < 2:
        return False
    gather = users[0]
    made = reader.producer.get(gather.input[1])
    if made is not None and made.op_type == "Constant":  # it may come after the reshape
        _fold(reader, made)
    indices = _const(reader, gather.input[1])
    if indices is None or isinstance(indices.array, _Dims) or indices.array is None:
        return False
    want = np.arange(_prod(x)).reshape((1, *x))
    got = np.asarray(indices.array)
    if got.shape != want.shape or not np.array_equal(got, want):
        return False
    reader.alias[gather.output[0]] = node.output[0]
    reader.skip.add(id(gather))
    return True


def _prod(x: tuple[int, ...]) -> int:
    out = 1
    for d in x:
        out *= d
    return out


def _reduce(reader: _Reader, node: Any, a: dict[str, Any], ins: list[str], x: Any,
            acts: list[str]) -> None:
    rank = len(x) + 1
    if "axes" in a:
        axes = _ints(a["axes"])
    elif len(ins) > 1 and ins[1]:
        axes = _ints(_need_const(reader, ins[1], "axes"))
    else:
        axes = list(range(rank))
    axes = sorted(ax % rank for ax in axes)
    keep = int(a.get("keepdims", 1))
    if node.op_type not in ("ReduceMean", "ReduceMax") or axes != list(range(2, rank)) or \
            rank < 3:
        raise _unknown(node, f"{node.op_type} over axes {axes}; cnncalc has the mean or max "
                             "over every spatial axis (global pooling)")
    kind, cfg = ("global_avgpool", {}) if node.op_type == "ReduceMean" else \
        ("adaptive_maxpool", {"output": 1})
    if keep:
        _emit(reader, node, kind, cfg, acts[:1])
        return
    pooled = node.output[0] + "::pooled"
    _emit(reader, node, kind, cfg, acts[:1], output=pooled)
    reader.layers.append(ImportedLayer(_unique_path(reader, reader.layers[-1].path + "_flatten"),
                                       "flatten", {}, [pooled], node.output[0], _origin(node),
                                       _per_sample(reader, node.output[0])))


def _resize(reader: _Reader, node: Any, a: dict[str, Any], ins: list[str], x: Any,
            acts: list[str]) -> None:
    n = len(x) - 1
    mode = _text(a.get("mode", "nearest"))
    modes = {"nearest": "nearest", "linear": {1: "linear", 2: "bilinear", 3: "trilinear"}.get(n)}
    if mode not in modes or modes[mode] is None:
        raise _unknown(node, f"{mode} interpolation; cnncalc has nearest and (bi/tri)linear")
    cfg: dict[str, Any] = {"mode": modes[mode]}
    if node.op_type == "Upsample" or len(ins) == 2:  # Resize of opset 10: (X, scales)
        scales = _need_const(reader, ins[1], "scales") if len(ins) > 1 else a.get("scales")
        sizes = None
    else:
        scales = _const(reader, ins[2]).array if len(ins) > 2 and ins[2] and \
            _const(reader, ins[2]) is not None else None
        sizes = _const(reader, ins[3]).array if len(ins) > 3 and ins[3] and \
            _const(reader, ins[3]) is not None else None
        if scales is not None and getattr(scales, "size", 0) == 0:
            scales = None
    y = _per_sample(reader, node.output[0])
    if sizes is not None and getattr(sizes, "size", 0):
        sizes = _ints(sizes)[-n:]
        cfg["size"] = sizes
    elif scales is not None:
        scales = [float(s) for s in list(scales)]
        if any(s != 1.0 for s in scales[:-n]):
            raise _Refused("scales the batch or channel axis")
        cfg["scale"] = [int(s) if float(s).is_integer() else s for s in scales[-n:]]
    elif y is not None:
        cfg["size"] = list(y[1:])
    else:
        raise _Refused("has neither constant scales nor sizes")
    if _text(a.get("coordinate_transformation_mode", "")) == "align_corners" and \
            mode != "nearest":
        cfg["align_corners"] = True
    _emit(reader, node, "upsample", cfg, acts[:1])


def _pad(reader: _Reader, node: Any, a: dict[str, Any], ins: list[str], x: Any,
         acts: list[str]) -> None:
    pads = _ints(_need_const(reader, ins[1], "pads")) if len(ins) > 1 and ins[1] else \
        _ints(a.get("pads", []))
    rank = len(x) + 1
    if len(ins) > 3 and ins[3]:
        raise _unknown(node, "padding some axes only (axes input)")
    if len(pads) != 2 * rank:
        raise _Refused(f"has {len(pads)} pads for a rank-{rank} tensor")
    pairs = _spatial_pads(pads, rank)
    if any(p != (0, 0) for p in pairs[:2]):
        raise _unknown(node, "padding the batch or channel axis")
    if any(b < 0 or e < 0 for b, e in pairs):
        raise _unknown(node, "negative padding (a crop)")
    mode = {"constant": "zero", "reflect": "reflect", "edge": "replicate"}.get(
        _text(a.get("mode", "constant")))
    if mode is None:
        raise _unknown(node, f"{_text(a.get('mode'))} padding")
    cfg: dict[str, Any] = {"padding": [list(p) for p in pairs[2:]]}
    if mode != "zero":
        cfg["mode"] = mode
    _emit(reader, node, "pad", cfg, acts[:1])


def _slice(reader: _Reader, node: Any, a: dict[str, Any], ins: list[str], x: Any,
           acts: list[str]) -> None:
    y = _reshaped(reader, node, x, acts)
    if y is None:
        return
    rank = len(x) + 1
    starts = _ints(_need_const(reader, ins[1], "starts"))
    ends = [int(e) for e in _need_const(reader, ins[2], "ends")]
    axes = _ints(_need_const(reader, ins[3], "axes")) if len(ins) > 3 and ins[3] else \
        list(range(len(starts)))
    steps = _ints(_need_const(reader, ins[4], "steps")) if len(ins) > 4 and ins[4] else \
        [1] * len(starts)
    if any(s != 1 for s in steps):
        raise _unknown(node, "a strided slice")
    changed = {ax % rank: (s, e) for ax, s, e in zip(axes, starts, ends)}
    changed = {ax: se for ax, se in changed.items()
               if y[ax - 1] != x[ax - 1] if ax > 0}
    if 0 in changed:
        raise _Refused("slices the batch axis")
    if set(changed) == {1}:
        start = changed[1][0]
        start = start + x[0] if start < 0 else min(start, x[0])
        _emit(reader, node, "slice", {"start": start, "stop": start + y[0]}, acts[:1])
        return
    if 1 not in changed and all((x[ax - 1] - y[ax - 1]) // 2 ==
                                (changed[ax][0] + x[ax - 1] if changed[ax][0] < 0
                                 else changed[ax][0]) for ax in changed):
        before = reader.layers[-1] if reader.layers else None
        if before is not None and before.kind == "crop" and before.output == acts[0] and \
                len(reader.readers.get(ins[0], [])) == 1 and ins[0] not in reader.outputs:
            # a centre crop written one axis at a time (U-Net's x[..., a:b, c:d]): one crop
            before.config["size"] = list(y[1:])
            before.shape = y
            _alias(reader, node, acts[0])
            return
        _emit(reader, node, "crop", {"size": list(y[1:])}, acts[:1])
        return
    raise _unknown(node, "a slice of spatial axes that is not a centre crop, or of channels "
                         "and positions at once")


def _transpose(reader: _Reader, node: Any, a: dict[str, Any], ins: list[str], x: Any,
               acts: list[str]) -> None:
    """To channels-last (0, 2, …, 1) and back (0, r−1, 1, …): no layer, the tensor is
    followed as the channels-first one it permutes."""
    rank = len(x) + 1
    perm = _ints(a.get("perm", list(range(rank))[::-1]))
    to_last = [0, *range(2, rank), 1]
    to_first = [0, rank - 1, *range(1, rank - 1)]
    held_last = ins[0] in reader.last
    if perm == list(range(rank)):
        if held_last:
            reader.last.add(node.output[0])
    elif perm == to_last and not held_last and rank > 2:
        reader.last.add(node.output[0])
    elif not (perm == to_first and held_last):
        raise _unknown(node, f"a permutation {perm} of the axes; cnncalc follows a move of the "
                             "channels to the last axis and back")
    _alias(reader, node, acts[0])


def _split(reader: _Reader, node: Any, a: dict[str, Any], ins: list[str], x: Any,
           acts: list[str]) -> None:
    """A split of the channels: one ``slice`` per part (ShuffleNetV2's channel split)."""
    rank = len(x) + 1
    if int(a.get("axis", 0)) % rank != 1:
        raise _unknown(node, f"a split along axis {a.get('axis', 0)}; cnncalc slices channels")
    start = 0
    parts = [_per_sample(reader, out) for out in node.output]
    if any(p is None for p in parts):
        raise _Refused("has an output shape ONNX shape inference does not know")
    path = _node_path(reader, node, None)
    for n, (out, shape) in enumerate(zip(node.output, parts)):
        _emit(reader, node, "slice", {"start": start, "stop": start + shape[0]}, acts[:1],
              output=out, path=path if n == 0 else _unique_path(reader, f"{path}_{n}"))
        start += shape[0]


def _drop(reader: _Reader, node: Any, a: dict[str, Any], ins: list[str], x: Any,
          acts: list[str]) -> None:
    """Identity, Dropout at inference, casts and (de)quantization: no layer, the output is the
    input (cnncalc counts elements, whatever their type)."""
    _alias(reader, node, acts[0])


_HANDLERS = {
    "Conv": _conv, "ConvTranspose": _conv,
    "MaxPool": _pool, "AveragePool": _pool, "GlobalAveragePool": _pool, "GlobalMaxPool": _pool,
    "Gemm": _gemm, "MatMul": _matmul,
    "BatchNormalization": _batchnorm,
    "LayerNormalization": _norm, "InstanceNormalization": _norm, "GroupNormalization": _norm,
    "LRN": _norm,
    **{op: _pointwise for op in (*_POINTWISE, "LeakyRelu")},
    "Clip": _clip, "Softmax": _softmax, "LogSoftmax": _softmax, "PRelu": _prelu,
    "Add": _merge, "Mul": _merge, "Sum": _merge, "Concat": _merge,
    "Flatten": _reshape, "Reshape": _reshape, "Squeeze": _reshape,
    "ReduceMean": _reduce, "ReduceMax": _reduce,
    "Resize": _resize, "Upsample": _resize,
    "Pad": _pad, "Slice": _slice,
    "Identity": _drop, "Dropout": _drop, "Transpose": _transpose,
    "Cast": _drop, "CastLike": _drop, "QuantizeLinear": _drop, "DequantizeLinear": _drop,
    "Split": _split,
}

SUPPORTED_OPS = tuple(sorted(_HANDLERS))
