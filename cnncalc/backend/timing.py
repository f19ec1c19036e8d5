"""Time a spec's model on CUDA or the CPU with ``torch.utils.benchmark.Timer``.

How a measurement is taken, on both devices (the CUDA-only parts are marked):

* the model and the input are created on the device beforehand; nothing crosses between host
  and device inside the timed statement;
* ``--warmup`` steps run first (they also absorb ``torch.compile`` and cuDNN's autotuning:
  ``cudnn.benchmark`` is on for CUDA);
* ``Timer.blocked_autorange`` times the step; its timer synchronises the accelerator around each
  block, and it picks a block size that keeps the timer's own overhead under 0.1 %. The samples
  are per-step times (per block, averaged over the block's steps when a step is very short);
  median, p10, p90 and IQR come from them;
* peak memory: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` on CUDA; on
  the CPU, the growth of the process's peak resident set size over the run (coarse: allocator
  caching and earlier peaks hide some of it).
"""

from __future__ import annotations

import resource
import statistics
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..engine import analyze
from ..errors import OptionError
from ..spec import Spec
from .builders import build
from .checks import Verification, verify

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

# Dense (no sparsity) peak tensor throughput in TFLOP/s from the vendors' datasheets, per dtype.
# fp32 uses the TF32 tensor-core figure where cuDNN's TF32 is allowed (torch's default for
# convolutions); name matching is by substring of torch.cuda.get_device_name(), first match wins.
PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H200", {"fp32": 494.7, "fp16": 989.4, "bf16": 989.4}),
    ("H100 PCIe", {"fp32": 378.0, "fp16": 756.0, "bf16": 756.0}),
    ("H100", {"fp32": 494.7, "fp16": 989.4, "bf16": 989.4}),
    ("A100", {"fp32": 156.0, "fp16": 312.0, "bf16": 312.0}),
    ("L40S", {"fp32": 183.0, "fp16": 362.0, "bf16": 362.0}),
    ("L4", {"fp32": 60.0, "fp16": 121.0, "bf16": 121.0}),
    ("A10", {"fp32": 62.5, "fp16": 125.0, "bf16": 125.0}),
    ("V100", {"fp32": 15.7, "fp16": 125.0}),
    ("T4", {"fp32": 8.1, "fp16": 65.0}),
    ("RTX 4090", {"fp32": 82.6, "fp16": 165.2, "bf16": 165.2}),
)


class DeviceUnavailable(OptionError):
    """The asked-for device cannot be used here."""


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "cuda" or "cpu"
    name: str
    torch: str
    cuda: str | None
    cudnn: str | None
    threads: int | None  # CPU threads torch uses (CPU runs)


@dataclass(frozen=True)
class BatchResult:
    """One batch size. Times in milliseconds; ``error`` set instead when it could not run."""

    batch: int
    median_ms: float | None = None
    p10_ms: float | None = None
    p90_ms: float | None = None
    iqr_ms: float | None = None
    samples: int = 0
    images_per_s: float | None = None
    tflops: float | None = None  # achieved: 2 × MACs × batch (× 3 for training) / time
    peak_fraction: float | None = None
    memory_measured_bytes: int | None = None
    memory_predicted_bytes: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class LayerTime:
    path: str
    kind: str
    ms: float  # per step
    time_share: float
    mac_share: float


@dataclass(frozen=True)
class Profile:
    spec: str
    input: tuple[int, ...]
    device: DeviceInfo
    dtype: str
    mode: str
    channels_last: bool
    compiled: bool
    memory_measure: str
    peak_tflops: float | None
    verification: Verification
    results: tuple[BatchResult, ...]
    per_layer: tuple[LayerTime, ...] = field(default=())


# --------------------------------------------------------------------------------------------
# Devices


def describe_cuda_absence() -> str:
    """Why CUDA cannot be used: the torch build, its CUDA version and the visible devices."""
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
    return (f"CUDA is not available: torch {torch.__version__} is a {build} and sees "
            f"{torch.cuda.device_count()} CUDA device(s); use --device cpu")


