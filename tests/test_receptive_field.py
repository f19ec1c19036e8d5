"""Receptive fields in full: size r, jump j and the centre of the first output unit (start), per
axis, through stacks, branches and residual adds (Araujo, Norelli and Sun, "Computing Receptive
Fields of Convolutional Neural Networks", Distill 2019):

    r_out = r_in + (k − 1)·j_in      j_out = j_in·s      start_out = start_in + ((k − 1)/2 − p)·j_in

from r = 1, j = 1, start = 0 (the centre of the first input pixel). Every expected figure below
is worked out by hand in the comments, never read from cnncalc's output.
"""

from __future__ import annotations

import json
from fractions import Fraction

from typer.testing import CliRunner

from cnncalc import analyze, load_spec, parse_spec
from cnncalc.cli import app


def lines(*text: str) -> str:
    return "\n".join(text) + "\n"


def run(text: str, **options):
    return analyze(parse_spec(text, "net.yaml", "net"), **options)


def stack(kernel: int, times: int) -> str:
    """``times`` stride-1 convolutions of one channel to one channel, no bias: the weights per
    channel pair are the parameters."""
    return lines("input: 1x32x32", "layers:",
                 f"  - repeat: {{times: {times}, layers: [conv: {{out: 1, kernel: {kernel}, bias: false}}]}}")


# --------------------------------------------------------------------------------------------
# The stacked 3×3 claim (VGG)


def test_two_stacked_3x3_see_5x5_with_18_weights_instead_of_25():
    two = run(stack(3, 2))
    one = run(stack(5, 1))
    # r: 1 + (3 − 1)·1 = 3, then 3 + (3 − 1)·1 = 5; one 5×5: 1 + (5 − 1)·1 = 5
    assert two.rows[-1].rf == one.rows[-1].rf == (5, 5)
    # weights per channel pair: 2·(3·3) = 18 against 5·5 = 25
    assert two.totals.params == 2 * 9 == 18
    assert one.totals.params == 25


def test_three_stacked_3x3_see_7x7_with_27_weights_instead_of_49():
    three = run(stack(3, 3))
    one = run(stack(7, 1))
    # 1 + 2 + 2 + 2 = 7 = 1 + (7 − 1)
    assert three.rows[-1].rf == one.rows[-1].rf == (7, 7)
    assert three.totals.params == 3 * 9 == 27
    assert one.totals.params == 49


def test_the_stack_claim_is_visible_in_the_table(tmp_path):
    spec = tmp_path / "stacks.yaml"
    spec.write_text(lines(
        "input: 1x32x32", "layers:",
        "  - concat:",
        "      name: both",
        "      branches:",
        "        stack: [conv: {out: 1, kernel: 3, padding: 1, bias: false},",
        "                conv: {out: 1, kernel: 3, padding: 1, bias: false}]",
        "        single: [conv: {out: 1, kernel: 5, padding: 2, bias: false}]",
    ))
    out = CliRunner().invoke(app, ["table", str(spec), "--format", "markdown", "--depth", "2"])
    assert out.exit_code == 0, out.output
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in out.stdout.splitlines() if line.startswith("| both.")}
    # columns: Layer, Kind, Output, Settings, Params, MACs, RF, Act. mem
    assert rows["both.stack"][4] == "18" and rows["both.stack"][6] == "5"
    assert rows["both.single"][4] == "25" and rows["both.single"][6] == "5"


# --------------------------------------------------------------------------------------------
# VGG-16 by hand (torchvision layout: 3×3/1 p1 convolutions, 2×2/2 max pools)

