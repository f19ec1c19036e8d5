"""A meter of live tensor memory: every tensor storage torch allocates and frees, on any device.

:class:`LiveTensorMeter` is a ``TorchDispatchMode``: every ATen op that runs inside it passes
through ``__torch_dispatch__``, which looks at the op's inputs and outputs. Each tensor's
*untyped storage* is counted once (views share their base's storage) from the first time the
meter sees it until a weakref finalizer on the storage reports that torch freed it. Tensors that
exist before the meter starts (parameters, buffers, gradients, optimizer state, the input batch)
are counted from :meth:`LiveTensorMeter.track`, or from the first op that reads them.

What it counts is the bytes of live tensors — what the memory model in :mod:`cnncalc.memory`
predicts — not the allocator's caches, its rounding, or the workspaces a kernel allocates
outside the dispatcher (oneDNN's scratch buffers, cuDNN's workspaces): resident-memory growth and
``torch.cuda.max_memory_allocated`` both include some of those.

:func:`measure_inference` and :func:`measure_training` run the two measurements the memory model
is checked against: one forward pass under ``no_grad``, and a steady-state training step (the
second step: ``zero_grad``, forward, ``loss.backward()``, ``optimizer.step()``).
"""

from __future__ import annotations

import weakref
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

OPTIMIZERS = ("sgd", "momentum", "adam")
AUTOCAST = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class LiveTensorMeter(TorchDispatchMode):
    """Live tensor bytes (per storage, each counted once) and their peak while the mode is on.

    ``live_bytes``: bytes of the storages alive now; ``peak_bytes``: the largest ``live_bytes``
    seen since the meter was created (or :meth:`reset_peak`); ``peak_op``: the op whose outputs
    set the peak. Storages are recognised by identity: torch keeps one Python object per live
    storage, and a finalizer on it fires when torch frees the storage.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live_bytes = 0
        self.peak_bytes = 0
        self.peak_op = ""
        self._sizes: dict[int, int] = {}  # id(storage) -> bytes counted for it
        self._op = ""

    # ---- bookkeeping

    def _freed(self, key: int) -> None:
        self.live_bytes -= self._sizes.pop(key, 0)

    def _see(self, tensor: torch.Tensor) -> None:
        if getattr(tensor, "is_sparse", False):
            return
        try:
            storage = tensor.untyped_storage()
        except (RuntimeError, NotImplementedError):  # sparse, nested: not a plain storage
            return
        key = id(storage)
        size = storage.nbytes()
        old = self._sizes.get(key)
        if old is None:
            self._sizes[key] = size
            weakref.finalize(storage, self._freed, key)
            self.live_bytes += size
        elif size != old:  # resized in place (an out= op)
            self._sizes[key] = size
            self.live_bytes += size - old
        if self.live_bytes > self.peak_bytes:
            self.peak_bytes = self.live_bytes
            self.peak_op = self._op

    def track(self, tensors: Iterable[torch.Tensor | None]) -> None:
        """Count tensors that already exist (parameters, gradients, optimizer state, inputs)."""
        for tensor in tensors:
            if isinstance(tensor, torch.Tensor):
                self._see(tensor)

    def reset_peak(self) -> None:
        self.peak_bytes = self.live_bytes
        self.peak_op = ""

    # ---- the mode

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        flat_in, _ = tree_flatten((args, kwargs))
        for item in flat_in:
            if isinstance(item, torch.Tensor):
                self._see(item)
        out = func(*args, **kwargs)
        self._op = str(func)
        flat_out, _ = tree_flatten(out)
        for item in flat_out:
            if isinstance(item, torch.Tensor):
                self._see(item)
        return out


def module_tensors(model: torch.nn.Module) -> list[torch.Tensor]:
    """Parameters, their gradients and buffers."""
    tensors: list[torch.Tensor] = []
    for p in model.parameters():
        tensors.append(p)
        if p.grad is not None:
            tensors.append(p.grad)
    tensors += list(model.buffers())
    return tensors


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The tensors of an optimizer's state (momentum buffers, Adam's moments, its step count)."""
    return [v for state in optimizer.state.values() for v in state.values()
            if isinstance(v, torch.Tensor)]


