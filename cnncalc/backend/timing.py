"""Time a spec's model on CUDA or the CPU with ``torch.utils.benchmark.Timer``.

How a measurement is taken, on both devices (the CUDA-only parts are marked):

* the model and the input are created on the device beforehand; nothing crosses between host
  and device inside the timed statement;
* a step is a forward pass under ``inference_mode``, or in training ``zero_grad``, forward,
  backward and an SGD update; fp16 and bf16 run the forward under ``torch.autocast``;
* ``--warmup`` steps run first (they also absorb ``torch.compile`` and cuDNN's autotuning:
  ``cudnn.benchmark`` is on for CUDA);
* ``Timer.blocked_autorange`` times the step; its timer synchronises the accelerator around each
  block, and it picks a block size that keeps the timer's own overhead under 0.1 %. The samples
  are per-step times (per block, averaged over the block's steps when a step is very short);
  median, p10, p90 and IQR come from them. With ``--iters N`` each of N samples is one step,
  timed between two synchronisations;
* peak memory: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (CUDA: reset
  after the warm-up, so autotuning's workspaces are not counted); on the CPU, the peak of live
  tensor bytes over one more step run under the live-tensor meter (cnncalc.backend.meter: every
  storage torch allocates and frees, parameters, gradients and the input included), the figure
  ``cnncalc memory`` predicts; resident-memory growth, which counts malloc's caches, is not used.
"""

from __future__ import annotations

import gc
import os
import resource
import statistics
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch

from ..engine import Analysis, analyze
from ..errors import OptionError
from ..memory import memory
from ..spec import Spec
from .builders import build
from .checks import Verification, verify

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

# The datasheet peaks live in the pure module cnncalc.roofline (`cnncalc table --roofline`).
from ..roofline import PEAK_TFLOPS  # noqa: E402


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
    flops: int | None = None  # per step: 2 × MACs of the batch (training: forward + backward)
    tflops: float | None = None  # achieved: flops / median time
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
    predicted_ms: float | None = None  # the roofline's (inference; None in training)
    bound: str = ""  # "compute" or "memory" (the roofline's)

    @property
    def roofline_fraction(self) -> float | None:
        """Achieved fraction of the roofline: predicted ÷ measured time."""
        if not self.predicted_ms or not self.ms:
            return None
        return self.predicted_ms / self.ms


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
    per_layer_batch: int | None = None
    roofline_device: Any = None  # cnncalc.roofline.Device used for the per-layer prediction
    predicted_latency_ms: float | None = None  # the roofline's whole model, per_layer_batch
    measured_latency_ms: float | None = None  # the median step at per_layer_batch


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


def _prepare(spec: Spec, batch: int, device: torch.device,
             options: dict[str, Any]) -> tuple[Analysis, torch.nn.Module, torch.Tensor]:
    """The analysis, and the model and a random input batch created on ``device`` in the run's
    mode and memory format. In training the side heads run and their outputs join the loss."""
    analysis = analyze(spec, options["input"], batch=batch, dtype=options["dtype"])
    training = options["mode"] == "training"
    model = build(spec, analysis.input).to(device).train(training)
    model.collect_heads = training
    x = torch.randn(batch, *analysis.input, device=device)
    if options["channels_last"] and x.dim() == 4:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return analysis, model, x


def _step(model: Callable[[torch.Tensor], Any], x: torch.Tensor, device: torch.device,
          dtype: str, mode: str) -> Callable[[], None]:
    """One inference step (forward under ``inference_mode``), or one training step: zero_grad,
    forward, backward of the mean of every output (side heads' too), SGD update. fp16 and bf16
    run the forward under autocast (parameters stay fp32, the backward runs outside it)."""
    autocast = torch.autocast(device.type, dtype=DTYPES[dtype], enabled=dtype != "fp32")
    if mode == "inference":
        def infer() -> None:
            with torch.inference_mode(), autocast:
                model(x)
        return infer
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)  # type: ignore[attr-defined]

    def train() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            out = model(x)
        outputs = out if isinstance(out, tuple) else (out,)
        sum(o.float().mean() for o in outputs).backward()
        optimizer.step()
    return train


def _work(analysis: Analysis, mode: str) -> tuple[int, int]:
    """FLOPs per step (2 per MAC) and the engine's predicted peak memory (cnncalc.memory).

    Inference: the main path's MACs; parameters + buffers + the live-activation peak. Training:
    forward + backward MACs, side heads included; parameters, buffers, gradients (SGD without
    momentum keeps no state) + the larger of the forward and backward activation peaks. Under
    autocast the parameters, buffers and gradients stay fp32; activations are in the dtype."""
    report = memory(analysis, param_dtype="fp32", set_to_none=True)
    if mode == "inference":
        return 2 * analysis.totals.macs, report.inference_bytes
    return 2 * (report.forward_macs + report.backward_macs), report.training_bytes


