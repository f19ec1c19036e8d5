"""ONNX files as specs (cnncalc.importer.onnx_reader): round trips through torch.onnx.export.

The outside figures are the torch module's own: ``numel`` of its parameters and buffers,
fvcore's conv + linear multiply-adds (tests/backend/test_reference_models.py), and the shape of
its forward output. The import must give each exactly, reading nothing but the ONNX file. Small
graphs written here with ``onnx.helper`` check single ops against counts derived by hand.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")  # torch.onnx.export's (dynamo) exporter

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from cnncalc import analyze, load_spec  # noqa: E402
from cnncalc.cli import app  # noqa: E402
from cnncalc.importer.onnx_reader import from_onnx  # noqa: E402
from cnncalc.importer.write import to_yaml  # noqa: E402
from cnncalc.layers import REGISTRY  # noqa: E402
from cnncalc.spec import parse_spec  # noqa: E402
from tests import reference_models, torch_models  # noqa: E402
from tests.backend.test_reference_models import (  # noqa: E402
    conv_linear_macs,
    parameters_by_path,
)

np = pytest.importorskip("numpy")

MODELS = {  # name: (builder, per-sample input)
    "resnet50": (lambda: torch_models.build("resnet50"), (3, 224, 224)),
    "mobilenet-v2": (lambda: reference_models.build("mobilenet-v2"), (3, 224, 224)),
    "efficientnet-b0": (lambda: reference_models.build("efficientnet-b0"), (3, 224, 224)),
    "densenet121": (lambda: reference_models.build("densenet121"), (3, 224, 224)),
    "convnext-tiny": (lambda: reference_models.build("convnext-tiny"), (3, 224, 224)),
    "unet": (lambda: reference_models.build("unet"), (1, 572, 572)),
}


def export(model, shape, path, **options) -> str:
    """``torch.onnx.export`` of ``model`` on a zero input, quietly; the file's path."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, *shape),), str(path), **options)
    return str(path)


def module_figures(model, shape) -> tuple[int, int, int, tuple[int, ...]]:
    """The module's own parameters, buffers, fvcore conv + linear MACs and output shape."""
    x = torch.zeros(1, *shape)
    with torch.no_grad():
        y = model(x)
    return (sum(p.numel() for p in model.parameters()),
            sum(b.numel() for b in model.buffers()),
            conv_linear_macs(model, x), tuple(y.shape[1:]))


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """``exports(name)``: (module, input shape, ONNX file), each model exported once by torch's
    default (dynamo) exporter without its optimiser, which would fuse batch norm into the
    convolutions (then the file holds other parameters than the module)."""
    done: dict[str, tuple] = {}

    def get(name: str) -> tuple:
        if name not in done:
            build, shape = MODELS[name]
            model = build()
            path = export(model, shape, tmp_path_factory.mktemp("onnx") / f"{name}.onnx",
                          optimize=False, external_data=False)
            done[name] = (model, shape, path)
        return done[name]

    return get


@pytest.fixture(params=sorted(MODELS))
def exported(request, exports):
    return (request.param, *exports(request.param))


def totals(spec) -> tuple[int, int, int, tuple[int, ...]]:
    analysis = analyze(spec)
    t = analysis.totals
    return t.params, t.buffers, t.macs, analysis.output


def test_round_trip_equals_the_module(exported):
    name, model, shape, path = exported
    assert totals(load_spec(path)) == module_figures(model, shape)


def test_layer_paths_are_module_paths(exported):
    """Every row with parameters is the module of that name with those parameters, so
    ``layer3.2.conv1`` of the import is the model's ``layer3.2.conv1``."""
    name, model, _, path = exported
    rows = [r for r in analyze(load_spec(path)).rows if r.leaf and r.params]
    assert {r.path: r.params for r in rows} == parameters_by_path(model)


def test_folded_and_flat_writing_analyse_alike(exported):
    _, _, _, path = exported
    model = from_onnx(path)
    folded, flat = to_yaml(model), to_yaml(model, fold=False)
    assert "blocks:" in folded and "blocks:" not in flat

    def rows(text):
        return [(r.path, r.leaf, r.output, r.params, r.buffers, r.macs) + ((r.kind, r.input)
                if r.leaf else ()) for r in analyze(parse_spec(text, path, "m")).rows]

    assert rows(folded) == rows(flat)
    assert len(folded.splitlines()) < len(flat.splitlines()) / 1.5


