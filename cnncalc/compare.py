"""Side-by-side comparison of several analyses: totals with ratios, and rows matched by path."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only annotations: importing this module (as cnncalc/__init__ does) is cheap
    from .engine import Analysis, Row

METRICS = ("params", "macs", "activation_bytes")


@dataclass(frozen=True)
class MatchedRow:
    """The rows of several analyses at one path (``None`` where a spec has no such path)."""

    path: str
    rows: tuple[Row | None, ...]


@dataclass(frozen=True)
class Comparison:
    analyses: tuple[Analysis, ...]
    rows: tuple[MatchedRow, ...]

    def ratios(self, metric: str) -> list[Fraction | None]:
        """Each analysis's total ``metric`` divided by the first's (``None`` where that is 0)."""
        values = [getattr(a.totals, metric) for a in self.analyses]
        base = values[0]
        return [Fraction(v, base) if base else None for v in values]

    @staticmethod
    def row_ratio(matched: MatchedRow, metric: str, index: int) -> Fraction | None:
        first, other = matched.rows[0], matched.rows[index]
        if first is None or other is None or not getattr(first, metric):
            return None
        return Fraction(getattr(other, metric), getattr(first, metric))

    # notebooks: a short repr, the comparison as HTML, a DataFrame (all in cnncalc.render)
    def __repr__(self) -> str:
        from .render import comparison_repr

        return comparison_repr(self)

    def _repr_html_(self) -> str:
        from .render import comparison_html

        return comparison_html(self)

    def to_pandas(self) -> "pandas.DataFrame":  # noqa: F821 (pandas is imported when called)
        from .render import comparison_dataframe

        return comparison_dataframe(self)


def compare(analyses: list[Analysis], depth: int | None = 0) -> Comparison:
    """Match rows by path across analyses.

    ``depth=0`` (default) keeps rows of any depth whose path occurs in at least two analyses (all
    rows when there is one), less those with no parameters and no MACs in any analysis
    (activations, pooling); a positive depth keeps every row at that depth, as ``table --depth``.
    """
    picked = [a.rows if not depth else a.at_depth(depth) for a in analyses]
    by_path = [{r.path: r for r in rows} for rows in picked]
    order: list[str] = []
    seen: set[str] = set()
    for rows in picked:
        for r in rows:
            if r.path not in seen:
                seen.add(r.path)
                order.append(r.path)
    needed = 1 if len(analyses) == 1 or depth else 2
    matched = []
    for path in order:
        rows = tuple(index.get(path) for index in by_path)
        present = [r for r in rows if r is not None]
        if not depth and not any(r.params or r.macs for r in present):
            continue
        if len(present) >= needed:
            matched.append(MatchedRow(path, rows))
    return Comparison(tuple(analyses), tuple(matched))
