"""A memory model for a batch and dtype: the peak of live tensors at inference and over one
training step (forward, backward, optimizer step), with training compute.

It is built in three parts, so that the walk over the spec can change without touching the rules:

1. **the walk** (:func:`_walk`): the spec's graph (cnncalc.graph), in the order the cnncalc torch
   backend runs it, becomes a flat list of :class:`Op` — ``(layer, input tensor ids, output
   tensor id)`` in execution order — over :class:`_Tensor` s of known size; a residual's add and
   a concat's join keep the block's input alive until they run, as a block's forward does;
2. **the per-op rule** (:func:`_rule`): for one op, what it allocates while it runs, whether its
   output shares its input's storage (views, no-ops, in-place), what autograd keeps for its
   backward, and what its backward allocates;
3. **the replay** (:func:`_inference`, :func:`_training`): steps through the ops as torch does,
   allocating and freeing storages, and records the bytes live while each op runs; the peaks are
   the largest.

The rules follow torch's eager CPU kernels and derivative formulas (torch 2.x); they are checked
against a live-tensor meter (cnncalc.backend.meter) on every zoo spec: docs/memory.md.

Pure Python: nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Any

from .engine import Analysis, Row, bytes_per_element, new_frozen
from .errors import OptionError
from .graph import GRAPH_INPUT
from .graph import Op as GraphOp
from .layers import REGISTRY

OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2}  # extra copies of the trainable params
LOW_PRECISION = ("fp16", "bf16")

ASSUMPTIONS = (
    "eager PyTorch order as the cnncalc torch backend runs it: a residual block runs its body, "
    "then its shortcut, then adds out of place; concat branches run in order",
    "every layer allocates its output, except views and no-ops (flatten, identity, dropout at "
    "inference) and ReLUs with inplace: true",
    "a tensor is freed right after its last use; the input batch is held by the caller for the "
    "whole step and the network's output until the end of the forward pass",
    "training step (steady state): zero_grad, forward, backward of the loss, optimizer step; "
    "set_to_none (torch's default) frees the gradients between steps, --keep-grads keeps them",
    "what autograd keeps and what each backward allocates follow torch's CPU kernels: max "
    "pooling keeps int64 indices, dropout its noise in the dtype; gradients of a concat and of a "
    "residual add are views of the incoming gradient",
    "parameters, buffers, gradients and optimizer state in the parameter dtype; under autocast "
    "the low-precision copies of weights are cached for the forward pass",
    "not counted: the allocator's caching and rounding, kernel workspaces outside the dispatcher, "
    "the CUDA context, the labels and the scalar loss",
    "backward MACs: conv and linear layers take an input gradient and a weight gradient, each "
    "as many MACs as the forward (≈ 2 × forward); the first layer needs no input gradient",
)


# --------------------------------------------------------------------------------------------
# 1. The walk: tree → ops over tensors


@dataclass(slots=True)
class _Tensor:
    id: int
    elements: int  # for the whole batch
    bytes_each: int
    what: str  # "conv1 output", "input"
    storage: int  # tensors on the same storage (views, in-place results) share one id

    @property
    def bytes(self) -> int:
        return self.elements * self.bytes_each


@dataclass(slots=True)
class Op:
    """One step: a layer, or a group's residual add or concatenation."""

    index: int
    path: str
    kind: str  # a layer kind, or "add" / "concat"
    inputs: list[int]
    output: int
    row: Row | None  # the layer's row (None for add / concat)
    config: dict[str, Any] = field(default_factory=dict)
    head: bool = False
    keeps: list[int] = field(default_factory=list)  # alive while it runs, not read (see _walk)
    shapes: tuple[tuple[int, ...], ...] = ()  # its inputs' shapes per sample
    node: int = -1  # the graph op (cnncalc.graph) it runs


@dataclass
class _Graph:
    tensors: list[_Tensor]
    ops: list[Op]
    input: int
    outputs: list[int]  # the main output, then head outputs (training)


AUTOCAST_KINDS = ("conv", "linear")  # autocast runs these in low precision, casting inputs
AUTOCAST_FP32_KINDS = ("lrn",)  # CPU autocast runs its avg_pool3d in fp32: the rest follows


