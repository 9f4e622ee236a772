// SPDX-License-Identifier: MIT
// What live events do: refetching everything after a (re)connect or a drop, and fanning job events out to the views.
import { debounce } from './util.js';
import { say, report } from './status.js';
import { sse } from './sse.js';
import { recent } from './recent.js';
import { loadQueues } from './overview.js';
import { loadJobs, jobsOnEvent } from './jobs.js';
import { loadDlq, dlqAdd, dlqRemove } from './dlq.js';
import { loadWorkers } from './workers.js';
import { wfView, loadWorkflows, loadWorkflow, workflowsOnEvent } from './workflows.js';
import { drawer, loadDrawer, loadDrawerSoon } from './drawer.js';

let refreshing = null;
let refreshAgain = false;
export function refreshAll() {
	if (refreshing) {
		// A reconnect while fetching: what is in flight may predate it, so fetch once more after.
		refreshAgain = true;
		return refreshing;
	}
	const tasks = [
		['Queues', loadQueues()],
		['Jobs', loadJobs()],
		['DLQ', loadDlq()],
		['Workers', loadWorkers()],
		['Workflows', loadWorkflows()],
	];
	if (drawer.id !== null) tasks.push(['Job', loadDrawer()]);
	if (wfView.current) tasks.push(['Workflow', loadWorkflow(wfView.current.id)]);
	refreshing = Promise.allSettled(tasks.map((t) => t[1])).then((results) => {
		refreshing = null;
		const failed = results.findIndex((r) => r.status === 'rejected');
		if (failed >= 0) report(tasks[failed][0], results[failed].reason);
		if (refreshAgain) {
			refreshAgain = false;
			if (sse.live) refreshAll();
		}
	});
	return refreshing;
}

let lastDropNotice = 0;
const refreshAfterDrop = debounce(() => refreshAll(), 1000);
export function onDropped(d) {
	const now = Date.now();
	if (now - lastDropNotice > 5000) {
		lastDropNotice = now;
		say(`Missed ${d.dropped} job event(s) while busy: refreshing.`);
	}
	refreshAfterDrop();
}

export function onJobEvent(ev) {
	if (!ev || ev.id === undefined) return;
	ev.id = Number(ev.id);
	recent.set(ev.id, { ev, t: performance.now() });
	jobsOnEvent(ev);
	if (ev.state === 'dead') dlqAdd({ id: ev.id, queue: ev.queue, kind: ev.kind, attempt: ev.attempt,
		died_at: ev.at || new Date().toISOString(), last_error: ev.error || '' });
	else dlqRemove(ev.id);
	workflowsOnEvent(ev);
	if (drawer.id === ev.id) loadDrawerSoon();
	for (const li of document.querySelectorAll(`#job-drawer [data-related-job-id="${ev.id}"] .badge`)) {
		li.dataset.state = ev.state;
		li.textContent = ev.state;
	}
}
