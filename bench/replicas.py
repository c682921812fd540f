"""A school on one lab: two dashboard replicas behind HAProxy, one of them killed mid-lesson.

On this machine, loopback only, everything in throwaway folders: a PostgreSQL from Debian's
package (``initdb``/``pg_ctl``, as the ``postgres`` user when run as root, a password), the lab's
own Ray (``ray start --head`` as ``make ray`` starts it, on a free port), two replicas
(``streamlit run serve.py``) sharing that database, one run root and one cache folder, in class-code
mode on the tiny default, and HAProxy (Debian's package, installed when missing) in front with
cookie-sticky sessions, as compose.school.yaml sets it up with containers.

Three students sign in through the proxy with the class code in headless Chromium, each open the
Train page on preset G and start two runs. Then the replica serving them is killed (SIGKILL)
while runs train, and each student carries on through the proxy: reloads (still signed in?),
opens the Train page afresh (their choices back?) and each of their runs (shown to them?). The
runs are waited for; a run counts as finished when it ends "finished" with every epoch it was
configured for and its model file. Last line exactly:
``replicas: 2 labs, 1 killed mid-lesson, <s> of 3 students kept their sign-in and work, <k> of <n> runs finished, <f> lost``
(goal: s = 3, k = n = 6, f = 0).
"""  # noqa: E501 - the docstring quotes the exact last line

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.server_support import end, free_port, launch

ROOT = Path(__file__).resolve().parents[1]

STUDENTS = ("Amal", "Badr", "Chen")
RUNS_EACH, EPOCHS = 2, 30
CODE = "owl-42"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
APP = "[data-testid='stApp']"
IDLE = f"{APP}[data-test-script-state='notRunning']"
SIGNIN_COOKIE = "digitlab_signin"
SHOTS = ROOT / "artifacts" / "screenshots"
#: Error pages from the proxy (their status: 502, 503, 504) a student saw and reloaded, by student.
ERROR_PAGES: dict[str, list[str]] = {}
STICKY_COOKIE = "SERVERID"


def say(text: str) -> None:
    print(text, flush=True)


def wait(what: Callable[[], object], timeout: float, doing: str, every: float = 0.5) -> None:
    """Poll ``what`` until it is true; SystemExit naming ``doing`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out ({timeout:.0f} s): {doing}")
        time.sleep(every)


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
            return resp.read() == b"ok"
    except OSError:
        return False


# ---- Ray ----------------------------------------------------------------------------------------


def start_ray(port: int, mark: str, temp: Path) -> None:
    """The lab's own Ray as `make ray` starts it, on loopback at ``port``, its sessions in ``temp``
    (short: Ray's socket paths must fit 107 bytes; and apart, so the /tmp/ray/ray_current_cluster
    of other Rays here stays as it is). Every process it starts inherits ``mark`` in its
    environment, which is how :func:`stop_ray` finds them all (agents and workers rename
    themselves, and the head's address may not be 127.0.0.1 in every name)."""
    from core.execution.ray_local import node_env
    from tools.lab_ray import start_command

    env = dict(node_env(), DIGITLAB_BENCH_RAY=mark)  # loopback and the lab's token, as `make ray` gives
    subprocess.run(
        [*start_command(port), f"--temp-dir={temp}"], env=env, check=True, stdout=subprocess.DEVNULL, timeout=300
    )


def stop_ray(mark: str) -> None:
    """SIGKILL every process of the Ray :func:`start_ray` started (never another Ray here)."""
    needle = f"DIGITLAB_BENCH_RAY={mark}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
        except OSError:  # gone meanwhile, or not ours to read
            pass


# ---- PostgreSQL ---------------------------------------------------------------------------------


class Postgres:
    """A throwaway server from Debian's package, on loopback with a password, in its own folder."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise SystemExit(f"no PostgreSQL 15 in {PG_BIN}: apt-get install postgresql-15")
        self.port, self.password = free_port(), secrets.token_hex(12)
        # Its own folder: the server runs as `postgres`, which cannot enter the bench's private one.
        self.home = Path(tempfile.mkdtemp(prefix="digitlab-bench-pg-"))
        self.data = self.home / "data"
        self.as_user: list[str] = []
        if os.getuid() == 0:  # PostgreSQL refuses to run as root
            user = pwd.getpwnam("postgres")
            os.chown(self.home, user.pw_uid, user.pw_gid)
            self.as_user = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups"]
        self.started = False

    def _run(self, *command: str) -> None:
        out = subprocess.run([*self.as_user, *command], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise SystemExit(f"{Path(command[0]).name} failed: {(out.stderr or out.stdout).strip()[-800:]}")

    def start(self) -> str:
        """Initialise and start it; the URL of database ``digitlab`` on it."""
        pwfile = self.home / "pw"
        pwfile.write_text(self.password)
        if self.as_user:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "digitlab",
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        )  # not SQL_ASCII, whatever this shell's locale
        pwfile.unlink()
        # The socket in its own folder (no /var/run/postgresql needed), TCP on loopback only.
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.home / "log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.home}",
            "start",
        )
        self.started = True
        import psycopg

        base = f"postgresql://digitlab:{self.password}@127.0.0.1:{self.port}"
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE digitlab")
        return f"{base}/digitlab"

    def stop(self) -> None:
        if self.started:
            subprocess.run(
                [*self.as_user, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(self.home, ignore_errors=True)


# ---- HAProxy ------------------------------------------------------------------------------------


def haproxy_binary() -> str:
    """Debian's haproxy, installed first when missing (root only)."""
    found = shutil.which("haproxy") or (os.path.exists("/usr/sbin/haproxy") and "/usr/sbin/haproxy")
    if found:
        return found
    if os.getuid() != 0:
        raise SystemExit("haproxy missing: run 'sudo apt-get install haproxy'")
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "haproxy"],
        check=True,
        capture_output=True,
        env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
        timeout=600,
    )
    return shutil.which("haproxy") or "/usr/sbin/haproxy"


