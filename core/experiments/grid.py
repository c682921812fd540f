"""Experiment grids: pipelines x presets x seeds, queued as ordinary runs, gathered into one table.

A grid is a set of runs tagged with one grid id in the run store, so it is queued, stopped and
listed like any run, and can be re-read at any time (``read_grid``), also while it runs: its
table fills in as runs finish. Repeating each configuration with several seeds gives a mean,
a standard deviation and n per cell, which is what tells a 0.2-point difference from noise
(the report had one run per cell).

    spec = GridSpec.report_table("default:small", epochs=1, seeds=(0, 1, 2))
    grid_id = submit_grid(JobQueue(RunStore()), spec)
    result = read_grid(RunStore(), grid_id)    # again later, until not result.active
    print(fit_result_text(result.summary, "D"))
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.datasets.specs import DatasetSpec, display_spec
from core.errors import DigitLabError
from core.execution.queue import Admission, JobQueue
from core.experiments.report_results import report_figure
from core.exports import csv_text, markdown_cell
from core.preprocess import (
    LABEL_FREE_BEST,
    NAMED_PIPELINES,
    PIPELINE_TITLES,
    REPORT_PIPELINES,
    REPORT_TITLES,
    name_of_pipeline,
)
from core.runs.describe import fit_result_entry, fit_result_report
from core.runs.eta import start_text
from core.runs.store import FAILED, FINISHED, METRIC_NAMES, QUEUED, RUNNING, STOPPED, Run, RunStore, fit_result_line
from core.training.augment import Augmentation, parse_augment
from core.training.config import RunConfig, parse_seed, parse_start_from
from core.training.models import PRESETS, get_preset
from core.training.recipes import Recipe, recipe_suffix

#: What an augmented pipeline's row is called after the pipeline (a grid's augmentation dimension).
AUGMENTED = " + augmentation"
#: The report's three model presets, in its order.
REPORT_PRESETS: tuple[str, ...] = ("G", "D", "H")
#: More runs than this in one grid is almost certainly a typo (and would hold the queue for hours).
MAX_GRID_RUNS = 500
SUMMARY_COLUMNS = [
    "pipeline",
    "title",
    "preset",
    "n",
    "runs",
    "status",
    *(f"{m}_{s}" for m in METRIC_NAMES for s in ("mean", "std")),
    "test_accuracy_mean",
    "seconds_mean",
    "training_only",
    "leaky_val_accuracy_mean",
]
#: What ``--pipelines`` accepts for the report's six pipelines ("seed" is the name it had first).
REPORT_GROUP = ("report", "seed")
RUN_COLUMNS = [
    "run",
    "status",
    "pipeline",
    "title",
    "preset",
    "seed",
    "dataset",
    "epochs",
    *METRIC_NAMES,
    "test_accuracy",
    "seconds",
    "progress",
    "error",
    "training_only",
    "leaky_val_accuracy",
]


@dataclass(frozen=True)
class GridSpec:
    """What a grid runs: every pipeline on every preset, once per seed, on one dataset.

    ``pipelines`` are names from ``NAMED_PIPELINES`` or pipeline JSON; ``epochs`` overrides every
    preset's own number of epochs (None keeps them); ``validation`` and ``leaky_protocol`` are as in
    RunConfig (the latter adds each run's figure on test images preprocessed with their labels).
    ``augments`` is one more dimension: each pipeline runs once per augmentation setting (None: off);
    an augmented pipeline is its own row of the table (``raw + augmentation``). ``recipes``
    (core.training.recipes; None: each preset's own knobs) is another: a recipe's knobs are set over
    the preset's, and its rows are named by them (``raw + warmup-cosine, weight decay 0.0005``).
    ``start_from`` (a run id; None: fresh weights) starts every run from that run's model, so every
    preset must have its layers (RunConfig.start_from; the door checks it before queuing any).
    """

    dataset: DatasetSpec
    pipelines: tuple[str, ...] = REPORT_PIPELINES
    presets: tuple[str, ...] = REPORT_PRESETS
    seeds: tuple[int, ...] = (0,)
    epochs: int | None = None
    validation: str | float = "test"
    leaky_protocol: bool = False
    augments: tuple[Augmentation | None, ...] = (None,)
    recipes: tuple[Recipe | None, ...] = (None,)
    start_from: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dataset", DatasetSpec.parse(self.dataset))  # written text, as forms give it
        object.__setattr__(self, "start_from", parse_start_from(self.start_from))

    @classmethod
    def report_table(
        cls, dataset: str | DatasetSpec, epochs: int | None = None, seeds: Sequence[int] = (0,)
    ) -> GridSpec:
        """The report's table: its six pipelines on G, D and H."""
        return cls(
            dataset=DatasetSpec.parse(dataset),
            pipelines=REPORT_PIPELINES,
            presets=REPORT_PRESETS,
            seeds=tuple(seeds),
            epochs=epochs,
        )

    @property
    def size(self) -> int:
        """Number of runs."""
        return len(self.pipelines) * len(self.presets) * len(self.seeds) * len(self.augments) * len(self.recipes)

    def configs(self) -> list[RunConfig]:
        """Every run's config, checked, in queue order: seed by seed, so that each cell has a
        first figure early and later seeds refine it; within a seed, preset by preset."""
        for what, items in (
            ("pipeline", self.pipelines),
            ("preset", self.presets),
            ("seed", self.seeds),
            ("augmentation setting", self.augments),
            ("recipe", self.recipes),
        ):
            if not items:
                raise DigitLabError(f"a grid needs at least one {what}")
            if len(set(items)) != len(items):
                raise DigitLabError(f"a grid lists a {what} twice: {', '.join(map(str, items))}")
        if self.size > MAX_GRID_RUNS:
            raise DigitLabError(f"a grid of {self.size} runs is too big (at most {MAX_GRID_RUNS})")
        overrides = {} if self.epochs is None else {"epochs": self.epochs}
        return [
            RunConfig.build(
                self.dataset,
                pipeline,
                preset,
                {**overrides, **(recipe.overrides if recipe else {})},
                self.validation,
                seed,
                leaky_protocol=self.leaky_protocol,
                augment=augment,
                start_from=self.start_from,
            )
            for seed in self.seeds
            for preset in self.presets
            for pipeline in self.pipelines
            for augment in self.augments
            for recipe in self.recipes
        ]


# ---- parsing (CLI and forms) ------------------------------------------------------------------


def parse_pipelines(text: str) -> tuple[str, ...]:
    """A comma list of pipeline names, where ``report`` stands for the report's six (``"report"``,
    ``"raw,erosion"``, ``"report,normal-threshold-shrink-blobs-dilate-erosion"``); ``seed``, its
    old name, is accepted too."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    expanded = [name for part in parts for name in (REPORT_PIPELINES if part.lower() in REPORT_GROUP else (part,))]
    names = tuple(dict.fromkeys(expanded))
    unknown = [n for n in names if n not in NAMED_PIPELINES]
    if unknown or not names:
        raise DigitLabError(
            f"unknown pipeline(s) {', '.join(map(repr, unknown)) or repr(text)}; "
            f"use 'report' or names from: {', '.join(NAMED_PIPELINES)}"
        )
    return names


def parse_presets(text: str) -> tuple[str, ...]:
    """A comma list of presets such as ``"G,D,H"`` (case-insensitive), as the presets spell them."""
    names = tuple(get_preset(part).name for part in text.split(",") if part.strip())
    if not names:
        raise DigitLabError(f"no preset given; choose from {', '.join(PRESETS)}")
    return names


def parse_augments(text: str) -> tuple[Augmentation | None, ...]:
    """A comma list of augmentation settings such as ``"off,on"``; one setting's own fields are
    separated by ``;`` (``"off,rotation=15;shift=0.1"``)."""
    parts = [part.strip().replace(";", ",") for part in str(text).split(",") if part.strip()]
    if not parts:
        raise DigitLabError("no augmentation setting given; use e.g. off,on")
    return tuple(parse_augment(part) for part in parts)


def parse_seeds(text: str) -> tuple[int, ...]:
    """A comma list of seeds such as ``"0,1,2"``."""
    parts = [part.strip() for part in str(text).split(",") if part.strip()]
    if not parts:
        raise DigitLabError("no seed given; use e.g. 0,1,2")
    return tuple(parse_seed(part) for part in parts)


# ---- submitting and stopping ------------------------------------------------------------------


def new_grid_id() -> str:
    """A fresh grid id: 8 hex digits."""
    return secrets.token_hex(4)


def submit_grid(jobs: JobQueue, spec: GridSpec, owner: str | None = None, admit: Admission | None = None) -> str:
    """Queue every run of ``spec`` for ``owner`` under a new grid id, exactly as single runs are
    queued (fair share across owners, Ray tasks on warm workers), and start what max_jobs allows;
    return the id.

    All configs are checked first, and ``admit`` (the caller's rules: the Lab passes the classroom's
    limits, core.lab) with them, so a spec that breaks one queues nothing.
    """
    configs = spec.configs()
    grid_id = new_grid_id()
    jobs.submit_many(configs, owner=owner, grid=grid_id, admit=admit)
    return grid_id


def check_queue_room(max_queue: int | None, jobs: JobQueue, n_runs: int) -> None:
    """Refuse ``n_runs`` more runs when they would leave more than ``max_queue`` runs waiting."""
    if max_queue is None:
        return
    runs = jobs.store.list()
    waiting = sum(r.status == QUEUED for r in runs)
    free = max(0, jobs.max_jobs - sum(r.status == RUNNING for r in runs))
    would_wait = waiting + n_runs - (min(free, n_runs) if waiting == 0 else 0)
    if would_wait > max_queue:
        runs_text = f"{n_runs} run{'s' if n_runs != 1 else ''}"
        raise DigitLabError(
            f"a grid of {runs_text} would leave {would_wait} waiting in the queue; this instance "
            f"allows {max_queue}: choose fewer pipelines, presets or seeds"
        )


def stop_grid(store: RunStore | Any, grid_id: str) -> int:
    """Cancel the grid's queued runs and ask its running ones to stop; return how many were active."""
    active = [r for r in grid_runs(store, grid_id) if r.active]
    for run in reversed(active):  # the queue's tail first, so no queued run starts meanwhile
        store.request_stop(run.id)
    return len(active)


def grid_runs(store: RunStore | Any, grid_id: str) -> list[Run]:
    """The grid's runs in queue order; DigitLabError if the store holds none with that id."""
    runs = store.grid_runs(grid_id)
    if not runs:
        raise DigitLabError(f"no grid {grid_id!r}", store.root)
    return runs


# ---- tables -----------------------------------------------------------------------------------


def pipeline_name(pipeline_json: str, label: str = "") -> str:
    """The name of a named pipeline given its JSON, else the pipeline's label (or the JSON)."""
    return name_of_pipeline(pipeline_json) or label or pipeline_json


def pipeline_title(name: str) -> str:
    """How result tables title a pipeline: the report's title for its six, the pipeline's
    title for other named ones, else ``name`` itself (a label)."""
    base, plus, rest = name.partition(" + ")  # "raw + augmentation + warmup-cosine": its rows' own parts
    return PIPELINE_TITLES.get(base, base) + plus + rest


def runs_frame(runs: Iterable[Run], history: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per run (columns ``RUN_COLUMNS``), in the given order.

    Finished and stopped runs show their final metrics; a running run shows its latest completed
    epoch when ``history`` (run id -> RunStore.history) has it, and its progress.
    """
    rows = []
    for run in runs:
        cfg = run.config
        name = pipeline_name(cfg.pipeline.to_json(), cfg.pipeline_label) if cfg else run.pipeline_label
        name = f"{name}{AUGMENTED}" if cfg and cfg.augment else name  # its own row of the table
        if cfg and (recipe := recipe_suffix(cfg.preset, cfg.hyperparams)):
            name = f"{name} + {recipe}"
        m = run.metrics
        if run.status == RUNNING and history is not None and len(history.get(run.id, ())):
            hist = history[run.id]
            m = {**hist.iloc[-1].to_dict(), "epochs": len(hist)}
        rows.append(
            {
                "run": run.id,
                "status": run.status,
                "pipeline": name,
                "title": pipeline_title(name),
                "preset": run.preset,
                "seed": cfg.seed if cfg else None,
                "dataset": display_spec(run.dataset),  # its name, never a server path (file:<cache>/uploads/...)
                "epochs": m.get("epochs"),
                **{k: m.get(k) for k in METRIC_NAMES},
                "test_accuracy": m.get("test_accuracy"),
                "seconds": m.get("seconds"),
                "progress": _progress_text(run),
                "error": run.error or run.problem,
                "training_only": cfg.pipeline.has_training_only if cfg else False,
                "leaky_val_accuracy": m.get("leaky_val_accuracy"),
            }
        )
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (pipeline, preset) cell, in first-appearance order (columns ``SUMMARY_COLUMNS``).

    Means and standard deviations (sample, ddof=1: NaN when n < 2) are over the cell's finished
    runs only; ``n`` counts them, ``runs`` counts all, ``status`` says what the others are doing.
    """
    rows = []
    for (pipeline, preset), cell in frame.groupby(["pipeline", "preset"], sort=False):
        done = cell[cell["status"] == FINISHED]
        row: dict[str, Any] = {
            "pipeline": pipeline,
            "title": cell["title"].iloc[0],
            "preset": preset,
            "n": len(done),
            "runs": len(cell),
            "status": _cell_status(cell["status"]),
        }
        for metric in METRIC_NAMES:
            values = pd.to_numeric(done[metric], errors="coerce")
            row[f"{metric}_mean"] = values.mean() if len(values) else math.nan
            row[f"{metric}_std"] = values.std(ddof=1) if len(values) > 1 else math.nan
        row["test_accuracy_mean"] = pd.to_numeric(done["test_accuracy"], errors="coerce").mean()
        row["seconds_mean"] = pd.to_numeric(done["seconds"], errors="coerce").mean()
        row["training_only"] = bool(cell["training_only"].any())
        row["leaky_val_accuracy_mean"] = pd.to_numeric(done["leaky_val_accuracy"], errors="coerce").mean()
        rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def with_report_figures(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` plus the report's val_accuracy for the same cell (``report_val_accuracy``,
    NaN where it has none) and our mean minus it (``delta``)."""
    out = summary.copy()
    figures = [report_figure(p, n) for p, n in zip(out["preset"], out["pipeline"])]
    out["report_val_accuracy"] = pd.array([math.nan if v is None else v for v in figures], dtype="float64")
    out["delta"] = out["val_accuracy_mean"] - out["report_val_accuracy"]
    return out


def mean_pm_std(mean: float, std: float, n: int, digits: int = 4) -> str:
    """``0.9792 ± 0.0012`` (n >= 2), ``0.9792`` (n = 1) or ``""`` (no finished run)."""
    if n < 1 or pd.isna(mean):
        return ""
    if n < 2 or pd.isna(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


@dataclass(frozen=True)
class GridResult:
    """A grid as read from the store at one moment: its runs and the summary table."""

    grid_id: str
    runs: pd.DataFrame
    summary: pd.DataFrame

    @property
    def counts(self) -> dict[str, int]:
        """Runs per status (every status present, zeros included)."""
        values = self.runs["status"].value_counts()
        return {s: int(values.get(s, 0)) for s in (QUEUED, RUNNING, FINISHED, STOPPED, FAILED)}

    @property
    def total(self) -> int:
        return len(self.runs)

    @property
    def ended(self) -> int:
        """Runs that will not change any more (finished, stopped or failed)."""
        c = self.counts
        return c[FINISHED] + c[STOPPED] + c[FAILED]

    @property
    def active(self) -> bool:
        """Whether some run is still queued or running."""
        return self.ended < self.total

    @property
    def presets(self) -> list[str]:
        return list(dict.fromkeys(self.summary["preset"]))

    @property
    def pipelines(self) -> list[str]:
        return list(dict.fromkeys(self.summary["pipeline"]))

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(self.runs["dataset"]))

    @property
    def seeds(self) -> list[int]:
        return sorted({int(s) for s in self.runs["seed"].dropna()})


def read_grid(store: RunStore | Any, grid_id: str) -> GridResult:
    """The grid ``grid_id`` as it stands now (running runs with their latest epoch)."""
    runs = grid_runs(store, grid_id)
    history = {r.id: store.history(r.id) for r in runs if r.status == RUNNING}
    frame = runs_frame(runs, history)
    return GridResult(grid_id=grid_id, runs=frame, summary=summarize(frame))


# ---- text and exports -------------------------------------------------------------------------


def fit_result_text(summary: pd.DataFrame, preset: str) -> str:
    """The report's text block for one preset: ``## FIT RESULT ##``, then per pipeline its title and
    a ``#### loss: ... - val_accuracy: ...`` line of means (with n and the spread when n > 1)."""
    entries = []
    for row in summary[summary["preset"] == preset].to_dict("records"):
        title = REPORT_TITLES.get(row["pipeline"], row["title"])  # the report's spelling
        if row["n"] == 0:
            entries.append(fit_result_entry(title, f"({row['status']})"))
            continue
        line = fit_result_line({m: row[f"{m}_mean"] for m in METRIC_NAMES if not pd.isna(row[f"{m}_mean"])})
        if row["n"] > 1:
            line += f" (mean of {row['n']} seeds; val_accuracy std {row['val_accuracy_std']:.4f})"
        entries.append(fit_result_entry(title, line))
    return fit_result_report(entries)


def accuracy_pivot(summary: pd.DataFrame) -> pd.DataFrame:
    """Pipelines by presets, each cell ``val_accuracy mean ± std`` (empty while none finished)."""
    cells = summary.assign(
        cell=[
            mean_pm_std(m, s, n)
            for m, s, n in zip(summary["val_accuracy_mean"], summary["val_accuracy_std"], summary["n"])
        ]
    )
    pivot = cells.pivot(index="title", columns="preset", values="cell")
    return pivot.reindex(
        index=list(dict.fromkeys(summary["title"])), columns=list(dict.fromkeys(summary["preset"]))
    ).fillna("")


def to_csv(summary: pd.DataFrame) -> str:
    """The summary as CSV text, with the report's figures beside ours."""
    return csv_text(with_report_figures(summary), index=False, float_format="%.6g")


def to_markdown(result: GridResult) -> str:
    """A report of the grid: what ran, val_accuracy by pipeline and preset, the report's blocks."""
    summary = result.summary
    lines = [
        f"# Grid {result.grid_id}",
        "",
        f"Dataset: {', '.join(result.datasets)}. Seeds: {', '.join(map(str, result.seeds))}. "
        f"Runs: {result.counts[FINISHED]} of {result.total} finished.",
        "",
        "## val_accuracy (mean ± std over seeds)",
        "",
        _markdown_table(accuracy_pivot(summary)),
        "",
    ]
    if summary["training_only"].any():
        lines += [TRAINING_ONLY_NOTE, ""]
    for preset in result.presets:
        lines += [
            f"## {preset}: {PRESETS[preset].title if preset in PRESETS else preset}",
            "",
            "```",
            fit_result_text(summary, preset),
            "```",
            "",
        ]
    return "\n".join(lines)


@dataclass(frozen=True)
class HonestGlance:
    """A grid's honest-evaluation story in three figures for one preset (None: not measured)."""

    preset: str
    title: str  # the best-scoring pipeline with a training-only step
    run_id: str  # its best finished run (whose confusion matrix shows the gap)
    honest: float  # the cell's test accuracy: test images preprocessed without their labels
    report_protocol: float | None  # with test images eroded by their test labels, as the report did
    label_free: float | None  # the label-free alternative (LABEL_FREE_BEST) with the same preset


@dataclass(frozen=True)
class BestCell:
    """A grid's headline: its best cell by honest test accuracy (test images preprocessed without
    their labels, whatever the pipeline), and which cell that is."""

    preset: str
    title: str
    run_id: str  # the cell's best finished run
    honest: float  # the cell's mean test accuracy over its seeds
    measured: int  # how many cells have a test figure so far


def best_honest_cell(result: GridResult) -> BestCell | None:
    """The cell with the highest mean test accuracy (ties: the first in the grid's order), or None
    while no cell has a test figure."""
    summary = result.summary
    done = summary[summary["test_accuracy_mean"].notna()]
    if done.empty:
        return None
    best = done.loc[done["test_accuracy_mean"].astype(float).idxmax()]
    runs = result.runs
    cell = runs[
        (runs["pipeline"] == best["pipeline"]) & (runs["preset"] == best["preset"]) & (runs["status"] == FINISHED)
    ]
    run_id = cell.sort_values("test_accuracy", ascending=False)["run"].iloc[0]
    return BestCell(best["preset"], best["title"], run_id, float(best["test_accuracy_mean"]), len(done))


def honest_glance(result: GridResult) -> HonestGlance | None:
    """The glance for the first preset that has a finished training-only cell, else None."""
    summary = result.summary
    done = summary[summary["training_only"] & summary["test_accuracy_mean"].notna()]
    if done.empty:
        return None
    preset = done["preset"].iloc[0]
    best = done[done["preset"] == preset].sort_values("test_accuracy_mean", ascending=False).iloc[0]
    runs = result.runs
    cell = runs[(runs["pipeline"] == best["pipeline"]) & (runs["preset"] == preset) & (runs["status"] == FINISHED)]
    run_id = cell.sort_values("test_accuracy", ascending=False)["run"].iloc[0]
    free = summary[(summary["pipeline"] == LABEL_FREE_BEST) & (summary["preset"] == preset)]["test_accuracy_mean"]
    leaky = best["leaky_val_accuracy_mean"]
    return HonestGlance(
        preset,
        best["title"],
        run_id,
        float(best["test_accuracy_mean"]),
        None if pd.isna(leaky) else float(leaky),
        float(free.iloc[0]) if len(free) and pd.notna(free.iloc[0]) else None,
    )


#: How tables title the leaky protocol's figure (RunConfig.leaky_protocol): never a bare val_accuracy.
LEAKY_TITLE = "leaky protocol (uses test labels)"
TRAINING_ONLY_NOTE = (
    'Pipelines marked "training images only" erode the training images labelled 0 '
    "(a step that needs the labels); the test images are not touched by that step, so "
    "these figures are honest, and lower than the report's, whose test images were eroded "
    "using their test labels."
)


def table_text(summary: pd.DataFrame) -> str:
    """The summary as an aligned text table for a terminal."""
    if summary.empty:
        return "(no runs)"
    shown = pd.DataFrame(
        {
            "pipeline": summary["pipeline"],
            "preset": summary["preset"],
            "n": summary["n"],
            **{
                m: [mean_pm_std(a, b, n) for a, b, n in zip(summary[f"{m}_mean"], summary[f"{m}_std"], summary["n"])]
                for m in METRIC_NAMES
            },
        }
    )
    figures = with_report_figures(summary)["report_val_accuracy"]
    shown["report val_acc"] = [f"{v:.4f}" if not pd.isna(v) else "" for v in figures]
    if summary["leaky_val_accuracy_mean"].notna().any():
        shown[LEAKY_TITLE] = [f"{v:.4f}" if not pd.isna(v) else "" for v in summary["leaky_val_accuracy_mean"]]
    return shown.to_string(index=False)


# ---- internals --------------------------------------------------------------------------------


def _cell_status(statuses: pd.Series) -> str:
    if len(statuses) == 1:
        return str(statuses.iloc[0])
    counts = statuses.value_counts()
    if counts.get(FINISHED, 0) == len(statuses):
        return f"{len(statuses)} finished"
    order = (FINISHED, RUNNING, QUEUED, STOPPED, FAILED)
    return ", ".join(f"{int(counts[s])} {s}" for s in order if counts.get(s, 0))


def _progress_text(run: Run) -> str:
    p = run.progress
    if run.status == QUEUED:
        return f"queued #{run.queue_position}, {start_text(run.estimated_start)}" if run.queue_position else QUEUED
    if run.status != RUNNING:
        return run.status
    if p.get("phase") == "training" and p.get("epochs"):
        return f"epoch {p.get('epoch')}/{p['epochs']}"
    return str(p.get("phase", RUNNING))


def _markdown_table(frame: pd.DataFrame) -> str:
    """A pipe table with the index as its first column (pandas' to_markdown needs tabulate)."""
    header = [frame.index.name or "", *frame.columns]
    rows = [[i, *vals] for i, vals in zip(frame.index, frame.to_numpy().tolist())]
    esc = [[markdown_cell(cell) for cell in row] for row in [header, *rows]]  # no formula, no stray "|"
    out = ["| " + " | ".join(esc[0]) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return "\n".join(out)
