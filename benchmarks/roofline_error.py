"""The roofline's predicted time against torch's, per layer and per model, on this machine.

    python benchmarks/roofline_error.py                   # a few zoo specs at batch 1, CPU
    python benchmarks/roofline_error.py --batch 8 resnet18

Calibrates the device once (matmul FLOP/s, copy bandwidth, per-op cost: cnncalc profile
--calibrate), then runs cnncalc's profile with --per-layer: per layer, torch.profiler's time of
the layer's forward beside the roofline's prediction; per model, the median step beside the sum
of the predictions. Prints a markdown table (docs/backend.md).
"""

from __future__ import annotations

import argparse
import statistics

from cnncalc import load_spec
from cnncalc.backend import timing
from cnncalc.roofline import save_calibration

SPECS = ["lenet5", "alexnet", "resnet18", "googlenet", "vgg11"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    device = timing.calibrate(args.device)
    save_calibration(device)  # the profiles below read it (CNNCALC_CALIBRATION, or the cache)
    print(f"{device.name}: {device.peak('fp32') / 1e9:.1f} GFLOP/s fp32 matmul, "
          f"{device.bandwidth / 1e9:.1f} GB/s copy, {device.overhead_s * 1e6:.1f} µs per op "
          f"({device.source})\n")
    print("| spec | batch | predicted ms | measured ms | predicted ÷ measured | conv/linear: "
          "median ratio (p10–p90) | other layers: median ratio |")
    print("|---|---|---|---|---|---|---|")
    for name in args.specs or SPECS:
        p = timing.profile(load_spec(name), device=args.device, batches=(args.batch,),
                           warmup=2, min_time=0.5, per_layer=True)
        big = [t.predicted_ms / t.ms for t in p.per_layer
               if t.kind in ("conv", "linear") and t.predicted_ms and t.ms]
        small = [t.predicted_ms / t.ms for t in p.per_layer
                 if t.kind not in ("conv", "linear") and t.predicted_ms and t.ms]

        def spread(values):
            if len(values) < 2:
                return f"{values[0]:.2f}" if values else "—"
            q = statistics.quantiles(values, n=10, method="inclusive")
            return f"{statistics.median(values):.2f} ({q[0]:.2f}–{q[-1]:.2f})"

        print(f"| {name} | {args.batch} | {p.predicted_latency_ms:.3g} | "
              f"{p.measured_latency_ms:.3g} | {p.predicted_latency_ms / p.measured_latency_ms:.2f}"
              f" | {spread(big)} | {spread(small)} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
