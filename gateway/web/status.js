// SPDX-License-Identifier: MIT
// The status line: messages and errors for the user.
import { $ } from './dom.js';
import { ApiError } from './api.js';

let sayTimer = null;
export function say(msg, kind = 'info') {
	const el = $('status');
	el.textContent = msg;
	el.dataset.kind = kind;
	clearTimeout(sayTimer);
	if (kind !== 'error') sayTimer = setTimeout(() => { el.textContent = ''; delete el.dataset.kind; }, 8000);
}

export function report(what, err) {
	if (!(err instanceof ApiError)) console.error(err); // a bug of this page, not an answer of the gateway
	if (err && err.status === 401) return; // onUnauthorized already said so
	say(`${what}: ${err && err.message ? err.message : err}`, 'error');
}
