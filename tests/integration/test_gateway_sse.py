# SPDX-License-Identifier: MIT
"""GET /api/events, the gateway's Server-Sent Events stream, read over raw
sockets: headers and `retry:`, job events through a job's life, filters,
Last-Event-ID replay (from memory, from the database, across a gateway
restart), keepalives, stats, the per-client budget with `dropped` notices,
and a client that never reads not holding up the others."""
import json
import socket
import time
from dataclasses import dataclass, field

import pytest

from conftest import wait_for
from gateway_client import assert_error, enqueue, enqueue_batch, make_token, metrics, parse_ts

JOB_EVENT_KEYS = {"id", "queue", "kind", "state", "attempt", "priority", "at"}
JOB_EVENT_OPTIONAL = {"workflow_id", "error"}


@dataclass
class Event:
    id: int = None
    event: str = None
    data: object = None
    retry: int = None
    comments: list = field(default_factory=list)

    def is_job(self, job_id=None, state=None):
        return self.event == "job" and (job_id is None or self.data["id"] == job_id) and \
            (state is None or self.data["state"] == state)


class SSE:
    """A client of /api/events on a raw socket. After the response head,
    next() returns one event block at a time (comments, retry, events)."""

    def __init__(self, gw, query="", headers=None, token=None, rcvbuf=None, timeout=10):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", gw.port))
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        path = "/api/events" + ("?" + query if query else "")
        req = f"GET {path} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n"
        req += "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        self.sock.sendall(req.encode())
        self.buf = bytearray()
        self.pos = 0
        self.closed = False
        self.status = self.headers = self.body = None

    def ready(self, timeout=10):
        """Waits for the stream to open (its head and `retry:`): from then on
        the client receives every event the gateway relays."""
        first = self.next(timeout)
        assert self.status == 200, (self.status, self.body)
        assert first.retry == 2000 and first.event is None, first
        return self

    def read_head(self, timeout=10):
        deadline = time.monotonic() + timeout
        while self.buf.find(b"\r\n\r\n") < 0:
            self._more(deadline)
        end = self.buf.find(b"\r\n\r\n")
        lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        self.pos = end + 4
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
        if "content-length" in self.headers:  # an error, not a stream
            n = int(self.headers["content-length"])
            while len(self.buf) - self.pos < n:
                self._more(deadline)
            self.body = json.loads(bytes(self.buf[self.pos:self.pos + n]))
        return self

    def _more(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("no more data in time")
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            self.closed = True
            raise EOFError("the server closed the stream")
        if self.pos > (1 << 20):
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += chunk

    def next(self, timeout=10):
        """The next block (an event, a comment, retry) or socket.timeout."""
        if self.status is None:
            self.read_head(timeout)
        deadline = time.monotonic() + timeout
        while True:
            end = self.buf.find(b"\n\n", self.pos)
            if end >= 0:
                break
            self._more(deadline)
        text = bytes(self.buf[self.pos:end]).decode()
        self.pos = end + 2
        ev, data = Event(), []
        for line in text.split("\n"):
            if line.startswith(":"):
                ev.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "id":
                ev.id = int(value)
            elif name == "event":
                ev.event = value
            elif name == "data":
                data.append(value)
            elif name == "retry":
                ev.retry = int(value)
            else:
                raise AssertionError(f"unexpected SSE line {line[:200]!r} in {text[:300]!r}...{text[-300:]!r}")
        if data:
            assert len(data) == 1, f"data must be one line: {text[:300]!r}...{text[-300:]!r}"
            try:
                ev.data = json.loads(data[0])
            except ValueError:
                raise AssertionError(f"data is not JSON: {text[:300]!r}...{text[-300:]!r}") from None
        return ev

    def until(self, pred, timeout=10, what="an event"):
        """Events (not comments) up to and including the first for which pred is true."""
        deadline = time.monotonic() + timeout
        got = []
        while True:
            remaining = deadline - time.monotonic()
            try:
                ev = self.next(max(remaining, 0.001))
            except socket.timeout:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; got {len(got)} events, "
                                     f"the last: {[short(e) for e in got][-12:]}") from None
            if ev.event is None:
                continue
            got.append(ev)
            if pred(ev):
                return got

    def quiet(self, seconds=0.5, at_most=10):
        """Every block that arrives within `seconds` of the one before, for
        at most `at_most` seconds in all."""
        got = []
        deadline = time.monotonic() + at_most
        while True:
            wait = min(seconds, deadline - time.monotonic())
            if wait <= 0:
                return got
            try:
                got.append(self.next(wait))
            except socket.timeout:
                return got

    def close(self):
        self.sock.close()


