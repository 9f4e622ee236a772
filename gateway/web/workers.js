// SPDX-License-Identifier: MIT
// The workers tab: the list, heartbeat ages ticking between fetches, lost workers.
import { $, h, timeEl, markLoaded } from './dom.js';
import { fmtAge } from './format.js';
import { debounce } from './util.js';
import { api } from './api.js';
import { say, report } from './status.js';
import { sse } from './sse.js';

const workersView = { list: [], fetchedAt: 0 };

export async function loadWorkers() {
	const data = await api('GET', 'api/workers');
	workersView.list = data.workers || [];
	workersView.fetchedAt = performance.now();
	renderWorkers();
}
const loadWorkersSoon = debounce(() => { if (sse.live) loadWorkers().catch((e) => report('Workers', e)); }, 300);

function renderWorkers() {
	const frag = document.createDocumentFragment();
	for (const w of workersView.list) {
		const running = Array.isArray(w.running)
			? (w.running.length ? w.running.slice(0, 8).map((id) => [h('button', { type: 'button', class: 'link',
				'data-action': 'open-job', 'data-job-id': id }, `#${id}`), ' ']).concat(w.running.length > 8 ? [`+${w.running.length - 8}`] : [])
				: '0')
			: (w.running ?? '–');
		frag.append(h('tr', { 'data-worker-id': w.id, 'data-state': w.state || '' },
			h('td', { class: 'mono' }, w.id),
			h('td', {}, w.host ?? ''),
			h('td', { class: 'num' }, w.pid ?? ''),
			h('td', {}, Array.isArray(w.queues) ? w.queues.join(', ') : (w.queues ?? '')),
			h('td', { class: 'num' }, w.concurrency ?? ''),
			h('td', {}, h('span', { class: 'badge', 'data-state': `worker-${w.state || 'unknown'}` }, w.state || '?')),
			h('td', { class: 'num', 'data-heartbeat-age': w.heartbeat_age_ms ?? '' }, fmtAge(w.heartbeat_age_ms)),
			h('td', {}, running),
			h('td', {}, timeEl(w.started_at))));
	}
	document.querySelector('#workers-table tbody').replaceChildren(frag);
	$('workers-empty').hidden = workersView.list.length > 0;
	markLoaded('workers-table');
}

export function tickWorkers() {
	const dt = performance.now() - workersView.fetchedAt;
	for (const cell of document.querySelectorAll('#workers-table [data-heartbeat-age]')) {
		const base = cell.dataset.heartbeatAge;
		if (base === '') continue;
		const age = Number(base) + dt;
		cell.textContent = fmtAge(age);
		cell.classList.toggle('late', age > 15000);
	}
}

export function onWorkerEvent(d) {
	if (d && d.state === 'lost') say(`Worker ${d.id} on ${d.host || '?'} was lost.`, 'warn');
	loadWorkersSoon();
}
