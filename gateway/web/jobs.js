// SPDX-License-Identifier: MIT
// The jobs tab: filters, keyset paging, and the live first page.
import { MAX_LIVE_ROWS } from './constants.js';
import { $, h, badge, timeEl, markLoaded, flash } from './dom.js';
import { query } from './util.js';
import { api } from './api.js';
import { say, report } from './status.js';
import { patchFromEvents, mergeEvent } from './recent.js';
import { selectTab } from './tabs.js';

const jobsView = {
	filters: { state: '', queue: '', kind: '', workflow_id: '' },
	limit: 50,
	before: null,
	stack: [],
	nextBefore: null,
	rows: new Map(),
	seq: 0,
};

export async function loadJobs() {
	const v = jobsView;
	const mySeq = ++v.seq;
	const since = performance.now();
	const data = await api('GET', `api/jobs${query({ ...v.filters, limit: v.limit, before: v.before })}`);
	if (mySeq !== v.seq) return;
	const tbody = document.querySelector('#jobs-table tbody');
	v.rows.clear();
	const frag = document.createDocumentFragment();
	for (const raw of data.jobs || []) {
		const j = patchFromEvents(raw, since);
		v.rows.set(j.id, j);
		frag.append(jobRow(j));
	}
	tbody.replaceChildren(frag);
	v.nextBefore = data.next_before ?? null;
	updateJobsPager();
	markLoaded('jobs-table');
}

function updateJobsPager() {
	const v = jobsView;
	$('jobs-newer').disabled = v.stack.length === 0;
	$('jobs-older').disabled = v.nextBefore === null;
	$('jobs-empty').hidden = v.rows.size > 0;
	const page = v.stack.length + 1;
	$('jobs-page-info').textContent = `Page ${page}${v.before === null ? ' (newest, live)' : ''} · ${v.rows.size} job(s)`;
}

function jobRow(j) {
	const row = h('tr', { 'data-job-id': j.id, 'data-state': j.state },
		h('td', {}, h('button', { type: 'button', class: 'link', 'data-action': 'open-job',
			'aria-label': `Job ${j.id}: show details` }, `#${j.id}`)),
		h('td', { 'data-col': 'state' }, badge(j.state)),
		h('td', { 'data-col': 'queue' }, j.queue ?? ''),
		h('td', { 'data-col': 'kind' }, j.kind ?? ''),
		h('td', { 'data-col': 'attempt', class: 'num' }, j.attempt ?? ''),
		h('td', { 'data-col': 'priority', class: 'num' }, j.priority ?? ''),
		h('td', { 'data-col': 'created' }, timeEl(j.created_at)),
		h('td', { 'data-col': 'workflow' }, j.workflow_id !== null && j.workflow_id !== undefined
			? h('button', { type: 'button', class: 'link', 'data-action': 'open-workflow',
				'data-workflow-id': j.workflow_id, 'aria-label': `Workflow ${j.workflow_id}: show graph` },
			`#${j.workflow_id}`)
			: '–'),
		h('td', { 'data-col': 'error', class: 'error' }, j.last_error || ''));
	return row;
}

function updateJobRow(row, j) {
	row.dataset.state = j.state;
	const b = row.querySelector('[data-col=state] .badge');
	b.dataset.state = j.state;
	b.textContent = j.state;
	row.querySelector('[data-col=attempt]').textContent = j.attempt ?? '';
	row.querySelector('[data-col=priority]').textContent = j.priority ?? '';
	row.querySelector('[data-col=error]').textContent = j.last_error || '';
	const f = jobsView.filters;
	row.classList.toggle('stale', !!f.state && f.state !== j.state);
	row.title = row.classList.contains('stale') ? 'No longer matches the state filter' : '';
	flash(row);
}

function matchesJobFilters(ev) {
	const f = jobsView.filters;
	if (f.state && f.state !== ev.state) return false;
	if (f.queue && f.queue !== ev.queue) return false;
	if (f.kind && f.kind !== ev.kind) return false;
	if (f.workflow_id && String(ev.workflow_id ?? '') !== String(f.workflow_id)) return false;
	return true;
}