def short(e):
    """An event for a failure message: its type and data, long strings cut."""
    data = e.data
    if isinstance(data, dict):
        data = {k: (v[:40] + "..." if isinstance(v, str) and len(v) > 40 else v) for k, v in data.items()}
    return (e.id, e.event, data)


def job_log(events):
    return [(e.data["id"], e.data["state"]) for e in events if e.event == "job" and e.data["kind"] != "probe"]


def wait_live(gw):
    """Waits until the gateway relays events: probe jobs (kind and queue
    `probe`) are enqueued until one shows on the stream. (An event committed
    before the gateway's change feed is up is never relayed: see
    test_a_client_connected_once_ready_gets_every_later_event.)"""
    c = SSE(gw, "kind=probe").ready()
    deadline = time.monotonic() + 15
    while True:
        probe = enqueue(gw, kind="probe", queue="probe")
        try:
            c.until(lambda e: e.is_job(probe), timeout=0.3, what="a probe")
            break
        except AssertionError:
            assert time.monotonic() < deadline, "the gateway relays no event"
    c.close()
    return gw


def start(gateways, **settings):
    """A gateway that is ready and whose change feed is live."""
    return wait_live(gateways.start(**settings))


def assert_increasing(events):
    ids = [e.id for e in events if e.event == "job"]
    assert all(a < b for a, b in zip(ids, ids[1:])), ids


# ---------------------------------------------------------------- the stream

def test_stream_starts_with_event_stream_headers_and_retry(gateways, db):
    gw = start(gateways)
    c = SSE(gw).read_head()
    assert c.status == 200
    assert c.headers["content-type"].startswith("text/event-stream")
    assert c.headers.get("x-accel-buffering") == "no"
    assert "content-length" not in c.headers
    first = c.next()
    assert first.retry == 2000 and first.event is None and first.id is None, first
    c.close()


def test_a_job_shows_ready_running_succeeded_with_increasing_ids(gateways, workers, db):
    gw = start(gateways)
    c = SSE(gw, "types=job").ready()
    job = enqueue(gw, kind="noop", priority=3, queue="default")
    ready = c.until(lambda e: e.is_job(job), what="the ready event")[-1]
    assert ready.data["state"] == "ready", ready
    assert JOB_EVENT_KEYS <= set(ready.data) <= JOB_EVENT_KEYS | JOB_EVENT_OPTIONAL, ready.data
    assert (ready.data["queue"], ready.data["kind"], ready.data["attempt"], ready.data["priority"]) == \
        ("default", "noop", 0, 3)
    assert "error" not in ready.data and "workflow_id" not in ready.data
    parse_ts(ready.data["at"])

    workers.start(concurrency=2)
    events = [ready] + c.until(lambda e: e.is_job(job, "succeeded"), what="succeeded")
    assert job_log(events) == [(job, "ready"), (job, "running"), (job, "succeeded")]
    assert [e.data["attempt"] for e in events] == [0, 1, 1]
    assert_increasing(events)

    dead = enqueue(gw, kind="fail", payload={"message": "it broke", "retryable": False})
    events = c.until(lambda e: e.is_job(dead, "dead"), what="dead")
    assert job_log(events) == [(dead, "ready"), (dead, "running"), (dead, "dead")]
    assert events[-1].data["error"] == "it broke"
    assert_increasing(events)


def test_workflow_jobs_carry_their_workflow_id(gateways, db):
    gw = start(gateways)
    c = SSE(gw, "types=job").ready()
    status, wf = gw.post("/api/workflows", {"jobs": [{"key": "a", "kind": "x"},
                                                     {"key": "b", "kind": "y", "depends_on": ["a"]}]})
    assert status == 201
    events = c.until(lambda e: e.is_job(wf["jobs"]["b"]), what="the workflow's jobs")
    got = {e.data["id"]: e.data for e in events}
    assert got[wf["jobs"]["a"]]["state"] == "ready" and got[wf["jobs"]["b"]]["state"] == "blocked"
    assert {d["workflow_id"] for d in got.values()} == {wf["workflow_id"]}


