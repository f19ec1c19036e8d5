"""Symbolic input sizes: ``cnncalc table SPEC --input 3xHxW``.

Any of C, H and W (or L, D) may be a name. The graph is walked as the engine walks it, but every size
is a sympy expression, computed by the layer rules' own arithmetic (:func:`~cnncalc.layers.slide_output`
and the kinds' ``output_shape``, ``params`` and ``macs``: Python's ``//`` is sympy's ``floor``
there, so the floors are the ones the formulas really apply). Nothing here restates a formula.

Each new spatial size gets a name, ``H1, H2, …`` (``W1, …``; after the input symbol), defined in
terms of the names before it: ``H1 = ⌊(H − 11)/4⌋ + 1``, ``H2 = ⌊(H1 − 3)/2⌋ + 1``. Two paths
that reach the same expression share the name. Output sizes, MACs and activation memory are
expressions in those names (and, expanded, in H and W); parameters stay numbers, except where
they depend on the input size: a linear layer after a flatten, whose input features are C·H′·W′.
Such a layer is reported with the sizes at which the spec's own weights fit.

sympy is imported only here, and this module only when an input has a symbol; the numeric engine
never touches it. It is an ordinary dependency of cnncalc (imported lazily).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from math import prod
from typing import Any

from .check import SEARCH_LIMIT
from .engine import (RowLookup, bytes_per_element, check_input_rank, check_rank,
                     implied_mismatch)
from .errors import CnncalcError, OptionError, SpecError, brief
from .fields import MAX_INT, MAX_INT_TEXT
from .graph import GRAPH_INPUT, Graph, Group, Op, lower, resolve_config
from .layers import REGISTRY, ShapeError
from .spec import Spec

_SEPARATOR = re.compile(r"\s*[x×X*,]\s*")
SAME_CHECK_SIZES = 512  # sizes 1..512 at which undecided symbolic shapes are compared
# Roundings (⌊⌋, ⌈⌉, a ceil_mode case) nested in one size's formula in the input symbols: past
# it the formula is unreadable and sympy's cost grows with its depth, so the spec is refused at
# the layer that passes it (a 300-step ceil_mode chain; ResNet-152 nests 5, a U-Net about 10).
MAX_NESTING = 32
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _tokens(text: str) -> list[str]:
    return [t for t in _SEPARATOR.split(text.strip())]


def has_symbol(text: Any) -> bool:
    """Whether an ``--input`` value names a size (``3xHxW``) instead of giving every number.
    Cheap, and imports nothing."""
    return isinstance(text, str) and any(_NAME.match(t) for t in _tokens(text))


class SymbolicError(CnncalcError):
    """A symbolic input that cannot be used (sympy missing, a bad name)."""


def _sympy() -> Any:
    try:
        import sympy
    except ImportError:
        raise SymbolicError("a symbolic --input needs sympy, a dependency of cnncalc: "
                            "pip install sympy (or reinstall cnncalc)") from None
    return sympy


def parse_symbolic_shape(text: str) -> tuple[Any, ...]:
    """``3xHxW`` → ``(3, H, W)`` with H, W positive integer sympy symbols (also ``1xL``,
    ``3xDxHxW``). Names may not contain x or X (the separator); the same name twice (``3xSxS``)
    is one size."""
    sp = _sympy()
    dims: list[Any] = []
    tokens = _tokens(text)
    if not 2 <= len(tokens) <= 4:
        raise OptionError(f"--input: a symbolic input needs C×H×W (or C×L, C×D×H×W), e.g. "
                          f"3xHxW, got {brief(text)}")
    for token in tokens:
        if re.fullmatch(r"[0-9]+", token) and len(token.lstrip("0")) > len(str(MAX_INT)):
            raise OptionError(f"--input: a {len(token.lstrip('0')):,}-digit size is over the "
                              f"limit of {MAX_INT_TEXT}")
        if re.fullmatch(r"[0-9]+", token) and int(token) > MAX_INT:
            raise OptionError(f"--input: {token} is over the limit of {MAX_INT_TEXT}")
        if re.fullmatch(r"[0-9]+", token) and int(token) > 0:
            dims.append(int(token))
        elif _NAME.match(token):
            dims.append(sp.Symbol(token, integer=True, positive=True))
        else:
            raise OptionError(f"--input: {brief(token)} is neither a positive integer nor a "
                              f"name (in {brief(text)})")
    return tuple(dims)


# --------------------------------------------------------------------------------------------
# The walk


@dataclass(frozen=True)
class SymRow:
    """A layer or group, as :class:`~cnncalc.engine.Row`, with expressions. ``output``, ``macs``
    and ``activation_bytes`` are in the size names (:attr:`SymbolicResult.sizes`); ``params`` is
    an int unless the layer's parameters depend on the input size (``params_depend``)."""

    path: str
    name: str
    kind: str
    depth: int
    leaf: bool
    head: bool
    input: tuple[Any, ...]
    output: tuple[Any, ...]
    params: Any
    macs: Any
    activation_bytes: Any
    params_depend: bool = False


