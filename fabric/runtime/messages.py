"""Messages people read, made one way on the server and on Ray: how a pydantic validation
error is told, how a misspelt name is answered, and how long a stored message may be.

Light on purpose, like all of `fabric.runtime`: the standard library only.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

# What a job's, a run's or an endpoint's `message` column holds; longer text is cut.
MESSAGE_LIMIT = 2000

# Where a problem lies, as pydantic says it: the path of field names and list indexes.
Location = tuple[int | str, ...]


class Invalid(Protocol):
    """A validation error: pydantic's `ValidationError`, or FastAPI's for a request."""

    def errors(self) -> Sequence[Any]: ...


def truncate(message: str) -> str:
    """The message as a `message` column stores it: at most MESSAGE_LIMIT characters."""
    return message[:MESSAGE_LIMIT]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`did you mean X?` naming the known names closest to a misspelt one, as git and pip
    answer; empty when none is close. A flag's spelling (`max-depth`) finds its parameter
    (`max_depth`) first."""
    choices = sorted(set(known))
    as_parameter = name.replace("-", "_")
    if as_parameter != name and as_parameter in choices:
        close = [as_parameter]
    else:
        close = difflib.get_close_matches(name, choices, n=3)
    if not close:
        return ""
    named = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
    return f"did you mean {named}?"


def dotted(loc: Location) -> str:
    """The field's path, e.g. `tasks.train.params`; empty when the whole input is to blame."""
    return ".".join(str(part) for part in loc)


def problems(exc: Invalid, name: Callable[[Location], str] = dotted) -> list[tuple[str, str]]:
    """(field, message) for each problem, the field as `name` tells its location."""
    return [(name(error["loc"]), error["msg"]) for error in exc.errors()]


def describe(exc: Invalid, name: Callable[[Location], str] = dotted) -> str:
    """Every problem on one line, `FIELD: MESSAGE` joined by '; ', so that a user reads what
    to fix in each field at once; a problem whose `name` is empty shows its message alone."""
    return "; ".join(
        f"{field}: {message}" if field else message for field, message in problems(exc, name)
    )
