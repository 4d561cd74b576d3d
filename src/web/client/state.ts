/// <reference lib="dom" />
/**
 * What the dashboard's views share: the view (filters and top-talkers query,
 * mirrored in the location hash), the latest API answers, the rate history the
 * charts draw, and the poll periods.
 */
import { History } from './charts.js';
import type { IfaceInfo, StatusInfo } from './model.js';
import { hashToState, stateToHash, type ViewState } from './query.js';

export const POLL_IFACES_MS = 1000;
export const POLL_STATUS_MS = 5000;
export const POLL_TOP_MS = 3000;
export const HISTORY_POINTS = 300;

export const state = {
  view: hashToState(location.hash) as ViewState,
  status: undefined as StatusInfo | undefined,
  ifaces: [] as IfaceInfo[],
  unit: (localStorage.getItem('flowscope.unit') === 'bits' ? 'bits' : 'bytes') as 'bits' | 'bytes',
  paused: false,
  maxRows: 250,
  firstData: false,
  overflowSeen: new Map<string, { value: number; changedAt: number }>(),
  apiError: '' as string,
};

/** Rates per interface and direction ("eth0:rx"): bits per second, packets per second. */
export const rateHistory = {
  bytes: new History(HISTORY_POINTS),
  pkts: new History(HISTORY_POINTS),
};

export function markFirstData(): void {
  if (state.firstData) return;
  state.firstData = true;
  performance.mark('flowscope:first-data');
  document.documentElement.dataset.loaded = 'true';
}

/** Several nodes behind the API (a relay). */
export function multiNode(): boolean {
  return state.status?.multiNode ?? false;
}

/** Writes the view into the location hash (a bookmark), without a history entry. */
export function saveHash(): void {
  const hsh = stateToHash(state.view);
  window.history.replaceState(null, '', hsh || location.pathname + location.search);
}
