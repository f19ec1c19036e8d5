"""A memory model for a batch and dtype: inference peak with liveness, and training memory
(parameters, gradients, optimizer state, activations saved for backward) with training compute.

The spec is replayed as the cnncalc torch backend runs it, in eager PyTorch order: a residual
block runs its body, then its shortcut, then adds them (out of place) and runs its post layers; a
concat runs its branches in order and concatenates them. Every layer allocates a new output
tensor, except views and no-ops (``flatten``, ``identity``, and ``dropout`` at inference), whose
output is their input. A tensor is freed right after its last use; the network's output is kept.
docs/memory.md states every assumption and how each number is computed.

Pure Python: nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import accumulate
from math import prod

from .engine import Analysis, Row, bytes_per_element
from .errors import OptionError
from .graph import GRAPH_INPUT, Op
from .layers import REGISTRY

OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2}  # extra copies of the trainable params

# Per layer kind, whether its output is its input (a view or a no-op) and what autograd saves
# for its backward are declared with the kind, in cnncalc/layers.py (LayerRule.view_at_inference,
# view_in_training, saved_for_backward). A layer with multiply-adds takes, in backward, an input
# gradient and a weight gradient, each as many MACs as the forward.

ASSUMPTIONS = (
    "eager PyTorch order as the cnncalc torch backend runs the spec: a residual block runs its "
    "body, then its shortcut, then adds out of place; concat branches run in order",
    "every layer allocates its output, out of place (no in-place ReLU); flatten and identity "
    "are views, and dropout is a no-op at inference",
    "a tensor is freed right after its last use; the input batch counts until its last use and "
    "the network's output is kept",
    "parameters, buffers, gradients and optimizer state are in the chosen dtype; max-pooling "
    "indices are int64 and dropout masks bool",
    "not counted: the allocator's caching and fragmentation, convolution workspaces, the CUDA "
    "context, the loss and the labels",
    "training: gradients and optimizer state are allocated (steady state after the first step); "
    "side heads run; batch norm uses batch statistics",
    "backward MACs: conv and linear layers take an input gradient and a weight gradient, each "
    "as many MACs as the forward (≈ 2 × forward); the first layer needs no input gradient",
)


@dataclass
class _Tensor:
    id: int
    elements: int  # for the whole batch
    bytes_each: int
    producer: int  # step index; -1 for the input batch
    what: str  # "conv1 output", "maxpool indices"
    extra: bool = False  # kept for backward only (indices, masks, statistics), not an activation

    @property
    def bytes(self) -> int:
        return self.elements * self.bytes_each


@dataclass
class _Step:
    path: str
    kind: str
    inputs: list[int]
    output: int
    row: Row | None
    saves: list[int] = field(default_factory=list)  # tensor ids kept for backward
    saved_what: str = ""


@dataclass(frozen=True)
class LayerMemory:
    """One step of the replay: a layer, or a residual add / concat of a group."""

    path: str
    kind: str
    output_bytes: int  # the tensor it allocates (0 for views and no-ops)
    live_bytes: int  # inference: activation bytes live while it runs (inputs, output, kept)
    saved: str  # training: what it keeps for backward ("input", "output + indices", "")
    saved_bytes: int  # training: bytes it newly keeps (a tensor another layer keeps counts once)
    forward_macs: int
    backward_macs: int


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
    training_bytes: int  # params + buffers + grads + optimizer + max(forward, backward peak)
    forward_macs: int
    backward_macs: int
    layers: list[LayerMemory]
    assumptions: tuple[str, ...] = ASSUMPTIONS

    @property
    def training_macs(self) -> int:
        return self.forward_macs + self.backward_macs

    @property
    def training_activation_peak_bytes(self) -> int:
        return max(self.forward_peak_bytes, self.backward_peak_bytes)

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


class _Replay:
    """The spec's layers as steps on tensors, in execution order."""

    def __init__(self, analysis: Analysis, training: bool):
        self.analysis = analysis
        self.training = training
        self.size = bytes_per_element(analysis.dtype)
        self.batch = analysis.batch
        self.rows = {r.path: r for r in analysis.rows}
        self.tensors: list[_Tensor] = []
        self.steps: list[_Step] = []
        self.outputs: list[int] = []  # kept to the end: the main output, head outputs

    def new(self, elements_per_sample: int, what: str, bytes_each: int | None = None,
            producer: int | None = None) -> int:
        t = _Tensor(len(self.tensors), elements_per_sample * self.batch,
                    self.size if bytes_each is None else bytes_each,
                    len(self.steps) if producer is None else producer, what,
                    extra=producer is not None)
        self.tensors.append(t)
        return t.id

    def run(self) -> None:
        """The graph's ops in order; side heads only in training (inference skips them)."""
        graph = self.analysis.graph
        x = self.new(prod(self.analysis.input), "input")
        self.tensors[x].producer = -1
        ids = {GRAPH_INPUT: x}  # graph tensor → replay tensor
        for op in graph.ops:
            if op.head and not self.training:
                continue
            ids[op.index] = self.op(op, [ids[t] for t in op.inputs])
        self.outputs.extend(ids[t] for t in graph.outputs)
        if self.training:
            self.outputs.extend(ids[g.output] for g in graph.groups if g.side)

    def op(self, op: Op, inputs: list[int]) -> int:
        shape = self.analysis.shapes[op.index]
        if op.implied is not None:
            kind = "concat" if op.implied == "concat" else "add"
            y = self.new(prod(shape), f"{op.path} {kind}")
            self.steps.append(_Step(op.path, kind, inputs, y, None))
            return y
        row = self.rows[op.path]
        rule = REGISTRY[op.kind]
        if rule.view_in_training if self.training else rule.view_at_inference:
            self.steps.append(_Step(op.path, op.kind, inputs, inputs[0], row))
            return inputs[0]
        y = self.new(prod(row.output), f"{op.path} output")
        step = _Step(op.path, op.kind, inputs, y, row)
        self.steps.append(step)
        if self.training:
            self.saves(step, op, row, inputs[0], y)
        return y

    def saves(self, step: _Step, leaf: Op, row: Row, x: int, y: int) -> None:
        """Record what autograd keeps for the layer's backward (its kind's rule)."""
        at = len(self.steps) - 1
        rule = REGISTRY[leaf.kind]
        config = self.analysis.configs[leaf.index]
        shapes = (row.input if getattr(rule, "arity", 1) == 1
                  else tuple(self.analysis.shapes[t] if t != GRAPH_INPUT else self.analysis.input
                             for t in leaf.inputs))
        saved = rule.saved_for_backward(config, shapes, row.output)
        for item in saved:
            if item.what == "input":  # a merge's input: every operand
                step.saves.extend(step.inputs if getattr(rule, "arity", 1) != 1 else [x])
            elif item.what == "output":
                step.saves.append(y)
            else:
                step.saves.append(self.new(item.elements, f"{leaf.path} {item.what}",
                                           item.bytes_each, producer=at))
        step.saved_what = " + ".join(item.what for item in saved)


