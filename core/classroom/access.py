"""Who is using the lab and what they may do: identities, the three access modes, and the rules.

An :class:`Identity` is the caller of every core entry point that touches someone's work. Its
``key`` is the stable string stored as the owner of runs, grids, uploads, label searches and marks.

Modes (:func:`access_mode`):

* ``local``: nothing configured. One local user (an administrator) sees everything, as on a
  student's laptop. Listening beyond loopback in this mode is flagged by :func:`open_to_network`.
* ``oidc``: OpenID Connect is configured (Streamlit's ``[auth]`` secrets). Everyone signs in;
  the key is the e-mail address the provider vouches for (its subject when it sends none).
* ``class-code``: ``DIGITLAB_CLASS_CODE`` is set. A student types a display name and the code;
  names are NOT verified, whoever knows the code can take any name except a teacher's: the
  names in ``DIGITLAB_TEACHERS`` also need ``DIGITLAB_TEACHER_CODE`` (without it such a name is
  refused, and the attempt logged), so knowing the class code never gives teacher rights.

Rules: a student sees and acts on their own work; a run a teacher published can be viewed by
everyone, read-only; teachers and administrators see and act on everything. Anything a caller
may not see is answered exactly like something missing, so ids leak nothing.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update

from core.errors import DigitLabError
from core.settings import Settings, settings
from core.store import database
from core.store.schema import class_names

LOCAL, OIDC, CLASS_CODE = "local", "oidc", "class-code"
STUDENT, TEACHER, ADMIN = "student", "teacher", "admin"
#: How the sidebar states each mode.
MODE_TEXT = {
    LOCAL: "Single user: everything on this instance is yours.",
    OIDC: "Signed in through your school's identity provider.",
    CLASS_CODE: "Class code: names are not verified.",
}
OPEN_WARNING = (
    "This lab listens beyond this computer with no sign-in configured: anyone who can reach it "
    "can read and delete everything. Configure OpenID Connect or DIGITLAB_CLASS_CODE."
)
MAX_NAME = 40
#: What the sign-in form says about names and teachers (the behaviour chosen for teacher names).
TEACHER_NAME_RULE = (
    "Names are not verified in class-code mode: use the name your teacher expects. A teacher's "
    "name is refused without the teacher code, so the class code alone never gives teacher rights."
)
log = logging.getLogger(__name__)
_NAME = re.compile(r"^[\w .'-]+$")


@dataclass(frozen=True)
class Identity:
    """A caller: ``key`` (stored as owner), a display ``name`` and a ``role``."""

    key: str
    name: str
    role: str = STUDENT

    @property
    def staff(self) -> bool:
        """Teachers and administrators see and act on everyone's work."""
        return self.role in (TEACHER, ADMIN)

    @property
    def teacher(self) -> bool:
        """Whether the Teacher page is for this identity."""
        return self.role == TEACHER


#: The one user of a local lab, and the server-side CLI: everything is theirs.
LOCAL_USER = Identity("local", "local user", ADMIN)
ADMINISTRATOR = Identity("admin", "administrator", ADMIN)


def access_mode(oidc_configured: bool, config: Settings | None = None) -> str:
    """The instance's mode: OpenID Connect wins over a class code; with neither, local."""
    if oidc_configured:
        return OIDC
    return CLASS_CODE if (config or settings()).class_code else LOCAL


def open_to_network(mode: str, address: str | None) -> bool:
    """Whether a local-mode server listens beyond loopback (Streamlit's default listens on all
    interfaces), so anyone who reaches it acts as the local user."""
    if mode != LOCAL:
        return False
    host = (address or "").strip().strip("[]")
    if host in ("localhost",):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # empty (all interfaces) or a host name
        return True


def _role(handle: str, config: Settings) -> str:
    return TEACHER if handle.casefold() in config.teachers else STUDENT


