"""Field types of the spec format: each parser checks one YAML value and returns a normalised one.

A parser raises :class:`FieldError` with a message for people; the spec loader adds the file,
line and layer path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .errors import brief

Pair = tuple[int, int]


# The one bound on every integer a spec or an option gives: a size, a count, a field (checked at
# load, where the value was written; docs/errors.md). Past it, products of sizes would leave
# every float and C integer type that torch and the formatters use.
MAX_INT = 2**63 - 1
MAX_INT_TEXT = "2**63 - 1 (9,223,372,036,854,775,807)"


def too_large(value: int) -> str:
    """The message for an integer over :data:`MAX_INT`, without printing all its digits."""
    digits = len(str(value)) if value.bit_length() < 10_000 else value.bit_length() * 3 // 10
    return f"{digits:,}-digit integer"


class FieldError(ValueError):
    """A field value of the wrong type or range."""


_REQUIRED = object()


@dataclass(frozen=True)
class Field:
    """One field of a layer kind: how to parse it, its default, and a line of documentation."""

    parse: Callable[[Any], Any]
    default: Any = _REQUIRED
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_at_least(minimum: int, what: str) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if not _is_int(value):
            raise FieldError(f"must be {what}, got {brief(value)}")
        if value < minimum:
            raise FieldError(f"must be {what}, got {value if value > -MAX_INT else 'a huge negative number'}")
        if value > MAX_INT:
            raise FieldError(f"must be {what} up to {MAX_INT_TEXT}, got a {too_large(value)}")
        return value

    return parse


positive_int = _int_at_least(1, "a positive integer")
nonnegative_int = _int_at_least(0, "a non-negative integer")


def _pair_of(item: Callable[[Any], int], what: str) -> Callable[[Any], Pair]:
    def parse(value: Any) -> Pair:
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise FieldError(f"must be {what} or a [height, width] pair, got {brief(list(value))}")
            return (item(value[0]), item(value[1]))
        single = item(value)
        return (single, single)

    return parse


positive_pair = _pair_of(positive_int, "a positive integer")
nonnegative_pair = _pair_of(nonnegative_int, "a non-negative integer")


def padding(value: Any) -> Pair | str:
    """An int, a [height, width] pair, or one of the words ``same`` and ``valid``."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("same", "valid"):
            return word
        raise FieldError(f"must be an integer, a [height, width] pair, 'same' or 'valid', got {brief(value)}")
    return nonnegative_pair(value)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise FieldError(f"must be true or false, got {brief(value)}")
    return value


def number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError(f"must be a number, got {brief(value)}")
    return float(value)


def probability(value: Any) -> float:
    p = number(value)
    if not 0.0 <= p <= 1.0:
        raise FieldError(f"must be between 0 and 1, got {value}")
    return p


def connection_table(value: Any) -> tuple[tuple[int, ...], ...]:
    """For each output map, the list of input maps it sees (0-based), as in LeNet-5's C3."""
    if not isinstance(value, (list, tuple)) or not value:
        raise FieldError("must be a non-empty list with, for each output map, a list of input maps")
    table = []
    for index, row in enumerate(value):
        if not isinstance(row, (list, tuple)) or not row:
            raise FieldError(f"entry {index} must be a non-empty list of input map indices, got {brief(row)}")
        maps = tuple(nonnegative_int(m) for m in row)
        if len(set(maps)) != len(maps):
            raise FieldError(f"entry {index} lists an input map twice: {list(maps)}")
        table.append(maps)
    return tuple(table)


# --------------------------------------------------------------------------------------------
# Per-axis fields (kernel, stride, padding, …) and tensor names


MAX_SPATIAL_RANK = 3
# an input's shape per sample, by rank (len of the shape): one place for every message
RANK_SHAPES = {1: "F", 2: "C×L", 3: "C×H×W", 4: "C×D×H×W"}
AXIS_NAMES: dict[int, tuple[str, ...]] = {
    1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width"),
}


class Axes(tuple):
    """A per-axis value as written, one entry per spatial axis (a YAML list); a parser returns
    it so that :func:`broadcast` can tell a list from one value for every axis."""


