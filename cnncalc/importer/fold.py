"""Fold repeated modules of an imported model into blocks (see cnncalc.importer.write).

A module (a group of layers under one dotted prefix) is described by its structure: each
layer's path inside the module, its kind, and where each of its inputs comes from (a layer of
the module, by position; the module's input; or the k-th tensor it reads from elsewhere).
Modules of one structure are instances of one block. Each layer setting that differs between
instances is a block parameter; settings that always vary together share one, and a width
that is always a fixed multiple (or fraction) of another is written as an expression of it.

The result is checked: the folded spec and the flat one must analyse to the same rows (path,
input and output shapes, parameters, buffers, multiply-adds), or the flat one is used.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from . import GRAPH_INPUT, ImportedLayer, ImportedModel
from .write import Namer, _Group, _header, _nest, compact, field_order, scalar, shown

_WIDTHS = ("out", "groups", "num_parameters")  # settings that scale with a module's width


@dataclass(eq=False)
class _Module:
    group: _Group
    path: str
    leaves: list[tuple[str, ImportedLayer]] = field(default_factory=list)  # (local path, layer)
    input: str = ""
    output: str = ""
    # what it reads from outside, in order: a tensor, or (a merge's operands, all from
    # outside) a tuple of them, one list parameter whatever their number (DenseNet's concat)
    external: list[Any] = field(default_factory=list)
    lists: dict[int, int] = field(default_factory=dict)  # id(merge layer) → its external entry
    signature: Any = None


@dataclass
class _Block:
    name: str
    members: list[_Module]
    # per (leaf index, key): the literal, or the parameter expression "${…}"
    settings: dict[tuple[int, str], Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)  # name → default (None: required)
    values: dict[str, list[Any]] = field(default_factory=dict)  # name → value per member
    skips: list[str] = field(default_factory=list)  # the parameters naming outside tensors


def _defaults(kind: str) -> dict[str, Any]:
    from ..layers import REGISTRY

    rule = REGISTRY.get(kind)
    if rule is None:
        return {}
    return {key: f.default for key, f in rule.fields.items() if not f.required}


def _key(value: Any) -> str:
    return json.dumps(compact(value), sort_keys=True, default=str)


def _modules(root: _Group) -> tuple[list[_Module], dict[str, str]]:
    """Every group but the root, pre-order, with its layers; and each layer's spec path."""
    modules: list[_Module] = []
    paths: dict[str, str] = {}

    def walk(group: _Group, prefix: str, chain: list[_Module]) -> None:
        for item in group.items:
            if isinstance(item, _Group):
                module = _Module(item, prefix + item.name)
                modules.append(module)
                walk(item, module.path + ".", [*chain, module])
            else:
                name, layer = item
                paths[layer.output] = prefix + name
                for m in chain:
                    m.leaves.append((paths[layer.output][len(m.path) + 1:], layer))

    walk(root, "", [])
    return modules, paths


def _describe(module: _Module) -> None:
    local = {layer.output: k for k, (_, layer) in enumerate(module.leaves)}
    module.input = module.leaves[0][1].inputs[0] if module.leaves[0][1].inputs else GRAPH_INPUT
    module.output = module.leaves[-1][1].output
    items = []
    for k, (path, layer) in enumerate(module.leaves):
        refs = []
        operands = layer.inputs[1:]
        if operands and all(t not in local and t != module.input for t in operands):
            module.lists[id(layer)] = len(module.external)
            module.external.append(tuple(operands))
            refs = [_inner_ref(module, local, layer.inputs[0], k), ("ext-list",)]
        else:
            refs = [_inner_ref(module, local, t, k) for t in layer.inputs]
        defaults = _defaults(layer.kind)
        required = tuple(sorted(key for key in layer.config if key not in defaults))
        items.append((path, layer.kind, tuple(refs), required))
    module.signature = tuple(items)


def _inner_ref(module: _Module, local: dict[str, int], t: str, k: int) -> tuple[Any, ...]:
    if t in local and local[t] < k:
        return ("in", local[t])
    if t == module.input:
        return ("input",)
    if t not in module.external:
        module.external.append(t)
    return ("ext", module.external.index(t))


