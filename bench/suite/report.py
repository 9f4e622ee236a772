# SPDX-License-Identifier: MIT
"""The summary of a bench/run: medians, min-max and ratios as markdown, and
the plots (gnuplot, PNG)."""
import os
import shutil
import statistics
import subprocess

from .common import log


def _groups(results):
    groups = {}
    for r in results:
        groups.setdefault((r["workload"], r["figure"]), {}).setdefault(r["system"], []).append(r)
    return groups


def _fmt(x):
    if x is None:
        return "—"
    return f"{x:,.0f}".replace(",", " ") if abs(x) >= 100 else f"{x:.3g}"


def _latency_rows(systems):
    rows = ["| system | p50 (median) | p99 (median) | p99 min–max | max | runs |", "|---|---|---|---|---|---|"]
    for system, rs in systems.items():
        p50 = statistics.median(r["value"]["p50"] for r in rs)
        p99s = [r["value"]["p99"] for r in rs]
        rows.append(f"| {system} | {_fmt(p50)} ms | **{_fmt(statistics.median(p99s))} ms** | "
                    f"{_fmt(min(p99s))}–{_fmt(max(p99s))} | {_fmt(max(r['value']['max'] for r in rs))} ms | {len(rs)} |")
    return rows


def _value_rows(systems):
    rows = ["| system | median | min–max | runs |", "|---|---|---|---|"]
    for system, rs in systems.items():
        v = [r["value"] for r in rs]
        rows.append(f"| {system} | **{_fmt(statistics.median(v))}** {rs[0]['unit']} | {_fmt(min(v))}–{_fmt(max(v))} "
                    f"| {len(v)} |")
    return rows


def _ratios(systems):
    """jobwheel against every other system of the same figure: throughput
    as jobwheel / other, latency as other / jobwheel (times lower)."""
    ours = {s: rs for s, rs in systems.items() if s.startswith("jobwheel")}
    lines = []
    for mine, my_rs in ours.items():
        for other, rs in systems.items():
            if other in ours:
                continue
            if isinstance(rs[0]["value"], dict):
                if other.startswith("raw SQL"):
                    continue  # a floor, not a rival: see _limit_ratios
                for key in ("p50", "p99"):
                    a = statistics.median(r["value"][key] for r in rs)
                    m = statistics.median(r["value"][key] for r in my_rs)
                    if m > 0:
                        lines.append(f"- {key}: {other} / {mine} = **{a / m:.1f}×** lower for {mine}")
            else:
                a = statistics.median(r["value"] for r in rs)
                m = statistics.median(r["value"] for r in my_rs)
                if a:
                    lines.append(f"- {mine} / {other} = **{m / a:.2f}×**")
    return lines


def _limit_ratios(groups):
    """jobwheel against the raw-SQL limits: drain throughput (pgbench), pickup latency (bench/pickup_floor.c)."""
    lines = []
    limits = {(f, s): rs for (w, f), systems in groups.items() if w == "drain"
              for s, rs in systems.items() if s.startswith("raw SQL")}
    drains = {f: systems["jobwheel"] for (w, f), systems in groups.items()
              if w == "drain" and f.startswith("drain 1") and "jobwheel" in systems}
    for (_, limit), lrs in limits.items():
        lim = statistics.median(r["value"] for r in lrs)
        for f, rs in drains.items():
            lines.append(f"- jobwheel {f} / {limit} = **{statistics.median(r['value'] for r in rs) / lim:.0%}**")
    pickup = {s: rs for (w, _), systems in groups.items() if w == "pickup" for s, rs in systems.items()}
    for floor, frs in pickup.items():
        if floor.startswith("raw SQL") and "jobwheel" in pickup:
            for key in ("p50", "p99"):
                lim = statistics.median(r["value"][key] for r in frs)
                ours = statistics.median(r["value"][key] for r in pickup["jobwheel"])
                lines.append(f"- jobwheel pickup {key} {_fmt(ours)} ms = {floor} {_fmt(lim)} ms "
                             f"**{ours - lim:+.2f} ms**")
    return lines


