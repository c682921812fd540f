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
    "door",
    "lab",
    "commands",
    "__main__",
    "__init__",
]
#: What pages and ui/ must not import: the door (core.lab) is their way to these, and to its
#: resources (core.door), which they reach as attributes of a Lab, never on their own.
BEHIND_THE_DOOR = (
    "core.door",
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
        for path in [*ROOT.glob("pages/*.py"), *ROOT.glob("ui/*.py"), ROOT / "app.py", ROOT / "serve.py"]
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
        "from core.door.runs import Runs",
        "from core import door",
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


# ---- one policy: who may do what is core.classroom.access's alone -------------------------------

POLICY = ROOT / "core" / "classroom" / "access.py"


def _names(node: ast.AST) -> set[str]:
    """The attribute and variable names a value reads (``self.who.key``: self, who, key; in a
    tuple, list or set, each element's); a call's result is its own value, not read here."""
    found: set[str] = set()
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return found.union(*(_names(e) for e in node.elts))
    if not isinstance(node, (ast.Attribute, ast.Name)):
        return found
    for part in ast.walk(node):
        if isinstance(part, ast.Attribute):
            found.add(part.attr)
        elif isinstance(part, ast.Name):
            found.add(part.id)
    return found


def _is_column(node: ast.AST) -> bool:
    """An SQL column (``table.c.owner``): a storage filter on the owner the policy chose."""
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "c"


def _policy_breaches(source: str, widgets: bool) -> list[int]:
    """Lines of ``source`` that decide who may do what themselves: a comparison with the caller's
    identity (``who.key``, ``who.role``), any role comparison, and in pages and ui/ (``widgets``)
    any comparison of owners (those ask the door)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        if any(_is_column(o) for o in operands):
            continue
        names = [_names(o) for o in operands]
        caller = any({"who", "key"} <= n or {"who", "role"} <= n for n in names)
        role = any(isinstance(o, ast.Attribute) and o.attr == "role" for o in operands)
        owner = any("owner" in n or "owners" in n for n in names)
        if caller or role or (widgets and owner):
            lines.append(node.lineno)
    return lines


def test_who_may_do_what_is_decided_in_access_alone():
    code = [
        *ROOT.glob("core/**/*.py"),
        *ROOT.glob("pages/*.py"),
        *ROOT.glob("ui/*.py"),
        ROOT / "app.py",
        ROOT / "serve.py",
    ]
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in code
        if path != POLICY
        for line in _policy_breaches(path.read_text(encoding="utf-8"), widgets=path.parts[-2] in ("pages", "ui"))
    ]
    assert not found, f"owner or role comparisons outside core/classroom/access.py: {found}"


def test_the_policy_check_reads_every_form():
    for form in (
        "ok = run.owner == self.who.key",
        "ok = who.key != owner",
        "ok = e.owner in (who.key,)",
        "ok = who.role == 'teacher'",
        "ok = identity.role in ROLES",
    ):
        assert _policy_breaches(form, widgets=False), form
    assert _policy_breaches("mine = [r for r in runs if r.owner == chosen]", widgets=True)
    for fine in ("q = t.c.owner == owner", "mine = r.owner == chosen", "n = len(who.name) == 3"):
        assert not _policy_breaches(fine, widgets=False), fine


# ---- the door: Lab and one small object per resource ---------------------------------------------

#: Lab's resources (core/door/<name>.py each) and its plain properties of who is asking.
RESOURCES = {"runs", "grids", "datasets", "labels", "evaluations", "tasks", "classroom", "challenges", "ensembles"}
PROPERTIES = {"who", "staff", "shows_owners", "limits"}
#: What never leaves the door: the queue, the store, the caller's run view, the shared context, Ray.
HIDDEN = ("JobQueue", "RunStore", "RunView", "Context", "ActorHandle", "ray", "Database", "Engine")


def _door():
    from core.classroom.access import ADMINISTRATOR
    from core.lab import Lab

    return Lab, Lab(ADMINISTRATOR)  # costs nothing: no queue until a resource is used


def test_lab_is_its_resources_and_a_few_properties():
    import inspect
    from functools import cached_property

    lab_type, lab = _door()
    public, expected = {name for name in dir(lab) if not name.startswith("_")}, RESOURCES | PROPERTIES
    assert public == expected, f"new on Lab: {public - expected}; gone: {expected - public}"
    for name in RESOURCES:
        assert isinstance(inspect.getattr_static(lab_type, name), cached_property), f"{name}: made on first use"
        assert type(getattr(lab, name)).__module__ == f"core.door.{name}", name
    for name in PROPERTIES - {"who"}:
        assert isinstance(inspect.getattr_static(lab_type, name), property), name


def test_resources_hand_out_no_queue_store_or_ray_and_say_what_they_do():
    import inspect
    import re

    _, lab = _door()
    hidden = re.compile(rf"\b({'|'.join(HIDDEN)})\b")
    found = []
    for name in sorted(RESOURCES):
        resource = getattr(lab, name)
        found += [f"{name}.{attr}: public state" for attr in vars(resource) if not attr.startswith("_")]
        for attr, member in inspect.getmembers(type(resource)):
            if attr.startswith("_"):
                continue
            if not inspect.isfunction(member):
                found.append(f"{name}.{attr}: not a method")
                continue
            annotations = member.__annotations__
            params = [p for p in inspect.signature(member).parameters if p != "self"]
            if "return" not in annotations or any(p not in annotations for p in params):
                found.append(f"{name}.{attr}: type hints missing")
            if not (member.__doc__ or "").strip():
                found.append(f"{name}.{attr}: no docstring")
            if any(hidden.search(str(a)) for a in annotations.values()):
                found.append(f"{name}.{attr}: hands out {annotations}")
    assert not found, found