def test_filters_by_queue_kind_job_and_workflow(gateways, db):
    gw = start(gateways)
    lone = enqueue(gw, kind="noop", delay_ms=600000)
    status, wf = gw.post("/api/workflows", {"jobs": [{"key": "x", "kind": "wfk"},
                                                     {"key": "y", "kind": "wfk", "depends_on": ["x"]}]})
    assert status == 201
    wait_live(gw)  # the setup is relayed before the clients below connect
    everything = SSE(gw, "types=job").ready()
    by_queue = SSE(gw, "queue=mail").ready()
    by_kind = SSE(gw, "kind=email").ready()
    by_job = SSE(gw, f"job={lone}").ready()
    by_wf = SSE(gw, f"workflow_id={wf['workflow_id']}").ready()
    both = SSE(gw, "queue=mail&kind=email").ready()

    a = enqueue(gw, kind="email", queue="mail")
    b = enqueue(gw, kind="noop", queue="mail")
    c_ = enqueue(gw, kind="email", queue="default")
    assert gw.post(f"/api/jobs/{lone}/cancel")[0] == 200
    assert gw.post(f"/api/jobs/{wf['jobs']['x']}/cancel")[0] == 200  # y: cancelled upstream
    marker = enqueue(gw, kind="marker", queue="other")
    all_events = everything.until(lambda e: e.is_job(marker), what="the marker")
    assert job_log(all_events) == [(a, "ready"), (b, "ready"), (c_, "ready"), (lone, "cancelled"),
                                   (wf["jobs"]["x"], "cancelled"), (wf["jobs"]["y"], "cancelled"),
                                   (marker, "ready")]

    def got(client):
        return job_log(e for e in client.quiet(0.5, at_most=3) if e.event == "job")

    assert got(by_queue) == [(a, "ready"), (b, "ready")]
    assert got(by_kind) == [(a, "ready"), (c_, "ready")]
    assert got(by_job) == [(lone, "cancelled")]
    assert got(by_wf) == [(wf["jobs"]["x"], "cancelled"), (wf["jobs"]["y"], "cancelled")]
    assert got(both) == [(a, "ready")]


def test_types_filter_gives_only_those_events(gateways, workers, db):
    gw = start(gateways)
    c = SSE(gw, "types=worker,dlq").ready()
    stats = SSE(gw, "types=stats").ready()
    w = workers.start(concurrency=2, queues="doomed")
    job = enqueue(gw, kind="fail", queue="doomed", payload={"message": "nope", "retryable": False})
    events = c.until(lambda e: e.event == "dlq", what="the dlq event")
    assert {e.event for e in events} <= {"worker", "dlq"}, [(e.event, e.data) for e in events]
    joined = [e for e in events if e.event == "worker" and e.data["id"] == w.name]
    assert joined and joined[0].data["state"] == "active" and set(joined[0].data) == {"id", "host", "state"}
    assert events[-1].data == {"id": job, "queue": "doomed", "kind": "fail", "attempt": 1, "error": "nope"}

    w.proc.terminate()
    events = c.until(lambda e: e.event == "worker" and e.data["id"] == w.name and e.data["state"] == "left",
                     what="the worker leaving")
    assert {e.event for e in events} == {"worker"}, [(e.event, e.data) for e in events]

    events = stats.until(lambda e: e.event == "stats", what="a stats event")
    assert {e.event for e in events} == {"stats"}
    assert {e.event for e in stats.quiet(1.5, at_most=2.5) if e.event} == {"stats"}


# ---------------------------------------------------------------- Last-Event-ID

@pytest.mark.parametrize("how", ["header", "query"])
def test_last_event_id_replays_exactly_the_missed_events(gateways, db, how):
    gw = start(gateways)
    watcher = SSE(gw, "types=job").ready()
    first = SSE(gw, "types=job").ready()
    a = enqueue(gw, kind="noop")
    last = first.until(lambda e: e.is_job(a), what="a")[-1].id
    first.close()

    b = enqueue(gw, kind="noop")
    c = enqueue(gw, kind="noop")
    assert gw.post(f"/api/jobs/{a}/cancel")[0] == 200
    watcher.until(lambda e: e.is_job(a, "cancelled"), what="the gateway to see the missed events")

    if how == "header":
        again = SSE(gw, "types=job", headers={"Last-Event-ID": str(last)}).ready()
    else:
        again = SSE(gw, f"types=job&last_event_id={last}").ready()
    d = enqueue(gw, kind="noop")
    events = again.until(lambda e: e.is_job(d), what="the new event after the replay")
    assert job_log(events) == [(b, "ready"), (c, "ready"), (a, "cancelled"), (d, "ready")]
    assert all(e.id > last for e in events)
    assert_increasing(events)