def haproxy_config(port: int, labs: dict[str, int]) -> str:
    """deploy/haproxy.cfg's proxy with fixed servers on loopback (no DNS here)."""
    servers = "\n".join(f"    server {name} 127.0.0.1:{p} cookie {name}" for name, p in labs.items())
    return f"""global
    maxconn 1024
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 8h
frontend lab
    bind 127.0.0.1:{port}
    default_backend labs
backend labs
    balance roundrobin
    cookie {STICKY_COOKIE} insert indirect nocache httponly
    option redispatch
    retries 3
    retry-on conn-failure empty-response junk-response response-timeout
    option httpchk GET /_stcore/health
    http-check expect string ok
    default-server check inter 1s fall 2 rise 2 on-marked-down shutdown-sessions
{servers}
"""


# ---- the students ---------------------------------------------------------------------------------


def owner(name: str) -> str:
    """A class-code student's owner key (core.classroom.access: ``code:<name, lower case>``)."""
    return f"code:{name.lower()}"


def signed_in(page, name: str, timeout: float = 300) -> bool:
    """Whether the page comes to show ``name`` signed in; False as soon as it shows the sign-in
    form instead (a slow page, on a busy machine, is waited for until ``timeout`` seconds). An
    error page from the proxy itself is reloaded, as a student would, and counted in ERROR_PAGES."""
    shown = page.locator(f"[data-testid='stSidebar'] >> text=Signed in as {name} >> visible=true").first
    form = page.get_by_label("Your name")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if shown.is_visible():
            return True
        if form.is_visible():
            return False
        if (error := page.locator("h1", has_text=re.compile(r"^50[234] "))).count():
            ERROR_PAGES.setdefault(name, []).append(error.first.inner_text().split()[0])
            page.reload()
            continue
        page.wait_for_timeout(250)
    return False


def cookie(ctx, name: str) -> str | None:
    return next((c["value"] for c in ctx.cookies() if c["name"] == name), None)


def sign_in(ctx, url: str, name: str):
    """Sign ``name`` in with the class code through the proxy; the page, once the cookie is kept."""
    page = ctx.new_page()
    page.set_default_timeout(300_000)  # a page on a replica of a busy shared machine may take minutes
    page.goto(url)
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Class code").fill(CODE)
    page.get_by_role("button", name="Enter").click()
    page.locator(f"[data-testid='stSidebar'] >> text=Signed in as {name} >> visible=true").first.wait_for(
        timeout=300_000
    )
    wait(lambda: cookie(ctx, SIGNIN_COOKIE), 30, f"{name}'s sign-in cookie", 0.1)
    page.wait_for_selector(IDLE)
    return page


