"""A roofline per layer: FLOPs and bytes moved give each layer's arithmetic intensity; with a
device's peak FLOP/s and memory bandwidth, its predicted time is the larger of the compute time
and the memory time, plus the device's fixed cost per op, and the larger says which bound applies.

* FLOPs: 2 per multiply-add (the ``macs`` convention); a layer without multiply-adds (activation,
  pooling, normalisation, residual add) counts the element operations it does per output
  (:data:`ELEMENT_FLOPS`), which only matters for its intensity: such layers are memory-bound.
* bytes moved: every input tensor read once, the weights and buffers read once, the output
  written once, at the dtype (the parameter dtype for weights); views and no-ops (flatten,
  identity, dropout at inference) move nothing and take no time. The ops are the memory model's
  (cnncalc.memory): residual adds and concatenations are ops too.
* devices: datasheet peaks for known GPUs (dense tensor-core FLOP/s, HBM/GDDR bandwidth), or a
  calibration measured by ``cnncalc profile --calibrate`` (a matmul and a copy on the device; it
  works on the CPU) and saved for ``cnncalc table --roofline cpu``.

Pure Python: nothing here imports torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from math import prod
from pathlib import Path
from typing import Any

from .engine import Analysis, bytes_per_element
from .errors import OptionError

# Dense (no sparsity) peak tensor throughput in TFLOP/s from the vendors' datasheets, per dtype.
# fp32 uses the TF32 tensor-core figure where cuDNN's TF32 is allowed (torch's default for
# convolutions); name matching is by substring of torch.cuda.get_device_name(), first match wins.
PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H200", {"fp32": 494.7, "fp16": 989.4, "bf16": 989.4}),
    ("H100 PCIe", {"fp32": 378.0, "fp16": 756.0, "bf16": 756.0}),
    ("H100", {"fp32": 494.7, "fp16": 989.4, "bf16": 989.4}),
    ("A100", {"fp32": 156.0, "fp16": 312.0, "bf16": 312.0}),
    ("L40S", {"fp32": 183.0, "fp16": 362.0, "bf16": 362.0}),
    ("L40", {"fp32": 90.5, "fp16": 181.0, "bf16": 181.0}),
    ("L4", {"fp32": 60.0, "fp16": 121.0, "bf16": 121.0}),
    ("A10", {"fp32": 62.5, "fp16": 125.0, "bf16": 125.0}),
    ("V100", {"fp32": 15.7, "fp16": 125.0}),
    ("T4", {"fp32": 8.1, "fp16": 65.0}),
    ("RTX 4090", {"fp32": 82.6, "fp16": 165.2, "bf16": 165.2}),
)

# Memory bandwidth in GB/s (10⁹ B/s) from the same datasheets (SXM parts unless named; A100 is
# the 80 GB SXM part's 2,039 GB/s, the 40 GB part has 1,555).
BANDWIDTH_GBPS: dict[str, float] = {
    "H200": 4800.0, "H100 PCIe": 2000.0, "H100": 3350.0, "A100": 2039.0, "L40S": 864.0,
    "L40": 864.0, "L4": 300.0, "A10": 600.0, "V100": 900.0, "T4": 320.0, "RTX 4090": 1008.0,
}

# Element operations per output element of layers without multiply-adds (for intensity only).
ELEMENT_FLOPS = {"relu": 1, "relu6": 2, "leaky_relu": 2, "elu": 4, "gelu": 8, "silu": 4,
                 "hardswish": 4, "tanh": 4, "sigmoid": 4, "softmax": 5, "log_softmax": 5,
                 "batchnorm": 2, "lrn": 10, "add": 1, "concat": 0, "dropout": 1}

CALIBRATION_ENV = "CNNCALC_CALIBRATION"


@dataclass(frozen=True)
class Device:
    """Peak FLOP/s per dtype, memory bandwidth (B/s) and a fixed cost per op (s)."""

    name: str
    peak_flops: dict[str, float]
    bandwidth: float
    overhead_s: float = 0.0
    source: str = "datasheet"  # or "calibrated on <host> at <time>"

    def peak(self, dtype: str) -> float:
        if dtype in self.peak_flops:
            return self.peak_flops[dtype]
        if "fp32" in self.peak_flops:  # a dtype the datasheet does not list: its fp32 figure
            return self.peak_flops["fp32"]
        raise OptionError(f"{self.name} has no peak FLOP/s for {dtype}")


def known_devices() -> list[str]:
    return [name for name, _ in PEAK_TFLOPS]


def datasheet(name: str) -> Device | None:
    """The datasheet entry whose pattern is in ``name`` (case-insensitive), or None."""
    for pattern, peaks in PEAK_TFLOPS:
        if pattern.lower() in name.lower():
            return Device(pattern, {k: v * 1e12 for k, v in peaks.items()},
                          BANDWIDTH_GBPS[pattern] * 1e9)
    return None


def calibration_file() -> Path:
    env = os.environ.get(CALIBRATION_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cnncalc" / "calibration.json"


def save_calibration(device: Device) -> Path:
    path = calibration_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(device), indent=1) + "\n", encoding="utf-8")
    return path


def load_calibration() -> Device | None:
    path = calibration_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Device(**data)
    except (OSError, ValueError, TypeError):
        return None


def resolve(name: str) -> Device:
    """``cpu`` (the saved calibration), a known GPU (``H100``, ``A100``…, by substring), or
    ``custom:TFLOPS:GBps[:overhead_us]``."""
    text = name.strip()
    if text.lower().startswith("custom:"):
        parts = text.split(":")[1:]
        try:
            tflops, gbps = float(parts[0]), float(parts[1])
            overhead = float(parts[2]) * 1e-6 if len(parts) > 2 else 0.0
        except (IndexError, ValueError):
            raise OptionError("--roofline custom:TFLOPS:GBps[:overhead_us], e.g. custom:10:500")
        if tflops <= 0 or gbps <= 0:
            raise OptionError("--roofline custom: peak and bandwidth must be positive")
        return Device("custom", {"fp32": tflops * 1e12}, gbps * 1e9, overhead, "given")
    if text.lower() in ("cpu", "calibrated"):
        device = load_calibration()
        if device is None:
            raise OptionError(f"no calibration saved ({calibration_file()}): run "
                              "`cnncalc profile SPEC --device cpu --calibrate` first (needs torch)")
        return device
    device = datasheet(text)
    if device is None:
        raise OptionError(f"unknown device {name!r} for --roofline; known: cpu (calibrated), "
                          f"{', '.join(known_devices())}, or custom:TFLOPS:GBps")
    return device


@dataclass(frozen=True)
class LayerRoofline:
    path: str
    kind: str
    flops: int
    bytes: int
    intensity: float | None  # FLOPs per byte; None for an op that moves nothing
    compute_s: float
    memory_s: float
    predicted_s: float  # max(compute, memory) + overhead; 0 for views and no-ops
    bound: str  # "compute", "memory" or "" (a view)


@dataclass(frozen=True)
class Roofline:
    analysis: Analysis
    device: Device
    dtype: str
    ridge: float  # FLOPs per byte where the two roofs meet
    layers: list[LayerRoofline]

    @property
    def predicted_s(self) -> float:
        return sum(layer.predicted_s for layer in self.layers)

    @property
    def flops(self) -> int:
        return sum(layer.flops for layer in self.layers)

    @property
    def bytes(self) -> int:
        return sum(layer.bytes for layer in self.layers)


def roofline(analysis: Analysis, device: Device, param_dtype: str | None = None) -> Roofline:
    """Each inference op of ``analysis`` (its batch and dtype) on ``device``."""
    from .memory import _walk  # the memory model's ops: layers, residual adds, concatenations

    if analysis.convention != "macs":
        raise OptionError("the roofline needs plain multiply-adds, not the "
                          f"{analysis.convention!r} convention's counts")
    size = bytes_per_element(analysis.dtype)
    param_size = bytes_per_element(param_dtype or analysis.dtype)
    peak = device.peak(analysis.dtype)
    graph = _walk(analysis, False, size)
    t = graph.tensors
    layers = []
    for op in graph.ops:
        out = t[op.output]
        if out.storage == t[op.inputs[0]].storage and not op.config.get("inplace"):
            layers.append(LayerRoofline(op.path, op.kind, 0, 0, None, 0.0, 0.0, 0.0, ""))
            continue
        row = op.row
        moved = sum(t[i].bytes for i in dict.fromkeys(op.inputs)) + out.bytes
        if row is not None:
            moved += (row.params + row.buffers) * param_size
        if row is not None and row.macs:
            flops = 2 * row.macs
        elif op.kind in ("maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool",
                         "global_avgpool", "subsample"):
            window = prod(row.input) // max(prod(row.output), 1) if row else 1
            flops = out.elements * max(window, 1)
        else:
            flops = out.elements * ELEMENT_FLOPS.get(op.kind, 1)
        compute, memory_time = flops / peak, moved / device.bandwidth
        layers.append(LayerRoofline(
            op.path if row is not None else f"{op.path} ({op.kind})", op.kind, flops, moved,
            flops / moved if moved else None, compute, memory_time,
            max(compute, memory_time) + device.overhead_s,
            "compute" if compute >= memory_time else "memory"))
    return Roofline(analysis, device, analysis.dtype, peak / device.bandwidth, layers)


# --------------------------------------------------------------------------------------------
# Output


def _us(seconds: float) -> str:
    us = seconds * 1e6
    return "—" if not seconds else f"{us:.3g}" if us < 1000 else f"{us:,.0f}"


def roofline_dict(r: Roofline) -> dict[str, Any]:
    return {
        "spec": r.analysis.spec.name, "batch": r.analysis.batch, "dtype": r.dtype,
        "device": asdict(r.device), "ridge_flops_per_byte": r.ridge,
        "predicted_ms": r.predicted_s * 1e3, "flops": r.flops, "bytes": r.bytes,
        "layers": [{**asdict(layer), "predicted_ms": layer.predicted_s * 1e3}
                   for layer in r.layers],
    }


HEADER = ("Layer", "Kind", "GFLOP", "MB moved", "FLOP/B", "Compute µs", "Memory µs",
          "Predicted µs", "Bound")


def _cells(layer: LayerRoofline) -> list[str]:
    return [layer.path, layer.kind, f"{layer.flops / 1e9:.3g}", f"{layer.bytes / 1e6:.3g}",
            "—" if layer.intensity is None else f"{layer.intensity:.3g}",
            _us(layer.compute_s), _us(layer.memory_s), _us(layer.predicted_s),
            layer.bound or "view"]


def _summary(r: Roofline) -> list[str]:
    d = r.device
    return [f"{d.name} ({d.source}): peak {d.peak(r.dtype) / 1e12:.3g} TFLOP/s {r.dtype}, "
            f"bandwidth {d.bandwidth / 1e9:.3g} GB/s, ridge {r.ridge:.3g} FLOP/B"
            + (f", {d.overhead_s * 1e6:.3g} µs per op" if d.overhead_s else ""),
            f"Predicted latency (batch {r.analysis.batch}): {r.predicted_s * 1e3:.4g} ms = Σ "
            f"max(FLOPs / peak, bytes / bandwidth)" + (" + overhead" if d.overhead_s else "")
            + f" over {sum(1 for x in r.layers if x.bound)} ops"]


def roofline_rich(r: Roofline) -> Any:
    from .render import Report, TextTable

    report = Report()
    report.line(f"{r.analysis.spec.name}: roofline", "italic")
    table = report.table(TextTable(None, HEADER, right=range(2, 8)))
    for layer in r.layers:
        table.add_row(_cells(layer))
    report.line()
    for line in _summary(r):
        report.line(line, "dim")
    return report


def roofline_markdown(r: Roofline) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_cells(layer)) + " |" for layer in r.layers]
    return "\n".join(lines) + "\n\n" + "\n\n".join(_summary(r)) + "\n"


def roofline_csv(r: Roofline) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "kind", "flops", "bytes", "intensity", "compute_ms", "memory_ms",
                     "predicted_ms", "bound"])
    for x in r.layers:
        writer.writerow([x.path, x.kind, x.flops, x.bytes,
                         "" if x.intensity is None else f"{x.intensity:.6g}",
                         f"{x.compute_s * 1e3:.6g}", f"{x.memory_s * 1e3:.6g}",
                         f"{x.predicted_s * 1e3:.6g}", x.bound])
    return buffer.getvalue()


__all__ = ["BANDWIDTH_GBPS", "Device", "LayerRoofline", "PEAK_TFLOPS", "Roofline", "datasheet",
           "load_calibration", "resolve", "roofline", "roofline_csv", "roofline_dict",
           "roofline_markdown", "roofline_rich", "save_calibration"]