def pick_device(asked: str) -> torch.device:
    if asked not in ("cuda", "cpu", "auto"):
        raise OptionError(f"--device must be cuda, cpu or auto, got {asked!r}")
    if asked == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable(describe_cuda_absence())
    if asked == "auto":
        asked = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(asked)


def device_info(device: torch.device) -> DeviceInfo:
    if device.type == "cuda":
        return DeviceInfo("cuda", torch.cuda.get_device_name(device), torch.__version__,
                          torch.version.cuda, str(torch.backends.cudnn.version()), None)
    return DeviceInfo("cpu", _cpu_name(), torch.__version__, None, None, torch.get_num_threads())


def _cpu_name() -> str:
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def known_peak(name: str, dtype: str) -> float | None:
    for pattern, peaks in PEAK_TFLOPS:
        if pattern in name:
            return peaks.get(dtype)
    return None


# --------------------------------------------------------------------------------------------
# Measurement


def _step(model: torch.nn.Module, x: torch.Tensor, device: torch.device, dtype: str,
          mode: str) -> Callable[[], None]:
    """One inference or training step (forward, backward, SGD update) under autocast."""
    autocast = torch.autocast(device.type, dtype=DTYPES[dtype], enabled=dtype != "fp32")
    if mode == "inference":
        def infer() -> None:
            with torch.inference_mode(), autocast:
                model(x)
        return infer
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    def train() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            out = model(x)
        out.float().mean().backward()
        optimizer.step()
    return train