def _metered_bytes(model: torch.nn.Module, x: torch.Tensor, dtype: str, mode: str) -> int:
    """The peak of live tensor bytes over one step under the meter (the model's own step:
    inference under no_grad, or a steady-state SGD step with zero_grad(set_to_none=True))."""
    from .meter import measure_inference, measure_training

    if mode == "inference":
        return measure_inference(model, x, dtype).peak_bytes
    return measure_training(model, x, "sgd", True, dtype).peak_bytes


def _peak_rss_bytes() -> int:
    """The process's peak resident set size so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _proc_status_bytes(key: str) -> int | None:
    """A ``kB`` figure of /proc/self/status (Linux), in bytes."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _cpu_memory_start() -> tuple[int, bool]:
    """Start measuring the CPU run's peak memory: (baseline bytes, whether the peak was reset).

    Linux: free what Python and glibc's malloc hold but no longer use (so the run's allocations
    show as growth), then reset the kernel's resident-set high-water mark to the current resident
    size (``/proc/self/clear_refs``). Elsewhere: the process's lifetime peak, which an earlier,
    larger peak hides."""
    import ctypes

    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):  # not glibc
        pass
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return _peak_rss_bytes(), False
    current = _proc_status_bytes("VmRSS")
    return (current, True) if current is not None else (_peak_rss_bytes(), False)


def _cpu_memory_growth(start: tuple[int, bool]) -> int:
    baseline, reset = start
    peak = _proc_status_bytes("VmHWM") if reset else None
    return max((peak if peak is not None else _peak_rss_bytes()) - baseline, 0)


def _time(step: Callable[[], None], min_run_time: float, iters: int | None) -> list[float]:
    """Per-step times in seconds.

    Default: ``Timer.blocked_autorange`` for ``min_run_time`` seconds; a sample is one block's
    time over its steps. ``iters``: exactly that many samples of one step each, with torch's
    benchmark timer (it synchronises the accelerator) read before and after every step."""
    import timeit

    from torch.utils.benchmark import Timer
    from torch.utils.benchmark.utils.timer import timer as synchronising_timer

    if iters:
        return timeit.Timer(step, timer=synchronising_timer).repeat(repeat=iters, number=1)
    # Timer runs single-threaded unless told: keep torch's own thread count.
    timer = Timer(stmt="step()", globals={"step": step}, num_threads=torch.get_num_threads())
    return list(timer.blocked_autorange(min_run_time=min_run_time).times)


def _quantile(samples: list[float], q: float) -> float:
    if len(samples) == 1:
        return samples[0]
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[int(q * 100) - 1]


