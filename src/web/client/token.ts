/// <reference lib="dom" />
/** The bearer-token dialog and the Token button. */
import { getToken, setToken } from './api.js';
import { $ } from './dom.js';

const dlg = $<HTMLDialogElement>('#token-dlg');
/** asked once after a 401; after a Cancel the banner and the Token button remain */
let prompted = false;

export function tokenDialogOpen(): boolean {
  return dlg.open;
}

export function openTokenDialog(why?: string): void {
  if (dlg.open) return;
  const p = $('#token-why');
  if (why) p.textContent = why;
  $<HTMLInputElement>('#token-input').value = getToken();
  dlg.returnValue = ''; // Esc keeps the previous value otherwise
  dlg.showModal();
}

/** Opens the dialog unless it was opened already since the token last changed. */
export function askTokenOnce(why: string): void {
  if (prompted) return;
  prompted = true;
  openTokenDialog(why);
}

export function syncTokenBtn(): void {
  const b = $('#token-btn');
  const has = !!getToken();
  b.classList.toggle('has-token', has);
  b.textContent = has ? 'Token ✓' : 'Token';
}

/** onChange(saved): the token was saved (true) or forgotten (false). */
export function installTokenDialog(onChange: (saved: boolean) => void): void {
  $('#token-btn').addEventListener('click', () => openTokenDialog());
  dlg.addEventListener('close', () => {
    const v = dlg.returnValue;
    if (v === 'save') setToken($<HTMLInputElement>('#token-input').value.trim());
    else if (v === 'clear') setToken('');
    else return;
    prompted = false; // a new token that fails again asks again
    syncTokenBtn();
    onChange(v === 'save');
  });
}
