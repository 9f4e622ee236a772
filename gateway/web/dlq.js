// SPDX-License-Identifier: MIT
// The DLQ tab: dead jobs, paging, requeue one or all.
import { $, h, timeEl, markLoaded, flash } from './dom.js';
import { query } from './util.js';
import { api } from './api.js';
import { say, report } from './status.js';
import { recent } from './recent.js';
import { jobAction } from './drawer.js';

const dlqView = { queue: '', before: null, nextBefore: null, rows: new Map(), seq: 0 };

export async function loadDlq() {
	const v = dlqView;
	const mySeq = ++v.seq;
	const data = await api('GET', `api/dlq${query({ queue: v.queue, before: v.before, limit: 50 })}`);
	if (mySeq !== v.seq) return;
	v.rows.clear();
	const frag = document.createDocumentFragment();
	for (const j of data.jobs || []) {
		const r = recent.get(j.id);
		if (r && r.ev.state !== 'dead') continue; // requeued meanwhile
		v.rows.set(j.id, j);
		frag.append(dlqRow(j));
	}
	document.querySelector('#dlq-table tbody').replaceChildren(frag);
	v.nextBefore = data.next_before ?? null;
	updateDlqPager();
	markLoaded('dlq-table');
}

function updateDlqPager() {
	$('dlq-first').disabled = dlqView.before === null;
	$('dlq-older').disabled = dlqView.nextBefore === null;
	$('dlq-empty').hidden = dlqView.rows.size > 0;
}

function dlqRow(j) {
	return h('tr', { 'data-job-id': j.id, 'data-state': 'dead' },
		h('td', {}, h('button', { type: 'button', class: 'link', 'data-action': 'open-job',
			'aria-label': `Job ${j.id}: show details` }, `#${j.id}`)),
		h('td', {}, j.queue ?? ''),
		h('td', {}, j.kind ?? ''),
		h('td', { class: 'num' }, j.attempt ?? ''),
		h('td', {}, timeEl(j.died_at)),
		h('td', { class: 'error' }, j.last_error || ''),
		h('td', {}, h('button', { type: 'button', class: 'small', 'data-action': 'requeue', 'data-job-id': j.id,
			'aria-label': `Requeue job ${j.id}` }, 'Requeue')));
}

export function dlqAdd(j) {
	const v = dlqView;
	if (v.before !== null || v.rows.has(j.id)) return;
	if (v.queue && v.queue !== j.queue) return;
	v.rows.set(j.id, j);
	const row = dlqRow(j);
	document.querySelector('#dlq-table tbody').prepend(row);
	flash(row);
	updateDlqPager();
}

export function dlqRemove(id) {
	if (!dlqView.rows.delete(id)) return;
	const row = document.querySelector(`#dlq-table tbody tr[data-job-id="${id}"]`);
	if (row) {
		const had = row.contains(document.activeElement);
		const next = row.nextElementSibling || row.previousElementSibling;
		row.remove();
		if (had) {
			const target = next && next.querySelector('[data-action=requeue]');
			(target || $('dlq-refresh')).focus();
		}
	}
	updateDlqPager();
}

export function onDlqEvent(d) {
	dlqAdd({ id: d.id, queue: d.queue, kind: d.kind, attempt: d.attempt,
		died_at: new Date().toISOString(), last_error: d.error || '' });
}

export function setupDlq() {
	$('dlq-form').addEventListener('submit', (e) => {
		e.preventDefault();
		dlqView.queue = $('dlq-queue').value.trim();
		dlqView.before = null;
		loadDlq().catch((err) => report('DLQ', err));
	});
	$('dlq-older').addEventListener('click', () => {
		dlqView.before = dlqView.nextBefore;
		loadDlq().catch((e) => report('DLQ', e));
	});
	$('dlq-first').addEventListener('click', () => {
		dlqView.before = null;
		loadDlq().then(() => $('dlq-older').focus()).catch((e) => report('DLQ', e));
	});
	document.querySelector('#dlq-table tbody').addEventListener('click', async (e) => {
		const btn = e.target.closest('button[data-action=requeue]');
		if (!btn) return;
		const id = Number(btn.dataset.jobId);
		if (await jobAction('retry', id, btn)) dlqRemove(id);
	});
	$('dlq-requeue-all').addEventListener('click', () => {
		const q = $('dlq-queue').value.trim();
		$('dlq-confirm-text').textContent = q ? `Requeue every dead job of queue ${q}?` : 'Requeue every dead job?';
		$('dlq-confirm').hidden = false;
		$('dlq-requeue-all-confirm').focus();
	});
	$('dlq-requeue-all-cancel').addEventListener('click', () => {
		$('dlq-confirm').hidden = true;
		$('dlq-requeue-all').focus();
	});
	$('dlq-requeue-all-confirm').addEventListener('click', async () => {
		const q = $('dlq-queue').value.trim();
		const btn = $('dlq-requeue-all-confirm');
		btn.disabled = true;
		try {
			const r = await api('POST', 'api/dlq/requeue', q ? { all: true, queue: q } : { all: true });
			say(`Requeued ${r && r.requeued !== undefined ? r.requeued : 'the'} dead job(s).`);
			dlqView.before = null;
			await loadDlq();
		} catch (e) {
			report('Requeue all', e);
		} finally {
			btn.disabled = false;
			$('dlq-confirm').hidden = true;
			$('dlq-requeue-all').focus();
		}
	});
}
