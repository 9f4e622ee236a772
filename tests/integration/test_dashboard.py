# SPDX-License-Identifier: MIT
"""The dashboard in a real browser: tests/browser/dashboard.mjs drives Debian's
chromium through playwright-core against a gateway with workers behind it.
It checks live states over SSE (ready -> running -> succeeded), the DLQ and its
requeue button, pause/resume, the job drawer, keyset paging, the workflow
graph, the workers tab, the 375 px phone layout and reconnecting after a
gateway restart, and fails on any console error. Screenshots go to
<build>/browser-artifacts/<test>/."""
import os
import shutil
import signal
import subprocess
import threading

from conftest import BUILD, ROOT, cli, one

BROWSER_DIR = os.path.join(ROOT, "tests", "browser")
SCRIPT = os.path.join(BROWSER_DIR, "dashboard.mjs")
TIMEOUT = 300  # seconds for one run of the script; its own waits are 15-20 s each


def ensure_playwright():
    """Installs playwright-core into tests/browser/node_modules when it is missing
    (never a browser: the script uses /usr/bin/chromium)."""
    if os.path.isfile(os.path.join(BROWSER_DIR, "node_modules", "playwright-core", "package.json")):
        return
    npm = shutil.which("npm")
    assert npm, "npm is missing (scripts/test installs nodejs, npm and chromium)"
    env = dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1")
    r = subprocess.run([npm, "install", "--prefix", BROWSER_DIR, "--no-audit", "--no-fund"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, f"npm install --prefix tests/browser failed:\n{r.stdout}\n{r.stderr}"


def artifacts_dir(name):
    path = os.path.join(BUILD, "browser-artifacts", name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def run_script(gw, name, *args, on_restart=None):
    """Runs dashboard.mjs against gw; answers its restart request with on_restart().
    Returns its output; fails the test with that output when it exits non-zero."""
    ensure_playwright()
    node = shutil.which("node")
    assert node, "node is missing (scripts/test installs nodejs, npm and chromium)"
    assert os.path.exists("/usr/bin/chromium"), "/usr/bin/chromium is missing (scripts/test installs chromium)"
    cmd = [node, SCRIPT, gw.url + "/", artifacts_dir(name), *args]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=ROOT)
    watchdog = threading.Timer(TIMEOUT, proc.kill)
    watchdog.start()
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.strip() == "@@restart-gateway":
                assert on_restart, "the script asked for a restart it was not told about"
                proc.stdin.write(f"restarted {on_restart()}\n")
                proc.stdin.flush()
        rc = proc.wait()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(lines)
    assert rc == 0, f"{' '.join(cmd)} exited {rc}" + (f" (killed after {TIMEOUT}s)" if rc < 0 else "") + \
        f":\n{out}\ngateway log:\n{gw.output()[-4000:]}"
    return out


def test_dashboard_in_a_browser(gateways, workers, db):
    workers.start(concurrency=4)
    gw = gateways.start()
    current = {"gw": gw}

    def restart():
        """Stops the gateway, enqueues a job while it is down, starts it again on the same port."""
        old = current["gw"]
        old.signal(signal.SIGTERM)
        try:
            old.wait(10)
        except subprocess.TimeoutExpired:
            old.kill()
        job = one(db, "SELECT jobwheel.enqueue('noop', queue => 'parked')")
        current["gw"] = gateways.start(port=old.port)
        return job

    out = run_script(gw, "dashboard", "--restart", on_restart=restart)
    print(out)
    assert "ok restart" in out and "checks passed" in out, out


def test_dashboard_with_a_token(dsn, gateways, workers, db):
    """Once a token exists the dashboard asks for one; typed into its field, it is
    kept in localStorage and sent with every request and the event stream."""
    token = cli(dsn, "token", "create", "dashboard", "--scope", "admin").stdout.splitlines()[-1]
    workers.start(concurrency=4)
    gw = gateways.start()
    status, _ = gw.get("/api/queues")
    assert status == 401
    out = run_script(gw, "dashboard-token", "--token", token, "--steps", "load,dlq,pause,requeue,enqueue,live,cancel")
    print(out)
    assert "ok cancel" in out and "checks passed" in out, out