def test_last_event_id_older_than_memory_is_replayed_from_the_database(gateways, db):
    gw = start(gateways, sse__ring_events=1024)
    first = SSE(gw, "types=job").ready()
    a = enqueue(gw, kind="noop")
    last = first.until(lambda e: e.is_job(a), what="a")[-1].id
    first.close()

    watcher = SSE(gw, "kind=seen").ready()
    missed = enqueue_batch(gw, [{"kind": "bulk"}] * 1500)  # more than the ring holds
    seen = enqueue(gw, kind="seen")
    watcher.until(lambda e: e.is_job(seen), what="the gateway to relay the batch")
    missed.append(seen)

    again = SSE(gw, "types=job", headers={"Last-Event-ID": str(last)}).ready()
    d = enqueue(gw, kind="noop")
    events = again.until(lambda e: e.is_job(d), timeout=20, what="the new event after the replay")
    assert [e.event for e in events if e.event != "job"] in ([], ["stats"], ["stats", "stats"])
    assert job_log(events) == [(i, "ready") for i in missed] + [(d, "ready")]
    assert_increasing(events)


def test_a_client_reconnecting_after_a_gateway_restart_gets_what_it_missed(gateways, db):
    gw = start(gateways)
    port = gw.port
    c = SSE(gw, "types=job").ready()
    a = enqueue(gw, kind="noop")
    last = c.until(lambda e: e.is_job(a), what="a")[-1].id

    gw.proc.terminate()
    assert gw.proc.wait(10) == 0
    with pytest.raises(EOFError):  # the stream ends with the gateway
        c.quiet(5)
    # While the gateway is down.
    b = db.execute("SELECT jobwheel.enqueue('missed')").fetchone()[0]
    c2 = db.execute("SELECT jobwheel.enqueue('missed', queue => 'mail')").fetchone()[0]
    db.execute("SELECT jobwheel.cancel(%s)", (a,))

    gw2 = start(gateways, port=port)
    again = SSE(gw2, "types=job", headers={"Last-Event-ID": str(last)}).ready()
    d = enqueue(gw2, kind="noop")
    events = again.until(lambda e: e.is_job(d), what="the new event after the replay")
    assert job_log(events) == [(b, "ready"), (c2, "ready"), (a, "cancelled"), (d, "ready")]
    assert all(e.id > last for e in events)
    assert_increasing(events)


def slow_feed_start(db):
    """Makes the gateway's change feed take a second to find its start
    position, as on a loaded database (jobwheel.feed_head() sleeps first)."""
    db.execute("CREATE OR REPLACE FUNCTION jobwheel.feed_head() RETURNS xid8 LANGUAGE plpgsql VOLATILE AS "
               "$$ BEGIN PERFORM pg_sleep(1); RETURN pg_snapshot_xmin(pg_current_snapshot()); END $$")


def test_a_client_reconnecting_at_once_after_a_restart_gets_what_it_missed(gateways, db):
    gw = start(gateways)
    port = gw.port
    c = SSE(gw, "types=job").ready()
    a = enqueue(gw, kind="noop")
    last = c.until(lambda e: e.is_job(a), what="a")[-1].id
    gw.proc.terminate()
    assert gw.proc.wait(10) == 0
    b = db.execute("SELECT jobwheel.enqueue('missed')").fetchone()[0]  # while the gateway is down

    slow_feed_start(db)
    gw2 = gateways.start(port=port)  # ready: /readyz answers 200
    again = SSE(gw2, "types=job", headers={"Last-Event-ID": str(last)}).ready()
    wait_live(gw2)
    d = enqueue(gw2, kind="noop")
    events = again.until(lambda e: e.is_job(d), what="the new event")
    assert job_log(events) == [(b, "ready"), (d, "ready")]


def test_a_client_connected_once_ready_gets_every_later_event(gateways, db):
    slow_feed_start(db)
    gw = gateways.start()  # ready: /readyz answers 200
    c = SSE(gw, "types=job").ready()  # the stream is open
    job = enqueue(gw, kind="noop")
    wait_live(gw)
    later = enqueue(gw, kind="noop")
    events = c.until(lambda e: e.is_job(later), what="the later job")
    assert job_log(events) == [(job, "ready"), (later, "ready")]


# ---------------------------------------------------------------- keepalive and stats