def markdown(facts, results):
    m, pg = facts["machine"], facts["postgresql"]
    out = [f"# bench/run, {facts['mode']} mode, {m['date']}", "",
           f"`{facts['command']}`: {m['cpus']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, Linux {m['kernel']}; "
           "PostgreSQL " + ", ".join(f"{k} {v}" for k, v in pg.items()) + f"; {facts.get('seconds', '?')} s in all.", ""]
    groups = _groups(results)
    for (workload, figure), systems in groups.items():
        if figure == "configuration search":
            continue
        out += [f"## {workload}: {figure}", ""]
        latency = isinstance(next(iter(systems.values()))[0]["value"], dict)
        out += _latency_rows(systems) if latency else _value_rows(systems)
        out += [""] + _ratios(systems) + [""]
    limits = _limit_ratios(groups)
    if limits:
        out += ["## jobwheel against the raw-SQL limit", ""] + limits + [""]
    return "\n".join(out)


# ---------------------------------------------------------------- plots

def _gnuplot(script, out_dir):
    subprocess.run(["gnuplot"], input="set terminal pngcairo size 900,560 font 'sans,11'\n" + script, text=True,
                   cwd=out_dir, check=True)


def _cdf(out_dir, png, title, files, xlabel="latency (ms)", logx=True):
    present = [(f, t) for f, t in files if os.path.exists(os.path.join(out_dir, f))]
    if not present:
        return
    plots = ", ".join(f"'{f}' using 1:($0/{_lines(out_dir, f)}) with lines lw 2 title '{t}'" for f, t in present)
    _gnuplot(f"set output '{png}'\nset title '{title}'\nset xlabel '{xlabel}'\nset ylabel 'fraction of jobs'\n"
             f"set key bottom right\nset grid\n{'set logscale x' if logx else ''}\nplot {plots}\n", out_dir)


def _lines(out_dir, f):
    with open(os.path.join(out_dir, f)) as fh:
        return max(1, sum(1 for _ in fh))


def plots(results, out_dir):
    if not shutil.which("gnuplot"):
        log("bench: gnuplot is not installed: no plots")
        return
    _cdf(out_dir, "pickup-cdf.png", "Pickup latency on an idle system (enqueue -> start)",
         [("pickup_jobwheel.txt", "jobwheel"), ("pickup_graphile-worker.txt", "graphile-worker 0.18.0"),
         ("pickup_floor.txt", "raw SQL floor")])
    _cdf(out_dir, "delayed-cdf.png", "Delayed jobs: lateness (run\\_at -> start)",
         [("delayed_wheel.txt", "jobwheel, timing wheel"), ("delayed_heap.txt", "jobwheel, min-heap"),
          ("delayed_graphile-worker.txt", "graphile-worker 0.18.0 (polls)")], "lateness (ms)")
    _cdf(out_dir, "steady-cdf.png", "Steady state: enqueue -> start",
         [("steady_jobwheel.txt", "jobwheel"), ("steady_graphile-worker.txt", "graphile-worker 0.18.0")])
    by_workers = {}
    for r in results:
        if r["workload"] == "drain" and r["system"] == "jobwheel" and "workers" in r:
            by_workers.setdefault(r["workers"], []).append(r["value"])
    if by_workers:
        with open(os.path.join(out_dir, "drain_workers.txt"), "w") as f:
            for w in sorted(by_workers):
                v = by_workers[w]
                f.write(f"{w} {statistics.median(v)} {min(v)} {max(v)}\n")
        refs = [(s, statistics.median(r["value"] for r in rs)) for (w, fig), systems in _groups(results).items()
                for s, rs in systems.items()
                if w == "drain" and s != "jobwheel" and (fig == "drain 10^5 jobs" or s.startswith("raw SQL"))]
        lines = "".join(f", {v} with lines dt 2 lw 2 title '{s} (median)'" for s, v in refs)
        _gnuplot("set output 'drain-workers.png'\nset title 'Drain throughput, 10^5 no-op jobs'\n"
                 "set xlabel 'jobwheel worker processes (256 slots each)'\nset ylabel 'jobs/s'\nset grid\n"
                 "set key bottom right\nset xrange [0.5:4.5]\nset yrange [0:*]\nset xtics 1\n"
                 "plot 'drain_workers.txt' using 1:2:3:4 with yerrorlines lw 2 title 'jobwheel (median, min-max)'"
                 + lines + "\n", out_dir)
    if os.path.exists(os.path.join(out_dir, "longtx_timeline.txt")):
        _gnuplot("set output 'longtx.png'\nset title 'Drain throughput while a transaction holds the xmin horizon'\n"
                 "set xlabel 'seconds'\nset ylabel 'jobs/s (5 s windows)'\nset grid\nset yrange [0:*]\n"
                 "plot 'longtx_timeline.txt' using 1:2 with linespoints lw 2 title 'jobwheel'\n", out_dir)