@pytest.fixture(scope="module")
def resnet50_onnx(tmp_path_factory):
    model = torch_models.build("resnet50")
    return model, export(model, (3, 224, 224), tmp_path_factory.mktemp("r50") / "r50.onnx",
                         optimize=False, external_data=False)


def test_resnet50_reads_like_the_zoo_spec(resnet50_onnx):
    """Two bottleneck blocks (with and without the projection shortcut), a use per stage's
    first block and a repeat for the rest: not 16 pasted copies."""
    _, path = resnet50_onnx
    text = to_yaml(from_onnx(path))
    blocks = text.split("\nlayers:\n")[0].split("\nblocks:\n")[1]
    names = [line.strip()[:-1] for line in blocks.splitlines()
             if line.startswith("  ") and not line.startswith("   ")]
    assert names == ["bottleneck", "bottleneck_downsample"]
    top = text.split("\nlayers:\n")[1]
    assert top.count("bottleneck_downsample: {name: \"0\"") == 4
    assert top.count("- repeat: {times: ") == 4  # layer1: 2, layer2: 3, layer3: 5, layer4: 2
    for times, width in ((2, 64), (3, 128), (5, 256), (2, 512)):
        assert f"repeat: {{times: {times}, layers: [bottleneck: {{width: {width}}}]}}" in top
    assert text.count("conv: {name: conv2,") == 2  # once per block definition
    assert "${width * 4}" in blocks


def test_legacy_exporter_keeping_batch_norm(resnet50_onnx, tmp_path):
    """The TorchScript exporter names nodes /layer1/layer1.0/conv1/Conv and shares equal
    initializers through Identity nodes; without constant folding it keeps batch norm."""
    model, _ = resnet50_onnx
    path = export(model, (3, 224, 224), tmp_path / "legacy.onnx", dynamo=False,
                  do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE)
    spec = load_spec(path)
    assert totals(spec) == module_figures(model, (3, 224, 224))
    rows = [r for r in analyze(spec).rows if r.leaf and r.params]
    assert {r.path: r.params for r in rows} == parameters_by_path(model)


def _small_net() -> torch.nn.Module:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 3, stride=2, bias=False),
        torch.nn.BatchNorm2d(16), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(16, 10))
    for m in net:  # trained-looking statistics, so that fused biases are not zero
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 2)
            m.bias.data.uniform_(-1, 1)
    return net.eval()


@pytest.mark.parametrize("options", [{"dynamo": False}, {}], ids=["legacy", "dynamo"])
def test_a_file_with_batch_norm_fused_counts_what_it_holds(tmp_path, options):
    """Exported in eval mode with the exporters' optimisations, batch norm is folded into the
    convolutions: each convolution gets a bias of its output channels, and no batch norm is
    left. Hand count: 3·8·9 + 8, 8·16·9 + 16, 16·10 + 10."""
    net = _small_net()
    path = export(net, (3, 16, 16), tmp_path / "fused.onnx", **options)
    params, buffers, macs, out = totals(load_spec(path))
    assert params == (3 * 8 * 9 + 8) + (8 * 16 * 9 + 16) + (16 * 10 + 10)
    assert buffers == 0
    assert macs == conv_linear_macs(net, torch.zeros(1, 3, 16, 16))
    assert out == (10,)


# --------------------------------------------------------------------------------------------
# Single ops, written with onnx.helper: counts derived by hand


def _graph_file(tmp_path, nodes, inits, in_shape, out_name, opset=17, name="g.onnx",
                out_shape=None):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(np.asarray(v, dtype=np.float32 if k != "int" else np.int64),
                                 k2) for k2, (k, v) in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path = tmp_path / name
    onnx.save(model, str(path))
    return str(path)


def _f(*shape):
    return ("f", np.zeros(shape))


def _i(*values):
    return ("int", np.array(values))


def _rows(path, **options):
    analysis = analyze(parse_spec(to_yaml(from_onnx(path, **options)), path, "g"))
    return analysis, [r for r in analysis.rows if r.leaf]


