"""Sliding windows seen from the network: the receptive field carried through each window
(Araujo et al., Distill 2019) and the floor warnings of windows whose division was not exact.

Pure Python. Used by the engine (cnncalc.engine) and every analysis that walks the graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import lcm
from typing import Any

from .fields import AXIS_NAMES
from .layers import Floor, Window, quotient_text

_ZERO = (Fraction(0), Fraction(0))


def _number_text(value: Fraction) -> str:
    """7; 0.5 (a terminating decimal, as 2-D starts are); 99/148 otherwise (an upsampling jump)."""
    if value.denominator == 1:
        return str(value.numerator)
    d = value.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    return f"{float(value):g}" if d == 1 else f"{value.numerator}/{value.denominator}"


def _whole(value: Any) -> Any:
    """A Fraction that is a whole number as an int (jumps and sizes stay ints in 2-D nets)."""
    if isinstance(value, Fraction) and value.denominator == 1:
        return value.numerator
    return value


@dataclass(frozen=True)
class Field2:
    """Receptive field per spatial axis (height and width for 2-D; length; depth, height and
    width): size r, jump j (the cumulative stride: input pixels between neighbouring output units)
    and start (the centre of the first output unit's field, in input pixels from the centre of the
    first input pixel; negative where it lies in the padding). Each is a tuple with one entry per
    axis. The default is the 2-D identity; a field that has seen no window takes the rank of the
    first window it meets (so the engine's ``Field2()`` serves 1-D and 3-D specs too).

    Jumps are ints, except after an upsampling layer (conv_transpose, upsample), whose window's
    stride is 1/S: there the jump is a Fraction j/S (see layers.ConvTranspose.window)."""

    size: tuple[Any, ...] = (1, 1)
    jump: tuple[Any, ...] = (1, 1)
    start: tuple[Fraction, ...] = _ZERO

    @staticmethod
    def identity(rank: int) -> Field2:
        """The field of the input itself: r = 1, j = 1, start 0 on each of ``rank`` axes."""
        return Field2((1,) * rank, (1,) * rank, (Fraction(0),) * rank)

    @property
    def rank(self) -> int:
        return len(self.size)

    @property
    def trivial(self) -> bool:
        """Whether this is an identity field (no window seen yet)."""
        return (all(r == 1 for r in self.size) and all(j == 1 for j in self.jump)
                and not any(self.start))

    def _as_rank(self, rank: int) -> Field2:
        if rank == self.rank:
            return self
        if self.trivial:
            return Field2.identity(rank)
        raise ValueError(f"a {rank}-axis window after a {self.rank}-axis receptive field")

    def through(self, window: Window | None) -> Field2:
        if window is None:
            return self
        field = self._as_rank(len(window))
        sizes, jumps, starts = [], [], []
        for (k, s, o), r, j, t in zip(window, field.size, field.jump, field.start):
            sizes.append(_whole(r + (k - 1) * j))
            jumps.append(_whole(j * s))
            starts.append(_shifted(t, o, j))
        return Field2(tuple(sizes), tuple(jumps), tuple(starts))

    def through_text(self, window: Window) -> list[str]:
        """The three recurrences with this field's numbers substituted, one line per axis (one
        when all axes agree)."""
        field = self._as_rank(len(window))
        out = field.through(window)
        lines = []
        for a in range(len(window)):
            k, s, offset = window[a]
            pad = Fraction(k - 1, 2) - offset
            lines.append(
                f"{_number_text(Fraction(field.size[a]))} + ({_number_text(Fraction(k))} − 1)·"
                f"{_number_text(Fraction(field.jump[a]))} = {_number_text(Fraction(out.size[a]))}, "
                f"jump {_number_text(Fraction(field.jump[a]))}·{_number_text(Fraction(s))} = "
                f"{_number_text(Fraction(out.jump[a]))}, "
                f"start {_number_text(field.start[a])} + (({_number_text(Fraction(k))} − 1)/2 "
                f"{'−' if pad >= 0 else '+'} {_number_text(abs(pad))})·"
                f"{_number_text(Fraction(field.jump[a]))} = "
                f"{_number_text(out.start[a])}")
        if all(line == lines[0] for line in lines):
            return [f"RF: {lines[0]}"]
        names = AXIS_NAMES[len(window)]
        return [f"RF {names[a]}: {line}" for a, line in enumerate(lines)]

    @staticmethod
    def union(fields: list[Field2]) -> Field2:
        """The union of the paths' fields per axis (concat branches, residual paths, merges): the
        hull of the intervals [start − (r − 1)/2, start + (r − 1)/2], and the largest jump.
        Identity fields take the rank of the others."""
        rank = max((f.rank for f in fields if not f.trivial), default=fields[0].rank)
        fields = [f._as_rank(rank) for f in fields]
        sizes, jumps, starts = [], [], []
        for a in range(rank):
            if all(isinstance(f.size[a], int) for f in fields):
                # in integer units of 1/d, d a common denominator (Fraction arithmetic is slow)
                d = lcm(2, *(f.start[a].denominator for f in fields))
                centres = [(f.start[a].numerator * (d // f.start[a].denominator),
                            (f.size[a] - 1) * (d // 2)) for f in fields]
                left = min(c - half for c, half in centres)
                right = max(c + half for c, half in centres)
                sizes.append((right - left) // d + 1)
                starts.append(Fraction(left + right, 2 * d))
            else:  # a fractional size (after an upsampling layer): exact, in Fractions
                left = min(f.start[a] - Fraction(f.size[a] - 1, 2) for f in fields)
                right = max(f.start[a] + Fraction(f.size[a] - 1, 2) for f in fields)
                sizes.append(_whole(right - left + 1))
                starts.append((left + right) / 2)
            jumps.append(max(f.jump[a] for f in fields))
        return Field2(tuple(sizes), tuple(jumps), tuple(starts))


def _shifted(start: Fraction, offset: Fraction, jump: Any) -> Fraction:
    """start + offset·jump, exactly: in integers when all are whole (the usual case), as
    Fraction arithmetic costs microseconds an operation."""
    if start.denominator == 1 and offset.denominator == 1 and isinstance(jump, int):
        return Fraction(start.numerator + offset.numerator * jump)
    return Fraction(start + offset * jump)


def _division_text(floor: Floor) -> str:
    before, after = floor.padding
    pad = f" + 2·{before}" if before == after else f" + {before} + {after}"
    return f"({floor.size}{pad} − {floor.extent})/{floor.stride} = {quotient_text(floor.quotient)}"


# what one step along each axis is called in the floor messages
_UNITS = {"length": "position", "depth": "slice", "height": "row", "width": "column"}


def _join_words(words: list[str]) -> str:
    """a; a and b; a, b and c."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _unread_text(count: int, units: list[str]) -> str:
    plural = count > 1
    verb = "are" if plural or len(units) > 1 else "is"
    names = _join_words([f"{u}s" if plural else u for u in units])
    return f"the last {'' if count == 1 else f'{count} '}input {names} {verb} never read"


