"""`cnncalc verify` and `cnncalc profile` through the command line: output, JSON, exit codes and
error lines (CliRunner in process; real subprocesses where the process itself matters)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cnncalc.backend import INSTALL_HINT
from cnncalc.backend import timing
from cnncalc.cli import app
from cnncalc.layers import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--device", "cpu", "--warmup", "1", "--iters", "3"]
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def run_python(code: str, *args: str) -> subprocess.CompletedProcess:
    """A real interpreter running ``code`` with ``args`` as its sys.argv[1:]."""
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("CNNCALC_DEBUG", None)
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)


# --------------------------------------------------------------------------------------------
# verify


def test_verify_clean_exits_0():
    result = invoke("verify", "lenet5")
    assert result.exit_code == 0, result.output
    assert "verified: all 12 rows agree with torch" in result.stdout
    assert "✗" not in result.stdout


def test_verify_json():
    result = invoke("verify", "resnet-basic-block", "--batch", "2", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["batch"] == 2
    assert data["versions"]["torch"] == torch.__version__
    assert data["rows"] and all(r["ok"] for r in data["rows"])
    first = data["rows"][0]["checks"]
    assert set(first) == {"shape", "params", "trainable", "buffers", "macs"}
    assert first["shape"]["expected"] == first["shape"]["actual"]
    assert data["totals"]["flop_counter"]["actual"] == 2 * data["totals"]["fvcore"]["actual"]


@pytest.fixture
def miscounted_conv(monkeypatch):
    """The engine counts one parameter too many in every conv: the engine and torch differ."""
    conv = REGISTRY["conv"]
    real = conv.params
    monkeypatch.setattr(conv, "params", lambda cfg, x: real(cfg, x) + 1)


def test_verify_mismatch_exits_1_with_differing_rows_first(miscounted_conv):
    result = invoke("verify", "lenet5", "--format", "json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is False
    ok = [r["ok"] for r in data["rows"]]
    assert ok == sorted(ok)  # every differing row before every agreeing one
    assert [r["path"] for r in data["rows"] if not r["ok"]] == ["c1", "c3"]
    assert data["rows"][0]["checks"]["params"] == {"expected": 157, "actual": 156, "ok": False}

    table = invoke("verify", "lenet5")
    assert table.exit_code == 1
    lines = table.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("Layer"))
    assert [lines[header + 1].split()[0], lines[header + 2].split()[0]] == ["c1", "c3"]
    assert "✗ 157 ≠ 156" in lines[header + 1]
    assert "MISMATCH: 2 of 12 rows differ" in table.stdout


def test_profile_exits_1_when_the_verification_fails(miscounted_conv):
    result = invoke("profile", "lenet5", *FAST, "--format", "json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["verified"]["ok"] is False and data["verified"]["failed"] == ["c1", "c3"]
    assert data["results"][0]["median_ms"] > 0  # still timed


@pytest.mark.parametrize("command", ["verify", "profile"])
def test_unknown_spec_exits_2(command):
    result = invoke(command, "nosuchnet")
    assert result.exit_code == 2
    assert one_error_line(result).startswith("cnncalc: error: no zoo spec or file named 'nosuchnet'")


# --------------------------------------------------------------------------------------------
# profile


def test_profile_json_on_cpu():
    result = invoke("profile", "lenet5", *FAST, "--batch", "1,2", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["device"]["kind"] == "cpu" and data["device"]["threads"] >= 1
    assert data["device"]["torch"] == torch.__version__
    assert data["verified"] == {"ok": True, "batch": 1, "rows": 12, "failed": [],
                                "versions": data["verified"]["versions"]}
    assert "fvcore" in data["verified"]["versions"]
    assert [r["batch"] for r in data["results"]] == [1, 2]
    for r in data["results"]:
        assert r["error"] is None and r["samples"] == 3
        assert 0 < r["p10_ms"] <= r["median_ms"] <= r["p90_ms"]
        assert r["images_per_s"] == pytest.approx(r["batch"] / (r["median_ms"] / 1e3))
        assert r["flops"] == 2 * 416_520 * r["batch"]
        assert r["tflops"] == pytest.approx(r["flops"] / (r["median_ms"] / 1e3) / 1e12)
    assert data["per_layer"] == [] and data["per_layer_batch"] is None


def test_profile_table_training_per_layer():
    result = invoke("profile", "lenet5", *FAST, "--mode", "training", "--dtype", "bf16",
                    "--channels-last", "--per-layer", "--peak-tflops", "1")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith(f"CPU {timing._cpu_name()} · {torch.get_num_threads()} threads · "
                          f"torch {torch.__version__}")
    assert "profile lenet5: input 1×32×32 · bf16 · training · channels_last" in out
    for column in ("Batch", "Median ms", "p10 ms", "p90 ms", "IQR ms", "Images/s", "TFLOP/s",
                   "% of peak", "Memory", "Predicted"):
        assert column in out
    assert "per layer (batch 1, forward pass, torch.profiler)" in out
    assert "TFLOP/s: 2 × (forward + backward MACs) × batch / median time; peak 1 TFLOP/s" in out
    assert "verified: all 12 rows agree" in out


def test_profile_save_writes_json_and_never_overwrites(tmp_path):
    target = tmp_path / "lenet5.json"
    result = invoke("profile", "lenet5", *FAST, "--save", str(target))
    assert result.exit_code == 0, result.output
    saved = target.read_bytes()
    data = json.loads(saved)
    assert data["spec"] == "lenet5" and data["results"][0]["median_ms"] > 0

    again = invoke("profile", "lenet5", *FAST, "--save", str(target))
    assert again.exit_code == 2
    assert "exists; cnncalc does not overwrite files" in one_error_line(again)
    assert target.read_bytes() == saved

    nowhere = invoke("profile", "lenet5", *FAST, "--save", str(tmp_path / "no" / "such.json"))
    assert nowhere.exit_code == 2
    assert "no such directory" in one_error_line(nowhere)


@pytest.mark.parametrize("sizes", ["0", "1,x", "", "-4", "1,,8", "2.5"])
def test_bad_batch_sizes_exit_2(sizes):
    result = invoke("profile", "lenet5", *FAST, "--batch", sizes)
    assert result.exit_code == 2
    assert "Invalid value for '--batch': expected positive batch sizes like 1,8,32" in \
        one_error_line(result)


def test_out_of_memory_row_and_the_sweep_goes_on(monkeypatch):
    real = timing._run_batch

    def run_batch(spec, batch, *args):
        if batch == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(spec, batch, *args)

    monkeypatch.setattr(timing, "_run_batch", run_batch)
    result = invoke("profile", "lenet5", *FAST, "--batch", "1,2,3")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines()
            if line.strip()[:1].isdigit()}
    assert rows["2"].split()[1:] == ["out", "of", "memory"]
    assert len(rows["3"].split()) == 10  # measured
    data = json.loads(invoke("profile", "lenet5", *FAST, "--batch", "2,1", "-f", "json").stdout)
    assert [(r["batch"], r["error"]) for r in data["results"]] == [(2, "out of memory"), (1, None)]


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_exits_2_with_one_line():
    result = invoke("profile", "lenet5", "--device", "cuda")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert line.startswith("cnncalc: error: CUDA is not available: torch ")
    assert torch.__version__ in line and "device(s)" in line and line.endswith("use --device cpu")


# --------------------------------------------------------------------------------------------
# real processes

BLOCK_TORCH = ("import sys; sys.modules['torch'] = None; from cnncalc.cli import main; "
               "sys.argv = ['cnncalc', *sys.argv[1:]]; main()")


@pytest.mark.parametrize("args", [["verify", "lenet5"], ["profile", "lenet5", "--device", "cpu"]])
def test_without_torch_the_backend_commands_exit_2_with_the_install_command(args):
    proc = run_python(BLOCK_TORCH, *args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"cnncalc: error: {INSTALL_HINT}\n"
    assert INSTALL_HINT == "the torch backend is not installed: pip install 'cnncalc[torch]'"
    assert proc.stdout == ""


def test_without_torch_the_core_commands_still_work():
    proc = run_python(BLOCK_TORCH, "table", "lenet5", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("path,")
    assert "\nc1,conv,1,1,0,6x28x28,5×5/1,156,156,0,117600," in proc.stdout


def test_real_process_profile_and_cuda_error():
    """The console entry point in a fresh interpreter: JSON on stdout, and none of the
    profiler's C++ stage lines on stderr; without CUDA, `--device cuda` is one line and exit 2,
    no traceback."""
    entry = "import sys; from cnncalc.cli import main; sys.argv = ['cnncalc', *sys.argv[1:]]; main()"
    proc = run_python(entry, "profile", "lenet5", *FAST, "--per-layer", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "ActivityProfiler" not in proc.stderr, proc.stderr
    data = json.loads(proc.stdout)
    assert data["results"][0]["median_ms"] > 0 and data["per_layer_batch"] == 1
    if not torch.cuda.is_available():
        proc = run_python(entry, "profile", "lenet5", "--device", "cuda")
        assert proc.returncode == 2
        assert proc.stderr.startswith("cnncalc: error: CUDA is not available: torch ")
        assert proc.stderr.count("\n") == 1 and proc.stdout == ""


# --------------------------------------------------------------------------------------------
# docs/backend.md: its `verify` examples are what the tool prints (bar the versions installed).
# They are fenced `text`, not `console`, so tests/test_tutorial.py, which runs without torch
# where torch is absent, leaves them alone; the profile examples' timings vary and are not run.

_DOC_EXAMPLE = re.compile(r"^```text\n\$ cnncalc (verify [^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)


def _same_versions(text: str) -> str:
    text = re.sub(r"torch [^\s,;]+", "torch VERSION", text)
    text = re.sub(r"fvcore [^\s,;]+", "fvcore VERSION", text)
    return "\n".join(line.rstrip() for line in text.strip("\n").split("\n"))


DOC_EXAMPLES = _DOC_EXAMPLE.findall((ROOT / "docs" / "backend.md").read_text(encoding="utf-8"))


def test_the_backend_docs_have_verify_examples():
    assert len(DOC_EXAMPLES) >= 2


@pytest.mark.parametrize("command, shown", DOC_EXAMPLES, ids=[c for c, _ in DOC_EXAMPLES])
def test_backend_docs_verify_example_is_real(command, shown):
    result = invoke(*command.split())
    assert result.exit_code == 0, result.output
    assert _same_versions(result.stdout) == _same_versions(shown)
