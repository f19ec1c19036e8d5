"""The zoo's graph-format networks (MobileNetV2, EfficientNet-B0, ConvNeXt-Tiny, DenseNet-121,
U-Net): totals equal the published figures.

FIGURES is the outside source: torchvision's published parameter counts and GFLOPS (fvcore's
conv + linear multiply-adds ×1e9) for the four torchvision models, the 2015 paper's Fig. 1 for
the U-Net; buffers are batch norm's running_mean + running_var + num_batches_tracked. The plain
torch references (tests/reference_models.py) are held to the same table in
tests/backend/test_reference_models.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cnncalc import analyze, load_spec

# name: (params, buffers, MACs, output per sample), at 3×224×224 unless stated
FIGURES = {
    # torchvision.models.mobilenet_v2: 3,504,872 params, 0.30 GFLOPS
    "mobilenet-v2": (3_504_872, 34_164, 300_774_272, (1000,)),
    # torchvision.models.efficientnet_b0: 5,288,548 params, 0.39 GFLOPS
    "efficientnet-b0": (5_288_548, 42_065, 385_814_752, (1000,)),
    # torchvision.models.convnext_tiny: 28,589,128 params, 4.46 GFLOPS; layer norms, no buffers
    "convnext-tiny": (28_589_128, 0, 4_455_531_264, (1000,)),
    # torchvision.models.densenet121: 7,978,856 params, 2.83 GFLOPS
    "densenet121": (7_978_856, 83_769, 2_834_161_664, (1000,)),
    # 1×572×572, Ronneberger et al. 2015 Fig. 1; MACs with a transposed convolution counted as
    # every input pixel times every weight (fvcore's rule)
    "unet": (31_030_658, 0, 150_428_424_448, (2, 388, 388)),
}

# For tests/test_zoo.py's list of every zoo spec and its output shape.
MODERN_OUTPUTS = {name: figures[3] for name, figures in FIGURES.items()}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_modern_zoo_totals(name):
    params, buffers, macs, output = FIGURES[name]
    analysis = analyze(load_spec(name))
    assert analysis.totals.params == params
    assert analysis.totals.buffers == buffers
    assert analysis.totals.macs == macs
    assert analysis.output == output


def test_unet_input_is_the_papers_tile():
    assert analyze(load_spec("unet")).input == (1, 572, 572)


def test_unet_hand_count():
    """31,030,658 parameters from Fig. 1's widths: valid 3×3 convolutions with biases in
    double-convolution stages, 2×2 up-convolutions halving the maps, a 1×1 classifier."""
    def conv(cin: int, cout: int, k: int) -> int:
        return cin * cout * k * k + cout

    widths = (64, 128, 256, 512)
    down = sum(conv(cin, c, 3) + conv(c, c, 3) for cin, c in zip((1, *widths), widths))
    bottom = conv(512, 1024, 3) + conv(1024, 1024, 3)
    ups = sum(conv(2 * c, c, 2) + conv(2 * c, c, 3) + conv(c, c, 3) for c in widths)
    assert down + bottom + ups + conv(64, 2, 1) == FIGURES["unet"][0]


def test_docs_zoo_table_quotes_these_figures():
    text = (Path(__file__).resolve().parent.parent / "docs" / "zoo.md").read_text(encoding="utf-8")
    for name, (params, buffers, macs, _) in FIGURES.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` "))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == f"{params:,}" and cells[2] == f"{macs:,}", row
        assert f"buffers {buffers:,}" in cells[3], row
