// SPDX-License-Identifier: MIT
// The workflow graph: layered layout and its SVG drawing.
import { STATES, TERMINAL } from './constants.js';
import { $, h, s, badge } from './dom.js';

export function workflowState(jobs) {
	if (jobs.some((j) => !TERMINAL.has(j.state))) return 'running';
	if (jobs.every((j) => j.state === 'succeeded')) return 'succeeded';
	if (jobs.some((j) => j.state === 'dead')) return 'failed';
	return 'cancelled';
}

// Layers by longest path from the roots; inside a layer, ordered by the mean position of the parents.
function layoutGraph(jobs) {
	const byId = new Map(jobs.map((j) => [j.id, j]));
	const parents = (j) => (j.depends_on || []).filter((p) => byId.has(p));
	const layer = new Map();
	const visiting = new Set();
	const depth = (id) => {
		if (layer.has(id)) return layer.get(id);
		if (visiting.has(id)) return 0; // a cycle cannot be submitted; never loop on one
		visiting.add(id);
		let l = 0;
		for (const p of parents(byId.get(id))) l = Math.max(l, depth(p) + 1);
		visiting.delete(id);
		layer.set(id, l);
		return l;
	};
	for (const j of jobs) depth(j.id);
	const layers = [];
	for (const j of [...jobs].sort((a, b) => a.id - b.id)) {
		const l = layer.get(j.id);
		(layers[l] = layers[l] || []).push(j);
	}
	const pos = new Map();
	layers.forEach((nodes, l) => {
		if (l > 0) {
			const bary = (j) => {
				const ps = parents(j).map((p) => pos.get(p)).filter((x) => x !== undefined);
				return ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : 0.5;
			};
			const keyed = nodes.map((j) => [bary(j), j]);
			keyed.sort((a, b) => a[0] - b[0] || a[1].id - b[1].id);
			layers[l] = keyed.map((k) => k[1]);
		}
		layers[l].forEach((j, i) => pos.set(j.id, (i + 0.5) / layers[l].length));
	});
	return { layers: layers.filter(Boolean), layer, parents };
}

export function drawGraph(w) {
	const svg = $('workflow-graph');
	if (!w) return;
	const jobs = w.jobs;
	$('workflow-title').textContent = `Workflow #${w.id}${w.name ? ` · ${w.name}` : ''}`;
	const st = jobs.length ? workflowState(jobs) : (w.state || '');
	const wb = $('workflow-state');
	wb.dataset.state = st;
	wb.textContent = st;

	const { layers, layer, parents } = layoutGraph(jobs);
	const NW = 156;
	const NH = 46;
	const GX = 22;
	const GY = 54;
	const PAD = 16;
	const widest = Math.max(1, ...layers.map((l) => l.length));
	const W = PAD * 2 + widest * NW + (widest - 1) * GX;
	const H = PAD * 2 + layers.length * NH + Math.max(0, layers.length - 1) * GY;
	const at = new Map();
	const span = []; // per layer: [left, right] of its nodes
	layers.forEach((nodes, l) => {
		const rowW = nodes.length * NW + (nodes.length - 1) * GX;
		const x0 = (W - rowW) / 2;
		span[l] = [x0, x0 + rowW];
		nodes.forEach((j, i) => at.set(j.id, { x: x0 + i * (NW + GX), y: PAD + l * (NH + GY) }));
	});
	const layerTop = (l) => PAD + l * (NH + GY);
	let minX = 0;
	let maxX = W;
	let besideRight = 0;
	let besideLeft = 0;
	// An edge that skips layers goes around their nodes, beside them, never through one.
	const edgePath = (p, j) => {
		const a = at.get(p);
		const b = at.get(j);
		const x1 = a.x + NW / 2;
		const y1 = a.y + NH;
		const x2 = b.x + NW / 2;
		const y2 = b.y - 2;
		const lp = layer.get(p);
		const lj = layer.get(j);
		if (lj - lp <= 1) {
			const my = (y2 - y1) / 2;
			return `M${x1},${y1}C${x1},${y1 + my} ${x2},${y2 - my} ${x2},${y2}`;
		}
		let left = Infinity;
		let right = -Infinity;
		for (let l = lp + 1; l < lj; l++) {
			left = Math.min(left, span[l][0]);
			right = Math.max(right, span[l][1]);
		}
		const mid = (x1 + x2) / 2;
		let sx;
		if (right - mid <= mid - left) sx = right + GX / 2 + 10 * besideRight++;
		else sx = left - GX / 2 - 10 * besideLeft++;
		minX = Math.min(minX, sx - PAD);
		maxX = Math.max(maxX, sx + PAD);
		const ya = layerTop(lp + 1);
		const yb = layerTop(lj - 1) + NH;
		const c = GY / 2;
		return `M${x1},${y1}C${x1},${y1 + c} ${sx},${ya - c} ${sx},${ya}L${sx},${yb}C${sx},${yb + c} ${x2},${y2 - c} ${x2},${y2}`;
	};

	const defs = s('defs', {},
		s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: '9', refY: '5', markerWidth: '7', markerHeight: '7',
			orient: 'auto-start-reverse' }, s('path', { d: 'M0,0L10,5L0,10z', class: 'arrowhead' })));
	const edges = s('g', { class: 'edges' });
	const nodes = s('g', { class: 'nodes' });
	for (const j of jobs) {
		for (const p of parents(j)) {
			edges.append(s('path', { class: 'edge', 'data-from': p, 'data-to': j.id, 'marker-end': 'url(#arrow)',
				d: edgePath(p, j.id) }));
		}
	}
	const order = layers.flat();
	for (const j of order) {
		const b = at.get(j.id);
		const kind = String(j.kind || '');
		const g = s('g', { class: 'node', 'data-node-id': j.id, 'data-state': j.state, 'data-layer': layer.get(j.id),
			transform: `translate(${b.x},${b.y})`, tabindex: '0', role: 'button',
			'aria-label': nodeLabel(j) },
		s('title', {}, nodeLabel(j)),
		s('rect', { width: NW, height: NH, rx: 7, ry: 7 }),
		s('text', { x: 10, y: 19, class: 'node-title' }, `#${j.id} ${kind.length > 16 ? `${kind.slice(0, 15)}…` : kind}`),
		s('text', { x: 10, y: 36, class: 'node-state' }, j.state));
		nodes.append(g);
	}
	const focused = svg.contains(document.activeElement) ? document.activeElement.dataset.nodeId : null;
	svg.replaceChildren(defs, edges, nodes);
	if (focused) {
		const again = svg.querySelector(`[data-node-id="${focused}"]`);
		if (again) again.focus();
	}
	svg.setAttribute('viewBox', `${minX} 0 ${maxX - minX} ${H}`);
	svg.setAttribute('width', maxX - minX);
	svg.setAttribute('height', H);
	svg.dataset.workflowId = String(w.id);
	svg.dataset.nodes = String(jobs.length);

	const legend = $('graph-legend');
	if (!legend.children.length) {
		legend.append(...STATES.map((x) => h('li', {}, badge(x))));
	}
}

export function nodeLabel(j) {
	return `Job ${j.id}, ${j.kind || 'unknown kind'}, ${j.state}`;
}