def _walk(analysis: Analysis, training: bool, size: int, input_size: int | None = None) -> _Graph:
    """The analysis's graph (cnncalc.graph) as ops on tensors, in execution order.

    ``input_size``: bytes per element of the input batch when it differs from the activations'
    (fp32 under autocast). Then an op that autocast does not cast keeps the wider type of its
    inputs (type promotion: a max pool or a residual add on the fp32 input batch is fp32)."""
    batch = analysis.batch
    graph = analysis.graph
    assert graph is not None
    # lists by op index, not dicts by path: at 100,000 layers, dict lookups scattered over
    # memory made the walk grow faster than the layers
    rows: list[Row | None] = [None] * len(graph.ops)
    for item, row in zip(graph.preorder, analysis.rows):
        if isinstance(item, GraphOp):
            rows[item.index] = row
    tensors: list[_Tensor] = []
    ops: list[Op] = []
    outputs: list[int] = []

    def new(elements: int, what: str, like: int | None = None, each: int = size) -> int:
        storage = tensors[like].storage if like is not None else len(tensors)
        tensors.append(_Tensor(len(tensors), elements * batch, each, what, storage))
        return len(tensors) - 1

    def op(path: str, kind: str, inputs: list[int], elements: int, row: Row | None,
           config: dict[str, Any] | None = None, head: bool = False,
           keeps: list[int] | None = None, node: int = -1) -> int:
        rule = REGISTRY.get(kind)
        shares = rule is not None and (rule.view_in_training if training
                                       else rule.view_at_inference)
        shares = shares or bool((config or {}).get("inplace"))
        each = size if kind in AUTOCAST_KINDS else max(tensors[i].bytes_each for i in inputs)
        if input_size and input_size > size and kind in AUTOCAST_FP32_KINDS:
            each = input_size
        y = new(elements, f"{path} output" if row else f"{path} {kind}",
                like=inputs[0] if shares else None, each=each)
        ops.append(Op(len(ops), path, kind, inputs, y, row, config or {}, head, keeps or [],
                      node=node))
        return y

    x = new(prod(analysis.input), "input", each=input_size or size)
    ids = [x] * (len(graph.ops) + 1)  # graph tensor → tensor here; GRAPH_INPUT (-1) is the last
    for g in graph.ops:
        if g.head and not training:
            continue  # side heads run in training only
        inputs = [ids[t] for t in g.inputs]
        elements = prod(analysis.shapes[g.index])
        if g.implied is not None:
            # the block's forward holds its input until it returns: to the add or the concat
            keeps = [ids[graph.groups[g.group].input]] if g.group is not None else []
            kind = "concat" if g.implied == "concat" else "add"
            ids[g.index] = op(g.path, kind, inputs, elements, None, head=g.head, keeps=keeps,
                              node=g.index)
        else:
            ids[g.index] = op(g.path, g.kind, inputs, elements, rows[g.index],
                              analysis.configs[g.index], g.head, node=g.index)
            ops[-1].shapes = tuple(analysis.input if t == GRAPH_INPUT else analysis.shapes[t]
                                   for t in g.inputs)
    outputs = [ids[t] for t in graph.outputs]
    if training:
        outputs += [ids[group.output] for group in graph.groups if group.side]
    return _Graph(tensors, ops, x, outputs)


# --------------------------------------------------------------------------------------------
# 2. The per-op rule


@dataclass(slots=True)
class Rule:
    """What one op does to memory (bytes, whole batch).

    Forward: ``temp`` bytes live only while it runs (beyond its output); ``saves`` the tensor
    ids autograd keeps, ``extra_saved`` the sizes of tensors it allocates only to keep them
    (indices, masks, statistics). Backward: ``grad_inputs`` says per input whether its gradient
    is a new tensor (``"new"``) or the incoming gradient itself or a view of it (``"view"``);
    ``param_grad`` the bytes of the weight gradients it computes; ``backward_temp`` bytes live
    only while the backward runs.
    """

    temp: int = 0
    saves: list[int] = field(default_factory=list)
    extra_saved: list[tuple[str, int]] = field(default_factory=list)
    saved_what: str = ""
    grad_inputs: str = "new"
    param_grad: int = 0
    backward_temp: int = 0