@dataclass(frozen=True)
class FloorWarning:
    """A layer whose sliding-window division was not exact along one or more axes.

    It is a ``warning`` when real input rows or columns are never read, a ``note`` when only
    padding is left over.
    """

    path: str
    floors: tuple[Floor, ...]

    @property
    def ignored_input(self) -> dict[str, int]:
        """Input rows (``height``), columns (``width``), slices (``depth``) or positions
        (``length``) that the layer never reads, per axis with a floor."""
        return {f.axis: f.ignored_input for f in self.floors}

    @property
    def severity(self) -> str:
        return "warning" if any(f.ignored_input for f in self.floors) else "note"

    @property
    def detail(self) -> str:
        """The message without the layer's path: each axis's division and what it leaves unread
        (one clause for all the axes when they divide alike)."""
        texts = [_division_text(f) for f in self.floors]
        same = len(self.floors) > 1 and all(t == texts[0] for t in texts)
        groups = [list(self.floors)] if same else [[f] for f in self.floors]
        parts = []
        for group in groups:
            f = group[0]
            axis = _join_words([g.axis for g in group])
            whole = f.quotient.numerator // f.quotient.denominator
            text = (f"{axis}: {_division_text(f)} is not exact: output "
                    f"⌊{quotient_text(f.quotient).split(' ')[0]}⌋ + 1 = {whole + 1}")
            if f.ignored_input:
                text += f"; {_unread_text(f.ignored_input, [_UNITS[g.axis] for g in group])}"
            else:
                text += "; only padding is left unread"
            parts.append(text)
        return "; ".join(parts)

    @property
    def message(self) -> str:
        return f"{self.path}: {self.detail}"
