// SPDX-License-Identifier: MIT
// The throughput chart of the overview: completions per second over the last five minutes, in SVG.
import { CHART_WINDOW_MS } from './constants.js';
import { $, s } from './dom.js';
import { fmtRate } from './format.js';
import { currentTab } from './tabs.js';

const samples = []; // {t, v}: completions/s over all queues

export function pushSample(t, v) {
	samples.push({ t, v });
	while (samples.length && samples[0].t < t - CHART_WINDOW_MS) samples.shift();
}

export function renderChart() {
	if (currentTab !== 'overview') return;
	const svg = $('throughput-chart');
	const W = Math.max(240, Math.round(svg.getBoundingClientRect().width || 600));
	const H = 160;
	const pad = { l: 44, r: 10, t: 10, b: 22 };
	const pw = W - pad.l - pad.r;
	const ph = H - pad.t - pad.b;
	svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
	for (const el of [...svg.children]) if (el.tagName !== 'desc') el.remove();

	const now = Date.now();
	const t0 = now - CHART_WINDOW_MS;
	const maxV = Math.max(1, ...samples.map((p) => p.v));
	const top = niceCeil(maxV);
	const x = (t) => pad.l + ((t - t0) / CHART_WINDOW_MS) * pw;
	const y = (v) => pad.t + ph - (v / top) * ph;

	const grid = s('g', { class: 'grid' });
	for (const f of [0, 0.5, 1]) {
		const v = top * f;
		grid.append(s('line', { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v) }));
		grid.append(s('text', { x: pad.l - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmtRate(v)));
	}
	for (let m = 0; m <= 5; m++) {
		const t = t0 + m * 60000;
		grid.append(s('text', { x: x(t), y: H - 6, 'text-anchor': m === 0 ? 'start' : m === 5 ? 'end' : 'middle' },
			m === 5 ? 'now' : `-${5 - m}m`));
	}
	svg.append(grid);

	const pts = samples.filter((p) => p.t >= t0);
	if (pts.length > 1) {
		const line = pts.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join('');
		const area = `${line}L${x(pts[pts.length - 1].t).toFixed(1)},${y(0)}L${x(pts[0].t).toFixed(1)},${y(0)}Z`;
		svg.append(s('path', { class: 'area', d: area }));
		svg.append(s('path', { class: 'line', d: line }));
	} else {
		svg.append(s('text', { x: pad.l + pw / 2, y: pad.t + ph / 2, 'text-anchor': 'middle', class: 'empty' },
			'collecting…'));
	}
	const last = samples.length ? samples[samples.length - 1].v : null;
	$('throughput-now').textContent = `${fmtRate(last)} completions/s`;
	svg.dataset.samples = String(pts.length);
}

function niceCeil(v) {
	const p = 10 ** Math.floor(Math.log10(v));
	for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
	return 10 * p;
}
