# SPDX-License-Identifier: MIT
"""The chaos driver's faults: a seeded schedule and the injection of each
fault (workers SIGKILLed and SIGSTOPped past their lease, the leader
SIGKILLed, a worker host's cable pulled, the webhook target answering 503,
PostgreSQL restarted fast and immediate)."""
import signal
import threading
import time

from cluster import LEASE_MS
from conftest import wait_for


class Faults:
    """Mixed into Chaos: uses its fault rng, processes, counter and database."""

    def schedule(self):
        """The seeded fault schedule: (t, action) every 3-6 s; each fault
        class at least once, PostgreSQL restarted fast at ~35% and
        immediate at ~65% of the run if it lasts 30 s or more."""
        rng, d = self.rng, self.args.duration_s
        kinds = ["kill_worker", "stop_worker", "kill_leader", "outage_503"] + (["cut_network"] if self.host else [])
        first = kinds[:]
        rng.shuffle(first)  # every fault class early on, then a random mix
        plan, t = [], 3.0
        while t < d - 3:
            plan.append([round(t, 2), first.pop(0) if first else rng.choice(kinds + ["kill_worker", "stop_worker"])])
            t += rng.uniform(3.0, 6.0)
        if d >= 30:
            # the restarts take the place of no other fault
            plan.append([round(d * 0.35, 2), "pg_restart_fast"])
            plan.append([round(d * 0.65, 2), "pg_restart_immediate"])
        plan.sort()
        return plan

    def live_workers(self):
        """Workers to kill or stop: not one already stopped or cut off."""
        return [s for s, p in self.workers.items()
                if p.alive() and not p.stopped and not (self.cable_cut and p.netns)]

    def later(self, secs, fn):
        """Runs fn in secs (a fault's end); run() waits for them all."""
        timer = threading.Timer(secs, fn)
        timer.daemon = True
        self.timers.append(timer)
        timer.start()

    def running_on(self, p):
        return self.q("SELECT count(*) FROM jobwheel.jobs j JOIN jobwheel.workers w ON w.id = j.worker "
                      "WHERE j.state = 'running' AND w.pid = %s", p.pid)[0][0]

    def busiest(self, slots):
        """A random one of the workers running the most jobs now."""
        load = {s: self.running_on(self.workers[s]) for s in slots}
        top = max(load.values())
        return self.rng.choice(sorted(s for s in slots if load[s] == top)), top

    def do_fault(self, action):
        """Injects one fault of the schedule; returns "later" if it cannot
        happen now and must be tried again."""
        rng = self.rng
        if action == "kill_worker":
            slots = self.live_workers()
            if not slots:
                return
            s = rng.choice(slots)
            p = self.workers[s]
            running = self.running_on(p)
            p.sigkill()
            self.fault("SIGKILL worker", f"slot {s} pid {p.pid} ({running} running)")
            self.start_worker(s)
        elif action == "stop_worker":
            slots = self.live_workers()
            if len(slots) < 2:
                return
            s, running = self.busiest(slots)
            p = self.workers[s]
            hold = LEASE_MS / 1000.0 * 1.5 + rng.uniform(0.5, 2.0)
            p.proc.send_signal(signal.SIGSTOP)
            p.stopped = True
            self.stops += 1
            self.stopped_running += running
            self.fault("SIGSTOP worker", f"slot {s} pid {p.pid} for {hold:.1f}s ({running} running)")

            def resume(p=p, s=s):
                p.proc.send_signal(signal.SIGCONT)
                p.stopped = False
                self.fault("SIGCONT worker", f"slot {s} pid {p.pid}")
            self.later(hold, resume)
        elif action == "kill_leader":
            def leader():  # [its slot]; after a database restart there may be none for a moment
                rows = self.q("SELECT pid FROM jobwheel.leader")
                return [s for s, p in self.coords.items() if rows and p.pid == rows[0][0] and p.alive()]
            try:
                s = wait_for(leader, 15, 0.1, "a leader to kill")[0]
            except AssertionError as e:
                self.check("a leader to kill", False, str(e))
                return
            p = self.coords[s]
            p.sigkill()
            killed_at = time.monotonic()
            self.fault("SIGKILL leader", f"coordinator slot {s} pid {p.pid}")
            self.start_coord(s)
            other = [c.pid for c in self.coords.values() if c.alive()]

            def new_leader():
                rows = self.q("SELECT pid FROM jobwheel.leader")
                return rows and rows[0][0] in other
            try:
                wait_for(new_leader, 15, 0.05, "a new leader")
            except AssertionError:
                pass  # the takeover time says so; verify() checks it against SPEC's 5 s
            took = round(time.monotonic() - killed_at, 2)
            self.takeovers.append(took)
            self.fault("new leader", f"after {took}s")
        elif action == "outage_503":
            secs = rng.uniform(2.0, 4.0)
            self.counter.outage = True
            self.fault("HTTP 503 on", f"{secs:.1f}s")

            def off():
                self.counter.outage = False
                self.fault("HTTP 503 off")
            self.later(secs, off)
        elif action == "cut_network":
            s = next(s for s, p in self.workers.items() if p.netns)
            p = self.workers[s]
            if self.cable_cut or p.stopped or not p.alive():
                return "later"  # its worker is stopped: run() tries again, so every run has a cut
            # longer than the lease: the coordinator must reclaim its jobs,
            # and what the worker finishes meanwhile must be fenced
            hold = LEASE_MS / 1000.0 * 1.5 + rng.uniform(1.0, 3.0)
            running = self.running_on(p)
            self.host.cable("down")
            self.cable_cut = True
            self.cuts += 1
            self.fault("network cut", f"worker slot {s} pid {p.pid} for {hold:.1f}s ({running} running)")

            def plug(s=s, p=p):
                self.host.cable("up")
                self.cable_cut = False
                self.fault("network back", f"worker slot {s} pid {p.pid}")
            self.later(hold, plug)
        elif action.startswith("pg_restart_"):
            mode = action.rsplit("_", 1)[1]
            t = time.monotonic()
            self.pg.stop(mode)
            self.pg.start()
            self.fault(f"PostgreSQL restart -m {mode}", f"down {time.monotonic() - t:.1f}s")
