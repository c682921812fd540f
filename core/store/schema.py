"""The store's tables (SQLAlchemy Core). Alembic's revisions under core/store/migrations bring an
older database to this shape; a new one is created from it directly."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData()

#: Every piece of background work, training runs included: who asked, its state, who dispatches it
#: (a lease that a living dispatcher renews), what it reported, and, for tasks, what it needs and
#: what it returned. Runs and tasks draw on separate slots (``pool``), under one fair-share rule.
jobs = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("pool", String(16), nullable=False),
    Column("owner", Text),
    Column("state", String(16), nullable=False),
    Column("created", Float, nullable=False),
    Column("started", Float),
    Column("finished", Float),
    Column("error", Text),
    Column("progress", Text),
    Column("stop_requested", Boolean, nullable=False, server_default=false()),
    Column("dispatcher", Text),
    Column("lease_until", Float),
    Column("cap", Integer),
    Column("resources", Text),
    Column("payload", LargeBinary),
    Column("result", LargeBinary),
)
Index("jobs_pool_state", jobs.c.pool, jobs.c.state, jobs.c.created)

#: What a training run is (its job row says where it is): config, labels for tables, final metrics.
runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("config", Text, nullable=False),
    Column("dataset", Text, nullable=False),
    Column("pipeline_label", Text, nullable=False),
    Column("preset", Text, nullable=False),
    Column("metrics", Text),
    Column("grid", Text),
    Column("published", Boolean, nullable=False, server_default=false()),
    #: Who published the run (an identity key), and who asked a running or queued run to stop.
    Column("published_by", Text),
    Column("stopped_by", Text),
)
Index("runs_grid", runs.c.grid)

#: One row per epoch a run reported.
epochs = Table(
    "epochs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("epoch", Integer, primary_key=True),
    Column("loss", Float),
    Column("accuracy", Float),
    Column("val_loss", Float),
    Column("val_accuracy", Float),
    Column("seconds", Float),
)

#: The lab's secrets (the sign-in key, ...): made once, shared by every replica.
secrets = Table(
    "secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

#: What each person was working on (core.classroom.workspace): their session values as JSON, and
#: which replica process wrote them last (another one: the lab restarted meanwhile).
workspaces = Table(
    "workspaces",
    metadata,
    Column("key", Text, primary_key=True),
    Column("process", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("updated", Float, nullable=False),
)

#: Class challenges (core.classroom.challenges); their hidden sets stay files under the run root.
challenges = Table(
    "challenges",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("dataset", Text, nullable=False),
    Column("public_share", Float, nullable=False),
    Column("per_day", Integer, nullable=False),
    Column("deadline", Float),
    Column("show_private", Boolean, nullable=False),
    Column("closed", Boolean, nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("images", Integer, nullable=False),
    Column("public_images", Integer, nullable=False),
    Column("created", Float, nullable=False),
    Column("created_by", Text),
)

#: Runs submitted to a challenge, what they were, and their scores.
submissions = Table(
    "submissions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("challenge_id", String(32), nullable=False),
    Column("owner", Text, nullable=False),
    Column("run_id", String(32), nullable=False),
    Column("preset", Text),
    Column("pipeline", Text),
    Column("validation", Text),
    Column("created", Float, nullable=False),
    Column("status", String(16), nullable=False),
    Column("public_score", Float),
    Column("private_score", Float),
    Column("all_score", Float),
    Column("error", Text),
    Column("scored", Float),
)
Index("submissions_by_owner", submissions.c.challenge_id, submissions.c.owner, submissions.c.created)

#: Browser uploads (core.datasets.specs), by content hash (the file's name under the cache's
#: uploads folder): the name it was first uploaded as.
uploads = Table(
    "uploads",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("name", Text),
)

#: Who uploaded what: the same content uploaded by two people has two owners.
upload_owners = Table(
    "upload_owners",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("owner", Text, primary_key=True),
)

#: A person's verdicts on training images (core.labels.search.LabelMarks); owner "" is the single
#: local user's and the CLI's set.
label_marks = Table(
    "label_marks",
    metadata,
    Column("owner", Text, primary_key=True),
    Column("dataset", Text, primary_key=True),
    Column("image", Integer, primary_key=True),
    Column("mark", String(16), nullable=False),
    Column("updated", Float, nullable=False),
)

#: Label corrections a person accepted (core.labels.corrections); owner "" as for marks.
label_corrections = Table(
    "label_corrections",
    metadata,
    Column("owner", Text, primary_key=True),
    Column("dataset", Text, primary_key=True),
    Column("image", Integer, primary_key=True),
    Column("given", Integer, nullable=False),
    Column("label", Integer, nullable=False),
    Column("by", Text),
    Column("search", Text),
    Column("accepted", Float, nullable=False),
)

#: Corrected dataset versions (files under the cache's versions folder), by content hash, with
#: their provenance as JSON (what they were made from, by whom, which corrections).
dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("provenance", Text, nullable=False),
)

#: Class-code names as typed (core.classroom.access), by case-folded identity key.
class_names = Table(
    "class_names",
    metadata,
    Column("key", Text, primary_key=True),
    Column("name", Text, nullable=False),
)

#: Ended class-code sign-ins (core.classroom.tokens): ``token:<id>``, one sign-in ended by its
#: "Sign out" (every copy of its cookie refused), or ``person:<identity key>``, every sign-in of that
#: person made before ``not_before`` (a teacher signed them out). ``expires``: when the row may go.
signin_revocations = Table(
    "signin_revocations",
    metadata,
    Column("key", Text, primary_key=True),
    Column("not_before", Float, nullable=False),
    Column("expires", Float, nullable=False),
)

#: A failed or stopped run queued again (``lab.runs.requeue``, core.door.runs): once, as ``new_run``.
requeues = Table(
    "requeues",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("new_run", String(32), nullable=False),
    Column("by", Text),
    Column("at", Float, nullable=False),
)

#: Who made which corrected version (core.labels.corrections): a version counts in its owners'
#: upload quota, is theirs to delete and theirs (and staff's) to load; the same content made by two
#: people has two owners.
version_owners = Table(
    "version_owners",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("owner", Text, primary_key=True),
)

#: Wrong class and teacher codes (core.classroom.signin), per client and per typed name: shared by
#: every replica, so a guesser is slowed whichever one answers. ``key`` is "client:<address>" or
#: "name:<case-folded name>"; never the code typed.
signin_attempts = Table(
    "signin_attempts",
    metadata,
    Column("key", Text, primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", Float, nullable=False),
    Column("blocked_until", Float, nullable=False),
    Column("strikes", Integer, nullable=False),
)

#: The teacher's class list (the Teacher page): when it holds any name, class-code students sign
#: in only under a listed name. ``key`` is the case-folded name, ``name`` as the teacher typed it.
class_list = Table(
    "class_list",
    metadata,
    Column("key", Text, primary_key=True),
    Column("name", Text, nullable=False),
)
