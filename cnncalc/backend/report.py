"""Rendering of verifications and profiles: rich tables and JSON objects (no measuring here)."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ..render import Report, TextTable, human_bytes, shape_text
from .timing import Profile
from .checks import Check, RowCheck, Verification

if TYPE_CHECKING:  # pragma: no cover
    from .against import Against

CHECK_COLUMNS = ("shape", "params", "trainable", "buffers", "macs")
CHECK_HEADERS = ("Shape", "Params", "Trainable", "Buffers", "MACs")


def _check_dict(check: Check) -> dict[str, Any]:
    value = lambda v: list(v) if isinstance(v, tuple) else v  # noqa: E731
    return {"expected": value(check.expected), "actual": value(check.actual), "ok": check.ok}


def verification_dict(v: Verification, depth: int | None = None) -> dict[str, Any]:
    """``verify --format json``: per-row checks (failed rows first) and whole-model checks."""
    return {
        "spec": v.analysis.spec.name, "input": list(v.analysis.input), "batch": v.analysis.batch,
        "ok": v.ok, "versions": v.versions, "notes": list(v.notes),
        "rows": [{"path": r.path, "kind": r.kind, "ok": r.ok,
                  "checks": {c.name: _check_dict(c) for c in r.checks}}
                 for r in shown_rows(v, depth)],
        "totals": {c.name: _check_dict(c) for c in v.totals},
    }


def shown_rows(v: Verification, depth: int | None) -> list[RowCheck]:
    """Rows at ``depth`` (default: every layer), the ones that differ first."""
    wanted = {r.path for r in v.analysis.at_depth(depth)}
    rows = [r for r in v.rows if r.path in wanted]
    return [r for r in rows if not r.ok] + [r for r in rows if r.ok]


def verdict(v: Verification) -> str:
    checked = ", ".join(f"{name} {version}" for name, version in v.versions.items())
    if v.ok:
        return (f"verified: all {len(v.rows)} rows agree with {checked} (shapes, parameters, "
                f"buffers{', MACs' if 'fvcore' in v.versions else ''}); totals agree, "
                f"FlopCounterMode = 2 × MACs")
    bad_totals = [c.name for c in v.totals if not c.ok]
    return (f"MISMATCH: {len(v.failed_rows)} of {len(v.rows)} rows differ from {checked}"
            + (f"; totals differ: {', '.join(bad_totals)}" if bad_totals else ""))


def _cell(check: Check | None) -> str:
    if check is None:
        return "·"
    if check.ok:
        return "✓"
    show = lambda v: shape_text(v[1:]) if check.name == "shape" and v else f"{v:,}" if isinstance(v, int) else str(v)  # noqa: E731
    return f"✗ {show(check.expected)} ≠ {show(check.actual)}"


def verification_rich(v: Verification, depth: int | None = None) -> Report:
    a = v.analysis
    report = Report()
    table = report.table(TextTable(
        f"verify {a.spec.name}: input {shape_text(a.input)}, batch {a.batch}",
        ("Layer", "Kind", *CHECK_HEADERS)))
    for row in shown_rows(v, depth):
        by_name = {c.name: c for c in row.checks}
        table.add_row([row.path, row.kind, *(_cell(by_name.get(c)) for c in CHECK_COLUMNS)],
                      style=None if row.ok else "red")
    report.line()
    totals = report.table(TextTable("whole model", ("Check", "Engine", "Torch", ""),
                                    right=(1, 2)))
    for check in v.totals:
        totals.add_row([check.name, f"{check.expected:,}", f"{check.actual:,}",
                        "✓" if check.ok else "✗"])
    report.line()
    for note in v.notes:
        report.line(note, "dim")
    report.line(verdict(v), "bold green" if v.ok else "bold red")
    return report


# --------------------------------------------------------------------------------------------
# verify --against: a spec beside a real model (cnncalc.backend.against)

AGAINST_COLUMNS = ("params", "buffers", "fvcore")
AGAINST_HEADERS = ("Params", "Buffers", "fvcore")


def _unpaired_dicts(items: Any) -> list[dict[str, Any]]:
    return [{"path": path, "params": params, "buffers": buffers}
            for path, params, buffers in items]


def against_dict(a: "Against") -> dict[str, Any]:
    """``verify --against --format json``: the differing rows first, then the agreeing ones."""
    rows = _leaves_first(a.failed_rows) + [r for r in a.rows if r.ok]
    return {
        "spec": a.analysis.spec.name, "against": a.source, "input": list(a.analysis.input),
        "batch": a.analysis.batch, "ok": a.ok, "versions": a.versions,
        "rows": [{"path": r.path, "kind": r.kind, "ok": r.ok,
                  "checks": {c.name: _check_dict(c) for c in r.checks}} for r in rows],
        "spec_only": _unpaired_dicts(a.spec_only), "model_only": _unpaired_dicts(a.model_only),
        "unpaired_rows": a.unpaired,
        "totals": {c.name: _check_dict(c) for c in a.totals},
    }


def _leaves_first(rows: list[RowCheck]) -> list[RowCheck]:
    """Layers before the groups that hold them (a group differs because a layer does), each in
    spec order."""
    return [r for r in rows if r.leaf] + [r for r in rows if not r.leaf]


def against_verdict(a: "Against") -> str:
    checked = ", ".join(f"{name} {version}" for name, version in a.versions.items())
    if a.ok:
        return (f"verified against {a.source}: all {len(a.rows)} paired rows and the totals "
                f"agree ({checked})")
    parts = []
    if a.failed_rows:
        parts.append(f"{len(a.failed_rows)} of {len(a.rows)} paired rows differ")
    if a.spec_only:
        parts.append(f"{len(a.spec_only)} spec layer(s) with parameters are not in the model")
    if a.model_only:
        parts.append(f"{len(a.model_only)} module(s) with parameters are not in the spec")
    bad = [c.name for c in a.totals if not c.ok]
    if bad:
        parts.append(f"totals differ: {', '.join(bad)}")
    return f"MISMATCH against {a.source}: " + "; ".join(parts)


def _totals_cell(value: Any) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    return ", ".join(shape_text(v) for v in value)


def against_rich(a: "Against") -> Report:
    """What differs first (paired rows, then unpaired paths), the count of rows that agree,
    then the totals."""
    spec = a.analysis.spec.name
    report = Report()
    failed = _leaves_first(a.failed_rows)
    if failed:
        table = report.table(TextTable(
            f"{spec} against {a.source}: rows that differ (spec ≠ model)",
            ("Layer", "Kind", *AGAINST_HEADERS)))
        for row in failed:
            by_name = {c.name: c for c in row.checks}
            table.add_row([row.path, row.kind, *(_cell(by_name.get(c)) for c in AGAINST_COLUMNS)],
                          style="red")
        report.line()
    for title, items in (("in the spec, not in the model", a.spec_only),
                         ("in the model, not in the spec", a.model_only)):
        if items:
            table = report.table(TextTable(f"{title} (parameters and buffers not compared)",
                                           ("Path", "Params", "Buffers"), right=(1, 2)))
            for path, params, buffers in items:
                table.add_row([path, f"{params:,}", f"{buffers:,}"], style="red")
            report.line()
    report.line(f"{len(a.rows) - len(failed)} rows agree (params, buffers, fvcore by module); "
                f"{a.unpaired} spec rows without parameters have no module of their path and "
                "count in the totals only", "dim")
    report.line()
    totals = report.table(TextTable(f"whole model, input {shape_text(a.analysis.input)}, batch "
                                    f"{a.analysis.batch}", ("Check", "Spec", "Model", ""),
                                    right=(1, 2)))
    for check in a.totals:
        totals.add_row([check.name, _totals_cell(check.expected), _totals_cell(check.actual),
                        "✓" if check.ok else "✗"], style=None if check.ok else "red")
    report.line()
    report.line("fvcore: the spec counted under cnncalc's fvcore convention, the model by "
                "FlopCountAnalysis(model, x)", "dim")
    report.line(against_verdict(a), "bold green" if a.ok else "bold red")
    return report


def profile_dict(p: Profile) -> dict[str, Any]:
    v = p.verification
    return {
        "spec": p.spec, "input": list(p.input), "device": asdict(p.device), "dtype": p.dtype,
        "mode": p.mode, "channels_last": p.channels_last, "compile": p.compiled,
        "memory_measure": p.memory_measure, "peak_tflops": p.peak_tflops,
        "verified": {"ok": v.ok, "batch": v.analysis.batch, "rows": len(v.rows),
                     "failed": [r.path for r in v.failed_rows], "versions": v.versions},
        "results": [asdict(r) for r in p.results],
        "per_layer_batch": p.per_layer_batch,
        "per_layer": [{**asdict(t), "roofline_fraction": t.roofline_fraction}
                      for t in p.per_layer],
        "roofline_device": None if p.roofline_device is None else asdict(p.roofline_device),
        "predicted_latency_ms": p.predicted_latency_ms,
        "measured_latency_ms": p.measured_latency_ms,
    }


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}" if value >= 1000 else f"{value:.4g}"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}" if value < 100 else f"{value:.0f}"


def profile_rich(p: Profile) -> Report:
    d = p.device
    where = (f"{d.name} · torch {d.torch} · CUDA {d.cuda} · cuDNN {d.cudnn}" if d.kind == "cuda"
             else f"CPU {d.name} · {d.threads} threads · torch {d.torch}")
    flags = [p.dtype, p.mode] + (["channels_last"] if p.channels_last else []) + \
        (["compiled"] if p.compiled else [])
    report = Report()
    report.line(where, "dim")
    # the title as a line of its own: a table's title must fit the table's width
    report.line(f"profile {p.spec}: input {shape_text(p.input)} · {' · '.join(flags)}", "italic")
    columns = ("Batch", "Median ms", "p10 ms", "p90 ms", "IQR ms", "Images/s", "TFLOP/s",
               "% of peak", "Memory", "Predicted")
    table = report.table(TextTable(None, columns, right=range(len(columns))))
    for r in p.results:
        if r.error:
            table.add_row([str(r.batch), r.error, *[""] * (len(columns) - 2)], style="red")
            continue
        table.add_row([
            str(r.batch), _ms(r.median_ms), _ms(r.p10_ms), _ms(r.p90_ms), _ms(r.iqr_ms),
            _rate(r.images_per_s), f"{r.tflops:.3g}",
            "—" if r.peak_fraction is None else f"{100 * r.peak_fraction:.1f}%",
            human_bytes(r.memory_measured_bytes), human_bytes(r.memory_predicted_bytes)])
    report.line()
    if p.per_layer:
        scope = ", forward pass" if p.mode == "training" else ""
        report.line(f"per layer (batch {p.per_layer_batch}{scope}, torch.profiler)", "italic")
        layers = report.table(TextTable(
            None, ("Layer", "Kind", "ms", "Time share", "MAC share", "Roofline ms", "Bound",
                   "% of roofline"), right=(2, 3, 4, 5, 7)))
        for t in sorted(p.per_layer, key=lambda t: -t.ms):
            fraction = t.roofline_fraction
            layers.add_row([t.path, t.kind, f"{t.ms:.3g}", f"{100 * t.time_share:.1f}%",
                            f"{100 * t.mac_share:.1f}%",
                            "—" if t.predicted_ms is None or not t.bound
                            else f"{t.predicted_ms:.3g}",
                            t.bound or "—", "—" if fraction is None else f"{100 * fraction:.0f}%"])
        report.line()
    if p.roofline_device is not None:
        d = p.roofline_device
        report.line(f"Roofline: {d.name} ({d.source}): {d.peak(p.dtype) / 1e12:.3g} TFLOP/s "
                    f"{p.dtype}, {d.bandwidth / 1e9:.3g} GB/s, {d.overhead_s * 1e6:.3g} µs per op",
                    "dim")
    if p.predicted_latency_ms is not None and p.measured_latency_ms is not None:
        report.line(f"Latency at batch {p.per_layer_batch}: roofline {p.predicted_latency_ms:.3g} ms, "
                    f"measured {p.measured_latency_ms:.3g} ms "
                    f"({100 * p.predicted_latency_ms / p.measured_latency_ms:.0f}% of it)", "dim")
    report.line("TFLOP/s: 2 × " + ("(forward + backward MACs)" if p.mode == "training" else "MACs")
                + " × batch / median time"
                + (f"; peak {p.peak_tflops:g} TFLOP/s" if p.peak_tflops else ""), "dim")
    report.line(f"Memory: {p.memory_measure}; Predicted: cnncalc memory's "
                + ("training total (SGD)" if p.mode == "training" else "inference peak")
                + (", parameters in fp32 under autocast" if p.dtype != "fp32" else ""), "dim")
    report.line(verdict(p.verification),
                "bold green" if p.verification.ok else "bold red")
    return report


__all__ = ["against_dict", "against_rich", "against_verdict", "profile_dict", "profile_rich",
           "verification_dict", "verification_rich"]