def _run_batch(spec: Spec, batch: int, device: torch.device, options: dict[str, Any],
               peak: float | None) -> BatchResult:
    analysis, model, x = _prepare(spec, batch, device, options)
    runnable = torch.compile(model) if options["compile"] else model
    step = _step(runnable, x, device, options["dtype"], options["mode"])
    for _ in range(options["warmup"]):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        # After the warm-up: cuDNN's autotuning and compilation are not the steady state. The
        # model, the input (and, training, the gradients) are allocated, so the peak counts them.
        torch.cuda.reset_peak_memory_stats(device)
    samples = _time(step, options["min_time"], options["iters"])
    if device.type == "cuda":
        measured = torch.cuda.max_memory_allocated(device)
    else:
        measured = _metered_bytes(model, x, options["dtype"], options["mode"])

    flops, predicted = _work(analysis, options["mode"])
    median = statistics.median(samples)
    tflops = flops / median / 1e12
    q1, q3 = _quantile(samples, 0.25), _quantile(samples, 0.75)
    return BatchResult(
        batch=batch, median_ms=median * 1e3, p10_ms=_quantile(samples, 0.10) * 1e3,
        p90_ms=_quantile(samples, 0.90) * 1e3, iqr_ms=(q3 - q1) * 1e3, samples=len(samples),
        images_per_s=batch / median, flops=flops, tflops=tflops,
        peak_fraction=tflops / peak if peak else None,
        memory_measured_bytes=measured, memory_predicted_bytes=predicted)


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()  # the CPU allocator raises a plain RuntimeError
    return "out of memory" in text or "can't allocate memory" in text


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2: the profiler's C++ side prints stage lines when it starts and
    stops. Only its start and stop run in here, never the model."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w", encoding="utf-8") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def calibrate(device: str = "cpu", min_time: float = 0.3) -> Any:
    """Measure the device's roofline: matmul FLOP/s (fp32, and bf16), copy bandwidth, and the
    fixed cost of one small op. Returns a :class:`cnncalc.roofline.Device`.

    * compute: ``torch.mm`` of two n×n matrices (n = 1024 on the CPU, 8192 on CUDA), 2n³ FLOPs;
    * memory: ``dst.copy_(src)`` of 64 MiB on the CPU (1 GiB on CUDA): it reads and writes each
      byte, 2 × size bytes moved;
    * overhead: ``torch.relu`` of a one-element tensor (dispatch + launch).
    Each is timed with ``Timer.blocked_autorange`` (median), which synchronises CUDA."""
    import platform
    import time as clock

    from torch.utils.benchmark import Timer

    from ..roofline import Device

    target = pick_device(device)
    threads = torch.get_num_threads()

    def median(stmt: str, env: dict[str, Any]) -> float:
        timer = Timer(stmt=stmt, globals=env, num_threads=threads)
        return timer.blocked_autorange(min_run_time=min_time).median

    n = 8192 if target.type == "cuda" else 1024
    peaks = {}
    for name in ("fp32", "bf16"):
        a = torch.randn(n, n, device=target, dtype=DTYPES[name])
        peaks[name] = 2 * n ** 3 / median("torch.mm(a, a)", {"torch": torch, "a": a})
    elements = (2 ** 28 if target.type == "cuda" else 2 ** 24)
    src = torch.randn(elements, device=target)
    dst = torch.empty_like(src)
    bandwidth = 2 * src.numel() * 4 / median("dst.copy_(src)", {"dst": dst, "src": src})
    one = torch.ones(1, device=target)
    overhead = median("torch.relu(one)", {"torch": torch, "one": one})
    name = device_info(target).name
    stamp = clock.strftime("%Y-%m-%d %H:%M UTC", clock.gmtime())
    return Device(name, peaks, bandwidth, overhead,
                  f"calibrated on {platform.node() or 'this host'}, {threads} threads, {stamp}")


def roofline_device(target: torch.device, calibrated: Any = None) -> Any:
    """The roofline for ``target``: a fresh calibration if given; on CUDA the datasheet entry
    for the GPU's name (else a calibration on the spot); on the CPU the saved calibration
    (else one on the spot)."""
    from ..roofline import datasheet, load_calibration

    if calibrated is not None:
        return calibrated
    if target.type == "cuda":
        return datasheet(torch.cuda.get_device_name(target)) or calibrate("cuda")
    saved = load_calibration()
    return saved if saved is not None and saved.name == _cpu_name() else calibrate("cpu")


def _per_layer(spec: Spec, batch: int, device: torch.device, options: dict[str, Any],
               steps: int = 5, roof: Any = None) -> list[LayerTime]:
    """torch.profiler time per leaf layer: each leaf's forward runs in a record_function range
    named by its path (CPU time on the CPU; on CUDA, the time of the kernels launched inside
    it). The eager model is profiled (hooks and torch.compile do not mix); in training the
    ranges cover the forward pass only."""
    from torch.profiler import ProfilerActivity, profile, record_function

    analysis, model, x = _prepare(spec, batch, device, options)
    leaves = [r for r in analysis.rows if r.leaf and not r.head]
    open_ranges: list[Any] = []
    handles = []
    for row in leaves:
        module = model.submodule(row.path)

        def enter(mod: Any, args: Any, path: str = row.path) -> None:
            open_ranges.append(record_function(path))
            open_ranges[-1].__enter__()

        def leave(mod: Any, args: Any, out: Any) -> None:
            open_ranges.pop().__exit__(None, None, None)

        handles += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    step = _step(model, x, device, options["dtype"], options["mode"])
    for _ in range(max(options["warmup"], 1)):
        step()
    cuda = device.type == "cuda"
    prof = profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else []))
    try:
        with _quiet_stderr():
            prof.start()
        try:
            for _ in range(steps):
                step()
            if cuda:
                torch.cuda.synchronize(device)
        finally:
            with _quiet_stderr():
                prof.stop()
    finally:
        for handle in handles:
            handle.remove()
    # The ranges as the CPU saw them (CUDA also lists each range as a GPU-side annotation).
    by_name = {e.key: e for e in prof.key_averages() if str(e.device_type).endswith("CPU")}
    times = {}
    for row in leaves:
        event = by_name.get(row.path)
        total_us = 0.0 if event is None else event.device_time_total if cuda else event.cpu_time_total
        times[row.path] = total_us / 1e3 / steps
    all_ms = sum(times.values()) or 1.0
    all_macs = sum(r.macs for r in leaves) or 1
    predicted: dict[str, Any] = {}
    if roof is not None and options["mode"] == "inference":
        predicted = {layer.path: layer for layer in roof.layers}
    return [LayerTime(r.path, r.kind, times[r.path], times[r.path] / all_ms, r.macs / all_macs,
                      predicted[r.path].predicted_s * 1e3 if r.path in predicted else None,
                      predicted[r.path].bound if r.path in predicted else "")
            for r in leaves]


