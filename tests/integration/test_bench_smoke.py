# SPDX-License-Identifier: MIT
"""bench/run --short as a smoke test: every workload runs against jobwheel
and its peers and reports its figures. Nothing is asserted about speed (CI
machines vary); what is asserted is that the driver measures what it says."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from suite import WORKLOADS  # noqa: E402

# workload -> systems that must have reported at least one figure
EXPECTED = {
    "drain": {"jobwheel", "graphile-worker 0.18.0", "pg-boss 10.4.2", "raw SQL limit (pgbench)",
              "raw SQL limit, delete (pgbench)"},
    "pickup": {"jobwheel", "graphile-worker 0.18.0", "raw SQL floor (C: INSERT+NOTIFY, LISTEN, UPDATE)"},
    "delayed": {"jobwheel (wheel)", "jobwheel (heap)", "graphile-worker 0.18.0"},
    "steady": {"jobwheel", "graphile-worker 0.18.0"},
    "enqueue": {"jobwheel", "jobwheel.enqueue without NOTIFY", "jobwheel, plain INSERT", "graphile-worker 0.18.0"},
    "retained": {"jobwheel"},
    "longtx": {"jobwheel"},
    "memory": {"jobwheel", "jobwheel (wheel)", "jobwheel (heap)"},
}


def test_short_mode_measures_every_workload(pg, tmp_path):
    assert set(EXPECTED) | {"rawsql"} == set(WORKLOADS)  # rawsql reports under drain, next to ours
    out = tmp_path / "results"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "run"), "--short", "--reps", "1",
                        "--server", pg.dsn("").rstrip("/"), "--out", str(out)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"bench/run --short failed:\n{r.stderr[-4000:]}"
    results = json.loads((out / "results.json").read_text())["results"]
    for workload, systems in EXPECTED.items():
        seen = {x["system"] for x in results if x["workload"] == workload}
        assert systems <= seen, f"{workload}: no figures from {sorted(systems - seen)}"
    for x in results:
        v = x["value"]
        if isinstance(v, dict):
            assert min(v["p50"], v["p99"], v["max"]) >= 0 and v["n"] > 0, x
        elif x["figure"] == "drop":  # a short hold may cost nothing: noise can make it negative
            assert isinstance(v, (int, float)) and -100 < v <= 100, x
        else:
            assert v > 0, x
    summary = (out / "summary.md").read_text()
    assert "## drain: drain 2·10^4 jobs" in summary and "jobwheel / graphile-worker 0.18.0" in summary
    assert (out / "pickup-cdf.png").stat().st_size > 0 and (out / "delayed-cdf.png").stat().st_size > 0
