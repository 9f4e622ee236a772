// SPDX-License-Identifier: MIT
// Formatting of times, ages, rates, attempts and JSON for display.

export function fmtTime(iso) {
	if (!iso) return '–';
	const d = new Date(iso);
	if (Number.isNaN(d.getTime())) return String(iso);
	return d.toLocaleString(undefined, { hour12: false });
}

export function fmtAge(ms) {
	if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
	ms = Math.max(0, ms);
	if (ms < 1000) return `${Math.round(ms)} ms`;
	const sec = ms / 1000;
	if (sec < 60) return `${sec.toFixed(1)} s`;
	const min = Math.floor(sec / 60);
	if (min < 60) return `${min} min ${Math.floor(sec % 60)} s`;
	const hr = Math.floor(min / 60);
	if (hr < 48) return `${hr} h ${min % 60} min`;
	return `${Math.floor(hr / 24)} d ${hr % 24} h`;
}

export function fmtRate(v) {
	if (v === null || v === undefined || Number.isNaN(Number(v))) return '–';
	v = Number(v);
	return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

export function attemptText(j) {
	if (j.attempt === undefined || j.attempt === null) return '';
	return j.max_attempts ? `${j.attempt}/${j.max_attempts}` : String(j.attempt);
}

export function json(v) {
	return JSON.stringify(v, null, 2);
}
