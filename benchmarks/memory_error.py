"""The memory model against the live-tensor meter, per zoo spec: predicted ÷ measured peak.

    python benchmarks/memory_error.py                       # every zoo spec, batch 1 and 8
    python benchmarks/memory_error.py --batch 32 resnet50   # a batch size, some specs
    python benchmarks/memory_error.py --markdown            # the table in docs/memory.md
    python benchmarks/memory_error.py --batch 32 --meta-inference --markdown

fp32 training runs on torch's ``meta`` device: the same ATen ops, autograd formulas and tensor sizes as
the CPU, without the arithmetic (tests/test_memory_meter.py checks that both meter the same).
Inference runs on the CPU (torch's CPU max pooling keeps no indices under no_grad; on meta it
does), and so does bf16 autocast (``--bf16``, slow for large specs).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from cnncalc import analyze, load_spec
from cnncalc.backend import build
from cnncalc.backend.meter import measure_inference, measure_training
from cnncalc.memory import memory
from cnncalc.zoo import zoo_names

TRAINING = [(o, s) for o in ("sgd", "momentum", "adam") for s in (True, False)]


def predicted(spec, batch, dtype, mode, optimizer="sgd", set_to_none=True):
    analysis = analyze(spec, batch=batch, dtype=dtype)
    report = memory(analysis, optimizer, param_dtype="fp32", set_to_none=set_to_none)
    return report.inference_bytes if mode == "inference" else report.training_bytes


META_INFERENCE = False


def measured(spec, batch, dtype, mode, optimizer="sgd", set_to_none=True):
    meta = dtype == "fp32" and (mode == "training" or META_INFERENCE)
    device = "meta" if meta else "cpu"
    analysis = analyze(spec, batch=1)
    torch.manual_seed(0)
    model = build(spec).to(device)
    x = torch.randn(batch, *analysis.input, device=device)
    if mode == "inference":
        return measure_inference(model, x, dtype).peak_bytes
    return measure_training(model, x, optimizer, set_to_none, dtype).peak_bytes


def cases(dtype, training_subset):
    yield "inference", "sgd", True
    for optimizer, set_to_none in TRAINING:
        if training_subset and (optimizer, set_to_none) not in training_subset:
            continue
        yield "training", optimizer, set_to_none


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*")
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast on the CPU, not fp32")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--quick", action="store_true", help="training: sgd only")
    parser.add_argument("--meta-inference", action="store_true",
                        help="fp32 inference on the meta device too (batch 32 of the whole zoo)")
    args = parser.parse_args(argv)
    global META_INFERENCE
    META_INFERENCE = args.meta_inference
    dtype = "bf16" if args.bf16 else "fp32"
    batches = [int(b) for b in args.batch.split(",")]
    subset = [("sgd", True), ("sgd", False)] if args.quick else None
    worst = 0.0
    header = ["spec", "batch", "inference"] + [
        f"{o} {'none' if s else 'kept'}" for _, o, s in list(cases(dtype, subset))[1:]]
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
    for name in args.specs or zoo_names():
        spec = load_spec(name)
        for batch in batches:
            start = time.time()
            ratios = []
            for mode, optimizer, set_to_none in cases(dtype, subset):
                p = predicted(spec, batch, dtype, mode, optimizer, set_to_none)
                m = measured(spec, batch, dtype, mode, optimizer, set_to_none)
                ratios.append(p / m)
            worst = max(worst, *(abs(r - 1) for r in ratios))
            cells = [f"{r:.3f}" for r in ratios]
            if args.markdown:
                print(f"| {name} | {batch} | " + " | ".join(cells) + " |")
            else:
                print(f"{name:26} b{batch:<3} " + " ".join(cells) + f"  ({time.time() - start:.1f} s)")
            sys.stdout.flush()
    print(f"\nworst |predicted / measured - 1| = {worst:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
