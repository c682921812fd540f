"""Settings read from the environment, so one container image serves many set-ups."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


def _hours_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        hours = float(raw) if raw else default
    except ValueError:
        return default
    return hours if 0 < hours < 24 * 366 else default


@dataclass(frozen=True)
class Settings:
    """Where things live and how much the instance may do."""

    run_root: Path
    data_dir: Path
    cache_dir: Path
    max_jobs: int
    max_upload_mb: int
    default_size: str
    #: Ray: a cluster to join ("" = start a local one), and the local one's CPUs and object store.
    ray_address: str = ""
    ray_cpus: int = 1
    ray_object_store_mb: int = 256
    ray_ship_code: bool = False
    #: CPUs each training run (and TensorFlow's thread pools in it) gets.
    cpus_per_run: int = 1
    #: The class code students enter with a display name (DIGITLAB_CLASS_CODE); None: no class-code mode.
    class_code: str | None = None
    #: Who is a teacher (DIGITLAB_TEACHERS): e-mail addresses or class-code names, lower case.
    teachers: frozenset[str] = frozenset()
    #: The code a class-code teacher enters besides the class code (DIGITLAB_TEACHER_CODE); None:
    #: no teacher can sign in with the class code (OpenID Connect teachers are unaffected).
    teacher_code: str | None = None
    #: How long a class-code sign-in lasts in the browser (DIGITLAB_SIGNIN_HOURS).
    signin_hours: float = 12.0

    @classmethod
    def from_env(cls) -> Settings:
        """Read ``DIGITLAB_*`` variables, falling back to defaults for a local checkout."""
        cache_default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "digitlab"
        return cls(
            run_root=Path(os.environ.get("DIGITLAB_RUN_ROOT", "runs")),
            data_dir=Path(os.environ.get("DIGITLAB_DATA_DIR", "data")),
            cache_dir=Path(os.environ.get("DIGITLAB_CACHE_DIR", cache_default)),
            # 0: as many as the Ray cluster's CPUs hold (core.execution.queue.JobQueue.max_jobs).
            max_jobs=max(0, _int_env("DIGITLAB_MAX_JOBS", 0)),
            max_upload_mb=max(1, _int_env("DIGITLAB_MAX_UPLOAD_MB", 200)),
            # The dashboard opens on this size of the synthetic default (tests use "tiny").
            default_size=os.environ.get("DIGITLAB_DEFAULT_SIZE", "full"),
            ray_address=os.environ.get("DIGITLAB_RAY_ADDRESS", "").strip(),
            ray_cpus=max(1, _int_env("DIGITLAB_RAY_CPUS", len(os.sched_getaffinity(0)))),
            ray_object_store_mb=max(78, _int_env("DIGITLAB_RAY_OBJECT_STORE_MB", 256)),
            ray_ship_code=os.environ.get("DIGITLAB_RAY_SHIP_CODE", "").strip() in ("1", "true", "yes"),
            cpus_per_run=max(1, _int_env("DIGITLAB_CPUS_PER_RUN", 1)),
            class_code=os.environ.get("DIGITLAB_CLASS_CODE", "").strip() or None,
            teachers=frozenset(
                t.strip().casefold() for t in os.environ.get("DIGITLAB_TEACHERS", "").split(",") if t.strip()
            ),
            teacher_code=os.environ.get("DIGITLAB_TEACHER_CODE", "").strip() or None,
            signin_hours=_hours_env("DIGITLAB_SIGNIN_HOURS", 12.0),
        )


def settings() -> Settings:
    """Current settings (re-read each call: cheap, and tests can change the environment)."""
    return Settings.from_env()
