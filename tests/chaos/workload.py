# SPDX-License-Identifier: MIT
"""The chaos workload: a seeded mix of jobs (no-ops, sleeps, webhooks to the
counting server that succeed, fail a few times or always, delayed jobs, jobs
that fail on purpose) and workflows, enqueued in batches over SQL and the
REST API through every fault, each job tagged so that none can be lost or
enqueued twice unnoticed."""
import http.client
import json
import time
from datetime import datetime, timedelta, timezone

import psycopg

from conftest import wait_for

BACKOFF_MS = 100          # backoff_base_ms of every job: retries after ~0.1, 0.5, 2.5, 12.5 s


def now_utc():
    return datetime.now(timezone.utc)


class Workload:
    """Mixed into Chaos: uses its rng streams, counter, connections and figures."""

    def make_jobs(self, n, base):
        """n job specs (enqueue_batch objects), each tagged."""
        rng, jobs = self.wrng, []
        for i in range(n):
            tag_n = base + i
            r = rng.random()
            common = {"backoff_base_ms": BACKOFF_MS, "max_attempts": 12}
            if r < 0.35:
                cls, spec, exp = "noop", {"kind": "noop", "payload": {}}, "succeeded"
            elif r < 0.60:
                ms = rng.randint(20, 300) if rng.random() < 0.7 else rng.randint(500, 2500)
                cls, spec, exp = "sleep", {"kind": "sleep", "payload": {"ms": ms}}, "succeeded"
            elif r < 0.80:
                tag = f"ok-{tag_n}"
                cls, spec, exp = "http", {"kind": "http", "payload": {"method": "POST", "url": self.counter.url(tag),
                                                                     "body": {"n": tag_n}, "timeout_ms": 5000}}, \
                    "succeeded"
            elif r < 0.88:
                k = rng.randint(1, 2)
                tag = f"f{k}-{tag_n}"
                cls, spec, exp = "http_flaky", {"kind": "http", "payload": {
                    "method": "POST", "url": self.counter.url(tag), "timeout_ms": 5000}}, "succeeded"
            elif r < 0.95:
                delay = rng.uniform(1.0, 5.0)
                run_at = (now_utc() + timedelta(seconds=delay)).isoformat()
                cls, spec, exp = "delayed", {"kind": "noop", "payload": {}, "run_at": run_at}, "succeeded"
            elif r < 0.97:
                tag = f"die-{tag_n}"
                cls, spec, exp = "http_die", {"kind": "http", "payload": {
                    "method": "POST", "url": self.counter.url(tag), "timeout_ms": 5000}}, "dead"
                common["max_attempts"] = 2
            elif r < 0.985:
                cls, spec, exp = "fail_retry", {"kind": "fail", "payload": {"message": "on purpose",
                                                                           "retryable": True}}, "dead"
                common["max_attempts"] = 3
            else:
                cls, spec, exp = "fail_final", {"kind": "fail", "payload": {"message": "on purpose, final",
                                                                           "retryable": False}}, "dead"
            spec.update(common)
            spec["payload"]["chaos"] = f"j{tag_n}"
            self.expect[f"j{tag_n}"] = exp
            self.kinds[f"j{tag_n}"] = cls
            jobs.append(spec)
        return jobs

    def make_workflow(self, idx):
        """a -> (b, c) -> d; with `doom`, b dies and d (all_success) is
        cancelled while e (all_done on b) runs."""
        doom = idx % 3 == 2
        w = f"w{idx}"
        jobs = [
            {"key": "a", "kind": "sleep", "payload": {"ms": 50}},
            {"key": "b", "kind": "fail" if doom else "noop",
             "payload": {"message": "workflow doom", "retryable": False} if doom else {}, "depends_on": ["a"]},
            {"key": "c", "kind": "sleep", "payload": {"ms": 100}, "depends_on": ["a"]},
            {"key": "d", "kind": "noop", "payload": {}, "depends_on": ["b", "c"]},
            {"key": "e", "kind": "noop", "payload": {}, "depends_on": ["b"], "trigger": "all_done"},
        ]
        exp = {"a": "succeeded", "b": "dead" if doom else "succeeded", "c": "succeeded",
               "d": "cancelled" if doom else "succeeded", "e": "succeeded"}
        for j in jobs:
            tag = f"{w}{j['key']}"
            j["payload"]["chaos"] = tag
            j["backoff_base_ms"] = BACKOFF_MS
            j["max_attempts"] = 12
            self.expect[tag] = exp[j["key"]]
            self.kinds[tag] = "workflow"
        return {"name": f"chaos-{w}", "jobs": jobs}

    def tags_present(self, tags):
        return self.q("SELECT count(*) FROM jobwheel.jobs WHERE payload->>'chaos' = ANY(%s)", list(tags))[0][0]

    def gw_post(self, path, body):
        c = http.client.HTTPConnection("127.0.0.1", self.gw_port, timeout=10)
        try:
            c.request("POST", path, body=json.dumps(body),
                      headers={"Authorization": "Bearer " + self.token, "Content-Type": "application/json"})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def submit(self, via, path_or_fn, body, tags):
        """Submits once, retrying through database restarts; an ambiguous
        failure (connection lost around the commit) is resolved by looking
        for the tags: all present = done, none = try again."""
        for attempt in range(200):
            try:
                if via == "gateway":
                    status, text = self.gw_post(path_or_fn, body)
                    if status == 201:
                        return
                    if status < 500:
                        raise RuntimeError(f"gateway {path_or_fn} -> {status}: {text[:300]!r}")
                    raise OSError(f"gateway {status}")
                with self.connect(self.producer_dsn) as c:  # as an application enqueues: the gateway's role
                    c.execute(path_or_fn, (json.dumps(body),)).fetchall()
                return
            except (OSError, psycopg.OperationalError) as e:
                self.ambiguous_retries += 1
                self.connect(self.producer_dsn).close()  # PostgreSQL is back,
                if via == "gateway":                     # and the gateway too
                    wait_for(self.gateway_ready, 60, 0.1, "the gateway to be ready")
                present = self.tags_present(tags)
                if present == len(tags):
                    return
                if present:
                    raise RuntimeError(f"partial enqueue: {present}/{len(tags)} of a batch ({e})")
        raise RuntimeError("could not enqueue a batch")

    def enqueuer(self):
        try:
            total, span = self.args.jobs, self.args.duration_s * 0.85
            n_wf = max(3, total // 500)
            batches = max(10, int(span / 0.25))
            per = max(1, total // batches)
            done, wf, b = 0, 0, 0
            start = time.monotonic()
            while done < total:
                if self.stop_enqueue.is_set():
                    break
                n = min(per, total - done)
                jobs = self.make_jobs(n, done)
                tags = [j["payload"]["chaos"] for j in jobs]
                via = "gateway" if b % 5 == 4 else "sql"
                if via == "gateway":
                    self.submit("gateway", "/api/jobs/batch", {"jobs": jobs}, tags)
                else:
                    self.submit("sql", "SELECT jobwheel.enqueue_batch(%s::jsonb)", jobs, tags)
                self.enq_via[via] += n
                done += n
                if wf < n_wf and b % max(1, batches // n_wf) == 0:
                    spec = self.make_workflow(wf)
                    wtags = [j["payload"]["chaos"] for j in spec["jobs"]]
                    if wf % 2:
                        self.submit("gateway", "/api/workflows", spec, wtags)
                        self.enq_via["gateway"] += len(wtags)
                    else:
                        self.submit("sql", "SELECT jobwheel.submit_workflow(%s::jsonb)", spec, wtags)
                        self.enq_via["sql"] += len(wtags)
                    wf += 1
                b += 1
                pause = start + b * span / batches - time.monotonic()
                if pause > 0:
                    time.sleep(pause)  # the next batch's time: a steady rate, nothing to poll
            self.figures["workflows"] = wf
        except Exception as e:  # reported as an invariant failure
            self.enqueue_error = repr(e)
