"""How fast cnncalc is, and how it compares with the tools a user would otherwise run.

    python benchmarks/bench.py            # the full run (two to five minutes on 2 cores, most of
                                          # it importing torch for the peers; docs/benchmarks.md)
    python benchmarks/bench.py --quick    # a smoke run of every part in a few seconds (CI)
    python benchmarks/bench.py --startup  # the start-up table alone

Measures, and prints as Markdown (nothing is asserted; the numbers go in docs/benchmarks.md):

1. Start-up: `cnncalc table resnet152` (and a few other commands) in a fresh process, against
   `python -c "import typer, rich.table, yaml"`, the floor any CLI built on those libraries
   pays. Medians of several runs, the commands taking turns; the issue's target is a ratio of
   at most 1.5. cnncalc is byte-compiled first, as pip does when it installs it.
2. In-process scale: parsing and analysing ResNet-152, and generated networks of 2,500 to 20,000
   layers (the cost should be linear in depth; the issue's target: 10,000 layers under a second).
2b. Hostile scale (issue 11): `check`, a symbolic `--input`, `table --format json` and `memory` at two
   sizes each (10,000 and 100,000 layers; symbolic 1,000 and 10,000), each in a fresh process,
   with the time, the peak resident memory and the growth exponent (1.00 = linear).
3. Peers, when installed (torch, torchinfo, fvcore, ptflops): torchinfo's `summary`, fvcore's
   `FlopCountAnalysis` and ptflops' `get_model_complexity_info` on ResNet-50 and ResNet-152,
   end to end in a fresh process (import torch, build the model, count) and in-process (the
   count alone, model built). The models are built here with plain torch code (torchvision's
   ResNet layout), and their parameter counts are checked against cnncalc's.

Run it with the interpreter of the environment cnncalc is installed in; `--quick` skips the
peers (importing torch alone takes seconds) unless `--peers` is given.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

PYTHON = sys.executable


def _cnncalc_command() -> list[str]:
    """The console script a user runs, next to this interpreter (else `python -m cnncalc`)."""
    script = Path(PYTHON).with_name("cnncalc")
    if script.exists():
        return [str(script)]
    found = shutil.which("cnncalc")
    return [found] if found else [PYTHON, "-m", "cnncalc"]


def _wall(command: list[str]) -> float:
    """Wall time of one fresh process, in seconds; it must succeed."""
    started = time.perf_counter()
    proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{proc.stderr.decode()[-2000:]}")
    return elapsed


def _median_wall(command: list[str], runs: int) -> float:
    """Median wall time of a fresh process, in seconds."""
    return statistics.median(_wall(command) for _ in range(runs))


def _median_walls(commands: list[list[str]], runs: int) -> list[float]:
    """Median wall time of each command, run in turns (one of each, then again) after one
    untimed turn, so that a slow spell on a busy machine falls on all of them alike."""
    for command in commands:
        _wall(command)
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for command, spent in zip(commands, times):
            spent.append(_wall(command))
    return [statistics.median(spent) for spent in times]


def byte_compile() -> str:
    """What pip does when it installs cnncalc: compile its modules to bytecode (__pycache__),
    so that start-up is timed as a user meets it. An editable install never caches bytecode
    where PYTHONDONTWRITEBYTECODE is set (as on the development machine): every start would
    compile cnncalc's modules from source, some 25–40 ms that no installed copy pays."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("cnncalc")
    if spec is None or spec.origin is None:
        return "cnncalc not found"
    package = Path(spec.origin).parent
    ok = compileall.compile_dir(package, quiet=1)
    return f"byte-compiled {package}" if ok else f"byte-compiling {package} failed"