def _rule(op: Op, graph: _Graph, training: bool, size: int, param_size: int,
          autocast: bool) -> Rule:
    """The memory rule of one op. ``training``: the op records an autograd node (training mode
    and some input or weight needs a gradient); ``size``/``param_size``: bytes per element of
    activations and of parameters; ``autocast``: low-precision activations, fp32 parameters.
    Reads only the op, its tensors' sizes and dtypes (``graph.tensors``) and its layer's row."""
    t = graph.tensors
    x = op.inputs[0]
    out = t[op.output]
    if op.kind in ("add", "concat"):  # AddBackward / CatBackward pass (views of) the gradient
        rule = Rule(grad_inputs="view")
        if op.kind == "concat" and autocast:  # autocast's cat first widens narrower inputs
            rule.temp = sum(t[i].elements * out.bytes_each for i in op.inputs
                            if t[i].bytes_each < out.bytes_each)
        return rule
    row = op.row
    assert row is not None
    rule = REGISTRY[op.kind]
    batch = out.elements // max(prod(row.output), 1)
    elements_in = t[x].elements
    shares = out.storage == t[x].storage
    r = Rule(param_grad=row.trainable_params * param_size)
    if shares and not op.config.get("inplace"):  # a view or a no-op: no autograd of its own
        r.grad_inputs = "view"
    if op.kind == "lrn":
        # F.local_response_norm: x², padded along channels, averaged (A), scaled (S = αA),
        # shifted (k + S), raised to β, x divided by it. `div = A.mul(α).add(k).pow(β)` holds
        # A while S and k + S are live: three input-sized temporaries before the output, two
        # beyond input + output. In training the padded squares, k + S and its power are kept
        # for backward and nothing else is live at the peak.
        r.temp = 0 if training else 2 * out.bytes  # (fp32 under CPU autocast, like its output)
        r.backward_temp = 3 * elements_in * size
    elif op.kind in ("maxpool", "adaptive_maxpool") and not training:
        r.temp = out.elements * 8  # max_pool2d_with_indices: int64 indices, dropped at once
    elif op.kind == "subsample":  # the window sums, then the depthwise 1×1 convolution
        r.temp = 0 if training else out.bytes
    elif op.kind == "rbf":  # |x|² − 2·x·w + |w|²: a few output-sized temporaries and x·x
        r.temp = elements_in * size + 3 * out.bytes + row.params * param_size
    if autocast and op.kind in AUTOCAST_KINDS and t[x].bytes_each > size:
        # autocast casts a wider input (the fp32 input batch) for this op alone; the copy is
        # what the op keeps for backward
        cast = t[x].elements * size
        if not training:
            r.temp += cast
        else:
            r.extra_saved.append(("input in low precision", cast))
            r.saved_what = "input in low precision"
            return r
    table = op.config.get("connections") if op.kind == "conv" else None
    if table:  # a connection table: per output map x[:, maps] (a copy) into a small conv
        gathered = sum(len(maps) for maps in table) * prod(row.input[1:]) * batch * size
        r.temp = out.bytes + (0 if training else max(len(m) for m in table)
                              * prod(row.input[1:]) * batch * size)
        r.backward_temp = 2 * elements_in * size  # each map's index backward: zeros, index_put
        if training:
            r.extra_saved.append(("gathered input maps", gathered))
            r.saved_what = "gathered input maps"
        return r
    if not training:
        return r
    if op.kind == "dropout":  # CPU: a noise tensor in the dtype, kept by the multiply
        r.extra_saved.append(("noise", elements_in * size))
        r.saved_what = "noise"
        return r
    if op.kind in ("global_avgpool", "adaptive_avgpool") and prod(row.output[1:]) == 1:
        r.saved_what = ""  # a 1×1 output is a mean: its backward needs only the shape
        return r
    merge = getattr(rule, "arity", 1) != 1
    items = rule.saved_for_backward(op.config, op.shapes if merge else row.input, row.output)
    for item in items:
        if item.what == "input":  # a merge's input: every operand
            r.saves.extend(op.inputs if merge else [x])
        elif item.what == "output":
            r.saves.append(op.output)
        else:
            each = item.bytes_each if item.bytes_each is not None else size
            if op.kind == "batchnorm":
                each = 4  # batch mean and inverse std: fp32 whatever the input
            elif op.kind == "lrn":
                each = out.bytes_each  # its intermediates are in its output's type
            r.extra_saved.append((item.what, item.elements * batch * each))
    r.saved_what = " + ".join(item.what for item in items)
    return r


# --------------------------------------------------------------------------------------------
# 3. The replay


