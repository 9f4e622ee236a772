// SPDX-License-Identifier: MIT
// The jobwheel dashboard, the entry module: wires the tabs, the token form and the live connection together.
// REST calls to /api are in api.js, the SSE stream in sse.js and live.js, each tab in its own module.
import { $ } from './dom.js';
import { setToken, memToken } from './api.js';
import { say, report } from './status.js';
import { sse, connect } from './sse.js';
import { currentTab, selectTab, setupTabs } from './tabs.js';
import { renderQueues, loadQueues, setupOverview } from './overview.js';
import { renderChart } from './chart.js';
import { setupJobs } from './jobs.js';
import { openJob, setupDrawer } from './drawer.js';
import { setupDlq } from './dlq.js';
import { loadWorkers, tickWorkers } from './workers.js';
import { openWorkflow, setupWorkflows } from './workflows.js';
import { setupEnqueue } from './enqueue.js';

function setupGlobalClicks() {
	// Buttons that open a job or a workflow, wherever they are.
	document.addEventListener('click', (e) => {
		const btn = e.target.closest('button[data-action]');
		if (!btn) return;
		if (btn.dataset.action === 'open-job') {
			const id = btn.dataset.jobId || (btn.closest('[data-job-id]') || {}).dataset?.jobId;
			if (id) openJob(id, btn);
		} else if (btn.dataset.action === 'open-workflow') {
			openWorkflow(btn.dataset.workflowId);
		}
	});
}

function setupToken() {
	$('token').value = memToken;
	$('token-form').addEventListener('submit', (e) => {
		e.preventDefault();
		setToken($('token').value.trim());
		sse.unauthorized = false;
		say(memToken ? 'Token saved in this browser.' : 'Token cleared.');
		connect();
	});
	$('token-clear').addEventListener('click', () => {
		$('token').value = '';
		setToken('');
		sse.unauthorized = false;
		say('Token cleared.');
		connect();
	});
}

function start() {
	setupTabs();
	setupOverview();
	setupJobs();
	setupDrawer();
	setupDlq();
	setupWorkflows();
	setupGlobalClicks();
	setupToken();
	setupEnqueue();
	// Editing a field marked invalid takes the mark away.
	for (const f of ['enqueue-form', 'workflow-form', 'job-filters']) {
		$(f).addEventListener('input', (e) => e.target.removeAttribute('aria-invalid'));
	}
	renderQueues();
	selectTab(location.hash.slice(1) || 'overview');
	connect();
	setInterval(tickWorkers, 1000);
	setInterval(() => {
		if (!sse.live || document.hidden) return;
		if (currentTab === 'workers') loadWorkers().catch((e) => report('Workers', e));
		if (currentTab === 'overview') loadQueues().catch((e) => report('Queues', e));
	}, 10000);
	setInterval(() => { if (currentTab === 'overview' && !document.hidden) renderChart(); }, 5000);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