def start_runs(page, url: str, store, name: str) -> list[str]:
    """``RUNS_EACH`` runs of preset G for ``EPOCHS`` epochs from the Train page; their ids."""
    page.goto(f"{url}/train?preset=G&epochs={EPOCHS}")
    page.wait_for_selector(IDLE)
    for n in range(1, RUNS_EACH + 1):
        page.get_by_role("button", name=re.compile("Train")).last.click()
        wait(lambda: len(runs_of(store, name)) >= n, 120, f"{name}'s run {n} in the store")  # noqa: B023 - called at once
        page.wait_for_selector(IDLE)
    return runs_of(store, name)


def runs_of(store, name: str) -> list[str]:
    return [r.id for r in store.list() if r.owner == owner(name)]


def carries_on(ctx, page, url: str, name: str, run_ids: list[str]) -> tuple[bool, str]:
    """After the kill, through the proxy: a reload keeps ``name`` signed in, the Train page opened
    afresh has their preset back, and each of their runs opens for them. (ok, what failed; a
    screenshot of a failure lands in artifacts/screenshots/)."""
    ok, why = _carries_on(page, url, name, run_ids)
    if not ok:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"replicas-{name.lower()}.png"), full_page=True)
    return ok, why


def _carries_on(page, url: str, name: str, run_ids: list[str]) -> tuple[bool, str]:
    page.reload()
    if not signed_in(page, name):
        return False, "signed out by the reload"
    # No query: the page publishes its state into the address, so preset and epochs showing up
    # there come from the work kept server-side.
    page.goto(f"{url}/train")
    deadline = time.monotonic() + 120
    while not re.search(rf"preset=G\b.*epochs={EPOCHS}\b", page.url):
        if time.monotonic() > deadline:
            return False, f"the Train page lost their preset and epochs ({page.url})"
        page.wait_for_timeout(250)
    for run_id in run_ids:
        # A run they may not see answers "not here" and the page picks another (and publishes it).
        page.goto(f"{url}/runs?run={run_id}")
        try:
            page.get_by_text(re.compile(r"Status: ")).first.wait_for(timeout=120_000)
        except Exception:  # noqa: BLE001 - Playwright's TimeoutError
            return False, f"the Runs page did not open run {run_id}"
        if page.get_by_text("from the link is not here").count() or f"run={run_id}" not in page.url:
            return False, f"run {run_id} is not shown to them"
    page.goto(f"{url}/train")  # the live view stays open while the runs finish
    return True, ""


# ---- the benchmark --------------------------------------------------------------------------------