def oidc_identity(claims: Mapping[str, Any], config: Settings | None = None) -> Identity:
    """The identity of a signed-in OpenID Connect user from their ID token's claims."""
    config = config or settings()
    email = str(claims.get("email") or "").strip()
    subject = str(claims.get("sub") or "").strip()
    handle = email.casefold() or subject
    if not handle:
        raise DigitLabError("the identity provider sent neither an e-mail address nor a subject")
    name = str(claims.get("name") or email or subject)
    return Identity(f"oidc:{handle}", name, _role(handle, config))


def _codes_match(given: str, expected: str) -> bool:
    """Constant-time comparison of a typed code with the configured one."""
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def _teacher_name_refused(name: str, config: Settings) -> str:
    if not config.teacher_code:
        return (
            f"{name} is a teacher's name, and a teacher signs in with a teacher code, which this lab does not "
            "set (DIGITLAB_TEACHER_CODE)"
        )
    return f"{name} is a teacher's name: a teacher also enters the teacher code"


def class_code_identity(
    name: str, code: str, config: Settings | None = None, teacher_code: str = "", client: str | None = None
) -> Identity:
    """The identity of someone who typed ``name``, ``code`` and perhaps a ``teacher_code``
    (DigitLabError if any is wrong).

    Names are compared case-insensitively, so "Amal" and "amal" are one student. A name listed in
    ``DIGITLAB_TEACHERS`` is the teacher's only with the right teacher code: without it the name
    is refused (a student never takes a teacher's name, rights or work) and the attempt logged.
    """
    from core.classroom import attempts

    config = config or settings()
    if not config.class_code:
        raise DigitLabError("this lab has no class code")
    attempts.check(client, name)  # too many wrong codes lately: refused, right code or not
    if not _codes_match(code, config.class_code):
        attempts.failed(client, name, "class code")
        raise DigitLabError("wrong class code")
    name = " ".join(name.split())
    if name and len(name) <= MAX_NAME:  # a look-alike is told so, whatever else is wrong with it
        _look_alike_refused(name, f"code:{name.casefold()}", config)
    if not name or len(name) > MAX_NAME or not _NAME.fullmatch(name):
        raise DigitLabError(f"a display name is 1 to {MAX_NAME} letters, digits, spaces, dots, hyphens or apostrophes")
    is_teacher_name = name.casefold() in config.teachers
    if teacher_code.strip() or is_teacher_name:
        if not (config.teacher_code and _codes_match(teacher_code, config.teacher_code)):
            log.warning(
                "class-code sign-in refused: %r with %s teacher code", name, "a wrong" if teacher_code.strip() else "no"
            )
            if teacher_code.strip():
                attempts.failed(client, name, "teacher code")
                raise DigitLabError("wrong teacher code")
            raise DigitLabError(_teacher_name_refused(name, config))
        if not is_teacher_name:
            raise DigitLabError(f"{name} is not one of this lab's teachers (DIGITLAB_TEACHERS)")
    who = class_code_member(name, is_teacher_name, config)
    attempts.succeeded(name)
    return who


# ---- names that look alike ------------------------------------------------------------------------

