// SPDX-License-Identifier: MIT
// Browser test of the jobwheel dashboard: Debian's chromium driven by playwright-core against a live gateway.
//
// Usage: node tests/browser/dashboard.mjs URL ARTIFACTS_DIR [--token TOKEN] [--restart] [--steps a,b,...]
//
// The gateway at URL must have workers behind it that serve the queue "default" (kinds noop, sleep
// and fail) and none that serve the queues "paging" and "parked". The script makes its own jobs through the API
// and the dashboard, saves PNG screenshots and console.log to ARTIFACTS_DIR, and exits 1 on the
// first failed check or on any console error or uncaught page error.
//
// --token TOKEN  tokens exist: the script types TOKEN into the dashboard's token field (requests
//                refused with 401 before that are expected) and sends it with its own API calls.
// --restart      the caller restarts the gateway on request: the script prints a line
//                "@@restart-gateway", the caller restarts it on the same address and answers with a
//                line on stdin, "restarted ID" where ID is a job it made while the gateway was down
//                (in an unserved queue); the dashboard must notice, reconnect by itself, fetch
//                that job again and show new events.
// --steps        run only these steps (names as printed), in their usual order.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

const STEPS = ['load', 'dlq', 'pause', 'requeue', 'enqueue', 'live', 'requeueall', 'drawer', 'cancel', 'paging',
	'workflow', 'workers', 'phone', 'restart'];
const WAIT = 15000;

function usage(msg) {
	console.error(`dashboard.mjs: ${msg}`);
	console.error('usage: node dashboard.mjs URL ARTIFACTS_DIR [--token TOKEN] [--restart] [--steps a,b,...]');
	process.exit(2);
}

const args = process.argv.slice(2);
const positional = [];
const opts = { token: '', restart: false, steps: null };
for (let i = 0; i < args.length; i++) {
	if (args[i] === '--token') opts.token = args[++i] || usage('--token needs a value');
	else if (args[i] === '--restart') opts.restart = true;
	else if (args[i] === '--steps') opts.steps = (args[++i] || usage('--steps needs a value')).split(',');
	else if (args[i].startsWith('--')) usage(`unknown option ${args[i]}`);
	else positional.push(args[i]);
}
if (positional.length !== 2) usage('expected URL and ARTIFACTS_DIR');
const [URL_ARG, ARTIFACTS] = positional;
const BASE = new URL(URL_ARG);
const steps = opts.steps || STEPS.filter((s) => s !== 'restart' || opts.restart);
for (const s of steps) if (!STEPS.includes(s)) usage(`unknown step ${s}`);
fs.mkdirSync(ARTIFACTS, { recursive: true });

/* ---------- console and page errors ---------- */

const consoleLog = [];
const problems = [];
// While a deliberate outage lasts (the gateway restarting, no token entered yet), the browser logs
// the requests that fail: those messages are expected then and only then.
let expectedNetworkErrors = null;

function onConsole(msg) {
	const loc = msg.location();
	const line = `[${msg.type()}] ${msg.text()}${loc && loc.url ? ` (${loc.url}:${loc.lineNumber})` : ''}`;
	consoleLog.push(line);
	if (msg.type() !== 'error') return;
	if (expectedNetworkErrors && expectedNetworkErrors.test(msg.text())) {
		consoleLog.push('  (expected during a deliberate outage)');
		return;
	}
	problems.push(`console error: ${line}`);
}

function assertNoProblems() {
	if (problems.length) throw new Error(`the page reported errors:\n  ${problems.join('\n  ')}`);
}

/* ---------- API of the gateway, for setting things up ---------- */