def test_tensorflow_same_padding_is_same(tmp_path):
    # TensorFlow's 'same' at stride 2 on an even size pads 0 before, 1 after
    path = _graph_file(tmp_path, [helper.make_node(
        "Conv", ["x", "w", "b"], ["y"], name="conv", kernel_shape=[3, 3], strides=[2, 2],
        pads=[0, 0, 1, 1])], {"w": _f(8, 3, 3, 3), "b": _f(8)}, [1, 3, 32, 32], "y")
    analysis, rows = _rows(path)
    assert [(r.kind, r.output) for r in rows] == [("conv", (8, 16, 16))]  # ⌈32/2⌉
    assert "padding: same" in to_yaml(from_onnx(path))
    assert analysis.totals.params == 8 * 3 * 9 + 8
    assert analysis.totals.macs == 16 * 16 * 8 * 3 * 9


def test_other_asymmetric_conv_padding_is_a_pad_layer_in_front(tmp_path):
    path = _graph_file(tmp_path, [helper.make_node(
        "Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 3], pads=[1, 2, 0, 0])],
        {"w": _f(8, 3, 3, 3)}, [1, 3, 10, 10], "y")
    analysis, rows = _rows(path)
    assert [(r.path, r.kind) for r in rows] == [("conv_pad", "pad"), ("conv", "conv")]
    assert rows[0].output == (3, 11, 12)  # 1 row before, 2 columns before
    assert rows[1].output == (8, 9, 10)
    assert analysis.totals.macs == 9 * 10 * 8 * 3 * 9


def test_auto_pad_same_upper_and_grouped_conv(tmp_path):
    path = _graph_file(tmp_path, [helper.make_node(
        "Conv", ["x", "w"], ["y"], name="dw", kernel_shape=[3, 3], group=4,
        auto_pad="SAME_UPPER")], {"w": _f(4, 1, 3, 3)}, [1, 4, 10, 10], "y")
    analysis, rows = _rows(path)
    assert rows[0].output == (4, 10, 10)
    assert analysis.totals.params == 4 * 9  # depthwise, no bias


def test_activations_gemm_and_pooling(tmp_path):
    nodes = [
        helper.make_node("Clip", ["x", "lo", "hi"], ["a"], name="clip"),
        helper.make_node("Sigmoid", ["a"], ["s"], name="sig"),
        helper.make_node("Mul", ["a", "s"], ["b"], name="swish"),
        helper.make_node("HardSwish", ["b"], ["c"], name="hs"),
        helper.make_node("ReduceMean", ["c", "axes"], ["d"], name="mean", keepdims=0),
        helper.make_node("Gemm", ["d", "w", "bias"], ["y"], name="fc", transB=1),
    ]
    inits = {"lo": ("f", np.array(0.0)), "hi": ("f", np.array(6.0)), "axes": _i(2, 3),
             "w": _f(5, 4), "bias": _f(5)}
    path = _graph_file(tmp_path, nodes, inits, [1, 4, 6, 6], "y", opset=18)
    analysis, rows = _rows(path)
    assert [r.kind for r in rows] == ["relu6", "silu", "hardswish", "global_avgpool",
                                      "flatten", "linear"]
    assert analysis.totals.params == 4 * 5 + 5 and analysis.totals.macs == 20
    assert analysis.output == (5,)


def test_matmul_and_add_is_a_linear_with_bias(tmp_path):
    nodes = [helper.make_node("Flatten", ["x"], ["f"], name="flat"),
             helper.make_node("MatMul", ["f", "w"], ["m"], name="mm"),
             helper.make_node("Add", ["m", "b"], ["y"], name="add")]
    path = _graph_file(tmp_path, nodes, {"w": _f(12, 7), "b": _f(7)}, [1, 3, 2, 2], "y")
    analysis, rows = _rows(path)
    assert [r.kind for r in rows] == ["flatten", "linear"]
    assert analysis.totals.params == 12 * 7 + 7


def test_resize_pad_and_concat(tmp_path):
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["u"], name="up", mode="nearest"),
             helper.make_node("Pad", ["u", "pads"], ["p"], name="pad", mode="reflect"),
             helper.make_node("Concat", ["p", "p"], ["y"], name="cat", axis=1)]
    inits = {"scales": ("f", np.array([1, 1, 2, 2])), "pads": _i(0, 0, 1, 2, 0, 0, 1, 2)}
    path = _graph_file(tmp_path, nodes, inits, [1, 3, 5, 5], "y")
    analysis, rows = _rows(path)
    assert [r.kind for r in rows] == ["upsample", "pad", "concat"]
    assert rows[0].output == (3, 10, 10) and rows[1].output == (3, 12, 14)
    assert analysis.output == (6, 12, 14)


