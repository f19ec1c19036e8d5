"""Issue 11 in the torch backend: spec names that are nn.Module attributes, and models too large
to allocate, refused from the engine's own byte count before torch allocates anything."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cnncalc.backend import build, checks
from cnncalc.cli import app
from cnncalc.spec import parse_spec

runner = CliRunner()


@pytest.mark.parametrize("name", ["forward", "training", "children", "append", "_steps",
                                  "tensors", "record", "eval", "state_dict", "forward_"])
def test_layer_names_that_are_module_attributes_verify(name):
    text = (f"input: 3x8x8\nlayers:\n  - conv: {{name: {name}, out: 4, kernel: 3}}\n"
            f"  - sequence: {{name: body_names, layers: [{{relu: {{name: {name}}}}}]}}\n"
            "  - head: {name: aux, layers: [flatten, {linear: {out: 2, name: output}}]}\n"
            "  - relu: {name: forward__}\n")
    spec = parse_spec(text, "n.yaml", "n")
    model = build(spec)
    for path in (name, f"body_names.{name}", "aux.output", "forward__"):
        assert model.spec_path(model.torch_path(path)) == path
        assert model.submodule(path) is model.get_submodule(model.torch_path(path))
    result = checks.verify(spec)
    assert result.ok, [r for r in result.rows if not r.ok]


def test_a_model_too_large_for_memory_is_refused_before_it_is_built(monkeypatch):
    import cnncalc.backend as backend

    monkeypatch.setattr(backend, "available_memory", lambda: 1 << 30)
    monkeypatch.setattr(checks, "build", lambda *a, **k: pytest.fail("built anyway"))
    result = runner.invoke(app, ["verify", "alexnet", "--input", "3x100000x100000"])
    assert result.exit_code == 2
    assert result.stderr.startswith("cnncalc: error: verify: the model needs about ")
    assert "and 1GiB is available; choose a smaller --input or --batch" in result.stderr
    assert len(result.stderr.splitlines()) == 1
