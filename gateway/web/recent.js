// SPDX-License-Identifier: MIT
// The recent job events store: the latest event per job, kept a minute.
import { TERMINAL } from './constants.js';

// The latest job event per job, so that a list fetched while events arrive is patched with them.
export const recent = new Map();
setInterval(() => {
	const old = performance.now() - 60000;
	for (const [id, r] of recent) if (r.t < old) recent.delete(id);
}, 10000);

export function patchFromEvents(job, since) {
	const r = recent.get(job.id);
	return r && r.t >= since ? mergeEvent(job, r.ev) : job;
}

export function mergeEvent(job, ev) {
	const j = { ...job, state: ev.state };
	if (ev.attempt !== undefined) j.attempt = ev.attempt;
	if (ev.priority !== undefined) j.priority = ev.priority;
	if (ev.error) j.last_error = ev.error;
	if (ev.state === 'running') j.started_at = ev.at || j.started_at;
	if (TERMINAL.has(ev.state)) j.finished_at = ev.at || j.finished_at;
	return j;
}
