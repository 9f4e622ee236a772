# SPDX-License-Identifier: MIT
"""The chaos run's invariants, checked once every job is terminal, from the
database, the counting server's delivery log and the processes' logs; each
reported as figures, each violation as a failed invariant."""
import os
import re
from datetime import datetime, timedelta

CRASH_RE = re.compile(r"ASan|AddressSanitizer|runtime error|assertion|Assertion|Segmentation|core dumped")


class Verify:
    """Mixed into Chaos: reads its expectations, processes and counter."""

    def verify(self):
        f = self.figures
        self.check("enqueuer ran without error", self.enqueue_error is None, self.enqueue_error)
        rows = self.q("SELECT id, payload->>'chaos', kind, state, attempt, max_attempts, worker, run_at, "
                      "created_at, started_at, finished_at, backoff_base_ms, last_error FROM jobwheel.jobs")
        jobs = {r[0]: r for r in rows}
        by_tag = {}
        for r in rows:
            by_tag.setdefault(r[1], []).append(r[0])
        states = {}
        for r in rows:
            states[r[3]] = states.get(r[3], 0) + 1
        f["enqueued"] = len(self.expect)
        f["enqueued_via"] = dict(self.enq_via)
        f["in_db"] = len(rows)
        f["states"] = states
        f["ambiguous_enqueue_retries"] = self.ambiguous_retries
        nonterminal = [r[0] for r in rows if r[3] not in ("succeeded", "dead", "cancelled")]
        f["nonterminal"] = len(nonterminal)
        self.check("every job terminal", not nonterminal, nonterminal[:20])
        terminal = states.get("succeeded", 0) + states.get("dead", 0) + states.get("cancelled", 0)
        self.check("succeeded + dead + cancelled = enqueued", terminal == len(self.expect) == len(rows),
                   {"terminal": terminal, "enqueued": len(self.expect), "in_db": len(rows)})
        dup = {t: ids for t, ids in by_tag.items() if len(ids) != 1}
        missing = [t for t in self.expect if t not in by_tag]
        f["lost_jobs"], f["duplicated_jobs"] = len(missing), len(dup)
        self.check("no job lost or enqueued twice", not missing and not dup,
                   {"missing": missing[:10], "dup": list(dup.items())[:10]})
        wrong = [(t, jobs[ids[0]][3], e) for t, e in self.expect.items()
                 if (ids := by_tag.get(t)) and jobs[ids[0]][3] != e]
        f["unexpected_outcome"] = len(wrong)
        self.check("each job ended as designed", not wrong,
                   [(t, s, e, jobs[by_tag[t][0]][12]) for t, s, e in wrong[:10]])
        # DLQ = exactly the jobs designed to die
        dlq = {r[0] for r in self.q("SELECT id FROM jobwheel.dlq")}
        want_dead = {by_tag[t][0] for t, e in self.expect.items() if e == "dead" and t in by_tag}
        f["dlq"], f["designed_to_die"] = len(dlq), len(want_dead)
        self.check("DLQ = designed-to-die jobs", dlq == want_dead,
                   {"unexpected": sorted(dlq - want_dead)[:10], "absent": sorted(want_dead - dlq)[:10]})
        # delayed jobs not early
        early = [r[0] for r in rows if self.kinds.get(r[1]) == "delayed" and r[9] and r[9] < r[7]]
        self.check("delayed jobs not started before run_at", not early, early[:10])

        # errors per attempt; fencing
        errs = {}
        for job, attempt, worker, at, error in self.q(
                "SELECT job_id, attempt, worker, at, error FROM jobwheel.job_errors ORDER BY id"):
            errs.setdefault(job, []).append((attempt, worker, at, error))
        f["failed_attempts"] = sum(len(v) for v in errs.values())
        f["lease_expired_attempts"] = sum(1 for v in errs.values() for e in v if e[3].startswith("lease expired"))
        f["retried_jobs"] = sum(1 for r in rows if r[4] > 1)
        f["max_attempt"] = max((r[4] for r in rows), default=0)
        fence = []
        for jid, r in jobs.items():
            e = errs.get(jid, [])
            attempts = [x[0] for x in e]
            if len(set(attempts)) != len(attempts):
                fence.append((jid, "two errors for one attempt", attempts))
            if any(x > r[4] for x in attempts):
                fence.append((jid, "error for an attempt beyond the job's", attempts, r[4]))
            if r[3] == "succeeded":
                if r[4] in attempts:
                    fence.append((jid, "succeeded although its last attempt failed", attempts, r[4]))
                if sorted(attempts) != list(range(1, r[4])):
                    fence.append((jid, "attempts before the last one not each failed once", attempts, r[4]))
            if r[3] == "dead" and sorted(attempts) != list(range(1, r[4] + 1)):
                fence.append((jid, "dead but its attempts are not 1..n failed", attempts, r[4]))
            if r[3] in ("succeeded", "dead") and r[9] and r[10] and r[10] < r[9]:
                fence.append((jid, "finished before started"))
        # the worker recorded as running the last attempt of a succeeded job
        # logged that attempt's start and success (its late completions of
        # older attempts are fenced and leave no trace in the row)
        logs = {}
        for p in self.procs:
            if p.role == "worker":
                logs.setdefault(p.pid, []).append(p)
        wid_pid = {w: pid for w, pid in self.q("SELECT id, pid FROM jobwheel.workers")}
        succ_re = re.compile(r"job (\d+) \([\w.-]+\) attempt (\d+) succeeded")
        succeeded_by = {}
        for p in self.procs:
            if p.role == "worker":
                for m in succ_re.finditer(p.output()):
                    succeeded_by.setdefault((int(m.group(1)), int(m.group(2))), set()).add(p.pid)
        no_log = []
        for jid, r in jobs.items():
            if r[3] == "succeeded" and r[2] in ("noop", "sleep", "http"):
                pid = wid_pid.get(r[6])
                if pid is None or pid not in succeeded_by.get((jid, r[4]), set()):
                    no_log.append((jid, r[4], r[6]))
        f["succeeded_by_other_than_last_attempt_holder"] = len(no_log)
        fence += [(j, "succeeded, but its recorded worker did not log that attempt succeeding", a, w)
                  for j, a, w in no_log[:10]]
        f["fence_violations"] = len(fence)
        self.check("no fenced write landed", not fence, fence[:10])
        # late completions the workers reported that the database fenced
        late = 0
        for (jid, attempt), pids in succeeded_by.items():
            r = jobs.get(jid)
            if r and not (r[3] == "succeeded" and r[4] == attempt):
                late += 1
        f["late_successes_fenced"] = late

        # backoff respected
        bad_backoff, checked = [], 0
        for jid, e in errs.items():
            r = jobs[jid]
            base = r[11] / 1000.0
            e = sorted(e)
            for i, (attempt, worker, at, error) in enumerate(e):
                low = timedelta(seconds=min(base * 5 ** (attempt - 1), 3600) * 0.8 - 0.002)
                if i + 1 < len(e) and e[i + 1][0] == attempt + 1:
                    nxt = e[i + 1][2]   # the next attempt failed after it started
                elif attempt + 1 == r[4] and r[9] is not None:
                    nxt = r[9]          # started_at of the last attempt
                else:
                    continue
                if r[3] == "dead" and attempt == r[4]:
                    continue
                checked += 1
                if nxt < at + low:
                    bad_backoff.append((jid, attempt, str(at), str(nxt), low.total_seconds()))
        f["backoff_checked"] = checked
        f["backoff_violations"] = len(bad_backoff)
        self.check("every retry respected its backoff", not bad_backoff, bad_backoff[:10])

        # http deliveries
        with self.counter.lock:
            dl = list(self.counter.deliveries)
        with open(os.path.join(self.out, "deliveries.tsv"), "w") as fh:  # tag, start, end (monotonic), status
            fh.writelines(f"{t}\t{a:.4f}\t{b:.4f}\t{st}\n" for t, a, b, st in dl)
        per = {}
        for tag, s, e, status in dl:
            per.setdefault(tag, []).append((s, e, status))
        overlaps, too_many = [], []
        url_tag = {}
        for jid, r in jobs.items():
            if r[2] == "http":
                url_tag[jid] = None
        for jid, url in self.q("SELECT id, payload->>'url' FROM jobwheel.jobs WHERE kind = 'http'"):
            url_tag[jid] = url.rsplit("/", 1)[-1]
        for jid, tag in url_tag.items():
            d = sorted(per.get(tag, []))
            for x, y in zip(d, d[1:]):
                if y[0] < x[1]:
                    overlaps.append((jid, tag, round(x[1] - y[0], 3)))
            if len(d) > jobs[jid][4]:
                too_many.append((jid, len(d), jobs[jid][4]))
        f["http_jobs"] = len(url_tag)
        f["http_deliveries"] = len(dl)
        f["http_503"] = sum(1 for x in dl if x[3] == 503)
        f["http_overlaps"] = len(overlaps)
        # at-least-once: a job delivered again after a 200 (a lost completion, or a stale claim)
        f["http_deliveries_after_a_200"] = sum(
            1 for d in per.values() for i, x in enumerate(sorted(d)) if any(y[2] == 200 for y in sorted(d)[:i]))
        f["http_deliveries_over_attempts"] = len(too_many)
        self.check("no two deliveries of a job overlap", not overlaps, overlaps[:10])
        self.check("deliveries per job <= attempts", not too_many, too_many[:10])

        # processes and their states
        wrows = {pid: st for pid, st in self.q("SELECT pid, state FROM jobwheel.workers")}
        bad_state = []
        for p in self.procs:
            if p.role != "worker":
                continue
            st = wrows.get(p.pid)
            if p.killed:
                if st not in (None, "lost"):
                    bad_state.append((p.pid, "killed", st))
            elif st != "active":
                bad_state.append((p.pid, "running", st))
        f["workers_final"] = {str(k): v for k, v in wrows.items()}
        self.check("workers active or cleanly gone", not bad_state, bad_state)
        leaders = self.q("SELECT pid FROM jobwheel.leader")
        live_coords = {p.pid for p in self.coords.values() if p.alive()}
        f["leaders"] = [x[0] for x in leaders]
        self.check("exactly one leader, a live coordinator", len(leaders) == 1 and leaders[0][0] in live_coords,
                   {"leaders": f["leaders"], "live": sorted(live_coords)})
        dead_procs, crash_lines = [], []
        for p in self.procs:
            if not p.killed and not p.alive():
                dead_procs.append((p.role, p.slot, p.pid, p.proc.returncode, p.output()[-1500:]))
            for line in p.output().splitlines():
                if CRASH_RE.search(line):
                    crash_lines.append((p.role, p.pid, line[:300]))
        f["processes_started"] = len(self.procs)
        f["processes_killed_by_schedule"] = sum(1 for p in self.procs if p.killed)
        f["unexpected_exits"] = len(dead_procs)
        f["crash_log_lines"] = len(crash_lines)
        self.check("no crash outside the injected ones", not dead_procs and not crash_lines,
                   {"exited": dead_procs[:5], "lines": crash_lines[:10]})
        # the lease guard: workers that gave jobs up after a SIGSTOP
        gave_up = 0
        for p in self.procs:
            if p.role == "worker":
                gave_up += len(re.findall(r"no heartbeat confirmed .* giving up", p.output()))
        f["lease_guard_give_ups"] = gave_up
        f["sigstops"], f["jobs_running_at_sigstop"] = self.stops, self.stopped_running
        f["network_cuts"] = self.cuts
        self.check_attempt_order(jobs)
        f["leader_takeover_s"] = self.takeovers
        self.check("a new leader within 5 s of the leader's death (SPEC 8)",
                   all(x <= 5.5 for x in self.takeovers), self.takeovers)

    LOG_RE = re.compile(r"^(\S+?)Z? jobwheel-worker\[(\d+)\] \w+\s+job (\d+) \([\w.-]+\) attempt (\d+)(?:/\d+)? "
                        r"(started|succeeded|failed)")

    def check_attempt_order(self, jobs):
        """From the workers' debug logs (one clock, ms): an attempt must not
        start after the next attempt of its job started (a worker acting on
        a claim whose lease had expired: the job runs again); an attempt
        that ends after the next one started ran twice at once from the
        worker's side (its outcome was fenced, but a handler with side
        effects would have overlapped)."""
        f = self.figures
        starts, ends = {}, {}
        for p in self.procs:
            if p.role != "worker":
                continue
            for line in p.output().splitlines():
                m = self.LOG_RE.match(line)
                if m:
                    ts = datetime.fromisoformat(m.group(1)).timestamp()
                    key = (int(m.group(3)), int(m.group(4)))
                    (starts if m.group(5) == "started" else ends)[key] = (ts, int(m.group(2)), line[:200])
        stale, outlived = [], []
        for (job, a), (ts, pid, line) in starts.items():
            nxt = starts.get((job, a + 1))
            if nxt and ts > nxt[0]:
                stale.append({"job": job, "attempt": a, "kind": jobs.get(job, [None] * 3)[2], "line": line,
                              "next_attempt_started": nxt[2]})
        for (job, a), (ts, pid, line) in ends.items():
            nxt = starts.get((job, a + 1))
            if nxt and ts > nxt[0]:
                outlived.append({"job": job, "attempt": a, "line": line, "next_attempt_started": nxt[2]})
        f["stale_claim_starts"] = len(stale)
        f["attempts_outliving_their_lease"] = len(outlived)
        if stale:
            f["stale_claim_examples"] = stale[:3]
        if outlived:
            f["outlived_examples"] = outlived[:3]
        if self.args.strict_lease_guard:
            self.check("no attempt started after the next attempt of its job (stale claim)", not stale, stale[:5])
            self.check("no attempt outlived the start of the next one", not outlived, outlived[:5])
