"""Sliding windows seen from the network: the receptive field carried through each window
(Araujo et al., Distill 2019) and the floor warnings of windows whose division was not exact.

Pure Python. Used by the engine (cnncalc.engine) and every analysis that walks the graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import lcm

from .layers import Floor, Window, quotient_text

_ZERO = (Fraction(0), Fraction(0))


def _number_text(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


@dataclass(frozen=True)
class Field2:
    """Receptive field along height and width, per axis: size r, jump j (the cumulative stride:
    input pixels between neighbouring output units) and start (the centre of the first output
    unit's field, in input pixels from the centre of the first input pixel; negative where it
    lies in the padding)."""

    size: tuple[int, int] = (1, 1)
    jump: tuple[int, int] = (1, 1)
    start: tuple[Fraction, Fraction] = _ZERO

    def through(self, window: Window | None) -> Field2:
        if window is None:
            return self
        (k_h, s_h, o_h), (k_w, s_w, o_w) = window
        (r_h, r_w), (j_h, j_w), (t_h, t_w) = self.size, self.jump, self.start
        return Field2((r_h + (k_h - 1) * j_h, r_w + (k_w - 1) * j_w), (j_h * s_h, j_w * s_w),
                      (_shifted(t_h, o_h, j_h), _shifted(t_w, o_w, j_w)))

    def through_text(self, window: Window) -> list[str]:
        """The three recurrences with this field's numbers substituted, one line per axis (one
        when both axes agree)."""
        out = self.through(window)
        lines = []
        for a in range(2):
            k, s, offset = window[a]
            pad = Fraction(k - 1, 2) - offset
            lines.append(
                f"{self.size[a]} + ({k} − 1)·{self.jump[a]} = {out.size[a]}, "
                f"jump {self.jump[a]}·{s} = {out.jump[a]}, "
                f"start {_number_text(self.start[a])} + (({k} − 1)/2 − {_number_text(pad)})"
                f"·{self.jump[a]} = {_number_text(out.start[a])}")
        if lines[0] == lines[1]:
            return [f"RF: {lines[0]}"]
        return [f"RF height: {lines[0]}", f"RF width: {lines[1]}"]

    @staticmethod
    def union(fields: list[Field2]) -> Field2:
        """The union of the paths' fields per axis (concat branches, residual paths): the hull of
        the intervals [start − (r − 1)/2, start + (r − 1)/2], and the largest jump."""
        sizes, jumps, starts = [], [], []
        for a in range(2):
            # in integer units of 1/d, d a common denominator (Fraction arithmetic is slow)
            d = lcm(2, *(f.start[a].denominator for f in fields))
            centres = [(f.start[a].numerator * (d // f.start[a].denominator),
                        (f.size[a] - 1) * (d // 2)) for f in fields]
            left = min(c - half for c, half in centres)
            right = max(c + half for c, half in centres)
            sizes.append((right - left) // d + 1)
            starts.append(Fraction(left + right, 2 * d))
            jumps.append(max(f.jump[a] for f in fields))
        return Field2(tuple(sizes), tuple(jumps), tuple(starts))  # type: ignore[arg-type]


def _shifted(start: Fraction, offset: Fraction, jump: int) -> Fraction:
    """start + offset·jump, exactly: in integers when both are whole (the usual case), as
    Fraction arithmetic costs microseconds an operation."""
    if start.denominator == 1 and offset.denominator == 1:
        return Fraction(start.numerator + offset.numerator * jump)
    return start + offset * jump


def _division_text(floor: Floor) -> str:
    before, after = floor.padding
    pad = f" + 2·{before}" if before == after else f" + {before} + {after}"
    return f"({floor.size}{pad} − {floor.extent})/{floor.stride} = {quotient_text(floor.quotient)}"


def _unread_text(count: int, units: str) -> str:
    verb = "is" if units in ("row", "column") else "are"
    return f"the last {'' if count == 1 else f'{count} '}input {units} {verb} never read"


@dataclass(frozen=True)
class FloorWarning:
    """A layer whose sliding-window division was not exact along one or both axes.

    It is a ``warning`` when real input rows or columns are never read, a ``note`` when only
    padding is left over.
    """

    path: str
    floors: tuple[Floor, ...]

    @property
    def ignored_input(self) -> dict[str, int]:
        """Input rows (``height``) and columns (``width``) that the layer never reads."""
        return {f.axis: f.ignored_input for f in self.floors}

    @property
    def severity(self) -> str:
        return "warning" if any(f.ignored_input for f in self.floors) else "note"

    @property
    def detail(self) -> str:
        """The message without the layer's path: each axis's division and what it leaves unread."""
        same = len(self.floors) == 2 and _division_text(self.floors[0]) == _division_text(self.floors[1])
        floors = self.floors[:1] if same else self.floors
        parts = []
        for f in floors:
            axis = "height and width" if same else f.axis
            units = ("row and column" if same else "row" if f.axis == "height" else "column")
            whole = f.quotient.numerator // f.quotient.denominator
            text = (f"{axis}: {_division_text(f)} is not exact: output "
                    f"⌊{quotient_text(f.quotient).split(' ')[0]}⌋ + 1 = {whole + 1}")
            if f.ignored_input:
                plural = units.replace("row", "rows").replace("column", "columns") \
                    if f.ignored_input > 1 else units
                text += f"; {_unread_text(f.ignored_input, plural)}"
            else:
                text += "; only padding is left unread"
            parts.append(text)
        return "; ".join(parts)

    @property
    def message(self) -> str:
        return f"{self.path}: {self.detail}"
