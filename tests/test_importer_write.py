"""The importer's writer: nesting along module paths, tensor names only where needed."""

from cnncalc.engine import analyze
from cnncalc.importer import ImportedLayer as L
from cnncalc.importer import ImportedModel
from cnncalc.importer.write import scalar, to_yaml
from cnncalc.spec import parse_spec


def _residual_model() -> ImportedModel:
    return ImportedModel("x.py:f", (3, 32, 32), [
        L("conv1", "conv", {"out": 8, "kernel": [3, 3], "padding": [1, 1], "bias": False},
          ["input"], "t1"),
        L("bn1", "batchnorm", {}, ["t1"], "t2"),
        L("layer1.0.conv1", "conv", {"out": 8, "kernel": 3, "padding": 1}, ["t2"], "t3"),
        L("layer1.0.relu", "relu", {}, ["t3"], "t4"),
        L("layer1.0.add", "add", {}, ["t4", "t2"], "t5"),
        L("pool", "global_avgpool", {}, ["t5"], "t6"),
    ])


def test_paths_are_module_paths_and_counts_follow_the_kind_rules():
    analysis = analyze(parse_spec(to_yaml(_residual_model()), "x", "x"))
    rows = {row.path: row for row in analysis.rows}
    # conv1: 3·8·3·3 weights, no bias; bn1: 2·8; layer1.0.conv1: 8·8·3·3 + 8
    assert rows["conv1"].params == 216
    assert rows["bn1"].params == 16
    assert rows["layer1.0.conv1"].params == 584
    assert rows["layer1.0.add"].output == (8, 32, 32)
    assert analysis.rows[-1].output == (8, 1, 1)


def test_only_tensors_read_out_of_order_are_named():
    text = to_yaml(_residual_model())
    assert "as: bn1" in text and "with: bn1" in text
    assert text.count(" as: ") == 1
    assert "kernel: 3," in text  # equal per-axis values are written once


def test_scalars_read_back_as_themselves():
    assert scalar("0") == '"0"' and scalar("yes") == '"yes"' and scalar("conv1") == "conv1"
    assert scalar([1, 7]) == "[1, 7]" and scalar(False) == "false"
