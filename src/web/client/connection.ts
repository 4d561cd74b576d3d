/// <reference lib="dom" />
/** The connection indicator in the top bar: live, paused, reconnecting or API error. */
import type { StreamState } from './api.js';
import { $ } from './dom.js';
import { state } from './state.js';

export const conn = {
  state: 'connecting' as StreamState,
  detail: '',
  /** records received while paused and not drawn yet (set by the live flow list) */
  held: (): number => 0,
};

export function updateConn(): void {
  const el = $('#conn');
  const text = $('#conn-text');
  el.classList.remove('live', 'paused', 'error');
  if (state.apiError) {
    el.classList.add('error');
    text.textContent = 'API error';
  } else if (state.paused) {
    el.classList.add('paused');
    const held = conn.held();
    text.textContent = held ? `paused · ${held} new` : 'paused';
  } else if (conn.state === 'open') {
    el.classList.add('live');
    text.textContent = 'live';
  } else if (conn.state === 'retrying') {
    el.classList.add('error');
    text.textContent = 'reconnecting';
  } else {
    text.textContent = conn.state === 'closed' ? 'stopped' : 'connecting';
  }
  el.title = conn.detail;
}