#: Letters of other scripts (and digits) drawn like a Latin letter, mapped to it: a small table of
#: the common Cyrillic and Greek look-alikes of Unicode's confusables (UTS #39), upper and lower case.
_LOOK_ALIKES = str.maketrans(
    {
        # Cyrillic
        "а": "a",
        "в": "b",
        "е": "e",
        "ё": "ë",
        "о": "o",
        "р": "p",
        "с": "c",
        "у": "y",
        "х": "x",
        "і": "i",
        "ї": "ï",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "һ": "h",
        "ӏ": "l",
        "ԛ": "q",
        "ԝ": "w",
        "ь": "b",
        "ѵ": "v",
        "ү": "y",
        "к": "k",
        "м": "m",
        "н": "h",
        "т": "t",
        "п": "n",
        "г": "r",
        "ɡ": "g",
        "ɑ": "a",
        "А": "A",
        "В": "B",
        "Е": "E",
        "Ё": "Ë",
        "К": "K",
        "М": "M",
        "Н": "H",
        "О": "O",
        "Р": "P",
        "С": "C",
        "Т": "T",
        "Х": "X",
        "У": "Y",
        "Ү": "Y",
        "Ѕ": "S",
        "І": "l",
        "Ї": "Ï",
        "Ј": "J",
        "Ԛ": "Q",
        "Ԝ": "W",
        "Ӏ": "l",
        "Ь": "b",
        "З": "3",
        "Ѵ": "V",
        # Greek
        "α": "a",
        "ο": "o",
        "ν": "v",
        "ρ": "p",
        "ι": "i",
        "κ": "k",
        "υ": "u",
        "χ": "x",
        "ϲ": "c",
        "γ": "y",
        "ε": "e",
        "ω": "w",
        "η": "n",
        "τ": "t",
        "ϳ": "j",
        "Α": "A",
        "Β": "B",
        "Ε": "E",
        "Ζ": "Z",
        "Η": "H",
        "Ι": "l",
        "Κ": "K",
        "Μ": "M",
        "Ν": "N",
        "Ο": "O",
        "Ρ": "P",
        "Τ": "T",
        "Υ": "Y",
        "Χ": "X",
        "Ϲ": "C",
        # Latin and digits drawn alike
        "I": "l",
        "ı": "i",
        "ℓ": "l",
        "0": "o",
        "1": "l",
        "|": "l",
        "ſ": "f",
        "ǀ": "l",
    }
)
#: Letter pairs drawn like one letter (UTS #39 maps them so too).
_PAIRS = (("rn", "m"), ("vv", "w"))


def _skeleton(text: str) -> str:
    """One way of drawing ``text``: NFKC, invisible (format) characters and stray combining marks
    removed, look-alikes mapped to the Latin letter they are drawn like, spaces removed."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Mn", "Me"))  # after NFKC: stray marks
    text = "".join(text.translate(_LOOK_ALIKES).split())  # a space or none (a zero-width one) reads alike
    for pair, one in _PAIRS:
        text = text.replace(pair, one)
    return text


def name_skeletons(name: str) -> frozenset[str]:
    """How ``name`` can look, case aside: two names any of whose skeletons are equal are drawn
    alike (``Ms Teacher``, ``ms teacher``, ``Ms Tеacher`` with a Cyrillic е, ``Ms\u200bTeacher``)."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return frozenset(_skeleton(t).casefold().translate(_LOOK_ALIKES) for t in (name, folded))


def confusable(one: str, other: str) -> bool:
    """Whether the names ``one`` and ``other`` look alike (Unicode confusables, case, spaces)."""
    return bool(name_skeletons(one) & name_skeletons(other))


def _look_alike_refused(name: str, key: str, config: Settings) -> None:
    """DigitLabError when ``name`` (of identity ``key``) looks like a teacher's or another class
    member's name without being it: a student never passes for the teacher or a classmate."""
    mine = name_skeletons(name)
    teacher_names = {t for t in config.teachers} | {
        n for k, n in known_names().items() if k.removeprefix("code:") in config.teachers
    }
    if name.casefold() not in config.teachers and any(mine & name_skeletons(t) for t in teacher_names):
        log.warning("class-code sign-in refused: %r looks like a teacher's name", name)
        raise DigitLabError(
            f"{name} looks like a teacher's name (a letter from another script, or an invisible "
            "character): choose a name that reads differently"
        )
    for other_key, other in known_names().items():
        if other_key != key and other_key.removeprefix("code:") not in config.teachers and mine & name_skeletons(other):
            raise DigitLabError(
                f"{name} looks like the name of another student, {other}: choose a name that reads differently"
            )


