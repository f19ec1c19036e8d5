"""The zoo: every spec loads, and its totals match published figures or hand derivations."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnncalc import SpecError, SpecNotFound, analyze, load_spec, zoo_names

from .test_zoo_modern import MODERN_OUTPUTS
from .test_zoo_tutorial import TUTORIAL_OUTPUTS


def conv(c_in: int, c_out: int, k: int, size: int, bias: bool = False) -> tuple[int, int]:
    """(params, MACs) of a k×k convolution writing a size×size map: the textbook formula."""
    weights = c_in * c_out * k * k
    return weights + (c_out if bias else 0), size * size * weights


def fc(n_in: int, n_out: int) -> tuple[int, int]:
    return n_in * n_out + n_out, n_in * n_out


# --------------------------------------------------------------------------------------------
# every spec


EXPECTED_OUTPUT = {
    "lenet5": (10,), "lenet5-1998": (10,),
    "alexnet": (1000,), "alexnet-2gpu": (1000,),
    "vgg11": (1000,), "vgg13": (1000,), "vgg16": (1000,), "vgg19": (1000,),
    "resnet18": (1000,), "resnet34": (1000,), "resnet50": (1000,), "resnet101": (1000,),
    "resnet152": (1000,), "googlenet": (1000,),
    # 64 + 128 + 32 + 192 (the pool passes its 192 maps through) = 416
    "inception-naive": (416, 28, 28),
    # 64 + 128 + 32 + 32 = 256
    "inception-bottleneck": (256, 28, 28),
    **TUTORIAL_OUTPUTS,  # the tutorial's specs, derived in tests/test_zoo_tutorial.py
    **MODERN_OUTPUTS,  # MobileNetV2 … U-Net, with their totals in tests/test_zoo_modern.py
}


def test_the_zoo_is_the_set_of_specs_with_figures_here():
    assert set(zoo_names()) == set(EXPECTED_OUTPUT)
    assert len(zoo_names()) == len(set(zoo_names()))


def test_zoo_names_are_in_natural_order():
    names = zoo_names()
    assert names.index("resnet18") < names.index("resnet34") < names.index("resnet50") \
        < names.index("resnet101") < names.index("resnet152")
    assert names.index("vgg11") < names.index("vgg19")


@pytest.mark.parametrize("name", zoo_names())
def test_every_zoo_spec_loads_and_analyses(name):
    spec = load_spec(name)
    assert spec.name == name
    assert spec.title and spec.description and spec.source
    analysis = analyze(spec)
    assert analysis.output == EXPECTED_OUTPUT[name]
    assert analysis.totals.params > 0 and analysis.totals.macs > 0


# --------------------------------------------------------------------------------------------
# totals


# (params, MACs) at the spec's own input (3×224×224 unless stated).
TOTALS = {
    # 1×32×32. params 156 + 2,416 + 48,120 + 10,164 + 850;
    # MACs c1 28·28·6·25 = 117,600, c3 10·10·16·150 = 240,000, f5 400·120 = 48,000,
    #      f6 120·84 = 10,080, out 84·10 = 840
    "lenet5": (156 + 2_416 + 48_120 + 10_164 + 850,
               117_600 + 240_000 + 48_000 + 10_080 + 840),
    # 3×227×227; the single-tower Caffe AlexNet count
    "alexnet": (62_378_344, 1_135_256_096),
    # 3×227×227; the BVLC two-GPU AlexNet (groups 2 in conv2, conv4, conv5): 60,965,224 params
    "alexnet-2gpu": (60_965_224, 724_406_816),
    # torchvision's published parameter counts; MACs = torchvision's GFLOPS 7.61/11.31/15.47/19.63
    "vgg11": (132_863_336, 7_609_090_048),
    "vgg13": (133_047_848, 11_308_466_176),
    "vgg16": (138_357_544, 15_470_264_320),
    "vgg19": (143_667_240, 19_632_062_464),
    # torchvision parameter counts; fvcore conv+linear MACs (torchvision GFLOPS 1.81 … 11.51)
    "resnet18": (11_689_512, 1_814_073_344),
    "resnet34": (21_797_672, 3_663_761_408),
    "resnet50": (25_557_032, 4_089_184_256),
    "resnet101": (44_549_160, 7_801_405_440),
    "resnet152": (60_192_808, 11_513_626_624),
    # 192×28×28, no bias: 1×1 192·64, 3×3 192·9·128, 5×5 192·25·32; MACs 28·28·params
    "inception-naive": (192 * 64 + 192 * 9 * 128 + 192 * 25 * 32,
                        28 * 28 * (192 * 64 + 192 * 9 * 128 + 192 * 25 * 32)),
    # 192×28×28, no bias: 192·64 + 192·96 + 96·9·128 + 192·16 + 16·25·32 + 192·32
    "inception-bottleneck": (163_328, 28 * 28 * 163_328),
}


@pytest.mark.parametrize("name", sorted(TOTALS))
def test_zoo_totals(name):
    params, macs = TOTALS[name]
    totals = analyze(load_spec(name)).totals
    assert totals.params == params
    assert totals.macs == macs


def test_lenet5_totals_literal():
    assert TOTALS["lenet5"] == (61_706, 416_520)


def test_inception_totals_literal():
    assert TOTALS["inception-naive"] == (387_072, 303_464_448)
    assert TOTALS["inception-bottleneck"][1] == 128_049_152


# ---- LeNet-5 (1998)


LENET_1998_PARAMS = {
    "c1": 6 * 25 + 6,                       # 156
    "s2": 2 * 6,                            # 12: a coefficient and a bias per map
    # Table I: 6 maps see 3 inputs, 9 see 4, 1 sees 6: (6·3 + 9·4 + 6)·25 + 16 = 1,516
    "c3": (6 * 3 + 9 * 4 + 1 * 6) * 25 + 16,
    "s4": 2 * 16,                           # 32
    "c5": 16 * 25 * 120 + 120,              # 48,120
    "f6": 120 * 84 + 84,                    # 10,164
    "output": 84 * 10,                      # 840 RBF centres, fixed
}


@pytest.mark.parametrize("path", sorted(LENET_1998_PARAMS))
def test_lenet5_1998_layer_params(path):
    assert analyze(load_spec("lenet5-1998")).row(path).params == LENET_1998_PARAMS[path]


def test_lenet5_1998_paper_figures():
    analysis = analyze(load_spec("lenet5-1998"))
    assert LENET_1998_PARAMS["c3"] == 1_516 and LENET_1998_PARAMS["c5"] == 48_120
    # "60,000 trainable parameters"; the 840 RBF parameters are not trained
    assert analysis.totals.trainable_params == 60_000
    assert analysis.totals.params == 60_000 + 840
    assert analysis.row("output").trainable_params == 0
    # the paper's C3 has 151,600 connections: 1,516 trainable parameters at 10·10 positions;
    # MACs count the 1,500 weights there, biases excluded
    c3 = analysis.row("c3")
    assert c3.output == (16, 10, 10)
    assert 1_516 * 10 * 10 == 151_600
    assert c3.macs == 1_500 * 10 * 10
    # C5: 120 maps of 1×1; S2 6×14×14, S4 16×5×5
    assert analysis.row("c5").output == (120, 1, 1)
    assert analysis.row("s2").output == (6, 14, 14)
    assert analysis.row("s4").output == (16, 5, 5)


# ---- AlexNet


ALEXNET_LAYERS = {
    # name: (params, MACs), 227×227 input
    "conv1": (11 * 11 * 3 * 96 + 96, 55 * 55 * 96 * (11 * 11 * 3)),   # 34,944; 105,415,200
    "conv2": (5 * 5 * 96 * 256 + 256, 27 * 27 * 256 * (5 * 5 * 96)),
    "conv3": (3 * 3 * 256 * 384 + 384, 13 * 13 * 384 * (3 * 3 * 256)),
    "conv4": (3 * 3 * 384 * 384 + 384, 13 * 13 * 384 * (3 * 3 * 384)),
    "conv5": (3 * 3 * 384 * 256 + 256, 13 * 13 * 256 * (3 * 3 * 384)),
    "fc6": fc(256 * 6 * 6, 4096),
    "fc7": fc(4096, 4096),
    "fc8": fc(4096, 1000),
}


@pytest.mark.parametrize("path", sorted(ALEXNET_LAYERS))
def test_alexnet_layer_counts(path):
    row = analyze(load_spec("alexnet")).row(path)
    assert (row.params, row.macs) == ALEXNET_LAYERS[path]


def test_alexnet_conv1_literal():
    assert ALEXNET_LAYERS["conv1"] == (34_944, 105_415_200)


def test_alexnet_total_is_the_sum_of_its_layers():
    assert sum(p for p, _ in ALEXNET_LAYERS.values()) == TOTALS["alexnet"][0]
    assert sum(m for _, m in ALEXNET_LAYERS.values()) == TOTALS["alexnet"][1]


def test_alexnet_2gpu_grouped_layers():
    analysis = analyze(load_spec("alexnet-2gpu"))
    # each half of conv2 sees 48 of the 96 maps: 256·48·25 + 256
    assert analysis.row("conv2").params == 256 * 48 * 25 + 256
    assert analysis.row("conv4").params == 384 * 192 * 9 + 384
    assert analysis.row("conv5").params == 256 * 192 * 9 + 256
    # conv3 sees both halves
    assert analysis.row("conv3").params == ALEXNET_LAYERS["conv3"][0]
    # the grouping halves the weights of three layers
    saved = sum(ALEXNET_LAYERS[n][0] - analysis.row(n).params for n in ("conv2", "conv4", "conv5"))
    assert TOTALS["alexnet"][0] - saved == TOTALS["alexnet-2gpu"][0]


# ---- VGG and ResNet: the published numbers re-derived layer by layer


VGG_CONFIGS = {  # Simonyan & Zisserman Table 1, configurations A, B, D, E
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}


def vgg_by_hand(config: list) -> tuple[int, int]:
    params = macs = 0
    c_in, size = 3, 224
    for item in config:
        if item == "M":
            size //= 2
            continue
        p, m = conv(c_in, item, 3, size, bias=True)
        params, macs, c_in = params + p, macs + m, item
    for n_in, n_out in ((512 * 7 * 7, 4096), (4096, 4096), (4096, 1000)):
        p, m = fc(n_in, n_out)
        params, macs = params + p, macs + m
    return params, macs


@pytest.mark.parametrize("name", sorted(VGG_CONFIGS))
def test_vgg_published_figures_match_a_hand_derivation(name):
    assert vgg_by_hand(VGG_CONFIGS[name]) == TOTALS[name]


@pytest.mark.parametrize("name, gflops", [("vgg11", 7.61), ("vgg13", 11.31), ("vgg16", 15.47),
                                          ("vgg19", 19.63), ("resnet18", 1.81),
                                          ("resnet34", 3.66), ("resnet50", 4.09),
                                          ("resnet101", 7.80), ("resnet152", 11.51)])
def test_torchvision_gflops_column(name, gflops):
    # torchvision's model table lists GFLOPS (meaning multiply-adds) to two decimals
    assert round(analyze(load_spec(name)).totals.macs / 1e9, 2) == gflops


RESNET_STAGES = {
    "resnet18": ("basic", [2, 2, 2, 2]),
    "resnet34": ("basic", [3, 4, 6, 3]),
    "resnet50": ("bottleneck", [3, 4, 6, 3]),
    "resnet101": ("bottleneck", [3, 4, 23, 3]),
    "resnet152": ("bottleneck", [3, 8, 36, 3]),
}


def resnet_by_hand(block: str, counts: list[int]) -> tuple[int, int]:
    """torchvision's layout: BN (2C params) after every conv, stride on the first 3×3 of a
    stage, a 1×1 projection where the shape changes."""
    params, macs = conv(3, 64, 7, 112)
    params += 2 * 64
    c_in, size = 64, 56
    for stage, (width, n) in enumerate(zip([64, 128, 256, 512], counts)):
        for index in range(n):
            stride = 2 if stage > 0 and index == 0 else 1
            out_size = size // stride
            if block == "basic":
                layers = [(c_in, width, 3, out_size), (width, width, 3, out_size)]
                c_out = width
            else:
                layers = [(c_in, width, 1, size), (width, width, 3, out_size),
                          (width, 4 * width, 1, out_size)]
                c_out = 4 * width
            if stride != 1 or c_in != c_out:
                layers.append((c_in, c_out, 1, out_size))
            for a, b, k, s in layers:
                p, m = conv(a, b, k, s)
                params, macs = params + p + 2 * b, macs + m
            c_in, size = c_out, out_size
    p, m = fc(c_in, 1000)
    return params + p, macs + m


@pytest.mark.parametrize("name", sorted(RESNET_STAGES))
def test_resnet_published_figures_match_a_hand_derivation(name):
    assert resnet_by_hand(*RESNET_STAGES[name]) == TOTALS[name]


def test_resnet50_buffers():
    # 53 BN layers (stem, 3 per block × 16 blocks, 4 projections), each 2C + 1 buffers.
    # Channels: 64 + Σ blocks 6w + Σ projections 4w
    #         = 64 + 6·(3·64 + 4·128 + 6·256 + 3·512) + 4·(64 + 128 + 256 + 512) = 26,560
    channels = 64 + 6 * (3 * 64 + 4 * 128 + 6 * 256 + 3 * 512) + 4 * (64 + 128 + 256 + 512)
    assert channels == 26_560
    assert analyze(load_spec("resnet50")).totals.buffers == 2 * channels + 53 == 53_173


def test_resnet50_stage_outputs():
    analysis = analyze(load_spec("resnet50"))
    assert analysis.row("maxpool").output == (64, 56, 56)
    assert analysis.row("layer1").output == (256, 56, 56)
    assert analysis.row("layer2").output == (512, 28, 28)
    assert analysis.row("layer3").output == (1024, 14, 14)
    assert analysis.row("layer4").output == (2048, 7, 7)
    assert analysis.row("avgpool").output == (2048, 1, 1)


# ---- Inception modules


def test_inception_naive_5x5_branch():
    # 28·28 positions × 192 inputs × 5·5 × 32 maps = 120,422,400
    row = analyze(load_spec("inception-naive")).row("inception.b3")
    assert row.macs == 28 * 28 * 192 * 25 * 32 == 120_422_400
    assert row.params == 192 * 25 * 32


def test_inception_bottleneck_5x5_branch():
    # 1×1 to 16, then 5×5 to 32: 28·28·(192·16 + 16·25·32) = 12,443,648
    row = analyze(load_spec("inception-bottleneck")).row("inception.b3")
    assert row.macs == 28 * 28 * (192 * 16 + 16 * 25 * 32) == 12_443_648


# ---- GoogLeNet, Table 1


# c_in, size, then Table 1's #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj; and the
# "ops" column (millions)
GOOGLENET_MODULES = {
    "inception3a": (192, 28, (64, 96, 128, 16, 32, 32), 128),
    "inception3b": (256, 28, (128, 128, 192, 32, 96, 64), 304),
    "inception4a": (480, 14, (192, 96, 208, 16, 48, 64), 73),
    "inception4b": (512, 14, (160, 112, 224, 24, 64, 64), 88),
    "inception4c": (512, 14, (128, 128, 256, 24, 64, 64), 100),
    "inception4d": (512, 14, (112, 144, 288, 32, 64, 64), 119),
    "inception4e": (528, 14, (256, 160, 320, 32, 128, 128), 170),
    "inception5a": (832, 7, (256, 160, 320, 32, 128, 128), 54),
    "inception5b": (832, 7, (384, 192, 384, 48, 128, 128), 71),
}


def inception_weights(c_in: int, widths: tuple[int, ...]) -> int:
    c1, c3r, c3, c5r, c5, pp = widths
    return c_in * c1 + c_in * c3r + c3r * 9 * c3 + c_in * c5r + c5r * 25 * c5 + c_in * pp


@pytest.mark.parametrize("path", sorted(GOOGLENET_MODULES))
def test_googlenet_module_params_and_macs(path):
    c_in, size, widths, _ = GOOGLENET_MODULES[path]
    row = analyze(load_spec("googlenet")).row(path)
    # weights plus one bias per output map of each of the six convolutions
    assert row.params == inception_weights(c_in, widths) + sum(widths)
    assert row.macs == size * size * inception_weights(c_in, widths)
    # the concat's width: #1×1 + #3×3 + #5×5 + pool proj
    c1, _, c3, _, c5, pp = widths
    assert row.output == (c1 + c3 + c5 + pp, size, size)


# The paper's "ops" column agrees with its own widths to within its rounding, except 5a: its
# widths give 7·7·1,042,432 = 51.08M multiply-adds, not 54M (the 5a params entry, 1072K, is
# off from the 1,042K weights as well). The params column is not asserted at all: it does not
# agree with the ops column in places (conv1 "2.7K" for 7·7·3·64 = 9,408 weights; 4c "463K"
# for 509,440 weights, while its 100M ops match 14·14·509,440).
OPS_CONSISTENT = sorted(set(GOOGLENET_MODULES) - {"inception5a"})


@pytest.mark.parametrize("path", OPS_CONSISTENT)
def test_googlenet_paper_ops_column(path):
    _, _, _, ops = GOOGLENET_MODULES[path]
    macs = analyze(load_spec("googlenet")).row(path).macs
    assert abs(macs / 1e6 - ops) < 1


def test_googlenet_5a_ops_entry_is_off_by_its_own_widths():
    c_in, size, widths, ops = GOOGLENET_MODULES["inception5a"]
    assert size * size * inception_weights(c_in, widths) == 51_079_168
    assert analyze(load_spec("googlenet")).row("inception5a").macs == 51_079_168


def test_googlenet_conv2_ops():
    # Table 1's second "convolution" row (1×1 reduce to 64, 3×3 to 192) on 56×56: 360M
    analysis = analyze(load_spec("googlenet"))
    macs = analysis.row("conv2_reduce").macs + analysis.row("conv2").macs
    assert macs == 56 * 56 * (64 * 64 + 9 * 64 * 192)
    assert abs(macs / 1e6 - 360) < 1


GOOGLENET_SHAPES = [  # Table 1's "output size" column
    ("conv1", (64, 112, 112)),
    ("pool1", (64, 56, 56)),
    ("conv2", (192, 56, 56)),
    ("pool2", (192, 28, 28)),
    ("inception3a", (256, 28, 28)),
    ("inception3b", (480, 28, 28)),
    ("pool3", (480, 14, 14)),
    ("inception4a", (512, 14, 14)),
    ("inception4b", (512, 14, 14)),
    ("inception4c", (512, 14, 14)),
    ("inception4d", (528, 14, 14)),
    ("inception4e", (832, 14, 14)),
    ("pool4", (832, 7, 7)),
    ("inception5a", (832, 7, 7)),
    ("inception5b", (1024, 7, 7)),
    ("pool5", (1024, 1, 1)),
    ("fc", (1000,)),
]


@pytest.mark.parametrize("path, shape", GOOGLENET_SHAPES)
def test_googlenet_table1_shapes(path, shape):
    assert analyze(load_spec("googlenet")).row(path).output == shape


def test_googlenet_aux_heads():
    analysis = analyze(load_spec("googlenet"))
    # 5×5/3 average pool on 14×14: ⌊(14 − 5)/3⌋ + 1 = 4, so 128·4·4 = 2,048 features
    assert analysis.row("aux1.pool").output == (512, 4, 4)
    assert analysis.row("aux2.pool").output == (528, 4, 4)
    assert analysis.row("aux1.flatten").output == (2048,)
    aux1 = 512 * 128 + 128 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000
    aux2 = 528 * 128 + 128 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000
    assert analysis.row("aux1").params == aux1
    assert analysis.row("aux2").params == aux2
    assert analysis.totals.head_params == aux1 + aux2


def test_googlenet_totals():
    stem_params = (7 * 7 * 3 * 64 + 64) + (64 * 64 + 64) + (9 * 64 * 192 + 192)
    stem_macs = 112 * 112 * 7 * 7 * 3 * 64 + 56 * 56 * (64 * 64 + 9 * 64 * 192)
    modules_params = sum(inception_weights(c, w) + sum(w) for c, _, w, _ in GOOGLENET_MODULES.values())
    modules_macs = sum(s * s * inception_weights(c, w) for c, s, w, _ in GOOGLENET_MODULES.values())
    fc_params, fc_macs = fc(1024, 1000)
    totals = analyze(load_spec("googlenet")).totals
    assert totals.params - totals.head_params == stem_params + modules_params + fc_params
    assert totals.macs == stem_macs + modules_macs + fc_macs


# --------------------------------------------------------------------------------------------
# finding specs


def test_zoo_is_found_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_spec("alexnet").name == "alexnet"
    assert "resnet50" in zoo_names()


def test_unknown_name_suggests_close_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecNotFound) as info:
        load_spec("resnet5")
    assert "resnet50" in str(info.value)
    assert "'resnet5'" in str(info.value)


def test_unknown_name_with_nothing_close(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecNotFound, match="cnncalc list"):
        load_spec("qqqqqqqqqq")


MINE = "name: mine\ninput: 1x8x8\nlayers:\n  - conv: {out: 2, kernel: 3}\n"


def test_user_spec_by_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(MINE)
    for ref in (str(path), path):
        analysis = analyze(load_spec(ref))
        # 2·1·3·3 + 2 = 20 params; 6·6·2·9 = 648 MACs
        assert (analysis.totals.params, analysis.totals.macs) == (20, 648)


def test_user_spec_by_relative_path(tmp_path, monkeypatch):
    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "mine.yaml").write_text(MINE)
    monkeypatch.chdir(tmp_path)
    assert load_spec("nets/mine.yaml").name == "mine"
    assert load_spec(Path("nets") / "mine.yaml").input == (1, 8, 8)


def test_user_spec_name_defaults_to_the_file_stem(tmp_path):
    path = tmp_path / "stemmed.yaml"
    path.write_text("input: 1x8x8\nlayers: [relu]\n")
    assert load_spec(path).name == "stemmed"


def test_errors_in_a_user_spec_name_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("input: 1x8x8\nlayers:\n  - rleu\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}:3:")


def test_missing_spec_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "absent.yaml")


def test_a_directory_is_not_a_spec(tmp_path):
    with pytest.raises(SpecError, match="directory"):
        load_spec(tmp_path)


def test_non_utf8_spec_is_a_spec_error(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"input: 1x8x8\nlayers: [relu]\n# caf\xe9\n")
    with pytest.raises(SpecError, match="UTF-8"):
        load_spec(path)