@dataclass(frozen=True)
class LayerMemory:
    """One op: a layer, or a residual add / concat of a group."""

    path: str
    kind: str
    output_bytes: int  # the tensor it allocates (0 for views, no-ops and in-place layers)
    live_bytes: int  # inference: activation bytes live while it runs (input batch included)
    saved: str  # training: what it keeps for backward ("input", "output + indices", "")
    saved_bytes: int  # training: bytes it newly keeps (a tensor another layer keeps counts once)
    forward_macs: int
    backward_macs: int
    training_live_bytes: int = 0  # training forward: activation bytes live while it runs
    backward_live_bytes: int = 0  # training backward: activations + gradients live in its backward
    why: str = ""  # the tensors live at inference while it runs


@dataclass(frozen=True)
class MemoryReport:
    """Memory (bytes) and compute (MACs) of one analysis for its batch and dtype."""

    analysis: Analysis
    optimizer: str
    param_bytes: int
    buffer_bytes: int
    # inference
    input_bytes: int
    activation_peak_bytes: int  # peak of live activations (input batch included)
    activation_peak_at: str  # the layer running at the peak
    activation_sum_bytes: int  # the "sum of outputs" figure, for comparison
    inference_bytes: int  # params + buffers + activation peak
    # training
    gradient_bytes: int
    optimizer_bytes: int
    saved_bytes: int  # activations saved for backward, at the end of the forward pass
    forward_peak_bytes: int  # activations (saved + transient) at the forward pass's peak
    backward_peak_bytes: int  # saved still needed + activation gradients, at backward's peak
    training_bytes: int  # the peak of everything live over the training step
    forward_macs: int
    backward_macs: int
    layers: list[LayerMemory]
    assumptions: tuple[str, ...] = ASSUMPTIONS
    set_to_none: bool = True  # gradients freed between steps (zero_grad(set_to_none=True))
    training_peak_at: str = ""  # "forward: conv1", "backward: fc6", "optimizer step"
    optimizer_step_bytes: int = 0  # the optimizer's temporaries during its step
    autocast_weight_bytes: int = 0  # low-precision weight copies cached under autocast

    @property
    def training_macs(self) -> int:
        return self.forward_macs + self.backward_macs

    @property
    def training_activation_peak_bytes(self) -> int:
        """The training peak above parameters, buffers, gradients and optimizer state."""
        return (self.training_bytes - self.param_bytes - self.buffer_bytes
                - self.gradient_bytes - self.optimizer_bytes)

    # notebooks: a short repr, the report as HTML, a DataFrame (all in cnncalc.render)
    def __repr__(self) -> str:
        from .render import memory_repr

        return memory_repr(self)

    def _repr_html_(self) -> str:
        from .render import memory_html

        return memory_html(self)

    def to_pandas(self) -> "pandas.DataFrame":  # noqa: F821 (pandas is imported when called)
        from .render import memory_dataframe

        return memory_dataframe(self)


class _Live:
    """Storages alive now: bytes per storage, and the tensors that hold each."""

    def __init__(self) -> None:
        self.bytes: dict[int, int] = {}
        self.total = 0

    def add(self, storage: int, nbytes: int) -> None:
        if storage not in self.bytes:
            self.bytes[storage] = nbytes
            self.total += nbytes

    def drop(self, storage: int) -> None:
        self.total -= self.bytes.pop(storage, 0)


def _uses(graph: _Graph) -> dict[int, int]:
    """The last op that reads each storage in the forward pass."""
    last: dict[int, int] = {}
    for op in graph.ops:
        for i in [*op.inputs, *op.keeps]:
            last[graph.tensors[i].storage] = op.index
        s = graph.tensors[op.output].storage
        last[s] = max(last.get(s, op.index), op.index)
    return last


def _autocast_weights(op: Op, param_size: int, autocast: bool) -> int:
    """Bytes of the low-precision copy autocast makes (and caches) of an op's weights."""
    if not autocast or op.row is None or op.kind not in ("conv", "linear"):
        return 0
    return op.row.params * 2 if param_size > 2 else 0


def _inference(graph: _Graph, rules: list[Rule], param_size: int,
               autocast: bool) -> tuple[list[int], list[str], int]:
    """Bytes of activations live while each op runs, what they are, and autocast's copies."""
    t = graph.tensors
    last = _uses(graph)
    held = {t[graph.input].storage, *(t[o].storage for o in graph.outputs)}
    live = _Live()
    live.add(t[graph.input].storage, t[graph.input].bytes)
    cached = 0
    per_op, why = [], []
    first = _first_tensors(graph)
    for op, rule in zip(graph.ops, rules):
        cached += _autocast_weights(op, param_size, autocast)
        out = t[op.output]
        live.add(out.storage, out.bytes)
        per_op.append(live.total + rule.temp + cached)
        why.append(" + ".join(t[first[s]].what for s in live.bytes if s >= 0))
        for s in list(live.bytes):
            if s >= 0 and last.get(s, -1) <= op.index and s not in held:
                live.drop(s)
    return per_op, why, cached