def class_code_member(name: str, teacher: bool, config: Settings | None = None) -> Identity:
    """The class-code identity of ``name`` once proven (by the form or a signed sign-in token);
    ``teacher`` says the teacher code was given. A teacher's name without it is refused, so a
    sign-in made before the name became a teacher's does not turn into the teacher."""
    config = config or settings()
    is_teacher_name = name.casefold() in config.teachers
    if is_teacher_name and not teacher:
        raise DigitLabError(_teacher_name_refused(name, config))
    if not is_teacher_name and not listed(name):
        raise DigitLabError(
            f"{name} is not on this class's list: sign in with your name as your teacher listed "
            "it, or ask your teacher to add it"
        )
    return Identity(f"code:{name.casefold()}", name, TEACHER if is_teacher_name else STUDENT)


# ---- the rules --------------------------------------------------------------------------------


def can_see(who: Identity, owner: str | None, published: bool = False) -> bool:
    """Whether ``who`` may view work owned by ``owner`` (runs before accounts have none: staff only)."""
    return who.staff or published or (owner is not None and owner == who.key)


def can_act(who: Identity, owner: str | None) -> bool:
    """Whether ``who`` may stop, delete or download work owned by ``owner``."""
    return who.staff or (owner is not None and owner == who.key)


def is_theirs(who: Identity, owner: str | None) -> bool:
    """Whether ``owner`` is ``who`` (work they made themselves; no one owns a CLI run)."""
    return owner is not None and owner == who.key


def may_act_for(who: Identity, owner: str) -> bool:
    """Whether ``who`` may act in ``owner``'s name (submit for them): themselves, or staff."""
    return owner == who.key or who.staff


def may_submit_run(who: Identity, run_owner: str | None, for_owner: str) -> bool:
    """Whether a run owned by ``run_owner`` may be submitted in ``for_owner``'s name: it must be
    theirs (a CLI run has no owner: staff may submit it)."""
    return run_owner == for_owner or (run_owner is None and who.staff)


def sees_private_board(who: Identity, ended: bool) -> bool:
    """The private board of a challenge: staff always, students once it has ended."""
    return who.staff or ended


def sees_own_private_score(who: Identity, ended: bool, show_private: bool) -> bool:
    """A submitter's private score: staff always, students after the end or when the teacher allows."""
    return sees_private_board(who, ended) or show_private


def sees_whole_score(who: Identity, ended: bool) -> bool:
    """The score on the whole hidden set (which would tell the private part): staff, or after the end."""
    return sees_private_board(who, ended)


def can_sign_out(who: Identity, key: str) -> bool:
    """Teachers (and administrators) end a class-code member's sign-ins (a lost laptop); not their own
    from here: their own "Sign out" does that."""
    return who.staff and key.startswith("code:") and key != who.key


def can_publish(who: Identity) -> bool:
    """Only teachers (and administrators) publish a run to the class."""
    return who.staff


def may_load(who: Identity, owners: frozenset[str] | None) -> bool:
    """Whether ``who`` may load a dataset whose owners are ``owners`` (None: a ready dataset,
    everyone's): an upload or a corrected version is its owners' and staff's."""
    return owners is None or who.staff or who.key in owners


#: What publishing a run grants the class, said where a teacher publishes and where a student looks.
PUBLISH_GRANTS = (
    "Publishing shares a run's figures, curves and model (to look at and to draw on in Try it) "
    "with the class; a run trained on a student's own upload keeps that upload's images, "
    "class names and labels private to its owner."
)


def may_see_run_data(who: Identity, run_owner: str | None, dataset_owners: frozenset[str] | None) -> bool:
    """Whether ``who`` may see the data a run was trained on (its test images, class names,
    labels): publishing a run does not publish its owner's upload or corrected version, so only
    those who may load that dataset themselves do (its owners, staff); ready datasets are everyone's."""
    return may_load(who, dataset_owners)


def private_data_note(run_owner: str | None) -> str:
    """What a student sees instead of someone else's private data behind a published run."""
    return (
        f"trained on {owner_label(run_owner)}'s own upload: its images stay private (publishing shares the "
        "run's figures, curves and model, not its owner's data)"
    )


