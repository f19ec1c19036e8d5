"""Check the engine against a real torch run, row by row.

For every row (layer or group) of the analysis: the output shape seen by a forward hook, the
parameter, trainable-parameter and buffer counts (``numel`` sums), and the multiply-adds fvcore's
``FlopCountAnalysis`` attributes to that module (its conv and matmul-family operators only: our
MAC convention). For the whole model: torch's ``FlopCounterMode`` total, which counts 2 FLOPs per
MAC. Side heads are run, so their rows are checked too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..engine import Analysis, analyze
from . import check_fits
from ..spec import Spec
from .builders import Network, build

#: fvcore operator names (as in ``by_module_and_operator``) that are multiply-accumulates.
MAC_OPERATORS = frozenset({"conv", "_convolution", "linear", "addmm", "matmul", "mm", "bmm",
                           "einsum"})


@dataclass(frozen=True)
class Check:
    """One comparison: what the engine says and what torch (or fvcore) measured."""

    name: str
    expected: Any
    actual: Any

    @property
    def ok(self) -> bool:
        return self.expected == self.actual


@dataclass(frozen=True)
class RowCheck:
    path: str
    kind: str
    leaf: bool
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


@dataclass(frozen=True)
class Verification:
    """The result of :func:`verify`: per-row and whole-model checks, and the versions used."""

    analysis: Analysis
    rows: tuple[RowCheck, ...]
    totals: tuple[Check, ...]
    versions: dict[str, str]
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows) and all(c.ok for c in self.totals)

    @property
    def failed_rows(self) -> list[RowCheck]:
        return [r for r in self.rows if not r.ok]


def _output_shapes(model: Network, analysis: Analysis) -> dict[str, tuple[int, ...]]:
    """Each row's output shape in the run just made (``model.record``): a layer's output, a
    group's output tensor (a head's own output, not its input)."""
    graph = analysis.graph
    assert graph is not None
    found = {op.path: tuple(model.tensors[op.index].shape) for op in graph.ops
             if op.row and op.index in model.tensors}
    found.update({g.path: tuple(model.tensors[g.output].shape) for g in graph.groups
                  if g.output in model.tensors})
    return found


def _fvcore_macs(model: Network, x: torch.Tensor) -> tuple[dict[str, int] | None, str | None]:
    """MACs per module path from fvcore (conv and matmul-family operators), or None if absent."""
    try:
        import fvcore
        from fvcore.nn import FlopCountAnalysis
    except ImportError:
        return None, None
    counter = FlopCountAnalysis(model, x)
    counter.unsupported_ops_warnings(False)
    counter.uncalled_modules_warnings(False)
    by_module = counter.by_module_and_operator()
    macs = {path: sum(n for op, n in ops.items() if op in MAC_OPERATORS)
            for path, ops in by_module.items()}
    return macs, getattr(fvcore, "__version__", "unknown")


def _flop_counter_total(model: Network, x: torch.Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return int(counter.get_total_flops())


def verify(spec: Spec, input: Any = None, batch: int = 1) -> Verification:
    """Build ``spec``, run one forward pass (eval mode, no grad, heads on) and check every row."""
    analysis = analyze(spec, input, batch=batch)
    check_fits(analysis)
    model = build(spec, analysis.input).eval()
    model.collect_heads = model.heads_always = True
    x = torch.randn(batch, *analysis.input)
    model.record = True
    with torch.no_grad():
        model(x)
    shapes = _output_shapes(model, analysis)
    model.record = False
    fv_macs, fv_version = _fvcore_macs(model, x)

    rows = []
    for row in analysis.rows:
        module = model.submodule(row.path)
        params = list(module.parameters())
        checks = [
            Check("shape", (batch, *row.output), shapes.get(row.path)),
            Check("params", row.params, sum(p.numel() for p in params)),
            Check("trainable", row.trainable_params, sum(p.numel() for p in params if p.requires_grad)),
            Check("buffers", row.buffers, sum(b.numel() for b in module.buffers())),
        ]
        if fv_macs is not None:
            checks.append(Check("macs", _all_macs_under(analysis, row.path),
                                fv_macs.get(model.torch_path(row.path), 0)))
        rows.append(RowCheck(row.path, row.kind, row.leaf, tuple(checks)))

    t = analysis.totals
    everything = t.macs + t.head_macs
    totals = [
        Check("params", t.params, sum(p.numel() for p in model.parameters())),
        Check("buffers", t.buffers, sum(b.numel() for b in model.buffers())),
        Check("flop_counter", 2 * everything, _flop_counter_total(model, x)),
    ]
    if fv_macs is not None:
        totals.append(Check("fvcore", everything, fv_macs.get("", 0)))
    versions = {"torch": torch.__version__}
    notes = []
    if fv_version:
        versions["fvcore"] = fv_version
    else:
        notes.append("fvcore is not installed: per-layer MACs not checked "
                      "(pip install 'cnncalc[torch]')")
    if analysis.graph_warnings:
        notes.append("layers whose output is never used are left out of fvcore's trace, so "
                     "their MACs read 0 there: " + ", ".join(w.path for w in analysis.graph_warnings))
    if t.head_macs:
        notes.append(f"side heads were run for the check: MACs compared include their "
                     f"{t.head_macs:,}")
    return Verification(analysis, tuple(rows), tuple(totals), versions, tuple(notes))


def _all_macs_under(analysis: Analysis, path: str) -> int:
    """MACs of every layer at or under ``path``, side heads included (they were run)."""
    prefix = path + "."
    return sum(r.macs for r in analysis.rows
               if r.leaf and (r.path == path or r.path.startswith(prefix)))