def _first_tensors(graph: _Graph) -> dict[int, int]:
    """Per storage, the first tensor on it (the one that names it), in one pass."""
    first: dict[int, int] = {}
    for tensor in graph.tensors:
        first.setdefault(tensor.storage, tensor.id)
    return first


def _requires_grad(graph: _Graph) -> list[bool]:
    req = [False] * len(graph.tensors)
    for op in graph.ops:
        req[op.output] = (op.row is not None and op.row.trainable_params > 0) or any(
            req[i] for i in op.inputs)
    return req


@dataclass
class _Training:
    forward: list[int]  # per op: activation bytes live in the forward (saved + transient)
    backward: list[int]  # per op: activations + activation gradients live in its backward
    newly_saved: list[int]
    forward_peak: int
    backward_peak: int
    peak: int  # everything live, at the step's peak
    peak_at: str
    optimizer_temp: int
    cached: int


def _training(graph: _Graph, rules: list[Rule], *, persistent: int, grads: int, state: int,
              set_to_none: bool, optimizer: str, largest_param: int, param_size: int,
              autocast: bool) -> _Training:
    """Replay one steady-state training step: forward, backward, optimizer step."""
    t, ops = graph.tensors, graph.ops
    n = len(ops)
    last = _uses(graph)
    held = {t[graph.input].storage}
    outputs = {t[o].storage for o in graph.outputs}
    base = persistent + state + (0 if set_to_none else grads)
    savers: dict[int, list[int]] = {}  # storage -> ops keeping it
    newly = [0] * n
    live = _Live()
    live.add(t[graph.input].storage, t[graph.input].bytes)
    cached = 0
    cast_of: dict[int, int] = {}  # op -> bytes of its cached low-precision weights
    forward, peak, peak_at = [], 0, ""
    next_extra = -2
    for op, rule in zip(ops, rules):
        cast = _autocast_weights(op, param_size, autocast)
        cast_of[op.index] = cast
        cached += cast
        for _what, nbytes in rule.extra_saved:
            live.add(next_extra, nbytes)
            savers[next_extra] = [op.index]
            newly[op.index] += nbytes
            next_extra -= 1
        out = t[op.output]
        live.add(out.storage, out.bytes)
        for tid in rule.saves:
            s = t[tid].storage
            if s not in savers:
                newly[op.index] += live.bytes.get(s, 0)
            savers.setdefault(s, []).append(op.index)
        now = live.total + rule.temp + cached
        forward.append(now)
        if base + now > peak:
            peak, peak_at = base + now, f"forward: {op.path}"
        for s in list(live.bytes):
            if s >= 0 and last.get(s, -1) <= op.index and s not in held and s not in savers \
                    and s not in outputs:
                live.drop(s)
    for s in outputs:  # the loss is taken; outputs nobody keeps are dropped
        if s not in savers and s not in held:
            live.drop(s)
    forward_peak = max(forward, default=0)

    # Backward, ops in reverse. Gradient storages: id -> bytes; tensor -> its gradient storage.
    req = _requires_grad(graph)
    grad_of: dict[int, int] = {}
    gbytes: dict[int, int] = {}
    grefs: dict[int, int] = {}
    next_g = 0

    def give(tid: int, g: int) -> None:
        """Deliver gradient storage ``g`` for tensor ``tid``. A second gradient for the same
        tensor is summed out of place (as the meter sees autograd do): the sum is live with
        both addends, then they go."""
        nonlocal next_g, peak, peak_at
        grefs[g] += 1
        if tid in grad_of:
            old = grad_of[tid]
            now = (base + param_grads + live.total + sum(gbytes.values()) + t[tid].bytes
                   + cached)
            if now > peak:
                peak, peak_at = now, f"backward: gradient sum for {t[tid].what}"
            s, next_g = next_g, next_g + 1
            gbytes[s], grefs[s] = t[tid].bytes, 1
            for addend in (old, g):
                grefs[addend] -= 1
                if not grefs[addend]:
                    gbytes.pop(addend, None)
            g = s
        grad_of[tid] = g

    def new_grad(nbytes: int) -> int:
        nonlocal next_g
        g, next_g = next_g, next_g + 1
        gbytes[g], grefs[g] = nbytes, 0
        return g

    # The loss, o.float().mean() summed over the outputs: a low-precision output is copied to
    # fp32 for the mean, and the mean's backward makes an fp32 gradient, cast back to the
    # output's type (both live together). Then the gradient the size of each output.
    widen = sum(t[o].elements * 4 for o in graph.outputs if t[o].bytes_each < 4)
    act = live.total + cached
    if base + act + widen > peak:
        peak, peak_at = base + act + widen, "loss"
    for o in graph.outputs:
        give(o, new_grad(t[o].bytes))
    if base + act + widen + sum(gbytes.values()) > peak:
        peak, peak_at = base + act + widen + sum(gbytes.values()), "loss backward"
    param_grads = 0  # set_to_none: gradients the backward has stolen so far
    backward = [0] * n
    backward_peak = 0
    for op, rule in zip(reversed(ops), reversed(rules)):
        i = op.index
        if op.output not in grad_of:
            continue
        g = grad_of[op.output]
        fresh: list[tuple[int, int]] = []
        if rule.grad_inputs == "view":
            fresh = [(x, g) for x in op.inputs if req[x]]
        else:
            fresh = [(x, new_grad(t[x].bytes)) for x in op.inputs if req[x]]
        # Autocast: the weight gradient comes in low precision, then is cast to fp32 once the op
        # has released what it kept (its low-precision weights, the same size): the fp32
        # gradient takes the place of the weights' copy.
        new_param_grad = rule.param_grad
        cast_grad = 0
        act = live.total + sum(gbytes.values())
        backward[i] = act + rule.backward_temp + cached
        now = base + param_grads + act + rule.backward_temp + new_param_grad + cast_grad + cached
        if now > peak:
            peak, peak_at = now, f"backward: {op.path}"
        backward_peak = max(backward_peak, backward[i] + new_param_grad + cast_grad)
        if set_to_none:
            param_grads += rule.param_grad
        # after the op: its saved tensors go, its output's gradient is consumed
        for s in list(savers):
            if i in savers[s]:
                savers[s].remove(i)
                if not savers[s]:
                    del savers[s]
                    if s not in held:
                        live.drop(s)
        cached -= cast_of.get(i, 0)
        grefs[g] -= 1
        del grad_of[op.output]
        if not grefs[g] and all(gx != g for _, gx in fresh):
            gbytes.pop(g, None)  # the incoming gradient is released before the outputs go on
        for x, gx in fresh:
            give(x, gx)
        if not grefs[g]:
            gbytes.pop(g, None)
        for gid in [k for k, v in grefs.items() if v == 0]:
            gbytes.pop(gid, None)
            grefs.pop(gid)

    # The optimizer step: everything else is gone. Adam's single-tensor step divides through two
    # temporaries the size of the parameter tensor it updates.
    optimizer_temp = 2 * largest_param if optimizer == "adam" else 0
    at_step = persistent + state + grads + optimizer_temp + t[graph.input].bytes
    if at_step > peak:
        peak, peak_at = at_step, "optimizer step"
    return _Training(forward, backward, newly, forward_peak, backward_peak, peak, peak_at,
                     optimizer_temp, sum(cast_of.values()))


