# SPDX-License-Identifier: MIT
"""What jobwheel-gateway refuses before it touches a job: unknown routes
(404), other methods (405 with Allow), bodies that are not a JSON object or
not JSON (400, 415), bad fields of a job or a batch element, bad ids and bad
query parameters; each refusal in the error shape of docs/API.md and
writing nothing."""
import pytest

from conftest import one
from gateway_client import ANY, assert_error, assert_post_refused, count, enqueue, post_raw, written


# ---------------------------------------------------------------- methods, routes

@pytest.mark.parametrize("method, path, allow", [
    ("DELETE", "/api/jobs", "GET, POST"),
    ("PUT", "/api/jobs/1", "GET"),
    ("DELETE", "/api/jobs/1", "GET"),
    ("GET", "/api/jobs/1/cancel", "POST"),
    ("GET", "/api/jobs/1/retry", "POST"),
    ("PUT", "/api/workflows", "GET, POST"),
    ("POST", "/api/workflows/1", "GET"),
    ("POST", "/api/queues", "GET"),
    ("GET", "/api/queues/mail/pause", "POST"),
    ("POST", "/api/workers", "GET"),
    ("POST", "/api/dlq", "GET"),
    ("GET", "/api/dlq/requeue", "POST"),
    ("POST", "/api/events", "GET"),
    ("POST", "/healthz", None),
])
def test_a_route_with_another_method_is_405(gateways, db, method, path, allow):
    gw = gateways.start()
    before = written(db)
    status, value, headers = gw.request(method, path, body={"kind": "a"} if method != "GET" else None)
    assert_error(status, value, 405, "method_not_allowed")
    if allow:  # every method the route has, as HTTP asks of a 405
        got = {m.strip() for m in headers.get("Allow", "").split(",") if m.strip()}
        assert got == set(allow.split(", ")), headers
    assert written(db) == before


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/nope"),
    ("GET", "/api/jobs/1/bogus"),
    ("POST", "/api/jobs/1/delete"),
    ("GET", "/api/queues/mail"),
    ("GET", "/api"),
    ("GET", "/api/"),
    ("POST", "/api/nope"),
    ("GET", "/no-such-file.html"),
])
def test_an_unknown_route_is_404(gateways, db, method, path):
    gw = gateways.start()
    status, value, _ = gw.request(method, path, body={"kind": "a"} if method == "POST" else None)
    assert_error(status, value, 404, "not_found")
    assert count(db) == 0


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize("data, content_type, status, code", [
    (b'{"kind": ', "application/json", 400, "bad_request"),
    (b'{"kind": "a"} x', "application/json", 400, "bad_request"),
    (b"", "application/json", 400, "bad_request"),
    (b'[{"kind": "a"}]', "application/json", 400, "bad_request"),
    (b'"noop"', "application/json", 400, "bad_request"),
    (b"null", "application/json", 400, "bad_request"),
    (b"42", "application/json", 400, "bad_request"),
    (b'{"kind": "a"}', "text/plain", 415, "unsupported_media_type"),
    (b'{"kind": "a"}', "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    (b'{"kind": "a"}', "application/jsonx", 415, "unsupported_media_type"),
    (b'{"kind": "a"}', None, 415, "unsupported_media_type"),
    (b'{"kind": "a", "payload": ' + b'{"a":' * 70 + b"1" + b"}" * 70 + b"}",
     "application/json", 400, "bad_request"),
])
def test_enqueue_refuses_a_body_that_is_not_a_json_object(gateways, db, data, content_type, status, code):
    gw = gateways.start()
    before = written(db)
    got, value = post_raw(gw, "/api/jobs", data, content_type)
    assert_error(got, value, status, code)
    assert written(db) == before


def test_json_content_type_with_charset_is_accepted(gateways, db):
    gw = gateways.start()
    status, value = post_raw(gw, "/api/jobs", b'{"kind": "a"}', "application/json; charset=utf-8")
    assert status == 201, value
    assert count(db) == 1


@pytest.mark.parametrize("job, field", [
    ({}, "kind"),
    ({"kind": 5}, "kind"),
    ({"kind": "Bad Kind"}, "kind"),
    ({"kind": ""}, "kind"),
    ({"kind": "a", "payload": [1]}, "payload"),
    ({"kind": "a", "payload": "x"}, "payload"),
    ({"kind": "a", "priority": "1"}, "priority"),
    ({"kind": "a", "priority": 1.5}, "priority"),
    ({"kind": "a", "priority": 2 ** 31}, "priority"),
    ({"kind": "a", "max_attempts": 0}, "max_attempts"),
    ({"kind": "a", "max_attempts": 1001}, "max_attempts"),
    ({"kind": "a", "timeout_ms": 0}, "timeout_ms"),
    ({"kind": "a", "backoff_base_ms": -1}, "backoff_base_ms"),
    ({"kind": "a", "delay_ms": -1}, "delay_ms"),
    ({"kind": "a", "delay_ms": "5"}, "delay_ms"),
    ({"kind": "a", "queue": "Mail"}, "queue"),
    ({"kind": "a", "queue": ""}, "queue"),
    ({"kind": "a", "queue": "with space"}, "queue"),
    ({"kind": "a", "queue": "q" * 65}, "queue"),
    ({"kind": "a", "queue": 5}, "queue"),
    ({"kind": "a", "queue": "mail/x"}, "queue"),
    ({"kind": "a", "prority": 1}, "prority"),
    ({"kind": "a", "Kind": "b"}, "Kind"),
    ({"kind": "a", "run_at": "tomorrow"}, "run_at"),
    ({"kind": "a", "run_at": "2026-11-27 12:00"}, "run_at"),
    ({"kind": "a", "run_at": "2026-11-27"}, "run_at"),
    ({"kind": "a", "run_at": "2026-11-27T12:00:00"}, "run_at"),
    ({"kind": "a", "run_at": 1764244800}, "run_at"),
    ({"kind": "a", "run_at": "2026-13-45T12:00:00Z"}, "run_at"),
    ({"kind": "a", "run_at": "2026-11-27T25:61:00Z"}, "run_at"),
    ({"kind": "a", "depends_on": "1"}, "depends_on"),
    ({"kind": "a", "depends_on": [0]}, "depends_on"),
    ({"kind": "a", "depends_on": ["x"]}, "depends_on"),
    ({"kind": "a", "trigger": "any"}, "trigger"),
    ({"kind": "a", "unique_key": ""}, "unique_key"),
    ({"kind": "a", "unique_key": 5}, "unique_key"),
])
def test_enqueue_refuses_a_bad_field_naming_it(gateways, db, job, field):
    gw = gateways.start()
    assert_post_refused(gw, db, "/api/jobs", job, field)


def test_enqueue_refuses_run_at_with_delay_ms(gateways, db):
    gw = gateways.start()
    status, value = gw.post("/api/jobs", {"kind": "a", "run_at": "2030-01-01T00:00:00Z", "delay_ms": 5})
    assert_error(status, value, 400, "bad_request")
    assert value["error"].get("field") in ("run_at", "delay_ms"), value
    assert count(db) == 0


@pytest.mark.parametrize("body, field", [
    ({"jobs": [{"kind": "a"}, {"kind": "b"}, {"kind": "c", "priority": "x"}]}, "jobs[2].priority"),
    ({"jobs": [{"kind": "a"}, {"kind": "b", "prority": 1}]}, "jobs[1].prority"),
    ({"jobs": [{"kind": "a"}, {"queue": "mail"}]}, "jobs[1].kind"),
    ({"jobs": [{"kind": "a"}, {"kind": "b", "run_at": "soon"}]}, "jobs[1].run_at"),
    ({"jobs": [{"kind": "a"}, {"kind": "b", "run_at": "2026-02-30T10:00:00Z"}]}, "jobs[1].run_at"),
    ({"jobs": [{"kind": "a"}, 5]}, "jobs[1]"),
    ({"jobs": [{"kind": "a"}, [{"kind": "b"}]]}, "jobs[1]"),
    ({"jobs": []}, "jobs"),
    ({"jobs": {"kind": "a"}}, "jobs"),
    ({}, "jobs"),
    ({"jobs": [{"kind": "a"}], "extra": 1}, "extra"),
])
def test_batch_refuses_a_bad_element_naming_it_and_writes_none(gateways, db, body, field):
    gw = gateways.start()
    assert_post_refused(gw, db, "/api/jobs/batch", body, field)


def test_batch_with_an_unknown_parent_writes_none_and_names_the_element(gateways, db):
    gw = gateways.start()
    before = written(db)
    status, value = gw.post("/api/jobs/batch", {"jobs": [{"kind": "a"}, {"kind": "b", "depends_on": [987654]}]})
    assert_error(status, value, 400, "bad_request")
    assert "jobs[1]" in value["error"]["message"] and "987654" in value["error"]["message"], value
    assert written(db) == before


def test_batch_error_found_by_the_database_names_the_element_field(gateways, db):
    """As for errors the gateway finds itself (jobs[2].priority), `field`
    names the element and its field."""
    gw = gateways.start()
    status, value = gw.post("/api/jobs/batch", {"jobs": [{"kind": "a"}, {"kind": "b", "depends_on": [987654]}]})
    assert_error(status, value, 400, "bad_request", "jobs[1].depends_on")
    assert count(db) == 0
@pytest.mark.parametrize("method, path", [
    ("GET", "/api/jobs/abc"),
    ("GET", "/api/jobs/0"),
    ("GET", "/api/jobs/-1"),
    ("GET", "/api/jobs/1.5"),
    ("GET", "/api/jobs/+1"),
    ("GET", "/api/jobs/99999999999999999999"),
    ("POST", "/api/jobs/abc/cancel"),
    ("POST", "/api/jobs/0/retry"),
    ("GET", "/api/workflows/abc"),
    ("GET", "/api/workflows/0"),
])
def test_a_bad_id_is_400(gateways, db, method, path):
    gw = gateways.start()
    job = enqueue(gw, kind="a")
    before = written(db)
    status, value, _ = gw.request(method, path)
    assert_error(status, value, 400, "bad_request", "id")
    assert written(db) == before
    assert one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", job) == "ready"


@pytest.mark.parametrize("path, field", [
    ("/api/jobs?limit=0", "limit"),
    ("/api/jobs?limit=1001", "limit"),
    ("/api/jobs?limit=abc", "limit"),
    ("/api/jobs?limit=", "limit"),
    ("/api/jobs?limit=5x", "limit"),
    ("/api/jobs?before=0", "before"),
    ("/api/jobs?before=x", "before"),
    ("/api/jobs?state=bogus", "state"),
    ("/api/jobs?state=READY", "state"),
    ("/api/jobs?queue=Bad", "queue"),
    ("/api/jobs?kind=a%20b", "kind"),
    ("/api/jobs?workflow_id=x", "workflow_id"),
    ("/api/jobs?foo=1", ANY),
    ("/api/jobs?limit=5&sort=id", ANY),
    ("/api/dlq?limit=0", "limit"),
    ("/api/dlq?state=dead", ANY),
    ("/api/dlq?queue=Bad", "queue"),
    ("/api/workflows?limit=abc", "limit"),
    ("/api/workflows?queue=mail", ANY),
    ("/api/queues?x=1", ANY),
    ("/api/workers?x=1", ANY),
    ("/api/jobs/1?x=1", ANY),
])
def test_a_bad_query_parameter_is_400(gateways, db, path, field):
    gw = gateways.start()
    enqueue(gw, kind="a")
    status, value = gw.get(path)
    assert_error(status, value, 400, "bad_request", field)
    if field is ANY:  # an unknown parameter: the message names it
        name = path.split("?")[1].split("&")[-1].split("=")[0]
        assert name in value["error"]["message"], value


def test_a_query_parameter_on_a_post_is_refused_and_writes_nothing(gateways, db):
    gw = gateways.start()
    status, value = gw.post("/api/jobs?queue=mail", {"kind": "a"})
    assert_error(status, value, 400, "bad_request")
    assert count(db) == 0
