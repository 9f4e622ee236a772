// SPDX-License-Identifier: MIT
// Constants shared by the dashboard's modules.

export const STATES = ['blocked', 'scheduled', 'ready', 'running', 'succeeded', 'dead', 'cancelled'];
export const TERMINAL = new Set(['succeeded', 'dead', 'cancelled']);
export const TABS = ['overview', 'jobs', 'dlq', 'workers', 'workflows', 'enqueue'];
export const TOKEN_KEY = 'jobwheel.token';
export const CHART_WINDOW_MS = 5 * 60 * 1000;
export const MAX_LIVE_ROWS = 500;
