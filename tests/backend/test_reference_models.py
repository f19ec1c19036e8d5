"""The plain-torch reference models (tests/reference_models.py) reproduce the published figures.

The figures are torchvision's published parameter counts and GFLOPS (fvcore's conv + linear
multiply-adds, ×1e9) for MobileNetV2, EfficientNet-B0, ConvNeXt-Tiny and DenseNet-121, and
Ronneberger et al. 2015 for the U-Net. Buffers are batch norm's running_mean + running_var +
num_batches_tracked. They are the outside source the zoo specs are checked against: a reference
that disagrees with them is wrong, not the table.
"""

from __future__ import annotations

import warnings

import pytest

from tests import reference_models

torch = pytest.importorskip("torch")

# name: (params, buffers, conv + linear MACs, output per sample)
FIGURES = {
    "mobilenet-v2": (3_504_872, 34_164, 300_774_272, (1000,)),
    "efficientnet-b0": (5_288_548, 42_065, 385_814_752, (1000,)),
    "convnext-tiny": (28_589_128, 0, 4_455_531_264, (1000,)),
    "densenet121": (7_978_856, 83_769, 2_834_161_664, (1000,)),
    "unet": (31_030_658, 0, 150_428_424_448, (2, 388, 388)),
}

# fvcore's by_operator keys that are multiply-adds of convolutions (transposed too) and linears
MAC_OPERATORS = ("conv", "linear", "addmm", "matmul")


def fvcore_by_operator(model, x) -> dict[str, int]:
    """FlopCountAnalysis(model, x).by_operator(), quietly."""
    fvcore_nn = pytest.importorskip("fvcore.nn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = fvcore_nn.FlopCountAnalysis(model, x)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        return dict(analysis.by_operator())


def conv_linear_macs(model, x) -> int:
    ops = fvcore_by_operator(model, x)
    return sum(int(ops.get(op, 0)) for op in MAC_OPERATORS)


@pytest.fixture(scope="module", params=sorted(FIGURES))
def reference(request):
    name = request.param
    model = reference_models.build(name)
    return name, model, torch.zeros(1, *reference_models.input_shape(name))


def test_params(reference):
    name, model, _ = reference
    assert sum(p.numel() for p in model.parameters()) == FIGURES[name][0]


def test_buffers(reference):
    name, model, _ = reference
    assert sum(b.numel() for b in model.buffers()) == FIGURES[name][1]


def test_conv_linear_macs_by_fvcore(reference):
    name, model, x = reference
    assert conv_linear_macs(model, x) == FIGURES[name][2]


def test_output_shape(reference):
    name, model, x = reference
    with torch.no_grad():
        y = model(x)
    assert tuple(y.shape) == (1, *FIGURES[name][3])


def test_unet_macs_count_transposed_convolutions_on_their_input():
    """fvcore counts a ConvTranspose2d as batch · prod(weight.shape) · prod(input spatial): for a
    2×2/2 up-convolution that is the true multiply count (each input pixel meets each weight
    once). The published total holds under that rule only; counting on the output's spatial size
    (as for a forward convolution) would add three times the up-convolutions' share."""
    model = reference_models.build("unet")
    ups = {  # up-convolution: (input side, c_in, c_out)
        "upconv4": (28, 1024, 512), "upconv3": (52, 512, 256),
        "upconv2": (100, 256, 128), "upconv1": (196, 128, 64),
    }
    for name, (side, cin, cout) in ups.items():
        assert getattr(model, name).weight.shape == (cin, cout, 2, 2)
    transposed = sum(side * side * cin * cout * 4 for side, cin, cout in ups.values())
    assert transposed == 5_631_377_408
    _, _, macs, _ = FIGURES["unet"]
    total = conv_linear_macs(model, torch.zeros(1, 1, 572, 572))
    assert total == macs  # under the output-spatial rule it would be macs + 3 · transposed
