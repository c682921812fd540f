"""``python -m core runs``: list runs with their metrics; show, stop, delete or queue again one.

The CLI runs on the server and acts as the administrator (core.classroom.access.ADMINISTRATOR): it sees
everyone's runs; ``--owner`` lists one person's.
"""

from __future__ import annotations

import argparse

import pandas as pd

from core.classroom.access import owner_label
from core.commands.door import admin_lab
from core.commands.train import epoch_line
from core.datasets import display_spec
from core.lab import Lab
from core.runs.eta import start_text
from core.runs.store import fit_result_line
from core.training.models import architecture_text

LIST_COLUMNS = [
    "id",
    "status",
    "owner",
    "dataset",
    "pipeline",
    "preset",
    "epochs",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "test_accuracy",
    "seconds",
]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``runs`` command."""
    p = subparsers.add_parser(
        "runs",
        help="list training runs; show, stop or delete one",
        description="List the runs in the run store (DIGITLAB_RUN_ROOT), newest first.",
    )
    action = p.add_mutually_exclusive_group()
    action.add_argument("--show", metavar="ID", help="print one run's config, epochs and FIT RESULT")
    action.add_argument("--stop", metavar="ID", help="cancel a queued run or stop a running one")
    action.add_argument("--delete", metavar="ID", help="delete a run that is not running")
    action.add_argument(
        "--requeue",
        metavar="ID",
        help="queue a failed or stopped run again: the same config as a new run of the same owner",
    )
    p.add_argument(
        "--owner",
        metavar="WHO",
        help="list only the runs of this owner: an e-mail address or "
        "class-code name (as the Teacher page shows it), or a full key such as oidc:amal@school.org",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    lab = admin_lab()
    if args.show:
        print(show_text(lab, args.show))
    elif args.stop:
        r = lab.runs.stop(args.stop)
        print(f"run {r.id}: {'stop requested' if r.stop_requested and r.active else r.status}")
    elif args.delete:
        lab.runs.delete(args.delete)
        print(f"deleted run {args.delete}")
    elif args.requeue:
        print(f"run {args.requeue} queued again as run {lab.runs.requeue(args.requeue)}")
    else:
        print(list_text(lab, args.owner))
    return 0


def list_text(lab: Lab, owner: str | None = None) -> str:
    """The runs as an aligned table (or a note that there are none), only ``owner``'s if given."""
    table = lab.runs.table()
    owners = {r.id: r.owner for r in lab.runs.of(owner)}
    table = table[table["id"].isin(owners)].reset_index(drop=True)
    table["owner"] = [owner_label(owners.get(i)) for i in table["id"]]
    if owner is not None and table.empty:
        return f"no runs of {owner}"
    if table.empty:
        return f"no runs in {lab.runs.root()}"
    shown = table[LIST_COLUMNS].copy()
    shown["pipeline"] = shown["pipeline"].map(lambda s: s if len(s) <= 40 else s[:39] + "…")
    shown["epochs"] = shown["epochs"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    shown["seconds"] = shown["seconds"].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    for col in ("loss", "accuracy", "val_loss", "val_accuracy", "test_accuracy"):
        shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    shown["status"] = [_status(row) for row in table.to_dict("records")]
    return shown.to_string(index=False)


def _status(row: dict) -> str:
    if pd.notna(row["queue"]):
        starts = None if pd.isna(row["starts"]) else float(row["starts"])
        return f"queued #{int(row['queue'])}, {start_text(starts)}"
    if row["problem"]:
        return f"{row['status']} (broken)"
    return row["status"]


def show_text(lab: Lab, run_id: str) -> str:
    """One run in full: config, architecture, per-epoch lines and the FIT RESULT line."""
    r = lab.runs.get(run_id)
    lines = [
        f"run {r.id}: {r.status}",
        f"owner: {owner_label(r.owner)}",
        f"dataset: {display_spec(r.dataset)}",
        f"pipeline: {r.pipeline_label}",
        f"preset: {r.preset}",
    ]
    if r.config is not None:
        lines.append(f"model: {architecture_text(r.config.hyperparams)}")
        lines.append(f"validation: {r.config.validation}  seed: {r.config.seed}")
        epochs: int | str = r.config.hyperparams.epochs
    else:
        epochs = "?"
    lines += [epoch_line(row, epochs) for row in lab.runs.history(run_id).to_dict("records")]
    if r.metrics.get("epochs"):
        lines += ["## FIT RESULT ##", f"#### {fit_result_line(r.metrics)}"]
    if "test_accuracy" in r.metrics:
        lines.append(f"test accuracy: {r.metrics['test_accuracy']:.4f}")
    if r.error:
        lines.append(f"error: {r.error}")
    if r.problem:
        lines.append(f"problem: {r.problem}")
    return "\n".join(lines)