def _foldable(module: _Module, readers: dict[str, set[str]], outputs: set[str]) -> bool:
    """Only the module's output may be read outside it (its inner names are its own)."""
    if len(module.leaves) < 2:
        return False
    inner = {layer.output for _, layer in module.leaves}
    for _, layer in module.leaves[:-1]:
        t = layer.output
        if t in outputs or not readers.get(t, set()) <= inner:
            return False
    # an outside tensor passed by name cannot be the caller's own input: inside, `input` is
    # the instance's
    flat = [t for entry in module.external
            for t in (entry if isinstance(entry, tuple) else (entry,))]
    return GRAPH_INPUT not in flat


def _choose(root: _Group, modules: list[_Module], readers: dict[str, set[str]],
            outputs: set[str]) -> list[_Module]:
    """The modules to write as block instances: where a module's structure repeats, the one
    whose choice writes the fewest lines (an instance line plus its share of the block's
    definition, against writing it out with its own choices inside)."""
    by_group = {id(m.group): m for m in modules}
    ok = {id(m) for m in modules if _foldable(m, readers, outputs)}
    banned: set[int] = set()
    while True:
        counts = Counter(m.signature for m in modules if id(m) in ok and id(m) not in banned)
        chosen: list[_Module] = []

        def cost(group: _Group, pick: list[_Module]) -> float:
            """Lines to write ``group``'s items, choosing inside it into ``pick``."""
            total = 0.0
            for item in group.items:
                if not isinstance(item, _Group):
                    total += 1
                    continue
                m = by_group[id(item)]
                inner: list[_Module] = []
                spread = 3 + cost(item, inner)
                if id(m) in ok and id(m) not in banned and counts[m.signature] >= 2:
                    written = len(m.leaves) + 3 * _subgroups(item)
                    folded = 1 + written / counts[m.signature]
                    if folded <= spread:
                        pick.append(m)
                        total += folded
                        continue
                pick.extend(inner)
                total += spread
            return total

        cost(root, chosen)
        used = Counter(m.signature for m in chosen)
        lonely = [m for m in chosen if used[m.signature] < 2]
        if not lonely:
            return chosen
        banned.update(id(m) for m in lonely)


def _subgroups(group: _Group) -> int:
    return sum(1 + _subgroups(item) for item in group.items if isinstance(item, _Group))


def _snake(name: str) -> str:
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    name = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_").lower()
    return name or "block"


def _blocks(chosen: list[_Module], model: ImportedModel) -> list[_Block]:
    classes: dict[Any, list[_Module]] = {}
    for m in chosen:
        classes.setdefault(m.signature, []).append(m)
    blocks: list[_Block] = []
    taken: set[str] = _reserved()
    by_type: dict[str, list[list[_Module]]] = {}
    for members in classes.values():
        type_name = model.module_types.get(members[0].path, "")
        by_type.setdefault(type_name, []).append(members)
    for type_name, groups in by_type.items():
        groups.sort(key=len, reverse=True)
        base = _snake(type_name) if type_name else "block"
        main_children = {p.split(".")[0] for p, _ in groups[0][0].leaves}
        for n, members in enumerate(groups):
            extra = sorted({p.split(".")[0] for p, _ in members[0].leaves} - main_children)
            extra = [e for e in extra if not e[:1].isdigit()]
            name = f"{base}_{_snake(extra[0])}" if n and extra else base
            unique, k = name, 2
            while unique in taken:
                unique, k = f"{name}_{k}", k + 1
            taken.add(unique)
            blocks.append(_settings(_Block(unique, members)))
    return blocks


def _reserved() -> set[str]:
    """Names a block may not take: the layer kinds and keywords."""
    from ..layers import REGISTRY
    from ..spec import KEYWORDS

    return set(REGISTRY) | set(KEYWORDS)


