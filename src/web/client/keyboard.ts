/// <reference lib="dom" />
/** Keys: / filter, p pause, t theme; Esc leaves a field. */
import { setPaused } from './views/flows.js';
import { form } from './views/filters.js';
import { state } from './state.js';
import { toggleTheme } from './theme.js';
import { tokenDialogOpen } from './token.js';

export function installKeyboard(): void {
  document.addEventListener('keydown', (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || tokenDialogOpen()) return;
    const t = ev.target as HTMLElement;
    const typing = t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement;
    if (ev.key === 'Escape' && typing) {
      t.blur();
      return;
    }
    if (typing) return;
    if (ev.key === '/') {
      ev.preventDefault();
      (form.elements.namedItem('ip') as HTMLInputElement).focus();
    } else if (ev.key === 'p') {
      setPaused(!state.paused);
    } else if (ev.key === 't') {
      toggleTheme();
    }
  });
}
