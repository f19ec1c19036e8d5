"""profile: timing on the CPU (and CUDA where there is one), the figures it derives, the sweep's
error handling. Runs are kept short: a tiny spec, one warm-up step, a handful of timed steps."""

from __future__ import annotations

import math
import sys
import textwrap

import pytest
import torch

from cnncalc import analyze, load_spec, parse_spec
from cnncalc.backend import profile
from cnncalc.backend import timing
from cnncalc.errors import OptionError
from cnncalc.memory import memory

# conv, batch norm, a side head (runs in training), pooling, a second conv and a classifier
TINY = """
    input: 3x16x16
    layers:
      - conv: {name: conv1, out: 8, kernel: 3, padding: 1, bias: false}
      - batchnorm: {name: bn1}
      - relu: {name: relu1}
      - head:
          name: aux
          layers:
            - global_avgpool: {name: pool}
            - flatten: {name: flatten}
            - linear: {name: fc, out: 4}
      - maxpool: {name: pool, kernel: 2, stride: 2}
      - conv: {name: conv2, out: 16, kernel: 3, padding: 1}
      - relu: {name: relu2}
      - global_avgpool: {name: gap}
      - flatten: {name: flatten}
      - linear: {name: fc, out: 10}
"""
FAST = {"device": "cpu", "warmup": 1, "iters": 5}

def cuda(test):
    """Runs only with a CUDA device (select with ``-m cuda``); skipped cleanly elsewhere."""
    skip = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
    return pytest.mark.cuda(skip(test))


def spec(text: str = TINY):
    return parse_spec(textwrap.dedent(text), "tiny.yaml", "tiny")


def assert_sane(result, flops: int, predicted: int) -> None:
    """Positive, ordered, mutually consistent figures for one batch size."""
    assert result.error is None
    assert result.samples == FAST["iters"]
    assert 0 < result.p10_ms <= result.median_ms <= result.p90_ms
    assert result.iqr_ms >= 0
    seconds = result.median_ms / 1e3
    assert result.images_per_s == pytest.approx(result.batch / seconds)
    assert result.flops == flops
    assert result.tflops == pytest.approx(flops / seconds / 1e12)
    assert result.memory_predicted_bytes == predicted
    assert result.memory_measured_bytes >= 0


def test_cpu_inference_sweep_has_sane_figures():
    loaded = load_spec("lenet5")
    p = profile(loaded, batches=(1, 2), **FAST)
    assert [r.batch for r in p.results] == [1, 2]
    for r in p.results:
        analysis = analyze(loaded, batch=r.batch)
        assert_sane(r, 2 * analysis.totals.macs, memory(analysis, param_dtype="fp32").inference_bytes)
        assert r.memory_measured_bytes == r.memory_predicted_bytes  # the meter, byte for byte
        assert r.peak_fraction is None  # no datasheet peak for a CPU
    assert p.device.kind == "cpu" and p.device.threads == torch.get_num_threads() >= 1
    assert p.device.torch == torch.__version__ and p.device.cuda is None
    assert p.verification.ok and p.verification.analysis.batch == 1
    assert p.per_layer == () and p.per_layer_batch is None
    assert (p.dtype, p.mode, p.channels_last, p.compiled) == ("fp32", "inference", False, False)


def test_training_bf16_channels_last_counts_backward_and_heads():
    loaded = spec()
    p = profile(loaded, batches=(2,), mode="training", dtype="bf16", channels_last=True, **FAST)
    analysis = analyze(loaded, batch=2, dtype="bf16")
    # under autocast the parameters, buffers and gradients stay fp32
    report = memory(analysis, param_dtype="fp32")
    # forward + backward MACs, the side head's included (it runs in training)
    assert report.forward_macs == analysis.totals.macs + analysis.totals.head_macs
    assert_sane(p.results[0], 2 * (report.forward_macs + report.backward_macs),
                report.training_bytes)
    # the CPU's figure is the live-tensor meter's, the one the memory model predicts
    assert p.memory_measure == "peak of live tensors (cnncalc's meter)"
    measured = p.results[0].memory_measured_bytes
    assert abs(report.training_bytes / measured - 1) < 0.05, (report.training_bytes, measured)
    assert (p.dtype, p.mode, p.channels_last) == ("bf16", "training", True)
    assert p.verification.ok