def _settings(block: _Block) -> _Block:
    first = block.members[0]
    vectors: dict[tuple[int, str], list[Any]] = {}
    for k, (_, layer) in enumerate(first.leaves):
        defaults = _defaults(layer.kind)
        keys = list(layer.config)
        for m in block.members[1:]:
            keys += [key for key in m.leaves[k][1].config if key not in keys]
        for key in keys:
            values = [compact(m.leaves[k][1].config.get(key, defaults.get(key)))
                      for m in block.members]
            if len({_key(v) for v in values}) == 1:
                if key not in defaults or _key(defaults[key]) != _key(values[0]):
                    block.settings[(k, key)] = values[0]
            else:
                vectors[(k, key)] = values
    bases: list[tuple[str, str, list[Any]]] = []  # (name, key family, values)
    for (k, key), values in vectors.items():
        family = _family(key)
        expr = None
        for name, fam, base in bases:
            if fam != family:
                continue
            if [_key(v) for v in values] == [_key(v) for v in base]:
                expr = f"${{{name}}}"
                break
            ratio = _ratio(values, base) if family == "width" else None
            if ratio is not None:
                expr = f"${{{name} {ratio}}}"
                break
        if expr is None:
            local = re.sub(r"[^A-Za-z0-9_]", "_", first.leaves[k][0])
            if not local[:1].isalpha():  # a parameter is an identifier: features.0 → conv0
                local = re.sub(r"[^A-Za-z0-9_]", "_", first.leaves[k][1].kind) + local
            first_of_family = not any(b[1] == family for b in bases)
            if key == "out":
                name = "width" if first_of_family else f"{local}_{key}"
            else:
                name = key if _distinct(vectors, key) == 1 else f"{local}_{key}"
            name = _free(name, block)
            defaults = _defaults(first.leaves[k][1].kind)
            default = defaults.get(key)
            common = default if default is not None and \
                any(_key(v) == _key(default) for v in values) else None
            block.params[name] = common
            block.values[name] = values
            bases.append((name, family, values))
            expr = f"${{{name}}}"
        block.settings[(k, key)] = expr
    order = {(k, key): n for k, (_, layer) in enumerate(first.leaves)
             for key, n in field_order(layer.kind).items()}
    block.settings = dict(sorted(block.settings.items(),
                                 key=lambda kv: (kv[0][0], order.get(kv[0], 1 << 30))))
    for j in range(len(first.external)):
        name = _free("skip" if len(first.external) == 1 else f"skip{j + 1}", block)
        block.params[name] = None
        block.skips.append(name)
    return block


def _distinct(vectors: dict[tuple[int, str], list[Any]], key: str) -> int:
    return len({tuple(_key(v) for v in values) for (_, k), values in vectors.items() if k == key})


def _family(key: str) -> str:
    return "width" if key in _WIDTHS else key


def _free(name: str, block: _Block) -> str:
    unique, n = name, 2
    while unique in block.params or unique in ("input", "i"):
        unique, n = f"{name}{n}", n + 1
    return unique


