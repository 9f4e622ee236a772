// graphile-worker pickup latency on an idle system: N single jobs, one at a
// time (each waits for the previous to start), enqueue -> task start, in
// this process's clock. Prints one JSON line with the samples in ms.
import { run, runMigrations, Logger } from "graphile-worker";
import pg from "pg";
const connectionString = process.env.DATABASE_URL, N = +(process.env.N || 300);
await runMigrations({ connectionString });
const c = new pg.Client({ connectionString }); await c.connect();
let started;
const runner = await run({ connectionString, concurrency: 8, noHandleSignals: true, logger: new Logger(() => () => {}),
  taskList: { imm: async (p) => { started(performance.now() - p.t); } } });
await new Promise(r => setTimeout(r, 1000));
const ms = [];
for (let i = 0; i < N; i++) {
  const seen = new Promise(r => { started = r; });
  await c.query("select graphile_worker.add_job('imm', json_build_object('t', $1::float8))", [performance.now()]);
  ms.push(await seen);
  await new Promise(r => setTimeout(r, 20));
}
console.log(JSON.stringify({ pickup_ms: ms }));
await runner.stop(); await c.end();
process.exit(0);