def _axes_hint(rank: int) -> str:
    return "[" + ", ".join(AXIS_NAMES[rank]) + "]"


def per_axis(item: Callable[[Any], Any], what: str) -> Callable[[Any], Any]:
    """A per-axis field: one value for every spatial axis (``item`` parses it), or a list of one
    to three, one per axis (an :class:`Axes`). :func:`broadcast` turns either into a tuple with
    one entry per spatial axis of the spec; the parser is marked ``per_axis`` for the loader."""

    def parse(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            if not 1 <= len(value) <= MAX_SPATIAL_RANK:
                raise FieldError(f"must be {what} or a list of one per spatial axis "
                                 f"(1 to {MAX_SPATIAL_RANK}), got {brief(list(value))}")
            return Axes(item(v) for v in value)
        return item(value)

    parse.per_axis = True  # type: ignore[attr-defined]
    parse.__doc__ = f"{what}, or a list of one per spatial axis"
    return parse


def is_per_axis(parser: Callable[[Any], Any]) -> bool:
    return bool(getattr(parser, "per_axis", False))


def broadcast(value: Any, rank: int, name: str) -> Any:
    """A per-axis field's parsed value as a tuple of ``rank`` entries (one per spatial axis):
    one value repeats, a list must have exactly ``rank`` entries. Words (``same``) and None
    pass through. Raises FieldError naming the field and the rank."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Axes):
        if len(value) != rank:
            raise FieldError(f"{name} has {len(value)} entries {brief(list(value))}, but the spec's "
                             f"input has {rank} spatial ax{'es' if rank > 1 else 'is'} "
                             f"({', '.join(AXIS_NAMES[rank])}): give one value or {_axes_hint(rank)}")
        return tuple(value)
    return (value,) * rank


positive_axes = per_axis(positive_int, "a positive integer")
nonnegative_axes = per_axis(nonnegative_int, "a non-negative integer")


def _positive_size(value: Any) -> int | float:
    """A scale factor: a positive integer or a positive number."""
    if _is_int(value) and value > 0:
        return value
    scale = number(value)
    if scale <= 0:
        raise FieldError(f"must be a positive number, got {brief(value)}")
    return scale


positive_scale_axes = per_axis(_positive_size, "a positive number")


def _padding_word(value: Any) -> str | None:
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("same", "valid"):
            return word
        raise FieldError(f"must be an integer, a list of one per axis, 'same' or 'valid', "
                         f"got {brief(value)}")
    return None


_padding_axes = per_axis(nonnegative_int, "a non-negative integer")


def padding_axes(value: Any) -> Any:
    """An int, a list of one per spatial axis, or one of the words ``same`` and ``valid``."""
    word = _padding_word(value)
    return word if word is not None else _padding_axes(value)


padding_axes.per_axis = True  # type: ignore[attr-defined]


def _before_after(value: Any) -> Pair:
    """One axis's padding: an int (both sides) or [before, after]."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise FieldError(f"each axis's padding must be an integer or [before, after], "
                             f"got {brief(list(value))}")
        return (nonnegative_int(value[0]), nonnegative_int(value[1]))
    p = nonnegative_int(value)
    return (p, p)


# padding per axis, before and after: an int for every side, or one entry per spatial axis, each
# an int or [before, after] (1-D before/after: ``[[1, 2]]``)
before_after_axes = per_axis(_before_after, "an integer or [before, after]")


def tensor_name(value: Any) -> str:
    """The name of a tensor in scope (``as: NAME`` or ``input``); the lowering resolves it and
    the rule sees the named tensor's shape under the same key at run time."""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise FieldError(f"must be the name of a tensor (as: NAME), got {brief(value)}")
    return str(value).strip()


tensor_name.names_a_tensor = True  # type: ignore[attr-defined]  # the lowering resolves it


def choice(*words: str) -> Callable[[Any], str]:
    """One of ``words`` (case-insensitive)."""

    def parse(value: Any) -> str:
        if isinstance(value, str) and value.strip().lower() in words:
            return value.strip().lower()
        raise FieldError(f"must be one of {', '.join(words)}, got {brief(value)}")

    parse.choices = words  # type: ignore[attr-defined]
    return parse
