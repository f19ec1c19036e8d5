"""The spec format: names and paths, blocks, ${…} expressions, repeat, when, composition keywords,
and errors that name the file, line and layer."""

from __future__ import annotations

import pytest

from cnncalc import SpecError, analyze, load_spec, parse_shape, parse_spec
from cnncalc.spec import Concat, Leaf, Residual, Sequence


def lines(*text: str) -> str:
    return "\n".join(text) + "\n"


def load(text: str):
    return parse_spec(text, "net.yaml", "net")


def paths(text: str) -> list[str]:
    return [r.path for r in analyze(load(text)).rows]


def error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        load(text)
    return info.value


def line_of(err: SpecError) -> int | None:
    return err.where.line


# --------------------------------------------------------------------------------------------
# layers, names and paths


def test_bare_kind_string():
    spec = load(lines("input: 3x8x8", "layers:", "  - relu"))
    (leaf,) = spec.root.items
    assert isinstance(leaf, Leaf)
    assert leaf.kind == "relu"
    assert leaf.config == {"inplace": False}  # relu's one field, at its default


def test_kind_with_null_fields():
    (leaf,) = load(lines("input: 3x8x8", "layers:", "  - relu:")).root.items
    assert leaf.kind == "relu"


def test_default_names_are_the_index_in_the_list():
    text = lines("input: 3x8x8", "layers:", "  - conv: {out: 4, kernel: 3}", "  - relu",
                 "  - conv: {out: 4, kernel: 3}")
    assert paths(text) == ["0", "1", "2"]


def test_a_named_layer_keeps_the_index_of_the_others():
    # like torch.nn.Sequential with one module renamed: the others keep their position
    text = lines("input: 3x8x8", "layers:", "  - relu", "  - relu: {name: act}", "  - relu")
    assert paths(text) == ["0", "act", "2"]


def test_nested_sequence_paths_are_dotted():
    text = lines(
        "input: 3x8x8",
        "layers:",
        "  - sequence:",
        "      name: features",
        "      layers:",
        "        - conv: {out: 4, kernel: 3}",
        "        - sequence: {layers: [relu, relu]}",
    )
    assert paths(text) == ["features", "features.0", "features.1", "features.1.0", "features.1.1"]


@pytest.mark.parametrize("path", [
    "layer3.2.conv1",
    "layer1.0.downsample",
    "layer1.0.downsample.0",
    "layer1.0.downsample.1",
    "layer4.2.bn3",
    "layer2.0.relu",
    "fc",
])
def test_resnet50_paths(path):
    assert path in {r.path for r in analyze(load_spec("resnet50")).rows}


def test_resnet50_identity_blocks_have_no_downsample():
    rows = {r.path for r in analyze(load_spec("resnet50")).rows}
    assert "layer1.1.downsample" not in rows
    assert "layer3.2.downsample.0" not in rows


def test_resnet18_first_stage_needs_no_projection():
    # 64 → 64 channels at stride 1: the identity shortcut fits
    assert "layer1.0.downsample" not in {r.path for r in analyze(load_spec("resnet18")).rows}


@pytest.mark.parametrize("path", ["inception4a.b3.reduce", "inception3a.b4.proj", "aux1.fc2"])
def test_googlenet_paths(path):
    assert path in {r.path for r in analyze(load_spec("googlenet")).rows}


def test_names_may_be_integers():
    assert paths(lines("input: 3x8x8", "layers:", "  - relu: {name: 7}")) == ["7"]


# --------------------------------------------------------------------------------------------
# blocks and ${…}


BLOCK = lines(
    "input: 3x8x8",                                   # 1
    "blocks:",                                        # 2
    "  unit:",                                        # 3
    "    params: {out: ~, k: 3}",                     # 4
    "    layers:",                                    # 5
    "      - conv: {name: conv, out: '${out}', kernel: '${k}', padding: '${k // 2}'}",  # 6
    "      - relu: {name: act}",                      # 7
    "layers:",                                        # 8
)


def test_block_required_and_default_params():
    spec = load(BLOCK + lines("  - unit: {out: 8}"))
    (block,) = spec.root.items
    assert isinstance(block, Sequence)
    assert block.label == "unit"
    conv = block.items[0]
    assert conv.config["out"] == 8
    assert conv.config["kernel"] == (3, 3)
    # ${k // 2} with k = 3 → 1
    assert conv.config["padding"] == (1, 1)


