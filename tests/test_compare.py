"""Comparing analyses: rows matched by path, and ratios of totals."""

from __future__ import annotations

from fractions import Fraction

import pytest

from cnncalc import analyze, compare, load_spec, parse_spec

NAIVE_PARAMS = 192 * 64 + 192 * 9 * 128 + 192 * 25 * 32                       # 387,072
BOTTLENECK_PARAMS = (192 * 64 + 192 * 96 + 96 * 9 * 128 + 192 * 16 + 16 * 25 * 32
                     + 192 * 32)                                               # 163,328


@pytest.fixture(scope="module")
def inception():
    return compare([analyze(load_spec("inception-naive")),
                    analyze(load_spec("inception-bottleneck"))])


def matched(comparison, path):
    (row,) = [m for m in comparison.rows if m.path == path]
    return row


def test_5x5_branch_matched_by_path(inception):
    naive, bottleneck = matched(inception, "inception.b3").rows
    # 28·28·192·25·32 vs 28·28·(192·16 + 16·25·32)
    assert naive.macs == 28 * 28 * 192 * 25 * 32 == 120_422_400
    assert bottleneck.macs == 28 * 28 * (192 * 16 + 16 * 25 * 32) == 12_443_648


def test_row_ratio(inception):
    row = matched(inception, "inception.b3")
    assert inception.row_ratio(row, "macs", 1) == Fraction(12_443_648, 120_422_400)
    assert inception.row_ratio(row, "macs", 0) == 1


def test_ratios_of_totals(inception):
    assert NAIVE_PARAMS == 387_072 and BOTTLENECK_PARAMS == 163_328
    assert inception.ratios("params") == [1, Fraction(BOTTLENECK_PARAMS, NAIVE_PARAMS)]
    # both are 28·28·weights, so the MAC ratio is the parameter ratio
    assert inception.ratios("macs") == [1, Fraction(BOTTLENECK_PARAMS, NAIVE_PARAMS)]
    # output maps of all leaves (each × 28·28·4 bytes):
    # naive 64·2 + 128·2 + 32·2 + 192 = 640; bottleneck 64·2 + (96 + 128)·2 + (16 + 32)·2 + 192 + 32·2 = 928
    assert inception.ratios("activation_bytes") == [1, Fraction(928, 640)]


def test_rows_in_only_one_spec_are_left_out_by_default(inception):
    paths = {m.path for m in inception.rows}
    assert "inception.b3.reduce" not in paths
    assert "inception.b2.reduce" not in paths
    assert "inception.b4.proj" not in paths


def test_default_rows_are_shared_rows_with_params_or_macs(inception):
    # shared paths: the concat, its 4 branches, b1/b2/b3 .conv and .relu, b4.pool; the relus and
    # the pool have neither parameters nor MACs in either spec and are left out
    assert [m.path for m in inception.rows] == [
        "inception", "inception.b1", "inception.b1.conv", "inception.b2", "inception.b2.conv",
        "inception.b3", "inception.b3.conv", "inception.b4",
    ]
    assert all(None not in m.rows for m in inception.rows)


def test_positive_depth_keeps_rows_of_either_spec():
    comparison = compare([analyze(load_spec("inception-naive")),
                          analyze(load_spec("inception-bottleneck"))], depth=3)
    reduce = matched(comparison, "inception.b3.reduce")
    assert reduce.rows[0] is None
    # 1×1 from 192 to 16 maps, no bias
    assert reduce.rows[1].params == 192 * 16
    assert "inception.b1.relu" in {m.path for m in comparison.rows}
    assert all(m.path.count(".") == 2 for m in comparison.rows)


def test_one_analysis_keeps_its_rows():
    comparison = compare([analyze(load_spec("lenet5"))])
    # every lenet5 layer with parameters: c1, c3, f5, f6, output
    assert [m.path for m in comparison.rows] == ["c1", "c3", "f5", "f6", "output"]
    assert comparison.ratios("params") == [1]


def test_ratio_against_zero_is_none():
    text = "input: 3x8x8\nlayers: [relu]\n"
    a = analyze(parse_spec(text, "a.yaml", "a"))
    comparison = compare([a, a])
    assert comparison.ratios("macs") == [None, None]
    assert comparison.rows == ()


def test_resnet18_against_resnet34():
    comparison = compare([analyze(load_spec("resnet18")), analyze(load_spec("resnet34"))])
    assert comparison.ratios("params") == [1, Fraction(21_797_672, 11_689_512)]
    assert comparison.ratios("macs") == [1, Fraction(3_663_761_408, 1_814_073_344)]
    # same first block in both: 3×3 64 → 64 on 56×56, no bias
    first, second = matched(comparison, "layer1.0.conv1").rows
    assert first.macs == second.macs == 56 * 56 * 64 * 64 * 9
    # resnet34's layer1.2 has no counterpart in resnet18 (2 blocks there)
    assert "layer1.2" not in {m.path for m in comparison.rows}
