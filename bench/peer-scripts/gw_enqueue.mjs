// SPDX-License-Identifier: MIT
// graphile-worker enqueue throughput (bench/suite/enqueue.py): installs its
// schema (runMigrations), then, with N > 0, enqueues N no-op jobs in one
// graphile_worker.add_jobs() call and prints the rate. N=0: schema only.
import { runMigrations } from "graphile-worker";
import pg from "pg";

const N = +(process.env.N || 0);
const connectionString = process.env.DATABASE_URL;
await runMigrations({ connectionString });
if (N === 0) {
  console.log(JSON.stringify({ migrated: true }));
  process.exit(0);
}
const c = new pg.Client({ connectionString });
await c.connect();
await c.query("delete from graphile_worker._private_jobs");
const t0 = process.hrtime.bigint();
const r = await c.query(
  `select count(*)::int n from graphile_worker.add_jobs((
     select array_agg(json_populate_record(null::graphile_worker.job_spec,
                      json_build_object('identifier', 'noop', 'payload', json_build_object('i', i))))
     from generate_series(1, $1) i))`, [N]);
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const stored = (await c.query("select count(*)::int n from graphile_worker._private_jobs")).rows[0].n;
await c.end();
if (r.rows[0].n !== N || stored !== N) {
  console.error(`gw_enqueue: add_jobs returned ${r.rows[0].n} jobs, ${stored} stored, not ${N}`);
  process.exit(1);
}
console.log(JSON.stringify({ system: "graphile-worker 0.18.0", N, seconds, enqueue_per_s: Math.round(N / seconds) }));