def _macs(graph: _Graph) -> tuple[dict[str, int], dict[str, int]]:
    forward, backward = {}, {}
    req = _requires_grad(graph)
    for op in graph.ops:
        row = op.row
        if row is None:
            continue
        forward[op.path] = row.macs
        if row.macs:
            backward[op.path] = row.macs * (2 if any(req[x] for x in op.inputs) else 1)
    return forward, backward


def memory(analysis: Analysis, optimizer: str = "sgd", param_dtype: str | None = None,
           set_to_none: bool = True) -> MemoryReport:
    """The memory model of ``analysis`` (its batch and dtype) for ``optimizer``.

    ``param_dtype``: the element type of parameters, buffers, gradients and optimizer state when
    it differs from the activations' (mixed precision: fp32 weights under fp16/bf16 autocast,
    whose low-precision weight copies are then counted); default: ``analysis.dtype``.
    ``set_to_none``: the training step starts with ``zero_grad(set_to_none=True)`` (torch's
    default: gradients are freed between steps and re-created by the backward); False keeps them.
    """
    if optimizer not in OPTIMIZER_STATES:
        raise OptionError(f"unknown optimizer {optimizer!r}; choose one of "
                          f"{', '.join(OPTIMIZER_STATES)}")
    if analysis.convention != "macs":
        raise OptionError(f"the memory model needs plain multiply-adds, not the "
                          f"{analysis.convention!r} convention's counts")
    size = bytes_per_element(analysis.dtype)
    param_size = bytes_per_element(param_dtype or analysis.dtype)
    autocast = analysis.dtype in LOW_PRECISION and param_size > size
    totals = analysis.totals
    param_bytes = totals.params * param_size
    buffer_bytes = totals.buffers * param_size
    gradient_bytes = totals.trainable_params * param_size
    optimizer_bytes = OPTIMIZER_STATES[optimizer] * gradient_bytes
    persistent = param_bytes + buffer_bytes

    input_size = param_size if autocast else size
    infer = _walk(analysis, False, size, input_size)
    infer_rules = [_rule(op, infer, False, size, param_size, autocast) for op in infer.ops]
    live, why, cached = _inference(infer, infer_rules, param_size, autocast)
    peak_index = max(range(len(live)), key=lambda i: live[i]) if live else -1
    peak = live[peak_index] if live else infer.tensors[infer.input].bytes

    train = _walk(analysis, True, size, input_size)
    # an op on tensors that need no gradient, with no weights of its own, records no autograd
    # node: it keeps nothing (a max pool straight on the input batch drops its indices)
    req = _requires_grad(train)
    rules = [_rule(op, train, req[op.output], size, param_size, autocast) for op in train.ops]
    largest = max((op.row.trainable_params for op in train.ops if op.row), default=0)
    tr = _training(train, rules, persistent=persistent, grads=gradient_bytes,
                   state=optimizer_bytes, set_to_none=set_to_none, optimizer=optimizer,
                   largest_param=largest * param_size, param_size=param_size,
                   autocast=autocast)
    fwd_macs, bwd_macs = _macs(train)

    # the inference op of each graph op (side heads have none), by graph op index
    at_inference: list[int | None] = [None] * (len(analysis.graph.ops) if analysis.graph else 0)
    for k, op in enumerate(infer.ops):
        at_inference[op.node] = k
    layers = []
    for op in train.ops:
        k = at_inference[op.node]
        out_bytes, ilive, iwhy = 0, 0, ""
        if k is not None:
            iop, ilive, iwhy = infer.ops[k], live[k], why[k]
            if infer.tensors[iop.output].storage != infer.tensors[iop.inputs[0]].storage:
                out_bytes = infer.tensors[iop.output].bytes
        layers.append(new_frozen(
            LayerMemory,
            path=op.path, kind=op.kind, output_bytes=out_bytes, live_bytes=ilive,
            saved=rules[op.index].saved_what, saved_bytes=tr.newly_saved[op.index],
            forward_macs=fwd_macs.get(op.path, 0), backward_macs=bwd_macs.get(op.path, 0),
            training_live_bytes=tr.forward[op.index],
            backward_live_bytes=tr.backward[op.index], why=iwhy))

    return MemoryReport(
        analysis=analysis, optimizer=optimizer, param_bytes=param_bytes,
        buffer_bytes=buffer_bytes, input_bytes=infer.tensors[infer.input].bytes,
        activation_peak_bytes=peak,
        activation_peak_at=(infer.ops[peak_index].path if live else "input"),
        activation_sum_bytes=totals.activation_bytes, inference_bytes=persistent + peak,
        gradient_bytes=gradient_bytes, optimizer_bytes=optimizer_bytes,
        saved_bytes=sum(tr.newly_saved), forward_peak_bytes=tr.forward_peak,
        backward_peak_bytes=tr.backward_peak, training_bytes=tr.peak,
        forward_macs=sum(fwd_macs.values()), backward_macs=sum(bwd_macs.values()),
        layers=layers, set_to_none=set_to_none, training_peak_at=tr.peak_at,
        optimizer_step_bytes=tr.optimizer_temp, autocast_weight_bytes=cached)


__all__ = ["ASSUMPTIONS", "LayerMemory", "MemoryReport", "OPTIMIZER_STATES", "Op", "Rule",
           "memory"]
