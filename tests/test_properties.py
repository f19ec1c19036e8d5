"""Properties, not just examples (hypothesis).

* For random valid convolution and pooling settings the engine's output size is torch's, and the
  engine refuses exactly what torch refuses (when torch is installed).
* For random small specs, analysis either succeeds with rows that add up to the totals at every
  depth, or raises a documented error (:class:`cnncalc.errors.CnncalcError`), nothing else.
* For random garbage (zoo specs mutated line by line) the CLI exits 0 or 2, with one error line
  and no traceback.

Example counts are modest (CNNCALC_EXAMPLES, default 150): the whole file runs in seconds on
CI's two cores.
"""

from __future__ import annotations

import importlib.util
import os
import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cnncalc import analyze
from cnncalc.cli import app
from cnncalc.errors import CnncalcError, SpecError
from cnncalc.spec import parse_spec
from cnncalc.zoo import zoo_dir

# CNNCALC_EXAMPLES=2000 for a deeper run than CI's.
EXAMPLES = int(os.environ.get("CNNCALC_EXAMPLES", "150"))
FAST = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def engine_output(input: tuple[int, int, int], layer: dict) -> tuple[int, ...] | None:
    """The engine's output shape for one layer, or None when it refuses the layer."""
    text = yaml.safe_dump({"input": list(input), "layers": [layer]})
    try:
        return analyze(parse_spec(text, "p.yaml", "p")).output
    except SpecError:
        return None


needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="torch is not installed")


def torch_output(run) -> tuple[int, ...] | None:
    import torch

    try:
        with torch.no_grad():
            return tuple(run(torch).shape[1:])
    except (RuntimeError, ValueError):
        return None


pair = st.tuples(st.integers(1, 7), st.integers(1, 7))


@st.composite
def conv_settings(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3, 4]))
    c_in = groups * draw(st.integers(1, 3))
    out = groups * draw(st.integers(1, 3))
    size = (c_in, draw(st.integers(1, 24)), draw(st.integers(1, 24)))
    return dict(size=size, out=out, groups=groups, kernel=draw(pair),
                stride=draw(st.tuples(st.integers(1, 4), st.integers(1, 4))),
                padding=draw(st.tuples(st.integers(0, 4), st.integers(0, 4))),
                dilation=draw(st.tuples(st.integers(1, 3), st.integers(1, 3))))


