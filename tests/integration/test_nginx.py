# SPDX-License-Identifier: MIT
"""deploy/nginx/ in front of a real gateway. The shipped files, with only what
must differ on a test box changed (loopback ports, certificate, upstream port,
ACME webroot, log path), pass `nginx -t`, carry REST over TLS, redirect plain
HTTP to HTTPS except the ACME challenge, and pass Server-Sent Events through
as they are written, not when a proxy buffer fills."""
import http.client
import json
import os
import shutil
import ssl
import subprocess
import time

import pytest

from conftest import ROOT, free_port, one, wait_for
from gateway_client import assert_error, make_token, metrics
from test_gateway_sse import start as start_live_gateway

NGINX = "/usr/sbin/nginx"
OPENSSL = shutil.which("openssl")
DEPLOY = os.path.join(ROOT, "deploy", "nginx")
HOST = "jobwheel.example.com"
LIVE = f"/etc/letsencrypt/live/{HOST}"

pytestmark = pytest.mark.skipif(not os.access(NGINX, os.X_OK) or OPENSSL is None,
                                reason="needs /usr/sbin/nginx and openssl (apt-get install nginx-light openssl)")


# ---------------------------------------------------------------- rendering

def substitute(name, text, replacements):
    """Each (old, new, count): old must occur exactly count times in the
    shipped file, so a change of its shape fails here rather than testing
    something else."""
    for old, new, count in replacements:
        found = text.count(old)
        assert found == count, f"deploy/nginx/{name}: {old!r} occurs {found} times, the test expects {count}: " \
                               "the shipped file changed shape, update the rendering in test_nginx.py"
        text = text.replace(old, new)
    return text


def shipped(name):
    with open(os.path.join(DEPLOY, name)) as f:
        return f.read()


def render_tls(box, upstream_port):
    return substitute("jobwheel.conf", shipped("jobwheel.conf"), [
        ("listen 80;", f"listen 127.0.0.1:{box.http_port};", 1),
        ("listen [::]:80;", "", 1),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{box.https_port} ssl http2;", 1),
        ("listen [::]:443 ssl http2;", "", 1),
        (f"{LIVE}/fullchain.pem", box.cert, 1),
        (f"{LIVE}/privkey.pem", box.key, 1),
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream_port};", 1),
        ("root /var/www/letsencrypt;", f"root {box.webroot};", 1),
        ("/var/log/nginx/jobwheel.access.log", box.path("site-access.log"), 2),
    ])


def render_http_only(box, upstream_port):
    return substitute("jobwheel-http-only.conf", shipped("jobwheel-http-only.conf"), [
        ("listen 80;", f"listen 127.0.0.1:{box.http_port};", 1),
        ("listen [::]:80;", "", 1),
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream_port};", 1),
        ("root /var/www/letsencrypt;", f"root {box.webroot};", 1),
    ])


# ---------------------------------------------------------------- nginx

