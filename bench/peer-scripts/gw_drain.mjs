// graphile-worker drain: enqueue N no-op jobs with one add_jobs call, then
// drain them with one worker process. BATCH=1 turns on its batching (local
// queue of LQ jobs, completions and failures batched with no delay). Its
// per-job log line is silenced: printing 10^5 lines costs it throughput, and
// it is compared at its best. The rate is measured as jobwheel's is, from
// the start of the first job to the last completion (the queue seen empty,
// polled every 10 ms), leaving out the worker's start-up (drain_wall_per_s
// includes it). Prints one JSON line.
import { run, runMigrations, Logger } from "graphile-worker";
import pg from "pg";
const N = +(process.env.N || 20000), CONC = +(process.env.CONC || 64), BATCH = process.env.BATCH === "1";
const connectionString = process.env.DATABASE_URL;
await runMigrations({ connectionString });
const c = new pg.Client({ connectionString }); await c.connect();
await c.query("delete from graphile_worker._private_jobs");
let t0 = Date.now();
await c.query(`select graphile_worker.add_jobs(array_agg(json_populate_record(null::graphile_worker.job_spec,
  json_build_object('identifier', 'noop', 'payload', json_build_object('i', i))))) from generate_series(1, $1) i`, [N]);
const tEnq = (Date.now() - t0) / 1000;
const preset = BATCH ? { worker: { localQueue: { size: +(process.env.LQ || 500) }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } } : {};
let first;
t0 = Date.now();
const runner = await run({ connectionString, concurrency: CONC, noHandleSignals: true, pollInterval: 1000, preset,
  logger: new Logger(() => () => {}), taskList: { noop: async () => { first ??= Date.now(); } } });
await new Promise(res => { const iv = setInterval(async () => {
  const r = await c.query("select count(*)::int n from graphile_worker._private_jobs");
  if (r.rows[0].n === 0) { clearInterval(iv); res(); } }, 10); });
const end = Date.now(), tRun = (end - t0) / 1000, tJobs = (end - first) / 1000;
console.log(JSON.stringify({ N, conc: CONC, batch: BATCH, lq: +(process.env.LQ || 500), enqueue_per_s: Math.round(N / tEnq), drain_per_s: Math.round(N / tJobs), drain_wall_per_s: Math.round(N / tRun) }));
await runner.stop(); await c.end();
process.exit(0);
