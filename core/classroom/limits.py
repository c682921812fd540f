"""A teacher's limits for a hosted instance: epochs, model size, upload formats, queue length.

Read from a TOML file named by ``DIGITLAB_LIMITS_FILE`` and from environment variables, which
win over the file key by key::

    DIGITLAB_MAX_EPOCHS=20           max_epochs = 20
    DIGITLAB_MAX_PARAMS=500000       max_params = 500000        (largest model, in parameters)
    DIGITLAB_UPLOAD_FORMATS=npz,png  upload_formats = ["npz", "png"]  (csv, idx, npz, png; "none")
    DIGITLAB_MAX_QUEUE=10            max_queue = 10             (runs waiting for a free slot)
    DIGITLAB_MAX_RUNNING_PER_OWNER=2 max_running_per_owner = 2  (one person's runs training at once)
    DIGITLAB_MAX_QUEUED_PER_OWNER=20 max_queued_per_owner = 20  (one person's runs waiting)
    DIGITLAB_UPLOAD_QUOTA_MB=500     upload_quota_mb = 500      (one person's stored uploads; default 1024)
    DIGITLAB_MAX_RUN_MINUTES=20      max_run_minutes = 20       (a run is stopped, its model so far kept, after it)
    DIGITLAB_INSTANCE_UPLOAD_MB=20480 instance_upload_mb = 20480 (everyone's uploads and versions together)

Unset means unlimited (the upload quota: 1 GB), except in a class: when sign-in is configured
(class code or OpenID Connect) and no limits file is named, :data:`CLASS_DEFAULTS` apply to the
keys no variable sets, so one student cannot fill the queue or the disk. A value that does not
parse is an error naming the variable or the file, never a silently dropped limit: an instance
whose limits are misconfigured refuses to train.
The checks live here so the job queue, the CLI and the pages enforce the same rules.
"""

from __future__ import annotations

import io
import os
import tomllib
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.datasets.detect import NAMED_FORMATS
from core.errors import DigitLabError
from core.training.config import RunConfig
from core.training.models import Hyperparams, count_params

if TYPE_CHECKING:
    from core.datasets import Dataset

#: Upload formats by the name the variable uses, with what they are: the loaders' own list.
UPLOAD_FORMATS: dict[str, str] = dict(
    sorted({"npz": "an .npz archive", **{name: text for name, _, text in NAMED_FORMATS}}.items())
)
ENV = {
    "max_epochs": "DIGITLAB_MAX_EPOCHS",
    "max_params": "DIGITLAB_MAX_PARAMS",
    "upload_formats": "DIGITLAB_UPLOAD_FORMATS",
    "max_queue": "DIGITLAB_MAX_QUEUE",
    "max_running_per_owner": "DIGITLAB_MAX_RUNNING_PER_OWNER",
    "max_queued_per_owner": "DIGITLAB_MAX_QUEUED_PER_OWNER",
    "upload_quota_mb": "DIGITLAB_UPLOAD_QUOTA_MB",
    "max_run_minutes": "DIGITLAB_MAX_RUN_MINUTES",
    "instance_upload_mb": "DIGITLAB_INSTANCE_UPLOAD_MB",
}
FILE_ENV = "DIGITLAB_LIMITS_FILE"
#: One person's stored uploads when no quota is set (compressed bytes on disk).
DEFAULT_UPLOAD_QUOTA_MB = 1024
MIB = 1 << 20
#: Per-person caps when sign-in is configured and no limits file is named (README "Limits").
CLASS_DEFAULTS: dict[str, int] = {
    "max_epochs": 50,
    "max_running_per_owner": 2,
    "max_queued_per_owner": 10,
    # a 120-million-parameter model took 4.6 GB; the largest preset has 435,402
    "max_params": 2_000_000,
    # no run holds a slot longer than this while the class shares two or three
    "max_run_minutes": 20,
    # every person's quota together must not fill the server's disk
    "instance_upload_mb": 20_480,
}


