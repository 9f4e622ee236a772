// SPDX-License-Identifier: MIT
// The job drawer: one job's details, errors, parents and children; cancel and retry.
import { TERMINAL } from './constants.js';
import { $, h, badge, timeEl } from './dom.js';
import { attemptText, json } from './format.js';
import { debounce } from './util.js';
import { api } from './api.js';
import { say, report } from './status.js';

export const drawer = { id: null, opener: null, seq: 0, job: null };

export function openJob(id, opener) {
	id = Number(id);
	const wasOpen = drawer.id !== null;
	drawer.id = id;
	if (!wasOpen) drawer.opener = opener || document.activeElement;
	drawer.job = null;
	$('job-drawer').hidden = false;
	$('job-drawer').dataset.jobId = String(id);
	$('drawer-title').textContent = `Job #${id}`;
	$('drawer-body').replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
	document.body.classList.add('drawer-open');
	loadDrawer().catch((e) => report(`Job ${id}`, e));
	$('drawer-title').focus();
}

function closeDrawer() {
	if (drawer.id === null) return;
	drawer.id = null;
	drawer.seq++;
	$('job-drawer').hidden = true;
	delete $('job-drawer').dataset.jobId;
	document.body.classList.remove('drawer-open');
	const o = drawer.opener;
	drawer.opener = null;
	if (o && o.isConnected && typeof o.focus === 'function') o.focus();
}

export async function loadDrawer() {
	const id = drawer.id;
	if (id === null) return;
	const mySeq = ++drawer.seq;
	try {
		const j = await api('GET', `api/jobs/${id}`);
		if (mySeq !== drawer.seq || drawer.id !== id) return;
		drawer.job = j;
		renderDrawer(j);
	} catch (e) {
		if (mySeq !== drawer.seq) return;
		if (e.status === 404) {
			$('drawer-body').replaceChildren(h('p', { class: 'error' }, `No job #${id}.`));
			return;
		}
		throw e;
	}
}
export const loadDrawerSoon = debounce(() => loadDrawer().catch((e) => report('Job', e)), 250);

function kv(label, value) {
	return [h('dt', {}, label), h('dd', {}, value === null || value === undefined || value === '' ? '–' : value)];
}

function relatedList(id, items) {
	if (!items || !items.length) return h('p', { class: 'muted', id }, 'None.');
	return h('ul', { class: 'related', id },
		items.map((r) => h('li', { 'data-related-job-id': r.id },
			h('button', { type: 'button', class: 'link', 'data-action': 'open-job', 'data-job-id': r.id,
				'data-focus-key': `rel-${r.id}` }, `#${r.id}`),
			' ', h('span', { class: 'kind' }, r.kind || ''), ' ', badge(r.state))));
}

function renderDrawer(j) {
	const body = $('drawer-body');
	const scroll = body.scrollTop;
	const active = body.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
	const actions = h('div', { class: 'drawer-actions' },
		!TERMINAL.has(j.state) && h('button', { type: 'button', id: 'drawer-cancel', class: 'warn',
			'data-focus-key': 'cancel', 'data-action': 'cancel-job' }, 'Cancel job'),
		(j.state === 'dead' || j.state === 'cancelled') && h('button', { type: 'button', id: 'drawer-retry',
			class: 'primary', 'data-focus-key': 'retry', 'data-action': 'retry-job' }, 'Retry (requeue)'));
	const errors = j.errors || [];
	body.replaceChildren(
		h('dl', { class: 'kv' },
			kv('State', badge(j.state, 'drawer-state')),
			kv('Queue', j.queue),
			kv('Kind', j.kind),
			kv('Attempt', attemptText(j)),
			kv('Priority', j.priority),
			kv('Run at', timeEl(j.run_at)),
			kv('Created', timeEl(j.created_at)),
			kv('Started', timeEl(j.started_at)),
			kv('Finished', timeEl(j.finished_at)),
			kv('Worker', j.worker),
			kv('Unique key', j.unique_key),
			kv('Timeout', j.timeout_ms ? `${j.timeout_ms} ms` : null),
			kv('Workflow', j.workflow_id !== null && j.workflow_id !== undefined
				? h('button', { type: 'button', class: 'link', 'data-action': 'open-workflow',
					'data-workflow-id': j.workflow_id, 'data-focus-key': 'wf' }, `#${j.workflow_id}`)
				: null),
			kv('Last error', j.last_error ? h('span', { class: 'error' }, j.last_error) : null)),
		actions,
		h('h3', {}, 'Payload'),
		h('pre', { id: 'drawer-payload', tabindex: '0', 'aria-label': 'Payload' }, json(j.payload ?? {})),
		h('h3', {}, 'Result'),
		j.result === null || j.result === undefined
			? h('p', { id: 'drawer-result', class: 'muted' }, 'No result.')
			: h('pre', { id: 'drawer-result', tabindex: '0', 'aria-label': 'Result' }, json(j.result)),
		h('h3', {}, `Failed attempts (${errors.length})`),
		errors.length
			? h('ol', { id: 'drawer-errors', class: 'errors' }, errors.map((e) => h('li', { 'data-attempt': e.attempt },
				h('div', { class: 'muted small' }, `Attempt ${e.attempt} · ${e.worker || 'unknown worker'} · `, timeEl(e.at)),
				h('pre', { class: 'error' }, e.error ?? ''))))
			: h('p', { id: 'drawer-errors', class: 'muted' }, 'No failed attempts.'),
		h('h3', {}, 'Parents'),
		relatedList('drawer-parents', j.parents),
		h('h3', {}, 'Children'),
		relatedList('drawer-children', j.children));
	body.scrollTop = scroll;
	if (active) {
		const el = body.querySelector(`[data-focus-key="${active}"]`);
		if (el) el.focus();
		else $('drawer-title').focus();
	}
}

export async function jobAction(action, id, btn) {
	if (btn) btn.disabled = true;
	try {
		const r = await api('POST', `api/jobs/${id}/${action}`);
		say(action === 'cancel' ? `Job ${id} cancelled.` : `Job ${id} requeued (${r && r.state ? r.state : 'ready'}).`);
		return true;
	} catch (e) {
		report(`${action === 'cancel' ? 'Cancel' : 'Retry'} job ${id}`, e);
		if (btn) btn.disabled = false;
		return false;
	} finally {
		if (drawer.id === id) loadDrawerSoon();
	}
}

export function setupDrawer() {
	$('drawer-close').addEventListener('click', closeDrawer);
	$('job-drawer').addEventListener('click', (e) => {
		const btn = e.target.closest('button[data-action]');
		if (!btn) return;
		const a = btn.dataset.action;
		if (a === 'cancel-job') jobAction('cancel', drawer.id, btn);
		else if (a === 'retry-job') jobAction('retry', drawer.id, btn);
	});
	document.addEventListener('keydown', (e) => {
		if (e.key === 'Escape' && drawer.id !== null) {
			e.preventDefault();
			closeDrawer();
		}
	});
}
