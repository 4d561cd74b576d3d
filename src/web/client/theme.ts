/// <reference lib="dom" />
/** Light and dark themes: the saved choice, else the system's; the charts are redrawn in the new colours. */
import { $, toast } from './dom.js';
import { bytesChart, pktsChart, renderCharts } from './views/interfaces.js';
import { invalidateTopChart } from './views/top-chart.js';

function applyTheme(t: string | null): void {
  if (t === 'light' || t === 'dark') document.documentElement.dataset.theme = t;
  else delete document.documentElement.dataset.theme;
  bytesChart.invalidate();
  pktsChart.invalidate();
  renderCharts();
  invalidateTopChart();
}

function currentTheme(): 'light' | 'dark' {
  const t = document.documentElement.dataset.theme;
  if (t === 'light' || t === 'dark') return t;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export function toggleTheme(): void {
  const next = currentTheme() === 'dark' ? 'light' : 'dark';
  localStorage.setItem('flowscope.theme', next);
  applyTheme(next);
  toast(`${next === 'dark' ? 'Dark' : 'Light'} theme`);
}

/** The saved theme, the theme button, and the system's changes while nothing is saved. */
export function installTheme(): void {
  const saved = localStorage.getItem('flowscope.theme');
  if (saved === 'light' || saved === 'dark') document.documentElement.dataset.theme = saved;
  $('#theme-btn').addEventListener('click', toggleTheme);
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    if (!localStorage.getItem('flowscope.theme')) applyTheme(null);
  });
}