@needs_torch
@FAST
@given(conv_settings())
def test_conv_output_size_is_torchs(s):
    ours = engine_output(s["size"], {"conv": {
        "out": s["out"], "kernel": list(s["kernel"]), "stride": list(s["stride"]),
        "padding": list(s["padding"]), "dilation": list(s["dilation"]), "groups": s["groups"]}})

    def run(torch):
        x = torch.zeros(1, *s["size"])
        w = torch.zeros(s["out"], s["size"][0] // s["groups"], *s["kernel"])
        return torch.nn.functional.conv2d(x, w, stride=s["stride"], padding=s["padding"],
                                          dilation=s["dilation"], groups=s["groups"])

    assert ours == torch_output(run)


@st.composite
def pool_settings(draw):
    kernel = draw(pair)
    return dict(size=(draw(st.integers(1, 3)), draw(st.integers(1, 24)), draw(st.integers(1, 24))),
                kernel=kernel,
                stride=draw(st.tuples(st.integers(1, 4), st.integers(1, 4))),
                # torch's rule is 2·padding ≤ kernel; go one past it to check the refusal too
                padding=(draw(st.integers(0, kernel[0] // 2 + 1)),
                         draw(st.integers(0, kernel[1] // 2 + 1))),
                dilation=draw(st.tuples(st.integers(1, 3), st.integers(1, 3))),
                ceil_mode=draw(st.booleans()))


@needs_torch
@FAST
@given(pool_settings())
def test_maxpool_output_size_is_torchs(s):
    ours = engine_output(s["size"], {"maxpool": {
        "kernel": list(s["kernel"]), "stride": list(s["stride"]), "padding": list(s["padding"]),
        "dilation": list(s["dilation"]), "ceil_mode": s["ceil_mode"]}})

    def run(torch):
        return torch.nn.functional.max_pool2d(
            torch.zeros(1, *s["size"]), s["kernel"], s["stride"], s["padding"], s["dilation"],
            ceil_mode=s["ceil_mode"])

    assert ours == torch_output(run)


@needs_torch
@FAST
@given(pool_settings())
def test_avgpool_output_size_is_torchs(s):
    ours = engine_output(s["size"], {"avgpool": {
        "kernel": list(s["kernel"]), "stride": list(s["stride"]), "padding": list(s["padding"]),
        "ceil_mode": s["ceil_mode"]}})

    def run(torch):
        return torch.nn.functional.avg_pool2d(
            torch.zeros(1, *s["size"]), s["kernel"], s["stride"], s["padding"],
            ceil_mode=s["ceil_mode"])

    assert ours == torch_output(run)


# --------------------------------------------------------------------------------------------
# Random small specs: rows add up, errors are documented ones


def _leaf() -> st.SearchStrategy:
    small = st.integers(1, 8)
    return st.one_of(
        st.builds(lambda o, k, s, p, g, b: {"conv": {"out": o * g, "kernel": k, "stride": s,
                                                     "padding": p, "groups": g, "bias": b}},
                  small, st.integers(1, 5), st.integers(1, 3), st.integers(0, 2),
                  st.sampled_from([1, 1, 2]), st.booleans()),
        st.builds(lambda k, s, c: {"maxpool": {"kernel": k, "stride": s, "ceil_mode": c}},
                  st.integers(1, 3), st.integers(1, 3), st.booleans()),
        st.builds(lambda k: {"avgpool": {"kernel": k, "padding": k // 2}}, st.integers(1, 3)),
        st.sampled_from(["relu", "batchnorm", "flatten", "global_avgpool", "dropout", "identity"]),
        st.builds(lambda o: {"linear": {"out": o}}, small),
        st.builds(lambda o: {"adaptive_avgpool": {"output": o}}, st.integers(1, 3)),
    )


def _items(children: st.SearchStrategy) -> st.SearchStrategy:
    layers = st.lists(children, min_size=1, max_size=4)
    return st.one_of(
        st.builds(lambda ls: {"sequence": {"layers": ls}}, layers),
        st.builds(lambda ls: {"head": {"layers": ls}}, layers),
        st.builds(lambda ls: {"residual": {"layers": ls}}, layers),
        st.builds(lambda ls, sc: {"residual": {"layers": ls, "shortcut": sc}}, layers, layers),
        st.builds(lambda a, b: {"concat": {"branches": {"a": a, "b": b}}}, layers, layers),
        st.builds(lambda n, ls: {"repeat": {"times": n, "layers": ls}}, st.integers(0, 3), layers),
    )


random_layers = st.lists(st.recursive(_leaf(), _items, max_leaves=12), min_size=1, max_size=6)


@FAST
@given(st.tuples(st.integers(1, 8), st.integers(1, 20), st.integers(1, 20)), random_layers,
       st.integers(1, 4))
def test_random_specs_add_up_or_raise_a_documented_error(shape, layers, batch):
    text = yaml.safe_dump({"input": list(shape), "layers": layers})
    try:
        analysis = analyze(parse_spec(text, "r.yaml", "r"), batch=batch)
    except CnncalcError:
        return
    totals = analysis.totals
    deepest = max((r.depth for r in analysis.rows), default=0)
    for depth in [None, *range(1, deepest + 1)]:
        rows = analysis.at_depth(depth)
        assert sum(r.params for r in rows) == totals.params
        assert sum(r.buffers for r in rows) == totals.buffers
        assert sum(r.macs for r in rows if not r.head) == totals.macs
        assert sum(r.activation_bytes for r in rows if not r.head) == totals.activation_bytes
    # A side head's MACs are apart from the main path's: a group collapsed over a head leaves
    # them out of its own row, so they add up over the leaves.
    leaves = analysis.at_depth(None)
    assert sum(r.macs for r in leaves if r.head) == totals.head_macs
    assert sum(r.activation_bytes for r in leaves if r.head) == totals.head_activation_bytes
    assert all(r.macs % batch == 0 for r in analysis.rows)


# --------------------------------------------------------------------------------------------
# Garbage: mutated zoo specs through the CLI

ZOO_TEXTS = [p.read_text(encoding="utf-8") for p in sorted(zoo_dir().glob("*.yaml"))]
JUNK = ["&a", "*a", "*b", "!!python/object/apply:os.system ['true']", "{", "}", "[", "]", ":",
        "- ", "\t", "${", "${i * 2}", "}}", "<<: *a", "~", "null", "-1", "0", "1e999", "'",
        '"', "#", "? ", "|", ">", "---", "...", "\x00", "é", "99999999999999999999",
        "repeat: {times: 10000, layers: [relu]}", "- sequence: {layers: *a}", "when: false",
        "name: x.y", "kernel: [0, 0]", "stride: 0", "groups: 7", "input: 3x0x0"]

runner = CliRunner()


@st.composite
def mutated_spec(draw):
    lines = draw(st.sampled_from(ZOO_TEXTS)).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["delete", "duplicate", "swap", "number", "junk", "indent"]))
        if action == "delete":
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        elif action == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif action == "number" and re.search(r"\d+", lines[i]):
            number = draw(st.sampled_from(["0", "-1", "1", "7", "100000", "10**9", "3.5", "2e400"]))
            lines[i] = re.sub(r"\d+", number, lines[i], count=1)
        elif action == "junk":
            column = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:column] + draw(st.sampled_from(JUNK)) + lines[i][column:]
        else:
            lines[i] = " " * draw(st.integers(1, 3)) + lines[i]
    return "\n".join(lines) + "\n"


@settings(max_examples=max(EXAMPLES * 4 // 5, 1), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=mutated_spec())
def test_mutated_zoo_specs_exit_0_or_2_without_a_traceback(tmp_path, text):
    path = tmp_path / "mutant.yaml"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["table", str(path), "--format", "csv"])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception), text)
    assert result.exit_code in (0, 2), (result.exit_code, result.output)
    assert "Traceback" not in result.stderr
    if result.exit_code == 2:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("cnncalc: error: "), result.stderr
