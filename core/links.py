"""Reading links: every query parameter of every page is parsed here, and nothing here raises.

A link comes from anyone, so each part is checked on its own: a bad part (invalid or too deeply
nested JSON, an unknown step or preset, an out-of-range or huge value, a ``file:`` dataset, a
class number such as ``²`` that ``str.isdigit`` accepts but ``int`` does not) is dropped with a
warning and its default is used instead. Any exception while reading a part, expected or not,
becomes such a warning (:func:`_part`), so a hostile link can never crash a page.

The Preprocess page keeps ``?pipeline=<name or compact form>&dataset=<spec>`` (a link with the
pipeline's JSON works too); the Train page adds the preset, the hyperparameters that differ from
the preset's (``epochs=3&hidden=128,64``), the validation and the seed; the Runs, Errors, Try it
and Inside pages take ``?run=<id>``, the Errors page ``&true=<class>&predicted=<class>`` too.
``ui/query_state.py`` is the Streamlit glue (reading and writing ``st.query_params``).
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from core.classroom.limits import Limits
from core.datasets import SIZE_NAMES, DatasetSpec, ready_datasets
from core.errors import DigitLabError
from core.preprocess import NAMED_PIPELINES, Pipeline, get_pipeline, name_of_pipeline, step_from_dict
from core.runs.store import validate_run_id
from core.training.augment import Augmentation, parse_augment
from core.training.config import parse_seed, parse_start_from, parse_validation
from core.training.models import Hyperparams, describe_preset, get_preset, hyperparams_for

log = logging.getLogger(__name__)
T = TypeVar("T")

#: A longer value is not read at all (a 30-step pipeline is about 3,000 characters of JSON); a
#: compact pipeline may not unpack to more either.
MAX_VALUE_CHARS = 4000
#: What starts a compact pipeline (:func:`compact_pipeline`); a name or JSON never does.
COMPACT_PREFIX = "z."
MAX_PIPELINE_STEPS = 30
#: A pipeline's JSON nests three deep (list, step, a list parameter); deeper is refused before
#: ``json.loads``, which recurses once per bracket (2,000 of them raise RecursionError).
MAX_JSON_DEPTH = 6
#: Query parameters of the Train page besides the hyperparameters' own names.
TRAIN_KEYS = ("preset", "pipeline", "dataset", "validation", "seed", "augment", "tta", "start")


@dataclass(frozen=True)
class PreprocessLink:
    """What a Preprocess link sets: a pipeline for the editor and a ready dataset (None: keep)."""

    pipeline: Pipeline | None = None
    dataset: str | None = None
    #: The pipeline's steps switched off in the editor (0-based; kept in the link, skipped when run).
    off: tuple[int, ...] = ()


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
    augment: Augmentation | None = None  # training images moved at random (core.training.augment)
    tta: bool = False  # also measured with test-time augmentation (core.training.tta), apart
    #: The run whose model the run starts from (its id; who may open it is checked on launching).
    start_from: str | None = None

    @property
    def named_pipeline(self) -> bool:
        return self.pipeline in NAMED_PIPELINES


# ---- reading one value --------------------------------------------------------------------------


def _part(
    name: str,
) -> Callable[[Callable[..., tuple[T | None, str | None]]], Callable[..., tuple[T | None, str | None]]]:
    """Make a ``parse_*`` function of one link part total: any exception it raises (a bug, or an
    input nobody foresaw) becomes "not used" with a warning naming the part."""

    def wrap(parse: Callable[..., tuple[T | None, str | None]]) -> Callable[..., tuple[T | None, str | None]]:
        @functools.wraps(parse)
        def safe(*args: Any, **kwargs: Any) -> tuple[T | None, str | None]:
            try:
                return parse(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - a link must never crash a page
                log.warning("link part %s could not be read: %r", name, err)
                return None, f"The link's {name} could not be read; it was not used."

        return safe

    return wrap


def json_depth(text: str) -> int:
    """How deeply ``[`` and ``{`` nest in ``text`` (brackets inside JSON strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


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
    body = raw[len(COMPACT_PREFIX) :]
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


@_part("pipeline")
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
        if json_depth(raw) > MAX_JSON_DEPTH:
            raise DigitLabError(f"it nests deeper than {MAX_JSON_DEPTH} brackets")
        pipeline = get_pipeline(raw, source="the link's pipeline")
    except DigitLabError as err:
        return None, f"The link's pipeline was not used: {err.problem}."
    if len(pipeline.steps) > MAX_PIPELINE_STEPS:
        return None, f"The link's pipeline has {len(pipeline.steps)} steps (at most {MAX_PIPELINE_STEPS}); ignored."
    return pipeline, None


@_part("dataset")
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
        return None, (
            f"The link's dataset {raw[:60]!r} is not available here (ready: "
            f"{', '.join(ready_datasets())}; sizes: {', '.join(SIZE_NAMES)}): left as it is."
        )
    return str(spec), None


@_part("run")
def parse_run_id(raw: str | None) -> tuple[str | None, str | None]:
    """A run id from ``?run=``, checked by ``core.runs.store.validate_run_id``."""
    if raw is None:
        return None, None
    try:
        return validate_run_id(raw.strip().lower()), None
    except DigitLabError as err:
        return None, f"The link's run was not used: {err}."


@_part("class")
def parse_class_index(raw: str | None, count: int) -> tuple[int | None, str | None]:
    """A class number 0..``count - 1`` from a link (``?true=3``), or None and why not. Only ASCII
    digits count: ``'²'.isdigit()`` is true but ``int('²')`` raises."""
    if raw is None or raw == "":
        return None, None
    text = raw.strip()
    if not (0 < len(text) <= 3 and text.isascii() and text.isdigit()) or int(text) >= count:
        return None, f"The link's class {raw[:20]!r} is not a class number 0..{count - 1}; showing all classes."
    return int(text), None


def parse_errors_cell(params: Mapping[str, str | None], count: int) -> tuple[tuple[int | None, int | None], list[str]]:
    """The Errors page's confusion cell from ``?true=<class>&predicted=<class>``, each part on its own."""
    true, t_warn = parse_class_index(params.get("true"), count)
    predicted, p_warn = parse_class_index(params.get("predicted"), count)
    return (true, predicted), [w for w in (t_warn, p_warn) if w]


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


@_part("off")
def parse_off(raw: str | None, count: int) -> tuple[tuple[int, ...] | None, str | None]:
    """The steps switched off (``off=2,4``: 1-based step numbers of a pipeline of ``count`` steps), 0-based."""
    if raw is None or raw == "":
        return (), None
    if len(raw) > 200:
        return (), "The link's switched-off steps were not used: too long."
    numbers = [part.strip() for part in raw.split(",")]
    if not all(n.isascii() and n.isdigit() and 0 < int(n) <= count for n in numbers):
        return (), f"The link's switched-off steps {raw[:40]!r} are not step numbers 1..{count}: every step is on."
    return tuple(sorted({int(n) - 1 for n in numbers})), None


def parse_preprocess(params: Mapping[str, str]) -> tuple[PreprocessLink, list[str]]:
    """The Preprocess page's link: its pipeline (with the steps switched off) and dataset, and a
    warning per part not used. No ``pipeline`` at all: the link leaves the person's pipeline as it is."""
    pipeline, p_warn = parse_pipeline(params.get("pipeline"))
    dataset, d_warn = parse_dataset(params.get("dataset"))
    off: tuple[int, ...] | None = ()
    o_warn = None
    if pipeline is not None:
        off, o_warn = parse_off(params.get("off"), len(pipeline.steps))
    return PreprocessLink(pipeline, dataset, off or ()), [w for w in (p_warn, d_warn, o_warn) if w]


def preprocess_params(pipeline: Pipeline, dataset: str, off: tuple[int, ...] | list[int] = ()) -> dict[str, str]:
    """The Preprocess page's URL for ``pipeline`` (every step, ``off`` the 0-based ones switched
    off) on dataset spec ``dataset``. An empty pipeline is written ``raw``: a link without
    ``pipeline`` leaves the receiver's own pipeline alone."""
    params: dict[str, str] = {"pipeline": pipeline_param_text(pipeline)}
    if off:
        params["off"] = ",".join(str(i + 1) for i in sorted(set(off)))
    if shareable_dataset(dataset):
        params["dataset"] = dataset
    return params


def _lenient(
    params: Mapping[str, str],
    name: str,
    cut: int,
    parse: Callable[[str], Any],
    default: Any,
    fallback: str,
    warnings: list[str],
) -> Any:
    """``parse`` the link's ``name`` cut to ``cut`` characters; missing or refused, ``default`` (with a
    warning that says ``fallback``)."""
    if (raw := params.get(name)) is None:
        return default
    try:
        return parse(raw[:cut])
    except Exception as err:  # noqa: BLE001 - see _part
        warnings.append(f"The link's {name} was not used ({err}); {fallback}.")
        return default


def parse_train(params: Mapping[str, str], limits: Limits | None = None) -> tuple[TrainLink, list[str]]:
    """The Train page's link, each part checked (and the epochs against the instance's limit)."""
    warnings: list[str] = []
    preset = "H"
    if (raw := params.get("preset")) is not None:
        try:
            if (problem := _too_long("preset", raw)) is not None:
                raise DigitLabError(problem)
            preset = get_preset(raw).name
        except Exception as err:  # noqa: BLE001 - see _part
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
            if (
                spec.name == "epochs"
                and limits is not None
                and limits.max_epochs is not None
                and hp.epochs > limits.max_epochs
            ):
                raise DigitLabError(f"{hp.epochs} epochs is over this instance's limit of {limits.max_epochs}")
        except Exception as err:  # noqa: BLE001 - see _part
            default = form_value(base, spec.name, spec.kind)
            if spec.name == "epochs" and limits is not None and limits.max_epochs is not None:
                default = min(default, limits.max_epochs)
            warnings.append(f"The link's {spec.name} was not used ({err}); it is {default or 'off'}.")
            continue
        form[spec.name] = form_value(hp, spec.name, spec.kind)
    pipeline, p_warn = parse_pipeline(params.get("pipeline"))
    dataset, d_warn = parse_dataset(params.get("dataset"))
    warnings += [w for w in (p_warn, d_warn) if w]
    validation: str | float = _lenient(
        params, "validation", 40, parse_validation, "test", "validating on the test set", warnings
    )
    seed = _lenient(params, "seed", 40, parse_seed, 0, "the seed is 0", warnings)
    augment = _lenient(params, "augment", 80, parse_augment, None, "augmentation is off", warnings)
    tta = _lenient(params, "tta", 10, _parse_on_off, False, "test-time augmentation is off", warnings)
    start_from = _lenient(params, "start", 40, parse_start_from, None, "the run starts from fresh weights", warnings)
    pipeline_arg = None
    if pipeline is not None:
        raw = params["pipeline"].strip()
        pipeline_arg = raw if raw in NAMED_PIPELINES else pipeline.to_json()
    return TrainLink(preset, form, pipeline_arg, dataset, validation, seed, augment, tta, start_from), warnings


def _parse_on_off(raw: str) -> bool:
    """``on``/``off`` (and true/false, yes/no, 1/0) from a link."""
    text = raw.strip().lower()
    if text in ("on", "true", "yes", "1"):
        return True
    if text in ("off", "false", "no", "0", ""):
        return False
    raise DigitLabError(f"expected on or off, got {raw[:10]!r}")


def train_params(
    preset: str,
    hyperparams: Hyperparams | None,
    pipeline: str | None,
    dataset: str,
    validation: str | float,
    seed: int,
    augment: Augmentation | None = None,
    tta: bool = False,
    start_from: str | None = None,
) -> dict[str, str]:
    """The Train page's URL: the preset, every hyperparameter that differs from the preset's own,
    the pipeline (a name or its compact form; ``raw`` when empty), a ready dataset, validation, seed and
    augmentation (``augment=on``, or its settings; left out when off), ``tta=on`` and the run it
    starts from (``start=<run id>``). The recipe knobs
    are hyperparameters, written like the others when they differ from the preset's."""
    params = {"preset": get_preset(preset).name}
    if hyperparams is not None:
        base = get_preset(preset).defaults
        for spec in describe_preset(preset):
            if not spec.fixed and getattr(hyperparams, spec.name) != getattr(base, spec.name):
                params[spec.name] = url_value(hyperparams, spec.name)
    if pipeline is not None:  # an empty one as "raw": a link without a pipeline keeps the receiver's
        text = pipeline.strip() or "[]"
        params["pipeline"] = text if text in NAMED_PIPELINES else pipeline_param_text(get_pipeline(text))
    if shareable_dataset(dataset):
        params["dataset"] = dataset
    if validation != "test":
        params["validation"] = repr(float(validation))
    if seed:
        params["seed"] = str(int(seed))
    if augment is not None:
        params["augment"] = augment.compact
    if tta:
        params["tta"] = "on"
    if start_from:
        params["start"] = start_from
    return params


def shareable_dataset(spec: str) -> bool:
    """True for ready datasets (a link never carries the path of an uploaded file)."""
    try:
        return DatasetSpec.parse(spec).is_ready
    except DigitLabError:
        return False


def pipeline_param_text(pipeline: Pipeline) -> str:
    """A pipeline as a link carries it: its name when it is a named one, else its compact form."""
    return name_of_pipeline(pipeline) or compact_pipeline(pipeline)
