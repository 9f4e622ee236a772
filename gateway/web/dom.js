// SPDX-License-Identifier: MIT
// DOM helpers: building HTML and SVG elements (text, never HTML), badges, times, row highlights.
import { fmtTime } from './format.js';

export const $ = (id) => document.getElementById(id);
const SVG_NS = 'http://www.w3.org/2000/svg';

// h('td', {class: 'x', 'data-id': 3, onclick: fn}, child, ...): an element; strings become text, never HTML.
export function h(tag, attrs, ...children) {
	return fill(document.createElement(tag), attrs, children);
}

export function s(tag, attrs, ...children) {
	return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

function fill(el, attrs, children) {
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === null || v === undefined || v === false) continue;
		if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
		else el.setAttribute(k, v === true ? '' : String(v));
	}
	for (const c of children.flat(Infinity)) {
		if (c === null || c === undefined || c === false) continue;
		el.append(c instanceof Node ? c : document.createTextNode(String(c)));
	}
	return el;
}

export function badge(state, id) {
	return h('span', { class: 'badge', 'data-state': state || '', id }, state || '–');
}

export function timeEl(iso) {
	if (!iso) return '–';
	return h('time', { datetime: iso, title: iso }, fmtTime(iso));
}

// Each table counts its loads in data-loads, so that a test (or a curious reader) can tell a fresh list.
export function markLoaded(tableId) {
	const t = $(tableId);
	t.dataset.loads = String(Number(t.dataset.loads || 0) + 1);
}

const reducedMotion = window.matchMedia('(prefers-reduced-motion: reduce)');
// A short highlight of a row that changed (no forced layout: cheap at many events per second).
export function flash(row) {
	if (reducedMotion.matches || typeof row.animate !== 'function') return;
	row.animate([{ backgroundColor: 'rgba(70, 120, 230, 0.25)' }, { backgroundColor: 'rgba(70, 120, 230, 0)' }],
		{ duration: 1200, easing: 'ease-out' });
}
