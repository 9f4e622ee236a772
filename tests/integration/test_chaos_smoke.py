# SPDX-License-Identifier: MIT
"""A short run of the chaos driver (tests/chaos/chaos.py, issue 8): a real
cluster (2 coordinators, 4 workers, a gateway, each process logged in with
its least-privilege role) on a private PostgreSQL, a seeded workload of a few
thousand jobs, and for 45 s workers SIGKILLed and SIGSTOPped past their
lease, the network of a worker's host cut for longer than its lease, the
leading coordinator SIGKILLed, PostgreSQL restarted (fast, then immediate)
and the webhook target answering 503; then every invariant of the driver
must hold (exit code 0)."""
import json
import os
import subprocess
import sys

import pytest

from conftest import BUILD, ROOT

DRIVER = os.path.join(ROOT, "tests", "chaos", "chaos.py")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starts PostgreSQL with runuser (needs root)")


def test_chaos_smoke(tmp_path):
    env = dict(os.environ, JW_BUILD_DIR=BUILD)
    cmd = [sys.executable, DRIVER, "--seed", "20261205", "--jobs", "3000", "--duration-s", "45",
           "--out", str(tmp_path / "chaos")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env)
    lines = r.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1])
    except (IndexError, ValueError):
        pytest.fail(f"chaos driver printed no report (exit {r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    figures = {k: v for k, v in report["figures"].items() if k != "schedule"}
    assert r.returncode == 0 and report["ok"], (
        f"chaos invariants failed (exit {r.returncode}, logs in {report['out']}):\n"
        f"failed: {json.dumps(report['failed'], indent=1, default=str)[:6000]}\n"
        f"figures: {json.dumps(figures, default=str)}\nfaults: {json.dumps(report['faults'])}\n"
        f"{report.get('traceback', '')}")
    # the run did what it claims: every kind of fault happened, and the work got done
    kinds = {f["fault"] for f in report["faults"]}
    assert {"SIGKILL worker", "SIGSTOP worker", "SIGKILL leader", "HTTP 503 on",
            "PostgreSQL restart -m fast", "PostgreSQL restart -m immediate"} <= kinds, kinds
    if figures["worker_host"]:  # network namespaces permitted here
        assert {"network cut", "network back"} <= kinds, kinds
    assert figures["states"].get("succeeded", 0) > 2500, figures
