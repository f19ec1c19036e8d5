"""Issue 11: hostile input inside the documented limits costs bounded time and memory. Times
are compared as ratios (or against generous bounds), never as tight wall-clock limits."""

from __future__ import annotations

import time

import pytest

from cnncalc.spec import MAX_NODES, parse_spec


def _repeat(times: int, item: str = "relu", per_copy: int = 1) -> str:
    return ("input: 3x8x8\nlayers:\n  - repeat: {times: %d, layers: [%s]}\n"
            % (times, ", ".join([item] * per_copy)))


def test_the_node_limit_counts_layers_not_repeat_copies():
    spec = parse_spec(_repeat(10_000, per_copy=10), "r.yaml", "r")
    assert len(spec.root.items) == MAX_NODES  # 100,000 layers: accepted


def test_one_layer_past_the_limit_is_refused():
    from cnncalc.errors import SpecError

    with pytest.raises(SpecError, match="expands to more than 100,000"):
        parse_spec(_repeat(10_000, per_copy=10) + "  - relu\n", "r.yaml", "r")


def test_empty_repeat_copies_still_count():
    from cnncalc.errors import SpecError

    text = ("input: 3x8x8\nlayers:\n  - repeat: {times: 10000, layers: "
            "[{repeat: {times: 10000, layers: []}}]}\n")
    started = time.perf_counter()
    with pytest.raises(SpecError, match="expands to more than 100,000"):
        parse_spec(text, "r.yaml", "r")
    assert time.perf_counter() - started < 30


def _seconds(call) -> float:
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def test_a_300_step_ceil_mode_chain_ends_at_once_with_its_location():
    pytest.importorskip("sympy")
    from cnncalc.errors import SpecError
    from cnncalc.symbolic import MAX_NESTING, analyze_symbolic

    text = "input: 3x224x224\nlayers:\n" + "".join(
        f"  - maxpool: {{name: p{i}, kernel: 2, stride: 2, ceil_mode: true}}\n"
        for i in range(300))
    spec = parse_spec(text, "ceil.yaml", "ceil")
    started = time.perf_counter()
    with pytest.raises(SpecError) as caught:
        analyze_symbolic(spec, "3xHxW")
    assert time.perf_counter() - started < 30  # was 60 s, unlocated
    assert str(caught.value).startswith(f"ceil.yaml:{3 + MAX_NESTING}:5: layer p{MAX_NESTING}: "
                                        f"this size's formula would nest {MAX_NESTING + 1} "
                                        "roundings")


def test_symbolic_input_is_linear_in_layers():
    pytest.importorskip("sympy")
    from cnncalc.symbolic import analyze_symbolic

    def spec(n: int):
        return parse_spec(_repeat(n, "{conv: {out: 3, kernel: 3}}"), "c.yaml", "c")

    small, large = spec(150), spec(600)
    analyze_symbolic(small, "3xHxW")  # sympy's first-use costs
    ratio = _seconds(lambda: analyze_symbolic(large, "3xHxW")) / _seconds(
        lambda: analyze_symbolic(small, "3xHxW"))
    assert ratio < 9, ratio  # 4 when linear, 16 when quadratic


def test_json_output_is_linear_in_rows():
    import io

    from cnncalc import render

    def rows(n: int) -> dict:
        return {"spec": "x", "layers": [{"path": f"{i}", "kind": "relu", "output": [3, 8, 8],
                                        "params": 0, "formula": ["a", "b"]} for i in range(n)]}

    small, large = rows(10_000), rows(100_000)
    ratio = _seconds(lambda: render.write_json(large, io.StringIO())) / _seconds(
        lambda: render.write_json(small, io.StringIO()))
    assert ratio < 20, ratio  # 10 when linear


def test_json_layout_reads_back_and_puts_one_row_per_line():
    import json

    from cnncalc import render

    data = {"spec": "x", "input": [3, 8, 8], "layers": [{"path": "a"}, {"path": "b"}],
            "totals": {"params": 1}, "empty": [], "none": {}}
    text = render.to_json(data)
    assert json.loads(text) == data
    assert text.splitlines() == ['{', '  "spec": "x",', '  "input": [3, 8, 8],', '  "layers": [',
                                 '    {"path": "a"},', '    {"path": "b"}', '  ],',
                                 '  "totals": {', '    "params": 1', '  },', '  "empty": [],',
                                 '  "none": {}', '}']


def test_adaptive_pooling_with_a_huge_output_costs_no_loop():
    from cnncalc import analyze

    spec = parse_spec(_repeat(100, "{adaptive_avgpool: {output: 1000000}}"), "a.yaml", "a")
    started = time.perf_counter()
    analysis = analyze(spec)
    assert time.perf_counter() - started < 30  # was 59 s
    assert analysis.rows[-1].output == (3, 1_000_000, 1_000_000)


def test_memory_is_linear_in_layers():
    from cnncalc import analyze
    from cnncalc.memory import memory

    def relus(n: int):
        return analyze(parse_spec(f"input: 3x8x8\nlayers:\n  - repeat: {{times: {n}, layers: "
                                  "[relu]}\n", "r.yaml", "r"))

    import gc

    small, large = relus(1_000), relus(8_000)
    gc.collect()
    gc.disable()  # the algorithm's growth, not the collector's (the CLI tunes it: cli.main)
    try:
        ratio = _seconds(lambda: memory(large, "adam")) / _seconds(lambda: memory(small, "adam"))
    finally:
        gc.enable()
    assert ratio < 24, ratio  # 8 when linear, 64 when quadratic (as it was: names searched)
