"""The zoo specs docs/tutorial.md uses: totals asserted from hand derivations written out here.

No bias anywhere except nin-1x1; a k_h×k_w convolution from c_in to c_out maps has
k_h·k_w·c_in·c_out weights and, writing an H×W map, H·W·k_h·k_w·c_in·c_out MACs. Batch norm has
2C parameters (scale, shift) and 2C + 1 buffers.
"""

from __future__ import annotations

import pytest

from cnncalc import analyze, load_spec

# --- conv-7x7: one 7×7, 64 → 64, on 56×56 (56·56 = 3,136) -------------------------------------
#   weights 7·7·64·64 = 200,704; MACs 3,136·200,704 = 629,407,744
CONV_7X7 = dict(output=(64, 56, 56), params=200_704, macs=629_407_744, buffers=0, rf=(7, 7))

# --- vgg-stack-3x3: three 3×3, 64 → 64 each ------------------------------------------------------
#   each 3·3·64·64 = 36,864 weights, MACs 3,136·36,864 = 115,605,504
#   total 3·36,864 = 110,592 weights (27·64² instead of 49·64²), MACs 3·115,605,504 = 346,816,512
#   receptive field 3 → 3 + 2 = 5 → 5 + 2 = 7
VGG_STACK = dict(output=(64, 56, 56), params=110_592, macs=346_816_512, buffers=0, rf=(7, 7))

# --- factorised-7x7: 1×7 then 7×1, 64 → 64 each --------------------------------------------------
#   each 7·64·64 = 28,672 weights, MACs 3,136·28,672 = 89,915,392
#   total 57,344 weights (14·64² instead of 49·64²), MACs 179,830,784; receptive field 1×7 → 7×7
FACTORISED = dict(output=(64, 56, 56), params=57_344, macs=179_830_784, buffers=0, rf=(7, 7))

# --- nin-1x1 on 3×32×32 (32·32 = 1,024), with biases -------------------------------------------
#   conv1 5×5, pad 2: 5·5·3·192 + 192 = 14,592;  MACs 1,024·14,400 = 14,745,600
#   cccp1 1×1:        192·160 + 160   = 30,880;  MACs 1,024·30,720 = 31,457,280
#   cccp2 1×1:        160·96 + 96     = 15,456;  MACs 1,024·15,360 = 15,728,640
#   1×1 layers leave the receptive field at 5
NIN = dict(output=(96, 32, 32), params=14_592 + 30_880 + 15_456,
           macs=14_745_600 + 31_457_280 + 15_728_640, buffers=0, rf=(5, 5))

# --- resnet-basic-block at 256 maps on 56×56 -----------------------------------------------------
#   conv1, conv2 3×3 256 → 256: 589,824 weights each; MACs 3,136·589,824 = 1,849,688,064 each
#   bn1, bn2: 512 params and 513 buffers each
BASIC = dict(output=(256, 56, 56), params=2 * 589_824 + 2 * 512, macs=2 * 1_849_688_064,
             buffers=2 * 513, rf=(5, 5))

# --- resnet-bottleneck-block at 256 maps on 56×56 (ResNet-50 layer1.1) ---------------------------
#   conv1 1×1 256 → 64: 16,384;  MACs 3,136·16,384 = 51,380,224
#   conv2 3×3 64 → 64:  36,864;  MACs 3,136·36,864 = 115,605,504
#   conv3 1×1 64 → 256: 16,384;  MACs 51,380,224
#   bn 64, 64, 256: params 128 + 128 + 512 = 768, buffers 129 + 129 + 513 = 771
BOTTLENECK = dict(output=(256, 56, 56), params=16_384 + 36_864 + 16_384 + 768,
                  macs=51_380_224 + 115_605_504 + 51_380_224, buffers=771, rf=(3, 3))

# --- resnet-projection-block: 256×56×56 → 512×28×28 (ResNet-50 layer2.0) -------------------------
#   conv1 1×1 256 → 128 at 56×56:     32,768;  MACs 3,136·32,768 = 102,760,448
#   conv2 3×3/2 128 → 128 to 28×28:  147,456;  MACs 784·147,456  = 115,605,504
#   conv3 1×1 128 → 512 at 28×28:     65,536;  MACs 784·65,536   = 51,380,224
#   downsample 1×1/2 256 → 512:      131,072;  MACs 784·131,072  = 102,760,448
#   bn 128, 128, 512, 512: params 2·1,280 = 2,560, buffers 2,560 + 4 = 2,564
PROJECTION = dict(output=(512, 28, 28), params=32_768 + 147_456 + 65_536 + 131_072 + 2_560,
                  macs=102_760_448 + 115_605_504 + 51_380_224 + 102_760_448, buffers=2_564,
                  rf=(3, 3))

EXPECTED = {
    "conv-7x7": CONV_7X7,
    "vgg-stack-3x3": VGG_STACK,
    "factorised-7x7": FACTORISED,
    "nin-1x1": NIN,
    "resnet-basic-block": BASIC,
    "resnet-bottleneck-block": BOTTLENECK,
    "resnet-projection-block": PROJECTION,
}

# For tests/test_zoo.py's list of every zoo spec and its output shape.
TUTORIAL_OUTPUTS = {name: figures["output"] for name, figures in EXPECTED.items()}


def test_the_derivations_add_up_to_the_figures_the_tutorial_quotes():
    assert VGG_STACK["params"] == 27 * 64 * 64 and CONV_7X7["params"] == 49 * 64 * 64
    assert FACTORISED["params"] == 14 * 64 * 64
    assert NIN["params"] == 60_928 and NIN["macs"] == 61_931_520
    assert BASIC["params"] == 1_180_672 and BASIC["macs"] == 3_699_376_128
    assert BOTTLENECK["params"] == 70_400 and BOTTLENECK["macs"] == 218_365_952
    assert PROJECTION["params"] == 379_392 and PROJECTION["macs"] == 372_506_624


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tutorial_spec_totals(name):
    want = EXPECTED[name]
    analysis = analyze(load_spec(name))
    assert analysis.output == want["output"]
    assert analysis.totals.params == want["params"]
    assert analysis.totals.trainable_params == want["params"]
    assert analysis.totals.macs == want["macs"]
    assert analysis.totals.buffers == want["buffers"]
    assert analysis.rows[-1].rf == want["rf"]


def test_resnet_blocks_match_the_resnet50_rows_they_copy():
    resnet50 = analyze(load_spec("resnet50"))
    for name, path in (("resnet-bottleneck-block", "layer1.1"),
                       ("resnet-projection-block", "layer2.0")):
        row = resnet50.row(path)
        block = analyze(load_spec(name)).row("block")
        assert (block.params, block.macs, block.output) == (row.params, row.macs, row.output)


def test_projection_shortcut_skips_the_last_row_and_column():
    # (56 − 1)/2 = 27.5: the 1×1 stride-2 projection never reads row and column 55.
    warnings = analyze(load_spec("resnet-projection-block")).warnings
    by_path = {w.path: w for w in warnings}
    assert by_path["block.downsample.conv"].severity == "warning"
    assert by_path["block.downsample.conv"].ignored_input == {"height": 1, "width": 1}
    # (56 + 2·1 − 3)/2 = 27.5 on the 3×3: the unread remainder is padding only.
    assert by_path["block.conv2"].severity == "note"


def test_docs_zoo_table_quotes_these_figures():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "zoo.md").read_text(encoding="utf-8")
    for name, want in EXPECTED.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` "))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == f"{want['params']:,}" and cells[2] == f"{want['macs']:,}", row
