"""Experiments in the page URL (``st.query_params``), so a link opens the same experiment elsewhere.

The Preprocess page keeps ``?pipeline=<name or compact form>&dataset=<spec>`` (a link with the
pipeline's JSON works too); the Train page adds the
preset, the hyperparameters that differ from the preset's (``epochs=3&hidden=128,64``), the
validation and the seed; the Runs, Errors and Try it pages take ``?run=<id>``.

A link comes from anyone, so everything read here is checked: a bad part (invalid JSON, an unknown
step or preset, an out-of-range or huge value, a ``file:`` dataset) is dropped with a warning and
its default is used instead; nothing here raises. The ``parse_*`` and ``*_params`` functions are
plain (no Streamlit); :func:`incoming` and :func:`publish` are the only ones touching the URL.
"""
from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from core.datasets import SIZE_NAMES, DatasetSpec, ready_datasets
from core.errors import DigitLabError
from core.classroom.limits import Limits
from core.training.models import Hyperparams, describe_preset, get_preset, hyperparams_for
from core.preprocess import NAMED_PIPELINES, Pipeline, get_pipeline, step_from_dict
from core.training.config import parse_seed, parse_validation
from core.runs.store import validate_run_id

#: A longer value is not read at all (a 30-step pipeline is about 3,000 characters of JSON); a
#: compact pipeline may not unpack to more either.
MAX_VALUE_CHARS = 4000
#: What starts a compact pipeline (:func:`compact_pipeline`); a name or JSON never does.
COMPACT_PREFIX = "z."
MAX_PIPELINE_STEPS = 30
#: Query parameters of the Train page besides the hyperparameters' own names.
TRAIN_KEYS = ("preset", "pipeline", "dataset", "validation", "seed")
_SESSION_KEY = "query_state_{page}"
#: The addresses this session itself wrote on a page, newest last (at most _WRITTEN_KEPT).
_WRITTEN_KEY = "query_state_written_{page}"
_WRITTEN_KEPT = 20


@dataclass(frozen=True)
class PreprocessLink:
    """What a Preprocess link sets: a pipeline for the editor and a ready dataset (None: keep)."""

    pipeline: Pipeline | None = None
    dataset: str | None = None


@dataclass(frozen=True)
class TrainLink:
    """What a Train link sets. ``form`` holds the preset's form values by hyperparameter name
    (only those the link changed); ``pipeline`` is a named pipeline's name or a pipeline JSON."""

    preset: str = "H"
    form: dict[str, Any] = field(default_factory=dict)
    pipeline: str | None = None
    dataset: str | None = None
    validation: str | float = "test"
    seed: int = 0

    @property
    def named_pipeline(self) -> bool:
        return self.pipeline in NAMED_PIPELINES


# ---- reading one value --------------------------------------------------------------------------

def _too_long(name: str, raw: str) -> str | None:
    if len(raw) > MAX_VALUE_CHARS:
        return f"The link's {name} is {len(raw):,} characters long (at most {MAX_VALUE_CHARS:,}); ignored."
    return None


def compact_pipeline(pipeline: Pipeline) -> str:
    """A pipeline as a short, URL-safe text: ``z.`` then the base64url of its zlib-compressed JSON,
    each step without the parameters it has by default (a browser shows JSON in an address as
    ``%5B%7B%22step%22...``, three times longer)."""
    steps = []
    for entry in pipeline.to_list():
        default = step_from_dict({"step": entry["step"]}).to_dict()
        steps.append({k: v for k, v in entry.items() if k == "step" or default.get(k) != v})
    text = json.dumps(steps, separators=(",", ":"))
    return COMPACT_PREFIX + base64.urlsafe_b64encode(zlib.compress(text.encode(), 9)).decode().rstrip("=")


def _expand_pipeline(raw: str) -> str:
    """The JSON of a compact pipeline (:func:`compact_pipeline`); DigitLabError if damaged or huge."""
    body = raw[len(COMPACT_PREFIX):]
    try:
        packed = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
        inflate = zlib.decompressobj()
        text = inflate.decompress(packed, MAX_VALUE_CHARS + 1)  # never more, whatever the link claims
    except (ValueError, zlib.error):
        raise DigitLabError("its compact form is damaged") from None
    if not text:
        raise DigitLabError("its compact form is damaged")
    if len(text) > MAX_VALUE_CHARS or inflate.unconsumed_tail:
        raise DigitLabError(f"it unpacks to more than {MAX_VALUE_CHARS:,} characters")
    try:
        return text.decode()
    except UnicodeDecodeError:
        raise DigitLabError("its compact form is damaged") from None


