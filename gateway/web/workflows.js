// SPDX-License-Identifier: MIT
// The workflows tab: the list, paging, and the open workflow kept live.
import { $, h, badge, timeEl, markLoaded } from './dom.js';
import { query, debounce } from './util.js';
import { api } from './api.js';
import { say, report } from './status.js';
import { sse } from './sse.js';
import { currentTab, selectTab } from './tabs.js';
import { patchFromEvents } from './recent.js';
import { openJob } from './drawer.js';
import { drawGraph, workflowState, nodeLabel } from './graph.js';

export const wfView = { before: null, nextBefore: null, seq: 0, stale: false, current: null, gseq: 0 };

export async function loadWorkflows() {
	const mySeq = ++wfView.seq;
	const data = await api('GET', `api/workflows${query({ limit: 25, before: wfView.before })}`);
	if (mySeq !== wfView.seq) return;
	wfView.stale = false;
	const frag = document.createDocumentFragment();
	for (const w of data.workflows || []) {
		frag.append(h('tr', { 'data-workflow-id': w.id, 'data-state': w.state || '',
			class: wfView.current && wfView.current.id === w.id ? 'selected' : null },
			h('td', {}, h('button', { type: 'button', class: 'link', 'data-action': 'open-workflow',
				'data-workflow-id': w.id, 'aria-label': `Workflow ${w.id}: show graph` }, `#${w.id}`)),
			h('td', {}, w.name || '–'),
			h('td', {}, badge(w.state)),
			h('td', { class: 'num' }, w.jobs ?? ''),
			h('td', { class: 'num' }, w.succeeded ?? ''),
			h('td', { class: 'num' }, w.dead ?? ''),
			h('td', { class: 'num' }, w.cancelled ?? ''),
			h('td', { class: 'num' }, w.active ?? ''),
			h('td', {}, timeEl(w.created_at))));
	}
	document.querySelector('#workflows-table tbody').replaceChildren(frag);
	wfView.nextBefore = data.next_before ?? null;
	$('workflows-first').disabled = wfView.before === null;
	$('workflows-older').disabled = wfView.nextBefore === null;
	$('workflows-empty').hidden = (data.workflows || []).length > 0;
	markLoaded('workflows-table');
}
const loadWorkflowsSoon = debounce(() => {
	if (currentTab === 'workflows' && sse.live) loadWorkflows().catch((e) => report('Workflows', e));
	else wfView.stale = true;
}, 1000);

export async function loadWorkflow(id) {
	const mySeq = ++wfView.gseq;
	const since = performance.now();
	const w = await api('GET', `api/workflows/${id}`);
	if (mySeq !== wfView.gseq) return;
	w.jobs = (w.jobs || []).map((j) => patchFromEvents(j, since));
	wfView.current = w;
	drawGraph(wfView.current);
}

export async function openWorkflow(id) {
	id = Number(id);
	if (currentTab !== 'workflows') selectTab('workflows');
	$('workflow-view').hidden = false;
	$('workflow-title').textContent = `Workflow #${id}`;
	for (const r of document.querySelectorAll('#workflows-table tbody tr')) {
		r.classList.toggle('selected', Number(r.dataset.workflowId) === id);
	}
	try {
		await loadWorkflow(id);
		$('workflow-title').focus();
		$('workflow-view').scrollIntoView({ block: 'nearest' });
	} catch (e) {
		if (e.status === 404) {
			$('workflow-graph').replaceChildren();
			say(`No workflow #${id}.`, 'error');
		} else {
			report(`Workflow ${id}`, e);
		}
	}
}

function closeWorkflow() {
	wfView.current = null;
	wfView.gseq++;
	$('workflow-view').hidden = true;
	$('workflow-graph').replaceChildren();
	for (const r of document.querySelectorAll('#workflows-table tbody tr.selected')) r.classList.remove('selected');
	$('workflows-first').focus();
}

export function workflowsOnEvent(ev) {
	if (ev.workflow_id === null || ev.workflow_id === undefined) return;
	loadWorkflowsSoon();
	const w = wfView.current;
	if (!w || Number(w.id) !== Number(ev.workflow_id)) return;
	const i = w.jobs.findIndex((j) => j.id === ev.id);
	if (i < 0) {
		loadWorkflow(w.id).catch((e) => report('Workflow', e));
		return;
	}
	w.jobs[i] = { ...w.jobs[i], state: ev.state };
	const g = document.querySelector(`#workflow-graph [data-node-id="${ev.id}"]`);
	if (g) {
		g.dataset.state = ev.state;
		g.setAttribute('aria-label', nodeLabel(w.jobs[i]));
		g.querySelector('title').textContent = nodeLabel(w.jobs[i]);
		g.querySelector('.node-state').textContent = ev.state;
	}
	const st = workflowState(w.jobs);
	$('workflow-state').dataset.state = st;
	$('workflow-state').textContent = st;
}

export function setupWorkflows() {
	$('workflows-older').addEventListener('click', () => {
		wfView.before = wfView.nextBefore;
		loadWorkflows().catch((e) => report('Workflows', e));
	});
	$('workflows-first').addEventListener('click', () => {
		wfView.before = null;
		loadWorkflows().then(() => $('workflows-older').focus()).catch((e) => report('Workflows', e));
	});
	$('workflow-close').addEventListener('click', closeWorkflow);
	const graph = $('workflow-graph');
	const activate = (e) => {
		const g = e.target.closest('[data-node-id]');
		if (g) openJob(g.dataset.nodeId, g);
	};
	graph.addEventListener('click', activate);
	graph.addEventListener('keydown', (e) => {
		if (e.key === 'Enter' || e.key === ' ') {
			e.preventDefault();
			activate(e);
		}
	});
}