def test_block_param_overrides_the_default():
    (block,) = load(BLOCK + lines("  - unit: {out: 8, k: 5}")).root.items
    assert block.items[0].config["kernel"] == (5, 5)
    assert block.items[0].config["padding"] == (2, 2)


def test_block_paths():
    text = BLOCK + lines("  - unit: {out: 8}", "  - unit: {name: second, out: 4}")
    assert paths(text) == ["0", "0.conv", "0.act", "second", "second.conv", "second.act"]


def test_block_arguments_may_use_outer_expressions():
    text = lines(
        "input: 3x8x8",
        "blocks:",
        "  unit:",
        "    params: {out: ~}",
        "    layers: [conv: {out: '${out}', kernel: 1}]",
        "layers:",
        "  - repeat: {times: 2, layers: [unit: {out: '${4 * (i + 1)}'}]}",
    )
    rows = analyze(load(text)).rows
    # copy 0: 4·(0 + 1) = 4 maps; copy 1: 4·(1 + 1) = 8 maps
    assert [r.output[0] for r in rows if r.leaf] == [4, 8]


def test_expression_arithmetic():
    text = lines(
        "input: 3x8x8",
        "blocks:",
        "  b:",
        "    params: {w: 3}",
        "    layers:",
        "      - conv: {out: '${w * 2 + 1}', kernel: 1}",    # 3·2 + 1 = 7
        "      - conv: {out: '${(w + 5) // 2}', kernel: 1}",  # (3 + 5)//2 = 4
        "      - conv: {out: '${w * 7 % 5}', kernel: 1}",     # 21 % 5 = 1
        "      - conv: {out: '${-w + 10}', kernel: 1}",       # −3 + 10 = 7
        "layers: [b]",
    )
    assert [r.output[0] for r in analyze(load(text)).rows if r.leaf] == [7, 4, 1, 7]


def test_expression_booleans_and_comparisons():
    text = lines(
        "input: 3x8x8",
        "blocks:",
        "  b:",
        "    params: {w: 3, flag: false}",
        "    layers:",
        "      - relu: {name: a, when: '${w > 2 and not flag}'}",   # kept
        "      - relu: {name: b, when: '${w == 2 or flag}'}",       # dropped
        "      - relu: {name: c, when: '${1 < w <= 3}'}",           # kept
        "      - relu: {name: d, when: '${w != 3}'}",               # dropped
        "      - relu: {name: e, when: '${true}'}",                 # kept
        "layers: [b]",
    )
    assert paths(text) == ["0", "0.a", "0.c", "0.e"]


def test_string_interpolation_in_names():
    text = lines(
        "input: 3x8x8",
        "layers:",
        "  - repeat:",
        "      times: 3",
        "      layers:",
        "        - conv: {name: 'conv${i + 1}', out: 4, kernel: 1}",
        "        - relu: {name: 'relu${i + 1}'}",
    )
    assert paths(text) == ["conv1", "relu1", "conv2", "relu2", "conv3", "relu3"]


def test_whole_string_expression_keeps_its_type_partial_one_is_text():
    text = lines(
        "input: 3x8x8",
        "blocks:",
        "  b:",
        "    params: {n: 2}",
        "    layers: [relu: {name: 'x${n}y${n * 2}'}]",
        "layers: [b]",
    )
    assert paths(text) == ["0", "0.x2y4"]


def test_repeat_splices_copies_with_i():
    text = lines(
        "input: 3x8x8",
        "layers:",
        "  - relu: {name: first}",
        "  - repeat: {times: 3, layers: [conv: {out: '${8 * (i + 1)}', kernel: 1}]}",
        "  - relu",
    )
    rows = analyze(load(text)).rows
    # spliced into the enclosing list: default names continue the index (1, 2, 3, then 4)
    assert [r.path for r in rows] == ["first", "1", "2", "3", "4"]
    assert [r.output[0] for r in rows[1:4]] == [8, 16, 24]