async function api(method, p, body) {
	const headers = { Accept: 'application/json' };
	if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
	if (body !== undefined) headers['Content-Type'] = 'application/json';
	const res = await fetch(new URL(p, BASE), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
	const text = await res.text();
	let data = text;
	try { data = JSON.parse(text); } catch (e) { /* not JSON */ }
	return { status: res.status, body: data };
}

async function apiOk(method, p, body, want = [200, 201]) {
	const r = await api(method, p, body);
	if (!want.includes(r.status)) {
		throw new Error(`${method} ${p} ${body ? JSON.stringify(body) : ''} -> ${r.status} ${JSON.stringify(r.body)}`);
	}
	return r.body;
}

// Polls fn until it returns a truthy value (for conditions outside the page, e.g. the API).
async function until(what, fn, timeout = WAIT) {
	const deadline = Date.now() + timeout;
	let last;
	for (;;) {
		last = await fn();
		if (last) return last;
		if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
		await new Promise((r) => setTimeout(r, 100));
	}
}

/* ---------- helpers on the page ---------- */

let page;
let checks = 0;
const ctx = {};

function check(cond, msg) {
	if (!cond) throw new Error(`check failed: ${msg}`);
	checks++;
}

async function shot(name) {
	await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function visible(selector, what, timeout = WAIT) {
	try {
		await page.locator(selector).first().waitFor({ state: 'visible', timeout });
	} catch (e) {
		throw new Error(`${what}: ${selector} not visible within ${timeout} ms`);
	}
	checks++;
}

async function gone(selector, what, timeout = WAIT) {
	try {
		await page.locator(selector).first().waitFor({ state: 'detached', timeout });
	} catch (e) {
		throw new Error(`${what}: ${selector} still present after ${timeout} ms`);
	}
	checks++;
}

async function waitPage(what, fn, arg, timeout = WAIT) {
	try {
		await page.waitForFunction(fn, arg, { timeout, polling: 'raf' });
	} catch (e) {
		throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
	}
	checks++;
}

async function tab(name) {
	await page.click(`#tab-${name}`);
	await visible(`#panel-${name}`, `${name} tab`);
}

const text = (selector) => page.locator(selector).first().textContent();

async function live(what) {
	await visible('#conn[data-state="live"]', what, 20000);
}

/* ---------- the steps ---------- */

const impl = {
	async load() {
		const resp = await page.goto(BASE.href, { waitUntil: 'load' });
		check(resp && resp.status() === 200, `GET / answers 200 (got ${resp && resp.status()})`);
		check((await page.title()) === 'jobwheel', 'the page title is jobwheel');
		if (opts.token) {
			await visible('#conn[data-state="unauthorized"]', 'without a token the indicator asks for one');
			await page.fill('#token', opts.token);
			await page.click('#token-save');
			expectedNetworkErrors = null;
			check(await page.evaluate(() => localStorage.getItem('jobwheel.token')) === opts.token,
				'the token is kept in localStorage');
		}
		await live('the connection indicator shows the live stream');
		for (const t of ['overview', 'jobs', 'dlq', 'workers', 'workflows', 'enqueue']) {
			await visible(`#tab-${t}`, 'tab buttons');
		}
		await visible('#throughput-chart', 'throughput chart');
		// Every form control has a label and every button a name.
		const unlabelled = await page.evaluate(() => [
			...[...document.querySelectorAll('input, select, textarea')]
				.filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
				.map((el) => `control #${el.id}`),
			...[...document.querySelectorAll('button')]
				.filter((b) => !b.textContent.trim() && !b.getAttribute('aria-label'))
				.map((b) => `button #${b.id}`),
		]);
		check(unlabelled.length === 0, `every control is labelled (unlabelled: ${unlabelled.join(', ')})`);
		check(await page.locator('[aria-live]').count() >= 2, 'status regions are aria-live');
		// Keyboard: arrow keys move between tabs.
		await page.focus('#tab-overview');
		await page.keyboard.press('ArrowRight');
		await visible('#panel-jobs', 'ArrowRight on the tab list selects the next tab');
		check(await page.evaluate(() => document.activeElement.id) === 'tab-jobs', 'focus follows the selected tab');
		await tab('overview');
		await shot('01-overview');
	},

	async dlq() {
		ctx.tag = `boom-${Date.now()}`;
		const r = await apiOk('POST', '/api/jobs',
			{ kind: 'fail', queue: 'default', payload: { message: ctx.tag, retryable: false } });
		ctx.deadId = r.id;
		await tab('dlq');
		const row = `#dlq-table tr[data-job-id="${ctx.deadId}"]`;
		await visible(row, 'the dead job appears in the DLQ without a reload');
		const t = await text(row);
		check(t.includes(ctx.tag), `the DLQ row shows the error (${t})`);
		await waitPage('the DLQ count in the tab', () => Number(document.getElementById('dlq-count').textContent) >= 1);
		await shot('02-dlq');
	},

	async pause() {
		await tab('overview');
		const row = '#queue-table tr[data-queue="default"]';
		await visible(row, 'the queue default in the overview');
		await visible(`${row}[data-paused="false"] [data-action="toggle-pause"]:not([disabled])`, 'Pause button ready');
		check((await text(`${row} [data-action="toggle-pause"]`)).trim() === 'Pause', 'the button says Pause');
		await page.click(`${row} [data-action="toggle-pause"]`);
		await visible(`${row}[data-paused="true"]`, 'the queue shows paused');
		check((await text(`${row} [data-action="toggle-pause"]`)).trim() === 'Resume', 'the button now says Resume');
		const q = await apiOk('GET', '/api/queues');
		check(q.queues.find((x) => x.name === 'default').paused === true, 'GET /api/queues says default is paused');
		// The overview counts come from stats events: the dead job is counted.
		await waitPage('the dead count of queue default', () =>
			Number(document.querySelector('#queue-table tr[data-queue="default"] [data-count="dead"]').textContent) >= 1);
		await shot('03-overview-paused');
	},

	async requeue() {
		await tab('dlq');
		const row = `#dlq-table tr[data-job-id="${ctx.deadId}"]`;
		await visible(row, 'the dead job in the DLQ');
		await page.click(`${row} button[data-action="requeue"]`);
		await gone(row, 'the requeued job leaves the DLQ');
		await waitPage('the status line to confirm', (id) =>
			document.getElementById('status').textContent.includes(`Job ${id} requeued`), ctx.deadId);
		const j = await apiOk('GET', `/api/jobs/${ctx.deadId}`);
		check(j.state === 'ready', `the job is ready again (got ${j.state})`);
		// It stays out of the DLQ on a fresh load (its queue is paused, so it stays ready).
		const loads = Number(await page.getAttribute('#dlq-table', 'data-loads'));
		await page.click('#dlq-refresh');
		await waitPage('the DLQ to reload', (n) => Number(document.getElementById('dlq-table').dataset.loads) > n, loads);
		check(await page.locator(row).count() === 0, 'the job is not in the reloaded DLQ');
		await shot('04-dlq-requeued');
	},

	async enqueue() {
		await tab('enqueue');
		await page.fill('#e-kind', 'sleep');
		await page.fill('#e-queue', 'default');
		await page.fill('#e-payload', '{"ms": 3000}');
		await page.click('#e-submit');
		await visible('#enqueue-result[data-job-id]', 'the enqueue form reports the new job');
		ctx.sleepId = Number(await page.getAttribute('#enqueue-result', 'data-job-id'));
		check(ctx.sleepId > 0, 'the new job has an id');
		const t = await text('#enqueue-result');
		check(t.includes(`#${ctx.sleepId}`), `the result names the job (${t})`);
		// A bad payload is refused in the form, with the field marked.
		await page.fill('#e-payload', '{not json');
		await page.click('#e-submit');
		await visible('#e-payload[aria-invalid="true"]', 'a bad payload is marked invalid');
		check((await text('#enqueue-result')).includes('not valid JSON'), 'the form says why');
		await page.fill('#e-payload', '{}');
		check(await page.locator('#e-payload[aria-invalid]').count() === 0, 'editing the field clears the mark');
		// The workflow form, with its example spec of four jobs.
		await page.click('#w-submit');
		await visible('#workflow-result[data-workflow-id]', 'the workflow form reports the new workflow');
		const wt = await text('#workflow-result');
		check(/Submitted workflow #\d+ with 4 job\(s\)/.test(wt), `the result counts its jobs (${wt})`);
		await shot('05-enqueue');
	},

	async live() {
		// From here on the row must change by SSE alone: count the job list requests.
		let listRequests = 0;
		const count = (req) => { if (new URL(req.url()).pathname === '/api/jobs') listRequests++; };
		await tab('jobs');
		await visible(`#jobs-table tr[data-job-id="${ctx.sleepId}"]`, 'the enqueued job is in the table');
		page.on('request', count);
		const badge = (st) => `#jobs-table tr[data-job-id="${ctx.sleepId}"] .badge[data-state="${st}"]`;
		await visible(badge('ready'), 'the job shows ready while its queue is paused');
		await shot('05-jobs-ready');
		await tab('overview');
		await page.click('#queue-table tr[data-queue="default"] [data-action="toggle-pause"]');
		await visible('#queue-table tr[data-queue="default"][data-paused="false"]', 'the queue shows resumed');
		await tab('jobs');
		await visible(badge('running'), 'the job goes running live', 20000);
		await shot('06-jobs-running');
		await visible(badge('succeeded'), 'the job goes succeeded live', 20000);
		page.off('request', count);
		check(listRequests === 0, `the row changed by SSE alone (GET /api/jobs made ${listRequests} time(s))`);
		await shot('07-jobs-succeeded');
		// The requeued failing job runs again now and dies again: it comes back to the DLQ live.
		await visible(`#jobs-table tr[data-job-id="${ctx.deadId}"] .badge[data-state="dead"]`,
			'the requeued job dies again, live in the table');
		await tab('dlq');
		await visible(`#dlq-table tr[data-job-id="${ctx.deadId}"]`, 'and is back in the DLQ live');
	},

	async requeueall() {
		// Pause default so that the requeued job stays ready, requeue the whole DLQ, resume.
		await tab('overview');
		const q = '#queue-table tr[data-queue="default"]';
		await page.click(`${q} [data-action="toggle-pause"]`);
		await visible(`${q}[data-paused="true"]`, 'the queue shows paused');
		await tab('dlq');
		await visible(`#dlq-table tr[data-job-id="${ctx.deadId}"]`, 'the dead job in the DLQ');
		await page.click('#dlq-requeue-all');
		await visible('#dlq-confirm', 'Requeue all asks first');
		check(await page.evaluate(() => document.activeElement.id) === 'dlq-requeue-all-confirm',
			'focus moves to the confirmation');
		await page.click('#dlq-requeue-all-confirm');
		await waitPage('the status line to count the requeued jobs', () =>
			/Requeued [1-9]\d* dead job/.test(document.getElementById('status').textContent));
		await visible('#dlq-empty', 'the DLQ is empty');
		check(await page.locator('#dlq-table tbody tr').count() === 0, 'no rows left in the DLQ');
		check((await apiOk('GET', `/api/jobs/${ctx.deadId}`)).state === 'ready', 'the job is ready again');
		await shot('08-dlq-requeued-all');
		await tab('overview');
		await page.click(`${q} [data-action="toggle-pause"]`);
		await visible(`${q}[data-paused="false"]`, 'the queue shows resumed');
		await tab('dlq');
		await visible(`#dlq-table tr[data-job-id="${ctx.deadId}"]`, 'the job dies again and is back in the DLQ live');
	},

	async cancel() {
		// A job in a queue nobody serves: cancel it from the drawer, then retry it.
		const { id } = await apiOk('POST', '/api/jobs', { kind: 'noop', queue: 'parked', payload: { why: 'cancel me' } });
		await tab('jobs');
		await visible(`#jobs-table tr[data-job-id="${id}"] .badge[data-state="ready"]`, 'the parked job is listed');
		await page.click(`#jobs-table tr[data-job-id="${id}"] button[data-action="open-job"]`);
		await visible('#drawer-state[data-state="ready"]', 'its drawer');
		check(await page.locator('#drawer-retry').count() === 0, 'a ready job offers no Retry');
		await page.click('#drawer-cancel');
		await visible('#drawer-state[data-state="cancelled"]', 'the drawer shows it cancelled');
		await visible(`#jobs-table tr[data-job-id="${id}"] .badge[data-state="cancelled"]`, 'so does the table, live');
		await page.click('#drawer-retry');
		await visible('#drawer-state[data-state="ready"]', 'Retry puts it back to ready');
		await visible(`#jobs-table tr[data-job-id="${id}"] .badge[data-state="ready"]`, 'in the table too');
		await page.click('#drawer-close');
		await page.locator('#job-drawer').waitFor({ state: 'hidden', timeout: WAIT });
	},

	async drawer() {
		await tab('jobs');
		const open = `#jobs-table tr[data-job-id="${ctx.sleepId}"] button[data-action="open-job"]`;
		await page.click(open);
		await visible('#job-drawer', 'the detail drawer opens');
		await visible('#drawer-state[data-state="succeeded"]', 'the drawer shows the state');
		const payload = JSON.parse(await text('#drawer-payload'));
		check(payload.ms === 3000, `the drawer shows the payload (${JSON.stringify(payload)})`);
		await visible('#drawer-result', 'the drawer has a result section');
		await shot('08-drawer');
		await page.keyboard.press('Escape');
		await page.locator('#job-drawer').waitFor({ state: 'hidden', timeout: WAIT });
		check(await page.evaluate((sel) => document.activeElement === document.querySelector(sel), open),
			'Escape closes the drawer and gives focus back to the row');
		// The failing job: its attempts with their errors.
		await page.click(`#jobs-table tr[data-job-id="${ctx.deadId}"] button[data-action="open-job"]`);
		await visible('#drawer-state[data-state="dead"]', 'the failing job is dead');
		await visible('#drawer-errors li', 'its failed attempts are listed');
		const errs = await text('#drawer-errors');
		check(errs.includes(ctx.tag), `the attempts show their error (${errs})`);
		await visible('#drawer-retry', 'a dead job offers Retry');
		await shot('09-drawer-dead');
		await page.click('#drawer-close');
		await page.locator('#job-drawer').waitFor({ state: 'hidden', timeout: WAIT });
	},

	async paging() {
		const jobs = Array.from({ length: 12 }, (_, i) => ({ kind: 'noop', queue: 'paging', payload: { n: i } }));
		const { ids } = await apiOk('POST', '/api/jobs/batch', { jobs });
		const sorted = [...ids].sort((a, b) => b - a);
		await tab('jobs');
		await page.fill('#f-queue', 'paging');
		await page.selectOption('#f-limit', '10');
		await page.click('#f-apply');
		const shown = () => page.$$eval('#jobs-table tbody tr', (rows) => rows.map((r) => Number(r.dataset.jobId)));
		await waitPage('the first page of queue paging', () => {
			const rows = [...document.querySelectorAll('#jobs-table tbody tr')];
			return rows.length === 10 && rows.every((r) => r.querySelector('[data-col=queue]').textContent === 'paging');
		});
		check(JSON.stringify(await shown()) === JSON.stringify(sorted.slice(0, 10)), 'page 1: the 10 newest, newest first');
		await page.click('#jobs-older');
		await waitPage('the second page', () => document.querySelectorAll('#jobs-table tbody tr').length === 2);
		check(JSON.stringify(await shown()) === JSON.stringify(sorted.slice(10)), 'page 2: the 2 oldest');
		check(await page.locator('#jobs-newer:not([disabled])').count() === 1, 'Newer is enabled on page 2');
		await shot('10-jobs-page2');
		await page.click('#jobs-newer');
		await waitPage('back on the first page', () => document.querySelectorAll('#jobs-table tbody tr').length === 10);
		// Filter by state and kind too.
		await page.selectOption('#f-state', 'succeeded');
		await page.fill('#f-queue', '');
		await page.fill('#f-kind', 'sleep');
		await page.click('#f-apply');
		await waitPage('the succeeded sleep jobs', (id) => {
			const rows = [...document.querySelectorAll('#jobs-table tbody tr')];
			return rows.length >= 1 && rows.every((r) => r.dataset.state === 'succeeded' &&
				r.querySelector('[data-col=kind]').textContent === 'sleep') && rows.some((r) => Number(r.dataset.jobId) === id);
		}, ctx.sleepId);
		await page.click('#f-reset');
		await waitPage('all jobs again', () => document.querySelectorAll('#jobs-table tbody tr').length >= 14);
		check(await page.inputValue('#f-kind') === '' && await page.inputValue('#f-limit') === '50', 'Reset clears the filters');
	},

	async workflow() {
		const spec = {
			name: 'dashboard-graph',
			jobs: [
				{ key: 'root', kind: 'sleep', payload: { ms: 5000 } },
				{ key: 'left', kind: 'noop', depends_on: ['root'] },
				{ key: 'right', kind: 'noop', depends_on: ['root'] },
				{ key: 'join', kind: 'noop', depends_on: ['left', 'right'] },
				{ key: 'tail', kind: 'noop', depends_on: ['join', 'root'] },
			],
		};
		const r = await apiOk('POST', '/api/workflows', spec);
		const wf = r.workflow_id;
		const ids = r.jobs;
		await tab('workflows');
		const row = `#workflows-table tr[data-workflow-id="${wf}"]`;
		await visible(row, 'the new workflow is listed');
		await page.click(`${row} button[data-action="open-workflow"]`);
		await visible(`#workflow-graph[data-workflow-id="${wf}"]`, 'the graph is drawn');
		const nodes = await page.$$eval('#workflow-graph [data-node-id]', (els) =>
			els.map((e) => ({ id: Number(e.dataset.nodeId), layer: Number(e.dataset.layer), state: e.dataset.state })));
		check(nodes.length === 5, `one node per job (got ${nodes.length})`);
		const byId = Object.fromEntries(nodes.map((n) => [n.id, n]));
		for (const [key, id] of Object.entries(ids)) check(byId[id], `a node for job ${key} (#${id})`);
		const want = { root: 0, left: 1, right: 1, join: 2, tail: 3 };
		for (const [key, layer] of Object.entries(want)) {
			check(byId[ids[key]].layer === layer, `${key} in layer ${layer} (longest path; got ${byId[ids[key]].layer})`);
		}
		check(await page.locator('#workflow-graph path.edge').count() === 6, 'one edge per dependency');
		check(await page.locator(`#workflow-graph path.edge[data-from="${ids.root}"][data-to="${ids.tail}"]`).count() === 1,
			'the edge root -> tail');
		// Rows of nodes top to bottom: every edge points down.
		const geometry = await page.$$eval('#workflow-graph [data-node-id]', (els) =>
			els.map((e) => ({ id: Number(e.dataset.nodeId), y: e.getBoundingClientRect().top })));
		const y = Object.fromEntries(geometry.map((g) => [g.id, g.y]));
		check(y[ids.root] < y[ids.left] && y[ids.left] === y[ids.right] && y[ids.right] < y[ids.join] &&
			y[ids.join] < y[ids.tail], 'layers are drawn top to bottom');
		const node = (key, st) => `#workflow-graph [data-node-id="${ids[key]}"][data-state="${st}"]`;
		await visible(node('join', 'blocked'), 'join is blocked while root sleeps');
		await visible(node('root', 'running'), 'root shows running');
		await shot('11-workflow-running');
		for (const key of Object.keys(want)) await visible(node(key, 'succeeded'), `${key} turns succeeded live`, 20000);
		await visible('#workflow-state[data-state="succeeded"]', 'the workflow shows succeeded');
		await shot('12-workflow-succeeded');
		// A node opens its job, by keyboard too.
		await page.focus(`#workflow-graph [data-node-id="${ids.join}"]`);
		await page.keyboard.press('Enter');
		await visible(`#job-drawer[data-job-id="${ids.join}"]`, 'Enter on a node opens its job');
		await visible(`#drawer-parents [data-related-job-id="${ids.left}"]`, 'the drawer lists the parents');
		await visible(`#drawer-children [data-related-job-id="${ids.tail}"]`, 'and the children');
		await page.keyboard.press('Escape');
		await page.locator('#job-drawer').waitFor({ state: 'hidden', timeout: WAIT });
		ctx.workflowId = wf;
	},

	async workers() {
		await tab('workers');
		await visible('#workers-table tr[data-worker-id]', 'the workers are listed');
		const ages = await page.$$eval('#workers-table tr[data-worker-id] [data-heartbeat-age]',
			(els) => els.map((e) => ({ base: e.dataset.heartbeatAge, text: e.textContent })));
		check(ages.length >= 1 && ages.every((a) => a.base !== '' && Number(a.base) < 60000 && /\d/.test(a.text)),
			`every worker shows a recent heartbeat age (${JSON.stringify(ages)})`);
		await shot('13-workers');
	},

	async phone() {
		await page.setViewportSize({ width: 375, height: 812 });
		for (const t of ['overview', 'jobs', 'dlq', 'workers', 'workflows', 'enqueue']) {
			await page.evaluate((name) => document.getElementById(`tab-${name}`).scrollIntoView({ inline: 'nearest' }), t);
			await tab(t);
			if (t === 'workflows' && ctx.workflowId) {
				await page.click(`#workflows-table tr[data-workflow-id="${ctx.workflowId}"] button[data-action="open-workflow"]`);
				await visible('#workflow-graph [data-node-id]', 'the graph at phone width');
			}
			const m = await page.evaluate(() => ({
				scroll: document.documentElement.scrollWidth,
				inner: window.innerWidth,
				heading: document.querySelector('section.panel:not([hidden]) h2').getBoundingClientRect().right,
			}));
			check(m.scroll <= m.inner, `${t} at 375 px: no sideways scrolling of the page (${m.scroll} > ${m.inner})`);
			check(m.heading <= m.inner, `${t} at 375 px: the heading fits`);
			await shot(`14-phone-${t}`);
		}
		await tab('jobs');
		await page.locator('#jobs-table tbody tr button[data-action="open-job"]').first().click();
		await visible('#drawer-state', 'the drawer at phone width');
		const box = await page.locator('#job-drawer').boundingBox();
		check(box && box.x >= 0 && box.x + box.width <= 375 + 0.5, `the drawer fits the phone (${JSON.stringify(box)})`);
		await visible('#drawer-close', 'its close button');
		await shot('15-phone-drawer');
		await page.click('#drawer-close');
		await page.setViewportSize({ width: 1280, height: 800 });
		// The dark colour scheme, for a look (no checks beyond the absence of errors).
		await page.emulateMedia({ colorScheme: 'dark' });
		await tab('overview');
		await shot('15-dark-overview');
		await tab('workflows');
		await shot('15-dark-workflows');
		await page.emulateMedia({ colorScheme: 'light' });
	},

	async restart() {
		await tab('jobs');
		await live('live before the restart');
		expectedNetworkErrors = /ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|ERR_INCOMPLETE_CHUNKED_ENCODING|Failed to load resource/;
		const rl = readline.createInterface({ input: process.stdin });
		const answer = new Promise((resolve, reject) => {
			rl.once('line', resolve);
			rl.once('close', () => reject(new Error('stdin closed before the gateway was restarted')));
		});
		console.log('@@restart-gateway');
		await visible('#conn:not([data-state="live"])', 'the indicator shows the stream is down', 20000);
		await shot('16-restart-down');
		const line = await answer;
		rl.close();
		const madeWhileDown = Number(line.trim().split(/\s+/)[1]);
		await live('the dashboard reconnects by itself');
		expectedNetworkErrors = null;
		if (madeWhileDown) {
			await visible(`#jobs-table tr[data-job-id="${madeWhileDown}"]`,
				'a job made while the gateway was down is there after the reconnect');
		}
		// Events after the restart arrive: a new job shows up and finishes, live.
		const { id } = await apiOk('POST', '/api/jobs', { kind: 'noop', queue: 'default' });
		await visible(`#jobs-table tr[data-job-id="${id}"] .badge[data-state="succeeded"]`,
			'a job enqueued after the restart shows up live');
		await shot('17-restart-up');
	},
};

/* ---------- run ---------- */

async function main() {
	const browser = await chromium.launch({
		executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
			'--disable-component-update', '--no-first-run'],
	});
	let failed = null;
	let current = null;
	try {
		const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
		page = await context.newPage();
		page.setDefaultTimeout(WAIT);
		page.on('console', onConsole);
		page.on('pageerror', (err) => {
			consoleLog.push(`[pageerror] ${err.stack || err}`);
			problems.push(`uncaught page error: ${err.message}`);
		});
		page.on('requestfailed', (req) => consoleLog.push(`[requestfailed] ${req.method()} ${req.url()}: ${req.failure()?.errorText}`));
		if (opts.token) expectedNetworkErrors = /status of 401|Failed to load resource/;
		for (const name of STEPS) {
			if (!steps.includes(name)) continue;
			current = name;
			const t0 = Date.now();
			await impl[name]();
			assertNoProblems();
			console.log(`ok ${name} (${Date.now() - t0} ms)`);
		}
		current = null;
		assertNoProblems();
	} catch (err) {
		failed = err;
		if (page) {
			try { await shot(`failure-${current || 'end'}`); } catch (e) { /* the page is gone */ }
			try {
				const status = await page.locator('#status').textContent({ timeout: 1000 });
				const conn = await page.locator('#conn').getAttribute('data-state', { timeout: 1000 });
				console.error(`dashboard status line: ${JSON.stringify(status)}, connection: ${conn}`);
			} catch (e) { /* ignore */ }
		}
	} finally {
		fs.writeFileSync(path.join(ARTIFACTS, 'console.log'), `${consoleLog.join('\n')}\n`);
		await browser.close();
	}
	if (failed) {
		console.error(`FAIL${current ? ` in step ${current}` : ''}: ${failed.message}`);
		if (consoleLog.length) console.error(`browser console (last 30 lines):\n  ${consoleLog.slice(-30).join('\n  ')}`);
		console.error(`screenshots and console.log in ${ARTIFACTS}`);
		process.exit(1);
	}
	console.log(`dashboard: ${checks} checks passed in ${steps.length} steps; screenshots in ${ARTIFACTS}`);
}

main().catch((err) => {
	console.error(`FAIL: ${err.stack || err}`);
	process.exit(1);
});