# conv 3×3 p1 adds (3 − 1)·j to r and ((3 − 1)/2 − 1)·j = 0 to start;
# pool 2×2/2 adds (2 − 1)·j to r, doubles j, and adds ((2 − 1)/2 − 0)·j = j/2 to start.
#            r after each conv of the stage    r, j, start after the stage's pool
# block1     3, 5                              5 + 1·1 = 6,      j 2,   start 0 + 1/2 = 1/2
# block2     6 + 2·2 = 10, 14                  14 + 1·2 = 16,    j 4,   start 1/2 + 1 = 3/2
# block3     16 + 2·4 = 24, 32, 40             40 + 1·4 = 44,    j 8,   start 3/2 + 2 = 7/2
# block4     44 + 2·8 = 60, 76, 92             92 + 1·8 = 100,   j 16,  start 7/2 + 4 = 15/2
# block5     100 + 2·16 = 132, 164, 196        196 + 1·16 = 212, j 32,  start 15/2 + 8 = 31/2
VGG16 = {
    "block1.conv1": (3, 1, Fraction(0)), "block1.conv2": (5, 1, Fraction(0)),
    "block1.pool": (6, 2, Fraction(1, 2)),
    "block2.conv1": (10, 2, Fraction(1, 2)), "block2.conv2": (14, 2, Fraction(1, 2)),
    "block2.pool": (16, 4, Fraction(3, 2)),
    "block3.conv1": (24, 4, Fraction(3, 2)), "block3.conv2": (32, 4, Fraction(3, 2)),
    "block3.conv3": (40, 4, Fraction(3, 2)), "block3.pool": (44, 8, Fraction(7, 2)),
    "block4.conv1": (60, 8, Fraction(7, 2)), "block4.conv2": (76, 8, Fraction(7, 2)),
    "block4.conv3": (92, 8, Fraction(7, 2)), "block4.pool": (100, 16, Fraction(15, 2)),
    "block5.conv1": (132, 16, Fraction(15, 2)), "block5.conv2": (164, 16, Fraction(15, 2)),
    "block5.conv3": (196, 16, Fraction(15, 2)), "block5.pool": (212, 32, Fraction(31, 2)),
}


def test_vgg16_receptive_fields_by_hand():
    analysis = analyze(load_spec("vgg16"))
    for path, (r, j, start) in VGG16.items():
        row = analysis.row(path)
        assert row.rf == (r, r), path
        assert row.jump == (j, j), path
        assert row.rf_start == (start, start), path


def test_vgg16_pool5_matches_araujo_et_al():
    # Araujo et al. list VGG-16 with r = 212, effective stride 32 and effective padding 90. The
    # first unit's field is centred at 31/2 and spans 212 pixels: from 31/2 − (212 − 1)/2 = −90
    # (90 pixels into the padding) to 31/2 + 211/2 = 121.
    row = analyze(load_spec("vgg16")).row("block5.pool")
    assert row.rf[0] == 212 and row.jump[0] == 32
    assert row.rf_start[0] - Fraction(row.rf[0] - 1, 2) == -90


# --------------------------------------------------------------------------------------------
# ResNet-50 by hand (torchvision: the stride on the 3×3; 1×1/2 projection shortcuts)

# Every window is centred (7×7 p3, 3×3 p1, 1×1 p0: (k − 1)/2 − p = 0), so start stays 0.
# conv1 7×7/2:   r = 1 + 6·1 = 7, j = 2
# maxpool 3×3/2: r = 7 + 2·2 = 11, j = 4
# layer1: 3 bottlenecks, each one 3×3 at j 4: r = 11 + 3·(2·4) = 35
# layer2.0: its 3×3/2 at j 4: r = 35 + 2·4 = 43, j = 8 (the 1×1/2 shortcut sees 35: the union
#           of [−17, 17] and [−21, 21] is 43); three more 3×3 at j 8: 43 + 3·16 = 91
# layer3.0: 91 + 2·8 = 107, j = 16; five more: 107 + 5·32 = 267
# layer4.0: 267 + 2·16 = 299, j = 32; two more: 299 + 2·64 = 427
# avgpool (adaptive to 1 on 7×7: one 7-wide window, stride 7): 427 + 6·32 = 619, j = 224,
#           start 0 + ((7 − 1)/2)·32 = 96
RESNET50 = {
    "conv1": (7, 2, 0), "maxpool": (11, 4, 0), "layer1": (35, 4, 0), "layer2.0": (43, 8, 0),
    "layer2.0.downsample": (35, 8, 0), "layer2": (91, 8, 0), "layer3.0": (107, 16, 0),
    "layer3": (267, 16, 0), "layer4.0": (299, 32, 0), "layer4": (427, 32, 0),
    "avgpool": (619, 224, 96),
}