@dataclass(frozen=True)
class Requirement:
    """A layer whose parameters depend on the input size: ``features`` (an expression in the
    size names: the input features of a layer on a vector, else the parameter count itself)
    must equal ``value``, its number at the spec's own input, for the spec's weights
    to fit; ``fits`` is the run of sizes around the spec's input where it does (square inputs
    when H and W are both symbols), ``None`` when it could not be found."""

    path: str
    features: Any
    value: int | None
    fits: tuple[int, int] | None


@dataclass
class SymbolicResult(RowLookup):
    spec: Spec
    input: tuple[Any, ...]
    batch: int
    dtype: str
    output: tuple[Any, ...]
    rows: list[SymRow]
    sizes: dict[Any, Any]  # name → definition in earlier names, in order
    expanded: dict[Any, Any]  # name → expression in the input symbols
    totals: dict[str, Any]
    requirements: list[Requirement]
    symbols: tuple[Any, ...]

    def expand(self, expr: Any) -> Any:
        """An expression in the size names, written in the input symbols."""
        sp = _sympy()
        return sp.sympify(expr).xreplace(self.expanded) if not isinstance(expr, int) else expr

    def evaluate(self, expr: Any, values: dict[Any, int]) -> int:
        """The integer an expression in the size names takes when the input symbols take
        ``values``; the names are evaluated in order, each from the ones before."""
        sp = _sympy()
        known = {sym: sp.Integer(v) for sym, v in values.items()}
        for name, definition in self.sizes.items():
            if name not in known:
                known[name] = sp.sympify(definition).xreplace(known)
        result = sp.sympify(expr).xreplace(known)
        if not result.is_Integer:
            raise ValueError(f"{expr} did not evaluate to an integer: {result}")
        return int(result)


