"""The placeholder kind: an imported op with no layer kind, counted as nothing and said so."""

import pytest

from cnncalc.engine import analyze
from cnncalc.render import Numbers, footer_lines
from cnncalc.spec import SpecError, parse_spec

TEXT = """input: 3x8x8
layers:
  - conv: {out: 4, kernel: 3, bias: false}
  - placeholder: {op: torch.matmul, shape: 4x6x6}
  - placeholder: {op: torch.topk, shape: [4, 2, 2]}
  - placeholder: {op: torch.matmul, shape: 4x2x2}
  - flatten
"""


def test_output_is_the_traced_shape_and_nothing_is_counted():
    a = analyze(parse_spec(TEXT, "p.yaml", "p"))
    rows = {r.path: r for r in a.rows}
    assert rows["1"].output == (4, 6, 6) and rows["2"].output == (4, 2, 2)
    assert all(rows[p].params == rows[p].buffers == rows[p].macs == 0 for p in ("1", "2", "3"))
    assert a.totals.params == 3 * 3 * 3 * 4  # the conv's weights alone
    assert a.rows[-1].output == (16,)  # flatten of 4×2×2


def test_the_footer_names_the_placeholders_ops():
    a = analyze(parse_spec(TEXT, "p.yaml", "p"))
    lines = footer_lines(a, Numbers(False))
    assert "3 placeholder layers count nothing: torch.matmul, torch.topk" in lines


def test_explain_says_it_counts_nothing():
    a = analyze(parse_spec(TEXT, "p.yaml", "p"), explain=True)
    assert "counts nothing" in a.rows[1].formula[0]


@pytest.mark.parametrize("fields, message", [
    ("{shape: 4x6x6}", "op"), ("{op: x, shape: [0, 6]}", "positive"),
    ("{op: x, shape: [1, 2, 3, 4, 5]}", "one to four"), ("{op: '', shape: 4}", "text"),
])
def test_bad_fields_are_refused(fields, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(f"input: 3x8x8\nlayers:\n  - placeholder: {fields}\n", "p.yaml", "p")


def test_the_torch_builder_refuses_it_naming_each():
    pytest.importorskip("torch")
    from cnncalc.backend import build
    from cnncalc.backend.builders import PlaceholderError

    with pytest.raises(PlaceholderError, match=r"3 placeholder layer\(s\).*1 \(torch.matmul\)"):
        build(parse_spec(TEXT, "p.yaml", "p"))
