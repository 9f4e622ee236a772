// SPDX-License-Identifier: MIT
// The jobwheel dashboard: REST calls to /api, the live SSE stream, and the rendering of every tab.
'use strict';

(() => {
	const STATES = ['blocked', 'scheduled', 'ready', 'running', 'succeeded', 'dead', 'cancelled'];
	const TERMINAL = new Set(['succeeded', 'dead', 'cancelled']);
	const TABS = ['overview', 'jobs', 'dlq', 'workers', 'workflows', 'enqueue'];
	const TOKEN_KEY = 'jobwheel.token';
	const CHART_WINDOW_MS = 5 * 60 * 1000;
	const MAX_LIVE_ROWS = 500;

	const $ = (id) => document.getElementById(id);
	const SVG_NS = 'http://www.w3.org/2000/svg';

	/* ---------- small helpers ---------- */

	// h('td', {class: 'x', 'data-id': 3, onclick: fn}, child, ...): an element; strings become text, never HTML.
	function h(tag, attrs, ...children) {
		return fill(document.createElement(tag), attrs, children);
	}

	function s(tag, attrs, ...children) {
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

	function badge(state, id) {
		return h('span', { class: 'badge', 'data-state': state || '', id }, state || '–');
	}

	function fmtTime(iso) {
		if (!iso) return '–';
		const d = new Date(iso);
		if (Number.isNaN(d.getTime())) return String(iso);
		return d.toLocaleString(undefined, { hour12: false });
	}

	function timeEl(iso) {
		if (!iso) return '–';
		return h('time', { datetime: iso, title: iso }, fmtTime(iso));
	}

	function fmtAge(ms) {
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

	function fmtRate(v) {
		if (v === null || v === undefined || Number.isNaN(Number(v))) return '–';
		v = Number(v);
		return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
	}

	function json(v) {
		return JSON.stringify(v, null, 2);
	}

	function debounce(fn, ms) {
		let t = null;
		const d = (...args) => {
			clearTimeout(t);
			t = setTimeout(() => { t = null; fn(...args); }, ms);
		};
		d.cancel = () => clearTimeout(t);
		return d;
	}

	// Each table counts its loads in data-loads, so that a test (or a curious reader) can tell a fresh list.
	function markLoaded(tableId) {
		const t = $(tableId);
		t.dataset.loads = String(Number(t.dataset.loads || 0) + 1);
	}

	function query(params) {
		const q = new URLSearchParams();
		for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') q.set(k, v);
		const str = q.toString();
		return str ? `?${str}` : '';
	}

	/* ---------- status line ---------- */

	let sayTimer = null;
	function say(msg, kind = 'info') {
		const el = $('status');
		el.textContent = msg;
		el.dataset.kind = kind;
		clearTimeout(sayTimer);
		if (kind !== 'error') sayTimer = setTimeout(() => { el.textContent = ''; delete el.dataset.kind; }, 8000);
	}

	function report(what, err) {
		if (!(err instanceof ApiError)) console.error(err); // a bug of this page, not an answer of the gateway
		if (err && err.status === 401) return; // onUnauthorized already said so
		say(`${what}: ${err && err.message ? err.message : err}`, 'error');
	}

	/* ---------- token and API ---------- */

	function getToken() {
		try { return localStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
	}

	function setToken(t) {
		try {
			if (t) localStorage.setItem(TOKEN_KEY, t);
			else localStorage.removeItem(TOKEN_KEY);
		} catch (e) { /* storage unavailable: the token lives for this page only */ }
		memToken = t;
	}
	let memToken = getToken();

	class ApiError extends Error {
		constructor(status, code, message, field) {
			super(message);
			this.status = status;
			this.code = code;
			this.field = field;
		}
	}

	async function api(method, path, body) {
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

	function onUnauthorized() {
		sse.unauthorized = true;
		setConn('unauthorized');
		say(memToken ? 'The gateway refused the API token: enter a valid one above.'
			: 'The gateway needs an API token: enter one above.', 'error');
	}

	/* ---------- tabs ---------- */

	let currentTab = 'overview';

	function selectTab(name, focus) {
		if (!TABS.includes(name)) name = 'overview';
		for (const t of TABS) {
			const btn = $(`tab-${t}`);
			const on = t === name;
			btn.setAttribute('aria-selected', on ? 'true' : 'false');
			btn.tabIndex = on ? 0 : -1;
			$(`panel-${t}`).hidden = !on;
		}
		currentTab = name;
		if (location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);
		if (focus) $(`tab-${name}`).focus();
		$(`tab-${name}`).scrollIntoView({ block: 'nearest', inline: 'nearest' });
		onTabShown(name);
	}

	function onTabShown(name) {
		if (name === 'overview') renderChart();
		if (name === 'workers' && sse.live) loadWorkers().catch((e) => report('Workers', e));
		if (name === 'workflows' && wfView.stale && sse.live) loadWorkflows().catch((e) => report('Workflows', e));
	}

	function setupTabs() {
		const list = document.querySelector('[role=tablist]');
		for (const t of TABS) $(`tab-${t}`).addEventListener('click', () => selectTab(t));
		list.addEventListener('keydown', (e) => {
			const i = TABS.indexOf(currentTab);
			let next = null;
			if (e.key === 'ArrowRight') next = TABS[(i + 1) % TABS.length];
			else if (e.key === 'ArrowLeft') next = TABS[(i + TABS.length - 1) % TABS.length];
			else if (e.key === 'Home') next = TABS[0];
			else if (e.key === 'End') next = TABS[TABS.length - 1];
			if (next) {
				e.preventDefault();
				selectTab(next, true);
			}
		});
		window.addEventListener('hashchange', () => selectTab(location.hash.slice(1)));
	}

	/* ---------- connection (SSE) ---------- */

	const sse = { es: null, live: false, retryTimer: null, backoff: 2000, opened: 0, unauthorized: false };

	const CONN_TEXT = {
		connecting: 'Connecting…',
		live: 'Live',
		reconnecting: 'Reconnecting…',
		offline: 'Offline, retrying…',
		unauthorized: 'Token needed',
	};

	function setConn(state) {
		const el = $('conn');
		// Until a request succeeds, a refused token is the news, not the retries.
		if (sse.unauthorized && state !== 'live') state = 'unauthorized';
		if (el.dataset.state === state) return;
		el.dataset.state = state;
		el.textContent = CONN_TEXT[state] || state;
		el.title = state === 'live' ? 'Receiving live updates' : 'Not receiving live updates';
	}

	function connect() {
		if (sse.es) sse.es.close();
		clearTimeout(sse.retryTimer);
		sse.live = false;
		setConn('connecting');
		const url = `api/events${query({ access_token: memToken })}`;
		const es = new EventSource(url);
		sse.es = es;
		es.addEventListener('open', () => {
			if (es !== sse.es) return;
			sse.live = true;
			sse.unauthorized = false;
			sse.backoff = 2000;
			sse.opened++;
			setConn('live');
			// Whatever happened while we were away: fetch it all again.
			refreshAll();
		});
		es.addEventListener('error', () => {
			if (es !== sse.es) return;
			sse.live = false;
			if (es.readyState === EventSource.CLOSED) {
				// The browser gave up (an HTTP error, e.g. 401 or 503): retry ourselves, backing off.
				setConn('offline');
				// EventSource does not say why: a plain request does (401 asks for a token).
				loadQueues().catch((e) => report('Live updates', e));
				sse.retryTimer = setTimeout(connect, sse.backoff);
				sse.backoff = Math.min(sse.backoff * 2, 30000);
			} else {
				setConn('reconnecting');
			}
		});
		const on = (type, fn) => es.addEventListener(type, (e) => {
			if (es !== sse.es) return;
			let data;
			try { data = JSON.parse(e.data); } catch (err) { return; }
			fn(data);
		});
		on('job', onJobEvent);
		on('stats', onStats);
		on('worker', onWorkerEvent);
		on('dlq', onDlqEvent);
		on('dropped', onDropped);
	}

	let refreshing = null;
	let refreshAgain = false;
	function refreshAll() {
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
	function onDropped(d) {
		const now = Date.now();
		if (now - lastDropNotice > 5000) {
			lastDropNotice = now;
			say(`Missed ${d.dropped} job event(s) while busy: refreshing.`);
		}
		refreshAfterDrop();
	}

	// The latest job event per job, so that a list fetched while events arrive is patched with them.
	const recent = new Map();
	setInterval(() => {
		const old = performance.now() - 60000;
		for (const [id, r] of recent) if (r.t < old) recent.delete(id);
	}, 10000);

	function patchFromEvents(job, since) {
		const r = recent.get(job.id);
		return r && r.t >= since ? mergeEvent(job, r.ev) : job;
	}

	function mergeEvent(job, ev) {
		const j = { ...job, state: ev.state };
		if (ev.attempt !== undefined) j.attempt = ev.attempt;
		if (ev.priority !== undefined) j.priority = ev.priority;
		if (ev.error) j.last_error = ev.error;
		if (ev.state === 'running') j.started_at = ev.at || j.started_at;
		if (TERMINAL.has(ev.state)) j.finished_at = ev.at || j.finished_at;
		return j;
	}

	/* ---------- overview: queues, totals, throughput ---------- */

	const queues = new Map(); // name -> {name, paused, counts, rate, oldest}
	const samples = []; // {t, v}: completions/s over all queues

	async function loadQueues() {
		const data = await api('GET', 'api/queues');
		const seen = new Set();
		for (const q of data.queues || []) {
			seen.add(q.name);
			queues.set(q.name, {
				name: q.name,
				paused: !!q.paused,
				counts: q.counts || {},
				rate: q.throughput_per_s,
				oldest: q.oldest_ready_age_ms,
				oldestAt: performance.now(), // the age goes on growing from here
			});
		}
		for (const name of [...queues.keys()]) if (!seen.has(name)) queues.delete(name);
		renderQueues();
		markLoaded('queue-table');
	}
	// When the ready jobs change, their oldest may have gone: ask again, at most every 3 s.
	let queuesAskedAt = 0;
	function loadQueuesThrottled() {
		const now = performance.now();
		if (now - queuesAskedAt < 3000) return;
		queuesAskedAt = now;
		if (sse.live) loadQueues().catch((e) => report('Queues', e));
	}

	function onStats(d) {
		let total = 0;
		let ask = false; // whether /api/queues knows something the stats do not (paused, oldest ready)
		for (const q of d.queues || []) {
			let entry = queues.get(q.name);
			if (!entry) {
				entry = { name: q.name, paused: null, counts: {}, rate: null, oldest: null };
				queues.set(q.name, entry);
			}
			const before = Number(entry.counts.ready) || 0;
			entry.counts = q.counts || {};
			entry.rate = q.completions_per_s;
			const ready = Number(entry.counts.ready) || 0;
			if (!ready) entry.oldest = null;
			if (entry.paused === null || (ready && (ready !== before || entry.oldest === null))) ask = true;
			total += Number(q.completions_per_s) || 0;
		}
		if (ask) loadQueuesThrottled();
		pushSample(Date.now(), total);
		renderQueues();
		renderChart();
	}

	function pushSample(t, v) {
		samples.push({ t, v });
		while (samples.length && samples[0].t < t - CHART_WINDOW_MS) samples.shift();
	}

	function renderQueues() {
		const tbody = document.querySelector('#queue-table tbody');
		const names = [...queues.keys()].sort();
		const totals = Object.fromEntries(STATES.map((st) => [st, 0]));
		const existing = new Map([...tbody.rows].map((r) => [r.dataset.queue, r]));
		let prev = null;
		for (const name of names) {
			const q = queues.get(name);
			for (const st of STATES) totals[st] += Number(q.counts[st]) || 0;
			let row = existing.get(name);
			existing.delete(name);
			if (!row) row = queueRow(name);
			updateQueueRow(row, q);
			const want = prev ? prev.nextSibling : tbody.firstChild;
			if (row !== want) tbody.insertBefore(row, want);
			prev = row;
		}
		for (const row of existing.values()) row.remove();
		$('queues-empty').hidden = names.length > 0;

		const ul = $('totals');
		if (!ul.children.length) {
			for (const st of STATES) {
				ul.append(h('li', { 'data-total': st },
					h('span', { class: 'total-label' }, badge(st)),
					h('span', { class: 'total-value' }, '0')));
			}
		}
		for (const st of STATES) {
			ul.querySelector(`[data-total="${st}"] .total-value`).textContent = totals[st].toLocaleString();
		}
		$('dlq-count').textContent = totals.dead.toLocaleString();
		$('dlq-count').dataset.zero = String(totals.dead === 0);
	}

	function queueRow(name) {
		const row = h('tr', { 'data-queue': name },
			h('th', { scope: 'row' }, h('span', { class: 'qname' },
				h('button', { type: 'button', class: 'link', 'data-action': 'filter-queue',
					title: `Show the jobs of queue ${name}` }, name),
				h('span', { class: 'badge paused-badge', 'data-state': 'paused', hidden: true }, 'paused'))),
			STATES.map((st) => h('td', { class: 'num', 'data-count': st }, '0')),
			h('td', { class: 'num', 'data-rate': '' }, '–'),
			h('td', { class: 'num', 'data-oldest': '' }, '–'),
			h('td', {}, h('button', { type: 'button', class: 'small', 'data-action': 'toggle-pause' }, 'Pause')));
		return row;
	}

	function updateQueueRow(row, q) {
		for (const st of STATES) {
			const v = (Number(q.counts[st]) || 0).toLocaleString();
			const cell = row.querySelector(`[data-count="${st}"]`);
			if (cell.textContent !== v) cell.textContent = v;
		}
		row.querySelector('[data-rate]').textContent = fmtRate(q.rate);
		row.querySelector('[data-oldest]').textContent = q.oldest === null || q.oldest === undefined
			? '–' : fmtAge(q.oldest + (performance.now() - (q.oldestAt || performance.now())));
		row.dataset.paused = q.paused === null ? 'unknown' : String(q.paused);
		row.querySelector('.paused-badge').hidden = !q.paused;
		const btn = row.querySelector('[data-action=toggle-pause]');
		const label = q.paused ? 'Resume' : 'Pause';
		if (btn.textContent !== label) btn.textContent = label;
		btn.setAttribute('aria-label', `${label} queue ${q.name}`);
		btn.disabled = q.paused === null || row.dataset.busy === '1';
	}

	async function togglePause(name, row) {
		const q = queues.get(name);
		if (!q || q.paused === null) return;
		const pause = !q.paused;
		row.dataset.busy = '1';
		updateQueueRow(row, q);
		try {
			const r = await api('POST', `api/queues/${encodeURIComponent(name)}/${pause ? 'pause' : 'resume'}`);
			q.paused = r && typeof r.paused === 'boolean' ? r.paused : pause;
			say(`Queue ${name} ${q.paused ? 'paused' : 'resumed'}.`);
		} catch (e) {
			report(`${pause ? 'Pause' : 'Resume'} ${name}`, e);
		} finally {
			delete row.dataset.busy;
			updateQueueRow(row, q);
		}
	}

	function setupOverview() {
		document.querySelector('#queue-table tbody').addEventListener('click', (e) => {
			const btn = e.target.closest('button[data-action]');
			if (!btn) return;
			const row = btn.closest('tr');
			const name = row.dataset.queue;
			if (btn.dataset.action === 'toggle-pause') togglePause(name, row);
			if (btn.dataset.action === 'filter-queue') showJobs({ queue: name });
		});
		window.addEventListener('resize', debounce(renderChart, 150));
	}

	function renderChart() {
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

	/* ---------- jobs table ---------- */

	const jobsView = {
		filters: { state: '', queue: '', kind: '', workflow_id: '' },
		limit: 50,
		before: null,
		stack: [],
		nextBefore: null,
		rows: new Map(),
		seq: 0,
	};

	async function loadJobs() {
		const v = jobsView;
		const mySeq = ++v.seq;
		const since = performance.now();
		const data = await api('GET', `api/jobs${query({ ...v.filters, limit: v.limit, before: v.before })}`);
		if (mySeq !== v.seq) return;
		const tbody = document.querySelector('#jobs-table tbody');
		v.rows.clear();
		const frag = document.createDocumentFragment();
		for (const raw of data.jobs || []) {
			const j = patchFromEvents(raw, since);
			v.rows.set(j.id, j);
			frag.append(jobRow(j));
		}
		tbody.replaceChildren(frag);
		v.nextBefore = data.next_before ?? null;
		updateJobsPager();
		markLoaded('jobs-table');
	}

	function updateJobsPager() {
		const v = jobsView;
		$('jobs-newer').disabled = v.stack.length === 0;
		$('jobs-older').disabled = v.nextBefore === null;
		$('jobs-empty').hidden = v.rows.size > 0;
		const page = v.stack.length + 1;
		$('jobs-page-info').textContent = `Page ${page}${v.before === null ? ' (newest, live)' : ''} · ${v.rows.size} job(s)`;
	}

	function jobRow(j) {
		const row = h('tr', { 'data-job-id': j.id, 'data-state': j.state },
			h('td', {}, h('button', { type: 'button', class: 'link', 'data-action': 'open-job',
				'aria-label': `Job ${j.id}: show details` }, `#${j.id}`)),
			h('td', { 'data-col': 'state' }, badge(j.state)),
			h('td', { 'data-col': 'queue' }, j.queue ?? ''),
			h('td', { 'data-col': 'kind' }, j.kind ?? ''),
			h('td', { 'data-col': 'attempt', class: 'num' }, j.attempt ?? ''),
			h('td', { 'data-col': 'priority', class: 'num' }, j.priority ?? ''),
			h('td', { 'data-col': 'created' }, timeEl(j.created_at)),
			h('td', { 'data-col': 'workflow' }, j.workflow_id !== null && j.workflow_id !== undefined
				? h('button', { type: 'button', class: 'link', 'data-action': 'open-workflow',
					'data-workflow-id': j.workflow_id, 'aria-label': `Workflow ${j.workflow_id}: show graph` },
				`#${j.workflow_id}`)
				: '–'),
			h('td', { 'data-col': 'error', class: 'error' }, j.last_error || ''));
		return row;
	}

	function attemptText(j) {
		if (j.attempt === undefined || j.attempt === null) return '';
		return j.max_attempts ? `${j.attempt}/${j.max_attempts}` : String(j.attempt);
	}

	function updateJobRow(row, j) {
		row.dataset.state = j.state;
		const b = row.querySelector('[data-col=state] .badge');
		b.dataset.state = j.state;
		b.textContent = j.state;
		row.querySelector('[data-col=attempt]').textContent = j.attempt ?? '';
		row.querySelector('[data-col=priority]').textContent = j.priority ?? '';
		row.querySelector('[data-col=error]').textContent = j.last_error || '';
		const f = jobsView.filters;
		row.classList.toggle('stale', !!f.state && f.state !== j.state);
		row.title = row.classList.contains('stale') ? 'No longer matches the state filter' : '';
		flash(row);
	}

	const reducedMotion = window.matchMedia('(prefers-reduced-motion: reduce)');
	// A short highlight of a row that changed (no forced layout: cheap at many events per second).
	function flash(row) {
		if (reducedMotion.matches || typeof row.animate !== 'function') return;
		row.animate([{ backgroundColor: 'rgba(70, 120, 230, 0.25)' }, { backgroundColor: 'rgba(70, 120, 230, 0)' }],
			{ duration: 1200, easing: 'ease-out' });
	}

	function matchesJobFilters(ev) {
		const f = jobsView.filters;
		if (f.state && f.state !== ev.state) return false;
		if (f.queue && f.queue !== ev.queue) return false;
		if (f.kind && f.kind !== ev.kind) return false;
		if (f.workflow_id && String(ev.workflow_id ?? '') !== String(f.workflow_id)) return false;
		return true;
	}

	function jobsOnEvent(ev) {
		const v = jobsView;
		const known = v.rows.get(ev.id);
		const tbody = document.querySelector('#jobs-table tbody');
		if (known) {
			const j = mergeEvent(known, ev);
			v.rows.set(j.id, j);
			const row = tbody.querySelector(`tr[data-job-id="${ev.id}"]`);
			if (row) updateJobRow(row, j);
			return;
		}
		// A job we do not show: add it if it belongs on the first (live) page.
		if (v.before !== null || !matchesJobFilters(ev)) return;
		const ids = [...v.rows.keys()];
		const minId = ids.length ? Math.min(...ids) : -Infinity;
		if (ids.length >= v.limit && ev.id < minId) return;
		const j = mergeEvent({
			id: ev.id, queue: ev.queue, kind: ev.kind, priority: ev.priority, attempt: ev.attempt,
			created_at: ev.at, workflow_id: ev.workflow_id ?? null, last_error: null,
		}, ev);
		v.rows.set(j.id, j);
		const row = jobRow(j);
		let before = null;
		for (const r of tbody.rows) {
			if (Number(r.dataset.jobId) < j.id) { before = r; break; }
		}
		tbody.insertBefore(row, before);
		flash(row);
		// Keep the live page bounded; what falls off is on the next page.
		while (tbody.rows.length > Math.max(v.limit, MAX_LIVE_ROWS)) {
			const last = tbody.rows[tbody.rows.length - 1];
			v.rows.delete(Number(last.dataset.jobId));
			last.remove();
			const lastKept = tbody.rows[tbody.rows.length - 1];
			if (lastKept) v.nextBefore = Number(lastKept.dataset.jobId);
		}
		updateJobsPager();
	}

	function readJobFilters() {
		const wf = $('f-workflow').value.trim();
		if (wf && !/^\d+$/.test(wf)) {
			$('f-workflow').setAttribute('aria-invalid', 'true');
			say('Workflow id must be a number.', 'error');
			$('f-workflow').focus();
			return false;
		}
		$('f-workflow').removeAttribute('aria-invalid');
		jobsView.filters = {
			state: $('f-state').value,
			queue: $('f-queue').value.trim(),
			kind: $('f-kind').value.trim(),
			workflow_id: wf,
		};
		jobsView.limit = Number($('f-limit').value) || 50;
		jobsView.before = null;
		jobsView.stack = [];
		return true;
	}

	function showJobs(filters) {
		$('f-state').value = filters.state || '';
		$('f-queue').value = filters.queue || '';
		$('f-kind').value = filters.kind || '';
		$('f-workflow').value = filters.workflow_id || '';
		readJobFilters();
		selectTab('jobs');
		loadJobs().catch((e) => report('Jobs', e));
	}

	function setupJobs() {
		$('job-filters').addEventListener('submit', (e) => {
			e.preventDefault();
			if (readJobFilters()) loadJobs().catch((err) => report('Jobs', err));
		});
		$('job-filters').addEventListener('reset', (e) => {
			e.preventDefault();
			for (const id of ['f-state', 'f-queue', 'f-kind', 'f-workflow']) $(id).value = '';
			$('f-limit').value = '50';
			readJobFilters();
			loadJobs().catch((err) => report('Jobs', err));
		});
		$('jobs-older').addEventListener('click', () => {
			if (jobsView.nextBefore === null) return;
			jobsView.stack.push(jobsView.before);
			jobsView.before = jobsView.nextBefore;
			loadJobs().catch((e) => report('Jobs', e));
		});
		$('jobs-newer').addEventListener('click', () => {
			if (!jobsView.stack.length) return;
			jobsView.before = jobsView.stack.pop();
			loadJobs().then(() => {
				if (!jobsView.stack.length) $('jobs-older').focus();
			}).catch((e) => report('Jobs', e));
		});
	}

	/* ---------- job detail drawer ---------- */

	const drawer = { id: null, opener: null, seq: 0, job: null };

	function openJob(id, opener) {
		id = Number(id);
		const wasOpen = drawer.id !== null;
		drawer.id = id;
		if (!wasOpen) drawer.opener = opener || document.activeElement;
		drawer.job = null;
		$('job-drawer').hidden = false;
		$('job-drawer').dataset.jobId = String(id);
		$('drawer-title').textContent = `Job #${id}`;
		$('drawer-body').replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
		document.body.classList.add('drawer-open');
		loadDrawer().catch((e) => report(`Job ${id}`, e));
		$('drawer-title').focus();
	}

	function closeDrawer() {
		if (drawer.id === null) return;
		drawer.id = null;
		drawer.seq++;
		$('job-drawer').hidden = true;
		delete $('job-drawer').dataset.jobId;
		document.body.classList.remove('drawer-open');
		const o = drawer.opener;
		drawer.opener = null;
		if (o && o.isConnected && typeof o.focus === 'function') o.focus();
	}

	async function loadDrawer() {
		const id = drawer.id;
		if (id === null) return;
		const mySeq = ++drawer.seq;
		try {
			const j = await api('GET', `api/jobs/${id}`);
			if (mySeq !== drawer.seq || drawer.id !== id) return;
			drawer.job = j;
			renderDrawer(j);
		} catch (e) {
			if (mySeq !== drawer.seq) return;
			if (e.status === 404) {
				$('drawer-body').replaceChildren(h('p', { class: 'error' }, `No job #${id}.`));
				return;
			}
			throw e;
		}
	}
	const loadDrawerSoon = debounce(() => loadDrawer().catch((e) => report('Job', e)), 250);

	function kv(label, value) {
		return [h('dt', {}, label), h('dd', {}, value === null || value === undefined || value === '' ? '–' : value)];
	}

	function relatedList(id, items) {
		if (!items || !items.length) return h('p', { class: 'muted', id }, 'None.');
		return h('ul', { class: 'related', id },
			items.map((r) => h('li', { 'data-related-job-id': r.id },
				h('button', { type: 'button', class: 'link', 'data-action': 'open-job', 'data-job-id': r.id,
					'data-focus-key': `rel-${r.id}` }, `#${r.id}`),
				' ', h('span', { class: 'kind' }, r.kind || ''), ' ', badge(r.state))));
	}

	function renderDrawer(j) {
		const body = $('drawer-body');
		const scroll = body.scrollTop;
		const active = body.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
		const actions = h('div', { class: 'drawer-actions' },
			!TERMINAL.has(j.state) && h('button', { type: 'button', id: 'drawer-cancel', class: 'warn',
				'data-focus-key': 'cancel', 'data-action': 'cancel-job' }, 'Cancel job'),
			(j.state === 'dead' || j.state === 'cancelled') && h('button', { type: 'button', id: 'drawer-retry',
				class: 'primary', 'data-focus-key': 'retry', 'data-action': 'retry-job' }, 'Retry (requeue)'));
		const errors = j.errors || [];
		body.replaceChildren(
			h('dl', { class: 'kv' },
				kv('State', badge(j.state, 'drawer-state')),
				kv('Queue', j.queue),
				kv('Kind', j.kind),
				kv('Attempt', attemptText(j)),
				kv('Priority', j.priority),
				kv('Run at', timeEl(j.run_at)),
				kv('Created', timeEl(j.created_at)),
				kv('Started', timeEl(j.started_at)),
				kv('Finished', timeEl(j.finished_at)),
				kv('Worker', j.worker),
				kv('Unique key', j.unique_key),
				kv('Timeout', j.timeout_ms ? `${j.timeout_ms} ms` : null),
				kv('Workflow', j.workflow_id !== null && j.workflow_id !== undefined
					? h('button', { type: 'button', class: 'link', 'data-action': 'open-workflow',
						'data-workflow-id': j.workflow_id, 'data-focus-key': 'wf' }, `#${j.workflow_id}`)
					: null),
				kv('Last error', j.last_error ? h('span', { class: 'error' }, j.last_error) : null)),
			actions,
			h('h3', {}, 'Payload'),
			h('pre', { id: 'drawer-payload', tabindex: '0', 'aria-label': 'Payload' }, json(j.payload ?? {})),
			h('h3', {}, 'Result'),
			j.result === null || j.result === undefined
				? h('p', { id: 'drawer-result', class: 'muted' }, 'No result.')
				: h('pre', { id: 'drawer-result', tabindex: '0', 'aria-label': 'Result' }, json(j.result)),
			h('h3', {}, `Failed attempts (${errors.length})`),
			errors.length
				? h('ol', { id: 'drawer-errors', class: 'errors' }, errors.map((e) => h('li', { 'data-attempt': e.attempt },
					h('div', { class: 'muted small' }, `Attempt ${e.attempt} · ${e.worker || 'unknown worker'} · `, timeEl(e.at)),
					h('pre', { class: 'error' }, e.error ?? ''))))
				: h('p', { id: 'drawer-errors', class: 'muted' }, 'No failed attempts.'),
			h('h3', {}, 'Parents'),
			relatedList('drawer-parents', j.parents),
			h('h3', {}, 'Children'),
			relatedList('drawer-children', j.children));
		body.scrollTop = scroll;
		if (active) {
			const el = body.querySelector(`[data-focus-key="${active}"]`);
			if (el) el.focus();
			else $('drawer-title').focus();
		}
	}

	async function jobAction(action, id, btn) {
		if (btn) btn.disabled = true;
		try {
			const r = await api('POST', `api/jobs/${id}/${action}`);
			say(action === 'cancel' ? `Job ${id} cancelled.` : `Job ${id} requeued (${r && r.state ? r.state : 'ready'}).`);
			return true;
		} catch (e) {
			report(`${action === 'cancel' ? 'Cancel' : 'Retry'} job ${id}`, e);
			if (btn) btn.disabled = false;
			return false;
		} finally {
			if (drawer.id === id) loadDrawerSoon();
		}
	}

	function setupDrawer() {
		$('drawer-close').addEventListener('click', closeDrawer);
		$('job-drawer').addEventListener('click', (e) => {
			const btn = e.target.closest('button[data-action]');
			if (!btn) return;
			const a = btn.dataset.action;
			if (a === 'cancel-job') jobAction('cancel', drawer.id, btn);
			else if (a === 'retry-job') jobAction('retry', drawer.id, btn);
		});
		document.addEventListener('keydown', (e) => {
			if (e.key === 'Escape' && drawer.id !== null) {
				e.preventDefault();
				closeDrawer();
			}
		});
	}

	/* ---------- DLQ ---------- */

	const dlqView = { queue: '', before: null, nextBefore: null, rows: new Map(), seq: 0 };

	async function loadDlq() {
		const v = dlqView;
		const mySeq = ++v.seq;
		const data = await api('GET', `api/dlq${query({ queue: v.queue, before: v.before, limit: 50 })}`);
		if (mySeq !== v.seq) return;
		v.rows.clear();
		const frag = document.createDocumentFragment();
		for (const j of data.jobs || []) {
			const r = recent.get(j.id);
			if (r && r.ev.state !== 'dead') continue; // requeued meanwhile
			v.rows.set(j.id, j);
			frag.append(dlqRow(j));
		}
		document.querySelector('#dlq-table tbody').replaceChildren(frag);
		v.nextBefore = data.next_before ?? null;
		updateDlqPager();
		markLoaded('dlq-table');
	}

	function updateDlqPager() {
		$('dlq-first').disabled = dlqView.before === null;
		$('dlq-older').disabled = dlqView.nextBefore === null;
		$('dlq-empty').hidden = dlqView.rows.size > 0;
	}

	function dlqRow(j) {
		return h('tr', { 'data-job-id': j.id, 'data-state': 'dead' },
			h('td', {}, h('button', { type: 'button', class: 'link', 'data-action': 'open-job',
				'aria-label': `Job ${j.id}: show details` }, `#${j.id}`)),
			h('td', {}, j.queue ?? ''),
			h('td', {}, j.kind ?? ''),
			h('td', { class: 'num' }, j.attempt ?? ''),
			h('td', {}, timeEl(j.died_at)),
			h('td', { class: 'error' }, j.last_error || ''),
			h('td', {}, h('button', { type: 'button', class: 'small', 'data-action': 'requeue', 'data-job-id': j.id,
				'aria-label': `Requeue job ${j.id}` }, 'Requeue')));
	}

	function dlqAdd(j) {
		const v = dlqView;
		if (v.before !== null || v.rows.has(j.id)) return;
		if (v.queue && v.queue !== j.queue) return;
		v.rows.set(j.id, j);
		const row = dlqRow(j);
		document.querySelector('#dlq-table tbody').prepend(row);
		flash(row);
		updateDlqPager();
	}

	function dlqRemove(id) {
		if (!dlqView.rows.delete(id)) return;
		const row = document.querySelector(`#dlq-table tbody tr[data-job-id="${id}"]`);
		if (row) {
			const had = row.contains(document.activeElement);
			const next = row.nextElementSibling || row.previousElementSibling;
			row.remove();
			if (had) {
				const target = next && next.querySelector('[data-action=requeue]');
				(target || $('dlq-refresh')).focus();
			}
		}
		updateDlqPager();
	}

	function onDlqEvent(d) {
		dlqAdd({ id: d.id, queue: d.queue, kind: d.kind, attempt: d.attempt,
			died_at: new Date().toISOString(), last_error: d.error || '' });
	}

	function setupDlq() {
		$('dlq-form').addEventListener('submit', (e) => {
			e.preventDefault();
			dlqView.queue = $('dlq-queue').value.trim();
			dlqView.before = null;
			loadDlq().catch((err) => report('DLQ', err));
		});
		$('dlq-older').addEventListener('click', () => {
			dlqView.before = dlqView.nextBefore;
			loadDlq().catch((e) => report('DLQ', e));
		});
		$('dlq-first').addEventListener('click', () => {
			dlqView.before = null;
			loadDlq().then(() => $('dlq-older').focus()).catch((e) => report('DLQ', e));
		});
		document.querySelector('#dlq-table tbody').addEventListener('click', async (e) => {
			const btn = e.target.closest('button[data-action=requeue]');
			if (!btn) return;
			const id = Number(btn.dataset.jobId);
			if (await jobAction('retry', id, btn)) dlqRemove(id);
		});
		$('dlq-requeue-all').addEventListener('click', () => {
			const q = $('dlq-queue').value.trim();
			$('dlq-confirm-text').textContent = q ? `Requeue every dead job of queue ${q}?` : 'Requeue every dead job?';
			$('dlq-confirm').hidden = false;
			$('dlq-requeue-all-confirm').focus();
		});
		$('dlq-requeue-all-cancel').addEventListener('click', () => {
			$('dlq-confirm').hidden = true;
			$('dlq-requeue-all').focus();
		});
		$('dlq-requeue-all-confirm').addEventListener('click', async () => {
			const q = $('dlq-queue').value.trim();
			const btn = $('dlq-requeue-all-confirm');
			btn.disabled = true;
			try {
				const r = await api('POST', 'api/dlq/requeue', q ? { all: true, queue: q } : { all: true });
				say(`Requeued ${r && r.requeued !== undefined ? r.requeued : 'the'} dead job(s).`);
				dlqView.before = null;
				await loadDlq();
			} catch (e) {
				report('Requeue all', e);
			} finally {
				btn.disabled = false;
				$('dlq-confirm').hidden = true;
				$('dlq-requeue-all').focus();
			}
		});
	}

	/* ---------- workers ---------- */

	const workersView = { list: [], fetchedAt: 0 };

	async function loadWorkers() {
		const data = await api('GET', 'api/workers');
		workersView.list = data.workers || [];
		workersView.fetchedAt = performance.now();
		renderWorkers();
	}
	const loadWorkersSoon = debounce(() => { if (sse.live) loadWorkers().catch((e) => report('Workers', e)); }, 300);

	function renderWorkers() {
		const frag = document.createDocumentFragment();
		for (const w of workersView.list) {
			const running = Array.isArray(w.running)
				? (w.running.length ? w.running.slice(0, 8).map((id) => [h('button', { type: 'button', class: 'link',
					'data-action': 'open-job', 'data-job-id': id }, `#${id}`), ' ']).concat(w.running.length > 8 ? [`+${w.running.length - 8}`] : [])
					: '0')
				: (w.running ?? '–');
			frag.append(h('tr', { 'data-worker-id': w.id, 'data-state': w.state || '' },
				h('td', { class: 'mono' }, w.id),
				h('td', {}, w.host ?? ''),
				h('td', { class: 'num' }, w.pid ?? ''),
				h('td', {}, Array.isArray(w.queues) ? w.queues.join(', ') : (w.queues ?? '')),
				h('td', { class: 'num' }, w.concurrency ?? ''),
				h('td', {}, h('span', { class: 'badge', 'data-state': `worker-${w.state || 'unknown'}` }, w.state || '?')),
				h('td', { class: 'num', 'data-heartbeat-age': w.heartbeat_age_ms ?? '' }, fmtAge(w.heartbeat_age_ms)),
				h('td', {}, running),
				h('td', {}, timeEl(w.started_at))));
		}
		document.querySelector('#workers-table tbody').replaceChildren(frag);
		$('workers-empty').hidden = workersView.list.length > 0;
		markLoaded('workers-table');
	}

	function tickWorkers() {
		const dt = performance.now() - workersView.fetchedAt;
		for (const cell of document.querySelectorAll('#workers-table [data-heartbeat-age]')) {
			const base = cell.dataset.heartbeatAge;
			if (base === '') continue;
			const age = Number(base) + dt;
			cell.textContent = fmtAge(age);
			cell.classList.toggle('late', age > 15000);
		}
	}

	function onWorkerEvent(d) {
		if (d && d.state === 'lost') say(`Worker ${d.id} on ${d.host || '?'} was lost.`, 'warn');
		loadWorkersSoon();
	}

	/* ---------- workflows ---------- */

	const wfView = { before: null, nextBefore: null, seq: 0, stale: false, current: null, gseq: 0 };

	async function loadWorkflows() {
		const mySeq = ++wfView.seq;
		const data = await api('GET', `api/workflows${query({ limit: 25, before: wfView.before })}`);
		if (mySeq !== wfView.seq) return;
		wfView.stale = false;
		const frag = document.createDocumentFragment();
		for (const w of data.workflows || []) {
			frag.append(h('tr', { 'data-workflow-id': w.id, 'data-state': w.state || '',
				class: wfView.current && wfView.current.id === w.id ? 'selected' : null },
				h('td', {}, h('button', { type: 'button', class: 'link', 'data-action': 'open-workflow',
					'data-workflow-id': w.id, 'aria-label': `Workflow ${w.id}: show graph` }, `#${w.id}`)),
				h('td', {}, w.name || '–'),
				h('td', {}, badge(w.state)),
				h('td', { class: 'num' }, w.jobs ?? ''),
				h('td', { class: 'num' }, w.succeeded ?? ''),
				h('td', { class: 'num' }, w.dead ?? ''),
				h('td', { class: 'num' }, w.cancelled ?? ''),
				h('td', { class: 'num' }, w.active ?? ''),
				h('td', {}, timeEl(w.created_at))));
		}
		document.querySelector('#workflows-table tbody').replaceChildren(frag);
		wfView.nextBefore = data.next_before ?? null;
		$('workflows-first').disabled = wfView.before === null;
		$('workflows-older').disabled = wfView.nextBefore === null;
		$('workflows-empty').hidden = (data.workflows || []).length > 0;
		markLoaded('workflows-table');
	}
	const loadWorkflowsSoon = debounce(() => {
		if (currentTab === 'workflows' && sse.live) loadWorkflows().catch((e) => report('Workflows', e));
		else wfView.stale = true;
	}, 1000);

	async function loadWorkflow(id) {
		const mySeq = ++wfView.gseq;
		const since = performance.now();
		const w = await api('GET', `api/workflows/${id}`);
		if (mySeq !== wfView.gseq) return;
		w.jobs = (w.jobs || []).map((j) => patchFromEvents(j, since));
		wfView.current = w;
		drawGraph();
	}

	async function openWorkflow(id) {
		id = Number(id);
		if (currentTab !== 'workflows') selectTab('workflows');
		$('workflow-view').hidden = false;
		$('workflow-title').textContent = `Workflow #${id}`;
		for (const r of document.querySelectorAll('#workflows-table tbody tr')) {
			r.classList.toggle('selected', Number(r.dataset.workflowId) === id);
		}
		try {
			await loadWorkflow(id);
			$('workflow-title').focus();
			$('workflow-view').scrollIntoView({ block: 'nearest' });
		} catch (e) {
			if (e.status === 404) {
				$('workflow-graph').replaceChildren();
				say(`No workflow #${id}.`, 'error');
			} else {
				report(`Workflow ${id}`, e);
			}
		}
	}

	function closeWorkflow() {
		wfView.current = null;
		wfView.gseq++;
		$('workflow-view').hidden = true;
		$('workflow-graph').replaceChildren();
		for (const r of document.querySelectorAll('#workflows-table tbody tr.selected')) r.classList.remove('selected');
		$('workflows-first').focus();
	}

	function workflowState(jobs) {
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

	function drawGraph() {
		const w = wfView.current;
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

	function nodeLabel(j) {
		return `Job ${j.id}, ${j.kind || 'unknown kind'}, ${j.state}`;
	}

	function workflowsOnEvent(ev) {
		if (ev.workflow_id === null || ev.workflow_id === undefined) return;
		loadWorkflowsSoon();
		const w = wfView.current;
		if (!w || Number(w.id) !== Number(ev.workflow_id)) return;
		const i = w.jobs.findIndex((j) => j.id === ev.id);
		if (i < 0) {
			loadWorkflow(w.id).catch((e) => report('Workflow', e));
			return;
		}
		w.jobs[i] = { ...w.jobs[i], state: ev.state };
		const g = document.querySelector(`#workflow-graph [data-node-id="${ev.id}"]`);
		if (g) {
			g.dataset.state = ev.state;
			g.setAttribute('aria-label', nodeLabel(w.jobs[i]));
			g.querySelector('title').textContent = nodeLabel(w.jobs[i]);
			g.querySelector('.node-state').textContent = ev.state;
		}
		const st = workflowState(w.jobs);
		$('workflow-state').dataset.state = st;
		$('workflow-state').textContent = st;
	}

	function setupWorkflows() {
		$('workflows-older').addEventListener('click', () => {
			wfView.before = wfView.nextBefore;
			loadWorkflows().catch((e) => report('Workflows', e));
		});
		$('workflows-first').addEventListener('click', () => {
			wfView.before = null;
			loadWorkflows().then(() => $('workflows-older').focus()).catch((e) => report('Workflows', e));
		});
		$('workflow-close').addEventListener('click', closeWorkflow);
		const graph = $('workflow-graph');
		const activate = (e) => {
			const g = e.target.closest('[data-node-id]');
			if (g) openJob(g.dataset.nodeId, g);
		};
		graph.addEventListener('click', activate);
		graph.addEventListener('keydown', (e) => {
			if (e.key === 'Enter' || e.key === ' ') {
				e.preventDefault();
				activate(e);
			}
		});
	}

	/* ---------- enqueue ---------- */

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

	/* ---------- events fan-out and wiring ---------- */

	function onJobEvent(ev) {
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

	function setupGlobalClicks() {
		// Buttons that open a job or a workflow, wherever they are.
		document.addEventListener('click', (e) => {
			const btn = e.target.closest('button[data-action]');
			if (!btn) return;
			if (btn.dataset.action === 'open-job') {
				const id = btn.dataset.jobId || (btn.closest('[data-job-id]') || {}).dataset?.jobId;
				if (id) openJob(id, btn);
			} else if (btn.dataset.action === 'open-workflow') {
				openWorkflow(btn.dataset.workflowId);
			}
		});
	}

	function setupToken() {
		$('token').value = memToken;
		$('token-form').addEventListener('submit', (e) => {
			e.preventDefault();
			setToken($('token').value.trim());
			sse.unauthorized = false;
			say(memToken ? 'Token saved in this browser.' : 'Token cleared.');
			connect();
		});
		$('token-clear').addEventListener('click', () => {
			$('token').value = '';
			setToken('');
			sse.unauthorized = false;
			say('Token cleared.');
			connect();
		});
	}

	function start() {
		setupTabs();
		setupOverview();
		setupJobs();
		setupDrawer();
		setupDlq();
		setupWorkflows();
		setupGlobalClicks();
		setupToken();
		$('enqueue-form').addEventListener('submit', submitEnqueue);
		$('workflow-form').addEventListener('submit', submitWorkflow);
		// Editing a field marked invalid takes the mark away.
		for (const f of ['enqueue-form', 'workflow-form', 'job-filters']) {
			$(f).addEventListener('input', (e) => e.target.removeAttribute('aria-invalid'));
		}
		renderQueues();
		selectTab(location.hash.slice(1) || 'overview');
		connect();
		setInterval(tickWorkers, 1000);
		setInterval(() => {
			if (!sse.live || document.hidden) return;
			if (currentTab === 'workers') loadWorkers().catch((e) => report('Workers', e));
			if (currentTab === 'overview') loadQueues().catch((e) => report('Queues', e));
		}, 10000);
		setInterval(() => { if (currentTab === 'overview' && !document.hidden) renderChart(); }, 5000);
	}

	if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
	else start();
})();
