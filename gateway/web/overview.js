// SPDX-License-Identifier: MIT
// The overview tab: queues (counts, rate, oldest ready, pause/resume), totals and the DLQ count.
import { STATES } from './constants.js';
import { $, h, badge, markLoaded } from './dom.js';
import { fmtAge, fmtRate } from './format.js';
import { debounce } from './util.js';
import { api } from './api.js';
import { say, report } from './status.js';
import { sse } from './sse.js';
import { pushSample, renderChart } from './chart.js';
import { showJobs } from './jobs.js';

const queues = new Map(); // name -> {name, paused, counts, rate, oldest}

export async function loadQueues() {
	const data = await api('GET', 'api/queues');
	const seen = new Set();
	for (const q of data.queues || []) {
		seen.add(q.name);
		queues.set(q.name, {
			name: q.name,
			paused: !!q.paused,
			counts: q.counts || {},
			rate: q.throughput_per_s,
			oldest: q.oldest_ready_age_ms,
			oldestAt: performance.now(), // the age goes on growing from here
		});
	}
	for (const name of [...queues.keys()]) if (!seen.has(name)) queues.delete(name);
	renderQueues();
	markLoaded('queue-table');
}
// When the ready jobs change, their oldest may have gone: ask again, at most every 3 s.
let queuesAskedAt = 0;
function loadQueuesThrottled() {
	const now = performance.now();
	if (now - queuesAskedAt < 3000) return;
	queuesAskedAt = now;
	if (sse.live) loadQueues().catch((e) => report('Queues', e));
}

export function onStats(d) {
	let total = 0;
	let ask = false; // whether /api/queues knows something the stats do not (paused, oldest ready)
	for (const q of d.queues || []) {
		let entry = queues.get(q.name);
		if (!entry) {
			entry = { name: q.name, paused: null, counts: {}, rate: null, oldest: null };
			queues.set(q.name, entry);
		}
		const before = Number(entry.counts.ready) || 0;
		entry.counts = q.counts || {};
		entry.rate = q.completions_per_s;
		const ready = Number(entry.counts.ready) || 0;
		if (!ready) entry.oldest = null;
		if (entry.paused === null || (ready && (ready !== before || entry.oldest === null))) ask = true;
		total += Number(q.completions_per_s) || 0;
	}
	if (ask) loadQueuesThrottled();
	pushSample(Date.now(), total);
	renderQueues();
	renderChart();
}

export function renderQueues() {
	const tbody = document.querySelector('#queue-table tbody');
	const names = [...queues.keys()].sort();
	const totals = Object.fromEntries(STATES.map((st) => [st, 0]));
	const existing = new Map([...tbody.rows].map((r) => [r.dataset.queue, r]));
	let prev = null;
	for (const name of names) {
		const q = queues.get(name);
		for (const st of STATES) totals[st] += Number(q.counts[st]) || 0;
		let row = existing.get(name);
		existing.delete(name);
		if (!row) row = queueRow(name);
		updateQueueRow(row, q);
		const want = prev ? prev.nextSibling : tbody.firstChild;
		if (row !== want) tbody.insertBefore(row, want);
		prev = row;
	}
	for (const row of existing.values()) row.remove();
	$('queues-empty').hidden = names.length > 0;

	const ul = $('totals');
	if (!ul.children.length) {
		for (const st of STATES) {
			ul.append(h('li', { 'data-total': st },
				h('span', { class: 'total-label' }, badge(st)),
				h('span', { class: 'total-value' }, '0')));
		}
	}
	for (const st of STATES) {
		ul.querySelector(`[data-total="${st}"] .total-value`).textContent = totals[st].toLocaleString();
	}
	$('dlq-count').textContent = totals.dead.toLocaleString();
	$('dlq-count').dataset.zero = String(totals.dead === 0);
}

function queueRow(name) {
	const row = h('tr', { 'data-queue': name },
		h('th', { scope: 'row' }, h('span', { class: 'qname' },
			h('button', { type: 'button', class: 'link', 'data-action': 'filter-queue',
				title: `Show the jobs of queue ${name}` }, name),
			h('span', { class: 'badge paused-badge', 'data-state': 'paused', hidden: true }, 'paused'))),
		STATES.map((st) => h('td', { class: 'num', 'data-count': st }, '0')),
		h('td', { class: 'num', 'data-rate': '' }, '–'),
		h('td', { class: 'num', 'data-oldest': '' }, '–'),
		h('td', {}, h('button', { type: 'button', class: 'small', 'data-action': 'toggle-pause' }, 'Pause')));
	return row;
}

function updateQueueRow(row, q) {
	for (const st of STATES) {
		const v = (Number(q.counts[st]) || 0).toLocaleString();
		const cell = row.querySelector(`[data-count="${st}"]`);
		if (cell.textContent !== v) cell.textContent = v;
	}
	row.querySelector('[data-rate]').textContent = fmtRate(q.rate);
	row.querySelector('[data-oldest]').textContent = q.oldest === null || q.oldest === undefined
		? '–' : fmtAge(q.oldest + (performance.now() - (q.oldestAt || performance.now())));
	row.dataset.paused = q.paused === null ? 'unknown' : String(q.paused);
	row.querySelector('.paused-badge').hidden = !q.paused;
	const btn = row.querySelector('[data-action=toggle-pause]');
	const label = q.paused ? 'Resume' : 'Pause';
	if (btn.textContent !== label) btn.textContent = label;
	btn.setAttribute('aria-label', `${label} queue ${q.name}`);
	btn.disabled = q.paused === null || row.dataset.busy === '1';
}

async function togglePause(name, row) {
	const q = queues.get(name);
	if (!q || q.paused === null) return;
	const pause = !q.paused;
	row.dataset.busy = '1';
	updateQueueRow(row, q);
	try {
		const r = await api('POST', `api/queues/${encodeURIComponent(name)}/${pause ? 'pause' : 'resume'}`);
		q.paused = r && typeof r.paused === 'boolean' ? r.paused : pause;
		say(`Queue ${name} ${q.paused ? 'paused' : 'resumed'}.`);
	} catch (e) {
		report(`${pause ? 'Pause' : 'Resume'} ${name}`, e);
	} finally {
		delete row.dataset.busy;
		updateQueueRow(row, q);
	}
}

export function setupOverview() {
	document.querySelector('#queue-table tbody').addEventListener('click', (e) => {
		const btn = e.target.closest('button[data-action]');
		if (!btn) return;
		const row = btn.closest('tr');
		const name = row.dataset.queue;
		if (btn.dataset.action === 'toggle-pause') togglePause(name, row);
		if (btn.dataset.action === 'filter-queue') showJobs({ queue: name });
	});
	window.addEventListener('resize', debounce(renderChart, 150));
}
