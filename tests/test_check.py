"""``cnncalc check``: which layers floor at an input size, the nearest exact sizes, and every exact
size in a range. Expected sizes are derived by hand in the comments.

AlexNet (conv1 11×11/4, then 3×3/2 pools with stride-1 'same' convolutions between):
  conv1 is exact when (n − 11) ≡ 0 (mod 4), giving m1 = (n − 11)/4 + 1;
  pool1 needs m1 odd, pool2 needs m2 = (m1 − 3)/2 + 1 odd, pool5 needs m3 = (m2 − 3)/2 + 1 odd.
  The strides multiply to 4·2·2·2 = 32, so the exact sizes are one residue mod 32: 227 is
  (227 − 11)/4 + 1 = 55, (55 − 3)/2 + 1 = 27, 13, 6, all exact; the others are 227 − 32 = 195
  and 227 + 32 = 259. The smallest that runs at all is 67: 15, 7, 3, 1 (35 gives 7, 3, 1 and
  then pool5's 3×3 window does not fit in 1).
ResNet-50 (7×7/2 p3, 3×3/2 p1 pool, four 3×3/2 p1 or 1×1/2 stride steps): each stride-2 step
  on a size s is exact when (s + 2·p − k) = s − 1 is even, i.e. s odd; the five halvings make the
  exact sizes n ≡ 1 (mod 32): 193, 225 around 224 (which floors).
"""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from cnncalc import analyze, load_spec, zoo_names
from cnncalc.check import Exactness, check, check_lines
from cnncalc.cli import app
from cnncalc.errors import OptionError

runner = CliRunner()


def test_alexnet_224_floors_in_four_layers_each_ignoring_a_row_and_column():
    result = check(load_spec("alexnet"), "3x224x224")
    assert not result.exact
    # conv1 (224 − 11)/4 = 53.25 (213 = 53·4 + 1: one row unread); pool1 (54 − 3)/2 = 25.5;
    # pool2 (26 − 3)/2 = 11.5; pool5 (12 − 3)/2 = 4.5: each leaves its last row and column
    assert [w.path for w in result.warnings] == ["conv1", "pool1", "pool2", "pool5"]
    assert all(w.ignored_input == {"height": 1, "width": 1} for w in result.warnings)
    assert result.nearest["height"].below == 195
    assert result.nearest["height"].above == 227


def test_alexnet_227_is_exact():
    result = check(load_spec("alexnet"))
    assert result.input == (3, 227, 227)
    assert result.exact and result.ok and result.warnings == []


def test_resnet50_224_is_not_exact_225_is():
    result = check(load_spec("resnet50"))
    assert not result.exact
    assert (result.nearest["height"].below, result.nearest["height"].above) == (193, 225)
    assert check(load_spec("resnet50"), "3x225x225").exact


def test_range_lists_every_exact_square_size():
    result = check(load_spec("alexnet"), "3x224x224", size_range=(1, 300))
    assert result.exact_sizes["height"] == [67, 99, 131, 163, 195, 227, 259, 291]
    assert not result.ok  # the exit status is the input's: 224 floors


def test_range_of_2048_is_fast():
    for name, residue, first in (("alexnet", 3, 67), ("resnet50", 1, 1)):
        spec = load_spec(name)
        started = time.perf_counter()
        result = check(spec, size_range=(1, 2048))
        elapsed = time.perf_counter() - started
        assert result.exact_sizes["height"] == list(range(first, 2049, 32)), name
        assert elapsed < 2.0, (name, elapsed)
        assert all(n % 32 == residue for n in result.exact_sizes["height"])


def test_non_square_input_searches_each_axis_with_the_other_held():
    result = check(load_spec("alexnet"), "3x224x227", size_range=(190, 230))
    assert not result.square
    assert [w.ignored_input for w in result.warnings][0] == {"height": 1}
    assert (result.nearest["height"].below, result.nearest["height"].above) == (195, 227)
    assert (result.nearest["width"].below, result.nearest["width"].above) == (195, 259)
    assert result.exact_sizes == {"height": [195, 227], "width": [195, 227]}


def test_range_without_exact_sizes():
    result = check(load_spec("alexnet"), size_range=(228, 258))
    assert result.exact_sizes["height"] == [] and result.ok  # 227 itself is exact
    assert "exact square sizes in 228..258 (0): none" in check_lines(result)


@pytest.mark.parametrize("name", zoo_names())
def test_light_walk_agrees_with_the_engine(name: str):
    spec = load_spec(name)
    if len(spec.input) != 3:
        pytest.skip("vector input")
    exactness = Exactness(spec)
    c, h, w = spec.input
    for dh, dw in [(0, 0), (1, 0), (0, 3), (-5, 2), (17, 17), (-1, -1), (32, 31)]:
        shape = (c, h + dh, w + dw)
        try:
            analysis = analyze(spec, input=shape)
        except Exception:
            assert exactness.floored_axes(shape) is None
            continue
        engine = {f.axis for warning in analysis.warnings for f in warning.floors}
        assert exactness.floored_axes(shape) == engine, shape


def test_bad_range_and_vector_input():
    with pytest.raises(OptionError):
        check(load_spec("alexnet"), size_range="10-20")
    with pytest.raises(OptionError):
        check(load_spec("alexnet"), size_range="30:20")
    with pytest.raises(OptionError):
        check(load_spec("alexnet"), input="9216")


# --------------------------------------------------------------------------------------------
# Command line


