# SPDX-License-Identifier: MIT
"""jobwheel-gateway's bearer tokens and scopes: an open API on loopback until
a token exists, read/write/admin scopes, revocation, and a non-loopback
listen address refused while no token exists."""
import http.client
import socket
import subprocess

from conftest import GATEWAY, clean_env, cli, free_port, one, wait_for
from gateway_client import (assert_error, enqueue, enqueue_batch, kill_jobs, make_token, submit_workflow,
                            written)


# ---------------------------------------------------------------- tokens and scopes

def test_open_api_until_a_token_exists_then_scopes_apply(dsn, gateways, db):
    gw = gateways.start()
    # No token yet: everything is open (on loopback).
    assert gw.get("/api/jobs")[0] == 200
    job = enqueue(gw, kind="a")
    assert gw.post("/api/queues/mail/pause")[0] == 200

    read = make_token(dsn, "reader", "read")  # no gateway restart
    write = make_token(dsn, "writer", "write")
    admin = make_token(dsn, "admin", "admin")
    before = written(db)

    for method, path, body in (("GET", "/api/jobs", None), ("GET", f"/api/jobs/{job}", None),
                               ("POST", "/api/jobs", {"kind": "a"}), ("POST", f"/api/jobs/{job}/cancel", None),
                               ("POST", "/api/queues/mail/resume", None), ("GET", "/api/events", None)):
        status, value, headers = gw.request(method, path, body=body)
        assert_error(status, value, 401, "unauthorized")
        assert headers.get("WWW-Authenticate", "").startswith("Bearer"), headers
        status, value, _ = gw.request(method, path, body=body, token="jw_" + "0" * 64)
        assert_error(status, value, 401, "unauthorized")
        status, value, _ = gw.request(method, path, body=body, headers={"Authorization": "Basic " + read})
        assert_error(status, value, 401, "unauthorized")
    assert written(db) == before

    # read: GETs only.
    for path in ("/api/jobs", f"/api/jobs/{job}", "/api/queues", "/api/workers", "/api/dlq", "/api/workflows"):
        assert gw.get(path, token=read)[0] == 200, path
    status, value = gw.post("/api/jobs", {"kind": "a"}, token=read)
    assert_error(status, value, 403, "forbidden")
    status, value = gw.post(f"/api/jobs/{job}/cancel", token=read)
    assert_error(status, value, 403, "forbidden")
    status, value = gw.post("/api/workflows", {"jobs": [{"key": "a", "kind": "a"}]}, token=read)
    assert_error(status, value, 403, "forbidden")
    assert written(db) == before

    # write: also enqueue, cancel, retry; not pause or the DLQ.
    second = enqueue(gw, token=write, kind="b")
    assert enqueue_batch(gw, [{"kind": "c"}], token=write)
    assert submit_workflow(gw, token=write)
    assert gw.post(f"/api/jobs/{second}/cancel", token=write) == (200, {"id": second, "state": "cancelled"})
    assert gw.post(f"/api/jobs/{second}/retry", token=write) == (200, {"id": second, "state": "ready"})
    status, value = gw.post("/api/queues/mail/resume", token=write)
    assert_error(status, value, 403, "forbidden")
    assert one(db, "SELECT paused FROM jobwheel.queues WHERE name = 'mail'") is True
    status, value = gw.post("/api/dlq/requeue", {"all": True}, token=write)
    assert_error(status, value, 403, "forbidden")

    # admin: everything.
    assert gw.post("/api/queues/mail/resume", token=admin) == (200, {"name": "mail", "paused": False})
    assert one(db, "SELECT paused FROM jobwheel.queues WHERE name = 'mail'") is False
    kill_jobs(db, [job])
    assert gw.post("/api/dlq/requeue", {"ids": [job]}, token=admin) == (200, {"requeued": 1})
    assert enqueue(gw, token=admin, kind="d")

    # The token is taken case-insensitively after "Bearer" as HTTP says.
    assert gw.request("GET", "/api/jobs", headers={"Authorization": "bearer " + read})[0] == 200

    # Revoked: refused at once, the others still work.
    cli(dsn, "token", "revoke", "reader")
    status, value = gw.get("/api/jobs", token=read)
    assert_error(status, value, 401, "unauthorized")
    assert gw.get("/api/jobs", token=write)[0] == 200

    # These never need a token.
    for path in ("/healthz", "/readyz", "/metrics", "/"):
        assert gw.request("GET", path)[0] == 200, path


def test_non_loopback_listen_refused_while_no_token_exists(dsn, db, tmp_path):
    port = free_port()
    r = subprocess.run([GATEWAY, "--set", "database.url=" + dsn, "--listen", f"0.0.0.0:{port}"],
                       capture_output=True, text=True, env=clean_env(), timeout=30)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "gateway.listen" in r.stderr, r.stderr
    with socket.socket() as s:  # and nothing listens there
        assert s.connect_ex(("127.0.0.1", port)) != 0

    # With a token it listens, and asks for it.
    token = make_token(dsn, "ops", "read")
    log = open(tmp_path / "gw-public.log", "w")
    p = subprocess.Popen([GATEWAY, "--set", "database.url=" + dsn, "--listen", f"0.0.0.0:{port}"],
                         stdout=log, stderr=subprocess.STDOUT, env=clean_env())
    try:
        def get(path, token=None):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", path, headers={"Authorization": "Bearer " + token} if token else {})
            return c.getresponse().status

        def ready():
            assert p.poll() is None, (tmp_path / "gw-public.log").read_text()
            try:
                return get("/readyz") == 200
            except OSError:
                return False
        wait_for(ready, 10, what="the public gateway's /readyz")
        assert get("/api/jobs") == 401
        assert get("/api/jobs", token) == 200
        # Revoking the last token must not reopen a public API.
        cli(dsn, "token", "revoke", "ops")
        assert get("/api/jobs") == 401
        assert get("/api/jobs", token) == 401
    finally:
        p.kill()
        p.wait()
        log.close()
