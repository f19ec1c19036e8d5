"""Torch builders of the modern kinds and the merges: for every accepted rank the module's output
shape, parameters and buffers are the rule's; what autograd really saves (counted with
saved_tensors_hooks) is what the kind's memory rule says; broadcasting is torch's."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnncalc.backend.builders import BUILDERS
from cnncalc.layers import REGISTRY, ShapeError

SHAPES = {1: (6,), 2: (6, 7), 3: (6, 5, 4), 4: (6, 3, 4, 5)}
BATCH = 2

# (kind, fields): every new kind, and the variants that change its counts
CASES = [
    ("layernorm", {}), ("layernorm", {"over": "last"}), ("layernorm", {"bias": False}),
    ("layernorm", {"affine": False}), ("layernorm", {"over": "last", "elementwise_affine": False}),
    ("groupnorm", {"groups": 3}), ("groupnorm", {"groups": 2, "affine": False}),
    ("instancenorm", {}), ("instancenorm", {"affine": True}),
    ("instancenorm", {"affine": True, "track_running_stats": True}),
    ("layer_scale", {}), ("slice", {"start": 1, "stop": 4}), ("slice", {"start": -2}),
    ("slice", {"chunks": 4, "index": 2}), ("channel_shuffle", {"groups": 3}),
    ("drop_path", {"p": 0.5}), ("prelu", {}), ("prelu", {"num_parameters": 6}),
    ("gelu", {}), ("gelu", {"approximate": "tanh"}), ("swish", {}), ("mish", {}),
    ("hardsigmoid", {}), ("silu", {}), ("hardswish", {}), ("relu6", {}), ("elu", {}),
    ("leaky_relu", {}), ("relu", {}), ("sigmoid", {}),
]
MERGES = [
    ("add", {}, [(0, 0)]), ("mul", {}, [(0, 0), (0, 1)]), ("concat", {}, [(0, 2)]),
    ("concat", {"axis": -1}, [(0, 3)]),
]


def config(kind: str, fields: dict) -> dict:
    rule = REGISTRY[kind]
    cfg = {name: f.default for name, f in rule.fields.items() if not f.required}
    return rule.finish({**cfg, **fields})


def _numel(tensors) -> int:
    return sum(t.numel() for t in tensors)


def _cases():
    for kind, fields in CASES:
        for rank in REGISTRY[kind].accepts:
            yield pytest.param(kind, fields, rank, id=f"{kind}-{fields}-{rank}")


@pytest.mark.parametrize("kind,fields,rank", list(_cases()))
def test_module_matches_the_rule(kind, fields, rank):
    rule, cfg, x = REGISTRY[kind], config(kind, fields), SHAPES[rank]
    y = rule.output_shape(cfg, x)
    module = BUILDERS[kind](cfg, x)
    for mode in (module.train(), module.eval()):
        with torch.no_grad():
            out = mode(torch.randn(BATCH, *x))
        assert tuple(out.shape) == (BATCH, *y)
    assert _numel(module.parameters()) == rule.params(cfg, x)
    assert _numel(p for p in module.parameters() if p.requires_grad) == rule.trainable(cfg, x)
    assert _numel(module.buffers()) == rule.buffers(cfg, x)


# operands per rank: a full map, a per-channel gate, more channels, a longer last axis
def _operands(rank: int) -> list[tuple[int, ...]]:
    full = SHAPES[rank]
    gate = (full[0], *[1] * (rank - 1))
    wider = (full[0] + 3, *full[1:])
    longer = (*full[:-1], full[-1] + 2) if rank > 1 else (full[0] + 2,)
    return [full, gate, wider, longer]


@pytest.mark.parametrize("kind,fields,pairs", MERGES, ids=[f"{m[0]}-{m[1]}" for m in MERGES])
@pytest.mark.parametrize("rank", [1, 2, 3, 4])
def test_merge_modules_take_their_inputs_positionally(kind, fields, pairs, rank):
    rule, cfg, operands = REGISTRY[kind], config(kind, fields), _operands(rank)
    for i, j in pairs:
        x = (operands[i], operands[j])
        y = rule.output_shape(cfg, x)
        module = BUILDERS[kind](cfg, x)
        out = module(*(torch.randn(BATCH, *s) for s in x))
        assert tuple(out.shape) == (BATCH, *y)
        assert _numel(module.parameters()) == rule.params(cfg, x) == 0


def test_three_way_merges():
    x = ((6, 4, 4), (6, 1, 1), (1, 4, 4))
    out = BUILDERS["mul"]({}, x)(*(torch.randn(BATCH, *s) for s in x))
    assert tuple(out.shape[1:]) == REGISTRY["mul"].output_shape({}, x) == (6, 4, 4)
    x = ((2, 4), (3, 4), (5, 4))
    cfg = config("concat", {})
    out = BUILDERS["concat"](cfg, x)(*(torch.randn(BATCH, *s) for s in x))
    assert tuple(out.shape[1:]) == REGISTRY["concat"].output_shape(cfg, x) == (2 + 3 + 5, 4)


_sizes = st.lists(st.sampled_from([1, 2, 3]), min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(a=_sizes, b=_sizes, ones=st.lists(st.booleans(), min_size=4, max_size=4))
def test_mul_broadcasts_as_torch(a, b, ones):
    rank = min(len(a), len(b))
    a = tuple(a[:rank])
    b = tuple(1 if ones[i] else b[i] for i in range(rank))
    try:
        expected = tuple(torch.broadcast_shapes((BATCH, *a), (BATCH, *b)))[1:]
    except RuntimeError:
        with pytest.raises(ShapeError, match="cannot broadcast"):
            REGISTRY["mul"].output_shape({}, (a, b))
        return
    assert REGISTRY["mul"].output_shape({}, (a, b)) == expected
    out = BUILDERS["mul"]({}, (a, b))(torch.ones(BATCH, *a), torch.ones(BATCH, *b))
    assert tuple(out.shape[1:]) == expected


# --------------------------------------------------------------------------------------------
# What autograd keeps: the memory rule against torch's saved tensors


def _saved(module, xs: list[torch.Tensor]) -> dict:
    """Which inputs autograd keeps, whether it keeps the output, and the bytes of everything
    else it keeps (parameters aside)."""
    saved: list[torch.Tensor] = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = module(*xs)
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    inputs = [x.untyped_storage().data_ptr() for x in xs]
    out = y.untyped_storage().data_ptr()
    kept_inputs, kept_output, extra = set(), False, 0
    for t in saved:
        ptr = t.untyped_storage().data_ptr()
        if ptr in params:
            continue
        if ptr in inputs:
            kept_inputs.add(inputs.index(ptr))
        elif ptr == out:
            kept_output = True
        else:
            extra += t.numel() * t.element_size()
    return {"inputs": kept_inputs, "output": kept_output, "extra bytes": extra}


def _claimed(rule, cfg, x, y, n_inputs: int) -> dict:
    saved = rule.saved_for_backward(cfg, x, y)
    whats = {s.what for s in saved}
    extra = sum(s.elements * BATCH * (s.bytes_each or 4) for s in saved
                if s.what not in ("input", "output"))
    return {"inputs": set(range(n_inputs)) if "input" in whats else set(),
            "output": "output" in whats, "extra bytes": extra}


MEMORY_CASES = [
    *CASES,
    ("layernorm", {"over": "last", "bias": False}),
    ("instancenorm", {"track_running_stats": True}),
]


@pytest.mark.parametrize("kind,fields", MEMORY_CASES, ids=[f"{k}-{f}" for k, f in MEMORY_CASES])
def test_saved_for_backward_is_what_autograd_keeps(kind, fields):
    rule, cfg = REGISTRY[kind], config(kind, fields)
    x = SHAPES[3] if 3 in rule.accepts else SHAPES[2]
    y = rule.output_shape(cfg, x)
    module = BUILDERS[kind](cfg, x).train()
    measured = _saved(module, [torch.randn(BATCH, *x, requires_grad=True)])
    assert measured == _claimed(rule, cfg, x, y, 1)


@pytest.mark.parametrize("kind,shapes", [
    ("mul", ((6, 5, 4), (6, 1, 1))), ("mul", ((6, 5, 4), (1, 5, 4), (6, 1, 1))),
    ("add", ((6, 5, 4), (6, 5, 4))), ("concat", ((6, 5, 4), (2, 5, 4))),
])
def test_merges_keep_what_autograd_keeps(kind, shapes):
    rule, cfg = REGISTRY[kind], config(kind, {})
    y = rule.output_shape(cfg, shapes)
    module = BUILDERS[kind](cfg, shapes)
    measured = _saved(module, [torch.randn(BATCH, *s, requires_grad=True) for s in shapes])
    assert measured == _claimed(rule, cfg, shapes, y, len(shapes))


@pytest.mark.parametrize("kind,fields,view", [
    ("slice", {"start": 1, "stop": 4}, True), ("slice", {"chunks": 2, "index": 1}, True),
    ("drop_path", {"p": 0.5}, True), ("channel_shuffle", {"groups": 2}, False),
])
def test_views_at_inference_share_the_input(kind, fields, view):
    rule, cfg, x = REGISTRY[kind], config(kind, fields), SHAPES[3]
    assert rule.view_at_inference is view
    module = BUILDERS[kind](cfg, x).eval()
    inp = torch.randn(BATCH, *x)
    shares = module(inp).untyped_storage().data_ptr() == inp.untyped_storage().data_ptr()
    assert shares is view


def test_drop_path_drops_whole_samples_in_training_only():
    module = BUILDERS["drop_path"]({"p": 0.5}, (6, 5, 4)).train()
    torch.manual_seed(0)
    out = module(torch.ones(64, 6, 5, 4))
    per_sample = out.flatten(1)
    assert set(per_sample.min(1).values.tolist()) <= {0.0, 2.0}  # dropped, or kept × 1/(1 − p)
    assert torch.equal(per_sample.min(1).values, per_sample.max(1).values)
    module.eval()
    x = torch.randn(3, 6, 5, 4)
    assert module(x) is x


def test_channels_layernorm_is_layer_norm_over_c_at_each_position():
    cfg = config("layernorm", {})
    module = BUILDERS["layernorm"](cfg, (6, 5, 4))
    x = torch.randn(BATCH, 6, 5, 4)
    expected = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (6,)).permute(0, 3, 1, 2)
    assert torch.allclose(module(x), expected, atol=1e-6)
    assert tuple(module.weight.shape) == (6,)


def test_layer_scale_gamma_is_c_by_ones_as_convnext():
    module = BUILDERS["layer_scale"](config("layer_scale", {}), (96, 7, 7))
    assert tuple(module.layer_scale.shape) == (96, 1, 1)  # torchvision CNBlock: (dim, 1, 1)
    assert torch.allclose(module.layer_scale, torch.full((96, 1, 1), 1e-6))


def test_channel_shuffle_interleaves_the_groups():
    module = BUILDERS["channel_shuffle"]({"groups": 2}, (6,))
    x = torch.arange(6.0).reshape(1, 6)
    assert module(x).tolist() == [[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]]


def test_slice_chunk_is_torch_chunk():
    x = torch.randn(1, 10, 2, 2)
    for index, chunk in enumerate(x.chunk(3, dim=1)):
        cfg = config("slice", {"chunks": 3, "index": index})
        assert torch.equal(BUILDERS["slice"](cfg, (10, 2, 2))(x), chunk)


def test_memory_model_saved_bytes_equal_autograds_for_a_spec_of_the_new_kinds():
    """The memory model's saved-for-backward total (each tensor once) against the storages
    autograd keeps in the backend's model, parameters aside."""
    from cnncalc import analyze, parse_spec
    from cnncalc.backend import build
    from cnncalc.memory import memory

    text = """input: 6x5x5
layers:
  - layernorm
  - groupnorm: {groups: 3}
  - instancenorm: {affine: true, track_running_stats: true}
  - layer_scale
  - slice: {chunks: 2, index: 1}
  - channel_shuffle: {groups: 3}
  - drop_path: {p: 0.1}
  - prelu
  - gelu: {approximate: tanh}
  - mish
  - layernorm: {over: last}
"""
    spec = parse_spec(text, "net.yaml", "net")
    model = build(spec).train()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(torch.randn(BATCH, 6, 5, 5, requires_grad=True))
    assert memory(analyze(spec, batch=BATCH), "adam").saved_bytes == sum(storages.values())