def test_repeat_zero_times_adds_nothing():
    text = lines("input: 3x8x8", "layers:", "  - repeat: {times: 0, layers: [relu]}", "  - relu")
    assert paths(text) == ["0"]


def test_nested_repeat_inner_i_shadows_outer():
    text = lines(
        "input: 3x8x8",
        "layers:",
        "  - repeat:",
        "      times: 2",
        "      layers:",
        "        - sequence:",
        "            name: 's${i}'",
        "            layers: [repeat: {times: 2, layers: [relu: {name: 'r${i}'}]}]",
    )
    assert paths(text) == ["s0", "s0.r0", "s0.r1", "s1", "s1.r0", "s1.r1"]


def test_when_false_drops_the_item():
    text = lines("input: 3x8x8", "layers:", "  - relu", "  - tanh: {when: false}", "  - sigmoid")
    rows = analyze(load(text)).rows
    # the dropped item takes no index, as if it were never written
    assert [(r.path, r.kind) for r in rows] == [("0", "relu"), ("1", "sigmoid")]


def test_when_true_keeps_the_item():
    assert paths(lines("input: 3x8x8", "layers:", "  - relu: {when: true}")) == ["0"]


def test_when_on_a_repeat_drops_all_copies():
    text = lines("input: 3x8x8", "layers:", "  - repeat: {times: 3, when: false, layers: [relu]}")
    assert paths(text) == []


def test_when_with_the_repeat_index():
    text = lines(
        "input: 3x8x8",
        "layers:",
        "  - repeat: {times: 4, layers: [relu: {name: 'r${i}', when: '${i % 2 == 0}'}]}",
    )
    assert paths(text) == ["r0", "r2"]


# --------------------------------------------------------------------------------------------
# concat, residual, head


def test_concat_branch_paths():
    text = lines(
        "input: 3x8x8",
        "layers:",
        "  - concat:",
        "      name: mix",
        "      branches:",
        "        left: [conv: {out: 4, kernel: 1}]",
        "        right: [conv: {out: 2, kernel: 3, padding: 1}, relu]",
    )
    spec = load(text)
    (concat,) = spec.root.items
    assert isinstance(concat, Concat)
    assert [b.name for b in concat.branches] == ["left", "right"]
    assert paths(text) == ["mix", "mix.left", "mix.left.0", "mix.right", "mix.right.0", "mix.right.1"]
    # 4 + 2 channels
    assert analyze(spec).output == (6, 8, 8)


def test_residual_with_default_shortcut_name():
    text = lines(
        "input: 4x8x8",
        "layers:",
        "  - residual:",
        "      name: block",
        "      layers: [conv: {name: conv, out: 8, kernel: 3, padding: 1}]",
        "      shortcut: [conv: {out: 8, kernel: 1}]",
    )
    assert paths(text) == ["block", "block.conv", "block.shortcut", "block.shortcut.0"]


def test_residual_shortcut_name_and_post():
    text = lines(
        "input: 4x8x8",
        "layers:",
        "  - residual:",
        "      name: block",
        "      layers: [conv: {name: conv, out: 8, kernel: 3, padding: 1}]",
        "      shortcut_name: downsample",
        "      shortcut: [conv: {out: 8, kernel: 1}, batchnorm]",
        "      post: [relu: {name: relu}]",
    )
    spec = load(text)
    (residual,) = spec.root.items
    assert isinstance(residual, Residual)
    assert residual.shortcut.name == "downsample"
    assert [n.name for n in residual.post] == ["relu"]
    assert paths(text) == ["block", "block.conv", "block.downsample", "block.downsample.0",
                           "block.downsample.1", "block.relu"]


def test_residual_without_shortcut_is_identity():
    text = lines(
        "input: 4x8x8",
        "layers:",
        "  - residual: {layers: [conv: {name: c, out: 4, kernel: 3, padding: 1}]}",
    )
    (residual,) = load(text).root.items
    assert residual.shortcut is None
    assert analyze(load(text)).output == (4, 8, 8)


