# SPDX-License-Identifier: MIT
"""Integration test harness: a real PostgreSQL per test session, a fresh
migrated database per test, and helpers to run jobwheel's binaries."""
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import psycopg
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("JW_BUILD_DIR", os.path.join(ROOT, "build"))
PG_BIN = os.environ.get("JW_PG_BIN", "/usr/lib/postgresql/15/bin")
WORKER = os.path.join(BUILD, "worker", "jobwheel-worker")
COORDINATOR = os.path.join(BUILD, "coordinator", "jobwheel-coordinator")
CLI = os.path.join(BUILD, "cli", "jobwheel")
GATEWAY = os.path.join(BUILD, "gateway", "jobwheel-gateway")
WEB_ROOT = os.path.join(ROOT, "gateway", "web")


def _sanitized_build():
    """Whether BUILD was configured with -Db_sanitize (ASan/UBSan)."""
    try:
        with open(os.path.join(BUILD, "meson-info", "intro-buildoptions.json")) as f:
            options = json.load(f)
    except (OSError, ValueError):
        return False
    value = next((o["value"] for o in options if o["name"] == "b_sanitize"), "none")
    return value not in ("none", "", [], ["none"])


# Under a sanitizer build every ASan/UBSan/LSan report of every process goes to
# SANITIZER_DIR/report.<pid>; a test during which a report appears fails, so a
# leak at exit or an error in a child whose log nobody reads is not missed.
SANITIZER_DIR = None
if _sanitized_build():
    SANITIZER_DIR = tempfile.mkdtemp(prefix="jw-sanitizer-")
    for _var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        _opts = os.environ.get(_var, "")
        if "log_path=" not in _opts:
            os.environ[_var] = (_opts + ":" if _opts else "") + "log_path=" + os.path.join(SANITIZER_DIR, "report")
_sanitizer_seen = set()


def pytest_sessionfinish(session, exitstatus):
    if SANITIZER_DIR is not None and not os.listdir(SANITIZER_DIR):
        os.rmdir(SANITIZER_DIR)