# ---- the class list ---------------------------------------------------------------------------


def class_list() -> dict[str, str]:
    """The teacher's class list: {case-folded name: name as listed}; empty when none is set
    (then any name may sign in with the class code)."""
    from core.store.schema import class_list as list_table

    try:
        with database().read() as conn:
            return {row.key: row.name for row in conn.execute(select(list_table.c.key, list_table.c.name))}
    except DigitLabError:
        return {}


def listed(name: str) -> bool:
    """Whether ``name`` may sign in with the class code: it is on the class list, or none is set."""
    names = class_list()
    return not names or " ".join(name.split()).casefold() in names


def parse_class_list(text: str) -> list[str]:
    """Names one per line (blank lines skipped, spaces collapsed, duplicates ignored whatever their
    case); DigitLabError naming the first name that is not a valid display name."""
    names: dict[str, str] = {}
    for number, line in enumerate(str(text).splitlines(), 1):
        name = " ".join(line.split())
        if not name:
            continue
        if len(name) > MAX_NAME or not _NAME.fullmatch(name):
            raise DigitLabError(
                f"line {number}: a name is 1 to {MAX_NAME} letters, digits, spaces, dots, hyphens or apostrophes"
            )
        names.setdefault(name.casefold(), name)
    return list(names.values())


def set_class_list(names: list[str]) -> None:
    """Replace the class list with ``names`` (empty: no list, any name signs in)."""
    from sqlalchemy import delete

    from core.store.schema import class_list as list_table

    with database().write(lock="class_list") as conn:
        conn.execute(delete(list_table))
        if names:
            conn.execute(insert(list_table), [{"key": n.casefold(), "name": n} for n in names])


#: How the command line's runs (owned by the administrator) read in a table.
COMMAND_LINE = "command line (administrator)"
#: Where earlier versions kept class-code names as typed (beside the run index); the store's
#: revision 0002 imports it into ``class_names``.
NAMES_FILE = "names.json"
#: Names another replica remembered show here within this many seconds.
NAMES_FRESH_S = 2.0


def remember_name(who: Identity) -> None:
    """Keep a class-code identity's name as typed ("Amal"), so tables show it rather than its
    case-folded key ("amal"); matching stays case-insensitive. The latest spelling wins."""
    if not who.key.startswith("code:") or known_names().get(who.key) == who.name:
        return
    try:
        with database().write(lock=f"name:{who.key}") as conn:
            if not conn.execute(update(class_names).where(class_names.c.key == who.key).values(name=who.name)).rowcount:
                conn.execute(insert(class_names).values(key=who.key, name=who.name))
    except DigitLabError:  # a name not kept only shows lower-cased; signing in must not fail over it
        return
    _names_cache.clear()


_names_cache: dict[str, tuple[float, dict[str, str]]] = {}


def known_names() -> dict[str, str]:
    """{class-code key: name as typed}, read again at most every NAMES_FRESH_S seconds (tables ask
    once per row)."""
    db = database()
    cached = _names_cache.get(db.url)
    if cached is None or time.monotonic() - cached[0] > NAMES_FRESH_S:
        try:
            with db.read() as conn:
                names = {row.key: row.name for row in conn.execute(select(class_names.c.key, class_names.c.name))}
        except DigitLabError:
            names = {}
        cached = _names_cache[db.url] = (time.monotonic(), names)
    return cached[1]


def owner_label(owner: str | None) -> str:
    """How an owner key reads in a table: the e-mail, the class-code name as typed, or the
    command line (the administrator); runs from before accounts have no owner."""
    if owner is None:
        return "(before accounts)"
    if owner == ADMINISTRATOR.key:
        return COMMAND_LINE
    if owner.startswith("code:"):
        return known_names().get(owner) or owner.removeprefix("code:")
    return owner.partition(":")[2] or owner
