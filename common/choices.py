"""One parser for named choices (backends, readers, retrievers, precisions): an unknown name is an error that
lists the valid ones."""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

E = TypeVar("E", bound=StrEnum)


def parse_choice(enum_cls: type[E], value: str | E, what: str) -> E:
    """`enum_cls(value)`, or ValueError("unknown <what> 'x'; choose one of: a, b, c")."""
    try:
        return enum_cls(value)
    except ValueError:
        choices = ", ".join(e.value for e in enum_cls)
        raise ValueError(f"unknown {what} {value!r}; choose one of: {choices}") from None
