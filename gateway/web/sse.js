// SPDX-License-Identifier: MIT
// The live connection: the EventSource on api/events, its state, and its retries.
import { $ } from './dom.js';
import { query } from './util.js';
import { say, report } from './status.js';
import { memToken } from './api.js';
import { refreshAll, onDropped, onJobEvent } from './live.js';
import { loadQueues, onStats } from './overview.js';
import { onWorkerEvent } from './workers.js';
import { onDlqEvent } from './dlq.js';

export const sse = { es: null, live: false, retryTimer: null, backoff: 2000, opened: 0, unauthorized: false };

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

export function onUnauthorized() {
	sse.unauthorized = true;
	setConn('unauthorized');
	say(memToken ? 'The gateway refused the API token: enter a valid one above.'
		: 'The gateway needs an API token: enter one above.', 'error');
}

export function connect() {
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