def test_batch_norm_sizes_are_checked(tmp_path):
    path = _graph_file(tmp_path, [helper.make_node(
        "BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn")],
        {"s": _f(4), "b": _f(4), "m": _f(4), "v": _f(3)}, [1, 4, 2, 2], "y")
    with pytest.raises(Exception) as info:
        from_onnx(path)
    assert "ONNX node bn (BatchNormalization) has a var of 3 values for 4 channels" in \
        str(info.value)


# --------------------------------------------------------------------------------------------
# Refusals: one line, exit status 2


def _unknown_op_file(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Transpose", ["r"], ["t"], name="/blocks/perm/Transpose",
                              perm=[0, 1, 3, 2]),  # H and W swapped
             helper.make_node("Relu", ["t"], ["y"], name="relu2")]
    return _graph_file(tmp_path, nodes, {}, [1, 3, 4, 5], "y")


def _one_line_error(args):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_an_unknown_op_names_its_node(tmp_path):
    path = _unknown_op_file(tmp_path)
    line = _one_line_error(["table", path])
    assert "cannot import: ONNX node /blocks/perm/Transpose (Transpose) has no cnncalc layer " \
           "kind" in line and "--allow-unknown" in line


def test_allow_unknown_makes_a_placeholder(tmp_path):
    model = from_onnx(_unknown_op_file(tmp_path), allow_unknown=True)
    [placeholder] = [layer for layer in model.layers if layer.kind == "placeholder"]
    assert placeholder.config == {"op": "Transpose", "shape": [3, 5, 4]}
    assert any("Transpose" in note for note in model.notes)
    analysis = analyze(parse_spec(to_yaml(model), "g", "g"))
    assert analysis.output == (3, 5, 4)


@pytest.mark.parametrize("content", [b"", b"\x00\x01garbage\xff" * 10],
                         ids=["empty", "garbage"])
def test_not_an_onnx_file(tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    assert "not an ONNX model" in _one_line_error(["table", str(path)])


def test_a_truncated_file(tmp_path, resnet50_onnx):
    _, good = resnet50_onnx
    path = tmp_path / "cut.onnx"
    path.write_bytes(open(good, "rb").read()[:5000])
    line = _one_line_error(["table", str(path)])
    assert f"{path}: not an ONNX model" in line


def test_symbolic_batch_is_fine_but_symbolic_sizes_need_input(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="c", kernel_shape=[3, 3])]
    batch = _graph_file(tmp_path, nodes, {"w": _f(2, 3, 3, 3)}, ["N", 3, 8, 8], "y",
                        name="batch.onnx")
    assert analyze(load_spec(batch)).output == (2, 6, 6)
    sizes = _graph_file(tmp_path, nodes, {"w": _f(2, 3, 3, 3)}, ["N", 3, "H", "W"], "y",
                        name="sizes.onnx")
    line = _one_line_error(["table", sizes])
    assert "symbolic sizes (H, W)" in line and "--input 3xHxW" in line
    assert from_onnx(sizes, input_shape=(3, 20, 10)).input_shape == (3, 20, 10)
    spec = parse_spec(to_yaml(from_onnx(sizes, input_shape="3x20x10")), sizes, "s")
    assert analyze(spec).output == (2, 18, 8)


# --------------------------------------------------------------------------------------------
# A real process