class Nginx:
    """nginx with a private prefix under base: a minimal top-level nginx.conf
    (what Debian's sets that matters here, with pid, logs and temp paths
    inside base) that includes one site file."""

    def __init__(self, base):
        self.base = base
        self.http_port = free_port()
        self.https_port = free_port()
        self.webroot = self.path("webroot")
        self.cert, self.key = self.path("cert.pem"), self.path("key.pem")
        self.errlog = self.path("error.log")
        self.proc = None
        os.makedirs(os.path.join(self.webroot, ".well-known", "acme-challenge"))
        os.makedirs(self.path("temp"))

    def path(self, name):
        return os.path.join(self.base, name)

    def make_cert(self):
        """A self-signed certificate for HOST and 127.0.0.1; it is its own CA."""
        subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "2", "-subj", f"/CN={HOST}",
                        "-addext", f"subjectAltName=DNS:{HOST},IP:127.0.0.1",
                        "-keyout", self.key, "-out", self.cert],
                       check=True, capture_output=True)
        return self

    def context(self):
        return ssl.create_default_context(cafile=self.cert)

    def configure(self, site):
        with open(self.path("site.conf"), "w") as f:
            f.write(site)
        temp = self.path("temp")
        with open(self.path("nginx.conf"), "w") as f:
            # Workers run as root when the test does: the default user (nobody)
            # could not read the webroot under pytest's private tmp_path.
            f.write(("user root;\n" if os.geteuid() == 0 else "") + f"""\
worker_processes 1;
pid {self.path("nginx.pid")};
error_log {self.errlog} info;
events {{ worker_connections 256; }}
http {{
    sendfile on;
    tcp_nopush on;
    gzip on;
    default_type application/octet-stream;
    access_log {self.path("access.log")};
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {self.path("site.conf")};
}}
""")
        return self

    def cmd(self, *args):
        return [NGINX, "-p", self.base, "-e", self.errlog, "-c", self.path("nginx.conf"), *args]

    def check(self):
        """`nginx -t`: (passed, its output)."""
        r = subprocess.run(self.cmd("-t"), capture_output=True, text=True)
        return r.returncode == 0 and "test is successful" in r.stderr, r.stderr

    def log(self):
        try:
            with open(self.errlog) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def start(self, probe):
        """Starts nginx in the foreground and polls probe() until it answers."""
        self.proc = subprocess.Popen(self.cmd("-g", "daemon off;"), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)

        def ready():
            assert self.proc.poll() is None, f"nginx exited {self.proc.returncode}:\n{self.log()}"
            try:
                return probe()
            except (OSError, http.client.HTTPException):
                return False
        wait_for(ready, 10, what="nginx to answer")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: fast shutdown, workers included
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    # requests, each on a new connection: (status, headers, body bytes)
    def request(self, scheme, method, path, body=None, token=None, headers=None):
        if scheme == "https":
            c = http.client.HTTPSConnection("127.0.0.1", self.https_port, timeout=10, context=self.context())
        else:
            c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if body is not None:
            body = body if isinstance(body, bytes) else json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def api(self, method, path, body=None, token=None):
        """A gateway route through HTTPS: (status, parsed JSON)."""
        status, headers, data = self.request("https", method, path, body, token)
        assert headers.get("content-type", "").startswith("application/json"), (status, headers, data[:300])
        return status, json.loads(data)


@pytest.fixture
def box(tmp_path):
    """An nginx prefix with a fresh self-signed certificate; nginx, if it was
    started, is stopped at the end of the test whatever happened."""
    n = Nginx(str(tmp_path / "nginx")).make_cert()
    try:
        yield n
    finally:
        n.stop()


def healthz(box, scheme):
    return lambda: box.request(scheme, "GET", "/healthz")[0] == 200


@pytest.fixture
def tls(box, gateways):
    """The shipped jobwheel.conf in front of a gateway whose change feed is
    live; yields (nginx, gateway)."""
    gw = start_live_gateway(gateways)
    box.configure(render_tls(box, gw.port)).start(healthz(box, "https"))
    return box, gw


# ---------------------------------------------------------------- nginx -t

def test_nginx_t_passes_on_both_shipped_configs(box, tmp_path):
    ok, out = box.configure(render_tls(box, free_port())).check()
    assert ok, f"nginx -t on deploy/nginx/jobwheel.conf:\n{out}"
    boot = Nginx(str(tmp_path / "boot"))
    ok, out = boot.configure(render_http_only(boot, free_port())).check()
    assert ok, f"nginx -t on deploy/nginx/jobwheel-http-only.conf:\n{out}"


