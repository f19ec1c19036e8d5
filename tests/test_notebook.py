"""The notebook API: short reprs, _repr_html_ showing the table, to_pandas() (docs/api.md)."""

from __future__ import annotations

import pytest

from cnncalc import analyze, compare, load_spec
from cnncalc.memory import memory

pandas = pytest.importorskip("pandas")


def test_the_repr_is_short():
    analysis = analyze(load_spec("resnet152"))
    text = repr(analysis)
    assert len(text) < 200
    assert text.startswith("<Analysis 'resnet152': input 3×224×224, batch 1, fp32; 523 rows")
    assert "60,192,808" in text and "3 warning(s)" in text
    assert len(repr(memory(analyze(load_spec("resnet18"))))) < 200
    pair = compare([analyze(load_spec("inception-naive")), analyze(load_spec("inception-bottleneck"))])
    assert repr(pair) == "<Comparison of 'inception-naive', 'inception-bottleneck': 8 matching rows>"


def test_html_shows_the_table_escaped():
    analysis = analyze(load_spec("alexnet"), input="3x224x224")
    html = analysis._repr_html_()
    assert html.startswith('<div class="cnncalc"><table><caption>alexnet: AlexNet')
    assert "<td" in html and "conv1" in html and "62.4M" not in html  # 224: 50.8M
    assert "50.8M" in html and "warning: conv1" in html
    pair = compare([analysis, analyze(load_spec("alexnet-2gpu"), input="3x224x224")])
    assert "<table>" in pair._repr_html_()
    assert "<table>" in memory(analysis)._repr_html_()


def test_to_pandas_has_a_column_per_figure():
    analysis = analyze(load_spec("resnet50"), batch=2)
    frame = analysis.to_pandas()
    assert len(frame) == len(analysis.at_depth(None))
    assert frame["params"].sum() == analysis.totals.params
    assert frame["macs"].sum() == analysis.totals.macs
    first = frame.iloc[0]
    assert (first["path"], first["output_c"], first["output_h"], first["output_w"]) == (
        "conv1", 64, 112, 112)
    assert pandas.isna(frame.iloc[-1]["output_h"])  # fc's output is a vector
    assert set(frame["spec"]) == {"resnet50"} and set(frame["batch"]) == {2}
    assert list(analysis.to_pandas(depth=1)["path"])[:5] == ["conv1", "bn1", "relu", "maxpool",
                                                             "layer1"]


def test_comparison_and_memory_to_pandas():
    pair = compare([analyze(load_spec("inception-naive")), analyze(load_spec("inception-bottleneck"))])
    frame = pair.to_pandas()
    assert list(frame.columns) == ["path", "inception-naive_macs", "inception-bottleneck_macs",
                                   "inception-naive_params", "inception-bottleneck_params"]
    report = memory(analyze(load_spec("resnet18")))
    assert len(report.to_pandas()) == len(report.layers)