@dataclass(frozen=True)
class Limits:
    """What a hosted instance allows; None means no limit."""

    max_epochs: int | None = None
    max_params: int | None = None
    upload_formats: frozenset[str] | None = None
    max_queue: int | None = None
    max_running_per_owner: int | None = None
    max_queued_per_owner: int | None = None
    upload_quota_mb: int | None = None
    max_run_minutes: int | None = None
    instance_upload_mb: int | None = None
    #: True when some values are the class defaults (sign-in on, no limits file): pages say so.
    class_defaults: bool = field(default=False, compare=False)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str = "limits") -> Limits:
        """Parse ``{"max_epochs": 20, "upload_formats": "npz,png", ...}`` (TOML or strings)."""
        unknown = set(values) - set(ENV)
        if unknown:
            raise DigitLabError(f"unknown limit(s) {', '.join(sorted(unknown))}; known: {', '.join(ENV)}", source)
        return cls(
            max_epochs=_positive(values.get("max_epochs"), "max_epochs", source),
            max_params=_positive(values.get("max_params"), "max_params", source),
            upload_formats=_formats(values.get("upload_formats"), source),
            max_queue=_positive(values.get("max_queue"), "max_queue", source, allow_zero=True),
            max_running_per_owner=_positive(values.get("max_running_per_owner"), "max_running_per_owner", source),
            max_queued_per_owner=_positive(
                values.get("max_queued_per_owner"), "max_queued_per_owner", source, allow_zero=True
            ),
            upload_quota_mb=_positive(values.get("upload_quota_mb"), "upload_quota_mb", source),
            max_run_minutes=_positive(values.get("max_run_minutes"), "max_run_minutes", source),
            instance_upload_mb=_positive(values.get("instance_upload_mb"), "instance_upload_mb", source),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """The file named by DIGITLAB_LIMITS_FILE (if set), then each DIGITLAB_* variable over it."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        defaults = False
        if environ.get(FILE_ENV, "").strip():
            values.update(read_limits_file(Path(environ[FILE_ENV].strip())).as_dict())
        elif sign_in_configured(environ):
            values.update(CLASS_DEFAULTS)
            defaults = True
        for key, name in ENV.items():
            raw = environ.get(name, "").strip()
            if raw:
                values[key] = Limits.from_mapping({key: raw}, name).as_dict()[key]
        defaults = defaults and any(
            values.get(k) == v and not environ.get(ENV[k], "").strip() for k, v in CLASS_DEFAULTS.items()
        )
        return replace(cls.from_mapping(values), class_defaults=defaults)

    def as_dict(self) -> dict[str, Any]:
        """The limits that are set, as TOML-ready values."""
        out: dict[str, Any] = {
            "max_epochs": self.max_epochs,
            "max_params": self.max_params,
            "upload_formats": sorted(self.upload_formats) if self.upload_formats is not None else None,
            "max_queue": self.max_queue,
            "max_running_per_owner": self.max_running_per_owner,
            "max_queued_per_owner": self.max_queued_per_owner,
            "upload_quota_mb": self.upload_quota_mb,
            "max_run_minutes": self.max_run_minutes,
            "instance_upload_mb": self.instance_upload_mb,
        }
        return {k: v for k, v in out.items() if v is not None}

    @property
    def upload_quota_bytes(self) -> int:
        """One person's stored uploads at most, in bytes (1 GB unless set)."""
        return (self.upload_quota_mb if self.upload_quota_mb is not None else DEFAULT_UPLOAD_QUOTA_MB) * MIB

    @property
    def instance_upload_bytes(self) -> int | None:
        """Everyone's stored uploads and corrected versions together at most, in bytes (None: no limit)."""
        return self.instance_upload_mb * MIB if self.instance_upload_mb is not None else None

    def fair_share(self, slots: int, owners_with_work: int) -> int | None:
        """How many runs one person may have training at once: the per-owner cap, and while two or
        more people have runs running or waiting, no more than the slots shared among them (at least
        one each). None: no cap (one person alone, no per-owner limit)."""
        share = max(1, slots // owners_with_work) if owners_with_work > 1 else None
        caps = [c for c in (self.max_running_per_owner, share) if c is not None]
        return min(caps) if caps else None

    def over_time(self, seconds: float) -> bool:
        """Whether a run that has trained ``seconds`` is past the run time budget."""
        return self.max_run_minutes is not None and seconds > self.max_run_minutes * 60

    @property
    def active(self) -> bool:
        """True when any limit is set."""
        return bool(self.as_dict())

    # ---- checks ---------------------------------------------------------------------------------

    def check_config(self, config: RunConfig) -> None:
        """Refuse a run with more epochs or a bigger model than allowed."""
        self.check_hyperparams(config.hyperparams)

    def check_hyperparams(self, hp: Hyperparams) -> None:
        """Refuse hyperparameters over the epoch or the model-size limit."""
        if self.max_epochs is not None and hp.epochs > self.max_epochs:
            raise DigitLabError(f"{hp.epochs} epochs asked; this instance trains at most {self.max_epochs}")
        if self.max_params is not None:
            params = count_params(hp)
            if params > self.max_params:
                raise DigitLabError(
                    f"the model has {params:,} parameters; this instance allows at most "
                    f"{self.max_params:,} (fewer or smaller layers)"
                )

    def check_queue(self, waiting: int, free_slots: int, adding: int = 1) -> None:
        """Refuse ``adding`` more runs when more than ``max_queue`` runs would then wait.

        ``waiting`` runs are queued now and ``free_slots`` slots are free: new runs take free slots
        first, so with a free slot a run starts at once and is accepted even with ``max_queue = 0``.
        """
        if self.max_queue is None:
            return
        would_wait = max(0, waiting + adding - max(free_slots, 0))
        if would_wait <= self.max_queue:
            return
        if adding == 1:
            raise DigitLabError(
                f"the queue is full ({waiting} run{'s' if waiting != 1 else ''} waiting, "
                f"at most {self.max_queue}): wait for one to finish, or stop one of yours"
            )
        raise DigitLabError(
            f"{adding} more runs would leave {would_wait} waiting in the queue; this instance "
            f"allows at most {self.max_queue}"
        )

    def check_owner_queue(self, waiting: int, adding: int = 1) -> None:
        """Refuse ``adding`` more runs of one owner who has ``waiting`` runs queued already, when more
        than ``max_queued_per_owner`` would then wait (their running runs do not count)."""
        if self.max_queued_per_owner is None or waiting + adding <= self.max_queued_per_owner:
            return
        raise DigitLabError(
            f"you have {waiting} run{'s' if waiting != 1 else ''} waiting and this instance allows "
            f"at most {self.max_queued_per_owner} per person: wait for some to start, or stop some"
        )

    def check_upload(self, files: Mapping[str, bytes]) -> None:
        """Refuse an upload whose dataset format is not allowed (an unknown format is the loader's
        to explain, with its own message)."""
        if self.upload_formats is None:
            return
        found = upload_format(files)
        if found is not None and found not in self.upload_formats:
            raise DigitLabError(
                f"uploads of {UPLOAD_FORMATS[found]} are turned off here; accepted: {formats_text(self.upload_formats)}"
            )

    # ---- words for the pages --------------------------------------------------------------------

    def notes(self) -> list[str]:
        """One sentence per limit that is set, for a note on the pages."""
        words = (
            (self.max_epochs, lambda v: f"at most {v} epochs per run"),
            (self.max_params, lambda v: f"models of at most {v:,} parameters"),
            (self.max_queue, lambda v: f"at most {v} runs waiting in the queue"),
            (self.max_running_per_owner, lambda v: f"at most {v} of one person's runs training at once"),
            (self.max_queued_per_owner, lambda v: f"at most {v} of one person's runs waiting"),
            (self.upload_formats, lambda v: f"uploads: {formats_text(v)}"),
            (self.upload_quota_mb, lambda v: f"at most {v:,} MB of uploads per person"),
            (
                self.max_run_minutes,
                lambda v: f"a run trains at most {v} minutes (then it stops, its model so far kept)",
            ),
            (self.instance_upload_mb, lambda v: f"at most {v:,} MB of uploads and corrected versions on the whole lab"),
        )
        return [say(value) for value, say in words if value is not None]

    def summary(self) -> str:
        """The sentence the Data, Train and Teacher pages show: every limit, and where it comes from."""
        notes = self.notes()
        if not notes:
            return "No limits are set on this instance."
        origin = " (the defaults for a class: sign-in is on and no limits file is named)" if self.class_defaults else ""
        return f"This instance's limits{origin}: {'; '.join(notes)}."


def check_selection(sizes: Iterable[int], max_total_bytes: int) -> None:
    """Refuse files selected in one uploader whose sizes together pass ``max_total_bytes`` (the
    server's per-file limit, server.maxUploadSize: several files may not add up past what one may),
    before any of them is read."""
    sizes = list(sizes)
    total = sum(sizes)
    if total > max_total_bytes:
        raise DigitLabError(
            f"the {len(sizes)} files selected take {total / MIB:,.1f} MB together; one upload takes at "
            f"most {max_total_bytes / MIB:,.0f} MB in all: they were removed, select fewer or smaller "
            "files (a zip of PNGs is smaller)"
        )


def formats_text(formats: Iterable[str]) -> str:
    """``an .npz archive, a train/test tree of PNGs`` (or ``none``)."""
    names = [UPLOAD_FORMATS[f] for f in UPLOAD_FORMATS if f in set(formats)]
    return ", ".join(names) if names else "none"


def read_limits_file(path: Path) -> Limits:
    """Limits from a TOML file: top-level keys, or a ``[limits]`` table."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise DigitLabError(f"cannot read the limits file: {err.strerror}", path) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise DigitLabError(f"not valid TOML: {err}", path) from None
    if isinstance(data.get("limits"), dict) and len(data) == 1:
        data = data["limits"]
    return Limits.from_mapping(data, str(path))


def sign_in_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether people sign in: a class code is set, or Streamlit's secrets hold an ``[auth]`` table
    (OpenID Connect), read from ``STREAMLIT_SECRETS_FILES`` or the usual ``.streamlit/secrets.toml``."""
    environ = os.environ if environ is None else environ
    if environ.get("DIGITLAB_CLASS_CODE", "").strip():
        return True
    named: list[str | Path] = [p.strip() for p in environ.get("STREAMLIT_SECRETS_FILES", "").split(",") if p.strip()]
    for path in named or [Path.home() / ".streamlit" / "secrets.toml", Path(".streamlit") / "secrets.toml"]:
        try:
            if isinstance(tomllib.loads(Path(path).read_text(encoding="utf-8")).get("auth"), dict):
                return True
        except (OSError, ValueError):
            continue
    return False


def limits() -> Limits:
    """The instance's limits (re-read each call, like ``core.settings.settings``)."""
    return Limits.from_env()


def load_upload(files: Mapping[str, bytes], name: str, allowed: Limits | None = None) -> Dataset:
    """``core.datasets.load_files`` for a browser upload, after refusing a format the instance does
    not accept (the Data page's only way in)."""
    from core.datasets import load_files

    (allowed if allowed is not None else limits()).check_upload(files)
    return load_files(files, name)


def upload_format(files: Mapping[str, bytes]) -> str | None:
    """The dataset format of an upload (one of UPLOAD_FORMATS), told from file names as the loaders
    tell it, looking into a zip's member list; None when it is none of them."""
    from core.datasets.archive import check_member_count, is_zip
    from core.datasets.sources import dataset_keys

    keys = dataset_keys(files)
    if len(keys) == 1 and not keys[0].lower().endswith(".npz") and is_zip(files[keys[0]]):
        data = files[keys[0]]
        check_member_count(data, keys[0])
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                keys = dataset_keys({name: b"" for name in archive.namelist() if not name.endswith("/")})
        except (zipfile.BadZipFile, OSError, ValueError):
            return None  # the loader explains a damaged zip
    if keys and all(key.lower().endswith(".npz") for key in keys):
        return "npz"
    for name, module, _ in NAMED_FORMATS:
        if module.claims(keys):
            return name
    return None


def _positive(value: Any, name: str, source: str, allow_zero: bool = False) -> int | None:
    if value is None:
        return None
    text = str(value).strip()
    try:
        if isinstance(value, bool) or isinstance(value, float):
            raise ValueError(value)
        number = int(text.replace("_", ""))
    except ValueError:
        raise DigitLabError(f"{name} must be a whole number, got {text[:40]!r}", source) from None
    if number < (0 if allow_zero else 1):
        raise DigitLabError(f"{name} must be {'0 or more' if allow_zero else 'at least 1'}, got {number}", source)
    return number


def _formats(value: Any, source: str) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() == "none":
        return frozenset()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise DigitLabError(f"upload_formats must be a list or a comma list such as 'npz,png', got {value!r}", source)
    formats = {str(item).strip().lower().lstrip(".") for item in items if str(item).strip()}
    unknown = formats - set(UPLOAD_FORMATS)
    if unknown:
        raise DigitLabError(
            f"unknown upload format(s) {', '.join(sorted(unknown))}; known: {', '.join(UPLOAD_FORMATS)}", source
        )
    return frozenset(formats)
