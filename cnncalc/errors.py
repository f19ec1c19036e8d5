"""Errors meant for people: each renders as one line naming the file, line, layer and problem."""

from __future__ import annotations

import re
import reprlib
from dataclasses import dataclass
from typing import Any

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict = 2, 40, 40, 4, 4


def brief(value: Any) -> str:
    """A bounded repr for messages: a spec value may be huge or deeply nested (an alias bomb)."""
    return _REPR.repr(value)


@dataclass(frozen=True)
class Location:
    """Where something was written: a file and a 1-based line and column (any may be unknown)."""

    file: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        parts = [self.file or "<spec>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


# C0 and C1 controls, DEL, and the bidirectional overrides that reorder what a terminal shows
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else
                                f"\\u{ord(char):04x}")


def printable(text: str) -> str:
    """``text`` with every control character shown escaped (``\\x1b``, ``\\n``): user text (a
    name, a title, a path) printed to a terminal can never move the cursor, erase a line or
    hide the file:line of an error."""
    return _CONTROL.sub(_escape, text)


def has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def quoted(text: str) -> str:
    """``'text'`` with its control characters escaped, for messages."""
    return f"'{printable(text)}'"


def _one_line(text: str) -> str:
    """Messages are one line: a line break or other control character that came from the spec
    (a quoted key, a file name) is shown escaped."""
    return printable(text)


class CnncalcError(Exception):
    """A user error: the CLI prints ``str(error)`` on one line and exits with status 2."""


class SpecError(CnncalcError):
    """A spec that cannot be loaded or analysed, located as precisely as the YAML allows."""

    def __init__(self, problem: str, where: Location | None = None, path: str | None = None):
        super().__init__(problem)
        self.problem = problem
        self.where = where or Location()
        self.path = path

    def __str__(self) -> str:
        layer = f"layer {self.path}: " if self.path else ""
        return _one_line(f"{self.where}: {layer}{self.problem}")


class SpecNotFound(CnncalcError):
    """A spec name that is neither a zoo entry nor a readable file."""


class OptionError(CnncalcError):
    """A command-line value that cannot be used (bad --input, --dtype, …)."""