def test_training_step_updates_every_trainable_parameter_heads_included():
    loaded = spec()
    options = {"input": None, "dtype": "fp32", "mode": "training", "channels_last": False}
    _, model, x = timing._prepare(loaded, 2, torch.device("cpu"), options)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    timing._step(model, x, torch.device("cpu"), "fp32", "training")()
    unchanged = [name for name, p in model.named_parameters() if torch.equal(p, before[name])]
    assert unchanged == []
    assert "aux.fc.weight" in before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's /proc")
def test_cpu_memory_is_the_growth_above_the_start_of_each_measurement():
    start = timing._cpu_memory_start()
    assert start[1]  # the high-water mark was reset
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    grown = timing._cpu_memory_growth(start)
    del block
    assert 64 * 2**20 <= grown < 96 * 2**20
    # a second measurement is not hidden by the first one's peak
    assert timing._cpu_memory_growth(timing._cpu_memory_start()) < 16 * 2**20


def test_without_iters_blocked_autorange_runs_for_min_time():
    p = profile(spec(), device="cpu", warmup=1, min_time=0.05)
    r = p.results[0]
    assert r.samples >= 1 and 0 < r.p10_ms <= r.median_ms <= r.p90_ms


def test_per_layer_times_every_main_path_layer():
    loaded = spec()
    p = profile(loaded, batches=(2,), per_layer=True, **FAST)
    leaves = [r for r in analyze(loaded).rows if r.leaf and not r.head]
    assert [t.path for t in p.per_layer] == [r.path for r in leaves]
    assert p.per_layer_batch == 2
    assert all(t.ms >= 0 for t in p.per_layer)
    assert all(t.ms > 0 for t in p.per_layer if t.kind == "conv")
    assert math.isclose(sum(t.time_share for t in p.per_layer), 1.0, rel_tol=1e-9)
    assert math.isclose(sum(t.mac_share for t in p.per_layer), 1.0, rel_tol=1e-9)
    macs = {r.path: r.macs for r in leaves}
    assert {t.path: t.mac_share for t in p.per_layer} == pytest.approx(
        {path: m / sum(macs.values()) for path, m in macs.items()})


def _out_of_memory_at(monkeypatch, failing: int, error: BaseException) -> None:
    real = timing._run_batch

    def run_batch(spec, batch, *args):
        if batch == failing:
            raise error
        return real(spec, batch, *args)

    monkeypatch.setattr(timing, "_run_batch", run_batch)


@pytest.mark.parametrize("error", [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:121] DefaultCPUAllocator: can't allocate "
                 "memory: you tried to allocate 1099511627776 bytes. Error code 12"),
    MemoryError(),
], ids=["torch", "cpu-allocator", "python"])
def test_out_of_memory_at_one_batch_size_is_reported_and_the_sweep_goes_on(monkeypatch, error):
    _out_of_memory_at(monkeypatch, 2, error)
    p = profile(spec(), batches=(1, 2, 3), **FAST)
    assert [(r.batch, r.error) for r in p.results] == [(1, None), (2, "out of memory"), (3, None)]
    failed = p.results[1]
    assert failed.median_ms is None and failed.samples == 0
    assert p.results[2].median_ms > 0


def test_per_layer_uses_the_first_batch_size_that_ran(monkeypatch):
    _out_of_memory_at(monkeypatch, 4, torch.OutOfMemoryError("CUDA out of memory"))
    p = profile(spec(), batches=(4, 1), per_layer=True, **FAST)
    assert p.results[0].error == "out of memory"
    assert p.per_layer_batch == 1 and p.per_layer