def _median_call(call: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine() -> list[str]:
    versions = ", ".join(f"{p} {v}" for p in ("cnncalc", "typer", "rich", "PyYAML", "torch",
                                              "torchinfo", "fvcore", "ptflops")
                         if (v := _version(p)))
    return [
        f"- machine: {platform.machine()}, {os.cpu_count()} cores (nproc), "
        f"{platform.system()} {platform.release()}",
        f"- python: {platform.python_implementation()} {platform.python_version()}",
        f"- versions: {versions}",
        f"- command: `python benchmarks/bench.py"
        f"{''.join(f' --{o}' for o in ('quick', 'peers', 'startup') if getattr(ARGS, o))}`",
    ]


# --------------------------------------------------------------------------------------------
# 1. Start-up


def startup(runs: int) -> list[str]:
    cnncalc = _cnncalc_command()
    commands = [["table", "resnet152"], ["table", "resnet152", "--depth", "1"],
                ["table", "resnet152", "--format", "csv"], ["table", "alexnet"], ["list"],
                ["compare", "inception-naive", "inception-bottleneck"], ["--version"]]
    floor, bare, *walls = _median_walls(
        [[PYTHON, "-c", "import typer, rich.table, yaml"], [PYTHON, "-c", "pass"],
         *([*cnncalc, *args] for args in commands)], runs)
    lines = ["| command | median wall time | ÷ floor |", "|---|---:|---:|",
             f"| `python -c pass` | {_ms(bare)} | {bare / floor:.2f} |",
             f"| `python -c \"import typer, rich.table, yaml\"` (the floor) | {_ms(floor)} "
             "| 1.00 |"]
    for args, wall in zip(commands, walls):
        lines.append(f"| `cnncalc {' '.join(args)}` | {_ms(wall)} | {wall / floor:.2f} |")
    return lines


# --------------------------------------------------------------------------------------------
# 2. In-process scale


def generated(layers: int) -> str:
    """A plain network of `layers` layers: conv, batchnorm, relu, repeated, then a classifier."""
    body = "".join("  - conv: {out: 16, kernel: 3, padding: 1, bias: false}\n"
                   "  - batchnorm\n  - relu\n" for _ in range((layers - 3) // 3))
    return (f"input: 16x32x32\nlayers:\n{body}  - global_avgpool\n  - flatten\n"
            f"  - linear: {{out: 10}}\n")


def scale(runs: int, sizes: list[int]) -> list[str]:
    from cnncalc import analyze
    from cnncalc.spec import parse_spec
    from cnncalc.zoo import zoo_dir

    lines = ["| network | layers and groups | parse | analyse | total |",
             "|---|---:|---:|---:|---:|"]
    cases = [("ResNet-50 (zoo)", (zoo_dir() / "resnet50.yaml").read_text()),
             ("ResNet-152 (zoo)", (zoo_dir() / "resnet152.yaml").read_text())]
    cases += [(f"generated, {n:,} layers", generated(n)) for n in sizes]
    for name, text in cases:
        spec = parse_spec(text, "bench.yaml", "bench")
        rows = len(analyze(spec).rows)
        parse = _median_call(lambda: parse_spec(text, "bench.yaml", "bench"), runs)
        work = _median_call(lambda: analyze(spec), runs)
        lines.append(f"| {name} | {rows:,} | {_ms(parse)} | {_ms(work)} | {_ms(parse + work)} |")
    return lines


# --------------------------------------------------------------------------------------------
# 2b. Hostile scale (issue 11): every analysis linear in layers, memory proportional

_RELUS = ("def relus(n):  # n relus in repeats of at most 10,000 copies (MAX_REPEAT)\n"
          "    full, rest = divmod(n, 10_000)\n"
          "    return ('  - repeat: {times: 10000, layers: [relu]}\\n' * full\n"
          "            + (f'  - repeat: {{times: {rest}, layers: [relu]}}\\n' if rest else ''))\n")
HOSTILE = {  # (set-up, the timed call)
    # a floor at the first layer (so check searches for the nearest exact sizes), then relus
    "check": (_RELUS + "from cnncalc.check import check\n"
              "text = 'input: 3x33x33\\nlayers:\\n  - conv: {out: 3, kernel: 2, stride: 2}\\n'"
              " + relus(N - 1)\n"
              "spec = parse_spec(text, 'b', 'b')\n",
              "spec.__dict__.pop('_graph', None); check(spec)"),
    # convs that each shrink the size: a new symbolic name per layer
    "symbolic": ("import sympy\nfrom cnncalc.symbolic import analyze_symbolic\n"
                 "text = ('input: 3x8x8\\nlayers:\\n  - repeat: {times: %d, layers: [{conv: "
                 "{out: 3, kernel: 3}}]}\\n' % N)\n"
                 "spec = parse_spec(text, 'b', 'b')\n",
                 "spec.__dict__.pop('_graph', None); analyze_symbolic(spec, '3xHxW')"),
    # table --format json: the analysis with formulas, its dict, the JSON text
    "json": (_RELUS + "from cnncalc import analyze, render\nimport io\n"
             "spec = parse_spec('input: 3x8x8\\nlayers:\\n' + relus(N), 'b', 'b')\n",
             "spec.__dict__.pop('_graph', None); render.write_json(render.analysis_dict("
             "analyze(spec, explain=True), None), io.StringIO())"),
    # cnncalc memory: the inference replay and the training replay with adam (the lowering is
    # the analysis's, done before)
    "memory": (_RELUS + "from cnncalc import analyze\nfrom cnncalc.memory import memory\n"
               "analysis = analyze(parse_spec('input: 3x8x8\\nlayers:\\n' + relus(N), 'b', "
               "'b'))\n",
               "memory(analysis, 'adam')"),
}


def _hostile_case(kind: str, layers: int) -> tuple[float, float]:
    """(seconds, peak resident MiB) of one case in a fresh process (the gc settings of the CLI)."""
    setup, call = HOSTILE[kind]
    script = ("import gc, resource, time\ngc.freeze(); gc.set_threshold(100_000, 50, 100)\n"
              "from cnncalc.spec import parse_spec\n"
              f"N = {layers}\n" + setup +
              f"started = time.perf_counter(); {call}\n"
              "print(time.perf_counter() - started, "
              "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    out = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"hostile {kind} at {layers}: {out.stderr[-2000:]}")
    seconds, peak = out.stdout.split()
    return float(seconds), float(peak)


def hostile(sizes: dict[str, list[int]], runs: int = 3) -> list[str]:
    """Each analysis at two sizes, the best of ``runs`` processes, with the growth exponent
    log(t₂/t₁)/log(n₂/n₁) (1 = linear). On a shared machine it varies by ±0.03 run to run."""
    import math

    lines = ["| analysis | layers | time | peak RSS | exponent |", "|---|---:|---:|---:|---:|"]
    for kind, ns in sizes.items():
        previous: tuple[int, float] | None = None
        for n in ns:
            seconds, peak = min((_hostile_case(kind, n) for _ in range(runs)),
                                key=lambda r: r[0])
            exponent = ""
            if previous is not None:
                exponent = f"{math.log(seconds / previous[1]) / math.log(n / previous[0]):.2f}"
            lines.append(f"| {kind} | {n:,} | {_ms(seconds)} | {peak:,.0f} MiB | {exponent} |")
            previous = (n, seconds)
    return lines


# --------------------------------------------------------------------------------------------
# 3. Peers

RESNET = """
import torch
from torch import nn

class Bottleneck(nn.Module):
    def __init__(self, c_in, width, stride):
        super().__init__()
        out = width * 4
        self.conv1, self.bn1 = nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, out, 1, bias=False), nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, out, 1, stride, bias=False),
                                            nn.BatchNorm2d(out))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))

def resnet(blocks):
    layers, c_in = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                    nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)], 64
    for stage, count in enumerate(blocks):
        width = 64 * 2 ** stage
        for i in range(count):
            layers.append(Bottleneck(c_in, width, 2 if i == 0 and stage > 0 else 1))
            c_in = width * 4
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, 1000)]
    return nn.Sequential(*layers).eval()

DEPTHS = {"resnet50": [3, 4, 6, 3], "resnet152": [3, 8, 36, 3]}
"""

PEERS = {
    "torchinfo summary": ("torchinfo", """
import torchinfo
def count(model):
    return torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0).total_mult_adds
"""),
    "fvcore FlopCountAnalysis": ("fvcore", """
import logging
logging.disable(logging.WARNING)
from fvcore.nn import FlopCountAnalysis
def count(model):
    return FlopCountAnalysis(model, torch.zeros(1, 3, 224, 224)).total()
"""),
    "ptflops get_model_complexity_info": ("ptflops", """
from ptflops import get_model_complexity_info
def count(model):
    return get_model_complexity_info(model, (3, 224, 224), as_strings=False,
                                     print_per_layer_stat=False, verbose=False)[0]
"""),
}


def _peer_script(setup: str, net: str, repeat: int) -> str:
    """Build the model, count once (end to end), then time the count alone `repeat` times."""
    return f"""{RESNET}{setup}
import statistics, sys, time
with torch.no_grad():
    model = resnet(DEPTHS[{net!r}])
    params = sum(p.numel() for p in model.parameters())
    macs = count(model)
    times = []
    for _ in range({repeat}):
        started = time.perf_counter()
        count(model)
        times.append(time.perf_counter() - started)
print(params, int(macs), statistics.median(times))
"""


def peers(runs: int, repeat: int) -> list[str]:
    from cnncalc import analyze, load_spec
    from cnncalc.spec import read_spec_file
    from cnncalc.zoo import zoo_dir

    if not _version("torch"):
        return ["torch is not installed here: no peer to compare with."]
    cnncalc = _cnncalc_command()
    lines = ["| tool | network | end to end (fresh process) | in-process | ÷ cnncalc in-process "
             "| MACs it reports |", "|---|---|---:|---:|---:|---:|"]
    for net in ("resnet50", "resnet152"):
        spec = load_spec(net)
        ours_params, ours_macs = analyze(spec).totals.params, analyze(spec).totals.macs
        path = zoo_dir() / f"{net}.yaml"
        ours_in = _median_call(lambda: analyze(read_spec_file(path)), max(repeat, 5))
        ours_e2e = _median_wall([*cnncalc, "table", net, "--format", "csv"], runs)
        lines.append(f"| cnncalc (parse + analyse) | {net} | {_ms(ours_e2e)} | {_ms(ours_in)} "
                     f"| 1 | {ours_macs:,} |")
        for tool, (package, setup) in PEERS.items():
            if not _version(package):
                lines.append(f"| {tool} | {net} | not installed | | | |")
                continue
            script = _peer_script(setup, net, repeat)
            times, result = [], ""
            for _ in range(runs):
                started = time.perf_counter()
                proc = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True)
                times.append(time.perf_counter() - started)
                if proc.returncode != 0:
                    raise SystemExit(f"{tool} failed on {net}:\n{proc.stderr[-2000:]}")
                result = proc.stdout.split()
            params, macs, inside = int(result[0]), int(result[1]), float(result[2])
            if params != ours_params:
                raise SystemExit(f"the benchmark's {net} has {params:,} parameters, cnncalc's "
                                 f"{ours_params:,}: the builder above is wrong")
            lines.append(f"| {tool} | {net} | {_ms(statistics.median(times))} | {_ms(inside)} "
                         f"| {inside / ours_in:,.0f} | {macs:,} |")
    return lines


# --------------------------------------------------------------------------------------------


def main() -> None:
    started = time.perf_counter()
    quick = ARGS.quick
    print("## Machine\n")
    print("\n".join(machine()))
    print(f"- bytecode: {byte_compile()}")
    print("\n## Start-up (fresh process)\n")
    print("\n".join(startup(runs=3 if quick else 15)))
    if ARGS.startup:
        return
    print("\n## In-process: parse and analyse\n")
    print("\n".join(scale(runs=3 if quick else 15,
                          sizes=[1_000] if quick else [2_500, 5_000, 10_000, 20_000])))
    print("\n## Hostile scale: check, symbolic --input, JSON, memory (fresh process each)\n")
    print("\n".join(hostile(
        {"check": [1_000, 10_000], "symbolic": [250, 1_000], "json": [1_000, 10_000],
         "memory": [1_000, 10_000]} if quick
        else {"check": [10_000, 100_000], "symbolic": [1_000, 10_000],
              "json": [10_000, 100_000], "memory": [10_000, 100_000]}, runs=1 if quick else 3)))
    if not quick or ARGS.peers:
        print("\n## Against the tools a user would otherwise run\n")
        print("\n".join(peers(runs=1 if quick else 3, repeat=1 if quick else 5)))
    print(f"\n(benchmark took {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="few runs, small sizes, no peers: a smoke run in a few seconds")
    parser.add_argument("--peers", action="store_true", help="with --quick, run the peers too")
    parser.add_argument("--startup", action="store_true",
                        help="only the start-up table (e.g. to compare typer versions)")
    ARGS = parser.parse_args()
    main()