def test_only_the_bootstrap_config_loads_before_the_certificate_exists(tmp_path):
    """The chicken-and-egg the bootstrap file exists for: with the real
    certificate paths, jobwheel.conf fails `nginx -t` until certbot has run;
    jobwheel-http-only.conf, shipped as is, passes."""
    if os.path.exists(f"{LIVE}/fullchain.pem"):
        pytest.skip(f"{LIVE} exists on this machine")
    boot = Nginx(str(tmp_path / "boot"))
    ok, out = boot.configure(shipped("jobwheel-http-only.conf")).check()
    assert ok, f"nginx -t on deploy/nginx/jobwheel-http-only.conf as shipped:\n{out}"
    full = Nginx(str(tmp_path / "full"))
    site = substitute("jobwheel.conf", shipped("jobwheel.conf"), [
        ("/var/log/nginx/jobwheel.access.log", full.path("site-access.log"), 2)])
    ok, out = full.configure(site).check()
    assert not ok and f"{LIVE}/fullchain.pem" in out, out


# ---------------------------------------------------------------- REST over TLS

def test_rest_over_https_with_a_token(tls, dsn, db):
    box, gw = tls
    write = make_token(dsn, "nginx-writer", "write")
    status, value = box.api("POST", "/api/jobs", {"kind": "through-nginx", "payload": {"n": 1}})
    assert_error(status, value, 401, "unauthorized")
    status, value = box.api("POST", "/api/jobs", {"kind": "through-nginx", "payload": {"n": 1}, "queue": "tls"},
                            token=write)
    assert status == 201 and value["state"] == "ready", value
    job = value["id"]
    status, value = box.api("GET", f"/api/jobs/{job}", token=write)
    assert status == 200, value
    assert (value["id"], value["kind"], value["queue"], value["payload"]) == (job, "through-nginx", "tls", {"n": 1})
    status, value = box.api("GET", "/api/jobs?queue=tls", token=write)
    assert status == 200 and [j["id"] for j in value["jobs"]] == [job], value
    assert one(db, "SELECT count(*) FROM jobwheel.jobs WHERE kind = 'through-nginx'") == 1


def test_bodies_up_to_the_gateway_limit_pass_larger_get_a_json_413(tls, dsn, db):
    """nginx's client_max_body_size matches gateway.max_body (1 MiB): a body
    just under it reaches the gateway, one just over is refused in the API's
    error shape (not an HTML 413, nor the 502 nginx gives when the gateway
    closes on a body it has not read)."""
    box, gw = tls
    write = make_token(dsn, "nginx-writer", "write")

    def body(size):
        envelope = json.dumps({"kind": "big", "payload": {"x": ""}}).encode()
        return envelope.replace(b'""', b'"' + b"a" * (size - len(envelope)) + b'"')
    limit = 1 << 20
    status, value = box.api("POST", "/api/jobs", body(limit), token=write)
    assert status == 201, value
    status, value = box.api("POST", "/api/jobs", body(limit + 1), token=write)
    assert_error(status, value, 413, "too_large")
    assert one(db, "SELECT count(*) FROM jobwheel.jobs WHERE kind = 'big'") == 1


# ---------------------------------------------------------------- plain HTTP

def test_http_redirects_to_https_except_the_acme_challenge(tls, db):
    box, gw = tls
    for method, path in [("GET", "/"), ("GET", "/api/jobs?state=dead&limit=5"), ("POST", "/api/jobs")]:
        body = {"kind": "never"} if method == "POST" else None
        status, headers, _ = box.request("http", method, path, body)
        assert status == 301, (method, path, status, headers)
        assert headers["location"] == f"https://{HOST}{path}", headers
    assert one(db, "SELECT count(*) FROM jobwheel.jobs WHERE kind = 'never'") == 0

    token = "x7Q-challenge_0123456789"
    with open(os.path.join(box.webroot, ".well-known", "acme-challenge", token), "w") as f:
        f.write(f"{token}.thumbprint")
    status, headers, data = box.request("http", "GET", f"/.well-known/acme-challenge/{token}")
    assert (status, data) == (200, f"{token}.thumbprint".encode()), (status, headers, data)
    assert headers["content-type"].startswith("text/plain"), headers
    status, _, _ = box.request("http", "GET", "/.well-known/acme-challenge/missing")
    assert status == 404


