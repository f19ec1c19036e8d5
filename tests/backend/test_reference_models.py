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
from tests.test_zoo_modern import FIGURES  # (params, buffers, MACs, output): the outside source

torch = pytest.importorskip("torch")

# fvcore's by_operator keys that are multiply-adds of convolutions (transposed too) and linears
MAC_OPERATORS = ("conv", "linear", "addmm", "matmul")


def fvcore_by_operator(model, x) -> dict[str, int]:
    """FlopCountAnalysis(model, x).by_operator(), quietly."""
    return dict(_fvcore(model, x, "by_operator"))


def fvcore_by_module(model, x) -> dict[str, int]:
    """FlopCountAnalysis(model, x).by_module(), quietly."""
    return dict(_fvcore(model, x, "by_module"))


def _fvcore(model, x, method: str):
    fvcore_nn = pytest.importorskip("fvcore.nn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = fvcore_nn.FlopCountAnalysis(model, x)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        return getattr(analysis, method)()


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


def parameters_by_path(model) -> dict[str, int]:
    """Each module's own parameters by its name; a parameter that is not a weight or bias
    (ConvNeXt's layer_scale) under its own dotted name, as the spec has a layer for it."""
    found: dict[str, int] = {}
    for module_name, module in model.named_modules():
        for name, p in module.named_parameters(recurse=False):
            key = module_name if name in ("weight", "bias") else f"{module_name}.{name}"
            found[key] = found.get(key, 0) + p.numel()
    return found


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_spec_rows_are_the_reference_modules(name):
    """The zoo spec's rows with parameters are the reference's modules, path for path (so
    ``verify --against`` pairs them), with the same parameters; rows with multiply-adds have
    fvcore's count for that module (ConvNeXt's pointwise nn.Linear layers are 1×1 convolutions in
    the spec: the same count)."""
    from cnncalc import analyze, load_spec

    model = reference_models.build(name)
    rows = [r for r in analyze(load_spec(name)).rows if r.leaf]
    assert {r.path: r.params for r in rows if r.params} == parameters_by_path(model)
    by_module = fvcore_by_module(model, torch.zeros(1, *reference_models.input_shape(name)))
    assert {r.path: r.macs for r in rows if r.macs} == {
        r.path: by_module[r.path] for r in rows if r.macs}
