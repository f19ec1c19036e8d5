"""The graph examples of docs/spec-format.md, as a user copies them, against torch: a reference
module written here in plain torch (its parameter count and fvcore's conv+linear count), or the
published figures (U-Net: the 2015 paper's layout, as in tests/test_zoo_modern.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnncalc import analyze, parse_spec
from cnncalc.backend import build, verify

DOC = (Path(__file__).resolve().parents[2] / "docs" / "spec-format.md").read_text()


def example(heading: str, index: int = 0):
    """The ``index``-th yaml block under the ``### heading`` of spec-format.md."""
    section = DOC.split(f"### {heading}", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    return parse_spec(blocks[index], f"{heading}.yaml", "example")


def fvcore_macs(model: nn.Module, x: torch.Tensor) -> int:
    from fvcore.nn import FlopCountAnalysis

    counter = FlopCountAnalysis(model.eval(), x)
    counter.unsupported_ops_warnings(False)
    counter.uncalled_modules_warnings(False)
    return sum(n for op, n in counter.by_operator().items() if op in ("conv", "linear", "addmm"))


def numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class FPN(nn.Module):
    """The docs' feature pyramid in plain torch (torchvision's FPN + LastLevelMaxPool rules)."""

    def __init__(self) -> None:
        super().__init__()
        widths = [3, 32, 64, 128, 256, 512]
        self.stages = nn.ModuleList(nn.Conv2d(a, b, 3, 2, 1) for a, b in zip(widths, widths[1:]))
        self.lateral = nn.ModuleList(nn.Conv2d(c, 128, 1) for c in (64, 128, 256, 512))
        self.out = nn.ModuleList(nn.Conv2d(128, 128, 3, padding=1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c = []
        for stage in self.stages:
            x = F.relu(stage(x))
            c.append(x)
        feats = c[1:]  # c2..c5
        p = [self.lateral[3](feats[3])]
        for i in (2, 1, 0):
            up = F.interpolate(p[0], size=feats[i].shape[-2:], mode="nearest")
            p.insert(0, self.lateral[i](feats[i]) + up)
        outs = [conv(t) for conv, t in zip(self.out, p)]
        return [*outs, F.max_pool2d(outs[-1], 1, 2, 0)]


def test_the_fpn_example_has_five_outputs_and_torchs_numbers():
    spec = example("A feature pyramid with five outputs (Lin et al., 2017)")
    a = analyze(spec)
    ref = FPN()
    x = torch.zeros(1, 3, 224, 224)
    outputs = ref.eval()(x)
    assert [tuple(o.shape[1:]) for o in outputs] == list(a.outputs)
    assert a.outputs[-1] == (128, 4, 4)
    assert a.totals.params == numel(ref)
    assert a.totals.macs == fvcore_macs(ref, x)
    built = build(spec).eval()(x)
    assert [tuple(t.shape) for t in built] == [tuple(o.shape) for o in outputs]
    assert verify(spec).ok


def test_the_unet_example_matches_the_paper_layout():
    spec = example("U-Net (Ronneberger et al., 2015)")
    a = analyze(spec)
    # Ronneberger et al. 2015 layout: 31,030,658 parameters; fvcore's conv count (transposed
    # convolutions: batch · weight elements · input positions) 150,428,424,448
    assert a.totals.params == 31_030_658
    assert a.totals.macs == 150_428_424_448
    assert a.output == (2, 388, 388)
    assert numel(build(spec)) == 31_030_658


def test_the_se_example_verifies():
    spec = example("A squeeze-and-excitation block (EfficientNet, MobileNetV3, RegNetY)")
    a = analyze(spec)
    assert a.row("1").params == (32 * 8 + 8) + (8 * 32 + 32)
    assert a.row("1").macs == 32 * 8 + 8 * 32
    assert verify(spec).ok


def test_the_1d_audio_example_against_torch():
    spec = example("1-D and 3-D networks", 0)
    layers, c = [], 1
    for i, (out, k, s) in enumerate([(128, 80, 4), (128, 3, 1), (256, 3, 1), (512, 3, 1)]):
        layers += [nn.Conv1d(c, out, k, s), nn.BatchNorm1d(out), nn.ReLU(), nn.MaxPool1d(4)]
        c = out
    ref = nn.Sequential(*layers, nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(512, 10))
    x = torch.zeros(1, 1, 16000)
    a = analyze(spec)
    assert a.totals.params == numel(ref)
    assert a.totals.buffers == sum(b.numel() for b in ref.buffers())
    assert a.totals.macs == fvcore_macs(ref, x)
    assert a.output == tuple(ref.eval()(x).shape[1:])
    assert verify(spec).ok


def test_the_c3d_example_against_torch():
    spec = example("1-D and 3-D networks", 1)
    convs = [(3, 64), "p1", (64, 128), "p", (128, 256), (256, 256), "p", (256, 512),
             (512, 512), "p", (512, 512), (512, 512), "p5"]
    layers: list[nn.Module] = []
    for item in convs:
        if item == "p1":
            layers.append(nn.MaxPool3d((1, 2, 2)))
        elif item == "p":
            layers.append(nn.MaxPool3d(2))
        elif item == "p5":
            layers.append(nn.MaxPool3d(2, padding=(0, 1, 1)))
        else:
            layers += [nn.Conv3d(*item, 3, padding=1), nn.ReLU()]
    ref = nn.Sequential(*layers, nn.Flatten(), nn.Linear(8192, 4096), nn.ReLU(),
                        nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 487))
    x = torch.zeros(1, 3, 16, 112, 112)
    a = analyze(spec)
    assert a.totals.params == numel(ref)
    assert a.totals.macs == fvcore_macs(ref, x)
    assert a.output == (487,)