def test_keepalive_comments_on_a_quiet_stream(gateways, db):
    gw = start(gateways, sse__keepalive_ms=200)
    c = SSE(gw, "types=coordinator").ready()
    t0 = time.monotonic()
    blocks = []
    while time.monotonic() - t0 < 1.5:
        blocks.append(c.next(2))
    keepalives = [b for b in blocks if b.comments == ["keepalive"] and b.event is None]
    assert len(keepalives) >= 4, blocks
    assert all(b.event is None for b in blocks), blocks


def test_stats_every_second_with_counts_that_follow_the_jobs(gateways, workers, db):
    gw = start(gateways)
    c = SSE(gw, "types=stats").ready()
    enqueue_batch(gw, [{"kind": "noop", "queue": "st"}, {"kind": "noop", "queue": "st"},
                       {"kind": "noop", "queue": "st", "delay_ms": 600000}])
    t0 = time.monotonic()
    stats = [e for e in c.quiet(1.5, at_most=3.5) if e.event]
    elapsed = time.monotonic() - t0
    assert {e.event for e in stats} == {"stats"}
    assert int(elapsed) - 1 <= len(stats) <= int(elapsed) + 1, (len(stats), elapsed)
    for e in stats:
        assert set(e.data) == {"at", "queues"}, e.data
        parse_ts(e.data["at"])
        for q in e.data["queues"]:
            assert set(q) == {"name", "counts", "completions_per_s"}, q
            assert set(q["counts"]) == {"blocked", "scheduled", "ready", "running", "succeeded", "dead",
                                        "cancelled"}, q
    st = [q for q in stats[-1].data["queues"] if q["name"] == "st"]
    assert st and st[0]["counts"]["ready"] == 2 and st[0]["counts"]["scheduled"] == 1, stats[-1].data

    workers.start(concurrency=2, queues="st")

    def st_counts(e):
        q = [q for q in e.data["queues"] if q["name"] == "st"]
        return q[0] if q else None
    events = c.until(lambda e: e.event == "stats" and st_counts(e)["counts"]["succeeded"] == 2, timeout=10,
                     what="stats with 2 succeeded")
    last = st_counts(events[-1])
    assert last["counts"]["ready"] == 0 and last["counts"]["scheduled"] == 1
    events += c.until(lambda e: e.event == "stats", what="one more stats event")
    assert sum(st_counts(e)["completions_per_s"] for e in events) == 2


# ---------------------------------------------------------------- slow clients

def test_a_slow_client_gets_a_dropped_notice_instead_of_every_job_event(gateways, db):
    slow_gw = start(gateways, sse__max_job_events_per_s=5)
    normal_gw = start(gateways)
    # kind=noop: the readiness probes of normal_gw may still be on their way
    # through slow_gw's feed, and must not count against the budget.
    slow = SSE(slow_gw, "types=job&kind=noop").ready()
    normal = SSE(normal_gw, "types=job&kind=noop").ready()

    ids = enqueue_batch(normal_gw, [{"kind": "noop"}] * 200)
    events = slow.until(lambda e: e.event == "dropped", what="a dropped notice")
    jobs = [e for e in events if e.event == "job"]
    dropped = events[-1].data
    assert set(dropped) == {"dropped"} and dropped["dropped"] > 0, dropped
    assert len(jobs) <= 10, len(jobs)
    assert len(jobs) + dropped["dropped"] == 200, (len(jobs), dropped)
    assert set(e.data["id"] for e in jobs) <= set(ids)

    got = normal.until(lambda e: e.is_job(ids[-1]), what="all 200 on the normal gateway")
    assert job_log(got) == [(i, "ready") for i in ids]
    assert "dropped" not in {e.event for e in got}

    # Within its budget again, the slow client gets every event.
    time.sleep(1.0)  # the budget refills at 5 per second
    more = enqueue_batch(normal_gw, [{"kind": "noop"}] * 3)
    got = slow.until(lambda e: e.is_job(more[-1]), what="events within the budget")
    assert job_log(got) == [(i, "ready") for i in more]
    wait_for(lambda: metrics(slow_gw)["jobwheel_sse_events_dropped_total"] == dropped["dropped"],
             what="the dropped counter")