def profile(spec: Spec, *, device: str = "auto", batches: tuple[int, ...] = (1,),
            dtype: str = "fp32", channels_last: bool = False, compile: bool = False,
            mode: str = "inference", warmup: int = 10, iters: int | None = None,
            min_time: float = 1.0, per_layer: bool = False, peak_tflops: float | None = None,
            input: Any = None, calibrate_device: bool = False) -> Profile:
    """Verify the model, then time it for each batch size.

    ``iters``: time exactly that many single steps instead of blocks for ``min_time`` seconds.
    Achieved TFLOP/s count 2 FLOPs per MAC: the main path's MACs for inference, forward +
    backward MACs (side heads included) for training. ``peak_tflops`` overrides the datasheet
    peak used for the fraction of peak. A batch size that runs out of memory is reported as such
    and the sweep goes on; ``per_layer`` profiles the first batch size that ran, beside the
    roofline's time per layer (cnncalc.roofline: the GPU's datasheet entry, or the CPU's saved
    calibration). ``calibrate_device`` first measures the device's matmul FLOP/s, copy
    bandwidth and per-op cost (:func:`calibrate`) and saves them for ``table --roofline cpu``.
    """
    if dtype not in DTYPES:
        raise OptionError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if mode not in ("inference", "training"):
        raise OptionError(f"--mode must be inference or training, got {mode!r}")
    if not batches or any(b < 1 for b in batches):
        raise OptionError("--batch needs positive batch sizes, e.g. 1,8,32")
    target = pick_device(device)
    info = device_info(target)
    if mode == "training" and not analyze(spec, input).totals.trainable_params:
        raise OptionError(f"--mode training needs trainable parameters; {spec.name} has none")
    peak = peak_tflops if peak_tflops else (known_peak(info.name, dtype) if target.type == "cuda"
                                            else None)
    verification = verify(spec, input, batch=1)
    options = {"input": verification.analysis.input, "dtype": dtype, "mode": mode,
               "channels_last": channels_last, "compile": compile, "warmup": warmup,
               "iters": iters, "min_time": min_time}
    benchmark = torch.backends.cudnn.benchmark  # on for this run (CUDA), restored after
    torch.backends.cudnn.benchmark = benchmark or target.type == "cuda"
    try:
        results = []
        for batch in batches:
            try:
                results.append(_run_batch(spec, batch, target, options, peak))
            except (RuntimeError, MemoryError) as exc:
                if not _is_out_of_memory(exc):
                    raise
                results.append(BatchResult(batch=batch, error="out of memory"))
            finally:
                if target.type == "cuda":  # free the batch's model and tensors before the next
                    gc.collect()
                    torch.cuda.empty_cache()
        ran = [r.batch for r in results if r.error is None]
        layer_batch = ran[0] if per_layer and ran else None
        calibrated = calibrate(target.type) if calibrate_device else None
        if calibrated is not None:
            from ..roofline import save_calibration

            save_calibration(calibrated)
        device_roof = roofline_device(target, calibrated) if (per_layer or calibrated) else None
        roof = predicted_ms = measured_ms = None
        if layer_batch and device_roof is not None:
            from ..roofline import roofline

            roof = roofline(analyze(spec, options["input"], batch=layer_batch, dtype=dtype),
                            device_roof, param_dtype="fp32")
            if mode == "inference":
                predicted_ms = roof.predicted_s * 1e3
            measured_ms = next(r.median_ms for r in results if r.batch == layer_batch)
        layers = _per_layer(spec, layer_batch, target, options, roof=roof) if layer_batch else []
    finally:
        torch.backends.cudnn.benchmark = benchmark
    measure = ("torch.cuda.max_memory_allocated" if target.type == "cuda"
               else "peak of live tensors (cnncalc's meter)")
    return Profile(spec.name, tuple(verification.analysis.input), info, dtype, mode,
                   channels_last, compile, measure, peak, verification, tuple(results),
                   tuple(layers), layer_batch, device_roof, predicted_ms, measured_ms)
