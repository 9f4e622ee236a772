// SPDX-License-Identifier: MIT
// The tabs: selection, keyboard navigation, the URL hash, and what a shown tab refreshes.
import { TABS } from './constants.js';
import { $ } from './dom.js';
import { report } from './status.js';
import { sse } from './sse.js';
import { renderChart } from './chart.js';
import { loadWorkers } from './workers.js';
import { wfView, loadWorkflows } from './workflows.js';

export let currentTab = 'overview';

export function selectTab(name, focus) {
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

export function setupTabs() {
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
