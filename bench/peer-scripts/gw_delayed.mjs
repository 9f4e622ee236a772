// graphile-worker delayed-job lateness: N jobs due over SPREAD seconds
// (starting 1 s from now), run_at -> task start in this process's clock
// (the same clock computed run_at). Prints one JSON line with the samples.
import { run, runMigrations, Logger } from "graphile-worker";
import pg from "pg";
const connectionString = process.env.DATABASE_URL, N = +(process.env.N || 10000), SPREAD = +(process.env.SPREAD || 60);
await runMigrations({ connectionString });
const c = new pg.Client({ connectionString }); await c.connect();
const late = [];
let done;
const finished = new Promise(r => { done = r; });
const runner = await run({ connectionString, concurrency: 64, noHandleSignals: true, logger: new Logger(() => () => {}),
  taskList: { del: async (p) => { late.push(Date.now() - p.due); if (late.length === N) done(); } } });
const t0 = Date.now() + 1000;
await c.query(`select graphile_worker.add_jobs(array_agg(json_populate_record(null::graphile_worker.job_spec,
  json_build_object('identifier', 'del', 'payload', json_build_object('due', $1::bigint + i * $2::bigint / $3::bigint),
                    'run_at', to_timestamp(($1::bigint + i * $2::bigint / $3::bigint) / 1000.0)))))
  from generate_series(0, $3::bigint - 1) i`, [t0, SPREAD * 1000, N]);
await Promise.race([finished, new Promise(r => setTimeout(r, SPREAD * 1000 + 30000))]);
console.log(JSON.stringify({ lateness_ms: late }));
await runner.stop(); await c.end();
process.exit(0);
