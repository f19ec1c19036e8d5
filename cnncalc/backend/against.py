"""``cnncalc verify SPEC --against SOURCE``: a spec held to a real model, row by row and in total.

The model is SOURCE's (``path/to/file.py:factory``, ``package.module:factory``), run once in
eval mode at the spec's input. A spec row and a module are paired by path (the spec's
``layer3.2.conv1`` is the module ``layer3.2.conv1``) and compared on parameters and buffers (the
``numel`` of the module's own, recursive, parameters and buffers) and fvcore's count
(``FlopCountAnalysis(model, x).by_module()``, beside the spec's rows counted under cnncalc's
``fvcore`` convention, which reproduces it), except for a module the forward never calls (its
weights used directly, ``F.linear(x, self.fc.weight)``: fvcore counts the op where it runs). A path that names a parameter rather than a module
(a layer scale's γ) is paired with that parameter. The totals compare parameters, buffers,
fvcore's total and the output shape.

Unpaired rows: a spec layer with parameters or buffers at a path the model does not have, and a
module holding parameters or buffers of its own at a path the spec does not have, are
differences (their counts are not checked where they are). Spec rows without parameters and
without a module (a functional ``add``, a reused ReLU's second call) are paired with nothing and
counted only in the totals. Rendering is in :mod:`cnncalc.backend.report`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch

from ..conventions import count
from ..engine import Analysis, analyze
from ..spec import Spec
from .checks import Check, RowCheck


@dataclass(frozen=True)
class Against:
    """The result of :func:`verify_against`. ``rows`` are the paired rows, in spec order;
    ``spec_only`` and ``model_only`` the unpaired paths that hold parameters or buffers (each
    with its params and buffers); ``unpaired`` the count of spec rows with nothing to compare."""

    analysis: Analysis
    source: str
    rows: tuple[RowCheck, ...]
    spec_only: tuple[tuple[str, int, int], ...]
    model_only: tuple[tuple[str, int, int], ...]
    unpaired: int
    totals: tuple[Check, ...]
    versions: dict[str, str]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows) and all(c.ok for c in self.totals) and \
            not self.spec_only and not self.model_only

    @property
    def failed_rows(self) -> list[RowCheck]:
        return [r for r in self.rows if not r.ok]


def _fvcore(model: Any, x: torch.Tensor) -> tuple[dict[str, int], int, set[str], str]:
    import fvcore
    from fvcore.nn import FlopCountAnalysis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        counter = FlopCountAnalysis(model, x)
        counter.unsupported_ops_warnings(False)
        counter.uncalled_modules_warnings(False)
        by_module = {path: int(n) for path, n in counter.by_module().items()}
        uncalled = set(counter.uncalled_modules())
    return by_module, int(counter.total()), uncalled, getattr(fvcore, "__version__", "unknown")


def _output_shapes(value: Any) -> list[tuple[int, ...]]:
    """Every tensor the model returns (a tensor, or tuples, lists and dicts of them), per sample."""
    if isinstance(value, torch.Tensor):
        return [tuple(value.shape[1:])]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [shape for item in value for shape in _output_shapes(item)]
    return []


def _numel(tensors: Any) -> int:
    return sum(t.numel() for t in tensors)


def verify_against(spec: Spec, source: str, input: Any = None, batch: int = 1,
                   model: Any = None) -> Against:
    """Compare ``spec`` with the model SOURCE names (or ``model``, an ``nn.Module``, given
    directly), at the spec's input or ``input``."""
    from ..importer.load import ImportFailed
    from ..importer.torch_fx import instantiate

    analysis = analyze(spec, input, batch=batch)
    if model is None:
        model = instantiate(source)
    model.eval()
    x = torch.zeros(batch, *analysis.input)
    try:
        with torch.no_grad():
            shapes = _output_shapes(model(x))
    except Exception as exc:
        raise ImportFailed(f"{source} does not run at the spec's input "
                           f"{'×'.join(map(str, analysis.input))}: {type(exc).__name__}: "
                           f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                           ) from None
    by_module, fv_total, uncalled, fv_version = _fvcore(model, x)
    fv_spec = count(analysis, "fvcore")
    modules = dict(model.named_modules())
    parameters = dict(model.named_parameters())

    rows, spec_only, unpaired = [], [], 0
    for row in analysis.rows:
        if row.path in modules:
            m = modules[row.path]
            checks = (Check("params", row.params, _numel(m.parameters())),
                      Check("buffers", row.buffers, _numel(m.buffers())))
            if row.path not in uncalled:  # a module whose weights forward uses directly
                checks += (Check("fvcore", fv_spec.by_path.get(row.path, 0),
                                 by_module.get(row.path, 0)),)
        elif row.path in parameters:  # a parameter used directly: a layer scale's γ
            checks = (Check("params", row.params, parameters[row.path].numel()),)
        elif row.leaf and (row.params or row.buffers):
            spec_only.append((row.path, row.params, row.buffers))
            continue
        else:
            unpaired += 1
            continue
        rows.append(RowCheck(row.path, row.kind, row.leaf, checks))
    spec_paths = {row.path for row in analysis.rows}
    model_only = []
    for path, m in modules.items():
        own = (_numel(m.parameters(recurse=False)), _numel(m.buffers(recurse=False)))
        owned_by_spec = path in spec_paths or any(
            f"{path}.{name}" in spec_paths for name, _ in m.named_parameters(recurse=False))
        if path and any(own) and not owned_by_spec:
            model_only.append((path, *own))
    t = analysis.totals
    totals = (
        Check("params", t.params, _numel(model.parameters())),
        Check("buffers", t.buffers, _numel(model.buffers())),
        Check("fvcore", fv_spec.total, fv_total),
        Check("output", [tuple(s) for s in analysis.outputs], shapes),
    )
    versions = {"torch": torch.__version__, "fvcore": fv_version}
    return Against(analysis, source, tuple(rows), tuple(spec_only), tuple(model_only), unpaired,
                   totals, versions)


__all__ = ["Against", "verify_against"]