def test_resnet50_receptive_fields_by_hand():
    analysis = analyze(load_spec("resnet50"))
    for path, (r, j, start) in RESNET50.items():
        row = analysis.row(path)
        assert row.rf == (r, r), path
        assert row.jump == (j, j), path
        assert row.rf_start == (start, start), path


def test_alexnet_start_moves_with_unpadded_windows():
    analysis = analyze(load_spec("alexnet"))
    # conv1 11×11/4 p0: start 0 + ((11 − 1)/2 − 0)·1 = 5
    # pool1 3×3/2: 5 + (1 − 0)·4 = 9; conv2 5×5 p2: 9 + (2 − 2)·8 = 9; pool2: 9 + 1·8 = 17
    assert analysis.row("conv1").rf_start == (5, 5)
    assert analysis.row("pool1").rf_start == (9, 9)
    assert analysis.row("conv2").rf_start == (9, 9)
    assert analysis.row("pool2").rf_start == (17, 17)


# --------------------------------------------------------------------------------------------
# Unions over paths


def test_union_of_misaligned_branches_is_their_hull():
    analysis = run(lines(
        "input: 1x16x16", "layers:",
        "  - concat:",
        "      name: mix",
        "      branches:",
        "        centred: [conv: {out: 1, kernel: 3, padding: 1}]",
        "        shifted: [conv: {out: 1, kernel: 2, padding: same},",
        "                  conv: {out: 1, kernel: 2, padding: same}]",
    ))
    # centred: r 3, start 0: pixels [−1, 1]
    assert analysis.row("mix.centred").rf == (3, 3)
    assert analysis.row("mix.centred").rf_start == (0, 0)
    # shifted: 'same' pads a 2-wide kernel (0, 1): each adds ((2 − 1)/2 − 0)·1 = 1/2 to start;
    # r = 1 + 1 + 1 = 3, start 1: pixels [0, 2]
    assert analysis.row("mix.shifted").rf == (3, 3)
    assert analysis.row("mix.shifted").rf_start == (1, 1)
    # the union [−1, 2]: 4 pixels, centred at 1/2 (taking the larger path would say 3)
    assert analysis.row("mix").rf == (4, 4)
    assert analysis.row("mix").rf_start == (Fraction(1, 2), Fraction(1, 2))


def test_identity_shortcut_union_keeps_the_main_path():
    analysis = run(lines(
        "input: 4x16x16", "layers:",
        "  - residual:",
        "      name: block",
        "      layers: [conv: {out: 4, kernel: 3, padding: 1}, conv: {out: 4, kernel: 3, padding: 1}]",
    ))
    # main path [−2, 2] ∪ identity [0, 0] = [−2, 2]
    assert analysis.row("block").rf == (5, 5) and analysis.row("block").rf_start == (0, 0)


def test_per_axis_fields_differ_for_rectangular_kernels():
    analysis = run(lines("input: 1x16x16", "layers:",
                         "  - conv: {out: 1, kernel: [1, 7], padding: [0, 3]}",
                         "  - conv: {out: 1, kernel: [7, 1], stride: [2, 1], padding: [0, 0]}"))
    row = analysis.rows[-1]
    # height: 1 then 1 + 6 = 7, start 0 + 3 − 0 = 3; width: 7 then 7, start 0 + (3 − 3) = 0
    assert row.rf == (7, 7) and row.jump == (2, 1)
    assert row.rf_start == (3, 0)


def test_json_has_rf_start_hw():
    out = CliRunner().invoke(app, ["table", "vgg16", "--format", "json"])
    rows = {r["path"]: r for r in json.loads(out.stdout)["layers"]}
    assert rows["block5.pool"]["rf_hw"] == [212, 212]
    assert rows["block5.pool"]["jump_hw"] == [32, 32]
    assert rows["block5.pool"]["rf_start_hw"] == [15.5, 15.5]
    assert rows["block1.conv1"]["rf_start_hw"] == [0, 0]