def test_residual_with_unnamed_body_and_post_layers_loads():
    # Nothing is named here, so nothing can clash: the spec is valid as written.
    text = lines(
        "input: 4x8x8",
        "layers:",
        "  - residual:",
        "      layers: [conv: {out: 4, kernel: 3, padding: 1}, relu]",
        "      post: [relu]",
    )
    rows = analyze(load(text)).rows
    assert len(rows) == 4  # the residual, conv, relu, and the post relu
    assert len({r.path for r in rows}) == 4


def test_residual_shape_mismatch_is_an_error():
    text = lines(
        "input: 4x8x8",
        "layers:",
        "  - residual: {layers: [conv: {out: 8, kernel: 3, padding: 1}]}",
    )
    with pytest.raises(SpecError, match="cannot add 8×8×8"):
        analyze(load(text))


def test_concat_branches_must_agree_on_size():
    text = lines(
        "input: 4x8x8",
        "layers:",
        "  - concat: {branches: {a: [conv: {out: 2, kernel: 1}], b: [conv: {out: 2, kernel: 3}]}}",
    )
    with pytest.raises(SpecError, match="agree on H×W"):
        analyze(load(text))


def test_head_is_a_side_sequence():
    text = lines(
        "input: 4x8x8",
        "layers:",
        "  - head: {name: aux, layers: [flatten, linear: {out: 10}]}",
        "  - conv: {out: 2, kernel: 1}",
    )
    spec = load(text)
    head = spec.root.items[0]
    assert isinstance(head, Sequence) and head.side
    # default names continue after the head: the conv is item 1
    assert paths(text) == ["aux", "aux.0", "aux.1", "1"]
    # the conv reads the 4×8×8 input, not the head's 10-vector
    assert analyze(spec).output == (2, 8, 8)


def test_block_with_a_single_body_item_takes_the_block_label():
    (node,) = load(lines(
        "input: 3x8x8",
        "blocks:",
        "  act:",
        "    body: relu",
        "layers: [act]",
    )).root.items
    assert isinstance(node, Leaf)
    assert node.label == "act"


# --------------------------------------------------------------------------------------------
# top level


def test_spec_metadata_and_default_name():
    spec = load(lines("input: 3x8x8", "layers: [relu]"))
    assert spec.name == "net"
    assert spec.input == (3, 8, 8)
    assert spec.file == "net.yaml"
    named = load(lines("name: mine", "title: My net", "input: 3x8x8", "layers: [relu]"))
    assert (named.name, named.title) == ("mine", "My net")


@pytest.mark.parametrize("text, shape", [
    ("3x224x224", (3, 224, 224)),
    ("3×224×224", (3, 224, 224)),
    ("3X32X16", (3, 32, 16)),
    ("3, 32, 16", (3, 32, 16)),
    ([1, 28, 28], (1, 28, 28)),
    (10, (10,)),
    ("84", (84,)),
])
def test_parse_shape_accepts(text, shape):
    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["3x0", "3x0x5", "axbxc", "", [3, 2, 2, 2, 2], True, "3x2x2x2x2", -3])
def test_parse_shape_refuses(text):
    with pytest.raises(ValueError):
        parse_shape(text)


# --------------------------------------------------------------------------------------------
# errors: SpecError with file, line and a helpful message


def test_yaml_syntax_error_has_the_line():
    err = error(lines(
        "input: 3x8x8",        # 1
        "layers:",             # 2
        "  - relu",            # 3
        "  - relu: a: b",      # 4: a second ':' in a plain scalar
    ))
    assert line_of(err) == 4
    assert str(err).startswith("net.yaml:4:")
    assert "YAML" in str(err)


def test_unknown_kind_suggests_the_closest():
    err = error(lines(
        "input: 3x8x8",                     # 1
        "layers:",                          # 2
        "  - conv: {out: 4, kernel: 3}",    # 3
        "  - rleu",                         # 4
    ))
    assert str(err).startswith("net.yaml:4:")
    assert "unknown layer kind 'rleu'" in err.problem
    assert "did you mean 'relu'" in err.problem
    assert err.path == "1"


def test_unknown_kind_with_no_close_match_has_no_suggestion():
    err = error(lines("input: 3x8x8", "layers:", "  - zzzzzzzz"))
    assert "unknown layer kind 'zzzzzzzz'" in err.problem
    assert "did you mean" not in err.problem