def start_lab(work: Path, port: int, env: dict[str, str], name: str) -> subprocess.Popen:
    with open(work / f"{name}.log", "wb") as log:
        return launch(env, port, log)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="digitlab-bench-replicas-"))
    ray_port = free_port()
    os.environ["DIGITLAB_RAY_TOKEN"] = secrets.token_hex(32)  # this lab's Ray token, for Ray and both replicas
    procs: dict[str, subprocess.Popen] = {}
    students = finished = n = 0
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, work, ignore_errors=True)
        pg = Postgres()
        cleanup.callback(pg.stop)
        database_url = pg.start()
        say(f"PostgreSQL 15 on 127.0.0.1:{pg.port}")

        mark = secrets.token_hex(8)
        ray_temp = Path(tempfile.mkdtemp(prefix="dlray-"))
        cleanup.callback(shutil.rmtree, ray_temp, ignore_errors=True)
        cleanup.callback(stop_ray, mark)  # (callbacks run last-in first-out: Ray ends, then its folder goes)
        start_ray(ray_port, mark, ray_temp)
        say(f"Ray on 127.0.0.1:{ray_port}")

        shared = {
            "DIGITLAB_RUN_ROOT": str(work / "runs"),
            "DIGITLAB_CACHE_DIR": str(work / "cache"),
            "DIGITLAB_DATA_DIR": str(work / "data"),
            "DIGITLAB_DATABASE_URL": database_url,
        }
        os.environ.update(shared)  # this process reads the same store to count the runs
        env = dict(
            os.environ,
            **shared,
            DIGITLAB_CLASS_CODE=CODE,
            DIGITLAB_DEFAULT_SIZE="tiny",
            DIGITLAB_RAY_ADDRESS=f"127.0.0.1:{ray_port}",
            DIGITLAB_MAX_JOBS="2",
            DIGITLAB_WARM_UP="0",
            TF_CPP_MIN_LOG_LEVEL="2",
        )
        from core.runs.store import RunStore

        store = RunStore(work / "runs")  # makes the schema before the replicas race for it

        ports = {"lab1": free_port(), "lab2": free_port()}
        cleanup.callback(lambda: [end(p) for p in procs.values()])
        for name, port in ports.items():
            procs[name] = start_lab(work, port, env, name)
        for name, port in ports.items():
            wait(
                lambda: healthy(f"http://127.0.0.1:{port}") or procs[name].poll() is not None,  # noqa: B023 - called at once
                120,
                f"{name} answering its health check",
            )
            if procs[name].poll() is not None:
                raise SystemExit(f"{name} ended: {(work / f'{name}.log').read_text()[-1500:]}")
        say(f"replicas lab1 :{ports['lab1']}, lab2 :{ports['lab2']}")

        proxy_port = free_port()
        cfg = work / "haproxy.cfg"
        cfg.write_text(haproxy_config(proxy_port, ports))
        with open(work / "haproxy.log", "wb") as log:
            procs["haproxy"] = subprocess.Popen(
                [haproxy_binary(), "-W", "-db", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT
            )
        url = f"http://127.0.0.1:{proxy_port}"
        wait(lambda: healthy(url), 30, "HAProxy answering")
        say(f"HAProxy on {url}")

        from playwright.sync_api import sync_playwright

        pw = cleanup.enter_context(sync_playwright())
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        cleanup.callback(browser.close)
        pages, run_ids = {}, {}
        # lab2 serves someone too, as in a school (a replica's first page is slow: imports, data).
        bystander = browser.new_context()
        bystander.add_cookies([{"name": STICKY_COOKIE, "value": "lab2", "url": url}])
        lobby = bystander.new_page()
        lobby.goto(url)
        lobby.get_by_label("Your name").wait_for(timeout=300_000)
        for name in STUDENTS:
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            # Every student on lab1, the one that dies: round-robin would leave one of three on
            # the survivor, whose sign-in would prove nothing.
            ctx.add_cookies([{"name": STICKY_COOKIE, "value": "lab1", "url": url}])
            try:
                pages[name] = (ctx, sign_in(ctx, url, name))
                run_ids[name] = start_runs(pages[name][1], url, store, name)
            except Exception as err:  # noqa: BLE001 - Playwright's errors: before the kill, nothing to measure
                SHOTS.mkdir(parents=True, exist_ok=True)
                ctx.pages[-1].screenshot(path=str(SHOTS / f"replicas-{name.lower()}.png"), full_page=True)
                raise SystemExit(
                    f"replicas: {name} could not sign in and start runs through the proxy before "
                    f"the kill: {str(err).splitlines()[0]}"
                ) from None
            say(f"{name} signed in on {cookie(ctx, STICKY_COOKIE)}, runs {', '.join(run_ids[name])}")
        every = [i for ids in run_ids.values() for i in ids]
        n = len(every)

        # Mid-lesson: a run has charted an epoch (30 each, two runs at a time: the rest are in flight).
        wait(lambda: any(len(store.history(i)) >= 1 for i in every), 600, "a run charting its first epoch")
        states = [store.get(i).status for i in every]
        procs["lab1"].send_signal(signal.SIGKILL)
        procs["lab1"].wait(timeout=30)
        say(f"lab1 killed with runs {', '.join(sorted(states))}")

        for name in STUDENTS:
            ctx, page = pages[name]
            ok, why = carries_on(ctx, page, url, name, run_ids[name])
            students += ok
            errors = f", after proxy error page(s) {', '.join(ERROR_PAGES[name])}" if name in ERROR_PAGES else ""
            say(f"{name}: {'kept sign-in and work' if ok else why} (now on {cookie(ctx, STICKY_COOKIE)}{errors})")

        # Runs still going after the deadline are counted lost, not waited for forever.
        deadline = time.monotonic() + 900
        while any(store.get(i).active for i in every) and time.monotonic() < deadline:
            time.sleep(2)
        for i in every:
            run = store.get(i)
            whole = run.status == "finished" and len(store.history(i)) == EPOCHS and store.model_path(i).is_file()
            finished += whole
            say(
                f"{i} ({run.owner}): {run.status}, {len(store.history(i))} epochs, model "
                f"{'kept' if whole else 'missing'}" + (f" ({run.error})" if run.error else "")
            )
    say(
        f"replicas: 2 labs, 1 killed mid-lesson, {students} of {len(STUDENTS)} students kept their sign-in and work, "
        f"{finished} of {n} runs finished, {n - finished} lost"
    )


if __name__ == "__main__":
    main()
