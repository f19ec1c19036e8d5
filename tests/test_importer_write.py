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


# --------------------------------------------------------------------------------------------
# Folding: repeated modules become blocks, and the analysis does not change

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from cnncalc.importer.fold import folded_yaml  # noqa: E402


def _rows(text: str) -> list[tuple]:
    return [(r.path, r.leaf, r.output, r.params, r.buffers, r.macs) +
            ((r.kind, r.input) if r.leaf else ()) for r in
            analyze(parse_spec(text, "x", "x")).rows]


def _residual_stage(modules: list[tuple[int, bool, int | None]], leak: int | None = None
                    ) -> ImportedModel:
    """A stem, then one residual module per entry (width, squeeze-and-excitation gate, the
    earlier module whose output it adds too), each ``stage.I`` with its class recorded;
    ``leak``: that module's inner tensor is read by the head (so it cannot be a block)."""
    layers = [L("stem", "conv", {"out": 8, "kernel": 3, "padding": 1}, ["input"], "s")]
    outputs: list[str] = []
    x = "s"
    for i, (width, se, skip) in enumerate(modules):
        p = f"stage.{i}"
        layers += [L(f"{p}.conv1", "conv", {"out": width, "kernel": 3, "padding": 1}, [x],
                     f"{p}.a"),
                   L(f"{p}.bn", "batchnorm", {}, [f"{p}.a"], f"{p}.b"),
                   L(f"{p}.relu", "relu", {}, [f"{p}.b"], f"{p}.c"),
                   L(f"{p}.conv2", "conv", {"out": 8, "kernel": 1}, [f"{p}.c"], f"{p}.d")]
        last = f"{p}.d"
        if se:
            layers += [L(f"{p}.se.pool", "global_avgpool", {}, [last], f"{p}.e"),
                       L(f"{p}.se.fc", "conv", {"out": 2, "kernel": 1}, [f"{p}.e"], f"{p}.f"),
                       L(f"{p}.se.fc2", "conv", {"out": 8, "kernel": 1}, [f"{p}.f"], f"{p}.g"),
                       L(f"{p}.se.gate", "sigmoid", {}, [f"{p}.g"], f"{p}.h"),
                       L(f"{p}.mul", "mul", {}, [last, f"{p}.h"], f"{p}.i")]
            last = f"{p}.i"
        extra = [outputs[skip]] if skip is not None and skip < len(outputs) else []
        layers.append(L(f"{p}.add", "add", {}, [last, x, *extra], f"{p}.out"))
        x = f"{p}.out"
        outputs.append(x)
    head_in = f"stage.{leak}.c" if leak is not None and leak < len(modules) else x
    layers += [L("head.pool", "global_avgpool", {}, [x], "p"),
               L("head.flat", "flatten", {}, ["p"], "q"),
               L("head.fc", "linear", {"out": 3}, ["q"], "r")]
    model_outputs = ["r"]
    if head_in != x:
        layers.append(L("aux", "relu", {}, [head_in], "aux"))
        model_outputs.append("aux")
    types = {f"stage.{i}": "Block" for i in range(len(modules))}
    return ImportedModel("x.py:f", (3, 16, 16), layers, outputs=model_outputs,
                         module_types=types)


_MODULES = st.lists(st.tuples(st.sampled_from([4, 8, 12, 16]), st.booleans(),
                              st.one_of(st.none(), st.integers(0, 5))), min_size=1, max_size=7)


@settings(max_examples=40, deadline=None)
@given(_MODULES, st.one_of(st.none(), st.integers(0, 6)))
def test_folding_never_changes_a_row(modules, leak):
    model = _residual_stage(modules, leak)
    flat = to_yaml(model, fold=False)
    folded = to_yaml(model)
    assert _rows(folded) == _rows(flat)
    def extra(i: int, skip: int | None) -> str:  # what the add reads beyond its input
        if skip is None or skip >= i:
            return "nothing"
        return "its input again" if skip == i - 1 else "an outside tensor"

    shapes = [(se, extra(i, skip)) for i, (_, se, skip) in enumerate(modules) if i != leak]
    if any(shapes.count(s) > 1 for s in shapes):  # a structure repeats: a block is written
        assert folded_yaml(model, flat) is not None
        assert "blocks:" in folded


def test_widths_become_a_parameter_and_a_leaked_module_stays_written_out():
    model = _residual_stage([(4, False, None), (8, False, None), (12, False, None)], leak=0)
    text = to_yaml(model)
    assert "params: {width: ~}" in text
    assert "block: {name: \"1\", width: 8}" in text  # stage.0's inner tensor is read outside
    assert "conv: {name: conv1, out: 4," in text  # stage.0 written out as a sequence
    assert _rows(text) == _rows(to_yaml(model, fold=False))


def test_a_module_reading_an_outside_tensor_takes_its_name():
    model = _residual_stage([(8, False, None), (8, False, None), (8, False, 0), (4, False, 0)])
    text = to_yaml(model)
    assert "params: {width: ~, skip: ~}" in text
    assert 'with: [input, "${skip}"]' in text
    assert 'width: 4, skip: "0"' in text  # stage.3 adds stage.0's output, named by its module
    assert _rows(text) == _rows(to_yaml(model, fold=False))


def test_flat_writing_names_tensors_by_their_shortest_unique_tail():
    text = to_yaml(_residual_stage([(8, False, None), (8, False, 0)]), fold=False)
    assert "as: stem" in text and 'as: "0_add"' in text  # stage.0.add: 'add' is not unique


def test_floats_read_back_as_numbers():
    from cnncalc.yamlio import load_yaml

    for value in (1e-06, 1e-05, 0.001, 2.5, 1e20, -3e-07):
        assert load_yaml(f"a: {scalar(value)}")["a"] == value