def test_table_of_an_onnx_file_in_a_process(resnet50_onnx):
    _, path = resnet50_onnx
    proc = subprocess.run([sys.executable, "-m", "cnncalc", "table", path, "--format", "json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    import json

    data = json.loads(proc.stdout)
    assert data["totals"]["params"] == 25_557_032  # torchvision's published ResNet-50
    assert data["totals"]["macs"] == 4_089_184_256


def test_channels_last_segment_as_convnext_writes_it(tmp_path):
    """ConvNeXt's block: permute to N×H×W×C, LayerNorm over C, Linear C→4C, GELU, Linear
    4C→C, permute back, scale per channel, add the input. Followed as the channels-first
    tensor: a layer norm over channels (2·8), two 1×1 convolutions (8·32 + 32, 32·8 + 8,
    MACs 5·5·(8·32 + 32·8)) and a layer scale (8)."""
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], name="perm", perm=[0, 2, 3, 1]),
        helper.make_node("LayerNormalization", ["t", "g", "b"], ["n"], name="norm", axis=-1),
        helper.make_node("Transpose", ["w1"], ["w1t"], name="w1t", perm=[1, 0]),
        helper.make_node("MatMul", ["n", "w1t"], ["m1"], name="pw1"),
        helper.make_node("Add", ["m1", "b1"], ["a1"], name="pw1_bias"),
        helper.make_node("Gelu", ["a1"], ["ge"], name="gelu"),
        helper.make_node("MatMul", ["ge", "w2"], ["m2"], name="pw2"),
        helper.make_node("Add", ["m2", "b2"], ["a2"], name="pw2_bias"),
        helper.make_node("Transpose", ["a2"], ["back"], name="unperm", perm=[0, 3, 1, 2]),
        helper.make_node("Mul", ["gamma", "back"], ["s"], name="scale"),
        helper.make_node("Add", ["s", "x"], ["y"], name="residual"),
    ]
    inits = {"g": _f(8), "b": _f(8), "w1": _f(32, 8), "b1": _f(32), "w2": _f(32, 8),
             "b2": _f(8), "gamma": _f(8, 1, 1)}
    path = _graph_file(tmp_path, nodes, inits, [1, 8, 5, 5], "y", opset=20)
    analysis, rows = _rows(path)
    assert [r.kind for r in rows] == ["layernorm", "conv", "gelu", "conv", "layer_scale", "add"]
    assert analysis.totals.params == 2 * 8 + (8 * 32 + 32) + (32 * 8 + 8) + 8
    assert analysis.totals.macs == 25 * (8 * 32 + 32 * 8)
    assert analysis.output == (8, 5, 5)


def test_other_ops_on_a_channels_last_tensor_are_refused(tmp_path):
    nodes = [helper.make_node("Transpose", ["x"], ["t"], name="perm", perm=[0, 2, 3, 1]),
             helper.make_node("MaxPool", ["t"], ["y"], name="pool", kernel_shape=[2, 2])]
    path = _graph_file(tmp_path, nodes, {}, [1, 3, 4, 4], "y")
    assert "ONNX node pool (MaxPool) has no cnncalc layer kind (MaxPool on a channels-last " \
           "tensor" in _one_line_error(["table", path])


def test_a_translation_that_disagrees_with_the_file_is_refused(tmp_path):
    """Every layer's shape is checked against the one ONNX shape inference gives: were a
    rule wrong, the import would say so instead of counting a different network."""
    from cnncalc.errors import SpecError
    from cnncalc.importer import check_shapes

    path = _graph_file(tmp_path, [helper.make_node(
        "Conv", ["x", "w"], ["y"], name="c", kernel_shape=[3, 3])], {"w": _f(2, 3, 3, 3)},
        [1, 3, 8, 8], "y")
    model = from_onnx(path)
    assert model.layers[0].shape == (2, 6, 6)  # ⌊(8 − 3)/1⌋ + 1
    model.layers[0].shape = (2, 7, 7)
    with pytest.raises(SpecError, match=r"ONNX node c \(Conv\) makes 2×7×7 per sample, but its "
                                        r"cnncalc layer c \(conv\) makes 2×6×6"):
        check_shapes(model, analyze(parse_spec(to_yaml(model), path, "g")))


def test_unet_crops_are_one_layer_each(exports):
    _, _, path = exports("unet")
    crops = [r for r in analyze(load_spec(path)).rows if r.leaf and r.kind == "crop"]
    assert [r.output[1:] for r in crops] == [(56, 56), (104, 104), (200, 200), (392, 392)]


# --------------------------------------------------------------------------------------------
# docs/import-onnx.md's refusals are what the tool prints


