# SPDX-License-Identifier: MIT
"""Client helpers for the gateway tests (test_gateway_*.py, test_bad_input.py,
test_nginx.py, test_roles.py): requests over raw sockets, the error shape of
docs/API.md, row counts, tokens, /metrics and a few ways to make jobs."""
import re
import socket
from datetime import datetime, timedelta

from conftest import cli, one

ANY = object()


def make_token(dsn, name, scope):
    """A new token from `jobwheel token create` (alone on the last line)."""
    return cli(dsn, "token", "create", name, "--scope", scope).stdout.splitlines()[-1]


def count(db, table="jobs"):
    return one(db, f"SELECT count(*) FROM jobwheel.{table}")


def written(db):
    """Row counts of every table a request could write to."""
    return {t: count(db, t) for t in ("jobs", "events", "workflows", "job_deps", "queues", "job_errors")}


def walk(gw, path, key, limit, query=""):
    """Every page of GET path?query, following next_before; the items
    (value[key]) in order."""
    items, before, pages = [], None, 0
    while True:
        q = f"{query}&limit={limit}" + (f"&before={before}" if before else "")
        status, value = gw.get(f"{path}?" + q.lstrip("&"))
        assert status == 200 and set(value) == {key, "next_before"}, value
        assert len(value[key]) <= limit
        items += value[key]
        before = value["next_before"]
        pages += 1
        assert pages < 1000
        if before is None:
            return items
        assert before == value[key][-1]["id"], value


def assert_error(status, value, want_status, code, field=ANY):
    """The error shape of docs/API.md: {"error": {"code", "message", "field"?}}."""
    assert status == want_status, value
    assert isinstance(value, dict) and set(value) == {"error"}, value
    err = value["error"]
    assert err["code"] == code, value
    assert isinstance(err["message"], str) and err["message"], value
    assert set(err) <= {"code", "message", "field"}, value
    if field is not ANY:
        assert err.get("field") == field, value


def parse_ts(text):
    """An RFC 3339 timestamp in UTC (Z or +00:00) as an aware datetime."""
    assert isinstance(text, str) and re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", text), text
    ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert ts.utcoffset() == timedelta(0), f"{text} is not UTC"
    return ts


def enqueue(gw, token=None, **job):
    status, value = gw.post("/api/jobs", job, token=token)
    assert status == 201, value
    return value["id"]


def enqueue_batch(gw, jobs, token=None):
    status, value = gw.post("/api/jobs/batch", {"jobs": jobs}, token=token)
    assert status == 201, value
    return value["ids"]


def kill_jobs(db, ids, error="boom"):
    """Runs the jobs' only attempt through the SQL worker API and fails them
    for good: they end `dead` (in the DLQ) with one error each."""
    for job_id in ids:
        db.execute("UPDATE jobwheel.jobs SET max_attempts = 1 WHERE id = %s", (job_id,))
    queues = [r[0] for r in db.execute(
        "SELECT DISTINCT queue FROM jobwheel.jobs WHERE id = ANY(%s)", (list(ids),)).fetchall()]
    claimed = db.execute("SELECT id, attempt FROM jobwheel.claim('test-worker', %s, 10000)", (queues,)).fetchall()
    assert {r[0] for r in claimed} >= set(ids), claimed
    for job_id, attempt in claimed:
        if job_id in ids:
            assert one(db, "SELECT jobwheel.fail(%s, %s, %s, false)", job_id, attempt, error)
        else:  # not ours: put it back as it was
            db.execute("UPDATE jobwheel.jobs SET state = 'ready', attempt = attempt - 1, lease_until = NULL, "
                       "started_at = NULL, worker = NULL WHERE id = %s", (job_id,))
    assert one(db, "SELECT count(*) FROM jobwheel.jobs WHERE id = ANY(%s) AND state = 'dead'", list(ids)) == len(ids)


def recv_response(sock, buf=b""):
    """Reads one HTTP/1.1 response (Content-Length framed) from sock.
    Returns (status, headers with lower-case names, body bytes, bytes left over)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a whole response head; got {buf!r}")
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), lines[0]
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, value = line.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    n = int(headers.get("content-length", "0"))
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed inside a body of {n} bytes; got {buf!r}")
        buf += chunk
    return status, headers, buf[:n], buf[n:]


def connect(gw, timeout=10):
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=timeout)
    return s


def closed_by_peer(sock, timeout=5):
    """Whether the server closes the connection (EOF) within timeout."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def post_raw(gw, path, data, content_type="application/json", headers=None):
    h = dict(headers or {})
    if content_type is not None:
        h["Content-Type"] = content_type
    status, value, _ = gw.request("POST", path, raw=data, headers=h)
    return status, value


def assert_post_refused(gw, db, path, body, field):
    """POST path with body is a 400 bad_request naming field, and writes nothing."""
    before = written(db)
    status, value = gw.post(path, body)
    assert_error(status, value, 400, "bad_request", field)
    assert written(db) == before


def submit_workflow(gw, name="wf", token=None):
    spec = {"name": name, "jobs": [
        {"key": "fetch", "kind": "fetch"},
        {"key": "parse", "kind": "parse", "depends_on": ["fetch"]},
        {"key": "tidy", "kind": "tidy", "depends_on": ["fetch", "parse"], "trigger": "all_done"},
    ]}
    status, value = gw.post("/api/workflows", spec, token=token)
    assert status == 201, value
    return value


def metrics(gw):
    """/metrics as {name{labels}: value}, checking the text format as it goes."""
    status, text, headers = gw.request("GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain"), headers
    samples, typed = {}, {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            typed[name] = kind
            continue
        if line.startswith("#"):
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"'
                         r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? (\S+)', line)
        assert m, f"not a Prometheus sample line: {line!r}"
        name = m.group(1)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or base in typed, f"{name} has no # TYPE line"
        assert name.startswith("jobwheel_"), line
        samples[name + (m.group(2) or "")] = float(m.group(3))
    return samples