def test_unknown_field_suggests_the_closest():
    err = error(lines(
        "input: 3x8x8",                                 # 1
        "layers:",                                      # 2
        "  - relu",                                     # 3
        "  - conv: {out: 4, kernel: 3, strid: 2}",      # 4
    ))
    assert line_of(err) == 4
    assert "unknown field 'strid' for conv" in err.problem
    assert "did you mean 'stride'" in err.problem


def test_wrong_field_type():
    err = error(lines(
        "input: 3x8x8",                          # 1
        "layers:",                               # 2
        "  - conv:",                             # 3
        "      out: 4",                          # 4
        "      kernel: \"three\"",               # 5
    ))
    assert line_of(err) == 5
    assert "kernel must be a positive integer" in err.problem
    assert "'three'" in err.problem


def test_zero_stride():
    err = error(lines(
        "input: 3x8x8",                                 # 1
        "layers:",                                      # 2
        "  - conv:",                                    # 3
        "      out: 4",                                 # 4
        "      kernel: 3",                              # 5
        "      stride: 0",                              # 6
    ))
    assert line_of(err) == 6
    assert "stride must be a positive integer, got 0" in err.problem


def test_boolean_is_not_an_integer():
    err = error(lines("input: 3x8x8", "layers:", "  - conv: {out: true, kernel: 3}"))
    assert "out must be a positive integer" in err.problem


def test_missing_required_field():
    err = error(lines(
        "input: 3x8x8",           # 1
        "layers:",                # 2
        "  - relu",               # 3
        "  - conv: {out: 4}",     # 4
    ))
    assert line_of(err) == 4
    assert "conv needs kernel" in err.problem


def test_undefined_block_param_points_into_the_block():
    err = error(lines(
        "input: 3x8x8",                                         # 1
        "blocks:",                                              # 2
        "  unit:",                                              # 3
        "    params: {width: ~}",                               # 4
        "    layers:",                                          # 5
        "      - conv: {out: '${widht}', kernel: 1}",           # 6
        "layers:",                                              # 7
        "  - unit: {width: 4}",                                 # 8
    ))
    assert line_of(err) == 6
    assert "'widht'" in err.problem
    assert "width" in err.problem.replace("'widht'", "")  # lists the parameters there are


def test_missing_block_param_points_at_the_use():
    err = error(lines(
        "input: 3x8x8",                                         # 1
        "blocks:",                                              # 2
        "  unit:",                                              # 3
        "    params: {width: ~, k: 3}",                         # 4
        "    layers:",                                          # 5
        "      - conv: {out: '${width}', kernel: '${k}'}",      # 6
        "layers:",                                              # 7
        "  - relu",                                             # 8
        "  - unit: {k: 1}",                                     # 9
    ))
    assert line_of(err) == 9
    assert "block 'unit' needs a value for width" in err.problem


def test_unknown_block_argument_suggests_the_parameter():
    err = error(lines(
        "input: 3x8x8",                                         # 1
        "blocks:",                                              # 2
        "  unit:",                                              # 3
        "    params: {width: ~}",                               # 4
        "    layers: [conv: {out: '${width}', kernel: 1}]",     # 5
        "layers:",                                              # 6
        "  - unit: {wdth: 4}",                                  # 7
    ))
    assert line_of(err) == 7
    assert "no parameter 'wdth'" in err.problem
    assert "did you mean 'width'" in err.problem


def test_block_that_includes_itself():
    err = error(lines(
        "input: 3x8x8",          # 1
        "blocks:",               # 2
        "  loop:",               # 3
        "    layers:",           # 4
        "      - relu",          # 5
        "      - loop",          # 6
        "layers: [loop]",        # 7
    ))
    assert line_of(err) == 6
    assert "block 'loop' includes itself (loop → loop)" in err.problem


def test_block_that_includes_itself_through_another():
    err = error(lines(
        "input: 3x8x8",          # 1
        "blocks:",               # 2
        "  a:",                  # 3
        "    layers: [b]",       # 4
        "  b:",                  # 5
        "    layers:",           # 6
        "      - a",             # 7
        "layers: [a]",           # 8
    ))
    assert line_of(err) == 7
    assert "includes itself (a → b → a)" in err.problem


