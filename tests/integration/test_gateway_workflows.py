# SPDX-License-Identifier: MIT
"""jobwheel-gateway's workflow routes: POST /api/workflows, GET
/api/workflows/{id}, GET /api/workflows with paging, and workflow graphs
the gateway or the database refuses."""
import pytest

from conftest import one
from gateway_client import assert_error, assert_post_refused, parse_ts, submit_workflow, walk, written


def test_submit_workflow_answers_201_with_ids_by_key(gateways, db):
    gw = gateways.start()
    value = submit_workflow(gw, "monthly")
    assert set(value) == {"workflow_id", "jobs"} and set(value["jobs"]) == {"fetch", "parse", "tidy"}, value
    wf, ids = value["workflow_id"], value["jobs"]
    assert one(db, "SELECT name FROM jobwheel.workflows WHERE id = %s", wf) == "monthly"
    rows = dict((r[0], r[1:]) for r in db.execute(
        "SELECT id, kind, state, workflow_id, depends_on FROM jobwheel.jobs").fetchall())
    assert rows == {ids["fetch"]: ("fetch", "ready", wf, None),
                    ids["parse"]: ("parse", "blocked", wf, [ids["fetch"]]),
                    ids["tidy"]: ("tidy", "blocked", wf, [ids["fetch"], ids["parse"]])}


def test_get_workflow_and_list_workflows(gateways, db):
    gw = gateways.start()
    value = submit_workflow(gw, "monthly")
    wf, ids = value["workflow_id"], value["jobs"]

    status, value = gw.get(f"/api/workflows/{wf}")
    assert status == 200 and set(value) == {"id", "name", "created_at", "state", "jobs"}, value
    assert (value["id"], value["name"], value["state"]) == (wf, "monthly", "running")
    parse_ts(value["created_at"])
    assert all(set(j) == {"id", "kind", "state", "depends_on"} for j in value["jobs"]), value
    graph = {j["id"]: (j["kind"], j["state"], sorted(j["depends_on"])) for j in value["jobs"]}
    assert graph == {ids["fetch"]: ("fetch", "ready", []),
                     ids["parse"]: ("parse", "blocked", [ids["fetch"]]),
                     ids["tidy"]: ("tidy", "blocked", sorted([ids["fetch"], ids["parse"]]))}

    assert gw.post(f"/api/jobs/{ids['fetch']}/cancel")[0] == 200  # parse: cancelled upstream; tidy runs anyway
    status, value = gw.get("/api/workflows")
    assert status == 200 and set(value) == {"workflows", "next_before"} and value["next_before"] is None, value
    assert len(value["workflows"]) == 1
    w = value["workflows"][0]
    assert set(w) == {"id", "name", "created_at", "state", "jobs", "succeeded", "dead", "cancelled", "active"}, w
    assert (w["id"], w["name"], w["state"], w["jobs"], w["succeeded"], w["dead"], w["cancelled"], w["active"]) == \
        (wf, "monthly", "running", 3, 0, 0, 2, 1)

    status, value = gw.get(f"/api/jobs?workflow_id={wf}")
    assert status == 200 and sorted(j["id"] for j in value["jobs"]) == sorted(ids.values()), value
    assert all(j["workflow_id"] == wf for j in value["jobs"])


def test_list_workflows_pages_newest_first(gateways, db):
    gw = gateways.start()
    wfs = [submit_workflow(gw, f"wf{i}")["workflow_id"] for i in range(5)]
    assert [w["id"] for w in walk(gw, "/api/workflows", "workflows", 2)] == sorted(wfs, reverse=True)


@pytest.mark.parametrize("spec, needle, field", [
    ({"jobs": [{"key": "a", "kind": "x", "depends_on": ["c"]}, {"key": "b", "kind": "x", "depends_on": ["a"]},
               {"key": "c", "kind": "x", "depends_on": ["b"]}]}, "cycle: a -> c -> b -> a", "depends_on"),
    ({"jobs": [{"key": "a", "kind": "x"}, {"key": "a", "kind": "y"}]}, 'duplicate key "a"', "key"),
    ({"jobs": [{"key": "a", "kind": "x", "depends_on": ["zz"]}]}, 'unknown key "zz"', "depends_on"),
    ({"jobs": [{"key": "a", "kind": "x", "depends_on": ["a"]}]}, "depends on itself", "depends_on"),
])
def test_workflow_graph_the_database_refuses_is_400_and_writes_nothing(gateways, db, spec, needle, field):
    gw = gateways.start()
    before = written(db)
    status, value = gw.post("/api/workflows", spec)
    assert_error(status, value, 400, "bad_request")
    assert needle in value["error"]["message"], value
    assert value["error"].get("field", "").endswith(field), value
    assert written(db) == before


@pytest.mark.parametrize("spec, field", [
    ({"jobs": [{"kind": "x"}]}, "jobs[0].key"),
    ({"jobs": [{"key": "a", "kind": "x"}, {"key": "has space", "kind": "x"}]}, "jobs[1].key"),
    ({"jobs": [{"key": "a", "kind": "x"}, {"key": "b", "kind": "Bad"}]}, "jobs[1].kind"),
    ({"jobs": [{"key": "a", "kind": "x", "depends_on": [1]}]}, "jobs[0].depends_on"),
    ({"name": 5, "jobs": [{"key": "a", "kind": "x"}]}, "name"),
    ({"name": "n", "jobs": [{"key": "a", "kind": "x"}], "owner": "me"}, "owner"),
    ({"name": "n"}, "jobs"),
    ({"jobs": []}, "jobs"),
])
def test_workflow_with_a_bad_field_is_400_naming_it(gateways, db, spec, field):
    gw = gateways.start()
    assert_post_refused(gw, db, "/api/workflows", spec, field)
