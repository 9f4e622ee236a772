// SPDX-License-Identifier: MIT
// The API token (kept in localStorage) and the REST client of /api.
import { TOKEN_KEY } from './constants.js';
import { onUnauthorized } from './sse.js';

function getToken() {
	try { return localStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
}

export function setToken(t) {
	try {
		if (t) localStorage.setItem(TOKEN_KEY, t);
		else localStorage.removeItem(TOKEN_KEY);
	} catch (e) { /* storage unavailable: the token lives for this page only */ }
	memToken = t;
}
export let memToken = getToken();

export class ApiError extends Error {
	constructor(status, code, message, field) {
		super(message);
		this.status = status;
		this.code = code;
		this.field = field;
	}
}

export async function api(method, path, body) {
	const headers = { Accept: 'application/json' };
	const token = memToken;
	if (token) headers.Authorization = `Bearer ${token}`;
	const init = { method, headers, cache: 'no-store' };
	if (body !== undefined) {
		headers['Content-Type'] = 'application/json';
		init.body = JSON.stringify(body);
	}
	let res;
	try {
		res = await fetch(path, init);
	} catch (e) {
		throw new ApiError(0, 'network', 'the gateway is unreachable');
	}
	const text = await res.text();
	let data = null;
	if (text) {
		try { data = JSON.parse(text); } catch (e) { data = null; }
	}
	if (!res.ok) {
		const err = (data && data.error) || {};
		if (res.status === 401) onUnauthorized();
		let msg = err.message || `${res.status} ${res.statusText}`;
		if (err.field && !msg.includes(err.field)) msg = `${err.field}: ${msg}`;
		throw new ApiError(res.status, err.code || `http_${res.status}`, msg, err.field);
	}
	return data;
}
