"""One Streamlit widget per parameter, chosen by its ParamSpec: the Preprocess page's step forms
and the hyperparameter form of the Train page both build their widgets here."""
from __future__ import annotations

from typing import Any

from core.params import ParamSpec

#: Step of a float input when its spec names none.
FLOAT_STEP = 0.05
FIXED_NOTE = " (fixed by this preset; choose Custom to change it)"


def param_widget(spec: ParamSpec, value: Any, key: str, container: Any) -> Any:
    """A widget for ``spec`` showing ``value`` in ``container`` (``st``, a column); returns what
    it holds. A ``fixed`` spec is shown disabled. Text kinds are returned as typed ("layers",
    "threshold": ``ParamSpec.parse`` reads them) or as kernel rows."""
    disabled = spec.fixed
    help_text = spec.help + (FIXED_NOTE if spec.fixed else "")
    if spec.kind == "choice":
        return container.selectbox(spec.title, spec.choices, index=spec.choices.index(value), key=key,
                                   help=help_text, disabled=disabled)
    if spec.kind == "bool":
        return container.checkbox(spec.title, value=value, key=key, help=help_text, disabled=disabled)
    if spec.kind == "int":
        return container.number_input(spec.title, min_value=int(spec.minimum), max_value=int(spec.maximum),
                                      value=int(value), step=int(spec.step or (2 if spec.odd else 1)), key=key,
                                      help=help_text, disabled=disabled)
    if spec.kind == "float":
        return container.number_input(spec.title, min_value=float(spec.minimum), max_value=float(spec.maximum),
                                      value=float(value), step=spec.step or FLOAT_STEP, format="%g", key=key,
                                      help=help_text, disabled=disabled)
    if spec.kind == "layers":
        return container.text_input(spec.title, value=", ".join(map(str, value)), key=key,
                                    help=help_text, disabled=disabled, placeholder="none")
    if spec.kind == "threshold":
        return container.text_input(spec.title, value="" if value is None else f"{value:g}", key=key,
                                    help=help_text, disabled=disabled, placeholder="off")
    text = container.text_area(spec.title, value="\n".join(value), key=key, height=130,
                               help=help_text + " (one row per line, 0s and 1s)", disabled=disabled)
    return [row.strip() for row in text.splitlines() if row.strip()]