def make_optimizer(name: str, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """``sgd`` (no state), ``momentum`` (SGD with one momentum buffer), ``adam`` (two moments).
    The single-tensor implementations (``foreach=False``): torch's default on the CPU."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=1e-3, foreach=False)
    if name == "momentum":
        return torch.optim.SGD(params, lr=1e-3, momentum=0.9, foreach=False)
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-3, foreach=False)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


@dataclass(frozen=True)
class Measurement:
    """Bytes of live tensors: before the step (``start_bytes``), at its peak, and after it."""

    start_bytes: int
    peak_bytes: int
    end_bytes: int
    peak_op: str

    @property
    def transient_bytes(self) -> int:
        """How far the peak rose above what was live before the step."""
        return self.peak_bytes - self.start_bytes


def _autocast(device: torch.device, dtype: str) -> Any:
    low = AUTOCAST[dtype]
    return nullcontext() if low is None else torch.autocast(device.type, dtype=low)


def _metered(run: Callable[[LiveTensorMeter], None], existing: list[torch.Tensor]) -> Measurement:
    meter = LiveTensorMeter()
    with meter:
        meter.track(existing)
        start = meter.live_bytes
        meter.reset_peak()
        run(meter)
    return Measurement(start, meter.peak_bytes, meter.live_bytes, meter.peak_op)


def measure_inference(model: torch.nn.Module, x: torch.Tensor, dtype: str = "fp32") -> Measurement:
    """One forward pass under ``no_grad`` (and autocast for bf16/fp16), model in eval mode.

    ``start_bytes`` is what is live before it: parameters, buffers and the input batch."""
    model.eval()
    device = x.device

    def run(meter: LiveTensorMeter) -> None:
        with torch.no_grad(), _autocast(device, dtype):
            out = model(x)
        meter.track(tree_flatten(out)[0])
        del out

    return _metered(run, [*module_tensors(model), x])


def _loss(out: Any) -> torch.Tensor:
    outputs = out if isinstance(out, tuple) else (out,)
    return sum(o.float().mean() for o in outputs)  # type: ignore[return-value]


def measure_training(model: torch.nn.Module, x: torch.Tensor, optimizer: str = "sgd",
                     set_to_none: bool = True, dtype: str = "fp32") -> Measurement:
    """A steady-state training step, metered: one unmetered step first (it allocates gradients
    and optimizer state), then ``zero_grad(set_to_none)``, forward (autocast for bf16/fp16),
    the backward of the mean of every output (side heads' too), ``optimizer.step()``.

    ``start_bytes``: parameters, buffers, the input batch, optimizer state and — unless
    ``set_to_none`` frees them — the gradients, before the step."""
    model.train()
    if hasattr(model, "collect_heads"):
        model.collect_heads = True
    device = x.device
    opt = make_optimizer(optimizer, [p for p in model.parameters() if p.requires_grad])

    def step() -> None:
        with _autocast(device, dtype):
            out = model(x)
        loss = _loss(out)
        del out
        loss.backward()
        del loss
        opt.step()

    opt.zero_grad(set_to_none=set_to_none)
    step()
    if set_to_none:
        opt.zero_grad(set_to_none=True)
    else:
        opt.zero_grad(set_to_none=False)

    def run(meter: LiveTensorMeter) -> None:
        step()

    return _metered(run, [*module_tensors(model), *optimizer_tensors(opt), x])


__all__ = ["LiveTensorMeter", "Measurement", "OPTIMIZERS", "make_optimizer", "measure_inference",
           "measure_training", "module_tensors", "optimizer_tensors"]