def test_other_errors_are_not_mistaken_for_out_of_memory(monkeypatch):
    _out_of_memory_at(monkeypatch, 1, RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        profile(spec(), **FAST)


@pytest.mark.parametrize("options, message", [
    ({"dtype": "fp64"}, "--dtype must be one of fp32, fp16, bf16"),
    ({"mode": "eval"}, "--mode must be inference or training"),
    ({"batches": ()}, "--batch needs positive batch sizes"),
    ({"batches": (1, 0)}, "--batch needs positive batch sizes"),
    ({"device": "tpu"}, "--device must be cuda, cpu or auto"),
])
def test_bad_options(options, message):
    with pytest.raises(OptionError, match=message):
        profile(spec(), **{**FAST, **options})


def test_training_needs_trainable_parameters():
    pools = spec("""
        input: 3x8x8
        layers: [maxpool: {kernel: 2, stride: 2}, flatten]
    """)
    with pytest.raises(OptionError, match="--mode training needs trainable parameters"):
        profile(pools, mode="training", **FAST)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_names_the_build_and_the_devices():
    with pytest.raises(timing.DeviceUnavailable) as caught:
        profile(spec(), **{**FAST, "device": "cuda"})
    message = str(caught.value)
    assert "\n" not in message
    assert f"torch {torch.__version__}" in message
    assert ("CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda} build") \
        in message
    assert f"sees {torch.cuda.device_count()} CUDA device(s)" in message
    assert message.endswith("use --device cpu")


def test_auto_picks_cuda_only_when_available():
    assert timing.pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("name, dtype, peak", [
    ("NVIDIA H100 80GB HBM3", "bf16", 989.4),
    ("NVIDIA H100 PCIe", "fp32", 378.0),
    ("NVIDIA H200", "fp16", 989.4),
    ("NVIDIA A100-SXM4-80GB", "fp32", 156.0),
    ("NVIDIA L40S", "bf16", 362.0),
    ("NVIDIA L40", "bf16", 181.0),
    ("NVIDIA L4", "bf16", 121.0),
    ("Tesla T4", "bf16", None),  # no bf16 tensor cores
    ("Tesla V100-SXM2-16GB", "fp16", 125.0),
    ("Some Future GPU", "fp32", None),
])
def test_datasheet_peaks(name, dtype, peak):
    assert timing.known_peak(name, dtype) == peak


def test_peak_tflops_gives_the_fraction_of_peak():
    p = profile(spec(), peak_tflops=0.5, **FAST)
    r = p.results[0]
    assert p.peak_tflops == 0.5
    assert r.peak_fraction == pytest.approx(r.tflops / 0.5)


@cuda
def test_cuda_profile_measures_device_memory_and_kernel_time():
    loaded = spec()
    torch.backends.cudnn.benchmark = False
    p = profile(loaded, device="cuda", batches=(1, 8), per_layer=True, warmup=2, iters=5)
    assert torch.backends.cudnn.benchmark is False  # on during the run only
    assert p.device.kind == "cuda" and p.device.cuda and p.device.cudnn
    assert p.memory_measure == "torch.cuda.max_memory_allocated"
    for r in p.results:
        assert r.error is None and 0 < r.p10_ms <= r.median_ms <= r.p90_ms
        # at least the parameters and the input batch, which live on the device
        assert r.memory_measured_bytes >= 4 * (1_606 + 3 * 16 * 16 * r.batch)
    assert all(t.ms > 0 for t in p.per_layer if t.kind == "conv")
    training = profile(loaded, device="cuda", batches=(4,), mode="training", dtype="bf16",
                       channels_last=True, warmup=2, iters=5)
    assert training.results[0].error is None and training.results[0].memory_measured_bytes > 0


def test_calibrate_measures_the_cpu_and_per_layer_shows_the_roofline(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNCALC_CALIBRATION", str(tmp_path / "cal.json"))
    device = timing.calibrate("cpu", min_time=0.01)
    assert device.peak("fp32") > 1e8 and device.bandwidth > 1e8 and 0 < device.overhead_s < 1e-3
    p = profile(load_spec("lenet5"), batches=(2,), per_layer=True, calibrate_device=True, **FAST)
    assert (tmp_path / "cal.json").exists()  # saved for `cnncalc table --roofline cpu`
    convs = [t for t in p.per_layer if t.kind == "conv"]
    assert convs and all(t.predicted_ms > 0 and t.bound for t in convs)
    assert p.predicted_latency_ms > 0 and p.measured_latency_ms == p.results[0].median_ms