def _peak_rss_bytes() -> int:
    """The process's peak resident set size so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _time(step: Callable[[], None], min_run_time: float) -> list[float]:
    from torch.utils.benchmark import Timer

    # Timer runs single-threaded unless told: keep torch's own thread count.
    timer = Timer(stmt="step()", globals={"step": step}, num_threads=torch.get_num_threads())
    measurement = timer.blocked_autorange(min_run_time=min_run_time)
    return list(measurement.times)


def _quantile(samples: list[float], q: float) -> float:
    if len(samples) == 1:
        return samples[0]
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[int(q * 100) - 1]


def _run_batch(spec: Spec, batch: int, device: torch.device, options: dict[str, Any],
               peak: float | None) -> BatchResult:
    analysis = analyze(spec, options["input"], batch=batch, dtype=options["dtype"])
    model = build(spec, analysis.input).to(device)
    model.train(options["mode"] == "training")
    x = torch.randn(batch, *analysis.input, device=device)
    if options["channels_last"] and x.dim() == 4:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    runnable = torch.compile(model) if options["compile"] else model
    step = _step(runnable, x, device, options["dtype"], options["mode"])

    rss_before = _peak_rss_bytes()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(options["warmup"]):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    min_run_time = options["min_time"]
    if options["iters"]:
        # A fixed number of steps: time one step, then ask the Timer for that much run time.
        min_run_time = max(min(_time(step, 0.0)) * options["iters"], 1e-3)
    samples = _time(step, min_run_time)
    if device.type == "cuda":
        measured = torch.cuda.max_memory_allocated(device)
    else:
        measured = max(_peak_rss_bytes() - rss_before, 0)

    median = statistics.median(samples)
    factor = 3 if options["mode"] == "training" else 1  # backward ≈ 2 × forward
    tflops = 2 * analysis.totals.macs * factor / median / 1e12
    predicted = analysis.totals.param_bytes + analysis.totals.buffer_bytes + \
        analysis.totals.activation_bytes
    q1, q3 = _quantile(samples, 0.25), _quantile(samples, 0.75)
    return BatchResult(
        batch=batch, median_ms=median * 1e3, p10_ms=_quantile(samples, 0.10) * 1e3,
        p90_ms=_quantile(samples, 0.90) * 1e3, iqr_ms=(q3 - q1) * 1e3, samples=len(samples),
        images_per_s=batch / median, tflops=tflops,
        peak_fraction=tflops / peak if peak else None,
        memory_measured_bytes=measured, memory_predicted_bytes=predicted)


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _per_layer(spec: Spec, batch: int, device: torch.device, options: dict[str, Any],
               steps: int = 5) -> list[LayerTime]:
    """torch.profiler time per leaf layer: each leaf's forward runs in a record_function range
    named by its path. The eager model is profiled (hooks and torch.compile do not mix)."""
    from torch.profiler import ProfilerActivity, profile, record_function

    analysis = analyze(spec, options["input"], batch=batch, dtype=options["dtype"])
    model = build(spec, analysis.input).to(device).train(options["mode"] == "training")
    x = torch.randn(batch, *analysis.input, device=device)
    leaves = [r for r in analysis.rows if r.leaf and not r.head]
    open_ranges: list[Any] = []
    handles = []
    for row in leaves:
        module = model.get_submodule(row.path)

        def enter(mod: Any, args: Any, path: str = row.path) -> None:
            open_ranges.append(record_function(path))
            open_ranges[-1].__enter__()

        def leave(mod: Any, args: Any, out: Any) -> None:
            open_ranges.pop().__exit__(None, None, None)

        handles += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    step = _step(model, x, device, options["dtype"], options["mode"])
    for _ in range(max(options["warmup"], 1)):
        step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    try:
        with profile(activities=activities) as prof:
            for _ in range(steps):
                step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
    finally:
        for handle in handles:
            handle.remove()
    by_name = {e.key: e for e in prof.key_averages()}
    times = {}
    for row in leaves:
        event = by_name.get(row.path)
        if event is None:
            times[row.path] = 0.0
            continue
        total_us = (getattr(event, "device_time_total", 0) or getattr(event, "cuda_time_total", 0)) \
            if device.type == "cuda" else event.cpu_time_total
        times[row.path] = total_us / 1e3 / steps
    all_ms = sum(times.values()) or 1.0
    all_macs = sum(r.macs for r in leaves) or 1
    return [LayerTime(r.path, r.kind, times[r.path], times[r.path] / all_ms, r.macs / all_macs)
            for r in leaves]


def profile(spec: Spec, *, device: str = "auto", batches: tuple[int, ...] = (1,),
            dtype: str = "fp32", channels_last: bool = False, compile: bool = False,
            mode: str = "inference", warmup: int = 10, iters: int | None = None,
            min_time: float = 1.0, per_layer: bool = False, peak_tflops: float | None = None,
            input: Any = None) -> Profile:
    """Verify the model, then time it for each batch size.

    ``iters``: time about that many steps instead of ``min_time`` seconds. Achieved TFLOP/s count
    2 FLOPs per MAC, times 3 in training (backward ≈ 2 × forward). ``peak_tflops`` overrides the
    datasheet peak used for the fraction of peak.
    """
    if dtype not in DTYPES:
        raise OptionError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if mode not in ("inference", "training"):
        raise OptionError(f"--mode must be inference or training, got {mode!r}")
    if not batches or any(b < 1 for b in batches):
        raise OptionError("--batch needs positive batch sizes, e.g. 1,8,32")
    target = pick_device(device)
    info = device_info(target)
    if target.type == "cuda":
        torch.backends.cudnn.benchmark = True
    peak = peak_tflops if peak_tflops else (known_peak(info.name, dtype) if target.type == "cuda"
                                            else None)
    verification = verify(spec, input, batch=1)
    options = {"input": verification.analysis.input, "dtype": dtype, "mode": mode,
               "channels_last": channels_last, "compile": compile, "warmup": warmup,
               "iters": iters, "min_time": min_time}
    results = []
    for batch in batches:
        try:
            results.append(_run_batch(spec, batch, target, options, peak))
        except (RuntimeError, MemoryError) as exc:
            if not _is_out_of_memory(exc):
                raise
            results.append(BatchResult(batch=batch, error="out of memory"))
        finally:
            if target.type == "cuda":
                torch.cuda.empty_cache()
    layers = _per_layer(spec, batches[0], target, options) if per_layer else []
    measure = ("torch.cuda.max_memory_allocated" if target.type == "cuda"
               else "growth of the process's peak RSS")
    return Profile(spec.name, tuple(verification.analysis.input), info, dtype, mode,
                   channels_last, compile, measure, peak, verification, tuple(results),
                   tuple(layers))
