// SPDX-License-Identifier: MIT
// Small helpers without the DOM: debouncing, query strings.

export function debounce(fn, ms) {
	let t = null;
	const d = (...args) => {
		clearTimeout(t);
		t = setTimeout(() => { t = null; fn(...args); }, ms);
	};
	d.cancel = () => clearTimeout(t);
	return d;
}

export function query(params) {
	const q = new URLSearchParams();
	for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') q.set(k, v);
	const str = q.toString();
	return str ? `?${str}` : '';
}