def _last_uses(replay: _Replay) -> list[int]:
    end = len(replay.steps)
    last = [t.producer for t in replay.tensors]
    for i, step in enumerate(replay.steps):
        for t in step.inputs:
            last[t] = max(last[t], i)
    for t in replay.outputs:
        last[t] = end
    return last


def _live_per_step(replay: _Replay) -> list[int]:
    """Bytes of activations live while each step runs: produced by then and still to be used."""
    last = _last_uses(replay)
    activations = [t for t in replay.tensors if not t.extra]
    return [sum(t.bytes for t in activations if t.producer <= i <= last[t.id])
            for i in range(len(replay.steps))]


def _macs(replay: _Replay) -> tuple[dict[str, int], dict[str, int]]:
    forward, backward = {}, {}
    for step in replay.steps:
        row = step.row
        if row is None:
            continue
        forward[step.path] = row.macs
        if row.macs:
            needs_input_grad = any(replay.tensors[t].producer >= 0 for t in step.inputs)
            backward[step.path] = row.macs * (2 if needs_input_grad else 1)
    return forward, backward


def _key(step: _Step) -> str:
    """A step's name, the same at inference and in training: the path, and for a residual add or
    a concatenation its kind too (the block's own path is not a layer)."""
    return step.path if step.row is not None else f"{step.path} ({step.kind})"