export function jobsOnEvent(ev) {
	const v = jobsView;
	const known = v.rows.get(ev.id);
	const tbody = document.querySelector('#jobs-table tbody');
	if (known) {
		const j = mergeEvent(known, ev);
		v.rows.set(j.id, j);
		const row = tbody.querySelector(`tr[data-job-id="${ev.id}"]`);
		if (row) updateJobRow(row, j);
		return;
	}
	// A job we do not show: add it if it belongs on the first (live) page.
	if (v.before !== null || !matchesJobFilters(ev)) return;
	const ids = [...v.rows.keys()];
	const minId = ids.length ? Math.min(...ids) : -Infinity;
	if (ids.length >= v.limit && ev.id < minId) return;
	const j = mergeEvent({
		id: ev.id, queue: ev.queue, kind: ev.kind, priority: ev.priority, attempt: ev.attempt,
		created_at: ev.at, workflow_id: ev.workflow_id ?? null, last_error: null,
	}, ev);
	v.rows.set(j.id, j);
	const row = jobRow(j);
	let before = null;
	for (const r of tbody.rows) {
		if (Number(r.dataset.jobId) < j.id) { before = r; break; }
	}
	tbody.insertBefore(row, before);
	flash(row);
	// Keep the live page bounded; what falls off is on the next page.
	while (tbody.rows.length > Math.max(v.limit, MAX_LIVE_ROWS)) {
		const last = tbody.rows[tbody.rows.length - 1];
		v.rows.delete(Number(last.dataset.jobId));
		last.remove();
		const lastKept = tbody.rows[tbody.rows.length - 1];
		if (lastKept) v.nextBefore = Number(lastKept.dataset.jobId);
	}
	updateJobsPager();
}

function readJobFilters() {
	const wf = $('f-workflow').value.trim();
	if (wf && !/^\d+$/.test(wf)) {
		$('f-workflow').setAttribute('aria-invalid', 'true');
		say('Workflow id must be a number.', 'error');
		$('f-workflow').focus();
		return false;
	}
	$('f-workflow').removeAttribute('aria-invalid');
	jobsView.filters = {
		state: $('f-state').value,
		queue: $('f-queue').value.trim(),
		kind: $('f-kind').value.trim(),
		workflow_id: wf,
	};
	jobsView.limit = Number($('f-limit').value) || 50;
	jobsView.before = null;
	jobsView.stack = [];
	return true;
}

export function showJobs(filters) {
	$('f-state').value = filters.state || '';
	$('f-queue').value = filters.queue || '';
	$('f-kind').value = filters.kind || '';
	$('f-workflow').value = filters.workflow_id || '';
	readJobFilters();
	selectTab('jobs');
	loadJobs().catch((e) => report('Jobs', e));
}

export function setupJobs() {
	$('job-filters').addEventListener('submit', (e) => {
		e.preventDefault();
		if (readJobFilters()) loadJobs().catch((err) => report('Jobs', err));
	});
	$('job-filters').addEventListener('reset', (e) => {
		e.preventDefault();
		for (const id of ['f-state', 'f-queue', 'f-kind', 'f-workflow']) $(id).value = '';
		$('f-limit').value = '50';
		readJobFilters();
		loadJobs().catch((err) => report('Jobs', err));
	});
	$('jobs-older').addEventListener('click', () => {
		if (jobsView.nextBefore === null) return;
		jobsView.stack.push(jobsView.before);
		jobsView.before = jobsView.nextBefore;
		loadJobs().catch((e) => report('Jobs', e));
	});
	$('jobs-newer').addEventListener('click', () => {
		if (!jobsView.stack.length) return;
		jobsView.before = jobsView.stack.pop();
		loadJobs().then(() => {
			if (!jobsView.stack.length) $('jobs-older').focus();
		}).catch((e) => report('Jobs', e));
	});
}
