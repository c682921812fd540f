"""Parameter metadata for steps, so a page can build a form for any step generically."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from core.errors import DigitLabError
from core.preprocess.kernels import check_rows

#: Parameter kinds a form must handle.
KINDS = ("int", "float", "choice", "bool", "kernel")


@dataclass(frozen=True)
class ParamSpec:
    """One step parameter: name, kind (one of KINDS), default, help text, and its limits.

    ``minimum``/``maximum`` bound "int" and "float"; ``choices`` lists the values of a "choice";
    ``odd`` asks for an odd "int"; a "kernel" is rows of '0'/'1' characters (see kernels.py),
    used only when the step's ``shape`` is "custom".
    """

    name: str
    kind: str
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    odd: bool = False

    def coerce(self, value: Any) -> Any:
        """The canonical value for ``value`` (ints for floats, tuples for lists), or DigitLabError."""
        if self.kind == "int":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise DigitLabError(f"{self.name} must be a whole number, got {value!r}")
            self._check_range(value)
            if self.odd and value % 2 == 0:
                raise DigitLabError(f"{self.name} must be odd, got {value}")
            return value
        if self.kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise DigitLabError(f"{self.name} must be a number, got {value!r}")
            value = float(value)
            self._check_range(value)
            return value
        if self.kind == "choice":
            if value not in self.choices:
                raise DigitLabError(f"{self.name} must be one of {', '.join(map(repr, self.choices))}, got {value!r}")
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise DigitLabError(f"{self.name} must be true or false, got {value!r}")
            return value
        if value in (None, (), []):
            return ()
        try:
            return check_rows(value)
        except DigitLabError as err:
            raise DigitLabError(f"{self.name}: {err.problem}") from None

    def _check_range(self, value: float) -> None:
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise DigitLabError(f"{self.name} must be between {self.minimum:g} and {self.maximum:g}, got {value:g}")


def param(default: Any, kind: str, help: str, *, minimum: float | None = None, maximum: float | None = None,
          choices: tuple[str, ...] = (), odd: bool = False) -> Any:
    """A dataclass field carrying its ParamSpec (the name is filled in from the field)."""
    spec = ParamSpec("", kind, default, help, minimum, maximum, tuple(choices), odd)
    return field(default=default, metadata={"param": spec})