def parse_pipeline(raw: str | None) -> tuple[Pipeline | None, str | None]:
    """A pipeline from a link (a named pipeline, a compact one, or a JSON list of steps), or None
    and why not."""
    if raw is None:
        return None, None
    if (problem := _too_long("pipeline", raw)) is not None:
        return None, problem
    try:
        if raw.strip().startswith(COMPACT_PREFIX):
            raw = _expand_pipeline(raw.strip())
        pipeline = get_pipeline(raw, source="the link's pipeline")
    except DigitLabError as err:
        return None, f"The link's pipeline was not used: {err.problem}."
    if len(pipeline.steps) > MAX_PIPELINE_STEPS:
        return None, f"The link's pipeline has {len(pipeline.steps)} steps (at most {MAX_PIPELINE_STEPS}); ignored."
    return pipeline, None


def parse_dataset(raw: str | None) -> tuple[str | None, str | None]:
    """A ready dataset spec (``default:small``) from a link; files and unknown names are refused."""
    if raw is None:
        return None, None
    if (problem := _too_long("dataset", raw)) is not None:
        return None, problem
    try:
        spec = DatasetSpec.parse(raw)
    except DigitLabError:
        spec = None
    if spec is not None and spec.is_file or "/" in raw or "\\" in raw:
        return None, "A link can only name a ready dataset, not a file: the dataset was left as it is."
    if spec is None or not spec.is_ready or ":" not in raw:
        return None, (f"The link's dataset {raw[:60]!r} is not available here (ready: "
                      f"{', '.join(ready_datasets())}; sizes: {', '.join(SIZE_NAMES)}): left as it is.")
    return str(spec), None


def parse_run_id(raw: str | None) -> tuple[str | None, str | None]:
    """A run id from ``?run=``, checked by ``core.runs.store.validate_run_id``."""
    if raw is None:
        return None, None
    try:
        return validate_run_id(raw.strip().lower()), None
    except DigitLabError as err:
        return None, f"The link's run was not used: {err}."


def form_value(hp: Hyperparams, name: str, kind: str) -> Any:
    """The Train form's widget value for one hyperparameter (layers and thresholds are text)."""
    value = getattr(hp, name)
    if kind == "layers":
        return ", ".join(map(str, value))
    if kind == "threshold":
        return "" if value is None else f"{value:g}"
    return value


def url_value(hp: Hyperparams, name: str) -> str:
    """One hyperparameter as a link writes it: ``128,64``, ``off``, ``0.001``, ``3``."""
    value = getattr(hp, name)
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if value is None:
        return "off"
    return repr(value) if isinstance(value, float) else str(value)


# ---- whole pages ------------------------------------------------------------------------------

def parse_preprocess(params: Mapping[str, str]) -> tuple[PreprocessLink, list[str]]:
    """The Preprocess page's link: its pipeline and dataset, and a warning per part not used."""
    pipeline, p_warn = parse_pipeline(params.get("pipeline"))
    dataset, d_warn = parse_dataset(params.get("dataset"))
    return PreprocessLink(pipeline, dataset), [w for w in (p_warn, d_warn) if w]


def preprocess_params(pipeline: Pipeline, dataset: str) -> dict[str, str]:
    """The Preprocess page's URL for ``pipeline`` on dataset spec ``dataset``."""
    params: dict[str, str] = {}
    if pipeline.steps:
        params["pipeline"] = pipeline_param_text(pipeline)
    if shareable_dataset(dataset):
        params["dataset"] = dataset
    return params


