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
