"""Parameter metadata shared by preprocessing steps and model hyperparameters.

A parameter is a dataclass field made with :func:`param`; its :class:`ParamSpec` holds the kind,
default, help text and limits, so one place checks a value (``coerce``/``parse``) and one widget
factory (``ui.param_widgets``) builds a form for it, whatever it belongs to.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from core.errors import DigitLabError

#: Parameter kinds a form must handle. "layers" is a list of whole numbers (layer sizes);
#: "threshold" is a number in (minimum, maximum], or None for off.
KINDS = ("int", "float", "choice", "bool", "kernel", "layers", "threshold")
_OFF = ("", "none", "off")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, kind (one of KINDS), default, help text, and its limits.

    ``minimum``/``maximum`` bound "int" and "float", each entry of "layers" and a "threshold";
    ``choices`` lists the values of a "choice"; ``odd`` asks for an odd "int"; ``max_items`` caps
    the entries of "layers", which ``what`` names in messages ("dense layers"); a "kernel" is rows
    of '0'/'1' characters (see kernels.py). ``label`` and ``step`` are for forms (the label
    defaults to the name); ``fixed`` marks a value a form shows but may not change.
    """

    name: str
    kind: str
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    odd: bool = False
    label: str = ""
    step: float | None = None
    max_items: int | None = None
    what: str = ""
    fixed: bool = False

    @property
    def title(self) -> str:
        """What a form calls the parameter."""
        return self.label or self.name

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
        if self.kind in ("float", "threshold"):
            if self.kind == "threshold" and value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise DigitLabError(f"{self.name} must be a number, got {value!r}")
            value = float(value)
            if self.kind == "threshold":
                if not self.minimum < value <= self.maximum:
                    raise DigitLabError(
                        f"{self.name} must be {self.what or 'a number'} in "
                        f"({self.minimum:g}, {self.maximum:g}], got {value:g}"
                    )
            else:
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
        if self.kind == "layers":
            return self._check_layers(value)
        if value in (None, (), []):
            return ()
        try:
            return check_rows(value)
        except DigitLabError as err:
            raise DigitLabError(f"{self.name}: {err.problem}") from None

    def parse(self, value: Any) -> Any:
        """:meth:`coerce` after reading the text a form, a link or a command line gives
        (``"64, 32"`` for layers, ``"off"`` for no threshold, ``"12"`` for a number)."""
        try:
            value = self._read(value)
        except (TypeError, ValueError):
            raise DigitLabError(f"{self.name}: cannot read {value!r}") from None
        return self.coerce(value)

    def _read(self, value: Any) -> Any:
        if self.kind == "layers":
            items = [v for v in value.replace(" ", ",").split(",") if v] if isinstance(value, str) else list(value)
            return tuple(_strict_int(v) for v in items)
        if self.kind == "int":
            return _strict_int(value)
        if self.kind == "threshold" and (value is None or (isinstance(value, str) and value.strip().lower() in _OFF)):
            return None
        if self.kind in ("float", "threshold"):
            return float(value)
        if self.kind == "bool" and isinstance(value, str):  # a link's or a command line's "true"/"off"
            text = value.strip().lower()
            if text in ("true", "1", "yes", "on", "false", "0", "no", "off"):
                return text in ("true", "1", "yes", "on")
        if self.kind == "choice":
            return str(value).strip().lower()
        return value

    def _check_layers(self, value: Any) -> tuple[int, ...]:
        items = tuple(self.coerce_item(v) for v in value)
        if self.max_items is not None and len(items) > self.max_items:
            raise DigitLabError(f"{self.name}: at most {self.max_items} {self.what or 'entries'}, got {len(items)}")
        return items

    def coerce_item(self, value: Any) -> int:
        """One entry of a "layers" value: a whole number in range."""
        assert self.minimum is not None and self.maximum is not None, self.name  # a "layers" spec has both
        if isinstance(value, bool) or not isinstance(value, int) or not self.minimum <= value <= self.maximum:
            raise DigitLabError(
                f"{self.name}: each entry must be between {self.minimum:g} and {self.maximum:g}, got {value!r}"
            )
        return value

    def _check_range(self, value: float) -> None:
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            raise DigitLabError(f"{self.name} must be between {self.minimum:g} and {self.maximum:g}, got {shown}")


def param(default: Any, kind: str, help: str, **limits: Any) -> Any:
    """A dataclass field carrying its ParamSpec (the name is filled in from the field).

    ``default=dataclasses.MISSING`` makes a required field. ``limits`` are ParamSpec's other
    fields (minimum, maximum, choices, odd, label, step, max_items, what).
    """
    if "choices" in limits:
        limits["choices"] = tuple(limits["choices"])
    spec = ParamSpec("", kind, None if default is dataclasses.MISSING else default, help, **limits)
    return field(default=default, metadata={"param": spec})


def params_of(cls: type) -> tuple[ParamSpec, ...]:
    """The ParamSpecs of a dataclass made with :func:`param` fields, in field order."""
    return tuple(
        dataclasses.replace(f.metadata["param"], name=f.name) for f in dataclasses.fields(cls) if "param" in f.metadata
    )


def _strict_int(value: Any) -> int:
    """int() that refuses 2.5 and True rather than truncating them."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(value)
        return int(value)
    return int(str(value).strip())


#: The largest kernel (either side) a custom matrix may have.
MAX_KERNEL_SIZE = 15


def check_rows(rows: object) -> tuple[str, ...]:
    """Validate a custom matrix given as rows of '0'/'1' (strings, or lists of 0/1 numbers).

    Returns the canonical tuple of strings; raises DigitLabError saying what is wrong.
    """
    if isinstance(rows, str) or not isinstance(rows, (list, tuple)):
        raise DigitLabError(f'kernel must be a list of rows like "01110", got {rows!r}')
    out: list[str] = []
    for row in rows:
        if isinstance(row, (list, tuple)) and all(v in (0, 1) and not isinstance(v, float) for v in row):
            row = "".join(str(int(v)) for v in row)
        if not isinstance(row, str) or not row or set(row) - {"0", "1"}:
            raise DigitLabError(f"kernel rows must be non-empty strings of 0 and 1, got {row!r}")
        out.append(row)
    if not out:
        raise DigitLabError("kernel must have at least one row")
    if len({len(r) for r in out}) != 1:
        raise DigitLabError(f"kernel rows must all have the same length, got lengths {[len(r) for r in out]}")
    if len(out) > MAX_KERNEL_SIZE or len(out[0]) > MAX_KERNEL_SIZE:
        raise DigitLabError(f"kernel must be at most {MAX_KERNEL_SIZE}x{MAX_KERNEL_SIZE}, got {len(out[0])}x{len(out)}")
    if not any("1" in r for r in out):
        raise DigitLabError("kernel must contain at least one 1")
    return tuple(out)
