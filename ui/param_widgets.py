"""One Streamlit widget per parameter, chosen by its ParamSpec: the Preprocess page's step forms
and the hyperparameter form of the Train page both build their widgets here."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.params import ParamSpec

#: Step of a float input when its spec names none.
FLOAT_STEP = 0.05
FIXED_NOTE = " (fixed by this preset; choose Custom to change it)"


def widget_value(spec: ParamSpec, value: Any) -> Any:
    """``value`` as the widget for ``spec`` holds it (layers, thresholds and kernels as text)."""
    if spec.kind == "int":
        return int(value)
    if spec.kind == "float":
        return float(value)
    if spec.kind == "layers":
        return ", ".join(map(str, value))
    if spec.kind == "threshold":
        return "" if value is None else f"{value:g}"
    if spec.kind in ("choice", "bool"):
        return value
    return "\n".join(value)


def param_widget(spec: ParamSpec, value: Any, key: str, container: Any, persist: bool = False) -> Any:
    """A widget for ``spec`` showing ``value`` in ``container`` (``st``, a column); returns what
    it holds. A ``fixed`` spec is shown disabled. Text kinds are returned as typed ("layers",
    "threshold": ``ParamSpec.parse`` reads them) or as kernel rows.

    With ``persist`` the widget keeps its value across page changes (Streamlit's
    ``persist_state``): ``value`` then only starts it, through the session state, and the widget
    gets no default of its own (with both, Streamlit warns of a value "set via Session State")."""
    disabled = spec.fixed
    help_text = spec.help + (FIXED_NOTE if spec.fixed else "")
    common: dict[str, Any] = {"key": key, "help": help_text, "disabled": disabled}
    if persist:
        start = st.session_state.setdefault(key, widget_value(spec, value))
        if spec.kind in ("int", "float") and spec.maximum is not None and start > spec.maximum:
            st.session_state[key] = widget_value(spec, spec.maximum)  # the instance's limit went down
        common["persist_state"] = "session"

    def default(**given: Any) -> dict[str, Any]:
        return {} if persist else given

    if spec.kind == "choice":
        return container.selectbox(spec.title, spec.choices, **default(index=spec.choices.index(value)), **common)
    if spec.kind == "bool":
        return container.checkbox(spec.title, **default(value=value), **common)
    if spec.kind == "int":
        assert spec.minimum is not None and spec.maximum is not None, spec.name  # numbers have bounds
        return container.number_input(
            spec.title,
            min_value=int(spec.minimum),
            max_value=int(spec.maximum),
            **default(value=int(value)),
            step=int(spec.step or (2 if spec.odd else 1)),
            **common,
        )
    if spec.kind == "float":
        assert spec.minimum is not None and spec.maximum is not None, spec.name
        return container.number_input(
            spec.title,
            min_value=float(spec.minimum),
            max_value=float(spec.maximum),
            **default(value=float(value)),
            step=spec.step or FLOAT_STEP,
            format="%g",
            **common,
        )
    if spec.kind == "layers":
        return container.text_input(
            spec.title, **default(value=widget_value(spec, value)), placeholder="none", **common
        )
    if spec.kind == "threshold":
        return container.text_input(spec.title, **default(value=widget_value(spec, value)), placeholder="off", **common)
    common["help"] = help_text + " (one row per line, 0s and 1s)"
    text = container.text_area(spec.title, **default(value=widget_value(spec, value)), height=130, **common)
    return [row.strip() for row in text.splitlines() if row.strip()]