def parse_train(params: Mapping[str, str], limits: Limits | None = None) -> tuple[TrainLink, list[str]]:
    """The Train page's link, each part checked (and the epochs against the instance's limit)."""
    warnings: list[str] = []
    preset = "H"
    if (raw := params.get("preset")) is not None:
        try:
            if (problem := _too_long("preset", raw)) is not None:
                raise DigitLabError(problem)
            preset = get_preset(raw).name
        except DigitLabError as err:
            warnings.append(f"The link's preset was not used: {err}. Showing preset {preset}.")
    form: dict[str, Any] = {}
    base = get_preset(preset).defaults
    for spec in describe_preset(preset):
        raw = params.get(spec.name)
        if raw is None or spec.fixed:
            if raw is not None:
                warnings.append(f"Preset {preset} fixes {spec.name}: the link's value was not used.")
            continue
        try:
            if (problem := _too_long(spec.name, raw)) is not None:
                raise DigitLabError(problem)
            hp = hyperparams_for(preset, {spec.name: raw})
            if spec.name == "epochs" and limits is not None and limits.max_epochs is not None \
                    and hp.epochs > limits.max_epochs:
                raise DigitLabError(f"{hp.epochs} epochs is over this instance's limit of {limits.max_epochs}")
        except DigitLabError as err:
            default = form_value(base, spec.name, spec.kind)
            if spec.name == "epochs" and limits is not None and limits.max_epochs is not None:
                default = min(default, limits.max_epochs)
            warnings.append(f"The link's {spec.name} was not used ({err}); it is {default or 'off'}.")
            continue
        form[spec.name] = form_value(hp, spec.name, spec.kind)
    pipeline, p_warn = parse_pipeline(params.get("pipeline"))
    dataset, d_warn = parse_dataset(params.get("dataset"))
    warnings += [w for w in (p_warn, d_warn) if w]
    validation: str | float = "test"
    if (raw := params.get("validation")) is not None:
        try:
            validation = parse_validation(raw[:40])
        except DigitLabError as err:
            warnings.append(f"The link's validation was not used ({err}); validating on the test set.")
    seed = 0
    if (raw := params.get("seed")) is not None:
        try:
            seed = parse_seed(raw[:40])
        except DigitLabError as err:
            warnings.append(f"The link's seed was not used ({err}); the seed is 0.")
    pipeline_arg = None
    if pipeline is not None:
        raw = params["pipeline"].strip()
        pipeline_arg = raw if raw in NAMED_PIPELINES else pipeline.to_json()
    return TrainLink(preset, form, pipeline_arg, dataset, validation, seed), warnings


def train_params(preset: str, hyperparams: Hyperparams | None, pipeline: str | None, dataset: str,
                 validation: str | float, seed: int) -> dict[str, str]:
    """The Train page's URL: the preset, every hyperparameter that differs from the preset's own,
    the pipeline (a name or its JSON; left out when empty), a ready dataset, validation and seed."""
    params = {"preset": get_preset(preset).name}
    if hyperparams is not None:
        base = get_preset(preset).defaults
        for spec in describe_preset(preset):
            if not spec.fixed and getattr(hyperparams, spec.name) != getattr(base, spec.name):
                params[spec.name] = url_value(hyperparams, spec.name)
    if pipeline is not None and pipeline.strip() not in ("", "[]"):
        text = pipeline.strip()
        params["pipeline"] = text if text in NAMED_PIPELINES else pipeline_param_text(get_pipeline(text))
    if shareable_dataset(dataset):
        params["dataset"] = dataset
    if validation != "test":
        params["validation"] = repr(float(validation))
    if seed:
        params["seed"] = str(int(seed))
    return params


def shareable_dataset(spec: str) -> bool:
    """True for ready datasets (a link never carries the path of an uploaded file)."""
    try:
        return DatasetSpec.parse(spec).is_ready
    except DigitLabError:
        return False


# ---- the URL itself --------------------------------------------------------------------------

def incoming(page: str) -> dict[str, str] | None:
    """The URL's parameters when they are a link to apply: not empty, and not what this session
    itself last wrote or applied on ``page`` (so a page's own edits never come back as a link)."""
    params = st.query_params.to_dict()
    if not params or params == st.session_state.get(_SESSION_KEY.format(page=page)):
        return None
    # A rerun asked for before the browser showed this session's latest address still carries an
    # earlier one (a stroke drawn right after switching the model): not a link, or it would undo
    # the switch.
    if params in st.session_state.get(_WRITTEN_KEY.format(page=page), []):
        return None
    st.session_state[_SESSION_KEY.format(page=page)] = params
    return params


def publish(page: str, params: Mapping[str, str]) -> None:
    """Make the URL show ``params`` (only when they changed) and remember them as this session's."""
    params = {k: str(v) for k, v in params.items()}
    st.session_state[_SESSION_KEY.format(page=page)] = params
    written = st.session_state.setdefault(_WRITTEN_KEY.format(page=page), [])
    if params not in written:
        written[:] = [*written, params][-_WRITTEN_KEPT:]
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)


def pipeline_param_text(pipeline: Pipeline) -> str:
    """A pipeline as a link carries it: its name when it is a named one, else its compact form."""
    text = pipeline.to_json()
    for name, named in NAMED_PIPELINES.items():
        if named.to_json() == text:
            return name
    return compact_pipeline(pipeline)


def editor_entries(pipeline: Pipeline) -> list[dict[str, Any]]:
    """The Preprocess editor's entries for ``pipeline`` (enabled steps with fresh ids, so no widget
    of a previous pipeline keeps its state)."""
    st.session_state.setdefault("next_step_id", 0)
    entries = []
    for step in pipeline.to_list():
        st.session_state["next_step_id"] += 1
        entries.append({"id": st.session_state["next_step_id"], "step": step, "enabled": True})
    return entries
