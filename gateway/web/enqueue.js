// SPDX-License-Identifier: MIT
// The enqueue tab: the job form and the workflow form, checked before they are sent.
import { $, h } from './dom.js';
import { api } from './api.js';

function fieldError(id, msg, out) {
	const el = $(id);
	el.setAttribute('aria-invalid', 'true');
	out.textContent = msg;
	out.dataset.kind = 'error';
	el.focus();
}

function intField(id, name, body, out) {
	const raw = $(id).value.trim();
	$(id).removeAttribute('aria-invalid');
	if (!raw) return true;
	if (!/^-?\d+$/.test(raw)) {
		fieldError(id, `${name} must be a whole number.`, out);
		return false;
	}
	body[name] = Number(raw);
	return true;
}

async function submitEnqueue(e) {
	e.preventDefault();
	const out = $('enqueue-result');
	out.textContent = '';
	delete out.dataset.kind;
	delete out.dataset.jobId;
	for (const el of e.target.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
	const body = {};
	const kind = $('e-kind').value.trim();
	if (!kind) return fieldError('e-kind', 'Kind is required.', out);
	body.kind = kind;
	const queue = $('e-queue').value.trim();
	if (queue) body.queue = queue;
	const payloadText = $('e-payload').value.trim();
	if (payloadText) {
		let payload;
		try { payload = JSON.parse(payloadText); } catch (err) {
			return fieldError('e-payload', `Payload is not valid JSON: ${err.message}`, out);
		}
		if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
			return fieldError('e-payload', 'Payload must be a JSON object.', out);
		}
		body.payload = payload;
	}
	if (!intField('e-priority', 'priority', body, out)) return undefined;
	if (!intField('e-delay', 'delay_ms', body, out)) return undefined;
	if (!intField('e-max-attempts', 'max_attempts', body, out)) return undefined;
	const uk = $('e-unique').value.trim();
	if (uk) body.unique_key = uk;
	const deps = $('e-depends').value.split(/[\s,]+/).filter(Boolean);
	if (deps.length) {
		if (!deps.every((d) => /^\d+$/.test(d))) return fieldError('e-depends', 'Depends on: job ids are numbers.', out);
		body.depends_on = deps.map(Number);
	}
	const btn = $('e-submit');
	btn.disabled = true;
	try {
		const r = await api('POST', 'api/jobs', body);
		out.dataset.kind = 'ok';
		out.dataset.jobId = String(r.id);
		out.dataset.state = r.state || '';
		out.replaceChildren(`Enqueued job #${r.id} (${r.state}). `,
			h('button', { type: 'button', class: 'link', 'data-action': 'open-job', 'data-job-id': r.id }, 'Show it'));
	} catch (err) {
		out.dataset.kind = 'error';
		out.textContent = `Not enqueued: ${err.message}`;
		if (err.field) {
			const map = { kind: 'e-kind', queue: 'e-queue', payload: 'e-payload', priority: 'e-priority',
				delay_ms: 'e-delay', max_attempts: 'e-max-attempts', unique_key: 'e-unique', depends_on: 'e-depends' };
			if (map[err.field]) $(map[err.field]).setAttribute('aria-invalid', 'true');
		}
	} finally {
		btn.disabled = false;
	}
	return undefined;
}

async function submitWorkflow(e) {
	e.preventDefault();
	const out = $('workflow-result');
	out.textContent = '';
	delete out.dataset.kind;
	delete out.dataset.workflowId;
	$('w-spec').removeAttribute('aria-invalid');
	let spec;
	try { spec = JSON.parse($('w-spec').value); } catch (err) {
		return fieldError('w-spec', `Not valid JSON: ${err.message}`, out);
	}
	const btn = $('w-submit');
	btn.disabled = true;
	try {
		const r = await api('POST', 'api/workflows', spec);
		const n = r.jobs ? Object.keys(r.jobs).length : 0;
		out.dataset.kind = 'ok';
		out.dataset.workflowId = String(r.workflow_id);
		out.replaceChildren(`Submitted workflow #${r.workflow_id} with ${n} job(s). `,
			h('button', { type: 'button', class: 'link', 'data-action': 'open-workflow',
				'data-workflow-id': r.workflow_id }, 'Show graph'));
	} catch (err) {
		out.dataset.kind = 'error';
		out.textContent = `Not submitted: ${err.message}`;
	} finally {
		btn.disabled = false;
	}
	return undefined;
}

export function setupEnqueue() {
	$('enqueue-form').addEventListener('submit', submitEnqueue);
	$('workflow-form').addEventListener('submit', submitWorkflow);
}