def test_cli_exit_status_is_0_when_exact_1_when_not():
    exact = runner.invoke(app, ["check", "alexnet", "--input", "3x227x227"])
    assert exact.exit_code == 0, exact.output
    assert "exact" in exact.stdout
    inexact = runner.invoke(app, ["check", "alexnet", "--input", "3x224x224"])
    assert inexact.exit_code == 1
    assert "conv1: ignores 1 input row and 1 input column" in inexact.stdout
    assert "nearest exact height and width: 195 (−29) below, 227 (+3) above" in inexact.stdout


def test_cli_user_errors_exit_2():
    for args in (["check", "alexnet", "--input", "3x20x20"],
                 ["check", "alexnet", "--range", "nope"],
                 ["check", "no-such-net"]):
        out = runner.invoke(app, args)
        assert out.exit_code == 2, (args, out.output)
        assert out.stderr.startswith("cnncalc: error: ")


def test_cli_range_and_json():
    out = runner.invoke(app, ["check", "alexnet", "--range", "200:260", "--format", "json"])
    assert out.exit_code == 0
    data = json.loads(out.stdout)
    assert data["exact"] is True and data["square"] is True
    assert data["exact_sizes"] == {"height": [227, 259], "width": [227, 259]}
    assert data["range"] == [200, 260]
    data = json.loads(runner.invoke(app, ["check", "alexnet", "-i", "3x224x224", "-f", "json"]).stdout)
    assert data["exact"] is False
    assert data["floors"][0]["path"] == "conv1"
    assert data["floors"][0]["floors"][0]["ignored_input"] == 1
    assert data["nearest"]["height"] == {"below": 195, "above": 227, "searched": 4096}
    text = runner.invoke(app, ["check", "alexnet", "--range", "200:260"]).stdout
    assert "exact square sizes in 200..260 (2): 227, 259" in text


# --------------------------------------------------------------------------------------------
# Bounded work (issue 11): the search and the range are bounded by CHECK_BUDGET op walks


def test_the_search_below_a_huge_input_is_bounded(tmp_path):
    import time

    from cnncalc.check import SEARCH_LIMIT
    spec = tmp_path / "big.yaml"
    spec.write_text("input: 3x100000000x100000000\nlayers:\n"
                    "  - conv: {out: 4, kernel: 3, stride: 100000000}\n")
    started = time.perf_counter()
    out = runner.invoke(app, ["check", str(spec)])
    assert time.perf_counter() - started < 30  # was unbounded (10**8 sizes tried)
    assert out.exit_code == 1
    assert (f"nearest exact height and width: none within {SEARCH_LIMIT:,} below, "
            "100000003 (+3) above") in out.stdout


def test_a_range_too_costly_for_the_network_is_refused_at_once():
    from cnncalc.check import range_limit
    out = runner.invoke(app, ["check", "resnet152", "--range", "1:100001"])
    assert out.exit_code == 2
    assert out.stderr == ("cnncalc: error: --range spans 100,001 sizes; on this network (515 "
                          f"ops) check lists at most {range_limit(515):,} (a bound on its time)\n")


def test_the_window_shrinks_on_deep_networks_and_says_so(tmp_path):
    from cnncalc.check import CHECK_BUDGET, search_window
    spec = tmp_path / "deep.yaml"
    spec.write_text("input: 3x33x33\nlayers:\n  - conv: {out: 3, kernel: 2, stride: 2}\n"
                    "  - repeat: {times: 5000, layers: [relu]}\n")
    window = search_window(5001, 2)
    assert window == CHECK_BUDGET // (5001 * 2) < 4096
    out = runner.invoke(app, ["check", str(spec), "--input", "3x1000x1000", "-f", "json"])
    data = json.loads(out.stdout)
    assert data["nearest"]["height"]["searched"] == window


def _doc_example(index: int):
    import re
    from pathlib import Path

    from cnncalc import parse_spec

    doc = (Path(__file__).resolve().parents[1] / "docs" / "spec-format.md").read_text()
    section = doc.split("### 1-D and 3-D networks", 1)[1].split("\n## ", 1)[0]
    return parse_spec(re.findall(r"```yaml\n(.*?)```", section, re.S)[index], "d.yaml", "d")


def _brute_exact(spec, shape) -> bool:
    """Exact by definition: the engine analyses the shape and no layer floors."""
    from cnncalc.errors import SpecError

    try:
        return not analyze(spec, input=shape).warnings
    except SpecError:
        return False


def test_check_in_1d_finds_the_nearest_lengths_a_scan_finds():
    spec = _doc_example(0)  # the audio net on 1×16000
    result = check(spec)
    found = result.nearest["length"]
    above = next(n for n in range(16_001, 20_000) if _brute_exact(spec, (1, n)))
    below = next(n for n in range(15_999, 10_000, -1) if _brute_exact(spec, (1, n)))
    assert (found.below, found.above) == (below, above)
    assert "nearest exact length: " in "\n".join(check_lines(result))


def test_check_in_3d_holds_the_other_axes():
    spec = _doc_example(1)  # C3D on 3×16×112×112
    result = check(spec, input="3x16x112x120", size_range=(100, 130))
    for axis, at in (("depth", 1), ("height", 2), ("width", 3)):
        def shape(n: int) -> tuple[int, ...]:
            dims = [3, 16, 112, 120]
            dims[at] = n
            return tuple(dims)

        brute = [n for n in range(100, 131) if _brute_exact_axis(spec, shape(n), axis)]
        assert result.exact_sizes[axis] == brute, axis
    assert "exact heights in 100..130 with the depth and width held at 16 and 120" in \
        "\n".join(check_lines(result))


def _brute_exact_axis(spec, shape, axis: str) -> bool:
    from cnncalc.errors import SpecError

    try:
        warnings = analyze(spec, input=shape).warnings
    except SpecError:
        return False
    return all(f.axis != axis for w in warnings for f in w.floors)
