// graphile-worker under a steady load: bench/suite/steady.py enqueues N
// no-op jobs at a fixed rate with add_job(), each carrying its enqueue time
// (epoch ms, payload.t); the task records now - t. This process only runs
// the worker: once it is listening it creates table bench_ready (the
// producers wait for it); it prints the samples (ms) as one JSON line when
// it has seen N jobs start, or after TIMEOUT_S. Its best low-latency setup:
// concurrency CONC (64), per-job logging silenced, LQ > 0 turns on the
// local queue with completions batched without delay (needed above ~1k
// jobs/s on two cores), LQ=0 fetches job by job.
import { run, runMigrations, Logger } from "graphile-worker";
import pg from "pg";
const connectionString = process.env.DATABASE_URL, N = +(process.env.N || 1000);
const CONC = +(process.env.CONC || 64), LQ = +(process.env.LQ ?? 0), TIMEOUT = +(process.env.TIMEOUT_S || 120) * 1000;
await runMigrations({ connectionString });
const now = () => performance.timeOrigin + performance.now();
const ms = [];
let finish;
const done = new Promise(r => { finish = r; });
const preset = LQ ? { worker: { localQueue: { size: LQ }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } } : {};
const runner = await run({ connectionString, concurrency: CONC, noHandleSignals: true, pollInterval: 1000, preset,
  logger: new Logger(() => () => {}),
  taskList: { noop: async (p) => { ms.push(now() - p.t); if (ms.length >= N) finish(); } } });
const c = new pg.Client({ connectionString }); await c.connect();
await c.query("create table if not exists bench_ready ()");
const timer = setTimeout(finish, TIMEOUT);
await done;
clearTimeout(timer);
console.log(JSON.stringify({ n: ms.length, expected: N, conc: CONC, lq: LQ, start_ms: ms.map(v => Math.round(v * 1000) / 1000) }));
await runner.stop(); await c.end();
process.exit(0);
