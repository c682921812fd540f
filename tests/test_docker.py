"""The Dockerfile and .dockerignore, checked without a container engine.

The Dockerfile is parsed and its settings checked; the files its final stage's COPY lines would
put in the image (minus .dockerignore) are copied into a temporary /app, where every module the
app uses must import from those files alone. The built image itself, run by docker or podman, is
tests/test_image.py's.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[1]
IMAGE_PORT, IMAGE_ADDRESS = "8501", "0.0.0.0"


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY...
    args: str  # the rest, continuation lines joined


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order; comments dropped, ``\\`` continuations joined with a space."""
    instructions, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):  # comments inside a continued instruction
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def dockerfile() -> list[Instruction]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text())


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    """The instructions of the last stage (from its FROM on): what the image is made of."""
    last = max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM")
    return instructions[last:]


def only(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in instructions if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def image_env(instructions: list[Instruction]) -> dict[str, str]:
    """Every ``ENV key=value`` of the Dockerfile."""
    env = {}
    for ins in instructions:
        if ins.keyword == "ENV":
            for word in shlex.split(ins.args):
                key, sep, value = word.partition("=")
                assert sep, f"use ENV key=value, not {word!r}"
                env[key] = value
    return env


def copies(instructions: list[Instruction]) -> list[tuple[str, str]]:
    """(source, destination) of every COPY from the build context (not ``--from`` another stage)."""
    pairs = []
    for ins in instructions:
        if ins.keyword == "COPY" and "--from=" not in ins.args:
            words = [w for w in shlex.split(ins.args) if not w.startswith("--")]
            *sources, dest = words
            pairs.extend((src, dest) for src in sources)
    return pairs


# ---- .dockerignore, with Docker's matching rules ------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax: ``*`` and ``?`` stay within a path segment, ``**`` spans any."""
    pattern = str(PurePosixPath(pattern.strip().lstrip("/")))
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(negated, regex) per line of .dockerignore."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), _pattern_regex(line.removeprefix("!"))))
    return rules


def ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves ``relative`` (a path in the build context) out: the last rule matching
    the path or one of its parent folders decides."""
    parts = PurePosixPath(relative).parts
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    result = False
    for negated, regex in rules:
        if any(regex.fullmatch(p) for p in prefixes):
            result = not negated
    return result


def build_app_tree(target: Path) -> list[str]:
    """Copy into ``target`` (the image's WORKDIR) what the final stage's COPY lines would; return the files."""
    instructions = final_stage(dockerfile())
    assert only(instructions, "WORKDIR").args == "/app"
    rules = dockerignore_rules()
    copied = []
    for src, dest in copies(instructions):
        dest_dir = target / dest.removeprefix("/app").lstrip("/")
        source = ROOT / src
        if source.is_file():
            files = [(source, dest_dir / source.name if dest.endswith("/") else dest_dir)]
        else:
            files = [(p, dest_dir / p.relative_to(source)) for p in sorted(source.rglob("*")) if p.is_file()]
        for path, out in files:
            relative = path.relative_to(ROOT).as_posix()
            if ignored(relative, rules):
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out)
            copied.append(out.relative_to(target).as_posix())
    return copied


# ---- the static checks ----------------------------------------------------------------------------


def test_image_stages_base_user_port_volume_and_settings():
    stages = [i.args for i in dockerfile() if i.keyword == "FROM"]
    # A build stage installs the requirements; the image copies its virtualenv only.
    assert stages == ["python:3.11-slim AS build", "python:3.11-slim"]
    instructions = final_stage(dockerfile())
    keywords = [i.keyword for i in instructions]
    assert any(i.keyword == "COPY" and i.args == "--from=build /opt/venv /opt/venv" for i in instructions)
    assert image_env(instructions)["PATH"].startswith("/opt/venv/bin:")
    assert only(instructions, "EXPOSE").args == IMAGE_PORT
    assert "/data" in json.loads(only(instructions, "VOLUME").args)

    user = only(instructions, "USER").args
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "run as a numeric non-root user"
    # Installing needs root; everything after USER (the server, the health check) runs as the user.
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    assert keywords.index("USER") < keywords.index("CMD")
    assert any(f"chown -R {uid}" in i.args and "/data" in i.args for i in instructions if i.keyword == "RUN")

    # The runtime requirements only: the test tools (requirements-dev.txt) stay out of the image.
    build = dockerfile()
    assert any(i.keyword == "RUN" and re.search(r"pip install -r /tmp/requirements\.txt", i.args) for i in build)
    assert any(i.keyword == "COPY" and i.args == "requirements.txt /tmp/requirements.txt" for i in build)
    assert not any("requirements-dev" in i.args for i in build)
    assert not any(r.startswith(("pytest", "playwright")) for r in (ROOT / "requirements.txt").read_text().split())
    requirements = (ROOT / "requirements.txt").read_text().split()
    assert any(r.startswith("opencv-python-headless==") for r in requirements)
    assert not any(r.startswith(("opencv-python==", "opencv-contrib-python==")) for r in requirements)

    env = image_env(instructions)
    for key in ("DIGITLAB_RUN_ROOT", "DIGITLAB_DATA_DIR", "DIGITLAB_CACHE_DIR"):
        assert PurePosixPath(env[key]).is_relative_to("/data"), f"{key} must live in the /data volume"
    assert int(env["DIGITLAB_MAX_JOBS"]) >= 0 and int(env["DIGITLAB_MAX_UPLOAD_MB"]) >= 1  # 0: as many as the CPUs hold

    cmd = only(instructions, "CMD").args
    assert cmd.startswith("exec streamlit run serve.py"), "exec: Streamlit must get docker stop's SIGTERM"
    assert "--server.headless true" in cmd and f"--server.port {IMAGE_PORT}" in cmd
    assert f"--server.address {IMAGE_ADDRESS}" in cmd
    assert re.search(r"--server\.maxUploadSize \"\$\{DIGITLAB_MAX_UPLOAD_MB", cmd)
    assert json.loads(only(instructions, "ENTRYPOINT").args) == ["tini", "--"]
    assert any("install" in i.args and "tini" in i.args for i in instructions if i.keyword == "RUN")

    health = only(instructions, "HEALTHCHECK").args
    assert f"127.0.0.1:{IMAGE_PORT}/_stcore/health" in health


def test_every_copy_source_exists_and_survives_dockerignore():
    rules = dockerignore_rules()
    for src, _ in copies(dockerfile()):  # both stages
        assert (ROOT / src).exists(), f"COPY {src}: no such file in the build context"
        assert not ignored(src, rules), f"COPY {src}: .dockerignore leaves it out"


def test_dockerignore_keeps_repository_clutter_and_secrets_out():
    rules = dockerignore_rules()
    for path in (
        ".git/config",
        ".venv/bin/python",
        "runs/index.sqlite3",
        "runs/0a1b2c3d/model.keras",
        "tests/test_docker.py",
        "core/__pycache__/runs.cpython-311.pyc",
        "pages/__pycache__/x.pyc",
        ".streamlit/secrets.toml",
        "bench/load.py",
        "artifacts/screenshots/a.png",
        "data/x.npz",
        ".pytest_cache/v",
        "README.md",
        "tools/image_check.py",
        "compose.yaml",
        "requirements-dev.txt",
    ):
        assert ignored(path, rules), path
    for path in (
        "app.py",
        "serve.py",
        "core/runs/store.py",
        "core/datasets/npz.py",
        "pages/data.py",
        "ui/state.py",
        ".streamlit/config.toml",
        "requirements.txt",
    ):
        assert not ignored(path, rules), path


def test_the_copied_files_alone_import_everything_the_app_uses(tmp_path):
    """Every module of core and ui, and every import of app.py and the pages, loads from a tree
    holding only what the image copies (the checkout is not on sys.path there)."""
    build_app_tree(tmp_path)
    probe = r"""
import ast, importlib, importlib.util, json, pathlib, pkgutil, sys
root = pathlib.Path.cwd().resolve()
names = set()
for pkg in ("core", "ui"):
    names.add(pkg)
    names.update(m.name for m in pkgutil.walk_packages([pkg], pkg + ".") if not m.name.endswith("__main__"))
for script in ["app.py", *sorted(str(p) for p in pathlib.Path("pages").glob("*.py"))]:
    for node in ast.walk(ast.parse(pathlib.Path(script).read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
local = {}
for name in sorted(names):
    if name.split(".")[0] not in ("core", "ui"):
        # Installed packages only need to be found: some (streamlit-drawable-canvas) register
        # their component on import, which needs a running Streamlit server.
        assert importlib.util.find_spec(name.split(".")[0]) is not None, name
        continue
    module = importlib.import_module(name)
    local[name] = str(pathlib.Path(module.__file__).resolve().relative_to(root))
print(json.dumps(local))
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    local = json.loads(out.stdout.strip().splitlines()[-1])
    # Paths relative to the tree: nothing came from the checkout.
    assert "core.execution.queue" in local and "core.execution.worker" in local and "ui.state" in local
    assert all(not p.startswith("..") for p in local.values())


def test_streamlit_config_is_hardened_and_read_by_streamlit():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["headless"] is True
    assert cfg["server"]["enableXsrfProtection"] is True
    assert isinstance(cfg["server"]["maxUploadSize"], int) and 1 <= cfg["server"]["maxUploadSize"] <= 1000
    assert cfg["server"]["fileWatcherType"] == "none"
    assert cfg["browser"]["gatherUsageStats"] is False
    # Streamlit itself, started where the image starts it, reads the same values.
    probe = (
        "import json; from streamlit import config; config.get_config_options(force_reparse=True); "
        "print(json.dumps({k: config.get_option(k) for k in ('server.headless', 'server.maxUploadSize', "
        "'server.enableXsrfProtection', 'browser.gatherUsageStats', 'server.fileWatcherType')}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        "server.headless": True,
        "server.maxUploadSize": cfg["server"]["maxUploadSize"],
        "server.enableXsrfProtection": True,
        "browser.gatherUsageStats": False,
        "server.fileWatcherType": "none",
    }
