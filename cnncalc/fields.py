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


def tensor_name(value: Any) -> str:
    """The name of a tensor (given with ``as`` somewhere before, or ``input``): the layer reads
    its shape. The spec's lowering resolves it; rules see the tensor's shape (cnncalc.graph)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise FieldError(f"must name a tensor (a name given with 'as', or input), got {brief(value)}")
    return str(value).strip()


tensor_name.names_a_tensor = True  # type: ignore[attr-defined]