def test_duplicate_names_in_one_list():
    err = error(lines(
        "input: 3x8x8",                  # 1
        "layers:",                       # 2
        "  - relu: {name: act}",         # 3
        "  - tanh",                      # 4
        "  - sigmoid: {name: act}",      # 5
    ))
    assert line_of(err) == 5
    assert "two layers are named 'act'" in err.problem


def test_duplicate_names_from_a_repeat():
    err = error(lines("input: 3x8x8", "layers:", "  - repeat: {times: 2, layers: [relu: {name: r}]}"))
    assert "two layers are named 'r'" in err.problem


def test_same_name_in_different_lists_is_fine():
    text = lines(
        "input: 3x8x8",
        "layers:",
        "  - sequence: {name: a, layers: [relu: {name: act}]}",
        "  - sequence: {name: b, layers: [relu: {name: act}]}",
    )
    assert paths(text) == ["a", "a.act", "b", "b.act"]


def test_python_object_tag_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    err = error(lines(
        "input: 3x8x8",
        "layers:",
        f"  - !!python/object/apply:os.system ['touch {marker}']",
    ))
    assert line_of(err) == 3
    assert not marker.exists()


def test_python_name_tag_is_refused():
    error(lines("input: !!python/name:os.system ''", "layers: [relu]"))


@pytest.mark.parametrize("text", ["- relu\n- tanh\n", "just text\n", "", "42\n"])
def test_top_level_must_be_a_mapping(text):
    err = error(text)
    assert "must be a mapping" in err.problem
    assert str(err).startswith("net.yaml:")


def test_unknown_top_level_key():
    err = error(lines(
        "input: 3x8x8",        # 1
        "nmae: mine",          # 2
        "layers: [relu]",      # 3
    ))
    assert line_of(err) == 2
    assert "unknown top-level key 'nmae'" in err.problem
    assert "did you mean 'name'" in err.problem


def test_unknown_top_level_key_points_at_the_key_not_its_value():
    # A typo'd `layers` whose list starts on the next line: the mistake is on line 2.
    err = error(lines(
        "input: 3x8x8",        # 1
        "layer:",              # 2
        "  - relu",            # 3
    ))
    assert "did you mean 'layers'" in err.problem
    assert line_of(err) == 2


@pytest.mark.parametrize("missing", ["input", "layers"])
def test_input_and_layers_are_required(missing):
    text = "input: 3x8x8\n" if missing == "layers" else "layers: [relu]\n"
    assert f"a spec needs {missing}" in error(text).problem


@pytest.mark.parametrize("shape", ["3x2x2x2x2", "3x0x8", "three"])
def test_bad_input_shape(shape):
    err = error(lines("name: n", f"input: {shape}", "layers: [relu]"))
    assert line_of(err) == 2
    assert "C×H×W" in err.problem


def test_error_string_is_file_line_column_layer_problem():
    text = lines(
        "input: 3x8x8",                          # 1
        "layers:",                               # 2
        "  - sequence:",                         # 3
        "      name: stem",                      # 4
        "      layers:",                         # 5
        "        - relu",                        # 6
        "        - conv: {out: 4, kernl: 3}",    # 7
    )
    with pytest.raises(SpecError) as info:
        parse_spec(text, "net.yaml", "net")
    message = str(info.value)
    assert message.startswith("net.yaml:7:")
    assert "layer stem.1: " in message
    assert message.endswith(info.value.problem)


def test_shape_errors_from_analysis_are_located_too():
    text = lines(
        "input: 3x8x8",                          # 1
        "layers:",                               # 2
        "  - conv: {out: 4, kernel: 3}",         # 3
        "  - linear: {out: 10}",                 # 4
    )
    with pytest.raises(SpecError) as info:
        analyze(load(text))
    assert str(info.value).startswith("net.yaml:4:")
    assert info.value.path == "1"
    assert "flatten" in info.value.problem


def test_name_with_a_dot_is_refused():
    err = error(lines("input: 3x8x8", "layers:", "  - relu: {name: a.b}"))
    assert line_of(err) == 3
    assert "dots" in err.problem


def test_when_must_be_boolean():
    err = error(lines("input: 3x8x8", "layers:", "  - relu: {when: 1}"))
    assert "when must be true or false" in err.problem