def _ratio(values: list[Any], base: list[Any]) -> str | None:
    """``* m`` or ``// m`` where every value is base times (or over) one integer m > 1."""
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
               for v in [*values, *base]):
        return None
    if all(v % b == 0 for v, b in zip(values, base)):
        ratios = {v // b for v, b in zip(values, base)}
        if len(ratios) == 1 and (m := ratios.pop()) > 1:
            return f"* {m}"
    if all(b % v == 0 for v, b in zip(values, base)):
        ratios = {b // v for v, b in zip(values, base)}
        if len(ratios) == 1 and (m := ratios.pop()) > 1:
            return f"// {m}"
    return None


# --------------------------------------------------------------------------------------------
# Writing


@dataclass
class _Writer:
    model: ImportedModel
    paths: dict[str, str]  # tensor → spec path of the layer that makes it
    instances: dict[int, tuple[_Block, int]]  # id(group) → (block, member index)
    needed: set[tuple[str, str]] = field(default_factory=set)  # (scope, tensor) to name
    globals_: dict[str, str] = field(default_factory=dict)
    defining: dict[str, str] = field(default_factory=dict)  # tensor → an instance's path

    def __post_init__(self) -> None:
        self.namer = Namer(list(self.paths.values()))
        for block, i in self.instances.values():
            self.defining[block.members[i].output] = block.members[i].path

    def global_name(self, t: str) -> str:
        if t == GRAPH_INPUT:
            return GRAPH_INPUT
        if t not in self.globals_:
            self.globals_[t] = self.namer.name(self.defining.get(t) or self.paths[t])
        self.needed.add(("", t))
        return self.globals_[t]


@dataclass
class _Scope:
    """Where names are resolved: the top level (``block`` None) or one block's definition,
    written from its first member."""

    block: _Block | None = None
    member: _Module | None = None
    local: dict[str, str] = field(default_factory=dict)  # tensor → local name
    index: dict[int, int] = field(default_factory=dict)  # id(layer) → leaf index

    @property
    def key(self) -> str:
        return self.block.name if self.block else ""


def _ref(w: _Writer, scope: _Scope, t: str) -> str:
    if scope.block is None:
        return w.global_name(t)
    m = scope.member
    if t == m.input:
        return GRAPH_INPUT
    if t in scope.local:
        w.needed.add((scope.key, t))
        return scope.local[t]
    j = m.external.index(t)
    return f"${{{scope.block.skips[j]}}}"


def _records(w: _Writer, group: _Group, scope: _Scope, previous: str,
             depth: int, out: list[Any]) -> str:
    for pos, item in enumerate(group.items):
        if isinstance(item, _Group):
            placed = w.instances.get(id(item)) if scope.block is None else None
            if placed is not None:
                block, i = placed
                m = block.members[i]
                fields: dict[str, Any] = {"name": item.name}
                for pname, default in block.params.items():
                    if pname in block.skips:
                        continue
                    value = block.values[pname][i]
                    if default is None or _key(value) != _key(default):
                        fields[pname] = value
                for j, pname in enumerate(block.skips):
                    entry = m.external[j]
                    fields[pname] = [_ref(w, scope, t) for t in entry] \
                        if isinstance(entry, tuple) else _ref(w, scope, entry)
                if m.input != previous:
                    fields["from"] = _ref(w, scope, m.input)
                out.append(["instance", depth, block.name, fields, m.output, scope.key, pos])
                previous = m.output
            else:
                out.append(["sequence", depth, item.name])
                previous = _records(w, item, scope, previous, depth + 1, out)
            continue
        name, layer = item
        fields = {"name": name}
        k = scope.index.get(id(layer))
        block = scope.block
        config = dict(layer.config)
        if block is not None and k is not None:
            config = {key: value for (kk, key), value in block.settings.items() if kk == k}
        fields.update(shown(layer.kind, config) if block is None else
                      {key: compact(value) for key, value in config.items()})
        if layer.inputs and layer.inputs[0] != previous:
            fields["from"] = _ref(w, scope, layer.inputs[0])
        if block is not None and id(layer) in scope.member.lists:
            fields["with"] = f"${{{block.skips[scope.member.lists[id(layer)]]}}}"
        elif len(layer.inputs) > 1:
            extra = [_ref(w, scope, t) for t in layer.inputs[1:]]
            fields["with"] = extra[0] if len(extra) == 1 else extra
        out.append(["layer", depth, layer.kind, fields, layer.output, scope.key, pos])
        previous = layer.output
    return previous


def _render(w: _Writer, records: list[Any], indent: str, scope: _Scope | None) -> list[str]:
    lines: list[str] = []
    i = 0
    while i < len(records):
        rec = records[i]
        pad = indent + "      " * rec[1]
        if rec[0] == "sequence":
            lines += [f"{pad}- sequence:", f"{pad}    name: {scalar(rec[2])}", f"{pad}    layers:"]
            i += 1
            continue
        _, depth, kind, fields, tensor, key, pos = rec
        named = (key, tensor) in w.needed
        if named:
            fields = {**fields, "as": scope.local[tensor] if key and scope else
                      w.globals_[tensor]}
        if rec[0] == "instance":
            run = _run(w, records, i)
            if run > 1:
                args = {k: v for k, v in fields.items() if k != "name"}
                body = f"{kind}: {_flow(args)}" if args else kind
                lines.append(f"{pad}- repeat: {{times: {run}, layers: [{body}]}}")
                i += run
                continue
        lines.append(f"{pad}- {kind}: {_flow(fields)}")
        i += 1
    return lines


def _flow(fields: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {scalar(v)}" for k, v in fields.items()) + "}"


def _run(w: _Writer, records: list[Any], i: int) -> int:
    """How many instances from ``records[i]`` on can be one ``repeat``: the same block and
    arguments, no from or as, each named by its position (repeat's default names)."""
    first = records[i]

    def plain(rec: Any) -> bool:
        if rec[0] != "instance":
            return False
        fields = rec[3]
        return rec[0] == "instance" and rec[1] == first[1] and rec[2] == first[2] and \
            fields["name"] == str(rec[6]) and "from" not in fields and \
            (rec[5], rec[4]) not in w.needed and \
            {k: v for k, v in fields.items() if k != "name"} == \
            {k: v for k, v in first[3].items() if k != "name"}

    if not plain(first):
        return 1
    n = 1
    while i + n < len(records) and plain(records[i + n]) and records[i + n][6] == first[6] + n:
        n += 1
    return n


def folded_yaml(model: ImportedModel, flat: str) -> str | None:
    """The folded spec text, or None where nothing repeats or folding would change a row."""
    from ..engine import analyze
    from ..errors import CnncalcError
    from ..spec import parse_spec

    try:
        flat_rows = _rows(analyze(parse_spec(flat, model.source, model.name)))
    except CnncalcError:
        return None
    root = _nest(model.layers)
    modules, paths = _modules(root)
    for m in modules:
        _describe(m)
    readers: dict[str, set[str]] = {}
    for layer in model.layers:
        for t in layer.inputs:
            readers.setdefault(t, set()).add(layer.output)
    outputs = set(model.outputs)
    chosen = _choose(root, modules, readers, outputs)
    if not chosen:
        return None
    blocks = _blocks(chosen, model)
    instances = {id(m.group): (b, i) for b in blocks for i, m in enumerate(b.members)}
    w = _Writer(model, paths, instances)
    reserved = {re.sub(r"[^A-Za-z0-9_]", "_", p) for p in paths.values()}
    # block definitions first: their names are local, so they never clash with the top level's
    defs = []
    for b in blocks:
        m = b.members[0]
        scope = _Scope(b, m, index={id(layer): k for k, (_, layer) in enumerate(m.leaves)})
        for local, layer in m.leaves:
            name = re.sub(r"[^A-Za-z0-9_]", "_", local)
            while name in reserved or name in scope.local.values() or name == GRAPH_INPUT:
                name += "_"
            scope.local[layer.output] = name
        records: list[Any] = []
        _records(w, m.group, scope, m.input, 0, records)
        defs.append((b, scope, records))
    top: list[Any] = []
    last = _records(w, root, _Scope(), GRAPH_INPUT, 0, top)
    out_names = None
    if model.outputs and (len(model.outputs) > 1 or model.outputs[-1] != last):
        out_names = [w.global_name(t) for t in model.outputs]
    lines = _header(model)
    if out_names:
        lines.append("outputs: " + scalar(out_names))
    lines.append("blocks:")
    for b, scope, records in defs:
        lines.append(f"  {b.name}:")
        types = {model.module_types.get(m.path, "") for m in b.members} - {""}
        where = ", ".join(m.path for m in b.members[:3]) + (", …" if len(b.members) > 3 else "")
        what = f"{types.pop()} modules" if len(types) == 1 else "modules"
        lines.append(f"    description: {scalar(f'{what} of one structure: {where}')}")
        params = {k: ("~" if v is None else scalar(v)) for k, v in b.params.items()}
        lines.append("    params: {" + ", ".join(f"{k}: {v}" for k, v in params.items()) + "}")
        lines.append("    layers:")
        lines += _render(w, records, "      ", scope)
    lines.append("layers:")
    lines += _render(w, top, "  ", None)
    text = "\n".join(lines) + "\n"
    try:
        rows = _rows(analyze(parse_spec(text, model.source, model.name)))
    except CnncalcError:
        return None
    return text if rows == flat_rows else None


def _rows(analysis: Any) -> list[tuple[Any, ...]]:
    """What must not change: every row's path, output shape and counts, and a layer's kind and
    input shape. (A group's input shape may: a flat sequence shows the tensor before it, a
    block instance the one it reads with ``from``.)"""
    return [(r.path, r.leaf, r.kind if r.leaf else "", r.input if r.leaf else (), r.output,
             r.params, r.buffers, r.macs) for r in analysis.rows]
