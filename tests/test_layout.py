"""The layout's rules, read from the code's imports: `core` by stage with imports running only down
the stages, pages and `ui/` through the one door (never the run store, the queue or Ray), and no
process pools or subprocesses under `core/` (background work runs on Ray, through one task API)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: core's stages, in the order data flows; a module may import its own stage and the ones above.
STAGES = [
    "errors",
    "settings",
    "params",
    "states",
    "store",
    "text",
    "exports",
    "datasets",
    "preprocess",
    "training",
    "runs",
    "execution",
    "analysis",
    "labels",
    "experiments",
    "classroom",
    "links",
    "lab",
    "commands",
    "__main__",
    "__init__",
]
#: What pages and ui/ must not import: the door (core.lab) is their way to these.
BEHIND_THE_DOOR = (
    "core.store",
    "core.runs.store",
    "core.execution.queue",
    "core.execution.tasks",
    "core.execution.cluster",
    "core.execution.keeper",
    "core.execution.worker",
    "core.classroom.run_access",
    "ray",
)


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            # Both the module and each name taken from it: `from core.execution import queue` reaches the queue.
            if node.module != "core":
                found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return found


def _behind(module: str) -> bool:
    """Whether ``module`` (or a name taken from it) is behind the door."""
    return module in BEHIND_THE_DOOR or module.startswith(tuple(f"{b}." for b in BEHIND_THE_DOOR))


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "core" and len(parts) > 1 else None


def test_core_is_a_package_per_stage_and_imports_run_down_the_stages():
    upward, unknown = [], []
    for path in (ROOT / "core").rglob("*.py"):
        own = path.relative_to(ROOT / "core").parts[0].removesuffix(".py")
        if own not in STAGES:
            unknown.append(own)
            continue
        for line, module in _imports(path):
            stage = _stage(module)
            if stage is not None and stage != own and stage in STAGES and STAGES.index(stage) > STAGES.index(own):
                upward.append(f"{path.relative_to(ROOT)}:{line} ({own}) imports {module} ({stage})")
    assert not unknown, f"modules outside the stages: {sorted(set(unknown))}"
    assert not upward, upward


def test_pages_and_ui_go_through_the_door():
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in [*ROOT.glob("pages/*.py"), *ROOT.glob("ui/*.py"), ROOT / "app.py"]
        for line, module in _imports(path)
        if _behind(module)
    ]
    assert not offenders, offenders


def test_the_door_check_reads_every_import_form(tmp_path):
    forms = [
        "from core.runs import store",
        "from core.execution import queue, tasks",
        "import core.store.jobs",
        "from core import store",
        "from core.store.db import database",
        "import ray",
        "from ray import get",
    ]
    for form in forms:
        page = tmp_path / "page.py"
        page.write_text(form + "\n")
        assert any(_behind(m) for _, m in _imports(page)), form
    page.write_text("from core.lab import Lab\nfrom core.runs.records import Run\nfrom core.execution import warmup\n")
    assert not any(_behind(m) for _, m in _imports(page))


def test_no_process_pools_or_subprocesses_under_core():
    words = ("Popen", "ProcessPoolExecutor", "multiprocessing")
    found = [
        f"{path.relative_to(ROOT)}: {word}"
        for path in (ROOT / "core").rglob("*.py")
        for word in words
        if word in path.read_text(encoding="utf-8")
    ]
    assert not found, found