def test_repeat_times_must_be_a_non_negative_integer():
    err = error(lines("input: 3x8x8", "layers:", "  - repeat: {times: -1, layers: [relu]}"))
    assert "times must be a non-negative integer" in err.problem


def test_layers_must_be_a_list():
    assert "must be a list of layers" in error(lines("input: 3x8x8", "layers: relu")).problem


def test_fields_not_indented_under_the_kind():
    # `- conv:` followed by fields at the same level makes one item with several keys
    err = error(lines("input: 3x8x8", "layers:", "  - conv:", "    out: 4", "    kernel: 3"))
    assert "indent the fields under the kind" in err.problem


def test_expression_dividing_by_zero():
    err = error(lines("input: 3x8x8", "layers:", "  - conv: {out: '${4 // 0}', kernel: 1}"))
    assert line_of(err) == 3
    assert "divides by zero" in err.problem


@pytest.mark.parametrize("expr", ["2 ** 3", "__import__('os')", "open('x')", "[1][0]", "1.5", "a.b"])
def test_expression_refuses_anything_but_integer_arithmetic(expr):
    err = error(lines("input: 3x8x8", "layers:", f"  - conv: {{out: \"${{{expr}}}\", kernel: 1}}"))
    assert line_of(err) == 3


def test_expression_outside_a_block_has_no_parameters():
    err = error(lines("input: 3x8x8", "layers:", "  - conv: {out: '${width}', kernel: 1}"))
    assert "'width'" in err.problem


def test_block_name_taken_by_a_kind():
    err = error(lines("input: 3x8x8", "blocks:", "  relu: {layers: [tanh]}", "layers: [relu]"))
    assert "taken by a layer kind" in err.problem


def test_deeply_nested_expression_is_a_spec_error_not_a_crash():
    # a hostile or generated spec must still fail as a SpecError (the CLI prints it on one line)
    text = lines("input: 3x8x8", "layers:", "  - conv: {out: '${" + "-" * 3000 + "4}', kernel: 1}")
    error(text)


def test_deeply_nested_yaml_is_a_spec_error_not_a_crash():
    error("input: 3x8x8\nlayers: " + "[" * 3000 + "]" * 3000 + "\n")


@pytest.mark.parametrize("written, meant", [
    ("ReLU", "'relu'?)"), ("Conv3d", "'conv'? one kind for every rank"),
    ("BatchNorm2d", "'batchnorm'? one kind for every rank"), ("MaxPool1d", "'maxpool'?"),
])
def test_a_torch_class_name_is_pointed_at_its_kind(written: str, meant: str):
    err = error(lines("input: 3x8x8", "layers:", f"  - {written}"))
    assert f"unknown layer kind '{written}' (did you mean {meant}" in err.problem


def test_with_nothing_close_every_kind_is_listed():
    from cnncalc.layers import REGISTRY

    err = error(lines("input: 3x8x8", "layers:", "  - zzzzzzzz"))
    assert f"(kinds: {', '.join(REGISTRY)}; keywords:" in err.problem


def test_a_repeat_builds_a_constant_layer_once_and_an_expression_per_copy():
    """Layers whose fields hold no ${…} are built once per spec (one config for every copy);
    a field with an expression is evaluated for each copy."""
    spec = parse_spec("input: 3x8x8\nlayers:\n"
                      "  - repeat: {times: 3, layers: [{conv: {out: 4, kernel: 1}}, relu,"
                      " {conv: {out: '${4 * (i + 1)}', kernel: 1}}]}\n", "t", "t")
    leaves = spec.root.items
    constant = [leaf.config for leaf in leaves[0::3]]
    assert all(config is constant[0] for config in constant)
    assert [leaf.config["out"] for leaf in leaves[2::3]] == [4, 8, 12]
    # convs 3→4, 4→4 | 4→4, 4→8 | 8→4, 4→12: 3·4 + 4·4 + 4·4 + 4·8 + 8·4 + 4·12 weights,
    # 4 + 4 + 4 + 8 + 4 + 12 biases
    assert analyze(spec).totals.params == (12 + 16 + 16 + 32 + 32 + 48) + (4 + 4 + 4 + 8 + 4 + 12)