def _doc_files(folder) -> None:
    """The files whose refusals docs/import-onnx.md shows, by the names it shows."""

    def save(name, nodes, inits, shape, inputs=None):
        ins = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)]
        graph = helper.make_graph(
            nodes, "g", ins, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            [numpy_helper.from_array(np.zeros(v, np.float32), k) for k, v in inits.items()])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
                  str(folder / name))

    node = helper.make_node
    save("unknown.onnx", [node("Conv", ["x", "w"], ["c"], name="/stem/conv/Conv",
                               kernel_shape=[3, 3]), node("Erf", ["c"], ["y"], name="/head/Erf")],
         {"w": (4, 3, 3, 3)}, [1, 3, 8, 8])
    save("symbolic.onnx", [node("Relu", ["x"], ["y"], name="relu")], {}, ["N", 3, "H", "W"])
    save("pool.onnx", [node("MaxPool", ["x"], ["y"], name="/pool/MaxPool", kernel_shape=[2, 2],
                            pads=[0, 0, 1, 1])], {}, [1, 3, 8, 8])
    save("bn.onnx", [node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"],
                          name="/bn/BatchNormalization")],
         {"s": (3,), "b": (3,), "m": (3,), "v": (4,)}, [1, 3, 8, 8])
    two = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 8, 8]) for n in "xz"]
    save("twoin.onnx", [node("Add", ["x", "z"], ["y"], name="add")], {}, None, inputs=two)
    save("matmul.onnx", [node("MatMul", ["x", "x"], ["y"], name="/attn/MatMul")], {},
         [1, 3, 8, 8])
    save("last.onnx", [node("Transpose", ["x"], ["t"], name="/perm", perm=[0, 2, 3, 1]),
                       node("MaxPool", ["t"], ["y"], name="/pool/MaxPool", kernel_shape=[2, 2])],
         {}, [1, 3, 8, 8])
    (folder / "garbage.onnx").write_bytes(b"this is not protobuf\xff\xfe" * 4)
    save("big.onnx", [node("Conv", ["x", "w"], ["y"], name="c", kernel_shape=[3, 3])],
         {"w": (64, 64, 3, 3)}, [1, 64, 8, 8])
    (folder / "truncated.onnx").write_bytes((folder / "big.onnx").read_bytes()[:4096])


def _doc_refusals() -> list[tuple[str, str]]:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "import-onnx.md").read_text()
    return re.findall(r"^\| [^|`]+ \| `cnncalc: error: ([\w-]+\.onnx): (.*)` \|$", text, re.M)


def test_docs_show_each_refusal_as_printed(tmp_path, monkeypatch):
    rows = _doc_refusals()
    assert len(rows) == 9
    _doc_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    for name, message in rows:
        assert _one_line_error(["table", name]) == f"cnncalc: error: {name}: {message}"


def test_split_casts_and_quantized_weights(tmp_path):
    """A channel split is a slice per part; casts and (de)quantization are no layer, and a
    dequantized stored weight is still the layer's weight: 4·2·1 + 4 parameters."""
    nodes = [
        helper.make_node("Cast", ["x"], ["h"], name="to_half", to=TensorProto.FLOAT16),
        helper.make_node("Split", ["h", "parts"], ["a", "b"], name="split", axis=1),
        helper.make_node("DequantizeLinear", ["wq", "scale"], ["w"], name="dq"),
        helper.make_node("Conv", ["b", "w", "bias"], ["c"], name="conv", kernel_shape=[1, 1]),
        helper.make_node("Concat", ["a", "c"], ["y"], name="cat", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, None)],
        [numpy_helper.from_array(np.array([4, 2], np.int64), "parts"),
         numpy_helper.from_array(np.zeros((4, 2, 1, 1), np.int8), "wq"),
         numpy_helper.from_array(np.array(0.1, np.float32), "scale"),
         numpy_helper.from_array(np.zeros(4, np.float32), "bias")])
    path = tmp_path / "q.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    analysis, rows = _rows(str(path))
    assert [(r.path, r.kind, r.output) for r in rows] == [
        ("split", "slice", (4, 4, 4)), ("split_1", "slice", (2, 4, 4)),
        ("conv", "conv", (4, 4, 4)), ("cat", "concat", (8, 4, 4))]
    assert analysis.totals.params == 4 * 2 + 4


def test_docs_show_the_real_import_of_resnet50(resnet50_onnx, tmp_path, monkeypatch):
    """docs/import-onnx.md's example is what the import writes for the exported ResNet-50."""
    import shutil
    from pathlib import Path

    _, path = resnet50_onnx
    shutil.copy(path, tmp_path / "resnet50.onnx")
    monkeypatch.chdir(tmp_path)
    text = (Path(__file__).resolve().parent.parent / "docs" / "import-onnx.md").read_text()
    shown = text.split("$ cnncalc import resnet50.onnx\n", 1)[1].split("```", 1)[0]
    assert shown == to_yaml(from_onnx("resnet50.onnx"))
