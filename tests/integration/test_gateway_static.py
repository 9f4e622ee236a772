# SPDX-License-Identifier: MIT
"""jobwheel-gateway outside /api: /healthz, /readyz and the dashboard's
static files with their security headers, served only from the web root."""
import pytest

from gateway_client import connect, recv_response


# ---------------------------------------------------------------- health, static

def test_health_readiness_metrics_and_dashboard(gateways, db):
    gw = gateways.start()
    assert gw.get("/healthz") == (200, {"status": "ok"})
    assert gw.get("/readyz") == (200, {"status": "ready"})
    status, text, headers = gw.request("GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain") and "jobwheel_" in text
    status, text, headers = gw.request("GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and "<html" in text.lower()


def test_dashboard_files_carry_security_headers(gateways, db):
    gw = gateways.start()
    for path in ("/", "/app.js"):
        status, _, headers = gw.request("GET", path)
        assert status == 200, path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        csp = {d.split()[0]: d.split()[1:] for d in headers["Content-Security-Policy"].split(";") if d.strip()}
        assert csp["default-src"] == ["'self'"] and "script-src" not in csp, csp  # no inline script, no eval
        assert csp["frame-ancestors"] == ["'none'"], csp


@pytest.mark.parametrize("path", ["/../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                                  "/..%2f..%2f..%2fetc%2fpasswd", "/index.html/../../../../etc/passwd",
                                  "//etc/passwd", "/.git/config", "/%00index.html", "/app.js%00.html"])
def test_static_files_only_from_the_web_root(gateways, db, path):
    gw = gateways.start()
    with connect(gw) as s:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        status, _, body, _ = recv_response(s)
    assert status in (400, 404), (path, status)
    assert b"root:" not in body and b"[core]" not in body