@pytest.fixture(autouse=True)
def sanitizer_reports():
    """Fails the test if a sanitizer reported anything since the last check."""
    yield
    if SANITIZER_DIR is None:
        return
    new = sorted(set(os.listdir(SANITIZER_DIR)) - _sanitizer_seen)
    _sanitizer_seen.update(new)
    if new:
        reports = "\n".join(open(os.path.join(SANITIZER_DIR, n), errors="replace").read() for n in new)
        pytest.fail(f"sanitizer report(s) in {SANITIZER_DIR}: {', '.join(new)}\n{reports}", pytrace=False)


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    """Polls predicate until it returns a truthy value; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra):
    """The environment for a jobwheel process: no stray JOBWHEEL_* settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("JOBWHEEL_") and k != "EMAIL_FAILURE_RATE"}
    env["JOBWHEEL_CONFIG"] = "/dev/null"  # never a host's /etc/jobwheel/jobwheel.conf
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Postgres:
    """A private PostgreSQL cluster on a free loopback port."""

    def __init__(self, base):
        self.base = base
        self.data = os.path.join(base, "data")
        self.port = free_port()
        self.log = os.path.join(base, "postgres.log")
        self.runas = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            self.runas = ["runuser", "-u", "postgres", "--"]
            shutil.chown(base, "postgres")

    def _run(self, *args):
        subprocess.run(self.runas + list(args), check=True, stdout=subprocess.DEVNULL)

    def init(self):
        self._run(os.path.join(PG_BIN, "initdb"), "-D", self.data, "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{self.base}'\nmax_connections = 200\n"
                    "fsync = off\nfull_page_writes = off\n")

    def start(self):
        self._run(os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", "60", "start")

    def stop(self, mode="fast"):
        self._run(os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m", mode, "-w", "stop")

    def dsn(self, dbname="postgres"):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"


@pytest.fixture(scope="session")
def pg():
    base = tempfile.mkdtemp(prefix="jw-pg-")
    os.chmod(base, 0o755)
    server = Postgres(base)
    server.init()
    server.start()
    with psycopg.connect(server.dsn(), autocommit=True) as c:
        c.execute("CREATE DATABASE jw_template")
    subprocess.run([CLI, "--set", "database.url=" + server.dsn("jw_template"), "migrate"],
                   check=True, env=clean_env(), stdout=subprocess.DEVNULL)
    yield server
    try:
        server.stop("immediate")
    finally:
        shutil.rmtree(base, ignore_errors=True)


_db_counter = [0]


@pytest.fixture
def dsn(pg):
    """A fresh, migrated database for one test."""
    _db_counter[0] += 1
    name = f"t{os.getpid()}_{_db_counter[0]}"
    with psycopg.connect(pg.dsn(), autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name} TEMPLATE jw_template")
    yield pg.dsn(name)
    with psycopg.connect(pg.dsn(), autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def db(dsn):
    """An autocommit psycopg connection to the test's database."""
    with psycopg.connect(dsn, autocommit=True) as c:
        yield c


def one(conn, sql, *params):
    """The first column of the first row."""
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def job_state(conn, job_id):
    return one(conn, "SELECT state FROM jobwheel.jobs WHERE id = %s", job_id)


def wait_state(conn, job_id, state, timeout=15):
    """Polls until the job is in state; the failure says where it is instead."""
    wait_for(lambda: job_state(conn, job_id) == state, timeout,
             what=f"job {job_id} to be {state} (is {job_state(conn, job_id)})")


def job_result(conn, job_id):
    return one(conn, "SELECT result FROM jobwheel.jobs WHERE id = %s", job_id)


def job_errors(conn, job_id):
    """The error of every failed attempt, oldest first."""
    return [e for (e,) in conn.execute("SELECT error FROM jobwheel.job_errors WHERE job_id = %s ORDER BY id",
                                       (job_id,))]


class Proc:
    """A jobwheel process (worker or coordinator) with its log kept for the test report.
    Settings: concurrency=4 sets worker.concurrency, email__failure_rate=1 sets email.failure_rate;
    env={"NAME": "value"} adds variables to the process's environment;
    wrapper=["valgrind", ...] runs the binary under that command (same pid)."""

    def __init__(self, binary, dsn, tmp_path, *args, env=None, wrapper=None, **settings):
        self.dsn = dsn
        self.log_path = tmp_path / f"{os.path.basename(binary)}-{id(self)}.log"
        cmd = list(wrapper or []) + [binary, "--set", "database.url=" + dsn, "--log-level", "debug"]
        for key, value in settings.items():
            key = key.replace("__", ".") if "__" in key else "worker." + key
            cmd += ["--set", f"{key}={value}"]
        cmd += list(args)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=clean_env(**(env or {})))
        self.name = None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=30):
        return self.proc.wait(timeout)

    def stop_gracefully(self, timeout=5):
        """SIGTERM (drain), then a second SIGTERM (force): the process runs its exit path,
        so a sanitizer build reports leaks at shutdown. The caller kills what is left."""
        for _ in range(2):
            if self.proc.poll() is not None:
                return
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def output(self):
        self.log.flush()
        return self.log_path.read_text()

    def _registered(self, conn, table, timeout):
        def registered():
            assert self.proc.poll() is None, f"process exited early:\n{self.output()}"
            return one(conn, f"SELECT id FROM jobwheel.{table} WHERE pid = %s", self.proc.pid)
        self.name = wait_for(registered, timeout, what=f"registration in jobwheel.{table}")
        return self


class Worker(Proc):
    def __init__(self, dsn, tmp_path, *args, **settings):
        super().__init__(WORKER, dsn, tmp_path, *args, **settings)

    def wait_registered(self, conn, timeout=10):
        return self._registered(conn, "workers", timeout)


class Coordinator(Proc):
    def __init__(self, dsn, tmp_path, *args, **settings):
        super().__init__(COORDINATOR, dsn, tmp_path, *args, **settings)

    def wait_registered(self, conn, timeout=10):
        return self._registered(conn, "coordinators", timeout)

    def is_leader(self, conn):
        return one(conn, "SELECT count(*) FROM jobwheel.leader WHERE pid = %s", self.proc.pid) == 1


class Gateway(Proc):
    """A gateway on a free loopback port serving the dashboard from the source tree.
    gw.url is its base URL; gw.get(path) / gw.post(path, body) return (status, json)."""

    def __init__(self, dsn, tmp_path, *args, port=None, **settings):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings.setdefault("gateway__web_root", WEB_ROOT)
        super().__init__(GATEWAY, dsn, tmp_path, "--listen", f"127.0.0.1:{self.port}", *args, **settings)

    def wait_registered(self, conn=None, timeout=10):
        def ready():
            assert self.proc.poll() is None, f"gateway exited early:\n{self.output()}"
            try:
                return self.request("GET", "/readyz")[0] == 200
            except OSError:
                return False
        wait_for(ready, timeout, what="gateway /readyz")
        return self

    def request(self, method, path, body=None, token=None, headers=None, raw=None):
        """One request on a new connection; returns (status, parsed JSON or text, headers)."""
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            text = r.read().decode()
            ctype = r.getheader("Content-Type") or ""
            value = json.loads(text) if ctype.startswith("application/json") and text else text
            return r.status, value, dict(r.getheaders())
        finally:
            c.close()

    def get(self, path, **kw):
        status, value, _ = self.request("GET", path, **kw)
        return status, value

    def post(self, path, body=None, **kw):
        status, value, _ = self.request("POST", path, body=body, **kw)
        return status, value


def _processes(cls, dsn, db, tmp_path):
    """A factory of processes of cls that are all killed at the end of the test."""
    started = []

    class Factory:
        def start(self, *args, wait=True, **settings):
            p = cls(dsn, tmp_path, *args, **settings)
            started.append(p)
            if wait:
                p.wait_registered(db)
            return p

    yield Factory()
    for p in started:
        if SANITIZER_DIR is not None:
            p.stop_gracefully()
        p.kill()


@pytest.fixture
def workers(dsn, db, tmp_path):
    """Starts workers: workers.start(concurrency=4, worker__poll_ms=200)."""
    yield from _processes(Worker, dsn, db, tmp_path)


@pytest.fixture
def coordinators(dsn, db, tmp_path):
    """Starts coordinators: coordinators.start("--timer", "heap", coordinator__cursor_ms=5)."""
    yield from _processes(Coordinator, dsn, db, tmp_path)


@pytest.fixture
def gateways(dsn, db, tmp_path):
    """Starts gateways: gw = gateways.start(); gw.get("/api/jobs")."""
    yield from _processes(Gateway, dsn, db, tmp_path)


def cli(dsn, *args, input=None, check=True, env=None):
    """Runs the jobwheel CLI against dsn; returns the CompletedProcess."""
    r = subprocess.run([CLI, "--set", "database.url=" + dsn, *args], input=input, capture_output=True,
                       text=True, env=env or clean_env())
    if check and r.returncode != 0:
        raise AssertionError(f"jobwheel {' '.join(args)} exited {r.returncode}:\n{r.stderr}")
    return r