def test_the_bootstrap_config_serves_acme_and_proxies_over_http(box, gateways):
    gw = gateways.start()
    box.configure(render_http_only(box, gw.port)).start(healthz(box, "http"))
    with open(os.path.join(box.webroot, ".well-known", "acme-challenge", "tok"), "w") as f:
        f.write("tok.print")
    assert box.request("http", "GET", "/.well-known/acme-challenge/tok")[::2] == (200, b"tok.print")
    status, headers, data = box.request("http", "GET", "/readyz")
    assert status == 200 and json.loads(data) == {"status": "ready"}, (status, data)


# ---------------------------------------------------------------- SSE through nginx

class Stream:
    """GET /api/events through nginx over TLS. The head is read with the
    first block: a buffering proxy holds back the head too. next() gives one
    block ({field: value}, comments dropped) or TimeoutError at deadline."""

    def __init__(self, box, query):
        self.conn = http.client.HTTPSConnection("127.0.0.1", box.https_port, timeout=10, context=box.context())
        self.conn.request("GET", "/api/events?" + query, headers={"Accept": "text/event-stream"})
        self.resp = None

    def _timeout(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.conn.sock.settimeout(remaining)

    def next(self, deadline):
        if self.resp is None:
            self._timeout(deadline)
            self.resp = self.conn.getresponse()
            assert self.resp.status == 200, self.resp.read(300)
            assert self.resp.getheader("Content-Type", "").startswith("text/event-stream")
        block = {}
        while True:
            self._timeout(deadline)
            line = self.resp.readline()
            if not line:
                raise EOFError("the stream closed")
            line = line.decode().rstrip("\n")
            if line == "":
                if block:
                    return block
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            block[name] = value[1:] if value.startswith(" ") else value

    def close(self):
        self.conn.close()


@pytest.mark.parametrize("accel_header", ["honoured", "ignored"])
def test_sse_through_nginx_is_not_buffered(box, gateways, dsn, db, accel_header):
    """Each job event arrives through nginx within 1 s of its commit. The
    gateway's `X-Accel-Buffering: no` alone would turn buffering off, so the
    second run makes nginx ignore it: the config must not depend on it."""
    gw = start_live_gateway(gateways)
    site = render_tls(box, gw.port)
    if accel_header == "ignored":
        site = substitute("jobwheel.conf", site, [
            ("location = /api/events {",
             "location = /api/events {\n        proxy_ignore_headers X-Accel-Buffering;", 1)])
    box.configure(site).start(healthz(box, "https"))
    read = make_token(dsn, "nginx-reader", "read")
    stream = Stream(box, "types=job&access_token=" + read)
    try:
        # The gateway holds the stream: from now on it relays every job event.
        wait_for(lambda: metrics(gw).get("jobwheel_sse_clients") == 1, what="the stream at the gateway")

        latencies = []
        for n in range(3):
            before = time.monotonic()  # the commit is after this, so the latency is at most what is measured
            job = one(db, "SELECT jobwheel.enqueue('nginx-sse', jsonb_build_object('n', %s::int))", n)
            committed = time.monotonic()
            deadline = before + 5
            while True:
                try:
                    block = stream.next(deadline)
                except TimeoutError:
                    raise AssertionError(f"job {job} (#{n}): no event through nginx within 5 s of its enqueue; "
                                         "nginx buffers the stream") from None
                if n == 0 and "retry" in block:
                    continue  # the stream's first block, `retry: 2000`
                assert block.get("event") == "job", block
                data = json.loads(block["data"])
                if data["id"] == job:
                    break
            arrived = time.monotonic()
            assert data["state"] == "ready", data
            latencies.append((arrived - before, arrived - committed))
        print(f"SSE through nginx (X-Accel-Buffering {accel_header}), enqueue -> job event "
              "(s, from before the call / from the commit):",
              ", ".join(f"{a:.4f}/{b:.4f}" for a, b in latencies))
        for n, (latency, _) in enumerate(latencies):
            assert latency < 1.0, f"job event #{n} took {latency:.3f} s through nginx"
    finally:
        stream.close()