@dataclass
class _SymWalk:
    batch: int
    bytes_per_element: int
    taken: set[str] = field(default_factory=set)  # the input's own names: never reused
    rows: list[SymRow] = field(default_factory=list)
    sizes: dict[Any, Any] = field(default_factory=dict)
    expanded: dict[Any, Any] = field(default_factory=dict)
    by_expansion: dict[Any, Any] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    shapes: list[tuple[Any, ...]] = field(default_factory=list)  # per op: its output
    input: tuple[Any, ...] = ()
    nesting: dict[Any, int] = field(default_factory=dict)  # name → roundings nested in it

    def name(self, expr: Any) -> Any:
        """A plain int, an existing name, or a new name for a new spatial size."""
        sp = _sympy()
        expr = sp.sympify(expr)
        if expr.is_Integer:
            return int(expr)
        if expr.is_Symbol:
            return expr
        depth = max((self.nesting.get(s, 0) for s in expr.free_symbols), default=0)
        if expr.has(sp.floor, sp.ceiling, sp.Piecewise, sp.Max, sp.Min):
            depth += 1
        if depth > MAX_NESTING:
            raise ShapeError(f"this size's formula would nest {depth} roundings of the input "
                             f"symbols; the limit is {MAX_NESTING} (give this axis a number in "
                             "--input)")
        full = expr.xreplace(self.expanded)
        if full in self.by_expansion:
            return self.by_expansion[full]
        roots = sorted(str(s) for s in full.free_symbols)
        prefix = roots[0] if len(roots) == 1 else "N"
        self.counters[prefix] = self.counters.get(prefix, 0) + 1
        while f"{prefix}{self.counters[prefix]}" in self.taken:
            self.counters[prefix] += 1
        symbol = sp.Symbol(f"{prefix}{self.counters[prefix]}", integer=True, positive=True)
        self.nesting[symbol] = depth
        self.sizes[symbol] = expr
        self.expanded[symbol] = full
        self.by_expansion[full] = symbol
        return symbol

    def _plain(self, value: Any) -> Any:
        sp = _sympy()
        value = sp.sympify(value)
        return int(value) if value.is_Integer else value

    def same(self, a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
        """Whether two shapes agree for every input size. sympy cannot always simplify a
        difference of floors and ceilings to zero (⌊(H − 1)/2⌋ + 1 − ⌈H/2⌉), so where it cannot
        decide, the two are compared at every size from 1 to SAME_CHECK_SIZES."""
        if a == b:
            return True
        if len(a) != len(b):
            return False
        sp = _sympy()
        for p, q in zip(a, b):
            difference = sp.simplify(sp.sympify(p).xreplace(self.expanded)
                                     - sp.sympify(q).xreplace(self.expanded))
            if difference == 0:
                continue
            if difference.is_number or not self._zero_at_sampled_sizes(difference):
                return False
        return True

    @staticmethod
    def _zero_at_sampled_sizes(difference: Any) -> bool:
        symbols = sorted(difference.free_symbols, key=str)
        return all(difference.xreplace(dict.fromkeys(symbols, n)) == 0
                   for n in range(1, SAME_CHECK_SIZES + 1))

    def run(self, graph: Graph, x: tuple[Any, ...]) -> None:
        """Every op in order, then every group's row (its sums added once, in sympy)."""
        self.input = x
        op_rows: dict[int, SymRow] = {}
        for op in graph.ops:
            xs = [self.shape_of(t) for t in op.inputs]
            if op.implied is not None:
                self.shapes.append(self.implied(op, xs))
                continue
            row = self.op(op, xs)
            self.shapes.append(row.output)
            op_rows[op.index] = row
        self.rows = [op_rows[item.index] if isinstance(item, Op) else
                     self.group_row(item, graph, op_rows) for item in graph.preorder]

    def shape_of(self, tensor: int) -> tuple[Any, ...]:
        return self.input if tensor == GRAPH_INPUT else self.shapes[tensor]

    def implied(self, op: Op, xs: list[tuple[Any, ...]]) -> tuple[Any, ...]:
        """A residual's add or a concat's join, with the engine's messages."""
        if op.implied == "residual":
            if not self.same(xs[0], xs[1]):
                raise implied_mismatch(op, xs)
            return xs[0]
        if len({len(y) for y in xs}) != 1 or not all(self.same(y[1:], xs[0][1:]) for y in xs[1:]):
            raise implied_mismatch(op, xs)
        return (self._plain(sum(y[0] for y in xs)), *xs[0][1:])

    def op(self, op: Op, xs: list[tuple[Any, ...]]) -> SymRow:
        rule = REGISTRY[op.kind]
        x: Any = xs[0] if getattr(rule, "arity", 1) == 1 else tuple(xs)
        try:
            config = resolve_config(op, self.shape_of)
            for shape in xs:
                check_rank(op.kind, rule.accepts, shape)
            y = rule.output_shape(config, x)
            if len(y) >= 2:
                y = (self._plain(y[0]), *(self.name(d) for d in y[1:]))
            else:
                y = tuple(self._plain(d) for d in y)
            params = self._plain(rule.params(config, x))
            macs = self._plain(rule.macs(config, x, y)) * self.batch
        except ShapeError as exc:
            shown = ", ".join("×".join(map(str, s)) for s in xs)
            raise SpecError(f"{exc} (symbolic input {shown})", op.where, op.path) from None
        except (TypeError, ValueError, RecursionError):  # sympy could not decide: never its text
            shown = ", ".join("×".join(map(str, s)) for s in xs)
            raise SpecError(f"{op.kind}'s shape rule cannot be decided for every input size "
                            f"(symbolic input {shown}): it compares sizes that depend on the "
                            "input; give numbers in --input", op.where, op.path) from None
        return SymRow(
            path=op.path, name=op.name, kind=op.label, depth=op.depth, leaf=True, head=op.head,
            input=xs[0], output=y, params=params, macs=macs,
            activation_bytes=self._plain(prod(y) * self.batch * self.bytes_per_element),
            params_depend=not isinstance(params, int))

    def group_row(self, group: Group, graph: Graph, op_rows: dict[int, SymRow]) -> SymRow:
        sp = _sympy()
        rows = [op_rows[i] for i in range(group.first, group.end) if i in op_rows]
        same_path = [r for r in rows if r.head == group.head]
        params = self._plain(sp.Add(*(r.params for r in rows)))
        return SymRow(
            path=group.path, name=group.name, kind=group.label, depth=group.depth, leaf=False,
            head=group.head, input=self.shape_of(group.input),
            output=self.shape_of(group.output), params=params,
            macs=self._plain(sp.Add(*(r.macs for r in same_path))),
            activation_bytes=self._plain(sp.Add(*(r.activation_bytes for r in same_path))),
            params_depend=not isinstance(params, int))


def _requirements(spec: Spec, result: SymbolicResult) -> list[Requirement]:
    """For each layer whose parameters depend on the input size: its input features, their value
    at the spec's own input, and the run of sizes around it where they keep that value."""
    at_spec: dict[Any, int | None] = {}
    if len(spec.input) == len(result.input) >= 2:
        for size, dim in zip(spec.input, result.input):
            if not isinstance(dim, int):  # one name for two sizes (3xSxS on 3×64×32): no value
                at_spec[dim] = size if at_spec.get(dim, size) == size else None
    if None in at_spec.values():
        at_spec = {}
    out = []
    for row in result.rows:
        if not (row.leaf and row.params_depend):
            continue
        # a layer on a vector depends through its input features; others through their own count
        features = row.input[0] if len(row.input) == 1 else row.params
        fits = None
        try:
            value = result.evaluate(features, at_spec)
        except (ValueError, TypeError, ZeroDivisionError):
            value = None
        used = result.expand(features).free_symbols if not isinstance(features, int) else set()
        spatial = [d for d in result.input[1:] if not isinstance(d, int) and d in used]
        if value is not None and spatial and all(at_spec.get(d) == at_spec.get(spatial[0])
                                                 for d in spatial):
            start = at_spec[spatial[0]]

            def fits_at(n: int) -> bool:
                try:
                    return result.evaluate(features, {**at_spec, **{d: n for d in spatial}}) == value
                except (ValueError, TypeError, ZeroDivisionError):
                    return False

            lo = hi = start
            while lo > 1 and lo > start - SEARCH_LIMIT and fits_at(lo - 1):
                lo -= 1
            while hi < start + SEARCH_LIMIT and fits_at(hi + 1):
                hi += 1
            fits = (lo, hi)
        out.append(Requirement(row.path, features, value, fits))
    return out


def analyze_symbolic(spec: Spec, input: str | tuple[Any, ...], batch: int = 1,
                     dtype: str = "fp32") -> SymbolicResult:
    """Walk ``spec`` with a symbolic input (``"3xHxW"`` or a tuple of ints and sympy symbols)."""
    sp = _sympy()
    dims = parse_symbolic_shape(input) if isinstance(input, str) else tuple(input)
    check_input_rank(spec, dims)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise OptionError(f"--batch must be a positive integer, got {batch!r}")
    walk = _SymWalk(batch, bytes_per_element(dtype),
                    taken={str(d) for d in dims if not isinstance(d, int)})
    graph = lower(spec)
    try:
        walk.run(graph, dims)
    except RecursionError:
        raise SymbolicError("the symbolic formulas are nested too deeply to process; give "
                            "numbers in --input") from None
    output = walk.shape_of(graph.outputs[0])
    leaves = [r for r in walk.rows if r.leaf]
    main = [r for r in leaves if not r.head]
    heads = [r for r in leaves if r.head]
    plain = walk._plain
    totals = {
        "params": plain(sp.Add(*(r.params for r in leaves))),
        "macs": plain(sp.Add(*(r.macs for r in main))),
        "activation_bytes": plain(sp.Add(*(r.activation_bytes for r in main))),
        "head_params": plain(sp.Add(*(r.params for r in heads))),
        "head_macs": plain(sp.Add(*(r.macs for r in heads))),
        "head_activation_bytes": plain(sp.Add(*(r.activation_bytes for r in heads))),
    }
    symbols = tuple(sorted({d for d in dims if isinstance(d, sp.Symbol)}, key=str))
    result = SymbolicResult(spec=spec, input=dims, batch=batch, dtype=dtype, output=output,
                            rows=walk.rows, sizes=walk.sizes, expanded=walk.expanded,
                            totals=totals, requirements=[], symbols=symbols)
    result.requirements = _requirements(spec, result)
    return result


# --------------------------------------------------------------------------------------------
# Writing expressions


def _printer() -> Any:
    sp = _sympy()
    from sympy.printing.str import StrPrinter

    class Printer(StrPrinter):
        def _bracket(self, expr: Any, left: str, right: str) -> str:
            num, den = sp.fraction(sp.together(expr.args[0]))
            top = self._print(num) if num.is_Atom else f"({self._print(num)})"
            inner = self._print(num) if den == 1 else f"{top}/{self._print(den)}"
            return f"{left}{inner}{right}"

        def _print_floor(self, expr: Any) -> str:
            return self._bracket(expr, "⌊", "⌋")

        def _print_ceiling(self, expr: Any) -> str:
            return self._bracket(expr, "⌈", "⌉")

    return Printer()


_BIG = re.compile(r"(?<![A-Za-z0-9_.])(\d{4,})(?![0-9])")
_POWER = re.compile(r"\*\*(\d+)")
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def pretty(expr: Any) -> str:
    """Course-notes style: ⌊(H − 11)/4⌋ + 1, 34,848·H1·W1, H5²."""
    if isinstance(expr, int):
        return f"{expr:,}"
    text = _printer().doprint(expr)
    text = _POWER.sub(lambda m: m.group(1).translate(_SUPERSCRIPT), text)
    text = text.replace("*", "·").replace(" - ", " − ")
    return _BIG.sub(lambda m: f"{int(m.group(1)):,}", text)


def plain(expr: Any) -> int | str:
    """For JSON: an int when the value is a number, else sympy's own (parseable) text."""
    return expr if isinstance(expr, int) else str(expr)


def _shape_text(shape: tuple[Any, ...]) -> str:
    return "×".join(str(d) if isinstance(d, int) else pretty(d) for d in shape)


def _bytes_text(expr: Any) -> str:
    return f"{expr:,} B" if isinstance(expr, int) else f"{pretty(expr)} B"


def legend_lines(result: SymbolicResult) -> list[str]:
    return [f"{name} = {pretty(definition)}" for name, definition in result.sizes.items()]


def footer_lines(result: SymbolicResult) -> list[str]:
    t = result.totals
    lines = [f"{result.spec.title} — input {_shape_text(result.input)}, batch {result.batch}, "
             f"{result.dtype}",
             f"params {pretty(t['params'])}; MACs {pretty(t['macs'])}; "
             f"activations {_bytes_text(t['activation_bytes'])}"]
    for req in result.requirements:
        what = "input features" if len(result.row(req.path).input) == 1 else "parameters"
        text = (f"{req.path}: its parameters depend on the input size: "
                f"{pretty(req.features)} {what}")
        if req.value is not None:
            text += f", {req.value:,} at the spec's input {'×'.join(map(str, result.spec.input))}"
        if req.fits is not None:
            names = " = ".join(dict.fromkeys(str(d) for d in result.input[1:]
                                             if not isinstance(d, int)))
            text += f"; the spec's weights fit {names} from {req.fits[0]} to {req.fits[1]}"
        lines.append(text)
    lines.append("sizes use the floors (and ceilings) the layers apply; "
                 "--format json has each in the input symbols")
    return lines


_COLUMNS = ("Layer", "Kind", "Output", "Params", "MACs", "Act. mem")


def _cells(row: SymRow) -> list[str]:
    kind = f"{row.kind} (head)" if row.head else row.kind
    params = pretty(row.params) if row.params != 0 else "—"
    macs = pretty(row.macs) if row.macs != 0 else "—"
    return [row.path, kind, _shape_text(row.output), params, macs, _bytes_text(row.activation_bytes)]


def result_rich(result: SymbolicResult, depth: int | None) -> Any:
    """The table, its legend of size names and the footer, as a :class:`cnncalc.render.Report`."""
    from .render import Report, TextTable

    report = Report()
    table = report.table(TextTable(f"{result.spec.name}: {result.spec.title} (symbolic)",
                                   _COLUMNS, right=(3, 4, 5)))
    for row in result.at_depth(depth):
        table.add_row(_cells(row), style="dim" if row.head else ("bold" if not row.leaf else None))
    report.line()
    if result.sizes:
        report.line("where", "bold")
        for line in legend_lines(result):
            report.line(f"  {line}")
        report.line()
    for line in footer_lines(result):
        report.line(line, "yellow" if "depend" in line else "dim")
    return report


def result_markdown(result: SymbolicResult, depth: int | None) -> str:
    from .render import _markdown_table

    text = _markdown_table(_COLUMNS, [_cells(r) for r in result.at_depth(depth)], right=(3, 4, 5))
    if result.sizes:
        text += "\nwhere\n\n" + "\n".join(f"- {line}" for line in legend_lines(result)) + "\n"
    return text + "\n" + "\n".join(f"- {line}" for line in footer_lines(result)) + "\n"


def result_csv(result: SymbolicResult, depth: int | None) -> str:
    from .render import _csv_writer

    out, writer = _csv_writer()
    from .render import SHAPE_CSV_COLUMNS, shape_csv_cells

    # "output" joins the axes with x, which the expressions may hold too: the _c/_h/_w columns
    # hold one expression each (docs/json.md)
    writer.writerow(["path", "kind", "depth", "leaf", "head", "output", "params", "macs",
                     "activation_bytes", "spec", "batch", "dtype", *SHAPE_CSV_COLUMNS])
    run = [result.spec.name, result.batch, result.dtype]
    for r in result.at_depth(depth):
        writer.writerow([r.path, r.kind, r.depth, int(r.leaf), int(r.head),
                         "x".join(str(result.expand(d)) for d in r.output),
                         plain(result.expand(r.params)), plain(result.expand(r.macs)),
                         plain(result.expand(r.activation_bytes)), *run,
                         *shape_csv_cells(plain(result.expand(d)) for d in r.input),
                         *shape_csv_cells(plain(result.expand(d)) for d in r.output)])
    return out.getvalue()


def result_dict(result: SymbolicResult, depth: int | None = None) -> dict[str, Any]:
    """``table --input 3xHxW --format json`` (docs/json.md): expressions as sympy text, in the
    input symbols; ``sizes`` gives each name's definition and expansion."""
    ex = result.expand

    def row(r: SymRow) -> dict[str, Any]:
        return {
            "path": r.path, "name": r.name, "kind": r.kind, "depth": r.depth, "leaf": r.leaf,
            "head": r.head, "input": [plain(ex(d)) for d in r.input],
            "output": [plain(ex(d)) for d in r.output],
            "output_named": [plain(d) for d in r.output],
            "params": plain(ex(r.params)), "params_depend_on_input": r.params_depend,
            "macs": plain(ex(r.macs)), "macs_named": plain(r.macs),
            "activation_bytes": plain(ex(r.activation_bytes)),
        }

    return {
        "spec": result.spec.name, "title": result.spec.title, "symbolic": True,
        "input": [plain(d) for d in result.input], "batch": result.batch, "dtype": result.dtype,
        "depth": depth, "output": [plain(ex(d)) for d in result.output],
        "sizes": {str(n): {"definition": str(d), "expression": str(result.expanded[n])}
                  for n, d in result.sizes.items()},
        "layers": [row(r) for r in result.at_depth(depth)],
        "totals": {k: plain(ex(v)) for k, v in result.totals.items()},
        "totals_named": {k: plain(v) for k, v in result.totals.items()},
        "requirements": [{"path": q.path, "features": plain(ex(q.features)),
                          "value_at_spec_input": q.value,
                          "fits": list(q.fits) if q.fits else None}
                         for q in result.requirements],
    }