def memory(analysis: Analysis, optimizer: str = "sgd",
           param_dtype: str | None = None) -> MemoryReport:
    """The memory model of ``analysis`` (its batch and dtype) for ``optimizer``.

    ``param_dtype``: the element type of parameters, buffers, gradients and optimizer state when
    it differs from the activations' (mixed precision: fp32 weights under fp16/bf16 autocast);
    default: ``analysis.dtype``. Autocast's low-precision weight copies are not counted.
    """
    if optimizer not in OPTIMIZER_STATES:
        raise OptionError(f"unknown optimizer {optimizer!r}; choose one of "
                          f"{', '.join(OPTIMIZER_STATES)}")
    if analysis.convention != "macs":
        raise OptionError(f"the memory model needs plain multiply-adds, not the "
                          f"{analysis.convention!r} convention's counts")
    param_size = bytes_per_element(param_dtype or analysis.dtype)
    totals = analysis.totals

    # Inference: heads do not run, dropout is a no-op.
    infer = _Replay(analysis, training=False)
    infer.run()
    live = _live_per_step(infer)
    peak_index = max(range(len(live)), key=lambda i: live[i]) if live else -1
    peak = live[peak_index] if live else infer.tensors[0].bytes
    live_by_path = {_key(s): b for s, b in zip(infer.steps, live)}

    # Training: heads run, everything saved for backward stays until its backward.
    train = _Replay(analysis, training=True)
    train.run()
    forward_peak, backward_peak, newly_saved = _training_peaks(train)
    fwd_macs, bwd_macs = _macs(train)

    layers = []
    infer_out = {_key(s): s for s in infer.steps}
    for i, step in enumerate(train.steps):
        key = _key(step)
        istep = infer_out.get(key)
        out_bytes = 0
        if istep is not None and istep.output not in istep.inputs:
            out_bytes = infer.tensors[istep.output].bytes
        layers.append(LayerMemory(
            path=step.path, kind=step.kind, output_bytes=out_bytes,
            live_bytes=live_by_path.get(key, 0), saved=step.saved_what,
            saved_bytes=newly_saved[i], forward_macs=fwd_macs.get(step.path, 0),
            backward_macs=bwd_macs.get(step.path, 0)))

    param_bytes = totals.params * param_size
    buffer_bytes = totals.buffers * param_size
    trainable_bytes = totals.trainable_params * param_size
    gradient_bytes = trainable_bytes
    optimizer_bytes = OPTIMIZER_STATES[optimizer] * trainable_bytes
    persistent = param_bytes + buffer_bytes
    saved_total = sum(newly_saved)
    return MemoryReport(
        analysis=analysis, optimizer=optimizer, param_bytes=param_bytes,
        buffer_bytes=buffer_bytes, input_bytes=infer.tensors[0].bytes,
        activation_peak_bytes=peak,
        activation_peak_at=(infer.steps[peak_index].path if live else "input"),
        activation_sum_bytes=totals.activation_bytes, inference_bytes=persistent + peak,
        gradient_bytes=gradient_bytes, optimizer_bytes=optimizer_bytes, saved_bytes=saved_total,
        forward_peak_bytes=forward_peak, backward_peak_bytes=backward_peak,
        training_bytes=persistent + gradient_bytes + optimizer_bytes
        + max(forward_peak, backward_peak),
        forward_macs=sum(fwd_macs.values()), backward_macs=sum(bwd_macs.values()),
        layers=layers)


def _training_peaks(replay: _Replay) -> tuple[int, int, list[int]]:
    """Forward peak, backward peak and, per step, the bytes it newly keeps for backward.

    Forward, at each step: the tensors kept for backward by the steps so far, plus the other
    activations live (as at inference). Backward, steps in reverse: the kept tensors still
    needed (a tensor kept by several steps is freed after the earliest one's backward), plus the
    activation gradients live: a tensor's gradient exists from the backward of its last consumer
    (the loss, for an output) to the backward of its producer; the input batch needs none.
    """
    steps, tensors = replay.steps, replay.tensors
    n = len(steps)
    last = _last_uses(replay)
    first_saver: dict[int, int] = {}
    newly = [0] * n
    for i, step in enumerate(steps):
        for t in step.saves:
            if t not in first_saver:
                first_saver[t] = i
                newly[i] += tensors[t].bytes
    kept = list(accumulate(newly))  # bytes saved for backward by step i and before

    activations = [t for t in tensors if not t.extra]
    forward_peak = 0
    for i in range(n):
        transient = sum(t.bytes for t in activations if t.producer <= i <= last[t.id]
                        and not (t.id in first_saver and first_saver[t.id] <= i))
        forward_peak = max(forward_peak, kept[i] + transient)

    outputs = set(replay.outputs)
    with_grad = [t for t in activations if t.producer >= 0
                 and (t.id in outputs or last[t.id] > t.producer)]
    backward_peak = 0
    for i in range(n - 1, -1, -1):
        grads = sum(t.bytes for t in with_grad if t.producer <= i <= last[t.id])
        backward_peak = max(backward_peak, kept[i] + grads)
    return forward_peak, backward_peak, newly


__all__ = ["ASSUMPTIONS", "LayerMemory", "MemoryReport", "OPTIMIZER_STATES", "memory"]