def test_a_client_that_never_reads_does_not_hold_up_the_others(gateways, db):
    gw = start(gateways)
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", gw.port))
    stuck.sendall(b"GET /api/events HTTP/1.1\r\nHost: test\r\n\r\n")  # and never reads
    markers = SSE(gw, "kind=marker").ready()
    stats = SSE(gw, "types=stats").ready()
    wait_for(lambda: metrics(gw)["jobwheel_sse_clients"] == 3, what="3 SSE clients")

    # Megabytes of events, several times what the stuck client's buffers
    # hold: 4 x 1000 jobs cancelled with 8 kB of error text each.
    for _ in range(4):
        enqueue_batch(gw, [{"kind": "flood"}] * 1000)
        db.execute("UPDATE jobwheel.jobs SET state = 'cancelled', finished_at = now(), "
                   "last_error = repeat('x', 8000) WHERE kind = 'flood' AND state = 'ready'")
    stats.until(lambda e: e.event == "stats", timeout=2, what="stats within 2 s")
    marker = enqueue(gw, kind="marker")
    markers.until(lambda e: e.is_job(marker), timeout=2, what="the marker within 2 s")
    stats.until(lambda e: e.event == "stats", timeout=2, what="stats within 2 s")
    assert metrics(gw)["jobwheel_sse_clients"] == 3  # the stuck one is still there, just behind
    stuck.close()


def test_a_reader_behind_gets_whole_events_between_keepalives_and_notices(gateways, db):
    """A client whose socket is full gets the rest of the event it was in
    the middle of before any keepalive comment or dropped notice."""
    gw = start(gateways, sse__keepalive_ms=100)
    c = SSE(gw, "types=job", rcvbuf=8192).ready()
    for _ in range(3):  # 3 x 12 MB: the gateway's writes to c stop midway, again and again
        enqueue_batch(gw, [{"kind": "flood"}] * 1500)
        db.execute("UPDATE jobwheel.jobs SET state = 'cancelled', finished_at = now(), "
                   "last_error = repeat('x', 8000) WHERE kind = 'flood' AND state = 'ready'")
    # Read slowly for a while, then at full speed; every block must be a
    # whole event, a whole comment or `retry:` (the parser checks).
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        c.sock.settimeout(5)
        chunk = c.sock.recv(2048)
        assert chunk
        c.buf += chunk
        time.sleep(0.002)  # deliberately slow: the gateway's writes to c must stall midway
    # Its budget is spent: job events (the marker too, perhaps) give way to
    # dropped notices; every block read so far was whole (the parser checks).
    events = c.until(lambda e: e.event == "dropped", timeout=30, what="a dropped notice")
    assert events[-1].data["dropped"] > 0
    assert all(e.event in ("job", "stats", "dropped") for e in events)


# ---------------------------------------------------------------- auth and parameters

def test_events_need_a_token_once_tokens_exist_and_take_access_token(dsn, gateways, db):
    gw = start(gateways)
    read = make_token(dsn, "dash", "read")
    c = SSE(gw).read_head()
    assert c.status == 401 and c.body["error"]["code"] == "unauthorized", c.body
    c = SSE(gw, "access_token=jw_" + "0" * 64).read_head()
    assert c.status == 401, c.body

    by_query = SSE(gw, f"types=job&access_token={read}").ready()
    by_header = SSE(gw, "types=job", token=read).ready()
    job = enqueue(gw, token=make_token(dsn, "app", "write"), kind="noop")
    for c in (by_query, by_header):
        assert c.until(lambda e: e.is_job(job), what="the job event")[-1].data["state"] == "ready"
        assert c.headers["content-type"].startswith("text/event-stream")


@pytest.mark.parametrize("query, headers, field", [
    ("types=bogus", None, "types"),
    ("types=job,bogus", None, "types"),
    ("queue=Bad", None, "queue"),
    ("kind=a%20b", None, "kind"),
    ("job=abc", None, "job"),
    ("job=0", None, "job"),
    ("workflow_id=x", None, "workflow_id"),
    ("last_event_id=abc", None, "last_event_id"),
    ("last_event_id=%2B5", None, "last_event_id"),
    ("last_event_id=%20-1", None, "last_event_id"),
    ("last_event_id=-1", None, "last_event_id"),
    ("", {"Last-Event-ID": "+5"}, "last_event_id"),
    ("", {"Last-Event-ID": "abc"}, "last_event_id"),
    ("foo=1", None, None),
])
def test_bad_event_stream_parameters_are_400(gateways, db, query, headers, field):
    gw = start(gateways)
    c = SSE(gw, query, headers=headers).read_head()
    assert_error(c.status, c.body, 400, "bad_request", field)
